"""S4D (Gu, Gupta, Goel & Ré, 2022): one diagonal SSM per channel, real input and output.

Per channel ``h`` and complex mode ``n`` (``N/2`` modes stand for ``N`` real states through
conjugate symmetry, hence the factor 2 and the real part):

    x_k = Ā x_{k-1} + B̄ u_k,        y_k = 2·Re(Σ_n C_n x_{k,n}) + D u_k,

so ``y = K ∗ u + D u`` with the kernel ``K_ℓ = 2·Re Σ_n C_n B̄_n Ā_n^ℓ``; with ZOH that is
``2·Re Σ_n C_n B_n (e^{Δλ_n} - 1)/λ_n · e^{ℓΔλ_n}``.

Initialisations of ``λ_n`` (``n = 0 .. N/2-1``), ``B = 1`` unless said:

- ``"lin"``  (S4D-Lin): ``λ_n = -1/2 + iπn``;
- ``"inv"``  (S4D-Inv): ``λ_n = -1/2 + i(N/π)(N/(2n+1) - 1)``;
- ``"legs"`` (S4D-LegS): the eigenvalues of HiPPO-LegS's normal part with positive imaginary
  part, and ``B = Vᴴ B_LegS`` in that eigenbasis.

``Δ`` is log-uniform in ``[dt_min, dt_max] = [1e-3, 1e-1]`` per channel. ``Re λ`` is kept
negative by storing ``log(-Re λ)``. ``C`` is complex standard normal; ``B`` is fixed.

Modes: ``forward`` convolves with the kernel by FFT (training); ``step`` advances the recurrence
one input (inference); ``forward(u, return_states=True)`` also returns every state ``x_k``, whose
last one is the state ``step`` continues from.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pdesuite.dynamics.ssm.diagonal import DiagonalSSM
from pdesuite.dynamics.ssm.discretize import METHODS, discretize
from pdesuite.dynamics.ssm.hippo import hippo_nplr
from pdesuite.dynamics.ssm.shapes import check_positive_int

__all__ = ["INITS", "S4D", "log_uniform_dt", "s4d_init"]

INITS = ("lin", "inv", "legs")


def s4d_init(init: str, N: int) -> tuple[np.ndarray, np.ndarray]:
    """``(Lambda, B)``, both complex ``[N // 2]``, for the S4D initialisation ``init``."""
    if isinstance(N, bool) or not isinstance(N, int) or N < 2 or N % 2:
        raise ValueError(f"d_state: expected an even int >= 2, got {N!r}")
    n = np.arange(N // 2)
    if init == "lin":
        return -0.5 + 1j * np.pi * n, np.ones(N // 2, dtype=np.complex128)
    if init == "inv":
        return -0.5 + 1j * (N / np.pi) * (N / (2 * n + 1) - 1), np.ones(N // 2, np.complex128)
    if init == "legs":
        # eigenvalues come in conjugate pairs, sorted by imaginary part, descending
        nplr = hippo_nplr("legs", N)
        return nplr.Lambda[:N // 2], (nplr.V.conj().T @ nplr.B)[:N // 2]
    raise ValueError(f"init: expected one of {INITS}, got {init!r}")


def log_uniform_dt(count: int, dt_min: float, dt_max: float) -> torch.Tensor:
    """``log Δ`` ``[count]`` with ``Δ`` log-uniform in ``[dt_min, dt_max]``."""
    if not 0 < dt_min <= dt_max:
        raise ValueError(f"dt_min, dt_max: expected 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
    return math.log(dt_min) + torch.rand(count) * (math.log(dt_max) - math.log(dt_min))


class S4D(DiagonalSSM):
    """S4D layer on ``[B, L, H]``.

    Args:
        d_model: channels ``H``.
        d_state: real state size ``N`` per channel (even; ``N/2`` complex modes). Default 64.
        init: "lin" (default), "inv" or "legs".
        discretization: "zoh" (default) or "bilinear".
        dt_min, dt_max: range of the log-uniform step ``Δ`` (default 1e-3, 1e-1).
    """

    def __init__(self, d_model: int, d_state: int = 64, init: str = "lin",
                 discretization: str = "zoh", dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        if discretization not in METHODS:
            raise ValueError(f"discretization: expected one of {METHODS}, got {discretization!r}")
        check_positive_int(d_model, "d_model")
        Lambda, B = s4d_init(init, d_state)
        Lambda = torch.as_tensor(Lambda).expand(d_model, -1)                # (H, N/2)
        self.d_model, self.d_state, self.discretization = d_model, d_state, discretization
        self.log_dt = nn.Parameter(log_uniform_dt(d_model, dt_min, dt_max).float())
        self.log_neg_real = nn.Parameter(torch.log(-Lambda.real).float().clone())
        self.imag = nn.Parameter(Lambda.imag.float().clone())
        self.register_buffer("B", torch.view_as_real(torch.as_tensor(B)).float())
        self.C = nn.Parameter(torch.randn(d_model, d_state // 2, 2) * 0.5 ** 0.5)
        self.D = nn.Parameter(torch.randn(d_model))

    def eigenvalues(self) -> torch.Tensor:
        """Continuous-time ``λ`` ``[H, N/2]``, complex."""
        return torch.complex(-torch.exp(self.log_neg_real), self.imag)

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Ā, B̄, log Ā)``, each ``[H, N/2]`` complex."""
        dt = torch.exp(self.log_dt).unsqueeze(-1)                          # (H, 1)
        A_bar, gain, log_A_bar = discretize(self.eigenvalues(), dt, self.discretization)
        return A_bar, gain * torch.view_as_complex(self.B), log_A_bar

    def output_weights(self) -> torch.Tensor:
        """``C`` ``[H, N/2]`` complex."""
        return torch.view_as_complex(self.C)

