"""The suite's own methods as petsc4py python-KSP types: GCRO-DR, recycling CG and DCDM.

:class:`GcrodrKSP`, :class:`RecyclingCGKSP` and :class:`DcdmKSP` run the NumPy implementations
of :mod:`pdesuite.solvers.recycling` and :mod:`pdesuite.solvers.dcdm` (not a second copy) on
the rank-local arrays of PETSc Vecs:
``A`` is applied by the KSP's Mat, the preconditioner is the KSP's own PC (any PETSc PC), and
reductions go over the KSP's communicator, so they run under ``mpiexec -n N``. The recycle
space of the recycling methods lives in the context and carries over from one solve to the
next, so one KSP reused across a sequence (``setOperators`` for each matrix) recycles. DCDM
takes any PC, nonlinear ones included: a learned preconditioner as a python PC.

Their options are the NumPy methods' (:data:`pdesuite.solvers.vocabulary.METHOD_DEFAULTS`),
read by :func:`~pdesuite.solvers.petsc_backend.option_defaults` from the constructors here.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from petsc4py import PETSc

from pdesuite.solvers.petsc_backend.adapters import KSPMonitor, KSPPreconditioner, LocalMatOperator
from pdesuite.solvers.petsc_backend.reasons import petsc_code
from pdesuite.solvers.dcdm import check_dcdm_options, deep_conjugate_direction
from pdesuite.solvers.preconditioner import CountingPreconditioner
from pdesuite.solvers.recycling import RecycleSpace, gcrodr, rcg
from pdesuite.solvers.recycling.gcrodr import check_gcrodr_options
from pdesuite.solvers.recycling.rcg import check_rcg_options
from pdesuite.solvers.recycling.space import check_recycle
from pdesuite.solvers.reduction import LOCAL_REDUCTION, MPIReduction, Reduction
from pdesuite.solvers.result import ConvergedReason
from pdesuite.solvers.vocabulary import method_default

__all__ = ["DcdmKSP", "GcrodrKSP", "RecyclingCGKSP"]

#: Counters of a method's ``info`` that add up over the continuation attempts of one solve.
_SUMMED_INFO = ("cycles", "recycle_updates", "reorthogonalizations", "recycle_matvecs")


class _SuiteKSP:
    """A petsc4py python-KSP context that runs one of the suite's NumPy methods.

    Install with ``ksp.setType(PETSc.KSP.Type.PYTHON); ksp.setPythonContext(ctx)`` or through
    :class:`~pdesuite.solvers.petsc_backend.PetscSolver`. The KSP's tolerances (rtol, atol,
    divtol, max_it) and initial-guess flag are honored; the test is
    ``‖r‖ ≤ max(rtol·‖b‖, atol)`` on the method's residual norm (the true one for right
    preconditioning and for rcg).

    Attributes:
        space: the :class:`~pdesuite.solvers.recycling.RecycleSpace` carried between solves
            (None for a method that does not recycle).
        options: the method's options (those of the constructor), validated by the NumPy
            method's own check (``check_gcrodr_options``, ``check_rcg_options``, ...).
        reason: our :class:`ConvergedReason` of the last KSP solve (``DIVERGED_STAGNATION``
            has no PETSc code and is set on the KSP as DIVERGED_BREAKDOWN).
        info: the method's ``info`` of the last solve, plus ``solves`` and ``resets``.
        matvecs, pc_applies: products and PC applications of the last KSP solve.
        continuing: set by the solver when a KSP solve continues the previous one from its
            iterate (same system); the recycle state is then treated as a retry.
        error: the exception raised inside the last solve (PETSc hides it in a generic error).
    """

    method = ""

    def __init__(self, space: Optional[RecycleSpace], options: dict[str, Any]):
        self.space = space
        self.options = options
        self.reason: Optional[ConvergedReason] = None
        self.info: dict[str, Any] = {}
        self.matvecs = 0
        self.pc_applies = 0
        self.continuing = False
        self.error: Optional[BaseException] = None
        self.solves = 0
        self.resets = 0
        self._mpi_reduction: Optional[MPIReduction] = None
        self._operator: Optional[LocalMatOperator] = None
        self._pc: Optional[CountingPreconditioner] = None
        self._key: Optional[tuple] = None

    # petsc4py calls these by name
    def setUp(self, ksp: "PETSc.KSP") -> None:  # petsc4py's name
        pass

    def reset(self, ksp: "PETSc.KSP") -> None:
        self._release()

    def destroy(self, ksp: "PETSc.KSP") -> None:
        self._release()

    def view(self, ksp: "PETSc.KSP", viewer: "PETSc.Viewer") -> None:
        recycled = "" if self.space is None else f"recycle_dim={self.space.dim}, "
        viewer.printfASCII(f"  pdesuite {self._describe()}: {recycled}solves={self.solves}, "
                           f"resets={self.resets}\n")

    def _describe(self) -> str:  # pragma: no cover - overridden
        return self.method

    def _run(self, op, b, x, pc, monitor):  # pragma: no cover - overridden
        raise NotImplementedError

    def _release(self) -> None:
        if self._operator is not None:
            self._operator.destroy()
        if self._pc is not None and self._pc.inner is not None:
            self._pc.inner.destroy()
        self._operator = self._pc = None
        self._key = None

    def _reduction(self, comm: "PETSc.Comm") -> Reduction:
        if comm.getSize() == 1:
            return LOCAL_REDUCTION  # serial: plain NumPy, the NumPy backend's numbers
        # a KSP keeps its communicator for life: one reduction per context
        if self._mpi_reduction is None:
            self._mpi_reduction = MPIReduction(comm.tompi4py())
        return self._mpi_reduction

    def solve(self, ksp: "PETSc.KSP", b: "PETSc.Vec", x: "PETSc.Vec") -> None:
        self.error = None
        try:
            self._solve(ksp, b, x)
        except BaseException as error:
            # PETSc turns it into a generic error; the solver re-raises this one
            self.error = error
            raise

    def _prepare(self, ksp: "PETSc.KSP", b: "PETSc.Vec") -> None:
        """The operator and preconditioner adapters for this KSP solve (new ones for a new
        system, so that the stored images are re-checked)."""
        mat = ksp.getOperators()[0]
        petsc_pc = ksp.getPC()
        key = (mat.handle, mat.stateGet(), petsc_pc.handle, petsc_pc.getType(), mat.getSizes())
        same = key == self._key and self._operator is not None
        if not (self.continuing and same):
            self._release()
            self._operator = LocalMatOperator(mat, self._reduction(ksp.getComm()))
            linear = True
            if petsc_pc.getType() == PETSc.PC.Type.PYTHON:
                linear = bool(getattr(petsc_pc.getPythonContext(), "linear", True))
            inner = (None if petsc_pc.getType() == PETSc.PC.Type.NONE
                     else KSPPreconditioner(petsc_pc, b, linear))
            self._pc = CountingPreconditioner(inner)
            if self.space is not None:
                # the same Mat, unchanged, and the same PC: one product checks the stored images
                self.space.same_operator_hint = same
        self._key = key

    def _solve(self, ksp: "PETSc.KSP", b: "PETSc.Vec", x: "PETSc.Vec") -> None:
        if ksp.getPC().getFailedReason() != 0:
            self.reason = ConvergedReason.DIVERGED_PC_FAILED
            ksp.setConvergedReason(PETSc.KSP.ConvergedReason.DIVERGED_PCSETUP_FAILED)
            return
        self._prepare(ksp, b)
        op, pc = self._operator, self._pc
        matvecs_before, applies_before = op.matvecs, pc.applies

        rtol, atol, dtol, max_it = ksp.getTolerances()
        b_norm = b.norm()
        monitor = KSPMonitor(ksp, b_norm, rtol, atol, max(int(max_it), 1), dtol)
        b_local = b.getArray(readonly=True)
        if ksp.getInitialGuessNonzero():
            x_local = np.array(x.getArray(readonly=True), dtype=PETSc.ScalarType)
        else:
            x_local = np.zeros(op.n, dtype=PETSc.ScalarType)
        if b_norm == 0.0:
            x_local[:] = 0.0
            reason, info = monitor.start(0.0), {}
        else:
            try:
                x_local, reason, info = self._run(op, b_local, x_local, pc, monitor)
            finally:
                if self.space is not None:
                    self.space.same_operator_hint = False
        x.setArray(x_local)
        self._record(info, reason)
        self.matvecs = op.matvecs - matvecs_before
        self.pc_applies = pc.applies - applies_before
        ksp.setIterationNumber(monitor.iterations)
        ksp.setResidualNorm(monitor.residuals[-1] if np.isfinite(monitor.residuals[-1])
                            else float(np.finfo(float).max))
        ksp.setConvergedReason(petsc_code(reason))

    def _record(self, info: dict[str, Any], reason: ConvergedReason) -> None:
        """``info`` and ``reason`` of this KSP solve; a continuation adds up its counters."""
        if self.continuing and self.info:
            for name in _SUMMED_INFO:
                if name in info:
                    info[name] = info[name] + self.info.get(name, 0)
        else:
            self.solves += 1
            if info.get("recycle_reset"):
                self.resets += 1
        if self.space is not None:
            info["recycle_dim"] = self.space.dim
        info["solves"], info["resets"] = self.solves, self.resets
        self.info = info
        self.reason = reason


class _RecyclingKSP(_SuiteKSP):
    """A python-KSP context of a recycling method: its space carries over between solves."""

    def __init__(self, recycle: Optional[RecycleSpace], options: dict[str, Any]):
        recycle = check_recycle(recycle)
        # None: a fresh space of this context (keeping 4 previous solutions)
        super().__init__(RecycleSpace() if recycle is None else recycle, options)


class GcrodrKSP(_RecyclingKSP):
    """GCRO-DR(restart, k) as a PETSc python KSP; see :func:`pdesuite.solvers.recycling.gcrodr`.

    Args:
        restart: ``m``, the search space of a cycle (recycled + new), >= 1; default 40.
        k: recycled dimension, ``0 <= k < restart``; default 20.
        recycle: the :class:`~pdesuite.solvers.recycling.RecycleSpace` to start from and to
            carry between solves; default None, a fresh space of this context (keeping 4
            previous solutions; pass ``RecycleSpace(solutions=0)`` for none).
        side: ``"right"`` (default; flexible, monitors the true residual norm) or ``"left"``.
        stale_threshold: drop a stored space whose slowness exceeds this (>= 0, default 0.7)
            and that the new operator stretches more than twice as much as the old one.
        reorthogonalize: ``"ifneeded"`` (default), ``"always"`` or ``"never"``.
        update_period: refresh the recycled space every this many cycles (>= 1, default 1).

    Raises:
        ValueError: an option out of range (the message starts with its name).
    """

    method = "gcrodr"

    def __init__(self, restart: int = method_default("gcrodr", "restart"),
                 k: int = method_default("gcrodr", "k"),
                 recycle: Optional[RecycleSpace] = method_default("gcrodr", "recycle"),
                 side: str = method_default("gcrodr", "side"),
                 stale_threshold: float = method_default("gcrodr", "stale_threshold"),
                 reorthogonalize: str = method_default("gcrodr", "reorthogonalize"),
                 update_period: int = method_default("gcrodr", "update_period")):
        super().__init__(recycle, check_gcrodr_options(restart, k, side, stale_threshold,
                                                       reorthogonalize, update_period))

    def _describe(self) -> str:
        return (f"GCRO-DR(m={self.options['restart']}, k={self.options['k']}, "
                f"side={self.options['side']})")

    def _run(self, op, b, x, pc, monitor):
        return gcrodr(op, b, x, pc, monitor, recycle=self.space, **self.options)


class RecyclingCGKSP(_RecyclingKSP):
    """Recycling (deflated) CG as a PETSc python KSP; see :func:`pdesuite.solvers.recycling.rcg`.

    For Hermitian positive definite ``A`` and PC.

    Args:
        k: recycled dimension, >= 0; default 20.
        ell: CG directions kept for the Ritz update, >= 1; default None, ``max(2k, 30)``.
        recycle: as :class:`GcrodrKSP`'s (default None: a fresh space of this context).
        stale_threshold: as :class:`GcrodrKSP`'s (default 0.7).
    """

    method = "rcg"

    def __init__(self, k: int = method_default("rcg", "k"),
                 ell: Optional[int] = method_default("rcg", "ell"),
                 recycle: Optional[RecycleSpace] = method_default("rcg", "recycle"),
                 stale_threshold: float = method_default("rcg", "stale_threshold")):
        super().__init__(recycle, check_rcg_options(k, ell, stale_threshold))

    def _describe(self) -> str:
        return f"recycling CG(k={self.options['k']}, ell={self.options['ell']})"

    def _run(self, op, b, x, pc, monitor):
        return rcg(op, b, x, pc, monitor, recycle=self.space, **self.options)


class DcdmKSP(_SuiteKSP):
    """The deep conjugate direction method as a PETSc python KSP; see
    :func:`pdesuite.solvers.dcdm.deep_conjugate_direction`.

    For symmetric positive definite ``A``, with any PC: a PETSc PC, or a learned
    preconditioner installed as a python PC (``PythonPC(M).install(ksp.getPC())``), whose
    nonlinearity DCDM's A-orthogonalisation and exact line search absorb.

    Args:
        mmax: earlier directions each new one is made A-orthogonal to (>= 1; default 2).
        normalize_input: apply the PC to ``r/‖r‖`` and scale back (default True; a no-op for
            a linear PC).
        residual_replacement: recompute ``b − A x`` every this many iterations (default 1).
    """

    method = "dcdm"

    def __init__(self, mmax: int = method_default("dcdm", "mmax"),
                 normalize_input: bool = method_default("dcdm", "normalize_input"),
                 residual_replacement: int = method_default("dcdm", "residual_replacement")):
        super().__init__(None, check_dcdm_options(mmax, normalize_input, residual_replacement))

    def _describe(self) -> str:
        return (f"DCDM(mmax={self.options['mmax']}, residual_replacement="
                f"{self.options['residual_replacement']})")

    def _run(self, op, b, x, pc, monitor):
        return deep_conjugate_direction(op, b, x, pc, monitor, **self.options)
