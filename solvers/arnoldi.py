"""The one Arnoldi process of the solvers: Gram–Schmidt, breakdown, Givens rotations, least squares.

GMRES and FGMRES of the NumPy backend and GCRO-DR (NumPy, and PETSc through its python KSP)
build their restart cycles on :class:`ArnoldiCycle`, so that the rules below hold for all of
them (the torch backend's batched GMRES uses the same constants):

- orthogonalization is classical Gram–Schmidt over the whole basis as two BLAS-2 products
  (``h = Vᴴw``, ``w −= V h``); ``reorthogonalize`` adds a second pass never, when the first
  cancelled more than ``1 − 1/√2`` of ``‖w‖`` (the Daniel–Gragg–Kaufman–Stewart test, PETSc's
  ``refine_ifneeded``), or always. A cycle that estimates its loss (``estimate_loss``,
  GCRO-DR) replaces the ``"ifneeded"`` test: it runs the second pass only when an estimate
  of the new vector's loss of orthogonality, from :data:`SKETCH_PROBES` random combinations
  of the basis, exceeds :data:`LOSS_TOLERANCE` eps (see :meth:`ArnoldiCycle.extend`);
- the Krylov space is invariant (a *happy breakdown*) when the new vector keeps at most
  :data:`BREAKDOWN_FACTOR`·eps of its norm;
- the least-squares problem is solved by a triangular solve while ``R`` is well conditioned
  and by a least-squares solve when it is (nearly) singular (a singular ``A``), so that a cycle
  never returns a huge correction built from round-off;
- a restart cycle that shrinks the norm it minimises by less than a factor
  :data:`STAGNATION_FACTOR` made no progress.

Every inner product goes through a :class:`~pdesuite.solvers.reduction.Reduction`, so that the
same cycle runs on the rank-local rows of a distributed vector.

Arrays: ``basis`` is C-ordered ``[m+1, n]``; its first ``fixed`` rows are vectors the cycle only
orthogonalizes against (GCRO-DR's recycled ``C``), the next ones the Arnoldi vectors ``V``.
``hessenberg`` ``[m+1, m]`` holds the unrotated coefficients (rows ``[0:fixed]``: ``Cᴴ B vⱼ``;
below: the Hessenberg matrix ``H̄``), ``triangle`` ``[m, m]`` the rotated ``R`` and ``rhs`` the
rotated ``β e₁``.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from scipy.linalg import blas, solve_triangular

from pdesuite.solvers.reduction import LOCAL_REDUCTION, Reduction
from pdesuite.solvers.validation import check_choice
from pdesuite.solvers.vocabulary import REORTHOGONALIZE

#: Second Gram–Schmidt pass (``reorthogonalize="ifneeded"``) when the first left less than this
#: fraction of ``‖w‖``.
REORTHOGONALIZATION_THRESHOLD = 1.0 / math.sqrt(2.0)
#: The loss of orthogonality ``‖Bᴴ b‖ / ‖b‖`` of a new vector ``b`` against the basis rows
#: ``B`` above which a cycle that estimates it runs the second pass, in units of eps of the
#: working dtype (9e-13 in double precision): far below semi-orthogonality (``√eps``, where
#: the projected problem stays accurate), so that GCRO-DR's recycled ``C`` leaves a solve
#: orthonormal to about 1e-12.
LOSS_TOLERANCE = 4096.0
#: Random combinations of its basis a cycle that estimates its loss keeps.
SKETCH_PROBES = 2
#: Seed of their weights: the same draws on every process and in every run.
SKETCH_SEED = 20240611
#: Happy breakdown when the orthogonalized vector keeps at most this many eps of its norm.
BREAKDOWN_FACTOR = 16.0
#: A restart cycle must shrink the norm it minimises below this factor of its value at the
#: cycle's start, or it made no progress.
STAGNATION_FACTOR = 1.0 - 1e-12


def check_reorthogonalize(value: Any) -> str:
    return check_choice("reorthogonalize", value, REORTHOGONALIZE)


def givens(a: Any, b: Any) -> tuple[float, Any, Any]:
    """``(c, s, ρ)`` with ``c`` real and ``[c s; −s̄ c] [a; b] = [ρ; 0]``."""
    if b == 0:
        # A zero column (a singular projected operator) leaves g where it was: (0, 1).
        return (1.0, 0.0, a) if a != 0 else (0.0, 1.0, 0.0)
    if a == 0:
        return 0.0, 1.0, b
    abs_a = abs(a)
    radius = math.hypot(abs_a, abs(b))
    phase = a / abs_a
    return abs_a / radius, phase * b.conjugate() / radius, phase * radius


def least_squares_triangle(R: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``y`` minimising ``‖g − R y‖`` for an upper triangular ``R`` ``[j, j]``.

    A triangular solve when every diagonal entry exceeds eps times the largest; otherwise R is
    (numerically) singular and the minimum-norm least-squares solution is returned.
    """
    eps = float(np.finfo(R.dtype).eps)
    diagonal = np.abs(np.diag(R))
    if diagonal.size and np.all(diagonal > eps * max(float(diagonal.max()), 1e-300)):
        return solve_triangular(R, g, check_finite=False)
    return np.linalg.lstsq(R, g, rcond=None)[0].astype(R.dtype, copy=False)


