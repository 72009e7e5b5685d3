"""PDE families, dataset generation into HDF5, and loaders.

Families: a :class:`PDEFamily` draws seeded parameters, assembles the problem through
:mod:`pdesuite.discretization` and maps solutions to float32 arrays; ``get_family(name, ...)``
builds one of the registered families (``FAMILIES``).
"""

from pdesuite.datasets.pde_family import (
    FAMILIES,
    PDEFamily,
    family_from_config,
    get_family,
    register_family,
)
from pdesuite.datasets.builtin_families import (
    Burgers1D,
    Darcy,
    Darcy3D,
    DarcyPiecewise,
    HeatCN,
    HelmholtzGRF,
    NavierStokes2D,
    PoissonFE,
    PoissonObstacles3D,
    ThermalFE,
)
from pdesuite.datasets.generation import generate
from pdesuite.datasets.grf import default_sigma, gaussian_random_field, grf_spectrum
from pdesuite.datasets.readers import read_fno_mat, read_neuraloperator_pt, read_pdebench_hdf5
from pdesuite.datasets.sorting import sort_order
from pdesuite.datasets.storage import describe, open_dataset, validate_file


def __getattr__(name: str):
    # PDEDataset is a torch Dataset: import torch only when it is asked for.
    if name == "PDEDataset":
        from pdesuite.datasets.loaders import PDEDataset

        return PDEDataset
    raise AttributeError(f"module 'pdesuite.datasets' has no attribute {name!r}")


__all__ = [
    "FAMILIES",
    "Burgers1D",
    "Darcy",
    "Darcy3D",
    "DarcyPiecewise",
    "HeatCN",
    "HelmholtzGRF",
    "NavierStokes2D",
    "PDEDataset",
    "PDEFamily",
    "PoissonFE",
    "PoissonObstacles3D",
    "ThermalFE",
    "default_sigma",
    "describe",
    "generate",
    "open_dataset",
    "read_fno_mat",
    "read_neuraloperator_pt",
    "read_pdebench_hdf5",
    "sort_order",
    "validate_file",
    "family_from_config",
    "gaussian_random_field",
    "get_family",
    "grf_spectrum",
    "register_family",
]
