"""Learning to Relax, test bed 1: SOR's ω chosen online on a sequence of shifted Laplacians.

Instances ``t = 1..T`` (T = 5000): ``A_t = A + c_t I`` with ``A`` the unscaled 2D 5-point
Laplacian on a 10×10 interior grid (n = 100, 4 on the diagonal, natural order) and

- low variance:  ``c_t = −0.15 + 0.6·Beta(2, 6)``,
- high variance: ``c_t = −0.15 + 0.6·Beta(½, 3/2)`` (the same affine map, as in the paper's
  code; most of its mass lies near c = −0.15, where ``A_t`` is nearly singular:
  λ_min(A) = 4 − 4cos(π/11) ≈ 0.162),

``b_t`` a standard Gaussian in R¹⁰⁰ conditioned on ``‖b_t‖ ≤ √n`` (rejection sampling, the
paper's "truncated Gaussian"), and SOR (forward, natural order, x0 = 0) to
``‖b − A x‖ ≤ 1e-8·‖b‖``, capped at 10,000 sweeps as ``pdesuite.solvers.solve``. The cost of
an instance is its number of sweeps. Arms: the 20 values of ``omega_grid()`` (1, 1.05, …, 1.95).

Methods compared (cumulative sweeps over the T instances, mean ± std over the trials):

- ``TsallisINF`` (no context), ``ContextualTsallisINF`` (6 bins of c_t) and ``ChebCB``
  (degree 6 in c_t), all with the library defaults, context range [−0.15, 0.45] (the support
  of c_t), seeded by the trial number;
- fixed ω = 1 (Gauss–Seidel) and ω = 1.5; the best fixed ω of the grid in hindsight (per
  trial); the instance-optimal ω (per instance the cheapest of the 20 arms); and Young's ω*
  per instance, ``1 + (β/(1 + √(1 − β²)))²`` with ``β = 4cos(π/11)/(4 + c_t)`` (exact for this
  matrix; the paper's "instance-optimal" curve), as a 21st column.

How it is computed — a cost table per trial, then replay. A tuner sees only the cost of the
arm it chose, so the ``[T, 21]`` table of sweeps of every arm on every instance, computed
once per trial, lets every tuner and baseline be replayed against it: feeding a tuner
``table[t, chosen]`` is exactly what ``solve(A_t, b_t, method="sor", omega=tuner, context=c_t)``
feeds it, so the replay is the live run, draw for draw. The script checks both halves on real
library solves (an ``AssertionError`` stops it otherwise): the table against
``solve(method="sor")`` for every arm on the first instances of a trial, and each tuner's
replay against a live run with ``omega=tuner`` over the first steps (same ω chosen and same
cost at every step).

The table is computed by a batched SOR in NumPy (:func:`sor_sweep_counts`): the same
arithmetic as the library's sweep, one vectorised update per anti-diagonal of the grid (the
natural order's independent sets), over a pool of (instance, ω) pairs at once, with the
stopping test of the library on the true residual after every sweep; a pair that stops hands
its slot to the next pair. About 15 ns per grid point and sweep, against ~20 µs per sweep for
a library solve.

    python benchmarks/bench_relax_shifted.py [--quick] [--trials 10] [--steps 5000]
                                             [--workers 1] [--readme]

Writes benchmarks/results/relax_shifted.json, relax_shifted_low.png, relax_shifted_high.png
(``relax_shifted_quick*`` with ``--quick``),
and with ``--readme`` the table between the ``bench-relax-shifted`` markers of
benchmarks/README.md.
``--quick`` (300 instances, 2 trials, shorter checks) is a smoke run of well under a minute.
"""

from __future__ import annotations


# Many small element-wise products: BLAS threads would only spin on a shared two-core machine.

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from _common import (
    poisson_2d,
    RESULTS,
    load_average,
    markdown_table,
    update_readme_section,
    write_results,
)

import numpy as np
import scipy.sparse as sp

from _relax_common import (arm_lookup, matplotlib_pyplot, mean_std_curves,
                           plot_band, replay)
