"""The finite-element mesh of a dataset file: the ``mesh`` group, written once, read back whole.

A file of an FE family (``poisson-fe``, ``thermal-fe``) stores its arrays on the DoFs of a
Lagrange space, ``[n, C, ndofs]``. The ``mesh`` group makes such a file self-contained: a model
that lives on the FE space (SPON) rebuilds the very space, with the same DoF numbering, from the
file alone. A mesh made elsewhere, written with the same layout (:func:`write_mesh`, or by hand),
reads the same way.

==============================  ===================  =============================================
Path (in ``mesh/``)             Type, shape          Meaning
==============================  ===================  =============================================
``points``                      float64 ``[N, 2]``   vertex coordinates
``cells``                       int64 ``[M, nv]``    vertices per cell (``nv`` 3 or 4), in basix's
                                                     reference order
``dirichlet_dofs``              int64 ``[k]``        the DoFs whose values are boundary data
                                                     (sorted, unique; may be empty)
``dof_coordinates``             float64 ``[n, 2]``   the point of each DoF; optional when written
                                                     by hand, checked against the numbering of
                                                     :class:`~pdesuite.discretization.LagrangeSpace`
``coarse/<l>/points``, ``cells``                     optional coarser meshes of the same domain,
                                                     ``l = 0`` the coarsest (multigrid models)
==============================  ===================  =============================================

Attributes of ``mesh``: ``cell_type`` (``"triangle"`` or ``"quadrilateral"``), ``degree`` (1 or
2), ``layout_version`` (int) and, optionally, ``boundary_channel``: the input channel that holds
the Dirichlet values at the Dirichlet DoFs (-1 or absent: none). Coordinates are in the units of
the file's ``x`` (see its ``units`` attribute).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from pdesuite.discretization import LagrangeSpace, Mesh

__all__ = ["MESH_GROUP", "MESH_LAYOUT_VERSION", "MeshInfo", "coarse_resolutions", "has_mesh",
           "read_mesh", "write_mesh"]

MESH_GROUP = "mesh"
MESH_LAYOUT_VERSION = 1
#: Relative tolerance of the check of stored DoF coordinates against the space's own.
_COORDINATE_TOL = 1e-9

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True, eq=False)
class MeshInfo:
    """A Lagrange space's mesh, degree and Dirichlet DoFs, as a dataset file stores them.

    Args:
        mesh: the mesh of the data's DoFs.
        degree: the Lagrange degree, 1 or 2.
        dirichlet_dofs: ``[k]`` DoF indices whose values are boundary data (sorted on creation).
        coarse_meshes: coarser meshes of the same domain, coarsest first (default none); a
            multigrid model takes its lower levels from them.
        boundary_channel: the input channel holding the Dirichlet values at ``dirichlet_dofs``,
            or None (default).
    """

    mesh: Mesh
    degree: int
    dirichlet_dofs: np.ndarray
    coarse_meshes: tuple[Mesh, ...] = field(default=())
    boundary_channel: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.mesh, Mesh):
            raise TypeError(f"mesh: expected a Mesh, got {type(self.mesh).__name__}")
        if isinstance(self.degree, bool) or self.degree not in (1, 2):
            raise ValueError(f"degree: expected 1 or 2, got {self.degree!r}")
        dofs = np.asarray(self.dirichlet_dofs)
        if dofs.ndim != 1 or (dofs.size and not np.issubdtype(dofs.dtype, np.integer)):
            raise ValueError(f"dirichlet_dofs: expected a 1-D integer array, got dtype "
                             f"{dofs.dtype} and shape {dofs.shape}")
        dofs = np.unique(dofs.astype(np.int64))
        if dofs.size and (dofs[0] < 0 or dofs[-1] >= self.space.ndofs):
            raise ValueError(f"dirichlet_dofs: indices must lie in [0, {self.space.ndofs - 1}], "
                             f"got range [{dofs[0]}, {dofs[-1]}]")
        dofs.flags.writeable = False
        object.__setattr__(self, "dirichlet_dofs", dofs)
        object.__setattr__(self, "degree", int(self.degree))
        coarse = tuple(self.coarse_meshes)
        for level, mesh in enumerate(coarse):
            if not isinstance(mesh, Mesh):
                raise TypeError(f"coarse_meshes[{level}]: expected a Mesh, got "
                                f"{type(mesh).__name__}")
            if mesh.cell_type != self.mesh.cell_type:
                raise ValueError(f"coarse_meshes[{level}]: {mesh.cell_type} cells, the mesh has "
                                 f"{self.mesh.cell_type} cells")
        object.__setattr__(self, "coarse_meshes", coarse)
        channel = self.boundary_channel
        if channel is not None and (isinstance(channel, bool) or not isinstance(
                channel, (int, np.integer)) or channel < 0):
            raise ValueError(f"boundary_channel: expected None or an int >= 0, got {channel!r}")
        object.__setattr__(self, "boundary_channel", None if channel is None else int(channel))

    @cached_property
    def space(self) -> LagrangeSpace:
        """The Lagrange space of the data's DoFs."""
        return LagrangeSpace(self.mesh, self.degree)

    @property
    def cell_type(self) -> str:
        return self.mesh.cell_type

    @property
    def ndofs(self) -> int:
        return self.space.ndofs

    @property
    def dof_coordinates(self) -> np.ndarray:
        """``[ndofs, 2]``, the point of each DoF."""
        return self.space.dof_coordinates

    def dirichlet_facets(self) -> np.ndarray:
        """The boundary facets all of whose DoFs are Dirichlet DoFs (edge indices, sorted).

        Their DoFs are exactly :attr:`dirichlet_dofs` for a set made of whole facets, as every
        Dirichlet boundary is; ValueError naming ``dirichlet_dofs`` otherwise.
        """
        facets = self.mesh.boundary_facets
        flagged = np.zeros(self.ndofs, dtype=bool)
        flagged[self.dirichlet_dofs] = True
        whole = facets[flagged[self.space.facet_dofs(facets)].all(axis=1)]
        covered = (np.unique(self.space.facet_dofs(whole)) if whole.size
                   else np.zeros(0, dtype=np.int64))
        if not np.array_equal(covered, self.dirichlet_dofs):
            stray = np.setdiff1d(self.dirichlet_dofs, covered)
            raise ValueError(f"dirichlet_dofs: {stray.size} DoF(s) (first {stray[0]}) are not on "
                             "a boundary facet whose DoFs are all Dirichlet DoFs")
        return np.sort(whole)

    def spaces(self, levels: int) -> list[LagrangeSpace]:
        """``levels`` spaces, coarse to fine: the last ``levels - 1`` coarse meshes, then
        :attr:`space`. ValueError naming ``levels`` when there are too few coarse meshes."""
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
            raise ValueError(f"levels: expected an int >= 1, got {levels!r}")
        if levels - 1 > len(self.coarse_meshes):
            raise ValueError(f"levels: {levels} levels need {levels - 1} coarse meshes, the mesh "
                             f"has {len(self.coarse_meshes)} (mesh/coarse in the file)")
        chosen = self.coarse_meshes[len(self.coarse_meshes) - (levels - 1):] if levels > 1 else ()
        return [LagrangeSpace(mesh, self.degree) for mesh in chosen] + [self.space]

    def __repr__(self) -> str:
        return (f"MeshInfo({self.mesh!r}, degree={self.degree}, ndofs={self.ndofs}, "
                f"dirichlet_dofs={self.dirichlet_dofs.size}, "
                f"coarse_meshes={len(self.coarse_meshes)})")


