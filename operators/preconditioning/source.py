"""A trained preconditioner run as the ``M`` of a whole generation, one system after another.

``generate(family, n, solver={"method": "fcg", "M": "run/pc"})`` must build a new
:class:`LearnedPreconditioner` for every sample (its conditioning fields are the sample's
coefficient), but should read the checkpoint once per block, not once per sample. A
:class:`PreconditionerSource` holds the loaded model and makes the preconditioner of each system.

The datasets layer does not import this module (it sits below the operators): it finds
:func:`open_run` through the ``pdesuite.preconditioner_sources`` entry point of pyproject.toml,
so that a run directory given as ``M`` works wherever pdesuite is installed with torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import numpy as np

from pdesuite.operators.preconditioning.adapter import LearnedPreconditioner
from pdesuite.operators.preconditioning.store import read_run, rebuild_model

__all__ = ["PreconditionerSource", "open_run"]

PathLike = Union[str, os.PathLike]


class PreconditionerSource:
    """The trained model of ``run_dir``, loaded once, and the preconditioner of each system.

    Args:
        run_dir: a run directory of :func:`~pdesuite.operators.train_preconditioner` (or its
            ``checkpoint.pt``).
        device: where the model runs; default the CPU.

    Attributes: ``run_dir``, ``model`` (eval mode), ``conditioning_channels`` (the number of
    conditioning fields the model was trained with).
    """

    def __init__(self, run_dir: PathLike, device: Any = "cpu"):
        checkpoint = read_run(run_dir)
        self.run_dir = Path(run_dir)
        self.model = rebuild_model(checkpoint, device)
        self.conditioning_channels = int(checkpoint["settings"].get("conditioning_channels", 0))

    def __repr__(self) -> str:
        return (f"PreconditionerSource({str(self.run_dir)!r}, {type(self.model).__name__}, "
                f"conditioning_channels={self.conditioning_channels})")

    def for_system(self, system: Any, inputs: np.ndarray) -> LearnedPreconditioner:
        """The preconditioner of one sample.

        Args:
            system: the sample's :class:`~pdesuite.discretization.LinearSystem` (its ``free``
                node indices place the unknowns on the grid).
            inputs: the sample's input fields ``[C, *shape]`` on the family's node grid (the
                family's ``inputs(params)``: the Darcy coefficient); its grid is the model's
                grid, and its channels are the conditioning fields when the model was trained
                with them.

        Raises ValueError when the model cannot serve the system (see
        :class:`LearnedPreconditioner`) or the channel counts differ.
        """
        inputs = np.asarray(inputs, dtype=float)
        if inputs.ndim < 2:
            raise ValueError(f"M: a learned preconditioner needs a grid family (inputs "
                             f"[C, *shape]); this family's inputs have shape {inputs.shape}")
        channels = self.conditioning_channels
        if channels not in (0, inputs.shape[0]):
            raise ValueError(f"M: the network of {self.run_dir} was trained with {channels} "
                             f"conditioning field(s), but the family gives {inputs.shape[0]} "
                             "input field(s) per sample")
        return LearnedPreconditioner(self.model, inputs.shape[1:], system.free,
                                     conditioning=inputs if channels else None)


def open_run(run_dir: PathLike) -> PreconditionerSource:
    """The entry point the datasets layer calls for ``M="run/pc"`` (CPU inference)."""
    return PreconditionerSource(run_dir)
