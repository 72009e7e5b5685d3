"""Measure-preserving EDMD (mpEDMD; Colbrook): the unitary ``K`` closest to the data.

With ``G = Ψ_XᵀWΨ_X``, ``A = Ψ_XᵀWΨ_Y`` and the SVD ``U Σ Vᴴ`` of ``G^{-½} Aᴴ G^{-½}``, the
Koopman matrix is ``K = G^{-½} V Uᴴ G^{½}``: an isometry in the inner product of ``G``
(``Kᴴ G K = G``), similar to the unitary ``𝒰 = V Uᴴ``. Its eigenvalues lie on the unit circle,
and the L²(ω) norm of every observable, ``‖Ψ_X c‖_W``, is kept by every power of ``K``; so is
``z G⁻¹ zᴴ`` along a forecast ``z_{t+1} = z_t K``. The eigenpairs come from the Schur form of
``𝒰`` (orthonormal eigenvectors, moduli 1 to rounding).

With ``rank = r`` the dictionary is first reduced to its leading ``r`` principal directions,
whitened (``z = ψ V_r Σ_r⁻¹``, so that ``G = I`` and ``K = 𝒰``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.linalg

from pdesuite.dynamics.koopman._checks import check_float, check_optional_rank
from pdesuite.dynamics.koopman.base import KoopmanEstimator
from pdesuite.dynamics.koopman.dictionaries import Dictionary, check_dictionary, fit_features

__all__ = ["MeasurePreservingEDMD"]


class MeasurePreservingEDMD(KoopmanEstimator):
    """mpEDMD: a unitary Koopman matrix for measure-preserving dynamics.

    Args:
        dictionary: as in :class:`~pdesuite.dynamics.koopman.edmd.EDMD` (default identity).
        rank: reduce to the leading ``rank`` whitened principal directions first (default None:
            the whole dictionary, whose ``G`` must then be well conditioned).
        rcond: eigenvalues of ``G`` below ``rcond·max`` make ``G`` singular, an error without
            ``rank`` (default 1e-12).

    Attributes after ``fit``: ``dictionary_``, ``projection_`` (``[n, r]`` or None),
    ``gram_`` (``G`` in the coordinates) and ``unitary_`` (``𝒰``).
    """

    def __init__(self, dictionary: Optional[Dictionary] = None, rank: Optional[int] = None,
                 rcond: float = 1e-12) -> None:
        self.dictionary = check_dictionary(dictionary)
        self.rank = check_optional_rank(rank)
        self.rcond = check_float(rcond, "rcond")

    def _fit_pairs(self, X: np.ndarray, Y: np.ndarray, weights: np.ndarray) -> None:
        self.dictionary_, features_x, features_y = fit_features(self.dictionary, X, Y)
        dictionary = self.dictionary_
        root = np.sqrt(weights)[:, None]
        if self.rank is not None:
            _, sigma, Vt = np.linalg.svd(root * features_x, full_matrices=False)
            r = int(min(self.rank, np.sum(sigma > self.rcond * sigma[0])))
            self.projection_ = Vt[:r].T / sigma[:r]
        else:
            self.projection_ = None
        project = (lambda F: F) if self.projection_ is None else (lambda F: F @ self.projection_)
        self._Z_X, self._Z_Y = project(features_x), project(features_y)
        gram = (root * self._Z_X).T @ (root * self._Z_X)
        cross = (root * self._Z_X).T @ (root * self._Z_Y)
        values, vectors = np.linalg.eigh(gram)
        if values[0] <= self.rcond * values[-1]:
            raise ValueError(f"dictionary: G = Ψ_XᵀWΨ_X is singular ({gram.shape[0]} features, "
                             f"{len(X)} snapshot pairs); pass rank")
        self._half = (vectors * np.sqrt(values)) @ vectors.T
        self._inverse_half = (vectors / np.sqrt(values)) @ vectors.T
        left, _, right_h = np.linalg.svd(self._inverse_half @ cross.T @ self._inverse_half)
        self.unitary_ = right_h.conj().T @ left.conj().T
        self.gram_ = gram
        self._K = self._inverse_half @ self.unitary_ @ self._half
        self._decoder = (dictionary.decoder(X, features_x, weights) if self.projection_ is None
                         else np.linalg.lstsq(root * self._Z_X, root * X, rcond=None)[0])

    def _eigendecomposition(self) -> tuple[np.ndarray, np.ndarray]:
        schur, basis = scipy.linalg.schur(self.unitary_.astype(np.complex128), output="complex")
        # 𝒰 is normal: its Schur form is diagonal and the Schur vectors are its eigenvectors
        return np.diag(schur).copy(), self._inverse_half @ basis

    def _lift(self, states: np.ndarray) -> np.ndarray:
        features = self.dictionary_(states)
        return features if self.projection_ is None else features @ self.projection_
