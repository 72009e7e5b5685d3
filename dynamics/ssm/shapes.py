"""Input checks and dtype rules shared by the SSM layers."""

from __future__ import annotations

import torch

__all__ = ["check_positive_int", "check_sequence", "complex_dtype"]


def check_positive_int(value: object, argument: str) -> int:
    """``value`` if it is a positive int, else a ``ValueError`` naming ``argument``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argument}: expected a positive int, got {value!r}")
    return value


def check_sequence(u: object, channels: int, argument: str = "u") -> None:
    """``u`` must be a tensor ``[B, L, channels]`` with ``L >= 1``."""
    if not isinstance(u, torch.Tensor):
        raise TypeError(f"{argument}: expected a torch.Tensor, got {type(u).__name__}")
    if u.ndim != 3 or u.shape[-1] != channels or u.shape[1] == 0:
        raise ValueError(f"{argument}: expected a tensor [B, L >= 1, {channels}], "
                         f"got {tuple(u.shape)}")


def complex_dtype(real: torch.dtype) -> torch.dtype:
    """The complex dtype of the same precision as the real dtype ``real``."""
    return torch.complex128 if real == torch.float64 else torch.complex64
