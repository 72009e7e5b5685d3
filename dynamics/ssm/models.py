"""A deep SSM sequence model: stacked SSM blocks between a linear encoder and decoder.

One block (the S4 repository's layout), on ``[B, L, H]``:

    z = LayerNorm(x)            (before the layer, ``prenorm=True``; else after the residual;
                                 ``norm="none"`` drops it)
    z = Dropout(GELU(SSM(z)))
    z = Dropout(GLU(Linear(H, 2H)(z)))
    x = x + z

Every operation other than the SSM acts on one time step, so ``step`` runs the same block one
input at a time and equals ``forward`` (in eval mode, where dropout is the identity).

The SSM is chosen by name from :data:`LAYERS`: "s4d", "dss", "s5", "stu"; ``layer_options``
go to its constructor (DSS and STU need ``seq_len``).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from pdesuite.dynamics.ssm.dss import DSS
from pdesuite.dynamics.ssm.s4d import S4D
from pdesuite.dynamics.ssm.s5 import S5
from pdesuite.dynamics.ssm.shapes import check_positive_int, check_sequence
from pdesuite.dynamics.ssm.stu import STU

__all__ = ["LAYERS", "NORMS", "SSMBlock", "SequenceModel", "make_layer"]

LAYERS = {"s4d": S4D, "dss": DSS, "s5": S5, "stu": STU}
NORMS = ("layer", "none")


def _norm(kind: str, d_model: int) -> nn.Module:
    if kind not in NORMS:
        raise ValueError(f"norm: expected one of {NORMS}, got {kind!r}")
    return nn.LayerNorm(d_model) if kind == "layer" else nn.Identity()


def make_layer(name: str, d_model: int, **options: Any) -> nn.Module:
    """The SSM layer ``name`` on ``d_model`` channels, built with ``options``."""
    if name not in LAYERS:
        raise ValueError(f"layer: expected one of {sorted(LAYERS)}, got {name!r}")
    return LAYERS[name](d_model, **options)


class SSMBlock(nn.Module):
    """One residual SSM block on ``[B, L, H]`` (see the module docstring)."""

    def __init__(self, d_model: int, layer: str = "s4d",
                 layer_options: Mapping[str, Any] | None = None, dropout: float = 0.0,
                 prenorm: bool = True, norm: str = "layer") -> None:
        super().__init__()
        self.ssm = make_layer(layer, d_model, **dict(layer_options or {}))
        self.norm = _norm(norm, d_model)
        self.mix = nn.Linear(d_model, 2 * d_model)
        self.dropout = nn.Dropout(dropout)
        self.prenorm = prenorm

    def forward(self, x: torch.Tensor, return_states: bool = False):
        """``x`` ``[B, L, H]`` -> ``[B, L, H]`` (and the SSM's states if asked)."""
        z = self.norm(x) if self.prenorm else x                            # (B, L, H)
        z = self.ssm(z, return_states=return_states)                       # (B, L, H)
        z, states = z if return_states else (z, None)
        z = self.dropout(nn.functional.gelu(z))                            # (B, L, H)
        z = self.dropout(nn.functional.glu(self.mix(z), dim=-1))           # (B, L, H)
        x = x + z if self.prenorm else self.norm(x + z)                    # (B, L, H)
        return (x, states) if return_states else x

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """``x`` ``[B, H]`` and the SSM's state -> ``([B, H], new state)``."""
        z = self.norm(x) if self.prenorm else x                            # (B, H)
        z, state = self.ssm.step(z, state)                                 # (B, H)
        z = self.dropout(nn.functional.gelu(z))                            # (B, H)
        z = self.dropout(nn.functional.glu(self.mix(z), dim=-1))           # (B, H)
        x = x + z if self.prenorm else self.norm(x + z)                    # (B, H)
        return x, state

    def default_state(self, batch: int) -> Any:
        return self.ssm.default_state(batch)


class SequenceModel(nn.Module):
    """``[B, L, d_input] -> [B, L, d_output]``: Linear, ``n_layers`` :class:`SSMBlock`, a final
    norm (with ``prenorm``), Linear.

    Args:
        d_input, d_output: input and output features per step.
        d_model: width ``H`` of the blocks (default 64).
        n_layers: number of blocks (default 4).
        layer: "s4d" (default), "dss", "s5" or "stu".
        layer_options: keyword arguments of the layer (e.g. ``{"d_state": 32}``,
            ``{"seq_len": 1000}`` for DSS and STU).
        dropout: dropout probability inside the blocks (default 0).
        prenorm: normalise before each SSM (default) or after each residual.
        norm: "layer" (LayerNorm, default) or "none". LayerNorm makes the model insensitive to
            the input's scale, which suits tokens; a field's amplitude matters, and a time-stepper
            of a linear PDE fits far better without it.
    """

    def __init__(self, d_input: int, d_output: int, d_model: int = 64, n_layers: int = 4,
                 layer: str = "s4d", layer_options: Mapping[str, Any] | None = None,
                 dropout: float = 0.0, prenorm: bool = True, norm: str = "layer") -> None:
        super().__init__()
        self.d_input = check_positive_int(d_input, "d_input")
        check_positive_int(d_output, "d_output")
        check_positive_int(d_model, "d_model")
        check_positive_int(n_layers, "n_layers")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.encoder = nn.Linear(d_input, d_model)
        self.blocks = nn.ModuleList(SSMBlock(d_model, layer, layer_options, dropout, prenorm,
                                             norm) for _ in range(n_layers))
        self.final_norm = _norm(norm, d_model) if prenorm else nn.Identity()
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, u: torch.Tensor, return_states: bool = False):
        """``u`` ``[B, L, d_input]`` -> ``[B, L, d_output]``; with ``return_states`` also the
        list of every block's SSM states over the sequence."""
        check_sequence(u, self.d_input)
        x = self.encoder(u)                                                # (B, L, H)
        states = []
        for block in self.blocks:
            x = block(x, return_states=return_states)                      # (B, L, H)
            if return_states:
                x, block_states = x
                states.append(block_states)
        y = self.decoder(self.final_norm(x))                               # (B, L, d_output)
        return (y, states) if return_states else y

    def step(self, u: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        """``u`` ``[B, d_input]`` and the list of block states -> ``([B, d_output], new list)``."""
        x = self.encoder(u)                                                # (B, H)
        new_state = []
        for block, block_state in zip(self.blocks, state):
            x, block_state = block.step(x, block_state)                    # (B, H)
            new_state.append(block_state)
        return self.decoder(self.final_norm(x)), new_state                 # (B, d_output)

    def default_state(self, batch: int) -> list:
        """Zero states of every block, for a batch of ``batch`` sequences."""
        return [block.default_state(batch) for block in self.blocks]
