"""``generate``'s default against every loop a user could write instead, on the same samples.

For each family and size, ``N`` samples drawn from ``default_rng([0, i])``:

- **generate**: ``generate(family, N, resolution=s, chunk_size=⌈N/2⌉)`` with the default
  solver (``"auto"``: timed on the first samples, see
  ``datasets/generation/solver_choice.py``) and the default gzip compression, with 1 and with
  2 workers; wall time of the whole call (drawing, sorting, the solver probe, assembly,
  solving, writing and merging the HDF5 file). Two blocks, so that 2 workers have one each. A
  small run of the family goes first, so that neither side pays the imports. Where the time
  goes comes from the file (sorting, probe, solves) and from the loops below (drawing and
  assembly, measured once); the rest is writing.
- **loops**, in this one process, on the same assembled systems, to rtol 1e-8 where
  iterative (the assembly time, measured once, is added to each):
  - SuperLU: ``scipy.sparse.linalg.spsolve(A.tocsc(), b)`` per sample;
  - CHOLMOD reused (SPD only): ``cholmod.analyze(A)`` once per sparsity pattern (once per run
    but for ``poisson-obstacles-3d``, whose obstacles move), then ``factor.cholesky_inplace(A)``
    and ``factor(b)`` per sample (scikit-sparse);
  - PETSc GAMG: one KSP (CG on SPD families, GMRES(40) otherwise, unpreconditioned residual
    norm) with ``-pc_type gamg``, its operator replaced per sample;
  - warm PCG: the suite's IC(0)-CG (ILU(0)-GMRES(40) on indefinite families) from the previous
    sample's solution (from zero where the number of unknowns changed), the best named
    preconditioner of ``bench_preconditioners.py``;
  - GMRES(40): SciPy's, no preconditioner, from zero, the baseline of SKR (Wang et al. 2024).

A loop that runs past ``--budget`` seconds is stopped (from its callback where it has one) and
reported as "> budget" with the samples it finished. SuperLU is left out of 3-D cases above
40,000 unknowns (its fill there takes minutes and gigabytes). One BLAS thread. The machine is
shared: the load average is recorded per case, and every comparison is a ratio of times
measured in this one process.

    python benchmarks/bench_generate_loops.py [--quick] [--budget 60] [--cases darcy:66 ...]

``--cases`` reruns those rows and keeps the others of the results file (same budget).

Writes benchmarks/results/generate_loops.json (``generate_loops_quick.json`` with
``--quick``) and prints Markdown tables.
"""

from __future__ import annotations


import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from _common import RESULTS, load_average, markdown_table, update_readme_section, write_results

import h5py
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.datasets import generate, get_family
from pdesuite.solvers import solve

RTOL = 1e-8
SEED = 0
README_MARKER = "bench-generate-loops"
#: (family, resolution, samples). Darcy's unknowns are (s − 2)², 64² to 1024².
FULL = (("darcy", 66, 256), ("darcy", 130, 128), ("darcy", 258, 32), ("darcy", 514, 12),
        ("darcy", 1026, 4), ("poisson-fe", 57, 128), ("helmholtz", 130, 64),
        ("darcy-3d", 34, 16), ("darcy-3d", 66, 6),
        ("poisson-obstacles-3d", 32, 16), ("poisson-obstacles-3d", 64, 6))
#: A small size per family, generated once before timing so that no run pays the imports.
WARM_UP = {"darcy-3d": 8, "poisson-obstacles-3d": 6, "poisson-fe": 8}
QUICK = (("darcy", 18, 8), ("helmholtz", 18, 8), ("darcy-3d", 10, 8))
LOOPS = ("superlu", "cholmod reused", "petsc gamg", "warm pcg", "gmres(40)")


class OverBudget(Exception):
    """A loop ran past its time budget."""


class TooLarge(Exception):
    """A loop left out of a case, with the reason as its message."""


#: 3-D cases above this many unknowns leave SuperLU out: its COLAMD ordering fills a 3-D
#: stencil's factor far beyond CHOLMOD's nested dissection (minutes and gigabytes at 64³).
SUPERLU_LIMIT = 40_000
SUPERLU_SKIP_3D = [False]  # set per case by run_case


