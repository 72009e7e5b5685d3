"""Solver performance on four PDE problems: ours (NumPy and PETSc backends) against SciPy and
native petsc4py, in one run.

Problems: 2D Poisson 512² and 1024² (5-point, interior unknowns), Darcy −∇·(a∇u)=1 with a
lognormal coefficient at 256², Helmholtz −Δu − k²u = 1 at 128² (indefinite, k = 20).
Methods: CG, PCG with SSOR(ω=1), GMRES(40), GCRO-DR(40, 20); every solve to rtol 1e-6 with a cap
of ``--maxiter`` iterations, so that per-iteration times compare like with like even where a
method does not converge within the cap (the table says which did).

    python benchmarks/bench_solvers.py [--quick] [--readme]

Writes benchmarks/results/solvers.json and, with --readme, the README table.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Callable

from _common import markdown_table, update_readme_section, write_results

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.discretization import Grid, fd
from pdesuite.solvers import solve

RTOL = 1e-6


def lognormal_coefficient(grid: Grid, seed: int = 0) -> np.ndarray:
    """exp of a smooth random field: a sum of 64 random Fourier modes with decaying amplitude."""
    rng = np.random.default_rng(seed)
    x, y = grid.mesh()
    field = np.zeros(grid.shape)
    for i in range(1, 9):
        for j in range(1, 9):
            field += (
                rng.standard_normal()
                * np.sin(np.pi * i * x)
                * np.sin(np.pi * j * y)
                / (i * i + j * j)
            )
    return np.exp(3.0 * field)


def problems(quick: bool) -> dict[str, tuple[sp.csr_array, np.ndarray, bool]]:
    sizes = (130, 258) if quick else (514, 1026)
    out = {}
    for s in sizes:
        system = fd.diffusion(Grid((s, s)), 1.0, source=1.0)
        out[f"Poisson {s - 2}²"] = (system.A, system.b, True)
    s = 66 if quick else 258
    grid = Grid((s, s))
    system = fd.diffusion(grid, lognormal_coefficient(grid), source=1.0)
    out[f"Darcy lognormal {s - 2}²"] = (system.A, system.b, True)
    s = 34 if quick else 130
    system = fd.helmholtz(Grid((s, s)), 20.0, source=1.0)
    out[f"Helmholtz k=20 {s - 2}²"] = (system.A, system.b, False)
    return out


def timed(run: Callable[[], tuple[int, bool]]) -> tuple[float, int, bool]:
    t0 = time.perf_counter()
    iterations, converged = run()
    return time.perf_counter() - t0, iterations, converged


# ------------------------------------------------------------------------------ ours, NumPy backend
def ours(method: str, A, b, maxiter: int) -> Callable[[], tuple[int, bool]]:
    kwargs = {"cg": dict(method="cg"), "pcg-ssor": dict(method="cg", M="ssor"),
              "gmres(40)": dict(method="gmres", restart=40),
              "gcrodr(40,20)": dict(method="gcrodr", restart=40, k=20)}[method]

    def run():
        result = solve(A, b, rtol=RTOL, maxiter=maxiter, **kwargs)
        return result.iterations, result.converged

    return run


# ------------------------------------------------------------------------------ SciPy
def scipy_run(method: str, A, b, maxiter: int) -> Callable[[], tuple[int, bool]] | None:
    if method not in ("cg", "gmres(40)"):
        return None

    def run():
        count = [0]

        def callback(_):
            count[0] += 1

        if method == "cg":
            _, info = spla.cg(A, b, rtol=RTOL, maxiter=maxiter, callback=callback)
        else:
            # SciPy's maxiter counts restart cycles; 'pr_norm' calls back once per inner step.
            _, info = spla.gmres(A, b, rtol=RTOL, restart=40, maxiter=max(1, maxiter // 40),
                                 callback=callback, callback_type="pr_norm")
        return count[0], info == 0

    return run


# ------------------------------------------------------------------------------ PETSc
def petsc_runs(method: str, A, b, maxiter: int):
    """(native petsc4py KSP, our PetscSolver), or None where PETSc has no such method."""
    try:
        from petsc4py import PETSc
        from pdesuite.solvers.petsc_backend import PetscSolver, to_petsc_mat
    except ImportError:
        return None
    spec = {"cg": ("cg", "none", {}), "pcg-ssor": ("cg", "ssor", {}),
            "gmres(40)": ("gmres", "none", {"restart": 40})}.get(method)
    if spec is None:
        return None
    ksp_type, pc_type, options = spec
    mat = to_petsc_mat(A)

    def native():
        ksp = PETSc.KSP().create()
        ksp.setOperators(mat)
        ksp.setType(ksp_type)
        if ksp_type == "gmres":
            ksp.setGMRESRestart(40)
        pc = ksp.getPC()
        if pc_type == "ssor":
            pc.setType("sor")
            options_db = PETSc.Options()
            options_db["pc_sor_symmetric"] = None
            pc.setFromOptions()
            del options_db["pc_sor_symmetric"]
        else:
            pc.setType("none")
        ksp.setTolerances(rtol=RTOL, atol=0.0, max_it=maxiter)
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
        bv = mat.createVecLeft()
        bv.setArray(b)
        xv = mat.createVecRight()
        ksp.solve(bv, xv)
        its, converged = ksp.getIterationNumber(), ksp.getConvergedReason() > 0
        ksp.destroy()
        return its, converged

    def ours_petsc():
        solver = PetscSolver(method=ksp_type, M=pc_type, rtol=RTOL, maxiter=maxiter, **options)
        result = solver.solve(mat, b)
        solver.close()
        return result.iterations, result.converged

    return native, ours_petsc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--readme", action="store_true", help="write the README table")
    parser.add_argument("--maxiter", type=int, default=400)
    args = parser.parse_args()
    maxiter = 100 if args.quick else args.maxiter

    methods = ("cg", "pcg-ssor", "gmres(40)", "gcrodr(40,20)")
    records, rows = [], []
    for name, (A, b, spd) in problems(args.quick).items():
        for method in methods:
            if method in ("cg", "pcg-ssor") and not spd:
                continue
            runners = {
                "ours (NumPy)": ours(method, A, b, maxiter),
                "SciPy": scipy_run(method, A, b, maxiter),
            }
            petsc = petsc_runs(method, A, b, maxiter)
            if petsc is not None:
                runners["PETSc native"], runners["ours (PETSc)"] = petsc
            cells = {}
            for label, run in runners.items():
                if run is None:
                    continue
                run()  # warm-up: caches, first-call imports, PETSc set-up paths
                seconds, iterations, converged = min(
                    (timed(run) for _ in range(2)), key=lambda t: t[0]
                )
                per_it = 1e3 * seconds / max(iterations, 1)
                cells[label] = (per_it, seconds, iterations, converged)
                records.append(
                    {
                        "problem": name,
                        "n": A.shape[0],
                        "method": method,
                        "solver": label,
                        "seconds": seconds,
                        "iterations": iterations,
                        "converged": converged,
                        "ms_per_iteration": per_it,
                    }
                )
                print(f"{name:<22} {method:<14} {label:<13} {iterations:>5} it  {seconds:8.3f} s  "
                      f"{per_it:7.3f} ms/it  {'converged' if converged else 'capped'}", flush=True)

            def fmt(label):
                if label not in cells:
                    return "—"
                per_it, seconds, iterations, converged = cells[label]
                return (
                    f"{per_it:.2f} ms ({iterations}{'' if converged else '+'} it, {seconds:.2f} s)"
                )

            rows.append(
                [name, method]
                + [
                    fmt(label)
                    for label in ("ours (NumPy)", "SciPy", "ours (PETSc)", "PETSc native")
                ]
            )

    path = write_results("solvers", {"records": records, "rtol": RTOL, "maxiter": maxiter,
                                     "quick": args.quick, "loadavg": os.getloadavg()})
    table = markdown_table(
        ["problem", "method", "ours, NumPy", "SciPy", "ours, PETSc", "PETSc native"], rows
    )
    print(table)
    print(f"wrote {path}")
    if args.readme and not args.quick:
        update_readme_section(
            "bench-solvers",
            table + f"\n\nEach cell: time per iteration (iterations, "
            f"total time) to rtol {RTOL:g}, capped at {maxiter} iterations "
            "('+' = the cap was reached).",
        )


if __name__ == "__main__":
    main()
