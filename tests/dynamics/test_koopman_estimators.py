"""EDMD, kernel EDMD, Hankel DMD and mpEDMD against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from pdesuite.dynamics.koopman import (
    EDMD,
    HankelDMD,
    Identity,
    KernelEDMD,
    MeasurePreservingEDMD,
    Monomials,
    RadialBasis,
    SnapshotPairs,
)

J = np.array([[0.9, -0.1], [0.0, 0.8]])
# Koopman eigenpairs of x -> Jx on polynomials of degree <= 4: 0.9^i 0.8^j, ((x − y)/√2)^i y^j
EXPONENTS = [(i, j) for i in range(5) for j in range(5) if i + j <= 4]
EXACT = np.array([0.9 ** i * 0.8 ** j for i, j in EXPONENTS])


def _linear_map_data(m=100, seed=0):
    X = np.random.default_rng(seed).uniform(-1, 1, (m, 2))
    return np.stack([X, X @ J.T], axis=1)  # [m, 2 (time), 2]


def test_edmd_with_monomials_recovers_the_eigenvalues_of_the_linear_map():
    model = EDMD(Monomials(4)).fit(_linear_map_data())
    assert len(model.eigenvalues) == 15
    np.testing.assert_allclose(np.sort(model.eigenvalues.real), np.sort(EXACT), atol=1e-10)
    np.testing.assert_allclose(model.eigenvalues.imag, 0.0, atol=1e-10)
    assert model.residuals.max() < 1e-10  # the polynomials are an invariant subspace


def test_edmd_eigenfunctions_are_the_products_of_the_left_eigenvectors():
    model = EDMD(Monomials(4)).fit(_linear_map_data())
    points = np.random.default_rng(9).uniform(-1, 1, (30, 2))
    values = model.evaluate_eigenfunctions(points)  # [30, 15]
    x, y = points.T
    for column, eigenvalue in enumerate(model.eigenvalues):
        i, j = EXPONENTS[int(np.argmin(np.abs(EXACT - eigenvalue.real)))]
        exact = ((x - y) / np.sqrt(2)) ** i * y ** j
        scale = np.vdot(exact, values[:, column]) / np.vdot(exact, exact)
        np.testing.assert_allclose(values[:, column], scale * exact, atol=1e-9)


def test_edmd_forecasts_are_the_matrix_powers_of_the_map():
    model = EDMD(Monomials(4)).fit(_linear_map_data())
    x0 = np.array([[0.3, -0.7], [1.0, 0.5]])
    exact = np.stack([x0 @ np.linalg.matrix_power(J, t).T for t in range(21)], axis=1)
    np.testing.assert_allclose(model.predict(x0, 20), exact, atol=1e-12)
    np.testing.assert_allclose(model.predict(x0, 20, certified=1e-8), exact, atol=1e-12)
    modes = model.modes  # x = Σ φ_j(x) m_j
    reconstructed = np.real(model.evaluate_eigenfunctions(x0) @ modes)
    np.testing.assert_allclose(reconstructed, x0, atol=1e-12)


def test_ridge_is_the_regularised_normal_equations():
    data = _linear_map_data(20)
    X, Y = data[:, 0], data[:, 1] + 0.01 * np.random.default_rng(2).standard_normal((20, 2))
    pairs = SnapshotPairs.from_arrays(X, Y)
    model = EDMD(ridge=0.05).fit(pairs)
    G, A = X.T @ X / 20, X.T @ Y / 20
    np.testing.assert_allclose(model.koopman_matrix, np.linalg.solve(G + 0.05 * np.eye(2), A),
                               atol=1e-14)


def test_rank_truncation_recovers_a_low_rank_system_that_full_edmd_refuses():
    rng = np.random.default_rng(4)
    lift = rng.standard_normal((2, 6))  # a 2-dimensional system seen through 6 sensors
    latent = _linear_map_data(50)
    data = latent @ lift
    with pytest.raises(ValueError, match="ridge"):
        EDMD().fit(data)
    model = EDMD(rank=2).fit(data)
    np.testing.assert_allclose(np.sort(model.eigenvalues.real), [0.8, 0.9], atol=1e-12)
    x0 = data[:3, 0]
    exact = latent[:3, 0] @ np.linalg.matrix_power(J, 5).T @ lift
    np.testing.assert_allclose(model.predict(x0, 5)[:, -1], exact, atol=1e-12)


def test_a_dictionary_larger_than_the_data_needs_regularisation():
    data = _linear_map_data(10)  # 10 pairs, 15 monomials
    with pytest.raises(ValueError, match="15 features but only 10 snapshot pairs"):
        EDMD(Monomials(4)).fit(data)
    with pytest.raises(ValueError, match="rank"):
        MeasurePreservingEDMD(Monomials(4)).fit(data)
    assert EDMD(Monomials(4), ridge=1e-8).fit(data).koopman_matrix.shape == (15, 15)
    assert len(MeasurePreservingEDMD(Monomials(4), rank=6).fit(data).eigenvalues) == 6


def test_kernel_edmd_with_a_polynomial_kernel_is_edmd_with_monomials():
    data = _linear_map_data()
    kernel = KernelEDMD("polynomial", degree=4, coef0=1.0).fit(data)
    assert len(kernel.eigenvalues) == 15  # the rank of the degree-4 feature space
    np.testing.assert_allclose(np.sort(kernel.eigenvalues.real), np.sort(EXACT), atol=1e-9)
    x0 = np.array([[0.2, 0.4]])
    exact = np.stack([x0 @ np.linalg.matrix_power(J, t).T for t in range(6)], axis=1)
    np.testing.assert_allclose(kernel.predict(x0, 5), exact, atol=1e-9)


def test_kernel_edmd_with_the_linear_kernel_is_dmd():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((4, 4)) * 0.4
    X = rng.standard_normal((60, 4))
    Y = X @ A.T + 0.05 * rng.standard_normal((60, 4))  # noise: a least-squares answer
    pairs = SnapshotPairs.from_arrays(X, Y)
    dmd = EDMD(Identity()).fit(pairs)
    kernel = KernelEDMD("linear").fit(pairs)
    np.testing.assert_allclose(np.sort_complex(kernel.eigenvalues),
                               np.sort_complex(dmd.eigenvalues), atol=1e-10)
    np.testing.assert_allclose(np.sort(kernel.residuals), np.sort(dmd.residuals), atol=1e-10)
    np.testing.assert_allclose(kernel.predict(X[:2], 4), dmd.predict(X[:2], 4), atol=1e-10)


def test_hankel_dmd_finds_the_two_frequencies_of_two_sinusoids():
    dt = 0.1
    t = dt * np.arange(300)
    signal = np.sin(1.3 * t) + 0.5 * np.cos(3.7 * t + 0.4)
    model = HankelDMD(delays=20, rank=4).fit(signal[None, :, None])
    frequencies = np.sort(np.abs(np.angle(model.eigenvalues))) / dt
    np.testing.assert_allclose(frequencies, [1.3, 1.3, 3.7, 3.7], atol=1e-10)
    np.testing.assert_allclose(np.abs(model.eigenvalues), 1.0, atol=1e-10)
    window = signal[None, 100:120, None]  # the last 20 states, oldest first
    forecast = model.predict(window, 60)
    assert forecast.shape == (1, 61, 1)
    np.testing.assert_allclose(forecast[0, :, 0], signal[119:180], atol=1e-10)
    assert model.modes.shape == (4, 20, 1)
    with pytest.raises(ValueError, match=r"\[B, delays, \*state\]"):
        model.predict(signal[None, :10, None], 3)


def _noisy_rotation(theta=0.3, m=300, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    X = rng.standard_normal((m, 2))
    Y = X @ R.T
    # noisy observations of both: least squares is biased towards damping
    return SnapshotPairs.from_arrays(X + noise * rng.standard_normal((m, 2)),
                                     Y + noise * rng.standard_normal((m, 2)))


def test_mpedmd_eigenvalues_lie_on_the_unit_circle_where_edmds_do_not():
    pairs = _noisy_rotation()
    plain = EDMD().fit(pairs)
    assert np.abs(plain.eigenvalues).max() < 0.995
    for model in (MeasurePreservingEDMD().fit(pairs),
                  MeasurePreservingEDMD(RadialBasis(30, seed=0), rank=12).fit(pairs)):
        np.testing.assert_allclose(np.abs(model.eigenvalues), 1.0, atol=1e-13)
    model = MeasurePreservingEDMD().fit(pairs)
    np.testing.assert_allclose(np.sort(np.angle(model.eigenvalues)), [-0.3, 0.3], atol=0.02)


def test_mpedmd_conserves_the_norm():
    pairs = _noisy_rotation()
    model = MeasurePreservingEDMD(Monomials(3)).fit(pairs)
    K, G = model.koopman_matrix, model.gram_
    np.testing.assert_allclose(K.T @ G @ K, G, atol=1e-12)
    coefficients = np.random.default_rng(7).standard_normal((G.shape[0], 3))
    power = np.linalg.matrix_power(K, 50)  # ‖Ψ_X K⁵⁰ c‖_W = ‖Ψ_X c‖_W
    np.testing.assert_allclose(np.einsum("ij,ik,kj->j", power @ coefficients, G,
                                         power @ coefficients),
                               np.einsum("ij,ik,kj->j", coefficients, G, coefficients),
                               rtol=1e-10)
    linear = MeasurePreservingEDMD().fit(pairs)  # state forecasts keep x G⁻¹ xᵀ
    forecast = linear.predict(pairs.X[:4], 100)
    energy = np.einsum("btd,de,bte->bt", forecast, np.linalg.inv(linear.gram_), forecast)
    np.testing.assert_allclose(energy, energy[:, :1] * np.ones((1, 101)), rtol=1e-10)


def test_quadrature_weights_select_the_pairs_that_count():
    clean = _linear_map_data(30)
    corrupted = clean + np.random.default_rng(8).standard_normal(clean.shape)
    both = np.concatenate([clean, corrupted])
    weights = np.concatenate([np.full(30, 1 / 30), np.zeros(30)])
    for model in (EDMD(Monomials(2)), KernelEDMD("polynomial", degree=2),
                  MeasurePreservingEDMD(Monomials(2))):
        weighted = model.fit(both, weights=weights)
        values = np.sort_complex(weighted.eigenvalues)
        np.testing.assert_allclose(values, np.sort_complex(model.fit(clean).eigenvalues),
                                   atol=1e-10)
    with pytest.raises(ValueError, match="weights"):
        EDMD().fit(clean, weights=np.ones(5))
