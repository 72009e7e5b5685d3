"""The linear recurrence ``x_t = a_t x_{t-1} + b_t`` (``x_{-1} = 0``), elementwise, along an axis.

The pairs ``(a_t, b_t)`` compose associatively, ``(a_i, b_i) ∘ (a_j, b_j) = (a_j a_i,
a_j b_i + b_j)`` (first ``i``, then ``j``), so all states follow from a parallel prefix scan.
:func:`parallel_scan` is the recursive-doubling form: combine neighbouring pairs, scan the
half-length sequence, then fill in the even positions; ``O(L)`` work and ``O(log L)`` depth,
in plain torch ops (autograd works through it). :func:`sequential_scan` is the loop, the
reference.
"""

from __future__ import annotations

import torch

__all__ = ["parallel_scan", "sequential_scan"]


def parallel_scan(a: torch.Tensor, b: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """All states ``x`` of ``x_t = a_t x_{t-1} + b_t`` along ``dim``.

    ``a`` broadcasts against ``b`` (e.g. a time-constant ``a`` of shape ``[1, 1, N]`` for ``b``
    ``[B, L, N]``); the result has ``b``'s shape and the common dtype.
    """
    a, b = torch.broadcast_tensors(a, b)
    return _scan(a.movedim(dim, 0), b.movedim(dim, 0)).movedim(0, dim)


def _scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    length = b.shape[0]
    if length == 1:
        return b
    pairs = length // 2
    a_left, a_right = a[0:2 * pairs:2], a[1:2 * pairs:2]      # (pairs, ...)
    b_left, b_right = b[0:2 * pairs:2], b[1:2 * pairs:2]      # (pairs, ...)
    # states at the odd positions 1, 3, 5, ...: the scan of the combined pairs
    odd = _scan(a_right * a_left, a_right * b_left + b_right)  # (pairs, ...)
    # states at the even positions 2, 4, ...: one more step from the odd state before each
    even_rest = a[2::2] * odd[:(length - 1) // 2] + b[2::2]    # (ceil(L/2) - 1, ...)
    even = torch.cat([b[:1], even_rest])                       # (ceil(L/2), ...)
    interleaved = torch.stack([even[:pairs], odd], dim=1).flatten(0, 1)  # (2 pairs, ...)
    return torch.cat([interleaved, even[pairs:]]) if length % 2 else interleaved


def sequential_scan(a: torch.Tensor, b: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """The same states as :func:`parallel_scan`, one step at a time."""
    a, b = torch.broadcast_tensors(a, b)
    a, b = a.movedim(dim, 0), b.movedim(dim, 0)
    state = torch.zeros_like(b[0])
    states = []
    for a_t, b_t in zip(a, b):
        state = a_t * state + b_t
        states.append(state)
    return torch.stack(states).movedim(0, dim)
