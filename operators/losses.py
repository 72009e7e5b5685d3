"""Losses for operator learning on grids: relative (or absolute) Lp and H1 norms.

Tensors are ``[B, C, *spatial]`` (``B`` samples, ``C`` channels, 1 to 3 spatial axes). A norm is
taken per sample over every non-batch axis, channels included, and then reduced over the batch
(``reduction="mean" | "sum" | "none"``).

Discrete norms are quadrature sums with equal weights: ``‖u‖_p = (vol · mean |u|^p)^(1/p)``, where
``vol`` is the volume of the domain (1 for :class:`LpLoss`, which knows no domain). A relative
error ``‖pred − target‖ / ‖target‖`` does not depend on the weights at all, and an absolute one
stays comparable across resolutions.

Spatial derivatives for :class:`H1Loss` come from one of two rules, per axis:

- non-periodic (the default): second-order finite differences, central inside the domain and
  one-sided (three points) at the two boundary nodes, as ``numpy.gradient(..., edge_order=2)``.
  The grid is node-centred and includes both ends: spacing ``L / (n − 1)``. This is the rule for
  Darcy-like data with Dirichlet or other non-periodic boundaries.
- periodic: spectral differentiation by FFT. The grid samples the period ``[0, L)`` with ``n``
  points (the right end left out): spacing ``L / n``. On non-periodic data the periodic
  extension jumps at the boundary, and the FFT derivative is wrong everywhere (Gibbs
  oscillations), not only near the edge.

These are the grid conventions of :class:`pdesuite.discretization.Grid` (``centering="node"``)
and ``Grid.periodic``.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Sequence, Union

import torch
from torch import nn

__all__ = ["LpLoss", "H1Loss", "spatial_gradient"]

_REDUCTIONS = ("mean", "sum", "none")

Domain = Union[float, Sequence[float], None]
Periodic = Union[bool, Sequence[bool]]


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _check_pair(pred: torch.Tensor, target: torch.Tensor, min_spatial: int = 0) -> None:
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"pred and target: expected torch tensors, got {type(pred).__name__} and "
            f"{type(target).__name__}"
        )
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    if pred.ndim < 2 + min_spatial:
        raise ValueError(
            f"pred: expected [B, C, *spatial] with at least {min_spatial} spatial axes, "
            f"got shape {tuple(pred.shape)}"
        )


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def _as_float(t: torch.Tensor) -> torch.Tensor:
    # Norms of half-precision outputs (under AMP) overflow and lose digits: measure in float32
    # at least, and keep float64 when that is what came in.
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


class LpLoss(nn.Module):
    """Relative or absolute Lp error per sample, reduced over the batch.

    Args:
        p: the exponent, ``p > 0`` (``float("inf")`` gives the max norm). Default 2.
        relative: divide by the norm of the target (default ``True``).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (a ``[B]`` tensor).
        eps: a floor on the target norm, so that an all-zero target gives a large finite
            relative error rather than inf/NaN. Default ``1e-12``.

    Call with ``pred`` and ``target`` of the same shape ``[B, C, *spatial]``. The absolute error
    is ``(mean |pred − target|^p)^(1/p)`` over all non-batch entries, the discrete norm on a
    unit-volume domain.
    """

    def __init__(self, p: float = 2, relative: bool = True, reduction: str = "mean",
                 eps: float = 1e-12) -> None:
        super().__init__()
        if not isinstance(p, Real) or isinstance(p, bool) or not p > 0:
            raise ValueError(f"p: expected a positive number, got {p!r}")
        self.p = float(p)
        self.relative = bool(relative)
        self.reduction = _check_reduction(reduction)
        self.eps = float(eps)

    def _norm(self, t: torch.Tensor) -> torch.Tensor:
        # vector_norm has a zero subgradient at 0, where pow(1/p) would give NaN gradients for
        # an exact prediction.
        flat = t.reshape(t.shape[0], -1)
        norm = torch.linalg.vector_norm(flat, ord=self.p, dim=1)
        if math.isinf(self.p):
            return norm
        return norm / flat.shape[1] ** (1.0 / self.p)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(pred, target)
        pred, target = _as_float(pred), _as_float(target)
        error = self._norm(pred - target)
        if self.relative:
            error = error / self._norm(target).clamp_min(self.eps)
        return _reduce(error, self.reduction)

    def extra_repr(self) -> str:
        return f"p={self.p}, relative={self.relative}, reduction={self.reduction!r}"


def _per_axis(value, ndim: int, name: str, kind: type):
    if isinstance(value, (list, tuple)):
        if len(value) != ndim:
            raise ValueError(
                f"{name}: expected one value per spatial axis ({ndim}), got {len(value)}"
            )
        return tuple(kind(v) for v in value)
    return (kind(value),) * ndim


def spatial_gradient(u: torch.Tensor, domain: Domain = None,
                     periodic: Periodic = False) -> list[torch.Tensor]:
    """Partial derivatives of ``u`` along each spatial axis.

    Args:
        u: ``[B, C, *spatial]`` with 1 to 3 spatial axes.
        domain: length of the domain along each spatial axis (one number for all axes, or one
            per axis). Default 1 on every axis.
        periodic: per axis (or one bool for all). ``False``: second-order finite differences on
            a node grid with spacing ``L / (n − 1)`` (needs ``n >= 3``). ``True``: FFT
            derivative on a periodic grid with spacing ``L / n``; the Nyquist mode of an even
            ``n`` is dropped, as its derivative is not real.

    Returns:
        one tensor per spatial axis, each shaped like ``u`` (``∂u/∂x_d`` in units of
        ``u`` per unit length).
    """
    if u.ndim < 3 or u.ndim > 5:
        raise ValueError(f"u: expected [B, C, *spatial] with 1 to 3 spatial axes, got shape "
                         f"{tuple(u.shape)}")
    ndim = u.ndim - 2
    lengths = _per_axis(1.0 if domain is None else domain, ndim, "domain", float)
    if any(not (length > 0 and math.isfinite(length)) for length in lengths):
        raise ValueError(f"domain: expected positive finite lengths, got {lengths}")
    periodic_axes = _per_axis(periodic, ndim, "periodic", bool)
    u = _as_float(u)
    derivatives = []
    for axis, (length, is_periodic) in enumerate(zip(lengths, periodic_axes)):
        dim = axis + 2
        n = u.shape[dim]
        if is_periodic:
            derivatives.append(_fft_derivative(u, dim, n, length))
        else:
            if n < 3:
                raise ValueError(
                    f"u: non-periodic derivatives need at least 3 points per axis, axis {axis} "
                    f"has {n}"
                )
            spacing = length / (n - 1)
            (grad,) = torch.gradient(u, spacing=spacing, dim=dim, edge_order=2)
            derivatives.append(grad)
    return derivatives


def _fft_derivative(u: torch.Tensor, dim: int, n: int, length: float) -> torch.Tensor:
    wavenumbers = torch.fft.rfftfreq(n, d=length / n, device=u.device, dtype=u.dtype) * (
        2 * math.pi
    )
    if n % 2 == 0:
        wavenumbers[-1] = 0.0
    shape = [1] * u.ndim
    shape[dim] = wavenumbers.numel()
    spectrum = torch.fft.rfft(u, dim=dim) * (1j * wavenumbers.reshape(shape))
    return torch.fft.irfft(spectrum, n=n, dim=dim)


class H1Loss(nn.Module):
    """Relative or absolute H1 error per sample, reduced over the batch.

    ``‖e‖²_H1 = vol · mean(|e|² + Σ_d |∂_d e|²)``, summed over channels, with the derivatives of
    :func:`spatial_gradient`. The relative error divides by ``‖target‖_H1``.

    Args:
        relative: default ``True``.
        periodic: ``False`` (default; finite differences, right for Darcy-like data) or
            ``True`` (FFT derivatives, only for periodic data); one bool or one per axis.
        domain: domain length per spatial axis (or one number for all). Default 1.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        eps: floor on the target norm of a relative error. Default ``1e-12``.
    """

    def __init__(self, relative: bool = True, periodic: Periodic = False,
                 domain: Domain = None, reduction: str = "mean", eps: float = 1e-12) -> None:
        super().__init__()
        self.relative = bool(relative)
        self.periodic = periodic if isinstance(periodic, bool) else tuple(bool(p) for p in periodic)
        self.domain = domain if domain is None or isinstance(domain, Real) else tuple(
            float(d) for d in domain)
        self.reduction = _check_reduction(reduction)
        self.eps = float(eps)

    def _norm(self, t: torch.Tensor) -> torch.Tensor:
        ndim = t.ndim - 2
        lengths = _per_axis(1.0 if self.domain is None else self.domain, ndim, "domain", float)
        volume = math.prod(lengths)
        batch = t.shape[0]
        terms = [t] + spatial_gradient(t, self.domain, self.periodic)
        stacked = torch.cat([term.reshape(batch, -1) for term in terms], dim=1)
        # Every term has the same number of entries, so the sum of the means is the sum of all
        # squares over that count; vector_norm keeps the gradient finite at an exact match.
        points = t[0].numel()
        return torch.linalg.vector_norm(stacked, dim=1) * math.sqrt(volume / points)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(pred, target, min_spatial=1)
        pred, target = _as_float(pred), _as_float(target)
        error = self._norm(pred - target)
        if self.relative:
            error = error / self._norm(target).clamp_min(self.eps)
        return _reduce(error, self.reduction)

    def extra_repr(self) -> str:
        return (f"relative={self.relative}, periodic={self.periodic}, domain={self.domain}, "
                f"reduction={self.reduction!r}")
