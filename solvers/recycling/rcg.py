"""Recycling (deflated) CG (Saad, Yeung, Erhel, Guyomarc'h 2000) for Hermitian positive
definite sequences.

The search directions are kept A-orthogonal to a space ``W``, and after every solve ``W`` is
replaced by Ritz vectors of ``M A`` (in the A inner product) over ``[W, p_0 … p_{ℓ−1}]``, built
from the CG coefficients without extra products with A.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import scipy.linalg as sla

from pdesuite.solvers.reduction import LOCAL_REDUCTION, Reduction, reduction_of
from pdesuite.solvers.recycling.space import (
    RecycleSpace,
    accumulate,
    check_recycle,
    check_stale_threshold,
    previous_solutions,
    products,
    record_reset,
    same_operator_by_probe,
    measure_slowness,
    stale_reason,
    store_solution,
    stretch_growth,
    truncate,
    within_solve,
)
from pdesuite.solvers.registry import register_method
from pdesuite.solvers.result import ConvergedReason
from pdesuite.solvers.validation import check_int
from pdesuite.solvers.vocabulary import method_default


@register_method(
    "rcg",
    flexible=False,
    needs_hermitian=True,
    options=("k", "ell", "recycle", "stale_threshold"),
    description="recycling (deflated) CG for Hermitian positive definite sequences",
)
def rcg(op, b, x, pc, monitor, k: int = method_default("rcg", "k"),
        ell: Optional[int] = method_default("rcg", "ell"), recycle: Optional[RecycleSpace] = None,
        stale_threshold: float = method_default("rcg", "stale_threshold")):
    """Deflated preconditioned CG with a recycled space ``W``; a registered method.

    ``x0 ← x0 + W (WᴴAW)⁻¹ Wᴴ r0``, and every direction is made A-orthogonal to ``W``:
    ``p = z + β p − W (WᴴAW)⁻¹ (AW)ᴴ z``. After the solve the ``k`` Ritz vectors of ``M A``
    (in the A inner product) with the smallest Ritz values over ``[W, p_0 … p_{ℓ−1}]`` become
    the new ``W``. The projected matrices come from quantities CG computes anyway: ``Pᴴ A P``
    is diagonal, ``Wᴴ A P = 0``, ``(AP)ᴴ M (AP)`` is the tridiagonal of the CG coefficients,
    and ``(AW)ᴴ M A P`` follows from ``(AW)ᴴ z_j``; only ``M A W`` costs ``k`` applications
    of M per solve.

    Args (options of ``solve(..., method="rcg")``):
        k: recycled dimension, >= 0 (default 20; 0 is plain preconditioned CG).
        ell: number of leading CG directions kept for the update (default ``max(2k, 30)``;
            memory ``2 ℓ n``). More directions give better Ritz vectors: on a 2-D diffusion
            sequence ℓ = 2k came within 10% of deflating exact eigenvectors.
        recycle: a :class:`RecycleSpace`; ``None`` deflates nothing.
        stale_threshold: a stored ``W`` whose slowness under the new ``M A`` exceeds this
            (default 0.7) is dropped if the new ``A`` also stretches it more than
            :data:`STALE_GROWTH` times as much as the old one did (the growth is measured
            under ``A``, whose old images are stored: a change of preconditioner alone never
            drops the space). See the module docstring.

    A non-positive ``pᴴAp`` (or a ``WᴴAW`` with a negative eigenvalue) ends with
    DIVERGED_INDEFINITE_MAT, a non-positive ``rᴴ M r`` with DIVERGED_INDEFINITE_PC.
    ``info``: ``recycle_dim``, ``recycle_reset``, ``reason_reset``, ``recycle_slowness``,
    ``recycle_growth``, ``projection_reduction``, ``recycle_matvecs``.
    """
    space, carried = within_solve(monitor, check_recycle(recycle), private=False)
    x, reason, info = _rcg(op, b, x, pc, monitor, k, ell, space, stale_threshold)
    accumulate(info, carried, ("recycle_matvecs",))
    return x, reason, info


def _establish_rcg(space, op, pc, dtype, n, real, stale_threshold, info, red):
    """``(W, A W, M A W)`` with ``WᴴAW = I`` for this matrix, or ``None`` when dropped.

    ``"indefinite"`` when ``WᴴAW`` has a negative eigenvalue (A is not positive definite).
    """
    reset_reason = space._incompatibility("rcg", n, real, red)
    if reset_reason is None:
        w_rows = space.basis.astype(dtype, copy=True)
        matches = space._matches(op, pc, None)
        if not matches and space.same_operator_hint and space.image_rows is not None:
            matches = same_operator_by_probe(space, op.matvec, dtype, red)
            info["recycle_matvecs"] += 1
        if matches:
            aw_rows = space.image_rows.astype(dtype, copy=True)
        else:
            aw_rows = products(op.matvec, w_rows)
            info["recycle_matvecs"] += w_rows.shape[0]
        maw_rows = (
            aw_rows if pc.is_identity else products(pc.apply, aw_rows).astype(dtype, copy=False)
        )
        if not matches:
            # slowness under M A, the operator whose small eigenvalues W deflates
            slowness = measure_slowness(
                w_rows, maw_rows, lambda v: pc.apply(op.matvec(v)), n, dtype, red
            )
            info["recycle_matvecs"] += 1
            info["recycle_slowness"] = slowness
            # growth under A itself: the old A W is stored, the new one was just computed
            growth = stretch_growth(aw_rows, space.image_rows, red)
            info["recycle_growth"] = growth
            reset_reason = stale_reason(slowness, growth, stale_threshold)
    if reset_reason is None:
        gram = red.gram(w_rows, aw_rows, real)
        gram = 0.5 * (gram + np.conj(gram.T))
        finite = bool(np.all(np.isfinite(gram)))
        lam, vectors = np.linalg.eigh(gram) if finite else (np.array([np.nan]), None)
        top = float(np.max(np.abs(lam)))
        if not finite or not np.isfinite(lam).all() or top == 0.0:
            reset_reason = "the matrix maps the stored space to zero (or to NaN/Inf)"
        elif lam[0] < -1e-8 * top:
            space._drop_space()
            info["recycle_reset"] = True
            info["reason_reset"] = "WᴴAW has a negative eigenvalue: A is not positive definite"
            return "indefinite"
    if record_reset(space, info, reset_reason, op, pc, None):
        return None
    keep = lam > 1e-10 * top
    transform = (vectors[:, keep] / np.sqrt(lam[keep])).astype(dtype)
    maw_rows = transform.T @ maw_rows
    return transform.T @ w_rows, transform.T @ aw_rows, maw_rows


def default_ell(k: int) -> int:
    """The number of CG directions kept for the Ritz update when ``ell`` is None: ``max(2k, 30)``
    (on a 2-D diffusion sequence ℓ = 2k came within 10% of deflating exact eigenvectors)."""
    return max(2 * k, 30)


def check_rcg_options(k: Any = 20, ell: Any = None, stale_threshold: Any = 0.7) -> dict[str, Any]:
    """rcg's options in their canonical types; a ValueError naming the first bad one. The one
    check of ``solve``, ``RecyclingSolver`` and the PETSc KSP."""
    return {"k": check_int("k", k, 0), "ell": None if ell is None else check_int("ell", ell, 1),
            "stale_threshold": check_stale_threshold(stale_threshold)}


def _rcg(op, b, x, pc, monitor, k, ell, space, stale_threshold):
    options = check_rcg_options(k, ell, stale_threshold)
    k, stale_threshold = options["k"], options["stale_threshold"]
    ell = default_ell(k) if options["ell"] is None else options["ell"]
    n, dtype = op.n, op.dtype
    real = dtype.kind == "f"
    info: dict[str, Any] = {"recycle_dim": 0, "recycle_reset": False, "reason_reset": None,
                            "recycle_slowness": None, "recycle_growth": None,
                            "projection_reduction": None,
                            "recycle_matvecs": 0}

    red = reduction_of(op)
    r = b - op.matvec(x)
    r_norm = red.norm(r)
    if monitor.is_converged(r_norm):
        info["recycle_dim"] = space.dim if space is not None else 0
        return x, monitor.start(r_norm), info

    w_rows = aw_rows = maw_rows = None
    retry = space is not None and space._matches(op, pc, None)
    if space is not None and space.dim > 0:
        if k > 0:
            if space.dim > k:
                truncate(space, k)
            established = _establish_rcg(space, op, pc, dtype, n, real, stale_threshold, info, red)
            if isinstance(established, str):
                monitor.start(r_norm)
                return x, ConvergedReason.DIVERGED_INDEFINITE_MAT, info
            if established is not None:
                w_rows, aw_rows, maw_rows = established
        else:
            space._drop_space()
    kw = 0 if w_rows is None else w_rows.shape[0]

    # ---- initial projections: Galerkin onto W (WᴴAW = I), then the stored solutions ------
    before = r_norm
    if kw:
        coefficients = red.dot_rows(w_rows, r, real)
        x += coefficients @ w_rows
        r -= coefficients @ aw_rows
    previous = None if retry else previous_solutions(space, n, dtype, red)
    if previous is not None:
        images = products(op.matvec, previous)
        info["recycle_matvecs"] += previous.shape[0]
        if kw:
            along_w = np.conj(red.gram(images, w_rows, real))  # [s, kw]: w_jᴴ A x_i
            previous -= along_w @ w_rows
            images -= along_w @ aw_rows
        gram = red.gram(previous, images, real)
        gram = 0.5 * (gram + np.conj(gram.T))
        if np.all(np.isfinite(gram)):
            lam, vectors = np.linalg.eigh(gram)
            keep = lam > 1e-12 * float(np.max(np.abs(lam)))
            if np.any(keep):
                # A-orthonormal combinations; a direction of negative energy is left to CG
                transform = (vectors[:, keep] / np.sqrt(lam[keep])).astype(dtype)
                previous = transform.T @ previous
                images = transform.T @ images
                coefficients = red.dot_rows(previous, r, real)
                x += coefficients @ previous
                r -= coefficients @ images
    r_norm = red.norm(r)
    info["projection_reduction"] = r_norm / before if before > 0 else None
    reason = monitor.start(r_norm)
    if reason is None:
        reason, w_rows, aw_rows = _deflated_cg(op, pc, monitor, x, r, w_rows, aw_rows, maw_rows,
                                               k if space is not None else 0, ell, dtype, real,
                                               red)
    if space is not None:
        _store_rcg_space(space, w_rows, aw_rows, op, pc, info)
        store_solution(space, x, red, replace_last=retry)
    return x, reason, info


def _deflated_cg(op, pc, monitor, x, r, w_rows, aw_rows, maw_rows, k, ell, dtype, real, red):
    """Deflated PCG from ``r`` (``Wᴴ r = 0``); returns ``(reason, W, AW)``, updating ``x``."""
    kw = 0 if w_rows is None else w_rows.shape[0]
    collect = k > 0
    z = np.asarray(pc.apply(r), dtype=dtype)
    # rᴴz and (AW)ᴴz together: one reduction per step under MPI
    rho, g = red.dot_and_rows(r, z, aw_rows if kw else None, real)
    rho = float(np.real(rho))
    if not math.isfinite(rho):
        return ConvergedReason.DIVERGED_NAN_OR_INF, w_rows, aw_rows
    if not rho > 0:
        return ConvergedReason.DIVERGED_INDEFINITE_PC, w_rows, aw_rows
    if kw:
        p = z - g @ w_rows
    else:
        p = np.array(z, dtype=dtype, copy=True)
    # what the Ritz update needs: p_j, A p_j (j < ell), α_j, pᴴAp, ρ_j and g_j = (AW)ᴴ z_j
    kept_p: list[np.ndarray] = []
    kept_ap: list[np.ndarray] = []
    alphas: list[float] = []
    deltas: list[float] = []
    rhos: list[float] = [rho]
    gs: list[np.ndarray] = [g] if kw else []
    while True:
        q = op.matvec(p)
        delta = float(np.real(red.dot(p, q)))
        if not math.isfinite(delta):
            reason = ConvergedReason.DIVERGED_NAN_OR_INF
            break
        if not delta > 0:
            reason = ConvergedReason.DIVERGED_INDEFINITE_MAT
            break
        alpha = rho / delta
        if collect and len(kept_p) < ell:
            kept_p.append(p.copy())
            kept_ap.append(np.array(q, dtype=dtype, copy=True))
            deltas.append(delta)
            alphas.append(alpha)
        x += alpha * p
        r -= alpha * q
        reason = monitor.step(red.norm(r))
        if reason is not None:
            break
        z = np.asarray(pc.apply(r), dtype=dtype)
        rho_next, g_next = red.dot_and_rows(r, z, aw_rows if kw else None, real)
        rho_next = float(np.real(rho_next))
        if not math.isfinite(rho_next):
            reason = ConvergedReason.DIVERGED_NAN_OR_INF
            break
        if not rho_next > 0:
            reason = ConvergedReason.DIVERGED_INDEFINITE_PC
            break
        p *= rho_next / rho
        p += z
        rho = rho_next
        if collect and len(rhos) <= ell:
            rhos.append(rho)
        if kw:
            g = g_next
            p -= g @ w_rows
            if collect and len(gs) <= ell:
                gs.append(g)
    if collect:
        updated = _rcg_ritz_update(w_rows, aw_rows, maw_rows, kept_p, kept_ap, alphas, deltas,
                                   rhos, gs, k, real, dtype, red)
        if updated is not None:
            w_rows, aw_rows = updated
    return reason, w_rows, aw_rows


def _rcg_ritz_update(w_rows, aw_rows, maw_rows, kept_p, kept_ap, alphas, deltas, rhos, gs, k,
                     real, dtype, red: Reduction = LOCAL_REDUCTION):
    """Ritz vectors of ``M A`` in the A inner product over ``S = [W, P]``: the new ``(W, AW)``.

    ``Sᴴ A S = diag(I, pⱼᴴApⱼ)``. ``Sᴴ A M A S`` from the CG coefficients, with
    ``A pⱼ = (rⱼ − rⱼ₊₁)/αⱼ``, ``M A pⱼ = (zⱼ − zⱼ₊₁)/αⱼ`` and ``rᵢᴴ zⱼ = δᵢⱼ ρⱼ``: a
    tridiagonal ``P`` block with diagonal ``(ρⱼ + ρⱼ₊₁)/αⱼ²`` and off-diagonal
    ``−ρⱼ₊₁/(αⱼ αⱼ₊₁)``, and ``(AW)ᴴ M A pⱼ = (gⱼ − gⱼ₊₁)/αⱼ``. The ``k`` smallest Ritz values
    are kept; their vectors are A-orthonormal.
    """
    kw = 0 if w_rows is None else w_rows.shape[0]
    # column j needs ρⱼ₊₁ (and gⱼ₊₁): only steps that CG carried one step further
    usable = min(len(kept_p), len(rhos) - 1)
    if kw:
        usable = min(usable, len(gs) - 1)
    if usable <= 0:
        return None
    size = kw + usable
    dense = np.float64 if real else np.complex128
    stiffness = np.zeros((size, size), dtype=dense)  # Sᴴ A M A S
    mass = np.zeros((size, size), dtype=dense)  # Sᴴ A S
    alpha = np.asarray(alphas[:usable])
    rho = np.asarray(rhos[:usable + 1])
    if kw:
        kww = red.gram(aw_rows, maw_rows, real)
        stiffness[:kw, :kw] = 0.5 * (kww + np.conj(kww.T))
        mass[:kw, :kw] = np.eye(kw)
        g = np.column_stack(gs[:usable + 1])  # [kw, usable + 1]
        cross = (g[:, :usable] - g[:, 1:]) / alpha
        stiffness[:kw, kw:] = cross
        stiffness[kw:, :kw] = np.conj(cross.T)
    off = -rho[1:usable] / (alpha[:-1] * alpha[1:])
    stiffness[kw:, kw:] = (np.diag((rho[:usable] + rho[1:]) / alpha**2)
                           + np.diag(off, 1) + np.diag(off, -1))
    mass[kw:, kw:] = np.diag(np.asarray(deltas[:usable]))
    if not (np.all(np.isfinite(stiffness)) and np.all(np.isfinite(mass))):
        return None
    try:
        _, vectors = sla.eigh(stiffness, mass, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    coeff = vectors[:, :min(k, size)].T.astype(dtype)  # rows: combinations of S
    new_w = coeff[:, kw:] @ np.asarray(kept_p[:usable])
    new_aw = coeff[:, kw:] @ np.asarray(kept_ap[:usable])
    if kw:
        new_w += coeff[:, :kw] @ w_rows
        new_aw += coeff[:, :kw] @ aw_rows
    if not red.all_true(bool(np.all(np.isfinite(new_w)) and np.all(np.isfinite(new_aw)))):
        return None
    return new_w, new_aw


def _store_rcg_space(space: RecycleSpace, w_rows, aw_rows, op, pc, info: dict) -> None:
    space._remember_operator(op, pc, None)
    if w_rows is None or w_rows.shape[0] == 0:
        space._drop_space()
        info["recycle_dim"] = 0
        return
    space.method = "rcg"
    space.basis, space.basis_in_y = w_rows, False
    space.solution_rows = w_rows
    space.image_rows = aw_rows
    space.coupling = None
    info["recycle_dim"] = int(w_rows.shape[0])


