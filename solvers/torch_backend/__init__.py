"""The torch backend: CG, flexible CG, GMRES(m) and FGMRES(m), batched over right-hand sides.

``solve(A, b)`` with ``b`` of shape ``[n, B]`` solves the ``B`` systems ``A x_j = b_j`` at once,
on the device and in the dtype of ``A``/``b`` (CPU or CUDA; float32 or float64). Every column
keeps its own scalars (step lengths, Givens rotations, convergence state), so a column's
iterates are those of the method run on that column alone; the columns only share the products
with ``A`` and the preconditioner, which act on the whole ``[n, B]`` block. A column that has
converged or failed is frozen (its updates are masked to zero) while the others go on.

``A`` is a torch sparse tensor (COO, CSR or CSC), a dense tensor, a SciPy sparse matrix or NumPy
array (converted with :func:`to_torch_sparse` / ``torch.as_tensor``), or a callable
``matvec(X: [n, B]) -> [n, B]``, so that a matrix-free operator or a network can be ``A``.
``M`` approximates ``A⁻¹`` on ``[n, B]`` blocks; a network is nonlinear: give it a
``linear = False`` attribute and use a flexible method, ``"fcg"`` (whose ``mmax=2,
normalize_input=True`` is the direction update of the Deep Conjugate Direction Method) or
``"fgmres"``. Options have the names and defaults of :mod:`pdesuite.solvers.vocabulary`.

Modules, in the order a solve uses them: ``options`` (method names, options and their checks),
``convert`` (A, b, x0 to torch blocks), ``preconditioner`` (M), ``monitor`` (per-column status
and best iterate), ``methods`` (the iterations), ``api`` (:func:`solve`).

torch is imported only when a function of this package runs, never by importing it.
"""

from pdesuite.solvers.torch_backend.api import option_defaults, solve
from pdesuite.solvers.torch_backend.convert import to_torch_sparse
from pdesuite.solvers.torch_backend.options import FLEXIBLE_METHODS, METHODS
from pdesuite.solvers.torch_backend.preconditioner import NAMED_PRECONDITIONERS

__all__ = [
    "FLEXIBLE_METHODS",
    "METHODS",
    "NAMED_PRECONDITIONERS",
    "option_defaults",
    "solve",
    "to_torch_sparse",
]
