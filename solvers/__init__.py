"""Solvers: Krylov methods, recycling, relaxation, tuning, three backends, and a direct solve.

The solvers know nothing of PDEs: they take matrices, vectors, LinearOperator-likes and
callables. ``solve`` is the one entry point; ``METHODS`` lists the NumPy-backend methods.
"""

from pdesuite.solvers.api import BACKENDS, solve
from pdesuite.solvers.direct import DirectSolver
from pdesuite.solvers.recycling import RecycleSpace, RecyclingSolver
from pdesuite.solvers.preconditioner import (
    BasePreconditioner,
    FunctionPreconditioner,
    ICPreconditioner,
    IdentityPreconditioner,
    ILUPreconditioner,
    JacobiPreconditioner,
    MatrixPreconditioner,
    NAMED_PRECONDITIONERS,
    Preconditioner,
    to_linear_operator,
)
from pdesuite.solvers.registry import METHODS
from pdesuite.solvers.relaxation import RelaxationPreconditioner, young_omega
from pdesuite.solvers.result import ConvergedReason, SolveResult, SolverError
from pdesuite.solvers.vocabulary import DEFAULT_ATOL, DEFAULT_MAXITER, DEFAULT_RESTART, DEFAULT_RTOL
from pdesuite.solvers.tuning import (
    ChebCB,
    ContextualTsallisINF,
    FixedTuner,
    OracleTuner,
    TsallisINF,
    Tuner,
    YoungTuner,
    omega_grid,
)

# The method modules register themselves in METHODS on import (unused names: F401), after the
# names they use.
from pdesuite.solvers import krylov as _krylov  # noqa: F401
from pdesuite.solvers import recycling as _recycling  # noqa: F401
from pdesuite.solvers import direct as _direct  # noqa: F401
from pdesuite.solvers import dcdm as _dcdm  # noqa: F401

__all__ = [
    "BACKENDS",
    "DEFAULT_ATOL",
    "DEFAULT_MAXITER",
    "DEFAULT_RESTART",
    "DEFAULT_RTOL",
    "METHODS",
    "NAMED_PRECONDITIONERS",
    "BasePreconditioner",
    "ChebCB",
    "ContextualTsallisINF",
    "DirectSolver",
    "FixedTuner",
    "OracleTuner",
    "RecycleSpace",
    "RecyclingSolver",
    "RelaxationPreconditioner",
    "TsallisINF",
    "Tuner",
    "YoungTuner",
    "omega_grid",
    "young_omega",
    "ConvergedReason",
    "FunctionPreconditioner",
    "ICPreconditioner",
    "ILUPreconditioner",
    "IdentityPreconditioner",
    "JacobiPreconditioner",
    "MatrixPreconditioner",
    "Preconditioner",
    "SolveResult",
    "SolverError",
    "solve",
    "to_linear_operator",
]
