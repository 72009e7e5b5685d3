"""A PDE time-stepper: every spatial point's latent channels evolve through an SSM over time.

Frames are ``[B, T, C, *spatial]`` on a grid of any shape. Each frame is encoded pointwise
(the sequence model's input Linear over the ``C`` channels, so a ``1x1`` convolution), or by a
spatial ``trunk`` (any module ``[N, C, *spatial] -> [N, F, *spatial]``, e.g. an
:class:`~pdesuite.operators.fno.FNO`) that mixes space. The features of every point form one
sequence over time; a :class:`~pdesuite.dynamics.ssm.models.SequenceModel` maps it to the
increment of the field, so the prediction of the next frame is

    x̂_{t+1} = x_t + SequenceModel(features(x_0 .. x_t))_t.

Without a trunk the points do not interact. That still suffices for a linear PDE: at one point
the field is a sum of ``m`` modes, which obeys a linear recurrence of order ``m``, so the point's
own history determines its future. A trunk is the way to couple space.

Training: ``forward(frames)`` gives all one-step predictions at once in convolution mode
(teacher forcing); ``forecast`` is differentiable, so a rollout loss backpropagates through
the recurrence. Inference: ``forecast(frames_in, steps)`` steps the recurrence through the given
frames, then feeds its own predictions back, ``O(1)`` per step for S4D, DSS and S5.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from pdesuite.dynamics.ssm.models import SequenceModel
from pdesuite.dynamics.ssm.shapes import check_positive_int

__all__ = ["SSMStepper"]


class SSMStepper(nn.Module):
    """Next-frame model on ``[B, T, C, *spatial]``.

    Args:
        channels: field channels ``C``.
        d_model: width of the sequence model (default 32).
        n_layers: SSM blocks (default 2).
        layer: "s4d" (default), "dss", "s5" or "stu".
        layer_options: keyword arguments of the layer (``seq_len`` for DSS and STU). Frames are
            few and far apart compared with the long sequences the layers' default step range
            ``Δ ∈ [1e-3, 1e-1]`` is made for; ``{"dt_min": 0.01, "dt_max": 1.0}`` fits faster.
        dropout: dropout inside the blocks (default 0).
        trunk: optional spatial encoder ``[N, C, *spatial] -> [N, trunk_channels, *spatial]``.
        trunk_channels: its output channels (required with ``trunk``).
        norm: the blocks' normalisation, "none" (default) or "layer". Without one the stepper is
            closer to scale-equivariant: on exact heat-equation modes it fits about 30 times
            better than with LayerNorm in the same number of iterations.
    """

    def __init__(self, channels: int, d_model: int = 32, n_layers: int = 2, layer: str = "s4d",
                 layer_options: Mapping[str, Any] | None = None, dropout: float = 0.0,
                 trunk: nn.Module | None = None, trunk_channels: int | None = None,
                 norm: str = "none") -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        if trunk is not None and not isinstance(trunk, nn.Module):
            raise TypeError(f"trunk: expected an nn.Module or None, got {type(trunk).__name__}")
        if trunk is not None:
            check_positive_int(trunk_channels, "trunk_channels")
        self.trunk = trunk
        features = channels if trunk is None else trunk_channels
        self.sequence = SequenceModel(features, channels, d_model, n_layers, layer,
                                      layer_options, dropout, norm=norm)

    def _check(self, frames: torch.Tensor, argument: str, time_axis: bool) -> None:
        ndim = 3 if time_axis else 2
        layout = "[B, T, C, *spatial]" if time_axis else "[B, C, *spatial]"
        if not isinstance(frames, torch.Tensor):
            raise TypeError(f"{argument}: expected a torch.Tensor, got {type(frames).__name__}")
        if frames.ndim < ndim or frames.shape[ndim - 1] != self.channels:
            raise ValueError(f"{argument}: expected {layout} with C = {self.channels}, "
                             f"got {tuple(frames.shape)}")

    def _features(self, frames: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, *S]`` -> one sequence per point ``[B·|S|, T, F]``."""
        batch, steps = frames.shape[:2]
        if self.trunk is not None:
            mixed = self.trunk(frames.flatten(0, 1))                       # (B T, F, *S)
            frames = mixed.unflatten(0, (batch, steps))                    # (B, T, F, *S)
        points = frames.movedim(2, -1).movedim(1, -2)                      # (B, *S, T, F)
        return points.reshape(-1, steps, points.shape[-1])                 # (B |S|, T, F)

    def _to_field(self, sequences: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``[B·|S|, T, C]`` back to ``like``'s layout ``[B, T, C, *S]``."""
        batch, steps, spatial = like.shape[0], like.shape[1], like.shape[3:]
        points = sequences.reshape(batch, *spatial, steps, self.channels)  # (B, *S, T, C)
        return points.movedim(-2, 1).movedim(-1, 2)                        # (B, T, C, *S)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames`` ``[B, T, C, *S]`` -> ``[B, T, C, *S]``, entry ``t`` predicting frame
        ``t + 1`` from frames ``0 .. t``."""
        self._check(frames, "frames", time_axis=True)
        increments = self.sequence(self._features(frames))                # (B |S|, T, C)
        return frames + self._to_field(increments, frames)                # (B, T, C, *S)

    def default_state(self, batch: int, spatial: tuple[int, ...]) -> list:
        """Zero state for ``batch`` fields on a grid of shape ``spatial``."""
        return self.sequence.default_state(batch * math.prod(spatial))

    def step(self, frame: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        """``frame`` ``[B, C, *S]`` and the state -> (next frame ``[B, C, *S]``, new state)."""
        self._check(frame, "frame", time_axis=False)
        features = self._features(frame.unsqueeze(1))[:, 0]              # (B |S|, F)
        increment, state = self.sequence.step(features, state)           # (B |S|, C)
        increment = self._to_field(increment.unsqueeze(1), frame.unsqueeze(1))[:, 0]  # (B, C, *S)
        return frame + increment, state

    def forecast(self, frames_in: torch.Tensor, steps: int) -> torch.Tensor:
        """Frames after ``frames_in`` ``[B, T_in, C, *S]``: ``[B, steps, C, *S]``."""
        self._check(frames_in, "frames_in", time_axis=True)
        check_positive_int(steps, "steps")
        if frames_in.shape[1] == 0:
            raise ValueError("frames_in: expected at least one frame (T_in >= 1)")
        state = self.default_state(frames_in.shape[0], tuple(frames_in.shape[3:]))
        for t in range(frames_in.shape[1]):
            prediction, state = self.step(frames_in[:, t], state)        # (B, C, *S)
        predictions = [prediction]
        for _ in range(steps - 1):
            prediction, state = self.step(prediction, state)             # (B, C, *S)
            predictions.append(prediction)
        return torch.stack(predictions, dim=1)                           # (B, steps, C, *S)
