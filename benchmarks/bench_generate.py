"""Dataset generation: ω tuned inside ``generate``, and batched time-dependent families.

Part 1, tuning inside generation. ``generate("darcy", n, resolution=s, chunk_size=n, seed=0,
solver={..., "rtol": 1e-8})``: one block, so one solver (and one tuner) sees all ``n`` samples
in the default order (greedy SKR sorting). Four solver configurations:

- SSOR-PCG at ω = 1: ``{"method": "cg", "M": "ssor"}``, every sample from a zero guess;
- the same with ``"tune": "omega"``: Tsallis-INF over the default grid (20 values in
  [1, 1.95]), fresh in the block, seeded from (seed, block), learning from the iteration counts;
- recycling CG at ω = 1: ``{"method": "rcg", "M": "ssor"}`` (the recycle space carried from
  one sample to the next along the sorted order);
- recycling CG with ``"tune": "omega"``.

Everything is read back from the HDF5 file the run wrote: mean ``solver/iterations`` per
sample, total ``solver/time`` (the solve calls, preconditioner set-up and tuner calls
included; assembly and sorting left out), and, for the tuned runs, the mean ``solver/omega``
over the last quarter of the block's solve order (``solve_order``), i.e. where the tuner has
settled. The wall time of the whole ``generate`` call is recorded too.

Part 2, time-dependent families stepped in batches. ``family.simulate_batch(params)`` on the
same ``max(batch sizes)`` samples (drawn from ``default_rng([0, i])``), cut into batches of
``B``; CPU time (``time.process_time``) and wall time (``time.perf_counter``) per sample per
unit of simulated time, best of ``--repeats`` (3) taken separately for each clock. Within a
repeat all batch sizes run one after the other, so a drifting load falls on all of them alike.

- Navier–Stokes (``get_family("navier-stokes", resolution=64, dt=..., final_time=...)``, ν =
  1e-3, one frame at the end): dt = 1e-4 to t = 0.05 and dt = 1e-3 to t = 0.5 (500 steps each);
- Burgers (ν = 0.01, the adaptive step ``cfl · h / max|u0|`` with cfl 0.4, one frame at the
  end) at 256 points to t = 0.1 and 1024 points to t = 0.05; the mean number of steps per
  sample is recorded, since the step depends on the sample.

The machine is shared: ``os.getloadavg()`` is recorded before and after every part and every
configuration. One BLAS/OpenMP thread (set before NumPy is imported).

    python benchmarks/bench_generate.py [--quick] [--repeats 3] [--readme]

Writes benchmarks/results/generate.json (``generate_quick.json`` with ``--quick``) and prints
a Markdown summary; ``--readme`` writes it between the ``bench-generate`` markers of
benchmarks/README.md (the markers must exist). ``--quick``: Darcy 12², 24 samples;
Navier–Stokes 16², Burgers 64 and 128 points, batches 1 and 4, a few steps; well under a minute.
"""

from __future__ import annotations

import os
import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from _common import load_average, machine, markdown_table, update_readme_section, write_results

import h5py
import numpy as np
import scipy

from pdesuite.datasets import generate, get_family
from pdesuite.solvers.tuning import omega_grid

README_MARKER = "bench-generate"
RTOL = 1e-8
SEED = 0

#: Part 1 configurations: (label, solver dict without rtol).
TUNING_CASES = (
    ("SSOR-PCG, omega = 1", {"method": "cg", "M": "ssor"}),
    ("SSOR-PCG, tuned omega", {"method": "cg", "M": "ssor", "tune": "omega"}),
    ("recycling CG + SSOR, omega = 1", {"method": "rcg", "M": "ssor"}),
    ("recycling CG + SSOR, tuned omega", {"method": "rcg", "M": "ssor", "tune": "omega"}),
)

