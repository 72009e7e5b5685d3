"""How a solve ended: the reason enum, the result object and the failure exception."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class ConvergedReason(enum.Enum):
    """Why an iterative solve stopped, numbered as PETSc's ``KSPConvergedReason``.

    Positive values converged, negative values did not. ``message`` says what happened and
    what to try next.
    """

    CONVERGED_RTOL = 2
    CONVERGED_ATOL = 3
    DIVERGED_MAX_ITERATIONS = -3
    DIVERGED_DTOL = -4
    DIVERGED_BREAKDOWN = -5
    DIVERGED_NONSYMMETRIC = -7
    DIVERGED_INDEFINITE_PC = -8
    DIVERGED_NAN_OR_INF = -9
    DIVERGED_INDEFINITE_MAT = -10
    DIVERGED_PC_FAILED = -11
    #: Not a PETSc reason: PETSc stops restarted methods only at maxiter.
    DIVERGED_STAGNATION = -100

    @property
    def converged(self) -> bool:
        return self.value > 0

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


_MESSAGES = {
    ConvergedReason.CONVERGED_RTOL: "the residual norm fell below rtol times the norm of b.",
    ConvergedReason.CONVERGED_ATOL: "the residual norm fell below atol.",
    ConvergedReason.DIVERGED_MAX_ITERATIONS: (
        "reached maxiter before the tolerance. Raise maxiter, use a stronger preconditioner, "
        "or for restarted methods a larger restart length."
    ),
    ConvergedReason.DIVERGED_DTOL: (
        "the residual grew far beyond the initial residual. The method diverges on this matrix: "
        "for relaxation check diagonal dominance or lower omega; otherwise use a Krylov method."
    ),
    ConvergedReason.DIVERGED_BREAKDOWN: (
        "the method broke down (a division by zero in its recurrences). For BiCGStab try GMRES; "
        "for a singular matrix check that b is in its range. For a direct solve: the matrix is "
        "singular or too ill-conditioned for the tolerance (info['breakdown'] says which)."
    ),
    ConvergedReason.DIVERGED_NONSYMMETRIC: (
        "CG found the matrix or the preconditioner non-symmetric. Use a symmetric "
        "preconditioner (SSOR rather than SOR) or a method for general matrices (GMRES)."
    ),
    ConvergedReason.DIVERGED_PC_FAILED: (
        "the preconditioner could not be set up (a zero pivot in ILU/ICC, for example). Try "
        "another preconditioner, shift the factorisation, or check the matrix's diagonal."
    ),
    ConvergedReason.DIVERGED_INDEFINITE_PC: (
        "the preconditioner is not positive definite, which CG and MINRES require. Use a "
        "symmetric positive definite preconditioner, or a flexible or GMRES-type method."
    ),
    ConvergedReason.DIVERGED_NAN_OR_INF: (
        "a NaN or Inf appeared in the iteration. Check A, b and the preconditioner for "
        "non-finite values or overflow (float32 on a badly scaled problem, for example)."
    ),
    ConvergedReason.DIVERGED_INDEFINITE_MAT: (
        "the matrix is not positive definite, which CG requires. Use MINRES for symmetric "
        "indefinite matrices or GMRES/BiCGStab for general ones."
    ),
    ConvergedReason.DIVERGED_STAGNATION: (
        "the residual stopped decreasing (restarted GMRES can stall on indefinite or highly "
        "non-normal matrices). Increase the restart length or add a preconditioner."
    ),
}


@dataclass
class SolveResult:
    """What a solve returns.

    Attributes:
        x: the solution (or the last iterate when not converged), shape ``[n]``.
        reason: how the solve ended; ``converged`` and ``message`` derive from it.
        iterations: iterations of the method (one per Krylov step or relaxation sweep).
        matvecs: products with A, including those for the initial and true residuals.
        precond_applies: applications of the preconditioner.
        residuals: ``[iterations + 1]`` residual norms the method monitored, starting with the
            initial one. For left-preconditioned GMRES these are preconditioned norms; the final
            convergence decision is always taken on the true residual ``‖b − A x‖``.
        time: wall time in seconds, set-up of the preconditioner included.
        method, backend: what ran.
        info: method-specific details (recycling state, tuned parameter values, ...).
    """

    x: np.ndarray
    reason: ConvergedReason
    iterations: int
    matvecs: int
    precond_applies: int
    residuals: np.ndarray
    time: float
    method: str
    backend: str = "numpy"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return self.reason.converged

    @property
    def message(self) -> str:
        return self.reason.message

    @property
    def residual_norm(self) -> float:
        """The last monitored residual norm (the largest over the columns of a batched solve)."""
        return float(np.max(self.residuals[-1])) if len(self.residuals) else float("nan")

    def __repr__(self) -> str:
        return (
            f"SolveResult(method={self.method!r}, backend={self.backend!r}, "
            f"reason={self.reason.name}, iterations={self.iterations}, matvecs={self.matvecs}, "
            f"residual={self.residual_norm:.3e}, time={self.time:.3g}s)"
        )


class SolverError(RuntimeError):
    """A solve that did not converge, raised when ``raise_on_failure=True``.

    The full :class:`SolveResult` travels with it as ``.result``.
    """

    def __init__(self, result: SolveResult):
        self.result = result
        super().__init__(
            f"{result.method} ({result.backend}) did not converge after {result.iterations} "
            f"iterations: {result.reason.name}: {result.reason.message}"
        )
