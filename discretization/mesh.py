"""Unstructured 2D meshes of triangles or quadrilaterals, with topology and uniform refinement.

Vertex order inside a cell follows the reference cells of basix, so that the FE layer
(:mod:`.fe`) can use basix tabulations without any reordering:

* triangle: reference vertices ``(0,0), (1,0), (0,1)``; edges ``0: (1,2)``, ``1: (0,2)``,
  ``2: (0,1)`` (edge ``k`` is opposite vertex ``k``). A positively oriented triangle is listed
  counter-clockwise.
* quadrilateral: reference vertices ``(0,0), (1,0), (0,1), (1,1)`` -- tensor-product order,
  NOT counter-clockwise; edges ``0: (0,1)``, ``1: (0,2)``, ``2: (1,3)``, ``3: (2,3)``. The
  geometry is the bilinear map of the unit square onto the four vertices.

These tables are what ``basix.geometry(cell)`` and ``basix.topology(cell)`` return (checked
against basix 0.11 in tests/discretization/test_mesh.py).

Coordinates are in the units of the problem; all arrays are NumPy, vertices ``[N, 2]`` float64
and cells ``[M, nv]`` int64.
"""

from __future__ import annotations

from functools import cached_property
from typing import Callable

import numpy as np

#: Vertices per cell, and the local edges of each cell type in basix's numbering.
_VERTICES_PER_CELL = {"triangle": 3, "quadrilateral": 4}
_REFERENCE_EDGES = {
    "triangle": np.array([[1, 2], [0, 2], [0, 1]]),
    "quadrilateral": np.array([[0, 1], [0, 2], [1, 3], [2, 3]]),
}

FacetPredicate = Callable[[np.ndarray], np.ndarray]


