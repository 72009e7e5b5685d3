"""Discretisation of a diagonal continuous-time SSM ``x' = Λ x + B u`` with step ``Δ``.

``x_k = Ā x_{k-1} + B̄ u_k`` with, per diagonal entry ``λ``,

- zero-order hold (ZOH): ``Ā = exp(Δλ)``, ``B̄ = (exp(Δλ) - 1) / λ · B``;
- bilinear (Tustin): ``Ā = (1 + Δλ/2) / (1 - Δλ/2)``, ``B̄ = Δ / (1 - Δλ/2) · B``.

The convolution kernel of the discrete system needs ``Ā^ℓ = exp(ℓ log Ā)``; for ZOH
``log Ā = Δλ`` exactly, which is more accurate than taking the logarithm of ``Ā``.
"""

from __future__ import annotations

import torch

__all__ = ["METHODS", "discretize", "powers"]

METHODS = ("zoh", "bilinear")


def discretize(Lambda: torch.Tensor, dt: torch.Tensor,
               method: str = "zoh") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(Ā, gain, log Ā)`` for complex ``Lambda`` and real positive ``dt`` (broadcastable);
    ``B̄ = gain · B``. All outputs have the broadcast shape of ``Lambda * dt``."""
    dt_lambda = Lambda * dt
    if method == "zoh":
        A_bar = torch.exp(dt_lambda)
        return A_bar, (A_bar - 1) / Lambda, dt_lambda
    if method == "bilinear":
        denominator = 1 - dt_lambda / 2
        A_bar = (1 + dt_lambda / 2) / denominator
        return A_bar, dt / denominator, torch.log(A_bar)
    raise ValueError(f"method: expected one of {METHODS}, got {method!r}")


def powers(log_A_bar: torch.Tensor, length: int) -> torch.Tensor:
    """``Ā^ℓ`` for ``ℓ = 0 .. length-1``: ``[..., length]`` from ``log_A_bar`` ``[...]``."""
    steps = torch.arange(length, device=log_A_bar.device, dtype=log_A_bar.real.dtype)
    return torch.exp(log_A_bar.unsqueeze(-1) * steps)
