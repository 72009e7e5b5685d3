"""Trajectories from a pdesuite HDF5 file of a time-dependent family (``heat``, ``burgers``,
``navier-stokes``), read through the datasets layer's checked opener.

A PDEBench trajectory file is read the same way once converted
(``pdesuite.datasets.readers.convert``), or its frames are passed as an array
(``read_pdebench_trajectories`` returns ``[n, T, C, *spatial]``, the layout used here).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from pdesuite.datasets.loaders import open_dataset, read_sample

__all__ = ["TrajectoryData", "read_trajectories"]


@dataclass(frozen=True)
class TrajectoryData:
    """Trajectories read from a file.

    Attributes:
        trajectories: float64 ``[n, T, C, *spatial]``.
        indices: int ``[n]``, the samples' indices in the file.
        frame_interval: time between frames (the family's ``record_interval``), or None when
            the file does not record it.
        family: the family's name.
    """

    trajectories: np.ndarray
    indices: np.ndarray
    frame_interval: Optional[float]
    family: str


def _failed_samples(handle) -> np.ndarray:
    """Bool ``[n]``: the sample's solve failed (recorded reason, not converged)."""
    n = int(handle.attrs["n"])
    if "solver" not in handle or "converged" not in handle["solver"]:
        return np.zeros(n, dtype=bool)
    failed = ~np.asarray(handle["solver"]["converged"][()], dtype=bool)
    if "reason" in handle["solver"]:
        failed &= np.asarray(handle["solver"]["reason"][()]) != 0  # reason 0: no solve made
    return failed


def read_trajectories(path: Union[str, os.PathLike], samples: Optional[Sequence[int]] = None,
                      include_failed: bool = False) -> TrajectoryData:
    """Read the trajectories of a ``generate``d (or converted) time-dependent file.

    Args:
        path: the HDF5 file; checked against the schema (ValueError/OSError naming it).
        samples: indices of the samples to read (default: all).
        include_failed: keep samples whose solve failed (default False: left out, with a
            warning giving the count).

    Returns:
        :class:`TrajectoryData`; pass ``.trajectories`` to an estimator's ``fit``.
    """
    with open_dataset(path) as handle:
        if str(handle.attrs["kind"]) != "time-dependent":
            raise ValueError(f"path: {path} holds a steady family "
                             f"({handle.attrs['family']}); trajectories need a time-dependent one")
        n = int(handle.attrs["n"])
        indices = np.arange(n) if samples is None else np.asarray(samples, dtype=np.int64)
        if indices.ndim != 1 or np.any((indices < 0) | (indices >= n)):
            raise ValueError(f"samples: expected indices in [0, {n}), got {samples!r}")
        if not include_failed:
            failed = _failed_samples(handle)[indices]
            if failed.any():
                warnings.warn(f"{path}: {int(failed.sum())} trajectories whose solve failed are "
                              "left out", UserWarning, stacklevel=2)
                indices = indices[~failed]
        if len(indices) == 0:
            raise ValueError(f"path: no trajectories to read from {path}")
        dataset = handle["trajectories"]
        trajectories = np.stack([np.asarray(read_sample(dataset, int(i), path), dtype=np.float64)
                                 for i in indices])
        config = json.loads(str(handle.attrs["config"]))
        interval = config.get("record_interval")
        return TrajectoryData(trajectories, indices,
                              None if interval is None else float(interval),
                              str(handle.attrs["family"]))
