"""What S4D and DSS share: a diagonal SSM per channel, run as a convolution or a recurrence.

Per channel ``h`` and complex mode ``n`` (``N/2`` modes stand for ``N`` real states through
conjugate symmetry, hence the factor 2 and the real part):

    x_k = Ā x_{k-1} + B̄ u_k,        y_k = 2·Re(Σ_n C_n x_{k,n}) + D u_k,

so ``y = K ∗ u + D u`` with ``K_ℓ = 2·Re Σ_n C_n B̄_n Ā_n^ℓ``. A subclass says how ``Ā``, ``B̄``
and ``C`` come from its parameters (:meth:`DiagonalSSM.discrete`,
:meth:`DiagonalSSM.output_weights`); the three modes of running it are here, once.
"""

from __future__ import annotations

import torch
from torch import nn

from pdesuite.dynamics.ssm.convolution import fft_causal_conv
from pdesuite.dynamics.ssm.discretize import powers
from pdesuite.dynamics.ssm.scan import parallel_scan
from pdesuite.dynamics.ssm.shapes import check_sequence, complex_dtype

__all__ = ["DiagonalSSM"]


class DiagonalSSM(nn.Module):
    """Base of the diagonal layers on ``[B, L, H]``; subclasses set ``d_model`` (``H``),
    ``d_state`` (``N``) and the parameter ``D`` ``[H]``."""

    d_model: int
    d_state: int
    D: nn.Parameter

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Ā, B̄, log Ā)``, each ``[H, N/2]`` complex."""
        raise NotImplementedError

    def output_weights(self) -> torch.Tensor:
        """``C`` ``[H, N/2]`` complex."""
        raise NotImplementedError

    def kernel(self, length: int) -> torch.Tensor:
        """``K`` ``[H, length]``, real."""
        _, B_bar, log_A_bar = self.discrete()                             # (H, N/2)
        vandermonde = powers(log_A_bar, length)                            # (H, N/2, L)
        C = self.output_weights()                                          # (H, N/2)
        return 2 * torch.einsum("hn,hnl->hl", C * B_bar, vandermonde).real  # (H, L)

    def forward(self, u: torch.Tensor, return_states: bool = False):
        """``u`` ``[B, L, H]`` -> ``y`` ``[B, L, H]``; with ``return_states`` also the states
        ``x`` ``[B, L, H, N/2]`` (complex), computed by a parallel scan."""
        check_sequence(u, self.d_model)
        k = self.kernel(u.shape[1])                                        # (H, L)
        y = fft_causal_conv(u.transpose(1, 2), k).transpose(1, 2)          # (B, L, H)
        y = y + u * self.D                                                 # (B, L, H)
        if not return_states:
            return y
        A_bar, B_bar, _ = self.discrete()                                  # (H, N/2)
        inputs = u.unsqueeze(-1) * B_bar                                   # (B, L, H, N/2)
        return y, parallel_scan(A_bar.expand_as(inputs), inputs, dim=1)    # (B, L, H, N/2)

    def step(self, u: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One input ``u`` ``[B, H]`` and state ``[B, H, N/2]`` -> ``(y [B, H], new state)``."""
        A_bar, B_bar, _ = self.discrete()                                  # (H, N/2)
        state = A_bar * state + B_bar * u.unsqueeze(-1)                    # (B, H, N/2)
        C = self.output_weights()                                          # (H, N/2)
        y = 2 * torch.einsum("hn,bhn->bh", C, state).real + self.D * u    # (B, H)
        return y, state

    def default_state(self, batch: int) -> torch.Tensor:
        """Zero state ``[batch, H, N/2]``, complex, on the layer's device."""
        return torch.zeros(batch, self.d_model, self.d_state // 2,
                           dtype=complex_dtype(self.D.dtype), device=self.D.device)
