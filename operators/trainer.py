"""Training, evaluation, checkpoints and exact resume for grid operators on ``[B, C, *spatial]``.

A :class:`Trainer` takes a model (an ``nn.Module``, ideally with ``to_config()`` so that a
checkpoint can rebuild it) and a training dataset whose items are ``(input, target)`` pairs of
``[C, *spatial]`` tensors (a ``TensorDataset``, ``PDEDataset``, or a pair of tensors/arrays
``(inputs, outputs)`` of shape ``[n, C, *spatial]``).

What one epoch does
-------------------
1. The samples are shuffled by a ``DistributedSampler`` seeded with ``(seed, epoch)`` (one
   replica outside DDP), cut into batches of ``batch_size`` (per process under DDP).
2. Per batch: inputs are encoded by the input normaliser; the model runs (under autocast when
   AMP is on); its output is decoded by the output normaliser; the loss compares the decoded
   prediction with the raw target, so that a relative loss is the relative error in data units.
3. Backward, optimizer step (through a GradScaler under AMP), and a OneCycle step per batch.
4. At the end: a StepLR step; every ``eval_every`` epochs (and at the last) the validation
   metrics; early stopping; ``checkpoint.pt`` (and ``best.pt`` on improvement); the logs
   ``metrics.csv`` and ``metrics.json``.

Normalisers are per channel and fitted on ``train_data`` only (see
:class:`~pdesuite.operators.normalizer.UnitGaussianNormalizer`).

Non-finite batches
------------------
A batch whose input or target holds a NaN/inf, or whose loss is not finite, is skipped: no
backward, no optimizer step. Each skip issues a :class:`NonFiniteBatchWarning` and is counted
(``skipped_batches`` per epoch in the logs, ``Trainer.skipped_batches`` in total). An epoch in
which every batch was skipped raises ``FloatingPointError``: nothing can be learnt from it, and
carrying on would only hide a broken dataset or a diverged model.

Checkpoints and resume
----------------------
A checkpoint is a dict of tensors and plain Python values (the model config as a JSON string),
so :func:`load_checkpoint` reads it with ``torch.load(weights_only=True)``. It carries the model
class, config and state, optimizer, scheduler and GradScaler states, normalisers, the position
in training (epoch, and batch within the epoch after an interrupt), history, best metric, the
RNG states of torch, CUDA, NumPy, Python and of the DataLoader generator, and the pdesuite
version. :meth:`Trainer.resume` continues the run bit for bit on the same device (CPU runs are
deterministic; CUDA is only as deterministic as its kernels). A checkpoint of another model
class, config or parameter shape, or of data with other shapes, raises ``ValueError`` naming the
file and the mismatch.

Ctrl-C during :meth:`Trainer.fit` finishes the current batch, writes ``checkpoint.pt`` at that
point and re-raises ``KeyboardInterrupt``; a resume then continues from the next batch exactly.
A second Ctrl-C interrupts at once (the checkpoint is still written, but mid-batch).

Distributed training
--------------------
Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the trainer initialises the process
group (NCCL on CUDA, gloo on CPU) unless it already is, puts each process on
``cuda:LOCAL_RANK`` (or the CPU), wraps the model in ``DistributedDataParallel`` and shards the
data with ``DistributedSampler`` (which pads the last shard by repeating samples). Skips and
interrupts are agreed across ranks. Validation runs on every rank on the whole validation set,
so that every rank takes the same early-stopping decision. Only rank 0 writes files.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import itertools
import json
import math
import os
import pickle
import random
import signal
import sys
import threading
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler, TensorDataset

from pdesuite.operators.losses import H1Loss, LpLoss
from pdesuite.operators.normalizer import UnitGaussianNormalizer

__all__ = [
    "Trainer",
    "TrainedModel",
    "NonFiniteBatchWarning",
    "load_checkpoint",
    "load_trained",
    "select_device",
    "CHECKPOINT_NAME",
    "BEST_NAME",
    "METRICS_CSV",
    "METRICS_JSON",
    "METRIC_COLUMNS",
]

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
#: Columns of metrics.csv, in order (and the keys of each entry of ``Trainer.history``).
#: Validation columns are empty on epochs without evaluation.
METRIC_COLUMNS = ("epoch", "train_loss", "val_rel_l2", "val_h1", "lr", "skipped_batches",
                  "samples", "epoch_time_s")
CHECKPOINT_FORMAT = "pdesuite.operators.checkpoint"
CHECKPOINT_FORMAT_VERSION = 1

LOSSES = ("l2", "h1")
OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("step", "onecycle", None)
MONITORS = ("rel_l2", "h1")
#: Settings that :meth:`Trainer.resume` may change; the rest define the run and come from the
#: checkpoint.
RESUME_OVERRIDES = ("epochs", "progress", "device", "eval_every", "early_stopping_patience",
                    "num_workers", "loss")

DataLike = Union[Dataset, Sequence]


class NonFiniteBatchWarning(UserWarning):
    """A training batch had a non-finite input, target or loss, and was skipped."""


# --------------------------------------------------------------------------------- devices
def select_device(device: Union[str, torch.device, None] = "auto") -> torch.device:
    """The device to train on.

    Args:
        device: ``"auto"`` (or ``None``): CUDA when available, else the CPU. Otherwise anything
            ``torch.device`` accepts (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    Raises ValueError for a CUDA device on a machine without CUDA or without that index.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: not a torch device: {device!r} ({exc})") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} requested, but CUDA is not available here")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ValueError(
                f"device: {device!r} requested, but only {torch.cuda.device_count()} CUDA "
                f"devices exist"
            )
    return chosen


# ------------------------------------------------------------------------------------ data
def _as_dataset(data: Any, name: str) -> Dataset:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(part, (torch.Tensor, np.ndarray)) for part in data):
        inputs, outputs = (torch.as_tensor(part) for part in data)
        if inputs.shape[0] != outputs.shape[0]:
            raise ValueError(
                f"{name}: inputs and outputs have {inputs.shape[0]} and {outputs.shape[0]} samples"
            )
        return TensorDataset(inputs, outputs)
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        if len(data) == 0:
            raise ValueError(f"{name}: the dataset is empty")
        return data
    raise TypeError(
        f"{name}: expected a Dataset of (input, target) pairs or a pair of tensors "
        f"(inputs [n, C, *spatial], outputs [n, C, *spatial]), got {type(data).__name__}"
    )


