"""Per-column bookkeeping of a batched solve, kept on the device: status, history, best iterate.

:class:`ColumnMonitor` decides, for each of the ``B`` columns, whether it goes on, converged or
failed, with the rules of :mod:`pdesuite.solvers.monitor` (``‖r‖ ≤ max(rtol·‖b‖, atol)``;
divergence at ``‖r‖ > DEFAULT_DTOL·‖r0‖``). :class:`BestIterate` keeps, per column, the iterate
with the smallest true residual seen, which is what a solve returns.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from pdesuite.solvers.monitor import DEFAULT_DTOL
from pdesuite.solvers.result import ConvergedReason

#: Status of a column still iterating; any other status is the value of its ConvergedReason.
ACTIVE = 0
# Enum member lookups cost a microsecond each, a few times per iteration: keep plain ints.
NAN_CODE = ConvergedReason.DIVERGED_NAN_OR_INF.value
DTOL_CODE = ConvergedReason.DIVERGED_DTOL.value


class ColumnMonitor:
    """Per-column status, iteration counts and residual history, without host syncs per step.

    ``status`` ``[B]`` holds :data:`ACTIVE` for a column still iterating, else the value of the
    column's ConvergedReason. The only host synchronization is the "any column still active?"
    test, made every ``check_every`` iterations; the per-column decisions themselves are taken
    on the device every iteration, so ``check_every`` changes how many idle (fully masked)
    iterations can run at the end, never the result.
    """

    def __init__(self, b_norms, rtol: float, atol: float, maxiter: int, check_every: int,
                 callback: Optional[Callable], squeeze: bool):
        import torch

        rtol_targets = rtol * b_norms
        self.target = torch.clamp(rtol_targets, min=atol)
        self.converged_code = torch.where(
            rtol_targets >= atol,
            torch.tensor(ConvergedReason.CONVERGED_RTOL.value, device=b_norms.device),
            torch.tensor(ConvergedReason.CONVERGED_ATOL.value, device=b_norms.device))
        self.status = torch.zeros(b_norms.shape, dtype=torch.int64, device=b_norms.device)
        self.iterations_per_column = torch.zeros_like(self.status)
        self.maxiter = maxiter
        self.check_every = check_every
        self.callback = callback
        self.squeeze = squeeze
        self.iteration = 0
        #: ``[B]`` monitored norms: the initial ones, then one entry per iteration.
        self.history: list = []
        self._any_active_history: list = []
        self._divergence_limit = None

    def active(self):
        return self.status == ACTIVE

    def any_active(self) -> bool:
        return bool(self.active().any())  # host sync

    @property
    def remaining(self) -> int:
        return self.maxiter - self.iteration

    def fail(self, mask, reason: ConvergedReason) -> None:
        """Set ``reason`` for the columns in ``mask`` that are still active."""
        import torch

        self.status = torch.where(mask & self.active(), reason.value, self.status)

    def _codes(self, rnorm):
        """The status each column would take from its residual norm alone (ACTIVE: go on)."""
        import torch

        code = torch.where(rnorm <= self.target, self.converged_code,
                           torch.where(rnorm > self._divergence_limit, DTOL_CODE, ACTIVE))
        return torch.where(torch.isfinite(rnorm), code, NAN_CODE)

    def start(self, rnorm, zero_columns) -> None:
        """Record the initial residual norms ``[B]`` (not an iteration)."""
        import torch

        self._divergence_limit = DEFAULT_DTOL * rnorm
        self.history.append(rnorm)
        self.status = self._codes(rnorm)
        # As in the NumPy backend: b = 0 has the solution x = 0, reached with no iteration.
        self.status = torch.where(zero_columns, ConvergedReason.CONVERGED_ATOL.value, self.status)

    def step(self, rnorm, active, failure=None, continuing=None) -> bool:
        """Record one iteration and return whether to iterate again.

        Args:
            rnorm: ``[B]`` residual norms after the iteration.
            active: ``[B]`` columns that took this iteration.
            failure: ``[B]`` codes of failures the method met in this iteration (ACTIVE for
                none); a column that converged in the same iteration counts as converged.
            continuing: ``[B]`` columns that may take the next iteration if still active
                (default all): GMRES ends a column's restart cycle at a breakdown.
        """
        import torch

        self.iteration += 1
        self.iterations_per_column += active
        rnorm = torch.where(active, rnorm, self.history[-1])
        self.history.append(rnorm)
        self._any_active_history.append(active.any())
        code = self._codes(rnorm)
        if failure is not None:
            code = torch.where(code == ACTIVE, failure, code)
        self.status = torch.where(active, code, self.status)
        if self.callback is not None:
            self.callback(self.iteration, float(rnorm[0]) if self.squeeze else rnorm)
        if self.iteration >= self.maxiter:
            return False
        if self.iteration % self.check_every == 0:
            going_on = self.active() if continuing is None else self.active() & continuing
            return bool(going_on.any())  # host sync
        return True

    def reactivate_unconfirmed(self, true_norms):
        """Columns that claim convergence but whose true residual misses the target (or is not
        finite) go back to active; returns their mask ``[B]``."""
        import torch

        unconfirmed = (self.status > 0) & ~(true_norms <= self.target)
        self.status = torch.where(unconfirmed, ACTIVE, self.status)
        return unconfirmed

    def effective_iterations(self) -> int:
        """Iterations up to the last one in which some column was active (idle ones dropped)."""
        import torch

        if not self._any_active_history:
            return 0
        flags = torch.stack(self._any_active_history).cpu().numpy()
        busy = np.flatnonzero(flags)
        return int(busy[-1]) + 1 if busy.size else 0


def failure_codes(value, nonpositive: ConvergedReason, zero: Optional[ConvergedReason] = None):
    """Per column: ACTIVE where ``value > 0``; ``zero`` where it is 0 (if given);
    ``nonpositive`` where it is otherwise ≤ 0; NaN/Inf where it is not finite."""
    import torch

    code = torch.where(value > 0, ACTIVE, nonpositive.value)
    if zero is not None:
        code = torch.where(value == 0, zero.value, code)
    return torch.where(torch.isfinite(value), code, NAN_CODE)


class BestIterate:
    """Per column, the iterate ``[n, B]`` with the smallest true residual norm seen so far.

    A solve returns it: never worse than x0, never NaN (a NaN norm is never smaller). It is
    offered every iterate whose true residual is known anyway (x0, each GMRES restart, the
    end of each attempt), so that it costs no product with A.
    """

    def __init__(self, X, norms):
        self.X = X.clone()
        self.norms = norms.clone()

    def offer(self, X, norms) -> None:
        import torch

        better = norms < self.norms
        self.X = torch.where(better, X, self.X)
        self.norms = torch.where(better, norms, self.norms)
