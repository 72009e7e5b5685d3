"""HiPPO matrices, their NPLR form and the PTD diagonalisation, against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pdesuite.dynamics.ssm import (eigenvector_condition, hippo_legs, hippo_legt, hippo_nplr,
                                   low_rank_correction, perturb_then_diagonalize)


def test_legs_entries_match_the_closed_form():
    N = 7
    A, B = hippo_legs(N)
    for n in range(N):
        assert B[n] == pytest.approx(math.sqrt(2 * n + 1), rel=1e-15)
        for k in range(N):
            if n > k:
                expected = -math.sqrt(2 * n + 1) * math.sqrt(2 * k + 1)
            elif n == k:
                expected = -(n + 1)
            else:
                expected = 0.0
            assert A[n, k] == pytest.approx(expected, rel=1e-15, abs=0)
    assert A[2, 1] == pytest.approx(-math.sqrt(15))


def test_legt_entries_match_the_closed_form():
    N, theta = 6, 2.5
    A, B = hippo_legt(N, theta)
    for n in range(N):
        assert B[n] == pytest.approx(math.sqrt(2 * n + 1) / theta, rel=1e-15)
        for k in range(N):
            sign = 1.0 if n >= k else (-1.0) ** (n - k)
            expected = -math.sqrt((2 * n + 1) * (2 * k + 1)) * sign / theta
            assert A[n, k] == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("N", [1, 8, 33])
def test_legs_plus_low_rank_is_normal_with_symmetric_part_minus_half(N):
    A, _ = hippo_legs(N)
    P = low_rank_correction("legs", N)
    assert P.shape == (1, N)
    np.testing.assert_allclose(P[0], np.sqrt(np.arange(N) + 0.5), rtol=1e-15)
    S = A + P.T @ P
    np.testing.assert_allclose((S + S.T) / 2, -0.5 * np.eye(N), atol=1e-12)
    np.testing.assert_allclose(S @ S.T, S.T @ S, atol=1e-10 * N ** 2)
    # the normal part is not a trivial matrix: its skew part is as large as A's lower triangle
    assert np.abs(S - S.T).max() == pytest.approx(np.abs(A[:, :-1]).max() if N > 1 else 0.0)


def test_legt_plus_rank_two_correction_is_skew():
    N = 10
    A, _ = hippo_legt(N)
    P = low_rank_correction("legt", N)
    S = A + P.T @ P
    np.testing.assert_allclose(S + S.T, 0.0, atol=1e-12)


@pytest.mark.parametrize("measure", ["legs", "legt"])
def test_nplr_diagonalisation_reconstructs_the_hippo_matrix(measure):
    N = 16
    nplr = hippo_nplr(measure, N)
    V, Lambda = nplr.V, nplr.Lambda
    np.testing.assert_allclose(V.conj().T @ V, np.eye(N), atol=1e-12)
    rebuilt = V @ np.diag(Lambda) @ V.conj().T - nplr.P.T @ nplr.P
    np.testing.assert_allclose(rebuilt, nplr.A, atol=1e-11)
    shift = -0.5 if measure == "legs" else 0.0
    np.testing.assert_allclose(Lambda.real, shift, atol=1e-12)
    # a real skew matrix: eigenvalues in conjugate pairs, sorted by imaginary part descending
    np.testing.assert_allclose(np.sort(Lambda.imag), np.sort(-Lambda.imag), atol=1e-10)
    assert np.all(np.diff(Lambda.imag) <= 1e-12)


def test_ptd_condition_number_is_orders_of_magnitude_below_naive_diagonalisation():
    N = 64
    A, _ = hippo_legs(N)
    _, V_naive = np.linalg.eig(A)
    naive = eigenvector_condition(V_naive)
    ptd = perturb_then_diagonalize(A, seed=0)
    assert naive > 1e15
    assert ptd.condition < 1e6
    assert naive / ptd.condition > 1e9
    assert ptd.condition == pytest.approx(eigenvector_condition(ptd.V), rel=1e-10)
    norm_A = np.linalg.norm(A, 2)
    assert np.linalg.norm(ptd.E, 2) == pytest.approx(ptd.relative_size * norm_A, rel=1e-10)
    assert ptd.relative_size <= 1e-3


def test_ptd_eigenvalues_stay_close_to_the_legs_matrix():
    """Close in the sense that matters for a non-normal matrix: the diagonal form rebuilds A to
    within ‖E‖, every eigenvalue lies in A's ‖E‖-pseudospectrum, the system stays stable, and
    the transfer function on the imaginary axis is kept."""
    N = 64
    A, B = hippo_legs(N)
    ptd = perturb_then_diagonalize(A, seed=0)
    size = np.linalg.norm(ptd.E, 2)
    rebuilt = ptd.V @ np.diag(ptd.Lambda) @ np.linalg.inv(ptd.V)
    assert np.linalg.norm(rebuilt - A, 2) <= 1.01 * size
    for mu in ptd.Lambda:
        assert np.linalg.svd(A - mu * np.eye(N), compute_uv=False)[-1] <= 1.01 * size
    assert ptd.Lambda.real.max() < 0
    # transfer function of the full SSM x' = Ax + Bu, y = 1ᵀx at a few frequencies
    C = np.ones(N)
    B_tilde = np.linalg.solve(ptd.V, B)
    C_tilde = C @ ptd.V
    for omega in [0.0, 1.0, 10.0, 100.0]:
        s = 1j * omega
        exact = C @ np.linalg.solve(s * np.eye(N) - A, B)
        diagonal = np.sum(C_tilde * B_tilde / (s - ptd.Lambda))
        assert abs(diagonal - exact) <= 1e-2 * abs(exact)


def test_naive_diagonalisation_is_what_ptd_fixes():
    """The naive eigenvectors of LegS cannot rebuild it: the ill-posedness PTD removes."""
    A, _ = hippo_legs(64)
    Lambda, V = np.linalg.eig(A)
    rebuilt = V @ np.diag(Lambda) @ np.linalg.inv(V)
    assert np.linalg.norm(rebuilt - A, 2) / np.linalg.norm(A, 2) > 1.0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="N"):
        hippo_legs(0)
    with pytest.raises(ValueError, match="theta"):
        hippo_legt(4, theta=0.0)
    with pytest.raises(ValueError, match="measure"):
        hippo_nplr("fourier", 4)
    with pytest.raises(ValueError, match="A"):
        perturb_then_diagonalize(np.ones((3, 4)))
    with pytest.raises(ValueError, match="sizes"):
        perturb_then_diagonalize(np.eye(3), sizes=[0.0])
