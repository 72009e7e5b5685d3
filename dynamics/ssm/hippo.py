"""HiPPO matrices, their normal-plus-low-rank (NPLR) form, and two ways to diagonalise them.

HiPPO (Gu et al., 2020) gives the state matrix ``A`` and input vector ``B`` of the ODE
``x'(t) = A x(t) + B u(t)`` whose state holds the coefficients of ``u``'s history in a
Legendre basis. Two measures:

- LegS (scaled Legendre, the whole history):
  ``A_nk = -sqrt(2n+1) sqrt(2k+1)`` for ``n > k``, ``-(n+1)`` for ``n = k``, ``0`` above;
  ``B_n = sqrt(2n+1)``. With ``P_n = sqrt(n + 1/2)``, ``A + P Pᵀ = -I/2 + S`` with ``S`` skew.
- LegT (translated Legendre, a window of length ``theta``):
  ``A_nk = -sqrt(2n+1) sqrt(2k+1) / theta`` for ``n >= k``, times ``(-1)^(n-k)`` above the
  diagonal; ``B_n = sqrt(2n+1) / theta``. Its symmetric part has rank 2 (even and odd
  indices), so ``A + P₁P₁ᵀ + P₂P₂ᵀ`` is skew with ``P₁ = R·[n even]``, ``P₂ = R·[n odd]``,
  ``R_n = sqrt(2n+1 / theta)``.

Diagonalising ``A`` itself is ill-posed: LegS is triangular with a real spectrum
``-1, ..., -N`` and an eigenvector matrix whose condition number grows exponentially in ``N``.
Two remedies:

- the normal part ``A + P Pᵀ`` is unitarily diagonalisable; DSS and S5 use its eigenvalues
  ``Λ = mean(diag) + i·eig(-i·skew)`` ("HiPPO-N"), see :func:`hippo_nplr`;
- PTD (Yu, Mahoney & Erichson, 2023) diagonalises ``A + E`` for a small ``E`` chosen to keep
  the eigenvector condition number low, approximately minimising ``κ(V) + γ‖E‖``; the
  diagonal system is then backward-stable (``V Λ V⁻¹`` is within ``‖E‖`` of ``A``), see
  :func:`perturb_then_diagonalize`.

Everything here is NumPy in float64: these are initialisations, computed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["HippoNPLR", "PTDResult", "eigenvector_condition", "hippo", "hippo_legs", "hippo_legt",
           "hippo_nplr", "low_rank_correction", "perturb_then_diagonalize"]

MEASURES = ("legs", "legt")


def _check_size(N: int) -> None:
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
        raise ValueError(f"N: expected a positive int, got {N!r}")


def hippo_legs(N: int) -> tuple[np.ndarray, np.ndarray]:
    """HiPPO-LegS: ``A`` of shape ``[N, N]`` (lower triangular) and ``B`` of shape ``[N]``."""
    _check_size(N)
    n = np.arange(N, dtype=np.float64)
    root = np.sqrt(2 * n + 1)
    A = -np.tril(np.outer(root, root), k=-1) - np.diag(n + 1)
    return A, root.copy()


def hippo_legt(N: int, theta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """HiPPO-LegT for a window of length ``theta`` (default 1): ``A`` ``[N, N]``, ``B`` ``[N]``."""
    _check_size(N)
    if not theta > 0:
        raise ValueError(f"theta: expected a positive window length, got {theta!r}")
    n = np.arange(N, dtype=np.float64)
    root = np.sqrt(2 * n + 1)
    row, col = np.meshgrid(n, n, indexing="ij")
    sign = np.where(row >= col, 1.0, (-1.0) ** (row - col))
    return -np.outer(root, root) * sign / theta, root / theta


def hippo(measure: str, N: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` of ``measure`` ("legs" or "legt", the latter with ``theta = 1``)."""
    if measure == "legs":
        return hippo_legs(N)
    if measure == "legt":
        return hippo_legt(N)
    raise ValueError(f"measure: expected one of {MEASURES}, got {measure!r}")


def low_rank_correction(measure: str, N: int) -> np.ndarray:
    """``P`` of shape ``[r, N]`` with ``A + Σ_r P_r P_rᵀ`` normal: ``r = 1`` for LegS (its
    symmetric part becomes ``-I/2``), ``r = 2`` for LegT (it becomes ``0``)."""
    _check_size(N)
    n = np.arange(N, dtype=np.float64)
    if measure == "legs":
        return np.sqrt(n + 0.5)[None, :]
    if measure == "legt":
        root = np.sqrt(2 * n + 1)
        even = (n % 2 == 0).astype(np.float64)
        return np.stack([root * even, root * (1 - even)])
    raise ValueError(f"measure: expected one of {MEASURES}, got {measure!r}")


