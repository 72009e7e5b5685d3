"""The PETSc backend against native petsc4py, per solve and per iteration.

Problems, n = 65,536 (256² interior nodes, 5-point, zero Dirichlet, built with SciPy):
- ``poisson``: the unscaled 2D Laplacian;
- ``darcy``: −∇·(a∇u) with a lognormal coefficient a = exp(g), g a Gaussian random field
  (unit variance, correlation length 0.1, seed 0), harmonic means on the faces.
Right-hand side: ones. rtol = 1e-8, atol = 0.

For each problem and each configuration (CG and GMRES(40), without a PC and with Jacobi;
GMRES left-preconditioned as the backend's default, and right-preconditioned with Jacobi) the
script times
- ``native``: a petsc4py KSP configured by hand exactly as ``PetscSolver`` configures it (type,
  PC, side, norm type, restart, tolerances), timing ``ksp.solve`` alone;
- ``native_default``: the same KSP with PETSc's default norm type (preconditioned for CG and
  left GMRES), as a user of petsc4py would write it;
- ``ours``: ``PetscSolver.solve(mat, b)`` on the same Mat with a NumPy ``b`` — everything the
  backend adds: wrapping b, the initial-guess vector, ‖b‖, the true-residual check, the copy
  of x into NumPy and the SolveResult;
- ``ours_from_scipy`` and ``native_from_scipy``: end to end from the SciPy matrix, conversion
  and PC set-up included (``to_petsc_mat`` + solve against createAIJ + setOperators + solve).
The PC is set up once before the steady-state timings (the same Mat keeps its set-up). Each
timing is the best of ``--repeats`` runs, interleaved, so that the load of a shared machine
shows as little as possible. A last measurement on a 100-unknown system isolates the
backend's fixed cost per solve call (``fixed_overhead_n100``). CG runs to convergence; GMRES(40) is
capped at ``--gmres-maxiter`` (400) iterations, which gives its per-iteration time without minutes
of restarts. SciPy's cg and gmres(40) run on the same matrices for reference (per matvec).

    python benchmarks/bench_petsc.py [--repeats 11] [--gmres-maxiter 400] [--quick]

Writes benchmarks/results/petsc.json, including PETSc's configure options.
"""

from __future__ import annotations


# PETSc runs single-threaded; so does the SciPy reference, which on a loaded machine with
# threaded BLAS otherwise measured spin-waiting threads instead of cg.

import argparse
import gc
import re
import time
from pathlib import Path
from typing import Any, Callable

from _common import poisson_2d, markdown_table, update_readme_section, write_results

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from petsc4py import PETSc

from pdesuite.solvers.petsc_backend import PetscSolver, to_petsc_mat, to_petsc_vec

RTOL = 1e-8


# --------------------------------------------------------------------------------------------
# problems


