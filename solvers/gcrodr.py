"""Krylov subspace recycling: GCRO-DR(m, k), recycling (deflated) CG, and ``RecyclingSolver``.

A sequence of related systems ``A_i x_i = b_i`` (a PDE dataset, a Newton or time-stepping loop)
shares the slow part of its spectrum. A recycling method keeps a small subspace from one solve
and uses it in the next, so that the Krylov iteration does not rediscover it.

- ``gcrodr`` (Parks, de Sturler, Mackey, Johnson, Maiti, SISC 2006): keeps ``U, C`` with
  ``B U = C`` and ``Cᴴ C = I`` for the iteration operator ``B`` (``A M`` with right
  preconditioning). Every cycle runs ``m − k`` Arnoldi steps with ``(I − C Cᴴ) B``, minimises
  the residual over ``[U V]``, and replaces ``U`` by the ``k`` harmonic Ritz vectors of
  smallest magnitude. ``k = 0`` is GMRES(m); without an initial space the first cycle is a
  GMRES(m) cycle followed by the harmonic Ritz step of GMRES-DR.
- ``rcg``: deflated CG (Saad, Yeung, Erhel, Guyomarc'h 2000) for Hermitian positive definite
  sequences. The search directions are kept A-orthogonal to a space ``W``, and after every
  solve ``W`` is replaced by Ritz vectors of ``M A`` (in the A inner product) over
  ``[W, p_0 … p_{ℓ−1}]``, built from the CG coefficients without extra products with A.
- :class:`RecyclingSolver`: keeps one :class:`RecycleSpace` between calls and goes through
  :func:`pdesuite.solvers.solve`, so that validation, counting and tuners are shared.

For a new matrix the stored space is first re-established (``k`` products with ``A``, counted
in ``matvecs``). A recycled space is worth keeping while it stays *slow*: its vectors are those
the iteration operator ``B`` stretches least. Its *slowness*, the RMS of ``‖B u‖/‖u‖`` over its
vectors divided by ``‖B g‖/‖g‖`` for a fixed random ``g`` (one more product), is scale-free:
about 0.05 along a slowly varying 2-D diffusion sequence, 0.03–0.16 between independent random
coefficient fields (where recycling still pays), and about 1 once the unknowns are renumbered
(``P A Pᵀ``), where the old vectors are as good as random; the first, rough Ritz space of
deflated CG measured 0.44. A strong preconditioner clusters the spectrum, so that even the
slowest vectors are not much slower than random ones (SSOR-preconditioned Darcy: 0.5 at ω = 1,
above 1 at ω = 1.6, on the very matrix the space was built for). So the space is dropped
(and ``info["recycle_reset"]`` says so) only when its slowness exceeds ``stale_threshold``
(default 0.7) *and* the new operator stretches its vectors more than :data:`STALE_GROWTH`
(2) times as much, in RMS, as the operator it was built for (``info["recycle_growth"]``;
the old images are stored, so this costs no product).

Vectors are stored as rows of C-contiguous ``[k, n]`` arrays, so that every projection is one
BLAS-2 call over contiguous memory.

Distributed runs
----------------
Every global reduction (inner products of vectors and of row blocks with vectors, norms, the
QR of a block of images, agreement on a yes/no that depends on local data) goes through one
:class:`Reduction` object, taken from ``op.reduction`` when the operator has one and else
:data:`LOCAL_REDUCTION` (plain NumPy: serial, the behaviour and speed of before).
:class:`MPIReduction` does the local product and one ``Allreduce`` of the small result per
block product, so the same code runs on the rank-local rows of a distributed system: this is
how ``pdesuite.solvers.petsc_backend`` runs these methods as python KSP types under
``mpiexec``. Everything else (Givens rotations, the harmonic Ritz and Ritz problems) is small
and dense and is computed redundantly, identically, on every rank.
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Optional

import numpy as np
import scipy.linalg as sla

from pdesuite.solvers.registry import register_method
from pdesuite.solvers.result import ConvergedReason, SolveResult

__all__ = ["LOCAL_REDUCTION", "MPIReduction", "RecycleSpace", "RecyclingSolver", "Reduction", "gcrodr",
           "rcg"]

SIDES = ("right", "left")
REORTHOGONALIZE = ("ifneeded", "always", "never")
RECYCLING_METHODS = ("gcrodr", "rcg")
#: A second classical Gram–Schmidt pass runs when the first removed more than 1 − 1/√2 of the
#: norm (Daniel, Gragg, Kaufman, Stewart). On 2-D diffusion that is nearly every step; a laxer
#: factor (0.3) skipped them all and let C lose orthogonality to 7e-7 within one solve.
_REORTH_ETA = 1.0 / math.sqrt(2.0)
#: A stored space that is not slow under a new operator is still kept while that operator
#: stretches it at most this much more (RMS) than the operator it was built for.
STALE_GROWTH = 2.0


# --------------------------------------------------------------------------------------------
# The state carried between solves
# --------------------------------------------------------------------------------------------


class RecycleSpace:
    """The recycle space one sequence of solves shares; pass it as ``recycle=`` to a method.

    What it keeps (vectors as rows, ``[k, n]``):

    - ``basis``: the space itself. For ``gcrodr`` it lives where the iteration operator acts:
      in the preconditioned space ``y`` (``x = M y``) with a linear right preconditioner, else
      in the solution space. For ``rcg`` it is ``W``, in the solution space.
    - the images under the last operator: ``C`` with ``U`` in the solution space for
      ``gcrodr``, ``A W`` for ``rcg``. They are reused without products when the next solve
      has the same operator: a retry within one solve, or :class:`RecyclingSolver` given the
      very same ``A`` and ``M`` objects (checked with one product).
    - the last ``solutions`` solutions (default 4; 0 keeps none). The next solve adds their
      span to its initial projection, at one product each: the minimal residual (GCRO-DR) or
      minimal energy (rcg) correction over ``span(U, x_1 … x_s)``. When ``A`` and ``b`` vary
      slowly the solutions lie near a low-dimensional curve and this projection is a very
      good initial guess. SciPy's ``gcrotmk`` gets the same effect from the last solution and
      the recent corrections it keeps in ``CU``.

    ``clear()`` drops everything; ``dim`` is the current dimension of the space.
    """

    def __init__(self, solutions: int = 4) -> None:
        self.solutions_kept = _check_int("solutions", solutions, 0)
        self.solutions: list[np.ndarray] = []  # newest last
        self.same_operator_hint = False
        self._reset_of_current: Optional[str] = None  # a reset earlier in the same solve
        # the operator of the last solve (images valid for it; a retry of it is recognised)
        self._operator_ref: Any = None
        self._preconditioner_id: Optional[int] = None
        self.side: Optional[str] = None
        self._drop_space()

    def clear(self) -> None:
        """Forget the space and the stored solutions."""
        self._drop_space()
        self.solutions = []
        self._operator_ref = None
        self._preconditioner_id = None
        self.side = None

    def _drop_space(self) -> None:
        self.method: Optional[str] = None
        self.basis: Optional[np.ndarray] = None  # [k, n] the space (y-space or x-space)
        self.basis_in_y = False
        self.solution_rows: Optional[np.ndarray] = None  # [k, n] U (gcrodr) or W (rcg), x-space
        self.image_rows: Optional[np.ndarray] = None  # [k, n] C (gcrodr) or A W (rcg)
        self.coupling: Optional[np.ndarray] = None  # [k, k] Cᴴ basis (gcrodr)

    @property
    def dim(self) -> int:
        return 0 if self.basis is None else int(self.basis.shape[0])

    def _matches(self, op: Any, pc: Any, side: Optional[str]) -> bool:
        ref = self._operator_ref() if self._operator_ref is not None else None
        return ref is op and self._preconditioner_id == id(pc.inner) and self.side == side

    def _remember_operator(self, op: Any, pc: Any, side: Optional[str]) -> None:
        self._operator_ref = weakref.ref(op)
        self._preconditioner_id = id(pc.inner)
        self.side = side
        self.same_operator_hint = False

    def _incompatibility(self, method: str, n: int, real: bool,
                         reduction: Optional["Reduction"] = None) -> Optional[str]:
        if self.method not in (None, method):
            return f"the space was built by {self.method!r}"
        # under MPI every rank must agree, or the ranks would take different branches
        if not (reduction or LOCAL_REDUCTION).all_true(self.basis.shape[1] == n):
            return f"the size changed from {self.basis.shape[1]} to {n}"
        if real and np.iscomplexobj(self.basis):
            return "the space is complex and the system real"
        return None

    def __repr__(self) -> str:
        return f"RecycleSpace(method={self.method!r}, dim={self.dim}, solutions={len(self.solutions)})"


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def _check_threshold(value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"stale_threshold: expected a number, got {type(value).__name__}") from None
    if not value >= 0.0:
        raise ValueError(f"stale_threshold: must be a number >= 0, got {value}")
    return value


def _check_recycle(recycle: Any) -> Optional[RecycleSpace]:
    if recycle is not None and not isinstance(recycle, RecycleSpace):
        raise TypeError(f"recycle: expected a RecycleSpace or None, got {type(recycle).__name__}")
    return recycle


def _rows_dot(rows: np.ndarray, w: np.ndarray, real: bool) -> np.ndarray:
    """``[rows_iᴴ w]`` without copying the (large) conjugated rows."""
    if real:
        return rows @ w
    return np.conj(rows @ np.conj(w))


def _rows_dot_block(rows: np.ndarray, others: np.ndarray, real: bool) -> np.ndarray:
    """``[rows_iᴴ others_j]``, shape ``[len(rows), len(others)]``."""
    if real:
        return rows @ others.T
    return np.conj(rows @ np.conj(others).T)


def _truncated_qr(matrix: np.ndarray, rows_to_follow: list[Optional[np.ndarray]]):
    """Pivoted QR of ``matrix`` ``[m, j]`` cut at its numerical rank (1e-12 relative).

    Returns ``(Q [m, rank], follow)``, where each of ``rows_to_follow`` (rows matching the
    columns of ``matrix``) is carried through the same change of basis, or None for a zero or
    non-finite matrix.
    """
    q, r, piv = sla.qr(matrix, mode="economic", pivoting=True, check_finite=False)
    diag = np.abs(np.diag(r))
    if diag.size == 0 or diag[0] == 0.0:
        return None
    rank = int(np.sum(diag > 1e-12 * diag[0]))
    r = r[:rank, :rank]
    follow = [None if rows is None else
              sla.solve_triangular(r, rows[piv[:rank]], trans="T", check_finite=False)
              for rows in rows_to_follow]
    return q[:, :rank], follow


class Reduction:
    """Global reductions over vectors stored as local NumPy arrays; this one is serial (local).

    ``real`` says that the working dtype is real (no conjugation needed). Shapes: ``rows``
    ``[k, n_local]``, ``w`` ``[n_local]``. Every method returns the *global* value, the same on
    every process; a subclass for a distributed vector does the local part and one sum over
    the processes. The serial methods are exactly the NumPy expressions the algorithms used
    before the hook existed, so that serial results do not change in the last bit.
    """

    #: True when the vectors are split across processes.
    distributed = False

    def dot_rows(self, rows: np.ndarray, w: np.ndarray, real: bool) -> np.ndarray:
        """``[rows_iᴴ w]``, shape ``[k]``."""
        return _rows_dot(rows, w, real)

    def dot_rows_and_norm(self, rows: np.ndarray, w: np.ndarray, real: bool) -> tuple[np.ndarray, float]:
        """``([rows_iᴴ w], ‖w‖)`` (one reduction when distributed)."""
        return _rows_dot(rows, w, real), float(np.linalg.norm(w))

    def gram(self, rows: np.ndarray, others: np.ndarray, real: bool) -> np.ndarray:
        """``[rows_iᴴ others_j]``, shape ``[len(rows), len(others)]``."""
        return _rows_dot_block(rows, others, real)

    def dot(self, a: np.ndarray, b: np.ndarray) -> complex:
        """``aᴴ b``."""
        return np.vdot(a, b)

    def dot_and_rows(self, a: np.ndarray, w: np.ndarray, rows: Optional[np.ndarray],
                     real: bool) -> tuple[complex, Optional[np.ndarray]]:
        """``(aᴴ w, [rows_iᴴ w] or None)`` (one reduction when distributed)."""
        return np.vdot(a, w), (None if rows is None else _rows_dot(rows, w, real))

    def norm(self, w: np.ndarray) -> float:
        """``‖w‖₂``."""
        return float(np.linalg.norm(w))

    def row_norms(self, rows: np.ndarray) -> np.ndarray:
        """``[‖rows_i‖₂]``, shape ``[k]``."""
        return np.linalg.norm(rows, axis=1)

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every process."""
        return bool(flag)

    def any_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on some process."""
        return bool(flag)

    def standard_normal(self, seed: int, n: int, dtype: Any) -> np.ndarray:
        """A fixed random vector (``n`` local entries) for the slowness probe."""
        return np.random.default_rng(seed).standard_normal(n).astype(dtype)

    def orthonormalize(self, image_rows: np.ndarray, rows_to_follow: list[Optional[np.ndarray]]):
        """Rank-revealing QR of the rows ``[k, n_local]``; see :func:`_orthonormalize_image`."""
        return _orthonormalize_image(image_rows, rows_to_follow)


#: The serial reduction, used whenever the operator carries none.
LOCAL_REDUCTION = Reduction()


class MPIReduction(Reduction):
    """Reductions over vectors split by rows across the processes of an mpi4py communicator.

    Each method computes the rank-local partial result and sums it with one ``Allreduce``
    (of ``k`` numbers for a block product, not one per vector). The QR of a block of images is
    a TSQR: a local QR, an ``Allgather`` of the ``k × k`` triangles, and a pivoted QR of
    their stack, computed identically on every rank. The slowness probe of each rank comes
    from a generator seeded by ``(seed, rank)``, so that the run is reproducible for a fixed
    number of ranks.

    Args:
        comm: an ``mpi4py.MPI.Comm`` (``PETSc.Comm.tompi4py()`` gives one).
    """

    distributed = True

    def __init__(self, comm: Any):
        from mpi4py import MPI  # only a distributed run needs mpi4py

        self._mpi = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def _sum(self, local: np.ndarray) -> np.ndarray:
        local = np.ascontiguousarray(local)
        out = np.empty_like(local)
        self.comm.Allreduce(local, out, op=self._mpi.SUM)
        return out

    def dot_rows(self, rows, w, real):
        return self._sum(_rows_dot(rows, w, real))

    def dot_rows_and_norm(self, rows, w, real):
        local = _rows_dot(rows, w, real)
        packed = self._sum(np.concatenate([local, [np.vdot(w, w)]]).astype(
            np.result_type(local.dtype, w.dtype), copy=False))
        return packed[:-1], math.sqrt(max(float(np.real(packed[-1])), 0.0))

    def gram(self, rows, others, real):
        return self._sum(_rows_dot_block(rows, others, real))

    def dot(self, a, b):
        return self._sum(np.array([np.vdot(a, b)]))[0]

    def dot_and_rows(self, a, w, rows, real):
        if rows is None:
            return self.dot(a, w), None
        local = _rows_dot(rows, w, real)
        packed = self._sum(np.concatenate([[np.vdot(a, w)], local]).astype(
            np.result_type(local.dtype, w.dtype), copy=False))
        return packed[0], packed[1:]

    def norm(self, w):
        return math.sqrt(max(float(np.real(self.dot(w, w))), 0.0))

    def row_norms(self, rows):
        local = np.einsum("ij,ij->i", np.conj(rows), rows).real if rows.shape[0] else np.zeros(0)
        return np.sqrt(np.maximum(self._sum(np.ascontiguousarray(local, dtype=float)), 0.0))

    def all_true(self, flag):
        return bool(self.comm.allreduce(bool(flag), op=self._mpi.LAND))

    def any_true(self, flag):
        return bool(self.comm.allreduce(bool(flag), op=self._mpi.LOR))

    def standard_normal(self, seed, n, dtype):
        return np.random.default_rng([seed, self.rank]).standard_normal(n).astype(dtype)

    def orthonormalize(self, image_rows, rows_to_follow):
        if not self.all_true(bool(np.all(np.isfinite(image_rows)))):
            return None
        k = image_rows.shape[0]
        q_local, r_local = np.linalg.qr(image_rows.T)  # [n_local, p], [p, k], p = min(n_local, k)
        p = r_local.shape[0]
        padded = np.zeros((k, k), dtype=r_local.dtype)
        padded[:p] = r_local
        stacked = np.empty((self.size * k, k), dtype=r_local.dtype)
        self.comm.Allgather(padded, stacked)
        truncated = _truncated_qr(stacked, rows_to_follow)
        if truncated is None:
            return None
        q, follow = truncated
        mine = q[self.rank * k:self.rank * k + p]
        return np.ascontiguousarray((q_local @ mine).T), follow


def _reduction_of(op: Any) -> Reduction:
    """The operator's reduction (distributed operators carry one), else the serial one."""
    return getattr(op, "reduction", None) or LOCAL_REDUCTION


