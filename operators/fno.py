"""Fourier neural operator (Li et al., ICLR 2021) in 1, 2 and 3 dimensions.

Lift (1x1) -> ``layers`` Fourier layers ``v <- GELU(K v + W v)`` (the last without GELU), where
``K`` multiplies the lowest ``modes`` Fourier coefficients per axis by learned complex matrices
and ``W`` is a 1x1 convolution -> project (1x1 to 128 channels, GELU, 1x1 to ``out_channels``).
"""

from __future__ import annotations

import fractions
import itertools
import numbers
import string
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pdesuite.operators.models import GridOperator, check_grid_convention, grid_coordinates

__all__ = ["FNO", "SpectralConv", "fraction_padding_points"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
#: How far ``fraction * spacings`` may lie from an integer and still count as whole: a float
#: such as ``3 / 31`` times 62 is 6 only up to rounding.
_WHOLE_TOLERANCE = 1e-6
#: Largest denominator tried when suggesting resolutions at which a padding fraction is whole.
_MAX_DENOMINATOR = 4096
#: The fraction of the domain that ``padding=None`` pads, in whole points of the first grid.
AUTO_PADDING = 0.1
#: The keys of a config written before ``grid_convention`` existed (see ``FNO.from_config``).
_LEGACY_CONFIG_KEYS = frozenset({"in_channels", "out_channels", "ndim", "modes", "width", "layers",
                                 "padding", "grid", "projection_width"})


def _per_axis(value: int | Sequence[int], ndim: int, argument: str,
              minimum: int) -> tuple[int, ...]:
    values = (value,) * ndim if isinstance(value, int) else tuple(value)
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if len(values) != ndim or not ints:
        raise ValueError(f"{argument}: expected an int or {ndim} ints, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{argument}: every entry must be >= {minimum}, got {value!r}")
    return values


def _padding_entry(value: object, whole: object) -> int | float:
    """One axis of ``padding`` as a Python int (grid points) or float (fraction of the domain)."""
    # bool is an Integral, numpy's bool_ is not a Real: both are refused
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"padding: entries must be ints (grid points) or floats (fractions of the "
                         f"domain), got {value!r} in {whole!r}")
    if isinstance(value, numbers.Integral):
        if value < 0:
            raise ValueError(f"padding: a number of grid points must be >= 0, got {value!r}")
        return int(value)
    value = float(value)
    if not 0.0 <= value < 1.0:  # NaN fails both comparisons
        raise ValueError(f"padding: a fraction of the domain must be in [0, 1), got {value!r}")
    return value


