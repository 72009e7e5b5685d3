"""Gaussian random fields on uniform grids, by spectral (Karhunen–Loève) synthesis.

A field ``g`` with covariance ``σ² (−Δ + τ² I)^(−α)`` is the series

    g(x) = Σ_k σ (λ_k + τ²)^(−α/2) ξ_k φ_k(x),    ξ_k ~ N(0, 1) independent,

over the L²-orthonormal eigenfunctions ``φ_k`` of ``−Δ`` on the unit box ``[0, 1]^d`` with
eigenvalues ``λ_k``. The constant mode is dropped (its coefficient is set to zero), as in the
generators of FNO and SKR, so every sample has mean zero. The default amplitude is
``σ = τ^(0.5 (2α − d))``, which makes the variance of the smooth part independent of ``τ``
in the way those generators do. Three boundary conditions choose the eigenfunctions:

* ``periodic=True``: Fourier modes ``e^{2πi k·x}``, ``λ_k = 4π²|k|²``, sampled on the points
  ``x_j = j / n`` (the periodic grid of ``n`` distinct points per axis). Synthesised by
  filtering white noise with real FFTs, which gives exactly the covariance above on the grid.
  (FNO's own periodic generator draws complex coefficients of size ``√2 σ`` and keeps the real
  part, so its fields are ``√2`` times larger in distribution; pass ``sigma=√2·τ^(α − d/2)`` to
  reproduce that amplitude.)
* ``periodic=False`` (default): cosine modes ``∏ √2 cos(π k_d x_d)`` (the Neumann
  eigenfunctions), ``λ_k = π²|k|²``, sampled at the cell centres ``x_j = (j + ½) / n``. This is
  the expansion of FNO's Darcy generator (MATLAB ``idct2``), evaluated here with
  ``scipy.fft.idctn`` (orthonormal DCT-III). The field does not vanish on the boundary.
* ``periodic=False, zero_boundary=True``: sine modes ``∏ √2 sin(π k_d x_d)`` (the Dirichlet
  eigenfunctions), ``λ_k = π²|k|²``, sampled at the nodes ``x_j = j / (n − 1)``, so the field
  is exactly zero on the first and last node of every axis. Evaluated with
  ``scipy.fft.idstn`` (orthonormal DST-I); ``n >= 3`` per axis. On a node grid these sine modes
  are also eigenvectors of the 5-point Laplacian.

Fields are dimensionless. Everything is vectorised over samples.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np
import scipy.fft

from pdesuite.discretization.grid import check_shape

__all__ = ["default_sigma", "gaussian_random_field", "grf_spectrum"]


def default_sigma(alpha: float, tau: float, ndim: int) -> float:
    """The amplitude ``σ = τ^(0.5 (2α − d))`` of the FNO/SKR generators."""
    return float(tau) ** (0.5 * (2.0 * float(alpha) - ndim))


def gaussian_random_field(
    shape: int | Sequence[int],
    alpha: float,
    tau: float,
    rng: np.random.Generator,
    sigma: float | None = None,
    periodic: bool = False,
    zero_boundary: bool = False,
    n_samples: int | None = None,
) -> np.ndarray:
    """Samples of a mean-zero Gaussian field with covariance ``σ² (−Δ + τ² I)^(−α)`` on
    ``[0, 1]^d``.

    Args:
        shape: grid points per axis, an int (1D) or 1 to 3 ints, each >= 2 (>= 3 with
            ``zero_boundary``).
        alpha: smoothness exponent ``α > 0``; the power spectrum falls off like ``|k|^(−2α)``.
            Pointwise variance is finite in the continuum limit for ``α > d/2``.
        tau: inverse length scale ``τ > 0``.
        rng: the generator every random number comes from (one ``standard_normal`` call).
        sigma: amplitude ``σ > 0``; default ``τ^(0.5 (2α − d))``.
        periodic: Fourier modes on the torus (points ``j/n``) instead of the non-periodic
            cosine modes (cell centres ``(j+½)/n``); see the module docstring.
        zero_boundary: sine modes on the nodes ``j/(n−1)``, zero on the boundary; only with
            ``periodic=False``.
        n_samples: None for one field ``[*shape]``; an int for ``[n_samples, *shape]``.

    Returns:
        float64 array ``[*shape]`` or ``[n_samples, *shape]``; each sample has grid mean zero
        (periodic and cosine cases; exactly, up to round-off).
    """
    shape_t = check_shape(shape, minimum=3 if zero_boundary else 2, what="a random field")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if zero_boundary and periodic:
        raise ValueError(
            "zero_boundary: a periodic field has no boundary; use periodic=False with "
            "zero_boundary=True"
        )
    batch = _check_samples(n_samples)
    amplitude = _spectral_amplitude(shape_t, alpha, tau, sigma, periodic, zero_boundary)
    ndim = len(shape_t)
    axes = tuple(range(1, ndim + 1))
    count = 1 if batch is None else batch

    if periodic:
        # White noise filtered by the square root of the spectrum: E|FFT(w)_k|² = N, so the
        # factor √N turns the unnormalised inverse FFT into the KL series with unit ξ.
        noise = rng.standard_normal((count,) + shape_t)
        spectrum = scipy.fft.rfftn(noise, axes=axes)
        spectrum *= amplitude
        fields = scipy.fft.irfftn(spectrum, s=shape_t, axes=axes) * np.sqrt(np.prod(shape_t))
    elif zero_boundary:
        interior = tuple(n - 2 for n in shape_t)
        coefficients = rng.standard_normal((count,) + interior) * amplitude
        fields = np.zeros((count,) + shape_t)
        # orthonormal DST-I of length m is √(2/(m+1)) Σ a_k sin(π k j/(m+1)); m+1 = n−1 per axis
        scale = np.sqrt(np.prod([n - 1 for n in shape_t]))
        fields[(slice(None),) + (slice(1, -1),) * ndim] = (
            scipy.fft.idstn(coefficients, type=1, axes=axes, norm="ortho") * scale
        )
    else:
        coefficients = rng.standard_normal((count,) + shape_t) * amplitude
        # orthonormal DCT-III times √n per axis is Σ a_k √2 cos(π k (j+½)/n) (and a_0 for k=0)
        fields = scipy.fft.idctn(coefficients, type=2, axes=axes, norm="ortho") * np.sqrt(
            np.prod(shape_t)
        )
    return fields[0] if batch is None else fields


def grf_spectrum(
    shape: int | Sequence[int],
    alpha: float,
    tau: float,
    sigma: float | None = None,
    periodic: bool = False,
    zero_boundary: bool = False,
) -> np.ndarray:
    """The variance ``σ² (λ_k + τ²)^(−α)`` of each KL coefficient, 0 for the constant mode.

    Shape: ``[*shape]`` (cosine modes ``k_d = 0..n_d−1``), ``[n_1, ..., n_d//2 + 1]`` (periodic,
    the half spectrum of ``numpy.fft.rfftn``), or ``[n_d − 2, ...]`` (sine modes
    ``k_d = 1..n_d−2``).
    With ``N = ∏ n_d`` points, a sample ``u`` satisfies, in expectation over samples:
    ``|numpy.fft.rfftn(u)|² = N² ·`` this (periodic), ``scipy.fft.dctn(u, norm="ortho")² = N ·``
    this (cosine), and ``scipy.fft.dstn(u_interior, type=1, norm="ortho")² = ∏(n_d − 1) ·`` this
    (sine). Useful to check samples against their spectrum.
    """
    shape_t = check_shape(shape, minimum=3 if zero_boundary else 2, what="a random field")
    return _spectral_amplitude(shape_t, alpha, tau, sigma, periodic, zero_boundary) ** 2


def _spectral_amplitude(
    shape: tuple[int, ...], alpha, tau, sigma, periodic: bool, zero_boundary: bool
) -> np.ndarray:
    """``σ (λ_k + τ²)^(−α/2)`` on the coefficient grid of the chosen expansion; 0 at ``k = 0``."""
    alpha = _check_positive(alpha, "alpha")
    tau = _check_positive(tau, "tau")
    ndim = len(shape)
    sigma = default_sigma(alpha, tau, ndim) if sigma is None else _check_positive(sigma, "sigma")
    if periodic:
        freqs = [np.fft.fftfreq(n, d=1.0 / n) for n in shape[:-1]] + [
            np.fft.rfftfreq(shape[-1], d=1.0 / shape[-1])
        ]
        factor = 4.0 * np.pi**2
    elif zero_boundary:
        freqs = [np.arange(1, n - 1, dtype=float) for n in shape]
        factor = np.pi**2
    else:
        freqs = [np.arange(n, dtype=float) for n in shape]
        factor = np.pi**2
    grids = np.meshgrid(*freqs, indexing="ij")
    k_squared = sum(g * g for g in grids)
    amplitude = sigma * (factor * k_squared + tau * tau) ** (-alpha / 2.0)
    if not zero_boundary:
        amplitude[(0,) * ndim] = 0.0
    return amplitude


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value}")
    return value


def _check_samples(n_samples) -> int | None:
    if n_samples is None:
        return None
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise ValueError(f"n_samples: expected None or an int >= 1, got {n_samples!r}")
    return int(n_samples)
