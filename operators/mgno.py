"""MgNO (He, Liu, Xu; ICLR 2024): neural operator layers whose linear part is a learned V-cycle.

A layer maps ``f`` (``c_in`` channels) to ``sigma(W f + b)`` where ``W`` is a multigrid V-cycle
with learned convolutions, acting on all channels at once (``W_ij`` between every input and
output channel), plus a parallel 1x1 path with the bias. There is no lifting: the input fields
enter the first layer directly; the output fields are a bias-free pointwise linear combination
of the last layer's channels (the output weights of the network, as in the paper's code).
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pdesuite.operators.models import GridOperator

__all__ = ["MgNO", "VCycle"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE_MODULE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
PADDING_MODES = ("zeros", "circular", "reflect", "replicate")
CYCLES = ("reference", "correction")
PROLONGATION_KERNELS = (3, 4)


class VCycle(nn.Module):
    """One learned V-cycle ``u = W f``: ``[B, c_in, *S] -> [B, c_out, *S]``, linear, no bias.

    Levels ``l = 0`` (finest) to ``J - 1``; a smoothing step is
    ``u_l <- u_l + S (f_l - A u_l)``, and the first step from ``u_l = 0`` is just ``S f_l``.
    Two cycles (``cycle``):

    ``"reference"`` (default), the structure of the paper's code (its Darcy model):

    - level 0 takes ``f_0 = f`` and starts from ``u_0 = 0``; level ``l > 0`` takes the
      restricted data ``f_l = R_l f_{l-1}`` and starts from the restricted iterate
      ``u_l = Pi_l u_{l-1}`` (two stride-2 convolutions: ``R_l`` on ``c_in``, ``Pi_l`` on
      ``c_out`` channels);
    - ``pre[l]`` smoothing steps, each with its own ``S`` and its own ``A``;
    - back up, ``l = J-2 .. 0``: ``u_l <- u_l + P_l u_{l+1}``, then ``post[l]`` smoothing steps
      (each with its own ``S`` and ``A``).

    ``"correction"``, the textbook correction scheme:

    - level ``l > 0`` takes the restricted residual ``f_l = R_l (f_{l-1} - A_{l-1} u_{l-1})``
      and starts from ``u_l = 0``;
    - one ``A_l`` per level, shared by the level's smoothing steps and its residual (it exists
      where it is used: on every level but the coarsest, and on the coarsest when it smooths
      twice or more); no ``Pi``; the way up as above.

    ``A`` (``c_out -> c_in``) and ``S`` (``c_in -> c_out``) are 3x3 convolutions with the
    padding mode of the boundary condition, ``R_l`` and ``Pi_l`` 3x3 convolutions with stride
    2. ``P_l`` (``c_out -> c_out``) is a transposed convolution with stride 2 and a
    ``prolongation_kernel``-wide kernel (3: taps at fine offsets -1, 0, 1 around the coarse
    point's position; 4: also +2) whose output is matched exactly to the finer level's size
    (see :meth:`prolong`), so any size works, odd, even and rectangular alike.

    Parameters (real scalars), with ``k = 3**ndim``, ``q = prolongation_kernel**ndim``,
    ``a = c_in``, ``b = c_out``, ``n_S = sum(pre) + sum(post)``::

        reference:   k a b (2 n_S - 1)    + (J - 1)(k a^2 + k b^2 + q b^2)
        correction:  k a b (n_S + n_A)    + (J - 1)(k a^2 + q b^2)
        where        n_A = (J - 1) + [pre[J-1] >= 2]

    Args:
        in_channels, out_channels: ``c_in`` and ``c_out``, ints >= 1.
        pre_smoothing: ``J`` ints >= 1, the smoothing steps of each level on the way down.
        post_smoothing: ``J - 1`` ints >= 0 (the coarsest level has no way up).
        padding_mode: one of :data:`PADDING_MODES`.
        ndim: spatial axes, 1, 2 or 3.
        cycle: one of :data:`CYCLES`. Default ``"reference"``.
        prolongation_kernel: 3 or 4 (an int). Default 4.

    Raises:
        ValueError: an argument of the wrong type or value (a float or bool where an int is
            expected included), naming the argument.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pre_smoothing: Sequence[int],
        post_smoothing: Sequence[int],
        padding_mode: str,
        ndim: int,
        cycle: str = "reference",
        prolongation_kernel: int = 4,
    ) -> None:
        super().__init__()
        in_channels = _check_int(in_channels, "in_channels", minimum=1)
        out_channels = _check_int(out_channels, "out_channels", minimum=1)
        ndim = _check_int_choice(ndim, "ndim", tuple(_CONV))
        if (
            isinstance(pre_smoothing, (str, bytes))
            or not isinstance(pre_smoothing, Sequence)
            or not pre_smoothing
        ):
            raise ValueError(
                f"pre_smoothing: expected a non-empty sequence of ints (one per level), "
                f"got {pre_smoothing!r}"
            )
        levels = len(pre_smoothing)
        pre_smoothing = _counts(pre_smoothing, levels, "pre_smoothing", minimum=1)
        post_smoothing = _counts(post_smoothing, levels - 1, "post_smoothing", minimum=0)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {padding_mode!r}")
        if cycle not in CYCLES:
            raise ValueError(f"cycle: expected one of {CYCLES}, got {cycle!r}")
        prolongation_kernel = _check_int_choice(
            prolongation_kernel, "prolongation_kernel", PROLONGATION_KERNELS
        )
        conv = _CONV[ndim]
        self.pre_smoothing, self.post_smoothing = tuple(pre_smoothing), tuple(post_smoothing)
        self.padding_mode, self.ndim, self.cycle = padding_mode, ndim, cycle

        def smoother() -> nn.Module:
            return conv(
                in_channels, out_channels, 3, padding=1, padding_mode=padding_mode, bias=False
            )

        def operator() -> nn.Module:
            return conv(
                out_channels, in_channels, 3, padding=1, padding_mode=padding_mode, bias=False
            )

        def restriction(channels: int) -> nn.Module:
            return conv(
                channels, channels, 3, stride=2, padding=1, padding_mode=padding_mode, bias=False
            )

        self.pre_smoothers = nn.ModuleList(
            nn.ModuleList(smoother() for _ in range(count)) for count in pre_smoothing
        )
        self.post_smoothers = nn.ModuleList(
            nn.ModuleList(smoother() for _ in range(count)) for count in post_smoothing
        )
        self.restrictions = nn.ModuleList(restriction(in_channels) for _ in range(levels - 1))
        if cycle == "reference":
            # one A per step that starts from a nonzero iterate: all but the very first (level 0)
            self.pre_operators = nn.ModuleList(
                nn.ModuleList(operator() for _ in range(count - (1 if level == 0 else 0)))
                for level, count in enumerate(pre_smoothing)
            )
            self.post_operators = nn.ModuleList(
                nn.ModuleList(operator() for _ in range(count)) for count in post_smoothing
            )
            self.solution_restrictions = nn.ModuleList(
                restriction(out_channels) for _ in range(levels - 1)
            )
        else:
            self.operators = nn.ModuleDict()  # A_l, keyed by level
            for level in range(levels):
                if level < levels - 1 or pre_smoothing[level] >= 2:
                    self.operators[str(level)] = operator()
        # transposed-convolution weights [c_out, c_out, K, ..., K], initialised as
        # nn.ConvTransposeNd
        self.prolongations = nn.ModuleList(
            _CONV_TRANSPOSE_MODULE[ndim](
                out_channels, out_channels, prolongation_kernel, bias=False
            )
            for _ in range(levels - 1)
        )

    def _operators(self, level: int, post: bool) -> list[nn.Module | None]:
        """The ``A`` of each smoothing step of a level; None where the step starts from zero."""
        steps = (self.post_smoothing if post else self.pre_smoothing)[level]
        if self.cycle == "correction":
            shared = self.operators[str(level)] if str(level) in self.operators else None
            return [shared] * steps
        if post:
            return list(self.post_operators[level])
        own = list(self.pre_operators[level])
        return [None] + own if level == 0 else own

    @staticmethod
    def _smooth(u: torch.Tensor | None, f: torch.Tensor, smoothers: nn.ModuleList,
                operators: Sequence[nn.Module | None]) -> torch.Tensor | None:
        for smoother, operator in zip(smoothers, operators):
            if u is None:
                u = smoother(f)                                              # zero initial guess
            else:
                u = u + smoother(f - operator(u))
        return u

    def prolong(self, weight: torch.Tensor, u: torch.Tensor, fine: Sequence[int]) -> torch.Tensor:
        """``P u``: ``[B, c, *coarse] -> [B, c, *fine]`` with ``coarse = ceil(fine / 2)``.

        Coarse point ``i`` sits at fine index ``2 i``; tap ``t`` of the ``K``-wide kernel
        adds to fine index ``2 i + t - 1``. The unpadded transposed convolution has
        ``2 (n_c - 1) + K`` points per axis, for the fine indices ``-1 .. 2 n_c + K - 4``.
        Zero-like padding modes keep ``0 .. n - 1``: for ``K = 3`` the same as ``padding=1``
        with ``output_padding = 1`` for even ``n`` and 0 for odd ``n``; for ``K = 4``
        ``padding=1`` cropped to ``n``. ``circular`` wraps the points outside onto the other
        end (index -1 onto ``n - 1``, indices ``n, n + 1, ..`` onto ``0, 1, ..``), so that
        periodic data stay periodic across levels.
        """
        full = _CONV_TRANSPOSE[self.ndim](u, weight, stride=2)  # [B, c, *(2 (coarse - 1) + K)]
        for axis, n in enumerate(fine):
            dim = 2 + axis
            core = full.narrow(dim, 1, n)                                    # fine points 0 .. n-1
            if self.padding_mode == "circular":
                beyond = full.shape[dim] - 1 - n  # fine points n, n+1, ..
                if beyond:
                    wrapped = core.narrow(dim, 0, beyond) + full.narrow(dim, 1 + n, beyond)
                    core = torch.cat([wrapped, core.narrow(dim, beyond, n - beyond)], dim)
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
            if level > 0 and self.cycle == "reference":
                u = self.solution_restrictions[level - 1](u)                 # [B, c_out, *S_l]
                f = self.restrictions[level - 1](f)                          # [B, c_in, *S_l]
            elif level > 0:
                residual = f - self.operators[str(level - 1)](u)             # [B, c_in, *S_{l-1}]
                f = self.restrictions[level - 1](residual)                   # [B, c_in, *S_l]
                u = None
            u = self._smooth(u, f, self.pre_smoothers[level], self._operators(level, post=False))
            rhs.append(f)                                                    # u: [B, c_out, *S_l]
            solutions.append(u)
        for level in range(levels - 2, -1, -1):
            fine = solutions[level].shape[2:]
            correction = self.prolong(self.prolongations[level].weight, u, fine)  # [B, c_out, *S_l]
            u = self._smooth(solutions[level] + correction, rhs[level], self.post_smoothers[level],
                             self._operators(level, post=True))              # [B, c_out, *S_l]
        return u                                                             # [B, c_out, *S]


