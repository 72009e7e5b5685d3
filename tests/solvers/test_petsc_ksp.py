"""GCRO-DR and recycling CG as PETSc python KSPs (``PetscSolver(method="gcrodr" | "rcg")``).

References: the NumPy backend's :class:`RecyclingSolver` on the same sequence (same algorithm,
serial reductions), NumPy true residuals, PETSc's native GMRES and CG for the benefit of
recycling, and the serial run for ``mpiexec -n 2``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("petsc4py.PETSc")

from petsc4py import PETSc

from pdesuite.solvers import ConvergedReason, solve
from pdesuite.solvers import petsc_backend as pb
from pdesuite.solvers.recycling import RecycleSpace, RecyclingSolver, gcrodr
from pdesuite.solvers.reduction import LOCAL_REDUCTION, MPIReduction
from tests.solvers.mpi_recycling import local_diffusion_rows, run_sequence

pytestmark = pytest.mark.petsc


def diffusion(m: int, t: float) -> sp.csr_array:
    """The t-th matrix of mpi_recycling's sequence, assembled whole (all rows on one rank)."""
    indptr, indices, data = local_diffusion_rows(m, t, 0, m * m)
    return sp.csr_array((data, indices, indptr), shape=(m * m, m * m))


def rhs(n: int) -> np.ndarray:
    return 1.0 + np.sin(np.arange(n, dtype=float))


def relative_residual(A, b, x) -> float:
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def test_assembled_rows_are_a_symmetric_positive_definite_diffusion_matrix():
    A = diffusion(12, 0.5)
    assert abs(A - A.T).max() == 0.0
    assert np.linalg.eigvalsh(A.toarray()).min() > 0
    # row sums vanish away from the boundary (a conservative 5-point stencil)
    interior = 5 * 12 + 5
    assert A[[interior], :].sum() == pytest.approx(0.0, abs=1e-12)
    # assembling rank-local blocks gives the same rows as assembling all at once
    part = local_diffusion_rows(12, 0.5, 30, 77)
    block = sp.csr_array((part[2], part[1], part[0]), shape=(47, 144))
    assert abs(block - A[30:77]).max() == 0.0


@pytest.mark.parametrize("method, pc, petsc_options, numpy_options", [
    ("gcrodr", "jacobi", dict(restart=30, k=10), dict(restart=30, k=10)),
    ("gcrodr", None, dict(restart=25, k=8), dict(restart=25, k=8)),
    ("rcg", "jacobi", dict(k=8, ell=30), dict(k=8, ell=30)),
])
def test_serial_python_ksp_matches_the_numpy_backend_on_a_sequence(method, pc, petsc_options,
                                                                   numpy_options):
    m = 20
    b = rhs(m * m)
    petsc_solver = pb.PetscSolver(method, M=pc, rtol=1e-8, **petsc_options)
    numpy_solver = RecyclingSolver(method, M=pc, rtol=1e-8, **numpy_options)
    for t in np.linspace(0.0, 1.0, 4):
        A = diffusion(m, t)
        ours, reference = petsc_solver.solve(A, b), numpy_solver.solve(A, b)
        assert ours.converged and ours.reason is ConvergedReason.CONVERGED_RTOL
        assert relative_residual(A, b, ours.x) <= 1e-8
        assert abs(ours.iterations - reference.iterations) <= 1
        assert abs(ours.matvecs - reference.matvecs) <= 1
        assert ours.info["recycle_dim"] == reference.info["recycle_dim"] > 0
        assert ours.info["ksp_type"] == "python"
        assert ours.info["solves"] == reference.info["solves"]
    petsc_solver.close()


def test_recycling_beats_native_gmres_and_cg_over_ten_matrices():
    m = 24
    b = rhs(m * m)
    matrices = [diffusion(m, t) for t in np.linspace(0.0, 1.0, 10)]
    totals = {}
    for name, method, options in [("gcrodr", "gcrodr", dict(restart=30, k=10)),
                                  ("gmres", "gmres", dict(restart=30, side="right")),
                                  ("rcg", "rcg", dict(k=8)),
                                  ("cg", "cg", {})]:
        solver = pb.PetscSolver(method, M="jacobi", rtol=1e-8, **options)
        results = [solver.solve(A, b) for A in matrices]
        assert all(r.converged for r in results)
        assert max(relative_residual(A, b, r.x) for A, r in zip(matrices, results)) <= 1e-8
        totals[name] = sum(r.iterations for r in results)
        solver.close()
    # measured: gcrodr 250 vs gmres 1264, rcg 294 vs cg 876
    assert totals["gcrodr"] < 0.3 * totals["gmres"]
    assert totals["rcg"] < 0.5 * totals["cg"]


