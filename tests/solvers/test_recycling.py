"""GCRO-DR, recycling CG and RecyclingSolver: against GMRES, CG, spsolve and SciPy's gcrotmk."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.solvers import FunctionPreconditioner, solve
from pdesuite.solvers.recycling import RecycleSpace, RecyclingSolver
from tests.solvers.matrix_registry import (
    advection_diffusion_2d,
    laplacian_2d,
    registry,
    variable_diffusion_2d,
)

CASES = {case.name: case for case in registry()}


# ---- a slowly varying Darcy-like sequence ---------------------------------------------------


def _smooth_field(m: int, rng: np.random.Generator, modes: int = 4) -> np.ndarray:
    """A smooth random field on the (m+2)² grid nodes, zero on the boundary."""
    x = np.linspace(0.0, 1.0, m + 2)
    X, Y = np.meshgrid(x, x, indexing="ij")
    return sum(
        rng.normal() * np.sin((i + 1) * np.pi * X) * np.sin((j + 1) * np.pi * Y) / (1 + i + j) ** 2
        for i in range(modes)
        for j in range(modes)
    )


def _darcy(log_a: np.ndarray) -> sp.csr_array:
    """−∇·(a∇u), 5-point, zero Dirichlet, harmonic means of a = exp(log_a) on the faces.

    The same discretisation as ``matrix_registry.variable_diffusion_2d``, for a given field.
    """
    m = log_a.shape[0] - 2
    a = np.exp(log_a)
    ax = 2 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])
    ay = 2 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])
    east, west = ax[1:, 1:-1], ax[:-1, 1:-1]
    north, south = ay[1:-1, 1:], ay[1:-1, :-1]
    diag = (east + west + north + south).ravel()
    east_coupling = east.ravel()[:-m]
    north_coupling = north.copy()
    north_coupling[:, -1] = 0.0  # no coupling across the end of a grid line
    north_coupling = north_coupling.ravel()[:-1]
    A = sp.diags_array([diag, -east_coupling, -east_coupling, -north_coupling, -north_coupling],
                       offsets=[0, m, -m, 1, -1], shape=(m * m, m * m))
    return sp.csr_array(A)


def darcy_sequence(m: int = 32, count: int = 50, seed: int = 0, contrast: float = 2.0,
                   amplitude: float = 0.5) -> list[sp.csr_array]:
    """log a_t = contrast·(f0 + amplitude·t·f1), t in [0, 1]: a fixed field, slowly perturbed."""
    rng = np.random.default_rng(seed)
    f0, f1 = _smooth_field(m, rng), _smooth_field(m, rng)
    return [_darcy(contrast * (f0 + amplitude * t * f1)) for t in np.linspace(0.0, 1.0, count)]


def test_darcy_assembly_matches_the_registry():
    from tests.solvers.matrix_registry import variable_diffusion_2d

    rng = np.random.default_rng(3)
    field = _smooth_field(8, rng)
    difference = _darcy(1.5 * field) - variable_diffusion_2d(8, seed=3, contrast=1.5)
    assert abs(difference).max() < 1e-12
    assert abs(_darcy(np.zeros((6, 6))) - laplacian_2d(4)).max() < 1e-12


def _scipy_gcrotmk_matvecs(matrices, rhs, rtol):
    """Total products of SciPy's gcrotmk(m=20, k=20) over a sequence, CU carried over."""
    CU: list = []
    total = 0
    for A, b in zip(matrices, rhs):
        count = [0]

        def matvec(v, A=A):
            count[0] += 1
            return A @ v

        L = spla.LinearOperator(A.shape, matvec=matvec, dtype=float)
        x, status = spla.gcrotmk(L, b, rtol=rtol, atol=0.0, m=20, k=20, CU=CU, discard_C=True,
                                 maxiter=1000)
        assert status == 0
        total += count[0]
    return total


# ---- GCRO-DR on single systems ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["poisson1d", "poisson2d", "diffusion2d", "advdiff2d",
                                  "complex_shifted", "singular_consistent"])