def _slowness(rows: np.ndarray, image_rows: np.ndarray, apply, n: int, dtype,
              red: "Reduction") -> float:
    """RMS of ``‖B u‖/‖u‖`` over ``rows`` (images given) over ``‖B g‖/‖g‖`` for a fixed ``g``.

    Near 0 for vectors ``B`` hardly stretches, near 1 for vectors as ordinary as random ones.
    """
    stretch = red.row_norms(image_rows) / red.row_norms(rows)
    probe = red.standard_normal(20061, n, dtype)
    typical = red.norm(apply(probe)) / red.norm(probe)
    if not (typical > 0 and np.all(np.isfinite(stretch))):
        return math.inf
    return float(np.sqrt(np.mean(stretch**2))) / typical


def _stretch_growth(new_images: np.ndarray, old_images: Optional[np.ndarray], red: "Reduction") -> float:
    """RMS over the stored vectors of ``‖B_new u‖ / ‖B_old u‖`` (images of the same rows).

    1 when the operator did not change on the space (the same matrix with another
    preconditioner of similar quality, e.g. SSOR at another ω), large when the space's
    vectors stopped being slow (a renumbered matrix: about 20 on 2-D diffusion).
    """
    if old_images is None:
        return math.inf
    old = red.row_norms(old_images)
    new = red.row_norms(new_images)
    if not (np.all(old > 0) and np.all(np.isfinite(new))):
        return math.inf
    return float(np.sqrt(np.mean((new / old) ** 2)))


