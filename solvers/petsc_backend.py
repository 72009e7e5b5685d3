"""The PETSc backend: native KSP/PC solves through petsc4py, reused across a sequence.

Importing this module imports petsc4py; ``pdesuite.solvers`` itself never does, and
``solve(..., backend="petsc")`` imports this module only when it is first used.

What is here:

- :func:`to_petsc_mat`, :func:`to_petsc_vec`, :func:`from_petsc_vec`: conversions between
  SciPy/NumPy and PETSc. In serial a float64 CSR matrix with canonical, int32 indices (what
  SciPy usually builds) becomes an AIJ matrix *sharing* its three arrays, without a copy.
- :class:`PythonPC`: runs any :class:`~pdesuite.solvers.preconditioner.Preconditioner`
  (``apply(r) -> z`` on NumPy arrays) as a PETSc python PC, so that a trained network can
  precondition a native KSP.
- :class:`PetscSolver`: one KSP and one PC, configured once and reused for a sequence of
  systems (``setOperators`` for each new matrix).
- :class:`GcrodrKSP`, :class:`RecyclingCGKSP`: the suite's recycling methods (the NumPy
  implementations of :mod:`pdesuite.solvers.gcrodr`, not a second copy) as petsc4py python-KSP
  contexts. They work on the rank-local arrays of PETSc Vecs, apply ``A`` through the Mat and
  the KSP's own PC (any PETSc PC), and reduce over the KSP's communicator, so they run under
  ``mpiexec -n N``; the recycle space lives in the context and carries over between solves.
- :func:`solve`: the backend entry point of :func:`pdesuite.solvers.solve`.

Methods (PETSc's own implementations): ``cg``, ``fcg``, ``gmres`` (``restart``, ``side``),
``fgmres`` (``restart``), ``bicgstab`` (BCGS, ``side``), ``minres``, ``richardson``
(``omega``, PETSc's scale); and the suite's own, as python KSPs: ``gcrodr`` (``restart``,
``k``, ``side``, ``stale_threshold``, ``reorthogonalize``, ``solutions``; default GCRO-DR(40,
20), right-preconditioned) and ``rcg`` (``k``, ``ell``, ``stale_threshold``, ``solutions``).
Their counts are exact (counted by the context) and ``info`` adds the recycling state:
``recycle_dim``, ``recycle_reset``, ``reason_reset``, ``recycle_slowness``,
``projection_reduction``, ``recycle_matvecs``, ``solves``, ``resets`` (and ``cycles``,
``reorthogonalizations`` for gcrodr). Preconditioners by name: ``none``, ``jacobi``, ``sor``,
``gauss-seidel``, ``ssor``, ``ilu``, ``icc`` (alias ``ic``), ``gamg``, ``asm``; or any
object with ``apply`` through :class:`PythonPC`. The defaults follow the NumPy backend:
GMRES(40) left-preconditioned, BiCGStab right-preconditioned, FCG with ``mmax=1``.

Convergence criterion
---------------------
The suite's contract is ``‖b − A x‖ ≤ max(rtol·‖b‖, atol)`` on the true residual. The solve
loop stays entirely native (no Python per iteration, unless a ``callback`` is given), and the
norm type is chosen so that PETSc's default test *is* that contract on the method's own
residual wherever the method supports it without extra work:

- ``KSP_NORM_UNPRECONDITIONED`` for cg, fcg and richardson (left PC), and for gmres, fgmres
  and bicgstab with right preconditioning. PETSc's default test then compares the residual
  norm with ``max(rtol·‖b‖, atol)``: with a zero guess ``‖r₀‖ = ‖b‖``, and with a nonzero
  guess PETSc's default (not ``KSPConvergedDefaultSetUIRNorm``) also uses ``‖b‖``. For CG
  this costs the same one reduction per iteration as the preconditioned norm.
- PETSc's default preconditioned norm for minres (its unpreconditioned norm costs a second
  matvec per iteration) and for left-preconditioned gmres and bicgstab (which support no
  other norm). ``result.residuals`` then holds preconditioned norms.

After every solve that PETSc reports as converged, one extra matvec computes the true
residual. If it misses the target, the KSP continues from the current iterate (a restart),
now asked to bring its own norm below the target times the observed ratio of its norm to the
true one, halved for a margin; at most 3 times within the remaining ``maxiter``, then the
reason is DIVERGED_STAGNATION (``info["attempts"]`` counts the KSP solves). So ``converged``
is never reported on a recurrence residual alone. Divergence (``dtol`` 1e5, as the NumPy backend) and
breakdowns come from PETSc, mapped by :data:`PETSC_REASON_MAP`; ``info["petsc_reason"]``
keeps PETSc's name. A PC whose set-up fails (a zero pivot in ILU/ICC) gives
DIVERGED_PC_FAILED with ``info["pc_failed_reason"]`` and ``x`` = the initial guess (PETSc
itself fills x with Inf); a matrix PETSc refuses (ILU without stored diagonal entries) raises
ValueError with PETSc's message. PETSc's Jacobi replaces a zero diagonal entry by 1 instead of
failing, unlike the NumPy backend's JacobiPreconditioner.

The loop itself is PETSc's, so its cost per iteration is native; what the backend adds per
solve is some Python, one matvec for the true-residual check and a copy of x: about 0.1 ms
per call, measured on a 100-unknown system by ``benchmarks/bench_petsc.py``, which is under
0.1 % of a solve at n = 65,536.

Counts
------
``iterations`` is ``KSP.getIterationNumber()`` (summed over the continuation attempts).
PETSc offers no per-KSP matvec counter (its event log counts every ``MatMult``, including
those inside GAMG's smoothers), so ``matvecs`` and ``precond_applies`` are computed from the
structure of PETSc 3.26's implementations, and the tests check them against PETSc's event log
for preconditioners without inner products: cg, fcg, richardson and minres one matvec per
iteration, bicgstab two, plus one for a nonzero initial guess and one per true-residual
check; gmres and fgmres add one per restart, with ``restarts = ⌈its/restart⌉ − 1``, which
misses one matvec in the rare case that convergence is detected on a restart's recomputed
residual (``info["counts_exact"]`` is False for these two). A :class:`PythonPC` counts its own
applications exactly.

Scalars and MPI
---------------
This PETSc is real (``PETSc.ScalarType`` float64, 32-bit indices). float32 and integer input
are converted to float64 (a copy) and solved in double precision; ``x`` is float64 and
``info["converted_from"]`` names the input dtype. Complex input raises ValueError on a real
PETSc build. Under ``mpiexec -n N`` with ``comm`` of size > 1 each rank keeps its ownership
range of rows. A :class:`PythonPC` sees (and must return) the rank-local part, which makes it
block diagonal across ranks, unless it is built with ``gather=True``: then every rank applies
it to the whole vector and keeps its rows.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import scipy.sparse as sp

from pdesuite.solvers.api import PRECONDITIONER_OPTION_PREFIX, validate_tolerances
from pdesuite.solvers.gcrodr import (LOCAL_REDUCTION, MPIReduction, RecycleSpace, Reduction, gcrodr,
                                     rcg)
from pdesuite.solvers.linear_operator import Operator
from pdesuite.solvers.monitor import ConvergenceMonitor
from pdesuite.solvers.preconditioner import (CountingPreconditioner, FunctionPreconditioner,
                                             MatrixPreconditioner)
from pdesuite.solvers.result import ConvergedReason, SolveResult

try:
    from petsc4py import PETSc
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pdesuite.solvers.petsc_backend needs petsc4py (pip install petsc petsc4py, or `make "
        "install`); use backend='numpy' without it"
    ) from error

__all__ = [
    "GcrodrKSP",
    "PETSC_REASON_MAP",
    "PetscSolver",
    "PythonPC",
    "RecyclingCGKSP",
    "from_petsc_vec",
    "solve",
    "to_petsc_mat",
    "to_petsc_vec",
]

#: How often a claimed convergence whose true residual misses the target is continued.
_TRUE_RESIDUAL_RETRIES = 3
#: PETSc's default divergence tolerance, the same as the NumPy backend's monitor.
_DTOL = 1e5

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


def _reason_name(code: int) -> str:
    return _REASON_NAMES.get(code, f"UNKNOWN({code})")


def _pc_failure_name(code: int) -> str:
    names = {getattr(PETSc.PC.FailedReason, name): name
             for name in dir(PETSc.PC.FailedReason) if not name.startswith("_")}
    return names.get(code, f"UNKNOWN({code})")


# --------------------------------------------------------------------------- conversions


def _default_comm(comm: Any) -> Any:
    return PETSc.COMM_WORLD if comm is None else comm


def _ownership_range(n: int, size: int, rank: int) -> tuple[int, int]:
    """PETSc's default split of ``n`` rows (PetscSplitOwnership): the first ``n % size`` ranks get one more."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def _check_scalar_dtype(dtype: np.dtype, name: str) -> Optional[str]:
    """Return the name of a dtype converted to PETSc's scalar type, or None if none is needed."""
    scalar = np.dtype(PETSc.ScalarType)
    if dtype == scalar:
        return None
    if dtype.kind == "c" and scalar.kind != "c":
        raise ValueError(
            f"{name}: complex entries need a PETSc built with --with-scalar-type=complex, but "
            f"this petsc4py uses {scalar}; use backend='numpy' for complex systems"
        )
    if dtype.kind not in "biufc":
        raise TypeError(f"{name}: expected real numbers, got dtype {dtype}")
    return str(dtype)


