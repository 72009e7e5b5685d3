"""Sparse direct solves that analyse each sparsity pattern once: :class:`DirectSolver`,
``"direct"``.

The systems of a dataset family share one sparsity pattern (same grid, same stencil) and differ
in their values. A sparse Cholesky factorization is two phases: a *symbolic* analysis of the
pattern (fill-reducing ordering, elimination tree, supernodes) and a *numeric* factorization of
the values. :class:`DirectSolver` keeps the analysis of the last pattern it saw and, when the
next matrix has the same pattern, runs CHOLMOD's numeric refactorization alone
(``Factor.cholesky_inplace``). A matrix with the very values of the last one reuses the numeric
factor too (a time-stepping family with a fixed step solves with one matrix many times).

Libraries:

- **CHOLMOD** (SuiteSparse, through scikit-sparse, the extra ``pdesuite[direct]``) for matrices
  taken as symmetric positive definite: ``spd=True``, or ``spd=None`` and the matrix passes the
  suite's symmetry probe (:func:`~pdesuite.solvers.linear_operator.looks_hermitian`) with a
  positive diagonal.
  When CHOLMOD finds the matrix not positive definite, or its solution misses the residual
  target (CHOLMOD's simplicial LDLᵀ factors a symmetric indefinite matrix without pivoting,
  which may be unstable), that matrix is factored by LU instead, and
  ``info["factorization_note"]`` says so; the analysis stays for the next matrix.
- **SuperLU** (``scipy.sparse.linalg.splu``) for everything else, and for every matrix when
  scikit-sparse is not installed. SciPy exposes no separate symbolic phase of SuperLU, so each
  matrix is factored from scratch (``symbolic_reused`` is then False).

Every solve is checked on its true residual (one product; two when LU follows CHOLMOD):
converged when ``‖b − A x‖ ≤ max(rtol·‖b‖, atol)``, else ``DIVERGED_BREAKDOWN``, with
``info["breakdown"]`` saying why (a singular matrix, or a residual above the target). A failed solve
never returns NaN: the suite's best-iterate rule returns the initial guess when the direct solution
is worse.

``DirectSolver().solve(A, b)`` and ``solve(A, b, method="direct")`` return the
:class:`~pdesuite.solvers.result.SolveResult` of every other method; ``solve`` factors afresh
unless given ``factorization=`` a DirectSolver to keep the analysis in.
"""

from __future__ import annotations

import hashlib
import importlib
import math
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.solvers.linear_operator import Operator, looks_hermitian
from pdesuite.solvers.monitor import ConvergenceMonitor
from pdesuite.solvers.preconditioner import CountingPreconditioner
from pdesuite.solvers.registry import register_method
from pdesuite.solvers.result import ConvergedReason, SolveResult
from pdesuite.solvers.validation import check_choice, check_tolerances
from pdesuite.solvers.vocabulary import DEFAULT_ATOL, DEFAULT_RTOL

__all__ = ["CHOLMOD_ORDERINGS", "DirectSolver", "cholmod_available", "direct"]

#: Fill-reducing orderings of CHOLMOD's analysis (scikit-sparse's ``ordering_method``).
#: ``"default"``: AMD, then METIS when AMD fills in badly. Since the analysis runs once per
#: pattern, a dearer ordering (``"metis"``, ``"nesdis"``, ``"best"`` tries them all) may pay
#: for itself over many samples on large 2-D grids. SuperLU ignores it.
CHOLMOD_ORDERINGS = ("default", "amd", "metis", "nesdis", "colamd", "natural", "best")

_INSTALL_HINT = "pip install 'pdesuite[direct]' (scikit-sparse, needs libsuitesparse-dev)"


def _cholmod() -> Any:
    """scikit-sparse's ``sksparse.cholmod`` module, or None when it cannot be imported.

    Imported on every call (a dictionary look-up once loaded), so that a test can make the
    import fail through ``sys.modules``.
    """
    try:
        return importlib.import_module("sksparse.cholmod")
    except (ImportError, OSError):  # not installed, or libcholmod missing
        return None


def cholmod_available() -> bool:
    """Whether CHOLMOD can be used (scikit-sparse imports)."""
    return _cholmod() is not None


class _Breakdown(Exception):
    """No factorization of this matrix: singular, or not factorable by any library."""


