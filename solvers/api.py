"""``solve``: one signature for every method and backend, in the manner of SciPy's solvers."""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Optional

import numpy as np

from pdesuite.solvers.linear_operator import as_operator
from pdesuite.solvers.monitor import ConvergenceMonitor
from pdesuite.solvers.preconditioner import CountingPreconditioner, make_preconditioner
from pdesuite.solvers.registry import METHODS
from pdesuite.solvers.result import ConvergedReason, SolveResult, SolverError

BACKENDS = ("numpy", "petsc", "torch")
DEFAULT_MAXITER = 10_000
#: Options that configure a named preconditioner rather than the method.
PRECONDITIONER_OPTION_PREFIX = "pc_"
#: How often a claimed convergence whose true residual misses the target is retried from the
#: current iterate before the solve is declared stagnant.
_TRUE_RESIDUAL_RETRIES = 3
#: Methods whose theory needs a symmetric positive definite preconditioner.
_NEEDS_SPD_PRECONDITIONER = ("cg", "minres", "rcg")


def _load_methods() -> None:
    # Importing the modules registers their methods.
    from pdesuite.solvers import krylov, relaxation, gcrodr  # noqa: F401


def detect_backend(A: Any) -> str:
    """The backend that the type of ``A`` asks for, without importing torch or petsc4py."""
    module = type(A).__module__
    if module.startswith("petsc4py"):
        return "petsc"
    if module.startswith("torch"):
        return "torch"
    return "numpy"


def _is_tuner(value: Any) -> bool:
    return hasattr(value, "suggest") and hasattr(value, "observe")


def validate_tolerances(rtol: float, atol: float, maxiter: Optional[int]) -> int:
    """Check the stopping parameters shared by every backend; return the effective maxiter."""
    if not np.isfinite(rtol) or rtol < 0:
        raise ValueError(f"rtol: must be a finite number >= 0, got {rtol}")
    if not np.isfinite(atol) or atol < 0:
        raise ValueError(f"atol: must be a finite number >= 0, got {atol}")
    if rtol == 0 and atol == 0:
        raise ValueError("rtol: must be > 0 unless atol > 0 (a zero tolerance cannot be met)")
    if maxiter is None:
        return DEFAULT_MAXITER
    if int(maxiter) != maxiter or maxiter < 1:
        raise ValueError(f"maxiter: must be an integer >= 1, got {maxiter}")
    return int(maxiter)


def solve(
    A: Any,
    b: Any,
    method: str = "gmres",
    M: Any = None,
    x0: Any = None,
    rtol: float = 1e-5,
    atol: float = 0.0,
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
            Defaults 1e-5 and 0.
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

    tuners = {name: value for name, value in options.items() if _is_tuner(value)}
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
    maxiter = validate_tolerances(rtol, atol, maxiter)
    pc_options = {k[len(PRECONDITIONER_OPTION_PREFIX):]: v for k, v in options.items()
                  if k.startswith(PRECONDITIONER_OPTION_PREFIX)}
    method_options = {k: v for k, v in options.items() if not k.startswith(PRECONDITIONER_OPTION_PREFIX)}
    unknown = set(method_options) - set(spec.options)
    if unknown:
        raise TypeError(f"method {key!r}: unknown option(s) {sorted(unknown)}; it takes {list(spec.options)}")

    op, b = as_operator(A, b)
    if x0 is None:
        x = np.zeros(op.n, dtype=op.dtype)
    else:
        x0 = np.asarray(x0)
        if x0.shape != (op.n,):
            raise ValueError(f"x0: expected shape ({op.n},), got {x0.shape}")
        if not np.all(np.isfinite(x0)):
            raise ValueError("x0 contains NaN or Inf entries")
        x = x0.astype(op.dtype, copy=True)

    start = time.perf_counter()
    pc = CountingPreconditioner(make_preconditioner(M, op, **pc_options))
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
    else:
        for attempt in range(_TRUE_RESIDUAL_RETRIES + 1):
            x, reason, info = spec.function(op, b, x, pc, monitor, **method_options)
            if not reason.converged:
                break
            true_norm = float(np.linalg.norm(b - op.matvec(x)))
            if monitor.is_converged(true_norm):
                break
            # The recurrence's residual drifted from the true one: continue from x.
            if monitor.remaining <= 0:
                reason = ConvergedReason.DIVERGED_MAX_ITERATIONS
                break
        else:
            reason = ConvergedReason.DIVERGED_STAGNATION
    elapsed = time.perf_counter() - start
    return SolveResult(x=x, reason=reason, iterations=monitor.iterations, matvecs=op.matvecs,
                       precond_applies=pc.applies, residuals=monitor.history(), time=elapsed,
                       method=key, backend="numpy", info=info)