from pdesuite.solvers import solve
from pdesuite.solvers.relaxation import young_omega
from pdesuite.solvers.tuning import ChebCB, ContextualTsallisINF, TsallisINF, Tuner, omega_grid

GRID_SIDE = 10  # interior points per side: n = 100
RTOL = 1e-8
MAXITER = 10_000  # the library's default cap, so that a capped table entry equals a capped solve
SHIFT_LOW, SHIFT_WIDTH = -0.15, 0.6
CONTEXT_RANGE = (SHIFT_LOW, SHIFT_LOW + SHIFT_WIDTH)
DISTRIBUTIONS = {"low": (2.0, 6.0), "high": (0.5, 1.5)}  # Beta(a, b) of (c − low)/width
TUNERS = ("TsallisINF", "ContextualTsallisINF", "ChebCB")
BASELINES = ("omega=1", "omega=1.5", "best fixed omega", "instance-optimal omega", "Young omega*")


# --------------------------------------------------------------------------------------------
# instances


def truncated_gaussian(rng: np.random.Generator, n: int) -> np.ndarray:
    """A standard Gaussian ``[n]`` vector conditioned on ``‖b‖ ≤ √n`` (rejection sampling)."""
    while True:
        b = rng.standard_normal(n)
        if b @ b <= n:
            return b


