"""``TrainConfig``: every setting of a training run, validated, in one object.

The settings split in two:

- *run settings* (:data:`RUN_FIELDS`) define the run: loss, optimiser, schedule, epochs, batch
  size, seed, normalisation, the H1 geometry, loader workers. They are saved in every checkpoint
  (``checkpoint_dict``) and restored by a resume; only :data:`RESUME_OVERRIDES` may change then.
- *session settings* (:data:`SESSION_FIELDS`) say where and how this process runs: the run
  directory, the device, the progress bar and the summary lines. They are not saved.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

__all__ = [
    "LOSSES",
    "MONITORS",
    "OPTIMIZERS",
    "RESUME_OVERRIDES",
    "RUN_FIELDS",
    "SCHEDULERS",
    "SESSION_FIELDS",
    "TrainConfig",
]

LOSSES = ("l2", "h1")
OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("step", "onecycle", None)
MONITORS = ("rel_l2", "h1")
#: The name a loss callable is saved under (a callable cannot be saved; a resume passes it again).
CALLABLE_LOSS = "callable"

Loss = Union[str, Callable[[Any, Any], Any]]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The settings of a :class:`~pdesuite.operators.training.trainer.Trainer` run.

    Attributes:
        loss: ``"l2"`` (relative L2, default), ``"h1"`` (relative H1, with ``periodic`` and
            ``domain``), or a callable ``(pred, target) -> scalar tensor`` on
            ``[B, C, *spatial]`` in data units.
        optimizer: ``"adam"`` (default; L2 penalty ``weight_decay`` added to the gradient) or
            ``"adamw"`` (decoupled weight decay).
        lr: learning rate, default 1e-3 (the initial one for StepLR).
        weight_decay: default 1e-4.
        scheduler: ``"step"`` (default; StepLR, ``lr·gamma`` every ``step_size`` epochs),
            ``"onecycle"`` (OneCycleLR stepped per batch up to ``max_lr`` over
            ``epochs × batches per epoch`` steps) or None.
        step_size: StepLR period in epochs, default 100.
        gamma: StepLR factor, default 0.5.
        max_lr: OneCycle peak, default ``lr``.
        epochs: total epochs of the run, default 100.
        batch_size: samples per batch and process, default 20.
        eval_every: validate every this many epochs (default 1), and always after the last.
        early_stopping_patience: stop after this many evaluations without a strict improvement
            of the monitored metric; None (default) never stops early.
        monitor: ``"rel_l2"`` (default) or ``"h1"``: the validation metric for ``best.pt`` and
            early stopping.
        amp: ``"auto"`` (default; float16 autocast and a GradScaler on CUDA, off on the CPU),
            True (CUDA only) or False.
        seed: seeds Python, NumPy and torch (``seed + rank``) and the epoch shuffles; default 0.
        normalize_inputs, normalize_outputs: per-channel unit-Gaussian normalisers fitted on the
            training data (default True).
        periodic: for the H1 loss and metric, one bool or one per axis (default False: finite
            differences).
        domain: domain lengths per axis for H1 (one number or one per axis; default None: 1).
        num_workers: DataLoader worker processes, default 0.
        out_dir: run directory for checkpoints, logs and ``predictions.png``; None (default)
            writes nothing.
        device: ``"auto"`` (default: CUDA if available), or anything ``torch.device`` takes.
        progress: a progress bar per epoch (rank 0), default True.
        verbose: one summary line per epoch and the interrupt notes on stderr (rank 0),
            default True.

    ``TrainConfig(**settings)`` validates (ValueError/TypeError naming the setting);
    :meth:`replace` returns a validated copy with some settings changed.
    """

    loss: Loss = "l2"
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: Optional[str] = "step"
    step_size: int = 100
    gamma: float = 0.5
    max_lr: Optional[float] = None
    epochs: int = 100
    batch_size: int = 20
    eval_every: int = 1
    early_stopping_patience: Optional[int] = None
    monitor: str = "rel_l2"
    amp: Union[bool, str] = "auto"
    seed: int = 0
    normalize_inputs: bool = True
    normalize_outputs: bool = True
    periodic: Union[bool, tuple[bool, ...]] = False
    domain: Union[float, tuple[float, ...], None] = None
    num_workers: int = 0
    out_dir: Union[str, os.PathLike, None] = None
    device: Any = "auto"
    progress: bool = True
    verbose: bool = True

    def __post_init__(self) -> None:
        self._validate()
        # Sequences become tuples (hashable, and equal after a JSON round trip).
        if not isinstance(self.periodic, bool):
            object.__setattr__(self, "periodic", tuple(bool(p) for p in self.periodic))
        if self.domain is not None and not isinstance(self.domain, (int, float)):
            object.__setattr__(self, "domain", tuple(float(d) for d in self.domain))

    def _validate(self) -> None:
        loss = self.loss
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(f"loss: expected one of {LOSSES} or a callable, got {loss!r}")
        elif not callable(loss):
            raise TypeError(
                f"loss: expected one of {LOSSES} or a callable, got {type(loss).__name__}"
            )
        for name, allowed in (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS),
                              ("monitor", MONITORS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "eval_every", "step_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)!r}")
        patience = self.early_stopping_patience
        if patience is not None and (not _is_int(patience) or patience < 1):
            raise ValueError(
                f"early_stopping_patience: expected None or an integer >= 1, got {patience!r}"
            )
        for name in ("lr", "weight_decay", "gamma"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        if self.max_lr is not None and not (_is_number(self.max_lr) and self.max_lr > 0):
            raise ValueError(f"max_lr: expected None or a positive number, got {self.max_lr!r}")
        if self.amp not in ("auto", True, False):
            raise ValueError(f"amp: expected 'auto', True or False, got {self.amp!r}")
        if not _is_int(self.seed):
            raise ValueError(f"seed: expected an integer, got {self.seed!r}")
        if not _is_int(self.num_workers) or self.num_workers < 0:
            raise ValueError(f"num_workers: expected an integer >= 0, got {self.num_workers!r}")

    # -------------------------------------------------------------------------- copies
    def replace(self, **changes: Any) -> "TrainConfig":
        """A validated copy with ``changes`` applied (TypeError for an unknown setting)."""
        unknown = sorted(set(changes) - set(FIELD_NAMES))
        if unknown:
            raise TypeError(
                f"unknown training setting(s) {unknown}; the settings are {list(FIELD_NAMES)}"
            )
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ dictionaries
    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON values (tuples as lists, a loss callable as
        ``"callable"``, ``out_dir`` and ``device`` as strings or None)."""
        values = self.checkpoint_dict()
        values.update(out_dir=None if self.out_dir is None else os.fspath(self.out_dir),
                      device=None if self.device is None else str(self.device),
                      progress=bool(self.progress), verbose=bool(self.verbose))
        return values

    def checkpoint_dict(self) -> dict[str, Any]:
        """The run settings (:data:`RUN_FIELDS`) as plain JSON values: what a checkpoint keeps."""
        values = {}
        for name in RUN_FIELDS:
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, np.generic):
                value = value.item()
            values[name] = value
        if not isinstance(self.loss, str):
            values["loss"] = CALLABLE_LOSS
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], **overrides: Any) -> "TrainConfig":
        """The config of ``values`` (as :meth:`to_dict` or :meth:`checkpoint_dict` wrote them;
        missing settings take their defaults), with ``overrides`` applied.

        Raises TypeError for an unknown setting, and ValueError for a loss saved as a callable
        that ``overrides`` does not pass again.
        """
        merged = {**values, **overrides}
        unknown = sorted(set(merged) - set(FIELD_NAMES))
        if unknown:
            raise TypeError(
                f"unknown training setting(s) {unknown}; the settings are {list(FIELD_NAMES)}"
            )
        if merged.get("loss") == CALLABLE_LOSS:
            raise ValueError("loss: the run used a loss callable; pass it again as loss=")
        return cls(**merged)

    def run_differences(self, other: "TrainConfig") -> dict[str, tuple[Any, Any]]:
        """``{name: (self's value, other's value)}`` for each run setting that differs."""
        mine, theirs = self.checkpoint_dict(), other.checkpoint_dict()
        return {
            name: (mine[name], theirs[name]) for name in RUN_FIELDS if mine[name] != theirs[name]
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


FIELD_NAMES = tuple(field.name for field in dataclasses.fields(TrainConfig))
SESSION_FIELDS = ("out_dir", "device", "progress", "verbose")
RUN_FIELDS = tuple(name for name in FIELD_NAMES if name not in SESSION_FIELDS)
#: Settings that a resume may change; the other run settings come from the checkpoint, and the
#: run directory is the checkpoint's.
RESUME_OVERRIDES = ("epochs", "progress", "verbose", "device", "eval_every",
                    "early_stopping_patience", "num_workers", "loss")
