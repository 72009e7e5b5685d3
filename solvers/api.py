"""``solve``: one signature for every method and backend, in the manner of SciPy's solvers."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable, Optional

import numpy as np

from pdesuite.solvers.linear_operator import as_operator, looks_hermitian
from pdesuite.solvers.monitor import ConvergenceMonitor, confirm_on_true_residual
from pdesuite.solvers.preconditioner import CountingPreconditioner, make_preconditioner
from pdesuite.solvers.registry import METHODS
from pdesuite.solvers.result import ConvergedReason, SolveResult, SolverError
from pdesuite.solvers.tuning import is_tuner
from pdesuite.solvers.validation import (
    check_known_options,
    check_tolerances,
    split_preconditioner_options,
)
from pdesuite.solvers.vocabulary import DEFAULT_ATOL, DEFAULT_RTOL

BACKENDS = ("numpy", "petsc", "torch")
#: Methods whose theory needs a symmetric positive definite preconditioner.
_NEEDS_SPD_PRECONDITIONER = ("cg", "minres", "rcg")


def _load_methods() -> None:
    # Importing the modules registers their methods.
    from pdesuite.solvers import dcdm, direct, krylov, relaxation, recycling  # noqa: F401


def detect_backend(A: Any) -> str:
    """The backend that the type of ``A`` asks for, without importing torch or petsc4py."""
    module = type(A).__module__
    if module.startswith("petsc4py"):
        return "petsc"
    if module.startswith("torch"):
        return "torch"
    return "numpy"


def solve(
    A: Any,
    b: Any,
    method: str = "gmres",
    M: Any = None,
    x0: Any = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    maxiter: Optional[int] = None,
    callback: Optional[Callable[[int, float], None]] = None,
    *,
    backend: Optional[str] = None,
    raise_on_failure: bool = False,
    context: Any = None,
    **options: Any,
) -> SolveResult:
    """Solve ``A x = b`` iteratively and report how it ended.

    Args:
        A: ``[n, n]`` sparse matrix, dense array, LinearOperator, object with ``matvec``, or a
            callable ``x -> A x``. A petsc4py ``Mat`` selects the PETSc backend and a torch
            tensor the torch backend.
        b: ``[n]`` right-hand side.
        method: one of :data:`pdesuite.solvers.METHODS` (``"cg"``, ``"gmres"``, ...).
        M: preconditioner approximating ``A⁻¹``: a name (``"jacobi"``, ``"ssor"``, ``"ilu"``,
            ...), a :class:`Preconditioner`, a matrix/LinearOperator, or a callable ``r -> z``.
            Options of a named preconditioner are passed with the prefix ``pc_``
            (``pc_omega=1.5``).
        x0: ``[n]`` initial guess (default zero).
        rtol, atol: converged when ``‖b − A x‖ ≤ max(rtol·‖b‖, atol)`` on the true residual.
            Defaults 1e-8 and 0 (:mod:`pdesuite.solvers.vocabulary`).
        maxiter: cap on iterations (Krylov steps, or relaxation sweeps); default 10,000.
            Restarted methods count inner steps, as PETSc does, not restart cycles.
        callback: called as ``callback(iteration, residual_norm)`` after every iteration.
        backend: ``"numpy"`` (default), ``"petsc"`` or ``"torch"``; by default from A's type.
        raise_on_failure: raise :class:`SolverError` (carrying the result) when not converged.
        context: passed to ``Tuner.suggest`` for every option given as a tuner.
        **options: method options (``restart``, ``k``, ``omega``, ``side``, ...). An option
            whose value is a tuner (``suggest``/``observe``) is chosen by the tuner for this
            solve, and the iteration count goes back to it; the chosen values are in
            ``result.info["tuned"]``.

    Returns:
        :class:`SolveResult`.
    """
    backend = backend or detect_backend(A)
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown backend {backend!r}; choose from {BACKENDS}")

    tuners = {name: value for name, value in options.items() if is_tuner(value)}
    chosen = {name: tuner.suggest(context) for name, tuner in tuners.items()}
    options = {**options, **chosen}

    try:
        if backend == "numpy":
            result = _solve_numpy(A, b, method, M, x0, rtol, atol, maxiter, callback, options)
        else:
            if backend == "petsc":
                from pdesuite.solvers import petsc_backend as module
            else:
                from pdesuite.solvers import torch_backend as module
            result = module.solve(A, b, method=method, M=M, x0=x0, rtol=rtol, atol=atol,
                                  maxiter=maxiter, callback=callback, **options)
    except BaseException:
        # A solve that raised (bad input, an interrupt) has no cost to report: withdraw the
        # suggestion so that the tuner can go on with the next solve.
        for tuner in tuners.values():
            if hasattr(tuner, "cancel"):
                tuner.cancel()
        raise

    if tuners:
        # A failed solve reports its capped iteration count, never NaN.
        for name, tuner in tuners.items():
            tuner.observe(float(result.iterations))
        result.info["tuned"] = chosen
    if raise_on_failure and not result.converged:
        raise SolverError(result)
    return result


def _solve_numpy(A, b, method, M, x0, rtol, atol, maxiter, callback, options) -> SolveResult:
    _load_methods()
    key = method.lower() if isinstance(method, str) else method
    if key not in METHODS:
        raise ValueError(f"method: unknown method {method!r}; choose from {sorted(METHODS)}")
    spec = METHODS[key]
    rtol, atol, maxiter = check_tolerances(rtol, atol, maxiter)
    method_options, pc_options = split_preconditioner_options(options)
    check_known_options(key, method_options, spec.options, "numpy")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")

    op, b = as_operator(A, b)
    if x0 is None:
        x = np.zeros(op.n, dtype=op.dtype)
    else:
        x0 = np.asarray(x0)
        if x0.shape != (op.n,):
            raise ValueError(f"x0: expected shape ({op.n},), got {x0.shape}")
        if not np.all(np.isfinite(x0)):
            raise ValueError("x0: contains NaN or Inf entries")
        x = x0.astype(op.dtype, copy=True)

    start = time.perf_counter()
    pc = CountingPreconditioner(make_preconditioner(M, op, **pc_options), op.n)
    if isinstance(M, str) and key in _NEEDS_SPD_PRECONDITIONER and not pc.symmetric:
        warnings.warn(
            f"M={M!r} is not symmetric, but method {key!r} needs a symmetric positive definite "
            "preconditioner; use 'jacobi', 'ssor' or 'ic', or a method for general matrices "
            "('gmres', 'fgmres', 'bicgstab')",
            stacklevel=3,
        )
    if not pc.linear and not spec.flexible:
        warnings.warn(
            f"M is nonlinear but method {key!r} assumes a fixed linear preconditioner; "
            "use a flexible method ('fcg', 'fgmres', 'gcrodr') for a guaranteed result",
            stacklevel=3,
        )

    b_norm = float(np.linalg.norm(b))
    monitor = ConvergenceMonitor(b_norm, rtol, atol, maxiter, callback)
    info: dict[str, Any] = {}
    if b_norm == 0.0:
        # The exact solution of a consistent system; no iteration is needed.
        x = np.zeros(op.n, dtype=op.dtype)
        monitor.start(0.0)
        reason = ConvergedReason.CONVERGED_ATOL
    elif spec.needs_hermitian and op.matrix is not None and not looks_hermitian(op.matrix):
        monitor.start(float(np.linalg.norm(b - op.matvec(x))))
        reason = ConvergedReason.DIVERGED_NONSYMMETRIC
    else:
        x, reason = _solve_keeping_the_best(spec, op, b, x, pc, monitor, method_options, info)
    elapsed = time.perf_counter() - start
    return SolveResult(x=x, reason=reason, iterations=monitor.iterations, matvecs=op.matvecs,
                       precond_applies=pc.applies, residuals=monitor.history(), time=elapsed,
                       method=key, backend="numpy", info=info)


def _solve_keeping_the_best(spec, op, b, x, pc, monitor, method_options, info):
    """Run the method under the true-residual policy; a failure returns the best iterate seen.

    The candidates are the initial guess and the iterate of every attempt (each attempt's
    true residual is computed anyway to confirm or refute its convergence), so a failed solve
    is never worse than ``x0`` and never NaN. ``info["returned_iterate"]`` says when the
    returned x is not the last one: ``"initial"`` (x0) or ``"earlier"`` (an earlier attempt).
    """
    x_start = x.copy()
    state = {"x": x, "best": None, "best_norm": math.inf}

    def attempt() -> ConvergedReason:
        monitor.true_residual = None  # the method may change x in place
        state["x"], reason, details = spec.function(op, b, state["x"], pc, monitor,
                                                    **method_options)
        info.update(details)
        return reason

    def confirmed() -> bool:
        norm = _true_norm(op, b, state["x"], monitor)
        if norm < state["best_norm"]:
            state["best"], state["best_norm"] = state["x"].copy(), norm
        return monitor.is_converged(norm)

    reason = confirm_on_true_residual(attempt, confirmed, lambda: monitor.remaining)
    x = state["x"]
    if reason.converged:
        return x, reason
    last_norm = _true_norm(op, b, x, monitor)
    if last_norm <= state["best_norm"]:
        state["best"], state["best_norm"] = x, last_norm
    # ‖b − A x0‖: ‖b‖ for a zero guess, else one product (a failed solve only).
    start_norm = (float(np.linalg.norm(b)) if not np.any(x_start)
                  else float(np.linalg.norm(b - op.matvec(x_start))))
    if not state["best_norm"] <= start_norm:
        info["returned_iterate"] = "initial"
        return x_start, reason
    if state["best"] is not x:
        info["returned_iterate"] = "earlier"
    return state["best"], reason


def _true_norm(op, b: np.ndarray, x: np.ndarray, monitor: ConvergenceMonitor) -> float:
    """``‖b − A x‖``, reusing the value a method confirmed for this very ``x``."""
    if monitor.true_residual is not None and monitor.true_residual[0] is x:
        return monitor.true_residual[1]
    if not np.all(np.isfinite(x)):
        return float("nan")
    norm = float(np.linalg.norm(b - op.matvec(x)))
    monitor.true_residual = (x, norm)
    return norm
