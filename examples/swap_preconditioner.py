"""Swap a trained preconditioner into a SciPy-style solve, a PETSc KSP and a batched torch solve.

Loads out/pc_darcy32/ (run examples/train_preconditioner.py first) in one line per system,
``load_preconditioner(run, coefficient=a)``, and solves new Darcy problems at 32² and at 64² (a
grid it was not trained on) to a relative residual of 1e-8, printing mean iterations:

- ``solve(A, b, method="dcdm", M=M)``, against CG and IC(0)-PCG;
- a PETSc KSP: ``method="dcdm", backend="petsc"`` (the suite's DCDM as a python KSP type, the
  network as its python PC), and PETSc's own FCG with the network installed by hand;
- ``backend="torch"``: four right-hand sides of one system in one batched solve.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pdesuite.datasets.pde_family import get_family
from pdesuite.operators import load_preconditioner
from pdesuite.solvers import solve

RUN = Path("out/pc_darcy32")
RTOL = 1e-8


def petsc_fcg_iterations(A, b, M) -> float:
    """PETSc's own FCG with ``M`` as its python PC, set up by hand (NaN without petsc4py)."""
    try:
        from petsc4py import PETSc

        from pdesuite.solvers.petsc_backend import PythonPC, to_petsc_mat, to_petsc_vec
    except ImportError:
        return float("nan")
    ksp = PETSc.KSP().create()
    ksp.setOperators(to_petsc_mat(A))
    ksp.setType("fcg")
    ksp.setTolerances(rtol=RTOL, atol=0.0, max_it=1000)
    ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
    PythonPC(M).install(ksp.getPC())
    rhs = to_petsc_vec(b)
    x = rhs.duplicate()
    ksp.solve(rhs, x)
    converged = ksp.getConvergedReason() > 0
    return float(ksp.getIterationNumber()) if converged else float("nan")


def main() -> None:
    if not (RUN / "checkpoint.pt").is_file():
        raise SystemExit(f"{RUN}: no trained run; run examples/train_preconditioner.py first")
    columns = ("CG", "IC-PCG", "DCDM", "PETSc DCDM", "PETSc FCG", "torch DCDM x4")
    print(f"mean iterations to rtol {RTOL:g} over 5 new problems per grid")
    print(f"{'grid':>6} " + " ".join(f"{c:>13}" for c in columns))
    for resolution in (32, 64):
        family = get_family("darcy", resolution=resolution)
        rows = []
        for i in range(5):
            params = family.sample(np.random.default_rng([1234, resolution, i]))
            system = family.assemble(params)
            A, b = system.A, system.b
            M = load_preconditioner(RUN, coefficient=params["coefficient"])
            block = np.stack([b] + [np.random.default_rng(j).standard_normal(b.size)
                                    for j in range(3)], axis=1)
            results = [solve(A, b, method="cg", rtol=RTOL),
                       solve(A, b, method="cg", M="ic", rtol=RTOL),
                       solve(A, b, method="dcdm", M=M, rtol=RTOL, maxiter=1000),
                       solve(A, b, method="dcdm", M=M, rtol=RTOL, maxiter=1000, backend="petsc"),
                       None,
                       solve(A, block, method="dcdm", M=M, rtol=RTOL, maxiter=1000,
                             backend="torch")]
            rows.append([petsc_fcg_iterations(A, b, M) if r is None else
                         (r.iterations if r.converged else np.nan) for r in results])
        print(f"{resolution:>5}² " + " ".join(f"{v:>13.1f}" for v in np.nanmean(rows, axis=0)))


if __name__ == "__main__":
    main()
