"""Global reductions for the Krylov methods: serial, or one ``Allreduce`` per block under MPI.

Every inner product of vectors and of row blocks with vectors, every norm, the QR of a block of
images and every agreement on a yes/no that depends on local data goes through one
:class:`Reduction`, taken from ``op.reduction`` when the operator has one and else
:data:`LOCAL_REDUCTION` (plain NumPy). :class:`MPIReduction` does the local product and one
``Allreduce`` of the small result per block product, so that the same method code runs on the
rank-local rows of a distributed system (how the PETSc backend runs GCRO-DR and recycling CG
as python KSP types under ``mpiexec``). Small dense work (Givens rotations, Ritz problems) is
computed redundantly, identically, on every rank.

Vectors are rows of C-contiguous ``[k, n]`` arrays, so that every projection is one BLAS-2
call over contiguous memory.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas

__all__ = ["LOCAL_REDUCTION", "MPIReduction", "Reduction", "orthonormalize_image", "reduction_of"]


def _rows_dot(rows: np.ndarray, w: np.ndarray, real: bool) -> np.ndarray:
    """``[rows_iᴴ w]`` without copying the (large) conjugated rows."""
    if real:
        return rows @ w
    return np.conj(rows @ np.conj(w))


def _rows_dot_block(rows: np.ndarray, others: np.ndarray, real: bool) -> np.ndarray:
    """``[rows_iᴴ others_j]``, shape ``[len(rows), len(others)]``."""
    if real:
        return rows @ others.T
    return np.conj(rows @ np.conj(others).T)


def _row_squares(rows: np.ndarray) -> np.ndarray:
    """``[‖rows_i‖²]`` of the local rows ``[k, n]``, without a temporary of their size."""
    if np.iscomplexobj(rows):
        return (np.einsum("ij,ij->i", rows.real, rows.real)
                + np.einsum("ij,ij->i", rows.imag, rows.imag))
    return np.einsum("ij,ij->i", rows, rows)


def _solve_transposed(r: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``R⁻ᵀ rows`` ``[k, n]`` for an upper triangular ``R`` ``[k, k]`` and rows the caller no
    longer needs (overwritten): ``rowsᵀ R⁻¹`` by one triangular solve from the right in the
    rows' own C-ordered memory, without a transposed copy."""
    rows = np.ascontiguousarray(rows, dtype=np.result_type(r, rows))
    if rows.dtype.char not in "fdFD" or rows.shape[0] == 0:
        return sla.solve_triangular(r, rows, trans="T", check_finite=False)
    trsm = blas.get_blas_funcs("trsm", dtype=rows.dtype)
    return trsm(1.0, r.astype(rows.dtype, copy=False), rows.T, side=1, lower=0, trans_a=0,
                overwrite_b=1).T


def _truncated_qr(matrix: np.ndarray, rows_to_follow: list[Optional[np.ndarray]]):
    """Pivoted QR of ``matrix`` ``[m, j]`` cut at its numerical rank (1e-12 relative).

    Returns ``(Q [m, rank], follow)``, where each of ``rows_to_follow`` (rows matching the
    columns of ``matrix``) is carried through the same change of basis, or None for a zero or
    non-finite matrix.
    """
    q, r, piv = sla.qr(matrix, mode="economic", pivoting=True, check_finite=False)
    diag = np.abs(np.diag(r))
    if diag.size == 0 or diag[0] == 0.0:
        return None
    rank = int(np.sum(diag > 1e-12 * diag[0]))
    r = r[:rank, :rank]
    follow = [None if rows is None else _solve_transposed(r, rows[piv[:rank]])
              for rows in rows_to_follow]
    return q[:, :rank], follow


class Reduction:
    """Global reductions over vectors stored as local NumPy arrays; this one is serial (local).

    ``real`` says that the working dtype is real (no conjugation needed). Shapes: ``rows``
    ``[k, n_local]``, ``w`` ``[n_local]``. Every method returns the *global* value, the same on
    every process; a subclass for a distributed vector does the local part and one sum over
    the processes. The serial methods are exactly the NumPy expressions the algorithms use.
    """

    #: True when the vectors are split across processes.
    distributed = False

    def dot_rows(self, rows: np.ndarray, w: np.ndarray, real: bool) -> np.ndarray:
        """``[rows_iᴴ w]``, shape ``[k]``."""
        return _rows_dot(rows, w, real)

    def dot_rows_and_norm(
        self, rows: np.ndarray, w: np.ndarray, real: bool
    ) -> tuple[np.ndarray, float]:
        """``([rows_iᴴ w], ‖w‖)`` (one reduction when distributed)."""
        return _rows_dot(rows, w, real), float(np.linalg.norm(w))

    def gram(self, rows: np.ndarray, others: np.ndarray, real: bool) -> np.ndarray:
        """``[rows_iᴴ others_j]``, shape ``[len(rows), len(others)]``."""
        return _rows_dot_block(rows, others, real)

    def dot(self, a: np.ndarray, b: np.ndarray) -> complex:
        """``aᴴ b``."""
        return np.vdot(a, b)

    def dot_and_rows(self, a: np.ndarray, w: np.ndarray, rows: Optional[np.ndarray],
                     real: bool) -> tuple[complex, Optional[np.ndarray]]:
        """``(aᴴ w, [rows_iᴴ w] or None)`` (one reduction when distributed)."""
        return np.vdot(a, w), (None if rows is None else _rows_dot(rows, w, real))

    def norm(self, w: np.ndarray) -> float:
        """``‖w‖₂``."""
        return float(np.linalg.norm(w))

    def row_norms(self, rows: np.ndarray) -> np.ndarray:
        """``[‖rows_i‖₂]``, shape ``[k]``."""
        return np.sqrt(_row_squares(rows))

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every process."""
        return bool(flag)

    def any_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on some process."""
        return bool(flag)

    def standard_normal(self, seed: int, n: int, dtype: Any) -> np.ndarray:
        """A fixed random vector (``n`` local entries) for the slowness probe."""
        return np.random.default_rng(seed).standard_normal(n).astype(dtype)

    def orthonormalize(self, image_rows: np.ndarray, rows_to_follow: list[Optional[np.ndarray]]):
        """Rank-revealing QR of the rows ``[k, n_local]``; see :func:`_orthonormalize_image`."""
        return orthonormalize_image(image_rows, rows_to_follow)