class _LocalCombination:
    """``w −= rowsᵀ h`` and ``x += rowsᵀ y`` in place, through BLAS gemv where the dtype has it."""

    def __init__(self, dtype: np.dtype):
        self.blas = dtype.char in "fdFD"
        if self.blas:
            self._gemv = blas.get_blas_funcs("gemv", dtype=dtype)

    def add(self, rows: np.ndarray, coefficients: np.ndarray, out: np.ndarray,
            scale: float = 1.0) -> None:
        """``out += scale · rowsᵀ coefficients``; ``rows`` C-ordered ``[k, n]``."""
        if rows.shape[0] == 0:
            return
        if self.blas:
            # rows.T is an F-ordered [n, k] view: gemv reads it without a copy.
            self._gemv(scale, rows.T, coefficients, beta=1.0, y=out, overwrite_y=1)
        else:
            out += scale * (coefficients @ rows)


def combine_rows(terms: list[tuple[np.ndarray, np.ndarray]], dtype: Any) -> np.ndarray:
    """``Σᵢ coefficientsᵢ @ rowsᵢ`` ``[p, n]`` for ``terms`` of coefficients ``[p, kᵢ]`` and rows
    ``[kᵢ, n]``: each term one BLAS-3 product (gemm) accumulated into the result, without
    temporaries, where the dtype has BLAS and the rows are C-ordered. Local: the rows of a
    distributed vector combine without a reduction."""
    dtype = np.dtype(dtype)
    out = np.zeros((terms[0][0].shape[0], terms[0][1].shape[1]), dtype=dtype)
    gemm = blas.get_blas_funcs("gemm", dtype=dtype) if dtype.char in "fdFD" else None
    for coefficients, rows in terms:
        if rows.shape[0] == 0:
            continue
        if gemm is not None and rows.flags.c_contiguous and rows.dtype == dtype:
            # out.T [n, p] += rows.T [n, k] @ coefficients.T [k, p], all Fortran-ordered views
            coefficients = np.ascontiguousarray(coefficients, dtype=dtype)
            gemm(1.0, rows.T, coefficients.T, beta=1.0, c=out.T, overwrite_c=1)
        else:
            out += coefficients @ rows
    return out


