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

The models on a finite-element space, ``"spon"`` and ``"spon-mg"`` (:data:`FE_MODEL_NAMES`,
:mod:`pdesuite.operators.spon`), are not grid operators and not in ``MODELS``: they need the
space, and are built from the mesh of a dataset file (``PDEDataset(...).mesh_info``) by
:func:`build_fe_model`, which takes a name or a saved config (:func:`fe_data_arguments`
gives the arguments taken from the training data). Their config holds no mesh, so one trained
model runs on any mesh of its cell type and degree (:func:`rebind_fe_model`); ``build_model``
and ``model_from_config`` refuse them with a ValueError that says so.
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
__all__ = ["FE_MODEL_NAMES", "GRID_CONVENTIONS", "MODELS", "GridOperator",  # noqa: F822
           "build_fe_model", "build_model", "check_grid_convention", "fe_data_arguments",
           "grid_coordinates", "model_from_config", "rebind_fe_model"]

#: Models on a finite-element space, built from a mesh by :func:`build_fe_model`.
FE_MODEL_NAMES = ("spon", "spon-mg")
#: Arguments the training command passes to every model that FE models do not take.
_GRID_ONLY_ARGUMENTS = ("ndim", "grid_convention")

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
    _refuse_fe_model(config["name"])
    return _model_class(config["name"]).from_config(config)


def build_model(name_or_config: str | Mapping[str, Any], **overrides: Any) -> GridOperator:
    """Build a model from a registry name or a config, with keyword overrides.

    Examples: ``build_model("fno", in_channels=1, width=16)``;
    ``build_model(model.to_config(), out_channels=2)``.

    Raises:
        ValueError: unknown model name, or an override the model does not take.
    """
    if isinstance(name_or_config, str):
        _refuse_fe_model(name_or_config)
        return _model_class(name_or_config)._from_arguments(overrides)
    if isinstance(name_or_config, Mapping):
        return model_from_config({**name_or_config, **overrides})
    raise TypeError(f"name_or_config: expected a model name or a config dict, got "
                    f"{type(name_or_config).__name__}")


def build_fe_model(name_or_config: str | Mapping[str, Any], mesh_info: Any,
                   **arguments: Any) -> nn.Module:
    """A model on the finite-element space of ``mesh_info``, with fresh weights.

    Args:
        name_or_config: ``"spon"`` or ``"spon-mg"``, or a config from the model's
            ``to_config()`` (whose cell type and degree must be the mesh's).
        mesh_info: a :class:`~pdesuite.datasets.loaders.MeshInfo` (``PDEDataset.mesh_info``):
            the space, its Dirichlet DoFs (exact in the output) and, for ``"spon-mg"``, the
            coarse meshes of its lower levels.
        arguments: constructor arguments (``in_channels``, ``width``, ``levels`` for
            ``"spon-mg"``, default 2, ...); ``ndim`` and ``grid_convention``, which the grid
            models take, are ignored. Unknown names are a ValueError listing the accepted ones.

    Raises:
        ValueError: an unknown name, a config of another cell type or degree than the mesh
            (naming both), too few coarse meshes for the levels.
    """
    from pdesuite.operators.spon import SPON, SPONMultigrid

    if isinstance(name_or_config, Mapping):
        config = {**name_or_config, **arguments}
        name = config.get("name")
    elif isinstance(name_or_config, str):
        config, name = None, name_or_config
    else:
        raise TypeError(f"name_or_config: expected a model name or a config dict, got "
                        f"{type(name_or_config).__name__}")
    if name not in FE_MODEL_NAMES:
        raise ValueError(f"model name: {name!r} is not a finite-element model; expected one of "
                         f"{list(FE_MODEL_NAMES)}")
    dirichlet = _dirichlet(mesh_info)
    if config is not None:
        _check_mesh_fits(config, mesh_info)
        if name == "spon":
            return SPON.from_config(config, mesh_info.space, dirichlet=dirichlet)
        return SPONMultigrid.from_config(config, mesh_info.spaces(int(config["levels"])),
                                         dirichlet=dirichlet)
    settings = {k: v for k, v in arguments.items() if k not in _GRID_ONLY_ARGUMENTS}
    cls = SPON if name == "spon" else SPONMultigrid
    levels = settings.pop("levels", 2) if name == "spon-mg" else None
    accepted = set(inspect.signature(cls.__init__).parameters) - {
        "self", "space", "spaces", "dirichlet", "boundary_data"}
    unknown = sorted(set(settings) - accepted)
    if unknown:
        raise ValueError(f"config: unknown keys {unknown} for model {name!r}; accepted: "
                         f"{sorted(accepted | ({'levels'} if levels is not None else set()))}")
    if name == "spon":
        return SPON(mesh_info.space, dirichlet=dirichlet, **settings)
    return SPONMultigrid(mesh_info.spaces(levels), dirichlet=dirichlet, **settings)


