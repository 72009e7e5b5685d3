"""Gaussian random fields: statistics against the covariance, exact KL sums, seeding, checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from pdesuite.datasets.grf import default_sigma, gaussian_random_field, grf_spectrum


def _radial_slope(power: np.ndarray, k_norm: np.ndarray, k_lo: float, k_hi: float) -> float:
    """Least-squares slope of log(shell-mean power) against log|k| over integer shells."""
    shells = np.arange(int(k_lo), int(k_hi) + 1)
    means = [power[(k_norm >= k - 0.5) & (k_norm < k + 0.5)].mean() for k in shells]
    return float(np.polyfit(np.log(shells), np.log(means), 1)[0])


def test_periodic_field_has_mean_zero_and_the_variance_of_its_covariance() -> None:
    n, alpha, tau = 32, 2.5, 7.0
    fields = gaussian_random_field(
        (n, n), alpha, tau, np.random.default_rng(0), periodic=True, n_samples=400
    )
    assert fields.shape == (400, n, n)
    # the constant mode is dropped, so every sample has grid mean zero
    assert np.max(np.abs(fields.mean(axis=(1, 2)))) < 1e-12
    # pointwise variance = Σ_k σ² (4π²|k|² + τ²)^(−α) over the grid's modes, computed here directly
    k = np.fft.fftfreq(n, d=1.0 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    spectrum = default_sigma(alpha, tau, 2) ** 2 * (4 * np.pi**2 * k2 + tau**2) ** (-alpha)
    spectrum[0, 0] = 0.0
    expected = spectrum.sum()
    assert fields.var(axis=0).mean() == pytest.approx(expected, rel=0.08)
    # ensemble mean at each point ≈ 0 within 5 standard errors
    assert np.max(np.abs(fields.mean(axis=0))) < 5 * np.sqrt(expected / 400)


def test_periodic_power_spectrum_matches_and_has_slope_minus_two_alpha() -> None:
    n, alpha, tau = 64, 2.5, 7.0
    fields = gaussian_random_field(
        (n, n), alpha, tau, np.random.default_rng(1), periodic=True, n_samples=200
    )
    power = (np.abs(np.fft.fft2(fields)) ** 2).mean(axis=0)
    k = np.fft.fftfreq(n, d=1.0 / n)
    k_norm = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    expected = (
        n**4 * default_sigma(alpha, tau, 2) ** 2 * (4 * np.pi**2 * k_norm**2 + tau**2) ** (-alpha)
    )
    ratio = power[k_norm > 0] / expected[k_norm > 0]
    assert ratio.mean() == pytest.approx(1.0, abs=0.02)
    slope = _radial_slope(power, k_norm, 6, 24)
    assert slope == pytest.approx(-2 * alpha, abs=0.2)


def test_cosine_field_equals_its_karhunen_loeve_sum() -> None:
    """The DCT path against the KL series summed by hand with the same ξ (FNO's Darcy GRF)."""
    shape, alpha, tau = (6, 5), 2.0, 3.0
    field = gaussian_random_field(shape, alpha, tau, np.random.default_rng(3))
    xi = np.random.default_rng(3).standard_normal(shape)
    sigma = tau ** (alpha - 1.0)
    x = [(np.arange(n) + 0.5) / n for n in shape]
    expected = np.zeros(shape)
    for k1 in range(shape[0]):
        for k2 in range(shape[1]):
            if k1 == k2 == 0:
                continue
            amp = sigma * (np.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha / 2)
            phi1 = (1.0 if k1 == 0 else np.sqrt(2)) * np.cos(np.pi * k1 * x[0])
            phi2 = (1.0 if k2 == 0 else np.sqrt(2)) * np.cos(np.pi * k2 * x[1])
            expected += amp * xi[k1, k2] * np.outer(phi1, phi2)
    np.testing.assert_allclose(field, expected, rtol=1e-12, atol=1e-14)


def test_sine_field_is_zero_on_the_boundary_and_equals_its_sum() -> None:
    shape, alpha, tau = (7, 6), 2.5, 7.0
    field = gaussian_random_field(shape, alpha, tau, np.random.default_rng(4), zero_boundary=True)
    xi = np.random.default_rng(4).standard_normal((shape[0] - 2, shape[1] - 2))
    sigma = default_sigma(alpha, tau, 2)
    x = [np.arange(n) / (n - 1) for n in shape]
    expected = np.zeros(shape)
    for k1 in range(1, shape[0] - 1):
        for k2 in range(1, shape[1] - 1):
            amp = sigma * (np.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha / 2)
            expected += (
                amp
                * xi[k1 - 1, k2 - 1]
                * 2
                * np.outer(np.sin(np.pi * k1 * x[0]), np.sin(np.pi * k2 * x[1]))
            )
    np.testing.assert_allclose(field, expected, rtol=1e-12, atol=1e-14)
    assert np.all(field[[0, -1], :] == 0) and np.all(field[:, [0, -1]] == 0)


def test_cosine_spectrum_statistics_and_slope() -> None:
    n, alpha, tau = 48, 2.0, 3.0
    fields = gaussian_random_field((n, n), alpha, tau, np.random.default_rng(5), n_samples=300)
    coefficients = scipy.fft.dctn(fields, axes=(1, 2), norm="ortho")
    power = (coefficients**2).mean(axis=0)
    expected = n * n * grf_spectrum((n, n), alpha, tau)
    assert np.max(np.abs(coefficients[:, 0, 0])) < 1e-10  # mean-zero fields
    assert (power[1:, 1:] / expected[1:, 1:]).mean() == pytest.approx(1.0, abs=0.02)
    k = np.arange(n)
    k_norm = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    # the spectrum in k is (π²|k|² + τ²)^(−α): slope −2α once π|k| ≫ τ
    assert _radial_slope(power, k_norm, 8, 30) == pytest.approx(-2 * alpha, abs=0.15)


def test_seeding_reproducible_batches_consistent_and_seeds_differ() -> None:
    a = gaussian_random_field((16, 16), 2.5, 7.0, np.random.default_rng(11), periodic=True)
    b = gaussian_random_field((16, 16), 2.5, 7.0, np.random.default_rng(11), periodic=True)
    c = gaussian_random_field((16, 16), 2.5, 7.0, np.random.default_rng(12), periodic=True)
    batch = gaussian_random_field(
        (16, 16), 2.5, 7.0, np.random.default_rng(11), periodic=True, n_samples=3
    )
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 0.1 * np.std(a)
    np.testing.assert_array_equal(batch[0], a)  # one normal draw, filled sample by sample
    assert not np.allclose(batch[1], batch[0])


def test_sigma_scales_linearly_and_dimensions_1_to_3() -> None:
    base = gaussian_random_field(20, 2.0, 5.0, np.random.default_rng(2), periodic=True)
    doubled = gaussian_random_field(20, 2.0, 5.0, np.random.default_rng(2), periodic=True,
                                    sigma=2 * default_sigma(2.0, 5.0, 1))
    np.testing.assert_allclose(doubled, 2 * base, rtol=1e-12)
    assert gaussian_random_field((4, 5, 6), 2.5, 7.0, np.random.default_rng(0)).shape == (4, 5, 6)
    assert gaussian_random_field(
        (4, 5, 6), 2.5, 7.0, np.random.default_rng(0), periodic=True
    ).shape == (4, 5, 6)
    assert default_sigma(2.5, 7.0, 2) == pytest.approx(7.0**1.5)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"alpha": 0.0}, ValueError, "alpha"),
        ({"tau": -1.0}, ValueError, "tau"),
        ({"sigma": 0.0}, ValueError, "sigma"),
        ({"shape": (1, 8)}, ValueError, "shape"),
        ({"shape": (2, 8), "zero_boundary": True}, ValueError, "shape"),
        ({"periodic": True, "zero_boundary": True}, ValueError, "zero_boundary"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"rng": 3}, TypeError, "rng"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, name) -> None:
    args = {"shape": (8, 8), "alpha": 2.5, "tau": 7.0, "rng": np.random.default_rng(0)}
    args.update(kwargs)
    with pytest.raises(error, match=name):
        gaussian_random_field(**args)
