"""One view of whatever a user passes as ``A``: a square linear map with counted products.

Accepted: SciPy sparse arrays and matrices, dense NumPy arrays, SciPy ``LinearOperator``s,
objects with ``shape`` and ``matvec`` (or ``@``), and plain callables ``x -> A x`` (whose size
is taken from ``b``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp


class Operator:
    """A square linear map ``[n, n]`` whose products are counted in ``matvecs``.

    ``matrix`` holds the explicit CSR or dense matrix when there is one (relaxation and
    incomplete factorisations need the entries), else ``None``.
    """

    def __init__(self, matvec: Callable[[np.ndarray], np.ndarray], n: int, dtype: np.dtype,
                 matrix: sp.csr_array | np.ndarray | None = None):
        self._matvec = matvec
        self.shape = (n, n)
        self.dtype = np.dtype(dtype)
        self.matrix = matrix
        self.matvecs = 0

    @property
    def n(self) -> int:
        return self.shape[0]

    def matvec(self, x: np.ndarray) -> np.ndarray:
        self.matvecs += 1
        return self._matvec(x)

    __call__ = matvec

    def require_matrix(self, what: str) -> sp.csr_array | np.ndarray:
        """The explicit matrix, or a TypeError saying that ``what`` needs one."""
        if self.matrix is None:
            raise TypeError(
                f"{what} needs the entries of A, but A was given as a matvec only; "
                "pass a sparse or dense matrix"
            )
        return self.matrix


def as_csr(A: Any, copy: bool = False) -> sp.csr_array:
    """A square CSR matrix in canonical form (sorted, unique indices) of a real or complex dtype.

    The one conversion of a user's explicit matrix: SciPy sparse of any format or a dense
    array. Integer entries become float64. ``copy=False`` returns ``A`` itself when it already
    is a canonical float/complex CSR array, so that its arrays can be shared (with PETSc).

    Raises:
        TypeError: ``A`` is not a sparse matrix or a dense array, or has non-numeric entries.
        ValueError: ``A`` is not square or has NaN or Inf entries.
    """
    if isinstance(A, np.ndarray):
        if A.ndim != 2:
            raise ValueError(f"A: expected a square 2-D array, got shape {A.shape}")
        matrix = sp.csr_array(A)
    elif sp.issparse(A):
        matrix = sp.csr_array(A, copy=copy) if (A.format != "csr" or not isinstance(A, sp.sparray)
                                                or copy) else A
    else:
        raise TypeError(
            f"A: expected a SciPy sparse matrix or a dense array, got {type(A).__name__}"
        )
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"A: expected a square matrix, got shape {matrix.shape}")
    if matrix.dtype.kind in "biu":
        matrix = matrix.astype(np.float64)
    elif matrix.dtype.kind not in "fc":
        raise TypeError(f"A: expected real or complex entries, got dtype {matrix.dtype}")
    if not matrix.has_canonical_format:
        if matrix is A:
            matrix = matrix.copy()
        matrix.sum_duplicates()
    _check_finite_matrix(matrix.data)
    return matrix


def _check_finite_matrix(values: np.ndarray) -> None:
    if values.size and not np.all(np.isfinite(values)):
        raise ValueError("A contains NaN or Inf entries")


def _working_dtype(*dtypes: Any) -> np.dtype:
    dtype = np.result_type(*dtypes)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype.kind not in "fc":
        raise TypeError(f"A and b must be real or complex numbers, got dtype {dtype}")
    return dtype


def as_operator(A: Any, b: np.ndarray) -> tuple[Operator, np.ndarray]:
    """Validate ``A`` and ``b`` and return ``(Operator, b as a 1-D array of the working dtype)``.

    Raises ValueError naming ``A`` or ``b`` for a non-square or mismatched shape, or NaN/Inf
    entries, and TypeError for something that is not a linear map.
    """
    b = np.asarray(b)
    if b.ndim == 2 and b.shape[1] == 1:
        b = b[:, 0]
    if b.ndim != 1:
        raise ValueError(f"b: expected a vector of shape [n], got shape {b.shape}")
    n = b.shape[0]

    matrix: sp.csr_array | np.ndarray | None = None
    if sp.issparse(A):
        matrix = as_csr(A)
        a_dtype, shape = matrix.dtype, matrix.shape
    elif isinstance(A, np.ndarray):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A: expected a square 2-D array, got shape {A.shape}")
        matrix = A
        _check_finite_matrix(A)
        a_dtype, shape = A.dtype, A.shape
    elif hasattr(A, "shape") and (hasattr(A, "matvec") or hasattr(A, "__matmul__")):
        shape = tuple(A.shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"A: expected a square operator, got shape {shape}")
        a_dtype = getattr(A, "dtype", None) or b.dtype
    elif callable(A):
        shape, a_dtype = (n, n), b.dtype
    else:
        raise TypeError(
            "A: expected a sparse matrix, dense array, LinearOperator or callable, got "
            f"{type(A).__name__}"
        )

    if shape[0] != n:
        raise ValueError(f"b: has {n} entries but A has shape {shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError("b contains NaN or Inf entries")
    dtype = _working_dtype(a_dtype, b.dtype)
    b = b.astype(dtype, copy=False)

    if matrix is not None:
        if matrix.dtype != dtype:
            matrix = matrix.astype(dtype)
        mat = matrix
        def matvec(x):
            return mat @ x
    elif hasattr(A, "matvec"):
        def matvec(x):
            return np.asarray(A.matvec(x)).reshape(-1)
    elif hasattr(A, "__matmul__") and not callable(A):
        def matvec(x):
            return np.asarray(A @ x).reshape(-1)
    else:
        def matvec(x):
            return np.asarray(A(x)).reshape(-1)
    return Operator(matvec, n, dtype, matrix), b


def looks_hermitian(matrix: sp.csr_array | np.ndarray) -> bool:
    """Whether an explicit matrix looks Hermitian to a probe: ``vᴴ(A u) = (A v)ᴴ u``.

    Two products with fixed random ``u, v``, much cheaper than forming ``A − Aᴴ``; a matrix
    that is not Hermitian fails the probe with probability 1. The tolerance, ``100·√eps`` of the
    products' scale, passes the round-off of assembly and of float32 and fails any asymmetry
    large enough to derail CG.
    """
    n = matrix.shape[0]
    rng = np.random.default_rng(20061)
    u, v = rng.standard_normal((2, n)).astype(matrix.dtype, copy=False)
    au, av = matrix @ u, matrix @ v
    scale = np.linalg.norm(au) * np.linalg.norm(v) + np.linalg.norm(av) * np.linalg.norm(u)
    tolerance = 100.0 * math.sqrt(np.finfo(matrix.dtype).eps)
    return bool(abs(np.vdot(v, au) - np.vdot(av, u)) <= tolerance * scale)
