"""ChebCB: SquareCB with a Chebyshev-polynomial regression of the cost per arm, over a scalar
context."""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

from pdesuite.solvers.tuning.base import (
    RunningScale,
    ScaleLike,
    SeedLike,
    Tuner,
    sample_arm,
    scalar_context,
    validate_context_range,
    validate_scale,
    validate_values,
)
from pdesuite.solvers.validation import check_real


class ChebCB(Tuner):
    """SquareCB (Foster & Rakhlin 2020) with a Chebyshev regression of the loss per arm.

    For arm ``a`` the loss is modelled as ``μ + φ(z)ᵀθ_a`` with ``φ = (T_0, ..., T_degree)``
    the Chebyshev polynomials at ``z``, the context mapped affinely from ``context_range`` onto
    [-1, 1], and ``μ`` the mean loss over all rounds (the prediction of an arm without data).
    ``θ_a`` is the ridge least-squares fit ``(ridge·I + Σ φφᵀ)⁻¹ Σ φ (loss − μ)`` over the
    rounds that played ``a``, kept online as accumulated normal equations in raw cost units
    (re-normalised exactly when the running scale changes). Predictions are clipped to
    ``[0, highest loss seen]``.

    Each round, with ``ŷ`` the predictions and ``b = argmin ŷ``, arm ``a ≠ b`` is played with
    probability ``1/(K + γ_t(ŷ_a − ŷ_b))`` and ``b`` with the rest (inverse-gap weighting),
    where ``γ_t = gamma·√(K·t)``: the anytime form of SquareCB's ``γ ∝ √(K T)``. The
    exploration then costs at most about ``K/γ_t`` loss per round. ``gamma = 10`` was the
    best of {3, 10, 30} on a simulation of the shifted-Laplacian test bed and on a synthetic
    problem with costs ``(v − c)²``, and the least sensitive to the noise level.

    A context outside ``context_range`` is clipped with a ``UserWarning``; NaN raises.

    Args:
        values: the ``K`` candidate values.
        context_range: ``(lo, hi)`` of the scalar context.
        degree: degree of the Chebyshev expansion. Default 6.
        seed: seed of the sampling. Default 0.
        gamma: ``γ_t = gamma·√(K t)``. Default 10.
        ridge: ridge regularisation of each arm's regression, in units of the normalised loss.
            Default 1.
        scale: ``"mean"`` (default), ``"range"``, ``"max"`` or a number; see the module doc.
    """

    def __init__(
        self,
        values: Sequence[Any],
        context_range: tuple[float, float],
        degree: int = 6,
        seed: SeedLike = 0,
        gamma: float = 10.0,
        ridge: float = 1.0,
        scale: ScaleLike = "mean",
    ):
        super().__init__(seed)
        self.values = validate_values(values)
        self.context_range = validate_context_range(context_range)
        if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 0:
            raise ValueError(f"degree: must be an integer >= 0, got {degree!r}")
        self.degree = int(degree)
        self.gamma = check_real("gamma", gamma, low=0.0, open_low=True)
        self.ridge = check_real("ridge", ridge, low=0.0, open_low=True)
        self.scale = validate_scale(scale)
        self._normaliser = RunningScale(self.scale)
        arms, features = len(self.values), self.degree + 1
        self._gram = np.zeros((arms, features, features))  # Σ φφᵀ per arm
        self._feature_costs = np.zeros((arms, features))  # Σ φ·cost per arm (raw units)
        self._feature_sums = np.zeros((arms, features))  # Σ φ per arm
        # (ridge·I + Σ φφᵀ)⁻¹ applied to the two sums above, per arm: only the played arm's
        # change in a round, so a suggestion needs no linear solve.
        self._solved_costs = np.zeros((arms, features))
        self._solved_sums = np.zeros((arms, features))
        self._cost_sum = 0.0
        self._rounds = 0

    @property
    def rounds(self) -> int:
        """Completed rounds."""
        return self._rounds

    @property
    def current_gamma(self) -> float:
        """γ of the next round."""
        return self.gamma * math.sqrt(len(self.values) * (self._rounds + 1))

    def features(self, context: Any) -> np.ndarray:
        """``[degree + 1]`` Chebyshev features ``T_k(z)`` of a scalar context (clipped into
        range)."""
        lo, hi = self.context_range
        context = scalar_context(context, lo, hi, type(self).__name__)
        z = min(max(2.0 * (context - lo) / (hi - lo) - 1.0, -1.0), 1.0)
        values = [1.0, z]
        for _ in range(self.degree - 1):
            values.append(2.0 * z * values[-1] - values[-2])
        return np.array(values[: self.degree + 1])

    def _predict(self, features: np.ndarray) -> np.ndarray:
        if self._rounds == 0:
            return np.zeros(len(self.values))
        scale = self._normaliser
        width = scale.width
        mean_cost = self._cost_sum / self._rounds
        # θ_a = (ridge·I + Σ φφᵀ)⁻¹ Σ φ(cost − mean cost) / width: the ridge fit of the
        # normalised losses minus their mean (the width cancels from the normal equations).
        theta = (self._solved_costs - mean_cost * self._solved_sums) / width
        highest_loss = (scale.high - scale.offset) / width
        return np.clip((mean_cost - scale.offset) / width + theta @ features, 0.0, highest_loss)

    def predicted_losses(self, context: Any) -> np.ndarray:
        """``[K]`` predicted normalised losses of every arm at ``context``."""
        return self._predict(self.features(context))

    def _distribution(self, predictions: np.ndarray) -> np.ndarray:
        arms = len(predictions)
        best = int(np.argmin(predictions))
        probabilities = 1.0 / (arms + self.current_gamma * (predictions - predictions[best]))
        probabilities[best] = 0.0
        probabilities[best] = 1.0 - probabilities.sum()
        return probabilities

    def probabilities(self, context: Any) -> np.ndarray:
        """``[K]`` distribution of the next suggestion at ``context``."""
        return self._distribution(self.predicted_losses(context))

    def _choose(self, context: Any) -> tuple[Any, dict]:
        features = self.features(context)
        probabilities = self._distribution(self._predict(features))
        index = sample_arm(self._rng, probabilities)
        return self.values[index], {"index": index, "features": features.tolist()}

    def _update(self, pending: dict, cost: float) -> None:
        index = pending["index"]
        features = np.asarray(pending["features"], dtype=float)
        cost = self._normaliser.clip(cost)
        self._normaliser.update(cost)
        self._gram[index] += np.outer(features, features)
        self._feature_costs[index] += features * cost
        self._feature_sums[index] += features
        matrix = self._gram[index] + self.ridge * np.eye(self.degree + 1)
        solved = np.linalg.solve(
            matrix, np.stack([self._feature_costs[index], self._feature_sums[index]], axis=1)
        )
        self._solved_costs[index], self._solved_sums[index] = solved[:, 0], solved[:, 1]
        self._cost_sum += cost
        self._rounds += 1

    def _config(self) -> dict:
        return {"values": self.values, "context_range": list(self.context_range),
                "degree": self.degree, "seed": self.seed, "gamma": self.gamma, "ridge": self.ridge,
                "scale": self.scale}

    def _learner_state(self) -> dict:
        return {
            "gram": self._gram.tolist(),
            "feature_costs": self._feature_costs.tolist(),
            "feature_sums": self._feature_sums.tolist(),
            "solved_costs": self._solved_costs.tolist(),
            "solved_sums": self._solved_sums.tolist(),
            "cost_sum": self._cost_sum,
            "rounds": self._rounds,
            "scale": self._normaliser.state(),
        }

    def _load_learner_state(self, state: dict) -> None:
        self._gram = np.array(state["gram"], dtype=float)
        self._feature_costs = np.array(state["feature_costs"], dtype=float)
        self._feature_sums = np.array(state["feature_sums"], dtype=float)
        self._solved_costs = np.array(state["solved_costs"], dtype=float)
        self._solved_sums = np.array(state["solved_sums"], dtype=float)
        self._cost_sum = float(state["cost_sum"])
        self._rounds = int(state["rounds"])
        self._normaliser.load(state["scale"])