def lognormal_field(s: int, correlation: float, seed: int) -> np.ndarray:
    """exp(g) on an s×s node grid of the unit square, g Gaussian with a Gaussian covariance."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((s, s))
    k = np.fft.fftfreq(s) * s  # cycles per unit length
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    spectrum = np.exp(-0.5 * (2 * np.pi * correlation) ** 2 * k2)
    g = np.fft.ifft2(np.fft.fft2(white) * np.sqrt(spectrum)).real
    g = (g - g.mean()) / g.std()
    return np.exp(g)


def darcy_2d(m: int, correlation: float = 0.1, seed: int = 0) -> sp.csr_array:
    """−∇·(a∇u), unscaled 5-point stencil, a lognormal on the (m+2)² nodes incl. boundary."""
    a = lognormal_field(m + 2, correlation, seed)
    ax = 2 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])  # face between nodes i and i+1
    ay = 2 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])
    inner = slice(1, m + 1)
    west, east = ax[0:m, inner], ax[1:m + 1, inner]
    south, north = ay[inner, 0:m], ay[inner, 1:m + 1]
    index = np.arange(m * m).reshape(m, m)
    rows = [index.ravel()]
    cols = [index.ravel()]
    vals = [(west + east + south + north).ravel()]
    for face, di, dj in ((west, -1, 0), (east, 1, 0), (south, 0, -1), (north, 0, 1)):
        i, j = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
        ni, nj = i + di, j + dj
        inside = (ni >= 0) & (ni < m) & (nj >= 0) & (nj < m)
        rows.append(index[i[inside], j[inside]])
        cols.append(index[ni[inside], nj[inside]])
        vals.append(-face[inside])
    A = sp.csr_array(
        sp.coo_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(m * m, m * m),
        )
    )
    # SciPy chose int64 indices for the COO input; PETSc (and the Laplacian) use int32.
    A.indices, A.indptr = A.indices.astype(np.int32), A.indptr.astype(np.int32)
    return A


# --------------------------------------------------------------------------------------------
# native petsc4py, configured by hand


def native_ksp(mat: "PETSc.Mat", method: str, pc: str, side: str, maxiter: int,
               same_norm: bool) -> "PETSc.KSP":
    ksp = PETSc.KSP().create()
    ksp.setOperators(mat)
    ksp.setType(method)
    ksp.getPC().setType(pc)
    if method == "gmres":
        ksp.setGMRESRestart(40)
    ksp.setPCSide(PETSc.PC.Side.RIGHT if side == "right" else PETSc.PC.Side.LEFT)
    if same_norm and (method == "cg" or side == "right"):
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
    ksp.setTolerances(rtol=RTOL, atol=0.0, divtol=1e5, max_it=maxiter)
    ksp.setUp()
    return ksp


def best_of(repeats: int, runs: dict[str, Callable[[], int]]) -> dict[str, tuple[float, int]]:
    """Interleaved best-of timings: name → (seconds, iterations)."""
    best = {name: (np.inf, 0) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            gc.collect()
            t0 = time.perf_counter()
            iterations = run()
            elapsed = time.perf_counter() - t0
            if elapsed < best[name][0]:
                best[name] = (elapsed, iterations)
    return best


def scipy_reference(A: sp.csr_array, b: np.ndarray, method: str, iterations: int) -> float:
    """Seconds per matvec of SciPy's cg / gmres(40) without a preconditioner."""
    matvecs = [0]

    def matvec(v):
        matvecs[0] += 1
        return A @ v

    op = spla.LinearOperator(A.shape, matvec=matvec, dtype=float)
    best = np.inf
    for _ in range(5):
        matvecs[0] = 0
        t0 = time.perf_counter()
        if method == "cg":
            spla.cg(op, b, rtol=1e-14, maxiter=iterations)
        else:
            spla.gmres(op, b, rtol=1e-14, restart=40, maxiter=max(1, iterations // 40))
        best = min(best, (time.perf_counter() - t0) / matvecs[0])
    return best


def fixed_overhead(repeats: int) -> dict[str, float]:
    """Seconds that PetscSolver.solve adds to one KSPSolve, on a 100-unknown system.

    The solve itself is a few microseconds there, so the difference is the backend's own cost
    per call (wrapping b, ‖b‖, the true-residual matvec, the NumPy copy of x, the result).
    """
    A = poisson_2d(10)
    b = np.ones(100)
    mat, b_vec = to_petsc_mat(A), to_petsc_vec(b)
    ksp = native_ksp(mat, "cg", "jacobi", "left", 10_000, same_norm=True)
    x = mat.createVecs("right")
    solver = PetscSolver("cg", M="jacobi", rtol=RTOL)
    solver.solve(mat, b)

    def per_call(run: Callable[[], Any], calls: int = 2000) -> float:
        best = np.inf
        for _ in range(max(repeats, 3)):
            t0 = time.perf_counter()
            for _ in range(calls):
                run()
            best = min(best, (time.perf_counter() - t0) / calls)
        return best

    def native() -> None:
        x.zeroEntries()
        ksp.solve(b_vec, x)

    native_s = per_call(native)
    ours_s = per_call(lambda: solver.solve(mat, b))
    ours_scipy_s = per_call(lambda: solver.solve(A, b), 500)
    solver.close()
    return {"native_us": 1e6 * native_s, "ours_mat_us": 1e6 * ours_s,
            "ours_scipy_us": 1e6 * ours_scipy_s, "overhead_us": 1e6 * (ours_s - native_s),
            "iterations": ksp.getIterationNumber()}


def petsc_configuration() -> dict[str, Any]:
    import petsc

    variables = Path(petsc.get_petsc_dir()) / "lib" / "petsc" / "conf" / "petscvariables"
    found: dict[str, Any] = {"version": ".".join(map(str, PETSc.Sys.getVersion())),
                             "petscvariables": str(variables)}
    if variables.exists():
        text = variables.read_text()
        for key in ("CONFIGURE_OPTIONS", "CC_FLAGS", "PCC_FLAGS"):
            match = re.search(rf"^{key} = (.*)$", text, re.M)
            if match:
                found[key] = match.group(1).strip()
    found["scalar"] = np.dtype(PETSc.ScalarType).name
    found["index"] = np.dtype(PETSc.IntType).name
    return found


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--gmres-maxiter", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="m = 64 and 2 repeats (a smoke run)")
    parser.add_argument("--readme", action="store_true", help="write the README table")
    args = parser.parse_args()
    m = 64 if args.quick else 256
    repeats = 2 if args.quick else args.repeats

    problems = {"poisson": poisson_2d(m), "darcy": darcy_2d(m)}
    configurations = [("cg", "none", "left"), ("cg", "jacobi", "left"), ("gmres", "none", "left"),
                      ("gmres", "jacobi", "left"), ("gmres", "jacobi", "right")]
    rows, records = [], []
    for problem, A in problems.items():
        b = np.ones(A.shape[0])
        mat = to_petsc_mat(A)
        b_vec = to_petsc_vec(b)
        for method, pc, side in configurations:
            maxiter = args.gmres_maxiter if method == "gmres" else 10_000
            ksp_same = native_ksp(mat, method, pc, side, maxiter, same_norm=True)
            ksp_default = native_ksp(mat, method, pc, side, maxiter, same_norm=False)
            x = mat.createVecs("right")
            solver = PetscSolver(method, M=pc, rtol=RTOL, maxiter=maxiter,
                                 **({"restart": 40, "side": side} if method == "gmres" else {}))
            solver.solve(mat, b)  # PC set-up outside the steady-state timings

            def run_native(ksp=ksp_same):
                x.zeroEntries()
                ksp.solve(b_vec, x)
                return ksp.getIterationNumber()

            def run_native_default(ksp=ksp_default):
                x.zeroEntries()
                ksp.solve(b_vec, x)
                return ksp.getIterationNumber()

            results = {}

            def run_ours():
                results["ours"] = solver.solve(mat, b)
                return results["ours"].iterations

            def run_native_from_scipy():
                fresh = PETSc.Mat().createAIJ(A.shape, csr=(A.indptr, A.indices, A.data))
                ksp = native_ksp(fresh, method, pc, side, maxiter, same_norm=True)
                y = fresh.createVecs("right")
                ksp.solve(b_vec, y)
                its = ksp.getIterationNumber()
                ksp.destroy(), fresh.destroy(), y.destroy()
                return its

            def run_ours_from_scipy():
                return solver.solve(A, b).iterations

            timings = best_of(repeats, {
                "native": run_native, "native_default": run_native_default, "ours": run_ours,
                "native_from_scipy": run_native_from_scipy, "ours_from_scipy": run_ours_from_scipy,
            })
            ours = results["ours"]
            record = {
                "problem": problem, "n": A.shape[0], "method": method, "pc": pc, "side": side,
                "restart": 40 if method == "gmres" else None, "rtol": RTOL, "maxiter": maxiter,
                "reason": ours.reason.name, "attempts": ours.info["attempts"],
                "norm_type": ours.info["norm_type"],
            }
            for name, (seconds, its) in timings.items():
                record[f"{name}_s"] = seconds
                record[f"{name}_iterations"] = its
                record[f"{name}_per_iteration_ms"] = 1e3 * seconds / max(its, 1)
            record["ratio_ours_to_native"] = timings["ours"][0] / timings["native"][0]
            record["ratio_ours_to_native_default"] = (
                timings["ours"][0] / timings["native_default"][0]
            )
            record["ratio_from_scipy"] = (
                timings["ours_from_scipy"][0] / timings["native_from_scipy"][0]
            )
            records.append(record)
            rows.append(
                [
                    problem,
                    f"{method}/{pc}" + ("/right" if side == "right" else ""),
                    timings["native"][1],
                    timings["ours"][1],
                    record["native_per_iteration_ms"],
                    record["ours_per_iteration_ms"],
                    record["native_s"],
                    record["ours_s"],
                    record["ratio_ours_to_native"],
                    record["native_default_s"],
                    record["ratio_from_scipy"],
                ]
            )
            print(rows[-1], flush=True)
            solver.close()
            ksp_same.destroy()
            ksp_default.destroy()

    scipy_rows = []
    for problem, A in problems.items():
        b = np.ones(A.shape[0])
        scipy_rows.append(
            {
                "problem": problem,
                "scipy_cg_ms_per_matvec": 1e3 * scipy_reference(A, b, "cg", 300),
                "scipy_gmres40_ms_per_matvec": 1e3 * scipy_reference(A, b, "gmres", 200),
            }
        )
        print(scipy_rows[-1], flush=True)

    overhead = fixed_overhead(repeats)
    print({"fixed_overhead": overhead}, flush=True)

    table = markdown_table(
        ["problem", "method/PC", "its native", "its ours", "ms/it native", "ms/it ours",
         "native s", "ours s", "ours/native", "native (default norm) s", "from SciPy: ours/native"],
        rows)
    print(table)
    path = write_results("petsc", {"petsc": petsc_configuration(), "m": m, "repeats": repeats,
                                   "results": records, "scipy_reference": scipy_rows,
                                   "fixed_overhead_n100": overhead,
                                   "table": table})
    print(f"wrote {path}")
    if args.readme and not args.quick:
        update_readme_section("bench-petsc", table)


if __name__ == "__main__":
    main()