def test_k0_is_gmres(name):
    """k = 0: exactly the inner steps of GMRES(m), ours and SciPy's."""
    case = CASES[name]
    ours = solve(case.A, case.b, method="gcrodr", restart=20, k=0, rtol=1e-8, maxiter=5000)
    gmres = solve(case.A, case.b, method="gmres", restart=20, side="right", rtol=1e-8, maxiter=5000)
    assert ours.converged and gmres.converged
    assert ours.iterations == gmres.iterations
    steps = [0]
    spla.gmres(case.A, case.b, rtol=1e-8, atol=0.0, restart=20, maxiter=5000,
               callback=lambda _: steps.__setitem__(0, steps[0] + 1), callback_type="pr_norm")
    assert abs(ours.iterations - steps[0]) <= 1
    # one product per step, the initial residual and the final check: no restart products
    assert ours.matvecs == ours.iterations + 2


def test_k0_is_right_preconditioned_gmres():
    case = CASES["diffusion2d"]
    ours = solve(case.A, case.b, method="gcrodr", M="jacobi", restart=15, k=0, rtol=1e-9)
    gmres = solve(case.A, case.b, method="gmres", M="jacobi", restart=15, side="right", rtol=1e-9)
    assert ours.converged and ours.iterations == gmres.iterations
    assert ours.precond_applies == ours.iterations


@pytest.mark.parametrize("name", ["poisson1d", "poisson2d", "diffusion2d", "advdiff2d",
                                  "helmholtz2d", "complex_shifted"])
def test_single_system_matches_spsolve(name):
    case = CASES[name]
    result = solve(case.A, case.b, method="gcrodr", restart=30, k=10, rtol=1e-10, maxiter=5000)
    assert result.converged, result
    exact = spla.spsolve(sp.csc_array(case.A), case.b)
    assert np.linalg.norm(result.x - exact) <= 1e-6 * np.linalg.norm(exact)
    assert np.linalg.norm(case.b - case.A @ result.x) <= 1e-10 * np.linalg.norm(case.b)
    assert result.x.dtype == case.b.dtype
    # a complex pair of a real matrix split by the 10th place is kept whole (or dropped)
    assert result.info["recycle_dim"] in (9, 10, 11)


def test_deflated_restarting_beats_gmres_on_a_single_system():
    """GMRES-DR: the same memory (m = 20) converges in far fewer steps than GMRES(20)."""
    case = CASES["poisson1d"]
    dr = solve(case.A, case.b, method="gcrodr", restart=20, k=5, rtol=1e-8)
    plain = solve(case.A, case.b, method="gmres", restart=20, side="right", rtol=1e-8)
    assert dr.converged and plain.converged
    assert dr.iterations * 3 < plain.iterations  # measured: 88 against 440


def test_helmholtz_indefinite_needs_the_recycled_space():
    case = CASES["helmholtz2d"]
    plain = solve(case.A, case.b, method="gcrodr", restart=20, k=0, rtol=1e-8, maxiter=2000)
    deflated = solve(case.A, case.b, method="gcrodr", restart=20, k=5, rtol=1e-8, maxiter=2000)
    assert not plain.converged  # GMRES(20) stalls on this indefinite matrix
    assert deflated.converged and deflated.iterations < 200


@pytest.mark.parametrize("side, M", [("right", "ilu"), ("left", "jacobi"), ("right", "jacobi")])
def test_preconditioned(side, M):
    case = CASES["advdiff2d"]
    result = solve(case.A, case.b, method="gcrodr", M=M, side=side, restart=20, k=5, rtol=1e-10)
    assert result.converged
    exact = spla.spsolve(sp.csc_array(case.A), case.b)
    assert np.linalg.norm(result.x - exact) <= 1e-7 * np.linalg.norm(exact)


def test_flexible_with_a_nonlinear_preconditioner():
    """An inner CG to a loose tolerance is a different map for every r: right side copes."""
    case = CASES["diffusion2d"]
    inner = FunctionPreconditioner(
        lambda r: spla.cg(case.A, r, rtol=0.3, maxiter=4)[0], linear=False)
    result = solve(case.A, case.b, method="gcrodr", M=inner, restart=20, k=5, rtol=1e-9)
    assert result.converged
    exact = spla.spsolve(sp.csc_array(case.A), case.b)
    assert np.linalg.norm(result.x - exact) <= 1e-6 * np.linalg.norm(exact)
    with pytest.raises(ValueError, match="side"):
        solve(case.A, case.b, method="gcrodr", M=inner, side="left", restart=20, k=5)


@pytest.mark.parametrize("A", [advection_diffusion_2d(14, peclet=400.0), laplacian_2d(20)],
                         ids=["advection-diffusion", "laplacian"])
