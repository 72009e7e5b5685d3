"""The one vocabulary of the solvers: every option's name and default, for every backend.

A method takes its options under these names with these defaults on the NumPy, PETSc and torch
backends, in :class:`~pdesuite.solvers.RecyclingSolver`, in
:class:`~pdesuite.solvers.petsc_backend.PetscSolver` and in dataset generation. A backend may
offer a subset of a method's options (PETSc's FCG has no ``normalize_input``, say), never
another name or another default; ``tests/solvers/test_vocabulary.py`` walks the backends
and fails on any difference.

Spelling is American, as in SciPy and PETSc (``reorthogonalize``, ``reorthogonalizations``).
"""

from __future__ import annotations

from typing import Any

#: Relative tolerance on the true residual, ``‖b − A x‖ ≤ max(rtol·‖b‖, atol)``. Tighter than
#: SciPy's and PETSc's 1e-5: the suite's main job is data for operator learning, where a looser
#: solve leaves errors of the order of the models' own.
DEFAULT_RTOL = 1e-8
DEFAULT_ATOL = 0.0
#: Cap on iterations: Krylov steps (inner steps of restarted methods) or relaxation sweeps.
DEFAULT_MAXITER = 10_000
#: Length of a restart cycle of GMRES, FGMRES and GCRO-DR.
DEFAULT_RESTART = 40
#: When Gram–Schmidt runs a second pass: never (one classical pass, as PETSc's GMRES), when
#: needed (``"ifneeded"``: GMRES and FGMRES when the first pass cancelled most of the vector,
#: GCRO-DR when the new vector's measured loss of orthogonality exceeds a tolerance), or
#: always (CGS2).
REORTHOGONALIZE = ("never", "ifneeded", "always")
#: Where a Krylov method applies the preconditioner.
SIDES = ("left", "right")

#: Options of every method with their defaults. ``None`` means "derived from other options"
#: (rcg's ``ell``) or "none given" (``recycle``).
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "cg": {},
    # mmax: how many earlier directions a new one is made A-orthogonal to (PETSc's KSPFCGSetMmax).
    # normalize_input (apply M to r/‖r‖) and residual_replacement (recompute r = b − A x every
    # so many iterations; 0 never) matter for a nonlinear M only.
    "fcg": {"mmax": 1, "normalize_input": True, "residual_replacement": 0},
    # DCDM: flexible CG with the deep conjugate direction method's settings.
    "dcdm": {"mmax": 2, "normalize_input": True, "residual_replacement": 1},
    "gmres": {"restart": DEFAULT_RESTART, "side": "left", "reorthogonalize": "never"},
    "fgmres": {"restart": DEFAULT_RESTART, "reorthogonalize": "never"},
    "bicgstab": {},
    "minres": {},
    "richardson": {"omega": 1.0},
    # GCRO-DR runs a second pass when needed by default: with one pass its recycled basis lost
    # orthogonality and solves stalled (FE Poisson with ILU, Helmholtz with ILU).
    "gcrodr": {"restart": DEFAULT_RESTART, "k": 20, "recycle": None, "side": "right",
               "stale_threshold": 0.7, "reorthogonalize": "ifneeded", "update_period": 1},
    "rcg": {"k": 20, "ell": None, "recycle": None, "stale_threshold": 0.7},
    "jacobi": {"omega": 1.0},
    "gauss-seidel": {"direction": "forward", "ordering": "natural"},
    "sor": {"omega": 1.0, "direction": "forward", "ordering": "natural"},
    "ssor": {"omega": 1.0, "ordering": "natural"},
    # spd: True (Cholesky), False (LU) or None (Cholesky when the matrix looks symmetric with a
    # positive diagonal); ordering: CHOLMOD's fill-reducing ordering; factorization: a
    # DirectSolver whose analysis of the sparsity pattern is reused (None: a fresh one).
    "direct": {"spd": None, "ordering": "default", "factorization": None},
}

#: Options of a backend rather than of a method, accepted by all of its methods.
BACKEND_OPTIONS: dict[str, dict[str, Any]] = {
    "numpy": {},
    "petsc": {},
    "torch": {"check_every": 1, "device": None},
}


def method_default(method: str, option: str) -> Any:
    """The default of ``option`` for ``method`` (a KeyError names what is unknown)."""
    return METHOD_DEFAULTS[method][option]