def _stale_reason(slowness: float, growth: float, stale_threshold: float) -> Optional[str]:
    """Why a re-established space is dropped, or None to keep it.

    Slow vectors of a strongly preconditioned operator are not much slower than a random one
    (the spectrum is clustered), so slowness alone would drop good spaces; a space is stale
    only when it is not slow *and* the new operator stretches it clearly more than the old
    one did (``growth > STALE_GROWTH``).
    """
    if slowness <= stale_threshold or growth <= STALE_GROWTH:
        return None
    return (f"stale: slowness {slowness:.3g} of the stored space under the new operator exceeds "
            f"stale_threshold={stale_threshold}, and the operator stretches it {growth:.3g}× more "
            f"than the last one did")


def _products(apply, rows: np.ndarray) -> np.ndarray:
    """``[apply(rows_i)]``, one call per row (so that every product is counted)."""
    out = np.empty_like(rows)
    for i in range(rows.shape[0]):
        out[i] = apply(rows[i])
    return out


def _orthonormalize_image(image_rows: np.ndarray, rows_to_follow: list[Optional[np.ndarray]]):
    """Rank-revealing QR ``image = Q R`` (pivoted, truncated at ``1e-12 |R_00|``).

    Returns ``(Q rows, [R⁻ᵀ rows_f for each f])`` so that a relation ``B f = image`` turns into
    ``B f' = Q``; ``None`` where the image is zero or not finite.
    """
    if not np.all(np.isfinite(image_rows)):
        return None
    truncated = _truncated_qr(image_rows.T, rows_to_follow)
    if truncated is None:
        return None
    q, follow = truncated
    return np.ascontiguousarray(q.T), follow


def _previous_solutions(space: Optional[RecycleSpace], n: int, dtype: np.dtype,
                        red: "Reduction") -> Optional[np.ndarray]:
    """The stored solutions usable for this system, as rows ``[s, n]``, or ``None``."""
    if space is None or not space.solutions_kept or not space.solutions:
        return None
    rows = []
    for x in space.solutions:
        fits = red.all_true(x.shape == (n,) and not (dtype.kind == "f" and np.iscomplexobj(x)))
        if fits and red.any_true(bool(np.any(x))):
            rows.append(x)
    return np.array(rows, dtype=dtype) if rows else None


def _store_solution(space: Optional[RecycleSpace], x: np.ndarray, red: "Reduction",
                    replace_last: bool = False) -> None:
    if space is not None and space.solutions_kept and red.all_true(bool(np.all(np.isfinite(x)))):
        if replace_last and space.solutions:
            space.solutions.pop()
        space.solutions.append(x.copy())
        del space.solutions[:-space.solutions_kept]


def _same_operator_by_probe(space: RecycleSpace, apply, dtype: np.dtype, red: "Reduction") -> bool:
    """One product on a fixed random combination: does ``apply(U g) = C g`` still hold?"""
    # ``space.dim`` numbers, the same on every rank: a combination, not a long vector
    probe = np.random.default_rng(0).standard_normal(space.dim)
    lhs = apply(probe @ space.solution_rows.astype(dtype, copy=False))
    rhs = probe @ space.image_rows.astype(dtype, copy=False)
    return bool(red.norm(lhs - rhs) <= 1e-10 * max(red.norm(rhs), 1e-300))


#: State that must survive the api's true-residual retries, which call a method again with the
#: same monitor: a private recycle space when none was given, and counters to add up.
_RETRIES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _within_solve(monitor: Any, recycle: Optional[RecycleSpace], private: bool):
    """``(space, carried)``: the space for this call and the carry-over of this solve."""
    try:
        carried = _RETRIES.get(monitor)
        if carried is None:
            carried = _RETRIES[monitor] = {"space": None, "totals": {}}
    except TypeError:  # a monitor without weak references: no carry-over
        carried = {"space": None, "totals": {}}
    if recycle is None and private:
        if carried["space"] is None:
            carried["space"] = RecycleSpace(solutions=0)
        recycle = carried["space"]
    return recycle, carried


def _accumulate(info: dict, carried: dict, keys: tuple[str, ...]) -> None:
    totals = carried["totals"]
    for key in keys:
        totals[key] = totals.get(key, 0) + info.get(key, 0)
        info[key] = totals[key]
    # what the first try measured on the stored space stays the answer for the whole solve
    for key in ("recycle_slowness", "recycle_growth"):
        if info.get(key) is None:
            info[key] = carried.get(key)
        carried[key] = info[key]


def _givens(a: Any, b: Any) -> tuple[float, Any, Any]:
    """``(c, s, ρ)`` with ``c`` real and ``[c s; −s̄ c] [a; b] = [ρ; 0]``."""
    if b == 0:
        return 1.0, 0.0, a
    if a == 0:
        return 0.0, 1.0, b
    abs_a = abs(a)
    radius = math.hypot(abs_a, abs(b))
    phase = a / abs_a
    return abs_a / radius, phase * b.conjugate() / radius, phase * radius


def _select_harmonic(T: np.ndarray, k: int, k_limit: int, real: bool) -> Optional[np.ndarray]:
    """Orthonormal basis ``[mm, k']`` of the eigenvectors of ``T`` with the ``k`` largest ``|μ|``.

    ``μ = 1/θ`` for the harmonic Ritz values ``θ``, so these are the smallest ``|θ|``. For real
    data a complex pair enters through the real and imaginary parts of one vector, so that the
    space stays real; a pair split by the ``k``-th place is kept whole when ``k + 1 <= k_limit``
    and left out otherwise.
    """
    mu, vectors = np.linalg.eig(T)
    magnitude = np.where(np.isfinite(mu), np.abs(mu), 0.0)
    order = np.argsort(-magnitude, kind="stable")
    if not real:
        columns = vectors[:, order[:k]]
    else:
        picked: list[np.ndarray] = []
        used = np.zeros(mu.size, dtype=bool)
        room = max(k, min(k + 1, k_limit))
        for index in order:
            if len(picked) >= k:
                break
            if used[index]:
                continue
            used[index] = True
            if mu[index].imag == 0 or abs(mu[index].imag) <= 1e-12 * abs(mu[index]):
                picked.append(vectors[:, index].real)
                continue
            partner = int(np.argmin(np.where(used, np.inf, np.abs(mu - np.conj(mu[index])))))
            used[partner] = True
            if len(picked) + 2 <= room:
                picked.append(vectors[:, index].real)
                picked.append(vectors[:, index].imag)
        if not picked:
            return None
        columns = np.column_stack(picked)
    q, r = np.linalg.qr(columns)
    diag = np.abs(np.diag(r))
    if diag.size == 0 or not np.isfinite(diag).all() or diag.max() == 0:
        return None
    return q[:, diag > 1e-10 * diag.max()]


# --------------------------------------------------------------------------------------------
# GCRO-DR
# --------------------------------------------------------------------------------------------


