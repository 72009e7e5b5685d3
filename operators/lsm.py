"""Latent Spectral Models (Wu, Hu, Luo, Wang, Long; ICML 2023), 2D and 3D.

A hierarchical projection network: a 5-scale U-Net (channels w, 2w, 4w, 8w, 8w) whose skip
features and bottleneck each pass through a *neural spectral block* before the decoder uses
them. The block splits its map into patches, projects each patch's pixels onto a few latent
tokens by attention, transforms the tokens with a learned per-channel trigonometric series,
and attends back from the pixels to the tokens.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pdesuite.operators.models import GridOperator, grid_coordinates

__all__ = ["LSM", "NeuralSpectralBlock"]

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_BATCHNORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
NORMS = ("batch", "group", "none")
_GROUPS_AT_MOST = 8
_INTERPOLATION = {2: "bilinear", 3: "trilinear"}
_SCALES = 5  # the paper's U-Net: 4 poolings, so padded sizes are multiples of 2**4
_CHANNEL_MULTIPLIERS = (1, 2, 4, 8, 8)


def _patchify(x: torch.Tensor, patch: Sequence[int]) -> torch.Tensor:
    """``[B, C, n1 p1, ..., nd pd] -> [B n1 ... nd, C, p1, ..., pd]`` (patch-major)."""
    batch, channels, *spatial = x.shape
    ndim = len(spatial)
    counts = [n // p for n, p in zip(spatial, patch)]
    interleaved = [size for pair in zip(counts, patch) for size in pair]  # n1, p1, n2, p2, ...
    x = x.reshape(batch, channels, *interleaved)
    order = [0, *(2 + 2 * i for i in range(ndim)), 1, *(3 + 2 * i for i in range(ndim))]
    return x.permute(order).reshape(-1, channels, *patch)


def _unpatchify(x: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`_patchify`: ``[B n1 ... nd, C, *patch] -> [B, C, *spatial]``."""
    channels, patch = x.shape[1], x.shape[2:]
    ndim = len(patch)
    counts = [n // p for n, p in zip(spatial, patch)]
    x = x.reshape(-1, *counts, channels, *patch)  # [B, n1..nd, C, p1..pd]
    order = [0, 1 + ndim]
    for i in range(ndim):
        order += [1 + i, 2 + ndim + i]
    return x.permute(order).reshape(x.shape[0], channels, *spatial)


def _attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``softmax(Q K^T) V`` over the last two axes, without the ``1/sqrt(d)`` scaling.

    ``queries: [..., M, d]``, ``keys, values: [..., L, d]`` (leading axes broadcast) ->
    ``[..., M, d]``. Written out rather than ``F.scaled_dot_product_attention``: the sequences
    here are a patch's pixels or its 4 tokens, and for such short ones the plain form ran
    about twice as fast on CPU (forward + backward) with the same memory.
    """
    weights = torch.softmax(queries @ keys.transpose(-1, -2), dim=-1)      # [..., M, L]
    return weights @ values                                                 # [..., M, d]


class NeuralSpectralBlock(nn.Module):
    """Patches -> attention onto latent tokens -> trigonometric series -> attention back.

    Args:
        channels: ``c``, divisible by ``heads``.
        num_tokens: latent tokens per patch (paper: 4).
        num_basis: ``K``, frequencies of the series (paper: 12).
        heads: attention heads (paper: 8).
        ndim: 2 or 3.

    Per patch of ``L`` pixels ``x`` (``[L, c]``), with ``d = c / heads`` and per head:

    1. encode: ``t = softmax(Q_lat K(x)^T) V(x) + Q_lat``, where ``Q_lat`` are learned tokens
       ``[num_tokens, d]`` and ``K, V`` are 1x1 projections;
    2. transition, per channel ``i`` and token value ``t_i``:
       ``t_i <- t_i + sum_k a_ik sin(pi k t_i / K) + b_ik cos(pi k t_i / K)``, k = 0..K-1;
    3. decode: ``x <- softmax(Q(x) t^T) t + x`` with ``Q`` a 1x1 projection.

    Attention logits are not scaled by ``1/sqrt(d)``, as in the paper's code.
    Parameters: ``3 c^2 + 3 c`` (projections) ``+ num_tokens c`` (tokens) ``+ 2 K c`` (series).
    """

    def __init__(
        self, channels: int, num_tokens: int, num_basis: int, heads: int, ndim: int
    ) -> None:
        super().__init__()
        self.heads, self.num_tokens = heads, num_tokens
        conv = _CONV[ndim]
        # init of the paper's code: uniform [0, 1/c)
        self.latent_tokens = nn.Parameter(
            torch.rand(heads, num_tokens, channels // heads) / channels
        )
        self.series_weights = nn.Parameter(torch.rand(channels, 2 * num_basis) / channels)
        self.register_buffer(
            "frequencies", math.pi * torch.arange(num_basis) / num_basis, persistent=False
        )
        self.key_value = conv(channels, 2 * channels, 1)
        self.query = conv(channels, channels, 1)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, c, *patch] -> [N, heads, L, c / heads]``."""
        return x.reshape(x.shape[0], self.heads, x.shape[1] // self.heads, -1).transpose(2, 3)

    def forward(self, x: torch.Tensor, patch: Sequence[int]) -> torch.Tensor:
        """``x: [B, c, *spatial]`` with ``spatial`` divisible by ``patch``; same shape out."""
        spatial = x.shape[2:]
        channels = x.shape[1]
        keys, values = self.key_value(x).chunk(2, dim=1)  # 2 x [B, c, *S]
        keys = self._heads(_patchify(keys, patch))  # [N, h, L, d], N = B * patches
        values = self._heads(_patchify(values, patch))                      # [N, h, L, d]
        queries = self._heads(_patchify(self.query(x), patch))              # [N, h, L, d]
        # (1) pixels -> tokens
        latent = self.latent_tokens  # [h, T, d], shared by all patches
        tokens = _attention(latent, keys, values) + latent                  # [N, h, T, d]
        # (2) trigonometric series per channel, channel = head * d + j as in _heads
        tokens = tokens.transpose(2, 3).reshape(-1, channels, self.num_tokens)  # [N, c, T]
        phases = tokens.unsqueeze(-1) * self.frequencies                   # [N, c, T, K]
        basis = torch.cat([torch.sin(phases), torch.cos(phases)], dim=-1)  # [N, c, T, 2K]
        tokens = tokens + torch.einsum("nctk,ck->nct", basis, self.series_weights)  # [N, c, T]
        tokens = tokens.reshape(-1, self.heads, channels // self.heads, self.num_tokens).transpose(
            2, 3
        )
        # tokens: [N, h, T, d]
        # (3) tokens -> pixels
        pixels = _attention(queries, tokens, tokens)                        # [N, h, L, d]
        pixels = pixels.transpose(2, 3).reshape(-1, channels, *patch)      # [N, c, *patch]
        return _unpatchify(pixels, spatial) + x                             # [B, c, *S]


def _group_count(channels: int) -> int:
    """GroupNorm groups: the largest divisor of ``channels`` up to 8 that leaves >= 2 channels
    per group (8 for every channel count of the default widths; 1 for a single channel)."""
    return max(
        (g for g in range(1, _GROUPS_AT_MOST + 1) if channels % g == 0 and channels // g >= 2),
        default=1,
    )


def _normalisation(norm: str, channels: int, ndim: int) -> nn.Module:
    if norm == "batch":
        return _BATCHNORM[ndim](channels)
    if norm == "group":
        return nn.GroupNorm(_group_count(channels), channels)
    return nn.Identity()


class _DoubleConv(nn.Sequential):
    """(3x3 conv -> norm -> ReLU) twice: the U-Net's convolution unit.

    The convolutions have a bias only without normalisation (``norm="none"``): BatchNorm and
    GroupNorm subtract the mean and add their own shift, which would cancel a bias.
    """

    def __init__(
        self, in_channels: int, out_channels: int, mid_channels: int, ndim: int, norm: str
    ) -> None:
        conv, bias = _CONV[ndim], norm == "none"
        super().__init__(
            conv(in_channels, mid_channels, 3, padding=1, bias=bias),
            _normalisation(norm, mid_channels, ndim),
            nn.ReLU(),
            conv(mid_channels, out_channels, 3, padding=1, bias=bias),
            _normalisation(norm, out_channels, ndim),
            nn.ReLU(),
        )


class LSM(GridOperator):
    """Latent Spectral Model on ``[B, in_channels, *spatial]`` (2 or 3 spatial axes).

    Args:
        in_channels: input fields. Default 1.
        out_channels: output fields. Default 1.
        ndim: spatial axes, 2 or 3. Default 2.
        width: ``w``, channels of the finest scale; the 5 scales have w, 2w, 4w, 8w, 8w.
            Default 64 (the paper's Darcy setting), divisible by ``heads``.
        num_tokens: latent tokens per patch. Default 4.
        num_basis: frequencies of the trigonometric series. Default 12.
        heads: attention heads. Default 8.
        patch_size: pixels per patch side, the same at every scale; an int, ``ndim`` ints, or
            None (default). None: each axis is padded to a multiple of 16 and cut into 16
            patches at the finest scale, so 256 patches (2D) at the finest scale and 1 at the
            coarsest, as in the paper; the patch side is ``ceil(n / 16)``. An int ``p``: each
            axis is padded to a multiple of ``16 p``. At the paper's Darcy size 85 both give
            the paper's setting exactly (padded to 96, 6x6 patches); at other sizes None pads
            far less (64 stays 64, where ``p = 6`` would pad to 96).
        grid: append node coordinates in ``[0, 1]`` as input channels. Default True.
        projection_width: hidden channels of the output projection. Default 128.
        norm: normalisation after each U-Net convolution, one of ``NORMS``:

            - ``"batch"`` (default, the paper's): BatchNorm. Train and eval modes differ, and
              training needs more than one value per channel at the coarsest scale: a batch of
              1 on a grid of at most 16 points per axis (coarsest scale 1 x 1) is refused with
              a ValueError in train mode.
            - ``"group"``: GroupNorm with up to 8 groups of at least 2 channels (8 groups at
              the default widths); per sample, so any batch size (1 included) trains and
              train and eval modes agree. The same parameter count as ``"batch"``.
            - ``"none"``: no normalisation; the U-Net convolutions get a bias instead.

            Instance normalisation is not offered: at the coarsest scale of small grids the
            map is 1 x 1, a single value per channel and sample, which it cannot normalise.

    Any grid size works, rectangles included: the lifted field is zero-padded at the high end
    of each axis to the size the 4 poolings and the patches need, and cropped back before the
    projection.

    Forward: lift (1x1) -> pad -> U-Net encoder (double conv, then 4 x [max-pool, double
    conv]) -> a neural spectral block on each of the 5 scales -> decoder (4 x [upsample x2,
    concatenate the processed skip, double conv]) -> 1x1 -> crop -> projection (1x1 to 128,
    GELU, 1x1). The U-Net uses BatchNorm by default, as the paper's, so train/eval modes differ.
    Parameter count of the defaults with one input and one output field: 19,187,457
    (the same modules as the paper's code at width 64, so the same count).
    """

    name = "lsm"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        ndim: int = 2,
        width: int = 64,
        num_tokens: int = 4,
        num_basis: int = 12,
        heads: int = 8,
        patch_size: int | Sequence[int] | None = None,
        grid: bool = True,
        projection_width: int = 128,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if ndim not in _CONV:
            raise ValueError(f"ndim: expected 2 or 3, got {ndim!r}")
        if norm not in NORMS:
            raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
        for argument, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("width", width),
            ("num_tokens", num_tokens),
            ("num_basis", num_basis),
            ("heads", heads),
            ("projection_width", projection_width),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{argument}: expected a positive int, got {value!r}")
        if width % heads:
            raise ValueError(f"width: must be divisible by heads={heads}, got {width}")
        if patch_size is None:
            patch_t = None
        else:
            patch_t = (patch_size,) * ndim if isinstance(patch_size, int) else tuple(patch_size)
            if len(patch_t) != ndim or not all(isinstance(p, int) and p >= 1 for p in patch_t):
                raise ValueError(
                    f"patch_size: expected None, a positive int or {ndim} of them, got "
                    f"{patch_size!r}"
                )
        self._store_config(
            in_channels=in_channels,
            out_channels=out_channels,
            ndim=ndim,
            width=width,
            num_tokens=num_tokens,
            num_basis=num_basis,
            heads=heads,
            patch_size=patch_size,
            grid=bool(grid),
            projection_width=projection_width,
            norm=norm,
        )
        self.in_channels, self.out_channels, self.ndim, self.norm = (
            in_channels,
            out_channels,
            ndim,
            norm,
        )
        self.grid, self.patch_size = bool(grid), patch_t
        conv = _CONV[ndim]
        channels = [width * m for m in _CHANNEL_MULTIPLIERS]                # w, 2w, 4w, 8w, 8w
        self.lift = conv(in_channels + (ndim if self.grid else 0), width, 1)
        self.encoders = nn.ModuleList(
            [_DoubleConv(width, channels[0], channels[0], ndim, norm)]
            + [
                _DoubleConv(channels[s - 1], channels[s], channels[s], ndim, norm)
                for s in range(1, _SCALES)
            ]
        )
        self.spectral_blocks = nn.ModuleList(
            NeuralSpectralBlock(c, num_tokens, num_basis, heads, ndim) for c in channels
        )
        # decoder at scale s (3 .. 0): input = upsampled scale s+1 concatenated with skip s;
        # the output has the channels of scale s-1 (of w at s = 0), as the bilinear U-Net
        self.decoders = nn.ModuleList()
        for s in range(_SCALES - 2, -1, -1):
            merged = channels[s] + (channels[s + 1] if s == _SCALES - 2 else channels[s])
            out = channels[s - 1] if s > 0 else width
            self.decoders.append(_DoubleConv(merged, out, merged // 2, ndim, norm))
        self.out_conv = conv(width, width, 1)
        self.project_hidden = conv(width, projection_width, 1)
        self.project_out = conv(projection_width, out_channels, 1)

    def padded_shape(self, spatial: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Padded sizes and patch sides for an input of ``spatial`` size."""
        factor = 2 ** (_SCALES - 1)
        if self.patch_size is None:
            patch = tuple(-(-n // factor) for n in spatial)                 # ceil(n / 16)
        else:
            patch = self.patch_size
        padded = tuple(-(-n // (factor * p)) * factor * p for n, p in zip(spatial, patch))
        return padded, patch

    def _check_batch_norm_statistics(
        self, batch: int, spatial: Sequence[int], padded: Sequence[int]
    ) -> None:
        """Refuse what BatchNorm cannot train on: one value per channel at the coarsest scale.

        torch would fail deep inside the U-Net with "Expected more than 1 value per channel";
        this says which input caused it and what to change.
        """
        if self.norm != "batch" or not self.training:
            return
        coarsest = [n // 2 ** (_SCALES - 1) for n in padded]
        if batch * math.prod(coarsest) <= 1:
            raise ValueError(
                f"LSM: a batch of {batch} at input size {tuple(spatial)} leaves the coarsest U-Net "
                f"scale {' x '.join(map(str, coarsest))}, one value per channel, which BatchNorm "
                "cannot normalise in train mode; use a batch of at least 2, a grid of more than "
                f"{2 ** (_SCALES - 1)} points along some axis, or norm='group' (or 'none')"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, *S] -> [B, out_channels, *S]``; P = padded size, P_s = P / 2**s."""
        self._check_input(x)                                                # x: [B, C_in, *S]
        spatial = x.shape[2:]
        padded, patch = self.padded_shape(spatial)
        self._check_batch_norm_statistics(x.shape[0], spatial, padded)
        if self.grid:
            x = torch.cat([x, grid_coordinates(x, self.ndim)], dim=1)       # [B, C_in + d, *S]
        x = self.lift(x)                                                    # [B, w, *S]
        pad = [p for n, m in zip(reversed(spatial), reversed(padded)) for p in (0, m - n)]
        x = F.pad(x, pad)                                                   # [B, w, *P]
        skips = [self.encoders[0](x)]                                       # [B, w, *P]
        for encoder in self.encoders[1:]:
            pooled = F.max_pool2d(skips[-1], 2) if self.ndim == 2 else F.max_pool3d(skips[-1], 2)
            skips.append(encoder(pooled))  # scale s: [B, c_s, *P_s]
        skips = [block(s, patch) for block, s in zip(self.spectral_blocks, skips)]  # shapes kept
        x = skips[-1]                                                       # [B, 8w, *P_4]
        for decoder, skip in zip(self.decoders, reversed(skips[:-1])):      # scales 3, 2, 1, 0
            x = F.interpolate(x, scale_factor=2, mode=_INTERPOLATION[self.ndim], align_corners=True)
            # x: [B, c_{s+1}, *P_s]
            x = decoder(torch.cat([skip, x], dim=1))  # [B, c_{s-1} (w at s=0), *P_s]
        x = self.out_conv(x)                                                # [B, w, *P]
        x = x[(slice(None), slice(None), *(slice(0, n) for n in spatial))]  # [B, w, *S]
        x = F.gelu(self.project_hidden(x))                                  # [B, 128, *S]
        return self.project_out(x)                                          # [B, C_out, *S]
