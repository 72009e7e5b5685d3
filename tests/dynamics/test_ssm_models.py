"""The SSM sequence model and the PDE time-stepper: forward against stepping, gradients, and a
fit of exact heat-equation modes."""

from __future__ import annotations

import math

import pytest
import torch

from pdesuite.dynamics.ssm import SequenceModel, SSMStepper

OPTIONS = {
    "s4d": {"d_state": 8},
    "dss": {"d_state": 8, "seq_len": 16},
    "s5": {"d_state": 8},
    "stu": {"seq_len": 16, "num_filters": 4},
}


def _step_through(model, u):
    state = model.default_state(u.shape[0])
    outputs = []
    for t in range(u.shape[1]):
        y, state = model.step(u[:, t], state)
        outputs.append(y)
    return torch.stack(outputs, dim=1), state


@pytest.mark.parametrize("layer", sorted(OPTIONS))
@pytest.mark.parametrize("prenorm", [True, False])
def test_sequence_model_forward_equals_stepping_it(layer, prenorm):
    torch.manual_seed(0)
    model = SequenceModel(2, 3, d_model=8, n_layers=2, layer=layer,
                          layer_options=OPTIONS[layer], dropout=0.1, prenorm=prenorm)
    model = model.double().eval()
    u = torch.randn(2, 16, 2, dtype=torch.float64)
    y = model(u)
    y_step, _ = _step_through(model, u)
    assert y.shape == (2, 16, 3)
    assert y.abs().max() > 1e-2
    torch.testing.assert_close(y, y_step, rtol=0, atol=1e-10)


def test_sequence_model_states_continue_the_recurrence():
    torch.manual_seed(1)
    model = SequenceModel(1, 1, d_model=4, n_layers=3, layer="s4d",
                          layer_options={"d_state": 6}).double()
    u = torch.randn(2, 10, 1, dtype=torch.float64)
    _, states = model(u, return_states=True)
    _, step_state = _step_through(model, u)
    assert len(states) == 3
    for sequence_states, final in zip(states, step_state):
        assert sequence_states.shape == (2, 10, 4, 3)
        torch.testing.assert_close(sequence_states[:, -1], final, rtol=0, atol=1e-10)


def test_dropout_is_active_in_training_and_off_in_eval():
    torch.manual_seed(2)
    model = SequenceModel(2, 2, d_model=8, n_layers=1, dropout=0.5)
    u = torch.randn(1, 12, 2)
    assert not torch.equal(model(u), model(u))
    model.eval()
    assert torch.equal(model(u), model(u))


