"""Direct solves of a Darcy family: the symbolic analysis once per sparsity pattern, or every time.

Darcy flow with a lognormal permeability (``get_family("darcy", resolution=s)``: 5-point FD on
the ``s x s`` node grid, ``(s − 2)²`` unknowns, SPD), ``--samples`` (20) samples drawn from
``default_rng([0, i])`` and assembled beforehand (assembly is not timed), one BLAS thread. Per
grid, milliseconds per solve (mean over the samples) of:

- (a) ``scipy.sparse.linalg.spsolve(A, b)`` in a loop (SuperLU, COLAMD ordering);
- (b) one :class:`pdesuite.solvers.DirectSolver` along the samples: CHOLMOD analyses the
  pattern at the first sample and refactors the values of every later one
  (``Factor.cholesky_inplace``); the mean includes the first sample's analysis, which is also
  reported alone. Each call goes through ``solve()``'s checks and the residual check (one
  product). Row (b') is the same with ``ordering="nesdis"`` (CHOLMOD's nested dissection):
  a dearer analysis, paid once, for a sparser factor;
- (c) CHOLMOD from scratch for every sample: ``sksparse.cholmod.cholesky(A)`` (analysis and
  factorization) and the solve, no checks;
- (e) what (b) runs without scikit-sparse: ``DirectSolver(spd=True)`` on SuperLU in its
  symmetric mode (minimum degree on ``A + Aᵀ``, diagonal pivots), a fresh factorization each
  time (``_cholmod`` patched to report no CHOLMOD);
- (d) ``generate("darcy", n, solver="direct")`` against ``generate("darcy", n)`` (the default:
  greedy SKR sorting and recycling CG), wall time of the whole call per sample: drawing,
  sorting, assembly, solving, writing the HDF5 file. Both sort (the default ``order``), which
  buys the direct solve nothing; the sorting time is recorded apart.

The methods (a), (b), (b'), (c), (e) run interleaved, sample by sample, so that a drifting
load on the shared machine falls on all alike; means and medians are recorded. The largest
relative difference between their solutions and spsolve's is recorded too.

    python benchmarks/bench_direct.py [--sizes 64 128 256] [--samples 20] [--quick]
        [--no-generate-default SIZE ...]

Writes benchmarks/results/direct.json (``direct_quick.json`` with ``--quick``: 24² and 32²,
5 samples) and prints a Markdown table. Needs scikit-sparse (``pip install 'pdesuite[direct]'``).
"""

from __future__ import annotations

import os
import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from _common import load_average, markdown_table, write_results

import numpy as np
import scipy
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.datasets import generate, get_family
from pdesuite.solvers import DirectSolver

SEED = 0


def _systems(resolution: int, n: int) -> list[tuple[sp.csr_array, np.ndarray]]:
    family = get_family("darcy", resolution=resolution)
    systems = []
    for index in range(n):
        system = family.assemble(family.sample(np.random.default_rng([SEED, index])))
        systems.append((system.A, system.b))
    return systems


def _interleaved(
    runners: dict[str, Any], systems
) -> tuple[dict[str, list[float]], dict[str, list]]:
    """Every runner on sample 1, then every runner on sample 2, ...: a drifting load on the
    shared machine falls on all of them alike."""
    times = {name: [] for name in runners}
    solutions = {name: [] for name in runners}
    for A, b in systems:
        for name, function in runners.items():
            started = time.perf_counter()
            x = function(A, b)
            times[name].append(time.perf_counter() - started)
            solutions[name].append(x)
    return times, solutions


def _direct_solver(ordering: str):
    solver = DirectSolver(spd=True, ordering=ordering)
    infos = []

    def run(A, b):
        result = solver.solve(A, b)
        infos.append(result.info)
        if not result.converged:
            raise RuntimeError(f"DirectSolver did not converge: {result.info}")
        return result.x

    return run, infos, solver


def _cholmod_scratch(A, b):
    from sksparse import cholmod

    # The CSR arrays of the symmetric A are the CSC arrays of A itself: no conversion.
    csc = sp.csc_array((A.data, A.indices, A.indptr), shape=A.shape)
    return cholmod.cholesky(csc)(b)


def _superlu_fallback(A, b):
    """What DirectSolver(spd=True) runs without scikit-sparse: SuperLU in symmetric mode."""
    import pdesuite.solvers.direct as direct

    real = direct._cholmod
    direct._cholmod = lambda: None
    try:
        result = DirectSolver(spd=True).solve(A, b)
    finally:
        direct._cholmod = real
    assert result.info["factorization"] == "superlu" and result.converged, result.info
    return result.x


def _generate_per_sample(resolution: int, n: int, solver: Any, workdir: Path) -> dict[str, Any]:
    out = workdir / f"darcy_{resolution}_{len(list(workdir.iterdir()))}.h5"
    load = load_average()
    started = time.perf_counter()
    generate("darcy", n, out=out, resolution=resolution, solver=solver, seed=SEED, chunk_size=n,
             progress=False, overwrite=True)
    wall = time.perf_counter() - started
    import h5py

    with h5py.File(out, "r") as handle:
        converged = bool(handle["solver/converged"][()].all())
        iterations = float(handle["solver/iterations"][()].mean())
        solve_time = float(handle.attrs["solve_time"])
        sort_time = float(handle.attrs["sort_time"]) + float(handle.attrs["key_time"])
    out.unlink()
    return {
        "solver": solver,
        "ms_per_sample": 1e3 * wall / n,
        "solve_ms_per_sample": 1e3 * solve_time / n,
        "sort_ms_per_sample": 1e3 * sort_time / n,
        "iterations_mean": iterations,
        "all_converged": converged,
        "load_average_before": load,
    }


