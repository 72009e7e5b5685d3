"""MgNO (He, Liu, Xu; ICLR 2024): neural operator layers whose linear part is a learned V-cycle.

A layer maps ``f`` (``c_in`` channels) to ``sigma(W f + b)`` where ``W`` is a multigrid V-cycle
with learned convolutions, acting on all channels at once (``W_ij`` between every input and
output channel), plus a parallel 1x1 path with the bias. There is no lifting or projection:
the input fields enter the first layer and the last layer (without activation) outputs the
output fields.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pdesuite.operators.models import GridOperator

__all__ = ["MgNO", "VCycle"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
PADDING_MODES = ("zeros", "circular", "reflect", "replicate")


class VCycle(nn.Module):
    """One learned V-cycle ``u = W f``: ``[B, c_in, *S] -> [B, c_out, *S]``, linear, no bias.

    Following the paper's algorithm (a correction-scheme multigrid cycle), with levels
    ``l = 0`` (finest) to ``J - 1``:

    - level 0 takes ``f_0 = f``; level ``l > 0`` takes the restricted residual
      ``f_l = R_l (f_{l-1} - A_{l-1} u_{l-1})``;
    - pre-smoothing from ``u_l = 0``: ``u_l <- u_l + S_{l,i} (f_l - A_l u_l)`` for
      ``i = 1..pre[l]`` (the first step is just ``S_{l,1} f_l``);
    - back up, ``l = J-2 .. 0``: ``u_l <- u_l + P_l u_{l+1}``, then ``post[l]`` post-smoothing
      steps of the same form.

    ``A_l`` (``c_out -> c_in``, one per level, shared by the level's smoothing steps and its
    residual) and ``S_{l,i}`` (``c_in -> c_out``) are 3x3 convolutions with the padding mode of
    the boundary condition; ``R_l`` (``c_in -> c_in``) is a 3x3 convolution with stride 2;
    ``P_l`` (``c_out -> c_out``) is a 3x3 transposed convolution with stride 2 whose output is
    matched exactly to the finer level's size (see :meth:`prolong`), so any size works, odd,
    even and rectangular alike. A level's ``A_l`` exists only where it is used: on every
    level but the coarsest (residual), and on the coarsest when it smooths twice or more.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pre_smoothing: Sequence[int],
        post_smoothing: Sequence[int],
        padding_mode: str,
        ndim: int,
    ) -> None:
        super().__init__()
        conv = _CONV[ndim]
        levels = len(pre_smoothing)
        self.pre_smoothing, self.post_smoothing = tuple(pre_smoothing), tuple(post_smoothing)
        self.padding_mode, self.ndim = padding_mode, ndim

        def smoother() -> nn.Module:
            return conv(in_channels, out_channels, 3, padding=1, padding_mode=padding_mode, bias=False)

        self.operators = nn.ModuleDict()  # A_l, keyed by level
        for level in range(levels):
            if level < levels - 1 or pre_smoothing[level] >= 2:
                self.operators[str(level)] = conv(out_channels, in_channels, 3, padding=1,
                                                  padding_mode=padding_mode, bias=False)
        self.pre_smoothers = nn.ModuleList(
            nn.ModuleList(smoother() for _ in range(count)) for count in pre_smoothing
        )
        self.post_smoothers = nn.ModuleList(
            nn.ModuleList(smoother() for _ in range(count)) for count in post_smoothing
        )
        self.restrictions = nn.ModuleList(
            conv(in_channels, in_channels, 3, stride=2, padding=1, padding_mode=padding_mode, bias=False)
            for _ in range(levels - 1)
        )
        # transposed-convolution weights [c_out, c_out, 3, ..., 3], initialised as nn.ConvTransposeNd
        self.prolongations = nn.ModuleList(
            nn.ConvTranspose1d(out_channels, out_channels, 3, bias=False) if ndim == 1 else
            nn.ConvTranspose2d(out_channels, out_channels, 3, bias=False) if ndim == 2 else
            nn.ConvTranspose3d(out_channels, out_channels, 3, bias=False)
            for _ in range(levels - 1)
        )

    def _smooth(self, u: torch.Tensor | None, f: torch.Tensor, level: int, smoothers: nn.ModuleList) -> torch.Tensor:
        for smoother in smoothers:
            if u is None:
                u = smoother(f)                                              # zero initial guess
            else:
                u = u + smoother(f - self.operators[str(level)](u))
        return u

    def prolong(self, weight: torch.Tensor, u: torch.Tensor, fine: Sequence[int]) -> torch.Tensor:
        """``P u``: ``[B, c, *coarse] -> [B, c, *fine]`` with ``coarse = ceil(fine / 2)``.

        The unpadded transposed convolution has ``2 n_c + 1`` points per axis, for the fine
        indices ``-1 .. 2 n_c - 1``. Zero-like padding modes keep ``0 .. n - 1`` (the same as
        ``padding=1`` with ``output_padding = 1`` for even ``n`` and 0 for odd ``n``);
        ``circular`` wraps the points outside onto ``n - 1`` (index -1) and ``0`` (index
        ``n``, odd ``n`` only), so that periodic data stay periodic across levels.
        """
        full = _CONV_TRANSPOSE[self.ndim](u, weight, stride=2)               # [B, c, *(2 coarse + 1)]
        for axis, n in enumerate(fine):
            dim = 2 + axis
            core = full.narrow(dim, 1, n)                                    # fine points 0 .. n-1
            if self.padding_mode == "circular":
                extra = full.shape[dim] - 1 - n                              # 1 for odd n, 0 for even
                if extra:
                    wrapped = core.narrow(dim, 0, 1) + full.narrow(dim, 1 + n, 1)
                    core = torch.cat([wrapped, core.narrow(dim, 1, n - 1)], dim)
                wrapped = core.narrow(dim, n - 1, 1) + full.narrow(dim, 0, 1)
                core = torch.cat([core.narrow(dim, 0, n - 1), wrapped], dim)
            full = core                                                      # axis done: n points
        return full                                                          # [B, c, *fine]

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """``f: [B, c_in, *S] -> u: [B, c_out, *S]``; S_l = sizes at level l (S_0 = S)."""
        levels = len(self.pre_smoothing)
        rhs, solutions = [], []
        u = None
        for level in range(levels):
            if level > 0:
                residual = f - self.operators[str(level - 1)](u)             # [B, c_in, *S_{l-1}]
                f = self.restrictions[level - 1](residual)                   # [B, c_in, *S_l]
            u = self._smooth(None, f, level, self.pre_smoothers[level])     # [B, c_out, *S_l]
            rhs.append(f)
            solutions.append(u)
        for level in range(levels - 2, -1, -1):
            fine = solutions[level].shape[2:]
            correction = self.prolong(self.prolongations[level].weight, u, fine)  # [B, c_out, *S_l]
            u = self._smooth(solutions[level] + correction, rhs[level], level,
                             self.post_smoothers[level])                     # [B, c_out, *S_l]
        return u                                                             # [B, c_out, *S]


