"""PETSc objects seen as what the NumPy methods take: an operator, a preconditioner, a monitor.

The suite's recycling methods (:mod:`pdesuite.solvers.recycling`) work on NumPy arrays. Run
as python KSP types (:mod:`.ksp`) they get the rank-local rows ``[n_local]`` of PETSc Vecs;
the adapters here apply the KSP's Mat and PC to such arrays, lending the arrays to work Vecs
(``placeArray``) for one operation instead of copying them, and report every residual norm to
the KSP so that PETSc's monitors and history see the iteration.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from petsc4py import PETSc

from pdesuite.solvers.linear_operator import Operator
from pdesuite.solvers.monitor import ConvergenceMonitor
from pdesuite.solvers.reduction import Reduction
from pdesuite.solvers.result import ConvergedReason

__all__ = ["KSPMonitor", "KSPPreconditioner", "LocalMatOperator"]


def _lend(vec: "PETSc.Vec", array: np.ndarray) -> None:
    """``vec.placeArray(array)``, copying only what PETSc cannot read in place."""
    if (not isinstance(array, np.ndarray) or array.dtype != PETSc.ScalarType
            or not array.flags.c_contiguous or not array.flags.writeable):
        array = np.array(array, dtype=PETSc.ScalarType)
    vec.placeArray(array)


def _apply_lent(operation: Callable[["PETSc.Vec", "PETSc.Vec"], None], vec_in: "PETSc.Vec",
                vec_out: "PETSc.Vec", array: np.ndarray, n_local: int) -> np.ndarray:
    """``operation(vec_in, vec_out)`` on ``array`` ``[n_local]`` lent to ``vec_in``; returns a
    fresh output array ``[n_local]`` (the methods may keep it)."""
    out = np.empty(n_local, dtype=PETSc.ScalarType)
    _lend(vec_in, array)
    vec_out.placeArray(out)
    try:
        operation(vec_in, vec_out)
    finally:
        vec_in.resetArray()
        vec_out.resetArray()
    return out


class LocalMatOperator(Operator):
    """``A v`` for a PETSc Mat on rank-local rows ``[n_local]``, with the comm's reduction.

    ``n`` is the local size (what the methods' arrays hold), ``global_n`` the global one.
    """

    def __init__(self, mat: "PETSc.Mat", reduction: Reduction):
        n_local, n = mat.getLocalSize()[0], mat.getSize()[0]
        super().__init__(self._mult, n_local, np.dtype(PETSc.ScalarType))
        self.reduction = reduction
        self.global_n = n
        self.mat = mat
        self._in = PETSc.Vec().createWithArray(np.zeros(n_local, dtype=PETSc.ScalarType),
                                               size=(n_local, n), comm=mat.getComm())
        self._out = self._in.duplicate()

    def _mult(self, v: np.ndarray) -> np.ndarray:
        return _apply_lent(self.mat.mult, self._in, self._out, v, self.n)

    def destroy(self) -> None:
        self._in.destroy()
        self._out.destroy()


class KSPPreconditioner:
    """The KSP's own PETSc PC (any type: jacobi, bjacobi/ilu, gamg, python, ...) as ``apply(r)``
    on rank-local rows ``[n_local]``; ``linear`` as the suite's protocol."""

    def __init__(self, pc: "PETSc.PC", work: "PETSc.Vec", linear: bool):
        self.pc = pc
        self.linear = linear
        self._in = work.duplicate()
        self._out = work.duplicate()
        self._n = work.getLocalSize()

    def apply(self, r: np.ndarray) -> np.ndarray:
        return _apply_lent(self.pc.apply, self._in, self._out, r, self._n)

    def destroy(self) -> None:
        self._in.destroy()
        self._out.destroy()


class KSPMonitor(ConvergenceMonitor):
    """The suite's monitor that also reports every residual norm to the KSP.

    Iteration number, residual norm, convergence history and ``KSPMonitor`` (so that
    ``-ksp_monitor`` and the solver's callback work) are updated at every step. A NaN or Inf
    norm ends the solve as the base class says (DIVERGED_NAN_OR_INF); PETSc refuses a
    non-finite residual norm (error 63, ``KSPSetResidualNorm``'s range check), so the KSP is
    told the largest finite number instead.
    """

    def __init__(self, ksp: "PETSc.KSP", b_norm: float, rtol: float, atol: float,
                 maxiter: int, dtol: float):
        super().__init__(b_norm, rtol, atol, maxiter, None, dtol)
        self.ksp = ksp

    def _report(self, rnorm: float) -> None:
        rnorm = rnorm if math.isfinite(rnorm) else float(np.finfo(float).max)
        self.ksp.setIterationNumber(self.iterations)
        self.ksp.setResidualNorm(rnorm)
        self.ksp.logConvergenceHistory(rnorm)
        self.ksp.monitor(self.iterations, rnorm)

    def start(self, rnorm: float) -> Optional[ConvergedReason]:
        reason = super().start(rnorm)
        self._report(float(rnorm))
        return reason

    def step(self, rnorm: float) -> Optional[ConvergedReason]:
        reason = super().step(rnorm)
        self._report(float(rnorm))
        return reason
