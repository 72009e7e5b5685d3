"""Jacobi, Gauss–Seidel, SOR and SSOR as solver methods of the NumPy backend."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

from pdesuite.solvers.registry import register_method
from pdesuite.solvers.relaxation.preconditioner import resolve_direction
from pdesuite.solvers.relaxation.splitting import ORDERINGS, SORSplitting, check_omega
from pdesuite.solvers.validation import check_choice


def _relaxation_solve(kind: str, op, b, x, pc, monitor, omega: float = 1.0,
                      direction: Optional[str] = None, ordering: str = "natural"):
    if not pc.is_identity:
        raise ValueError(f"M: method {kind!r} is itself a relaxation and takes no preconditioner")
    omega = check_omega(omega)
    direction = resolve_direction(kind, direction)
    ordering = check_choice("ordering", ordering, ORDERINGS)
    matrix = op.require_matrix(f"method={kind!r}")
    info: dict[str, Any] = {"omega": omega}
    if kind != "jacobi":
        info.update(direction=direction, ordering=ordering)

    # The initial residual: free when x0 = 0.
    r = b.copy() if not np.any(x) else b - op.matvec(x)
    reason = monitor.start(float(np.linalg.norm(r)))
    if reason is not None:
        return x, reason, info

    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "jacobi":
            x, reason = _jacobi_loop(op, matrix, b, x, r, omega, monitor)
        else:
            splitting = SORSplitting(matrix, omega, ordering)
            x, reason = _sor_loop(splitting, b, x, direction, monitor)
    return x, reason, info


def _jacobi_loop(op, matrix, b, x, r, omega, monitor):
    diag = matrix.diagonal() if sp.issparse(matrix) else np.diag(matrix)
    if np.any(diag == 0):
        raise ValueError("A: has a zero on its diagonal; the Jacobi iteration divides by it")
    omega_over_d = omega / diag
    while True:
        x = x + omega_over_d * r
        r = b - op.matvec(x)
        reason = monitor.step(float(np.linalg.norm(r)))
        if reason is not None:
            return x, reason


def _sor_loop(s: SORSplitting, b, x, direction, monitor):
    b_in, x_in = s._cast(s.to_internal(b)), s._cast(s.to_internal(x))
    if direction == "forward":
        rhs_of, solve = s.forward_rhs, s.forward_solve
    else:
        rhs_of, solve = s.backward_rhs, s.backward_solve
    if direction in ("forward", "backward"):
        c = rhs_of(b_in, x_in)
        while True:
            x_in = solve(c)
            c_next = rhs_of(b_in, x_in)
            # b − A x_new = c(x_new) − c(x_old): the true residual, from the next sweep's rhs.
            reason = monitor.step(float(np.linalg.norm(c_next - c)))
            c = c_next
            if reason is not None:
                return s.to_original(x_in), reason
    c_forward = s.forward_rhs(b_in, x_in)
    while True:
        x_half = s.forward_solve(c_forward)
        c_backward = s.backward_rhs(b_in, x_half)
        x_in = s.backward_solve(c_backward)
        # Residual of the backward half-step: c_b(x_new) − c_b(x_half).
        residual = s.backward_rhs(b_in, x_in) - c_backward
        reason = monitor.step(float(np.linalg.norm(residual)))
        if reason is not None:
            return s.to_original(x_in), reason
        c_forward = s.forward_rhs(b_in, x_in)


@register_method("jacobi", options=("omega",),
                 description="(weighted) Jacobi iteration x += ω D⁻¹ (b − A x)")
def jacobi(op, b, x, pc, monitor, omega: float = 1.0):
    """(Weighted) Jacobi iteration; one iteration = one sweep = one matvec."""
    return _relaxation_solve("jacobi", op, b, x, pc, monitor, omega=omega)


@register_method("gauss-seidel", options=("direction", "ordering"),
                 description="Gauss–Seidel iteration (SOR with ω = 1)")
def gauss_seidel(op, b, x, pc, monitor, direction: str = "forward", ordering: str = "natural"):
    """Gauss–Seidel; ``direction`` forward/backward/symmetric, ``ordering`` natural/redblack."""
    return _relaxation_solve("gauss-seidel", op, b, x, pc, monitor, omega=1.0,
                             direction=direction, ordering=ordering)


@register_method("sor", options=("omega", "direction", "ordering"),
                 description="successive over-relaxation")
def sor(op, b, x, pc, monitor, omega: float = 1.0, direction: str = "forward",
        ordering: str = "natural"):
    """SOR with factor ``omega`` in (0, 2); ``direction="symmetric"`` is SSOR."""
    return _relaxation_solve("sor", op, b, x, pc, monitor, omega=omega, direction=direction,
                             ordering=ordering)


@register_method("ssor", options=("omega", "ordering"),
                 description="symmetric successive over-relaxation")
def ssor(op, b, x, pc, monitor, omega: float = 1.0, ordering: str = "natural"):
    """SSOR: a forward then a backward SOR sweep per iteration."""
    return _relaxation_solve("ssor", op, b, x, pc, monitor, omega=omega, ordering=ordering)