# ---------------------------------------------------------------------------------- writing
def write_mesh(target, info: MeshInfo) -> None:
    """Write ``info`` as the ``mesh`` group of ``target``: an open ``h5py.File`` (or group) or
    the path of an existing HDF5 file. ValueError if ``target`` already has a mesh."""
    if not isinstance(info, MeshInfo):
        raise TypeError(f"info: expected a MeshInfo, got {type(info).__name__}")
    if isinstance(target, (str, os.PathLike)):
        import h5py

        with h5py.File(target, "r+") as handle:
            write_mesh(handle, info)
        return
    if MESH_GROUP in target:
        raise ValueError(f"target: {getattr(target, 'filename', target)} already has a "
                         f"'{MESH_GROUP}' group")
    group = target.create_group(MESH_GROUP)
    _write_cells(group, info.mesh)
    group.create_dataset("dirichlet_dofs", data=info.dirichlet_dofs.astype(np.int64))
    group.create_dataset("dof_coordinates", data=np.asarray(info.dof_coordinates, np.float64))
    for level, mesh in enumerate(info.coarse_meshes):
        _write_cells(group.create_group(f"coarse/{level}"), mesh)
    group.attrs["cell_type"] = info.cell_type
    group.attrs["degree"] = info.degree
    group.attrs["layout_version"] = MESH_LAYOUT_VERSION
    group.attrs["boundary_channel"] = -1 if info.boundary_channel is None else \
        info.boundary_channel


