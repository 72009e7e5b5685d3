"""Preconditioners of the PETSc backend: PETSc's own by name, or any object as a python PC.

``M`` of :class:`~pdesuite.solvers.petsc_backend.PetscSolver` is one of

- a name of :data:`PRECONDITIONERS` (``None`` is ``"none"``), with options under the prefix
  ``pc_`` (``pc_omega=1.5``);
- an object with ``apply(r) -> z`` (a :class:`~pdesuite.solvers.Preconditioner`, a trained
  network's adapter), a callable ``r -> z`` or a matrix approximating ``A⁻¹``: run by a
  :class:`PythonPC`; or a :class:`PythonPC` itself, to choose ``gather``;
- a ``PETSc.PC``, used as it is.

PETSc's Jacobi replaces a zero diagonal entry by 1 instead of failing, unlike the NumPy
backend's JacobiPreconditioner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import scipy.sparse as sp

from petsc4py import PETSc

from pdesuite.solvers.preconditioner import FunctionPreconditioner, MatrixPreconditioner
from pdesuite.solvers.validation import check_choice, check_int, check_real

__all__ = [
    "PRECONDITIONERS",
    "InstalledPC",
    "PythonPC",
    "configure_named",
    "install_preconditioner",
]

#: Preconditioner names of the PETSc backend, with the options each takes (prefix ``pc_``):
#: ``pc_omega`` (sor, ssor; in (0, 2), default 1), ``pc_sweeps`` (default 1), ``pc_direction``
#: (sor: forward/backward/symmetric), ``pc_levels`` (ILU/ICC fill levels; default 0),
#: ``pc_overlap`` (asm; default 1), ``pc_sub_pc`` (asm's block solver: ``"ilu"`` default,
#: ``"icc"`` or ``"lu"``).
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
# Local sweeps: the same as global ones in serial, block Jacobi across MPI ranks.
_SOR_DIRECTIONS = {"forward": "local_forward", "backward": "local_backward",
                   "symmetric": "local_symmetric"}
_ASM_SUB_PCS = ("ilu", "icc", "lu")


class PythonPC:
    """A PETSc python-PC context that applies a :class:`~pdesuite.solvers.Preconditioner`.

    ``z = preconditioner.apply(r)`` on NumPy arrays: ``r`` is a fresh, writable copy of the
    input, ``z`` must have the same shape. Install it with :meth:`install` (or
    ``pc.setType(PETSc.PC.Type.PYTHON); pc.setPythonContext(ctx)``), or pass it (or the bare
    preconditioner) as ``M`` to :class:`~pdesuite.solvers.petsc_backend.PetscSolver`.

    Args:
        preconditioner: an object with ``apply(r) -> z``; its optional ``linear`` attribute
            is honored as everywhere in the suite.
        gather: under MPI, give ``apply`` the whole vector ``[n]`` on every rank (one
            all-gather per application; each rank keeps its rows of ``z``), for a
            preconditioner built for the global problem, such as a network on the full grid.
            Default False: ``apply`` sees this rank's ``[n_local]`` rows only, which makes
            the preconditioner block diagonal across ranks. In serial both are the same.

    Attributes:
        preconditioner: the wrapped object; replace it to change the preconditioner.
        applies: applications so far.
        error: the exception raised inside ``apply``, kept because PETSc turns it into a
            generic error; the solver re-raises it.
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

    def setUp(self, pc: "PETSc.PC") -> None:  # petsc4py's name
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


@dataclass
class InstalledPC:
    """What :func:`install_preconditioner` set up on a KSP's PC."""

    #: the name reported in ``info["pc"]``: a name of PRECONDITIONERS, ``"python"``, or
    #: ``"petsc:<type>"`` for a user's ``PETSc.PC``
    name: str
    #: the python PC context when ``M`` is an object, else None
    python_pc: Optional[PythonPC] = None
    #: SOR with ω ≠ 1: PETSc's inode kernels support only ω = 1, so the matrix must not use them
    inodes_off: bool = False


