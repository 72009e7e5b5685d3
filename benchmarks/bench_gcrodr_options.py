"""GCRO-DR's cost options on SKR's families: refresh period and reorthogonalization.

A GCRO-DR(40, 20) cycle is ``m − k = 20`` Arnoldi steps against ``k + j`` vectors, then a
harmonic Ritz refresh of the recycled space that combines about ``3k`` long vectors; with a
cheap preconditioner the refresh costs about as much as the steps. ``update_period = p``
refreshes every ``p``-th cycle only (and always after the last one). ``reorthogonalize``
chooses between one classical Gram–Schmidt pass (``"never"``, as GMRES here and in PETSc) and
a second pass when the first removed most of the vector (``"ifneeded"``, the default).

For each cell (family, preconditioner) the same ``N`` systems (drawn order, rtol 1e-8) are
solved by GMRES(40) and by one ``RecyclingSolver("gcrodr", restart=40, k=20)`` per setting, each
setting's pass timed as a whole (wall and CPU time), one BLAS thread.

    python benchmarks/bench_gcrodr_options.py [--n 10] [--readme]

Writes benchmarks/results/gcrodr_options.json and, with ``--readme``, the README section
``bench-gcrodr-options``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import time
from typing import Any

import numpy as np

from _common import load_average, markdown_table, update_readme_section, write_results
from pdesuite.datasets import get_family
from pdesuite.solvers import RecyclingSolver, solve

CELLS = (("darcy", "none"), ("darcy", "jacobi"), ("darcy", "ilu"), ("poisson-fe", "none"),
         ("poisson-fe", "ilu"))
RESOLUTION = {"darcy": 102, "poisson-fe": 57}
SETTINGS = tuple({"update_period": p, "reorthogonalize": r}
                 for r in ("ifneeded", "never") for p in (1, 2, 4))
RTOL = 1e-8



def timed(run) -> dict[str, Any]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results = run()
    return {"wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0,
            "iterations": int(sum(r.iterations for r in results)),
            "not_converged": int(sum(not r.converged for r in results))}


def run_cell(family_name: str, pc: str, n: int, seed: int) -> dict[str, Any]:
    family = get_family(family_name, resolution=RESOLUTION[family_name])
    systems = [family.assemble(family.sample(np.random.default_rng([seed, i]))) for i in range(n)]
    M = None if pc == "none" else pc
    cell: dict[str, Any] = {
        "family": family_name,
        "preconditioner": pc,
        "N": n,
        "unknowns": int(systems[0].A.shape[0]),
        "load_average_before": load_average(),
    }
    cell["gmres"] = timed(lambda: [solve(s.A, s.b, method="gmres", restart=40, M=M, rtol=RTOL,
                                         maxiter=10_000) for s in systems])
    cell["gcrodr"] = []
    for setting in SETTINGS:
        solver = RecyclingSolver(
            "gcrodr", restart=40, k=20, rtol=RTOL, maxiter=10_000, M=M, **setting
        )
        cell["gcrodr"].append(
            {**setting, **timed(lambda: [solver.solve(s.A, s.b) for s in systems])}
        )
    cell["load_average_after"] = load_average()
    return cell


def report(payload: dict[str, Any]) -> str:
    rows = []
    for cell in payload["cells"]:
        gmres = cell["gmres"]
        rows.append(
            [
                cell["family"],
                cell["preconditioner"],
                "GMRES(40)",
                "–",
                "–",
                gmres["iterations"],
                f"{gmres['cpu']:.2f}",
                "1.00",
                gmres["not_converged"],
            ]
        )
        for run in cell["gcrodr"]:
            rows.append(
                [
                    cell["family"],
                    cell["preconditioner"],
                    "GCRO-DR(40, 20)",
                    run["update_period"],
                    run["reorthogonalize"],
                    run["iterations"],
                    f"{run['cpu']:.2f}",
                    f"{gmres['cpu'] / run['cpu']:.2f}",
                    run["not_converged"],
                ]
            )
    return (
        f"{payload['n']} systems per cell in drawn order (Darcy at 102², P1 Poisson on the L-shape "
        f"with 9,520 unknowns), rtol {RTOL:g}, one BLAS thread; CPU seconds of the whole pass; "
        f"speed-up = GMRES CPU time ÷ this. Load average {payload['load_average_start']} at the "
        f"start, {payload['load_average_end']} at the end.\n\n"
        + markdown_table(
            [
                "family", "pc", "method", "update_period", "reorthogonalize", "iterations", "CPU s",
                "speed-up vs GMRES", "not conv.",
            ],
            rows,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="systems per cell (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--readme", action="store_true", help="update the README section bench-gcrodr-options"
    )
    args = parser.parse_args()
    if args.n < 2:
        parser.error("--n: need at least 2 systems")
    payload: dict[str, Any] = {
        "n": args.n,
        "seed": args.seed,
        "rtol": RTOL,
        "settings": list(SETTINGS),
        "load_average_start": load_average(),
        "cells": [],
    }
    for family_name, pc in CELLS:
        payload["cells"].append(run_cell(family_name, pc, args.n, args.seed))
        print(f"{family_name} {pc} done", flush=True)
    payload["load_average_end"] = load_average()
    path = write_results("gcrodr_options", payload)
    text = report(payload)
    print(text)
    print(f"\nwrote {path}")
    if args.readme:
        update_readme_section("bench-gcrodr-options", text)


if __name__ == "__main__":
    main()
