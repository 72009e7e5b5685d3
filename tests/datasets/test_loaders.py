"""PDEDataset (splits, cached normalisation, lazy reads) and the readers of other formats."""

import pickle

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from pdesuite.datasets.loaders import PDEDataset, split_ranges
from pdesuite.datasets.readers import (
    convert,
    infer_grid_convention,
    read_fno_mat,
    read_neuraloperator_pt,
    read_pdebench_hdf5,
    read_pdebench_trajectories,
)
from pdesuite.datasets.storage import (
    create_dataset_file,
    grid_convention,
    open_dataset,
    schema_attrs,
)


def _steady_file(path, n=10, seed=0):
    rng = np.random.default_rng(seed)
    # Channels on very different scales, so a wrong axis in the statistics shows.
    inputs = (rng.standard_normal((n, 2, 4, 4)) * np.array([1.0, 50.0])[None, :, None, None]
              + np.array([3.0, -7.0])[None, :, None, None]).astype(np.float32)
    outputs = (rng.standard_normal((n, 1, 4, 4)) * 0.01 + 2.0).astype(np.float32)
    attrs = schema_attrs(family="toy", config={}, seed=seed, n=n, kind="steady")
    with create_dataset_file(path, n=n, fields={"inputs": ((2, 4, 4), np.float32),
                                                "outputs": ((1, 4, 4), np.float32)},
                             attrs=attrs, coordinates=np.zeros((2, 4, 4))) as handle:
        handle["inputs"][...] = inputs
        handle["outputs"][...] = outputs
        handle.attrs["complete"] = True
    return inputs, outputs


def _stats(values, rows, axis=(0, 2, 3)):
    chunk = values[rows].astype(np.float64)
    return chunk.mean(axis=axis), chunk.std(axis=axis)


def test_split_ranges():
    assert split_ranges(10) == {"train": range(0, 8), "val": range(8, 9), "test": range(9, 10),
                                "all": range(0, 10)}
    assert split_ranges(10, (5, 3, 2))["test"] == range(8, 10)
    assert split_ranges(10, (0.5, 0.2, 0.1))["test"] == range(7, 8)
    with pytest.raises(ValueError, match="more than"):
        split_ranges(10, (8, 2, 1))
    with pytest.raises(ValueError, match="at most 1"):
        split_ranges(10, (0.8, 0.3, 0.1))
    with pytest.raises(ValueError, match="train, val, test"):
        split_ranges(10, (0.5, 0.5))


def test_split_lengths_and_values(tmp_path):
    path = tmp_path / "d.h5"
    inputs, outputs = _steady_file(path)
    lengths = {split: len(PDEDataset(path, split=split, split_fractions=(0.6, 0.2, 0.2)))
               for split in ("train", "val", "test", "all")}
    assert lengths == {"train": 6, "val": 2, "test": 2, "all": 10}
    dataset = PDEDataset(path, split="test", split_fractions=(0.6, 0.2, 0.2))
    x, y = dataset[0]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (2, 4, 4)
    assert y.shape == (1, 4, 4)
    mean_in, std_in = _stats(inputs, slice(0, 6))
    mean_out, std_out = _stats(outputs, slice(0, 6))
    expected_x = (inputs[8] - mean_in[:, None, None]) / std_in[:, None, None]
    expected_y = (outputs[8] - mean_out[:, None, None]) / std_out[:, None, None]
    np.testing.assert_allclose(x.numpy(), expected_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y.numpy(), expected_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dataset.denormalize_targets(y).numpy(), outputs[8], rtol=1e-6)
    np.testing.assert_array_equal(dataset[-1][0].numpy(), dataset[1][0].numpy())
    raw = PDEDataset(path, split="all", normalize=False)
    np.testing.assert_array_equal(raw[3][0].numpy(), inputs[3])
    np.testing.assert_array_equal(raw[3][1].numpy(), outputs[3])
    with pytest.raises(IndexError):
        dataset[2]
    with pytest.raises(ValueError, match="split"):
        PDEDataset(path, split="holdout")