def _as_index(array: np.ndarray, name: str) -> np.ndarray:
    index = np.dtype(PETSc.IntType)
    if array.dtype == index:
        return array
    if array.size and int(array.max()) > np.iinfo(index).max:
        raise ValueError(f"{name}: {array.max()} does not fit PETSc's {index} indices "
                         "(configure PETSc with --with-64-bit-indices)")
    return array.astype(index)


def to_petsc_mat(A: Any, comm: Any = None, copy: bool = False) -> "PETSc.Mat":
    """A PETSc AIJ matrix from a SciPy sparse matrix or a dense NumPy array ``[n, n]``.

    Args:
        A: square SciPy sparse matrix/array (any format; CSR avoids a conversion), a dense
            ``ndarray``, or a ``PETSc.Mat`` (returned unchanged).
        comm: PETSc communicator; default ``PETSc.COMM_WORLD``. With more than one process
            every rank passes the same global ``A`` and keeps its ownership range of rows
            (PETSc's default split), copied into an MPIAIJ matrix.
        copy: in serial, copy the CSR arrays into PETSc's own storage instead of sharing them.

    Returns:
        ``PETSc.Mat`` of type AIJ. In serial, when ``A`` is CSR with float64 values, sorted
        unique int32 column indices (SciPy's usual result) and ``copy`` is False, the Mat uses
        ``A``'s arrays directly: do not change ``A.data`` while the Mat is in use. float32 or
        integer values are converted to float64 (a copy).

    Raises:
        ValueError: non-square ``A``, NaN/Inf entries, complex entries on a real PETSc,
            indices beyond PETSc's index range.
        TypeError: anything else than a sparse matrix, array or Mat.
    """
    if isinstance(A, PETSc.Mat):
        return A
    if isinstance(A, np.ndarray):
        if A.ndim != 2:
            raise ValueError(f"A: expected a square 2-D array, got shape {A.shape}")
        A = sp.csr_array(A)
    if not sp.issparse(A):
        raise TypeError(f"A: expected a SciPy sparse matrix, a NumPy array or a PETSc Mat, "
                        f"got {type(A).__name__}")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A: expected a square matrix, got shape {A.shape}")
    _check_scalar_dtype(A.dtype, "A")
    if A.format != "csr":
        A = sp.csr_array(A)
    if not A.has_canonical_format:
        # PETSc's AIJ requires sorted, unique column indices in every row.
        A = A.copy()
        A.sum_duplicates()
    if A.nnz and not np.all(np.isfinite(A.data)):
        raise ValueError("A contains NaN or Inf entries")
    data = A.data.astype(PETSc.ScalarType, copy=False)
    indptr = _as_index(A.indptr, "A.indptr")
    indices = _as_index(A.indices, "A.indices")
    n = A.shape[0]
    comm = _default_comm(comm)
    size, rank = comm.getSize(), comm.getRank()
    if size == 1:
        csr = (indptr, indices, data)
        if copy:
            return PETSc.Mat().createAIJ((n, n), csr=csr, comm=comm)
        return PETSc.Mat().createAIJWithArrays((n, n), csr, comm=comm)
    start, end = _ownership_range(n, size, rank)
    lo, hi = int(indptr[start]), int(indptr[end])
    local = (indptr[start:end + 1] - indptr[start], indices[lo:hi], data[lo:hi])
    local_rows = end - start
    return PETSc.Mat().createAIJ(((local_rows, n), (local_rows, n)), csr=local, comm=comm)


def to_petsc_vec(v: Any, comm: Any = None, layout: Optional["PETSc.Mat"] = None) -> "PETSc.Vec":
    """A PETSc vector from a NumPy array ``[n]`` (global) or ``[n_local]`` (this rank's rows).

    Args:
        v: 1-D real array (or a ``PETSc.Vec``, returned unchanged).
        comm: PETSc communicator when there is no ``layout``; default ``PETSc.COMM_WORLD``.
        layout: a Mat whose row distribution the vector follows (its ``comm`` is used).

    In serial a float64 contiguous ``v`` is shared, not copied: the Vec writes into ``v``.
    Under MPI ``v`` may hold all ``n`` entries (each rank takes its rows) or the local ones.

    Raises:
        ValueError: ``v`` not 1-D, of a length that fits neither the global nor the local
            size, or complex on a real PETSc.
    """
    if isinstance(v, PETSc.Vec):
        return v
    v = np.asarray(v)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1:
        raise ValueError(f"v: expected a vector of shape [n], got shape {v.shape}")
    _check_scalar_dtype(v.dtype, "v")
    if layout is not None:
        comm = layout.getComm()
        n_local, n = layout.getLocalSize()[0], layout.getSize()[0]
        start, end = layout.getOwnershipRange()
    else:
        comm = _default_comm(comm)
        n = v.shape[0]
        start, end = _ownership_range(n, comm.getSize(), comm.getRank())
        n_local = end - start
    if v.shape[0] == n:
        local = v[start:end]
    elif v.shape[0] == n_local:
        local = v
    else:
        raise ValueError(f"v: has {v.shape[0]} entries; expected {n} (global) or {n_local} (local)")
    local = np.ascontiguousarray(local, dtype=PETSc.ScalarType)
    return PETSc.Vec().createWithArray(local, size=(n_local, n), comm=comm)


