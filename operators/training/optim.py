"""The loss, optimiser and learning-rate schedule a :class:`TrainConfig` describes."""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import nn

from pdesuite.operators.losses import H1Loss, LpLoss
from pdesuite.operators.training.config import TrainConfig

__all__ = ["build_loss", "build_optimizer", "build_scheduler"]


def build_loss(config: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Relative L2 (``"l2"``), relative H1 on the config's ``periodic`` and ``domain``
    (``"h1"``), or the config's own callable."""
    if not isinstance(config.loss, str):
        return config.loss
    if config.loss == "l2":
        return LpLoss(2)
    periodic = config.periodic if isinstance(config.periodic, bool) else list(config.periodic)
    domain = list(config.domain) if isinstance(config.domain, tuple) else config.domain
    return H1Loss(periodic=periodic, domain=domain)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (L2 penalty added to the gradient) or AdamW (decoupled decay) at ``lr``."""
    optimizer_cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return optimizer_cls(
        model.parameters(), lr=float(config.lr), weight_decay=float(config.weight_decay)
    )


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
                    steps_per_epoch: int) -> Optional[Any]:
    """StepLR (stepped per epoch), OneCycleLR over ``epochs × steps_per_epoch`` batches
    (stepped per batch), or None."""
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size,
                                               gamma=float(config.gamma))
    if config.scheduler == "onecycle":
        peak = config.max_lr if config.max_lr is not None else config.lr
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=float(peak),
                                                   total_steps=config.epochs * steps_per_epoch)
    return None