def test_estimated_loss_keeps_the_basis_orthonormal_with_fewer_second_passes(A):
    """GCRO-DR's Arnoldi cycle (``estimate_loss``): 80 steps from a random vector.

    Measured: one pass loses all orthogonality (1.0) on the advection-diffusion matrix and
    2e-3 on the Laplacian; the DGKS test runs a second pass at all 80 steps; the estimate at
    36 and 21 of them and keeps ``|VᵀV − I|`` at about ``LOSS_TOLERANCE`` eps (1e-12).
    """
    from pdesuite.solvers.arnoldi import LOSS_TOLERANCE, ArnoldiCycle

    A = sp.csr_array(A)
    n, m = A.shape[0], 80
    b = np.random.default_rng(3).standard_normal(n)
    runs = {}
    for name, options in (("never", {"reorthogonalize": "never"}),
                          ("dgks", {"reorthogonalize": "ifneeded"}),
                          ("estimate", {"reorthogonalize": "ifneeded", "estimate_loss": True})):
        cycle = ArnoldiCycle(m, n, np.float64, **options)
        cycle.begin(b, np.linalg.norm(b))
        for j in range(m):
            assert not cycle.extend(A @ cycle.vector(j))[1]
        V = cycle.basis[:m + 1]
        runs[name] = (np.abs(V @ V.T - np.eye(m + 1)).max(), cycle.reorthogonalizations)
    assert runs["never"][0] > 1e-4
    assert runs["estimate"][0] <= 10 * LOSS_TOLERANCE * np.finfo(float).eps
    assert runs["estimate"][1] <= 0.6 * runs["dgks"][1]


@pytest.mark.parametrize("reorthogonalize, orthogonality", [("ifneeded", 1e-11), ("never", 1e-8)])
def test_real_nonsymmetric_keeps_a_real_space(reorthogonalize, orthogonality):
    """Complex harmonic Ritz pairs of a real matrix enter as real and imaginary parts.

    One Gram–Schmidt pass (``"never"``) leaves ``CᵀC = I`` to 3e-10 here; the second pass of
    ``"ifneeded"`` (the default) to below 1e-11.
    """
    A = advection_diffusion_2d(14, peclet=400.0)
    b = np.random.default_rng(7).standard_normal(A.shape[0])
    space = RecycleSpace(solutions=0)
    result = solve(A, b, method="gcrodr", restart=24, k=8, rtol=1e-10, recycle=space,
                   reorthogonalize=reorthogonalize)
    assert result.converged
    assert space.basis.dtype == np.float64 and space.image_rows.dtype == np.float64
    assert space.dim in (7, 8, 9)
    # B U = C with C orthonormal, to rounding
    C, U = space.image_rows, space.solution_rows
    assert np.abs(C @ C.T - np.eye(space.dim)).max() < orthogonality
    assert np.abs((A @ U.T).T - C).max() < 1e-8 * np.abs(C).max()


# ---- sequences --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sequence():
    return darcy_sequence(m=32, count=50)


@pytest.mark.slow
def test_darcy_sequence_against_gmres_and_gcrotmk(sequence):
    """50 slowly varying Darcy systems (n = 1024), b fixed, rtol 1e-8.

    Measured (matvecs in total): GMRES(40) 10929, SciPy gcrotmk(20, 20) 2497, RecyclingSolver
    GCRO-DR(40, 20) 1938; with no stored solutions (GCRO-DR alone) 4318, which is 2.5× fewer
    than GMRES but 1.7× SciPy's, whose CU list carries the last solution and recent
    corrections (a good initial guess on this sequence).
    """
    b = np.ones(sequence[0].shape[0])
    rtol = 1e-8
    gmres_total = 0
    for A in sequence:
        result = solve(A, b, method="gmres", restart=40, side="right", rtol=rtol)
        assert result.converged
        gmres_total += result.matvecs

    def run(solver):
        total = 0
        for A in sequence:
            result = solver.solve(A, b)
            assert result.converged
            assert np.linalg.norm(b - A @ result.x) <= rtol * np.linalg.norm(b)
            assert not result.info["recycle_reset"]
            total += result.matvecs
        return total

    ours = run(RecyclingSolver(restart=40, k=20, rtol=rtol))
    alone = run(RecyclingSolver(restart=40, k=20, rtol=rtol, solutions=0))
    theirs = _scipy_gcrotmk_matvecs(sequence, [b] * len(sequence), rtol)
    assert 3 * ours <= gmres_total
    assert ours <= 1.1 * theirs
    # the recycled harmonic Ritz space alone: a smaller, honest gain
    assert 2 * alone <= gmres_total


