"""Tsallis-INF (Zimmert & Seldin): ½-Tsallis-entropy FTRL over a grid, and its contextual
variant."""

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


def tsallis_inf_probabilities(losses: np.ndarray, eta: float, tol: float = 1e-13,
                              max_newton: int = 100) -> np.ndarray:
    """The ½-Tsallis-INF distribution ``p_i = 4 / (η (L_i − x))²`` with ``Σ p_i = 1``.

    The normaliser ``x < min L`` solves ``Σ 4/(η(L_i − x))² = 1``, written as
    ``g(x) = (Σ (L_i − x)⁻²)^(−1/2) − 2/η = 0``: the same root, but ``g`` is a power mean of
    the distances ``L_i − x`` and so nearly linear, and Newton's method on it needs a handful of
    steps where Newton on the sum itself needs ~20. ``g`` is concave and decreasing in ``x``, so
    Newton started where ``g ≤ 0`` (``Σ p ≥ 1``) moves monotonically towards the root and never
    crosses the pole at ``min L``. The start is ``min L − 1``, where ``Σ p ≥ 4/η² ≥ 1`` for
    ``η ≤ 2`` (which ``2/√t`` satisfies); for a larger ``η`` it is ``min L − 2/η``, where the
    best arm alone has probability one. A start at a fixed point instead lies beyond the pole
    once the cumulative losses pass it, and the iteration collapses the distribution onto one
    arm.

    Args:
        losses: ``[K]`` cumulative (estimated) losses.
        eta: learning rate, ``> 0``.
        tol: tolerance on ``|Σ p − 1|`` (the result is renormalised exactly afterwards).
        max_newton: cap on Newton steps.

    Returns:
        ``[K]`` probabilities, positive, summing to one.
    """
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"losses: expected a non-empty 1-D array, got shape {losses.shape}")
    if not np.all(np.isfinite(losses)):
        raise ValueError("losses: contains NaN or Inf")
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta: must be a finite number > 0, got {eta}")
    # Shifting all losses by a constant shifts x by the same: work with the distance
    # min L − x, so that large cumulative losses lose no precision.
    gaps = losses - losses.min()
    distance = min(1.0, 2.0 / eta)
    target = 2.0 / eta
    for _ in range(max_newton):
        inverse = 1.0 / (gaps + distance)
        sum_inverse_squares = float(inverse @ inverse)
        if abs(sum_inverse_squares * target * target - 1.0) <= tol:
            break
        power_mean = sum_inverse_squares ** -0.5
        slope = power_mean ** 3 * float(inverse @ (inverse * inverse))  # dg/d(distance) > 0
        distance += (target - power_mean) / slope
    probabilities = (target / (gaps + distance)) ** 2
    return probabilities / probabilities.sum()


class TsallisINF(Tuner):
    """½-Tsallis-entropy FTRL (Tsallis-INF, Zimmert & Seldin 2021) over a grid of values.

    Round ``t = 1, 2, ...`` plays arm ``i`` with probability ``p_i = 4/(η_t(L̂_i − x))²``,
    with ``η_t = learning_rate/√t`` (default ``2/√t``, the schedule of the paper and of
    Zimmert & Seldin) and the normaliser ``x`` found by Newton's method started at
    ``min L̂ − 1`` (:func:`tsallis_inf_probabilities`). ``L̂_i`` is the sum of the
    importance-weighted loss estimates ``loss_t/p_{t,i}`` over the rounds that played ``i``
    (unbiased: the other arms' estimates are 0 that round), and losses are the costs
    normalised by ``scale`` (see the module doc).

    Args:
        values: the ``K`` candidate values (the arms), e.g. :func:`omega_grid`.
        seed: seed of the sampling. Default 0.
        scale: ``"mean"`` (default), ``"range"``, ``"max"`` or a number; see the module doc.
        learning_rate: ``c`` in ``η_t = c/√t``. Default 2.
    """

    def __init__(self, values: Sequence[Any], seed: SeedLike = 0, scale: ScaleLike = "mean",
                 learning_rate: float = 2.0):
        super().__init__(seed)
        self.values = validate_values(values)
        self.scale = validate_scale(scale)
        self.learning_rate = check_real("learning_rate", learning_rate, low=0.0, open_low=True)
        self._normaliser = RunningScale(self.scale)
        # Per arm: Σ clipped cost / p and Σ 1/p over the rounds that played it, so that
        # L̂_i = (Σ cost/p − offset Σ 1/p) / width for the current scale.
        self._weighted_costs = np.zeros(len(self.values))
        self._weights = np.zeros(len(self.values))
        self._rounds = 0

    @property
    def rounds(self) -> int:
        """Completed rounds."""
        return self._rounds

    @property
    def eta(self) -> float:
        """The learning rate of the next round."""
        return self.learning_rate / math.sqrt(self._rounds + 1)

    @property
    def estimated_losses(self) -> np.ndarray:
        """``[K]`` cumulative importance-weighted loss estimates ``L̂`` at the current scale."""
        scale = self._normaliser
        return (self._weighted_costs - scale.offset * self._weights) / scale.width

    @property
    def probabilities(self) -> np.ndarray:
        """``[K]`` distribution of the next suggestion (positive, sums to one)."""
        return tsallis_inf_probabilities(self.estimated_losses, self.eta)

    @property
    def best_value(self) -> Any:
        """The value with the largest probability (the current favourite)."""
        return self.values[int(np.argmax(self.probabilities))]

    def _choose(self, context: Any) -> tuple[Any, dict]:
        probabilities = self.probabilities
        index = sample_arm(self._rng, probabilities)
        return self.values[index], {"index": index, "probability": float(probabilities[index])}

    def _update(self, pending: dict, cost: float) -> None:
        index, probability = pending["index"], pending["probability"]
        cost = self._normaliser.clip(cost)
        self._normaliser.update(cost)
        self._weighted_costs[index] += cost / probability
        self._weights[index] += 1.0 / probability
        self._rounds += 1

    def _config(self) -> dict:
        return {"values": self.values, "seed": self.seed, "scale": self.scale,
                "learning_rate": self.learning_rate}

    def _learner_state(self) -> dict:
        return {"weighted_costs": self._weighted_costs.tolist(), "weights": self._weights.tolist(),
                "rounds": self._rounds, "scale": self._normaliser.state()}

    def _load_learner_state(self, state: dict) -> None:
        self._weighted_costs = np.array(state["weighted_costs"], dtype=float)
        self._weights = np.array(state["weights"], dtype=float)
        self._rounds = int(state["rounds"])
        self._normaliser.load(state["scale"])


