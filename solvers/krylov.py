"""NumPy-backend Krylov methods: CG, FCG, GMRES, FGMRES, BiCGStab, MINRES and Richardson.

Every method has the registry's signature ``method(op, b, x, pc, monitor, **options) ->
(x, reason, info)`` (see :mod:`pdesuite.solvers.registry`) and is reached through
:func:`pdesuite.solvers.solve`. The vectors are ``[n]`` arrays of the working dtype (float32,
float64, complex64 or complex128; other float kinds fall back to plain NumPy arithmetic).
Inner products are conjugated (``xᴴy``), so complex systems work wherever the method's
theory allows (CG and MINRES need a Hermitian matrix).

Speed: the loops update vectors in place through BLAS (``axpy``, ``gemv``), allocate only
what the matvec and the preconditioner return, and GMRES orthogonalises a new vector against
its whole basis with two matrix–vector products instead of a Python loop over the basis.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import blas, solve_triangular

from pdesuite.solvers.linear_operator import Operator
from pdesuite.solvers.monitor import ConvergenceMonitor
from pdesuite.solvers.preconditioner import CountingPreconditioner
from pdesuite.solvers.registry import register_method
from pdesuite.solvers.result import ConvergedReason

Reason = ConvergedReason
MethodReturn = tuple[np.ndarray, ConvergedReason, dict[str, Any]]

#: A GMRES restart cycle must shrink the norm it minimises below this factor of the norm at
#: the cycle's start, or the solve stops with DIVERGED_STAGNATION.
STAGNATION_FACTOR = 1.0 - 1e-12
#: Reorthogonalise a new Krylov vector when Gram–Schmidt cancelled more than this fraction of
#: its norm (the Daniel–Gragg–Kaufman–Stewart criterion, 1/√2).
REORTHOGONALISATION_THRESHOLD = 1.0 / math.sqrt(2.0)
#: GMRES orthogonalisation choices: "cgs" (one classical Gram–Schmidt pass, PETSc's default;
#: ours too) and "cgs2" (reorthogonalised when needed).
ORTHOGONALIZATIONS = ("cgs2", "cgs")


# --------------------------------------------------------------------------------------------
# Vector kernels
# --------------------------------------------------------------------------------------------


class _Kernels:
    """In-place vector operations for one dtype, through BLAS where the dtype has it."""

    def __init__(self, dtype: np.dtype):
        self.dtype = np.dtype(dtype)
        self.complex = self.dtype.kind == "c"
        self.eps = float(np.finfo(self.dtype).eps)
        self.has_blas = self.dtype.char in "fdFD"
        if self.has_blas:
            self._axpy, self._gemv = blas.get_blas_funcs(("axpy", "gemv"), dtype=self.dtype)
            # trans=2 is the conjugate transpose for complex gemv, the transpose for real.
            self._trans_h = 2 if self.complex else 1

    def axpy(self, a: complex, x: np.ndarray, y: np.ndarray) -> None:
        """``y += a·x`` in place."""
        if self.has_blas:
            self._axpy(x, y, a=a)
        else:
            y += a * x

    def dot(self, x: np.ndarray, y: np.ndarray) -> complex:
        """``xᴴy`` as a Python number."""
        return np.vdot(x, y).item()

    def rdot(self, x: np.ndarray, y: np.ndarray) -> float:
        """``Re(xᴴy)``, for quantities that are real by theory (``xᴴAx`` with A Hermitian)."""
        value = np.vdot(x, y)
        return float(value.real) if self.complex else float(value)

    def norm(self, x: np.ndarray) -> float:
        if self.complex:
            return math.sqrt(float(np.vdot(x, x).real))
        return math.sqrt(float(np.dot(x, x)))

    def project(self, basis: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``basisᴴ-coefficients``: ``[k]`` array ``h_i = basis[i]ᴴ w`` for a ``[k, n]`` basis."""
        if self.has_blas:
            # basis is C-ordered [k, n], so basis.T is an F-ordered [n, k] matrix: no copy.
            return self._gemv(1.0, basis.T, w, trans=self._trans_h)
        if self.complex:
            return np.conj(basis @ np.conj(w))
        return basis @ w

    def subtract_combination(self, basis: np.ndarray, h: np.ndarray, w: np.ndarray) -> None:
        """``w -= basisᵀ h`` in place for a ``[k, n]`` basis and ``[k]`` coefficients."""
        if self.has_blas:
            self._gemv(-1.0, basis.T, h, beta=1.0, y=w, overwrite_y=1)
        else:
            w -= h @ basis

    def add_combination(self, basis: np.ndarray, h: np.ndarray, x: np.ndarray) -> None:
        """``x += basisᵀ h`` in place."""
        if self.has_blas:
            self._gemv(1.0, basis.T, h, beta=1.0, y=x, overwrite_y=1)
        else:
            x += h @ basis

    def combination(self, basis: np.ndarray, h: np.ndarray) -> np.ndarray:
        """A new vector ``basisᵀ h``."""
        if self.has_blas:
            return self._gemv(1.0, basis.T, h)
        return h @ basis


