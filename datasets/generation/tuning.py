"""Tuning inside generation: the tune configuration, and the tuner of one block.

A bandit of :mod:`pdesuite.solvers.tuning` chooses SOR/SSOR's ω (or the recycled dimension k)
for every linear solve and learns from its iteration count. It is created fresh for every block
and seeded from ``(seed, block)``, so its choices, and so the arrays, are the same for any
worker count and after a resume.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional, Union

import numpy as np

from pdesuite.solvers.recycling.rcg import default_ell
from pdesuite.solvers.vocabulary import METHOD_DEFAULTS

#: Options a tuner may choose per solve: ``solver={"tune": "omega"}``
#: (see :func:`resolve_tune_config`).
TUNABLE_OPTIONS = ("omega", "k")


#: Tuners by name, the classes of :mod:`pdesuite.solvers.tuning`.
TUNER_NAMES = ("tsallis", "contextual-tsallis", "chebcb", "fixed")


#: Scalar contexts of the contextual tuners (``NAME`` is a parameter of the family's samples).
TUNING_CONTEXTS = ("diagonal-contrast", "parameter-mean:NAME", "parameter-std:NAME")


_CONTEXTUAL_TUNERS = ("contextual-tsallis", "chebcb")


#: The constructor options of each tuner that a tune configuration may set.
_TUNER_OPTIONS = {
    "tsallis": ("scale", "learning_rate"),
    "contextual-tsallis": ("scale", "learning_rate", "bins"),
    "chebcb": ("degree", "gamma", "ridge", "scale"),
    "fixed": (),
}


_TUNE_KEYS = ("option", "tuner", "values", "value", "context", "context_range")


#: Preconditioner names and relaxation methods whose ω can be tuned.
_OMEGA_PRECONDITIONERS = ("sor", "ssor")


_OMEGA_METHODS = ("sor", "ssor")


#: Default context range of ``"diagonal-contrast"``: log10 of max/min diagonal entry, 0 to 2.
_DEFAULT_CONTRAST_RANGE = (0.0, 2.0)


#: Mixed into the tuner's seed so that its stream differs from every sample's stream.
_TUNER_STREAM = 0x74756E65


def resolve_tune_config(tune: Union[str, Mapping[str, Any]], solver_config: Mapping[str, Any],
                        explicit_k: bool = False) -> dict[str, Any]:
    """The full, JSON-serialisable configuration of the tuner of a generation.

    A tuner chooses one option of the solver for every linear solve, from the iteration counts
    of the solves before it (:mod:`pdesuite.solvers.tuning`, *Learning to Relax*):

    - ``"omega"``: the relaxation factor ω of an SOR/SSOR preconditioner (``M="sor"`` or
      ``"ssor"``; the solve gets ``pc_omega``), or of the relaxation method itself
      (``method="sor"``/``"ssor"``; it gets ``omega``). Values in (0, 2); default the grid
      of the paper, 20 values in [1, 1.95] (:func:`~pdesuite.solvers.tuning.omega_grid`).
    - ``"k"``: the recycled dimension of the RecyclingSolver (``"rcg"``/``"gcrodr"``), which
      may change from one system to the next (a smaller k >= 1 keeps the leading vectors of
      the space). Integers in [1, b), where the bound b is GCRO-DR's ``restart`` or rcg's
      ``ell`` (when not given, its derived default ``max(2k, 30)`` at the default k = 20,
      that is 40); default ``b/8, 2b/8, ..., 6b/8`` rounded (6 values; 5, 10, ..., 30 for
      b = 40). k = 0 is refused: the solver then discards the recycled space
      altogether, so one play of it would also cost the next solve, whatever arm that plays,
      its recycled start (a bandit would charge that cost to the wrong arm). The cost a tuner
      sees is the iteration count, not the time, so it does not charge a larger k for its
      dearer iterations: it tends to the largest k that pays.

    Args:
        tune: the option name (``"omega"`` or ``"k"``: Tsallis-INF over the default values),
            or a dict with ``option`` (required), ``tuner`` (one of :data:`TUNER_NAMES`,
            default ``"tsallis"``), ``values`` (the candidates), ``value`` (``"fixed"``
            only: the one value, instead of ``values``), the options of the tuner's class
            (``scale``, ``learning_rate``; ``bins`` for ``"contextual-tsallis"``; ``degree``,
            ``gamma``, ``ridge`` for ``"chebcb"``) and, for the contextual tuners,
            ``context`` and ``context_range``. No ``seed``: every block's tuner is seeded
            from the dataset seed and the block index.
        solver_config: the resolved solver configuration (``mode``, ``method``, ``M``,
            ``options``, ``restart`` or ``ell``) the tuner works in.
        explicit_k: the solver configuration set ``k`` itself (a conflict when tuning k).

    Contexts (contextual tuners only; a scalar per linear solve, clipped silently into
    ``context_range``):

    - ``"diagonal-contrast"`` (default): ``log10(max|a_ii| / min|a_ii|)`` of the matrix being
      solved, a measure of the coefficient contrast of any family; default range (0, 2).
    - ``"parameter-mean:NAME"``, ``"parameter-std:NAME"``: the mean or standard deviation of
      the sample's parameter ``NAME`` (e.g. ``"parameter-std:coefficient"`` of Darcy);
      ``context_range`` is then required.

    Returns:
        dict with ``option``, ``target`` (the solve option it sets: ``"pc_omega"``,
        ``"omega"`` or ``"k"``), ``tuner``, ``values``, ``context``, ``context_range`` and
        ``tuner_options``.

    Raises:
        ValueError: an unknown option, tuner, context or key; values out of range; an option
            the solver does not have (ω without SOR/SSOR, k without recycling); a tuned
            option that the configuration also fixes. Messages start with ``solver: tune``.
    """
    if isinstance(tune, str):
        tune = {"option": tune}
    if not isinstance(tune, Mapping):
        raise TypeError(f"solver: tune must be an option name {TUNABLE_OPTIONS} or a dict, got "
                        f"{type(tune).__name__}")
    spec = dict(tune)
    option = spec.pop("option", None)
    if option not in TUNABLE_OPTIONS:
        raise ValueError(f"solver: tune option must be one of {TUNABLE_OPTIONS}, got {option!r}")
    tuner = spec.pop("tuner", "tsallis")
    if tuner not in TUNER_NAMES:
        raise ValueError(f"solver: tune tuner must be one of {TUNER_NAMES}, got {tuner!r}")
    allowed = set(_TUNE_KEYS) | set(_TUNER_OPTIONS[tuner])
    unknown = sorted(set(spec) - allowed)
    if unknown:
        hint = (
            " (the tuner is seeded from the dataset seed and the block)"
            if "seed" in unknown
            else ""
        )
        raise ValueError(f"solver: tune has unknown key(s) {unknown} for tuner {tuner!r}; it takes "
                         f"{sorted(allowed - {'option', 'tuner'})}{hint}")
    method, preconditioner = solver_config["method"], solver_config["M"]
    options = solver_config["options"]

    if option == "omega":
        if preconditioner in _OMEGA_PRECONDITIONERS:
            target = "pc_omega"
        elif preconditioner is None and method in _OMEGA_METHODS:
            target = "omega"
        else:
            raise ValueError(f"solver: tune option 'omega' needs M in {_OMEGA_PRECONDITIONERS} or "
                             f"method in {_OMEGA_METHODS} without M; got method={method!r}, "
                             f"M={preconditioner!r}")
        if target in options:
            raise ValueError(f"solver: tune option 'omega' conflicts with the fixed {target}="
                             f"{options[target]!r}; drop one of them")
        default_values = None  # omega_grid(), filled below
    else:
        if solver_config["mode"] != "recycle":
            raise ValueError(f"solver: tune option 'k' needs a RecyclingSolver (method 'rcg' or "
                             f"'gcrodr'), got method={method!r}")
        if explicit_k:
            raise ValueError("solver: tune option 'k' conflicts with the fixed k of the solver "
                             "configuration; drop one of them")
        target = "k"
        name, bound = _k_bound(solver_config)
        # From bound/8 up, never 0: k = 0 would drop the recycle space (see the docstring).
        default_values = sorted({max(1, int(round(eighths * bound / 8))) for eighths in range(1, 7)}
                                & set(range(1, bound)))
        if not default_values:
            raise ValueError(f"solver: tune option 'k' needs {name} >= 2 (k in [1, {name})), "
                             f"got {name}={bound}")

    if tuner == "fixed":
        if "values" in spec:
            raise ValueError("solver: tune tuner 'fixed' takes 'value' (one value), not 'values'")
        if "value" not in spec:
            raise ValueError("solver: tune tuner 'fixed' needs 'value'")
        value = spec.pop("value")
        if isinstance(value, (list, tuple, np.ndarray)):
            raise ValueError(f"solver: tune tuner 'fixed' takes one value, got {len(value)}: "
                             f"{list(np.asarray(value).ravel().tolist())!r}")
        raw_values: Any = [value]
    else:
        if "value" in spec:
            raise ValueError(
                f"solver: tune 'value' is for tuner 'fixed'; tuner {tuner!r} takes 'values'"
            )
        raw_values = spec.pop("values", None)
        if raw_values is None:
            from pdesuite.solvers.tuning import omega_grid

            raw_values = omega_grid().tolist() if option == "omega" else default_values
    values = _tune_values(option, raw_values, solver_config)

    context = spec.pop("context", None)
    context_range = spec.pop("context_range", None)
    if tuner in _CONTEXTUAL_TUNERS:
        context = "diagonal-contrast" if context is None else context
        _check_context_name(context)
        if context_range is None:
            if context != "diagonal-contrast":
                raise ValueError(f"solver: tune context {context!r} needs a context_range (lo, hi)")
            context_range = _DEFAULT_CONTRAST_RANGE
        try:
            lo, hi = (float(v) for v in context_range)
        except (TypeError, ValueError):
            raise ValueError(f"solver: tune context_range must be a pair (lo, hi) of numbers, got "
                             f"{context_range!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(
                f"solver: tune context_range needs finite lo < hi, got {context_range!r}"
            )
        context_range = [lo, hi]
    elif context is not None or context_range is not None:
        raise ValueError(f"solver: tune context and context_range are for the contextual tuners "
                         f"{_CONTEXTUAL_TUNERS}, not {tuner!r}")

    resolved = {"option": option, "target": target, "tuner": tuner, "values": values,
                "context": context, "context_range": context_range,
                "tuner_options": dict(sorted(spec.items()))}
    try:
        json.dumps(resolved)
    except TypeError as error:
        raise TypeError(f"solver: tune options must be JSON-serialisable ({error})") from error
    try:  # the tuner's own checks (scale, learning_rate, bins, ...), once, here
        _build_tuner(resolved, seed=0)
    except (TypeError, ValueError) as error:
        raise ValueError(f"solver: tune: {error}") from error
    return resolved


def _tune_values(option: str, raw_values: Any, solver_config: Mapping[str, Any]) -> list:
    if isinstance(raw_values, (str, bytes, Mapping)) or not hasattr(raw_values, "__iter__"):
        raise ValueError(
            f"solver: tune values must be a sequence of candidates, got {raw_values!r}"
        )
    items = [v.item() if isinstance(v, np.generic) else v for v in raw_values]
    if not items:
        raise ValueError("solver: tune values are empty")
    if option == "omega":
        for value in items:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0.0 < value < 2.0
            ):
                raise ValueError(f"solver: tune values of omega must lie in (0, 2), got {value!r}")
        return [float(value) for value in items]
    name, bound = _k_bound(solver_config)
    for value in items:
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral or not 0 <= value < bound:
            raise ValueError(f"solver: tune values of k must be integers in [1, {name}={bound}), "
                             f"got {value!r}")
        if value == 0:
            raise ValueError(
                f"solver: tune values of k must not contain 0 (got {items!r}): at k = 0 "
                "the recycling solver discards its recycled space, so the solves after "
                f"it, whatever k they play, start without one; use values in "
                f"[1, {name}={bound})"
            )
    return [int(value) for value in items]


def _k_bound(solver_config: Mapping[str, Any]) -> tuple[str, int]:
    """The option that bounds a tuned k, and its value: ``restart`` of GCRO-DR, ``ell`` of rcg.

    rcg's ``ell`` left None is its derived default ``max(2k, 30)`` at the default k (40 for
    k = 20), as :func:`pdesuite.solvers.recycling.rcg` derives it.
    """
    if solver_config["method"] == "gcrodr":
        return "restart", int(solver_config["restart"])
    ell = solver_config.get("ell")
    if ell is None:
        ell = default_ell(METHOD_DEFAULTS["rcg"]["k"])
    return "ell", int(ell)


def _check_context_name(context: Any) -> None:
    if context == "diagonal-contrast":
        return
    if isinstance(context, str) and ":" in context:
        statistic, name = context.split(":", 1)
        if statistic in ("parameter-mean", "parameter-std") and name:
            return
    raise ValueError(f"solver: tune context must be one of {TUNING_CONTEXTS}, got {context!r}")


def _build_tuner(tune: Mapping[str, Any], seed: int) -> Any:
    """A fresh tuner of the resolved tune configuration ``tune``."""
    from pdesuite.solvers import tuning

    name, values, options = tune["tuner"], tune["values"], tune["tuner_options"]
    if name == "fixed":
        return tuning.FixedTuner(values[0], seed=seed)
    if name == "tsallis":
        return tuning.TsallisINF(values, seed=seed, **options)
    if name == "contextual-tsallis":
        return tuning.ContextualTsallisINF(
            values, tuple(tune["context_range"]), seed=seed, **options
        )
    return tuning.ChebCB(values, tuple(tune["context_range"]), seed=seed, **options)


def _tuner_seed(seed: int, block: int) -> int:
    """The seed of block ``block``'s tuner: a function of the dataset seed and the block only."""
    return int(np.random.SeedSequence([seed, block, _TUNER_STREAM]).generate_state(1, np.uint64)[0])


