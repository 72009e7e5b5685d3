"""The options of each torch method: names and defaults read from the methods' signatures, and
their checks through :mod:`pdesuite.solvers.validation`.

A method's options are the keyword-only parameters of its function in
:mod:`~pdesuite.solvers.torch_backend.methods`, so that the names and defaults reported here
are the ones the methods actually use.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from pdesuite.solvers.arnoldi import check_reorthogonalize
from pdesuite.solvers.torch_backend.methods import METHOD_FUNCTIONS
from pdesuite.solvers.validation import (
    check_bool,
    check_choice,
    check_int,
    check_known_options,
    split_preconditioner_options,
)
from pdesuite.solvers.vocabulary import SIDES

#: Methods of the torch backend.
METHODS = tuple(METHOD_FUNCTIONS)
#: Methods that stay correct with a nonlinear or varying preconditioner.
FLEXIBLE_METHODS = ("fcg", "dcdm", "fgmres")


#: The check of each method option: ``(name, value) -> value in its canonical type``.
_OPTION_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "restart": lambda name, value: check_int(name, value, 1),
    "mmax": lambda name, value: check_int(name, value, 1),
    "residual_replacement": lambda name, value: check_int(name, value, 0),
    "normalize_input": check_bool,
    "side": lambda name, value: check_choice(name, value, SIDES),
    "reorthogonalize": lambda name, value: check_reorthogonalize(value),
}


def keyword_defaults(function: Callable) -> dict[str, Any]:
    """The keyword-only parameters of ``function`` with their defaults."""
    return {p.name: p.default for p in inspect.signature(function).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def check_method_options(method: str, options: dict[str, Any],
                         backend_options: tuple[str, ...]) -> tuple[dict, dict]:
    """``(method options checked, preconditioner options without their pc_ prefix)``.

    ``backend_options``: the options every method takes, named in the error for an unknown
    option; :func:`~pdesuite.solvers.torch_backend.solve` takes them as parameters of its own,
    so ``options`` never holds them.
    """
    method_options, pc_options = split_preconditioner_options(options)
    known = tuple(keyword_defaults(METHOD_FUNCTIONS[method]))
    check_known_options(method, method_options, known + backend_options, "torch")
    checked = {name: _OPTION_CHECKS[name](name, value) for name, value in method_options.items()}
    return checked, pc_options
