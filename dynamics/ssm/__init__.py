"""State-space sequence layers (HiPPO, S4D, DSS, S5, STU) and SSM time-steppers.

Every layer maps ``[B, L, H] -> [B, L, H]`` with ``forward(u, return_states=False)`` (the
convolution or parallel-scan mode, for training), ``step(u_t, state) -> (y_t, state)`` (the
recurrent mode, for inference) and ``default_state(batch)``. Plain PyTorch, CPU or GPU.
"""

from pdesuite.dynamics.ssm.convolution import direct_causal_conv, fft_causal_conv
from pdesuite.dynamics.ssm.discretize import discretize
from pdesuite.dynamics.ssm.dss import DSS
from pdesuite.dynamics.ssm.hippo import (HippoNPLR, PTDResult, eigenvector_condition, hippo,
                                         hippo_legs, hippo_legt, hippo_nplr, low_rank_correction,
                                         perturb_then_diagonalize)
from pdesuite.dynamics.ssm.models import LAYERS, SequenceModel, SSMBlock, make_layer
from pdesuite.dynamics.ssm.s4d import S4D, s4d_init
from pdesuite.dynamics.ssm.s5 import S5
from pdesuite.dynamics.ssm.scan import parallel_scan, sequential_scan
from pdesuite.dynamics.ssm.stepper import SSMStepper
from pdesuite.dynamics.ssm.stu import STU, hankel_matrix, spectral_filters

__all__ = ["DSS", "LAYERS", "S4D", "S5", "SSMBlock", "SSMStepper", "STU", "HippoNPLR",
           "PTDResult", "SequenceModel", "direct_causal_conv", "discretize",
           "eigenvector_condition", "fft_causal_conv", "hankel_matrix", "hippo", "hippo_legs",
           "hippo_legt", "hippo_nplr", "low_rank_correction", "make_layer", "parallel_scan",
           "perturb_then_diagonalize", "s4d_init", "sequential_scan", "spectral_filters"]
