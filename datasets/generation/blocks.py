"""Solving one block of samples into its shard: the block's solver, per-sample statistics, steady
and time-dependent samples."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import numpy as np

from pdesuite.datasets.generation.learned import open_source
from pdesuite.datasets.generation.shards import ShardWriter
from pdesuite.datasets.generation.solver_choice import choose_solver
from pdesuite.datasets.generation.solver_config import RECYCLE_KEYS
from pdesuite.datasets.generation.tuning import BlockTuning
from pdesuite.solvers.direct import cholmod_available
from pdesuite.solvers.validation import check_tolerances

if TYPE_CHECKING:
    from pdesuite.datasets.generation.plan import Plan

#: ``solver/reason`` of a sample that needed no linear solve (explicit time stepping).
NO_SOLVE_REASON = 0


def make_solver(config: Mapping[str, Any], backend: str,
                 tuning: Optional["BlockTuning"] = None) -> Callable[..., Any]:
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

        kwargs = {key: config[key] for key in RECYCLE_KEYS if key in config}
        if tuning is not None and tuning.target == "k":
            kwargs["k"] = tuning.tuner
        recycler = RecyclingSolver(
            method=config["method"],
            rtol=config["rtol"],
            atol=config["atol"],
            maxiter=config["maxiter"],
            M=config["M"],
            **kwargs,
            **options,
        )

        def solve_recycled(A, b, x0=None, context=None, callback=None):
            return recycler.solve(A, b, x0=x0, context=context, callback=callback)

        return solve_recycled

    def solve_independent(A, b, x0=None, context=None, callback=None, M=None):
        # M: the sample's own preconditioner (a learned one, made per sample), else the named one
        M = config["M"] if M is None else M
        return solve(A, b, method=config["method"], M=M, x0=x0, rtol=config["rtol"],
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


#: Size of the test system of :func:`check_solver`.
_CHECK_SIZE = 64


def check_solver(config: Mapping[str, Any], backend: str) -> None:
    """Build the block solver of ``config`` and solve a small test system with it.

    A bad option (a negative ``rtol``, an unknown method, preconditioner or option, a bad
    recycling or tuner setting) then fails before a run writes anything, rather than at the
    first sample after the plan is saved. The test system is ``tridiag(-1, 4, -1)`` of size
    :data:`_CHECK_SIZE` with a ramp right-hand side: symmetric positive definite and well
    conditioned, so every method and named preconditioner accepts it whatever the family;
    only the options are under test, not convergence. A ``"auto"`` request checks each of
    its candidates. The solver's warnings are silenced here (the run's own solves give them).

    Raises:
        ValueError: ``"solver: "`` and the solver's own message, which starts with the name of
            the offending option (``"solver: rtol: must be ..."``, ``"solver: method: unknown
            method 'foo' ..."``); also for an option the method does not take.
    """
    import warnings

    import scipy.sparse as sp

    configs = config["candidates"] if config["mode"] == "auto" else [config]
    # A learned M needs a system of its grid: checked on the family's first sample instead
    # (check_learned_preconditioner); the other options are checked here without it.
    configs = [{**c, "M": None} if "M_sha256" in c else c for c in configs]
    A = sp.csr_array(sp.diags([-np.ones(_CHECK_SIZE - 1), 4.0 * np.ones(_CHECK_SIZE),
                               -np.ones(_CHECK_SIZE - 1)], [-1, 0, 1]))
    b = np.linspace(1.0, 2.0, _CHECK_SIZE)
    for candidate in configs:
        tune = candidate.get("tune")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tuning = BlockTuning(tune, 0, 0) if tune else None
                context = None
                if tune and tune.get("context") is not None:
                    low, high = tune["context_range"]
                    context = 0.5 * (float(low) + float(high))
                # The direct path ignores maxiter: checked here so that a bad value fails alike.
                check_tolerances(candidate["rtol"], candidate["atol"], candidate["maxiter"])
                make_solver(candidate, backend, tuning)(A, b, context=context)
        except (ValueError, TypeError) as error:
            message = str(error)
            prefix = "" if message.startswith("solver:") else "solver: "
            raise ValueError(f"{prefix}{message}") from error


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

    def __init__(self, solve: Callable[..., Any], tuning: Optional[BlockTuning] = None):
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

    def __call__(self, A, b, x0=None, M=None):
        from pdesuite.discretization import LinearSystem

        if isinstance(A, LinearSystem):
            A, b = A.A, A.b if b is None else b
        extra = {} if M is None else {"M": M}
        if self._tuning is None:
            result = self._solve(A, b, x0=x0, **extra)
        else:
            context = self._tuning.context(A, self.params)
            result = self._solve(A, b, x0=x0, context=context, **extra)
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


def _solve_sample(plan: Plan, index: int, recorder: _StatsRecorder,
                  learned: Any = None) -> dict[str, Any]:
    """Draw and solve one sample of a steady family (``learned``: the block's source of
    learned preconditioners, or None)."""
    family = plan.family
    params = family.sample(np.random.default_rng([plan.seed, int(index)]))
    recorder.reset(params)
    system = family.assemble(params)
    M = None if learned is None else learned.for_system(system, family.inputs(params))
    result = recorder(system.A, system.b, M=M)
    return {
        "parameters": params,
        "outputs": np.asarray(family.outputs(params, system.expand(result.x)), dtype=np.float32),
        "inputs": np.asarray(family.inputs(params), dtype=np.float32),
        "solver": recorder.record(),
    }


def _simulate_samples(plan: Plan, indices: Sequence[int], solve: Callable[..., Any],
                      tuning: Optional[BlockTuning]) -> list[dict[str, Any]]:
    """Draw and simulate the samples ``indices`` of a time-dependent family as one batch.

    Each sample gets its own recorder around the block's solver ``solve``, so that its
    statistics are its own while the recycle space and the tuner run on across the batch.
    """
    family = plan.family
    params_list = [
        family.sample(np.random.default_rng([plan.seed, int(index)])) for index in indices
    ]
    recorders = []
    for params in params_list:
        recorder = _StatsRecorder(solve, tuning)
        recorder.reset(params)
        recorders.append(recorder)
    simulate_batch = getattr(family, "simulate_batch", None)
    if callable(simulate_batch):
        trajectories, _ = simulate_batch(params_list, recorders)
    else:  # a family written against the contract without simulate_batch
        trajectories = [
            family.simulate(params, recorder)[0] for params, recorder in zip(params_list, recorders)
        ]
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


def run_block(plan: Plan, block: int, on_sample: Callable[[], None],
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
    tuning = BlockTuning(tune, plan.seed, block) if tune else None
    solve = make_solver(plan.solver, plan.backend, tuning)
    recorder = _StatsRecorder(solve, tuning)
    learned = (open_source(plan.solver["M"], plan.solver["M_sha256"])
               if "M_sha256" in plan.solver else None)
    # Time-dependent samples run in batches of consecutive positions of the block: a batch is
    # a function of the plan alone, whatever the worker count or a resume.
    batch = plan.batch_size if plan.time_dependent else 1
    writer = ShardWriter(temporary, indices, {"run_hash": plan.run_hash, "block": int(block)},
                         tuned=tuned_stat(plan))
    try:
        for start in range(0, len(indices), batch):
            if should_stop():
                return False
            if plan.time_dependent:
                samples = _simulate_samples(
                    plan, [int(i) for i in indices[start : start + batch]], solve, tuning
                )
            else:
                samples = [_solve_sample(plan, int(indices[start]), recorder, learned)]
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


def check_learned_preconditioner(family: Any, config: Mapping[str, Any], seed: int,
                                 backend: str) -> None:
    """Make the learned preconditioner of the family's first sample and run one iteration
    with it, so that a network that cannot serve the family (another grid, other channels) is
    a ValueError before a run writes anything."""
    if "M_sha256" not in config:
        return
    if getattr(family, "time_dependent", False):
        raise ValueError("solver: M: a learned preconditioner serves steady families; "
                         f"{family.name!r} is time-dependent")
    params = family.sample(np.random.default_rng([seed, 0]))
    system = family.assemble(params)
    M = open_source(config["M"], config["M_sha256"]).for_system(system, family.inputs(params))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one iteration does not converge, and need not
        make_solver({**config, "maxiter": 1}, backend)(system.A, system.b, M=M)


def tuned_stat(plan: Plan) -> Optional[str]:
    """The name of the per-sample statistic of the tuned option (``omega``, ``k``), or None."""
    tune = plan.solver.get("tune")
    return tune["option"] if tune else None


def h5py_module():
    import h5py

    return h5py


def probe_solver(family: Any, request: Mapping[str, Any], order: np.ndarray, seed: int,
                  chunk_size: int, backend: str) -> dict[str, Any]:
    """The candidate of an ``"auto"`` request that solves the first samples of ``order`` fastest.

    Returns its configuration with ``chosen_by: "probe"``, ``estimates`` (seconds per sample of
    each candidate, None if cut off) and ``probe_time`` (seconds the probe took, draws included).
    """
    start = time.perf_counter()
    systems = [family.assemble(family.sample(np.random.default_rng([seed, int(index)])))
               for index in order[:request["probe"]]]
    candidates = request["candidates"]
    index, estimates = choose_solver(systems, candidates, lambda c: make_solver(c, backend),
                                     block_size=min(chunk_size, len(order)))
    return {**candidates[index], "chosen_by": "probe", "estimates": estimates,
            "probe_time": time.perf_counter() - start}
