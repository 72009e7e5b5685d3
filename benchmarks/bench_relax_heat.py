"""Learning to Relax, test bed 2: SSOR-CG's ω chosen online along a heat-equation run.

The problem. ``u_t = κ(t) Δu + f`` on [0, 1]², u = 0 on the boundary, u(·, 0) = 0, on an
n_x × n_x interior grid (h = 1/(n_x + 1), 5-point Laplacian ``Δ_h``), Crank–Nicolson with
Δt = 1e-3::

    (I − Δt/2 κ_{k+1} Δ_h) u^{k+1} = (I + Δt/2 κ_k Δ_h) u^k + Δt/2 (f^k + f^{k+1}),

- ``κ(t) = max(0.1·sin 2πt, −10·sin 2πt)``: 0.1·sin 2πt on the first half of each unit period
  (mild), 10·|sin 2πt| on the second (stiff), so the matrix changes at every step;
- ``f(x, y, t) = exp(−((x − x_c(t))² + (y − y_c(t))²)/(2·0.1²))``, a Gaussian bump whose centre
  ``(x_c, y_c) = (0.5 + 0.25 cos 2πt, 0.5 + 0.25 sin 2πt)`` circles the middle of the square
  once per unit of time, counter-clockwise from (0.75, 0.5).

Each step is solved by CG warm-started from u^k to ``‖b − A x‖ ≤ 1e-8‖b‖``, preconditioned by
one SSOR sweep (``solve(A, b, method="cg", M="ssor", pc_omega=ω, x0=u^k, rtol=1e-8)``); the SSOR
set-up is rebuilt inside every solve, since the matrix changes, and counts in the wall time.

Methods: vanilla CG; SSOR-CG with ω = 1, ω = 1.5, the best fixed ω of the grid in hindsight and
the instance-optimal ω (per step the cheapest of the grid); ``TsallisINF`` and ``ChebCB``
choosing ω from ``omega_grid()`` (1, 1.05, …, 1.95) online, library defaults, seed 0.
ChebCB's context is the diagonal shift on a log scale, ``log10(diag A_{k+1}) =
log10(1 + 2Δt κ_{k+1}/h²)``, in the range [0, log10(1 + 20Δt/h²)]: read off the matrix, and
spread evenly over the mild and the stiff half-periods (κ itself squeezes the mild half into
the bottom 1% of its range; a replay with κ as the context is reported too).

How it is measured. Iterations of every arm: a cost table ``[steps, 20]``. The trajectory does
not depend on ω beyond the 1e-8 tolerance, so the table is computed along one trajectory (the
ω = 1 run's own) by solving each table step with every ω from the same u^k; a tuner replayed
on it sees (up to that tolerance) the iterations it would see live — ``ContextualTsallisINF``
and the κ-context ChebCB appear only as such replays. Wall time comes only from real, timed
runs of each method over all steps, each along its own trajectory, after the table: the time
of the step's solve call (SSOR set-up and tuner calls included; the matrix and right-hand side
assembly, common to all, left out). The methods run in lockstep — step k of every method
before step k + 1 of any, in an order rotated at each step — so that the drifting load of the
shared machine falls on all of them alike. The instance-optimal run is given its ω per step
from the table: its time excludes the search that found it.

Budget. Full tables and T = 5000 steps (five periods of κ) at n_x = 25 and 50. At n_x = 100
and 200, T = 1000 steps (one period; the per-step averages compare with the longer runs
because everything is 1-periodic), and the table only on every 10th (100) or 20th (200) step:
the best fixed ω comes from that subsample, the instance-optimal ω gets no timed run, and the
replays are not done. Every number in the output says on which steps it was taken.

PETSc. Where petsc4py imports, the same steps run through ``PetscSolver(method="cg",
M="ssor", pc_omega=ω)`` (PETSc's own SOR, inodes off for ω ≠ 1; one solver per ω, the
per-step matrix wrapped by ``to_petsc_mat`` inside the timed call), in the same lockstep:
CG without a PC, SSOR-CG with ω = 1, the NumPy table's best fixed ω, and TsallisINF / ChebCB
driving the choice of ω through suggest/observe.

    python benchmarks/bench_relax_heat.py [--quick] [--sizes 25 50 100 200] [--steps N]
                                          [--table-every K] [--no-petsc] [--readme]

Writes benchmarks/results/relax_heat.json, relax_heat.png (``relax_heat_quick.*`` with
``--quick``, so that a smoke run keeps the real results), and with ``--readme`` the table
between the ``bench-relax-heat`` markers of benchmarks/README.md. The machine's load average is
recorded around every timed run. ``--quick``: n_x = 20, 200 steps from t = 0.45 (u = 0
there), across the onset of the stiff half-period; well under a minute.
"""