def from_petsc_vec(vec: "PETSc.Vec", gather: bool = False) -> np.ndarray:
    """A NumPy copy of a PETSc vector.

    Args:
        vec: the vector.
        gather: under MPI, return all ``n`` entries on every rank (a scatter) instead of this
            rank's ``n_local`` entries. In serial both are the whole vector.

    Returns:
        ``[n_local]`` or, with ``gather``, ``[n]`` float64 array, independent of ``vec``.
    """
    if gather and vec.getComm().getSize() > 1:
        scatter, full = PETSc.Scatter.toAll(vec)
        scatter.scatter(vec, full, PETSc.InsertMode.INSERT_VALUES, PETSc.ScatterMode.FORWARD)
        out = full.getArray(readonly=True).copy()
        scatter.destroy()
        full.destroy()
        return out
    return vec.getArray(readonly=True).copy()


# --------------------------------------------------------------------------- python PC


class PythonPC:
    """A PETSc python-PC context that applies a :class:`Preconditioner`.

    ``z = preconditioner.apply(r)`` on NumPy arrays: ``r`` is a fresh, writable copy of the
    input, ``z`` must have the same shape. Install it with :meth:`install` (or
    ``pc.setType(PETSc.PC.Type.PYTHON); pc.setPythonContext(ctx)``), or pass it (or the bare
    preconditioner) as ``pc`` to :class:`PetscSolver`.

    Args:
        preconditioner: an object with ``apply(r) -> z``; its optional ``linear`` attribute
            is honoured as everywhere in the suite.
        gather: under MPI, give ``apply`` the whole vector ``[n]`` on every rank (one
            all-gather per application; each rank keeps its rows of ``z``), for a
            preconditioner built for the global problem, such as a network on the full grid.
            Default False: ``apply`` sees this rank's ``[n_local]`` rows only, which makes
            the preconditioner block diagonal across ranks. In serial both are the same.

    Attributes:
        preconditioner: the wrapped object; replace it to change the preconditioner.
        applies: applications so far.
        error: the exception raised inside ``apply``, kept because PETSc turns it into a
            generic error; :class:`PetscSolver` re-raises it.
    """

    def __init__(self, preconditioner: Any, gather: bool = False):
        if not hasattr(preconditioner, "apply"):
            raise TypeError(f"preconditioner: expected an object with apply(r) -> z, "
                            f"got {type(preconditioner).__name__}")
        self.preconditioner = preconditioner
        self.gather = bool(gather)
        self.applies = 0
        self.error: Optional[BaseException] = None
        self._scatter: Any = None
        self._full: Any = None

    @property
    def linear(self) -> bool:
        return getattr(self.preconditioner, "linear", True)

    def install(self, pc: "PETSc.PC") -> "PETSc.PC":
        pc.setType(PETSc.PC.Type.PYTHON)
        pc.setPythonContext(self)
        return pc

    def setUp(self, pc: "PETSc.PC") -> None:  # noqa: N802 - petsc4py's name
        # The protocol has no set-up step (the preconditioner was built for its matrix), but
        # the gather scatter depends on the vector layout, which a new matrix may change.
        self.error = None
        self._release()

    def reset(self, pc: "PETSc.PC") -> None:
        self._release()

    def _release(self) -> None:
        if self._scatter is not None:
            self._scatter.destroy()
            self._full.destroy()
        self._scatter = self._full = None

    def _input(self, x: "PETSc.Vec") -> np.ndarray:
        if not self.gather or x.getComm().getSize() == 1:
            return x.getArray(readonly=True).copy()
        if self._scatter is None:
            self._scatter, self._full = PETSc.Scatter.toAll(x)
        self._scatter.scatter(x, self._full, PETSc.InsertMode.INSERT_VALUES,
                              PETSc.ScatterMode.FORWARD)
        return self._full.getArray(readonly=True).copy()

    def apply(self, pc: "PETSc.PC", x: "PETSc.Vec", y: "PETSc.Vec") -> None:
        try:
            r = self._input(x)
            z = np.asarray(self.preconditioner.apply(r)).reshape(-1)
            if z.shape != r.shape:
                raise ValueError(f"preconditioner: apply returned shape {z.shape} for an input "
                                 f"of shape {r.shape}")
            if r.shape[0] != x.getLocalSize():
                start, end = x.getOwnershipRange()
                z = z[start:end]
            y.setArray(z)
            self.applies += 1
        except BaseException as error:
            self.error = error
            raise


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class _Method:
    ksp_type: str
    options: tuple[str, ...]
    sides: tuple[str, ...]  # allowed PC sides; the first is the default
    flexible: bool
    #: (side → norm) that the method runs with; see the module docstring.
    norms: dict
    #: matvecs and PC applications of one KSPSolve as functions of (its, cycles, nonzero guess)
    matvecs: Callable[[int, int, int], int]
    pc_applies: Callable[[int, int, int, str, int], int]
    exact: bool = True
    #: for the suite's own methods: the python-KSP context class (exact counts of its own)
    python_context: Optional[Callable[..., Any]] = None


_U, _P = "unpreconditioned", "preconditioned"

_METHODS: dict[str, _Method] = {
    # Counts as functions of (its, cycles, nonzero guess) and (..., side, stopped at maxiter),
    # read off PETSc 3.26's event log; the tests check them.
    "cg": _Method("cg", (), ("left",), False, {"left": _U},
                  lambda k, c, g: k + g, lambda k, c, g, s, cap: k + cap),
    "fcg": _Method("fcg", ("mmax",), ("left",), True, {"left": _U},
                   lambda k, c, g: k + g, lambda k, c, g, s, cap: k + cap),
    "gmres": _Method("gmres", ("restart", "side"), ("left", "right"), False,
                     {"left": _P, "right": _U},
                     lambda k, c, g: k + (c - 1) + g,
                     lambda k, c, g, s, cap: k + c + (g if s == "left" else 0), exact=False),
    "fgmres": _Method("fgmres", ("restart",), ("right",), True, {"right": _U},
                      lambda k, c, g: k + (c - 1) + g, lambda k, c, g, s, cap: k, exact=False),
    "bicgstab": _Method("bcgs", ("side",), ("right", "left"), False, {"left": _P, "right": _U},
                        lambda k, c, g: 2 * k + g,
                        lambda k, c, g, s, cap: 2 * k + 1 + (g if s == "left" else 0)),
    "minres": _Method("minres", (), ("left",), False, {"left": _P},
                      lambda k, c, g: k + g, lambda k, c, g, s, cap: k + 1 + g),
    "richardson": _Method("richardson", ("omega",), ("left",), False, {"left": _U},
                          lambda k, c, g: k + g, lambda k, c, g, s, cap: k),
}

