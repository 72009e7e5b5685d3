"""The state a sequence of recycling solves shares, and the tests of whether it still fits.

A recycled space is worth keeping while it stays *slow*: its vectors are those the iteration
operator ``B`` stretches least. Its *slowness*, the RMS of ``‖B u‖/‖u‖`` over its vectors divided
by ``‖B g‖/‖g‖`` for a fixed random ``g`` (one more product), is scale-free: small along a
slowly varying sequence, about 1 once the unknowns are renumbered (``P A Pᵀ``), where the old
vectors are as good as random. A strong preconditioner clusters the spectrum, so that even the
slowest vectors are not much slower than random ones. So a space is dropped (and
``info["recycle_reset"]`` says why) only when its slowness exceeds ``stale_threshold`` *and* the
new operator stretches its vectors more than :data:`STALE_GROWTH` times as much, in RMS, as the
operator it was built for (the old images are stored, so this costs no product).
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Optional

import numpy as np

from pdesuite.solvers.reduction import LOCAL_REDUCTION, Reduction
from pdesuite.solvers.validation import check_int, check_real

#: A stored space that is not slow under a new operator is still kept while that operator
#: stretches it at most this much more (RMS) than the operator it was built for.
STALE_GROWTH = 2.0


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
        self.solutions_kept = check_int("solutions", solutions, 0)
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
        return (
            f"RecycleSpace(method={self.method!r}, dim={self.dim}, solutions={len(self.solutions)})"
        )




def check_stale_threshold(value: Any) -> float:
    return check_real("stale_threshold", value, low=0.0)


def check_recycle(recycle: Any) -> Optional[RecycleSpace]:
    if recycle is not None and not isinstance(recycle, RecycleSpace):
        raise ValueError(f"recycle: expected a RecycleSpace or None, got {type(recycle).__name__}")
    return recycle


def measure_slowness(rows: np.ndarray, image_rows: np.ndarray, apply, n: int, dtype,
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


def stretch_growth(
    new_images: np.ndarray, old_images: Optional[np.ndarray], red: "Reduction"
) -> float:
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


def stale_reason(slowness: float, growth: float, stale_threshold: float) -> Optional[str]:
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


def products(apply, rows: np.ndarray) -> np.ndarray:
    """``[apply(rows_i)]``, one call per row (so that every product is counted)."""
    out = np.empty_like(rows)
    for i in range(rows.shape[0]):
        out[i] = apply(rows[i])
    return out


def previous_solutions(space: Optional[RecycleSpace], n: int, dtype: np.dtype,
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


def store_solution(space: Optional[RecycleSpace], x: np.ndarray, red: "Reduction",
                    replace_last: bool = False) -> None:
    if space is not None and space.solutions_kept and red.all_true(bool(np.all(np.isfinite(x)))):
        if replace_last and space.solutions:
            space.solutions.pop()
        space.solutions.append(x.copy())
        del space.solutions[:-space.solutions_kept]


def same_operator_by_probe(space: RecycleSpace, apply, dtype: np.dtype, red: "Reduction") -> bool:
    """One product on a fixed random combination: does ``apply(U g) = C g`` still hold?"""
    # ``space.dim`` numbers, the same on every rank: a combination, not a long vector
    probe = np.random.default_rng(0).standard_normal(space.dim)
    lhs = apply(probe @ space.solution_rows.astype(dtype, copy=False))
    rhs = probe @ space.image_rows.astype(dtype, copy=False)
    return bool(red.norm(lhs - rhs) <= 1e-10 * max(red.norm(rhs), 1e-300))


#: State that must survive the api's true-residual retries, which call a method again with the
#: same monitor: a private recycle space when none was given, and counters to add up.
_RETRIES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def within_solve(monitor: Any, recycle: Optional[RecycleSpace], private: bool):
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


def accumulate(info: dict, carried: dict, keys: tuple[str, ...]) -> None:
    totals = carried["totals"]
    for key in keys:
        totals[key] = totals.get(key, 0) + info.get(key, 0)
        info[key] = totals[key]
    # what the first try measured on the stored space stays the answer for the whole solve
    for key in ("recycle_slowness", "recycle_growth"):
        if info.get(key) is None:
            info[key] = carried.get(key)
        carried[key] = info[key]


def truncate(space: RecycleSpace, dim: int) -> None:
    """Keep the leading ``dim`` vectors (the most important ones after a Ritz update)."""
    for name in ("basis", "solution_rows", "image_rows"):
        rows = getattr(space, name)
        if rows is not None:
            setattr(space, name, rows[:dim])
    if space.coupling is not None:
        space.coupling = space.coupling[:dim, :dim]


def record_reset(space: RecycleSpace, info: dict, reset_reason: Optional[str], op: Any, pc: Any,
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

