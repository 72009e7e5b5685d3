"""Assembly time and peak memory of the discretization layer.

FD: −∇·(a∇u) with a variable coefficient on s×s node grids (s = 1024, 2048), against SciPy
alone building the constant-coefficient 5-point Laplacian with Kronecker products, in the same
run. FE: P1 and P2 stiffness with a variable coefficient on about 10⁶ triangles.

Peak memory is what tracemalloc sees allocated by the assembly call (NumPy reports its buffers
to tracemalloc), measured in a second call so that timing runs untraced.

    python benchmarks/bench_assembly.py [--quick]

Writes benchmarks/results/assembly.json and the README table between the assembly markers.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from typing import Callable

from _common import markdown_table, update_readme_section, write_results

import numpy as np
import scipy.sparse as sp

from pdesuite.discretization import Grid, LagrangeSpace, Mesh, fd, stiffness_matrix


def measure(build: Callable[[], object], repeats: int) -> tuple[float, float, int]:
    """(best seconds, peak MiB, nnz) of ``build()``."""
    best = np.inf
    nnz = 0
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = build()
        best = min(best, time.perf_counter() - t0)
        nnz = out.nnz
        del out
    gc.collect()
    tracemalloc.start()
    out = build()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    del out
    return best, peak, nnz


def kron_laplacian(s: int) -> sp.csr_array:
    m = s - 2
    h = 1.0 / (s - 1)
    T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(m, m)) / h**2
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(T, eye) + sp.kron(eye, T))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, to check the script runs"
    )
    args = parser.parse_args()
    sizes = (128, 256) if args.quick else (1024, 2048)
    fe_cells = 2 * 64 * 64 if args.quick else 2 * 708 * 708  # ≈ 10⁶ triangles
    repeats = 1 if args.quick else 3

    rows = []
    records = []
    for s in sizes:
        grid = Grid((s, s))
        x, y = grid.mesh()
        coefficient = np.exp(np.sin(3 * x) * np.cos(2 * y))
        t_kron, m_kron, nnz_kron = measure(lambda: kron_laplacian(s), repeats)
        t_fd, m_fd, nnz_fd = measure(lambda: fd.diffusion(grid, coefficient).A, repeats)
        records.append({"case": f"FD diffusion {s}²", "unknowns": (s - 2) ** 2, "nnz": nnz_fd,
                        "seconds": t_fd, "peak_mib": m_fd, "kron_seconds": t_kron,
                        "kron_peak_mib": m_kron, "ratio_to_kron": t_fd / t_kron})
        rows.append([f"FD −∇·(a∇u), {s}²", f"{(s - 2) ** 2:,}", f"{nnz_fd:,}", t_fd, m_fd,
                     t_kron, f"{t_fd / t_kron:.2f}×"])

    n = int(round(np.sqrt(fe_cells / 2)))
    mesh = Mesh.rectangle(n, n, cell_type="triangle")
    def coefficient_fn(p):
        return 1.0 + p[:, 0] ** 2 + p[:, 1]
    for degree in (1, 2):
        # The first assembly on a space also builds its sparsity pattern (cached on the space);
        # both numbers are reported.
        gc.collect()
        t0 = time.perf_counter()
        stiffness_matrix(LagrangeSpace(mesh, degree), coefficient_fn)
        t_first = time.perf_counter() - t0
        space = LagrangeSpace(mesh, degree)
        t_fe, m_fe, nnz_fe = measure(lambda: stiffness_matrix(space, coefficient_fn), repeats)
        records.append({"case": f"P{degree} stiffness", "cells": mesh.n_cells, "dofs": space.ndofs,
                        "nnz": nnz_fe, "seconds": t_fe, "first_call_seconds": t_first,
                        "peak_mib": m_fe})
        rows.append([f"P{degree} stiffness, a(x), {mesh.n_cells:,} triangles", f"{space.ndofs:,}",
                     f"{nnz_fe:,}", f"{t_fe:.3g} (first call {t_first:.3g})", m_fe, "", ""])

    path = write_results("assembly", {"records": records, "quick": args.quick})
    table = markdown_table(
        [
            "operator", "unknowns", "nnz", "time (s)", "peak (MiB)", "SciPy kron Laplacian (s)",
            "ours ÷ kron",
        ],
        rows,
    )
    print(table)
    print(f"wrote {path}")
    if not args.quick:
        update_readme_section("bench-assembly", table + (
            "\n\nBest of 3 runs; peak = memory allocated during the call (tracemalloc). The FE "
            "peak is that of a repeat call, after the first built the sparsity pattern. "
            f"Measured {time.strftime('%Y-%m-%d')} on 2 cores, one BLAS thread."))


if __name__ == "__main__":
    main()