from __future__ import annotations


# SciPy's products are single-threaded anyway; BLAS threads would only spin on a shared machine.

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from _common import RESULTS, load_average, markdown_table, update_readme_section, write_results

import numpy as np
import scipy.sparse as sp

from _relax_common import arm_lookup, matplotlib_pyplot, replay
from pdesuite.solvers import solve
from pdesuite.solvers.tuning import ChebCB, ContextualTsallisINF, TsallisINF, omega_grid

DT = 1e-3
RTOL = 1e-8
MAXITER = 10_000
KAPPA_MAX = 10.0
BUMP_WIDTH = 0.1
DEFAULT_STEPS = {25: 5000, 50: 5000, 100: 1000, 200: 1000}
DEFAULT_TABLE_EVERY = {25: 1, 50: 1, 100: 10, 200: 20}


# --------------------------------------------------------------------------------------------
# the problem


def kappa(t: float) -> float:
    """The diffusivity ``max(0.1 sin 2πt, −10 sin 2πt)``, in [0, 10]."""
    s = math.sin(2.0 * math.pi * t)
    return max(0.1 * s, -KAPPA_MAX * s)


def bump_centre(t: float) -> tuple[float, float]:
    """Centre of the forcing bump at time t: a circle of radius 0.25 around (0.5, 0.5), period 1."""
    return 0.5 + 0.25 * math.cos(2.0 * math.pi * t), 0.5 + 0.25 * math.sin(2.0 * math.pi * t)


@dataclass
class HeatProblem:
    """The n_x × n_x Crank–Nicolson problem; vectors ``[n_x²]`` in natural (row-major) order."""

    nx: int
    h: float
    laplacian: sp.csr_array  # −Δ_h, SPD, 4/h² on the diagonal
    diagonal_positions: np.ndarray  # where the diagonal sits in laplacian.data
    x: np.ndarray
    y: np.ndarray
    t_start: float = 0.0  # time of u^0 = 0

    @classmethod
    def build(cls, nx: int, t_start: float = 0.0) -> "HeatProblem":
        h = 1.0 / (nx + 1)
        T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(nx, nx))
        eye = sp.eye_array(nx)
        laplacian = sp.csr_array((sp.kron(T, eye) + sp.kron(eye, T)) / (h * h))
        laplacian.sort_indices()
        rows = np.repeat(np.arange(nx * nx), np.diff(laplacian.indptr))
        diagonal_positions = np.flatnonzero(laplacian.indices == rows)
        coordinates = h * np.arange(1, nx + 1)
        y, x = np.meshgrid(coordinates, coordinates, indexing="ij")
        return cls(nx, h, laplacian, diagonal_positions, x.ravel(), y.ravel(), t_start)

    @property
    def n(self) -> int:
        return self.nx * self.nx

    def forcing(self, t: float) -> np.ndarray:
        cx, cy = bump_centre(t)
        return np.exp(-((self.x - cx) ** 2 + (self.y - cy) ** 2) / (2.0 * BUMP_WIDTH ** 2))

    def matrix(self, kappa_value: float) -> sp.csr_array:
        """``I + Δt/2 κ (−Δ_h)``."""
        data = (0.5 * DT * kappa_value) * self.laplacian.data
        data[self.diagonal_positions] += 1.0
        return sp.csr_array(
            (data, self.laplacian.indices, self.laplacian.indptr), shape=self.laplacian.shape
        )

    def system(self, step: int, u: np.ndarray) -> tuple[sp.csr_array, np.ndarray, float]:
        """``(A_{k+1}, b_k, κ_{k+1})`` of step k → k+1 from ``u = u^k``."""
        t_now, t_next = self.t_start + step * DT, self.t_start + (step + 1) * DT
        k_now, k_next = kappa(t_now), kappa(t_next)
        rhs = (
            u
            - (0.5 * DT * k_now) * (self.laplacian @ u)
            + 0.5 * DT * (self.forcing(t_now) + self.forcing(t_next))
        )
        return self.matrix(k_next), rhs, k_next

    def log_diagonal(self, kappa_value: float) -> float:
        """The context of ChebCB: ``log10`` of the diagonal entry ``1 + 2Δtκ/h²`` of A."""
        return math.log10(1.0 + 2.0 * DT * kappa_value / (self.h * self.h))

    @property
    def log_diagonal_range(self) -> tuple[float, float]:
        return 0.0, self.log_diagonal(KAPPA_MAX)


