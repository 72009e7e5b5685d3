"""SPON-multigrid: a V-cycle of graph processors on nested Lagrange spaces.

The levels are spaces on the meshes ``mesh, mesh.refine(), mesh.refine().refine(), ...``
(:func:`nested_spaces`); inputs and outputs live on the finest. Between levels the hidden
states move by the FE transfers of :func:`pdesuite.discretization.fe_prolongation`:

* prolongation ``P`` ``[n_fine, n_coarse]``, the exact embedding of the coarse space;
* restriction ``R = D⁻¹ Pᵀ`` with ``D`` the row sums of ``Pᵀ``: ``Pᵀ`` alone sums the fine
  contributions (the right transfer of residuals), whose size grows with the number of fine
  neighbours; scaled by ``D⁻¹`` it averages, so hidden states keep their size on every level.

One cycle: on each level from the finest down, message passing (pre-smoothing), then restrict;
message passing on the coarsest; on the way up, prolong and add the state kept on that level
(a skip connection), then message passing (post-smoothing). Each level has its own weights,
none of which depends on the mesh, so a model runs on the hierarchy of any mesh of the family
with the same number of levels.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from pdesuite.discretization import LagrangeSpace, Mesh, fe_prolongation
from pdesuite.operators.spon.model import FESpaceOperator, _check_cells, _settings_of
from pdesuite.operators.spon.processor import MessagePassingLayer, _check_positive, dof_graph
from pdesuite.operators.spon.sparse import apply_along_dofs, to_torch_sparse

__all__ = ["SPONMultigrid", "nested_spaces"]


def nested_spaces(mesh: Mesh, degree: int, levels: int) -> list[LagrangeSpace]:
    """``levels`` Lagrange spaces of ``degree`` on ``mesh`` and its successive refinements,
    coarse to fine."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a Mesh, got {type(mesh).__name__}")
    _check_positive(levels, "levels")
    spaces = [LagrangeSpace(mesh, degree)]
    for _ in range(levels - 1):
        spaces.append(LagrangeSpace(spaces[-1].mesh.refine(), degree))
    return spaces


