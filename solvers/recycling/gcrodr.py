"""GCRO-DR(m, k) (Parks, de Sturler, Mackey, Johnson, Maiti, SISC 2006).

Keeps ``U, C`` with ``B U = C`` and ``Cᴴ C = I`` for the iteration operator ``B`` (``A M`` with
right preconditioning). Every cycle runs ``m − k`` Arnoldi steps with ``(I − C Cᴴ) B``,
minimises the residual over ``[U V]``, and replaces ``U`` by the ``k`` harmonic Ritz vectors of
smallest magnitude. ``k = 0`` is GMRES(m); without an initial space the first cycle is a
GMRES(m) cycle followed by the harmonic Ritz step of GMRES-DR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import scipy.linalg as sla

from pdesuite.solvers.arnoldi import (
    STAGNATION_FACTOR,
    ArnoldiCycle,
    check_reorthogonalize,
    combine_rows,
)
from pdesuite.solvers.reduction import Reduction, reduction_of
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
from pdesuite.solvers.validation import check_choice, check_int
from pdesuite.solvers.vocabulary import DEFAULT_RESTART, SIDES, method_default

def _select_harmonic(T: np.ndarray, k: int, k_limit: int, real: bool) -> Optional[np.ndarray]:
    """Orthonormal basis ``[mm, k']`` of the eigenvectors of ``T`` with the ``k`` largest ``|μ|``.

    ``μ = 1/θ`` for the harmonic Ritz values ``θ``, so these are the smallest ``|θ|``. For real
    data a complex pair enters through the real and imaginary parts of one vector, so that the
    space stays real; a pair split by the ``k``-th place is kept whole when ``k + 1 <= k_limit``
    and left out otherwise.
    """
    mu, vectors = np.linalg.eig(T)
    magnitude = np.where(np.isfinite(mu), np.abs(mu), 0.0)
    order = np.argsort(-magnitude, kind="stable")
    if not real:
        columns = vectors[:, order[:k]]
    else:
        columns = _real_columns(mu, vectors, order, k, max(k, min(k + 1, k_limit)))
        if columns is None:
            return None
    q, r = np.linalg.qr(columns)
    diag = np.abs(np.diag(r))
    if diag.size == 0 or not np.isfinite(diag).all() or diag.max() == 0:
        return None
    return q[:, diag > 1e-10 * diag.max()]


def _real_columns(mu: np.ndarray, vectors: np.ndarray, order: np.ndarray, k: int,
                  room: int) -> Optional[np.ndarray]:
    """Real columns ``[mm, k']`` spanning the eigenvectors ``vectors`` ``[mm, mm]`` of a real
    matrix taken in ``order`` until ``k`` are picked: a real eigenvector as itself, a complex
    pair as the real and imaginary parts of one of its vectors, kept only when both fit in
    ``room`` columns. ``None`` when nothing is picked."""
    values = mu.tolist()  # Python numbers: the loop below is scalar work
    used = [False] * len(values)
    picked: list[tuple[int, bool]] = []  # (eigenvector, its imaginary part?)
    for index in order.tolist():
        if len(picked) >= k:
            break
        if used[index]:
            continue
        used[index] = True
        value = complex(values[index])
        if value.imag == 0 or abs(value.imag) <= 1e-12 * abs(value):
            picked.append((index, False))
            continue
        partner = int(np.argmin(np.where(used, np.inf, np.abs(mu - value.conjugate()))))
        used[partner] = True
        if len(picked) + 2 <= room:
            picked += [(index, False), (index, True)]
    if not picked:
        return None
    columns = np.empty((vectors.shape[0], len(picked)))
    for position, (index, imaginary) in enumerate(picked):
        columns[:, position] = vectors[:, index].imag if imaginary else vectors[:, index].real
    return columns



@register_method(
    "gcrodr",
    flexible=True,
    options=(
        "restart",
        "k",
        "recycle",
        "side",
        "stale_threshold",
        "reorthogonalize",
        "update_period",
    ),
    description="GCRO-DR(m, k): restarted GMRES with a recycled harmonic Ritz space (Parks et al. "
                "2006)",
)
def gcrodr(op, b, x, pc, monitor, restart: int = DEFAULT_RESTART,
           k: int = method_default("gcrodr", "k"), recycle: Optional[RecycleSpace] = None,
           side: str = method_default("gcrodr", "side"),
           stale_threshold: float = method_default("gcrodr", "stale_threshold"),
           reorthogonalize: str = method_default("gcrodr", "reorthogonalize"),
           update_period: int = method_default("gcrodr", "update_period")):
    """GCRO-DR(m, k) with deflated restarting; a registered method (see ``registry``).

    Args (options of ``solve(..., method="gcrodr")``):
        restart: ``m``, the dimension of the search space of a cycle (recycled + new), >= 1;
            default 40.
        k: recycled dimension, ``0 <= k < m``; ``k = 0`` is GMRES(m). Default 20.
        recycle: a :class:`RecycleSpace` to start from and to leave the new space in; ``None``
            recycles only between the cycles of this solve (GMRES-DR).
        side: ``"right"`` (default; the monitored norm is the true residual norm; flexible:
            the preconditioner may be nonlinear) or ``"left"`` (monitors ``‖M r‖`` scaled by
            ``‖r‖ / ‖M r‖`` at the initial iterate; needs a linear preconditioner).
        stale_threshold: a stored space whose slowness under the new operator exceeds this
            (>= 0; default 0.7) is dropped if the new operator also stretches it more than
            :data:`STALE_GROWTH` times as much as the old one did (see the module docstring).
        reorthogonalize: ``"ifneeded"`` (default): a second classical Gram–Schmidt pass when
            an estimate of the new vector's loss of orthogonality exceeds
            :data:`~pdesuite.solvers.arnoldi.LOSS_TOLERANCE` eps (about one step in ten on
            Darcy, where the DGKS test of ``gmres``'s ``"ifneeded"`` fires at nearly every
            step; see :meth:`~pdesuite.solvers.arnoldi.ArnoldiCycle.extend`), ``"always"``
            (CGS2) or ``"never"`` (one pass, as PETSc's GMRES and this library's ``gmres``).
            One pass is not safe: on the Helmholtz sequence with ILU (k0 = 10, rtol 1e-5)
            its third system stagnates where the default needs 107 iterations (a test).
        update_period: refresh the recycled space (the harmonic Ritz step, about as costly as
            the ``m − k`` Arnoldi steps of a cycle when the preconditioner is cheap) every
            ``update_period`` cycles, >= 1 (default 1, the method of Parks et al.). The space
            is always refreshed while it holds fewer than ``k`` vectors and after the last
            cycle of a solve, so that the next system starts from the newest space. Skipped
            refreshes keep the method exact (GCRO with a fixed space for those cycles).
            ``benchmarks/bench_gcrodr_options.py`` measures the trade-off: a longer period
            pays when the preconditioner is cheap and solves take many cycles; with ILU,
            where a solve takes a few cycles, period 1 is faster.

    Returns ``(x, reason, info)``; ``info`` holds ``recycle_dim`` (after the solve),
    ``recycle_reset`` and ``reason_reset``, ``recycle_slowness`` and ``recycle_growth`` (None
    unless a stored space was re-established for a new operator),
    ``projection_reduction`` (‖r‖ after ÷ before the initial projection),
    ``recycle_matvecs`` (products spent on the stored space and solutions, part of
    ``matvecs``), ``cycles``, ``recycle_updates`` (harmonic Ritz refreshes) and
    ``reorthogonalizations`` (second passes).
    """
    space, carried = within_solve(monitor, check_recycle(recycle), private=True)
    x, reason, info = _gcrodr(op, b, x, pc, monitor, restart, k, space, side, stale_threshold,
                              reorthogonalize, update_period)
    accumulate(info, carried, ("cycles", "recycle_updates", "reorthogonalizations",
                                "recycle_matvecs"))
    return x, reason, info


class _GcrodrSpace:
    """The recycle space of one solve: ``B U_x = C`` (``U_x`` in x-space), ``Cᴴ C = I``.

    Rows ``[k, n]``: ``c_rows`` (C), ``u_x``, and ``u_y`` (with ``M u_y = u_x``) for a linear
    right preconditioner, where the harmonic Ritz problem lives in y; ``coupling = Cᴴ U_s``
    ``[k, k]`` with ``U_s`` (:attr:`search_rows`) = ``u_y`` when it exists, else ``u_x``.
    ``search_norms`` ``[k]``: the row norms of ``U_s`` when known (the refresh computes them
    while checking its result), else ``None``.
    """

    def __init__(self, c_rows, u_x, u_y, coupling, search_norms=None):
        self.c_rows, self.u_x, self.u_y, self.coupling = c_rows, u_x, u_y, coupling
        self.search_norms: Optional[np.ndarray] = search_norms

    @property
    def dim(self) -> int:
        return self.c_rows.shape[0]

    @property
    def search_rows(self) -> np.ndarray:
        return self.u_y if self.u_y is not None else self.u_x

    def row_scale(self, red: Reduction) -> np.ndarray:
        """``1 / ‖uᵢ‖`` ``[k]`` over the search rows (their norms computed once)."""
        if self.search_norms is None:
            self.search_norms = red.row_norms(self.search_rows)
        return 1.0 / self.search_norms


@dataclass
class _Run:
    """What one GCRO-DR solve fixes at its start, shared by its steps."""

    op: Any
    pc: Any
    monitor: Any
    m: int
    k: int
    update_period: int
    side: str
    info: dict
    reduction: Reduction
    #: apply the preconditioner on the left (``B = M A``) or on the right (``B = A M``)
    left: bool
    right: bool
    #: a linear right preconditioner: the space lives in y (x = M y), where A M acts, and
    #: the harmonic Ritz problem is exact. A nonlinear one leaves only x-space vectors.
    track_y: bool
    #: ‖r‖ / ‖M r‖ at the start (left preconditioning), so that the monitor sees true norms
    monitor_scale: float = 1.0

    @property
    def dtype(self) -> np.dtype:
        return self.op.dtype

    @property
    def real(self) -> bool:
        return self.op.dtype.kind != "c"

    def apply_operator(self, v: np.ndarray) -> np.ndarray:
        """``A v``, or ``M A v`` for left preconditioning (``v`` in x-space)."""
        w = self.op.matvec(v)
        return np.asarray(self.pc.apply(w), dtype=self.dtype) if self.left else w


def check_gcrodr_options(restart: Any = DEFAULT_RESTART, k: Any = 20, side: Any = "right",
                         stale_threshold: Any = 0.7, reorthogonalize: Any = "ifneeded",
                         update_period: Any = 1) -> dict[str, Any]:
    """GCRO-DR's options in their canonical types (``0 <= k < restart``); a ValueError naming
    the first bad one. The one check of ``solve``, ``RecyclingSolver`` and the PETSc KSP."""
    restart = check_int("restart", restart, 1)
    k = check_int("k", k, 0)
    if k >= restart:
        raise ValueError(f"k: must be smaller than restart={restart}, got k={k}")
    return {"restart": restart, "k": k, "side": check_choice("side", side, SIDES),
            "stale_threshold": check_stale_threshold(stale_threshold),
            "reorthogonalize": check_reorthogonalize(reorthogonalize),
            "update_period": check_int("update_period", update_period, 1)}


def _gcrodr(op, b, x, pc, monitor, restart, k, space, side, stale_threshold, reorthogonalize,
            update_period):
    options = check_gcrodr_options(restart, k, side, stale_threshold, reorthogonalize,
                                   update_period)
    m, k, side = options["restart"], options["k"], options["side"]
    stale_threshold, reorthogonalize = options["stale_threshold"], options["reorthogonalize"]
    update_period = options["update_period"]
    if side == "left" and not pc.linear:
        raise ValueError("side: 'left' needs a linear preconditioner; use side='right' with a "
                         "nonlinear one (GCRO-DR is flexible with right preconditioning)")

    red = reduction_of(op)
    info: dict[str, Any] = {"recycle_dim": 0, "recycle_reset": False, "reason_reset": None,
                            "recycle_slowness": None, "recycle_growth": None,
                            "projection_reduction": None,
                            "recycle_matvecs": 0, "cycles": 0, "recycle_updates": 0,
                            "reorthogonalizations": 0}
    right = side == "right" and not pc.is_identity
    run = _Run(op, pc, monitor, m, k, update_period, side, info, red,
               left=side == "left" and not pc.is_identity, right=right,
               track_y=right and pc.linear)
    n, dtype = op.n, run.dtype

    r = b - op.matvec(x)
    if run.left:
        # The monitor sees ‖M r‖ rescaled by ‖r‖/‖M r‖ at the current iterate, so that the api's
        # true-residual retry starts with a ratio measured where the last attempt stopped.
        true_norm = red.norm(r)
        r = np.asarray(pc.apply(r), dtype=dtype)
        mr_norm = red.norm(r)
        run.monitor_scale = true_norm / mr_norm if mr_norm > 0 else 1.0
    else:
        r0_norm = red.norm(r)
        if monitor.is_converged(r0_norm):
            # nothing to do: spend no products on the space
            info["recycle_dim"] = space.dim
            return x, monitor.start(r0_norm), info

    retry = space._matches(op, pc, side)  # the api's true-residual retry of this very solve
    if k == 0:
        space._drop_space()  # GMRES(m): no recycled space, whatever a previous solve left
    elif space.dim > min(k, m - 1):
        truncate(space, min(k, m - 1))  # k or m got smaller: keep the leading vectors
    rec = _establish_gcrodr(run, space, stale_threshold)

    # ---- initial projection: x += U Cᴴ r, r −= C Cᴴ r, then the stored solutions ----------
    before = red.norm(r)
    # (a retry's x has been through this projection already)
    previous = None if retry else previous_solutions(space, n, dtype, red)
    _initial_projection(run, rec, previous, x, r)
    beta = red.norm(r)
    info["projection_reduction"] = beta / before if before > 0 else None
    reason = monitor.start(beta * run.monitor_scale)
    if reason is None:
        cycle = ArnoldiCycle(m, n, dtype, reorthogonalize, red, estimate_loss=True)
        reason, rec = _gcrodr_cycles(run, cycle, x, r, beta, rec)
        info["reorthogonalizations"] = cycle.reorthogonalizations
    _store_gcrodr_space(run, space, rec)
    store_solution(space, x, red, replace_last=retry)
    return x, reason, info


def _initial_projection(run: _Run, rec: Optional[_GcrodrSpace], previous: Optional[np.ndarray],
                        x: np.ndarray, r: np.ndarray) -> None:
    """The minimal residual correction over ``span(U)`` and the stored solutions ``[s, n]``;
    updates ``x`` and ``r`` ``[n]`` in place.

    Every projection against ``C`` runs twice (classical Gram–Schmidt with one
    reorthogonalisation): a good space leaves little of ``r``, or of the images of the
    stored solutions, and one pass would leave the cycles' first vector far from orthogonal
    to ``C`` (on FE Poisson with ILU that stalled the second solve of a sequence).
    """
    red, real = run.reduction, run.real
    if rec is not None:
        for _ in range(2):
            coefficients = red.dot_rows(rec.c_rows, r, real)
            x += coefficients @ rec.u_x
            r -= coefficients @ rec.c_rows
    if previous is None:
        return
    images = products(run.apply_operator, previous)
    run.info["recycle_matvecs"] += previous.shape[0]
    if rec is not None:
        for _ in range(2):
            along_c = np.conj(red.gram(images, rec.c_rows, real))  # [s, kc]: c_jᴴ B x_i
            images -= along_c @ rec.c_rows
            previous -= along_c @ rec.u_x
    established = red.orthonormalize(images, [previous])
    if established is not None:
        q_rows, (previous,) = established
        coefficients = red.dot_rows(q_rows, r, real)
        x += coefficients @ previous
        r -= coefficients @ q_rows


def _establish_gcrodr(
    run: _Run, space: RecycleSpace, stale_threshold: float
) -> Optional[_GcrodrSpace]:
    """The stored space made valid for this operator (or dropped, with the reason in info)."""
    op, pc, side, info, red = run.op, run.pc, run.side, run.info, run.reduction
    n, dtype, real, track_y, right = op.n, run.dtype, run.real, run.track_y, run.right
    apply_operator = run.apply_operator
    if space.dim == 0:
        space._reset_of_current = None
        return None
    reset_reason = space._incompatibility("gcrodr", n, real, red)
    rec = None
    if reset_reason is None:
        matches = space._matches(op, pc, side)
        if not matches and space.same_operator_hint and space.image_rows is not None:
            matches = same_operator_by_probe(space, apply_operator, dtype, red)
            info["recycle_matvecs"] += 1
        if matches:
            u_y = space.basis.astype(dtype, order="C") if (track_y and space.basis_in_y) else None
            coupling = space.coupling if (u_y is not None or not right) else None
            rec = _GcrodrSpace(space.image_rows.astype(dtype, order="C"),
                               space.solution_rows.astype(dtype, order="C"), u_y, coupling)
        else:
            stored = space.basis.astype(dtype, copy=True)
            u_y = stored if track_y else None
            u_x = products(pc.apply, stored).astype(dtype, copy=False) if track_y else stored
            image = products(apply_operator, u_x)
            info["recycle_matvecs"] += u_x.shape[0]
            # the slowness on the space the operator acts on: B = A M on y, A (or M A) on x
            probe_operator = (lambda v: op.matvec(pc.apply(v))) if track_y else apply_operator
            slowness = measure_slowness(
                u_y if track_y else u_x, image, probe_operator, n, dtype, red
            )
            info["recycle_matvecs"] += 1
            info["recycle_slowness"] = slowness
            growth = stretch_growth(image, space.image_rows, red)
            info["recycle_growth"] = growth
            established = None
            reset_reason = stale_reason(slowness, growth, stale_threshold)
            if reset_reason is None:
                established = red.orthonormalize(image, [u_x, u_y])
                if established is None:
                    reset_reason = "the operator maps the stored space to zero (or to NaN/Inf)"
            if established is not None:
                c_rows, follow = established
                # C-ordered rows: the cycles' BLAS products read them without a copy
                u_x, u_y = (None if rows is None else np.ascontiguousarray(rows) for rows in follow)
                exact = u_y is not None or not right
                coupling = (
                    red.gram(c_rows, u_y if u_y is not None else u_x, real) if exact else None
                )
                rec = _GcrodrSpace(c_rows, u_x, u_y, coupling)
    if record_reset(space, info, reset_reason, op, pc, side):
        return None
    return rec


def _gcrodr_cycles(run: _Run, cycle: ArnoldiCycle, x: np.ndarray, r: np.ndarray, beta: float,
                   rec: Optional[_GcrodrSpace]) -> tuple[ConvergedReason, Optional[_GcrodrSpace]]:
    """The GCRO-DR cycles from the residual ``r`` ``[n]`` (norm ``beta``); updates ``x`` in place.

    Each cycle runs Arnoldi with ``(I − C Cᴴ) B`` (the recycled ``C`` as the cycle's fixed
    rows), minimises the residual over ``[U V]`` and refreshes the space.
    """
    op, pc, monitor, info, red = run.op, run.pc, run.monitor, run.info, run.reduction
    dtype = run.dtype
    z_rows = np.empty((run.m, op.n), dtype=dtype) if run.right else None  # M v_j
    stagnant_cycles = 0
    count = 0
    while True:
        info["cycles"] += 1
        count += 1
        kc = 0 if rec is None else rec.dim
        cycle.begin(r, beta, None if rec is None else rec.c_rows)
        reason = None
        breakdown = False
        for j in range(cycle.capacity):
            if run.right:
                z_rows[j] = pc.apply(cycle.vector(j))
                w = op.matvec(z_rows[j])
            else:
                w = run.apply_operator(cycle.vector(j))
            estimate, breakdown = cycle.extend(np.asarray(w, dtype=dtype))
            reason = monitor.step(estimate * run.monitor_scale)
            if reason is not None or breakdown:
                break
        if reason is ConvergedReason.DIVERGED_NAN_OR_INF:
            return reason, rec  # the last update would be garbage; keep the last x

        # least squares over [U V]: y_V from the triangle, then y_U = −(Cᴴ B V) y_V
        done = cycle.steps
        y_v = cycle.coefficients()
        if not np.all(np.isfinite(y_v)):
            return ConvergedReason.DIVERGED_NAN_OR_INF, rec
        cycle.add_combination(z_rows[:done] if run.right else cycle.basis[kc:kc + done], y_v, x)
        if kc:
            cycle.add_combination(rec.u_x, -(cycle.hessenberg[:kc, :done] @ y_v), x)
        finished = reason is not None
        if not finished:
            r = cycle.residual_vector(y_v)

        refresh = finished or count % run.update_period == 0 or (rec is None or rec.dim < run.k)
        if run.k > 0 and refresh:
            info["recycle_updates"] += 1
            updated = _gcrodr_harmonic_update(run, cycle, z_rows, rec)
            if updated is not None:
                rec = updated

        if finished:
            return reason, rec
        new_beta = red.norm(r)
        if not math.isfinite(new_beta):
            return ConvergedReason.DIVERGED_NAN_OR_INF, rec
        no_progress = new_beta > STAGNATION_FACTOR * beta
        if breakdown and no_progress:
            # an invariant Krylov space on which the projected operator is singular
            return ConvergedReason.DIVERGED_BREAKDOWN, rec
        # Two whole cycles in a row without progress: the projected operator is singular on
        # the residual, and further restarts would repeat them.
        stagnant_cycles = stagnant_cycles + 1 if no_progress else 0
        if stagnant_cycles >= 2:
            return ConvergedReason.DIVERGED_STAGNATION, rec
        beta = new_beta


def _gcrodr_harmonic_update(run: _Run, cycle: ArnoldiCycle, z_rows: Optional[np.ndarray],
                            rec: Optional[_GcrodrSpace]) -> Optional[_GcrodrSpace]:
    """The harmonic Ritz step: the new space from the cycle just finished, or ``None``.

    With ``W = [Ũ V_j]`` (``Ũ = U D``, unit columns), ``B W = V̂ Ḡ`` where ``V̂ = [C V_{j+1}]``
    and ``Ḡ = [[D, Cᴴ B V_j], [0, H̄_j]]``. The harmonic Ritz vectors ``W z`` solve
    ``ḠᴴḠ z = θ Ḡᴴ V̂ᴴ W z``, i.e. ``Ḡ⁺ V̂ᴴ W z = z / θ``; keeping the ``k`` smallest ``|θ|``
    in ``P``: ``[Q, R] = qr(Ḡ P)``, ``C ← V̂ Q``, ``U ← W P R⁻¹``, and ``Cᴴ U`` for the next
    cycle is ``Qᴴ (V̂ᴴ W) P R⁻¹`` without touching long vectors. No products with ``B``: the
    long-vector work is ``V_{j+1}ᴴ Ũ`` and the two combinations, each one BLAS-3 product.

    With a nonlinear right preconditioner ``U`` has no y-space form and ``V̂ᴴ Ũ`` is replaced
    by ``[D; 0]``, i.e. ``Ũ ≈ C D`` (the preconditioner taken as ``A⁻¹`` on the recycled
    space), as flexible GCRO-DR does.
    """
    projected = _harmonic_problem(run, cycle, rec)
    if projected is None:
        return None
    g, vhw, scale = projected
    mm = g.shape[1]
    picked = _harmonic_coefficients(g, vhw, min(run.k, mm), min(mm, run.m - 1), run.real)
    if picked is None:
        return None
    q, coeff = picked
    exact = rec is None or rec.dim == 0 or rec.coupling is not None
    # a nonlinear preconditioner: the next update is the flexible one too
    exact = exact and (z_rows is None or run.track_y)
    coupling = (np.conj(q.T) @ vhw @ coeff.T) if exact else None
    new = _combine_rows(run, cycle, z_rows, rec, q, coeff, scale)
    if new is None:
        return None
    c_rows, u_x, u_y, search_norms = new
    return _GcrodrSpace(c_rows, u_x, u_y, coupling, search_norms)


def _harmonic_problem(run: _Run, cycle: ArnoldiCycle, rec: Optional[_GcrodrSpace]):
    """``(Ḡ, V̂ᴴW, 1/‖uᵢ‖)``: ``Ḡ`` and ``V̂ᴴ W`` ``[mm+1, mm]`` (``mm = kc + steps``) and the
    column scale ``D`` ``[kc]`` of ``Ũ``; ``None`` when not finite.

    The one long-vector product is ``V_{j+1}ᴴ Ũ`` ``[steps+1, kc]`` (BLAS-3); ``Cᴴ Ũ`` is the
    carried coupling, and ``[D; 0]`` stands for ``V̂ᴴ Ũ`` without one (flexible).
    """
    basis, hess, done = cycle.basis, cycle.hessenberg, cycle.steps
    red, real = run.reduction, run.real
    kc = 0 if rec is None else rec.dim
    mm = kc + done
    dense = np.float64 if real else np.complex128
    g = np.zeros((mm + 1, mm), dtype=dense)
    vhw = np.zeros((mm + 1, mm), dtype=dense)
    g[kc:, kc:] = hess[kc:mm + 1, :done]
    vhw[kc:mm, kc:] = np.eye(done)
    scale = np.zeros(0)
    if kc:
        rows = rec.search_rows
        scale = rec.row_scale(red)
        g[:kc, :kc] = np.diag(scale)
        g[:kc, kc:] = hess[:kc, :done]
        if rec.coupling is not None:
            vhw[:kc, :kc] = rec.coupling * scale
            vhw[kc:, :kc] = red.gram(basis[kc:mm + 1], rows, real) * scale
        else:
            vhw[:kc, :kc] = np.diag(scale)
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(vhw))):
        return None
    return g, vhw, scale


def _harmonic_coefficients(g: np.ndarray, vhw: np.ndarray, k: int, k_limit: int,
                           real: bool) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``(Q, (P R⁻¹)ᵀ)`` for ``Ḡ`` and ``V̂ᴴ W`` ``[mm+1, mm]``: ``Q`` ``[mm+1, k']`` and the
    new ``U``'s rows over the rows of ``W`` ``[k', mm]``; ``None`` when degenerate.

    ``Ḡ⁺ V̂ᴴ W`` by a pivoted-QR least-squares solve (``Ḡ`` has full rank unless the cycle broke
    down, where the pivoting still gives a basic solution).
    """
    try:
        T = sla.lstsq(g, vhw, lapack_driver="gelsy", check_finite=False)[0]
        p = _select_harmonic(T, k, k_limit, real)
        if p is None:
            return None
        q, rr = np.linalg.qr(g @ p)
        diagonal = np.abs(np.diag(rr))
        if diagonal.size == 0 or diagonal.min() <= 1e-14 * diagonal.max():
            return None
        # rows of the new U as combinations of the rows of W: (P R⁻¹)ᵀ
        coeff = sla.solve_triangular(rr, p.T, trans="T", check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(coeff))):
        return None
    return q, coeff


def _combine_rows(run: _Run, cycle: ArnoldiCycle, z_rows: Optional[np.ndarray],
                  rec: Optional[_GcrodrSpace], q: np.ndarray, coeff: np.ndarray,
                  scale: np.ndarray):
    """The refreshed rows ``(C, U_x, U_y or None, ‖U_s rows‖)``, each ``[k', n]``, or ``None``
    when ``U`` is not finite.

    ``C = Qᵀ V̂``; ``U = coeff_V V_j + (coeff_U D) U`` with ``Z = M V_j`` in place of ``V_j``
    for ``U_x`` under right preconditioning. Each is one BLAS-3 product per term, written
    into its result.
    """
    basis, done, red = cycle.basis, cycle.steps, run.reduction
    kc = 0 if rec is None else rec.dim
    mm = kc + done
    dtype = basis.dtype
    on_v = np.ascontiguousarray(coeff[:, kc:], dtype=dtype)
    on_u = np.ascontiguousarray(coeff[:, :kc] * scale, dtype=dtype)
    c_rows = combine_rows([(q.T, basis[:mm + 1])], dtype)
    u_x = combine_rows([(on_v, z_rows[:done] if z_rows is not None else basis[kc:mm])]
                       + ([(on_u, rec.u_x)] if kc else []), dtype)
    u_y = None
    if run.track_y and (kc == 0 or rec.u_y is not None):
        u_y = combine_rows([(on_v, basis[kc:mm])] + ([(on_u, rec.u_y)] if kc else []), dtype)
    # the inputs are finite: a non-finite U can only come from an overflow, seen in its norms
    search_norms = red.row_norms(u_y if u_y is not None else u_x)
    finite = np.all(np.isfinite(search_norms))
    if u_y is not None:
        finite = finite and np.all(np.isfinite(red.row_norms(u_x)))
    if not finite:
        return None
    return c_rows, u_x, u_y, search_norms


def _store_gcrodr_space(run: _Run, space: RecycleSpace, rec: Optional[_GcrodrSpace]) -> None:
    info, track_y = run.info, run.track_y
    space._remember_operator(run.op, run.pc, run.side)
    if rec is None or rec.dim == 0:
        space._drop_space()
        info["recycle_dim"] = 0
        return
    space.method = "gcrodr"
    space.solution_rows = rec.u_x
    space.image_rows = rec.c_rows
    if track_y and rec.u_y is not None:
        space.basis, space.basis_in_y = rec.u_y, True
    else:
        space.basis, space.basis_in_y = rec.u_x, False
    space.coupling = rec.coupling
    info["recycle_dim"] = rec.dim


