"""Time of one forward SOR sweep on the unscaled 2D 5-point Poisson matrix, per implementation.

Grids of m×m interior unknowns (m = 256, 512, 1024 by default), ω = 1.5. A sweep is
``x ← (D/ω + L)⁻¹ (b − (U + (1 − 1/ω) D) x)``, the product with the upper part included. Each
implementation is one function ``impl(A, omega) -> (sweep, order)`` or ``None`` when it cannot
run here, where ``sweep(b, x)`` returns the new x and ``order`` is the permutation its vectors
use (None for natural order). Set-up (factorisation, reordering) is timed separately. Add a
column by adding a function to ``IMPLEMENTATIONS``.

- ``superlu``: pdesuite's default — SuperLU's C triangular solve of the already triangular
  ``D/ω + L`` (``SORSplitting``).
- ``spsolve_triangular``: SciPy's sparse triangular solver.
- ``wavefront``: level scheduling over the anti-diagonals of the grid (the natural order's
  independent sets), one vectorised update per level, in NumPy; grid matrices only.
- ``redblack``: pdesuite's red–black ordering, two vectorised half-sweeps. A different
  iteration (lexicographic SOR of the permuted matrix); shown for its cost per sweep.
- ``petsc``: ``MatSOR`` through petsc4py (forward sweep, zero-initial-guess flag off), when
  petsc4py is importable; ``-mat_no_inode`` as Learning to Relax advises for ω ≠ 1.

Natural-order implementations are checked against ``superlu`` on the same sweep.

    python benchmarks/bench_sor.py [--sizes 256 512 1024] [--omega 1.5] [--quick]

Writes benchmarks/results/sor.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from functools import partial
from typing import Callable, Optional

from _common import poisson_2d, markdown_table, update_readme_section, write_results

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.solvers.relaxation import SORSplitting

Sweep = Callable[[np.ndarray, np.ndarray], np.ndarray]
Implementation = Callable[[sp.csr_array, float], Optional[tuple[Sweep, Optional[np.ndarray]]]]


# --------------------------------------------------------------------------------------------
# implementations


def superlu(A: sp.csr_array, omega: float):
    splitting = SORSplitting(A, omega)
    splitting.forward_solve(np.zeros(A.shape[0]))  # builds the factor inside the set-up time
    return (lambda b, x: splitting.forward_solve(splitting.forward_rhs(b, x))), None


def spsolve_triangular(A: sp.csr_array, omega: float):
    d = A.diagonal()
    lower = sp.csr_array(sp.tril(A, k=-1) + sp.diags_array(d / omega))
    rest = sp.csr_array(sp.triu(A, k=1) + sp.diags_array((1 - 1 / omega) * d))
    return (lambda b, x: spla.spsolve_triangular(lower, b - rest @ x, lower=True)), None


def wavefront(A: sp.csr_array, omega: float):
    n = A.shape[0]
    m = int(round(np.sqrt(n)))
    if m * m != n:
        return None
    i, j = np.divmod(np.arange(n), m)
    level = i + j  # row (i, j) needs only (i−1, j) and (i, j−1): the previous anti-diagonal
    order = np.argsort(level, kind="stable")
    starts = np.searchsorted(level[order], np.arange(2 * m))
    d = A.diagonal()
    strict_lower = sp.csr_array(sp.tril(A, k=-1))
    rest = sp.csr_array(sp.triu(A, k=1) + sp.diags_array((1 - 1 / omega) * d))
    levels = []
    for k in range(2 * m - 1):
        rows = order[starts[k]:starts[k + 1]]
        levels.append((rows, sp.csr_array(strict_lower[rows]), omega / d[rows]))

    def sweep(b, x):
        c = b - rest @ x
        x_new = np.zeros(n)
        for rows, lower_rows, scale in levels:
            x_new[rows] = (c[rows] - lower_rows @ x_new) * scale
        return x_new

    return sweep, None


def redblack(A: sp.csr_array, omega: float):
    splitting = SORSplitting(A, omega, ordering="redblack")
    return (
        lambda b, x: splitting.forward_solve(splitting.forward_rhs(b, x))
    ), splitting.permutation


def petsc(A: sp.csr_array, omega: float):
    try:
        from petsc4py import PETSc
    except ImportError:
        return None
    mat = PETSc.Mat().createAIJ(size=A.shape, csr=(A.indptr.astype(PETSc.IntType),
                                                   A.indices.astype(PETSc.IntType), A.data),
                                comm=PETSc.COMM_SELF)
    mat.setOption(PETSc.Mat.Option.USE_INODES, False)
    mat.assemble()
    b_vec, x_vec = mat.createVecs()
    forward = PETSc.Mat.SORType.FORWARD_SWEEP

    def sweep(b, x):
        b_vec.array[:] = b
        x_vec.array[:] = x
        mat.SOR(b_vec, x_vec, omega=omega, sortype=forward, its=1, lits=1)
        return x_vec.array.copy()

    return sweep, None


IMPLEMENTATIONS: dict[str, Implementation] = {
    "superlu": superlu,
    "spsolve_triangular": spsolve_triangular,
    "wavefront": wavefront,
    "redblack": redblack,
    "petsc": petsc,
}
NATURAL_ORDER = {"superlu", "spsolve_triangular", "wavefront", "petsc"}


# --------------------------------------------------------------------------------------------


def best_time(run: Callable[[], object], repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--omega", type=float, default=1.5)
    parser.add_argument("--only", nargs="+", choices=sorted(IMPLEMENTATIONS), default=None)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, to check the script runs"
    )
    parser.add_argument("--readme", action="store_true", help="write the README table")
    args = parser.parse_args()
    sizes = [32, 64] if args.quick else args.sizes
    names = args.only or list(IMPLEMENTATIONS)

    rows = []
    for m in sizes:
        A = poisson_2d(m)
        n = A.shape[0]
        rng = np.random.default_rng(0)
        b, x = rng.standard_normal(n), rng.standard_normal(n)
        repeats = max(3, int(2e6 // n))
        matvec_s = best_time(lambda: A @ x, repeats)
        reference = None
        for name in names:
            gc.collect()
            t0 = time.perf_counter()
            built = IMPLEMENTATIONS[name](A, args.omega)
            setup_s = time.perf_counter() - t0
            if built is None:
                rows.append({"m": m, "n": n, "implementation": name, "available": False})
                continue
            sweep, order = built
            b_in, x_in = (b, x) if order is None else (b[order], x[order])
            result = sweep(b_in, x_in)
            if name in NATURAL_ORDER:
                if reference is None:
                    reference = result
                error = float(np.abs(result - reference).max() / np.abs(reference).max())
            else:
                error = None
            # The slow ones get fewer repeats; the minimum of a few is stable enough.
            run = partial(sweep, b_in, x_in)
            first = best_time(run, 1)
            sweep_s = min(first, best_time(run, max(1, min(repeats, int(1.0 / max(first, 1e-6))))))
            rows.append(
                {
                    "m": m,
                    "n": n,
                    "nnz": A.nnz,
                    "implementation": name,
                    "available": True,
                    "setup_s": setup_s,
                    "sweep_s": sweep_s,
                    "sweep_in_matvecs": sweep_s / matvec_s,
                    "matvec_s": matvec_s,
                    "max_rel_diff_vs_superlu": error,
                }
            )
            print(
                f"m={m:5d} {name:20s} setup {setup_s:8.4f} s  sweep {sweep_s * 1e3:9.3f} ms "
                f"({sweep_s / matvec_s:5.1f} matvecs)"
                + (f"  diff {error:.1e}" if error is not None else ""),
                flush=True,
            )
            del built, sweep, run

    table = markdown_table(
        ["m", "implementation", "setup (s)", "sweep (ms)", "sweep / matvec"],
        [[r["m"], r["implementation"], r["setup_s"], r["sweep_s"] * 1e3, r["sweep_in_matvecs"]]
         for r in rows if r["available"]])
    print(table)
    path = write_results("sor", {
        "description": "one forward SOR sweep (product with U + (1-1/omega) D included), "
                       "unscaled 2D 5-point Poisson, m x m interior grid",
        "omega": args.omega,
        # The machine is shared: the load says how far the timings are from an idle machine's.
        "load_average_1min_at_end": os.getloadavg()[0],
        "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS"),
        "numpy": np.__version__,
        "scipy": __import__("scipy").__version__,
        "results": rows,
    })
    print(f"wrote {path}")
    if args.readme and not args.quick:
        update_readme_section("bench-sor", table)


if __name__ == "__main__":
    main()
