"""How ``generate(solver="auto")`` picks its solver: by timing the candidates on the first samples.

The candidates are the three ways a block can solve its samples (:func:`candidate_solvers`):
the direct path (the sparsity pattern analysed once, every sample refactored), preconditioned
Krylov from a zero guess (IC(0)-CG on SPD families, ILU(0)-GMRES otherwise), and recycling
(``"recycle"``: recycling CG or GCRO-DR, carrying a subspace from sample to sample). Which one
wins depends on the family, its size and the machine: ``benchmarks/bench_crossover.py`` finds
the direct path 2–5× ahead in 2-D up to 512² and IC(0)-CG 6–19× ahead in 3-D from 16³ on.

So, like FFTW's ``FFTW_MEASURE`` planner, the choice is measured (:func:`choose_solver`): each
candidate solves the first ``probe`` samples of the solve order as a block would, the first
solve (which carries the analysis or the subspace's start-up) apart from the rest, and the
candidate with the smallest estimated block time wins. A candidate is stopped as soon as
the least block estimate it could still reach exceeds the best so far (while an independent
candidate's first solve runs, its later ones count as costly as it, a recycling one's as a
tenth): iterative ones from
their callback, mid-solve; the direct path, which cannot be stopped mid-solve, comes first
where it is expected to win. So the probe costs at most about one block's solves per
candidate, and much less where one candidate is clearly ahead. The choice is made once per run,
before any worker starts, saved with the plan (a resume keeps it) and recorded in the file's
``solver_config`` with the estimates.

Timing makes the choice machine-dependent, like FFTW's plans: two runs may choose differently
near a crossover, and their arrays then differ in the last bits. The recorded configuration,
passed back as ``solver=``, reproduces a file exactly. Families for which no probe is needed
take a rule instead (:func:`rule_choice`): time-dependent ones recycle (their solver carries
over from step to step), and runs of fewer than :data:`MIN_PROBED_SAMPLES` samples take the
crossover's rule, as probing would cost more than it could save.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Optional, Sequence

#: Samples each candidate solves in the probe.
PROBE_SAMPLES = 3
#: Runs with fewer samples take :func:`rule_choice` without probing.
MIN_PROBED_SAMPLES = 8
#: 3-D families with more grid points than this (20³) leave the direct path out of the probe:
#: its factor fills in like n^(4/3), so its time and memory grow fastest, the crossover
#: benchmark finds IC(0)-CG ahead by 6× already at 16³, and the direct path's first solve,
#: which cannot be stopped, would cost the probe more than every other candidate together.
DIRECT_PROBE_LIMIT_3D = 8_000


def _dimension(family: Any) -> int:
    grid = getattr(family, "grid", None)
    return len(grid.shape) if grid is not None else 2  # FE families live on 2-D meshes


def _grid_points(family: Any) -> Optional[int]:
    grid = getattr(family, "grid", None)
    return int(grid.size) if grid is not None else None


def rule_choice(family: Any, backend: str = "numpy") -> str | dict[str, Any]:
    """The solver the crossover benchmark says wins for ``family``, without timing anything.

    Time-dependent families recycle; 2-D families (grids and meshes) take the direct path;
    3-D SPD ones IC(0)-CG and 3-D indefinite ones recycling (GCRO-DR). On a backend other
    than ``"numpy"`` (where neither recycling nor the direct path runs) the preconditioned
    Krylov candidate.
    """
    spd = bool(getattr(family, "spd", False))
    krylov = {"method": "cg", "M": "ic"} if spd else {"method": "gmres", "M": "ilu"}
    if backend != "numpy":
        return krylov
    if getattr(family, "time_dependent", False):
        return "recycle"
    if _dimension(family) <= 2:
        return "direct"
    return krylov if spd else "recycle"


def candidate_solvers(family: Any, backend: str = "numpy") -> list[str | dict[str, Any]]:
    """The solver requests :func:`choose_solver` times for ``family``, the rule's choice first.

    ``"direct"``, preconditioned Krylov (``{"method": "cg", "M": "ic"}`` when the family is
    SPD, else ``{"method": "gmres", "M": "ilu"}``) and ``"recycle"``; on a backend other than
    ``"numpy"`` only the Krylov one; a large 3-D family (over :data:`DIRECT_PROBE_LIMIT_3D`
    grid points) without the direct path.
    """
    spd = bool(getattr(family, "spd", False))
    krylov = {"method": "cg", "M": "ic"} if spd else {"method": "gmres", "M": "ilu"}
    if backend != "numpy":
        return [krylov]
    candidates: list[str | dict[str, Any]] = ["direct", krylov, "recycle"]
    points = _grid_points(family)
    if _dimension(family) >= 3 and (points is None or points > DIRECT_PROBE_LIMIT_3D):
        candidates.remove("direct")
    first = rule_choice(family, backend)
    if first in candidates:
        candidates.remove(first)
        candidates.insert(0, first)
    return candidates


def label(request: str | Mapping[str, Any]) -> str:
    """A short name of a solver request or configuration: ``"direct"``, ``"rcg"``, ``"cg+ic"``."""
    if isinstance(request, str):
        return request
    preconditioner = request.get("M")
    return f"{request['method']}+{preconditioner}" if preconditioner else str(request["method"])


def estimate_block_time(times: Sequence[float], block_size: int) -> float:
    """Seconds to solve a block of ``block_size`` samples from the probe's solve ``times``.

    The first solve pays what a block pays once (the symbolic analysis, the first recycle
    space), the others what every later sample pays: ``t₁ + (block_size − 1) · mean(t₂, ...)``,
    with ``t₁`` standing in for the later ones when only one solve ran.
    """
    if not times:
        raise ValueError("times: the probe ran no solve")
    later = times[1:] if len(times) > 1 else times[:1]
    return float(times[0] + (block_size - 1) * sum(later) / len(later))


#: What a later solve of a block is assumed to cost at least, as a share of its first solve,
#: while that first solve still runs: an independent solve does not depend on the samples
#: before it, a recycling one gets cheaper as its space grows (rarely by 10×). The direct
#: path cannot be stopped mid-solve, so it needs none.
LATER_SHARE = {"independent": 1.0, "recycle": 0.1}


def _lower_bound(times: Sequence[float], elapsed: float, probe: int, block_size: int,
                 later_share: float = 0.0) -> float:
    """The least block estimate a candidate can still reach: ``times`` of its finished probe
    solves, ``elapsed`` seconds into the next one, ``probe`` solves in all; while the first
    solve runs, each later one counts ``later_share`` of it."""
    if probe == 1:
        return block_size * elapsed
    if not times:
        return elapsed * (1 + (block_size - 1) * later_share)
    return times[0] + (block_size - 1) * (sum(times[1:]) + elapsed) / (probe - 1)


class _OverBudget(Exception):
    """Raised from a solve's callback once it has run longer than the best block estimate."""