@register_method(
    "gcrodr",
    flexible=True,
    options=("restart", "k", "recycle", "side", "stale_threshold", "reorthogonalize",
             "update_period"),
    description="GCRO-DR(m, k): restarted GMRES with a recycled harmonic Ritz space (Parks et al. 2006)",
)
def gcrodr(op, b, x, pc, monitor, restart: int = 40, k: int = 20,
           recycle: Optional[RecycleSpace] = None, side: str = "right",
           stale_threshold: float = 0.7, reorthogonalize: str = "ifneeded",
           update_period: int = 1):
    """GCRO-DR(m, k) with deflated restarting; a registered method (see ``registry``).

    Args (options of ``solve(..., method="gcrodr")``):
        restart: ``m``, the dimension of the search space of a cycle (recycled + new), >= 1;
            default 40.
        k: recycled dimension, ``0 <= k < m``; ``k = 0`` is GMRES(m). Default 20.
        recycle: a :class:`RecycleSpace` to start from and to leave the new space in; ``None``
            recycles only between the cycles of this solve (GMRES-DR).
        side: ``"right"`` (default; the monitored norm is the true residual norm; flexible:
            the preconditioner may be nonlinear) or ``"left"`` (monitors ``‖M r‖`` scaled by
            ``‖r‖ / ‖M r‖`` at the initial iterate; needs a linear preconditioner).
        stale_threshold: a stored space whose slowness under the new operator exceeds this
            (>= 0; default 0.7) is dropped if the new operator also stretches it more than
            :data:`STALE_GROWTH` times as much as the old one did (see the module docstring).
        reorthogonalize: ``"ifneeded"`` (default: a second classical Gram–Schmidt pass when
            the first left less than 1/√2 of the norm), ``"always"`` (CGS2) or ``"never"`` (one
            pass, as PETSc's GMRES and this library's ``gmres``). One pass is faster (see
            ``benchmarks/bench_gcrodr_options.py``) but not safe: on the FE Poisson sequence
            with ILU (rtol 1e-5) its second system stalled for 10⁴ iterations where the
            default needs 18 (a test).
        update_period: refresh the recycled space (the harmonic Ritz step, about as costly as
            the ``m − k`` Arnoldi steps of a cycle when the preconditioner is cheap) every
            ``update_period`` cycles, >= 1 (default 1, the method of Parks et al.). The space
            is always refreshed while it holds fewer than ``k`` vectors and after the last
            cycle of a solve, so that the next system starts from the newest space. Skipped
            refreshes keep the method exact (GCRO with a fixed space for those cycles).
            ``benchmarks/bench_gcrodr_options.py`` measures the trade-off: a longer period
            pays when the preconditioner is cheap and solves take many cycles; with ILU,
            where a solve takes a few cycles, period 1 is faster.

    Returns ``(x, reason, info)``; ``info`` holds ``recycle_dim`` (after the solve),
    ``recycle_reset`` and ``reason_reset``, ``recycle_slowness`` and ``recycle_growth`` (None
    unless a stored space was re-established for a new operator),
    ``projection_reduction`` (‖r‖ after ÷ before the initial projection),
    ``recycle_matvecs`` (products spent on the stored space and solutions, part of
    ``matvecs``), ``cycles``, ``recycle_updates`` (harmonic Ritz refreshes) and
    ``reorthogonalizations``.
    """
    space, carried = _within_solve(monitor, _check_recycle(recycle), private=True)
    x, reason, info = _gcrodr(op, b, x, pc, monitor, restart, k, space, side, stale_threshold,
                              reorthogonalize, update_period)
    _accumulate(info, carried, ("cycles", "recycle_updates", "reorthogonalizations",
                                "recycle_matvecs"))
    return x, reason, info


class _GcrodrSpace:
    """The recycle space of one solve: ``B U_x = C`` (``U_x`` in x-space), ``Cᴴ C = I``.

    ``u_y`` (rows with ``M u_y = u_x``) exists for a linear right preconditioner, where the
    harmonic Ritz problem lives in y; ``coupling = Cᴴ U_s`` with ``U_s`` = ``u_y`` when it
    exists, else ``u_x``.
    """

    def __init__(self, c_rows, u_x, u_y, coupling):
        self.c_rows, self.u_x, self.u_y, self.coupling = c_rows, u_x, u_y, coupling

    @property
    def dim(self) -> int:
        return self.c_rows.shape[0]

    @property
    def search_rows(self) -> np.ndarray:
        return self.u_y if self.u_y is not None else self.u_x


def _gcrodr(op, b, x, pc, monitor, restart, k, space, side, stale_threshold, reorthogonalize,
            update_period=1):
    m = _check_int("restart", restart, 1)
    update_period = _check_int("update_period", update_period, 1)
    k = _check_int("k", k, 0)
    if k >= m:
        raise ValueError(f"k: must be smaller than restart (m={m}), got k={k}")
    if side not in SIDES:
        raise ValueError(f"side: must be one of {SIDES}, got {side!r}")
    if reorthogonalize not in REORTHOGONALIZE:
        raise ValueError(f"reorthogonalize: must be one of {REORTHOGONALIZE}, got {reorthogonalize!r}")
    stale_threshold = _check_threshold(stale_threshold)
    if side == "left" and not pc.linear:
        raise ValueError("side: 'left' needs a linear preconditioner; use side='right' with a "
                         "nonlinear one (GCRO-DR is flexible with right preconditioning)")

    n, dtype = op.n, op.dtype
    real = dtype.kind == "f"
    red = _reduction_of(op)
    left = side == "left" and not pc.is_identity
    right = side == "right" and not pc.is_identity
    # With a linear right preconditioner the space lives in y (x = M y), where A M acts, and
    # the harmonic Ritz problem is exact. A nonlinear one leaves only the x-space vectors.
    track_y = right and pc.linear

    def apply_operator(v: np.ndarray) -> np.ndarray:
        """``A v``, or ``M A v`` for left preconditioning (``v`` in x-space)."""
        w = op.matvec(v)
        return np.asarray(pc.apply(w), dtype=dtype) if left else w

    info: dict[str, Any] = {"recycle_dim": 0, "recycle_reset": False, "reason_reset": None,
                            "recycle_slowness": None, "recycle_growth": None,
                            "projection_reduction": None,
                            "recycle_matvecs": 0, "cycles": 0, "recycle_updates": 0,
                            "reorthogonalizations": 0}

    r = b - op.matvec(x)
    monitor_scale = 1.0
    if left:
        # The monitor sees ‖M r‖ rescaled by ‖r‖/‖M r‖ at the current iterate, so that the api's
        # true-residual retry starts with a ratio measured where the last attempt stopped.
        true_norm = red.norm(r)
        r = np.asarray(pc.apply(r), dtype=dtype)
        mr_norm = red.norm(r)
        monitor_scale = true_norm / mr_norm if mr_norm > 0 else 1.0
    else:
        r0_norm = red.norm(r)
        if monitor.is_converged(r0_norm):
            # nothing to do: spend no products on the space
            info["recycle_dim"] = space.dim
            return x, monitor.start(r0_norm), info

    retry = space._matches(op, pc, side)  # the api's true-residual retry of this very solve
    if k == 0:
        space._drop_space()  # GMRES(m): no recycled space, whatever a previous solve left
    elif space.dim > min(k, m - 1):
        _truncate(space, min(k, m - 1))  # k or m got smaller: keep the leading vectors
    rec = _establish_gcrodr(space, op, pc, side, dtype, n, real, track_y, right, apply_operator,
                            stale_threshold, info, red)

    # ---- initial projection: x += U Cᴴ r, r −= C Cᴴ r, then the stored solutions ----------
    before = red.norm(r)
    if rec is not None:
        coefficients = red.dot_rows(rec.c_rows, r, real)
        x += coefficients @ rec.u_x
        r -= coefficients @ rec.c_rows
    # (a retry's x has been through this projection already)
    previous = None if retry else _previous_solutions(space, n, dtype, red)
    if previous is not None:
        images = _products(apply_operator, previous)
        info["recycle_matvecs"] += previous.shape[0]
        if rec is not None:
            along_c = np.conj(red.gram(images, rec.c_rows, real))  # [s, kc]: c_jᴴ B x_i
            images -= along_c @ rec.c_rows
            previous -= along_c @ rec.u_x
        established = red.orthonormalize(images, [previous])
        if established is not None:
            q_rows, (previous,) = established
            coefficients = red.dot_rows(q_rows, r, real)
            x += coefficients @ previous
            r -= coefficients @ q_rows
    beta = red.norm(r)
    info["projection_reduction"] = beta / before if before > 0 else None
    reason = monitor.start(beta * monitor_scale)
    if reason is None:
        reason, rec = _gcrodr_cycles(op, pc, monitor, x, r, beta, rec, m, k, dtype, real, right,
                                     track_y, apply_operator, monitor_scale, reorthogonalize, info,
                                     red, update_period)
    _store_gcrodr_space(space, rec, op, pc, side, track_y, info)
    _store_solution(space, x, red, replace_last=retry)
    return x, reason, info


def _truncate(space: RecycleSpace, dim: int) -> None:
    """Keep the leading ``dim`` vectors (the most important ones after a Ritz update)."""
    for name in ("basis", "solution_rows", "image_rows"):
        rows = getattr(space, name)
        if rows is not None:
            setattr(space, name, rows[:dim])
    if space.coupling is not None:
        space.coupling = space.coupling[:dim, :dim]