def _split_pair(item: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) from a dataset item or a collated batch."""
    if isinstance(item, Mapping):
        for keys in (("inputs", "outputs"), ("input", "output"), ("x", "y")):
            if keys[0] in item and keys[1] in item:
                return item[keys[0]], item[keys[1]]
        raise ValueError(f"{name}: a dict item needs 'inputs' and 'outputs' keys, got {list(item)}")
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        return item[0], item[1]
    raise TypeError(f"{name}: expected (input, target) pairs, got an item of type {type(item).__name__}")


def _sample_shapes(data: Dataset, name: str) -> tuple[list[int], list[int]]:
    x, y = _split_pair(data[0], name)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.ndim < 1 or y.ndim < 1:
        raise ValueError(f"{name}: samples must be [C, *spatial], got {tuple(x.shape)} and {tuple(y.shape)}")
    return list(x.shape), list(y.shape)


class _ResumableBatchSampler(Sampler):
    """Batches of a sampler, leaving out the first ``skip`` batches (for a mid-epoch resume)."""

    def __init__(self, sampler: Sampler, batch_size: int) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.skip = 0

    def _batches(self) -> BatchSampler:
        return BatchSampler(self.sampler, self.batch_size, drop_last=False)

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(iter(self._batches()), self.skip, None)

    def __len__(self) -> int:
        return len(self._batches()) - self.skip

    @property
    def batches_per_epoch(self) -> int:
        return len(self._batches())


# ------------------------------------------------------------------------------ RNG states
def _capture_rng() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {
            "version": int(py_version),
            "internal": torch.tensor(py_internal, dtype=torch.int64),
            "gauss_next": py_gauss,
        },
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def _restore_rng(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["key"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(int(v) for v in python_state["internal"].tolist()),
                     python_state["gauss_next"]))
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            warnings.warn("checkpoint: CUDA RNG states saved for "
                          f"{len(cuda_states)} devices, {torch.cuda.device_count()} here; "
                          "CUDA RNG not restored", stacklevel=3)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------- model description
def _qualname(model: nn.Module) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"model config: value {value!r} of type {type(value).__name__} is not JSON")


def _model_config_json(model: nn.Module) -> Optional[str]:
    to_config = getattr(model, "to_config", None)
    if to_config is None:
        return None
    return json.dumps(to_config(), default=_json_default, sort_keys=True)


def _describe_config_difference(saved: Any, current: Any) -> str:
    if isinstance(saved, dict) and isinstance(current, dict):
        parts = []
        for key in sorted(set(saved) | set(current), key=str):
            if key not in current:
                parts.append(f"{key!r} only in the checkpoint")
            elif key not in saved:
                parts.append(f"{key!r} only in this model")
            elif saved[key] != current[key]:
                parts.append(f"{key}={saved[key]!r} in the checkpoint, {current[key]!r} here")
        return "; ".join(parts)
    return f"{saved!r} in the checkpoint, {current!r} here"


def _check_model_matches(path: Path, checkpoint: Mapping[str, Any], model: nn.Module) -> None:
    saved_class = checkpoint.get("model_class")
    if saved_class != _qualname(model):
        raise ValueError(
            f"{path}: the checkpoint holds a {saved_class} model, but the model given is a "
            f"{_qualname(model)}"
        )
    saved_json, current_json = checkpoint.get("model_config"), _model_config_json(model)
    if saved_json is not None and current_json is not None and saved_json != current_json:
        difference = _describe_config_difference(json.loads(saved_json), json.loads(current_json))
        raise ValueError(f"{path}: model config differs from the checkpoint's: {difference}")
    saved_state = checkpoint["model_state"]
    current_state = model.state_dict()
    missing = sorted(set(current_state) - set(saved_state))
    unexpected = sorted(set(saved_state) - set(current_state))
    if missing or unexpected:
        raise ValueError(
            f"{path}: parameters differ from the model's: missing from the checkpoint "
            f"{missing[:5]}, not in the model {unexpected[:5]}"
        )
    for key, tensor in current_state.items():
        if tuple(saved_state[key].shape) != tuple(tensor.shape):
            raise ValueError(
                f"{path}: parameter {key!r} has shape {tuple(saved_state[key].shape)} in the "
                f"checkpoint but {tuple(tensor.shape)} in the model"
            )


def _rebuild_model(path: Path, checkpoint: Mapping[str, Any]) -> nn.Module:
    saved_class = checkpoint.get("model_class")
    if checkpoint.get("model_config") is None:
        raise ValueError(f"{path}: the {saved_class} model has no config to rebuild it from; "
                         "pass model=")
    config = json.loads(checkpoint["model_config"])
    try:
        from pdesuite.operators.models import model_from_config
    except ImportError as exc:
        raise ValueError(f"{path}: cannot rebuild {saved_class}: the model registry is not "
                         f"available ({exc}); pass model=") from None
    try:
        model = model_from_config(config)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: cannot rebuild {saved_class} from its config through the "
                         f"model registry ({exc}); pass model=") from None
    return model


# ----------------------------------------------------------------------------- checkpoints
def _resolve_checkpoint(path: Union[str, os.PathLike], default_name: str) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / default_name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    return path


def load_checkpoint(path: Union[str, os.PathLike],
                    map_location: Union[str, torch.device] = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``torch.load(weights_only=True)``) and check its format.

    Args:
        path: a checkpoint file, or a run directory (then its ``checkpoint.pt``).
        map_location: where tensors go, default the CPU.

    Raises FileNotFoundError for a missing file, and ValueError for a file that is not a
    pdesuite checkpoint, is damaged, or holds objects that safe loading refuses.
    """
    path = _resolve_checkpoint(path, CHECKPOINT_NAME)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: cannot be read as a safe (weights_only) torch checkpoint: "
                         f"{_essential_line(exc)}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a pdesuite operator checkpoint")
    version = checkpoint.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format version {version!r} is newer than this "
                         f"pdesuite reads ({CHECKPOINT_FORMAT_VERSION})")
    return checkpoint


def _essential_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "Unpickler error" in line or "Unsupported global" in line:
            return line
    return lines[0] if lines else type(exc).__name__


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(payload)
    os.replace(tmp, path)


def _atomic_save(obj: Any, path: Path) -> None:
    # A crash or Ctrl-C during the write leaves the previous file intact.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _atomic_write_bytes(path, buffer.getvalue())


def _pdesuite_version() -> str:
    from pdesuite import __version__

    return __version__


# --------------------------------------------------------------------- predict / evaluate
def _model_dtype(model: nn.Module) -> torch.dtype:
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.float16)


def _forward(model: Callable, x: torch.Tensor, input_normalizer, output_normalizer,
             device: torch.device, amp: bool) -> torch.Tensor:
    encoded = input_normalizer.encode(x) if input_normalizer is not None else x
    with _autocast(device, amp):
        out = model(encoded)
    out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
    return output_normalizer.decode(out) if output_normalizer is not None else out


