"""Per-column bookkeeping of a batched solve, kept on the device: status, history, best iterate.

:class:`ColumnMonitor` decides, for each of the ``B`` columns, whether it goes on, converged or
failed, with the rules of :mod:`pdesuite.solvers.monitor` (``‖r‖ ≤ max(rtol·‖b‖, atol)``;
divergence at ``‖r‖ > DEFAULT_DTOL·‖r0‖``). :class:`BestIterate` keeps, per column, the iterate
with the smallest true residual seen, which is what a solve returns.
"""

from __future__ import annotations

from typing import Callable, Optional

from pdesuite.solvers.monitor import DEFAULT_DTOL
from pdesuite.solvers.result import ConvergedReason

#: Status of a column still iterating; any other status is the value of its ConvergedReason.
ACTIVE = 0
# Enum member lookups cost a microsecond each, a few times per iteration: keep plain ints.
NAN_CODE = ConvergedReason.DIVERGED_NAN_OR_INF.value
DTOL_CODE = ConvergedReason.DIVERGED_DTOL.value
_INF = float("inf")


class ColumnMonitor:
    """Per-column status, iteration counts and residual history, without host syncs per step.

    ``status`` ``[B]`` holds :data:`ACTIVE` for a column still iterating, else the value of the
    column's ConvergedReason. The per-column decisions are taken on the device every step; the
    host learns whether any column is still going on only at a *check* (one host sync), made
    once ``check_every`` steps have run since the last one, at ``maxiter``, and wherever a
    method calls :meth:`settle` (GMRES at the end of each cycle).

    Between two checks a method may run *idle* steps, in which no column is active (they all
    stopped, or, in GMRES, ended their cycle): every update is masked to zero there. Once no
    column is active none becomes active again before the next check, so the idle steps are the
    last ones before it, and the check drops them: they do not count in ``iteration`` (hence
    not toward ``maxiter``), in the residual history or in the callbacks. So x, the reasons,
    the iteration counts and the residual history do not depend on ``check_every``. What an
    idle step cannot undo is its block products: with ``check_every > 1``, ``matvecs`` and
    ``precond_applies`` may count up to ``check_every − 1`` fully masked products with A and M
    after the last active step of a solve, and for GMRES of each restart cycle.
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
        self._active = None
        self.status = torch.zeros(b_norms.shape, dtype=torch.int64, device=b_norms.device)
        self.iterations_per_column = torch.zeros_like(self.status)
        self.maxiter = maxiter
        self.check_every = check_every
        self.callback = callback
        self.squeeze = squeeze
        self.iteration = 0
        #: ``[B]`` monitored norms: the initial ones, then one entry per iteration.
        self.history: list = []
        #: Per step since the last check, whether some column was active (device booleans).
        self._unchecked: list = []
        self._divergence_limit = None

    @property
    def status(self):
        return self._status

    @status.setter
    def status(self, value) -> None:
        self._status = value
        self._active = None

    def active(self):
        """``[B]`` columns still iterating (cached until the status changes)."""
        if self._active is None:
            self._active = self._status == ACTIVE
        return self._active

    def any_active(self) -> bool:
        return bool(self.active().any())  # host sync

    @property
    def remaining(self) -> int:
        return self.maxiter - self.iteration

    def fail(self, mask, reason: ConvergedReason) -> None:
        """Set ``reason`` for the columns in ``mask`` that are still active."""
        import torch

        self.status = torch.where(mask & self.active(), reason.value, self.status)

    def _codes(self, rnorm, otherwise=ACTIVE):
        """The status each column takes from its residual norm, ``otherwise`` (ACTIVE: go
        on, or a method's failure codes ``[B]``) where the norm decides nothing.

        A norm is ≥ 0, +Inf or NaN: ``rnorm < inf`` is its finiteness test, one comparison."""
        import torch

        code = torch.where(rnorm <= self.target, self.converged_code,
                           torch.where(rnorm > self._divergence_limit, DTOL_CODE, otherwise))
        return torch.where(rnorm < _INF, code, NAN_CODE)

    def start(self, rnorm, zero_columns) -> None:
        """Record the initial residual norms ``[B]`` (not an iteration)."""
        import torch

        self._divergence_limit = DEFAULT_DTOL * rnorm
        self.history.append(rnorm)
        self.status = self._codes(rnorm)
        # As in the NumPy backend: b = 0 has the solution x = 0, reached with no iteration.
        self.status = torch.where(zero_columns, ConvergedReason.CONVERGED_ATOL.value, self.status)

    def step(self, rnorm, active, failure=None, continuing=None) -> bool:
        """Record one step and return whether to take another.

        Args:
            rnorm: ``[B]`` residual norms after the step.
            active: ``[B]`` columns that took this step.
            failure: ``[B]`` codes of failures the method met in this step (ACTIVE for
                none); a column that converged in the same step counts as converged.
            continuing: ``[B]`` columns that may take the next step if still active
                (default all): GMRES ends a column's restart cycle at a breakdown.

        Returns False at a check that finds no column going on, or at ``maxiter``. The
        callback of a step is made at the check that counts it (at once for
        ``check_every=1``), never for an idle step.
        """
        import torch

        self.iteration += 1
        self.iterations_per_column += active
        rnorm = torch.where(active, rnorm, self.history[-1])
        self.history.append(rnorm)
        self._unchecked.append(active.any())
        code = self._codes(rnorm, ACTIVE if failure is None else failure)
        self.status = torch.where(active, code, self.status)
        if self.iteration < self.maxiter and len(self._unchecked) < self.check_every:
            return True
        going_on = self.active() if continuing is None else self.active() & continuing
        dropped, any_going_on = self._check(going_on.any())
        # An idle step means no column went on after it (see the class docstring).
        return dropped == 0 and any_going_on and self.iteration < self.maxiter

    def settle(self) -> int:
        """Check now: drop the idle steps since the last check and make their callbacks;
        returns how many steps were dropped. A no-op right after a check."""
        return self._check(None)[0]

    def _check(self, going_on) -> tuple[int, bool]:
        """``(idle steps dropped, going_on as a bool)`` with one transfer to the host."""
        import torch

        pending = self._unchecked
        if not pending:
            return 0, bool(going_on) if going_on is not None else False
        flags = torch.stack(pending if going_on is None else [*pending, going_on]).tolist()
        any_going_on = bool(flags.pop()) if going_on is not None else False
        busy = len(flags)
        while busy and not flags[busy - 1]:
            busy -= 1
        dropped = len(flags) - busy
        first = self.iteration - len(flags) + 1  # the number of the first unchecked step
        if dropped:
            self.iteration -= dropped
            del self.history[len(self.history) - dropped:]
        self._unchecked = []
        if self.callback is not None:
            for k in range(first, first + busy):
                rnorm = self.history[k]
                self.callback(k, float(rnorm[0]) if self.squeeze else rnorm)
        return dropped, any_going_on

    def columns(self, columns: slice) -> "ColumnMonitor":
        """A monitor of the columns ``columns`` alone that goes on from this one's state
        (settled first), without a callback: a method may iterate a group of columns on its
        own, then hand the groups back to :meth:`merge`."""
        self.settle()
        part = ColumnMonitor.__new__(ColumnMonitor)
        part.target = self.target[columns]
        part.converged_code = self.converged_code[columns]
        part.status = self.status[columns]
        part.iterations_per_column = self.iterations_per_column[columns].clone()
        part.maxiter, part.check_every = self.maxiter, self.check_every
        part.callback, part.squeeze = None, False
        part.iteration = self.iteration
        part.history = [self.history[-1][columns]]
        part._unchecked = []
        part._divergence_limit = self._divergence_limit[columns]
        return part

    def merge(self, parts: list) -> None:
        """Take back the state of the monitors :meth:`columns` made, one per column group, the
        groups in column order and covering every column: the steps are those of the group
        that took most (each group's last norms repeated after it stopped, as for a column
        that stops in a batch), and the callbacks of the new steps are made now."""
        import torch

        for part in parts:
            part.settle()
        first = self.iteration + 1
        self.iteration = max(part.iteration for part in parts)
        for k in range(1, self.iteration - first + 2):
            self.history.append(torch.cat([part.history[min(k, len(part.history) - 1)]
                                           for part in parts]))
        self.status = torch.cat([part.status for part in parts])
        self.iterations_per_column = torch.cat([part.iterations_per_column for part in parts])
        if self.callback is not None:
            for k in range(first, self.iteration + 1):
                rnorm = self.history[k]
                self.callback(k, float(rnorm[0]) if self.squeeze else rnorm)

    def reactivate_unconfirmed(self, true_norms):
        """Columns that claim convergence but whose true residual misses the target (or is not
        finite) go back to active; returns their mask ``[B]``."""
        import torch

        unconfirmed = (self.status > 0) & ~(true_norms <= self.target)
        self.status = torch.where(unconfirmed, ACTIVE, self.status)
        return unconfirmed

    def effective_iterations(self) -> int:
        """The iterations of the solve: the steps in which some column was active."""
        self.settle()
        return self.iteration


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
    end of each attempt), so that it costs no product with A. Of iterates with equal norms the
    later one is kept, as the NumPy backend does: a column that did not move since an earlier
    offer returns its last iterate.

    ``source`` ``[B]`` numbers the offer each column's iterate came from: 0 for x0, then
    1, 2, ... in the order of :meth:`offer`; ``offers`` is the number of the latest offer.
    """

    def __init__(self, X, norms):
        import torch

        self.X = X.clone()
        self.norms = norms.clone()
        self.source = torch.zeros(norms.shape, dtype=torch.int64, device=norms.device)
        self.offers = 0

    def offer(self, X, norms) -> None:
        import torch

        self.offers += 1
        better = norms <= self.norms
        self.X = torch.where(better, X, self.X)
        self.norms = torch.where(better, norms, self.norms)
        self.source = torch.where(better, self.offers, self.source)

    def returned_iterates(self) -> list[str]:
        """Per column, which iterate the best one is, given that the latest offer was the
        solve's last iterate: ``"last"``, ``"initial"`` (x0) or ``"earlier"``."""
        return ["last" if k == self.offers else "initial" if k == 0 else "earlier"
                for k in self.source.cpu().tolist()]
