"""Sorting Krylov Recycling (SKR, ICLR 2024) reproduced, and compared with fair baselines.

For every cell (family × preconditioner × tolerance) the same ``N`` systems of a PDE family are
solved by five methods:

1. ``gmres``: independent GMRES(40), left preconditioned, zero initial guess, at most 10⁴
   iterations: the paper's baseline. The cap is kept: a capped solve counts as not converged,
   and its (truncated) time still counts, so a speed-up against it is a lower bound.
2. ``skr``: the systems in sorted order (greedy nearest-neighbour path by default,
   ``--sort fft`` for the released code's FFT/PCA/Gray-code binning), one
   ``RecyclingSolver("gcrodr", restart=40, k=20)`` carrying its recycle space along the order.
3. ``recycle-unsorted``: the same solver along the order in which the samples were drawn.
4. ``pcg-warm`` (SPD families only): PCG with the symmetric counterpart of the preconditioner,
   in the sorted order, each solve starting from the previous solution: the strongest cheap
   baseline, which the paper did not run.
5. ``rcg`` (SPD only): recycling (deflated) CG, ``RecyclingSolver("rcg", ell=40, k=20)``, sorted.

Preconditioners: ``none``, ``jacobi``, ``sor`` and ``ilu``. GMRES and GCRO-DR take them as
named; CG needs a symmetric one, so ``sor`` becomes ``ssor`` and ``ilu`` becomes incomplete
Cholesky (the library's ``"ic"``). Every preconditioner is built from each system's matrix
inside the timed region, so every method pays its set-up once per system.

GMRES is left preconditioned (the paper's baseline); GCRO-DR right preconditioned (it
monitors the true residual), with the library's defaults (a second Gram–Schmidt pass when
needed; ``GCRODR_OPTIONS``), recorded in the results.
Helmholtz runs at ``k0 = 10`` (see ``FAMILY_OPTIONS``).

Timing: wall time of each solve call (``time.perf_counter``) and CPU time of this process
(``time.process_time``; OpenBLAS runs one thread, so it is the work done, and less disturbed
than wall time by other jobs on a shared machine). The methods are interleaved system by
system (in a rotating order), so that a change of machine load hits them all alike. The sort
(keys and ordering) is timed apart and added to the time of every method that uses the sorted
order. Assembly is not timed (it is the same for every method).

Pipeline throughput: ``generate(...)`` end to end (draw, sort, solve, write HDF5, merge) with
``workers=1`` and ``workers=2``, and under ``mpiexec -n 2`` (a subprocess of this script with
``--mpi-child``, calling ``generate(..., comm=MPI.COMM_WORLD)``); the three files are checked
to hold bitwise-identical outputs.

    python benchmarks/bench_skr.py --quick                 # tiny, under 2 minutes
    python benchmarks/bench_skr.py                         # the full grid (hours)
    python benchmarks/bench_skr.py --families darcy,helmholtz --pcs none,ilu --tols 1e-8 \
        --n 50 --n-family helmholtz=20                     # a reduced real run

Writes benchmarks/results/<name>.json, <name>.png and <name>.md (``--name``, default ``skr``,
``skr_quick`` with ``--quick``) and, with ``--readme``, the README section ``bench-skr``.
"""

from __future__ import annotations

import os

# One BLAS thread: the machine is shared, and per-solve timings must not depend on how many
# idle cores OpenBLAS happens to find.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import scipy.sparse as sp

from _common import RESULTS, load_average, markdown_table, update_readme_section, write_results
from pdesuite.datasets import generate, get_family, sort_order
from pdesuite.solvers import RecyclingSolver, solve

RESTART = 40
RECYCLE_K = 20
MAXITER = 10_000
#: Families at about 10⁴ unknowns: Darcy and Helmholtz (102−2)² = 10⁴; P1 Poisson on the
#: L-shape with r = 57 has 9,976 DoFs (9,520 after eliminating the boundary); the plate with a
#: hole at r = 70 has 10,080 DoFs.
FULL_RESOLUTION = {"darcy": 102, "helmholtz": 102, "poisson-fe": 57, "thermal-fe": 70}
QUICK_RESOLUTION = {"darcy": 34, "helmholtz": 34, "poisson-fe": 14, "thermal-fe": 18}
#: Family options of the benchmark (``--family-option`` adds or overrides). Helmholtz at
#: k0 = 10 (k in [7.5, 12.5], about ten Dirichlet eigenvalues of −Δ below k²): indefinite
#: enough that GMRES(40) stalls, while k = 20 recycled vectors can deflate the troublesome
#: part. The family's default k0 = 20 puts about fifty eigenvalues below k², more than any
#: recycle space of this size holds, and there every method mostly runs into the cap.
FAMILY_OPTIONS: dict[str, dict[str, Any]] = {"helmholtz": {"k0": 10.0}}
#: GCRO-DR options beyond restart and k: none, the library's defaults. (One Gram–Schmidt pass,
#: ``{"reorthogonalize": "never"}``, as the GMRES baseline does, is 20–30% faster here, but
#: it stalled on a FE Poisson/ILU system for 10⁴ iterations.)
GCRODR_OPTIONS: dict[str, Any] = {}
PRECONDITIONERS = ("none", "jacobi", "sor", "ilu")
#: What CG uses for each preconditioner: the symmetric counterpart.
SYMMETRIC_COUNTERPART = {"none": "none", "jacobi": "jacobi", "sor": "ssor", "ilu": "ic"}
METHODS = ("gmres", "skr", "recycle-unsorted", "pcg-warm", "rcg")
SPD_ONLY = ("pcg-warm", "rcg")
SORTED_METHODS = ("skr", "pcg-warm", "rcg")


