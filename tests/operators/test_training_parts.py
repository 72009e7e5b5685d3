"""The parts of operators/training tested alone: TrainConfig, checkpoint I/O and RNG states,
Ctrl-C deferral, single-process collectives, resumable batches; and what Trainer.fit leaves."""

from __future__ import annotations

import json
import random
import signal

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from pdesuite.operators import TrainConfig, Trainer
from pdesuite.operators.losses import LpLoss
from pdesuite.operators.training import checkpoint as ckpt
from pdesuite.operators.training.config import RUN_FIELDS, SESSION_FIELDS
from pdesuite.operators.training.data import ResumableBatchSampler
from pdesuite.operators.training.distributed import Processes, deferred_sigint
from tests.operators.test_trainer import _data, _model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------- config
def test_config_round_trips_through_plain_json():
    config = TrainConfig(loss="h1", optimizer="adamw", lr=3e-4, scheduler="onecycle", max_lr=1e-2,
                         epochs=7, batch_size=5, early_stopping_patience=3, monitor="h1",
                         amp=False, seed=11, periodic=[True, False], domain=[2.0, 1.0],
                         out_dir="runs/a", device="cpu", progress=False, verbose=False)
    values = json.loads(json.dumps(config.to_dict()))
    assert TrainConfig.from_dict(values) == config
    assert config.periodic == (True, False) and config.domain == (2.0, 1.0)
    # A checkpoint keeps the run settings only; the session ones take their defaults back.
    saved = config.checkpoint_dict()
    assert set(saved) == set(RUN_FIELDS) and not set(saved) & set(SESSION_FIELDS)
    restored = TrainConfig.from_dict(saved)
    assert restored.run_differences(config) == {}
    assert (restored.out_dir, restored.device, restored.progress) == (None, "auto", True)
    assert restored.replace(lr=1e-3).run_differences(config) == {"lr": (1e-3, 3e-4)}


def test_config_validates_and_names_the_setting():
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1, got 0"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="scheduler: expected one of"):
        TrainConfig().replace(scheduler="cosine")
    with pytest.raises(TypeError, match=r"unknown training setting\(s\) \['learning_rate'\]"):
        TrainConfig().replace(learning_rate=1.0)
    custom = TrainConfig(loss=LpLoss(1))
    assert custom.checkpoint_dict()["loss"] == "callable"
    with pytest.raises(ValueError, match="loss: the run used a loss callable; pass it again"):
        TrainConfig.from_dict(custom.checkpoint_dict())
    assert TrainConfig.from_dict(custom.checkpoint_dict(), loss="l2").loss == "l2"


def test_trainer_takes_a_config_and_keyword_settings_on_top():
    base = TrainConfig(epochs=3, batch_size=4, lr=5e-3, progress=False, verbose=False)
    trainer = Trainer(_model(), _data(8), config=base, epochs=2)
    assert trainer.config == base.replace(epochs=2)
    assert (trainer.epochs, trainer.batch_size, trainer.optimizer.param_groups[0]["lr"]) == (
        2,
        4,
        5e-3,
    )
    with pytest.raises(TypeError, match="unknown training setting"):
        Trainer(_model(), _data(8), epoch=2)


# ------------------------------------------------------------------------------ checkpoints
def test_rng_states_round_trip_through_a_safe_checkpoint_file(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = ckpt.capture_rng()
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    ckpt.atomic_save({"rng": state}, tmp_path / "rng.pt")
    loaded = torch.load(tmp_path / "rng.pt", weights_only=True)["rng"]
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    ckpt.restore_rng(loaded)
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(again[0], expected[0])
    np.testing.assert_array_equal(again[1], expected[1])
    assert again[2] == expected[2]
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temporary file


def test_a_saved_checkpoint_loads_into_a_fresh_trainer_state_for_state(tmp_path):
    settings = {"epochs": 3, "batch_size": 4, "progress": False, "verbose": False}
    trainer = Trainer(_model(), _data(12), _data(4, seed=1), **settings)
    trainer.fit()
    path = trainer.save_checkpoint(tmp_path / "state.pt")
    saved = ckpt.load_checkpoint(path)
    assert (saved["format"], saved["format_version"]) == (
        ckpt.CHECKPOINT_FORMAT,
        ckpt.CHECKPOINT_FORMAT_VERSION,
    )
    assert saved["trainer_config"] == trainer.config.checkpoint_dict()

    fresh = Trainer(_model(seed=7), _data(12), _data(4, seed=1), **settings)
    fresh.load_state(path)
    for key, tensor in trainer.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[key], tensor), key
    assert (
        fresh.optimizer.state_dict()["state"].keys()
        == trainer.optimizer.state_dict()["state"].keys()
    )
    assert torch.equal(fresh.input_normalizer.mean, trainer.input_normalizer.mean)
    assert (fresh.epoch, fresh.history, fresh.best_epoch) == (
        3,
        trainer.history,
        trainer.best_epoch,
    )
    assert fresh.scheduler.state_dict() == trainer.scheduler.state_dict()


# ------------------------------------------------------------------ processes and Ctrl-C
def test_single_process_collectives_are_identities():
    processes = Processes(world_size=1, rank=0, local_rank=0, device=torch.device("cpu"))
    assert processes.is_main
    assert processes.any(True) and not processes.any(False)
    assert processes.sum([1.5, 2.0]) == [1.5, 2.0]
    assert processes.gather({"a": 1}) == [{"a": 1}]


def test_the_first_ctrl_c_is_deferred_and_the_second_is_not():
    requests = []
    previous = signal.getsignal(signal.SIGINT)
    with deferred_sigint(lambda: requests.append("stop")):
        signal.raise_signal(signal.SIGINT)
        assert requests == ["stop"]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous


def test_resumable_batches_leave_out_the_batches_already_done():
    sampler = ResumableBatchSampler(range(10), batch_size=4)
    assert list(sampler) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    sampler.skip = 2
    assert list(sampler) == [[8, 9]] and len(sampler) == 1 and sampler.batches_per_epoch == 3


# -------------------------------------------------------------------------- what fit leaves
def test_fit_returns_the_trainer_and_writes_the_figure_of_the_best_weights(tmp_path, monkeypatch):
    from pdesuite.operators.training import trainer as trainer_module

    drawn = {}

    def record(trained, dataset, path, samples=3):
        drawn.update(epoch=trained.epoch, n=len(dataset))
        return real_plot(trained, dataset, path, samples)

    real_plot = trainer_module.plot_predictions
    monkeypatch.setattr(trainer_module, "plot_predictions", record)
    # lr = 0 after the first epoch's step leaves the best at epoch 1 (StepLR, gamma 0)
    trainer = Trainer(_model(), _data(8), _data(5, seed=1), epochs=3, batch_size=4, lr=1e-2,
                      scheduler="step", step_size=1, gamma=0.0, out_dir=tmp_path, progress=False,
                      verbose=False)
    assert trainer.fit() is trainer
    assert [record["epoch"] for record in trainer.history] == [1, 2, 3]
    assert (tmp_path / "predictions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn == {"epoch": trainer.best_epoch, "n": 5}  # best.pt, on the validation data


def test_progress_false_keeps_the_epoch_lines_and_verbose_false_drops_them(capsys):
    Trainer(_model(), _data(8), epochs=2, batch_size=4, progress=False).fit()
    err = capsys.readouterr().err
    assert "epoch 1/2  train_loss" in err and "epoch 2/2  train_loss" in err and "it/s" not in err
    Trainer(_model(), _data(8), epochs=2, batch_size=4, progress=False, verbose=False).fit()
    assert capsys.readouterr().err == ""
