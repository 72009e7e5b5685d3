"""The HDF5 schema: files that follow it open; broken ones fail with the file and the problem."""

import json

import h5py
import numpy as np
import pytest

from pdesuite.datasets.storage import (
    REQUIRED_ATTRS,
    SOLVER_STATS,
    create_dataset_file,
    describe,
    grid_convention,
    open_dataset,
    schema_attrs,
)


def _write(path, n=6, spatial=(5, 5), compression="gzip", complete=True, time_dependent=False):
    rng = np.random.default_rng(0)
    attrs = schema_attrs(family="toy", config={"resolution": spatial[0]}, seed=3, n=n,
                         kind="time-dependent" if time_dependent else "steady",
                         units={"u": "m"}, order="sorted", sort_method="greedy", sort_time=0.25)
    fields = {"inputs": ((2, *spatial), np.float32)}
    if time_dependent:
        fields["trajectories"] = ((4, 1, *spatial), np.float32)
    else:
        fields["outputs"] = ((1, *spatial), np.float32)
    coordinates = np.stack(np.meshgrid(*[np.linspace(0, 1, s) for s in spatial], indexing="ij"))
    data = {name: rng.standard_normal((n, *shape)).astype(np.float32)
            for name, (shape, _) in fields.items()}
    with create_dataset_file(path, n=n, fields=fields, attrs=attrs, coordinates=coordinates,
                             parameters={"kappa": ((), np.float64), "field": (spatial, np.float64)},
                             compression=compression) as handle:
        for name, values in data.items():
            handle[name][...] = values
        handle["parameters"]["kappa"][...] = np.arange(n)
        handle["solver"]["iterations"][...] = np.arange(n) + 10
        handle.attrs["complete"] = complete
    return data


@pytest.mark.parametrize("compression", ["gzip", "lzf", None])
def test_round_trip_and_layout(tmp_path, compression):
    path = tmp_path / "ok.h5"
    data = _write(path, compression=compression)
    with open_dataset(path) as handle:
        np.testing.assert_array_equal(handle["inputs"][()], data["inputs"])
        np.testing.assert_array_equal(handle["outputs"][()], data["outputs"])
        assert handle["inputs"].chunks == (1, 2, 5, 5)  # one chunk per sample
        assert handle["inputs"].compression == compression
        assert handle["parameters"]["field"].shape == (6, 5, 5)
        assert handle["solver"]["iterations"][()].tolist() == list(range(10, 16))
        assert set(handle["solver"]) == set(SOLVER_STATS)
        assert handle["solver"]["converged"].dtype == np.bool_
        summary = describe(handle)
    assert summary["n"] == 6 and summary["kind"] == "steady"
    assert summary["inputs_shape"] == (6, 2, 5, 5) and summary["coordinates_shape"] == (2, 5, 5)
    attrs = summary["attrs"]
    assert set(REQUIRED_ATTRS) <= set(attrs)
    assert attrs["config"] == {"resolution": 5} and attrs["units"] == {"u": "m"}
    assert attrs["seed"] == 3 and attrs["sort_time"] == 0.25 and attrs["schema_version"] == 1


def test_time_dependent_file_needs_trajectories(tmp_path):
    path = tmp_path / "traj.h5"
    _write(path, time_dependent=True)
    with open_dataset(path) as handle:
        assert handle["trajectories"].shape == (6, 4, 1, 5, 5)
    with h5py.File(path, "r+") as handle:
        del handle["trajectories"]
    with pytest.raises(ValueError, match="trajectories"):
        open_dataset(path)


def test_missing_dataset_names_file_and_dataset(tmp_path):
    path = tmp_path / "missing.h5"
    _write(path)
    with h5py.File(path, "r+") as handle:
        del handle["outputs"]
    with pytest.raises(ValueError) as error:
        open_dataset(path)
    assert str(path) in str(error.value) and "'outputs'" in str(error.value)


def test_missing_attribute_and_bad_json(tmp_path):
    path = tmp_path / "attrs.h5"
    _write(path)
    with h5py.File(path, "r+") as handle:
        del handle.attrs["seed"]
        handle.attrs["config"] = "{not json"
    with pytest.raises(ValueError, match=r"seed.*|config.*JSON") as error:
        open_dataset(path)
    assert "'seed'" in str(error.value) and "config" in str(error.value)