def _check_channels(x: torch.Tensor, expected_shape: Optional[Sequence[int]], name: str) -> None:
    if expected_shape is None:
        return
    if x.ndim != len(expected_shape) + 1:
        raise ValueError(f"{name}: expected [B, {expected_shape[0]}, *spatial] with "
                         f"{len(expected_shape) - 1} spatial axes, got shape {tuple(x.shape)}")
    if x.shape[1] != expected_shape[0]:
        raise ValueError(f"{name}: expected {expected_shape[0]} channels (as in training), got "
                         f"{x.shape[1]} (shape {tuple(x.shape)})")


class _Inference:
    """What predict and evaluate need: shared by Trainer and TrainedModel."""

    model: nn.Module
    input_normalizer: Optional[UnitGaussianNormalizer]
    output_normalizer: Optional[UnitGaussianNormalizer]
    device: torch.device
    amp: bool
    batch_size: int
    periodic: Any
    domain: Any
    input_shape: Optional[list[int]]
    output_shape: Optional[list[int]]

    @contextlib.contextmanager
    def _eval_mode(self):
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.model.train(was_training)

    def predict(self, x: Union[torch.Tensor, np.ndarray], batch_size: Optional[int] = None) -> torch.Tensor:
        """The model's prediction in data units.

        Args:
            x: inputs ``[B, C_in, *spatial]`` or one sample ``[C_in, *spatial]`` (tensor or
                array, any resolution the model accepts).
            batch_size: samples per forward pass (default the training batch size).

        Returns:
            ``[B, C_out, *spatial]`` (or ``[C_out, *spatial]`` for one sample), a float CPU tensor.
        """
        x = torch.as_tensor(x)
        single = self.input_shape is not None and x.ndim == len(self.input_shape)
        if single:
            x = x.unsqueeze(0)
        _check_channels(x, self.input_shape, "x")
        dtype = _model_dtype(self.model)
        step = int(batch_size or self.batch_size)
        outputs = []
        with self._eval_mode():
            for start in range(0, x.shape[0], step):
                chunk = x[start:start + step].to(self.device, dtype)
                outputs.append(_forward(self.model, chunk, self.input_normalizer,
                                        self.output_normalizer, self.device, self.amp).cpu())
        result = torch.cat(outputs) if outputs else torch.empty(0)
        return result[0] if single else result

    def evaluate(self, data: DataLike, batch_size: Optional[int] = None) -> dict[str, float]:
        """Mean per-sample relative L2 and relative H1 errors on ``data``, in data units.

        Args:
            data: a Dataset of ``(input, target)`` pairs or a pair of tensors, at any resolution
                the model accepts (zero-shot evaluation included).
            batch_size: default the training batch size.

        Returns:
            ``{"rel_l2": ..., "h1": ..., "n": samples, "skipped": samples left out}``. Samples
            whose input or target is not finite are left out with a warning. A non-finite
            prediction is not: it makes the metric NaN.
        """
        dataset = _as_dataset(data, "data")
        loader = DataLoader(dataset, batch_size=int(batch_size or self.batch_size), shuffle=False,
                            generator=torch.Generator())
        l2 = LpLoss(2, relative=True, reduction="none")
        h1 = H1Loss(relative=True, periodic=self.periodic, domain=self.domain, reduction="none")
        dtype = _model_dtype(self.model)
        sums = {"rel_l2": 0.0, "h1": 0.0}
        count = skipped = 0
        with self._eval_mode():
            for batch in loader:
                x, y = _split_pair(batch, "data")
                x = x.to(self.device, dtype)
                y = y.to(self.device, dtype)
                _check_channels(x, self.input_shape, "data inputs")
                finite = torch.isfinite(x.flatten(1)).all(1) & torch.isfinite(y.flatten(1)).all(1)
                if not bool(finite.all()):
                    skipped += int((~finite).sum())
                    x, y = x[finite], y[finite]
                    if x.shape[0] == 0:
                        continue
                pred = _forward(self.model, x, self.input_normalizer, self.output_normalizer,
                                self.device, self.amp)
                if pred.shape != y.shape:
                    raise ValueError(f"data: the model predicts shape {tuple(pred.shape)} for "
                                     f"targets of shape {tuple(y.shape)}")
                sums["rel_l2"] += float(l2(pred, y).sum())
                has_grid = y.ndim >= 3 and min(y.shape[2:]) >= 3
                sums["h1"] += float(h1(pred, y).sum()) if has_grid else math.nan
                count += x.shape[0]
        if skipped:
            warnings.warn(f"evaluate: {skipped} samples with non-finite inputs or targets left out",
                          NonFiniteBatchWarning, stacklevel=2)
        if count == 0:
            raise ValueError("data: no sample with finite inputs and targets to evaluate on")
        return {"rel_l2": sums["rel_l2"] / count, "h1": sums["h1"] / count, "n": count,
                "skipped": skipped}


class TrainedModel(_Inference):
    """A model with its normalisers, loaded from a checkpoint by :func:`load_trained`.

    Attributes: ``model``, ``input_normalizer``, ``output_normalizer`` (or None), ``device``,
    ``checkpoint_path``, ``epoch``, ``history``, ``model_config`` (dict or None),
    ``trainer_config`` (dict). Methods :meth:`predict` and :meth:`evaluate` as on a Trainer.
    """

    def __init__(self, model: nn.Module, checkpoint: Mapping[str, Any], path: Path,
                 device: torch.device, amp: bool) -> None:
        self.model = model.to(device)
        self.model.eval()
        self.device = device
        self.amp = amp
        normalizers = checkpoint["normalizers"]
        self.input_normalizer = (UnitGaussianNormalizer.from_state_dict(normalizers["inputs"])
                                 if normalizers.get("inputs") is not None else None)
        self.output_normalizer = (UnitGaussianNormalizer.from_state_dict(normalizers["outputs"])
                                  if normalizers.get("outputs") is not None else None)
        config = checkpoint["trainer_config"]
        self.trainer_config = dict(config)
        self.batch_size = int(config["batch_size"])
        self.periodic = config["periodic"]
        self.domain = config["domain"]
        self.input_shape = list(checkpoint["data"]["input_shape"])
        self.output_shape = list(checkpoint["data"]["output_shape"])
        self.checkpoint_path = path
        self.epoch = int(checkpoint["epoch"])
        self.history = list(checkpoint["history"])
        self.model_config = (json.loads(checkpoint["model_config"])
                             if checkpoint.get("model_config") is not None else None)