def run_size(resolution: int, n: int, with_default_generate: bool, workdir: Path) -> dict[str, Any]:
    systems = _systems(resolution, n)
    # Warm-up on the first system, untimed: imports and first-call costs are not the solves'.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sp.SparseEfficiencyWarning)
        spla.spsolve(*systems[0])
    _cholmod_scratch(*systems[0])
    DirectSolver(spd=True).solve(*systems[0])
    load = load_average()
    reuse, infos, solver = _direct_solver("default")
    nesdis, infos_nd, _ = _direct_solver("nesdis")
    runners = {"spsolve": lambda A, b: spla.spsolve(A, b), "direct_reuse": reuse,
               "direct_reuse_nesdis": nesdis, "cholmod_scratch": _cholmod_scratch,
               "direct_superlu_fallback": _superlu_fallback}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sp.SparseEfficiencyWarning)
        times, solutions = _interleaved(runners, systems)
    reused = [info["symbolic_reused"] for info in infos]
    assert reused == [False] + [True] * (n - 1), reused
    assert all(info["factorization"] == "cholmod" for info in infos + infos_nd)

    def worst(xs):
        return max(float(np.linalg.norm(x - y) / np.linalg.norm(y))
                   for x, y in zip(xs, solutions["spsolve"]))

    row: dict[str, Any] = {
        "resolution": resolution, "unknowns": systems[0][0].shape[0], "nnz": int(systems[0][0].nnz),
        "samples": n,
    }
    for name, values in times.items():
        row[f"{name}_ms"] = 1e3 * float(np.mean(values))
        row[f"{name}_median_ms"] = 1e3 * float(np.median(values))
    row.update({
        "direct_reuse_first_ms": 1e3 * times["direct_reuse"][0],
        "direct_reuse_rest_ms": 1e3 * float(np.mean(times["direct_reuse"][1:])),
        "direct_reuse_nesdis_first_ms": 1e3 * times["direct_reuse_nesdis"][0],
        "max_relative_difference_to_spsolve": max(worst(solutions[name]) for name in runners
                                                  if name != "spsolve"),
        "analyses": solver.analyses, "factorizations": solver.factorizations,
        "load_average_before": load, "load_average_after": load_average(),
    })
    row["generate_direct"] = _generate_per_sample(resolution, n, "direct", workdir)
    row["generate_default"] = (_generate_per_sample(resolution, n, "recycle", workdir)
                               if with_default_generate else None)
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    headers = ["grid", "unknowns", "(a) spsolve", "(b) DirectSolver, reuse", "(b) first / later",
               "(b') reuse, nesdis", "(c) CHOLMOD from scratch", "(e) no scikit-sparse",
               "(d) generate direct", "(d) generate default", "(a)/(b)"]
    table = []
    for r in rows:
        default = r["generate_default"]
        table.append(
            [
                f"{r['resolution']}²",
                r["unknowns"],
                f"{r['spsolve_ms']:.1f}", f"{r['direct_reuse_ms']:.1f}",
                f"{r['direct_reuse_first_ms']:.1f} / {r['direct_reuse_rest_ms']:.1f}",
                f"{r['direct_reuse_nesdis_ms']:.1f}", f"{r['cholmod_scratch_ms']:.1f}",
                f"{r['direct_superlu_fallback_ms']:.1f}",
                f"{r['generate_direct']['ms_per_sample']:.1f}",
                "–"
                if default is None
                else f"{default['ms_per_sample']:.1f} ({default['iterations_mean']:.0f} it)",
                f"{r['spsolve_ms'] / r['direct_reuse_ms']:.1f}x",
            ]
        )
    return ("ms per solve (mean over the samples), one BLAS thread; (d): ms per sample of the "
            "whole `generate` call\n\n" + markdown_table(headers, table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256],
                        help="grid sizes s (the family's resolution): (s - 2)^2 unknowns")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--no-generate-default", type=int, nargs="*", default=[], metavar="SIZE",
                        help="sizes at which to skip generate's default (recycling CG) run")
    parser.add_argument("--quick", action="store_true", help="24² and 32², 5 samples")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.samples = [24, 32], 5
    if args.samples < 2:
        parser.error("--samples: at least 2 (one analysis, then reuse)")
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_direct_") as tmp:
        for size in args.sizes:
            print(f"darcy {size}², {args.samples} samples", flush=True)
            rows.append(
                run_size(size, args.samples, size not in args.no_generate_default, Path(tmp))
            )
            r = rows[-1]
            print(
                f"  spsolve {r['spsolve_ms']:.1f} ms, reuse {r['direct_reuse_ms']:.1f} ms "
                f"(first {r['direct_reuse_first_ms']:.1f}), nesdis "
                f"{r['direct_reuse_nesdis_ms']:.1f}, "
                f"scratch {r['cholmod_scratch_ms']:.1f}, generate direct "
                f"{r['generate_direct']['ms_per_sample']:.1f} ms/sample",
                flush=True,
            )
    from sksparse import __version__ as sksparse_version  # fails early if missing

    text = markdown(rows)
    payload = {
        "benchmark": "direct solves of Darcy (lognormal): symbolic analysis reused per pattern",
        "config": {"sizes": args.sizes, "samples": args.samples, "seed": SEED,
                   "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "numpy": np.__version__,
                   "scipy": scipy.__version__, "scikit_sparse": sksparse_version},
        "rows": rows, "markdown": text, "runtime_s": round(time.perf_counter() - started, 1),
    }
    path = write_results("direct_quick" if args.quick else "direct", payload)
    print(text)
    print(f"wrote {path} ({payload['runtime_s']} s)")


if __name__ == "__main__":
    main()
