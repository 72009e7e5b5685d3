"""`pdesuite train` and `pdesuite evaluate`: files written, run safety, resume, one-line errors.

Every run trains a tiny FNO on small seeded files (9×9 and 17×17 grids) on the CPU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("pdesuite.datasets.loaders")

import torch

from pdesuite.datasets import storage
from pdesuite.datasets.loaders import PDEDataset
from pdesuite.operators import train_cli
from pdesuite.operators.training import (
    BEST_NAME,
    CHECKPOINT_NAME,
    METRICS_CSV,
    METRICS_JSON,
    load_checkpoint,
    load_trained,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_FNO = ["--model-arg", "width=4", "--model-arg", "modes=3", "--model-arg", "layers=1",
            "--model-arg", "projection_width=8"]


def _write_dataset_file(path: Path, n: int, size: int, seed: int,
                        failed: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """A steady 2-D file ``[n, 1, size, size]``; the samples in ``failed`` are flagged as failed
    solves (``converged`` false, reason DIVERGED_ITS)."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, size)
    gx, gy = np.meshgrid(grid, grid, indexing="ij")
    a = rng.uniform(0.5, 2.0, (n, 1, 1, 1))
    b = rng.uniform(-1.0, 1.0, (n, 1, 1, 1))
    inputs = (a * np.sin(np.pi * gx) + b * gy).astype(np.float32)
    outputs = (a * np.sin(np.pi * gx) * np.sin(np.pi * gy) + 0.5 * b * gx * gy).astype(np.float32)
    handle = storage.create_dataset_file(
        path,
        n=n,
        fields={"inputs": ((1, size, size), np.float32), "outputs": ((1, size, size), np.float32)},
        attrs=storage.schema_attrs(family="test", config={}, seed=seed, n=n, kind="steady"),
        coordinates=np.stack([gx, gy]),
    )
    handle["inputs"][...] = inputs
    handle["outputs"][...] = outputs
    converged = np.ones(n, dtype=bool)
    converged[list(failed)] = False
    handle["solver"]["converged"][...] = converged
    handle["solver"]["reason"][...] = np.where(converged, 2, -3)
    handle.attrs["complete"] = True
    handle.close()
    return inputs, outputs


def _train(data: Path, out: Path, *extra: str) -> int:
    return train_cli.main(
        [
            "train", "fno", "--data", str(data), "--out", str(out), "--epochs", "2", "--batch-size",
            "4", "--split-fractions", "16", "4", "4", "--no-progress",
            *TINY_FNO,
            *extra,
        ]
    )


def _one_error_line(err: str, command: str = "train") -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"pdesuite {command}: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    paths = {"coarse": folder / "toy9.h5", "fine": folder / "toy17.h5"}
    _write_dataset_file(paths["coarse"], 24, 9, seed=0)
    _write_dataset_file(paths["fine"], 6, 17, seed=1)
    return paths


