"""Where iterative solvers overtake the direct one: Darcy in 2-D and 3-D, solve time per sample.

    python benchmarks/bench_crossover.py [--samples 6] [--quick]

For each family and size, the same samples (drawn with the same seeds) are solved, interleaved
sample by sample, by: the direct path with the symbolic analysis reused (``DirectSolver``,
CHOLMOD when scikit-sparse is installed), IC(0)-preconditioned CG warm-started from the previous
solution, and recycling CG (``RecyclingSolver("rcg", M="ic")``), all to rtol 1e-8 on one BLAS
thread; plus one SciPy ``spsolve`` per sample for reference. Assembly is not timed. Writes
benchmarks/results/crossover.json and prints the table.
"""

from __future__ import annotations

import argparse
import time

from _common import load_average, markdown_table, write_results

import numpy as np
import scipy.sparse.linalg as spla

from pdesuite.datasets import get_family
from pdesuite.solvers import DirectSolver, RecyclingSolver, solve

RTOL = 1e-8
SEED = 0
#: (family, resolution) pairs: unknowns (s − 2)^d.
CASES = (("darcy", 130), ("darcy", 258), ("darcy", 514),
         ("darcy-3d", 18), ("darcy-3d", 26), ("darcy-3d", 34), ("darcy-3d", 42))
QUICK = (("darcy", 34), ("darcy-3d", 10))


def run_case(name: str, resolution: int, samples: int) -> dict:
    family = get_family(name, resolution=resolution)
    systems = [family.assemble(family.sample(np.random.default_rng([SEED, i])))
               for i in range(samples)]
    direct, recycler = DirectSolver(), RecyclingSolver("rcg", M="ic", rtol=RTOL)
    seconds = {"spsolve": 0.0, "direct": 0.0, "ic-pcg warm": 0.0, "rcg + ic": 0.0}
    iterations = {"ic-pcg warm": 0, "rcg + ic": 0}
    previous = None
    for system in systems:
        start = time.process_time()
        reference = spla.spsolve(system.A.tocsc(), system.b)
        seconds["spsolve"] += time.process_time() - start

        start = time.process_time()
        result = direct.solve(system.A, system.b)
        seconds["direct"] += time.process_time() - start
        assert result.converged, result

        start = time.process_time()
        result = solve(system.A, system.b, method="cg", M="ic", x0=previous, rtol=RTOL)
        seconds["ic-pcg warm"] += time.process_time() - start
        iterations["ic-pcg warm"] += result.iterations
        previous = result.x

        start = time.process_time()
        result = recycler.solve(system.A, system.b)
        seconds["rcg + ic"] += time.process_time() - start
        iterations["rcg + ic"] += result.iterations
        error = np.linalg.norm(result.x - reference) / np.linalg.norm(reference)
        assert error < 1e-4, error
    n = systems[0].A.shape[0]
    return {"family": name, "resolution": resolution, "unknowns": n, "samples": samples,
            "ms_per_sample": {k: 1e3 * v / samples for k, v in seconds.items()},
            "mean_iterations": {k: v / samples for k, v in iterations.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script")
    args = parser.parse_args()
    # Load petsc4py and CHOLMOD before any timing: the first use imports them.
    warm = get_family("darcy", resolution=8)
    system = warm.assemble(warm.sample(np.random.default_rng(0)))
    solve(system.A, system.b, method="cg", M="ic")
    DirectSolver().solve(system.A, system.b)
    before = load_average()
    records = []
    for name, resolution in (QUICK if args.quick else CASES):
        record = run_case(name, resolution, args.samples)
        records.append(record)
        print(record, flush=True)
    after = load_average()
    rows = []
    for r in records:
        ms = r["ms_per_sample"]
        fastest_iterative = min(ms["ic-pcg warm"], ms["rcg + ic"])
        rows.append([r["family"], r["resolution"], f"{r['unknowns']:,}", f"{ms['spsolve']:.1f}",
                     f"{ms['direct']:.1f}",
                     f"{ms['ic-pcg warm']:.1f} ({r['mean_iterations']['ic-pcg warm']:.0f} it)",
                     f"{ms['rcg + ic']:.1f} ({r['mean_iterations']['rcg + ic']:.0f} it)",
                     f"{ms['direct'] / fastest_iterative:.2f}"])
    table = markdown_table(["family", "resolution", "unknowns", "spsolve", "direct (reuse)",
                            "IC-PCG, warm", "rcg + IC", "direct ÷ best iterative"], rows)
    caption = (f"CPU ms per sample (solve only), {args.samples} samples per row, rtol {RTOL:g}, "
               f"one BLAS thread; load average {before} before, {after} after. "
               "direct ÷ best iterative > 1: an iterative solver wins.")
    print(caption)
    print(table)
    path = write_results("crossover" + ("_quick" if args.quick else ""),
                         {"rtol": RTOL, "records": records, "table": table, "caption": caption,
                          "load_average": [before, after]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
