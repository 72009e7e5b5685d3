"""``pdesuite train dcdm``: train a learned preconditioner on a generated file from the shell.

    pdesuite generate darcy --n 64 --resolution 32 --solver direct --out darcy32.h5
    pdesuite train dcdm --data darcy32.h5 --out run/pc --epochs 20 [--supervised]
    pdesuite generate darcy --n 1000 --resolution 64 --method fcg --pc run/pc --out darcy64.h5

It shares ``pdesuite train``'s parser; the options that apply are ``--data``, ``--out``,
``--epochs`` (default 10), ``--lr`` (1e-3), ``--batch-size`` (10), ``--seed`` (0), ``--device``,
``--model-arg`` (``DCDMNet`` settings, e.g. ``width=16``), ``--resume``, ``--overwrite``,
``--no-progress``, and two of its own, ``--supervised`` and ``--max-seconds``. Any other
option is an error naming it, rather than being ignored. A run directory that holds a run is
never replaced without ``--overwrite`` (which deletes that run's two files only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pdesuite.operators.preconditioning.datafile import train_preconditioner_on_file
from pdesuite.operators.preconditioning.store import CHECKPOINT_NAME, METRICS_NAME

#: ``pdesuite train`` options that apply to ``dcdm`` (argparse destinations).
APPLICABLE = {"model", "data", "out", "epochs", "lr", "batch_size", "seed", "device",
              "model_arg", "resume", "overwrite", "no_progress", "debug", "supervised",
              "max_seconds", "command", "handler"}  # the last two: set by pdesuite.cli


def train_dcdm(args: argparse.Namespace) -> int:
    """Handler of ``pdesuite train dcdm``. Raises ValueError for an option that does not apply,
    a missing ``--data``, or a run in ``--out`` without ``--resume``/``--overwrite``."""
    given = sorted(name for name, value in vars(args).items()
                   if name not in APPLICABLE and value not in (None, False, []))
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(f"dcdm: not an option of a preconditioner run: {options}")
    if args.data is None:
        raise ValueError("--data: name the generated file to train on")
    out = Path(args.out)
    if (out / CHECKPOINT_NAME).exists() and not (args.resume or args.overwrite):
        raise ValueError(f"--out {out}: holds a run; --resume continues it, --overwrite "
                         "replaces it")
    if args.overwrite:
        for name in (CHECKPOINT_NAME, METRICS_NAME):
            (out / name).unlink(missing_ok=True)
    run = train_preconditioner_on_file(
        args.data, supervised=bool(args.supervised), out_dir=out, resume=bool(args.resume),
        model=dict(args.model_arg) or None,
        epochs=10 if args.epochs is None else args.epochs,
        lr=1e-3 if args.lr is None else args.lr,
        batch_size=10 if args.batch_size is None else args.batch_size,
        seed=0 if args.seed is None else args.seed,
        device=args.device or "auto", max_seconds=args.max_seconds,
        progress=not args.no_progress)
    last = run.history[-1]
    print(f"pdesuite train dcdm: {len(run.history)} epochs, loss {last['loss']:.4g}; wrote {out}/ "
          f"(use it as --pc {out} with --method fcg, dcdm or fgmres)")
    return 0