def install_preconditioner(ksp: "PETSc.KSP", M: Any, options: dict[str, Any],
                           set_option: Callable[[str, Any], None]) -> InstalledPC:
    """Configure ``ksp``'s PC from ``M`` and its ``pc_*`` options (prefix removed).

    ``set_option(name, value)`` puts a setting without a petsc4py setter into the options
    database under the solver's prefix; ``ksp.setFromOptions()`` applies them afterwards.

    Raises:
        ValueError: unknown name or option value (the message starts with ``M`` or the option).
        TypeError: unknown options for the name, options for an object, or an unusable ``M``.
    """
    petsc_pc = ksp.getPC()
    if M is None:
        M = "none"
    if isinstance(M, str):
        name = M.lower()
        if name not in PRECONDITIONERS:
            raise ValueError(f"M: unknown preconditioner {M!r}; known: {sorted(PRECONDITIONERS)} "
                             "or an object with apply(r) -> z")
        unknown = set(options) - set(PRECONDITIONERS[name])
        if unknown:
            raise TypeError(f"M={name!r}: unknown option(s) {sorted('pc_' + u for u in unknown)}; "
                            f"it takes {['pc_' + o for o in PRECONDITIONERS[name]]}")
        inodes_off = configure_named(petsc_pc, "icc" if name == "ic" else name, options,
                                     set_option, parallel=ksp.getComm().getSize() > 1)
        return InstalledPC(name, inodes_off=inodes_off)
    if options:
        raise TypeError(f"M: options {sorted('pc_' + o for o in options)} are only for "
                        "preconditioners given by name")
    if isinstance(M, PETSc.PC):
        ksp.setPC(M)
        return InstalledPC(f"petsc:{M.getType()}")
    if isinstance(M, PythonPC):
        python_pc = M
    elif hasattr(M, "apply"):
        python_pc = PythonPC(M)
    elif sp.issparse(M) or isinstance(M, np.ndarray) or hasattr(M, "matvec"):
        python_pc = PythonPC(MatrixPreconditioner(M))
    elif callable(M):
        python_pc = PythonPC(FunctionPreconditioner(M))
    else:
        raise TypeError(f"M: expected a name, None, an object with apply(r) -> z, a matrix "
                        f"or a callable, got {type(M).__name__}")
    python_pc.install(petsc_pc)
    return InstalledPC("python", python_pc=python_pc)


def configure_named(petsc_pc: "PETSc.PC", name: str, options: dict[str, Any],
                    set_option: Callable[[str, Any], None], parallel: bool = False) -> bool:
    """Set up one of PRECONDITIONERS (``"icc"`` for ``"ic"``) on ``petsc_pc``; returns whether
    the matrix's inodes must be off.

    ``options`` are the name's options with the ``pc_`` prefix removed (their values are checked
    here); ``set_option(name, value)`` puts a setting without a petsc4py setter into the options
    database under the PC's prefix, for ``setFromOptions`` to apply. The one table of PETSc PC
    settings: :class:`PetscSolver` and the NumPy backend's
    :class:`~pdesuite.solvers.petsc_backend.kernels.PetscKernelPreconditioner` both use it.
    """
    if name in ("none", "jacobi", "gamg"):
        petsc_pc.setType({"none": PETSc.PC.Type.NONE, "jacobi": PETSc.PC.Type.JACOBI,
                          "gamg": PETSc.PC.Type.GAMG}[name])
    elif name in ("sor", "gauss-seidel", "ssor"):
        petsc_pc.setType(PETSc.PC.Type.SOR)
        omega = check_real("pc_omega", options.get("omega", 1.0), low=0.0, high=2.0,
                           open_low=True, open_high=True)
        sweeps = check_int("pc_sweeps", options.get("sweeps", 1), 1)
        direction = ("symmetric" if name == "ssor"
                     else check_choice("pc_direction", options.get("direction", "forward"),
                                       _SOR_DIRECTIONS))
        set_option("pc_sor_omega", omega)
        set_option(f"pc_sor_{_SOR_DIRECTIONS[direction]}", True)
        # Under MPI each of the `its` sweeps first refreshes the off-rank values.
        set_option("pc_sor_its", sweeps)
        return omega != 1.0
    elif name in ("ilu", "icc"):
        levels = check_int("pc_levels", options.get("levels", 0), 0)
        if parallel:
            # ILU/ICC are sequential factorizations: one per rank, block Jacobi across ranks.
            petsc_pc.setType(PETSc.PC.Type.BJACOBI)
            set_option("sub_pc_type", name)
            set_option("sub_pc_factor_levels", levels)
        else:
            petsc_pc.setType(name)
            petsc_pc.setFactorLevels(levels)
    elif name == "asm":
        petsc_pc.setType(PETSc.PC.Type.ASM)
        petsc_pc.setASMOverlap(check_int("pc_overlap", options.get("overlap", 1), 0))
        set_option("sub_pc_type", check_choice("pc_sub_pc", options.get("sub_pc", "ilu"),
                                               _ASM_SUB_PCS))
        set_option("sub_pc_factor_levels", check_int("pc_levels", options.get("levels", 0), 0))
    return False
