"""The torch backend: batched CG/FCG/GMRES/FGMRES against SciPy's solutions, iteration counts and
breakdown cases."""

from __future__ import annotations

import inspect
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

pytest.importorskip("torch")

import torch

from pdesuite.solvers import (
    FunctionPreconditioner,
    ILUPreconditioner,
    JacobiPreconditioner,
    solve as api_solve,
)
from pdesuite.solvers.linear_operator import as_csr
from pdesuite.solvers.result import ConvergedReason, SolverError
from pdesuite.solvers.torch_backend import (
    METHODS,
    option_defaults,
    solve,
    to_torch_sparse,
)
from pdesuite.solvers.vocabulary import (
    BACKEND_OPTIONS,
    DEFAULT_ATOL,
    DEFAULT_RESTART,
    DEFAULT_RTOL,
    METHOD_DEFAULTS,
)
from tests.solvers.matrix_registry import (
    advection_diffusion_2d,
    helmholtz_2d,
    laplacian_2d,
    variable_diffusion_2d,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rhs(n: int, batch: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, batch))


def _scipy_iterations(solver, A, b, **kwargs) -> int:
    count = [0]

    def tick(*_):
        count[0] += 1

    x, info = solver(A, b, callback=tick, **kwargs)
    assert info == 0
    return count[0]


