"""``pdesuite forecast koopman`` on a tiny generated Burgers file: outputs, refusals, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pdesuite.cli import main
from pdesuite.dynamics import forecast_cli
from pdesuite.dynamics.koopman import EDMD, HankelDMD, load_estimator, read_trajectories


@pytest.fixture(scope="module")
def burgers(tmp_path_factory):
    from pdesuite.datasets import generate

    path = tmp_path_factory.mktemp("data") / "burgers.h5"
    return generate("burgers", 12, path, progress=False, resolution=16, final_time=0.5,
                    record_interval=0.05)


def forecast(*arguments: str) -> int:
    return main(["forecast", "koopman", "--quiet", *arguments])


def test_edmd_run_writes_forecasts_errors_plots_and_a_loadable_model(burgers, tmp_path, capsys):
    import h5py

    out = tmp_path / "run"
    assert forecast("--data", str(burgers), "--method", "edmd", "--rank", "8", "--steps", "10",
                    "--test-fraction", "0.25", "--seed", "2", "--out", str(out)) == 0
    summary = capsys.readouterr().out
    assert summary.count("\n") == 1 and summary.startswith("forecast koopman edmd: relative L2")
    for name in ("forecasts.h5", "errors.json", "error_vs_horizon.png", "eigenvalues.png",
                 "model/estimator.json", "model/arrays.npz"):
        assert (out / name).is_file(), name

    # the same split and fit, done independently, give the same forecasts bit for bit
    trajectories = read_trajectories(burgers).trajectories
    with h5py.File(out / "forecasts.h5", "r") as handle:
        test, train = handle["test"][()], handle["train"][()]
        forecasts, truth = handle["forecasts"][()], handle["truth"][()]
    assert len(test) == 3 and sorted([*train, *test]) == list(range(12))
    expected = EDMD(rank=8).fit(trajectories[train]).predict(trajectories[test, 0], 10)
    np.testing.assert_array_equal(forecasts, expected)
    np.testing.assert_array_equal(truth, trajectories[test, :11])
    np.testing.assert_array_equal(load_estimator(out / "model").predict(trajectories[test, 0], 10),
                                  expected)

    errors = json.loads((out / "errors.json").read_text())
    relative = [np.mean([np.linalg.norm(expected[i, t] - truth[i, t]) / np.linalg.norm(truth[i, t])
                         for i in range(3)]) for t in range(11)]
    np.testing.assert_allclose(errors["relative_l2"], relative, rtol=1e-12, atol=0)
    persistence = np.mean([np.linalg.norm(truth[:, :1] - truth, axis=(2, 3))
                           / np.linalg.norm(truth, axis=(2, 3))], axis=1)[0]
    np.testing.assert_allclose(errors["persistence"], persistence, rtol=1e-12)
    assert errors["relative_l2"][0] == 0.0 and errors["steps"] == 10
    # the viscous decay is far from persistence after ten frames; the linear model follows it
    assert errors["relative_l2"][10] < 0.1 * errors["persistence"][10]
    assert len(errors["spectrum"]["residual"]) == 8
    assert errors["data"]["family"] == "burgers" and errors["data"]["frame_interval"] == 0.05


def test_an_existing_out_is_refused_unless_overwrite(burgers, tmp_path, capsys):
    out = tmp_path / "run"
    arguments = ["--data", str(burgers), "--rank", "4", "--out", str(out)]
    assert forecast(*arguments) == 0
    before = (out / "errors.json").read_text()
    capsys.readouterr()
    assert forecast(*arguments[:-2], "--rank", "6", "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "--overwrite" in err
    assert (out / "errors.json").read_text() == before
    assert forecast(*arguments, "--overwrite") == 0
    assert forecast("--data", str(burgers), "--rank", "6", "--out", str(out), "--overwrite") == 0
    assert json.loads((out / "errors.json").read_text())["options"]["rank"] == 6
    assert load_estimator(out / "model").rank == 6


def test_hankel_with_certified_modes_keeps_both_forecasts(burgers, tmp_path):
    import h5py

    out = tmp_path / "hankel"
    assert forecast("--data", str(burgers), "--method", "hankel", "--delays", "3", "--rank", "6",
                    "--certified", "0.05", "--out", str(out)) == 0
    errors = json.loads((out / "errors.json").read_text())
    model = load_estimator(out / "model")
    assert isinstance(model, HankelDMD) and model.delays == 3
    assert errors["start_frame"] == 2 and errors["steps"] == 8  # 11 frames, 3 given
    assert errors["n_certified"] == int(np.sum(np.asarray(errors["spectrum"]["residual"]) <= 0.05))
    trajectories = read_trajectories(burgers).trajectories
    with h5py.File(out / "forecasts.h5", "r") as handle:
        test = handle["test"][()]
        plain, certified = handle["forecasts_all_modes"][()], handle["forecasts"][()]
    np.testing.assert_array_equal(plain, model.predict(trajectories[test, :3], 8))
    np.testing.assert_array_equal(certified,
                                  model.predict(trajectories[test, :3], 8, certified=0.05))


@pytest.mark.parametrize("method", ["kernel", "mp"])
def test_other_methods_run(burgers, tmp_path, method):
    out = tmp_path / method
    assert forecast("--data", str(burgers), "--method", method, "--rank", "5", "--out",
                    str(out)) == 0
    assert len(json.loads((out / "errors.json").read_text())["relative_l2"]) == 11


def test_bad_input_is_one_clear_line(burgers, tmp_path, capsys):
    cases = [
        (["--data", str(tmp_path / "missing.h5")], "--data"),
        (["--data", str(burgers), "--delays", "3"], "--delays: not an option of --method edmd"),
        (["--data", str(burgers), "--steps", "0"], "--steps"),
        (["--data", str(burgers), "--test-fraction", "1.5"], "--test-fraction"),
        (["--data", str(burgers), "--method", "hankel", "--delays", "11"], "--delays"),
        (["--data", str(burgers), "--dictionary", "monomials", "--degree", "3"], "ridge"),
    ]
    nan = np.zeros((4, 5, 1, 3))
    nan[1, 2, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", trajectories=nan)
    np.save(tmp_path / "one.npy", np.zeros((1, 5, 1, 3)))
    np.savez(tmp_path / "unnamed.npz", x=np.zeros((4, 5, 1, 3)))
    cases += [(["--data", str(tmp_path / "nan.npz")], "NaN"),
              (["--data", str(tmp_path / "one.npy")], "at least 2"),
              (["--data", str(tmp_path / "unnamed.npz")], "'trajectories'")]
    for i, (arguments, message) in enumerate(cases):
        assert forecast(*arguments, "--out", str(tmp_path / f"out{i}")) == 1, arguments
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("pdesuite forecast koopman: ")
        assert message in err, (arguments, err)
    assert main(["forecast"]) == 1
    assert "koopman" in capsys.readouterr().err


def test_a_family_is_added_by_one_registry_entry(monkeypatch, capsys):
    monkeypatch.setitem(forecast_cli.FORECASTERS, "echo",
                        ("a family registered by a test", __name__, "_add_echo", "_run_echo"))
    assert main(["forecast", "echo", "--value", "7"]) == 7
    with pytest.raises(SystemExit):
        main(["forecast", "--help"])
    listing = capsys.readouterr().out
    assert "koopman" in listing and "echo" in listing


def _add_echo(parser):
    parser.add_argument("--value", type=int, required=True)


def _run_echo(args):
    return args.value