def draw_instances(
    distribution: str, trial: int, steps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(shifts [steps], rhs [steps, n])`` of one trial, from its own seeded stream."""
    a, b = DISTRIBUTIONS[distribution]
    sequence = np.random.SeedSequence([seed, list(DISTRIBUTIONS).index(distribution), trial])
    shift_rng, rhs_rng = (np.random.default_rng(s) for s in sequence.spawn(2))
    shifts = SHIFT_LOW + SHIFT_WIDTH * shift_rng.beta(a, b, size=steps)
    n = GRID_SIDE * GRID_SIDE
    rhs = np.stack([truncated_gaussian(rhs_rng, n) for _ in range(steps)])
    return shifts, rhs


def young_omega_shifted(shifts: np.ndarray, m: int = GRID_SIDE) -> np.ndarray:
    """Young's ω* of ``A + cI`` in closed form: the Jacobi matrix ``(4I − A)/(4 + c)`` has
    spectral radius ``β = 4cos(π/(m+1))/(4 + c)``."""
    beta = 4.0 * math.cos(math.pi / (m + 1)) / (4.0 + shifts)
    return 1.0 + (beta / (1.0 + np.sqrt(1.0 - beta * beta))) ** 2


def predicted_sweeps(shifts: np.ndarray, omegas: np.ndarray, m: int = GRID_SIDE) -> np.ndarray:
    """Asymptotic sweep counts ``log(rtol)/log ρ(SOR)`` from Young's theory; used only to order
    the work (expensive pairs first, so that the last sweeps of the batch stay full)."""
    beta = 4.0 * math.cos(math.pi / (m + 1)) / (4.0 + shifts)
    optimal = young_omega_shifted(shifts, m)
    discriminant = np.maximum((omegas * beta) ** 2 / 4.0 - (omegas - 1.0), 0.0)
    rho = np.where(
        omegas >= optimal, omegas - 1.0, (omegas * beta / 2.0 + np.sqrt(discriminant)) ** 2
    )
    rho = np.clip(rho, 1e-3, 1.0 - 1e-12)
    return math.log(RTOL) / np.log(rho)


# --------------------------------------------------------------------------------------------
# the cost table: batched SOR


def sor_sweep_counts(shifts: np.ndarray, rhs: np.ndarray, omegas: np.ndarray, m: int = GRID_SIDE,
                     rtol: float = RTOL, maxiter: int = MAXITER, capacity: int = 1024,
                     order: np.ndarray | None = None) -> np.ndarray:
    """Sweeps that SOR from x0 = 0 needs on ``(A + c I) x = b`` for a batch of (c, b, ω).

    ``A`` is the unscaled 5-point Laplacian on an m×m grid in natural order. A sweep updates,
    in the library's order, ``x_p ← (1 − ω) x_p + ω/(4 + c)·(b_p + Σ neighbours)`` (the new
    values of the left and lower neighbours, the old ones of the right and upper): the points
    of one anti-diagonal ``i + j = w`` depend only on diagonal ``w − 1`` of this sweep and
    ``w + 1`` of the last, so each diagonal is one vectorised update — in a padded grid its
    points are ``m + 1`` apart in memory, a strided view. After each sweep the true residual
    ``b − A x_new = N(x_old − x_new)``, ``N = U + (1 − 1/ω)D`` (the identity the library's
    monitor uses), is tested against ``rtol·‖b‖``; the count is the first sweep that passes,
    or ``maxiter``. Agreement with ``solve(method="sor")`` is checked by the caller.

    Vectors are laid out ``[grid point, pair]`` so that every strided row is a contiguous run
    over the pairs. ``capacity`` pairs are in flight; a pair that stops hands its slot to the
    next one (in ``order``), so the batch stays full until the queue is empty.

    Args:
        shifts: ``[P]`` diagonal shifts c.
        rhs: ``[P, m²]`` right-hand sides.
        omegas: ``[P]`` relaxation factors in (0, 2).
        m: grid side. Default 10.
        rtol, maxiter: the stopping test of ``solve``. Defaults 1e-8 and 10,000.
        capacity: pairs in flight. Default 1024 (the working set then stays in L2/L3).
        order: ``[P]`` permutation giving the order in which pairs enter the batch. Default
            ``arange(P)``.

    Returns:
        ``[P]`` int64 sweep counts.
    """
    total = shifts.size
    if rhs.shape != (total, m * m) or omegas.shape != (total,):
        raise ValueError(f"rhs, omegas: expected shapes ({total}, {m * m}) and ({total},), "
                         f"got {rhs.shape} and {omegas.shape}")
    if not np.all((omegas > 0) & (omegas < 2)):
        raise ValueError("omegas: relaxation factors must lie in (0, 2)")
    order = np.arange(total) if order is None else np.asarray(order)
    padded = m + 2
    stride = padded - 1  # the distance in memory between neighbours on one anti-diagonal
    diagonals = []
    for w in range(2 * m - 1):
        first, last = max(0, w - m + 1), min(w, m - 1)  # grid rows i on diagonal i + j = w
        start = (first + 1) * padded + (w - first + 1)
        stop = (last + 1) * padded + (w - last + 1) + 1
        diagonals.append((start, stop, last - first + 1))

    diag = 4.0 + shifts
    rhs_norm2 = np.einsum("ij,ij->i", rhs, rhs)
    counts = np.full(total, -1, dtype=np.int64)

    def allocate(size: int) -> dict[str, np.ndarray]:
        return {
            "x": np.zeros((padded * padded, size)),
            "scaled_b": np.zeros((padded * padded, size)),  # ω/(4 + c)·b, zero on the border
            "delta": np.zeros((padded * padded, size)),  # x_old − x_new, zero on the border
            "scale": np.zeros((1, size)),  # ω/(4 + c)
            "omega": np.zeros((1, size)),
            "kappa_d": np.zeros((1, 1, size)),  # (1 − 1/ω)(4 + c), N's diagonal
            "target": np.full(size, -1.0),  # (rtol‖b‖)²; −1 for an empty slot
            "started": np.zeros(size, dtype=np.int64),
            "owner": np.full(size, -1, dtype=np.int64),
        }

    state = allocate(min(capacity, total))
    queued = 0
    sweep = 0

    def admit(slots: np.ndarray) -> None:
        nonlocal queued
        take = min(slots.size, total - queued)
        filled, emptied = slots[:take], slots[take:]
        pairs = order[queued:queued + take]
        queued += take
        scale = omegas[pairs] / diag[pairs]
        state["x"][:, filled] = 0.0
        grid_b = state["scaled_b"].reshape(padded, padded, -1)
        grid_b[1:-1, 1:-1, filled] = (rhs[pairs] * scale[:, None]).T.reshape(m, m, take)
        state["scale"][0, filled] = scale
        state["omega"][0, filled] = omegas[pairs]
        state["kappa_d"][0, 0, filled] = (1.0 - 1.0 / omegas[pairs]) * diag[pairs]
        state["target"][filled] = rtol * rtol * rhs_norm2[pairs]
        state["started"][filled] = sweep
        state["owner"][filled] = pairs
        # An empty slot keeps computing zeros: cheaper than reshaping the arrays every sweep.
        state["owner"][emptied] = -1
        state["target"][emptied] = -1.0
        state["x"][:, emptied] = 0.0
        state["scaled_b"][:, emptied] = 0.0

    admit(np.arange(state["owner"].size))
    while True:
        x, scaled_b, delta = state["x"], state["scaled_b"], state["delta"]
        scale, omega, kappa_d = state["scale"], state["omega"], state["kappa_d"]
        size = x.shape[1]
        buffer = np.empty((m, size))
        residual = np.empty((m, m, size))
        squared = np.empty(size)
        grid_delta = delta.reshape(padded, padded, size)
        while True:
            for start, stop, count in diagonals:
                neighbours = buffer[:count]
                np.add(
                    x[start - 1 : stop - 1 : stride],
                    x[start - padded : stop - padded : stride],
                    out=neighbours,
                )
                neighbours += x[start + 1:stop + 1:stride]
                neighbours += x[start + padded:stop + padded:stride]
                neighbours *= scale
                neighbours += scaled_b[start:stop:stride]  # now the Gauss–Seidel value
                change = delta[start:stop:stride]
                points = x[start:stop:stride]
                np.multiply(points, omega, out=change)
                change -= neighbours  # x_old − x_new = ω x_old − GS value
                points -= change
            sweep += 1
            np.multiply(kappa_d, grid_delta[1:-1, 1:-1], out=residual)
            residual -= grid_delta[1:-1, 2:]
            residual -= grid_delta[2:, 1:-1]
            flat = residual.reshape(m * m, size)
            np.einsum("ij,ij->j", flat, flat, out=squared)
            owner = state["owner"]
            done = (squared <= state["target"]) | (sweep - state["started"] >= maxiter)
            done &= owner >= 0
            if done.any():
                slots = np.flatnonzero(done)
                counts[owner[slots]] = sweep - state["started"][slots]
                admit(slots)
                active = np.flatnonzero(state["owner"] >= 0)
                if active.size == 0:
                    return counts
                if queued == total and active.size <= size // 4 and size > 64:
                    # The queue is empty and the batch mostly idle: shrink it to the pairs left.
                    state = {
                        key: np.ascontiguousarray(value[..., active])
                        for key, value in state.items()
                    }
                    break


def cost_table(shifts: np.ndarray, rhs: np.ndarray, arms: np.ndarray) -> np.ndarray:
    """``[T, K + 1]`` sweeps of each of the K arms and of Young's ω* (last column) per instance."""
    steps, n_arms = shifts.size, arms.size
    omegas = np.concatenate(
        [np.tile(arms, (steps, 1)), young_omega_shifted(shifts)[:, None]], axis=1
    )
    pair_shifts = np.repeat(shifts, n_arms + 1)
    pair_omegas = omegas.reshape(-1)
    pair_rhs = np.repeat(rhs, n_arms + 1, axis=0)
    order = np.argsort(-predicted_sweeps(pair_shifts, pair_omegas), kind="stable")
    counts = sor_sweep_counts(pair_shifts, pair_rhs, pair_omegas, order=order)
    return counts.reshape(steps, n_arms + 1)