def load_trained(path: Union[str, os.PathLike], model: Optional[nn.Module] = None,
                 device: Union[str, torch.device, None] = "auto",
                 amp: Union[bool, str] = "auto") -> TrainedModel:
    """Load a trained model for prediction and evaluation.

    Args:
        path: a checkpoint file, or a run directory (then its ``best.pt``, else ``checkpoint.pt``).
        model: a model of the checkpoint's class and config to load the weights into. Default:
            rebuilt from the config through ``pdesuite.operators.models.model_from_config``.
        device: as :func:`select_device`. amp: ``"auto"`` (on for CUDA), True or False.

    Raises ValueError when the checkpoint does not fit ``model`` (class, config or shapes).
    """
    path = Path(path)
    if path.is_dir():
        path = path / BEST_NAME if (path / BEST_NAME).is_file() else path / CHECKPOINT_NAME
    checkpoint = load_checkpoint(path)
    if model is None:
        model = _rebuild_model(path, checkpoint)
    _check_model_matches(path, checkpoint, model)
    model.load_state_dict(checkpoint["model_state"])
    chosen = select_device(device)
    use_amp = (chosen.type == "cuda") if amp == "auto" else bool(amp)
    if use_amp and chosen.type != "cuda":
        raise ValueError(f"amp: mixed precision needs a CUDA device, got {chosen}")
    return TrainedModel(model, checkpoint, path, chosen, use_amp)


