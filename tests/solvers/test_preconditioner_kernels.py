"""The NumPy backend's named preconditioners on PETSc's kernels
(pdesuite.solvers.petsc_backend.kernels).

References: the SciPy implementations (RelaxationPreconditioner for the sweeps, 1/diag for
Jacobi) and, since SciPy has no level-based factorisation, textbook IC(0) and ILU(0) by plain
loops over a dense copy. Also: the automatic choice between the two paths, the fallback when
petsc4py cannot be imported, the shared CSR arrays, and the failures of IC/ILU.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

from pdesuite.discretization import Grid, fd
from pdesuite.solvers import FunctionPreconditioner, ICPreconditioner, ILUPreconditioner, solve
from pdesuite.solvers.linear_operator import as_operator
from pdesuite.solvers.preconditioner import JacobiPreconditioner, make_preconditioner
from pdesuite.solvers.relaxation import RelaxationPreconditioner
from pdesuite.solvers.validation import split_preconditioner_options
from tests.solvers.matrix_registry import (
    advection_diffusion_2d,
    laplacian_2d,
    variable_diffusion_2d,
)

pytest.importorskip("petsc4py")
from pdesuite.solvers.petsc_backend.kernels import PetscKernelPreconditioner


def build(M, A, **options):
    """What ``solve(A, b, M=M, pc_...=...)`` builds for a ``b`` of A's dtype."""
    op, _ = as_operator(A, np.ones(A.shape[0], dtype=A.dtype))
    _, pc_options = split_preconditioner_options(options)
    return make_preconditioner(M, op, **pc_options)


def close(actual, expected, rtol=1e-10):
    scale = np.abs(expected).max()
    assert np.abs(actual - expected).max() <= rtol * scale, np.abs(actual - expected).max() / scale


# --------------------------------------------------------------------------------------------
# textbook references


def pattern(A: sp.csr_array) -> np.ndarray:
    """The stored entries of A as a dense boolean mask."""
    mask = np.zeros(A.shape, dtype=bool)
    rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    mask[rows, A.indices] = True
    return mask


