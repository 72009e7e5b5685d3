"""The PDE families: seeding, shapes, assembled systems, and solutions checked against the PDE."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.datasets import (
    FAMILIES,
    Darcy,
    PDEFamily,
    family_from_config,
    gaussian_random_field,
    get_family,
    register_family,
)
from pdesuite.discretization import load_vector, stiffness_matrix
from pdesuite.solvers import solve as suite_solve

#: Small, fast configurations of every built-in family.
SMALL = {
    "darcy": {"resolution": 12},
    "darcy-pwc": {"resolution": 12},
    "darcy-3d": {"resolution": 6},
    "poisson-obstacles-3d": {"resolution": 8, "size_range": [0.15, 0.3]},
    "helmholtz": {"resolution": 12},
    "poisson-fe": {"resolution": 3},
    "thermal-fe": {"resolution": 4},
    "heat": {"resolution": 9, "final_time": 0.04, "record_interval": 0.02},
    "burgers": {"resolution": 32, "final_time": 0.1, "record_interval": 0.05},
    "navier-stokes": {"resolution": 16, "final_time": 0.02, "record_interval": 0.01, "dt": 1e-3},
}


def test_registry_holds_the_eight_families() -> None:
    assert set(SMALL) <= set(FAMILIES)
    assert {name for name, cls in FAMILIES.items() if cls.time_dependent} >= {
        "heat",
        "burgers",
        "navier-stokes",
    }


@pytest.mark.parametrize("name", sorted(SMALL))
def test_sampling_is_seeded_and_arrays_have_the_documented_shapes(name: str) -> None:
    family = get_family(name, **SMALL[name])
    first = family.sample(np.random.default_rng([7, 3]))
    again = family.sample(np.random.default_rng([7, 3]))
    other = family.sample(np.random.default_rng([7, 4]))
    assert first.keys() == again.keys() == other.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert any(not np.array_equal(first[key], other[key]) for key in first)

    inputs = family.inputs(first)
    assert inputs.dtype == np.float32 and inputs.shape == family.input_shape
    coords = family.coordinates()
    spatial = family.spatial_shape
    if len(spatial) == 1 and coords.shape[-1] == 2:  # FE: [ndofs, 2]
        assert coords.shape == (spatial[0], 2)
    else:
        assert coords.shape == (len(spatial),) + spatial
    if family.time_dependent:
        trajectory, stats = family.simulate(first)
        assert trajectory.dtype == np.float32 and trajectory.shape == family.output_shape
        np.testing.assert_allclose(trajectory[0], inputs, atol=1e-6)  # frame 0 is the initial state
    else:
        system = family.assemble(first)
        assert system.A.shape == (system.n_free, system.n_free) and system.b.shape == (
            system.n_free,
        )
        assert system.A.indices.dtype == np.int32
        outputs = family.outputs(first, system.expand(spla.spsolve(system.A.tocsc(), system.b)))
        assert outputs.dtype == np.float32 and outputs.shape == family.output_shape
        assert np.all(np.isfinite(outputs))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_config_round_trips_through_json_and_pickle(name: str) -> None:
    family = get_family(name, **SMALL[name])
    config = json.loads(json.dumps(family.config()))
    assert config["family"] == name and config["resolution"] == SMALL[name]["resolution"]
    rebuilt = family_from_config(config)
    clone = pickle.loads(pickle.dumps(family))
    assert rebuilt == family and clone == family
    params = family.sample(np.random.default_rng(1))
    np.testing.assert_array_equal(
        clone.inputs(clone.sample(np.random.default_rng(1))), family.inputs(params)
    )


@pytest.mark.parametrize(
    "name", [n for n in sorted(SMALL) if FAMILIES[n].spd and not FAMILIES[n].time_dependent]
)
def test_spd_families_assemble_spd_matrices(name: str) -> None:
    family = get_family(name, **SMALL[name])
    A = family.assemble(family.sample(np.random.default_rng(2))).A.toarray()
    np.testing.assert_allclose(A, A.T, atol=1e-12 * np.abs(A).max())
    np.linalg.cholesky(A)  # raises LinAlgError unless positive definite


# ----------------------------------------------------------------------------------- Darcy
def _five_point_residual(u: np.ndarray, a: np.ndarray, f: np.ndarray, h: float) -> np.ndarray:
    """−∇·(a∇u) − f at the interior nodes, with harmonic face means (written out independently)."""
    def face(p, q):
        return 2 * p * q / (p + q)

    c = u[1:-1, 1:-1]
    flux = (
        face(a[1:-1, 1:-1], a[2:, 1:-1]) * (u[2:, 1:-1] - c)
        + face(a[1:-1, 1:-1], a[:-2, 1:-1]) * (u[:-2, 1:-1] - c)
        + face(a[1:-1, 1:-1], a[1:-1, 2:]) * (u[1:-1, 2:] - c)
        + face(a[1:-1, 1:-1], a[1:-1, :-2]) * (u[1:-1, :-2] - c)
    )
    return -flux / h**2 - f[1:-1, 1:-1]


def test_darcy_system_size_and_solution_satisfy_the_pde() -> None:
    s = 20
    family = Darcy(s)
    params = family.sample(np.random.default_rng(0))
    a = params["coefficient"]
    assert np.all(a > 0)
    assert abs(np.log(a).mean()) < 1e-12  # exp of a mean-zero field
    system = family.assemble(params)
    assert system.n_free == (s - 2) ** 2
    u = family.direct_solve(params)[0].astype(float)
    assert np.all(u[[0, -1], :] == 0) and np.all(u[:, [0, -1]] == 0)
    residual = _five_point_residual(u, a, np.ones((s, s)), 1.0 / (s - 1))
    assert np.max(np.abs(residual)) < 1e-3  # float32 outputs: |u| ~ 0.07, h² ~ 3e-3
    # and in float64 through the same path
    u64 = system.expand(spla.spsolve(system.A.tocsc(), system.b)).reshape(s, s)
    assert np.max(np.abs(_five_point_residual(u64, a, np.ones((s, s)), 1.0 / (s - 1)))) < 1e-9


def test_darcy_3d_is_second_order_and_has_the_documented_shapes() -> None:
    """Unit coefficient and source in the unit cube: the centre value converges at second order
    (differences between grids 9, 17, 33 shrink 4×, to 0.05621 by Richardson extrapolation)."""
    from pdesuite.datasets import Darcy3D

    centres = []
    for s in (9, 17, 33):
        family = Darcy3D(s)
        system = family.assemble({"coefficient": np.ones((s, s, s))})
        assert system.n_free == (s - 2) ** 3
        u = system.expand(spla.spsolve(system.A.tocsc(), system.b)).reshape(s, s, s)
        centres.append(u[s // 2, s // 2, s // 2])
    ratio = (centres[1] - centres[0]) / (centres[2] - centres[1])
    assert 3.6 < ratio < 4.2
    extrapolated = centres[2] + (centres[2] - centres[1]) / 3
    assert abs(extrapolated - 0.05621) < 2e-5
    family = Darcy3D(8)
    params = family.sample(np.random.default_rng(0))
    assert params["coefficient"].shape == (8, 8, 8)
    assert family.inputs(params).shape == (1, 8, 8, 8)
    assert family.coordinates().shape == (3, 8, 8, 8)


def test_darcy_with_unit_coefficient_gives_the_torsion_function_of_the_square() -> None:
    # −Δu = 1 on the unit square: u(½, ½) = 0.0736713532... (the series solution)
    s = 65
    family = Darcy(s)
    u = family.direct_solve({"coefficient": np.ones((s, s))})[0]
    assert u[32, 32] == pytest.approx(0.07367135, abs=2e-5)


def test_darcy_piecewise_takes_only_3_and_12_where_the_field_says() -> None:
    family = get_family("darcy-pwc", resolution=24)
    a = family.sample(np.random.default_rng(9))["coefficient"]
    assert set(np.unique(a)) == {3.0, 12.0}
    g = gaussian_random_field((24, 24), 2.0, 3.0, np.random.default_rng(9))
    np.testing.assert_array_equal(a == 12.0, g >= 0)
    assert family.spd and family.direct_solve({"coefficient": a}).max() > 0


# ----------------------------------------------------------------------------------- obstacles
def _obstacle_matrix(solid: np.ndarray) -> np.ndarray:
    """The fluid-cell Laplacian written out cell by cell: dense ``[n, n]`` in C order of the
    cells."""
    s = solid.shape[0]
    cells = [c for c in np.ndindex(solid.shape) if not solid[c]]
    number = {c: i for i, c in enumerate(cells)}
    A = np.zeros((len(cells), len(cells)))
    for c, i in number.items():
        for axis in range(3):
            for step in (-1, 1):
                q = list(c)
                q[axis] += step
                q = tuple(q)
                if not all(0 <= v < s for v in q):
                    A[i, i] += s * s  # open face: p = 0 in the ghost cell
                elif not solid[q]:
                    A[i, i] += s * s
                    A[i, number[q]] -= s * s
    return A  # solid neighbours add nothing: zero flux


def _second_differences(n: int, low: str, high: str) -> np.ndarray:
    """1-D ``[n, n]`` second differences times h²: "D" a zero ghost beyond the end, "N" no flux."""
    T = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    T[0, 0] -= low == "N"
    T[-1, -1] -= high == "N"
    return T


def test_poisson_obstacles_matrix_is_the_fluid_cell_laplacian_and_spd() -> None:
    s = 7
    family = get_family("poisson-obstacles-3d", resolution=s, obstacles=5, size_range=[0.15, 0.3])
    params = family.sample(np.random.default_rng(11))
    solid = params["solid"]
    assert solid.dtype == bool and solid.shape == (s, s, s) and 0.05 < solid.mean() < 0.5
    system = family.assemble(params)
    A = system.A.toarray()
    # solid rows are absent: one unknown per fluid cell, in C order of the cells
    assert system.n_free == int((~solid).sum())
    padded = np.zeros((s + 2,) * 3, dtype=bool)
    padded[1:-1, 1:-1, 1:-1] = ~solid
    np.testing.assert_array_equal(system.free, np.flatnonzero(padded.ravel()))
    np.testing.assert_allclose(A, _obstacle_matrix(solid), rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(A, A.T)
    np.linalg.cholesky(A)
    assert np.linalg.eigvalsh(A).min() > 0
    np.testing.assert_allclose(system.b, params["source"][~solid], rtol=1e-15)
    # the pressure is zero in the solids, and the inputs say where they are
    p = family.outputs(params, system.expand(spla.spsolve(system.A.tocsc(), system.b)))[0]
    assert np.all(p[solid] == 0) and np.any(p[~solid] != 0)
    inputs = family.inputs(params)
    np.testing.assert_array_equal(inputs[0], solid.astype(np.float32))
    assert np.all(inputs[1][solid] == 0)


def test_poisson_obstacles_without_obstacles_is_darcy_3d_scaled() -> None:
    from pdesuite.datasets import Darcy3D

    s = 6
    family = get_family("poisson-obstacles-3d", resolution=s, obstacles=0, source="constant")
    params = family.sample(np.random.default_rng(0))
    assert not params["solid"].any() and np.all(params["source"] == 1.0)
    darcy = Darcy3D(s + 2).assemble({"coefficient": np.ones((s + 2,) * 3)})
    system = family.assemble(params)
    np.testing.assert_allclose(
        system.A.toarray(), darcy.A.toarray() * (s / (s + 1)) ** 2, rtol=1e-12
    )
    np.testing.assert_allclose(system.b, darcy.b, rtol=1e-15)
    np.testing.assert_allclose(family.coordinates()[:, 0, 0, 0], [0.5 / s] * 3)
    np.testing.assert_allclose(family.coordinates()[:, -1, 2, 0], [(s - 0.5) / s, 2.5 / s, 0.5 / s])


def test_poisson_obstacles_box_of_fluid_has_the_kronecker_laplacian_and_its_eigenmode() -> None:
    """Fluid in the box x < m (open at x = 0), 2 <= y < s − 1 (walls on both sides), all z
    (open at both ends): A = s² (T_DN ⊗ I ⊗ I + I ⊗ T_NN ⊗ I + I ⊗ I ⊗ T_DD), and its lowest
    mode, sin((i + 1)π/(2m + 1)) · 1 · sin((k + 1)π/(s + 1)), solves A p = f with p = f/λ."""
    s, m = 9, 4
    ny = s - 3
    solid = np.ones((s, s, s), dtype=bool)
    solid[:m, 2:s - 1, :] = False
    family = get_family("poisson-obstacles-3d", resolution=s)
    i = np.arange(m)[:, None, None]
    k = np.arange(s)[None, None, :]
    mode = (
        np.sin((i + 1) * np.pi / (2 * m + 1))
        * np.sin((k + 1) * np.pi / (s + 1))
        * np.ones((1, ny, 1))
    )
    source = np.zeros((s, s, s))
    source[:m, 2:s - 1, :] = mode
    params = {"solid": solid, "source": source}
    system = family.assemble(params)
    Tx, Ty, Tz = (_second_differences(m, "D", "N"), _second_differences(ny, "N", "N"),
                  _second_differences(s, "D", "D"))
    expected = (
        s
        * s
        * (
            np.kron(np.kron(Tx, np.eye(ny)), np.eye(s))
            + np.kron(np.kron(np.eye(m), Ty), np.eye(s))
            + np.kron(np.kron(np.eye(m), np.eye(ny)), Tz)
        )
    )
    np.testing.assert_allclose(system.A.toarray(), expected, rtol=1e-12, atol=1e-9)
    lowest = (
        s * s * 4 * (np.sin(np.pi / (2 * (2 * m + 1))) ** 2 + np.sin(np.pi / (2 * (s + 1))) ** 2)
    )
    assert np.linalg.eigvalsh(system.A.toarray()).min() == pytest.approx(lowest, rel=1e-12)
    p = system.expand(spla.spsolve(system.A.tocsc(), system.b))
    pressure = family.outputs(params, p)[0]
    np.testing.assert_allclose(
        pressure, source / lowest, rtol=1e-6, atol=1e-7 * np.abs(source / lowest).max()
    )


def test_poisson_obstacles_pressure_makes_the_velocity_divergence_free() -> None:
    """The projection step the family models: u = u* − ∇p has zero divergence in every fluid
    cell."""
    s = 10
    family = get_family("poisson-obstacles-3d", resolution=s, obstacles=6, size_range=[0.1, 0.25])
    solid = family.sample(np.random.default_rng(3))["solid"]
    velocity = np.random.default_rng(4).standard_normal((3, s, s, s))
    source = family.divergence_source(solid, velocity)
    system = family.assemble({"solid": solid, "source": source})
    p = system.expand(spla.spsolve(system.A.tocsc(), system.b)).reshape(
        (s + 2,) * 3
    )  # float64, ghosts 0
    wall = np.ones((s + 2,) * 3, dtype=bool)
    wall[1:-1, 1:-1, 1:-1] = solid
    wall[[0, -1], :, :] = wall[:, [0, -1], :] = wall[:, :, [0, -1]] = False  # ghosts are open
    divergence = np.zeros((s, s, s))
    for axis in range(3):
        v = np.moveaxis(velocity[axis], axis, 0)
        w = np.moveaxis(wall, axis, 0)[:, 1:-1, 1:-1]
        q = np.moveaxis(p, axis, 0)[:, 1:-1, 1:-1]
        u_star = np.concatenate([v[:1], 0.5 * (v[1:] + v[:-1]), v[-1:]])  # s + 1 faces
        u = u_star - (q[1:] - q[:-1]) * s
        u[w[1:] | w[:-1]] = 0.0
        divergence += np.moveaxis((u[1:] - u[:-1]) * s, 0, axis)
    assert np.abs(source[~solid]).max() > 1.0
    assert np.abs(divergence[~solid]).max() < 1e-9 * np.abs(source).max()
    assert np.all(source[solid] == 0)


def test_poisson_obstacles_pockets_fill_bounds_and_errors() -> None:
    s = 9
    shell = np.zeros((s, s, s), dtype=bool)
    shell[2:7, 2:7, 2:7] = True
    shell[3:6, 3:6, 3:6] = False  # a hollow cube: 27 fluid cells cut off from the open faces
    family = get_family("poisson-obstacles-3d", resolution=s)
    with pytest.raises(ValueError, match="27 fluid cell"):
        family.assemble({"solid": shell, "source": np.ones((s, s, s))})
    with pytest.raises(ValueError, match="every cell is solid"):
        family.assemble({"solid": np.ones((s, s, s), dtype=bool), "source": np.ones((s, s, s))})
    with pytest.raises(ValueError, match="bool mask"):
        family.assemble({"solid": np.full((s, s, s), 0.5), "source": np.ones((s, s, s))})
    # sampled masks never hold a pocket, and respect the fill bounds
    crowded = get_family("poisson-obstacles-3d", resolution=s, obstacles=12, size_range=[0.1, 0.3],
                         fill=[0.2, 0.6], shapes="box")
    for seed in range(5):
        params = crowded.sample(np.random.default_rng(seed))
        assert 0.2 <= params["solid"].mean() <= 0.6
        np.linalg.cholesky(crowded.assemble(params).A.toarray())
    impossible = get_family(
        "poisson-obstacles-3d", resolution=s, obstacles=1, size_range=[0.05, 0.1], fill=[0.5, 0.9]
    )
    with pytest.raises(RuntimeError, match="fill"):
        impossible.sample(np.random.default_rng(0))
    for bad in (
        {"fill": [0.2, 1.0]},
        {"shapes": ["cone"]},
        {"size_range": [0.0, 0.1]},
        {"source": "point"},
        {"obstacles": -1},
        {"shapes": []},
    ):
        with pytest.raises(ValueError):
            get_family("poisson-obstacles-3d", resolution=s, **bad)


@pytest.mark.parametrize("solver", ["direct", {"method": "cg", "M": "ic"}])
def test_poisson_obstacles_generation_solves_each_new_pattern(tmp_path, solver) -> None:
    from pdesuite.datasets import generate
    from pdesuite.datasets.storage import open_dataset

    s, n = 8, 3
    family = get_family("poisson-obstacles-3d", resolution=s, size_range=[0.15, 0.3])
    path = generate(family, n, tmp_path / "obstacles.h5", solver=solver, seed=5, progress=False)
    with open_dataset(path) as handle:
        inputs, outputs = handle["inputs"][()], handle["outputs"][()]
        solid, source = handle["parameters/solid"][()], handle["parameters/source"][()]
        residual, converged = handle["solver/residual"][()], handle["solver/converged"][()]
        coordinates = handle["coordinates"][()]
    assert inputs.shape == (n, 2, s, s, s) and outputs.shape == (n, 1, s, s, s)
    assert coordinates.shape == (3, s, s, s) and solid.shape == (n, s, s, s) and solid.dtype == bool
    assert converged.all() and np.all(residual < 1e-8)
    sizes = set()
    for index in range(n):
        params = {"solid": solid[index], "source": source[index]}
        system = family.assemble(params)
        sizes.add(system.n_free)
        x = system.restrict(np.pad(outputs[index, 0].astype(float), 1).ravel())
        # float32 outputs: the residual of the rounded solution
        assert np.linalg.norm(system.b - system.A @ x) < 1e-5 * np.linalg.norm(system.b)
        assert np.all(outputs[index, 0][solid[index]] == 0)
        np.testing.assert_array_equal(inputs[index], family.inputs(params))
    assert len(sizes) == n  # every sample has its own pattern


# ----------------------------------------------------------------------------------- Helmholtz
def test_helmholtz_wavenumber_range_indefinite_matrix_and_pde_residual() -> None:
    s, k0, delta = 16, 20.0, 0.25
    family = get_family("helmholtz", resolution=s, k0=k0, delta=delta)
    params = family.sample(np.random.default_rng(4))
    k = params["wavenumber"]
    assert k.min() == pytest.approx(k0 * (1 - delta)) and k.max() == pytest.approx(k0 * (1 + delta))
    system = family.assemble(params)
    assert system.n_free == (s - 2) ** 2 and not family.spd
    A = system.A.toarray()
    eigenvalues = np.linalg.eigvalsh(A)
    assert eigenvalues.min() < 0 < eigenvalues.max()  # symmetric indefinite
    u = system.expand(spla.spsolve(system.A.tocsc(), system.b)).reshape(s, s)
    h = 1.0 / (s - 1)
    laplacian = (u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2] - 4 * u[1:-1, 1:-1]) / h**2
    f = family.source_field
    # ∇²u + k²u = f at the interior nodes
    residual = laplacian + k[1:-1, 1:-1] ** 2 * u[1:-1, 1:-1] - f[1:-1, 1:-1]
    assert np.max(np.abs(residual)) < 1e-8 * np.max(np.abs(f))


def test_helmholtz_point_source_has_unit_mass() -> None:
    family = get_family("helmholtz", resolution=11, source="point", source_position=[0.3, 0.7])
    f = family.source_field
    assert np.count_nonzero(f) == 1 and f[3, 7] * family.grid.cell_volume == pytest.approx(1.0)


# ----------------------------------------------------------------------------------- FE
@pytest.mark.parametrize("degree", [1, 2])
def test_poisson_fe_boundary_values_and_discrete_equations(degree: int) -> None:
    r = 3
    family = get_family("poisson-fe", resolution=r, degree=degree)
    if degree == 1:
        assert family.space.ndofs == 3 * r * r + 4 * r + 1
    params = family.sample(np.random.default_rng(5))
    system = family.assemble(params)
    boundary = family.space.boundary_dofs()
    assert system.n_free == family.space.ndofs - boundary.size
    u = system.expand(spla.spsolve(system.A.tocsc(), system.b))
    points = family.space.dof_coordinates[boundary]
    x, y = points[:, 0], points[:, 1]
    c = params["boundary_coefficients"]
    g = c[0] + c[1] * x + c[2] * y + c[3] * x**2 + c[4] * x * y + c[5] * y**2
    np.testing.assert_allclose(u[boundary], g, atol=1e-12)
    np.testing.assert_allclose(family.inputs(params)[1, boundary], g, rtol=1e-6, atol=1e-6)
    # K u = F on the interior DoFs, with K and F assembled here independently of the family
    K = stiffness_matrix(family.space)
    F = load_vector(family.space, family.source_function(params))
    interior = np.setdiff1d(np.arange(family.space.ndofs), boundary)
    np.testing.assert_allclose((K @ u - F)[interior], 0.0, atol=1e-10 * np.abs(F).max())


def test_poisson_fe_p2_reproduces_a_harmonic_quadratic() -> None:
    family = get_family("poisson-fe", resolution=3, degree=2)
    params = family.sample(np.random.default_rng(0))
    params["amplitudes"] = np.zeros_like(params["amplitudes"])
    params["boundary_coefficients"] = np.array([1.0, 2.0, -1.0, 0.5, 0.3, -0.5])  # Δg = 1 − 1 = 0
    u = family.direct_solve(params)[0].astype(float)
    x, y = family.coordinates().T
    np.testing.assert_allclose(u, 1 + 2 * x - y + 0.5 * x**2 + 0.3 * x * y - 0.5 * y**2, atol=1e-6)


def test_thermal_constant_boundary_temperature_gives_a_constant_field() -> None:
    family = get_family("thermal-fe", resolution=6)
    T = family.direct_solve({"temperatures": np.full(3, 37.0), "fluxes": np.zeros(2)})[0]
    np.testing.assert_allclose(T, 37.0, rtol=1e-6)


def test_thermal_inflowing_flux_heats_the_plate_and_dirichlet_values_hold() -> None:
    family = get_family("thermal-fe", resolution=6)
    # zero temperatures, heat entering through bottom and top: T > 0 inside (maximum principle)
    T = family.direct_solve({"temperatures": np.zeros(3), "fluxes": np.array([100.0, 50.0])})[0]
    assert T.min() > -1e-6 and T.max() > 1.0
    params = family.sample(np.random.default_rng(3))
    assert np.all(np.abs(params["fluxes"]) <= 100) and np.all(
        (params["temperatures"] >= 0) & (params["temperatures"] <= 100)
    )
    T = family.direct_solve(params)[0]
    for value, side in zip(params["temperatures"], ("left", "right", "hole")):
        np.testing.assert_allclose(T[family.dirichlet_dofs[side]], value, rtol=1e-6)
    inputs = family.inputs(params)
    np.testing.assert_allclose(
        inputs[2, family.neumann_dofs["top"]], params["fluxes"][1], rtol=1e-6
    )


def test_thermal_random_conductivity_is_positive_and_spd() -> None:
    family = get_family("thermal-fe", resolution=4, random_conductivity=True)
    params = family.sample(np.random.default_rng(8))
    kappa = family.inputs(params)[0]
    assert np.all(kappa > 0) and kappa.std() > 0.01 * kappa.mean()
    np.linalg.cholesky(family.assemble(params).A.toarray())


# ----------------------------------------------------------------------------------- heat
def test_heat_sine_mode_decays_at_the_crank_nicolson_factor() -> None:
    s, kappa, dt = 17, 1.0, 1e-3
    family = get_family(
        "heat", resolution=s, kappa=kappa, dt=dt, final_time=0.02, record_interval=0.005, rtol=1e-11
    )
    x, y = family.coordinates()
    u0 = np.sin(np.pi * x) * np.sin(2 * np.pi * y)
    trajectory, stats = family.simulate({"initial_condition": u0})
    h = 1.0 / (s - 1)
    lam = kappa * 4 / h**2 * (np.sin(np.pi * h / 2) ** 2 + np.sin(2 * np.pi * h / 2) ** 2)
    factor = (1 - dt * lam / 2) / (1 + dt * lam / 2)
    for frame, t in enumerate(family.times()):
        steps = round(t / dt)
        np.testing.assert_allclose(trajectory[frame, 0], factor**steps * u0, atol=2e-7)
    assert trajectory[-1, 0].max() < 0.5  # it did decay: e^{−λ t} ≈ 0.37
    assert len(stats) == 20 and all(st["converged"] and st["residual"] < 1e-10 for st in stats)


def test_heat_warm_starts_each_solve_from_the_previous_step() -> None:
    family = get_family("heat", resolution=9, final_time=0.03, record_interval=0.01)
    seen = []

    def recording_solve(A, b, x0):
        seen.append(np.array(x0))
        result = suite_solve(A, b, method="cg", x0=x0, rtol=1e-10)
        seen.append(result.x.copy())
        return result

    params = family.sample(np.random.default_rng(0))
    trajectory, stats = family.simulate(params, recording_solve)
    assert len(stats) == 3
    np.testing.assert_array_equal(seen[2], seen[1])  # x0 of step 2 = solution of step 1
    np.testing.assert_array_equal(seen[4], seen[3])
    np.testing.assert_allclose(seen[0], params["initial_condition"][1:-1, 1:-1].ravel())


# ----------------------------------------------------------------------------------- Burgers
def _cole_hopf(x: np.ndarray, t: float, nu: float, a: float = 2.0) -> np.ndarray:
    """u = −2ν φ_x / φ with φ = a + e^{−4π²νt} cos 2πx solving the heat equation."""
    decay = np.exp(-4 * np.pi**2 * nu * t)
    return 4 * np.pi * nu * decay * np.sin(2 * np.pi * x) / (a + decay * np.cos(2 * np.pi * x))


def test_burgers_matches_the_cole_hopf_solution_with_fourth_order_in_time() -> None:
    nu = 0.1
    errors = []
    for dt in (0.025, 0.0125, None):
        family = get_family(
            "burgers", resolution=64, nu=nu, final_time=0.5, record_interval=0.05, dt=dt
        )
        x = family.coordinates()[0]
        trajectory, stats = family.simulate({"initial_condition": _cole_hopf(x, 0.0, nu)})
        assert stats == []
        errors.append(
            max(
                np.abs(trajectory[i, 0] - _cole_hopf(x, t, nu)).max()
                for i, t in enumerate(family.times())
            )
        )
    assert errors[1] < 2e-6 and errors[2] < 5e-7  # the default (CFL) step
    assert np.log2(errors[0] / errors[1]) > 3.0  # RK4 (Lawson) order, slightly reduced by stiffness


def test_burgers_conserves_the_mean() -> None:
    family = get_family("burgers", resolution=64, nu=0.01, final_time=0.5, record_interval=0.1)
    u0 = family.sample(np.random.default_rng(2))["initial_condition"] + 0.3
    trajectory, _ = family.simulate({"initial_condition": u0})
    np.testing.assert_allclose(trajectory[:, 0].astype(float).mean(axis=1), u0.mean(), atol=1e-7)
    assert np.abs(trajectory[-1, 0] - trajectory[0, 0]).max() > 0.05  # it did evolve


# ----------------------------------------------------------------------------------- Navier–Stokes
def test_navier_stokes_initial_vorticity_has_fno_amplitude() -> None:
    """FNO's generator: complex coefficients √2 σ (4π²|k|² + τ²)^(−α/2), real part kept."""
    n, alpha, tau = 32, 2.5, 7.0
    family = get_family("navier-stokes", resolution=n)
    rng = np.random.default_rng(6)
    fields = np.stack([family.sample(rng)["initial_condition"] for _ in range(300)])
    k = np.fft.fftfreq(n, d=1.0 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    terms = 2 * tau ** (2 * alpha - 2) * (4 * np.pi**2 * k2 + tau**2) ** (-alpha)
    terms[0, 0] = 0.0
    assert fields.var(axis=0).mean() == pytest.approx(terms.sum(), rel=0.08)


def test_navier_stokes_mean_vorticity_stays_zero_with_fno_forcing() -> None:
    family = get_family(
        "navier-stokes", resolution=32, nu=1e-3, dt=1e-3, final_time=0.5, record_interval=0.1
    )
    params = family.sample(np.random.default_rng(0))
    trajectory, _ = family.simulate(params)
    means = trajectory[:, 0].astype(float).mean(axis=(1, 2))
    assert np.max(np.abs(means)) < 1e-8
    assert np.abs(trajectory[-1] - trajectory[0]).max() > 1e-3


def test_navier_stokes_enstrophy_decays_without_forcing() -> None:
    family = get_family(
        "navier-stokes",
        resolution=32,
        nu=1e-3,
        dt=1e-3,
        final_time=0.5,
        record_interval=0.05,
        forcing_amplitude=0.0,
    )
    trajectory, _ = family.simulate(family.sample(np.random.default_rng(1)))
    enstrophy = (trajectory[:, 0].astype(float) ** 2).mean(axis=(1, 2))
    assert np.all(np.diff(enstrophy) < 0)
    assert enstrophy[-1] < 0.99 * enstrophy[0]


def test_navier_stokes_single_mode_decays_at_the_viscous_rate() -> None:
    nu = 0.01
    family = get_family(
        "navier-stokes",
        resolution=16,
        nu=nu,
        dt=1e-3,
        final_time=1.0,
        record_interval=0.25,
        forcing_amplitude=0.0,
    )
    x, y = family.coordinates()
    w0 = np.cos(2 * np.pi * x) * np.cos(2 * np.pi * y)  # |k|² = 2: u·∇w vanishes
    trajectory, _ = family.simulate({"initial_condition": w0})
    for frame, t in enumerate(family.times()):
        np.testing.assert_allclose(
            trajectory[frame, 0], w0 * np.exp(-nu * 8 * np.pi**2 * t), atol=1e-6
        )


def test_navier_stokes_forced_mode_approaches_its_steady_state() -> None:
    nu = 1e-2
    family = get_family(
        "navier-stokes", resolution=16, nu=nu, dt=1e-3, final_time=1.0, record_interval=0.5
    )
    x, y = family.coordinates()
    lam = 8 * np.pi**2
    f = 0.1 * (np.sin(2 * np.pi * (x + y)) + np.cos(2 * np.pi * (x + y)))
    trajectory, _ = family.simulate({"initial_condition": np.zeros_like(x)})
    for frame, t in enumerate(family.times()):
        exact = f * (1 - np.exp(-nu * lam * t)) / (nu * lam)  # w_t = −νλw + f in the forced mode
        np.testing.assert_allclose(trajectory[frame, 0], exact, atol=1e-6)


# ----------------------------------------------------------------------------------- batches
def _vorticity_steps(family, w_hat: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` steps of NavierStokes2D's scheme as plain expressions with SciPy's 2-D FFTs."""
    import scipy.fft

    s, dt = family.resolution, family.dt

    def advection(w_hat):
        psi_hat = w_hat * family._inverse_laplacian
        spectra = np.stack(
            [
                family._iky * psi_hat,
                -family._ikx * psi_hat,
                family._ikx * w_hat,
                family._iky * w_hat,
            ]
        )
        u, v, w_x, w_y = scipy.fft.irfft2(spectra, s=(s, s), axes=(-2, -1))
        return scipy.fft.rfft2(u * w_x + v * w_y) * family._dealias

    forcing_hat = scipy.fft.rfft2(family.forcing)
    half_viscous = 0.5 * dt * family.nu * family._laplacian
    explicit, implicit = 1.0 - half_viscous, 1.0 / (1.0 + half_viscous)
    for _ in range(steps):
        first = advection(w_hat)
        predicted = (explicit * w_hat + dt * (forcing_hat - first)) * implicit
        average = 0.5 * (first + advection(predicted))
        w_hat = (explicit * w_hat + dt * (forcing_hat - average)) * implicit
    return w_hat


def _vorticity_reference(family, w0: np.ndarray) -> np.ndarray:
    """The float32 trajectory ``[T, 1, s, s]`` of :func:`_vorticity_steps`, one sample."""
    import scipy.fft

    s = family.resolution
    w_hat = scipy.fft.rfft2(w0)
    frames = [w0]
    for _ in range(1, family.n_frames):
        w_hat = _vorticity_steps(family, w_hat, family.substeps)
        frames.append(scipy.fft.irfft2(w_hat, s=(s, s)))
    return np.array(frames, dtype=np.float32)[:, None]


@pytest.mark.parametrize("resolution", [16, 15])
def test_navier_stokes_batched_step_is_bitwise_the_plain_scheme_in_float64(resolution: int) -> None:
    import scipy.fft

    from pdesuite.datasets.builtin_families import _VorticityStepper

    family = get_family("navier-stokes", resolution=resolution, nu=1e-4, dt=1e-3)
    w0 = np.stack(
        [family.sample(np.random.default_rng([7, i]))["initial_condition"] for i in range(3)]
    )
    w_hat = scipy.fft.rfft2(w0)
    stepper = _VorticityStepper(family, 3)
    for _ in range(4):
        stepper.step(w_hat)
    for i in range(3):
        expected = _vorticity_steps(family, scipy.fft.rfft2(w0[i]), 4)
        assert np.array_equal(w_hat[i], expected)
    assert np.abs(w_hat - scipy.fft.rfft2(w0)).max() > 1e-3  # it did evolve


@pytest.mark.parametrize("resolution", [16, 15])
def test_navier_stokes_batch_is_bitwise_the_plain_scheme_sample_by_sample(resolution: int) -> None:
    family = get_family("navier-stokes", resolution=resolution, nu=1e-4, dt=1e-3, final_time=0.01,
                        record_interval=0.005)
    params = [family.sample(np.random.default_rng([8, i])) for i in range(3)]
    batch, stats = family.simulate_batch(params)
    assert batch.shape == (3, 3, 1, resolution, resolution) and batch.dtype == np.float32
    assert stats == [[], [], []]
    assert np.abs(batch[:, -1] - batch[:, 0]).max() > 1e-4  # it did evolve
    for i, sample in enumerate(params):
        assert np.array_equal(batch[i], _vorticity_reference(family, sample["initial_condition"]))
        assert np.array_equal(batch[i], family.simulate(sample)[0])
    # Another composition and order of the batch: still the same bits.
    reordered, _ = family.simulate_batch([params[2], params[0]])
    assert np.array_equal(reordered[0], batch[2]) and np.array_equal(reordered[1], batch[0])


@pytest.mark.parametrize("resolution", [16, 15])
def test_navier_stokes_step_without_numpy_fft_out_gives_the_same_bits(
    monkeypatch, resolution: int
) -> None:
    import scipy.fft

    from pdesuite.datasets import builtin_families as families

    family = get_family("navier-stokes", resolution=resolution, dt=1e-3)
    w0 = np.stack(
        [family.sample(np.random.default_rng([9, i]))["initial_condition"] for i in range(2)]
    )
    fast, fallback = scipy.fft.rfft2(w0), scipy.fft.rfft2(w0)
    families._VorticityStepper(family, 2).step(fast)
    monkeypatch.setattr(families, "_NUMPY_FFT_OUT", False)
    families._VorticityStepper(family, 2).step(fallback)
    assert np.array_equal(fast, fallback)


def test_navier_stokes_default_batch_size_holds_about_32k_points() -> None:
    sizes = {
        s: get_family("navier-stokes", resolution=s).default_batch_size
        for s in (16, 32, 64, 128, 256)
    }
    assert sizes == {16: 64, 32: 32, 64: 8, 128: 2, 256: 1}
    empty, stats = get_family("navier-stokes", **SMALL["navier-stokes"]).simulate_batch([])
    assert empty.shape == (0, 3, 1, 16, 16) and stats == []


def test_burgers_batch_with_a_step_per_sample_is_bitwise_sample_by_sample() -> None:
    family = get_family("burgers", resolution=64, nu=0.01, final_time=0.04, record_interval=0.02)
    params = [family.sample(np.random.default_rng([13, i])) for i in range(4)]
    substeps = [family.time_step(p["initial_condition"])[1] for p in params]
    assert len(set(substeps)) > 1  # the masked path: some samples finish their record early
    batch, stats = family.simulate_batch(params)
    assert batch.shape == (4, 3, 1, 64) and stats == [[]] * 4
    for i, sample in enumerate(params):
        assert np.array_equal(batch[i], family.simulate(sample)[0])
    # In float64: one RK4 step of a batch, row by row, against the same step of each row alone.
    v = np.fft.rfft(np.stack([p["initial_condition"] for p in params]))
    steps = [0.0031, 0.001, 0.002, 0.0025]
    batched = family._rk4_step(v, *family._rk4_coefficients(steps))
    for i, step in enumerate(steps):
        alone = family._rk4_step(v[i:i + 1], *family._rk4_coefficients([step]))
        assert np.array_equal(batched[i], alone[0])
    # ... and against the plain expressions of the scheme with a scalar step.
    import scipy.fft

    k, keep, dt = family.wavenumbers, family.keep, steps[0]
    full, half = np.exp(-family.nu * k**2 * dt), np.exp(-family.nu * k**2 * dt / 2)

    def nonlinear(u_hat):
        u = scipy.fft.irfft(u_hat * keep, n=64)
        return -0.5j * k * keep * scipy.fft.rfft(u * u)

    a = nonlinear(v[0])
    b = nonlinear(half * (v[0] + 0.5 * dt * a))
    c = nonlinear(half * v[0] + 0.5 * dt * b)
    d = nonlinear(full * v[0] + dt * half * c)
    assert np.array_equal(
        batched[0], full * v[0] + (dt / 6.0) * (full * a + 2.0 * half * (b + c) + d)
    )
    assert [
        get_family("burgers", resolution=s).default_batch_size for s in (64, 256, 1024, 8192)
    ] == [64, 32, 8, 1]


def test_default_simulate_batch_loops_over_simulate_with_one_solve_per_sample() -> None:
    family = get_family("heat", **SMALL["heat"])
    assert family.default_batch_size == 1 and family.batch_invariant
    params = [family.sample(np.random.default_rng([10, i])) for i in range(2)]
    calls = [0, 0]

    def counting(slot):
        def solve(A, b, x0):
            calls[slot] += 1
            return suite_solve(A, b, method="cg", x0=x0, rtol=1e-10)
        return solve

    batch, stats = family.simulate_batch(params, [counting(0), counting(1)])
    assert calls == [4, 4] and [len(s) for s in stats] == [4, 4]  # 0.04 / dt = 4 steps each
    for i, sample in enumerate(params):
        alone, alone_stats = family.simulate(sample, counting(i))
        assert np.array_equal(batch[i], alone)
        assert [s["iterations"] for s in stats[i]] == [s["iterations"] for s in alone_stats]
    # One callable for all samples, and the family's default solver.
    shared, _ = family.simulate_batch(params, counting(0))
    assert np.array_equal(shared, batch) and calls[0] == 4 + 4 + 8


def test_simulate_batch_checks_its_solve_argument() -> None:
    family = get_family("heat", **SMALL["heat"])
    params = [family.sample(np.random.default_rng([12, i])) for i in range(2)]
    with pytest.raises(ValueError, match="solve: expected one entry per sample \\(2\\), got 1"):
        family.simulate_batch(params, [None])
    with pytest.raises(TypeError, match="solve"):
        family.simulate_batch(params, [None, "cg"])
    with pytest.raises(TypeError, match="solve"):
        family.simulate_batch(params, "cg")


# ----------------------------------------------------------------------------------- bad config
@pytest.mark.parametrize(
    "name, config, match",
    [
        ("darcy", {"resolution": 2}, "resolution"),
        ("poisson-fe", {"resolution": 2}, "resolution"),
        ("burgers", {"nu": -0.1}, "nu"),
        ("navier-stokes", {"nu": 0.0}, "nu"),
        ("heat", {"kappa": -1.0}, "kappa"),
        ("heat", {"dt": 0.03}, "dt"),
        ("navier-stokes", {"record_interval": 3.0}, "record_interval"),
        ("helmholtz", {"delta": 1.5}, "delta"),
        ("helmholtz", {"source": "plane-wave"}, "source"),
        ("poisson-fe", {"degree": 3}, "degree"),
        ("darcy", {"viscosity": 1.0}, "config"),
        ("no-such-family", {}, "name"),
    ],
)
def test_bad_configuration_raises_value_error_naming_it(name, config, match) -> None:
    with pytest.raises(ValueError, match=match):
        get_family(name, **config)


def test_bad_params_and_names_are_reported() -> None:
    family = Darcy(8)
    with pytest.raises(ValueError, match="coefficient"):
        family.assemble({"coefficient": np.ones((7, 7))})
    with pytest.raises(TypeError, match="resolution"):
        Darcy(8.0)
    with pytest.raises(ValueError, match="already taken"):
        @register_family
        class Impostor(Darcy):
            name = "darcy"
    with pytest.raises(NotImplementedError, match="simulate"):
        get_family("heat", **SMALL["heat"]).assemble({})


def test_a_user_family_registers_and_solves() -> None:
    @register_family
    class Reaction(PDEFamily):
        name = "test-reaction"
        spd = True
        defaults = {"reaction": 1.0}
        input_names, output_names = ("c",), ("u",)

        def setup(self):
            from pdesuite.discretization import Grid
            self.grid = Grid((self.resolution, self.resolution))

        def sample(self, rng):
            return {"c": rng.uniform(0, self.options["reaction"], size=self.grid.shape)}

        def coordinates(self):
            return self.grid.mesh()

        def assemble(self, params):
            from pdesuite.discretization import fd
            return fd.diffusion(self.grid, 1.0, source=1.0, reaction=params["c"])

        def inputs(self, params):
            return params["c"][None].astype(np.float32)

        def outputs(self, params, u_full):
            return u_full.reshape(1, *self.grid.shape).astype(np.float32)

    try:
        family = get_family("test-reaction", resolution=10, reaction=5.0)
        params = family.sample(np.random.default_rng(0))
        assert family.sort_key(params).shape == (10, 10)
        u = family.direct_solve(params)
        # more reaction, smaller solution: compare with c = 0
        assert 0 < u.max() < Darcy(10).direct_solve({"coefficient": np.ones((10, 10))}).max()
        assert sp.issparse(family.assemble(params).A)
    finally:
        FAMILIES.pop("test-reaction", None)
