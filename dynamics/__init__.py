"""Learned time evolution: Koopman operators (:mod:`.koopman`) and state-space models (:mod:`.ssm`).

The Koopman half is available here as well: snapshot pairs from trajectories, dictionaries, the
estimators ``EDMD``, ``KernelEDMD``, ``HankelDMD``, ``MeasurePreservingEDMD`` and
``DeepKoopman`` (torch, imported on first use), and the ResDMD certificates (residuals,
pseudospectra, verified spectra). Every estimator has ``fit(trajectories)`` returning self,
``predict(x0, steps)`` and its results as properties. The state-space layers and models (torch)
are in :mod:`.ssm`.
"""

from pdesuite.dynamics import koopman


def __getattr__(name: str):
    # One list of names, koopman's: forwarded on first use, so that importing the layer does
    # not import torch (the deep model) or h5py (the trajectory reader).
    if name in koopman.__all__:
        return getattr(koopman, name)
    if name == "ssm":
        import importlib

        return importlib.import_module("pdesuite.dynamics.ssm")
    raise AttributeError(f"module 'pdesuite.dynamics' has no attribute {name!r}")


__all__ = ["koopman", "ssm", *koopman.__all__]