class MgNO(GridOperator):
    """Multigrid neural operator on ``[B, in_channels, *spatial]`` (1, 2 or 3 spatial axes).

    Args:
        in_channels: input fields. Default 1.
        out_channels: output fields. Default 1.
        ndim: spatial axes. Default 2.
        width: channels of the layers. Default 24 (the paper's Darcy setting).
        layers: MgNO layers, each ``width`` channels out and followed by GELU. Default 5 (the
            paper's Darcy setting).
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
        cycle: ``"reference"`` (default: the paper's code, restricted data and iterate, an
            ``A`` per smoothing step) or ``"correction"`` (textbook correction scheme: the
            residual is restricted, coarse levels start from zero, one ``A`` per level); see
            :class:`VCycle`.
        prolongation_kernel: kernel width of the transposed-convolution prolongation, 3 or 4.
            Default 4, the paper's code (its Darcy model); 3 is the symmetric stencil of a
            node grid, and a 4-wide kernel contains it (one more tap).

    Forward, with ``c = [in_channels, width, ..., width]`` (``layers + 1`` entries): layer
    ``k`` maps ``x <- GELU(VCycle_k(x) + Conv1x1_k(x))`` (``c_k -> c_{k+1}``, the 1x1 with a
    bias); then ``Conv1x1(x)`` without bias gives the ``out_channels`` fields. No lifting.

    Sizes: any grid whose coarsest level has at least 2 points per axis, i.e.
    ``n >= 2**(levels - 2) + 1`` per axis (9 for 5 levels); each level has
    ``ceil(n / 2)`` points of the finer one.

    Parameter count: the V-cycles (formula in :class:`VCycle`), plus ``a b + b`` per layer
    ``a -> b`` (1x1 path), plus ``width * out_channels`` (output). With
    ``k = 3**ndim``, ``q = prolongation_kernel**ndim``, ``J = levels``,
    ``n_S = sum(pre) + sum(post)``, the default ``cycle="reference"`` gives::

        sum over layers a -> b of [ k a b (2 n_S - 1) + (J - 1)(k a^2 + k b^2 + q b^2) + a b + b ]
        + width * out_channels

    The defaults with one input and one output field (n_S = 7, k = 9, q = 16, J = 5) give
    60,492 (first layer) + 4 x 146,328 + 24 = 645,828 parameters: the count of the paper's
    code for its Darcy model (``MgNO_DC``: 5 layers of width 24, levels [1,0] x 3 + [2,0] x 2,
    4x4 prolongation, a bias-free 1x1 output), the "about 0.6M" of the paper.
    ``cycle="correction"`` with ``prolongation_kernel=3`` gives 440,556 for the same sizes.
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
        cycle: str = "reference",
        prolongation_kernel: int = 4,
    ) -> None:
        super().__init__()
        # Integers are checked as such, not by equality: 4.0 == 4 and True == 1 would pass a
        # membership test and then fail inside torch, or be stored as a float in the config.
        ndim = _check_int_choice(ndim, "ndim", tuple(_CONV))
        in_channels = _check_int(in_channels, "in_channels", minimum=1)
        out_channels = _check_int(out_channels, "out_channels", minimum=1)
        width = _check_int(width, "width", minimum=1)
        layers = _check_int(layers, "layers", minimum=1)
        levels = _check_int(levels, "levels", minimum=1)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {padding_mode!r}")
        if cycle not in CYCLES:
            raise ValueError(f"cycle: expected one of {CYCLES}, got {cycle!r}")
        prolongation_kernel = _check_int_choice(
            prolongation_kernel, "prolongation_kernel", PROLONGATION_KERNELS
        )
        if pre_smoothing is None:
            pre = (1,) * max(levels - 2, 0) + (2,) * min(levels, 2)
        else:
            pre = _counts(pre_smoothing, levels, "pre_smoothing", minimum=1)
        post = _counts(post_smoothing, levels - 1, "post_smoothing", minimum=0)
        self._store_config(
            in_channels=in_channels,
            out_channels=out_channels,
            ndim=ndim,
            width=width,
            layers=layers,
            levels=levels,
            pre_smoothing=_as_given(pre_smoothing, pre),
            post_smoothing=_as_given(post_smoothing, post),
            padding_mode=padding_mode,
            cycle=cycle,
            prolongation_kernel=prolongation_kernel,
        )
        self.in_channels, self.out_channels, self.ndim, self.levels = (
            in_channels,
            out_channels,
            ndim,
            levels,
        )
        self.pre_smoothing, self.post_smoothing = pre, post
        channels = [in_channels] + [width] * layers
        conv = _CONV[ndim]
        self.cycles = nn.ModuleList(
            VCycle(
                a,
                b,
                pre,
                post,
                padding_mode,
                ndim,
                cycle=cycle,
                prolongation_kernel=prolongation_kernel,
            )
            for a, b in zip(channels[:-1], channels[1:])
        )
        self.pointwise = nn.ModuleList(conv(a, b, 1) for a, b in zip(channels[:-1], channels[1:]))
        self.output = conv(width, out_channels, 1, bias=False)

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
        for cycle, pointwise in zip(self.cycles, self.pointwise):
            x = F.gelu(cycle(x) + pointwise(x))                              # [B, width, *S]
        return self.output(x)                                                # [B, C_out, *S]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(value: Any, argument: str, minimum: int) -> int:
    """``value`` as an int ``>= minimum`` (bool and floats such as 4.0 refused); ValueError naming
    ``argument``."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{argument}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def _check_int_choice(value: Any, argument: str, choices: tuple[int, ...]) -> int:
    """``value`` as an int among ``choices`` (bool and floats refused); ValueError naming
    ``argument``."""
    if not _is_int(value) or int(value) not in choices:
        raise ValueError(f"{argument}: expected one of {choices} (an int), got {value!r}")
    return int(value)


def _counts(
    value: int | Sequence[int], length: int, argument: str, minimum: int
) -> tuple[int, ...]:
    """Smoothing steps per level: an int for every level, or ``length`` ints; as a tuple of ints."""
    if _is_int(value):
        counts: tuple[Any, ...] = (value,) * length
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        counts = tuple(value)
    else:
        raise ValueError(f"{argument}: expected an int or {length} ints, got {value!r}")
    if len(counts) != length or not all(_is_int(c) for c in counts):
        raise ValueError(f"{argument}: expected an int or {length} ints, got {value!r}")
    if counts and min(counts) < minimum:
        raise ValueError(f"{argument}: every entry must be >= {minimum}, got {value!r}")
    return tuple(int(c) for c in counts)


def _as_given(value: Any, counts: tuple[int, ...]) -> Any:
    """The config entry of a smoothing argument: None, an int or a list, in the form given."""
    if value is None:
        return None
    return int(value) if _is_int(value) else list(counts)
