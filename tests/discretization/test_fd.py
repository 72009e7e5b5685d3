"""Finite-difference assembly: manufactured solutions, hand-computed matrices, structure, input
checks."""

from __future__ import annotations


import numpy as np
import pytest
import scipy.sparse.linalg as spla

from pdesuite.discretization.boundary import Dirichlet, Neumann, Periodic
from pdesuite.discretization.fd import advection_diffusion, diffusion, free_dofs, helmholtz, mass
from pdesuite.discretization.grid import Grid

TWO_PI = 2.0 * np.pi


def solve_full(system) -> np.ndarray:
    """Solution on all nodes (Dirichlet values included)."""
    return system.expand(spla.spsolve(system.A.tocsc(), system.b))


def convergence(make_grid, build, exact, sizes):
    """Max and discrete L2 errors on each grid, and the observed orders between successive grids."""
    max_errors, l2_errors, spacings = [], [], []
    for size in sizes:
        grid = make_grid(size)
        error = solve_full(build(grid)) - exact(grid.points())
        max_errors.append(np.abs(error).max())
        l2_errors.append(np.sqrt(grid.cell_volume * np.sum(error**2)))
        spacings.append(max(grid.spacing))
    log_h = np.log(spacings)
    max_orders = np.diff(np.log(max_errors)) / np.diff(log_h)
    l2_orders = np.diff(np.log(l2_errors)) / np.diff(log_h)
    print(
        f"sizes {list(sizes)}  max errors {np.array(max_errors)}  orders max {max_orders} L2 "
        f"{l2_orders}"
    )
    return max_orders, l2_orders


def assert_order(orders, expected, tolerance=0.2):
    for order in orders:
        assert expected - tolerance <= order <= expected + tolerance, orders


# -------------------------------------------------------------------- manufactured solutions
def test_diffusion_2d_variable_coefficient_nonzero_dirichlet_is_second_order():
    # a = 1 + x² + y, u = sin(πx) e^y + x y
    def a(p):
        return 1.0 + p[:, 0] ** 2 + p[:, 1]

    def u(p):
        return np.sin(np.pi * p[:, 0]) * np.exp(p[:, 1]) + p[:, 0] * p[:, 1]

    def f(p):
        x, y = p[:, 0], p[:, 1]
        ux = np.pi * np.cos(np.pi * x) * np.exp(y) + y
        uy = np.sin(np.pi * x) * np.exp(y) + x
        lap = (1.0 - np.pi**2) * np.sin(np.pi * x) * np.exp(y)
        return -(2.0 * x * ux + 1.0 * uy + a(p) * lap)

    orders = convergence(
        lambda s: Grid((s, s)), lambda g: diffusion(g, a, f, Dirichlet(u)), u, (17, 33, 65)
    )
    for o in orders:
        assert_order(o, 2.0)


def test_diffusion_1d_exp_coefficient_is_second_order():
    # a = exp(x), u = sin(3x) + x² on [0, 2]
    def u(p):
        return np.sin(3 * p[:, 0]) + p[:, 0] ** 2

    def f(p):
        x = p[:, 0]
        ux = 3 * np.cos(3 * x) + 2 * x
        uxx = -9 * np.sin(3 * x) + 2
        return -np.exp(x) * (ux + uxx)

    orders = convergence(
        lambda s: Grid(s, (0.0, 2.0)),
        lambda g: diffusion(g, lambda p: np.exp(p[:, 0]), f, Dirichlet(u)),
        u,
        (17, 33, 65, 129),
    )
    for o in orders:
        assert_order(o, 2.0)