def _relative_residuals(A: sp.sparray, X: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.linalg.norm(B - A @ X, axis=0) / np.linalg.norm(B, axis=0)


# ------------------------------------------------------------------------------------------
# CG
# ------------------------------------------------------------------------------------------

def test_batched_cg_matches_spsolve_and_scipy_cg_iterations_per_column():
    A = laplacian_2d(16)
    B = _rhs(A.shape[0], 8, seed=0)
    result = solve(to_torch_sparse(A), torch.from_numpy(B), method="cg", rtol=1e-10)

    assert result.converged and result.backend == "torch"
    assert isinstance(result.x, torch.Tensor) and result.x.shape == (256, 8)
    assert result.x.dtype == torch.float64
    X = result.x.numpy()
    for j in range(8):
        reference = spla.spsolve(A.tocsc(), B[:, j])
        assert np.linalg.norm(X[:, j] - reference) <= 1e-6 * np.linalg.norm(reference)
        scipy_its = _scipy_iterations(spla.cg, A, B[:, j], rtol=1e-10, atol=0.0)
        assert abs(result.info["iterations_per_column"][j] - scipy_its) <= 1
    assert result.iterations == max(result.info["iterations_per_column"])
    assert result.residuals.shape == (result.iterations + 1, 8)
    np.testing.assert_allclose(result.residuals[0], np.linalg.norm(B, axis=0), rtol=1e-14)
    assert np.all(result.info["true_residual_norms"] <= 1e-10 * np.linalg.norm(B, axis=0))
    # One block product per iteration, one for the final true residual.
    assert result.matvecs == result.iterations + 1


def test_preconditioned_cg_with_callable_jacobi_cuts_iterations_and_matches_scipy():
    A = variable_diffusion_2d(16, seed=1234, contrast=1.5)
    B = _rhs(A.shape[0], 4, seed=1)
    At, Bt = to_torch_sparse(A), torch.from_numpy(B)
    inv_diag = 1.0 / torch.from_numpy(A.diagonal())[:, None]
    plain = solve(At, Bt, method="cg", rtol=1e-8)
    jacobi = solve(At, Bt, method="cg", M=lambda R: R * inv_diag, rtol=1e-8)
    assert plain.converged and jacobi.converged
    assert max(jacobi.info["iterations_per_column"]) < 0.7 * min(
        plain.info["iterations_per_column"]
    )
    scipy_M = sp.diags_array(1.0 / A.diagonal())
    for j in range(4):
        scipy_its = _scipy_iterations(spla.cg, A, B[:, j], rtol=1e-8, atol=0.0, M=scipy_M)
        assert abs(jacobi.info["iterations_per_column"][j] - scipy_its) <= 1
    assert jacobi.precond_applies == jacobi.iterations + 1
    # By name, and as the package's NumPy Jacobi (applied on the host): the same iterates.
    named = solve(At, Bt, method="cg", M="jacobi", rtol=1e-8)
    host = solve(At, Bt, method="cg", M=JacobiPreconditioner(A), rtol=1e-8)
    for other in (named, host):
        assert other.info["iterations_per_column"] == jacobi.info["iterations_per_column"]
        torch.testing.assert_close(other.x, jacobi.x, rtol=1e-12, atol=1e-12)


def _operator_of(A, B):
    from pdesuite.solvers.torch_backend.convert import make_system

    return make_system(A, B, None).operator


def _cg_in_groups(monkeypatch, A, B, **options):
    """A CG solve whose block is cut into column groups of ``width`` columns or fewer (on the
    CPU they otherwise appear only for blocks of several MB)."""
    from pdesuite.solvers.torch_backend import methods

    width = options.pop("width")
    monkeypatch.setattr(methods, "_group_width", lambda n, itemsize: width)
    monkeypatch.setattr(methods, "MIN_COLUMN_GROUP", 1)
    return solve(A, B, method="cg", **options)


@pytest.mark.parametrize("width, check_every", [(1, 1), (3, 1), (8, 1), (3, 7)])
def test_cg_in_column_groups_gives_the_results_of_the_whole_block(monkeypatch, width,
                                                                  check_every):
    from pdesuite.solvers.torch_backend import methods

    A = to_torch_sparse(laplacian_2d(16))
    B = torch.from_numpy(_rhs(256, 10, seed=3))
    B[:, 4] = 0.0  # converged at once, in the middle of a group
    x0 = torch.from_numpy(_rhs(256, 10, seed=4))
    whole = solve(A, B, method="cg", rtol=1e-9, x0=x0)
    seen: list = []
    grouped = _cg_in_groups(monkeypatch, A, B, width=width, rtol=1e-9, x0=x0,
                            check_every=check_every,
                            callback=lambda it, rnorm: seen.append(rnorm.clone()))
    widths = [s.stop - s.start for s in methods.column_groups(_operator_of(A, B), B)]
    assert widths == {1: [1] * 10, 3: [3, 3, 2, 2], 8: [8, 2]}[width]
    assert grouped.converged and grouped.iterations == whole.iterations
    assert grouped.info["iterations_per_column"] == whole.info["iterations_per_column"]
    assert grouped.info["reasons"] == whole.info["reasons"]
    # One block product per iteration however many groups, plus those of r0 and the final
    # true residual (and, checking every 7 iterations, masked ones after the last).
    assert whole.matvecs == whole.iterations + 2
    assert whole.matvecs <= grouped.matvecs < whole.matvecs + check_every
    torch.testing.assert_close(grouped.x, whole.x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grouped.residuals, whole.residuals, rtol=1e-10, atol=1e-14)
    assert len(seen) == grouped.iterations and seen[0].shape == (10,)
    assert torch.equal(grouped.x[:, 4], torch.zeros(256, dtype=torch.float64))


@pytest.mark.parametrize("options", [
    dict(rtol=1e-15, maxiter=400),  # claims the true residual refutes: a second attempt
    dict(rtol=1e-9, maxiter=5),     # maxiter stops every group
    dict(rtol=1e-9, check_every=4),
], ids=["refuted", "maxiter", "check_every"])
def test_cg_in_column_groups_keeps_attempts_maxiter_and_callbacks(monkeypatch, options):
    A = to_torch_sparse(laplacian_2d(12))
    B = torch.from_numpy(_rhs(144, 7, seed=6))
    runs = []
    for width in (None, 3):
        seen: list = []
        def callback(it, rnorm, seen=seen):
            seen.append((it, rnorm.clone()))
        if width is None:
            result = solve(A, B, method="cg", callback=callback, **options)
        else:
            result = _cg_in_groups(monkeypatch, A, B, width=width, callback=callback,
                                   **options)
        runs.append((result, seen))
    (whole, whole_calls), (grouped, grouped_calls) = runs
    assert grouped.reason is whole.reason and grouped.iterations == whole.iterations
    assert grouped.info["reasons"] == whole.info["reasons"]
    assert grouped.info["iterations_per_column"] == whole.info["iterations_per_column"]
    assert grouped.info.get("returned_iterate") == whole.info.get("returned_iterate")
    torch.testing.assert_close(grouped.x, whole.x, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grouped.residuals, whole.residuals, rtol=1e-10, atol=1e-14)
    assert [it for it, _ in grouped_calls] == [it for it, _ in whole_calls] \
        == list(range(1, whole.iterations + 1))
    for (_, a), (_, b) in zip(grouped_calls, whole_calls):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


def test_cg_in_column_groups_reports_failures_per_column(monkeypatch):
    # Column 1 meets the negative eigenvalue, column 0 does not; each in its own group.
    A = torch.diag(torch.tensor([1.0, 2.0, 3.0, -1.0], dtype=torch.float64))
    B = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    whole = solve(A, B, method="cg", rtol=1e-12)
    grouped = _cg_in_groups(monkeypatch, A, B, width=1, rtol=1e-12)
    assert grouped.info["reasons"] == whole.info["reasons"]
    assert grouped.info["reasons"][0].converged
    assert grouped.info["reasons"][1] is ConvergedReason.DIVERGED_INDEFINITE_MAT
    torch.testing.assert_close(grouped.x, whole.x, rtol=1e-12, atol=1e-12)


def test_column_groups_cut_large_cpu_blocks_only():
    from pdesuite.solvers.torch_backend.methods import column_groups

    A = to_torch_sparse(laplacian_2d(16))
    small = torch.empty(256, 256, dtype=torch.float64)  # 2.5 MiB for five blocks: fits
    assert column_groups(_operator_of(A, small), small) == [slice(0, 256)]
    large = torch.empty(2**20, 16, dtype=torch.float64)  # not even 8 columns fit: no groups
    assert column_groups(_operator_of(A, small), large) == [slice(0, 16)]
    n = 65_536  # 512 KiB a column: groups of 8 columns fit 24 MB
    for batch, widths in ((8, [8]), (16, [8, 8]), (18, [8, 8, 2]), (20, [8, 8, 4]),
                          (64, [8] * 8), (100, [8] * 12 + [4])):
        block = torch.empty(n, batch, dtype=torch.float64)
        operator = _operator_of(torch.eye(2, dtype=torch.float64), torch.ones(2))
        slices = column_groups(operator, block)
        assert [s.stop - s.start for s in slices] == widths
        assert slices[0].start == 0 and slices[-1].stop == batch
    # A matvec given as a callable sees the whole block: it may act on whole rows.
    callable_operator = _operator_of(lambda X: X, torch.ones(2))
    block = torch.empty(n, 16, dtype=torch.float64)
    assert column_groups(callable_operator, block) == [slice(0, 16)]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("layout", ["csr", "dense"])
def test_products_ignore_what_the_output_buffer_held(batch, layout):
    # The products write into reused buffers with beta = 0: NaN left there must not leak.
    A = laplacian_2d(8)
    At = to_torch_sparse(A) if layout == "csr" else torch.from_numpy(A.toarray())
    X = torch.from_numpy(_rhs(64, batch, seed=5))
    operator = _operator_of(At, X)
    out = torch.full((64, batch), float("nan"), dtype=torch.float64)
    result = operator(X, out=out)
    assert result.data_ptr() == out.data_ptr()
    torch.testing.assert_close(out, torch.from_numpy(A @ X.numpy()), rtol=1e-14, atol=1e-14)
    assert operator.matvecs == 1
    if layout == "csr":
        # The product matrix has int32 indices (MKL's) and shares A's values.
        product = operator._product
        assert product.crow_indices().dtype == torch.int32
        assert product.values().data_ptr() == operator.matrix.values().data_ptr()


def test_cg_reports_indefinite_per_column_and_keeps_the_others():
    # e1 never meets the negative eigenvalue, so CG solves that column; ones does.
    A = torch.diag(torch.tensor([1.0, 2.0, 3.0, -1.0], dtype=torch.float64))
    B = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    result = solve(A, B, method="cg", rtol=1e-12)
    assert result.info["reasons"][0].converged
    assert result.info["reasons"][1] is ConvergedReason.DIVERGED_INDEFINITE_MAT
    assert result.reason is ConvergedReason.DIVERGED_INDEFINITE_MAT
    torch.testing.assert_close(result.x[:, 0], torch.tensor([1.0, 0, 0, 0], dtype=torch.float64))
    assert torch.isfinite(result.x).all()


def test_cg_on_helmholtz_is_indefinite_not_a_crash():
    A = helmholtz_2d(16, k=7.0)
    B = _rhs(256, 3, seed=2)
    result = solve(to_torch_sparse(A), torch.from_numpy(B), method="cg")
    assert all(r is ConvergedReason.DIVERGED_INDEFINITE_MAT for r in result.info["reasons"])
    assert torch.isfinite(result.x).all()
    # The best iterate is returned: never worse than x0 = 0.
    assert np.all(np.linalg.norm(B - A @ result.x.numpy(), axis=0) <= np.linalg.norm(B, axis=0))


def test_zero_column_converges_at_once_and_leaves_the_others_unchanged():
    A = laplacian_2d(16)
    B = _rhs(256, 4, seed=3)
    B[:, 2] = 0.0
    At = to_torch_sparse(A)
    x0 = torch.ones(256, 4, dtype=torch.float64)  # ignored for the zero column
    mixed = solve(At, torch.from_numpy(B), method="cg", rtol=1e-9, x0=x0)
    assert mixed.converged
    assert mixed.info["reasons"][2] is ConvergedReason.CONVERGED_ATOL
    assert mixed.info["iterations_per_column"][2] == 0
    assert torch.count_nonzero(mixed.x[:, 2]) == 0
    # Columns do not interact: each equals its own solve, to rounding.
    for j in (0, 1, 3):
        alone = solve(At, torch.from_numpy(B[:, j]), method="cg", rtol=1e-9, x0=x0[:, j])
        assert alone.iterations == mixed.info["iterations_per_column"][j]
        torch.testing.assert_close(alone.x, mixed.x[:, j], rtol=1e-12, atol=1e-12)
    all_zero = solve(At, torch.zeros(256, 2, dtype=torch.float64), method="gmres")
    assert all_zero.converged and all_zero.iterations == 0 and all_zero.residuals.shape == (1, 2)


def test_float32_batched_cg_and_gmres():
    A = laplacian_2d(16)
    B = _rhs(256, 4, seed=4)
    At = to_torch_sparse(A, dtype=torch.float32)
    Bt = torch.from_numpy(B).float()
    for method in ("cg", "gmres"):
        result = solve(At, Bt, method=method, rtol=1e-4)
        assert result.converged and result.x.dtype == torch.float32
        X = result.x.double().numpy()
        # The float64 residual of the float32 solution, allowing for float32 rounding of A x.
        assert np.all(_relative_residuals(A, X, B) <= 2e-4)
        reference = spla.spsolve(A.tocsc(), B)
        assert np.linalg.norm(X - reference) <= 2e-2 * np.linalg.norm(reference)


def test_one_dimensional_b_gives_vectors_and_float_callbacks():
    A = laplacian_2d(16)
    b = _rhs(256, 1, seed=5)[:, 0]
    seen: list[tuple[int, float]] = []
    result = solve(to_torch_sparse(A), torch.from_numpy(b), method="cg", rtol=1e-8,
                   callback=lambda it, rnorm: seen.append((it, rnorm)))
    assert result.x.shape == (256,) and result.residuals.shape == (result.iterations + 1,)
    assert [it for it, _ in seen] == list(range(1, result.iterations + 1))
    assert all(isinstance(r, float) for _, r in seen)
    np.testing.assert_allclose([r for _, r in seen], result.residuals[1:], rtol=0, atol=0)
    np.testing.assert_allclose(result.x.numpy(), spla.spsolve(A.tocsc(), b), rtol=1e-6, atol=1e-7)


def _check_every_cases():
    poisson = to_torch_sparse(laplacian_2d(12))
    B = torch.from_numpy(_rhs(144, 2, seed=1))
    singular = torch.diag(torch.arange(6, dtype=torch.float64))
    return [
        # GMRES stops on an estimate of 0 at step 6 (A singular); idle steps follow it.
        ("singular-gmres", singular, torch.ones(6, dtype=torch.float64), dict(method="gmres")),
        ("singular-gmres-restart4", singular, torch.ones(6, dtype=torch.float64),
         dict(method="gmres", restart=4)),
        ("poisson-cg", poisson, B, dict(method="cg", rtol=1e-8)),
        # Convergence claims the true residual refutes: steps go on after idle ones.
        ("poisson-cg-tight", poisson, B, dict(method="cg", rtol=1e-15, maxiter=2000)),
        ("poisson-gmres-float32", poisson.to(torch.float32), B.float(),
         dict(method="gmres", restart=10, rtol=1e-7, maxiter=2000)),
        ("poisson-gmres-maxiter", poisson, B, dict(method="gmres", restart=5, maxiter=12)),
    ]


@pytest.mark.parametrize("case", _check_every_cases(), ids=lambda case: case[0])
def test_check_every_changes_syncs_not_results(case):
    _, A, B, options = case
    results, calls = [], []
    for check_every in (1, 7):
        seen: list = []
        results.append(solve(A, B, check_every=check_every,
                             callback=lambda it, rnorm, seen=seen: seen.append((it, rnorm)),
                             **options))
        calls.append(seen)
    every, sparse_checks = results
    assert torch.equal(every.x, sparse_checks.x)
    assert every.iterations == sparse_checks.iterations
    assert every.info["reasons"] == sparse_checks.info["reasons"]
    assert every.info["iterations_per_column"] == sparse_checks.info["iterations_per_column"]
    np.testing.assert_array_equal(every.residuals, sparse_checks.residuals)
    assert every.iterations <= options.get("maxiter", 10_000)
    # Callbacks: one per counted iteration, made at the checks, with the same norms.
    for seen in calls:
        assert [it for it, _ in seen] == list(range(1, every.iterations + 1))
    for (_, a), (_, b) in zip(*calls):
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    # Only the masked products after the last active step of a solve or cycle may differ.
    assert every.matvecs <= sparse_checks.matvecs


def test_maxiter_caps_the_batch():
    A = to_torch_sparse(laplacian_2d(16))
    result = solve(A, torch.from_numpy(_rhs(256, 3, seed=7)), method="cg", maxiter=5)
    assert result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS and not result.converged
    assert result.iterations == 5 and result.residuals.shape == (6, 3)
    assert result.info["iterations_per_column"] == [5, 5, 5]


def test_indefinite_preconditioner_and_flexible_breakdown_are_reported():
    A = to_torch_sparse(laplacian_2d(16))
    B = torch.from_numpy(_rhs(256, 2, seed=17))
    negative = solve(A, B, method="cg", M=lambda R: -R)
    assert negative.info["reasons"] == [ConvergedReason.DIVERGED_INDEFINITE_PC] * 2
    assert negative.iterations == 0 and torch.count_nonzero(negative.x) == 0
    nothing = solve(A, B, method="fcg", M=lambda R: torch.zeros_like(R))
    assert nothing.info["reasons"] == [ConvergedReason.DIVERGED_BREAKDOWN] * 2


def test_gmres_stopped_mid_cycle_keeps_its_progress_and_raises_on_request():
    A = advection_diffusion_2d(16)
    B = _rhs(256, 2, seed=18)
    result = solve(to_torch_sparse(A), torch.from_numpy(B), method="gmres", restart=5, maxiter=7)
    assert result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS
    assert result.iterations == 7 and result.residuals.shape == (8, 2)
    true = np.linalg.norm(B - A @ result.x.numpy(), axis=0)
    np.testing.assert_allclose(true, result.info["true_residual_norms"], rtol=1e-10)
    # Seven steps of GMRES(5) reduce the residual, and the estimate tracks the true norm.
    assert np.all(true < 0.9 * np.linalg.norm(B, axis=0))
    np.testing.assert_allclose(result.residuals[-1], true, rtol=1e-6)
    with pytest.raises(SolverError) as caught:
        api_solve(to_torch_sparse(A), torch.from_numpy(B), method="gmres", maxiter=3,
                  raise_on_failure=True)
    assert caught.value.result.backend == "torch"


def test_nan_in_one_column_is_reported_and_spares_the_others():
    A = to_torch_sparse(laplacian_2d(16))
    # An operator that overflows on column 1 only.
    scale = torch.tensor([1.0, float("inf")], dtype=torch.float64)
    result = solve(lambda X: (A @ X) * scale, torch.from_numpy(_rhs(256, 2, seed=8)),
                   method="cg", rtol=1e-8)
    assert result.info["reasons"][0].converged
    assert result.info["reasons"][1] is ConvergedReason.DIVERGED_NAN_OR_INF
    assert result.reason is ConvergedReason.DIVERGED_NAN_OR_INF
    assert torch.isfinite(result.x).all()  # the failed column returns its x0, not NaN


# ------------------------------------------------------------------------------------------
# GMRES / FGMRES
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, A, restart", [
    ("advdiff2d", advection_diffusion_2d(16), 30),
    ("helmholtz2d", helmholtz_2d(16, k=7.0), 60),
])
def test_batched_gmres_meets_tolerance_and_scipy_iteration_counts(name, A, restart):
    B = _rhs(A.shape[0], 4, seed=9)
    result = solve(to_torch_sparse(A), torch.from_numpy(B), method="gmres", rtol=1e-8,
                   restart=restart, maxiter=3000)
    assert result.converged, result.info["reasons"]
    assert np.all(_relative_residuals(A, result.x.numpy(), B) <= 1e-8)
    for j in range(4):
        scipy_its = _scipy_iterations(spla.gmres, A, B[:, j], rtol=1e-8, atol=0.0,
                                      restart=restart, maxiter=3000, callback_type="pr_norm")
        assert abs(result.info["iterations_per_column"][j] - scipy_its) <= 1


