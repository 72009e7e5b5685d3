"""The Trainer: exact resume, checkpoint checks, NaN batches, early stopping, logs, DDP.

Every test uses a tiny conv net of its own (with dropout, so that resume must restore the RNG)
and plain TensorDatasets, on the CPU with one thread.
"""

from __future__ import annotations

import csv
import json
import math
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import torch
from torch import nn
from torch.utils.data import DistributedSampler, TensorDataset

import pdesuite
from pdesuite.operators.losses import H1Loss, LpLoss
from pdesuite.operators.training import (
    BEST_NAME,
    CHECKPOINT_NAME,
    METRIC_COLUMNS,
    METRICS_CSV,
    METRICS_JSON,
    NonFiniteBatchWarning,
    Trainer,
    load_checkpoint,
    load_trained,
    select_device,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyNet(nn.Module):
    """Two 3×3 convolutions with GELU and dropout between: [B, C_in, H, W] -> [B, C_out, H, W]."""

    def __init__(self, in_channels: int = 2, out_channels: int = 1, width: int = 6,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.config = dict(in_channels=in_channels, out_channels=out_channels, width=width,
                           dropout=dropout)
        self.lift = nn.Conv2d(in_channels, width, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x):
        return self.project(self.dropout(nn.functional.gelu(self.lift(x))))

    def to_config(self) -> dict:
        return dict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> "TinyNet":
        return cls(**config)


def _data(n: int, size: int = 8, seed: int = 0, shift: float = 0.0):
    """Inputs [n, 2, size, size] with different channel scales; outputs a fixed local map of
    them."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, size, size)) * np.array([1.0, 3.0])[None, :, None, None]
    x = x + np.array([2.0, -1.0])[None, :, None, None] + shift
    y = 0.5 * x[:, :1] + 0.25 * np.roll(x[:, 1:], 1, axis=-1) + 4.0
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def _model(seed: int = 0, **kwargs) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(**kwargs)


def _comparable(history):
    return [{k: v for k, v in record.items() if k != "epoch_time_s"} for record in history]


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


# ---------------------------------------------------------------------------------- device
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_device_selection_picks_cpu_without_cuda():
    assert select_device("auto") == torch.device("cpu")
    assert select_device(None) == torch.device("cpu")
    with pytest.raises(ValueError, match="device: 'cuda' requested, but CUDA is not available"):
        select_device("cuda")
    trainer = Trainer(_model(), _data(8), epochs=1, batch_size=4, progress=False)
    assert trainer.device == torch.device("cpu")
    assert trainer.amp is False
    assert next(trainer.model.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="amp: mixed precision needs a CUDA device"):
        Trainer(_model(), _data(8), amp=True, progress=False)


# ------------------------------------------------------------------------------ normalisers
def test_normalizers_are_fitted_on_the_training_split_only():
    train, val = _data(12, seed=1), _data(6, seed=2, shift=100.0)
    trainer = Trainer(_model(), train, val, epochs=1, batch_size=5, progress=False)
    x, y = train
    expected_mean = x.double().mean(dim=(0, 2, 3))
    expected_std = x.double().std(dim=(0, 2, 3), unbiased=False)
    np.testing.assert_allclose(
        trainer.input_normalizer.mean.numpy(), expected_mean.numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(
        trainer.input_normalizer.std.numpy(), expected_std.numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(trainer.output_normalizer.mean.numpy(),
                               y.double().mean(dim=(0, 2, 3)).numpy(), rtol=1e-6)
    # the validation data (shifted by 100) left no trace
    assert abs(trainer.input_normalizer.mean[0].item() - 2.0) < 0.5


def test_predict_and_evaluate_work_in_data_units():
    train, val = _data(12, seed=1), _data(5, seed=2)
    trainer = Trainer(_model(), train, epochs=1, batch_size=4, progress=False)
    x_val, y_val = val
    trainer.model.eval()
    with torch.no_grad():
        manual = trainer.output_normalizer.decode(
            trainer.model(trainer.input_normalizer.encode(x_val))
        )
    trainer.model.train()
    predicted = trainer.predict(x_val, batch_size=2)
    assert torch.allclose(predicted, manual, rtol=1e-6, atol=1e-6)
    assert trainer.predict(x_val[0].numpy()).shape == (1, 8, 8)
    metrics = trainer.evaluate(val)
    assert metrics["n"] == 5 and metrics["skipped"] == 0
    assert metrics["rel_l2"] == pytest.approx(LpLoss()(manual, y_val).item(), rel=1e-5)
    assert metrics["h1"] == pytest.approx(H1Loss()(manual, y_val).item(), rel=1e-5)
    assert trainer.model.training  # evaluation restores the mode
    with pytest.raises(ValueError, match="x: expected 2 channels"):
        trainer.predict(torch.zeros(1, 3, 8, 8))


def test_training_reduces_the_validation_error():
    trainer = Trainer(_model(dropout=0.0), _data(16, seed=3), _data(8, seed=4), epochs=12,
                      batch_size=4, lr=1e-2, scheduler=None, progress=False)
    history = trainer.fit().history
    first, last = history[0]["val_rel_l2"], history[-1]["val_rel_l2"]
    assert last < 0.5 * first, (first, last)


# ----------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("optimizer, scheduler", [("adam", "step"), ("adamw", None)])
def test_resume_continues_the_run_exactly(tmp_path, optimizer, scheduler):
    train, val = _data(14, seed=5), _data(6, seed=6)
    settings = dict(batch_size=4, optimizer=optimizer, scheduler=scheduler, step_size=1,
                    gamma=0.7, lr=3e-3, progress=False)
    reference = Trainer(_model(), train, val, epochs=4, out_dir=tmp_path / "ref", **settings)
    reference_history = reference.fit().history

    first = Trainer(_model(), train, val, epochs=2, out_dir=tmp_path / "run", **settings)
    first.fit()
    # Disturb every RNG between the runs, as a new process would.
    torch.manual_seed(123)
    np.random.seed(123)
    resumed = Trainer.resume(tmp_path / "run", train, val, model=_model(seed=99), epochs=4,
                             progress=False)
    assert resumed.epoch == 2
    history = resumed.fit().history

    assert _comparable(history) == _comparable(reference_history)
    _assert_same_weights(resumed.model, reference.model)
    assert resumed.optimizer.param_groups[0]["lr"] == reference.optimizer.param_groups[0]["lr"]
    # the logs of the resumed run hold all four epochs
    with open(tmp_path / "run" / METRICS_CSV) as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2", "3", "4"]


class _InterruptingDataset(TensorDataset):
    """Sends SIGINT to this process once, while loading its ``at``-th item after arming."""

    def __init__(self, *tensors):
        super().__init__(*tensors)
        self.calls_left = None

    def __getitem__(self, index):
        if self.calls_left is not None:
            self.calls_left -= 1
            if self.calls_left == 0:
                signal.raise_signal(signal.SIGINT)
        return super().__getitem__(index)


def test_ctrl_c_writes_a_checkpoint_mid_epoch_and_resume_is_exact(tmp_path):
    x, y = _data(12, seed=7)
    val = _data(4, seed=8)
    settings = dict(batch_size=3, scheduler="onecycle", epochs=3, progress=False)
    reference = Trainer(_model(), (x, y), val, out_dir=tmp_path / "ref", **settings)
    reference_history = reference.fit().history

    interrupting = _InterruptingDataset(x, y)
    trainer = Trainer(_model(), interrupting, val, out_dir=tmp_path / "run", **settings)
    interrupting.calls_left = 12 + 5  # inside the 2nd batch of the 2nd epoch
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    saved = load_checkpoint(tmp_path / "run")
    assert (saved["epoch"], saved["batches_done"]) == (1, 2)  # the batch in flight was finished
    assert saved["exact"] is True

    resumed = Trainer.resume(tmp_path / "run", (x, y), val, model=_model(seed=5), progress=False)
    history = resumed.fit().history
    assert _comparable(history) == _comparable(reference_history)
    _assert_same_weights(resumed.model, reference.model)


class _RaisingDataset(TensorDataset):
    """Raises KeyboardInterrupt itself (as a Ctrl-C outside fit's handler would) once."""

    def __init__(self, *tensors):
        super().__init__(*tensors)
        self.calls_left = None

    def __getitem__(self, index):
        if self.calls_left is not None:
            self.calls_left -= 1
            if self.calls_left == 0:
                raise KeyboardInterrupt
        return super().__getitem__(index)


def test_an_unannounced_keyboard_interrupt_still_writes_the_checkpoint(tmp_path):
    x, y = _data(8, seed=7)
    data = _RaisingDataset(x, y)
    trainer = Trainer(_model(), data, epochs=3, batch_size=4, out_dir=tmp_path, progress=False)
    data.calls_left = 8 + 2  # first batch of the second epoch
    with pytest.warns(UserWarning, match="not bit-exact"), pytest.raises(KeyboardInterrupt):
        trainer.fit()
    saved = load_checkpoint(tmp_path)
    assert (saved["epoch"], saved["batches_done"], saved["exact"]) == (1, 0, False)
    with pytest.warns(UserWarning, match="not bit-exact"):
        resumed = Trainer.resume(tmp_path, (x, y), model=_model(), progress=False)
    assert [record["epoch"] for record in resumed.fit().history] == [1, 2, 3]


def test_onecycle_run_cannot_change_its_length(tmp_path):
    train = _data(8)
    Trainer(_model(), train, epochs=1, batch_size=4, scheduler="onecycle", out_dir=tmp_path,
            progress=False).fit()
    with pytest.raises(ValueError, match="OneCycle schedule spans 2 steps"):
        Trainer.resume(tmp_path, train, model=_model(), epochs=3)
    with pytest.raises(ValueError, match=r"\['lr'\] cannot change on resume"):
        Trainer.resume(tmp_path, train, model=_model(), lr=1.0)


# ------------------------------------------------------------------------------ checkpoints
def test_checkpoint_loads_safely_and_carries_the_run(tmp_path):
    trainer = Trainer(_model(), _data(8), _data(4, seed=1), epochs=2, batch_size=4,
                      out_dir=tmp_path, progress=False)
    trainer.fit()
    raw = torch.load(tmp_path / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    assert raw["pdesuite_version"] == pdesuite.__version__
    assert json.loads(raw["model_config"]) == trainer.model.to_config()
    assert raw["model_class"].endswith("TinyNet")
    assert raw["epoch"] == 2 and len(raw["history"]) == 2
    assert torch.equal(raw["normalizers"]["inputs"]["mean"], trainer.input_normalizer.mean)
    assert torch.equal(raw["normalizers"]["outputs"]["std"], trainer.output_normalizer.std)
    assert set(raw["rng_per_rank"][0]) == {"torch", "numpy", "python", "cuda"}
    assert raw["optimizer_state"]["state"] and raw["scheduler_state"]["last_epoch"] == 2
    assert (tmp_path / BEST_NAME).is_file()
    # best.pt rebuilds a model that predicts what the trainer predicted at its best epoch
    loaded = load_trained(tmp_path, model=_model(seed=3))
    assert loaded.checkpoint_path == tmp_path / BEST_NAME
    assert loaded.epoch == trainer.best_epoch


def test_checkpoint_of_another_model_or_shape_is_refused(tmp_path):
    train = _data(8)
    Trainer(_model(width=4), train, epochs=1, batch_size=4, out_dir=tmp_path, progress=False).fit()
    with pytest.raises(ValueError, match=r"model config differs.*width=4 in the checkpoint, 8 "
                                         r"here") as info:
        Trainer.resume(tmp_path, train, model=_model(width=8))
    assert str(info.value).startswith(str(tmp_path / CHECKPOINT_NAME) + ":")
    with pytest.raises(ValueError, match="holds a .*TinyNet model, but the model given is a "
                                         ".*Sequential") as info:
        load_trained(tmp_path, model=nn.Sequential(nn.Conv2d(2, 1, 1)))
    assert str(tmp_path / BEST_NAME) in str(info.value)
    other_channels = (torch.zeros(8, 3, 8, 8), torch.zeros(8, 1, 8, 8))
    trainer = Trainer(_model(width=4, in_channels=3), other_channels, epochs=1, batch_size=4,
                      progress=False)
    with pytest.raises(ValueError, match="in_channels=2 in the checkpoint, 3 here"):
        trainer.load_state(tmp_path)
    # same parameters, other grid: a resume is refused, evaluation elsewhere is not
    other_grid = _data(8, size=10)
    with pytest.raises(ValueError, match=r"input samples of shape \(2, 8, 8\), train_data has "
                                         r"\(2, 10, 10\)"):
        Trainer.resume(tmp_path, other_grid, model=_model(width=4))
    assert load_trained(tmp_path, model=_model(width=4)).evaluate(other_grid)["n"] == 8


class _PlainNet(nn.Module):
    """No to_config: only the class and the parameter shapes can be checked."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, width, 1)
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, x):
        return self.out(self.conv(x))


def test_checkpoint_parameter_shapes_are_checked_without_a_config(tmp_path):
    train = _data(8)
    Trainer(_PlainNet(4), train, epochs=1, batch_size=4, out_dir=tmp_path, progress=False).fit()
    with pytest.raises(ValueError, match=r"checkpoint.pt: parameter 'conv.weight' has shape "
                                         r"\(4, 2, 1, 1\) in the checkpoint but \(5, 2, 1, 1\)"):
        Trainer.resume(tmp_path, train, model=_PlainNet(5))
    with pytest.raises(ValueError, match="has no config to rebuild it from; pass model="):
        Trainer.resume(tmp_path, train)


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="plain.pt: not a pdesuite operator checkpoint"):
        load_checkpoint(plain)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "pdesuite.operators.checkpoint", "payload": TinyNet()}, unsafe)
    with pytest.raises(ValueError, match="unsafe.pt: cannot be read as a safe"):
        load_checkpoint(unsafe)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------ NaN batches
def test_a_nan_batch_is_skipped_with_a_warning_and_counted():
    x, y = _data(16, seed=9)
    x[5, 1, 3, 3] = float("nan")
    trainer = Trainer(_model(), (x, y), epochs=3, batch_size=4, progress=False)
    with pytest.warns(NonFiniteBatchWarning, match="an input or target is NaN"):
        history = trainer.fit().history
    assert [record["skipped_batches"] for record in history] == [1, 1, 1]
    assert [record["samples"] for record in history] == [12, 12, 12]
    assert trainer.skipped_batches == 3
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    # the normaliser ignored the NaN entry
    assert torch.isfinite(trainer.input_normalizer.mean).all()
    with pytest.warns(NonFiniteBatchWarning, match="1 samples with non-finite"):
        metrics = trainer.evaluate((x, y))
    assert (metrics["n"], metrics["skipped"]) == (15, 1) and math.isfinite(metrics["rel_l2"])


def test_a_non_finite_loss_skips_the_batch():
    calls = {"n": 0}

    def flaky_loss(pred, target):
        calls["n"] += 1
        loss = LpLoss()(pred, target)
        return loss * float("nan") if calls["n"] == 2 else loss

    trainer = Trainer(_model(), _data(12), epochs=1, batch_size=4, loss=flaky_loss, progress=False)
    with pytest.warns(NonFiniteBatchWarning, match="the loss is nan"):
        history = trainer.fit().history
    assert history[0]["skipped_batches"] == 1 and history[0]["samples"] == 8


def test_an_epoch_of_only_nan_batches_raises():
    x, y = _data(8)
    x[:] = float("nan")
    trainer = Trainer(_model(), (x, y), epochs=2, batch_size=4, normalize_inputs=False,
                      progress=False)
    with pytest.warns(NonFiniteBatchWarning), pytest.raises(FloatingPointError,
                                                              match="epoch 1: all 2 batches"):
        trainer.fit()


# --------------------------------------------------------------------------- early stopping
def test_early_stopping_stops_after_patience_evaluations_without_improvement(tmp_path):
    # lr = 0: the weights never change, so the validation error never improves after epoch 1.
    trainer = Trainer(_model(), _data(8), _data(4, seed=1), epochs=50, batch_size=4, lr=0.0,
                      early_stopping_patience=2, out_dir=tmp_path, progress=False)
    history = trainer.fit().history
    assert len(history) == 3
    assert trainer.stopped_early and trainer.best_epoch == 1
    assert history[1]["val_rel_l2"] == history[0]["val_rel_l2"]
    assert load_checkpoint(tmp_path / BEST_NAME)["epoch"] == 1
    # an improving run with the same patience is not stopped
    improving = Trainer(_model(dropout=0.0), _data(8), _data(4, seed=1), epochs=4, batch_size=4,
                        lr=1e-2, early_stopping_patience=2, progress=False)
    assert len(improving.fit().history) == 4 and not improving.stopped_early


# ------------------------------------------------------------------------------------- logs
def test_metrics_logs_have_the_documented_columns(tmp_path):
    trainer = Trainer(_model(), _data(8), _data(4, seed=1), epochs=3, batch_size=4,
                      eval_every=2, out_dir=tmp_path, progress=False)
    history = trainer.fit().history
    with open(tmp_path / METRICS_CSV) as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == METRIC_COLUMNS == (
        "epoch", "train_loss", "val_rel_l2", "val_h1", "lr", "skipped_batches", "samples",
        "epoch_time_s")
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    # validation at epoch 2 (every 2) and 3 (the last), not at epoch 1
    assert [row["val_rel_l2"] == "" for row in rows] == [True, False, False]
    assert float(rows[1]["val_rel_l2"]) == pytest.approx(history[1]["val_rel_l2"], rel=1e-12)
    assert float(rows[2]["train_loss"]) == pytest.approx(history[2]["train_loss"], rel=1e-12)
    summary = json.loads((tmp_path / METRICS_JSON).read_text())
    assert summary["columns"] == list(METRIC_COLUMNS)
    assert summary["epochs"] == json.loads(json.dumps(history))
    assert summary["best"]["metric"] == "val_rel_l2" and summary["best"]["epoch"] in (2, 3)
    assert summary["parameters"] == sum(p.numel() for p in trainer.model.parameters())


def test_h1_loss_and_bad_settings():
    train = _data(8)
    trainer = Trainer(_model(), train, epochs=1, batch_size=8, loss="h1", progress=False)
    history = trainer.fit().history
    assert isinstance(trainer.loss_fn, H1Loss) and math.isfinite(history[0]["train_loss"])
    for kwargs, error, match in [
        ({"loss": "l3"}, ValueError, "loss: expected one of"),
        ({"optimizer": "sgd"}, ValueError, "optimizer: expected one of"),
        ({"scheduler": "cosine"}, ValueError, "scheduler: expected one of"),
        ({"epochs": 0}, ValueError, "epochs: expected an integer >= 1"),
        ({"early_stopping_patience": 0}, ValueError, "early_stopping_patience"),
        ({"device": "tpu:7"}, ValueError, "device: not a torch device"),
    ]:
        with pytest.raises(error, match=match):
            Trainer(_model(), train, progress=False, **kwargs)
    with pytest.raises(TypeError, match="train_data: expected a Dataset"):
        Trainer(_model(), 42, progress=False)
    with pytest.raises(ValueError, match="val_data: samples have 1 input"):
        Trainer(_model(), train, (torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8)), progress=False)


# ------------------------------------------------------------------------------------- DDP
_DDP_SCRIPT = textwrap.dedent('''
    import os, sys
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests_root!r})
    from tests.operators.test_trainer import TinyNet, _data
    from pdesuite.operators.training import Trainer

    rank = int(os.environ["RANK"])
    base = sys.argv[1]
    x, y = _data(12, seed=11)
    x[7, 0, 0, 0] = float("nan")
    torch.manual_seed(0)
    model = TinyNet(dropout=0.0)
    trainer = Trainer(model, (x, y), epochs=2, batch_size=2, lr=1e-2, scheduler=None,
                      normalize_inputs=False, normalize_outputs=False, progress=False,
                      out_dir=os.path.join(base, f"out_rank{{rank}}"))
    assert trainer.world_size == 2 and trainer.device.type == "cpu"
    trainer.fit()
    torch.save(model.state_dict(), os.path.join(base, f"weights_rank{{rank}}.pt"))
''')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_ddp_with_torchrun_matches_a_single_process_reference(tmp_path):
    tests_root = str(Path(__file__).resolve().parents[2])
    script = tmp_path / "ddp_train.py"
    script.write_text(_DDP_SCRIPT.format(tests_root=tests_root))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(script), str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tests_root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    rank0 = torch.load(tmp_path / "weights_rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "weights_rank1.pt", weights_only=True)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    # only rank 0 wrote files
    assert (tmp_path / "out_rank0" / METRICS_CSV).is_file()
    assert not (tmp_path / "out_rank1").exists()
    history = json.loads((tmp_path / "out_rank0" / METRICS_JSON).read_text())["epochs"]

    # Single-process reference: each step averages the two ranks' losses (DDP averages their
    # gradients), and a step where either rank's batch holds the NaN sample is skipped by both.
    x, y = _data(12, seed=11)
    x[7, 0, 0, 0] = float("nan")
    reference = _model(seed=0, dropout=0.0)
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=1e-4)
    samplers = [DistributedSampler(TensorDataset(x), num_replicas=2, rank=r, shuffle=True, seed=0)
                for r in range(2)]
    loss_fn = LpLoss()
    skipped, samples = [], []
    for epoch in range(2):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        indices = [list(sampler) for sampler in samplers]
        skipped.append(0)
        samples.append(0)
        for start in range(0, len(indices[0]), 2):
            batches = [idx[start:start + 2] for idx in indices]
            if any(7 in batch for batch in batches):
                skipped[-1] += 1
                continue
            loss = sum(loss_fn(reference(x[b]), y[b]) for b in batches) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            samples[-1] += 4
    assert [record["skipped_batches"] for record in history] == skipped == [1, 1]
    assert [record["samples"] for record in history] == samples == [8, 8]
    for key, tensor in reference.state_dict().items():
        torch.testing.assert_close(rank0[key], tensor, rtol=1e-5, atol=1e-6)
