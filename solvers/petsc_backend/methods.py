"""The methods of the PETSc backend: one table that the solver reads, and ``option_defaults``.

PETSc's own implementations: ``cg``, ``fcg`` (``mmax``), ``gmres`` (``restart``, ``side``,
``reorthogonalize``), ``fgmres`` (``restart``, ``reorthogonalize``), ``bicgstab`` (BCGS, right
preconditioned), ``minres`` (stopped at a least-squares plateau, see
:data:`MINRES_PLATEAU`), ``richardson`` (``omega``, PETSc's scale); and the suite's own as
python KSPs (:mod:`.ksp`): ``gcrodr``, ``rcg`` and ``dcdm``. Names and defaults are those of
:mod:`pdesuite.solvers.vocabulary`; :func:`option_defaults` reports what this table (for
PETSc's methods) and the constructors of the python KSPs (for ours) actually use, so that a
test compares them with the vocabulary.

Norms
-----
The norm type is chosen so that PETSc's default test *is* the suite's contract
``‖b − A x‖ ≤ max(rtol·‖b‖, atol)`` on the method's own residual wherever the method supports
it without extra work: ``KSP_NORM_UNPRECONDITIONED`` for cg, fcg and richardson (left PC), and
for gmres, fgmres and bicgstab with right preconditioning (for CG this costs the same one
reduction per iteration as the preconditioned norm); PETSc's preconditioned norm for minres (its
unpreconditioned norm costs a second matvec per iteration) and for left-preconditioned gmres
(which supports no other norm). ``result.residuals`` then holds preconditioned norms.

Counts
------
PETSc offers no per-KSP matvec counter (its event log counts every ``MatMult``, including
those inside GAMG's smoothers), so ``matvecs`` and ``precond_applies`` of PETSc's methods are
computed from the structure of PETSc 3.26's implementations, as functions of the iterations,
the restart cycles and whether the initial guess is nonzero; the tests check them against
PETSc's event log for preconditioners without inner products. cg, fcg, richardson and minres
take one matvec per iteration, bicgstab two, plus one for a nonzero initial guess; gmres and
fgmres add one per restart, with ``cycles = ⌈its/restart⌉``, which misses one matvec in the
rare case that convergence is detected on a restart's recomputed residual (``counts_exact`` is
False for these two). The python KSPs count their own products exactly.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from petsc4py import PETSc

from pdesuite.solvers.arnoldi import STAGNATION_FACTOR, check_reorthogonalize
from pdesuite.solvers.petsc_backend.ksp import DcdmKSP, GcrodrKSP, RecyclingCGKSP
from pdesuite.solvers.validation import check_int, check_real
from pdesuite.solvers.vocabulary import method_default

__all__ = ["METHODS", "MethodSpec", "SPECS", "option_defaults"]

UNPRECONDITIONED, PRECONDITIONED = "unpreconditioned", "preconditioned"

#: ``reorthogonalize`` → PETSc's KSPGMRESCGSRefinementType (one classical Gram–Schmidt pass,
#: a second when the first cancelled most of the vector, or always two). petsc4py has no
#: setter; the option is ``-ksp_orthogonalization_cgs_refinement_type`` since PETSc 3.26
#: (``-ksp_gmres_cgs_refinement_type`` before, deprecated), read by GMRES and FGMRES alike.
_CGS_REFINEMENT = {
    "never": "REFINE_NEVER",
    "ifneeded": "REFINE_IFNEEDED",
    "always": "REFINE_ALWAYS",
}

#: ``set_option(name, value)``: a setting in the options database under the solver's prefix.
SetOption = Callable[[str, Any], None]


@dataclass(frozen=True)
class MethodSpec:
    """One method of the PETSc backend."""

    #: PETSc's KSP type (``"python"`` for the suite's own methods)
    ksp_type: str
    #: allowed PC sides; the default is ``options["side"]`` when the method has that option,
    #: else the only one
    sides: tuple[str, ...]
    #: side → norm type the method runs with (see the module docstring)
    norms: dict[str, str]
    #: correct with a nonlinear preconditioner
    flexible: bool
    #: matvecs of one KSPSolve as a function of (iterations, cycles, nonzero guess)
    matvecs: Callable[[int, int, int], int]
    #: PC applications as a function of (iterations, cycles, nonzero guess, side, stopped at max_it)
    pc_applies: Callable[[int, int, int, str, int], int]
    #: options → defaults of PETSc's own methods (the python KSPs' come from their constructors)
    native_options: dict[str, Any] = field(default_factory=dict)
    #: configures the KSP from the validated options: ``configure(ksp, options, set_option)``
    configure: Optional[Callable[["PETSc.KSP", dict[str, Any], SetOption], None]] = None
    #: whether the counts are exact (see the module docstring)
    exact: bool = True
    #: for the suite's own methods: the python-KSP context class (it counts its own products)
    python_context: Optional[type] = None

    @property
    def options(self) -> dict[str, Any]:
        """The options the method takes, with the defaults it uses."""
        if self.python_context is None:
            return dict(self.native_options)
        parameters = inspect.signature(self.python_context).parameters
        return {name: p.default for name, p in parameters.items()
                if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD}

    def default_side(self) -> str:
        return self.options.get("side", self.sides[0])


def _gmres(ksp: "PETSc.KSP", options: dict[str, Any], set_option: SetOption) -> None:
    ksp.setGMRESRestart(check_int("restart", options["restart"], 1))
    refinement = check_reorthogonalize(options["reorthogonalize"])
    set_option("ksp_orthogonalization_cgs_refinement_type", _CGS_REFINEMENT[refinement])


def _fcg(ksp: "PETSc.KSP", options: dict[str, Any], set_option: SetOption) -> None:
    set_option("ksp_fcg_mmax", check_int("mmax", options["mmax"], 1))


def _richardson(ksp: "PETSc.KSP", options: dict[str, Any], set_option: SetOption) -> None:
    set_option("ksp_richardson_scale", check_real("omega", options["omega"], nonzero=True))


#: PETSc's MINRES never stops on a singular, inconsistent system: round-off keeps its Lanczos
#: process going after the Krylov space became invariant, at the least-squares residual. Two
#: consecutive steps without progress cannot happen in exact arithmetic before that (two
#: consecutive tridiagonal sections cannot both be singular), so a residual that has not shrunk
#: below :data:`~pdesuite.solvers.arnoldi.STAGNATION_FACTOR` of its value this many iterations
#: earlier ends the solve with DIVERGED_BREAKDOWN.
MINRES_PLATEAU = 10


class _LeastSquaresPlateau:
    """A convergence test added after PETSc's own (one Python call per iteration)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def __call__(self, ksp: "PETSc.KSP", its: int, rnorm: float) -> int:
        if its == 0:
            self.norms = []
        self.norms.append(rnorm)
        if its >= MINRES_PLATEAU and rnorm >= STAGNATION_FACTOR * self.norms[its - MINRES_PLATEAU]:
            return PETSc.KSP.ConvergedReason.DIVERGED_BREAKDOWN
        return 0


