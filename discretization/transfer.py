"""Transfer between nested grids and between nested finite-element spaces, as sparse matrices.

Nested node-centred grids: the fine grid has ``2 (n - 1) + 1`` points on every axis where the
coarse one has ``n``, over the same bounds, so every coarse node is a fine node. Vectors are in
C order (see :class:`~.grid.Grid`); matrices are int32 CSR.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from pdesuite.discretization.fe import LagrangeSpace, check_space
from pdesuite.discretization.grid import Grid
from pdesuite.discretization.system import as_csr32


def refine(grid: Grid) -> Grid:
    """The grid with every spacing halved over the same bounds.

    Node-centred: ``2 (n - 1) + 1`` points per axis. Cell-centred: ``2 n`` cells per axis.
    """
    _check_is_grid(grid, "grid")
    if grid.centering == "node":
        shape = tuple(2 * (n - 1) + 1 for n in grid.shape)
    else:
        shape = tuple(2 * n for n in grid.shape)
    return Grid(shape, grid.bounds, grid.centering)


def coarsen(grid: Grid) -> Grid:
    """The grid with every spacing doubled over the same bounds (inverse of :func:`refine`).

    Node-centred needs an odd number ``n >= 3`` of points per axis (giving ``(n - 1) / 2 + 1``);
    cell-centred needs an even number of cells (giving ``n / 2``).
    """
    _check_is_grid(grid, "grid")
    if grid.centering == "node":
        if any(n < 3 or n % 2 == 0 for n in grid.shape):
            raise ValueError(
                "grid: a node-centred grid coarsens only with an odd number >= 3 of points per "
                f"axis, got shape {grid.shape}"
            )
        shape = tuple((n - 1) // 2 + 1 for n in grid.shape)
    else:
        if any(n % 2 for n in grid.shape):
            raise ValueError(
                f"grid: a cell-centred grid coarsens only with an even number of cells per axis, "
                f"got shape {grid.shape}"
            )
        shape = tuple(n // 2 for n in grid.shape)
    return Grid(shape, grid.bounds, grid.centering)


def prolongation(coarse_grid: Grid, fine_grid: Grid, interior_only: bool = False) -> sp.csr_array:
    """Multilinear interpolation from ``coarse_grid`` to ``fine_grid``.

    Returns:
        ``[fine.size, coarse.size]``, or with ``interior_only=True``
        ``[prod(fine.shape - 2), prod(coarse.shape - 2)]``: the map between the free DoFs of
        zero-Dirichlet systems (the interior nodes, in C order, as in ``LinearSystem.free``).
        There the boundary values are zero, so fine nodes next to the boundary get half (or a
        quarter, ...) of their interior coarse neighbours only.

    The matrix is the Kronecker product of the 1D interpolations (1 at coincident nodes, ½ ½ at
    the fine nodes in between), axis 0 outermost to match C order. It reproduces every function
    that is linear in each coordinate exactly.
    """
    _check_nested(coarse_grid, fine_grid)
    matrix = None
    for n_coarse in coarse_grid.shape:
        factor = _prolongation_1d(n_coarse)
        if interior_only:
            factor = factor[1:-1, 1:-1]
        matrix = factor if matrix is None else sp.kron(matrix, factor, format="csr")
    return as_csr32(matrix)


def restriction(coarse_grid: Grid, fine_grid: Grid, interior_only: bool = False) -> sp.csr_array:
    """Full weighting from ``fine_grid`` to ``coarse_grid``: ``R = 2^-ndim Pᵀ``.

    With ``P = prolongation(coarse_grid, fine_grid, interior_only)``. In 1D a coarse value is
    ``¼ u_{2i-1} + ½ u_{2i} + ¼ u_{2i+1}``; in ndim dimensions it is the tensor product of that
    stencil, so rows of interior coarse nodes sum to 1 and constants are kept there. On the
    boundary rows (``interior_only=False``) the stencil is cut off and the row sums are smaller
    (a factor ¾ per side the node lies on: the 1D stencil is cut to ``[½, ¼]``). The scaling
    ``2^-ndim`` is the ratio of fine to coarse cell volume, which makes ``R A_h P`` the coarse-grid
    (Galerkin) operator for the FD scaling of :mod:`.fd` (rows divided by h²): in 1D it is exactly
    the coarse 3-point Laplacian.

    Returns:
        ``[coarse.size, fine.size]`` (or the interior-only sizes).
    """
    prolong = prolongation(coarse_grid, fine_grid, interior_only=interior_only)
    return as_csr32(prolong.T * (0.5 ** coarse_grid.ndim))


def _prolongation_1d(n_coarse: int) -> sp.csr_array:
    n_fine = 2 * (n_coarse - 1) + 1
    coarse = np.arange(n_coarse)
    between = np.arange(n_coarse - 1)
    rows = np.concatenate([2 * coarse, 2 * between + 1, 2 * between + 1])
    cols = np.concatenate([coarse, between, between + 1])
    vals = np.concatenate(
        [np.ones(n_coarse), np.full(n_coarse - 1, 0.5), np.full(n_coarse - 1, 0.5)]
    )
    return sp.csr_array((vals, (rows, cols)), shape=(n_fine, n_coarse))


def _check_is_grid(grid, name: str) -> None:
    if not isinstance(grid, Grid):
        raise TypeError(f"{name}: expected a Grid, got {type(grid).__name__}")


def _check_nested(coarse_grid: Grid, fine_grid: Grid) -> None:
    _check_is_grid(coarse_grid, "coarse_grid")
    _check_is_grid(fine_grid, "fine_grid")
    for name, grid in (("coarse_grid", coarse_grid), ("fine_grid", fine_grid)):
        if grid.centering != "node":
            raise ValueError(
                f"{name}: grid transfer needs node-centred grids, got centering={grid.centering!r}"
            )
    if coarse_grid.ndim != fine_grid.ndim:
        raise ValueError(
            f"fine_grid: has {fine_grid.ndim} axes, coarse_grid has {coarse_grid.ndim}"
        )
    expected = tuple(2 * (n - 1) + 1 for n in coarse_grid.shape)
    if fine_grid.shape != expected:
        raise ValueError(
            f"fine_grid: shape {fine_grid.shape} is not nested in coarse shape "
            f"{coarse_grid.shape}; "
            f"expected {expected} (2 (n - 1) + 1 per axis)"
        )
    if not np.allclose(
        np.asarray(coarse_grid.bounds), np.asarray(fine_grid.bounds), rtol=1e-12, atol=0.0
    ):
        raise ValueError(
            f"fine_grid: bounds {fine_grid.bounds} differ from coarse_grid bounds "
            f"{coarse_grid.bounds}"
        )


def fe_prolongation(coarse_space: LagrangeSpace, fine_space: LagrangeSpace) -> sp.csr_array:
    """``P`` ``[fine.ndofs, coarse.ndofs]`` CSR: coarse basis functions at the fine DoF points.

    For a fine mesh from ``coarse.mesh.refine()`` (nested spaces, fine degree >= coarse degree)
    this is the exact embedding: ``P @ u_c`` is the same function as ``u_c``. On other pairs of
    meshes of one domain it is Lagrange interpolation. The restriction is ``R = P.T``
    (the Galerkin coarse operator is ``P.T @ A @ P``; for residuals ``R`` sums fine
    contributions, so it is not an averaging of values).
    """
    coarse_space, fine_space = check_space(coarse_space), check_space(fine_space)
    coarse, fine = coarse_space.mesh, fine_space.mesh
    if coarse.cell_type != fine.cell_type:
        raise ValueError(
            f"fine_space: cell type {fine.cell_type!r} differs from the coarse {coarse.cell_type!r}"
        )
    points = fine_space.dof_coordinates
    cells = ref = None
    if fine.parent_cells is not None and fine.parent_cells.max() < coarse.n_cells:
        # The refinement history names the coarse cell that holds each fine cell's DoFs.
        owner = np.empty(fine_space.ndofs, dtype=np.int64)
        owner[fine_space.cell_dofs] = np.arange(fine.n_cells)[:, None]
        candidate = fine.parent_cells[owner]
        candidate_ref = coarse.reference_coordinates(candidate, points)
        if np.all(coarse._outside_distance(candidate_ref) <= 1e-10):
            cells, ref = candidate, candidate_ref
    if cells is None:
        cells, ref = coarse.locate(points)
    matrix = coarse_space._evaluation_matrix(cells, ref)
    # Round-off leaves ~1e-17 where a coarse basis function vanishes at a fine DoF point.
    matrix.data[np.abs(matrix.data) < 1e-13] = 0.0
    matrix.eliminate_zeros()
    return as_csr32(matrix)
