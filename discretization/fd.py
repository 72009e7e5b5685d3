"""Finite-difference assembly on node-centred :class:`~.grid.Grid` objects.

Every assembler returns a :class:`~.system.LinearSystem`: ``A`` (int32 CSR) and ``b`` on the free
DoFs, ``free`` and ``lift``. The full DoF vector is the grid in C order, so
``grid.to_field(system.expand(x))`` is the solution on every node, boundary included.

Discretisation (the same for every operator here):

* Rows are the standard FD equations divided by h² only, so an interior row of the Laplacian
  reads ``(2u_i - u_{i-1} - u_{i+1}) / h²`` per axis. On an ``s x s`` grid with Dirichlet
  conditions everywhere the system has ``(s - 2)²`` unknowns (the Darcy convention of SKR).
* Diffusion ``-∇·(a∇u)`` uses a coefficient at the nodes and the harmonic mean of the two node
  values on each face, ``2 a_i a_j / (a_i + a_j)``; the result is a symmetric matrix, positive
  definite whenever at least one Dirichlet node is present or the reaction term is positive.
* Dirichlet nodes are eliminated: their values go into ``lift`` and, through the couplings,
  into ``b``; ``A`` stays symmetric. Where Dirichlet sides meet, the value of the first side in
  the order x-, x+, y-, y+, z-, z+ is used.
* Neumann sides ``a ∂u/∂n = g`` (outward normal) keep their nodes as unknowns. Each such node
  owns a control volume clipped at the boundary: a factor ½ per Neumann side it lies on (¼ at a
  corner of two Neumann sides in 2D). Its row is the flux balance over that clipped volume,
  divided by the full cell volume ``∏h``: the ghost-point equation multiplied by those ½
  factors. Tangential couplings along a Neumann side get the same ½ factor, so ``A`` stays
  symmetric, and ``b`` gets ``w f + g · (clipped face area) / (h_d · face area)``. The
  zero-order terms (reaction, Helmholtz, mass) carry the same weights ``w``.
* Periodic axes: every one of the ``n`` nodes on the axis is a distinct unknown, and node
  ``n - 1`` neighbours node ``0`` at distance ``h``. The period is therefore ``n h``, one spacing
  more than ``hi - lo``; :meth:`Grid.periodic` builds the grid whose period is a given length.
* A problem without Dirichlet nodes and without a positive zero-order term (all-Neumann, all
  periodic, or a mix of the two) is singular: the constants are in the null space of ``A``. It is
  returned as it is; pin a value or add a reaction term to make it regular.
* Masked domains (``active=`` of :func:`diffusion`): an inactive node is taken out of the
  problem with the faces to it, so each face between an active node and an inactive one is a
  wall without flux (zero Neumann, half-way between the two nodes, as in a finite-volume cell
  that borders a solid). Inactive nodes are neither unknowns nor Dirichlet data: their rows and
  columns are absent, ``lift`` and :meth:`~.system.LinearSystem.expand` give them zero. A
  connected set of active nodes that touches no Dirichlet node is singular as above.
"""

from __future__ import annotations

from typing import Callable, Mapping, Union

import numpy as np
import scipy.sparse as sp

from pdesuite.discretization.boundary import (
    BoundaryCondition,
    Dirichlet,
    Neumann,
    Periodic,
    evaluate_boundary_data,
    normalize_grid_bcs,
)
from pdesuite.discretization.grid import Grid
from pdesuite.discretization.system import LinearSystem, as_csr32

FieldLike = Union[float, np.ndarray, Callable[[np.ndarray], np.ndarray]]
BCLike = Union[BoundaryCondition, Mapping[str, BoundaryCondition], None]


