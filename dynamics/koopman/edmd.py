"""Extended dynamic mode decomposition (EDMD) with ridge regularisation and rank truncation.

With the weighted dictionary matrix ``√W Ψ_X = U Σ Vᵀ`` (``W`` the quadrature weights):

- full rank (``rank=None``): ``K = V diag(σ/(σ² + ridge)) Uᵀ √W Ψ_Y`` ``[n, n]`` in the
  dictionary's coordinates, i.e. ``(G + ridge·I)⁻¹ A`` with ``G = Ψ_XᵀWΨ_X``,
  ``A = Ψ_XᵀWΨ_Y``; ``ridge = 0`` is ``K = (√WΨ_X)⁺ √WΨ_Y``.
- ``rank = r``: the coordinates are the leading ``r`` right singular directions,
  ``z(x) = ψ(x) V_r``, and ``K = diag(σ_r/(σ_r² + ridge)) U_rᵀ √W Ψ_Y V_r`` ``[r, r]`` (the
  nonzero part of the spectrum of the rank-``r`` EDMD matrix).

Without either, a dictionary larger than the data allow (more features than pairs, or a
numerically rank-deficient ``Ψ_X``) is an error rather than an arbitrary minimum-norm ``K``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from pdesuite.dynamics.koopman._checks import check_float, check_optional_rank
from pdesuite.dynamics.koopman.base import KoopmanEstimator
from pdesuite.dynamics.koopman.dictionaries import Dictionary, check_dictionary, fit_features

__all__ = ["EDMD"]


class EDMD(KoopmanEstimator):
    """EDMD: ``K`` fitted by (regularised, truncated) least squares on a dictionary.

    Args:
        dictionary: a :class:`~pdesuite.dynamics.koopman.dictionaries.Dictionary` (default
            :class:`~pdesuite.dynamics.koopman.dictionaries.Identity`: linear DMD); a copy is
            fitted on the training states (attribute ``dictionary_``).
        ridge: Tikhonov parameter added to ``G = Ψ_XᵀWΨ_X`` (default 0); same units as ``G``.
        rank: keep the leading ``rank`` singular directions of ``√W Ψ_X`` (default None: all).
        rcond: singular values below ``rcond·σ_max`` count as zero when checking that the data
            determine ``K`` (default 1e-12).

    Attributes after ``fit``: the properties of
    :class:`~pdesuite.dynamics.koopman.base.KoopmanEstimator`, ``dictionary_``,
    ``projection_`` (``V_r`` ``[n, r]``, or None at full rank) and ``singular_values_``.
    """

    def __init__(self, dictionary: Optional[Dictionary] = None, ridge: float = 0.0,
                 rank: Optional[int] = None, rcond: float = 1e-12) -> None:
        self.dictionary = check_dictionary(dictionary)
        self.ridge = check_float(ridge, "ridge")
        self.rank = check_optional_rank(rank)
        self.rcond = check_float(rcond, "rcond")

    def _fit_pairs(self, X: np.ndarray, Y: np.ndarray, weights: np.ndarray) -> None:
        self.dictionary_, features_x, features_y = fit_features(self.dictionary, X, Y)
        dictionary = self.dictionary_
        root = np.sqrt(weights)[:, None]
        U, sigma, Vt = np.linalg.svd(root * features_x, full_matrices=False)
        self.singular_values_ = sigma
        numerical_rank = int(np.sum(sigma > self.rcond * sigma[0])) if sigma[0] > 0 else 0
        n_features, m = features_x.shape[1], len(X)
        if self.ridge == 0.0:
            self._check_determined(n_features, m, numerical_rank)
        filtered = sigma / (sigma ** 2 + self.ridge)
        if self.rank is None:
            self.projection_ = None
            self._Z_X, self._Z_Y = features_x, features_y
            self._K = Vt.T @ (filtered[:, None] * (U.T @ (root * features_y)))
            self._decoder = dictionary.decoder(X, features_x, weights)
            return
        r = min(self.rank, len(sigma))
        self.projection_ = Vt[:r].T
        self._Z_X = features_x @ self.projection_
        self._Z_Y = features_y @ self.projection_
        self._K = filtered[:r, None] * (U[:, :r].T @ (root * self._Z_Y))
        self._decoder = np.linalg.lstsq(root * self._Z_X, root * X, rcond=None)[0]

    def _check_determined(self, n_features: int, m: int, numerical_rank: int) -> None:
        """Without ridge, the data must determine every coordinate of ``K``."""
        if self.rank is not None:
            if self.rank > numerical_rank:
                raise ValueError(f"rank: {self.rank} exceeds the numerical rank "
                                 f"{numerical_rank} of Ψ_X; pass a smaller rank or ridge > 0")
            return
        if n_features > m:
            raise ValueError(f"dictionary: {n_features} features but only {m} snapshot pairs; "
                             "pass ridge > 0 or rank")
        if numerical_rank < n_features:
            raise ValueError(f"dictionary: {n_features} features but Ψ_X has numerical rank "
                             f"{numerical_rank} on the data; pass ridge > 0 or rank")

    def _lift(self, states: np.ndarray) -> np.ndarray:
        features = self.dictionary_(states)
        return features if self.projection_ is None else features @ self.projection_
