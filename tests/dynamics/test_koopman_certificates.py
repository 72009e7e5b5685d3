"""ResDMD residuals, pseudospectra and the verified spectrum against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from pdesuite.dynamics.koopman import (
    EDMD,
    RadialBasis,
    SnapshotPairs,
    pseudospectrum,
    verified_spectrum,
)


def _normal_matrix(seed=0):
    """A real normal 5x5 matrix O D Oᵀ with eigenvalues 0.9e^{±0.5i}, 0.5e^{±2i}, −0.3."""
    rng = np.random.default_rng(seed)
    blocks = np.zeros((5, 5))
    for start, (radius, angle) in zip((0, 2), ((0.9, 0.5), (0.5, 2.0))):
        c, s = radius * np.cos(angle), radius * np.sin(angle)
        blocks[start:start + 2, start:start + 2] = [[c, -s], [s, c]]
    blocks[4, 4] = -0.3
    orthogonal, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    eigenvalues = np.array([0.9 * np.exp(0.5j), 0.9 * np.exp(-0.5j), 0.5 * np.exp(2j),
                            0.5 * np.exp(-2j), -0.3])
    return orthogonal @ blocks @ orthogonal.T, eigenvalues


def _orthonormal_data(N, m=40, seed=1):
    """``Z_X`` with ``Z_Xᵀ Z_X / m = I`` and ``Z_Y = Z_X N``: an orthonormal basis in L²(ω)."""
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((m, N.shape[0])))
    Z_X = np.sqrt(m) * Q
    return Z_X, Z_X @ N


def _grid(n=41, half=1.2):
    axis = np.linspace(-half, half, n)
    return axis[None, :] + 1j * axis[:, None]


def test_pseudospectrum_of_a_normal_matrix_is_the_distance_to_its_spectrum():
    N, eigenvalues = _normal_matrix()
    Z_X, Z_Y = _orthonormal_data(N)
    grid = _grid()
    distance = np.abs(grid[..., None] - eigenvalues).min(axis=-1)
    np.testing.assert_allclose(pseudospectrum(Z_X, Z_Y, grid), distance, atol=1e-12)
    at_eigenvalues = pseudospectrum(Z_X, Z_Y, eigenvalues)
    assert np.all(np.isfinite(at_eigenvalues)) and at_eigenvalues.max() < 1e-13
    model = EDMD().fit(SnapshotPairs.from_arrays(Z_X, Z_Y))  # the estimator's own data
    np.testing.assert_allclose(model.pseudospectrum(grid), distance, atol=1e-12)


def test_pseudospectrum_uses_the_quadrature_weights():
    N, eigenvalues = _normal_matrix()
    Z_X, Z_Y = _orthonormal_data(N, m=20)
    doubled_X, doubled_Y = np.concatenate([Z_X, Z_X]), np.concatenate([Z_Y, Z_Y])
    weights = np.concatenate([np.full(20, 1 / 20), np.zeros(20)])
    z = np.array([0.1 + 0.2j, -0.7, 1.1j])
    np.testing.assert_allclose(pseudospectrum(doubled_X, doubled_Y, z, weights),
                               pseudospectrum(Z_X, Z_Y, z), atol=1e-13)
    with pytest.raises(ValueError, match="rank deficient"):
        pseudospectrum(np.ones((10, 2)), np.ones((10, 2)), z)


def test_verified_spectrum_keeps_the_grid_points_next_to_each_eigenvalue():
    N, eigenvalues = _normal_matrix()
    Z_X, Z_Y = _orthonormal_data(N)
    grid = _grid(61)
    spacing = grid[0, 1].real - grid[0, 0].real
    result = verified_spectrum(Z_X, Z_Y, grid)
    nearest = grid.reshape(-1)[np.abs(grid.reshape(-1, 1) - eigenvalues).argmin(axis=0)]
    assert set(np.round(nearest, 12)) <= set(np.round(result.points, 12))
    distance = np.abs(result.points[:, None] - eigenvalues).min(axis=1)
    np.testing.assert_allclose(result.tau, distance, atol=1e-12)  # τ = distance here
    assert result.bound == pytest.approx(result.tau.max())
    assert result.bound <= spacing / np.sqrt(2) + 1e-12  # each is within the bound


def test_measure_preserving_lower_bound_on_the_circle():
    angles = np.array([0.4, -0.4, 2.5, -2.5])
    N = np.zeros((4, 4))
    for start, angle in zip((0, 2), (0.4, 2.5)):
        N[start:start + 2, start:start + 2] = [[np.cos(angle), -np.sin(angle)],
                                               [np.sin(angle), np.cos(angle)]]
    Z_X, Z_Y = _orthonormal_data(N, seed=3)
    grid = _grid(41)
    result = verified_spectrum(Z_X, Z_Y, grid, measure_preserving=True)
    assert np.all(result.grid_tau >= np.abs(1 - np.abs(grid)) - 1e-15)
    distance = np.abs(result.points[:, None] - np.exp(1j * angles)).min(axis=1)
    assert np.all(distance <= result.tau + 1e-12) and result.bound < 0.05


def _rotation_on_the_circle(m=200):
    """Rotation by 2π/5 of m equispaced points of the circle: the data's uniform measure is
    invariant, so K is a permutation (unitary) with spectrum the fifth roots of unity."""
    theta = 2 * np.pi * np.arange(m) / m
    X = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    Y = np.stack([np.cos(theta + 2 * np.pi / 5), np.sin(theta + 2 * np.pi / 5)], axis=1)
    return SnapshotPairs.from_arrays(X, Y), np.exp(2j * np.pi * np.arange(5) / 5)


def test_spurious_edmd_eigenvalues_are_flagged_by_their_residual():
    pairs, roots = _rotation_on_the_circle()
    model = EDMD(RadialBasis(30, width=0.5, include_state=False, seed=0)).fit(pairs)
    distance = np.abs(model.eigenvalues[:, None] - roots[None]).min(axis=1)
    # for a unitary K, ‖(K − λ)g‖ >= dist(λ, σ(K))‖g‖: no residual can hide a spurious value
    assert np.all(model.residuals >= distance - 1e-10)
    spurious = distance > 0.1
    assert spurious.sum() >= 2  # EDMD does produce them here (measured: 3)
    assert np.all(model.residuals[spurious] > 0.1)
    certified = model.certified(1e-3)
    assert certified.sum() >= 10 and np.all(distance[certified] <= 1e-3)


def test_certified_forecasts_follow_the_rotation():
    pairs, _ = _rotation_on_the_circle()
    model = EDMD(RadialBasis(30, width=0.5, seed=0)).fit(pairs)
    x0 = pairs.X[:4]
    forecast = model.predict(x0, 200, certified=1e-3)
    np.testing.assert_allclose(forecast[:, 5], x0, atol=1e-8)  # period 5
    np.testing.assert_allclose(np.linalg.norm(forecast, axis=2), 1.0, atol=1e-6)
    with pytest.warns(UserWarning, match="no eigenpair"):
        assert np.all(model.predict(x0, 2, certified=0.0)[:, 1:] == 0)