# ----------------------------------------------------------------------------- public API
def diffusion(
    grid: Grid,
    coefficient: FieldLike,
    source: FieldLike = 0.0,
    bc: BCLike = None,
    reaction: FieldLike = 0.0,
    active: np.ndarray | None = None,
) -> LinearSystem:
    """Assemble ``-∇·(a ∇u) + c u = f`` (c = ``reaction``, default 0).

    Args:
        grid: node-centred grid of ``n_total = grid.size`` nodes.
        coefficient: ``a`` > 0 and finite: a scalar, an array ``[*grid.shape]`` at the nodes, or a
            callable on points ``[n, ndim] -> [n]``.
        source: ``f``, in the same forms (default 0).
        bc: a condition for all sides, or a dict side -> condition (missing sides: zero
            Dirichlet); None is zero Dirichlet everywhere. See the module docstring for how each
            kind is discretised.
        reaction: ``c`` >= 0, in the same forms (default 0).
        active: None (every node belongs to the domain) or a bool array ``[*grid.shape]``, False
            on the nodes taken out of the domain (solid cells): they and the faces to them are
            removed, leaving zero-flux walls (see the module docstring). ``coefficient``,
            ``source`` and ``reaction`` are not read there.

    Returns:
        LinearSystem with SPD ``A`` ``[n_free, n_free]`` (semi-definite when singular, see the
        module docstring), ``b`` ``[n_free]``; the free DoFs are the active nodes that are not
        Dirichlet nodes.
    """
    _check_grid(grid)
    mask = _active_mask(grid, active)
    a = _node_field(grid, coefficient if mask is None else _fill_inactive(grid, coefficient, mask),
                    "coefficient", positive=True)
    f = _node_field(grid, source, "source")
    c = _node_field(grid, reaction, "reaction", nonnegative=True)
    return _assemble(grid, bc, conductivity=a, reaction=c, velocity=None, source=f, active=mask)


def helmholtz(
    grid: Grid,
    wavenumber: FieldLike,
    source: FieldLike = 0.0,
    bc: BCLike = None,
) -> LinearSystem:
    """Assemble ``-Δu - k² u = f`` with a wavenumber ``k`` that may vary in space.

    ``wavenumber`` is a finite scalar, array ``[*grid.shape]`` or callable on points; ``source``
    and ``bc`` as in :func:`diffusion`. ``A`` is symmetric, indefinite once ``k²`` exceeds the
    smallest eigenvalue of the Laplacian (and singular when ``k²`` hits one).
    """
    _check_grid(grid)
    k = _node_field(grid, wavenumber, "wavenumber")
    f = _node_field(grid, source, "source")
    return _assemble(
        grid, bc, conductivity=np.ones(grid.shape), reaction=-(k * k), velocity=None, source=f
    )


def advection_diffusion(
    grid: Grid,
    velocity: np.ndarray | Callable[[np.ndarray], np.ndarray],
    diffusivity: FieldLike,
    source: FieldLike = 0.0,
    bc: BCLike = None,
) -> LinearSystem:
    """Assemble ``-∇·(ε ∇u) + v·∇u = f`` with first-order upwinding of ``v·∇u``.

    Args:
        velocity: ``v``: a constant vector ``[ndim]``, node values ``[ndim, *grid.shape]``, or a
            callable on points ``[n, ndim] -> [n, ndim]``.
        diffusivity: ``ε`` > 0: scalar, array ``[*grid.shape]`` or callable (harmonic face means,
            as for ``coefficient`` in :func:`diffusion`).
        source, bc: as in :func:`diffusion`; a Neumann side prescribes the diffusive flux
            ``ε ∂u/∂n``.

    Along each axis ``v_d ∂u/∂x_d`` is the one-sided difference towards the upwind neighbour.
    At a Neumann or open end where that neighbour does not exist the difference towards the
    inner neighbour is used instead. ``A`` is not symmetric.
    """
    _check_grid(grid)
    eps = _node_field(grid, diffusivity, "diffusivity", positive=True)
    v = _velocity_field(grid, velocity)
    f = _node_field(grid, source, "source")
    return _assemble(grid, bc, conductivity=eps, reaction=None, velocity=v, source=f)


def mass(grid: Grid, bc: BCLike = None, scale: str = "volume") -> sp.csr_array:
    """Lumped (diagonal) mass matrix ``[n_free, n_free]`` on the free DoFs of ``bc``.

    The free DoFs and their order are those of any assembler here with the same ``grid`` and
    ``bc`` (``system.free``). The diagonal holds the control-volume weights ``w`` of the module
    docstring (1 inside, ½ per Neumann side a node lies on), times:

    * ``scale="volume"`` (default): the cell volume ``∏h``, so ``xᵀ M x`` approximates ``∫ u²``
      over the domain (the trapezoidal rule on Neumann sides);
    * ``scale="unit"``: 1. This matches the row scaling of the assembled operators, so
      ``M du/dt + A u = b`` is the semi-discrete form of ``u_t - ∇·(a∇u) = f``. Without
      Neumann sides it is the identity.
    """
    _check_grid(grid)
    if scale not in ("volume", "unit"):
        raise ValueError(f"scale: expected 'volume' or 'unit', got {scale!r}")
    bcs = normalize_grid_bcs(bc, grid.ndim)
    weights = _row_weights(grid, _axis_factors(grid, bcs))
    if scale == "volume":
        weights = weights * grid.cell_volume
    fixed, _ = _dirichlet_values(grid, bcs)
    diagonal = weights.ravel()[~fixed.ravel()]
    return as_csr32(sp.diags_array(diagonal, format="csr"))