def gcrodr_defaults() -> dict[str, Any]:
    """The library's GCRO-DR defaults this run used (reorthogonalization, refresh period, side)."""
    from pdesuite.solvers.vocabulary import METHOD_DEFAULTS

    return {
        name: METHOD_DEFAULTS["gcrodr"][name]
        for name in ("reorthogonalize", "update_period", "side")
    }



# ----------------------------------------------------------------------------- preconditioners
def preconditioner_for(name: str) -> Callable[[sp.csr_array], Any]:
    """``A -> M`` as passed to ``solve``: a library name, or None."""
    if name == "none":
        return lambda A: None
    return lambda A: name


# ----------------------------------------------------------------------------- one cell
class MethodRun:
    """One method's pass over the systems: per-solve records and the state it carries."""

    def __init__(self, name: str, order: np.ndarray, solve_one: Callable[[Any, np.ndarray], Any]):
        self.name = name
        self.order = order
        self.solve_one = solve_one
        self.records: list[dict[str, Any]] = []

    def step(self, systems: list, position: int) -> None:
        index = int(self.order[position])
        system = systems[index]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = self.solve_one(system.A, system.b)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        true_residual = float(
            np.linalg.norm(system.b - system.A @ result.x) / np.linalg.norm(system.b)
        )
        self.records.append({
            "index": index, "wall": wall, "cpu": cpu, "iterations": int(result.iterations),
            "matvecs": int(result.matvecs), "converged": bool(result.converged),
            "reason": result.reason.name, "true_residual": true_residual,
            "recycle_reset": bool(result.info.get("recycle_reset", False)),
        })


def make_runs(spd: bool, pc: str, tol: float, sorted_order: np.ndarray, n: int,
              methods: tuple[str, ...], solutions: int) -> list[MethodRun]:
    general = preconditioner_for(pc)
    symmetric = preconditioner_for(SYMMETRIC_COUNTERPART[pc])
    given = np.arange(n)
    runs = []
    if "gmres" in methods:
        runs.append(MethodRun("gmres", given, lambda A, b: solve(
            A, b, method="gmres", restart=RESTART, M=general(A), rtol=tol, maxiter=MAXITER)))
    for name, order in (("skr", sorted_order), ("recycle-unsorted", given)):
        if name in methods:
            solver = RecyclingSolver(
                "gcrodr",
                restart=RESTART,
                k=RECYCLE_K,
                rtol=tol,
                maxiter=MAXITER,
                solutions=solutions,
                **GCRODR_OPTIONS,
            )
            runs.append(
                MethodRun(name, order, lambda A, b, solver=solver: solver.solve(A, b, M=general(A)))
            )
    if spd and "pcg-warm" in methods:
        previous: dict[str, Optional[np.ndarray]] = {"x": None}

        def warm_pcg(A, b):
            result = solve(
                A, b, method="cg", M=symmetric(A), x0=previous["x"], rtol=tol, maxiter=MAXITER
            )
            previous["x"] = result.x
            return result

        runs.append(MethodRun("pcg-warm", sorted_order, warm_pcg))
    if spd and "rcg" in methods:
        solver = RecyclingSolver(
            "rcg", ell=RESTART, k=RECYCLE_K, rtol=tol, maxiter=MAXITER, solutions=solutions
        )
        runs.append(
            MethodRun(
                "rcg", sorted_order, lambda A, b, solver=solver: solver.solve(A, b, M=symmetric(A))
            )
        )
    return runs