# --------------------------------------------------------------------------------------------
# the cost table


def cost_table(
    problem: HeatProblem, steps: int, table_steps: list[int], arms: np.ndarray
) -> np.ndarray:
    """``[len(table_steps), K]`` CG iterations of every arm at the given steps.

    The trajectory is the ω = 1 run's own: at each step ``u^{k+1}`` is its solution, and at a
    table step every other arm is solved from the same ``u^k`` (ω = 1 reuses the run's count).
    Untimed: wall times come from :func:`timed_runs`.
    """
    wanted = set(table_steps)
    table = np.zeros((len(table_steps), arms.size), dtype=np.int64)
    u = np.zeros(problem.n)
    row = 0
    for k in range(steps):
        A, b, _ = problem.system(k, u)
        result = solve(A, b, method="cg", M="ssor", pc_omega=1.0, x0=u, rtol=RTOL, maxiter=MAXITER)
        if k in wanted:
            for a, omega in enumerate(arms):
                table[row, a] = result.iterations if omega == 1.0 else solve(
                    A, b, method="cg", M="ssor", pc_omega=float(omega), x0=u, rtol=RTOL,
                    maxiter=MAXITER).iterations
            row += 1
        u = result.x
    return table


# --------------------------------------------------------------------------------------------
# timed runs


StepFunction = Callable[
    [int, sp.csr_array, np.ndarray, np.ndarray, float], tuple[Any, Optional[float]]
]


@dataclass
class Method:
    """One method of the comparison: how it solves a step, and its own trajectory and record."""

    name: str
    backend: str  # "numpy" or "petsc"
    step: StepFunction  # (k, A, b, x0, κ_{k+1}) -> (SolveResult, ω used or None)
    u: np.ndarray
    iterations: np.ndarray
    seconds: np.ndarray  # time of the step call: the solve, the SSOR set-up and tuner calls
    omegas: np.ndarray

    @classmethod
    def create(cls, name: str, backend: str, step: StepFunction, n: int, steps: int) -> "Method":
        return cls(
            name,
            backend,
            step,
            np.zeros(n),
            np.zeros(steps, dtype=np.int64),
            np.zeros(steps),
            np.full(steps, np.nan),
        )

    def summary(self, reference: "Method") -> dict[str, Any]:
        out = {
            "iterations": int(self.iterations.sum()),
            "seconds": float(self.seconds.sum()),
            "iterations_per_step": float(self.iterations.mean()),
            "iterations_ratio_to_omega1": float(self.iterations.sum() / reference.iterations.sum()),
            "speedup_vs_omega1_time": float(reference.seconds.sum() / self.seconds.sum()),
        }
        if np.any(np.isfinite(self.omegas)):
            out["omega_mean"] = float(np.nanmean(self.omegas))
        return out


def numpy_step(
    omega: Any = None, context_of: Optional[Callable[[float], float]] = None
) -> StepFunction:
    """SSOR-CG through ``pdesuite.solvers.solve`` with ω fixed, from a tuner (``context_of(κ)``
    its context), or per step (a function of k; the instance-optimal run); CG for None."""

    def step(k, A, b, x0, k_next):
        if omega is None:
            return solve(A, b, method="cg", x0=x0, rtol=RTOL, maxiter=MAXITER), None
        if hasattr(omega, "suggest"):
            result = solve(A, b, method="cg", M="ssor", pc_omega=omega, x0=x0, rtol=RTOL,
                           maxiter=MAXITER, context=context_of(k_next) if context_of else None)
            return result, result.info["tuned"]["pc_omega"]
        value = float(omega(k)) if callable(omega) else float(omega)
        return solve(
            A, b, method="cg", M="ssor", pc_omega=value, x0=x0, rtol=RTOL, maxiter=MAXITER
        ), value

    return step


