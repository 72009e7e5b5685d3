"""S5 (Smith, Warrington & Linderman, 2023): one MIMO diagonal SSM over all channels.

With ``P`` complex states shared by the ``H`` channels,

    x_k = Ā x_{k-1} + B̄ u_k,        y_k = Re(C̃ x_k) + D ⊙ u_k,

``Ā = diag(Λ̄)`` ``[P]``, ``B̄ = gain ⊙ B̃`` ``[P, H]``, ``C̃`` ``[H, P]``. Training runs all states at
once with the parallel scan of :mod:`~pdesuite.dynamics.ssm.scan` (``mode="scan"``, default),
or equivalently as a convolution with the ``[H, H]``-matrix kernel ``K_ℓ = Re(C̃ Ā^ℓ B̄)`` by FFT
(``mode="conv"``, ``O(H²L log L)``); ``step`` advances the recurrence.

Initialisations, both from HiPPO-LegS of size ``P`` and both keeping all ``P`` eigenvalues (the
output takes the real part):

- ``"ptd"`` (default, S5-PTD): ``Λ, V`` from :func:`~pdesuite.dynamics.ssm.hippo.\
perturb_then_diagonalize` of LegS, ``B̃ = V⁻¹B₀``, ``C̃ = C₀V``;
- ``"legs_n"`` (S5's HiPPO-N): the unitary diagonalisation of LegS's normal part,
  ``B̃ = VᴴB₀``, ``C̃ = C₀V``;

with ``B₀`` ``[P, H]`` LeCun normal and ``C₀`` ``[H, P]`` normal with variance ``1/P``.
``Δ`` is log-uniform in ``[1e-3, 1e-1]`` per state; ``Re λ`` is stored as ``log(-Re λ)``, an
initial ``Re λ`` above ``-1e-4`` (PTD can nudge one) is clipped there.
"""

from __future__ import annotations

import torch
from torch import nn

from pdesuite.dynamics.ssm.convolution import fft_causal_conv
from pdesuite.dynamics.ssm.discretize import METHODS, discretize, powers
from pdesuite.dynamics.ssm.hippo import hippo_legs, hippo_nplr, perturb_then_diagonalize
from pdesuite.dynamics.ssm.s4d import log_uniform_dt
from pdesuite.dynamics.ssm.scan import parallel_scan
from pdesuite.dynamics.ssm.shapes import check_positive_int, check_sequence, complex_dtype

__all__ = ["INITS", "MODES", "S5"]

INITS = ("ptd", "legs_n")
MODES = ("scan", "conv")
#: Largest initial real part; the parameterisation needs Re λ < 0.
_MAX_REAL = -1e-4


def _diagonal_init(init: str, P: int, seed: int) -> tuple[torch.Tensor, torch.Tensor,
                                                          torch.Tensor]:
    """``(Lambda [P], V [P, P], V⁻¹ [P, P])``, complex128."""
    if init == "ptd":
        A, _ = hippo_legs(P)
        result = perturb_then_diagonalize(A, seed=seed)
        V = torch.as_tensor(result.V)
        return torch.as_tensor(result.Lambda), V, torch.linalg.inv(V)
    if init == "legs_n":
        nplr = hippo_nplr("legs", P)
        V = torch.as_tensor(nplr.V)
        return torch.as_tensor(nplr.Lambda), V, V.conj().T
    raise ValueError(f"init: expected one of {INITS}, got {init!r}")


