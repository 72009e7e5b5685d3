"""NumPy-backend Krylov methods: CG, FCG, GMRES, FGMRES, BiCGStab, MINRES and Richardson.

Every method has the registry's signature ``method(op, b, x, pc, monitor, **options) ->
(x, reason, info)`` (see :mod:`pdesuite.solvers.registry`) and is reached through
:func:`pdesuite.solvers.solve`. The vectors are ``[n]`` arrays of the working dtype (float32,
float64, complex64 or complex128; other float kinds fall back to plain NumPy arithmetic).
Inner products are conjugated (``xᴴy``), so complex systems work wherever the method's
theory allows (CG and MINRES need a Hermitian matrix).

Speed: the loops update vectors in place through BLAS (``axpy``, ``gemv``), allocate only
what the matvec and the preconditioner return, and GMRES orthogonalizes a new vector against
its whole basis with two matrix–vector products instead of a Python loop over the basis
(:mod:`pdesuite.solvers.arnoldi`, shared with GCRO-DR).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import blas

from pdesuite.solvers.arnoldi import (
    BREAKDOWN_FACTOR,
    STAGNATION_FACTOR,
    ArnoldiCycle,
    check_reorthogonalize,
)
from pdesuite.solvers.linear_operator import Operator
from pdesuite.solvers.monitor import ConvergenceMonitor
from pdesuite.solvers.preconditioner import CountingPreconditioner
from pdesuite.solvers.registry import register_method
from pdesuite.solvers.result import ConvergedReason
from pdesuite.solvers.validation import check_bool, check_choice, check_int, check_real
from pdesuite.solvers.vocabulary import DEFAULT_RESTART, SIDES

Reason = ConvergedReason
MethodReturn = tuple[np.ndarray, ConvergedReason, dict[str, Any]]

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
            self._axpy = blas.get_blas_funcs("axpy", dtype=self.dtype)

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


def _start(op: Operator, b: np.ndarray, x: np.ndarray,
           monitor: ConvergenceMonitor) -> tuple[_Kernels, np.ndarray, float, Reason | None]:
    """The kernels, the initial residual and its norm, and the monitor's verdict on it."""
    k = _Kernels(op.dtype)
    r = _residual(op, b, x)
    rnorm = k.norm(r)
    return k, r, rnorm, monitor.start(rnorm)


def _not_finite_or(reason: Reason, *values: float) -> Reason:
    """NaN/Inf when any of ``values`` is not finite, else ``reason``."""
    return reason if all(math.isfinite(abs(v)) for v in values) else Reason.DIVERGED_NAN_OR_INF


# --------------------------------------------------------------------------------------------
# CG and flexible CG
# --------------------------------------------------------------------------------------------


@register_method("cg", needs_hermitian=True, options=())
def conjugate_gradient(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
                       monitor: ConvergenceMonitor) -> MethodReturn:
    """Preconditioned conjugate gradients for Hermitian positive definite A (and M).

    One matvec and one preconditioner application per iteration; the monitored norm is the
    2-norm of the recurrence residual. Stops with DIVERGED_INDEFINITE_MAT when ``pᴴAp ≤ 0``
    (A is not positive definite, or singular along p) and DIVERGED_INDEFINITE_PC when
    ``rᴴMr ≤ 0``. With ``pc.is_identity`` it is plain CG and ``rᴴr = ‖r‖²`` saves a product.
    """
    k, r, rnorm, reason = _start(op, b, x, monitor)
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


@register_method("fcg", flexible=True, needs_hermitian=True,
                 options=("mmax", "normalize_input", "residual_replacement"))