def _cholmod_loop(spd: bool) -> Optional[Callable]:
    if not spd:
        return None
    from sksparse import cholmod

    state: dict[str, Any] = {}

    def run(A, b, deadline):
        csc = sp.csc_matrix(A)
        pattern = (csc.shape, csc.indptr.tobytes(), csc.indices.tobytes())
        if state.get("pattern") != pattern:  # a new sparsity pattern needs a new analysis
            state["factor"], state["pattern"] = cholmod.analyze(csc), pattern
        state["factor"].cholesky_inplace(csc)
        return state["factor"](b)

    return run


def _petsc_loop(spd: bool) -> Callable:
    from petsc4py import PETSc

    ksp = PETSc.KSP().create(comm=PETSc.COMM_SELF)
    ksp.setType("cg" if spd else "gmres")
    if not spd:
        ksp.setGMRESRestart(40)
    ksp.getPC().setType("gamg")
    ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
    ksp.setTolerances(rtol=RTOL, atol=0.0, max_it=10_000)

    def run(A, b, deadline):
        A = sp.csr_matrix(A)
        matrix = PETSc.Mat().createAIJ(size=A.shape, csr=(A.indptr, A.indices, A.data),
                                       comm=PETSc.COMM_SELF)
        if ksp.getOperators()[0].getSize() != matrix.getSize():
            ksp.reset()  # a new number of unknowns (moved obstacles): a new set-up
        ksp.setOperators(matrix)
        rhs = PETSc.Vec().createWithArray(np.ascontiguousarray(b), comm=PETSc.COMM_SELF)
        x = matrix.createVecLeft()
        ksp.solve(rhs, x)
        if ksp.getConvergedReason() <= 0:
            raise RuntimeError(f"PETSc GAMG: diverged, reason {ksp.getConvergedReason()}")
        return x.getArray().copy()

    return run


def _warm_pcg_loop(spd: bool) -> Callable:
    state: dict[str, Any] = {"x": None}
    options = {"method": "cg", "M": "ic"} if spd else {"method": "gmres", "M": "ilu", "restart": 40}

    def run(A, b, deadline):
        def stop(iteration, residual):
            if time.perf_counter() > deadline:
                raise OverBudget

        previous = state["x"]
        x0 = previous if previous is not None and previous.shape == b.shape else None
        result = solve(A, b, x0=x0, rtol=RTOL, callback=stop, **options)
        if not result.converged:
            raise RuntimeError(f"warm PCG: {result.reason}")
        state["x"] = result.x
        return result.x

    return run


def _gmres_loop(spd: bool) -> Callable:
    def run(A, b, deadline):
        def stop(residual):
            if time.perf_counter() > deadline:
                raise OverBudget

        x, info = spla.gmres(A, b, rtol=RTOL, atol=0.0, restart=40, maxiter=10_000,
                             callback=stop, callback_type="pr_norm")
        if info != 0:
            raise RuntimeError(f"GMRES(40): info {info}")
        return x

    return run


def _superlu_loop(spd: bool) -> Callable:
    def run(A, b, deadline):
        if A.shape[0] > SUPERLU_LIMIT and SUPERLU_SKIP_3D[0]:
            raise TooLarge(f"skipped: SuperLU's fill on a 3-D grid of {A.shape[0]:,} unknowns")
        return spla.spsolve(sp.csc_matrix(A), b)

    return run


MAKERS = {"superlu": _superlu_loop, "cholmod reused": _cholmod_loop, "petsc gamg": _petsc_loop,
          "warm pcg": _warm_pcg_loop, "gmres(40)": _gmres_loop}


def run_loop(name: str, systems, spd: bool, budget: float) -> dict[str, Any]:
    """Solve ``systems`` in order with one loop; seconds per solve, or how far it got."""
    loop = MAKERS[name](spd)
    if loop is None:
        return {"status": "n/a"}
    start = time.perf_counter()
    deadline = start + budget
    worst = 0.0
    for done, system in enumerate(systems):
        if time.perf_counter() > deadline:
            return {"status": "over budget", "solved": done}
        try:
            x = loop(system.A, system.b, deadline)
        except OverBudget:
            return {"status": "over budget", "solved": done}
        except TooLarge as reason:
            return {"status": str(reason)}
        except RuntimeError as error:
            return {"status": f"failed: {error}", "solved": done}
        residual = np.linalg.norm(system.b - system.A @ x) / np.linalg.norm(system.b)
        worst = max(worst, float(residual))
    seconds = time.perf_counter() - start
    return {"status": "ok", "seconds_per_sample": seconds / len(systems),
            "max_relative_residual": worst}


