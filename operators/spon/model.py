"""SPON: a graph processor on FE coefficients whose Dirichlet DoFs are the data, exactly.

Data layout is the Trainer's, with the DoFs as the one spatial axis: inputs ``[B, C_in, ndofs]``,
outputs ``[B, C_out, ndofs]``, coefficients of the model's Lagrange space.

Exact Dirichlet conditions: the network's output is kept at the free DoFs only; at the Dirichlet
DoFs the output is the lift of the boundary data (``torch.where``), so it equals the data bit for
bit whatever the weights. The lift also enters the processor as input channels, so that the
prediction inside can depend on per-sample boundary data.

With the Trainer, switch the normalisers off (``normalize_inputs=False``,
``normalize_outputs=False``): decoding the output by a mean and a scale would move the boundary
values, and encoding the inputs would change boundary data read from an input channel. The model
scales instead, with fixed constants of its config: ``input_scale`` divides the input channels,
and the network's output is ``output_shift + output_scale · net`` at the free DoFs only.

Per-sample boundary data: ``boundary_channel = c`` takes the Dirichlet values from input channel
``c`` (its entries at the Dirichlet DoFs) when ``forward`` is given no ``boundary_values``, as
the Trainer calls it; the FE families of :mod:`pdesuite.datasets` store them in channel 1.

One model, any mesh of the family: the weights do not depend on the mesh. :meth:`SPON.set_space`
moves a model (trained or not) onto another mesh of the same cell type and degree, e.g. a
refinement; building a new SPON on that space and loading the state dict does the same.
"""

from __future__ import annotations

import copy
import numbers
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from pdesuite.discretization import LagrangeSpace
from pdesuite.operators.spon.processor import DofGraph, GraphProcessor, _check_positive, dof_graph

__all__ = ["FESpaceOperator", "SPON", "boundary_lift"]


def boundary_lift(space: LagrangeSpace, dirichlet_dofs: np.ndarray, data,
                  channels: int) -> np.ndarray:
    """``[channels, ndofs]`` with the boundary data at ``dirichlet_dofs`` and zero elsewhere.

    Args:
        data: a number, a callable on points ``[n, 2] -> [n]`` (interpolated at the DoF points),
            or an array ``[ndofs]`` or ``[channels, ndofs]`` of full DoF vectors.
    """
    lift = np.zeros((channels, space.ndofs))
    points = space.dof_coordinates[dirichlet_dofs]
    if callable(data):
        values = np.asarray(data(points), dtype=float)
        if values.shape == ():
            values = np.full(points.shape[0], float(values))
        if values.shape != (points.shape[0],):
            raise ValueError(f"boundary_data: a callable must map points [n, 2] to [n], got "
                             f"{values.shape}")
        lift[:, dirichlet_dofs] = values
    elif isinstance(data, numbers.Real) and not isinstance(data, bool):
        lift[:, dirichlet_dofs] = float(data)
    else:
        array = np.asarray(data, dtype=float)
        if array.shape not in ((space.ndofs,), (channels, space.ndofs)):
            raise ValueError(f"boundary_data: expected a number, a callable, or an array "
                             f"[{space.ndofs}] or [{channels}, {space.ndofs}], got {array.shape}")
        lift[:, dirichlet_dofs] = np.broadcast_to(array, lift.shape)[:, dirichlet_dofs]
    if not np.all(np.isfinite(lift)):
        raise ValueError("boundary_data: values contain NaN or Inf")
    return lift


