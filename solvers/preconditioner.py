"""The ``Preconditioner`` protocol, the built-in preconditioners that need only SciPy, and adapters.

A preconditioner approximates ``A⁻¹``: ``apply(r)`` returns ``z ≈ A⁻¹ r`` (SciPy's convention
for ``M``). Anything with ``apply`` works in every backend; :func:`to_linear_operator` hands one
to SciPy, and ``pdesuite.solvers.petsc_backend.PythonPC`` to PETSc.

Two optional attributes tell the methods what they may assume:

- ``linear`` (default True): False for a trained network or an inner iterative solve. Only
  flexible methods (FCG, FGMRES, GCRO-DR with right preconditioning) are correct then.
- ``symmetric`` (default False): True when the operator is symmetric positive definite, as CG
  and MINRES require.
"""

from __future__ import annotations

import inspect

from typing import Any, Callable, Optional, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesuite.solvers.linear_operator import Operator


@runtime_checkable
class Preconditioner(Protocol):
    """``apply(r) -> z`` with ``z ≈ A⁻¹ r``; ``r`` and ``z`` have shape ``[n]``."""

    def apply(self, r: np.ndarray) -> np.ndarray: ...


class BasePreconditioner:
    """Optional base class: attributes with defaults, and the adapters as methods."""

    linear: bool = True
    symmetric: bool = False

    def apply(self, r: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, r: np.ndarray) -> np.ndarray:
        return self.apply(r)

    def aslinearoperator(self, n: int, dtype: Any = float) -> spla.LinearOperator:
        return to_linear_operator(self, n, dtype)


class IdentityPreconditioner(BasePreconditioner):
    symmetric = True

    def apply(self, r: np.ndarray) -> np.ndarray:
        return r.copy()


class MatrixPreconditioner(BasePreconditioner):
    """``z = M r`` for a matrix, array or LinearOperator ``M`` that approximates ``A⁻¹``."""

    def __init__(self, M: Any, symmetric: bool = False):
        self.M = M
        self.symmetric = symmetric

    def apply(self, r: np.ndarray) -> np.ndarray:
        if hasattr(self.M, "matvec"):
            return np.asarray(self.M.matvec(r)).reshape(-1)
        return np.asarray(self.M @ r).reshape(-1)


class FunctionPreconditioner(BasePreconditioner):
    """``z = f(r)``; say ``linear=False`` for a nonlinear ``f`` (a network, an inner solve)."""

    def __init__(self, f: Callable[[np.ndarray], np.ndarray], linear: bool = True,
                 symmetric: bool = False):
        self.f = f
        self.linear = linear
        self.symmetric = symmetric

    def apply(self, r: np.ndarray) -> np.ndarray:
        return np.asarray(self.f(r)).reshape(-1)


class JacobiPreconditioner(BasePreconditioner):
    """``z = D⁻¹ r`` with ``D = diag(A)``. Raises ValueError on a zero diagonal entry.

    One NumPy product per application, as fast as PETSc's PCJACOBI: ``M="jacobi"`` always
    builds this class.
    """

    backend = "scipy"

    def __repr__(self) -> str:
        return f"JacobiPreconditioner(backend={self.backend!r}, n={self.inv_diag.size})"

    def __init__(self, A: sp.csr_array | np.ndarray):
        diag = A.diagonal() if sp.issparse(A) else np.diag(A)
        if np.any(diag == 0):
            raise ValueError("M='jacobi': A has a zero on its diagonal")
        self.inv_diag = 1.0 / diag
        self.symmetric = bool(np.all(np.real(diag) > 0) and np.all(np.imag(diag) == 0))

    def apply(self, r: np.ndarray) -> np.ndarray:
        return self.inv_diag * r