@pytest.fixture(scope="module")
def trained_run(files, tmp_path_factory) -> Path:
    """A finished 2-epoch run on the coarse file (copy it before changing it)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert _train(files["coarse"], out) == 0
    return out


def _copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


# ------------------------------------------------------------------------------- a new run
def test_train_writes_its_files_and_evaluate_scores_zero_shot(files, trained_run, tmp_path, capsys):
    out = trained_run
    for name in (CHECKPOINT_NAME, BEST_NAME, METRICS_CSV, METRICS_JSON, "predictions.png",
                 "test_metrics.json", "run.json"):
        assert (out / name).is_file(), name
    assert (out / "predictions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reported = json.loads((out / "test_metrics.json").read_text())
    trained = load_trained(out)
    assert trained.model_config["name"] == "fno" and trained.model_config["width"] == 4
    test_split = PDEDataset(
        files["coarse"], split="test", split_fractions=(16, 4, 4), normalize=False
    )
    assert reported["n"] == 4
    assert reported["rel_l2"] == pytest.approx(trained.evaluate(test_split)["rel_l2"], rel=1e-6)
    record = json.loads((out / "run.json").read_text())
    assert record["data"] == str(files["coarse"].resolve()) and record["split_fractions"] == [
        16,
        4,
        4,
    ]

    results_file = tmp_path / "eval.json"
    status = train_cli.main(["evaluate", str(out), "--data", str(files["fine"]), "--split", "all",
                             "--resolution", "9", "--json", str(results_file)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "17x17*" in printed and "zero-shot" in printed
    rows = json.loads(results_file.read_text())["results"]
    assert [(row["resolution"], row["zero_shot"]) for row in rows] == [
        ([17, 17], True),
        ([9, 9], False),
    ]
    fine = PDEDataset(files["fine"], split="all", normalize=False)
    fine_x = torch.stack([fine[i][0] for i in range(len(fine))])
    fine_y = torch.stack([fine[i][1] for i in range(len(fine))])
    # 17 -> 9 points keeps every other node
    coarse = trained.evaluate((fine_x[:, :, ::2, ::2], fine_y[:, :, ::2, ::2]))
    assert rows[1]["rel_l2"] == pytest.approx(coarse["rel_l2"], rel=1e-6)
    full = trained.evaluate((fine_x, fine_y))
    assert rows[0]["rel_l2"] == pytest.approx(full["rel_l2"], rel=1e-6)


def test_no_progress_hides_the_bar_but_keeps_the_epoch_lines(files, tmp_path, capsys):
    assert _train(files["coarse"], tmp_path / "quiet") == 0
    err = capsys.readouterr().err
    assert re.search(r"^epoch 1/2  train_loss \S+  val_rel_l2", err, re.MULTILINE), err
    assert re.search(r"^epoch 2/2 ", err, re.MULTILINE), err
    assert "it/s" not in err and "|" not in err  # no tqdm bar


def test_evaluate_scores_a_whole_other_file_and_the_test_split_of_the_training_file(
        files, trained_run, tmp_path, capsys):
    results_file = tmp_path / "eval.json"
    status = train_cli.main(["evaluate", str(trained_run), "--data", str(files["fine"]),
                             "--data", str(files["coarse"]), "--json", str(results_file)])
    assert status == 0
    rows = json.loads(results_file.read_text())["results"]
    # another file: all of its 6 samples; the training file: its test split under the run's
    # own split (16 4 4 counts), not the default fractions
    assert [(row["split"], row["n"]) for row in rows] == [("all", 6), ("test", 4)]
    reported = json.loads((trained_run / "test_metrics.json").read_text())
    assert rows[1]["rel_l2"] == pytest.approx(reported["rel_l2"], rel=1e-6)
    assert "all " in capsys.readouterr().out


def test_subsample_stride_rules():
    from pdesuite.operators.train_cli import subsample_stride

    assert subsample_stride(421, 85) == 5  # node grid: ends kept
    assert subsample_stride(64, 32) == 2  # periodic grid
    assert subsample_stride(9, 9) == 1
    with pytest.raises(ValueError, match="cannot subsample 10 points to 6"):
        subsample_stride(10, 6)


# ----------------------------------------------------------------------------- run safety
def test_an_existing_run_is_refused_without_resume_or_overwrite(
    files, trained_run, tmp_path, capsys
):
    run = _copy_run(trained_run, tmp_path)
    before = {name: (run / name).read_bytes() for name in (CHECKPOINT_NAME, BEST_NAME, METRICS_CSV)}
    capsys.readouterr()
    assert _train(files["coarse"], run, "--epochs", "1") == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(run) in line and "--resume" in line and "--overwrite" in line
    assert {name: (run / name).read_bytes() for name in before} == before


def test_overwrite_replaces_the_run(files, trained_run, tmp_path, capsys):
    run = _copy_run(trained_run, tmp_path)
    (run / "test_metrics.json").write_text("{}")
    assert _train(files["coarse"], run, "--overwrite", "--epochs", "1", "--seed", "5") == 0
    assert load_checkpoint(run)["epoch"] == 1
    assert load_checkpoint(run)["trainer_config"]["seed"] == 5
    assert len(json.loads((run / METRICS_JSON).read_text())["epochs"]) == 1
    assert json.loads((run / "test_metrics.json").read_text())["n"] == 4


def test_resume_refuses_every_contradicting_option_in_one_message(
    files, trained_run, tmp_path, capsys
):
    run = _copy_run(trained_run, tmp_path)
    before = (run / CHECKPOINT_NAME).read_bytes()
    capsys.readouterr()
    status = train_cli.main(["train", "lsm", "--out", str(run), "--resume", "--epochs", "4",
                             "--model-arg", "width=8", "--lr", "0.01", "--scheduler", "none",
                             "--loss", "h1", "--batch-size", "8", "--seed", "3",
                             "--data", str(files["fine"])])
    assert status == 1
    line = _one_error_line(capsys.readouterr().err)
    for phrase in (
        "model lsm (the run trains fno)", "--model-arg width=8 (the run: width=4)",
        "--lr 0.01 (the run: 0.001)", "--scheduler none (the run: step)", "--loss h1 (the run: l2)",
        "--batch-size 8 (the run: 4)", "--seed 3 (the run: 0)", f"--data {files['fine'].resolve()}",
        "--overwrite",
    ):
        assert phrase in line, phrase
    assert (run / CHECKPOINT_NAME).read_bytes() == before


def test_resume_restores_the_runs_own_model_and_settings(files, trained_run, tmp_path, capsys):
    run = _copy_run(trained_run, tmp_path)
    # No model, no data, no settings: all come from the run; options equal to the run's pass.
    status = train_cli.main(["train", "--out", str(run), "--resume", "--epochs", "3",
                             "--lr", "0.001", "--model-arg", "width=4", "--no-progress"])
    assert status == 0
    saved = load_checkpoint(run)
    assert saved["epoch"] == 3 and len(saved["history"]) == 3
    assert json.loads(saved["model_config"])["width"] == 4
    assert saved["trainer_config"]["batch_size"] == 4 and saved["trainer_config"]["epochs"] == 3
    assert saved["data"]["n_train"] == 16  # the run's own split (16 4 4), not the default
    assert "training fno" in capsys.readouterr().out


def test_resuming_a_finished_run_without_epochs_does_not_extend_it(trained_run, tmp_path, capsys):
    run = _copy_run(trained_run, tmp_path)
    before = (run / CHECKPOINT_NAME).read_bytes()
    capsys.readouterr()
    assert train_cli.main(["train", "fno", "--out", str(run), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "finished (2 of 2 epochs)" in err and "--epochs N (N > 2)" in err
    assert (run / CHECKPOINT_NAME).read_bytes() == before


# ------------------------------------------------------------------------------ user errors
@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["train", "fno", "--data", "{missing}"], "--data {missing}: no such file"),
        (
            ["train", "fno", "--data", "{data}", "--epochs", "0"],
            "--epochs: expected an integer >= 1, got 0",
        ),
        (["train", "fno", "--data", "{data}", "--lr", "-1"], "--lr: expected a finite number >= 0"),
        (
            ["train", "fno", "--data", "{data}", "--model-arg", "depth=3"],
            "--model-arg: unknown keys ['depth']",
        ),
        (
            ["train", "fno", "--data", "{data}", "--resolution", "6"],
            "--resolution: cannot subsample 9 points to 6",
        ),
        (["train", "--data", "{data}"], "name the model to train"),
        (["train", "fno"], "--data is required"),
        (["train", "fno", "--resume"], "--resume: {out}/checkpoint.pt does not exist"),
        (
            ["evaluate", "{missing}", "--data", "{data}"],
            "{missing}: no such run directory or checkpoint",
        ),
    ],
)
def test_user_errors_are_one_line_naming_the_argument(files, tmp_path, capsys, arguments, expected):
    names = {"missing": str(tmp_path / "missing.h5"), "data": str(files["coarse"]),
             "out": str(tmp_path / "run")}
    arguments = [a.format(**names) for a in arguments]
    if arguments[0] == "train":
        arguments += ["--out", names["out"]]
    assert train_cli.main(arguments) == 1
    line = _one_error_line(capsys.readouterr().err, arguments[0])
    assert expected.format(**names) in line
    assert not (tmp_path / "run" / CHECKPOINT_NAME).exists()


def test_debug_shows_the_exception(files, tmp_path):
    with pytest.raises(ValueError, match="epochs: expected an integer >= 1"):
        train_cli.main(
            [
                "train", "fno", "--data", str(files["coarse"]), "--out", str(tmp_path / "r"),
                "--epochs", "0", "--debug",
            ]
        )


# ----------------------------------------------------------------------------- failed solves
def test_a_dataset_with_failed_solves_trains_on_the_rest_with_a_warning(tmp_path, capsys):
    data = tmp_path / "some_failed.h5"
    _write_dataset_file(data, 24, 9, seed=2, failed=(0, 3, 21))
    assert _train(data, tmp_path / "run", "--epochs", "1") == 0
    err = capsys.readouterr().err
    assert (
        f"pdesuite train: warning: {data}: 2 of the 16 samples of split 'train' did not converge"
        in err
    )
    assert "1 of the 4 samples of split 'test'" in err
    assert load_checkpoint(tmp_path / "run")["data"]["n_train"] == 14
    assert json.loads((tmp_path / "run" / "test_metrics.json").read_text())["n"] == 3


def test_a_dataset_whose_every_solve_failed_is_refused(tmp_path, capsys):
    data = tmp_path / "all_failed.h5"
    _write_dataset_file(data, 24, 9, seed=3, failed=tuple(range(24)))
    assert _train(data, tmp_path / "run") == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(data) in line and "all 24 solves failed" in line


def test_pdedataset_leaves_failed_samples_out_of_splits_and_statistics(tmp_path):
    data = tmp_path / "failed.h5"
    inputs, outputs = _write_dataset_file(data, 10, 5, seed=4, failed=(1, 8))
    with pytest.warns(UserWarning, match=r"1 of the 8 samples of split 'train' did not converge"):
        train = PDEDataset(data, split="train", split_fractions=(8, 1, 1))
    assert (len(train), train.failed) == (7, 1)
    kept = [0, 2, 3, 4, 5, 6, 7]
    expected = (inputs[kept] - inputs[kept].astype(np.float64).mean()) / inputs[kept].astype(
        np.float64
    ).std()
    np.testing.assert_allclose(
        np.stack([train[i][0].numpy() for i in range(7)]), expected, rtol=1e-4, atol=1e-5
    )
    with pytest.warns(UserWarning, match="1 of the 1 samples of split 'val'"):
        assert len(PDEDataset(data, split="val", split_fractions=(8, 1, 1))) == 0
    everything = PDEDataset(data, split="all", normalize=False, include_failed=True)
    assert len(everything) == 10 and everything.failed == 0
    np.testing.assert_array_equal(everything[8][1].numpy(), outputs[8])
    everything_failed = tmp_path / "all_failed.h5"
    _write_dataset_file(everything_failed, 3, 5, seed=5, failed=(0, 1, 2))
    with pytest.raises(
        ValueError, match=re.escape(str(everything_failed)) + ": all 3 solves failed"
    ):
        PDEDataset(everything_failed)


# ----------------------------------------------------------------------------------- Ctrl-C
def _pdesuite(*arguments: str, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "pdesuite", *arguments], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ctrl_c_saves_the_run_and_prints_the_resume_command(files, tmp_path):
    process = _pdesuite("train", "fno", "--data", str(files["coarse"]), "--out", "run",
                        "--epochs", "100000", "--batch-size", "4", "--no-progress", *TINY_FNO,
                        cwd=tmp_path)
    metrics = tmp_path / "run" / METRICS_CSV
    deadline = time.monotonic() + 180
    while not metrics.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "resume with `pdesuite train --out run --resume`" in last, err
    saved = load_checkpoint(tmp_path / "run")
    assert saved["epoch"] >= 1 and saved["exact"] is True

    # The printed command continues the run (with a short total here, so that it ends).
    done = saved["epoch"] + 1
    status = train_cli.main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs",
                             str(done), "--no-progress"])
    assert status == 0
    assert load_checkpoint(tmp_path / "run")["epoch"] == done


def test_a_cell_centred_file_trains_an_fno_whose_coordinates_are_cell_centred(tmp_path):
    data = tmp_path / "cell.h5"
    _write_dataset_file(data, 24, 8, seed=3)
    with h5py.File(data, "r+") as handle:
        handle.attrs["grid_convention"] = "cell"
    assert PDEDataset(data, split="all").grid_convention == "cell"
    assert _train(data, tmp_path / "run") == 0
    config = json.loads((tmp_path / "run" / "run.json").read_text())
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert config["model"] == "fno"
    assert json.loads(checkpoint["model_config"])["grid_convention"] == "cell"