class FESpaceOperator(nn.Module):
    """What SPON and SPON-multigrid share: the space check, the lift, the input features.

    Subclasses build their network in ``__init__`` (before calling :meth:`_bind`) and implement
    ``_process(features [B, n, F]) -> [B, n, C_out]``.
    """

    def __init__(self, space: LagrangeSpace, in_channels: int, out_channels: int,
                 coordinates: bool, boundary_channel: int | None = None,
                 input_scale=None, output_scale=None, output_shift=None) -> None:
        super().__init__()
        if not isinstance(space, LagrangeSpace):
            raise TypeError(f"space: expected a LagrangeSpace, got {type(space).__name__}")
        self.in_channels = _check_positive(in_channels, "in_channels")
        self.out_channels = _check_positive(out_channels, "out_channels")
        self.coordinates = bool(coordinates)
        self.cell_type, self.degree = space.mesh.cell_type, space.degree
        if boundary_channel is not None:
            boundary_channel = _check_positive(boundary_channel, "boundary_channel", 0)
            if boundary_channel >= self.in_channels:
                raise ValueError(f"boundary_channel: expected a channel < in_channels="
                                 f"{self.in_channels}, got {boundary_channel}")
        self.boundary_channel = boundary_channel
        self.input_scale = _constants(input_scale, self.in_channels, 1.0, "input_scale", True)
        self.output_scale = _constants(output_scale, self.out_channels, 1.0, "output_scale", True)
        self.output_shift = _constants(output_shift, self.out_channels, 0.0, "output_shift", False)
        for name in ("input_scale", "output_scale", "output_shift"):
            self.register_buffer(f"_{name}", torch.tensor(getattr(self, name)), persistent=False)

    def __deepcopy__(self, memo: dict) -> "FESpaceOperator":
        # The spaces hold basix elements, which cannot be copied (the Trainer copies its model);
        # a space is never modified, so the copy shares it and copies everything else.
        for space in [getattr(self, "space", None), *getattr(self, "spaces", [])]:
            memo[id(space)] = space
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        copied.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return copied

    def _scaling_config(self) -> dict[str, Any]:
        return {"boundary_channel": self.boundary_channel, "input_scale": self.input_scale,
                "output_scale": self.output_scale, "output_shift": self.output_shift}

    @property
    def feature_channels(self) -> int:
        """Processor inputs per DoF: inputs, lift, coordinates (2, optional), Dirichlet flag."""
        return self.in_channels + self.out_channels + 2 * self.coordinates + 1

    def check_space(self, space, name: str = "space") -> LagrangeSpace:
        """``space`` if it is a LagrangeSpace of the model's cell type and degree."""
        if not isinstance(space, LagrangeSpace):
            raise TypeError(f"{name}: expected a LagrangeSpace, got {type(space).__name__}")
        if space.mesh.cell_type != self.cell_type:
            raise ValueError(f"{name}: the mesh has {space.mesh.cell_type} cells, but this model "
                             f"was built for {self.cell_type} cells")
        if space.degree != self.degree:
            raise ValueError(f"{name}: degree {space.degree} differs from the model's degree "
                             f"{self.degree}")
        return space

    def _bind(self, space: LagrangeSpace, dirichlet, boundary_data) -> None:
        """The buffers of the finest space: Dirichlet mask, default lift, coordinates."""
        self.space = space
        dofs = space.boundary_dofs(dirichlet) if not _is_empty(dirichlet) else np.zeros(0, int)
        self.dirichlet_dofs = dofs
        mask = np.zeros(space.ndofs, dtype=bool)
        mask[dofs] = True
        # The lift is kept in float64 outside the buffers, which .float()/.double() would round:
        # a float64 model must reproduce float64 boundary data exactly.
        self._default_lift = torch.as_tensor(
            boundary_lift(space, dofs, boundary_data, self.out_channels))
        self._buffer("dirichlet_mask", torch.as_tensor(mask))
        self._buffer("dof_coordinates", torch.as_tensor(np.array(space.dof_coordinates)))

    def _buffer(self, name: str, value: torch.Tensor) -> None:
        """Register (or replace) a non-persistent buffer on the parameters' device and dtype."""
        reference = next(self.parameters())
        if value.is_floating_point():
            value = value.to(reference.device, reference.dtype)
        else:
            value = value.to(reference.device)
        self.register_buffer(name, value, persistent=False)

    def _graph_buffers(self, graph: DofGraph, suffix: str) -> None:
        self._buffer(f"senders{suffix}", graph.senders)
        self._buffer(f"receivers{suffix}", graph.receivers)
        self._buffer(f"edge_features{suffix}", graph.edge_features)
        self._buffer(f"inverse_degree{suffix}", graph.inverse_degree)

    def _graph(self, suffix: str = "") -> DofGraph:
        return DofGraph(getattr(self, f"senders{suffix}"), getattr(self, f"receivers{suffix}"),
                        getattr(self, f"edge_features{suffix}"),
                        getattr(self, f"inverse_degree{suffix}"))

    def forward(self, x: torch.Tensor, boundary_values: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``[B, C_in, ndofs]`` → ``[B, C_out, ndofs]``; at the Dirichlet DoFs the boundary data.

        Args:
            x: input coefficients on the model's space.
            boundary_values: ``[B, C_out, ndofs]`` or ``[C_out, ndofs]`` full DoF vectors whose
                Dirichlet entries are the data (the rest is ignored); default the
                ``boundary_data`` of :meth:`set_space`.
        """
        n = self.space.ndofs
        if x.ndim != 3 or x.shape[1:] != (self.in_channels, n):
            raise ValueError(f"x: expected [B, {self.in_channels}, {n}], got {tuple(x.shape)}")
        if boundary_values is None and self.boundary_channel is not None:
            channel = self.boundary_channel
            boundary_values = x[:, channel:channel + 1].expand(-1, self.out_channels, -1)
        lift = self._lift(boundary_values, x)  # [B, C_out, n]
        scaled_x = x.transpose(1, 2) / self._input_scale.to(x.dtype)  # [B, n, C_in]
        scaled_lift = lift.transpose(1, 2) / self._output_scale.to(x.dtype)  # [B, n, C_out]
        parts = [scaled_x, scaled_lift]
        batch = x.shape[0]
        if self.coordinates:
            parts.append(self.dof_coordinates.to(x.dtype).expand(batch, n, 2))  # [B, n, 2]
        flag = self.dirichlet_mask.to(x.dtype)[None, :, None].expand(batch, n, 1)  # [B, n, 1]
        features = torch.cat(parts + [flag], dim=-1)  # [B, n, F]
        net = self._process(features)  # [B, n, C_out]
        net = self._output_shift.to(x.dtype) + self._output_scale.to(x.dtype) * net
        return torch.where(self.dirichlet_mask, lift, net.transpose(1, 2))  # [B, C_out, n]

    def _lift(self, boundary_values: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        shape = (self.out_channels, self.space.ndofs)
        if boundary_values is None:
            if self._default_lift.device != x.device:
                self._default_lift = self._default_lift.to(x.device)  # float64 kept
            values = self._default_lift.to(x.dtype).expand(x.shape[0], *shape)
        else:
            if not isinstance(boundary_values, torch.Tensor) or boundary_values.shape[-2:] != shape:
                raise ValueError(f"boundary_values: expected a tensor [B, {shape[0]}, {shape[1]}] "
                                 f"or [{shape[0]}, {shape[1]}], got "
                                 f"{getattr(boundary_values, 'shape', type(boundary_values))}")
            values = boundary_values.to(x.device, x.dtype).expand(x.shape[0], *shape)
        return torch.where(self.dirichlet_mask, values, torch.zeros_like(values))

    def _process(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


class SPON(FESpaceOperator):
    """Structure-preserving operator network on a Lagrange space (one level).

    Args:
        space: the space of inputs and outputs (P1/P2 on triangles, Q1/Q2 on quadrilaterals).
        in_channels, out_channels: ``C_in`` and ``C_out``.
        width: hidden channels of the processor. Default 32.
        layers: message-passing steps. Default 4.
        dirichlet: the Dirichlet facets: a tag name, an array of boundary edge indices, None
            (default: the whole boundary) or ``()`` (no Dirichlet DoFs).
        boundary_data: the default boundary values: a number (default 0), a callable on points,
            or an array ``[ndofs]`` / ``[C_out, ndofs]``; ``forward(x, boundary_values)``
            overrides it per sample.
        coordinates: give the processor the DoF coordinates as two more inputs. Default True.
        boundary_channel: the input channel whose Dirichlet entries are the boundary data of
            each sample (used when ``forward`` gets no ``boundary_values``); default None.
        input_scale: ``C_in`` positive constants that divide the input channels (default 1).
        output_scale, output_shift: ``C_out`` constants each: the prediction at the free DoFs
            is ``output_shift + output_scale · net`` (defaults 1 and 0).
    """

    #: The model registry's name of this class (:mod:`pdesuite.operators.models`).
    name = "spon"

    def __init__(self, space: LagrangeSpace, in_channels: int, out_channels: int = 1,
                 width: int = 32, layers: int = 4, dirichlet=None, boundary_data=0.0,
                 coordinates: bool = True, boundary_channel: int | None = None,
                 input_scale=None, output_scale=None, output_shift=None) -> None:
        super().__init__(space, in_channels, out_channels, coordinates, boundary_channel,
                         input_scale, output_scale, output_shift)
        self.width, self.layers = int(width), int(layers)
        self.processor = GraphProcessor(self.feature_channels, self.out_channels, width, layers)
        self.set_space(space, dirichlet, boundary_data)

    def set_space(self, space: LagrangeSpace, dirichlet=None, boundary_data=0.0) -> "SPON":
        """Run on ``space`` from now on (same cell type and degree, any mesh); returns self.

        ``dirichlet`` and ``boundary_data`` as in the constructor. ValueError naming ``space``
        for another cell type or degree.
        """
        space = self.check_space(space)
        self._bind(space, dirichlet, boundary_data)
        self._graph_buffers(dof_graph(space), "")
        return self

    def _process(self, features: torch.Tensor) -> torch.Tensor:
        return self.processor(features, self._graph())  # [B, n, C_out]

    def to_config(self) -> dict[str, Any]:
        """Name, hyperparameters, scaling constants, cell type and degree (the mesh is not part
        of the config)."""
        return {"name": self.name, "in_channels": self.in_channels,
                "out_channels": self.out_channels, "width": self.width, "layers": self.layers,
                "coordinates": self.coordinates, **self._scaling_config(),
                "cell_type": self.cell_type, "degree": self.degree}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], space: LagrangeSpace, dirichlet=None,
                    boundary_data=0.0) -> "SPON":
        """A fresh model from :meth:`to_config` output on ``space`` (checked against the
        config's cell type and degree)."""
        settings = _settings_of(config, cls.name)
        cell_type, degree = settings.pop("cell_type"), settings.pop("degree")
        _check_cells(space, cell_type, degree)
        return cls(space, dirichlet=dirichlet, boundary_data=boundary_data, **settings)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"width={self.width}, layers={self.layers}, space={self.space!r}")


def _is_empty(selection) -> bool:
    return selection is not None and not isinstance(selection, str) and len(selection) == 0


def _constants(values, count: int, default: float, name: str, positive: bool) -> list[float]:
    """``values`` as ``count`` finite floats (``> 0`` if ``positive``); None gives ``default``."""
    if values is None:
        return [float(default)] * count
    array = np.atleast_1d(np.asarray(values, dtype=float))
    if array.shape != (count,) or not np.all(np.isfinite(array)) or (
            positive and np.any(array <= 0)):
        raise ValueError(f"{name}: expected {count} finite{' positive' if positive else ''} "
                         f"number(s), got {values!r}")
    return [float(v) for v in array]


def _settings_of(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``config`` without its ``name`` (ValueError if it names another model)."""
    settings = dict(config)
    found = settings.pop("name", name)
    if found != name:
        raise ValueError(f"config: is for model {found!r}, not {name!r}")
    return settings


def _check_cells(space, cell_type: str, degree: int) -> None:
    """ValueError naming ``space`` unless it has ``cell_type`` cells and ``degree``."""
    if not isinstance(space, LagrangeSpace):
        raise TypeError(f"space: expected a LagrangeSpace, got {type(space).__name__}")
    if (space.mesh.cell_type, space.degree) != (cell_type, degree):
        raise ValueError(f"space: the model was built for {cell_type} cells of degree {degree}, "
                         f"this mesh has {space.mesh.cell_type} cells of degree {space.degree}")
