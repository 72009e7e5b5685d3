"""Prediction and evaluation in data units, shared by a Trainer and a loaded ``TrainedModel``.

Inputs are encoded by the input normaliser, the model runs (under float16 autocast when AMP is
on), and its output is decoded by the output normaliser, so predictions and errors are in the
units of the data.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from pdesuite.operators.losses import H1Loss, LpLoss
from pdesuite.operators.normalizer import UnitGaussianNormalizer
from pdesuite.operators.training.checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    check_model_matches,
    load_checkpoint,
    rebuild_model,
)
from pdesuite.operators.training.data import DataLike, NonFiniteBatchWarning, as_dataset, split_pair
from pdesuite.operators.training.distributed import select_device

__all__ = ["Inference", "TrainedModel", "forward", "load_trained", "model_dtype", "resolve_amp"]


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (float32 without one)."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def resolve_amp(amp: Union[bool, str], device: torch.device) -> bool:
    """``"auto"``: on for CUDA. True on another device raises ValueError."""
    use_amp = device.type == "cuda" if amp == "auto" else bool(amp)
    if use_amp and device.type != "cuda":
        raise ValueError(f"amp: mixed precision needs a CUDA device, got {device}")
    return use_amp


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.float16)


def forward(model: Callable, x: torch.Tensor, input_normalizer, output_normalizer,
            device: torch.device, amp: bool) -> torch.Tensor:
    """``decode(model(encode(x)))``; a half-precision output comes back as float32."""
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


class Inference:
    """``predict`` and ``evaluate`` over ``model``, its normalisers, ``device`` and ``amp``."""

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

    def predict(
        self, x: Union[torch.Tensor, np.ndarray], batch_size: Optional[int] = None
    ) -> torch.Tensor:
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
        dtype = model_dtype(self.model)
        step = int(batch_size or self.batch_size)
        outputs = []
        with self._eval_mode():
            for start in range(0, x.shape[0], step):
                chunk = x[start:start + step].to(self.device, dtype)
                outputs.append(forward(self.model, chunk, self.input_normalizer,
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
            prediction is not: it makes the metric NaN. ``h1`` is NaN on grids under 3 points.
        """
        dataset = as_dataset(data, "data")
        loader = DataLoader(dataset, batch_size=int(batch_size or self.batch_size), shuffle=False,
                            generator=torch.Generator())
        l2 = LpLoss(2, relative=True, reduction="none")
        h1 = H1Loss(relative=True, periodic=self.periodic, domain=self.domain, reduction="none")
        dtype = model_dtype(self.model)
        sums = {"rel_l2": 0.0, "h1": 0.0}
        count = skipped = 0
        with self._eval_mode():
            for batch in loader:
                x, y = split_pair(batch, "data")
                x = x.to(self.device, dtype)
                y = y.to(self.device, dtype)
                _check_channels(x, self.input_shape, "data inputs")
                finite = torch.isfinite(x.flatten(1)).all(1) & torch.isfinite(y.flatten(1)).all(1)
                if not bool(finite.all()):
                    skipped += int((~finite).sum())
                    x, y = x[finite], y[finite]
                    if x.shape[0] == 0:
                        continue
                pred = forward(self.model, x, self.input_normalizer, self.output_normalizer,
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


class TrainedModel(Inference):
    """A model with its normalisers, loaded from a checkpoint by :func:`load_trained`.

    Attributes: ``model``, ``input_normalizer``, ``output_normalizer`` (or None), ``device``,
    ``checkpoint_path``, ``epoch``, ``history``, ``model_config`` (dict or None),
    ``trainer_config`` (dict), ``input_shape``/``output_shape`` (``[C, *spatial]`` of training).
    Methods :meth:`predict` and :meth:`evaluate` as on a Trainer.
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

    Raises FileNotFoundError for a missing file, and ValueError when the checkpoint does not fit
    ``model`` (class, config or shapes).
    """
    path = Path(path)
    if path.is_dir():
        path = path / BEST_NAME if (path / BEST_NAME).is_file() else path / CHECKPOINT_NAME
    checkpoint = load_checkpoint(path)
    if model is None:
        model = rebuild_model(path, checkpoint)
    check_model_matches(path, checkpoint, model)
    model.load_state_dict(checkpoint["model_state"])
    chosen = select_device(device)
    return TrainedModel(model, checkpoint, path, chosen, resolve_amp(amp, chosen))