def _nonsymmetric_variable_diffusion() -> sp.csr_array:
    """Variable diffusion plus upwind advection: non-symmetric, with a diagonal that varies."""
    m = 16
    upwind = sp.kron(sp.diags_array([-1.0, 1.0], offsets=[-1, 0], shape=(m, m)), sp.eye_array(m))
    return sp.csr_array(variable_diffusion_2d(m, seed=1234, contrast=1.5) + 5.0 * upwind)


def test_right_preconditioned_gmres_and_fgmres_agree_with_a_linear_preconditioner():
    A = _nonsymmetric_variable_diffusion()
    B = _rhs(256, 3, seed=10)
    At, Bt = to_torch_sparse(A), torch.from_numpy(B)
    plain = solve(At, Bt, method="gmres", rtol=1e-9, restart=20)
    # ILU (NumPy, applied on the host) cuts the iterations several-fold; Jacobi only a little.
    for M, at_most in (
        ("jacobi", 1.0),
        (ILUPreconditioner(A, drop_tol=1e-2, fill_factor=2.0), 0.3),
    ):
        gmres = solve(At, Bt, method="gmres", M=M, rtol=1e-9, restart=20, side="right")
        fgmres = solve(At, Bt, method="fgmres", M=M, rtol=1e-9, restart=20)
        assert gmres.converged and fgmres.converged
        assert gmres.info["iterations_per_column"] == fgmres.info["iterations_per_column"]
        assert (sum(gmres.info["iterations_per_column"])
                < at_most * sum(plain.info["iterations_per_column"]))
        for result in (gmres, fgmres):
            assert np.all(_relative_residuals(A, result.x.numpy(), B) <= 1e-9)


