"""Koopman operators learned from snapshot pairs: dictionaries, EDMD-type estimators, certificates.

Data: :func:`snapshot_pairs` (trajectories ``[n_traj, n_time, *state]`` or a list, with an
optional delay embedding), :func:`train_test_split` (by trajectory, seeded) and
:func:`read_trajectories` (a ``generate``d time-dependent HDF5 file).

Dictionaries: :class:`Identity`, :class:`Monomials`, :class:`RadialBasis` (k-means centres),
:class:`FourierFeatures`, :class:`RandomFourierFeatures`, :class:`CallableDictionary`.

Estimators (hyperparameters in ``__init__``, ``fit`` returns self, results as properties:
``eigenvalues``, ``eigenvectors``, ``eigenfunctions``, ``modes``, ``koopman_matrix``,
``residuals``; ``predict(x0, steps, certified=None)``): :class:`EDMD`, :class:`KernelEDMD`,
:class:`HankelDMD`, :class:`MeasurePreservingEDMD`, :class:`DeepKoopman` (torch, imported on
first use).

Certificates (ResDMD): :func:`residuals`, :func:`pseudospectrum`, :func:`verified_spectrum`.

Saving: ``estimator.save(path)`` and :func:`load_estimator` (JSON and ``.npz``, no pickle).
"""

from pdesuite.dynamics.koopman.base import KoopmanEstimator
from pdesuite.dynamics.koopman.certificates import (
    VerifiedSpectrum,
    pseudospectrum,
    quadrature_weights,
    residuals,
    verified_spectrum,
)
from pdesuite.dynamics.koopman.dictionaries import (
    CallableDictionary,
    Dictionary,
    FourierFeatures,
    Identity,
    Monomials,
    RadialBasis,
    RandomFourierFeatures,
    kmeans,
)
from pdesuite.dynamics.koopman.edmd import EDMD
from pdesuite.dynamics.koopman.hankel import HankelDMD
from pdesuite.dynamics.koopman.hdf5 import TrajectoryData, read_trajectories
from pdesuite.dynamics.koopman.kernel import KERNELS, KernelEDMD, kernel_matrix
from pdesuite.dynamics.koopman.mpedmd import MeasurePreservingEDMD
from pdesuite.dynamics.koopman.persistence import load_estimator
from pdesuite.dynamics.koopman.snapshots import (
    SnapshotPairs,
    as_trajectories,
    delay_embed,
    snapshot_pairs,
    train_test_split,
)

_DEEP = ("DeepKoopman", "DeepKoopmanLoss", "KoopmanAutoencoder")


def __getattr__(name: str):
    # The deep model needs torch: import it only when it is asked for.
    if name in _DEEP:
        from pdesuite.dynamics.koopman import deep

        return getattr(deep, name)
    raise AttributeError(f"module 'pdesuite.dynamics.koopman' has no attribute {name!r}")


__all__ = [
    "KERNELS",
    "CallableDictionary",
    "DeepKoopman",
    "DeepKoopmanLoss",
    "Dictionary",
    "EDMD",
    "FourierFeatures",
    "HankelDMD",
    "Identity",
    "KernelEDMD",
    "KoopmanAutoencoder",
    "KoopmanEstimator",
    "MeasurePreservingEDMD",
    "Monomials",
    "RadialBasis",
    "RandomFourierFeatures",
    "SnapshotPairs",
    "TrajectoryData",
    "VerifiedSpectrum",
    "as_trajectories",
    "delay_embed",
    "kernel_matrix",
    "kmeans",
    "load_estimator",
    "pseudospectrum",
    "quadrature_weights",
    "read_trajectories",
    "residuals",
    "snapshot_pairs",
    "train_test_split",
    "verified_spectrum",
]