def test_short_sequence_recycles(sequence):
    """Fast version: 8 systems; the recycled solves need far fewer products than the first."""
    b = np.ones(sequence[0].shape[0])
    solver = RecyclingSolver(restart=40, k=20, rtol=1e-8, solutions=0)
    results = [solver.solve(A, b) for A in sequence[:8]]
    assert all(r.converged for r in results)
    assert results[0].info["recycle_slowness"] is None
    later = results[1:]
    assert all(r.info["recycle_slowness"] < 0.2 and not r.info["recycle_reset"] for r in later)
    # C = QR(A U): k products, and one on a random vector for the slowness
    assert all(r.info["recycle_matvecs"] == 21 for r in later)
    assert max(r.iterations for r in later[2:]) * 2 < results[0].iterations
    assert solver.recycle_dim == 20
    gmres = solve(sequence[7], b, method="gmres", restart=40, side="right", rtol=1e-8)
    assert 2 * results[-1].matvecs < gmres.matvecs


def test_update_period_skips_refreshes_and_stays_exact(sequence):
    """Refreshing every 4th cycle: the same answer to rtol, fewer harmonic Ritz steps.

    On systems 2–8 of the Darcy sequence (n = 1024) period 1 does one refresh per cycle;
    period 4 does ceil(cycles / 4) of them plus the one after the last cycle at most.
    """
    b = np.ones(sequence[0].shape[0])
    runs = {}
    for period in (1, 4):
        solver = RecyclingSolver(restart=40, k=20, rtol=1e-8, solutions=0, update_period=period)
        results = [solver.solve(A, b) for A in sequence[:8]]
        assert all(r.converged for r in results)
        for A, r in zip(sequence[:8], results):
            assert np.linalg.norm(b - A @ r.x) <= 1e-8 * np.linalg.norm(b)
        runs[period] = results
    for every, sparse in zip(runs[1][1:], runs[4][1:]):
        assert every.info["recycle_updates"] == every.info["cycles"]
        cycles = sparse.info["cycles"]
        assert sparse.info["recycle_updates"] <= cycles // 4 + 1
        assert sparse.info["recycle_updates"] >= 1  # the one after the last cycle
    # the skipped refreshes cost some iterations, but not many on a slowly varying sequence
    total = {period: sum(r.iterations for r in results) for period, results in runs.items()}
    assert total[4] <= 1.5 * total[1]


@pytest.mark.parametrize("method", ["rcg", "gcrodr"])
def test_space_kept_under_a_strong_preconditioner(sequence, method):
    """SSOR at ω = 1.6 clusters the spectrum: the slowness of a good space reaches 0.9–1.0.

    Measured on the Darcy sequence (n = 1024, rtol 1e-8): slowness 0.97 (rcg) / 0.92 (gcrodr)
    on the second system, above stale_threshold = 0.7, but the growth of the stretch is
    0.98–1.0, so the space is kept; iterations fall from 25 to 13–15 per system, while
    independent solves take 25.
    """
    b = np.ones(sequence[0].shape[0])
    solver = RecyclingSolver(
        method=method,
        k=20,
        rtol=1e-8,
        M="ssor",
        pc_omega=1.6,
        solutions=0,
        **({"restart": 40} if method == "gcrodr" else {"ell": 40}),
    )
    results = [solver.solve(A, b) for A in sequence[:6]]
    assert all(r.converged for r in results)
    later = results[1:]
    assert later[0].info["recycle_slowness"] > 0.7  # slowness alone would have reset it
    assert all(not r.info["recycle_reset"] for r in later)
    assert all(r.info["recycle_growth"] < 1.2 for r in later)
    independent = solve(sequence[5], b, method="cg" if method == "rcg" else "gmres", M="ssor",
                        pc_omega=1.6, rtol=1e-8).iterations
    assert max(r.iterations for r in later) <= 0.7 * independent


