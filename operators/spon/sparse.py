"""SciPy sparse matrices as torch sparse COO tensors, and their product with DoF-major data.

COO rather than CSR: torch differentiates ``sparse @ dense`` for both, but CSR support is
still marked beta and warns on construction. The tensors are coalesced, so the product is
deterministic on CPU.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["apply_along_dofs", "to_torch_sparse"]


def to_torch_sparse(matrix, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """A coalesced torch COO tensor ``[m, n]`` with the entries of the SciPy matrix ``matrix``."""
    if not sp.issparse(matrix):
        raise TypeError(f"matrix: expected a SciPy sparse matrix, got {type(matrix).__name__}")
    coo = sp.coo_array(matrix)
    indices = torch.as_tensor(np.stack([coo.row, coo.col]).astype(np.int64))
    values = torch.as_tensor(np.asarray(coo.data, dtype=np.float64))
    tensor = torch.sparse_coo_tensor(indices, values, size=coo.shape, check_invariants=True)
    return tensor.coalesce().to(dtype=dtype, device=device)


def apply_along_dofs(matrix: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    """``matrix`` ``[m, n]`` applied along axis ``dim`` of ``x`` (length ``n``), which becomes
    ``m`` long; every other axis is a batch of columns."""
    moved = x.movedim(dim, 0)  # [n, *rest]
    rest = moved.shape[1:]
    product = torch.sparse.mm(matrix, moved.reshape(moved.shape[0], -1))  # [m, prod(rest)]
    return product.reshape((matrix.shape[0],) + tuple(rest)).movedim(0, dim)
