"""SciPy's iterative-solver test registry, and SciPy's known-failure tests, run through ``solve``.

Part 1 runs every case of SciPy's own registry (``IterativeParams`` of
``scipy/sparse/linalg/_isolve/tests/test_iterative.py``, loaded by
:mod:`tests.solvers.scipy_cases`) through our methods on each backend. A method runs on a
case when the SciPy solver that shares its theory runs there (SciPy's skip lists):
cg → cg/fcg/rcg, gmres → gmres/fgmres/gcrodr, minres → minres, bicgstab → bicgstab; plus
Jacobi-preconditioned Richardson (numpy) on the cases SciPy gives to CG. Every result must be
honest: converged means ``‖b − A x‖ ≤ max(rtol·‖b‖, atol)`` on the true residual (computed here
in float64), and a failure returns a finite x no worse than x0. Where SciPy's
``test_convergence`` asserts convergence for a solver, ours must converge on the numpy backend.

Part 2 holds one regression test per known failure, modelled on SciPy's tests, on every
backend where the method exists. The torch backend takes real float32/float64 systems (A as
SciPy sparse or dense NumPy, b as NumPy) and returns a tensor; PETSc here is real float64.
Complex cases run on the numpy backend only; float32 cases skip PETSc (they would be the
float64 case after conversion).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.linalg import norm

from pdesuite.solvers import ConvergedReason, solve
from tests.solvers.scipy_cases import (
    SCIPY_TO_OURS,
    import_scipy_registry,
    load_cases,
    rebuild_cases,
)

CASES = {case.name: case for case in load_cases()}

#: Methods of each backend that these tests exercise.
KRYLOV_NUMPY = ("cg", "fcg", "rcg", "gmres", "fgmres", "gcrodr", "bicgstab", "minres")
BACKEND_METHODS = {
    "numpy": KRYLOV_NUMPY + ("richardson",),
    "torch": ("cg", "fcg", "gmres", "fgmres"),
    "petsc": ("cg", "fcg", "gmres", "fgmres", "bicgstab", "minres", "gcrodr", "rcg"),
}
BACKENDS = ("numpy", "torch", "petsc")
RTOL_DOUBLE = 1e-8  # SciPy's test_convergence for double precision
RTOL_SINGLE = 1e-4  # runs in float32 arithmetic (torch with a float32 system)


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------

def backend_param(backend: str, *values, id: str):
    marks = (pytest.mark.petsc,) if backend == "petsc" else ()
    return pytest.param(*values, id=id, marks=marks)


def run(request, backend: str, A, b, method: str, **kwargs):
    """``solve`` on ``backend``; returns ``(result, x as a NumPy array)``.

    Skips when the backend's library is missing. A and b go in as NumPy/SciPy objects.
    """
    if backend == "torch":
        pytest.importorskip("torch")
        request.getfixturevalue("one_torch_thread")
    elif backend == "petsc":
        pytest.importorskip("petsc4py")
    result = solve(A, b, method=method, backend=backend, **kwargs)
    x = result.x
    if backend == "torch":
        x = x.detach().cpu().numpy()
    return result, np.asarray(x)


def as_double(A, b, x):
    """A, b, x promoted to float64/complex128 for an exact-enough residual."""
    dtype = np.result_type(getattr(A, "dtype", np.float64), np.asarray(b).dtype,
                           np.asarray(x).dtype, np.float64)
    A64 = A.astype(dtype) if sp.issparse(A) else np.asarray(A, dtype=dtype)
    return A64, np.asarray(b, dtype=dtype), np.asarray(x, dtype=dtype)


def true_residual(A, b, x) -> float:
    A64, b64, x64 = as_double(A, b, x)
    return float(norm(b64 - A64 @ x64))


def assert_honest(A, b, x, result, rtol, atol=0.0, x0=None, maxiter=None, single=False):
    """The honest-result contract of every solve (see the module docstring)."""
    b = np.asarray(b)
    x = np.asarray(x)
    assert x.shape == b.shape, f"x has shape {x.shape}, b has {b.shape}"
    assert isinstance(result.reason, ConvergedReason)
    if maxiter is not None:
        assert result.iterations <= maxiter, result
    residual = true_residual(A, b, x)
    if result.converged:
        bound = max(rtol * norm(np.asarray(b, dtype=np.complex128)), atol) * (1 + 1e-6)
        if single:
            # A float32 solve confirms its residual in float32, where b − A x carries a
            # rounding error of up to a few eps·‖|A| |x|‖ (a standard bound, n-independent
            # in practice); the float64 check here may see that much more.
            A64, _, x64 = as_double(A, b, x)
            bound += 10 * np.finfo(np.float32).eps * float(norm(abs(A64) @ np.abs(x64)))
        assert residual <= bound, (
            f"{result!r} claims convergence but ‖b − A x‖ = {residual:.3e} > {bound:.3e}")
    else:
        assert np.all(np.isfinite(x)), f"{result!r} returned non-finite entries"
        x0 = np.zeros_like(b) if x0 is None else x0
        start = true_residual(A, b, x0)
        slack = 10 * np.finfo(np.float32).eps if single else 1e-12
        assert residual <= start * (1 + slack), (
            f"{result!r} returned ‖b − A x‖ = {residual:.6e}, worse than x0's {start:.6e}")
    return residual


def poisson1d(n: int) -> sp.csr_array:
    return sp.diags_array([2.0 * np.ones(n), -np.ones(n - 1), -np.ones(n - 1)],
                          offsets=[0, -1, 1]).tocsr()


# ------------------------------------------------------------------------------------------
# Part 1: SciPy's registry
# ------------------------------------------------------------------------------------------

def _registry_params():
    params = []
    for case in CASES.values():
        for scipy_solver, methods in SCIPY_TO_OURS.items():
            if scipy_solver in case.skip:
                continue
            scipy_converges = scipy_solver not in case.nonconvergence
            if scipy_solver == "cg":
                methods = methods + ("rcg",)
            for method in methods:
                for backend in BACKENDS:
                    if method not in BACKEND_METHODS[backend]:
                        continue
                    if backend != "numpy" and case.is_complex:
                        continue
                    if backend == "petsc" and case.dtype != np.float64:
                        continue
                    params.append(backend_param(
                        backend, case.name, method, backend, scipy_converges, None,
                        id=f"{case.name}-{method}-{backend}"))
        if "cg" not in case.skip:
            params.append(backend_param("numpy", case.name, "richardson", "numpy", False,
                                        "jacobi", id=f"{case.name}-richardson-jacobi-numpy"))
    return params


@pytest.mark.parametrize("case_name, method, backend, scipy_converges, M", _registry_params())
def test_scipy_case(request, case_name, method, backend, scipy_converges, M):
    case = CASES[case_name]
    A, b = case.A, case.b
    single = backend == "torch" and case.dtype == np.float32
    if single:
        b = b.astype(np.float32)  # a float32 system runs in float32 on torch
    rtol = RTOL_SINGLE if single else RTOL_DOUBLE
    maxiter = 10 * case.n  # SciPy's default for cg, bicgstab (and gmres' restart cycles)
    x0 = np.zeros_like(b)

    result, x = run(request, backend, A, b, method, M=M, x0=x0, rtol=rtol, atol=0.0,
                    maxiter=maxiter)

    np.testing.assert_array_equal(x0, 0)  # x0 is not overwritten
    assert_honest(A, b, x, result, rtol, x0=x0, maxiter=maxiter, single=single)
    if scipy_converges and backend == "numpy" and method != "richardson":
        assert result.converged, f"SciPy converges on {case_name}; ours: {result!r}"


def test_cases_are_scipys_or_rebuilt_identically():
    """The fallback of scipy_cases builds SciPy's very matrices (checked when SciPy's tests
    ship)."""
    scipy_cases = import_scipy_registry()
    if scipy_cases is None:
        pytest.skip("SciPy's test module is not available; the rebuilt cases are in use")
    assert all(case.source == "scipy" for case in CASES.values())
    rebuilt = rebuild_cases()
    assert [c.name for c in scipy_cases] == [c.name for c in rebuilt]
    for theirs, ours in zip(scipy_cases, rebuilt):
        A = theirs.A.toarray() if sp.issparse(theirs.A) else np.asarray(theirs.A)
        assert A.dtype == ours.dense().dtype, theirs.name
        np.testing.assert_array_equal(A, ours.dense(), err_msg=theirs.name)
        np.testing.assert_array_equal(theirs.b, ours.b, err_msg=theirs.name)
        assert {s.__name__ for s in theirs.skip} == ours.skip, theirs.name
        assert {s.__name__ for s in theirs.nonconvergence} == ours.nonconvergence, theirs.name


def _precond_inverse_params():
    params = []
    for name in ("poisson1d", "poisson2d"):
        for scipy_solver, methods in SCIPY_TO_OURS.items():
            if scipy_solver not in CASES[name].skip:
                params += [pytest.param(name, m, id=f"{name}-{m}") for m in methods]
    return params


@pytest.mark.parametrize("case_name, method", _precond_inverse_params())
def test_scipy_precond_inverse_needs_at_most_three_matvecs(case_name, method):
    """SciPy's test_precond_inverse: with M = A⁻¹ the solve is nearly instant (≤ 3 products)."""
    case = CASES[case_name]
    factor = sla.lu_factor(case.dense())
    M = spla.LinearOperator(case.A.shape, matvec=lambda r: sla.lu_solve(factor, r),
                            dtype=np.float64)
    result = solve(case.A, case.b, method=method, M=M, rtol=1e-8, atol=0.0)

    assert_honest(case.A, case.b, result.x, result, 1e-8)
    assert result.converged, result
    assert result.matvecs <= 3, result


