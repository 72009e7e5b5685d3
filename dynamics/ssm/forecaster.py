"""``SSMForecaster``: train an SSM time-stepper on trajectories, forecast by its recurrence.

An estimator in the PyDMD manner, like the Koopman ones: hyperparameters in ``__init__``,
``fit(trajectories)`` returns self, ``predict(x0, steps)`` returns ``[B, steps + 1, C, *S]`` with
index 0 the last given frame, and ``save``/``load``.

Training runs the suite's :class:`~pdesuite.operators.training.Trainer` (progress bar, seeded
batch order, checkpoints written atomically when ``checkpoint_dir`` is given) on every window of
``frames_in + rollout_steps`` consecutive training frames, with a teacher-forcing loss (the
one-step predictions of the window's frames after ``frames_in``, all at once, the convolution
mode) plus ``rollout_weight`` times
a rollout loss (the recurrence run from the window's first ``frames_in`` frames on its own
predictions); see :mod:`pdesuite.dynamics.ssm.training`. A forecast steps the recurrence
through the given frames, then on, ``O(1)`` per step for S4D, DSS and S5 (STU keeps a window of
its last ``seq_len`` inputs).

Saved as a directory: ``forecaster.json`` (format, hyperparameters, the fitted shapes and the
training history) and ``weights.pt`` (a ``state_dict``, read back with
``torch.load(weights_only=True)``); no pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch

from pdesuite.dynamics.ssm.models import LAYERS, NORMS
from pdesuite.dynamics.ssm.stepper import SSMStepper
from pdesuite.dynamics.ssm.training import TeacherForcingRolloutLoss, WindowNetwork, Windows

__all__ = ["FORMAT", "SSMForecaster", "load_forecaster"]

FORMAT = "pdesuite.dynamics.ssm.forecaster"
FORMAT_VERSION = 1
JSON_NAME = "forecaster.json"
WEIGHTS_NAME = "weights.pt"
#: Frames of the suite's trajectories are far apart next to the long sequences the layers'
#: default ``Δ ∈ [1e-3, 1e-1]`` is made for; a range up to 1 fits them (see SSMStepper).
FRAME_STEP_RANGE = {"dt_min": 0.01, "dt_max": 1.0}

PathLike = Union[str, os.PathLike]


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def _positive_float(value: Any, name: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return float(value)


def _options(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}: expected a mapping or None, got {type(value).__name__}")
    return dict(value)


class SSMForecaster:
    """Learn a PDE's time stepping with a state-space model and forecast trajectories.

    Args:
        layer: "s4d" (default), "dss", "s5" or "stu".
        d_model: width of the SSM blocks (default 32).
        n_layers: SSM blocks (default 2).
        d_state: state size of S4D, DSS and S5 (default 16; STU has none).
        layer_options: further keyword arguments of the layer, over the defaults
            (``dt_min=0.01, dt_max=1.0`` for S4D, DSS and S5; ``seq_len`` = the training
            trajectories' length for DSS and STU; S5's ``seed`` = ``seed``).
        norm: the blocks' normalisation, "none" (default, see SSMStepper) or "layer".
        dropout: inside the blocks (default 0).
        trunk: None (default: every point's channels evolve alone), or a grid operator of
            :data:`pdesuite.operators.models.MODELS` (``"fno"``, ...) that encodes each frame,
            mixing space, into ``trunk_channels`` features per point.
        trunk_channels: the trunk's output channels (default 16).
        trunk_options: its constructor arguments besides the channels and ``ndim``
            (e.g. ``{"modes": 12, "width": 16, "layers": 2, "padding": 0}``).
        frames_in: frames a forecast starts from (default 10); ``predict`` takes this many.
        rollout_steps: frames of the training rollout after ``frames_in`` (default 5; 0 trains
            by teacher forcing alone). A training window is ``frames_in + max(rollout_steps,
            1)`` frames.
        rollout_weight: weight of the rollout loss against the teacher-forcing one (default 1).
        window_stride: frames between the starts of training windows (default 1).
        epochs: passes over all windows (default 100).
        lr: Adam's learning rate (default 3e-3), halved at each third of the epochs.
        batch_size: windows per batch (default 8).
        weight_decay: Adam's L2 penalty (default 0).
        seed: seeds the weights, the batch order and S5's initialisation (default 0).
        device: a torch device; None (default): CUDA when available, else the CPU.
        progress: the Trainer's progress bar (default False).
        verbose: the Trainer's line per epoch (default False).
        checkpoint_dir: where the Trainer writes ``checkpoint.pt``, ``best.pt`` and its logs
            (default None: nothing is written).

    After ``fit``: ``network_`` (the trained :class:`~pdesuite.dynamics.ssm.training.
    WindowNetwork`), ``trainer_``, ``history_`` (one dict per epoch, the Trainer's),
    ``state_shape_`` (``(C, *spatial)``), ``seq_len_``, ``n_windows_``, and the properties
    :attr:`parameter_count` and :attr:`epoch_seconds`.
    """

    def __init__(self, layer: str = "s4d", d_model: int = 32, n_layers: int = 2,
                 d_state: int = 16, layer_options: Optional[Mapping[str, Any]] = None,
                 norm: str = "none", dropout: float = 0.0, trunk: Optional[str] = None,
                 trunk_channels: int = 16, trunk_options: Optional[Mapping[str, Any]] = None,
                 frames_in: int = 10, rollout_steps: int = 5, rollout_weight: float = 1.0,
                 window_stride: int = 1, epochs: int = 100, lr: float = 3e-3,
                 batch_size: int = 8, weight_decay: float = 0.0, seed: int = 0,
                 device: Any = None, progress: bool = False, verbose: bool = False,
                 checkpoint_dir: Optional[PathLike] = None) -> None:
        if layer not in LAYERS:
            raise ValueError(f"layer: expected one of {sorted(LAYERS)}, got {layer!r}")
        if norm not in NORMS:
            raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
        if trunk is not None and not isinstance(trunk, str):
            raise TypeError(f"trunk: expected a model name of pdesuite.operators or None, got "
                            f"{type(trunk).__name__}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed: expected an int, got {seed!r}")
        self.layer, self.norm, self.dropout, self.trunk = layer, norm, float(dropout), trunk
        self.d_model = _positive_int(d_model, "d_model")
        self.n_layers = _positive_int(n_layers, "n_layers")
        self.d_state = _positive_int(d_state, "d_state")
        self.layer_options = _options(layer_options, "layer_options")
        self.trunk_channels = _positive_int(trunk_channels, "trunk_channels")
        self.trunk_options = _options(trunk_options, "trunk_options")
        self.frames_in = _positive_int(frames_in, "frames_in")
        self.rollout_steps = _positive_int(rollout_steps, "rollout_steps", minimum=0)
        self.rollout_weight = _positive_float(rollout_weight, "rollout_weight", allow_zero=True)
        self.window_stride = _positive_int(window_stride, "window_stride")
        self.epochs = _positive_int(epochs, "epochs")
        self.lr = _positive_float(lr, "lr")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.weight_decay = _positive_float(weight_decay, "weight_decay", allow_zero=True)
        self.seed = int(seed)
        self.device = None if device is None else str(device)
        self.progress, self.verbose = bool(progress), bool(verbose)
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments, as JSON values."""
        names = ("layer", "d_model", "n_layers", "d_state", "layer_options", "norm", "dropout",
                 "trunk", "trunk_channels", "trunk_options", "frames_in", "rollout_steps",
                 "rollout_weight", "window_stride", "epochs", "lr", "batch_size",
                 "weight_decay", "seed", "device", "progress", "verbose", "checkpoint_dir")
        return {name: getattr(self, name) for name in names}

    # ----------------------------------------------------------------------- building
    def _layer_options(self, seq_len: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        if self.layer in ("s4d", "dss", "s5"):
            defaults.update(FRAME_STEP_RANGE, d_state=self.d_state)
        if self.layer in ("dss", "stu"):
            defaults["seq_len"] = seq_len
        if self.layer == "stu":
            defaults["num_filters"] = min(24, seq_len)
        if self.layer == "s5":
            defaults["seed"] = self.seed
        return {**defaults, **self.layer_options}

    def _build(self, state_shape: tuple[int, ...], seq_len: int, mean: torch.Tensor,
               scale: torch.Tensor) -> WindowNetwork:
        channels, spatial = state_shape[0], state_shape[1:]
        trunk = None
        if self.trunk is not None:
            from pdesuite.operators.models import build_model

            trunk = build_model(self.trunk, in_channels=channels,
                                out_channels=self.trunk_channels, ndim=len(spatial),
                                **self.trunk_options)
        stepper = SSMStepper(channels, self.d_model, self.n_layers, self.layer,
                             self._layer_options(seq_len), self.dropout, trunk,
                             self.trunk_channels if trunk is not None else None, self.norm)
        config = {"forecaster": self.get_params(), "state_shape": list(state_shape),
                  "seq_len": seq_len}
        return WindowNetwork(stepper, self.frames_in, self.rollout_steps, mean, scale,
                             len(spatial), config)

    # ------------------------------------------------------------------------ fitting
    def _check_trajectories(self, trajectories: Any) -> np.ndarray:
        if isinstance(trajectories, torch.Tensor):
            trajectories = trajectories.detach().cpu().numpy()
        array = np.asarray(trajectories)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"trajectories: expected real numbers, got dtype {array.dtype}")
        if array.ndim < 4:
            raise ValueError(f"trajectories: expected [n, T, C, *spatial] (at least one spatial "
                             f"axis), got shape {array.shape}")
        needed = self.frames_in + 1
        if array.shape[0] < 1 or array.shape[1] < needed:
            raise ValueError(f"trajectories: frames_in={self.frames_in} needs trajectories of "
                             f"at least {needed} frames, got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError("trajectories: contains NaN or inf")
        return array

    def fit(self, trajectories: Any) -> "SSMForecaster":
        """Train on every window of the trajectories; returns self.

        Args:
            trajectories: ``[n, T, C, *spatial]`` (array or tensor), ``T >= frames_in + 1``.
        """
        from pdesuite.operators.training import TrainConfig, Trainer

        array = self._check_trajectories(trajectories)
        n, frames, channels, *spatial = array.shape
        rollout = min(self.rollout_steps, frames - self.frames_in)
        length = self.frames_in + max(rollout, 1)
        axes = (0, 1, *range(3, array.ndim))
        mean = torch.as_tensor(array.mean(axis=axes), dtype=torch.float32)
        spread = array.std(axis=axes)
        scale = torch.as_tensor(np.where(spread > 0, spread, 1.0), dtype=torch.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            network = self._build((channels, *spatial), frames, mean, scale)
        network.rollout_steps = rollout
        windows = Windows(torch.as_tensor(array, dtype=torch.float32), length, self.frames_in,
                          rollout > 0, self.window_stride)
        loss = TeacherForcingRolloutLoss(channels, length - self.frames_in,
                                          self.rollout_weight)
        config = TrainConfig(loss=loss, lr=self.lr, weight_decay=self.weight_decay,
                             step_size=max(1, self.epochs // 3), gamma=0.5,
                             epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                             amp=False, normalize_inputs=False, normalize_outputs=False,
                             out_dir=self.checkpoint_dir, device=self.device or "auto",
                             progress=self.progress, verbose=self.verbose)
        self.trainer_ = Trainer(network, windows, None, config=config).fit()
        self.network_ = network.eval()
        self.history_ = [dict(record) for record in self.trainer_.history]
        self.state_shape_ = (channels, *spatial)
        self.seq_len_ = frames
        self.n_windows_ = len(windows)
        return self

    # ---------------------------------------------------------------------- results
    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise RuntimeError("SSMForecaster: call fit(...) first")

    @property
    def parameter_count(self) -> int:
        """Trainable real scalars of the network (a complex weight counts twice: it is stored
        as two reals)."""
        self._check_fitted()
        return sum(p.numel() for p in self.network_.parameters() if p.requires_grad)

    @property
    def epoch_seconds(self) -> float:
        """Mean wall time of a training epoch, seconds."""
        self._check_fitted()
        times = [record["epoch_time_s"] for record in self.history_]
        return float(np.mean(times)) if times else float("nan")

    # --------------------------------------------------------------------- forecasts
    def predict(self, x0: Any, steps: int) -> np.ndarray:
        """Forecast from the last ``frames_in`` frames of each trajectory.

        Args:
            x0: ``[B, frames_in, C, *spatial]`` (array or tensor), the training frames' shape.
            steps: frames to forecast, >= 0.

        Returns:
            float64 ``[B, steps + 1, C, *spatial]``; index 0 is the last frame of ``x0``,
            index ``t`` the ``t``-th frame after it.
        """
        self._check_fitted()
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps: expected an int >= 0, got {steps!r}")
        if isinstance(x0, torch.Tensor):
            x0 = x0.detach().cpu().numpy()
        array = np.asarray(x0)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"x0: expected real numbers, got dtype {array.dtype}")
        expected = (self.frames_in, *self.state_shape_)
        if array.ndim != len(expected) + 1 or array.shape[1:] != expected:
            raise ValueError(f"x0: expected [B, frames_in, C, *spatial] = [B, "
                             f"{', '.join(map(str, expected))}], got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError("x0: contains NaN or inf")
        device = self.network_.mean.device
        frames = torch.as_tensor(array, dtype=self.network_.mean.dtype, device=device)
        self.network_.eval()
        parts = [array[:, -1:].astype(np.float64)]
        if steps:
            with torch.no_grad():
                forecast = self.network_.forecast(frames, int(steps))       # (B, steps, C, *S)
            parts.append(forecast.to("cpu", torch.float64).numpy())
        return np.concatenate(parts, axis=1)

    # ----------------------------------------------------------------------- saving
    def save(self, path: PathLike, overwrite: bool = False) -> Path:
        """Write the forecaster to the directory ``path`` (JSON + ``weights.pt``); returns it.

        Raises FileExistsError when ``path`` is a file, or a non-empty directory without
        ``overwrite``.
        """
        from pdesuite.operators.training.checkpoint import atomic_save

        path = Path(path)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"path: {path} exists and is not a directory")
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"path: {path} exists and is not empty; pass overwrite=True")
        fitted = hasattr(self, "network_")
        header: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION,
                                  "params": self.get_params(), "fitted": fitted}
        if fitted:
            header.update(state_shape=list(self.state_shape_), seq_len=self.seq_len_,
                          rollout_steps_trained=self.network_.rollout_steps,
                          n_windows=self.n_windows_, history=self.history_)
        text = json.dumps(header, indent=1, allow_nan=True)
        path.mkdir(parents=True, exist_ok=True)
        for stale in (JSON_NAME, WEIGHTS_NAME):
            if (path / stale).exists():
                (path / stale).unlink()
        if fitted:
            state = {key: value.detach().cpu() for key, value in
                     self.network_.state_dict().items()}
            atomic_save(state, path / WEIGHTS_NAME)
        # The JSON last: its presence marks a complete save.
        (path / JSON_NAME).write_text(text + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: PathLike, device: Any = None) -> "SSMForecaster":
        """Read a forecaster written by :meth:`save`, onto ``device`` (default the CPU).

        Raises FileNotFoundError without ``forecaster.json``/``weights.pt``, and ValueError for
        another format, a newer version or weights that do not fit the saved configuration.
        """
        path = Path(path)
        header_path = path / JSON_NAME
        if not header_path.is_file():
            raise FileNotFoundError(f"path: {header_path} not found; not a saved SSMForecaster")
        try:
            header = json.loads(header_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{header_path}: not valid JSON ({error})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"{header_path}: not a saved SSMForecaster")
        if header.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{header_path}: format version {header['format_version']} is "
                             f"newer than this pdesuite reads ({FORMAT_VERSION})")
        forecaster = cls(**header["params"])
        if not header["fitted"]:
            return forecaster
        weights = path / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"path: {weights} not found")
        state_shape = tuple(int(size) for size in header["state_shape"])
        zeros = torch.zeros(state_shape[0])
        with torch.random.fork_rng(devices=[]):
            network = forecaster._build(state_shape, int(header["seq_len"]), zeros, zeros)
        network.rollout_steps = int(header["rollout_steps_trained"])
        state = torch.load(weights, map_location="cpu", weights_only=True)
        try:
            network.load_state_dict(state)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise ValueError(f"{weights}: does not fit the saved configuration ({first})") \
                from None
        forecaster.network_ = network.to(torch.device(device or "cpu")).eval()
        forecaster.history_ = list(header.get("history", []))
        forecaster.state_shape_ = state_shape
        forecaster.seq_len_ = int(header["seq_len"])
        forecaster.n_windows_ = int(header.get("n_windows", 0))
        return forecaster


def load_forecaster(path: PathLike, device: Any = None) -> SSMForecaster:
    """:meth:`SSMForecaster.load`."""
    return SSMForecaster.load(path, device=device)
