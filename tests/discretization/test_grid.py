"""Grid: coordinates, ordering, boundary masks, conversions and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from pdesuite.discretization.grid import Grid


def test_node_grid_coordinates_and_spacing():
    grid = Grid((5, 3), [(0, 2), (-1, 1)])
    assert grid.ndim == 2 and grid.shape == (5, 3) and grid.size == 15
    assert grid.spacing == (0.5, 1.0)
    assert grid.cell_volume == 0.5
    np.testing.assert_array_equal(grid.coords[0], [0, 0.5, 1, 1.5, 2])
    np.testing.assert_array_equal(grid.coords[1], [-1, 0, 1])


def test_cell_grid_coordinates_and_spacing():
    grid = Grid(4, (0, 2), centering="cell")
    assert grid.spacing == (0.5,)
    np.testing.assert_array_equal(grid.coords[0], [0.25, 0.75, 1.25, 1.75])
    one_cell = Grid((1, 2), centering="cell")
    np.testing.assert_array_equal(one_cell.coords[0], [0.5])


def test_single_bounds_pair_applies_to_every_axis():
    grid = Grid((3, 3, 3), (0, 4))
    assert grid.bounds == ((0.0, 4.0),) * 3
    assert Grid((3, 3)).bounds == ((0.0, 1.0), (0.0, 1.0))


def test_points_are_in_c_order():
    grid = Grid((3, 4), [(0, 2), (0, 3)])
    points = grid.points()
    assert points.shape == (12, 2)
    # the last axis varies fastest
    np.testing.assert_array_equal(points[:4], [[0, 0], [0, 1], [0, 2], [0, 3]])
    np.testing.assert_array_equal(points[4], [1, 0])
    mesh = grid.mesh()
    assert mesh.shape == (2, 3, 4)
    np.testing.assert_array_equal(mesh[0][2, 3], 2.0)
    np.testing.assert_array_equal(mesh[1][2, 3], 3.0)
    # point k is the node at np.unravel_index(k, shape)
    i, j = np.unravel_index(7, grid.shape)
    np.testing.assert_array_equal(points[7], [grid.coords[0][i], grid.coords[1][j]])
    field = grid.evaluate(lambda p: p[:, 0] + 10 * p[:, 1])
    assert field.shape == (3, 4) and field[1, 2] == 1 + 20


def test_boundary_masks_2d_and_3d():
    grid = Grid((5, 4))
    boundary = grid.boundary_mask()
    assert boundary.sum() == 5 * 4 - 3 * 2
    np.testing.assert_array_equal(grid.interior_mask(), ~boundary)
    left = grid.boundary_mask("x-")
    assert left.sum() == 4 and left[0].all() and not left[1:].any()
    top = grid.boundary_mask("y+")
    assert top.sum() == 5 and top[:, -1].all()
    cube = Grid((4, 5, 6))
    assert cube.boundary_mask().sum() == 4 * 5 * 6 - 2 * 3 * 4
    assert cube.boundary_mask("z+").sum() == 4 * 5
    assert Grid(5).boundary_mask().tolist() == [True, False, False, False, True]


def test_periodic_grid_excludes_right_end():
    grid = Grid.periodic((8, 4), [(0, 2 * np.pi), (0, 1)])
    assert grid.spacing == pytest.approx((2 * np.pi / 8, 0.25))
    assert grid.bounds[0][1] == pytest.approx(2 * np.pi * 7 / 8)
    np.testing.assert_allclose(grid.coords[1], [0, 0.25, 0.5, 0.75])


def test_vector_field_round_trip_with_channels():
    rng = np.random.default_rng(0)
    grid = Grid((4, 5))
    field = rng.standard_normal((3, 4, 5))
    vector = grid.to_vector(field)
    assert vector.shape == (60,)
    # channel-major: channel 0 first, C order within it
    np.testing.assert_array_equal(vector[:20], field[0].ravel())
    np.testing.assert_array_equal(vector[20 + 7], field[1][np.unravel_index(7, (4, 5))])
    np.testing.assert_array_equal(grid.to_field(vector, channels=3), field)
    single = field[0]
    np.testing.assert_array_equal(grid.to_vector(single), single.ravel())
    np.testing.assert_array_equal(grid.to_field(single.ravel()), single[None])


def test_equality_and_hash():
    assert Grid((3, 3)) == Grid([3, 3], [(0, 1), (0, 1)])
    assert Grid((3, 3)) != Grid((3, 3), centering="cell")
    assert len({Grid((3, 3)), Grid((3, 3)), Grid((3, 4))}) == 2


# ----------------------------------------------------------------------------- bad input
def test_bad_centering():
    with pytest.raises(ValueError, match="centering"):
        Grid((4, 4), centering="vertex")


@pytest.mark.parametrize("bounds, problem", [
    ([(0, 1), (1, 1)], "hi > lo"),
    ([(0, 1), (2, 1)], "hi > lo"),
    ([(0, np.nan), (0, 1)], "finite"),
    ([(0, 1)] * 3, "shape"),
    ("abc", "bounds"),
])
def test_bad_bounds(bounds, problem):
    with pytest.raises(ValueError, match=f"bounds.*{problem}" if problem != "bounds" else "bounds"):
        Grid((4, 4), bounds)


def test_bad_shape():
    with pytest.raises(ValueError, match="shape.*at least 2"):
        Grid((4, 1))
    with pytest.raises(ValueError, match="shape.*at least 1"):
        Grid((4, 0), centering="cell")
    with pytest.raises(ValueError, match="shape.*1 to 3"):
        Grid((3, 3, 3, 3))
    with pytest.raises(TypeError, match="shape"):
        Grid((4.0, 4))


def test_bad_side_and_conversion_inputs():
    grid = Grid((4, 5))
    with pytest.raises(ValueError, match="side.*'z-'"):
        grid.boundary_mask("z-")
    with pytest.raises(ValueError, match="field"):
        grid.to_vector(np.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match="vector"):
        grid.to_field(np.zeros(21))
    with pytest.raises(ValueError, match="vector"):
        grid.to_field(np.zeros(20), channels=2)
    with pytest.raises(ValueError, match="channels"):
        grid.to_field(np.zeros(20), channels=0)
    with pytest.raises(ValueError, match="func"):
        grid.evaluate(lambda p: np.zeros(3))
