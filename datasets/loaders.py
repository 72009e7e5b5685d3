"""``PDEDataset``: a torch Dataset over a pdesuite HDF5 file (schema: :mod:`.storage`).

Reads are lazy: the file is opened on the first ``__getitem__`` in each process (a DataLoader
worker opens its own handle; the handle is never pickled), and one sample is read per item.

Splits are contiguous index ranges, ``train`` then ``val`` then ``test``. Samples are stored at
their draw index ``i`` and drawn independently, so a contiguous range is a random subset, and
the split does not depend on the order in which the samples were solved.

Failed solves: a sample whose ``solver/converged`` flag is false is left out of its split (a
warning gives the count), and a file in which every solve failed is refused (ValueError naming
the file). ``include_failed=True`` keeps them.

Normalisation (``normalize=True``): per-channel mean and standard deviation of the *training*
split, for inputs and targets separately, applied to every split. They are computed once, in
float64 with a chunked (Chan et al.) update, and cached in the file under
``stats/train_<start>_<stop>/`` (``inputs_mean``, ``inputs_std``, ``targets_mean``,
``targets_std``, each ``[C]`` float64; ``train_<start>_<stop>_converged/`` when failed samples
were left out of them). Later datasets over the same file and split read them
back. When the file cannot be written (read-only, or opened elsewhere for writing) the
statistics are computed in memory and a warning says so.

``torch`` is imported only when ``PDEDataset`` is first used (module ``__getattr__``), so that
``import pdesuite.datasets`` stays free of torch.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from pdesuite.datasets.mesh_io import MeshInfo, read_mesh
from pdesuite.datasets.storage import grid_convention, open_dataset, read_sample
from pdesuite.datasets.systems import SampleSystem, read_systems

# PDEDataset is built on first access by the module __getattr__ below (it imports torch).
__all__ = ["PDEDataset", "SPLITS", "SampleSystem", "split_ranges", "channel_statistics",  # noqa: F822
           "read_systems", "MeshInfo", "read_mesh"]

SPLITS = ("train", "val", "test", "all")
_STATS_CHUNK = 64


def split_ranges(
    n: int, split_fractions: Sequence[Union[float, int]] = (0.8, 0.1, 0.1)
) -> dict[str, range]:
    """Contiguous index ranges of the train, val and test splits of ``n`` samples.

    Args:
        n: number of samples.
        split_fractions: ``(train, val, test)``: fractions (floats summing to at most 1) or
            counts (ints summing to at most n). With fractions, train and val are rounded to
            the nearest integer and test takes the rest when the fractions sum to 1.

    Returns:
        ``{"train": range, "val": range, "test": range, "all": range(n)}``.
    """
    if len(split_fractions) != 3:
        raise ValueError(f"split_fractions: expected (train, val, test), got {split_fractions!r}")
    values = list(split_fractions)
    if any(
        isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
        for v in values
    ):
        raise TypeError(f"split_fractions: expected three numbers, got {split_fractions!r}")
    if any(v < 0 for v in values):
        raise ValueError(f"split_fractions: must be >= 0, got {split_fractions!r}")
    if all(isinstance(v, (int, np.integer)) for v in values):
        counts = [int(v) for v in values]
        if sum(counts) > n:
            raise ValueError(
                f"split_fractions: counts {counts} add up to more than the {n} samples"
            )
    else:
        total = float(sum(values))
        if total > 1.0 + 1e-9:
            raise ValueError(f"split_fractions: fractions must add up to at most 1, got {total}")
        n_train = int(round(values[0] * n))
        n_val = min(int(round(values[1] * n)), n - n_train)
        n_test = (
            n - n_train - n_val
            if abs(total - 1.0) <= 1e-9
            else min(int(round(values[2] * n)), n - n_train - n_val)
        )
        counts = [n_train, n_val, n_test]
    starts = np.cumsum([0] + counts)
    return {
        "train": range(int(starts[0]), int(starts[1])),
        "val": range(int(starts[1]), int(starts[2])),
        "test": range(int(starts[2]), int(starts[3])),
        "all": range(n),
    }


def channel_statistics(
    dataset, indices: Sequence[int], channel_axis: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) standard deviation of ``dataset[indices]``.

    Args:
        dataset: an array-like ``[n, ...]`` (an ``h5py.Dataset``) read in chunks of samples.
        indices: increasing sample indices (a range, or an int array).
        channel_axis: the channel axis of ``dataset`` (1 for ``[n, C, ...]``, 2 for
            trajectories ``[n, T, C, ...]``).

    Returns:
        ``(mean, std)``, float64 ``[C]`` each.
    """
    channels = dataset.shape[channel_axis]
    count = 0
    mean = np.zeros(channels)
    m2 = np.zeros(channels)
    positions = np.asarray(indices, dtype=np.int64)
    for start in range(0, len(positions), _STATS_CHUNK):
        chosen = positions[start:start + _STATS_CHUNK]
        first, last = int(chosen[0]), int(chosen[-1])
        if last - first + 1 <= 2 * len(chosen):  # read the span, keep the chosen samples
            chunk = np.asarray(dataset[first:last + 1], dtype=np.float64)
            if len(chunk) != len(chosen):
                chunk = chunk[chosen - first]
        else:
            chunk = np.asarray(dataset[chosen.tolist()], dtype=np.float64)
        values = np.moveaxis(chunk, channel_axis, 0).reshape(channels, -1)
        chunk_count = values.shape[1]
        if chunk_count == 0:
            continue
        chunk_mean = values.mean(axis=1)
        chunk_m2 = ((values - chunk_mean[:, None]) ** 2).sum(axis=1)
        delta = chunk_mean - mean
        total = count + chunk_count
        mean = mean + delta * (chunk_count / total)
        m2 = m2 + chunk_m2 + delta ** 2 * (count * chunk_count / total)
        count = total
    if count == 0:
        raise ValueError(
            "split_fractions: the training split is empty, so there are no statistics to "
            "normalise with; give it samples or pass normalize=False"
        )
    return mean, np.sqrt(m2 / count)