def _record_reset(space: RecycleSpace, info: dict, reset_reason: Optional[str], op: Any, pc: Any,
                  side: Optional[str]) -> bool:
    """Drop the space for ``reset_reason`` (True), or keep reporting a reset of this same solve."""
    if reset_reason is not None:
        info["recycle_reset"] = True
        info["reason_reset"] = reset_reason
        space._drop_space()  # the stored solutions stay: their projection cannot hurt
        space._reset_of_current = reset_reason
        return True
    if space._reset_of_current is not None and space._matches(op, pc, side):
        # a retry within the same solve: keep reporting the reset of its first try
        info["recycle_reset"] = True
        info["reason_reset"] = space._reset_of_current
    else:
        space._reset_of_current = None
    return False


def _establish_gcrodr(space, op, pc, side, dtype, n, real, track_y, right, apply_operator,
                      stale_threshold, info, red) -> Optional[_GcrodrSpace]:
    """The stored space made valid for this operator (or dropped, with the reason in info)."""
    if space.dim == 0:
        space._reset_of_current = None
        return None
    reset_reason = space._incompatibility("gcrodr", n, real, red)
    rec = None
    if reset_reason is None:
        matches = space._matches(op, pc, side)
        if not matches and space.same_operator_hint and space.image_rows is not None:
            matches = _same_operator_by_probe(space, apply_operator, dtype, red)
            info["recycle_matvecs"] += 1
        if matches:
            u_y = space.basis.astype(dtype) if (track_y and space.basis_in_y) else None
            coupling = space.coupling if (u_y is not None or not right) else None
            rec = _GcrodrSpace(space.image_rows.astype(dtype), space.solution_rows.astype(dtype),
                               u_y, coupling)
        else:
            stored = space.basis.astype(dtype, copy=True)
            u_y = stored if track_y else None
            u_x = _products(pc.apply, stored).astype(dtype, copy=False) if track_y else stored
            image = _products(apply_operator, u_x)
            info["recycle_matvecs"] += u_x.shape[0]
            # the slowness on the space the operator acts on: B = A M on y, A (or M A) on x
            probe_operator = (lambda v: op.matvec(pc.apply(v))) if track_y else apply_operator
            slowness = _slowness(u_y if track_y else u_x, image, probe_operator, n, dtype, red)
            info["recycle_matvecs"] += 1
            info["recycle_slowness"] = slowness
            growth = _stretch_growth(image, space.image_rows, red)
            info["recycle_growth"] = growth
            established = None
            reset_reason = _stale_reason(slowness, growth, stale_threshold)
            if reset_reason is None:
                established = red.orthonormalize(image, [u_x, u_y])
                if established is None:
                    reset_reason = "the operator maps the stored space to zero (or to NaN/Inf)"
            if established is not None:
                c_rows, (u_x, u_y) = established
                exact = u_y is not None or not right
                coupling = red.gram(c_rows, u_y if u_y is not None else u_x, real) if exact else None
                rec = _GcrodrSpace(c_rows, u_x, u_y, coupling)
    if _record_reset(space, info, reset_reason, op, pc, side):
        return None
    return rec


def _gcrodr_cycles(op, pc, monitor, x, r, beta, rec, m, k, dtype, real, right, track_y,
                   apply_operator, monitor_scale, reorthogonalize, info, red, update_period=1):
    """The GCRO-DR cycles from the residual ``r`` (norm ``beta``); updates ``x`` in place."""
    n = op.n
    always = reorthogonalize == "always"
    if_needed = reorthogonalize == "ifneeded"
    tiny = 4 * np.finfo(dtype).eps
    basis = np.empty((m + 1, n), dtype=dtype)  # rows [0:kc] = C, then the Arnoldi vectors
    z_rows = np.empty((m, n), dtype=dtype) if right else None  # M v_j
    hess = np.zeros((m + 1, m), dtype=dtype)  # rows [0:kc]: Cᴴ B v_j; below: the Hessenberg
    tri = np.zeros((m, m), dtype=dtype)  # the Hessenberg after the Givens rotations
    rhs = np.zeros(m + 1, dtype=dtype)
    scratch = np.empty(n, dtype=dtype)
    cosines = [0.0] * m
    sines: list[Any] = [0.0] * m
    stagnant_cycles = 0
    reason = None
    cycle = 0
    while True:
        info["cycles"] += 1
        cycle += 1
        kc = 0 if rec is None else rec.dim
        if kc:
            basis[:kc] = rec.c_rows
        np.multiply(r, 1.0 / beta, out=basis[kc])
        hess[:, : m - kc] = 0
        rhs[:] = 0
        rhs[0] = beta
        breakdown = False
        done = 0
        for j in range(m - kc):
            if right:
                z_rows[j] = pc.apply(basis[kc + j])
                w = op.matvec(z_rows[j])
            else:
                w = apply_operator(basis[kc + j])
            w = np.asarray(w, dtype=dtype)
            if w.base is not None or not w.flags.writeable:
                w = w.copy()  # never modify an array the operator may still hold
            width = kc + j + 1
            rows = basis[:width]
            h, norm_in = red.dot_rows_and_norm(rows, w, real)
            np.dot(h, rows, out=scratch)
            w -= scratch
            norm_out = red.norm(w)
            if always or (if_needed and norm_out < _REORTH_ETA * norm_in):
                info["reorthogonalizations"] += 1
                correction = red.dot_rows(rows, w, real)
                np.dot(correction, rows, out=scratch)
                w -= scratch
                h += correction
                norm_out = red.norm(w)
            hess[:width, j] = h
            hess[width, j] = norm_out
            if not norm_out > tiny * norm_in or not math.isfinite(norm_out):
                # an invariant subspace (or a NaN): the cycle ends here, with no next vector
                breakdown = True
                if math.isfinite(norm_out):
                    hess[width, j] = 0.0
                basis[width] = 0.0
            else:
                np.multiply(w, 1.0 / norm_out, out=basis[width])
            # Givens rotations on the Hessenberg part, rows kc .. kc+j+1
            column = hess[kc:kc + j + 2, j].tolist()
            for i in range(j):
                upper, lower = column[i], column[i + 1]
                column[i] = cosines[i] * upper + sines[i] * lower
                column[i + 1] = cosines[i] * lower - sines[i].conjugate() * upper
            c_j, s_j, column[j] = _givens(column[j], column[j + 1])
            cosines[j], sines[j] = c_j, s_j
            tri[:j + 1, j] = column[:j + 1]
            rhs[j + 1] = -s_j.conjugate() * rhs[j]
            rhs[j] = c_j * rhs[j]
            done = j + 1
            reason = monitor.step(abs(rhs[j + 1]) * monitor_scale)
            if reason is not None or breakdown:
                break
        if reason is ConvergedReason.DIVERGED_NAN_OR_INF:
            return reason, rec  # the last update would be garbage; keep the last x

        # least squares over [U V]: y_V from the triangle, then y_U = −(Cᴴ B V) y_V
        diagonal = np.abs(np.diag(tri[:done, :done]))
        if diagonal.min() > 0:
            y_v = sla.solve_triangular(tri[:done, :done], rhs[:done], check_finite=False)
        else:  # a singular projected operator: the least-squares solution
            y_v = np.linalg.lstsq(tri[:done, :done], rhs[:done], rcond=None)[0]
        if not np.all(np.isfinite(y_v)):
            return ConvergedReason.DIVERGED_NAN_OR_INF, rec
        x += y_v @ (z_rows[:done] if right else basis[kc:kc + done])
        if kc:
            x -= (hess[:kc, :done] @ y_v) @ rec.u_x
        finished = reason is not None
        if not finished:
            coefficients = -(hess[kc:kc + done + 1, :done] @ y_v)
            coefficients[0] += beta
            r = coefficients @ basis[kc:kc + done + 1]

        refresh = finished or cycle % update_period == 0 or (rec is None or rec.dim < k)
        if k > 0 and refresh:
            info["recycle_updates"] += 1
            updated = _gcrodr_harmonic_update(basis, z_rows, hess, rec, done, k, m, real, track_y,
                                              red)
            if updated is not None:
                rec = updated

        if finished:
            return reason, rec
        new_beta = red.norm(r)
        if not math.isfinite(new_beta):
            return ConvergedReason.DIVERGED_NAN_OR_INF, rec
        no_progress = new_beta > (1 - 1e-12) * beta
        if breakdown and no_progress:
            # an invariant Krylov space on which the projected operator is singular
            return ConvergedReason.DIVERGED_BREAKDOWN, rec
        # Two whole cycles in a row without progress: the projected operator is singular on
        # the residual, and further restarts would repeat them.
        stagnant_cycles = stagnant_cycles + 1 if no_progress else 0
        if stagnant_cycles >= 2:
            return ConvergedReason.DIVERGED_STAGNATION, rec
        beta = new_beta


