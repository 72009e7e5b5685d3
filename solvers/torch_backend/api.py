"""The entry point of the torch backend: :func:`solve`, and :func:`option_defaults`."""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Optional

import numpy as np

from pdesuite.solvers.monitor import confirm_on_true_residual
from pdesuite.solvers.result import ConvergedReason, SolveResult
from pdesuite.solvers.torch_backend.convert import make_system
from pdesuite.solvers.torch_backend.methods import (
    METHOD_FUNCTIONS,
    METHOD_INFO,
    Context,
    dot,
)
from pdesuite.solvers.torch_backend.monitor import ACTIVE, BestIterate, ColumnMonitor
from pdesuite.solvers.torch_backend.options import (
    FLEXIBLE_METHODS,
    METHODS,
    check_method_options,
    keyword_defaults,
)
from pdesuite.solvers.torch_backend.preconditioner import make_preconditioner
from pdesuite.solvers.validation import check_choice, check_int, check_tolerances
from pdesuite.solvers.vocabulary import BACKEND_OPTIONS, DEFAULT_ATOL, DEFAULT_RTOL

#: Which failure a batch reports when columns fail differently: the most alarming first.
_FAILURE_SEVERITY = (
    ConvergedReason.DIVERGED_NAN_OR_INF,
    ConvergedReason.DIVERGED_INDEFINITE_MAT,
    ConvergedReason.DIVERGED_INDEFINITE_PC,
    ConvergedReason.DIVERGED_BREAKDOWN,
    ConvergedReason.DIVERGED_DTOL,
    ConvergedReason.DIVERGED_STAGNATION,
    ConvergedReason.DIVERGED_MAX_ITERATIONS,
)


