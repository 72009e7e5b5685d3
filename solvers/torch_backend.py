"""The torch backend: CG, PCG, flexible CG, GMRES(m) and FGMRES(m), batched over right-hand sides.

``solve(A, b)`` with ``b`` of shape ``[n, B]`` solves the ``B`` systems ``A x_j = b_j`` at once, on
the device and in the dtype of ``A``/``b`` (CPU or CUDA; float32 or float64). Every column keeps
its own scalars (step lengths, Givens rotations, convergence state), so a column's iterates are
those of the method run on that column alone; the columns only share the products with ``A`` and
the preconditioner, which act on the whole ``[n, B]`` block. A column that has converged or failed
is frozen (its updates are masked to zero) while the others go on.

``A`` is a torch sparse tensor (COO, CSR or CSC), a dense tensor, a SciPy sparse matrix or NumPy
array (converted with :func:`to_torch_sparse` / ``torch.as_tensor``), or a callable
``matvec(X: [n, B]) -> [n, B]``, so that a matrix-free operator or a network can be ``A``.

``M`` approximates ``A⁻¹`` on ``[n, B]`` blocks: ``None``, ``"jacobi"``, a callable ``R -> Z``,
an object with ``apply(R) -> Z`` (for instance a trained network wrapped as a preconditioner), or a
torch/SciPy matrix. The NumPy preconditioners of :mod:`pdesuite.solvers.preconditioner` (ILU, SSOR,
...) work too, through a copy to the host per application. A network is nonlinear: give it a
``linear = False`` attribute and use a flexible method, ``"fcg"`` (whose ``truncation=2,
normalize_input=True`` is the direction update of the Deep Conjugate Direction Method) or
``"fgmres"``.

torch is imported here only, and only when a function of this module runs.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import scipy.sparse as sp

from pdesuite.solvers.api import validate_tolerances
from pdesuite.solvers.preconditioner import BasePreconditioner
from pdesuite.solvers.result import ConvergedReason, SolveResult

#: Methods of the torch backend. ``"pcg"`` is ``"cg"`` (CG is preconditioned whenever M is given).
TORCH_METHODS = ("cg", "pcg", "fcg", "gmres", "fgmres")
#: Methods that stay correct with a nonlinear or varying preconditioner.
FLEXIBLE_METHODS = ("fcg", "fgmres")
#: Preconditioners the torch backend builds from A's entries by name.
TORCH_NAMED_PRECONDITIONERS = ("jacobi",)

_COMMON_OPTIONS = ("check_every", "device")
_METHOD_OPTIONS = {
    "cg": _COMMON_OPTIONS,
    "pcg": _COMMON_OPTIONS,
    "fcg": _COMMON_OPTIONS + ("truncation", "normalize_input", "residual_replacement"),
    "gmres": _COMMON_OPTIONS + ("restart",),
    "fgmres": _COMMON_OPTIONS + ("restart",),
}
DEFAULT_RESTART = 30
#: Same retry rule as the NumPy backend: a claimed convergence that the true residual does not
#: confirm is continued from the current iterate this many times before it counts as stagnation.
_TRUE_RESIDUAL_RETRIES = 3
#: Same divergence test as the NumPy backend's monitor: ‖r‖ > dtol·‖r0‖.
_DTOL = 1e5
_ACTIVE = 0
# Enum member lookups cost a microsecond each, a few times per iteration: keep plain ints.
_NAN_CODE = ConvergedReason.DIVERGED_NAN_OR_INF.value
_DTOL_CODE = ConvergedReason.DIVERGED_DTOL.value
#: Which failure a batch reports when columns fail differently: the most alarming first.
_FAILURE_SEVERITY = (
    ConvergedReason.DIVERGED_NAN_OR_INF,
    ConvergedReason.DIVERGED_INDEFINITE_MAT,
    ConvergedReason.DIVERGED_INDEFINITE_PC,
    ConvergedReason.DIVERGED_BREAKDOWN,
    ConvergedReason.DIVERGED_DTOL,
    ConvergedReason.DIVERGED_STAGNATION,
    ConvergedReason.DIVERGED_MAX_ITERATIONS,
)


def _torch():
    import torch

    return torch


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------

def to_torch_sparse(A: Any, device: Any = None, dtype: Any = None):
    """A torch sparse CSR tensor ``[n, m]`` holding the entries of ``A``.

    Args:
        A: a SciPy sparse matrix/array, a dense NumPy array, or a torch tensor (sparse in any
            layout, or dense).
        device: torch device of the result; default A's device for a tensor, else the CPU.
        dtype: torch dtype of the result; default A's dtype (NumPy dtypes map to torch's).

    Duplicate entries are summed and column indices sorted, as torch's CSR kernels assume.
    """
    torch = _torch()
    if isinstance(A, torch.Tensor):
        out = A
        if out.layout == torch.sparse_coo:
            out = out.coalesce()
        if out.layout != torch.sparse_csr:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta",
                                        category=UserWarning)
                out = out.to_sparse_csr()
        return out.to(device=device if device is not None else out.device,
                      dtype=dtype if dtype is not None else out.dtype)
    if isinstance(A, np.ndarray):
        if A.ndim != 2:
            raise ValueError(f"A: expected a 2-D array, got shape {A.shape}")
        A = sp.csr_array(A)
    if not sp.issparse(A):
        raise TypeError(f"A: expected a SciPy sparse matrix, NumPy array or torch tensor, "
                        f"got {type(A).__name__}")
    csr = sp.csr_array(A, copy=True)
    csr.sum_duplicates()  # also sorts the column indices of each row
    values = torch.from_numpy(np.ascontiguousarray(csr.data))
    with warnings.catch_warnings():
        # torch announces that its CSR support is "beta" on first use; nothing to act on.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta",
                                category=UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            values,
            size=csr.shape,
            dtype=dtype if dtype is not None else values.dtype,
            device=device if device is not None else "cpu",
            # SciPy's CSR with summed duplicates and sorted indices is valid by construction.
            check_invariants=False,
        )


def _is_sparse_tensor(torch, A) -> bool:
    return A.layout != torch.strided


def _sparse_values(torch, A):
    if A.layout == torch.sparse_coo:
        return A.coalesce().values()
    return A.values()


def _sparse_diagonal(torch, A):
    """The diagonal ``[n]`` of a square torch CSR tensor (absent entries are zero)."""
    n = A.shape[0]
    rows = torch.repeat_interleave(torch.arange(n, device=A.device), torch.diff(A.crow_indices()))
    cols = A.col_indices()
    on_diagonal = rows == cols
    diagonal = torch.zeros(n, dtype=A.dtype, device=A.device)
    return diagonal.index_add_(0, rows[on_diagonal], A.values()[on_diagonal])


# --------------------------------------------------------------------------------------------
# The operator and the preconditioner, counted
# --------------------------------------------------------------------------------------------

class _CountedOperator:
    """``X [n, B] -> A X [n, B]``; ``matvecs`` counts block products (one per call).

    ``out``: a buffer for the product, used when A is a matrix on the CPU, where a fresh block
    of tens of MB per product comes straight from mmap and page-faults (CUDA's caching allocator
    reuses memory by itself).
    """

    def __init__(self, apply: Callable, n: int, matrix, checked: bool):
        self._apply = apply
        self.n = n
        self.matrix = matrix  # the torch matrix, or None for a callable
        self._checked = checked
        self.matvecs = 0

    def __call__(self, X, out=None):
        self.matvecs += 1
        if out is not None and self.matrix is not None and self.matrix.device.type == "cpu":
            return _torch().mm(self.matrix, X, out=out)
        Y = self._apply(X)
        if self._checked:
            _check_block(Y, X, "A", "the matvec")
        return Y


class _CountedPreconditioner:
    """``R [n, B] -> Z [n, B]``; ``applies`` counts block applications."""

    def __init__(self, apply: Callable, linear: bool, checked: bool):
        self._apply = apply
        self.linear = linear
        self._checked = checked
        self.applies = 0

    def __call__(self, R):
        self.applies += 1
        Z = self._apply(R)
        if self._checked:
            _check_block(Z, R, "M", "the preconditioner")
        return Z


def _check_block(out, inp, name: str, what: str) -> None:
    torch = _torch()
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name}: {what} must return a torch tensor, got {type(out).__name__}")
    if out.shape != inp.shape:
        raise ValueError(f"{name}: {what} returned shape {tuple(out.shape)} for an input of "
                         f"shape {tuple(inp.shape)}")
    if out.device != inp.device or out.dtype != inp.dtype:
        raise ValueError(f"{name}: {what} returned {out.dtype} on {out.device}, expected "
                         f"{inp.dtype} on {inp.device}")


def _working_dtype(torch, a_dtype, b_dtype):
    for name, d in (("A", a_dtype), ("b", b_dtype)):
        if d is not None and d.is_complex:
            raise TypeError(f"{name}: complex systems are not supported by the torch backend; "
                            "use backend='numpy' or 'petsc'")
    dtypes = [d for d in (a_dtype, b_dtype) if d is not None]
    floating = [d for d in dtypes if d.is_floating_point]
    if not floating:
        return torch.float64
    dtype = floating[0]
    for d in floating[1:]:
        dtype = torch.promote_types(dtype, d)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"A: dtype {dtype} is not supported by the torch backend; "
                        "use float32 or float64")
    return dtype


def _numpy_to_torch_dtype(torch, dtype: np.dtype, name: str):
    if dtype.kind == "c":
        raise TypeError(f"{name}: complex systems are not supported by the torch backend; "
                        "use backend='numpy' or 'petsc'")
    if dtype.kind != "f":
        return None  # integers take the dtype of the other operand, or float64
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


def _prepare_system(torch, A, b, x0, device_option):
    """Validate and convert ``A``, ``b``, ``x0``: (operator, B [n, k], X0 [n, k], squeeze)."""
    # b first: its length fixes n for a callable A.
    if isinstance(b, torch.Tensor):
        b_t = b
    else:
        b_np = np.asarray(b)
        if b_np.dtype == object or b_np.dtype.kind not in "biufc":
            raise TypeError(f"b: expected numbers, got dtype {b_np.dtype}")
        b_t = None
    b_shape = tuple(b_t.shape) if b_t is not None else b_np.shape
    if len(b_shape) not in (1, 2):
        raise ValueError(f"b: expected shape [n] or [n, B], got {b_shape}")
    if len(b_shape) == 2 and b_shape[1] == 0:
        raise ValueError("b: has no columns")
    n = b_shape[0]
    squeeze = len(b_shape) == 1

    # Device: a tensor A decides; else a tensor b; else the option; else the CPU.
    requested = None
    if device_option is not None:
        try:
            requested = torch.device(device_option)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device: not a torch device: {device_option!r}") from error
    is_tensor_A = isinstance(A, torch.Tensor)
    if is_tensor_A:
        device = A.device
    elif b_t is not None:
        device = b_t.device
    else:
        device = requested if requested is not None else torch.device("cpu")
    if requested is not None and (requested.type != device.type
                                  or (requested.index is not None and requested != device)):
        raise ValueError(f"device: {device_option!r} differs from the device of A/b ({device})")
    if b_t is not None and b_t.device != device:
        raise ValueError(f"b: is on {b_t.device} but A is on {device}")

    # The matrix, when there is one.
    matrix = None
    a_dtype = None
    if is_tensor_A:
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A: expected a square matrix, got shape {tuple(A.shape)}")
        matrix = A
        a_dtype = A.dtype
    elif sp.issparse(A) or isinstance(A, np.ndarray):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A: expected a square matrix, got shape {A.shape}")
        a_dtype = _numpy_to_torch_dtype(torch, np.dtype(A.dtype), "A")
        if a_dtype is None:
            a_dtype = torch.float64
        matrix = (to_torch_sparse(A, device=device) if sp.issparse(A)
                  else torch.as_tensor(A, device=device))
    elif not callable(A):
        raise TypeError(f"A: expected a torch tensor, a SciPy sparse matrix, a NumPy array or a "
                        f"callable matvec(X [n, B]) -> [n, B], got {type(A).__name__}")

    b_dtype = b_t.dtype if b_t is not None else _numpy_to_torch_dtype(torch, b_np.dtype, "b")
    dtype = _working_dtype(torch, a_dtype, b_dtype)

    if matrix is not None:
        if matrix.shape[0] != n:
            raise ValueError(f"b: has {n} rows but A has shape {tuple(matrix.shape)}")
        if _is_sparse_tensor(torch, matrix):
            matrix = to_torch_sparse(matrix)  # CSR: the fastest sparse @ dense layout
            values = matrix.values()
        else:
            values = matrix
        if values.dtype.is_complex:
            raise TypeError("A: complex systems are not supported by the torch backend; "
                            "use backend='numpy' or 'petsc'")
        if values.numel() and not bool(torch.isfinite(values).all()):
            raise ValueError("A: contains NaN or Inf entries")
        if matrix.dtype != dtype:
            matrix = matrix.to(dtype)
        mat = matrix
        operator = _CountedOperator(lambda X: mat @ X, n, matrix, checked=False)
    else:
        operator = _CountedOperator(A, n, None, checked=True)

    B = (b_t if b_t is not None else torch.from_numpy(np.ascontiguousarray(b_np)))
    B = B.to(device=device, dtype=dtype)
    B = B.reshape(n, 1) if squeeze else B
    if not bool(torch.isfinite(B).all()):
        raise ValueError("b: contains NaN or Inf entries")
    B = B.contiguous()

    if x0 is None:
        X0 = None
    else:
        if isinstance(x0, torch.Tensor):
            if x0.device != device:
                raise ValueError(f"x0: is on {x0.device} but A is on {device}")
            x0_t = x0
        else:
            x0_t = torch.from_numpy(np.ascontiguousarray(np.asarray(x0)))
        if tuple(x0_t.shape) != b_shape:
            raise ValueError(f"x0: expected shape {b_shape} (that of b), got {tuple(x0_t.shape)}")
        if x0_t.dtype.is_complex:
            raise TypeError("x0: complex values are not supported by the torch backend")
        X0 = x0_t.to(device=device, dtype=dtype).reshape(n, -1).clone()
        if not bool(torch.isfinite(X0).all()):
            raise ValueError("x0: contains NaN or Inf entries")
    return operator, B, X0, squeeze


def _make_preconditioner(torch, M, operator, B, pc_options) -> Optional[_CountedPreconditioner]:
    """Turn ``M`` into a counted ``[n, B] -> [n, B]`` map, or None for no preconditioner."""
    if pc_options:
        raise TypeError(f"M: options {sorted(pc_options)} are not taken by the torch backend's "
                        "preconditioners")
    if M is None:
        return None
    n = operator.n
    if isinstance(M, str):
        key = M.lower()
        if key not in TORCH_NAMED_PRECONDITIONERS:
            raise ValueError(
                f"M: the torch backend builds only {list(TORCH_NAMED_PRECONDITIONERS)} by name, "
                f"not {M!r}; pass a Preconditioner object (NumPy ones run through the host) or "
                "a callable on [n, B] tensors"
            )
        if operator.matrix is None:
            raise TypeError(f"M={M!r} needs the entries of A, but A was given as a matvec only; "
                            "pass a sparse or dense tensor")
        A = operator.matrix
        diagonal = _sparse_diagonal(torch, A) if _is_sparse_tensor(torch, A) else torch.diagonal(A)
        if bool((diagonal == 0).any()):
            raise ValueError(f"M={M!r}: A has a zero on its diagonal")
        inv_diagonal = (1.0 / diagonal)[:, None]
        return _CountedPreconditioner(lambda R: R * inv_diagonal, linear=True, checked=False)

    linear = bool(getattr(M, "linear", True))
    if isinstance(M, BasePreconditioner) and not getattr(M, "accepts_torch", False):
        # A NumPy preconditioner (ILU, SSOR, ...): correct but pays a host round trip.
        def host_apply(R):
            R_host = R.detach().cpu().numpy()
            Z_host = np.stack([np.asarray(M.apply(R_host[:, j])).reshape(-1)
                               for j in range(R_host.shape[1])], axis=1)
            return torch.from_numpy(Z_host).to(device=R.device, dtype=R.dtype)

        return _CountedPreconditioner(host_apply, linear, checked=True)
    if hasattr(M, "apply"):
        return _CountedPreconditioner(M.apply, linear, checked=True)
    if isinstance(M, torch.Tensor) or sp.issparse(M) or isinstance(M, np.ndarray):
        if tuple(M.shape) != (n, n):
            raise ValueError(f"M: has shape {tuple(M.shape)}, A has shape {(n, n)}")
        if isinstance(M, torch.Tensor) and _is_sparse_tensor(torch, M):
            matrix = to_torch_sparse(M, device=B.device, dtype=B.dtype)
        elif isinstance(M, torch.Tensor):
            matrix = M.to(device=B.device, dtype=B.dtype)
        elif sp.issparse(M):
            matrix = to_torch_sparse(M, device=B.device, dtype=B.dtype)
        else:
            matrix = torch.as_tensor(M, device=B.device, dtype=B.dtype)
        return _CountedPreconditioner(lambda R: matrix @ R, linear=True, checked=False)
    if callable(M):
        return _CountedPreconditioner(M, linear, checked=True)
    raise TypeError(f"M: expected None, 'jacobi', a callable on [n, B] tensors, an object with "
                    f"apply, or a matrix, got {type(M).__name__}")


# --------------------------------------------------------------------------------------------
# Per-column convergence state, kept on the device
# --------------------------------------------------------------------------------------------

class _ColumnMonitor:
    """Per-column status, iteration counts and residual history, without host syncs per step.

    ``status`` holds 0 for an active column, else the value of the column's ConvergedReason.
    The only host synchronisation is the "any column still active?" test, made every
    ``check_every`` iterations; the per-column decisions themselves are taken on the device every
    iteration, so ``check_every`` changes how many idle (fully masked) iterations can run at the
    end, never the result.
    """

    def __init__(self, torch, b_norms, rtol: float, atol: float, maxiter: int, check_every: int,
                 callback: Optional[Callable], squeeze: bool):
        self.torch = torch
        rtol_targets = rtol * b_norms
        self.target = torch.clamp(rtol_targets, min=atol)
        self.converged_code = torch.where(
            rtol_targets >= atol,
            torch.tensor(ConvergedReason.CONVERGED_RTOL.value, device=b_norms.device),
            torch.tensor(ConvergedReason.CONVERGED_ATOL.value, device=b_norms.device))
        self.status = torch.zeros(b_norms.shape, dtype=torch.int64, device=b_norms.device)
        self.iterations_per_column = torch.zeros_like(self.status)
        self.maxiter = maxiter
        self.check_every = check_every
        self.callback = callback
        self.squeeze = squeeze
        self.iteration = 0
        self.history: list = []
        self.any_active_history: list = []
        self.divergence_limit = None

    def active(self):
        return self.status == _ACTIVE

    def any_active(self) -> bool:
        return bool(self.active().any())  # host sync

    def fail(self, mask, reason: ConvergedReason) -> None:
        """Set ``reason`` for the columns in ``mask`` that are still active."""
        self.status = self.torch.where(mask & self.active(), reason.value, self.status)

    def _codes(self, rnorm):
        """The status each column would take from its residual norm alone (0: go on)."""
        torch = self.torch
        code = torch.where(rnorm <= self.target, self.converged_code,
                           torch.where(rnorm > self.divergence_limit,
                                       _DTOL_CODE, _ACTIVE))
        return torch.where(torch.isfinite(rnorm), code, _NAN_CODE)

    def start(self, rnorm, zero_columns) -> None:
        """Record the initial residual norms (not an iteration)."""
        self.divergence_limit = _DTOL * rnorm
        self.history.append(rnorm)
        self.status = self._codes(rnorm)
        # As in the NumPy backend: b = 0 has the solution x = 0, reached with no iteration.
        self.status = self.torch.where(zero_columns, ConvergedReason.CONVERGED_ATOL.value,
                                       self.status)

    def step(self, rnorm, active, failure=None) -> bool:
        """Record one iteration and return whether to iterate again.

        Args:
            rnorm: ``[B]`` residual norms after the iteration.
            active: ``[B]`` columns that were active when the iteration began.
            failure: ``[B]`` codes of failures the method met in this iteration (0 for none);
                a column that converged in the same iteration counts as converged.
        """
        torch = self.torch
        self.iteration += 1
        self.iterations_per_column += active
        rnorm = torch.where(active, rnorm, self.history[-1])
        self.history.append(rnorm)
        self.any_active_history.append(active.any())
        code = self._codes(rnorm)
        if failure is not None:
            code = torch.where(code == _ACTIVE, failure, code)
        self.status = torch.where(active, code, self.status)
        if self.callback is not None:
            self.callback(self.iteration, float(rnorm[0]) if self.squeeze else rnorm)
        if self.iteration >= self.maxiter:
            return False
        if self.iteration % self.check_every == 0:
            return self.any_active()
        return True

    def reactivate_unconfirmed(self, true_norms):
        """Columns that claim convergence but whose true residual misses the target (or is not
        finite) go back to active; returns their mask."""
        unconfirmed = (self.status > 0) & ~(true_norms <= self.target)
        self.status = self.torch.where(unconfirmed, _ACTIVE, self.status)
        return unconfirmed

    def effective_iterations(self) -> int:
        """Iterations up to the last one in which some column was active (idle ones dropped)."""
        if not self.any_active_history:
            return 0
        flags = self.torch.stack(self.any_active_history).cpu().numpy()
        busy = np.flatnonzero(flags)
        return int(busy[-1]) + 1 if busy.size else 0


def _failure_codes(torch, value, nonpositive: ConvergedReason,
                   zero: Optional[ConvergedReason] = None):
    """Per column: 0 where ``value > 0``; ``zero`` where it is 0 (if given); ``nonpositive``
    where it is otherwise ≤ 0; NaN/Inf where it is not finite."""
    code = torch.where(value > 0, _ACTIVE, nonpositive.value)
    if zero is not None:
        code = torch.where(value == 0, zero.value, code)
    return torch.where(torch.isfinite(value), code, _NAN_CODE)


@dataclass
class _Context:
    torch: Any
    operator: _CountedOperator
    pc: Optional[_CountedPreconditioner]
    B: Any
    monitor: _ColumnMonitor
    #: ``[n, B]`` scratch for the products inside column-wise inner products.
    scratch: Any


def _dot(P, Q, scratch):
    """Column-wise inner products ``[B]`` of two ``[n, B]`` blocks.

    Through a reused scratch block: torch has no fused column-wise dot, and both a fresh
    temporary (page faults on the CPU) and ``vector_norm(dim=0)`` (a slow strided reduction on
    the CPU) cost several times more.
    """
    return _torch().mul(P, Q, out=scratch).sum(dim=0)


def _safe(torch, values, mask):
    """``values`` where ``mask``, else 1: a denominator that is never zero for frozen columns."""
    return torch.where(mask, values, torch.ones_like(values))


# --------------------------------------------------------------------------------------------
# The methods. Each takes the iterate X [n, B] and its residual R, updates X in place and
# returns (X, the true residual if it computed it at the end, else None).
#
# A frozen column takes steps of length zero. Its search directions must stay finite for that
# (0 · NaN is NaN), which is why divisions for frozen columns go through _safe or torch.where.
# --------------------------------------------------------------------------------------------

def _cg(ctx: _Context, X, R):
    """CG, preconditioned when ``ctx.pc`` is set (the preconditioner must be SPD and fixed)."""
    torch, A, pc, monitor, scratch = ctx.torch, ctx.operator, ctx.pc, ctx.monitor, ctx.scratch
    R = R.clone()
    AP = torch.empty_like(R)
    if pc is None:
        rz = _dot(R, R, scratch)
        P = R.clone()
    else:
        Z = pc(R)
        rz = _dot(R, Z, scratch)
        monitor.fail(~torch.isfinite(rz), ConvergedReason.DIVERGED_NAN_OR_INF)
        monitor.fail(rz <= 0, ConvergedReason.DIVERGED_INDEFINITE_PC)
        P = torch.where(monitor.active(), Z, 0.0)
    while True:
        active = monitor.active()
        AP = A(P, out=AP)
        pAp = _dot(P, AP, scratch)
        alpha = torch.where(active & (pAp > 0), rz / pAp, 0.0)
        X.addcmul_(P, alpha)
        R.addcmul_(AP, alpha, value=-1.0)
        failure = _failure_codes(torch, pAp, ConvergedReason.DIVERGED_INDEFINITE_MAT)
        if pc is None:
            Z = R
            rz_new = _dot(R, R, scratch)
            rnorm = rz_new.sqrt()
        else:
            Z = pc(R)
            rz_new = _dot(R, Z, scratch)
            rnorm = _dot(R, R, scratch).sqrt()
            failure = torch.where(failure == _ACTIVE,
                                  _failure_codes(torch, rz_new, ConvergedReason.DIVERGED_INDEFINITE_PC),
                                  failure)
        if not monitor.step(rnorm, active, failure):
            return X, None
        beta = torch.where(monitor.active(), rz_new / rz, 0.0)
        P.mul_(beta).add_(Z)
        rz = rz_new


def _fcg(ctx: _Context, X, R, truncation: int = 1, normalize_input: bool = True,
         residual_replacement: int = 0):
    """Flexible CG: each new direction is A-orthogonalised against the last ``truncation`` ones,
    and the step is an exact line search, so any (nonlinear) preconditioner may be used.

    ``truncation=1`` is the Polak–Ribière variant (β = zₖᵀ(rₖ − rₖ₋₁)/(zₖ₋₁ᵀrₖ₋₁) in exact
    arithmetic). ``truncation=2, normalize_input=True, residual_replacement=1`` is the Deep
    Conjugate Direction Method's iteration: the network sees ``r/‖r‖``, and the residual is
    recomputed as ``b − A x`` every iteration (one more product with A), which keeps a float32
    network from letting the recurrence drift. ``residual_replacement=k`` does so every k
    iterations; 0 never.
    """
    torch, A, pc, monitor, scratch = ctx.torch, ctx.operator, ctx.pc, ctx.monitor, ctx.scratch
    R = R.clone()
    rnorm = _dot(R, R, scratch).sqrt()
    window: deque = deque(maxlen=truncation)
    while True:
        active = monitor.active()
        R_in = R / _safe(torch, rnorm, rnorm > 0) if normalize_input else R
        P = pc(R_in) if pc is not None else R_in
        # Frozen columns get a zero direction: whatever M returns there (a network need not map
        # 0 to 0, nor stay finite), it must not reach X.
        P = torch.where(active, P, 0.0)
        for P_old, AP_old, pAp_old in window:
            P = P - P_old * (_dot(P, AP_old, scratch) / pAp_old)
        AP = A(P)  # kept in the window: no shared buffer
        pAp = _dot(P, AP, scratch)
        moving = active & (pAp > 0)
        safe_pAp = _safe(torch, pAp, moving)
        alpha = torch.where(moving, _dot(P, R, scratch) / safe_pAp, 0.0)
        X.addcmul_(P, alpha)
        if residual_replacement and (monitor.iteration + 1) % residual_replacement == 0:
            R = ctx.B - A(X)
        else:
            R.addcmul_(AP, alpha, value=-1.0)
        rnorm = _dot(R, R, scratch).sqrt()
        # pAp = 0 with A SPD means M returned a direction already searched (or zero).
        failure = _failure_codes(torch, pAp, ConvergedReason.DIVERGED_INDEFINITE_MAT,
                                 zero=ConvergedReason.DIVERGED_BREAKDOWN)
        if not monitor.step(rnorm, active, failure):
            return X, None
        window.append((P, AP, safe_pAp))


def _gmres(ctx: _Context, X, R, restart: int = DEFAULT_RESTART, flexible: bool = False):
    """Restarted GMRES(m) with right preconditioning (FGMRES when ``flexible``), batched.

    The monitored norm is the least-squares residual of the Arnoldi relation, which equals the
    true, unpreconditioned ‖b − A x‖ in exact arithmetic; each restart recomputes the true
    residual and re-activates any column whose claimed convergence it does not confirm.

    Per column the Hessenberg matrix is reduced by Givens rotations. Rather than applying the
    j earlier rotations one by one to each new column (j tiny kernels per step on a GPU), the
    product of the rotations so far is kept as an orthogonal ``[m+1, m+1]`` matrix per column and
    applied in one batched product; each new rotation then updates two rows of it.
    """
    torch, A, pc, monitor = ctx.torch, ctx.operator, ctx.pc, ctx.monitor
    n, batch = R.shape
    m = restart
    dtype, device = R.dtype, R.device
    # Batch-major storage so that the projections are batched matrix products without copies.
    V = torch.empty(batch, m + 1, n, dtype=dtype, device=device)
    Zs = torch.empty(batch, m, n, dtype=dtype, device=device) if (flexible and pc is not None) else None
    identity = torch.eye(m + 1, dtype=dtype, device=device)
    first_cycle = True
    while True:
        if not first_cycle:
            R = ctx.B - A(X, out=ctx.scratch)
            monitor.reactivate_unconfirmed(_dot(R, R, ctx.scratch).sqrt())
            if monitor.iteration >= monitor.maxiter or not monitor.any_active():
                return X, R
        first_cycle = False

        beta = _dot(R, R, ctx.scratch).sqrt()
        active = monitor.active()
        V[:, 0, :] = (R * torch.where(active, 1.0 / _safe(torch, beta, beta > 0), 0.0)).T
        rotations = identity.expand(batch, m + 1, m + 1).clone()
        triangular = torch.zeros(batch, m, m, dtype=dtype, device=device)
        used_step = torch.zeros(batch, m, dtype=torch.bool, device=device)
        steps = 0
        for j in range(m):
            active = monitor.active()
            v = V[:, j, :].T.contiguous()
            z = pc(v) if pc is not None else v
            if Zs is not None:
                # A frozen column's basis vector is 0, but M(0) need not be: keep it out of X.
                z = torch.where(active, z, 0.0)
                Zs[:, j, :] = z.T
            w = A(z, out=ctx.scratch).T.contiguous()  # [batch, n]
            basis = V[:, : j + 1, :]
            # Classical Gram–Schmidt twice: two batched products per pass instead of j + 1
            # sequential projections, and as stable as modified Gram–Schmidt.
            h = torch.bmm(basis, w.unsqueeze(2)).squeeze(2)
            w -= torch.bmm(h.unsqueeze(1), basis).squeeze(1)
            correction = torch.bmm(basis, w.unsqueeze(2)).squeeze(2)
            w -= torch.bmm(correction.unsqueeze(1), basis).squeeze(1)
            h = h + correction
            h_next = torch.linalg.vector_norm(w, dim=1)
            keep = active & (h_next > 0) & torch.isfinite(h_next)
            V[:, j + 1, :] = torch.where(keep.unsqueeze(1), w / _safe(torch, h_next, keep).unsqueeze(1), 0.0)

            column = torch.cat([h, h_next.unsqueeze(1)], dim=1)  # [batch, j + 2]
            rotated = torch.bmm(rotations[:, : j + 2, : j + 2], column.unsqueeze(2)).squeeze(2)
            top, bottom = rotated[:, j], rotated[:, j + 1]
            rho = torch.hypot(top, bottom)
            # rho = 0: A maps the Krylov space into a smaller one; A is singular on it.
            failure = _failure_codes(torch, rho, ConvergedReason.DIVERGED_BREAKDOWN)
            good = active & (failure == _ACTIVE)
            safe_rho = _safe(torch, rho, good)
            cos = torch.where(good, top / safe_rho, 1.0)
            sin = torch.where(good, bottom / safe_rho, 0.0)
            # A step a column does not take gets the unit column: its coefficient solves to 0.
            unit = identity[j, : j + 1].expand(batch, j + 1)
            r_column = torch.where(good.unsqueeze(1), rotated[:, : j + 1], unit)
            r_column[:, j] = torch.where(good, rho, 1.0)
            triangular[:, : j + 1, j] = r_column
            row_j = rotations[:, j, : j + 2].clone()
            row_next = rotations[:, j + 1, : j + 2].clone()
            rotations[:, j, : j + 2] = cos.unsqueeze(1) * row_j + sin.unsqueeze(1) * row_next
            rotations[:, j + 1, : j + 2] = cos.unsqueeze(1) * row_next - sin.unsqueeze(1) * row_j
            used_step[:, j] = good
            steps = j + 1
            estimate = (beta * rotations[:, j + 1, 0]).abs()
            if not monitor.step(estimate, active, failure):
                break

        g = (beta.unsqueeze(1) * rotations[:, :steps, 0]) * used_step[:, :steps]
        y = torch.linalg.solve_triangular(triangular[:, :steps, :steps], g.unsqueeze(2),
                                          upper=True).squeeze(2)
        directions = Zs if Zs is not None else V
        update = torch.bmm(y.unsqueeze(1), directions[:, :steps, :]).squeeze(1).T.contiguous()
        if pc is not None and Zs is None:
            # A column frozen for the whole cycle has V y = 0; an affine M could still move it.
            update = torch.where(used_step[:, :steps].any(dim=1), pc(update), 0.0)
        X += update
        if monitor.iteration >= monitor.maxiter:
            return X, None


def _fgmres(ctx: _Context, X, R, restart: int = DEFAULT_RESTART):
    return _gmres(ctx, X, R, restart=restart, flexible=True)


_METHOD_FUNCTIONS = {"cg": _cg, "pcg": _cg, "fcg": _fcg, "gmres": _gmres, "fgmres": _fgmres}


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def _validate_method_options(key: str, options: dict[str, Any]) -> tuple[dict, dict, Any, int]:
    pc_options = {k[3:]: v for k, v in options.items() if k.startswith("pc_")}
    method_options = {k: v for k, v in options.items() if not k.startswith("pc_")}
    unknown = set(method_options) - set(_METHOD_OPTIONS[key])
    if unknown:
        raise TypeError(f"method {key!r}: unknown option(s) {sorted(unknown)} for the torch "
                        f"backend; it takes {list(_METHOD_OPTIONS[key])}")
    device = method_options.pop("device", None)
    check_every = method_options.pop("check_every", 1)
    if isinstance(check_every, bool) or int(check_every) != check_every or check_every < 1:
        raise ValueError(f"check_every: must be an integer >= 1, got {check_every!r}")
    if "restart" in method_options:
        restart = method_options["restart"]
        if isinstance(restart, bool) or int(restart) != restart or restart < 1:
            raise ValueError(f"restart: must be an integer >= 1, got {restart!r}")
        method_options["restart"] = int(restart)
    if "truncation" in method_options:
        truncation = method_options["truncation"]
        if isinstance(truncation, bool) or int(truncation) != truncation or truncation < 1:
            raise ValueError(f"truncation: must be an integer >= 1, got {truncation!r}")
        method_options["truncation"] = int(truncation)
    if "residual_replacement" in method_options:
        every = method_options["residual_replacement"]
        if isinstance(every, bool) or int(every) != every or every < 0:
            raise ValueError(f"residual_replacement: must be an integer >= 0, got {every!r}")
        method_options["residual_replacement"] = int(every)
    if "normalize_input" in method_options:
        method_options["normalize_input"] = bool(method_options["normalize_input"])
    return method_options, pc_options, device, int(check_every)


def _batch_reason(reasons: list[ConvergedReason], iterations: list[int]) -> ConvergedReason:
    failures = [r for r in reasons if not r.converged]
    if failures:
        return min(failures, key=_FAILURE_SEVERITY.index)
    # All converged: report the column that took longest, the one that set the cost.
    return reasons[int(np.argmax(iterations))]


def solve(
    A: Any,
    b: Any,
    method: str = "gmres",
    M: Any = None,
    x0: Any = None,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: Optional[int] = None,
    callback: Optional[Callable] = None,
    **options: Any,
) -> SolveResult:
    """Solve ``A X = B`` for one or many right-hand sides on a torch device.

    Args:
        A: ``[n, n]`` torch sparse (COO/CSR/CSC) or dense tensor; a SciPy sparse matrix or NumPy
            array (converted to a torch CSR/dense tensor on ``device``); or a callable
            ``matvec(X: [n, B]) -> [n, B]`` (a matrix-free operator or a network).
        b: ``[n]`` or ``[n, B]`` right-hand sides, a torch tensor or a NumPy array.
        method: ``"cg"`` (``"pcg"`` is the same; preconditioned when M is given), ``"fcg"``,
            ``"gmres"`` (the default, as in :func:`pdesuite.solvers.solve`) or ``"fgmres"``.
        M: ``None``; ``"jacobi"``; a callable ``R [n, B] -> Z [n, B]``; an object with
            ``apply(R)`` on ``[n, B]`` tensors (NumPy preconditioners of pdesuite.solvers are
            applied column by column on the host instead, unless they set
            ``accepts_torch = True``); or a matrix approximating ``A⁻¹``. An attribute
            ``linear = False`` marks a nonlinear M: non-flexible methods then warn.
        x0: initial guess of b's shape (default zero). Columns with ``b_j = 0`` return
            ``x_j = 0`` whatever x0 says, as the NumPy backend does.
        rtol, atol: column j has converged when ``‖b_j − A x_j‖ ≤ max(rtol·‖b_j‖, atol)``,
            confirmed on the true residual at the end. Defaults 1e-5 and 0.
        maxiter: cap on iterations (inner steps for GMRES), shared by the batch; default 10,000.
        callback: ``callback(iteration, residual_norms)`` after every iteration, with a float
            when b is ``[n]`` (a host sync per iteration) and a ``[B]`` tensor on the device
            otherwise.
        **options:
            ``check_every`` (default 1): test "is any column still active?" (one host sync) every
            this many iterations. Larger values save syncs on a GPU and may add up to
            ``check_every − 1`` fully masked iterations at the end; results do not change.
            ``device``: where to put A and b given as SciPy/NumPy (default the CPU).
            ``restart`` (gmres, fgmres; default 30): Krylov dimension per cycle.
            ``truncation`` (fcg; default 1): how many previous directions a new one is made
            A-orthogonal to. ``normalize_input`` (fcg; default True): apply M to ``r/‖r‖``.
            ``residual_replacement`` (fcg; default 0): recompute ``r = b − A x`` every this
            many iterations (1 with ``truncation=2`` is DCDM).

    Returns:
        :class:`SolveResult` with ``x`` a torch tensor of b's shape on A's device;
        ``reason`` CONVERGED_* only when every column converged (that of the column that took
        most iterations), else the most severe failure among the columns; ``iterations`` the
        batch's iterations; ``matvecs`` and ``precond_applies`` count block products (one per
        application to the ``[n, B]`` block); ``residuals`` a NumPy array ``[iterations + 1, B]``
        (``[iterations + 1]`` for a 1-D b) of monitored norms, a column's last value repeated
        after it stopped. ``info``: ``reasons`` and ``iterations_per_column`` (lists, one entry
        per column), ``true_residual_norms`` (NumPy ``[B]``), ``device``, ``dtype``, ``batch``.
    """
    torch = _torch()
    key = method.lower() if isinstance(method, str) else method
    if key not in _METHOD_FUNCTIONS:
        raise ValueError(f"method: unknown method {method!r} for the torch backend; "
                         f"choose from {list(TORCH_METHODS)}")
    maxiter = validate_tolerances(rtol, atol, maxiter)
    method_options, pc_options, device_option, check_every = _validate_method_options(key, options)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")

    operator, B, X0, squeeze = _prepare_system(torch, A, b, x0, device_option)
    start = time.perf_counter()
    pc = _make_preconditioner(torch, M, operator, B, pc_options)
    if pc is not None and not pc.linear and key not in FLEXIBLE_METHODS:
        warnings.warn(
            f"M is nonlinear but method {key!r} assumes a fixed linear preconditioner; "
            f"use a flexible method {FLEXIBLE_METHODS} for a guaranteed result",
            stacklevel=3,
        )

    with torch.no_grad():
        scratch = torch.empty_like(B)
        b_norms = _dot(B, B, scratch).sqrt()
        zero_columns = b_norms == 0
        if X0 is None:
            X = torch.zeros_like(B)
            R = B.clone()
        else:
            X = torch.where(zero_columns, 0.0, X0)
            R = B - operator(X, out=scratch)
        monitor = _ColumnMonitor(torch, b_norms, rtol, atol, maxiter, check_every, callback, squeeze)
        monitor.start(_dot(R, R, scratch).sqrt(), zero_columns)
        ctx = _Context(torch, operator, pc, B, monitor, scratch)
        function = _METHOD_FUNCTIONS[key]

        for _attempt in range(_TRUE_RESIDUAL_RETRIES + 1):
            R_true = None
            if monitor.iteration < maxiter and monitor.any_active():
                X, R_true = function(ctx, X, R, **method_options)
            if R_true is None:
                R_true = B - operator(X, out=scratch)
            true_norms = _dot(R_true, R_true, scratch).sqrt()
            unconfirmed = monitor.reactivate_unconfirmed(true_norms)
            if monitor.iteration >= maxiter or not bool(unconfirmed.any()):
                break
            # The recurrence's residual drifted from the true one: go on from X.
            R = R_true
        else:
            monitor.fail(unconfirmed, ConvergedReason.DIVERGED_STAGNATION)
        monitor.fail(monitor.active(), ConvergedReason.DIVERGED_MAX_ITERATIONS)

        # One transfer to the host for everything the result reports.
        iterations = monitor.effective_iterations()
        history = torch.stack(monitor.history[: iterations + 1]).cpu().numpy().astype(float)
        status = monitor.status.cpu().tolist()
        per_column = monitor.iterations_per_column.cpu().tolist()
        true_norms_host = true_norms.cpu().numpy().astype(float)
    elapsed = time.perf_counter() - start

    reasons = [ConvergedReason(code) for code in status]
    x = X[:, 0] if squeeze else X
    return SolveResult(
        x=x,
        reason=_batch_reason(reasons, per_column),
        iterations=iterations,
        matvecs=operator.matvecs,
        precond_applies=pc.applies if pc is not None else 0,
        residuals=history[:, 0] if squeeze else history,
        time=elapsed,
        method=key,
        backend="torch",
        info={
            "reasons": reasons,
            "iterations_per_column": per_column,
            "true_residual_norms": true_norms_host[0] if squeeze else true_norms_host,
            "device": str(B.device),
            "dtype": str(B.dtype).replace("torch.", ""),
            "batch": B.shape[1],
            **({"restart": method_options.get("restart", DEFAULT_RESTART)}
               if key in ("gmres", "fgmres") else {}),
        },
    )