def fe_data_arguments(dataset, mesh_info: Any = None) -> dict[str, Any]:
    """The data-dependent arguments of an FE model, from its training samples.

    Args:
        dataset: ``(x, y)`` pairs ``[C, ndofs]`` (a ``PDEDataset`` split, unnormalised).
        mesh_info: the data's :class:`~pdesuite.datasets.loaders.MeshInfo`; default
            ``dataset.mesh_info``.

    Returns:
        ``{"boundary_channel": ..., "input_scale": [C_in], "output_scale": [C_out],
        "output_shift": [C_out]}``: the mesh's boundary channel, the root mean square of each
        input channel (so that zero stays zero, as the boundary channel's inside values must),
        and the mean and standard deviation of each output channel (1 for a constant one).

    Raises:
        ValueError: the outputs at the Dirichlet DoFs differ from the boundary channel there
            (or from zero without one): the model's exact boundary values would be wrong.
    """
    mesh_info = dataset.mesh_info if mesh_info is None else mesh_info
    dofs, channel = mesh_info.dirichlet_dofs, mesh_info.boundary_channel
    squares_x = sums_y = squares_y = 0.0
    worst = 0.0
    for item in range(len(dataset)):
        x, y = (torch.as_tensor(t).double().numpy() for t in dataset[item])
        squares_x = squares_x + (x ** 2).mean(axis=1)
        sums_y, squares_y = sums_y + y.mean(axis=1), squares_y + (y ** 2).mean(axis=1)
        given = x[channel, dofs] if channel is not None else 0.0
        worst = max(worst, float(abs(y[:, dofs] - given).max(initial=0.0)))
    if len(dataset) == 0:
        raise ValueError("dataset: no samples to take the scales from")
    if worst > 0:
        where = f"input channel {channel}" if channel is not None else "zero (no boundary channel)"
        raise ValueError(f"the outputs at the Dirichlet DoFs differ from {where} by up to "
                         f"{worst:.3g}, so exact boundary values would be wrong")
    n = len(dataset)
    rms = (squares_x / n) ** 0.5
    mean = sums_y / n
    std = (squares_y / n - mean ** 2).clip(min=0.0) ** 0.5
    return {"boundary_channel": channel,
            "input_scale": [float(v) if v > 0 else 1.0 for v in rms],
            "output_scale": [float(v) if v > 0 else 1.0 for v in std],
            "output_shift": [float(v) for v in mean]}


def rebind_fe_model(model: nn.Module, mesh_info: Any) -> nn.Module:
    """Move a (trained) ``"spon"`` or ``"spon-mg"`` model onto the space of ``mesh_info``, e.g.
    a refined mesh of its family, keeping its weights (``set_space`` / ``set_spaces``);
    returns it. ValueError naming both when the cell type or degree differs."""
    from pdesuite.operators.spon import SPONMultigrid

    _check_mesh_fits(model.to_config(), mesh_info)
    if isinstance(model, SPONMultigrid):
        return model.set_spaces(mesh_info.spaces(model.levels), dirichlet=_dirichlet(mesh_info))
    return model.set_space(mesh_info.space, dirichlet=_dirichlet(mesh_info))


def _dirichlet(mesh_info: Any):
    """The Dirichlet facets of ``mesh_info`` as the models take them (``()``: none)."""
    return mesh_info.dirichlet_facets() if mesh_info.dirichlet_dofs.size else ()


def _check_mesh_fits(config: Mapping[str, Any], mesh_info: Any) -> None:
    """ValueError naming both when the config's cell type or degree is not the mesh's."""
    wanted = (config.get("cell_type"), config.get("degree"))
    found = (mesh_info.cell_type, mesh_info.degree)
    if wanted != found:
        raise ValueError(f"mesh: the model was trained on {wanted[0]} cells of degree "
                         f"{wanted[1]}, the data's mesh has {found[0]} cells of degree "
                         f"{found[1]}")


def _refuse_fe_model(name: Any) -> None:
    if name in FE_MODEL_NAMES:
        raise ValueError(f"model name: {name!r} lives on a finite-element space; build it from "
                         "a dataset's mesh with build_fe_model(name, PDEDataset(...).mesh_info)")


def _model_class(name: Any) -> type:
    registry = _registry()
    if name not in registry:
        raise ValueError(f"model name: unknown {name!r}; expected one of {sorted(registry)}")
    return registry[name]
