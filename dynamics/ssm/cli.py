"""``pdesuite forecast ssm``: train an SSM time-stepper on trajectories, forecast held-out ones.

    pdesuite forecast ssm --data traj.h5 --layer s4d|dss|s5|stu --steps N --out run/
        [--frames-in 10] [--d-model 32] [--n-layers 2] [--d-state 16] [--trunk fno
        --trunk-channels 16 --trunk-width 16 --trunk-modes 8 --trunk-layers 2]
        [--epochs 100] [--lr 3e-3] [--batch-size 8] [--rollout-steps 5] [--rollout-weight 1]
        [--test-fraction 0.2] [--seed 0] [--device cpu] [--overwrite] [--quiet] [--debug]

The data and their split are those of ``pdesuite forecast koopman`` (a ``generate``d HDF5 file,
or ``.npy``/``.npz`` ``[n, T, C, *spatial]``; split by trajectory, seeded). An
:class:`~pdesuite.dynamics.ssm.forecaster.SSMForecaster` is trained on the training
trajectories and forecasts every test trajectory from its first ``--frames-in`` frames.
``--out`` receives the Koopman run's files:

- ``forecasts.h5``: ``forecasts`` ``[n_test, steps + 1, C, *spatial]`` (index 0: the last given
  frame, frame ``frames_in − 1``), ``truth``, the ``train``/``test`` sample indices;
- ``errors.json``: relative L2 per step (mean and per trajectory), persistence, the options,
  the fit time, the parameters, the time per epoch and the training losses;
- ``error_vs_horizon.png``;
- ``model/``: the trained forecaster (``SSMForecaster.load("run/model")``).

torch is imported when the command runs, not when its options are listed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_arguments", "build_forecaster", "run"]

LAYER_NAMES = ("s4d", "dss", "s5", "stu")
EXIT_ERROR = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pdesuite forecast ssm``."""
    parser.add_argument("--data", required=True, help="trajectories: a generated HDF5 file, "
                        "or .npy/.npz [n, T, C, *spatial]")
    parser.add_argument("--layer", choices=LAYER_NAMES, default="s4d",
                        help="SSM layer (default s4d)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps to forecast (default: as many as the test trajectories hold)")
    parser.add_argument("--out", required=True, help="run directory for the results")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of an existing --out")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="share of trajectories held out (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--frames-in", type=int, default=10,
                        help="frames a forecast starts from (default 10)")
    parser.add_argument("--d-model", type=int, default=32, help="SSM width (default 32)")
    parser.add_argument("--n-layers", type=int, default=2, help="SSM blocks (default 2)")
    parser.add_argument("--d-state", type=int, default=16,
                        help="state size of s4d, dss, s5 (default 16)")
    parser.add_argument("--trunk", choices=("none", "fno"), default="none",
                        help="spatial encoder of each frame (default none: pointwise)")
    parser.add_argument("--trunk-channels", type=int, default=16,
                        help="features per point from the trunk (default 16)")
    parser.add_argument("--trunk-width", type=int, default=16, help="FNO width (default 16)")
    parser.add_argument("--trunk-modes", type=int, default=8, help="FNO modes (default 8)")
    parser.add_argument("--trunk-layers", type=int, default=2,
                        help="FNO Fourier layers (default 2)")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs (default 100)")
    parser.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per batch (default 8)")
    parser.add_argument("--rollout-steps", type=int, default=5,
                        help="frames of the training rollout (default 5; 0: teacher forcing)")
    parser.add_argument("--rollout-weight", type=float, default=1.0,
                        help="weight of the rollout loss (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--debug", action="store_true", help="tracebacks on errors")


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"[forecast] {message}", file=sys.stderr, flush=True)


def _check(args: argparse.Namespace) -> None:
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps: must be >= 1, got {args.steps}")
    if not 0.0 < args.test_fraction < 1.0:
        raise ValueError(f"--test-fraction: must be in (0, 1), got {args.test_fraction}")
    for flag in ("frames_in", "d_model", "n_layers", "d_state", "trunk_channels", "trunk_width",
                 "trunk_modes", "trunk_layers", "epochs", "batch_size"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')}: must be >= 1, got "
                             f"{getattr(args, flag)}")
    if args.rollout_steps < 0:
        raise ValueError(f"--rollout-steps: must be >= 0, got {args.rollout_steps}")
    if not args.lr > 0:
        raise ValueError(f"--lr: must be > 0, got {args.lr}")


