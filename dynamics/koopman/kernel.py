"""Kernel EDMD (Williams, Rowley, Kevrekidis): EDMD in the implicit feature space of a kernel.

With ``k(x, y) = ψ(x)·ψ(y)`` and quadrature weights ``W``: ``Ĝ = √W k(X, X) √W``,
``Â = √W k(Y, X) √W``, ``Ĝ = Q Σ² Qᵀ`` (eigenvalues below ``rcond²·max`` and beyond ``rank``
dropped) and ``K̂ = Σ⁺ Qᵀ Â Q Σ⁺`` (PyDMD's form). The coordinates are
``z(x) = k(x, X) √W Q Σ⁺``, the feature space's leading principal directions, so ``K̂`` is the
EDMD matrix of the rank-truncated (implicit) dictionary: a polynomial kernel of degree ``p``
gives the eigenvalues of EDMD with all monomials of degree ``<= p``, the linear kernel those of
DMD. The state is decoded by weighted least squares on the training states.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np

from pdesuite.dynamics.koopman._checks import check_float, check_int, check_optional_rank
from pdesuite.dynamics.koopman.base import KoopmanEstimator

__all__ = ["KERNELS", "KernelEDMD", "kernel_matrix"]

KERNELS = ("linear", "polynomial", "gaussian", "laplacian")


def kernel_matrix(kernel: str, A: np.ndarray, B: np.ndarray, degree: int = 2, coef0: float = 1.0,
                  lengthscale: float = 1.0) -> np.ndarray:
    """``k(a_i, b_j)`` ``[p, q]`` for ``A`` ``[p, d]``, ``B`` ``[q, d]``.

    ``"linear"`` ``a·b``; ``"polynomial"`` ``(coef0 + a·b)^degree``; ``"gaussian"``
    ``exp(−‖a − b‖² / (2ℓ²))``; ``"laplacian"`` ``exp(−‖a − b‖ / ℓ)``.
    """
    inner = A @ B.T
    if kernel == "linear":
        return inner
    if kernel == "polynomial":
        return (coef0 + inner) ** degree
    squared = np.maximum(np.sum(A ** 2, axis=1)[:, None] - 2.0 * inner
                         + np.sum(B ** 2, axis=1)[None, :], 0.0)
    if kernel == "gaussian":
        return np.exp(-squared / (2.0 * lengthscale ** 2))
    if kernel == "laplacian":
        return np.exp(-np.sqrt(squared) / lengthscale)
    raise ValueError(f"kernel: must be one of {KERNELS} or a callable, got {kernel!r}")


class KernelEDMD(KoopmanEstimator):
    """Kernel EDMD.

    Args:
        kernel: one of :data:`KERNELS` (default ``"gaussian"``) or a callable
            ``k(A [p, d], B [q, d]) -> [p, q]``.
        degree, coef0: of the polynomial kernel (defaults 2 and 1).
        lengthscale: ``ℓ`` of the Gaussian and Laplacian kernels; default the median distance
            between training states (of up to 500 of them).
        rank: keep at most ``rank`` principal directions (default None: all above ``rcond``).
        rcond: drop directions with ``σ < rcond·σ_max`` (default 1e-7; ``σ²`` are the
            eigenvalues of ``Ĝ``, accurate to about 1e-16 of the largest).

    The training states are kept (attribute ``X_``) to evaluate ``k(x, X)``.
    """

    def __init__(self, kernel: Union[str, Callable] = "gaussian", degree: int = 2,
                 coef0: float = 1.0, lengthscale: Optional[float] = None,
                 rank: Optional[int] = None, rcond: float = 1e-7) -> None:
        if not callable(kernel) and kernel not in KERNELS:
            raise ValueError(f"kernel: must be one of {KERNELS} or a callable, got {kernel!r}")
        self.kernel = kernel
        self.degree = check_int(degree, "degree")
        self.coef0 = check_float(coef0, "coef0")
        self.lengthscale = (None if lengthscale is None
                            else check_float(lengthscale, "lengthscale", allow_minimum=False))
        self.rank = check_optional_rank(rank)
        self.rcond = check_float(rcond, "rcond")

    def _k(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        if callable(self.kernel):
            values = np.asarray(self.kernel(A, B), dtype=np.float64)
            if values.shape != (len(A), len(B)) or not np.all(np.isfinite(values)):
                raise ValueError(f"kernel: must return finite values of shape "
                                 f"({len(A)}, {len(B)}), got {values.shape}")
            return values
        return kernel_matrix(self.kernel, A, B, self.degree, self.coef0, self.lengthscale_)

    def _median_distance(self, X: np.ndarray) -> float:
        subset = X[np.random.default_rng(0).permutation(len(X))[:500]]
        squared = kernel_matrix("linear", subset, subset)
        norms = np.diag(squared)
        distances = np.sqrt(np.maximum(norms[:, None] - 2 * squared + norms[None, :], 0.0))
        upper = distances[np.triu_indices(len(subset), k=1)]
        median = float(np.median(upper)) if upper.size else 0.0
        return median if median > 0 else 1.0

    def _fit_pairs(self, X: np.ndarray, Y: np.ndarray, weights: np.ndarray) -> None:
        self.lengthscale_ = (self.lengthscale if self.lengthscale is not None
                             else self._median_distance(X))
        self.X_ = X
        root = np.sqrt(weights)
        gram = root[:, None] * self._k(X, X) * root[None, :]
        cross = root[:, None] * self._k(Y, X) * root[None, :]
        values, vectors = np.linalg.eigh(0.5 * (gram + gram.T))
        values, vectors = values[::-1], vectors[:, ::-1]
        sigma = np.sqrt(np.maximum(values, 0.0))
        kept = int(np.sum(sigma > self.rcond * sigma[0])) if sigma[0] > 0 else 0
        if kept == 0:
            raise ValueError("kernel: the Gram matrix k(X, X) is zero on the data")
        r = kept if self.rank is None else min(self.rank, kept)
        Q, sigma = vectors[:, :r], sigma[:r]
        self.singular_values_ = sigma
        self._coefficients = root[:, None] * Q / sigma[None, :]  # √W Q Σ⁺, [m, r]
        self._K = (Q.T @ cross @ Q) / sigma[:, None] / sigma[None, :]
        self._Z_X = self._k(X, X) @ self._coefficients
        self._Z_Y = self._k(Y, X) @ self._coefficients
        root = root[:, None]
        self._decoder = np.linalg.lstsq(root * self._Z_X, root * X, rcond=None)[0]

    def _lift(self, states: np.ndarray) -> np.ndarray:
        return self._k(states, self.X_) @ self._coefficients
