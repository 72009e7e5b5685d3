"""Causal convolution along the last axis: ``y_t = Σ_{ℓ=0}^{t} k_ℓ u_{t-ℓ}``.

``fft_causal_conv`` is the training path (``O(L log L)``); ``direct_causal_conv`` is the plain
sum (``O(L·L_k)``), kept as the independent reference the tests compare against.
"""

from __future__ import annotations

import torch

__all__ = ["direct_causal_conv", "fft_causal_conv"]


def _check(u: torch.Tensor, kernel: torch.Tensor) -> None:
    if u.shape[-1] == 0 or kernel.shape[-1] == 0:
        raise ValueError(f"u, kernel: expected non-empty last axes, got {tuple(u.shape)} and "
                         f"{tuple(kernel.shape)}")


def fft_causal_conv(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Real ``u`` ``[..., L]`` and ``kernel`` ``[..., L_k]`` (broadcastable leading axes) ->
    ``[..., L]``. Zero-padding to ``L + L_k`` makes the circular convolution a linear one."""
    _check(u, kernel)
    length = u.shape[-1]
    n = length + kernel.shape[-1]
    spectrum = torch.fft.rfft(u, n=n) * torch.fft.rfft(kernel, n=n)
    return torch.fft.irfft(spectrum, n=n)[..., :length]


def direct_causal_conv(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The same convolution as :func:`fft_causal_conv`, summed term by term."""
    _check(u, kernel)
    length = u.shape[-1]
    shape = torch.broadcast_shapes(u.shape[:-1], kernel.shape[:-1]) + (length,)
    y = torch.zeros(shape, dtype=torch.result_type(u, kernel), device=u.device)
    for lag in range(min(length, kernel.shape[-1])):
        y[..., lag:] = y[..., lag:] + kernel[..., lag:lag + 1] * u[..., :length - lag]
    return y
