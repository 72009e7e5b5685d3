"""``pdesuite forecast``: learn the dynamics of trajectories, forecast held-out ones, report.

    pdesuite forecast koopman --data traj.h5 --method edmd|kernel|hankel|mp|deep --steps N \\
        --out run/ [--dictionary rbf --centres 100] [--rank R] [--ridge A] [--delays D]
        [--test-fraction 0.2] [--seed 0] [--certified EPS] [--overwrite]

The data are the trajectories ``[n, T, C, *spatial]`` of a ``generate``d time-dependent HDF5
file (``pdesuite generate burgers ...``), or an ``.npy``/``.npz`` array of that shape (key
``trajectories`` in an ``.npz``). They are split by trajectory (``--test-fraction``, seeded); the
model is fitted on the training ones and forecasts every test trajectory from its first frame
(its first ``D`` frames with ``--delays D``). ``--out`` receives

- ``forecasts.h5``: ``forecasts`` ``[n_test, steps + 1, C, *spatial]`` (index 0: the last given
  frame), ``truth`` (the test frames over the same horizon, as far as they go), the file's
  sample indices of the ``train`` and ``test`` trajectories; with ``--certified``, also
  ``forecasts_all_modes`` (the plain forecast);
- ``errors.json``: relative L2 error per step (mean over the test trajectories, and per
  trajectory), that of persistence (the first frame held), the fitted spectrum with its
  residuals, the options and the fit time;
- ``error_vs_horizon.png`` and ``eigenvalues.png`` (the spectrum coloured by residual);
- ``model/``: the fitted estimator (``load_estimator("run/model")``; JSON and ``.npz``).

An existing, non-empty ``--out`` is refused unless ``--overwrite``. Progress goes to stderr
(``--quiet`` silences it), a one-line summary to stdout; an error is one line
``pdesuite forecast <family>: ...`` and exit status 1.

Adding a model family
---------------------
Each ``pdesuite forecast <family>`` is one entry of :data:`FORECASTERS`: its help line and the
module, argument function and run function to import when the command line is built
(``koopman`` here, ``ssm`` in :mod:`pdesuite.dynamics.ssm.cli`). A new family adds one line
there, and can reuse the shared steps below: :func:`prepare_out_dir`, :func:`load_split`,
:func:`horizon_errors`, :func:`write_forecasts`, :func:`write_errors`, :func:`plot_errors`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = [
    "FORECASTERS",
    "SplitData",
    "add_arguments",
    "add_koopman_arguments",
    "horizon_errors",
    "load_split",
    "plot_errors",
    "prepare_out_dir",
    "run",
    "run_koopman",
    "write_errors",
    "write_forecasts",
]

EXIT_ERROR = 1
FORECASTS_H5 = "forecasts.h5"
ERRORS_JSON = "errors.json"
ERRORS_PNG = "error_vs_horizon.png"
EIGENVALUES_PNG = "eigenvalues.png"
MODEL_DIR = "model"
#: What a run writes into ``--out``; ``--overwrite`` replaces these and leaves other files alone.
OUTPUTS = (FORECASTS_H5, ERRORS_JSON, ERRORS_PNG, EIGENVALUES_PNG, MODEL_DIR)

# ---------------------------------------------------------------------------------------------
# The registry of model families: name -> (help, module, add_arguments, run); a new family adds
# one line. The modules are imported when the command line is built, so they must not import
# torch at their top.
# ---------------------------------------------------------------------------------------------
FORECASTERS: dict[str, tuple[str, str, str, str]] = {
    "koopman": ("fit a Koopman operator (EDMD, kernel, Hankel, mpEDMD, deep) and forecast",
                __name__, "add_koopman_arguments", "run_koopman"),
    "ssm": ("train a state-space model (S4D, DSS, S5, STU) and forecast",
            "pdesuite.dynamics.ssm.cli", "add_arguments", "run"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``forecast`` subcommands, one per entry of :data:`FORECASTERS`."""
    families = parser.add_subparsers(dest="family", metavar="FAMILY")
    for name, (help_text, module_name, add_name, run_name) in FORECASTERS.items():
        module = importlib.import_module(module_name)
        sub = families.add_parser(name, help=help_text, description=help_text)
        getattr(module, add_name)(sub)
        sub.set_defaults(forecast_run=getattr(module, run_name))