class S5(nn.Module):
    """S5 layer on ``[B, L, H]``.

    Args:
        d_model: channels ``H``.
        d_state: complex state size ``P`` (default 64).
        init: "ptd" (default) or "legs_n".
        discretization: "zoh" (default) or "bilinear".
        dt_min, dt_max: range of the log-uniform step ``Δ`` (default 1e-3, 1e-1).
        mode: how ``forward`` runs, "scan" (default) or "conv".
        seed: seed of PTD's random perturbation (the other draws use torch's global generator).
    """

    def __init__(self, d_model: int, d_state: int = 64, init: str = "ptd",
                 discretization: str = "zoh", dt_min: float = 1e-3, dt_max: float = 1e-1,
                 mode: str = "scan", seed: int = 0) -> None:
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")
        self.d_state = check_positive_int(d_state, "d_state")
        if discretization not in METHODS:
            raise ValueError(f"discretization: expected one of {METHODS}, got {discretization!r}")
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        self.discretization, self.mode = discretization, mode
        Lambda, V, V_inv = _diagonal_init(init, d_state, seed)
        B0 = torch.randn(d_state, d_model, dtype=torch.float64) / d_model ** 0.5
        C0 = torch.randn(d_model, d_state, dtype=torch.float64) / d_state ** 0.5
        self.log_dt = nn.Parameter(log_uniform_dt(d_state, dt_min, dt_max).float())
        self.log_neg_real = nn.Parameter(torch.log(-Lambda.real.clamp(max=_MAX_REAL)).float())
        self.imag = nn.Parameter(Lambda.imag.float())
        self.B = nn.Parameter(torch.view_as_real(V_inv @ B0.to(V.dtype)).float())
        self.C = nn.Parameter(torch.view_as_real(C0.to(V.dtype) @ V).float())
        self.D = nn.Parameter(torch.randn(d_model))

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Λ̄ [P], B̄ [P, H], log Λ̄ [P])``, complex."""
        Lambda = torch.complex(-torch.exp(self.log_neg_real), self.imag)   # (P,)
        A_bar, gain, log_A_bar = discretize(Lambda, torch.exp(self.log_dt), self.discretization)
        return A_bar, gain.unsqueeze(-1) * torch.view_as_complex(self.B), log_A_bar

    def kernel(self, length: int) -> torch.Tensor:
        """``K`` ``[H_out, H_in, length]``, real."""
        _, B_bar, log_A_bar = self.discrete()                             # (P,), (P, H)
        C = torch.view_as_complex(self.C)                                  # (H, P)
        vandermonde = powers(log_A_bar, length)                            # (P, L)
        return torch.einsum("gp,pl,ph->ghl", C, vandermonde, B_bar).real  # (H, H, L)

    def forward(self, u: torch.Tensor, return_states: bool = False):
        """``u`` ``[B, L, H]`` -> ``y`` ``[B, L, H]``; with ``return_states`` also the states
        ``x`` ``[B, L, P]`` (complex)."""
        check_sequence(u, self.d_model)
        if self.mode == "conv" and not return_states:
            k = self.kernel(u.shape[1])                                    # (H, H, L)
            mixed = fft_causal_conv(u.transpose(1, 2).unsqueeze(1), k)     # (B, H, H, L)
            return mixed.sum(2).transpose(1, 2) + u * self.D               # (B, L, H)
        A_bar, B_bar, _ = self.discrete()                                  # (P,), (P, H)
        inputs = torch.einsum("ph,blh->blp", B_bar, u.to(B_bar.dtype))     # (B, L, P)
        states = parallel_scan(A_bar, inputs, dim=1)                       # (B, L, P)
        C = torch.view_as_complex(self.C)                                  # (H, P)
        y = torch.einsum("hp,blp->blh", C, states).real + u * self.D       # (B, L, H)
        return (y, states) if return_states else y

    def step(self, u: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One input ``u`` ``[B, H]`` and state ``[B, P]`` -> ``(y [B, H], new state)``."""
        A_bar, B_bar, _ = self.discrete()                                  # (P,), (P, H)
        state = A_bar * state + u.to(B_bar.dtype) @ B_bar.T                # (B, P)
        C = torch.view_as_complex(self.C)                                  # (H, P)
        y = (state @ C.T).real + self.D * u                                # (B, H)
        return y, state

    def default_state(self, batch: int) -> torch.Tensor:
        """Zero state ``[batch, P]``, complex, on the layer's device."""
        return torch.zeros(batch, self.d_state, dtype=complex_dtype(self.C.dtype),
                           device=self.C.device)
