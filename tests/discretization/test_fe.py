"""Tests of pdesuite.discretization.fe: DoFs, assembly, boundary conditions, convergence,
transfer."""

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse.linalg as spla

from pdesuite.discretization.boundary import Dirichlet, Neumann
from pdesuite.discretization.fe import (
    FEFunction,
    LagrangeSpace,
    advection_matrix,
    helmholtz_matrix,
    integrate,
    l2_error,
    load_vector,
    mass_matrix,
    neumann_load,
    stiffness_matrix,
)
from pdesuite.discretization.fe_system import assemble_system, poisson_system
from pdesuite.discretization.transfer import fe_prolongation
from pdesuite.discretization.mesh import Mesh

CELL_TYPES = ["triangle", "quadrilateral"]
SPACES = [(c, p) for c in CELL_TYPES for p in (1, 2)]


def _solve(system):
    return system.expand(spla.spsolve(system.A.tocsc(), system.b))


# -------------------------------------------------------------------------- hand-computed cases
def test_p1_stiffness_two_triangles_by_hand():
    # Vertices 0:(0,0) 1:(0,1) 2:(1,0) 3:(1,1); triangles (0,2,3) and (0,3,1), right angles at 2
    # and 1. A right isosceles triangle with unit legs has the local matrix
    # 1/2 [[1,-1,0],[-1,2,-1],[0,-1,1]] in the order (leg end, right-angle vertex, leg end).
    mesh = Mesh.rectangle(1, 1)
    np.testing.assert_allclose(mesh.points, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(mesh.cells, [[0, 2, 3], [0, 3, 1]])
    expected = np.array(
        [
            [1.0, -0.5, -0.5, 0.0],
            [-0.5, 1.0, 0.0, -0.5],
            [-0.5, 0.0, 1.0, -0.5],
            [0.0, -0.5, -0.5, 1.0],
        ]
    )
    stiffness = stiffness_matrix(LagrangeSpace(mesh, 1))
    np.testing.assert_allclose(stiffness.toarray(), expected, atol=1e-15)
    assert stiffness.indices.dtype == np.int32


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_p1_mass_of_one_triangle(scale):
    points = scale * np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]) + np.array([2.0, -1.0])
    space = LagrangeSpace(Mesh(points, [[0, 1, 2]]), 1)
    area = 0.5 * scale**2
    expected = area / 12 * np.array([[2, 1, 1], [1, 2, 1], [1, 1, 2]])
    np.testing.assert_allclose(mass_matrix(space).toarray(), expected, rtol=1e-14)


def test_q1_stiffness_of_unit_square():
    # The Q1 stiffness of a unit square (tensor order) is 1/6 [[4,-1,-1,-2], ...] by symmetry.
    space = LagrangeSpace(Mesh.rectangle(1, 1, cell_type="quadrilateral"), 1)
    expected = np.array([[4, -1, -1, -2], [-1, 4, -2, -1], [-1, -2, 4, -1], [-2, -1, -1, 4]]) / 6
    np.testing.assert_allclose(stiffness_matrix(space).toarray(), expected, atol=1e-15)


# -------------------------------------------------------------------------- DoF layout
@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_p2_dof_layout(cell_type):
    mesh = Mesh.l_shape(2, cell_type)
    space = LagrangeSpace(mesh, 2)
    n, e = mesh.n_vertices, mesh.n_edges
    interior = mesh.n_cells if cell_type == "quadrilateral" else 0
    assert space.ndofs == n + e + interior
    np.testing.assert_array_equal(space.cell_dofs[:, : mesh.vertices_per_cell], mesh.cells)
    np.testing.assert_allclose(space.dof_coordinates[:n], mesh.points, atol=1e-15)
    np.testing.assert_allclose(space.dof_coordinates[n : n + e], mesh.facet_midpoints(), atol=1e-15)
    if interior:
        np.testing.assert_allclose(
            space.dof_coordinates[n + e :], mesh.cell_centroids(), atol=1e-15
        )
    boundary = space.boundary_dofs()
    assert len(boundary) == 2 * len(
        mesh.boundary_facets
    )  # closed boundary curve: vertices + midpoints
    np.testing.assert_array_equal(LagrangeSpace(mesh, 1).boundary_dofs(), mesh.boundary_vertices)


