"""``LearnedPreconditioner``: a trained network as a :class:`pdesuite.solvers.Preconditioner`.

``apply(r)`` maps the residual of the unknowns onto the model's grid (:class:`GridMap`: zeros
on the Dirichlet nodes), normalises it to unit RMS, stacks the conditioning fields of the
system under it (the PDE's coefficient, fixed per system), runs the model in its own dtype
(float32 as a rule) on its own device, reads the output back at the unknowns and rescales it
by the input's scale, in the solve's dtype. The result is positively homogeneous,
``M(c r) = c M(r)`` for ``c > 0``, so a network sees inputs of one scale whatever the residual
norm; the line search of FCG/DCDM (or FGMRES's least squares) fixes the length of the step.

The map is nonlinear (``linear = False``): use it with ``method="dcdm"``, ``"fcg"`` or
``"fgmres"``. It takes a NumPy vector ``[n]`` (the NumPy backend, PETSc's python PC), a NumPy
block ``[n, B]``, or a torch tensor ``[n]``/``[n, B]`` on any device (the torch backend passes
its blocks as they are, ``accepts_torch = True``: one batched forward per iteration, no host
round trip when the model and the block share a device).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from pdesuite.operators.preconditioning.mapping import GridLike, GridMap
from pdesuite.solvers.preconditioner import BasePreconditioner

__all__ = ["LearnedPreconditioner", "conditioning_fields", "unit_rms"]


def unit_rms(R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R / s, s)`` for a block ``[n, B]``, ``s_j = ‖r_j‖ / √n`` the RMS of column ``j``
    (1 for a zero column): the input a network sees, in training and in a solve alike, so
    that it meets values of order one at every grid size."""
    scale = torch.linalg.vector_norm(R, dim=0) / math.sqrt(max(R.shape[0], 1))
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return R / scale, scale


def conditioning_fields(shape: Sequence[int], coefficient: Any = None,
                        conditioning: Any = None) -> np.ndarray | None:
    """The conditioning channels ``[C, *shape]`` (float64) of a system, or None for none.

    ``coefficient``: one field ``[*shape]`` (or a scalar, broadcast), first channel;
    ``conditioning``: more fields, ``[*shape]`` or ``[C, *shape]``, after it. Raises ValueError
    for a field of another shape or with a non-finite value.
    """
    shape = tuple(shape)
    channels = []
    for name, value in (("coefficient", coefficient), ("conditioning", conditioning)):
        if value is None:
            continue
        array = np.asarray(value, dtype=float)
        if array.ndim == 0:
            array = np.full(shape, float(array))
        if array.shape == shape:
            array = array[None]
        if array.ndim != len(shape) + 1 or array.shape[1:] != shape or \
                (name == "coefficient" and array.shape[0] != 1):
            raise ValueError(f"{name}: expected a field of shape {shape} on the grid's nodes"
                             f"{' (or [C, *shape])' if name == 'conditioning' else ''}, got "
                             f"{array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: holds a NaN or Inf")
        channels.append(array)
    return np.concatenate(channels) if channels else None