def test_diffusion_3d_variable_coefficient_is_second_order():
    def a(p):
        return np.exp(0.5 * p[:, 0] - p[:, 1] + p[:, 2])

    def u(p):
        return np.sin(p[:, 0] + 2 * p[:, 1]) * np.exp(p[:, 2])

    def f(p):
        c = np.cos(p[:, 0] + 2 * p[:, 1]) * np.exp(p[:, 2])
        s = u(p)
        grad_a_dot_grad_u = a(p) * (0.5 * c - 2 * c + s)
        return -(grad_a_dot_grad_u + a(p) * (-s - 4 * s + s))

    bounds = [(0.0, 1.0), (0.0, 0.5), (0.0, 1.0)]
    orders = convergence(
        lambda s: Grid((s, s, s), bounds), lambda g: diffusion(g, a, f, Dirichlet(u)), u, (9, 17)
    )
    for o in orders:
        assert_order(o, 2.0)


def test_helmholtz_variable_wavenumber_is_second_order():
    # -Δu - k²u = f, u = e^x sin(2y + 0.3), k = 1.5 + x y (k² well below the first eigenvalue 2π²)
    def u(p):
        return np.exp(p[:, 0]) * np.sin(2 * p[:, 1] + 0.3)

    def k(p):
        return 1.5 + p[:, 0] * p[:, 1]

    def f(p):
        return 3.0 * u(p) - k(p) ** 2 * u(p)

    orders = convergence(
        lambda s: Grid((s, s)), lambda g: helmholtz(g, k, f, Dirichlet(u)), u, (17, 33, 65)
    )
    for o in orders:
        assert_order(o, 2.0)


def test_helmholtz_1d_array_wavenumber_is_second_order():
    # u = cos(2x) on [0, 1], k = 1 + x given as node values: -u'' - k²u = (4 - k²) u
    def u(p):
        return np.cos(2 * p[:, 0])

    def build(g):
        k = 1.0 + g.coords[0]
        return helmholtz(g, k, (4.0 - k**2) * u(g.points()), Dirichlet(u))

    orders = convergence(lambda s: Grid(s), build, u, (17, 33, 65))
    for o in orders:
        assert_order(o, 2.0)


def test_mixed_dirichlet_neumann_variable_coefficient_is_second_order():
    # Neumann on x-, y-, y+ (a ∂u/∂n = g, outward normal), Dirichlet on x+.
    def a(p):
        return 1.0 + p[:, 0] ** 2 + p[:, 1]

    def u(p):
        return np.sin(np.pi * p[:, 0]) * np.exp(p[:, 1]) + p[:, 0] * p[:, 1]

    def ux(p):
        return np.pi * np.cos(np.pi * p[:, 0]) * np.exp(p[:, 1]) + p[:, 1]

    def uy(p):
        return np.sin(np.pi * p[:, 0]) * np.exp(p[:, 1]) + p[:, 0]

    def f(p):
        lap = (1.0 - np.pi**2) * np.sin(np.pi * p[:, 0]) * np.exp(p[:, 1])
        return -(2.0 * p[:, 0] * ux(p) + uy(p) + a(p) * lap)

    bc = {
        "x-": Neumann(lambda p: -a(p) * ux(p)),
        "x+": Dirichlet(u),
        "y-": Neumann(lambda p: -a(p) * uy(p)),
        "y+": Neumann(lambda p: a(p) * uy(p)),
    }
    orders = convergence(lambda s: Grid((s, s)), lambda g: diffusion(g, a, f, bc), u, (17, 33, 65))
    for o in orders:
        assert_order(o, 2.0)


def test_all_neumann_with_reaction_is_second_order():
    # -Δu + c u = f, c = 1 + x, Neumann on every side of [0, 2] x [0, 1]
    def u(p):
        return np.cos(p[:, 0]) * np.exp(p[:, 1])

    def c(p):
        return 1.0 + p[:, 0]

    bc = {
        "x-": Neumann(lambda p: np.sin(p[:, 0]) * np.exp(p[:, 1])),  # -u_x
        "x+": Neumann(lambda p: -np.sin(p[:, 0]) * np.exp(p[:, 1])),  # +u_x
        "y-": Neumann(lambda p: -u(p)),  # -u_y
        "y+": Neumann(u),  # +u_y
    }
    orders = convergence(
        lambda s: Grid((2 * s - 1, s), [(0, 2), (0, 1)]),
        lambda g: diffusion(g, 1.0, lambda p: c(p) * u(p), bc, reaction=c),
        u,
        (17, 33, 65),
    )
    for o in orders:
        assert_order(o, 2.0)


