"""Dataset generation: draw, sort, solve (with Krylov recycling), store; resumable and parallel.

``generate(family, n, out=...)`` runs these steps:

1. **Plan.** Sample ``i`` is drawn by ``family.sample(np.random.default_rng([seed, i]))``, so it
   is the same whatever the order or the number of workers. For ``order="sorted"`` the sort key
   of every sample is drawn and the samples are ordered (:mod:`.sorting`; the sorting time is
   recorded apart from the solve time). With ``solver="auto"`` (the default) the candidate
   solvers are timed on the first samples of that order and the fastest is chosen
   (:mod:`.solver_choice`). The order and the solver are saved in ``<out>.parts/``.
2. **Blocks.** The solve order is cut into fixed blocks of ``chunk_size`` consecutive samples.
   Each block is solved from a *fresh* solver. With ``solver="recycle"`` one
   :class:`RecyclingSolver` (``"rcg"`` on SPD families, ``"gcrodr"`` otherwise) carries its
   recycle space from one sample to the next *within* the block, and forgets it at the block's
   end. With ``solver="direct"`` the block's solver is one
   :class:`~pdesuite.solvers.DirectSolver`, which analyses the sparsity pattern the block's
   matrices share once and refactors the values of each sample (the arrays do not depend on
   that reuse: the analysis is a function of the pattern alone).
3. **Workers.** The blocks still to do are split into ``workers`` contiguous runs of the sorted
   order, one process each (``spawn`` context); with ``workers=1`` everything runs in this
   process. Each finished block is one shard file ``<out>.parts/block_XXXXXX.h5``, written
   under a temporary name and renamed into place, so it is atomic.
4. **Merge.** The shards are copied into ``<out>.tmp`` with every sample at its original index
   ``i``, which is then renamed to ``out``, and ``<out>.parts/`` is removed.

Why blocks, and not one solver per worker: a recycled Krylov solution depends, in its last
bits, on the recycle space it started from, that is on every system solved before it by the
same solver. If a worker's solver ran across its whole share, the arrays would depend on the
number of workers. With fixed blocks, every sample sees the same predecessors whatever the
worker count, so **the same seed gives bitwise-identical arrays for any ``workers``**, and a
resumed run equals an uninterrupted one. The price is one cold solve per block; with the
default ``chunk_size=256`` that is under 1% of the solves. (Determinism assumes the same
machine and BLAS settings; BLAS libraries may round differently elsewhere.)

Resuming: rerun the same call. Shards already on disk are kept (a shard is checked before it
is trusted), leftover temporary files are removed, and only missing blocks are solved. A
different configuration (family, its config, n, seed, order, solver, chunk size ...) against
an existing partial run raises ValueError naming the plan file. A SIGKILL at any point loses
at most the blocks in flight. Worker processes notice when their parent dies and stop.

Per sample the solver statistics go to ``solver/`` (see :mod:`.storage`); a sample whose solve
did not converge is stored with ``converged=False`` and its reason, never dropped.

Tuning (``solver={..., "tune": "omega"}``, CLI ``--tune omega``; :func:`resolve_tune_config`):
a bandit of :mod:`pdesuite.solvers.tuning` chooses SOR/SSOR's ω (or the recycled dimension k)
for every linear solve and learns from its iteration count, as in *Learning to Relax*. Like the
recycle space, **the tuner is created fresh for every block and learns within the block only**:
it is seeded from ``(seed, block)``, so its choices, and so the arrays, are the same for any
worker count and after a resume. With few samples per block it has little to learn from; a
larger ``chunk_size`` gives it more. The value chosen for each sample is stored in
``solver/omega`` (or ``solver/k``; float64, the mean over the solves of a trajectory), and
the tune configuration is part of ``solver_config`` in the root attributes, so it is checked
on resume like the rest.

Time-dependent families (``family.time_dependent``) are run ``batch_size`` samples at a time
through ``family.simulate_batch(params_list, solves)`` (:meth:`PDEFamily.simulate_batch`; its
default loops over ``family.simulate``), with one ``solve(A, b, x0=None)`` per sample: all of
them are the block's one solver, each recording its own sample's statistics. The statistics of
all the calls within a trajectory are summed (iterations, matvecs, time), or the worst kept
(residual, reason). Trajectories are stored as ``trajectories [n, T, C, *spatial]``. A batch is
consecutive samples of one block (the block stays the atomic unit of writing and resuming),
so it is a function of the plan only. A family that steps a batch together (``navier-stokes``)
returns bitwise what it returns sample by sample (``family.batch_invariant``), so
``batch_size`` changes the speed, not the arrays; for a family that declares otherwise, the
batch size becomes part of the run configuration. So it does, to be safe, for a family whose
own ``simulate_batch`` uses its ``solve`` argument when the solver keeps state (recycling or a
tuner): the samples of a batch share that solver, and solves interleaved across them would
make the arrays depend on the batch (see :func:`_batch_size_may_change_arrays`; families with
no linear solves, and the default sample-by-sample loop, are unaffected). Default batch size:
``family.default_batch_size`` (1 for families that only loop), cut so that a batch's
trajectories stay within 256 MiB of float32.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import queue as queue_module
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np

from pdesuite.datasets.solver_choice import (
    MIN_PROBED_SAMPLES,
    PROBE_SAMPLES,
    candidate_solvers,
    choose_solver,
    rule_choice,
)
from pdesuite.datasets.shards import ShardWriter, merge_shards, shard_is_done, shard_layout
from pdesuite.datasets.sorting import timed_sort_order
from pdesuite.datasets.storage import (
    SCHEMA_VERSION,
    create_dataset_file,
    schema_attrs,
)
from pdesuite.solvers.direct import CHOLMOD_ORDERINGS, cholmod_available
from pdesuite.solvers.recycling.rcg import default_ell
from pdesuite.solvers.vocabulary import (
    DEFAULT_MAXITER,
    DEFAULT_RESTART,
    DEFAULT_RTOL,
    METHOD_DEFAULTS,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_BATCH_BYTES",
    "ORDERS",
    "TUNABLE_OPTIONS",
    "TUNER_NAMES",
    "TUNING_CONTEXTS",
    "add_arguments",
    "cli_generate",
    "generate",
    "resolve_solver_config",
    "resolve_tune_config",
    "run",
]

ORDERS = ("sorted", "given", "random")
GENERATION_SORT_METHODS = ("greedy", "fft", "none")
DEFAULT_CHUNK_SIZE = 256
#: Upper bound on the float32 trajectories of one batch of a time-dependent family.
MAX_BATCH_BYTES = 256 * 2**20
#: ``solver/reason`` of a sample that needed no linear solve (explicit time stepping).
NO_SOLVE_REASON = 0
_PLAN_FILE = "plan.json"
_ORDER_FILE = "order.npy"
_LOCK_FILE = "lock"
#: The options of the recycling methods, under their names in :mod:`pdesuite.solvers.vocabulary`
#: (GCRO-DR's ``restart``, ``k``, ``side``, ...; rcg's ``k``, ``ell``, ...) and RecyclingSolver's
#: ``solutions``: kept at the top of a recycle configuration, the rest goes to ``options``.
_RECYCLE_METHOD_KEYS = {method: tuple(name for name in METHOD_DEFAULTS[method] if name != "recycle")
                        + ("solutions",) for method in ("gcrodr", "rcg")}
_RECYCLE_KEYS = tuple(dict.fromkeys(_RECYCLE_METHOD_KEYS["gcrodr"] + _RECYCLE_METHOD_KEYS["rcg"]))
#: The options a recycle configuration always records, with the method's defaults: the cycle
#: length and recycled dimension of GCRO-DR, the recycled dimension and kept CG directions of rcg.
_RECYCLE_DEFAULTS = {method: {name: METHOD_DEFAULTS[method][name] for name in names}
                     for method, names in (("gcrodr", ("restart", "k")), ("rcg", ("k", "ell")))}
#: The options of a direct configuration (``solver="direct"``) besides rtol, atol and maxiter.
_DIRECT_KEYS = tuple(name for name in METHOD_DEFAULTS["direct"] if name != "factorization")
#: The options of ``solver={"method": "auto", ...}``: those every candidate takes.
_AUTO_KEYS = ("rtol", "atol", "maxiter")
#: Options a tuner may choose per solve: ``solver={"tune": "omega"}`` (see :func:`resolve_tune_config`).
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


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


def resolve_solver_config(solver: Union[str, Mapping[str, Any]], spd: bool) -> dict[str, Any]:
    """The full, JSON-serialisable solver configuration a generation runs with.

    Args:
        solver: ``"recycle"`` (a RecyclingSolver: ``"rcg"`` if ``spd`` else ``"gcrodr"``, with
            the method's defaults of :mod:`pdesuite.solvers.vocabulary`: GCRO-DR
            ``restart=40, k=20``, rcg ``k=20, ell=None``, i.e. ``max(2k, 30)``),
            ``"independent"`` (``"cg"`` if ``spd`` else ``"gmres"`` with restart 40, each
            sample from a zero guess), ``"direct"`` (one
            :class:`~pdesuite.solvers.DirectSolver` per block: the sparsity pattern analysed
            once, each sample refactored; Cholesky through CHOLMOD when ``spd`` and
            scikit-sparse is installed, else LU through SuperLU), or a dict with ``method``
            (``"gcrodr"``/``"rcg"`` recycle, ``"direct"`` factors, with the options ``spd``
            (default: the family's) and ``ordering`` and no ``M``; any other method of
            :func:`pdesuite.solvers.solve` solves independently), and optionally ``M`` (a
            preconditioner *name*, e.g. ``"ilu"``), ``rtol`` (default ``DEFAULT_RTOL``, 1e-8),
            ``atol`` (0), ``maxiter`` (``DEFAULT_MAXITER``, 10,000), the recycling options under
            the method's names (GCRO-DR ``restart``, ``k``, ``side``, ``stale_threshold``,
            ``reorthogonalize``, ``update_period``; rcg ``k``, ``ell``, ``stale_threshold``;
            both ``solutions``),
            ``tune`` (a tuner that chooses ω or k per solve; see :func:`resolve_tune_config`)
            and any further method or ``pc_*`` option.
        spd: the family's matrices are symmetric positive definite.

    Returns:
        dict with ``mode`` (``"recycle"``/``"independent"``/``"direct"``), ``method``, ``M``,
        ``rtol``, ``atol``, ``maxiter``, the recycling options (``restart`` and ``k`` of GCRO-DR, ``k``
        and ``ell`` of rcg always, the others when given), ``options`` (the rest) and, when
        tuning, ``tune`` (the resolved tune configuration; ``k`` is then None if k is the
        tuned option). A direct configuration records ``spd``, ``ordering`` and
        ``factorization``: the library that factors SPD matrices on this machine
        (``"cholmod"``, or ``"superlu"`` without scikit-sparse or when ``spd`` is False), so
        that a resume on a machine without CHOLMOD is refused rather than mixing libraries.

    Raises:
        ValueError: ``m`` (no option of any method: GCRO-DR's cycle length is ``restart``,
            rcg's number of kept CG directions ``ell``), a recycling option of the other
            recycling method, ``rcg`` on a family that is not SPD, a bad ``tune``.
    """
    if isinstance(solver, str):
        if solver == "recycle":
            config: dict[str, Any] = {"method": "rcg" if spd else "gcrodr"}
        elif solver == "independent":
            config = {"method": "cg"} if spd else {"method": "gmres", "restart": DEFAULT_RESTART}
        elif solver == "direct":
            config = {"method": "direct"}
        else:
            raise ValueError(f"solver: must be 'recycle', 'independent', 'direct' or a dict, got "
                             f"{solver!r}")
    elif isinstance(solver, Mapping):
        config = dict(solver)
        config.setdefault("method", "rcg" if spd else "gcrodr")
    else:
        raise TypeError(f"solver: must be 'recycle', 'independent', 'direct' or a dict, got "
                        f"{type(solver).__name__}")
    method = config.pop("method")
    if not isinstance(method, str):
        raise ValueError(f"solver: 'method' must be a method name, got {method!r}")
    method = method.lower()
    if "m" in config:
        raise ValueError("solver: 'm' is not an option; use 'restart' for the cycle length of "
                         "gcrodr (and gmres/fgmres) or 'ell' for the number of CG directions rcg "
                         "keeps for its recycle update")
    preconditioner = config.pop("M", None)
    if preconditioner is not None and not isinstance(preconditioner, str):
        raise TypeError("solver: 'M' must be a preconditioner name (e.g. 'ilu', 'jacobi') or None, "
                        f"so that the configuration can be stored and checked on resume; got "
                        f"{type(preconditioner).__name__}")
    if method == "direct":
        return _resolve_direct_config(config, preconditioner, spd)
    resolved = {
        "mode": "recycle" if method in ("gcrodr", "rcg") else "independent",
        "method": method,
        "M": preconditioner,
        "rtol": float(config.pop("rtol", DEFAULT_RTOL)),
        "atol": float(config.pop("atol", 0.0)),
        "maxiter": int(config.pop("maxiter", DEFAULT_MAXITER)),
    }
    tune = config.pop("tune", None)
    explicit_k = "k" in config
    if resolved["mode"] == "recycle":
        resolved.update(_RECYCLE_DEFAULTS[method])
        for key in _RECYCLE_KEYS:
            if key not in config:
                continue
            if key not in _RECYCLE_METHOD_KEYS[method]:
                raise ValueError(f"solver: {key!r} is not an option of method {method!r}; it takes "
                                 f"{list(_RECYCLE_METHOD_KEYS[method])}")
            resolved[key] = config.pop(key)
    resolved["options"] = dict(sorted(config.items()))
    try:
        json.dumps(resolved)
    except TypeError as error:
        raise TypeError(f"solver: every option must be JSON-serialisable ({error})") from error
    if resolved["mode"] == "recycle" and resolved["method"] == "rcg" and not spd:
        raise ValueError("solver: method 'rcg' needs an SPD family; this family is not SPD, "
                         "use 'gcrodr'")
    if tune is not None:
        resolved["tune"] = resolve_tune_config(tune, resolved, explicit_k=explicit_k)
        if resolved["tune"]["option"] == "k":
            resolved["k"] = None  # chosen per solve by the tuner
    return resolved


def _resolve_direct_config(config: dict[str, Any], preconditioner: Optional[str],
                           spd: bool) -> dict[str, Any]:
    """The rest of :func:`resolve_solver_config` for ``method="direct"``."""
    if preconditioner is not None:
        raise ValueError(f"solver: method 'direct' takes no preconditioner, got M={preconditioner!r}")
    if "tune" in config:
        raise ValueError("solver: method 'direct' has no option to tune (tune is for ω of SOR/SSOR "
                         "or k of a recycling solver)")
    if "factorization" in config:
        raise ValueError("solver: 'factorization' of method 'direct' is recorded, not chosen: it is "
                         "CHOLMOD for SPD matrices where scikit-sparse is installed, else SuperLU; "
                         "pass spd=False for LU")
    matrix_spd = config.pop("spd", bool(spd))
    if matrix_spd not in (None, True, False):
        raise ValueError(f"solver: 'spd' of method 'direct' must be True, False or None, got {matrix_spd!r}")
    ordering = config.pop("ordering", METHOD_DEFAULTS["direct"]["ordering"])
    if ordering not in CHOLMOD_ORDERINGS:
        raise ValueError(f"solver: 'ordering' of method 'direct' must be one of {CHOLMOD_ORDERINGS}, "
                         f"got {ordering!r}")
    resolved = {
        "mode": "direct",
        "method": "direct",
        "M": None,
        "rtol": float(config.pop("rtol", DEFAULT_RTOL)),
        "atol": float(config.pop("atol", 0.0)),
        "maxiter": int(config.pop("maxiter", DEFAULT_MAXITER)),
        "spd": matrix_spd if matrix_spd is None else bool(matrix_spd),
        "ordering": ordering,
        "factorization": "cholmod" if matrix_spd is not False and cholmod_available() else "superlu",
        "options": {},
    }
    if config:
        raise ValueError(f"solver: unknown option(s) {sorted(config)} of method 'direct'; it takes "
                         f"{['rtol', 'atol', 'maxiter', *_DIRECT_KEYS]}")
    return resolved


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
        hint = " (the tuner is seeded from the dataset seed and the block)" if "seed" in unknown else ""
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
            raise ValueError(f"solver: tune 'value' is for tuner 'fixed'; tuner {tuner!r} takes 'values'")
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
            raise ValueError(f"solver: tune context_range needs finite lo < hi, got {context_range!r}")
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
        raise ValueError(f"solver: tune values must be a sequence of candidates, got {raw_values!r}")
    items = [v.item() if isinstance(v, np.generic) else v for v in raw_values]
    if not items:
        raise ValueError("solver: tune values are empty")
    if option == "omega":
        for value in items:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 2.0:
                raise ValueError(f"solver: tune values of omega must lie in (0, 2), got {value!r}")
        return [float(value) for value in items]
    name, bound = _k_bound(solver_config)
    for value in items:
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral or not 0 <= value < bound:
            raise ValueError(f"solver: tune values of k must be integers in [1, {name}={bound}), "
                             f"got {value!r}")
        if value == 0:
            raise ValueError(f"solver: tune values of k must not contain 0 (got {items!r}): at k = 0 "
                             "the recycling solver discards its recycled space, so the solves after "
                             f"it, whatever k they play, start without one; use values in "
                             f"[1, {name}={bound})")
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
        return tuning.ContextualTsallisINF(values, tuple(tune["context_range"]), seed=seed, **options)
    return tuning.ChebCB(values, tuple(tune["context_range"]), seed=seed, **options)


def _tuner_seed(seed: int, block: int) -> int:
    """The seed of block ``block``'s tuner: a function of the dataset seed and the block only."""
    return int(np.random.SeedSequence([seed, block, _TUNER_STREAM]).generate_state(1, np.uint64)[0])


class _BlockTuning:
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


def _family_units(family: Any) -> dict[str, str]:
    units = getattr(family, "units", None)
    if callable(units):
        units = units()
    return dict(units or {})


def _family_config(family: Any) -> dict[str, Any]:
    config = family.config()
    try:
        json.loads(json.dumps(config))
    except TypeError as error:
        raise TypeError(f"family: {type(family).__name__}.config() must be JSON-serialisable "
                        f"({error})") from error
    return config


@dataclass
class _Plan:
    """Everything a worker needs; pickled to each process."""

    family: Any
    n: int
    seed: int
    solver: dict[str, Any]
    backend: str
    chunk_size: int
    order: np.ndarray
    parts: Path
    run_hash: str
    time_dependent: bool
    batch_size: int = 1

    @property
    def n_blocks(self) -> int:
        return -(-self.n // self.chunk_size)

    def block_indices(self, block: int) -> np.ndarray:
        return self.order[block * self.chunk_size:(block + 1) * self.chunk_size]

    def block_path(self, block: int) -> Path:
        return self.parts / f"block_{block:06d}.h5"


# --------------------------------------------------------------------------------------------
# solving one sample
# --------------------------------------------------------------------------------------------


def _make_solver(config: Mapping[str, Any], backend: str,
                 tuning: Optional["_BlockTuning"] = None) -> Callable[..., Any]:
    """A ``solve(A, b, x0=None, context=None, callback=None) -> SolveResult`` with the state of
    one block (``callback(iteration, residual_norm)`` as in :func:`~pdesuite.solvers.solve`).

    With ``tuning``, its tuner is passed as the tuned option, so that :func:`solve` asks it
    for a value (``suggest(context)``) before each solve and reports the iterations after it.
    """
    from pdesuite.solvers import solve

    options = dict(config["options"])
    if tuning is not None and tuning.target != "k":
        options[tuning.target] = tuning.tuner
    if config["mode"] == "direct":
        return _make_direct_solver(config, backend)
    if config["mode"] == "recycle":
        if backend != "numpy":
            raise ValueError(f"backend: recycling runs on the 'numpy' backend, got {backend!r}; "
                             "use solver='independent' for another backend")
        from pdesuite.solvers.recycling import RecyclingSolver

        kwargs = {key: config[key] for key in _RECYCLE_KEYS if key in config}
        if tuning is not None and tuning.target == "k":
            kwargs["k"] = tuning.tuner
        recycler = RecyclingSolver(method=config["method"], rtol=config["rtol"], atol=config["atol"],
                                   maxiter=config["maxiter"], M=config["M"], **kwargs, **options)

        def solve_recycled(A, b, x0=None, context=None, callback=None):
            return recycler.solve(A, b, x0=x0, context=context, callback=callback)

        return solve_recycled

    def solve_independent(A, b, x0=None, context=None, callback=None):
        return solve(A, b, method=config["method"], M=config["M"], x0=x0, rtol=config["rtol"],
                     atol=config["atol"], maxiter=config["maxiter"], backend=backend,
                     context=context, callback=callback, **options)

    return solve_independent


def _make_direct_solver(config: Mapping[str, Any], backend: str) -> Callable[..., Any]:
    """The block's one DirectSolver: the pattern the block's matrices share is analysed once."""
    if backend != "numpy":
        raise ValueError(f"backend: solver 'direct' runs on the 'numpy' backend, got {backend!r}")
    from pdesuite.solvers.direct import DirectSolver

    if config["factorization"] == "cholmod" and not cholmod_available():
        raise RuntimeError("solver: this run factors with CHOLMOD (its solver configuration says "
                           "factorization='cholmod'), but scikit-sparse does not import here; "
                           "install pdesuite[direct], or start a new run")
    direct = DirectSolver(spd=config["spd"], ordering=config["ordering"], rtol=config["rtol"],
                          atol=config["atol"])

    def solve_direct(A, b, x0=None, context=None, callback=None):
        return direct.solve(A, b, x0=x0)  # one factorisation: no iterations to report

    return solve_direct


def _relative_residual(A: Any, b: np.ndarray, result: Any) -> float:
    """``‖b − A x‖ / ‖b‖`` (absolute when b = 0), from the true residual where A allows."""
    b = np.asarray(b)
    b_norm = float(np.linalg.norm(b))
    try:
        residual = float(np.linalg.norm(b - A @ np.asarray(result.x)))
    except Exception:  # an operator without @: fall back on the solver's own norm
        residual = float(result.residual_norm)
    return residual / b_norm if b_norm > 0 else residual


class _StatsRecorder:
    """Wraps a block's solve callable and aggregates the statistics of one sample's solves."""

    def __init__(self, solve: Callable[..., Any], tuning: Optional[_BlockTuning] = None):
        self._solve = solve
        self._tuning = tuning
        self.reset()

    def reset(self, params: Optional[Mapping[str, Any]] = None) -> None:
        self.params = params
        self.tuned: list[float] = []
        self.iterations = 0
        self.matvecs = 0
        self.residual = 0.0
        self.time = 0.0
        self.reason = NO_SOLVE_REASON
        self.converged = True
        self.steps = 0

    def __call__(self, A, b, x0=None):
        from pdesuite.discretization import LinearSystem

        if isinstance(A, LinearSystem):
            A, b = A.A, A.b if b is None else b
        if self._tuning is None:
            result = self._solve(A, b, x0=x0)
        else:
            context = self._tuning.context(A, self.params)
            result = self._solve(A, b, x0=x0, context=context)
            self.tuned.append(float(result.info["tuned"][self._tuning.target]))
        self.iterations += int(result.iterations)
        self.matvecs += int(result.matvecs)
        self.time += float(result.time)
        residual = _relative_residual(A, b, result)
        self.residual = max(self.residual, residual) if np.isfinite(residual) else float("nan")
        self.steps += 1
        # The worst outcome is kept: the first failure, else the last reason.
        if self.converged:
            self.reason = int(result.reason.value)
            self.converged = bool(result.converged)
        return result

    def record(self) -> dict[str, Any]:
        record = {"iterations": self.iterations, "matvecs": self.matvecs, "residual": self.residual,
                  "time": self.time, "reason": self.reason, "converged": self.converged,
                  "steps": self.steps}
        if self._tuning is not None:
            # The one value of a steady sample; the mean over a trajectory's solves.
            record[self._tuning.option] = float(np.mean(self.tuned)) if self.tuned else float("nan")
        return record


def _family_inputs(family: Any, params: Mapping[str, Any]) -> Optional[np.ndarray]:
    try:
        return np.asarray(family.inputs(params), dtype=np.float32)
    except NotImplementedError:
        return None


def _solve_sample(plan: _Plan, index: int, recorder: _StatsRecorder) -> dict[str, Any]:
    """Draw and solve one sample of a steady family."""
    family = plan.family
    params = family.sample(np.random.default_rng([plan.seed, int(index)]))
    recorder.reset(params)
    system = family.assemble(params)
    result = recorder(system.A, system.b)
    return {"parameters": params,
            "outputs": np.asarray(family.outputs(params, system.expand(result.x)), dtype=np.float32),
            "inputs": np.asarray(family.inputs(params), dtype=np.float32),
            "solver": recorder.record()}


def _simulate_samples(plan: _Plan, indices: Sequence[int], solve: Callable[..., Any],
                      tuning: Optional[_BlockTuning]) -> list[dict[str, Any]]:
    """Draw and simulate the samples ``indices`` of a time-dependent family as one batch.

    Each sample gets its own recorder around the block's solver ``solve``, so that its
    statistics are its own while the recycle space and the tuner run on across the batch.
    """
    family = plan.family
    params_list = [family.sample(np.random.default_rng([plan.seed, int(index)])) for index in indices]
    recorders = []
    for params in params_list:
        recorder = _StatsRecorder(solve, tuning)
        recorder.reset(params)
        recorders.append(recorder)
    simulate_batch = getattr(family, "simulate_batch", None)
    if callable(simulate_batch):
        trajectories, _ = simulate_batch(params_list, recorders)
    else:  # a family written against the contract without simulate_batch
        trajectories = [family.simulate(params, recorder)[0] for params, recorder in zip(params_list, recorders)]
    if len(trajectories) != len(indices):
        raise ValueError(f"family.simulate_batch: returned {len(trajectories)} trajectories for a "
                         f"batch of {len(indices)} samples")
    samples = []
    for params, trajectory, recorder in zip(params_list, trajectories, recorders):
        sample: dict[str, Any] = {"parameters": params,
                                  "trajectories": np.asarray(trajectory, dtype=np.float32)}
        inputs = _family_inputs(family, params)
        if inputs is not None:
            sample["inputs"] = inputs
        sample["solver"] = recorder.record()
        samples.append(sample)
    return samples


# --------------------------------------------------------------------------------------------
# one block -> one shard file
# --------------------------------------------------------------------------------------------


def _run_block(plan: _Plan, block: int, on_sample: Callable[[], None],
               should_stop: Callable[[], bool] = lambda: False) -> bool:
    """Solve one block into its shard file. False if stopped before the end."""
    indices = plan.block_indices(block)
    final = plan.block_path(block)
    # The pid in the name: a worker orphaned by a killed run can never rename a temporary file
    # that a later run is writing.
    temporary = final.with_name(f"{final.name}.{os.getpid()}.tmp")
    # A fresh tuner per block, seeded by (seed, block): like the recycle space it learns
    # within the block only, so that its choices do not depend on the worker count.
    tune = plan.solver.get("tune")
    tuning = _BlockTuning(tune, plan.seed, block) if tune else None
    solve = _make_solver(plan.solver, plan.backend, tuning)
    recorder = _StatsRecorder(solve, tuning)
    # Time-dependent samples run in batches of consecutive positions of the block: a batch is
    # a function of the plan alone, whatever the worker count or a resume.
    batch = plan.batch_size if plan.time_dependent else 1
    writer = ShardWriter(temporary, indices, {"run_hash": plan.run_hash, "block": int(block)},
                         tuned=_tuned_stat(plan))
    try:
        for start in range(0, len(indices), batch):
            if should_stop():
                return False
            if plan.time_dependent:
                samples = _simulate_samples(plan, [int(i) for i in indices[start:start + batch]], solve, tuning)
            else:
                samples = [_solve_sample(plan, int(indices[start]), recorder)]
            for sample in samples:
                writer.add(sample)
                on_sample()
        if should_stop():
            return False
        writer.finish()
        os.replace(temporary, final)
        return True
    finally:
        writer.close()
        if temporary.exists():
            temporary.unlink()


def _tuned_stat(plan: _Plan) -> Optional[str]:
    """The name of the per-sample statistic of the tuned option (``omega``, ``k``), or None."""
    tune = plan.solver.get("tune")
    return tune["option"] if tune else None


def _h5py():
    import h5py

    return h5py


# --------------------------------------------------------------------------------------------
# workers
# --------------------------------------------------------------------------------------------


def _worker_main(plan: _Plan, blocks: list[int], messages) -> None:
    """Entry point of a worker process: solve ``blocks`` in order, reporting to ``messages``."""
    parent = mp.parent_process()

    def parent_gone() -> bool:
        return parent is not None and not parent.is_alive()

    try:
        for block in blocks:
            if not _run_block(plan, block, lambda: messages.put(("sample", 1)), parent_gone):
                return
            messages.put(("block", block))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        messages.put(("error", traceback.format_exc()))
    finally:
        messages.put(("exit", os.getpid()))


def _run_in_processes(plan: _Plan, assignments: list[list[int]], bar, mp_context: str) -> None:
    context = mp.get_context(mp_context)
    messages = context.Queue()
    processes = [context.Process(target=_worker_main, args=(plan, blocks, messages), daemon=True,
                                 name=f"pdesuite-generate-{rank}")
                 for rank, blocks in enumerate(assignments)]
    try:
        for process in processes:
            process.start()
        exited = 0
        while exited < len(processes):
            try:
                kind, payload = messages.get(timeout=1.0)
            except queue_module.Empty:
                dead = [p for p in processes if not p.is_alive() and p.exitcode not in (0, None)]
                if dead:
                    raise RuntimeError(f"generation worker {dead[0].name} died with exit code "
                                       f"{dead[0].exitcode}; finished blocks are kept, rerun to resume")
                continue
            if kind == "sample":
                bar.update(payload)
            elif kind == "error":
                raise RuntimeError("a generation worker failed (finished blocks are kept; rerun "
                                   f"to resume):\n{payload}")
            elif kind == "exit":
                exited += 1
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            if process.pid is not None:
                process.join(timeout=10)
        messages.close()


# --------------------------------------------------------------------------------------------
# planning, locking, merging
# --------------------------------------------------------------------------------------------


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write(temporary)
    os.replace(temporary, path)


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as stream:
        np.save(stream, array)


def _hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(parts: Path):
    """Hold an exclusive lock on the parts folder, so that two runs cannot share it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    with open(parts / _LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            raise RuntimeError(f"{parts}: another generation is writing into this folder; wait for "
                               "it to finish (or stop it) before rerunning") from error
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in keys if old.get(key) != new.get(key)]


def _draw_keys(family: Any, n: int, seed: int, bar) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    first = np.asarray(family.sort_key(family.sample(np.random.default_rng([seed, 0]))))
    if first.ndim not in (1, 2, 3):
        raise ValueError(f"family.sort_key: must return a 1-D to 3-D array, got shape {first.shape}")
    keys = np.empty((n, *first.shape), dtype=np.float64)
    keys[0] = first
    for index in range(1, n):
        key = np.asarray(family.sort_key(family.sample(np.random.default_rng([seed, index]))))
        if key.shape != first.shape:
            raise ValueError(f"family.sort_key: sample {index} has key shape {key.shape}, sample 0 "
                             f"{first.shape}")
        keys[index] = key
    return keys, time.perf_counter() - start


def _merge(plan: _Plan, out: Path, run_config: Mapping[str, Any], timings: Mapping[str, float],
           family: Any, compression: Optional[str]) -> None:
    fields, parameters = shard_layout(plan.block_path(0))
    attrs = schema_attrs(family=family.name, config=run_config["family_config"], seed=plan.seed,
                         n=plan.n, kind="time-dependent" if plan.time_dependent else "steady",
                         units=_family_units(family), order=run_config["order"],
                         sort_method=run_config["sort_method"], sort_time=timings["sort_time"])
    attrs.update({"solver_config": json.dumps(plan.solver, sort_keys=True), "run_hash": plan.run_hash,
                  "chunk_size": plan.chunk_size, "key_time": timings["key_time"],
                  "backend": plan.backend})
    temporary = out.with_name(out.name + ".tmp")
    tuned = _tuned_stat(plan)
    with create_dataset_file(temporary, n=plan.n, fields=fields, attrs=attrs,
                             coordinates=family.coordinates(), parameters=parameters,
                             solver_stats=True, compression=compression) as handle:
        if tuned is not None:
            handle["solver"].create_dataset(tuned, shape=(plan.n,), dtype=np.float64)
        handle.create_dataset("solve_order", data=plan.order.astype(np.int64))
        shards = [plan.block_path(block) for block in range(plan.n_blocks)]
        handle.attrs["solve_time"] = merge_shards(handle, shards, plan.chunk_size, tuned)
        handle.attrs["complete"] = True
    os.replace(temporary, out)


def _existing_output(out: Path, run_hash: str) -> bool:
    """True if ``out`` is a complete file of this very run; raise if it is another dataset."""
    h5py = _h5py()
    try:
        with h5py.File(out, "r") as handle:
            same = str(handle.attrs.get("run_hash", "")) == run_hash and bool(handle.attrs.get("complete", False))
    except OSError as error:
        raise ValueError(f"out: {out} exists but is not a readable HDF5 file ({error}); remove it or "
                         "pass overwrite=True") from error
    if not same:
        raise ValueError(f"out: {out} exists and holds another dataset (a different configuration "
                         "or an incomplete file); choose another path or pass overwrite=True")
    return True


# --------------------------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------------------------


def generate(family: Any, n: int, out: Union[str, os.PathLike] = "dataset.h5", *,
             order: str = "sorted", sort_method: str = "greedy", group_size: int = 2000,
             solver: Union[str, Mapping[str, Any]] = "auto", backend: str = "numpy",
             workers: int = 1, seed: int = 0, chunk_size: int = DEFAULT_CHUNK_SIZE,
             batch_size: Optional[int] = None, progress: bool = True,
             compression: Optional[str] = "gzip", overwrite: bool = False,
             keep_parts: bool = False, mp_context: str = "spawn", comm: Any = None,
             **family_config: Any) -> Path:
    """Generate ``n`` samples of a PDE family into one HDF5 file (schema: :mod:`.storage`).

    Args:
        family: a :class:`~pdesuite.datasets.family.PDEFamily` instance, or a registered name
            (``"darcy"``, ...) built with ``**family_config``.
        n: number of samples, >= 1.
        out: the HDF5 file to write. Work in progress lives in ``<out>.parts/``.
        order: ``"sorted"`` (default; by ``sort_method``), ``"given"`` (index order) or
            ``"random"`` (a permutation seeded by ``seed``).
        sort_method: ``"greedy"`` (default), ``"fft"`` or ``"none"``; see :mod:`.sorting`.
        group_size: greedy sorting group size (default 2000).
        solver: ``"auto"`` (default: the fastest of the direct path, preconditioned Krylov and
            recycling, timed on the first samples once per run and recorded in the file's
            ``solver_config`` with ``chosen_by``, the estimates and the probe's time; see
            :mod:`.solver_choice`; ``{"method": "auto", "rtol": ...}`` sets ``rtol``,
            ``atol`` and ``maxiter`` of every candidate), ``"recycle"``, ``"independent"``, ``"direct"`` (a sparse
            direct solve per sample, the symbolic analysis of the shared sparsity pattern
            reused within a block) or a dict; see :func:`resolve_solver_config`. Its ``tune``
            entry has a tuner choose ω or k per solve, e.g.
            ``{"method": "rcg", "M": "ssor", "tune": "omega"}`` (Tsallis-INF over 20 values of
            ω in [1, 1.95]); see :func:`resolve_tune_config`.
        backend: solver backend, ``"numpy"`` (default; required for recycling) or ``"petsc"``.
        workers: processes on this machine (default 1: in this process).
        seed: the dataset seed; sample ``i`` is drawn from ``default_rng([seed, i])``.
        chunk_size: samples per block (default 256): each block starts with a fresh recycle
            space, is one atomic shard and the unit of resumption. It is part of the
            configuration: the arrays depend on it in their last bits, not on ``workers``.
        batch_size: time-dependent families only: samples simulated at once through
            ``family.simulate_batch`` (consecutive samples of a block). None (default) takes
            ``family.default_batch_size`` (8 for ``navier-stokes`` at 64², 32 for
            ``burgers`` at 256 points, 1 for families that simulate one sample at a time). Cut so that one batch's trajectories take at
            most :data:`MAX_BATCH_BYTES` (256 MiB) of float32. It changes the speed and the
            memory, not the arrays, unless the family sets ``batch_invariant = False``, or
            overrides ``simulate_batch`` with one that uses its ``solve`` argument while the
            solver keeps state (recycling or tuning); then it is part of the configuration.
            The progress bar advances per batch.
        progress: show a tqdm progress bar (rate and ETA) on stderr.
        compression: of the final file: ``"gzip"`` (default), ``"lzf"`` or None.
        overwrite: replace an existing ``out`` or partial run of another configuration.
        keep_parts: keep ``<out>.parts/`` (the shards) after the merge.
        mp_context: multiprocessing start method of the workers (``"spawn"`` default, or
            ``"forkserver"``).
        comm: an mpi4py communicator, for ``mpiexec -n N`` runs: rank 0 plans and merges, and
            every rank solves a contiguous share of the blocks (``out`` must be on a file
            system all ranks see). ``workers`` then applies per rank.

    Returns:
        The path of the finished file.

    Raises:
        ValueError: bad arguments; ``out`` holds another dataset; a partial run in
            ``<out>.parts/`` was made with another configuration (the message names its
            plan file and the differences).
        RuntimeError: a worker failed (finished blocks are kept; rerun to resume).
    """
    if isinstance(family, str):
        from pdesuite.datasets.family import get_family

        family = get_family(family, **family_config)
    elif family_config:
        raise TypeError(f"family_config {sorted(family_config)}: only allowed when family is a name")
    for name in ("sample", "sort_key", "config", "coordinates"):
        if not callable(getattr(family, name, None)):
            raise TypeError(f"family: expected a PDEFamily, got {type(family).__name__} without {name}()")
    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    workers = _check_int("workers", workers, 1)
    chunk_size = _check_int("chunk_size", chunk_size, 1)
    if batch_size is not None:
        batch_size = _check_int("batch_size", batch_size, 1)
    if order not in ORDERS:
        raise ValueError(f"order: must be one of {ORDERS}, got {order!r}")
    if sort_method not in GENERATION_SORT_METHODS:
        raise ValueError(f"sort_method: must be one of {GENERATION_SORT_METHODS}, got {sort_method!r}")
    if mp_context not in ("spawn", "forkserver"):
        raise ValueError(f"mp_context: must be 'spawn' or 'forkserver', got {mp_context!r}")
    if compression not in ("gzip", "lzf", None):
        raise ValueError(f"compression: must be 'gzip', 'lzf' or None, got {compression!r}")
    if not isinstance(backend, str) or backend not in ("numpy", "petsc", "torch"):
        raise ValueError(f"backend: must be 'numpy', 'petsc' or 'torch', got {backend!r}")
    time_dependent = bool(getattr(family, "time_dependent", False))
    batch_size = _effective_batch_size(family, batch_size) if time_dependent else 1
    solver_config = _solver_request(family, solver, backend, n, time_dependent)
    if solver_config["mode"] in ("recycle", "direct") and backend != "numpy":
        what = "recycling" if solver_config["mode"] == "recycle" else "solver 'direct'"
        raise ValueError(f"backend: {what} runs on the 'numpy' backend, got {backend!r}; use "
                         "solver='independent' for another backend")
    effective_sort = sort_method if order == "sorted" else ("random" if order == "random" else "none")
    run_config = {
        "schema_version": SCHEMA_VERSION,
        "family": str(family.name),
        "family_config": _family_config(family),
        "n": n, "seed": seed, "order": order, "sort_method": effective_sort,
        "group_size": int(group_size) if effective_sort == "greedy" else None,
        "solver": solver_config, "backend": backend, "chunk_size": chunk_size,
        "kind": "time-dependent" if time_dependent else "steady",
    }
    if time_dependent and _batch_size_may_change_arrays(family, solver_config):
        # Its arrays may depend on which samples share a batch: a resume must batch alike.
        run_config["batch_size"] = batch_size
    run_hash = _hash(run_config)
    out = Path(out)
    parts = out.with_name(out.name + ".parts")

    rank = comm.Get_rank() if comm is not None else 0
    size = comm.Get_size() if comm is not None else 1

    def root_prepare():
        out.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            if out.exists():
                out.unlink()
            if parts.exists():
                shutil.rmtree(parts)
        if out.exists() and _existing_output(out, run_hash):
            if parts.exists() and not keep_parts:
                shutil.rmtree(parts)
            return None
        parts.mkdir(exist_ok=True)
        return True

    if rank == 0:
        try:
            status: Any = root_prepare()
        except BaseException as error:  # noqa: BLE001 - re-raised on every rank
            status = error
    else:
        status = None
    if comm is not None and size > 1:
        status = comm.bcast(status, root=0)
    if isinstance(status, BaseException):
        raise status
    if status is None:
        return out

    bar = _progress_bar(n, f"generate {family.name}", progress and rank == 0)
    lock = _locked(parts) if rank == 0 else contextlib.nullcontext()
    try:
        with lock:
            plan, timings = _prepare_plan(family, run_config, run_hash, parts, group_size, bar,
                                          solver_config, backend, time_dependent, comm, rank, size,
                                          batch_size)
            _remove_stale_temporaries(parts, rank)
            pending = [block for block in range(plan.n_blocks) if not shard_is_done(plan.block_path(block), plan.run_hash,
                                                   plan.block_indices(block))] \
                if rank == 0 else None
            if comm is not None and size > 1:
                pending = comm.bcast(pending, root=0)
            pending_set = set(pending)
            done = sum(len(plan.block_indices(b)) for b in range(plan.n_blocks) if b not in pending_set)
            bar.n = done
            bar.refresh()
            mine = [list(map(int, share)) for share in np.array_split(pending, size)][rank] if pending else []
            error = None
            try:
                _run_share(plan, mine, workers, bar, mp_context)
            except BaseException as exc:  # noqa: BLE001 - gathered below under MPI
                if comm is None or size == 1:
                    raise
                error = exc
            if comm is not None and size > 1:
                failures = [e for e in comm.allgather(repr(error) if error else None) if e]
                if error is not None:
                    raise error
                if failures:
                    raise RuntimeError(f"generation failed on another rank: {failures[0]}")
            bar.close()
            merge_error = None
            if rank == 0:
                try:
                    _merge(plan, out, run_config, timings, family, compression)
                except BaseException as exc:  # noqa: BLE001 - shared with the other ranks
                    merge_error = exc
            if comm is not None and size > 1:
                remote = comm.bcast(repr(merge_error) if merge_error else None, root=0)
                if remote and rank != 0:
                    raise RuntimeError(f"the merge on rank 0 failed: {remote}")
            if merge_error is not None:
                raise merge_error
        if rank == 0 and not keep_parts:
            shutil.rmtree(parts, ignore_errors=True)
    finally:
        bar.close()
    return out


def _solver_request(family: Any, solver: Union[str, Mapping[str, Any]], backend: str, n: int,
                    time_dependent: bool) -> dict[str, Any]:
    """The resolved solver configuration, or for ``"auto"`` what the probe will choose among.

    ``"auto"`` becomes ``{"mode": "auto", "candidates": [...], "probe": P}`` (resolved by
    :func:`_probe_solver` when the plan is made) when there is a choice worth timing, else the
    rule's choice marked ``chosen_by: "rule"``; see :mod:`.solver_choice`.
    """
    spd = bool(getattr(family, "spd", False))
    if isinstance(solver, Mapping) and solver.get("method") == "auto":
        tolerances = {key: value for key, value in solver.items() if key != "method"}
        unknown = sorted(set(tolerances) - set(_AUTO_KEYS))
        if unknown:
            raise ValueError(f"solver: 'auto' takes only {list(_AUTO_KEYS)}, got {unknown}; other "
                             "options belong to a chosen solver ('recycle', 'independent', 'direct')")
    elif solver == "auto":
        tolerances = {}
    else:
        return resolve_solver_config(solver, spd)

    def resolve(choice: str | Mapping[str, Any]) -> dict[str, Any]:
        request = {"method": "rcg" if spd else "gcrodr"} if choice == "recycle" else \
            {"method": "direct"} if choice == "direct" else dict(choice)
        return resolve_solver_config({**request, **tolerances}, spd)

    candidates = candidate_solvers(family, backend)
    if time_dependent or n < MIN_PROBED_SAMPLES or len(candidates) == 1:
        return {**resolve(rule_choice(family, backend)), "chosen_by": "rule"}
    return {"mode": "auto", "candidates": [resolve(c) for c in candidates],
            "probe": min(PROBE_SAMPLES, n)}


def _probe_solver(family: Any, request: Mapping[str, Any], order: np.ndarray, seed: int,
                  chunk_size: int, backend: str) -> dict[str, Any]:
    """The candidate of an ``"auto"`` request that solves the first samples of ``order`` fastest.

    Returns its configuration with ``chosen_by: "probe"``, ``estimates`` (seconds per sample of
    each candidate, None if cut off) and ``probe_time`` (seconds the probe took, draws included).
    """
    start = time.perf_counter()
    systems = [family.assemble(family.sample(np.random.default_rng([seed, int(index)])))
               for index in order[:request["probe"]]]
    candidates = request["candidates"]
    index, estimates = choose_solver(systems, candidates, lambda c: _make_solver(c, backend),
                                     block_size=min(chunk_size, len(order)))
    return {**candidates[index], "chosen_by": "probe", "estimates": estimates,
            "probe_time": time.perf_counter() - start}


def _run_share(plan: _Plan, blocks: list[int], workers: int, bar, mp_context: str) -> None:
    if not blocks:
        return
    if workers == 1 or len(blocks) == 1:
        for block in blocks:
            _run_block(plan, block, lambda: bar.update(1))
        return
    shares = [list(map(int, share)) for share in np.array_split(blocks, min(workers, len(blocks)))]
    _run_in_processes(plan, shares, bar, mp_context)


def _prepare_plan(family, run_config, run_hash, parts: Path, group_size, bar, solver_config,
                  backend, time_dependent, comm, rank, size,
                  batch_size: int = 1) -> tuple[_Plan, dict[str, float]]:
    """Load the plan of a partial run, or make and save a new one (rank 0).

    A new plan of a ``solver="auto"`` run times the candidates here, once, so that every
    worker and every resume solves with the same choice (saved in the plan as ``solver``).
    """
    plan_path = parts / _PLAN_FILE
    order_path = parts / _ORDER_FILE
    payload = None
    if rank == 0:
        try:
            if plan_path.exists():
                saved = json.loads(plan_path.read_text())
                if saved.get("run_hash") != run_hash:
                    changes = _differences(saved.get("config", {}), run_config)
                    raise ValueError(
                        f"{plan_path}: a partial run of another configuration is in "
                        f"{parts} ({'; '.join(changes) or 'different settings'}). Rerun with the "
                        "same arguments to resume it, or pass overwrite=True to discard it.")
                order = np.load(order_path)
                timings = saved["timings"]
                solver_config = saved.get("solver", solver_config)
            else:
                n, seed = run_config["n"], run_config["seed"]
                method = run_config["sort_method"]
                if method in ("greedy", "fft"):
                    bar.set_description_str(f"generate {family.name} (sorting)")
                    keys, key_time = _draw_keys(family, n, seed, bar)
                    order, sort_time = timed_sort_order(keys, method=method, group_size=group_size,
                                                        seed=seed)
                    del keys
                    bar.set_description_str(f"generate {family.name}")
                else:
                    order, sort_time = timed_sort_order(np.zeros((n, 1)), method=method, seed=seed)
                    key_time = 0.0
                timings = {"sort_time": sort_time, "key_time": key_time}
                if solver_config["mode"] == "auto":
                    bar.set_description_str(f"generate {family.name} (timing solvers)")
                    solver_config = _probe_solver(family, solver_config, order, run_config["seed"],
                                                  run_config["chunk_size"], backend)
                    bar.set_description_str(f"generate {family.name}")
                _write_atomic(order_path, lambda p: _save_array(p, order))
                _write_atomic(plan_path, lambda p: p.write_text(json.dumps(
                    {"run_hash": run_hash, "config": run_config, "timings": timings,
                     "solver": solver_config}, indent=1)))
            payload = (order, timings, solver_config)
        except BaseException as error:  # noqa: BLE001 - re-raised on every rank
            payload = error
    if comm is not None and size > 1:
        payload = comm.bcast(payload, root=0)
    if isinstance(payload, BaseException):
        raise payload
    order, timings, solver_config = payload
    plan = _Plan(family=family, n=run_config["n"], seed=run_config["seed"], solver=solver_config,
                 backend=backend, chunk_size=run_config["chunk_size"],
                 order=np.asarray(order, dtype=np.int64), parts=parts, run_hash=run_hash,
                 time_dependent=time_dependent, batch_size=batch_size)
    return plan, timings


def _remove_stale_temporaries(parts: Path, rank: int) -> None:
    if rank != 0:
        return
    for temporary in parts.glob("*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


class _NoBar:
    n = 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def refresh(self) -> None:
        pass

    def set_description_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, description: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="sample", dynamic_ncols=True, smoothing=0.05,
                file=sys.stderr)


def _batch_size_may_change_arrays(family: Any, solver_config: Mapping[str, Any]) -> bool:
    """Whether a time-dependent run's arrays may depend on its batch size (it then joins the hash).

    True when the family says so (``batch_invariant = False``), and also when its own
    ``simulate_batch`` makes linear solves (``batch_solves``, default True) while the run's
    solver keeps state from one solve to the next (``mode == "recycle"`` or a tuner): every
    sample of a batch shares that solver, so solves interleaved across the samples of a batch
    would see a recycle space or tuner history that depends on the batch, whatever
    ``batch_invariant`` says. Generation cannot watch the order of the solves before it runs
    them, so it assumes the worst. Not for the default
    :meth:`~pdesuite.datasets.family.PDEFamily.simulate_batch` (sample by sample, in order), a
    stateless solver (``"independent"`` without a tuner), or a family that declares
    ``batch_solves = False`` (``navier-stokes``, ``burgers``), whose hashes stay what they were.
    """
    if not bool(getattr(family, "batch_invariant", True)):
        return True
    stateful = solver_config["mode"] == "recycle" or "tune" in solver_config
    if not stateful:
        return False
    from pdesuite.datasets.family import PDEFamily

    simulate_batch = getattr(type(family), "simulate_batch", None)
    if simulate_batch is None or simulate_batch is PDEFamily.simulate_batch:
        return False  # generation loops over simulate(), or the default loop: in order
    return bool(getattr(family, "batch_solves", True))


def _effective_batch_size(family: Any, batch_size: Optional[int]) -> int:
    """``batch_size`` (or the family's ``default_batch_size``), cut to :data:`MAX_BATCH_BYTES`."""
    if batch_size is None:
        batch_size = _check_int("family.default_batch_size", getattr(family, "default_batch_size", 1), 1)
    output_shape = getattr(family, "output_shape", None)
    if isinstance(output_shape, tuple) and output_shape:
        trajectory_bytes = 4 * int(np.prod(output_shape))
        batch_size = min(batch_size, max(1, MAX_BATCH_BYTES // max(trajectory_bytes, 1)))
    return batch_size


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# command line: `pdesuite generate FAMILY --n ... --out ...`
# --------------------------------------------------------------------------------------------


def _parse_setting(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set: expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``pdesuite generate`` to ``parser``."""
    parser.add_argument("family", help="registered family name (darcy, darcy-pwc, helmholtz, ...)")
    parser.add_argument("--n", type=int, default=100, help="number of samples (default 100)")
    parser.add_argument("--resolution", type=int, default=None, help="grid points per axis")
    parser.add_argument("--out", default=None, help="output HDF5 file (default FAMILY.h5)")
    parser.add_argument("--order", choices=ORDERS, default="sorted")
    parser.add_argument("--sort-method", choices=GENERATION_SORT_METHODS, default="greedy")
    parser.add_argument("--solver", choices=("auto", "recycle", "independent", "direct"),
                        default="auto", help="auto (default): the fastest of direct, "
                        "preconditioned Krylov and recycling, timed on the first samples; "
                        "--method, --pc, --restart, --ell, --k and --tune refine recycle then")
    parser.add_argument("--method", default=None, help="solver method (gcrodr, rcg, cg, gmres, ...)")
    parser.add_argument("--pc", default=None, help="preconditioner name (jacobi, sor, ilu, ...)")
    parser.add_argument("--rtol", type=float, default=None)
    parser.add_argument("--maxiter", type=int, default=None)
    parser.add_argument("--restart", type=int, default=None,
                        help="cycle length of gcrodr, gmres and fgmres (default 40)")
    parser.add_argument("--ell", type=int, default=None,
                        help="rcg: CG directions kept for the recycle update (default max(2k, 30))")
    parser.add_argument("--k", type=int, default=None, help="recycling: recycled dimension")
    parser.add_argument("--tune", default=None, metavar="OPTION|JSON",
                        help="tune an option per solve: 'omega' (of --pc sor/ssor, or of --method "
                             "sor/ssor) or 'k' (recycling), or a JSON tune configuration")
    parser.add_argument("--tuner", choices=TUNER_NAMES, default=None,
                        help="tuner of --tune (default tsallis)")
    parser.add_argument("--tune-values", default=None, metavar="V1,V2,...",
                        help="candidate values of --tune (default: 20 omegas in [1, 1.95]; "
                             "k = b/8, ..., 6b/8 for b = --restart of gcrodr or --ell of rcg); "
                             "one value for --tuner fixed")
    parser.add_argument("--backend", default="numpy", choices=("numpy", "petsc"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="time-dependent families: samples simulated at once (default: the "
                             "family's, e.g. 8 for navier-stokes at 64x64)")
    parser.add_argument("--compression", choices=("gzip", "lzf", "none"), default="gzip")
    parser.add_argument("--set", dest="settings", action="append", type=_parse_setting, default=[],
                        metavar="KEY=VALUE", help="family option (JSON value), repeatable")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run ``pdesuite generate`` from parsed arguments; print a summary; return the exit code."""
    family_config = dict(args.settings)
    if args.resolution is not None:
        family_config["resolution"] = args.resolution
    overrides = {key: value for key, value in (("method", args.method), ("M", args.pc),
                                               ("rtol", args.rtol), ("maxiter", args.maxiter),
                                               ("restart", args.restart), ("ell", args.ell),
                                               ("k", args.k)) if value is not None}
    try:
        tune = _cli_tune(args)
        if tune is not None:
            overrides["tune"] = tune
        from pdesuite.datasets.family import get_family

        family = get_family(args.family, **family_config)
        spd = bool(getattr(family, "spd", False))
        solver: Any = args.solver
        if overrides and args.solver == "auto" and set(overrides) <= set(_AUTO_KEYS):
            solver = {"method": "auto", **overrides}
        elif overrides:
            # Options of one solver refine recycling when no solver was named.
            base = resolve_solver_config("recycle" if args.solver == "auto" else args.solver, spd)
            if "method" in overrides:
                base = {"method": overrides["method"], "rtol": base["rtol"], "maxiter": base["maxiter"]}
            else:
                base = {"method": base["method"], "M": base["M"], "rtol": base["rtol"],
                        "maxiter": base["maxiter"], **{k: base[k] for k in _RECYCLE_KEYS if k in base},
                        **base["options"]}
            if tune is not None and tune["option"] == "k":
                base.pop("k", None)  # the default k, not one the user fixed
            solver = {**base, **overrides}
        out = args.out or f"{args.family}.h5"
        path = generate(family, args.n, out, order=args.order, sort_method=args.sort_method,
                        solver=solver, backend=args.backend, workers=args.workers, seed=args.seed,
                        chunk_size=args.chunk_size, batch_size=getattr(args, "batch_size", None),
                        progress=not args.no_progress,
                        compression=None if args.compression == "none" else args.compression,
                        overwrite=args.overwrite)
    except (ValueError, TypeError, RuntimeError, KeyError) as error:
        print(f"pdesuite generate: {error}", file=sys.stderr)
        return 1
    h5py = _h5py()
    with h5py.File(path, "r") as handle:
        converged = handle["solver"]["converged"][()]
        iterations = handle["solver"]["iterations"][()]
        print(f"{path}: {handle.attrs['n']} samples of {handle.attrs['family']}; sorting "
              f"{handle.attrs['sort_time']:.3f} s, solves {handle.attrs['solve_time']:.3f} s, "
              f"mean iterations {iterations.mean():.1f}, not converged {int((~converged).sum())}")
    return 0


def _cli_tune(args: argparse.Namespace) -> Optional[dict[str, Any]]:
    """The tune configuration of ``--tune``, ``--tuner`` and ``--tune-values`` (None if none)."""
    tuner, values = getattr(args, "tuner", None), getattr(args, "tune_values", None)
    if args.tune is None:
        if tuner is not None or values is not None:
            raise ValueError("--tuner and --tune-values need --tune OPTION")
        return None
    text = args.tune.strip()
    if text.startswith("{"):
        try:
            tune = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"--tune: not a valid JSON object ({error})") from error
    else:
        tune = {"option": text}
    if tuner is not None:
        tune["tuner"] = tuner
    if values is not None:
        try:
            parsed = [float(item) for item in values.split(",") if item.strip()]
        except ValueError:
            raise ValueError(f"--tune-values: expected comma-separated numbers, got {values!r}") from None
        if tune.get("tuner") == "fixed":
            if len(parsed) != 1:
                raise ValueError(f"--tune-values: the fixed tuner takes one value, got {len(parsed)} "
                                 f"({values!r}); give one value, or another --tuner to choose "
                                 "among several")
            tune["value"] = parsed[0]
        else:
            tune["values"] = parsed
    return tune


def cli_generate(argv: Optional[Sequence[str]] = None) -> int:
    """``pdesuite generate`` as a function of its argument list; returns the exit code."""
    parser = argparse.ArgumentParser(prog="pdesuite generate",
                                     description="generate a PDE dataset into an HDF5 file")
    add_arguments(parser)
    return run(parser.parse_args(argv))
