"""PDE families, dataset generation into HDF5, and loaders (issue 5).

Families: a :class:`PDEFamily` draws seeded parameters, assembles the problem through
:mod:`pdesuite.discretization` and maps solutions to float32 arrays; ``get_family(name, ...)``
builds one of the registered families (``FAMILIES``).
"""

from pdesuite.datasets.family import (
    FAMILIES,
    PDEFamily,
    family_from_config,
    get_family,
    register_family,
    solve_stats,
)
from pdesuite.datasets.families import (
    Burgers1D,
    Darcy,
    DarcyPiecewise,
    HeatCN,
    HelmholtzGRF,
    NavierStokes2D,
    PoissonFE,
    ThermalFE,
)
from pdesuite.datasets.grf import default_sigma, gaussian_random_field, grf_spectrum

__all__ = [
    "FAMILIES",
    "Burgers1D",
    "Darcy",
    "DarcyPiecewise",
    "HeatCN",
    "HelmholtzGRF",
    "NavierStokes2D",
    "PDEFamily",
    "PoissonFE",
    "ThermalFE",
    "default_sigma",
    "family_from_config",
    "gaussian_random_field",
    "get_family",
    "grf_spectrum",
    "register_family",
    "solve_stats",
]
