"""Saving and loading Koopman estimators, fitted or not, without pickle.

``estimator.save(path)`` writes a directory:

- ``estimator.json``: the format, the estimator's class, its hyperparameters (the constructor's
  arguments, the dictionary's configuration included) and its fitted scalars, each value
  tagged when JSON alone would lose its type (tuples, arrays, dictionaries, torch settings);
- ``arrays.npz``: every fitted array (``K``, the lifted pairs, centres, ...), read back with
  ``allow_pickle=False``;
- ``weights.pt`` (:class:`~pdesuite.dynamics.koopman.deep.DeepKoopman` only): the
  autoencoder's ``state_dict``, read back with ``torch.load(weights_only=True)``.

:func:`load_estimator` rebuilds only classes of this package, named in the two registries
below, so that a file can never make it import or run other code. A loaded estimator predicts
exactly what the saved one did (the same arrays, the same operations). A
:class:`~pdesuite.dynamics.koopman.dictionaries.CallableDictionary` or a callable kernel is code,
not data: saving an estimator that holds one is a TypeError naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from pdesuite.dynamics.koopman import dictionaries
from pdesuite.dynamics.koopman.base import KoopmanEstimator
from pdesuite.dynamics.koopman.edmd import EDMD
from pdesuite.dynamics.koopman.hankel import HankelDMD
from pdesuite.dynamics.koopman.kernel import KernelEDMD
from pdesuite.dynamics.koopman.mpedmd import MeasurePreservingEDMD

__all__ = ["FORMAT", "FORMAT_VERSION", "load_estimator", "save_estimator"]

FORMAT = "pdesuite.dynamics.koopman.estimator"
FORMAT_VERSION = 1
JSON_NAME = "estimator.json"
ARRAYS_NAME = "arrays.npz"
WEIGHTS_NAME = "weights.pt"

#: The estimator classes a file may name (DeepKoopman is added on use: it imports torch).
ESTIMATORS = {cls.__name__: cls for cls in (EDMD, HankelDMD, KernelEDMD, MeasurePreservingEDMD)}
#: The dictionary classes a file may name.
DICTIONARIES = {cls.__name__: cls for cls in (
    dictionaries.Identity, dictionaries.Monomials, dictionaries.RadialBasis,
    dictionaries.FourierFeatures, dictionaries.RandomFourierFeatures)}

# Caches recomputed on demand from the saved arrays, and the torch module saved on its own.
_NOT_SAVED = {"_spectrum": None, "_residuals": None}
_DEEP_MODULE = "model_"

PathLike = Union[str, os.PathLike]


# ------------------------------------------------------------------------------ encoding
class _Encoder:
    """Turns attribute values into JSON, collecting the arrays by a dotted key."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def value(self, value: Any, key: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biufc":
                raise TypeError(f"{key}: an array of dtype {value.dtype} cannot be saved")
            self.arrays[key] = value
            return {"array": key}
        if isinstance(value, tuple):
            return {"tuple": [self.value(item, f"{key}.{i}") for i, item in enumerate(value)]}
        if isinstance(value, list):
            return [self.value(item, f"{key}.{i}") for i, item in enumerate(value)]
        if isinstance(value, dict) and all(isinstance(name, str) for name in value):
            return {"mapping": {name: self.value(item, f"{key}.{name}")
                                for name, item in value.items()}}
        if isinstance(value, dictionaries.CallableDictionary):
            raise TypeError(f"{key}: a CallableDictionary holds a function, which cannot be "
                            "saved; use a built-in dictionary to save the estimator")
        if isinstance(value, dictionaries.Dictionary):
            if type(value).__name__ not in DICTIONARIES:
                raise TypeError(f"{key}: dictionary class {type(value).__name__} is not one "
                                f"that can be saved ({sorted(DICTIONARIES)})")
            return {"dictionary": self.instance(value, key)}
        module = type(value).__module__.split(".")[0]
        if module == "torch":
            return self._torch_value(value, key)
        if type(value).__name__ == "DeepKoopmanLoss":
            return {"deep_loss": {name: float(weight) for name, weight in vars(value).items()}}
        if callable(value):
            raise TypeError(f"{key}: a callable ({getattr(value, '__name__', 'function')}) "
                            "cannot be saved; use a built-in kernel or dictionary")
        raise TypeError(f"{key}: a value of type {type(value).__name__} cannot be saved")

    @staticmethod
    def _torch_value(value: Any, key: str) -> dict[str, str]:
        import torch

        if isinstance(value, torch.device):
            return {"torch_device": str(value)}
        if isinstance(value, torch.dtype):
            return {"torch_dtype": str(value).removeprefix("torch.")}
        raise TypeError(f"{key}: a value of type {type(value).__name__} cannot be saved")

    def instance(self, obj: Any, key: str) -> dict[str, Any]:
        """``{"class": name, "attributes": {...}}`` of ``obj``'s attributes."""
        attributes = {}
        for name, value in vars(obj).items():
            if name in _NOT_SAVED or name == _DEEP_MODULE:
                continue
            attributes[name] = self.value(value, f"{key}.{name}")
        return {"class": type(obj).__name__, "attributes": attributes}


