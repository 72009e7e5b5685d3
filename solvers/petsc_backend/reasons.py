"""PETSc's ``KSPConvergedReason`` and ``PCFailedReason`` names, and the mapping to ours."""

from __future__ import annotations

from typing import Optional

from petsc4py import PETSc

from pdesuite.solvers.result import ConvergedReason

__all__ = ["PETSC_REASON_MAP", "pc_failure_name", "petsc_code", "reason_name"]

#: PETSc ``KSPConvergedReason`` names → our reasons. Converged PETSc reasons map to None:
#: the true-residual check decides between CONVERGED_RTOL, CONVERGED_ATOL and a retry.
PETSC_REASON_MAP: dict[str, Optional[ConvergedReason]] = {
    "CONVERGED_RTOL": None,
    "CONVERGED_ATOL": None,
    "CONVERGED_RTOL_NORMAL_EQUATIONS": None,
    "CONVERGED_ATOL_NORMAL_EQUATIONS": None,
    "CONVERGED_ITS": None,
    "CONVERGED_HAPPY_BREAKDOWN": None,
    "CONVERGED_STEP_LENGTH": None,
    "CONVERGED_NEG_CURVE": None,
    "CONVERGED_USER": None,
    "DIVERGED_MAX_IT": ConvergedReason.DIVERGED_MAX_ITERATIONS,
    "DIVERGED_DTOL": ConvergedReason.DIVERGED_DTOL,
    "DIVERGED_BREAKDOWN": ConvergedReason.DIVERGED_BREAKDOWN,
    "DIVERGED_BREAKDOWN_BICG": ConvergedReason.DIVERGED_BREAKDOWN,
    "DIVERGED_NULL": ConvergedReason.DIVERGED_BREAKDOWN,
    "DIVERGED_NONSYMMETRIC": ConvergedReason.DIVERGED_NONSYMMETRIC,
    # A failed PC set-up (a zero pivot in ILU, ...); info["petsc_reason"] keeps PETSc's name.
    "DIVERGED_PCSETUP_FAILED": ConvergedReason.DIVERGED_PC_FAILED,
    "DIVERGED_PC_FAILED": ConvergedReason.DIVERGED_PC_FAILED,
    "DIVERGED_INNER_SOLVE_FAILED": ConvergedReason.DIVERGED_BREAKDOWN,
    "DIVERGED_USER": ConvergedReason.DIVERGED_BREAKDOWN,
    "DIVERGED_INDEFINITE_PC": ConvergedReason.DIVERGED_INDEFINITE_PC,
    "DIVERGED_NANORINF": ConvergedReason.DIVERGED_NAN_OR_INF,
    "DIVERGED_INDEFINITE_MAT": ConvergedReason.DIVERGED_INDEFINITE_MAT,
}

_REASON_NAMES: dict[int, str] = {
    getattr(PETSc.KSP.ConvergedReason, name): name
    for name in dir(PETSc.KSP.ConvergedReason)
    if name.startswith(("CONVERGED_", "DIVERGED_")) and name != "CONVERGED_ITERATING"
}

#: The reverse of :data:`PETSC_REASON_MAP`: our reason → the PETSc name a python KSP sets.
#: DIVERGED_STAGNATION has no PETSc name and becomes DIVERGED_BREAKDOWN.
_PETSC_NAME_OF: dict[ConvergedReason, str] = {
    ConvergedReason.CONVERGED_RTOL: "CONVERGED_RTOL",
    ConvergedReason.CONVERGED_ATOL: "CONVERGED_ATOL",
    ConvergedReason.DIVERGED_PC_FAILED: "DIVERGED_PC_FAILED",
}
for _name, _ours in PETSC_REASON_MAP.items():
    if _ours is not None:
        _PETSC_NAME_OF.setdefault(_ours, _name)


def reason_name(code: int) -> str:
    """PETSc's name of a ``KSPConvergedReason`` code."""
    return _REASON_NAMES.get(code, f"UNKNOWN({code})")


def our_reason(name: str) -> ConvergedReason:
    """Our reason for a PETSc name of a failure (an unknown one is a breakdown)."""
    return PETSC_REASON_MAP.get(name) or ConvergedReason.DIVERGED_BREAKDOWN


def petsc_code(reason: ConvergedReason) -> int:
    """The ``KSPConvergedReason`` code that stands for one of our reasons."""
    return getattr(PETSc.KSP.ConvergedReason, _PETSC_NAME_OF.get(reason, "DIVERGED_BREAKDOWN"))


def pc_failure_name(code: int) -> str:
    """PETSc's name of a ``PCFailedReason`` code."""
    names = {getattr(PETSc.PC.FailedReason, name): name
             for name in dir(PETSc.PC.FailedReason) if not name.startswith("_")}
    return names.get(code, f"UNKNOWN({code})")