# -------------------------------------------------------------------------- matrix identities
@pytest.mark.parametrize("cell_type, degree", SPACES)
@pytest.mark.parametrize("domain", ["square", "l_shape", "hole"])
def test_mass_and_stiffness_identities(cell_type, degree, domain):
    mesh = {
        "square": lambda: Mesh.rectangle(5, 3, ((0.0, 2.0), (0.0, 1.0)), cell_type),
        "l_shape": lambda: Mesh.l_shape(3, cell_type),
        "hole": lambda: Mesh.rectangle_with_hole(5, cell_type=cell_type),
    }[domain]()
    area = {"square": 2.0, "l_shape": 3.0, "hole": mesh.area()}[domain]
    space = LagrangeSpace(mesh, degree)
    mass, stiffness = mass_matrix(space), stiffness_matrix(space)
    ones = np.ones(space.ndofs)
    x = space.interpolate(lambda p: p[:, 0])
    assert ones @ mass @ ones == pytest.approx(area, rel=1e-13)
    assert np.abs(stiffness @ ones).max() < 1e-12
    assert x @ stiffness @ x == pytest.approx(area, rel=1e-12)  # ∫ |∇x|² = |Ω|
    for matrix in (mass, stiffness):
        assert abs(matrix - matrix.T).max() < 1e-14
    # ∫ x dx through M: 1ᵀ M x.
    assert ones @ mass @ x == pytest.approx(integrate(space, lambda p: p[:, 0]), rel=1e-12)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_dirichlet_laplacian_is_spd_with_the_right_first_eigenvalue(cell_type):
    space = LagrangeSpace(Mesh.rectangle(6, 6, cell_type=cell_type), 2)
    system = assemble_system(space, stiffness_matrix(space), np.zeros(space.ndofs))
    mass = mass_matrix(space)[system.free][:, system.free]
    eigenvalues = scipy.linalg.eigh(
        system.A.toarray(), mass.toarray(), eigvals_only=True, subset_by_index=[0, 0]
    )
    # Conforming Galerkin eigenvalues approximate 2π² (unit square) from above, O(h^4) for P2.
    assert 2 * np.pi**2 < eigenvalues[0] < 2 * np.pi**2 * (1 + 1e-3)
    np.linalg.cholesky(system.A.toarray())


def test_coefficient_forms_agree():
    mesh = Mesh.rectangle(4, 3, cell_type="quadrilateral")
    space = LagrangeSpace(mesh, 2)
    p1 = LagrangeSpace(mesh, 1)
    def linear(p):
        return 1.0 + p[:, 0] + 0.5 * p[:, 1]
    from_callable = stiffness_matrix(space, linear)
    from_fe = stiffness_matrix(space, FEFunction(p1, p1.interpolate(linear)))
    from_nodal = stiffness_matrix(space, space.interpolate(linear))
    for other in (from_fe, from_nodal):
        assert abs(from_callable - other).max() < 1e-13
    per_cell = stiffness_matrix(space, np.full(mesh.n_cells, 2.5))
    assert abs(per_cell - 2.5 * stiffness_matrix(space)).max() < 1e-13
    assert abs(mass_matrix(space, 3.0) - 3.0 * mass_matrix(space)).max() < 1e-14