class ArnoldiCycle:
    """One restart cycle of at most ``m`` Arnoldi steps (see the module docstring).

    Args:
        m: the largest number of rows the basis holds before the new vector (``fixed`` rows
            plus Arnoldi steps); ``m >= 1``.
        n: the (local) vector length.
        dtype: the working dtype.
        reorthogonalize: ``"never"``, ``"ifneeded"`` or ``"always"``.
        reduction: where inner products are summed (serial by default).
        estimate_loss: with ``"ifneeded"``, decide on the second pass by an estimate of the
            new vector's loss of orthogonality rather than by the DGKS test (see
            :meth:`extend`).

    Use: :meth:`begin` with the cycle's first vector, then :meth:`extend` with ``B vⱼ`` for
    ``j = 0, 1, ...`` until it reports a breakdown or the caller stops, then
    :meth:`coefficients`. ``reorthogonalizations`` counts second passes over all cycles.
    """

    def __init__(self, m: int, n: int, dtype: Any, reorthogonalize: str,
                 reduction: Reduction = LOCAL_REDUCTION, estimate_loss: bool = False):
        self.m = m
        self.dtype = np.dtype(dtype)
        self.real = self.dtype.kind != "c"
        self.reorthogonalize = check_reorthogonalize(reorthogonalize)
        self.reduction = reduction
        self.basis = np.empty((m + 1, n), dtype=self.dtype)
        self.hessenberg = np.zeros((m + 1, m), dtype=self.dtype)
        self.triangle = np.zeros((m, m), dtype=self.dtype)
        self.rhs = np.zeros(m + 1, dtype=self.dtype)
        self._cosines = [0.0] * m
        self._sines: list[Any] = [0.0] * m
        self._combination = _LocalCombination(self.dtype)
        eps = float(np.finfo(self.dtype).eps)
        self._tiny = BREAKDOWN_FACTOR * eps
        # the largest loss of orthogonality a new vector keeps, or None for the DGKS test
        self._loss_tolerance: Optional[float] = None
        if estimate_loss and self.reorthogonalize == "ifneeded":
            self._loss_tolerance = LOSS_TOLERANCE * eps
            self._random = np.random.default_rng(SKETCH_SEED)
            self._weights = np.zeros((SKETCH_PROBES, m + 1))  # g, one row per probe
            self._sketch = np.zeros((SKETCH_PROBES, n), dtype=self.dtype)  # g @ basis
        self.fixed = 0
        self.steps = 0
        self.beta = 0.0
        self.reorthogonalizations = 0

    @property
    def capacity(self) -> int:
        """How many Arnoldi steps this cycle can take after its fixed rows."""
        return self.m - self.fixed

    def begin(self, v0: np.ndarray, beta: float, fixed_rows: Optional[np.ndarray] = None) -> None:
        """Start a cycle from ``v0`` of norm ``beta`` (> 0), after the orthonormal
        ``fixed_rows`` ``[kc, n]`` (kc < m) that every new vector is orthogonalized against."""
        kc = 0 if fixed_rows is None else fixed_rows.shape[0]
        if kc:
            self.basis[:kc] = fixed_rows
        self.fixed = kc
        np.multiply(v0, 1.0 / beta, out=self.basis[kc])
        self.hessenberg[:, : self.m - kc] = 0.0
        self.rhs[:] = 0.0
        self.rhs[0] = beta
        self.beta = beta
        self.steps = 0
        if self._loss_tolerance is not None:
            self._weights[...] = self._random.standard_normal(self._weights.shape)
            self._sketch[...] = combine_rows([(self._weights[:, :kc + 1], self.basis[:kc + 1])],
                                             self.dtype)

    def vector(self, j: int) -> np.ndarray:
        """The Arnoldi vector ``vⱼ`` (a view into the basis)."""
        return self.basis[self.fixed + j]

    def extend(self, w: np.ndarray) -> tuple[float, bool]:
        """Add ``w = B v_j`` as step ``j = steps``. ``w`` is overwritten unless it is read-only
        or shares memory with the basis (an operator that returned its input).

        Returns the residual norm estimate ``|g_{j+1}|`` after the step and whether the cycle
        must end here: a happy breakdown (the space became invariant) or a non-finite vector.

        ``"ifneeded"`` runs the second pass when the first cancelled most of ``w`` (DGKS), which
        on slowly converging problems is nearly every step. A cycle that estimates its loss
        keeps ``SKETCH_PROBES`` combinations ``s = Vᵀ g`` of its rows with Gaussian weights
        ``g`` (drawn afresh every cycle). After the first pass the new vector's components
        along the rows, ``c = Vᴴ w'``, are its loss of orthogonality ``‖c‖ / ‖w'‖``, and
        ``sᴴ w' = gᵀ c`` is a normal variable of standard deviation ``‖c‖`` whatever ``c`` is:
        a few inner products instead of ``width`` estimate the loss. The second pass runs when
        the largest estimate exceeds ``LOSS_TOLERANCE`` eps ``‖w'‖``; a loss ``L`` times that
        goes unnoticed with probability about ``(0.8 / L)²``. The loss of one pass grows with
        every cancellation, so it reaches the tolerance only now and then (about one step in
        ten on the Darcy systems of ``benchmarks/bench_gcrodr_iteration.py``).
        """
        if not w.flags.writeable or np.may_share_memory(w, self.basis):
            w = w.copy()
        red, real = self.reduction, self.real
        j = self.steps
        width = self.fixed + j + 1
        rows = self.basis[:width]
        h = red.dot_rows(rows, w, real)
        self._combination.add(rows, h, w, scale=-1.0)
        norm_out = red.norm(w)
        # ‖w‖² = ‖h‖² + ‖w − Vh‖² for orthonormal rows: spares a pass over w.
        norm_in = math.hypot(float(np.linalg.norm(h)), norm_out)
        if self.reorthogonalize != "never" and self._second_pass_needed(w, norm_in, norm_out):
            correction = red.dot_rows(rows, w, real)
            self._combination.add(rows, correction, w, scale=-1.0)
            h += correction
            norm_out = red.norm(w)
            self.reorthogonalizations += 1
        finite = math.isfinite(norm_out) and math.isfinite(norm_in)
        breakdown = not finite or not norm_out > self._tiny * norm_in
        if breakdown:
            norm_out = 0.0 if finite else norm_out
            self.basis[width] = 0.0
        else:
            np.multiply(w, 1.0 / norm_out, out=self.basis[width])
            if self._loss_tolerance is not None:
                self._add_to_sketch(width)
        self.hessenberg[:width, j] = h
        self.hessenberg[width, j] = norm_out

        # Rotate the new Hessenberg column (rows fixed .. fixed+j+1) into R.
        column = self.hessenberg[self.fixed:width + 1, j].tolist()
        cosines, sines = self._cosines, self._sines
        for i in range(j):
            upper, lower = column[i], column[i + 1]
            column[i] = cosines[i] * upper + sines[i] * lower
            column[i + 1] = cosines[i] * lower - sines[i].conjugate() * upper
        c, s, column[j] = givens(column[j], column[j + 1])
        cosines[j], sines[j] = c, s
        self.triangle[: j + 1, j] = column[: j + 1]
        g = self.rhs[j]
        self.rhs[j] = c * g
        self.rhs[j + 1] = -s.conjugate() * g
        self.steps = j + 1
        return abs(self.rhs[j + 1]), breakdown

    def _second_pass_needed(self, w: np.ndarray, norm_in: float, norm_out: float) -> bool:
        """Whether to run a second pass after a first that left ``w`` (norm ``norm_out``) of a
        vector of norm ``norm_in``."""
        if self.reorthogonalize != "ifneeded":
            return self.reorthogonalize == "always"
        if self._loss_tolerance is None:
            return norm_out < REORTHOGONALIZATION_THRESHOLD * norm_in
        estimates = self.reduction.dot_rows(self._sketch, w, self.real)  # gᵀ Vᴴ w per probe
        return float(np.max(np.abs(estimates))) > self._loss_tolerance * norm_out

    def _add_to_sketch(self, row: int) -> None:
        """``sketch += g[:, row] basis[row]`` for the basis row just added (local rows)."""
        for probe in range(SKETCH_PROBES):
            self._combination.add(self.basis[row:row + 1], self._weights[probe, row:row + 1],
                                  self._sketch[probe])

    def coefficients(self) -> np.ndarray:
        """``y`` ``[steps]`` minimising ``‖β e₁ − H̄ y‖`` over the steps taken."""
        steps = self.steps
        return least_squares_triangle(self.triangle[:steps, :steps], self.rhs[:steps])

    def add_combination(self, rows: np.ndarray, coefficients: np.ndarray, x: np.ndarray) -> None:
        """``x += rowsᵀ coefficients`` in place (local rows; no reduction needed)."""
        self._combination.add(rows, coefficients, x)

    def residual_vector(self, y: np.ndarray) -> np.ndarray:
        """The residual ``V̂ (β e₁ − H̄ y)`` after the update by ``y``, from the basis (no
        product with A; it drifts from the true residual only by round-off)."""
        steps, kc = self.steps, self.fixed
        coefficients = -(self.hessenberg[kc:kc + steps + 1, :steps] @ y)
        coefficients[0] += self.beta
        return coefficients @ self.basis[kc:kc + steps + 1]