def test_periodic_1d_screened_poisson_is_second_order():
    # -u'' + u = f on a period of length 1, u = sin(2πx) + 0.5 cos(4πx)
    def u(p):
        return np.sin(TWO_PI * p[:, 0]) + 0.5 * np.cos(2 * TWO_PI * p[:, 0])

    def f(p):
        x = p[:, 0]
        return (TWO_PI**2 + 1) * np.sin(TWO_PI * x) + 0.5 * (4 * TWO_PI**2 + 1) * np.cos(
            2 * TWO_PI * x
        )

    orders = convergence(
        lambda s: Grid.periodic(s),
        lambda g: diffusion(g, 1.0, f, Periodic(), reaction=1.0),
        u,
        (16, 32, 64),
    )
    for o in orders:
        assert_order(o, 2.0)


def test_periodic_2d_variable_coefficient_is_second_order():
    # -∇·(a∇u) + u = f, a = 2 + sin(2πx), u = sin(2πx) cos(2πy), period 1 on both axes
    def u(p):
        return np.sin(TWO_PI * p[:, 0]) * np.cos(TWO_PI * p[:, 1])

    def f(p):
        a = 2 + np.sin(TWO_PI * p[:, 0])
        ax = TWO_PI * np.cos(TWO_PI * p[:, 0])
        ux = TWO_PI * np.cos(TWO_PI * p[:, 0]) * np.cos(TWO_PI * p[:, 1])
        return -(ax * ux - 2 * TWO_PI**2 * a * u(p)) + u(p)

    def a(p):

        return 2 + np.sin(TWO_PI * p[:, 0])

    orders = convergence(
        lambda s: Grid.periodic((s, s)),
        lambda g: diffusion(g, a, f, Periodic(), reaction=1.0),
        u,
        (16, 32, 64),
    )
    for o in orders:
        assert_order(o, 2.0)


def test_periodic_x_dirichlet_y_is_second_order():
    # Nonsingular without a reaction term: -Δu = f, periodic in x (period 2), Dirichlet in y.
    def u(p):
        return np.sin(np.pi * p[:, 0]) * np.exp(p[:, 1]) + p[:, 1] ** 2

    def f(p):
        return (np.pi**2 - 1) * np.sin(np.pi * p[:, 0]) * np.exp(p[:, 1]) - 2.0

    def make(s):
        periodic = Grid.periodic((s - 1, s), [(0, 2), (0, 1)])
        # y is not periodic: put it back onto the closed node grid [0, 1]
        return Grid((s - 1, s), [periodic.bounds[0], (0, 1)])

    bc = {"x-": Periodic(), "x+": Periodic(), "y-": Dirichlet(u), "y+": Dirichlet(u)}
    orders = convergence(make, lambda g: diffusion(g, 1.0, f, bc), u, (17, 33, 65))
    for o in orders:
        assert_order(o, 2.0)


def test_advection_diffusion_upwind_is_first_order():
    eps, v = 0.1, np.array([1.0, -0.5])

    def u(p):
        return np.sin(np.pi * p[:, 0]) * np.exp(p[:, 1]) + p[:, 0]

    def f(p):
        s, c = np.sin(np.pi * p[:, 0]) * np.exp(p[:, 1]), np.cos(np.pi * p[:, 0]) * np.exp(p[:, 1])
        return -eps * (1 - np.pi**2) * s + v[0] * (np.pi * c + 1) + v[1] * s

    orders = convergence(
        lambda s: Grid((s, s)),
        lambda g: advection_diffusion(g, v, eps, f, Dirichlet(u)),
        u,
        (17, 33, 65),
    )
    for o in orders:
        assert_order(o, 1.0)


