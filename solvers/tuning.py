"""Online tuning of solver parameters from iteration counts, in the manner of *Learning to Relax*.

A tuner chooses a parameter value (SOR's ω, a restart length, a recycle dimension, ...) for
each system of a sequence and learns from the cost of the solve that used it::

    tuner = TsallisINF(omega_grid(), seed=0)
    for A, b in systems:
        omega = tuner.suggest()
        result = solve(A, b, method="sor", omega=omega)
        tuner.observe(result.iterations)

``solve(..., omega=tuner, context=c)`` does the two calls itself and records the chosen value
in ``result.info["tuned"]``. A solve that does not converge reports its capped iteration count
(``maxiter``), never NaN, so a bad value is penalised by the cap.

The contract: ``suggest(context=None) -> value`` and ``observe(cost) -> None`` strictly
alternate. Every tuner is seeded (a NumPy ``Generator`` on PCG64) and saves its complete state,
random state included, as JSON, so that ``save`` → ``load`` → continue gives the same
suggestions as a run that never stopped.

Tuners:

- :class:`TsallisINF`: ½-Tsallis-entropy FTRL (Zimmert & Seldin) over a grid of values.
- :class:`ContextualTsallisINF`: one Tsallis-INF per bin of a scalar context.
- :class:`ChebCB`: SquareCB with a Chebyshev-polynomial regression of the cost per arm.
- :class:`FixedTuner`, :class:`OracleTuner` (instance-optimal by exhaustive search) and
  :class:`YoungTuner` (Young's ω* for SOR): baselines.

Loss normalisation (all bandits). Raw costs are mapped to losses by a running affine scale,
``loss = (cost − offset) / width``, chosen by ``scale``:

- ``"mean"`` (default): ``(cost − m) / (μ − m)`` with ``m`` the smallest and ``μ`` the mean
  cost seen so far. Typical losses are O(1); a rare expensive instance gives a loss above 1
  (up to ``(M − m)/(μ − m)``), which is not clipped. This is ``"range"`` with the learning
  rate multiplied by ``(M − m)/(μ − m)``; on SOR's shifted-Laplacian test bed, where a few
  nearly singular instances cost 10–20× the median, it is what lets Tsallis-INF learn in
  5000 rounds (``"max"``/``"range"`` stay near uniform play there: ~1.8× the best fixed ω
  against ~1.1×).
- ``"range"``: ``(cost − m) / (M − m)`` with the running maximum ``M``: losses in [0, 1].
- ``"max"``: ``cost / M``: losses in [0, 1], the textbook choice, but iteration counts that
  differ by a few percent then give losses that differ by a few percent, and learning stalls.
- a number ``s``: ``min(cost, s) / s`` (costs above ``s`` are clipped, e.g. ``s = maxiter``).

The learners keep their statistics in raw cost units and apply the current scale when they
need losses, so when the scale changes every past loss is re-normalised exactly with it: the
learner always sees one consistent loss sequence. With all costs equal so far every loss is 0.
"""

from __future__ import annotations

import abc
import json
import math
import numbers
import os
import warnings
from typing import Any, Callable, ClassVar, Optional, Sequence, Union

import numpy as np

from pdesuite.solvers.validation import check_real

__all__ = [
    "ChebCB",
    "ContextualTsallisINF",
    "FixedTuner",
    "OracleTuner",
    "TsallisINF",
    "Tuner",
    "YoungTuner",
    "omega_grid",
    "tsallis_inf_probabilities",
]

#: Version of the layout written by :meth:`Tuner.state_dict`.
STATE_FORMAT = 1

SeedLike = Union[int, None, np.random.SeedSequence]
ScaleLike = Union[str, float]
_SCALE_MODES = ("max", "range", "mean")


# --------------------------------------------------------------------------------------------
# Helpers