def summarise(records: list[dict[str, Any]], extra_time: float) -> dict[str, Any]:
    iterations = np.array([r["iterations"] for r in records])
    reasons: dict[str, int] = {}
    for r in records:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {
        "solve_wall": float(sum(r["wall"] for r in records)),
        "solve_cpu": float(sum(r["cpu"] for r in records)),
        "sort_time_added": extra_time,
        "total_time": float(sum(r["wall"] for r in records)) + extra_time,
        "total_cpu": float(sum(r["cpu"] for r in records)) + extra_time,
        "mean_iterations": float(iterations.mean()),
        "median_iterations": float(np.median(iterations)),
        "max_iterations": int(iterations.max()),
        "mean_matvecs": float(np.mean([r["matvecs"] for r in records])),
        "nonconverged": int(sum(not r["converged"] for r in records)),
        "reasons": reasons,
        "max_true_residual": float(max(r["true_residual"] for r in records)),
        "recycle_resets": int(sum(r["recycle_reset"] for r in records)),
        "per_solve": records,
    }


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return float(numerator / denominator)


def speedups(methods: dict[str, dict[str, Any]]) -> dict[str, dict[str, Optional[float]]]:
    """Time and iteration ratios ``baseline / skr`` (> 1: SKR is faster), and rcg vs pcg."""
    def get(name: str, key: str) -> Optional[float]:
        return methods[name][key] if name in methods else None

    out = {}
    for label, baseline, candidate in (
        ("skr_vs_gmres", "gmres", "skr"),
        ("skr_vs_pcg", "pcg-warm", "skr"),
        ("sorted_vs_unsorted", "recycle-unsorted", "skr"),
        ("rcg_vs_pcg", "pcg-warm", "rcg"),
    ):
        out[label] = {
            "time": ratio(get(baseline, "total_time"), get(candidate, "total_time")),
            "cpu": ratio(get(baseline, "total_cpu"), get(candidate, "total_cpu")),
            "iterations": ratio(
                get(baseline, "mean_iterations"), get(candidate, "mean_iterations")
            ),
            "matvecs": ratio(get(baseline, "mean_matvecs"), get(candidate, "mean_matvecs")),
        }
    return out


def run_family(family_name: str, resolution: int, n: int, pcs: list[str], tols: list[float],
               sort_method: str, methods: tuple[str, ...], solutions: int, seed: int,
               log: Callable[[str], None], skip: frozenset = frozenset(),
               on_cell: Callable[[dict[str, Any]], None] = lambda cell: None,
               reuse: Optional[dict[tuple, dict[str, Any]]] = None) -> list[dict[str, Any]]:
    """Every (tolerance, preconditioner) cell of one family; ``on_cell`` sees each as it ends.

    ``reuse`` maps ``(family, pc, tol, N)`` to the ``methods`` of an earlier run's cell: the
    methods found there are taken over (per-solve records and all) instead of run again.
    """
    family = get_family(family_name, resolution=resolution, **FAMILY_OPTIONS.get(family_name, {}))
    t0 = time.perf_counter()
    params = [family.sample(np.random.default_rng([seed, i])) for i in range(n)]
    systems = [family.assemble(p) for p in params]
    assembly_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    keys = np.stack([family.sort_key(p) for p in params])
    sorted_order = sort_order(keys, method=sort_method)
    sort_time = time.perf_counter() - t0
    unknowns, nnz = systems[0].A.shape[0], int(systems[0].A.nnz)
    spd = bool(family.spd)
    log(f"{family_name}: {unknowns} unknowns, nnz {nnz}, N={n}, assembly {assembly_time:.1f}s, "
        f"sort ({sort_method}) {sort_time:.3f}s")
    cells = []
    for tol in tols:
        for pc in pcs:
            if f"{family_name}:{pc}" in skip:
                continue
            load_before = load_average()
            reused = (reuse or {}).get((family_name, pc, tol, n), {})
            runs = make_runs(spd, pc, tol, sorted_order, n,
                             tuple(m for m in methods if m not in reused), solutions)
            cell_start = time.perf_counter()
            for position in range(n):
                shift = position % len(runs)
                for run in runs[shift:] + runs[:shift]:
                    run.step(systems, position)
            summaries = {
                run.name: summarise(run.records, sort_time if run.name in SORTED_METHODS else 0.0)
                for run in runs
            }
            for name in methods:
                if name in reused:
                    summaries[name] = {**reused[name], "reused": True}
            summaries = {name: summaries[name] for name in methods if name in summaries}
            cell = {
                "family": family_name,
                "resolution": resolution,
                "unknowns": unknowns,
                "nnz": nnz,
                "spd": spd,
                "preconditioner": pc,
                "symmetric_preconditioner": SYMMETRIC_COUNTERPART[pc] if spd else None,
                "family_options": FAMILY_OPTIONS.get(family_name, {}),
                "tol": tol,
                "N": n,
                "sort_method": sort_method,
                "sort_time": sort_time,
                "assembly_time": assembly_time,
                "cell_wall": time.perf_counter() - cell_start,
                "load_average_before": load_before,
                "load_average_after": load_average(),
                "methods": summaries,
                "speedups": speedups(summaries),
                "reused_methods": sorted(reused),
            }
            cells.append(cell)
            on_cell(cell)
            brief = ", ".join(
                f"{k} {v['total_time']:.1f}s/{v['mean_iterations']:.0f}it/{v['nonconverged']}nc"
                for k, v in summaries.items()
            )
            log(f"  {family_name} {pc} tol={tol:g}: {brief} ({cell['cell_wall']:.0f}s)")
    return cells