def _variable_advection_diffusion(m: int = 20) -> sp.csr_array:
    """Variable diffusion plus upwind advection in both directions, n = m²: non-symmetric,
    with a diagonal that varies (so that Jacobi is not a multiple of the identity)."""
    shift = sp.diags_array([-1.0, 1.0], offsets=[-1, 0], shape=(m, m))
    advection = 5.0 * sp.kron(shift, sp.eye_array(m)) + 3.0 * sp.kron(sp.eye_array(m), shift)
    return sp.csr_array(variable_diffusion_2d(m, seed=7, contrast=2.0) + advection)


@pytest.mark.parametrize("reorthogonalize", ["never", "ifneeded"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_gmres_side_and_reorthogonalize_match_the_numpy_backend(side, reorthogonalize):
    A = _variable_advection_diffusion()
    B = _rhs(A.shape[0], 4, seed=23)
    result = solve(to_torch_sparse(A), torch.from_numpy(B), method="gmres", M="jacobi",
                   side=side, reorthogonalize=reorthogonalize, restart=10)
    assert result.converged, result.info["reasons"]
    assert result.info["side"] == side and result.info["reorthogonalize"] == reorthogonalize
    assert np.all(_relative_residuals(A, result.x.numpy(), B) <= DEFAULT_RTOL)
    for j in range(4):
        numpy = api_solve(A, B[:, j], method="gmres", M="jacobi", side=side,
                          reorthogonalize=reorthogonalize, restart=10)
        assert numpy.converged
        assert abs(result.info["iterations_per_column"][j] - numpy.iterations) <= 1
    if reorthogonalize == "never":
        assert result.info["reorthogonalizations"] == 0
    else:
        assert 0 < result.info["reorthogonalizations"] <= result.iterations


def test_left_and_right_gmres_differ_and_always_reorthogonalizes_every_step():
    # With a varying diagonal, left (‖M r‖) and right (‖r‖) minimize different norms.
    A = _variable_advection_diffusion()
    B = torch.from_numpy(_rhs(A.shape[0], 2, seed=24))
    At = to_torch_sparse(A)
    left = solve(At, B, method="gmres", M="jacobi", restart=40)
    right = solve(At, B, method="gmres", M="jacobi", restart=40, side="right")
    assert left.info["side"] == "left" and left.converged and right.converged
    assert not np.array_equal(left.residuals, right.residuals)
    # Left preconditioning: the history starts at the true ‖r0‖ (scaled ‖M r‖).
    np.testing.assert_allclose(left.residuals[0], np.linalg.norm(B.numpy(), axis=0), rtol=1e-14)
    # Per cycle of ≤ 40 steps, M once per step plus once more: on r at the cycle's start
    # (left), on V y for the update (right).
    cycles = -(-left.iterations // 40)
    assert left.precond_applies == left.iterations + cycles
    assert right.precond_applies == right.iterations + -(-right.iterations // 40)
    for method, options in (("gmres", {}), ("fgmres", {})):
        always = solve(At, B, method=method, M="jacobi", reorthogonalize="always", **options)
        assert always.converged and always.info["reorthogonalizations"] == always.iterations


def test_gmres_option_defaults_and_checks():
    assert option_defaults("gmres") == {"restart": 40, "side": "left",
                                        "reorthogonalize": "never", "check_every": 1,
                                        "device": None}
    assert option_defaults("fgmres") == {"restart": 40, "reorthogonalize": "never",
                                         "check_every": 1, "device": None}
    A = to_torch_sparse(laplacian_2d(4))
    b = torch.ones(16, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^side:"):
        solve(A, b, method="gmres", side="both")
    with pytest.raises(ValueError, match=r"^reorthogonalize:"):
        solve(A, b, method="gmres", reorthogonalize="sometimes")
    with pytest.raises(TypeError, match="side"):
        solve(A, b, method="fgmres", side="left")
    # Canonical values are reported.
    result = solve(A, b, method="gmres", side="RIGHT", reorthogonalize="IfNeeded")
    assert (result.info["side"], result.info["reorthogonalize"]) == ("right", "ifneeded")


def test_callable_matvec_gives_identical_results_to_the_sparse_tensor():
    A = advection_diffusion_2d(16)
    At = to_torch_sparse(A)
    Bt = torch.from_numpy(_rhs(256, 3, seed=11))
    for method in ("cg", "gmres"):
        A_here = to_torch_sparse(laplacian_2d(16)) if method == "cg" else At
        by_tensor = solve(A_here, Bt, method=method, rtol=1e-8)
        by_callable = solve(lambda X: A_here @ X, Bt, method=method, rtol=1e-8)
        assert torch.equal(by_tensor.x, by_callable.x)
        assert by_tensor.info["iterations_per_column"] == by_callable.info["iterations_per_column"]
        assert by_tensor.matvecs == by_callable.matvecs


def test_dense_and_coo_tensors_and_scipy_input_agree_with_csr():
    A = laplacian_2d(16)
    Bt = torch.from_numpy(_rhs(256, 2, seed=12))
    csr = solve(to_torch_sparse(A), Bt, method="gmres", rtol=1e-10)
    dense = solve(torch.from_numpy(A.toarray()), Bt, method="gmres", rtol=1e-10)
    coo = solve(to_torch_sparse(A).to_sparse_coo(), Bt, method="gmres", rtol=1e-10)
    from_scipy = api_solve(A, Bt.numpy(), method="gmres", rtol=1e-10, backend="torch")
    for other in (dense, coo, from_scipy):
        assert isinstance(other.x, torch.Tensor)
        assert other.info["iterations_per_column"] == csr.info["iterations_per_column"]
        torch.testing.assert_close(other.x, csr.x, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------
# Flexible CG with nonlinear preconditioners (the slot a trained network will fill)
# ------------------------------------------------------------------------------------------

class _TanhJacobi:
    """Jacobi scaled by 1 + ½·tanh(r): positive, varying, and not linear in r."""

    linear = False

    def __init__(self, A: sp.sparray):
        self.inv_diag = 1.0 / torch.from_numpy(A.diagonal())[:, None]

    def apply(self, R):
        return R * self.inv_diag * (1.0 + 0.5 * torch.tanh(R * 10.0))


class _TinyNetwork:
    """A fixed random MLP on r/‖r‖ added to Jacobi, as a learned preconditioner would be."""

    linear = False

    def __init__(self, A: sp.sparray, seed: int):
        gen = torch.Generator().manual_seed(seed)
        n = A.shape[0]
        self.inv_diag = 1.0 / torch.from_numpy(A.diagonal())[:, None]
        self.w1 = torch.randn(16, n, generator=gen, dtype=torch.float64) / n**0.5
        self.w2 = torch.randn(n, 16, generator=gen, dtype=torch.float64) / 4.0

    def apply(self, R):
        return R * self.inv_diag + 0.05 * self.w2 @ torch.tanh(self.w1 @ R)


def test_fcg_equals_preconditioned_cg_with_a_linear_preconditioner():
    A = variable_diffusion_2d(16, seed=1234, contrast=1.5)
    At, Bt = to_torch_sparse(A), torch.from_numpy(_rhs(256, 4, seed=13))
    cg = solve(At, Bt, method="cg", M="jacobi", rtol=1e-8)
    for mmax in (1, 2):
        fcg = solve(At, Bt, method="fcg", M="jacobi", rtol=1e-8, mmax=mmax)
        assert fcg.converged
        for a, b in zip(fcg.info["iterations_per_column"], cg.info["iterations_per_column"]):
            assert abs(a - b) <= 1
        torch.testing.assert_close(fcg.x, cg.x, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make_pc", [_TanhJacobi, lambda A: _TinyNetwork(A, seed=0)],
                         ids=["tanh-jacobi", "tiny-mlp"])
@pytest.mark.parametrize("mmax", [1, 2])
def test_fcg_converges_with_a_nonlinear_preconditioner(make_pc, mmax):
    A = variable_diffusion_2d(16, seed=1234, contrast=1.5)
    B = _rhs(256, 4, seed=14)
    pc = make_pc(A)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # flexible: no warning about nonlinearity
        warnings.filterwarnings("ignore", "Sparse", UserWarning)
        result = solve(to_torch_sparse(A), torch.from_numpy(B), method="fcg", M=pc, rtol=1e-8,
                       mmax=mmax, maxiter=500)
    assert result.converged
    assert np.all(_relative_residuals(A, result.x.numpy(), B) <= 1e-8)
    # Unpreconditioned CG takes 94-97 iterations on these columns.
    assert result.iterations <= 200


def test_dcdm_configuration_in_float32_with_a_network():
    """FCG with DCDM's choices: r/‖r‖ into the network, two directions kept, true residuals."""
    A = variable_diffusion_2d(16, seed=1234, contrast=1.5)
    B = _rhs(256, 3, seed=19)
    network = _TinyNetwork(A, seed=1)
    network.inv_diag, network.w1, network.w2 = (
        t.float() for t in (network.inv_diag, network.w1, network.w2)
    )
    result = solve(to_torch_sparse(A, dtype=torch.float32), torch.from_numpy(B).float(),
                   method="fcg", M=network, rtol=1e-5, mmax=2, normalize_input=True,
                   residual_replacement=1, maxiter=400)
    assert result.converged and result.x.dtype == torch.float32
    assert np.all(_relative_residuals(A, result.x.double().numpy(), B) <= 2e-5)
    # Per iteration: A p and the recomputed b − A x; then the final true residual.
    assert result.matvecs == 2 * result.iterations + 1


def test_flexible_methods_beat_rigid_ones_with_a_network_preconditioner():
    A = variable_diffusion_2d(16, seed=1234, contrast=1.5)
    At, Bt = to_torch_sparse(A), torch.from_numpy(_rhs(256, 4, seed=14))
    network = _TinyNetwork(A, seed=0)
    for flexible, rigid, options in (("fcg", "cg", {"mmax": 2}), ("fgmres", "gmres", {})):
        with pytest.warns(UserWarning, match="nonlinear"):
            rigid_result = solve(At, Bt, method=rigid, M=network, rtol=1e-8, maxiter=1000)
        flexible_result = solve(At, Bt, method=flexible, M=network, rtol=1e-8, **options)
        assert flexible_result.converged
        assert (max(flexible_result.info["iterations_per_column"])
                < min(rigid_result.info["iterations_per_column"]))


# ------------------------------------------------------------------------------------------
# Dispatch, import hygiene, devices
# ------------------------------------------------------------------------------------------

def test_api_dispatches_torch_tensors_to_the_torch_backend():
    A = laplacian_2d(16)
    b = _rhs(256, 1, seed=15)[:, 0]
    result = api_solve(to_torch_sparse(A), torch.from_numpy(b), method="cg", rtol=1e-8)
    assert result.backend == "torch" and isinstance(result.x, torch.Tensor)
    np.testing.assert_allclose(result.x.numpy(), spla.spsolve(A.tocsc(), b), rtol=1e-6, atol=1e-7)


def test_importing_the_solvers_does_not_import_torch():
    # Nor does importing the torch backend, or asking it for its methods' options.
    code = ("import sys, pdesuite.solvers, pdesuite.solvers.torch_backend as t; "
            "t.option_defaults('fcg'); sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_to_torch_sparse_keeps_entries_and_sums_duplicates():
    coo = sp.coo_array((np.array([1.0, 2.0, 3.0]), (np.array([0, 0, 1]), np.array([1, 1, 0]))),
                       shape=(2, 2))
    T = to_torch_sparse(coo, dtype=torch.float32)
    assert T.layout == torch.sparse_csr and T.dtype == torch.float32
    torch.testing.assert_close(T.to_dense(), torch.tensor([[0.0, 3.0], [3.0, 0.0]]))
    A = laplacian_2d(5)
    np.testing.assert_array_equal(to_torch_sparse(A).to_dense().numpy(), A.toarray())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    A = laplacian_2d(16)
    B = torch.from_numpy(_rhs(256, 4, seed=16))
    for method in ("cg", "gmres", "fcg"):
        cpu = solve(to_torch_sparse(A), B, method=method, rtol=1e-10)
        gpu = solve(to_torch_sparse(A, device="cuda"), B.cuda(), method=method, rtol=1e-10)
        assert gpu.x.device.type == "cuda" and gpu.converged
        assert gpu.info["device"].startswith("cuda")
        for a, b in zip(gpu.info["iterations_per_column"], cpu.info["iterations_per_column"]):
            assert abs(a - b) <= 1
        torch.testing.assert_close(gpu.x.cpu(), cpu.x, rtol=1e-8, atol=1e-9)


# ------------------------------------------------------------------------------------------
# One vocabulary: names and defaults
# ------------------------------------------------------------------------------------------

def test_option_defaults_are_those_of_the_vocabulary():
    assert METHODS == ("cg", "fcg", "dcdm", "gmres", "fgmres")
    for method in METHODS:
        defaults = option_defaults(method)
        vocabulary = {**METHOD_DEFAULTS[method], **BACKEND_OPTIONS["torch"]}
        # A subset of the method's options, each with the vocabulary's default.
        assert {name: vocabulary.get(name, "<absent>") for name in defaults} == defaults
        assert set(BACKEND_OPTIONS["torch"]) <= set(defaults)
    assert option_defaults("fcg") == {"mmax": 1, "normalize_input": True,
                                      "residual_replacement": 0, "check_every": 1, "device": None}
    assert option_defaults("gmres")["restart"] == option_defaults("fgmres")["restart"] == 40
    assert option_defaults("dcdm") == {"mmax": 2, "normalize_input": True,
                                       "residual_replacement": 1, "check_every": 1, "device": None}
    parameters = inspect.signature(solve).parameters
    assert parameters["rtol"].default == DEFAULT_RTOL == 1e-8
    assert parameters["atol"].default == DEFAULT_ATOL
    with pytest.raises(ValueError, match=r"^method:"):
        option_defaults("pcg")


def test_solves_use_the_default_restart_and_rtol():
    A = advection_diffusion_2d(16)
    B = _rhs(256, 2, seed=21)
    result = solve(to_torch_sparse(A), torch.from_numpy(B))
    assert result.method == "gmres" and result.info["restart"] == DEFAULT_RESTART == 40
    assert result.converged
    assert np.all(_relative_residuals(A, result.x.numpy(), B) <= DEFAULT_RTOL)
    fcg = solve(to_torch_sparse(laplacian_2d(16)), torch.from_numpy(B), method="fcg")
    assert (fcg.info["mmax"], fcg.info["normalize_input"], fcg.info["residual_replacement"]) \
        == (1, True, 0)


@pytest.mark.parametrize("rtol", [1.0, 2.5])
def test_rtol_of_one_or_more_is_accepted_and_met_by_x0(rtol):
    A = to_torch_sparse(laplacian_2d(16))
    B = torch.from_numpy(_rhs(256, 2, seed=22))
    for method in METHODS:
        result = solve(A, B, method=method, rtol=rtol)
        assert result.converged and result.iterations == 0
        assert torch.count_nonzero(result.x) == 0


# ------------------------------------------------------------------------------------------
# Breakdowns and singular systems (SciPy's test_iterative.py cases): the best iterate, never
# worse than x0, never NaN
# ------------------------------------------------------------------------------------------

def _true_norms(A: np.ndarray, X: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.linalg.norm(B - A @ X, axis=0)


@pytest.mark.parametrize("method", ["cg", "fcg", "gmres", "fgmres"])
def test_nilpotent_matrix_gives_the_best_iterate_not_a_blow_up(method):
    # SciPy's test_breakdown_underdetermined: GMRES on a nilpotent A breaks down, and a
    # triangular solve of its singular R returned ‖x‖ ≈ 1e16-1e18.
    A = np.triu(np.ones((4, 4)), 1)
    b = np.ones(4)
    result = solve(torch.from_numpy(A), torch.from_numpy(b), method=method, maxiter=200)
    x = result.x.numpy()
    assert np.all(np.isfinite(x)) and np.linalg.norm(x) < 10.0
    residual = np.linalg.norm(b - A @ x)
    assert residual <= np.linalg.norm(b)
    assert not result.converged
    np.testing.assert_allclose(result.info["true_residual_norms"], residual, rtol=1e-12)
    if method in ("gmres", "fgmres"):
        # GMRES finds the least-squares solution over the Krylov space.
        K = np.column_stack([np.linalg.matrix_power(A, k) @ b for k in range(4)])
        y = np.linalg.lstsq(A @ K, b, rcond=None)[0]
        optimum = np.linalg.norm(A @ K @ y - b)
        np.testing.assert_allclose(residual, optimum, rtol=1e-10)
        # It says so, early: a restart cycle that cannot shrink the residual is stagnation.
        assert result.reason is ConvergedReason.DIVERGED_STAGNATION
        assert result.iterations < 20


@pytest.mark.parametrize("method", ["gmres", "fgmres"])
def test_defective_preconditioner_ends_no_worse_than_x0(method):
    # SciPy's test_defective_precond_breakdown: M = diag(1, 1, 0) is singular.
    A = np.diag([2.0, 3.0, 4.0])
    M = np.diag([1.0, 1.0, 0.0])
    b = np.array([0.0, 1.0, 1.0])
    x0 = np.array([1.0, 0.0, 0.0])
    result = solve(torch.from_numpy(A), torch.from_numpy(b), method=method, M=M,
                   x0=torch.from_numpy(x0), rtol=1e-15)
    x = result.x.numpy()
    assert np.all(np.isfinite(x))
    assert np.linalg.norm(b - A @ x) <= np.linalg.norm(b - A @ x0)
    assert not result.converged  # no false success: ‖b − A x‖ ≥ 1 whatever x
    # Solved outside the null space of M, as SciPy checks.
    np.testing.assert_allclose(M @ A @ x, M @ b, atol=1e-12)


@pytest.mark.parametrize("method", ["gmres", "fgmres"])
def test_singular_system_reaches_the_least_squares_optimum(method):
    A = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    b = np.array([1.0, 0.0, 1.0])
    result = solve(torch.from_numpy(A), torch.from_numpy(b), method=method)
    x = result.x.numpy()
    assert np.all(np.isfinite(x))
    # min ‖b − A x‖ = 1 (b's third entry is out of A's range), not x0's √2.
    np.testing.assert_allclose(np.linalg.norm(b - A @ x), 1.0, rtol=1e-10)
    assert not result.converged


def test_a_batch_keeps_the_best_iterate_per_column():
    # Column 0 is the nilpotent case, column 1 is solvable (A x = (1, 1, 1, 0) with x = e4 is
    # out of the Krylov space from 0, but x0 = e4 + e1 already solves it).
    A = np.triu(np.ones((4, 4)), 1)
    B = np.column_stack([np.ones(4), [1.0, 1.0, 1.0, 0.0]])
    X0 = np.zeros((4, 2))
    X0[:, 1] = [1.0, 0.0, 0.0, 1.0]
    for method in ("gmres", "fgmres"):
        result = solve(torch.from_numpy(A), torch.from_numpy(B), method=method,
                       x0=torch.from_numpy(X0), maxiter=200)
        norms = _true_norms(A, result.x.numpy(), B)
        assert result.info["reasons"][1].converged and result.info["iterations_per_column"][1] == 0
        np.testing.assert_array_equal(result.x[:, 1].numpy(), X0[:, 1])
        np.testing.assert_allclose(norms[0], 1.0, rtol=1e-10)
        np.testing.assert_allclose(result.info["true_residual_norms"], norms, rtol=1e-12, atol=0)


def test_returned_iterate_of_a_failing_cg_names_x0_per_column():
    # CG's residual grows in its first step on column 0 (b = (10, 1), κ = 100): with
    # maxiter=1 x0 is the best iterate; column 1 (an eigenvector) converges in that step.
    A = np.diag([1.0, 100.0])
    B = np.array([[10.0, 1.0], [1.0, 0.0]])
    batch = solve(torch.from_numpy(A), torch.from_numpy(B), method="cg", maxiter=1)
    assert batch.info["reasons"][1].converged and not batch.info["reasons"][0].converged
    assert batch.info["returned_iterate"] == ["initial", "last"]
    assert torch.count_nonzero(batch.x[:, 0]) == 0
    # A 1-D b: a string, as the NumPy backend says it.
    single = solve(torch.from_numpy(A), torch.from_numpy(B[:, 0]), method="cg", maxiter=1)
    numpy = api_solve(A, B[:, 0], method="cg", maxiter=1)
    assert single.info["returned_iterate"] == numpy.info["returned_iterate"] == "initial"
    # Absent when every column returns its last iterate.
    converged = solve(torch.from_numpy(A), torch.from_numpy(B), method="cg")
    assert converged.converged and "returned_iterate" not in converged.info


@pytest.mark.parametrize("method", ["cg", "fcg", "gmres", "fgmres"])
def test_returned_iterate_on_the_nilpotent_matrix(method):
    A = np.triu(np.ones((4, 4)), 1)
    B = np.column_stack([np.ones(4), [1.0, 1.0, 1.0, 0.0]])
    X0 = np.zeros((4, 2))
    X0[:, 1] = [1.0, 0.0, 0.0, 1.0]  # solves column 1 already
    result = solve(torch.from_numpy(A), torch.from_numpy(B), method=method,
                   x0=torch.from_numpy(X0), maxiter=200)
    single = solve(torch.from_numpy(A), torch.from_numpy(B[:, 0]), method=method, maxiter=200)
    if method in ("cg", "fcg"):
        # pᵀAp = 0 and the residual blows up: x0 is returned, and said to be.
        assert result.info["returned_iterate"] == ["initial", "last"]
        assert single.info["returned_iterate"] == "initial"
        assert torch.count_nonzero(single.x) == 0
    else:
        # GMRES's last iterate is its least-squares optimum over the Krylov space.
        assert "returned_iterate" not in result.info and "returned_iterate" not in single.info


def test_returned_iterate_earlier_is_the_iterate_of_an_earlier_restart():
    # Left-preconditioned GMRES(1) minimizes ‖M r‖, which may fall while ‖r‖ grows: here the
    # second iterate has the smallest true residual of the four.
    rng = np.random.default_rng(4)
    A = rng.standard_normal((4, 4)) + 2.0 * np.eye(4)
    M = np.diag(10.0 ** rng.uniform(-3.0, 0.0, 4))
    b = rng.standard_normal(4)
    result = solve(torch.from_numpy(A), torch.from_numpy(b), method="gmres", M=M, restart=1,
                   maxiter=4)
    assert result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS
    assert result.info["returned_iterate"] == "earlier"
    # The iterates by hand: x += α z with z = M r and α minimizing ‖z − α M A z‖.
    iterates = [np.zeros(4)]
    for _ in range(4):
        x = iterates[-1]
        z = M @ (b - A @ x)
        w = M @ A @ z
        iterates.append(x + (w @ z) / (w @ w) * z)
    norms = [np.linalg.norm(b - A @ x) for x in iterates]
    assert int(np.argmin(norms)) == 2 and norms[4] > norms[2]
    np.testing.assert_allclose(result.x.numpy(), iterates[2], rtol=1e-12)


def test_scipy_and_numpy_matrices_go_through_as_csr(monkeypatch):
    from pdesuite.solvers.torch_backend import convert

    calls = []

    def spy(A, copy=False):
        calls.append(copy)
        return as_csr(A, copy=copy)

    monkeypatch.setattr(convert, "as_csr", spy)
    A = laplacian_2d(4)
    for given in (A, A.tocoo(), A.toarray()):
        T = to_torch_sparse(given)
        np.testing.assert_array_equal(T.to_dense().numpy(), A.toarray())
    assert calls == [True, True, True]  # a copy: the tensor shares no memory with A
    solve(sp.csc_array(A), np.ones(16), method="cg")
    assert len(calls) == 4
    # Integer entries become float64; the errors name the argument at fault.
    assert to_torch_sparse(sp.eye_array(3, dtype=np.int32, format="csr")).dtype == torch.float64
    with pytest.raises(ValueError, match=r"^A:"):
        to_torch_sparse(sp.csr_array(np.ones((2, 3))))
    bad = sp.csr_array(np.diag([1.0, np.inf, 1.0]))
    with pytest.raises(ValueError, match=r"^A:"):
        solve(bad, np.ones(3))
    with pytest.raises(ValueError, match=r"^M:"):
        solve(sp.eye_array(3, format="csr"), np.ones(3), M=bad)


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------

class _WrongShape:
    def apply(self, R):
        return R[:, :0]


def _bad_inputs():
    A = to_torch_sparse(laplacian_2d(4))
    b = torch.ones(16, dtype=torch.float64)
    nan_b = b.clone()
    nan_b[3] = float("nan")
    nan_A = torch.eye(16, dtype=torch.float64)
    nan_A[2, 2] = float("inf")
    return [
        ("b-length", dict(A=A, b=torch.ones(15, dtype=torch.float64)), ValueError, r"^b:"),
        ("b-3d", dict(A=A, b=torch.ones(16, 2, 1)), ValueError, r"^b:"),
        ("b-nan", dict(A=A, b=nan_b), ValueError, r"^b:"),
        ("A-nonsquare", dict(A=torch.ones(16, 15), b=b), ValueError, r"^A:"),
        ("A-nan", dict(A=nan_A, b=b), ValueError, r"^A:"),
        ("A-type", dict(A="matrix", b=b), TypeError, r"^A:"),
        ("A-complex", dict(A=torch.eye(16, dtype=torch.complex128), b=b), TypeError, r"^A:"),
        ("A-bad-matvec", dict(A=lambda X: X[:-1], b=b), ValueError, r"^A:"),
        ("x0-shape", dict(A=A, b=b, x0=torch.zeros(16, 1)), ValueError, r"^x0:"),
        ("rtol", dict(A=A, b=b, rtol=-1.0), ValueError, r"^rtol:"),
        ("rtol-nan", dict(A=A, b=b, rtol=float("nan")), ValueError, r"^rtol:"),
        ("atol-none", dict(A=A, b=b, atol=None), ValueError, r"^atol:"),
        ("atol-legacy", dict(A=A, b=b, atol="legacy"), ValueError, r"^atol:"),
        ("atol-negative", dict(A=A, b=b, atol=-1e-3), ValueError, r"^atol:"),
        ("maxiter", dict(A=A, b=b, maxiter=0), ValueError, r"^maxiter:"),
        ("method", dict(A=A, b=b, method="bicgstab"), ValueError, r"^method:"),
        ("option", dict(A=A, b=b, method="cg", restart=5), TypeError, r"restart"),
        ("check_every", dict(A=A, b=b, check_every=0), ValueError, r"^check_every:"),
        ("restart", dict(A=A, b=b, method="gmres", restart=0), ValueError, r"^restart:"),
        ("mmax", dict(A=A, b=b, method="fcg", mmax=0), ValueError, r"^mmax:"),
        ("normalize_input", dict(A=A, b=b, method="fcg", normalize_input="yes"), ValueError,
         r"^normalize_input:"),
        ("residual_replacement", dict(A=A, b=b, method="fcg", residual_replacement=-1),
         ValueError, r"^residual_replacement:"),
        # Names outside the vocabulary are unknown options, not aliases.
        ("truncation", dict(A=A, b=b, method="fcg", truncation=2), TypeError, r"truncation"),
        ("pcg", dict(A=A, b=b, method="pcg"), ValueError, r"^method:"),
        ("device-name", dict(A=A, b=b, device="nowhere"), ValueError, r"^device:"),
        ("device-mismatch", dict(A=A, b=b, device="meta"), ValueError, r"^device:"),
        ("b-device", dict(A=A, b=b.to("meta")), ValueError, r"^b:"),
        ("M-name", dict(A=A, b=b, M="ilu"), ValueError, r"^M:"),
        ("M-type", dict(A=A, b=b, M=42), TypeError, r"^M:"),
        ("M-shape", dict(A=A, b=b, M=lambda R: R[:-1]), ValueError, r"^M:"),
        ("M-apply-shape", dict(A=A, b=b, M=_WrongShape()), ValueError, r"^M:"),
        ("M-host-shape", dict(A=A, b=b, M=FunctionPreconditioner(lambda r: r[:-1])),
         ValueError, r"^M:"),
        ("M-matrix-shape", dict(A=A, b=b, M=torch.eye(15, dtype=torch.float64)), ValueError,
         r"^M:"),
        ("pc-option-no-M", dict(A=A, b=b, pc_omega=1.5), TypeError, r"pc_omega"),
        ("pc-option-callable-M", dict(A=A, b=b, M=lambda R: R, pc_omega=1.5), TypeError,
         r"pc_omega"),
        ("pc-option-jacobi", dict(A=A, b=b, M="jacobi", pc_omega=1.5), TypeError, r"pc_omega"),
        ("M-jacobi-matvec", dict(A=lambda X: X, b=b, M="jacobi"), TypeError, r"^M="),
    ]


@pytest.mark.parametrize("case", _bad_inputs(), ids=lambda case: case[0])
def test_bad_input_names_the_argument(case):
    _, kwargs, error, pattern = case
    with pytest.raises(error, match=pattern):
        solve(**kwargs)