def build_forecaster(args: argparse.Namespace) -> Any:
    """The forecaster that the options describe (checked, not fitted)."""
    from pdesuite.dynamics.ssm.forecaster import SSMForecaster

    trunk = None if args.trunk == "none" else args.trunk
    trunk_options = ({"width": args.trunk_width, "modes": args.trunk_modes,
                      "layers": args.trunk_layers, "projection_width": 2 * args.trunk_width}
                     if trunk else None)
    return SSMForecaster(layer=args.layer, d_model=args.d_model, n_layers=args.n_layers,
                         d_state=args.d_state, trunk=trunk, trunk_channels=args.trunk_channels,
                         trunk_options=trunk_options, frames_in=args.frames_in,
                         rollout_steps=args.rollout_steps, rollout_weight=args.rollout_weight,
                         epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                         seed=args.seed, device=args.device, progress=not args.quiet,
                         verbose=False)


def _describe(args: argparse.Namespace) -> str:
    trunk = "pointwise" if args.trunk == "none" else f"{args.trunk} trunk"
    return (f"{args.layer}, d_model {args.d_model}, {args.n_layers} layers, {trunk}, "
            f"{args.frames_in} frames in")


def run(args: argparse.Namespace) -> int:
    """Run ``pdesuite forecast ssm`` (see the module docstring); returns the exit status."""
    try:
        return _run(args)
    except (ValueError, TypeError, RuntimeError, KeyError, OSError, FloatingPointError) as error:
        if args.debug:
            traceback.print_exc()
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        print(f"pdesuite forecast ssm: {lines[0] if lines else type(error).__name__}",
              file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    from pdesuite.dynamics import forecast_cli as shared

    _check(args)
    model = build_forecaster(args)
    out = shared.prepare_out_dir(args.out, args.overwrite)
    split = shared.load_split(args.data, args.test_fraction, args.seed)
    frames = split.test.shape[1]
    if frames < args.frames_in + 1:
        raise ValueError(f"--frames-in: {args.frames_in} needs trajectories of at least "
                         f"{args.frames_in + 1} frames, the data have {frames}")
    if split.test.ndim < 4:
        raise ValueError(f"--data: expected trajectories [n, T, C, *spatial] with a spatial "
                         f"axis, got shape {split.test.shape}")
    available = frames - args.frames_in
    steps = available if args.steps is None else args.steps
    _say(args, f"{len(split.train)} train / {len(split.test)} test trajectories of {frames} "
               f"frames, state {list(split.test.shape[2:])}, from {args.data}")
    _say(args, f"training {_describe(args)} for {args.epochs} epochs ...")
    started = time.perf_counter()
    model.fit(split.train)
    fit_seconds = time.perf_counter() - started
    _say(args, f"trained in {fit_seconds:.1f} s; forecasting {steps} steps")

    start = args.frames_in - 1
    forecasts = model.predict(split.test[:, :args.frames_in], steps)
    truth = split.test[:, start:start + 1 + min(steps, available)]
    errors = shared.horizon_errors(forecasts, truth)
    persistence = shared.horizon_errors(np.repeat(truth[:, :1], truth.shape[1], axis=1), truth)

    _say(args, f"writing {out}")
    options = {key: value for key, value in vars(args).items()
               if key not in ("handler", "forecast_run", "accepts_anything")}
    shared.write_forecasts(out / shared.FORECASTS_H5, {"forecasts": forecasts}, truth, split,
                           {"method": "ssm", "layer": args.layer, "start_frame": start,
                            "options": options})
    payload = {
        "method": "ssm", "layer": args.layer, "estimator": type(model).__name__,
        "options": options,
        "data": {"path": str(args.data), "family": split.family,
                 "frame_interval": split.frame_interval, "state_shape": list(split.test.shape[2:]),
                 "frames": frames, "train": split.train_indices.tolist(),
                 "test": split.test_indices.tolist()},
        "start_frame": start, "steps": steps, "fit_seconds": fit_seconds,
        "parameters": model.parameter_count, "epoch_seconds": model.epoch_seconds,
        "train_loss": [record["train_loss"] for record in model.history_],
        "relative_l2": np.nanmean(errors, axis=0).tolist(),
        "relative_l2_per_trajectory": errors.tolist(),
        "persistence": np.nanmean(persistence, axis=0).tolist(),
    }
    shared.write_errors(out / shared.ERRORS_JSON, payload)
    curves = {f"SSM ({args.layer})": np.asarray(payload["relative_l2"]),
              "persistence": np.asarray(payload["persistence"])}
    title = f"{split.family or Path(args.data).name}: {_describe(args)}"
    shared.plot_errors(out / shared.ERRORS_PNG, curves, title, split.frame_interval)
    model.save(out / shared.MODEL_DIR, overwrite=True)

    error = np.asarray(payload["relative_l2"])
    last = len(error) - 1
    print(f"forecast ssm {args.layer}: relative L2 {error[1]:.3g} at step 1, {error[last]:.3g} "
          f"at step {last} (persistence {payload['persistence'][last]:.3g}); "
          f"{len(split.train)} train / {len(split.test)} test trajectories; fit "
          f"{fit_seconds:.2f} s; results in {os.fspath(out)}")
    return 0
