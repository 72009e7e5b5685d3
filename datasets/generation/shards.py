"""The shard files of a generation: one per block, written in slabs, merged into the dataset.

A block's samples are buffered in memory and written to its shard a slab at a time (up to
:data:`SLAB_BYTES` of arrays per write), since h5py's cost per call, not the bytes, dominates
writing small samples one by one. The merge copies each shard's arrays whole, in one scatter per
array, to the samples' original indices in the final file. Shards carry the checksums of
:mod:`pdesuite.datasets.storage`; a damaged shard is an error naming it and the sample, with the
way out (remove it and rerun, which solves its block again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from pdesuite.datasets.storage import (
    SOLVER_STATS,
    create_dataset_file,
    create_sample_dataset,
    read_rows,
)

#: Bytes of buffered arrays after which a shard writer writes its slab.
SLAB_BYTES = 64 * 2**20
#: The per-sample arrays of a shard, those a sample has.
SAMPLE_FIELDS = ("inputs", "outputs", "trajectories")


def _h5py():
    import h5py

    return h5py


def parameter_specs(params: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``name -> (shape, dtype)`` of a sample's parameters; TypeError for non-numeric ones."""
    specs = {}
    for name, value in params.items():
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"family.sample: parameter {name!r} has dtype {array.dtype}; only "
                            "numeric parameters can be stored")
        specs[str(name)] = (array.shape, array.dtype)
    return specs


