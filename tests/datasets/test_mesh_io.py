"""The ``mesh`` group of a dataset file: written by the FE families, read back as the same space,
an external mesh read the same way, and clear errors for files without one or a broken one."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pdesuite.datasets import generate, get_family
from pdesuite.datasets.mesh_io import MeshInfo, read_mesh, write_mesh
from pdesuite.datasets.storage import create_dataset_file, schema_attrs
from pdesuite.discretization import LagrangeSpace, Mesh


def _generate(tmp_path, name, n=4, **config):
    path = tmp_path / f"{name}.h5"
    generate(name, n, out=path, progress=False, solver="direct", **config)
    return path


def _external_file(path, info: MeshInfo, n: int = 3, seed: int = 0):
    """A dataset file of ``n`` samples ``u = a·x + b·y`` on ``info``'s DoFs, written by hand."""
    rng = np.random.default_rng(seed)
    points = info.dof_coordinates
    coefficients = rng.uniform(-1, 1, (n, 2))
    outputs = (coefficients @ points.T)[:, None].astype(np.float32)  # [n, 1, ndofs]
    inputs = np.zeros((n, 2, info.ndofs), dtype=np.float32)
    inputs[:, 0] = 1.0
    inputs[:, 1, info.dirichlet_dofs] = outputs[:, 0, info.dirichlet_dofs]
    attrs = schema_attrs(family="external", config={}, seed=seed, n=n, kind="steady",
                         grid_convention="mesh")
    with create_dataset_file(path, n=n, fields={"inputs": (inputs.shape[1:], np.float32),
                                                "outputs": (outputs.shape[1:], np.float32)},
                             attrs=attrs, coordinates=points, mesh=info) as handle:
        handle["inputs"][...] = inputs
        handle["outputs"][...] = outputs
        handle.attrs["complete"] = True
    return inputs, outputs


def test_poisson_file_holds_the_family_mesh(tmp_path):
    path = _generate(tmp_path, "poisson-fe", n=4, resolution=4, chunk_size=2)
    family = get_family("poisson-fe", resolution=4)
    info = read_mesh(path)
    np.testing.assert_array_equal(info.mesh.points, family.mesh.points)
    np.testing.assert_array_equal(info.mesh.cells, family.mesh.cells)
    assert (info.cell_type, info.degree, info.ndofs) == ("triangle", 1, 3 * 16 + 4 * 4 + 1)
    np.testing.assert_array_equal(info.dirichlet_dofs, family.space.boundary_dofs())
    # the L-shape's boundary has 16 edges of length 1/4 (perimeter 8): 16 vertices
    assert info.dirichlet_dofs.size == 32
    assert info.boundary_channel == 1
    # one coarse mesh, at resolution 2 (resolution 1 is below the coarsest kept)
    assert [m.n_cells for m in info.coarse_meshes] == [Mesh.l_shape(2).n_cells]
    with h5py.File(path, "r") as handle:
        np.testing.assert_array_equal(handle["mesh"]["dof_coordinates"][()],
                                      handle["coordinates"][()])
        x, y = handle["inputs"][()], handle["outputs"][()]
        assert sorted(handle["mesh"]) == ["cells", "coarse", "dirichlet_dofs", "dof_coordinates",
                                          "points"]
    # the boundary channel holds the solution's Dirichlet values exactly
    np.testing.assert_array_equal(x[:, 1, info.dirichlet_dofs], y[:, 0, info.dirichlet_dofs])


def test_thermal_p2_file_holds_only_the_dirichlet_sides(tmp_path):
    path = _generate(tmp_path, "thermal-fe", n=2, resolution=4, degree=2)
    family = get_family("thermal-fe", resolution=4, degree=2)
    info = read_mesh(path)
    assert info.degree == 2 and info.ndofs == family.space.ndofs
    expected = np.unique(np.concatenate([family.space.boundary_dofs(family.facets[side])
                                         for side in ("left", "right", "hole")]))
    np.testing.assert_array_equal(info.dirichlet_dofs, expected)
    # the DoFs inside the bottom and top sides are Neumann DoFs, not Dirichlet ones
    neumann = np.concatenate(list(family.neumann_dofs.values()))
    assert neumann.size > 0 and not np.isin(neumann, info.dirichlet_dofs).any()
    # the facets recovered from the DoFs are the left, right and hole facets
    facets = info.dirichlet_facets()
    np.testing.assert_array_equal(
        facets, np.unique(np.concatenate([family.facets[s] for s in ("left", "right", "hole")])))
    np.testing.assert_array_equal(info.space.boundary_dofs(facets), info.dirichlet_dofs)


def test_grid_family_file_has_no_mesh(tmp_path):
    from pdesuite.datasets.loaders import PDEDataset

    path = _generate(tmp_path, "darcy", n=2, resolution=5)
    with h5py.File(path, "r") as handle:
        assert "mesh" not in handle
    with pytest.raises(ValueError, match="has no 'mesh' group"):
        read_mesh(path)
    dataset = PDEDataset(path, split="all", normalize=False)
    assert not dataset.has_mesh
    with pytest.raises(ValueError, match="has no 'mesh' group"):
        dataset.mesh_info