FULL = {
    "darcy": {"resolution": 34, "n": 128},
    "navier_stokes": {"resolution": 64, "nu": 1e-3, "cases": [(1e-4, 0.05), (1e-3, 0.5)]},
    "burgers": {"nu": 0.01, "cases": [(256, 0.1), (1024, 0.05)]},
    "batch_sizes": [1, 8, 32],
}
QUICK = {
    "darcy": {"resolution": 12, "n": 24},
    "navier_stokes": {"resolution": 16, "nu": 1e-3, "cases": [(1e-3, 0.01)]},
    "burgers": {"nu": 0.01, "cases": [(64, 0.02), (128, 0.01)]},
    "batch_sizes": [1, 4],
}



# --------------------------------------------------------------------------------------------
# part 1: tuning inside generate


def tuning_run(
    label: str, solver: dict[str, Any], resolution: int, n: int, workdir: Path
) -> dict[str, Any]:
    """One ``generate`` call of ``n`` Darcy samples in one block; its statistics from the file."""
    out = workdir / f"darcy_{len(list(workdir.iterdir()))}.h5"
    load_before = load_average()
    started = time.perf_counter()
    generate(
        "darcy",
        n,
        out=out,
        resolution=resolution,
        solver={**solver, "rtol": RTOL},
        chunk_size=n,
        seed=SEED,
        progress=False,
        overwrite=True,
    )
    wall = time.perf_counter() - started
    with h5py.File(out, "r") as f:
        iterations = f["solver/iterations"][()]
        times = f["solver/time"][()]
        converged = f["solver/converged"][()]
        order = f["solve_order"][()]
        omegas = f["solver/omega"][()] if "omega" in f["solver"] else None
        sort_time = float(f.attrs["sort_time"])
    out.unlink()
    result: dict[str, Any] = {
        "label": label, "solver": {**solver, "rtol": RTOL},
        "iterations_mean": float(iterations.mean()), "iterations_total": int(iterations.sum()),
        "iterations_first_quarter_mean": float(iterations[order[: n // 4]].mean()),
        "iterations_last_quarter_mean": float(iterations[order[n - n // 4:]].mean()),
        "solve_time_s": float(times.sum()), "generate_wall_s": wall, "sort_time_s": sort_time,
        "all_converged": bool(converged.all()),
        "load_average_before": load_before, "load_average_after": load_average(),
    }
    if omegas is not None:
        last_quarter = omegas[order[n - n // 4:]]
        result["omega_last_quarter_mean"] = float(last_quarter.mean())
        values, counts = np.unique(np.round(last_quarter, 4), return_counts=True)
        result["omega_last_quarter_mode"] = float(values[np.argmax(counts)])
        result["omega_mean"] = float(omegas.mean())
    return result


def tuning_part(resolution: int, n: int) -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_generate_") as tmp:
        for label, solver in TUNING_CASES:
            runs.append(tuning_run(label, solver, resolution, n, Path(tmp)))
            r = runs[-1]
            print(
                f"  {label}: {r['iterations_mean']:.1f} it/sample, solve {r['solve_time_s']:.2f} s "
                f"(generate {r['generate_wall_s']:.1f} s)",
                flush=True,
            )
    return {
        "family": "darcy",
        "resolution": resolution,
        "n": n,
        "chunk_size": n,
        "rtol": RTOL,
        "seed": SEED,
        "order": "sorted (greedy)",
        "omega_grid": omega_grid().tolist(),
        "runs": runs,
    }


# --------------------------------------------------------------------------------------------
# part 2: batched time stepping


def time_batches(family: Any, params: Sequence[dict], batch_sizes: Sequence[int], final_time: float,
                 repeats: int) -> list[dict[str, Any]]:
    """Per batch size: CPU and wall seconds per sample per simulated time unit, best of ``repeats``.

    All of ``params`` are simulated for every batch size, in consecutive batches of ``B``.
    """
    cpu: dict[int, list[float]] = {b: [] for b in batch_sizes}
    wall: dict[int, list[float]] = {b: [] for b in batch_sizes}
    loads = {b: [] for b in batch_sizes}
    scale = 1.0 / (len(params) * final_time)
    for _ in range(repeats):
        for b in batch_sizes:
            loads[b].append(load_average())
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            for first in range(0, len(params), b):
                family.simulate_batch(params[first:first + b])
            cpu[b].append((time.process_time() - cpu_start) * scale)
            wall[b].append((time.perf_counter() - wall_start) * scale)
    return [
        {
            "batch": b,
            "cpu_s_per_time_unit_per_sample": min(cpu[b]),
            "wall_s_per_time_unit_per_sample": min(wall[b]),
            "cpu_runs": cpu[b],
            "wall_runs": wall[b],
            "load_averages": loads[b],
        }
        for b in batch_sizes
    ]


def navier_stokes_part(
    config: dict[str, Any], batch_sizes: Sequence[int], repeats: int
) -> list[dict[str, Any]]:
    results = []
    samples = max(batch_sizes)
    for dt, final_time in config["cases"]:
        family = get_family(
            "navier-stokes",
            resolution=config["resolution"],
            dt=dt,
            final_time=final_time,
            record_interval=final_time,
            nu=config["nu"],
        )
        params = [family.sample(np.random.default_rng([SEED, i])) for i in range(samples)]
        load_before = load_average()
        rows = time_batches(family, params, batch_sizes, final_time, repeats)
        results.append(
            {
                "family": "navier-stokes",
                "resolution": config["resolution"],
                "nu": config["nu"],
                "dt": dt,
                "final_time": final_time,
                "steps_per_sample": int(round(final_time / dt)),
                "samples": samples,
                "batches": rows,
                "load_average_before": load_before,
                "load_average_after": load_average(),
            }
        )
        print(
            f"  navier-stokes {config['resolution']}², dt={dt:g}: "
            + ", ".join(
                f"B={r['batch']} {r['cpu_s_per_time_unit_per_sample']:.3g} s" for r in rows
            ),
            flush=True,
        )
    return results


def burgers_part(
    config: dict[str, Any], batch_sizes: Sequence[int], repeats: int
) -> list[dict[str, Any]]:
    results = []
    samples = max(batch_sizes)
    for resolution, final_time in config["cases"]:
        family = get_family(
            "burgers",
            resolution=resolution,
            final_time=final_time,
            record_interval=final_time,
            nu=config["nu"],
        )
        params = [family.sample(np.random.default_rng([SEED, i])) for i in range(samples)]
        steps = [family.time_step(p["initial_condition"])[1] for p in params]
        load_before = load_average()
        rows = time_batches(family, params, batch_sizes, final_time, repeats)
        results.append(
            {
                "family": "burgers",
                "resolution": resolution,
                "nu": config["nu"],
                "dt": "adaptive (cfl 0.4)",
                "final_time": final_time,
                "steps_per_sample": float(np.mean(steps)),
                "samples": samples,
                "batches": rows,
                "load_average_before": load_before,
                "load_average_after": load_average(),
            }
        )
        print(
            f"  burgers {resolution}: "
            + ", ".join(
                f"B={r['batch']} {r['cpu_s_per_time_unit_per_sample']:.3g} s" for r in rows
            ),
            flush=True,
        )
    return results


# --------------------------------------------------------------------------------------------
# report


def markdown(payload: dict[str, Any]) -> str:
    tuning = payload["tuning"]
    rows = []
    for r in tuning["runs"]:
        omega = f"{r['omega_last_quarter_mean']:.2f}" if "omega_last_quarter_mean" in r else "1"
        rows.append(
            [
                r["label"],
                f"{r['iterations_mean']:.1f}",
                f"{r['iterations_last_quarter_mean']:.1f}",
                f"{r['solve_time_s']:.2f}",
                omega,
                "yes" if r["all_converged"] else "NO",
            ]
        )
    parts = [
        f"Tuning inside `generate`: Darcy at {tuning['resolution']}², {tuning['n']} samples in one "
        f"block (`chunk_size={tuning['n']}`), sorted order, rtol {tuning['rtol']:g}, seed "
        f"{tuning['seed']}; tuned = Tsallis-INF over 20 values of ω in [1, 1.95].",
        "",
        markdown_table(
            [
                "solver", "iterations / sample", "last quarter", "solve time [s]",
                "mean ω, last quarter", "all converged",
            ],
            rows,
        ),
        "",
        "Time-dependent families, `simulate_batch` on the same samples in batches of B: CPU "
        f"seconds per sample per unit of simulated time (best of {payload['config']['repeats']}; "
        "wall time in brackets).",
        "",
    ]
    batch_sizes = payload["config"]["batch_sizes"]
    time_rows = []
    for case in payload["navier_stokes"] + payload["burgers"]:
        grid = (
            f"{case['resolution']}²"
            if case["family"] == "navier-stokes"
            else f"{case['resolution']}"
        )
        dt = (
            f"{case['dt']:g}"
            if isinstance(case["dt"], float)
            else f"adaptive ({case['steps_per_sample']:.0f} steps)"
        )
        cells = [
            f"{b['cpu_s_per_time_unit_per_sample']:.3g} "
            f"({b['wall_s_per_time_unit_per_sample']:.3g})"
            for b in case["batches"]
        ]
        time_rows.append(
            [case["family"], grid, f"ν={case['nu']:g}, dt={dt}, T={case['final_time']:g}", *cells]
        )
    parts.append(
        markdown_table(["family", "grid", "run", *[f"B = {b}" for b in batch_sizes]], time_rows)
    )
    loads = [payload["load_average_start"], payload["load_average_end"]]
    parts += ["", f"Machine: {payload['machine']['cores']} cores, one BLAS thread; load average "
                  f"{loads[0]} at the start, {loads[1]} at the end (shared machine). "
                  f"`python benchmarks/bench_generate.py --readme`, {payload['runtime_s']:.0f} s."]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, a smoke run under a minute"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed repeats per batch size (best kept)"
    )
    parser.add_argument("--readme", action="store_true",
                        help="write the summary into benchmarks/README.md")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats: must be >= 1, got {args.repeats}")
    if args.quick and args.readme:
        parser.error("--readme: not with --quick (the README quotes the full run)")
    config = QUICK if args.quick else FULL
    started = time.perf_counter()
    load_start = load_average()
    print(f"tuning: darcy {config['darcy']['resolution']}², n={config['darcy']['n']}", flush=True)
    tuning = tuning_part(config["darcy"]["resolution"], config["darcy"]["n"])
    print("batched time stepping", flush=True)
    navier_stokes = navier_stokes_part(config["navier_stokes"], config["batch_sizes"], args.repeats)
    burgers = burgers_part(config["burgers"], config["batch_sizes"], args.repeats)
    payload: dict[str, Any] = {
        "benchmark": "dataset generation: omega tuned inside generate; batched time-dependent "
                     "families",
        "config": {
            "quick": args.quick,
            "repeats": args.repeats,
            "batch_sizes": config["batch_sizes"],
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "tuning": tuning,
        "navier_stokes": navier_stokes,
        "burgers": burgers,
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    payload["machine"] = machine()  # for the summary line; write_results stores it itself
    text = markdown(payload)
    payload["markdown"] = text
    path = write_results("generate_quick" if args.quick else "generate",
                         {k: v for k, v in payload.items() if k != "machine"})
    print(text)
    print(f"wrote {path} ({payload['runtime_s']} s)")
    if args.readme:
        try:
            update_readme_section(README_MARKER, text)
        except RuntimeError as error:
            sys.exit(f"--readme: {error}; add `<!-- {README_MARKER}:start -->` and "
                     f"`<!-- {README_MARKER}:end -->` to benchmarks/README.md where the section "
                     "belongs")
        print(f"benchmarks/README.md: section {README_MARKER!r} updated")


if __name__ == "__main__":
    main()