def _padding_per_axis(value: object, ndim: int) -> tuple[int | float, ...]:
    """Validate ``padding``: per axis an int >= 0 (grid points) or a float in [0, 1) (fraction)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (numbers.Real, Sequence)):
        raise ValueError(f"padding: expected an int, a float or {ndim} of them, got {value!r}")
    values = [value] * ndim if isinstance(value, numbers.Real) else list(value)
    if len(values) != ndim:
        raise ValueError(f"padding: expected an int, a float or {ndim} of them, got {value!r}")
    return tuple(_padding_entry(v, value) for v in values)


def _domain_spacings(n: int, convention: str) -> int:
    """Grid spacings that the domain spans: ``n - 1`` on a node grid, ``n`` on a cell grid."""
    return n - 1 if convention == "node" else n


def fraction_padding_points(fraction: float | fractions.Fraction, n: int, convention: str,
                            axis: int = 0) -> int:
    """Points that pad an axis of ``n`` points so that the FFT period is ``(1 + fraction)`` domains.

    The FFT of ``N = n + p`` points of spacing ``h`` is periodic over ``N h``. The domain spans
    ``L = n - 1`` spacings on a node grid and ``L = n`` on a cell grid, so the period is
    ``1 + fraction`` times the domain when ``N = (1 + fraction) L``: ``p = fraction (n - 1) - 1``
    (node) or ``p = fraction n`` (cell). ``fraction L`` must be a whole number (a float within
    ``1e-6``; a ``Fraction`` exactly), and at least 1 on a node grid, or the padded period could
    not be the same physical length as at another resolution.

    Raises:
        ValueError: ``fraction L`` is not whole; the message names the axis, the resolution,
            the fraction and the convention, and suggests resolutions and fractions that work.
    """
    spacings = _domain_spacings(n, convention)
    extra = fraction * spacings
    whole = round(extra)
    if abs(extra - whole) <= _WHOLE_TOLERANCE and (convention == "cell" or whole >= 1):
        return whole - 1 if convention == "node" else whole
    raise ValueError(_inexact_padding_message(fraction, n, convention, axis))


def _auto_fraction(n: int, convention: str) -> fractions.Fraction:
    """The fraction that ``padding=None`` fixes on a first grid of ``n`` points: about
    :data:`AUTO_PADDING`, whole points, and on a node grid at least one spacing."""
    spacings = max(1, _domain_spacings(n, convention))
    whole = round(AUTO_PADDING * spacings)
    return fractions.Fraction(max(whole, 1) if convention == "node" else whole, spacings)


def _describe_fraction(fraction: float | fractions.Fraction) -> str:
    if isinstance(fraction, fractions.Fraction):
        return (f"{fraction.numerator}/{fraction.denominator} of the domain (padding=None, fixed "
                f"on the first grid the model ran on)")
    return f"{fraction!r} (a fraction of the domain)"


def _inexact_padding_message(fraction: float | fractions.Fraction, n: int, convention: str,
                             axis: int) -> str:
    spacings = _domain_spacings(n, convention)
    shift = 1 if convention == "node" else 0  # a node grid of L spacings has L + 1 points
    if convention == "node" and fraction == 0:
        return (f"FNO: padding 0.0 (a fraction of the domain) cannot be met on a node grid (axis "
                f"{axis}, {n} points): its FFT already spans one spacing more than the domain. "
                f"Pass padding=0, an int, for no padding, or a fraction of at least 1/{spacings}")
    head = (f"FNO: padding {_describe_fraction(fraction)} is not a whole number of grid points at "
            f"{n} points on axis {axis} ({convention} grid, a domain of {spacings} spacings: "
            f"{float(fraction)!r} x {spacings} = {float(fraction * spacings):.6g}), so the padded "
            f"period would not be the same physical length as at other resolutions. Use")
    options = []
    exact = fractions.Fraction(fraction).limit_denominator(_MAX_DENOMINATOR)
    if exact and abs(float(exact) - fraction) <= 1e-12:
        q = exact.denominator  # fraction * L is whole exactly when q divides L
        below = max(1, spacings // q)
        resolutions = [k * q + shift for k in (below, below + 1, below + 2)]
        listed = ", ".join(map(str, resolutions))
        options.append(f"a resolution where it is whole ({listed} points)")
    nearest = round(fraction * spacings)
    candidates = [k for k in (nearest - 1, nearest, nearest + 1) if 1 <= k < spacings]
    if candidates:
        shown = ", ".join(f"{k / spacings!r} = {k}/{spacings}" for k in candidates)
        options.append(f"a model built with a padding fraction that is whole here ({shown})")
    options.append("an int padding (that many points at every resolution, the period then "
                   "changing with the resolution)")
    if len(options) == 1:
        return f"{head} {options[0]}"
    return f"{head} {', '.join(options[:-1])} or {options[-1]}"


def _forget_padding_reference(module: "FNO", incompatible_keys: Any) -> None:
    module._padding_reference = None  # load_state_dict may have brought another reference


class SpectralConv(nn.Module):
    """Truncated Fourier multiplier: ``(K v)^ (k) = R(k) v^(k)`` for the kept modes, 0 elsewhere.

    The real FFT (``rfftn``) halves the last axis, so along it only the frequencies
    ``0 .. m_last - 1`` are kept. Along every other axis the positive frequencies
    ``0 .. m - 1`` and the negative ``-m .. -1`` are kept, which makes ``2**(ndim - 1)`` corner
    blocks of the spectrum, each with its own weights ``[C_in, C_out, *modes]`` (complex).
    Weights are stored as real tensors with a trailing axis of 2 (real, imaginary) and viewed
    as complex in ``forward``, so that optimizers, DDP and ``torch.load(weights_only=True)``
    only ever see real tensors. Parameters: ``2 * 2**(ndim-1) * C_in * C_out * prod(modes)``.

    A grid too coarse for ``modes`` keeps what it has (``min(m, n // 2)`` per non-last axis,
    ``min(m, n // 2 + 1)`` on the last), i.e. the same operator truncated further: evaluation
    below the training resolution works and drops the unresolvable frequencies.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: Sequence[int]) -> None:
        super().__init__()
        self.modes = tuple(modes)
        ndim = len(self.modes)
        corners = 2 ** (ndim - 1)
        # scale 1 / (C_in C_out) with uniform [0, 1) real and imaginary parts, as in the paper's
        # code
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(
            scale * torch.rand(corners, in_channels, out_channels, *self.modes, 2))
        letters = string.ascii_lowercase[-ndim:]  # spatial einsum letters, e.g. "yz" in 2D
        self._contraction = f"bi{letters},io{letters}->bo{letters}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.shape[2:]                                               # (n1, ..., nd)
        ndim = len(spatial)
        dims = tuple(range(2, 2 + ndim))
        weight = torch.view_as_complex(self.weight.to(torch.promote_types(x.dtype, torch.float32)))
        # weight: [corners, C_in, C_out, *modes], complex
        if x.dtype not in (torch.float32, torch.float64):
            x = x.float()  # under autocast: half-precision FFTs need power-of-2 sizes
        x_hat = torch.fft.rfftn(x, dim=dims)                 # [B, C_in, n1, ..., nd // 2 + 1]
        out_hat = x_hat.new_zeros(x.shape[0], weight.shape[2], *x_hat.shape[2:])  # [B, C_out, same]
        kept = [min(m, n // 2) for m, n in zip(self.modes[:-1], spatial[:-1])]
        kept.append(min(self.modes[-1], x_hat.shape[-1]))
        for corner, signs in enumerate(itertools.product((1, -1), repeat=ndim - 1)):
            spectrum_slices, weight_slices = [], []
            for sign, k, m in zip(signs, kept, self.modes):
                # negative corners store frequency -m + j at index j: keep the last k of them
                negative = slice(-k, None) if k else slice(0, 0)
                spectrum_slices.append(slice(0, k) if sign > 0 else negative)
                weight_slices.append(slice(0, k) if sign > 0 else slice(m - k, m))
            spectrum_slices.append(slice(0, kept[-1]))
            weight_slices.append(slice(0, kept[-1]))
            index = (slice(None), slice(None), *spectrum_slices)
            # [C_in, C_out, *kept] times [B, C_in, *kept] -> [B, C_out, *kept]
            block = weight[(corner, slice(None), slice(None), *weight_slices)]
            out_hat[index] = torch.einsum(self._contraction, x_hat[index], block)
        return torch.fft.irfftn(out_hat, s=spatial, dim=dims)  # [B, C_out, n1, ..., nd]


class FNO(GridOperator):
    """Fourier neural operator on ``[B, in_channels, *spatial]`` (1, 2 or 3 spatial axes).

    Args:
        in_channels: input fields (e.g. 1 for the Darcy coefficient). Default 1.
        out_channels: output fields. Default 1.
        ndim: spatial axes, 1, 2 or 3. Default 2.
        modes: Fourier modes kept per axis, an int or ``ndim`` ints. Default 12.
        width: channels of the Fourier layers. Default 32.
        layers: Fourier layers. Default 4.
        padding: room appended at the high end of each axis before the FFT and cropped after
            the last Fourier layer: None, an int, a float, or ``ndim`` ints and floats (one per
            axis). The FFT treats the (padded) grid as periodic; the pad lets a non-periodic
            solution (Darcy, zero Dirichlet) have ends that do not match.

            A float ``f`` in ``[0, 1)`` is a fraction of the domain: the padded FFT period is
            ``1 + f`` times the domain at every resolution, so that the learned weights act on
            the same physical frequencies wherever the model is evaluated (zero-shot
            super-resolution). On an axis of ``n`` points the domain spans ``L = n - 1``
            spacings (node grid) or ``L = n`` (cell grid), and the pad is ``f (n - 1) - 1``
            points (node; the FFT of a node grid already spans one spacing past the domain) or
            ``f n`` (cell). ``f L`` must be a whole number, and at least 1 on a node grid: at
            another resolution the forward pass raises a ValueError that names the axis, the
            resolution and the fraction, and suggests resolutions and fractions that work
            (see :func:`fraction_padding_points`). Rounding instead would make the padded
            period, and with it every learned frequency, differ between resolutions.

            None (default): such a fraction, fixed on the first grid the model runs on (its
            training grid): a tenth of its ``L`` spacings (:data:`AUTO_PADDING`; the paper's
            Darcy script pads 9 of 84), rounded to whole points, and at least one spacing on a
            node grid. The fraction is kept exactly, as ``(numerator, denominator)`` per
            axis in the int64 buffer ``padding_reference`` (``[ndim, 2]``, zeros until fixed;
            part of the state dict, so a checkpoint restores it). From ``s`` training points
            the model thus runs at ``2 s - 1`` nodes or ``2 s`` cells (the same domain at half
            the spacing), and refuses, as above, a grid where the fraction is not whole.

            An int is a number of grid points at every resolution (the paper's code: the padded
            period then shrinks on finer grids, and zero-shot evaluation acts on other
            frequencies); ``padding=0`` pads nothing (periodic problems). See
            :meth:`padding_points` and :meth:`padded_shape`.
        grid: append the coordinates of the grid points in ``[0, 1]`` as ``ndim`` extra input
            channels. Default True.
        grid_convention: where the ``n`` points of an axis lie in ``[0, 1]``, as a dataset file's
            ``grid_convention`` attribute records it: ``"node"`` (default; ``i / (n - 1)``, the
            pdesuite finite-difference families) or ``"cell"`` (spacing ``1 / n``: periodic
            grids ``i / n`` and cell centres, as neuraloperator's and PDEBench's data). It sets
            the coordinate channels (:func:`~pdesuite.operators.models.grid_coordinates`) and
            the domain length that a fraction ``padding`` refers to.
        projection_width: hidden channels of the projection. Default 128.

    The defaults are the paper's 2D Darcy setting. Parameter count (real scalars, a complex
    weight counted twice, as in the paper's code), with ``c = in_channels``, ``d = ndim``,
    ``w = width``, ``h = projection_width``, ``L = layers``, ``M = prod(modes)``::

        (c + d) w + w                       lift
        + L (2^d w^2 M  +  w^2 + w)          spectral weights (2^(d-1) corners x complex) + 1x1 path
        + w h + h + h out_channels + out_channels     projection

    For the defaults (c = 1, d = 2, M = 144) that is 2,368,001: the paper's "2.37M". The
    spectral weights are 99.6 % of it (2,359,296).

    Forward: ``[B, in_channels, *spatial] -> [B, out_channels, *spatial]`` at any resolution at
    which a fraction ``padding`` is whole (the spectral weights act on frequencies, not grid
    points), step by step:

    1. append the point coordinates (``grid``, by ``grid_convention``) and lift pointwise to
       ``width`` channels;
    2. zero-pad each axis at its high end by :meth:`padding_points` (with ``padding=None`` the
       first call fixes the fraction);
    3. ``layers`` Fourier layers ``v <- K v + W v``, GELU after all but the last;
    4. crop the padding, project pointwise (``width -> h -> out_channels``, GELU between).
    """

    name = "fno"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        ndim: int = 2,
        modes: int | Sequence[int] = 12,
        width: int = 32,
        layers: int = 4,
        padding: int | float | Sequence[int | float] | None = None,
        grid: bool = True,
        projection_width: int = 128,
        grid_convention: str = "node",
    ) -> None:
        super().__init__()
        if ndim not in _CONV:
            raise ValueError(f"ndim: expected 1, 2 or 3, got {ndim!r}")
        for argument, value in (("in_channels", in_channels), ("out_channels", out_channels),
                                ("width", width), ("layers", layers),
                                ("projection_width", projection_width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{argument}: expected a positive int, got {value!r}")
        modes_t = _per_axis(modes, ndim, "modes", 1)
        padding_t = None if padding is None else _padding_per_axis(padding, ndim)
        check_grid_convention(grid_convention)
        # the validated form (Python ints and floats) keeps to_config JSON-friendly; a scalar
        # stays a scalar, None stays None
        if padding_t is None or isinstance(padding, numbers.Real):
            stored_padding = padding if padding_t is None else padding_t[0]
        else:
            stored_padding = list(padding_t)
        self._store_config(in_channels=in_channels, out_channels=out_channels, ndim=ndim,
                           modes=modes, width=width, layers=layers, padding=stored_padding,
                           grid=bool(grid), projection_width=projection_width,
                           grid_convention=grid_convention)
        self.in_channels, self.out_channels, self.ndim = in_channels, out_channels, ndim
        self.grid, self.padding, self.grid_convention = bool(grid), padding_t, grid_convention
        if padding_t is None:
            # the fraction per axis, (numerator, denominator); (0, 0) until the first forward
            self.register_buffer("padding_reference", torch.zeros(ndim, 2, dtype=torch.int64))
            self.register_load_state_dict_post_hook(_forget_padding_reference)
        self._padding_reference: tuple[tuple[int, int], ...] | None = None  # the buffer, read once
        self._legacy_rounding = False  # see from_config
        conv = _CONV[ndim]
        self.lift = conv(in_channels + (ndim if self.grid else 0), width, 1)
        self.spectral = nn.ModuleList(SpectralConv(width, width, modes_t) for _ in range(layers))
        self.pointwise = nn.ModuleList(conv(width, width, 1) for _ in range(layers))
        self.project_hidden = conv(width, projection_width, 1)
        self.project_out = conv(projection_width, out_channels, 1)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "FNO":
        """Rebuild a model (fresh weights) from :meth:`to_config` output.

        A saved config written before ``grid_convention`` existed (all the other arguments,
        none of it) rebuilds the model it was trained as: node coordinates, and a float ``padding``
        rounded on every grid to ``round(f (n - 1))`` points (Python's ``round``) rather than
        refused; its :meth:`to_config` keeps that form, so that its checkpoints still match.
        """
        model = super().from_config(config)
        if set(config) - {"name"} == _LEGACY_CONFIG_KEYS and model.padding is not None:
            model._legacy_rounding = True
            del model._config["grid_convention"]
        return model

    def padding_points(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """Grid points appended per axis for an input of ``spatial`` points.

        An int entry of ``padding`` is used as is; a fraction ``f`` gives ``f (n - 1) - 1``
        points on a node grid and ``f n`` on a cell grid (:func:`fraction_padding_points`),
        which must be whole. Example: ``padding=0.125`` gives 3 points at 33 nodes and 7 at
        65; 4 points at 32 cells and 8 at 64. With ``padding=None`` the fraction is the one
        fixed on the first grid the model ran on, or, before that, the one ``spatial`` would
        fix (this query fixes nothing).

        Raises:
            ValueError: a fraction that is not a whole number of points at this resolution.
        """
        if len(spatial) != self.ndim:
            raise ValueError(f"spatial: expected {self.ndim} sizes, got {tuple(spatial)!r}")
        fractions_per_axis = self._padding_fractions(spatial)
        if self._legacy_rounding:
            return tuple(p if isinstance(p, int) else round(p * (n - 1))
                         for p, n in zip(fractions_per_axis, spatial))
        return tuple(p if isinstance(p, int)
                     else fraction_padding_points(p, int(n), self.grid_convention, axis)
                     for axis, (p, n) in enumerate(zip(fractions_per_axis, spatial)))

    def _padding_fractions(self, spatial: Sequence[int],
                           ) -> tuple[int | float | fractions.Fraction, ...]:
        """``padding`` per axis, with ``None`` resolved to its fixed (or would-be) fraction."""
        if self.padding is not None:
            return self.padding
        if self._padding_reference is None:
            stored = self.padding_reference.tolist()
            self._padding_reference = tuple((int(a), int(b)) for a, b in stored)
        return tuple(fractions.Fraction(a, b) if b else _auto_fraction(int(n), self.grid_convention)
                     for (a, b), n in zip(self._padding_reference, spatial))

    def _fix_padding(self, spatial: Sequence[int]) -> None:
        """Record the fraction of ``padding=None`` on its first grid (see the class docstring)."""
        if self.padding is not None:
            return
        fractions_now = self._padding_fractions(spatial)  # also reads the buffer
        if all(b for _, b in self._padding_reference):
            return
        reference = tuple((f.numerator, f.denominator) for f in fractions_now)
        with torch.no_grad():
            self.padding_reference.copy_(torch.tensor(reference, dtype=torch.int64))
        self._padding_reference = reference

    def padded_shape(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """Sizes the Fourier layers work on: ``spatial`` plus :meth:`padding_points`."""
        return tuple(n + p for n, p in zip(spatial, self.padding_points(spatial)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, *spatial] -> [B, out_channels, *spatial]``.

        S = spatial, P = padded, in the shape comments.
        """
        self._check_input(x)                                                # x: [B, C_in, *S]
        spatial = x.shape[2:]
        points = self.padding_points(spatial)  # first: a resolution it refuses costs nothing
        self._fix_padding(spatial)
        if self.grid:
            coordinates = grid_coordinates(x, self.ndim, self.grid_convention)  # [B, d, *S]
            x = torch.cat([x, coordinates], dim=1)                          # [B, C_in + d, *S]
        x = self.lift(x)                                                    # [B, w, *S]
        pad = [p for axis_pad in reversed(points) for p in (0, axis_pad)]   # F.pad: last axis first
        x = F.pad(x, pad)                                    # [B, w, *P], P = S + points
        last = len(self.spectral) - 1
        for i, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise)):
            x = spectral(x).to(x.dtype) + pointwise(x)                      # [B, w, *P]
            if i < last:
                x = F.gelu(x)                                               # [B, w, *P]
        x = x[(slice(None), slice(None), *(slice(0, n) for n in spatial))]  # [B, w, *S]
        x = F.gelu(self.project_hidden(x))                                  # [B, h, *S]
        return self.project_out(x)                                          # [B, C_out, *S]
