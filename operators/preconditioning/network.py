"""The network of the deep conjugate direction method (Kaneda et al., ICML 2023), 2D and 3D.

A small residual CNN with one pooling level that approximates ``A⁻¹`` up to a constant on a
grid: ``[B, 1 + conditioning_channels, *spatial] -> [B, 1, *spatial]``. Channel 0 is the
(normalised) residual as a field, zero on the Dirichlet nodes; the other channels are
conditioning fields fixed per system, such as the Darcy coefficient.

Layout (``w = width``, every convolution ``kernel_size`` wide with zero padding, except the
last)::

    conv (in -> w, linear) -> blocks[0] residual blocks           (fine level; kept as the skip)
    -> average pooling by 2 -> blocks[1] residual blocks          (coarse level)
    -> upsampling by 2, + skip -> blocks[2] residual blocks       (fine level)
    -> 1x1 conv (w -> 1)

A residual block is ``x -> relu(x + conv(relu(conv(x))))``. The default ``blocks=(2, 3, 2)``
is the paper's. The pooling halves every spatial axis, so each one must be even: any even grid
works, and :meth:`DCDMNet.check_spatial_shape` says so before any solve.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pdesuite.operators.models import GridOperator

__all__ = ["CONDITIONING_TRANSFORMS", "UPSAMPLING", "DCDMNet", "ResidualBlock"]

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_POOL = {2: F.avg_pool2d, 3: F.avg_pool3d}
_LINEAR_MODE = {2: "bilinear", 3: "trilinear"}
#: ``"nearest"`` repeats each coarse value, ``"linear"`` interpolates (bi/trilinear).
UPSAMPLING = ("linear", "nearest")
#: What the network does to its conditioning channels first: ``"none"``, or ``"log"`` for a
#: positive coefficient spread over decades (the Darcy permeability ``a = exp(g)``).
CONDITIONING_TRANSFORMS = ("none", "log")


class ResidualBlock(nn.Module):
    """``x -> relu(x + conv₂(relu(conv₁(x))))`` on ``[B, width, *spatial]``, shape kept."""

    def __init__(self, width: int, kernel_size: int, ndim: int):
        super().__init__()
        conv = _CONV[ndim]
        self.first = conv(width, width, kernel_size, padding=kernel_size // 2)
        self.second = conv(width, width, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.second(F.relu(self.first(x))))


class DCDMNet(GridOperator):
    """The DCDM network (see the module docstring) on ``[B, 1 + conditioning_channels, *S]``.

    Args:
        ndim: spatial axes, 2 or 3. Default 2.
        conditioning_channels: conditioning fields after the residual channel (0: Poisson;
            1: the Darcy coefficient). Default 0.
        width: channels of every hidden layer. Default 16 (the paper's).
        blocks: residual blocks before pooling, at the coarse level, and after upsampling.
            Default ``(2, 3, 2)`` (the paper's).
        kernel_size: odd width of the convolutions. Default 3.
        upsampling: one of :data:`UPSAMPLING`. Default ``"linear"``: a smoother correction
            than the blocky ``"nearest"``, for the same cost.
        conditioning_transform: one of :data:`CONDITIONING_TRANSFORMS`, applied to the
            conditioning channels inside ``forward`` so that a run directory rebuilds it.
            Default ``"none"``.

    ``forward`` raises ValueError for a wrong channel count, a wrong number of axes, or an odd
    spatial size (the pooling level halves each axis).
    """

    name = "dcdm"

    def __init__(self, ndim: int = 2, conditioning_channels: int = 0, width: int = 16,
                 blocks: Sequence[int] = (2, 3, 2), kernel_size: int = 3,
                 upsampling: str = "linear", conditioning_transform: str = "none"):
        super().__init__()
        if ndim not in _CONV or isinstance(ndim, bool):
            raise ValueError(f"ndim: expected 2 or 3, got {ndim!r}")
        conditioning_channels = _check_int(conditioning_channels, "conditioning_channels", 0)
        width = _check_int(width, "width", 1)
        kernel_size = _check_int(kernel_size, "kernel_size", 1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd int, got {kernel_size}")
        if isinstance(blocks, (str, bytes)) or len(blocks) != 3:
            raise ValueError(f"blocks: expected three ints (before pooling, coarse, after "
                             f"upsampling), got {blocks!r}")
        blocks = [_check_int(b, "blocks", 0) for b in blocks]
        if upsampling not in UPSAMPLING:
            raise ValueError(f"upsampling: expected one of {UPSAMPLING}, got {upsampling!r}")
        if conditioning_transform not in CONDITIONING_TRANSFORMS:
            raise ValueError(f"conditioning_transform: expected one of "
                             f"{CONDITIONING_TRANSFORMS}, got {conditioning_transform!r}")
        self._store_config(ndim=ndim, conditioning_channels=conditioning_channels, width=width,
                           blocks=blocks, kernel_size=kernel_size, upsampling=upsampling,
                           conditioning_transform=conditioning_transform)
        self.ndim = ndim
        self.conditioning_channels = conditioning_channels
        self.in_channels = 1 + conditioning_channels
        self.upsampling = upsampling
        self.conditioning_transform = conditioning_transform
        conv = _CONV[ndim]
        self.lift = conv(self.in_channels, width, kernel_size, padding=kernel_size // 2)
        def stage(count: int) -> nn.Sequential:
            return nn.Sequential(*(ResidualBlock(width, kernel_size, ndim) for _ in range(count)))

        self.fine, self.coarse, self.after = stage(blocks[0]), stage(blocks[1]), stage(blocks[2])
        self.project = conv(width, 1, 1)

    @staticmethod
    def check_spatial_shape(shape: Sequence[int]) -> None:
        """ValueError unless every axis of ``shape`` is even and at least 2 (one pooling by 2)."""
        if any(n < 2 or n % 2 for n in shape):
            raise ValueError(f"DCDMNet: grid {tuple(shape)} cannot be taken: its one pooling "
                             "level halves every axis, so each must be even and at least 2")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        self.check_spatial_shape(x.shape[2:])
        if self.conditioning_channels and self.conditioning_transform == "log":
            x = torch.cat([x[:, :1], torch.log(x[:, 1:])], dim=1)
        skip = self.fine(self.lift(x))
        coarse = self.coarse(_POOL[self.ndim](skip, 2))
        if self.upsampling == "linear":
            up = F.interpolate(coarse, size=skip.shape[2:], mode=_LINEAR_MODE[self.ndim],
                               align_corners=False)
        else:
            up = F.interpolate(coarse, size=skip.shape[2:], mode="nearest")
        return self.project(self.after(up + skip))


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)