@pytest.mark.parametrize("cell_type", ["triangle", "quadrilateral"])
def test_external_mesh_reads_the_same_way(tmp_path, cell_type):
    from pdesuite.datasets.loaders import PDEDataset

    mesh = Mesh.rectangle(3, 2, cell_type=cell_type)
    space = LagrangeSpace(mesh, 2)
    info = MeshInfo(mesh, 2, space.boundary_dofs("left"))
    path = tmp_path / "external.h5"
    _, outputs = _external_file(path, info)
    dataset = PDEDataset(path, split="all", normalize=False)
    back = dataset.mesh_info
    np.testing.assert_array_equal(back.mesh.points, mesh.points)
    np.testing.assert_array_equal(back.mesh.cells, mesh.cells)
    np.testing.assert_array_equal(back.dirichlet_dofs, space.boundary_dofs("left"))
    assert (back.cell_type, back.degree, back.coarse_meshes, back.boundary_channel) == (
        cell_type, 2, (), None)
    # the samples are the linear functions on the DoF points of the read-back space
    np.testing.assert_allclose(dataset[1][1].numpy()[0], outputs[1, 0])


def test_hand_written_group_without_dof_coordinates(tmp_path):
    mesh = Mesh.l_shape(2)
    path = tmp_path / "hand.h5"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("mesh")
        group["points"] = mesh.points
        group["cells"] = mesh.cells.astype(np.int32)
        group["dirichlet_dofs"] = np.array([3, 0, 3])
        group["coarse/0/points"] = Mesh.l_shape(1).points
        group["coarse/0/cells"] = Mesh.l_shape(1).cells
        group.attrs["cell_type"] = "triangle"
        group.attrs["degree"] = 1
    info = read_mesh(path)
    np.testing.assert_array_equal(info.dirichlet_dofs, [0, 3])  # sorted, unique
    assert info.ndofs == mesh.n_vertices and info.coarse_meshes[0].n_cells == 6
    assert [s.ndofs for s in info.spaces(2)] == [Mesh.l_shape(1).n_vertices, mesh.n_vertices]
    with pytest.raises(ValueError, match="levels: 3 levels need 2 coarse meshes"):
        info.spaces(3)


def test_broken_groups_are_one_line_errors(tmp_path):
    mesh = Mesh.rectangle(2, 2)
    info = MeshInfo(mesh, 1, [0, 1, 2])
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as handle:
        write_mesh(handle, info)
        with pytest.raises(ValueError, match="already has a 'mesh' group"):
            write_mesh(handle, info)
    with h5py.File(path, "r+") as handle:
        coordinates = handle["mesh"]["dof_coordinates"]
        coordinates[...] = coordinates[()][::-1]
    with pytest.raises(ValueError, match="dof_coordinates .* do not match"):
        read_mesh(path)
    with h5py.File(path, "r+") as handle:
        del handle["mesh"]["cells"]
    with pytest.raises(ValueError, match="'mesh' group: missing cells"):
        read_mesh(path)
    with h5py.File(path, "r+") as handle:
        handle["mesh"]["cells"] = mesh.cells
        handle["mesh"].attrs["cell_type"] = "hexagon"
    with pytest.raises(ValueError, match="cell_type: expected 'triangle' or 'quadrilateral'"):
        read_mesh(path)
    with pytest.raises(ValueError, match=r"dirichlet_dofs: indices must lie in \[0, 8\]"):
        MeshInfo(mesh, 1, [9])
    with pytest.raises(ValueError, match="degree: expected 1 or 2"):
        MeshInfo(mesh, 3, [])


def test_dirichlet_dofs_off_whole_facets_are_refused():
    mesh = Mesh.rectangle(2, 2)
    corner = MeshInfo(mesh, 1, [0])  # a single vertex is not a facet's DoFs
    with pytest.raises(ValueError, match="dirichlet_dofs: 1 DoF"):
        corner.dirichlet_facets()
    assert MeshInfo(mesh, 1, []).dirichlet_facets().size == 0


def test_mesh_of_another_size_than_the_samples(tmp_path):
    from pdesuite.datasets.loaders import PDEDataset

    path = tmp_path / "external.h5"
    _external_file(path, MeshInfo(Mesh.rectangle(2, 2), 1, [0, 1, 2]))
    with h5py.File(path, "r+") as handle:
        del handle["mesh"]
        write_mesh(handle, MeshInfo(Mesh.rectangle(3, 3), 1, [0]))
    with pytest.raises(ValueError, match="the mesh has 16 DoFs but the samples have spatial "
                                         r"shape \(9,\)"):
        PDEDataset(path, split="all", normalize=False).mesh_info
