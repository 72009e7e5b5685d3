"""``PetscSolver``: one KSP and one PC, configured once and reused for a sequence; ``solve``.

The backend's cost per iteration is PETSc's own; what it adds per solve is some Python, one
product for the true-residual check and a copy of ``x``: about 0.1 ms per call, measured on a
100-unknown system by ``benchmarks/bench_petsc.py``, under 0.1 % of a solve at n = 65,536.
How a solve ends is decided in :mod:`.run`.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from typing import Any, Callable, Optional

import numpy as np
import scipy.sparse as sp

from petsc4py import PETSc

from pdesuite.solvers.petsc_backend.convert import (check_scalar_dtype, default_comm,
                                                    from_petsc_vec, to_petsc_mat, to_petsc_vec)
from pdesuite.solvers.petsc_backend.methods import UNPRECONDITIONED, method_spec
from pdesuite.solvers.petsc_backend.pc import install_preconditioner
from pdesuite.solvers.petsc_backend.run import KSPRun
from pdesuite.solvers.result import ConvergedReason, SolveResult
from pdesuite.solvers.validation import (check_choice, check_known_options, check_tolerances,
                                         split_preconditioner_options)
from pdesuite.solvers.vocabulary import DEFAULT_ATOL, DEFAULT_RTOL

__all__ = ["PetscSolver", "solve"]

_prefix_counter = itertools.count()


class PetscSolver:
    """A PETSc KSP + PC configured once and reused for a sequence of systems.

    Args:
        method: one of :data:`~pdesuite.solvers.petsc_backend.METHODS`. Default ``"gmres"``.
        M: the preconditioner: ``None`` (default, as in ``solve``; = ``"none"``), a name of
            :data:`~pdesuite.solvers.petsc_backend.PRECONDITIONERS`, an object with
            ``apply(r) -> z`` (run through :class:`~pdesuite.solvers.petsc_backend.PythonPC`), a
            ``PythonPC`` (to choose ``gather``), a callable ``r -> z``, a sparse/dense matrix
            approximating ``A⁻¹``, or a ``PETSc.PC``.
        rtol, atol: converged when ``‖b − A x‖ ≤ max(rtol·‖b‖, atol)`` (true residual);
            defaults 1e-8 and 0 (:mod:`pdesuite.solvers.vocabulary`).
        maxiter: cap on iterations per solve (default 10,000); gmres counts inner steps.
        comm: PETSc communicator (default ``PETSc.COMM_WORLD``).
        callback: ``callback(iteration, residual_norm)`` after every iteration (a Python
            monitor; without it the loop runs natively).
        **options: the method's options, with the names and defaults of
            ``option_defaults(method)`` (the vocabulary's): ``restart`` (gmres, fgmres,
            gcrodr; 40), ``side`` (gmres ``"left"``, gcrodr ``"right"``), ``reorthogonalize``
            (gmres, fgmres ``"never"``: PETSc's one classical Gram–Schmidt pass; gcrodr
            ``"ifneeded"``), ``mmax`` (fcg; 1), ``omega`` (richardson's scale; 1), and gcrodr's
            and rcg's ``k``, ``ell``, ``recycle``, ``stale_threshold``, ``update_period`` (see
            :class:`~pdesuite.solvers.petsc_backend.GcrodrKSP`). Preconditioner options with
            the prefix ``pc_`` (see :mod:`~pdesuite.solvers.petsc_backend.pc`).

    Attributes:
        ksp: the ``PETSc.KSP``, the same object for every solve.
        options: the method's options, defaults filled in.
        python_pc: the ``PythonPC`` when ``M`` is an object, else None.
        python_ksp: the python-KSP context (``GcrodrKSP``, ``RecyclingCGKSP``) of the
            recycling methods, holding the recycle space; None for PETSc's own methods.

    Raises:
        ValueError: unknown method or preconditioner, or a bad value (the message starts with
            the argument's name).
        TypeError: unknown option names, or an ``M`` of an unusable type.
    """

    def __init__(self, method: str = "gmres", M: Any = None, rtol: float = DEFAULT_RTOL,
                 atol: float = DEFAULT_ATOL, maxiter: Optional[int] = None, *, comm: Any = None,
                 callback: Optional[Callable[[int, float], None]] = None, **options: Any):
        self.method, self.spec = method_spec(method)
        self.rtol, self.atol, self.maxiter = check_tolerances(rtol, atol, maxiter)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
        self.comm = default_comm(comm)
        self.callback = callback
        method_options, pc_options = split_preconditioner_options(options)
        defaults = self.spec.options
        check_known_options(self.method, method_options, defaults, "petsc")
        self.options = {**defaults, **method_options}
        self.side = check_choice("side", self.options.get("side", self.spec.sides[0]),
                                 self.spec.sides)
        if "side" in self.options:
            self.options["side"] = self.side
        self.norm_type = self.spec.norms[self.side]

        # Settings petsc4py has no setter for go through the options database under a prefix
        # unique to this solver, so that neither the command line nor other solvers touch them.
        self._prefix = f"pdesuite_{next(_prefix_counter)}_"
        self._option_names: list[str] = []
        self.ksp = PETSc.KSP().create(self.comm)
        self.ksp.setOptionsPrefix(self._prefix)
        self.ksp.setType(self.spec.ksp_type)
        self.python_ksp: Any = None
        if self.spec.python_context is not None:
            self.python_ksp = self.spec.python_context(**self.options)
            self.ksp.setPythonContext(self.python_ksp)
        if self.spec.configure is not None:
            self.spec.configure(self.ksp, self.options, self._set_option)
        self.ksp.setPCSide(PETSc.PC.Side.RIGHT if self.side == "right" else PETSc.PC.Side.LEFT)
        self.ksp.setNormType(
            PETSc.KSP.NormType.UNPRECONDITIONED
            if self.norm_type == UNPRECONDITIONED
            else PETSc.KSP.NormType.PRECONDITIONED
        )

        installed = install_preconditioner(self.ksp, M, pc_options, self._set_option)
        self.pc_name = installed.name
        self.python_pc = installed.python_pc
        self._inodes_off = installed.inodes_off
        if self.python_pc is not None and not self.python_pc.linear and not self.spec.flexible:
            warnings.warn(f"M is nonlinear but method {self.method!r} assumes a fixed linear "
                          "preconditioner; use 'fcg', 'fgmres' or 'gcrodr' for a guaranteed "
                          "result", stacklevel=2)
        self.ksp.setFromOptions()
        if callback is not None or self.method == "richardson":
            # Richardson with a PC that has its own Richardson kernel (SOR, multigrid) would
            # otherwise take PETSc's shortcut, which runs all maxiter sweeps without norms or
            # a tolerance test; any monitor turns the shortcut off.
            self.ksp.setMonitor(self._monitor)
        #: iterations of the earlier KSP solves of this call, so that the callback numbers on
        self.its_offset = 0
        #: set while a KSP solve repeats iterations already reported (no callback then)
        self.replaying = False
        self._last_reported = 0
        self._callback_error: Optional[BaseException] = None
        self._operator_sizes: Optional[tuple] = None

    # ------------------------------------------------------------------ configuration

    def _set_option(self, name: str, value: Any) -> None:
        PETSc.Options(self._prefix)[name] = value
        self._option_names.append(name)

    def set_preconditioner(self, preconditioner: Any) -> None:
        """Replace the object run by the python PC (the PC itself is kept).

        For a sequence whose preconditioner is rebuilt for every matrix, such as a
        :class:`~pdesuite.solvers.JacobiPreconditioner` of the new ``A``.
        """
        if self.python_pc is None:
            raise TypeError("set_preconditioner: this solver was built with a named PETSc PC, "
                            "not a Preconditioner object")
        if not hasattr(preconditioner, "apply"):
            raise TypeError(f"preconditioner: expected an object with apply(r) -> z, "
                            f"got {type(preconditioner).__name__}")
        self.python_pc.preconditioner = preconditioner

    def close(self) -> None:
        """Destroy the KSP and remove this solver's entries from PETSc's options database."""
        self._clear_options()
        if self.ksp is not None:
            self.ksp.destroy()
            self.ksp = None

    def _clear_options(self) -> None:
        options = PETSc.Options(self._prefix)
        for name in self._option_names:
            options.delValue(name)
        self._option_names = []

    def __del__(self) -> None:
        try:
            if getattr(self, "_option_names", None):
                self._clear_options()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # ------------------------------------------------------------------ solving

    def solve(self, A: Any, b: Any, x0: Any = None) -> SolveResult:
        """Solve ``A x = b`` with the configured KSP and report how it ended.

        Args:
            A: ``[n, n]`` SciPy sparse matrix, dense array or ``PETSc.Mat``. A new matrix is
                passed to ``KSP.setOperators`` (the PC is rebuilt for it); the same Mat again
                reuses the PC set-up. With a SOR PC and ω ≠ 1 the matrix's inode option is
                turned off (on a user's Mat too).
            b: ``[n]`` (all entries, on every rank under MPI) or ``[n_local]`` NumPy array,
                or a ``PETSc.Vec``.
            x0: initial guess like ``b``; default zero.

        Returns:
            :class:`SolveResult` with ``backend="petsc"``. ``x`` is a NumPy array shaped like
            ``b`` (the local rows when ``b`` was local or a Vec). When ``A`` is a Mat,
            ``info["x_vec"]`` holds the solution as a ``PETSc.Vec``. ``info`` also has
            ``petsc_reason``, ``ksp_type``, ``pc_type``, ``norm_type``, ``side``,
            ``true_residual``, ``attempts`` and ``counts_exact``.
        """
        start = time.perf_counter()
        mat, converted = self._operator(A)
        b_vec, b_global, b_converted = self._vector(b, mat, "b")
        converted = converted or b_converted
        x0_vec = None if x0 is None else self._vector(x0, mat, "x0")[0]
        if x0_vec is not None and x0_vec.norm() == 0.0:
            x0_vec = None  # a zero guess costs no product for its residual (SciPy passes 0·b)
        b_norm = b_vec.norm()
        if not math.isfinite(b_norm):
            raise ValueError("b contains NaN or Inf entries")
        self._set_operators(mat)
        x_vec = mat.createVecs("right")
        if x0_vec is not None:
            x0_vec.copy(x_vec)
        else:
            x_vec.zeroEntries()

        info: dict[str, Any] = {
            "ksp_type": self.ksp.getType(), "pc_type": self.ksp.getPC().getType(),
            "norm_type": self.norm_type, "side": self.side, "counts_exact": self.spec.exact,
        }
        if converted:
            info["converted_from"] = converted
        if "restart" in self.options:
            info["restart"] = self.options["restart"]

        target = max(self.rtol * b_norm, self.atol)
        if b_norm == 0.0 or (x0_vec is None and b_norm <= target):
            # x = 0 meets the target already (b = 0, rtol >= 1 or atol >= ‖b‖): no iteration.
            x_vec.zeroEntries()
            reason = (
                ConvergedReason.CONVERGED_ATOL
                if b_norm == 0.0 or self.rtol * b_norm < self.atol
                else ConvergedReason.CONVERGED_RTOL
            )
            info.update({"true_residual": b_norm, "attempts": 0, "petsc_reason": None})
            return self._result(x_vec, b_global, A, reason, 0, 0, 0, np.array([b_norm]), start,
                                info)

        python_applies_before = self.python_pc.applies if self.python_pc else 0
        self._last_reported = 0
        run = KSPRun(self, mat, b_vec, x_vec, x0_vec, b_norm)
        reason = run.run()
        pc_applies = run.pc_applies
        if self.python_pc is not None:
            pc_applies = self.python_pc.applies - python_applies_before
        elif self.pc_name == "none":
            pc_applies = 0  # PCNONE copies; as the NumPy backend, the identity is not counted
        info.update(run.info)
        info.update({"petsc_reason": run.petsc_name, "attempts": run.attempts,
                     "true_residual": run.true_norm})
        if self.python_ksp is not None:
            info.update(self.python_ksp.info)
        return self._result(x_vec, b_global, A, reason, run.iterations, run.matvecs, pc_applies,
                            run.residuals(), start, info)

    def _set_operators(self, mat: "PETSc.Mat") -> None:
        sizes = mat.getSizes()
        if self._operator_sizes is not None and sizes != self._operator_sizes:
            # A KSP cannot change sizes: reset it, keeping its types and options.
            self.ksp.reset()
        self._operator_sizes = sizes
        if self._inodes_off and not mat.getAttr("pdesuite_inodes_off"):
            # The option takes effect at assembly, where PETSc detects the inodes; assemble
            # once more (nothing changes but the kernels), and mark the Mat so that a reused
            # matrix keeps its state and its PC set-up.
            mat.setOption(PETSc.Mat.Option.USE_INODES, False)
            mat.assemble()
            mat.setAttr("pdesuite_inodes_off", True)
        self.ksp.setOperators(mat)

    def ksp_solve(self, b_vec: "PETSc.Vec", x_vec: "PETSc.Vec") -> None:
        """``KSPSolve``, re-raising the Python error that PETSc wrapped in a generic one."""
        self._callback_error = None
        if self.python_pc is not None:
            self.python_pc.error = None
        try:
            self.ksp.solve(b_vec, x_vec)
        except PETSc.Error as petsc_error:
            for error in (self._callback_error,
                          self.python_pc.error if self.python_pc is not None else None,
                          self.python_ksp.error if self.python_ksp is not None else None):
                if error is not None:
                    raise error from None
            # PETSc refused the input (a matrix without stored diagonal entries for ILU, ...):
            # its last message line says why.
            lines = [
                line.split("] ", 1)[-1] for line in str(petsc_error).splitlines() if line.strip()
            ]
            raise ValueError(
                f"A: PETSc could not solve with method={self.method!r}, "
                f"M={self.pc_name!r}: {lines[-1] if lines else petsc_error}"
            ) from petsc_error
        for error in (self._callback_error, self.python_pc.error if self.python_pc else None):
            if error is not None:
                raise error

    def _monitor(self, ksp: "PETSc.KSP", its: int, rnorm: float) -> None:
        if self.callback is None or self.replaying:
            return
        iteration = self.its_offset + its
        # Iteration 0 is the initial residual (the NumPy backend does not report it), and a
        # continuation attempt repeats the last iteration's number.
        if its == 0 or iteration <= self._last_reported:
            return
        self._last_reported = iteration
        try:
            self.callback(iteration, float(rnorm))
        except BaseException as error:
            self._callback_error = error
            raise

    # ------------------------------------------------------------------ input and output

    def _operator(self, A: Any) -> tuple["PETSc.Mat", Optional[str]]:
        if isinstance(A, PETSc.Mat):
            rows, cols = A.getSize()
            if rows != cols:
                raise ValueError(f"A: expected a square matrix, got shape {(rows, cols)}")
            if A.getComm().getSize() != self.comm.getSize():
                raise ValueError(
                    "A: lives on a communicator of another size than the solver's comm"
                )
            return A, None
        if isinstance(A, np.ndarray) or sp.issparse(A):
            converted = check_scalar_dtype(np.dtype(A.dtype), "A")
            return to_petsc_mat(A, self.comm), converted
        raise TypeError(f"A: the PETSc backend needs a SciPy sparse matrix, a NumPy array or a "
                        f"PETSc Mat, got {type(A).__name__}")

    def _vector(
        self, v: Any, mat: "PETSc.Mat", name: str
    ) -> tuple["PETSc.Vec", bool, Optional[str]]:
        """(Vec on mat's row layout, whether v held all n entries, converted dtype name)."""
        n = mat.getSize()[0]
        n_local = mat.getLocalSize()[0]
        if isinstance(v, PETSc.Vec):
            if v.getSize() != n:
                raise ValueError(f"{name}: has {v.getSize()} entries but A has {n} rows")
            return v, False, None
        array = np.asarray(v)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ValueError(f"{name}: expected a vector of shape [n], got shape {array.shape}")
        if array.shape[0] not in (n, n_local):
            raise ValueError(f"{name}: has {array.shape[0]} entries but A has shape {(n, n)}")
        converted = check_scalar_dtype(array.dtype, name)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or Inf entries")
        return to_petsc_vec(array, layout=mat), array.shape[0] == n, converted

    def _result(self, x_vec: "PETSc.Vec", b_global: bool, A: Any, reason: ConvergedReason,
                iterations: int, matvecs: int, pc_applies: int, residuals: np.ndarray,
                start: float, info: dict[str, Any]) -> SolveResult:
        x = from_petsc_vec(x_vec, gather=b_global)
        if isinstance(A, PETSc.Mat):
            info["x_vec"] = x_vec
        else:
            x_vec.destroy()
        return SolveResult(x=x, reason=reason, iterations=iterations, matvecs=matvecs,
                           precond_applies=pc_applies, residuals=residuals,
                           time=time.perf_counter() - start, method=self.method,
                           backend="petsc", info=info)


def solve(A: Any, b: Any, method: str = "gmres", M: Any = None, x0: Any = None,
          rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL, maxiter: Optional[int] = None,
          callback: Optional[Callable[[int, float], None]] = None, **options: Any) -> SolveResult:
    """One PETSc solve with the signature of :func:`pdesuite.solvers.solve`.

    ``M`` is the preconditioner (default none), as ``M`` of :class:`PetscSolver`; the other
    arguments are as there. Builds a :class:`PetscSolver`, solves, and destroys it.
    """
    solver = PetscSolver(method, M=M, rtol=rtol, atol=atol, maxiter=maxiter,
                         comm=A.getComm() if isinstance(A, PETSc.Mat) else None,
                         callback=callback, **options)
    try:
        return solver.solve(A, b, x0=x0)
    finally:
        solver.close()