def test_advection_diffusion_variable_velocity_and_neumann_is_first_order():
    # rotating velocity v = (y - 0.5, 0.5 - x) given at the nodes; u = e^x cos y is harmonic, so
    # f = v·∇u. Neumann (diffusive flux ε ∂u/∂n) on x- and y+, where v_y changes sign along y+.
    eps = 0.5

    def u(p):
        return np.exp(p[:, 0]) * np.cos(p[:, 1])

    def f(p):
        vx, vy = p[:, 1] - 0.5, 0.5 - p[:, 0]
        return vx * u(p) - vy * np.exp(p[:, 0]) * np.sin(p[:, 1])

    def build(g):
        mesh = g.mesh()
        velocity = np.stack([mesh[1] - 0.5, 0.5 - mesh[0]])
        bc = {
            "x-": Neumann(lambda p: -eps * u(p)),
            "y+": Neumann(lambda p: -eps * np.exp(p[:, 0]) * np.sin(p[:, 1])),
            "x+": Dirichlet(u),
            "y-": Dirichlet(u),
        }
        return advection_diffusion(g, velocity, eps, f, bc)

    orders = convergence(lambda s: Grid((s, s)), build, u, (17, 33, 65))
    for o in orders:
        assert_order(o, 1.0)


# -------------------------------------------------------------------- exact and hand-computed cases
def test_laplacian_1d_five_nodes_matches_hand_matrix():
    system = diffusion(Grid(5), 1.0, 1.0)
    expected = 16.0 * np.array([[2, -1, 0], [-1, 2, -1], [0, -1, 2]], dtype=float)
    np.testing.assert_array_equal(system.A.toarray(), expected)
    np.testing.assert_array_equal(system.b, np.ones(3))
    np.testing.assert_array_equal(system.free, [1, 2, 3])


def test_inactive_nodes_are_removed_with_their_faces():
    # 7 nodes, u = 1 at x = 0 and u = 2 at x = 1, node 3 taken out: two segments with a wall
    # (no flux) on the side of node 3, each still held by its Dirichlet end
    active = np.ones(7, dtype=bool)
    active[3] = False
    system = diffusion(Grid(7), 1.0, 1.0, Dirichlet(lambda x: 1.0 + x[:, 0]), active=active)
    np.testing.assert_array_equal(system.free, [1, 2, 4, 5])
    expected = 36.0 * np.array(
        [[2, -1, 0, 0], [-1, 1, 0, 0], [0, 0, 1, -1], [0, 0, -1, 2]], dtype=float
    )
    np.testing.assert_allclose(system.A.toarray(), expected, rtol=1e-14)
    np.testing.assert_allclose(system.b, [1 + 36.0, 1, 1, 1 + 2 * 36.0], rtol=1e-14)
    u = system.expand(spla.spsolve(system.A.tocsc(), system.b))
    assert u[3] == 0.0 and u[0] == 1.0 and u[6] == 2.0
    # an inactive Dirichlet node is a wall too: no lift, no coupling into b
    active = np.ones(7, dtype=bool)
    active[0] = False
    system = diffusion(Grid(7), 1.0, 0.0, Dirichlet(5.0), active=active)
    np.testing.assert_array_equal(system.free, [1, 2, 3, 4, 5])
    assert system.lift[0] == 0.0 and system.lift[6] == 5.0
    np.testing.assert_allclose(system.b, [0, 0, 0, 0, 5 * 36.0])
    assert system.A.toarray()[0, 0] == 36.0
    # 2-D: the coefficient is not read on inactive nodes; bad masks are named
    active = np.ones((5, 5), dtype=bool)
    active[2, 2] = False
    a = np.ones((5, 5))
    a[2, 2] = np.nan
    system = diffusion(Grid((5, 5)), a, 1.0, active=active)
    assert system.n_free == 8 and system.A.nnz == 8 + 2 * 8  # a ring of 8 nodes
    with pytest.raises(TypeError, match="active"):
        diffusion(Grid((5, 5)), 1.0, active=active.astype(int))
    with pytest.raises(ValueError, match="active"):
        diffusion(Grid((5, 5)), 1.0, active=np.ones((4, 5), dtype=bool))


