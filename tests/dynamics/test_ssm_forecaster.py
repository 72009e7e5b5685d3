"""SSMForecaster: shapes, a fit of exact heat-equation modes against persistence, seeding,
saving and loading, the training windows, and the input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pdesuite.dynamics.ssm import SSMForecaster, load_forecaster
from pdesuite.dynamics.ssm.training import TeacherForcingRolloutLoss, Windows

TINY = {"d_model": 8, "n_layers": 1, "d_state": 8, "frames_in": 3, "rollout_steps": 2,
        "epochs": 2, "batch_size": 4, "device": "cpu"}


def heat_modes(batch: int, frames: int, seed: int, points: int = 32,
               dt: float = 0.1) -> np.ndarray:
    """Exact solutions of u_t = u_xx on the periodic [0, 2π): Σ_k a_k e^{-k² t} sin(k x + φ_k)
    for k = 1, 2, ``[batch, frames, 1, points]``, float64."""
    rng = np.random.default_rng(seed)
    k = np.array([1.0, 2.0])
    x = np.arange(points) * 2 * np.pi / points
    t = np.arange(frames) * dt
    amplitude = rng.standard_normal((batch, 2))
    phase = 2 * np.pi * rng.random((batch, 2))
    decay = np.exp(-k ** 2 * t[:, None])                                   # (T, 2)
    shape = np.sin(k * x[:, None] + phase[:, None])                        # (B, X, 2)
    return np.einsum("bk,tk,bxk->btx", amplitude, decay, shape)[:, :, None]


def relative_l2(forecast: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``[B, T, ...]`` -> ``[T]``: mean over B of ``‖f_t − x_t‖ / ‖x_t‖``."""
    shape = (truth.shape[0], truth.shape[1], -1)
    return np.mean(np.linalg.norm((forecast - truth).reshape(shape), axis=2)
                   / np.linalg.norm(truth.reshape(shape), axis=2), axis=0)


@pytest.mark.parametrize("layer", ["s4d", "dss", "s5", "stu"])
@pytest.mark.parametrize("spatial", [(5,), (3, 4)])
def test_fit_and_predict_shapes(layer, spatial):
    trajectories = np.random.default_rng(0).standard_normal((3, 7, 2, *spatial))
    forecaster = SSMForecaster(layer, **TINY).fit(trajectories)
    x0 = trajectories[:2, :3]
    forecast = forecaster.predict(x0, steps=4)
    assert forecast.shape == (2, 5, 2, *spatial) and forecast.dtype == np.float64
    assert np.array_equal(forecast[:, 0], x0[:, -1])
    assert np.all(np.isfinite(forecast))
    assert forecaster.predict(x0, steps=0).shape == (2, 1, 2, *spatial)
    # 3 trajectories x (7 - 5 + 1) windows of 3 + 2 frames
    assert forecaster.n_windows_ == 9 and len(forecaster.history_) == 2
    assert forecaster.parameter_count > 0 and forecaster.epoch_seconds > 0


def test_tiny_forecaster_beats_persistence_on_heat_modes():
    train, test = heat_modes(8, 12, seed=0), heat_modes(4, 12, seed=1)
    forecaster = SSMForecaster("s4d", d_model=8, n_layers=1, d_state=16, frames_in=4,
                               rollout_steps=4, epochs=100, lr=1e-2, batch_size=8,
                               device="cpu").fit(train)
    forecast = forecaster.predict(test[:, :4], steps=8)
    truth = test[:, 3:]
    error = relative_l2(forecast, truth)[1:]
    persistence = relative_l2(np.repeat(truth[:, :1], 9, axis=1), truth)[1:]
    # persistence grows from 0.25 to 2.2 over the 8 steps (the modes decay by e^{-0.1 k² t})
    assert persistence[0] > 0.2 and persistence[-1] > 2.0
    # two modes per point: the last two frames determine the next, which the SSM learns to
    # within a tenth of persistence over the trained rollout (4 steps), and beyond it less well
    assert np.all(error < 0.5 * persistence)
    assert np.all(error[:4] < 0.12 * persistence[:4])


def test_the_same_seed_gives_the_same_forecaster():
    trajectories = heat_modes(4, 8, seed=2)
    first = SSMForecaster("s5", seed=3, **TINY).fit(trajectories)
    second = SSMForecaster("s5", seed=3, **TINY).fit(trajectories)
    other = SSMForecaster("s5", seed=4, **TINY).fit(trajectories)
    x0 = trajectories[:, :3]
    assert np.array_equal(first.predict(x0, 3), second.predict(x0, 3))
    assert not np.allclose(first.predict(x0, 3), other.predict(x0, 3))