class ILUPreconditioner(BasePreconditioner):
    """Incomplete LU through SciPy's SuperLU (``spilu``); ``drop_tol`` and ``fill_factor`` as there.

    A threshold ILU (ILUT), not ILU(0): ``M="ilu"`` builds it when ``pc_drop_tol`` or
    ``pc_fill_factor`` is given, or when petsc4py is missing (see :data:`NAMED_PRECONDITIONERS`).
    """

    backend = "scipy"

    def __init__(
        self, A: sp.csr_array | np.ndarray, drop_tol: float = 1e-4, fill_factor: float = 10.0
    ):
        self.drop_tol, self.fill_factor = drop_tol, fill_factor
        self.factor = spla.spilu(sp.csc_matrix(A), drop_tol=drop_tol, fill_factor=fill_factor)

    def __repr__(self) -> str:
        return (f"ILUPreconditioner(backend={self.backend!r}, drop_tol={self.drop_tol}, "
                f"fill_factor={self.fill_factor})")

    def apply(self, r: np.ndarray) -> np.ndarray:
        return self.factor.solve(r)


class ICPreconditioner(BasePreconditioner):
    """Incomplete Cholesky ``A ≈ L D Lᴴ`` for a symmetric positive definite ``A``.

    SciPy has no IC of its own: the factors come from ``spilu`` in natural order with no
    pivoting, whose unit lower factor ``L`` and pivots ``D = diag(U)`` give a symmetric
    ``M = L D Lᴴ`` by construction, as CG needs. Raises ValueError if a pivot is not positive.
    With the default ``drop_tol`` this is a threshold IC, much denser than IC(0): ``M="ic"``
    builds it when ``pc_drop_tol`` or ``pc_fill_factor`` is given, or when petsc4py is missing.
    """

    symmetric = True
    backend = "scipy"

    def __repr__(self) -> str:
        return (f"ICPreconditioner(backend={self.backend!r}, drop_tol={self.drop_tol}, "
                f"fill_factor={self.fill_factor})")

    def __init__(
        self, A: sp.csr_array | np.ndarray, drop_tol: float = 1e-4, fill_factor: float = 10.0
    ):
        self.drop_tol, self.fill_factor = drop_tol, fill_factor
        factor = spla.spilu(sp.csc_matrix(A), drop_tol=drop_tol, fill_factor=fill_factor,
                            permc_spec="NATURAL", diag_pivot_thresh=0.0,
                            options={"SymmetricMode": True})
        if not (np.array_equal(factor.perm_r, np.arange(A.shape[0]))
                and np.array_equal(factor.perm_c, np.arange(A.shape[0]))):
            raise ValueError(
                "M='ic': the incomplete factorisation pivoted; A is not SPD enough for IC"
            )
        self.L = sp.csr_array(factor.L)
        pivots = factor.U.diagonal()
        if np.any(np.real(pivots) <= 0):
            raise ValueError("M='ic': a non-positive pivot appeared; A is not positive definite")
        self.inv_pivots = 1.0 / pivots
        # The triangular solves run in SuperLU: a triangular matrix in natural order factors
        # with no fill and no pivoting, and its solve is C code, several times faster than
        # spsolve_triangular.
        options = dict(permc_spec="NATURAL", diag_pivot_thresh=0.0, relax=1, panel_size=1)
        self._lower = spla.splu(sp.csc_matrix(self.L), **options)
        self._upper = spla.splu(sp.csc_matrix(self.L.conj().T), **options)

    def apply(self, r: np.ndarray) -> np.ndarray:
        y = self._lower.solve(np.asarray(r, dtype=self.inv_pivots.dtype))
        return self._upper.solve(self.inv_pivots * y)


def _petsc_kernels(A: Any) -> Any:
    """The module of PETSc's kernels for ``A``, or None: petsc4py missing (imported here, on
    first use, never by ``import pdesuite.solvers``), or ``A`` not real double precision
    (PETSc here is real float64; complex and float32 matrices stay on the SciPy kernels)."""
    dtype = np.dtype(A.dtype)
    if not (dtype == np.float64 or dtype.kind in "biu"):
        return None
    try:
        from pdesuite.solvers.petsc_backend import kernels
    except ImportError:
        return None
    return kernels


