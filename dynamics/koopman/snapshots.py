"""Snapshot pairs ``(X, Y)`` from trajectories, delay (Hankel) embedding, splits by trajectory.

Trajectories come as one array ``[n_traj, n_time, *state]`` or as a list of ``[n_time, *state]``
arrays. A list whose trajectories differ in length is accepted only with ``ragged=True``, so
that a truncated trajectory is never mixed in silently. Every trajectory needs at least two
snapshots (``delays + 1`` with a delay embedding), and NaN or inf anywhere is an error.

Pairs are ordered trajectory by trajectory, time within a trajectory: pair ``k`` is
``(x_t, x_{t+1})`` of trajectory ``trajectory[k]`` at ``t = time[k]``. With ``delays = D`` a
snapshot is the window ``[x_t, x_{t+1}, ..., x_{t+D-1}]`` flattened (oldest first), and its
pair is the window one step later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np

from pdesuite.dynamics.koopman._checks import check_float, check_int

__all__ = [
    "SnapshotPairs",
    "as_trajectories",
    "delay_embed",
    "snapshot_pairs",
    "train_test_split",
]

Trajectories = Union[np.ndarray, Sequence[np.ndarray]]


def _as_float_array(value: Any, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"{name}: expected a numeric array; trajectories of different lengths "
                        "go in a list with ragged=True")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {array.dtype}")
    return np.asarray(array, dtype=np.float64)


def as_trajectories(data: Trajectories, ragged: bool = False,
                    min_length: int = 2, name: str = "trajectories") -> list[np.ndarray]:
    """Validate trajectories and return them as a list of float64 ``[n_time, *state]`` arrays.

    Args:
        data: ``[n_traj, n_time, *state]`` array (``*state`` at least one axis: a single
            trajectory ``[n_time, d]`` is ``data[None]``), or a list of ``[n_time, *state]``.
        ragged: allow trajectories of different lengths (a list only).
        min_length: the fewest snapshots a trajectory may have (default 2, one pair).
        name: the argument's name in error messages.

    Raises:
        TypeError: not real numbers. ValueError: wrong rank, no trajectories, too few
        snapshots, state shapes that differ, lengths that differ without ``ragged``, NaN/inf.
    """
    if isinstance(data, np.ndarray) or not isinstance(data, (list, tuple)):
        array = _as_float_array(data, name)
        if array.ndim < 3:
            raise ValueError(f"{name}: expected [n_traj, n_time, *state] (at least 3 axes), got "
                             f"shape {array.shape}; one trajectory [n_time, d] is data[None]")
        trajectories = list(array)
    else:
        trajectories = [_as_float_array(item, f"{name}[{i}]") for i, item in enumerate(data)]
        for i, trajectory in enumerate(trajectories):
            if trajectory.ndim < 2:
                raise ValueError(f"{name}[{i}]: expected [n_time, *state], got shape "
                                 f"{trajectory.shape}")
    if not trajectories:
        raise ValueError(f"{name}: no trajectories given")
    state_shape = trajectories[0].shape[1:]
    lengths = [len(trajectory) for trajectory in trajectories]
    for i, trajectory in enumerate(trajectories):
        if trajectory.shape[1:] != state_shape:
            raise ValueError(f"{name}[{i}]: state shape {trajectory.shape[1:]} differs from "
                             f"the first trajectory's {state_shape}")
        if len(trajectory) < min_length:
            raise ValueError(f"{name}[{i}]: has {len(trajectory)} snapshot(s); at least "
                             f"{min_length} are needed to form a pair")
        if not np.all(np.isfinite(trajectory)):
            raise ValueError(f"{name}[{i}]: contains NaN or inf")
    if not ragged and len(set(lengths)) > 1:
        raise ValueError(f"{name}: trajectories have different lengths {sorted(set(lengths))}; "
                         "pass ragged=True if that is intended")
    return trajectories


def delay_embed(trajectory: np.ndarray, delays: int) -> np.ndarray:
    """Delay (Hankel) embedding ``[n_time, d] -> [n_time - delays + 1, delays·d]``.

    Row ``t`` is ``[x_t, x_{t+1}, ..., x_{t+delays-1}]`` (oldest first). ``delays = 1`` returns
    the trajectory itself.
    """
    delays = check_int(delays, "delays")
    trajectory = np.asarray(trajectory, dtype=np.float64)
    if trajectory.ndim != 2:
        raise ValueError(f"trajectory: expected [n_time, d], got shape {trajectory.shape}")
    rows = len(trajectory) - delays + 1
    if rows < 1:
        raise ValueError(f"delays: {delays} is longer than the trajectory's "
                         f"{len(trajectory)} snapshots")
    windows = np.lib.stride_tricks.sliding_window_view(trajectory, (delays, trajectory.shape[1]))
    return np.ascontiguousarray(windows[:, 0].reshape(rows, -1))


@dataclass(frozen=True)
class SnapshotPairs:
    """Snapshot pairs: ``Y[k]`` is the snapshot one step after ``X[k]``.

    Attributes:
        X, Y: float64 ``[m, delays·d]``, ``d = prod(state_shape)``.
        state_shape: the shape of one state (one frame).
        delays: the delay embedding's window length (1: none).
        trajectory, time: int ``[m]``, where each pair comes from (see the module docstring).
    """

    X: np.ndarray
    Y: np.ndarray
    state_shape: tuple[int, ...]
    delays: int = 1
    trajectory: Union[np.ndarray, None] = None
    time: Union[np.ndarray, None] = None

    def __post_init__(self) -> None:
        if self.X.shape != self.Y.shape or self.X.ndim != 2:
            raise ValueError(f"X, Y: expected two [m, n] arrays of one shape, got {self.X.shape} "
                             f"and {self.Y.shape}")
        if len(self.X) < 1:
            raise ValueError("X: no snapshot pairs")

    @property
    def n_pairs(self) -> int:
        return len(self.X)

    @property
    def state_size(self) -> int:
        """``d``, the number of values in one state."""
        return int(np.prod(self.state_shape, dtype=np.int64))

    @classmethod
    def from_arrays(cls, X: Any, Y: Any) -> "SnapshotPairs":
        """Pairs given directly: ``X``, ``Y`` ``[m, *state]`` (``Y[k]`` one step after ``X[k]``)."""
        X = _as_float_array(X, "X")
        Y = _as_float_array(Y, "Y")
        if X.ndim < 2 or X.shape != Y.shape:
            raise ValueError(f"X, Y: expected two [m, *state] arrays of one shape, got "
                             f"{X.shape} and {Y.shape}")
        for name, array in (("X", X), ("Y", Y)):
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name}: contains NaN or inf")
        m = len(X)
        return cls(X.reshape(m, -1), Y.reshape(m, -1), tuple(X.shape[1:]), 1,
                   np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int64))


def snapshot_pairs(data: Trajectories, delays: int = 1, ragged: bool = False) -> SnapshotPairs:
    """All consecutive pairs of every trajectory, with an optional delay embedding.

    Args:
        data: trajectories, as :func:`as_trajectories` takes them.
        delays: delay-embedding window ``D`` (default 1: none); each trajectory needs at least
            ``D + 1`` snapshots.
        ragged: allow trajectories of different lengths.

    Returns:
        :class:`SnapshotPairs` with ``sum_i (n_time_i - D)`` pairs.
    """
    delays = check_int(delays, "delays")
    trajectories = as_trajectories(data, ragged=ragged, min_length=delays + 1)
    state_shape = tuple(trajectories[0].shape[1:])
    X, Y, which, time = [], [], [], []
    for index, trajectory in enumerate(trajectories):
        embedded = delay_embed(trajectory.reshape(len(trajectory), -1), delays)
        X.append(embedded[:-1])
        Y.append(embedded[1:])
        which.append(np.full(len(embedded) - 1, index, dtype=np.int64))
        time.append(np.arange(len(embedded) - 1, dtype=np.int64))
    return SnapshotPairs(np.concatenate(X), np.concatenate(Y), state_shape, delays,
                         np.concatenate(which), np.concatenate(time))


def train_test_split(data: Trajectories, test_fraction: float = 0.2, seed: int = 0,
                     ragged: bool = False) -> tuple[Trajectories, Trajectories]:
    """Split trajectories (never pairs) into a training and a test set, seeded.

    Args:
        data: trajectories, as :func:`as_trajectories` takes them.
        test_fraction: share of the trajectories held out, in (0, 1) (default 0.2); rounded,
            with at least one trajectory on each side.
        seed: seeds the permutation (``numpy.random.default_rng(seed)``).
        ragged: allow trajectories of different lengths.

    Returns:
        ``(train, test)``: arrays ``[n, n_time, *state]`` when ``data`` was one array, lists
        otherwise; each side keeps the trajectories' original order.
    """
    fraction = check_float(test_fraction, "test_fraction", minimum=0.0, allow_minimum=False)
    if fraction >= 1.0:
        raise ValueError(f"test_fraction: must be in (0, 1), got {fraction}")
    trajectories = as_trajectories(data, ragged=ragged)
    n = len(trajectories)
    if n < 2:
        raise ValueError(f"data: a split by trajectory needs at least 2 trajectories, got {n}")
    n_test = min(max(int(round(fraction * n)), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    test_indices = np.sort(order[:n_test])
    train_indices = np.sort(order[n_test:])
    if isinstance(data, (list, tuple)):
        return [trajectories[i] for i in train_indices], [trajectories[i] for i in test_indices]
    stacked = np.stack(trajectories)
    return stacked[train_indices], stacked[test_indices]
