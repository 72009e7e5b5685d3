"""Encoder: a function → the coefficients of a Lagrange space, by interpolation or L² projection.

A function comes as

* a callable on points ``[n, 2] -> [n]`` or a number;
* an :class:`~pdesuite.discretization.FEFunction` of another Lagrange space (any mesh of the
  domain: a coarser or finer one, another degree);
* values at the points of a ``source`` given to the encoder: the DoFs of a
  :class:`~pdesuite.discretization.LagrangeSpace`, or a point cloud ``[n, 2]`` (read as the
  piecewise-linear function on the Delaunay triangulation of the points, the nearest point's
  value outside their convex hull).

``method="interpolation"`` takes the function's values at the DoF points of ``space``;
``method="projection"`` solves ``M c = b`` with ``b_i = ∫ f φ_i dx`` (the L² projection, order
``p + 1`` in L² for smooth ``f``) through :func:`pdesuite.solvers.solve` with a kept sparse
Cholesky factor of the mass matrix ``M``.

For a ``source``, both methods are linear maps and :meth:`Encoder.forward` applies them to
torch tensors ``[..., n_source]`` with gradients (the mass solve is a custom autograd function:
``M`` is symmetric, so its backward is one more solve).
"""

from __future__ import annotations

import numbers

import basix
import numpy as np
import scipy.sparse as sp
import torch
from scipy.spatial import Delaunay, cKDTree
from torch import nn

from pdesuite.discretization import FEFunction, LagrangeSpace, load_vector, mass_matrix
from pdesuite.discretization.system import as_csr32
from pdesuite.operators.spon.sparse import apply_along_dofs, to_torch_sparse
from pdesuite.solvers import DirectSolver, solve

__all__ = ["Encoder", "MassSolver", "point_cloud_matrix", "quadrature_rule"]

_METHODS = ("interpolation", "projection")
_BASIX_CELL = {"triangle": basix.CellType.triangle, "quadrilateral": basix.CellType.quadrilateral}


class MassSolver:
    """``M⁻¹ b`` for the mass matrix of ``space``, factored once (Cholesky through
    :func:`pdesuite.solvers.solve`, method ``"direct"``), checked to ``rtol``."""

    def __init__(self, space: LagrangeSpace, rtol: float = 1e-13) -> None:
        self.matrix = mass_matrix(space)
        self.rtol = float(rtol)
        self._factorization = DirectSolver(spd=True)

    def __call__(self, rhs: np.ndarray) -> np.ndarray:
        """``[n]`` or ``[n, k]`` right-hand sides → solutions of the same shape."""
        rhs = np.asarray(rhs, dtype=float)
        columns = rhs.reshape(rhs.shape[0], -1)
        out = np.empty_like(columns)
        for k in range(columns.shape[1]):
            result = solve(self.matrix, columns[:, k], method="direct", rtol=self.rtol,
                           factorization=self._factorization, raise_on_failure=True)
            out[:, k] = result.x
        return out.reshape(rhs.shape)


class _MassSolve(torch.autograd.Function):
    """``M⁻¹`` along axis 0 of a ``[n, k]`` tensor; self-adjoint, so backward is a solve too."""

    @staticmethod
    def forward(ctx, rhs: torch.Tensor, solver: MassSolver) -> torch.Tensor:
        ctx.solver = solver
        x = solver(rhs.detach().cpu().double().numpy())
        return torch.as_tensor(x, dtype=rhs.dtype, device=rhs.device)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x = ctx.solver(grad.detach().cpu().double().numpy())
        return torch.as_tensor(x, dtype=grad.dtype, device=grad.device), None