def run(args: argparse.Namespace) -> int:
    """Dispatch ``pdesuite forecast <family>``; without a family, list them."""
    if getattr(args, "forecast_run", None) is None:
        names = ", ".join(FORECASTERS)
        print(f"pdesuite forecast: choose a model family ({names}); e.g. pdesuite forecast "
              "koopman --help", file=sys.stderr)
        return EXIT_ERROR
    return int(args.forecast_run(args) or 0)


# ------------------------------------------------------------------------- shared steps
@dataclass(frozen=True)
class SplitData:
    """Trajectories split by trajectory.

    Attributes:
        train, test: float64 ``[n_train, T, C, *spatial]`` and ``[n_test, T, C, *spatial]``.
        train_indices, test_indices: the samples' indices in the file (or array).
        frame_interval: time between frames, or None when the file does not record it.
        family: the PDE family's name, or None for an array.
    """

    train: np.ndarray
    test: np.ndarray
    train_indices: np.ndarray
    test_indices: np.ndarray
    frame_interval: Optional[float]
    family: Optional[str]


def prepare_out_dir(out: Any, overwrite: bool) -> Path:
    """``out`` as a directory to write into: created, or refused when it holds files.

    Raises FileExistsError (``--out``) for a non-empty directory without ``overwrite``, or a
    file; with ``overwrite``, the previous run's outputs (:data:`OUTPUTS`) are replaced.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out: {out} is a file; expected a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"--out: {out} exists and is not empty; pass --overwrite to "
                              "replace its results")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _read_array(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    with np.load(path, allow_pickle=False) as archive:
        if "trajectories" not in archive.files:
            raise ValueError(f"--data: {path} has no 'trajectories' array (it holds "
                             f"{archive.files})")
        return archive["trajectories"]


def _split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The trajectory indices of :func:`train_test_split`'s two sides, by splitting the
    indices themselves (as constant two-frame trajectories)."""
    from pdesuite.dynamics.koopman import train_test_split

    tagged = np.repeat(np.arange(n, dtype=np.float64)[:, None, None], 2, axis=1)  # [n, 2, 1]
    train, test = train_test_split(tagged, test_fraction=test_fraction, seed=seed)
    return train[:, 0, 0].astype(np.int64), test[:, 0, 0].astype(np.int64)


def load_split(path: Any, test_fraction: float, seed: int) -> SplitData:
    """Read trajectories ``[n, T, C, *spatial]`` (HDF5 of ``generate``, ``.npy`` or ``.npz``)
    and split them by trajectory, seeded.

    Raises FileNotFoundError/ValueError naming ``--data`` for a missing or unusable file, too
    few trajectories, or NaN.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--data: {path} not found")
    if path.suffix in (".npy", ".npz"):
        trajectories = np.asarray(_read_array(path))
        if trajectories.dtype.kind not in "biuf":
            raise ValueError(f"--data: expected real numbers, got dtype {trajectories.dtype}")
        trajectories = trajectories.astype(np.float64)
        indices = np.arange(len(trajectories))
        interval, family = None, None
    else:
        from pdesuite.dynamics.koopman import read_trajectories

        data = read_trajectories(path)
        trajectories, indices = data.trajectories, data.indices
        interval, family = data.frame_interval, data.family
    if trajectories.ndim < 3:
        raise ValueError(f"--data: expected trajectories [n, T, *state], got shape "
                         f"{trajectories.shape}")
    if len(trajectories) < 2:
        raise ValueError(f"--data: {len(trajectories)} trajectory; a train/test split needs "
                         "at least 2")
    if not np.all(np.isfinite(trajectories)):
        raise ValueError(f"--data: {path} contains NaN or inf")
    train, test = _split_indices(len(trajectories), test_fraction, seed)
    return SplitData(trajectories[train], trajectories[test], indices[train], indices[test],
                     interval, family)


def horizon_errors(forecasts: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Relative L2 error per trajectory and step, ``[n, H + 1]``.

    ``forecasts`` ``[n, steps + 1, *state]`` against ``truth`` ``[n, H + 1, *state]`` with
    ``H <= steps`` (the frames the data have): ``‖f_t − x_t‖ / ‖x_t‖`` over the whole state
    (NaN where ``x_t`` vanishes).
    """
    horizon = truth.shape[1]
    difference = (forecasts[:, :horizon] - truth).reshape(len(truth), horizon, -1)
    norms = np.linalg.norm(truth.reshape(len(truth), horizon, -1), axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, np.linalg.norm(difference, axis=2) / norms, np.nan)