# ----------------------------------------------------------------------------- pipeline
#: Samples of the throughput runs, by ``quick``; ``--pipeline-n`` changes them.
PIPELINE_N = {True: 16, False: 256}


def _pipeline_config(quick: bool) -> dict[str, Any]:
    """Darcy, small; 8 blocks (4 in quick mode), so that two workers or ranks share the work."""
    n = PIPELINE_N[quick]
    blocks = 4 if quick else 8
    return {
        "family": "darcy",
        "resolution": 34 if quick else 66,
        "n": n,
        "chunk_size": max(1, -(-n // blocks)),
    }


def _read_outputs(path: Path) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as handle:
        return handle["outputs"][...]


def mpi_child(spec_json: str) -> None:
    """Run under ``mpiexec``: one ``generate`` over ``MPI.COMM_WORLD``; rank 0 prints a JSON
    line."""
    from mpi4py import MPI

    spec = json.loads(spec_json)
    comm = MPI.COMM_WORLD
    comm.Barrier()
    start = time.perf_counter()
    generate(
        spec["family"],
        spec["n"],
        out=spec["out"],
        resolution=spec["resolution"],
        chunk_size=spec["chunk_size"],
        workers=1,
        progress=False,
        comm=comm,
        overwrite=True,
    )
    comm.Barrier()
    elapsed = time.perf_counter() - start
    if comm.Get_rank() == 0:
        print(
            "MPI_RESULT " + json.dumps({"seconds": elapsed, "ranks": comm.Get_size()}), flush=True
        )


def run_pipeline(quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    spec = _pipeline_config(quick)
    result: dict[str, Any] = {
        **spec,
        "solver": "recycle (rcg, k=20, ell=40, rtol=1e-8), sorted (greedy)",
        "load_average_before": load_average(),
        "runs": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="bench_skr_"))
    try:
        outputs = {}
        for workers in (1, 2):
            out = workdir / f"w{workers}.h5"
            start = time.perf_counter()
            generate(
                spec["family"],
                spec["n"],
                out=out,
                resolution=spec["resolution"],
                chunk_size=spec["chunk_size"],
                workers=workers,
                progress=False,
            )
            seconds = time.perf_counter() - start
            result["runs"][f"workers={workers}"] = {
                "seconds": seconds,
                "systems_per_second": spec["n"] / seconds,
            }
            outputs[f"workers={workers}"] = _read_outputs(out)
            log(f"pipeline workers={workers}: {spec['n'] / seconds:.2f} systems/s")
        out = workdir / "mpi.h5"
        mpiexec = shutil.which("mpiexec")
        if mpiexec is None:
            result["runs"]["mpiexec -n 2"] = {"error": "mpiexec not found on PATH"}
        else:
            child = {**spec, "out": str(out)}
            command = [
                mpiexec,
                "-n",
                "2",
                sys.executable,
                str(Path(__file__).resolve()),
                "--mpi-child",
                json.dumps(child),
            ]
            start = time.perf_counter()
            try:
                completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
                outer = time.perf_counter() - start
                lines = [
                    line for line in completed.stdout.splitlines() if line.startswith("MPI_RESULT ")
                ]
                if completed.returncode != 0 or not lines:
                    result["runs"]["mpiexec -n 2"] = {
                        "error": f"exit code {completed.returncode}",
                        "stderr_tail": completed.stderr[-2000:],
                        "stdout_tail": completed.stdout[-1000:],
                    }
                else:
                    inner = json.loads(lines[-1][len("MPI_RESULT "):])
                    result["runs"]["mpiexec -n 2"] = {
                        "seconds": inner["seconds"],
                        "systems_per_second": spec["n"] / inner["seconds"],
                        "seconds_with_mpiexec_start": outer,
                        "ranks": inner["ranks"],
                    }
                    outputs["mpiexec -n 2"] = _read_outputs(out)
                    log(f"pipeline mpiexec -n 2: {spec['n'] / inner['seconds']:.2f} systems/s")
            except (OSError, subprocess.TimeoutExpired) as error:
                result["runs"]["mpiexec -n 2"] = {"error": repr(error)}
        reference = outputs["workers=1"]
        result["bitwise_identical_to_workers_1"] = {
            name: bool(np.array_equal(array, reference))
            for name, array in outputs.items()
            if name != "workers=1"
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["load_average_after"] = load_average()
    return result


# ----------------------------------------------------------------------------- reporting
def _fmt(value: Optional[float], digits: str = ".2f") -> str:
    return "–" if value is None else f"{value:{digits}}×"


def tables(cells: list[dict[str, Any]]) -> tuple[str, str]:
    """(per-method table, speed-up table) in markdown."""
    method_rows = []
    for cell in cells:
        for name in METHODS:
            if name not in cell["methods"]:
                continue
            m = cell["methods"][name]
            pc = cell["symmetric_preconditioner"] if name in SPD_ONLY else cell["preconditioner"]
            method_rows.append(
                [
                    cell["family"],
                    cell["unknowns"],
                    f"{cell['tol']:g}",
                    cell["preconditioner"],
                    cell["N"],
                    f"{name} ({pc})",
                    f"{m['total_time']:.2f}",
                    f"{m['total_cpu']:.2f}",
                    f"{m['mean_iterations']:.1f}",
                    f"{m['nonconverged']}/{cell['N']}",
                ]
            )
    first = markdown_table(
        [
            "family", "n", "tol", "pc", "N", "method (its pc)", "wall s", "cpu s", "mean it",
            "not conv.",
        ],
        method_rows,
    )
    speed_rows = []
    for cell in cells:
        s = cell["speedups"]
        failed = " / ".join(
            str(cell["methods"][name]["nonconverged"]) if name in cell["methods"] else "–"
            for name in ("gmres", "skr", "recycle-unsorted")
        )
        speed_rows.append(
            [
                cell["family"],
                f"{cell['tol']:g}",
                cell["preconditioner"],
                cell["N"],
                f"{_fmt(s['skr_vs_gmres']['cpu'])} / "
                f"{_fmt(s['skr_vs_gmres']['iterations'], '.1f')}",
                f"{_fmt(s['skr_vs_pcg']['cpu'])} / {_fmt(s['skr_vs_pcg']['iterations'], '.1f')}",
                f"{_fmt(s['sorted_vs_unsorted']['cpu'])} / "
                f"{_fmt(s['sorted_vs_unsorted']['iterations'])}",
                f"{_fmt(s['rcg_vs_pcg']['cpu'])} / {_fmt(s['rcg_vs_pcg']['iterations'])}",
                failed,
            ]
        )
    second = markdown_table(
        [
            "family", "tol", "pc", "N", "SKR vs GMRES(40) time / it", "SKR vs warm PCG time / it",
            "sorted vs unsorted time / it", "rcg vs warm PCG time / it",
            "not conv. GMRES / SKR / unsorted",
        ],
        speed_rows,
    )
    return first, second


def plot(cells: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{c['family']}\n{c['preconditioner']}, {c['tol']:g}" for c in cells]
    series = (("skr_vs_gmres", "SKR vs GMRES(40)"), ("skr_vs_pcg", "SKR vs warm PCG"),
              ("sorted_vs_unsorted", "sorted vs unsorted"), ("rcg_vs_pcg", "rcg vs warm PCG"))
    x = np.arange(len(cells))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(cells) + 2), 4.5))
    for i, (key, label) in enumerate(series):
        values = [c["speedups"][key]["cpu"] for c in cells]
        heights = [v if v is not None else np.nan for v in values]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=label)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.yaxis.set_major_locator(FixedLocator([0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}×"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("CPU-time speed-up (> 1: the first is faster)")
    n_text = ", ".join(sorted({f"{c['family']} N={c['N']}" for c in cells}))
    ax.set_title(
        f"Sorted + recycled GCRO-DR(40,20) against baselines\n({n_text}; time incl. sort)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def parse_n_family(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if not value.isdigit() or int(value) < 2:
            raise ValueError(f"--n-family: expected FAMILY=N with N >= 2, got {item!r}")
        out[name] = int(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny problems, N=6, tol 1e-5 (under 2 minutes)"
    )
    parser.add_argument("--families", default="darcy,helmholtz,poisson-fe",
                        help=f"comma-separated, from {sorted(FULL_RESOLUTION)}")
    parser.add_argument(
        "--pcs", default=",".join(PRECONDITIONERS), help="comma-separated, from none,jacobi,sor,ilu"
    )
    parser.add_argument("--tols", default="1e-5,1e-8", help="comma-separated relative tolerances")
    parser.add_argument("--n", type=int, default=200, help="systems per cell (default 200)")
    parser.add_argument("--n-family", action="append", default=[], metavar="FAMILY=N",
                        help="another N for one family (repeatable), e.g. helmholtz=20")
    parser.add_argument("--skip", default="", metavar="FAMILY:PC,...",
                        help="cells left out, e.g. helmholtz:jacobi,helmholtz:sor")
    parser.add_argument("--family-option", action="append", default=[], metavar="FAMILY:KEY=VALUE",
                        help="a family option (JSON value), e.g. helmholtz:k0=20; repeatable")
    parser.add_argument("--reuse", default=None, metavar="NAME:METHOD,METHOD,...",
                        help="take these methods' records from the finished results file NAME "
                             "(same systems and settings) instead of running them again, e.g. "
                             "skr_old:gmres,pcg-warm,rcg after a change that affects only GCRO-DR")
    parser.add_argument(
        "--merge",
        default=None,
        metavar="NAME,NAME,...",
        help="combine the cells of finished runs (results files) into --name and publish",
    )
    parser.add_argument("--sort", default="greedy", choices=("greedy", "fft"))
    parser.add_argument(
        "--solutions",
        type=int,
        default=4,
        help="previous solutions in the recycling solvers' initial projection (library default 4)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-pipeline", action="store_true", help="skip the generate() throughput part"
    )
    parser.add_argument(
        "--pipeline-only",
        action="store_true",
        help="measure only the generate() throughput and put it into the existing results file",
    )
    parser.add_argument("--pipeline-n", type=int, default=None,
                        help="samples of the throughput runs (default 256, or 16 with --quick)")
    parser.add_argument(
        "--name", default=None, help="results file stem (default skr, or skr_quick with --quick)"
    )
    parser.add_argument("--readme", action="store_true", help="update the README section bench-skr")
    parser.add_argument("--mpi-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mpi_child is not None:
        mpi_child(args.mpi_child)
        return

    for item in args.family_option:
        try:
            family_key, value = item.split("=", 1)
            family, key = family_key.split(":", 1)
            FAMILY_OPTIONS.setdefault(family.strip(), {})[key.strip()] = json.loads(value)
        except ValueError:
            parser.error(
                f"--family-option: expected FAMILY:KEY=VALUE with a JSON value, got {item!r}"
            )
    if args.merge is not None:
        merge_runs([part.strip() for part in args.merge.split(",") if part.strip()],
                   args.name or "skr", args.readme)
        return

    families = [f.strip() for f in args.families.split(",") if f.strip()]
    for family in families:
        if family not in FULL_RESOLUTION:
            parser.error(
                f"--families: unknown family {family!r}; choose from {sorted(FULL_RESOLUTION)}"
            )
    pcs = [p.strip() for p in args.pcs.split(",") if p.strip()]
    for pc in pcs:
        if pc not in PRECONDITIONERS:
            parser.error(f"--pcs: unknown preconditioner {pc!r}; choose from {PRECONDITIONERS}")
    tols = [float(t) for t in args.tols.split(",")]
    skip = frozenset(item.strip() for item in args.skip.split(",") if item.strip())
    if args.n < 2:
        parser.error("--n: need at least 2 systems")
    try:
        n_family = parse_n_family(args.n_family)
    except ValueError as error:
        parser.error(str(error))
    if args.quick:
        tols = [1e-5] if args.tols == parser.get_default("tols") else tols
        n_default = 6 if args.n == parser.get_default("n") else args.n
        resolutions = QUICK_RESOLUTION
    else:
        n_default = args.n
        resolutions = FULL_RESOLUTION
    name = args.name or ("skr_quick" if args.quick else "skr")

    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    if args.pipeline_n is not None:
        if args.pipeline_n < 2:
            parser.error("--pipeline-n: need at least 2 samples")
        PIPELINE_N[args.quick] = args.pipeline_n
    if args.pipeline_only:
        pipeline_only(name, args.quick, args.readme, log)
        return

    config = {
        "command": " ".join(sys.argv),
        "quick": args.quick,
        "families": families,
        "resolutions": {f: resolutions[f] for f in families},
        "N": {f: n_family.get(f, n_default) for f in families},
        "tolerances": tols,
        "preconditioners": pcs,
        "skipped_cells": sorted(skip),
        "symmetric_counterparts": SYMMETRIC_COUNTERPART,
        "sort": args.sort,
        "gmres_restart": RESTART,
        "family_options": {f: FAMILY_OPTIONS.get(f, {}) for f in families},
        "gcrodr": {
            "restart": RESTART,
            "k": RECYCLE_K,
            "solutions": args.solutions,
            **gcrodr_defaults(),
            **GCRODR_OPTIONS,
        },
        "gmres_side": "left",
        "rcg": {"ell": RESTART, "k": RECYCLE_K},
        "maxiter": MAXITER,
        "seed": args.seed,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "timing": "wall (perf_counter) and CPU (process_time) per solve call, preconditioner "
                  "set-up "
        "included, assembly excluded, sort time added to the sorted methods",
    }
    reuse = None
    if args.reuse is not None:
        reuse = load_reuse(args.reuse, config)
        config["reused"] = args.reuse
    load_start = load_average()
    log(
        f"load average {load_start}; config "
        f"{json.dumps({k: config[k] for k in ('families', 'N', 'tolerances', 'preconditioners')})}"
    )
    cells: list[dict[str, Any]] = []
    # The pipeline part is short: run it first, and save after every cell, so that a run
    # stopped early (a time limit) still leaves what it measured, marked incomplete.
    pipeline = None if args.no_pipeline else run_pipeline(args.quick, log)

    def save_partial(cell: dict[str, Any]) -> None:
        cells.append(cell)
        write_results(
            name,
            {
                "complete": False,
                "config": config,
                "load_average_start": load_start,
                "wall_seconds": time.perf_counter() - started,
                "cells": cells,
                "pipeline": pipeline,
            },
        )

    for family in families:
        run_family(family, resolutions[family], config["N"][family], pcs, tols, args.sort, METHODS,
                   args.solutions, args.seed, log, skip=skip, on_cell=save_partial, reuse=reuse)

    payload = {
        "complete": True,
        "config": config,
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "wall_seconds": time.perf_counter() - started,
        "cells": cells,
        "pipeline": pipeline,
    }
    publish(name, payload, args.readme)


def report(payload: dict[str, Any]) -> str:
    """The markdown of a results payload: what ran, the speed-ups, per-method numbers, pipeline."""
    config, cells, pipeline = payload["config"], payload["cells"], payload.get("pipeline")
    first, second = tables(cells)
    pipeline_text = ""
    if pipeline is not None:
        rows = []
        for label, run in pipeline["runs"].items():
            if "error" in run:
                rows.append([label, "failed: " + run["error"], ""])
            else:
                rows.append([label, f"{run['systems_per_second']:.2f}", f"{run['seconds']:.1f}"])
        pipeline_text = (
            "\n\nWhole pipeline `generate(...)` (draw, sort, solve, write, merge): "
            f"{pipeline['family']} at resolution {pipeline['resolution']}, {pipeline['n']} "
            f"samples, chunk_size {pipeline['chunk_size']}, {pipeline['solver']}; load average "
            f"{pipeline['load_average_before']} before; outputs bitwise identical to workers=1: "
            f"{pipeline['bitwise_identical_to_workers_1']}."
            "\n\n" + markdown_table(["run", "systems/s", "seconds"], rows)
        )
    unknowns = {cell["family"]: cell["unknowns"] for cell in cells}
    ran = ", ".join(
        f"{family} (n={count}, N={config['N'][family]})" for family, count in unknowns.items()
    )
    tolerances = ", ".join(f"{t:g}" for t in config["tolerances"])
    skip = config.get("skipped_cells") or []
    skipped = f" (cells left out: {', '.join(skip)})" if skip else ""
    header = (
        f"Ran: {ran}; tolerances {tolerances}; preconditioners "
        f"{', '.join(config['preconditioners'])}{skipped}; sort {config['sort']}. Load average "
        f"(1/5/15 min) {payload['load_average_start']} at the start, {payload['load_average_end']} "
        f"at the end, on {payload['machine']['cores'] if 'machine' in payload else os.cpu_count()} "
        "shared cores. Speed-up = baseline ÷ SKR (> 1: SKR faster), by CPU time of the solves (one "
        "BLAS thread, so the work done; sort included; wall times in the second table) / by mean "
        "iterations; a GMRES solve stopped by the 10⁴ cap counts with its truncated time."
        + (
            f" Methods reused from an earlier run of the same systems ({config['reused']}): only "
            "the others ran again."
            if config.get("reused")
            else ""
        )
    )
    return header + "\n\n" + second + "\n\n" + first + pipeline_text


def publish(name: str, payload: dict[str, Any], readme: bool) -> None:
    """Write ``<name>.json``, ``.png`` and ``.md``; print the markdown; update the README on
    request."""
    path = write_results(name, payload)
    payload = json.loads(path.read_text())  # with the machine description write_results adds
    markdown = report(payload)
    plot(payload["cells"], RESULTS / f"{name}.png")
    (RESULTS / f"{name}.md").write_text(markdown + "\n")
    print(markdown)
    print(f"\nwrote {path}, {RESULTS / (name + '.png')}, {RESULTS / (name + '.md')}")
    if readme:
        update_readme_section(
            "bench-skr", markdown + f"\n\n![SKR speed-ups](benchmarks/results/{name}.png)"
        )


#: Configuration keys that must agree between runs whose cells are reused or merged.
COMPATIBLE_KEYS = ("quick", "tolerances", "preconditioners", "symmetric_counterparts", "sort",
                   "gmres_restart", "gmres_side", "gcrodr", "rcg", "maxiter", "seed")


def _incompatible(
    config: dict[str, Any], other: dict[str, Any], keys=COMPATIBLE_KEYS
) -> Optional[str]:
    for key in keys:
        if config.get(key) != other.get(key):
            return f"{key}: {config.get(key)!r} here, {other.get(key)!r} there"
    return None


def load_reuse(spec: str, config: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
    """``NAME:METHOD,...`` -> ``{(family, pc, tol, N): {method: summary}}`` from a finished run."""
    try:
        name, methods_text = spec.split(":", 1)
    except ValueError:
        raise SystemExit(f"--reuse: expected NAME:METHOD,METHOD,..., got {spec!r}") from None
    methods = [m.strip() for m in methods_text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"--reuse: unknown methods {unknown}; choose from {METHODS}")
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"--reuse: {path} does not exist")
    payload = json.loads(path.read_text())
    if not payload.get("complete"):
        raise SystemExit(f"--reuse: {path} is an incomplete run")
    # the reused methods must have run exactly as they would run now; GCRO-DR's options may
    # differ only when no GCRO-DR method is reused
    keys = [k for k in COMPATIBLE_KEYS
            if not (k == "gcrodr" and not {"skr", "recycle-unsorted"} & set(methods))]
    problem = _incompatible(config, payload["config"], keys)
    if problem is None:
        for family in config["families"]:
            for key in ("resolutions", "N", "family_options"):
                if config[key].get(family) != payload["config"].get(key, {}).get(family):
                    problem = f"{key}[{family}] differs"
    if problem is not None:
        raise SystemExit(f"--reuse: {path} ran with other settings ({problem})")
    table = {}
    for cell in payload["cells"]:
        key = (cell["family"], cell["preconditioner"], cell["tol"], cell["N"])
        table[key] = {m: cell["methods"][m] for m in methods if m in cell["methods"]}
    return table


def merge_runs(parts: list[str], name: str, readme: bool) -> None:
    """One results file from complete runs over disjoint families (e.g. two processes)."""
    payloads = []
    for part in parts:
        path = RESULTS / f"{part}.json"
        if not path.exists():
            raise SystemExit(f"--merge: {path} does not exist")
        payload = json.loads(path.read_text())
        if not payload.get("complete"):
            raise SystemExit(f"--merge: {path} is an incomplete run")
        payloads.append(payload)
    config = json.loads(json.dumps(payloads[0]["config"]))
    config["command"] = [p["config"]["command"] for p in payloads]
    config["merged_from"] = parts
    for part, payload in zip(parts[1:], payloads[1:]):
        other = payload["config"]
        problem = _incompatible(config, other)
        if problem is not None:
            raise SystemExit(f"--merge: {part} ran with other settings than {parts[0]} ({problem})")
        shared = set(config["families"]) & set(other["families"])
        if shared:
            raise SystemExit(f"--merge: {part} repeats the families {sorted(shared)}")
        config["families"] += other["families"]
        reused = [text for text in (config.get("reused"), other.get("reused")) if text]
        if reused:
            config["reused"] = "; ".join(reused)
        for key in ("resolutions", "N", "family_options"):
            config.setdefault(key, {}).update(other.get(key, {}))
        config["skipped_cells"] = sorted(set(config["skipped_cells"]) | set(other["skipped_cells"]))
    merged = {
        "complete": True, "config": config,
        "load_average_start": payloads[0]["load_average_start"],
        "load_average_end": payloads[-1]["load_average_end"],
        "wall_seconds": max(p["wall_seconds"] for p in payloads),
        "cells": [cell for p in payloads for cell in p["cells"]],
        "pipeline": next((p["pipeline"] for p in payloads if p.get("pipeline") is not None), None),
    }
    publish(name, merged, readme)


def pipeline_only(name: str, quick: bool, readme: bool, log: Callable[[str], None]) -> None:
    """Measure the pipeline again and put it into the existing ``<name>.json`` (cells kept)."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"--pipeline-only: {path} does not exist; run the benchmark first")
    payload = json.loads(path.read_text())
    payload.pop("machine", None)
    if payload.get("pipeline") is not None:
        payload.setdefault("pipeline_earlier", []).append(payload["pipeline"])
    payload["pipeline"] = run_pipeline(quick, log)
    publish(name, payload, readme)

if __name__ == "__main__":
    main()