def solve(
    A: Any,
    b: Any,
    method: str = "gmres",
    M: Any = None,
    x0: Any = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    maxiter: Optional[int] = None,
    callback: Optional[Callable] = None,
    *,
    check_every: int = BACKEND_OPTIONS["torch"]["check_every"],
    device: Any = BACKEND_OPTIONS["torch"]["device"],
    **options: Any,
) -> SolveResult:
    """Solve ``A X = B`` for one or many right-hand sides on a torch device.

    Args:
        A: ``[n, n]`` torch sparse (COO/CSR/CSC) or dense tensor; a SciPy sparse matrix or NumPy
            array (converted to a torch CSR/dense tensor on ``device``); or a callable
            ``matvec(X: [n, B]) -> [n, B]`` (a matrix-free operator or a network).
        b: ``[n]`` or ``[n, B]`` right-hand sides, a torch tensor or a NumPy array.
        method: ``"cg"`` (preconditioned when M is given), ``"fcg"``, ``"gmres"`` (the
            default, as in :func:`pdesuite.solvers.solve`) or ``"fgmres"``.
        M: ``None``; ``"jacobi"``; a callable ``R [n, B] -> Z [n, B]``; an object with
            ``apply(R)`` on ``[n, B]`` tensors (NumPy preconditioners of pdesuite.solvers are
            applied column by column on the host instead, unless they set
            ``accepts_torch = True``); or a matrix approximating ``A⁻¹``. An attribute
            ``linear = False`` marks a nonlinear M: non-flexible methods then warn.
        x0: initial guess of b's shape (default zero). Columns with ``b_j = 0`` return
            ``x_j = 0`` whatever x0 says, as the NumPy backend does.
        rtol, atol: column j has converged when ``‖b_j − A x_j‖ ≤ max(rtol·‖b_j‖, atol)``,
            confirmed on the true residual (:func:`pdesuite.solvers.monitor.
            confirm_on_true_residual`). Defaults 1e-8 and 0 (:mod:`pdesuite.solvers.vocabulary`).
        maxiter: cap on iterations (inner steps for GMRES), shared by the batch; default 10,000.
        callback: ``callback(iteration, residual_norms)`` after every iteration, with a float
            when b is ``[n]`` (a host sync per iteration) and a ``[B]`` tensor on the device
            otherwise.
        check_every: test "is any column still active?" (one host sync) once this many
            iterations have run since the last test (default 1). Larger values save syncs on a
            GPU; x, the reasons, the iterations and the residual history do not change, but up
            to ``check_every − 1`` fully masked products with A and M may run after the last
            active iteration (of the solve, and for GMRES of each restart cycle) and count in
            ``matvecs`` and ``precond_applies`` (see :class:`~pdesuite.solvers.torch_backend.
            monitor.ColumnMonitor`). Callbacks are then made at the tests.
        device: where to put A and b given as SciPy/NumPy (default: the CPU).
        **options: the method's options, with the names and defaults of
            :mod:`pdesuite.solvers.vocabulary` (see :func:`option_defaults`):
            ``restart`` (gmres, fgmres; default 40): Krylov dimension per cycle.
            ``side`` (gmres; default "left"): where M is applied, as in the NumPy backend.
            ``reorthogonalize`` (gmres, fgmres; default "never"): when Gram–Schmidt takes a
            second pass, "never", "ifneeded" or "always".
            ``mmax`` (fcg; default 1): how many previous directions a new one is made
            A-orthogonal to. ``normalize_input`` (fcg; default True): apply M to ``r/‖r‖``.
            ``residual_replacement`` (fcg; default 0): recompute ``r = b − A x`` every this
            many iterations (1 with ``mmax=2`` is DCDM).
            No preconditioner of this backend takes ``pc_`` options.

    Returns:
        :class:`SolveResult` with ``x`` a torch tensor of b's shape on A's device: per column,
        of the iterates whose true residual was computed (x0, each GMRES restart, the end of
        the solve), the one with the smallest true residual, so never worse than x0 and never
        NaN. ``reason``: CONVERGED_* only when every column converged (that of the column that
        took most iterations), else the most severe failure among the columns; ``iterations``
        the batch's iterations; ``matvecs`` and ``precond_applies`` count block products (one
        per application to the ``[n, B]`` block); ``residuals`` a NumPy array
        ``[iterations + 1, B]`` (``[iterations + 1]`` for a 1-D b) of monitored norms, a
        column's last value repeated after it stopped. ``info``: ``reasons`` and
        ``iterations_per_column`` (lists, one entry per column), ``true_residual_norms``
        (NumPy ``[B]``, those of the returned x), ``device``, ``dtype``, ``batch``, the
        method's options as used, ``reorthogonalizations`` for GMRES and FGMRES (second
        Gram–Schmidt passes, each over the whole block), and ``returned_iterate`` when some
        column's x is not its last iterate: per column ``"last"``, ``"initial"`` (x0) or
        ``"earlier"`` (an iterate of an earlier restart or attempt), a list over the columns,
        or one string for a 1-D b (absent when the last iterate is returned, as in the NumPy
        backend).
    """
    import torch

    key = check_choice("method", method, METHODS)
    rtol, atol, maxiter = check_tolerances(rtol, atol, maxiter)
    check_every = check_int("check_every", check_every, 1)
    method_options, pc_options = check_method_options(key, options,
                                                      tuple(keyword_defaults(solve)))
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")

    system = make_system(A, b, x0, device)
    operator, B = system.operator, system.B
    start = time.perf_counter()
    pc = make_preconditioner(M, operator, B, pc_options)
    if pc is not None and not pc.linear and key not in FLEXIBLE_METHODS:
        warnings.warn(
            f"M is nonlinear but method {key!r} assumes a fixed linear preconditioner; "
            f"use a flexible method {FLEXIBLE_METHODS} for a guaranteed result",
            stacklevel=3,
        )

    with torch.no_grad():
        scratch = torch.empty_like(B)
        b_norms = dot(B, B, scratch).sqrt()
        zero_columns = b_norms == 0
        if system.X0 is None:
            X = torch.zeros_like(B)
            R = B.clone()
        else:
            X = torch.where(zero_columns, 0.0, system.X0)
            R = B - operator(X, out=scratch)
        r_norms = dot(R, R, scratch).sqrt()
        monitor = ColumnMonitor(b_norms, rtol, atol, maxiter, check_every,
                                callback, system.squeeze)
        monitor.start(r_norms, zero_columns)
        ctx = Context(operator, pc, B, monitor, BestIterate(X, r_norms), scratch,
                      dict(METHOD_INFO.get(key, {})))
        function = METHOD_FUNCTIONS[key]
        state = {"X": X, "R": R, "norms": r_norms}

        def attempt() -> ConvergedReason:
            # Run the method on the active columns from the current iterate, then take the
            # true residual (the method's own when it computed one at its end).
            R_true = None
            if monitor.remaining > 0 and monitor.any_active():
                state["X"], R_true = function(ctx, state["X"], state["R"], **method_options)
            if R_true is None:
                R_true = B - operator(state["X"], out=scratch)
            state["R"] = R_true
            state["norms"] = dot(R_true, R_true, scratch).sqrt()
            ctx.best.offer(state["X"], state["norms"])
            return _attempt_reason(monitor)

        def confirmed() -> bool:
            # Unconfirmed columns go back to active and continue from state["R"].
            return not bool(monitor.reactivate_unconfirmed(state["norms"]).any())

        reason = confirm_on_true_residual(attempt, confirmed, lambda: monitor.remaining)
        if reason is ConvergedReason.DIVERGED_STAGNATION:
            monitor.fail(monitor.active(), ConvergedReason.DIVERGED_STAGNATION)
        monitor.fail(monitor.active(), ConvergedReason.DIVERGED_MAX_ITERATIONS)

        # One transfer to the host for everything the result reports.
        iterations = monitor.effective_iterations()
        history = torch.stack(monitor.history[: iterations + 1]).cpu().numpy().astype(float)
        status = monitor.status.cpu().tolist()
        per_column = monitor.iterations_per_column.cpu().tolist()
        true_norms = ctx.best.norms.cpu().numpy().astype(float)
        returned = ctx.best.returned_iterates()
    elapsed = time.perf_counter() - start

    reasons = [ConvergedReason(code) for code in status]
    X = ctx.best.X
    squeeze = system.squeeze
    info: dict[str, Any] = {}
    if any(which != "last" for which in returned):
        info["returned_iterate"] = returned[0] if squeeze else returned
    return SolveResult(
        x=X[:, 0] if squeeze else X,
        reason=_batch_reason(reasons, per_column),
        iterations=iterations,
        matvecs=operator.matvecs,
        precond_applies=pc.applies if pc is not None else 0,
        residuals=history[:, 0] if squeeze else history,
        time=elapsed,
        method=key,
        backend="torch",
        info={
            "reasons": reasons,
            "iterations_per_column": per_column,
            "true_residual_norms": true_norms[0] if squeeze else true_norms,
            "device": str(B.device),
            "dtype": str(B.dtype).replace("torch.", ""),
            "batch": B.shape[1],
            **keyword_defaults(function),
            **method_options,
            **ctx.info,
            **info,
        },
    )


