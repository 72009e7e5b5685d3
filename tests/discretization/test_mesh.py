"""Tests of pdesuite.discretization.mesh: conventions, topology, constructors, refinement,
location."""

import basix
import numpy as np
import pytest

from pdesuite.discretization.mesh import Mesh

CELL_TYPES = ["triangle", "quadrilateral"]


def _shoelace(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_reference_conventions_match_basix(cell_type):
    cell = getattr(basix.CellType, cell_type)
    mesh = Mesh.rectangle(1, 1, cell_type=cell_type)
    assert mesh.reference_edges.tolist() == [list(e) for e in basix.topology(cell)[1]]
    # A mesh that is the reference cell itself is accepted, with the reference area.
    reference = Mesh(basix.geometry(cell), np.arange(mesh.vertices_per_cell)[None], cell_type)
    assert reference.cell_volumes()[0] == pytest.approx(0.5 if cell_type == "triangle" else 1.0)
    if cell_type == "quadrilateral":
        # The unit square's one cell lists its corners in basix's tensor order, not
        # counter-clockwise.
        np.testing.assert_allclose(mesh.points[mesh.cells[0]], basix.geometry(cell))


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_rectangle_numbering_counts_and_tags(cell_type):
    nx, ny = 4, 3
    mesh = Mesh.rectangle(nx, ny, ((-1.0, 3.0), (0.0, 1.5)), cell_type)
    xs, ys = np.linspace(-1, 3, nx + 1), np.linspace(0, 1.5, ny + 1)
    # Vertex (i, j) sits at entry i * (ny + 1) + j: the C order of a grid with axis 0 = x.
    np.testing.assert_allclose(mesh.points.reshape(nx + 1, ny + 1, 2)[2, 1], [xs[2], ys[1]])
    assert mesh.n_vertices == (nx + 1) * (ny + 1)
    assert mesh.n_cells == nx * ny * (2 if cell_type == "triangle" else 1)
    assert mesh.area() == pytest.approx(4.0 * 1.5)
    assert len(mesh.boundary_facets) == 2 * (nx + ny)
    assert len(mesh.boundary_vertices) == 2 * (nx + ny)
    # Euler characteristic of a disc: V - E + F = 1.
    assert mesh.n_vertices - mesh.n_edges + mesh.n_cells == 1
    assert {k: len(v) for k, v in mesh.facet_tags.items()} == {
        "left": ny,
        "right": ny,
        "bottom": nx,
        "top": nx,
    }
    np.testing.assert_allclose(mesh.facet_midpoints(mesh.facet_tags["left"])[:, 0], -1.0)
    np.testing.assert_allclose(mesh.facet_midpoints(mesh.facet_tags["top"])[:, 1], 1.5)
    assert mesh.hmax() == pytest.approx(np.hypot(1.0, 0.5))  # the diagonal of a 1 x 0.5 cell


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_edges_and_cell_edges_are_consistent(cell_type):
    mesh = Mesh.l_shape(3, cell_type)
    edges = mesh.edges
    assert np.all(edges[:, 0] < edges[:, 1])
    keys = edges[:, 0] * mesh.n_vertices + edges[:, 1]
    assert np.all(np.diff(keys) > 0)  # unique and sorted
    local = mesh.reference_edges
    for k, (a, b) in enumerate(local):
        expected = np.sort(mesh.cells[:, [a, b]], axis=1)
        np.testing.assert_array_equal(edges[mesh.cell_edges[:, k]], expected)
    # Interior edges touch two cells, boundary ones one: 2E - B = (edges per cell) * M.
    assert 2 * mesh.n_edges - len(mesh.boundary_facets) == local.shape[0] * mesh.n_cells


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_l_shape_geometry(cell_type):
    mesh = Mesh.l_shape(4, cell_type)
    assert mesh.area() == pytest.approx(3.0)
    assert mesh.n_vertices - mesh.n_edges + mesh.n_cells == 1
    lengths = np.linalg.norm(
        np.diff(mesh.points[mesh.edges[mesh.boundary_facets]], axis=1)[:, 0], axis=1
    )
    assert lengths.sum() == pytest.approx(8.0)
    reentrant = mesh.facet_midpoints(mesh.facet_tags["reentrant"])
    assert len(reentrant) == 2 * 4
    assert np.all(np.isclose(reentrant[:, 0], 0.0) | np.isclose(reentrant[:, 1], 0.0))
    with pytest.raises(ValueError, match="points"):
        mesh.locate(np.array([[0.5, 0.5]]))  # inside the removed quadrant


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_rectangle_with_hole(cell_type):
    n = 6
    mesh = Mesh.rectangle_with_hole(n, radius=0.3, cell_type=cell_type)
    hole = mesh.facet_tags["hole"]
    assert len(hole) == 4 * n and len(mesh.facet_tags["outer"]) == 4 * n
    hole_vertices = np.unique(mesh.edges[hole])
    np.testing.assert_allclose(np.linalg.norm(mesh.points[hole_vertices] - 0.5, axis=1), 0.3)
    ring = mesh.points[hole_vertices] - 0.5
    polygon = mesh.points[hole_vertices][np.argsort(np.arctan2(ring[:, 1], ring[:, 0]))]
    assert mesh.area() == pytest.approx(1.0 - _shoelace(polygon))
    assert mesh.n_vertices - mesh.n_edges + mesh.n_cells == 0  # an annulus
    with pytest.raises(ValueError, match="radius"):
        Mesh.rectangle_with_hole(4, radius=0.6)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_refine_is_nested_and_keeps_tags(cell_type):
    coarse = Mesh.rectangle_with_hole(4, cell_type=cell_type)
    fine = coarse.refine()
    assert fine.n_cells == 4 * coarse.n_cells
    extra = coarse.n_cells if cell_type == "quadrilateral" else 0
    assert fine.n_vertices == coarse.n_vertices + coarse.n_edges + extra
    np.testing.assert_array_equal(fine.points[: coarse.n_vertices], coarse.points)
    assert fine.area() == pytest.approx(coarse.area(), rel=1e-13)
    np.testing.assert_allclose(
        np.bincount(fine.parent_cells, weights=fine.cell_volumes()),
        coarse.cell_volumes(),
        rtol=1e-12,
    )
    # Every fine vertex of a child lies in its parent cell.
    for v in range(fine.vertices_per_cell):
        ref = coarse.reference_coordinates(fine.parent_cells, fine.points[fine.cells[:, v]])
        assert coarse._outside_distance(ref).max() < 1e-12
    for name, facets in coarse.facet_tags.items():
        assert len(fine.facet_tags[name]) == 2 * len(facets)
    assert set(fine.facet_tags["hole"]) | set(fine.facet_tags["outer"]) == set(fine.boundary_facets)


def test_refine_rectangle_halves_h():
    mesh = Mesh.rectangle(3, 5)
    fine = mesh.refine()
    assert fine.hmax() == pytest.approx(mesh.hmax() / 2)
    assert len(fine.boundary_facets) == 2 * len(mesh.boundary_facets)


def test_cell_volumes_of_a_general_quadrilateral():
    # Tensor order v0, v1, v2, v3; as a polygon it is v0, v1, v3, v2.
    points = np.array([[0.0, 0.0], [2.0, 0.2], [0.3, 1.0], [1.7, 1.9]])
    mesh = Mesh(points, [[0, 1, 2, 3]], "quadrilateral")
    assert mesh.cell_volumes()[0] == pytest.approx(_shoelace(points[[0, 1, 3, 2]]))


def test_validation_errors():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="cells"):
        Mesh(square, [[0, 2, 1]])  # clockwise triangle
    with pytest.raises(ValueError, match="cells"):
        Mesh(square, [[0, 1, 1]])  # degenerate
    with pytest.raises(ValueError, match="cells"):
        Mesh(
            square, [[0, 1, 3, 2]], "quadrilateral"
        )  # counter-clockwise order is a bow-tie in tensor order
    with pytest.raises(ValueError, match="cells"):
        Mesh(square, [[0, 1, 4]])  # out of range
    with pytest.raises(ValueError, match="cells"):
        Mesh(square, [[0, 1, 2, 3]])  # wrong width for triangles
    with pytest.raises(ValueError, match="cells"):
        Mesh(square, [[0.0, 1.0, 2.0]])  # not integers
    with pytest.raises(ValueError, match="points"):
        Mesh(square[:, :1], [[0, 1, 2]])
    with pytest.raises(ValueError, match="points"):
        Mesh(np.where(square == 1.0, np.nan, square), [[0, 1, 2]])
    with pytest.raises(ValueError, match="cell_type"):
        Mesh(square, [[0, 1, 2]], "hexahedron")
    with pytest.raises(ValueError, match="nx"):
        Mesh.rectangle(0, 2)
    with pytest.raises(ValueError, match="bounds"):
        Mesh.rectangle(2, 2, ((1.0, 0.0), (0.0, 1.0)))


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_locate_random_points(cell_type):
    rng = np.random.default_rng(7)
    mesh = Mesh.rectangle_with_hole(5, cell_type=cell_type)
    candidates = rng.uniform(0.0, 1.0, size=(400, 2))
    points = candidates[np.linalg.norm(candidates - 0.5, axis=1) > 0.3]
    cells, ref = mesh.locate(points)
    assert mesh._outside_distance(ref).max() <= 1e-10
    # Map the reference points forward with the cell's own geometry and get the points back.
    x = mesh.points[mesh.cells[cells]]
    xi, eta = ref[:, :1], ref[:, 1:]
    if cell_type == "triangle":
        mapped = x[:, 0] + xi * (x[:, 1] - x[:, 0]) + eta * (x[:, 2] - x[:, 0])
    else:
        mapped = (
            (1 - xi) * (1 - eta) * x[:, 0]
            + xi * (1 - eta) * x[:, 1]
            + (1 - xi) * eta * x[:, 2]
            + xi * eta * x[:, 3]
        )
    np.testing.assert_allclose(mapped, points, atol=1e-12)
    # Vertices (shared by several cells) are found too.
    cells, _ = mesh.locate(mesh.points)
    assert np.all(cells >= 0)
    with pytest.raises(ValueError, match="points"):
        mesh.locate(np.array([[0.5, 0.5]]))  # in the hole
    with pytest.raises(ValueError, match="points"):
        mesh.locate(np.array([[1.5, 0.5]]))


def test_boundary_facets_where_and_tags():
    mesh = Mesh.rectangle(4, 4)
    facets = mesh.tag_boundary("corner", lambda x: (x[:, 0] < 0.3) & (x[:, 1] < 0.01))
    np.testing.assert_allclose(mesh.facet_midpoints(facets), [[0.125, 0.0]])
    np.testing.assert_array_equal(mesh.facets("corner"), facets)
    with pytest.raises(ValueError, match="facets"):
        mesh.facets("nowhere")
    with pytest.raises(ValueError, match="predicate"):
        mesh.boundary_facets_where(lambda x: np.ones(3, dtype=bool))