def omega_grid(lo: float = 1.0, hi: float = 1.95, n: int = 20) -> np.ndarray:
    """``n`` equispaced relaxation factors in ``[lo, hi]``, the default grid of the paper.

    Args:
        lo, hi: the end points; SOR converges for SPD matrices only for ω in (0, 2), so
            ``0 < lo < hi < 2`` (``lo == hi`` only with ``n == 1``).
        n: number of values, ``>= 1``. Default 20.

    Returns:
        ``[n]`` float array.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n: must be an integer >= 1, got {n!r}")
    for name, value in (("lo", lo), ("hi", hi)):
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name}: must be a finite number, got {value!r}")
        if not 0.0 < value < 2.0:
            raise ValueError(f"{name}: relaxation factors must lie in (0, 2), got {value}")
    if lo > hi or (lo == hi and n > 1):
        raise ValueError(f"lo, hi: need lo < hi for a grid of n={n} values, got lo={lo}, hi={hi}")
    return np.linspace(float(lo), float(hi), int(n))


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


def _validate_values(values: Any) -> list:
    if isinstance(values, (str, bytes)):
        raise TypeError(f"values: expected a sequence of candidate values, got {type(values).__name__}")
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise ValueError(f"values: expected a 1-D grid, got an array of shape {values.shape}")
    try:
        items = list(values)
    except TypeError:
        raise TypeError(f"values: expected a sequence of candidate values, got {type(values).__name__}") from None
    if len(items) == 0:
        raise ValueError("values: the grid of candidate values is empty")
    return [_to_python(v) for v in items]


def _to_python(value: Any) -> Any:
    """NumPy scalars to Python scalars, so that values and contexts serialise to JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _validate_cost(cost: Any) -> float:
    if isinstance(cost, bool) or not isinstance(cost, (numbers.Real, np.generic)):
        raise TypeError(f"cost: expected a real number (e.g. an iteration count), got {type(cost).__name__}")
    cost = float(cost)
    if math.isnan(cost):
        raise ValueError("cost: is NaN; report the capped iteration count of a failed solve instead")
    if math.isinf(cost):
        raise ValueError("cost: is infinite; report the capped iteration count of a failed solve instead")
    if cost < 0:
        raise ValueError(f"cost: must be >= 0, got {cost}")
    return cost


def _validate_scale(scale: Any) -> ScaleLike:
    if isinstance(scale, str):
        if scale not in _SCALE_MODES:
            raise ValueError(f"scale: must be one of {_SCALE_MODES} or a number > 0, got {scale!r}")
        return scale
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: must be one of {_SCALE_MODES} or a finite number > 0, got {scale!r}")
    return float(scale)