def option_defaults(method: str) -> dict[str, Any]:
    """The options the torch backend takes for ``method``, with the defaults it uses.

    Read from the signatures of the method's function (its keyword-only parameters) and of
    :func:`solve` (the backend's own options, ``check_every`` and ``device``), so that a test
    can compare them with :data:`pdesuite.solvers.vocabulary.METHOD_DEFAULTS`.
    """
    key = check_choice("method", method, METHODS)
    return {**keyword_defaults(METHOD_FUNCTIONS[key]), **keyword_defaults(solve)}


def _attempt_reason(monitor: ColumnMonitor) -> ConvergedReason:
    """What an attempt reports to ``confirm_on_true_residual``: a convergence when some column
    claims one (the policy then confirms every claim), else the batch's failure; a column
    still active has met maxiter."""
    codes = monitor.status.cpu().tolist()
    claims = [code for code in codes if code > 0]
    if claims:
        return ConvergedReason(claims[0])
    return _most_severe([ConvergedReason.DIVERGED_MAX_ITERATIONS if code == ACTIVE
                         else ConvergedReason(code) for code in codes])


def _most_severe(failures: list[ConvergedReason]) -> ConvergedReason:
    return min(failures, key=_FAILURE_SEVERITY.index)


def _batch_reason(reasons: list[ConvergedReason], iterations: list[int]) -> ConvergedReason:
    failures = [r for r in reasons if not r.converged]
    if failures:
        return _most_severe(failures)
    # All converged: report the column that took longest, the one that set the cost.
    return reasons[int(np.argmax(iterations))]
