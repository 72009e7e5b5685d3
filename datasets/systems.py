"""The linear systems behind a generated file: each sample re-assembled from its stored parameters.

A generated file keeps its family's configuration (attribute ``config``) and every sample's
random parameters (``parameters/<name>``, float64 as drawn), so the matrix and right-hand side
of sample ``i`` are ``family.assemble(parameters[i])`` again, bit for bit. A learned
preconditioner trains on those matrices (DCDM's loss needs ``A``), and on the stored solutions
when it trains supervised.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from pdesuite.datasets.pde_family import family_from_config
from pdesuite.datasets.storage import open_dataset, read_sample

__all__ = ["SampleSystem", "read_systems"]

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class SampleSystem:
    """One sample of a generated steady file, as a linear system.

    Attributes:
        index: the sample's draw index in the file.
        system: its :class:`~pdesuite.discretization.LinearSystem` (``A``, ``b``, ``free``).
        inputs: its input fields ``[C, *shape]`` (float64; the Darcy coefficient).
        solution: the stored solution on the unknowns ``[n_free]`` (float64 from the file's
            float32 outputs), or None when the file stores none.
        converged: the solve that wrote it converged.
    """

    index: int
    system: Any
    inputs: np.ndarray
    solution: Optional[np.ndarray]
    converged: bool


def read_systems(path: PathLike, samples: Optional[Sequence[int]] = None,
                 include_failed: bool = False) -> tuple[Any, list[SampleSystem]]:
    """The family of a generated file and the systems of its samples.

    Args:
        path: a file that :func:`~pdesuite.datasets.generate` wrote for a steady family.
        samples: draw indices to read (default all).
        include_failed: keep samples whose solve did not converge (default False: left out).

    Returns:
        ``(family, systems)``.

    Raises:
        ValueError: a file without parameters or family configuration (a converted file), or
            of a time-dependent family; an index out of range.
    """
    with open_dataset(path, check_data=False) as handle:
        if "parameters" not in handle or "config" not in handle.attrs:
            raise ValueError(f"{path}: holds no family configuration and parameters (a "
                             "converted file?); its systems cannot be re-assembled")
        if str(handle.attrs.get("kind", "steady")) != "steady":
            raise ValueError(f"{path}: a time-dependent dataset; systems are read from steady "
                             "ones")
        family = family_from_config(json.loads(handle.attrs["config"]))
        n = int(handle.attrs["n"])
        indices = range(n) if samples is None else [int(i) for i in samples]
        for index in indices:
            if not 0 <= index < n:
                raise ValueError(f"samples: index {index} is out of range for {n} samples")
        converged = (handle["solver"]["converged"][:] if "solver" in handle
                     else np.ones(n, dtype=bool))
        systems = []
        for index in indices:
            if not (converged[index] or include_failed):
                continue
            params = {name: read_sample(item, index, path)
                      for name, item in handle["parameters"].items()}
            system = family.assemble(params)
            solution = None
            if "outputs" in handle:
                output = np.asarray(read_sample(handle["outputs"], index, path), dtype=float)
                solution = output.reshape(-1)[system.free] if output.size == system.n_total \
                    else None
            systems.append(SampleSystem(index, system,
                                        np.asarray(family.inputs(params), dtype=float),
                                        solution, bool(converged[index])))
    return family, systems
