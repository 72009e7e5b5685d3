"""SPON's encoder, decoder, point evaluation and FE-norm losses against closed forms."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from pdesuite.discretization import FEFunction, LagrangeSpace, Mesh, l2_error, mass_matrix
from pdesuite.discretization.fe_evaluation import evaluate_on_grid, locate_points
from pdesuite.operators.spon import (
    Decoder,
    Encoder,
    FEH1Loss,
    FEL2Loss,
    point_cloud_matrix,
    quadrature_rule,
)

CASES = [("triangle", 1), ("triangle", 2), ("quadrilateral", 1), ("quadrilateral", 2)]


def quadratic(x):
    """In every P2 and Q2 space."""
    return 1.0 + x[:, 0] - 2 * x[:, 1] + 0.5 * x[:, 0] ** 2 + 3 * x[:, 0] * x[:, 1] - x[:, 1] ** 2


def linear(x):
    """In every P1 and Q1 space."""
    return 1.0 + x[:, 0] - 2 * x[:, 1]


def inside_l_shape(n, seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1, 1, (4 * n, 2))
    keep = ~((points[:, 0] > 0) & (points[:, 1] > 0))
    return points[keep][:n]


# ----------------------------------------------------------------------------- encoder ∘ decoder
@pytest.mark.parametrize("cell_type,degree", CASES)
def test_encode_then_decode_reproduces_functions_of_the_space(cell_type, degree):
    space = LagrangeSpace(Mesh.l_shape(3, cell_type), degree)
    exact = quadratic if degree == 2 else linear
    points = inside_l_shape(200, seed=1)
    for method in ("interpolation", "projection"):
        coefficients = Encoder(space, method).encode(exact)
        values = Decoder(space).evaluate(coefficients, points)
        np.testing.assert_allclose(values, exact(points), atol=1e-11)


@pytest.mark.parametrize("cell_type,degree", CASES)
def test_encoder_is_identity_on_fe_functions_of_its_space(cell_type, degree):
    space = LagrangeSpace(Mesh.l_shape(2, cell_type), degree)
    u = np.random.default_rng(2).standard_normal(space.ndofs)
    for method in ("interpolation", "projection"):
        np.testing.assert_allclose(Encoder(space, method).encode(FEFunction(space, u)), u,
                                   atol=1e-11)


@pytest.mark.parametrize("cell_type,degree", CASES)
def test_coarse_fe_function_encoded_on_refined_mesh_decodes_to_same_values(cell_type, degree):
    coarse = LagrangeSpace(Mesh.l_shape(2, cell_type), degree)
    fine = LagrangeSpace(coarse.mesh.refine(), degree)
    u = FEFunction(coarse, np.random.default_rng(3).standard_normal(coarse.ndofs))
    points = inside_l_shape(150, seed=4)
    for method in ("interpolation", "projection"):
        c = Encoder(fine, method).encode(u)
        np.testing.assert_allclose(Decoder(fine).evaluate(c, points), u(points), atol=1e-11)


def test_mixed_mass_matrix_of_a_space_with_itself_is_its_mass_matrix():
    space = LagrangeSpace(Mesh.l_shape(2, "quadrilateral"), 2)
    mixed = Encoder(space, "projection").matrix(space)
    assert abs(mixed - mass_matrix(space)).max() < 1e-14


def test_quadrature_rule_weights_sum_to_the_area_and_basis_is_a_partition_of_unity():
    space = LagrangeSpace(Mesh.rectangle_with_hole(4, cell_type="quadrilateral"), 2)
    points, weights, basis = quadrature_rule(space, 5)
    assert weights.sum() == pytest.approx(space.mesh.area(), rel=1e-13)
    np.testing.assert_allclose(basis @ np.ones(space.ndofs), 1.0, atol=1e-13)
    assert points.shape == (weights.size, 2)


# ----------------------------------------------------------------------------- convergence
@pytest.mark.parametrize("cell_type,degree", CASES)
def test_l2_projection_converges_at_order_p_plus_one(cell_type, degree):
    def smooth(x):
        return np.sin(2 * x[:, 0]) * np.cos(3 * x[:, 1]) + x[:, 0] ** 3

    mesh = Mesh.l_shape(2, cell_type)
    errors = []
    for _ in range(4):  # three refinements
        space = LagrangeSpace(mesh, degree)
        errors.append(l2_error(space, Encoder(space, "projection").encode(smooth), smooth))
        mesh = mesh.refine()
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert rates[-1] == pytest.approx(degree + 1, abs=0.2), rates
    assert np.all(rates > degree + 0.5), rates


# ----------------------------------------------------------------------------- point clouds
def test_point_cloud_interpolation_is_exact_for_linear_functions_and_takes_nearest_outside():
    rng = np.random.default_rng(5)
    cloud = rng.uniform(0, 1, (60, 2))
    targets = np.concatenate([rng.uniform(0.3, 0.7, (40, 2)), cloud[:5], [[5.0, 5.0]]])
    matrix = point_cloud_matrix(cloud, targets)
    linear = 2.0 - cloud[:, 0] + 4 * cloud[:, 1]
    values = matrix @ linear
    inside = targets[:45]
    np.testing.assert_allclose(values[:45], 2.0 - inside[:, 0] + 4 * inside[:, 1], atol=1e-12)
    nearest = np.argmin(np.linalg.norm(cloud - [5.0, 5.0], axis=1))
    assert values[-1] == linear[nearest]


def test_encoder_from_point_values_at_the_dofs_is_the_identity():
    space = LagrangeSpace(Mesh.l_shape(2), 2)
    u = np.random.default_rng(6).standard_normal(space.ndofs)
    encoder = Encoder(space, source=space.dof_coordinates)
    np.testing.assert_array_equal(encoder.encode(u), u)


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("method", ["interpolation", "projection"])
def test_torch_encoder_matches_numpy_and_its_gradient_matches_finite_differences(method):
    target = LagrangeSpace(Mesh.l_shape(1), 2)
    source = LagrangeSpace(Mesh.l_shape(1).refine(), 1)
    encoder = Encoder(target, method, source=source)
    rng = np.random.default_rng(7)
    values = torch.tensor(rng.standard_normal((2, source.ndofs)), requires_grad=True)
    out = encoder(values)
    expected = encoder.encode(values.detach().numpy().T).T
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-12)
    assert torch.autograd.gradcheck(encoder, (values,), eps=1e-6, atol=1e-8)


def test_torch_encoder_from_point_cloud_has_finite_difference_gradients():
    space = LagrangeSpace(Mesh.l_shape(1, "quadrilateral"), 1)
    cloud = inside_l_shape(30, seed=8)
    encoder = Encoder(space, "projection", source=cloud)
    values = torch.tensor(np.random.default_rng(9).standard_normal(30), requires_grad=True)
    assert torch.autograd.gradcheck(encoder, (values,), eps=1e-6, atol=1e-8)


def test_torch_decoder_values_and_gradient():
    space = LagrangeSpace(Mesh.l_shape(2), 2)
    points = inside_l_shape(40, seed=10)
    decoder = Decoder(space, points)
    coefficients = torch.as_tensor(space.interpolate(quadratic))[None, None]  # [1, 1, ndofs]
    values = decoder(coefficients)[0, 0].numpy()
    np.testing.assert_allclose(values, quadratic(points), atol=1e-12)
    trial = torch.tensor(np.random.default_rng(11).standard_normal((2, space.ndofs)),
                         requires_grad=True)
    assert torch.autograd.gradcheck(decoder, (trial,), eps=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- outside points
def test_points_outside_are_located_as_outside_and_nan_on_grid():
    mesh = Mesh.l_shape(2)
    cells, ref = locate_points(mesh, np.array([[0.5, 0.5], [-0.5, 0.5], [2.0, 0.0]]))
    assert cells[0] == -1 and cells[2] == -1 and cells[1] >= 0
    assert np.isnan(ref[0]).all() and np.isfinite(ref[1]).all()
    expected_cells, _ = mesh.locate(np.array([[-0.5, 0.5]]))
    assert cells[1] == expected_cells[0]

    space = LagrangeSpace(mesh, 2)
    x, y, values = evaluate_on_grid(space, space.interpolate(quadratic), resolution=(21, 11))
    xx, yy = np.meshgrid(x, y, indexing="ij")
    notch = (xx > 1e-9) & (yy > 1e-9)
    assert np.isnan(values[notch]).all()
    grid_points = np.stack([xx[~notch], yy[~notch]], axis=1)
    np.testing.assert_allclose(values[~notch], quadratic(grid_points), atol=1e-12)


def test_decoder_refuses_points_outside_unless_asked_for_nan():
    space = LagrangeSpace(Mesh.l_shape(1), 1)
    with pytest.raises(ValueError, match="points"):
        Decoder(space, np.array([[0.5, 0.5]]))
    decoder = Decoder(space, np.array([[0.5, 0.5], [-0.5, -0.5]]), outside="nan")
    out = decoder(torch.ones(space.ndofs, dtype=torch.float64))
    assert torch.isnan(out[0]) and out[1].item() == pytest.approx(1.0, abs=1e-14)


def test_encoder_rejects_bad_input():
    space = LagrangeSpace(Mesh.l_shape(1), 1)
    with pytest.raises(ValueError, match="method"):
        Encoder(space, "nearest")
    with pytest.raises(ValueError, match="f:"):
        Encoder(space).encode(np.ones(space.ndofs))
    with pytest.raises(TypeError, match="space"):
        Encoder(Mesh.l_shape(1))


# ----------------------------------------------------------------------------- losses
@pytest.mark.parametrize("cell_type", ["triangle", "quadrilateral"])
def test_fe_losses_equal_the_analytic_norms_of_xy_on_the_l_shape(cell_type):
    # ∫_L (xy)² = 4/9 - 1/9 = 1/3 and ∫_L |∇(xy)|² = ∫_L x² + y² = 1 + 1 = 2 (the L-shape is
    # [-1, 1]² minus (0, 1]²).
    space = LagrangeSpace(Mesh.l_shape(2, cell_type), 2)
    u = torch.as_tensor(space.interpolate(lambda x: x[:, 0] * x[:, 1]))[None, None]
    zero = torch.zeros_like(u)
    l2 = FEL2Loss(space, relative=False)(u, zero).item()
    h1 = FEH1Loss(space, relative=False)(u, zero).item()
    assert l2 == pytest.approx(np.sqrt(1 / 3), rel=1e-13)
    assert h1 == pytest.approx(np.sqrt(7 / 3), rel=1e-13)
    assert FEL2Loss(space)(3 * u, u).item() == pytest.approx(2.0, rel=1e-13)


def test_fe_l2_loss_reduces_per_sample_and_has_finite_difference_gradients():
    space = LagrangeSpace(Mesh.l_shape(1), 1)
    rng = np.random.default_rng(12)
    target = torch.as_tensor(rng.standard_normal((3, 2, space.ndofs)))
    pred = torch.tensor(rng.standard_normal((3, 2, space.ndofs)), requires_grad=True)
    per_sample = FEL2Loss(space, reduction="none")(pred, target)
    mass = mass_matrix(space)
    for b in range(3):
        e, t = (pred[b] - target[b]).detach().numpy(), target[b].numpy()
        expected = np.sqrt(sum(e[c] @ mass @ e[c] for c in range(2)) /
                           sum(t[c] @ mass @ t[c] for c in range(2)))
        assert per_sample[b].item() == pytest.approx(expected, rel=1e-12)
    assert torch.autograd.gradcheck(lambda p: FEH1Loss(space)(p, target), (pred,))
    assert isinstance(FEL2Loss(space).gram, torch.Tensor) and FEL2Loss(space).gram.is_sparse
    assert sp.issparse(mass)
