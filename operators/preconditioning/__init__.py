"""Learned preconditioners: a trained network swapped into a solve as ``M``.

- :mod:`.network`: ``DCDMNet``, the deep conjugate direction method's residual CNN (2D, 3D).
- :mod:`.mapping`: ``GridMap``, unknown vectors to grid fields and back.
- :mod:`.adapter`: ``LearnedPreconditioner``, a model as a nonlinear ``Preconditioner`` for the
  NumPy, PETSc and torch backends.
- :mod:`.loss`: ``dcdm_loss``, the unsupervised loss, with sparse products in torch.
- :mod:`.ritz`: Lanczos Ritz pairs and the training right-hand sides built from them.
- :mod:`.training`: ``train_preconditioner``, the training loop and its run directory.
- :mod:`.store`: the run directory's files, and ``load_preconditioner``.
- :mod:`.datafile`: ``train_preconditioner_on_file``, training on a generated file
  (unsupervised, or supervised on residual → error pairs from its stored solutions).
- :mod:`.source`: ``PreconditionerSource``, a run as the ``M`` of ``generate`` (one
  preconditioner per sample).

Use: ``M = load_preconditioner("run/pc", coefficient=a)``, then
``solve(A, b, method="dcdm", M=M)`` (or ``"fcg"``, ``"fgmres"``; ``backend="torch"`` or
``"petsc"``).
"""

from pdesuite.operators.preconditioning.adapter import LearnedPreconditioner
from pdesuite.operators.preconditioning.datafile import (
    residual_error_pairs,
    train_preconditioner_on_file,
)
from pdesuite.operators.preconditioning.loss import block_diagonal, dcdm_loss, energy_error_loss
from pdesuite.operators.preconditioning.mapping import GridMap
from pdesuite.operators.preconditioning.network import DCDMNet
from pdesuite.operators.preconditioning.ritz import lanczos_ritz, ritz_right_hand_sides
from pdesuite.operators.preconditioning.store import load_preconditioner, load_preconditioner_model
from pdesuite.operators.preconditioning.source import PreconditionerSource
from pdesuite.operators.preconditioning.training import (
    ResidualErrorPairs,
    TrainingResult,
    train_preconditioner,
)

__all__ = [
    "DCDMNet",
    "GridMap",
    "LearnedPreconditioner",
    "PreconditionerSource",
    "ResidualErrorPairs",
    "TrainingResult",
    "block_diagonal",
    "dcdm_loss",
    "energy_error_loss",
    "lanczos_ritz",
    "load_preconditioner",
    "load_preconditioner_model",
    "residual_error_pairs",
    "ritz_right_hand_sides",
    "train_preconditioner",
    "train_preconditioner_on_file",
]
