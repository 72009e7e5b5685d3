"""``RecyclingSolver``: one recycle space carried along a sequence of related systems."""

from __future__ import annotations

from typing import Any, Optional

from pdesuite.solvers.recycling.gcrodr import check_gcrodr_options
from pdesuite.solvers.recycling.rcg import check_rcg_options
from pdesuite.solvers.recycling.space import RecycleSpace
from pdesuite.solvers.result import SolveResult
from pdesuite.solvers.tuning import is_tuner
from pdesuite.solvers.validation import (
    check_choice,
    check_known_options,
    check_tolerances,
    split_preconditioner_options,
)
from pdesuite.solvers.vocabulary import DEFAULT_ATOL, DEFAULT_RTOL, METHOD_DEFAULTS

#: The recycling methods, registered by :mod:`pdesuite.solvers.recycling`.
RECYCLING_METHODS = ("gcrodr", "rcg")


class RecyclingSolver:
    """Solves a sequence of related systems, carrying a recycle space from each to the next.

    Args:
        method: ``"gcrodr"`` (any nonsingular A; default) or ``"rcg"`` (Hermitian positive
            definite A and M).
        M: preconditioner for the solves that are given none: a name (``"ilu"``, ``"jacobi"``,
            ...; built afresh from each matrix), a Preconditioner, a matrix or a callable.
        rtol, atol, maxiter: stopping parameters as in :func:`pdesuite.solvers.solve`, with
            its defaults (:mod:`pdesuite.solvers.vocabulary`).
        solutions: how many previous solutions join the initial projection (default 4, one
            product each per solve; 0 for GCRO-DR / deflated CG alone). See :class:`RecycleSpace`.
        **options: options of the method, under the names and with the defaults of
            ``solve(..., method=method)``: for GCRO-DR ``restart`` (m, 40), ``k`` (20),
            ``side``, ``stale_threshold``, ``reorthogonalize``, ``update_period``; for rcg
            ``k`` (20), ``ell``, ``stale_threshold``; and ``pc_*`` options of a named
            preconditioner. ``k`` may be a tuner (``suggest``/``observe``), which then sees
            the iteration count of every solve.

    ``solve(A, b)`` returns a :class:`SolveResult` whose ``info`` adds ``recycle_dim`` (the
    dimension the next solve starts from), ``recycle_reset``, ``reason_reset``,
    ``recycle_slowness``, ``recycle_growth``, ``projection_reduction`` (and GCRO-DR's
    ``cycles`` and ``recycle_updates``), ``solves`` and ``resets`` (counts so far).
    When ``A`` and ``M`` are the very objects of the previous call, the stored images are
    reused after a one-product check instead of ``k`` products; a matrix changed in place is
    caught by that check.
    """

    def __init__(self, method: str = "gcrodr", M: Any = None, rtol: float = DEFAULT_RTOL,
                 atol: float = DEFAULT_ATOL, maxiter: Optional[int] = None, solutions: int = 4,
                 **options: Any):
        self.method = check_choice("method", method, RECYCLING_METHODS)
        self.rtol, self.atol, self.maxiter = check_tolerances(rtol, atol, maxiter)
        method_options, _ = split_preconditioner_options(options)
        if "m" in method_options:
            raise TypeError("m: unknown option; the cycle length of GCRO-DR is restart, the "
                            "number of CG directions of rcg is ell")
        if "recycle" in method_options:
            raise TypeError("recycle: RecyclingSolver carries its own space; use solve(..., "
                            "recycle=space) to pass one by hand")
        known = [name for name in METHOD_DEFAULTS[self.method] if name != "recycle"]
        check_known_options(self.method, method_options, known, "numpy")
        # Check every option now, not at the first solve; a tuned k is checked per solve.
        tuned_k = is_tuner(method_options.get("k"))
        given = {name: value for name, value in method_options.items()
                 if not (name == "k" and tuned_k)}
        if self.method == "gcrodr":
            checked = check_gcrodr_options(**({"k": 0} if tuned_k else {}), **given)
        else:
            checked = check_rcg_options(**given)
        options.update({name: checked[name] for name in given})
        self.M = M
        self.options = options
        self.space = RecycleSpace(solutions=solutions)
        self.solves = 0
        self.resets = 0
        self._last_A: Any = None
        self._last_M: Any = None

    @property
    def k(self) -> Any:
        """The recycled dimension (or its tuner)."""
        return self.options.get("k", METHOD_DEFAULTS[self.method]["k"])

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
        try:
            result = api_solve(A, b, method=self.method, M=preconditioner, x0=x0, rtol=self.rtol,
                               atol=self.atol, maxiter=self.maxiter, callback=callback,
                               context=context, recycle=self.space, **self.options)
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
        options = ", ".join(f"{name}={value!r}" for name, value in self.options.items())
        return (f"RecyclingSolver(method={self.method!r}, {options}, "
                f"recycle_dim={self.recycle_dim}, solves={self.solves})")