@pytest.mark.parametrize("layer", ["s4d", "stu"])
def test_save_and_load_give_identical_predictions(tmp_path, layer):
    trajectories = heat_modes(4, 8, seed=3)
    forecaster = SSMForecaster(layer, **TINY).fit(trajectories)
    forecaster.save(tmp_path / "model")
    header = json.loads((tmp_path / "model" / "forecaster.json").read_text())
    assert header["params"]["layer"] == layer and header["state_shape"] == [1, 32]
    loaded = load_forecaster(tmp_path / "model")
    x0 = trajectories[:, :3]
    assert np.array_equal(loaded.predict(x0, 6), forecaster.predict(x0, 6))
    assert loaded.get_params() == forecaster.get_params()
    with pytest.raises(FileExistsError, match="overwrite"):
        forecaster.save(tmp_path / "model")
    forecaster.save(tmp_path / "model", overwrite=True)
    unfitted = SSMForecaster(layer).save(tmp_path / "unfitted")
    assert not hasattr(load_forecaster(unfitted), "network_")


def test_loading_refuses_what_is_not_a_saved_forecaster(tmp_path):
    with pytest.raises(FileNotFoundError, match="forecaster.json"):
        load_forecaster(tmp_path)
    (tmp_path / "forecaster.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a saved SSMForecaster"):
        load_forecaster(tmp_path)


def test_a_checkpoint_dir_receives_the_trainers_checkpoint(tmp_path):
    trajectories = heat_modes(3, 7, seed=4)
    SSMForecaster("s4d", checkpoint_dir=tmp_path, **TINY).fit(trajectories)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 2
    assert json.loads(checkpoint["model_config"])["forecaster"]["layer"] == "s4d"


def test_windows_and_loss_from_closed_forms():
    # frame t of trajectory i holds the constant 100 i + t
    values = 100 * np.arange(2)[:, None] + np.arange(6)[None, :]
    trajectories = torch.as_tensor(values, dtype=torch.float64)[:, :, None, None].repeat(1, 1, 1, 3)
    windows = Windows(trajectories, length=4, frames_in=2, rollout=True, stride=2)
    assert len(windows) == 4                       # starts 0 and 2 of each trajectory
    window, target = windows[3]                    # trajectory 1, start 2
    assert window.shape == (4, 3) and target.shape == (4, 3)
    assert window[:, 0].tolist() == [102, 103, 104, 105]
    assert target[:, 0].tolist() == [104, 105, 104, 105]   # frames 2, 3: teacher, then rollout
    loss = TeacherForcingRolloutLoss(channels=1, teacher_frames=2, rollout_weight=0.5)
    prediction = target.clone().unsqueeze(0)
    prediction[0, :2] *= 1.1                       # teacher part off by 10 %
    prediction[0, 2:] *= 0.8                       # rollout part off by 20 %
    assert float(loss(prediction, target.unsqueeze(0))) == pytest.approx(0.1 + 0.5 * 0.2)


def test_bad_input_is_a_clear_error():
    trajectories = heat_modes(2, 6, seed=5)
    with pytest.raises(ValueError, match="layer"):
        SSMForecaster("mamba")
    with pytest.raises(ValueError, match="frames_in"):
        SSMForecaster(frames_in=0)
    with pytest.raises(ValueError, match="rollout_steps"):
        SSMForecaster(rollout_steps=-1)
    with pytest.raises(TypeError, match="trunk"):
        SSMForecaster(trunk=torch.nn.Identity())
    with pytest.raises(RuntimeError, match="fit"):
        SSMForecaster().predict(trajectories[:, :3], 2)
    with pytest.raises(ValueError, match="trajectories"):
        SSMForecaster(frames_in=6).fit(trajectories)
    with pytest.raises(ValueError, match="trajectories"):
        SSMForecaster(**TINY).fit(trajectories[:, :, 0])
    bad = trajectories.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SSMForecaster(**TINY).fit(bad)
    forecaster = SSMForecaster("s4d", **TINY).fit(trajectories)
    with pytest.raises(ValueError, match="x0"):
        forecaster.predict(trajectories[:, :2], 2)          # 2 frames, frames_in is 3
    with pytest.raises(ValueError, match="x0"):
        forecaster.predict(trajectories[:, :3, :, :16], 2)  # another grid
    with pytest.raises(ValueError, match="steps"):
        forecaster.predict(trajectories[:, :3], -1)
