"""Shard files: buffered slabs and the merge give the same file whatever the slab size."""

import h5py
import numpy as np

from pdesuite.datasets import generate
from pdesuite.datasets.generation import shards


def _read(path):
    with h5py.File(path, "r") as handle:
        return {name: handle[name][()] for name in ("inputs", "outputs", "parameters/coefficient",
                                                    "solver/iterations", "solver/position",
                                                    "solver/block", "solve_order")}


def test_slabs_of_one_sample_give_the_same_file_as_whole_blocks(tmp_path, monkeypatch):
    settings = dict(resolution=10, seed=2, chunk_size=5, solver="recycle", progress=False)
    whole = _read(generate("darcy", 12, tmp_path / "whole.h5", **settings))
    monkeypatch.setattr(shards, "SLAB_BYTES", 1)  # every sample written and merged alone
    alone = _read(generate("darcy", 12, tmp_path / "alone.h5", **settings))
    for name, array in whole.items():
        assert np.array_equal(array, alone[name]), name
    # The samples solved at positions 0..11 sit at their draw indices.
    assert np.array_equal(whole["solver/position"][whole["solve_order"]], np.arange(12))
    assert np.array_equal(whole["solver/block"][whole["solve_order"]], np.arange(12) // 5)
