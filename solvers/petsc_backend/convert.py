"""Conversions between SciPy/NumPy and PETSc: matrices, vectors, and the checks they share.

This PETSc is real (``PETSc.ScalarType`` float64, 32-bit indices). float32 and integer input
is converted to float64 (a copy) and solved in double precision; complex input raises
ValueError on a real PETSc build. Under ``mpiexec -n N`` with a communicator of size > 1 each
rank keeps its ownership range of rows (PETSc's default split), whether it passes the global
array or only its own rows.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from petsc4py import PETSc

from pdesuite.solvers.linear_operator import as_csr

__all__ = ["check_scalar_dtype", "default_comm", "from_petsc_vec", "to_petsc_mat", "to_petsc_vec"]


def default_comm(comm: Any) -> Any:
    """``comm``, or ``PETSc.COMM_WORLD`` for None."""
    return PETSc.COMM_WORLD if comm is None else comm


def ownership_range(n: int, size: int, rank: int) -> tuple[int, int]:
    """PETSc's default split of ``n`` rows (PetscSplitOwnership): the first ``n % size`` ranks
    get one more."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def check_scalar_dtype(dtype: np.dtype, name: str) -> Optional[str]:
    """The name of ``dtype`` when it must be converted to PETSc's scalar type, else None.

    Raises ValueError (named ``name``) for complex input on a real PETSc, TypeError for
    non-numbers.
    """
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
        ``PETSc.Mat`` of type AIJ. In serial, when ``A`` is a canonical CSR array with float64
        values and int32 indices (SciPy's usual result) and ``copy`` is False, the Mat uses
        ``A``'s arrays directly: do not change ``A.data`` while the Mat is in use. float32 or
        integer values are converted to float64 (a copy).

    Raises:
        ValueError: non-square ``A``, NaN/Inf entries, complex entries on a real PETSc,
            indices beyond PETSc's index range.
        TypeError: anything else than a sparse matrix, array or Mat.
    """
    if isinstance(A, PETSc.Mat):
        return A
    # The suite's one conversion: canonical CSR (PETSc's AIJ needs sorted, unique column
    # indices in every row), finite, float or complex; the arrays are shared where possible.
    A = as_csr(A)
    check_scalar_dtype(A.dtype, "A")
    data = A.data.astype(PETSc.ScalarType, copy=False)
    indptr = _as_index(A.indptr, "A.indptr")
    indices = _as_index(A.indices, "A.indices")
    n = A.shape[0]
    comm = default_comm(comm)
    size, rank = comm.getSize(), comm.getRank()
    if size == 1:
        csr = (indptr, indices, data)
        if copy:
            return PETSc.Mat().createAIJ((n, n), csr=csr, comm=comm)
        return PETSc.Mat().createAIJWithArrays((n, n), csr, comm=comm)
    start, end = ownership_range(n, size, rank)
    lo, hi = int(indptr[start]), int(indptr[end])
    local = (indptr[start:end + 1] - indptr[start], indices[lo:hi], data[lo:hi])
    local_rows = end - start
    return PETSc.Mat().createAIJ(((local_rows, n), (local_rows, n)), csr=local, comm=comm)


def to_petsc_vec(v: Any, comm: Any = None, layout: Optional["PETSc.Mat"] = None) -> "PETSc.Vec":
    """A PETSc vector from a NumPy array ``[n]`` (global) or ``[n_local]`` (this rank's rows).

    Args:
        v: 1-D real array (or a ``PETSc.Vec``, returned unchanged); ``[n, 1]`` is accepted.
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
    check_scalar_dtype(v.dtype, "v")
    if layout is not None:
        comm = layout.getComm()
        n_local, n = layout.getLocalSize()[0], layout.getSize()[0]
        start, end = layout.getOwnershipRange()
    else:
        comm = default_comm(comm)
        n = v.shape[0]
        start, end = ownership_range(n, comm.getSize(), comm.getRank())
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