class BlockTuning:
    """The tuner of one block and the context of each of its solves."""

    def __init__(self, tune: Mapping[str, Any], seed: int, block: int):
        self.option = tune["option"]
        self.target = tune["target"]
        self.tuner = _build_tuner(tune, _tuner_seed(seed, block))
        self._context = tune["context"]
        self._range = tune["context_range"]

    def context(self, A: Any, params: Optional[Mapping[str, Any]]) -> Optional[float]:
        """The scalar context of a solve of ``A`` for the sample ``params`` (None if unused)."""
        if self._context is None:
            return None
        if self._context == "diagonal-contrast":
            diagonal = getattr(A, "diagonal", None)
            if not callable(diagonal):
                raise ValueError(f"solver: tune context 'diagonal-contrast' needs a matrix with "
                                 f"diagonal(), got {type(A).__name__}")
            magnitudes = np.abs(np.asarray(diagonal()))
            smallest = float(magnitudes.min())
            value = float(np.log10(magnitudes.max() / smallest)) if smallest > 0 else np.inf
        else:
            statistic, name = self._context.split(":", 1)
            if params is None or name not in params:
                raise ValueError(f"solver: tune context {self._context!r}: the samples have no "
                                 f"parameter {name!r}; they have {sorted(params or {})}")
            field = np.asarray(params[name], dtype=np.float64)
            value = float(field.mean() if statistic == "parameter-mean" else field.std())
        if np.isnan(value):
            raise ValueError(f"solver: tune context {self._context!r} is NaN")
        lo, hi = self._range
        return min(max(value, lo), hi)
