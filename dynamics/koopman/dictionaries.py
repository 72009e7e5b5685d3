"""Dictionaries of observables ``ψ: [m, d] -> [m, n_features]`` for EDMD-type estimators.

Every dictionary is fitted on the training states (``fit(X)``: centres, widths, scales), then
called on any states. It decodes features back to the state in one of two ways: exactly, when
the state's own coordinates are among its features (``state_columns``, the identity part:
every dictionary here has it, by default), or by a least-squares decoder fitted on the
training data (:meth:`Dictionary.decoder`).
"""

from __future__ import annotations

import copy

import itertools
from typing import Callable, Optional

import numpy as np

from pdesuite.dynamics.koopman._checks import as_real_matrix, check_float, check_int

__all__ = [
    "Dictionary",
    "Identity",
    "Monomials",
    "RadialBasis",
    "FourierFeatures",
    "RandomFourierFeatures",
    "CallableDictionary",
    "kmeans",
]


class Dictionary:
    """Base class: ``fit(X)`` then ``dictionary(X) -> [m, n_features]``.

    Subclasses set ``n_features`` and ``state_columns`` in :meth:`_fit` and compute the
    features in :meth:`_features`.
    """

    #: Columns of the features equal to the state's coordinates ``0..d-1`` (in that order),
    #: or None when the state is not among the features.
    state_columns: Optional[np.ndarray] = None
    n_features: int = 0
    state_dim: Optional[int] = None

    def fit(self, X: np.ndarray) -> "Dictionary":
        """Fit on training states ``X`` ``[m, d]``; returns self."""
        X = as_real_matrix(X, "X")
        self.state_dim = X.shape[1]
        self._fit(X)
        return self

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Features ``[m, n_features]`` of states ``X`` ``[m, d]``."""
        if self.state_dim is None:
            raise RuntimeError(f"{type(self).__name__}: call fit(X) before evaluating it")
        X = as_real_matrix(X, "X")
        if X.shape[1] != self.state_dim:
            raise ValueError(f"X: states have {X.shape[1]} values, the dictionary was fitted "
                             f"on {self.state_dim}")
        return self._features(X)

    def decoder(self, X: np.ndarray, features: Optional[np.ndarray] = None,
                weights: Optional[np.ndarray] = None) -> np.ndarray:
        """The matrix ``B`` ``[n_features, d]`` with ``X ≈ ψ(X) B``.

        The selection of ``state_columns`` when the state is among the features (exact);
        otherwise the weighted least-squares fit on ``X`` (``weights`` ``[m]``, default
        uniform), with ``features = ψ(X)`` when already computed.
        """
        X = as_real_matrix(X, "X")
        if self.state_columns is not None:
            selection = np.zeros((self.n_features, X.shape[1]))
            selection[self.state_columns, np.arange(X.shape[1])] = 1.0
            return selection
        features = self(X) if features is None else features
        root = np.ones(len(X)) if weights is None else np.sqrt(weights)
        return np.linalg.lstsq(root[:, None] * features, root[:, None] * X, rcond=None)[0]

    def _fit(self, X: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _features(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _with_state(self, X: np.ndarray, extra: np.ndarray, include_state: bool) -> np.ndarray:
        return np.concatenate([X, extra], axis=1) if include_state else extra


class Identity(Dictionary):
    """``ψ(x) = x``: linear DMD."""

    def _fit(self, X: np.ndarray) -> None:
        self.n_features = X.shape[1]
        self.state_columns = np.arange(X.shape[1])

    def _features(self, X: np.ndarray) -> np.ndarray:
        return X.copy()


class Monomials(Dictionary):
    """All monomials ``x^α`` with ``|α| <= degree``, graded (1, then x_1..x_d, then degree 2...).

    ``C(d + degree, degree)`` features; the degree-1 monomials are the state.
    """

    def __init__(self, degree: int = 2) -> None:
        self.degree = check_int(degree, "degree", minimum=1)

    def _fit(self, X: np.ndarray) -> None:
        d = X.shape[1]
        exponents = []
        for total in range(self.degree + 1):
            for combination in itertools.combinations_with_replacement(range(d), total):
                exponents.append(np.bincount(np.asarray(combination, dtype=int), minlength=d))
        self.exponents = np.array(exponents, dtype=int)  # [n_features, d]
        self.n_features = len(self.exponents)
        self.state_columns = np.arange(1, d + 1)

    def _features(self, X: np.ndarray) -> np.ndarray:
        features = np.ones((len(X), self.n_features))
        for column, exponent in enumerate(self.exponents):
            for axis in np.flatnonzero(exponent):
                features[:, column] *= X[:, axis] ** exponent[axis]
        return features


def check_dictionary(dictionary: object) -> "Dictionary | None":
    """``dictionary`` if it is a :class:`Dictionary` or None; TypeError naming it otherwise."""
    if dictionary is not None and not isinstance(dictionary, Dictionary):
        raise TypeError(f"dictionary: expected a Dictionary, got {type(dictionary).__name__}")
    return dictionary


def fit_features(dictionary: "Dictionary | None", X: np.ndarray,
                 Y: np.ndarray) -> tuple["Dictionary", np.ndarray, np.ndarray]:
    """A copy of ``dictionary`` (default :class:`Identity`) fitted on the states ``X``
    ``[m, d]``, and the features of ``X`` and ``Y`` ``[m, n_features]``: an estimator never
    refits the dictionary its user passed."""
    fitted = copy.deepcopy(dictionary if dictionary is not None else Identity()).fit(X)
    return fitted, fitted(X), fitted(Y)


def kmeans(X: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """Centres ``[k, d]`` of ``X`` ``[m, d]`` by Lloyd's k-means from a k-means++ start, seeded."""
    X = as_real_matrix(X, "X")
    k = check_int(k, "k", minimum=1, maximum=len(X))
    rng = np.random.default_rng(seed)
    centres = [X[rng.integers(len(X))]]
    nearest = np.sum((X - centres[0]) ** 2, axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        # duplicated points: any point will do once every distance is zero
        probabilities = nearest / total if total > 0 else None
        centres.append(X[rng.choice(len(X), p=probabilities)])
        nearest = np.minimum(nearest, np.sum((X - centres[-1]) ** 2, axis=1))
    centres = np.array(centres)
    for _ in range(iterations):
        labels = _squared_distances(X, centres).argmin(axis=1)
        moved = centres.copy()
        for j in range(k):
            members = X[labels == j]
            if len(members):  # an empty cluster keeps its centre
                moved[j] = members.mean(axis=0)
        if np.allclose(moved, centres, rtol=0.0, atol=1e-12):
            break
        centres = moved
    return centres


def _squared_distances(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``[m, k]`` squared Euclidean distances, clipped at 0 against rounding."""
    squared = (np.sum(X ** 2, axis=1)[:, None] - 2.0 * X @ centres.T
               + np.sum(centres ** 2, axis=1)[None, :])
    return np.maximum(squared, 0.0)


class RadialBasis(Dictionary):
    """Radial basis functions ``φ(‖x − c_j‖ / width)`` at k-means centres, plus the state.

    Args:
        n_centres: number of centres ``c_j`` (k-means of the training states, seeded).
        kernel: ``"gaussian"`` ``exp(−r²)`` (default) or ``"exponential"`` ``exp(−r)`` (the
            Duffing example's).
        width: length scale; default twice the mean distance from a centre to its nearest
            other centre, so that neighbouring functions overlap (the data's standard
            deviation when there is one centre).
        include_state: put the state's coordinates first (default True).
        seed: k-means seed.
    """

    kernels = ("gaussian", "exponential")

    def __init__(self, n_centres: int = 50, kernel: str = "gaussian",
                 width: Optional[float] = None, include_state: bool = True, seed: int = 0) -> None:
        self.n_centres = check_int(n_centres, "n_centres")
        if kernel not in self.kernels:
            raise ValueError(f"kernel: must be one of {self.kernels}, got {kernel!r}")
        self.kernel = kernel
        self.width = None if width is None else check_float(width, "width", allow_minimum=False)
        self.include_state = bool(include_state)
        self.seed = seed

    def _fit(self, X: np.ndarray) -> None:
        if self.n_centres > len(X):
            raise ValueError(f"n_centres: {self.n_centres} centres for {len(X)} training states")
        self.centres = kmeans(X, self.n_centres, seed=self.seed)
        if self.width is not None:
            self.width_ = self.width
        elif self.n_centres > 1:
            between = np.sqrt(_squared_distances(self.centres, self.centres))
            np.fill_diagonal(between, np.inf)
            self.width_ = 2.0 * float(between.min(axis=1).mean())
        else:
            self.width_ = float(X.std()) or 1.0
        d = X.shape[1]
        self.n_features = self.n_centres + (d if self.include_state else 0)
        self.state_columns = np.arange(d) if self.include_state else None

    def _features(self, X: np.ndarray) -> np.ndarray:
        squared = _squared_distances(X, self.centres) / self.width_ ** 2
        values = np.exp(-squared) if self.kernel == "gaussian" else np.exp(-np.sqrt(squared))
        return self._with_state(X, values, self.include_state)


class FourierFeatures(Dictionary):
    """Harmonics of each coordinate: 1, ``cos(2πn u_i)``, ``sin(2πn u_i)`` for ``n = 1..K``.

    ``u_i = (x_i − low_i) / period_i``; ``1 + 2·K·d`` features (plus the state).

    Args:
        max_wavenumber: ``K``.
        period: per-axis period ``[d]`` or one number; default twice the training data's span
            on each axis (so that the data need not be periodic).
        include_state: put the state's coordinates first (default True).
    """

    def __init__(self, max_wavenumber: int = 4, period=None, include_state: bool = True) -> None:
        self.max_wavenumber = check_int(max_wavenumber, "max_wavenumber")
        self.period = period
        self.include_state = bool(include_state)

    def _fit(self, X: np.ndarray) -> None:
        d = X.shape[1]
        self.low = X.min(axis=0)
        if self.period is None:
            span = X.max(axis=0) - self.low
            self.period_ = 2.0 * np.where(span > 0, span, 1.0)
        else:
            self.period_ = np.broadcast_to(np.asarray(self.period, dtype=float), (d,)).copy()
            if np.any(~np.isfinite(self.period_)) or np.any(self.period_ <= 0):
                raise ValueError(f"period: must be positive, got {self.period!r}")
        self.n_features = 1 + 2 * self.max_wavenumber * d + (d if self.include_state else 0)
        self.state_columns = np.arange(d) if self.include_state else None

    def _features(self, X: np.ndarray) -> np.ndarray:
        phase = 2.0 * np.pi * (X - self.low) / self.period_  # [m, d]
        harmonics = np.arange(1, self.max_wavenumber + 1)
        angles = (phase[:, None, :] * harmonics[None, :, None]).reshape(len(X), -1)
        values = np.concatenate([np.ones((len(X), 1)), np.cos(angles), np.sin(angles)], axis=1)
        return self._with_state(X, values, self.include_state)


class RandomFourierFeatures(Dictionary):
    """Random Fourier features ``√(2/D) cos(x·w_j / ℓ + b_j)`` of a Gaussian kernel.

    ``w_j ~ N(0, I)``, ``b_j ~ U[0, 2π)``, seeded.

    Args:
        n_random: ``D``, the number of random features.
        lengthscale: ``ℓ``; default the median distance between training states (of up to
            500 of them).
        include_state: put the state's coordinates first (default True).
        seed: seeds ``w`` and ``b`` (and the subsample of the median).
    """

    def __init__(self, n_random: int = 100, lengthscale: Optional[float] = None,
                 include_state: bool = True, seed: int = 0) -> None:
        self.n_random = check_int(n_random, "n_random")
        self.lengthscale = (None if lengthscale is None
                            else check_float(lengthscale, "lengthscale", allow_minimum=False))
        self.include_state = bool(include_state)
        self.seed = seed

    def _fit(self, X: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        d = X.shape[1]
        if self.lengthscale is not None:
            self.lengthscale_ = self.lengthscale
        else:
            subset = X[rng.permutation(len(X))[:500]]
            distances = np.sqrt(_squared_distances(subset, subset))
            upper = distances[np.triu_indices(len(subset), k=1)]
            self.lengthscale_ = float(np.median(upper)) if upper.size and np.median(upper) > 0 \
                else 1.0
        self.frequencies = rng.standard_normal((d, self.n_random)) / self.lengthscale_
        self.offsets = rng.uniform(0.0, 2.0 * np.pi, self.n_random)
        self.n_features = self.n_random + (d if self.include_state else 0)
        self.state_columns = np.arange(d) if self.include_state else None

    def _features(self, X: np.ndarray) -> np.ndarray:
        values = np.sqrt(2.0 / self.n_random) * np.cos(X @ self.frequencies + self.offsets)
        return self._with_state(X, values, self.include_state)


class CallableDictionary(Dictionary):
    """A user's function ``f: [m, d] -> [m, n_features]``.

    Args:
        function: the observables; called on float64 arrays, must return finite real values.
        state_columns: the columns of ``f(X)`` that equal ``x_0..x_{d-1}`` (exact decoding), or
            None (a least-squares decoder is fitted).
    """

    def __init__(self, function: Callable[[np.ndarray], np.ndarray],
                 state_columns=None) -> None:
        if not callable(function):
            raise TypeError(f"function: expected a callable, got {type(function).__name__}")
        self.function = function
        self._given_columns = state_columns

    def _fit(self, X: np.ndarray) -> None:
        self.n_features = self._evaluate(X[:1]).shape[1]
        if self._given_columns is None:
            self.state_columns = None
            return
        columns = np.asarray(self._given_columns, dtype=int)
        if columns.shape != (X.shape[1],) or np.any((columns < 0) | (columns >= self.n_features)):
            raise ValueError(f"state_columns: expected {X.shape[1]} column indices below "
                             f"{self.n_features}, got {self._given_columns!r}")
        self.state_columns = columns

    def _evaluate(self, X: np.ndarray) -> np.ndarray:
        values = np.asarray(self.function(X))
        if values.ndim != 2 or values.shape[0] != len(X):
            raise ValueError(f"function: must map [m, d] to [m, n_features], returned shape "
                             f"{values.shape} for {len(X)} states")
        return as_real_matrix(values, "function(X)")

    def _features(self, X: np.ndarray) -> np.ndarray:
        values = self._evaluate(X)
        if values.shape[1] != self.n_features:
            raise ValueError(f"function: returned {values.shape[1]} features, {self.n_features} "
                             "at fit")
        return values
