"""Relaxation: Jacobi, Gauss–Seidel, SOR and SSOR, as preconditioners and as stand-alone solvers.

Splitting ``A = L + D + U`` (strictly lower, diagonal, strictly upper). One forward SOR sweep
with relaxation factor ``ω`` is

    (D/ω + L) x_new = b − (U + (1 − 1/ω) D) x,

a backward sweep swaps ``L`` and ``U``, and a symmetric (SSOR) sweep is a forward sweep followed
by a backward one. Gauss–Seidel is SOR with ``ω = 1``; weighted Jacobi is
``x_new = x + ω D⁻¹ (b − A x)``.

How the sweep runs fast without compiled code of our own: ``D/ω + L`` is already triangular,
so SciPy's SuperLU "factorises" it in natural order without pivoting (no fill, ``L`` the matrix
scaled by its diagonal) and ``SuperLU.solve`` then performs the triangular solve in C.
``benchmarks/bench_sor.py`` times one forward sweep (the product with ``U + (1 − 1/ω) D``
included) on the unscaled 2D 5-point Poisson matrix, ω = 1.5, on a shared 2-core machine
(load 5–9; the times are the quietest of four runs and vary by up to 3× between runs, the
ratio to one product with A — last column, range over the runs — is steadier):

    ============================ ========= ========= ========== ==============
    implementation               256²      512²      1024²      sweep/matvec
    ============================ ========= ========= ========== ==============
    SuperLU solve (the default)  1.1 ms    5.1 ms    21 ms      4.4–8.5
    spsolve_triangular           6.4 ms    26 ms     101 ms     21–59
    level schedule (wavefront)   4.5 ms    16 ms     38 ms      8–25
    red–black (other iteration)  0.37 ms   1.7 ms    8.3 ms     1.5–2.4
    PETSc MatSOR (reference)     0.62 ms   3.1 ms    12 ms      1.9–3
    ============================ ========= ========= ========== ==============

The SuperLU set-up is 0.2–0.3 s at 512² and 0.5–2 s at 1024², once per matrix and ``ω``
(``relax=1, panel_size=1`` cut it by ~2.5×). SuperLU is therefore the default for the natural
(lexicographic) order: 5× faster than ``spsolve_triangular``, 2–3× slower than PETSc's
compiled MatSOR. ``ordering="redblack"`` reorders a matrix whose graph is 2-colourable (the
5-point Laplacian, for instance) so that each half-sweep is one vectorised update; it is the
fastest per sweep but a different iteration from lexicographic SOR (it is lexicographic SOR
of the permuted matrix), so it is an option, not the default.

With petsc4py installed, the named preconditioners ``M="sor"``, ``"ssor"`` and
``"gauss-seidel"`` of ``solve`` run PETSc's compiled MatSOR on A's own CSR arrays instead
(:class:`pdesuite.solvers.petsc_backend.kernels.PetscKernelPreconditioner`, the same sweeps);
:class:`RelaxationPreconditioner` is their fallback and the red–black variant, and the
stand-alone solvers below always run here.

The stand-alone solvers monitor the true residual ``b − A x_new`` without an extra product
with ``A``: with ``N = U + (1 − 1/ω) D`` and ``c(x) = b − N x``, the identity
``b − A x_new = c(x_new) − c(x)`` holds exactly, and ``c(x_new)`` is the right-hand side of the
next sweep anyway. So a forward or backward sweep costs one triangular solve and one product
with a triangle of ``A``; ``SolveResult.matvecs`` counts only real products with ``A`` (the
initial residual of a nonzero ``x0``, the final check, and every Jacobi sweep).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from pdesuite.solvers.linear_operator import as_csr
from pdesuite.solvers.preconditioner import BasePreconditioner
from pdesuite.solvers.registry import register_method
from pdesuite.solvers.validation import check_choice, check_int, check_real

__all__ = [
    "DIRECTIONS",
    "KINDS",
    "ORDERINGS",
    "RelaxationPreconditioner",
    "SORSplitting",
    "jacobi_spectral_radius",
    "red_black_ordering",
    "young_omega",
]

KINDS = ("jacobi", "gauss-seidel", "sor", "ssor")
DIRECTIONS = ("forward", "backward", "symmetric")
ORDERINGS = ("natural", "redblack")
#: Relative size of ``A − Aᴴ`` below which A counts as Hermitian for the ``symmetric`` flag.
_HERMITIAN_RTOL = 1e-13


# --------------------------------------------------------------------------------------------
# validation helpers


def _check_omega(omega: Any) -> float:
    return check_real("omega", omega, low=0.0, high=2.0, open_low=True, open_high=True)


def _checked_diagonal(A: sp.csr_array) -> np.ndarray:
    diag = A.diagonal()
    zeros = np.flatnonzero(diag == 0)
    if zeros.size:
        raise ValueError(
            f"A: diagonal entry {int(zeros[0])} is zero ({zeros.size} zero(s) in all); "
            "relaxation divides by the diagonal"
        )
    return diag


def _is_hermitian(A: sp.csr_array) -> bool:
    scale = abs(A).max() if A.nnz else 0.0
    # Fast path for a canonical CSR matrix: Aᴴ in CSR (one transposition) with the same
    # pattern leaves only the values to compare, about half the cost of forming A − Aᴴ.
    if A.has_canonical_format:
        transposed = A.T.tocsr()
        if (np.array_equal(A.indptr, transposed.indptr)
                and np.array_equal(A.indices, transposed.indices)):
            return not A.nnz or bool(np.abs(A.data - transposed.data.conj()).max()
                                     <= _HERMITIAN_RTOL * scale)
    difference = A - A.conj().T
    return difference.nnz == 0 or abs(difference).max() <= _HERMITIAN_RTOL * scale


def _positive_real(diag: np.ndarray) -> bool:
    return bool(np.all(np.real(diag) > 0) and np.all(np.imag(diag) == 0))


# --------------------------------------------------------------------------------------------
# red–black ordering


def red_black_ordering(A: Any) -> tuple[np.ndarray, np.ndarray]:
    """Split the unknowns into two colours such that no off-diagonal entry joins equal colours.

    Args:
        A: ``[n, n]`` sparse or dense matrix. Its graph (of ``A + Aᵀ``, diagonal ignored) must
            be bipartite, as for the 5-point and 7-point Laplacians.

    Returns:
        ``(red, black)``: sorted index arrays partitioning ``range(n)``. The lowest index of each
        connected component is red. ``np.concatenate([red, black])`` is the red–black
        permutation.

    Raises:
        ValueError: if the graph has an odd cycle (e.g. a 9-point stencil).
    """
    matrix = as_csr(A, copy=True)
    n = matrix.shape[0]
    coo = sp.coo_array(matrix)
    off = coo.row != coo.col
    rows, cols = coo.row[off], coo.col[off]
    # A virtual node n joined to the first node of every component lets one breadth-first
    # search colour all components.
    graph = sp.coo_array((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = csgraph.connected_components(graph, directed=False)
    _, roots = np.unique(labels, return_index=True)
    graph = sp.coo_array(
        (np.ones(rows.size + roots.size, dtype=np.int8),
         (np.concatenate([rows, np.full(roots.size, n)]), np.concatenate([cols, roots]))),
        shape=(n + 1, n + 1),
    ).tocsr()
    _, predecessors = csgraph.breadth_first_order(graph, n, directed=False, return_predecessors=True)
    # Depth parity by pointer jumping: log2(depth) vectorised rounds instead of a Python loop.
    ancestor = predecessors.astype(np.int64)
    ancestor[n] = n
    parity = np.ones(n + 1, dtype=np.int8)
    parity[n] = 0
    while np.any(ancestor != n):
        parity ^= parity[ancestor]
        parity[n] = 0
        ancestor = ancestor[ancestor]
    colour = parity[:n]
    if np.any(colour[rows] == colour[cols]):
        raise ValueError(
            "A: its graph is not 2-colourable (it has an odd cycle), so ordering='redblack' "
            "does not apply; use ordering='natural'"
        )
    return np.flatnonzero(colour == 1), np.flatnonzero(colour == 0)


# --------------------------------------------------------------------------------------------
# the splitting: the four operations every sweep is made of


def _triangle(matrix: sp.csr_array, rows: np.ndarray, lower: bool,
              diagonal_factor: float) -> sp.csr_array:
    """The strict lower (or upper) triangle of a canonical CSR matrix plus its diagonal times
    ``diagonal_factor`` (left out when 0), by masking the CSR arrays in one pass."""
    columns = matrix.indices
    on_diagonal = columns == rows
    keep = columns < rows if lower else columns > rows
    if diagonal_factor != 0.0:
        keep |= on_diagonal
    data = matrix.data[keep]
    data[on_diagonal[keep]] *= diagonal_factor
    indptr = np.zeros(matrix.shape[0] + 1, dtype=matrix.indptr.dtype)
    np.cumsum(np.bincount(rows[keep], minlength=matrix.shape[0]), out=indptr[1:])
    return sp.csr_array((data, columns[keep], indptr), shape=matrix.shape)


def _triangular_factor(T: sp.csr_array) -> Any:
    """SuperLU object for a lower-triangular ``T`` whose ``solve`` is one C triangular solve.

    Natural order and ``diag_pivot_thresh=0`` keep SuperLU from permuting, so no fill occurs;
    ``relax=1, panel_size=1`` cut its set-up time by about 2.5× for such a matrix (measured).
    """
    return spla.splu(sp.csc_matrix(T), permc_spec="NATURAL", diag_pivot_thresh=0.0,
                     relax=1, panel_size=1)


class SORSplitting:
    """The SOR splitting of one matrix for one ``ω``, with fast half-sweeps.

    With ``M_f = D/ω + L``, ``N_f = U + (1 − 1/ω) D`` (forward) and ``M_b = D/ω + U``,
    ``N_b = L + (1 − 1/ω) D`` (backward), ``A = M_f + N_f = M_b + N_b``. Vectors live in the
    splitting's index space: the natural one, or for ``ordering="redblack"`` the permuted one
    (``permutation`` maps it to the original: ``x_original[permutation] = x``), see
    :meth:`to_internal` / :meth:`to_original`.

    Args:
        A: ``[n, n]`` sparse or dense matrix with a nonzero diagonal.
        omega: relaxation factor in (0, 2); 1 gives Gauss–Seidel. Default 1.
        ordering: ``"natural"`` (default; triangular solves through SuperLU) or ``"redblack"``
            (graph must be 2-colourable; each half-sweep is a vectorised update).

    Set-up cost: one SuperLU "factorisation" of a triangular matrix per direction used (the
    forward one is reused transposed for the backward sweep when A is exactly symmetric).
    """

    def __init__(self, A: Any, omega: float = 1.0, ordering: str = "natural"):
        self.omega = _check_omega(omega)
        self.ordering = check_choice("ordering", ordering, ORDERINGS)
        matrix = as_csr(A, copy=True)
        self.n = matrix.shape[0]
        self.dtype = matrix.dtype
        diag = _checked_diagonal(matrix)
        # The coefficient of D in N, 1 − 1/ω; zero for Gauss–Seidel.
        self._kappa = 1.0 - 1.0 / self.omega
        if self.ordering == "natural":
            self.permutation: Optional[np.ndarray] = None
            self._setup_natural(matrix, diag)
        else:
            red, black = red_black_ordering(matrix)
            self.permutation = np.concatenate([red, black])
            self._setup_red_black(matrix, diag, red, black)

    # -- set-up ------------------------------------------------------------------------------

    def _setup_natural(self, matrix: sp.csr_array, diag: np.ndarray) -> None:
        self._matrix = matrix
        self._rows = np.repeat(np.arange(self.n, dtype=matrix.indices.dtype), np.diff(matrix.indptr))
        self._parts: dict[str, sp.csr_array] = {}
        self._forward_factor: Any = None
        self._backward_factor: Any = None
        self._backward_transposed = False

    def _part(self, name: str) -> sp.csr_array:
        """``N_f``, ``N_b``, ``M_f`` or ``M_b``, built on first use."""
        if name not in self._parts:
            lower = name in ("n_backward", "m_forward")
            factor = 1.0 / self.omega if name.startswith("m_") else self._kappa
            self._parts[name] = _triangle(self._matrix, self._rows, lower, factor)
        return self._parts[name]

    def _setup_red_black(self, matrix: sp.csr_array, diag: np.ndarray, red: np.ndarray,
                         black: np.ndarray) -> None:
        self._n_red = red.size
        self._red_black = sp.csr_array(matrix[red][:, black])
        self._black_red = sp.csr_array(matrix[black][:, red])
        self._d_red, self._d_black = diag[red], diag[black]
        self._omega_over_d_red = self.omega / self._d_red
        self._omega_over_d_black = self.omega / self._d_black

    def _forward_solver(self) -> Any:
        if self._forward_factor is None:
            self._forward_factor = _triangular_factor(self._part("m_forward"))
        return self._forward_factor

    def _backward_solver(self) -> Any:
        if self._backward_factor is None:
            if (self._matrix != self._matrix.T).nnz == 0:
                # Exactly symmetric: D/ω + U = (D/ω + L)ᵀ, one factor serves both directions.
                self._backward_factor = self._forward_solver()
                self._backward_transposed = True
            else:
                # Reversing the unknowns turns D/ω + U into a lower-triangular matrix, whose
                # SuperLU solve is faster than that of an upper-triangular one (measured).
                upper = self._part("m_backward")
                self._backward_factor = _triangular_factor(sp.csr_array(upper[::-1][:, ::-1]))
                self._parts.pop("m_backward")
        return self._backward_factor

    # -- index spaces ------------------------------------------------------------------------

    def to_internal(self, v: np.ndarray) -> np.ndarray:
        """``[n]`` vector in original order → the splitting's order (a copy)."""
        v = np.asarray(v)
        return v[self.permutation] if self.permutation is not None else v.copy()

    def to_original(self, v: np.ndarray) -> np.ndarray:
        """``[n]`` vector in the splitting's order → original order."""
        if self.permutation is None:
            return v
        out = np.empty_like(v)
        out[self.permutation] = v
        return out

    # -- the four operations (internal order) -------------------------------------------------

    def forward_rhs(self, b: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``c = b − N_f x``."""
        if self.permutation is None:
            return b - self._part("n_forward") @ x
        m = self._n_red
        c = np.empty_like(b, dtype=np.result_type(b, x))
        c[:m] = b[:m] - self._red_black @ x[m:]
        c[m:] = b[m:]
        if self._kappa:
            c[:m] -= self._kappa * self._d_red * x[:m]
            c[m:] -= self._kappa * self._d_black * x[m:]
        return c

    def forward_solve(self, c: np.ndarray) -> np.ndarray:
        """``x = M_f⁻¹ c``."""
        if self.permutation is None:
            return self._forward_solver().solve(c)
        m = self._n_red
        x = np.empty_like(c)
        x[:m] = c[:m] * self._omega_over_d_red
        x[m:] = (c[m:] - self._black_red @ x[:m]) * self._omega_over_d_black
        return x

    def backward_rhs(self, b: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``c = b − N_b x``."""
        if self.permutation is None:
            return b - self._part("n_backward") @ x
        m = self._n_red
        c = np.empty_like(b, dtype=np.result_type(b, x))
        c[m:] = b[m:] - self._black_red @ x[:m]
        c[:m] = b[:m]
        if self._kappa:
            c[:m] -= self._kappa * self._d_red * x[:m]
            c[m:] -= self._kappa * self._d_black * x[m:]
        return c

    def backward_solve(self, c: np.ndarray) -> np.ndarray:
        """``x = M_b⁻¹ c``."""
        if self.permutation is None:
            factor = self._backward_solver()
            if self._backward_transposed:
                return factor.solve(c, trans="T")
            return factor.solve(np.ascontiguousarray(c[::-1]))[::-1].copy()
        m = self._n_red
        x = np.empty_like(c)
        x[m:] = c[m:] * self._omega_over_d_black
        x[:m] = (c[:m] - self._red_black @ x[m:]) * self._omega_over_d_red
        return x

    # -- convenience -------------------------------------------------------------------------

    def sweep(self, b: np.ndarray, x: np.ndarray, direction: str = "forward") -> np.ndarray:
        """One SOR sweep from ``x`` for ``A x = b``, in original order; returns the new ``[n]`` x.

        ``direction``: ``"forward"``, ``"backward"`` or ``"symmetric"`` (forward then backward).
        """
        direction = check_choice("direction", direction, DIRECTIONS)
        b_in, x_in = self._cast(self.to_internal(b)), self._cast(self.to_internal(x))
        if direction in ("forward", "symmetric"):
            x_in = self.forward_solve(self.forward_rhs(b_in, x_in))
        if direction in ("backward", "symmetric"):
            x_in = self.backward_solve(self.backward_rhs(b_in, x_in))
        return self.to_original(x_in)

    def _cast(self, v: np.ndarray) -> np.ndarray:
        if v.dtype != self.dtype:
            if np.can_cast(v.dtype, self.dtype, casting="same_kind"):
                return np.ascontiguousarray(v, dtype=self.dtype)
            raise TypeError(f"vector of dtype {v.dtype} cannot be relaxed with a {self.dtype} matrix")
        return np.ascontiguousarray(v)


# --------------------------------------------------------------------------------------------
# the preconditioner


class RelaxationPreconditioner(BasePreconditioner):
    """``z = M⁻¹ r``: ``sweeps`` relaxation sweeps for ``A z = r`` from ``z = 0``.

    Args:
        A: ``[n, n]`` sparse or dense matrix with a nonzero diagonal.
        kind: ``"jacobi"`` (weighted by ``omega``), ``"gauss-seidel"`` (SOR with ``ω = 1``),
            ``"sor"`` or ``"ssor"``. Default ``"sor"``.
        omega: relaxation factor in the open interval (0, 2). Default 1.
        sweeps: number of sweeps, ≥ 1. Default 1.
        direction: ``"forward"``, ``"backward"`` or ``"symmetric"`` (forward then backward).
            Default (None): ``"symmetric"`` for ``"ssor"``, else ``"forward"``; ``"ssor"``
            accepts only ``"symmetric"``. Jacobi has no direction and ignores it.
        ordering: ``"natural"`` (default) or ``"redblack"`` (see :class:`SORSplitting`).

    Attributes:
        symmetric: True when ``M⁻¹`` is symmetric (Hermitian) positive definite, so that CG
            may use it: a symmetric sweep (SSOR, symmetric Gauss–Seidel) of a Hermitian A with
            a positive real diagonal — positive definite for one sweep, and for more sweeps
            when A itself is positive definite — or one Jacobi sweep with a positive diagonal.
            Forward or backward SOR is never symmetric.

    Raises:
        ValueError: ``omega`` outside (0, 2) or NaN, ``omega ≠ 1`` with ``"gauss-seidel"``,
            unknown ``kind``/``direction``/``ordering``, ``sweeps < 1``, a zero diagonal.
    """

    linear = True
    #: which implementation runs: these SciPy/NumPy kernels (``"petsc"`` for
    #: :class:`~pdesuite.solvers.petsc_backend.kernels.PetscKernelPreconditioner`)
    backend = "scipy"

    def __init__(self, A: Any, kind: str = "sor", omega: float = 1.0, sweeps: int = 1,
                 direction: Optional[str] = None, ordering: str = "natural"):
        (self.kind, self.omega, self.sweeps, self.direction,
         self.ordering) = check_preconditioner_options(kind, omega, sweeps, direction, ordering)
        matrix = as_csr(A, copy=True)
        diag = _checked_diagonal(matrix)
        self.n = matrix.shape[0]
        self.dtype = matrix.dtype
        self.symmetric = preconditioner_is_symmetric(matrix, diag, self.kind, self.sweeps,
                                                     self.direction)
        if self.kind == "jacobi":
            self._matrix = matrix
            self._omega_over_d = self.omega / diag
            self._splitting: Optional[SORSplitting] = None
        else:
            self._splitting = SORSplitting(matrix, self.omega, self.ordering)

    def __repr__(self) -> str:
        return (f"RelaxationPreconditioner(kind={self.kind!r}, backend={self.backend!r}, "
                f"omega={self.omega}, sweeps={self.sweeps}, direction={self.direction!r}, "
                f"ordering={self.ordering!r})")

    def apply(self, r: np.ndarray) -> np.ndarray:
        """``z = M⁻¹ r`` for ``r`` of shape ``[n]``; ``z`` has the matrix's dtype (complex if r is)."""
        r = np.asarray(r).reshape(-1)
        if r.shape != (self.n,):
            raise ValueError(f"r: expected shape ({self.n},), got {r.shape}")
        if r.dtype.kind == "c" and self.dtype.kind != "c":
            # The operator is real and linear: relax the two parts apart.
            return self._apply(np.ascontiguousarray(r.real)) + 1j * self._apply(np.ascontiguousarray(r.imag))
        return self._apply(r)

    def _apply(self, r: np.ndarray) -> np.ndarray:
        if self._splitting is None:
            r = r.astype(np.result_type(r.dtype, self.dtype), copy=False)
            z = self._omega_over_d * r
            for _ in range(self.sweeps - 1):
                z = z + self._omega_over_d * (r - self._matrix @ z)
            return z
        s = self._splitting
        rhs = s._cast(s.to_internal(r))
        forward = self.direction in ("forward", "symmetric")
        backward = self.direction in ("backward", "symmetric")
        z: Optional[np.ndarray] = None
        for _ in range(self.sweeps):
            if forward:
                # From z = 0 the first right-hand side is r itself.
                z = s.forward_solve(rhs if z is None else s.forward_rhs(rhs, z))
            if backward:
                z = s.backward_solve(rhs if z is None else s.backward_rhs(rhs, z))
        return s.to_original(z)


def check_preconditioner_options(kind: str, omega: Any, sweeps: Any, direction: Optional[str],
                                 ordering: str) -> tuple[str, float, int, str, str]:
    """``(kind, omega, sweeps, direction, ordering)`` of a relaxation preconditioner, checked and
    with the default direction resolved; the ValueErrors of :class:`RelaxationPreconditioner`
    (each message starts with the argument's name). Shared with the PETSc kernels."""
    kind = check_choice("kind", kind, KINDS)
    omega = _check_omega(omega)
    sweeps = check_int("sweeps", sweeps, 1)
    ordering = check_choice("ordering", ordering, ORDERINGS)
    direction = _resolve_direction(kind, direction)
    if kind == "gauss-seidel" and omega != 1.0:
        raise ValueError(f"omega: kind='gauss-seidel' is SOR with omega=1, got omega={omega}; "
                         "use kind='sor' for another relaxation factor")
    return kind, omega, sweeps, direction, ordering


def preconditioner_is_symmetric(matrix: sp.csr_array, diag: np.ndarray, kind: str, sweeps: int,
                                direction: str) -> bool:
    """The ``symmetric`` flag of a relaxation preconditioner (see :class:`RelaxationPreconditioner`)."""
    if kind == "jacobi":
        return sweeps == 1 and _positive_real(diag)
    return direction == "symmetric" and _positive_real(diag) and _is_hermitian(matrix)


def _resolve_direction(kind: str, direction: Optional[str]) -> str:
    if direction is None:
        return "symmetric" if kind == "ssor" else "forward"
    direction = check_choice("direction", direction, DIRECTIONS)
    if kind == "ssor" and direction != "symmetric":
        raise ValueError(f"direction: kind='ssor' is the symmetric sweep, got direction={direction!r}; "
                         "use kind='sor' for a one-directional sweep")
    return direction


# --------------------------------------------------------------------------------------------
# stand-alone solvers


def _relaxation_solve(kind: str, op, b, x, pc, monitor, omega: float = 1.0,
                      direction: Optional[str] = None, ordering: str = "natural"):
    if not pc.is_identity:
        raise ValueError(f"M: method {kind!r} is itself a relaxation and takes no preconditioner")
    omega = _check_omega(omega)
    direction = _resolve_direction(kind, direction)
    ordering = check_choice("ordering", ordering, ORDERINGS)
    matrix = op.require_matrix(f"method={kind!r}")
    info: dict[str, Any] = {"omega": omega}
    if kind != "jacobi":
        info.update(direction=direction, ordering=ordering)

    # The initial residual: free when x0 = 0.
    r = b.copy() if not np.any(x) else b - op.matvec(x)
    reason = monitor.start(float(np.linalg.norm(r)))
    if reason is not None:
        return x, reason, info

    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "jacobi":
            x, reason = _jacobi_loop(op, matrix, b, x, r, omega, monitor)
        else:
            splitting = SORSplitting(matrix, omega, ordering)
            x, reason = _sor_loop(splitting, b, x, direction, monitor)
    return x, reason, info


def _jacobi_loop(op, matrix, b, x, r, omega, monitor):
    diag = matrix.diagonal() if sp.issparse(matrix) else np.diag(matrix)
    if np.any(diag == 0):
        raise ValueError("A: has a zero on its diagonal; the Jacobi iteration divides by it")
    omega_over_d = omega / diag
    while True:
        x = x + omega_over_d * r
        r = b - op.matvec(x)
        reason = monitor.step(float(np.linalg.norm(r)))
        if reason is not None:
            return x, reason


def _sor_loop(s: SORSplitting, b, x, direction, monitor):
    b_in, x_in = s._cast(s.to_internal(b)), s._cast(s.to_internal(x))
    if direction == "forward":
        rhs_of, solve = s.forward_rhs, s.forward_solve
    else:
        rhs_of, solve = s.backward_rhs, s.backward_solve
    if direction in ("forward", "backward"):
        c = rhs_of(b_in, x_in)
        while True:
            x_in = solve(c)
            c_next = rhs_of(b_in, x_in)
            # b − A x_new = c(x_new) − c(x_old): the true residual, from the next sweep's rhs.
            reason = monitor.step(float(np.linalg.norm(c_next - c)))
            c = c_next
            if reason is not None:
                return s.to_original(x_in), reason
    c_forward = s.forward_rhs(b_in, x_in)
    while True:
        x_half = s.forward_solve(c_forward)
        c_backward = s.backward_rhs(b_in, x_half)
        x_in = s.backward_solve(c_backward)
        # Residual of the backward half-step: c_b(x_new) − c_b(x_half).
        residual = s.backward_rhs(b_in, x_in) - c_backward
        reason = monitor.step(float(np.linalg.norm(residual)))
        if reason is not None:
            return s.to_original(x_in), reason
        c_forward = s.forward_rhs(b_in, x_in)


@register_method("jacobi", options=("omega",),
                 description="(weighted) Jacobi iteration x += ω D⁻¹ (b − A x)")
def jacobi(op, b, x, pc, monitor, omega: float = 1.0):
    """(Weighted) Jacobi iteration; one iteration = one sweep = one matvec."""
    return _relaxation_solve("jacobi", op, b, x, pc, monitor, omega=omega)


@register_method("gauss-seidel", options=("direction", "ordering"),
                 description="Gauss–Seidel iteration (SOR with ω = 1)")
def gauss_seidel(op, b, x, pc, monitor, direction: str = "forward", ordering: str = "natural"):
    """Gauss–Seidel; ``direction`` forward/backward/symmetric, ``ordering`` natural/redblack."""
    return _relaxation_solve("gauss-seidel", op, b, x, pc, monitor, omega=1.0,
                             direction=direction, ordering=ordering)


@register_method("sor", options=("omega", "direction", "ordering"),
                 description="successive over-relaxation")
def sor(op, b, x, pc, monitor, omega: float = 1.0, direction: str = "forward",
        ordering: str = "natural"):
    """SOR with factor ``omega`` in (0, 2); ``direction="symmetric"`` is SSOR."""
    return _relaxation_solve("sor", op, b, x, pc, monitor, omega=omega, direction=direction,
                             ordering=ordering)


@register_method("ssor", options=("omega", "ordering"),
                 description="symmetric successive over-relaxation")
def ssor(op, b, x, pc, monitor, omega: float = 1.0, ordering: str = "natural"):
    """SSOR: a forward then a backward SOR sweep per iteration."""
    return _relaxation_solve("ssor", op, b, x, pc, monitor, omega=omega, ordering=ordering)


# --------------------------------------------------------------------------------------------
# Young's optimal relaxation factor


def jacobi_spectral_radius(A: Any, *, tol: float = 1e-6, dense_limit: int = 256,
                           maxiter: int = 50_000) -> float:
    """``β = ρ(I − D⁻¹A)``, the spectral radius of the Jacobi iteration matrix.

    Args:
        A: ``[n, n]`` sparse or dense matrix with a nonzero diagonal.
        tol: for ``n > dense_limit``, the Lanczos run stops when the residual norms of both
            extreme Ritz pairs are below ``tol`` (times the larger Ritz value). The error of
            an extreme eigenvalue is about residual² / gap, far below ``tol``: on the 2D
            Laplacian tol = 1e-6 gives β to ~1e-12 (Young's ω to ~1e-9). Default 1e-6.
        dense_limit: up to this ``n`` the eigenvalues are computed densely. Default 256.
        maxiter: cap on Lanczos steps (or ARPACK iterations). Default 50,000.

    For a Hermitian A with a positive real diagonal the spectrum is real and the matrix
    ``I − D^{-1/2} A D^{-1/2}`` (similar to ``I − D⁻¹A``) is used: both ends of its spectrum
    come from plain Lanczos without reorthogonalization (loss of orthogonality only duplicates
    converged Ritz values; it does not move the extreme ones). Measured on the 256² Laplacian
    under the same load: 0.6 s, against 15 s for ARPACK ``eigsh(which="LM", ncv=64)`` and 4.5 s
    for shift-invert at both ends. Otherwise ARPACK ``eigs(which="LM")``, which may be slow
    for large n; it is asked for relative accuracy ``tol²`` (comparable to Lanczos's).

    Raises:
        RuntimeError: if the iteration does not reach ``tol`` within ``maxiter``.
    """
    matrix = as_csr(A, copy=True)
    n = matrix.shape[0]
    diag = _checked_diagonal(matrix)
    hermitian = _positive_real(diag) and _is_hermitian(matrix)
    if n <= dense_limit or n < 4:
        if hermitian:
            scale = 1.0 / np.sqrt(np.real(diag))
            dense = np.eye(n) - scale[:, None] * matrix.toarray() * scale[None, :]
            values = sla.eigvalsh(dense)
        else:
            values = sla.eigvals(np.eye(n) - matrix.toarray() / diag[:, None])
        return float(np.max(np.abs(values)))
    if hermitian:
        scale = 1.0 / np.sqrt(np.real(diag))
        lowest, highest = _lanczos_extremes(lambda v: v - scale * (matrix @ (scale * v)), n,
                                            matrix.dtype, tol, maxiter)
        return float(max(abs(lowest), abs(highest)))
    iteration = spla.LinearOperator((n, n), matvec=lambda v: v - (matrix @ v) / diag,
                                    dtype=matrix.dtype)
    start = np.random.default_rng(0).standard_normal(n).astype(matrix.dtype)
    try:
        values = spla.eigs(iteration, k=1, which="LM", tol=tol * tol, v0=start, maxiter=maxiter,
                           ncv=min(n - 1, 40), return_eigenvectors=False)
    except spla.ArpackNoConvergence as error:
        raise RuntimeError(f"jacobi_spectral_radius: ARPACK did not converge in maxiter={maxiter} "
                           "iterations; raise maxiter or tol") from error
    return float(np.max(np.abs(values)))


def _lanczos_extremes(matvec, n: int, dtype: np.dtype, tol: float, maxiter: int,
                      check_every: int = 25) -> tuple[float, float]:
    """Lowest and highest eigenvalue of a Hermitian operator by plain Lanczos."""
    rng = np.random.default_rng(0)
    q = rng.standard_normal(n).astype(dtype)
    q /= np.linalg.norm(q)
    q_previous = np.zeros_like(q)
    alphas: list[float] = []
    betas: list[float] = []
    beta = 0.0
    for step in range(1, maxiter + 1):
        w = matvec(q)
        alpha = float(np.real(np.vdot(q, w)))
        w = w - alpha * q - beta * q_previous
        beta = float(np.linalg.norm(w))
        alphas.append(alpha)
        exhausted = beta <= 1e-14 * max(abs(alpha), 1.0)
        if exhausted or step % check_every == 0 or step == maxiter:
            diagonal, off = np.asarray(alphas), np.asarray(betas)
            low, low_vector = sla.eigh_tridiagonal(diagonal, off, select="i", select_range=(0, 0))
            high, high_vector = sla.eigh_tridiagonal(diagonal, off, select="i",
                                                     select_range=(step - 1, step - 1))
            # ‖A y − θ y‖ of a Ritz pair is beta times the last entry of its tridiagonal vector.
            residual = beta * max(abs(low_vector[-1, 0]), abs(high_vector[-1, 0]))
            if exhausted or residual <= tol * max(abs(low[0]), abs(high[0]), 1e-300):
                return float(low[0]), float(high[0])
        betas.append(beta)
        q_previous, q = q, w / beta
    raise RuntimeError(f"jacobi_spectral_radius: Lanczos did not reach tol={tol} in "
                       f"maxiter={maxiter} steps; raise maxiter or tol")


def young_omega(A: Any, **options: Any) -> float:
    """Young's optimal SOR factor ``ω* = 1 + (β / (1 + √(1 − β²)))²``, ``β = ρ(I − D⁻¹A)``.

    Optimal for consistently ordered matrices with real Jacobi eigenvalues (e.g. the 5-point
    Laplacian in natural or red–black order); elsewhere a heuristic.

    Args:
        A: ``[n, n]`` sparse or dense matrix with a nonzero diagonal.
        **options: ``tol``, ``dense_limit``, ``maxiter`` for :func:`jacobi_spectral_radius`.

    Returns:
        ``ω*`` in [1, 2).

    Raises:
        ValueError: if ``β ≥ 1`` (the Jacobi iteration does not converge, so neither the formula
            nor its assumption holds).
    """
    beta = jacobi_spectral_radius(A, **options)
    if not beta < 1.0:
        raise ValueError(f"A: the Jacobi iteration does not converge (rho(I - D^-1 A) = {beta:.6g} >= 1); "
                         "Young's omega needs rho < 1")
    return 1.0 + (beta / (1.0 + math.sqrt(1.0 - beta * beta))) ** 2
