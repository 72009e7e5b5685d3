"""Shared pieces of the two *Learning to Relax* benchmarks (``bench_relax_shifted.py``,
``bench_relax_heat.py``): cost-table replay of tuners, plots.

Cost-table replay. A tuner learns only from the cost of the value it chose, so once the cost
of every candidate on every instance is known (a ``[T, K]`` table), feeding the tuner
``table[t, chosen]`` after each ``suggest`` is the same computation as solving instance ``t``
with the chosen value and reporting the iterations: the tuner sees the same numbers in the same
order and draws the same random numbers. Each benchmark checks this on real solves.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from pdesuite.solvers.tuning import Tuner


def arm_lookup(values: Sequence[float]) -> Callable[[Any], int]:
    """``value -> index`` into ``values`` for the values a tuner built on that grid returns.

    The tuners hand back the grid's own floats, so an exact dictionary lookup suffices; a value
    not on the grid raises ``KeyError`` naming it (it would mean that the tuner and the table
    disagree on the arms).
    """
    index = {float(v): i for i, v in enumerate(values)}

    def lookup(value: Any) -> int:
        try:
            return index[float(value)]
        except KeyError:
            raise KeyError(f"value {value!r} is not on the tuner's grid {list(index)}") from None

    return lookup


def replay(tuner: Tuner, table: np.ndarray, values: Sequence[float],
           contexts: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Run ``tuner`` against a cost table instead of live solves.

    Args:
        tuner: a fresh tuner whose grid is ``values``.
        table: ``[T, K]`` costs (iterations) of arm ``k`` on instance ``t``; columns beyond
            ``len(values)`` (extra baselines) are ignored.
        values: the ``K`` arms, in the table's column order.
        contexts: ``[T]`` scalar contexts passed to ``suggest``, or None.

    Returns:
        ``(chosen, costs)``: ``[T]`` arm indices and ``[T]`` costs paid.
    """
    steps = table.shape[0]
    lookup = arm_lookup(values)
    chosen = np.empty(steps, dtype=np.int64)
    costs = np.empty(steps, dtype=float)
    for t in range(steps):
        context = None if contexts is None else float(contexts[t])
        arm = lookup(tuner.suggest(context))
        chosen[t] = arm
        costs[t] = float(table[t, arm])
        tuner.observe(costs[t])
    return chosen, costs


def mean_std_curves(cumulative: np.ndarray, points: int = 200) -> dict[str, list[float]]:
    """Mean and standard deviation over trials of ``[trials, T]`` cumulative costs, at about
    ``points`` steps (the last one included), for the JSON results."""
    steps = cumulative.shape[1]
    at = np.unique(np.linspace(0, steps - 1, min(points, steps)).round().astype(int))
    return {"t": (at + 1).tolist(), "mean": cumulative[:, at].mean(axis=0).tolist(),
            "std": cumulative[:, at].std(axis=0).tolist()}


def plot_band(ax: Any, x: np.ndarray, samples: np.ndarray, label: str, **style: Any) -> None:
    """Mean of ``[trials, len(x)]`` samples as a line and ±1 standard deviation as a band."""
    mean = samples.mean(axis=0)
    std = samples.std(axis=0)
    (line,) = ax.plot(x, mean, label=label, **style)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.18, linewidth=0)


def matplotlib_pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only; the benchmarks run headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
