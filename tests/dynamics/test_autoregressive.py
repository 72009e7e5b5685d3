"""The autoregressive baseline: a one-step grid operator trained by the Trainer, rolled out."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pdesuite.dynamics.autoregressive import AutoregressiveOperator  # noqa: E402
from pdesuite.operators.training import TrainConfig  # noqa: E402

SMALL_FNO = {"modes": 4, "width": 8, "layers": 1, "projection_width": 16}
DECAY = 0.9


def decaying_waves(n: int = 8, frames: int = 8, points: int = 16, seed: int = 0) -> np.ndarray:
    """``u_t(x) = 0.9^t (a sin 2πx + b cos 4πx)``, the exact map ``x -> 0.9 x``.

    Returns ``[n, T, 1, s]``.
    """
    rng = np.random.default_rng(seed)
    x = np.arange(points) / points
    shapes = (rng.uniform(0.5, 1.5, (n, 1)) * np.sin(2 * np.pi * x)
              + rng.uniform(-0.5, 0.5, (n, 1)) * np.cos(4 * np.pi * x))  # [n, s]
    return (DECAY ** np.arange(frames))[None, :, None, None] * shapes[:, None, None, :]


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    data = decaying_waves()
    model = AutoregressiveOperator(model_config=SMALL_FNO, epochs=100, batch_size=7, lr=3e-3,
                                   seed=3).fit(data[:6])
    return model, data


def test_rollout_follows_the_decay_map(fitted):
    model, data = fitted
    forecast = model.predict(data[6:, 0], 7)
    assert forecast.shape == (2, 8, 1, 16) and forecast.dtype == np.float64
    np.testing.assert_array_equal(forecast[:, 0], data[6:, 0].astype(np.float32))

    def relative(a, b):
        return np.linalg.norm(a - b) / np.linalg.norm(b)

    # persistence is off by 0.9^-7 - 1 = 1.09 at step 7; the rolled-out model by a few percent
    # (measured 0.024)
    assert relative(data[6:, 0], data[6:, 7]) == pytest.approx(1 / DECAY ** 7 - 1, rel=1e-12)
    assert relative(forecast[:, 7], data[6:, 7]) < 0.1
    assert len(model.trainer_.history) == 100 and model.n_pairs_ == 6 * 7
    assert model.model_.to_config()["in_channels"] == 1 and model.model_.ndim == 1


def test_rollout_feeds_the_model_its_own_output(fitted):
    model, data = fitted
    two_steps = model.predict(data[6:, 0], 2)
    restarted = model.predict(two_steps[:, 1], 1)
    np.testing.assert_array_equal(restarted[:, 1], two_steps[:, 2])
    one_step = model.trainer_.predict(torch.as_tensor(data[6:, 0], dtype=torch.float32))
    np.testing.assert_array_equal(two_steps[:, 1], one_step.numpy())


def test_the_same_seed_gives_the_same_model_and_forecast():
    torch.set_num_threads(1)
    data = decaying_waves(n=4, frames=4)

    def forecast(seed):
        model = AutoregressiveOperator(model_config=SMALL_FNO, epochs=2, batch_size=4,
                                       seed=seed).fit(data)
        return model.predict(data[:, 0], 3)

    first = forecast(0)
    np.testing.assert_array_equal(forecast(0), first)
    assert not np.array_equal(forecast(1), first)


def test_settings_go_into_the_train_config_and_default_to_the_cpu():
    model = AutoregressiveOperator("mgno", epochs=7, lr=2e-3)
    assert model.config.epochs == 7 and model.config.lr == 2e-3
    assert model.config.device == "cpu" and model.config.progress is False
    base = TrainConfig(batch_size=5, device="cpu")
    assert AutoregressiveOperator(config=base, epochs=3).config.batch_size == 5


def test_bad_input_is_a_clear_error(fitted):
    model, data = fitted
    with pytest.raises(ValueError, match="trajectories"):
        AutoregressiveOperator(epochs=1).fit(data[:, :, 0])  # no channel axis
    with pytest.raises(ValueError, match="trajectories"):
        AutoregressiveOperator(epochs=1).fit(data[:, :1])
    bad = data.copy()
    bad[0, 3, 0, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AutoregressiveOperator(epochs=1).fit(bad)
    with pytest.raises(ValueError, match="model_config"):
        AutoregressiveOperator(model_config={"in_channels": 2})
    with pytest.raises(ValueError, match="model name"):
        AutoregressiveOperator("transformer", epochs=1).fit(data)
    with pytest.raises(TypeError, match="unknown training setting"):
        AutoregressiveOperator(epoch=3)
    with pytest.raises(RuntimeError, match="fit"):
        AutoregressiveOperator().predict(data[:, 0], 1)
    with pytest.raises(ValueError, match="x0"):
        model.predict(data[:, 0, 0], 1)
    with pytest.raises(ValueError, match="steps"):
        model.predict(data[:, 0], -1)
