"""``pdesuite train`` and ``pdesuite evaluate``: train an operator on a dataset file, evaluate it.

``pdesuite train fno --data darcy.h5 --epochs 100 --batch-size 20 --lr 1e-3 --out run/``
reads the file's ``train``, ``val`` and ``test`` splits (``PDEDataset``, unnormalised: the
trainer fits its own normalisers on the training split), builds the model with the data's
channel counts and dimension, trains it with :class:`~pdesuite.operators.trainer.Trainer`, and
writes into ``run/``: ``checkpoint.pt``, ``best.pt``, ``metrics.csv``, ``metrics.json``,
``test_metrics.json`` and ``predictions.png`` (input, truth, prediction and error for 3 test
samples). ``--resolution 43`` subsamples the grid first (see :func:`subsample_stride`).

``pdesuite evaluate run/ --data other.h5 [--resolution 43 85]`` loads ``run/best.pt`` and
prints the relative L2 (and H1) error per data file and resolution: a resolution other than the
training one is zero-shot super- (or sub-) resolution.

Wiring into ``pdesuite.cli``: ``add_train_arguments(parser)`` / ``run_train(args) -> int`` and
``add_evaluate_arguments(parser)`` / ``run_evaluate(args) -> int``. This module imports neither
torch nor the datasets layer at import time, so ``pdesuite --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

MODEL_NAMES = ("fno", "lsm", "mgno")
PREDICTIONS_PNG = "predictions.png"
TEST_METRICS_JSON = "test_metrics.json"

__all__ = [
    "add_train_arguments",
    "run_train",
    "add_evaluate_arguments",
    "run_evaluate",
    "subsample_stride",
    "plot_predictions",
]


# --------------------------------------------------------------------------------- parsing
def _model_argument(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--model-arg: expected KEY=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value  # a bare string such as padding_mode=zeros
    return key.strip(), parsed


def _fraction_or_count(text: str) -> float | int:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split-fractions", nargs=3, type=_fraction_or_count,
                        metavar=("TRAIN", "VAL", "TEST"), default=(0.8, 0.1, 0.1),
                        help="train/val/test split of the file: fractions, or sample counts "
                             "when all three are integers (default 0.8 0.1 0.1)")
    parser.add_argument("--batch-size", type=int, default=20, help="samples per batch (default 20)")
    parser.add_argument("--device", default="auto", help="auto (default: cuda if available), cpu, cuda, cuda:N")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pdesuite train`` (positional: the model name)."""
    parser.add_argument("model", choices=MODEL_NAMES, help="the operator to train")
    parser.add_argument("--data", required=True, type=Path, help="a pdesuite HDF5 dataset file")
    parser.add_argument("--out", type=Path, default=Path("run"),
                        help="run directory for checkpoints, logs and the figure (default run/)")
    parser.add_argument("--epochs", type=int, default=100, help="epochs (default 100)")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="default 1e-4")
    parser.add_argument("--optimizer", choices=("adam", "adamw"), default="adam")
    parser.add_argument("--scheduler", choices=("step", "onecycle", "none"), default="step",
                        help="step (StepLR, default), onecycle, or none")
    parser.add_argument("--step-size", type=int, default=100, help="StepLR period in epochs (default 100)")
    parser.add_argument("--gamma", type=float, default=0.5, help="StepLR factor (default 0.5)")
    parser.add_argument("--max-lr", type=float, default=None, help="OneCycle peak (default --lr)")
    parser.add_argument("--loss", choices=("l2", "h1"), default="l2", help="relative L2 (default) or H1")
    parser.add_argument("--periodic", action="store_true",
                        help="the data are periodic: FFT derivatives for H1 (default: finite differences)")
    parser.add_argument("--eval-every", type=int, default=1, help="validate every N epochs (default 1)")
    parser.add_argument("--patience", type=int, default=None,
                        help="early stopping after N evaluations without improvement (default off)")
    parser.add_argument("--resolution", type=int, nargs="+", default=None, metavar="N",
                        help="subsample the grid to N points per axis (one N, or one per axis)")
    parser.add_argument("--model-arg", type=_model_argument, action="append", default=[],
                        metavar="KEY=VALUE", help="model setting, e.g. --model-arg width=16 "
                                                  "(JSON values; repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model init and the run (default 0)")
    parser.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                        help="mixed precision: auto (on with CUDA, default), on, off")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_data_arguments(parser)


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pdesuite evaluate`` (positional: the run directory or a checkpoint)."""
    parser.add_argument("run", type=Path, help="run directory (its best.pt) or a checkpoint file")
    parser.add_argument("--data", required=True, type=Path, action="append",
                        help="dataset file to evaluate on (repeatable)")
    parser.add_argument("--split", choices=("train", "val", "test", "all"), default="test",
                        help="which split of each file (default test; 'all' for a file made for evaluation)")
    parser.add_argument("--resolution", type=int, nargs="+", action="append", default=None,
                        metavar="N", help="also evaluate subsampled to N points per axis "
                                          "(repeatable; default: the file's own grid)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="best.pt (default) or checkpoint.pt of a run directory")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    _add_data_arguments(parser)


# -------------------------------------------------------------------------------- datasets
def subsample_stride(points: int, target: int) -> int:
    """Stride that takes an axis of ``points`` samples to ``target``.

    A node grid (both ends included, as the FNO Darcy data) keeps its ends:
    ``(points − 1) / (target − 1)`` must be an integer, as 421 → 85 (stride 5). Failing that, a
    periodic grid (right end left out): ``points / target``, as 64 → 32. Raises ValueError
    when neither divides.
    """
    if target < 2 or target > points:
        raise ValueError(f"resolution: {target} points is not between 2 and the {points} of the data")
    if (points - 1) % (target - 1) == 0:
        return (points - 1) // (target - 1)
    if points % target == 0:
        return points // target
    raise ValueError(f"resolution: cannot subsample {points} points to {target} by a stride "
                     f"(need (n-1)/(N-1) or n/N to be an integer)")


class _Subsampled:
    """A view of a dataset whose samples ``[C, *spatial]`` are strided along every axis."""

    def __init__(self, dataset, strides: Sequence[int]) -> None:
        self.dataset = dataset
        self.strides = tuple(strides)

    def __len__(self) -> int:
        return len(self.dataset)

    def _cut(self, tensor):
        index = (slice(None),) + tuple(slice(None, None, s) for s in self.strides)
        return tensor[index].contiguous()

    def __getitem__(self, item):
        x, y = self.dataset[item]
        return self._cut(x), self._cut(y)


def _open_split(path: Path, split: str, fractions, resolution: Optional[Sequence[int]]):
    """PDEDataset over one split, unnormalised, optionally subsampled; None when empty."""
    from pdesuite.datasets.loaders import PDEDataset

    dataset = PDEDataset(path, split=split, split_fractions=tuple(fractions), normalize=False)
    if len(dataset) == 0:
        return None
    if resolution:
        spatial = tuple(dataset.spatial_shape)
        targets = list(resolution) * len(spatial) if len(resolution) == 1 else list(resolution)
        if len(targets) != len(spatial):
            raise ValueError(f"resolution: {len(resolution)} values for {len(spatial)} spatial axes")
        strides = [subsample_stride(n, r) for n, r in zip(spatial, targets)]
        if any(s != 1 for s in strides):
            return _Subsampled(dataset, strides)
    return dataset


def _domain_lengths(path: Path, periodic: bool) -> Optional[list[float]]:
    """Physical domain lengths per axis from the file's grid coordinates (None if unknown)."""
    import h5py
    import numpy as np

    with h5py.File(path, "r") as handle:
        if "coordinates" not in handle:
            return None
        coordinates = np.asarray(handle["coordinates"][()])
        spatial = handle["outputs"].shape[2:] if "outputs" in handle else None
    if spatial is None or coordinates.shape != (len(spatial), *spatial):
        return None  # FE DoF coordinates, or a layout we do not know
    lengths = []
    for axis, n in enumerate(spatial):
        extent = float(coordinates[axis].max() - coordinates[axis].min())
        # a periodic grid leaves out the right end: the period is one spacing longer
        lengths.append(extent * n / (n - 1) if periodic and n > 1 else extent)
    if any(not (length > 0 and math.isfinite(length)) for length in lengths):
        return None
    return lengths