def flexible_conjugate_gradient(op: Operator, b: np.ndarray, x: np.ndarray,
                                pc: CountingPreconditioner, monitor: ConvergenceMonitor,
                                mmax: int = 1, normalize_input: bool = True,
                                residual_replacement: int = 0) -> MethodReturn:
    """Flexible CG (Notay 2000) for Hermitian positive definite A, any preconditioner.

    Each new direction ``d = M r`` is made A-orthogonal to the last ``mmax`` directions
    (classical Gram–Schmidt in the A-inner product, ``d -= Σ (dᵢᴴA z / dᵢᴴA dᵢ) dᵢ``), then
    ``x += α d`` with ``α = dᴴr / dᴴAd``. ``mmax=1`` (default) is the Polak–Ribière-like
    truncation, which equals CG for a fixed SPD preconditioner and stays robust for a
    varying or nonlinear one. One matvec and one preconditioner application per iteration;
    the monitored norm is the 2-norm of the recurrence residual. DIVERGED_INDEFINITE_MAT when
    ``dᴴAd ≤ 0``.

    Options:
        mmax: number of earlier directions kept for the orthogonalization (integer ≥ 1).
        normalize_input: apply M to ``r/‖r‖`` and scale back (default True). The same for a
            linear M, so it is skipped there; a nonlinear one (a network) then sees inputs of
            one scale.
        residual_replacement: recompute ``r = b − A x`` every this many iterations (one more
            matvec each; default 0, never), against the drift of the recurrence under a
            nonlinear M.
    """
    mmax = check_int("mmax", mmax, 1)
    normalize = check_bool("normalize_input", normalize_input) and not pc.linear
    replace_every = check_int("residual_replacement", residual_replacement, 0)
    k, r, rnorm, reason = _start(op, b, x, monitor)
    if reason is not None:
        return x, reason, {}
    slots = mmax + 1  # the newest direction must not overwrite one it is orthogonalized against
    directions = np.empty((slots, op.n), dtype=op.dtype)
    images = np.empty((slots, op.n), dtype=op.dtype)  # A·directions
    curvatures = [0.0] * slots  # dᴴAd of each stored direction
    count = 0
    while True:
        if normalize:
            scale = k.norm(r)
            z = _precondition(pc, r / scale, op.dtype) * scale
        else:
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
        count += 1
        if replace_every and count % replace_every == 0:
            r = _residual(op, b, x)
        else:
            k.axpy(-alpha, q, r)
        reason = monitor.step(k.norm(r))
        if reason is not None:
            return x, reason, {}


# --------------------------------------------------------------------------------------------
# GMRES and FGMRES
# --------------------------------------------------------------------------------------------


def _gmres_cycles(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
                  monitor: ConvergenceMonitor, restart: int, variant: str,
                  reorthogonalize: str) -> MethodReturn:
    """Restarted GMRES; ``variant`` is "left", "right" or "flexible" (right with stored M v)."""
    k = _Kernels(op.dtype)
    dtype = op.dtype
    r = _residual(op, b, x)
    true_norm = k.norm(r)
    info: dict[str, Any] = {"side": "left" if variant == "left" else "right", "cycles": 0,
                            "reorthogonalizations": 0}
    reason = monitor.start(true_norm)
    if reason is not None:
        return x, reason, info
    m = max(1, min(restart, op.n, monitor.remaining))
    identity = pc.is_identity
    flexible = variant == "flexible" and not identity
    cycle = ArnoldiCycle(m, op.n, dtype, reorthogonalize)
    directions = np.empty((m, op.n), dtype=dtype) if flexible else None
    previous_beta = math.inf
    x_start = np.empty_like(x)

    def finish(x: np.ndarray, reason: Reason) -> MethodReturn:
        info["reorthogonalizations"] = cycle.reorthogonalizations
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
        cycle.begin(z, beta)
        info["cycles"] += 1
        reason = None
        breakdown = False
        for j in range(min(m, monitor.remaining)):
            v = cycle.vector(j)
            if identity:
                w = _matvec(op, v)
            elif variant == "left":
                w = _precondition(pc, _matvec(op, v), dtype)
            elif flexible:
                directions[j] = _precondition(pc, v, dtype)
                w = _matvec(op, directions[j])
            else:
                w = _matvec(op, _precondition(pc, v, dtype))
            estimate, breakdown = cycle.extend(w)
            reason = monitor.step(estimate * scale)
            if reason is not None or breakdown:
                break
        if reason is Reason.DIVERGED_NAN_OR_INF:
            return finish(x, reason)  # the update would be garbage; keep the last x
        steps = cycle.steps
        y = cycle.coefficients()
        x_start[...] = x
        if flexible:
            cycle.add_combination(directions[:steps], y, x)
        elif variant == "left" or identity:
            cycle.add_combination(cycle.basis[:steps], y, x)
        else:
            k.axpy(1.0, _precondition(pc, y @ cycle.basis[:steps], dtype), x)
        r = _residual(op, b, x)
        new_norm = k.norm(r)
        if variant != "left" and not new_norm <= true_norm:
            # GMRES minimises this very norm, so a cycle that made it worse turned round-off
            # into its update (a singular M or A): return the iterate it started from. (Left
            # preconditioning minimises ‖M r‖, which may fall while ‖r‖ grows.)
            x[...] = x_start
            monitor.true_residual = (x, true_norm)
            failure = reason if reason is not None and not reason.converged else (
                Reason.DIVERGED_BREAKDOWN if breakdown else Reason.DIVERGED_STAGNATION)
            return finish(x, failure)
        true_norm = new_norm
        monitor.true_residual = (x, true_norm)
        if monitor.is_converged(true_norm):
            return finish(x, monitor.converged_reason())
        if reason is not None and not reason.converged:
            return finish(x, reason)
        if monitor.remaining <= 0:
            return finish(x, Reason.DIVERGED_MAX_ITERATIONS)
        # Otherwise the cycle ended by its length, by a happy breakdown, or by an estimate
        # that the true residual did not confirm: restart from the true residual.