def write_forecasts(path: Path, forecasts: dict[str, np.ndarray], truth: np.ndarray,
                    split: SplitData, attributes: dict[str, Any]) -> None:
    """``forecasts.h5``: each forecast array, ``truth``, ``train``/``test`` sample indices, and
    ``attributes`` (JSON-able values) as file attributes."""
    import h5py

    with h5py.File(path, "w") as handle:
        for name, values in forecasts.items():
            handle.create_dataset(name, data=values)
        handle.create_dataset("truth", data=truth)
        handle.create_dataset("train", data=split.train_indices)
        handle.create_dataset("test", data=split.test_indices)
        for key, value in attributes.items():
            handle.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value


def write_errors(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n", encoding="utf-8")


def plot_errors(path: Path, curves: dict[str, np.ndarray], title: str,
                frame_interval: Optional[float]) -> None:
    """Relative L2 against the step (log scale), one line per entry of ``curves``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, values in curves.items():
        steps = np.arange(len(values))
        axes.semilogy(steps[1:], values[1:], marker=".", label=label)
    unit = f" (× {frame_interval:g} time units)" if frame_interval else ""
    axes.set_xlabel(f"step{unit}")
    axes.set_ylabel("relative L2 error (mean over test trajectories)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.savefig(path, dpi=110)


def _plot_spectrum(path: Path, eigenvalues: np.ndarray, residuals: np.ndarray,
                   title: str, certified: Optional[float]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    circle = np.exp(2j * np.pi * np.linspace(0.0, 1.0, 400))
    axes.plot(circle.real, circle.imag, color="0.6", linewidth=0.8)
    finite = np.where(np.isfinite(residuals), residuals, np.nanmax(residuals[np.isfinite(
        residuals)], initial=1.0))
    shown = np.maximum(finite, 1e-16)
    points = axes.scatter(eigenvalues.real, eigenvalues.imag, c=shown, s=18, cmap="viridis",
                          norm=LogNorm(vmin=shown.min(), vmax=max(shown.max(), shown.min() * 10)))
    if certified is not None:
        kept = residuals <= certified
        axes.scatter(eigenvalues.real[kept], eigenvalues.imag[kept], s=60, facecolors="none",
                     edgecolors="red", label=f"residual <= {certified:g}")
        axes.legend(loc="lower left")
    figure.colorbar(points, ax=axes, label="residual")
    axes.set_aspect("equal")
    axes.set_xlabel("Re λ")
    axes.set_ylabel("Im λ")
    axes.set_title(title)
    figure.savefig(path, dpi=110)


def _say(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"[forecast] {message}", file=sys.stderr, flush=True)


def _fail(family: str, error: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    print(f"pdesuite forecast {family}: {lines[0] if lines else type(error).__name__}",
          file=sys.stderr)
    return EXIT_ERROR


# ------------------------------------------------------------------------------ koopman
METHODS = ("edmd", "kernel", "hankel", "mp", "deep")
DICTIONARY_NAMES = ("identity", "monomials", "rbf", "fourier", "rff")
#: Options that only some methods use: flag -> (destination, methods).
_METHOD_OPTIONS = {
    "--dictionary": ("dictionary", ("edmd", "hankel", "mp")),
    "--ridge": ("ridge", ("edmd", "hankel", "deep")),
    "--delays": ("delays", ("hankel",)),
    "--kernel": ("kernel", ("kernel",)),
    "--lengthscale": ("lengthscale", ("kernel",)),
    "--latent-dim": ("latent_dim", ("deep",)),
    "--epochs": ("epochs", ("deep",)),
    "--device": ("device", ("deep",)),
}


def add_koopman_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pdesuite forecast koopman``."""
    parser.add_argument("--data", required=True, help="trajectories: a generated HDF5 file, "
                        "or .npy/.npz [n, T, C, *spatial]")
    parser.add_argument("--method", choices=METHODS, default="edmd",
                        help="estimator (default edmd)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps to forecast (default: as many as the test trajectories hold)")
    parser.add_argument("--out", required=True, help="run directory for the results")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of an existing --out")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="share of trajectories held out (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="split, k-means and training seed")
    parser.add_argument("--certified", type=float, default=None, metavar="EPS",
                        help="forecast with the eigenpairs of residual <= EPS only")
    parser.add_argument("--rank", type=int, default=None, help="rank truncation")
    parser.add_argument("--ridge", type=float, default=None,
                        help="ridge (Tikhonov) parameter (edmd, hankel: 0; deep: 1e-3)")
    parser.add_argument("--dictionary", choices=DICTIONARY_NAMES, default=None,
                        help="observables of edmd/hankel/mp (default identity)")
    parser.add_argument("--degree", type=int, default=2,
                        help="monomial degree; polynomial kernel degree (default 2)")
    parser.add_argument("--centres", type=int, default=50,
                        help="rbf: k-means centres (default 50)")
    parser.add_argument("--features", type=int, default=100,
                        help="rff: random features (default 100)")
    parser.add_argument("--wavenumbers", type=int, default=4,
                        help="fourier: harmonics per coordinate (default 4)")
    parser.add_argument("--delays", type=int, default=None, help="hankel: window (default 10)")
    parser.add_argument("--kernel", default=None,
                        help="kernel: linear, polynomial, gaussian (default), laplacian")
    parser.add_argument("--lengthscale", type=float, default=None,
                        help="kernel: length scale (default the median distance)")
    parser.add_argument("--latent-dim", type=int, default=None, help="deep: latent size (16)")
    parser.add_argument("--epochs", type=int, default=None, help="deep: epochs (default 200)")
    parser.add_argument("--device", default=None, help="deep: torch device (default cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--debug", action="store_true", help="tracebacks on errors")


def _check_method_options(args: argparse.Namespace) -> None:
    for flag, (destination, methods) in _METHOD_OPTIONS.items():
        if getattr(args, destination) is not None and args.method not in methods:
            raise ValueError(f"{flag}: not an option of --method {args.method} (only "
                             f"{', '.join(methods)})")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps: must be >= 1, got {args.steps}")
    if args.certified is not None and not args.certified > 0:
        raise ValueError(f"--certified: must be > 0, got {args.certified}")
    if not 0.0 < args.test_fraction < 1.0:
        raise ValueError(f"--test-fraction: must be in (0, 1), got {args.test_fraction}")


def _dictionary(args: argparse.Namespace) -> Any:
    from pdesuite.dynamics import koopman

    name = args.dictionary or "identity"
    if name == "identity":
        return koopman.Identity()
    if name == "monomials":
        return koopman.Monomials(args.degree)
    if name == "rbf":
        return koopman.RadialBasis(args.centres, seed=args.seed)
    if name == "fourier":
        return koopman.FourierFeatures(args.wavenumbers)
    return koopman.RandomFourierFeatures(args.features, seed=args.seed)


def build_estimator(args: argparse.Namespace) -> Any:
    """The estimator that ``--method`` and its options describe (checked, not fitted)."""
    from pdesuite.dynamics import koopman

    ridge = 0.0 if args.ridge is None else args.ridge
    if args.method == "edmd":
        return koopman.EDMD(_dictionary(args), ridge=ridge, rank=args.rank)
    if args.method == "hankel":
        return koopman.HankelDMD(delays=10 if args.delays is None else args.delays,
                                 rank=args.rank, ridge=ridge, dictionary=_dictionary(args))
    if args.method == "mp":
        return koopman.MeasurePreservingEDMD(_dictionary(args), rank=args.rank)
    if args.method == "kernel":
        return koopman.KernelEDMD(args.kernel or "gaussian", degree=args.degree,
                                  lengthscale=args.lengthscale, rank=args.rank)
    from pdesuite.dynamics.koopman.deep import DeepKoopman

    return DeepKoopman(latent_dim=16 if args.latent_dim is None else args.latent_dim,
                       ridge=1e-3 if args.ridge is None else args.ridge,
                       epochs=200 if args.epochs is None else args.epochs, seed=args.seed,
                       device=args.device or "cpu")


def _describe(args: argparse.Namespace, model: Any) -> str:
    parts = [args.method]
    if args.method in ("edmd", "hankel", "mp"):
        parts.append(f"dictionary {args.dictionary or 'identity'}")
    if getattr(model, "delays", 1) > 1:
        parts.append(f"delays {model.delays}")
    if args.rank is not None:
        parts.append(f"rank {args.rank}")
    return ", ".join(parts)


def run_koopman(args: argparse.Namespace) -> int:
    """Run ``pdesuite forecast koopman`` (see the module docstring); returns the exit status."""
    try:
        return _run_koopman(args)
    except (ValueError, TypeError, RuntimeError, KeyError, OSError,
            np.linalg.LinAlgError) as error:
        return _fail("koopman", error, bool(args.debug))


def _run_koopman(args: argparse.Namespace) -> int:
    _check_method_options(args)
    model = build_estimator(args)
    out = prepare_out_dir(args.out, args.overwrite)
    split = load_split(args.data, args.test_fraction, args.seed)
    delays = model.delays
    frames = split.test.shape[1]
    if frames < delays + 1:
        raise ValueError(f"--delays: {delays} needs trajectories of at least {delays + 1} "
                         f"frames, the data have {frames}")
    available = frames - delays
    steps = available if args.steps is None else args.steps
    _say(args, f"{len(split.train)} train / {len(split.test)} test trajectories of {frames} "
               f"frames, state {list(split.test.shape[2:])}, from {args.data}")
    _say(args, f"fitting {_describe(args, model)} ...")
    started = time.perf_counter()
    model.fit(split.train)
    fit_seconds = time.perf_counter() - started
    _say(args, f"fitted in {fit_seconds:.2f} s; forecasting {steps} steps")

    x0 = split.test[:, :delays] if delays > 1 else split.test[:, 0]
    plain = model.predict(x0, steps)
    forecasts = {"forecasts": plain}
    if args.certified is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            certified = model.predict(x0, steps, certified=args.certified)
        for warning in caught:
            _say(args, f"warning: {warning.message}")
        forecasts = {"forecasts": certified, "forecasts_all_modes": plain}
    truth = split.test[:, delays - 1:delays + min(steps, available)]
    errors = {name: horizon_errors(values, truth) for name, values in forecasts.items()}
    persistence = horizon_errors(np.repeat(truth[:, :1], truth.shape[1], axis=1), truth)
    eigenvalues, residuals = model.eigenvalues, model.residuals

    _say(args, f"writing {out}")
    options = {key: value for key, value in vars(args).items()
               if key not in ("handler", "forecast_run", "accepts_anything")}
    write_forecasts(out / FORECASTS_H5, forecasts, truth, split,
                    {"method": args.method, "delays": delays, "start_frame": delays - 1,
                     "options": options})
    payload = {
        "method": args.method, "estimator": type(model).__name__, "options": options,
        "data": {"path": str(args.data), "family": split.family,
                 "frame_interval": split.frame_interval, "state_shape": list(split.test.shape[2:]),
                 "frames": frames, "train": split.train_indices.tolist(),
                 "test": split.test_indices.tolist()},
        "start_frame": delays - 1, "steps": steps, "fit_seconds": fit_seconds,
        "relative_l2": np.nanmean(errors["forecasts"], axis=0).tolist(),
        "relative_l2_per_trajectory": errors["forecasts"].tolist(),
        "persistence": np.nanmean(persistence, axis=0).tolist(),
        "certified": args.certified,
        "spectrum": {"real": eigenvalues.real.tolist(), "imag": eigenvalues.imag.tolist(),
                     "residual": residuals.tolist()},
    }
    if args.certified is not None:
        payload["relative_l2_all_modes"] = np.nanmean(errors["forecasts_all_modes"],
                                                      axis=0).tolist()
        payload["n_certified"] = int(model.certified(args.certified).sum())
    write_errors(out / ERRORS_JSON, payload)
    curves = {f"{args.method}" + (f", certified ε={args.certified:g}" if args.certified else ""):
              np.asarray(payload["relative_l2"])}
    if args.certified is not None:
        curves[f"{args.method}, all modes"] = np.asarray(payload["relative_l2_all_modes"])
    curves["persistence"] = np.asarray(payload["persistence"])
    title = f"{split.family or Path(args.data).name}: {_describe(args, model)}"
    plot_errors(out / ERRORS_PNG, curves, title, split.frame_interval)
    _plot_spectrum(out / EIGENVALUES_PNG, eigenvalues, residuals,
                   f"{_describe(args, model)}: eigenvalues", args.certified)
    model.save(out / MODEL_DIR, overwrite=True)

    error = np.asarray(payload["relative_l2"])
    last = len(error) - 1
    print(f"forecast koopman {args.method}: relative L2 {error[1]:.3g} at step 1, "
          f"{error[last]:.3g} at step {last} (persistence {payload['persistence'][last]:.3g}); "
          f"{len(split.train)} train / {len(split.test)} test trajectories; fit "
          f"{fit_seconds:.2f} s; results in {os.fspath(out)}")
    return 0