def _minres(ksp: "PETSc.KSP", options: dict[str, Any], set_option: SetOption) -> None:
    ksp.addConvergenceTest(_LeastSquaresPlateau())


def _defaults(method: str, *names: str) -> dict[str, Any]:
    """The vocabulary's defaults of the options ``names`` of ``method`` that PETSc offers."""
    return {name: method_default(method, name) for name in names}


def _no_count(*args: Any) -> int:
    return 0  # a python KSP counts its products itself


_U, _P = UNPRECONDITIONED, PRECONDITIONED

#: The table. Counts as functions of (its, cycles, nonzero guess) and (..., side, stopped at
#: maxiter), read off PETSc 3.26's event log; the tests check them.
SPECS: dict[str, MethodSpec] = {
    "cg": MethodSpec("cg", ("left",), {"left": _U}, False,
                     lambda k, c, g: k + g, lambda k, c, g, s, cap: k + cap),
    "fcg": MethodSpec("fcg", ("left",), {"left": _U}, True,
                      lambda k, c, g: k + g, lambda k, c, g, s, cap: k + cap,
                      native_options=_defaults("fcg", "mmax"), configure=_fcg),
    "gmres": MethodSpec("gmres", ("left", "right"), {"left": _P, "right": _U}, False,
                        lambda k, c, g: k + (c - 1) + g,
                        lambda k, c, g, s, cap: k + c + (g if s == "left" else 0),
                        native_options=_defaults("gmres", "restart", "side", "reorthogonalize"),
                        configure=_gmres, exact=False),
    "fgmres": MethodSpec("fgmres", ("right",), {"right": _U}, True,
                         lambda k, c, g: k + (c - 1) + g, lambda k, c, g, s, cap: k,
                         native_options=_defaults("fgmres", "restart", "reorthogonalize"),
                         configure=_gmres, exact=False),
    "bicgstab": MethodSpec("bcgs", ("right",), {"right": _U}, False,
                           lambda k, c, g: 2 * k + g, lambda k, c, g, s, cap: 2 * k + 1),
    "minres": MethodSpec("minres", ("left",), {"left": _P}, False,
                         lambda k, c, g: k + g, lambda k, c, g, s, cap: k + 1 + g,
                         configure=_minres),
    "richardson": MethodSpec("richardson", ("left",), {"left": _U}, False,
                             lambda k, c, g: k + g, lambda k, c, g, s, cap: k,
                             native_options=_defaults("richardson", "omega"),
                             configure=_richardson),
    "gcrodr": MethodSpec("python", ("right", "left"), {"right": _U, "left": _P}, True,
                         _no_count, _no_count, python_context=GcrodrKSP),
    "rcg": MethodSpec("python", ("left",), {"left": _U}, False, _no_count, _no_count,
                      python_context=RecyclingCGKSP),
    "dcdm": MethodSpec("python", ("left",), {"left": _U}, True, _no_count, _no_count,
                       python_context=DcdmKSP),
}

#: Method names of the PETSc backend.
METHODS: tuple[str, ...] = tuple(SPECS)


def method_spec(method: Any) -> tuple[str, MethodSpec]:
    """``(name, spec)`` of ``method`` (case-insensitive); ValueError naming ``method``."""
    key = method.lower() if isinstance(method, str) else method
    if key not in SPECS:
        raise ValueError(f"method: unknown method {method!r} for the PETSc backend; "
                         f"choose from {list(METHODS)}")
    return key, SPECS[key]


def option_defaults(method: str) -> dict[str, Any]:
    """The options ``method`` takes on the PETSc backend, with the defaults it uses.

    Read from the table the solver configures PETSc's methods from, and from the constructor
    signatures of the python KSPs (:class:`GcrodrKSP`, :class:`RecyclingCGKSP`,
    :class:`DcdmKSP`). Every name
    and default should be that of :data:`pdesuite.solvers.vocabulary.METHOD_DEFAULTS`.
    """
    return method_spec(method)[1].options
