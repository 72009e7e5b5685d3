"""Finite-element linear systems: boundary conditions on mesh facets, and assembled problems.

Dirichlet DoFs are eliminated from the assembled matrix, so symmetric problems stay symmetric;
:meth:`~.system.LinearSystem.expand` puts the boundary values back.
"""

from __future__ import annotations

from typing import Mapping, Sequence, Union

import numpy as np
import scipy.sparse as sp

from pdesuite.discretization.boundary import Dirichlet, Neumann, evaluate_boundary_data
from pdesuite.discretization.fe import (
    FacetSelection,
    Field,
    LagrangeSpace,
    check_space,
    load_vector,
    neumann_load,
    stiffness_matrix,
)
from pdesuite.discretization.mesh import Mesh
from pdesuite.discretization.system import LinearSystem, as_csr32

BoundarySpec = Union[
    None,
    Dirichlet,
    Neumann,
    Mapping[str, Union[Dirichlet, Neumann]],
    Sequence[tuple[FacetSelection, Union[Dirichlet, Neumann]]],
]


def normalize_fe_bcs(
    mesh: Mesh, bc: BoundarySpec
) -> list[tuple[np.ndarray, Dirichlet | Neumann, str]]:
    """``[(facets, condition, label), ...]`` covering the whole boundary, from any accepted ``bc``.

    Accepted: None (homogeneous Dirichlet everywhere); one Dirichlet or Neumann for the whole
    boundary; a dict tag name -> condition (tags of :attr:`Mesh.facet_tags`); a list of
    ``(facets, condition)`` with facets a tag name, an array of boundary edge indices, or None
    (whole boundary). Each facet may get one condition (ValueError otherwise). Boundary facets
    that no entry covers get homogeneous Dirichlet, as in the FD layer. A DoF shared by a
    Dirichlet and a Neumann facet (a corner) is a Dirichlet DoF; where two Dirichlet entries
    share a DoF, the later entry's value wins (the default entry comes first).
    """
    if bc is None:
        bc = Dirichlet()
    if isinstance(bc, (Dirichlet, Neumann)):
        entries = [(None, bc, "bc")]
    elif isinstance(bc, Mapping):
        entries = []
        for tag, cond in bc.items():
            if not isinstance(tag, str):
                raise TypeError(
                    f"bc: dict keys must be facet tag names, got {tag!r}; use a list of (facets, "
                    "condition) for index arrays"
                )
            entries.append((tag, cond, f"bc[{tag!r}]"))
    elif isinstance(bc, Sequence) and not isinstance(bc, (str, bytes)):
        entries = []
        for position, item in enumerate(bc):
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError(
                    f"bc[{position}]: expected a (facets, condition) pair, got {item!r}"
                )
            entries.append((item[0], item[1], f"bc[{position}]"))
    else:
        raise TypeError(
            "bc: expected None, Dirichlet, Neumann, a dict tag -> condition or a list of (facets, "
            f"condition), got {type(bc).__name__}"
        )
    resolved = []
    covered = np.zeros(mesh.n_edges, dtype=bool)
    for selection, cond, label in entries:
        if not isinstance(cond, (Dirichlet, Neumann)):
            raise TypeError(f"{label}: expected Dirichlet or Neumann, got {type(cond).__name__}")
        try:
            facets = mesh.facets(selection)
        except ValueError as err:
            raise ValueError(f"{label}: {err}") from None
        if not np.all(np.isin(facets, mesh.boundary_facets)):
            raise ValueError(f"{label}: facets must be boundary facets")
        if np.any(covered[facets]):
            raise ValueError(
                f"{label}: some of its facets already have a condition; give each facet one "
                "condition"
            )
        covered[facets] = True
        resolved.append((facets, cond, label))
    uncovered = mesh.boundary_facets[~covered[mesh.boundary_facets]]
    if uncovered.size:
        resolved.insert(0, (uncovered, Dirichlet(), "default homogeneous Dirichlet"))
    return resolved


def assemble_system(
    space: LagrangeSpace, matrix, rhs: np.ndarray, bc: BoundarySpec = None
) -> LinearSystem:
    """Apply boundary conditions to ``matrix @ u = rhs`` on all DoFs and eliminate the Dirichlet
    DoFs.

    Args:
        matrix: ``[ndofs, ndofs]`` sparse matrix assembled on ``space`` (no boundary terms).
        rhs: ``[ndofs]`` load vector.
        bc: see :func:`normalize_fe_bcs`. Dirichlet values are interpolated at the boundary DoF
            points (an array value must have one entry per ``space.boundary_dofs(facets)``, in
            that sorted order). Neumann fluxes ``a ∂u/∂n = g`` add ``∫ g φ_i ds`` to ``rhs``.

    Returns:
        A :class:`~.system.LinearSystem` on the free DoFs: ``A = matrix[free, free]`` (symmetric
        when ``matrix`` is) and ``b = rhs[free] - matrix[free, fixed] @ g`` (the lift moved into
        ``b``); ``system.expand(x)`` gives the full DoF vector.
    """
    space = check_space(space)
    matrix = sp.csr_array(matrix)
    if matrix.shape != (space.ndofs, space.ndofs):
        raise ValueError(
            f"matrix: expected shape ({space.ndofs}, {space.ndofs}), got {matrix.shape}"
        )
    rhs = np.array(rhs, dtype=float)
    if rhs.shape != (space.ndofs,):
        raise ValueError(f"rhs: expected shape ({space.ndofs},), got {rhs.shape}")
    lift = np.zeros(space.ndofs)
    fixed = np.zeros(space.ndofs, dtype=bool)
    for facets, cond, label in normalize_fe_bcs(space.mesh, bc):
        if isinstance(cond, Neumann):
            rhs += neumann_load(space, cond.flux, facets)
        else:
            dofs = space.boundary_dofs(facets)
            lift[dofs] = evaluate_boundary_data(
                cond.value, space.dof_coordinates[dofs], f"{label}.value"
            )
            fixed[dofs] = True
    free = np.flatnonzero(~fixed)
    fixed_dofs = np.flatnonzero(fixed)
    rows = matrix[free]
    b = rhs[free] - rows[:, fixed_dofs] @ lift[fixed_dofs]
    return LinearSystem(A=as_csr32(rows[:, free]), b=b, free=free, lift=lift)


def poisson_system(
    space: LagrangeSpace,
    coefficient: Field | None = None,
    source: Field = 0.0,
    bc: BoundarySpec = None,
    quadrature_degree: int | None = None,
) -> LinearSystem:
    """``-∇·(a ∇u) = f`` with boundary conditions ``bc``, as a reduced
    :class:`~.system.LinearSystem`.

    Args:
        coefficient: ``a`` (default 1), positive; any form of the module docstring.
        source: ``f`` (default 0).
        bc: default homogeneous Dirichlet everywhere; see :func:`normalize_fe_bcs`.
    """
    stiffness = stiffness_matrix(space, coefficient, quadrature_degree)
    load = load_vector(space, source, quadrature_degree)
    return assemble_system(space, stiffness, load, bc)
