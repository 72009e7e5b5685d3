"""SPON and SPON-multigrid: the DoF graph, exact Dirichlet DoFs, mesh transfer, training."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from pdesuite.discretization import LagrangeSpace, Mesh, fe_prolongation, poisson_system
from pdesuite.discretization import stiffness_matrix
from pdesuite.operators import Trainer
from pdesuite.operators.spon import SPON, FEL2Loss, SPONMultigrid, dof_graph, nested_spaces


def boundary_function(x):
    return np.sin(3 * x[:, 0]) + x[:, 1] ** 2


# ----------------------------------------------------------------------------- graph
def test_graph_edges_are_the_off_diagonal_stiffness_pattern():
    space = LagrangeSpace(Mesh.l_shape(2, "quadrilateral"), 2)
    graph = dof_graph(space)
    stiffness = stiffness_matrix(space).tocoo()
    off = stiffness.row != stiffness.col
    expected = set(zip(stiffness.row[off].tolist(), stiffness.col[off].tolist()))
    edges = set(zip(graph.receivers.tolist(), graph.senders.tolist()))
    assert edges == expected and len(edges) == graph.senders.numel()
    assert graph.edge_features.shape == (len(edges), 4)


def test_edge_features_do_not_change_under_uniform_refinement_of_a_structured_mesh():
    # Every square of Mesh.rectangle is split the same way, so the refined mesh has the same
    # kinds of edges: the scale-free features take the same set of values.
    def feature_set(mesh):
        rows = dof_graph(LagrangeSpace(mesh, 1)).edge_features.numpy()
        return {tuple(r) for r in np.round(rows, 10)}

    assert feature_set(Mesh.rectangle(3, 3)) == feature_set(Mesh.rectangle(3, 3).refine())


# ----------------------------------------------------------------------------- exact Dirichlet
@pytest.mark.parametrize("cell_type,degree", [("triangle", 1), ("quadrilateral", 2)])
def test_dirichlet_dofs_equal_the_data_for_random_weights(cell_type, degree):
    space = LagrangeSpace(Mesh.l_shape(2, cell_type), degree)
    dofs = space.boundary_dofs()
    data = torch.as_tensor(boundary_function(space.dof_coordinates[dofs]))
    for seed in range(3):
        torch.manual_seed(seed)
        model = SPON(space, 2, 1, width=8, layers=2, boundary_data=boundary_function).double()
        for p in model.parameters():
            p.data.mul_(10.0)  # far from any trained state
        x = torch.randn(4, 2, space.ndofs, dtype=torch.float64)
        out = model(x)
        assert torch.all(out[:, 0, dofs] == data)
        interior = np.setdiff1d(np.arange(space.ndofs), dofs)
        assert torch.all(out[:, 0, interior] != 0)
        per_sample = torch.randn(4, 1, space.ndofs, dtype=torch.float64)
        out = model(x, boundary_values=per_sample)
        assert torch.equal(out[:, :, dofs], per_sample[:, :, dofs])


def test_only_the_tagged_facets_are_dirichlet():
    space = LagrangeSpace(Mesh.l_shape(2), 1)
    model = SPON(space, 1, 1, width=8, layers=1, dirichlet="outer", boundary_data=5.0)
    out = model(torch.randn(2, 1, space.ndofs))
    outer, reentrant = space.boundary_dofs("outer"), space.boundary_dofs("reentrant")
    only_reentrant = np.setdiff1d(reentrant, outer)
    assert torch.all(out[:, 0, outer] == 5.0)
    assert torch.all(out[:, 0, only_reentrant] != 5.0)


# ----------------------------------------------------------------------------- mesh transfer
def test_a_model_built_on_one_mesh_runs_on_a_refined_mesh_of_the_family():
    torch.manual_seed(0)
    coarse = LagrangeSpace(Mesh.l_shape(2), 2)
    fine = LagrangeSpace(coarse.mesh.refine(), 2)
    model = SPON(coarse, 1, 1, width=8, layers=2).double()
    rebuilt = SPON(fine, 1, 1, width=8, layers=2).double()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.as_tensor(fine.interpolate(lambda p: np.cos(p[:, 0])))[None, None]
    moved = model.set_space(fine)(x)
    assert moved.shape == (1, 1, fine.ndofs)
    # The models were built in float32: their graph features agree to float32 round-off.
    torch.testing.assert_close(moved, rebuilt(x), rtol=1e-6, atol=1e-9)
    assert torch.all(moved[0, 0, fine.boundary_dofs()] == 0)


def test_a_mesh_of_another_cell_type_or_degree_is_a_clear_error():
    model = SPON(LagrangeSpace(Mesh.l_shape(2), 1), 1, 1, width=4, layers=1)
    with pytest.raises(ValueError, match="quadrilateral cells, but this model was built for "
                                         "triangle"):
        model.set_space(LagrangeSpace(Mesh.l_shape(2, "quadrilateral"), 1))
    with pytest.raises(ValueError, match="degree 2"):
        model.set_space(LagrangeSpace(Mesh.l_shape(2), 2))
    with pytest.raises(ValueError, match="x: expected"):
        model(torch.zeros(1, 1, 7))


def test_config_round_trip_rebuilds_the_same_architecture():
    space = LagrangeSpace(Mesh.l_shape(1), 1)
    model = SPON(space, 2, 3, width=8, layers=2)
    again = SPON.from_config(model.to_config(), space)
    assert again.to_config() == model.to_config()
    assert again.parameter_count() == model.parameter_count()


# ----------------------------------------------------------------------------- training
def poisson_samples(space, n, seed):
    rng = np.random.default_rng(seed)
    inputs, outputs = [], []
    for _ in range(n):
        a, b, c = rng.uniform(1, 3), rng.uniform(1, 3), rng.uniform(0, 2 * np.pi)

        def source(x, a=a, b=b, c=c):
            return 10 * np.sin(a * x[:, 0] + c) * np.cos(b * x[:, 1])

        system = poisson_system(space, source=source)
        inputs.append(space.interpolate(source))
        outputs.append(system.expand(spla.spsolve(system.A.tocsc(), system.b)))
    return torch.as_tensor(np.array(inputs))[:, None], torch.as_tensor(np.array(outputs))[:, None]


def test_small_spon_overfits_poisson_samples_on_the_l_shape():
    torch.set_num_threads(1)
    space = LagrangeSpace(Mesh.l_shape(4), 1)
    x, y = poisson_samples(space, 4, seed=0)
    torch.manual_seed(0)
    model = SPON(space, 1, 1, width=16, layers=3).double()
    loss = FEL2Loss(space)
    with torch.no_grad():
        untrained = loss(model(x), y).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        optimizer.zero_grad()
        value = loss(model(x), y)
        value.backward()
        optimizer.step()
    with torch.no_grad():
        prediction = model(x)
    trained = loss(prediction, y).item()
    assert untrained > 0.5 and trained < 0.1 and trained < 0.1 * untrained
    assert torch.all(prediction[:, 0, space.boundary_dofs()] == 0)


def test_the_trainer_fits_spon_with_the_fe_loss():
    torch.set_num_threads(1)
    space = LagrangeSpace(Mesh.l_shape(3), 1)
    x, y = poisson_samples(space, 4, seed=1)
    torch.manual_seed(0)
    model = SPON(space, 1, 1, width=8, layers=2)
    trainer = Trainer(model, (x.float(), y.float()), None, epochs=15, batch_size=2, lr=3e-3,
                      loss=FEL2Loss(space), normalize_outputs=False, progress=False,
                      verbose=False).fit()
    losses = [record["train_loss"] for record in trainer.history]
    assert losses[-1] < 0.8 * losses[0]
    with torch.no_grad():
        out = model(trainer.input_normalizer.encode(x.float()))
    assert torch.all(out[:, 0, space.boundary_dofs()] == 0)


# ----------------------------------------------------------------------------- multigrid
@pytest.fixture
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def test_multigrid_v_cycle_runs_with_exact_boundary_and_fe_transfers(float64_default):
    torch.manual_seed(0)
    spaces = nested_spaces(Mesh.l_shape(1), 1, 3)
    model = SPONMultigrid(spaces, 1, 1, width=8, boundary_data=boundary_function)
    x = torch.randn(2, 1, spaces[-1].ndofs, dtype=torch.float64)
    out = model(x)
    dofs = spaces[-1].boundary_dofs()
    assert out.shape == (2, 1, spaces[-1].ndofs)
    assert torch.all(out[:, 0, dofs] == torch.as_tensor(
        boundary_function(spaces[-1].dof_coordinates[dofs])))
    for level in range(2):
        expected = fe_prolongation(spaces[level], spaces[level + 1]).toarray()
        np.testing.assert_array_equal(model.prolongation(level).to_dense().numpy(), expected)
        restriction = model.restriction(level).to_dense().numpy()
        np.testing.assert_allclose(restriction.sum(axis=1), 1.0, rtol=1e-14)
        np.testing.assert_allclose(restriction * (expected.sum(axis=0)[:, None]), expected.T,
                                   rtol=1e-14, atol=1e-15)
    loss = FEL2Loss(spaces[-1])(out, torch.zeros_like(out) + 1.0)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_multigrid_runs_on_the_hierarchy_of_a_refined_mesh_and_checks_levels():
    torch.manual_seed(0)
    model = SPONMultigrid(nested_spaces(Mesh.l_shape(1, "quadrilateral"), 2, 2), 1, 1, width=4)
    finer = nested_spaces(Mesh.l_shape(2, "quadrilateral"), 2, 2)
    out = model.set_spaces(finer)(torch.randn(1, 1, finer[-1].ndofs))
    assert out.shape == (1, 1, finer[-1].ndofs)
    with pytest.raises(ValueError, match="2 levels"):
        model.set_spaces(nested_spaces(Mesh.l_shape(1, "quadrilateral"), 2, 3))
    with pytest.raises(ValueError, match="triangle cells"):
        model.set_spaces(nested_spaces(Mesh.l_shape(1), 2, 2))