# --------------------------------------------------------------------------------------------
# tuners, checks, one trial


def make_tuner(name: str, arms: np.ndarray, seed: int) -> Tuner:
    if name == "TsallisINF":
        return TsallisINF(arms, seed=seed)
    if name == "ContextualTsallisINF":
        return ContextualTsallisINF(arms, context_range=CONTEXT_RANGE, seed=seed)
    if name == "ChebCB":
        return ChebCB(arms, context_range=CONTEXT_RANGE, seed=seed)
    raise ValueError(f"name: unknown tuner {name!r}")


def check_table(shifts: np.ndarray, rhs: np.ndarray, table: np.ndarray, arms: np.ndarray,
                instances: int) -> dict[str, Any]:
    """The table against ``solve(method="sor")`` on the first ``instances`` instances, every
    arm and Young's ω* (whose value the library computes itself, from ``young_omega``)."""
    A = poisson_2d(GRID_SIDE)
    eye = sp.eye_array(A.shape[0])
    mismatches = []
    young_gap = 0.0
    for t in range(instances):
        A_t = sp.csr_array(A + shifts[t] * eye)
        young = young_omega(A_t)
        young_gap = max(young_gap, abs(young - young_omega_shifted(shifts[t:t + 1])[0]))
        for k, omega in enumerate([*arms, young]):
            sweeps = solve(
                A_t, rhs[t], method="sor", omega=float(omega), rtol=RTOL, maxiter=MAXITER
            ).iterations
            if sweeps != table[t, k]:
                mismatches.append((t, k, int(table[t, k]), int(sweeps)))
    assert not mismatches, (
        f"cost table differs from solve(method='sor') at (t, arm, table, solve): {mismatches[:5]}"
    )
    assert young_gap < 1e-9, f"closed-form Young omega differs from young_omega() by {young_gap}"
    return {"instances": instances, "solves": instances * (arms.size + 1), "mismatches": 0,
            "young_omega_max_difference": young_gap}