def test_variable_coefficient_value():
    # ∫ a |∇x|² with a = 1 + y on the unit square is 3/2.
    space = LagrangeSpace(Mesh.rectangle(3, 3), 1)
    x = space.interpolate(lambda p: p[:, 0])
    assert x @ stiffness_matrix(space, lambda p: 1 + p[:, 1]) @ x == pytest.approx(1.5, rel=1e-13)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_helmholtz_matrix(cell_type):
    space = LagrangeSpace(Mesh.rectangle(4, 4, cell_type=cell_type), 2)
    stiffness, mass = stiffness_matrix(space), mass_matrix(space)
    assert abs(helmholtz_matrix(space, 3.0) - (stiffness - 9.0 * mass)).max() < 1e-12
    def wavenumber(p):
        return 1.0 + p[:, 0]
    expected = stiffness - mass_matrix(space, lambda p: wavenumber(p) ** 2)
    assert abs(helmholtz_matrix(space, wavenumber) - expected).max() < 1e-12
    p1 = LagrangeSpace(space.mesh, 1)
    as_field = helmholtz_matrix(space, FEFunction(p1, p1.interpolate(wavenumber)))
    assert abs(as_field - expected).max() < 1e-12


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_advection_matrix(cell_type):
    space = LagrangeSpace(Mesh.rectangle(4, 5, cell_type=cell_type), 2)
    velocity = np.array([2.0, -1.0])
    advection = advection_matrix(space, velocity)
    x = space.interpolate(lambda p: p[:, 0])
    assert np.ones(space.ndofs) @ advection @ x == pytest.approx(2.0, rel=1e-13)  # ∫ b·∇x = b_x |Ω|
    interior = np.setdiff1d(np.arange(space.ndofs), space.boundary_dofs())
    block = advection[interior][:, interior]
    assert abs(block + block.T).max() < 1e-13  # ∫ b·∇(uv) = 0 for u, v vanishing on ∂Ω
    from_callable = advection_matrix(space, lambda p: np.tile(velocity, (p.shape[0], 1)))
    assert abs(from_callable - advection).max() < 1e-13


@pytest.mark.parametrize("cell_type, degree", SPACES)
def test_load_and_neumann_vectors(cell_type, degree):
    space = LagrangeSpace(Mesh.rectangle(3, 4, cell_type=cell_type), degree)
    x = space.interpolate(lambda p: p[:, 0])
    y = space.interpolate(lambda p: p[:, 1])
    load = load_vector(space, lambda p: p[:, 1])
    assert load.sum() == pytest.approx(0.5)
    assert load @ x == pytest.approx(0.25)  # ∫ y·x
    assert neumann_load(space, 1.0).sum() == pytest.approx(4.0)  # perimeter
    right = neumann_load(space, lambda p: p[:, 0] + p[:, 1], "right")
    assert right @ y == pytest.approx(1.0 / 2 + 1.0 / 3)  # ∫_0^1 (1 + y) y dy
    per_facet = neumann_load(space, np.full(len(space.mesh.facet_tags["top"]), 2.0), "top")
    assert per_facet.sum() == pytest.approx(2.0)


def test_l2_error_values():
    space = LagrangeSpace(Mesh.rectangle(3, 3, cell_type="quadrilateral"), 1)
    assert l2_error(space, np.zeros(space.ndofs), lambda p: p[:, 0]) == pytest.approx(
        np.sqrt(1 / 3)
    )
    assert l2_error(space, np.ones(space.ndofs), lambda p: np.zeros(len(p))) == pytest.approx(1.0)


# -------------------------------------------------------------------------- boundary conditions
@pytest.mark.parametrize("cell_type", CELL_TYPES)
@pytest.mark.parametrize("domain", ["square", "l_shape"])
def test_p2_reproduces_a_quadratic_with_dirichlet_and_neumann(cell_type, domain):
    mesh = (
        Mesh.rectangle(3, 4, cell_type=cell_type)
        if domain == "square"
        else Mesh.l_shape(2, cell_type)
    )
    space = LagrangeSpace(mesh, 2)
    def exact(p):
        return p[:, 0] ** 2 + p[:, 1] ** 2 - p[:, 0] * p[:, 1] + p[:, 0]
    u = space.interpolate(exact)
    dirichlet_only = poisson_system(space, 1.0, -4.0, Dirichlet(exact))
    assert dirichlet_only.A.shape == (space.ndofs - len(space.boundary_dofs()),) * 2
    assert abs(dirichlet_only.A - dirichlet_only.A.T).max() < 1e-13
    np.testing.assert_allclose(dirichlet_only.lift[space.boundary_dofs()], u[space.boundary_dofs()])
    np.testing.assert_allclose(_solve(dirichlet_only), u, atol=1e-11)
    if domain == "square":
        # Flux ∂u/∂n on x = 1 is u_x = 2x - y + 1 = 3 - y; on y = 1 it is u_y = 2y - x = 2 - x.
        bc = {
            "right": Neumann(lambda p: 3 - p[:, 1]),
            "top": Neumann(lambda p: 2 - p[:, 0]),
            "left": Dirichlet(exact),
            "bottom": Dirichlet(exact),
        }
        mixed = poisson_system(space, 1.0, -4.0, bc)
        np.testing.assert_allclose(_solve(mixed), u, atol=1e-11)