def test_api_solve_with_backend_petsc_and_a_named_pc():
    A = diffusion(16, 0.3)
    b = rhs(256)
    result = solve(A, b, method="gcrodr", backend="petsc", M="ilu", rtol=1e-9, restart=20, k=5)
    assert result.backend == "petsc" and result.converged
    assert relative_residual(A, b, result.x) <= 1e-9
    assert result.info["recycle_dim"] == 5 and result.info["cycles"] >= 1
    rcg_result = solve(A, b, method="rcg", backend="petsc", M="icc", rtol=1e-9, k=4)
    assert rcg_result.converged and relative_residual(A, b, rcg_result.x) <= 1e-9


def test_petsc_gcrodr_update_period_matches_the_numpy_method():
    """The python KSP passes update_period through: the refresh count equals NumPy's."""
    A = diffusion(16, 0.3)
    b = rhs(256)
    runs = {backend: solve(A, b, method="gcrodr", backend=backend, M="jacobi", rtol=1e-9,
                           restart=12, k=4, update_period=3)
            for backend in ("numpy", "petsc")}
    for result in runs.values():
        assert result.converged and relative_residual(A, b, result.x) <= 1e-9
    numpy_info, petsc_info = runs["numpy"].info, runs["petsc"].info
    assert petsc_info["cycles"] == numpy_info["cycles"] >= 4
    assert petsc_info["recycle_updates"] == numpy_info["recycle_updates"] < numpy_info["cycles"]
    with pytest.raises(ValueError, match="update_period"):
        solve(A, b, method="gcrodr", backend="petsc", update_period=0)


def test_same_matrix_again_checks_the_stored_space_with_one_product():
    A = diffusion(16, 0.2)
    b = rhs(256)
    solver = pb.PetscSolver("gcrodr", M="jacobi", rtol=1e-10, restart=20, k=6,
                            recycle=RecycleSpace(solutions=0))
    mat = pb.to_petsc_mat(A)
    first = solver.solve(mat, b)
    second = solver.solve(mat, 2.0 * b + 1.0)
    # a new matrix costs k products to re-establish; the same Mat one product (the probe)
    assert second.info["recycle_matvecs"] == 1
    assert second.converged and relative_residual(A, 2.0 * b + 1.0, second.x) <= 1e-10
    assert second.iterations < first.iterations
    # a new matrix: k = 6 products re-establish the space, one more measures its slowness
    assert solver.solve(diffusion(16, 0.3), b).info["recycle_matvecs"] == 7
    solver.close()


def test_a_renumbered_matrix_resets_the_stale_space():
    A = diffusion(16, 0.2)
    b = rhs(256)
    perm = np.random.default_rng(7).permutation(256)
    solver = pb.PetscSolver("gcrodr", M=None, rtol=1e-8, restart=20, k=6)
    solver.solve(A, b)
    result = solver.solve(sp.csr_array(A[perm][:, perm]), b[perm])
    assert result.converged
    assert result.info["recycle_reset"] is True and "stale" in result.info["reason_reset"]
    assert result.info["resets"] == 1 and result.info["solves"] == 2
    solver.close()


def test_reasons_reach_the_ksp_and_the_result():
    A = diffusion(16, 0.0)
    b = rhs(256)
    capped = pb.PetscSolver("gcrodr", M=None, rtol=1e-12, maxiter=7, restart=20, k=5)
    result = capped.solve(A, b)
    assert result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS and result.iterations == 7
    assert result.info["petsc_reason"] == "DIVERGED_MAX_IT"
    capped.close()
    indefinite = sp.csr_array(A - 3.0 * sp.eye_array(256))
    result = pb.PetscSolver("rcg", M=None, rtol=1e-8, k=4).solve(indefinite, b)
    assert result.reason is ConvergedReason.DIVERGED_INDEFINITE_MAT
    assert result.info["petsc_reason"] == "DIVERGED_INDEFINITE_MAT"


def test_raw_ksp_with_the_python_context_and_a_bjacobi_pc():
    A = diffusion(16, 0.4)
    b = rhs(256)
    mat = pb.to_petsc_mat(A)
    ksp = PETSc.KSP().create()
    context = pb.GcrodrKSP(restart=20, k=5)
    ksp.setType(PETSc.KSP.Type.PYTHON)
    ksp.setPythonContext(context)
    ksp.getPC().setType(PETSc.PC.Type.BJACOBI)
    ksp.setTolerances(rtol=1e-9)
    ksp.setOperators(mat)
    ksp.setConvergenceHistory()
    b_vec, x_vec = pb.to_petsc_vec(b), mat.createVecs("right")
    ksp.solve(b_vec, x_vec)
    x = x_vec.getArray().copy()
    assert ksp.getConvergedReason() == PETSc.KSP.ConvergedReason.CONVERGED_RTOL
    assert relative_residual(A, b, x) <= 1.5e-9
    its = ksp.getIterationNumber()
    history = ksp.getConvergenceHistory()
    assert len(history) == its + 1 and history[-1] == pytest.approx(ksp.getResidualNorm())
    assert context.space.dim == 5 and context.info["cycles"] >= 1
    ksp.destroy()


