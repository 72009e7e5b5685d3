"""SPON: a graph processor on FE coefficients whose Dirichlet DoFs are the data, exactly.

Data layout is the Trainer's, with the DoFs as the one spatial axis: inputs ``[B, C_in, ndofs]``,
outputs ``[B, C_out, ndofs]``, coefficients of the model's Lagrange space.

Exact Dirichlet conditions: the network's output is kept at the free DoFs only; at the Dirichlet
DoFs the output is the lift of the boundary data (``torch.where``), so it equals the data bit for
bit whatever the weights. The lift also enters the processor as input channels, so that the
prediction inside can depend on per-sample boundary data.

With the Trainer, switch the output normaliser off (``normalize_outputs=False``): decoding the
output by a mean and a scale would move the boundary values.

One model, any mesh of the family: the weights do not depend on the mesh. :meth:`SPON.set_space`
moves a model (trained or not) onto another mesh of the same cell type and degree, e.g. a
refinement; building a new SPON on that space and loading the state dict does the same.
"""

from __future__ import annotations

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
                 coordinates: bool) -> None:
        super().__init__()
        if not isinstance(space, LagrangeSpace):
            raise TypeError(f"space: expected a LagrangeSpace, got {type(space).__name__}")
        self.in_channels = _check_positive(in_channels, "in_channels")
        self.out_channels = _check_positive(out_channels, "out_channels")
        self.coordinates = bool(coordinates)
        self.cell_type, self.degree = space.mesh.cell_type, space.degree

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
        lift = self._lift(boundary_values, x)  # [B, C_out, n]
        parts = [x.transpose(1, 2), lift.transpose(1, 2)]  # [B, n, C_in], [B, n, C_out]
        batch = x.shape[0]
        if self.coordinates:
            parts.append(self.dof_coordinates.to(x.dtype).expand(batch, n, 2))  # [B, n, 2]
        flag = self.dirichlet_mask.to(x.dtype)[None, :, None].expand(batch, n, 1)  # [B, n, 1]
        features = torch.cat(parts + [flag], dim=-1)  # [B, n, F]
        prediction = self._process(features).transpose(1, 2)  # [B, C_out, n]
        return torch.where(self.dirichlet_mask, lift, prediction)  # [B, C_out, n]

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
    """

    def __init__(self, space: LagrangeSpace, in_channels: int, out_channels: int = 1,
                 width: int = 32, layers: int = 4, dirichlet=None, boundary_data=0.0,
                 coordinates: bool = True) -> None:
        super().__init__(space, in_channels, out_channels, coordinates)
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
        """Hyperparameters, cell type and degree (the mesh is not part of the config)."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "width": self.width, "layers": self.layers, "coordinates": self.coordinates,
                "cell_type": self.cell_type, "degree": self.degree}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], space: LagrangeSpace, dirichlet=None,
                    boundary_data=0.0) -> "SPON":
        """A fresh model from :meth:`to_config` output on ``space`` (checked against the
        config's cell type and degree)."""
        settings = dict(config)
        cell_type, degree = settings.pop("cell_type"), settings.pop("degree")
        model = cls(space, dirichlet=dirichlet, boundary_data=boundary_data, **settings)
        if (model.cell_type, model.degree) != (cell_type, degree):
            raise ValueError(f"space: the config is for {cell_type} cells of degree {degree}, got "
                             f"{model.cell_type} cells of degree {model.degree}")
        return model

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"width={self.width}, layers={self.layers}, space={self.space!r}")


def _is_empty(selection) -> bool:
    return selection is not None and not isinstance(selection, str) and len(selection) == 0
