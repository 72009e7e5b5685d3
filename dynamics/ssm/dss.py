"""DSS (Gupta, Gu & Berant, 2022), the softmax-normalised diagonal state space.

The kernel of DSS-softmax over a normalisation length ``L_n`` is, per channel,

    K_ℓ = 2·Re Σ_n W_n (e^{Δλ_n} - 1)/λ_n · e^{ℓΔλ_n} / Z_n,   Z_n = Σ_{j=0}^{L_n - 1} e^{jΔλ_n},

i.e. each row ``ℓ -> e^{ℓΔλ_n}`` of the Vandermonde matrix goes through a (complex) softmax
over ``ℓ < L_n``; ``Z_n = (e^{L_nΔλ_n} - 1)/(e^{Δλ_n} - 1)`` in closed form. Since ``Z_n`` does
not depend on ``ℓ``, this is the discrete diagonal SSM

    x_k = e^{Δλ} x_{k-1} + (e^{Δλ} - 1)/(λ Z) u_k,        y_k = 2·Re(Σ_n W_n x_{k,n}) + D u_k,

which is what ``step`` runs. The normaliser depends on ``L_n``, so the layer fixes it at
construction (``seq_len``); the kernel of any other length uses the same ``Z`` and stays the
same system as the recurrence.

``λ`` (``N/2`` complex modes shared by all channels, as in DSS) starts at the eigenvalues with
positive imaginary part of HiPPO-LegS's skew part, minus 1/2; ``Re λ`` is kept negative (the
paper lets it float; a negative real part keeps long rollouts bounded). ``W`` ``[H, N/2]`` is
complex standard normal and ``Δ`` per channel log-uniform in ``[1e-3, 1e-1]``.
"""

from __future__ import annotations

import torch
from torch import nn

from pdesuite.dynamics.ssm.diagonal import DiagonalSSM
from pdesuite.dynamics.ssm.s4d import log_uniform_dt, s4d_init
from pdesuite.dynamics.ssm.shapes import check_positive_int

__all__ = ["DSS"]


class DSS(DiagonalSSM):
    """DSS-softmax layer on ``[B, L, H]``.

    Args:
        d_model: channels ``H``.
        seq_len: the softmax normalisation length ``L_n`` (usually the training length).
        d_state: real state size ``N`` (even; ``N/2`` complex modes). Default 64.
        dt_min, dt_max: range of the log-uniform step ``Δ`` (default 1e-3, 1e-1).
    """

    def __init__(self, d_model: int, seq_len: int, d_state: int = 64, dt_min: float = 1e-3,
                 dt_max: float = 1e-1) -> None:
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")
        self.seq_len = check_positive_int(seq_len, "seq_len")
        Lambda, _ = s4d_init("legs", d_state)                              # (N/2,)
        Lambda = torch.as_tensor(Lambda)
        self.d_state = d_state
        self.log_dt = nn.Parameter(log_uniform_dt(d_model, dt_min, dt_max).float())
        self.log_neg_real = nn.Parameter(torch.log(-Lambda.real).float())
        self.imag = nn.Parameter(Lambda.imag.float())
        self.W = nn.Parameter(torch.randn(d_model, d_state // 2, 2) * 0.5 ** 0.5)
        self.D = nn.Parameter(torch.randn(d_model))

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Ā, B̄, log Ā)``, each ``[H, N/2]`` complex; ``B̄`` includes ``1/Z``."""
        Lambda = torch.complex(-torch.exp(self.log_neg_real), self.imag)   # (N/2,)
        dt_lambda = torch.exp(self.log_dt).unsqueeze(-1) * Lambda          # (H, N/2)
        A_bar = torch.exp(dt_lambda)                                       # (H, N/2)
        normaliser = (torch.exp(self.seq_len * dt_lambda) - 1) / (A_bar - 1)  # (H, N/2)
        return A_bar, (A_bar - 1) / (Lambda * normaliser), dt_lambda

    def output_weights(self) -> torch.Tensor:
        """``W`` ``[H, N/2]`` complex."""
        return torch.view_as_complex(self.W)
