"""``pdesuite train`` and ``pdesuite evaluate``: train an operator on a dataset file, evaluate it.

``pdesuite train fno --data darcy.h5 --epochs 100 --batch-size 20 --lr 1e-3 --out run/``
reads the file's ``train``, ``val`` and ``test`` splits (unnormalised: the trainer fits its own
normalisers on the training split), builds the model with the data's channel counts and
dimension, trains it with :class:`~pdesuite.operators.training.trainer.Trainer`, and writes into
``run/``: ``run.json`` (the command's own settings: model, data file, split, resolution),
``checkpoint.pt``, ``best.pt``, ``metrics.csv``, ``metrics.json``, ``test_metrics.json`` and
``predictions.png`` (input, truth, prediction and error for 3 test samples, best weights).

Run safety:

- An ``--out`` that already holds a run is refused unless ``--resume`` (continue it) or
  ``--overwrite`` (delete its files and start again) is given.
- ``--resume`` takes the model, the data file and every training setting from the run;
  ``--epochs`` (train longer), ``--patience``, ``--eval-every``, ``--device``, ``--workers`` and
  ``--no-progress`` may change. Any other option given that contradicts the run is refused, all
  contradictions in one message. A finished run stays finished unless ``--epochs`` is larger.
- Errors in the user's input (a missing file, a bad value) print one line
  ``pdesuite train: ...`` and exit with status 1; ``--debug`` shows the traceback instead.
- Ctrl-C finishes the current batch, writes the checkpoint, prints the command that resumes the
  run, and exits with status 130.

``pdesuite evaluate run/ --data other.h5 [--resolution 43 85]`` loads ``run/best.pt`` and
prints the relative L2 (and H1) error per data file and resolution. By default it scores the
test split of the run's own training file and the whole of any other file (``--split``
chooses). A resolution other than the training one is zero-shot super- (or sub-) resolution.

Models on a finite-element space (``spon``, ``spon-mg``) train on a file with a mesh (an FE
family's, e.g. ``poisson-fe``): the model is built on the file's space, takes the boundary data
from the input channel the mesh names, and scales its inputs and outputs by constants of the
training split kept in its config (the trainer's normalisers stay off: they would move the exact
boundary values). ``evaluate`` rebuilds it on each data file's mesh (``set_space``), so a file of
the same family at a finer ``resolution`` is zero-shot evaluation on a refined mesh, and reports
the errors in the FE norms (L2 through the mass matrix, H1 through mass plus stiffness) and the
largest error at the Dirichlet DoFs. A file without a mesh, or a mesh of another cell type or
degree than the model's, is a one-line error.

Wiring into ``pdesuite.cli``: ``add_train_arguments(parser)`` / ``run_train(args) -> int`` and
``add_evaluate_arguments(parser)`` / ``run_evaluate(args) -> int``. This module imports torch;
``pdesuite.cli`` imports it only when ``train`` or ``evaluate`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import re
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from pdesuite.operators.models import (
    FE_MODEL_NAMES,
    MODELS,
    build_fe_model,
    build_model,
    fe_data_arguments,
    rebind_fe_model,
)
from pdesuite.operators.training import (
    BEST_NAME,
    CHECKPOINT_NAME,
    METRICS_CSV,
    METRICS_JSON,
    PREDICTIONS_PNG,
    TrainConfig,
    Trainer,
    load_checkpoint,
    load_trained,
    plot_predictions,
)
from pdesuite.operators.training.checkpoint import seed_everything
from pdesuite.operators.training.datafiles import domain_lengths, open_split, subsample_stride

#: ``dcdm`` trains a learned preconditioner instead (:mod:`.preconditioning.cli`).
MODEL_NAMES = ("fno", "lsm", "mgno", *FE_MODEL_NAMES, "dcdm")
TEST_METRICS_JSON = "test_metrics.json"
RUN_JSON = "run.json"
#: The files a run directory holds; ``--overwrite`` deletes exactly these.
RUN_FILES = (CHECKPOINT_NAME, BEST_NAME, METRICS_CSV, METRICS_JSON, PREDICTIONS_PNG,
             TEST_METRICS_JSON, RUN_JSON)

#: Defaults of ``pdesuite train``. The parser leaves an option not given as None, so that a
#: resume can tell the options the user gave from the defaults.
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 100, "lr": 1e-3, "weight_decay": 1e-4, "optimizer": "adam", "scheduler": "step",
    "step_size": 100, "gamma": 0.5, "max_lr": None, "loss": "l2", "periodic": False,
    "eval_every": 1, "patience": None, "seed": 0, "amp": "auto", "batch_size": 20,
    "split_fractions": (0.8, 0.1, 0.1), "device": "auto", "workers": 0,
}
#: Options that define a training run: command-line name -> TrainConfig setting.
RUN_OPTIONS = {"lr": "lr", "weight_decay": "weight_decay", "optimizer": "optimizer",
               "scheduler": "scheduler", "step_size": "step_size", "gamma": "gamma",
               "max_lr": "max_lr", "loss": "loss", "periodic": "periodic", "seed": "seed",
               "batch_size": "batch_size", "amp": "amp"}
#: Options that a resume may change: command-line name -> TrainConfig setting.
RESUMABLE_OPTIONS = {"epochs": "epochs", "eval_every": "eval_every",
                     "patience": "early_stopping_patience", "workers": "num_workers",
                     "device": "device"}
#: Python setting names in error messages -> the option a command-line user knows.
_OPTION_NAMES = {
    **{setting: option for option, setting in {**RUN_OPTIONS, **RESUMABLE_OPTIONS}.items()},
    "resolution": "resolution",
    "split_fractions": "split_fractions",
}

__all__ = [
    "TRAIN_DEFAULTS",
    "add_evaluate_arguments",
    "add_train_arguments",
    "plot_predictions",
    "run_evaluate",
    "run_train",
    "subsample_stride",
]


class UserError(Exception):
    """A mistake in the command: printed as one line, exit status 1."""


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


def _add_common_arguments(parser: argparse.ArgumentParser, batch_default: str) -> None:
    parser.add_argument("--split-fractions", nargs=3, type=_fraction_or_count,
                        metavar=("TRAIN", "VAL", "TEST"), default=None,
                        help="train/val/test split of the file: fractions, or sample counts "
                             "when all three are integers (default 0.8 0.1 0.1)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"samples per batch (default {batch_default})")
    parser.add_argument(
        "--device", default=None, help="auto (default: cuda if available), cpu, cuda, cuda:N"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="DataLoader worker processes (default 0)"
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pdesuite train`` (positional: the model name, optional with --resume)."""
    parser.add_argument("model", nargs="?", choices=MODEL_NAMES,
                        help="the operator to train (with --resume: the run's own)")
    parser.add_argument("--data", type=Path, default=None,
                        help="a pdesuite HDF5 dataset file (with --resume: the run's own)")
    parser.add_argument("--out", type=Path, default=Path("run"),
                        help="run directory for checkpoints, logs and the figure (default run/)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs (default 100; with --resume: the run's, larger to extend it)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3)")
    parser.add_argument("--weight-decay", type=float, default=None, help="default 1e-4")
    parser.add_argument("--optimizer", choices=("adam", "adamw"), default=None, help="default adam")
    parser.add_argument("--scheduler", choices=("step", "onecycle", "none"), default=None,
                        help="step (StepLR, default), onecycle, or none")
    parser.add_argument(
        "--step-size", type=int, default=None, help="StepLR period in epochs (default 100)"
    )
    parser.add_argument("--gamma", type=float, default=None, help="StepLR factor (default 0.5)")
    parser.add_argument("--max-lr", type=float, default=None, help="OneCycle peak (default --lr)")
    parser.add_argument(
        "--loss", choices=("l2", "h1"), default=None, help="relative L2 (default) or H1"
    )
    parser.add_argument(
        "--periodic",
        action="store_true",
        default=None,
        help="the data are periodic: FFT derivatives for H1 (default: finite differences)",
    )
    parser.add_argument(
        "--eval-every", type=int, default=None, help="validate every N epochs (default 1)"
    )
    parser.add_argument("--patience", type=int, default=None,
                        help="early stopping after N evaluations without improvement (default off)")
    parser.add_argument("--resolution", type=int, nargs="+", default=None, metavar="N",
                        help="subsample the grid to N points per axis (one N, or one per axis)")
    parser.add_argument("--model-arg", type=_model_argument, action="append", default=[],
                        metavar="KEY=VALUE", help="model setting, e.g. --model-arg width=16 "
                                                  "(JSON values; repeatable)")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the model init and the run (default 0)"
    )
    parser.add_argument("--amp", choices=("auto", "on", "off"), default=None,
                        help="mixed precision: auto (on with CUDA, default), on, off")
    parser.add_argument("--supervised", action="store_true", default=None,
                        help="dcdm only: train on residual -> error pairs of the stored solutions")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="dcdm only: stop training after this many seconds")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint.pt, with its own settings",
    )
    existing.add_argument("--overwrite", action="store_true",
                          help="delete the run in --out and start a new one")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (the per-epoch summary lines stay)")
    _add_common_arguments(parser, "20")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pdesuite evaluate`` (positional: the run directory or a checkpoint)."""
    parser.add_argument("run", type=Path, help="run directory (its best.pt) or a checkpoint file")
    parser.add_argument("--data", required=True, type=Path, action="append",
                        help="dataset file to evaluate on (repeatable)")
    parser.add_argument("--split", choices=("train", "val", "test", "all"), default=None,
                        help="which split of each file (default: the test split of the run's own "
                             "training file, all of any other file)")
    parser.add_argument("--resolution", type=int, nargs="+", action="append", default=None,
                        metavar="N", help="also evaluate subsampled to N points per axis "
                                          "(repeatable; default: the file's own grid)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="best.pt (default) or checkpoint.pt of a run directory")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    _add_common_arguments(parser, "the run's")


# ----------------------------------------------------------------------------- error paths
def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _cli_message(exc: BaseException) -> str:
    """The exception's message, with a leading Python setting name (``lr: ...``) given as the
    option a command-line user knows (``--lr: ...``)."""
    message = str(exc)
    match = re.match(r"([a-z_]+): ", message)
    if match and match.group(1) in _OPTION_NAMES:
        message = _option(_OPTION_NAMES[match.group(1)]) + message[len(match.group(1)):]
    return message.replace("pass model=", "pass the model").replace("overwrite=True", "--overwrite")


@contextlib.contextmanager
def _one_line_warnings(command: str) -> Iterator[None]:
    """Show warnings as ``pdesuite COMMAND: warning: ...`` lines on stderr."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"pdesuite {command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _run_command(command: str, handler: Callable[[argparse.Namespace], int],
                 args: argparse.Namespace) -> int:
    """Run ``handler``; a user error is one line and status 1, Ctrl-C status 130."""
    debug = bool(getattr(args, "debug", False))
    try:
        with _one_line_warnings(command):
            return handler(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\npdesuite {command}: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, OSError, FloatingPointError) as exc:
        if debug:
            raise
        print(f"pdesuite {command}: {_cli_message(exc)}", file=sys.stderr)
        return 1


def _existing_file(path: Path, option: str) -> Path:
    if not path.exists():
        raise UserError(f"{option} {path}: no such file")
    if not path.is_file():
        raise UserError(f"{option} {path}: not a file")
    return path


# ----------------------------------------------------------------------------------- train
def run_train(args: argparse.Namespace) -> int:
    """Handler of ``pdesuite train``; returns the exit status (0, 1 for a user error, 130 after
    Ctrl-C)."""
    return _run_command("train", _train, args)


def _given(args: argparse.Namespace, name: str) -> bool:
    value = getattr(args, name)
    return value is not None and value != []


def _setting(option: str, value: Any) -> Any:
    """A command-line value as the TrainConfig setting it sets."""
    if option == "scheduler":
        return None if value == "none" else value
    if option == "amp":
        return {"auto": "auto", "on": True, "off": False}[value]
    if option == "split_fractions":
        return list(value)
    return value


def _train(args: argparse.Namespace) -> int:
    if args.model == "dcdm":
        from pdesuite.operators.preconditioning.cli import train_dcdm

        return train_dcdm(args)
    for option in ("supervised", "max_seconds"):
        if getattr(args, option) is not None:
            raise UserError(f"--{option.replace('_', '-')} applies to dcdm only")
    out = Path(args.out)
    is_main = int(os.environ.get("RANK", "0") or 0) == 0
    if args.resume:
        session = _ResumedRun(args, out)
    else:
        session = _NewRun(args, out, is_main)
    return session.run(is_main)


class _Run:
    """What a new and a resumed run share: data, the training loop, the final report."""

    args: argparse.Namespace
    out: Path
    model_name: str
    data: Path
    split_fractions: list
    resolution: Optional[list[int]]

    def _open_data(self) -> None:
        self.train = open_split(self.data, "train", self.split_fractions, self.resolution)
        if self.train is None:
            raise UserError(f"{self.data} has no training samples with --split-fractions "
                            f"{' '.join(map(str, self.split_fractions))}")
        self.val = open_split(self.data, "val", self.split_fractions, self.resolution)
        self.test = open_split(self.data, "test", self.split_fractions, self.resolution)

    def _progress_settings(self) -> dict[str, Any]:
        return {"progress": not self.args.no_progress, "verbose": True}

    def run(self, is_main: bool) -> int:
        trainer = self.build_trainer(is_main)
        if trainer is None:
            return 0
        trainer.resume_hint = f"`{self.resume_command}`"
        if is_main:
            x0 = self.train[0][0]
            parameters = sum(
                p.numel() * (2 if p.is_complex() else 1) for p in trainer.model.parameters()
            )
            print(
                f"training {self.model_name} ({parameters:,} parameters) on {self.data} "
                f"[{_spatial_label(x0.shape[1:])}]: {len(self.train)} train, "
                f"{len(self.val) if self.val else 0} val, {len(self.test) if self.test else 0} "
                f"test samples; epochs {trainer.epoch + 1}-{trainer.epochs}; device "
                f"{trainer.device}"
                + (f", {trainer.world_size} processes" if trainer.world_size > 1 else "")
            )
        try:
            trainer.fit()
        except KeyboardInterrupt:
            # The trainer has written the checkpoint and printed the resume command.
            return 130
        if not is_main:
            return 0
        try:
            self.report(trainer.device)
        except KeyboardInterrupt:
            print(f"\npdesuite train: interrupted before the test metrics were written; "
                  f"`{self.resume_command}` writes them", file=sys.stderr)
            return 130
        return 0

    @property
    def resume_command(self) -> str:
        return f"pdesuite train --out {shlex.quote(str(self.out))} --resume"

    def _grid_convention(self) -> dict[str, str]:
        """``{"grid_convention": ...}`` of the training file for a model that takes one (FNO),
        so that its coordinate channel puts the points where the data has them; else ``{}``."""
        source = getattr(self.train, "dataset", self.train)
        convention = getattr(source, "grid_convention", "node")
        if self.model_name not in MODELS:
            return {}
        accepts = "grid_convention" in inspect.signature(MODELS[self.model_name]).parameters
        return {"grid_convention": convention} if accepts and convention in ("node", "cell") else {}

    def build_trainer(self, is_main: bool):
        raise NotImplementedError

    def _mesh(self):
        """The training file's mesh (FE models); a one-line error without one."""
        if self.resolution:
            raise UserError(f"--resolution subsamples a grid; {self.model_name} runs on the "
                            "file's mesh: generate the data at another resolution instead")
        return _mesh_of(self.train, self.data)

    def _saved_model(self, path: Path):
        """An FE model rebuilt from the checkpoint at ``path`` on the training file's mesh, or
        None for a grid model (the registry rebuilds those)."""
        return _fe_model_of(load_checkpoint(path), self._mesh()) if self._is_fe() else None

    def _is_fe(self) -> bool:
        return self.model_name in FE_MODEL_NAMES

    def report(self, device) -> None:
        """Test (else validation) metrics of best.pt, ``test_metrics.json`` and
        ``predictions.png``."""
        best_path = self.out / BEST_NAME
        best = load_trained(self.out, model=self._saved_model(best_path), device=device)
        summary: dict[str, Any] = {"model": self.model_name, "best_epoch": best.epoch,
                                   "resolution": list(self.train[0][0].shape[1:])}
        report = self.test if self.test is not None else self.val
        if report is not None:
            metrics = (fe_metrics(best, report, self._mesh()) if self._is_fe()
                       else best.evaluate(report))
            summary.update(split="test" if self.test is not None else "val", **metrics)
            print(f"{summary['split']} relative L2 {metrics['rel_l2']:.4g}, H1 {metrics['h1']:.4g} "
                  f"({metrics['n']} samples, best epoch {best.epoch})"
                  + (f"; FE norms, boundary error {metrics['boundary_error']:.3g}"
                     if "boundary_error" in metrics else ""))
        plot_predictions(
            best, report if report is not None else self.train, self.out / PREDICTIONS_PNG
        )
        (self.out / TEST_METRICS_JSON).write_text(json.dumps(summary, indent=2))
        print(
            f"wrote {self.out / METRICS_CSV}, {self.out / BEST_NAME} and "
            f"{self.out / PREDICTIONS_PNG}"
        )


class _NewRun(_Run):
    def __init__(self, args: argparse.Namespace, out: Path, is_main: bool) -> None:
        self.args, self.out = args, out
        if args.model is None:
            raise UserError(f"name the model to train: {', '.join(MODEL_NAMES)} "
                            "(only --resume takes the run's own)")
        if args.data is None:
            raise UserError("--data is required: a pdesuite HDF5 dataset file")
        self.model_name = args.model
        self.data = _existing_file(Path(args.data), "--data").resolve()
        values = {name: getattr(args, name) if _given(args, name) else default
                  for name, default in TRAIN_DEFAULTS.items()}
        self.split_fractions = _setting("split_fractions", values["split_fractions"])
        self.resolution = list(args.resolution) if args.resolution else None
        settings = {setting: _setting(option, values[option])
                    for option, setting in {**RUN_OPTIONS, **RESUMABLE_OPTIONS}.items()}
        self.config = TrainConfig(**settings, out_dir=out, **self._progress_settings())
        self.existing = [name for name in RUN_FILES if (out / name).exists()] if is_main else []
        if self.existing and not args.overwrite:
            raise UserError(
                f"{out} already holds a run ({', '.join(self.existing)}); pass --resume "
                "to continue it or --overwrite to replace it"
            )

    def build_trainer(self, is_main: bool):
        self._open_data()
        x0, y0 = self.train[0]
        config = self.config.replace(domain=domain_lengths(self.data, bool(self.config.periodic)))
        seed_everything(config.seed)
        model_args = dict(self.args.model_arg)
        base = {"in_channels": int(x0.shape[0]), "out_channels": int(y0.shape[0]),
                "ndim": x0.ndim - 1, **self._grid_convention()}
        if self.model_name in FE_MODEL_NAMES:
            mesh = self._mesh()
            base.update(_fe_data_arguments(self.train, mesh, self.data))
            # normalisers would move the exact boundary values; the model scales itself
            config = config.replace(normalize_inputs=False, normalize_outputs=False)
        try:
            if self.model_name in FE_MODEL_NAMES:
                model = build_fe_model(self.model_name, mesh, **{**base, **model_args})
            else:
                model = build_model(self.model_name, **{**base, **model_args})
        except (ValueError, TypeError) as exc:
            raise UserError(f"--model-arg: {str(exc).removeprefix('config: ')}") from None
        for name in self.existing:  # --overwrite, now that the new run is ready to start
            (self.out / name).unlink()
        trainer = Trainer(model, self.train, self.val, config)
        if is_main:
            record = {"model": self.model_name, "model_args": model_args, "data": str(self.data),
                      "split_fractions": self.split_fractions, "resolution": self.resolution}
            (self.out / RUN_JSON).write_text(json.dumps(record, indent=2))
        return trainer


class _ResumedRun(_Run):
    def __init__(self, args: argparse.Namespace, out: Path) -> None:
        self.args, self.out = args, out
        if not (out / CHECKPOINT_NAME).is_file():
            raise UserError(
                f"--resume: {out / CHECKPOINT_NAME} does not exist (no run to continue)"
            )
        self.checkpoint = load_checkpoint(out / CHECKPOINT_NAME)
        record_path = out / RUN_JSON
        self.record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        contradictions = self._contradictions()
        if contradictions:
            these, them = (("this option contradicts", "it") if len(contradictions) == 1
                           else ("these options contradict", "them"))
            raise UserError(f"--resume continues the run in {out} with its own settings, and "
                            f"{these} it: {'; '.join(contradictions)}. Leave {them} out to "
                            "continue the run, or pass --overwrite to start a new one")
        model_config = self._model_config()
        self.model_name = model_config.get("name") or self.record.get("model") or "model"
        if args.data is not None:
            self.data = _existing_file(Path(args.data), "--data").resolve()
        elif "data" in self.record:
            self.data = Path(self.record["data"])
            if not self.data.is_file():
                raise UserError(
                    f"the run's data file {self.data} is gone; pass --data with its new place"
                )
        else:
            raise UserError(f"{out} has no {RUN_JSON} recording its data file; pass --data")
        self.split_fractions = self.record.get("split_fractions") or (
            _setting("split_fractions", args.split_fractions) if args.split_fractions
            else list(TRAIN_DEFAULTS["split_fractions"]))
        self.resolution = self.record.get("resolution", args.resolution)

    def _model_config(self) -> dict[str, Any]:
        text = self.checkpoint.get("model_config")
        return json.loads(text) if text else {}

    def _contradictions(self) -> list[str]:
        """One phrase per option given on the command line that differs from the run."""
        args, saved = self.args, self.checkpoint["trainer_config"]
        model_config = self._model_config()
        found = []
        saved_name = model_config.get("name", self.record.get("model"))
        if args.model is not None and saved_name is not None and args.model != saved_name:
            found.append(f"model {args.model} (the run trains {saved_name})")
        for key, value in args.model_arg:
            if key not in model_config:
                found.append(
                    f"--model-arg {key}={json.dumps(value)} (the run's model has no {key})"
                )
            elif model_config[key] != _jsonable(value):
                found.append(f"--model-arg {key}={json.dumps(value)} (the run: "
                             f"{key}={json.dumps(model_config[key])})")
        for option, setting in RUN_OPTIONS.items():
            if _given(args, option) and _setting(option, getattr(args, option)) != saved[setting]:
                found.append(f"{_option(option)} {_shown(getattr(args, option))} (the run: "
                             f"{_shown(_saved_as_option(option, saved[setting]))})")
        recorded = {
            "data": self.record.get("data"),
            "split_fractions": self.record.get("split_fractions"),
            "resolution": self.record.get("resolution"),
        }
        current = {"data": str(Path(args.data).resolve()) if args.data is not None else None,
                   "split_fractions": _setting("split_fractions", args.split_fractions)
                   if args.split_fractions else None,
                   "resolution": list(args.resolution) if args.resolution else None}
        moved = recorded["data"] is not None and not Path(recorded["data"]).is_file()
        for name, value in current.items():
            if value is not None and name in self.record and value != recorded[name] \
                    and not (name == "data" and moved):
                found.append(f"{_option(name)} {_shown(value)} (the run: {_shown(recorded[name])})")
        epochs_done = int(self.checkpoint["epoch"])
        if args.epochs is not None and args.epochs < epochs_done:
            found.append(f"--epochs {args.epochs} (the run has done {epochs_done} epochs)")
        return found

    def build_trainer(self, is_main: bool):
        saved = self.checkpoint["trainer_config"]
        epochs = self.args.epochs if self.args.epochs is not None else int(saved["epochs"])
        patience = (
            self.args.patience
            if self.args.patience is not None
            else saved["early_stopping_patience"]
        )
        stopped = (
            bool(self.checkpoint["stopped_early"]) and patience == saved["early_stopping_patience"]
        )
        done = int(self.checkpoint["epoch"])
        if (done >= epochs or stopped) and (self.out / TEST_METRICS_JSON).is_file():
            if is_main:
                how = (
                    f"early stopping ended it at epoch {done}"
                    if stopped
                    else f"{done} of {epochs} epochs"
                )
                longer = [f"--epochs N (N > {done})"] if done >= epochs else []
                longer += ["a larger --patience"] if stopped else []
                print(f"pdesuite train: the run in {self.out} is finished ({how}); to train it "
                      f"longer, resume with {' and '.join(longer)}", file=sys.stderr)
            return None
        overrides = {setting: _setting(option, getattr(self.args, option))
                     for option, setting in RESUMABLE_OPTIONS.items() if _given(self.args, option)}
        self._open_data()
        return Trainer.resume(
            self.out, self.train, self.val, model=self._saved_model(self.out / CHECKPOINT_NAME),
            **overrides, **self._progress_settings()
        )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _saved_as_option(option: str, value: Any) -> Any:
    if option == "scheduler" and value is None:
        return "none"
    if option == "amp" and isinstance(value, bool):
        return "on" if value else "off"
    return value


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _spatial_label(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape)


# ---------------------------------------------------------------------- finite-element models
def _mesh_of(dataset, path: Path):
    """``dataset``'s mesh (through a subsampled view); a file without one is a UserError."""
    source = getattr(dataset, "dataset", dataset)
    try:
        return source.mesh_info
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _fe_data_arguments(train, mesh, path: Path) -> dict[str, Any]:
    """:func:`fe_data_arguments` of the training split; its ValueError as a UserError."""
    try:
        return fe_data_arguments(train, mesh)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None


def _fe_model_of(checkpoint: dict, mesh):
    """A fresh FE model of the checkpoint's config on ``mesh`` (weights not loaded)."""
    config = json.loads(checkpoint.get("model_config") or "{}")
    try:
        return build_fe_model(config, mesh)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def fe_metrics(trained, dataset, mesh, batch_size: Optional[int] = None) -> dict[str, Any]:
    """Relative errors in the FE norms, and the Dirichlet DoFs' error, of a trained FE model.

    Returns ``{"rel_l2", "h1", "boundary_error", "n", "skipped"}``: the means over the samples
    of ``‖e‖_M / ‖u‖_M`` and ``‖e‖_{M+K} / ‖u‖_{M+K}`` on ``mesh.space``, and the largest
    ``|prediction − data|`` at the Dirichlet DoFs over all samples (0 to round-off for SPON).
    """
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from pdesuite.operators.spon import FEH1Loss, FEL2Loss

    l2 = FEL2Loss(mesh.space, reduction="none").double()
    h1 = FEH1Loss(mesh.space, reduction="none").double()
    dofs = torch.as_tensor(np.array(mesh.dirichlet_dofs))
    loader = DataLoader(dataset, batch_size=int(batch_size or trained.batch_size))
    totals = {"rel_l2": 0.0, "h1": 0.0}
    boundary, count = 0.0, 0
    for x, y in loader:
        prediction = trained.predict(x).double()
        y = y.double()
        totals["rel_l2"] += float(l2(prediction, y).sum())
        totals["h1"] += float(h1(prediction, y).sum())
        if dofs.numel():
            boundary = max(boundary, float((prediction - y)[..., dofs].abs().max()))
        count += x.shape[0]
    if count == 0:
        raise ValueError("data: no samples to evaluate on")
    return {"rel_l2": totals["rel_l2"] / count, "h1": totals["h1"] / count,
            "boundary_error": boundary, "n": count, "skipped": 0}


# -------------------------------------------------------------------------------- evaluate
def run_evaluate(args: argparse.Namespace) -> int:
    """Handler of ``pdesuite evaluate``: relative L2 per data file and resolution."""
    return _run_command("evaluate", _evaluate, args)


def _evaluate(args: argparse.Namespace) -> int:
    run = Path(args.run)
    if run.is_dir():
        run = run / (BEST_NAME if args.checkpoint == "best" else CHECKPOINT_NAME)
    elif not run.exists():
        raise UserError(f"{args.run}: no such run directory or checkpoint file")
    files = [_existing_file(Path(data), "--data") for data in args.data]
    checkpoint = load_checkpoint(run)
    fe_model = json.loads(checkpoint.get("model_config") or "{}").get("name") in FE_MODEL_NAMES
    model = None
    if fe_model:
        if args.resolution:
            raise UserError("--resolution subsamples a grid; a model on a mesh is evaluated on "
                            "another mesh by giving a file generated at that resolution")
        first = _mesh_of(open_split(files[0], "all", TRAIN_DEFAULTS["split_fractions"], None),
                         files[0])
        model = _fe_model_of(checkpoint, first)
    trained = load_trained(run, model=model, device=args.device or "auto")
    record_path = run.parent / RUN_JSON
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    trained_at = list(trained.input_shape[1:])
    resolutions: list[Optional[list[int]]] = [None] + [list(r) for r in (args.resolution or [])]
    rows = []
    for data in files:
        own = "data" in record and data.resolve() == Path(record["data"])
        split = args.split or ("test" if own else "all")
        fractions = (args.split_fractions or (own and record.get("split_fractions"))
                     or TRAIN_DEFAULTS["split_fractions"])
        for resolution in resolutions:
            dataset = open_split(data, split, fractions, resolution)
            if dataset is None:
                raise UserError(f"{data} has no samples in split {split!r}")
            shape = list(dataset[0][0].shape[1:])
            if fe_model:
                mesh = _mesh_of(dataset, data)
                try:
                    rebind_fe_model(trained.model, mesh)
                except ValueError as exc:
                    raise UserError(f"{data}: {exc}") from None
                metrics = fe_metrics(trained, dataset, mesh, args.batch_size)
            else:
                metrics = trained.evaluate(dataset, batch_size=args.batch_size)
            rows.append({"data": str(data), "split": split, "resolution": shape,
                         "zero_shot": shape != trained_at, **metrics})
    unit = " DoFs" if fe_model else ""
    print(f"{run} (trained at {_spatial_label(trained_at)}{unit}, epoch {trained.epoch})")
    print(f"{'data':<28} {'split':<5} {'resolution':>10} {'samples':>7} {'rel_l2':>10} {'h1':>10}"
          + (f" {'boundary':>10}" if fe_model else ""))
    for row in rows:
        label = _spatial_label(row["resolution"]) + ("*" if row["zero_shot"] else "")
        print(f"{Path(row['data']).name:<28} {row['split']:<5} {label:>10} {row['n']:>7} "
              f"{row['rel_l2']:>10.4g} {row['h1']:>10.4g}"
              + (f" {row['boundary_error']:>10.3g}" if fe_model else ""))
    if fe_model:
        print("errors in the FE norms (L2: mass matrix, H1: mass + stiffness); resolution = "
              "DoFs; boundary = largest error at the Dirichlet DoFs")
    if any(row["zero_shot"] for row in rows):
        print("* zero-shot: a resolution the model was not trained at"
              + (" (another mesh of the family)" if fe_model else ""))
    if args.json is not None:
        Path(args.json).write_text(json.dumps({"checkpoint": str(run), "trained_at": trained_at,
                                               "results": rows}, indent=2))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Standalone entry: ``python -m pdesuite.operators.train_cli train|evaluate ...``."""
    parser = argparse.ArgumentParser(prog="pdesuite")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_arguments(sub.add_parser("train", help="train a neural operator on a dataset"))
    add_evaluate_arguments(sub.add_parser("evaluate", help="evaluate a trained operator"))
    args = parser.parse_args(argv)
    return run_train(args) if args.command == "train" else run_evaluate(args)


if __name__ == "__main__":
    raise SystemExit(main())