def run_generate(name: str, resolution: int, n: int, workers: int, folder: Path) -> dict[str, Any]:
    out = folder / f"{name}-{resolution}-{workers}.h5"
    start = time.perf_counter()
    generate(name, n, out, resolution=resolution, seed=SEED, chunk_size=math.ceil(n / 2),
             workers=workers, progress=False, overwrite=True)
    wall = time.perf_counter() - start
    with h5py.File(out, "r") as handle:
        config = json.loads(handle.attrs["solver_config"])
        solve_time = float(handle.attrs["solve_time"])
        sort_time = float(handle.attrs["sort_time"]) + float(handle.attrs["key_time"])
        converged = bool(handle["solver/converged"][()].all())
        residual = float(handle["solver/residual"][()].max())
    out.unlink()
    chosen = config["method"] if config["M"] is None else f"{config['method']}+{config['M']}"
    return {"seconds_per_sample": wall / n, "wall": wall, "solve_time": solve_time,
            "sort_time": sort_time, "probe_time": float(config.get("probe_time", 0.0)),
            "chosen": chosen, "chosen_by": config.get("chosen_by"),
            "estimates": config.get("estimates"), "converged": converged,
            "max_relative_residual": residual}


def run_case(name: str, resolution: int, n: int, budget: float, folder: Path) -> dict[str, Any]:
    family = get_family(name, resolution=resolution)
    start = time.perf_counter()
    systems = [family.assemble(family.sample(np.random.default_rng([SEED, i]))) for i in range(n)]
    draw_assemble = (time.perf_counter() - start) / n
    row: dict[str, Any] = {"family": name, "resolution": resolution, "samples": n,
                           "unknowns": int(systems[0].A.shape[0]), "load_average": load_average(),
                           "draw_assemble_per_sample": draw_assemble}
    spd = bool(family.spd)
    grid = getattr(family, "grid", None)
    SUPERLU_SKIP_3D[0] = grid is not None and len(grid.shape) == 3
    generate(name, 8, folder / "warm-up.h5", resolution=WARM_UP.get(name, 18), progress=False,
             overwrite=True)
    for workers in (1, 2):
        row[f"generate_{workers}"] = run_generate(name, resolution, n, workers, folder)
        result = row[f"generate_{workers}"]
        print(f"  generate, {workers} worker(s): {result['seconds_per_sample']:.4f} s/sample "
              f"({result['chosen']})", flush=True)
    row["loops"] = {}
    for loop in LOOPS:
        result = run_loop(loop, systems, spd, budget)
        if "seconds_per_sample" in result:
            result["seconds_per_sample"] += draw_assemble
        row["loops"][loop] = result
        print(f"  {loop}: {result}", flush=True)
    del systems
    finished = {loop: r["seconds_per_sample"] for loop, r in row["loops"].items()
                if r.get("status") == "ok"}
    best = min(finished, key=finished.get) if finished else None
    row["fastest_loop"] = best
    generate_time = row["generate_1"]["seconds_per_sample"]
    row["speedup_vs_fastest_loop"] = finished[best] / generate_time if best else None
    row["speedup_vs_superlu"] = (finished["superlu"] / generate_time
                                 if "superlu" in finished else None)
    row["speedup_2_workers"] = generate_time / row["generate_2"]["seconds_per_sample"]
    return row


def _cell(result: dict[str, Any]) -> str:
    if result.get("status") == "ok":
        return f"{1e3 * result['seconds_per_sample']:.1f}"
    if result.get("status") == "over budget":
        return f"> budget ({result['solved']} done)"
    return result.get("status", "–")


