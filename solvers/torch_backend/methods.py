"""The Krylov methods of the torch backend on ``[n, B]`` blocks: CG, FCG, GMRES(m), FGMRES(m).

Each method takes a :class:`Context`, the iterate ``X`` ``[n, B]`` (updated in place) and its
residual ``R = B − A X``, and runs until the monitor stops it; it returns ``(X, R_true)``, where
``R_true`` is the true residual of the returned X if the method computed it at the end (else
None). A method's options are its keyword-only parameters; their defaults are the ones of
:mod:`pdesuite.solvers.vocabulary`, and :func:`pdesuite.solvers.torch_backend.option_defaults`
reads them from the signatures.

Every column keeps its own scalars (step lengths, Givens rotations), so a column's iterates are
those of the method run on that column alone; the columns share only the products with A and
M. A column that is not active takes steps of length zero: its search directions must stay
finite for that (0 · NaN is NaN), which is why divisions go through :func:`_safe` or
``torch.where``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from pdesuite.solvers.arnoldi import (
    BREAKDOWN_FACTOR,
    REORTHOGONALIZATION_THRESHOLD,
    STAGNATION_FACTOR,
)
from pdesuite.solvers.result import ConvergedReason
from pdesuite.solvers.torch_backend.convert import CountedOperator
from pdesuite.solvers.torch_backend.monitor import (
    ACTIVE,
    NAN_CODE,
    BestIterate,
    ColumnMonitor,
    failure_codes,
)
from pdesuite.solvers.torch_backend.preconditioner import CountedPreconditioner
from pdesuite.solvers.vocabulary import DEFAULT_RESTART, method_default

_INDEFINITE_MAT = ConvergedReason.DIVERGED_INDEFINITE_MAT.value
_INF = float("inf")


@dataclass
class Context:
    """What a method works with besides X and R."""

    operator: CountedOperator
    pc: Optional[CountedPreconditioner]
    #: ``[n, B]`` right-hand sides.
    B: Any
    monitor: ColumnMonitor
    best: BestIterate
    #: ``[n, B]`` scratch for products: column-wise inner products and ``A X``.
    scratch: Any
    #: What a method reports besides X (``reorthogonalizations``); it joins the result's info.
    info: dict = field(default_factory=dict)

    def true_residual(self, X):
        """``(R, ‖R‖ [B])`` for ``R = B − A X``. X is offered as the best iterate, and the
        columns whose claimed convergence it does not confirm become active again."""
        R = self.B - self.operator(X, out=self.scratch)
        norms = dot(R, R, self.scratch).sqrt()
        self.best.offer(X, norms)
        self.monitor.reactivate_unconfirmed(norms)
        return R, norms


def dot(P, Q, scratch, out=None):
    """Column-wise inner products ``[B]`` of two ``[n, B]`` blocks (into ``out`` if given).

    Through a reused scratch block: torch has no fused column-wise dot, and both a fresh
    temporary (page faults on the CPU) and ``vector_norm(dim=0)`` (a slow strided reduction on
    the CPU) cost several times more. A single column takes BLAS's fused dot instead.
    """
    import torch

    if P.shape[1] == 1:
        if out is None:
            return torch.dot(P.view(-1), Q.view(-1)).view(1)
        torch.dot(P.view(-1), Q.view(-1), out=out.view(()))
        return out
    return torch.sum(torch.mul(P, Q, out=scratch), dim=0, out=out)


def _safe(values, mask):
    """``values`` where ``mask``, else 1: a denominator that is never zero for frozen columns."""
    import torch

    return torch.where(mask, values, 1.0)


# --------------------------------------------------------------------------------------------
# CG and flexible CG
# --------------------------------------------------------------------------------------------

def cg(ctx: Context, X, R):
    """CG, preconditioned when ``ctx.pc`` is set (M must then be SPD and fixed).

    Fails a column with DIVERGED_INDEFINITE_MAT when ``pᵀAp ≤ 0`` and DIVERGED_INDEFINITE_PC
    when ``rᵀMr ≤ 0``. One product with A and one application of M per iteration.

    With M, the product goes into a preallocated ``AP``, the updates are in place, and
    ``P ← Z + βP`` is one ``addcmul`` pass. Without M, see :func:`_cg_in_column_groups`.
    """
    import torch

    if ctx.pc is None:
        return _cg_in_column_groups(ctx, X, R)
    A, pc, monitor, scratch = ctx.operator, ctx.pc, ctx.monitor, ctx.scratch
    R = R.clone()
    AP = torch.empty_like(R)
    Z = pc(R)
    rz = dot(R, Z, scratch)
    monitor.fail(~torch.isfinite(rz), ConvergedReason.DIVERGED_NAN_OR_INF)
    monitor.fail(rz <= 0, ConvergedReason.DIVERGED_INDEFINITE_PC)
    P = torch.where(monitor.active(), Z, 0.0)
    pAp = torch.empty_like(rz)
    while True:
        active = monitor.active()
        AP = A(P, out=AP)
        dot(P, AP, scratch, out=pAp)
        positive = pAp > 0
        alpha = torch.where(active & positive, rz / pAp, 0.0)
        X.addcmul_(P, alpha)
        R.addcmul_(AP, alpha, value=-1.0)
        Z = pc(R)
        rz_new = dot(R, Z, scratch)
        rnorm = dot(R, R, scratch).sqrt()
        failure = torch.where(torch.isfinite(pAp),
                              torch.where(positive, ACTIVE, _INDEFINITE_MAT), NAN_CODE)
        failure = torch.where(failure == ACTIVE,
                              failure_codes(rz_new, ConvergedReason.DIVERGED_INDEFINITE_PC),
                              failure)
        if not monitor.step(rnorm, active, failure):
            return X, None
        beta = torch.where(monitor.active(), rz_new / rz, 0.0)
        torch.addcmul(Z, P, beta, out=P)  # P ← Z + βP in one pass
        rz = rz_new


#: Unpreconditioned CG on the CPU runs the columns of a block in groups, one group after the
#: other, when the five ``[n, width]`` blocks a group iterates on (X, R, P, AP and a scratch)
#: fit this many bytes (a server CPU's last-level cache) and those of the whole block do not.
CACHE_BYTES = 24 * 2**20
#: The narrowest column group: on fewer columns torch's SpMM and its broadcast updates cost
#: more per column than the cache saves.
MIN_COLUMN_GROUP = 8


def _group_width(n: int, itemsize: int) -> int:
    """The widest group whose blocks fit :data:`CACHE_BYTES`, a multiple of 8 (0: none)."""
    return CACHE_BYTES // (5 * n * itemsize) // 8 * 8


def column_groups(operator: CountedOperator, R) -> list:
    """The column slices that :func:`_cg_in_column_groups` runs one after the other: the whole
    block, except on the CPU with a matrix A and a block too wide for the cache, which is cut
    into the fewest groups that fit (:func:`_group_width`, at least :data:`MIN_COLUMN_GROUP`
    columns), of near-equal widths, multiples of 4 when the width is one (torch vectorizes
    along the columns)."""
    n, batch = R.shape
    width = _group_width(n, R.element_size())
    if (R.device.type != "cpu" or not operator.is_matrix or width < MIN_COLUMN_GROUP
            or batch <= width):
        return [slice(0, batch)]
    count = -(-batch // width)
    unit = 4 if width % 4 == 0 else 1
    units = -(-batch // unit)
    slices, start = [], 0
    for g in range(count):
        stop = min(batch, start + unit * (units // count + (g < units % count)))
        slices.append(slice(start, stop))
        start = stop
    return slices


def _cg_in_column_groups(ctx: Context, X, R):
    """Unpreconditioned CG, on the whole block or on groups of its columns in turn.

    The columns of CG are independent, and on the CPU a block of many columns does not fit the
    cache (16 columns of n = 65,536 make 8 MB blocks, 40 MB for the five an iteration sweeps),
    so that every pass of every iteration streams from memory. :func:`column_groups` then cuts
    the block into groups whose blocks fit, and each group iterates to its end on its own,
    with a monitor of its columns (:meth:`ColumnMonitor.columns`), before the next starts;
    the monitors are merged back (:meth:`ColumnMonitor.merge`). A column's iterates, its
    iterations, reason and residual history are those it has in the whole block. The callbacks
    of a grouped run are made at its end, and ``matvecs`` counts the block products of the
    group that took most, the products the block would have taken. On a GPU, or when the
    block fits the cache, there is one group, the whole block (:func:`_cg_block`).
    """
    import torch

    slices = column_groups(ctx.operator, R)
    if len(slices) == 1:
        return _cg_block(ctx, X, R)
    A, monitor = ctx.operator, ctx.monitor
    start, products, parts, scratches = A.matvecs, 0, [], {}
    for columns in slices:
        part = monitor.columns(columns)
        parts.append(part)
        if not part.any_active():  # host sync, once per group
            continue
        X_part = X[:, columns].contiguous()
        width = X_part.shape[1]
        scratch = scratches.setdefault(width, torch.empty_like(X_part))
        before = A.matvecs
        _cg_block(Context(A, None, None, part, None, scratch, ctx.info), X_part,
                  R[:, columns].contiguous())
        products = max(products, A.matvecs - before)
        X[:, columns] = X_part
    A.matvecs = start + products
    monitor.merge(parts)
    return X, None


def _cg_block(ctx: Context, X, R):
    """Unpreconditioned CG on a block ``[n, B]``, every column at once.

    An iteration allocates no block. It makes one product with A (``addmm`` into a reused
    AP), two column-wise dot products (through the reused scratch) and three in-place passes,
    in two sweeps: the previous iteration's ``X += αP`` (deferred to where P is read anyway),
    ``P ← R + βP``, ``AP = A P`` and ``pᵀAp``; then ``R −= αAP`` and ``rᵀr``. Small ``[B]``
    operations decide the step lengths and the monitor's status, with no host sync but the
    monitor's checks.
    """
    import torch

    A, monitor, scratch = ctx.operator, ctx.monitor, ctx.scratch
    R = R.clone()
    P = R.clone()
    AP = torch.empty_like(R)
    pAp, rz, rz_new = (torch.empty(R.shape[1], dtype=R.dtype, device=R.device)
                       for _ in range(3))
    # The block operations, their views made once (a callable A returns a new AP each time:
    # its product and pᵀAp are made in the loop).
    if A.is_matrix:
        product = A.product_into(P, AP)
        pAp_dot = dot_into(P, AP, scratch, pAp)
    rr_dots = {id(rz): dot_into(R, R, scratch, rz), id(rz_new): dot_into(R, R, scratch, rz_new)}
    rr_dots[id(rz)]()
    beta = alpha = None
    while True:
        active = monitor.active()
        if beta is not None:
            X.addcmul_(P, alpha)  # the previous iteration's, while P is in cache
            torch.addcmul(R, P, beta, out=P)  # P ← R + βP
        if A.is_matrix:
            A.matvecs += 1
            product()
            pAp_dot()
        else:
            AP = A(P, out=AP)
            dot(P, AP, scratch, out=pAp)
        positive = pAp > 0
        alpha = torch.where(active & positive, rz / pAp, 0.0)
        R.addcmul_(AP, alpha, value=-1.0)
        rr_dots[id(rz_new)]()
        # pAp ≤ 0: A is not SPD; NaN or ±Inf fails |pAp| < inf.
        failure = torch.where(pAp.abs() < _INF,
                              torch.where(positive, ACTIVE, _INDEFINITE_MAT), NAN_CODE)
        if not monitor.step(rz_new.sqrt(), active, failure):
            X.addcmul_(P, alpha)
            return X, None
        beta = torch.where(monitor.active(), rz_new / rz, 0.0)
        rz, rz_new = rz_new, rz


def dot_into(P, Q, scratch, out):
    """A callable without arguments that writes ``dot(P, Q)`` into ``out`` ``[B]``, its views
    made once."""
    import torch

    if P.shape[1] == 1:
        p, q, o = P.view(-1), Q.view(-1), out.view(())
        return lambda: torch.dot(p, q, out=o)
    return lambda: torch.sum(torch.mul(P, Q, out=scratch), dim=0, out=out)


def fcg(ctx: Context, X, R, *,
        mmax: int = method_default("fcg", "mmax"),
        normalize_input: bool = method_default("fcg", "normalize_input"),
        residual_replacement: int = method_default("fcg", "residual_replacement")):
    """Flexible CG: each new direction is A-orthogonalized against the last ``mmax`` ones and
    the step is an exact line search, so any (nonlinear) preconditioner may be used.

    ``mmax=1`` (default) is the Polak–Ribière variant (β = zₖᵀ(rₖ − rₖ₋₁)/(zₖ₋₁ᵀrₖ₋₁) in exact
    arithmetic). ``mmax=2, normalize_input=True, residual_replacement=1`` is the Deep Conjugate
    Direction Method's iteration: the network sees ``r/‖r‖`` (``normalize_input``, default
    True), and the residual is recomputed as ``b − A x`` every iteration (one more product with
    A), which keeps a float32 network from letting the recurrence drift.
    ``residual_replacement=k`` does so every k iterations; 0 (default) never. Fails a column
    with DIVERGED_BREAKDOWN when M returns a direction already searched (``pᵀAp = 0``).
    """
    import torch

    A, pc, monitor, scratch = ctx.operator, ctx.pc, ctx.monitor, ctx.scratch
    R = R.clone()
    rnorm = dot(R, R, scratch).sqrt()
    window: deque = deque(maxlen=mmax)
    while True:
        active = monitor.active()
        R_in = R / _safe(rnorm, rnorm > 0) if normalize_input else R
        P = pc(R_in) if pc is not None else R_in
        # Inactive columns get a zero direction: whatever M returns there (a network need not
        # map 0 to 0, nor stay finite), it must not reach X.
        P = torch.where(active, P, 0.0)
        for P_old, AP_old, pAp_old in window:
            P = P - P_old * (dot(P, AP_old, scratch) / pAp_old)
        AP = A(P)  # kept in the window: no shared buffer
        pAp = dot(P, AP, scratch)
        moving = active & (pAp > 0)
        safe_pAp = _safe(pAp, moving)
        alpha = torch.where(moving, dot(P, R, scratch) / safe_pAp, 0.0)
        X.addcmul_(P, alpha)
        if residual_replacement and (monitor.iteration + 1) % residual_replacement == 0:
            R = ctx.B - A(X)
        else:
            R.addcmul_(AP, alpha, value=-1.0)
        rnorm = dot(R, R, scratch).sqrt()
        # pAp = 0 with A SPD means M returned a direction already searched (or zero).
        failure = failure_codes(pAp, ConvergedReason.DIVERGED_INDEFINITE_MAT,
                                zero=ConvergedReason.DIVERGED_BREAKDOWN)
        if not monitor.step(rnorm, active, failure):
            return X, None
        window.append((P, AP, safe_pAp))


# --------------------------------------------------------------------------------------------
# GMRES and flexible GMRES
# --------------------------------------------------------------------------------------------

def gmres(ctx: Context, X, R, *,
          restart: int = DEFAULT_RESTART,
          side: str = method_default("gmres", "side"),
          reorthogonalize: str = method_default("gmres", "reorthogonalize")):
    """Restarted GMRES(m), with ``side="left"`` (default) or ``"right"`` preconditioning.

    ``restart`` is m. Left preconditioning minimizes ``‖M r‖`` over ``x0 + K(MA, M r0)``: the
    Arnoldi operator is ``M A``, a cycle starts from ``M r``, and the update is ``X += V y``.
    Its estimate ``‖M r_j‖`` is multiplied by ``‖r‖/‖M r‖`` measured at the cycle's start
    before it reaches the monitor, so the monitor's target applies to an estimate of the true
    residual, and the history holds these scaled norms. Right preconditioning minimizes
    ``‖r‖`` over ``x0 + M K(AM, r0)`` with the update ``X += M (V y)``; M must be fixed and
    linear, since it is applied to the combination of the basis once per cycle. Both as the
    NumPy backend's GMRES. See :func:`_restarted_gmres` for the rest.
    """
    return _restarted_gmres(ctx, X, R, restart, left=side == "left", flexible=False,
                            reorthogonalize=reorthogonalize)


def fgmres(ctx: Context, X, R, *,
           restart: int = DEFAULT_RESTART,
           reorthogonalize: str = method_default("fgmres", "reorthogonalize")):
    """Flexible GMRES(m) (Saad 1993): stores ``zⱼ = M vⱼ`` and updates ``X += Z y``, so M may
    vary or be nonlinear (a network). Memory: ``2m + 1`` blocks instead of ``m + 1``.
    ``reorthogonalize`` as for :func:`gmres` (see :func:`_restarted_gmres`)."""
    return _restarted_gmres(ctx, X, R, restart, left=False, flexible=True,
                            reorthogonalize=reorthogonalize)


def _restarted_gmres(ctx: Context, X, R, restart: int, left: bool, flexible: bool,
                     reorthogonalize: str):
    """GMRES(m)/FGMRES(m) on every column at once.

    The monitored norm is the least-squares residual ``|g_{j+1}|`` of the Arnoldi relation,
    the true ‖b − A x‖ in exact arithmetic (for left preconditioning ‖M (b − A x)‖, scaled as
    :func:`gmres` says). A cycle ends for a column after m steps, when the monitor stops it,
    or at a breakdown: its new Arnoldi vector keeps at most ``BREAKDOWN_FACTOR``·eps of its
    norm (the Krylov space is invariant). Then X is updated from the least-squares solution,
    robust to a singular projected matrix (see :func:`_triangular_least_squares`), and each
    restart recomputes the true residual: the iterate is offered as the best one, and a
    convergence it does not confirm is withdrawn. At the start of each cycle a column ends
    with DIVERGED_STAGNATION when the norm the method minimizes (``‖r‖``, or ``‖M r‖`` for
    left preconditioning) fell by less than ``STAGNATION_FACTOR`` over the previous cycle,
    with DIVERGED_BREAKDOWN when ``M r = 0`` (a singular M) and with DIVERGED_NAN_OR_INF when
    ``M r`` is not finite (the rules of :mod:`pdesuite.solvers.arnoldi`).

    Per column the Hessenberg matrix is reduced by Givens rotations. Rather than applying the
    j earlier rotations one by one to each new column (j tiny kernels per step on a GPU), the
    product of the rotations so far is kept as an orthogonal ``[m+1, m+1]`` matrix per column
    and applied in one batched product; each new rotation then updates two rows of it.
    Orthogonalization is classical Gram–Schmidt, each pass two batched products instead of
    j + 1 sequential projections. ``reorthogonalize``: ``"never"``, one pass; ``"always"``,
    two (as stable as modified Gram–Schmidt); ``"ifneeded"``, a second pass over the block
    when the first left less than ``REORTHOGONALIZATION_THRESHOLD`` of the norm of some
    stepping column's vector (a host sync per step to decide). ``ctx.info["reorthogonalizations"]``
    counts the second passes.
    """
    import torch

    A, pc, monitor, scratch = ctx.operator, ctx.pc, ctx.monitor, ctx.scratch
    n, batch = R.shape
    m = restart
    dtype, device = R.dtype, R.device
    tiny = BREAKDOWN_FACTOR * torch.finfo(dtype).eps
    left = left and pc is not None
    # Batch-major storage, so that the projections are batched products without copies.
    V = torch.empty(batch, m + 1, n, dtype=dtype, device=device)
    flexible = flexible and pc is not None
    Zs = torch.empty(batch, m, n, dtype=dtype, device=device) if flexible else None
    identity = torch.eye(m + 1, dtype=dtype, device=device)
    true_norm = dot(R, R, scratch).sqrt()
    previous_beta = torch.full_like(true_norm, float("inf"))
    R_true = R
    while True:
        # The cycle's start: the norm it minimizes, β = ‖M r‖ (left) or ‖r‖.
        if left:
            start = pc(R)
            beta = dot(start, start, scratch).sqrt()
            monitor.fail(~torch.isfinite(beta), ConvergedReason.DIVERGED_NAN_OR_INF)
            monitor.fail(beta == 0, ConvergedReason.DIVERGED_BREAKDOWN)
            monitor.fail(beta > STAGNATION_FACTOR * previous_beta,
                         ConvergedReason.DIVERGED_STAGNATION)
            if not monitor.any_active():
                return X, R_true
        else:
            start, beta = R, true_norm
        previous_beta = beta
        active = monitor.active()
        positive = active & (beta > 0)
        safe_beta = _safe(beta, positive)
        # Left: ‖r‖/‖M r‖ turns the estimate of ‖M r_j‖ into one of ‖r_j‖.
        scale = true_norm / safe_beta if left else None
        V[:, 0, :] = (start * torch.where(positive, 1.0 / safe_beta, 0.0)).T
        rotations = identity.expand(batch, m + 1, m + 1).clone()
        triangular = torch.zeros(batch, m, m, dtype=dtype, device=device)
        used_step = torch.zeros(batch, m, dtype=torch.bool, device=device)
        in_cycle = active  # columns whose Krylov space has not become invariant
        cycle_start = monitor.iteration
        for j in range(m):
            stepping = in_cycle & monitor.active()
            v = V[:, j, :].T.contiguous()
            if left:
                z = v
                w = pc(A(v, out=scratch)).T.contiguous()  # [batch, n]
            else:
                z = pc(v) if pc is not None else v
                if Zs is not None:
                    # A frozen column's basis vector is 0, but M(0) need not be: keep it out of X.
                    z = torch.where(stepping, z, 0.0)
                    Zs[:, j, :] = z.T
                w = A(z, out=scratch).T.contiguous()  # [batch, n]
            basis = V[:, : j + 1, :]
            h = torch.bmm(basis, w.unsqueeze(2)).squeeze(2)
            w -= torch.bmm(h.unsqueeze(1), basis).squeeze(1)
            h_next = torch.linalg.vector_norm(w, dim=1)
            # ‖w‖ before the pass, as ‖h‖² + ‖w − V h‖² for an orthonormal basis.
            norm_in = torch.hypot(torch.linalg.vector_norm(h, dim=1), h_next)
            if reorthogonalize == "always" or (
                    reorthogonalize == "ifneeded"
                    and bool((stepping & (h_next < REORTHOGONALIZATION_THRESHOLD * norm_in))
                             .any())):  # host sync
                correction = torch.bmm(basis, w.unsqueeze(2)).squeeze(2)
                w -= torch.bmm(correction.unsqueeze(1), basis).squeeze(1)
                h += correction
                h_next = torch.linalg.vector_norm(w, dim=1)
                ctx.info["reorthogonalizations"] += 1
            # A NaN or Inf anywhere in the column has reached w, hence h_next.
            finite = torch.isfinite(h_next)
            # Not finite counts as a breakdown too: the column's basis must get no NaN, since
            # the update multiplies unused basis vectors by y = 0, and 0 · NaN is NaN.
            breakdown = ~(h_next > tiny * norm_in)
            h_next = torch.where(breakdown, 0.0, h_next)  # a non-finite step is not used
            keep = stepping & ~breakdown
            inverse = (1.0 / _safe(h_next, keep)).unsqueeze(1)
            V[:, j + 1, :] = torch.where(keep.unsqueeze(1), w * inverse, 0.0)

            column = torch.cat([h, h_next.unsqueeze(1)], dim=1)  # [batch, j + 2]
            rotated = torch.bmm(rotations[:, : j + 2, : j + 2], column.unsqueeze(2)).squeeze(2)
            top, bottom = rotated[:, j], rotated[:, j + 1]
            rho = torch.hypot(top, bottom)
            good = stepping & finite
            nonzero = good & (rho > 0)
            safe_rho = _safe(rho, nonzero)
            # A zero column (a singular projected matrix) swaps the rotated right-hand side,
            # (c, s) = (0, 1), so that the estimate stays where it was instead of claiming 0;
            # a column that does not step keeps its rotations, (c, s) = (1, 0).
            idle = (~good).to(dtype)
            cos = torch.where(nonzero, top, idle) / safe_rho
            sin = torch.where(nonzero, bottom, 1.0 - idle) / safe_rho
            triangular[:, :j, j] = torch.where(good.unsqueeze(1), rotated[:, :j], 0.0)
            triangular[:, j, j] = torch.where(good, rho, 0.0)
            givens = torch.stack((cos, sin, -sin, cos), dim=1).view(batch, 2, 2)
            rotations[:, j : j + 2, : j + 2] = torch.bmm(givens, rotations[:, j : j + 2, : j + 2])
            used_step[:, j] = good
            in_cycle = in_cycle & ~breakdown
            estimate = (beta * rotations[:, j + 1, 0]).abs()
            if left:
                estimate = estimate * scale
            # A non-finite column keeps its rotations, whose estimate would read 0: report NaN.
            estimate = torch.where(finite, estimate, float("nan"))
            if not monitor.step(estimate, stepping, continuing=in_cycle):
                break
        # Steps in which no column stepped (possible with check_every > 1) do not count.
        monitor.settle()
        steps = monitor.iteration - cycle_start

        if steps > 0:
            g = (beta.unsqueeze(1) * rotations[:, :steps, 0]) * used_step[:, :steps]
            y = _triangular_least_squares(triangular[:, :steps, :steps], g, used_step[:, :steps])
            directions = Zs if Zs is not None else V
            update = torch.bmm(y.unsqueeze(1), directions[:, :steps, :]).squeeze(1).T.contiguous()
            if pc is not None and Zs is None and not left:
                # A column frozen for the whole cycle has V y = 0; an affine M could still move
                # it.
                update = torch.where(used_step[:, :steps].any(dim=1), pc(update), 0.0)
            X += update
        if monitor.iteration >= monitor.maxiter:
            return X, None

        R_true, true_norm = ctx.true_residual(X)
        R = R_true
        if not left:  # the next cycle's β is this norm: test it here, spare a cycle start
            monitor.fail(true_norm > STAGNATION_FACTOR * previous_beta,
                         ConvergedReason.DIVERGED_STAGNATION)
        if not monitor.any_active():
            return X, R_true


def _triangular_least_squares(R, g, used):
    """``y`` ``[batch, k]`` minimizing ``‖g − R y‖`` per column, for upper triangular ``R``
    ``[batch, k, k]``; ``used`` ``[batch, k]`` marks the steps a column took (the others have
    ``g = 0`` and an all-zero column of R, and get ``y = 0``).

    A triangular solve, except for a column whose R is (numerically) singular, a diagonal
    entry at most eps times the largest (a singular A or M): its minimum-norm least-squares
    solution then comes from the pseudo-inverse (SciPy's lstsq cut-off, eps·k·σ_max), as
    :func:`pdesuite.solvers.arnoldi.least_squares_triangle` does, rather than a huge
    correction built from round-off.
    """
    import torch

    diagonal = R.diagonal(dim1=1, dim2=2)
    magnitude = diagonal.abs()
    scale = torch.where(used, magnitude, 0.0).amax(dim=1, keepdim=True)
    singular = (used & ~(magnitude > torch.finfo(R.dtype).eps * scale)).any(dim=1)
    # A step not taken gets the column's scale on the diagonal: y = 0 there (g = 0), and the
    # pseudo-inverse's cut-off, relative to the largest singular value, is left unchanged.
    diagonal.copy_(torch.where(used, diagonal, torch.where(scale > 0, scale, 1.0)))
    y = torch.linalg.solve_triangular(R, g.unsqueeze(2), upper=True).squeeze(2)
    if bool(singular.any()):  # one host sync per cycle
        rows = singular.nonzero().squeeze(1)
        y[rows] = (torch.linalg.pinv(R[rows]) @ g[rows].unsqueeze(2)).squeeze(2)
    return y


#: The methods by name; a method's keyword-only parameters are its options.
def dcdm(ctx: Context, X, R, *,
         mmax: int = method_default("dcdm", "mmax"),
         normalize_input: bool = method_default("dcdm", "normalize_input"),
         residual_replacement: int = method_default("dcdm", "residual_replacement")):
    """The deep conjugate direction method: :func:`fcg` with DCDM's defaults (``mmax=2``, the
    network fed ``r/‖r‖``, the true residual every iteration)."""
    return fcg(ctx, X, R, mmax=mmax, normalize_input=normalize_input,
               residual_replacement=residual_replacement)


METHOD_FUNCTIONS = {"cg": cg, "fcg": fcg, "dcdm": dcdm, "gmres": gmres, "fgmres": fgmres}
#: What each method reports in ``Context.info``, with its value before the method runs.
METHOD_INFO = {"gmres": {"reorthogonalizations": 0}, "fgmres": {"reorthogonalizations": 0}}
