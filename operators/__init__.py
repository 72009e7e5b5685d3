"""Neural operators (FNO, LSM, MgNO), losses, normalisers, training (``training/``) and
learned preconditioners (``preconditioning/``).

Models work on ``[B, C, *spatial]`` grids, carry ``to_config``/``from_config`` so that a
checkpoint rebuilds them, and report ``parameter_count()``. This layer imports torch.
"""

from pdesuite.operators.fno import FNO
from pdesuite.operators.losses import H1Loss, LpLoss
from pdesuite.operators.lsm import LSM
from pdesuite.operators.mgno import MgNO
from pdesuite.operators.models import GridOperator, build_model, model_from_config
from pdesuite.operators.normalizer import UnitGaussianNormalizer
from pdesuite.operators.preconditioning import (
    DCDMNet,
    LearnedPreconditioner,
    load_preconditioner,
    train_preconditioner,
    train_preconditioner_on_file,
)
from pdesuite.operators.training import (
    NonFiniteBatchWarning,
    TrainConfig,
    TrainedModel,
    Trainer,
    load_checkpoint,
    load_trained,
    select_device,
)

__all__ = [
    "DCDMNet",
    "FNO",
    "LSM",
    "GridOperator",
    "H1Loss",
    "LearnedPreconditioner",
    "LpLoss",
    "MgNO",
    "NonFiniteBatchWarning",
    "TrainConfig",
    "TrainedModel",
    "Trainer",
    "UnitGaussianNormalizer",
    "build_model",
    "load_checkpoint",
    "load_preconditioner",
    "load_trained",
    "model_from_config",
    "select_device",
    "train_preconditioner",
    "train_preconditioner_on_file",
]