def test_callback_sees_every_iteration_once():
    A = diffusion(12, 0.1)
    b = rhs(144)
    seen = []
    result = pb.PetscSolver("gcrodr", M="jacobi", rtol=1e-8, restart=10, k=3,
                            callback=lambda i, r: seen.append((i, r))).solve(A, b)
    assert [i for i, _ in seen] == list(range(1, result.iterations + 1))
    np.testing.assert_allclose([r for _, r in seen], result.residuals[1:])


def test_bad_options_raise_clear_errors():
    with pytest.raises(ValueError, match="k: must be smaller than restart"):
        pb.PetscSolver("gcrodr", restart=10, k=10)
    with pytest.raises(TypeError, match="unknown option"):
        pb.PetscSolver("rcg", restart=10)
    with pytest.raises(ValueError, match="stale_threshold"):
        pb.GcrodrKSP(stale_threshold=-1.0)


@pytest.mark.parametrize("context, options, match", [
    (pb.GcrodrKSP, dict(restart=0), "^restart"),
    (pb.GcrodrKSP, dict(k=-1), "^k"),
    (pb.GcrodrKSP, dict(restart=8, k=8), "^k: must be smaller than restart"),
    (pb.GcrodrKSP, dict(side="up"), "^side"),
    (pb.GcrodrKSP, dict(reorthogonalize="cgs2"), "^reorthogonalize"),
    (pb.GcrodrKSP, dict(update_period=0), "^update_period"),
    (pb.GcrodrKSP, dict(stale_threshold=np.nan), "^stale_threshold"),
    (pb.GcrodrKSP, dict(recycle=3), "^recycle"),
    (pb.RecyclingCGKSP, dict(k=1.5), "^k"),
    (pb.RecyclingCGKSP, dict(ell=0), "^ell"),
    (pb.RecyclingCGKSP, dict(stale_threshold=-1.0), "^stale_threshold"),
    (pb.RecyclingCGKSP, dict(recycle="yes"), "^recycle"),
])
def test_python_ksp_options_go_through_the_numpy_methods_checks(context, options, match):
    with pytest.raises(ValueError, match=match):
        context(**options)


def test_python_ksp_options_are_canonical_as_the_numpy_methods_make_them():
    from pdesuite.solvers.recycling.gcrodr import check_gcrodr_options
    from pdesuite.solvers.recycling.rcg import check_rcg_options

    given = dict(restart=12.0, k=4, side="LEFT", stale_threshold=1, reorthogonalize="Always",
                 update_period=2.0)
    ksp = pb.GcrodrKSP(**given)
    assert ksp.options == check_gcrodr_options(**given)
    assert ksp.options["side"] == "left" and type(ksp.options["restart"]) is int
    assert pb.RecyclingCGKSP(k=3.0, ell=7).options == check_rcg_options(3, 7, 0.7)
    assert pb.RecyclingCGKSP().options == check_rcg_options()


def test_mpi_reduction_on_one_rank_follows_the_local_one():
    """The MPI code path (Allreduce, TSQR) on COMM_SELF: the same iterations as serial."""
    MPI = pytest.importorskip("mpi4py.MPI")

    reduction = MPIReduction(MPI.COMM_SELF)
    rng = np.random.default_rng(3)
    rows, w = rng.standard_normal((5, 300)), rng.standard_normal(300)
    h, norm = reduction.dot_rows_and_norm(rows, w, True)
    np.testing.assert_allclose(h, rows @ w, rtol=1e-13)
    assert norm == pytest.approx(np.linalg.norm(w), rel=1e-14)
    image = rng.standard_normal((4, 300))
    image[3] = image[0] + image[1]  # rank 3: the TSQR must truncate as the pivoted QR does
    q_rows, (follow,) = reduction.orthonormalize(image, [rows[:4]])
    q_ref, (follow_ref,) = LOCAL_REDUCTION.orthonormalize(image, [rows[:4]])
    assert q_rows.shape == q_ref.shape == (3, 300)
    np.testing.assert_allclose(q_rows @ q_rows.T, np.eye(3), atol=1e-13)
    # the same space up to signs of the rows
    np.testing.assert_allclose(np.abs(q_rows @ q_ref.T), np.eye(3), atol=1e-10)
    np.testing.assert_allclose(np.abs(follow), np.abs(follow_ref), rtol=1e-9)

    from pdesuite.solvers.linear_operator import as_operator
    from pdesuite.solvers.monitor import ConvergenceMonitor
    from pdesuite.solvers.preconditioner import CountingPreconditioner

    b = rhs(256)
    counts = {}
    for name, red in (("local", None), ("mpi", reduction)):
        space = RecycleSpace()
        counts[name] = []
        for t in (0.0, 0.5, 1.0):
            op, _ = as_operator(diffusion(16, t), b)
            op.reduction = red
            monitor = ConvergenceMonitor(float(np.linalg.norm(b)), 1e-8, 0.0, 2000)
            x, reason, _ = gcrodr(op, b, np.zeros(256), CountingPreconditioner(None), monitor,
                                  restart=20, k=6, recycle=space)
            assert reason.converged
            counts[name].append(monitor.iterations)
    assert all(abs(a - c) <= 1 for a, c in zip(counts["local"], counts["mpi"]))


