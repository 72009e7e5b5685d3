"""The run directory of a trained preconditioner: writing it, and loading it back in one line.

A run directory holds ``checkpoint.pt`` (rewritten atomically after every epoch) and
``metrics.json`` (the loss per epoch). The checkpoint is a dict of tensors and plain values, read
with ``torch.load(weights_only=True)`` as the Trainer's are; its keys: ``format``,
``format_version``, ``pdesuite_version``, ``torch_version``, ``model_class``, ``model_config``
(JSON), ``model_state``, ``optimizer_state``, ``epoch`` (epochs done), ``history``,
``settings`` (the training settings, JSON: grid shape, conditioning channels, right-hand sides,
optimiser, seed) and ``finished``.

``load_preconditioner("run/pc", coefficient=a)`` rebuilds the model (a
:class:`~pdesuite.operators.preconditioning.network.DCDMNet`, or any model of the registry of
:mod:`pdesuite.operators.models`) and wraps it as a
:class:`~pdesuite.operators.preconditioning.adapter.LearnedPreconditioner` for the grid of ``a``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from pdesuite.operators.preconditioning.adapter import LearnedPreconditioner
from pdesuite.operators.preconditioning.mapping import GridLike
from pdesuite.operators.preconditioning.network import DCDMNet
from pdesuite.operators.training.checkpoint import (
    atomic_save,
    atomic_write_bytes,
    json_default,
    model_config_json,
    pdesuite_version,
    qualname,
    resolve_checkpoint,
)
from pdesuite.operators.training.distributed import select_device

__all__ = ["CHECKPOINT_NAME", "FORMAT", "FORMAT_VERSION", "METRICS_NAME", "load_preconditioner",
           "load_preconditioner_model", "read_run", "rebuild_model", "write_run"]

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
FORMAT = "pdesuite.operators.preconditioner"
FORMAT_VERSION = 1

PathLike = Union[str, os.PathLike]


def write_run(out_dir: PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None,
              epoch: int, history: list, settings: Mapping[str, Any], finished: bool) -> Path:
    """Write ``checkpoint.pt`` and ``metrics.json`` into ``out_dir`` (created), atomically;
    returns the checkpoint's path. ``model`` needs ``to_config()`` to be loadable by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings_json = json.dumps(dict(settings), default=json_default, sort_keys=True)
    checkpoint = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pdesuite_version": pdesuite_version(),
        "torch_version": str(torch.__version__),
        "model_class": qualname(model),
        "model_config": model_config_json(model),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": None if optimizer is None else optimizer.state_dict(),
        "epoch": int(epoch),
        "history": json.dumps(history, default=json_default),
        "settings": settings_json,
        "finished": bool(finished),
    }
    path = out_dir / CHECKPOINT_NAME
    atomic_save(checkpoint, path)
    metrics = {"epochs": history, "settings": json.loads(settings_json), "finished": finished}
    atomic_write_bytes(out_dir / METRICS_NAME,
                       json.dumps(metrics, indent=2, default=json_default).encode())
    return path


def read_run(run_dir: PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint of ``run_dir`` (or a checkpoint file), with ``settings`` and ``history``
    decoded. Raises FileNotFoundError for a missing file, ValueError for another format."""
    path = resolve_checkpoint(run_dir, CHECKPOINT_NAME)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several kinds for a bad file
        raise ValueError(f"{path}: cannot be read as a safe torch checkpoint: {error}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pdesuite preconditioner run "
                         f"(format {_format_of(checkpoint)!r})")
    if checkpoint.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {checkpoint['format_version']} is newer than "
                         f"this pdesuite reads ({FORMAT_VERSION})")
    checkpoint["settings"] = json.loads(checkpoint["settings"])
    checkpoint["history"] = json.loads(checkpoint["history"])
    checkpoint["path"] = path
    return checkpoint


def load_preconditioner_model(run_dir: PathLike, device: Any = "cpu") -> nn.Module:
    """The trained model of ``run_dir``, on ``device`` (``"auto"``: CUDA when available), in
    eval mode. Raises ValueError when its config names no model this suite can build."""
    return rebuild_model(read_run(run_dir), device)


def rebuild_model(checkpoint: Mapping[str, Any], device: Any) -> nn.Module:
    """The model of a checkpoint that :func:`read_run` returned, on ``device``, in eval mode."""
    if checkpoint["model_config"] is None:
        raise ValueError(f"{checkpoint['path']}: the {checkpoint['model_class']} model has no "
                         "config; rebuild it yourself and load checkpoint['model_state']")
    config = json.loads(checkpoint["model_config"])
    if config.get("name") == DCDMNet.name:
        model = DCDMNet.from_config(config)
    else:
        from pdesuite.operators.models import model_from_config

        model = model_from_config(config)
    model.load_state_dict(checkpoint["model_state"])
    return model.to(select_device(device)).eval()


def load_preconditioner(run_dir: PathLike, grid: GridLike | None = None,
                        free: np.ndarray | None = None, *, coefficient: Any = None,
                        conditioning: Any = None, device: Any = "cpu") -> LearnedPreconditioner:
    """``M = load_preconditioner("run/pc", coefficient=a)``: a trained run as a preconditioner.

    Args:
        run_dir: the run directory that :func:`train_preconditioner` wrote (or its
            ``checkpoint.pt``).
        grid: the grid of the system (a Grid or a shape); default the shape of ``coefficient``,
            else the training grid. Any grid the model accepts, not only the training one.
        free: the unknowns' node indices (``system.free``); default the interior nodes.
        coefficient, conditioning: the system's conditioning fields, as in
            :class:`LearnedPreconditioner`.
        device: where the model runs; ``"cpu"`` (default) or e.g. ``"cuda"`` for a batched
            torch solve on the GPU.

    Raises ValueError (before any solve) when the model cannot serve the system.
    """
    checkpoint = read_run(run_dir)
    model = rebuild_model(checkpoint, device)
    if grid is None:
        grid = (np.shape(coefficient) if np.ndim(coefficient) >= 1
                else tuple(checkpoint["settings"]["grid_shape"]))
    return LearnedPreconditioner(model, grid, free, coefficient=coefficient,
                                 conditioning=conditioning)


def _format_of(checkpoint: Any) -> Any:
    """The ``format`` entry of a loaded checkpoint, None if it is not a dict."""
    return checkpoint.get("format") if isinstance(checkpoint, dict) else None