class LearnedPreconditioner(BasePreconditioner):
    """A model ``[B, 1 + C, *shape] -> [B, 1, *shape]`` as a nonlinear preconditioner.

    Args:
        model: an ``nn.Module`` (a :class:`~pdesuite.operators.preconditioning.DCDMNet`, an
            FNO, an MgNO, ...) whose input channel 0 is the residual field and channels
            ``1..C`` the conditioning fields; put in eval mode. Its device and the dtype of its
            parameters are those of inference.
        grid: a :class:`~pdesuite.discretization.Grid` or its shape: the model's grid, every
            node of the discretisation (boundary included).
        free: ``[n]`` node indices of the unknowns (``LinearSystem.free``); default the
            interior nodes (``fd.diffusion`` with Dirichlet conditions all around).
        coefficient: the PDE's coefficient at the nodes ``[*shape]``, for a model that takes
            it (the Darcy permeability ``a``): the first conditioning channel.
        conditioning: further conditioning fields ``[*shape]`` or ``[C, *shape]``.

    Raises ValueError before any solve when the model cannot serve this system: a channel
    count other than ``1 + C`` (``model.in_channels``), a grid it cannot take
    (``model.check_spatial_shape``, e.g. an odd size for DCDMNet), or a trial forward pass on
    the grid that fails, returns another shape than ``[1, 1, *shape]``, or returns NaN/Inf.

    Attributes: ``model``, ``grid_map`` (:class:`GridMap`), ``conditioning`` (``[C, *shape]``
    tensor on the model's device, or None), ``device``, ``dtype``, ``linear = False``.
    """

    linear = False
    symmetric = False
    accepts_torch = True

    def __init__(self, model: nn.Module, grid: GridLike, free: np.ndarray | None = None, *,
                 coefficient: Any = None, conditioning: Any = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        self.model = model.eval()
        self.grid_map = GridMap(grid, free)
        shape = self.grid_map.shape
        fields = conditioning_fields(shape, coefficient, conditioning)
        n_conditioning = 0 if fields is None else fields.shape[0]
        parameter = next(iter(model.parameters()), None)
        self.device = parameter.device if parameter is not None else torch.device("cpu")
        self.dtype = parameter.dtype if parameter is not None else torch.float32
        self.conditioning = (None if fields is None else
                             torch.as_tensor(fields, dtype=self.dtype, device=self.device))
        expected = getattr(model, "in_channels", None)
        if expected is not None and expected != 1 + n_conditioning:
            raise ValueError(
                f"model: takes {expected} input channels (the residual and {expected - 1} "
                f"conditioning fields), but {n_conditioning} conditioning field(s) were given "
                f"(coefficient=, conditioning=)")
        check_shape = getattr(model, "check_spatial_shape", None)
        if check_shape is not None:
            check_shape(shape)
        self._trial_forward()

    def __repr__(self) -> str:
        channels = 0 if self.conditioning is None else self.conditioning.shape[0]
        return (f"LearnedPreconditioner({type(self.model).__name__}, grid={self.grid_map.shape}, "
                f"n={self.grid_map.n}, conditioning_channels={channels}, device={self.device}, "
                f"dtype={self.dtype})")

    def _trial_forward(self) -> None:
        """One forward pass on a zero residual: what cannot run fails here, not mid-solve."""
        shape = self.grid_map.shape
        trial = torch.zeros(1, 1, *shape, dtype=self.dtype, device=self.device)
        if self.conditioning is not None:
            trial = torch.cat([trial, self.conditioning[None]], dim=1)
        try:
            with torch.no_grad():
                out = self.model(trial)
        except (ValueError, RuntimeError, TypeError, IndexError) as error:
            raise ValueError(f"model: cannot run on input {tuple(trial.shape)} (grid {shape}): "
                             f"{error}") from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, 1, *shape):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"model: returns {got} for input {tuple(trial.shape)}; a "
                             f"preconditioner needs one output channel, [1, 1, *{shape}]")
        if not bool(torch.isfinite(out).all()):
            raise ValueError("model: returns NaN or Inf on this system's conditioning fields "
                             "(a log transform of a coefficient that is not positive?)")

    # -------------------------------------------------------------------------- applying
    def apply(self, r: Any) -> Any:
        """``z ≈ c A⁻¹ r`` for ``r`` ``[n]`` or ``[n, B]``, NumPy or torch; same type, shape,
        dtype and device as ``r``. Each column is handled on its own (zero columns give
        zero)."""
        n = self.grid_map.n
        is_tensor = isinstance(r, torch.Tensor)
        R = r if is_tensor else torch.from_numpy(np.require(r, requirements=["W"]))
        if R.ndim not in (1, 2) or R.shape[0] != n:
            raise ValueError(
                f"M: the learned preconditioner takes [{n}] or [{n}, B] (the unknowns of grid "
                f"{self.grid_map.shape}), got {tuple(R.shape)}; under MPI, wrap it as "
                "PythonPC(M, gather=True)")
        block = R if R.ndim == 2 else R[:, None]
        Z = self._apply_block(block)
        Z = Z if R.ndim == 2 else Z[:, 0]
        if is_tensor:
            return Z.to(device=r.device, dtype=r.dtype)
        return Z.cpu().numpy()

    @torch.no_grad()
    def _apply_block(self, R: torch.Tensor) -> torch.Tensor:
        """``[n, B] -> [n, B]`` on the model's device, in R's dtype (float64 for an integer
        R); the model runs in its own dtype."""
        wide = R.dtype if R.dtype in (torch.float32, torch.float64) else torch.float64
        R = R.to(device=self.device, dtype=wide)
        scaled, scale = unit_rms(R)
        fields = self.grid_map.to_fields(scaled.to(self.dtype))
        if self.conditioning is not None:
            batch = fields.shape[0]
            fields = torch.cat([fields, self.conditioning.expand(batch, *self.conditioning.shape)],
                               dim=1)
        out = self.model(fields)
        Z = self.grid_map.from_fields(out).to(wide) * scale
        return torch.where((R != 0).any(dim=0), Z, torch.zeros_like(Z))
