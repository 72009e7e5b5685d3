"""Relaxation sweeps, preconditioners, stand-alone solvers and Young's ω
(pdesuite.solvers.relaxation).

References are independent of the module: a pure-Python loop over rows for one sweep, the
closed-form SSOR matrix, spsolve for solutions, the closed-form Jacobi spectral radius of the
Laplacian and a brute-force search over ω.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.solvers import ConvergedReason, solve
from pdesuite.solvers.relaxation import (
    RelaxationPreconditioner,
    SORSplitting,
    jacobi_spectral_radius,
    red_black_ordering,
    young_omega,
)
from tests.solvers.matrix_registry import (
    advection_diffusion_2d,
    laplacian_1d,
    laplacian_2d,
    variable_diffusion_2d,
)

# --------------------------------------------------------------------------------------------
# references


def reference_sweep(A: sp.csr_array, b: np.ndarray, x: np.ndarray, omega: float,
                    direction: str) -> np.ndarray:
    """SOR sweep by a plain loop over rows, updating x in place (the textbook definition)."""
    dense = A.toarray()
    x = np.array(x, dtype=np.result_type(dense, x), copy=True)
    n = len(b)
    orders = {"forward": [range(n)], "backward": [range(n - 1, -1, -1)],
              "symmetric": [range(n), range(n - 1, -1, -1)]}[direction]
    for order in orders:
        for i in order:
            sigma = 0.0
            for j in range(n):
                if j != i and dense[i, j] != 0:
                    sigma += dense[i, j] * x[j]
            x[i] = (1 - omega) * x[i] + omega * (b[i] - sigma) / dense[i, i]
    return x


def random_diagonally_dominant(n: int, seed: int, symmetric: bool = False) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    off = sp.random_array((n, n), density=0.15, rng=rng, data_sampler=rng.standard_normal)
    off = sp.csr_array(off - sp.diags_array(off.diagonal()))
    if symmetric:
        off = sp.csr_array(off + off.T)
    row_sums = np.asarray(abs(off).sum(axis=1)).ravel()
    return sp.csr_array(off + sp.diags_array(row_sums + 1.0 + rng.random(n)))


def ssor_matrix(A: sp.csr_array, omega: float) -> np.ndarray:
    """M_SSOR = ω/(2−ω) (D/ω + L) D⁻¹ (D/ω + U) = (D + ωL) D⁻¹ (D + ωU) / (ω(2−ω)), dense."""
    dense = A.toarray()
    D = np.diag(np.diag(dense))
    L, U = np.tril(dense, -1), np.triu(dense, 1)
    return (D + omega * L) @ np.linalg.inv(D) @ (D + omega * U) / (omega * (2 - omega))


# --------------------------------------------------------------------------------------------
# single sweeps against the row loop


@pytest.mark.parametrize("symmetric", [False, True], ids=["nonsymmetric", "symmetric"])
@pytest.mark.parametrize("direction", ["forward", "backward", "symmetric"])
@pytest.mark.parametrize("omega", [1.0, 1.4, 0.7])
def test_sweep_matches_row_loop(direction, omega, symmetric):
    A = random_diagonally_dominant(30, seed=3, symmetric=symmetric)
    rng = np.random.default_rng(4)
    b, x = rng.standard_normal(30), rng.standard_normal(30)
    got = SORSplitting(A, omega).sweep(b, x, direction)
    want = reference_sweep(A, b, x, omega, direction)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())


def test_ssor_sweep_is_forward_then_backward():
    A = random_diagonally_dominant(25, seed=5)
    rng = np.random.default_rng(6)
    b, x = rng.standard_normal(25), rng.standard_normal(25)
    s = SORSplitting(A, 1.3)
    np.testing.assert_allclose(s.sweep(b, x, "symmetric"),
                               s.sweep(b, s.sweep(b, x, "forward"), "backward"), rtol=1e-13)


def test_complex_sweep_matches_row_loop():
    rng = np.random.default_rng(7)
    A = sp.csr_array(random_diagonally_dominant(20, seed=8) + 0.5j * sp.eye_array(20))
    b = rng.standard_normal(20) + 1j * rng.standard_normal(20)
    x = rng.standard_normal(20) + 1j * rng.standard_normal(20)
    got = SORSplitting(A, 1.2).sweep(b, x, "backward")
    np.testing.assert_allclose(got, reference_sweep(A, b, x, 1.2, "backward"), atol=1e-12)


# --------------------------------------------------------------------------------------------
# red–black


def test_red_black_colouring_of_laplacian_is_checkerboard():
    m = 7
    red, black = red_black_ordering(laplacian_2d(m))
    i, j = np.divmod(np.arange(m * m), m)
    np.testing.assert_array_equal(red, np.flatnonzero((i + j) % 2 == 0))
    np.testing.assert_array_equal(black, np.flatnonzero((i + j) % 2 == 1))


def test_red_black_colours_every_component():
    # Two disconnected 1D chains, one of them a single node.
    A = sp.csr_array(sp.block_diag([laplacian_1d(4), sp.csr_array([[3.0]]), laplacian_1d(3)]))
    red, black = red_black_ordering(A)
    np.testing.assert_array_equal(red, [0, 2, 4, 5, 7])
    np.testing.assert_array_equal(black, [1, 3, 6])


def test_red_black_rejects_odd_cycle():
    nine_point = sp.csr_array(laplacian_2d(4) + sp.kron(
        sp.diags_array([1.0, 1.0], offsets=[-1, 1], shape=(4, 4)),
        sp.diags_array([-0.5, -0.5], offsets=[-1, 1], shape=(4, 4))))
    with pytest.raises(ValueError, match="2-colourable"):
        red_black_ordering(nine_point)
    with pytest.raises(ValueError, match="2-colourable"):
        RelaxationPreconditioner(nine_point, kind="sor", ordering="redblack")


@pytest.mark.parametrize("direction", ["forward", "backward", "symmetric"])
def test_red_black_sweep_is_natural_sweep_of_permuted_matrix(direction):
    A = variable_diffusion_2d(9, seed=2, contrast=1.0)
    red, black = red_black_ordering(A)
    perm = np.concatenate([red, black])
    rng = np.random.default_rng(9)
    b, x = rng.standard_normal(81), rng.standard_normal(81)
    got = SORSplitting(A, 1.6, ordering="redblack").sweep(b, x, direction)
    permuted = sp.csr_array(A[perm][:, perm])
    want = reference_sweep(permuted, b[perm], x[perm], 1.6, direction)
    np.testing.assert_allclose(got[perm], want, atol=1e-12 * np.abs(want).max())


# --------------------------------------------------------------------------------------------
# preconditioner


@pytest.mark.parametrize("ordering", ["natural", "redblack"])
@pytest.mark.parametrize("kind,direction", [("sor", "forward"), ("sor", "backward"),
                                            ("gauss-seidel", "forward"), ("ssor", "symmetric")])
def test_preconditioner_is_sweeps_from_zero(kind, direction, ordering):
    A = variable_diffusion_2d(6, seed=1)
    omega = 1.0 if kind == "gauss-seidel" else 1.5
    r = np.random.default_rng(10).standard_normal(36)
    pc = RelaxationPreconditioner(A, kind=kind, omega=omega, sweeps=3, direction=direction,
                                  ordering=ordering)
    split = SORSplitting(A, omega, ordering)
    want = np.zeros(36)
    for _ in range(3):
        want = split.sweep(r, want, direction)
    np.testing.assert_allclose(pc.apply(r), want, rtol=1e-13)
    if ordering == "natural":
        one = reference_sweep(A, r, np.zeros(36), omega, direction)
        one_pc = RelaxationPreconditioner(A, kind=kind, omega=omega, direction=direction)
        np.testing.assert_allclose(one_pc.apply(r), one, atol=1e-12 * np.abs(one).max())


def test_ssor_preconditioner_equals_closed_form_and_is_spd():
    A = variable_diffusion_2d(7, seed=3)
    omega = 1.5
    pc = RelaxationPreconditioner(A, kind="ssor", omega=omega)
    assert pc.symmetric
    rng = np.random.default_rng(11)
    y, z = rng.standard_normal(49), rng.standard_normal(49)
    np.testing.assert_allclose(pc.apply(y), np.linalg.solve(ssor_matrix(A, omega), y), rtol=1e-11)
    assert abs(z @ pc.apply(y) - y @ pc.apply(z)) <= 1e-12 * abs(z @ pc.apply(y))
    Minv = np.column_stack([pc.apply(e) for e in np.eye(49)])
    np.testing.assert_allclose(Minv, Minv.T, atol=1e-13 * np.abs(Minv).max())
    assert np.linalg.eigvalsh(0.5 * (Minv + Minv.T)).min() > 0


def test_symmetric_flag():
    A = laplacian_2d(5)
    assert not RelaxationPreconditioner(A, kind="sor", omega=1.5).symmetric
    assert RelaxationPreconditioner(A, kind="sor", omega=1.5, direction="symmetric").symmetric
    assert RelaxationPreconditioner(A, kind="gauss-seidel", direction="symmetric").symmetric
    assert RelaxationPreconditioner(A, kind="jacobi", omega=0.8).symmetric
    nonsymmetric = advection_diffusion_2d(5)
    assert not RelaxationPreconditioner(nonsymmetric, kind="ssor", omega=1.2).symmetric


def test_weighted_jacobi_preconditioner():
    A = variable_diffusion_2d(5, seed=4)
    r = np.random.default_rng(12).standard_normal(25)
    d = A.diagonal()
    np.testing.assert_allclose(RelaxationPreconditioner(A, kind="jacobi", omega=0.7).apply(r),
                               0.7 * r / d, rtol=1e-15)
    two = RelaxationPreconditioner(A, kind="jacobi", omega=0.7, sweeps=2).apply(r)
    z1 = 0.7 * r / d
    np.testing.assert_allclose(two, z1 + 0.7 * (r - A @ z1) / d, rtol=1e-14)


def test_preconditioner_on_complex_vector_of_real_matrix():
    A = laplacian_2d(4)
    rng = np.random.default_rng(13)
    r = rng.standard_normal(16) + 1j * rng.standard_normal(16)
    pc = RelaxationPreconditioner(A, kind="ssor", omega=1.3)
    np.testing.assert_allclose(pc.apply(r), pc.apply(r.real) + 1j * pc.apply(r.imag), rtol=1e-15)


def test_cg_with_ssor_preconditioner():
    pytest.importorskip("pdesuite.solvers.krylov")
    A = laplacian_2d(24)
    b = np.random.default_rng(14).standard_normal(A.shape[0])
    plain = solve(A, b, method="cg", rtol=1e-8)
    result = solve(A, b, method="cg", M="ssor", pc_omega=1.5, rtol=1e-8)
    assert result.converged
    assert np.linalg.norm(b - A @ result.x) <= 1e-8 * np.linalg.norm(b)
    assert result.iterations < 0.7 * plain.iterations


# --------------------------------------------------------------------------------------------
# stand-alone solvers


def _error_bound(A: sp.csr_array, rtol: float) -> float:
    eig = np.linalg.eigvalsh(A.toarray())
    return eig[-1] / eig[0] * rtol


@pytest.mark.parametrize("matrix", ["poisson1d", "poisson2d"])
@pytest.mark.parametrize("method,options", [
    ("jacobi", {}), ("jacobi", {"omega": 0.8}), ("gauss-seidel", {}),
    ("gauss-seidel", {"direction": "backward"}), ("sor", {"omega": 1.7}),
    ("sor", {"omega": 1.7, "ordering": "redblack"}), ("ssor", {"omega": 1.5}),
])
def test_solvers_converge_to_spsolve(matrix, method, options):
    A = laplacian_1d(20) if matrix == "poisson1d" else laplacian_2d(10)
    n = A.shape[0]
    b = np.random.default_rng(15).standard_normal(n)
    result = solve(A, b, method=method, rtol=1e-8, maxiter=20_000, **options)
    assert result.reason == ConvergedReason.CONVERGED_RTOL
    assert np.linalg.norm(b - A @ result.x) <= 1e-8 * np.linalg.norm(b)
    exact = spla.spsolve(sp.csc_matrix(A), b)
    assert np.linalg.norm(result.x - exact) <= _error_bound(A, 1e-8) * np.linalg.norm(exact)
    assert len(result.residuals) == result.iterations + 1


@pytest.mark.parametrize(
    "method,options",
    [
        ("jacobi", {"omega": 0.9}),
        ("sor", {"omega": 1.6}),
        ("sor", {"omega": 1.6, "direction": "backward"}),
        ("ssor", {"omega": 1.2}),
        ("sor", {"omega": 1.6, "ordering": "redblack"}),
        ("ssor", {"omega": 1.2, "ordering": "redblack"}),
    ],
)
@pytest.mark.parametrize("sweeps", [1, 7])
def test_monitored_residual_is_true_residual(method, options, sweeps):
    A = (
        random_diagonally_dominant(40, seed=16)
        if "ordering" not in options
        else variable_diffusion_2d(6)
    )
    n = A.shape[0]
    rng = np.random.default_rng(17)
    b, x0 = rng.standard_normal(n), rng.standard_normal(n)
    result = solve(A, b, method=method, x0=x0, rtol=1e-14, maxiter=sweeps, **options)
    assert result.iterations == sweeps
    true = np.linalg.norm(b - A @ result.x)
    # A failed solve whose last residual exceeds the initial one returns x0 (never worse).
    monitored = result.residuals[0 if result.info.get("returned_iterate") == "initial" else -1]
    assert monitored == pytest.approx(true, rel=1e-10)
    assert result.residuals[0] == pytest.approx(np.linalg.norm(b - A @ x0), rel=1e-14)


def test_matvec_count():
    A = laplacian_2d(8)
    b = np.random.default_rng(18).standard_normal(64)
    jac = solve(A, b, method="jacobi", rtol=1e-6, maxiter=5000)
    # One product per Jacobi sweep, plus the final true-residual check by solve.
    assert jac.matvecs == jac.iterations + 1
    sor = solve(A, b, method="sor", omega=1.5, rtol=1e-6)
    # The SOR residual comes out of the sweep itself: only the final check is a product.
    assert sor.matvecs == 1
    sor0 = solve(A, b, method="sor", omega=1.5, rtol=1e-6, x0=np.ones(64))
    assert sor0.matvecs == 2


def test_young_omega_needs_far_fewer_sweeps_than_gauss_seidel():
    A = laplacian_2d(32)
    b = np.random.default_rng(19).standard_normal(A.shape[0])
    gs = solve(A, b, method="gauss-seidel", rtol=1e-8, maxiter=20_000)
    sor = solve(A, b, method="sor", omega=young_omega(A), rtol=1e-8)
    assert gs.converged and sor.converged
    assert 5 * sor.iterations <= gs.iterations


def test_divergence_is_reported():
    # Not diagonally dominant: the Jacobi iteration matrix has spectral radius 2.
    A = sp.csr_array(np.array([[1.0, 2.0], [2.0, 1.0]]))
    b = np.array([1.0, 0.3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in ("jacobi", "gauss-seidel"):
            result = solve(A, b, method=method, maxiter=10_000)
            assert result.reason == ConvergedReason.DIVERGED_DTOL
            assert np.all(np.isfinite(result.x))


def test_float32_and_complex_systems():
    A32 = laplacian_2d(8).astype(np.float32)
    b32 = np.random.default_rng(20).standard_normal(64).astype(np.float32)
    r32 = solve(A32, b32, method="sor", omega=1.5, rtol=1e-5)
    assert r32.converged and r32.x.dtype == np.float32
    Ac = sp.csr_array(laplacian_2d(8).astype(complex) + 0.5j * sp.eye_array(64))
    bc = np.random.default_rng(21).standard_normal(64) * (1 + 1j)
    rc = solve(Ac, bc, method="ssor", omega=1.2, rtol=1e-10)
    assert rc.converged
    np.testing.assert_allclose(rc.x, spla.spsolve(sp.csc_matrix(Ac), bc), rtol=1e-8)


# --------------------------------------------------------------------------------------------
# Young's ω


def test_jacobi_radius_and_young_omega_of_laplacian_closed_form():
    m = 12
    A = laplacian_2d(m)
    beta = math.cos(math.pi / (m + 1))
    assert jacobi_spectral_radius(A) == pytest.approx(beta, abs=1e-13)
    assert young_omega(A) == pytest.approx(2 / (1 + math.sin(math.pi / (m + 1))), abs=1e-12)
    # The sparse (ARPACK) path.
    big = laplacian_2d(40)
    assert young_omega(big, dense_limit=0) == pytest.approx(
        2 / (1 + math.sin(math.pi / 41)), abs=1e-8
    )


def test_lanczos_radius_matches_dense_on_variable_coefficients():
    A = variable_diffusion_2d(15, seed=5, contrast=2.0)
    d = A.diagonal()
    want = np.abs(np.linalg.eigvalsh(np.eye(225) - A.toarray() / np.sqrt(np.outer(d, d)))).max()
    assert jacobi_spectral_radius(A, dense_limit=0) == pytest.approx(want, abs=1e-11)
    with pytest.raises(RuntimeError, match="maxiter"):
        jacobi_spectral_radius(A, dense_limit=0, maxiter=20)


def test_jacobi_radius_of_nonsymmetric_matrix():
    A = advection_diffusion_2d(9, peclet=30.0)
    d = A.diagonal()
    J = np.eye(81) - A.toarray() / d[:, None]
    want = np.abs(sla.eigvals(J)).max()
    assert jacobi_spectral_radius(A) == pytest.approx(want, rel=1e-12)
    assert jacobi_spectral_radius(A, dense_limit=0) == pytest.approx(want, rel=1e-8)


def test_young_omega_matches_brute_force_search():
    # The instance-optimal baseline of Learning to Relax: the 10x10 Laplacian (n = 100).
    A = laplacian_2d(10)
    b = np.random.default_rng(22).standard_normal(100)
    grid = np.round(np.arange(1.30, 1.90, 0.01), 2)
    sweeps = np.array([solve(A, b, method="sor", omega=w, rtol=1e-8, maxiter=2000).iterations
                       for w in grid])
    best = grid[sweeps == sweeps.min()]
    omega_star = young_omega(A)
    assert np.min(np.abs(best - omega_star)) <= 0.03


def test_young_omega_rejects_divergent_jacobi():
    with pytest.raises(ValueError, match="Jacobi iteration does not converge"):
        young_omega(sp.csr_array(np.array([[1.0, 2.0], [2.0, 1.0]])))


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("omega", [0.0, 2.0, -1.0, float("nan"), 2.5])
def test_bad_omega(omega):
    A = laplacian_2d(4)
    with pytest.raises(ValueError, match="omega"):
        RelaxationPreconditioner(A, kind="sor", omega=omega)
    with pytest.raises(ValueError, match="omega"):
        SORSplitting(A, omega)
    with pytest.raises(ValueError, match="omega"):
        solve(A, np.ones(16), method="sor", omega=omega)
    with pytest.raises(ValueError, match="omega"):
        solve(A, np.ones(16), method="jacobi", omega=omega)


def test_bad_options():
    A = laplacian_2d(4)
    with pytest.raises(ValueError, match="kind"):
        RelaxationPreconditioner(A, kind="chebyshev")
    with pytest.raises(ValueError, match="direction"):
        RelaxationPreconditioner(A, kind="sor", direction="sideways")
    with pytest.raises(ValueError, match="direction"):
        RelaxationPreconditioner(A, kind="ssor", direction="forward")
    with pytest.raises(ValueError, match="ordering"):
        RelaxationPreconditioner(A, kind="sor", ordering="random")
    with pytest.raises(ValueError, match="sweeps"):
        RelaxationPreconditioner(A, kind="sor", sweeps=0)
    with pytest.raises(ValueError, match="omega"):
        RelaxationPreconditioner(A, kind="gauss-seidel", omega=1.5)
    with pytest.raises(ValueError, match="direction"):
        solve(A, np.ones(16), method="sor", direction="upward")
    with pytest.raises(TypeError, match="omega"):
        solve(A, np.ones(16), method="gauss-seidel", omega=1.5)
    with pytest.raises(ValueError, match="M"):
        solve(A, np.ones(16), method="sor", M="jacobi")


def test_zero_diagonal():
    A = sp.csr_array(np.array([[0.0, 1.0], [1.0, 2.0]]))
    for kind in ("jacobi", "sor", "ssor"):
        with pytest.raises(ValueError, match="diagonal"):
            RelaxationPreconditioner(A, kind=kind)
    with pytest.raises(ValueError, match="diagonal"):
        solve(A, np.ones(2), method="jacobi")
    with pytest.raises(ValueError, match="diagonal"):
        solve(A, np.ones(2), method="sor", omega=1.2)
    with pytest.raises(ValueError, match="diagonal"):
        young_omega(A)
