"""``irn models``: every model name (shipped and downloadable) with its architecture, scale, purpose,
latent, licence, source, size and status, as a table and as JSON, without importing torch;
``--architectures``: the registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

from irn.cli.main import main
from irn.zoo.catalogue import CATALOGUE


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IRN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IRN_CHECKPOINT_DIR", raising=False)
    return tmp_path / "home"


def test_the_table_lists_every_name_with_its_status(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ARCH", "SCALE", "PURPOSE", "LATENT", "LICENCE", "SOURCE", "SIZE", "STATUS"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == [e.name for e in CATALOGUE]
    for name in ("x2", "x4", "color", "x2-jpeg"):
        assert rows[name].endswith("shipped") and "irn (checkpoints/)" in rows[name]
    assert "sain  " in rows["sain-x2-webp"] and " WebP " in rows["sain-x2-webp"]
    assert "yang-jin-hai/SAIN@e361d7a" in rows["sain-x4-jpeg"] and rows["sain-x4-jpeg"].endswith("not downloaded")
    assert "Jingwei-Bao/T-InvBlocks@3590f06" in rows["tirn-x2"] and " x4 " in rows["tirn-x4"]
    assert str(home / "models") in err
    # a downloaded file (or one put there by hand) shows as cached, with its size
    (home / "models").mkdir(parents=True)
    (home / "models" / "TIRNx2.pth").write_bytes(b"x" * 1500)
    (home / "models" / "SAINx2_JPEG.pth.part").write_bytes(b"x" * 2000)
    assert main(["models"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["tirn-x2"].split()[-3:] == ["1.50", "kB", "cached"]
    assert rows["sain-x2-jpeg"].endswith("partial download (2.00 kB)")


def test_json_for_machines(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cache"] == str(home / "models")
    models = {m["name"]: m for m in doc["models"]}
    assert list(models) == [e.name for e in CATALOGUE]
    x2 = models["x2"]
    assert (x2["arch"], x2["scale"], x2["purpose"], x2["status"], x2["url"]) == ("irn", 2, "lossless", "shipped", None)
    assert x2["size"] == Path(x2["path"]).stat().st_size
    sain = models["sain-x2-jpeg"]
    assert sain["url"].startswith("https://raw.githubusercontent.com/yang-jin-hai/SAIN/e361d7a")
    assert sain["blob_sha1"] == "96647627e347d65aa9004577b3072a0f3079db80" and sain["path"] is None
    assert sain["status"] == "not downloaded" and sain["licence"] == "Apache-2.0" and sain["latent"] == "sample"
    assert models["color"]["purpose"] == "colour" and models["sain-x2-webp"]["purpose"] == "WebP"


def test_architectures_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    from irn.zoo.registry import ARCHITECTURES

    assert main(["models", "--architectures"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["ARCH", "ROLE", "LATENT", "ONNX"]
    assert [line.split()[0] for line in lines[1:]] == [a.name for a in ARCHITECTURES]
    assert main(["models", "--architectures", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    crm = next(a for a in doc["architectures"] if a["name"] == "crm")
    assert crm["role"] == "restorer" and crm["onnx"] is False and "conv_first.weight" in crm["official_keys"]


@pytest.mark.parametrize("argv", [["models"], ["models", "--json"], ["models", "--help"]])
def test_the_model_table_does_not_import_torch(argv: list[str], tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from irn.cli.main import main\n"
        "try:\n"
        f"    code = main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'PIL', 'lightning') if m in sys.modules)\n"
        "print('HEAVY', heavy, 'CODE', code)\n"
    )
    env = {"IRN_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert "HEAVY [] CODE 0" in out.stdout, (out.stdout[-500:], out.stderr[-500:])