class Mesh:
    """A conforming 2D mesh of one cell type.

    Args:
        points: ``[N, 2]`` vertex coordinates.
        cells: ``[M, nv]`` vertex indices per cell, ``nv = 3`` for ``"triangle"`` and ``4`` for
            ``"quadrilateral"``, in basix's reference order (see the module docstring).
        cell_type: ``"triangle"`` (default) or ``"quadrilateral"``.
        facet_tags: optional named sets of facet (edge) indices, e.g. ``{"left": [...]}``.

    Raises ValueError for wrong shapes, non-finite coordinates, out-of-range indices and
    inverted or degenerate cells (Jacobian determinant ``<= 0`` at some vertex). For a
    quadrilateral, a positive determinant at all four vertices means that the bilinear map is
    invertible on the whole cell (the determinant is affine in the reference coordinates), i.e.
    a strictly convex cell.

    The arrays are read-only; topology (edges, boundary) is computed on first use and cached.
    Meshes made by :meth:`refine` keep ``parent_cells``: ``[M_fine]`` index of the coarse cell
    each fine cell lies in.
    """

    def __init__(
        self,
        points: np.ndarray,
        cells: np.ndarray,
        cell_type: str = "triangle",
        facet_tags: dict[str, np.ndarray] | None = None,
    ) -> None:
        if cell_type not in _VERTICES_PER_CELL:
            raise ValueError(
                f"cell_type: expected 'triangle' or 'quadrilateral', got {cell_type!r}"
            )
        points = np.array(points, dtype=float)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
            raise ValueError(f"points: expected shape [N, 2] with N >= 1, got {points.shape}")
        if not np.all(np.isfinite(points)):
            raise ValueError("points: coordinates contain NaN or Inf")
        nv = _VERTICES_PER_CELL[cell_type]
        cells_in = np.asarray(cells)
        if cells_in.ndim != 2 or cells_in.shape[1] != nv or cells_in.shape[0] == 0:
            raise ValueError(
                f"cells: expected shape [M, {nv}] with M >= 1 for {cell_type}, got {cells_in.shape}"
            )
        if not np.issubdtype(cells_in.dtype, np.integer):
            raise ValueError(f"cells: expected integer vertex indices, got dtype {cells_in.dtype}")
        cells = cells_in.astype(np.int64)
        if cells.min() < 0 or cells.max() >= points.shape[0]:
            raise ValueError(
                f"cells: vertex indices must lie in [0, {points.shape[0] - 1}], "
                f"got range [{cells.min()}, {cells.max()}]"
            )
        self._points = points
        self._cells = cells
        self._cell_type = cell_type
        dets = self._vertex_jacobian_determinants()
        bad = np.flatnonzero(dets.min(axis=1) <= 0.0)
        if bad.size:
            raise ValueError(
                f"cells: {bad.size} inverted or degenerate cell(s) (Jacobian determinant <= 0 at a "
                f"vertex), first is cell {bad[0]} with vertices {cells[bad[0]].tolist()}; "
                + (
                    "list triangle vertices counter-clockwise"
                    if cell_type == "triangle"
                    else "list quadrilateral vertices in tensor order (0,0),(1,0),(0,1),(1,1) "
                    "of a convex cell"
                )
            )
        points.flags.writeable = False
        cells.flags.writeable = False
        self.parent_cells: np.ndarray | None = None
        self.facet_tags: dict[str, np.ndarray] = {}
        for name, facets in (facet_tags or {}).items():
            self.facet_tags[name] = self._check_facets(facets, f"facet_tags[{name!r}]")

    # ----------------------------------------------------------------------------- basic data
    @property
    def points(self) -> np.ndarray:
        """``[N, 2]`` vertex coordinates (read-only)."""
        return self._points

    @property
    def cells(self) -> np.ndarray:
        """``[M, nv]`` vertex indices per cell in basix order (read-only)."""
        return self._cells

    @property
    def cell_type(self) -> str:
        return self._cell_type

    @property
    def n_vertices(self) -> int:
        return int(self._points.shape[0])

    @property
    def n_cells(self) -> int:
        return int(self._cells.shape[0])

    @property
    def vertices_per_cell(self) -> int:
        return _VERTICES_PER_CELL[self._cell_type]

    @property
    def reference_edges(self) -> np.ndarray:
        """``[n_edges_per_cell, 2]`` local vertex pairs of the cell's edges, basix numbering."""
        return _REFERENCE_EDGES[self._cell_type].copy()

    def __repr__(self) -> str:
        return f"Mesh({self._cell_type}, n_vertices={self.n_vertices}, n_cells={self.n_cells})"

    # ----------------------------------------------------------------------------- geometry
    def _vertex_jacobian_determinants(self) -> np.ndarray:
        """``[M, nv]`` determinant of the reference-to-cell Jacobian at each vertex."""
        x = self._points[self._cells]
        if self._cell_type == "triangle":
            det = _cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0])
            return det[:, None]
        # Bilinear map: d/dxi at vertex row, d/deta at vertex column of the tensor layout.
        e01, e23 = x[:, 1] - x[:, 0], x[:, 3] - x[:, 2]
        e02, e13 = x[:, 2] - x[:, 0], x[:, 3] - x[:, 1]
        return np.stack(
            [_cross(e01, e02), _cross(e01, e13), _cross(e23, e02), _cross(e23, e13)], axis=1
        )

    def cell_volumes(self) -> np.ndarray:
        """``[M]`` cell areas."""
        x = self._points[self._cells]
        if self._cell_type == "triangle":
            return 0.5 * _cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0])
        # A bilinear quadrilateral is the straight-sided polygon v0, v1, v3, v2: its area is half
        # the cross product of the diagonals.
        return 0.5 * _cross(x[:, 3] - x[:, 0], x[:, 2] - x[:, 1])

    def cell_centroids(self) -> np.ndarray:
        """``[M, 2]`` vertex averages (the image of the reference centre for quadrilaterals)."""
        return self._points[self._cells].mean(axis=1)

    def cell_diameters(self) -> np.ndarray:
        """``[M]`` largest distance between two vertices of each cell."""
        x = self._points[self._cells]
        nv = self.vertices_per_cell
        pairs = [(i, j) for i in range(nv) for j in range(i + 1, nv)]
        return np.max([np.linalg.norm(x[:, i] - x[:, j], axis=1) for i, j in pairs], axis=0)

    def hmax(self) -> float:
        """Largest cell diameter."""
        return float(self.cell_diameters().max())

    def area(self) -> float:
        """Total area of the mesh."""
        return float(self.cell_volumes().sum())

    # ----------------------------------------------------------------------------- topology
    @cached_property
    def _edge_data(self) -> tuple[np.ndarray, np.ndarray]:
        local = _REFERENCE_EDGES[self._cell_type]
        pairs = self._cells[:, local]  # [M, ne, 2]
        lo = pairs.min(axis=2).ravel()
        hi = pairs.max(axis=2).ravel()
        keys = lo * np.int64(self.n_vertices) + hi
        unique_keys, inverse = np.unique(keys, return_inverse=True)
        edges = np.stack([unique_keys // self.n_vertices, unique_keys % self.n_vertices], axis=1)
        cell_edges = inverse.reshape(self.n_cells, local.shape[0]).astype(np.int64)
        edges.flags.writeable = False
        cell_edges.flags.writeable = False
        return edges, cell_edges

    @property
    def edges(self) -> np.ndarray:
        """``[E, 2]`` unique edges, each as (smaller vertex, larger vertex), sorted
        lexicographically."""
        return self._edge_data[0]

    @property
    def cell_edges(self) -> np.ndarray:
        """``[M, n_edges_per_cell]`` global edge index of each local edge (basix numbering)."""
        return self._edge_data[1]

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    @cached_property
    def _edge_cell_count(self) -> np.ndarray:
        return np.bincount(self.cell_edges.ravel(), minlength=self.n_edges)

    @cached_property
    def boundary_facets(self) -> np.ndarray:
        """``[n_boundary_facets]`` sorted indices (into :attr:`edges`) of edges with one adjacent
        cell."""
        counts = self._edge_cell_count
        if counts.max() > 2:
            raise ValueError(
                "cells: an edge is shared by more than two cells; the mesh is not a 2D manifold"
            )
        facets = np.flatnonzero(counts == 1)
        facets.flags.writeable = False
        return facets

    @cached_property
    def boundary_vertices(self) -> np.ndarray:
        """``[n]`` sorted indices of the vertices on the boundary."""
        vertices = np.unique(self.edges[self.boundary_facets])
        vertices.flags.writeable = False
        return vertices

    def facet_midpoints(self, facets: np.ndarray | None = None) -> np.ndarray:
        """``[n, 2]`` midpoints of ``facets`` (edge indices; default all edges)."""
        edges = self.edges if facets is None else self.edges[self._check_facets(facets, "facets")]
        return 0.5 * (self._points[edges[:, 0]] + self._points[edges[:, 1]])

    def boundary_facets_where(self, predicate: FacetPredicate) -> np.ndarray:
        """Boundary facets whose midpoint satisfies ``predicate``.

        Args:
            predicate: callable on midpoints ``[n, 2] -> [n]`` bool, e.g.
                ``lambda x: np.isclose(x[:, 0], 0.0)`` for the left side of a rectangle.

        Returns:
            ``[k]`` sorted facet (edge) indices, a subset of :attr:`boundary_facets`.
        """
        facets = self.boundary_facets
        mask = np.asarray(predicate(self.facet_midpoints(facets)))
        if mask.shape != facets.shape:
            raise ValueError(
                f"predicate: expected a bool array of shape {facets.shape}, got {mask.shape}"
            )
        return facets[mask.astype(bool)]

    def tag_boundary(self, name: str, predicate: FacetPredicate) -> np.ndarray:
        """Store ``boundary_facets_where(predicate)`` in :attr:`facet_tags` under ``name`` and
        return it."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty string, got {name!r}")
        facets = self.boundary_facets_where(predicate)
        self.facet_tags[name] = facets
        return facets

    def facets(self, selection: str | np.ndarray | None = None) -> np.ndarray:
        """Facet indices from a tag name, an index array, or ``None`` (all boundary facets)."""
        if selection is None:
            return self.boundary_facets
        if isinstance(selection, str):
            if selection not in self.facet_tags:
                raise ValueError(
                    f"facets: unknown tag {selection!r}; known tags are {sorted(self.facet_tags)}"
                )
            return self.facet_tags[selection]
        return self._check_facets(selection, "facets")

    def _check_facets(self, facets, name: str) -> np.ndarray:
        arr = np.asarray(facets)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"{name}: expected a 1D integer array of edge indices, got shape {arr.shape} dtype "
                f"{arr.dtype}"
            )
        if arr.min() < 0 or arr.max() >= self.n_edges:
            raise ValueError(f"{name}: edge indices must lie in [0, {self.n_edges - 1}]")
        return arr.astype(np.int64)

    # ----------------------------------------------------------------------------- point location
    def reference_coordinates(self, cells: np.ndarray, points: np.ndarray) -> np.ndarray:
        """``[n, 2]`` reference coordinates of ``points`` ``[n, 2]`` under the map of ``cells``
        ``[n]``.

        Exact for triangles; Newton's method on the bilinear map for quadrilaterals (NaN where it
        fails, which can only happen for points outside the cell).
        """
        x = self._points[self._cells[np.asarray(cells)]]
        points = np.asarray(points, dtype=float)
        a, b = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]
        r = points - x[:, 0]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self._cell_type == "triangle":
                det = _cross(a, b)
                return np.stack([_cross(r, b) / det, _cross(a, r) / det], axis=1)
            c = x[:, 3] - x[:, 2] - x[:, 1] + x[:, 0]
            ref = np.full(points.shape, 0.5)
            for _ in range(30):
                xi, eta = ref[:, :1], ref[:, 1:]
                residual = a * xi + b * eta + c * xi * eta - r
                d_xi, d_eta = a + c * eta, b + c * xi
                det = _cross(d_xi, d_eta)
                step = np.stack(
                    [_cross(residual, d_eta) / det, _cross(d_xi, residual) / det], axis=1
                )
                ref = ref - step
                if not np.any(np.abs(step) > 1e-14):
                    break
            xi, eta = ref[:, :1], ref[:, 1:]
            residual = np.linalg.norm(a * xi + b * eta + c * xi * eta - r, axis=1)
            scale = np.linalg.norm(a, axis=1) + np.linalg.norm(b, axis=1)
            ref[~(residual <= 1e-10 * scale)] = np.nan
            return ref

    def _outside_distance(self, ref: np.ndarray) -> np.ndarray:
        """How far (in reference coordinates) points lie outside the reference cell; inf for NaN."""
        xi, eta = ref[..., 0], ref[..., 1]
        if self._cell_type == "triangle":
            violation = np.maximum.reduce([-xi, -eta, xi + eta - 1.0, np.zeros_like(xi)])
        else:
            violation = np.maximum.reduce([-xi, -eta, xi - 1.0, eta - 1.0, np.zeros_like(xi)])
        return np.where(np.isfinite(violation), violation, np.inf)

    @cached_property
    def _centroid_tree(self):
        from scipy.spatial import cKDTree

        centroids = self.cell_centroids()
        reach = np.linalg.norm(self._points[self._cells] - centroids[:, None], axis=2).max()
        return cKDTree(centroids), float(reach)

    def locate(self, points: np.ndarray, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
        """The cell containing each point, and the point's reference coordinates in it.

        Args:
            points: ``[n, 2]`` coordinates.
            tol: how far outside a cell, in reference coordinates, a point may lie and still
                count as inside (absorbs round-off for points on edges and on the boundary).

        Returns:
            ``cells`` ``[n]`` int and ``reference_points`` ``[n, 2]``. A point on an edge shared by
            two cells gets one of them.

        Raises:
            ValueError naming ``points`` if a point lies outside the mesh.

        The candidates are the cells with the nearest centroids (k-d tree), then, for points not
        found there, every cell whose centroid lies within the largest centroid-to-vertex
        distance, which is a complete search.
        """
        points = np.asarray(points, dtype=float)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"points: expected shape [n, 2], got {points.shape}")
        if not np.all(np.isfinite(points)):
            raise ValueError("points: coordinates contain NaN or Inf")
        n = points.shape[0]
        cells = np.full(n, -1, dtype=np.int64)
        ref = np.full((n, 2), np.nan)
        if n == 0:
            return cells, ref
        tree, reach = self._centroid_tree
        k = min(self.n_cells, 8)
        _, candidates = tree.query(points, k=k)
        candidates = candidates.reshape(n, k)
        cand_ref = self.reference_coordinates(
            candidates.ravel(), np.repeat(points, k, axis=0)
        ).reshape(n, k, 2)
        distance = self._outside_distance(cand_ref)
        best = np.argmin(distance, axis=1)
        found = distance[np.arange(n), best] <= tol
        cells[found] = candidates[found, best[found]]
        ref[found] = cand_ref[found, best[found]]
        missing = np.flatnonzero(~found)
        if missing.size:
            lists = tree.query_ball_point(points[missing], r=reach * (1 + 1e-9) + 1e-300)
            counts = np.array([len(c) for c in lists])
            owner = np.repeat(np.arange(missing.size), counts)
            flat = (
                np.concatenate([np.asarray(c, dtype=np.int64) for c in lists])
                if counts.sum()
                else np.zeros(0, np.int64)
            )
            flat_ref = self.reference_coordinates(flat, points[missing][owner])
            flat_distance = self._outside_distance(flat_ref)
            order = np.lexsort((flat_distance, owner))  # by point, then by distance
            first = np.ones(order.size, dtype=bool)
            first[1:] = owner[order][1:] != owner[order][:-1]
            pick = order[first]
            inside = flat_distance[pick] <= tol
            hit = missing[owner[pick][inside]]
            cells[hit] = flat[pick][inside]
            ref[hit] = flat_ref[pick][inside]
        outside = np.flatnonzero(cells < 0)
        if outside.size:
            raise ValueError(
                f"points: {outside.size} point(s) lie outside the mesh, first is "
                f"{points[outside[0]].tolist()}"
            )
        return cells, ref

    # ----------------------------------------------------------------------------- refinement
    def refine(self) -> "Mesh":
        """Uniform refinement: every cell into 4 by its edge midpoints (and centre for quads).

        The fine mesh keeps the coarse vertices first (same indices), then one new vertex per
        coarse edge (index ``N + edge``), then, for quadrilaterals, one per coarse cell
        (``N + E + cell``, the image of the reference centre). The meshes are nested: every fine
        cell lies in one coarse cell (``parent_cells``), and for quadrilaterals the bilinear map
        of a child is the parent's map restricted to a quarter of the reference square, so the
        FE spaces are nested too. Facet tags carry over to the two halves of each tagged edge.
        """
        n, ne = self.n_vertices, self.n_edges
        mid = self.facet_midpoints()
        c = self._cells
        m = n + self.cell_edges  # new vertex on each local edge
        if self._cell_type == "triangle":
            points = np.concatenate([self._points, mid])
            # Edge k is opposite vertex k: m[:,0] on (1,2), m[:,1] on (0,2), m[:,2] on (0,1).
            children = np.stack(
                [
                    np.stack([c[:, 0], m[:, 2], m[:, 1]], axis=1),
                    np.stack([m[:, 2], c[:, 1], m[:, 0]], axis=1),
                    np.stack([m[:, 1], m[:, 0], c[:, 2]], axis=1),
                    np.stack([m[:, 0], m[:, 1], m[:, 2]], axis=1),
                ],
                axis=1,
            )
        else:
            centre = n + ne + np.arange(self.n_cells)
            points = np.concatenate([self._points, mid, self.cell_centroids()])
            # Edges 0: (0,1) bottom, 1: (0,2) left, 2: (1,3) right, 3: (2,3) top.
            children = np.stack(
                [
                    np.stack([c[:, 0], m[:, 0], m[:, 1], centre], axis=1),
                    np.stack([m[:, 0], c[:, 1], centre, m[:, 2]], axis=1),
                    np.stack([m[:, 1], centre, c[:, 2], m[:, 3]], axis=1),
                    np.stack([centre, m[:, 2], m[:, 3], c[:, 3]], axis=1),
                ],
                axis=1,
            )
        fine = Mesh(points, children.reshape(-1, self.vertices_per_cell), self._cell_type)
        fine.parent_cells = np.repeat(np.arange(self.n_cells), 4)
        fine.parent_cells.flags.writeable = False
        for name, facets in self.facet_tags.items():
            fine.facet_tags[name] = fine._split_edges(self.edges[facets], n + facets)
        return fine

    def _split_edges(self, coarse_edges: np.ndarray, midpoints: np.ndarray) -> np.ndarray:
        """Indices of the fine edges (a, mid) and (mid, b) of coarse edges (a, b)."""
        halves = np.concatenate(
            [
                np.stack([coarse_edges[:, 0], midpoints], axis=1),
                np.stack([midpoints, coarse_edges[:, 1]], axis=1),
            ]
        )
        keys = halves.min(axis=1) * np.int64(self.n_vertices) + halves.max(axis=1)
        all_keys = self.edges[:, 0] * np.int64(self.n_vertices) + self.edges[:, 1]
        return np.sort(np.searchsorted(all_keys, keys))

    # ----------------------------------------------------------------------------- constructors
    @classmethod
    def rectangle(
        cls,
        nx: int,
        ny: int,
        bounds: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 1.0), (0.0, 1.0)),
        cell_type: str = "triangle",
    ) -> "Mesh":
        """Structured mesh of ``[x0, x1] x [y0, y1]`` with ``nx x ny`` squares (each 2 triangles).

        Vertex ``(i, j)`` at ``(x_i, y_j)`` has index ``i * (ny + 1) + j``, the C order of a
        ``Grid((nx + 1, ny + 1))``, so P1 vertex values reshape to ``[nx + 1, ny + 1]`` with axis 0
        = x. Triangles split each square along the diagonal from its lower-left corner.
        Facet tags: ``"left"`` (x = x0), ``"right"``, ``"bottom"`` (y = y0), ``"top"``.
        """
        nx, ny = _check_count(nx, "nx"), _check_count(ny, "ny")
        (x0, x1), (y0, y1) = _check_bounds(bounds)
        xs, ys = np.linspace(x0, x1, nx + 1), np.linspace(y0, y1, ny + 1)
        points = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)
        cells = _grid_cells(nx, ny, cell_type)
        mesh = cls(points, cells, cell_type)
        hx, hy = (x1 - x0) / nx, (y1 - y0) / ny
        mesh.tag_boundary("left", lambda x: x[:, 0] < x0 + 0.25 * hx)
        mesh.tag_boundary("right", lambda x: x[:, 0] > x1 - 0.25 * hx)
        mesh.tag_boundary("bottom", lambda x: x[:, 1] < y0 + 0.25 * hy)
        mesh.tag_boundary("top", lambda x: x[:, 1] > y1 - 0.25 * hy)
        return mesh

    @classmethod
    def l_shape(cls, n: int, cell_type: str = "triangle") -> "Mesh":
        """The L-shaped domain ``[-1, 1]^2`` minus ``(0, 1] x (0, 1]`` (area 3), ``n`` cells per
        unit length.

        Non-convex, with the re-entrant corner at the origin. Facet tags: ``"reentrant"`` (the two
        edges ending at the origin, on x = 0 and on y = 0) and ``"outer"`` (the rest).
        """
        n = _check_count(n, "n")
        box = cls.rectangle(2 * n, 2 * n, ((-1.0, 1.0), (-1.0, 1.0)), cell_type)
        centroids = box.cell_centroids()
        keep = ~((centroids[:, 0] > 0) & (centroids[:, 1] > 0))
        mesh = _compact(box.points, box.cells[keep], cell_type)
        h = 1.0 / n

        def on_reentrant(x):
            return ((np.abs(x[:, 0]) < 0.25 * h) & (x[:, 1] > 0)) | (
                (np.abs(x[:, 1]) < 0.25 * h) & (x[:, 0] > 0)
            )

        mesh.tag_boundary("reentrant", on_reentrant)
        mesh.tag_boundary("outer", lambda x: ~on_reentrant(x))
        return mesh

    @classmethod
    def rectangle_with_hole(
        cls,
        n: int,
        bounds: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 1.0), (0.0, 1.0)),
        radius: float = 0.25,
        n_radial: int | None = None,
        cell_type: str = "triangle",
    ) -> "Mesh":
        """A rectangle with a circular hole at its centre, meshed as a structured ring.

        Each side of the rectangle has ``n`` cells; ``n_radial`` layers (default ``max(1, n // 2)``)
        join the outer boundary to ``4 n`` points on the circle, each point on the line from the
        centre to the matching outer point, so the hole is the inscribed ``4n``-gon of the circle.
        Refinement puts new hole vertices on the chords (the polygon stays the domain).
        Facet tags: ``"outer"`` and ``"hole"``.
        """
        n = _check_count(n, "n")
        n_radial = max(1, n // 2) if n_radial is None else _check_count(n_radial, "n_radial")
        (x0, x1), (y0, y1) = _check_bounds(bounds)
        centre = np.array([0.5 * (x0 + x1), 0.5 * (y0 + y1)])
        half = np.array([0.5 * (x1 - x0), 0.5 * (y1 - y0)])
        radius = float(radius)
        if not (0.0 < radius < half.min()):
            raise ValueError(
                f"radius: expected 0 < radius < {half.min()} (half the shorter side), got {radius}"
            )
        # Outer boundary counter-clockwise from the lower-left corner, n points per side.
        s = np.arange(n) / n
        corners = centre + half * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
        outer = np.concatenate(
            [corners[k] + s[:, None] * (corners[(k + 1) % 4] - corners[k]) for k in range(4)]
        )
        direction = outer - centre
        # Radial position of the inner point set by angle so the circle is sampled at the angles
        # of the outer points (monotone, hence a valid ring).
        inner = centre + radius * direction / np.linalg.norm(direction, axis=1, keepdims=True)
        t = np.linspace(0.0, 1.0, n_radial + 1)
        points = ((1 - t)[:, None, None] * inner[None] + t[:, None, None] * outer[None]).reshape(
            -1, 2
        )
        n_around = 4 * n
        layer, around = np.meshgrid(np.arange(n_radial), np.arange(n_around), indexing="ij")
        layer, around = layer.ravel(), around.ravel()
        nxt = (around + 1) % n_around
        v00 = layer * n_around + around  # tensor order: xi radial (outward), eta angular (ccw)
        v10 = (layer + 1) * n_around + around
        v01 = layer * n_around + nxt
        v11 = (layer + 1) * n_around + nxt
        if cell_type == "quadrilateral":
            cells = np.stack([v00, v10, v01, v11], axis=1)
        elif cell_type == "triangle":
            cells = np.concatenate(
                [np.stack([v00, v10, v11], axis=1), np.stack([v00, v11, v01], axis=1)]
            )
        else:
            raise ValueError(
                f"cell_type: expected 'triangle' or 'quadrilateral', got {cell_type!r}"
            )
        mesh = cls(points, cells, cell_type)
        threshold = 0.5 * (radius + np.sqrt(((outer - centre) ** 2).sum(axis=1)).min())
        mesh.tag_boundary("hole", lambda x: np.linalg.norm(x - centre, axis=1) < threshold)
        mesh.tag_boundary("outer", lambda x: np.linalg.norm(x - centre, axis=1) >= threshold)
        return mesh


# --------------------------------------------------------------------------------- helpers
def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _check_bounds(bounds) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        (x0, x1), (y0, y1) = [(float(lo), float(hi)) for lo, hi in bounds]
    except (TypeError, ValueError) as err:
        raise ValueError(f"bounds: expected ((x0, x1), (y0, y1)), got {bounds!r}") from err
    if not (x0 < x1 and y0 < y1) or not np.all(np.isfinite([x0, x1, y0, y1])):
        raise ValueError(f"bounds: expected finite x0 < x1 and y0 < y1, got {bounds!r}")
    return (x0, x1), (y0, y1)


def _grid_cells(nx: int, ny: int, cell_type: str) -> np.ndarray:
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    i, j = i.ravel(), j.ravel()
    v00 = i * (ny + 1) + j
    v10 = v00 + (ny + 1)
    v01 = v00 + 1
    v11 = v10 + 1
    if cell_type == "quadrilateral":
        return np.stack([v00, v10, v01, v11], axis=1)
    if cell_type == "triangle":
        lower = np.stack([v00, v10, v11], axis=1)
        upper = np.stack([v00, v11, v01], axis=1)
        return np.stack([lower, upper], axis=1).reshape(-1, 3)
    raise ValueError(f"cell_type: expected 'triangle' or 'quadrilateral', got {cell_type!r}")


def _compact(points: np.ndarray, cells: np.ndarray, cell_type: str) -> Mesh:
    """Mesh of ``cells`` with unused vertices dropped (vertex order otherwise kept)."""
    used = np.zeros(points.shape[0], dtype=bool)
    used[cells.ravel()] = True
    new_index = np.cumsum(used) - 1
    return Mesh(points[used], new_index[cells], cell_type)
