"""``pdesuite generate``: the command line of :func:`~pdesuite.datasets.generation.generate`.

Exit statuses (:data:`EXIT_ERROR`, :data:`EXIT_FAILED_SOLVES`, :data:`EXIT_INTERRUPTED`): 0 the
dataset is written and every solve converged; 1 an error, reported as one line naming the
argument or file (``--debug`` adds the traceback); 2 the dataset is written but some samples did
not converge (a summary line says how many and why), or argparse refused the arguments; 130
interrupted (Ctrl-C): the finished blocks are kept and rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

from pdesuite.datasets.generation.api import (
    DEFAULT_CHUNK_SIZE,
    GENERATION_SORT_METHODS,
    ORDERS,
    generate,
)
from pdesuite.datasets.generation.blocks import h5py_module
from pdesuite.datasets.generation.output import FailedSolvesWarning, failure_summary
from pdesuite.datasets.generation.plan import finished_blocks
from pdesuite.datasets.generation.solver_config import (
    AUTO_KEYS,
    RECYCLE_KEYS,
    resolve_solver_config,
)
from pdesuite.datasets.generation.tuning import TUNER_NAMES

#: Exit status of an error (bad arguments, unreadable files, a failed worker).
EXIT_ERROR = 1
#: Exit status of a run that wrote its dataset but with samples whose solve did not converge.
EXIT_FAILED_SOLVES = 2
#: Exit status of an interrupted run (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130

_EPILOG = """\
exit status:
  0    the dataset is written and every solve converged
  1    an error: one line naming the argument or file (--debug shows the traceback);
       nothing is written, or only finished blocks that a corrected rerun resumes from
  2    the dataset is written, but some samples did not converge (solver/converged is
       False; a line on stderr counts them); also argparse's status for bad usage
  130  interrupted (Ctrl-C): the finished blocks are kept in OUT.parts/; rerun the
       same command (without --overwrite) to resume
"""

#: Python names of generate()'s arguments and solver options -> the flags that set them.
_FLAGS = {"n": "--n", "seed": "--seed", "workers": "--workers", "chunk_size": "--chunk-size",
          "batch_size": "--batch-size", "order": "--order", "sort_method": "--sort-method",
          "backend": "--backend", "compression": "--compression", "out": "--out",
          "method": "--method", "M": "--pc", "rtol": "--rtol", "maxiter": "--maxiter",
          "restart": "--restart", "ell": "--ell", "k": "--k", "tune": "--tune", "config": "--set"}


def _parse_setting(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set: expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``pdesuite generate`` to ``parser``."""
    parser.add_argument("family", help="registered family name (darcy, darcy-pwc, helmholtz, ...)")
    parser.add_argument("--n", type=int, default=100, help="number of samples (default 100)")
    parser.add_argument("--resolution", type=int, default=None, help="grid points per axis")
    parser.add_argument("--out", default=None, help="output HDF5 file (default FAMILY.h5)")
    parser.add_argument("--order", choices=ORDERS, default="sorted")
    parser.add_argument("--sort-method", choices=GENERATION_SORT_METHODS, default="greedy")
    parser.add_argument("--solver", choices=("auto", "recycle", "independent", "direct"),
                        default="auto", help="auto (default): the fastest of direct, "
                        "preconditioned Krylov and recycling, timed on the first samples; "
                        "--method, --pc, --restart, --ell, --k and --tune refine recycle then")
    parser.add_argument(
        "--method", default=None, help="solver method (gcrodr, rcg, cg, gmres, ...)"
    )
    parser.add_argument("--pc", default=None, help="preconditioner name (jacobi, sor, ilu, ...)")
    parser.add_argument("--rtol", type=float, default=None)
    parser.add_argument("--maxiter", type=int, default=None)
    parser.add_argument("--restart", type=int, default=None,
                        help="cycle length of gcrodr, gmres and fgmres (default 40)")
    parser.add_argument("--ell", type=int, default=None,
                        help="rcg: CG directions kept for the recycle update (default max(2k, 30))")
    parser.add_argument("--k", type=int, default=None, help="recycling: recycled dimension")
    parser.add_argument("--tune", default=None, metavar="OPTION|JSON",
                        help="tune an option per solve: 'omega' (of --pc sor/ssor, or of --method "
                             "sor/ssor) or 'k' (recycling), or a JSON tune configuration")
    parser.add_argument("--tuner", choices=TUNER_NAMES, default=None,
                        help="tuner of --tune (default tsallis)")
    parser.add_argument("--tune-values", default=None, metavar="V1,V2,...",
                        help="candidate values of --tune (default: 20 omegas in [1, 1.95]; "
                             "k = b/8, ..., 6b/8 for b = --restart of gcrodr or --ell of rcg); "
                             "one value for --tuner fixed")
    parser.add_argument("--backend", default="numpy", choices=("numpy", "petsc"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="time-dependent families: samples simulated at once (default: the "
                             "family's, e.g. 8 for navier-stokes at 64x64)")
    parser.add_argument("--compression", choices=("gzip", "lzf", "none"), default="gzip")
    parser.add_argument("--set", dest="settings", action="append", type=_parse_setting, default=[],
                        metavar="KEY=VALUE", help="family option (JSON value), repeatable")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing OUT, or discard a partial run of another "
                             "configuration in OUT.parts/")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error or interrupt")
    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def run(args: argparse.Namespace) -> int:
    """Run ``pdesuite generate`` from parsed arguments; print a summary; return the exit status.

    Errors print one line ``pdesuite generate: ...`` (with ``--debug``, the traceback first) and
    return :data:`EXIT_ERROR`; a dataset with failed solves prints their summary and returns
    :data:`EXIT_FAILED_SOLVES`; Ctrl-C prints how to resume and returns
    :data:`EXIT_INTERRUPTED`. See the module docstring.
    """
    out = Path(args.out or f"{args.family}.h5")
    debug = bool(getattr(args, "debug", False))
    try:
        with warnings.catch_warnings():
            # generate() warns about failed solves; the command reports them itself, below.
            warnings.simplefilter("ignore", FailedSolvesWarning)
            path = _generate(args, out)
        summary = _summary(path)
        failures = failure_summary(path, flags=True)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(_interrupted_message(out, bool(args.overwrite)), file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, RuntimeError, KeyError, OSError) as error:
        if debug:
            traceback.print_exc()
        print(f"pdesuite generate: {cli_message(error)}", file=sys.stderr)
        return EXIT_ERROR
    print(summary)
    if failures is not None:
        print(f"pdesuite generate: {failures}", file=sys.stderr)
        return EXIT_FAILED_SOLVES
    return 0


