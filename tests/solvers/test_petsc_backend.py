"""The PETSc backend (pdesuite.solvers.petsc_backend).

References are independent of the backend: SciPy's spsolve for solutions, NumPy for true
residuals, PETSc's own event log for matvec/PC counts, PETSc's native PCJACOBI for the python
PC, a hand-written SOR iteration for PCSOR with ω = 1.5, and the serial run for MPI.
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
import scipy.sparse.linalg as spla

pytest.importorskip("petsc4py.PETSc")

from petsc4py import PETSc

from pdesuite.solvers import ConvergedReason, JacobiPreconditioner, solve
from pdesuite.solvers import petsc_backend as pb
from tests.solvers.matrix_registry import (
    breakdown_case,
    laplacian_2d,
    registry,
    variable_diffusion_2d,
)

pytestmark = pytest.mark.petsc

CASES = {case.name: case for case in registry()}
RTOL = 1e-10


def true_relative_residual(A, b, x) -> float:
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def reference_solution(A, b) -> np.ndarray:
    return spla.spsolve(sp.csc_matrix(A), b)


# --------------------------------------------------------------------------------------------
# every method × PC on the registry

SPD_COMBINATIONS = (
    [("cg", pc) for pc in ("none", "jacobi", "ssor", "icc", "gamg", "asm")]
    + [("fcg", pc) for pc in ("jacobi", "ssor", "icc")]
    + [("minres", pc) for pc in ("none", "jacobi", "icc")]
    + [("gmres", pc) for pc in ("none", "sor", "ilu", "gamg")]
    + [("fgmres", "ilu"), ("bicgstab", "jacobi"), ("bicgstab", "ilu"),
       ("richardson", "ssor"), ("richardson", "ilu")]
)
NONSYMMETRIC_COMBINATIONS = (
    [("gmres", pc) for pc in ("none", "jacobi", "sor", "ilu", "asm", "gamg")]
    + [("fgmres", pc) for pc in ("jacobi", "ilu")]
    + [("bicgstab", pc) for pc in ("none", "sor", "ilu", "asm")]
    + [("richardson", pc) for pc in ("jacobi", "sor", "ilu")]
)
INDEFINITE_COMBINATIONS = [("gmres", "none"), ("gmres", "ilu"), ("fgmres", "ssor"),
                           ("bicgstab", "ilu"), ("minres", "none"), ("minres", "jacobi")]
PARAMETERS = (
    [
        (case, m, pc)
        for case in ("poisson1d", "poisson2d", "diffusion2d")
        for m, pc in SPD_COMBINATIONS
    ]
    + [("advdiff2d", m, pc) for m, pc in NONSYMMETRIC_COMBINATIONS]
    + [("helmholtz2d", m, pc) for m, pc in INDEFINITE_COMBINATIONS]
)


@pytest.mark.parametrize("case_name, method, pc", PARAMETERS)
def test_method_and_pc_solve_registry_case(case_name, method, pc):
    case = CASES[case_name]
    result = pb.solve(case.A, case.b, method=method, M=pc, rtol=RTOL, maxiter=5000)
    assert result.converged, (result, result.info)
    assert result.backend == "petsc" and result.method == method
    relative = true_relative_residual(case.A, case.b, result.x)
    assert relative <= RTOL
    assert result.info["true_residual"] / np.linalg.norm(case.b) == pytest.approx(
        relative, rel=1e-6
    )
    x_ref = reference_solution(case.A, case.b)
    assert np.linalg.norm(result.x - x_ref) <= 1e-6 * np.linalg.norm(x_ref)
    assert 0 < result.iterations <= 5000
    assert result.matvecs > result.iterations - (1 if method == "bicgstab" else 0)
    assert len(result.residuals) == result.iterations + 1
    # The first monitored norm is ‖b‖ itself wherever PETSc runs the unpreconditioned norm.
    if result.info["norm_type"] == "unpreconditioned":
        assert result.residuals[0] == pytest.approx(np.linalg.norm(case.b), rel=1e-12)


def test_singular_consistent_system_with_cg():
    case = CASES["singular_consistent"]
    result = pb.solve(case.A, case.b, method="cg", rtol=1e-10)
    assert result.converged
    assert true_relative_residual(case.A, case.b, result.x) <= 1e-10


# --------------------------------------------------------------------------------------------
# counts against PETSc's event log


@pytest.fixture(scope="module")
def petsc_log():
    PETSc.Log.begin()
    return PETSc.Log.Event("MatMult"), PETSc.Log.Event("PCApply")


def _count(event) -> int:
    return event.getPerfInfo()["count"]


@pytest.mark.parametrize("method, options, case_name", [
    ("cg", {}, "poisson2d"), ("fcg", {}, "poisson2d"), ("minres", {}, "poisson2d"),
    ("richardson", {}, "poisson2d"),
    ("gmres", {"restart": 7}, "advdiff2d"), ("gmres", {"restart": 7, "side": "right"}, "advdiff2d"),
    ("fgmres", {"restart": 7}, "advdiff2d"), ("bicgstab", {}, "advdiff2d"),
])
@pytest.mark.parametrize("nonzero_guess", [False, True])
@pytest.mark.parametrize("maxiter", [9, 5000])
def test_counts_match_petsc_event_log(
    petsc_log, method, options, case_name, nonzero_guess, maxiter
):
    matmult, pcapply = petsc_log
    case = CASES[case_name]
    A = pb.to_petsc_mat(case.A)
    x0 = np.full(case.A.shape[0], 0.01) if nonzero_guess else None
    solver = pb.PetscSolver(method, M="jacobi", rtol=1e-8, maxiter=maxiter, **options)
    solver.ksp.setOperators(A)
    solver.ksp.setUp()  # PC set-up outside the counted window
    before = _count(matmult), _count(pcapply)
    result = solver.solve(A, case.b, x0=x0)
    assert (result.iterations == maxiter) == (
        result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS
    )
    # The true-residual check (one product after a claimed convergence) is in both counts.
    assert result.matvecs == _count(matmult) - before[0]
    assert result.precond_applies == _count(pcapply) - before[1]
    solver.close()


# --------------------------------------------------------------------------------------------
# one KSP for a sequence


def test_one_ksp_is_reused_across_a_sequence_of_five_matrices():
    solver = pb.PetscSolver("cg", M="icc", rtol=1e-10)
    ksp, pc_handle = solver.ksp, solver.ksp.getPC().handle
    rng = np.random.default_rng(7)
    iterations = []
    for seed in range(5):
        A = variable_diffusion_2d(12, seed=seed, contrast=1.0 + 0.2 * seed)
        b = rng.standard_normal(A.shape[0])
        result = solver.solve(A, b)
        assert solver.ksp is ksp and solver.ksp.getPC().handle == pc_handle
        assert solver.ksp.getOperators()[0].getSize() == A.shape
        assert result.converged
        x_ref = reference_solution(A, b)
        assert np.linalg.norm(result.x - x_ref) <= 1e-7 * np.linalg.norm(x_ref)
        iterations.append(result.iterations)
    assert min(iterations) > 0
    solver.close()


def test_a_new_size_resets_the_ksp_and_keeps_its_configuration():
    def config():
        return dict(method="gmres", M="sor", rtol=1e-10, restart=15, pc_omega=1.2)

    solver = pb.PetscSolver(**config())
    iterations = []
    for m in (10, 14, 10):
        A = laplacian_2d(m)
        b = np.ones(m * m)
        result = solver.solve(A, b)
        assert result.converged and solver.ksp.getPC().getType() == "sor"
        np.testing.assert_allclose(result.x, reference_solution(A, b), rtol=1e-7)
        iterations.append(result.iterations)
    # A fresh solver with the same configuration takes the same iterations; another ω not.
    fresh = pb.PetscSolver(**config())
    assert fresh.solve(laplacian_2d(10), np.ones(100)).iterations == iterations[0] == iterations[2]
    other_omega = pb.PetscSolver(**{**config(), "pc_omega": 1.0})
    assert other_omega.solve(laplacian_2d(10), np.ones(100)).iterations != iterations[0]
    for s in (solver, fresh, other_omega):
        s.close()


def test_same_mat_again_reuses_the_pc_setup(petsc_log):
    factorizations = PETSc.Log.Event("MatCholFctrNum")
    A = pb.to_petsc_mat(laplacian_2d(16))
    solver = pb.PetscSolver("cg", M="icc", rtol=1e-8)
    counts = [_count(factorizations)]
    for matrix in (A, A, pb.to_petsc_mat(laplacian_2d(16))):
        assert solver.solve(matrix, np.ones(256)).converged
        counts.append(_count(factorizations))
    # A new Mat is factorized; the same Mat again is not.
    assert np.diff(counts).tolist() == [1, 0, 1]
    solver.close()


# --------------------------------------------------------------------------------------------
# python PC


def test_python_pc_jacobi_matches_native_pcjacobi():
    case = CASES["poisson2d"]
    native = pb.solve(case.A, case.b, method="cg", M="jacobi", rtol=1e-10)
    python = pb.solve(case.A, case.b, method="cg", M=JacobiPreconditioner(case.A), rtol=1e-10)
    assert python.info["pc_type"] == "python"
    assert python.iterations == native.iterations
    assert python.precond_applies == native.precond_applies == native.iterations
    np.testing.assert_allclose(python.x, native.x, rtol=1e-12, atol=0)
    np.testing.assert_allclose(python.residuals, native.residuals, rtol=1e-10)


def test_python_pc_counts_and_accepts_callables_and_matrices():
    case = CASES["diffusion2d"]
    inv_diag = 1.0 / case.A.diagonal()
    by_function = pb.solve(case.A, case.b, method="cg", M=lambda r: inv_diag * r, rtol=1e-10)
    by_matrix = pb.solve(
        case.A, case.b, method="cg", M=sp.diags_array(inv_diag).tocsr(), rtol=1e-10
    )
    native = pb.solve(case.A, case.b, method="cg", M="jacobi", rtol=1e-10)
    assert by_function.iterations == by_matrix.iterations == native.iterations
    assert by_function.precond_applies == native.iterations


def test_errors_inside_the_python_pc_and_callback_propagate():
    case = CASES["poisson2d"]

    class Broken:
        def apply(self, r):
            raise KeyError("inside apply")

    class WrongShape:
        def apply(self, r):
            return r[:-1]

    with pytest.raises(KeyError, match="inside apply"):
        pb.solve(case.A, case.b, method="cg", M=Broken())
    with pytest.raises(ValueError, match="preconditioner: apply returned shape"):
        pb.solve(case.A, case.b, method="cg", M=WrongShape())
    with pytest.raises(ZeroDivisionError):
        pb.solve(case.A, case.b, method="cg", callback=lambda i, r: 1 / 0)


def test_nonlinear_python_pc_warns_for_a_non_flexible_method():
    case = CASES["poisson2d"]

    class Nonlinear:
        linear = False

        def apply(self, r):
            return np.tanh(r)

    with pytest.warns(UserWarning, match="nonlinear"):
        pb.PetscSolver("cg", M=Nonlinear()).close()
    result = pb.solve(case.A, case.b, method="fgmres", M=Nonlinear(), rtol=1e-8)
    assert result.converged and true_relative_residual(case.A, case.b, result.x) <= 1e-8


# --------------------------------------------------------------------------------------------
# SOR with ω ≠ 1


def hand_sor_iterations(
    A: sp.csr_array, b: np.ndarray, omega: float, rtol: float
) -> tuple[int, np.ndarray]:
    """Forward SOR x ← x + ω (D + ωL)⁻¹ (b − A x) from x = 0 until ‖b − A x‖ ≤ rtol‖b‖."""
    lower = sp.csr_array(sp.tril(A, k=-1) * omega + sp.diags_array(A.diagonal()))
    x = np.zeros_like(b)
    r = b.copy()
    iterations = 0
    while np.linalg.norm(r) > rtol * np.linalg.norm(b):
        x = x + omega * spla.spsolve_triangular(lower, r, lower=True)
        r = b - A @ x
        iterations += 1
    return iterations, x


def test_sor_with_omega_1_5_turns_inodes_off_and_matches_the_sor_iteration(tmp_path):
    # Two unknowns per node: consecutive rows share their pattern, so PETSc finds inodes.
    A = sp.csr_array(sp.kron(laplacian_2d(8), np.array([[4.0, -1.0], [-1.0, 4.0]])))
    b = np.random.default_rng(3).standard_normal(A.shape[0])
    mat = pb.to_petsc_mat(A)
    result = pb.PetscSolver("richardson", M="sor", pc_omega=1.5, rtol=1e-8).solve(mat, b)
    expected_iterations, x_hand = hand_sor_iterations(A, b, 1.5, 1e-8)
    assert result.converged
    assert abs(result.iterations - expected_iterations) <= 1
    np.testing.assert_allclose(result.x, x_hand, rtol=1e-6)
    # ω = 1.5 converges faster than Gauss–Seidel on this matrix, as SOR theory says.
    gauss_seidel = pb.solve(A, b, method="richardson", M="gauss-seidel", rtol=1e-8)
    assert gauss_seidel.converged and gauss_seidel.iterations > result.iterations
    path = tmp_path / "mat.txt"
    viewer = PETSc.Viewer().createASCII(str(path))
    viewer.pushFormat(PETSc.Viewer.Format.ASCII_INFO)
    mat.view(viewer)
    viewer.destroy()
    assert "not using I-node routines" in path.read_text()


def test_ssor_is_symmetric_enough_for_cg():
    case = CASES["diffusion2d"]
    result = pb.solve(case.A, case.b, method="cg", M="ssor", pc_omega=1.4, rtol=1e-10)
    assert result.converged and result.info["pc_type"] == "sor"
    assert true_relative_residual(case.A, case.b, result.x) <= 1e-10


# --------------------------------------------------------------------------------------------
# reasons


def test_cg_on_indefinite_helmholtz_reports_indefinite_matrix():
    case = CASES["helmholtz2d"]
    result = pb.solve(case.A, case.b, method="cg", rtol=1e-8)
    assert not result.converged
    assert result.reason is ConvergedReason.DIVERGED_INDEFINITE_MAT
    assert true_relative_residual(case.A, case.b, result.x) > 1e-8


def test_maxiter_gives_diverged_max_iterations():
    case = CASES["poisson2d"]
    result = pb.solve(case.A, case.b, method="cg", rtol=1e-12, maxiter=5)
    assert result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS
    assert result.iterations == 5 and not result.converged
    assert true_relative_residual(case.A, case.b, result.x) > 1e-12


def test_bicgstab_breakdown_and_richardson_divergence():
    case = breakdown_case()
    assert pb.solve(case.A, case.b, method="bicgstab").reason is ConvergedReason.DIVERGED_BREAKDOWN
    poisson = CASES["poisson2d"]
    diverged = pb.solve(poisson.A, poisson.b, method="richardson")  # spectral radius of I − A > 1
    assert diverged.reason is ConvergedReason.DIVERGED_DTOL


def test_failed_pc_setup_is_a_reason_and_a_refused_matrix_a_clear_error():
    rotation = breakdown_case()
    # A stored zero on the diagonal: ILU meets a zero pivot, PETSc reports a failed PC.
    stored_zeros = sp.csr_array((np.array([0.0, 1.0, -1.0, 0.0]), np.array([0, 1, 0, 1]),
                                 np.array([0, 2, 4])), shape=(2, 2))
    result = pb.solve(stored_zeros, rotation.b, method="gmres", M="ilu")
    assert result.reason is ConvergedReason.DIVERGED_PC_FAILED
    assert result.info["petsc_reason"] == "DIVERGED_PCSETUP_FAILED"
    assert result.info["pc_failed_reason"] == "FACTOR_NUMERIC_ZEROPIVOT"
    # PETSc poisons x with Inf; the backend returns the initial guess instead.
    np.testing.assert_array_equal(result.x, [0.0, 0.0])
    # No stored diagonal at all: PETSc refuses the matrix.
    with pytest.raises(ValueError, match="missing diagonal entries"):
        pb.solve(rotation.A, rotation.b, method="gmres", M="ilu")


def test_claimed_convergence_is_confirmed_on_the_true_residual():
    # Left-preconditioned GMRES stops on ‖M⁻¹r‖; on this matrix that stop leaves a true
    # residual above the target, and the backend continues from x.
    case = CASES["diffusion2d"]
    native = PETSc.KSP().create()
    mat = pb.to_petsc_mat(case.A)
    native.setOperators(mat)
    native.setType("gmres")
    native.setGMRESRestart(40)
    native.getPC().setType("jacobi")
    native.setTolerances(rtol=1e-8, max_it=1000)
    x = mat.createVecs("right")
    native.solve(pb.to_petsc_vec(case.b), x)
    assert native.getConvergedReason() > 0
    assert true_relative_residual(case.A, case.b, x.getArray()) > 1e-8  # PETSc alone is not enough

    result = pb.solve(case.A, case.b, method="gmres", M="jacobi", rtol=1e-8)
    assert result.info["attempts"] >= 2
    assert result.converged and true_relative_residual(case.A, case.b, result.x) <= 1e-8


def test_zero_rhs_returns_zero_without_iterations():
    case = CASES["poisson2d"]
    result = pb.solve(case.A, np.zeros(256), method="cg", x0=np.ones(256))
    assert result.reason is ConvergedReason.CONVERGED_ATOL
    assert result.iterations == 0 and not np.any(result.x)


def test_atol_decides_when_it_is_the_larger_target():
    case = CASES["poisson2d"]
    atol = 1e-3 * np.linalg.norm(case.b)
    result = pb.solve(case.A, case.b, method="cg", rtol=1e-12, atol=atol)
    assert result.reason is ConvergedReason.CONVERGED_ATOL
    assert np.linalg.norm(case.b - case.A @ result.x) <= atol


def test_callback_gets_every_iteration_once():
    case = CASES["advdiff2d"]
    seen = []
    result = pb.solve(case.A, case.b, method="gmres", M="jacobi", restart=10, rtol=1e-8,
                      callback=lambda i, r: seen.append((i, r)))
    assert [i for i, _ in seen] == list(range(1, result.iterations + 1))
    assert result.iterations > 10  # restarts happened
    np.testing.assert_allclose([r for _, r in seen], result.residuals[1:], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# dtypes, conversions, bad input


def test_float32_input_is_solved_in_float64():
    case = CASES["poisson2d_float32"]
    result = pb.solve(case.A, case.b, method="cg", rtol=1e-10)
    assert result.converged and result.x.dtype == np.float64
    assert result.info["converted_from"] == "float32"
    x_ref = reference_solution(case.A.astype(np.float64), case.b.astype(np.float64))
    np.testing.assert_allclose(result.x, x_ref, rtol=1e-7)


def test_complex_input_is_rejected_on_a_real_petsc():
    if np.dtype(PETSc.ScalarType).kind == "c":
        pytest.skip("this PETSc is complex")
    case = CASES["complex_shifted"]
    with pytest.raises(ValueError, match="A: complex entries"):
        pb.solve(case.A, case.b)
    with pytest.raises(ValueError, match="b: complex entries"):
        pb.solve(case.A.real, case.b)


def test_to_petsc_mat_shares_canonical_float64_arrays_and_copies_otherwise():
    A = laplacian_2d(6)
    assert A.indices.dtype == np.int32 and A.has_canonical_format
    shared = pb.to_petsc_mat(A)
    copied = pb.to_petsc_mat(A, copy=True)
    A.data[0] = 123.0
    assert shared.getValue(0, 0) == 123.0
    assert copied.getValue(0, 0) == 4.0
    # int64 indices, unsorted columns and duplicates, COO and dense input: converted.
    B = sp.csr_array((np.array([1.0, 2.0, 3.0, 0.5]), np.array([1, 0, 1, 0], dtype=np.int64),
                      np.array([0, 2, 4], dtype=np.int64)), shape=(2, 2))
    for source in (B, sp.coo_array(B), B.toarray()):
        mat = pb.to_petsc_mat(source)
        np.testing.assert_array_equal(
            mat.convert("dense").getDenseArray(), [[2.0, 1.0], [0.5, 3.0]]
        )


def test_vector_round_trip_shares_memory_in_serial():
    v = np.arange(5.0)
    vec = pb.to_petsc_vec(v)
    vec.scale(2.0)
    np.testing.assert_array_equal(v, 2 * np.arange(5.0))
    out = pb.from_petsc_vec(vec)
    out[0] = -1
    assert vec.getValue(0) == 0.0


@pytest.mark.parametrize("call, error, match", [
    (lambda c: pb.solve(c.A, c.b, method="sor"), ValueError, "method: unknown method"),
    (lambda c: pb.solve(c.A, c.b, M="multigrid"), ValueError, "^M: unknown preconditioner"),
    (lambda c: pb.solve(c.A, c.b, method="cg", restart=5), TypeError, "unknown option"),
    (lambda c: pb.solve(c.A, c.b, M="jacobi", pc_omega=1.2), TypeError, "pc_omega"),
    (lambda c: pb.solve(c.A, c.b, M="sor", pc_omega=2.5), ValueError, "^pc_omega"),
    (lambda c: pb.solve(c.A, c.b, M="ilu", pc_levels=-1), ValueError, "^pc_levels"),
    (lambda c: pb.solve(c.A, c.b, method="gmres", side="up"), ValueError, "^side"),
    (lambda c: pb.solve(c.A, c.b, method="gmres", side=1), ValueError, "^side"),
    (lambda c: pb.solve(c.A, c.b, method="gmres", restart=0), ValueError, "^restart"),
    (lambda c: pb.solve(c.A, c.b, method="gmres", reorthogonalize="cgs2"), ValueError,
     "^reorthogonalize"),
    (lambda c: pb.solve(c.A, c.b, method="gmres", orthogonalization="cgs"), TypeError,
     "unknown option"),
    (lambda c: pb.solve(c.A, c.b, method="fcg", mmax=0), ValueError, "^mmax"),
    (lambda c: pb.solve(c.A, c.b, method="richardson", omega=0.0), ValueError, "^omega"),
    (lambda c: pb.solve(c.A, c.b, method="bicgstab", side="left"), TypeError, "side"),
    (lambda c: pb.solve(c.A, c.b, method="fgmres", side="left"), TypeError, "side"),
    # the stopping parameters go through validation.check_tolerances, as on every backend
    (lambda c: pb.solve(c.A, c.b, rtol=-1.0), ValueError, "^rtol"),
    (lambda c: pb.solve(c.A, c.b, rtol=np.nan), ValueError, "^rtol"),
    (lambda c: pb.solve(c.A, c.b, atol=None), ValueError, "^atol"),
    (lambda c: pb.solve(c.A, c.b, atol="legacy"), ValueError, "^atol"),
    (lambda c: pb.solve(c.A, c.b, atol=-1.0), ValueError, "^atol"),
    (lambda c: pb.solve(c.A, c.b, maxiter=0), ValueError, "^maxiter"),
    (lambda c: pb.PetscSolver("cg", pc="jacobi"), TypeError, "unknown option"),
    (lambda c: pb.PetscSolver("cg", callback=3), TypeError, "^callback"),
    (lambda c: pb.solve(c.A, c.b[:-1]), ValueError, "b: has 255 entries"),
    (lambda c: pb.solve(c.A[:, :-1], c.b[:-1]), ValueError, "A: expected a square"),
    (lambda c: pb.solve(c.A, np.full(256, np.nan)), ValueError, "b contains NaN"),
    (lambda c: pb.solve(sp.csr_array(c.A * np.inf), c.b), ValueError, "A contains NaN or Inf"),
    (lambda c: pb.solve(lambda x: x, c.b), TypeError, "A: the PETSc backend needs"),
])
def test_bad_input_raises_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(CASES["poisson2d"])


# --------------------------------------------------------------------------------------------
# the api and the lazy import


def test_api_dispatches_by_backend_and_by_mat_type():
    case = CASES["poisson2d"]
    by_name = solve(case.A, case.b, method="cg", M="icc", backend="petsc", rtol=1e-9)
    assert by_name.backend == "petsc" and by_name.converged
    by_type = solve(pb.to_petsc_mat(case.A), case.b, method="cg", M="jacobi", rtol=1e-9)
    assert by_type.backend == "petsc" and isinstance(by_type.info["x_vec"], PETSc.Vec)
    np.testing.assert_allclose(by_type.x, by_type.info["x_vec"].getArray())
    np.testing.assert_allclose(by_type.x, reference_solution(case.A, case.b), rtol=1e-7)


def test_importing_the_solvers_does_not_import_petsc4py():
    code = "import sys, pdesuite.solvers; print('petsc4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# MPI


@pytest.mark.mpi
@pytest.mark.slow
def test_mpi_two_ranks_match_the_serial_iteration_count():
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not found")
    script = Path(__file__).with_name("mpi_poisson.py")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script), "48"], cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    fields = dict(re.findall(r"(\w+)=(\S+)", out.stdout))
    assert fields["ranks"] == "2" and fields["converged"] == "True"
    assert int(fields["local_rows"]) == 48 * 48 // 2
    assert float(fields["relative_residual"]) <= 1e-8

    from tests.solvers.mpi_poisson import global_laplacian

    A = global_laplacian(48)
    b = 1.0 + np.sin(np.arange(48 * 48, dtype=float))
    serial = pb.solve(A, b, method="cg", M="jacobi", rtol=1e-8)
    assert int(fields["iterations"]) == serial.iterations
    assert int(fields["iterations_from_scipy"]) == serial.iterations
    assert int(fields["iterations_python_pc"]) == serial.iterations
    assert float(fields["x_from_scipy_norm"]) == pytest.approx(np.linalg.norm(serial.x), rel=1e-10)


# --------------------------------------------------------------------------------------------
# the one vocabulary


def test_option_defaults_are_the_vocabulary_and_what_the_solver_uses():
    from pdesuite.solvers.vocabulary import METHOD_DEFAULTS

    assert set(pb.METHODS) <= set(METHOD_DEFAULTS)
    for method in pb.METHODS:
        defaults = pb.option_defaults(method)
        for name, value in defaults.items():
            assert name in METHOD_DEFAULTS[method], (method, name)
            assert value == METHOD_DEFAULTS[method][name], (method, name)
        solver = pb.PetscSolver(method, M=None)
        assert solver.options == defaults
        solver.close()
    with pytest.raises(ValueError, match="^method"):
        pb.option_defaults("sor")


@pytest.mark.parametrize("method", ["gmres", "fgmres"])
@pytest.mark.parametrize("reorthogonalize, words", [
    (None, "no iterative refinement"),  # the default, "never": PETSc's own default
    ("never", "no iterative refinement"),
    ("ifneeded", "one step of iterative refinement when needed"),
    ("always", "one step of iterative refinement\n"),
])
def test_reorthogonalize_sets_petscs_cgs_refinement(tmp_path, method, reorthogonalize, words):
    options = {} if reorthogonalize is None else {"reorthogonalize": reorthogonalize}
    solver = pb.PetscSolver(method, M="jacobi", restart=12, **options)
    case = CASES["advdiff2d"]
    result = solver.solve(case.A, case.b)
    assert result.converged and result.info["restart"] == 12
    path = tmp_path / "ksp.txt"
    viewer = PETSc.Viewer().createASCII(str(path))
    solver.ksp.view(viewer)
    viewer.destroy()
    text = path.read_text()
    assert "restart=12" in text and words in text
    solver.close()


# --------------------------------------------------------------------------------------------
# failures return the best iterate; edge cases of SciPy's _isolve/tests/test_iterative.py


def test_gmres_defective_matrix_breakdown_returns_the_least_squares_iterate():
    # SciPy's TestGMRES.test_defective_matrix_breakdown: PETSc's GMRES meets a happy
    # breakdown with a singular Hessenberg matrix at step 3 and leaves x at x0 = 0; the
    # iterate of step 2 reaches the least-squares optimum ‖b − A x‖ = 1 (NumPy and SciPy too).
    A = sp.csr_array(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    b = np.array([1.0, 0.0, 1.0])
    for method in ("gmres", "fgmres"):
        result = pb.solve(A, b, method=method, rtol=1e-8)
        assert not result.converged
        assert not np.isnan(result.x).any()
        np.testing.assert_allclose(A @ (A @ result.x), A @ b, atol=1e-12)
        assert np.linalg.norm(b - A @ result.x) == pytest.approx(1.0, rel=1e-12)
        assert result.info["true_residual"] == pytest.approx(1.0, rel=1e-12)
        if method == "gmres":
            assert result.reason is ConvergedReason.DIVERGED_BREAKDOWN
            assert result.info["recovery_iterations"] == 2
        # FGMRES claims a happy breakdown with x at the same optimum, which the true residual
        # does not confirm: it ends as stagnation.
    numpy_result = solve(A, b, method="gmres", rtol=1e-8)
    assert np.linalg.norm(b - A @ numpy_result.x) == pytest.approx(1.0, rel=1e-12)


def test_gmres_defective_preconditioner_breakdown():
    # SciPy's TestGMRES.test_defective_precond_breakdown.
    M = np.eye(3)
    M[2, 2] = 0.0
    b = np.array([0.0, 1.0, 1.0])
    x0 = np.array([1.0, 0.0, 0.0])
    A = sp.csr_array(np.diag([2.0, 3.0, 4.0]))
    result = pb.solve(A, b, method="gmres", M=M, x0=x0, rtol=1e-15)
    assert not np.isnan(result.x).any()
    if result.converged:
        assert np.linalg.norm(A @ result.x - b) <= 1e-15 * np.linalg.norm(b)
    np.testing.assert_allclose(M @ (A @ result.x), M @ b, atol=1e-12)


@pytest.mark.parametrize("method, options", [
    ("gmres", {"side": "RIGHT"}), ("gmres", {"side": "Left"}), ("gcrodr", {"side": "LEFT"}),
])
def test_side_is_case_insensitive_as_on_the_numpy_backend(method, options):
    case = CASES["poisson2d"]
    side = options["side"].lower()
    solver = pb.PetscSolver(method, M="jacobi", rtol=1e-8, **options)
    assert solver.side == side and solver.options["side"] == side
    result = solver.solve(case.A, case.b)
    assert result.converged and result.info["side"] == side
    want = PETSc.PC.Side.RIGHT if side == "right" else PETSc.PC.Side.LEFT
    assert solver.ksp.getPCSide() == want
    solver.close()
    numpy_result = solve(case.A, case.b, method=method, M="jacobi", rtol=1e-8, **options)
    assert numpy_result.converged


def _scripted_ksp(solver, script):
    """Replace the solver's KSPSolve by ``script``: (x, PETSc reason name) per KSP solve, one
    iteration each, so that the true-residual policy of KSPRun runs on chosen iterates."""
    steps = iter(script)

    def ksp_solve(b_vec, x_vec):
        x, name = next(steps)
        x_vec.setArray(x)
        ksp = solver.ksp
        ksp.setConvergenceHistory(reset=True)
        ksp.setIterationNumber(1)
        ksp.setResidualNorm(1e-12)  # the method's (wrong) claim
        ksp.logConvergenceHistory(1.0)
        ksp.logConvergenceHistory(1e-12)
        ksp.setConvergedReason(getattr(PETSc.KSP.ConvergedReason, name))

    solver.ksp_solve = ksp_solve


@pytest.mark.parametrize("start, script, expected, returned", [
    # a refuted claim, then a continuation that breaks down further away: the refuted iterate
    (None, [(1e-3, "CONVERGED_RTOL"), (1e-1, "DIVERGED_BREAKDOWN")], 0, "earlier"),
    # every claim refuted (stagnation): the best of them, not the last
    (None, [(1e-2, "CONVERGED_RTOL"), (1e-3, "CONVERGED_RTOL"), (1e-1, "CONVERGED_RTOL"),
            (1e-2, "CONVERGED_RTOL")], 1, "earlier"),
    # the last one is the best: no key
    (None, [(1e-2, "CONVERGED_RTOL"), (1e-3, "DIVERGED_BREAKDOWN")], 1, None),
    # a tie keeps the later iterate
    (None, [(1e-3, "CONVERGED_RTOL"), (1e-3, "DIVERGED_BREAKDOWN")], 1, None),
    # everything worse than a good initial guess, a NaN iterate included: x0
    (1e-4, [(1e-3, "CONVERGED_RTOL"), (np.nan, "DIVERGED_NANORINF")], None, "initial"),
    (1e-4, [(1e-3, "CONVERGED_RTOL"), (1e-2, "DIVERGED_BREAKDOWN")], None, "initial"),
])
def test_a_failed_solve_returns_the_best_of_x0_and_every_attempts_iterate(start, script,
                                                                          expected, returned):
    # x = exact + offset·1: ‖b − A x‖ = 2·|offset|·√n on A = 2 I
    n = 8
    A = sp.csr_array(2.0 * sp.eye(n))
    b = 1.0 + np.arange(n, dtype=float)
    exact = b / 2.0
    iterates = [(exact + offset, name) for offset, name in script]
    x0 = None if start is None else exact + start
    solver = pb.PetscSolver("cg", M=None, rtol=1e-10, maxiter=100)
    _scripted_ksp(solver, iterates)
    result = solver.solve(A, b, x0=x0)
    assert not result.converged
    assert result.info["attempts"] == len(script)
    assert result.info.get("returned_iterate") == returned
    want = x0 if expected is None else iterates[expected][0]
    np.testing.assert_array_equal(result.x, want)
    assert result.info["true_residual"] == pytest.approx(np.linalg.norm(b - A @ want), rel=1e-12)
    solver.close()


@pytest.mark.parametrize("rtol", [1.0, 2.5])
@pytest.mark.parametrize("method", ["cg", "gmres", "bicgstab", "minres", "gcrodr"])
def test_rtol_of_one_or_more_is_met_at_once_by_zero(method, rtol):
    # PETSc's KSPSetTolerances wants rtol < 1 (error 63); the other backends accept any rtol.
    case = CASES["poisson2d"]
    result = pb.solve(case.A, case.b, method=method, M="jacobi", rtol=rtol)
    assert result.reason is ConvergedReason.CONVERGED_RTOL
    assert result.iterations == 0 and result.matvecs == 0 and not np.any(result.x)
    # From a poor initial guess the target ‖b − A x‖ ≤ rtol‖b‖ takes iterations.
    x0 = np.full(case.A.shape[0], 10.0)
    assert np.linalg.norm(case.b - case.A @ x0) > rtol * np.linalg.norm(case.b)
    result = pb.solve(case.A, case.b, method=method, M="jacobi", rtol=rtol, x0=x0)
    assert result.converged and result.iterations >= 1
    assert np.linalg.norm(case.b - case.A @ result.x) <= rtol * np.linalg.norm(case.b)


def test_bicgstab_on_denormal_entries_never_returns_nan():
    # SciPy's test_denormals: 1/a overflows for every entry a of A.
    A = np.array([[1.0, 2.0], [3.0, 4.0]]) * (100 * np.nextafter(0, 1))
    b = np.array([1.0, 1.0])
    for method in ("bicgstab", "gmres", "cg", "minres"):
        result = pb.solve(A, b, method=method)
        assert np.all(np.isfinite(result.x)), method
        if result.converged:
            np.testing.assert_allclose(A @ result.x, b)
        else:
            assert np.linalg.norm(b - A @ result.x) <= np.linalg.norm(b)


@pytest.mark.parametrize("method", ["gmres", "fgmres", "bicgstab", "gcrodr"])
@pytest.mark.parametrize("case_name", ["poisson1d", "advdiff2d", "helmholtz2d"])
def test_exact_preconditioner_needs_at_most_three_products(case_name, method):
    # SciPy's test_precond_inverse: with M = A⁻¹ (a dense matrix through the python PC) the
    # solve is nearly instant. SciPy passes x0 = 0·b, which costs no product here.
    case = CASES[case_name]
    inverse = np.linalg.inv(case.A.toarray())
    for x0 in (None, 0 * case.b):
        result = pb.solve(case.A, case.b, method=method, M=inverse, x0=x0, rtol=1e-8)
        assert result.converged, result.reason
        assert true_relative_residual(case.A, case.b, result.x) <= 1e-8
        assert result.matvecs <= 3


def _far_start(case) -> np.ndarray:
    return np.full(case.A.shape[0], 10.0)


@pytest.mark.parametrize("method, M, case_name, options", [
    ("cg", "jacobi", "helmholtz2d", {}),  # indefinite
    ("richardson", None, "poisson2d", {}),  # diverges
    ("bicgstab", None, "breakdown", {}),  # breakdown
    ("gmres", None, "helmholtz2d", {"restart": 5}),
    ("minres", None, "helmholtz2d", {}),
    ("fcg", "jacobi", "helmholtz2d", {}),
    ("gcrodr", None, "helmholtz2d", {"restart": 6, "k": 2}),
    ("rcg", None, "helmholtz2d", {"k": 2}),
])
@pytest.mark.parametrize("start", ["zero", "good", "far"])
def test_a_failed_solve_returns_a_finite_iterate_no_worse_than_x0(method, M, case_name, options,
                                                                  start):
    case = breakdown_case() if case_name == "breakdown" else CASES[case_name]
    n = case.A.shape[0]
    x_ref = reference_solution(case.A, case.b)
    x0 = {"zero": None, "good": x_ref + 1e-3 * np.sin(np.arange(n)), "far": np.full(n, 10.0)}[start]
    result = pb.solve(case.A, case.b, method=method, M=M, x0=x0, rtol=1e-14, maxiter=30,
                      **options)
    assert not result.converged
    assert np.all(np.isfinite(result.x))
    final = np.linalg.norm(case.b - case.A @ result.x)
    initial = np.linalg.norm(case.b - case.A @ (np.zeros(n) if x0 is None else x0))
    assert final <= initial * (1 + 1e-12)
    assert result.info["true_residual"] == pytest.approx(final, rel=1e-8, abs=1e-300)
    if result.info.get("returned_iterate") == "initial":
        np.testing.assert_array_equal(result.x, np.zeros(n) if x0 is None else x0)
