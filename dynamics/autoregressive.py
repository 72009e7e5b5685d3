"""An autoregressive neural-operator baseline: learn one step ``x_t -> x_{t+1}``, then roll out.

A grid operator of :mod:`pdesuite.operators` (FNO by default, any name of its registry) is
trained by the suite's :class:`~pdesuite.operators.training.Trainer` on every pair of
consecutive frames of the training trajectories, and a forecast applies it to its own output
``steps`` times. The Trainer's normalisers (per channel, fitted on the training frames) and its
loss (relative L2 by default) apply as in any other run, so the one-step model is the same one
``pdesuite train`` would give on these pairs.

CPU by default and seeded: the model's initial weights come from ``seed`` (without touching
the caller's global torch RNG), the Trainer seeds the batch order from the same ``seed``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import torch

from pdesuite.operators.models import build_model
from pdesuite.operators.training import TrainConfig, Trainer

__all__ = ["AutoregressiveOperator"]

#: Settings in which this baseline departs from :class:`TrainConfig`'s defaults: the CPU, and
#: quiet (no progress bar, no per-epoch line) unless asked for.
DEFAULT_SETTINGS = {"device": "cpu", "progress": False, "verbose": False}


class AutoregressiveOperator:
    """A one-step grid operator rolled out autoregressively.

    Args:
        model: a model name of :data:`pdesuite.operators.models.MODELS` (default ``"fno"``).
        model_config: constructor arguments of the model besides ``in_channels``,
            ``out_channels`` and ``ndim``, which come from the data (e.g. ``{"modes": 12,
            "width": 32}``); default the model's own defaults.
        config: a :class:`~pdesuite.operators.training.TrainConfig` (default its defaults with
            ``device="cpu"``, ``progress=False``, ``verbose=False``).
        **settings: :class:`TrainConfig` settings that replace ``config``'s, e.g.
            ``epochs=50, lr=1e-3, batch_size=20, seed=0, out_dir="run/"``.

    Attributes after ``fit``: ``model_`` (the trained ``nn.Module``), ``trainer_`` (the
    :class:`Trainer`, with its ``history``), ``state_shape_`` (``[C, *spatial]``) and
    ``n_pairs_``.
    """

    def __init__(self, model: str = "fno", model_config: Optional[Mapping[str, Any]] = None,
                 config: Optional[TrainConfig] = None, **settings: Any) -> None:
        if not isinstance(model, str):
            raise TypeError(f"model: expected a registered model name, got "
                            f"{type(model).__name__}")
        if model_config is not None and not isinstance(model_config, Mapping):
            raise TypeError(f"model_config: expected a mapping, got "
                            f"{type(model_config).__name__}")
        reserved = sorted({"in_channels", "out_channels", "ndim"} & set(model_config or {}))
        if reserved:
            raise ValueError(f"model_config: {reserved} come from the data; leave them out")
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
        base = config if config is not None else TrainConfig(**DEFAULT_SETTINGS)
        self.model = model
        self.model_config = dict(model_config or {})
        self.config = base.replace(**settings)

    # ------------------------------------------------------------------------ fitting
    @staticmethod
    def _check_trajectories(trajectories: Any) -> np.ndarray:
        array = np.asarray(trajectories)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"trajectories: expected real numbers, got dtype {array.dtype}")
        if array.ndim < 4:
            raise ValueError(f"trajectories: expected [n, T, C, *spatial] (at least one spatial "
                             f"axis), got shape {array.shape}")
        if array.shape[0] < 1 or array.shape[1] < 2:
            raise ValueError(f"trajectories: need at least one trajectory of 2 frames, got "
                             f"shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError("trajectories: contains NaN or inf")
        return array

    def fit(self, trajectories: Any) -> "AutoregressiveOperator":
        """Train the one-step model on all consecutive frame pairs; returns self.

        Args:
            trajectories: ``[n, T, C, *spatial]`` (array or tensor), ``T >= 2``.
        """
        array = self._check_trajectories(trajectories)
        n, frames, channels, *spatial = array.shape
        inputs = torch.as_tensor(array[:, :-1].reshape(n * (frames - 1), channels, *spatial),
                                 dtype=torch.float32)
        targets = torch.as_tensor(array[:, 1:].reshape(n * (frames - 1), channels, *spatial),
                                  dtype=torch.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            network = build_model(self.model, in_channels=channels, out_channels=channels,
                                  ndim=len(spatial), **self.model_config)
        self.trainer_ = Trainer(network, (inputs, targets), None, config=self.config).fit()
        self.model_ = self.trainer_.model
        self.state_shape_ = (channels, *spatial)
        self.n_pairs_ = len(inputs)
        return self

    # ----------------------------------------------------------------------- forecasts
    def predict(self, x0: Any, steps: int) -> np.ndarray:
        """Roll the one-step model out from a batch of states.

        Args:
            x0: ``[B, C, *spatial]`` (array or tensor), the shape of the training frames.
            steps: number of steps ahead, >= 0.

        Returns:
            float64 ``[B, steps + 1, C, *spatial]``; index 0 is ``x0``, index ``t`` the state
            after ``t`` applications of the model (each fed its own previous output).
        """
        if not hasattr(self, "trainer_"):
            raise RuntimeError("AutoregressiveOperator: call fit(...) first")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps: expected an int >= 0, got {steps!r}")
        state = torch.as_tensor(np.asarray(x0, dtype=np.float32))
        if tuple(state.shape[1:]) != self.state_shape_ or state.ndim != len(self.state_shape_) + 1:
            raise ValueError(f"x0: expected [B, {', '.join(map(str, self.state_shape_))}], got "
                             f"shape {tuple(state.shape)}")
        if not bool(torch.isfinite(state).all()):
            raise ValueError("x0: contains NaN or inf")
        frames = [state]
        for _ in range(int(steps)):
            frames.append(self.trainer_.predict(frames[-1]).to(torch.float32))
        return torch.stack(frames, dim=1).to(torch.float64).numpy()