#: Preconditioner names of the PETSc backend, with the options each takes (prefix ``pc_``).
PRECONDITIONERS: dict[str, tuple[str, ...]] = {
    "none": (),
    "jacobi": (),
    "sor": ("omega", "sweeps", "direction"),
    "gauss-seidel": ("sweeps", "direction"),
    "ssor": ("omega", "sweeps"),
    "ilu": ("levels",),
    "icc": ("levels",),
    "ic": ("levels",),
    "gamg": (),
    "asm": ("overlap", "sub_pc", "levels"),
}
_DEFAULT_RESTART = 40
_SOR_DIRECTIONS = {"forward": "local_forward", "backward": "local_backward",
                   "symmetric": "local_symmetric"}
_prefix_counter = itertools.count()


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_omega(value: Any, low: float, high: float, name: str = "omega") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not (low < float(value) < high):
        raise ValueError(f"{name}: expected a number in ({low}, {high}), got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- python KSPs: recycling


class _LocalMatOperator(Operator):
    """``A v`` for a PETSc Mat on rank-local NumPy rows ``[n_local]``, with the comm's reduction.

    The arrays are lent to two work Vecs with ``placeArray`` for the duration of one ``mult``:
    no copies besides the fresh output array the algorithms may keep.
    """

    def __init__(self, mat: "PETSc.Mat", reduction: Reduction):
        n_local, n = mat.getLocalSize()[0], mat.getSize()[0]
        super().__init__(self._mult, n_local, np.dtype(PETSc.ScalarType))
        self.reduction = reduction
        self.global_n = n
        self.mat = mat
        comm = mat.getComm()
        self._in = PETSc.Vec().createWithArray(np.zeros(n_local, dtype=PETSc.ScalarType),
                                               size=(n_local, n), comm=comm)
        self._out = self._in.duplicate()

    def _mult(self, v: np.ndarray) -> np.ndarray:
        return _apply_lent(self.mat.mult, self._in, self._out, v, self.n)

    def destroy(self) -> None:
        self._in.destroy()
        self._out.destroy()


def _lend(vec: "PETSc.Vec", array: np.ndarray) -> None:
    """``vec.placeArray(array)``, copying only what PETSc cannot read in place."""
    if (not isinstance(array, np.ndarray) or array.dtype != PETSc.ScalarType
            or not array.flags.c_contiguous or not array.flags.writeable):
        array = np.array(array, dtype=PETSc.ScalarType)
    vec.placeArray(array)


def _apply_lent(operation, vec_in: "PETSc.Vec", vec_out: "PETSc.Vec", array: np.ndarray,
                n_local: int) -> np.ndarray:
    """``operation(vec_in, vec_out)`` on NumPy arrays lent to the two Vecs; returns the output."""
    out = np.empty(n_local, dtype=PETSc.ScalarType)
    _lend(vec_in, array)
    vec_out.placeArray(out)
    try:
        operation(vec_in, vec_out)
    finally:
        vec_in.resetArray()
        vec_out.resetArray()
    return out


class _KSPPreconditioner:
    """The KSP's own PETSc PC (any type: jacobi, bjacobi/ilu, gamg, python, ...) as ``apply(r)``."""

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


class _KSPMonitor(ConvergenceMonitor):
    """The suite's monitor that also reports every residual norm to the KSP.

    Iteration number, residual norm, convergence history and ``KSPMonitor`` (so that
    ``-ksp_monitor`` and :class:`PetscSolver`'s callback work) are updated at every step.
    """

    def __init__(self, ksp: "PETSc.KSP", b_norm: float, rtol: float, atol: float,
                 maxiter: int, dtol: float):
        super().__init__(b_norm, rtol, atol, maxiter, None, dtol)
        self.ksp = ksp

    def _report(self, rnorm: float) -> None:
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


def _petsc_code(reason: ConvergedReason) -> int:
    """The ``KSPConvergedReason`` code that stands for one of our reasons."""
    name = _PETSC_NAME_OF.get(reason, "DIVERGED_BREAKDOWN")  # stagnation: PETSc has no name
    return getattr(PETSc.KSP.ConvergedReason, name)


#: The reverse of :data:`PETSC_REASON_MAP`: our reason → the PETSc name a python KSP sets.
_PETSC_NAME_OF: dict[ConvergedReason, str] = {
    ConvergedReason.CONVERGED_RTOL: "CONVERGED_RTOL",
    ConvergedReason.CONVERGED_ATOL: "CONVERGED_ATOL",
    ConvergedReason.DIVERGED_PC_FAILED: "DIVERGED_PC_FAILED",
}
for _name, _ours in PETSC_REASON_MAP.items():
    if _ours is not None:
        _PETSC_NAME_OF.setdefault(_ours, _name)

#: Counters of a method's ``info`` that add up over the continuation attempts of one solve.
_SUMMED_INFO = ("cycles", "reorthogonalizations", "recycle_matvecs")


class _RecyclingKSP:
    """A petsc4py python-KSP context that runs one of the suite's recycling methods.

    The method is the NumPy implementation in :mod:`pdesuite.solvers.gcrodr`, run on the
    rank-local arrays of ``b`` and ``x``, with ``A`` applied by the KSP's Mat, the KSP's own
    PC as the preconditioner, and the global reductions of the KSP's communicator
    (:class:`~pdesuite.solvers.gcrodr.MPIReduction` when it has more than one rank). The
    recycle space lives here, so one KSP reused across a sequence (``setOperators`` for each
    matrix) recycles from one solve to the next.

    Install with ``ksp.setType(PETSc.KSP.Type.PYTHON); ksp.setPythonContext(ctx)`` or through
    :class:`PetscSolver`. The KSP's tolerances (rtol, atol, divtol, max_it) and
    initial-guess flag are honoured; the test is ``‖r‖ ≤ max(rtol·‖b‖, atol)`` on the method's
    residual norm (the true one for right preconditioning and for rcg).

    Attributes:
        space: the :class:`~pdesuite.solvers.gcrodr.RecycleSpace` carried between solves.
        reason: our :class:`ConvergedReason` of the last KSP solve (``DIVERGED_STAGNATION``
            has no PETSc code and is set on the KSP as DIVERGED_BREAKDOWN).
        info: the method's ``info`` of the last solve, plus ``solves`` and ``resets``.
        matvecs, pc_applies: products and PC applications of the last KSP solve.
        continuing: set by :class:`PetscSolver` when a KSP solve continues the previous one
            from its iterate (same system); the recycle state is then treated as a retry.
        error: the exception raised inside the last solve (PETSc hides it in a generic error).
    """

    method = ""

    def __init__(self, stale_threshold: float, solutions: int):
        self.space = RecycleSpace(solutions=solutions)
        self.stale_threshold = stale_threshold
        self.reason: Optional[ConvergedReason] = None
        self.info: dict[str, Any] = {}
        self.matvecs = 0
        self.pc_applies = 0
        self.continuing = False
        self.error: Optional[BaseException] = None
        self.solves = 0
        self.resets = 0
        self._mpi_reduction: Optional[MPIReduction] = None
        self._operator: Optional[_LocalMatOperator] = None
        self._pc: Optional[CountingPreconditioner] = None
        self._key: Optional[tuple] = None

    # petsc4py calls these by name
    def setUp(self, ksp: "PETSc.KSP") -> None:  # noqa: N802
        pass

    def reset(self, ksp: "PETSc.KSP") -> None:
        self._release()

    def destroy(self, ksp: "PETSc.KSP") -> None:
        self._release()

    def view(self, ksp: "PETSc.KSP", viewer: "PETSc.Viewer") -> None:
        viewer.printfASCII(f"  pdesuite {self._describe()}: recycle_dim={self.space.dim}, "
                           f"solves={self.solves}, resets={self.resets}\n")

    def _describe(self) -> str:  # pragma: no cover - overridden
        return self.method

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

    def _run(self, op, b, x, pc, monitor):  # pragma: no cover - overridden
        raise NotImplementedError

    def solve(self, ksp: "PETSc.KSP", b: "PETSc.Vec", x: "PETSc.Vec") -> None:
        self.error = None
        try:
            self._solve(ksp, b, x)
        except BaseException as error:
            # PETSc turns it into a generic error; PetscSolver re-raises this one
            self.error = error
            raise

    def _solve(self, ksp: "PETSc.KSP", b: "PETSc.Vec", x: "PETSc.Vec") -> None:
        mat = ksp.getOperators()[0]
        petsc_pc = ksp.getPC()
        if petsc_pc.getFailedReason() != 0:
            self.reason = ConvergedReason.DIVERGED_PC_FAILED
            ksp.setConvergedReason(PETSc.KSP.ConvergedReason.DIVERGED_PCSETUP_FAILED)
            return
        key = (mat.handle, mat.stateGet(), petsc_pc.handle, petsc_pc.getType(),
               mat.getSizes())
        same = key == self._key and self._operator is not None
        if not (self.continuing and same):
            # a new system: a new operator object, so that the stored images are re-checked
            self._release()
            reduction = self._reduction(ksp.getComm())
            self._operator = _LocalMatOperator(mat, reduction)
            linear = True
            if petsc_pc.getType() == PETSc.PC.Type.PYTHON:
                linear = bool(getattr(petsc_pc.getPythonContext(), "linear", True))
            inner = (None if petsc_pc.getType() == PETSc.PC.Type.NONE
                     else _KSPPreconditioner(petsc_pc, b, linear))
            self._pc = CountingPreconditioner(inner)
            # the same Mat, unchanged, and the same PC: one product checks the stored images
            self.space.same_operator_hint = same
        self._key = key
        op, pc = self._operator, self._pc
        matvecs_before, applies_before = op.matvecs, pc.applies

        rtol, atol, dtol, max_it = ksp.getTolerances()
        b_norm = b.norm()
        monitor = _KSPMonitor(ksp, b_norm, rtol, atol, max(int(max_it), 1), dtol)
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
                self.space.same_operator_hint = False
        x.setArray(x_local)
        if self.continuing and self.info:
            for name in _SUMMED_INFO:
                if name in info:
                    info[name] = info[name] + self.info.get(name, 0)
        else:
            self.solves += 1
            if info.get("recycle_reset"):
                self.resets += 1
        info["recycle_dim"] = self.space.dim
        info["solves"], info["resets"] = self.solves, self.resets
        self.info = info
        self.reason = reason
        self.matvecs = op.matvecs - matvecs_before
        self.pc_applies = pc.applies - applies_before
        ksp.setIterationNumber(monitor.iterations)
        ksp.setResidualNorm(monitor.residuals[-1])
        ksp.setConvergedReason(_petsc_code(reason))


class GcrodrKSP(_RecyclingKSP):
    """GCRO-DR(restart, k) as a PETSc python KSP; see :func:`pdesuite.solvers.gcrodr.gcrodr`.

    Args:
        restart: ``m``, the search space of a cycle (recycled + new), >= 2; default 40.
        k: recycled dimension, ``0 <= k < restart``; default 20.
        side: ``"right"`` (default; flexible, monitors the true residual norm) or ``"left"``.
        stale_threshold: drop a stored space whose slowness exceeds this (default 0.7) and
            that the new operator stretches more than twice as much as the old one.
        solutions: previous solutions joining the initial projection (default 4).
        reorthogonalize: ``"ifneeded"`` (default), ``"always"`` or ``"never"``.
        update_period: refresh the recycled space every this many cycles (default 1).

    Raises:
        ValueError: an option out of range.
    """

    method = "gcrodr"

    def __init__(self, restart: int = _DEFAULT_RESTART, k: int = 20, side: str = "right",
                 stale_threshold: float = 0.7, solutions: int = 4,
                 reorthogonalize: str = "ifneeded", update_period: int = 1):
        self.restart = _check_int("restart", restart, 1)
        self.update_period = _check_int("update_period", update_period, 1)
        self.k = _check_int("k", k, 0)
        if self.k >= self.restart:
            raise ValueError(f"k: must be smaller than restart={self.restart}, got k={self.k}")
        if side not in ("right", "left"):
            raise ValueError(f"side: expected 'right' or 'left', got {side!r}")
        if reorthogonalize not in ("ifneeded", "always", "never"):
            raise ValueError(f"reorthogonalize: expected 'ifneeded', 'always' or 'never', "
                             f"got {reorthogonalize!r}")
        self.side = side
        self.reorthogonalize = reorthogonalize
        super().__init__(_check_threshold(stale_threshold), _check_int("solutions", solutions, 0))

    def _describe(self) -> str:
        return f"GCRO-DR(m={self.restart}, k={self.k}, side={self.side})"

    def _run(self, op, b, x, pc, monitor):
        return gcrodr(op, b, x, pc, monitor, restart=self.restart, k=self.k, recycle=self.space,
                      side=self.side, stale_threshold=self.stale_threshold,
                      reorthogonalize=self.reorthogonalize, update_period=self.update_period)


class RecyclingCGKSP(_RecyclingKSP):
    """Recycling (deflated) CG as a PETSc python KSP; see :func:`pdesuite.solvers.gcrodr.rcg`.

    For Hermitian positive definite ``A`` and PC. Args: ``k`` recycled dimension (default
    10), ``ell`` CG directions kept for the Ritz update (default ``max(2k, 30)``),
    ``stale_threshold`` (default 0.7), ``solutions`` (default 4).
    """

    method = "rcg"

    def __init__(self, k: int = 10, ell: Optional[int] = None, stale_threshold: float = 0.7,
                 solutions: int = 4):
        self.k = _check_int("k", k, 0)
        self.ell = None if ell is None else _check_int("ell", ell, 1)
        super().__init__(_check_threshold(stale_threshold), _check_int("solutions", solutions, 0))

    def _describe(self) -> str:
        return f"recycling CG(k={self.k}, ell={self.ell})"

    def _run(self, op, b, x, pc, monitor):
        return rcg(op, b, x, pc, monitor, k=self.k, ell=self.ell, recycle=self.space,
                   stale_threshold=self.stale_threshold)


def _check_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not float(value) >= 0.0:
        raise ValueError(f"stale_threshold: expected a number >= 0, got {value!r}")
    return float(value)


def _no_count(*args: Any) -> int:
    return 0  # a python KSP counts its products itself


_METHODS["gcrodr"] = _Method("python", ("restart", "k", "side", "stale_threshold", "reorthogonalize",
                                        "update_period", "solutions"), ("right", "left"), True,
                             {"right": _U, "left": _P}, _no_count, _no_count,
                             python_context=GcrodrKSP)
_METHODS["rcg"] = _Method("python", ("k", "ell", "stale_threshold", "solutions"), ("left",), False,
                          {"left": _U}, _no_count, _no_count, python_context=RecyclingCGKSP)

#: Method names of the PETSc backend.
METHODS = tuple(_METHODS)


# --------------------------------------------------------------------------- the solver


class PetscSolver:
    """A PETSc KSP + PC configured once and reused for a sequence of systems.

    Args:
        method: one of :data:`METHODS`. Default ``"gmres"``.
        pc: a name from :data:`PRECONDITIONERS` (default ``"ilu"``), ``None`` (= ``"none"``),
            an object with ``apply(r) -> z`` (run through :class:`PythonPC`), a
            :class:`PythonPC` (to choose ``gather``), a callable ``r -> z``, a sparse/dense
            matrix approximating ``A⁻¹``, or a ``PETSc.PC``.
        rtol, atol: converged when ``‖b − A x‖ ≤ max(rtol·‖b‖, atol)`` (true residual).
        maxiter: cap on iterations per solve (default 10,000); gmres counts inner steps.
        comm: PETSc communicator (default ``PETSc.COMM_WORLD``).
        callback: ``callback(iteration, residual_norm)`` after every iteration (a Python
            monitor; without it the loop runs natively).
        **options: method options: ``restart`` (gmres, fgmres, gcrodr; default 40), ``k``,
            ``ell``, ``stale_threshold``, ``solutions``, ``reorthogonalize`` (gcrodr, rcg: see
            :class:`GcrodrKSP`, :class:`RecyclingCGKSP`), ``side``
            (``"left"``/``"right"``; gmres default left, bicgstab and gcrodr default right), ``mmax``
            (fcg; default 1), ``omega`` (richardson's scale; default 1). Preconditioner
            options with the prefix ``pc_``: ``pc_omega`` (sor, ssor; in (0, 2)),
            ``pc_sweeps``, ``pc_direction`` (sor: forward/backward/symmetric), ``pc_levels``
            (ILU/ICC fill levels; default 0), ``pc_overlap`` (asm; default 1), ``pc_sub_pc``
            (asm's block solver: ``"ilu"`` default, ``"icc"`` or ``"lu"``).

    Attributes:
        ksp: the ``PETSc.KSP``, the same object for every solve.
        python_pc: the :class:`PythonPC` when ``pc`` is an object, else None.
        python_ksp: the python-KSP context (:class:`GcrodrKSP`, :class:`RecyclingCGKSP`) of
            the recycling methods, holding the recycle space; None for PETSc's own methods.

    Raises:
        ValueError: unknown method, preconditioner, side or option value.
        TypeError: unknown option names, or a ``pc`` of an unusable type.
    """

    def __init__(self, method: str = "gmres", pc: Any = "ilu", rtol: float = 1e-5,
                 atol: float = 0.0, maxiter: Optional[int] = None, *, comm: Any = None,
                 callback: Optional[Callable[[int, float], None]] = None, **options: Any):
        key = method.lower() if isinstance(method, str) else method
        if key not in _METHODS:
            raise ValueError(f"method: unknown method {method!r} for the PETSc backend; "
                             f"choose from {list(METHODS)}")
        self.method = key
        self._spec = _METHODS[key]
        self.rtol, self.atol = float(rtol), float(atol)
        self.maxiter = validate_tolerances(self.rtol, self.atol, maxiter)
        self.comm = _default_comm(comm)
        self.callback = callback

        pc_options = {k[len(PRECONDITIONER_OPTION_PREFIX):]: v for k, v in options.items()
                      if k.startswith(PRECONDITIONER_OPTION_PREFIX)}
        method_options = {k: v for k, v in options.items()
                          if not k.startswith(PRECONDITIONER_OPTION_PREFIX)}
        unknown = set(method_options) - set(self._spec.options)
        if unknown:
            raise TypeError(f"method {key!r}: unknown option(s) {sorted(unknown)}; "
                            f"it takes {list(self._spec.options)} and pc_* options")
        self.side = method_options.get("side", self._spec.sides[0])
        if self.side not in self._spec.sides:
            raise ValueError(f"side: method {key!r} supports {list(self._spec.sides)}, got {self.side!r}")
        self.restart = _check_int("restart", method_options.get("restart", _DEFAULT_RESTART), 1)
        self.norm_type = self._spec.norms[self.side]

        # Settings petsc4py has no setter for go through the options database under a prefix
        # unique to this solver, so that neither the command line nor other solvers touch them.
        self._prefix = f"pdesuite_{next(_prefix_counter)}_"
        self._option_names: list[str] = []
        self.ksp = PETSc.KSP().create(self.comm)
        self.ksp.setOptionsPrefix(self._prefix)
        self.ksp.setType(self._spec.ksp_type)
        self.python_ksp: Optional[_RecyclingKSP] = None
        if self._spec.python_context is not None:
            context_options = dict(method_options)
            if "side" in self._spec.options:
                context_options["side"] = self.side
            self.python_ksp = self._spec.python_context(**context_options)
            self.ksp.setPythonContext(self.python_ksp)
        if key in ("gmres", "fgmres"):
            self.ksp.setGMRESRestart(self.restart)
        if key == "fcg":
            self._set_option("ksp_fcg_mmax", _check_int("mmax", method_options.get("mmax", 1), 1))
        if key == "richardson":
            omega = method_options.get("omega", 1.0)
            if isinstance(omega, bool) or not isinstance(omega, (int, float, np.number)) \
                    or not math.isfinite(omega) or omega == 0:
                raise ValueError(f"omega: must be a finite non-zero number, got {omega!r}")
            self._set_option("ksp_richardson_scale", float(omega))
        self.ksp.setPCSide(PETSc.PC.Side.RIGHT if self.side == "right" else PETSc.PC.Side.LEFT)
        self.ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED if self.norm_type == _U
                             else PETSc.KSP.NormType.PRECONDITIONED)

        self.python_pc: Optional[PythonPC] = None
        self._inodes_off = False
        self.pc_name = self._configure_pc(pc, pc_options)
        self.ksp.setFromOptions()
        if callback is not None or key == "richardson":
            # Richardson with a PC that has its own Richardson kernel (SOR, multigrid) would
            # otherwise take PETSc's shortcut, which runs all maxiter sweeps without norms or
            # a tolerance test; any monitor turns the shortcut off.
            self.ksp.setMonitor(self._monitor)
        self._its_offset = 0
        self._last_reported = 0
        self._callback_error: Optional[BaseException] = None
        self._operator_sizes: Optional[tuple] = None

    # ------------------------------------------------------------------ configuration

    def _set_option(self, name: str, value: Any) -> None:
        PETSc.Options(self._prefix)[name] = value
        self._option_names.append(name)

    def _configure_pc(self, pc: Any, options: dict[str, Any]) -> str:
        petsc_pc = self.ksp.getPC()
        if pc is None:
            pc = "none"
        if isinstance(pc, str):
            name = pc.lower()
            if name not in PRECONDITIONERS:
                raise ValueError(f"pc: unknown preconditioner {pc!r}; known: {sorted(PRECONDITIONERS)} "
                                 "or an object with apply(r) -> z")
            unknown = set(options) - set(PRECONDITIONERS[name])
            if unknown:
                raise TypeError(f"pc={name!r}: unknown option(s) {sorted('pc_' + u for u in unknown)}; "
                                f"it takes {['pc_' + o for o in PRECONDITIONERS[name]]}")
            self._configure_named_pc(petsc_pc, "icc" if name == "ic" else name, options)
            return name
        if options:
            raise TypeError(f"pc: options {sorted('pc_' + o for o in options)} are only for "
                            "preconditioners given by name")
        if isinstance(pc, PETSc.PC):
            self.ksp.setPC(pc)
            return f"petsc:{pc.getType()}"
        if isinstance(pc, PythonPC):
            self.python_pc = pc
            pc.install(petsc_pc)
            self._warn_if_nonlinear()
            return "python"
        if hasattr(pc, "apply"):
            preconditioner = pc
        elif sp.issparse(pc) or isinstance(pc, np.ndarray) or hasattr(pc, "matvec"):
            preconditioner = MatrixPreconditioner(pc)
        elif callable(pc):
            preconditioner = FunctionPreconditioner(pc)
        else:
            raise TypeError(f"pc: expected a name, None, an object with apply(r) -> z, a matrix "
                            f"or a callable, got {type(pc).__name__}")
        self.python_pc = PythonPC(preconditioner)
        self.python_pc.install(petsc_pc)
        self._warn_if_nonlinear()
        return "python"

    def _warn_if_nonlinear(self) -> None:
        if not self.python_pc.linear and not self._spec.flexible:
            warnings.warn(f"pc is nonlinear but method {self.method!r} assumes a fixed linear "
                          "preconditioner; use 'fcg' or 'fgmres' for a guaranteed result",
                          stacklevel=4)

    def _configure_named_pc(self, petsc_pc: "PETSc.PC", name: str, options: dict[str, Any]) -> None:
        parallel = self.comm.getSize() > 1
        if name == "none":
            petsc_pc.setType(PETSc.PC.Type.NONE)
        elif name == "jacobi":
            petsc_pc.setType(PETSc.PC.Type.JACOBI)
        elif name in ("sor", "gauss-seidel", "ssor"):
            petsc_pc.setType(PETSc.PC.Type.SOR)
            omega = _check_omega(options.get("omega", 1.0), 0.0, 2.0)
            sweeps = _check_int("sweeps", options.get("sweeps", 1), 1)
            direction = "symmetric" if name == "ssor" else options.get("direction", "forward")
            if direction not in _SOR_DIRECTIONS:
                raise ValueError(f"direction: expected one of {list(_SOR_DIRECTIONS)}, got {direction!r}")
            self._set_option("pc_sor_omega", omega)
            # Local sweeps: the same as global ones in serial, block Jacobi across MPI ranks.
            self._set_option(f"pc_sor_{_SOR_DIRECTIONS[direction]}", True)
            # Under MPI each of the `its` sweeps first refreshes the off-rank values.
            self._set_option("pc_sor_its", sweeps)
            # PETSc's inode SOR kernels support only omega = 1.
            self._inodes_off = omega != 1.0
        elif name in ("ilu", "icc"):
            levels = _check_int("levels", options.get("levels", 0), 0)
            if parallel:
                # ILU/ICC are sequential factorisations: one per rank, block Jacobi across ranks.
                petsc_pc.setType(PETSc.PC.Type.BJACOBI)
                self._set_option("sub_pc_type", name)
                self._set_option("sub_pc_factor_levels", levels)
            else:
                petsc_pc.setType(name)
                petsc_pc.setFactorLevels(levels)
        elif name == "gamg":
            petsc_pc.setType(PETSc.PC.Type.GAMG)
        elif name == "asm":
            petsc_pc.setType(PETSc.PC.Type.ASM)
            petsc_pc.setASMOverlap(_check_int("overlap", options.get("overlap", 1), 0))
            sub_pc = options.get("sub_pc", "ilu")
            if sub_pc not in ("ilu", "icc", "lu"):
                raise ValueError(f"sub_pc: expected 'ilu', 'icc' or 'lu', got {sub_pc!r}")
            self._set_option("sub_pc_type", sub_pc)
            self._set_option("sub_pc_factor_levels", _check_int("levels", options.get("levels", 0), 0))

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
        options = PETSc.Options(self._prefix)
        for name in self._option_names:
            options.delValue(name)
        self._option_names = []
        if self.ksp is not None:
            self.ksp.destroy()
            self.ksp = None

    def __del__(self) -> None:
        try:
            if getattr(self, "_option_names", None):
                options = PETSc.Options(self._prefix)
                for name in self._option_names:
                    options.delValue(name)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # ------------------------------------------------------------------ solving

    def _monitor(self, ksp: "PETSc.KSP", its: int, rnorm: float) -> None:
        if self.callback is None:
            return
        iteration = self._its_offset + its
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

    def _operator(self, A: Any) -> tuple["PETSc.Mat", Optional[str]]:
        if isinstance(A, PETSc.Mat):
            rows, cols = A.getSize()
            if rows != cols:
                raise ValueError(f"A: expected a square matrix, got shape {(rows, cols)}")
            if A.getComm().getSize() != self.comm.getSize():
                raise ValueError("A: lives on a communicator of another size than the solver's comm")
            return A, None
        if isinstance(A, np.ndarray) or sp.issparse(A):
            converted = _check_scalar_dtype(np.dtype(A.dtype), "A")
            return to_petsc_mat(A, self.comm), converted
        raise TypeError(f"A: the PETSc backend needs a SciPy sparse matrix, a NumPy array or a "
                        f"PETSc Mat, got {type(A).__name__}")

    def _vector(self, v: Any, mat: "PETSc.Mat", name: str) -> tuple["PETSc.Vec", bool, Optional[str]]:
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
        converted = _check_scalar_dtype(array.dtype, name)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or Inf entries")
        return to_petsc_vec(array, layout=mat), array.shape[0] == n, converted

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
        if x0 is not None:
            x0_vec, _, _ = self._vector(x0, mat, "x0")
        b_norm = b_vec.norm()
        if not math.isfinite(b_norm):
            raise ValueError("b contains NaN or Inf entries")

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

        x_vec = mat.createVecs("right")
        if x0 is not None:
            x0_vec.copy(x_vec)
        else:
            x_vec.zeroEntries()

        target_rtol = self.rtol * b_norm
        target = max(target_rtol, self.atol)
        converged_as = (ConvergedReason.CONVERGED_RTOL if target_rtol >= self.atol
                        else ConvergedReason.CONVERGED_ATOL)
        info: dict[str, Any] = {
            "ksp_type": self.ksp.getType(), "pc_type": self.ksp.getPC().getType(),
            "norm_type": self.norm_type, "side": self.side, "counts_exact": self._spec.exact,
        }
        if converted:
            info["converted_from"] = converted
        if self.method in ("gmres", "fgmres"):
            info["restart"] = self.restart

        if b_norm == 0.0:
            # The exact solution of a consistent system; no iteration is needed.
            x_vec.zeroEntries()
            return self._result(x_vec, b_global, A, ConvergedReason.CONVERGED_ATOL, 0, 0, 0,
                                np.zeros(1), start, {**info, "true_residual": 0.0, "attempts": 0,
                                                     "petsc_reason": None})

        iterations = matvecs = pc_applies = 0
        history: list[np.ndarray] = []
        python_applies_before = self.python_pc.applies if self.python_pc else 0
        residual = b_vec.duplicate()
        rtol_k, atol_k = self.rtol, self.atol
        nonzero_guess = x0 is not None
        self._last_reported = 0
        reason: Optional[ConvergedReason] = None
        attempts = 0
        true_norm = math.nan
        petsc_name = None
        while reason is None:
            remaining = self.maxiter - iterations
            self.ksp.setTolerances(rtol=rtol_k, atol=atol_k, divtol=_DTOL, max_it=max(remaining, 1))
            self.ksp.setInitialGuessNonzero(nonzero_guess)
            self.ksp.setConvergenceHistory(length=remaining + 2, reset=True)
            self._its_offset = iterations
            if self.python_ksp is not None:
                self.python_ksp.continuing = attempts > 0
                self.python_ksp.reason = None
            self._run(b_vec, x_vec)
            attempts += 1
            its = self.ksp.getIterationNumber()
            cycles = max(1, math.ceil(its / self.restart))
            iterations += its
            code = self.ksp.getConvergedReason()
            petsc_name = _reason_name(code)
            if self.python_ksp is not None:
                matvecs += self.python_ksp.matvecs
                pc_applies += self.python_ksp.pc_applies
            else:
                matvecs += self._spec.matvecs(its, cycles, int(nonzero_guess))
                pc_applies += self._spec.pc_applies(its, cycles, int(nonzero_guess), self.side,
                                                    int(petsc_name == "DIVERGED_MAX_IT"))
            hist = np.asarray(self.ksp.getConvergenceHistory(), dtype=float)
            history.append(hist if not history else hist[1:])
            if code <= 0:
                reason = PETSC_REASON_MAP.get(petsc_name, ConvergedReason.DIVERGED_BREAKDOWN)
                if self.python_ksp is not None and self.python_ksp.reason is not None \
                        and petsc_name != "DIVERGED_PCSETUP_FAILED":
                    reason = self.python_ksp.reason  # ours, stagnation included
                if petsc_name == "DIVERGED_PCSETUP_FAILED":
                    # PETSc fills x with Inf to poison it; no iteration ran, so the last
                    # valid iterate is the initial guess.
                    info["pc_failed_reason"] = _pc_failure_name(self.ksp.getPC().getFailedReason())
                    if x0 is not None:
                        x0_vec.copy(x_vec)
                    else:
                        x_vec.zeroEntries()
                break
            # PETSc's test passed on the method's residual; confirm on the true one.
            mat.mult(x_vec, residual)
            residual.aypx(-1.0, b_vec)
            true_norm = residual.norm()
            matvecs += 1
            if not math.isfinite(true_norm):
                reason = ConvergedReason.DIVERGED_NAN_OR_INF
            elif true_norm <= target:
                reason = converged_as
            elif attempts > _TRUE_RESIDUAL_RETRIES:
                reason = ConvergedReason.DIVERGED_STAGNATION
            elif iterations >= self.maxiter:
                reason = ConvergedReason.DIVERGED_MAX_ITERATIONS
            else:
                if history:
                    # The continuation starts from the true residual: record that one.
                    history[-1] = history[-1].copy()
                    if history[-1].size:
                        history[-1][-1] = true_norm
                # Continue until PETSc's norm is below the target scaled by the observed
                # ratio of PETSc's norm to the true one (and halved for a margin).
                petsc_norm = self.ksp.getResidualNorm()
                if petsc_norm > 0 and math.isfinite(petsc_norm):
                    rtol_k, atol_k = 0.0, 0.5 * target * petsc_norm / true_norm
                else:
                    shrink = 0.5 * target / true_norm
                    rtol_k, atol_k = rtol_k * shrink, atol_k * shrink
                nonzero_guess = True
        if self.python_pc is not None:
            pc_applies = self.python_pc.applies - python_applies_before
        elif self.pc_name == "none":
            pc_applies = 0  # PCNONE copies; as the NumPy backend, the identity is not counted
        residuals = np.concatenate(history) if history else np.zeros(0)
        info.update({"petsc_reason": petsc_name, "attempts": attempts, "true_residual": true_norm})
        if self.python_ksp is not None:
            info.update(self.python_ksp.info)
        residual.destroy()
        return self._result(x_vec, b_global, A, reason, iterations, matvecs, pc_applies,
                            residuals, start, info)

    def _run(self, b_vec: "PETSc.Vec", x_vec: "PETSc.Vec") -> None:
        self._callback_error = None
        if self.python_pc is not None:
            self.python_pc.error = None
        try:
            self.ksp.solve(b_vec, x_vec)
        except PETSc.Error as petsc_error:
            # PETSc wraps a Python exception from a callback in a generic error: re-raise
            # the original one.
            for error in (self._callback_error,
                          self.python_pc.error if self.python_pc is not None else None,
                          self.python_ksp.error if self.python_ksp is not None else None):
                if error is not None:
                    raise error from None
            # PETSc refused the input (a matrix without stored diagonal entries for ILU, ...):
            # its last message line says why.
            lines = [line.split("] ", 1)[-1] for line in str(petsc_error).splitlines() if line.strip()]
            raise ValueError(f"A: PETSc could not solve with method={self.method!r}, "
                             f"pc={self.pc_name!r}: {lines[-1] if lines else petsc_error}") from petsc_error
        for error in (self._callback_error, self.python_pc.error if self.python_pc else None):
            if error is not None:
                raise error

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
          rtol: float = 1e-5, atol: float = 0.0, maxiter: Optional[int] = None,
          callback: Optional[Callable[[int, float], None]] = None, **options: Any) -> SolveResult:
    """One PETSc solve with the signature of :func:`pdesuite.solvers.solve`.

    ``M`` is the preconditioner (default none): a name from :data:`PRECONDITIONERS`, a
    Preconditioner object, a callable or a matrix, as ``pc`` of :class:`PetscSolver`; the
    other arguments are as there. Builds a :class:`PetscSolver`, solves, and destroys it.
    """
    solver = PetscSolver(method, pc=M, rtol=rtol, atol=atol, maxiter=maxiter,
                         comm=A.getComm() if isinstance(A, PETSc.Mat) else None,
                         callback=callback, **options)
    try:
        return solver.solve(A, b, x0=x0)
    finally:
        solver.close()
