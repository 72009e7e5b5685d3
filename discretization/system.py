"""A linear system on the free degrees of freedom, with the way back to all of them.

FD and FE assembly both return a :class:`LinearSystem`. Dirichlet DoFs are eliminated, so the
matrix of a symmetric problem stays symmetric, and :meth:`LinearSystem.expand` puts the boundary
values back into a full DoF vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

_INT32_MAX = np.iinfo(np.int32).max


def as_csr32(matrix) -> sp.csr_array:
    """Return ``matrix`` as a canonical ``csr_array`` with int32 indices where they fit.

    PETSc (default build) and pyamg want 32-bit indices; SciPy promotes to int64 when it can.
    Duplicates are summed and the indices sorted, so the result is canonical.
    """
    csr = sp.csr_array(matrix)
    csr.sum_duplicates()
    csr.sort_indices()
    if csr.nnz <= _INT32_MAX and max(csr.shape) <= _INT32_MAX:
        csr.indices = csr.indices.astype(np.int32, copy=False)
        csr.indptr = csr.indptr.astype(np.int32, copy=False)
    return csr


@dataclass(frozen=True)
class LinearSystem:
    """``A x = b`` on the free DoFs of a discretisation with ``n_total`` DoFs in all.

    Attributes:
        A: ``[n_free, n_free]`` CSR matrix (int32 indices where they fit).
        b: ``[n_free]`` right-hand side, with the Dirichlet lift already moved into it.
        free: ``[n_free]`` int array: the position of each unknown among all DoFs.
        lift: ``[n_total]`` full DoF vector holding the Dirichlet values on fixed DoFs and zero
            on free ones.
    """

    A: sp.csr_array
    b: np.ndarray
    free: np.ndarray
    lift: np.ndarray

    def __post_init__(self) -> None:
        n = self.free.shape[0]
        if self.A.shape != (n, n):
            raise ValueError(f"A has shape {self.A.shape}, expected ({n}, {n}) for {n} free DoFs")
        if self.b.shape != (n,):
            raise ValueError(f"b has shape {self.b.shape}, expected ({n},)")

    @property
    def n_free(self) -> int:
        return int(self.free.shape[0])

    @property
    def n_total(self) -> int:
        return int(self.lift.shape[0])

    @property
    def fixed(self) -> np.ndarray:
        """``[n_total - n_free]`` indices of the fixed (Dirichlet) DoFs."""
        mask = np.ones(self.n_total, dtype=bool)
        mask[self.free] = False
        return np.flatnonzero(mask)

    def expand(self, x: np.ndarray) -> np.ndarray:
        """Full DoF vector ``[n_total]`` from a solution ``x`` ``[n_free]`` (or ``[n_free, k]``)."""
        x = np.asarray(x)
        if x.shape[0] != self.n_free:
            raise ValueError(f"x has {x.shape[0]} entries, expected n_free={self.n_free}")
        full = np.repeat(self.lift[:, None], 1 if x.ndim == 1 else x.shape[1], axis=1)
        full = full.astype(np.result_type(self.lift, x), copy=False)
        full[self.free] = x.reshape(self.n_free, -1)
        return full[:, 0] if x.ndim == 1 else full

    def restrict(self, full: np.ndarray) -> np.ndarray:
        """The free part ``[n_free]`` of a full DoF vector ``[n_total]``."""
        full = np.asarray(full)
        if full.shape[0] != self.n_total:
            raise ValueError(f"full has {full.shape[0]} entries, expected n_total={self.n_total}")
        return full[self.free]