def test_statistics_are_cached_in_the_file_and_reused(tmp_path):
    path = tmp_path / "d.h5"
    inputs, _ = _steady_file(path)
    PDEDataset(path, split="val")  # the first use computes the train statistics and stores them
    with h5py.File(path, "r") as handle:
        group = handle["stats"]["train_0_8"]
        mean_in, std_in = _stats(inputs, slice(0, 8))
        np.testing.assert_allclose(group["inputs_mean"][()], mean_in, rtol=1e-12)
        np.testing.assert_allclose(group["inputs_std"][()], std_in, rtol=1e-12)
    # Replace the cache by known values: a new dataset must read them, not recompute.
    with h5py.File(path, "r+") as handle:
        group = handle["stats"]["train_0_8"]
        group["inputs_mean"][...] = 0.0
        group["inputs_std"][...] = 2.0
    x, _ = PDEDataset(path, split="train")[5]
    np.testing.assert_allclose(x.numpy(), inputs[5] / 2.0, rtol=1e-6)
    open_dataset(path).close()  # the stats group keeps the file valid


def test_statistics_stay_in_memory_when_the_file_cannot_be_written(tmp_path):
    path = tmp_path / "d.h5"
    inputs, _ = _steady_file(path)
    # Another read-only handle on the file: HDF5 refuses to reopen it for writing.
    with h5py.File(path, "r"):
        with pytest.warns(UserWarning, match="could not be cached"):
            dataset = PDEDataset(path, split="train")
    mean_in, std_in = _stats(inputs, slice(0, 8))
    np.testing.assert_allclose(dataset.stats["inputs_mean"], mean_in, rtol=1e-12)
    np.testing.assert_allclose(dataset.stats["inputs_std"], std_in, rtol=1e-12)
    with h5py.File(path, "r") as handle:
        assert "stats" not in handle


def test_pickles_without_the_file_handle_and_works_with_a_dataloader(tmp_path):
    path = tmp_path / "d.h5"
    _steady_file(path)
    dataset = PDEDataset(path, split="all")
    first = dataset[0]
    assert dataset._file is not None
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._file is None and isinstance(clone, torch.utils.data.Dataset)
    np.testing.assert_array_equal(clone[0][0].numpy(), first[0].numpy())
    batches = list(torch.utils.data.DataLoader(dataset, batch_size=4))
    assert [tuple(b[0].shape) for b in batches] == [(4, 2, 4, 4), (4, 2, 4, 4), (2, 2, 4, 4)]


def test_time_dependent_files(tmp_path):
    path = tmp_path / "t.h5"
    rng = np.random.default_rng(1)
    trajectories = rng.standard_normal((6, 5, 1, 3, 3)).astype(np.float32) * 4 + 1
    attrs = schema_attrs(family="toy", config={}, seed=0, n=6, kind="time-dependent")
    with create_dataset_file(path, n=6, fields={"trajectories": ((5, 1, 3, 3), np.float32)},
                             attrs=attrs, coordinates=np.zeros((2, 3, 3))) as handle:
        handle["trajectories"][...] = trajectories
        handle.attrs["complete"] = True
    dataset = PDEDataset(path, split="train", split_fractions=(4, 1, 1), input_steps=2)
    x, y = dataset[1]
    assert x.shape == (2, 3, 3) and y.shape == (3, 3, 3)
    mean = trajectories[:4].astype(np.float64).mean()
    std = trajectories[:4].astype(np.float64).std()
    np.testing.assert_allclose(x.numpy(), (trajectories[1, :2, 0] - mean) / std, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(dataset.denormalize_targets(y).numpy(), trajectories[1, 2:, 0],
                               rtol=1e-5)
    with pytest.raises(ValueError, match="input_steps"):
        PDEDataset(path, input_steps=5)


# ---------------------------------------------------------------------------------- readers


def test_read_neuraloperator_pt(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 8, 8)).astype(np.float32)
    y = rng.standard_normal((3, 8, 8)).astype(np.float32)
    path = tmp_path / "darcy_train_8.pt"
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y.astype(np.float64))}, path)
    inputs, outputs = read_neuraloperator_pt(path)
    assert inputs.shape == (3, 1, 8, 8) and outputs.dtype == np.float32
    np.testing.assert_array_equal(inputs[:, 0], x)
    np.testing.assert_array_equal(outputs[:, 0], y)
    channels = tmp_path / "channels.pt"
    torch.save({"x": torch.zeros(2, 3, 5), "y": torch.zeros(2, 1, 5)}, channels)
    assert read_neuraloperator_pt(channels, spatial_dims=1)[0].shape == (2, 3, 5)
    torch.save({"x": torch.zeros(2, 5)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"bad.pt.*missing key"):
        read_neuraloperator_pt(tmp_path / "bad.pt")


def test_read_pdebench_darcy_and_trajectory_layouts(tmp_path):
    rng = np.random.default_rng(3)
    nu = rng.uniform(0.1, 1, (4, 6, 6))
    tensor = rng.standard_normal((4, 1, 6, 6))
    darcy = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    with h5py.File(darcy, "w") as handle:
        handle["nu"] = nu.astype(np.float32)
        handle["tensor"] = tensor.astype(np.float32)
        handle["x-coordinate"] = np.linspace(0, 1, 6)
        handle["y-coordinate"] = np.linspace(0, 2, 6)
    inputs, outputs = read_pdebench_hdf5(darcy)
    np.testing.assert_array_equal(inputs, nu[:, None].astype(np.float32))
    np.testing.assert_array_equal(outputs, tensor.astype(np.float32))

    burgers = tmp_path / "1D_Burgers.hdf5"
    series = rng.standard_normal((3, 5, 7)).astype(np.float32)  # [n, T, x]
    with h5py.File(burgers, "w") as handle:
        handle["tensor"] = series
    first, last = read_pdebench_hdf5(burgers)
    np.testing.assert_array_equal(first[:, 0], series[:, 0])
    np.testing.assert_array_equal(last[:, 0], series[:, -1])
    assert read_pdebench_trajectories(burgers).shape == (3, 5, 1, 7)

    groups = tmp_path / "2D_diff-react.h5"
    data = rng.standard_normal((2, 4, 3, 3, 2)).astype(np.float32)  # per sample [T, x, y, C]
    with h5py.File(groups, "w") as handle:
        for i in range(2):
            handle.create_group(f"{i:04d}")["data"] = data[i]
    trajectories = read_pdebench_trajectories(groups)
    assert trajectories.shape == (2, 4, 2, 3, 3)
    np.testing.assert_array_equal(trajectories[1, 2, 1], data[1, 2, :, :, 1])

    other = tmp_path / "cfd.h5"
    with h5py.File(other, "w") as handle:
        handle["density"] = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"cfd.h5.*density"):
        read_pdebench_hdf5(other)