def quadrature_rule(space: LagrangeSpace, degree: int) -> tuple[np.ndarray, np.ndarray,
                                                                   sp.csr_array]:
    """Physical quadrature points of every cell of ``space.mesh``, their weights, and the basis.

    Returns ``points`` ``[M·nq, 2]``, ``weights`` ``[M·nq]`` (reference weight times the Jacobian
    determinant, so ``weights.sum()`` is the area) and ``basis`` ``[M·nq, ndofs]`` CSR with the
    basis functions of ``space`` at the points (cell-major order: cell 0's points first).
    """
    mesh = space.mesh
    reference, reference_weights = basix.make_quadrature(_BASIX_CELL[mesh.cell_type], int(degree))
    table = space.geometry_element.tabulate(1, reference)[:, :, :, 0]  # [3, nq, nv]
    vertices = mesh.points[mesh.cells]  # [M, nv, 2]
    points = np.einsum("qv,mvd->mqd", table[0], vertices)
    jacobian = np.einsum("kqv,mvd->mqdk", table[1:], vertices)  # [M, nq, 2, 2]
    det = jacobian[..., 0, 0] * jacobian[..., 1, 1] - jacobian[..., 0, 1] * jacobian[..., 1, 0]
    weights = (reference_weights * det).ravel()
    phi = space.element.tabulate(0, reference)[0, :, :, 0]  # [nq, nb]
    nq, nb = phi.shape
    rows = np.repeat(np.arange(mesh.n_cells * nq), nb)
    columns = np.repeat(space.cell_dofs, nq, axis=0).ravel()
    values = np.tile(phi, (mesh.n_cells, 1)).ravel()
    basis = sp.csr_array((values, (rows, columns)), shape=(mesh.n_cells * nq, space.ndofs))
    return points.reshape(-1, 2), weights, as_csr32(basis)


def point_cloud_matrix(points: np.ndarray, targets: np.ndarray) -> sp.csr_array:
    """``[n_targets, n_points]`` CSR: linear interpolation of values at ``points`` ``[n, 2]`` to
    ``targets`` ``[m, 2]`` on the Delaunay triangulation of the points.

    A target that coincides with a point (to ``1e-12`` of the cloud's diameter) takes its value
    exactly; one outside the convex hull takes the nearest point's value.
    """
    points = _check_points(points, "source")
    targets = np.asarray(targets, dtype=float)
    m, n = targets.shape[0], points.shape[0]
    diameter = float(np.ptp(points, axis=0).max()) or 1.0
    distance, nearest = cKDTree(points).query(targets)
    rows, columns, values = [], [], []
    exact = distance <= 1e-12 * diameter
    rows.append(np.flatnonzero(exact))
    columns.append(nearest[exact])
    values.append(np.ones(int(exact.sum())))
    pending = np.flatnonzero(~exact)
    if pending.size:
        triangulation = Delaunay(points)
        simplex = triangulation.find_simplex(targets[pending])
        hull = simplex >= 0
        inner, outer = pending[hull], pending[~hull]
        transform = triangulation.transform[simplex[hull]]  # [k, 3, 2]
        first = np.einsum("kij,kj->ki", transform[:, :2], targets[inner] - transform[:, 2])
        barycentric = np.concatenate([first, 1.0 - first.sum(axis=1, keepdims=True)], axis=1)
        rows += [np.repeat(inner, 3), outer]
        columns += [triangulation.simplices[simplex[hull]].ravel(), nearest[outer]]
        values += [barycentric.ravel(), np.ones(outer.size)]
    matrix = sp.csr_array(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))), shape=(m, n)
    )
    return as_csr32(matrix)


