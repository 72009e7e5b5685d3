"""Argument checks shared by every solver, backend and preconditioner.

Each check takes the argument's name first, returns the value in its canonical type, and raises
one ``ValueError`` whose message starts with that name, so that a user sees at once which
argument to change. Wrong types are bad values too: ``restart="40"`` and ``restart=40.5`` fail
the same way as ``restart=0``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Optional

import numpy as np

from pdesuite.solvers.vocabulary import DEFAULT_MAXITER


def check_int(name: str, value: Any, minimum: int = 0, maximum: Optional[int] = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``; an integral float (``40.0``) is accepted."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) \
            and not isinstance(value, numbers.Integral) and float(value).is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name}: must be an integer {bound}, got {value}")
    return int(value)


def check_real(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf,
               open_low: bool = False, open_high: bool = False, nonzero: bool = False) -> float:
    """``value`` as a finite float in the interval from ``low`` to ``high``.

    ``open_low``/``open_high`` exclude the end points; ``nonzero`` excludes 0.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: must be a real number, got {value!r}")
    value = float(value)
    below = value <= low if open_low else value < low
    above = value >= high if open_high else value > high
    if not math.isfinite(value) or below or above or (nonzero and value == 0.0):
        left = "(" if open_low else "["
        right = ")" if open_high else "]"
        interval = f"{left}{low:g}, {high:g}{right}"
        extra = ", non-zero" if nonzero else ""
        raise ValueError(f"{name}: must be a finite number in {interval}{extra}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (NumPy booleans included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: must be True or False, got {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` lower-cased, if it is one of ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name}: must be one of {choices}, got {value!r}")
    return value.lower()


def check_tolerances(rtol: Any, atol: Any, maxiter: Any) -> tuple[float, float, int]:
    """The stopping parameters every backend shares: ``(rtol, atol, maxiter)``.

    ``rtol`` and ``atol`` are finite numbers >= 0, not both zero (that target cannot be met);
    ``maxiter`` is an integer >= 1, or ``None`` for :data:`DEFAULT_MAXITER`.
    """
    rtol = check_real("rtol", rtol, low=0.0)
    atol = check_real("atol", atol, low=0.0)
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("rtol: must be > 0 unless atol > 0 (a zero tolerance cannot be met)")
    maxiter = DEFAULT_MAXITER if maxiter is None else check_int("maxiter", maxiter, 1)
    return rtol, atol, maxiter


def check_known_options(method: str, given: Iterable[str], known: Iterable[str],
                        backend: str) -> None:
    """A ``TypeError`` naming every option of ``given`` that ``method`` does not take.

    TypeError, as Python raises for an unexpected keyword argument.
    """
    known = tuple(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TypeError(f"method {method!r} ({backend} backend): unknown option(s) {unknown}; "
                        f"it takes {sorted(known)}")


def split_preconditioner_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(method options, preconditioner options)``; the latter lose their ``pc_`` prefix."""
    prefix = "pc_"
    pc_options = {k[len(prefix):]: v for k, v in options.items() if k.startswith(prefix)}
    method_options = {k: v for k, v in options.items() if not k.startswith(prefix)}
    return method_options, pc_options
