"""The direct solve: against SciPy's spsolve, symbolic reuse per pattern, fallbacks, failures."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.solvers import DirectSolver, METHODS, solve
from pdesuite.solvers.direct import cholmod_available
from pdesuite.solvers.result import ConvergedReason

needs_cholmod = pytest.mark.skipif(not cholmod_available(), reason="scikit-sparse is not installed")


def _laplacian_2d(m: int, coefficient: np.ndarray | None = None) -> sp.csr_array:
    """5-point ``−∇·(a∇u)`` on an m×m interior grid (SPD), ``a`` on the nodes (arithmetic faces)."""
    a = np.ones((m + 2, m + 2)) if coefficient is None else coefficient
    index = np.arange(m * m).reshape(m, m)
    rows, cols, vals = [], [], []
    for i in range(m):
        for j in range(m):
            diagonal = 0.0
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                face = 0.5 * (a[i + 1, j + 1] + a[i + 1 + di, j + 1 + dj])
                diagonal += face
                if 0 <= i + di < m and 0 <= j + dj < m:
                    rows.append(index[i, j]), cols.append(index[i + di, j + dj]), vals.append(-face)
            rows.append(index[i, j]), cols.append(index[i, j]), vals.append(diagonal)
    return sp.csr_array((vals, (rows, cols)), shape=(m * m, m * m))


def _family(m: int, count: int, seed: int = 0) -> list[sp.csr_array]:
    """``count`` SPD matrices of one pattern: lognormal coefficients."""
    rng = np.random.default_rng(seed)
    return [_laplacian_2d(m, np.exp(rng.standard_normal((m + 2, m + 2)))) for _ in range(count)]


def _reference(A, b):
    return spla.spsolve(sp.csc_array(A), b)


def _no_sksparse(monkeypatch):
    """Make ``import sksparse.cholmod`` fail, as on a machine without scikit-sparse."""
    monkeypatch.setitem(sys.modules, "sksparse", None)
    monkeypatch.setitem(sys.modules, "sksparse.cholmod", None)


def test_direct_is_a_registered_method():
    assert "direct" in METHODS and METHODS["direct"].options == ("spd", "ordering", "factorization")


@pytest.mark.parametrize("spd", [None, True, False])
def test_spd_matrix_matches_spsolve(spd):
    A = _family(12, 1)[0]
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    result = solve(A, b, method="direct", spd=spd)
    assert result.converged and result.reason in (ConvergedReason.CONVERGED_RTOL,
                                                  ConvergedReason.CONVERGED_ATOL)
    assert (result.iterations, result.matvecs, result.precond_applies) == (1, 1, 0)
    assert np.linalg.norm(b - A @ result.x) <= 1e-8 * np.linalg.norm(b)
    np.testing.assert_allclose(result.x, _reference(A, b), rtol=1e-10, atol=1e-12)
    expected = "superlu" if spd is False or not cholmod_available() else "cholmod"
    assert result.info["factorization"] == expected
    assert result.info["symbolic_reused"] is False and len(result.info["pattern_hash"]) == 16
    assert result.time > 0 and result.method == "direct"


def test_nonsymmetric_matrix_matches_spsolve_through_lu():
    rng = np.random.default_rng(2)
    A = _family(10, 1)[0] + sp.csr_array(sp.random(100, 100, density=0.03, random_state=3))
    A = sp.csr_array(A)
    b = rng.standard_normal(100)
    for result in (solve(A, b, method="direct"), DirectSolver().solve(A, b)):
        assert result.converged and result.info["factorization"] == "superlu"
        np.testing.assert_allclose(result.x, _reference(A, b), rtol=1e-10, atol=1e-12)


def test_complex_and_dense_input():
    rng = np.random.default_rng(4)
    A = _family(6, 1)[0].astype(complex)
    A = sp.csr_array(
        A + 1j * sp.diags_array(rng.uniform(size=36))
    )  # complex symmetric, not Hermitian
    b = rng.standard_normal(36) + 1j * rng.standard_normal(36)
    result = solve(A, b, method="direct")
    assert result.converged and result.info["factorization"] == "superlu"
    np.testing.assert_allclose(result.x, _reference(A, b), rtol=1e-10)
    H = sp.csr_array(
        _family(6, 1)[0] + 0.1j * sp.diags_array([1.0, -1.0], offsets=[1, -1], shape=(36, 36))
    )
    result = solve(H, b, method="direct")  # Hermitian positive definite
    assert result.converged
    np.testing.assert_allclose(result.x, _reference(H, b), rtol=1e-10)
    dense = _family(5, 1)[0].toarray()
    result = solve(dense, np.ones(25), method="direct")
    np.testing.assert_allclose(result.x, np.linalg.solve(dense, np.ones(25)), rtol=1e-10)


@needs_cholmod
def test_symbolic_analysis_is_reused_along_one_pattern_and_redone_after_a_change():
    solver = DirectSolver()
    matrices = _family(10, 4)
    results = []
    for A in matrices:
        b = np.ones(A.shape[0])
        result = solver.solve(A, b)
        np.testing.assert_allclose(result.x, _reference(A, b), rtol=1e-10)
        results.append(result)
    assert [r.info["symbolic_reused"] for r in results] == [False, True, True, True]
    assert len({r.info["pattern_hash"] for r in results}) == 1
    assert (solver.analyses, solver.factorizations) == (1, 4)

    # Another pattern (another grid): analysed afresh, then reused again.
    other = _family(9, 2, seed=5)
    first, second = (solver.solve(A, np.ones(A.shape[0])) for A in other)
    assert first.info["symbolic_reused"] is False and second.info["symbolic_reused"] is True
    assert first.info["pattern_hash"] != results[0].info["pattern_hash"]
    # Same size and nnz, one coupling moved: a different pattern, caught by the array comparison.
    lil = other[1].tolil()
    lil[0, 1] = lil[1, 0] = 0.0  # LIL drops assigned zeros
    lil[0, 80] = lil[80, 0] = -1e-3  # symmetric, still SPD
    moved = sp.csr_array(lil)
    assert moved.shape == other[1].shape and moved.nnz == other[1].nnz
    result = solver.solve(moved, np.ones(81))
    assert result.info["symbolic_reused"] is False
    assert result.info["pattern_hash"] != second.info["pattern_hash"]
    assert (solver.analyses, solver.solves) == (3, 7)


@needs_cholmod
def test_the_same_values_reuse_the_numeric_factor_and_in_place_changes_are_caught():
    A = _family(8, 1)[0]
    solver = DirectSolver()
    b = np.ones(64)
    solver.solve(A, b)
    again = solver.solve(A, 2 * b)
    assert again.info["numeric_reused"] is True
    np.testing.assert_allclose(again.x, _reference(A, 2 * b), rtol=1e-10)
    A.data *= 3.0  # changed in place: same object, new values
    changed = solver.solve(A, b)
    assert changed.info["symbolic_reused"] is True and changed.info["numeric_reused"] is False
    np.testing.assert_allclose(changed.x, _reference(A, b), rtol=1e-10)


def test_solve_factors_afresh_unless_given_a_direct_solver():
    matrices = _family(8, 2)
    b = np.ones(64)
    fresh = [solve(A, b, method="direct") for A in matrices]
    assert not any(r.info["symbolic_reused"] for r in fresh)
    kept = DirectSolver()
    reused = [solve(A, b, method="direct", factorization=kept) for A in matrices]
    assert reused[1].info["symbolic_reused"] is cholmod_available()
    for a, r in zip(fresh, reused):
        np.testing.assert_allclose(a.x, r.x, rtol=1e-12)
    with pytest.raises(TypeError, match="spd, ordering"):
        solve(matrices[0], b, method="direct", factorization=kept, spd=True)
    with pytest.raises(TypeError, match="DirectSolver"):
        solve(matrices[0], b, method="direct", factorization="cholmod")
    with pytest.raises(ValueError, match="no preconditioner"):
        solve(matrices[0], b, method="direct", M="jacobi")
    with pytest.raises(TypeError, match="entries of A"):
        solve(lambda x: matrices[0] @ x, b, method="direct")


@needs_cholmod
@pytest.mark.parametrize("spd", [None, True])
def test_not_positive_definite_falls_back_to_lu_for_that_matrix(spd):
    # Symmetric, positive diagonal, nonsingular, indefinite; in the natural order the second
    # pivot is 0, so that CHOLMOD stops with CholmodNotPositiveDefiniteError.
    A = sp.csr_array(np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]]))
    indefinite = sp.csr_array(np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]))
    b = np.array([1.0, 2.0, 3.0])
    solver = DirectSolver(spd=spd, ordering="natural")
    first = solver.solve(A, b)
    second = solver.solve(indefinite, b)
    assert second.converged and second.info["factorization"] == "superlu"
    assert "CHOLMOD: the matrix is not positive definite" in second.info["factorization_note"]
    np.testing.assert_allclose(second.x, np.linalg.solve(indefinite.toarray(), b), rtol=1e-12)
    # The analysis survives: the next SPD matrix of the pattern refactors on it.
    third = solver.solve(2.0 * A, b)
    assert first.info["factorization"] == third.info["factorization"] == "cholmod"
    assert third.info["symbolic_reused"] is True and "factorization_note" not in third.info
    np.testing.assert_allclose(
        third.x, np.linalg.solve(2.0 * A.toarray(), b), rtol=1e-12, atol=1e-14
    )


@needs_cholmod
def test_a_cholmod_solution_that_misses_the_target_is_redone_by_lu():
    A = _family(6, 1)[0]
    b = np.ones(36)
    # Not symmetric, declared SPD: CHOLMOD factors one triangle, the residual shows it.
    skew = sp.csr_array(A + sp.diags_array([0.5], offsets=[1], shape=(36, 36)))
    result = solve(skew, b, method="direct", spd=True)
    assert result.converged and result.info["factorization"] == "superlu"
    assert "missed the residual target" in result.info["factorization_note"]
    assert result.matvecs == 2
    np.testing.assert_allclose(result.x, _reference(skew, b), rtol=1e-10)
    # Symmetric indefinite: CHOLMOD's LDLᵀ or LU, either way the right solution.
    indefinite = sp.csr_array(_laplacian_2d(8) - 2.5 * sp.eye_array(64))
    result = DirectSolver().solve(indefinite, np.arange(64.0))
    assert result.converged
    np.testing.assert_allclose(result.x, _reference(indefinite, np.arange(64.0)), rtol=1e-10)


@pytest.mark.parametrize("spd", [None, True, False])
def test_a_singular_matrix_is_a_failure_never_nan(spd):
    A = sp.csr_array(sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(30, 30)))
    singular = sp.csr_array(A - sp.csr_array(([1.0, 1.0], ([0, 29], [0, 29])), shape=(30, 30)))
    b = np.ones(30)  # the constant vector spans the null space; b is not in the range
    result = solve(singular, b, method="direct", spd=spd)
    assert not result.converged and result.reason is ConvergedReason.DIVERGED_BREAKDOWN
    assert np.all(np.isfinite(result.x))
    assert "singular" in result.info["breakdown"] and "direct solve" in result.message
    exactly_singular = sp.csr_array(sp.diags_array([1.0, 0.0, 1.0]))
    result = solve(exactly_singular, np.ones(3), method="direct", spd=spd)
    assert result.reason is ConvergedReason.DIVERGED_BREAKDOWN and np.all(np.isfinite(result.x))
    assert "singular" in result.info["breakdown"]


def test_the_residual_check_sets_the_reason():
    A = _family(6, 1)[0]
    b = np.ones(36)
    assert solve(A, b, method="direct", rtol=1e-8).reason is ConvergedReason.CONVERGED_RTOL
    assert (
        solve(A, b, method="direct", rtol=1e-30, atol=1e-3).reason is ConvergedReason.CONVERGED_ATOL
    )
    tight = solve(A, b, method="direct", rtol=1e-30, atol=1e-300)
    assert (
        tight.reason is ConvergedReason.DIVERGED_BREAKDOWN
        and "misses the target" in tight.info["breakdown"]
    )
    zero = solve(A, np.zeros(36), method="direct")
    assert zero.converged and zero.iterations == 0 and not np.any(zero.x)


def test_an_initial_guess_becomes_a_correction():
    A = _family(6, 1)[0]
    b = np.ones(36)
    x0 = _reference(A, b) + 1e-3
    result = solve(A, b, method="direct", x0=x0)
    assert result.converged and result.matvecs == 2
    np.testing.assert_allclose(result.x, _reference(A, b), rtol=1e-10)


def test_works_without_scikit_sparse(monkeypatch):
    _no_sksparse(monkeypatch)
    assert not cholmod_available()
    solver = DirectSolver(spd=True)
    for A in _family(8, 3):
        b = np.ones(64)
        result = solver.solve(A, b)
        assert result.converged and result.info["factorization"] == "superlu"
        assert result.info["symbolic_reused"] is False
        assert "scikit-sparse is not installed" in result.info["factorization_note"]
        np.testing.assert_allclose(result.x, _reference(A, b), rtol=1e-10)
    plain = solve(_family(8, 1)[0], np.ones(64), method="direct")
    assert plain.converged and plain.info["factorization"] == "superlu"
    # SPD expected: SuperLU's symmetric mode (diagonal pivots); a zero pivot falls back to
    # partial pivoting, a singular matrix still fails cleanly.
    swap = sp.csr_array(np.array([[0.0, 1.0], [1.0, 0.0]]))
    result = solve(swap, np.array([1.0, 2.0]), method="direct", spd=True)
    assert result.converged and np.allclose(result.x, [2.0, 1.0])
    singular = sp.csr_array(sp.diags_array([1.0, 0.0, 1.0]))
    result = solve(singular, np.ones(3), method="direct", spd=True)
    assert result.reason is ConvergedReason.DIVERGED_BREAKDOWN and not np.any(result.x)
    skew = sp.csr_array(_family(6, 1)[0] + sp.diags_array([0.5], offsets=[1], shape=(36, 36)))
    result = solve(skew, np.ones(36), method="direct", spd=True)
    np.testing.assert_allclose(result.x, _reference(skew, np.ones(36)), rtol=1e-10)


def test_bad_options():
    with pytest.raises(TypeError, match="spd"):
        DirectSolver(spd="yes")
    with pytest.raises(ValueError, match="ordering"):
        DirectSolver(ordering="rcm")
    with pytest.raises(TypeError, match="unknown option"):
        solve(_family(4, 1)[0], np.ones(16), method="direct", restart=10)