@pytest.mark.slow
def test_default_orthogonalisation_survives_the_fe_poisson_ilu_sequence():
    """Found by benchmarks/bench_skr.py: P1 Poisson on the L-shape (9,520 unknowns), greedy
    SKR order, ILU with drop tolerance 1e-4, rtol 1e-5. After a first solve of 20 iterations (one
    short cycle, so the recycled space is the whole Krylov space), one Gram–Schmidt pass let the
    second solve stall at a residual of 1e-2 for 10⁴ iterations; with the default it takes 18–19.
    The cause was the initial projection: the previous solution's image lies almost in span(C), and
    one pass against C left the first Arnoldi vector far from orthogonal to C (now two).
    """
    from pdesuite.datasets import get_family, sort_order

    family = get_family("poisson-fe", resolution=57)
    params = [family.sample(np.random.default_rng([0, i])) for i in range(200)]
    order = sort_order(np.stack([family.sort_key(p) for p in params]), method="greedy")
    solver = RecyclingSolver("gcrodr", restart=40, k=20, rtol=1e-5, maxiter=300, M="ilu",
                             pc_drop_tol=1e-4)
    iterations = []
    for index in order[:3]:
        system = family.assemble(params[index])
        result = solver.solve(system.A, system.b)
        assert result.converged
        iterations.append(result.iterations)
    assert iterations[1] <= 40  # measured 18


@pytest.mark.slow
def test_default_orthogonalisation_survives_the_helmholtz_ilu_sequence():
    """Found by benchmarks/bench_skr.py: Helmholtz at k0 = 10 (10⁴ unknowns, indefinite),
    greedy SKR order, ILU with drop tolerance 1e-4, rtol 1e-5. With one Gram–Schmidt pass the
    third solve stagnates after 119 iterations (the basis loses its orthogonality within a
    few cycles); the default measures the loss at every step and converges in 107, as CGS2.
    """
    from pdesuite.datasets import get_family, sort_order

    family = get_family("helmholtz", resolution=102, k0=10.0)
    params = [family.sample(np.random.default_rng([0, i])) for i in range(200)]
    order = sort_order(np.stack([family.sort_key(p) for p in params]), method="greedy")
    solver = RecyclingSolver("gcrodr", restart=40, k=20, rtol=1e-5, maxiter=2000, M="ilu",
                             pc_drop_tol=1e-4)
    for index in order[:3]:
        system = family.assemble(params[index])
        result = solver.solve(system.A, system.b)
        assert result.converged, result.reason
        assert result.iterations <= 200  # measured 113, 90, 107
        assert np.linalg.norm(system.b - system.A @ result.x) <= 1e-5 * np.linalg.norm(system.b)


def test_stale_space_is_reset(sequence):
    """A renumbered matrix (P A Pᵀ) makes the old space useless: reset, and still converge."""
    b = np.ones(sequence[0].shape[0])
    for method in ("gcrodr", "rcg"):
        solver = RecyclingSolver(method=method, k=20, rtol=1e-8,
                                 **({"restart": 40} if method == "gcrodr" else {"ell": 40}))
        for A in sequence[:4]:
            assert not solver.solve(A, b).info["recycle_reset"]
        perm = np.random.default_rng(1).permutation(b.size)
        shuffled = sp.csr_array(sequence[4][perm][:, perm])
        result = solver.solve(shuffled, b)
        assert result.converged
        assert result.info["recycle_reset"] and "stale" in result.info["reason_reset"]
        assert result.info["recycle_slowness"] > 0.8  # measured 0.97: as good as random
        exact = spla.spsolve(sp.csc_array(shuffled), b)
        assert np.linalg.norm(result.x - exact) <= 1e-6 * np.linalg.norm(exact)
        assert result.info["resets"] == 1
        # the new space is built from the new matrix, and the next similar solve keeps it
        after = solver.solve(sp.csr_array(sequence[5][perm][:, perm]), b)
        assert after.converged and not after.info["recycle_reset"]