def _gcrodr_harmonic_update(basis, z_rows, hess, rec, done, k, m, real, track_y,
                            red: Reduction = LOCAL_REDUCTION):
    """The harmonic Ritz step: the new space from the cycle just finished, or ``None``.

    With ``W = [Ũ V_j]`` (``Ũ = U D``, unit columns), ``B W = V̂ Ḡ`` where ``V̂ = [C V_{j+1}]``
    and ``Ḡ = [[D, Cᴴ B V_j], [0, H̄_j]]``. The harmonic Ritz vectors ``W z`` solve
    ``ḠᴴḠ z = θ Ḡᴴ V̂ᴴ W z``, i.e. ``Ḡ⁺ V̂ᴴ W z = z / θ``; keeping the ``k`` smallest ``|θ|``
    in ``P``: ``[Q, R] = qr(Ḡ P)``, ``C ← V̂ Q``, ``U ← W P R⁻¹``, and ``Cᴴ U`` for the next
    cycle is ``Qᴴ (V̂ᴴ W) P R⁻¹`` without touching long vectors.

    With a nonlinear right preconditioner ``U`` has no y-space form and ``V̂ᴴ Ũ`` is replaced
    by ``[D; 0]``, i.e. ``Ũ ≈ C D`` (the preconditioner taken as ``A⁻¹`` on the recycled
    space), as flexible GCRO-DR does.
    """
    kc = 0 if rec is None else rec.dim
    mm = kc + done
    dense = np.float64 if real else np.complex128
    g = np.zeros((mm + 1, mm), dtype=dense)
    vhw = np.zeros((mm + 1, mm), dtype=dense)
    g[kc:, kc:] = hess[kc:mm + 1, :done]
    vhw[kc:mm, kc:] = np.eye(done)
    exact = True
    scale = np.zeros(0)
    if kc:
        rows = rec.search_rows
        scale = 1.0 / red.row_norms(rows)
        g[:kc, :kc] = np.diag(scale)
        g[:kc, kc:] = hess[:kc, :done]
        exact = rec.coupling is not None
        if exact:
            vhw[:kc, :kc] = rec.coupling * scale
            vhw[kc:, :kc] = red.gram(basis[kc:mm + 1], rows, real) * scale
        else:
            vhw[:kc, :kc] = np.diag(scale)
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(vhw))):
        return None
    try:
        T = sla.lstsq(g, vhw, check_finite=False)[0]
        p = _select_harmonic(T, min(k, mm), min(mm, m - 1), real)
        if p is None:
            return None
        q, rr = np.linalg.qr(g @ p)
        diagonal = np.abs(np.diag(rr))
        if diagonal.size == 0 or diagonal.min() <= 1e-14 * diagonal.max():
            return None
        # rows of the new U as combinations of the rows of W: (P R⁻¹)ᵀ
        coeff = sla.solve_triangular(rr, p.T, trans="T", check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    coupling = (np.conj(q.T) @ vhw @ coeff.T) if exact else None
    dtype = basis.dtype
    coeff = coeff.astype(dtype, copy=False)
    c_new = q.T.astype(dtype) @ basis[:mm + 1]
    u_x_new = coeff[:, kc:] @ (z_rows[:done] if z_rows is not None else basis[kc:mm])
    if kc:
        u_x_new += (coeff[:, :kc] * scale.astype(dtype)) @ rec.u_x
    u_y_new = None
    if track_y and (kc == 0 or rec.u_y is not None):
        u_y_new = coeff[:, kc:] @ basis[kc:mm]
        if kc:
            u_y_new += (coeff[:, :kc] * scale.astype(dtype)) @ rec.u_y
    if not red.all_true(bool(np.all(np.isfinite(c_new)) and np.all(np.isfinite(u_x_new)))):
        return None
    if z_rows is not None and not track_y:
        coupling = None  # nonlinear preconditioner: the next update is the flexible one too
    return _GcrodrSpace(c_new, u_x_new, u_y_new, coupling)


def _store_gcrodr_space(space: RecycleSpace, rec: Optional[_GcrodrSpace], op, pc, side,
                        track_y: bool, info: dict) -> None:
    space._remember_operator(op, pc, side)
    if rec is None or rec.dim == 0:
        space._drop_space()
        info["recycle_dim"] = 0
        return
    space.method = "gcrodr"
    space.solution_rows = rec.u_x
    space.image_rows = rec.c_rows
    if track_y and rec.u_y is not None:
        space.basis, space.basis_in_y = rec.u_y, True
    else:
        space.basis, space.basis_in_y = rec.u_x, False
    space.coupling = rec.coupling
    info["recycle_dim"] = rec.dim


# --------------------------------------------------------------------------------------------
# Recycling (deflated) CG
# --------------------------------------------------------------------------------------------


@register_method(
    "rcg",
    flexible=False,
    options=("k", "ell", "recycle", "stale_threshold"),
    description="recycling (deflated) CG for Hermitian positive definite sequences",
)
def rcg(op, b, x, pc, monitor, k: int = 10, ell: Optional[int] = None,
        recycle: Optional[RecycleSpace] = None, stale_threshold: float = 0.7):
    """Deflated preconditioned CG with a recycled space ``W``; a registered method.

    ``x0 ← x0 + W (WᴴAW)⁻¹ Wᴴ r0``, and every direction is made A-orthogonal to ``W``:
    ``p = z + β p − W (WᴴAW)⁻¹ (AW)ᴴ z``. After the solve the ``k`` Ritz vectors of ``M A``
    (in the A inner product) with the smallest Ritz values over ``[W, p_0 … p_{ℓ−1}]`` become
    the new ``W``. The projected matrices come from quantities CG computes anyway: ``Pᴴ A P``
    is diagonal, ``Wᴴ A P = 0``, ``(AP)ᴴ M (AP)`` is the tridiagonal of the CG coefficients,
    and ``(AW)ᴴ M A P`` follows from ``(AW)ᴴ z_j``; only ``M A W`` costs ``k`` applications
    of M per solve.

    Args (options of ``solve(..., method="rcg")``):
        k: recycled dimension, >= 0 (default 10; 0 is plain preconditioned CG).
        ell: number of leading CG directions kept for the update (default ``max(2k, 30)``;
            memory ``2 ℓ n``). More directions give better Ritz vectors: on a 2-D diffusion
            sequence ℓ = 2k came within 10% of deflating exact eigenvectors.
        recycle: a :class:`RecycleSpace`; ``None`` deflates nothing.
        stale_threshold: a stored ``W`` whose slowness under the new ``M A`` exceeds this
            (default 0.7) is dropped if the new ``A`` also stretches it more than
            :data:`STALE_GROWTH` times as much as the old one did (the growth is measured
            under ``A``, whose old images are stored: a change of preconditioner alone never
            drops the space). See the module docstring.

    A non-positive ``pᴴAp`` (or a ``WᴴAW`` with a negative eigenvalue) ends with
    DIVERGED_INDEFINITE_MAT, a non-positive ``rᴴ M r`` with DIVERGED_INDEFINITE_PC.
    ``info``: ``recycle_dim``, ``recycle_reset``, ``reason_reset``, ``recycle_slowness``,
    ``recycle_growth``, ``projection_reduction``, ``recycle_matvecs``.
    """
    space, carried = _within_solve(monitor, _check_recycle(recycle), private=False)
    x, reason, info = _rcg(op, b, x, pc, monitor, k, ell, space, stale_threshold)
    _accumulate(info, carried, ("recycle_matvecs",))
    return x, reason, info


def _establish_rcg(space, op, pc, dtype, n, real, stale_threshold, info, red):
    """``(W, A W, M A W)`` with ``WᴴAW = I`` for this matrix, or ``None`` when dropped.

    ``"indefinite"`` when ``WᴴAW`` has a negative eigenvalue (A is not positive definite).
    """
    reset_reason = space._incompatibility("rcg", n, real, red)
    if reset_reason is None:
        w_rows = space.basis.astype(dtype, copy=True)
        matches = space._matches(op, pc, None)
        if not matches and space.same_operator_hint and space.image_rows is not None:
            matches = _same_operator_by_probe(space, op.matvec, dtype, red)
            info["recycle_matvecs"] += 1
        if matches:
            aw_rows = space.image_rows.astype(dtype, copy=True)
        else:
            aw_rows = _products(op.matvec, w_rows)
            info["recycle_matvecs"] += w_rows.shape[0]
        maw_rows = aw_rows if pc.is_identity else _products(pc.apply, aw_rows).astype(dtype, copy=False)
        if not matches:
            # slowness under M A, the operator whose small eigenvalues W deflates
            slowness = _slowness(w_rows, maw_rows, lambda v: pc.apply(op.matvec(v)), n, dtype, red)
            info["recycle_matvecs"] += 1
            info["recycle_slowness"] = slowness
            # growth under A itself: the old A W is stored, the new one was just computed
            growth = _stretch_growth(aw_rows, space.image_rows, red)
            info["recycle_growth"] = growth
            reset_reason = _stale_reason(slowness, growth, stale_threshold)
    if reset_reason is None:
        gram = red.gram(w_rows, aw_rows, real)
        gram = 0.5 * (gram + np.conj(gram.T))
        finite = bool(np.all(np.isfinite(gram)))
        lam, vectors = np.linalg.eigh(gram) if finite else (np.array([np.nan]), None)
        top = float(np.max(np.abs(lam)))
        if not finite or not np.isfinite(lam).all() or top == 0.0:
            reset_reason = "the matrix maps the stored space to zero (or to NaN/Inf)"
        elif lam[0] < -1e-8 * top:
            space._drop_space()
            info["recycle_reset"] = True
            info["reason_reset"] = "WᴴAW has a negative eigenvalue: A is not positive definite"
            return "indefinite"
    if _record_reset(space, info, reset_reason, op, pc, None):
        return None
    keep = lam > 1e-10 * top
    transform = (vectors[:, keep] / np.sqrt(lam[keep])).astype(dtype)
    maw_rows = transform.T @ maw_rows
    return transform.T @ w_rows, transform.T @ aw_rows, maw_rows


def _rcg(op, b, x, pc, monitor, k, ell, space, stale_threshold):
    k = _check_int("k", k, 0)
    ell = max(2 * k, 30) if ell is None else _check_int("ell", ell, 1)
    stale_threshold = _check_threshold(stale_threshold)
    n, dtype = op.n, op.dtype
    real = dtype.kind == "f"
    info: dict[str, Any] = {"recycle_dim": 0, "recycle_reset": False, "reason_reset": None,
                            "recycle_slowness": None, "recycle_growth": None,
                            "projection_reduction": None,
                            "recycle_matvecs": 0}

    red = _reduction_of(op)
    r = b - op.matvec(x)
    r_norm = red.norm(r)
    if monitor.is_converged(r_norm):
        info["recycle_dim"] = space.dim if space is not None else 0
        return x, monitor.start(r_norm), info

    w_rows = aw_rows = maw_rows = None
    retry = space is not None and space._matches(op, pc, None)
    if space is not None and space.dim > 0:
        if k > 0:
            if space.dim > k:
                _truncate(space, k)
            established = _establish_rcg(space, op, pc, dtype, n, real, stale_threshold, info, red)
            if isinstance(established, str):
                monitor.start(r_norm)
                return x, ConvergedReason.DIVERGED_INDEFINITE_MAT, info
            if established is not None:
                w_rows, aw_rows, maw_rows = established
        else:
            space._drop_space()
    kw = 0 if w_rows is None else w_rows.shape[0]

    # ---- initial projections: Galerkin onto W (WᴴAW = I), then the stored solutions ------
    before = r_norm
    if kw:
        coefficients = red.dot_rows(w_rows, r, real)
        x += coefficients @ w_rows
        r -= coefficients @ aw_rows
    previous = None if retry else _previous_solutions(space, n, dtype, red)
    if previous is not None:
        images = _products(op.matvec, previous)
        info["recycle_matvecs"] += previous.shape[0]
        if kw:
            along_w = np.conj(red.gram(images, w_rows, real))  # [s, kw]: w_jᴴ A x_i
            previous -= along_w @ w_rows
            images -= along_w @ aw_rows
        gram = red.gram(previous, images, real)
        gram = 0.5 * (gram + np.conj(gram.T))
        if np.all(np.isfinite(gram)):
            lam, vectors = np.linalg.eigh(gram)
            keep = lam > 1e-12 * float(np.max(np.abs(lam)))
            if np.any(keep):
                # A-orthonormal combinations; a direction of negative energy is left to CG
                transform = (vectors[:, keep] / np.sqrt(lam[keep])).astype(dtype)
                previous = transform.T @ previous
                images = transform.T @ images
                coefficients = red.dot_rows(previous, r, real)
                x += coefficients @ previous
                r -= coefficients @ images
    r_norm = red.norm(r)
    info["projection_reduction"] = r_norm / before if before > 0 else None
    reason = monitor.start(r_norm)
    if reason is None:
        reason, w_rows, aw_rows = _deflated_cg(op, pc, monitor, x, r, w_rows, aw_rows, maw_rows,
                                               k if space is not None else 0, ell, dtype, real,
                                               red)
    if space is not None:
        _store_rcg_space(space, w_rows, aw_rows, op, pc, info)
        _store_solution(space, x, red, replace_last=retry)
    return x, reason, info


def _deflated_cg(op, pc, monitor, x, r, w_rows, aw_rows, maw_rows, k, ell, dtype, real, red):
    """Deflated PCG from ``r`` (``Wᴴ r = 0``); returns ``(reason, W, AW)``, updating ``x``."""
    kw = 0 if w_rows is None else w_rows.shape[0]
    collect = k > 0
    z = np.asarray(pc.apply(r), dtype=dtype)
    # rᴴz and (AW)ᴴz together: one reduction per step under MPI
    rho, g = red.dot_and_rows(r, z, aw_rows if kw else None, real)
    rho = float(np.real(rho))
    if not rho > 0 or not math.isfinite(rho):
        return ConvergedReason.DIVERGED_INDEFINITE_PC, w_rows, aw_rows
    if kw:
        p = z - g @ w_rows
    else:
        p = np.array(z, dtype=dtype, copy=True)
    # what the Ritz update needs: p_j, A p_j (j < ell), α_j, pᴴAp, ρ_j and g_j = (AW)ᴴ z_j
    kept_p: list[np.ndarray] = []
    kept_ap: list[np.ndarray] = []
    alphas: list[float] = []
    deltas: list[float] = []
    rhos: list[float] = [rho]
    gs: list[np.ndarray] = [g] if kw else []
    while True:
        q = op.matvec(p)
        delta = float(np.real(red.dot(p, q)))
        if not math.isfinite(delta):
            reason = ConvergedReason.DIVERGED_NAN_OR_INF
            break
        if not delta > 0:
            reason = ConvergedReason.DIVERGED_INDEFINITE_MAT
            break
        alpha = rho / delta
        if collect and len(kept_p) < ell:
            kept_p.append(p.copy())
            kept_ap.append(np.array(q, dtype=dtype, copy=True))
            deltas.append(delta)
            alphas.append(alpha)
        x += alpha * p
        r -= alpha * q
        reason = monitor.step(red.norm(r))
        if reason is not None:
            break
        z = np.asarray(pc.apply(r), dtype=dtype)
        rho_next, g_next = red.dot_and_rows(r, z, aw_rows if kw else None, real)
        rho_next = float(np.real(rho_next))
        if not math.isfinite(rho_next):
            reason = ConvergedReason.DIVERGED_NAN_OR_INF
            break
        if not rho_next > 0:
            reason = ConvergedReason.DIVERGED_INDEFINITE_PC
            break
        p *= rho_next / rho
        p += z
        rho = rho_next
        if collect and len(rhos) <= ell:
            rhos.append(rho)
        if kw:
            g = g_next
            p -= g @ w_rows
            if collect and len(gs) <= ell:
                gs.append(g)
    if collect:
        updated = _rcg_ritz_update(w_rows, aw_rows, maw_rows, kept_p, kept_ap, alphas, deltas,
                                   rhos, gs, k, real, dtype, red)
        if updated is not None:
            w_rows, aw_rows = updated
    return reason, w_rows, aw_rows


def _rcg_ritz_update(w_rows, aw_rows, maw_rows, kept_p, kept_ap, alphas, deltas, rhos, gs, k,
                     real, dtype, red: Reduction = LOCAL_REDUCTION):
    """Ritz vectors of ``M A`` in the A inner product over ``S = [W, P]``: the new ``(W, AW)``.

    ``Sᴴ A S = diag(I, pⱼᴴApⱼ)``. ``Sᴴ A M A S`` from the CG coefficients, with
    ``A pⱼ = (rⱼ − rⱼ₊₁)/αⱼ``, ``M A pⱼ = (zⱼ − zⱼ₊₁)/αⱼ`` and ``rᵢᴴ zⱼ = δᵢⱼ ρⱼ``: a
    tridiagonal ``P`` block with diagonal ``(ρⱼ + ρⱼ₊₁)/αⱼ²`` and off-diagonal
    ``−ρⱼ₊₁/(αⱼ αⱼ₊₁)``, and ``(AW)ᴴ M A pⱼ = (gⱼ − gⱼ₊₁)/αⱼ``. The ``k`` smallest Ritz values
    are kept; their vectors are A-orthonormal.
    """
    kw = 0 if w_rows is None else w_rows.shape[0]
    # column j needs ρⱼ₊₁ (and gⱼ₊₁): only steps that CG carried one step further
    usable = min(len(kept_p), len(rhos) - 1)
    if kw:
        usable = min(usable, len(gs) - 1)
    if usable <= 0:
        return None
    size = kw + usable
    dense = np.float64 if real else np.complex128
    stiffness = np.zeros((size, size), dtype=dense)  # Sᴴ A M A S
    mass = np.zeros((size, size), dtype=dense)  # Sᴴ A S
    alpha = np.asarray(alphas[:usable])
    rho = np.asarray(rhos[:usable + 1])
    if kw:
        kww = red.gram(aw_rows, maw_rows, real)
        stiffness[:kw, :kw] = 0.5 * (kww + np.conj(kww.T))
        mass[:kw, :kw] = np.eye(kw)
        g = np.column_stack(gs[:usable + 1])  # [kw, usable + 1]
        cross = (g[:, :usable] - g[:, 1:]) / alpha
        stiffness[:kw, kw:] = cross
        stiffness[kw:, :kw] = np.conj(cross.T)
    off = -rho[1:usable] / (alpha[:-1] * alpha[1:])
    stiffness[kw:, kw:] = (np.diag((rho[:usable] + rho[1:]) / alpha**2)
                           + np.diag(off, 1) + np.diag(off, -1))
    mass[kw:, kw:] = np.diag(np.asarray(deltas[:usable]))
    if not (np.all(np.isfinite(stiffness)) and np.all(np.isfinite(mass))):
        return None
    try:
        _, vectors = sla.eigh(stiffness, mass, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    coeff = vectors[:, :min(k, size)].T.astype(dtype)  # rows: combinations of S
    new_w = coeff[:, kw:] @ np.asarray(kept_p[:usable])
    new_aw = coeff[:, kw:] @ np.asarray(kept_ap[:usable])
    if kw:
        new_w += coeff[:, :kw] @ w_rows
        new_aw += coeff[:, :kw] @ aw_rows
    if not red.all_true(bool(np.all(np.isfinite(new_w)) and np.all(np.isfinite(new_aw)))):
        return None
    return new_w, new_aw


def _store_rcg_space(space: RecycleSpace, w_rows, aw_rows, op, pc, info: dict) -> None:
    space._remember_operator(op, pc, None)
    if w_rows is None or w_rows.shape[0] == 0:
        space._drop_space()
        info["recycle_dim"] = 0
        return
    space.method = "rcg"
    space.basis, space.basis_in_y = w_rows, False
    space.solution_rows = w_rows
    space.image_rows = aw_rows
    space.coupling = None
    info["recycle_dim"] = int(w_rows.shape[0])


# --------------------------------------------------------------------------------------------
# The stateful solver
# --------------------------------------------------------------------------------------------


def _is_tuner(value: Any) -> bool:
    return hasattr(value, "suggest") and hasattr(value, "observe")


class RecyclingSolver:
    """Solves a sequence of related systems, carrying a recycle space from each to the next.

    Args:
        method: ``"gcrodr"`` (any nonsingular A; default) or ``"rcg"`` (Hermitian positive
            definite A and M).
        m: for GCRO-DR the search space dimension of a cycle (``restart``); for ``rcg`` the
            number ``ℓ`` of CG directions that join ``W`` in the Ritz update. Default 40.
        k: recycled dimension, ``0 <= k < m`` (default 20). May be a tuner
            (``suggest``/``observe``), which then sees the iteration count of every solve.
        rtol, atol, maxiter: stopping parameters as in :func:`pdesuite.solvers.solve`
            (defaults 1e-8, 0, 10,000).
        M: preconditioner for the solves that are given none: a name (``"ilu"``, ``"jacobi"``,
            ...; built afresh from each matrix), a Preconditioner, a matrix or a callable.
        side: ``"right"`` (default) or ``"left"`` preconditioning for GCRO-DR.
        stale_threshold: the space is dropped when its slowness under a new operator exceeds
            this (default 0.7) and that operator stretches it more than :data:`STALE_GROWTH`
            times as much as the old one (see the module docstring); ``info["recycle_reset"]``
            then says so.
        solutions: how many previous solutions join the initial projection (default 4, one
            product each per solve; 0 for GCRO-DR / deflated CG alone). See :class:`RecycleSpace`.
        **options: further options of :func:`solve` (``pc_*`` options of a named
            preconditioner, ``reorthogonalize``, ...).

    ``solve(A, b)`` returns a :class:`SolveResult` whose ``info`` adds ``recycle_dim`` (the
    dimension the next solve starts from), ``recycle_reset``, ``reason_reset``,
    ``recycle_slowness``, ``recycle_growth``, ``projection_reduction`` (and GCRO-DR's
    ``cycles`` and ``recycle_updates``), ``solves`` and ``resets`` (counts so far).
    When ``A`` and ``M`` are the very objects of the previous call, the stored images are
    reused after a one-product check instead of ``k`` products; a matrix changed in place is
    caught by that check.
    """

    def __init__(self, method: str = "gcrodr", m: int = 40, k: Any = 20, rtol: float = 1e-8,
                 atol: float = 0.0, maxiter: int = 10_000, M: Any = None, side: str = "right",
                 stale_threshold: float = 0.7, solutions: int = 4, **options: Any):
        if not isinstance(method, str) or method.lower() not in RECYCLING_METHODS:
            raise ValueError(f"method: must be one of {RECYCLING_METHODS}, got {method!r}")
        self.method = method.lower()
        self.m = _check_int("m", m, 1)
        if not _is_tuner(k):
            k = _check_int("k", k, 0)
            if k >= self.m:
                raise ValueError(f"k: must be smaller than m={self.m}, got k={k}")
        self.k = k
        if side not in SIDES:
            raise ValueError(f"side: must be one of {SIDES}, got {side!r}")
        self.side = side
        self.stale_threshold = _check_threshold(stale_threshold)
        from pdesuite.solvers.api import validate_tolerances

        self.maxiter = validate_tolerances(rtol, atol, maxiter)
        self.rtol, self.atol = float(rtol), float(atol)
        self.M = M
        for reserved in ("restart", "recycle", "method", "ell"):
            if reserved in options:
                raise TypeError(f"{reserved}: set by RecyclingSolver itself; use m and k")
        self.options = options
        self.space = RecycleSpace(solutions=solutions)
        self.solves = 0
        self.resets = 0
        self._last_A: Any = None
        self._last_M: Any = None

    @property
    def recycle_dim(self) -> int:
        """Dimension of the space the next solve starts from."""
        return self.space.dim

    def reset(self) -> None:
        """Forget the recycle space and the stored solutions; the next solve starts afresh."""
        self.space.clear()
        self._last_A = self._last_M = None

    def solve(self, A: Any, b: Any, x0: Any = None, M: Any = None, callback: Any = None,
              context: Any = None) -> SolveResult:
        """Solve ``A x = b`` (``[n, n]``, ``[n]``) starting from the stored space.

        ``M`` overrides the solver's preconditioner for this call; ``callback`` and
        ``context`` are those of :func:`pdesuite.solvers.solve`.
        """
        from pdesuite.solvers.api import solve as api_solve

        preconditioner = self.M if M is None else M
        self.space.same_operator_hint = (self.space.dim > 0 and A is self._last_A
                                         and preconditioner is self._last_M)
        options = dict(self.options)
        options.update(recycle=self.space, k=self.k, stale_threshold=self.stale_threshold)
        if self.method == "gcrodr":
            options.update(restart=self.m, side=self.side)
        else:
            options["ell"] = self.m
        try:
            result = api_solve(A, b, method=self.method, M=preconditioner, x0=x0, rtol=self.rtol,
                               atol=self.atol, maxiter=self.maxiter, callback=callback,
                               context=context, **options)
        finally:
            self.space.same_operator_hint = False
        self._last_A, self._last_M = A, preconditioner
        self.solves += 1
        if result.info.get("recycle_reset"):
            self.resets += 1
        result.info["recycle_dim"] = self.space.dim
        result.info["solves"] = self.solves
        result.info["resets"] = self.resets
        return result

    def __repr__(self) -> str:
        return (f"RecyclingSolver(method={self.method!r}, m={self.m}, k={self.k!r}, "
                f"recycle_dim={self.recycle_dim}, solves={self.solves})")