class ContextualTsallisINF(Tuner):
    """Tsallis-INF run separately in ``bins`` equal bins of a scalar context.

    A context outside ``context_range`` is clipped into it with a ``UserWarning`` (it then
    counts for the first or last bin); a NaN or missing context raises ``ValueError``.

    Args:
        values: the candidate values.
        context_range: ``(lo, hi)`` of the context.
        bins: number of bins, ``>= 1``. Default 6.
        seed: seed; each bin draws from its own stream spawned from it. Default 0.
        scale, learning_rate: as in :class:`TsallisINF`, for every bin (each bin keeps its own
            running scale).
    """

    def __init__(self, values: Sequence[Any], context_range: tuple[float, float], bins: int = 6,
                 seed: SeedLike = 0, scale: ScaleLike = "mean", learning_rate: float = 2.0):
        super().__init__(seed)
        self.values = validate_values(values)
        self.context_range = validate_context_range(context_range)
        if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
            raise ValueError(f"bins: must be an integer >= 1, got {bins!r}")
        self.bins = int(bins)
        streams = np.random.SeedSequence(self.seed).spawn(self.bins)
        self.learners = [
            TsallisINF(self.values, seed=stream, scale=scale, learning_rate=learning_rate)
            for stream in streams
        ]
        self.scale = self.learners[0].scale
        self.learning_rate = self.learners[0].learning_rate

    def bin_of(self, context: Any) -> int:
        """The bin index of a scalar context (clipped into range with a warning)."""
        lo, hi = self.context_range
        context = scalar_context(context, lo, hi, type(self).__name__)
        return min(int((context - lo) / (hi - lo) * self.bins), self.bins - 1)

    def probabilities(self, context: Any) -> np.ndarray:
        """``[K]`` distribution of the next suggestion for ``context``."""
        return self.learners[self.bin_of(context)].probabilities

    def _choose(self, context: Any) -> tuple[Any, dict]:
        index = self.bin_of(context)
        return self.learners[index].suggest(context), {"bin": index}

    def _update(self, pending: dict, cost: float) -> None:
        self.learners[pending["bin"]].observe(cost)

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self.learners[self._pending["bin"]].cancel()

    def _config(self) -> dict:
        return {"values": self.values, "context_range": list(self.context_range), "bins": self.bins,
                "seed": self.seed, "scale": self.scale, "learning_rate": self.learning_rate}

    def _learner_state(self) -> dict:
        return {"bins": [learner.state_dict() for learner in self.learners]}

    def _load_learner_state(self, state: dict) -> None:
        if len(state["bins"]) != self.bins:
            raise ValueError(f"state: has {len(state['bins'])} bins, this tuner {self.bins}")
        for learner, learner_state in zip(self.learners, state["bins"]):
            learner.load_state_dict(learner_state)
