"""Certificates for Koopman spectra from snapshot data (ResDMD; Colbrook & Townsend).

All functions take the lifted snapshot pairs ``Z_X``, ``Z_Y`` ``[m, n]`` (``Z_Y[k]`` the lift of
the state one step after ``Z_X[k]``) and quadrature weights ``w`` ``[m]`` (default uniform,
``1/m``), so that ``‖g‖² ≈ Σ_k w_k |g(x_k)|²`` for an observable ``g = Z c``.

- :func:`residuals`: ``res(λ, v) = ‖√W (Z_Y − λ Z_X) v‖ / ‖√W Z_X v‖`` for each eigenpair.
- :func:`pseudospectrum`: ``τ(z) = σ_min(C − z Q)`` on a grid, where ``√W Z_X = Q R`` and
  ``C = √W Z_Y R⁻¹``: the smallest residual of any observable in the span at ``z``. It is
  computed from a singular value decomposition, never from square roots of eigenvalues
  (which return NaN where ``τ`` vanishes, at true eigenvalues). For a normal operator in an
  orthonormal basis it is the distance to the spectrum.
- :func:`verified_spectrum`: the procedure of "Limits and Powers of Koopman Learning"
  (Colbrook, Mezić, Stepanenko): the grid points that minimise ``τ`` over the disc of radius
  ``factor·τ(z)`` (default 5) around themselves, with ``max τ`` over them as the error bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.linalg

from pdesuite.dynamics.koopman._checks import check_float

__all__ = ["VerifiedSpectrum", "pseudospectrum", "quadrature_weights", "residuals",
           "verified_spectrum"]

# Entries of the stacked matrices one batched SVD handles at once (complex128: 64 MiB).
_SVD_BATCH_ENTRIES = 4_000_000
# Pairs of grid points one distance block of the verified-spectrum search holds.
_DISTANCE_BLOCK = 4_000_000


def quadrature_weights(weights: Optional[np.ndarray], m: int) -> np.ndarray:
    """Weights ``[m]``: the given ones (finite, >= 0, not all zero) or uniform ``1/m``."""
    if weights is None:
        return np.full(m, 1.0 / m)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (m,):
        raise ValueError(f"weights: expected shape ({m},), got {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
        raise ValueError("weights: must be finite, >= 0 and not all zero")
    return weights


def residuals(Z_X: np.ndarray, Z_Y: np.ndarray, eigenvalues: np.ndarray,
              eigenvectors: np.ndarray, weights: Optional[np.ndarray] = None) -> np.ndarray:
    """ResDMD residual of each eigenpair ``(λ_j, v_j)``, float ``[r]``.

    Args:
        Z_X, Z_Y: lifted pairs ``[m, n]``.
        eigenvalues: ``[r]``; eigenvectors: ``[n, r]`` (column ``j`` belongs to ``λ_j``).
        weights: quadrature weights ``[m]`` (default uniform).

    Returns:
        ``‖√W (Z_Y − λ_j Z_X) v_j‖ / ‖√W Z_X v_j‖``; inf where ``Z_X v_j`` vanishes on the data.
    """
    root = np.sqrt(quadrature_weights(weights, len(Z_X)))[:, None]
    before = (root * Z_X) @ eigenvectors  # [m, r]
    after = (root * Z_Y) @ eigenvectors
    numerator = np.linalg.norm(after - before * eigenvalues[None, :], axis=0)
    denominator = np.linalg.norm(before, axis=0)
    return np.divide(numerator, denominator, out=np.full(len(eigenvalues), np.inf),
                     where=denominator > 0)


def _compressed_pencil(Z_X: np.ndarray, Z_Y: np.ndarray,
                       weights: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(R_Q, R_C)``, small matrices with ``σ(C − zQ) = σ(R_C − z R_Q)`` for every ``z``."""
    root = np.sqrt(quadrature_weights(weights, len(Z_X)))[:, None]
    Q, R = np.linalg.qr(root * Z_X)
    diagonal = np.abs(np.diag(R))
    if diagonal.size == 0 or diagonal.min() <= 1e-13 * diagonal.max():
        raise ValueError("Z_X: the weighted lifted data are rank deficient; reduce the "
                         "dictionary or truncate its rank before certifying")
    C = scipy.linalg.solve_triangular(R, (root * Z_Y).T, trans="T", lower=False).T  # √W Z_Y R⁻¹
    n = Q.shape[1]
    # One QR of [Q, C] turns the [m, n] pencil into a [≤2n, n] one with the same singular values.
    _, stacked = np.linalg.qr(np.concatenate([Q, C], axis=1))
    return stacked[:, :n], stacked[:, n:]


