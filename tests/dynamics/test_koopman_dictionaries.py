"""Dictionaries: feature counts and values from closed forms, seeded centres, decoding."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from pdesuite.dynamics.koopman import (
    EDMD,
    CallableDictionary,
    FourierFeatures,
    Identity,
    Monomials,
    RadialBasis,
    RandomFourierFeatures,
    kmeans,
)

RNG_SEED = 0


def _states(m=50, d=2, seed=RNG_SEED):
    return np.random.default_rng(seed).uniform(-1, 1, (m, d))


def test_monomials_are_every_product_up_to_the_degree():
    X = _states(d=3)
    dictionary = Monomials(3).fit(X)
    assert dictionary.n_features == comb(3 + 3, 3)
    features = dictionary(X)
    x, y, z = X.T
    columns = {tuple(e): features[:, k] for k, e in enumerate(dictionary.exponents)}
    np.testing.assert_allclose(columns[(0, 0, 0)], 1.0)
    np.testing.assert_allclose(columns[(1, 0, 2)], x * z ** 2, rtol=1e-14)
    np.testing.assert_allclose(columns[(0, 3, 0)], y ** 3, rtol=1e-14)
    np.testing.assert_array_equal(features[:, dictionary.state_columns], X)


@pytest.mark.parametrize("dictionary", [
    Identity(), Monomials(2), RadialBasis(10, seed=1), FourierFeatures(3),
    RandomFourierFeatures(20, seed=2),
])
def test_every_dictionary_decodes_the_state_exactly(dictionary):
    X = _states()
    dictionary.fit(X)
    features = dictionary(X)
    assert features.shape == (50, dictionary.n_features)
    np.testing.assert_array_equal(features @ dictionary.decoder(X), X)


def test_without_the_state_a_least_squares_decoder_is_fitted():
    X = _states(200)
    dictionary = RadialBasis(30, width=1.0, include_state=False, seed=0).fit(X)
    assert dictionary.state_columns is None
    features = dictionary(X)
    decoder = dictionary.decoder(X)
    # the least-squares solution: the residual is orthogonal to every feature
    gram_residual = features.T @ (features @ decoder - X)
    assert np.abs(gram_residual).max() < 1e-8 * np.abs(features.T @ X).max()
    error = np.abs(features @ decoder - X).max()
    assert error < 0.02  # measured 0.010: 30 wide Gaussian bumps fit x on the square


def test_kmeans_is_seeded_and_finds_separated_clusters():
    rng = np.random.default_rng(3)
    true = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    X = np.concatenate([c + 0.1 * rng.standard_normal((40, 2)) for c in true])
    centres = kmeans(X, 3, seed=7)
    np.testing.assert_array_equal(centres, kmeans(X, 3, seed=7))
    found = centres[np.argsort(centres[:, 0] + 0.1 * centres[:, 1])]
    expected = np.array([X[:40].mean(0), X[80:].mean(0), X[40:80].mean(0)])
    np.testing.assert_allclose(found, expected, atol=1e-12)


def test_radial_basis_values():
    X = _states(20)
    dictionary = RadialBasis(4, kernel="exponential", width=0.5, include_state=False).fit(X)
    distances = np.linalg.norm(X[:, None, :] - dictionary.centres[None], axis=2)
    np.testing.assert_allclose(dictionary(X), np.exp(-distances / 0.5), rtol=1e-12, atol=1e-12)


def test_fourier_features_with_a_given_period():
    X = np.linspace(0, 1, 9)[:, None]
    dictionary = FourierFeatures(2, period=1.0, include_state=False).fit(X)
    features = dictionary(X)
    t = 2 * np.pi * X[:, 0]
    expected = np.stack([np.ones(9), np.cos(t), np.cos(2 * t), np.sin(t), np.sin(2 * t)], 1)
    np.testing.assert_allclose(features, expected, atol=1e-14)


def test_random_fourier_features_approximate_the_gaussian_kernel():
    X = _states(10)
    dictionary = RandomFourierFeatures(20000, lengthscale=0.7, include_state=False,
                                       seed=4).fit(X)
    features = dictionary(X)
    squared = np.sum((X[:, None] - X[None]) ** 2, axis=2)
    gaussian = np.exp(-squared / (2 * 0.7 ** 2))
    assert np.abs(features @ features.T - gaussian).max() < 0.03  # O(1/√D) Monte Carlo


def test_a_callable_dictionary_matches_the_same_monomials_in_edmd():
    rng = np.random.default_rng(5)
    J = np.array([[0.9, -0.1], [0.0, 0.8]])
    X = rng.uniform(-1, 1, (40, 2))
    trajectories = np.stack([X, X @ J.T], axis=1)

    def quadratic(states):
        x, y = states.T
        return np.stack([x, y, np.ones_like(x), x * x, x * y, y * y], axis=1)

    custom = EDMD(CallableDictionary(quadratic, state_columns=[0, 1])).fit(trajectories)
    reference = EDMD(Monomials(2)).fit(trajectories)
    np.testing.assert_allclose(np.sort_complex(custom.eigenvalues),
                               np.sort_complex(reference.eigenvalues), atol=1e-12)
    with pytest.raises(ValueError, match="state_columns"):
        CallableDictionary(quadratic, state_columns=[0, 9]).fit(X)
    with pytest.raises(ValueError, match="function"):
        CallableDictionary(lambda s: s[:, 0]).fit(X)


def test_a_dictionary_must_be_fitted_and_sized():
    with pytest.raises(RuntimeError, match="fit"):
        Identity()(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="n_centres"):
        RadialBasis(30).fit(_states(10))
    with pytest.raises(TypeError, match="degree"):
        Monomials(2.5)
