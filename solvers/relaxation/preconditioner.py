"""Jacobi, Gauss–Seidel, SOR and SSOR as preconditioners (a fixed number of sweeps from zero)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

from pdesuite.solvers.linear_operator import as_csr
from pdesuite.solvers.preconditioner import BasePreconditioner
from pdesuite.solvers.relaxation.splitting import (
    DIRECTIONS,
    KINDS,
    ORDERINGS,
    SORSplitting,
    check_omega,
    checked_diagonal,
    is_hermitian,
    positive_real,
)
from pdesuite.solvers.validation import check_choice, check_int


class RelaxationPreconditioner(BasePreconditioner):
    """``z = M⁻¹ r``: ``sweeps`` relaxation sweeps for ``A z = r`` from ``z = 0``.

    Args:
        A: ``[n, n]`` sparse or dense matrix with a nonzero diagonal.
        kind: ``"jacobi"`` (weighted by ``omega``), ``"gauss-seidel"`` (SOR with ``ω = 1``),
            ``"sor"`` or ``"ssor"``. Default ``"sor"``.
        omega: relaxation factor in the open interval (0, 2). Default 1.
        sweeps: number of sweeps, ≥ 1. Default 1.
        direction: ``"forward"``, ``"backward"`` or ``"symmetric"`` (forward then backward).
            Default (None): ``"symmetric"`` for ``"ssor"``, else ``"forward"``; ``"ssor"``
            accepts only ``"symmetric"``. Jacobi has no direction and ignores it.
        ordering: ``"natural"`` (default) or ``"redblack"`` (see :class:`SORSplitting`).

    Attributes:
        symmetric: True when ``M⁻¹`` is symmetric (Hermitian) positive definite, so that CG
            may use it: a symmetric sweep (SSOR, symmetric Gauss–Seidel) of a Hermitian A with
            a positive real diagonal — positive definite for one sweep, and for more sweeps
            when A itself is positive definite — or one Jacobi sweep with a positive diagonal.
            Forward or backward SOR is never symmetric.

    Raises:
        ValueError: ``omega`` outside (0, 2) or NaN, ``omega ≠ 1`` with ``"gauss-seidel"``,
            unknown ``kind``/``direction``/``ordering``, ``sweeps < 1``, a zero diagonal.
    """

    linear = True
    #: which implementation runs: these SciPy/NumPy kernels (``"petsc"`` for
    #: :class:`~pdesuite.solvers.petsc_backend.kernels.PetscKernelPreconditioner`)
    backend = "scipy"

    def __init__(self, A: Any, kind: str = "sor", omega: float = 1.0, sweeps: int = 1,
                 direction: Optional[str] = None, ordering: str = "natural"):
        (self.kind, self.omega, self.sweeps, self.direction,
         self.ordering) = check_preconditioner_options(kind, omega, sweeps, direction, ordering)
        matrix = as_csr(A, copy=True)
        diag = checked_diagonal(matrix)
        self.n = matrix.shape[0]
        self.dtype = matrix.dtype
        self.symmetric = preconditioner_is_symmetric(matrix, diag, self.kind, self.sweeps,
                                                     self.direction)
        if self.kind == "jacobi":
            self._matrix = matrix
            self._omega_over_d = self.omega / diag
            self._splitting: Optional[SORSplitting] = None
        else:
            self._splitting = SORSplitting(matrix, self.omega, self.ordering)

    def __repr__(self) -> str:
        return (f"RelaxationPreconditioner(kind={self.kind!r}, backend={self.backend!r}, "
                f"omega={self.omega}, sweeps={self.sweeps}, direction={self.direction!r}, "
                f"ordering={self.ordering!r})")

    def apply(self, r: np.ndarray) -> np.ndarray:
        """``z = M⁻¹ r`` for ``r`` of shape ``[n]``; ``z`` has the matrix's dtype (complex if r
        is)."""
        r = np.asarray(r).reshape(-1)
        if r.shape != (self.n,):
            raise ValueError(f"r: expected shape ({self.n},), got {r.shape}")
        if r.dtype.kind == "c" and self.dtype.kind != "c":
            # The operator is real and linear: relax the two parts apart.
            return self._apply(np.ascontiguousarray(r.real)) + 1j * self._apply(
                np.ascontiguousarray(r.imag)
            )
        return self._apply(r)

    def _apply(self, r: np.ndarray) -> np.ndarray:
        if self._splitting is None:
            r = r.astype(np.result_type(r.dtype, self.dtype), copy=False)
            z = self._omega_over_d * r
            for _ in range(self.sweeps - 1):
                z = z + self._omega_over_d * (r - self._matrix @ z)
            return z
        s = self._splitting
        rhs = s._cast(s.to_internal(r))
        forward = self.direction in ("forward", "symmetric")
        backward = self.direction in ("backward", "symmetric")
        z: Optional[np.ndarray] = None
        for _ in range(self.sweeps):
            if forward:
                # From z = 0 the first right-hand side is r itself.
                z = s.forward_solve(rhs if z is None else s.forward_rhs(rhs, z))
            if backward:
                z = s.backward_solve(rhs if z is None else s.backward_rhs(rhs, z))
        return s.to_original(z)


def check_preconditioner_options(kind: str, omega: Any, sweeps: Any, direction: Optional[str],
                                 ordering: str) -> tuple[str, float, int, str, str]:
    """``(kind, omega, sweeps, direction, ordering)`` of a relaxation preconditioner, checked and
    with the default direction resolved; the ValueErrors of :class:`RelaxationPreconditioner`
    (each message starts with the argument's name). Shared with the PETSc kernels."""
    kind = check_choice("kind", kind, KINDS)
    omega = check_omega(omega)
    sweeps = check_int("sweeps", sweeps, 1)
    ordering = check_choice("ordering", ordering, ORDERINGS)
    direction = resolve_direction(kind, direction)
    if kind == "gauss-seidel" and omega != 1.0:
        raise ValueError(f"omega: kind='gauss-seidel' is SOR with omega=1, got omega={omega}; "
                         "use kind='sor' for another relaxation factor")
    return kind, omega, sweeps, direction, ordering


def preconditioner_is_symmetric(matrix: sp.csr_array, diag: np.ndarray, kind: str, sweeps: int,
                                direction: str) -> bool:
    """The ``symmetric`` flag of a relaxation preconditioner (see
    :class:`RelaxationPreconditioner`)."""
    if kind == "jacobi":
        return sweeps == 1 and positive_real(diag)
    return direction == "symmetric" and positive_real(diag) and is_hermitian(matrix)


def resolve_direction(kind: str, direction: Optional[str]) -> str:
    if direction is None:
        return "symmetric" if kind == "ssor" else "forward"
    direction = check_choice("direction", direction, DIRECTIONS)
    if kind == "ssor" and direction != "symmetric":
        raise ValueError(
            f"direction: kind='ssor' is the symmetric sweep, got direction={direction!r}; "
            "use kind='sor' for a one-directional sweep"
        )
    return direction