def test_assemble_system_elimination():
    space = LagrangeSpace(Mesh.rectangle(3, 3), 1)
    matrix = stiffness_matrix(space)
    rhs = load_vector(space, 1.0)
    left = space.boundary_dofs("left")
    values = np.arange(1.0, 1.0 + len(left))
    bc = [("left", Dirichlet(values))] + [
        (side, Neumann(0.0)) for side in ("right", "bottom", "top")
    ]
    system = assemble_system(space, matrix, rhs, bc)
    np.testing.assert_array_equal(system.fixed, left)
    np.testing.assert_allclose(system.lift[left], values)
    free = system.free
    dense = matrix.toarray()
    np.testing.assert_allclose(system.A.toarray(), dense[np.ix_(free, free)])
    np.testing.assert_allclose(system.b, rhs[free] - dense[np.ix_(free, left)] @ values)
    # Left out facets get homogeneous Dirichlet; later entries win at shared DoFs.
    default = assemble_system(space, matrix, rhs, {"left": Dirichlet(5.0)})
    np.testing.assert_array_equal(default.fixed, space.boundary_dofs())
    np.testing.assert_allclose(default.lift[left], 5.0)
    assert np.count_nonzero(default.lift) == len(left)


# -------------------------------------------------------------------------- convergence
def _manufactured_square():
    def u(p):
        return np.sin(np.pi * p[:, 0]) * np.exp(p[:, 1]) + p[:, 0] ** 2

    def a(p):
        return 1.0 + p[:, 0] ** 2 + 0.5 * np.sin(p[:, 1])

    def f(p):
        x, y = p[:, 0], p[:, 1]
        ux = np.pi * np.cos(np.pi * x) * np.exp(y) + 2 * x
        uy = np.sin(np.pi * x) * np.exp(y)
        laplacian = -np.pi**2 * np.sin(np.pi * x) * np.exp(y) + 2 + uy
        return -(a(p) * laplacian + 2 * x * ux + 0.5 * np.cos(y) * uy)

    return u, a, f


def _manufactured_l_shape():
    def u(p):
        return np.exp(0.5 * p[:, 0]) * np.cos(0.5 * np.pi * p[:, 1]) + p[:, 0] * p[:, 1]

    def a(p):
        return 2.0 + np.sin(p[:, 0] + p[:, 1])

    def f(p):
        x, y = p[:, 0], p[:, 1]
        e, c, s = np.exp(0.5 * x), np.cos(0.5 * np.pi * y), np.sin(0.5 * np.pi * y)
        ux, uy = 0.5 * e * c + y, -0.5 * np.pi * e * s + x
        laplacian = 0.25 * e * c - 0.25 * np.pi**2 * e * c
        grad_a = np.cos(x + y)
        return -(a(p) * laplacian + grad_a * (ux + uy))

    return u, a, f


def _orders(errors):
    errors = np.asarray(errors)
    return np.log2(errors[:-1] / errors[1:])


