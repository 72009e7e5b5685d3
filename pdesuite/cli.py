"""The ``pdesuite`` command line.

Every subcommand the suite will have is listed by ``pdesuite --help``; one that is not built yet
says so and exits with status 2, rather than pretending to work.
"""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys
from pathlib import Path
from typing import Callable, Sequence

NOT_BUILT_EXIT = 2


def _not_built(name: str, part: str) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        print(
            f"pdesuite {name}: not built yet (the {part}). "
            "Nothing was run.",
            file=sys.stderr,
        )
        return NOT_BUILT_EXIT

    return run


def _run_demo(_: argparse.Namespace) -> int:
    demo = Path(__file__).resolve().parent.parent / "examples" / "demo.py"
    if not demo.exists():
        print("pdesuite demo: examples/demo.py is not in this installation; "
              "run `make demo` from a source checkout.", file=sys.stderr)
        return NOT_BUILT_EXIT
    runpy.run_path(str(demo), run_name="__main__")
    return 0


def _builder(module_name: str, add: str, run: str) -> Callable[[], tuple]:
    def load() -> tuple:
        module = importlib.import_module(module_name)
        return getattr(module, add), getattr(module, run)

    return load


# Built subcommands: name -> a loader of (add_arguments, run). A subcommand's module is imported
# only when that subcommand runs, so that `pdesuite --help` stays fast and imports no torch.
_BUILT: dict[str, Callable[[], tuple]] = {
    "generate": _builder("pdesuite.datasets.generation", "add_arguments", "run"),
    "train": _builder("pdesuite.operators.train_cli", "add_train_arguments", "run_train"),
    "evaluate": _builder("pdesuite.operators.train_cli", "add_evaluate_arguments", "run_evaluate"),
}

# name -> (help, handler); None: built, see _BUILT
_SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int] | None]] = {
    "demo": ("run the main job on the embedded default (as `make demo`)", _run_demo),
    "generate": ("generate a PDE dataset into an HDF5 file", None),
    "train": ("train a neural operator (fno, lsm, mgno) on a dataset", None),
    "evaluate": ("evaluate a trained operator, also at other resolutions", None),
    "forecast": ("learn and forecast dynamics from trajectories",
                 _not_built("forecast", "dynamics layer")),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s own options are loaded (all subcommands are listed)."""
    from pdesuite import __version__

    parser = argparse.ArgumentParser(
        prog="pdesuite",
        description="A solver suite for PDEs and operators.",
    )
    parser.add_argument("--version", action="version", version=f"pdesuite {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, handler) in _SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        accepts_anything = handler is not None and handler is not _run_demo
        if handler is None and name == command:
            add_arguments, handler = _BUILT[name]()
            add_arguments(p)
        p.set_defaults(handler=handler, accepts_anything=accepts_anything)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    # A subcommand not built yet takes whatever a user passes, so that it can say so plainly.
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "accepts_anything", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
