"""The model contract shared by the grid neural operators, and their registry.

Every grid operator of :mod:`pdesuite.operators` (:class:`~pdesuite.operators.fno.FNO`,
:class:`~pdesuite.operators.lsm.LSM`, :class:`~pdesuite.operators.mgno.MgNO`) is an
``nn.Module`` on ``[B, C_in, *spatial] -> [B, C_out, *spatial]`` that derives from
:class:`GridOperator` and so offers

- ``model.to_config() -> dict``: JSON-serialisable, with the registry ``"name"`` and every
  constructor argument, so that a checkpoint can rebuild the model;
- ``Model.from_config(cfg)``: the inverse; a config of another model or with unknown keys is a
  ``ValueError`` (a checkpoint of another model gets a clear error, not a silent rebuild);
- ``model.parameter_count()``: trainable real scalars (a complex weight counts twice);
- an input check in ``forward``: a wrong channel count or a wrong number of spatial axes is a
  ``ValueError`` that names the input shape and what was expected.

Registry: ``MODELS`` maps ``"fno"``, ``"lsm"``, ``"mgno"`` to their classes;
``build_model("fno", width=16)`` and ``model_from_config(cfg)`` build from a name or a config.
``MODELS`` is assembled on first access (PEP 562 module ``__getattr__``) because the model
modules import :class:`GridOperator` from here; importing them at the top of this module would
be an import cycle.

torch is imported at module level: this module belongs to the operators layer, which is the
one place of the suite where that is allowed.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["GridOperator", "MODELS", "build_model", "model_from_config", "grid_coordinates"]


class GridOperator(nn.Module):
    """Base of the grid neural operators: config round trip, parameter count, input check.

    A subclass sets the class attribute ``name`` (its registry key), stores its constructor
    arguments through :meth:`_store_config` (JSON-friendly values only: ints, floats, strings,
    bools, None and lists of them), and sets ``in_channels`` and ``ndim``.
    """

    name: str = ""
    in_channels: int
    ndim: int

    def _store_config(self, **config: Any) -> None:
        # tuples become lists so that to_config() == json.loads(json.dumps(to_config()))
        self._config = {key: _jsonable(value) for key, value in config.items()}

    def to_config(self) -> dict:
        """Constructor arguments plus ``"name"``; JSON-serialisable. ``from_config`` inverts it."""
        return {"name": self.name, **json.loads(json.dumps(self._config))}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "GridOperator":
        """Rebuild a model (fresh weights) from :meth:`to_config` output.

        Raises:
            ValueError: ``config["name"]`` is another model's, or ``config`` has keys that
                the constructor does not take.
        """
        if not isinstance(config, Mapping):
            raise TypeError(f"config: expected a mapping, got {type(config).__name__}")
        name = config.get("name", cls.name)
        if name != cls.name:
            raise ValueError(f"config: is for model {name!r}, not {cls.name!r}")
        arguments = {key: value for key, value in config.items() if key != "name"}
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(arguments) - accepted)
        if unknown:
            raise ValueError(f"config: unknown keys {unknown} for model {cls.name!r}; accepted: {sorted(accepted)}")
        return cls(**arguments)

    def parameter_count(self) -> int:
        """Number of trainable real scalars (a complex parameter counts 2 per entry)."""
        return sum(p.numel() * (2 if p.is_complex() else 1) for p in self.parameters() if p.requires_grad)

    def _check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless ``x`` is ``[B, in_channels, *spatial]`` with ``ndim`` axes."""
        if x.dim() != self.ndim + 2 or x.shape[1] != self.in_channels:
            expected = ", ".join(["B", str(self.in_channels)] + [f"n{i + 1}" for i in range(self.ndim)])
            raise ValueError(
                f"{type(self).__name__}: input of shape {tuple(x.shape)}; expected [{expected}] "
                f"({self.in_channels} channels, {self.ndim} spatial axes)"
            )


def grid_coordinates(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Node coordinates in ``[0, 1]`` per spatial axis, broadcast to the batch of ``x``.

    Args:
        x: ``[B, C, n1, ..., n_ndim]``; only its shape, dtype and device are used.
        ndim: number of spatial axes.

    Returns:
        ``[B, ndim, n1, ..., n_ndim]``: channel ``i`` holds ``linspace(0, 1, n_{i+1})`` along
        axis ``i``. The coordinates span ``[0, 1]`` at every resolution, which is what lets a
        model trained at one resolution be evaluated at another.
    """
    batch, spatial = x.shape[0], x.shape[2:]
    axes = [torch.linspace(0.0, 1.0, n, dtype=x.dtype, device=x.device) for n in spatial]
    mesh = torch.meshgrid(*axes, indexing="ij")  # ndim tensors of shape spatial
    return torch.stack(mesh).unsqueeze(0).expand(batch, ndim, *spatial)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"config value {value!r} of type {type(value).__name__} is not JSON-serialisable")


# ----------------------------------------------------------------------------------- registry

def _registry() -> dict:
    from pdesuite.operators.fno import FNO
    from pdesuite.operators.lsm import LSM
    from pdesuite.operators.mgno import MgNO

    return {"fno": FNO, "lsm": LSM, "mgno": MgNO}


def __getattr__(attribute: str) -> Any:
    if attribute == "MODELS":
        registry = _registry()
        globals()["MODELS"] = registry  # later look-ups skip this hook
        return registry
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


def model_from_config(config: Mapping[str, Any]) -> GridOperator:
    """Build the model that ``config`` (output of ``to_config``) describes, with fresh weights.

    Raises:
        ValueError: no ``"name"`` key, an unknown name, or keys the model does not take.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config: expected a mapping, got {type(config).__name__}")
    if "name" not in config:
        raise ValueError("config: has no 'name' key; expected one of " + ", ".join(sorted(_registry())))
    return _model_class(config["name"]).from_config(config)


def build_model(name_or_config: str | Mapping[str, Any], **overrides: Any) -> GridOperator:
    """Build a model from a registry name or a config, with keyword overrides.

    Examples: ``build_model("fno", in_channels=1, width=16)``;
    ``build_model(model.to_config(), out_channels=2)``.

    Raises:
        ValueError: unknown model name, or an override the model does not take.
    """
    if isinstance(name_or_config, str):
        return _model_class(name_or_config).from_config({"name": name_or_config, **overrides})
    if isinstance(name_or_config, Mapping):
        return model_from_config({**name_or_config, **overrides})
    raise TypeError(f"name_or_config: expected a model name or a config dict, got {type(name_or_config).__name__}")


def _model_class(name: Any) -> type:
    registry = _registry()
    if name not in registry:
        raise ValueError(f"model name: unknown {name!r}; expected one of {sorted(registry)}")
    return registry[name]