def _write_cells(group, mesh: Mesh) -> None:
    group.create_dataset("points", data=np.asarray(mesh.points, dtype=np.float64))
    group.create_dataset("cells", data=np.asarray(mesh.cells, dtype=np.int64))


# ---------------------------------------------------------------------------------- reading
def has_mesh(handle) -> bool:
    """True if the open file ``handle`` has a ``mesh`` group."""
    return MESH_GROUP in handle


def read_mesh(source) -> MeshInfo:
    """The :class:`MeshInfo` of a dataset file: a path, or an open ``h5py.File``.

    Raises ValueError naming the file when it has no ``mesh`` group (a grid family's file, or
    one converted from another format) or when the group breaks the layout of this module
    (missing arrays, an unknown cell type, an invalid mesh, DoF coordinates that do not match
    the space's numbering).
    """
    if isinstance(source, (str, os.PathLike)):
        import h5py

        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such dataset file")
        with h5py.File(path, "r") as handle:
            return _read(handle, path)
    return _read(source, Path(getattr(source, "filename", "<file>")))


def _read(handle, path: Path) -> MeshInfo:
    if MESH_GROUP not in handle:
        raise ValueError(f"{path}: has no '{MESH_GROUP}' group, so no finite-element space to "
                         "build a mesh model on; generate the data with an FE family "
                         "(poisson-fe, thermal-fe) or add the mesh with write_mesh")
    group = handle[MESH_GROUP]

    def fail(message: str) -> ValueError:
        return ValueError(f"{path}: '{MESH_GROUP}' group: {message}")

    missing = [name for name in ("points", "cells", "dirichlet_dofs") if name not in group]
    missing += [f"attribute {name}" for name in ("cell_type", "degree") if name not in group.attrs]
    if missing:
        raise fail(f"missing {', '.join(missing)}")
    version = int(group.attrs.get("layout_version", MESH_LAYOUT_VERSION))
    if version > MESH_LAYOUT_VERSION:
        raise fail(f"layout_version {version} is newer than this pdesuite reads "
                   f"({MESH_LAYOUT_VERSION})")
    cell_type = _text(group.attrs["cell_type"])
    channel = int(group.attrs.get("boundary_channel", -1))
    try:
        mesh = _read_cells(group, cell_type)
        coarse = [_read_cells(group["coarse"][str(level)], cell_type)
                  for level in range(len(group["coarse"]))] if "coarse" in group else []
        info = MeshInfo(mesh, int(group.attrs["degree"]), np.asarray(group["dirichlet_dofs"][()]),
                        tuple(coarse), None if channel < 0 else channel)
    except (ValueError, TypeError, KeyError) as error:
        raise fail(str(error)) from None
    if "dof_coordinates" in group:
        stored = np.asarray(group["dof_coordinates"][()], dtype=np.float64)
        own = info.dof_coordinates
        scale = max(1.0, float(np.abs(mesh.points).max()))
        if stored.shape != own.shape or not np.allclose(stored, own, rtol=0,
                                                        atol=_COORDINATE_TOL * scale):
            raise fail(f"dof_coordinates {stored.shape} do not match the DoFs of a degree-"
                       f"{info.degree} Lagrange space on this mesh {own.shape} (pdesuite numbers "
                       "vertices first, then edge midpoints)")
    return info


def _read_cells(group, cell_type: str) -> Mesh:
    return Mesh(np.asarray(group["points"][()], dtype=np.float64),
                np.asarray(group["cells"][()]), cell_type)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def coarse_resolutions(resolution: int, levels: int, minimum: int) -> Sequence[int]:
    """``resolution // 2, // 4, ...`` (at most ``levels`` of them, each >= ``minimum``),
    coarsest first: the coarse meshes an FE family writes for multigrid models."""
    found = []
    n = int(resolution) // 2
    while n >= minimum and len(found) < levels:
        found.append(n)
        n //= 2
    return found[::-1]
