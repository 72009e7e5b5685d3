"""pdesuite: a solver suite for PDEs and operators.

Layers (each a subpackage):

- ``pdesuite.discretization``: grids, meshes, FD and FE (basix) spaces, assembly, transfer.
- ``pdesuite.solvers``: Krylov methods, recycling, relaxation, tuning, NumPy/PETSc/torch backends.
- ``pdesuite.datasets``: PDE families, generation into HDF5, loaders.
- ``pdesuite.operators``: neural operators, training, learned preconditioners.
- ``pdesuite.dynamics``: Koopman operators and state-space models.

Importing ``pdesuite`` imports none of the layers, and never torch.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("pdesuite")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

LAYERS = ("discretization", "solvers", "datasets", "operators", "dynamics")

__all__ = ["__version__", "LAYERS"]
