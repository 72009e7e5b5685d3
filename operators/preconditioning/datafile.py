"""Train a preconditioner on a file that ``generate`` wrote: the data of one generation train the
preconditioner of the next.

The file's samples are re-assembled (:func:`pdesuite.datasets.loaders.read_systems`): their
matrices, and their input fields as the network's conditioning channels (the Darcy
coefficient). Two kinds of training:

- unsupervised (default): DCDM's loss on Ritz right-hand sides of each matrix, as
  :func:`train_preconditioner` does for matrices in memory;
- supervised (``supervised=True``): residual → error pairs from the stored solutions. For each
  sample, CG's first iterates ``x_k`` give residuals ``r_k = b − A x_k`` with known errors
  ``e_k = u − x_k`` (``u`` the stored solution): the residuals a preconditioner meets inside a
  solve, scored by the A-norm error left after the line search
  (:func:`~pdesuite.operators.preconditioning.loss.energy_error_loss`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import scipy.sparse.linalg as spla

from pdesuite.datasets.loaders import read_systems
from pdesuite.operators.preconditioning.training import (
    ResidualErrorPairs,
    TrainingResult,
    train_preconditioner,
)

__all__ = ["residual_error_pairs", "train_preconditioner_on_file"]

PathLike = Union[str, os.PathLike]


def residual_error_pairs(systems: Sequence[Any], per_system: int) -> ResidualErrorPairs:
    """Residual → error pairs along CG's first ``per_system`` iterates (``x_0 = 0`` included)
    of each :class:`~pdesuite.datasets.loaders.SampleSystem` that stores a solution."""
    residuals, errors, owner = [], [], []
    for k, sample in enumerate(systems):
        if sample.solution is None:
            raise ValueError(f"path: sample {sample.index} stores no solution on the unknowns; "
                             "supervised training needs the file's outputs")
        A, b, u = sample.system.A, sample.system.b, sample.solution
        iterates = [np.zeros_like(b)]
        spla.cg(A, b, rtol=1e-12, maxiter=max(per_system - 1, 1),
                callback=lambda x: iterates.append(np.array(x)))
        for x in iterates[:per_system]:
            residuals.append(b - A @ x)
            errors.append(u - x)
            owner.append(k)
    return ResidualErrorPairs(np.array(residuals), np.array(errors), np.array(owner))


def train_preconditioner_on_file(path: PathLike, *, samples: Sequence[int] | None = None,
                                 supervised: bool = False, pairs_per_sample: int = 16,
                                 **settings: Any) -> TrainingResult:
    """Train on the systems of a generated steady file (see the module docstring).

    Args:
        path: the HDF5 file.
        samples: draw indices to train on (default all whose solve converged).
        supervised: residual → error pairs from the stored solutions instead of DCDM's
            unsupervised loss. Default False.
        pairs_per_sample: CG iterates per sample when ``supervised``. Default 16.
        settings: :func:`train_preconditioner`'s keyword arguments (``model``, ``epochs``,
            ``out_dir``, ``rhs_per_matrix``, ...), except the data ones.

    Raises ValueError for a file whose systems cannot be re-assembled or that holds no
    converged sample, and for data arguments in ``settings``.
    """
    given = sorted({"coefficients", "conditioning", "pairs", "free"} & set(settings))
    if given:
        raise ValueError(f"settings: {given} come from the file; do not pass them")
    _, systems = read_systems(path, samples)
    if not systems:
        raise ValueError(f"path: {path} holds no converged sample to train on")
    free = systems[0].system.free
    grid = systems[0].inputs.shape[1:]
    pairs = residual_error_pairs(systems, pairs_per_sample) if supervised else None
    # The first input field is the coefficient (a log transform when positive), the rest
    # further conditioning: together the channels a PreconditionerSource gives the network.
    rest = [s.inputs[1:] for s in systems] if systems[0].inputs.shape[0] > 1 else None
    return train_preconditioner([s.system.A for s in systems], grid, free,
                                coefficients=[s.inputs[0] for s in systems], conditioning=rest,
                                pairs=pairs, **settings)