def free_dofs(grid: Grid, bc: BCLike = None) -> np.ndarray:
    """``[n_free]`` indices (C order) of the nodes that are unknowns under ``bc``: all but
    Dirichlet."""
    _check_grid(grid)
    fixed, _ = _dirichlet_values(grid, normalize_grid_bcs(bc, grid.ndim))
    return np.flatnonzero(~fixed.ravel())


# ----------------------------------------------------------------------------- input checks
def _check_grid(grid: Grid) -> None:
    if not isinstance(grid, Grid):
        raise TypeError(f"grid: expected a Grid, got {type(grid).__name__}")
    if grid.centering != "node":
        raise ValueError(
            f"grid: finite differences need a node-centred grid, got centering={grid.centering!r}"
        )


def _node_field(
    grid: Grid, data: FieldLike, name: str, positive: bool = False, nonnegative: bool = False
) -> np.ndarray:
    """``data`` (scalar, ``[*shape]`` array or callable on points) as a float array ``[*shape]``."""
    if callable(data):
        values = np.asarray(data(grid.points()), dtype=float)
        if values.shape == ():
            values = np.full(grid.shape, float(values))
        elif values.shape == (grid.size,):
            values = values.reshape(grid.shape)
        else:
            raise ValueError(
                f"{name}: the callable returned shape {values.shape}, expected ({grid.size},)"
            )
    else:
        try:
            values = np.asarray(data, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name}: expected a number, an array or a callable, got {type(data).__name__}"
            ) from None
        if values.shape == ():
            values = np.full(grid.shape, float(values))
        elif values.shape != grid.shape:
            raise ValueError(f"{name}: expected shape {grid.shape} (the grid), got {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name}: contains NaN or Inf")
    if positive and not np.all(values > 0):
        raise ValueError(f"{name}: must be > 0 everywhere, minimum is {values.min():g}")
    if nonnegative and not np.all(values >= 0):
        raise ValueError(f"{name}: must be >= 0 everywhere, minimum is {values.min():g}")
    return values


def _active_mask(grid: Grid, active) -> np.ndarray | None:
    """``active`` as a bool array ``[*grid.shape]`` (None stays None); errors name ``active``."""
    if active is None:
        return None
    mask = np.asarray(active)
    if mask.dtype != bool:
        raise TypeError(f"active: expected a bool array, got dtype {mask.dtype}")
    if mask.shape != grid.shape:
        raise ValueError(f"active: expected shape {grid.shape} (the grid), got {mask.shape}")
    return mask


def _fill_inactive(grid: Grid, coefficient: FieldLike, mask: np.ndarray) -> FieldLike:
    """A node array of ``coefficient`` with 1 on the inactive nodes, which are never read."""
    if callable(coefficient) or np.ndim(coefficient) == 0:
        return coefficient
    values = np.array(coefficient, dtype=float)
    if values.shape != grid.shape:
        return coefficient  # _node_field reports the shape
    values[~mask] = 1.0
    return values


def _velocity_field(grid: Grid, velocity) -> np.ndarray:
    """Velocity as ``[ndim, *shape]``."""
    if callable(velocity):
        values = np.asarray(velocity(grid.points()), dtype=float)
        if values.shape != (grid.size, grid.ndim):
            raise ValueError(
                f"velocity: the callable returned shape {values.shape}, expected ({grid.size}, "
                f"{grid.ndim})"
            )
        values = values.T.reshape((grid.ndim,) + grid.shape)
    else:
        values = np.asarray(velocity, dtype=float)
        if values.shape == () and grid.ndim == 1:
            values = values.reshape(1)
        if values.shape == (grid.ndim,):
            values = np.broadcast_to(
                values.reshape((grid.ndim,) + (1,) * grid.ndim), (grid.ndim,) + grid.shape
            )
        elif values.shape != (grid.ndim,) + grid.shape:
            raise ValueError(
                f"velocity: expected shape ({grid.ndim},) or {(grid.ndim,) + grid.shape}, got "
                f"{values.shape}"
            )
    if not np.all(np.isfinite(values)):
        raise ValueError("velocity: contains NaN or Inf")
    return values


