"""Baselines: a fixed value, the instance-optimal oracle, and Young's ω* for SOR."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from pdesuite.solvers.tuning.base import SeedLike, Tuner, to_python, validate_cost, validate_values


class FixedTuner(Tuner):
    """Always suggests ``value`` (the baselines ω = 1, ω = 1.5, best fixed ω in hindsight).

    Args:
        value: the value; it must be JSON-serialisable for :meth:`save`.
        seed: unused (kept for a uniform interface). Default 0.
    """

    def __init__(self, value: Any, seed: SeedLike = 0):
        super().__init__(seed)
        self.value = to_python(value)

    def _choose(self, context: Any) -> tuple[Any, dict]:
        return self.value, {}

    def _update(self, pending: dict, cost: float) -> None:
        pass

    def _config(self) -> dict:
        return {"value": self.value, "seed": self.seed}


class OracleTuner(Tuner):
    """Instance-optimal baseline: evaluates every candidate and suggests the cheapest.

    Each ``suggest(context)`` calls ``cost_fn(value, context)`` once per candidate, so it costs
    ``len(values)`` solves of the instance: a benchmark baseline, not a practical tuner.
    Ties go to the earlier value of the grid.

    Args:
        values: the candidate values.
        cost_fn: ``cost_fn(value, context) -> cost`` of the current instance with that value
            (e.g. the iterations of a solve). Not saved: pass it again to :meth:`Tuner.load`.
        seed: unused (kept for a uniform interface). Default 0.

    Attributes:
        last_costs: ``[K]`` costs of the candidates at the last suggestion.
        evaluations: total number of ``cost_fn`` calls.
    """

    def __init__(
        self, values: Sequence[Any], cost_fn: Callable[[Any, Any], float], seed: SeedLike = 0
    ):
        super().__init__(seed)
        self.values = validate_values(values)
        if not callable(cost_fn):
            raise TypeError(
                "cost_fn: expected a callable (value, context) -> cost, got "
                f"{type(cost_fn).__name__}"
            )
        self.cost_fn = cost_fn
        self.last_costs: Optional[np.ndarray] = None
        self.evaluations = 0

    @classmethod
    def _from_config(cls, config: dict, **kwargs: Any) -> "Tuner":
        if "cost_fn" not in kwargs:
            raise TypeError("cost_fn: the cost function of an OracleTuner is not saved; "
                            "pass it again, Tuner.load(path, cost_fn=...)")
        return cls(**config, **kwargs)

    def _choose(self, context: Any) -> tuple[Any, dict]:
        costs = []
        for value in self.values:
            costs.append(validate_cost(self.cost_fn(value, context)))
            self.evaluations += 1
        self.last_costs = np.array(costs)
        index = int(np.argmin(self.last_costs))
        return self.values[index], {"index": index}

    def _update(self, pending: dict, cost: float) -> None:
        pass

    def _config(self) -> dict:
        return {"values": self.values, "seed": self.seed}

    def _learner_state(self) -> dict:
        return {"evaluations": self.evaluations}

    def _load_learner_state(self, state: dict) -> None:
        self.evaluations = int(state["evaluations"])


class YoungTuner(Tuner):
    """Young's optimal SOR factor ``ω* = 1 + (β/(1 + √(1 − β²)))²``, ``β = ρ(I − D⁻¹A)``.

    ``suggest(context)`` takes the matrix ``A`` (or a zero-argument callable returning it) as
    the context and returns ``pdesuite.solvers.relaxation.young_omega(A, **young_options)``.
    It is optimal for consistently ordered matrices (the 5-point Laplacian in natural order,
    for instance) and a heuristic otherwise. The matrix is not kept in the history.

    Args:
        seed: unused (kept for a uniform interface). Default 0.
        **young_options: passed to ``young_omega``; must be JSON-serialisable for :meth:`save`.
    """

    def __init__(self, seed: SeedLike = 0, **young_options: Any):
        super().__init__(seed)
        self.young_options = dict(young_options)

    def _choose(self, context: Any) -> tuple[Any, dict]:
        from pdesuite.solvers.relaxation import young_omega

        if context is None:
            raise ValueError(
                "context: YoungTuner needs the matrix A (or a callable returning it) as context"
            )
        matrix = context() if callable(context) else context
        return float(young_omega(matrix, **self.young_options)), {}

    def _update(self, pending: dict, cost: float) -> None:
        pass

    def _config(self) -> dict:
        return {"seed": self.seed, **self.young_options}