def check_replay(shifts: np.ndarray, rhs: np.ndarray, table: np.ndarray, arms: np.ndarray,
                 seed: int, steps: int) -> dict[str, Any]:
    """Each tuner replayed on the table against the same tuner run live through
    ``solve(..., omega=tuner, context=c_t)`` for ``steps`` instances: same ω and cost each step."""
    A = poisson_2d(GRID_SIDE)
    eye = sp.eye_array(A.shape[0])
    lookup = arm_lookup(arms)
    for name in TUNERS:
        live = make_tuner(name, arms, seed)
        live_arms, live_costs = [], []
        for t in range(steps):
            result = solve(sp.csr_array(A + shifts[t] * eye), rhs[t], method="sor", rtol=RTOL,
                           maxiter=MAXITER, omega=live, context=float(shifts[t]))
            live_arms.append(lookup(result.info["tuned"]["omega"]))
            live_costs.append(result.iterations)
        chosen, costs = replay(make_tuner(name, arms, seed), table[:steps], arms, shifts[:steps])
        assert np.array_equal(chosen, live_arms) and np.array_equal(costs, live_costs), (
            f"{name}: replay on the cost table differs from live solves "
            "(first difference at step "
            f"{int(np.argmax((chosen != live_arms) | (costs != live_costs)))})"
        )
    return {"steps": steps, "tuners": list(TUNERS), "identical": True}