class DirectSolver:
    """Sparse direct solves of a sequence of matrices, keeping the symbolic analysis of a pattern.

    Args:
        spd: ``True``: the matrices are symmetric positive definite, factor by Cholesky
            (CHOLMOD); ``False``: LU (SuperLU); ``None`` (default): Cholesky when a matrix
            looks Hermitian to the suite's probe and has a positive real diagonal, else LU.
            CHOLMOD reads one triangle only: a matrix declared SPD that is not symmetric is
            caught by the residual check. Without scikit-sparse every matrix is factored by LU.
        ordering: CHOLMOD's fill-reducing ordering, one of :data:`CHOLMOD_ORDERINGS`.
        rtol, atol: the residual check, ``‖b − A x‖ ≤ max(rtol·‖b‖, atol)`` (defaults of
            :mod:`pdesuite.solvers.vocabulary`).

    ``solve(A, b)`` returns a :class:`SolveResult` whose ``info`` has ``factorization``
    (``"cholmod"`` or ``"superlu"``, the library that factored this matrix),
    ``symbolic_reused`` (the analysis of an earlier matrix served), ``numeric_reused`` (the
    factor of an earlier matrix with the same values served), ``pattern_hash`` (16 hex digits
    of the sparsity pattern), and ``factorization_note`` when Cholesky was wanted and LU ran.
    ``analyses`` and ``factorizations`` count the symbolic and numeric phases so far.
    """

    def __init__(self, spd: Optional[bool] = None, ordering: str = "default",
                 rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL):
        if spd not in (None, True, False):
            raise TypeError(f"spd: must be True, False or None, got {spd!r}")
        self.spd = spd if spd is None else bool(spd)
        self.ordering = check_choice("ordering", ordering, CHOLMOD_ORDERINGS)
        self.rtol, self.atol, _ = check_tolerances(rtol, atol, None)
        self.solves = 0
        self.analyses = 0
        self.factorizations = 0
        self.pattern_hash: Optional[str] = None
        self._pattern: Optional[tuple] = None  # (shape, complex, indptr copy, indices copy)
        self._factor: Any = None  # CHOLMOD Factor of the pattern (its numeric part: _values)
        self._values: Optional[np.ndarray] = None  # the data the numeric factor holds

    def reset(self) -> None:
        """Forget the analysis and the factor; the next solve analyses its pattern afresh."""
        self._pattern = self._factor = self._values = None
        self.pattern_hash = None

    def solve(self, A: Any, b: Any, x0: Any = None, callback: Any = None) -> SolveResult:
        """Solve ``A x = b`` (``[n, n]`` sparse or dense, ``[n]``).

        ``x0``: a nonzero guess makes the solve a correction ``x0 + A⁻¹(b − A x0)`` (one more
        product). ``callback`` is that of :func:`pdesuite.solvers.solve`.
        """
        from pdesuite.solvers.api import solve as api_solve

        return api_solve(A, b, method="direct", x0=x0, rtol=self.rtol, atol=self.atol,
                         callback=callback, factorization=self)

    # ----------------------------------------------------------------------------------------
    # factorization
    # ----------------------------------------------------------------------------------------

    def _factorize(self, matrix: sp.csr_array, info: dict[str, Any]):
        """``(solve, pivoted)`` for the CSR matrix ``matrix``: ``solve(r) = A⁻¹ r``, and
        whether the factorization pivoted for stability (else the caller redoes an
        inaccurate solve with LU); fills ``info``.

        Raises:
            _Breakdown: no library could factor the matrix (the message says why).
        """
        self.solves += 1
        cholmod = _cholmod()
        info.update(symbolic_reused=False, numeric_reused=False,
                    pattern_hash=self._hash_of(matrix))
        wants_cholesky = self._wants_cholesky(matrix)
        if wants_cholesky and cholmod is None:
            return self._lu(matrix, info, f"scikit-sparse is not installed: LU through SuperLU "
                                          f"({_INSTALL_HINT})", symmetric=True)
        if wants_cholesky:
            try:
                solve = self._cholesky(cholmod, matrix, info)
                info["factorization"] = "cholmod"
                return solve, False
            except cholmod.CholmodNotPositiveDefiniteError:
                self._values = None  # the factor holds a failed factorization
                return self._lu(matrix, info, "CHOLMOD: the matrix is not positive definite; LU "
                                              "through SuperLU for this matrix")
        return self._lu(matrix, info)

    def _wants_cholesky(self, matrix: sp.csr_array) -> bool:
        if self.spd is not None:
            return self.spd
        diagonal = matrix.diagonal()
        if not (np.all(diagonal.real > 0) and not np.any(diagonal.imag)):
            return False  # a positive real diagonal is necessary for Hermitian positive definite
        return looks_hermitian(matrix)

    def _hash_of(self, matrix: sp.csr_array) -> str:
        """The hash of ``matrix``'s pattern; a new pattern replaces the kept analysis.

        The pattern is compared in full (shape, nnz, the ``indptr`` and ``indices`` arrays),
        which costs far less than a factorization; the hash is computed once per new pattern.
        """
        complex_ = matrix.dtype.kind == "c"
        if self._pattern is not None:
            shape, was_complex, indptr, indices = self._pattern
            if (shape == matrix.shape and was_complex == complex_ and indices.size == matrix.nnz
                    and np.array_equal(indptr, matrix.indptr)
                    and np.array_equal(indices, matrix.indices)):
                return self.pattern_hash
        digest = hashlib.blake2b(digest_size=8)
        digest.update(np.asarray(matrix.shape, dtype=np.int64).tobytes())
        digest.update(matrix.indptr.astype(np.int64, copy=False).tobytes())
        digest.update(matrix.indices.astype(np.int64, copy=False).tobytes())
        # Copies: a caller may change its index arrays in place between solves.
        self._pattern = (matrix.shape, complex_, matrix.indptr.copy(), matrix.indices.copy())
        self._factor = self._values = None
        self.pattern_hash = digest.hexdigest()
        return self.pattern_hash

    def _cholesky(self, cholmod: Any, matrix: sp.csr_array, info: dict[str, Any]):
        if matrix.dtype.kind == "c":
            # The CSR arrays of a Hermitian A are the CSC arrays of Aᵀ = conj(A), not of A:
            # a complex matrix needs the conversion (a copy).
            csc = matrix.tocsc()
        else:
            # No copy: the CSR arrays of A are the CSC arrays of Aᵀ, which is A itself for a
            # symmetric matrix. CHOLMOD reads one triangle of it (a nonsymmetric matrix taken
            # as SPD shows in the residual, and LU redoes it). float32 data is cast to float64
            # there (CHOLMOD factors in double precision).
            csc = sp.csc_array((matrix.data, matrix.indices, matrix.indptr), shape=matrix.shape)
        if self._factor is None:
            self._factor = cholmod.analyze(csc, ordering_method=self.ordering)
            self._values = None
            self.analyses += 1
        else:
            info["symbolic_reused"] = True
        if self._values is not None and np.array_equal(self._values, matrix.data):
            info["numeric_reused"] = True
        else:
            self._values = None
            self._factor.cholesky_inplace(csc)  # numeric phase only, on the kept analysis
            self.factorizations += 1
            self._values = matrix.data.copy()
        factor = self._factor
        return factor.solve_A

    def _lu(self, matrix: sp.csr_array, info: dict[str, Any], note: Optional[str] = None,
            symmetric: bool = False):
        """``(solve, pivoted)``: LU through SuperLU; ``note`` says why, when Cholesky was wanted.

        ``symmetric``: the matrix is expected SPD (no CHOLMOD here), so SuperLU runs in its
        symmetric mode: a minimum-degree ordering of ``A + Aᵀ`` and diagonal pivots (1.2 to
        1.5 times faster than its default COLAMD with partial pivoting on 2-D grids). A zero
        pivot there falls back to partial pivoting at once; an inaccurate result is redone by
        the caller.
        """
        info.update(factorization="superlu", symbolic_reused=False, numeric_reused=False)
        if note is not None:
            info["factorization_note"] = note
        # No copy: the CSR arrays of A are the CSC arrays of Aᵀ; SuperLU factors Aᵀ and solves
        # with its transpose (trans="T", not "H": also right for complex A).
        transpose = sp.csc_array((matrix.data, matrix.indices, matrix.indptr), shape=matrix.shape)
        if symmetric:
            try:
                lu = spla.splu(transpose, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                               options={"SymmetricMode": True})
                self.factorizations += 1
                return (lambda r: lu.solve(r, trans="T")), False
            except RuntimeError:  # a zero diagonal pivot: not SPD after all
                pass
        try:
            lu = spla.splu(transpose)
        except RuntimeError as error:  # "Factor is exactly singular"
            raise _Breakdown(f"the matrix is singular: SuperLU: {error}"
                             + (f" ({note})" if note else "")) from None
        self.factorizations += 1
        return (lambda r: lu.solve(r, trans="T")), True

    def __repr__(self) -> str:
        return (f"DirectSolver(spd={self.spd!r}, ordering={self.ordering!r}, solves={self.solves}, "
                f"analyses={self.analyses}, factorizations={self.factorizations})")