@pytest.mark.parametrize("cell_type, degree", SPACES)
@pytest.mark.parametrize("domain", ["square", "l_shape"])
def test_manufactured_solution_convergence(cell_type, degree, domain):
    if domain == "square":
        u, a, f = _manufactured_square()
        meshes = [Mesh.rectangle(n, n, cell_type=cell_type) for n in (4, 8, 16, 32)]
    else:
        u, a, f = _manufactured_l_shape()
        meshes = [Mesh.l_shape(n, cell_type) for n in (2, 4, 8, 16)]
    errors = []
    for mesh in meshes:
        space = LagrangeSpace(mesh, degree)
        errors.append(l2_error(space, _solve(poisson_system(space, a, f, Dirichlet(u))), u))
    orders = _orders(errors)
    print(f"{domain} {cell_type} P{degree}: L2 errors {np.array(errors)}, observed orders {orders}")
    low, high = (1.8, 2.3) if degree == 1 else (2.7, 3.4)
    assert np.all((orders[-2:] > low) & (orders[-2:] < high)), orders


def test_mixed_boundary_convergence():
    u, a, f = _manufactured_square()

    def flux_right(p):  # a ∂u/∂n on x = 1
        x, y = p[:, 0], p[:, 1]
        return a(p) * (np.pi * np.cos(np.pi * x) * np.exp(y) + 2 * x)

    errors = []
    for n in (4, 8, 16):
        space = LagrangeSpace(Mesh.rectangle(n, n), 2)
        bc = [(space.mesh.facets(side), Dirichlet(u)) for side in ("left", "bottom", "top")]
        bc.append(("right", Neumann(flux_right)))
        errors.append(l2_error(space, _solve(poisson_system(space, a, f, bc)), u))
    orders = _orders(errors)
    print(f"mixed Dirichlet/Neumann P2: errors {errors}, orders {orders}")
    assert 2.7 < orders[-1] < 3.4


# -------------------------------------------------------------------------- evaluation and transfer
@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_p2_point_evaluation_is_exact_for_quadratics(cell_type):
    rng = np.random.default_rng(3)
    # Quadratics lie in P2 and, composed with a bilinear map, in Q2: exact on the curved ring too.
    mesh = Mesh.rectangle_with_hole(5, cell_type=cell_type)
    space = LagrangeSpace(mesh, 2)
    def quadratic(p):
        return 1 + 2 * p[:, 0] - p[:, 1] + 3 * p[:, 0] ** 2 - p[:, 0] * p[:, 1] + 0.5 * p[:, 1] ** 2
    candidates = rng.uniform(0, 1, size=(300, 2))
    points = candidates[np.linalg.norm(candidates - 0.5, axis=1) > 0.26]
    coefficients = space.interpolate(quadratic)
    np.testing.assert_allclose(space.evaluate(coefficients, points), quadratic(points), atol=1e-12)
    np.testing.assert_allclose(
        FEFunction(space, coefficients)(points), quadratic(points), atol=1e-12
    )
    both = space.evaluate(np.stack([coefficients, 2 * coefficients], axis=1), points)
    np.testing.assert_allclose(both[:, 1], 2 * quadratic(points), atol=1e-12)
    evaluation = space.evaluation_matrix(points)
    np.testing.assert_allclose(evaluation.sum(axis=1), 1.0, atol=1e-13)
    with pytest.raises(ValueError, match="points"):
        space.evaluate(coefficients, np.array([[0.5, 0.5]]))  # centre of the hole
    with pytest.raises(ValueError, match="points"):
        space.evaluate(coefficients, np.array([[0.2, 1.01]]))


@pytest.mark.parametrize("cell_type, degree", SPACES)
def test_prolongation_is_exact_on_nested_spaces(cell_type, degree):
    coarse_mesh = Mesh.l_shape(2, cell_type)
    coarse, fine = LagrangeSpace(coarse_mesh, degree), LagrangeSpace(coarse_mesh.refine(), degree)
    prolongation = fe_prolongation(coarse, fine)
    assert prolongation.shape == (fine.ndofs, coarse.ndofs)
    if degree == 1:
        def function(p):
            return 1 + 2 * p[:, 0] - 3 * p[:, 1]
    else:
        def function(p):
            return 1 + p[:, 0] - p[:, 1] + p[:, 0] ** 2 - 2 * p[:, 0] * p[:, 1] + p[:, 1] ** 2

    np.testing.assert_allclose(
        prolongation @ coarse.interpolate(function), fine.interpolate(function), atol=1e-13
    )
    np.testing.assert_allclose(prolongation.sum(axis=1), 1.0, atol=1e-14)
    # Nested spaces: the Galerkin product of the fine operators is the coarse operator.
    for assemble in (stiffness_matrix, mass_matrix):
        galerkin = prolongation.T @ assemble(fine) @ prolongation
        assert abs(galerkin - assemble(coarse)).max() < 1e-12


