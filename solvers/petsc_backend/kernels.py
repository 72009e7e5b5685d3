"""PETSc's preconditioner kernels for the NumPy backend: ``apply(r) -> z`` on NumPy vectors.

:class:`PetscKernelPreconditioner` runs PETSc's compiled PCICC, PCILU, PCSOR and PCJACOBI on a
sequential AIJ matrix that shares the CSR arrays of ``A`` (no copy), so that the NumPy
backend's named preconditioners (``solve(A, b, M="ic")``) cost what they cost in PETSc. The PC
is configured by :func:`~pdesuite.solvers.petsc_backend.pc.configure_named`, the PETSc
backend's one table of PC settings; ``pdesuite.solvers.preconditioner`` chooses this class
automatically when petsc4py can be imported (the SciPy classes otherwise).

Semantics are those of the SciPy classes: ``kind``, ``omega``, ``sweeps``, ``direction`` and
the ``symmetric`` flag as in :class:`~pdesuite.solvers.relaxation.RelaxationPreconditioner`
(PETSc's local SOR sweeps from a zero initial guess are the same sweeps), a zero diagonal
entry raises ValueError, and the incomplete factorisations fail with a ValueError naming
``M`` on a zero pivot, and IC also on a negative one (PETSc's own default for ICC would shift
the matrix instead).
"""

from __future__ import annotations

import itertools
from typing import Any, Optional

import numpy as np

from petsc4py import PETSc

from pdesuite.solvers.linear_operator import as_csr
from pdesuite.solvers.petsc_backend.convert import to_petsc_mat
from pdesuite.solvers.petsc_backend.pc import configure_named
from pdesuite.solvers.petsc_backend.reasons import pc_failure_name
from pdesuite.solvers.preconditioner import BasePreconditioner
from pdesuite.solvers.relaxation import check_preconditioner_options, preconditioner_is_symmetric
from pdesuite.solvers.relaxation.splitting import HERMITIAN_RTOL, checked_diagonal, positive_real
from pdesuite.solvers.validation import check_choice, check_int

__all__ = ["KINDS", "PetscKernelPreconditioner"]

#: the NumPy backend's names that PETSc's kernels serve
KINDS = ("jacobi", "gauss-seidel", "sor", "ssor", "ilu", "ic")
_RELAXATION = ("gauss-seidel", "sor", "ssor")
_prefix_counter = itertools.count()


