"""From what a user passes to what the methods use: A, b and x0 as torch blocks on one device.

:func:`make_system` turns ``A`` (a torch tensor, a SciPy sparse matrix, a NumPy array or a
callable), ``b`` (``[n]`` or ``[n, B]``) and ``x0`` into a :class:`System`: a counted operator
``X [n, B] -> A X [n, B]``, the right-hand sides as an ``[n, B]`` block, the initial guess in
the same dtype and on the same device, and whether ``b`` was a vector. Every check raises an
error whose message starts with the name of the argument at fault.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import scipy.sparse as sp

from pdesuite.solvers.linear_operator import as_csr

# torch announces that its CSR support is "beta" on first use; nothing to act on.
_CSR_BETA_WARNING = "Sparse CSR tensor support is in beta"


def to_torch_sparse(A: Any, device: Any = None, dtype: Any = None, name: str = "A"):
    """A torch sparse CSR tensor ``[n, n]`` holding the entries of ``A``.

    Args:
        A: a square SciPy sparse matrix/array or dense NumPy array, or a torch tensor (sparse in
            any layout, or dense).
        device: torch device of the result; default A's device for a tensor, else the CPU.
        dtype: torch dtype of the result; default A's dtype (NumPy dtypes map to torch's;
            integers become float64).
        name: the argument named in errors (``"M"`` for a preconditioner matrix).

    SciPy and NumPy input goes through :func:`pdesuite.solvers.linear_operator.as_csr`, the
    suite's one conversion to canonical CSR (duplicates summed, column indices sorted, as
    torch's CSR kernels assume; entries finite), on a copy, so that the tensor shares no
    memory with A.
    """
    import torch

    if isinstance(A, torch.Tensor):
        out = A
        if out.layout == torch.sparse_coo:
            out = out.coalesce()
        if out.layout != torch.sparse_csr:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_CSR_BETA_WARNING, category=UserWarning)
                out = out.to_sparse_csr()
        return out.to(device=device if device is not None else out.device,
                      dtype=dtype if dtype is not None else out.dtype)
    try:
        csr = as_csr(A, copy=True)
    except (TypeError, ValueError) as error:
        # as_csr speaks of "A"; name the argument at fault.
        message = str(error)
        for prefix in ("A: ", "A "):
            if message.startswith(prefix):
                message = message[len(prefix):]
                break
        raise type(error)(f"{name}: {message}") from error
    values = torch.from_numpy(csr.data)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CSR_BETA_WARNING, category=UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            values,
            size=csr.shape,
            dtype=dtype if dtype is not None else values.dtype,
            device=device if device is not None else "cpu",
            # as_csr's canonical form is a valid CSR by construction.
            check_invariants=False,
        )


def is_sparse_tensor(A) -> bool:
    import torch

    return A.layout != torch.strided


def check_block(out, inp, name: str, what: str) -> None:
    """That a user's map returned a tensor like its input ``[n, B]``; else an error naming
    ``name`` (``"A"`` for a matvec, ``"M"`` for a preconditioner)."""
    import torch

    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name}: {what} must return a torch tensor, got {type(out).__name__}")
    if out.shape != inp.shape:
        raise ValueError(f"{name}: {what} returned shape {tuple(out.shape)} for an input of "
                         f"shape {tuple(inp.shape)}")
    if out.device != inp.device or out.dtype != inp.dtype:
        raise ValueError(f"{name}: {what} returned {out.dtype} on {out.device}, expected "
                         f"{inp.dtype} on {inp.device}")


class CountedOperator:
    """``X [n, B] -> A X [n, B]``; ``matvecs`` counts block products (one per call).

    ``matrix`` is the torch matrix, or None when A is a callable (whose output is checked).
    ``out``: a buffer ``[n, B]`` for the product, so that an iteration allocates nothing (on the
    CPU a fresh block of tens of MB comes straight from mmap and page-faults).

    A matrix is applied with ``torch.addmm(out, A, X, beta=0, out=out)`` (``addmv`` for one
    column), on CPU and CUDA alike: ``torch.mm(csr, X, out=)`` would allocate and zero a block,
    and copy it into ``out``, on every call. A CSR matrix is applied through a copy with int32
    indices (sharing A's values) when they fit: MKL's sparse kernels take int32 indices, and
    torch would otherwise convert the int64 ones on every product.
    """

    def __init__(self, apply: Callable, n: int, matrix=None):
        self._apply = apply
        self.n = n
        self.matrix = matrix
        self._product = _product_matrix(matrix)
        self.matvecs = 0

    @property
    def is_matrix(self) -> bool:
        return self._product is not None

    def product_into(self, X, out) -> Callable:
        """For a matrix A: a callable without arguments that writes ``A X`` into ``out`` (see
        :func:`product_into`). It does not count: the caller adds to ``matvecs``."""
        return product_into(self._product, X, out)

    def __call__(self, X, out=None):
        """``A X``, into ``out`` when A is a matrix."""
        self.matvecs += 1
        if self._product is not None:
            return multiply_into(self._product, X, out)
        Y = self._apply(X)
        check_block(Y, X, "A", "the matvec")
        return Y


def multiply_into(matrix, X, out=None):
    """``matrix @ X`` for an ``[n, B]`` block X, written into ``out`` (allocated if None)."""
    import torch

    if out is None:
        out = torch.empty((matrix.shape[0], X.shape[1]), dtype=X.dtype, device=X.device)
    product_into(matrix, X, out)()
    return out


def product_into(matrix, X, out) -> Callable:
    """A callable without arguments that writes ``matrix @ X`` into ``out`` (``[n, B]``
    blocks), its views made once: an iteration calls it with no per-call overhead."""
    import torch

    if X.shape[1] == 1:
        # One column: the sparse (or dense) matrix-vector kernel, faster than SpMM with B = 1.
        x, y = X.reshape(-1), out.view(-1)
        return lambda: torch.addmv(y, matrix, x, beta=0, out=y)
    return lambda: torch.addmm(out, matrix, X, beta=0, out=out)


def _product_matrix(matrix):
    """The tensor the products use: a CSR ``matrix`` with int32 indices when they fit (sharing
    its values), else ``matrix`` itself; None for a callable A."""
    import torch

    if matrix is None or matrix.layout != torch.sparse_csr:
        return matrix
    crow, col = matrix.crow_indices(), matrix.col_indices()
    if crow.dtype == torch.int32 or max(matrix.shape[0], col.numel()) >= 2**31 - 1:
        return matrix
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CSR_BETA_WARNING, category=UserWarning)
        return torch.sparse_csr_tensor(crow.to(torch.int32), col.to(torch.int32),
                                       matrix.values(), size=matrix.shape,
                                       check_invariants=False)


@dataclass
class System:
    """``A X = B`` as the methods see it."""

    operator: CountedOperator
    #: ``[n, B]`` right-hand sides, contiguous, finite, in the working dtype.
    B: Any
    #: ``[n, B]`` initial guess (a copy), or None for zero.
    X0: Optional[Any]
    #: b was ``[n]``: the result's x and norms drop the column axis again.
    squeeze: bool


def _torch_dtype_of(dtype: np.dtype, name: str):
    """The torch dtype of a NumPy float dtype; None for integers and booleans (they take the
    other operand's dtype, or float64)."""
    import torch

    if dtype.kind == "c":
        raise TypeError(f"{name}: complex systems are not supported by the torch backend; "
                        "use backend='numpy' or 'petsc'")
    if dtype.kind != "f":
        return None
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


def _working_dtype(a_dtype, b_dtype):
    """float32 or float64: the promotion of A's and b's floating dtypes (float64 if neither)."""
    import torch

    for name, d in (("A", a_dtype), ("b", b_dtype)):
        if d is not None and d.is_complex:
            raise TypeError(f"{name}: complex systems are not supported by the torch backend; "
                            "use backend='numpy' or 'petsc'")
    floating = [d for d in (a_dtype, b_dtype) if d is not None and d.is_floating_point]
    if not floating:
        return torch.float64
    dtype = floating[0]
    for d in floating[1:]:
        dtype = torch.promote_types(dtype, d)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"A: dtype {dtype} is not supported by the torch backend; "
                        "use float32 or float64")
    return dtype


def _device(A, b_tensor, device_option):
    """A tensor A decides the device; else a tensor b; else the ``device`` option; else the CPU.
    A ``device`` option that contradicts A or b is an error."""
    import torch

    requested = None
    if device_option is not None:
        try:
            requested = torch.device(device_option)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device: not a torch device: {device_option!r}") from error
    if isinstance(A, torch.Tensor):
        device = A.device
    elif b_tensor is not None:
        device = b_tensor.device
    else:
        device = requested if requested is not None else torch.device("cpu")
    if requested is not None and (requested.type != device.type
                                  or (requested.index is not None and requested != device)):
        raise ValueError(f"device: {device_option!r} differs from the device of A/b ({device})")
    if b_tensor is not None and b_tensor.device != device:
        raise ValueError(f"b: is on {b_tensor.device} but A is on {device}")
    return device


def make_system(A: Any, b: Any, x0: Any, device_option: Any = None) -> System:
    """Check and convert ``A``, ``b``, ``x0`` (see :func:`pdesuite.solvers.torch_backend.solve`).

    The working dtype is the promotion of A's and b's (float32 or float64; integers count as
    float64); the device is A's for a tensor A, else b's for a tensor b, else ``device_option``,
    else the CPU. A matrix becomes CSR (torch's fastest sparse × dense layout) or stays dense.
    """
    import torch

    # b first: its length fixes n for a callable A.
    if isinstance(b, torch.Tensor):
        b_tensor, b_shape = b, tuple(b.shape)
    else:
        b_array = np.asarray(b)
        if b_array.dtype == object or b_array.dtype.kind not in "biufc":
            raise TypeError(f"b: expected numbers, got dtype {b_array.dtype}")
        b_tensor, b_shape = None, b_array.shape
    if len(b_shape) not in (1, 2):
        raise ValueError(f"b: expected shape [n] or [n, B], got {b_shape}")
    if len(b_shape) == 2 and b_shape[1] == 0:
        raise ValueError("b: has no columns")
    n = b_shape[0]
    squeeze = len(b_shape) == 1
    device = _device(A, b_tensor, device_option)

    matrix, a_dtype = None, None
    if isinstance(A, torch.Tensor):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A: expected a square matrix, got shape {tuple(A.shape)}")
        matrix, a_dtype = A, A.dtype
    elif sp.issparse(A) or isinstance(A, np.ndarray):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A: expected a square matrix, got shape {A.shape}")
        a_dtype = _torch_dtype_of(np.dtype(A.dtype), "A") or torch.float64
        matrix = (to_torch_sparse(A, device=device) if sp.issparse(A)
                  else torch.as_tensor(A, device=device))
    elif not callable(A):
        raise TypeError(f"A: expected a torch tensor, a SciPy sparse matrix, a NumPy array or a "
                        f"callable matvec(X [n, B]) -> [n, B], got {type(A).__name__}")

    b_dtype = b_tensor.dtype if b_tensor is not None else _torch_dtype_of(b_array.dtype, "b")
    dtype = _working_dtype(a_dtype, b_dtype)

    if matrix is not None:
        if matrix.shape[0] != n:
            raise ValueError(f"b: has {n} rows but A has shape {tuple(matrix.shape)}")
        if is_sparse_tensor(matrix):
            matrix = to_torch_sparse(matrix)
            values = matrix.values()
        else:
            values = matrix
        if values.numel() and not bool(torch.isfinite(values).all()):
            raise ValueError("A: contains NaN or Inf entries")
        matrix = matrix.to(dtype)
        operator = CountedOperator(matrix.__matmul__, n, matrix)
    else:
        operator = CountedOperator(A, n)

    B = b_tensor if b_tensor is not None else torch.from_numpy(np.ascontiguousarray(b_array))
    B = B.to(device=device, dtype=dtype).reshape(n, -1).contiguous()
    if not bool(torch.isfinite(B).all()):
        raise ValueError("b: contains NaN or Inf entries")
    return System(operator, B, _initial_guess(x0, b_shape, B), squeeze)


def _initial_guess(x0: Any, b_shape: tuple, B):
    """``x0`` as an ``[n, B]`` copy in B's dtype, or None."""
    import torch

    if x0 is None:
        return None
    if isinstance(x0, torch.Tensor):
        if x0.device != B.device:
            raise ValueError(f"x0: is on {x0.device} but A is on {B.device}")
        x0_tensor = x0
    else:
        x0_tensor = torch.from_numpy(np.ascontiguousarray(np.asarray(x0)))
    if tuple(x0_tensor.shape) != b_shape:
        raise ValueError(f"x0: expected shape {b_shape} (that of b), got {tuple(x0_tensor.shape)}")
    if x0_tensor.dtype.is_complex:
        raise TypeError("x0: complex values are not supported by the torch backend")
    X0 = x0_tensor.to(device=B.device, dtype=B.dtype).reshape(B.shape).clone()
    if not bool(torch.isfinite(X0).all()):
        raise ValueError("x0: contains NaN or Inf entries")
    return X0
