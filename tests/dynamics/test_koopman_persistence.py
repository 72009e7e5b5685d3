"""Saving and loading Koopman estimators: identical forecasts, safe files, clear refusals."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from pdesuite.dynamics.koopman import (
    EDMD,
    CallableDictionary,
    FourierFeatures,
    HankelDMD,
    KernelEDMD,
    MeasurePreservingEDMD,
    Monomials,
    RadialBasis,
    RandomFourierFeatures,
    load_estimator,
)
from pdesuite.dynamics.koopman.persistence import ARRAYS_NAME, JSON_NAME, WEIGHTS_NAME

J = np.array([[0.9, -0.1], [0.0, 0.8]])


def linear_map_trajectories(n: int = 40, steps: int = 6, seed: int = 0) -> np.ndarray:
    """``x_{t+1} = J x_t`` (rows: ``x J^T``) from uniform initial states, ``[n, steps+1, 2]``."""
    states = [np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 2))]
    for _ in range(steps):
        states.append(states[-1] @ J.T)
    return np.stack(states, axis=1)


def nonlinear_trajectories(seed: int = 1) -> np.ndarray:
    """A damped, weakly nonlinear oscillator map, ``[12, 25, 1, 3]``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (12, 3))
    frames = [x]
    for _ in range(24):
        x = 0.95 * np.stack([np.cos(0.3) * x[:, 0] - np.sin(0.3) * x[:, 1],
                             np.sin(0.3) * x[:, 0] + np.cos(0.3) * x[:, 1],
                             0.8 * x[:, 2] + 0.1 * x[:, 0] ** 2], axis=1)
        frames.append(x)
    return np.stack(frames, axis=1)[:, :, None, :]


ESTIMATORS = {
    "edmd-rbf": lambda: EDMD(RadialBasis(12, kernel="exponential", seed=3), ridge=1e-8),
    "edmd-rank": lambda: EDMD(FourierFeatures(2), rank=6),
    "edmd-rff": lambda: EDMD(RandomFourierFeatures(15, seed=2), ridge=1e-6),
    "hankel": lambda: HankelDMD(delays=4, rank=6),
    "kernel": lambda: KernelEDMD("gaussian", rank=10),
    "kernel-poly": lambda: KernelEDMD("polynomial", degree=3),
    "mpedmd": lambda: MeasurePreservingEDMD(Monomials(2), rank=6),
}


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_a_loaded_estimator_forecasts_exactly_as_the_saved_one(tmp_path, name):
    data = nonlinear_trajectories()
    model = ESTIMATORS[name]().fit(data[:9])
    x0 = data[9:, :model.delays] if model.delays > 1 else data[9:, 0]
    epsilon = float(np.median(model.residuals))
    model.save(tmp_path / "model")
    loaded = load_estimator(tmp_path / "model")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(x0, 15), model.predict(x0, 15))
    np.testing.assert_array_equal(loaded.predict(x0, 15, certified=epsilon),
                                  model.predict(x0, 15, certified=epsilon))
    np.testing.assert_array_equal(loaded.eigenvalues, model.eigenvalues)
    np.testing.assert_array_equal(loaded.residuals, model.residuals)
    np.testing.assert_array_equal(loaded.modes, model.modes)
    grid = np.array([0.5 + 0.1j, 0.9, -0.2j])
    np.testing.assert_array_equal(loaded.pseudospectrum(grid), model.pseudospectrum(grid))


