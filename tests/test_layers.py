"""The package's architecture, read from its source: layers import only downwards, no cycles,
and library code imports irn modules at the top of the file (function-level imports are for
optional dependencies and the CLI's lazy loading of commands)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

PACKAGE = REPO / "irn"

#: module prefix -> layer; a module may import from a lower layer or from its own subpackage
LAYERS = {
    "irn._version": 0,
    "irn.errors": 0,
    "irn.atomic": 1,
    "irn.progress": 1,
    "irn.nn": 1,
    "irn.imaging": 2,
    "irn.zoo": 3,
    "irn.onnx.export": 4,
    "irn.pipeline": 4,
    "irn.api": 5,
    "irn.onnx": 5,
    "irn.eval": 6,
    "irn.datasets": 6,
    "irn.train": 7,
    "irn.experiments": 8,
    "irn.cli": 9,
}


def layer_of(module: str) -> tuple[str, int]:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix, LAYERS[prefix]
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported irn module, at the top level?, line) for every import of an irn module."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` blocks count as top level
        if isinstance(node, ast.If):
            top.update(id(n) for n in node.body)
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            names = [base]
            # `from irn import x` / `from irn.imaging import io`: the submodule is the dependency
            for alias in node.names:
                candidate = PACKAGE.parent / Path(*f"{base}.{alias.name}".split("."))
                if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
                    names.append(f"{base}.{alias.name}")
        for name in names:
            if name == "irn" or name.startswith("irn."):
                found.append((name, id(node) in top, node.lineno))
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def graph() -> dict[str, set[str]]:
    return {
        mod: {name for name, _, _ in imports(path) if name in MODULES and name != "irn"}
        for mod, path in MODULES.items()
        if mod != "irn"
    }


def test_every_module_has_a_layer() -> None:
    for mod in MODULES:
        if mod != "irn":
            layer_of(mod)


def test_imports_go_down_the_layers() -> None:
    bad = []
    for mod, path in MODULES.items():
        if mod == "irn":
            continue
        own_prefix, own = layer_of(mod)
        for name, _, line in imports(path):
            if name == "irn":
                bad.append(f"{mod}:{line} imports the package root (import what it needs from its module)")
                continue
            prefix, other = layer_of(name)
            if other > own or (other == own and prefix != own_prefix):
                bad.append(f"{mod}:{line} imports {name} (layer {other} >= {own})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(cycles)


def test_library_code_imports_irn_at_the_top() -> None:
    """Only the CLI (which loads a command's code when it runs) imports irn modules in functions."""
    bad = [
        f"{mod}:{line} imports {name} inside a function"
        for mod, path in MODULES.items()
        if mod != "irn" and not mod.startswith("irn.cli")
        for name, at_top, line in imports(path)
        if not at_top
    ]
    assert not bad, "\n".join(bad)


def test_the_top_of_the_package_holds_at_most_8_modules() -> None:
    """Issue 30: what grows goes into a subpackage (irn/zoo/, irn/onnx/, ...)."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top


def test_pyproject_lists_every_package() -> None:
    """setuptools' explicit package list: a subpackage missing from it is missing from the wheel."""
    text = (REPO / "pyproject.toml").read_text()
    listed = set(re.findall(r'^\s+"(irn(?:\.[a-z_]+)*)",$', text.split("packages = [", 1)[1].split("]", 1)[0], re.M))
    packages = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert packages - listed == set(), sorted(packages - listed)
    assert listed - packages == {"irn.checkpoints"}  # the top-level checkpoints/ folder, mapped by package-dir


@pytest.mark.parametrize(
    "argv", [["--help"], ["rescale", "--help"], ["color", "--help"], ["models", "--help"], ["--version"], []]
)
def test_help_does_not_import_torch(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from irn.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'PIL', 'lightning') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "HEAVY ['" not in out.stdout.replace("HEAVY []", ""), out.stdout[-500:]
    assert "HEAVY []" in out.stdout


def test_bare_irn_prints_the_help_and_options_before_the_command_are_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from irn.cli.main import main

    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: irn") and "rescale" in err and "error" not in err
    for argv, words in (
        (
            ["--device", "cpu", "rescale", "down", "x.png"],
            "--device: options go after the command, e.g. irn rescale --device cpu ...",
        ),
        (
            ["--quiet", "rescale", "down", "a.png"],
            "--quiet: options go after the command, e.g. irn rescale --quiet ...",
        ),
        (
            ["--device=cpu", "train", "x.yaml"],
            "--device=cpu: options go after the command, e.g. irn train --device=cpu ...",
        ),
        (["--device", "cpu"], "--device: options go after the command (see"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and words in err, err
