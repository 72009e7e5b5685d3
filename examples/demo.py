"""The main job on its embedded default: `make demo`.

1. Discretization check. Assembles −∇·(a∇u) = f with a variable coefficient a(x, y) = 1 + x² + y and
the manufactured solution u(x, y) = sin(πx)·eʸ (non-zero Dirichlet data), with finite differences on
the unit square and with P1/P2 finite elements on the L-shaped domain. Each system is solved with
the suite's own CG (IC-preconditioned), checked against SciPy's sparse direct solver, and the error
against the exact solution is printed for two resolutions together with the observed order. Writes
out/demo.png.

2. Dataset. Generates a Darcy dataset (−∇·(a∇u) = 1, a = exp(GRF), 32×32) with the SKR
   pipeline: greedy sorting of the coefficient fields, then one recycling CG solver along the
   sorted order. Writes out/darcy.h5 (the HDF5 schema of the README).

3. Operator. Trains a small FNO on that dataset (CPU, or the GPU when there is one) and prints
   its relative L2 error on the test split. Writes out/fno/ (checkpoints, metrics, a PNG).

Run again, every stage reuses what is already there: the dataset when it is complete and of
the same configuration, the training from its last checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse.linalg as spla

from pdesuite.discretization import (
    Dirichlet,
    Grid,
    LagrangeSpace,
    Mesh,
    fd,
    l2_error,
    poisson_system,
)
from pdesuite.solvers import solve

OUT = Path("out")


def exact(p: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * p[:, 0]) * np.exp(p[:, 1])


def coefficient(p: np.ndarray) -> np.ndarray:
    return 1.0 + p[:, 0] ** 2 + p[:, 1]


def source(p: np.ndarray) -> np.ndarray:
    """f = −∇·(a∇u) for the u and a above, by hand."""
    x, y = p[:, 0], p[:, 1]
    s, c, e = np.sin(np.pi * x), np.cos(np.pi * x), np.exp(y)
    a = 1.0 + x**2 + y
    div = (2 * x * np.pi * c * e - a * np.pi**2 * s * e) + (1.0 * s * e + a * s * e)
    return -div


def solve_and_check(system, label: str) -> tuple[np.ndarray, dict]:
    t0 = time.perf_counter()
    result = solve(system.A, system.b, method="cg", M="ic", rtol=1e-10, raise_on_failure=True)
    reference = spla.spsolve(system.A.tocsc(), system.b)
    agreement = np.linalg.norm(result.x - reference) / np.linalg.norm(reference)
    print(f"  {label:<28} n={system.n_free:>7,}  CG+IC: {result.iterations:>4} it, "
          f"{time.perf_counter() - t0:6.2f} s, |x − x_direct|/|x_direct| = {agreement:.1e}")
    return system.expand(result.x), {"iterations": result.iterations}


def run_fd(s: int):
    grid = Grid((s, s))
    x, y = grid.mesh()
    system = fd.diffusion(grid, coefficient(grid.points()).reshape(grid.shape),
                          source=source(grid.points()).reshape(grid.shape), bc=Dirichlet(exact))
    u, _ = solve_and_check(system, f"FD 5-point, {s}×{s}")
    error = np.sqrt(np.mean((u - exact(grid.points())) ** 2))
    return grid, u, error


def run_fe(n: int, degree: int):
    mesh = Mesh.l_shape(n)
    space = LagrangeSpace(mesh, degree)
    system = poisson_system(space, coefficient=coefficient, source=source, bc=Dirichlet(exact))
    u, _ = solve_and_check(system, f"P{degree} on the L-shape, n={n}")
    return space, u, l2_error(space, u, exact)


def check_discretization() -> None:
    print("== 1. discretization: −∇·(a∇u) = f, a = 1 + x² + y, u = sin(πx)·eʸ\n")
    rows = []
    fd_runs = [run_fd(s) for s in (33, 65)]
    order = np.log2(fd_runs[0][2] / fd_runs[1][2])
    rows.append(("FD (grid RMS error)", fd_runs[0][2], fd_runs[1][2], order, 2))
    fe_runs = {}
    for degree, expected in ((1, 2), (2, 3)):
        runs = [run_fe(n, degree) for n in (8, 16)]
        fe_runs[degree] = runs[-1]
        rows.append(
            (
                f"P{degree} FE (L² error)",
                runs[0][2],
                runs[1][2],
                np.log2(runs[0][2] / runs[1][2]),
                expected,
            )
        )

    print(f"\n{'discretization':<22}{'coarse':>12}{'fine':>12}{'order':>8}{'expected':>10}")
    for name, coarse, fine, observed, expected in rows:
        print(f"{name:<22}{coarse:>12.3e}{fine:>12.3e}{observed:>8.2f}{expected:>10}")

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    grid, u_fd, _ = fd_runs[-1]
    im = axes[0].imshow(u_fd.reshape(grid.shape).T, origin="lower", extent=(0, 1, 0, 1))
    axes[0].set_title("FD solution, 65×65")
    fig.colorbar(im, ax=axes[0])
    for ax, degree in zip(axes[1:], (1, 2)):
        space, u_fe, _ = fe_runs[degree]
        mesh = space.mesh
        vertex_values = u_fe[: mesh.n_vertices]
        error = np.abs(vertex_values - exact(mesh.points))
        tri = mesh.cells if mesh.cell_type == "triangle" else None
        tc = ax.tripcolor(mesh.points[:, 0], mesh.points[:, 1], tri, error, shading="gouraud")
        ax.set_aspect("equal")
        ax.set_title(f"P{degree} on the L-shape: |u_h − u| at vertices", fontsize=10)
        fig.colorbar(tc, ax=ax)
    fig.tight_layout()
    path = OUT / "demo.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"\nwrote {path}")


DATASET = dict(family="darcy", n=300, resolution=32, seed=0)
TRAINING = ["--epochs", "25", "--batch-size", "20", "--lr", "3e-3", "--step-size", "10",
            "--model-arg", "modes=8", "--model-arg", "width=24", "--model-arg", "padding=4"]


def generate_dataset() -> Path:
    import h5py

    from pdesuite.datasets import generate

    print(
        f"\n== 2. dataset: {DATASET['n']} Darcy problems at {DATASET['resolution']}², sorted + "
        "recycling CG\n"
    )
    path = generate(DATASET["family"], DATASET["n"], out=OUT / "darcy.h5", order="sorted",
                    sort_method="greedy", solver="recycle", seed=DATASET["seed"],
                    resolution=DATASET["resolution"])
    with h5py.File(path, "r") as f:
        iterations = f["solver/iterations"][:]
        converged = f["solver/converged"][:]
        print(f"  {path}: inputs {f['inputs'].shape}, outputs {f['outputs'].shape}; "
              f"sorting {f.attrs['sort_time']:.3f} s; mean {iterations.mean():.1f} iterations, "
              f"{int((~converged.astype(bool)).sum())} not converged")
    return path


def train_operator(data: Path) -> None:
    from pdesuite.cli import main as cli

    run = OUT / "fno"
    print("\n== 3. operator: FNO on the dataset\n")
    resume = ["--resume"] if (run / "checkpoint.pt").is_file() else []
    status = cli(["train", "fno", "--data", str(data), "--out", str(run), *TRAINING, *resume])
    if status != 0:
        raise SystemExit(status)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    check_discretization()
    train_operator(generate_dataset())


if __name__ == "__main__":
    main()