@register_method("direct", options=("spd", "ordering", "factorization"),
                 description="sparse direct solve: Cholesky (CHOLMOD) or LU (SuperLU)")
def direct(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
           monitor: ConvergenceMonitor, spd: Optional[bool] = None, ordering: str = "default",
           factorization: Optional[DirectSolver] = None):
    """Sparse direct solve, checked on its true residual; see :mod:`pdesuite.solvers.direct`.

    One "iteration": the solve with the factors, then ``‖b − A x‖`` (one product). Options:
    ``spd`` and ``ordering`` as in :class:`DirectSolver`; ``factorization``: a DirectSolver
    whose kept analysis (and settings) serve this solve, instead of a fresh one.
    """
    if not pc.is_identity:
        raise ValueError("M: method 'direct' takes no preconditioner; a direct solve needs none")
    if factorization is None:
        factorization = DirectSolver(spd=spd, ordering=ordering)
    elif not isinstance(factorization, DirectSolver):
        raise TypeError(
            f"factorization: expected a DirectSolver, got {type(factorization).__name__}"
        )
    elif spd is not None or ordering != "default":
        raise TypeError("spd, ordering: set them on the DirectSolver given as factorization")
    matrix = op.require_matrix("method 'direct'")
    if not sp.issparse(matrix):
        matrix = sp.csr_array(matrix)  # a dense array
    info: dict[str, Any] = {}

    start = bool(np.any(x))
    residual = b - op.matvec(x) if start else b
    r0 = float(np.linalg.norm(residual))
    reason = monitor.start(r0)
    if reason is not None:  # x0 already meets the target
        monitor.true_residual = (x, r0)
        return x, reason, info
    try:
        solve, pivoted = factorization._factorize(matrix, info)
        x_new, rnorm = _solve_and_check(op, b, x, residual, start, solve)
        if not rnorm <= monitor.target and not pivoted:
            # A factorization without pivoting: CHOLMOD's simplicial LDLᵀ does not check the
            # signs of D, so it factors a symmetric indefinite matrix, maybe unstably; CHOLMOD
            # reads one triangle of a matrix taken as SPD; SuperLU's symmetric mode takes the
            # diagonal pivots. Each shows in the residual: LU with partial pivoting instead.
            what = ("CHOLMOD's factorization" if info["factorization"] == "cholmod"
                    else "SuperLU's symmetric mode (diagonal pivots)")
            solve, _ = factorization._lu(matrix, info, (
                f"{what} missed the residual target ({rnorm:.3e} > {monitor.target:.3e}: "
                "indefinite, or not symmetric though taken as SPD); LU with partial pivoting "
                "through SuperLU for this matrix"))
            x_new, rnorm = _solve_and_check(op, b, x, residual, start, solve)
    except _Breakdown as error:
        info["breakdown"] = str(error)
        monitor.true_residual = (x, r0)
        return x, ConvergedReason.DIVERGED_BREAKDOWN, info
    x = x_new
    monitor.true_residual = (x, rnorm)
    reason = monitor.step(rnorm)
    if reason is None or not reason.converged:
        info["breakdown"] = (
            "the direct solve returned NaN or Inf: the matrix is numerically singular"
            if math.isnan(rnorm)
            else f"the residual {rnorm:.3e} after the direct solve misses the target "
            f"{monitor.target:.3e}: the matrix is singular or too ill-conditioned for the tolerance"
        )
        return x, ConvergedReason.DIVERGED_BREAKDOWN, info
    return x, reason, info


def _solve_and_check(op: Operator, b: np.ndarray, x: np.ndarray, residual: np.ndarray,
                     start: bool, solve) -> tuple[np.ndarray, float]:
    """``(x + A⁻¹ residual, ‖b − A x_new‖)`` (or ``A⁻¹ b`` from a zero guess); one product.

    The norm is NaN, and no product is spent, when the solve returned NaN or Inf.
    """
    correction = np.asarray(solve(residual)).reshape(-1)
    x_new = (x + correction if start else correction).astype(op.dtype, copy=False)
    if not np.all(np.isfinite(x_new)):
        return x_new, math.nan
    return x_new, float(np.linalg.norm(b - op.matvec(x_new)))