# ------------------------------------------------------------------------------ decoding
class _Decoder:
    """The inverse of :class:`_Encoder`, reading arrays from a loaded ``.npz``."""

    def __init__(self, arrays: Any, path: Path, device: Optional[str]) -> None:
        self.arrays = arrays
        self.path = path
        self.device = device

    def value(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            raise ValueError(f"{self.path}: malformed value {value!r}")
        (tag, content), = value.items()
        if tag == "array":
            if content not in self.arrays:
                raise ValueError(f"{self.path}: array {content!r} is missing from {ARRAYS_NAME}")
            return self.arrays[content]
        if tag == "tuple":
            return tuple(self.value(item) for item in content)
        if tag == "mapping":
            return {name: self.value(item) for name, item in content.items()}
        if tag == "dictionary":
            return self.instance(content, DICTIONARIES, "dictionary")
        if tag == "deep_loss":
            from pdesuite.dynamics.koopman.deep import DeepKoopmanLoss

            return DeepKoopmanLoss(**content)
        if tag == "torch_device":
            return self._device(content)
        if tag == "torch_dtype":
            import torch

            if content not in ("float32", "float64"):
                raise ValueError(f"{self.path}: unexpected torch dtype {content!r}")
            return getattr(torch, content)
        raise ValueError(f"{self.path}: unknown value tag {tag!r}")

    def _device(self, saved: str) -> Any:
        import torch

        if self.device is not None:
            return torch.device(self.device)
        device = torch.device(saved)
        if device.type == "cuda" and not torch.cuda.is_available():
            device = torch.device("cpu")  # saved on a GPU machine, loaded on one without
        return device

    def instance(self, content: Any, registry: dict[str, type], what: str) -> Any:
        if not isinstance(content, dict) or set(content) != {"class", "attributes"}:
            raise ValueError(f"{self.path}: malformed {what} entry")
        name = content["class"]
        if name not in registry:
            raise ValueError(f"{self.path}: unknown {what} class {name!r}; expected one of "
                             f"{sorted(registry)}")
        obj = object.__new__(registry[name])
        obj.__dict__.update({key: self.value(item)
                             for key, item in content["attributes"].items()})
        return obj


# ------------------------------------------------------------------------------- files
def _estimator_registry() -> dict[str, type]:
    from pdesuite.dynamics.koopman.deep import DeepKoopman

    return {**ESTIMATORS, "DeepKoopman": DeepKoopman}


def save_estimator(estimator: KoopmanEstimator, path: PathLike,
                   overwrite: bool = False) -> Path:
    """Write ``estimator`` (fitted or not) to the directory ``path``; returns it.

    Args:
        estimator: one of the package's Koopman estimators.
        path: a directory, created; an existing non-empty one is an error unless ``overwrite``.
        overwrite: replace the files of an existing directory (default False).

    Raises:
        TypeError: the estimator holds a callable (dictionary or kernel), or is of a class that
            cannot be saved. FileExistsError: ``path`` exists and is not empty.
    """
    if type(estimator).__name__ not in {*ESTIMATORS, "DeepKoopman"}:
        raise TypeError(f"estimator: expected one of the Koopman estimators, got "
                        f"{type(estimator).__name__}")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"path: {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"path: {path} exists and is not empty; pass overwrite=True")
    # Everything is encoded before anything is written: a refusal leaves no half-written model.
    encoder = _Encoder()
    body = encoder.instance(estimator, "estimator")
    header = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "fitted": hasattr(estimator, "_K"), "estimator": body}
    text = json.dumps(header, indent=1, allow_nan=True)
    module = getattr(estimator, _DEEP_MODULE, None)
    path.mkdir(parents=True, exist_ok=True)
    for stale in (JSON_NAME, ARRAYS_NAME, WEIGHTS_NAME):
        if (path / stale).exists():
            (path / stale).unlink()
    np.savez(path / ARRAYS_NAME, **encoder.arrays)
    if module is not None:
        import torch

        torch.save({key: value.detach().cpu() for key, value in module.state_dict().items()},
                   path / WEIGHTS_NAME)
    # The JSON last: its presence marks a complete save.
    (path / JSON_NAME).write_text(text + "\n", encoding="utf-8")
    return path


