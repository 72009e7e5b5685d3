"""Structured tensor-product grids in 1, 2 and 3 dimensions.

A :class:`Grid` holds points only: finite differences (:mod:`.fd`) and grid transfer
(:mod:`.transfer`) assemble on it, and it converts between fields ``[C, *shape]`` and flat DoF
vectors ``[C * size]``. Point ordering is C order throughout: the last axis
varies fastest, so a field ``u[i, j]`` sits at entry ``i * shape[1] + j`` of the flat vector.
"""

from __future__ import annotations

import numbers
from typing import Callable, Sequence, Union

import numpy as np

from pdesuite.discretization.boundary import SIDES

Bounds = Union[Sequence[float], Sequence[Sequence[float]], None]

_CENTERINGS = ("node", "cell")


class Grid:
    """A uniform tensor-product grid.

    Args:
        shape: points per axis, an int (1D) or a sequence of 1 to 3 ints.
        bounds: ``[(lo, hi), ...]`` per axis, in the coordinate units of the problem. A single
            pair ``(lo, hi)`` applies to every axis. Default: ``(0, 1)`` on every axis.
        centering: ``"node"`` (default): the points include both ends of each axis, spacing
            ``(hi - lo) / (n - 1)``, so ``n >= 2``. ``"cell"``: the points are the centres of
            ``n`` equal cells, spacing ``(hi - lo) / n``, so ``n >= 1``.

    The grid is immutable; equal shape, bounds and centering make equal grids.
    """

    def __init__(
        self, shape: int | Sequence[int], bounds: Bounds = None, centering: str = "node"
    ) -> None:
        if centering not in _CENTERINGS:
            raise ValueError(f"centering: expected one of {_CENTERINGS}, got {centering!r}")
        self._centering = centering
        self._shape = check_shape(
            shape, minimum=2 if centering == "node" else 1, what=f"a {centering}-centred grid"
        )
        self._bounds = _check_bounds(bounds, len(self._shape))
        divisions = [n - 1 if centering == "node" else n for n in self._shape]
        self._spacing = tuple((hi - lo) / m for (lo, hi), m in zip(self._bounds, divisions))

    @classmethod
    def periodic(cls, shape: int | Sequence[int], bounds: Bounds = None) -> "Grid":
        """Node-centred grid that samples each period ``[lo, hi)`` with ``n`` distinct nodes.

        The right end ``hi`` is left out (it is the image of ``lo``), so the spacing is
        ``(hi - lo) / n`` and the returned grid has bounds ``(lo, hi - spacing)``. This is the
        grid on which :mod:`.fd` with :class:`~.boundary.Periodic` conditions has period
        ``hi - lo`` (FD wraps node ``n - 1`` to node ``0`` at distance one spacing).
        """
        shape_t = check_shape(shape, minimum=2, what="a node-centred grid")
        bounds_t = _check_bounds(bounds, len(shape_t))
        open_bounds = [(lo, hi - (hi - lo) / n) for (lo, hi), n in zip(bounds_t, shape_t)]
        return cls(shape_t, open_bounds, "node")

    # ----------------------------------------------------------------------------- basic data
    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        return self._bounds

    @property
    def centering(self) -> str:
        return self._centering

    @property
    def spacing(self) -> tuple[float, ...]:
        """Distance between neighbouring points along each axis."""
        return self._spacing

    @property
    def size(self) -> int:
        """Number of points, ``prod(shape)``."""
        return int(np.prod(self._shape))

    @property
    def cell_volume(self) -> float:
        """``prod(spacing)``: the length, area or volume that one point stands for."""
        return float(np.prod(self._spacing))

    @property
    def coords(self) -> tuple[np.ndarray, ...]:
        """1D coordinate arrays, one ``[shape[d]]`` array per axis."""
        out = []
        for (lo, hi), n, h in zip(self._bounds, self._shape, self._spacing):
            if self._centering == "node":
                c = lo + h * np.arange(n, dtype=float)
                c[-1] = hi  # exact end point, free of round-off in lo + (n-1) h
            else:
                c = lo + h * (np.arange(n, dtype=float) + 0.5)
            out.append(c)
        return tuple(out)

    def mesh(self) -> np.ndarray:
        """Coordinates ``[ndim, *shape]``: ``mesh()[d]`` is the d-th coordinate of every point."""
        return np.stack(np.meshgrid(*self.coords, indexing="ij"))

    def points(self) -> np.ndarray:
        """Coordinates ``[size, ndim]`` of the points in C order."""
        return self.mesh().reshape(self.ndim, -1).T.copy()

    def evaluate(self, func: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``func`` on :meth:`points` (``[size, ndim] -> [size]``), returned as ``[*shape]``."""
        values = np.asarray(func(self.points()))
        if values.shape == ():
            return np.full(self._shape, values)
        if values.shape != (self.size,):
            raise ValueError(
                f"func: expected {self.size} values on the points, got shape {values.shape}"
            )
        return values.reshape(self._shape)

    # ------------------------------------------------------------------------------- boundary
    @property
    def sides(self) -> tuple[str, ...]:
        """The side names of this grid: ``("x-", "x+")`` in 1D, up to ``"z+"`` in 3D."""
        return SIDES[: 2 * self.ndim]

    def boundary_mask(self, side: str | None = None) -> np.ndarray:
        """Boolean ``[*shape]``, True on the points of ``side`` (or of any side if None).

        Node-centred: the nodes that lie on the side. Cell-centred: the cells that touch it
        (the first or last layer of cells along that axis).
        """
        mask = np.zeros(self._shape, dtype=bool)
        if side is None:
            selected = self.sides
        else:
            if side not in self.sides:
                raise ValueError(
                    f"side: unknown side {side!r} for a {self.ndim}D grid; the sides are "
                    f"{list(self.sides)}"
                )
            selected = (side,)
        for name in selected:
            axis = SIDES.index(name) // 2
            index = [slice(None)] * self.ndim
            index[axis] = 0 if name.endswith("-") else -1
            mask[tuple(index)] = True
        return mask

    def interior_mask(self) -> np.ndarray:
        """Boolean ``[*shape]``, True off the boundary (the complement of ``boundary_mask()``)."""
        return ~self.boundary_mask()

    # ---------------------------------------------------------------------------- conversions
    def _split_channels(self, field: np.ndarray, name: str) -> np.ndarray:
        """``field`` as ``[C, *shape]``, accepting ``[*shape]`` as one channel."""
        if field.shape == self._shape:
            return field[None]
        if field.ndim == self.ndim + 1 and field.shape[1:] == self._shape:
            return field
        raise ValueError(
            f"{name}: expected shape [C, {', '.join(map(str, self._shape))}] or "
            f"{list(self._shape)}, "
            f"got {list(field.shape)}"
        )

    def to_vector(self, field: np.ndarray) -> np.ndarray:
        """Flat vector ``[C * size]`` from a field ``[C, *shape]`` (or ``[*shape]``, C = 1).

        Channel-major, C order within a channel: the entries of channel 0 come first.
        """
        field = self._split_channels(np.asarray(field), "field")
        return field.reshape(-1)

    def to_field(self, vector: np.ndarray, channels: int = 1) -> np.ndarray:
        """Field ``[channels, *shape]`` from a flat vector ``[channels * size]`` (inverse of
        to_vector)."""
        if isinstance(channels, bool) or not isinstance(channels, numbers.Integral) or channels < 1:
            raise ValueError(f"channels: expected a positive int, got {channels!r}")
        vector = np.asarray(vector)
        if vector.ndim != 1 or vector.shape[0] != channels * self.size:
            raise ValueError(
                f"vector: expected shape [{channels * self.size}] (channels={channels} x "
                f"size={self.size}), "
                f"got {list(vector.shape)}"
            )
        return vector.reshape((int(channels),) + self._shape)

    # ----------------------------------------------------------------------------------- misc
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        return (self._shape, self._bounds, self._centering) == (
            other._shape,
            other._bounds,
            other._centering,
        )

    def __hash__(self) -> int:
        return hash((self._shape, self._bounds, self._centering))

    def __repr__(self) -> str:
        return f"Grid(shape={self._shape}, bounds={self._bounds}, centering={self._centering!r})"


def check_shape(shape, minimum: int, what: str = "a grid") -> tuple[int, ...]:
    """``shape`` (an int or 1–3 ints, each >= ``minimum``) as a tuple; errors name ``shape``."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        entries = tuple(shape)
    except TypeError:
        raise TypeError(
            f"shape: expected an int or a sequence of ints, got {type(shape).__name__}"
        ) from None
    if not 1 <= len(entries) <= 3:
        raise ValueError(f"shape: expected 1 to 3 axes, got {len(entries)}")
    for n in entries:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"shape: entries must be ints, got {n!r}")
        if n < minimum:
            raise ValueError(
                f"shape: {what} needs at least {minimum} points per axis, got {entries}"
            )
    return tuple(int(n) for n in entries)


def _check_bounds(bounds: Bounds, ndim: int) -> tuple[tuple[float, float], ...]:
    if bounds is None:
        return ((0.0, 1.0),) * ndim
    try:
        array = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"bounds: expected (lo, hi) or one (lo, hi) pair per axis, got {bounds!r}"
        ) from None
    if array.shape == (2,):
        array = np.tile(array, (ndim, 1))
    if array.shape != (ndim, 2):
        raise ValueError(
            f"bounds: expected (lo, hi) or {ndim} pairs (lo, hi), got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"bounds: must be finite, got {array.tolist()}")
    if np.any(array[:, 1] <= array[:, 0]):
        raise ValueError(f"bounds: each axis needs hi > lo, got {array.tolist()}")
    return tuple((float(lo), float(hi)) for lo, hi in array)