def petsc_step_factory() -> Optional[Callable[..., StepFunction]]:
    """A maker of PETSc steps (one ``PetscSolver`` per ω, shared), or None without petsc4py."""
    try:
        from pdesuite.solvers.petsc_backend import PetscSolver, to_petsc_mat
    except ImportError:
        return None
    solvers: dict[Optional[float], Any] = {}

    def solver_for(omega: Optional[float]):
        if omega not in solvers:
            solvers[omega] = (
                PetscSolver("cg", M="none", rtol=RTOL, maxiter=MAXITER)
                if omega is None
                else PetscSolver("cg", M="ssor", pc_omega=float(omega), rtol=RTOL, maxiter=MAXITER)
            )
        return solvers[omega]

    def make(
        omega: Any = None, context_of: Optional[Callable[[float], float]] = None
    ) -> StepFunction:
        def step(k, A, b, x0, k_next):
            # The SciPy matrix of the step is wrapped (no copy) inside the timed call, as a
            # user of the backend would; for ω ≠ 1 the solver also turns inodes off on it.
            if hasattr(omega, "suggest"):
                value = omega.suggest(context_of(k_next) if context_of else None)
                result = solver_for(value).solve(to_petsc_mat(A), b, x0=x0)
                omega.observe(float(result.iterations))
                return result, value
            return solver_for(omega).solve(to_petsc_mat(A), b, x0=x0), omega

        return step

    make.close = lambda: [solver.close() for solver in solvers.values()]  # type: ignore[attr-defined]
    return make


def timed_runs(problem: HeatProblem, steps: int, methods: list[Method]) -> None:
    """Run every method over the steps in lockstep, each along its own trajectory.

    Step k of all methods runs before step k + 1 of any, in an order rotated by one method per
    step: on a shared machine whose load drifts over minutes, every method then sees the same
    load, and none always runs first (cold caches) or last.
    """
    for k in range(steps):
        shift = k % len(methods)
        for method in methods[shift:] + methods[:shift]:
            A, b, k_next = problem.system(k, method.u)
            started = time.perf_counter()
            result, omega = method.step(k, A, b, method.u, k_next)
            method.seconds[k] = time.perf_counter() - started
            if not result.converged:
                raise RuntimeError(
                    f"{method.backend} {method.name}: step {k} did not converge ({result.reason})"
                )
            method.iterations[k] = result.iterations
            method.omegas[k] = np.nan if omega is None else omega
            method.u = result.x