def test_variable_coefficient_1d_uses_harmonic_face_means():
    a = np.array([1.0, 2.0, 4.0, 4.0, 1.0])  # faces: 4/3, 8/3, 4, 8/5
    faces = np.array([4 / 3, 8 / 3, 4.0, 8 / 5])
    system = diffusion(Grid(5), a, 0.0, Dirichlet(1.0))
    h2 = 0.25**2
    expected = np.array([
        [faces[0] + faces[1], -faces[1], 0.0],
        [-faces[1], faces[1] + faces[2], -faces[2]],
        [0.0, -faces[2], faces[2] + faces[3]],
    ]) / h2
    np.testing.assert_allclose(system.A.toarray(), expected, rtol=1e-14)
    # the Dirichlet value 1 at both ends moves into b through the end faces
    np.testing.assert_allclose(system.b, np.array([faces[0], 0.0, faces[3]]) / h2, rtol=1e-14)


def test_neumann_1d_rows_are_halved_and_symmetric():
    # 5 nodes, flux g = 3 on x-, Dirichlet 0 on x+: unknowns are nodes 0..3
    system = diffusion(Grid(5), 1.0, 2.0, {"x-": Neumann(3.0)})
    expected = 16.0 * np.array(
        [[1, -1, 0, 0], [-1, 2, -1, 0], [0, -1, 2, -1], [0, 0, -1, 2]], dtype=float
    )
    np.testing.assert_array_equal(system.A.toarray(), expected)
    np.testing.assert_allclose(system.b, [0.5 * 2.0 + 3.0 / 0.25, 2.0, 2.0, 2.0])


def test_linear_solution_with_flux_is_exact():
    # u = 1 + 2x: -u'' = 0, outward flux on x- is -u'(0) = -2, u(1) = 3
    system = diffusion(Grid(9), 1.0, 0.0, {"x-": Neumann(-2.0), "x+": Dirichlet(3.0)})
    np.testing.assert_allclose(solve_full(system), 1 + 2 * Grid(9).coords[0], rtol=1e-13)


def test_bilinear_solution_with_neumann_sides_is_exact():
    # u = x + 2y + x y is harmonic and bilinear, so every FD row (Neumann ones included) is exact.
    grid = Grid((6, 9), [(0, 1), (-1, 2)])

    def u(p):
        return p[:, 0] + 2 * p[:, 1] + p[:, 0] * p[:, 1]

    bc = {
        "x-": Dirichlet(u),
        "x+": Neumann(lambda p: 1 + p[:, 1]),
        "y-": Dirichlet(u),
        "y+": Neumann(lambda p: 2 + p[:, 0]),
    }
    np.testing.assert_allclose(
        solve_full(diffusion(grid, 1.0, 0.0, bc)), u(grid.points()), atol=1e-12
    )


def test_dirichlet_corner_takes_first_side_in_order():
    grid = Grid((4, 4))
    system = diffusion(
        grid,
        1.0,
        0.0,
        {"x-": Dirichlet(1.0), "x+": Dirichlet(5.0), "y-": Dirichlet(2.0), "y+": Dirichlet(3.0)},
    )
    lift = grid.to_field(system.lift)[0]
    assert lift[0, 0] == 1.0 and lift[0, -1] == 1.0  # x- beats y- and y+
    assert lift[-1, 0] == 5.0 and lift[-1, -1] == 5.0  # x+ beats y- and y+
    assert lift[1, 0] == 2.0 and lift[2, -1] == 3.0
    assert np.all(system.lift[system.free] == 0.0)