def test_prolongation_p1_to_p2_and_without_refinement_history():
    mesh = Mesh.rectangle(3, 2)
    p1, p2 = LagrangeSpace(mesh, 1), LagrangeSpace(mesh, 2)
    embedding = fe_prolongation(p1, p2)
    def linear(p):
        return 2 * p[:, 0] + p[:, 1]

    np.testing.assert_allclose(
        embedding @ p1.interpolate(linear), p2.interpolate(linear), atol=1e-14
    )
    # A fine mesh built independently (no parent_cells) goes through point location.
    fine = LagrangeSpace(Mesh.rectangle(6, 4), 1)
    np.testing.assert_allclose(
        fe_prolongation(p1, fine) @ p1.interpolate(linear), fine.interpolate(linear), atol=1e-14
    )


# -------------------------------------------------------------------------- bad input
def test_bad_input_raises():
    mesh = Mesh.rectangle(3, 3)
    space = LagrangeSpace(mesh, 1)
    with pytest.raises(ValueError, match="degree"):
        LagrangeSpace(mesh, 3)
    with pytest.raises(ValueError, match="degree"):
        LagrangeSpace(mesh, 0)
    with pytest.raises(ValueError, match="coefficient"):
        stiffness_matrix(space, lambda p: p[:, 0] - 0.5)
    with pytest.raises(ValueError, match="coefficient"):
        stiffness_matrix(space, 0.0)
    with pytest.raises(ValueError, match="coefficient"):
        stiffness_matrix(space, np.r_[np.ones(space.ndofs - 1), np.nan])
    with pytest.raises(ValueError, match="coefficient"):
        stiffness_matrix(space, -np.ones(mesh.n_cells))
    with pytest.raises(ValueError, match="coefficient"):
        stiffness_matrix(space, np.ones(7))
    with pytest.raises(ValueError, match="coefficient"):
        stiffness_matrix(space, lambda p: np.ones((len(p), 2)))
    with pytest.raises(ValueError, match="coefficient: ambiguous"):
        stiffness_matrix(
            LagrangeSpace(Mesh.rectangle(3, 2), 1), np.ones(12)
        )  # 12 DoFs and 12 cells
    with pytest.raises(ValueError, match="^f:"):
        load_vector(space, lambda p: np.full(len(p), np.inf))
    with pytest.raises(ValueError, match="facets"):
        neumann_load(space, 1.0, np.array([0, 10_000]))
    with pytest.raises(ValueError, match="facets"):
        neumann_load(
            space, 1.0, np.flatnonzero(np.bincount(mesh.cell_edges.ravel()) == 2)[:1]
        )  # interior edge
    with pytest.raises(ValueError, match="bc"):
        poisson_system(space, 1.0, 1.0, {"nowhere": Dirichlet()})
    with pytest.raises(TypeError, match="bc"):
        poisson_system(space, 1.0, 1.0, {"left": 3.0})
    with pytest.raises(ValueError, match="already"):
        poisson_system(space, 1.0, 1.0, [(None, Dirichlet()), ("left", Neumann(1.0))])
    with pytest.raises(ValueError, match="value"):
        poisson_system(space, 1.0, 1.0, {"left": Dirichlet(np.ones(2))})
    with pytest.raises(ValueError, match="coefficients"):
        space.evaluate(np.ones(3), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="matrix"):
        assemble_system(space, stiffness_matrix(LagrangeSpace(mesh, 2)), np.zeros(space.ndofs))
