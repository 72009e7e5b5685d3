"""Snapshot pairs, delay embedding, splits by trajectory, the HDF5 reader, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from pdesuite.dynamics.koopman import (
    EDMD,
    SnapshotPairs,
    delay_embed,
    read_trajectories,
    snapshot_pairs,
    train_test_split,
)


def test_pairs_from_an_array_of_trajectories_are_consecutive_states():
    trajectories = np.arange(2 * 4 * 3, dtype=float).reshape(2, 4, 3)
    pairs = snapshot_pairs(trajectories)
    assert pairs.X.shape == (6, 3) and pairs.state_shape == (3,)
    np.testing.assert_array_equal(pairs.X, np.concatenate([trajectories[0, :3],
                                                           trajectories[1, :3]]))
    np.testing.assert_array_equal(pairs.Y, np.concatenate([trajectories[0, 1:],
                                                           trajectories[1, 1:]]))
    np.testing.assert_array_equal(pairs.trajectory, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(pairs.time, [0, 1, 2, 0, 1, 2])


def test_field_states_are_flattened_and_keep_their_shape():
    trajectories = np.random.default_rng(0).standard_normal((3, 5, 2, 4, 4))
    pairs = snapshot_pairs(trajectories)
    assert pairs.X.shape == (12, 32) and pairs.state_shape == (2, 4, 4)
    np.testing.assert_array_equal(pairs.Y[0], trajectories[0, 1].reshape(-1))


def test_delay_embedding_stacks_windows_oldest_first():
    signal = np.arange(6, dtype=float)[:, None]
    embedded = delay_embed(signal, 3)
    np.testing.assert_array_equal(embedded, [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]])
    pairs = snapshot_pairs(signal[None], delays=3)
    np.testing.assert_array_equal(pairs.X, embedded[:-1])
    np.testing.assert_array_equal(pairs.Y, embedded[1:])
    two = np.stack([np.arange(4.0), 10 + np.arange(4.0)], axis=1)
    np.testing.assert_array_equal(delay_embed(two, 2)[0], [0, 10, 1, 11])


def test_ragged_trajectories_need_the_flag():
    trajectories = [np.zeros((5, 2)), np.ones((3, 2))]
    with pytest.raises(ValueError, match="ragged=True"):
        snapshot_pairs(trajectories)
    pairs = snapshot_pairs(trajectories, ragged=True)
    assert pairs.n_pairs == 4 + 2


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 1, 3)), "snapshot"),  # one snapshot per trajectory
    (np.full((1, 4, 2), np.nan), "NaN"),
    (np.array([[[0.0, np.inf], [1.0, 2.0]]]), "NaN or inf"),
    (np.zeros((4, 2)), "at least 3 axes"),
    ([], "no trajectories"),
    ([np.zeros((3, 2)), np.zeros((3, 4))], "state shape"),
])
def test_bad_trajectories_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        snapshot_pairs(bad)


def test_bad_input_reaches_the_estimator_as_the_same_error():
    with pytest.raises(ValueError, match="snapshot"):
        EDMD().fit(np.zeros((3, 1, 2)))
    with pytest.raises(TypeError, match="real numbers"):
        EDMD().fit(np.zeros((1, 3, 2), dtype=complex))
    with pytest.raises(ValueError, match=r"delays=21 needs|at least 21"):
        snapshot_pairs(np.zeros((1, 20, 1)), delays=20)


def test_pairs_given_directly():
    X = np.random.default_rng(1).standard_normal((7, 2, 3))
    pairs = SnapshotPairs.from_arrays(X, 2 * X)
    assert pairs.state_shape == (2, 3) and pairs.X.shape == (7, 6)
    with pytest.raises(ValueError, match="NaN"):
        SnapshotPairs.from_arrays(X, X * np.nan)


def test_split_by_trajectory_is_seeded_disjoint_and_complete():
    trajectories = np.arange(10, dtype=float)[:, None, None] * np.ones((10, 4, 1))
    train, test = train_test_split(trajectories, test_fraction=0.3, seed=3)
    again_train, again_test = train_test_split(trajectories, test_fraction=0.3, seed=3)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(test, again_test)
    assert train.shape == (7, 4, 1) and test.shape == (3, 4, 1)
    labels = sorted(train[:, 0, 0].tolist() + test[:, 0, 0].tolist())
    assert labels == list(range(10))
    other = train_test_split(trajectories, test_fraction=0.3, seed=4)[1]
    assert not np.array_equal(other, test)
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(trajectories, test_fraction=1.0)
    as_list_train, as_list_test = train_test_split(list(trajectories), 0.3, seed=3)
    assert isinstance(as_list_train, list) and len(as_list_test) == 3


def test_read_a_generated_burgers_file_and_forecast_it(tmp_path):
    from pdesuite.datasets import generate

    path = generate("burgers", 20, tmp_path / "burgers.h5", progress=False, resolution=16,
                    final_time=0.5, record_interval=0.05)
    data = read_trajectories(path)
    assert data.trajectories.shape == (20, 11, 1, 16)
    assert data.frame_interval == pytest.approx(0.05) and data.family == "burgers"
    import h5py

    with h5py.File(path, "r") as handle:
        np.testing.assert_array_equal(data.trajectories, handle["trajectories"][()])
    train, test = train_test_split(data.trajectories, test_fraction=0.25, seed=0)
    model = EDMD(rank=8).fit(train)
    forecast = model.predict(test[:, 0], 10)
    assert forecast.shape == (5, 11, 1, 16)
    np.testing.assert_array_equal(forecast[:, 0], test[:, 0])

    def relative(a, b):
        return np.linalg.norm(a - b) / np.linalg.norm(b)

    # the decaying viscous flow is far from persistence after ten frames; the linear model
    # follows it (measured: 0.15 against persistence's 7.0)
    assert relative(forecast[:, 10], test[:, 10]) < 0.05 * relative(test[:, 0], test[:, 10])
    subset = read_trajectories(path, samples=[4, 1])
    np.testing.assert_array_equal(subset.trajectories, data.trajectories[[4, 1]])
    with pytest.raises(ValueError, match="samples"):
        read_trajectories(path, samples=[20])


def test_a_steady_file_is_refused(tmp_path):
    from pdesuite.datasets import generate

    path = generate("darcy", 2, tmp_path / "darcy.h5", progress=False, resolution=9)
    with pytest.raises(ValueError, match="steady"):
        read_trajectories(path)
