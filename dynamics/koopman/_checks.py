"""Argument checks shared by the Koopman modules: one-line errors that name the argument."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np


def check_int(value: Any, name: str, minimum: int = 1, maximum: Optional[int] = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``; TypeError/ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name}: must be an int {bound}, got {value}")
    return int(value)


def check_float(value: Any, name: str, minimum: float = 0.0, allow_minimum: bool = True) -> float:
    """``value`` as a finite float ``>= minimum`` (``> minimum`` unless ``allow_minimum``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    too_small = value < minimum if allow_minimum else value <= minimum
    if not np.isfinite(value) or too_small:
        relation = ">=" if allow_minimum else ">"
        raise ValueError(f"{name}: must be a finite number {relation} {minimum}, got {value}")
    return value


def check_optional_rank(rank: Any, name: str = "rank") -> Optional[int]:
    """None, or an int >= 1."""
    return None if rank is None else check_int(rank, name, minimum=1)


def as_real_matrix(values: Any, name: str) -> np.ndarray:
    """``values`` as a finite float64 ``[m, d]`` array (a 1-D array is one column)."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {array.dtype}")
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a [m, d] array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or inf")
    return array