def tables(rows: list[dict[str, Any]]) -> str:
    headers = ["family", "n", "N", "generate (choice)", "generate, 2 workers", *LOOPS,
               "fastest loop ÷ generate", "SuperLU ÷ generate"]
    body = []
    for row in rows:
        one, two = row["generate_1"], row["generate_2"]
        body.append([f"{row['family']} {row['resolution']}", row["unknowns"], row["samples"],
                     f"{1e3 * one['seconds_per_sample']:.1f} ({one['chosen']})",
                     f"{1e3 * two['seconds_per_sample']:.1f} ({row['speedup_2_workers']:.2f}×)",
                     *[_cell(row["loops"][loop]) for loop in LOOPS],
                     f"{row['speedup_vs_fastest_loop']:.2f}× ({row['fastest_loop']})"
                     if row["speedup_vs_fastest_loop"] else "–",
                     f"{row['speedup_vs_superlu']:.2f}×" if row["speedup_vs_superlu"] else "–"])
    where = []
    for row in rows:
        one = row["generate_1"]
        draw = row["draw_assemble_per_sample"] * row["samples"]
        rest = one["wall"] - one["solve_time"] - one["sort_time"] - one["probe_time"] - draw
        where.append([f"{row['family']} {row['resolution']}", f"{one['wall']:.2f}",
                      f"{one['sort_time']:.2f}", f"{one['probe_time']:.2f}", f"{draw:.2f}",
                      f"{one['solve_time']:.2f}", f"{rest:.2f}",
                      ", ".join(f"{k} {1e3 * v:.1f}" if v is not None else f"{k} stopped"
                                for k, v in (one["estimates"] or {}).items()) or one["chosen_by"]])
    return ("Milliseconds per sample, everything a sample costs (draw, assemble, solve; generate "
            "also sorts, probes and writes):\n\n" + markdown_table(headers, body)
            + "\n\nWhere generate's time goes (1 worker, seconds for all N samples; probe "
              "estimates in ms per sample):\n\n"
            + markdown_table(["case", "wall", "sort", "probe", "draw + assemble", "solve",
                              "write + rest", "probe estimates"], where))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds a loop may run per case (default 60, quick 10)")
    parser.add_argument("--cases", nargs="*", default=None, metavar="FAMILY:RESOLUTION[:N]")
    args = parser.parse_args()
    cases = QUICK if args.quick else FULL
    if args.cases:
        chosen = []
        for text in args.cases:
            parts = text.split(":")
            match = [c for c in FULL + QUICK if c[0] == parts[0] and c[1] == int(parts[1])]
            n = int(parts[2]) if len(parts) > 2 else (match[0][2] if match else 8)
            chosen.append((parts[0], int(parts[1]), n))
        cases = tuple(chosen)
    budget = args.budget or (10.0 if args.quick else 60.0)
    name = "generate_loops_quick" if args.quick else "generate_loops"
    rows = _earlier_rows(name, budget) if args.cases else []
    with tempfile.TemporaryDirectory() as folder:
        for family, resolution, n in cases:
            print(f"{family} {resolution}, N = {n}", flush=True)
            row = run_case(family, resolution, n, budget, Path(folder))
            rows = [r for r in rows if (r["family"], r["resolution"]) != (family, resolution)]
            rows.append(row)
            order = {(c[0], c[1]): i for i, c in enumerate(FULL + QUICK)}
            rows.sort(key=lambda r: order.get((r["family"], r["resolution"]), len(order)))
            # After every case: a run stopped half-way keeps what it measured.
            write_results(name, {"rtol": RTOL, "budget_seconds": budget, "rows": rows,
                                 "table": tables(rows)})
    print(tables(rows))
    if not args.quick:
        update_readme_section(README_MARKER, tables(rows) + f"\n\nBudget {budget:.0f} s per loop "
                              "and case; rtol 1e-8; one BLAS thread; 2 shared cores.")


def _earlier_rows(name: str, budget: float) -> list[dict[str, Any]]:
    """The rows of an earlier run with the same budget, which ``--cases`` updates in place."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return []
    earlier = json.loads(path.read_text())
    return earlier["rows"] if earlier.get("budget_seconds") == budget else []


if __name__ == "__main__":
    main()
