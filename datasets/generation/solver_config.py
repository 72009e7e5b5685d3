"""The solver configuration of a generation: what ``solver=`` resolves to, stored and checked on
resume."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional, Union

from pdesuite.datasets.generation.solver_choice import (
    MIN_PROBED_SAMPLES,
    PROBE_SAMPLES,
    candidate_solvers,
    rule_choice,
)
from pdesuite.datasets.generation.learned import check_run_directory, checkpoint_sha256
from pdesuite.datasets.generation.tuning import resolve_tune_config
from pdesuite.solvers.direct import CHOLMOD_ORDERINGS, cholmod_available
from pdesuite.solvers.preconditioner import NAMED_PRECONDITIONERS
from pdesuite.solvers.vocabulary import (
    DEFAULT_MAXITER,
    DEFAULT_RESTART,
    DEFAULT_RTOL,
    METHOD_DEFAULTS,
)

#: The options of the recycling methods, under their names in :mod:`pdesuite.solvers.vocabulary`
#: (GCRO-DR's ``restart``, ``k``, ``side``, ...; rcg's ``k``, ``ell``, ...) and RecyclingSolver's
#: ``solutions``: kept at the top of a recycle configuration, the rest goes to ``options``.
_RECYCLE_METHOD_KEYS = {method: tuple(name for name in METHOD_DEFAULTS[method] if name != "recycle")
                        + ("solutions",) for method in ("gcrodr", "rcg")}


RECYCLE_KEYS = tuple(dict.fromkeys(_RECYCLE_METHOD_KEYS["gcrodr"] + _RECYCLE_METHOD_KEYS["rcg"]))


#: The options a recycle configuration always records, with the method's defaults: the cycle
#: length and recycled dimension of GCRO-DR, the recycled dimension and kept CG directions of rcg.
_RECYCLE_DEFAULTS = {method: {name: METHOD_DEFAULTS[method][name] for name in names}
                     for method, names in (("gcrodr", ("restart", "k")), ("rcg", ("k", "ell")))}


#: The options of a direct configuration (``solver="direct"``) besides rtol, atol and maxiter.
_DIRECT_KEYS = tuple(name for name in METHOD_DEFAULTS["direct"] if name != "factorization")


#: The options of ``solver={"method": "auto", ...}``: those every candidate takes.
AUTO_KEYS = ("rtol", "atol", "maxiter")


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
            preconditioner *name*, e.g. ``"ilu"``, or the run directory of a trained
            preconditioner, e.g. ``"run/pc"``, for the methods ``fcg``, ``dcdm`` and ``fgmres``;
            see :mod:`.learned`), ``rtol`` (default ``DEFAULT_RTOL``, 1e-8),
            ``atol`` (0), ``maxiter`` (``DEFAULT_MAXITER``, 10,000), the recycling options under
            the method's names (GCRO-DR ``restart``, ``k``, ``side``, ``stale_threshold``,
            ``reorthogonalize``, ``update_period``; rcg ``k``, ``ell``, ``stale_threshold``;
            both ``solutions``),
            ``tune`` (a tuner that chooses ω or k per solve; see :func:`resolve_tune_config`)
            and any further method or ``pc_*`` option.
        spd: the family's matrices are symmetric positive definite.

    Returns:
        dict with ``mode`` (``"recycle"``/``"independent"``/``"direct"``), ``method``, ``M``,
        ``rtol``, ``atol``, ``maxiter``, the recycling options (``restart`` and ``k`` of
        GCRO-DR, ``k`` and ``ell`` of rcg always, the others when given), ``M_sha256`` (the
        checkpoint's, when ``M`` is a trained run), ``options`` (the rest)
        and, when tuning, ``tune`` (the resolved tune configuration; ``k`` is then None if k is the
        tuned option). A direct configuration records ``spd``, ``ordering`` and ``factorization``:
        the library that factors SPD matrices on this machine (``"cholmod"``, or ``"superlu"``
        without scikit-sparse or when ``spd`` is False), so that a resume on a machine without
        CHOLMOD is refused rather than mixing libraries.

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
        for key in RECYCLE_KEYS:
            if key not in config:
                continue
            if key not in _RECYCLE_METHOD_KEYS[method]:
                raise ValueError(f"solver: {key!r} is not an option of method {method!r}; it takes "
                                 f"{list(_RECYCLE_METHOD_KEYS[method])}")
            resolved[key] = config.pop(key)
    resolved["options"] = dict(sorted(config.items()))
    if isinstance(preconditioner, str):
        check_run_directory(preconditioner, method, resolved["mode"])
        if preconditioner.lower() not in NAMED_PRECONDITIONERS:
            resolved["M_sha256"] = checkpoint_sha256(preconditioner)
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
        raise ValueError(
            f"solver: method 'direct' takes no preconditioner, got M={preconditioner!r}"
        )
    if "tune" in config:
        raise ValueError("solver: method 'direct' has no option to tune (tune is for ω of SOR/SSOR "
                         "or k of a recycling solver)")
    if "factorization" in config:
        raise ValueError(
            "solver: 'factorization' of method 'direct' is recorded, not chosen: it is "
            "CHOLMOD for SPD matrices where scikit-sparse is installed, else SuperLU; "
            "pass spd=False for LU"
        )
    matrix_spd = config.pop("spd", bool(spd))
    if matrix_spd not in (None, True, False):
        raise ValueError(
            f"solver: 'spd' of method 'direct' must be True, False or None, got {matrix_spd!r}"
        )
    ordering = config.pop("ordering", METHOD_DEFAULTS["direct"]["ordering"])
    if ordering not in CHOLMOD_ORDERINGS:
        raise ValueError(
            f"solver: 'ordering' of method 'direct' must be one of {CHOLMOD_ORDERINGS}, "
            f"got {ordering!r}"
        )
    resolved = {
        "mode": "direct",
        "method": "direct",
        "M": None,
        "rtol": float(config.pop("rtol", DEFAULT_RTOL)),
        "atol": float(config.pop("atol", 0.0)),
        "maxiter": int(config.pop("maxiter", DEFAULT_MAXITER)),
        "spd": matrix_spd if matrix_spd is None else bool(matrix_spd),
        "ordering": ordering,
        "factorization": "cholmod"
        if matrix_spd is not False and cholmod_available()
        else "superlu",
        "options": {},
    }
    if config:
        raise ValueError(f"solver: unknown option(s) {sorted(config)} of method 'direct'; it takes "
                         f"{['rtol', 'atol', 'maxiter', *_DIRECT_KEYS]}")
    return resolved


def solver_request(family: Any, solver: Union[str, Mapping[str, Any]], backend: str, n: int,
                    time_dependent: bool) -> dict[str, Any]:
    """The resolved solver configuration, or for ``"auto"`` what the probe will choose among.

    ``"auto"`` becomes ``{"mode": "auto", "candidates": [...], "probe": P}`` (resolved by
    :func:`probe_solver` when the plan is made) when there is a choice worth timing, else the
    rule's choice marked ``chosen_by: "rule"``; see :mod:`.solver_choice`.
    """
    spd = bool(getattr(family, "spd", False))
    if isinstance(solver, Mapping) and solver.get("method") == "auto":
        tolerances = {key: value for key, value in solver.items() if key != "method"}
        unknown = sorted(set(tolerances) - set(AUTO_KEYS))
        if unknown:
            raise ValueError(
                f"solver: 'auto' takes only {list(AUTO_KEYS)}, got {unknown}; other "
                "options belong to a chosen solver ('recycle', 'independent', 'direct')"
            )
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
