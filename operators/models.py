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

# MODELS is provided by the module __getattr__ below, which ruff cannot see
__all__ = ["GRID_CONVENTIONS", "MODELS", "GridOperator", "build_model",  # noqa: F822
           "check_grid_convention", "grid_coordinates", "model_from_config"]

#: Where the ``n`` points of an axis of ``[0, 1]`` lie: ``"node"``, ``i / (n - 1)`` (both ends,
#: the finite-difference grids of the pdesuite families); ``"cell"``, ``n`` points spaced
#: ``1 / n`` (a periodic grid ``i / n``, or cell centres ``(i + 1/2) / n``: neuraloperator's and
#: PDEBench's data). A dataset file records it in its ``grid_convention`` attribute.
GRID_CONVENTIONS = ("node", "cell")


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
        return cls._from_arguments({key: value for key, value in config.items() if key != "name"})

    @classmethod
    def _from_arguments(cls, arguments: Mapping[str, Any]) -> "GridOperator":
        """``cls(**arguments)``, with unknown keys a ValueError that lists the accepted ones.

        :func:`build_model` builds from a name through this, and a saved config through
        :meth:`from_config`, which a model may override to read configs of older versions.
        """
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(arguments) - accepted)
        if unknown:
            raise ValueError(f"config: unknown keys {unknown} for model {cls.name!r}; accepted: "
                             f"{sorted(accepted)}")
        return cls(**arguments)

    def parameter_count(self) -> int:
        """Number of trainable real scalars (a complex parameter counts 2 per entry)."""
        return sum(p.numel() * (2 if p.is_complex() else 1)
                   for p in self.parameters() if p.requires_grad)

    def _check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless ``x`` is ``[B, in_channels, *spatial]`` with ``ndim`` axes."""
        if x.dim() != self.ndim + 2 or x.shape[1] != self.in_channels:
            axes = [f"n{i + 1}" for i in range(self.ndim)]
            expected = ", ".join(["B", str(self.in_channels), *axes])
            raise ValueError(
                f"{type(self).__name__}: input of shape {tuple(x.shape)}; expected [{expected}] "
                f"({self.in_channels} channels, {self.ndim} spatial axes)"
            )


def check_grid_convention(value: Any) -> str:
    """``value`` if it is one of :data:`GRID_CONVENTIONS`; else ValueError naming the options."""
    if not isinstance(value, str) or value not in GRID_CONVENTIONS:
        raise ValueError(f"grid_convention: expected one of {list(GRID_CONVENTIONS)}, got "
                         f"{value!r}")
    return value


def grid_coordinates(x: torch.Tensor, ndim: int, convention: str = "node") -> torch.Tensor:
    """Coordinates of the grid points in ``[0, 1]`` per spatial axis, as a batch like ``x``.

    Args:
        x: ``[B, C, n1, ..., n_ndim]``; only its shape, dtype and device are used.
        ndim: number of spatial axes.
        convention: ``"node"`` (default): ``linspace(0, 1, n)``, the points ``i / (n - 1)``;
            ``"cell"``: ``arange(n) / n``, the points ``i / n`` of a grid of spacing ``1 / n``
            (see :data:`GRID_CONVENTIONS`; cell centres ``(i + 1/2) / n`` differ by a constant,
            which a model's pointwise lift absorbs into its bias).

    Returns:
        ``[B, ndim, n1, ..., n_ndim]``: channel ``i`` holds the coordinates along axis ``i``.
        A point keeps its coordinate at every resolution of its convention, which is what lets
        a model trained at one resolution be evaluated at another.
    """
    check_grid_convention(convention)
    batch, spatial = x.shape[0], x.shape[2:]
    if convention == "node":
        axes = [torch.linspace(0.0, 1.0, n, dtype=x.dtype, device=x.device) for n in spatial]
    else:
        axes = [torch.arange(n, dtype=x.dtype, device=x.device) / n for n in spatial]
    mesh = torch.meshgrid(*axes, indexing="ij")  # ndim tensors of shape spatial
    return torch.stack(mesh).unsqueeze(0).expand(batch, ndim, *spatial)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"config value {value!r} of type {type(value).__name__} is not "
                    f"JSON-serialisable")


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
        raise ValueError("config: has no 'name' key; expected one of "
                         + ", ".join(sorted(_registry())))
    return _model_class(config["name"]).from_config(config)


def build_model(name_or_config: str | Mapping[str, Any], **overrides: Any) -> GridOperator:
    """Build a model from a registry name or a config, with keyword overrides.

    Examples: ``build_model("fno", in_channels=1, width=16)``;
    ``build_model(model.to_config(), out_channels=2)``.

    Raises:
        ValueError: unknown model name, or an override the model does not take.
    """
    if isinstance(name_or_config, str):
        return _model_class(name_or_config)._from_arguments(overrides)
    if isinstance(name_or_config, Mapping):
        return model_from_config({**name_or_config, **overrides})
    raise TypeError(f"name_or_config: expected a model name or a config dict, got "
                    f"{type(name_or_config).__name__}")


def _model_class(name: Any) -> type:
    registry = _registry()
    if name not in registry:
        raise ValueError(f"model name: unknown {name!r}; expected one of {sorted(registry)}")
    return registry[name]
