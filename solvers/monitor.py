"""The one place that decides, from residual norms, whether a solve has ended and why."""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from pdesuite.solvers.result import ConvergedReason

Callback = Callable[[int, float], None]

#: Divergence test of every backend: stop when ``‖r‖ > DEFAULT_DTOL·‖r0‖`` (PETSc's default).
DEFAULT_DTOL = 1e5


class ConvergenceMonitor:
    """Tracks residual norms against ``‖r‖ ≤ max(rtol·‖b‖, atol)`` and the iteration cap.

    Methods call :meth:`start` with the initial residual norm, then :meth:`step` once per
    iteration; each returns ``None`` to go on or the :class:`ConvergedReason` to stop with.
    ``dtol``: stop with DIVERGED_DTOL when ``‖r‖ > dtol·‖r0‖`` (default :data:`DEFAULT_DTOL`).
    """

    def __init__(self, b_norm: float, rtol: float, atol: float, maxiter: int,
                 callback: Optional[Callback] = None, dtol: float = DEFAULT_DTOL):
        self.rtol_target = rtol * b_norm
        self.atol = atol
        self.target = max(self.rtol_target, atol)
        self.maxiter = maxiter
        self.callback = callback
        self.dtol = dtol
        self.iterations = 0
        self.residuals: list[float] = []
        self._r0 = math.inf
        #: ``(x, ‖b − A x‖)`` set by a method that computed the true residual of the iterate
        #: it returns, so that the caller's confirmation costs no product.
        self.true_residual: Optional[tuple[np.ndarray, float]] = None

    def converged_reason(self) -> ConvergedReason:
        return (ConvergedReason.CONVERGED_RTOL if self.rtol_target >= self.atol
                else ConvergedReason.CONVERGED_ATOL)

    def is_converged(self, rnorm: float) -> bool:
        return rnorm <= self.target

    def start(self, rnorm: float) -> Optional[ConvergedReason]:
        """Record the initial residual norm (not an iteration)."""
        rnorm = float(rnorm)
        if not self.residuals:
            self._r0 = rnorm
        self.residuals.append(rnorm)
        if not math.isfinite(rnorm):
            return ConvergedReason.DIVERGED_NAN_OR_INF
        if rnorm <= self.target:
            return self.converged_reason()
        if self.iterations >= self.maxiter:
            return ConvergedReason.DIVERGED_MAX_ITERATIONS
        return None

    def step(self, rnorm: float) -> Optional[ConvergedReason]:
        """Record the residual norm after one more iteration."""
        rnorm = float(rnorm)
        self.iterations += 1
        self.residuals.append(rnorm)
        if self.callback is not None:
            self.callback(self.iterations, rnorm)
        if not math.isfinite(rnorm):
            return ConvergedReason.DIVERGED_NAN_OR_INF
        if rnorm <= self.target:
            return self.converged_reason()
        if rnorm > self.dtol * self._r0:
            return ConvergedReason.DIVERGED_DTOL
        if self.iterations >= self.maxiter:
            return ConvergedReason.DIVERGED_MAX_ITERATIONS
        return None

    @property
    def remaining(self) -> int:
        return self.maxiter - self.iterations

    def history(self) -> np.ndarray:
        return np.asarray(self.residuals, dtype=float)


#: How often a claimed convergence whose true residual misses the target is continued from the
#: current iterate before the solve ends as DIVERGED_STAGNATION. Every backend uses this rule.
TRUE_RESIDUAL_RETRIES = 3


def confirm_on_true_residual(attempt: Callable[[], ConvergedReason],
                             confirmed: Callable[[], bool],
                             remaining: Callable[[], int]) -> ConvergedReason:
    """The one true-residual policy of every backend.

    A method's own residual (a recurrence, a preconditioned norm, an estimate) may drift from
    ``‖b − A x‖``. So a convergence the method claims counts only when ``confirmed()`` (the
    true residual meets the target); otherwise the method runs again from its current iterate,
    at most :data:`TRUE_RESIDUAL_RETRIES` more times, and the solve then ends as
    DIVERGED_STAGNATION, or as DIVERGED_MAX_ITERATIONS once ``remaining()`` iterations are 0.

    Args:
        attempt: runs the method from the current iterate and returns its reason.
        confirmed: whether the true residual of the current iterate meets the target. For a
            batch, whether every column that claimed convergence is confirmed (the backend
            reactivates the others before the next attempt).
        remaining: iterations left under ``maxiter``.
    """
    for _ in range(TRUE_RESIDUAL_RETRIES + 1):
        reason = attempt()
        if not reason.converged or confirmed():
            return reason
        if remaining() <= 0:
            return ConvergedReason.DIVERGED_MAX_ITERATIONS
    return ConvergedReason.DIVERGED_STAGNATION