def test_same_matrix_reuses_the_images(sequence):
    """Same A object: one probe product instead of k; an in-place change is caught."""
    A = sequence[0].copy()
    rng = np.random.default_rng(2)
    solver = RecyclingSolver(restart=30, k=10, rtol=1e-9, solutions=0)
    solver.solve(A, rng.standard_normal(A.shape[0]))
    second = solver.solve(A, rng.standard_normal(A.shape[0]))
    assert second.converged and second.info["recycle_matvecs"] == 1
    A.data *= 1.0 + 0.01 * rng.standard_normal(A.data.size)  # a new matrix in the same object
    A = sp.csr_array((A + A.T) / 2)
    b = rng.standard_normal(A.shape[0])
    third = solver.solve(A, b)
    assert third.converged and third.info["recycle_matvecs"] == 11
    exact = spla.spsolve(sp.csc_array(A), b)
    assert np.linalg.norm(third.x - exact) <= 1e-6 * np.linalg.norm(exact)
    changed = solver.solve(A, b)  # same object again, data edited in place between calls
    A.data *= 1.05
    in_place = solver.solve(A, b)
    assert changed.info["recycle_matvecs"] == 1
    assert in_place.info["recycle_matvecs"] == 1 + 11 and in_place.converged
    assert np.linalg.norm(b - A @ in_place.x) <= 1e-9 * np.linalg.norm(b)


def test_stored_solutions_speed_up_the_sequence(sequence):
    b = np.ones(sequence[0].shape[0])
    totals = {}
    for solutions in (0, 4):
        solver = RecyclingSolver(restart=40, k=20, rtol=1e-8, solutions=solutions)
        results = [solver.solve(A, b) for A in sequence[:8]]
        assert all(r.converged for r in results)
        totals[solutions] = sum(r.matvecs for r in results)
        if solutions:
            assert results[-1].info["projection_reduction"] < 1e-3
    assert totals[4] < 0.75 * totals[0]


def test_complex_sequence():
    """Complex shifted Laplacians −Δ + (σ_t + 0.5i) I with a slowly moving shift."""
    L = laplacian_2d(16).astype(complex)
    b = np.random.default_rng(4).standard_normal(256) + 0j
    solver = RecyclingSolver(restart=30, k=10, rtol=1e-10, solutions=0)
    recycled = plain = 0
    for shift in np.linspace(0.0, 0.2, 6):
        A = sp.csr_array(L + (shift + 0.5j) * sp.eye_array(256))
        result = solver.solve(A, b)
        assert result.converged and result.x.dtype == np.complex128
        assert np.linalg.norm(b - A @ result.x) <= 1e-10 * np.linalg.norm(b)
        recycled += result.matvecs
        plain += solve(A, b, method="gmres", restart=30, side="right", rtol=1e-10).matvecs
    assert recycled < plain


def test_k_may_be_a_tuner(sequence):
    from pdesuite.solvers.tuning import TsallisINF

    b = np.ones(sequence[0].shape[0])
    tuner = TsallisINF([5, 10, 20], seed=0)
    solver = RecyclingSolver(restart=40, k=tuner, rtol=1e-8, solutions=0)
    chosen = []
    for A in sequence[:6]:
        result = solver.solve(A, b)
        assert result.converged
        chosen.append(result.info["tuned"]["k"])
        assert solver.recycle_dim == chosen[-1]
    assert set(chosen) <= {5, 10, 20}


# ---- recycling CG -----------------------------------------------------------------------------


@pytest.mark.parametrize("M", [None, "jacobi"])
def test_rcg_needs_fewer_iterations_than_cg(sequence, M):
    """Deflated CG alone (no stored solutions), 20 systems: measured 0.47× (none) and 0.42×
    (Jacobi) of CG's iterations."""
    b = np.ones(sequence[0].shape[0])
    rtol = 1e-8
    cg_total = rcg_total = 0
    solver = RecyclingSolver(method="rcg", ell=40, k=20, rtol=rtol, M=M, solutions=0)
    for A in sequence[:20]:
        cg = solve(A, b, method="cg", M=M, rtol=rtol)
        assert cg.converged
        cg_total += cg.iterations
        result = solver.solve(A, b)
        assert result.converged
        assert np.linalg.norm(b - A @ result.x) <= rtol * np.linalg.norm(b)
        rcg_total += result.iterations
    assert rcg_total < 0.65 * cg_total
    assert solver.recycle_dim == 20