class ShardWriter:
    """Writes the samples of one block, in solve order, to ``path`` (opened on the first sample).

    Args:
        path: the shard file to create.
        indices: ``[B]`` the samples' draw indices, in solve order.
        attrs: root attributes of the shard (``run_hash``, ``block``).
        tuned: the name of a per-sample tuned statistic (``"omega"``, ``"k"``) or None.
    """

    def __init__(self, path: Path, indices: np.ndarray, attrs: Mapping[str, Any],
                 tuned: Optional[str] = None):
        self.path, self.indices, self.attrs, self.tuned = path, indices, dict(attrs), tuned
        self.handle = None
        self._pending: list[dict[str, Any]] = []
        self._pending_bytes = 0
        self._written = 0

    def add(self, sample: Mapping[str, Any]) -> None:
        """Buffer the next sample (``inputs``/``outputs``/``trajectories``, ``parameters``,
        ``solver``); ValueError naming the sample if its shapes differ from the first's."""
        if self.handle is None:
            self._open(sample)
        position = self._written + len(self._pending)
        index = int(self.indices[position])
        for name in self.fields:
            if name not in sample:
                raise ValueError(
                    f"sample {index}: the family returned no {name!r}, the first sample did"
                )
            if sample[name].shape != self.handle[name].shape[1:]:
                raise ValueError(
                    f"sample {index}: {name} has shape {sample[name].shape}, the first "
                    f"sample of its block {self.handle[name].shape[1:]}"
                )
        for name, value in sample["parameters"].items():
            shape = np.shape(value)
            if name not in self.specs or shape != self.specs[name][0]:
                raise ValueError(f"sample {index}: parameter {name!r} has shape {shape}, the first "
                                 f"sample of its block {self.specs.get(name, ('missing',))[0]}")
        self._pending.append(sample)
        self._pending_bytes += sum(np.asarray(sample[name]).nbytes for name in self.fields)
        if self._pending_bytes >= SLAB_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the buffered samples as one slab per array."""
        if not self._pending:
            return
        start, stop = self._written, self._written + len(self._pending)
        for name in self.fields:
            self.handle[name][start:stop] = np.stack([s[name] for s in self._pending])
        for name, (shape, dtype) in self.specs.items():
            self.handle["parameters"][name][start:stop] = np.stack(
                [np.asarray(s["parameters"][name], dtype=dtype) for s in self._pending])
        for name in self._pending[0]["solver"]:
            self.handle["solver"][name][start:stop] = [s["solver"][name] for s in self._pending]
        self._written = stop
        self._pending, self._pending_bytes = [], 0

    def finish(self) -> None:
        """Write what is buffered, mark the shard complete and close it."""
        self.flush()
        self.handle.attrs["complete"] = True
        self.close()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def _open(self, sample: Mapping[str, Any]) -> None:
        self.fields = [name for name in SAMPLE_FIELDS if name in sample]
        self.specs = parameter_specs(sample["parameters"])
        n = len(self.indices)
        self.handle = create_dataset_file(
            self.path,
            n=n,
            fields={name: (np.asarray(sample[name]).shape, np.float32) for name in self.fields},
            attrs={},
            parameters=self.specs,
            solver_stats=True,
            compression=None,
        )
        if self.tuned is not None:
            create_sample_dataset(self.handle["solver"], self.tuned, n, (), np.float64)
        create_sample_dataset(self.handle, "index", n, (), np.int64,
                              data=np.asarray(self.indices, dtype=np.int64))
        for key, value in self.attrs.items():
            self.handle.attrs[key] = value
        self.handle.attrs["complete"] = False


def shard_is_done(path: Path, run_hash: str, indices: np.ndarray) -> bool:
    """A shard exists, opens, is complete and holds ``indices`` of this run; removed if not."""
    h5py = _h5py()
    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as handle:
            ok = (bool(handle.attrs.get("complete", False))
                  and str(handle.attrs.get("run_hash", "")) == run_hash
                  and np.array_equal(handle["index"][()], indices))
    except (OSError, KeyError):
        ok = False
    if not ok:
        path.unlink()
    return ok


def shard_layout(path: Path) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """``(fields, parameters)`` of a shard: ``name -> (per-sample shape, dtype)``."""
    h5py = _h5py()
    with h5py.File(path, "r") as shard:
        fields = {
            name: (shard[name].shape[1:], np.float32) for name in SAMPLE_FIELDS if name in shard
        }
        parameters = {
            name: (item.shape[1:], item.dtype) for name, item in shard["parameters"].items()
        }
    return fields, parameters


def merge_shards(handle, shard_paths: Sequence[Path], chunk_size: int,
                 tuned: Optional[str] = None) -> float:
    """Copy every shard into the open dataset file ``handle`` at the samples' draw indices.

    Shard ``b`` holds the samples at solve positions ``b · chunk_size, ...``; ``solver/block``
    and ``solver/position`` record where each sample was solved. Each array moves in slabs of
    at most :data:`SLAB_BYTES`, one scatter per slab. Returns the summed solve time.
    """
    h5py = _h5py()
    stats = [name for name in SOLVER_STATS if name not in ("block", "position")]
    stats += [tuned] if tuned else []
    solve_time = 0.0
    for block, path in enumerate(shard_paths):
        hint = f"remove {path} and rerun the same command to solve its block again"
        with h5py.File(path, "r") as shard:
            indices = read_rows(shard["index"], 0, shard["index"].shape[0], path, hint=hint)
            arrays = [(handle[name], shard[name]) for name in SAMPLE_FIELDS if name in shard]
            arrays += [
                (handle["parameters"][name], item) for name, item in shard["parameters"].items()
            ]
            arrays += [(handle["solver"][name], shard["solver"][name]) for name in stats]
            for target, source in arrays:
                _scatter(target, source, indices, path, hint)
            times = read_rows(shard["solver"]["time"], 0, len(indices), path, indices, hint)
            solve_time += float(np.sum(times))
            order = np.argsort(indices)
            handle["solver"]["block"][indices[order]] = block
            handle["solver"]["position"][indices[order]] = block * chunk_size + order
    return solve_time


def _scatter(target, source, indices: np.ndarray, path: Path, hint: str) -> None:
    """``target[indices[p]] = source[p]`` for every shard position ``p``, a slab at a time.

    A corrupt chunk of ``source`` raises OSError naming the shard ``path`` and the sample.
    """
    row_bytes = max(1, int(np.prod(source.shape[1:], dtype=np.int64)) * source.dtype.itemsize)
    rows = max(1, SLAB_BYTES // row_bytes)
    for start in range(0, len(indices), rows):
        slab = indices[start:start + rows]
        order = np.argsort(slab)  # h5py scatters to increasing indices only
        values = read_rows(source, start, start + len(slab), path, slab, hint)
        target[slab[order]] = values[order]
