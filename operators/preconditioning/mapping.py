"""Vectors of unknowns to fields on the node grid and back, for a network that sees fields.

The finite-difference assemblers of :mod:`pdesuite.discretization.fd` number the unknowns as
``system.free``: the nodes of the grid, in C order, that are not Dirichlet nodes (and not
inactive, on a masked domain). A network sees the whole node grid instead. :class:`GridMap`
puts an unknown vector onto the grid with zeros everywhere else (the Dirichlet nodes of a
homogeneous correction ``A⁻¹ r``, which is zero there), and reads a field back at the unknowns
only, so that whatever a network writes on the other nodes is dropped. It is
``grid.to_field(system.expand(x))`` with a zero lift, batched, on torch tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

from pdesuite.discretization.grid import Grid

__all__ = ["GridMap"]

GridLike = Union[Grid, Sequence[int]]


class GridMap:
    """The map between ``[n]`` unknown vectors and fields ``[*shape]`` on a node grid.

    Args:
        grid: a :class:`~pdesuite.discretization.Grid`, or its shape (1 to 3 ints).
        free: ``[n]`` distinct indices (C order, as ``LinearSystem.free``) of the nodes that
            are unknowns. Default: the interior nodes, which are the unknowns of
            ``fd.diffusion`` with Dirichlet conditions on every side; pass ``system.free`` for
            any other boundary condition or a masked domain.

    Raises ValueError for indices out of range, repeated, or not integers.
    """

    def __init__(self, grid: GridLike, free: np.ndarray | None = None):
        grid = grid if isinstance(grid, Grid) else Grid(tuple(grid))
        self.shape: tuple[int, ...] = grid.shape
        self.size = grid.size
        if free is None:
            free = np.flatnonzero(grid.interior_mask())
        free = np.asarray(free)
        if free.ndim != 1 or (free.size and free.dtype.kind not in "iu"):
            raise ValueError(f"free: expected a 1D array of node indices, got shape {free.shape} "
                             f"and dtype {free.dtype}")
        if free.size and (free.min() < 0 or free.max() >= self.size):
            raise ValueError(f"free: indices must lie in [0, {self.size}) for grid {self.shape}")
        if np.unique(free).size != free.size:
            raise ValueError("free: indices repeat")
        self.free = free.astype(np.int64)
        self._index: dict[torch.device, torch.Tensor] = {}

    @property
    def n(self) -> int:
        """Number of unknowns."""
        return int(self.free.size)

    def _indices(self, device: torch.device) -> torch.Tensor:
        if device not in self._index:
            self._index[device] = torch.from_numpy(self.free).to(device)
        return self._index[device]

    # ------------------------------------------------------------------------ torch blocks
    def to_fields(self, R: torch.Tensor) -> torch.Tensor:
        """Fields ``[B, 1, *shape]`` from unknowns ``R`` ``[n, B]``; zero off the unknowns.

        Same dtype and device as ``R``.
        """
        if R.ndim != 2 or R.shape[0] != self.n:
            raise ValueError(f"R: expected [{self.n}, B] (the unknowns of grid {self.shape}), "
                             f"got {tuple(R.shape)}")
        batch = R.shape[1]
        fields = torch.zeros(batch, self.size, dtype=R.dtype, device=R.device)
        fields[:, self._indices(R.device)] = R.T
        return fields.reshape(batch, 1, *self.shape)

    def from_fields(self, fields: torch.Tensor) -> torch.Tensor:
        """Unknowns ``[n, B]`` read off fields ``[B, 1, *shape]`` (other nodes dropped)."""
        if fields.ndim != len(self.shape) + 2 or tuple(fields.shape[1:]) != (1, *self.shape):
            raise ValueError(f"fields: expected [B, 1, {', '.join(map(str, self.shape))}], got "
                             f"{tuple(fields.shape)}")
        flat = fields.reshape(fields.shape[0], self.size)
        return flat[:, self._indices(fields.device)].T

    # ------------------------------------------------------------------------ NumPy vectors
    def to_field(self, r: np.ndarray) -> np.ndarray:
        """Field ``[*shape]`` from one unknown vector ``r`` ``[n]``; zero off the unknowns."""
        r = np.asarray(r)
        if r.shape != (self.n,):
            raise ValueError(f"r: expected shape ({self.n},), got {r.shape}")
        field = np.zeros(self.size, dtype=r.dtype)
        field[self.free] = r
        return field.reshape(self.shape)

    def from_field(self, field: np.ndarray) -> np.ndarray:
        """Unknown vector ``[n]`` read off a field ``[*shape]``."""
        field = np.asarray(field)
        if field.shape != self.shape:
            raise ValueError(f"field: expected shape {self.shape}, got {field.shape}")
        return field.reshape(-1)[self.free]