@pytest.mark.parametrize("layer", sorted(OPTIONS))
def test_gradients_flow_through_forward_and_through_the_steps(layer):
    torch.manual_seed(3)
    model = SequenceModel(2, 1, d_model=4, n_layers=2, layer=layer, layer_options=OPTIONS[layer])
    u = torch.randn(2, 16, 2)
    model(u).pow(2).mean().backward()
    forward_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    y_step, _ = _step_through(model, u)
    y_step.pow(2).mean().backward()
    for name, parameter in model.named_parameters():
        assert torch.isfinite(forward_grads[name]).all() and forward_grads[name].abs().max() > 0
        torch.testing.assert_close(parameter.grad, forward_grads[name], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("spatial", [(), (7,), (3, 4)])
def test_stepper_forward_and_forecast_agree_on_any_grid(spatial):
    torch.manual_seed(4)
    stepper = SSMStepper(2, d_model=8, n_layers=2, layer="s4d",
                         layer_options={"d_state": 8}).double()
    frames = torch.randn(3, 6, 2, *spatial, dtype=torch.float64)
    predictions = stepper(frames)
    assert predictions.shape == frames.shape
    forecast = stepper.forecast(frames, steps=3)
    assert forecast.shape == (3, 3, 2, *spatial)
    # the first forecast is the one-step prediction after the last given frame
    torch.testing.assert_close(forecast[:, 0], predictions[:, -1], rtol=0, atol=1e-10)
    # the second one is the one-step prediction after feeding the first back in
    extended = torch.cat([frames, forecast[:, :1]], dim=1)
    torch.testing.assert_close(forecast[:, 1], stepper(extended)[:, -1], rtol=0, atol=1e-10)


def test_stepper_points_evolve_independently_without_a_trunk():
    torch.manual_seed(5)
    stepper = SSMStepper(1, d_model=4, n_layers=1).double()
    frames = torch.randn(1, 5, 1, 6, dtype=torch.float64)
    changed = frames.clone()
    changed[..., 0] += 1.0
    difference = (stepper(changed) - stepper(frames)).abs().amax(dim=(0, 1, 2))
    assert difference[0] > 1e-3
    torch.testing.assert_close(difference[1:], torch.zeros(5, dtype=torch.float64))


def test_stepper_with_an_fno_trunk_couples_space_and_trains():
    from pdesuite.operators.fno import FNO

    torch.manual_seed(6)
    trunk = FNO(in_channels=1, out_channels=4, ndim=1, modes=3, width=6, layers=1, padding=0,
                projection_width=8)
    stepper = SSMStepper(1, d_model=4, n_layers=1, trunk=trunk, trunk_channels=4).double()
    frames = torch.randn(2, 5, 1, 8, dtype=torch.float64)
    predictions = stepper(frames)
    torch.testing.assert_close(stepper.forecast(frames, 1)[:, 0], predictions[:, -1],
                               rtol=0, atol=1e-10)
    changed = frames.clone()
    changed[..., 0] += 1.0
    assert (stepper(changed) - predictions)[..., 1:].abs().max() > 1e-6
    predictions.pow(2).mean().backward()
    assert all(p.grad is not None for p in trunk.parameters())


def _heat_modes(batch: int, steps: int, seed: int, points: int = 32,
                dt: float = 0.1) -> torch.Tensor:
    """Exact solutions of u_t = u_xx on the periodic interval [0, 2π):
    u = Σ_k a_k e^{-k² t} sin(k x + φ_k) for k = 1, 2; ``[batch, steps, 1, points]``."""
    g = torch.Generator().manual_seed(seed)
    wavenumbers = torch.tensor([1.0, 2.0], dtype=torch.float64)
    x = torch.arange(points, dtype=torch.float64) * 2 * math.pi / points
    t = torch.arange(steps, dtype=torch.float64) * dt
    amplitude = torch.randn(batch, 2, dtype=torch.float64, generator=g)
    phase = 2 * math.pi * torch.rand(batch, 2, dtype=torch.float64, generator=g)
    decay = torch.exp(-wavenumbers ** 2 * t[:, None])                       # (T, 2)
    shape = torch.sin(wavenumbers * x[:, None] + phase[:, None])            # (B, X, 2)
    field = torch.einsum("bk,tk,bxk->btx", amplitude, decay, shape)
    return field.unsqueeze(2)


def test_tiny_stepper_fits_exact_heat_modes():
    torch.manual_seed(7)
    frames = _heat_modes(batch=4, steps=10, seed=0)
    # frames are a few large time steps apart: a range of Δ up to 1 suits them
    options = {"d_state": 16, "dt_min": 0.01, "dt_max": 1.0}
    stepper = SSMStepper(1, d_model=16, n_layers=1, layer="s4d", layer_options=options).double()
    optimizer = torch.optim.Adam(stepper.parameters(), lr=1e-2)
    inputs, targets = frames[:, :-1], frames[:, 1:]
    # two modes per point: two frames of history determine the next one
    warmup = 2
    persistence = (inputs - targets)[:, warmup:].pow(2).mean()
    for _ in range(400):
        optimizer.zero_grad()
        loss = (stepper(inputs) - targets)[:, warmup:].pow(2).mean()
        loss.backward()
        optimizer.step()
    assert loss / persistence < 3e-2
    with torch.no_grad():
        forecast = stepper.forecast(frames[:, :6], steps=4)
    forecast_error = (forecast - frames[:, 6:]).pow(2).mean()
    persistence_error = (frames[:, 5:6] - frames[:, 6:]).pow(2).mean()
    assert forecast_error / persistence_error < 1e-2


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="layer"):
        SequenceModel(1, 1, layer="mamba")
    with pytest.raises(ValueError, match="norm"):
        SequenceModel(1, 1, norm="batch")
    with pytest.raises(ValueError, match="frames"):
        SSMStepper(2)(torch.zeros(1, 3, 1, 4))
    with pytest.raises(ValueError, match="steps"):
        SSMStepper(1).forecast(torch.zeros(1, 3, 1, 4), steps=0)
    with pytest.raises(ValueError, match="trunk_channels"):
        SSMStepper(1, trunk=torch.nn.Identity())