def test_wrong_rank_and_wrong_length(tmp_path):
    path = tmp_path / "rank.h5"
    _write(path)
    with h5py.File(path, "r+") as handle:
        del handle["inputs"]
        handle.create_dataset("inputs", data=np.zeros((6, 25), dtype=np.float32))
    with pytest.raises(ValueError, match=r"'inputs' has rank 2"):
        open_dataset(path)
    with h5py.File(path, "r+") as handle:
        del handle["inputs"]
        handle.create_dataset("inputs", data=np.zeros((5, 2, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"'inputs' has 5 samples but attribute n=6"):
        open_dataset(path)
    with h5py.File(path, "r+") as handle:
        del handle["inputs"]
        handle.create_dataset("inputs", data=np.zeros((6, 2, 5, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="spatial shape"):
        open_dataset(path)


def test_truncated_file_raises_oserror_naming_it(tmp_path):
    path = tmp_path / "cut.h5"
    _write(path, n=40, spatial=(16, 16), compression=None)
    size = path.stat().st_size
    with open(path, "r+b") as stream:
        stream.truncate(size // 2)
    with pytest.raises(OSError) as error:
        open_dataset(path)
    assert str(path) in str(error.value)
    assert "truncated" in str(error.value)


def test_not_hdf5_missing_and_directory(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(OSError, match="notes.h5"):
        open_dataset(text)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        open_dataset(tmp_path / "nope.h5")
    with pytest.raises(ValueError, match="directory"):
        open_dataset(tmp_path)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["u"] = np.zeros(3)
    with pytest.raises(ValueError, match="not a pdesuite dataset"):
        open_dataset(foreign)


def test_incomplete_file_is_refused(tmp_path):
    path = tmp_path / "half.h5"
    _write(path, complete=False)
    with pytest.raises(ValueError, match="incomplete"):
        open_dataset(path)


def test_schema_attrs_and_bad_arguments(tmp_path):
    attrs = schema_attrs(family="f", config={"a": [1, 2]}, seed=1, n=2, kind="steady")
    assert json.loads(attrs["config"]) == {"a": [1, 2]} and attrs["complete"] is False
    with pytest.raises(ValueError, match="kind"):
        schema_attrs(family="f", config={}, seed=1, n=2, kind="transient")
    with pytest.raises(ValueError, match="compression"):
        create_dataset_file(tmp_path / "c.h5", n=1, fields={}, attrs={}, compression="zstd")
    with pytest.raises(ValueError, match="fields"):
        create_dataset_file(tmp_path / "c.h5", n=1, fields={"u": ((3,), np.float32)}, attrs={})
    with pytest.raises(ValueError, match="mode"):
        open_dataset(tmp_path / "c.h5", mode="w")


# ---- checksums -------------------------------------------------------------------------------


def flip_chunk_byte(path, name, sample):
    """Flip one byte in the middle of the stored chunk of ``sample`` of dataset ``name``."""
    with h5py.File(path, "r") as handle:
        item = handle[name]
        info = item.id.get_chunk_info_by_coord((sample,) + (0,) * (item.ndim - 1))
        assert info.chunk_offset[0] == sample
        offset = info.byte_offset + info.size // 2
    with open(path, "r+b") as stream:
        stream.seek(offset)
        byte = stream.read(1)[0]
        stream.seek(offset)
        stream.write(bytes([byte ^ 0xFF]))


def test_every_per_sample_dataset_carries_a_checksum(tmp_path):
    path = tmp_path / "c.h5"
    _write(path, compression="gzip")
    with h5py.File(path, "r") as handle:
        items = [handle["inputs"], handle["outputs"], *handle["parameters"].values(),
                 *handle["solver"].values()]
        for item in items:
            assert item.fletcher32 and item.chunks is not None, item.name
        assert handle["inputs"].compression == "gzip"


@pytest.mark.parametrize("compression", ["gzip", None])
def test_a_flipped_byte_is_an_error_naming_the_file_and_the_sample(tmp_path, compression):
    from pdesuite.datasets.storage import read_rows, read_sample

    path = tmp_path / f"flip_{compression}.h5"
    data = _write(path, compression=compression)
    flip_chunk_byte(path, "outputs", 3)
    with h5py.File(path, "r") as handle:
        np.testing.assert_array_equal(read_sample(handle["outputs"], 2, path), data["outputs"][2])
        with pytest.raises(OSError) as error:
            read_sample(handle["outputs"], 3, path)
        assert f"{path}: sample 3 of 'outputs'" in str(error.value)
        with pytest.raises(OSError, match=r"sample 3 of 'outputs'"):
            read_rows(handle["outputs"], 0, 6, path)
        # Without the helper HDF5 still refuses the chunk, but its message names neither.
        with pytest.raises(OSError) as bare:
            handle["outputs"][3]
        assert str(path) not in str(bare.value)
    # The default check reads the first and last sample only; "all" verifies every chunk.
    with open_dataset(path) as handle:
        assert handle.attrs["n"] == 6
    with pytest.raises(OSError, match=rf"{path}: sample 3 of 'outputs'"):
        open_dataset(path, check_data="all")
    flip_chunk_byte(path, "inputs", 0)
    with pytest.raises(OSError, match=rf"{path}: sample 0 of 'inputs'"):
        open_dataset(path)


def test_check_data_all_reads_a_good_file_and_refuses_a_bad_value(tmp_path):
    path = tmp_path / "all.h5"
    _write(path, n=3)
    with open_dataset(path, check_data="all") as handle:
        assert handle["outputs"].shape[0] == 3
    with pytest.raises(ValueError, match="check_data"):
        open_dataset(path, check_data="some")


# ------------------------------------------------------------------------------ grid convention

@pytest.mark.parametrize("family, expected", [
    ("darcy", "node"), ("helmholtz", "node"), ("heat", "node"), ("darcy-3d", "node"),
    ("burgers", "cell"), ("navier-stokes", "cell"), ("poisson-obstacles-3d", "cell"),
    ("poisson-fe", "mesh"), ("thermal-fe", "mesh"), ("not-a-registered-family", None)])
def test_schema_attrs_take_the_grid_convention_from_the_family(family, expected):
    attrs = schema_attrs(family=family, config={}, seed=0, n=1, kind="steady")
    assert attrs.get("grid_convention") == expected
    explicit = schema_attrs(family=family, config={}, seed=0, n=1, kind="steady",
                            grid_convention="cell")
    assert explicit["grid_convention"] == "cell"  # an explicit value wins
    with pytest.raises(ValueError,
                       match=r"grid_convention: must be one of \['node', 'cell', 'mesh'\]"):
        schema_attrs(family=family, config={}, seed=0, n=1, kind="steady", grid_convention="centre")


def test_generate_writes_the_grid_convention_and_it_reads_back(tmp_path):
    from pdesuite.datasets import generate

    path = generate("darcy", 2, tmp_path / "d.h5", resolution=5, seed=1, progress=False)
    with open_dataset(path) as handle:
        assert handle.attrs["grid_convention"] == "node" and grid_convention(handle) == "node"
        assert describe(handle)["attrs"]["grid_convention"] == "node"


def test_files_without_the_attribute_read_as_before(tmp_path):
    _write(tmp_path / "old.h5")  # family "toy" declares none: no attribute, as in older files
    with open_dataset(tmp_path / "old.h5") as handle:
        assert "grid_convention" not in handle.attrs and grid_convention(handle) == "node"
    with h5py.File(tmp_path / "old.h5", "r+") as handle:
        del handle["coordinates"]
        handle["coordinates"] = np.zeros((7, 2))  # FE DoF points [n_points, 2]
    with open_dataset(tmp_path / "old.h5") as handle:
        assert grid_convention(handle) == "mesh"


def test_a_bad_grid_convention_attribute_is_a_schema_error(tmp_path):
    _write(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "bad.h5", "r+") as handle:
        handle.attrs["grid_convention"] = "staggered"
    with pytest.raises(ValueError, match=r"bad.h5.*'grid_convention' is 'staggered'"):
        open_dataset(tmp_path / "bad.h5")
