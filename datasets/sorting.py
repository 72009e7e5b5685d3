"""Orderings of a dataset's samples so that neighbours in the order have similar systems.

Sorting Krylov Recycling (SKR, ICLR 2024) solves the systems of a dataset in an order in which
consecutive parameter fields are close, so that the recycle space of one solve suits the next.
Two sortings from that work are here, plus two trivial orders:

- ``"greedy"`` (the paper): a greedy nearest-neighbour path by Frobenius distance. From the
  current sample, go to the nearest one not yet visited. The distance matrix of a group costs
  ``O(g² d)`` (one matrix product) and the path ``O(g²)``, so for large ``n`` the samples are
  cut into groups of at most ``group_size``. Unlike a cut by index, the groups here are slabs
  along the first principal component of the keys (so each group covers one region of the
  parameter space and its points are close), and each group's path starts at the member
  nearest to where the previous group's path ended. The first path starts at the sample
  farthest from the mean, an end of the cloud, so that it does not have to double back.
- ``"fft"`` (the released SKR code): the n-D FFT of each key, the centred low-frequency block of
  ``12`` modes per axis (real and imaginary parts), PCA to 7 dimensions, each dimension scaled
  to ``[0, 1]``, a bit per dimension (``> 0.5``; the first principal component is the most
  significant bit), and the ``2^7`` bins visited in reflected Gray-code order, so that
  consecutive bins differ in one coordinate. Within a bin the given order is kept. It is
  ``O(n d log d)``: the choice for very large ``n``.
- ``"none"`` / ``"given"``: the identity.
- ``"random"``: a permutation drawn from ``np.random.default_rng(seed)``.

Every method is deterministic for given keys and seed (ties go to the lower index, and the
signs of the principal components are fixed), so a rerun of the same generation finds the
same order.
"""

from __future__ import annotations

import time
from typing import Sequence, Union

import numpy as np

__all__ = [
    "SORT_METHODS",
    "gray_code_rank",
    "path_length",
    "sort_order",
    "timed_sort_order",
]

SORT_METHODS = ("greedy", "fft", "none", "given", "random")
#: Modes per axis of the centred low-frequency block the ``"fft"`` sorting keeps (SKR's code).
FFT_BLOCK = 12
#: Principal components the ``"fft"`` sorting bins on: ``2^7`` bins.
FFT_COMPONENTS = 7
#: Power iterations for the first principal component that cuts the greedy groups.
_POWER_ITERATIONS = 30

KeysLike = Union[np.ndarray, Sequence[np.ndarray]]