def benchmark_size(nx: int, steps: int, table_every: int, seed: int, with_petsc: bool,
                   t_start: float = 0.0) -> dict[str, Any]:
    problem = HeatProblem.build(nx, t_start)
    arms = omega_grid()
    lookup = arm_lookup(arms)
    table_steps = list(range(0, steps, table_every))
    complete = table_every == 1
    kappas_next = np.array([kappa(t_start + (k + 1) * DT) for k in range(steps)])
    contexts = np.array([problem.log_diagonal(value) for value in kappas_next])
    load_start = load_average()
    started = time.perf_counter()

    table = cost_table(problem, steps, table_steps, arms)
    table_seconds = time.perf_counter() - started
    print(f"  n_x={nx}: table done ({table_seconds:.0f} s)", flush=True)
    arm_totals = table.sum(axis=0)
    best = float(arms[int(np.argmin(arm_totals))])
    optimal = arms[np.argmin(table, axis=1)] if complete else None

    def chebcb() -> ChebCB:
        return ChebCB(arms, context_range=problem.log_diagonal_range, seed=seed)

    n = problem.n
    methods = [Method.create("CG", "numpy", numpy_step(None), n, steps),
               Method.create("SSOR-CG omega=1", "numpy", numpy_step(1.0), n, steps),
               Method.create("SSOR-CG omega=1.5", "numpy", numpy_step(1.5), n, steps)]
    if best not in (1.0, 1.5):
        methods.append(
            Method.create("SSOR-CG best fixed omega", "numpy", numpy_step(best), n, steps)
        )
    if optimal is not None:
        methods.append(Method.create("SSOR-CG instance-optimal omega", "numpy",
                                     numpy_step(lambda k: optimal[k]), n, steps))
    methods += [
        Method.create("TsallisINF", "numpy", numpy_step(TsallisINF(arms, seed=seed)), n, steps),
        Method.create("ChebCB", "numpy", numpy_step(chebcb(), problem.log_diagonal), n, steps),
    ]
    petsc_make = petsc_step_factory() if with_petsc else None
    if petsc_make is not None:
        methods += [Method.create("CG", "petsc", petsc_make(None), n, steps),
                    Method.create("SSOR-CG omega=1", "petsc", petsc_make(1.0), n, steps)]
        if best != 1.0:
            methods.append(
                Method.create("SSOR-CG best fixed omega", "petsc", petsc_make(best), n, steps)
            )
        methods += [
            Method.create("TsallisINF", "petsc", petsc_make(TsallisINF(arms, seed=seed)), n, steps),
            Method.create("ChebCB", "petsc", petsc_make(chebcb(), problem.log_diagonal), n, steps),
        ]
    timed_runs(problem, steps, methods)
    if petsc_make is not None:
        petsc_make.close()
    print(f"  n_x={nx}: timed runs done ({time.perf_counter() - started:.0f} s)", flush=True)

    by_backend: dict[str, dict[str, Method]] = {"numpy": {}, "petsc": {}}
    for method in methods:
        by_backend[method.backend][method.name] = method
    for runs in by_backend.values():
        if runs and "SSOR-CG best fixed omega" not in runs:
            runs["SSOR-CG best fixed omega"] = runs[f"SSOR-CG omega={best:g}"]
    runs = by_backend["numpy"]
    summaries = {backend: {name: m.summary(r["SSOR-CG omega=1"]) for name, m in r.items()}
                 for backend, r in by_backend.items() if r}

    table_report: dict[str, Any] = {
        "steps": "all"
        if complete
        else f"every {table_every}th step from 0 ({len(table_steps)} steps)",
        "arm_totals": arm_totals.tolist(),
        "best_fixed_omega": best,
        "instance_optimal_iterations": int(table.min(axis=1).sum()),
        "omega1_iterations_on_table_steps": int(table[:, lookup(1.0)].sum()),
        "best_fixed_iterations_on_table_steps": int(arm_totals.min()),
        "seconds": round(table_seconds, 1),
    }
    # The live fixed-ω runs against the table's columns: ω = 1 shares the table's trajectory
    # (equal counts expected); the others agree only up to the 1e-8 tolerance.
    live_vs_table = {}
    for name, omega in (
        ("SSOR-CG omega=1", 1.0),
        ("SSOR-CG omega=1.5", 1.5),
        ("SSOR-CG best fixed omega", best),
    ):
        column = table[:, lookup(omega)]
        live = runs[name].iterations[table_steps]
        live_vs_table[name] = {"table": int(column.sum()), "live": int(live.sum()),
                               "steps_differing": int(np.sum(column != live)),
                               "max_step_difference": int(np.abs(column - live).max())}
    table_report["live_vs_table"] = live_vs_table
    if complete:
        replays = {}
        for name, tuner, ctx in (
            ("TsallisINF", TsallisINF(arms, seed=seed), None),
            (
                "ContextualTsallisINF",
                ContextualTsallisINF(arms, context_range=problem.log_diagonal_range, seed=seed),
                contexts,
            ),
            ("ChebCB", chebcb(), contexts),
            (
                "ChebCB (context kappa)",
                ChebCB(arms, context_range=(0.0, KAPPA_MAX), seed=seed),
                kappas_next,
            ),
        ):
            _, costs = replay(tuner, table, arms, ctx)
            replays[name] = {"iterations": int(costs.sum()),
                             "ratio_to_best_fixed": float(costs.sum() / arm_totals.min())}
            if name in runs:
                replays[name]["live_iterations"] = int(runs[name].iterations.sum())
        table_report["replays"] = replays

    result: dict[str, Any] = {
        "nx": nx, "n": n, "steps": steps, "t_start": t_start, "t_end": t_start + steps * DT,
        "table": table_report, "methods": summaries["numpy"],
        "petsc": ({"methods": summaries["petsc"], "best_fixed_omega": best} if "petsc" in summaries
                  else {"skipped": "petsc4py not importable" if with_petsc else "--no-petsc"}),
        "load_average_start": load_start, "load_average_end": load_average(),
        "seconds_total": round(time.perf_counter() - started, 1),
        "_runs": runs, "_kappas": kappas_next, "_optimal": optimal,
    }
    return result