@pytest.mark.mpi
@pytest.mark.slow
def test_mpi_two_ranks_match_the_serial_iteration_counts():
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not found")
    script = Path(__file__).with_name("mpi_recycling.py")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script), "40"], cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    fields = dict(re.findall(r"(\w+)=(\S+)", out.stdout))
    assert fields["ranks"] == "2" and fields["converged"] == "True"
    assert float(fields["max_relative_residual"]) <= 1e-8
    serial = run_sequence(40)
    assert serial["ranks"] == 1
    for name in ("gcrodr", "rcg"):
        parallel = [int(v) for v in fields[name].split(",")]
        assert len(parallel) == 5
        assert all(abs(p - s) <= 1 for p, s in zip(parallel, serial[name])), (
            name,
            parallel,
            serial[name],
        )
    # recycling works across ranks too: later solves need far fewer iterations
    gcrodr_counts = [int(v) for v in fields["gcrodr"].split(",")]
    assert gcrodr_counts[-1] < 0.5 * gcrodr_counts[0]
    assert int(fields["recycle_dim"]) == 10


def test_an_error_inside_the_python_ksp_surfaces_as_itself():
    from pdesuite.solvers import FunctionPreconditioner

    A = diffusion(12, 0.1)
    nonlinear = FunctionPreconditioner(lambda r: np.tanh(r), linear=False)
    solver = pb.PetscSolver("gcrodr", M=nonlinear, side="left", restart=10, k=3)
    with pytest.raises(ValueError, match="'left' needs a linear preconditioner"):
        solver.solve(A, rhs(144))
    # right preconditioning is flexible: the same nonlinear PC is accepted
    result = pb.PetscSolver("gcrodr", M=FunctionPreconditioner(lambda r: r / A.diagonal(),
                                                                linear=False),
                            rtol=1e-8, restart=10, k=3).solve(A, rhs(144))
    assert result.converged and relative_residual(A, rhs(144), result.x) <= 1e-8


@pytest.mark.parametrize("method, options", [
    ("gcrodr", dict(restart=10, k=3)), ("gcrodr", dict(restart=10, k=3, side="left")),
    ("rcg", dict(k=3)),
])
def test_a_nan_preconditioner_ends_with_a_reason_and_the_initial_guess(method, options):
    # PETSc refused the NaN residual norm the python KSP reported (KSPSetResidualNorm, error
    # 63), which escaped as a raw PETSc.Error.
    A = diffusion(12, 0.1)
    b = rhs(144)
    solver = pb.PetscSolver(method, M=lambda r: np.full_like(r, np.nan), rtol=1e-8, **options)
    result = solver.solve(A, b)
    assert result.reason in (
        ConvergedReason.DIVERGED_NAN_OR_INF,
        ConvergedReason.DIVERGED_PC_FAILED,
        # rcg's test rᴴMr > 0 fails on NaN first (the NumPy method's reason)
        *([ConvergedReason.DIVERGED_INDEFINITE_PC] if method == "rcg" else []),
    )
    assert np.all(np.isfinite(result.x)) and not np.any(result.x)
    assert result.info["true_residual"] == pytest.approx(np.linalg.norm(b))
    solver.close()


def test_the_recycle_option_takes_a_space_of_the_callers():
    space = RecycleSpace(solutions=0)
    solver = pb.PetscSolver("gcrodr", M="jacobi", rtol=1e-8, restart=12, k=4, recycle=space)
    assert solver.python_ksp.space is space
    assert solver.solve(diffusion(12, 0.1), rhs(144)).converged
    assert space.dim == 4 and space.solutions == []
    with pytest.raises(ValueError, match="^recycle"):
        pb.PetscSolver("gcrodr", recycle="yes")
    with pytest.raises(TypeError, match="unknown option"):
        pb.PetscSolver("gcrodr", solutions=0)
    solver.close()