#: The serial reduction, used whenever the operator carries none.
LOCAL_REDUCTION = Reduction()


class MPIReduction(Reduction):
    """Reductions over vectors split by rows across the processes of an mpi4py communicator.

    Each method computes the rank-local partial result and sums it with one ``Allreduce``
    (of ``k`` numbers for a block product, not one per vector). The QR of a block of images is
    a TSQR: a local QR, an ``Allgather`` of the ``k × k`` triangles, and a pivoted QR of
    their stack, computed identically on every rank. The slowness probe of each rank comes
    from a generator seeded by ``(seed, rank)``, so that the run is reproducible for a fixed
    number of ranks.

    Args:
        comm: an ``mpi4py.MPI.Comm`` (``PETSc.Comm.tompi4py()`` gives one).
    """

    distributed = True

    def __init__(self, comm: Any):
        from mpi4py import MPI  # only a distributed run needs mpi4py

        self._mpi = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def _sum(self, local: np.ndarray) -> np.ndarray:
        local = np.ascontiguousarray(local)
        out = np.empty_like(local)
        self.comm.Allreduce(local, out, op=self._mpi.SUM)
        return out

    def dot_rows(self, rows, w, real):
        return self._sum(_rows_dot(rows, w, real))

    def dot_rows_and_norm(self, rows, w, real):
        local = _rows_dot(rows, w, real)
        packed = self._sum(np.concatenate([local, [np.vdot(w, w)]]).astype(
            np.result_type(local.dtype, w.dtype), copy=False))
        return packed[:-1], math.sqrt(max(float(np.real(packed[-1])), 0.0))

    def gram(self, rows, others, real):
        return self._sum(_rows_dot_block(rows, others, real))

    def dot(self, a, b):
        return self._sum(np.array([np.vdot(a, b)]))[0]

    def dot_and_rows(self, a, w, rows, real):
        if rows is None:
            return self.dot(a, w), None
        local = _rows_dot(rows, w, real)
        packed = self._sum(np.concatenate([[np.vdot(a, w)], local]).astype(
            np.result_type(local.dtype, w.dtype), copy=False))
        return packed[0], packed[1:]

    def norm(self, w):
        return math.sqrt(max(float(np.real(self.dot(w, w))), 0.0))

    def row_norms(self, rows):
        local = _row_squares(rows) if rows.shape[0] else np.zeros(0)
        return np.sqrt(np.maximum(self._sum(np.ascontiguousarray(local, dtype=float)), 0.0))

    def all_true(self, flag):
        return bool(self.comm.allreduce(bool(flag), op=self._mpi.LAND))

    def any_true(self, flag):
        return bool(self.comm.allreduce(bool(flag), op=self._mpi.LOR))

    def standard_normal(self, seed, n, dtype):
        return np.random.default_rng([seed, self.rank]).standard_normal(n).astype(dtype)

    def orthonormalize(self, image_rows, rows_to_follow):
        if not self.all_true(bool(np.all(np.isfinite(image_rows)))):
            return None
        k = image_rows.shape[0]
        q_local, r_local = np.linalg.qr(image_rows.T)  # [n_local, p], [p, k], p = min(n_local, k)
        p = r_local.shape[0]
        padded = np.zeros((k, k), dtype=r_local.dtype)
        padded[:p] = r_local
        stacked = np.empty((self.size * k, k), dtype=r_local.dtype)
        self.comm.Allgather(padded, stacked)
        truncated = _truncated_qr(stacked, rows_to_follow)
        if truncated is None:
            return None
        q, follow = truncated
        mine = q[self.rank * k:self.rank * k + p]
        return np.ascontiguousarray((q_local @ mine).T), follow


def reduction_of(op: Any) -> Reduction:
    """The operator's reduction (distributed operators carry one), else the serial one."""
    return getattr(op, "reduction", None) or LOCAL_REDUCTION


def orthonormalize_image(image_rows: np.ndarray, rows_to_follow: list[Optional[np.ndarray]]):
    """Rank-revealing QR ``image = Q R`` (pivoted, truncated at ``1e-12 |R_00|``).

    Returns ``(Q rows, [R⁻ᵀ rows_f for each f])`` so that a relation ``B f = image`` turns into
    ``B f' = Q``; ``None`` where the image is zero or not finite.
    """
    if not np.all(np.isfinite(image_rows)):
        return None
    truncated = _truncated_qr(image_rows.T, rows_to_follow)
    if truncated is None:
        return None
    q, follow = truncated
    return np.ascontiguousarray(q.T), follow