# --------------------------------------------------------------------------------------------
# report


ORDER = ("CG", "SSOR-CG omega=1", "SSOR-CG omega=1.5", "SSOR-CG best fixed omega",
         "SSOR-CG instance-optimal omega", "TsallisINF", "ChebCB")


def plot(results: list[dict[str, Any]], stem: str) -> str:
    plt = matplotlib_pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    speed, per_step, chosen = axes
    sizes = [r["nx"] for r in results]
    for i, name in enumerate(ORDER):
        values = [r["methods"].get(name, {}).get("speedup_vs_omega1_time", np.nan) for r in results]
        speed.plot(sizes, values, marker="o", label=f"NumPy: {name}", color=f"C{i}")
        petsc = [
            r.get("petsc", {})
            .get("methods", {})
            .get(name, {})
            .get("speedup_vs_omega1_time", np.nan)
            for r in results
        ]
        if np.any(np.isfinite(petsc)):
            speed.plot(
                sizes, petsc, marker="s", linestyle=":", color=f"C{i}", label=f"PETSc: {name}"
            )
    speed.axhline(1.0, color="k", linewidth=0.8)
    speed.set(xscale="log", yscale="log", xlabel="n_x", ylabel="wall time of SSOR-CG ω=1 / method",
              title="speed-up in wall time (solve calls; each backend its own ω=1)")
    speed.minorticks_off()
    speed.set_xticks(sizes, [str(s) for s in sizes])
    speed.set_yticks([0.5, 1, 2, 4], ["0.5", "1", "2", "4"])
    speed.legend(fontsize=6)
    # per-step iterations at the largest size with a complete table (else the largest size)
    shown = next((r for r in reversed(results) if r["_optimal"] is not None), results[-1])
    runs, kappas = shown["_runs"], shown["_kappas"]
    steps = len(kappas)
    window = max(1, steps // 250)
    t = shown["t_start"] + DT * np.arange(1, steps + 1)
    for i, name in enumerate(ORDER):
        if name in runs and name != "CG":
            smooth = np.convolve(runs[name].iterations, np.ones(window) / window, mode="same")
            per_step.plot(t, smooth, label=name, color=f"C{i}", linewidth=1)
    twin = per_step.twinx()
    twin.plot(t, kappas, color="0.6", linewidth=0.8, linestyle="--")
    twin.set_ylabel("κ(t) (dashed)")
    per_step.set(xlabel="t", ylabel=f"CG iterations per step (moving mean of {window})",
                 title=f"n_x = {shown['nx']}")
    per_step.legend(fontsize=7)
    if shown["_optimal"] is not None:
        chosen.plot(t, shown["_optimal"], "s", markersize=3, color="0.75", label="instance-optimal")
    for name, colour in (("TsallisINF", "C0"), ("ChebCB", "C3")):
        if name in runs:
            chosen.plot(t, runs[name].omegas, ".", markersize=1.5, color=colour, label=name)
    chosen.axhline(shown["table"]["best_fixed_omega"], color="k", linestyle="--", linewidth=1,
                   label="best fixed ω")
    chosen.set(xlabel="t", ylabel="ω", title=f"ω chosen per step, n_x = {shown['nx']}")
    chosen.legend(fontsize=7, markerscale=4)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stem}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def markdown(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        for name in ORDER:
            if name not in r["methods"]:
                continue
            m = r["methods"][name]
            rows.append(
                [
                    r["nx"],
                    r["steps"],
                    name,
                    f"{m['iterations']:,}",
                    f"{m['seconds']:.1f}",
                    f"{m['iterations_ratio_to_omega1']:.2f}",
                    f"{m['speedup_vs_omega1_time']:.2f}",
                ]
            )
        petsc = r.get("petsc", {})
        for name, m in petsc.get("methods", {}).items():
            rows.append(
                [
                    r["nx"],
                    r["steps"],
                    f"PETSc {name}",
                    f"{m['iterations']:,}",
                    f"{m['seconds']:.1f}",
                    f"{m['iterations_ratio_to_omega1']:.2f}",
                    f"{m['speedup_vs_omega1_time']:.2f}",
                ]
            )
    table = markdown_table(["n_x", "steps", "method", "CG iterations", "solve time [s]",
                            "iterations / ω=1", "speed-up vs ω=1 (time)"], rows)
    notes = []
    for r in results:
        t = r["table"]
        notes.append(
            f"n_x={r['nx']}: best fixed ω {t['best_fixed_omega']:g} (table on {t['steps']}); "
            f"load average {r['load_average_start']} → {r['load_average_end']}"
        )
        if "petsc" in r and "skipped" in r["petsc"]:
            notes.append(f"n_x={r['nx']}: PETSc skipped ({r['petsc']['skipped']})")
    return table + "\n\n" + "; ".join(notes) + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="n_x = 20, 200 steps from t = 0.45 across the onset of the stiff phase",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument(
        "--steps", type=int, default=None, help="steps at every size (default per size)"
    )
    parser.add_argument("--table-every", type=int, default=None, help="table on every K-th step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-petsc", action="store_true")
    parser.add_argument("--readme", action="store_true", help="write the README table")
    args = parser.parse_args()
    t_start = 0.0
    if args.quick:
        args.sizes, args.steps, t_start = [20], 200, 0.45
    results = []
    started = time.perf_counter()
    for nx in args.sizes:
        if nx < 3:
            parser.error(f"--sizes: n_x must be >= 3, got {nx}")
    for nx in args.sizes:
        steps = args.steps or DEFAULT_STEPS.get(nx, 1000)
        every = args.table_every or (1 if args.quick else DEFAULT_TABLE_EVERY.get(nx, 20))
        print(f"n_x={nx}: {steps} steps, table every {every}", flush=True)
        results.append(benchmark_size(nx, steps, every, args.seed, not args.no_petsc, t_start))
        # Written after every size, so that an interrupted long run keeps what it finished.
        text = report(results, args, started, complete=len(results) == len(args.sizes))
    print(text)
    if args.readme:
        update_readme_section(
            "bench-relax-heat", text + "\n\n![heat](benchmarks/results/relax_heat.png)"
        )


def report(
    results: list[dict[str, Any]], args: argparse.Namespace, started: float, complete: bool
) -> str:
    """Write relax_heat.json and relax_heat.png for the sizes done so far; return the table."""
    stem = "relax_heat_quick" if args.quick else "relax_heat"  # a smoke run keeps the real results
    image = plot(results, stem)
    text = markdown(results)
    payload = {
        "benchmark": "Learning to Relax, heat equation (SSOR-preconditioned CG)",
        "config": {
            "dt": DT,
            "rtol": RTOL,
            "maxiter": MAXITER,
            "kappa": "max(0.1 sin 2 pi t, -10 sin 2 pi t)",
            "forcing": "exp(-|x - c(t)|^2 / (2*0.1^2)), c(t) = (0.5 + 0.25 cos 2 pi t, 0.5 + 0.25 "
                       "sin 2 pi t)",
            "u0": 0.0,
            "arms": omega_grid().tolist(),
            "seed": args.seed,
            "quick": args.quick,
            "sizes_requested": args.sizes,
            "complete": complete,
            "chebcb_context": "log10(1 + 2 dt kappa / h^2), the log of A's diagonal",
        },
        "sizes": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
        "plot": image,
        "markdown": text,
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    path = write_results(stem, payload)
    print(f"wrote {path} and {RESULTS / image} ({payload['runtime_s']} s)", flush=True)
    return text


if __name__ == "__main__":
    main()