def run_trial(distribution: str, trial: int, steps: int, seed: int, check_instances: int,
              check_steps: int) -> dict[str, Any]:
    """Draw the instances, build the cost table, replay every method; checks on trial 0."""
    arms = omega_grid()
    shifts, rhs = draw_instances(distribution, trial, steps, seed)
    started = time.perf_counter()
    table = cost_table(shifts, rhs, arms)
    table_seconds = time.perf_counter() - started
    grid_table = table[:, :arms.size]
    costs: dict[str, np.ndarray] = {}
    chosen: dict[str, np.ndarray] = {}
    for name in TUNERS:
        chosen[name], costs[name] = replay(make_tuner(name, arms, seed=trial), table, arms, shifts)
    lookup = arm_lookup(arms)
    costs["omega=1"] = grid_table[:, lookup(1.0)].astype(float)
    costs["omega=1.5"] = grid_table[:, lookup(1.5)].astype(float)
    arm_totals = grid_table.sum(axis=0)
    best = int(np.argmin(arm_totals))
    costs["best fixed omega"] = grid_table[:, best].astype(float)
    costs["instance-optimal omega"] = grid_table.min(axis=1).astype(float)
    costs["Young omega*"] = table[:, -1].astype(float)
    checks = {}
    if trial == 0 and check_instances:
        checks["table_vs_solve"] = check_table(shifts, rhs, table, arms, check_instances)
    if trial == 0 and check_steps:
        checks["replay_vs_live"] = check_replay(shifts, rhs, table, arms, trial, check_steps)
    late = slice(steps - steps // 5, steps)
    return {
        "distribution": distribution,
        "trial": trial,
        "table_seconds": table_seconds,
        "pair_sweeps": int(table.sum()),
        "costs": costs,
        "arm_totals": arm_totals,
        "best_fixed_omega": round(float(arms[best]), 6),
        # how often each tuner played each arm over the last fifth of the run
        "late_arm_frequencies": {
            name: np.bincount(chosen[name][late], minlength=arms.size) / (steps - late.start)
            for name in TUNERS
        },
        "checks": checks,
    }


# --------------------------------------------------------------------------------------------
# report


METHODS = (*TUNERS, *BASELINES)
STYLES = {
    "TsallisINF": {"color": "C0"},
    "ContextualTsallisINF": {"color": "C1"},
    "ChebCB": {"color": "C2"},
    "omega=1": {"color": "C7", "linestyle": ":"},
    "omega=1.5": {"color": "C5", "linestyle": ":"},
    "best fixed omega": {"color": "k", "linestyle": "--"},
    "instance-optimal omega": {"color": "C3", "linestyle": "--"},
    "Young omega*": {"color": "C4", "linestyle": "-."},
}


def summarise(trials: list[dict[str, Any]]) -> dict[str, Any]:
    cumulative = {name: np.stack([np.cumsum(t["costs"][name]) for t in trials]) for name in METHODS}
    best_total = cumulative["best fixed omega"][:, -1]
    methods = {}
    for name in METHODS:
        totals = cumulative[name][:, -1]
        ratios = totals / best_total
        methods[name] = {
            "total_mean": float(totals.mean()),
            "total_std": float(totals.std()),
            "totals": totals.tolist(),
            "ratio_to_best_fixed_mean": float(ratios.mean()),
            "ratio_to_best_fixed_std": float(ratios.std()),
            "curve": mean_std_curves(cumulative[name]),
        }
    return {
        "methods": methods,
        "best_fixed_omega": [t["best_fixed_omega"] for t in trials],
        "arm_totals_mean": np.mean([t["arm_totals"] for t in trials], axis=0).tolist(),
        "late_arm_frequencies_mean": {
            name: np.mean([t["late_arm_frequencies"][name] for t in trials], axis=0)
            .round(4)
            .tolist()
            for name in TUNERS
        },
        "table_seconds": [round(t["table_seconds"], 2) for t in trials],
        "pair_sweeps": [t["pair_sweeps"] for t in trials],
        "_cumulative": cumulative,
    }


def plot(distribution: str, summary: dict[str, Any], steps: int, trials: int, stem: str) -> str:
    plt = matplotlib_pyplot()
    cumulative = summary["_cumulative"]
    t = np.arange(1, steps + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for name in METHODS:
        plot_band(left, t, cumulative[name], name, **STYLES[name])
        if name != "best fixed omega":
            plot_band(
                right, t, cumulative[name] / cumulative["best fixed omega"], name, **STYLES[name]
            )
    a, b = DISTRIBUTIONS[distribution]
    left.set(xlabel="instance t", ylabel="cumulative SOR sweeps",
             title=f"{distribution} variance: c = −0.15 + 0.6·Beta({a:g}, {b:g}), {trials} trials")
    right.axhline(1.0, color="k", linestyle="--", linewidth=1)
    right.set(xlabel="instance t", ylabel="cumulative sweeps / best fixed ω", ylim=(0.5, 2.0),
              title="relative to the best fixed ω in hindsight (mean ± std)")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    path = RESULTS / f"{stem}_{distribution}.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="300 instances, 2 trials (a smoke run)"
    )
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5000, help="instances per trial (T)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="processes for the trials")
    parser.add_argument("--readme", action="store_true", help="write the README table")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.steps = 2, 300
    stem = (
        "relax_shifted_quick" if args.quick else "relax_shifted"
    )  # a smoke run keeps the real results
    check_instances = 3 if args.quick else 10
    check_steps = 30 if args.quick else 100
    if args.trials < 1 or args.steps < max(check_instances, check_steps):
        parser.error(f"need --trials >= 1 and --steps >= {max(check_instances, check_steps)}")

    started = time.perf_counter()
    load_start = load_average()
    jobs = [(d, trial, args.steps, args.seed, check_instances, check_steps)
            for d in DISTRIBUTIONS for trial in range(args.trials)]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            outcomes = list(pool.map(run_trial, *zip(*jobs)))
    else:
        outcomes = []
        for job in jobs:
            outcomes.append(run_trial(*job))
            print(
                f"{job[0]} trial {job[1]}: table {outcomes[-1]['table_seconds']:.1f} s", flush=True
            )

    arms = omega_grid()
    payload: dict[str, Any] = {
        "benchmark": "Learning to Relax, shifted Laplacian (SOR)",
        "config": {
            "grid": f"{GRID_SIDE}x{GRID_SIDE} interior, unscaled 5-point",
            "n": GRID_SIDE**2,
            "steps": args.steps,
            "trials": args.trials,
            "seed": args.seed,
            "rtol": RTOL,
            "maxiter": MAXITER,
            "arms": arms.tolist(),
            "context_range": list(CONTEXT_RANGE),
            "distributions": {
                d: f"c = -0.15 + 0.6*Beta({a}, {b})" for d, (a, b) in DISTRIBUTIONS.items()
            },
            "rhs": "standard Gaussian conditioned on ||b|| <= sqrt(n)",
            "tuner_seeds": "trial number",
            "quick": args.quick,
        },
        "method": "cost table [T, 21] per trial by batched SOR, tuners replayed on it (see "
                  "docstring)",
        "load_average_start": load_start,
        "distributions": {},
    }
    rows = []
    summaries = {}
    for d in DISTRIBUTIONS:
        trials = [o for o in outcomes if o["distribution"] == d]
        summary = summarise(trials)
        summary["plot"] = plot(d, summary, args.steps, args.trials, stem)
        summary["checks"] = next(o["checks"] for o in trials if o["trial"] == 0)
        summaries[d] = summary
        payload["distributions"][d] = {k: v for k, v in summary.items() if not k.startswith("_")}
    for name in METHODS:
        row = [name]
        for d in DISTRIBUTIONS:
            m = summaries[d]["methods"][name]
            row += [f"{m['total_mean']:,.0f} ± {m['total_std']:,.0f}",
                    f"{m['ratio_to_best_fixed_mean']:.3f} ± {m['ratio_to_best_fixed_std']:.3f}"]
        rows.append(row)
    headers = ["method"] + [f"{d} variance: {col}" for d in DISTRIBUTIONS
                            for col in ("total sweeps at T", "ratio to best fixed ω")]
    table = markdown_table(headers, rows)
    best = {d: sorted(set(summaries[d]["best_fixed_omega"])) for d in DISTRIBUTIONS}
    note = (
        f"T = {args.steps} instances, {args.trials} trials (mean ± std); SOR to 1e-8 on A + cI, "
        f"10×10 grid; 20 arms ω ∈ {{1, 1.05, …, 1.95}}. Best fixed ω in hindsight: "
        + ", ".join(f"{d}: {'/'.join(f'{w:g}' for w in best[d])}" for d in DISTRIBUTIONS)
        + ". Instance-optimal: per instance the cheapest arm of the grid; Young ω*: per instance, "
        "not restricted to the grid."
    )
    payload["markdown"] = table + "\n\n" + note
    payload["runtime_s"] = round(time.perf_counter() - started, 1)
    payload["load_average_end"] = load_average()
    path = write_results(stem, payload)
    print(table + "\n\n" + note)
    print(f"\nwrote {path} and the plots in {RESULTS} ({payload['runtime_s']} s)")
    if args.readme:
        update_readme_section(
            "bench-relax-shifted",
            table
            + "\n\n"
            + note
            + "\n\n"
            + " ".join(
                f"![{d} variance](benchmarks/results/relax_shifted_{d}.png)" for d in DISTRIBUTIONS
            ),
        )


if __name__ == "__main__":
    main()