def _factorization_factory(kind: str) -> Callable[..., BasePreconditioner]:
    scipy_class = ILUPreconditioner if kind == "ilu" else ICPreconditioner

    def build(A, levels: Optional[int] = None, drop_tol: Optional[float] = None,
              fill_factor: Optional[float] = None):
        threshold = {name: value for name, value in (("drop_tol", drop_tol),
                                                     ("fill_factor", fill_factor))
                     if value is not None}
        if threshold and levels is not None:
            raise TypeError(f"M={kind!r}: pc_levels (level-based {kind.upper()}(k), PETSc) and "
                            f"{sorted('pc_' + name for name in threshold)} (threshold "
                            f"{kind.upper()}, SciPy's spilu) exclude each other")
        if not threshold:
            kernels = _petsc_kernels(A)
            if kernels is not None:
                return kernels.PetscKernelPreconditioner(
                    A, kind, levels=0 if levels is None else levels
                )
            if levels is not None:
                raise ImportError(f"M={kind!r}: pc_levels (level-based {kind.upper()}(k)) runs in "
                                  "PETSc and needs petsc4py and a real float64 matrix; use "
                                  "pc_drop_tol for SciPy's threshold variant")
        return scipy_class(A, **threshold)

    build.__doc__ = (f"``M={kind!r}``: {kind.upper()}(levels) through PETSc (default levels 0), "
                     f"or {scipy_class.__name__} (SciPy) with drop_tol/fill_factor or without "
                     "petsc4py.")
    return build


def _relaxation_factory(kind: str) -> Callable[..., BasePreconditioner]:
    def build(A, **options):
        from pdesuite.solvers import relaxation

        if options.get("ordering", "natural") == "natural":
            kernels = _petsc_kernels(A)
            if kernels is not None:
                return kernels.PetscKernelPreconditioner(A, kind, **options)
        return relaxation.RelaxationPreconditioner(A, kind=kind, **options)

    return build


#: Preconditioners buildable by name from the entries of A: ``solve(A, b, M="ilu")``.
#:
#: ``"ic"``, ``"ilu"``, ``"sor"``, ``"ssor"`` and ``"gauss-seidel"`` run PETSc's compiled PC
#: kernels (:class:`~pdesuite.solvers.petsc_backend.kernels.PetscKernelPreconditioner`, on the
#: matrix's own CSR arrays) when petsc4py can be imported and A is real float64; otherwise, or
#: for ``pc_ordering="redblack"`` and for the threshold variants (``pc_drop_tol``,
#: ``pc_fill_factor``), the SciPy classes. The preconditioner's ``backend`` attribute (and its
#: repr) says which ran. ``"ic"``/``"ilu"`` are IC(k)/ILU(k) with ``pc_levels`` (default 0) in
#: PETSc; SciPy has no level-based factorisation, so its fallback is the threshold variant
#: (default drop_tol 1e-4), another preconditioner: on the Darcy problems of
#: ``benchmarks/bench_preconditioners.py`` 4–6 % fewer CG iterations than IC(0) for 100–400
#: times its set-up and 7–10 times its cost per application.
#: ``"jacobi"`` is always :class:`JacobiPreconditioner` (one NumPy product already).
NAMED_PRECONDITIONERS: dict[str, Callable[..., BasePreconditioner]] = {
    "jacobi": JacobiPreconditioner,
    "ilu": _factorization_factory("ilu"),
    "ic": _factorization_factory("ic"),
    "gauss-seidel": _relaxation_factory("gauss-seidel"),
    "sor": _relaxation_factory("sor"),
    "ssor": _relaxation_factory("ssor"),
}