# ------------------------------------------------------------------------------------------
# Part 2: regressions, one per known failure
# ------------------------------------------------------------------------------------------

def _params(methods_by_backend: dict, prefix: str = ""):
    return [backend_param(backend, backend, method, id=f"{prefix}{method}-{backend}")
            for backend, methods in methods_by_backend.items() for method in methods]


# a. BiCGStab on SciPy's nonsymposdef ------------------------------------------------------

@pytest.mark.parametrize("backend, method", _params({"numpy": ["bicgstab"],
                                                     "petsc": ["bicgstab"]}))
def test_bicgstab_converges_on_scipy_nonsymposdef(request, backend, method):
    A = sp.diags_array([2.0 * np.ones(10), -np.ones(9)], offsets=[0, -1]).tocsr()
    b = np.arange(10, dtype=float)
    result, x = run(request, backend, A, b, method, rtol=1e-8, atol=0.0)

    assert_honest(A, b, x, result, 1e-8)
    assert result.converged, result  # SciPy: 9 iterations
    assert result.iterations <= 12, result


# b. SciPy's test_defective_precond_breakdown ----------------------------------------------

@pytest.mark.parametrize("backend, method, options", [
    pytest.param("numpy", "gmres", {"side": "right"}, id="gmres-right-numpy"),
    pytest.param("numpy", "gmres", {"side": "left"}, id="gmres-left-numpy"),
    pytest.param("numpy", "fgmres", {}, id="fgmres-numpy"),
    pytest.param("torch", "gmres", {}, id="gmres-torch"),
    pytest.param("torch", "fgmres", {}, id="fgmres-torch"),
    pytest.param("petsc", "gmres", {}, id="gmres-petsc", marks=pytest.mark.petsc),
    pytest.param("petsc", "gmres", {"side": "right"}, id="gmres-right-petsc",
                 marks=pytest.mark.petsc),
    pytest.param("petsc", "fgmres", {}, id="fgmres-petsc", marks=pytest.mark.petsc),
])
def test_defective_preconditioner_breakdown(request, backend, method, options):
    A = np.diag([2.0, 3.0, 4.0])
    M = np.diag([1.0, 1.0, 0.0])
    b = np.array([0.0, 1.0, 1.0])
    x0 = np.array([1.0, 0.0, 0.0])
    result, x = run(request, backend, A, b, method, M=M, x0=x0, rtol=1e-15, atol=0.0,
                    **options)

    residual = assert_honest(A, b, x, result, 1e-15, x0=x0)
    assert np.all(np.isfinite(x))
    assert residual <= np.sqrt(6.0) * (1 + 1e-12)  # ‖b − A x0‖
    # x stays in x0 + range(M): its third entry is 0, so ‖b − A x‖ ≥ 1 > 1e-15·‖b‖.
    assert not result.converged, result


