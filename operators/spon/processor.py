"""Processor: message passing on the DoF graph of a Lagrange space, in plain torch.

The graph has one node per DoF and one directed edge ``j → i`` per off-diagonal nonzero
``K[i, j]`` of the stiffness matrix (DoFs that share a cell). Each edge carries four features
that do not depend on the mesh size, so that one set of weights sees comparable inputs on every
refinement of a mesh family:

* ``(x_j − x_i) / ℓ`` (2 features), the relative DoF position in units of ``ℓ``, the square
  root of the mean cell area (which halves exactly under uniform refinement);
* ``|x_j − x_i| / ℓ``;
* ``K[i, j] / sqrt(K[i, i] K[j, j])``, the scaled stiffness coupling (in 2D the stiffness
  entries themselves do not scale with ``h``, and the scaling also removes the coefficient's
  magnitude).

A layer sends ``m_ij = MLP(A h_i + B h_j + C e_ij)``, averages the messages at each node
(``index_add`` over the edges, divided by the in-degree) and updates ``h_i ← h_i +
MLP([h_i, mean_j m_ij])``. No weight depends on the number of nodes or edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from pdesuite.discretization import LagrangeSpace, stiffness_matrix

__all__ = ["EDGE_FEATURES", "DofGraph", "GraphProcessor", "MessagePassingLayer", "dof_graph"]

#: Features per edge: relative position (2), relative length, scaled stiffness entry.
EDGE_FEATURES = 4


@dataclass(frozen=True)
class DofGraph:
    """The DoF graph of a space as tensors.

    Attributes:
        senders: ``[E]`` int64, the DoF ``j`` each edge starts at.
        receivers: ``[E]`` int64, the DoF ``i`` each edge ends at.
        edge_features: ``[E, EDGE_FEATURES]`` (see the module docstring).
        inverse_degree: ``[n, 1]``, one over the number of edges ending at each DoF.
    """

    senders: torch.Tensor
    receivers: torch.Tensor
    edge_features: torch.Tensor
    inverse_degree: torch.Tensor

    @property
    def n_nodes(self) -> int:
        return int(self.inverse_degree.shape[0])

    def to(self, device=None, dtype: torch.dtype | None = None) -> "DofGraph":
        """The same graph with its float tensors in ``dtype`` and all tensors on ``device``."""
        return DofGraph(self.senders.to(device), self.receivers.to(device),
                        self.edge_features.to(device, dtype), self.inverse_degree.to(device, dtype))


def dof_graph(space: LagrangeSpace, stiffness=None) -> DofGraph:
    """The DoF graph of ``space`` (float64 features, on the CPU).

    Args:
        space: the Lagrange space.
        stiffness: ``[ndofs, ndofs]`` sparse matrix whose off-diagonal pattern gives the edges
            and whose entries the couplings; default ``stiffness_matrix(space)`` (Laplacian).
    """
    if not isinstance(space, LagrangeSpace):
        raise TypeError(f"space: expected a LagrangeSpace, got {type(space).__name__}")
    matrix = sp.coo_array(stiffness_matrix(space) if stiffness is None else stiffness)
    if matrix.shape != (space.ndofs, space.ndofs):
        raise ValueError(f"stiffness: expected shape ({space.ndofs}, {space.ndofs}), got "
                         f"{matrix.shape}")
    off = matrix.row != matrix.col
    receivers, senders, couplings = matrix.row[off], matrix.col[off], matrix.data[off]
    diagonal = sp.csr_array(matrix).diagonal()
    if np.any(diagonal <= 0):
        raise ValueError("stiffness: expected a positive diagonal")
    offset = space.dof_coordinates[senders] - space.dof_coordinates[receivers]  # [E, 2]
    length = np.linalg.norm(offset, axis=1)
    scale = np.sqrt(space.mesh.area() / space.mesh.n_cells)
    features = np.column_stack([
        offset / scale,
        length / scale,
        couplings / np.sqrt(diagonal[receivers] * diagonal[senders]),
    ])
    degree = np.bincount(receivers, minlength=space.ndofs).astype(float)
    return DofGraph(
        senders=torch.as_tensor(senders.astype(np.int64)),
        receivers=torch.as_tensor(receivers.astype(np.int64)),
        edge_features=torch.as_tensor(features),
        inverse_degree=torch.as_tensor(1.0 / np.maximum(degree, 1.0))[:, None],
    )


class MessagePassingLayer(nn.Module):
    """One residual message-passing step on ``[B, n, width]`` node states."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.to_receiver = nn.Linear(width, width)
        self.to_sender = nn.Linear(width, width, bias=False)
        self.from_edge = nn.Linear(EDGE_FEATURES, width, bias=False)
        self.message = nn.Sequential(nn.GELU(), nn.Linear(width, width))
        self.update = nn.Sequential(nn.Linear(2 * width, width), nn.GELU(),
                                    nn.Linear(width, width))

    def forward(self, h: torch.Tensor, graph: DofGraph) -> torch.Tensor:
        # h: [B, n, w]
        pre = (self.to_receiver(h)[:, graph.receivers] + self.to_sender(h)[:, graph.senders]
               + self.from_edge(graph.edge_features))  # [B, E, w]
        messages = self.message(pre)  # [B, E, w]
        summed = h.new_zeros(h.shape).index_add(1, graph.receivers, messages)  # [B, n, w]
        mean = summed * graph.inverse_degree  # [B, n, w]
        return h + self.update(torch.cat([h, mean], dim=-1))  # [B, n, w]


class GraphProcessor(nn.Module):
    """Lift, ``layers`` message-passing steps, project: ``[B, n, C_in]`` → ``[B, n, C_out]``.

    Args:
        in_channels, out_channels: ``C_in``, ``C_out``.
        width: hidden channels per node. Default 32.
        layers: message-passing steps. Default 4.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 32,
                 layers: int = 4) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("width", width)):
            _check_positive(value, name)
        _check_positive(layers, "layers", minimum=0)
        self.lift = nn.Linear(in_channels, width)
        self.layers = nn.ModuleList(MessagePassingLayer(width) for _ in range(layers))
        self.project = nn.Sequential(nn.Linear(width, width), nn.GELU(),
                                     nn.Linear(width, out_channels))

    def forward(self, x: torch.Tensor, graph: DofGraph) -> torch.Tensor:
        # x: [B, n, C_in]
        if x.ndim != 3 or x.shape[1] != graph.n_nodes:
            raise ValueError(f"x: expected [B, {graph.n_nodes}, C_in], got {tuple(x.shape)}")
        h = self.lift(x)  # [B, n, w]
        for layer in self.layers:
            h = layer(h, graph)  # [B, n, w]
        return self.project(h)  # [B, n, C_out]


def _check_positive(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)
