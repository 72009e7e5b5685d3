"""State-space sequence layers (HiPPO, S4D, DSS, S5, STU) and SSM time-steppers.

Every layer maps ``[B, L, H] -> [B, L, H]`` with ``forward(u, return_states=False)`` (the
convolution or parallel-scan mode, for training), ``step(u_t, state) -> (y_t, state)`` (the
recurrent mode, for inference) and ``default_state(batch)``. Plain PyTorch, CPU or GPU.

:class:`SSMForecaster` trains an :class:`SSMStepper` on trajectories with the suite's Trainer
and forecasts by stepping the recurrence; ``pdesuite forecast ssm`` (:mod:`.cli`) fronts it.

The torch names are imported from their modules on first use, so that importing this package
(the command line does, to list its options) does not import torch; the HiPPO matrices need
only NumPy and are imported here.
"""

import importlib
import sys
from types import ModuleType

# numpy only; imported now, which also binds the name ``hippo`` to the function, not the module
from pdesuite.dynamics.ssm.hippo import (HippoNPLR, PTDResult, eigenvector_condition, hippo,
                                         hippo_legs, hippo_legt, hippo_nplr, low_rank_correction,
                                         perturb_then_diagonalize)

#: public name -> the module of this package that defines it
_HOMES = {
    "direct_causal_conv": "convolution", "fft_causal_conv": "convolution",
    "discretize": "discretize",
    "DSS": "dss",
    "LAYERS": "models", "SequenceModel": "models", "SSMBlock": "models", "make_layer": "models",
    "S4D": "s4d", "s4d_init": "s4d",
    "S5": "s5",
    "parallel_scan": "scan", "sequential_scan": "scan",
    "SSMStepper": "stepper",
    "STU": "stu", "hankel_matrix": "stu", "spectral_filters": "stu",
    "SSMForecaster": "forecaster", "load_forecaster": "forecaster",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    # Loading a submodule binds its name here: ``discretize`` would become the module, which
    # then hides the function of the same name. Bind the function back.
    if isinstance(globals().get("discretize"), ModuleType):
        globals()["discretize"] = sys.modules[f"{__name__}.discretize"].discretize
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_HOMES))


__all__ = ["DSS", "LAYERS", "S4D", "S5", "SSMBlock", "SSMForecaster", "SSMStepper", "STU",
           "HippoNPLR", "PTDResult", "SequenceModel", "direct_causal_conv", "discretize",
           "eigenvector_condition", "fft_causal_conv", "hankel_matrix", "hippo", "hippo_legs",
           "hippo_legt", "hippo_nplr", "load_forecaster", "low_rank_correction", "make_layer",
           "parallel_scan", "perturb_then_diagonalize", "s4d_init", "sequential_scan",
           "spectral_filters"]
