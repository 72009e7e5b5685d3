"""Relaxation: Jacobi, Gauss–Seidel, SOR and SSOR, as preconditioners and as stand-alone solvers.

Splitting ``A = L + D + U`` (strictly lower, diagonal, strictly upper). One forward SOR sweep
with relaxation factor ``ω`` is

    (D/ω + L) x_new = b − (U + (1 − 1/ω) D) x,

a backward sweep swaps ``L`` and ``U``, and a symmetric (SSOR) sweep is a forward sweep followed
by a backward one. Gauss–Seidel is SOR with ``ω = 1``; weighted Jacobi is
``x_new = x + ω D⁻¹ (b − A x)``.

How the sweep runs fast without compiled code of our own: ``D/ω + L`` is already triangular,
so SciPy's SuperLU "factorises" it in natural order without pivoting (no fill, ``L`` the matrix
scaled by its diagonal) and ``SuperLU.solve`` then performs the triangular solve in C.
``benchmarks/bench_sor.py`` times one forward sweep (the product with ``U + (1 − 1/ω) D``
included) on the unscaled 2D 5-point Poisson matrix, ω = 1.5, on a shared 2-core machine
(load 5–9; the times are the quietest of four runs and vary by up to 3× between runs, the
ratio to one product with A — last column, range over the runs — is steadier):

    ============================ ========= ========= ========== ==============
    implementation               256²      512²      1024²      sweep/matvec
    ============================ ========= ========= ========== ==============
    SuperLU solve (the default)  1.1 ms    5.1 ms    21 ms      4.4–8.5
    spsolve_triangular           6.4 ms    26 ms     101 ms     21–59
    level schedule (wavefront)   4.5 ms    16 ms     38 ms      8–25
    red–black (other iteration)  0.37 ms   1.7 ms    8.3 ms     1.5–2.4
    PETSc MatSOR (reference)     0.62 ms   3.1 ms    12 ms      1.9–3
    ============================ ========= ========= ========== ==============

The SuperLU set-up is 0.2–0.3 s at 512² and 0.5–2 s at 1024², once per matrix and ``ω``
(``relax=1, panel_size=1`` cut it by ~2.5×). SuperLU is therefore the default for the natural
(lexicographic) order: 5× faster than ``spsolve_triangular``, 2–3× slower than PETSc's
compiled MatSOR. ``ordering="redblack"`` reorders a matrix whose graph is 2-colourable (the
5-point Laplacian, for instance) so that each half-sweep is one vectorised update; it is the
fastest per sweep but a different iteration from lexicographic SOR (it is lexicographic SOR
of the permuted matrix), so it is an option, not the default.

With petsc4py installed, the named preconditioners ``M="sor"``, ``"ssor"`` and
``"gauss-seidel"`` of ``solve`` run PETSc's compiled MatSOR on A's own CSR arrays instead
(:class:`pdesuite.solvers.petsc_backend.kernels.PetscKernelPreconditioner`, the same sweeps);
:class:`RelaxationPreconditioner` is their fallback and the red–black variant, and the
stand-alone solvers below always run here.

The stand-alone solvers monitor the true residual ``b − A x_new`` without an extra product
with ``A``: with ``N = U + (1 − 1/ω) D`` and ``c(x) = b − N x``, the identity
``b − A x_new = c(x_new) − c(x)`` holds exactly, and ``c(x_new)`` is the right-hand side of the
next sweep anyway. So a forward or backward sweep costs one triangular solve and one product
with a triangle of ``A``; ``SolveResult.matvecs`` counts only real products with ``A`` (the
initial residual of a nonzero ``x0``, the final check, and every Jacobi sweep).


Modules: :mod:`.splitting` (the sweeps), :mod:`.preconditioner`, :mod:`.methods` (registered in
the solver registry on import), :mod:`.spectral` (ω estimates).
"""

from pdesuite.solvers.relaxation import methods as _methods  # noqa: F401  (registers the methods)
from pdesuite.solvers.relaxation.preconditioner import (
    RelaxationPreconditioner,
    check_preconditioner_options,
    preconditioner_is_symmetric,
)
from pdesuite.solvers.relaxation.spectral import jacobi_spectral_radius, young_omega
from pdesuite.solvers.relaxation.splitting import (
    DIRECTIONS,
    KINDS,
    ORDERINGS,
    SORSplitting,
    red_black_ordering,
)

__all__ = [
    "DIRECTIONS",
    "KINDS",
    "ORDERINGS",
    "RelaxationPreconditioner",
    "SORSplitting",
    "check_preconditioner_options",
    "jacobi_spectral_radius",
    "preconditioner_is_symmetric",
    "red_black_ordering",
    "young_omega",
]
