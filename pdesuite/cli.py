"""The ``pdesuite`` command line: ``demo``, ``generate``, ``train``, ``evaluate``, ``forecast``.

Each subcommand's module is imported only when it runs, so that ``pdesuite --help`` is fast and
imports no torch.
"""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys
from pathlib import Path
from typing import Callable, Sequence

#: Exit status of ``pdesuite demo`` outside a source checkout (no examples/demo.py).
NO_DEMO_EXIT = 2


def _run_demo(_: argparse.Namespace) -> int:
    demo = Path(__file__).resolve().parent.parent / "examples" / "demo.py"
    if not demo.exists():
        print("pdesuite demo: examples/demo.py is not in this installation; "
              "run `make demo` from a source checkout.", file=sys.stderr)
        return NO_DEMO_EXIT
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
    "forecast": _builder("pdesuite.dynamics.forecast_cli", "add_arguments", "run"),
}

# name -> (help, handler); None: built, see _BUILT
_SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int] | None]] = {
    "demo": ("run the main job on the embedded default (as `make demo`)", _run_demo),
    "generate": ("generate a PDE dataset into an HDF5 file", None),
    "train": ("train a neural operator (fno, lsm, mgno, spon, spon-mg) or a learned "
              "preconditioner (dcdm) on a dataset", None),
    "evaluate": ("evaluate a trained operator, also at other resolutions", None),
    "forecast": ("learn and forecast dynamics from trajectories", None),
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
        if handler is None and name == command:
            add_arguments, handler = _BUILT[name]()
            add_arguments(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 0
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