def test_loaded_edmd_keeps_the_closed_form_spectrum_and_its_hyperparameters(tmp_path):
    model = EDMD(Monomials(4)).fit(linear_map_trajectories())
    model.save(tmp_path / "m")
    loaded = load_estimator(tmp_path / "m")
    expected = sorted(0.9 ** i * 0.8 ** j for i, j in itertools.product(range(5), repeat=2)
                      if i + j <= 4)
    np.testing.assert_allclose(np.sort(loaded.eigenvalues.real), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(loaded.eigenvalues.imag, 0.0, atol=1e-10)
    header = json.loads((tmp_path / "m" / JSON_NAME).read_text())
    attributes = header["estimator"]["attributes"]
    assert header["estimator"]["class"] == "EDMD" and header["fitted"] is True
    assert attributes["ridge"] == 0.0 and attributes["rank"] is None
    assert attributes["dictionary"] == {"dictionary": {"class": "Monomials",
                                                       "attributes": {"degree": 4}}}
    assert loaded.dictionary_.n_features == 15 and loaded.state_shape_ == (2,)


def test_an_unfitted_estimator_round_trips_its_hyperparameters(tmp_path):
    HankelDMD(delays=7, rank=3, ridge=0.5).save(tmp_path / "h")
    loaded = load_estimator(tmp_path / "h")
    assert (loaded.delays, loaded.rank, loaded.ridge) == (7, 3, 0.5)
    with pytest.raises(RuntimeError, match="fit"):
        loaded.predict(np.zeros((1, 7, 2)), 1)
    data = nonlinear_trajectories()[:, :, 0]
    np.testing.assert_array_equal(loaded.fit(data).eigenvalues,
                                  HankelDMD(delays=7, rank=3, ridge=0.5).fit(data).eigenvalues)


def test_callables_cannot_be_saved_and_nothing_is_written(tmp_path):
    data = linear_map_trajectories()
    with_function = EDMD(CallableDictionary(lambda x: np.c_[x, x ** 2], [0, 1])).fit(data)
    with pytest.raises(TypeError, match="dictionary.*CallableDictionary"):
        with_function.save(tmp_path / "a")
    assert not (tmp_path / "a").exists()
    with_kernel = KernelEDMD(lambda a, b: (1 + a @ b.T) ** 2).fit(data)
    with pytest.raises(TypeError, match="kernel: a callable"):
        with_kernel.save(tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_existing_directory_is_kept_unless_overwrite(tmp_path):
    data = linear_map_trajectories()
    EDMD(rank=1).fit(data).save(tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite"):
        EDMD(rank=2).fit(data).save(tmp_path / "m")
    assert load_estimator(tmp_path / "m").rank == 1
    EDMD(rank=2).fit(data).save(tmp_path / "m", overwrite=True)
    assert load_estimator(tmp_path / "m").koopman_matrix.shape == (2, 2)


def test_loading_refuses_foreign_classes_pickles_and_other_files(tmp_path):
    EDMD(Monomials(2)).fit(linear_map_trajectories()).save(tmp_path / "m")
    header_path = tmp_path / "m" / JSON_NAME
    header = json.loads(header_path.read_text())
    for field, value, message in (("class", "os.system", "unknown estimator class"),
                                  ("dictionary", "Popen", "unknown dictionary class")):
        tampered = json.loads(json.dumps(header))
        if field == "class":
            tampered["estimator"]["class"] = value
        else:
            tampered["estimator"]["attributes"]["dictionary"]["dictionary"]["class"] = value
        header_path.write_text(json.dumps(tampered))
        with pytest.raises(ValueError, match=message):
            load_estimator(tmp_path / "m")
    header_path.write_text(json.dumps(header))
    # an object array would need pickle to load: refused by allow_pickle=False
    arrays = dict(np.load(tmp_path / "m" / ARRAYS_NAME))
    arrays["estimator._K"] = np.array([{"x": 1}], dtype=object)
    np.savez(tmp_path / "m" / ARRAYS_NAME, **arrays)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_estimator(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="estimator.json"):
        load_estimator(tmp_path / "nothing")
    header_path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a saved Koopman estimator"):
        load_estimator(tmp_path / "m")


def test_deep_koopman_round_trip_uses_a_weights_only_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    from pdesuite.dynamics.koopman.deep import DeepKoopman, DeepKoopmanLoss

    data = nonlinear_trajectories()[:, :, 0]
    model = DeepKoopman(latent_dim=4, hidden=(16,), epochs=3, batch_size=64, seed=5,
                        loss=DeepKoopmanLoss(entropy=0.02), device="cpu",
                        dtype=torch.float64).fit(data[:9])
    model.save(tmp_path / "deep")
    assert (tmp_path / "deep" / WEIGHTS_NAME).is_file()
    state = torch.load(tmp_path / "deep" / WEIGHTS_NAME, weights_only=True)
    assert set(state) == set(model.model_.state_dict())
    loaded = load_estimator(tmp_path / "deep")
    np.testing.assert_array_equal(loaded.predict(data[9:, 0], 12), model.predict(data[9:, 0], 12))
    assert loaded.loss == DeepKoopmanLoss(entropy=0.02) and loaded.dtype is torch.float64
    np.testing.assert_array_equal(loaded.loss_history_, model.loss_history_)
    (tmp_path / "deep" / WEIGHTS_NAME).unlink()
    with pytest.raises(FileNotFoundError, match="weights"):
        load_estimator(tmp_path / "deep")