def test_read_fno_mat(tmp_path):
    rng = np.random.default_rng(4)
    coeff = rng.choice([3.0, 12.0], size=(3, 5, 5))
    sol = rng.standard_normal((3, 5, 5))
    path = tmp_path / "piececonst_r421_N1024_smooth1.mat"
    scipy.io.savemat(path, {"coeff": coeff, "sol": sol, "Kcoeff": coeff})
    inputs, outputs = read_fno_mat(path)
    np.testing.assert_array_equal(inputs, coeff[:, None].astype(np.float32))
    np.testing.assert_array_equal(outputs, sol[:, None].astype(np.float32))
    ns = tmp_path / "ns.mat"
    scipy.io.savemat(ns, {"a": rng.standard_normal((2, 4, 4)),
                          "u": rng.standard_normal((2, 4, 4, 6))})
    a, u = read_fno_mat(ns, input_key="a", output_key="u")
    assert a.shape == (2, 1, 4, 4) and u.shape == (2, 6, 4, 4)
    with pytest.raises(ValueError, match=r"ns.mat.*coeff"):
        read_fno_mat(ns)


def test_convert_writes_a_valid_pdesuite_file(tmp_path):
    rng = np.random.default_rng(5)
    source = tmp_path / "fno.mat"
    coeff, sol = rng.standard_normal((5, 6, 6)), rng.standard_normal((5, 6, 6))
    scipy.io.savemat(source, {"coeff": coeff, "sol": sol})
    out = convert(source, tmp_path / "fno.h5")
    with open_dataset(out) as handle:
        assert handle.attrs["family"] == "converted-fno" and handle.attrs["source_format"] == "fno"
        np.testing.assert_array_equal(handle["outputs"][()], sol[:, None].astype(np.float32))
        # no zero boundary on both ends: a grid of spacing 1 / n, points i / n
        assert handle.attrs["grid_convention"] == "cell"
        np.testing.assert_allclose(handle["coordinates"][1, 0], np.arange(6) / 6)
    x, y = PDEDataset(out, split="all", normalize=False)[4]
    np.testing.assert_array_equal(x.numpy(), coeff[4][None].astype(np.float32))
    with pytest.raises(FileExistsError, match="fno.h5"):
        convert(source, out)

    burgers = tmp_path / "burgers.hdf5"
    with h5py.File(burgers, "w") as handle:
        handle["tensor"] = rng.standard_normal((3, 4, 8)).astype(np.float32)
        handle["x-coordinate"] = np.linspace(-1, 1, 8)
    converted = convert(burgers, tmp_path / "b.h5")
    with open_dataset(converted) as handle:
        assert handle.attrs["kind"] == "time-dependent"
        assert handle.attrs["grid_convention"] == "cell"
        assert handle["trajectories"].shape == (3, 4, 1, 8)
        np.testing.assert_allclose(handle["coordinates"][0], np.linspace(-1, 1, 8))
    torch.save({"x": torch.ones(2, 4, 4), "y": torch.zeros(2, 4, 4)}, tmp_path / "no.pt")
    converted = convert(tmp_path / "no.pt", tmp_path / "no.h5")
    assert PDEDataset(converted, split="all")[0][0].shape == (1, 4, 4)
    with pytest.raises(ValueError, match="format"):
        convert(tmp_path / "no.pt", tmp_path / "x.h5", format="zarr")


