"""Batched CG on the torch backend against sequential SciPy CG solves.

The 5-point Dirichlet Laplacian on a 256×256 interior grid (n = 65,536) as a torch CSR tensor,
with B = 1, 16 and 64 random right-hand sides solved in one batched CG call, against the same B
systems solved one after another by ``scipy.sparse.linalg.cg``. Both stop at
‖b − A x‖ ≤ rtol·‖b‖ (rtol = 1e-6). The torch side runs on CUDA when there is a GPU, else on the
CPU; on CUDA it also runs float32 and ``check_every=10`` (fewer host syncs).

    python benchmarks/bench_torch_solvers.py [--quick] [--threads N] [--device cpu|cuda]
                                             [--batches 1,16,64] [--repeats R]

``--threads N`` pins torch's threads and those of OpenBLAS/OpenMP (used by SciPy's CG for its
dot products) to N, so that both sides run on the same cores. ``--repeats R`` keeps the best of
R runs on both sides, interleaved (the machines are shared). Writes
benchmarks/results/torch_solvers.json and prints two Markdown tables: the solves, and the cost
per column of the kernels one CG iteration is made of (the product with A, a column-wise dot
product, an axpy), which bounds what batching can win on the device.
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

# NumPy (and so SciPy and _common) only after the pin: OpenBLAS reads it when it loads.
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

from _common import (best_of, load_average, markdown_table, poisson_2d,  # noqa: E402
                     update_readme_section, write_results)


def kernel_costs(torch, A: sp.csr_array, A_t, batch: int, repeats: int = 30) -> dict:
    """Milliseconds per column of the block kernels of one batched CG iteration, on blocks as
    wide as the solver's (its column groups: ``group_width``), against SciPy's matrix-vector
    product (what its CG calls per iteration).

    ``torch_spmm``: ``A @ P`` into a reused block (as the solver makes it: int32 CSR through
    ``addmm(beta=0, out=)``, ``addmv`` for one column); ``torch_dot``: ``pᵀq`` per column
    (a product into a scratch block, then a sum; BLAS's dot for one column); ``torch_axpy``:
    ``X += P·diag(α)``. A CG
    iteration makes one product, two dots and three axpys.
    """
    from pdesuite.solvers.torch_backend.convert import CountedOperator
    from pdesuite.solvers.torch_backend.methods import column_groups, dot_into

    n = A.shape[0]
    sync = torch.cuda.synchronize if A_t.is_cuda else None
    operator = CountedOperator(A_t.__matmul__, n, A_t)
    groups = column_groups(operator, torch.empty(n, batch, dtype=A_t.dtype, device=A_t.device))
    batch = groups[0].stop - groups[0].start
    P = torch.rand(n, batch, dtype=A_t.dtype, device=A_t.device)
    AP, X, S = torch.empty_like(P), torch.zeros_like(P), torch.empty_like(P)
    alpha = torch.full((batch,), 1e-3, dtype=A_t.dtype, device=A_t.device)
    pAp = torch.empty(batch, dtype=A_t.dtype, device=A_t.device)
    product = operator.product_into(P, AP)
    column_dot = dot_into(P, AP, S, pAp)

    def loop(step, columns=batch):
        def run():
            for _ in range(repeats):
                step()
        run()  # warm-up
        return 1e3 * best_of(run, 5, sync=sync) / repeats / columns

    x = np.random.default_rng(1).standard_normal(n)
    return {
        "group_width": batch,
        "torch_spmm": loop(product),
        "torch_dot": loop(column_dot),
        "torch_axpy": loop(lambda: X.addcmul_(P, alpha)),
        "scipy_spmv": loop(lambda: A @ x, columns=1),
    }


def scipy_sequential(
    A: sp.csr_array, B: np.ndarray, rtol: float
) -> tuple[float, list[int], np.ndarray]:
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


def torch_batched(torch, A_t, B_t, rtol: float, check_every: int, repeats: int = 1):
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
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per side, interleaved (best kept)")
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

    rows, records, kernel_rows, kernels = [], [], [], []
    for batch in batches:
        B = B_all[:, :batch]
        scipy_runs: list = []  # (seconds, iterations per column, X) of each SciPy run
        for dtype_name, check_every in variants:
            dtype = getattr(torch, dtype_name)
            A_t = to_torch_sparse(A, device=device, dtype=dtype)
            B_t = torch.from_numpy(B).to(device=device, dtype=dtype)
            torch_time = np.inf
            for _ in range(args.repeats):  # interleaved, so that both sides see the same load
                if len(scipy_runs) < args.repeats:
                    scipy_runs.append(scipy_sequential(A, B, rtol))
                seconds, result = torch_batched(torch, A_t, B_t, rtol, check_every, 1)
                torch_time = min(torch_time, seconds)
            scipy_time = min(run[0] for run in scipy_runs)
            _, scipy_its, X_ref = scipy_runs[0]
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
        # The kernels of a CG iteration, per column, in float64 (the first variant).
        A_t = to_torch_sparse(A, device=device, dtype=torch.float64)
        costs = kernel_costs(torch, A, A_t, batch)
        cg_ms = next(r["torch_ms_per_iteration"] / batch for r in records
                     if r["batch"] == batch and r["dtype"] == "float64")
        scipy_ms = next(r["scipy_ms_per_iteration"] for r in records if r["batch"] == batch)
        kernels.append({"batch": batch, **costs, "torch_cg_ms_per_iteration_per_rhs": cg_ms,
                        "scipy_cg_ms_per_iteration": scipy_ms})
        vector_ms = 2 * costs["torch_dot"] + 3 * costs["torch_axpy"]
        kernel_rows.append([batch, costs["group_width"], costs["torch_spmm"],
                            costs["scipy_spmv"], costs["torch_dot"],
                            costs["torch_axpy"], costs["torch_spmm"] + vector_ms, cg_ms,
                            scipy_ms])

    payload = {
        "problem": f"2D Poisson, 5-point, {m}x{m} interior (n={A.shape[0]}), rtol={rtol}",
        "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "repeats": args.repeats,
        "load_average": load_average(),
        "rows": records,
        "kernels_ms_per_column": kernels,
    }
    path = write_results("torch_solvers" + ("_quick" if args.quick else ""), payload)
    table = markdown_table(
        ["B", "dtype", "check_every", "iterations", "torch s", "torch s/RHS", "SciPy s",
         "SciPy s/RHS", "speed-up", "max rel. diff"], rows)
    kernel_table = markdown_table(
        ["B", "group", "torch SpMM", "SciPy SpMV", "torch dot", "torch axpy",
         "SpMM + 2 dot + 3 axpy", "torch CG iteration", "SciPy CG iteration"], kernel_rows)
    print(table)
    print(kernel_table)
    print(f"wrote {path}")
    if args.readme and not args.quick:
        update_readme_section(
            "bench-torch-solvers",
            f"Device: {payload['device_name']}, torch {payload['torch']}, "
            f"{payload['torch_threads']} threads, best of {args.repeats} (load average "
            f"{payload['load_average']}).\n\n" + table + "\n\nMilliseconds per right-hand "
            "side of the kernels of one CG iteration (torch: on an [n, group] block, the width "
            "the solver iterates on, divided by its width; SciPy: one vector):\n\n"
            + kernel_table)


if __name__ == "__main__":
    main()
