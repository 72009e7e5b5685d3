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


Modules: :mod:`.base` (the contract), :mod:`.tsallis`, :mod:`.chebcb`, :mod:`.baselines`.
"""

from pdesuite.solvers.tuning.base import STATE_FORMAT, Tuner, is_tuner, omega_grid
from pdesuite.solvers.tuning.baselines import FixedTuner, OracleTuner, YoungTuner
from pdesuite.solvers.tuning.chebcb import ChebCB
from pdesuite.solvers.tuning.tsallis import (
    ContextualTsallisINF,
    TsallisINF,
    tsallis_inf_probabilities,
)

__all__ = [
    "ChebCB",
    "ContextualTsallisINF",
    "FixedTuner",
    "OracleTuner",
    "STATE_FORMAT",
    "TsallisINF",
    "Tuner",
    "YoungTuner",
    "is_tuner",
    "omega_grid",
    "tsallis_inf_probabilities",
]