def _validate_context_range(context_range: Any) -> tuple[float, float]:
    try:
        lo, hi = context_range
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(f"context_range: expected a pair (lo, hi) of numbers, got {context_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"context_range: need finite lo < hi, got ({lo}, {hi})")
    return lo, hi


def _recordable_context(context: Any) -> Any:
    """What the history keeps of a context: a finite scalar or string; anything else (a matrix,
    a callable) becomes None, so that the history stays small and serialises to JSON."""
    context = _to_python(context)
    if context is None or isinstance(context, (bool, str)):
        return context
    if isinstance(context, numbers.Integral):
        return int(context)
    if isinstance(context, numbers.Real):
        return float(context) if math.isfinite(context) else None
    return None


def _json_normalise(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


class _RunningScale:
    """Maps raw costs to losses by a running (or fixed) affine scale; see the module doc.

    Losses are affine in the raw cost, ``loss = (cost − offset) / width``, so a learner that
    keeps sums of raw costs can re-normalise them exactly whenever the scale changes.
    """

    def __init__(self, scale: ScaleLike):
        self.mode = scale
        self.low = math.inf
        self.high = -math.inf
        self.total = 0.0
        self.count = 0

    def clip(self, cost: float) -> float:
        """The cost as stored: clipped to a fixed scale, unchanged for a running one."""
        return min(cost, self.mode) if isinstance(self.mode, float) else cost

    def update(self, cost: float) -> None:
        self.low = min(self.low, cost)
        self.high = max(self.high, cost)
        self.total += cost
        self.count += 1

    @property
    def offset(self) -> float:
        return self.low if self.mode in ("range", "mean") and math.isfinite(self.low) else 0.0

    @property
    def width(self) -> float:
        if isinstance(self.mode, float):
            return self.mode
        if not math.isfinite(self.high):
            return 1.0
        if self.mode == "mean":
            width = self.total / self.count - self.offset
        else:
            width = self.high - self.offset
        # All costs equal so far: every loss is zero whatever the width.
        return width if width > 0 else 1.0

    def state(self) -> dict:
        return {"low": self.low if math.isfinite(self.low) else None,
                "high": self.high if math.isfinite(self.high) else None,
                "total": self.total, "count": self.count}

    def load(self, state: dict) -> None:
        self.low = math.inf if state["low"] is None else float(state["low"])
        self.high = -math.inf if state["high"] is None else float(state["high"])
        self.total = float(state["total"])
        self.count = int(state["count"])


def _sample(rng: np.random.Generator, probabilities: np.ndarray) -> int:
    cumulative = np.cumsum(probabilities)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(index, len(probabilities) - 1)


# --------------------------------------------------------------------------------------------
# Base class


def is_tuner(value: Any) -> bool:
    """Whether ``value`` is a tuner: anything with ``suggest`` and ``observe`` (duck typed, so
    that a user's own bandit works without subclassing :class:`Tuner`)."""
    return hasattr(value, "suggest") and hasattr(value, "observe")


class Tuner(abc.ABC):
    """Chooses a parameter value per solve and learns from the cost (iterations) of each.

    ``suggest(context)`` and ``observe(cost)`` alternate strictly: a second ``suggest`` before
    ``observe``, or an ``observe`` without a pending suggestion, raises ``RuntimeError``.
    ``cancel()`` drops a pending suggestion (e.g. when the solve raised).

    Attributes:
        history: list of ``(value, cost, context)`` per completed round; a context that is not
            a finite scalar (a matrix, for instance) is recorded as None.
        seed: the seed the tuner was built with (an integer; None draws fresh entropy, and
            the run is then not reproducible, although save/load still resumes it exactly).
    """

    _registry: ClassVar[dict[str, type["Tuner"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Loading dispatches on the class name stored in the file.
        Tuner._registry[cls.__name__] = cls

    def __init__(self, seed: SeedLike = 0):
        if seed is not None and not isinstance(seed, np.random.SeedSequence):
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
                raise ValueError(f"seed: must be an integer >= 0 or None, got {seed!r}")
            seed = int(seed)
        self.seed = seed if not isinstance(seed, np.random.SeedSequence) else None
        self._rng = np.random.default_rng(seed)
        self.history: list[tuple[Any, float, Any]] = []
        self._pending: Optional[dict[str, Any]] = None

    # -- the protocol ---------------------------------------------------------------------

    def suggest(self, context: Any = None) -> Any:
        """The value to use for the next solve.

        Args:
            context: side information on the coming instance (a scalar for the contextual
                tuners, the matrix for :class:`YoungTuner`); ignored by the others.
        """
        if self._pending is not None:
            raise RuntimeError(
                f"{type(self).__name__}.suggest() called twice without observe(): report the cost "
                "of the previous suggestion with observe(cost) first, or drop it with cancel()"
            )
        value, details = self._choose(context)
        self._pending = {"value": value, "context": _recordable_context(context), **details}
        return value

    def observe(self, cost: float) -> None:
        """Report the cost (e.g. iterations, ``>= 0``) of the solve that used the last suggestion.

        A solve that did not converge should report its capped iteration count.
        """
        if self._pending is None:
            raise RuntimeError(
                f"{type(self).__name__}.observe() called without a pending suggestion: "
                "call suggest() before each solve and observe(cost) after it"
            )
        cost = _validate_cost(cost)
        pending = self._pending
        self._update(pending, cost)
        self._pending = None
        self.history.append((pending["value"], cost, pending["context"]))

    def cancel(self) -> None:
        """Forget the pending suggestion without learning from it (the solve failed to run).

        The random state is not rewound.
        """
        self._cancel_pending()
        self._pending = None

    @property
    def pending(self) -> bool:
        """Whether a suggestion waits for its cost."""
        return self._pending is not None

    # -- what subclasses implement --------------------------------------------------------

    @abc.abstractmethod
    def _choose(self, context: Any) -> tuple[Any, dict]:
        """Return the value and the JSON-serialisable details ``_update`` needs."""

    @abc.abstractmethod
    def _update(self, pending: dict, cost: float) -> None:
        """Learn from ``cost`` of the pending suggestion."""

    def _cancel_pending(self) -> None:
        pass

    def _config(self) -> dict:
        """Constructor arguments that rebuild an equal, fresh tuner (JSON-serialisable)."""
        return {"seed": self.seed}

    def _learner_state(self) -> dict:
        return {}

    def _load_learner_state(self, state: dict) -> None:
        pass

    @classmethod
    def _from_config(cls, config: dict, **kwargs: Any) -> "Tuner":
        return cls(**config, **kwargs)

    # -- persistence ----------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The complete state as a JSON-serialisable dict (class, configuration, random state,
        history, pending suggestion, learner statistics)."""
        state = {
            "class": type(self).__name__,
            "format": STATE_FORMAT,
            "config": self._config(),
            "rng": self._rng.bit_generator.state,
            "history": [[value, cost, context] for value, cost, context in self.history],
            "pending": self._pending,
            "state": self._learner_state(),
        }
        return _json_normalise(state)

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict`; the tuner must have the same class and
        configuration."""
        if not isinstance(state, dict) or "class" not in state:
            raise ValueError("state: not a tuner state dict (no 'class' entry)")
        if state["class"] != type(self).__name__:
            raise ValueError(f"state: saved from a {state['class']}, cannot load into a {type(self).__name__}")
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"state: unsupported format {state.get('format')!r}; expected {STATE_FORMAT}")
        if _json_normalise(self._config()) != _json_normalise(state["config"]):
            raise ValueError(
                f"state: configuration {state['config']} differs from this tuner's {self._config()}"
            )
        self._rng.bit_generator.state = state["rng"]
        self.history = [(value, float(cost), context) for value, cost, context in state["history"]]
        self._pending = state["pending"]
        self._load_learner_state(state["state"])

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write :meth:`state_dict` as JSON to ``path``."""
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.state_dict(), handle)
        # Replace atomically, so that a campaign interrupted while saving keeps the old state.
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], **kwargs: Any) -> "Tuner":
        """Rebuild a tuner saved with :meth:`save`, of the class stored in the file.

        Args:
            path: the JSON file.
            **kwargs: constructor arguments that cannot be saved (``cost_fn`` of an
                :class:`OracleTuner`).
        """
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
        name = state.get("class") if isinstance(state, dict) else None
        if name not in Tuner._registry:
            raise ValueError(f"path: {os.fspath(path)!r} holds no known tuner (class {name!r})")
        tuner_class = Tuner._registry[name]
        if not issubclass(tuner_class, cls):
            raise TypeError(f"path: holds a {name}, not a {cls.__name__}")
        tuner = tuner_class._from_config(state["config"], **kwargs)
        tuner.load_state_dict(state)
        return tuner

    def __repr__(self) -> str:
        config = ", ".join(f"{k}={v!r}" for k, v in self._config().items() if k != "values")
        return f"{type(self).__name__}({config}, rounds={len(self.history)})"


# --------------------------------------------------------------------------------------------
# Tsallis-INF


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
        self.values = _validate_values(values)
        self.scale = _validate_scale(scale)
        self.learning_rate = check_real("learning_rate", learning_rate, low=0.0, open_low=True)
        self._normaliser = _RunningScale(self.scale)
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
        index = _sample(self._rng, probabilities)
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


# --------------------------------------------------------------------------------------------
# Contextual tuners


def _scalar_context(context: Any, lo: float, hi: float, owner: str) -> float:
    """Validate a scalar context; clip it into ``[lo, hi]`` with a warning when outside."""
    if context is None:
        raise ValueError(f"context: {owner} needs a scalar context in [{lo}, {hi}], got None")
    context = _to_python(context)
    if isinstance(context, np.ndarray) and context.size == 1:
        context = context.item()
    if isinstance(context, bool) or not isinstance(context, numbers.Real):
        raise TypeError(f"context: {owner} needs a real scalar, got {type(context).__name__}")
    context = float(context)
    if math.isnan(context):
        raise ValueError(f"context: {owner} got NaN")
    if not lo <= context <= hi:
        clipped = min(max(context, lo), hi)
        warnings.warn(
            f"context: {context} lies outside context_range [{lo}, {hi}] of {owner}; clipped to {clipped}",
            UserWarning, stacklevel=4,
        )
        context = clipped
    return context


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
        self.values = _validate_values(values)
        self.context_range = _validate_context_range(context_range)
        if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
            raise ValueError(f"bins: must be an integer >= 1, got {bins!r}")
        self.bins = int(bins)
        streams = np.random.SeedSequence(self.seed).spawn(self.bins)
        self.learners = [TsallisINF(self.values, seed=stream, scale=scale, learning_rate=learning_rate)
                         for stream in streams]
        self.scale = self.learners[0].scale
        self.learning_rate = self.learners[0].learning_rate

    def bin_of(self, context: Any) -> int:
        """The bin index of a scalar context (clipped into range with a warning)."""
        lo, hi = self.context_range
        context = _scalar_context(context, lo, hi, type(self).__name__)
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

    def __init__(self, values: Sequence[Any], context_range: tuple[float, float], degree: int = 6,
                 seed: SeedLike = 0, gamma: float = 10.0, ridge: float = 1.0, scale: ScaleLike = "mean"):
        super().__init__(seed)
        self.values = _validate_values(values)
        self.context_range = _validate_context_range(context_range)
        if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 0:
            raise ValueError(f"degree: must be an integer >= 0, got {degree!r}")
        self.degree = int(degree)
        self.gamma = check_real("gamma", gamma, low=0.0, open_low=True)
        self.ridge = check_real("ridge", ridge, low=0.0, open_low=True)
        self.scale = _validate_scale(scale)
        self._normaliser = _RunningScale(self.scale)
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
        """``[degree + 1]`` Chebyshev features ``T_k(z)`` of a scalar context (clipped into range)."""
        lo, hi = self.context_range
        context = _scalar_context(context, lo, hi, type(self).__name__)
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
        index = _sample(self._rng, probabilities)
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
        solved = np.linalg.solve(matrix, np.stack([self._feature_costs[index], self._feature_sums[index]], axis=1))
        self._solved_costs[index], self._solved_sums[index] = solved[:, 0], solved[:, 1]
        self._cost_sum += cost
        self._rounds += 1

    def _config(self) -> dict:
        return {"values": self.values, "context_range": list(self.context_range),
                "degree": self.degree, "seed": self.seed, "gamma": self.gamma, "ridge": self.ridge,
                "scale": self.scale}

    def _learner_state(self) -> dict:
        return {"gram": self._gram.tolist(), "feature_costs": self._feature_costs.tolist(),
                "feature_sums": self._feature_sums.tolist(), "solved_costs": self._solved_costs.tolist(),
                "solved_sums": self._solved_sums.tolist(), "cost_sum": self._cost_sum,
                "rounds": self._rounds, "scale": self._normaliser.state()}

    def _load_learner_state(self, state: dict) -> None:
        self._gram = np.array(state["gram"], dtype=float)
        self._feature_costs = np.array(state["feature_costs"], dtype=float)
        self._feature_sums = np.array(state["feature_sums"], dtype=float)
        self._solved_costs = np.array(state["solved_costs"], dtype=float)
        self._solved_sums = np.array(state["solved_sums"], dtype=float)
        self._cost_sum = float(state["cost_sum"])
        self._rounds = int(state["rounds"])
        self._normaliser.load(state["scale"])


# --------------------------------------------------------------------------------------------
# Baselines


class FixedTuner(Tuner):
    """Always suggests ``value`` (the baselines ω = 1, ω = 1.5, best fixed ω in hindsight).

    Args:
        value: the value; it must be JSON-serialisable for :meth:`save`.
        seed: unused (kept for a uniform interface). Default 0.
    """

    def __init__(self, value: Any, seed: SeedLike = 0):
        super().__init__(seed)
        self.value = _to_python(value)

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

    def __init__(self, values: Sequence[Any], cost_fn: Callable[[Any, Any], float], seed: SeedLike = 0):
        super().__init__(seed)
        self.values = _validate_values(values)
        if not callable(cost_fn):
            raise TypeError(f"cost_fn: expected a callable (value, context) -> cost, got {type(cost_fn).__name__}")
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
            costs.append(_validate_cost(self.cost_fn(value, context)))
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
            raise ValueError("context: YoungTuner needs the matrix A (or a callable returning it) as context")
        matrix = context() if callable(context) else context
        return float(young_omega(matrix, **self.young_options)), {}

    def _update(self, pending: dict, cost: float) -> None:
        pass

    def _config(self) -> dict:
        return {"seed": self.seed, **self.young_options}