def choose_solver(systems: Sequence[Any], candidates: Sequence[Any],
                  make_solve: Callable[[Any], Callable[..., Any]],
                  block_size: int) -> tuple[int, dict[str, Optional[float]]]:
    """Time each candidate on ``systems`` and return the index of the fastest and the estimates.

    Args:
        systems: the probe's linear systems (objects with ``A`` and ``b``), in solve order.
        candidates: the solver configurations to compare, the preferred first (it wins ties).
        make_solve: builds a fresh block solver ``solve(A, b, callback=None)`` from a
            candidate; ``callback(iteration, residual_norm)`` is called by iterative ones after
            every iteration, and stops the solve by raising.
        block_size: samples per block, to which :func:`estimate_block_time` extrapolates.

    Returns:
        ``(index, estimates)``: the winner's position in ``candidates``, and for each candidate
        (by :func:`label`) its estimated seconds per sample; None for one that did not
        converge, or that was stopped because its solves took longer than the best estimate
        of a whole block so far.
    """
    if not systems or not candidates:
        raise ValueError("choose_solver: needs at least one system and one candidate")
    best_index, best_block = 0, float("inf")
    estimates: dict[str, Optional[float]] = {}
    for index, candidate in enumerate(candidates):
        solve = make_solve(candidate)
        mode = candidate.get("mode") if isinstance(candidate, Mapping) else None
        share = LATER_SHARE.get(mode, 0.0)
        times: list[float] = []
        start = 0.0

        def stop_when_over_budget(iteration: int, residual_norm: float) -> None:
            elapsed = time.perf_counter() - start
            if _lower_bound(times, elapsed, len(systems), block_size, share) > best_block:
                raise _OverBudget

        for system in systems:
            start = time.perf_counter()
            try:
                result = solve(system.A, system.b, callback=stop_when_over_budget)
            except _OverBudget:
                result = None
            elapsed = time.perf_counter() - start
            if result is None or not result.converged or \
                    _lower_bound(times, elapsed, len(systems), block_size, share) > best_block:
                times = []
                break
            times.append(elapsed)
        if not times:
            estimates[label(candidate)] = None
            continue
        block = estimate_block_time(times, block_size)
        estimates[label(candidate)] = block / block_size
        if block < best_block:
            best_index, best_block = index, block
    return best_index, estimates
