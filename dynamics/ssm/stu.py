"""STU, the spectral transform unit (Agarwal, Suo, Chen & Hazan, 2023).

No learned dynamics: the input is projected on fixed filters, the top ``K`` eigenvectors
``φ_k`` of the ``L x L`` Hankel matrix ``Z_ij = 2 / ((i+j)³ - (i+j))`` (``i, j = 1 .. L``),
each scaled by its eigenvalue to the power ``1/4``. With ``φ_k(ℓ)`` the ``(ℓ+1)``-th entry,

    U⁺_{t,k} = Σ_{ℓ=0}^{L-1} φ_k(ℓ) u_{t-ℓ},      U⁻_{t,k} = Σ_ℓ (-1)^ℓ φ_k(ℓ) u_{t-ℓ},
    y_t = Σ_k (M⁺_k U⁺_{t,k} + M⁻_k U⁻_{t,k}) + Σ_{i=0}^{p-1} M^u_i u_{t-i},

with learned ``[H, H]`` matrices; the ``U⁻`` branch covers dynamics with negative eigenvalues
and the last sum is the small autoregressive term on the input (order ``p = 3``). The paper's
autoregressive term on past outputs is left out: it would make training sequential.

``forward`` computes the ``U`` by FFT convolution; ``return_states=True`` also returns them
(the spectral state, ``[B, L, 2K, H]``, ``U⁺`` then ``U⁻``). ``step`` keeps the last ``L`` inputs
(``O(L·H)`` memory, ``O(L·K·H)`` work per step), so it equals ``forward`` on sequences of up
to ``L`` steps and is the ``L``-truncated convolution beyond.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pdesuite.dynamics.ssm.convolution import fft_causal_conv
from pdesuite.dynamics.ssm.shapes import check_positive_int, check_sequence

__all__ = ["STU", "hankel_matrix", "spectral_filters"]


def hankel_matrix(length: int) -> np.ndarray:
    """``Z`` ``[length, length]`` with ``Z_ij = 2 / ((i+j)³ - (i+j))`` for 1-based ``i, j``."""
    check_positive_int(length, "seq_len")
    index = np.arange(1, length + 1, dtype=np.float64)
    s = index[:, None] + index[None, :]
    return 2.0 / (s ** 3 - s)


def spectral_filters(length: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(sigma [count], phi [length, count])``: the ``count`` largest eigenvalues of
    :func:`hankel_matrix` (descending) and their unit eigenvectors, as columns."""
    check_positive_int(count, "num_filters")
    if count > length:
        raise ValueError(f"num_filters: expected at most seq_len = {length}, got {count}")
    sigma, phi = np.linalg.eigh(hankel_matrix(length))
    return sigma[::-1][:count].copy(), phi[:, ::-1][:, :count].copy()


class STU(nn.Module):
    """STU layer on ``[B, L, H]``.

    Args:
        d_model: channels ``H``.
        seq_len: filter length ``L`` (the longest context).
        num_filters: ``K`` (default 24, at most ``seq_len``).
        ar_order: order ``p`` of the input autoregressive term (default 3; 0 drops it).
        negative: whether to use the ``(-1)^ℓ φ_k`` branch (default True).
    """

    def __init__(self, d_model: int, seq_len: int, num_filters: int = 24, ar_order: int = 3,
                 negative: bool = True) -> None:
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")
        self.seq_len = check_positive_int(seq_len, "seq_len")
        if isinstance(ar_order, bool) or not isinstance(ar_order, int) or ar_order < 0:
            raise ValueError(f"ar_order: expected a non-negative int, got {ar_order!r}")
        self.ar_order, self.negative = ar_order, bool(negative)
        sigma, phi = spectral_filters(seq_len, min(num_filters, seq_len))
        # eigenvalues below round-off can come out slightly negative; their filters are noise
        # of size ~1e-16 anyway, and clipping keeps the fourth root real
        filters = phi * np.clip(sigma, 0.0, None) ** 0.25                 # (L, K)
        if self.negative:
            alternating = (-1.0) ** np.arange(seq_len)[:, None]
            filters = np.concatenate([filters, alternating * filters], axis=1)  # (L, 2K)
        self.register_buffer("filters", torch.as_tensor(filters.T.copy()).float())  # (2K, L)
        scale = 1.0 / (d_model * self.filters.shape[0]) ** 0.5
        self.M = nn.Parameter(scale * torch.randn(self.filters.shape[0], d_model, d_model))
        self.M_ar = nn.Parameter(torch.randn(ar_order, d_model, d_model) / (d_model * 4) ** 0.5)

    def spectral_states(self, u: torch.Tensor) -> torch.Tensor:
        """``U`` ``[B, L, F, H]`` of ``u`` ``[B, L, H]`` (``F = 2K`` or ``K`` filters)."""
        u_lines = u.transpose(1, 2).unsqueeze(1)                           # (B, 1, H, L)
        U = fft_causal_conv(u_lines, self.filters.unsqueeze(1))            # (B, F, H, L)
        return U.permute(0, 3, 1, 2)                                       # (B, L, F, H)

    def forward(self, u: torch.Tensor, return_states: bool = False):
        """``u`` ``[B, L, H]`` -> ``y`` ``[B, L, H]``; with ``return_states`` also ``U``
        ``[B, L, F, H]``."""
        check_sequence(u, self.d_model)
        U = self.spectral_states(u)                                        # (B, L, F, H)
        y = torch.einsum("blfh,fgh->blg", U, self.M)                      # (B, L, H)
        for lag in range(min(self.ar_order, self.seq_len, u.shape[1])):
            lagged = nn.functional.pad(u, (0, 0, lag, 0))[:, :u.shape[1]]  # (B, L, H)
            y = y + lagged @ self.M_ar[lag].T                              # (B, L, H)
        return (y, U) if return_states else y

    def step(self, u: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One input ``u`` ``[B, H]`` and the last ``L`` inputs ``state`` ``[B, L, H]`` (oldest
        first) -> ``(y [B, H], new state)``."""
        state = torch.cat([state[:, 1:], u.unsqueeze(1)], dim=1)           # (B, L, H)
        U = torch.einsum("fl,blh->bfh", self.filters.flip(-1), state)      # (B, F, H)
        y = torch.einsum("bfh,fgh->bg", U, self.M)                        # (B, H)
        for lag in range(min(self.ar_order, self.seq_len)):
            y = y + state[:, -1 - lag] @ self.M_ar[lag].T                  # (B, H)
        return y, state

    def default_state(self, batch: int) -> torch.Tensor:
        """Zero history ``[batch, L, H]`` on the layer's device."""
        return torch.zeros(batch, self.seq_len, self.d_model, dtype=self.M.dtype,
                           device=self.M.device)
