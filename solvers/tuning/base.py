"""The tuner contract (:class:`Tuner`: suggest, observe, save and load) and what every tuner
shares."""

from __future__ import annotations

import abc
import json
import math
import numbers
import os
import warnings
from typing import Any, ClassVar, Optional, Union

import numpy as np

#: Version of the layout written by :meth:`Tuner.state_dict`.
STATE_FORMAT = 1


SeedLike = Union[int, None, np.random.SeedSequence]


ScaleLike = Union[str, float]


SCALE_MODES = ("max", "range", "mean")


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


def validate_values(values: Any) -> list:
    if isinstance(values, (str, bytes)):
        raise TypeError(
            f"values: expected a sequence of candidate values, got {type(values).__name__}"
        )
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise ValueError(f"values: expected a 1-D grid, got an array of shape {values.shape}")
    try:
        items = list(values)
    except TypeError:
        raise TypeError(
            f"values: expected a sequence of candidate values, got {type(values).__name__}"
        ) from None
    if len(items) == 0:
        raise ValueError("values: the grid of candidate values is empty")
    return [to_python(v) for v in items]


def to_python(value: Any) -> Any:
    """NumPy scalars to Python scalars, so that values and contexts serialise to JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def validate_cost(cost: Any) -> float:
    if isinstance(cost, bool) or not isinstance(cost, (numbers.Real, np.generic)):
        raise TypeError(
            f"cost: expected a real number (e.g. an iteration count), got {type(cost).__name__}"
        )
    cost = float(cost)
    if math.isnan(cost):
        raise ValueError(
            "cost: is NaN; report the capped iteration count of a failed solve instead"
        )
    if math.isinf(cost):
        raise ValueError(
            "cost: is infinite; report the capped iteration count of a failed solve instead"
        )
    if cost < 0:
        raise ValueError(f"cost: must be >= 0, got {cost}")
    return cost


def validate_scale(scale: Any) -> ScaleLike:
    if isinstance(scale, str):
        if scale not in SCALE_MODES:
            raise ValueError(f"scale: must be one of {SCALE_MODES} or a number > 0, got {scale!r}")
        return scale
    if (
        isinstance(scale, bool)
        or not isinstance(scale, numbers.Real)
        or not (math.isfinite(scale) and scale > 0)
    ):
        raise ValueError(
            f"scale: must be one of {SCALE_MODES} or a finite number > 0, got {scale!r}"
        )
    return float(scale)


def validate_context_range(context_range: Any) -> tuple[float, float]:
    try:
        lo, hi = context_range
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(
            f"context_range: expected a pair (lo, hi) of numbers, got {context_range!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"context_range: need finite lo < hi, got ({lo}, {hi})")
    return lo, hi


def recordable_context(context: Any) -> Any:
    """What the history keeps of a context: a finite scalar or string; anything else (a matrix,
    a callable) becomes None, so that the history stays small and serialises to JSON."""
    context = to_python(context)
    if context is None or isinstance(context, (bool, str)):
        return context
    if isinstance(context, numbers.Integral):
        return int(context)
    if isinstance(context, numbers.Real):
        return float(context) if math.isfinite(context) else None
    return None


def json_normalise(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


class RunningScale:
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


def sample_arm(rng: np.random.Generator, probabilities: np.ndarray) -> int:
    cumulative = np.cumsum(probabilities)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(index, len(probabilities) - 1)


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
        self._pending = {"value": value, "context": recordable_context(context), **details}
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
        cost = validate_cost(cost)
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
        return json_normalise(state)

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict`; the tuner must have the same class and
        configuration."""
        if not isinstance(state, dict) or "class" not in state:
            raise ValueError("state: not a tuner state dict (no 'class' entry)")
        if state["class"] != type(self).__name__:
            raise ValueError(
                f"state: saved from a {state['class']}, cannot load into a {type(self).__name__}"
            )
        if state.get("format") != STATE_FORMAT:
            raise ValueError(
                f"state: unsupported format {state.get('format')!r}; expected {STATE_FORMAT}"
            )
        if json_normalise(self._config()) != json_normalise(state["config"]):
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


def scalar_context(context: Any, lo: float, hi: float, owner: str) -> float:
    """Validate a scalar context; clip it into ``[lo, hi]`` with a warning when outside."""
    if context is None:
        raise ValueError(f"context: {owner} needs a scalar context in [{lo}, {hi}], got None")
    context = to_python(context)
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
            f"context: {context} lies outside context_range [{lo}, {hi}] of {owner}; clipped to "
            f"{clipped}",
            UserWarning,
            stacklevel=4,
        )
        context = clipped
    return context
