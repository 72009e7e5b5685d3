"""The unsupervised loss of the deep conjugate direction method, with sparse products in torch.

For a right-hand side ``b`` and the network's output ``q``, DCDM's loss is the residual left
after the best scaling of ``q``::

    L(q; A, b) = ‖b − α A q‖²,   α = (qᵀb) / (qᵀAq).

It needs no labels (input and target are both ``b``), does not change when ``q`` is rescaled
(``α`` absorbs the scale, which is what the method's line search does), and is zero exactly
when ``q`` is parallel to ``A⁻¹b``. Vectors are blocks of columns ``[n, B]``; ``A`` is a torch
sparse CSR matrix shared by the batch, a block-diagonal one holding one matrix per column
(:func:`block_diagonal`, for a batch drawn from many systems), or a callable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Union

import scipy.sparse as sp
import torch

from pdesuite.solvers.torch_backend.convert import to_torch_sparse

__all__ = ["batched_matvec", "block_diagonal", "dcdm_loss", "energy_error_loss"]

MatrixLike = Union[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]


def block_diagonal(matrices: Sequence[Any], device: Any = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One torch CSR matrix ``[B n, B n]`` with the ``B`` matrices ``[n, n]`` on its diagonal
    (SciPy sparse or dense): column ``j`` of a block ``[n, B]`` is multiplied by ``matrices[j]``
    in :func:`batched_matvec`."""
    sizes = {m.shape for m in matrices}
    if len(sizes) != 1:
        raise ValueError(f"matrices: expected one shape for all, got {sorted(sizes)}")
    return to_torch_sparse(sp.block_diag(list(matrices), format="csr"), device=device, dtype=dtype)


def batched_matvec(A: MatrixLike, Q: torch.Tensor) -> torch.Tensor:
    """``A q_j`` for every column of ``Q`` ``[n, B]``, as ``[n, B]``.

    ``A`` is a tensor ``[n, n]`` (sparse or dense) applied to every column, a tensor
    ``[B n, B n]`` (:func:`block_diagonal`) applying its ``j``-th block to column ``j``, or a
    callable ``[n, B] -> [n, B]``.
    """
    if Q.ndim != 2:
        raise ValueError(f"Q: expected [n, B], got {tuple(Q.shape)}")
    if not isinstance(A, torch.Tensor):
        return A(Q)
    n, batch = Q.shape
    if tuple(A.shape) == (n, n):
        return A @ Q
    if tuple(A.shape) == (n * batch, n * batch):
        return (A @ Q.T.reshape(-1, 1)).reshape(batch, n).T
    raise ValueError(f"A: shape {tuple(A.shape)} fits neither one matrix [{n}, {n}] nor a block "
                     f"diagonal of {batch} of them")


def dcdm_loss(A: MatrixLike, q: torch.Tensor, b: torch.Tensor,
              reduction: str = "mean") -> torch.Tensor:
    """``‖b_j − α_j A q_j‖²`` with ``α_j = q_jᵀb_j / q_jᵀAq_j``, per column of ``[n, B]`` blocks.

    Args:
        A: SPD matrix as :func:`batched_matvec` takes it.
        q: network outputs ``[n, B]`` (the unknowns only; any scale).
        b: right-hand sides ``[n, B]``; the loss is in their units squared (1 at ``q = 0`` for
            normalised ``b``).
        reduction: ``"mean"`` (default) or ``"sum"`` over the columns, or ``"none"`` (``[B]``).

    A column with ``q_jᵀAq_j = 0`` (``q_j = 0``) gets ``α_j = 0``, so a loss of ``‖b_j‖²``.
    """
    if q.shape != b.shape or q.ndim != 2:
        raise ValueError(f"q and b: expected equal shapes [n, B], got {tuple(q.shape)} and "
                         f"{tuple(b.shape)}")
    Aq = batched_matvec(A, q)
    curvature = (q * Aq).sum(dim=0)
    alpha = (q * b).sum(dim=0) / curvature.clamp_min(torch.finfo(q.dtype).tiny)
    values = ((b - alpha * Aq) ** 2).sum(dim=0)
    return _reduce(values, reduction)


def energy_error_loss(A: MatrixLike, q: torch.Tensor, r: torch.Tensor, e: torch.Tensor,
                      reduction: str = "mean") -> torch.Tensor:
    """The supervised counterpart of :func:`dcdm_loss`: the relative A-norm error left after
    the line search along ``q``, for residuals ``r = A e`` with known errors ``e``::

        L = ‖e − α q‖²_A / ‖e‖²_A = 1 − (qᵀr)² / ((qᵀAq)(eᵀr)),   α = qᵀr / qᵀAq,

    per column of ``[n, B]`` blocks (``eᵀr = eᵀAe``). Scale-free in ``q`` and ``e``, in [0, 1]:
    0 when ``q`` is parallel to the error, 1 when it is A-orthogonal to it. It is what one step
    of the method gains, measured in the norm CG minimises.
    """
    if not (q.shape == r.shape == e.shape) or q.ndim != 2:
        raise ValueError(f"q, r and e: expected equal shapes [n, B], got {tuple(q.shape)}, "
                         f"{tuple(r.shape)} and {tuple(e.shape)}")
    tiny = torch.finfo(q.dtype).tiny
    curvature = (q * batched_matvec(A, q)).sum(dim=0).clamp_min(tiny)
    energy = (e * r).sum(dim=0).clamp_min(tiny)
    values = 1.0 - (q * r).sum(dim=0) ** 2 / (curvature * energy)
    return _reduce(values, reduction)


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
