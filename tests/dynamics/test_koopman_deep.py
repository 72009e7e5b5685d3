"""The deep Koopman autoencoder: loss terms from closed forms, seeded training on the CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pdesuite.dynamics.koopman.deep import (  # noqa: E402
    DeepKoopman,
    DeepKoopmanLoss,
    ridge_koopman,
    von_neumann_entropy,
)

J = np.array([[0.9, -0.1], [0.0, 0.8]])


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _trajectories(n=20, steps=10, seed=0):
    states = [np.random.default_rng(seed).uniform(-1, 1, (n, 2))]
    for _ in range(steps):
        states.append(states[-1] @ J.T)
    return np.stack(states, axis=1)  # [n, steps + 1, 2]


def test_ridge_koopman_is_the_regularised_least_squares_solution():
    generator = torch.Generator().manual_seed(0)
    z_x = torch.randn(30, 3, generator=generator, dtype=torch.float64)
    K_true = torch.randn(3, 3, generator=generator, dtype=torch.float64)
    np.testing.assert_allclose(ridge_koopman(z_x, z_x @ K_true, 0.0).numpy(), K_true.numpy(),
                               atol=1e-12)
    ridge = 0.3
    gram = z_x.T @ z_x / 30 + ridge * torch.eye(3, dtype=torch.float64)
    expected = torch.linalg.solve(gram, z_x.T @ (z_x @ K_true) / 30)
    np.testing.assert_allclose(ridge_koopman(z_x, z_x @ K_true, ridge).numpy(),
                               expected.numpy(), atol=1e-14)


def test_von_neumann_entropy_of_isotropic_and_collapsed_latents():
    generator = torch.Generator().manual_seed(1)
    basis, _ = torch.linalg.qr(torch.randn(400, 4, generator=generator, dtype=torch.float64))
    centred = basis - basis.mean(dim=0)
    isotropic, _ = torch.linalg.qr(centred)  # orthonormal, zero-mean columns: ρ = I/4
    assert von_neumann_entropy(isotropic).item() == pytest.approx(math.log(4), abs=1e-10)
    collapsed = torch.randn(400, 1, generator=generator, dtype=torch.float64) * torch.ones(1, 4)
    assert von_neumann_entropy(collapsed).item() == pytest.approx(0.0, abs=1e-9)


def test_training_lowers_the_loss_and_is_seeded():
    data = _trajectories()
    settings = dict(latent_dim=4, hidden=(32, 32), epochs=25, batch_size=50, seed=3,
                    device="cpu")
    model = DeepKoopman(**settings).fit(data)
    history = model.loss_history_
    assert len(history) == 25 and history[-1] < 0.5 * history[0]
    again = DeepKoopman(**settings).fit(data)
    np.testing.assert_array_equal(again.loss_history_, history)
    other = DeepKoopman(**{**settings, "seed": 4}).fit(data)
    assert not np.array_equal(other.loss_history_, history)
    assert set(model.loss_terms_) == {"prediction", "reconstruction", "infonce", "entropy"}


def test_forecasts_are_in_the_state_space_and_follow_the_map():
    data = _trajectories(n=40)
    model = DeepKoopman(latent_dim=6, hidden=(64, 64), epochs=60, batch_size=64, seed=0,
                        device="cpu").fit(data)
    x0 = data[:5, 0]
    forecast = model.predict(x0, 10)
    assert forecast.shape == (5, 11, 2) and forecast.dtype == np.float64
    np.testing.assert_array_equal(forecast[:, 0], x0)
    error = np.linalg.norm(forecast[:, 1:] - data[:5, 1:]) / np.linalg.norm(data[:5, 1:])
    persistence = np.linalg.norm(x0[:, None] - data[:5, 1:]) / np.linalg.norm(data[:5, 1:])
    assert error < 0.5 * persistence
    assert model.eigenvalues.shape == (6,) and model.residuals.shape == (6,)
    assert model.modes.shape == (6, 2)
    # every eigenpair certified: the modal sum is the latent matrix power
    everything = model.predict(x0, 10, certified=float(model.residuals.max()))
    np.testing.assert_allclose(everything, forecast, atol=1e-6)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="ridge"):
        DeepKoopman(ridge=0.0)
    with pytest.raises(TypeError, match="loss"):
        DeepKoopman(loss={"infonce": 1.0})
    with pytest.raises(ValueError, match="temperature"):
        DeepKoopmanLoss(temperature=0.0)