class MgNO(GridOperator):
    """Multigrid neural operator on ``[B, in_channels, *spatial]`` (1, 2 or 3 spatial axes).

    Args:
        in_channels: input fields. Default 1.
        out_channels: output fields. Default 1.
        ndim: spatial axes. Default 2.
        width: hidden channels. Default 24 (the paper's Darcy setting).
        layers: MgNO layers in all, the last one without activation and with
            ``out_channels`` outputs. Default 5.
        levels: grid levels of each V-cycle, ``J``. Default 5.
        pre_smoothing: smoothing steps per level on the way down, an int or ``levels`` ints
            (each >= 1). Default None: the paper's Darcy pattern, 1 on the finer levels and 2
            on the two coarsest, i.e. (1, 1, 1, 2, 2) for 5 levels.
        post_smoothing: smoothing steps per level on the way up after the coarse correction,
            an int or ``levels - 1`` ints (the coarsest level has no way up). Default 0, as in
            the paper's Darcy setting.
        padding_mode: padding of every 3x3 convolution, the boundary condition: ``"zeros"``
            (default; Dirichlet-like), ``"circular"`` (periodic), ``"reflect"`` or
            ``"replicate"`` (Neumann-like).

    Layer ``k`` (``c_k -> c_{k+1}``, with ``c = [in_channels, width, ..., width,
    out_channels]``): ``x <- GELU(VCycle(x) + Conv1x1(x))``, no GELU after the last layer.

    Sizes: any grid whose coarsest level has at least 2 points per axis, i.e.
    ``n >= 2**(levels - 2) + 1`` per axis (9 for 5 levels); each level has
    ``ceil(n / 2)`` points of the finer one.

    Parameter count, with ``k = 3**ndim``, ``J = levels``, ``n_S = sum(pre) + sum(post)``,
    ``n_A = (J - 1) + [pre[J-1] >= 2]``, summed over the layers ``a -> b``::

        k a b (n_A + n_S)  +  k (J - 1)(a^2 + b^2)  +  a b + b

    (smoothers and operators, restrictions and prolongations, 1x1 path with bias). The
    defaults with one input and one output field give 359,641 parameters. The paper reports
    about 0.6M (its code, 5 layers of width 24 and a 1x1 output, gives 645,828): that code
    gives every smoothing step its own ``A`` instead of one per level, restricts ``f`` itself
    rather than the residual and ``u`` by a second stride-2 convolution instead of starting
    each coarse level from zero, and uses 4x4 prolongation kernels (which cannot match odd
    sizes). We follow the multigrid algorithm (one operator per level, residual restriction),
    the paper's rule of no projection layer, and its layer count of 4-5.
    """

    name = "mgno"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        ndim: int = 2,
        width: int = 24,
        layers: int = 5,
        levels: int = 5,
        pre_smoothing: int | Sequence[int] | None = None,
        post_smoothing: int | Sequence[int] = 0,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        if ndim not in _CONV:
            raise ValueError(f"ndim: expected 1, 2 or 3, got {ndim!r}")
        for argument, value in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                                ("layers", layers), ("levels", levels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{argument}: expected a positive int, got {value!r}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {padding_mode!r}")
        if pre_smoothing is None:
            pre = (1,) * max(levels - 2, 0) + (2,) * min(levels, 2)
        else:
            pre = _counts(pre_smoothing, levels, "pre_smoothing", minimum=1)
        post = _counts(post_smoothing, levels - 1, "post_smoothing", minimum=0)
        self._store_config(in_channels=in_channels, out_channels=out_channels, ndim=ndim, width=width,
                           layers=layers, levels=levels, pre_smoothing=pre_smoothing,
                           post_smoothing=post_smoothing, padding_mode=padding_mode)
        self.in_channels, self.out_channels, self.ndim, self.levels = in_channels, out_channels, ndim, levels
        self.pre_smoothing, self.post_smoothing = pre, post
        channels = [in_channels] + [width] * (layers - 1) + [out_channels]
        conv = _CONV[ndim]
        self.cycles = nn.ModuleList(
            VCycle(a, b, pre, post, padding_mode, ndim) for a, b in zip(channels[:-1], channels[1:])
        )
        self.pointwise = nn.ModuleList(conv(a, b, 1) for a, b in zip(channels[:-1], channels[1:]))

    @property
    def min_size(self) -> int:
        """Fewest points per axis: the coarsest level needs 2."""
        return 2 ** (self.levels - 2) + 1 if self.levels >= 2 else 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, *S] -> [B, out_channels, *S]``."""
        self._check_input(x)                                                 # x: [B, C_in, *S]
        if min(x.shape[2:]) < self.min_size:
            raise ValueError(
                f"MgNO: input of shape {tuple(x.shape)} is too small for {self.levels} levels; "
                f"expected at least {self.min_size} points per spatial axis"
            )
        last = len(self.cycles) - 1
        for i, (cycle, pointwise) in enumerate(zip(self.cycles, self.pointwise)):
            x = cycle(x) + pointwise(x)                                      # [B, c_{i+1}, *S]
            if i < last:
                x = F.gelu(x)                                                # [B, width, *S]
        return x                                                             # [B, C_out, *S]


def _counts(value: int | Sequence[int], length: int, argument: str, minimum: int) -> tuple[int, ...]:
    counts = (value,) * length if isinstance(value, int) else tuple(value)
    if len(counts) != length or not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
        raise ValueError(f"{argument}: expected an int or {length} ints, got {value!r}")
    if counts and min(counts) < minimum:
        raise ValueError(f"{argument}: every entry must be >= {minimum}, got {value!r}")
    return counts
