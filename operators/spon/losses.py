"""Losses in the norms of a finite-element space: L² through ``M``, H¹ through ``M + K``.

For coefficient vectors ``e`` of a Lagrange space, ``‖e‖²_{L²} = eᵀ M e`` and
``‖e‖²_{H¹} = eᵀ (M + K) e`` are the norms of the FE functions themselves (exact integrals, not
sums over nodes). Tensors are ``[B, C, ndofs]`` as the Trainer hands them (or ``[B, ndofs]``);
the norm is taken per sample, summed over channels, then reduced over the batch. The losses are
``nn.Module``s with ``loss(pred, target) -> scalar``, the Trainer's loss contract (pass one as
``loss=`` to :class:`~pdesuite.operators.training.Trainer`).

A loss belongs to one space; for another mesh, build another loss.
"""

from __future__ import annotations

import torch
from torch import nn

from pdesuite.discretization import LagrangeSpace, mass_matrix, stiffness_matrix
from pdesuite.operators.spon.sparse import apply_along_dofs, to_torch_sparse

__all__ = ["FEH1Loss", "FEL2Loss", "FENormLoss"]

_REDUCTIONS = ("mean", "sum", "none")


class FENormLoss(nn.Module):
    """Relative or absolute error in the norm ``sqrt(eᵀ G e)`` of a symmetric positive definite
    sparse Gram matrix ``G`` ``[ndofs, ndofs]`` (SciPy).

    Args:
        gram: the Gram matrix.
        relative: divide by the norm of the target. Default True.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (a ``[B]`` tensor).
        eps: floor on the target norm of a relative error. Default ``1e-12``.
    """

    def __init__(self, gram, relative: bool = True, reduction: str = "mean",
                 eps: float = 1e-12) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
        self.relative, self.reduction, self.eps = bool(relative), reduction, float(eps)
        self.register_buffer("gram", to_torch_sparse(gram), persistent=False)
        self.ndofs = int(self.gram.shape[0])

    def norm(self, u: torch.Tensor) -> torch.Tensor:
        """``[B]`` FE norms of ``u`` ``[B, C, ndofs]`` or ``[B, ndofs]``, summed over channels."""
        if u.ndim not in (2, 3) or u.shape[-1] != self.ndofs:
            raise ValueError(f"pred: expected [B, C, {self.ndofs}] or [B, {self.ndofs}], got "
                             f"{tuple(u.shape)}")
        u = u if u.dtype in (torch.float32, torch.float64) else u.float()
        gram = self.gram.to(u.device, u.dtype)
        weighted = apply_along_dofs(gram, u, dim=-1)  # [B, (C,) ndofs]
        squared = (u * weighted).reshape(u.shape[0], -1).sum(dim=1)  # [B]
        # Round-off can leave a tiny negative for u ≈ 0; a zero error has a zero subgradient.
        return torch.sqrt(squared.clamp_min(0.0) + torch.finfo(u.dtype).tiny)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError(f"pred and target: expected torch tensors, got {type(pred).__name__} "
                            f"and {type(target).__name__}")
        if pred.shape != target.shape:
            raise ValueError(f"pred and target: shapes differ, {tuple(pred.shape)} vs "
                             f"{tuple(target.shape)}")
        error = self.norm(pred - target)
        if self.relative:
            error = error / self.norm(target).clamp_min(self.eps)
        if self.reduction == "mean":
            return error.mean()
        return error.sum() if self.reduction == "sum" else error

    def extra_repr(self) -> str:
        return f"ndofs={self.ndofs}, relative={self.relative}, reduction={self.reduction!r}"


class FEL2Loss(FENormLoss):
    """Relative (default) or absolute L² error of FE functions on ``space``, through ``M``."""

    def __init__(self, space: LagrangeSpace, relative: bool = True, reduction: str = "mean",
                 eps: float = 1e-12) -> None:
        super().__init__(mass_matrix(_check(space)), relative, reduction, eps)


class FEH1Loss(FENormLoss):
    """Relative (default) or absolute H¹ error of FE functions on ``space``, through ``M + K``."""

    def __init__(self, space: LagrangeSpace, relative: bool = True, reduction: str = "mean",
                 eps: float = 1e-12) -> None:
        space = _check(space)
        super().__init__(mass_matrix(space) + stiffness_matrix(space), relative, reduction, eps)


def _check(space) -> LagrangeSpace:
    if not isinstance(space, LagrangeSpace):
        raise TypeError(f"space: expected a LagrangeSpace, got {type(space).__name__}")
    return space