# c. Nilpotent matrix ----------------------------------------------------------------------

@pytest.mark.parametrize("backend, method", _params({
    "numpy": ["gmres", "fgmres", "gcrodr"],
    "torch": ["gmres", "fgmres"],
    "petsc": ["gmres", "fgmres", "gcrodr"],
}))
def test_nilpotent_matrix(request, backend, method):
    if (backend, method) == ("petsc", "fgmres"):
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "PETSc's FGMRES reaches the least-squares residual 1 but lets round-off grow the "
            "null-space component e1 of x to ~1e17; we return its iterate as PETSc leaves it")))
    A = np.triu(np.ones((4, 4)), 1)
    b = np.ones(4)
    result, x = run(request, backend, A, b, method, rtol=1e-8, atol=0.0)

    residual = assert_honest(A, b, x, result, 1e-8)
    assert np.all(np.isfinite(x))
    assert norm(x) < 1e8, x
    assert residual <= norm(b) * (1 + 1e-12)
    if backend != "petsc":
        # The best iterate seen: GMRES's first cycle reaches the least-squares optimum 1.
        assert residual <= 1.0 + 1e-8


# d. Singular, inconsistent symmetric matrix (SciPy's test_defective_matrix_breakdown) -----

SINGULAR_A = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
SINGULAR_B = np.array([1.0, 0.0, 1.0])


