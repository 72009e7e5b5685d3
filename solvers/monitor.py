"""The one place that decides, from residual norms, whether a solve has ended and why."""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from pdesuite.solvers.result import ConvergedReason

Callback = Callable[[int, float], None]


class ConvergenceMonitor:
    """Tracks residual norms against ``‖r‖ ≤ max(rtol·‖b‖, atol)`` and the iteration cap.

    Methods call :meth:`start` with the initial residual norm, then :meth:`step` once per
    iteration; each returns ``None`` to go on or the :class:`ConvergedReason` to stop with.
    ``dtol``: stop with DIVERGED_DTOL when ``‖r‖ > dtol·‖r0‖`` (PETSc's default 1e5).
    """

    def __init__(self, b_norm: float, rtol: float, atol: float, maxiter: int,
                 callback: Optional[Callback] = None, dtol: float = 1e5):
        self.rtol_target = rtol * b_norm
        self.atol = atol
        self.target = max(self.rtol_target, atol)
        self.maxiter = maxiter
        self.callback = callback
        self.dtol = dtol
        self.iterations = 0
        self.residuals: list[float] = []
        self._r0 = math.inf

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
