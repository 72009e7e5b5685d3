"""What the suite's Trainer needs to train an SSM time-stepper on trajectories.

The :class:`~pdesuite.operators.training.Trainer` fits a module ``[B, C_in, *S] -> [B, C_out,
*S]`` on ``(input, target)`` pairs. A window of ``W`` frames ``[W, C, *S]`` is one sample, its
frames stacked on the channel axis (``[W·C, *S]``), and :class:`WindowNetwork` returns, on the
same axis,

- the teacher-forced one-step predictions of frames ``frames_in .. W−1`` (each from all the
  true frames before it; the convolution mode, all at once), then
- the ``R`` frames of a rollout from the first ``frames_in`` frames (the recurrence fed its own
  predictions; differentiable),

so the target of a window is its frames ``frames_in .. W−1``, once or twice (:class:`Windows`),
and :class:`TeacherForcingRolloutLoss` weighs the two parts. ``W = frames_in + R``.

Predictions from fewer than ``frames_in`` frames are left out of the loss: a forecast always has
that many, and the early ones would pull the model towards what one or two frames allow (a
time-invariant kernel cannot tell that the history before the window is missing, not zero).

The network works on standardised fields (a per-channel mean and scale, kept as buffers), so
the Trainer's own normalisers, which would treat every frame of a window as another channel,
are off.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from pdesuite.dynamics.ssm.stepper import SSMStepper

__all__ = ["TeacherForcingRolloutLoss", "WindowNetwork", "Windows"]


class WindowNetwork(nn.Module):
    """An :class:`SSMStepper` on standardised fields, with the Trainer's view of a window.

    Args:
        stepper: the time-stepper on ``C`` channels.
        frames_in: frames a rollout starts from.
        rollout_steps: frames ``R`` of the rollout in :meth:`forward` (0: teacher forcing only).
        mean, scale: per-channel ``[C]`` statistics of the training frames (data units).
        spatial_ndim: number of spatial axes of the frames.
        config: JSON-able description, returned by :meth:`to_config` (for checkpoints).
    """

    def __init__(self, stepper: SSMStepper, frames_in: int, rollout_steps: int,
                 mean: torch.Tensor, scale: torch.Tensor, spatial_ndim: int,
                 config: dict[str, Any]) -> None:
        super().__init__()
        self.stepper = stepper
        self.frames_in, self.rollout_steps = frames_in, rollout_steps
        self.channels = stepper.channels
        broadcast = (self.channels,) + (1,) * spatial_ndim
        self.register_buffer("mean", torch.as_tensor(mean).reshape(broadcast).clone())
        self.register_buffer("scale", torch.as_tensor(scale).reshape(broadcast).clone())
        self._config = dict(config)

    def to_config(self) -> dict[str, Any]:
        return dict(self._config)

    def one_step(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames`` ``[B, T, C, *S]`` -> ``[B, T, C, *S]``: entry ``t`` predicts frame ``t+1``
        from frames ``0 .. t`` (data units)."""
        z = (frames - self.mean) / self.scale                              # (B, T, C, *S)
        return self.stepper(z) * self.scale + self.mean                    # (B, T, C, *S)

    def forecast(self, frames_in: torch.Tensor, steps: int) -> torch.Tensor:
        """The ``steps`` frames after ``frames_in`` ``[B, T_in, C, *S]``: ``[B, steps, C, *S]``,
        by stepping the recurrence (data units)."""
        z = (frames_in - self.mean) / self.scale                           # (B, T_in, C, *S)
        return self.stepper.forecast(z, steps) * self.scale + self.mean    # (B, steps, C, *S)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """``window`` ``[B, W·C, *S]`` -> ``[B, (W − frames_in)·C (1 or 2 times), *S]`` (see
        the module docstring)."""
        frames = window.unflatten(1, (-1, self.channels))                  # (B, W, C, *S)
        teacher = self.one_step(frames[:, :-1])[:, self.frames_in - 1:]    # (B, W-T_in, C, *S)
        parts = [teacher]
        if self.rollout_steps:
            start = frames[:, :self.frames_in]                             # (B, T_in, C, *S)
            parts.append(self.forecast(start, self.rollout_steps))         # (B, R, C, *S)
        return torch.cat(parts, dim=1).flatten(1, 2)                       # (B, ·, *S)


class Windows(Dataset):
    """Every window of ``length`` consecutive frames of trajectories ``[n, T, C, *S]``, starting
    every ``stride`` frames; items ``(window [W·C, *S], target)`` for :class:`WindowNetwork`:
    the target is the window's frames ``frames_in .. W−1``, twice when ``rollout``, stacked on
    the channel axis."""

    def __init__(self, trajectories: torch.Tensor, length: int, frames_in: int, rollout: bool,
                 stride: int = 1) -> None:
        self.trajectories = trajectories
        self.length, self.frames_in, self.rollout = length, frames_in, rollout
        starts = range(0, trajectories.shape[1] - length + 1, stride)
        self.index = [(i, s) for i in range(trajectories.shape[0]) for s in starts]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        trajectory, start = self.index[item]
        window = self.trajectories[trajectory, start:start + self.length]  # (W, C, *S)
        future = window[self.frames_in:]                                   # (W-T_in, C, *S)
        targets = [future, future] if self.rollout else [future]
        return window.flatten(0, 1), torch.cat(targets).flatten(0, 1)


class TeacherForcingRolloutLoss:
    """``tf + rollout_weight · rollout``: each the relative L2 error ``‖p − t‖ / ‖t‖`` per window,
    averaged over the batch, of the teacher-forced part (the first ``teacher_frames·C``
    channels) and of the rollout part (the rest)."""

    def __init__(self, channels: int, teacher_frames: int, rollout_weight: float) -> None:
        self.split = channels * teacher_frames
        self.rollout_weight = float(rollout_weight)

    @staticmethod
    def _relative(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        error = torch.linalg.vector_norm((prediction - target).flatten(1), dim=1)
        norm = torch.linalg.vector_norm(target.flatten(1), dim=1).clamp_min(1e-12)
        return (error / norm).mean()

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self._relative(prediction[:, :self.split], target[:, :self.split])
        if prediction.shape[1] > self.split:
            rollout = self._relative(prediction[:, self.split:], target[:, self.split:])
            loss = loss + self.rollout_weight * rollout
        return loss