def _spatial_label(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape)


# ---------------------------------------------------------------------------------- figure
def plot_predictions(trained, dataset, path: Path, samples: int = 3) -> Path:
    """PNG of input (channel 0), truth, prediction and |error| for the first ``samples``.

    ``trained`` has ``predict`` (a Trainer or TrainedModel); ``dataset`` yields ``(x, y)``
    pairs ``[C, *spatial]``. 1D samples are line plots; 3D ones show the middle slice of the
    last axis. Uses matplotlib's Agg canvas directly, leaving the global backend alone.
    """
    import numpy as np
    import torch
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    count = min(samples, len(dataset))
    pairs = [dataset[i] for i in range(count)]
    x = torch.stack([torch.as_tensor(p[0]) for p in pairs])
    y = torch.stack([torch.as_tensor(p[1]) for p in pairs])
    prediction = trained.predict(x)
    columns = ("input", "truth", "prediction", "|error|")
    figure = Figure(figsize=(3.2 * len(columns), 2.8 * count), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(count, len(columns), squeeze=False)

    def field(t: torch.Tensor) -> np.ndarray:
        a = t[0].detach().cpu().numpy()  # channel 0
        while a.ndim > 2:
            a = a[..., a.shape[-1] // 2]
        return a

    for row in range(count):
        panels = (field(x[row]), field(y[row]), field(prediction[row]),
                  np.abs(field(prediction[row]) - field(y[row])))
        for column, (title, values) in enumerate(zip(columns, panels)):
            ax = axes[row, column]
            if values.ndim == 1:
                ax.plot(values)
            else:
                image = ax.imshow(values, origin="lower", cmap="magma" if column == 3 else "viridis")
                figure.colorbar(image, ax=ax, shrink=0.8)
                ax.set_xticks([])
                ax.set_yticks([])
            ax.set_title(f"sample {row}: {title}", fontsize=9)
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path


# ----------------------------------------------------------------------------------- train
def _seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``pdesuite train``; returns the exit status."""
    from pdesuite.operators.models import build_model
    from pdesuite.operators.trainer import CHECKPOINT_NAME, Trainer, load_trained

    for name in ("epochs", "batch_size", "eval_every", "step_size"):
        if getattr(args, name) < 1:
            print(f"pdesuite train: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    data = Path(args.data)
    train = _open_split(data, "train", args.split_fractions, args.resolution)
    if train is None:
        print(f"pdesuite train: {data} has no training samples with split {args.split_fractions}",
              file=sys.stderr)
        return 2
    val = _open_split(data, "val", args.split_fractions, args.resolution)
    test = _open_split(data, "test", args.split_fractions, args.resolution)
    x0, y0 = train[0]
    ndim = x0.ndim - 1
    periodic = bool(args.periodic)
    domain = _domain_lengths(data, periodic)
    progress = not args.no_progress
    amp = {"auto": "auto", "on": True, "off": False}[args.amp]
    out = Path(args.out)
    rank = int(os.environ.get("RANK", "0") or 0)

    if args.resume:
        if not (out / CHECKPOINT_NAME).is_file():
            print(f"pdesuite train: --resume, but {out / CHECKPOINT_NAME} does not exist", file=sys.stderr)
            return 2
        trainer = Trainer.resume(out, train, val, epochs=args.epochs, progress=progress,
                                 device=args.device, num_workers=args.workers)
    else:
        _seed(args.seed)
        overrides = dict(args.model_arg)
        model = build_model(args.model, **{"in_channels": int(x0.shape[0]),
                                           "out_channels": int(y0.shape[0]), "ndim": ndim, **overrides})
        trainer = Trainer(
            model, train, val, loss=args.loss, optimizer=args.optimizer, lr=args.lr,
            weight_decay=args.weight_decay,
            scheduler=None if args.scheduler == "none" else args.scheduler,
            step_size=args.step_size, gamma=args.gamma, max_lr=args.max_lr, epochs=args.epochs,
            batch_size=args.batch_size, eval_every=args.eval_every,
            early_stopping_patience=args.patience, out_dir=out, device=args.device, amp=amp,
            seed=args.seed, progress=progress, periodic=periodic, domain=domain,
            num_workers=args.workers,
        )
    if rank == 0:
        parameters = sum(p.numel() * (2 if p.is_complex() else 1) for p in trainer.model.parameters())
        print(f"training {args.model} ({parameters:,} parameters) on {data} "
              f"[{_spatial_label(x0.shape[1:])}]: {len(train)} train, {len(val) if val else 0} val, "
              f"{len(test) if test else 0} test samples; device {trainer.device}"
              + (f", {trainer.world_size} processes" if trainer.world_size > 1 else ""))
    try:
        trainer.fit()
    except KeyboardInterrupt:
        if rank == 0:
            print(f"interrupted: state saved in {out / CHECKPOINT_NAME}; continue with "
                  f"`pdesuite train {args.model} --data {data} --out {out} --epochs {args.epochs} --resume`",
                  file=sys.stderr)
        return 130
    if rank != 0:
        return 0

    best = load_trained(out, device=trainer.device)
    summary: dict[str, Any] = {"model": args.model, "best_epoch": best.epoch,
                               "resolution": list(x0.shape[1:])}
    report = test if test is not None else val
    if report is not None:
        metrics = best.evaluate(report)
        summary.update(split="test" if test is not None else "val", **metrics)
        print(f"{summary['split']} relative L2 {metrics['rel_l2']:.4g}, H1 {metrics['h1']:.4g} "
              f"({metrics['n']} samples, best epoch {best.epoch})")
        plot_predictions(best, report, out / PREDICTIONS_PNG)
    else:
        plot_predictions(best, train, out / PREDICTIONS_PNG)
    (out / TEST_METRICS_JSON).write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'metrics.csv'}, {out / 'best.pt'} and {out / PREDICTIONS_PNG}")
    return 0


# -------------------------------------------------------------------------------- evaluate
def run_evaluate(args: argparse.Namespace) -> int:
    """Handler of ``pdesuite evaluate``: relative L2 per data file and resolution."""
    from pdesuite.operators.trainer import BEST_NAME, CHECKPOINT_NAME, load_trained

    run = Path(args.run)
    if run.is_dir():
        run = run / (BEST_NAME if args.checkpoint == "best" else CHECKPOINT_NAME)
    trained = load_trained(run, device=args.device)
    trained_at = list(trained.input_shape[1:])
    resolutions: list[Optional[list[int]]] = [None] + [list(r) for r in (args.resolution or [])]
    rows = []
    for data in args.data:
        for resolution in resolutions:
            dataset = _open_split(Path(data), args.split, args.split_fractions, resolution)
            if dataset is None:
                print(f"pdesuite evaluate: {data} has no samples in split {args.split!r}", file=sys.stderr)
                return 2
            shape = list(dataset[0][0].shape[1:])
            metrics = trained.evaluate(dataset, batch_size=args.batch_size)
            rows.append({"data": str(data), "split": args.split, "resolution": shape,
                         "zero_shot": shape != trained_at, **metrics})
    print(f"{run} (trained at {_spatial_label(trained_at)}, epoch {trained.epoch})")
    header = f"{'data':<28} {'split':<5} {'resolution':>10} {'samples':>7} {'rel_l2':>10} {'h1':>10}"
    print(header)
    for row in rows:
        label = _spatial_label(row["resolution"]) + ("*" if row["zero_shot"] else "")
        print(f"{Path(row['data']).name:<28} {row['split']:<5} {label:>10} {row['n']:>7} "
              f"{row['rel_l2']:>10.4g} {row['h1']:>10.4g}")
    if any(row["zero_shot"] for row in rows):
        print("* zero-shot: a resolution the model was not trained at")
    if args.json is not None:
        Path(args.json).write_text(json.dumps({"checkpoint": str(run), "trained_at": trained_at,
                                               "results": rows}, indent=2))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Standalone entry (``python -m pdesuite.operators.train_cli train|evaluate ...``) until
    ``pdesuite.cli`` wires these in."""
    parser = argparse.ArgumentParser(prog="pdesuite")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_arguments(sub.add_parser("train", help="train a neural operator on a dataset"))
    add_evaluate_arguments(sub.add_parser("evaluate", help="evaluate a trained operator"))
    args = parser.parse_args(argv)
    return run_train(args) if args.command == "train" else run_evaluate(args)


if __name__ == "__main__":
    raise SystemExit(main())
