"""The registry of NumPy-backend methods. Each method module registers its functions here.

A method function has the signature::

    method(op, b, x, pc, monitor, **options) -> (x, reason, info)

- ``op``: :class:`~pdesuite.solvers.linear_operator.Operator` (counts matvecs);
- ``b``: ``[n]`` right-hand side of the working dtype; ``x``: ``[n]`` initial guess, owned by
  the method (it may update it in place);
- ``pc``: :class:`~pdesuite.solvers.preconditioner.CountingPreconditioner` (identity when
  ``pc.is_identity``);
- ``monitor``: :class:`~pdesuite.solvers.monitor.ConvergenceMonitor`: the method calls
  ``monitor.start(‖r0‖)`` once and ``monitor.step(‖r‖)`` after every iteration, and stops at
  the first reason it returns;
- returns the iterate, the reason, and a dict of method-specific details for ``SolveResult.info``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

MethodFunction = Callable[..., tuple]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    function: MethodFunction
    flexible: bool  # correct with a nonlinear or varying preconditioner
    needs_hermitian: bool  # the theory needs A Hermitian (checked on explicit matrices)
    options: tuple[str, ...]  # keyword options the method accepts
    description: str


METHODS: dict[str, MethodSpec] = {}


def register_method(
    name: str,
    *,
    flexible: bool = False,
    needs_hermitian: bool = False,
    options: tuple[str, ...] = (),
    description: str = "",
) -> Callable[[MethodFunction], MethodFunction]:
    def decorate(function: MethodFunction) -> MethodFunction:
        if name in METHODS:
            raise RuntimeError(f"method {name!r} registered twice")
        METHODS[name] = MethodSpec(name, function, flexible, needs_hermitian, tuple(options),
                                   description or (function.__doc__ or "").strip().split("\n")[0])
        return function

    return decorate


def option_defaults(method: str) -> dict[str, Any]:
    """The options of a NumPy-backend method with the defaults its function declares.

    Read from the function's signature (the keyword parameters after ``monitor``), so that
    ``tests/solvers/test_vocabulary.py`` compares what the code does with
    :data:`pdesuite.solvers.vocabulary.METHOD_DEFAULTS`.
    """
    spec = METHODS[method]
    parameters = inspect.signature(spec.function).parameters
    return {name: parameters[name].default for name in spec.options}
