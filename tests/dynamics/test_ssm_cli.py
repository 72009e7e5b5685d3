"""``pdesuite forecast ssm`` on a tiny generated Burgers file: outputs, the saved model, refusal
to overwrite, and one-line errors for bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from pdesuite.cli import main
from pdesuite.dynamics.ssm import load_forecaster

FRAMES = 9  # t = 0 .. 0.4, 0.05 apart


@pytest.fixture(scope="module")
def burgers(tmp_path_factory):
    from pdesuite.datasets import generate

    path = tmp_path_factory.mktemp("data") / "burgers.h5"
    return generate("burgers", 6, path, resolution=16, nu=0.05, final_time=0.4,
                    record_interval=0.05, seed=0, progress=False)


def forecast(data, out, *extra):
    return main(["forecast", "ssm", "--data", str(data), "--out", str(out), "--frames-in", "3",
                 "--epochs", "2", "--d-model", "8", "--n-layers", "1", "--d-state", "8",
                 "--batch-size", "8", "--test-fraction", "0.34", "--quiet", *extra])


def test_writes_the_forecasts_errors_plot_and_model(burgers, tmp_path, capsys):
    out = tmp_path / "run"
    assert forecast(burgers, out, "--layer", "dss") == 0
    assert "forecast ssm dss" in capsys.readouterr().out
    for name in ("forecasts.h5", "errors.json", "error_vs_horizon.png", "model"):
        assert (out / name).exists(), name
    steps = FRAMES - 3
    with h5py.File(out / "forecasts.h5", "r") as handle:
        forecasts, truth = handle["forecasts"][()], handle["truth"][()]
        test = handle["test"][()]
    assert forecasts.shape == (2, steps + 1, 1, 16) and truth.shape == forecasts.shape
    assert np.array_equal(forecasts[:, 0], truth[:, 0])      # index 0: the last given frame
    payload = json.loads((out / "errors.json").read_text())
    assert payload["layer"] == "dss" and payload["start_frame"] == 2
    assert payload["data"]["test"] == test.tolist()
    assert len(payload["relative_l2"]) == steps + 1 and payload["relative_l2"][0] == 0.0
    # the curves are those of the forecasts against the truth
    shape = (2, steps + 1, -1)
    expected = np.mean(np.linalg.norm((forecasts - truth).reshape(shape), axis=2)
                       / np.linalg.norm(truth.reshape(shape), axis=2), axis=0)
    np.testing.assert_allclose(payload["relative_l2"], expected, rtol=1e-12)
    persistence = np.mean(np.linalg.norm((truth[:, :1] - truth).reshape(shape), axis=2)
                          / np.linalg.norm(truth.reshape(shape), axis=2), axis=0)
    np.testing.assert_allclose(payload["persistence"], persistence, rtol=1e-12)
    assert payload["parameters"] > 0 and len(payload["train_loss"]) == 2
    # the saved model reproduces the forecasts from the test trajectories' first frames
    from pdesuite.dynamics.koopman import read_trajectories

    frames = read_trajectories(burgers, samples=test).trajectories
    model = load_forecaster(out / "model")
    assert np.array_equal(model.predict(frames[:, :3], steps), forecasts)


def test_refuses_to_overwrite_without_the_flag(burgers, tmp_path, capsys):
    out = tmp_path / "run"
    assert forecast(burgers, out, "--steps", "2") == 0
    capsys.readouterr()
    assert forecast(burgers, out, "--steps", "2") == 1
    assert "--overwrite" in capsys.readouterr().err
    assert forecast(burgers, out, "--steps", "3", "--overwrite") == 0
    assert json.loads((out / "errors.json").read_text())["steps"] == 3


@pytest.mark.parametrize("arguments, message", [
    (["--frames-in", "9"], "--frames-in: 9 needs trajectories of at least 10 frames"),
    (["--steps", "0"], "--steps: must be >= 1"),
    (["--test-fraction", "1.5"], "--test-fraction"),
    (["--lr", "0"], "--lr"),
])
def test_bad_options_are_one_line_errors(burgers, tmp_path, capsys, arguments, message):
    assert forecast(burgers, tmp_path / "run", *arguments) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("pdesuite forecast ssm: ") and message in error
    assert len(error.splitlines()) == 1


def test_missing_or_unusable_data_is_a_one_line_error(tmp_path, capsys):
    assert forecast(tmp_path / "absent.h5", tmp_path / "run") == 1
    assert "--data" in capsys.readouterr().err
    np.save(tmp_path / "flat.npy", np.zeros((4, 8, 5)))      # no spatial axis after C
    assert forecast(tmp_path / "flat.npy", tmp_path / "run2") == 1
    assert "spatial" in capsys.readouterr().err