def _named_options(name: str) -> tuple[str, ...]:
    """The options (``pc_`` prefix dropped) that the preconditioner called ``name`` takes."""
    if name in ("gauss-seidel", "sor", "ssor"):
        from pdesuite.solvers.relaxation import RelaxationPreconditioner

        factory, fixed = RelaxationPreconditioner, {"A", "self", "kind"}
        if name == "gauss-seidel":
            fixed.add("omega")
    else:
        factory, fixed = NAMED_PRECONDITIONERS[name], {"A", "self"}
    return tuple(p for p in inspect.signature(factory).parameters if p not in fixed)


def _build_named(name: str, A: Any, options: dict[str, Any]) -> BasePreconditioner:
    """``NAMED_PRECONDITIONERS[name](A, **options)``, its errors naming the ``pc_`` options."""
    known = _named_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"M={name!r}: unknown option(s) {['pc_' + o for o in unknown]}; it takes "
                        f"{['pc_' + o for o in known]}")
    try:
        return NAMED_PRECONDITIONERS[name](A, **options)
    except ValueError as error:
        message = str(error)
        if any(message.startswith(f"{option}:") for option in options):
            raise ValueError(f"pc_{message}") from None
        raise


def make_preconditioner(M: Any, op: Operator, **options: Any) -> Preconditioner | None:
    """Turn what a user passed as ``M`` into a :class:`Preconditioner` (``None`` for none).

    ``M`` may be ``None``, a name from :data:`NAMED_PRECONDITIONERS` (built from A's entries,
    ``options`` going to its constructor), an object with ``apply``, a sparse/dense matrix or
    LinearOperator approximating ``A⁻¹``, or a callable ``r -> z``.
    """
    if M is None:
        if options:
            raise TypeError(f"M: options {sorted('pc_' + name for name in options)} configure a "
                            "preconditioner given by name, but M is None")
        return None
    if isinstance(M, str):
        key = M.lower()
        if key not in NAMED_PRECONDITIONERS:
            raise ValueError(
                f"M: unknown preconditioner {M!r}; known: {sorted(NAMED_PRECONDITIONERS)}"
            )
        return _build_named(key, op.require_matrix(f"M={M!r}"), options)
    if options:
        raise TypeError(f"M: options {sorted('pc_' + name for name in options)} are only for "
                        "preconditioners given by name")
    if isinstance(M, Preconditioner):
        return M
    if sp.issparse(M) or isinstance(M, np.ndarray) or hasattr(M, "matvec"):
        if tuple(M.shape) != op.shape:
            raise ValueError(f"M: has shape {tuple(M.shape)}, A has shape {op.shape}")
        return MatrixPreconditioner(M)
    if callable(M):
        return FunctionPreconditioner(M)
    raise TypeError(
        "M: expected None, a name, a Preconditioner, a matrix or a callable, got "
        f"{type(M).__name__}"
    )


class CountingPreconditioner:
    """Wraps a preconditioner to count its applications, keep its attributes visible, and check
    that it returns a vector of the residual's size ``n`` (when given)."""

    def __init__(self, inner: Preconditioner | None, n: int | None = None):
        self.inner = inner
        self.n = n
        self.applies = 0
        self.linear = getattr(inner, "linear", True)
        self.symmetric = getattr(inner, "symmetric", inner is None)

    @property
    def is_identity(self) -> bool:
        return self.inner is None

    def apply(self, r: np.ndarray) -> np.ndarray:
        if self.inner is None:
            return r
        self.applies += 1
        z = np.asarray(self.inner.apply(r))
        if z.size != r.size:
            raise ValueError(f"M: the preconditioner returned shape {z.shape} for a residual of "
                             f"shape {r.shape}; it must return a vector of the same size")
        return z.reshape(-1)

    __call__ = apply


def to_linear_operator(pc: Preconditioner, n: int, dtype: Any = float) -> spla.LinearOperator:
    """A SciPy ``LinearOperator`` ``[n, n]`` applying ``pc``, for SciPy's own solvers' ``M=``."""
    return spla.LinearOperator((n, n), matvec=lambda r: pc.apply(np.asarray(r).reshape(-1)),
                               dtype=dtype)