def test_rcg_with_exact_eigenvectors():
    """W = the 6 lowest eigenvectors: the Galerkin start removes them, and the Ritz update
    returns the same space."""
    case = CASES["diffusion2d"]
    lam, V = np.linalg.eigh(case.A.toarray())
    space = RecycleSpace(solutions=0)
    space.method, space.basis = "rcg", np.ascontiguousarray(V[:, :6].T)
    space.solution_rows = space.basis
    result = solve(case.A, case.b, method="rcg", k=6, ell=40, recycle=space, rtol=1e-10)
    plain = solve(case.A, case.b, method="cg", rtol=1e-10)
    assert result.converged and result.iterations < plain.iterations
    Q = np.linalg.qr(space.basis.T)[0]
    cosines = np.linalg.svd(V[:, :6].T @ Q, compute_uv=False)
    assert cosines.min() > 0.999
    # the new W is A-orthonormal
    W = space.basis
    assert np.abs(W @ (case.A @ W.T) - np.eye(6)).max() < 1e-8


def test_rcg_reports_indefinite():
    case = CASES["helmholtz2d"]
    result = solve(case.A, case.b, method="rcg", k=4, rtol=1e-8)
    assert result.reason.name == "DIVERGED_INDEFINITE_MAT"


def test_rcg_complex_hermitian():
    A = sp.csr_array(laplacian_2d(10).astype(complex) + sp.diags_array(
        [0.3j * np.ones(99), -0.3j * np.ones(99)], offsets=[1, -1], shape=(100, 100)))
    b = np.random.default_rng(3).standard_normal(100) + 1j
    solver = RecyclingSolver(method="rcg", ell=20, k=5, rtol=1e-10)
    for _ in range(3):
        result = solver.solve(A, b)
        assert result.converged
        assert np.linalg.norm(b - A @ result.x) <= 1e-10 * np.linalg.norm(b)


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    ({"restart": 20, "k": 20}, "k"),
    ({"restart": 20, "k": 30}, "k"),
    ({"k": -1}, "k"),
    ({"method": "gmres"}, "method"),
    ({"method": "nope"}, "method"),
    ({"restart": 0}, "restart"),
    ({"side": "up"}, "side"),
    ({"stale_threshold": -1.0}, "stale_threshold"),
    ({"rtol": -1.0}, "rtol"),
    ({"solutions": -2}, "solutions"),
])
def test_recycling_solver_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RecyclingSolver(**kwargs)


def test_recycling_solver_takes_the_methods_option_names():
    with pytest.raises(TypeError, match="restart"):
        RecyclingSolver(m=40)  # the method names the cycle length restart, not m
    assert RecyclingSolver().k == 20 and RecyclingSolver("rcg", k=5).k == 5


def test_method_options_are_checked():
    case = CASES["poisson2d"]
    with pytest.raises(ValueError, match="k"):
        solve(case.A, case.b, method="gcrodr", restart=10, k=10)
    with pytest.raises(ValueError, match="restart"):
        solve(case.A, case.b, method="gcrodr", restart=0, k=0)
    with pytest.raises(ValueError, match="recycle"):
        solve(case.A, case.b, method="gcrodr", recycle="yes")
    with pytest.raises(ValueError, match="reorthogonalize"):
        solve(case.A, case.b, method="gcrodr", reorthogonalize="sometimes")
    with pytest.raises(ValueError, match="update_period"):
        solve(case.A, case.b, method="gcrodr", update_period=0)
    with pytest.raises(ValueError, match="k"):
        solve(case.A, case.b, method="rcg", k="ten")


def test_reset_and_size_change(sequence):
    b = np.ones(sequence[0].shape[0])
    solver = RecyclingSolver(restart=30, k=10, rtol=1e-8)
    solver.solve(sequence[0], b)
    assert solver.recycle_dim == 10
    small = CASES["poisson2d"]
    result = solver.solve(small.A, small.b)  # another size: the space cannot apply
    assert result.converged and result.info["recycle_reset"]
    assert "size" in result.info["reason_reset"]
    solver.reset()
    assert solver.recycle_dim == 0 and not solver.space.solutions


def test_left_preconditioned_sequence_converges_on_the_true_residual():
    # Regression: the monitor's ‖M r‖ scale is measured at the current iterate, so the api's
    # true-residual retry makes progress instead of stopping at the same claim three times.
    solver = RecyclingSolver(method="gcrodr", restart=40, k=20, rtol=1e-8, M="jacobi", side="left")
    b = np.ones(1024)
    for seed in range(3):
        A = variable_diffusion_2d(32, seed=seed, contrast=3.0)
        result = solver.solve(A, b)
        assert result.converged, result.reason
        assert np.linalg.norm(b - A @ result.x) <= 1e-8 * np.linalg.norm(b)