def textbook_ilu0(A: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """ILU(0), IKJ variant: unit lower L and upper U on the pattern of A."""
    a, keep = A.toarray(), pattern(A)
    n = a.shape[0]
    for i in range(1, n):
        for k in range(i):
            if keep[i, k]:
                a[i, k] /= a[k, k]
                for j in range(k + 1, n):
                    if keep[i, j]:
                        a[i, j] -= a[i, k] * a[k, j]
    return np.tril(a, -1) + np.eye(n), np.triu(a)


def textbook_ic0(A: sp.csr_array) -> np.ndarray:
    """IC(0): lower L with L Lᵀ = A on the lower pattern of A (Cholesky restricted to it)."""
    a, keep = A.toarray(), pattern(A)
    n = a.shape[0]
    L = np.zeros_like(a)
    for k in range(n):
        L[k, k] = np.sqrt(a[k, k] - L[k, :k] @ L[k, :k])
        for i in range(k + 1, n):
            if keep[i, k]:
                L[i, k] = (a[i, k] - L[i, :k] @ L[k, :k]) / L[k, k]
    return L


def ic0_preconditioner(A: sp.csr_array) -> FunctionPreconditioner:
    L = textbook_ic0(A)

    def apply(r):
        y = sla.solve_triangular(L, r, lower=True)
        return sla.solve_triangular(L.T, y, lower=False)

    return FunctionPreconditioner(apply, symmetric=True)


# --------------------------------------------------------------------------------------------
# each kind equals its reference


SYMMETRIC = variable_diffusion_2d(9, seed=3, contrast=2.0)
NONSYMMETRIC = advection_diffusion_2d(9, peclet=30.0)


@pytest.mark.parametrize("matrix", ["symmetric", "nonsymmetric"])
@pytest.mark.parametrize("kind,omega,direction", [
    ("sor", 1.0, "forward"), ("sor", 1.6, "forward"), ("sor", 0.7, "backward"),
    ("sor", 1.3, "symmetric"), ("ssor", 1.0, None), ("ssor", 1.5, None), ("ssor", 0.6, None),
    ("gauss-seidel", None, "forward"), ("gauss-seidel", None, "backward"),
    ("gauss-seidel", None, "symmetric"),
])
@pytest.mark.parametrize("sweeps", [1, 3])
def test_sweeps_equal_the_scipy_implementation(matrix, kind, omega, direction, sweeps):
    A = SYMMETRIC if matrix == "symmetric" else NONSYMMETRIC
    options = {"sweeps": sweeps, "direction": direction}
    if omega is not None:
        options["omega"] = omega
    ours = PetscKernelPreconditioner(A, kind, **options)
    scipy_pc = RelaxationPreconditioner(A, kind=kind, **options)
    rng = np.random.default_rng(1)
    for r in rng.standard_normal((3, A.shape[0])):
        close(ours.apply(r), scipy_pc.apply(r))
    assert ours.symmetric == scipy_pc.symmetric
    assert ours.symmetric == (matrix == "symmetric" and scipy_pc.direction == "symmetric")


@pytest.mark.parametrize(
    "kind,omega,direction",
    [
        (kind, omega, direction)
        for kind, omega in (
            ("sor", 1.4),
            ("sor", 1.0),
            ("ssor", 1.7),
            ("ssor", 1.0),
            ("gauss-seidel", None),
        )
        for direction in (
            ("symmetric",) if kind == "ssor" else ("forward", "backward", "symmetric")
        )
    ],
)
def test_point_sweeps_on_a_matrix_with_inodes(kind, omega, direction):
    # Pairs of rows with one pattern: PETSc's inode SOR would relax each pair as a block (and
    # refuse ω ≠ 1); the kernels must run the point sweeps of the SciPy path.
    A = sp.csr_array(sp.kron(laplacian_2d(5), np.array([[4.0, -1.0], [-1.0, 4.0]]))
                     + 4 * sp.eye_array(50))
    r = np.random.default_rng(2).standard_normal(50)
    options = {"sweeps": 2, "direction": direction}
    if omega is not None:
        options["omega"] = omega
    close(PetscKernelPreconditioner(A, kind, **options).apply(r),
          RelaxationPreconditioner(A, kind=kind, **options).apply(r))


def test_jacobi_is_one_over_the_diagonal():
    r = np.random.default_rng(3).standard_normal(SYMMETRIC.shape[0])
    pc = PetscKernelPreconditioner(SYMMETRIC, "jacobi")
    close(pc.apply(r), r / SYMMETRIC.diagonal())
    assert pc.symmetric


def test_ilu0_equals_the_textbook_factorisation():
    for A in (NONSYMMETRIC, SYMMETRIC):
        L, U = textbook_ilu0(A)
        r = np.random.default_rng(4).standard_normal(A.shape[0])
        expected = sla.solve_triangular(
            U, sla.solve_triangular(L, r, lower=True, unit_diagonal=True)
        )
        pc = PetscKernelPreconditioner(A, "ilu")
        close(pc.apply(r), expected)
        assert not pc.symmetric


def test_ic0_equals_the_textbook_factorisation_and_is_symmetric():
    A = SYMMETRIC
    L = textbook_ic0(A)
    pc = PetscKernelPreconditioner(A, "ic")
    y, z = np.random.default_rng(5).standard_normal((2, A.shape[0]))
    close(pc.apply(y), np.linalg.solve(L @ L.T, y))
    assert pc.symmetric
    assert np.dot(z, pc.apply(y)) == pytest.approx(np.dot(y, pc.apply(z)), rel=1e-12)


def test_complex_residual_of_a_real_matrix():
    rng = np.random.default_rng(6)
    r = rng.standard_normal(SYMMETRIC.shape[0]) + 1j * rng.standard_normal(SYMMETRIC.shape[0])
    for kind in ("ssor", "ic"):
        pc = PetscKernelPreconditioner(SYMMETRIC, kind)
        z = pc.apply(r)
        assert z.dtype == np.complex128
        close(z, pc.apply(r.real) + 1j * pc.apply(r.imag))


def test_apply_leaves_its_input_alone_and_returns_a_fresh_vector():
    pc = PetscKernelPreconditioner(SYMMETRIC, "ssor", omega=1.3)
    r = np.random.default_rng(7).standard_normal(SYMMETRIC.shape[0])
    before = r.copy()
    z1 = pc.apply(r)
    z2 = pc.apply(r[::-1].copy()[::-1])  # the same values through a reversed view
    np.testing.assert_array_equal(r, before)
    assert not np.shares_memory(z1, r) and not np.shares_memory(z1, z2)
    np.testing.assert_array_equal(z1, z2)
    readonly = r.copy()
    readonly.flags.writeable = False
    np.testing.assert_array_equal(pc.apply(readonly), z1)
    with pytest.raises(ValueError, match="^r:"):
        pc.apply(r[:-1])


# --------------------------------------------------------------------------------------------
# iteration counts of the solves


def test_pcg_iteration_counts_equal_the_reference_paths():
    A = variable_diffusion_2d(24, seed=5, contrast=2.0)
    b = np.random.default_rng(8).standard_normal(A.shape[0])
    plain = solve(A, b, method="cg", rtol=1e-8)
    ic = solve(A, b, method="cg", M="ic", rtol=1e-8)
    ic_reference = solve(A, b, method="cg", M=ic0_preconditioner(A), rtol=1e-8)
    assert ic.converged and ic_reference.converged
    assert abs(ic.iterations - ic_reference.iterations) <= 1
    assert ic.iterations < plain.iterations / 3
    for omega in (1.0, 1.5):
        ssor = solve(A, b, method="cg", M="ssor", pc_omega=omega, rtol=1e-8)
        reference = solve(
            A, b, method="cg", M=RelaxationPreconditioner(A, kind="ssor", omega=omega), rtol=1e-8
        )
        assert ssor.converged and reference.converged
        assert abs(ssor.iterations - reference.iterations) <= 1
        assert np.linalg.norm(b - A @ ssor.x) <= 1e-8 * np.linalg.norm(b)
        assert ssor.iterations < 0.7 * plain.iterations


def test_gmres_with_sor_and_ilu_converges():
    A = advection_diffusion_2d(20, peclet=30.0)
    b = np.random.default_rng(9).standard_normal(A.shape[0])
    plain = solve(A, b, method="gmres", rtol=1e-8)
    for M, options in (("sor", {"pc_omega": 1.2}), ("ilu", {}), ("gauss-seidel", {"pc_sweeps": 2})):
        result = solve(A, b, method="gmres", M=M, rtol=1e-8, **options)
        reference_pc = (
            RelaxationPreconditioner(A, kind=M, **{k[3:]: v for k, v in options.items()})
            if M != "ilu"
            else None
        )
        assert result.converged
        assert result.iterations < plain.iterations
        if reference_pc is not None:
            reference = solve(A, b, method="gmres", M=reference_pc, rtol=1e-8)
            assert abs(result.iterations - reference.iterations) <= 1


# --------------------------------------------------------------------------------------------
# which path runs


def test_named_preconditioners_choose_petsc_and_say_so():
    for M in ("ic", "ilu", "sor", "ssor", "gauss-seidel"):
        pc = build(M, SYMMETRIC)
        assert isinstance(pc, PetscKernelPreconditioner), M
        assert pc.backend == "petsc" and "backend='petsc'" in repr(pc)
    assert build("ic", SYMMETRIC, pc_levels=1).options == {"levels": 1}
    jacobi = build("jacobi", SYMMETRIC)
    assert isinstance(jacobi, JacobiPreconditioner) and jacobi.backend == "scipy"


def test_scipy_path_for_what_petsc_does_not_do():
    assert isinstance(build("ic", SYMMETRIC, pc_drop_tol=1e-3), ICPreconditioner)
    ilu = build("ilu", SYMMETRIC, pc_fill_factor=5.0)
    assert isinstance(ilu, ILUPreconditioner) and "backend='scipy'" in repr(ilu)
    red_black = build("ssor", laplacian_2d(6), pc_ordering="redblack")
    assert isinstance(red_black, RelaxationPreconditioner) and red_black.backend == "scipy"
    # Complex and single precision matrices: this PETSc is real float64.
    for A in (sp.csr_array(SYMMETRIC * (1 + 0.5j)), sp.csr_array(SYMMETRIC, dtype=np.float32)):
        pc = build("ssor", A)
        assert isinstance(pc, RelaxationPreconditioner), A.dtype
    with pytest.raises(TypeError, match="exclude each other"):
        build("ilu", SYMMETRIC, pc_levels=1, pc_drop_tol=1e-3)


def test_option_errors_name_the_pc_option():
    with pytest.raises(ValueError, match="^pc_omega"):
        build("sor", SYMMETRIC, pc_omega=2.5)
    with pytest.raises(ValueError, match="^pc_sweeps"):
        build("ssor", SYMMETRIC, pc_sweeps=0)
    with pytest.raises(ValueError, match="^pc_direction"):
        build("ssor", SYMMETRIC, pc_direction="forward")
    with pytest.raises(ValueError, match="^pc_levels"):
        build("ic", SYMMETRIC, pc_levels=-1)
    with pytest.raises(TypeError, match="pc_omega"):
        build("gauss-seidel", SYMMETRIC, pc_omega=1.2)
    with pytest.raises(ValueError, match="diagonal"):
        build("sor", sp.csr_array(np.array([[0.0, 1.0], [1.0, 2.0]])))


@pytest.fixture
def without_petsc4py(monkeypatch):
    """petsc4py cannot be imported, and no module of the PETSc backend is loaded."""
    monkeypatch.setitem(sys.modules, "petsc4py", None)
    monkeypatch.setitem(sys.modules, "petsc4py.PETSc", None)
    for name in [name for name in sys.modules if name.startswith("pdesuite.solvers.petsc_backend")]:
        monkeypatch.delitem(sys.modules, name)


def test_fallback_to_scipy_when_petsc4py_is_missing(without_petsc4py):
    with pytest.raises(ImportError):
        from pdesuite.solvers.petsc_backend import kernels  # noqa: F401
    expected = {"ic": ICPreconditioner, "ilu": ILUPreconditioner, "sor": RelaxationPreconditioner,
                "ssor": RelaxationPreconditioner, "gauss-seidel": RelaxationPreconditioner,
                "jacobi": JacobiPreconditioner}
    for M, cls in expected.items():
        pc = build(M, SYMMETRIC)
        assert type(pc) is cls and pc.backend == "scipy", M
    with pytest.raises(ImportError, match="pc_levels"):
        build("ic", SYMMETRIC, pc_levels=0)
    b = np.ones(SYMMETRIC.shape[0])
    assert solve(SYMMETRIC, b, method="cg", M="ssor").converged


# --------------------------------------------------------------------------------------------
# no copies; failures


def test_the_petsc_matrix_shares_the_csr_arrays():
    A = fd.diffusion(Grid((8, 8)), np.linspace(1.0, 2.0, 64).reshape(8, 8)).A
    assert A.dtype == np.float64 and A.indices.dtype == np.int32
    pc = build("ssor", A)
    x = np.random.default_rng(10).standard_normal(A.shape[0])
    y = pc.mat.createVecLeft()
    pc.mat.mult(_vec(x), y)
    np.testing.assert_allclose(y.getArray(), A @ x, rtol=1e-14)
    A.data *= 2.0  # seen by the Mat: it points at A.data
    pc.mat.mult(_vec(x), y)
    np.testing.assert_allclose(y.getArray(), A @ x, rtol=1e-14)


def _vec(x):
    from petsc4py import PETSc

    return PETSc.Vec().createWithArray(np.array(x), comm=PETSc.COMM_SELF)


@pytest.mark.parametrize("dense,message", [
    ([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]], "non-positive pivot"),  # indefinite
    ([[1.0, 1.0], [1.0, 1.0]], "zero pivot"),                                 # singular
    ([[0.0, 1.0], [1.0, 2.0]], "diagonal"),                                   # no stored diagonal
])
def test_ic_fails_clearly_on_a_bad_pivot(dense, message):
    A = sp.csr_array(np.array(dense))
    with pytest.raises(ValueError, match=f"^M='ic'.*{message}"):
        build("ic", A)
    with pytest.raises(ValueError, match="^M='ic'"):
        solve(A, np.ones(A.shape[0]), method="cg", M="ic")


def test_ilu_fails_clearly_on_a_zero_pivot():
    with pytest.raises(ValueError, match="^M='ilu'.*zero pivot"):
        build("ilu", sp.csr_array(np.array([[1.0, 1.0], [1.0, 1.0]])))
    # An indefinite matrix is fine for ILU.
    build("ilu", sp.csr_array(np.array([[1.0, 2.0], [2.0, 1.0]])))


def test_each_kind_takes_only_its_own_options():
    with pytest.raises(TypeError, match="levels"):
        PetscKernelPreconditioner(SYMMETRIC, "ssor", levels=1)
    with pytest.raises(TypeError, match="omega"):
        PetscKernelPreconditioner(SYMMETRIC, "ic", omega=1.2)
    with pytest.raises(TypeError, match="omega"):
        PetscKernelPreconditioner(SYMMETRIC, "gauss-seidel", omega=1.0)
    with pytest.raises(ValueError, match="ordering"):
        PetscKernelPreconditioner(SYMMETRIC, "sor", ordering="redblack")