def _failed_flags(handle) -> Optional[np.ndarray]:
    """Bool ``[n]``: the sample's solve failed (``solver/converged`` false with a recorded
    ``solver/reason``; a reason of 0 records no solve). None when the file has no solver stats."""
    if "solver" not in handle or "converged" not in handle["solver"]:
        return None
    failed = ~np.asarray(handle["solver"]["converged"][()], dtype=bool)
    if "reason" in handle["solver"]:
        failed &= np.asarray(handle["solver"]["reason"][()]) != 0
    return failed


def _converged_only(indices: range, failed: np.ndarray) -> tuple[Union[range, np.ndarray], int]:
    """``indices`` without the failed samples (the range itself when none failed), and how many
    were left out."""
    kept = ~failed[indices.start:indices.stop]
    if kept.all():
        return indices, 0
    return np.flatnonzero(kept).astype(np.int64) + indices.start, int((~kept).sum())


class _PDEDatasetBase:
    """The torch-free part of :class:`PDEDataset`; see its docstring."""

    def __init__(self, path: Union[str, os.PathLike], split: str = "train",
                 split_fractions: Sequence[Union[float, int]] = (0.8, 0.1, 0.1),
                 normalize: bool = True, input_steps: int = 1, output_steps: Optional[int] = None,
                 cache_stats: bool = True, include_failed: bool = False) -> None:
        if split not in SPLITS:
            raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
        self.path = Path(path)
        self.split = split
        self.normalize = bool(normalize)
        with open_dataset(self.path) as handle:
            self.n_total = int(handle.attrs["n"])
            #: Where the grid's points lie (``"node"``, ``"cell"`` or ``"mesh"``), for the models'
            #: coordinate channel.
            self.grid_convention = grid_convention(handle)
            self.time_dependent = str(handle.attrs["kind"]) == "time-dependent"
            if self.time_dependent:
                frames = handle["trajectories"].shape[1]
                if (
                    isinstance(input_steps, bool)
                    or not isinstance(input_steps, int)
                    or not 1 <= input_steps < frames
                ):
                    raise ValueError(
                        f"input_steps: must be an int in [1, {frames - 1}] for {frames} "
                        f"frames, got {input_steps!r}"
                    )
                if output_steps is None:
                    output_steps = frames - input_steps
                if (isinstance(output_steps, bool) or not isinstance(output_steps, int)
                        or not 1 <= output_steps <= frames - input_steps):
                    raise ValueError(
                        f"output_steps: must be an int in [1, {frames - input_steps}], "
                        f"got {output_steps!r}"
                    )
            self.input_steps = int(input_steps)
            self.output_steps = output_steps
            ranges = split_ranges(self.n_total, split_fractions)
            self.indices: Union[range, np.ndarray] = ranges[split]
            self.train_range = ranges["train"]
            self.train_indices: Union[range, np.ndarray] = self.train_range
            self.failed = 0
            failed = None if include_failed else _failed_flags(handle)
            if failed is not None:
                if self.n_total and failed.all():
                    raise ValueError(f"{self.path}: all {self.n_total} solves failed "
                                     "(solver/converged is false for every sample); there is "
                                     "nothing to learn from: generate the data again with a "
                                     "solver that converges")
                self.indices, self.failed = _converged_only(self.indices, failed)
                self.train_indices, _ = _converged_only(self.train_range, failed)
                if self.failed:
                    warnings.warn(f"{self.path}: {self.failed} of the {len(ranges[split])} samples "
                                  f"of split {split!r} did not converge (solver/converged is "
                                  "false) and are left out", UserWarning, stacklevel=2)
            self.stats: Optional[dict[str, np.ndarray]] = None
            if self.normalize:
                self.stats = self._load_stats(handle)
        if self.normalize and self.stats is None:
            self.stats = self._compute_and_cache_stats(cache_stats)
        self._file = None
        self._mesh_info: Optional[MeshInfo] = None

    # ------------------------------------------------------------------ mesh
    @property
    def has_mesh(self) -> bool:
        """True if the file stores a finite-element mesh (a ``mesh`` group)."""
        import h5py

        with h5py.File(self.path, "r") as handle:
            return "mesh" in handle

    @property
    def mesh_info(self) -> MeshInfo:
        """The file's FE mesh, degree and Dirichlet DoFs (:func:`read_mesh`), read once.

        ValueError naming the file when it has no mesh (a grid family's file), or when the
        mesh's DoF count differs from the samples' last axis.
        """
        if self._mesh_info is None:
            info = read_mesh(self.path)
            if len(self.spatial_shape) != 1 or info.ndofs != self.spatial_shape[0]:
                raise ValueError(f"{self.path}: the mesh has {info.ndofs} DoFs but the samples "
                                 f"have spatial shape {self.spatial_shape}")
            self._mesh_info = info
        return self._mesh_info

    # ------------------------------------------------------------------ statistics
    @property
    def _stats_key(self) -> str:
        key = f"train_{self.train_range.start}_{self.train_range.stop}"
        return key if isinstance(self.train_indices, range) else key + "_converged"

    def _load_stats(self, handle) -> Optional[dict[str, np.ndarray]]:
        if "stats" not in handle or self._stats_key not in handle["stats"]:
            return None
        group = handle["stats"][self._stats_key]
        names = ("inputs_mean", "inputs_std", "targets_mean", "targets_std")
        if not all(name in group for name in names):
            return None
        return {name: np.asarray(group[name][()], dtype=np.float64) for name in names}

    def _sources(self, handle) -> tuple[Any, int, Any, int]:
        """(input dataset, its channel axis, target dataset, its channel axis)."""
        if self.time_dependent:
            trajectories = handle["trajectories"]
            return trajectories, 2, trajectories, 2
        return handle["inputs"], 1, handle["outputs"], 1

    def _compute_and_cache_stats(self, cache: bool) -> dict[str, np.ndarray]:
        import h5py

        with h5py.File(self.path, "r") as handle:
            source_in, axis_in, source_out, axis_out = self._sources(handle)
            inputs_mean, inputs_std = channel_statistics(source_in, self.train_indices, axis_in)
            if source_out is source_in:
                targets_mean, targets_std = inputs_mean, inputs_std
            else:
                targets_mean, targets_std = channel_statistics(
                    source_out, self.train_indices, axis_out
                )
        stats = {"inputs_mean": inputs_mean, "inputs_std": inputs_std,
                 "targets_mean": targets_mean, "targets_std": targets_std}
        if cache:
            try:
                with h5py.File(self.path, "r+") as handle:
                    group = handle.require_group("stats").require_group(self._stats_key)
                    for name, value in stats.items():
                        if name in group:
                            del group[name]
                        group.create_dataset(name, data=value)
                    group.attrs["count"] = len(self.train_indices)
            except OSError as error:
                warnings.warn(f"{self.path}: normalisation statistics could not be cached in the "
                              f"file ({error}); they are kept in memory only", stacklevel=3)
        return stats

    @staticmethod
    def _safe_std(std: np.ndarray) -> np.ndarray:
        # A constant channel (e.g. a fixed source) has std 0: leave it unscaled.
        return np.where(std > 0, std, 1.0)

    def _normalized(self, values: np.ndarray, which: str) -> np.ndarray:
        if self.stats is None:
            return values
        mean = self.stats[f"{which}_mean"]
        std = self._safe_std(self.stats[f"{which}_std"])
        shape = (-1,) + (1,) * (values.ndim - 1)
        if self.time_dependent:
            # [steps, C, *spatial]
            shape = (1, -1) + (1,) * (values.ndim - 2)
        return ((values - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)

    def denormalize_targets(self, y: Any) -> Any:
        """Undo the target normalisation of ``y`` ``[..., C, *spatial]`` (array or tensor).

        For time-dependent data ``y`` is ``[..., output_steps·C, *spatial]``.
        """
        if self.stats is None:
            return y
        mean = self.stats["targets_mean"]
        std = self._safe_std(self.stats["targets_std"])
        if self.time_dependent:
            mean = np.tile(mean, self.output_steps)
            std = np.tile(std, self.output_steps)
        n_spatial = len(self.spatial_shape)
        shape = (-1,) + (1,) * n_spatial
        if hasattr(y, "new_tensor"):
            return y * y.new_tensor(std).reshape(shape) + y.new_tensor(mean).reshape(shape)
        return np.asarray(y) * std.reshape(shape) + mean.reshape(shape)

    # ------------------------------------------------------------------ reading
    def _handle(self):
        if self._file is None:
            import h5py

            self._file = h5py.File(self.path, "r")
        return self._file

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        import h5py

        with h5py.File(self.path, "r") as handle:
            name = "trajectories" if self.time_dependent else "outputs"
            skip = 3 if self.time_dependent else 2
            return tuple(handle[name].shape[skip:])

    def sample_shape(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Shapes ``(x, y)`` of one item, ``([C_in, *spatial], [C_out, *spatial])``."""
        x, y = self.read(0) if len(self) else (np.zeros(0), np.zeros(0))
        return tuple(x.shape), tuple(y.shape)

    def read(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``item`` of this split as float32 NumPy arrays ``(x, y)``, normalised if asked."""
        length = len(self.indices)
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise TypeError(f"item: expected an int index, got {type(item).__name__}")
        if not -length <= item < length:
            raise IndexError(
                f"item: index {item} out of range for the {length} samples of split {self.split!r}"
            )
        index = int(self.indices[int(item)])
        handle = self._handle()
        if self.time_dependent:
            trajectory = read_sample(handle["trajectories"], index, self.path)
            x = trajectory[:self.input_steps]
            y = trajectory[self.input_steps:self.input_steps + self.output_steps]
            x = self._normalized(np.asarray(x, dtype=np.float32), "inputs")
            y = self._normalized(np.asarray(y, dtype=np.float32), "targets")
            # steps and channels merge into one channel axis: [steps·C, *spatial]
            return (np.ascontiguousarray(x.reshape(-1, *x.shape[2:]), dtype=np.float32),
                    np.ascontiguousarray(y.reshape(-1, *y.shape[2:]), dtype=np.float32))
        x = read_sample(handle["inputs"], index, self.path)
        y = read_sample(handle["outputs"], index, self.path)
        x = self._normalized(np.asarray(x, dtype=np.float32), "inputs")
        y = self._normalized(np.asarray(y, dtype=np.float32), "targets")
        return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int):
        import torch

        x, y = self.read(item)
        return torch.from_numpy(x), torch.from_numpy(y)

    def close(self) -> None:
        """Close this process's file handle (reopened on the next read)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None  # each process opens its own handle
        state["_mesh_info"] = None  # basix elements need not pickle; read again on demand
        return state

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __repr__(self) -> str:
        return (f"PDEDataset({str(self.path)!r}, split={self.split!r}, n={len(self)}, "
                f"normalize={self.normalize})")


_DOC = """A torch ``Dataset`` of ``(x, y)`` float32 tensors ``[C, *spatial]`` from a pdesuite file.

    Args:
        path: a file written by :func:`~pdesuite.datasets.generation.generate` or
            :func:`~pdesuite.datasets.readers.convert`; checked against the schema on creation
            (ValueError/OSError naming the file otherwise).
        split: ``"train"`` (default), ``"val"``, ``"test"`` or ``"all"``.
        split_fractions: ``(train, val, test)`` fractions (default ``(0.8, 0.1, 0.1)``) or
            counts; see :func:`split_ranges`.
        normalize: standardise inputs and targets per channel with the training split's mean
            and std (default True), cached in the file's ``stats`` group on first use.
        input_steps, output_steps: time-dependent files only: ``x`` is the first
            ``input_steps`` frames (default 1) and ``y`` the next ``output_steps`` (default
            all the rest), steps and channels merged into one axis ``[steps·C, *spatial]``.
        cache_stats: write computed statistics into the file (default True).
        include_failed: keep samples whose solve failed (``solver/converged`` false). Default
            False: they are left out with a warning giving the count (attribute ``failed``), and
            a file in which every solve failed raises ValueError.

    ``x`` is ``inputs[i]`` and ``y`` is ``outputs[i]`` for steady files.
    :meth:`denormalize_targets` maps a prediction back to physical units. A file of an FE
    family carries its mesh: ``mesh_info`` (a :class:`MeshInfo`: mesh, degree, Dirichlet DoFs,
    the space) is what a model on the FE space is built from; ``has_mesh`` says if there is one.
    """

_CLASS = None


def _build_class():
    global _CLASS
    if _CLASS is None:
        import torch.utils.data

        _CLASS = type("PDEDataset", (_PDEDatasetBase, torch.utils.data.Dataset),
                      {"__doc__": _DOC, "__module__": __name__, "__qualname__": "PDEDataset"})
    return _CLASS


def __getattr__(name: str):
    if name == "PDEDataset":
        return _build_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