@register_method("gmres", options=("restart", "side", "reorthogonalize"))
def gmres(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
          monitor: ConvergenceMonitor, restart: int = DEFAULT_RESTART, side: str = "left",
          reorthogonalize: str = "never") -> MethodReturn:
    """Restarted GMRES(m) with left (default, as PETSc's) or right preconditioning.

    The cycles run on :class:`~pdesuite.solvers.arnoldi.ArnoldiCycle` (classical Gram–Schmidt
    as BLAS-2 products over a preallocated ``[m+1, n]`` basis, complex Givens rotations, a
    residual estimate every step, a happy breakdown when the Krylov space becomes invariant).
    ``iterations`` counts inner steps and ``maxiter`` caps them; each restart costs one extra
    matvec for the true residual. ``info``: ``side``, ``cycles``, ``reorthogonalizations``.

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
    - with right or no preconditioning, a cycle that leaves a larger true residual than it
      started from is undone, and the solve ends with DIVERGED_BREAKDOWN (after a happy
      breakdown: A or M is singular on the Krylov space) or DIVERGED_STAGNATION.
    - DIVERGED_STAGNATION when a whole cycle reduces the minimised norm (``‖M r‖`` left,
      ``‖r‖`` right) by less than a factor ``1 − 1e-12``.

    Options:
        restart: the cycle length m (integer ≥ 1, default 40; capped at n).
        side: "left" (default) or "right".
        reorthogonalize: "never" (default: one classical Gram–Schmidt pass, PETSc's default;
            half the memory traffic per step), "ifneeded" (a second pass when the first
            cancelled most of the vector, PETSc's ``refine_ifneeded``: for ill-conditioned or
            long cycles) or "always". Either way convergence is decided on the true residual.
    """
    restart = check_int("restart", restart, 1)
    side = check_choice("side", side, SIDES)
    reorthogonalize = check_reorthogonalize(reorthogonalize)
    return _gmres_cycles(op, b, x, pc, monitor, restart, side, reorthogonalize)


@register_method("fgmres", flexible=True, options=("restart", "reorthogonalize"))
def fgmres(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
           monitor: ConvergenceMonitor, restart: int = DEFAULT_RESTART,
           reorthogonalize: str = "never") -> MethodReturn:
    """Flexible GMRES(m) (Saad 1993): right preconditioning that stores ``zⱼ = M vⱼ``.

    The update ``x += Z y`` uses the stored ``zⱼ``, so the preconditioner may change from
    step to step or be nonlinear (a network, an inner solve). Memory: ``2m+1`` vectors.
    Orthogonalisation, rotations, counting and stopping as right-preconditioned
    :func:`gmres` (the estimate is the true residual norm in exact arithmetic).

    Options:
        restart: the cycle length m (integer ≥ 1, default 40; capped at n).
        reorthogonalize: "never" (default), "ifneeded" or "always", as for :func:`gmres`.
    """
    restart = check_int("restart", restart, 1)
    reorthogonalize = check_reorthogonalize(reorthogonalize)
    return _gmres_cycles(op, b, x, pc, monitor, restart, "flexible", reorthogonalize)


# --------------------------------------------------------------------------------------------
# BiCGStab
# --------------------------------------------------------------------------------------------


