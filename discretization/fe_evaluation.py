"""Point evaluation of finite-element functions where some points may lie outside the mesh.

:meth:`LagrangeSpace.evaluate` raises for a point outside the mesh, which is right for a solver
but not for a plot: a rectangular grid over an L-shape or a plate with a hole has points in the
notch or the hole. Here such points are located as outside (cell ``-1``), their rows of the
evaluation matrix are empty, and on a grid their values are NaN.

Coordinates are in the units of the mesh; arrays are NumPy, points ``[n, 2]`` float64.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from pdesuite.discretization.fe import LagrangeSpace, check_space
from pdesuite.discretization.mesh import Mesh
from pdesuite.discretization.system import as_csr32

__all__ = ["evaluate_on_grid", "evaluation_matrix", "locate_points"]


def locate_points(
    mesh: Mesh, points: np.ndarray, tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray]:
    """The cell holding each point and its reference coordinates; ``-1`` and NaN outside.

    Args:
        mesh: the mesh.
        points: ``[n, 2]`` coordinates.
        tol: how far outside a cell, in reference coordinates, a point may lie and still count
            as inside (round-off on edges and on the boundary). Default ``1e-10``.

    Returns:
        ``cells`` ``[n]`` int64 (``-1`` outside the mesh) and ``reference`` ``[n, 2]`` (NaN
        outside). A point on an edge shared by two cells gets one of them.

    The candidates are the cells with the nearest centroids, then every cell whose centroid lies
    within the largest centroid-to-vertex distance (a complete search), as in
    :meth:`Mesh.locate`.
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a Mesh, got {type(mesh).__name__}")
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points: expected shape [n, 2], got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("points: coordinates contain NaN or Inf")
    n = points.shape[0]
    cells = np.full(n, -1, dtype=np.int64)
    reference = np.full((n, 2), np.nan)
    if n == 0:
        return cells, reference
    centroids = mesh.cell_centroids()
    reach = float(np.linalg.norm(mesh.points[mesh.cells] - centroids[:, None], axis=2).max())
    tree = cKDTree(centroids)
    k = min(mesh.n_cells, 8)
    _, nearest = tree.query(points, k=k)
    nearest = nearest.reshape(n, k)
    owner = np.repeat(np.arange(n), k)
    _settle(mesh, points, owner, nearest.ravel(), tol, cells, reference)
    missing = np.flatnonzero(cells < 0)
    if missing.size:
        lists = tree.query_ball_point(points[missing], r=reach * (1 + 1e-9) + 1e-300)
        counts = np.array([len(c) for c in lists], dtype=np.int64)
        if counts.sum():
            owner = np.repeat(missing, counts)
            candidates = np.concatenate([np.asarray(c, dtype=np.int64) for c in lists])
            _settle(mesh, points, owner, candidates, tol, cells, reference)
    return cells, reference


def _settle(mesh, points, owner, candidates, tol, cells, reference) -> None:
    """For each point in ``owner``, keep the candidate cell it lies deepest inside (if any)."""
    ref = mesh.reference_coordinates(candidates, points[owner])
    xi, eta = ref[:, 0], ref[:, 1]
    if mesh.cell_type == "triangle":
        outside = np.maximum.reduce([-xi, -eta, xi + eta - 1.0, np.zeros_like(xi)])
    else:
        outside = np.maximum.reduce([-xi, -eta, xi - 1.0, eta - 1.0, np.zeros_like(xi)])
    outside = np.where(np.isfinite(outside), outside, np.inf)
    order = np.lexsort((outside, owner))  # by point, then by distance outside
    first = np.ones(order.size, dtype=bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    pick = order[first]
    hit = pick[outside[pick] <= tol]
    cells[owner[hit]] = candidates[hit]
    reference[owner[hit]] = ref[hit]


def evaluation_matrix(
    space: LagrangeSpace, points: np.ndarray, tol: float = 1e-10
) -> tuple[sp.csr_array, np.ndarray]:
    """``E`` ``[n, ndofs]`` CSR with ``E @ u`` = the FE function ``u`` at ``points`` ``[n, 2]``.

    The basis functions are basix tabulations at the reference coordinates of each point in its
    cell. Returns ``(E, inside)``: ``inside`` ``[n]`` bool, and the rows of points outside the
    mesh are empty (``E @ u`` is 0 there; see :func:`evaluate_on_grid` for NaN).
    """
    space = check_space(space)
    points = np.asarray(points, dtype=float)
    cells, reference = locate_points(space.mesh, points, tol)
    inside = cells >= 0
    phi = space.element.tabulate(0, reference[inside])[0, :, :, 0]  # [n_in, nb]
    nb = space.dofs_per_cell
    counts = np.where(inside, nb, 0)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    matrix = sp.csr_array(
        (phi.ravel(), space.cell_dofs[cells[inside]].ravel(), indptr),
        shape=(points.shape[0], space.ndofs),
    )
    return as_csr32(matrix), inside


def evaluate_on_grid(
    space: LagrangeSpace,
    coefficients: np.ndarray,
    resolution: tuple[int, int] = (128, 128),
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values of an FE function on a rectangular grid, NaN outside the domain (for plots).

    Args:
        space: the space of ``coefficients``.
        coefficients: ``[ndofs]`` (or ``[ndofs, k]`` for ``k`` functions at once).
        resolution: ``(nx, ny)`` grid points per axis, both ends included. Default ``(128, 128)``.
        bounds: ``((x0, x1), (y0, y1))``; default the bounding box of the mesh.

    Returns:
        ``x`` ``[nx]``, ``y`` ``[ny]`` and ``values`` ``[nx, ny]`` (or ``[nx, ny, k]``) with
        ``values[i, j]`` at ``(x[i], y[j])`` (axis 0 = x, as :meth:`Mesh.rectangle` numbers its
        vertices); ``imshow`` wants ``values.T`` with ``origin="lower"``.
    """
    space = check_space(space)
    coefficients = np.asarray(coefficients, dtype=float)
    if coefficients.ndim not in (1, 2) or coefficients.shape[0] != space.ndofs:
        raise ValueError(
            f"coefficients: expected shape [{space.ndofs}] or [{space.ndofs}, k], got "
            f"{coefficients.shape}"
        )
    try:
        nx, ny = (int(r) for r in resolution)
    except (TypeError, ValueError) as err:
        raise ValueError(f"resolution: expected (nx, ny), got {resolution!r}") from err
    if nx < 2 or ny < 2:
        raise ValueError(f"resolution: expected at least 2 points per axis, got {resolution!r}")
    if bounds is None:
        low, high = space.mesh.points.min(axis=0), space.mesh.points.max(axis=0)
        bounds = ((low[0], high[0]), (low[1], high[1]))
    (x0, x1), (y0, y1) = bounds
    x, y = np.linspace(x0, x1, nx), np.linspace(y0, y1, ny)
    points = np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1).reshape(-1, 2)
    matrix, inside = evaluation_matrix(space, points)
    values = np.asarray(matrix @ coefficients, dtype=float)
    values[~inside] = np.nan
    return x, y, values.reshape((nx, ny) + coefficients.shape[1:])