class PetscKernelPreconditioner(BasePreconditioner):
    """``z = M⁻¹ r`` by one of PETSc's PCs, on NumPy vectors of a real float64 ``A``.

    Args:
        A: ``[n, n]`` real sparse matrix (a canonical float64 CSR array with int32 indices is
            shared, not copied: change ``A.data`` only before building this) or dense array.
        kind: ``"ic"`` (PCICC, levels ``levels``), ``"ilu"`` (PCILU, levels ``levels``),
            ``"sor"``, ``"ssor"``, ``"gauss-seidel"`` (PCSOR) or ``"jacobi"`` (PCJACOBI).
        omega, sweeps, direction, ordering: the relaxation options, as in
            :class:`~pdesuite.solvers.relaxation.RelaxationPreconditioner`; ``ordering`` must
            be ``"natural"`` (red–black runs only in SciPy).
        levels: fill levels of ILU(k)/IC(k). Default 0. IC reads the upper triangle of A
            only (as PETSc's ICC does), so A should be symmetric.

    Each kind takes only its own options (default None: the SciPy classes' defaults).

    Attributes:
        backend: ``"petsc"``.
        kind, pc_type: what was asked for and the PETSc PC type that runs it.
        mat, pc: the ``PETSc.Mat`` (sharing A's arrays) and the set-up ``PETSc.PC``.
        symmetric: as for the SciPy classes: always for IC, for Jacobi with a positive
            diagonal, for symmetric sweeps of a Hermitian A with a positive diagonal.

    Raises:
        ValueError: a bad option value (the message starts with its name), a zero diagonal
            entry (relaxation, Jacobi), or a failed factorisation (the message starts with
            ``M='ic'``/``M='ilu'``): a missing or zero pivot, or for IC a negative one.
        TypeError: an option that ``kind`` does not take.

    Each application places ``r`` and a new output array in two PETSc Vecs made once
    (``placeArray``/``resetArray``) and runs ``PCApply``: nothing else is allocated, except a
    float64 copy of an ``r`` that is not a writable contiguous float64 array.
    """

    backend = "petsc"
    linear = True

    def __init__(self, A: Any, kind: str, *, omega: Optional[float] = None,
                 sweeps: Optional[int] = None, direction: Optional[str] = None,
                 ordering: Optional[str] = None, levels: Optional[int] = None):
        self.kind = check_choice("kind", kind, KINDS)
        given = {name for name, value in (("omega", omega), ("sweeps", sweeps),
                                          ("direction", direction), ("ordering", ordering),
                                          ("levels", levels)) if value is not None}
        takes = {"jacobi": set(), "ic": {"levels"}, "ilu": {"levels"},
                 "gauss-seidel": {"sweeps", "direction", "ordering"}}.get(
                     self.kind, {"omega", "sweeps", "direction", "ordering"})
        if given - takes:
            raise TypeError(f"M={self.kind!r}: takes no option(s) {sorted(given - takes)}; it "
                            f"takes {sorted(takes)}")
        matrix = as_csr(A)
        if matrix.dtype.kind == "c":
            raise ValueError(
                "A: complex matrices need the SciPy preconditioners (this PETSc is real)"
            )
        self.n = matrix.shape[0]
        self.symmetric = False
        self.options: dict[str, Any] = {}
        if self.kind in _RELAXATION:
            _, omega, sweeps, direction, ordering = check_preconditioner_options(
                self.kind, 1.0 if omega is None else omega, 1 if sweeps is None else sweeps,
                direction, "natural" if ordering is None else ordering)
            if ordering != "natural":
                raise ValueError("ordering: PETSc sweeps in the natural order; "
                                 "ordering='redblack' runs in RelaxationPreconditioner")
            diag = checked_diagonal(matrix)
            self.options = {"omega": omega, "sweeps": sweeps, "direction": direction}
            # The PETSc table's options of each name: gauss-seidel has no omega, ssor no direction.
            petsc_name, petsc_options = self.kind, {"sweeps": sweeps}
            if self.kind != "gauss-seidel":
                petsc_options["omega"] = omega
            if self.kind != "ssor":
                petsc_options["direction"] = direction
        elif self.kind == "jacobi":
            diag = matrix.diagonal()
            if np.any(diag == 0):
                raise ValueError("M='jacobi': A has a zero on its diagonal")
            self.symmetric = bool(np.all(diag > 0))
            petsc_name, petsc_options = "jacobi", {}
        else:
            levels = check_int("levels", 0 if levels is None else levels, 0)
            self.options = {"levels": levels}
            self.symmetric = self.kind == "ic"
            petsc_name, petsc_options = ("icc" if self.kind == "ic" else "ilu"), {"levels": levels}

        # Keep A alive as long as the Mat that points into its arrays.
        self._matrix = matrix
        self.mat = to_petsc_mat(matrix, comm=PETSc.COMM_SELF)
        if self.kind in _RELAXATION and direction == "symmetric" and positive_real(diag):
            # PETSc's test (no transposed copy) first; SciPy's where it says no, which it also
            # does for a symmetric matrix with an unsymmetric pattern of explicit zeros.
            scale = float(np.abs(matrix.data).max()) if matrix.nnz else 0.0
            self.symmetric = (self.mat.isSymmetric(HERMITIAN_RTOL * scale)
                              or preconditioner_is_symmetric(matrix, diag, self.kind, sweeps,
                                                             direction))
        self.pc = PETSc.PC().create(PETSc.COMM_SELF)
        prefix = f"pdesuite_kernel_{next(_prefix_counter)}_"
        self.pc.setOptionsPrefix(prefix)
        database = PETSc.Options(prefix)
        names: list[str] = []

        def set_option(name: str, value: Any) -> None:
            database[name] = value
            names.append(name)

        inodes_off = configure_named(self.pc, petsc_name, petsc_options, set_option)
        if inodes_off or self.kind in _RELAXATION:
            # On rows grouped into inodes (consecutive rows of one pattern) PETSc's SOR relaxes
            # each group as a block (block SOR, and only for omega = 1), not the point sweeps
            # of the SciPy path; off, always. The option acts at assembly.
            self.mat.setOption(PETSc.Mat.Option.USE_INODES, False)
            self.mat.assemble()
        self.pc.setOperators(self.mat)
        self.pc.setFromOptions()
        for name in names:
            database.delValue(name)
        if self.kind in ("ic", "ilu"):
            # Fail on a zero pivot instead of shifting (PETSc's ICC shifts by default), with a
            # zero-pivot threshold relative to the matrix's scale.
            self.pc.setFactorShift(PETSc.Mat.FactorShiftType.NONE)
            scale = float(np.abs(matrix.data).max()) if matrix.nnz else 1.0
            self.pc.setFactorPivot(zeropivot=100 * np.finfo(np.float64).eps * scale)
        self.pc_type = self.pc.getType()
        self._set_up()

        self._x = PETSc.Vec().createWithArray(np.zeros(self.n), comm=PETSc.COMM_SELF)
        self._y = PETSc.Vec().createWithArray(np.zeros(self.n), comm=PETSc.COMM_SELF)

    def _set_up(self) -> None:
        name = f"M={self.kind!r}"
        try:
            self.pc.setUp()
        except PETSc.Error as error:
            raise ValueError(f"{name}: PETSc's {self.pc_type} set-up failed (PETSc error "
                             f"{error.ierr}); an incomplete factorisation needs every diagonal "
                             "entry stored and nonzero") from None
        reason = self.pc.getFailedReason()
        if reason != PETSc.PC.FailedReason.NOERROR:
            raise ValueError(f"{name}: the incomplete factorisation failed "
                             f"({pc_failure_name(reason)}: a zero pivot); A is singular or "
                             "not suited to it; try another preconditioner")
        if self.kind == "ic":
            negative, zero, _ = self.pc.getFactorMatrix().getInertia()
            if negative or zero:
                raise ValueError(f"{name}: a non-positive pivot appeared ({negative + zero} of "
                                 f"{self.n}); A is not positive definite")

    def apply(self, r: np.ndarray) -> np.ndarray:
        """``z = M⁻¹ r`` for ``r`` of shape ``[n]``: float64 (complex when ``r`` is)."""
        r = np.asarray(r).reshape(-1)
        if r.shape != (self.n,):
            raise ValueError(f"r: expected shape ({self.n},), got {r.shape}")
        if r.dtype.kind == "c":
            # M⁻¹ is real and linear: the two parts apart.
            return self._apply(r.real) + 1j * self._apply(r.imag)
        return self._apply(r)

    def _apply(self, r: np.ndarray) -> np.ndarray:
        if not (r.dtype == np.float64 and r.flags.c_contiguous and r.flags.writeable):
            r = np.array(r, dtype=np.float64)
        z = np.empty(self.n)
        # The two Vecs, made once, point at r and z for the call: nothing else is allocated.
        self._x.placeArray(r)
        self._y.placeArray(z)
        try:
            self.pc.apply(self._x, self._y)
        finally:
            self._x.resetArray()
            self._y.resetArray()
        return z

    def __repr__(self) -> str:
        options = "".join(f", {name}={value!r}" for name, value in self.options.items())
        return (f"PetscKernelPreconditioner(kind={self.kind!r}, backend={self.backend!r}, "
                f"pc_type={self.pc_type!r}{options})")
