"""The PETSc backend: native KSP/PC solves through petsc4py, reused across a sequence.

Importing this package imports petsc4py; ``pdesuite.solvers`` itself never does, and
``solve(..., backend="petsc")`` imports it only when it is first used.

Modules, in the order they build on each other:

- :mod:`.convert`: :func:`to_petsc_mat`, :func:`to_petsc_vec`, :func:`from_petsc_vec`, between
  SciPy/NumPy and PETSc (in serial a float64 CSR matrix shares its arrays with the Mat);
- :mod:`.reasons`: PETSc's ``KSPConvergedReason`` names and ours (:data:`PETSC_REASON_MAP`);
- :mod:`.pc`: :class:`PythonPC`, any ``apply(r) -> z`` as a PETSc python PC, and the named
  PETSc preconditioners (:data:`PRECONDITIONERS`);
- :mod:`.kernels`: :class:`PetscKernelPreconditioner`, PETSc's ICC/ILU/SOR/Jacobi kernels as
  the NumPy backend's named preconditioners (``solve(A, b, M="ic")`` chooses it by itself);
- :mod:`.adapters`: PETSc objects seen as the NumPy methods' operator, preconditioner and
  monitor, on rank-local arrays;
- :mod:`.ksp`: :class:`GcrodrKSP`, :class:`RecyclingCGKSP` and :class:`DcdmKSP`, the suite's
  own methods as petsc4py python-KSP types (they run under ``mpiexec -n N``);
- :mod:`.methods`: the one table of methods (:data:`METHODS`), their options and defaults
  (:func:`option_defaults`), norms and counts;
- :mod:`.solver`: :class:`PetscSolver` (one KSP + PC reused for a sequence) and :func:`solve`,
  the backend entry point of :func:`pdesuite.solvers.solve`.

Options and defaults are those of :mod:`pdesuite.solvers.vocabulary`; the PETSc backend offers
a subset of them (``option_defaults(method)`` says which).
"""

try:
    from petsc4py import PETSc  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pdesuite.solvers.petsc_backend needs petsc4py (pip install petsc petsc4py, or `make "
        "install`); use backend='numpy' without it"
    ) from error

from pdesuite.solvers.petsc_backend.convert import from_petsc_vec, to_petsc_mat, to_petsc_vec
from pdesuite.solvers.petsc_backend.kernels import PetscKernelPreconditioner
from pdesuite.solvers.petsc_backend.ksp import DcdmKSP, GcrodrKSP, RecyclingCGKSP
from pdesuite.solvers.petsc_backend.methods import METHODS, option_defaults
from pdesuite.solvers.petsc_backend.pc import PRECONDITIONERS, PythonPC
from pdesuite.solvers.petsc_backend.reasons import PETSC_REASON_MAP
from pdesuite.solvers.petsc_backend.solver import PetscSolver, solve

__all__ = [
    "DcdmKSP",
    "GcrodrKSP",
    "METHODS",
    "PETSC_REASON_MAP",
    "PRECONDITIONERS",
    "PetscKernelPreconditioner",
    "PetscSolver",
    "PythonPC",
    "RecyclingCGKSP",
    "from_petsc_vec",
    "option_defaults",
    "solve",
    "to_petsc_mat",
    "to_petsc_vec",
]