class SPONMultigrid(FESpaceOperator):
    """SPON with a V-cycle of message-passing processors over nested spaces.

    Args:
        spaces: the levels, coarse to fine (at least 2; see :func:`nested_spaces`), one cell
            type and degree. Inputs and outputs are coefficients on ``spaces[-1]``.
        in_channels, out_channels: ``C_in`` and ``C_out``.
        width: hidden channels on every level. Default 32.
        smoothing_layers: message-passing steps before restriction and after prolongation on
            each level but the coarsest. Default 1.
        coarse_layers: message-passing steps on the coarsest level. Default 2.
        dirichlet, boundary_data, coordinates, boundary_channel, input_scale, output_scale,
            output_shift: as in :class:`~pdesuite.operators.spon.SPON` (on the finest space).
    """

    #: The model registry's name of this class (:mod:`pdesuite.operators.models`).
    name = "spon-mg"

    def __init__(self, spaces: Sequence[LagrangeSpace], in_channels: int, out_channels: int = 1,
                 width: int = 32, smoothing_layers: int = 1, coarse_layers: int = 2,
                 dirichlet=None, boundary_data=0.0, coordinates: bool = True,
                 boundary_channel: int | None = None, input_scale=None, output_scale=None,
                 output_shift=None) -> None:
        spaces = _check_levels(spaces)
        super().__init__(spaces[-1], in_channels, out_channels, coordinates, boundary_channel,
                         input_scale, output_scale, output_shift)
        self.levels, self.width = len(spaces), _check_positive(width, "width")
        self.smoothing_layers = _check_positive(smoothing_layers, "smoothing_layers", 0)
        self.coarse_layers = _check_positive(coarse_layers, "coarse_layers", 0)
        self.lift = nn.Linear(self.feature_channels, width)
        self.pre = nn.ModuleList(self._stack(smoothing_layers) for _ in range(self.levels - 1))
        self.coarse = self._stack(coarse_layers)
        self.post = nn.ModuleList(self._stack(smoothing_layers) for _ in range(self.levels - 1))
        self.project = nn.Sequential(nn.Linear(width, width), nn.GELU(),
                                     nn.Linear(width, self.out_channels))
        self.set_spaces(spaces, dirichlet, boundary_data)

    def _stack(self, layers: int) -> nn.ModuleList:
        return nn.ModuleList(MessagePassingLayer(self.width) for _ in range(layers))

    def set_spaces(self, spaces: Sequence[LagrangeSpace], dirichlet=None,
                   boundary_data=0.0) -> "SPONMultigrid":
        """Run on the hierarchy ``spaces`` (coarse to fine, as many levels as the model, its cell
        type and degree) from now on; returns self."""
        spaces = _check_levels(spaces)
        if len(spaces) != self.levels:
            raise ValueError(f"spaces: expected {self.levels} levels, got {len(spaces)}")
        for level, space in enumerate(spaces):
            self.check_space(space, f"spaces[{level}]")
        self.spaces = list(spaces)
        self._bind(spaces[-1], dirichlet, boundary_data)
        for level, space in enumerate(spaces):
            self._graph_buffers(dof_graph(space), f"_{level}")
        for level in range(self.levels - 1):
            prolong = fe_prolongation(spaces[level], spaces[level + 1])
            transpose = sp.csr_array(prolong.T)
            sums = np.asarray(transpose.sum(axis=1)).ravel()
            restrict = sp.diags_array(1.0 / np.where(sums > 0, sums, 1.0)) @ transpose
            self._buffer(f"prolongation_{level}", to_torch_sparse(prolong))
            self._buffer(f"restriction_{level}", to_torch_sparse(restrict))
        return self

    def prolongation(self, level: int) -> torch.Tensor:
        """Sparse ``[n_{level+1}, n_level]``: coarse level ``level`` to the next finer one."""
        return getattr(self, f"prolongation_{level}")

    def restriction(self, level: int) -> torch.Tensor:
        """Sparse ``[n_level, n_{level+1}]``: the averaging restriction ``D⁻¹ Pᵀ``."""
        return getattr(self, f"restriction_{level}")

    def _smooth(self, stack: nn.ModuleList, h: torch.Tensor, level: int) -> torch.Tensor:
        graph = self._graph(f"_{level}")
        for layer in stack:
            h = layer(h, graph)  # [B, n_level, w]
        return h

    def _process(self, features: torch.Tensor) -> torch.Tensor:
        # features: [B, n_L, F] on the finest level L = levels - 1
        h = self.lift(features)  # [B, n_L, w]
        kept = []
        for level in range(self.levels - 1, 0, -1):
            h = self._smooth(self.pre[level - 1], h, level)  # [B, n_level, w]
            kept.append(h)
            h = apply_along_dofs(self.restriction(level - 1).to(h.dtype), h, 1)  # [B, n_lower, w]
        h = self._smooth(self.coarse, h, 0)  # [B, n_0, w]
        for level in range(1, self.levels):
            up = apply_along_dofs(self.prolongation(level - 1).to(h.dtype), h, 1)  # [B, n_level, w]
            h = self._smooth(self.post[level - 1], kept.pop() + up, level)  # [B, n_level, w]
        return self.project(h)  # [B, n_L, C_out]

    def to_config(self) -> dict:
        """Name, hyperparameters, scaling constants, levels, cell type and degree (the meshes
        are not in the config)."""
        return {"name": self.name, "in_channels": self.in_channels,
                "out_channels": self.out_channels, "width": self.width,
                "smoothing_layers": self.smoothing_layers, "coarse_layers": self.coarse_layers,
                "coordinates": self.coordinates, **self._scaling_config(), "levels": self.levels,
                "cell_type": self.cell_type, "degree": self.degree}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], spaces: Sequence[LagrangeSpace],
                    dirichlet=None, boundary_data=0.0) -> "SPONMultigrid":
        """A fresh model from :meth:`to_config` output on the hierarchy ``spaces`` (as many
        levels as the config, its cell type and degree)."""
        settings = _settings_of(config, cls.name)
        cell_type, degree = settings.pop("cell_type"), settings.pop("degree")
        levels = settings.pop("levels")
        spaces = _check_levels(spaces)
        if len(spaces) != levels:
            raise ValueError(f"spaces: the config has {levels} levels, got {len(spaces)} spaces")
        for space in spaces:
            _check_cells(space, cell_type, degree)
        return cls(spaces, dirichlet=dirichlet, boundary_data=boundary_data, **settings)

    def extra_repr(self) -> str:
        return (f"levels={self.levels}, width={self.width}, "
                f"ndofs={[space.ndofs for space in self.spaces]}")


def _check_levels(spaces) -> list[LagrangeSpace]:
    if isinstance(spaces, LagrangeSpace) or not isinstance(spaces, Sequence):
        raise TypeError("spaces: expected a sequence of LagrangeSpace, coarse to fine")
    spaces = list(spaces)
    if len(spaces) < 2:
        raise ValueError(f"spaces: expected at least 2 levels, got {len(spaces)}")
    for level, space in enumerate(spaces):
        if not isinstance(space, LagrangeSpace):
            raise TypeError(f"spaces[{level}]: expected a LagrangeSpace, got "
                            f"{type(space).__name__}")
    return spaces
