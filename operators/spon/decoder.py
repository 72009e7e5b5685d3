"""Decoder: coefficients of a Lagrange space → the FE function, at any points or on a grid.

The values come from basix tabulations of the element at the reference coordinates of each point
in the cell that holds it (:mod:`pdesuite.discretization.fe_evaluation`). In torch, decoding at
a fixed set of points is one sparse product, differentiable in the coefficients.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pdesuite.discretization import FEFunction, LagrangeSpace
from pdesuite.discretization.fe_evaluation import evaluate_on_grid, evaluation_matrix
from pdesuite.operators.spon.sparse import apply_along_dofs, to_torch_sparse

__all__ = ["Decoder"]

_OUTSIDE = ("raise", "nan")


class Decoder(nn.Module):
    """Coefficients ``[..., ndofs]`` of ``space`` → values of the FE function.

    Args:
        space: the Lagrange space of the coefficients.
        points: ``[n, 2]`` where :meth:`forward` evaluates; None (default) for the NumPy methods
            only.
        outside: what :meth:`forward` does with points outside the mesh: ``"raise"`` (default,
            ValueError naming ``points`` here) or ``"nan"``.
    """

    def __init__(self, space: LagrangeSpace, points: np.ndarray | None = None,
                 outside: str = "raise") -> None:
        super().__init__()
        if not isinstance(space, LagrangeSpace):
            raise TypeError(f"space: expected a LagrangeSpace, got {type(space).__name__}")
        if outside not in _OUTSIDE:
            raise ValueError(f"outside: expected one of {_OUTSIDE}, got {outside!r}")
        self.space = space
        self.n_points = None
        if points is not None:
            matrix, inside = evaluation_matrix(space, points)
            if outside == "raise" and not inside.all():
                first = np.asarray(points, dtype=float)[~inside][0]
                raise ValueError(f"points: {int((~inside).sum())} point(s) lie outside the mesh, "
                                 f"first is {first.tolist()}")
            self.n_points = matrix.shape[0]
            self.register_buffer("operator", to_torch_sparse(matrix), persistent=False)
            self.register_buffer("inside", torch.as_tensor(inside), persistent=False)

    def forward(self, coefficients: torch.Tensor) -> torch.Tensor:
        """``[..., ndofs]`` → ``[..., n_points]`` (NaN outside the mesh with ``outside="nan"``)."""
        if self.n_points is None:
            raise ValueError("coefficients: this Decoder has no points; give points= to decode "
                             "tensors")
        if coefficients.shape[-1] != self.space.ndofs:
            raise ValueError(f"coefficients: expected last axis {self.space.ndofs}, got shape "
                             f"{tuple(coefficients.shape)}")
        values = apply_along_dofs(self.operator.to(coefficients.dtype), coefficients, dim=-1)
        if bool(self.inside.all()):
            return values  # [..., n_points]
        return torch.where(self.inside, values, torch.full_like(values, float("nan")))

    def function(self, coefficients: np.ndarray) -> FEFunction:
        """The :class:`FEFunction` with ``coefficients`` ``[ndofs]`` (callable on points)."""
        return FEFunction(self.space, np.asarray(coefficients, dtype=float))

    def evaluate(self, coefficients: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Values ``[n]`` (or ``[n, k]`` for coefficients ``[ndofs, k]``) at ``points`` ``[n, 2]``,
        NaN outside the mesh."""
        coefficients = np.asarray(coefficients, dtype=float)
        if coefficients.ndim not in (1, 2) or coefficients.shape[0] != self.space.ndofs:
            raise ValueError(f"coefficients: expected shape [{self.space.ndofs}] or "
                             f"[{self.space.ndofs}, k], got {coefficients.shape}")
        matrix, inside = evaluation_matrix(self.space, points)
        values = np.asarray(matrix @ coefficients, dtype=float)
        values[~inside] = np.nan
        return values

    def on_grid(self, coefficients: np.ndarray, resolution: tuple[int, int] = (128, 128),
                bounds=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``x`` ``[nx]``, ``y`` ``[ny]``, values ``[nx, ny]`` (axis 0 = x), NaN outside the domain;
        see :func:`~pdesuite.discretization.fe_evaluation.evaluate_on_grid`."""
        return evaluate_on_grid(self.space, coefficients, resolution, bounds)

    def extra_repr(self) -> str:
        return f"space={self.space!r}, n_points={self.n_points}"
