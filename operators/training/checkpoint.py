"""Checkpoint files: safe loading, atomic writes, model matching, and the RNG states they carry.

A checkpoint is a dict of tensors and plain Python values (the model config as a JSON string),
so :func:`load_checkpoint` reads it with ``torch.load(weights_only=True)``. Its keys:
``format``, ``format_version``, ``pdesuite_version``, ``torch_version``, ``model_class``
(qualified name), ``model_config`` (JSON or None), ``model_state``, ``optimizer_state``,
``scheduler_state``, ``scaler_state``, ``normalizers`` (``inputs``/``outputs`` state dicts or
None), ``trainer_config`` (:meth:`TrainConfig.checkpoint_dict`), ``data`` (``input_shape``,
``output_shape`` as ``[C, *spatial]``, ``n_train``), the position (``epoch``, ``batches_done``,
``epoch_accumulators``, ``epoch_loader_state``), ``history``, ``best``,
``evals_without_improvement``, ``stopped_early``, ``skipped_batches``, ``world_size``,
``rng_per_rank`` (one :func:`capture_rng` dict per process), ``loader_generator`` and ``exact``
(False when written in the middle of a batch).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

__all__ = [
    "BEST_NAME",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "CHECKPOINT_NAME",
    "atomic_save",
    "atomic_write_bytes",
    "capture_rng",
    "check_model_matches",
    "json_default",
    "load_checkpoint",
    "model_config_json",
    "pdesuite_version",
    "qualname",
    "rebuild_model",
    "resolve_checkpoint",
    "restore_rng",
    "seed_everything",
]

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"
CHECKPOINT_FORMAT = "pdesuite.operators.checkpoint"
CHECKPOINT_FORMAT_VERSION = 1

PathLike = Union[str, os.PathLike]


# ------------------------------------------------------------------------------ files
def resolve_checkpoint(path: PathLike, default_name: str = CHECKPOINT_NAME) -> Path:
    """``path``, or ``path/default_name`` for a directory; FileNotFoundError if it is not a file."""
    path = Path(path)
    if path.is_dir():
        path = path / default_name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    return path


def load_checkpoint(
    path: PathLike, map_location: Union[str, torch.device] = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint safely (``torch.load(weights_only=True)``) and check its format.

    Args:
        path: a checkpoint file, or a run directory (then its ``checkpoint.pt``).
        map_location: where tensors go, default the CPU.

    Raises FileNotFoundError for a missing file, and ValueError for a file that is not a
    pdesuite checkpoint, is damaged, or holds objects that safe loading refuses.
    """
    path = resolve_checkpoint(path, CHECKPOINT_NAME)
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


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename: an interrupted
    write leaves the previous file intact."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(payload)
    os.replace(tmp, path)


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)``, atomically (see :func:`atomic_write_bytes`)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def pdesuite_version() -> str:
    from pdesuite import __version__

    return __version__


# -------------------------------------------------------------------------- RNG states
def capture_rng() -> dict[str, Any]:
    """The RNG states of torch, CUDA (when initialised), NumPy's global and Python's ``random``,
    as tensors and plain values that ``weights_only`` loading accepts."""
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


def restore_rng(state: Mapping[str, Any]) -> None:
    """Set the RNG states :func:`capture_rng` returned. The CUDA states are restored only on a
    machine with as many CUDA devices (a warning otherwise)."""
    torch.set_rng_state(state["torch"].cpu())
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["key"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"]))
    python_state = state["python"]
    random.setstate(
        (
            python_state["version"],
            tuple(int(v) for v in python_state["internal"].tolist()),
            python_state["gauss_next"],
        )
    )
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            warnings.warn("checkpoint: CUDA RNG states saved for "
                          f"{len(cuda_states)} devices, {torch.cuda.device_count()} here; "
                          "CUDA RNG not restored", stacklevel=3)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG (``seed mod 2³²``) and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -------------------------------------------------------------------- model description
def qualname(model: nn.Module) -> str:
    """``module.QualifiedName`` of the model's class."""
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback for NumPy scalars, tuples and sets."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"model config: value {value!r} of type {type(value).__name__} is not JSON")


def model_config_json(model: nn.Module) -> Optional[str]:
    """The model's ``to_config()`` as canonical JSON (sorted keys), or None without one."""
    to_config = getattr(model, "to_config", None)
    if to_config is None:
        return None
    return json.dumps(to_config(), default=json_default, sort_keys=True)


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


def check_model_matches(path: Path, checkpoint: Mapping[str, Any], model: nn.Module) -> None:
    """Raise ValueError naming ``path`` and the mismatch unless ``model`` has the checkpoint's
    class, config (when both have one) and parameter names and shapes."""
    saved_class = checkpoint.get("model_class")
    if saved_class != qualname(model):
        raise ValueError(
            f"{path}: the checkpoint holds a {saved_class} model, but the model given is a "
            f"{qualname(model)}"
        )
    saved_json, current_json = checkpoint.get("model_config"), model_config_json(model)
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


def rebuild_model(path: Path, checkpoint: Mapping[str, Any]) -> nn.Module:
    """A fresh model of the checkpoint's config, through the model registry (weights not
    loaded). Raises ValueError naming ``path`` when it cannot be rebuilt."""
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
        return model_from_config(config)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: cannot rebuild {saved_class} from its config through the "
                         f"model registry ({exc}); pass model=") from None
