"""Boundary conditions, shared by the FD and FE assemblers.

A value or flux is a number, an array of the right length, or a callable on points
``[n_points, dim] -> [n_points]`` (coordinates in the units of the grid or mesh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Union

import numpy as np

BoundaryData = Union[float, np.ndarray, Callable[[np.ndarray], np.ndarray]]

#: Side names of a structured grid, in axis order: "x-" is the low end of axis 0.
SIDES = ("x-", "x+", "y-", "y+", "z-", "z+")


@dataclass(frozen=True)
class Dirichlet:
    """``u = value`` on the boundary. Default: homogeneous."""

    value: BoundaryData = 0.0


@dataclass(frozen=True)
class Neumann:
    """``a ∂u/∂n = flux`` with ``n`` the outward normal. Default: insulated (zero flux)."""

    flux: BoundaryData = 0.0


@dataclass(frozen=True)
class Periodic:
    """Opposite sides identified; must be given on both sides of an axis."""


BoundaryCondition = Union[Dirichlet, Neumann, Periodic]


def evaluate_boundary_data(data: BoundaryData, points: np.ndarray, name: str) -> np.ndarray:
    """Values ``[n_points]`` of ``data`` at ``points`` ``[n_points, dim]``.

    Raises ValueError naming ``name`` when the result has the wrong shape or is not finite.
    """
    points = np.asarray(points, dtype=float)
    n = points.shape[0]
    if callable(data):
        values = np.asarray(data(points), dtype=float)
        if values.shape == ():
            values = np.full(n, float(values))
    elif np.ndim(data) == 0:
        values = np.full(n, float(data))
    else:
        values = np.asarray(data, dtype=float)
    if values.shape != (n,):
        raise ValueError(f"{name}: expected {n} boundary values, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name}: boundary values contain NaN or Inf")
    return values


def normalize_grid_bcs(
    bc: BoundaryCondition | Mapping[str, BoundaryCondition] | None, ndim: int
) -> dict[str, BoundaryCondition]:
    """One condition per side of an ``ndim`` grid, from one condition for all or a per-side dict.

    ``None`` means homogeneous Dirichlet everywhere. Sides left out of a dict default to
    homogeneous Dirichlet. Periodic must be given on both sides of an axis.
    """
    sides = SIDES[: 2 * ndim]
    if bc is None:
        bc = Dirichlet()
    if isinstance(bc, (Dirichlet, Neumann, Periodic)):
        out = {side: bc for side in sides}
    elif isinstance(bc, Mapping):
        unknown = set(bc) - set(sides)
        if unknown:
            raise ValueError(f"bc: unknown side(s) {sorted(unknown)}; the sides are {list(sides)}")
        out = {side: bc.get(side, Dirichlet()) for side in sides}
        for side, cond in out.items():
            if not isinstance(cond, (Dirichlet, Neumann, Periodic)):
                raise TypeError(
                    f"bc[{side!r}]: expected Dirichlet, Neumann or Periodic, got "
                    f"{type(cond).__name__}"
                )
    else:
        raise TypeError(
            "bc: expected a boundary condition or a dict side -> condition, got "
            f"{type(bc).__name__}"
        )
    for axis in range(ndim):
        low, high = out[sides[2 * axis]], out[sides[2 * axis + 1]]
        if isinstance(low, Periodic) != isinstance(high, Periodic):
            raise ValueError(
                f"bc: Periodic on axis {axis} must be given on both {sides[2 * axis]!r} and "
                f"{sides[2 * axis + 1]!r}"
            )
    return out
