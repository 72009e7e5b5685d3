"""Training right-hand sides for a learned preconditioner: combinations of Ritz vectors of A.

DCDM trains on right-hand sides drawn from the spectrum of ``A`` rather than on random noise,
whose energy sits at the top of the spectrum where CG already does well: Lanczos, started from
``A g`` with ``g ~ N(0, I)`` (which damps the lowest modes' share of the start and any null
space), gives Ritz pairs ``(θ_i, v_i)``; a right-hand side is ``b = Σ c_i v_i`` with
``c_i ~ N(0, 1)``, the coefficients of the lowest ``low_fraction`` of the Ritz values
multiplied by ``low_weight`` (0.55 and 9 in the paper), normalised to ``‖b‖ = 1``. The low end
is where the network must act: those are the modes CG resolves last.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg as sla

__all__ = ["lanczos_ritz", "ritz_right_hand_sides"]


def lanczos_ritz(A: Any, steps: int, rng: np.random.Generator,
                 start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ritz pairs of a symmetric ``A`` ``[n, n]`` after ``steps`` Lanczos steps.

    Full reorthogonalisation (two classical Gram–Schmidt passes per step), so the Ritz vectors
    are orthonormal to working precision; the cost is ``O(n · steps²)``, for the few hundred
    steps that training needs. Stops early when the Krylov space is invariant.

    Args:
        A: anything with ``A @ v`` for ``v`` ``[n]`` (a SciPy sparse matrix).
        steps: Lanczos steps, at most ``n``.
        rng: draws the start ``A g``, ``g ~ N(0, I)``, unless ``start`` is given.
        start: the start vector ``[n]`` (any norm).

    Returns:
        ``(values [m], vectors [n, m])``, values ascending, ``m ≤ steps``.
    """
    n = A.shape[0]
    steps = int(min(steps, n))
    if steps < 1:
        raise ValueError(f"steps: expected at least 1, got {steps}")
    v = np.asarray(A @ rng.standard_normal(n) if start is None else start, dtype=float)
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("lanczos_ritz: the start vector is zero or not finite")
    basis = np.zeros((steps, n))
    alphas, betas = [], []
    v = v / norm
    for k in range(steps):
        basis[k] = v
        w = np.asarray(A @ v, dtype=float)
        alphas.append(float(v @ w))
        for _ in range(2):
            w -= basis[:k + 1].T @ (basis[:k + 1] @ w)
        beta = float(np.linalg.norm(w))
        if k == steps - 1 or beta <= 1e-12 * max(abs(alphas[-1]), 1e-300):
            break
        betas.append(beta)
        v = w / beta
    m = len(alphas)
    values, coefficients = sla.eigh_tridiagonal(np.array(alphas), np.array(betas[:m - 1]))
    return values, basis[:m].T @ coefficients


def ritz_right_hand_sides(values: np.ndarray, vectors: np.ndarray, count: int,
                          rng: np.random.Generator, low_fraction: float = 0.55,
                          low_weight: float = 9.0, drop_below: float = 1e-8) -> np.ndarray:
    """``count`` normalised right-hand sides ``[n, count]`` from Ritz pairs (module docstring).

    Args:
        values, vectors: ``[m]`` ascending and ``[n, m]``, as :func:`lanczos_ritz` returns.
        count: right-hand sides to draw.
        rng: draws the coefficients.
        low_fraction: share of the kept Ritz values, from the lowest, whose coefficients are
            weighted. Default 0.55 (the paper's 5,500 of 10,000).
        low_weight: their weight. Default 9.
        drop_below: Ritz values at or below ``drop_below · max(values)`` are dropped (the null
            space of a singular ``A``, where ``A⁻¹`` means nothing). Default 1e-8.
    """
    values = np.asarray(values)
    keep = values > drop_below * values.max()
    if not keep.any():
        raise ValueError("ritz_right_hand_sides: no Ritz value above drop_below · max")
    basis = vectors[:, keep]
    weights = np.ones(basis.shape[1])
    weights[:int(round(low_fraction * basis.shape[1]))] = low_weight
    rhs = basis @ (weights[:, None] * rng.standard_normal((basis.shape[1], int(count))))
    return rhs / np.linalg.norm(rhs, axis=0)