# -------------------------------------------------------------------- structure
def test_dirichlet_laplacian_is_spd_and_has_interior_unknowns():
    for s in (5, 8):
        grid = Grid((s, s))
        system = diffusion(grid, 1.0)
        assert system.A.shape == ((s - 2) ** 2, (s - 2) ** 2)
        np.testing.assert_array_equal(system.free, np.flatnonzero(grid.interior_mask().ravel()))
        dense = system.A.toarray()
        np.testing.assert_array_equal(dense, dense.T)
        eigenvalues = np.linalg.eigvalsh(dense)
        # smallest eigenvalue of the 5-point Laplacian: 2 · (4/h²) sin²(πh/2)
        h = 1.0 / (s - 1)
        assert eigenvalues[0] == pytest.approx(8 / h**2 * np.sin(np.pi * h / 2) ** 2, rel=1e-12)


def test_variable_coefficient_and_neumann_systems_are_symmetric_positive_definite():
    rng = np.random.default_rng(0)
    grid = Grid((7, 6, 5), [(0, 1), (0, 2), (0, 1)])
    coefficient = np.exp(rng.standard_normal(grid.shape))
    for bc in (None, {"x-": Neumann(1.0), "y+": Neumann(), "z-": Neumann()}):
        dense = diffusion(grid, coefficient, 1.0, bc).A.toarray()
        np.testing.assert_allclose(dense, dense.T, rtol=0, atol=1e-12 * np.abs(dense).max())
        np.linalg.cholesky(dense)  # raises LinAlgError if not positive definite


def test_indices_are_int32_and_darcy_sizes():
    for s in (52, 82):
        system = diffusion(Grid((s, s)), np.ones((s, s)), 1.0)
        assert system.n_free == (s - 2) ** 2
        assert system.A.indices.dtype == np.int32 and system.A.indptr.dtype == np.int32
        assert system.A.nnz == 5 * (s - 2) ** 2 - 4 * (s - 2)


def test_all_neumann_and_periodic_are_singular_with_constant_null_space():
    for grid, bc in ((Grid((6, 5)), Neumann()), (Grid.periodic((6, 5)), Periodic())):
        system = diffusion(grid, lambda p: 1 + p[:, 0], 0.0, bc)
        assert system.n_free == grid.size
        np.testing.assert_allclose(system.A @ np.ones(grid.size), 0.0, atol=1e-10)
        assert np.linalg.matrix_rank(system.A.toarray()) == grid.size - 1


def test_periodic_couples_last_node_to_first():
    grid = Grid.periodic(4)  # nodes 0, 1/4, 1/2, 3/4
    dense = diffusion(grid, 1.0, 0.0, Periodic()).A.toarray()
    expected = 16.0 * np.array(
        [[2, -1, 0, -1], [-1, 2, -1, 0], [0, -1, 2, -1], [-1, 0, -1, 2]], dtype=float
    )
    np.testing.assert_array_equal(dense, expected)


def test_zero_velocity_advection_equals_diffusion():
    grid = Grid((9, 7))
    bc = {"x-": Neumann(0.5), "y+": Dirichlet(lambda p: p[:, 0])}
    with_advection = advection_diffusion(grid, np.zeros(2), 0.3, 1.0, bc)
    plain = diffusion(grid, 0.3, 1.0, bc)
    np.testing.assert_allclose(with_advection.A.toarray(), plain.A.toarray())
    np.testing.assert_allclose(with_advection.b, plain.b)


def test_upwind_advection_1d_hand_matrix():
    # ε = 1, v = +2 on 5 nodes, h = 1/4: row = 16(2u_i - u_{i-1} - u_{i+1}) + 8(u_i - u_{i-1})
    dense = advection_diffusion(Grid(5), 2.0, 1.0).A.toarray()
    expected = np.array([[40, -16, 0], [-24, 40, -16], [0, -24, 40]], dtype=float)
    np.testing.assert_array_equal(dense, expected)
    dense = advection_diffusion(Grid(5), -2.0, 1.0).A.toarray()
    np.testing.assert_array_equal(dense, expected.T)


