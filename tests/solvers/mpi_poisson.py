"""A distributed 2D Poisson solve on the PETSc backend: ``mpiexec -n N python mpi_poisson.py [m]``.

Every rank assembles only its own rows of the 5-point Laplacian on an m×m interior grid
(default m = 48, n = m²) straight into a PETSc MPIAIJ matrix, and the right-hand side
``b_i = 1 + sin(i)`` from global indices, so that the system is the same for any number of
ranks. Jacobi-preconditioned CG (rtol 1e-8) solves it through ``PetscSolver``. The same
system is then solved from the global SciPy matrix through ``to_petsc_mat`` (each rank keeps
its ownership range), and once more with a python PC (a global Jacobi preconditioner through
``PythonPC(gather=True)``). Rank 0 prints one line of ``key=value`` pairs for the test to compare
with the serial run.
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.sparse as sp
from petsc4py import PETSc

from pdesuite.solvers import JacobiPreconditioner
from pdesuite.solvers.petsc_backend import PetscSolver, PythonPC


def local_laplacian_rows(m: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays (indptr, global column indices, values) of rows start..end-1 of the 5-point
    Laplacian."""
    rows = np.arange(start, end)
    i, j = np.divmod(rows, m)
    columns = np.stack([rows - m, rows - 1, rows, rows + 1, rows + m], axis=1)
    values = np.tile(np.array([-1.0, -1.0, 4.0, -1.0, -1.0]), (rows.size, 1))
    valid = np.stack([i > 0, j > 0, np.ones_like(i, dtype=bool), j < m - 1, i < m - 1], axis=1)
    counts = valid.sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(PETSc.IntType)
    return indptr, columns[valid].astype(PETSc.IntType), values[valid]


def global_laplacian(m: int) -> sp.csr_array:
    T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(m, m))
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(T, eye) + sp.kron(eye, T))


def main(m: int) -> None:
    comm = PETSc.COMM_WORLD
    n = m * m
    local_rows = PETSc.Sys.splitOwnership(n, comm=comm)[0]
    layout = PETSc.Vec().createMPI((local_rows, n), comm=comm)
    start, end = layout.getOwnershipRange()
    layout.destroy()

    A = PETSc.Mat().createAIJ(((local_rows, n), (local_rows, n)),
                              csr=local_laplacian_rows(m, start, end), comm=comm)
    b = A.createVecs("left")
    b.setArray(1.0 + np.sin(np.arange(start, end, dtype=float)))

    solver = PetscSolver("cg", M="jacobi", rtol=1e-8, comm=comm)
    result = solver.solve(A, b)
    residual = b.duplicate()
    A.mult(result.info["x_vec"], residual)
    residual.aypx(-1.0, b)
    relative = residual.norm() / b.norm()

    # The same system from the global SciPy matrix and a global right-hand side.
    b_global = 1.0 + np.sin(np.arange(n, dtype=float))
    A_global = global_laplacian(m)
    from_scipy = solver.solve(A_global, b_global)
    # A python PC built for the global matrix, fed the whole vector on every rank.
    python_pc = PetscSolver("cg", M=PythonPC(JacobiPreconditioner(A_global), gather=True),
                            rtol=1e-8, comm=comm)
    with_python_pc = python_pc.solve(A, b)
    if comm.getRank() == 0:
        print(f"ranks={comm.getSize()} n={n} iterations={result.iterations} "
              f"converged={result.converged} reason={result.reason.name} "
              f"relative_residual={relative:.3e} local_rows={end - start} "
              f"iterations_from_scipy={from_scipy.iterations} "
              f"iterations_python_pc={with_python_pc.iterations} "
              f"x_from_scipy_norm={np.linalg.norm(from_scipy.x):.12e}", flush=True)
    solver.close()
    python_pc.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 48)