@pytest.mark.parametrize("backend, method", _params({"numpy": ["gmres"], "torch": ["gmres"],
                                                     "petsc": ["gmres"]}))
def test_gmres_on_singular_inconsistent_system_reaches_least_squares(request, backend, method):
    A, b = SINGULAR_A, SINGULAR_B
    result, x = run(request, backend, A, b, method, rtol=1e-8, atol=0.0)

    residual = assert_honest(A, b, x, result, 1e-8)
    assert residual <= 1.0 + 1e-8  # the least-squares optimum is 1
    assert residual < norm(b) - 0.1  # it did not hand back x0 = 0


@pytest.mark.parametrize("backend, method", _params({"numpy": ["minres"],
                                                     "petsc": ["minres"]}))
def test_minres_on_singular_inconsistent_system_stops_at_breakdown(request, backend, method):
    A, b = SINGULAR_A, SINGULAR_B
    result, x = run(request, backend, A, b, method, rtol=1e-8, atol=0.0)

    residual = assert_honest(A, b, x, result, 1e-8)
    assert result.reason == ConvergedReason.DIVERGED_BREAKDOWN, result
    assert result.iterations < 100, result  # not run to maxiter = 10,000
    assert residual <= 1.0 + 1e-6


# e. rtol ≥ 1 --------------------------------------------------------------------------------

@pytest.mark.parametrize("rtol", [1.0, 1.5], ids=["rtol1", "rtol1.5"])
@pytest.mark.parametrize("backend, method", _params(BACKEND_METHODS))
def test_rtol_at_least_one_converges_at_once(request, backend, method, rtol):
    A = poisson1d(10)
    b = np.random.default_rng(7).standard_normal(10)
    M = "jacobi" if method == "richardson" else None
    result, x = run(request, backend, A, b, method, M=M, rtol=rtol, atol=0.0)

    assert result.converged, result
    assert result.iterations == 0, result
    np.testing.assert_array_equal(x, 0.0)
    assert_honest(A, b, x, result, rtol)


# f. Invalid tolerances ----------------------------------------------------------------------

INVALID = [
    pytest.param({"atol": None}, "^atol", id="atol-None"),
    pytest.param({"atol": "legacy"}, "^atol", id="atol-legacy"),
    pytest.param({"atol": -1.0}, "^atol", id="atol-negative"),
    pytest.param({"rtol": -1.0}, "^rtol", id="rtol-negative"),
    pytest.param({"rtol": float("nan")}, "^rtol", id="rtol-nan"),
    pytest.param({"maxiter": 0}, "^maxiter", id="maxiter-0"),
]


