"""Splits of a pdesuite dataset file for training and evaluation, optionally subsampled.

:func:`open_split` opens one split unnormalised (the trainer fits its own normalisers);
:func:`subsample_stride` and :class:`Subsampled` thin the grid to another resolution;
:func:`domain_lengths` reads the physical domain from the file's grid coordinates.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence, Union

__all__ = ["Subsampled", "domain_lengths", "open_split", "subsample_stride"]


def subsample_stride(points: int, target: int) -> int:
    """Stride that takes an axis of ``points`` samples to ``target``.

    A node grid (both ends included, as the FNO Darcy data) keeps its ends:
    ``(points − 1) / (target − 1)`` must be an integer, as 421 → 85 (stride 5). Failing that, a
    periodic grid (right end left out): ``points / target``, as 64 → 32. Raises ValueError
    when neither divides.
    """
    if target < 2 or target > points:
        raise ValueError(
            f"resolution: {target} points is not between 2 and the {points} of the data"
        )
    if (points - 1) % (target - 1) == 0:
        return (points - 1) // (target - 1)
    if points % target == 0:
        return points // target
    raise ValueError(f"resolution: cannot subsample {points} points to {target} by a stride "
                     f"(need (n-1)/(N-1) or n/N to be an integer)")


class Subsampled:
    """A view of a dataset whose samples ``[C, *spatial]`` are strided along every axis."""

    def __init__(self, dataset, strides: Sequence[int]) -> None:
        self.dataset = dataset
        self.strides = tuple(strides)

    def __len__(self) -> int:
        return len(self.dataset)

    def _cut(self, tensor):
        index = (slice(None),) + tuple(slice(None, None, s) for s in self.strides)
        return tensor[index].contiguous()

    def __getitem__(self, item):
        x, y = self.dataset[item]
        return self._cut(x), self._cut(y)


def open_split(path: Path, split: str, fractions: Sequence[Union[float, int]],
               resolution: Optional[Sequence[int]]):
    """One split of a dataset file as ``(x, y)`` pairs ``[C, *spatial]``, unnormalised.

    Args:
        path: a pdesuite HDF5 file.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        fractions: ``(train, val, test)`` fractions or counts (see ``split_ranges``).
        resolution: None (the file's grid), one point count for every axis, or one per axis;
            reached by :func:`subsample_stride`.

    Returns:
        A ``PDEDataset`` (or a :class:`Subsampled` view of one), or None when the split is
        empty. Failed solves are left out with a warning (see ``PDEDataset``).
    """
    from pdesuite.datasets.loaders import PDEDataset

    dataset = PDEDataset(path, split=split, split_fractions=tuple(fractions), normalize=False)
    if len(dataset) == 0:
        return None
    if resolution:
        spatial = tuple(dataset.spatial_shape)
        targets = list(resolution) * len(spatial) if len(resolution) == 1 else list(resolution)
        if len(targets) != len(spatial):
            raise ValueError(
                f"resolution: {len(resolution)} values for {len(spatial)} spatial axes"
            )
        strides = [subsample_stride(n, r) for n, r in zip(spatial, targets)]
        if any(s != 1 for s in strides):
            return Subsampled(dataset, strides)
    return dataset


def domain_lengths(path: Path, periodic: bool) -> Optional[list[float]]:
    """Physical domain lengths per axis from the file's grid coordinates (None if unknown)."""
    import h5py
    import numpy as np

    with h5py.File(path, "r") as handle:
        if "coordinates" not in handle:
            return None
        coordinates = np.asarray(handle["coordinates"][()])
        spatial = handle["outputs"].shape[2:] if "outputs" in handle else None
    if spatial is None or coordinates.shape != (len(spatial), *spatial):
        return None  # FE DoF coordinates, or a layout we do not know
    lengths = []
    for axis, n in enumerate(spatial):
        extent = float(coordinates[axis].max() - coordinates[axis].min())
        # a periodic grid leaves out the right end: the period is one spacing longer
        lengths.append(extent * n / (n - 1) if periodic and n > 1 else extent)
    if any(not (length > 0 and math.isfinite(length)) for length in lengths):
        return None
    return lengths
