"""Krylov subspace recycling: GCRO-DR(m, k), recycling (deflated) CG, and ``RecyclingSolver``.

A sequence of related systems ``A_i x_i = b_i`` (a PDE dataset, a Newton or time-stepping loop)
shares the slow part of its spectrum. A recycling method keeps a small subspace from one solve
and uses it in the next, so that the Krylov iteration does not rediscover it.

- :mod:`.space`: :class:`RecycleSpace`, the state carried between solves, and the tests of
  whether a stored space still fits a new operator;
- :mod:`.gcrodr`: GCRO-DR(m, k) for any nonsingular A (``method="gcrodr"``);
- :mod:`.rcg`: recycling CG for Hermitian positive definite sequences (``method="rcg"``);
- :mod:`.solver`: :class:`RecyclingSolver`, which carries one space through
  :func:`pdesuite.solvers.solve`.

Both methods run on any :class:`~pdesuite.solvers.reduction.Reduction`, so that the PETSc
backend runs them as python KSP types under MPI.
"""

from pdesuite.solvers.recycling.gcrodr import gcrodr
from pdesuite.solvers.recycling.rcg import rcg
from pdesuite.solvers.recycling.solver import RECYCLING_METHODS, RecyclingSolver
from pdesuite.solvers.recycling.space import STALE_GROWTH, RecycleSpace

__all__ = ["RECYCLING_METHODS", "STALE_GROWTH", "RecycleSpace", "RecyclingSolver", "gcrodr", "rcg"]