# ---------------------------------------------------------------------------------- trainer
class Trainer(_Inference):
    """Fit a grid operator, with evaluation, checkpoints, exact resume, AMP and DDP.

    Args:
        model: ``nn.Module`` mapping ``[B, C_in, *spatial]`` to ``[B, C_out, *spatial]``. With a
            ``to_config()`` method its config goes into the checkpoints.
        train_data: Dataset of ``(input, target)`` pairs ``[C, *spatial]``, or a pair of
            tensors/arrays ``(inputs, outputs)`` ``[n, C, *spatial]``. Normalisers are fitted on
            it alone.
        val_data: the same kinds, or None (then ``best.pt`` tracks the training loss).
        loss: ``"l2"`` (relative L2, default), ``"h1"`` (relative H1, with ``periodic`` and
            ``domain``), or a callable ``(pred, target) -> scalar tensor`` on ``[B, C, *spatial]``
            in data units.
        optimizer: ``"adam"`` (default; L2 penalty ``weight_decay`` added to the gradient) or
            ``"adamw"`` (decoupled weight decay).
        lr: learning rate (default 1e-3); the initial one for StepLR. weight_decay: default 1e-4.
        scheduler: ``"step"`` (default; StepLR, ``lr·gamma`` every ``step_size`` epochs),
            ``"onecycle"`` (OneCycleLR stepped per batch up to ``max_lr``, default ``lr``, over
            ``epochs × batches per epoch`` steps) or None.
        step_size: default 100 epochs. gamma: default 0.5. max_lr: default ``lr``.
        epochs: total epochs of the run (default 100). batch_size: per process (default 20).
        eval_every: validate every this many epochs (default 1), and always after the last.
        early_stopping_patience: stop after this many evaluations without a strict improvement
            of the monitored validation metric; None (default) never stops early.
        monitor: ``"rel_l2"`` (default) or ``"h1"``: the validation metric for best.pt and
            early stopping.
        out_dir: where checkpoints and logs go (created); None writes nothing.
        device: ``"auto"`` (default; CUDA if available, else CPU), or a device.
        amp: ``"auto"`` (default; float16 autocast and a GradScaler on CUDA, off on CPU), True
            (CUDA only) or False.
        seed: seeds Python, NumPy and torch (``seed + rank``) when the trainer is built, and the
            epoch shuffles. Build the model after seeding yourself for a reproducible init.
        normalize_inputs, normalize_outputs: per-channel unit-Gaussian normalisers (default on).
        progress: a tqdm bar per epoch and a summary line (rank 0 only). Default True.
        periodic: for the H1 loss and metric, per axis or one bool (default False: finite
            differences). domain: domain lengths per axis (default 1).
        num_workers: DataLoader workers (default 0).

    After :meth:`fit`: ``history`` (one dict per epoch, keys ``METRIC_COLUMNS``), ``epoch``,
    ``best_value``, ``best_epoch``, ``stopped_early``, ``skipped_batches``. The model keeps the
    weights of the last epoch; ``best.pt`` holds the best ones (see :func:`load_trained`).
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: DataLike,
        val_data: Optional[DataLike] = None,
        *,
        loss: Union[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = "l2",
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        scheduler: Optional[str] = "step",
        step_size: int = 100,
        gamma: float = 0.5,
        max_lr: Optional[float] = None,
        epochs: int = 100,
        batch_size: int = 20,
        eval_every: int = 1,
        early_stopping_patience: Optional[int] = None,
        monitor: str = "rel_l2",
        out_dir: Union[str, os.PathLike, None] = None,
        device: Union[str, torch.device, None] = "auto",
        amp: Union[bool, str] = "auto",
        seed: int = 0,
        normalize_inputs: bool = True,
        normalize_outputs: bool = True,
        progress: bool = True,
        periodic: Union[bool, Sequence[bool]] = False,
        domain: Union[float, Sequence[float], None] = None,
        num_workers: int = 0,
    ) -> None:
        settings = dict(
            loss=loss, optimizer=optimizer, lr=lr, weight_decay=weight_decay, scheduler=scheduler,
            step_size=step_size, gamma=gamma, max_lr=max_lr, epochs=epochs, batch_size=batch_size,
            eval_every=eval_every, early_stopping_patience=early_stopping_patience,
            monitor=monitor, out_dir=out_dir, device=device, amp=amp, seed=seed,
            normalize_inputs=normalize_inputs, normalize_outputs=normalize_outputs,
            progress=progress, periodic=periodic, domain=domain, num_workers=num_workers,
        )
        self._setup(model, train_data, val_data, settings, fresh=True)

    # ----------------------------------------------------------------------------- set-up
    def _setup(self, model: nn.Module, train_data: DataLike, val_data: Optional[DataLike],
               s: dict[str, Any], fresh: bool) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        self._check_settings(s)
        self.settings = s
        self.epochs = int(s["epochs"])
        self.batch_size = int(s["batch_size"])
        self.eval_every = int(s["eval_every"])
        self.early_stopping_patience = s["early_stopping_patience"]
        self.monitor = s["monitor"]
        self.progress = bool(s["progress"])
        self.seed = int(s["seed"])
        self.periodic = s["periodic"] if isinstance(s["periodic"], bool) else [bool(p) for p in s["periodic"]]
        self.domain = s["domain"] if s["domain"] is None or isinstance(s["domain"], (int, float)) \
            else [float(d) for d in s["domain"]]
        self.out_dir = Path(s["out_dir"]) if s["out_dir"] is not None else None

        self.train_data = _as_dataset(train_data, "train_data")
        self.val_data = _as_dataset(val_data, "val_data") if val_data is not None else None
        self.input_shape, self.output_shape = _sample_shapes(self.train_data, "train_data")
        if self.val_data is not None:
            val_in, val_out = _sample_shapes(self.val_data, "val_data")
            if val_in[0] != self.input_shape[0] or val_out[0] != self.output_shape[0]:
                raise ValueError(
                    f"val_data: samples have {val_in[0]} input and {val_out[0]} output channels, "
                    f"train_data {self.input_shape[0]} and {self.output_shape[0]}"
                )

        # Distributed context, then the device.
        self.world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
        self.rank = int(os.environ.get("RANK", "0") or 0) if self.world_size > 1 else 0
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0) if self.world_size > 1 else 0
        device = select_device(s["device"])
        if self.world_size > 1 and device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        self.device = device
        if s["amp"] == "auto":
            self.amp = device.type == "cuda"
        else:
            self.amp = bool(s["amp"])
            if self.amp and device.type != "cuda":
                raise ValueError(f"amp: mixed precision needs a CUDA device, the trainer runs on {device}")
        if self.world_size > 1:
            self._init_process_group()

        if fresh:
            _seed_everything(self.seed + self.rank)

        self.model = model.to(self.device)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self._net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        else:
            self._net = self.model
        self._dtype = _model_dtype(self.model)

        # Loss, and the metrics evaluate() reports.
        if isinstance(s["loss"], str):
            self.loss_fn = (LpLoss(2) if s["loss"] == "l2"
                            else H1Loss(periodic=self.periodic, domain=self.domain))
        else:
            self.loss_fn = s["loss"]

        # Data loading: the sampler owns the shuffle (seed, epoch); the generator seeds workers.
        self._sampler = DistributedSampler(self.train_data, num_replicas=self.world_size,
                                           rank=self.rank, shuffle=True, seed=self.seed,
                                           drop_last=False)
        self._batch_sampler = _ResumableBatchSampler(self._sampler, self.batch_size)
        self._loader_generator = torch.Generator().manual_seed(self.seed)
        self._loader = DataLoader(self.train_data, batch_sampler=self._batch_sampler,
                                  num_workers=int(s["num_workers"]), generator=self._loader_generator,
                                  pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = self._batch_sampler.batches_per_epoch

        # Optimizer and schedule.
        optimizer_cls = torch.optim.Adam if s["optimizer"] == "adam" else torch.optim.AdamW
        self.optimizer = optimizer_cls(self.model.parameters(), lr=float(s["lr"]),
                                       weight_decay=float(s["weight_decay"]))
        if s["scheduler"] == "step":
            self.scheduler = torch.optim.lr_scheduler.StepLR(
                self.optimizer, step_size=int(s["step_size"]), gamma=float(s["gamma"]))
        elif s["scheduler"] == "onecycle":
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=float(s["max_lr"] if s["max_lr"] is not None else s["lr"]),
                total_steps=self.epochs * self.steps_per_epoch)
        else:
            self.scheduler = None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

        # Training position and results.
        self.epoch = 0
        self._batches_done = 0
        self._epoch_acc = self._new_accumulators()
        self._epoch_loader_state: Optional[torch.Tensor] = None
        self.history: list[dict[str, Any]] = []
        self.best_value: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self._evals_without_improvement = 0
        self.stopped_early = False
        self.skipped_batches = 0
        self._interrupt_requested = False

        self.input_normalizer = UnitGaussianNormalizer() if s["normalize_inputs"] else None
        self.output_normalizer = UnitGaussianNormalizer() if s["normalize_outputs"] else None
        if fresh:
            self._fit_normalizers()
            if self.out_dir is not None and self.rank == 0:
                self.out_dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _check_settings(s: Mapping[str, Any]) -> None:
        loss = s["loss"]
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(f"loss: expected one of {LOSSES} or a callable, got {loss!r}")
        elif not callable(loss):
            raise TypeError(f"loss: expected one of {LOSSES} or a callable, got {type(loss).__name__}")
        if s["optimizer"] not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {s['optimizer']!r}")
        if s["scheduler"] not in SCHEDULERS:
            raise ValueError(f"scheduler: expected one of {SCHEDULERS}, got {s['scheduler']!r}")
        if s["monitor"] not in MONITORS:
            raise ValueError(f"monitor: expected one of {MONITORS}, got {s['monitor']!r}")
        for name in ("epochs", "batch_size", "eval_every", "step_size"):
            value = s[name]
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        patience = s["early_stopping_patience"]
        if patience is not None and (not isinstance(patience, (int, np.integer)) or patience < 1):
            raise ValueError(f"early_stopping_patience: expected None or an integer >= 1, got {patience!r}")
        for name in ("lr", "weight_decay", "gamma"):
            value = s[name]
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        if s["max_lr"] is not None and not (isinstance(s["max_lr"], (int, float)) and s["max_lr"] > 0):
            raise ValueError(f"max_lr: expected None or a positive number, got {s['max_lr']!r}")
        if s["amp"] not in ("auto", True, False):
            raise ValueError(f"amp: expected 'auto', True or False, got {s['amp']!r}")
        if not isinstance(s["num_workers"], int) or s["num_workers"] < 0:
            raise ValueError(f"num_workers: expected an integer >= 0, got {s['num_workers']!r}")

    def _init_process_group(self) -> None:
        import torch.distributed as dist

        if not dist.is_available():
            raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
            atexit.register(_destroy_process_group)
        if dist.get_world_size() != self.world_size:
            raise RuntimeError(f"WORLD_SIZE={self.world_size}, but the process group has "
                               f"{dist.get_world_size()} ranks")

    def _fit_normalizers(self) -> None:
        if self.input_normalizer is None and self.output_normalizer is None:
            return
        loader = DataLoader(self.train_data, batch_size=max(self.batch_size, 64), shuffle=False,
                            num_workers=int(self.settings["num_workers"]), generator=torch.Generator())
        for batch in loader:
            x, y = _split_pair(batch, "train_data")
            if self.input_normalizer is not None:
                self.input_normalizer.partial_fit(x)
            if self.output_normalizer is not None:
                self.output_normalizer.partial_fit(y)
        for normalizer in (self.input_normalizer, self.output_normalizer):
            if normalizer is not None:
                normalizer.mean = normalizer.mean.to(self.device)
                normalizer.std = normalizer.std.to(self.device)

    # ------------------------------------------------------------------------ collectives
    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def _any_rank(self, flag: bool) -> bool:
        if self.world_size == 1:
            return bool(flag)
        import torch.distributed as dist

        value = torch.tensor([1.0 if flag else 0.0], device=self._comm_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def _sum_ranks(self, values: Sequence[float]) -> list[float]:
        if self.world_size == 1:
            return list(values)
        import torch.distributed as dist

        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    # --------------------------------------------------------------------------- training
    @staticmethod
    def _new_accumulators() -> dict[str, float]:
        return {"loss_sum": 0.0, "samples": 0, "skipped": 0, "time": 0.0}

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    def fit(self) -> list[dict[str, Any]]:
        """Train until ``epochs`` (or early stopping); returns ``history``.

        Raises FloatingPointError when every batch of an epoch is skipped as non-finite, and
        re-raises KeyboardInterrupt after writing the checkpoint.
        """
        if self.stopped_early:
            self._say(f"early stopping already ended this run at epoch {self.epoch}")
            return self.history
        with self._deferred_sigint():
            try:
                while self.epoch < self.epochs and not self.stopped_early:
                    self._run_epoch()
            except KeyboardInterrupt:
                self._save_on_interrupt()
                raise
        return self.history

    def _run_epoch(self) -> None:
        from tqdm.auto import tqdm

        epoch = self.epoch
        if self._batches_done == 0:
            self._epoch_acc = self._new_accumulators()
            self._epoch_loader_state = self._loader_generator.get_state()
        else:
            # A mid-epoch resume: rebuild this epoch's batches from where it began.
            self._loader_generator.set_state(self._epoch_loader_state)
        self._sampler.set_epoch(epoch)
        self._batch_sampler.skip = self._batches_done
        started = time.perf_counter()
        self.model.train()
        bar = tqdm(self._loader, total=self.steps_per_epoch, initial=self._batches_done,
                   desc=f"epoch {epoch + 1}/{self.epochs}", leave=False, dynamic_ncols=True,
                   disable=not (self.progress and self.is_main_process))
        try:
            for batch in bar:
                loss_value = self._train_step(batch, epoch)
                self._batches_done += 1
                if loss_value is not None:
                    bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
                if self._any_rank(self._interrupt_requested):
                    self._epoch_acc["time"] += time.perf_counter() - started
                    raise _CleanInterrupt()
        finally:
            bar.close()
        self._epoch_acc["time"] += time.perf_counter() - started
        self._finish_epoch(epoch)
        if self._any_rank(self._interrupt_requested):
            raise _CleanInterrupt()

    def _train_step(self, batch: Any, epoch: int) -> Optional[float]:
        x, y = _split_pair(batch, "train_data")
        x = x.to(self.device, self._dtype, non_blocking=True)
        y = y.to(self.device, self._dtype, non_blocking=True)
        bad_data = not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all()))
        if self._any_rank(bad_data):
            self._skip(epoch, "an input or target is NaN or infinite")
            return None
        pred = _forward(self._net, x, self.input_normalizer, self.output_normalizer,
                        self.device, self.amp)
        if pred.shape != y.shape:
            raise ValueError(f"model: predicts shape {tuple(pred.shape)} for targets of shape "
                             f"{tuple(y.shape)}")
        loss = self.loss_fn(pred, y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError("loss: the loss callable must return a scalar tensor")
        loss_value = float(loss.detach())
        if self._any_rank(not math.isfinite(loss_value)):
            self.optimizer.zero_grad(set_to_none=True)
            self._skip(epoch, f"the loss is {loss_value}")
            return None
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.settings["scheduler"] == "onecycle":
            self.scheduler.step()
        self._epoch_acc["loss_sum"] += loss_value * x.shape[0]
        self._epoch_acc["samples"] += x.shape[0]
        return loss_value

    def _skip(self, epoch: int, reason: str) -> None:
        self._epoch_acc["skipped"] += 1
        self.skipped_batches += 1
        if self.is_main_process:
            warnings.warn(
                f"epoch {epoch + 1}, batch {self._batches_done + 1}: {reason}; batch skipped "
                f"({self.skipped_batches} skipped in this run so far)",
                NonFiniteBatchWarning, stacklevel=3)

    def _finish_epoch(self, epoch: int) -> None:
        loss_sum, samples = self._sum_ranks([self._epoch_acc["loss_sum"], self._epoch_acc["samples"]])
        if samples == 0:
            raise FloatingPointError(
                f"epoch {epoch + 1}: all {self._epoch_acc['skipped']} batches had a non-finite "
                "input, target or loss; nothing was trained (check the data, or lower the "
                "learning rate if the model diverged)"
            )
        lr = float(self.optimizer.param_groups[0]["lr"])
        if self.settings["scheduler"] == "step":
            self.scheduler.step()
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / samples,
            "val_rel_l2": None,
            "val_h1": None,
            "lr": lr,
            "skipped_batches": int(self._epoch_acc["skipped"]),
            "samples": int(samples),
            "epoch_time_s": float(self._epoch_acc["time"]),
        }
        improved = False
        if self.val_data is not None:
            if (epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs:
                metrics = self.evaluate(self.val_data)
                record["val_rel_l2"], record["val_h1"] = metrics["rel_l2"], metrics["h1"]
                value = metrics[self.monitor]
                improved = self.best_value is None or value < self.best_value
                if improved:
                    self.best_value, self.best_epoch = value, epoch + 1
                    self._evals_without_improvement = 0
                else:
                    self._evals_without_improvement += 1
                    patience = self.early_stopping_patience
                    if patience is not None and self._evals_without_improvement >= patience:
                        self.stopped_early = True
        else:
            value = record["train_loss"]
            improved = self.best_value is None or value < self.best_value
            if improved:
                self.best_value, self.best_epoch = value, epoch + 1
        self.history.append(record)
        self.epoch = epoch + 1
        self._batches_done = 0
        self._epoch_acc = self._new_accumulators()
        self._epoch_loader_state = None
        state = self._checkpoint_state(gather=True)
        if self.out_dir is not None and self.is_main_process:
            if improved:
                _atomic_save(state, self.out_dir / BEST_NAME)
            _atomic_save(state, self.out_dir / CHECKPOINT_NAME)
            self._write_logs()
        self._say(self._summary(record) + (" (early stop)" if self.stopped_early else ""))

    def _summary(self, record: Mapping[str, Any]) -> str:
        parts = [f"epoch {record['epoch']}/{self.epochs}", f"train_loss {record['train_loss']:.4g}"]
        if record["val_rel_l2"] is not None:
            parts.append(f"val_rel_l2 {record['val_rel_l2']:.4g}")
        parts += [f"lr {record['lr']:.3g}", f"{record['epoch_time_s']:.2f} s"]
        if record["skipped_batches"]:
            parts.append(f"{record['skipped_batches']} batches skipped")
        return "  ".join(parts)

    def _say(self, message: str) -> None:
        if self.progress and self.is_main_process:
            from tqdm.auto import tqdm

            tqdm.write(message, file=sys.stderr)

    # ------------------------------------------------------------------------- interrupt
    @contextlib.contextmanager
    def _deferred_sigint(self):
        """Turn the first Ctrl-C into a request honoured after the current batch."""
        self._interrupt_requested = False
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def request_stop(signum, frame):
            self._interrupt_requested = True
            # A second Ctrl-C stops at once.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if self.is_main_process:
                print("\ninterrupt: finishing the current batch, then writing the checkpoint "
                      "(Ctrl-C again to stop now)", file=sys.stderr)

        try:
            signal.signal(signal.SIGINT, request_stop)
        except ValueError:  # not the main interpreter
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)

    def _save_on_interrupt(self) -> None:
        if self.out_dir is None:
            return
        exc_type = sys.exc_info()[0]
        clean = exc_type is not None and issubclass(exc_type, _CleanInterrupt)
        if not clean and self.is_main_process:
            warnings.warn("training interrupted in the middle of a batch: the checkpoint is "
                          "written, but a resume from it is not bit-exact", UserWarning, stacklevel=3)
        # Only an interrupt that every rank agreed on may gather across ranks.
        state = self._checkpoint_state(gather=clean)
        state["exact"] = clean
        if self.is_main_process:
            _atomic_save(state, self.out_dir / CHECKPOINT_NAME)
            self._write_logs()
            self._say(f"checkpoint written to {self.out_dir / CHECKPOINT_NAME} at epoch "
                      f"{self.epoch + 1}, batch {self._batches_done}; resume with "
                      f"Trainer.resume({str(self.out_dir)!r}, ...)")

    # ----------------------------------------------------------------------- checkpoints
    def _trainer_config(self) -> dict[str, Any]:
        s = self.settings
        return {
            "loss": s["loss"] if isinstance(s["loss"], str) else "callable",
            "optimizer": s["optimizer"], "lr": float(s["lr"]), "weight_decay": float(s["weight_decay"]),
            "scheduler": s["scheduler"], "step_size": int(s["step_size"]), "gamma": float(s["gamma"]),
            "max_lr": None if s["max_lr"] is None else float(s["max_lr"]),
            "epochs": self.epochs, "batch_size": self.batch_size, "eval_every": self.eval_every,
            "early_stopping_patience": None if self.early_stopping_patience is None
            else int(self.early_stopping_patience),
            "monitor": self.monitor, "amp": s["amp"] if isinstance(s["amp"], str) else bool(s["amp"]),
            "seed": self.seed, "normalize_inputs": bool(s["normalize_inputs"]),
            "normalize_outputs": bool(s["normalize_outputs"]), "periodic": self.periodic,
            "domain": self.domain, "num_workers": int(s["num_workers"]),
        }

    def _checkpoint_state(self, gather: bool) -> dict[str, Any]:
        rng = _capture_rng()
        rng_per_rank = [rng]
        if self.world_size > 1 and gather:
            import torch.distributed as dist

            rng_per_rank = [None] * self.world_size
            dist.all_gather_object(rng_per_rank, rng)
        normalizers = {
            "inputs": self.input_normalizer.state_dict() if self.input_normalizer else None,
            "outputs": self.output_normalizer.state_dict() if self.output_normalizer else None,
        }
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "pdesuite_version": _pdesuite_version(),
            "torch_version": str(torch.__version__),
            "model_class": _qualname(self.model),
            "model_config": _model_config_json(self.model),
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler_state": self.scaler.state_dict() if self.amp else None,
            "normalizers": normalizers,
            "trainer_config": self._trainer_config(),
            "data": {"input_shape": list(self.input_shape), "output_shape": list(self.output_shape),
                     "n_train": len(self.train_data)},
            "epoch": self.epoch,
            "batches_done": self._batches_done,
            "epoch_accumulators": dict(self._epoch_acc),
            "epoch_loader_state": self._epoch_loader_state,
            "history": [dict(record) for record in self.history],
            "best": {"value": self.best_value, "epoch": self.best_epoch},
            "evals_without_improvement": self._evals_without_improvement,
            "stopped_early": self.stopped_early,
            "skipped_batches": self.skipped_batches,
            "world_size": self.world_size,
            "rng_per_rank": rng_per_rank,
            "loader_generator": self._loader_generator.get_state(),
            "exact": True,
        }

    def save_checkpoint(self, path: Union[str, os.PathLike, None] = None) -> Path:
        """Write the full training state (default ``out_dir/checkpoint.pt``); returns the path.

        Under DDP every rank must call it (the RNG states are gathered); rank 0 writes.
        """
        if path is None:
            if self.out_dir is None:
                raise ValueError("path: no out_dir was given to the trainer, so pass a path")
            path = self.out_dir / CHECKPOINT_NAME
        path = Path(path)
        state = self._checkpoint_state(gather=True)
        if self.is_main_process:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save(state, path)
        return path

    def load_state(self, path: Union[str, os.PathLike]) -> None:
        """Load a checkpoint of this run into the trainer: weights, optimizer, schedule,
        normalisers, position, history and RNG states.

        Raises ValueError naming the file and the mismatch when the checkpoint holds another
        model class, config or parameter shape, data of other shapes, or another scheduler.
        """
        path = _resolve_checkpoint(path, CHECKPOINT_NAME)
        checkpoint = load_checkpoint(path)
        _check_model_matches(path, checkpoint, self.model)
        data = checkpoint["data"]
        for name, saved, current in (("input", data["input_shape"], self.input_shape),
                                     ("output", data["output_shape"], self.output_shape)):
            if list(saved) != list(current):
                raise ValueError(f"{path}: the run was trained on {name} samples of shape "
                                 f"{tuple(saved)}, train_data has {tuple(current)}")
        config = checkpoint["trainer_config"]
        for key in ("scheduler", "optimizer", "normalize_inputs", "normalize_outputs"):
            if config[key] != self._trainer_config()[key]:
                raise ValueError(f"{path}: {key}={config[key]!r} in the checkpoint, "
                                 f"{self._trainer_config()[key]!r} in this trainer")
        if int(data["n_train"]) != len(self.train_data):
            warnings.warn(f"{path}: the run had {data['n_train']} training samples, train_data has "
                          f"{len(self.train_data)}; the resumed run will not match an "
                          "uninterrupted one", UserWarning, stacklevel=2)
        if config["scheduler"] == "onecycle":
            saved_total = checkpoint["scheduler_state"]["total_steps"]
            if saved_total != self.epochs * self.steps_per_epoch:
                raise ValueError(
                    f"{path}: the OneCycle schedule spans {saved_total} steps, this trainer "
                    f"{self.epochs} epochs × {self.steps_per_epoch} batches; a OneCycle run "
                    "cannot change its length"
                )

        self.model.load_state_dict(checkpoint["model_state"])
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler_state"])
        if self.amp and checkpoint.get("scaler_state"):
            self.scaler.load_state_dict(checkpoint["scaler_state"])
        for attribute, key in (("input_normalizer", "inputs"), ("output_normalizer", "outputs")):
            normalizer = getattr(self, attribute)
            if normalizer is not None:
                normalizer.load_state_dict(checkpoint["normalizers"][key])
                normalizer.mean = normalizer.mean.to(self.device)
                normalizer.std = normalizer.std.to(self.device)
        self.epoch = int(checkpoint["epoch"])
        self._batches_done = int(checkpoint["batches_done"])
        accumulators = checkpoint["epoch_accumulators"]
        self._epoch_acc = {key: accumulators[key] for key in self._new_accumulators()}
        self._epoch_loader_state = checkpoint["epoch_loader_state"]
        self.history = [dict(record) for record in checkpoint["history"]]
        self.best_value = checkpoint["best"]["value"]
        self.best_epoch = checkpoint["best"]["epoch"]
        self._evals_without_improvement = int(checkpoint["evals_without_improvement"])
        self.stopped_early = bool(checkpoint["stopped_early"])
        self.skipped_batches = int(checkpoint["skipped_batches"])
        if self.stopped_early and self.early_stopping_patience != config["early_stopping_patience"]:
            # A new patience is a new decision about stopping.
            self.stopped_early = False
        self._loader_generator.set_state(checkpoint["loader_generator"])
        rng_per_rank = checkpoint["rng_per_rank"]
        if len(rng_per_rank) == self.world_size:
            _restore_rng(rng_per_rank[self.rank])
        else:
            warnings.warn(f"{path}: saved by {checkpoint['world_size']} processes, resumed by "
                          f"{self.world_size}; RNG states are not restored", UserWarning, stacklevel=2)
        if not checkpoint.get("exact", True):
            warnings.warn(f"{path}: written after an interrupt in the middle of a batch; the "
                          "resumed run is not bit-exact", UserWarning, stacklevel=2)

    @classmethod
    def resume(cls, out_dir: Union[str, os.PathLike], train_data: DataLike,
               val_data: Optional[DataLike] = None, *, model: Optional[nn.Module] = None,
               **overrides: Any) -> "Trainer":
        """Rebuild the trainer of a run from ``out_dir/checkpoint.pt`` and load its state; then
        call :meth:`fit` to continue it.

        Args:
            out_dir: the run directory (or a checkpoint file in it); new files go there too.
            train_data, val_data: the same data as the run used.
            model: a model of the run's class and config (default: rebuilt through the model
                registry from the stored config).
            overrides: only ``RESUME_OVERRIDES``: ``epochs`` (to train longer; not for
                OneCycle), ``progress``, ``device``, ``eval_every``, ``early_stopping_patience``,
                ``num_workers``, and ``loss`` (required when the run used a loss callable).

        Raises ValueError for a checkpoint that does not fit (see :meth:`load_state`) and for
        overrides that would change the run.
        """
        unknown = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if unknown:
            raise ValueError(f"overrides: {unknown} cannot change on resume (allowed: "
                             f"{list(RESUME_OVERRIDES)}); start a new run instead")
        path = _resolve_checkpoint(out_dir, CHECKPOINT_NAME)
        checkpoint = load_checkpoint(path)
        if model is None:
            model = _rebuild_model(path, checkpoint)
        settings = dict(checkpoint["trainer_config"])
        if settings["loss"] == "callable" and "loss" not in overrides:
            raise ValueError(f"loss: the run in {path} used a loss callable; pass it again as loss=")
        if "loss" in overrides and isinstance(overrides["loss"], str) and overrides["loss"] != settings["loss"]:
            raise ValueError(f"loss: the run used {settings['loss']!r}, not {overrides['loss']!r}")
        settings.update(overrides)
        settings.setdefault("progress", True)
        settings.setdefault("device", "auto")
        settings["out_dir"] = path.parent
        trainer = cls.__new__(cls)
        trainer._setup(model, train_data, val_data, settings, fresh=False)
        trainer.load_state(path)
        return trainer

    # ------------------------------------------------------------------------------ logs
    def _write_logs(self) -> None:
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=METRIC_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in self.history:
            writer.writerow({key: "" if record.get(key) is None else record[key] for key in METRIC_COLUMNS})
        _atomic_write_bytes(self.out_dir / METRICS_CSV, text.getvalue().encode())
        summary = {
            "columns": list(METRIC_COLUMNS),
            "epochs": self.history,
            "best": {"metric": f"val_{self.monitor}" if self.val_data is not None else "train_loss",
                     "value": self.best_value, "epoch": self.best_epoch},
            "stopped_early": self.stopped_early,
            "skipped_batches": self.skipped_batches,
            "model_class": _qualname(self.model),
            "model_config": json.loads(_model_config_json(self.model) or "null"),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "trainer": self._trainer_config(),
            "device": str(self.device),
            "world_size": self.world_size,
            "pdesuite_version": _pdesuite_version(),
        }
        payload = json.dumps(summary, indent=2, default=_json_default, allow_nan=True)
        _atomic_write_bytes(self.out_dir / METRICS_JSON, payload.encode())


class _CleanInterrupt(KeyboardInterrupt):
    """Raised at a batch boundary after a deferred Ctrl-C: the state is consistent."""


def _destroy_process_group() -> None:
    """At exit: wait for every rank, then tear the process group down.

    Without the barrier a rank that finishes first destroys its side of the group while another
    still runs (rank 0 writes the metrics and the figure); gloo then aborted rank 0 at exit
    ("terminate called without an active exception"; seen in a fresh-clone test run). The wait is
    bounded, so a rank that crashed does not hang the others.
    """
    from datetime import timedelta

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=120))
        else:
            dist.barrier()
    except Exception:  # noqa: BLE001 - a peer is gone: tear down what is left
        pass
    dist.destroy_process_group()