def sort_order(keys: KeysLike, method: str = "greedy", group_size: int = 2000,
               seed: int = 0) -> np.ndarray:
    """A permutation of the samples that puts similar keys next to each other.

    Args:
        keys: ``[n, ...]`` array (or a sequence of ``n`` equally shaped arrays): the parameter
            field of each sample, e.g. ``[n, s, s]`` coefficient fields. Only ``"fft"`` uses
            the spatial layout; ``"greedy"`` flattens each key.
        method: ``"greedy"`` (default), ``"fft"``, ``"none"``/``"given"`` (identity) or
            ``"random"``. See the module docstring.
        group_size: largest group of the greedy path (default 2000); memory is
            ``8 group_size²`` bytes. At least 2.
        seed: seed of ``"random"`` and of the power iteration that cuts greedy groups.

    Returns:
        ``[n]`` int64 permutation ``order``: the sample solved at position ``p`` is
        ``order[p]``.
    """
    if not isinstance(method, str) or method not in SORT_METHODS:
        raise ValueError(f"method: must be one of {SORT_METHODS}, got {method!r}")
    if isinstance(group_size, bool) or int(group_size) != group_size or group_size < 2:
        raise ValueError(f"group_size: must be an integer >= 2, got {group_size!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    keys = _as_keys(keys)
    n = keys.shape[0]
    if method in ("none", "given") or n <= 1:
        return np.arange(n, dtype=np.int64)
    if method == "random":
        return np.random.default_rng(int(seed)).permutation(n).astype(np.int64)
    if method == "fft":
        return _fft_order(keys)
    return _greedy_order(keys.reshape(n, -1), int(group_size), int(seed))


def timed_sort_order(keys: KeysLike, method: str = "greedy", group_size: int = 2000,
                     seed: int = 0) -> tuple[np.ndarray, float]:
    """:func:`sort_order` and its wall time in seconds (the sorting alone, not the keys)."""
    start = time.perf_counter()
    order = sort_order(keys, method=method, group_size=group_size, seed=seed)
    return order, time.perf_counter() - start


def path_length(keys: KeysLike, order: np.ndarray | None = None) -> float:
    """Sum of the Frobenius distances between consecutive keys along ``order``.

    Args:
        keys: ``[n, ...]`` keys as in :func:`sort_order`.
        order: ``[n]`` permutation; default the identity.

    Returns:
        ``Σ_p ‖keys[order[p+1]] − keys[order[p]]‖_F`` (0 for fewer than two samples).
    """
    keys = _as_keys(keys)
    n = keys.shape[0]
    flat = keys.reshape(n, -1)
    if order is None:
        order = np.arange(n)
    order = np.asarray(order)
    if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
        raise ValueError(f"order: must be a permutation of range({n}), got shape {order.shape}")
    if n < 2:
        return 0.0
    steps = np.diff(flat[order], axis=0)
    return float(np.sum(np.linalg.norm(steps, axis=1)))


def gray_code_rank(codes: np.ndarray) -> np.ndarray:
    """Position of each code in the reflected Gray-code sequence ``g(i) = i ^ (i >> 1)``.

    The inverse of the Gray code: visiting codes by increasing rank changes one bit per step.
    """
    rank = np.asarray(codes, dtype=np.int64).copy()
    shift = rank >> 1
    while np.any(shift):
        rank ^= shift
        shift >>= 1
    return rank


# --------------------------------------------------------------------------------------------
# internals
# --------------------------------------------------------------------------------------------


def _as_keys(keys: KeysLike) -> np.ndarray:
    if isinstance(keys, np.ndarray):
        array = keys
    else:
        items = [np.asarray(k) for k in keys]
        if items and any(item.shape != items[0].shape for item in items):
            raise ValueError("keys: every key must have the same shape")
        array = np.stack(items) if items else np.zeros((0, 1))
    if array.ndim < 2:
        raise ValueError(
            f"keys: expected an array [n, ...] with one key per sample, got shape {array.shape}"
        )
    if np.iscomplexobj(array):
        raise TypeError("keys: must be real; pass the real and imaginary parts as channels")
    array = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("keys: contain NaN or Inf entries")
    return array


def _first_component(centered: np.ndarray, seed: int) -> np.ndarray:
    """Unit vector along the first principal component, by power iteration on ``XᵀX``.

    ``O(n d)`` per step: the full SVD of ``[n, d]`` keys would cost ``O(n d²)``.
    """
    vector = np.random.default_rng(seed).standard_normal(centered.shape[1])
    for _ in range(_POWER_ITERATIONS):
        vector = centered.T @ (centered @ vector)
        norm = np.linalg.norm(vector)
        if norm == 0.0:
            break
        vector /= norm
    # Fix the sign: the largest entry in magnitude is positive.
    if vector[np.argmax(np.abs(vector))] < 0:
        vector = -vector
    return vector


def _greedy_order(flat: np.ndarray, group_size: int, seed: int) -> np.ndarray:
    n = flat.shape[0]
    centered = flat - flat.mean(axis=0)
    if n <= group_size:
        groups = [np.arange(n)]
    else:
        projection = centered @ _first_component(centered, seed)
        slab_order = np.argsort(projection, kind="stable")
        n_groups = -(-n // group_size)
        groups = np.array_split(slab_order, n_groups)

    order = np.empty(n, dtype=np.int64)
    filled = 0
    previous_end: np.ndarray | None = None
    for group in groups:
        members = flat[group]
        if previous_end is None:
            # Farthest from the mean: an end of the cloud.
            start = int(np.argmax(np.einsum("ij,ij->i", centered[group], centered[group])))
        else:
            start = int(np.argmin(np.sum((members - previous_end) ** 2, axis=1)))
        path = _greedy_path(members, start)
        order[filled:filled + len(group)] = group[path]
        filled += len(group)
        previous_end = members[path[-1]]
    return order


def _greedy_path(points: np.ndarray, start: int) -> np.ndarray:
    """Greedy nearest-neighbour path through ``points`` ``[g, d]`` from ``start``."""
    g = points.shape[0]
    squared = np.einsum("ij,ij->i", points, points)
    distance = squared[:, None] + squared[None, :] - 2.0 * (points @ points.T)
    # Visited columns are set to +inf, so each step is one argmin over a row.
    path = np.empty(g, dtype=np.int64)
    current = start
    for step in range(g):
        path[step] = current
        distance[:, current] = np.inf
        if step + 1 < g:
            current = int(np.argmin(distance[current]))
    return path


def _fft_features(keys: np.ndarray) -> np.ndarray:
    """Real and imaginary parts of the centred low-frequency block, ``[n, features]``."""
    n = keys.shape[0]
    axes = tuple(range(1, keys.ndim))
    spectrum = np.fft.fftshift(np.fft.fftn(keys, axes=axes), axes=axes)
    window = [slice(None)]
    for size in keys.shape[1:]:
        width = min(FFT_BLOCK, size)
        low = size // 2 - width // 2
        window.append(slice(low, low + width))
    block = spectrum[tuple(window)].reshape(n, -1)
    return np.concatenate([block.real, block.imag], axis=1)


def _fft_order(keys: np.ndarray) -> np.ndarray:
    features = _fft_features(keys)
    centered = features - features.mean(axis=0)
    n_components = min(FFT_COMPONENTS, centered.shape[0], centered.shape[1])
    # Eigenvectors of the small [features, features] covariance: much cheaper than the SVD of
    # the tall [n, features] matrix, and accurate enough to bin on.
    _, vectors = np.linalg.eigh(centered.T @ centered)
    components = vectors[:, ::-1][:, :n_components].T
    # Fix the sign of each component: its largest entry in magnitude is positive.
    signs = np.sign(components[np.arange(n_components), np.argmax(np.abs(components), axis=1)])
    signs[signs == 0] = 1.0
    projected = centered @ (components * signs[:, None]).T
    low = projected.min(axis=0)
    span = projected.max(axis=0) - low
    # Directions beyond the rank of the data carry only round-off: do not bin on them.
    span[span <= 1e-9 * max(float(span.max(initial=0.0)), np.finfo(float).tiny)] = 0.0
    scaled = np.where(span > 0, (projected - low) / np.where(span > 0, span, 1.0), 0.0)
    bits = (scaled > 0.5).astype(np.int64)
    weights = 1 << np.arange(n_components - 1, -1, -1, dtype=np.int64)
    codes = bits @ weights
    return np.argsort(gray_code_rank(codes), kind="stable").astype(np.int64)
