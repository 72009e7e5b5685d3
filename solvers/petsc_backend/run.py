"""The KSP solves of one system: the true-residual policy, and the best iterate on failure.

The suite's contract is ``‖b − A x‖ ≤ max(rtol·‖b‖, atol)`` on the true residual. The loop
itself stays PETSc's (no Python per iteration unless a callback is given), with the norm type
chosen so that PETSc's test is that contract wherever the method allows (see :mod:`.methods`).

- After every KSP solve that PETSc reports as converged, one product computes the true
  residual. A miss continues the KSP from its iterate, now asked to bring its own norm below
  the target times the observed ratio of its norm to the true one, halved for a margin. That
  is the suite's one policy, :func:`~pdesuite.solvers.monitor.confirm_on_true_residual`: at
  most ``TRUE_RESIDUAL_RETRIES`` continuations within ``maxiter``, then DIVERGED_STAGNATION.
- PETSc wants ``rtol < 1``: a larger rtol is passed as the absolute target it stands for.
- A failed solve returns the best iterate it has, on the true residual: the best of the initial
  guess, the iterate of every attempt whose convergence claim was refuted (a continuation
  may end worse: CG's residual is not monotone) and the final one; never NaN (one or two
  more products, counted). ``info["returned_iterate"]`` says when that is not the final
  iterate: ``"initial"`` or ``"earlier"``, as on the NumPy backend. GMRES and FGMRES that break
  down on a singular Hessenberg matrix leave ``x`` at the start of the failed cycle
  (KSPGMRESBuildSoln gives up); the cycle is run again one step short of the breakdown, which
  yields the iterate of least residual that GMRES reached (``info["recovery_iterations"]``;
  those repeated steps are in ``matvecs``, not in ``iterations`` nor ``residuals``).
- A PC whose set-up fails (a zero pivot in ILU/ICC) gives DIVERGED_PC_FAILED and ``x`` = the
  initial guess (PETSc itself fills x with Inf).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from petsc4py import PETSc

from pdesuite.solvers.monitor import DEFAULT_DTOL, confirm_on_true_residual
from pdesuite.solvers.petsc_backend.reasons import our_reason, pc_failure_name, reason_name
from pdesuite.solvers.result import ConvergedReason

if TYPE_CHECKING:  # pragma: no cover
    from pdesuite.solvers.petsc_backend.solver import PetscSolver

__all__ = ["KSPRun"]

#: Methods whose breakdown leaves ``x`` at the start of the failed restart cycle.
_CYCLE_METHODS = ("gmres", "fgmres")


class KSPRun:
    """The KSP solves of ``A x = b`` for one call of ``PetscSolver.solve``.

    Args:
        solver: the configured solver (its KSP has ``mat`` as operator).
        mat, b_vec: the system; ``x_vec`` holds the initial guess and receives the iterate.
        x0_vec: the initial guess (None: zero), kept to fall back on.
        b_norm: ``‖b‖`` > 0.

    After :meth:`run`: ``iterations``, ``matvecs``, ``pc_applies``, ``residuals()`` (the norms
    PETSc monitored, ``[iterations + 1]``), ``attempts``, ``true_norm`` (``‖b − A x‖`` of the
    returned ``x``), ``petsc_name`` and ``info``.
    """

    def __init__(self, solver: "PetscSolver", mat: "PETSc.Mat", b_vec: "PETSc.Vec",
                 x_vec: "PETSc.Vec", x0_vec: Optional["PETSc.Vec"], b_norm: float):
        self.solver = solver
        self.ksp = solver.ksp
        self.mat, self.b_vec, self.x_vec, self.x0_vec = mat, b_vec, x_vec, x0_vec
        self.b_norm = b_norm
        target_rtol = solver.rtol * b_norm
        self.target = max(target_rtol, solver.atol)
        self.converged_as = (ConvergedReason.CONVERGED_RTOL if target_rtol >= solver.atol
                             else ConvergedReason.CONVERGED_ATOL)
        # PETSc requires rtol < 1 (KSPSetTolerances): a larger one is the absolute target.
        self.rtol_k, self.atol_k = ((solver.rtol, solver.atol) if solver.rtol < 1.0
                                    else (0.0, self.target))
        self.nonzero_guess = x0_vec is not None
        self.iterations = self.matvecs = self.pc_applies = self.attempts = 0
        self.history: list[np.ndarray] = []
        self.petsc_name: Optional[str] = None
        self.info: dict[str, Any] = {}
        #: ‖b − A x‖ of the current x_vec, or None when x_vec changed since it was computed
        self.true_norm: Optional[float] = None
        self._last_its = 0
        self._residual = b_vec.duplicate()
        #: copy of the best refuted iterate so far (allocated at the first one) and its norm
        self._best: Optional["PETSc.Vec"] = None
        self._best_norm = math.inf

    # ------------------------------------------------------------------ the policy

    def run(self) -> ConvergedReason:
        """Solve under the true-residual policy; on failure keep the best iterate."""
        try:
            reason = confirm_on_true_residual(self._attempt, self._confirmed,
                                              lambda: self.solver.maxiter - self.iterations)
            if not reason.converged:
                if self.solver.method in _CYCLE_METHODS and self.petsc_name == "DIVERGED_BREAKDOWN":
                    self._recover_cycle()
                self._keep_best()
            if self.true_norm is None:
                self.true_norm = self._true_residual(self.x_vec)
            return reason
        finally:
            self._residual.destroy()
            if self._best is not None:
                self._best.destroy()
                self._best = None

    def _attempt(self) -> ConvergedReason:
        """One KSP solve from the current iterate; a PETSc convergence is only a claim."""
        if self.true_norm is not None and not math.isfinite(self.true_norm):
            return ConvergedReason.DIVERGED_NAN_OR_INF
        python_ksp = self.solver.python_ksp
        if python_ksp is not None:
            python_ksp.continuing = self.attempts > 0
            python_ksp.reason = None
        self.solver.its_offset = self.iterations
        its = self._ksp_solve(max(self.solver.maxiter - self.iterations, 1))
        self.attempts += 1
        self.iterations += its
        hist = np.asarray(self.ksp.getConvergenceHistory(), dtype=float)
        self.history.append(hist if not self.history else hist[1:])
        code = self.ksp.getConvergedReason()
        self.petsc_name = reason_name(code)
        if code > 0:
            return self.converged_as
        reason = our_reason(self.petsc_name)
        if self.petsc_name == "DIVERGED_PCSETUP_FAILED":
            # PETSc fills x with Inf to poison it; no iteration ran, so the last valid
            # iterate is the initial guess.
            self.info["pc_failed_reason"] = pc_failure_name(self.ksp.getPC().getFailedReason())
            self._restore_initial_guess()
        elif python_ksp is not None and python_ksp.reason is not None:
            reason = python_ksp.reason  # ours, stagnation included
        return reason

    def _confirmed(self) -> bool:
        """Whether the true residual of the current iterate meets the target; if not, the
        tolerances of the continuation."""
        true_norm = self.true_norm = self._true_residual(self.x_vec)
        if not math.isfinite(true_norm):
            return False  # the next attempt returns DIVERGED_NAN_OR_INF
        if true_norm <= self.target:
            return True
        if true_norm < self._best_norm:
            # the continuation may end worse: keep this iterate to fall back on
            if self._best is None:
                self._best = self.x_vec.duplicate()
            self.x_vec.copy(self._best)
            self._best_norm = true_norm
        # The continuation starts from the true residual: record that one.
        last = self.history[-1] = self.history[-1].copy()
        if last.size:
            last[-1] = true_norm
        petsc_norm = self.ksp.getResidualNorm()
        if petsc_norm > 0 and math.isfinite(petsc_norm):
            self.rtol_k, self.atol_k = 0.0, 0.5 * self.target * petsc_norm / true_norm
        else:
            shrink = 0.5 * self.target / true_norm
            self.rtol_k, self.atol_k = self.rtol_k * shrink, self.atol_k * shrink
        self.nonzero_guess = True
        return False

    # ------------------------------------------------------------------ the best iterate

    def _recover_cycle(self) -> None:
        """Rerun GMRES's failed cycle one step short of the breakdown (see the module docstring)."""
        restart = self.solver.options["restart"]
        its = self._last_its
        steps = its - 1 - restart * ((its - 1) // restart)
        if steps < 1:
            return  # the cycle broke down at its first step: x is the best there is
        self.solver.replaying = True
        try:
            self.nonzero_guess = True
            self._ksp_solve(steps)
        finally:
            self.solver.replaying = False
        self.info["recovery_iterations"] = steps

    def _keep_best(self) -> None:
        """Leave in x_vec the best of the final iterate, the best refuted one and the initial
        guess (a tie keeps the later); a non-finite iterate is never the best."""
        start = (self.b_norm if self.x0_vec is None
                 else self._true_residual(self.x0_vec))
        if self.petsc_name == "DIVERGED_PCSETUP_FAILED":
            final = start  # x is the initial guess already
        else:
            final = self.true_norm
            if final is None:
                final = self._true_residual(self.x_vec)
        if self._best is not None and not final <= self._best_norm:
            self._best.copy(self.x_vec)
            final = self._best_norm
            self.info["returned_iterate"] = "earlier"
        if not final <= start:
            self._restore_initial_guess()
            final = start
            self.info["returned_iterate"] = "initial"
        self.true_norm = final

    def _restore_initial_guess(self) -> None:
        if self.x0_vec is not None:
            self.x0_vec.copy(self.x_vec)
        else:
            self.x_vec.zeroEntries()
        self.true_norm = None

    # ------------------------------------------------------------------ PETSc calls

    def _true_residual(self, x: "PETSc.Vec") -> float:
        """``‖b − A x‖`` (one counted product); NaN for a non-finite x."""
        self.mat.mult(x, self._residual)
        self._residual.aypx(-1.0, self.b_vec)
        self.matvecs += 1
        norm = self._residual.norm()
        return norm if math.isfinite(norm) else math.nan

    def _ksp_solve(self, max_it: int) -> int:
        """One KSPSolve of at most ``max_it`` iterations from x_vec; returns its iterations
        and adds its products to the counts. x_vec changes."""
        solver, spec = self.solver, self.solver.spec
        self.ksp.setTolerances(rtol=self.rtol_k, atol=self.atol_k, divtol=DEFAULT_DTOL,
                               max_it=max_it)
        self.ksp.setInitialGuessNonzero(self.nonzero_guess)
        self.ksp.setConvergenceHistory(length=max_it + 2, reset=True)
        self.true_norm = None
        solver.ksp_solve(self.b_vec, self.x_vec)
        its = self.ksp.getIterationNumber()
        self._last_its = its
        if solver.python_ksp is not None:
            self.matvecs += solver.python_ksp.matvecs
            self.pc_applies += solver.python_ksp.pc_applies
        else:
            restart = solver.options.get("restart")
            cycles = max(1, math.ceil(its / restart)) if restart else 1
            guess = int(self.nonzero_guess)
            capped = int(self.ksp.getConvergedReason() == PETSc.KSP.ConvergedReason.DIVERGED_MAX_IT)
            self.matvecs += spec.matvecs(its, cycles, guess)
            self.pc_applies += spec.pc_applies(its, cycles, guess, solver.side, capped)
        return its

    def residuals(self) -> np.ndarray:
        return np.concatenate(self.history) if self.history else np.zeros(0)
