"""Lagrange finite elements (P1/P2 on triangles, Q1/Q2 on quadrilaterals) through basix.

basix supplies the reference elements, their tabulation and the quadrature rules; this module
numbers the global DoFs, maps the reference cell onto each mesh cell (affine for triangles,
bilinear for quadrilaterals, with the Jacobian taken at every quadrature point) and assembles
vectorised over all cells: one matrix product per block of cells, no Python loop over cells.

Global DoF numbering of a :class:`LagrangeSpace`:

* ``0 .. N-1``: one DoF per mesh vertex, DoF index = vertex index;
* degree 2: ``N + e`` for the DoF at the midpoint of edge ``e`` (:attr:`Mesh.edges`);
* degree 2 on quadrilaterals: ``N + E + c`` for the DoF at the centre of cell ``c``.

Matrices are ``scipy.sparse.csr_array`` with int32 indices (:func:`.system.as_csr32`); row =
test function, column = trial function. Coefficients and sources may be given as

* a number;
* a callable on points ``[n, 2] -> [n]``, evaluated at the quadrature points;
* an :class:`FEFunction` (nodal values in any Lagrange space of the same mesh), or a 1D array
  of nodal values of the space being assembled (length ``ndofs``);
* a 1D array of per-cell values (length ``n_cells``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import basix
import numpy as np
import scipy.sparse as sp

from pdesuite.discretization.boundary import evaluate_boundary_data
from pdesuite.discretization.mesh import Mesh
from pdesuite.discretization.system import as_csr32

_BASIX_CELL = {"triangle": basix.CellType.triangle, "quadrilateral": basix.CellType.quadrilateral}
#: Cells integrated per block: bounds the memory of the per-quadrature-point geometry.
_BLOCK = 1 << 16

Field = Union[float, np.ndarray, Callable[[np.ndarray], np.ndarray], "FEFunction"]
FacetSelection = Union[str, np.ndarray, Sequence[int], None]


class LagrangeSpace:
    """Continuous Lagrange space of degree 1 or 2 on a :class:`~.mesh.Mesh`.

    Args:
        mesh: the mesh (triangles give P1/P2, quadrilaterals Q1/Q2).
        degree: 1 or 2.

    Attributes:
        element: the basix element on the reference cell (equispaced Lagrange variant, which for
            degrees 1 and 2 has the same points as every other variant).
        cell_dofs: ``[M, ndofs_per_cell]`` global DoFs of each cell, in basix's local order.
        dof_coordinates: ``[ndofs, 2]`` the point at which each DoF is a nodal value.
    """

    def __init__(self, mesh: Mesh, degree: int) -> None:
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh: expected a Mesh, got {type(mesh).__name__}")
        if (
            isinstance(degree, bool)
            or not isinstance(degree, numbers.Integral)
            or degree not in (1, 2)
        ):
            raise ValueError(f"degree: expected 1 or 2, got {degree!r}")
        self.mesh = mesh
        self.degree = int(degree)
        cell = _BASIX_CELL[mesh.cell_type]
        self.element = basix.create_element(
            basix.ElementFamily.P, cell, self.degree, basix.LagrangeVariant.equispaced
        )
        self.geometry_element = basix.create_element(
            basix.ElementFamily.P, cell, 1, basix.LagrangeVariant.equispaced
        )
        # Each edge of a P1/P2 element carries at most one DoF (its midpoint), and the interior
        # of a Q2 cell one (its centre): a single point has no orientation, so neighbouring cells
        # agree on the shared DoF without any permutation (basix reports identity
        # transformations, checked here).
        if not self.element.dof_transformations_are_identity:
            raise RuntimeError("basix reports non-identity DoF transformations for a P1/P2 element")
        entity_dofs = self.element.entity_dofs
        nv = mesh.vertices_per_cell
        ne = len(entity_dofs[1])
        expected = [[[v] for v in range(nv)]]
        expected.append(
            [[nv + e] for e in range(ne)] if self.degree == 2 else [[] for _ in range(ne)]
        )
        expected.append([[nv + ne]] if (self.degree == 2 and nv == 4) else [[]])
        if [list(map(list, d)) for d in entity_dofs] != expected:
            raise RuntimeError(f"unexpected basix DoF layout {entity_dofs}")

        n, n_edges, n_cells = (
            mesh.n_vertices,
            (mesh.n_edges if self.degree == 2 else 0),
            mesh.n_cells,
        )
        blocks = [mesh.cells]
        if self.degree == 2:
            blocks.append(n + mesh.cell_edges)
            if mesh.cell_type == "quadrilateral":
                blocks.append((n + n_edges + np.arange(n_cells))[:, None])
        self.cell_dofs = np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.int64)
        self.cell_dofs.flags.writeable = False
        self.ndofs = int(
            n
            + n_edges
            + (n_cells if (self.degree == 2 and mesh.cell_type == "quadrilateral") else 0)
        )

        # Push the reference DoF points forward through each cell's map (shared DoFs get the
        # same point from every cell, so the last write is as good as any).
        geo = self.geometry_element.tabulate(0, self.element.points)[0, :, :, 0]  # [nb, nv]
        coords = np.empty((self.ndofs, 2))
        coords[self.cell_dofs] = np.einsum("bv,mvd->mbd", geo, mesh.points[mesh.cells])
        coords.flags.writeable = False
        self.dof_coordinates = coords
        self._quadratures: dict[int, _Quadrature] = {}
        self._pattern: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"LagrangeSpace(degree={self.degree}, {self.mesh!r}, ndofs={self.ndofs})"

    @property
    def dofs_per_cell(self) -> int:
        return int(self.cell_dofs.shape[1])

    # ----------------------------------------------------------------------------- boundary
    def facet_dofs(self, facets: np.ndarray) -> np.ndarray:
        """``[n_facets, degree + 1]`` DoFs on each facet: its two vertices, then (P2) its midpoint.

        This is the DoF order of basix's interval element of the same degree.
        """
        facets = self.mesh.facets(facets)
        columns = [self.mesh.edges[facets]]
        if self.degree == 2:
            columns.append((self.mesh.n_vertices + facets)[:, None])
        return np.concatenate(columns, axis=1)

    def boundary_dofs(self, facets: FacetSelection = None) -> np.ndarray:
        """Sorted DoFs on ``facets``: a tag name, an array of edge indices, or None (whole
        boundary)."""
        return np.unique(self.facet_dofs(self.mesh.facets(facets)))

    # ----------------------------------------------------------------------------- functions
    def interpolate(self, f: Field) -> np.ndarray:
        """Lagrange interpolant ``[ndofs]``: ``f`` (a callable on ``[n, 2]`` or a number) at the DoF
        points."""
        if callable(f):
            values = np.asarray(f(self.dof_coordinates), dtype=float)
            if values.shape == ():
                values = np.full(self.ndofs, float(values))
        elif isinstance(f, numbers.Real):
            values = np.full(self.ndofs, float(f))
        else:
            raise TypeError(
                f"f: expected a callable on points [n, 2] or a number, got {type(f).__name__}"
            )
        if values.shape != (self.ndofs,):
            raise ValueError(
                f"f: expected {self.ndofs} values from points of shape "
                f"{self.dof_coordinates.shape}, got {values.shape}"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("f: values contain NaN or Inf")
        return values

    def evaluation_matrix(self, points: np.ndarray) -> sp.csr_array:
        """``[n_points, ndofs]`` CSR matrix ``E`` with ``E @ u`` = the FE function ``u`` at
        ``points``.

        Raises ValueError naming ``points`` for points outside the mesh.
        """
        cells, ref = self.mesh.locate(points)
        return self._evaluation_matrix(cells, ref)

    def _evaluation_matrix(self, cells: np.ndarray, ref: np.ndarray) -> sp.csr_array:
        phi = self.element.tabulate(0, ref)[0, :, :, 0]  # [n, nb]
        n, nb = phi.shape
        matrix = sp.csr_array(
            (phi.ravel(), self.cell_dofs[cells].ravel(), np.arange(0, n * nb + 1, nb)),
            shape=(n, self.ndofs),
        )
        return as_csr32(matrix)

    def evaluate(self, coefficients: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Values of the FE function(s) with ``coefficients`` ``[ndofs]`` (or ``[ndofs, k]``) at
        ``points`` ``[n, 2]``.

        Returns ``[n]`` (or ``[n, k]``). Raises ValueError naming ``points`` for points outside
        the mesh.
        """
        coefficients = _check_coefficients(self, coefficients, "coefficients", allow_columns=True)
        cells, ref = self.mesh.locate(points)
        phi = self.element.tabulate(0, ref)[0, :, :, 0]
        local = coefficients[self.cell_dofs[cells]]  # [n, nb] or [n, nb, k]
        return np.einsum("nb,nb...->n...", phi, local)

    # ----------------------------------------------------------------------------- internals
    def _quadrature(self, degree: int) -> "_Quadrature":
        if degree not in self._quadratures:
            cell = _BASIX_CELL[self.mesh.cell_type]
            points, weights = basix.make_quadrature(cell, int(degree))
            tab = self.element.tabulate(1, points)[:, :, :, 0]  # [3, nq, nb]
            geo = self.geometry_element.tabulate(1, points)[:, :, :, 0]
            self._quadratures[degree] = _Quadrature(
                degree=int(degree),
                points=points,
                weights=weights,
                phi=tab[0],
                dphi=np.moveaxis(tab[1:], 0, -1),
                geo_phi=geo[0],
                geo_dphi=np.moveaxis(geo[1:], 0, -1),
            )
        return self._quadratures[degree]

    def _matrix_pattern(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR structure of the assembled matrix and the CSR slot of every local entry.

        Computed once per space (one sort of the ``M * nb^2`` local entries); every later
        assembly is a single ``np.bincount`` into those slots, which keeps repeated assembly
        with new coefficients (datasets) cheap.
        """
        if self._pattern is None:
            n = np.int64(self.ndofs)
            keys = (
                self.cell_dofs[:, :, None] * n + self.cell_dofs[:, None, :]
            ).ravel()  # row * n + col
            unique_keys, slots = np.unique(keys, return_inverse=True)
            del keys
            indices = (unique_keys % n).astype(np.int32 if n < np.iinfo(np.int32).max else np.int64)
            indptr = np.zeros(self.ndofs + 1, dtype=np.int64)
            np.cumsum(np.bincount(unique_keys // n, minlength=self.ndofs), out=indptr[1:])
            if unique_keys.size < np.iinfo(np.int32).max:
                indptr = indptr.astype(np.int32)
                slots = slots.astype(np.int32)
            self._pattern = (indptr, indices, slots.ravel())
        return self._pattern

    def _assemble_matrix(self, local: np.ndarray) -> sp.csr_array:
        """CSR matrix from local matrices ``[M, nb, nb]`` (or ``[M, nb*nb]``)."""
        indptr, indices, slots = self._matrix_pattern()
        data = np.bincount(slots, weights=local.ravel(), minlength=indices.size)
        return as_csr32(sp.csr_array((data, indices, indptr), shape=(self.ndofs, self.ndofs)))

    def _assemble_vector(self, local: np.ndarray) -> np.ndarray:
        """Global vector ``[ndofs]`` from local vectors ``[M, nb]``."""
        return np.bincount(self.cell_dofs.ravel(), weights=local.ravel(), minlength=self.ndofs)


@dataclass(frozen=True)
class FEFunction:
    """Nodal values ``values`` ``[space.ndofs]`` of a function in ``space``; callable on points
    ``[n, 2]``."""

    space: LagrangeSpace
    values: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _check_coefficients(self.space, self.values, "values"))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return self.space.evaluate(self.values, points)


@dataclass(frozen=True)
class _Quadrature:
    degree: int  # exact for polynomials of this degree (per variable on quadrilaterals)
    points: np.ndarray  # [nq, 2] reference points
    weights: np.ndarray  # [nq]
    phi: np.ndarray  # [nq, nb] basis values
    dphi: np.ndarray  # [nq, nb, 2] reference gradients
    geo_phi: np.ndarray  # [nq, nv] geometry (P1/Q1) basis
    geo_dphi: np.ndarray  # [nq, nv, 2]


@dataclass
class _Geometry:
    """Map of a block of cells at the quadrature points (components kept apart: elementwise
    arithmetic on ``[m, nq]`` arrays is much faster than einsum over tiny trailing axes)."""

    x: np.ndarray  # [m, nq, 2] physical points
    det: np.ndarray  # [m, nq] Jacobian determinant (> 0 on a valid mesh)
    inverse: tuple  # ((i00, i01), (i10, i11)), each [m, nq]: i_kd = d xi_k / d x_d


def _geometry(mesh: Mesh, quad: _Quadrature, block: slice) -> _Geometry:
    cells = mesh.cells[block]
    nq = quad.weights.size
    px, py = mesh.points[:, 0], mesh.points[:, 1]
    # A sum over the 3 or 4 vertices, written out: a BLAS product with an inner dimension of 3
    # gains nothing and stalls badly when OpenBLAS threads compete for busy cores.
    x = np.zeros((cells.shape[0], nq, 2))
    j00, j01, j10, j11 = (np.zeros((cells.shape[0], nq)) for _ in range(4))  # j_dk = d x_d / d xi_k
    for v in range(cells.shape[1]):
        vx, vy = px[cells[:, v]][:, None], py[cells[:, v]][:, None]
        x[:, :, 0] += vx * quad.geo_phi[:, v]
        x[:, :, 1] += vy * quad.geo_phi[:, v]
        j00 += vx * quad.geo_dphi[:, v, 0]
        j01 += vx * quad.geo_dphi[:, v, 1]
        j10 += vy * quad.geo_dphi[:, v, 0]
        j11 += vy * quad.geo_dphi[:, v, 1]
    det = j00 * j11 - j01 * j10
    inverse = ((j11 / det, -j01 / det), (-j10 / det, j00 / det))
    return _Geometry(x=x, det=det, inverse=inverse)


def _blocks(n_cells: int):
    for start in range(0, n_cells, _BLOCK):
        yield slice(start, min(n_cells, start + _BLOCK))


class _CellField:
    """A coefficient or source in any accepted form, evaluated block by block at quadrature
    points."""

    def __init__(
        self, space: LagrangeSpace, data: Field, name: str, positive: bool = False, power: int = 1
    ) -> None:
        self.space, self.name, self.positive, self.power = space, name, positive, power
        mesh = space.mesh
        if isinstance(data, FEFunction):
            if data.space.mesh is not mesh:
                raise ValueError(f"{name}: the FEFunction lives on a different mesh than the space")
            self.kind, self.fe = "fe", data
        elif callable(data):
            self.kind, self.function = "callable", data
        elif isinstance(data, numbers.Real) and not isinstance(data, bool):
            self.kind, self.constant = "constant", float(data)
            self._check(np.array([self.constant]), None)
        elif isinstance(data, np.ndarray) or isinstance(data, (list, tuple)):
            array = np.asarray(data, dtype=float)
            if array.ndim != 1 or array.shape[0] not in (space.ndofs, mesh.n_cells):
                raise ValueError(
                    f"{name}: expected a 1D array of {space.ndofs} nodal values or {mesh.n_cells} "
                    f"per-cell values, got shape {array.shape} (wrap nodal values of another space "
                    "in FEFunction)"
                )
            if space.ndofs == mesh.n_cells:
                raise ValueError(
                    f"{name}: ambiguous array: the space has as many DoFs as cells "
                    f"({mesh.n_cells}); "
                    "pass FEFunction(space, values) for nodal values or a callable"
                )
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name}: values contain NaN or Inf")
            if array.shape[0] == mesh.n_cells:
                self.kind, self.per_cell = "cell", array
                self._check(array, None)
            else:
                self.kind, self.fe = "fe", FEFunction(space, array)
        else:
            raise TypeError(
                f"{name}: expected a number, a callable on points, an FEFunction or a 1D array, "
                f"got {type(data).__name__}"
            )

    @property
    def extra_degree(self) -> int:
        """Polynomial degree the field adds to an integrand (a guess of 2 for callables)."""
        if self.kind == "fe":
            return self.power * self.fe.space.degree
        return 2 * self.power if self.kind == "callable" else 0

    def at(self, geometry: _Geometry, quad: _Quadrature, block: slice) -> np.ndarray | float:
        """``[m, nq]`` values (or a float) on the cells of ``block`` at the quadrature points."""
        if self.kind == "constant":
            return self.constant**self.power
        if self.kind == "cell":
            return self.per_cell[block][:, None] ** self.power
        if self.kind == "fe":
            space = self.fe.space
            phi = space._quadrature(quad.degree).phi
            values = self.fe.values[space.cell_dofs[block]] @ phi.T
        else:
            points = geometry.x.reshape(-1, 2)
            values = np.asarray(self.function(points), dtype=float)
            if values.shape == ():
                values = np.full(points.shape[0], float(values))
            if values.shape != (points.shape[0],):
                raise ValueError(
                    f"{self.name}: a callable must map points [n, 2] to values [n]; got "
                    f"{values.shape} for n={points.shape[0]}"
                )
            values = values.reshape(geometry.x.shape[:2])
        self._check(values, geometry)
        return values**self.power

    def _check(self, values: np.ndarray, geometry: _Geometry | None) -> None:
        bad = ~np.isfinite(values)
        if self.positive:
            bad |= ~(values > 0)
        if np.any(bad):
            where = ""
            if geometry is not None:
                index = np.unravel_index(np.flatnonzero(bad.ravel())[0], values.shape)
                where = f" at point {geometry.x[index].tolist()}"
            need = "positive and finite" if self.positive else "finite"
            raise ValueError(
                f"{self.name}: values must be {need}; got "
                f"{values.ravel()[np.flatnonzero(bad.ravel())[0]]}{where}"
            )


def _check_coefficients(
    space: LagrangeSpace, coefficients, name: str, allow_columns: bool = False
) -> np.ndarray:
    array = np.asarray(coefficients, dtype=float)
    ok_ndim = array.ndim in ((1, 2) if allow_columns else (1,))
    if not ok_ndim or array.shape[0] != space.ndofs:
        expected = f"[{space.ndofs}]" + (f" or [{space.ndofs}, k]" if allow_columns else "")
        raise ValueError(f"{name}: expected shape {expected}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: values contain NaN or Inf")
    return array


def check_space(space) -> LagrangeSpace:
    if not isinstance(space, LagrangeSpace):
        raise TypeError(f"space: expected a LagrangeSpace, got {type(space).__name__}")
    return space


def _quadrature_degree(space: LagrangeSpace, base: int, extra: int, requested: int | None) -> int:
    if requested is None:
        return max(0, base + extra)
    if isinstance(requested, bool) or not isinstance(requested, numbers.Integral) or requested < 0:
        raise ValueError(f"quadrature_degree: expected a non-negative integer, got {requested!r}")
    return int(requested)


def _quad_bonus(space: LagrangeSpace) -> int:
    # A bilinear map makes det J vary across the cell (and J^-1 rational): one degree more keeps
    # the mass matrix exact and the stiffness matrix accurate on non-parallelogram cells.
    return 1 if space.mesh.cell_type == "quadrilateral" else 0


# --------------------------------------------------------------------------------- matrices
def mass_matrix(
    space: LagrangeSpace, coefficient: Field | None = None, quadrature_degree: int | None = None
) -> sp.csr_array:
    """``M[i, j] = ∫ c φ_j φ_i dx``, ``[ndofs, ndofs]`` CSR.

    Args:
        coefficient: ``c`` (default 1) in any form listed in the module docstring; must be finite
            (any sign: it may be a reaction term).
        quadrature_degree: default exact for constant ``c`` (``2p``, ``2p+1`` on quadrilaterals),
            plus the degree of an FE coefficient, plus 2 for a callable.
    """
    space = check_space(space)
    return _mass(space, coefficient, quadrature_degree)


def _mass(space: LagrangeSpace, coefficient, quadrature_degree: int | None) -> sp.csr_array:
    if coefficient is None or isinstance(coefficient, _CellField):
        field = coefficient
    else:
        field = _CellField(space, coefficient, "coefficient")
    degree = _quadrature_degree(
        space,
        2 * space.degree + _quad_bonus(space),
        field.extra_degree if field else 0,
        quadrature_degree,
    )
    quad = space._quadrature(degree)
    nb = space.dofs_per_cell
    products = np.einsum("qi,qj->qij", quad.phi, quad.phi).reshape(-1, nb * nb)
    local = np.empty((space.mesh.n_cells, nb * nb))
    for block in _blocks(space.mesh.n_cells):
        geometry = _geometry(space.mesh, quad, block)
        weight = quad.weights * geometry.det
        if field is not None:
            weight = weight * field.at(geometry, quad, block)
        local[block] = weight @ products
    return space._assemble_matrix(local)


def stiffness_matrix(
    space: LagrangeSpace, coefficient: Field | None = None, quadrature_degree: int | None = None
) -> sp.csr_array:
    """``K[i, j] = ∫ a ∇φ_j · ∇φ_i dx``, ``[ndofs, ndofs]`` CSR: the weak form of ``-∇·(a∇u)``.

    Args:
        coefficient: ``a`` (default 1) in any form listed in the module docstring; must be
            positive and finite at every quadrature point, else ValueError naming ``coefficient``.
        quadrature_degree: default exact for constant ``a`` on triangles (``2p-2``), ``2p+1`` on
            quadrilaterals, plus the degree of an FE coefficient, plus 2 for a callable.
    """
    space = check_space(space)
    field = (
        None
        if coefficient is None
        else _CellField(space, coefficient, "coefficient", positive=True)
    )
    base = 2 * space.degree - 2 + 3 * _quad_bonus(space)
    degree = _quadrature_degree(space, base, field.extra_degree if field else 0, quadrature_degree)
    quad = space._quadrature(degree)
    nb, nq = space.dofs_per_cell, quad.weights.size
    # grad φ_i · grad φ_j = Σ_kl dφ_i/dξ_k G_kl dφ_j/dξ_l with G = J^-1 J^-T: one product with
    # the fixed reference table per block of cells.
    table = np.einsum("qik,qjl->qklij", quad.dphi, quad.dphi).reshape(nq * 4, nb * nb)
    local = np.empty((space.mesh.n_cells, nb * nb))
    for block in _blocks(space.mesh.n_cells):
        geometry = _geometry(space.mesh, quad, block)
        weight = quad.weights * geometry.det
        if field is not None:
            weight = weight * field.at(geometry, quad, block)
        (i00, i01), (i10, i11) = geometry.inverse
        metric_01 = weight * (i00 * i10 + i01 * i11)
        weighted_metric = np.stack(
            [weight * (i00**2 + i01**2), metric_01, metric_01, weight * (i10**2 + i11**2)], axis=2
        )
        local[block] = weighted_metric.reshape(-1, nq * 4) @ table
    return space._assemble_matrix(local)


def helmholtz_matrix(
    space: LagrangeSpace, k: Field, quadrature_degree: int | None = None
) -> sp.csr_array:
    """``K - k² M``, ``[ndofs, ndofs]`` CSR, for ``-Δu - k² u``; ``k`` a wavenumber (number or
    field, finite)."""
    space = check_space(space)
    if isinstance(k, numbers.Real) and not isinstance(k, bool):
        if not np.isfinite(k):
            raise ValueError(f"k: expected a finite wavenumber, got {k}")
        k_squared: Field = float(k) ** 2
    else:
        k_squared = _CellField(space, k, "k", power=2)
    stiffness = stiffness_matrix(space, quadrature_degree=quadrature_degree)
    mass = _mass(space, k_squared, quadrature_degree)
    return as_csr32(stiffness - mass)


def advection_matrix(
    space: LagrangeSpace, velocity, quadrature_degree: int | None = None
) -> sp.csr_array:
    """``C[i, j] = ∫ (b · ∇φ_j) φ_i dx``, ``[ndofs, ndofs]`` CSR (not symmetric).

    Args:
        velocity: ``b``, a constant vector ``[2]`` or a callable on points ``[n, 2] -> [n, 2]``.
        quadrature_degree: default ``2p - 1`` (``2p + 1`` on quadrilaterals), plus 2 for a callable.
    """
    space = check_space(space)
    if callable(velocity):
        extra = 2
    else:
        constant = np.asarray(velocity, dtype=float)
        if constant.shape != (2,) or not np.all(np.isfinite(constant)):
            raise ValueError(
                "velocity: expected a finite vector of shape (2,) or a callable, got "
                f"{np.shape(velocity)}"
            )
        extra = 0
    degree = _quadrature_degree(
        space, 2 * space.degree - 1 + 2 * _quad_bonus(space), extra, quadrature_degree
    )
    quad = space._quadrature(degree)
    nb, nq = space.dofs_per_cell, quad.weights.size
    table = np.einsum("qi,qjl->qlij", quad.phi, quad.dphi).reshape(nq * 2, nb * nb)
    local = np.empty((space.mesh.n_cells, nb * nb))
    for block in _blocks(space.mesh.n_cells):
        geometry = _geometry(space.mesh, quad, block)
        if callable(velocity):
            points = geometry.x.reshape(-1, 2)
            b = np.asarray(velocity(points), dtype=float)
            if b.shape != points.shape or not np.all(np.isfinite(b)):
                raise ValueError(
                    "velocity: a callable must map points [n, 2] to finite vectors [n, 2], got "
                    f"shape {b.shape}"
                )
            b = b.reshape(geometry.x.shape)
        else:
            b = np.broadcast_to(constant, geometry.x.shape)
        # b · grad φ_j = Σ_l dφ_j/dξ_l (J^-1 b)_l
        (i00, i01), (i10, i11) = geometry.inverse
        weight = quad.weights * geometry.det
        bx, by = b[..., 0], b[..., 1]
        weight = np.stack([weight * (i00 * bx + i01 * by), weight * (i10 * bx + i11 * by)], axis=2)
        local[block] = weight.reshape(-1, nq * 2) @ table
    return space._assemble_matrix(local)


# --------------------------------------------------------------------------------- vectors
def load_vector(space: LagrangeSpace, f: Field, quadrature_degree: int | None = None) -> np.ndarray:
    """``b[i] = ∫ f φ_i dx``, ``[ndofs]``; ``f`` in any form of the module docstring (finite).

    Default quadrature degree: ``p + 2`` for a callable (``p + 3`` on quadrilaterals), exact for
    constant, per-cell and FE sources.
    """
    space = check_space(space)
    field = _CellField(space, f, "f")
    degree = _quadrature_degree(
        space, space.degree + _quad_bonus(space), field.extra_degree, quadrature_degree
    )
    quad = space._quadrature(degree)
    local = np.empty((space.mesh.n_cells, space.dofs_per_cell))
    for block in _blocks(space.mesh.n_cells):
        geometry = _geometry(space.mesh, quad, block)
        local[block] = (quad.weights * geometry.det * field.at(geometry, quad, block)) @ quad.phi
    return space._assemble_vector(local)


def neumann_load(
    space: LagrangeSpace, g, facets: FacetSelection = None, quadrature_degree: int | None = None
) -> np.ndarray:
    """``b[i] = ∫_Γ g φ_i ds`` over the boundary facets ``facets``, ``[ndofs]``.

    Args:
        g: the flux ``a ∂u/∂n``: a number, a callable on points ``[n, 2] -> [n]``, or an array of
            one value per facet.
        facets: tag name, array of boundary edge indices, or None (the whole boundary).
        quadrature_degree: on each facet (an interval); default ``p + 2``.
    """
    space = check_space(space)
    mesh = space.mesh
    facets = mesh.facets(facets)
    if not np.all(np.isin(facets, mesh.boundary_facets)):
        raise ValueError("facets: Neumann data must be given on boundary facets only")
    degree = _quadrature_degree(space, space.degree + 2, 0, quadrature_degree)
    s, weights = basix.make_quadrature(basix.CellType.interval, degree)
    trace = basix.create_element(
        basix.ElementFamily.P,
        basix.CellType.interval,
        space.degree,
        basix.LagrangeVariant.equispaced,
    )
    phi = trace.tabulate(0, s)[0, :, :, 0]  # [nq, p+1]: vertex 0, vertex 1, midpoint
    ends = mesh.points[mesh.edges[facets]]  # [nf, 2, 2]
    length = np.linalg.norm(ends[:, 1] - ends[:, 0], axis=1)
    points = ends[:, None, 0] + s[None, :, 0, None] * (
        ends[:, None, 1] - ends[:, None, 0]
    )  # [nf, nq, 2]
    if callable(g) or np.ndim(g) == 0:
        values = evaluate_boundary_data(g, points.reshape(-1, 2), "g").reshape(points.shape[:2])
    else:
        per_facet = np.asarray(g, dtype=float)
        if per_facet.shape != facets.shape or not np.all(np.isfinite(per_facet)):
            raise ValueError(
                f"g: expected a number, a callable or {facets.size} finite per-facet values, got "
                f"shape {per_facet.shape}"
            )
        values = np.repeat(per_facet[:, None], s.shape[0], axis=1)
    local = (values * weights * length[:, None]) @ phi
    return np.bincount(
        space.facet_dofs(facets).ravel(), weights=local.ravel(), minlength=space.ndofs
    )


# --------------------------------------------------------------------------------- norms
def integrate(space: LagrangeSpace, f: Field, quadrature_degree: int | None = None) -> float:
    """``∫_Ω f dx`` for ``f`` in any form of the module docstring."""
    space = check_space(space)
    field = _CellField(space, f, "f")
    degree = _quadrature_degree(
        space, 2 + 2 * _quad_bonus(space), field.extra_degree, quadrature_degree
    )
    quad = space._quadrature(degree)
    total = 0.0
    for block in _blocks(space.mesh.n_cells):
        geometry = _geometry(space.mesh, quad, block)
        total += float(np.sum(quad.weights * geometry.det * field.at(geometry, quad, block)))
    return total


def l2_error(
    space: LagrangeSpace,
    coefficients: np.ndarray,
    exact: Callable[[np.ndarray], np.ndarray],
    quadrature_degree: int | None = None,
) -> float:
    """``‖u_h - u‖_{L²(Ω)}`` for the FE function ``u_h`` with ``coefficients`` ``[ndofs]`` and a
    callable ``exact``.

    Default quadrature degree ``2p + 4`` (``2p + 5`` on quadrilaterals), well above the
    interpolation order so that the quadrature error does not pollute convergence rates.
    """
    space = check_space(space)
    u_h = _check_coefficients(space, coefficients, "coefficients")
    if not callable(exact):
        raise TypeError(f"exact: expected a callable on points [n, 2], got {type(exact).__name__}")
    degree = _quadrature_degree(
        space, 2 * space.degree + 4 + _quad_bonus(space), 0, quadrature_degree
    )
    quad = space._quadrature(degree)
    total = 0.0
    for block in _blocks(space.mesh.n_cells):
        geometry = _geometry(space.mesh, quad, block)
        points = geometry.x.reshape(-1, 2)
        u = np.asarray(exact(points), dtype=float).reshape(geometry.x.shape[:2])
        difference = u_h[space.cell_dofs[block]] @ quad.phi.T - u
        total += float(np.sum(quad.weights * geometry.det * difference**2))
    return float(np.sqrt(total))