@dataclass(frozen=True)
class HippoNPLR:
    """``A = V diag(Lambda) Vᴴ - Pᵀ P`` with ``V`` unitary.

    Attributes:
        A: ``[N, N]`` the HiPPO matrix; B: ``[N]`` its input vector; P: ``[r, N]`` the low-rank
        correction; Lambda: ``[N]`` complex eigenvalues of the normal part ``A + PᵀP``, sorted by
        imaginary part, descending; V: ``[N, N]`` complex unitary eigenvectors (columns).
    """

    A: np.ndarray
    B: np.ndarray
    P: np.ndarray
    Lambda: np.ndarray
    V: np.ndarray

    @property
    def normal(self) -> np.ndarray:
        """The normal part ``A + PᵀP``, ``[N, N]``."""
        return self.A + self.P.T @ self.P


def hippo_nplr(measure: str, N: int) -> HippoNPLR:
    """NPLR form of HiPPO-``measure`` and the unitary diagonalisation of its normal part.

    The normal part is ``d·I + S`` with ``S`` skew and ``d`` its mean diagonal (``-1/2`` for
    LegS, ``0`` for LegT); ``-i·S`` is Hermitian, so ``eigh`` diagonalises it stably and
    ``Λ = d + i·eig(-i·S)``.
    """
    A, B = hippo(measure, N)
    P = low_rank_correction(measure, N)
    normal = A + P.T @ P
    shift = np.mean(np.diag(normal))
    skew = normal - shift * np.eye(N)
    frequencies, V = np.linalg.eigh(-1j * skew)
    order = np.argsort(-frequencies, kind="stable")
    return HippoNPLR(A=A, B=B, P=P, Lambda=shift + 1j * frequencies[order], V=V[:, order])


def eigenvector_condition(V: np.ndarray) -> float:
    """2-norm condition number of ``V`` after scaling every column to unit length."""
    return float(np.linalg.cond(V / np.linalg.norm(V, axis=0, keepdims=True)))


@dataclass(frozen=True)
class PTDResult:
    """``A + E = V diag(Lambda) V⁻¹``.

    Attributes:
        Lambda: ``[N]`` complex eigenvalues of ``A + E``; V: ``[N, N]`` complex eigenvectors
        (unit columns); E: ``[N, N]`` the perturbation; condition: ``κ(V)``; relative_size:
        ``‖E‖₂ / ‖A‖₂``.
    """

    Lambda: np.ndarray
    V: np.ndarray
    E: np.ndarray
    condition: float
    relative_size: float


def perturb_then_diagonalize(A: np.ndarray, gamma: float = 1e9,
                             sizes: np.ndarray | None = None, trials: int = 4,
                             seed: int = 0) -> PTDResult:
    """Diagonalise ``A + E``, with ``E`` approximately minimising ``κ(V) + γ‖E‖₂/‖A‖₂``.

    The search: ``trials`` seeded Gaussian directions, each scaled to every relative size in
    ``sizes`` (default ``10^-10 ... 10^-2``, 17 points); the pair with the lowest objective
    wins. For HiPPO-LegS ``κ(V)`` falls roughly like ``1/‖E‖``, so the default ``gamma = 1e9``
    lands near ``‖E‖ ≈ 1e-4 ‖A‖`` with ``κ(V) ≈ 1e5`` (naive diagonalisation: ``> 1e15`` at
    ``N = 64``).

    Args:
        A: ``[N, N]`` real or complex state matrix.
        gamma: weight of the perturbation's size against the condition number.
        sizes: candidate values of ``‖E‖₂/‖A‖₂``, all positive.
        trials: number of random directions.
        seed: seed of the directions.
    """
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A: expected a square matrix, got shape {A.shape}")
    if not gamma >= 0:
        raise ValueError(f"gamma: expected a non-negative weight, got {gamma!r}")
    sizes = np.logspace(-10, -2, 17) if sizes is None else np.asarray(sizes, dtype=np.float64)
    if sizes.ndim != 1 or sizes.size == 0 or np.any(~(sizes > 0)):
        raise ValueError(f"sizes: expected a non-empty 1-D array of positive values, got {sizes}")
    if trials < 1:
        raise ValueError(f"trials: expected a positive int, got {trials!r}")
    norm = np.linalg.norm(A, 2)
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(trials):
        direction = rng.standard_normal(A.shape)
        direction /= np.linalg.norm(direction, 2)
        for size in sizes:
            E = size * norm * direction
            Lambda, V = np.linalg.eig(A + E)
            V = V / np.linalg.norm(V, axis=0, keepdims=True)
            condition = eigenvector_condition(V)
            objective = condition + gamma * size
            if best is None or objective < best[0]:
                best = (objective, PTDResult(Lambda=Lambda.astype(np.complex128),
                                             V=V.astype(np.complex128), E=E,
                                             condition=condition, relative_size=float(size)))
    return best[1]