@register_method("bicgstab", options=())
def bicgstab(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
             monitor: ConvergenceMonitor) -> MethodReturn:
    """BiCGStab (van der Vorst 1992), right preconditioned, shadow residual ``r̂ = r₀``.

    Two matvecs and two preconditioner applications per iteration; the monitored norm is the
    2-norm of the recurrence residual, and a half step that already meets the target ends
    the solve. DIVERGED_BREAKDOWN when ``ρ = r̂ᴴr`` vanishes (``|ρ| ≤ ε²‖r̂‖‖r‖``: a ρ at the
    level of round-off, ``ε‖r̂‖‖r‖``, is no breakdown, and the iteration recovers from it as
    SciPy's does), when ``r̂ᴴv = 0`` or α is not finite, or when ω = 0 (the next β
    undefined); x is then the last valid iterate, never one computed through the division.
    """
    k, r, rnorm, reason = _start(op, b, x, monitor)
    if reason is not None:
        return x, reason, {}
    dtype = op.dtype
    shadow = r.copy()
    shadow_norm = rnorm
    p = np.empty_like(r)
    rho_old = alpha = omega = 1.0
    v = p  # a placeholder: the first pass rebinds v before the else branch below reads it
    first = True
    while True:
        rho = k.dot(shadow, r)
        if not abs(rho) > k.eps * k.eps * shadow_norm * rnorm:
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
        if not math.isfinite(abs(alpha)):
            return x, Reason.DIVERGED_BREAKDOWN, {}  # r̂ᴴv underflowed (a denormal A)
        k.axpy(-alpha, v, r)  # r now holds s = r − αv
        s_norm = k.norm(r)
        if monitor.is_converged(s_norm):
            k.axpy(alpha, p_hat, x)
            return x, monitor.step(s_norm), {}
        s_hat = _precondition(pc, r, dtype)  # may be r itself: r changes only after its last use
        t = _matvec(op, s_hat)
        tt = k.rdot(t, t)
        omega = k.dot(t, r) / tt if tt > 0 else 0.0
        if not math.isfinite(abs(omega)):
            return x, Reason.DIVERGED_BREAKDOWN, {}
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


@register_method("minres", needs_hermitian=True, options=())
def minres(op: Operator, b: np.ndarray, x: np.ndarray, pc: CountingPreconditioner,
           monitor: ConvergenceMonitor) -> MethodReturn:
    """Preconditioned MINRES (Paige & Saunders 1975) for Hermitian, possibly indefinite A.

    M must be Hermitian positive definite: Lanczos runs in the inner product defined by M,
    and a non-positive ``uᴴMu`` stops the solve with DIVERGED_INDEFINITE_PC. MINRES
    minimises ``‖b − A x‖_M = sqrt(rᴴMr)``; that norm, multiplied by ``‖r₀‖ / ‖r₀‖_M``, is
    what goes to ``monitor.step`` (for no preconditioner it is the 2-norm itself). A
    convergence that the true residual does not confirm is continued by ``solve``. One
    matvec and one preconditioner application per iteration.

    A singular, inconsistent system (b not in the range of A) has no solution; MINRES then
    ends with DIVERGED_BREAKDOWN at a least-squares solution, as soon as either the Krylov
    space becomes invariant (``β_{k+1} ≤ 16 ε ‖T‖``, with ``‖T‖`` the Frobenius norm of the
    tridiagonal matrix so far, an estimate of ``‖A‖``) or the residual lies in the null space
    to working precision (``‖A r‖ ≤ 10 ε ‖T‖ ‖r‖``, the test of SciPy's ``minres``, estimated
    from the rotations without a product).
    """
    k, r, rnorm, reason = _start(op, b, x, monitor)
    if reason is not None:
        return x, reason, {}
    dtype = op.dtype
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
    t_norm_sq = 0.0  # ‖T_k‖_F², the estimate of ‖A‖²
    # squared tolerances, so that the loop takes no square roots for them
    invariant_tol_sq = (BREAKDOWN_FACTOR * k.eps) ** 2
    null_space_tol_sq = (10.0 * k.eps) ** 2
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
        t_norm_sq += alpha * alpha + beta * beta + beta_next_sq
        # Column k of the tridiagonal matrix is (β_k, α_k, β_{k+1}) in rows k−1, k, k+1;
        # apply the two previous rotations, then make the one that zeroes β_{k+1}.
        epsilon = s_prev2 * beta
        top = c_prev2 * beta
        delta = c_prev * top + s_prev * alpha
        gamma_bar = c_prev * alpha - s_prev * top
        # ‖A r_{k−1}‖² / ‖r_{k−1}‖² from the rotations (SciPy's "root", squared).
        null_space_ratio_sq = gamma_bar * gamma_bar + (c_prev * beta_next) ** 2
        invariant = beta_next_sq <= invariant_tol_sq * t_norm_sq
        if invariant:
            beta_next = 0.0
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
        if invariant or null_space_ratio_sq <= null_space_tol_sq * t_norm_sq:
            # The Krylov space is invariant, or r is in the null space: x is a least-squares
            # solution and b is not in the range of A.
            return x, Reason.DIVERGED_BREAKDOWN, {"least_squares": True}
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
    omega = check_real("omega", omega, nonzero=True)
    k, r, _, reason = _start(op, b, x, monitor)
    if reason is not None:
        return x, reason, {}
    while True:
        k.axpy(omega, _precondition(pc, r, op.dtype), x)
        r = _residual(op, b, x)
        reason = monitor.step(k.norm(r))
        if reason is not None:
            return x, reason, {}
