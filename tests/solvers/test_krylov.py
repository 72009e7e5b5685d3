"""NumPy-backend Krylov methods (pdesuite.solvers.krylov) through ``solve``.

References are independent of the module: SciPy's ``spsolve`` for solutions (with the
error bound ``‖x − x*‖/‖x*‖ ≤ κ(A)·‖b − Ax‖/‖b‖``), SciPy's ``cg`` and ``gmres`` for
iteration counts, hand-built matrices whose Krylov behaviour is known in closed form
(a cyclic shift, a matrix with three eigenvalues), and the true residual ``‖b − A x‖``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st

from pdesuite.solvers import (
    ConvergedReason,
    FunctionPreconditioner,
    ICPreconditioner,
    SolverError,
    solve,
)
from pdesuite.solvers.registry import METHODS
from pdesuite.solvers import krylov  # noqa: F401  (registers the methods below)
from tests.solvers.matrix_registry import (
    Case,
    breakdown_case,
    laplacian_2d,
    registry,
)

CASES = {case.name: case for case in registry()}
NONSINGULAR = [name for name, case in CASES.items() if "singular" not in case.tags]
SPD = [name for name in NONSINGULAR if CASES[name].spd]
SYMMETRIC = [name for name in NONSINGULAR if CASES[name].symmetric]
# Jacobi-preconditioned Richardson converges in reasonable time where D⁻¹A has its spectrum
# well inside (0, 2): the 2D cases that are diagonally dominant or SPD and small.
RICHARDSON = ["poisson2d", "diffusion2d", "advdiff2d", "complex_shifted", "poisson2d_float32"]

# (method, options) -> the cases it suits.
SUITED = (
    [(("cg", ()), name) for name in SPD]
    + [(("fcg", ()), name) for name in SPD]
    + [(("minres", ()), name) for name in SYMMETRIC]
    + [(("gmres", (("side", "left"),)), name) for name in NONSINGULAR]
    + [(("gmres", (("side", "right"),)), name) for name in NONSINGULAR]
    + [(("gmres", (("reorthogonalize", "ifneeded"),)), name) for name in NONSINGULAR]
    + [(("fgmres", ()), name) for name in NONSINGULAR]
    + [(("bicgstab", ()), name) for name in NONSINGULAR]
    + [(("richardson", (("M", "jacobi"),)), name) for name in RICHARDSON]
)


def rtol_for(case: Case) -> float:
    return 1e-4 if "float32" in case.tags else 1e-8


def relative_residual(A, b, x) -> float:
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


@pytest.mark.parametrize(
    "method, options, case_name",
    [(m, opts, name) for (m, opts), name in SUITED],
    ids=[f"{m}{''.join('-' + str(v) for _, v in opts)}-{name}" for (m, opts), name in SUITED],
)
def test_suited_cases_converge_to_the_direct_solution(method, options, case_name):
    case = CASES[case_name]
    options = dict(options)
    M = options.pop("M", None)
    rtol = rtol_for(case)
    result = solve(case.A, case.b, method=method, M=M, rtol=rtol, maxiter=5000, **options)

    assert result.converged, result
    assert result.x.dtype == case.b.dtype  # float32 stays float32, complex stays complex
    A64 = case.A.astype(np.result_type(case.A.dtype, np.float64))
    residual = relative_residual(A64, case.b.astype(A64.dtype), result.x.astype(A64.dtype))
    assert residual <= rtol * (1 + 1e-6)
    dense = A64.toarray()
    x_direct = spla.spsolve(sp.csc_matrix(A64), case.b.astype(A64.dtype))
    condition = np.linalg.cond(dense)
    error = np.linalg.norm(result.x - x_direct) / np.linalg.norm(x_direct)
    assert error <= condition * residual * 1.01 + 100 * condition * np.finfo(float).eps
    assert result.iterations == len(result.residuals) - 1


def test_cg_matches_scipy_iteration_count_on_poisson2d():
    case = CASES["poisson2d"]
    steps = []
    spla.cg(case.A, case.b, rtol=1e-8, maxiter=1000, callback=lambda xk: steps.append(1))
    result = solve(case.A, case.b, method="cg", rtol=1e-8)
    assert result.converged
    assert abs(result.iterations - len(steps)) <= 2


def test_preconditioned_cg_matches_scipy_with_the_same_preconditioner():
    case = CASES["diffusion2d"]
    inv_diag = 1.0 / case.A.diagonal()
    M = spla.LinearOperator(case.A.shape, matvec=lambda r: inv_diag * r, dtype=float)
    steps = []
    spla.cg(case.A, case.b, rtol=1e-8, M=M, maxiter=1000, callback=lambda xk: steps.append(1))
    result = solve(case.A, case.b, method="cg", M="jacobi", rtol=1e-8)
    assert result.converged
    assert abs(result.iterations - len(steps)) <= 2


@pytest.mark.parametrize("rtol", [1e-6, 1e-10])
def test_gmres_inner_iterations_match_scipy_on_advdiff2d(rtol):
    case = CASES["advdiff2d"]
    inner = []
    spla.gmres(case.A, case.b, rtol=rtol, restart=20, maxiter=100,
               callback=lambda pr_norm: inner.append(pr_norm), callback_type="pr_norm")
    result = solve(case.A, case.b, method="gmres", restart=20, rtol=rtol)
    assert result.converged
    assert len(inner) > 20  # the comparison spans restarts
    assert abs(result.iterations - len(inner)) <= 2


def test_fcg_equals_cg_for_a_fixed_spd_preconditioner():
    case = CASES["diffusion2d"]
    cg = solve(case.A, case.b, method="cg", M="jacobi", rtol=1e-10)
    fcg = solve(case.A, case.b, method="fcg", M="jacobi", rtol=1e-10)
    assert abs(cg.iterations - fcg.iterations) <= 1
    n = min(len(cg.residuals), len(fcg.residuals)) - 5
    np.testing.assert_allclose(fcg.residuals[:n], cg.residuals[:n], rtol=1e-6)


def test_gmres_orthogonalizations_agree():
    case = CASES["diffusion2d"]
    cgs2 = solve(case.A, case.b, method="gmres", rtol=1e-8, reorthogonalize="ifneeded")
    cgs = solve(case.A, case.b, method="gmres", rtol=1e-8, reorthogonalize="never")
    assert cgs2.info["reorthogonalizations"] > 0
    assert cgs.info["reorthogonalizations"] == 0
    assert abs(cgs2.iterations - cgs.iterations) <= 1


# ---------------------------------------------------------------------------------------------
# Unsuited cases end with a reason, never a silent wrong x
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["cg", "fcg"])
def test_cg_on_indefinite_helmholtz_reports_indefinite_matrix(method):
    case = CASES["helmholtz2d"]
    result = solve(case.A, case.b, method=method, rtol=1e-8, maxiter=1000)
    assert result.reason is ConvergedReason.DIVERGED_INDEFINITE_MAT
    assert not result.converged
    assert np.all(np.isfinite(result.x))


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_indefinite_preconditioner_is_reported(method):
    case = CASES["poisson2d"]
    negative = -sp.eye_array(case.A.shape[0]).tocsr()
    result = solve(case.A, case.b, method=method, M=negative, rtol=1e-8)
    assert result.reason is ConvergedReason.DIVERGED_INDEFINITE_PC
    # A preconditioner with mixed signs is caught during the iteration.
    signs = np.where(np.arange(case.A.shape[0]) % 7 == 0, -1.0, 1.0)
    mixed = sp.diags_array(signs / case.A.diagonal()).tocsr()
    result = solve(case.A, case.b, method=method, M=mixed, rtol=1e-8)
    assert result.reason is ConvergedReason.DIVERGED_INDEFINITE_PC


def test_bicgstab_breakdown_is_reported_with_the_last_valid_iterate():
    case = breakdown_case()
    result = solve(case.A, case.b, method="bicgstab", rtol=1e-8)
    assert result.reason is ConvergedReason.DIVERGED_BREAKDOWN
    assert not result.converged
    np.testing.assert_array_equal(result.x, np.zeros(2))  # the initial guess, untouched
    # The same system is easy for GMRES (two steps span R²).
    gmres = solve(case.A, case.b, method="gmres", rtol=1e-12)
    np.testing.assert_allclose(gmres.x, [0.0, 1.0], atol=1e-12)


@pytest.mark.parametrize(
    "method", ["cg", "fcg", "gmres", "fgmres", "bicgstab", "minres", "richardson"]
)
def test_max_iterations(method):
    case = CASES["poisson2d"]
    M = "jacobi" if method == "richardson" else None  # plain Richardson diverges here
    result = solve(case.A, case.b, method=method, M=M, rtol=1e-12, maxiter=7)
    assert result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS
    assert not result.converged
    assert result.iterations == 7
    assert relative_residual(case.A, case.b, result.x) > 1e-12


@pytest.mark.parametrize("method", ["cg", "gmres", "minres"])
def test_singular_consistent_system(method):
    case = CASES["singular_consistent"]
    result = solve(case.A, case.b, method=method, rtol=1e-8)
    assert result.converged
    assert relative_residual(case.A, case.b, result.x) <= 1e-8
    # From x0 = 0 the Krylov space of a symmetric A lies in its range: no constant component.
    assert abs(result.x.mean()) <= 1e-8 * np.linalg.norm(result.x)


def test_gmres_stagnates_on_a_cyclic_shift():
    # For the cyclic shift S and b = e1, GMRES(m) with m < n cannot reduce ‖r‖ at all:
    # every Krylov vector S^k e1 is orthogonal to b until k = n.
    n = 10
    shift = sp.csr_array(np.roll(np.eye(n), 1, axis=0))
    b = np.zeros(n)
    b[0] = 1.0
    result = solve(shift, b, method="gmres", restart=4, rtol=1e-8)
    assert result.reason is ConvergedReason.DIVERGED_STAGNATION
    assert result.iterations == 4
    np.testing.assert_allclose(result.residuals, 1.0)
    # With restart = n the exact solution S⁻¹e1 = e_n appears after n steps.
    full = solve(shift, b, method="gmres", restart=n, rtol=1e-8)
    assert full.converged and full.iterations == n
    np.testing.assert_allclose(full.x, np.eye(n)[n - 1], atol=1e-12)


@pytest.mark.parametrize("method", ["gmres", "fgmres", "minres", "cg"])
def test_three_eigenvalues_converge_in_three_steps(method):
    # A Krylov space of a matrix with three distinct eigenvalues is at most 3-dimensional.
    values = np.repeat([1.0, 2.0, 5.0], 10)
    A = sp.diags_array(values).tocsr()
    b = np.random.default_rng(3).standard_normal(30)
    result = solve(A, b, method=method, rtol=1e-12)
    assert result.converged
    assert result.iterations == 3
    np.testing.assert_allclose(result.x, b / values, rtol=1e-10)


def test_richardson_with_too_large_omega_diverges():
    case = CASES["poisson2d"]
    result = solve(case.A, case.b, method="richardson", M="jacobi", omega=3.0, rtol=1e-8)
    assert result.reason is ConvergedReason.DIVERGED_DTOL
    assert result.residuals[-1] > 1e5 * result.residuals[0]


# ---------------------------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["cg", "gmres", "fgmres", "bicgstab", "minres", "richardson"])
def test_float32_stays_float32(method):
    case = CASES["poisson2d_float32"]
    result = solve(case.A, case.b, method=method, M="jacobi", rtol=1e-4, maxiter=3000)
    assert result.converged
    assert result.x.dtype == np.float32
    assert (
        relative_residual(case.A.astype(float), case.b.astype(float), result.x.astype(float))
        <= 1e-4
    )


@pytest.mark.parametrize("method", ["cg", "minres", "gmres", "bicgstab", "fcg"])
def test_complex_hermitian_positive_definite(method):
    rng = np.random.default_rng(11)
    n = 30
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    A = (Q * np.linspace(1.0, 50.0, n)) @ Q.conj().T
    b = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    result = solve(A, b, method=method, rtol=1e-10)
    assert result.converged
    assert result.x.dtype == np.complex128
    np.testing.assert_allclose(result.x, np.linalg.solve(A, b), rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Preconditioning
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("M", ["ilu", "jacobi"])
@pytest.mark.parametrize("case_name", ["advdiff2d", "diffusion2d"])
def test_left_and_right_gmres_both_converge(M, case_name):
    case = CASES[case_name]
    for side in ("left", "right"):
        result = solve(case.A, case.b, method="gmres", M=M, side=side, rtol=1e-8)
        assert result.converged, (side, result)
        assert relative_residual(case.A, case.b, result.x) <= 1e-8
        assert result.precond_applies >= result.iterations
        # The monitored history starts at the true ‖r0‖ = ‖b‖ on both sides.
        assert result.residuals[0] == pytest.approx(np.linalg.norm(case.b), rel=1e-12)
    plain = solve(case.A, case.b, method="gmres", rtol=1e-8)
    if M == "ilu":
        assert result.iterations < plain.iterations / 3
    else:  # Jacobi is a scalar multiple of I on advdiff2d's constant diagonal
        assert result.iterations <= plain.iterations


@pytest.mark.parametrize("side", ["left", "right"])
def test_gmres_monitored_norms_are_the_minimised_residuals(side):
    # Left: the history is ‖M r_k‖ scaled by ‖r_0‖/‖M r_0‖; right: ‖r_k‖ itself.
    case = CASES["diffusion2d"]
    inv_diag = 1.0 / case.A.diagonal()
    for steps in (3, 10):
        result = solve(case.A, case.b, method="gmres", M="jacobi", side=side, rtol=1e-12,
                       maxiter=steps)
        assert result.iterations == steps
        r = case.b - case.A @ result.x
        if side == "left":
            expected = np.linalg.norm(inv_diag * r) / np.linalg.norm(inv_diag * case.b)
        else:
            expected = np.linalg.norm(r) / np.linalg.norm(case.b)
        assert result.residuals[-1] / result.residuals[0] == pytest.approx(expected, rel=1e-8)


def inner_cg_preconditioner(A, steps: int = 3) -> FunctionPreconditioner:
    """A few CG steps on A z = r from z = 0: nonlinear in r (CG coefficients depend on r)."""

    def apply(r: np.ndarray) -> np.ndarray:
        z = np.zeros_like(r)
        res = r.copy()
        p = res.copy()
        rr = res @ res
        for _ in range(steps):
            q = A @ p
            alpha = rr / (p @ q)
            z += alpha * p
            res -= alpha * q
            rr_next = res @ res
            p = res + (rr_next / rr) * p
            rr = rr_next
        return z

    return FunctionPreconditioner(apply, linear=False)


def test_inner_cg_preconditioner_is_really_nonlinear():
    A = CASES["diffusion2d"].A
    pc = inner_cg_preconditioner(A)
    rng = np.random.default_rng(5)
    r1, r2 = rng.standard_normal((2, A.shape[0]))
    defect = pc.apply(r1 + r2) - pc.apply(r1) - pc.apply(r2)
    assert np.linalg.norm(defect) > 1e-3 * np.linalg.norm(pc.apply(r1))


@pytest.mark.parametrize("method, case_name", [("fgmres", "diffusion2d"), ("fgmres", "advdiff2d"),
                                                 ("fcg", "diffusion2d")])
def test_flexible_methods_converge_with_a_nonlinear_preconditioner(method, case_name):
    case = CASES[case_name]
    options = {"restart": 20} if method == "fgmres" else {}
    with_pc = solve(case.A, case.b, method=method, M=inner_cg_preconditioner(case.A), rtol=1e-8,
                    **options)
    assert with_pc.converged
    assert relative_residual(case.A, case.b, with_pc.x) <= 1e-8
    plain = solve(case.A, case.b, method=method, rtol=1e-8, **options)
    assert with_pc.iterations < plain.iterations


def test_gmres_warns_about_a_nonlinear_preconditioner():
    case = CASES["diffusion2d"]
    with pytest.warns(UserWarning, match="nonlinear"):
        solve(case.A, case.b, method="gmres", M=inner_cg_preconditioner(case.A), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# solve() behaviour around the methods
# ---------------------------------------------------------------------------------------------


def test_the_methods_are_registered_with_their_options():
    expected = {
        "cg": (False, ()),
        "fcg": (True, ("mmax", "normalize_input", "residual_replacement")),
        "gmres": (False, ("restart", "side", "reorthogonalize")),
        "fgmres": (True, ("restart", "reorthogonalize")),
        "bicgstab": (False, ()),
        "minres": (False, ()),
        "richardson": (False, ("omega",)),
    }
    for name, (flexible, options) in expected.items():
        assert METHODS[name].flexible is flexible
        assert METHODS[name].options == options


def test_raise_on_failure_carries_the_result():
    case = CASES["poisson2d"]
    with pytest.raises(SolverError) as caught:
        solve(case.A, case.b, method="gmres", rtol=1e-12, maxiter=5, raise_on_failure=True)
    assert caught.value.result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS
    assert caught.value.result.iterations == 5


@pytest.mark.parametrize(
    "method", ["cg", "fcg", "gmres", "fgmres", "bicgstab", "minres", "richardson"]
)
def test_zero_rhs_gives_zero_without_iterating(method):
    A = laplacian_2d(5)
    result = solve(A, np.zeros(25), method=method)
    assert result.converged
    assert result.iterations == 0
    np.testing.assert_array_equal(result.x, np.zeros(25))


def test_initial_guess_is_used_and_an_exact_guess_stops_at_once():
    case = CASES["poisson2d"]
    exact = spla.spsolve(sp.csc_matrix(case.A), case.b)
    for method in ("cg", "gmres", "minres", "bicgstab"):
        result = solve(case.A, case.b, method=method, x0=exact, rtol=1e-8)
        assert result.converged and result.iterations == 0


def test_callback_sees_every_iteration():
    case = CASES["advdiff2d"]
    seen = []
    result = solve(case.A, case.b, method="gmres", restart=10, rtol=1e-8,
                   callback=lambda k, norm: seen.append((k, norm)))
    assert [k for k, _ in seen] == list(range(1, result.iterations + 1))
    np.testing.assert_allclose([norm for _, norm in seen], result.residuals[1:])


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(b=np.ones(7)), ValueError, "b"),
        (dict(A=sp.csr_array(np.ones((4, 5)))), ValueError, "A"),
        (dict(A=sp.csr_array(np.diag([1.0, np.nan, 1.0, 1.0]))), ValueError, "A"),
        (dict(b=np.array([1.0, np.nan, 0.0, 0.0])), ValueError, "b"),
        (dict(rtol=-1.0), ValueError, "rtol"),
        (dict(maxiter=0), ValueError, "maxiter"),
        (dict(method="conjugate-residuals"), ValueError, "method"),
        (dict(method="cg", restart=10), TypeError, "option"),
        (dict(method="gmres", restart=0), ValueError, "restart"),
        (dict(method="fgmres", restart=2.5), ValueError, "restart"),
        (dict(method="gmres", side="up"), ValueError, "side"),
        (dict(method="gmres", reorthogonalize="householder"), ValueError, "reorthogonalize"),
        (dict(method="richardson", omega=0.0), ValueError, "omega"),
        (dict(method="richardson", omega=float("inf")), ValueError, "omega"),
        (dict(method="fcg", mmax=0), ValueError, "mmax"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, pattern):
    arguments = dict(A=laplacian_2d(2), b=np.ones(4), method="gmres")
    arguments.update(kwargs)
    A, b = arguments.pop("A"), arguments.pop("b")
    with pytest.raises(error, match=pattern):
        solve(A, b, **arguments)


# ---------------------------------------------------------------------------------------------
# Property: whenever a method says converged, the true residual meets the tolerance
# ---------------------------------------------------------------------------------------------


def random_spd(rng: np.random.Generator, n: int, condition: float) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, condition, n)) @ Q.T


def random_nonsymmetric(rng: np.random.Generator, n: int) -> np.ndarray:
    return 3.0 * np.eye(n) + rng.standard_normal((n, n)) / np.sqrt(n)


METHOD_VARIANTS = [("cg", {}), ("gmres", {"side": "left"}), ("gmres", {"side": "right"}),
                   ("fgmres", {}), ("bicgstab", {}), ("minres", {}), ("fcg", {})]


@settings(derandomize=True, max_examples=25, deadline=None)
@given(n=st.integers(5, 40), seed=st.integers(0, 2**31 - 1), spd=st.booleans(),
       log_condition=st.floats(0.0, 3.0), rtol=st.sampled_from([1e-4, 1e-8, 1e-11]),
       atol=st.sampled_from([0.0, 1e-6]), preconditioned=st.booleans(),
       restart=st.integers(2, 30))
def test_converged_means_true_residual_below_tolerance(n, seed, spd, log_condition, rtol, atol,
                                                       preconditioned, restart):
    rng = np.random.default_rng(seed)
    A = random_spd(rng, n, 10.0**log_condition) if spd else random_nonsymmetric(rng, n)
    b = rng.standard_normal(n)
    M = "jacobi" if preconditioned and np.all(np.diag(A) > 0) else None
    target = max(rtol * np.linalg.norm(b), atol) * (1 + 1e-12)
    for method, options in METHOD_VARIANTS:
        if method in ("cg", "minres", "fcg") and not spd:
            continue
        if method in ("gmres", "fgmres"):
            options = {**options, "restart": restart}
        result = solve(A, b, method=method, M=M, rtol=rtol, atol=atol, maxiter=2000, **options)
        assert result.reason.converged == result.converged
        if result.converged:
            assert np.linalg.norm(b - A @ result.x) <= target, (method, options, result)
        else:
            # Only the hard combination may fail: tiny rtol on the worst-conditioned matrices.
            assert rtol == 1e-11, (method, options, result)


def test_cg_with_a_named_nonsymmetric_preconditioner_warns():
    case = CASES["diffusion2d"]
    with pytest.warns(UserWarning, match="M='ilu' is not symmetric"):
        solve(case.A, case.b, method="cg", M="ilu", maxiter=3)


def test_ic_preconditioner_is_symmetric_and_matches_its_factors():
    A = CASES["diffusion2d"].A
    pc = ICPreconditioner(A)
    rng = np.random.default_rng(7)
    y, z = rng.standard_normal((2, A.shape[0]))
    assert np.dot(z, pc.apply(y)) == pytest.approx(np.dot(y, pc.apply(z)), rel=1e-12)
    # M = L D Lᵀ: applying M to M⁻¹ y gives y back.
    M = (pc.L @ sp.diags_array(1.0 / pc.inv_pivots) @ pc.L.T)
    np.testing.assert_allclose(M @ pc.apply(y), y, rtol=1e-10, atol=1e-10)


def test_fcg_normalizes_the_input_of_a_nonlinear_preconditioner():
    """A nonlinear M that is not homogeneous (M(s r) ≠ s M(r)) makes FCG depend on the scale
    of b, unless M sees r/‖r‖: then solving for 1000·b gives 1000 times the residuals."""
    case = CASES["poisson2d"]
    c = np.random.default_rng(3).standard_normal(case.b.size)
    nonlinear = FunctionPreconditioner(lambda r: r + 0.1 * np.dot(r, r) * c, linear=False)

    def histories(normalize_input):
        return [solve(case.A, scale * case.b, method="fcg", M=nonlinear, rtol=1e-10,
                      maxiter=20, normalize_input=normalize_input).residuals / scale
                for scale in (1.0, 1000.0)]

    small, large = histories(True)
    np.testing.assert_allclose(large, small, rtol=1e-6)
    small, large = histories(False)
    assert not np.allclose(large[:5], small[:5], rtol=1e-3)


def test_fcg_residual_replacement_costs_one_matvec_each_and_keeps_the_iterates():
    case = CASES["poisson2d"]
    plain = solve(case.A, case.b, method="fcg", rtol=1e-10)
    replaced = solve(case.A, case.b, method="fcg", rtol=1e-10, residual_replacement=5)
    assert abs(replaced.iterations - plain.iterations) <= 1
    assert replaced.matvecs == plain.matvecs + replaced.iterations // 5 + (
        replaced.iterations - plain.iterations)