def _as_dtype(v: Any, dtype: np.dtype) -> np.ndarray:
    v = np.asarray(v).reshape(-1)
    return v if v.dtype == dtype else v.astype(dtype)


def _matvec(op: Operator, v: np.ndarray) -> np.ndarray:
    return _as_dtype(op.matvec(v), op.dtype)


def _precondition(pc: CountingPreconditioner, r: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``M r``; for the identity this is ``r`` itself (no copy), so callers must not alias."""
    return _as_dtype(pc.apply(r), dtype)


def _residual(op: Operator, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    # A new array: an operator may return its input or a buffer of its own.
    return b - _matvec(op, x)


def _not_finite_or(reason: Reason, *values: float) -> Reason:
    """NaN/Inf when any of ``values`` is not finite, else ``reason``."""
    return reason if all(math.isfinite(abs(v)) for v in values) else Reason.DIVERGED_NAN_OR_INF


def _check_int_option(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# CG and flexible CG
# --------------------------------------------------------------------------------------------


@register_method("cg", options=())
def conjugate_gradient(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
                       monitor: ConvergenceMonitor) -> MethodReturn:
    """Preconditioned conjugate gradients for Hermitian positive definite A (and M).

    One matvec and one preconditioner application per iteration; the monitored norm is the
    2-norm of the recurrence residual. Stops with DIVERGED_INDEFINITE_MAT when ``pᴴAp ≤ 0``
    (A is not positive definite, or singular along p) and DIVERGED_INDEFINITE_PC when
    ``rᴴMr ≤ 0``. With ``pc.is_identity`` it is plain CG and ``rᴴr = ‖r‖²`` saves a product.
    """
    k = _Kernels(op.dtype)
    r = _residual(op, b, x)
    rnorm = k.norm(r)
    reason = monitor.start(rnorm)
    if reason is not None:
        return x, reason, {}
    plain = pc.is_identity
    z = r if plain else _precondition(pc, r, op.dtype)
    rz = rnorm * rnorm if plain else k.rdot(r, z)
    if not rz > 0:
        return x, _not_finite_or(Reason.DIVERGED_INDEFINITE_PC, rz), {}
    p = z.copy()
    while True:
        q = _matvec(op, p)
        pq = k.rdot(p, q)
        if not pq > 0:
            return x, _not_finite_or(Reason.DIVERGED_INDEFINITE_MAT, pq), {}
        alpha = rz / pq
        k.axpy(alpha, p, x)
        k.axpy(-alpha, q, r)
        rnorm = k.norm(r)
        reason = monitor.step(rnorm)
        if reason is not None:
            return x, reason, {}
        if plain:
            z, rz_next = r, rnorm * rnorm
        else:
            z = _precondition(pc, r, op.dtype)
            rz_next = k.rdot(r, z)
            if not rz_next > 0:
                return x, _not_finite_or(Reason.DIVERGED_INDEFINITE_PC, rz_next), {}
        beta = rz_next / rz
        rz = rz_next
        p *= beta
        p += z


@register_method("fcg", flexible=True, options=("mmax",))
def flexible_conjugate_gradient(op: Operator, b: np.ndarray, x: np.ndarray,
                                pc: CountingPreconditioner, monitor: ConvergenceMonitor,
                                mmax: int = 1) -> MethodReturn:
    """Flexible CG (Notay 2000) for Hermitian positive definite A, any preconditioner.

    Each new direction ``d = M r`` is made A-orthogonal to the last ``mmax`` directions
    (classical Gram–Schmidt in the A-inner product, ``d -= Σ (dᵢᴴA z / dᵢᴴA dᵢ) dᵢ``), then
    ``x += α d`` with ``α = dᴴr / dᴴAd``. ``mmax=1`` (default) is the Polak–Ribière-like
    truncation, which equals CG for a fixed SPD preconditioner and stays robust for a
    varying or nonlinear one. One matvec and one preconditioner application per iteration;
    the monitored norm is the 2-norm of the recurrence residual. DIVERGED_INDEFINITE_MAT when
    ``dᴴAd ≤ 0``.

    Options:
        mmax: number of earlier directions kept for the orthogonalisation (integer ≥ 1).
    """
    mmax = _check_int_option("mmax", mmax, 1)
    k = _Kernels(op.dtype)
    r = _residual(op, b, x)
    rnorm = k.norm(r)
    reason = monitor.start(rnorm)
    if reason is not None:
        return x, reason, {}
    slots = mmax + 1  # the newest direction must not overwrite one it is orthogonalised against
    directions = np.empty((slots, op.n), dtype=op.dtype)
    images = np.empty((slots, op.n), dtype=op.dtype)  # A·directions
    curvatures = [0.0] * slots  # dᴴAd of each stored direction
    count = 0
    while True:
        z = _precondition(pc, r, op.dtype)
        slot = count % slots
        d = directions[slot]
        d[...] = z
        previous = [(count - i) % slots for i in range(1, min(count, mmax) + 1)]
        coefficients = [k.dot(images[j], z) / curvatures[j] for j in previous]
        for j, coefficient in zip(previous, coefficients):
            k.axpy(-coefficient, directions[j], d)
        q = images[slot]
        q[...] = _matvec(op, d)
        dq = k.rdot(d, q)
        if not dq > 0:
            if dq == 0 and k.norm(d) == 0:
                return x, Reason.DIVERGED_BREAKDOWN, {}
            return x, _not_finite_or(Reason.DIVERGED_INDEFINITE_MAT, dq), {}
        curvatures[slot] = dq
        alpha = k.dot(d, r) / dq
        k.axpy(alpha, d, x)
        k.axpy(-alpha, q, r)
        count += 1
        reason = monitor.step(k.norm(r))
        if reason is not None:
            return x, reason, {}


# --------------------------------------------------------------------------------------------
# GMRES and FGMRES
# --------------------------------------------------------------------------------------------


class _Arnoldi:
    """One GMRES(m) cycle: the Arnoldi basis, Givens rotations and the least-squares problem.

    Orthogonalisation is classical Gram–Schmidt as two BLAS gemv over the whole basis
    (``h = Vᴴw``, ``w −= V h``) instead of a Python loop over its vectors. With
    ``reorthogonalise`` (the default of the methods) a second pass runs whenever the first
    cancelled more than ``1 − 1/√2`` of ``‖w‖`` (the Daniel–Gragg–Kaufman–Stewart test, PETSc's
    ``refine_ifneeded``), which keeps the basis orthogonal to working precision; without it,
    one pass as PETSc's default GMRES does.

    Arrays: ``basis`` is C-ordered ``[m+1, n]``, so its first ``j+1`` rows form an F-ordered
    ``[n, j+1]`` matrix that gemv reads without a copy; ``triangle`` ``[m, m]`` is the
    rotated Hessenberg matrix R; ``rhs`` the rotated ``β e₁``.
    """

    def __init__(self, kernels: _Kernels, m: int, n: int, reorthogonalise: bool):
        self.k = kernels
        self.m = m
        self.basis = np.empty((m + 1, n), dtype=kernels.dtype)
        self.triangle = np.zeros((m, m), dtype=kernels.dtype)
        self.cosines: list[float] = [0.0] * m
        self.sines: list[complex] = [0.0] * m
        self.rhs: list[complex] = [0.0] * (m + 1)
        self.threshold = REORTHOGONALISATION_THRESHOLD if reorthogonalise else 0.0
        self.happy_tol = 16.0 * kernels.eps
        self.reorthogonalisations = 0

    def begin(self, v0: np.ndarray, beta: float) -> None:
        np.multiply(v0, 1.0 / beta, out=self.basis[0])
        self.rhs[0] = beta

    def extend(self, j: int, w: np.ndarray) -> tuple[float, bool]:
        """Orthogonalise ``w`` (the operator applied to ``basis[j]``; overwritten) against
        ``basis[:j+1]``, store the result as ``basis[j+1]``, rotate the new Hessenberg column
        into R, and return the residual estimate after j+1 steps and whether the Krylov space
        became invariant (a happy breakdown)."""
        k = self.k
        V = self.basis[: j + 1]
        h = k.project(V, w)
        k.subtract_combination(V, h, w)
        h_next = k.norm(w)
        # ‖w‖² = ‖h‖² + ‖w − Vh‖² for an orthonormal V, which spares a pass over w.
        projected = k.norm(h)
        w_norm = math.hypot(projected, h_next)
        if h_next < self.threshold * w_norm:
            correction = k.project(V, w)
            k.subtract_combination(V, correction, w)
            h += correction
            h_next = k.norm(w)
            self.reorthogonalisations += 1
        happy = h_next <= self.happy_tol * w_norm
        if not happy:
            np.multiply(w, 1.0 / h_next, out=self.basis[j + 1])
        else:
            h_next = 0.0

        column = h.tolist()
        column.append(h_next)
        cosines, sines = self.cosines, self.sines
        for i in range(j):
            upper, lower = column[i], column[i + 1]
            c, s = cosines[i], sines[i]
            column[i] = c * upper + s * lower
            column[i + 1] = c * lower - s.conjugate() * upper
        diagonal = column[j]
        radius = math.hypot(abs(diagonal), h_next)
        if radius == 0.0:
            c, s = 0.0, 1.0
        elif diagonal == 0:
            c, s, column[j] = 0.0, 1.0, h_next
        else:
            phase = diagonal / abs(diagonal)
            c, s, column[j] = abs(diagonal) / radius, phase * h_next / radius, phase * radius
        cosines[j], sines[j] = c, s
        self.triangle[: j + 1, j] = column[: j + 1]
        g = self.rhs[j]
        self.rhs[j] = c * g
        self.rhs[j + 1] = -s.conjugate() * g
        return abs(self.rhs[j + 1]), happy

    def coefficients(self, steps: int) -> np.ndarray:
        """``y`` minimising ``‖β e₁ − H y‖`` over the first ``steps`` columns."""
        R = self.triangle[:steps, :steps]
        g = np.asarray(self.rhs[:steps], dtype=self.k.dtype)
        diagonal = np.abs(np.diag(R))
        if np.all(diagonal > self.k.eps * max(float(diagonal.max()), 1e-300)):
            return solve_triangular(R, g, check_finite=False)
        # A singular A (a rank-deficient R) leaves a least-squares problem.
        return np.linalg.lstsq(R, g, rcond=None)[0].astype(self.k.dtype, copy=False)


def _check_restart(restart: Any) -> int:
    return _check_int_option("restart", restart, 1)


def _check_orthogonalization(orthogonalization: Any) -> bool:
    """True when a second Gram–Schmidt pass is allowed."""
    if orthogonalization not in ORTHOGONALIZATIONS:
        raise ValueError(f"orthogonalization: must be one of {ORTHOGONALIZATIONS}, "
                         f"got {orthogonalization!r}")
    return orthogonalization == "cgs2"


def _gmres_cycles(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
                  monitor: ConvergenceMonitor, restart: int, variant: str,
                  reorthogonalise: bool) -> MethodReturn:
    """Restarted GMRES; ``variant`` is "left", "right" or "flexible" (right with stored M v)."""
    k = _Kernels(op.dtype)
    dtype = op.dtype
    r = _residual(op, b, x)
    true_norm = k.norm(r)
    info: dict[str, Any] = {"side": "left" if variant == "left" else "right", "cycles": 0,
                            "reorthogonalisations": 0}
    reason = monitor.start(true_norm)
    if reason is not None:
        return x, reason, info
    m = max(1, min(restart, op.n, monitor.remaining))
    identity = pc.is_identity
    flexible = variant == "flexible" and not identity
    arnoldi = _Arnoldi(k, m, op.n, reorthogonalise)
    directions = np.empty((m, op.n), dtype=dtype) if flexible else None
    previous_beta = math.inf

    def finish(x: np.ndarray, reason: Reason) -> MethodReturn:
        info["reorthogonalisations"] = arnoldi.reorthogonalisations
        return x, reason, info

    while True:
        if variant == "left" and not identity:
            z = _precondition(pc, r, dtype)
            beta = k.norm(z)
        else:
            z, beta = r, true_norm
        if not math.isfinite(beta):
            return finish(x, Reason.DIVERGED_NAN_OR_INF)
        if beta == 0.0:  # M r = 0 with r ≠ 0: M is singular
            return finish(x, Reason.DIVERGED_BREAKDOWN)
        if beta > STAGNATION_FACTOR * previous_beta:
            return finish(x, Reason.DIVERGED_STAGNATION)
        previous_beta = beta
        # Left preconditioning minimises ‖M r‖; its ratio to ‖r‖ at the cycle's start turns
        # the estimate into one of the true residual, so that the monitor's target applies.
        scale = true_norm / beta
        arnoldi.begin(z, beta)
        info["cycles"] += 1
        steps = 0
        reason = None
        for j in range(min(m, monitor.remaining)):
            v = arnoldi.basis[j]
            if identity:
                w = _matvec(op, v)
            elif variant == "left":
                w = _precondition(pc, _matvec(op, v), dtype)
            elif flexible:
                directions[j] = _precondition(pc, v, dtype)
                w = _matvec(op, directions[j])
            else:
                w = _matvec(op, _precondition(pc, v, dtype))
            if np.may_share_memory(w, arnoldi.basis):
                w = w.copy()  # an operator that returned its input: the basis must stay intact
            estimate, happy = arnoldi.extend(j, w)
            steps = j + 1
            reason = monitor.step(estimate * scale)
            if reason is not None or happy:
                break
        if reason is Reason.DIVERGED_NAN_OR_INF:
            return finish(x, reason)  # the update would be garbage; keep the last x
        y = arnoldi.coefficients(steps)
        if flexible:
            k.add_combination(directions[:steps], y, x)
        elif variant == "left" or identity:
            k.add_combination(arnoldi.basis[:steps], y, x)
        else:
            k.axpy(1.0, _precondition(pc, k.combination(arnoldi.basis[:steps], y), dtype), x)
        r = _residual(op, b, x)
        true_norm = k.norm(r)
        if monitor.is_converged(true_norm):
            return finish(x, monitor.converged_reason())
        if not math.isfinite(true_norm):
            return finish(x, Reason.DIVERGED_NAN_OR_INF)
        if reason is not None and not reason.converged:
            return finish(x, reason)
        if monitor.remaining <= 0:
            return finish(x, Reason.DIVERGED_MAX_ITERATIONS)
        # Otherwise the cycle ended by its length, by a happy breakdown, or by an estimate
        # that the true residual did not confirm: restart from the true residual.


@register_method("gmres", options=("restart", "side", "orthogonalization"))
def gmres(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
          monitor: ConvergenceMonitor, restart: int = 40, side: str = "left",
          orthogonalization: str = "cgs") -> MethodReturn:
    """Restarted GMRES(m) with left (default, as SKR's baseline) or right preconditioning.

    Arnoldi with classical Gram–Schmidt as BLAS gemv over a preallocated ``[m+1, n]`` basis
    (two gemv per pass) and one reorthogonalisation pass when needed (see
    :class:`_Arnoldi`), complex Givens rotations for the least-squares problem, a residual
    estimate every step, and a happy breakdown when the Krylov space becomes invariant.
    ``iterations`` counts inner steps and ``maxiter`` caps them; each restart costs one
    extra matvec for the true residual. ``info``: ``side``, ``cycles``,
    ``reorthogonalisations``.

    Stopping, exactly:

    - right (and no) preconditioning: the estimate ``|g_{j+1}|`` is ``‖b − A x_j‖`` in exact
      arithmetic and goes to ``monitor.step`` as is.
    - left preconditioning: GMRES minimises ``‖M (b − A x)‖``. At the start of each cycle,
      with the true residual ``r`` at hand, the estimate is multiplied by
      ``ρ = ‖r‖ / ‖M r‖`` before it goes to ``monitor.step``; so the cycle ends when
      ``‖M r_j‖ ≤ target · ‖M r‖/‖r‖``, and the recorded residual history holds
      preconditioned norms scaled to start each cycle at the true ``‖r‖``.
    - a cycle ends after m steps, at a happy breakdown, or when the monitor stops it; then
      ``x`` is updated and the true residual ``‖b − A x‖`` computed. If it meets the target
      the solve has converged (whatever the estimate said); if the monitor had stopped with a
      failure, that failure is returned; otherwise (an estimate the true residual did not
      confirm, or a full cycle) a new cycle starts from the true residual with a fresh ρ.
    - DIVERGED_STAGNATION when a whole cycle reduces the minimised norm (``‖M r‖`` left,
      ``‖r‖`` right) by less than a factor ``1 − 1e-12``.

    Options:
        restart: the cycle length m (integer ≥ 1, default 40; capped at n).
        side: "left" (default) or "right".
        orthogonalization: "cgs" (default: one classical Gram–Schmidt pass, PETSc's default;
            half the memory traffic per step, and the basis of a 40-step cycle stays orthogonal
            enough on PDE matrices) or "cgs2" (a second pass when the first cancelled most of
            the vector, as PETSc's ``refine_ifneeded``: for ill-conditioned or long cycles).
            Either way convergence is decided on the true residual.
    """
    restart = _check_restart(restart)
    if side not in ("left", "right"):
        raise ValueError(f"side: must be 'left' or 'right', got {side!r}")
    reorthogonalise = _check_orthogonalization(orthogonalization)
    return _gmres_cycles(op, b, x, pc, monitor, restart, side, reorthogonalise)


@register_method("fgmres", flexible=True, options=("restart", "orthogonalization"))
def fgmres(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
           monitor: ConvergenceMonitor, restart: int = 40,
           orthogonalization: str = "cgs") -> MethodReturn:
    """Flexible GMRES(m) (Saad 1993): right preconditioning that stores ``zⱼ = M vⱼ``.

    The update ``x += Z y`` uses the stored ``zⱼ``, so the preconditioner may change from
    step to step or be nonlinear (a network, an inner solve). Memory: ``2m+1`` vectors.
    Orthogonalisation, rotations, counting and stopping as right-preconditioned
    :func:`gmres` (the estimate is the true residual norm in exact arithmetic).

    Options:
        restart: the cycle length m (integer ≥ 1, default 40; capped at n).
        orthogonalization: "cgs" (default) or "cgs2", as for :func:`gmres`.
    """
    restart = _check_restart(restart)
    reorthogonalise = _check_orthogonalization(orthogonalization)
    return _gmres_cycles(op, b, x, pc, monitor, restart, "flexible", reorthogonalise)


# --------------------------------------------------------------------------------------------
# BiCGStab
# --------------------------------------------------------------------------------------------


@register_method("bicgstab", options=())
def bicgstab(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
             monitor: ConvergenceMonitor) -> MethodReturn:
    """BiCGStab (van der Vorst 1992), right preconditioned, shadow residual ``r̂ = r₀``.

    Two matvecs and two preconditioner applications per iteration; the monitored norm is the
    2-norm of the recurrence residual, and a half step that already meets the target ends
    the solve. DIVERGED_BREAKDOWN when ``ρ = r̂ᴴr`` vanishes (``|ρ| ≤ ε‖r̂‖‖r‖``), when
    ``r̂ᴴv = 0`` (α undefined), or when ω = 0 (the next β undefined); x is then the last
    valid iterate, never one computed through the division by zero.
    """
    k = _Kernels(op.dtype)
    dtype = op.dtype
    r = _residual(op, b, x)
    rnorm = k.norm(r)
    reason = monitor.start(rnorm)
    if reason is not None:
        return x, reason, {}
    shadow = r.copy()
    shadow_norm = rnorm
    p = np.empty_like(r)
    rho_old = alpha = omega = 1.0
    first = True
    while True:
        rho = k.dot(shadow, r)
        if not abs(rho) > k.eps * shadow_norm * rnorm:
            return x, _not_finite_or(Reason.DIVERGED_BREAKDOWN, rho), {}
        if first:
            p[...] = r
            first = False
        else:
            beta = (rho / rho_old) * (alpha / omega)
            k.axpy(-omega, v, p)
            p *= beta
            p += r
        p_hat = _precondition(pc, p, dtype)
        v = _matvec(op, p_hat)
        shadow_v = k.dot(shadow, v)
        if shadow_v == 0 or not math.isfinite(abs(shadow_v)):
            return x, _not_finite_or(Reason.DIVERGED_BREAKDOWN, shadow_v), {}
        alpha = rho / shadow_v
        k.axpy(-alpha, v, r)  # r now holds s = r − αv
        s_norm = k.norm(r)
        if monitor.is_converged(s_norm):
            k.axpy(alpha, p_hat, x)
            return x, monitor.step(s_norm), {}
        s_hat = _precondition(pc, r, dtype)  # may be r itself: r changes only after its last use
        t = _matvec(op, s_hat)
        tt = k.rdot(t, t)
        omega = k.dot(t, r) / tt if tt > 0 else 0.0
        k.axpy(alpha, p_hat, x)
        k.axpy(omega, s_hat, x)
        k.axpy(-omega, t, r)
        rnorm = k.norm(r)
        reason = monitor.step(rnorm)
        if reason is not None:
            return x, reason, {}
        if omega == 0:
            return x, Reason.DIVERGED_BREAKDOWN, {}
        rho_old = rho


# --------------------------------------------------------------------------------------------
# MINRES
# --------------------------------------------------------------------------------------------


@register_method("minres", options=())
def minres(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
           monitor: ConvergenceMonitor) -> MethodReturn:
    """Preconditioned MINRES (Paige & Saunders 1975) for Hermitian, possibly indefinite A.

    M must be Hermitian positive definite: Lanczos runs in the inner product defined by M,
    and a non-positive ``uᴴMu`` stops the solve with DIVERGED_INDEFINITE_PC. MINRES
    minimises ``‖b − A x‖_M = sqrt(rᴴMr)``; that norm, multiplied by ``‖r₀‖ / ‖r₀‖_M``, is
    what goes to ``monitor.step`` (for no preconditioner it is the 2-norm itself). A
    convergence that the true residual does not confirm is continued by ``solve``. One
    matvec and one preconditioner application per iteration. DIVERGED_BREAKDOWN when the
    projected tridiagonal matrix becomes singular before convergence (a singular,
    inconsistent system).
    """
    k = _Kernels(op.dtype)
    dtype = op.dtype
    r = _residual(op, b, x)
    rnorm = k.norm(r)
    reason = monitor.start(rnorm)
    if reason is not None:
        return x, reason, {}
    plain = pc.is_identity
    # Lanczos vectors live in residual space: u_k = β_k q_k with q_k M-orthonormal, and
    # y_k = M u_k; the search space is spanned by v_k = y_k/β_k.
    u_prev = np.zeros_like(r)
    u = r
    y = u if plain else _precondition(pc, u, dtype)
    beta_sq = rnorm * rnorm if plain else k.rdot(u, y)
    if not beta_sq > 0:
        return x, _not_finite_or(Reason.DIVERGED_INDEFINITE_PC, beta_sq), {}
    beta = math.sqrt(beta_sq)
    scale = rnorm / beta
    beta_prev = 1.0
    phi_bar = beta  # the rotated right-hand side; |phi_bar| = ‖r_k‖_M
    c_prev2, s_prev2 = 1.0, 0.0  # rotation G_{k−2}
    c_prev, s_prev = 1.0, 0.0  # rotation G_{k−1}
    v = np.empty_like(r)
    w_prev2 = np.zeros_like(r)
    w_prev = np.zeros_like(r)
    while True:
        np.multiply(y, 1.0 / beta, out=v)
        p = _matvec(op, v)
        if np.may_share_memory(p, v):
            p = p.copy()  # an operator that returned its input; v is needed below
        k.axpy(-beta / beta_prev, u_prev, p)
        alpha = k.rdot(v, p)
        k.axpy(-alpha / beta, u, p)
        u_prev, u = u, p
        y = u if plain else _precondition(pc, u, dtype)
        beta_next_sq = k.rdot(u, y)
        if beta_next_sq < 0:
            return x, Reason.DIVERGED_INDEFINITE_PC, {}
        if not math.isfinite(beta_next_sq) or not math.isfinite(alpha):
            return x, Reason.DIVERGED_NAN_OR_INF, {}
        beta_next = math.sqrt(beta_next_sq)
        # Column k of the tridiagonal matrix is (β_k, α_k, β_{k+1}) in rows k−1, k, k+1;
        # apply the two previous rotations, then make the one that zeroes β_{k+1}.
        epsilon = s_prev2 * beta
        top = c_prev2 * beta
        delta = c_prev * top + s_prev * alpha
        gamma_bar = c_prev * alpha - s_prev * top
        gamma = math.hypot(gamma_bar, beta_next)
        if gamma == 0.0:
            return x, Reason.DIVERGED_BREAKDOWN, {}
        c, s = gamma_bar / gamma, beta_next / gamma
        phi = c * phi_bar
        phi_bar = -s * phi_bar
        # w_k = (v_k − δ w_{k−1} − ε w_{k−2}) / γ, built in the buffer of w_{k−2}.
        w = w_prev2
        w *= -epsilon / gamma
        k.axpy(-delta / gamma, w_prev, w)
        k.axpy(1.0 / gamma, v, w)
        k.axpy(phi, w, x)
        w_prev2, w_prev = w_prev, w
        c_prev2, s_prev2, c_prev, s_prev = c_prev, s_prev, c, s
        reason = monitor.step(abs(phi_bar) * scale)
        if reason is not None:
            return x, reason, {}
        if beta_next == 0.0:
            # The Krylov space is invariant: x is the minimiser over all of it.
            return x, Reason.DIVERGED_BREAKDOWN, {}
        beta_prev, beta = beta, beta_next


# --------------------------------------------------------------------------------------------
# Richardson
# --------------------------------------------------------------------------------------------


@register_method("richardson", options=("omega",))
def richardson(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
               monitor: ConvergenceMonitor, omega: float = 1.0) -> MethodReturn:
    """Preconditioned Richardson iteration ``x += ω M (b − A x)``.

    One matvec and one preconditioner application per iteration; the monitored norm is the
    true residual. Converges when the spectral radius of ``I − ωMA`` is below 1; the
    monitor's divergence test (``‖r‖ > 1e5‖r₀‖``) stops it with DIVERGED_DTOL otherwise.

    Options:
        omega: the damping factor ω (finite, non-zero; default 1.0).
    """
    if isinstance(omega, bool) or not isinstance(omega, (int, float, complex, np.number)) \
            or not np.isfinite(omega) or omega == 0:
        raise ValueError(f"omega: must be a finite non-zero number, got {omega!r}")
    k = _Kernels(op.dtype)
    r = _residual(op, b, x)
    reason = monitor.start(k.norm(r))
    if reason is not None:
        return x, reason, {}
    while True:
        k.axpy(omega, _precondition(pc, r, op.dtype), x)
        r = _residual(op, b, x)
        reason = monitor.step(k.norm(r))
        if reason is not None:
            return x, reason, {}
