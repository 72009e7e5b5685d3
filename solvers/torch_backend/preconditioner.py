"""``M`` as the methods use it: a counted map ``R [n, B] -> Z [n, B]`` approximating ``A⁻¹ R``.

:func:`make_preconditioner` accepts ``None``, the name ``"jacobi"``, an object with
``apply(R)`` on ``[n, B]`` tensors (a trained network wrapped as a preconditioner, say), a
NumPy preconditioner of :mod:`pdesuite.solvers.preconditioner` (applied column by column on the
host, unless it sets ``accepts_torch = True``), a torch/SciPy/NumPy matrix, or a callable. The
output of a user's map is checked on every application: a wrong shape, dtype or device is an
error starting with ``M``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import scipy.sparse as sp

from pdesuite.solvers.preconditioner import BasePreconditioner
from pdesuite.solvers.torch_backend.convert import (
    CountedOperator,
    check_block,
    is_sparse_tensor,
    to_torch_sparse,
)

#: Preconditioners the torch backend builds from A's entries by name.
NAMED_PRECONDITIONERS = ("jacobi",)


class CountedPreconditioner:
    """``R [n, B] -> Z [n, B]``; ``applies`` counts block applications.

    ``linear`` is False for a map marked ``linear = False`` (a network): only the flexible
    methods are correct with it. ``checked``: check every output (a user's map).
    """

    def __init__(self, apply: Callable, linear: bool, checked: bool):
        self._apply = apply
        self.linear = linear
        self._checked = checked
        self.applies = 0

    def __call__(self, R):
        self.applies += 1
        Z = self._apply(R)
        if self._checked:
            check_block(Z, R, "M", "the preconditioner")
        return Z


def make_preconditioner(M: Any, operator: CountedOperator, B,
                        options: dict[str, Any]) -> Optional[CountedPreconditioner]:
    """Turn ``M`` into a counted ``[n, B] -> [n, B]`` map, or None for no preconditioner.

    ``options``: the ``pc_`` options of the solve, prefix removed. No preconditioner of the
    torch backend takes any, so any is an error that names it, as in the NumPy backend.
    """
    import torch

    if options:
        names = sorted("pc_" + name for name in options)
        if M is None:
            raise TypeError(f"M: options {names} configure a preconditioner given by name, "
                            "but M is None")
        if isinstance(M, str):
            raise TypeError(f"M: options {names} are not taken by the torch backend's {M!r}")
        raise TypeError(f"M: options {names} are only for preconditioners given by name")
    if M is None:
        return None
    if isinstance(M, str):
        return _named(M, operator)

    linear = bool(getattr(M, "linear", True))
    if isinstance(M, BasePreconditioner) and not getattr(M, "accepts_torch", False):
        return CountedPreconditioner(_on_the_host(M, operator.n), linear, checked=True)
    if hasattr(M, "apply"):
        return CountedPreconditioner(M.apply, linear, checked=True)
    if isinstance(M, torch.Tensor) or sp.issparse(M) or isinstance(M, np.ndarray):
        n = operator.n
        if tuple(M.shape) != (n, n):
            raise ValueError(f"M: has shape {tuple(M.shape)}, A has shape {(n, n)}")
        if sp.issparse(M) or (isinstance(M, torch.Tensor) and is_sparse_tensor(M)):
            matrix = to_torch_sparse(M, device=B.device, dtype=B.dtype, name="M")
        else:
            matrix = torch.as_tensor(M).to(device=B.device, dtype=B.dtype)
        return CountedPreconditioner(matrix.__matmul__, linear=True, checked=False)
    if callable(M):
        return CountedPreconditioner(M, linear, checked=True)
    raise TypeError(f"M: expected None, 'jacobi', a callable on [n, B] tensors, an object with "
                    f"apply, or a matrix, got {type(M).__name__}")


def _named(name: str, operator: CountedOperator) -> CountedPreconditioner:
    """A preconditioner built from A's entries (only ``"jacobi"``: ``Z = R / diag(A)``)."""
    import torch

    if name.lower() not in NAMED_PRECONDITIONERS:
        raise ValueError(
            f"M: the torch backend builds only {list(NAMED_PRECONDITIONERS)} by name, not "
            f"{name!r}; pass a Preconditioner object (NumPy ones run through the host) or a "
            "callable on [n, B] tensors"
        )
    A = operator.matrix
    if A is None:
        raise TypeError(f"M={name!r} needs the entries of A, but A was given as a matvec only; "
                        "pass a sparse or dense tensor")
    diagonal = _sparse_diagonal(A) if is_sparse_tensor(A) else torch.diagonal(A)
    if bool((diagonal == 0).any()):
        raise ValueError(f"M={name!r}: A has a zero on its diagonal")
    inverse = (1.0 / diagonal)[:, None]
    return CountedPreconditioner(inverse.mul, linear=True, checked=False)


def _sparse_diagonal(A):
    """The diagonal ``[n]`` of a square torch CSR tensor (absent entries are zero)."""
    import torch

    n = A.shape[0]
    rows = torch.repeat_interleave(torch.arange(n, device=A.device), torch.diff(A.crow_indices()))
    on_diagonal = rows == A.col_indices()
    diagonal = torch.zeros(n, dtype=A.dtype, device=A.device)
    return diagonal.index_add_(0, rows[on_diagonal], A.values()[on_diagonal])


def _on_the_host(M: BasePreconditioner, n: int) -> Callable:
    """A NumPy preconditioner (ILU, SSOR, ...) on ``[n, B]`` tensors: correct, but each
    application copies the block to the host and back and runs column by column."""
    import torch

    def apply(R):
        R_host = R.detach().cpu().numpy()
        columns = []
        for j in range(R_host.shape[1]):
            z = np.asarray(M.apply(R_host[:, j]))
            if z.size != n:
                raise ValueError(f"M: the preconditioner returned shape {z.shape} for a "
                                 f"residual of shape ({n},); it must return a vector of the "
                                 "same size")
            columns.append(z.reshape(-1))
        return torch.from_numpy(np.stack(columns, axis=1)).to(device=R.device, dtype=R.dtype)

    return apply
