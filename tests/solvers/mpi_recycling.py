"""Recycling Krylov methods as python KSPs under MPI: ``mpiexec -n N python mpi_recycling.py [m]``.

A sequence of 5 slowly varying 2D diffusion matrices ``−∇·(a_t ∇u)`` on an m×m interior grid
(default m = 40, zero Dirichlet, 5-point, harmonic means of ``a_t`` on the faces) with
``log a_t = 2 (f0 + 0.5 t f1)``, ``t = 0, 1/4, …, 1``, for fixed smooth fields ``f0, f1``
given by their sine coefficients. Every rank assembles only its own rows, evaluating the
coefficient only on the grid lines those rows touch, straight into an MPIAIJ matrix, and the
right-hand side ``b_i = 1 + sin(i)`` from global indices: the systems are the same for any
number of ranks. One :class:`PetscSolver` per method solves the whole sequence, so that the
recycle space of its python KSP carries from one matrix to the next:

- ``gcrodr`` (GCRO-DR(30, 10), right Jacobi), ``rcg`` (k = 8, ℓ = 30, Jacobi), rtol 1e-8;
- ``gcrodr`` with ``M="ilu"`` (block Jacobi/ILU(0) under MPI: its counts depend on the
  number of ranks, so only convergence is reported).

Rank 0 prints one line of ``key=value`` pairs; ``run_sequence`` returns the same numbers for
the serial comparison in ``test_petsc_ksp.py``.
"""

from __future__ import annotations

import sys

import numpy as np
from petsc4py import PETSc

from pdesuite.solvers.petsc_backend import PetscSolver

MODES = 4
SEQUENCE = np.linspace(0.0, 1.0, 5)


def _sine_coefficients(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)  # the same numbers on every rank
    weights = 1.0 / (1.0 + np.add.outer(np.arange(MODES), np.arange(MODES))) ** 2
    return rng.normal(size=(MODES, MODES)) * weights, rng.normal(size=(MODES, MODES)) * weights


def log_coefficient(m: int, t: float, lines: np.ndarray) -> np.ndarray:
    """``log a_t`` at the nodes of the grid lines ``lines`` (node index 0..m+1), ``[len, m+2]``."""
    f0, f1 = _sine_coefficients(0)
    x = lines / (m + 1.0)
    y = np.arange(m + 2) / (m + 1.0)
    modes = np.arange(1, MODES + 1)
    sx = np.sin(np.pi * np.outer(x, modes))  # [lines, MODES]
    sy = np.sin(np.pi * np.outer(modes, y))  # [MODES, m+2]
    return 2.0 * (sx @ (f0 + 0.5 * t * f1) @ sy)


def local_diffusion_rows(m: int, t: float, start: int, end: int):
    """CSR arrays (indptr, global columns, values) of rows ``start..end-1`` of the t-th matrix."""
    rows = np.arange(start, end)
    i, j = np.divmod(rows, m)  # unknown (i, j) sits at node (i + 1, j + 1)
    first = int(i.min()) if rows.size else 0
    lines = np.arange(first, (int(i.max()) if rows.size else 0) + 3)  # node lines i .. i+2
    a = np.exp(log_coefficient(m, t, lines))

    def node(di: int, dj: int) -> np.ndarray:
        return a[i + 1 + di - first, j + 1 + dj]

    centre = node(0, 0)
    faces = [2 * centre * node(di, dj) / (centre + node(di, dj))
             for di, dj in ((-1, 0), (0, -1), (0, 1), (1, 0))]
    columns = np.stack([rows - m, rows - 1, rows, rows + 1, rows + m], axis=1)
    values = np.stack([-faces[0], -faces[1], sum(faces), -faces[2], -faces[3]], axis=1)
    valid = np.stack([i > 0, j > 0, np.ones_like(i, dtype=bool), j < m - 1, i < m - 1], axis=1)
    indptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(PETSc.IntType)
    return indptr, columns[valid].astype(PETSc.IntType), values[valid]


def distributed_matrix(m: int, t: float, comm) -> "PETSc.Mat":
    n = m * m
    local_rows = PETSc.Sys.splitOwnership(n, comm=comm)[0]
    start = comm.tompi4py().exscan(local_rows) or 0
    return PETSc.Mat().createAIJ(((local_rows, n), (local_rows, n)),
                                 csr=local_diffusion_rows(m, t, start, start + local_rows),
                                 comm=comm)


def run_sequence(m: int = 40, comm=None) -> dict:
    """Solve the sequence with each solver; returns iteration lists and residual checks."""
    comm = PETSc.COMM_WORLD if comm is None else comm
    solvers = {
        "gcrodr": PetscSolver("gcrodr", M="jacobi", rtol=1e-8, comm=comm, restart=30, k=10),
        "rcg": PetscSolver("rcg", M="jacobi", rtol=1e-8, comm=comm, k=8, ell=30),
        "gcrodr_ilu": PetscSolver("gcrodr", M="ilu", rtol=1e-8, comm=comm, restart=30, k=10),
    }
    out: dict = {name: [] for name in solvers}
    worst = 0.0
    converged = True
    for t in SEQUENCE:
        A = distributed_matrix(m, t, comm)
        b = A.createVecs("left")
        start, end = b.getOwnershipRange()
        b.setArray(1.0 + np.sin(np.arange(start, end, dtype=float)))
        residual = b.duplicate()
        for name, solver in solvers.items():
            result = solver.solve(A, b)
            A.mult(result.info["x_vec"], residual)
            residual.aypx(-1.0, b)
            worst = max(worst, residual.norm() / b.norm())
            converged = converged and result.converged
            out[name].append(result.iterations)
            result.info["x_vec"].destroy()
        out["recycle_dim"] = solvers["gcrodr"].python_ksp.space.dim
        residual.destroy()
        b.destroy()
        A.destroy()
    for solver in solvers.values():
        solver.close()
    out["converged"] = converged
    out["max_relative_residual"] = worst
    out["ranks"] = comm.getSize()
    return out


def main(m: int) -> None:
    out = run_sequence(m)
    if PETSc.COMM_WORLD.getRank() == 0:
        fields = {key: (",".join(map(str, value)) if isinstance(value, list) else value)
                  for key, value in out.items()}
        fields["max_relative_residual"] = f"{out['max_relative_residual']:.3e}"
        print(" ".join(f"{key}={value}" for key, value in fields.items()), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