@pytest.mark.parametrize("bad, pattern", INVALID)
@pytest.mark.parametrize("backend, method", _params({b: ["cg", "gmres"] for b in BACKENDS}))
def test_invalid_tolerances_raise_value_error_naming_the_argument(request, backend, method,
                                                                   bad, pattern):
    A = poisson1d(10)
    b = np.ones(10)
    with pytest.raises(ValueError, match=pattern):
        run(request, backend, A, b, method, **bad)


# g. Matvec count with an exact preconditioner ----------------------------------------------

@pytest.mark.parametrize("backend, method, options", [
    pytest.param("numpy", "gmres", {"side": "left"}, id="gmres-left-numpy"),
    pytest.param("numpy", "gmres", {"side": "right"}, id="gmres-right-numpy"),
    pytest.param("numpy", "fgmres", {}, id="fgmres-numpy"),
    pytest.param("petsc", "gmres", {}, id="gmres-petsc", marks=pytest.mark.petsc),
    pytest.param("petsc", "gmres", {"side": "right"}, id="gmres-right-petsc",
                 marks=pytest.mark.petsc),
    pytest.param("petsc", "fgmres", {}, id="fgmres-petsc", marks=pytest.mark.petsc),
])
def test_exact_preconditioner_needs_at_most_three_matvecs(request, backend, method, options):
    rng = np.random.default_rng(20240611)
    A = 4.0 * np.eye(20) + 0.3 * rng.standard_normal((20, 20))  # nonsymmetric, κ ≈ 2
    b = rng.standard_normal(20)
    M = np.linalg.inv(A)
    result, x = run(request, backend, A, b, method, M=M, rtol=1e-8, atol=0.0, **options)

    assert_honest(A, b, x, result, 1e-8)
    assert result.converged, result
    assert result.matvecs <= 3, result


# h. SciPy's test_denormals ------------------------------------------------------------------

@pytest.mark.parametrize("backend, method", _params(BACKEND_METHODS))
def test_denormal_matrix(request, backend, method):
    A = np.array([[1.0, 2.0], [3.0, 4.0]]) * (100 * np.nextafter(0, 1))
    b = np.array([1.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result, x = run(request, backend, A, b, method, rtol=1e-8, atol=0.0)

    assert not np.isnan(x).any()
    assert np.all(np.isfinite(x))
    assert_honest(A, b, x, result, 1e-8)
    if result.converged:
        np.testing.assert_allclose(A @ x, b, rtol=1e-6)


# i. Symmetric methods on an explicit nonsymmetric matrix -----------------------------------

@pytest.mark.parametrize("method", ["cg", "fcg", "minres"])
def test_symmetric_methods_detect_a_nonsymmetric_matrix(method):
    A = sp.diags_array([2.0 * np.ones(50), -np.ones(49), -0.5 * np.ones(49)],
                       offsets=[0, -1, 1]).tocsr()
    b = np.ones(50)
    result = solve(A, b, method=method, rtol=1e-8, atol=0.0)

    assert result.reason == ConvergedReason.DIVERGED_NONSYMMETRIC, result
    assert result.iterations < 10, result
    assert_honest(A, b, result.x, result, 1e-8)


# j. A preconditioner of the wrong shape ----------------------------------------------------

@pytest.mark.parametrize("backend, method", _params({
    "numpy": ["cg", "fcg", "gmres", "fgmres", "bicgstab", "minres", "richardson"],
    "torch": ["cg", "fcg", "gmres", "fgmres"],
}))
def test_preconditioner_of_wrong_shape_raises(request, backend, method):
    A = poisson1d(10)
    b = np.ones(10)
    with pytest.raises(ValueError, match="^M"):
        run(request, backend, A, b, method, M=lambda r: r[:-1], rtol=1e-8)


# k. Preconditioner options without a named preconditioner ----------------------------------

@pytest.mark.parametrize("method", ["gmres", "cg"])
def test_pc_option_without_a_named_preconditioner_raises(method):
    A = poisson1d(10)
    b = np.ones(10)
    with pytest.raises((TypeError, ValueError), match="pc_omega"):
        solve(A, b, method=method, M=None, pc_omega=1.5)
