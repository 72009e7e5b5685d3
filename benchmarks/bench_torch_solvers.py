"""Batched CG on the torch backend against sequential SciPy CG solves.

The 5-point Dirichlet Laplacian on a 256×256 interior grid (n = 65,536) as a torch CSR tensor,
with B = 1, 16 and 64 random right-hand sides solved in one batched CG call, against the same B
systems solved one after another by ``scipy.sparse.linalg.cg``. Both stop at
‖b − A x‖ ≤ rtol·‖b‖ (rtol = 1e-6). The torch side runs on CUDA when there is a GPU, else on the
CPU; on CUDA it also runs float32 and ``check_every=10`` (fewer host syncs).

    python benchmarks/bench_torch_solvers.py [--quick] [--threads N] [--device cpu|cuda]
                                             [--batches 1,16,64] [--repeats R]

``--threads N`` pins torch's threads and those of OpenBLAS/OpenMP (used by SciPy's CG for its
dot products) to N, so that both sides run on the same cores. Writes
benchmarks/results/torch_solvers.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _pin_blas_threads_from_argv() -> None:
    # OpenBLAS reads its thread count once, when NumPy is first imported: set it before that.
    if "--threads" in sys.argv[:-1]:
        threads = sys.argv[sys.argv.index("--threads") + 1]
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = threads


_pin_blas_threads_from_argv()

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

from _common import markdown_table, update_readme_section, write_results  # noqa: E402


def poisson_2d(m: int) -> sp.csr_array:
    """Dirichlet 5-point Laplacian on an m×m interior grid, unscaled (n = m²)."""
    T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(m, m))
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(T, eye) + sp.kron(eye, T))


def scipy_sequential(A: sp.csr_array, B: np.ndarray, rtol: float) -> tuple[float, list[int], np.ndarray]:
    """(seconds, iterations per column, solutions [n, B]) of B one-by-one SciPy CG solves."""
    X = np.empty_like(B)
    iterations = []
    start = time.perf_counter()
    for j in range(B.shape[1]):
        count = [0]

        def tick(_x, count=count):
            count[0] += 1

        X[:, j], info = spla.cg(A, B[:, j], rtol=rtol, atol=0.0, maxiter=100_000, callback=tick)
        if info != 0:
            raise RuntimeError(f"scipy cg did not converge on column {j} (info={info})")
        iterations.append(count[0])
    return time.perf_counter() - start, iterations, X


def torch_batched(torch, A_t, B_t, rtol: float, check_every: int, repeats: int):
    """(best seconds, result) of the batched torch CG; the device is synchronised around it."""
    from pdesuite.solvers.torch_backend import solve

    solve(A_t, B_t, method="cg", rtol=rtol, maxiter=5)  # warm-up: kernels, allocator
    best, result = np.inf, None
    for _ in range(repeats):
        if B_t.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = solve(A_t, B_t, method="cg", rtol=rtol, maxiter=100_000, check_every=check_every)
        if B_t.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64×64 grid, to check the script runs")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=1, help="timed torch runs (best kept)")
    parser.add_argument("--batches", default=None, help="comma-separated B (default 1,16,64)")
    parser.add_argument("--readme", action="store_true", help="write the README table")
    args = parser.parse_args()

    import torch

    from pdesuite.solvers.torch_backend import to_torch_sparse

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    m = 64 if args.quick else 256
    rtol = 1e-6
    if args.batches:
        batches = tuple(int(value) for value in args.batches.split(","))
    else:
        batches = (1, 4) if args.quick else (1, 16, 64)
    A = poisson_2d(m)
    rng = np.random.default_rng(0)
    B_all = rng.standard_normal((A.shape[0], max(batches)))

    variants = [("float64", 1)]
    if device.type == "cuda":
        variants += [("float64", 10), ("float32", 10)]

    rows, records = [], []
    for batch in batches:
        B = B_all[:, :batch]
        scipy_time, scipy_its, X_ref = scipy_sequential(A, B, rtol)
        for dtype_name, check_every in variants:
            dtype = getattr(torch, dtype_name)
            A_t = to_torch_sparse(A, device=device, dtype=dtype)
            B_t = torch.from_numpy(B).to(device=device, dtype=dtype)
            torch_time, result = torch_batched(torch, A_t, B_t, rtol, check_every, args.repeats)
            X = result.x.double().cpu().numpy()
            true_rel = np.linalg.norm(B - A @ X, axis=0) / np.linalg.norm(B, axis=0)
            diff = np.linalg.norm(X - X_ref, axis=0) / np.linalg.norm(X_ref, axis=0)
            record = {
                "batch": batch,
                "dtype": dtype_name,
                "check_every": check_every,
                "torch_seconds": torch_time,
                "torch_seconds_per_rhs": torch_time / batch,
                "torch_iterations": result.iterations,
                "torch_ms_per_iteration": 1e3 * torch_time / max(result.iterations, 1),
                "torch_converged": result.converged,
                "torch_max_true_relative_residual": float(true_rel.max()),
                "scipy_seconds": scipy_time,
                "scipy_seconds_per_rhs": scipy_time / batch,
                "scipy_iterations_mean": float(np.mean(scipy_its)),
                "scipy_ms_per_iteration": 1e3 * scipy_time / sum(scipy_its),
                "speedup": scipy_time / torch_time,
                "max_relative_difference_to_scipy": float(diff.max()),
                "max_iteration_difference": int(np.max(np.abs(
                    np.asarray(result.info["iterations_per_column"]) - np.asarray(scipy_its)))),
            }
            records.append(record)
            rows.append([batch, dtype_name, check_every, result.iterations, torch_time,
                         torch_time / batch, scipy_time, scipy_time / batch, record["speedup"],
                         record["max_relative_difference_to_scipy"]])
            print(f"B={batch:3d} {dtype_name} check_every={check_every}: torch {torch_time:.3f}s "
                  f"({result.iterations} it), scipy {scipy_time:.3f}s, "
                  f"speedup {record['speedup']:.2f}x", flush=True)

    payload = {
        "problem": f"2D Poisson, 5-point, {m}x{m} interior (n={A.shape[0]}), rtol={rtol}",
        "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "rows": records,
    }
    path = write_results("torch_solvers" + ("_quick" if args.quick else ""), payload)
    table = markdown_table(
        ["B", "dtype", "check_every", "iterations", "torch s", "torch s/RHS", "SciPy s",
         "SciPy s/RHS", "speed-up", "max rel. diff"], rows)
    print(table)
    print(f"wrote {path}")
    if args.readme and not args.quick:
        update_readme_section("bench-torch-solvers", f"Device: {payload['device_name']}, torch "
                              f"{payload['torch']}, {payload['torch_threads']} threads.\n\n" + table)


if __name__ == "__main__":
    main()