def _generate(args: argparse.Namespace, out: Path) -> Path:
    """:func:`generate` with the family and solver the arguments describe."""
    family_config = dict(args.settings)
    if args.resolution is not None:
        family_config["resolution"] = args.resolution
    overrides = {key: value for key, value in (("method", args.method), ("M", args.pc),
                                               ("rtol", args.rtol), ("maxiter", args.maxiter),
                                               ("restart", args.restart), ("ell", args.ell),
                                               ("k", args.k)) if value is not None}
    tune = _cli_tune(args)
    if tune is not None:
        overrides["tune"] = tune
    from pdesuite.datasets.pde_family import get_family

    family = get_family(args.family, **family_config)
    spd = bool(getattr(family, "spd", False))
    solver: Any = args.solver
    if overrides and args.solver == "auto" and set(overrides) <= set(AUTO_KEYS):
        solver = {"method": "auto", **overrides}
    elif overrides:
        # Options of one solver refine recycling when no solver was named.
        base = resolve_solver_config("recycle" if args.solver == "auto" else args.solver, spd)
        if "method" in overrides:
            base = {"method": overrides["method"], "rtol": base["rtol"], "maxiter": base["maxiter"]}
        else:
            base = {"method": base["method"], "M": base["M"], "rtol": base["rtol"],
                    "maxiter": base["maxiter"], **{k: base[k] for k in RECYCLE_KEYS if k in base},
                    **base["options"]}
        if tune is not None and tune["option"] == "k":
            base.pop("k", None)  # the default k, not one the user fixed
        solver = {**base, **overrides}
    return generate(family, args.n, out, order=args.order, sort_method=args.sort_method,
                    solver=solver, backend=args.backend, workers=args.workers, seed=args.seed,
                    chunk_size=args.chunk_size, batch_size=getattr(args, "batch_size", None),
                    progress=not args.no_progress,
                    compression=None if args.compression == "none" else args.compression,
                    overwrite=args.overwrite)


