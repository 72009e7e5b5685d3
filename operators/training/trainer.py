"""``Trainer``: fit a grid operator on ``[B, C, *spatial]`` data, with checkpoints and exact resume.

What one epoch does
-------------------
1. The samples are shuffled by a ``DistributedSampler`` seeded with ``(seed, epoch)`` (one
   replica outside DDP), cut into batches of ``batch_size`` (per process under DDP).
2. Per batch: inputs are encoded by the input normaliser; the model runs (under autocast when
   AMP is on); its output is decoded by the output normaliser; the loss compares the decoded
   prediction with the raw target, so that a relative loss is the relative error in data units.
3. Backward, optimizer step (through a GradScaler under AMP), and a OneCycle step per batch.
4. At the end: a StepLR step; every ``eval_every`` epochs (and at the last) the validation
   metrics; early stopping; ``checkpoint.pt`` (and ``best.pt`` on improvement); the logs
   ``metrics.csv`` and ``metrics.json``. After the last epoch, ``predictions.png``.

Normalisers are per channel and fitted on ``train_data`` only.

Non-finite batches
------------------
A batch whose input or target holds a NaN/inf, or whose loss is not finite, is skipped: no
backward, no optimizer step. Each skip issues a :class:`NonFiniteBatchWarning` and is counted
(``skipped_batches`` per epoch in the logs, ``Trainer.skipped_batches`` in total). An epoch in
which every batch was skipped raises ``FloatingPointError``: nothing can be learnt from it.

Resume and Ctrl-C
-----------------
:meth:`Trainer.resume` continues a run bit for bit on the same device (CPU runs are
deterministic; CUDA is only as deterministic as its kernels); see
:mod:`~pdesuite.operators.training.checkpoint` for what a checkpoint holds. Ctrl-C during
:meth:`Trainer.fit` finishes the current batch, writes ``checkpoint.pt`` at that point and
re-raises ``KeyboardInterrupt``; a resume continues from the next batch exactly. A second Ctrl-C
interrupts at once (the checkpoint is still written, but mid-batch).

Distributed training
--------------------
Under ``torchrun`` each process trains a ``DistributedDataParallel`` replica on its shard of the
data (``DistributedSampler`` pads the last shard by repeating samples); skips and interrupts are
agreed across ranks; validation runs on every rank on the whole validation set, so that every
rank takes the same early-stopping decision. Only rank 0 writes files.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from pdesuite.operators.normalizer import UnitGaussianNormalizer
from pdesuite.operators.training.checkpoint import (
    BEST_NAME,
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    CHECKPOINT_NAME,
    atomic_save,
    capture_rng,
    check_model_matches,
    load_checkpoint,
    model_config_json,
    pdesuite_version,
    qualname,
    rebuild_model,
    resolve_checkpoint,
    restore_rng,
    seed_everything,
)
from pdesuite.operators.training.config import CALLABLE_LOSS, RESUME_OVERRIDES, TrainConfig
from pdesuite.operators.training.data import (
    DataLike,
    NonFiniteBatchWarning,
    ResumableBatchSampler,
    as_dataset,
    sample_shapes,
    split_pair,
)
from pdesuite.operators.training.distributed import CleanInterrupt, Processes, deferred_sigint
from pdesuite.operators.training.figure import PREDICTIONS_PNG, plot_predictions
from pdesuite.operators.training.inference import (
    Inference,
    forward,
    load_trained,
    model_dtype,
    resolve_amp,
)
from pdesuite.operators.training.logs import epoch_summary, write_metrics
from pdesuite.operators.training.optim import build_loss, build_optimizer, build_scheduler

__all__ = ["Trainer"]


class Trainer(Inference):
    """Fit a grid operator, with evaluation, checkpoints, exact resume, AMP and DDP.

    Args:
        model: ``nn.Module`` mapping ``[B, C_in, *spatial]`` to ``[B, C_out, *spatial]``. With a
            ``to_config()`` method its config goes into the checkpoints.
        train_data: Dataset of ``(input, target)`` pairs ``[C, *spatial]``, or a pair of
            tensors/arrays ``(inputs, outputs)`` ``[n, C, *spatial]``. Normalisers are fitted on
            it alone.
        val_data: the same kinds, or None (then ``best.pt`` tracks the training loss).
        config: a :class:`~pdesuite.operators.training.config.TrainConfig` (default: its
            defaults).
        **settings: settings of :class:`TrainConfig` that replace ``config``'s, e.g.
            ``Trainer(model, train, val, epochs=500, lr=1e-3, out_dir="run/")``.

    After :meth:`fit` (which returns the trainer): ``history`` (one dict per epoch, keys
    ``METRIC_COLUMNS``), ``epoch``, ``best_value``, ``best_epoch``, ``stopped_early``,
    ``skipped_batches``. The model keeps the weights of the last epoch; ``best.pt`` holds the
    best ones (see :func:`load_trained`).

    ``resume_hint``: what the interrupt message tells the user to run to continue (default: the
    :meth:`resume` call).
    """

    resume_hint: Optional[str] = None

    def __init__(self, model: nn.Module, train_data: DataLike, val_data: Optional[DataLike] = None,
                 config: Optional[TrainConfig] = None, **settings: Any) -> None:
        config = (config if config is not None else TrainConfig()).replace(**settings)
        self._setup(model, train_data, val_data, config, fresh=True)

    # ----------------------------------------------------------------------------- set-up
    def _setup(self, model: nn.Module, train_data: DataLike, val_data: Optional[DataLike],
               config: TrainConfig, fresh: bool) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        self.config = config
        self.epochs, self.batch_size, self.eval_every = (
            config.epochs,
            config.batch_size,
            config.eval_every,
        )
        self.early_stopping_patience, self.monitor, self.seed = (
            config.early_stopping_patience, config.monitor, config.seed)
        self.periodic = (
            config.periodic if isinstance(config.periodic, bool) else list(config.periodic)
        )
        self.domain = config.domain if not isinstance(config.domain, tuple) else list(config.domain)
        self.out_dir = Path(config.out_dir) if config.out_dir is not None else None

        self.train_data = as_dataset(train_data, "train_data")
        self.val_data = as_dataset(val_data, "val_data") if val_data is not None else None
        self.input_shape, self.output_shape = sample_shapes(self.train_data, "train_data")
        if self.val_data is not None:
            val_in, val_out = sample_shapes(self.val_data, "val_data")
            if val_in[0] != self.input_shape[0] or val_out[0] != self.output_shape[0]:
                raise ValueError(
                    f"val_data: samples have {val_in[0]} input and {val_out[0]} output channels, "
                    f"train_data {self.input_shape[0]} and {self.output_shape[0]}"
                )

        self.processes = Processes.from_environment(config.device)
        self.world_size, self.rank = self.processes.world_size, self.processes.rank
        self.local_rank, self.device = self.processes.local_rank, self.processes.device
        self.amp = resolve_amp(config.amp, self.device)
        if fresh:
            seed_everything(self.seed + self.rank)

        self.model = model.to(self.device)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self._net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        else:
            self._net = self.model
        self._dtype = model_dtype(self.model)
        self.loss_fn = build_loss(config)

        # The sampler owns the shuffle (seed, epoch); the generator seeds the workers.
        self._sampler = DistributedSampler(self.train_data, num_replicas=self.world_size,
                                           rank=self.rank, shuffle=True, seed=self.seed,
                                           drop_last=False)
        self._batch_sampler = ResumableBatchSampler(self._sampler, self.batch_size)
        self._loader_generator = torch.Generator().manual_seed(self.seed)
        self._loader = DataLoader(self.train_data, batch_sampler=self._batch_sampler,
                                  num_workers=config.num_workers, generator=self._loader_generator,
                                  pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = self._batch_sampler.batches_per_epoch

        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = build_scheduler(self.optimizer, config, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

        # Training position and results.
        self.epoch = 0
        self._batches_done = 0
        self._epoch_acc = self._new_accumulators()
        self._epoch_loader_state: Optional[torch.Tensor] = None
        self.history: list[dict[str, Any]] = []
        self.best_value: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self._evals_without_improvement = 0
        self.stopped_early = False
        self.skipped_batches = 0
        self._interrupt_requested = False

        self.input_normalizer = UnitGaussianNormalizer() if config.normalize_inputs else None
        self.output_normalizer = UnitGaussianNormalizer() if config.normalize_outputs else None
        if fresh:
            self._fit_normalizers()
            if self.out_dir is not None and self.is_main_process:
                self.out_dir.mkdir(parents=True, exist_ok=True)

    def _fit_normalizers(self) -> None:
        if self.input_normalizer is None and self.output_normalizer is None:
            return
        loader = DataLoader(self.train_data, batch_size=max(self.batch_size, 64), shuffle=False,
                            num_workers=self.config.num_workers, generator=torch.Generator())
        for batch in loader:
            x, y = split_pair(batch, "train_data")
            if self.input_normalizer is not None:
                self.input_normalizer.partial_fit(x)
            if self.output_normalizer is not None:
                self.output_normalizer.partial_fit(y)
        self._normalizers_to_device()

    def _normalizers_to_device(self) -> None:
        for normalizer in (self.input_normalizer, self.output_normalizer):
            if normalizer is not None:
                normalizer.mean = normalizer.mean.to(self.device)
                normalizer.std = normalizer.std.to(self.device)

    @property
    def is_main_process(self) -> bool:
        return self.processes.is_main

    # --------------------------------------------------------------------------- training
    @staticmethod
    def _new_accumulators() -> dict[str, float]:
        return {"loss_sum": 0.0, "samples": 0, "skipped": 0, "time": 0.0}

    def fit(self) -> "Trainer":
        """Train until ``epochs`` (or early stopping), then write ``predictions.png`` (the best
        weights on the first validation samples, or training samples without validation data);
        returns the trainer (``history`` holds the epochs).

        Raises FloatingPointError when every batch of an epoch is skipped as non-finite, and
        re-raises KeyboardInterrupt after writing the checkpoint.
        """
        if self.stopped_early:
            self._say(f"early stopping already ended this run at epoch {self.epoch}")
            return self
        self._interrupt_requested = False
        with deferred_sigint(self._request_stop):
            try:
                while self.epoch < self.epochs and not self.stopped_early:
                    self._run_epoch()
            except KeyboardInterrupt:
                self._save_on_interrupt()
                raise
        self._write_predictions()
        return self

    def _run_epoch(self) -> None:
        from tqdm.auto import tqdm

        epoch = self.epoch
        if self._batches_done == 0:
            self._epoch_acc = self._new_accumulators()
            self._epoch_loader_state = self._loader_generator.get_state()
        else:
            # A mid-epoch resume: rebuild this epoch's batches from where it began.
            self._loader_generator.set_state(self._epoch_loader_state)
        self._sampler.set_epoch(epoch)
        self._batch_sampler.skip = self._batches_done
        started = time.perf_counter()
        self.model.train()
        bar = tqdm(self._loader, total=self.steps_per_epoch, initial=self._batches_done,
                   desc=f"epoch {epoch + 1}/{self.epochs}", leave=False, dynamic_ncols=True,
                   disable=not (self.config.progress and self.is_main_process))
        try:
            for batch in bar:
                loss_value = self._train_step(batch, epoch)
                self._batches_done += 1
                if loss_value is not None:
                    bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
                if self.processes.any(self._interrupt_requested):
                    self._epoch_acc["time"] += time.perf_counter() - started
                    raise CleanInterrupt()
        finally:
            bar.close()
        self._epoch_acc["time"] += time.perf_counter() - started
        self._finish_epoch(epoch)
        if self.processes.any(self._interrupt_requested):
            raise CleanInterrupt()

    def _train_step(self, batch: Any, epoch: int) -> Optional[float]:
        x, y = split_pair(batch, "train_data")
        x = x.to(self.device, self._dtype, non_blocking=True)
        y = y.to(self.device, self._dtype, non_blocking=True)
        bad_data = not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all()))
        if self.processes.any(bad_data):
            self._skip(epoch, "an input or target is NaN or infinite")
            return None
        pred = forward(self._net, x, self.input_normalizer, self.output_normalizer,
                       self.device, self.amp)
        if pred.shape != y.shape:
            raise ValueError(f"model: predicts shape {tuple(pred.shape)} for targets of shape "
                             f"{tuple(y.shape)}")
        loss = self.loss_fn(pred, y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError("loss: the loss callable must return a scalar tensor")
        loss_value = float(loss.detach())
        if self.processes.any(not math.isfinite(loss_value)):
            self.optimizer.zero_grad(set_to_none=True)
            self._skip(epoch, f"the loss is {loss_value}")
            return None
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.config.scheduler == "onecycle":
            self.scheduler.step()
        self._epoch_acc["loss_sum"] += loss_value * x.shape[0]
        self._epoch_acc["samples"] += x.shape[0]
        return loss_value

    def _skip(self, epoch: int, reason: str) -> None:
        self._epoch_acc["skipped"] += 1
        self.skipped_batches += 1
        if self.is_main_process:
            warnings.warn(
                f"epoch {epoch + 1}, batch {self._batches_done + 1}: {reason}; batch skipped "
                f"({self.skipped_batches} skipped in this run so far)",
                NonFiniteBatchWarning, stacklevel=3)

    def _finish_epoch(self, epoch: int) -> None:
        loss_sum, samples = self.processes.sum(
            [self._epoch_acc["loss_sum"], self._epoch_acc["samples"]]
        )
        if samples == 0:
            raise FloatingPointError(
                f"epoch {epoch + 1}: all {self._epoch_acc['skipped']} batches had a non-finite "
                "input, target or loss; nothing was trained (check the data, or lower the "
                "learning rate if the model diverged)"
            )
        lr = float(self.optimizer.param_groups[0]["lr"])
        if self.config.scheduler == "step":
            self.scheduler.step()
        record: dict[str, Any] = {
            "epoch": epoch + 1, "train_loss": loss_sum / samples, "val_rel_l2": None,
            "val_h1": None, "lr": lr, "skipped_batches": int(self._epoch_acc["skipped"]),
            "samples": int(samples), "epoch_time_s": float(self._epoch_acc["time"]),
        }
        if self.val_data is not None:
            improved = False
            if (epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs:
                metrics = self.evaluate(self.val_data)
                record["val_rel_l2"], record["val_h1"] = metrics["rel_l2"], metrics["h1"]
                improved = self._record_value(metrics[self.monitor], epoch)
                if not improved:
                    self._evals_without_improvement += 1
                    patience = self.early_stopping_patience
                    if patience is not None and self._evals_without_improvement >= patience:
                        self.stopped_early = True
        else:
            improved = self._record_value(record["train_loss"], epoch)
        self.history.append(record)
        self.epoch = epoch + 1
        self._batches_done = 0
        self._epoch_acc = self._new_accumulators()
        self._epoch_loader_state = None
        state = self._checkpoint_state(gather=True)
        if self.out_dir is not None and self.is_main_process:
            if improved:
                atomic_save(state, self.out_dir / BEST_NAME)
            atomic_save(state, self.out_dir / CHECKPOINT_NAME)
            self._write_logs()
        self._say(
            epoch_summary(record, self.epochs) + (" (early stop)" if self.stopped_early else "")
        )

    def _record_value(self, value: float, epoch: int) -> bool:
        """Note a monitored value; True (and reset the patience count) if it is the best yet."""
        if self.best_value is not None and not value < self.best_value:
            return False
        self.best_value, self.best_epoch = value, epoch + 1
        self._evals_without_improvement = 0
        return True

    def _say(self, message: str) -> None:
        if self.config.verbose and self.is_main_process:
            from tqdm.auto import tqdm

            tqdm.write(message, file=sys.stderr)

    def _write_predictions(self) -> None:
        if self.out_dir is None or not self.is_main_process:
            return
        path = self.out_dir / PREDICTIONS_PNG
        try:
            best = load_trained(self.out_dir, model=copy.deepcopy(self.model), device=self.device,
                                amp=self.amp)
            plot_predictions(
                best, self.val_data if self.val_data is not None else self.train_data, path
            )
        except (ValueError, TypeError, RuntimeError, OSError) as exc:
            warnings.warn(f"{path}: not written ({exc})", UserWarning, stacklevel=3)

    # ------------------------------------------------------------------------- interrupt
    def _request_stop(self) -> None:
        self._interrupt_requested = True
        if self.is_main_process:
            print("\ninterrupt: finishing the current batch, then writing the checkpoint "
                  "(Ctrl-C again to stop now)", file=sys.stderr)

    def _save_on_interrupt(self) -> None:
        if self.out_dir is None:
            return
        exc_type = sys.exc_info()[0]
        clean = exc_type is not None and issubclass(exc_type, CleanInterrupt)
        if not clean and self.is_main_process:
            warnings.warn(
                "training interrupted in the middle of a batch: the checkpoint is "
                "written, but a resume from it is not bit-exact",
                UserWarning,
                stacklevel=3,
            )
        # Only an interrupt that every rank agreed on may gather across ranks.
        state = self._checkpoint_state(gather=clean)
        state["exact"] = clean
        if self.is_main_process:
            atomic_save(state, self.out_dir / CHECKPOINT_NAME)
            self._write_logs()
            hint = self.resume_hint or f"Trainer.resume({str(self.out_dir)!r}, ...)"
            self._say(f"checkpoint written to {self.out_dir / CHECKPOINT_NAME} at epoch "
                      f"{self.epoch + 1}, batch {self._batches_done}; resume with {hint}")

    # ----------------------------------------------------------------------- checkpoints
    def _checkpoint_state(self, gather: bool) -> dict[str, Any]:
        rng = capture_rng()
        normalizers = {
            "inputs": self.input_normalizer.state_dict() if self.input_normalizer else None,
            "outputs": self.output_normalizer.state_dict() if self.output_normalizer else None,
        }
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "pdesuite_version": pdesuite_version(),
            "torch_version": str(torch.__version__),
            "model_class": qualname(self.model),
            "model_config": model_config_json(self.model),
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler_state": self.scaler.state_dict() if self.amp else None,
            "normalizers": normalizers,
            "trainer_config": self.config.checkpoint_dict(),
            "data": {"input_shape": list(self.input_shape), "output_shape": list(self.output_shape),
                     "n_train": len(self.train_data)},
            "epoch": self.epoch,
            "batches_done": self._batches_done,
            "epoch_accumulators": dict(self._epoch_acc),
            "epoch_loader_state": self._epoch_loader_state,
            "history": [dict(record) for record in self.history],
            "best": {"value": self.best_value, "epoch": self.best_epoch},
            "evals_without_improvement": self._evals_without_improvement,
            "stopped_early": self.stopped_early,
            "skipped_batches": self.skipped_batches,
            "world_size": self.world_size,
            "rng_per_rank": self.processes.gather(rng) if gather else [rng],
            "loader_generator": self._loader_generator.get_state(),
            "exact": True,
        }

    def save_checkpoint(self, path: Union[str, os.PathLike, None] = None) -> Path:
        """Write the full training state (default ``out_dir/checkpoint.pt``); returns the path.

        Under DDP every rank must call it (the RNG states are gathered); rank 0 writes.
        """
        if path is None:
            if self.out_dir is None:
                raise ValueError("path: no out_dir was given to the trainer, so pass a path")
            path = self.out_dir / CHECKPOINT_NAME
        path = Path(path)
        state = self._checkpoint_state(gather=True)
        if self.is_main_process:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_save(state, path)
        return path

    def load_state(self, path: Union[str, os.PathLike]) -> None:
        """Load a checkpoint of this run into the trainer: weights, optimizer, schedule,
        normalisers, position, history and RNG states.

        Raises ValueError naming the file and the mismatch when the checkpoint holds another
        model class, config or parameter shape, data of other shapes, or another scheduler.
        """
        path = resolve_checkpoint(path, CHECKPOINT_NAME)
        checkpoint = load_checkpoint(path)
        check_model_matches(path, checkpoint, self.model)
        data = checkpoint["data"]
        for name, saved, current in (("input", data["input_shape"], self.input_shape),
                                     ("output", data["output_shape"], self.output_shape)):
            if list(saved) != list(current):
                raise ValueError(f"{path}: the run was trained on {name} samples of shape "
                                 f"{tuple(saved)}, train_data has {tuple(current)}")
        saved_config, current_config = checkpoint["trainer_config"], self.config.checkpoint_dict()
        for key in ("scheduler", "optimizer", "normalize_inputs", "normalize_outputs"):
            if saved_config[key] != current_config[key]:
                raise ValueError(f"{path}: {key}={saved_config[key]!r} in the checkpoint, "
                                 f"{current_config[key]!r} in this trainer")
        if int(data["n_train"]) != len(self.train_data):
            warnings.warn(f"{path}: the run had {data['n_train']} training samples, train_data has "
                          f"{len(self.train_data)}; the resumed run will not match an "
                          "uninterrupted one", UserWarning, stacklevel=2)
        if saved_config["scheduler"] == "onecycle":
            saved_total = checkpoint["scheduler_state"]["total_steps"]
            if saved_total != self.epochs * self.steps_per_epoch:
                raise ValueError(
                    f"{path}: the OneCycle schedule spans {saved_total} steps, this trainer "
                    f"{self.epochs} epochs × {self.steps_per_epoch} batches; a OneCycle run "
                    "cannot change its length"
                )

        self.model.load_state_dict(checkpoint["model_state"])
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler_state"])
        if self.amp and checkpoint.get("scaler_state"):
            self.scaler.load_state_dict(checkpoint["scaler_state"])
        for normalizer, key in (
            (self.input_normalizer, "inputs"),
            (self.output_normalizer, "outputs"),
        ):
            if normalizer is not None:
                normalizer.load_state_dict(checkpoint["normalizers"][key])
        self._normalizers_to_device()
        self.epoch = int(checkpoint["epoch"])
        self._batches_done = int(checkpoint["batches_done"])
        accumulators = checkpoint["epoch_accumulators"]
        self._epoch_acc = {key: accumulators[key] for key in self._new_accumulators()}
        self._epoch_loader_state = checkpoint["epoch_loader_state"]
        self.history = [dict(record) for record in checkpoint["history"]]
        self.best_value = checkpoint["best"]["value"]
        self.best_epoch = checkpoint["best"]["epoch"]
        self._evals_without_improvement = int(checkpoint["evals_without_improvement"])
        self.stopped_early = bool(checkpoint["stopped_early"])
        self.skipped_batches = int(checkpoint["skipped_batches"])
        if (
            self.stopped_early
            and self.early_stopping_patience != saved_config["early_stopping_patience"]
        ):
            # A new patience is a new decision about stopping.
            self.stopped_early = False
        self._loader_generator.set_state(checkpoint["loader_generator"])
        rng_per_rank = checkpoint["rng_per_rank"]
        if len(rng_per_rank) == self.world_size:
            restore_rng(rng_per_rank[self.rank])
        else:
            warnings.warn(
                f"{path}: saved by {checkpoint['world_size']} processes, resumed by "
                f"{self.world_size}; RNG states are not restored",
                UserWarning,
                stacklevel=2,
            )
        if not checkpoint.get("exact", True):
            warnings.warn(f"{path}: written after an interrupt in the middle of a batch; the "
                          "resumed run is not bit-exact", UserWarning, stacklevel=2)

    @classmethod
    def resume(cls, out_dir: Union[str, os.PathLike], train_data: DataLike,
               val_data: Optional[DataLike] = None, *, model: Optional[nn.Module] = None,
               **overrides: Any) -> "Trainer":
        """Rebuild the trainer of a run from ``out_dir/checkpoint.pt`` and load its state; then
        call :meth:`fit` to continue it.

        Args:
            out_dir: the run directory (or a checkpoint file in it); new files go there too.
            train_data, val_data: the same data as the run used.
            model: a model of the run's class and config (default: rebuilt through the model
                registry from the stored config).
            overrides: only ``RESUME_OVERRIDES``: ``epochs`` (to train longer; not for
                OneCycle), ``progress``, ``verbose``, ``device``, ``eval_every``,
                ``early_stopping_patience``, ``num_workers``, and ``loss`` (required when the
                run used a loss callable).

        Raises ValueError for a checkpoint that does not fit (see :meth:`load_state`) and for
        overrides that would change the run.
        """
        unknown = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if unknown:
            raise ValueError(f"overrides: {unknown} cannot change on resume (allowed: "
                             f"{list(RESUME_OVERRIDES)}); start a new run instead")
        path = resolve_checkpoint(out_dir, CHECKPOINT_NAME)
        checkpoint = load_checkpoint(path)
        if model is None:
            model = rebuild_model(path, checkpoint)
        saved = checkpoint["trainer_config"]
        if saved["loss"] == CALLABLE_LOSS and "loss" not in overrides:
            raise ValueError(
                f"loss: the run in {path} used a loss callable; pass it again as loss="
            )
        if isinstance(overrides.get("loss"), str) and overrides["loss"] != saved["loss"]:
            raise ValueError(f"loss: the run used {saved['loss']!r}, not {overrides['loss']!r}")
        config = TrainConfig.from_dict({**saved, "out_dir": path.parent}, **overrides)
        trainer = cls.__new__(cls)
        trainer._setup(model, train_data, val_data, config, fresh=False)
        trainer.load_state(path)
        return trainer

    # ------------------------------------------------------------------------------ logs
    def _write_logs(self) -> None:
        if self.out_dir is None:
            return
        write_metrics(self.out_dir, self.history, {
            "best": {"metric": f"val_{self.monitor}" if self.val_data is not None else "train_loss",
                     "value": self.best_value, "epoch": self.best_epoch},
            "stopped_early": self.stopped_early,
            "skipped_batches": self.skipped_batches,
            "model_class": qualname(self.model),
            "model_config": json.loads(model_config_json(self.model) or "null"),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "trainer": self.config.checkpoint_dict(),
            "device": str(self.device),
            "world_size": self.world_size,
            "pdesuite_version": pdesuite_version(),
        })