# ----------------------------------------------------------------------------- boundary data
def _axis_view(vector: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A 1D array along ``axis`` reshaped to broadcast against ``[*shape]``."""
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return vector.reshape(shape)


def _axis_factors(grid: Grid, bcs: dict[str, BoundaryCondition]) -> list[np.ndarray]:
    """Per axis, ``[n_d]``: ½ at an end on a Neumann side (clipped control volume), else 1."""
    factors = []
    for axis, n in enumerate(grid.shape):
        factor = np.ones(n)
        low, high = grid.sides[2 * axis], grid.sides[2 * axis + 1]
        if isinstance(bcs[low], Neumann):
            factor[0] *= 0.5
        if isinstance(bcs[high], Neumann):
            factor[-1] *= 0.5  # n == 2 with both sides Neumann: each node holds half a cell
        factors.append(factor)
    return factors


def _row_weights(grid: Grid, factors: list[np.ndarray]) -> np.ndarray:
    """``[*shape]`` control-volume fraction of each node, the product of its axis factors."""
    weights = np.ones(grid.shape)
    for axis, factor in enumerate(factors):
        weights = weights * _axis_view(factor, axis, grid.ndim)
    return weights


def _side_index(grid: Grid, side: str) -> tuple:
    axis = grid.sides.index(side) // 2
    index = [slice(None)] * grid.ndim
    index[axis] = 0 if side.endswith("-") else -1
    return tuple(index)


def _side_points(grid: Grid, side: str) -> np.ndarray:
    """``[n_side, ndim]`` coordinates of the nodes on ``side`` (C order within the side)."""
    axis = grid.sides.index(side) // 2
    coords = list(grid.coords)
    coords[axis] = coords[axis][[0 if side.endswith("-") else -1]]
    mesh = np.meshgrid(*coords, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _dirichlet_values(
    grid: Grid, bcs: dict[str, BoundaryCondition]
) -> tuple[np.ndarray, np.ndarray]:
    """``(fixed [*shape] bool, values [*shape])``; the first Dirichlet side in SIDES order wins."""
    fixed = np.zeros(grid.shape, dtype=bool)
    values = np.zeros(grid.shape)
    for side in reversed(grid.sides):
        cond = bcs[side]
        if isinstance(cond, Dirichlet):
            index = _side_index(grid, side)
            side_values = evaluate_boundary_data(
                cond.value, _side_points(grid, side), f"bc[{side!r}].value"
            )
            values[index] = side_values.reshape(values[index].shape)
            fixed[index] = True
    return fixed, values


def _neumann_rhs(grid: Grid, bcs: dict[str, BoundaryCondition], weights: np.ndarray,
                 factors: list[np.ndarray]) -> np.ndarray:
    """``[*shape]``: the boundary-flux share of ``b``,
    ``g (clipped face area) / (h_d face area)``."""
    rhs = np.zeros(grid.shape)
    for side in grid.sides:
        cond = bcs[side]
        if isinstance(cond, Neumann):
            axis = grid.sides.index(side) // 2
            index = _side_index(grid, side)
            flux = evaluate_boundary_data(cond.flux, _side_points(grid, side), f"bc[{side!r}].flux")
            face_fraction = (weights / _axis_view(factors[axis], axis, grid.ndim))[index]
            rhs[index] += flux.reshape(face_fraction.shape) * face_fraction / grid.spacing[axis]
    return rhs


# ----------------------------------------------------------------------------- assembly
def _assemble(grid: Grid, bc: BCLike, conductivity: np.ndarray, reaction: np.ndarray | None,
              velocity: np.ndarray | None, source: np.ndarray,
              active: np.ndarray | None = None) -> LinearSystem:
    ndim, shape = grid.ndim, grid.shape
    bcs = normalize_grid_bcs(bc, ndim)
    factors = _axis_factors(grid, bcs)
    weights = _row_weights(grid, factors)
    fixed, lift_values = _dirichlet_values(grid, bcs)
    if active is not None:  # inactive nodes leave the problem: no unknown, no Dirichlet value
        fixed = fixed | ~active
        lift_values = np.where(active, lift_values, 0.0)
    periodic_axes = [isinstance(bcs[grid.sides[2 * d]], Periodic) for d in range(ndim)]

    index_dtype = np.int32 if grid.size < np.iinfo(np.int32).max else np.int64
    index = np.arange(grid.size, dtype=index_dtype).reshape(shape)
    diagonal = np.zeros(shape)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []

    # Diffusion: one conductance per edge between neighbours (a graph Laplacian, symmetric by
    # construction); the periodic wrap adds the edge from the last node to the first.
    for axis in range(ndim):
        h = grid.spacing[axis]
        face_fraction = weights / _axis_view(factors[axis], axis, ndim)
        low = [slice(None)] * ndim
        high = [slice(None)] * ndim
        low[axis], high[axis] = slice(0, -1), slice(1, None)
        pairs = [(tuple(low), tuple(high))]
        if periodic_axes[axis]:
            wrap_low = [slice(None)] * ndim
            wrap_high = [slice(None)] * ndim
            wrap_low[axis], wrap_high[axis] = slice(-1, None), slice(0, 1)
            pairs.append((tuple(wrap_low), tuple(wrap_high)))
        for lo_idx, hi_idx in pairs:
            a_lo, a_hi = conductivity[lo_idx], conductivity[hi_idx]
            conductance = (2.0 * a_lo * a_hi / (a_lo + a_hi)) * face_fraction[lo_idx] / (h * h)
            if active is not None:  # no flux through a face that touches an inactive node
                open_face = active[lo_idx] & active[hi_idx]
                conductance = np.where(open_face, conductance, 0.0)
            diagonal[lo_idx] += conductance
            diagonal[hi_idx] += conductance
            p, q, c = index[lo_idx].ravel(), index[hi_idx].ravel(), conductance.ravel()
            if active is not None:
                p, q, c = p[open_face.ravel()], q[open_face.ravel()], c[open_face.ravel()]
            rows += [p, q]
            cols += [q, p]
            vals += [-c, -c]

    if reaction is not None:
        diagonal += weights * reaction

    if velocity is not None:
        for axis in range(ndim):
            h, n = grid.spacing[axis], shape[axis]
            v = np.broadcast_to(velocity[axis], shape)
            position = _axis_view(np.arange(n), axis, ndim)
            has_back = np.broadcast_to(periodic_axes[axis] | (position > 0), shape)
            has_fwd = np.broadcast_to(periodic_axes[axis] | (position < n - 1), shape)
            # step towards the upwind neighbour; fall back to the other side where it is missing
            step = np.where(v > 0, -1, 1)
            step = np.where((step < 0) & ~has_back, 1, step)
            step = np.where((step > 0) & ~has_fwd, -1, step)
            # v ∂u/∂x ≈ v s (u_q - u_p) / h with q the neighbour at step s
            coupling = weights * v * step / h
            diagonal -= coupling
            neighbour_pos = np.mod(position + step, n)
            q = (index + (neighbour_pos - position) * int(np.prod(shape[axis + 1 :]))).astype(
                index_dtype
            )
            active = coupling != 0
            rows.append(index[active])
            cols.append(q[active])
            vals.append(coupling[active])

    rhs = weights * source + _neumann_rhs(grid, bcs, weights, factors)
    return _eliminate(grid, diagonal, rows, cols, vals, rhs, fixed, lift_values)


def _eliminate(
    grid: Grid,
    diagonal: np.ndarray,
    rows: list[np.ndarray],
    cols: list[np.ndarray],
    vals: list[np.ndarray],
    rhs: np.ndarray,
    fixed: np.ndarray,
    lift_values: np.ndarray,
) -> LinearSystem:
    """Keep the free rows; move the couplings to Dirichlet nodes into ``b``; renumber."""
    n_total = grid.size
    free_mask = ~fixed.ravel()
    free = np.flatnonzero(free_mask)
    n_free = free.shape[0]
    lift = np.where(free_mask, 0.0, lift_values.ravel())
    index_dtype = np.int32 if n_total < np.iinfo(np.int32).max else np.int64
    number = np.full(n_total, -1, dtype=index_dtype)
    number[free] = np.arange(n_free)

    b = rhs.ravel()[free].astype(float, copy=True)
    coo_rows = [np.arange(n_free, dtype=index_dtype)]
    coo_cols = [np.arange(n_free, dtype=index_dtype)]
    coo_vals = [diagonal.ravel()[free]]
    while rows:  # pop as we go: at 2048² each piece is tens of MB
        r, c, v = rows.pop(), cols.pop(), vals.pop()
        row_free, col_free = free_mask[r], free_mask[c]
        to_rhs = row_free & ~col_free
        if np.any(to_rhs):
            moved = np.bincount(
                number[r[to_rhs]], weights=v[to_rhs] * lift[c[to_rhs]], minlength=n_free
            )
            b -= moved
        keep = row_free & col_free
        coo_rows.append(number[r[keep]])
        coo_cols.append(number[c[keep]])
        coo_vals.append(v[keep])
    entries = (np.concatenate(coo_vals), (np.concatenate(coo_rows), np.concatenate(coo_cols)))
    del coo_vals, coo_rows, coo_cols
    matrix = sp.coo_array(entries, shape=(n_free, n_free)).tocsr()
    del entries
    return LinearSystem(A=as_csr32(matrix), b=b, free=free, lift=lift)