def _darcy_like(n, s, seed, both_ends):
    """Solutions ``[n, s, s]`` that vanish at the first row and column, and also at the last
    ones when ``both_ends`` (a Dirichlet solution on a node grid ``i / (s - 1)``)."""
    rng = np.random.default_rng(seed)
    t = np.arange(s) / (s - 1 if both_ends else s)
    bump = np.sin(np.pi * t)[:, None] * np.sin(np.pi * t)[None, :]
    return (rng.uniform(0.5, 2.0, (n, 1, 1)) * bump).astype(np.float32)


def test_convert_infers_the_cell_grid_of_neuraloperator_data_and_takes_an_override(tmp_path):
    # neuraloperator's Darcy sets: binary coefficients, solutions zero at x = 0 only (points i / n)
    x = torch.from_numpy(np.random.default_rng(6).random((4, 8, 8)) > 0.5)
    y = torch.from_numpy(_darcy_like(4, 8, seed=6, both_ends=False))
    torch.save({"x": x, "y": y}, tmp_path / "darcy_train_8.pt")
    assert infer_grid_convention(y.numpy(), 2) == "cell"
    out = convert(tmp_path / "darcy_train_8.pt", tmp_path / "cell.h5")
    with open_dataset(out) as handle:
        assert handle.attrs["grid_convention"] == "cell" and grid_convention(handle) == "cell"
        np.testing.assert_allclose(handle["coordinates"][0, :, 0], np.arange(8) / 8)
        np.testing.assert_allclose(handle["coordinates"][1, 0], np.arange(8) / 8)
    forced = convert(tmp_path / "darcy_train_8.pt", tmp_path / "node.h5", grid_convention="node")
    with open_dataset(forced) as handle:
        assert handle.attrs["grid_convention"] == "node"
        np.testing.assert_allclose(handle["coordinates"][0, :, 0], np.linspace(0, 1, 8))
    with pytest.raises(ValueError, match="grid_convention: must be 'node', 'cell' or None"):
        convert(tmp_path / "darcy_train_8.pt", tmp_path / "bad.h5", grid_convention="mesh")


def test_convert_infers_a_node_grid_from_a_solution_zero_on_both_ends(tmp_path):
    sol = _darcy_like(3, 9, seed=7, both_ends=True).astype(np.float64)
    sol[:, [0, -1], :] = 0.0
    sol[:, :, [0, -1]] = 0.0  # exactly zero, as a solver that stores the boundary writes it
    scipy.io.savemat(tmp_path / "darcy_r9.mat", {"coeff": np.ones((3, 9, 9)), "sol": sol})
    assert infer_grid_convention(sol, 2) == "node"
    out = convert(tmp_path / "darcy_r9.mat", tmp_path / "node.h5")
    with open_dataset(out) as handle:
        assert handle.attrs["grid_convention"] == "node"
        np.testing.assert_allclose(handle["coordinates"][1, 0], np.linspace(0, 1, 9))
    # periodic 1-D trajectories [n, T, C, x] and all-zero data: the cell grid
    periodic = np.random.default_rng(8).standard_normal((2, 3, 1, 16))
    assert infer_grid_convention(periodic, 1) == "cell"
    assert infer_grid_convention(np.zeros((2, 1, 4, 4)), 2) == "cell"


def test_a_corrupt_chunk_is_an_error_naming_the_file_and_the_sample(tmp_path):
    from tests.datasets.test_storage import flip_chunk_byte

    path = tmp_path / "corrupt.h5"
    _steady_file(path, n=10)
    dataset = PDEDataset(path, split="all", normalize=False)
    dataset.close()
    flip_chunk_byte(path, "outputs", 4)
    dataset = PDEDataset(path, split="all", normalize=False)
    assert dataset.read(3)[1].shape == dataset.read(5)[1].shape
    with pytest.raises(OSError, match=rf"{path}: sample 4 of 'outputs'"):
        dataset.read(4)
