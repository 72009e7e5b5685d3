"""Learned preconditioners: the grid map, DCDM's loss, training, loading, every backend, errors.

A tiny DCDMNet trained briefly on a 16x16 Poisson problem (one shared fixture) is
the preconditioner of most tests; everything runs on the CPU with one torch thread.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

pytest.importorskip("torch")

import torch  # noqa: E402  (after the skip: the module needs torch)

from pdesuite.discretization import Dirichlet, Grid, Neumann, fd
from pdesuite.operators.preconditioning import (
    DCDMNet,
    GridMap,
    LearnedPreconditioner,
    block_diagonal,
    dcdm_loss,
    lanczos_ritz,
    load_preconditioner,
    ritz_right_hand_sides,
    train_preconditioner,
)
from pdesuite.solvers import solve
from pdesuite.solvers.result import ConvergedReason

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GRID = Grid((16, 16))
#: The tiny training run of the shared fixture.
TINY = dict(model={"width": 8}, epochs=10, rhs_per_matrix=100, ritz_steps=196, lr=3e-3,
            progress=False, device="cpu")


@pytest.fixture(scope="module")
def poisson():
    return fd.diffusion(GRID, 1.0, source=1.0)


@pytest.fixture(scope="module")
def trained(poisson, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "pc"
    return train_preconditioner(poisson.A, GRID, out_dir=run, **TINY)


def _rhs(n: int, seed: int, columns: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n if columns is None else (n, columns))


# ------------------------------------------------------------------------------- grid map
def test_grid_map_round_trips_the_interior_unknowns():
    grid = Grid((6, 8))
    grid_map = GridMap(grid)
    system = fd.diffusion(grid, 1.0)
    np.testing.assert_array_equal(grid_map.free, system.free)
    r = _rhs(grid_map.n, 0)
    field = grid_map.to_field(r)
    assert field.shape == grid.shape and np.all(field[grid.boundary_mask()] == 0)
    np.testing.assert_array_equal(grid_map.from_field(field), r)
    # the same as the discretisation's own map, with a zero lift
    np.testing.assert_array_equal(field, grid.to_field(system.expand(r))[0])
    R = torch.as_tensor(_rhs(grid_map.n, 1, columns=3))
    fields = grid_map.to_fields(R)
    assert fields.shape == (3, 1, 6, 8)
    torch.testing.assert_close(grid_map.from_fields(fields), R, rtol=0, atol=0)


def test_grid_map_follows_system_free_for_other_boundaries():
    grid = Grid((8, 8))
    system = fd.diffusion(grid, 1.0, bc={"x-": Neumann(0.0), "x+": Dirichlet(0.0),
                                         "y-": Dirichlet(0.0), "y+": Neumann(0.0)})
    grid_map = GridMap(grid, system.free)
    r = _rhs(system.n_free, 2)
    np.testing.assert_array_equal(grid_map.to_field(r), grid.to_field(system.expand(r))[0])
    np.testing.assert_array_equal(grid_map.from_field(grid_map.to_field(r)), r)
    with pytest.raises(ValueError, match="free: indices repeat"):
        GridMap(grid, np.array([1, 1]))
    with pytest.raises(ValueError, match="free: indices must lie"):
        GridMap(grid, np.array([64]))


# ----------------------------------------------------------------------------------- loss
def test_the_loss_is_scale_invariant_and_zero_at_the_solution(poisson):
    A = poisson.A
    At = torch.as_tensor(A.toarray())
    b = torch.as_tensor(_rhs(A.shape[0], 3, columns=4))
    b = b / torch.linalg.vector_norm(b, dim=0)
    q = torch.as_tensor(_rhs(A.shape[0], 4, columns=4))
    loss = dcdm_loss(At, q, b, reduction="none")
    torch.testing.assert_close(dcdm_loss(At, 3.0 * q, b, reduction="none"), loss)
    assert torch.all(loss > 1e-3)
    exact = torch.as_tensor(spla.spsolve(sp.csc_matrix(A), b.numpy()))
    assert float(dcdm_loss(At, exact, b)) < 1e-20
    assert float(dcdm_loss(At, 0.5 * exact, b)) < 1e-20
    torch.testing.assert_close(dcdm_loss(At, torch.zeros_like(q), b, reduction="none"),
                               torch.ones(4, dtype=b.dtype))


def test_the_loss_with_one_matrix_per_column_matches_column_by_column():
    grid = Grid((8, 8))
    rng = np.random.default_rng(5)
    matrices = [fd.diffusion(grid, np.exp(rng.standard_normal(grid.shape))).A for _ in range(3)]
    n = matrices[0].shape[0]
    q = torch.as_tensor(_rhs(n, 6, columns=3), dtype=torch.float32)
    b = torch.as_tensor(_rhs(n, 7, columns=3), dtype=torch.float32)
    batched = dcdm_loss(block_diagonal(matrices), q, b, reduction="none")
    for j, A in enumerate(matrices):
        single = dcdm_loss(torch.as_tensor(A.toarray(), dtype=torch.float32), q[:, j:j + 1],
                           b[:, j:j + 1])
        torch.testing.assert_close(batched[j], single, rtol=1e-5, atol=1e-6)


def test_ritz_right_hand_sides_are_normalised_and_lean_to_the_low_end(poisson):
    A = poisson.A
    values, vectors = lanczos_ritz(A, 60, np.random.default_rng(0))
    assert np.all(np.diff(values) >= 0)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(values.size), atol=1e-8)
    rhs = ritz_right_hand_sides(values, vectors, 50, np.random.default_rng(1))
    np.testing.assert_allclose(np.linalg.norm(rhs, axis=0), 1.0)
    # Rayleigh quotients well below those of unweighted combinations of the same vectors
    plain = ritz_right_hand_sides(values, vectors, 50, np.random.default_rng(1), low_weight=1.0)

    def rayleigh(B):
        return np.mean(np.sum(B * (A @ B), axis=0))

    assert rayleigh(rhs) < 0.7 * rayleigh(plain)


# ------------------------------------------------------------------- training and solving
def test_a_briefly_trained_network_cuts_dcdm_iterations_well_below_cg(poisson, trained):
    M = trained.preconditioner()
    assert M.linear is False and trained.history[-1]["loss"] < trained.history[0]["loss"]
    for seed in (10, 11):
        b = _rhs(poisson.n_free, seed)
        cg = solve(poisson.A, b, method="cg")
        dcdm = solve(poisson.A, b, method="dcdm", M=M, maxiter=200)
        assert cg.converged and dcdm.converged
        assert dcdm.iterations <= 0.7 * cg.iterations, (dcdm.iterations, cg.iterations)
        assert np.linalg.norm(b - poisson.A @ dcdm.x) <= 1e-8 * np.linalg.norm(b)


def test_a_loaded_preconditioner_gives_the_same_iterations_as_the_one_in_memory(poisson, trained):
    b = _rhs(poisson.n_free, 12)
    in_memory = solve(poisson.A, b, method="dcdm", M=trained.preconditioner())
    loaded = solve(poisson.A, b, method="dcdm", M=load_preconditioner(trained.run_dir))
    assert in_memory.converged and loaded.iterations == in_memory.iterations
    np.testing.assert_array_equal(loaded.x, in_memory.x)
    metrics = json.loads((trained.run_dir / "metrics.json").read_text())
    assert len(metrics["epochs"]) == TINY["epochs"] and metrics["finished"]


@pytest.mark.parametrize("backend, methods", [
    ("numpy", ("dcdm", "fcg", "fgmres")),
    ("torch", ("dcdm", "fcg", "fgmres")),
    ("petsc", ("dcdm", "fcg", "fgmres")),  # dcdm: the suite's python KSP; fcg: PETSc's own
])
def test_every_backend_solves_with_the_learned_preconditioner(poisson, trained, backend, methods):
    if backend == "petsc":
        pytest.importorskip("petsc4py")
    M = trained.preconditioner()
    b = _rhs(poisson.n_free, 13)
    reference = solve(poisson.A, b, method="cg").iterations
    for method in methods:
        result = solve(poisson.A, b, method=method, M=M, backend=backend, maxiter=200)
        assert result.converged, (backend, method, result.reason)
        assert result.iterations <= 0.7 * reference, (backend, method, result.iterations)
        x = np.asarray(result.x)
        assert np.linalg.norm(b - poisson.A @ x) <= 1e-7 * np.linalg.norm(b)


def test_petsc_dcdm_with_the_network_as_python_pc_runs_the_numpy_iteration(poisson, trained):
    pytest.importorskip("petsc4py")
    M = trained.preconditioner()
    b = _rhs(poisson.n_free, 14)
    numpy = solve(poisson.A, b, method="dcdm", M=M)
    petsc = solve(poisson.A, b, method="dcdm", M=M, backend="petsc")
    assert numpy.converged and petsc.converged
    assert petsc.iterations == numpy.iterations
    np.testing.assert_allclose(petsc.x, numpy.x, rtol=0, atol=1e-10 * np.abs(numpy.x).max())


def test_the_torch_backend_applies_it_to_whole_blocks_on_the_device(poisson, trained):
    M = trained.preconditioner()
    B = _rhs(poisson.n_free, 14, columns=4)
    seen = []

    class Spy:
        linear = False

        def apply(self, R):
            seen.append((type(R).__name__, tuple(R.shape), R.dtype))
            return M.apply(R)

    result = solve(poisson.A, B, method="dcdm", M=Spy(), backend="torch", maxiter=200)
    assert result.converged and seen[0] == ("Tensor", (poisson.n_free, 4), torch.float64)
    # one batched application equals the columns applied one by one, in float64 out
    R = torch.as_tensor(B)
    Z = M.apply(R)
    assert Z.dtype == torch.float64 and Z.shape == R.shape
    columns = np.stack([M.apply(B[:, j]) for j in range(4)], axis=1)
    np.testing.assert_allclose(Z.numpy(), columns, rtol=1e-6, atol=1e-6 * np.abs(columns).max())
    # homogeneous: the input is normalised and the output rescaled
    np.testing.assert_allclose(M.apply(1e6 * B[:, 0]), 1e6 * M.apply(B[:, 0]), rtol=1e-5)
    assert np.all(M.apply(np.zeros(poisson.n_free)) == 0)


def test_resuming_a_run_continues_it_exactly(poisson, tmp_path):
    settings = dict(TINY, model={"width": 4, "blocks": [1, 1, 1]}, rhs_per_matrix=20,
                    ritz_steps=40)
    straight = train_preconditioner(poisson.A, GRID, **dict(settings, epochs=3))
    train_preconditioner(poisson.A, GRID, out_dir=tmp_path, **dict(settings, epochs=2))
    resumed = train_preconditioner(poisson.A, GRID, out_dir=tmp_path, resume=True,
                                   **dict(settings, epochs=3))
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    with pytest.raises(ValueError, match="settings differ"):
        train_preconditioner(poisson.A, GRID, out_dir=tmp_path, resume=True,
                             **dict(settings, epochs=4, lr=1e-2))


def test_a_coefficient_conditioned_network_trains_on_several_systems(tmp_path):
    grid = Grid((8, 8))
    rng = np.random.default_rng(8)
    coefficients = [np.exp(rng.standard_normal(grid.shape)) for _ in range(3)]
    systems = [fd.diffusion(grid, a, source=1.0) for a in coefficients]
    run = train_preconditioner([s.A for s in systems], grid, coefficients=coefficients,
                               model={"width": 4}, epochs=1, rhs_per_matrix=8, ritz_steps=20,
                               progress=False, device="cpu", out_dir=tmp_path)
    assert run.model.conditioning_transform == "log" and run.model.in_channels == 2
    M = load_preconditioner(tmp_path, coefficient=coefficients[1])
    r = systems[1].b
    again = run.preconditioner(coefficient=coefficients[1])
    np.testing.assert_array_equal(M.apply(r), again.apply(r))
    assert not np.allclose(M.apply(r), run.preconditioner(coefficient=coefficients[0]).apply(r))
    result = solve(systems[1].A, r, method="dcdm", M=M, maxiter=20)
    assert result.converged or result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS


def test_the_3d_network_trains_and_preconditions_on_a_3d_grid():
    torch.manual_seed(0)
    net = DCDMNet(ndim=3, width=4, blocks=(1, 1, 1))
    assert net(torch.randn(2, 1, 4, 6, 8)).shape == (2, 1, 4, 6, 8)
    grid = Grid((8, 8, 8))
    system = fd.diffusion(grid, 1.0)
    run = train_preconditioner(system.A, grid, model={"width": 8}, epochs=5, rhs_per_matrix=60,
                               ritz_steps=120, lr=3e-3, progress=False, device="cpu")
    b = _rhs(system.n_free, 15)
    result = solve(system.A, b, method="dcdm", M=run.preconditioner(), maxiter=100)
    assert result.converged
    assert result.iterations < solve(system.A, b, method="cg").iterations


# -------------------------------------------------------------------------------- failures
def test_a_bad_network_ends_with_a_reason_not_a_hang(poisson):
    net = DCDMNet(width=4)
    with torch.no_grad():
        net.project.weight.zero_()
        net.project.bias.zero_()
    result = solve(poisson.A, poisson.b, method="dcdm", M=LearnedPreconditioner(net, GRID),
                   maxiter=50)
    assert not result.converged and result.reason is ConvergedReason.DIVERGED_BREAKDOWN
    M = LearnedPreconditioner(net, GRID)
    with torch.no_grad():  # poisoned after the checks: NaN from inside the solve
        net.project.bias.fill_(float("nan"))
    result = solve(poisson.A, poisson.b, method="dcdm", M=M, maxiter=50)
    assert not result.converged and result.reason is ConvergedReason.DIVERGED_NAN_OR_INF
    torch.manual_seed(0)
    untrained = LearnedPreconditioner(DCDMNet(width=4), GRID)
    result = solve(poisson.A, poisson.b, method="dcdm", M=untrained, maxiter=5, rtol=1e-14)
    assert not result.converged and result.iterations == 5
    assert result.reason is ConvergedReason.DIVERGED_MAX_ITERATIONS


def test_an_incompatible_model_is_a_clear_error_before_any_solve(trained):
    darcy_net = DCDMNet(width=4, conditioning_channels=1)
    with pytest.raises(ValueError, match="takes 2 input channels"):
        LearnedPreconditioner(darcy_net, GRID)
    with pytest.raises(ValueError, match="takes 1 input channels"):
        LearnedPreconditioner(DCDMNet(width=4), GRID, coefficient=np.ones(GRID.shape))
    with pytest.raises(ValueError, match=r"grid \(15, 15\) cannot be taken"):
        LearnedPreconditioner(DCDMNet(width=4), Grid((15, 15)))
    with pytest.raises(ValueError, match=r"grid \(15, 15\) cannot be taken"):
        load_preconditioner(trained.run_dir, grid=(15, 15))
    with pytest.raises(ValueError, match="coefficient: expected a field of shape"):
        LearnedPreconditioner(darcy_net, GRID, coefficient=np.ones((8, 8)))
    log_net = DCDMNet(width=4, conditioning_channels=1, conditioning_transform="log")
    with pytest.raises(ValueError, match="NaN or Inf"):
        LearnedPreconditioner(log_net, GRID, coefficient=-np.ones(GRID.shape))
    with pytest.raises(ValueError, match="one output channel"):
        LearnedPreconditioner(torch.nn.Conv2d(1, 2, 3, padding=1), GRID)
    with pytest.raises(ValueError, match="cannot run on input"):
        LearnedPreconditioner(torch.nn.Sequential(torch.nn.Conv2d(3, 1, 3, padding=1)), GRID)
    M = trained.preconditioner()
    with pytest.raises(ValueError, match="gather=True"):
        M.apply(np.ones(10))
