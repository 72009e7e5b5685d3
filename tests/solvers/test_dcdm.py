"""method="dcdm": the deep conjugate direction iteration on the NumPy and torch backends."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.solvers import FunctionPreconditioner, solve
from pdesuite.solvers.result import ConvergedReason


def _poisson(m: int) -> sp.csr_array:
    """The 5-point Dirichlet Laplacian on an ``m x m`` interior grid, ``[m², m²]``."""
    one = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    return sp.csr_array(sp.kron(sp.eye(m), one) + sp.kron(one, sp.eye(m)))


def test_with_the_identity_dcdm_reproduces_cg_iterates():
    A = _poisson(12)
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    for steps in (1, 5, 15):
        cg = solve(A, b, method="cg", maxiter=steps, rtol=1e-14)
        dcdm = solve(A, b, method="dcdm", maxiter=steps, rtol=1e-14)
        assert cg.iterations == dcdm.iterations == steps
        np.testing.assert_allclose(dcdm.x, cg.x, rtol=1e-9, atol=1e-12 * np.abs(cg.x).max())
    full = solve(A, b, method="dcdm")
    assert full.converged and full.iterations == solve(A, b, method="cg").iterations


def test_with_the_exact_inverse_as_a_nonlinear_preconditioner_it_converges_in_one_step():
    A = _poisson(10)
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    lu = spla.splu(sp.csc_matrix(A))
    M = FunctionPreconditioner(lu.solve, linear=False)
    result = solve(A, b, method="dcdm", M=M)
    assert result.converged and result.iterations == 1
    assert np.linalg.norm(b - A @ result.x) <= 1e-12 * np.linalg.norm(b)


def test_a_useless_preconditioner_ends_with_a_reason_not_a_hang():
    A = _poisson(8)
    b = np.random.default_rng(2).standard_normal(A.shape[0])
    zero = FunctionPreconditioner(lambda r: np.zeros_like(r), linear=False)
    result = solve(A, b, method="dcdm", M=zero, maxiter=50)
    assert not result.converged and result.reason is ConvergedReason.DIVERGED_BREAKDOWN
    rng = np.random.default_rng(3)
    noise = FunctionPreconditioner(lambda r: rng.standard_normal(r.shape), linear=False)
    result = solve(A, b, method="dcdm", M=noise, maxiter=20)
    assert not result.converged and result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS


def test_the_torch_backend_runs_the_same_iteration():
    pytest.importorskip("torch")
    A = _poisson(12)
    b = np.random.default_rng(4).standard_normal(A.shape[0])
    numpy_result = solve(A, b, method="dcdm", M="jacobi")
    torch_result = solve(A, b, method="dcdm", M="jacobi", backend="torch")
    assert torch_result.converged and torch_result.iterations == numpy_result.iterations
    np.testing.assert_allclose(torch_result.x, numpy_result.x, rtol=1e-7, atol=1e-10)


def test_the_petsc_python_ksp_runs_the_same_iteration_as_numpy():
    pytest.importorskip("petsc4py")
    A = _poisson(16)
    b = np.random.default_rng(3).standard_normal(A.shape[0])
    for M in (None, "jacobi"):
        numpy = solve(A, b, method="dcdm", M=M)
        petsc = solve(A, b, method="dcdm", M=M, backend="petsc", mmax=2)
        assert numpy.converged and petsc.converged
        assert petsc.iterations == numpy.iterations
        np.testing.assert_allclose(petsc.x, numpy.x, rtol=1e-10, atol=0)
    with pytest.raises(ValueError, match="^mmax"):
        solve(A, b, method="dcdm", backend="petsc", mmax=0)
