"""Grids, meshes, FD and FE (basix) spaces, assembly, boundary conditions and transfer.

Finite differences live on a structured :class:`Grid` (``fd.diffusion``, ``fd.helmholtz``, ...);
finite elements on a :class:`Mesh` with a :class:`LagrangeSpace` of degree 1 or 2. Both
assemble to a :class:`LinearSystem` (CSR with int32 indices, Dirichlet DoFs eliminated).
This layer imports nothing else of pdesuite, and no torch: a field ``[C, *shape]`` becomes a
tensor by ``torch.as_tensor`` where torch is used.
"""

from pdesuite.discretization import fd
from pdesuite.discretization.boundary import Dirichlet, Neumann, Periodic
from pdesuite.discretization.fd import advection_diffusion, diffusion, free_dofs, helmholtz, mass
from pdesuite.discretization.fe import (
    FEFunction,
    LagrangeSpace,
    advection_matrix,
    helmholtz_matrix,
    integrate,
    l2_error,
    load_vector,
    mass_matrix,
    neumann_load,
    stiffness_matrix,
)
from pdesuite.discretization.fe_system import assemble_system, normalize_fe_bcs, poisson_system
from pdesuite.discretization.grid import Grid
from pdesuite.discretization.mesh import Mesh
from pdesuite.discretization.system import LinearSystem, as_csr32
from pdesuite.discretization.transfer import (
    coarsen,
    fe_prolongation,
    prolongation,
    refine,
    restriction,
)

__all__ = [
    "Dirichlet", "FEFunction", "Grid", "LagrangeSpace", "LinearSystem", "Mesh", "Neumann",
    "Periodic", "advection_diffusion", "advection_matrix", "as_csr32", "assemble_system",
    "coarsen", "diffusion", "fd", "fe_prolongation", "free_dofs", "helmholtz",
    "helmholtz_matrix", "integrate", "l2_error", "load_vector", "mass", "mass_matrix",
    "neumann_load", "normalize_fe_bcs", "poisson_system", "prolongation", "refine",
    "restriction", "stiffness_matrix",
]
