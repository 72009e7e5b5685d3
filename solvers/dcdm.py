"""The deep conjugate direction method (DCDM; Kaneda et al., ICML 2023) on the NumPy backend.

DCDM is flexible CG shaped for a learned preconditioner ``M`` (a network, so nonlinear and
inexact): the search direction is ``M`` applied to the normalised residual ``r/‖r‖``, made
A-orthogonal to the last ``mmax`` directions (2, the paper's choice), followed by an exact line
search; the residual is recomputed as ``b − A x`` every ``residual_replacement`` iterations
(every one, as in the paper), so that a float32 network cannot let the recurrence drift. It is
:func:`~pdesuite.solvers.krylov.flexible_conjugate_gradient` with those defaults, under its own
name so that a solve says which iteration it ran. With the identity it reproduces CG's iterates.
"""

from __future__ import annotations

import numpy as np

from pdesuite.solvers.krylov import MethodReturn, flexible_conjugate_gradient
from pdesuite.solvers.linear_operator import Operator
from pdesuite.solvers.monitor import ConvergenceMonitor
from pdesuite.solvers.preconditioner import CountingPreconditioner
from pdesuite.solvers.registry import register_method
from pdesuite.solvers.validation import check_bool, check_int
from pdesuite.solvers.vocabulary import method_default


def check_dcdm_options(mmax: int, normalize_input: bool, residual_replacement: int) -> dict:
    """DCDM's options, validated (ValueError naming the option); for the python KSP, which
    checks them when it is made rather than at its first solve."""
    return {"mmax": check_int("mmax", mmax, 1),
            "normalize_input": check_bool("normalize_input", normalize_input),
            "residual_replacement": check_int("residual_replacement", residual_replacement, 0)}


@register_method("dcdm", flexible=True, needs_hermitian=True,
                 options=("mmax", "normalize_input", "residual_replacement"))
def deep_conjugate_direction(
    op: Operator,
    b: np.ndarray,
    x: np.ndarray,
    pc: CountingPreconditioner,
    monitor: ConvergenceMonitor,
    mmax: int = method_default("dcdm", "mmax"),
    normalize_input: bool = method_default("dcdm", "normalize_input"),
    residual_replacement: int = method_default("dcdm", "residual_replacement"),
) -> MethodReturn:
    """DCDM for symmetric positive definite A and any preconditioner (see the module docstring).

    Options (defaults): ``mmax`` (2) earlier directions kept, ``normalize_input`` (True),
    ``residual_replacement`` (1: the true residual every iteration, one more product with A).
    """
    return flexible_conjugate_gradient(op, b, x, pc, monitor, mmax=mmax,
                                       normalize_input=normalize_input,
                                       residual_replacement=residual_replacement)