class Encoder(nn.Module):
    """Function → coefficients ``[ndofs]`` of ``space`` (see the module docstring).

    Args:
        space: the target Lagrange space (P1/P2 on triangles, Q1/Q2 on quadrilaterals).
        method: ``"interpolation"`` (default) or ``"projection"`` (L²).
        source: what :meth:`forward` and array inputs of :meth:`encode` hold values at: a
            :class:`LagrangeSpace` (its DoFs) or points ``[n, 2]``; None (default) for callables
            and FEFunctions only.
        quadrature_degree: of the projection's right-hand side; default ``2p + 2`` (``2p + 3``
            on quadrilaterals), exact for polynomial sources of degree ``p + 2``.

    ``encode(f)`` returns NumPy ``[ndofs]``; ``forward(values)`` maps a tensor ``[..., n_source]``
    to ``[..., ndofs]`` (float64 or float32, with gradients).
    """

    def __init__(self, space: LagrangeSpace, method: str = "interpolation", source=None,
                 quadrature_degree: int | None = None) -> None:
        super().__init__()
        if not isinstance(space, LagrangeSpace):
            raise TypeError(f"space: expected a LagrangeSpace, got {type(space).__name__}")
        if method not in _METHODS:
            raise ValueError(f"method: expected one of {_METHODS}, got {method!r}")
        self.space, self.method = space, method
        bonus = 1 if space.mesh.cell_type == "quadrilateral" else 0
        if quadrature_degree is None:
            quadrature_degree = 2 * space.degree + 2 + bonus
        if (isinstance(quadrature_degree, bool) or not isinstance(quadrature_degree, int)
                or quadrature_degree < 0):
            raise ValueError(
                f"quadrature_degree: expected a non-negative integer, got {quadrature_degree!r}"
            )
        self.quadrature_degree = quadrature_degree
        self._mass_solver = MassSolver(space) if method == "projection" else None
        self._rule = None
        self.source = source
        self.source_size = None
        if source is not None:
            matrix = self.matrix(source)
            self.source_size = matrix.shape[1]
            self.register_buffer("operator", to_torch_sparse(matrix), persistent=False)

    # ------------------------------------------------------------------------------ NumPy
    def matrix(self, source) -> sp.csr_array:
        """The sparse map from values at ``source`` (a LagrangeSpace or points ``[n, 2]``) to
        the interpolant's coefficients ``[ndofs, n_source]`` (interpolation), or to the
        projection's right-hand side ``b`` (projection; the coefficients are ``M⁻¹ b``)."""
        if self.method == "interpolation":
            return self._evaluate_source(source, self.space.dof_coordinates)
        points, weights, basis = self._quadrature()
        sampled = self._evaluate_source(source, points)  # [n_q, n_source]
        return as_csr32(basis.T @ (weights[:, None] * sampled))

    def encode(self, f) -> np.ndarray:
        """Coefficients ``[ndofs]`` of ``f``: a callable, a number, an FEFunction, or (with a
        ``source``) an array of values ``[n_source]`` (or ``[n_source, k]`` → ``[ndofs, k]``)."""
        if isinstance(f, FEFunction):
            rhs_or_values = self.matrix(f.space) @ f.values
        elif callable(f) or (isinstance(f, numbers.Real) and not isinstance(f, bool)):
            if self.method == "interpolation":
                return self.space.interpolate(f)
            rhs_or_values = load_vector(self.space, f, self.quadrature_degree)
        else:
            values = np.asarray(f, dtype=float)
            if self.source is None or values.ndim not in (1, 2) or (
                    values.shape[0] != self.source_size):
                expected = ("a callable, a number or an FEFunction" if self.source is None
                            else f"values of shape [{self.source_size}] or [{self.source_size}, k]")
                raise ValueError(f"f: expected {expected}, got {type(f).__name__} of shape "
                                 f"{values.shape}")
            if not np.all(np.isfinite(values)):
                raise ValueError("f: values contain NaN or Inf")
            rhs_or_values = self.matrix(self.source) @ values
        if self.method == "interpolation":
            return rhs_or_values
        return self._mass_solver(rhs_or_values)

    # ------------------------------------------------------------------------------ torch
    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """``[..., n_source]`` values at the source → ``[..., ndofs]`` coefficients."""
        if self.source is None:
            raise ValueError("values: this Encoder has no source; give source= to encode tensors")
        if values.shape[-1] != self.source_size:
            raise ValueError(f"values: expected last axis {self.source_size}, got shape "
                             f"{tuple(values.shape)}")
        operator = self.operator.to(values.dtype)
        mapped = apply_along_dofs(operator, values, dim=-1)  # [..., ndofs]
        if self.method == "interpolation":
            return mapped
        columns = mapped.reshape(-1, self.space.ndofs).T  # [ndofs, k]
        solved = _MassSolve.apply(columns, self._mass_solver)  # [ndofs, k]
        return solved.T.reshape(mapped.shape)

    # ------------------------------------------------------------------------------ internals
    def _quadrature(self):
        if self._rule is None:
            self._rule = quadrature_rule(self.space, self.quadrature_degree)
        return self._rule

    def _evaluate_source(self, source, points: np.ndarray) -> sp.csr_array:
        if isinstance(source, LagrangeSpace):
            # Any mesh of the domain: the source's basis is evaluated at the target's points.
            return source.evaluation_matrix(points)
        if isinstance(source, FEFunction):
            raise TypeError("source: give the FEFunction's space, or pass the FEFunction to "
                            "encode()")
        return point_cloud_matrix(source, points)

    def extra_repr(self) -> str:
        return f"method={self.method!r}, space={self.space!r}"


def _check_points(points, name: str) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] < 3:
        raise ValueError(f"{name}: expected a LagrangeSpace or points [n, 2] with n >= 3, got "
                         f"shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: points contain NaN or Inf")
    return array