def _summary(path: Path) -> str:
    """The line printed after a run: samples, family, times, iterations, failures."""
    h5py = h5py_module()
    with h5py.File(path, "r") as handle:
        converged = handle["solver"]["converged"][()]
        iterations = handle["solver"]["iterations"][()]
        return (f"{path}: {handle.attrs['n']} samples of {handle.attrs['family']}; sorting "
                f"{handle.attrs['sort_time']:.3f} s, solves {handle.attrs['solve_time']:.3f} s, "
                f"mean iterations {iterations.mean():.1f}, not converged {int((~converged).sum())}")


def _interrupted_message(out: Path, overwrite: bool) -> str:
    """The one line after Ctrl-C: what is kept, and how to resume."""
    parts = out.with_name(out.name + ".parts")
    blocks = finished_blocks(parts)
    again = "rerun the same command" + (" without --overwrite" if overwrite else "")
    if blocks == 0 and out.exists() and not parts.exists():
        return (f"pdesuite generate: interrupted; {out} was already written; {again} to see its "
                "summary")
    if blocks == 0:
        return (f"pdesuite generate: interrupted before any block was finished; nothing is kept; "
                f"{again} to start again")
    return (f"pdesuite generate: interrupted; {blocks} finished block(s) are kept in {parts}; "
            f"{again} to resume (only the missing blocks are solved)")


def cli_message(error: BaseException | str) -> str:
    """An error of :func:`generate` as one line in the words of the command line.

    A message that starts with a Python argument or solver option (``"solver: rtol: ..."``,
    ``"chunk_size: ..."``) starts with its flag instead (``"--rtol: ..."``), an unknown solver
    option is named by its flag, ``overwrite=True`` reads ``--overwrite`` and ``solver='x'``
    reads ``--solver x``. A message of several lines (a worker's traceback) keeps its first and
    last line; ``--debug`` shows the rest.
    """
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if isinstance(error, KeyError) and len(lines) == 1:
        lines = [f"unknown key {lines[0]}"]
    text = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"
    match = re.match(r"(?:solver: )?(\w+): ", text)
    if match and match.group(1) in _FLAGS:
        text = f"{_FLAGS[match.group(1)]}: {text[match.end():]}"
    elif text.startswith("solver: tune"):
        text = f"--tune: {text[len('solver: '):]}"
    elif text.startswith("solver: "):
        unknown = (re.search(r"unknown option\(s\) \[([^\]]*)\]", text)
                   or re.match(r"solver: ('\w+') is not an option", text))
        names = re.findall(r"'([^']+)'", unknown.group(1)) if unknown else []
        flags = [_FLAGS[name] for name in names if name in _FLAGS]
        text = f"{', '.join(flags)}: {text[len('solver: '):]}" if flags else text
    text = text.replace("overwrite=True", "--overwrite")
    return re.sub(r"solver='(\w+)'", r"--solver \1", text)


def _cli_tune(args: argparse.Namespace) -> Optional[dict[str, Any]]:
    """The tune configuration of ``--tune``, ``--tuner`` and ``--tune-values`` (None if none)."""
    tuner, values = getattr(args, "tuner", None), getattr(args, "tune_values", None)
    if args.tune is None:
        if tuner is not None or values is not None:
            raise ValueError("--tuner and --tune-values need --tune OPTION")
        return None
    text = args.tune.strip()
    if text.startswith("{"):
        try:
            tune = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"--tune: not a valid JSON object ({error})") from error
    else:
        tune = {"option": text}
    if tuner is not None:
        tune["tuner"] = tuner
    if values is not None:
        try:
            parsed = [float(item) for item in values.split(",") if item.strip()]
        except ValueError:
            raise ValueError(
                f"--tune-values: expected comma-separated numbers, got {values!r}"
            ) from None
        if tune.get("tuner") == "fixed":
            if len(parsed) != 1:
                raise ValueError(
                    f"--tune-values: the fixed tuner takes one value, got {len(parsed)} "
                    f"({values!r}); give one value, or another --tuner to choose "
                    "among several"
                )
            tune["value"] = parsed[0]
        else:
            tune["values"] = parsed
    return tune


def cli_generate(argv: Optional[Sequence[str]] = None) -> int:
    """``pdesuite generate`` as a function of its argument list; returns the exit code."""
    parser = argparse.ArgumentParser(prog="pdesuite generate",
                                     description="generate a PDE dataset into an HDF5 file")
    add_arguments(parser)
    return run(parser.parse_args(argv))
