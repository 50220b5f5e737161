"""The ``irn`` command line. ``main(argv)`` is what the console script and the tests call.

Each subcommand lives in ``irn/cli/<module>.py`` and provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports happen inside ``run``
so that ``irn --help`` stays fast. A user's mistake (:class:`irn.errors.IRNError`) is
printed as one line ``irn: error: ...`` with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from irn._version import __version__
from irn.errors import InputError, IRNError

#: subcommand -> module under irn.cli
COMMANDS: dict[str, str] = {
    "rescale": "rescale",
    "color": "color",
    "eval": "evaluate",
    "decay": "decay",
    "hybrid": "hybrid",
    "chart": "chart",
    "data": "data",
    "train": "train",
    "export": "export",
    "models": "models",
    "craft": "craft",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors as one line ``irn: error: PROG: message (see PROG --help)``, exit 2
    (argparse's own prints the whole usage block first). Subcommand parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"irn: error: {self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="irn", description="Invertible Image Rescaling: rescale, evaluate, train and experiment."
    )
    parser.add_argument("--version", action="version", version=f"irn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"irn.cli.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _parser=p)
        for action in p._actions:  # rescale down/up/roundtrip, data list/download: their own --help
            if isinstance(action, argparse._SubParsersAction):
                for nested in action.choices.values():
                    nested.set_defaults(_parser=nested)
    return parser


def describe_os_error(exc: BaseException) -> str:
    """ "cannot write /proc/x.png: No such file or directory" from an OSError (or "out of memory")."""
    if isinstance(exc, MemoryError):
        return f"out of memory ({' '.join(str(exc).split()) or 'MemoryError'})"
    name = getattr(exc, "filename", None)
    reason = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__
    return f"{name}: {reason}" if name else reason


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError (CUDA) or its CPU allocator's "can't allocate memory"."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc)
    return "OutOfMemoryError" in names or "can't allocate memory" in text or "CUDA out of memory" in text


def flag_for(parser: argparse.ArgumentParser, param: str | None) -> str:
    """The option of ``parser`` that sets ``param`` (its long form), or ``param`` itself."""
    for action in parser._actions:
        if param and action.dest == param and action.option_strings:
            return max(action.option_strings, key=len)
    return param or ""


#: the options of `irn` itself; every other option belongs after the command
TOP_OPTIONS = ("-h", "--help", "--version")


def first_empty(words: Sequence[str]) -> str | None:
    """The message for the first empty argument (``""``, or ``--opt=`` with nothing after it), or None.
    ``Path("")`` is the current folder, so an unset shell variable (``irn eval --data "$SETS"``) would
    otherwise mean "every image here". ``irn train``'s dotted overrides (``--data.val_dir=``) are the
    config's to judge."""
    for i, word in enumerate(words):
        if word.startswith("--") and "=" in word:
            key, value = word.split("=", 1)
            if not value.strip() and "." not in key:
                return f"{key}: an empty value (an unset shell variable?)"
        elif not word.strip():
            where = f"after {words[i - 1]}" if i else "as the first argument"
            return f"an empty argument {where} (an unset shell variable?); irn takes no empty paths or names"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(argv) if argv is not None else sys.argv[1:]
    if not words:  # bare `irn`: the help, not an error about a missing argument
        parser.print_help(sys.stderr)
        return 2
    empty = first_empty(words)
    if empty is not None:
        parser.error(empty)
    if words[0].startswith("-") and words[0].split("=", 1)[0] not in TOP_OPTIONS:
        command = next((w for w in words if w in COMMANDS), None)
        options = words[: words.index(command)] if command is not None else words[:1]
        example = f", e.g. irn {command} {' '.join(options)} ..." if command is not None else ""
        parser.error(f"{words[0]}: options go after the command{example}")
    args, extra = parser.parse_known_args(words)
    if extra:  # reported by the parser they were given to, so the message points at the right --help
        before_command = words[: words.index(args.command)] if args.command in words else []
        owner = parser if any(word in before_command for word in extra) else args._parser
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args._run(args) or 0)
    except InputError as exc:  # a library error naming a parameter: say the flag the user typed
        print(f"irn: error: {exc.with_name(flag_for(args._parser, exc.param))}", file=sys.stderr)
        return 2
    except IRNError as exc:
        print(f"irn: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `irn ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as the shell reports it
    except (OSError, MemoryError) as exc:
        # the machine said no (a path that cannot be written, a full disk, not enough memory): one
        # line naming the file; the commands check their outputs up front, so this is the rare case
        # of an environment that changed or refused late (outputs are written atomically)
        print(f"irn: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # torch reports a failed allocation (CPU or GPU) as a RuntimeError
        if not is_out_of_memory(exc):
            raise
        first = " ".join(str(exc).split())[:300]
        print(f"irn: error: out of memory ({first}); try a smaller input", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("irn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