def test_mass_weights():
    grid = Grid((5, 9), [(0, 2), (0, 1)])
    # all-Neumann volume mass: trapezoidal weights, which sum to the area 2
    volume = mass(grid, Neumann())
    assert volume.shape == (grid.size, grid.size)
    assert volume.sum() == pytest.approx(2.0, rel=1e-14)
    ones = np.ones(grid.size)
    assert ones @ (volume @ ones) == pytest.approx(2.0, rel=1e-14)
    # Dirichlet everywhere, unit scale: the identity on the interior
    unit = mass(grid, None, scale="unit")
    np.testing.assert_array_equal(unit.toarray(), np.eye((5 - 2) * (9 - 2)))
    np.testing.assert_array_equal(free_dofs(grid), np.flatnonzero(grid.interior_mask().ravel()))


def test_large_grid_structure():
    # Timing lives in benchmarks/bench_assembly.py; here only the structure at a realistic size.
    rng = np.random.default_rng(1)
    grid = Grid((512, 512))
    system = diffusion(grid, np.exp(rng.standard_normal(grid.shape)), 1.0)
    assert system.n_free == 510**2
    assert system.A.nnz == 5 * 510**2 - 4 * 510
    assert system.A.indices.dtype == np.int32


# -------------------------------------------------------------------- bad input
@pytest.mark.parametrize("coefficient", [0.0, -1.0, np.nan, np.inf])
def test_bad_coefficient_values(coefficient):
    with pytest.raises(ValueError, match="coefficient"):
        diffusion(Grid((5, 5)), coefficient)


def test_bad_coefficient_arrays_and_callables():
    grid = Grid((5, 5))
    field = np.ones(grid.shape)
    field[2, 3] = -0.5
    with pytest.raises(ValueError, match="coefficient.*> 0"):
        diffusion(grid, field)
    with pytest.raises(ValueError, match=r"coefficient.*shape \(5, 5\)"):
        diffusion(grid, np.ones((5, 4)))
    with pytest.raises(ValueError, match="coefficient.*callable"):
        diffusion(grid, lambda p: np.ones(3))
    with pytest.raises(ValueError, match="coefficient.*NaN"):
        diffusion(grid, lambda p: np.where(p[:, 0] > 0.5, np.nan, 1.0))


def test_bad_other_arguments():
    grid = Grid((5, 5))
    with pytest.raises(ValueError, match="source"):
        diffusion(grid, 1.0, np.ones(7))
    with pytest.raises(ValueError, match="reaction"):
        diffusion(grid, 1.0, reaction=-1.0)
    with pytest.raises(ValueError, match="wavenumber"):
        helmholtz(grid, np.nan)
    with pytest.raises(ValueError, match="velocity"):
        advection_diffusion(grid, np.ones(3), 1.0)
    with pytest.raises(ValueError, match="diffusivity"):
        advection_diffusion(grid, np.ones(2), 0.0)
    with pytest.raises(ValueError, match="scale"):
        mass(grid, scale="lumped")
    with pytest.raises(ValueError, match="grid"):
        diffusion(Grid((5, 5), centering="cell"), 1.0)
    with pytest.raises(TypeError, match="grid"):
        diffusion(np.zeros((5, 5)), 1.0)


def test_bad_boundary_conditions():
    grid = Grid((5, 5))
    with pytest.raises(ValueError, match="bc: unknown side"):
        diffusion(grid, 1.0, bc={"z-": Neumann()})
    with pytest.raises(ValueError, match="bc: unknown side"):
        diffusion(grid, 1.0, bc={"left": Dirichlet()})
    with pytest.raises(ValueError, match="Periodic"):
        diffusion(grid, 1.0, bc={"x-": Periodic()})
    with pytest.raises(ValueError, match=r"bc\['y\+'\]\.value"):
        diffusion(grid, 1.0, bc={"y+": Dirichlet(np.ones(3))})
    with pytest.raises(ValueError, match=r"bc\['x-'\]\.flux"):
        diffusion(grid, 1.0, bc={"x-": Neumann(np.nan)})