def load_estimator(path: PathLike, device: Optional[str] = None) -> KoopmanEstimator:
    """Read an estimator written by :func:`save_estimator` (or ``estimator.save``).

    Args:
        path: the directory.
        device: DeepKoopman only: the torch device to load onto (default the saved one, or the
            CPU where that was CUDA and none is available).

    Raises:
        FileNotFoundError: no ``estimator.json`` in ``path``. ValueError: another format, a
        newer version, or a class that is not one of this package's estimators/dictionaries.
    """
    path = Path(path)
    header_path = path / JSON_NAME
    if not header_path.is_file():
        raise FileNotFoundError(f"path: {header_path} not found; not a saved Koopman estimator")
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{header_path}: not valid JSON ({error})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{header_path}: not a saved Koopman estimator (format "
                         f"{header.get('format') if isinstance(header, dict) else None!r})")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{header_path}: format version {header['format_version']} is newer "
                         f"than this pdesuite reads ({FORMAT_VERSION})")
    body = header["estimator"]
    registry = (_estimator_registry() if body.get("class") == "DeepKoopman" else ESTIMATORS)
    with np.load(path / ARRAYS_NAME, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    estimator = _Decoder(arrays, header_path, device).instance(body, registry, "estimator")
    estimator.__dict__.update(_NOT_SAVED)
    if type(estimator).__name__ == "DeepKoopman" and header["fitted"]:
        _load_deep_module(estimator, path / WEIGHTS_NAME)
    return estimator


def _load_deep_module(estimator: Any, weights: Path) -> None:
    """Rebuild the autoencoder of a fitted DeepKoopman and load its weights safely."""
    import torch

    from pdesuite.dynamics.koopman.deep import KoopmanAutoencoder

    if not weights.is_file():
        raise FileNotFoundError(f"path: {weights} not found; the deep model's weights are "
                                "missing")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state_dim = int(np.prod(estimator.state_shape_)) * estimator.delays
    model = KoopmanAutoencoder(state_dim, estimator.latent_dim, estimator.hidden)
    # the dtype first: loading float64 weights into float32 parameters would round them
    model = model.to(device=estimator.device, dtype=estimator.dtype)
    model.load_state_dict(state)
    estimator.model_ = model.eval()