def pseudospectrum(Z_X: np.ndarray, Z_Y: np.ndarray, grid: np.ndarray,
                   weights: Optional[np.ndarray] = None) -> np.ndarray:
    """``τ(z) = σ_min(C − z Q)`` at every point of ``grid``.

    Args:
        Z_X, Z_Y: lifted pairs ``[m, n]``, ``√W Z_X`` of full column rank.
        grid: complex points, any shape (e.g. ``x[None, :] + 1j * y[:, None]``).
        weights: quadrature weights ``[m]`` (default uniform).

    Returns:
        float ``τ``, the shape of ``grid``; the ε-pseudospectrum is ``{z : τ(z) < ε}``.
    """
    points = np.asarray(grid, dtype=np.complex128)
    flat = points.reshape(-1)
    R_Q, R_C = _compressed_pencil(Z_X, Z_Y, weights)
    chunk = max(1, _SVD_BATCH_ENTRIES // R_Q.size)
    tau = np.empty(flat.size)
    for start in range(0, flat.size, chunk):
        z = flat[start:start + chunk, None, None]
        pencils = R_C[None] - z * R_Q[None]  # [chunk, k, n]
        tau[start:start + chunk] = np.linalg.svd(pencils, compute_uv=False)[:, -1]
    return tau.reshape(points.shape)


@dataclass(frozen=True)
class VerifiedSpectrum:
    """The output of :func:`verified_spectrum`.

    Attributes:
        points: complex ``[p]``, the grid points kept (approximate spectrum).
        tau: ``[p]``, ``τ`` at those points; each lies within ``tau`` of the spectrum.
        bound: ``max(tau)``, the error bound reported for the whole set (0 if nothing kept).
        grid_tau: ``τ`` on the whole grid (the shape of the grid), after the measure-preserving
            lower bound when it was asked for.
    """

    points: np.ndarray
    tau: np.ndarray
    bound: float
    grid_tau: np.ndarray


def verified_spectrum(Z_X: np.ndarray, Z_Y: np.ndarray, grid: np.ndarray,
                      weights: Optional[np.ndarray] = None, measure_preserving: bool = False,
                      factor: float = 5.0) -> VerifiedSpectrum:
    """Spectrum with an error bound, from ``τ`` on a grid.

    A grid point ``z`` is kept when no grid point within distance ``factor·τ(z)`` has a smaller
    ``τ``. For a measure-preserving system the Koopman operator is an isometry, whose
    ``‖(K − z) g‖ >= |1 − |z|| ‖g‖``: with ``measure_preserving=True``, ``τ`` is first raised
    to that lower bound. The grid must cover the region of interest: a point on its edge may be
    kept because the search cannot look beyond it.

    Args:
        Z_X, Z_Y, weights: as in :func:`pseudospectrum`.
        grid: complex points, any shape.
        measure_preserving: apply the lower bound ``|1 − |z||`` (default False).
        factor: radius of the search disc in units of ``τ(z)`` (default 5).
    """
    factor = check_float(factor, "factor", minimum=0.0, allow_minimum=False)
    points = np.asarray(grid, dtype=np.complex128)
    tau = pseudospectrum(Z_X, Z_Y, points, weights)
    if measure_preserving:
        tau = np.maximum(tau, np.abs(1.0 - np.abs(points)))
    flat_points = points.reshape(-1)
    flat_tau = tau.reshape(-1)
    kept = np.zeros(flat_points.size, dtype=bool)
    block = max(1, _DISTANCE_BLOCK // max(flat_points.size, 1))
    for start in range(0, flat_points.size, block):
        here = flat_points[start:start + block, None]
        radius = factor * flat_tau[start:start + block, None]
        distance = np.abs(flat_points[None, :] - here)  # [block, g]
        beaten = (distance <= radius) & (flat_tau[None, :] < flat_tau[start:start + block, None])
        kept[start:start + block] = ~beaten.any(axis=1)
    kept_tau = flat_tau[kept]
    bound = float(kept_tau.max()) if kept_tau.size else 0.0
    return VerifiedSpectrum(flat_points[kept], kept_tau, bound, tau)
