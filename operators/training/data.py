"""Training data: accepted forms, ``(input, target)`` pairs, and resumable batching.

A dataset is a ``Dataset`` whose items are ``(input, target)`` pairs of ``[C, *spatial]``
tensors (a ``TensorDataset``, a ``PDEDataset``; dict items with ``inputs``/``outputs``,
``input``/``output`` or ``x``/``y`` keys also work), or a pair of tensors or arrays
``(inputs, outputs)`` of shape ``[n, C, *spatial]``.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator, Mapping, Sequence, Union

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, Sampler, TensorDataset

__all__ = [
    "DataLike",
    "NonFiniteBatchWarning",
    "ResumableBatchSampler",
    "as_dataset",
    "sample_shapes",
    "split_pair",
]

DataLike = Union[Dataset, Sequence]


class NonFiniteBatchWarning(UserWarning):
    """A training batch had a non-finite input, target or loss, and was skipped."""


def as_dataset(data: Any, name: str) -> Dataset:
    """``data`` as a Dataset; a pair of tensors/arrays becomes a ``TensorDataset``.

    Raises ValueError for an empty dataset or a pair with unequal sample counts, and TypeError
    for anything else (``name`` starts the message).
    """
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(part, (torch.Tensor, np.ndarray)) for part in data):
        inputs, outputs = (torch.as_tensor(part) for part in data)
        if inputs.shape[0] != outputs.shape[0]:
            raise ValueError(
                f"{name}: inputs and outputs have {inputs.shape[0]} and {outputs.shape[0]} samples"
            )
        return TensorDataset(inputs, outputs)
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        if len(data) == 0:
            raise ValueError(f"{name}: the dataset is empty")
        return data
    raise TypeError(
        f"{name}: expected a Dataset of (input, target) pairs or a pair of tensors "
        f"(inputs [n, C, *spatial], outputs [n, C, *spatial]), got {type(data).__name__}"
    )


def split_pair(item: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input, target)`` of a dataset item or a collated batch."""
    if isinstance(item, Mapping):
        for keys in (("inputs", "outputs"), ("input", "output"), ("x", "y")):
            if keys[0] in item and keys[1] in item:
                return item[keys[0]], item[keys[1]]
        raise ValueError(f"{name}: a dict item needs 'inputs' and 'outputs' keys, got {list(item)}")
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        return item[0], item[1]
    raise TypeError(
        f"{name}: expected (input, target) pairs, got an item of type {type(item).__name__}"
    )


def sample_shapes(data: Dataset, name: str) -> tuple[list[int], list[int]]:
    """Shapes ``([C_in, *spatial], [C_out, *spatial])`` of the first sample."""
    x, y = split_pair(data[0], name)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.ndim < 1 or y.ndim < 1:
        raise ValueError(
            f"{name}: samples must be [C, *spatial], got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return list(x.shape), list(y.shape)


class ResumableBatchSampler(Sampler):
    """Batches of ``sampler``, leaving out the first ``skip`` batches (a mid-epoch resume)."""

    def __init__(self, sampler: Sampler, batch_size: int) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.skip = 0

    def _batches(self) -> BatchSampler:
        return BatchSampler(self.sampler, self.batch_size, drop_last=False)

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(iter(self._batches()), self.skip, None)

    def __len__(self) -> int:
        return len(self._batches()) - self.skip

    @property
    def batches_per_epoch(self) -> int:
        return len(self._batches())
