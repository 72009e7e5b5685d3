"""``train_preconditioner``: fit a network to DCDM's unsupervised loss on a set of systems.

Why not the :class:`~pdesuite.operators.training.Trainer`: it fits ``(input, target)`` pairs
with a loss of ``(prediction, target)`` after per-channel normalisers, and validates by a
relative L2 error. DCDM's loss needs the matrix of each sample (``A q``), its input must not
be shifted by a normaliser (the preconditioner is applied to ``r/‖r‖`` and its output only
rescaled), and a relative error to a target means nothing here. This is a small loop instead,
with the Trainer's conventions: seeded, a progress bar, and a run directory rewritten
atomically after every epoch (:mod:`.store`) from which a run resumes.

The data: for each matrix ``A_k``, Lanczos gives Ritz pairs and ``rhs_per_matrix`` normalised
right-hand sides weighted toward the low end of the spectrum (:mod:`.ritz`). A sample is one
right-hand side ``b`` with its matrix and its conditioning fields; the network sees ``b`` at
unit RMS on the grid (as :class:`LearnedPreconditioner` shows it residuals) and is scored by
:func:`~pdesuite.operators.preconditioning.loss.dcdm_loss`, with the batch's matrices applied
as one block-diagonal torch CSR product.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from pdesuite.operators.preconditioning.adapter import (
    LearnedPreconditioner,
    conditioning_fields,
    unit_rms,
)
from pdesuite.operators.preconditioning.loss import block_diagonal, dcdm_loss, energy_error_loss
from pdesuite.operators.preconditioning.mapping import GridLike, GridMap
from pdesuite.operators.preconditioning.network import DCDMNet
from pdesuite.operators.preconditioning.ritz import lanczos_ritz, ritz_right_hand_sides
from pdesuite.operators.preconditioning.store import read_run, write_run
from pdesuite.operators.training.checkpoint import seed_everything
from pdesuite.operators.training.distributed import select_device
from pdesuite.solvers.torch_backend.convert import to_torch_sparse

__all__ = ["ResidualErrorPairs", "TrainingResult", "train_preconditioner"]


@dataclass(frozen=True)
class ResidualErrorPairs:
    """Supervised training data: residuals ``r = A_k e`` with their errors ``e``.

    Attributes:
        residuals: ``[N, n]`` residuals on the unknowns.
        errors: ``[N, n]`` the errors they come from (``A⁻¹ r``: the stored solution minus an
            iterate).
        owner: ``[N]`` index ``k`` of each pair's matrix.
    """

    residuals: np.ndarray
    errors: np.ndarray
    owner: np.ndarray


@dataclass
class TrainingResult:
    """What :func:`train_preconditioner` returns.

    Attributes:
        model: the trained network, in eval mode, on the training device.
        history: one dict per epoch: ``epoch``, ``loss`` (mean DCDM loss of the epoch's batches,
            for unit-norm right-hand sides), ``seconds`` (of the epoch), ``skipped_batches``.
        run_dir: the run directory, or None when nothing was written.
        grid_shape: the training grid.
        setup_seconds: time spent building the right-hand sides (Lanczos).
        stopped: ``"epochs"``, or ``"time"`` when ``max_seconds`` ended the run.
    """

    model: nn.Module
    history: list = field(default_factory=list)
    run_dir: Path | None = None
    grid_shape: tuple = ()
    setup_seconds: float = 0.0
    stopped: str = "epochs"

    def preconditioner(self, grid: GridLike | None = None, free: np.ndarray | None = None,
                       *, coefficient: Any = None,
                       conditioning: Any = None) -> LearnedPreconditioner:
        """The trained model as a :class:`LearnedPreconditioner` (default: the training grid,
        or the grid of ``coefficient``)."""
        if grid is None:
            grid = np.shape(coefficient) if np.ndim(coefficient) >= 1 else self.grid_shape
        return LearnedPreconditioner(self.model, grid, free, coefficient=coefficient,
                                     conditioning=conditioning)


def train_preconditioner(
    matrices: Any | Sequence[Any],
    grid: GridLike,
    free: np.ndarray | None = None,
    *,
    coefficients: Sequence[Any] | None = None,
    conditioning: Sequence[Any] | None = None,
    pairs: ResidualErrorPairs | None = None,
    model: nn.Module | dict | None = None,
    rhs_per_matrix: int = 200,
    ritz_steps: int = 300,
    low_fraction: float = 0.55,
    low_weight: float = 9.0,
    epochs: int = 10,
    batch_size: int = 10,
    lr: float = 1e-3,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    device: Any = "auto",
    max_seconds: float | None = None,
    progress: bool = True,
) -> TrainingResult:
    """Train a preconditioner network on DCDM's loss (see the module docstring).

    Args:
        matrices: one SPD matrix ``[n, n]`` on the unknowns of ``grid`` (SciPy sparse), or a
            sequence of them (one per system: a Darcy set).
        grid: the node grid (a Grid or its shape) that the unknowns live on.
        free: ``[n]`` node indices of the unknowns (``system.free``); default the interior.
        coefficients: one coefficient field ``[*shape]`` per matrix, the first conditioning
            channel (the Darcy permeability); None for none.
        conditioning: further fields per matrix, ``[*shape]`` or ``[C, *shape]`` each.
        pairs: supervised data (:class:`ResidualErrorPairs`), scored by
            :func:`~pdesuite.operators.preconditioning.loss.energy_error_loss`; default None:
            Ritz right-hand sides scored by DCDM's unsupervised loss (``rhs_per_matrix``,
            ``ritz_steps``, ``low_fraction`` and ``low_weight`` then apply).
        model: an ``nn.Module`` taking ``[B, 1 + C, *shape]``; a dict of
            :class:`~pdesuite.operators.preconditioning.network.DCDMNet` arguments; or None:
            ``DCDMNet`` with the paper's layout, ``conditioning_transform="log"`` when the
            coefficients are all positive.
        rhs_per_matrix: right-hand sides drawn per matrix. Default 200.
        ritz_steps: Lanczos steps per matrix (at most n). Default 300.
        low_fraction, low_weight: the weighting of the low end of the spectrum (0.55, 9).
        epochs: passes over all right-hand sides. Default 10.
        batch_size: samples per optimiser step. Default 10 (the paper's).
        lr: Adam's learning rate, constant. Default 1e-3.
        seed: seeds torch, NumPy and Python, the right-hand sides and the epoch shuffles.
        out_dir: run directory (``checkpoint.pt``, ``metrics.json``), rewritten after every
            epoch; None writes nothing.
        resume: continue the run in ``out_dir`` from its last epoch (its settings must be the
            same); the right-hand sides are rebuilt from the seed.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
        max_seconds: stop after the batch at which training has run this long (wall time,
            Lanczos excluded); None for no limit. A run stopped so is not reproducible.
        progress: a progress bar per epoch on stderr.

    Returns:
        :class:`TrainingResult`.

    Raises:
        ValueError: mismatched sizes, a model that cannot take the grid, or a resume whose
            settings differ from the run's.
        FloatingPointError: an epoch in which every batch had a non-finite loss.
    """
    started = time.perf_counter()
    matrix_list = [matrices] if (sp.issparse(matrices) or isinstance(matrices, np.ndarray)) \
        else list(matrices)
    if not matrix_list:
        raise ValueError("matrices: expected at least one matrix")
    grid_map = GridMap(grid, free)
    n, shape = grid_map.n, grid_map.shape
    for k, A in enumerate(matrix_list):
        if tuple(A.shape) != (n, n):
            raise ValueError(f"matrices[{k}]: shape {tuple(A.shape)}, expected ({n}, {n}) for "
                             f"the {n} unknowns of grid {shape}")
    fields = _conditioning(len(matrix_list), shape, coefficients, conditioning)
    channels = 0 if fields is None else fields.shape[1]
    seed_everything(seed)  # before the model is built: its initial weights come from the seed
    model = _model(model, len(shape), channels, coefficients)
    device = select_device(device)
    settings = {
        "grid_shape": list(shape), "n": n, "matrices": len(matrix_list),
        "conditioning_channels": channels, "rhs_per_matrix": int(rhs_per_matrix),
        "ritz_steps": int(ritz_steps), "low_fraction": float(low_fraction),
        "low_weight": float(low_weight), "epochs": int(epochs), "batch_size": int(batch_size),
        "lr": float(lr), "seed": int(seed), "optimizer": "adam",
        "loss": "dcdm" if pairs is None else "energy_error",
        "pairs": None if pairs is None else int(np.shape(pairs.owner)[0]),
    }
    model = model.to(device)
    LearnedPreconditioner(model, shape, grid_map.free,
                          conditioning=None if fields is None else fields[0])  # checks the model
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: list = []
    first_epoch = 0
    if resume:
        first_epoch, history = _resume(out_dir, model, optimizer, settings)

    if pairs is None:
        rhs, owner = _right_hand_sides(matrix_list, rhs_per_matrix, ritz_steps, low_fraction,
                                       low_weight, seed)
        errors = None
    else:
        rhs, errors, owner = _check_pairs(pairs, len(matrix_list), n)
    setup_seconds = time.perf_counter() - started
    rhs = torch.as_tensor(rhs, dtype=torch.float32, device=device)       # [N, n]
    owner = torch.as_tensor(owner, device=device)                        # [N]
    if errors is not None:
        errors = torch.as_tensor(errors, dtype=torch.float32, device=device)  # [N, n]
    field_tensor = (None if fields is None else
                    torch.as_tensor(fields, dtype=torch.float32, device=device))
    shared = (to_torch_sparse(matrix_list[0], device=device, dtype=torch.float32)
              if len(matrix_list) == 1 else None)

    clock = time.perf_counter()
    stopped = "epochs"
    out_path = None if out_dir is None else Path(out_dir)
    for epoch in range(first_epoch, epochs):
        epoch_start = time.perf_counter()
        order = torch.randperm(rhs.shape[0], generator=torch.Generator().manual_seed(
            seed * 1_000_003 + epoch)).to(device)
        batches = order.split(batch_size)
        total, counted, skipped = 0.0, 0, 0
        bar = _progress(batches, progress, f"epoch {epoch + 1}/{epochs}")
        for index in bar:
            b = rhs[index].T                                            # [n, B]
            inputs = grid_map.to_fields(unit_rms(b)[0])
            if field_tensor is not None:
                inputs = torch.cat([inputs, field_tensor[owner[index]]], dim=1)
            q = grid_map.from_fields(model(inputs))
            A = shared if shared is not None else block_diagonal(
                [matrix_list[k] for k in owner[index].tolist()], device=device)
            loss = (dcdm_loss(A, q, b) if errors is None else
                    energy_error_loss(A, q, b, errors[index].T))
            if not torch.isfinite(loss):
                skipped += 1
                warnings.warn(f"train_preconditioner: non-finite loss in epoch {epoch + 1}; "
                              "batch skipped", RuntimeWarning, stacklevel=2)
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            counted += 1
            if progress:
                bar.set_postfix(loss=f"{total / counted:.4g}")
            if max_seconds is not None and time.perf_counter() - clock >= max_seconds:
                stopped = "time"
                break
        if counted == 0:
            raise FloatingPointError(f"train_preconditioner: every batch of epoch {epoch + 1} "
                                     "had a non-finite loss")
        history.append({"epoch": epoch + 1, "loss": total / counted,
                        "seconds": time.perf_counter() - epoch_start, "skipped_batches": skipped})
        finished = stopped == "time" or epoch + 1 == epochs
        if out_path is not None:
            write_run(out_path, model, optimizer, epoch + 1, history, settings, finished)
        if stopped == "time":
            break
    return TrainingResult(model=model.eval(), history=history, run_dir=out_path,
                          grid_shape=shape, setup_seconds=setup_seconds, stopped=stopped)


def _conditioning(count: int, shape: tuple, coefficients, conditioning) -> np.ndarray | None:
    """``[K, C, *shape]`` conditioning of the K systems, or None."""
    per_system = []
    for name, values in (("coefficients", coefficients), ("conditioning", conditioning)):
        if values is not None and len(values) != count:
            raise ValueError(f"{name}: {len(values)} entries for {count} matrices")
    for k in range(count):
        per_system.append(conditioning_fields(
            shape, None if coefficients is None else coefficients[k],
            None if conditioning is None else conditioning[k]))
    return None if per_system[0] is None else np.stack(per_system)


def _model(model, ndim: int, channels: int, coefficients) -> nn.Module:
    if isinstance(model, nn.Module):
        return model
    options = dict(model or {})
    options.setdefault("ndim", ndim)
    options.setdefault("conditioning_channels", channels)
    if coefficients is not None and all(np.all(np.asarray(a) > 0) for a in coefficients):
        options.setdefault("conditioning_transform", "log")
    return DCDMNet(**options)


def _right_hand_sides(matrices: list, per_matrix: int, steps: int, low_fraction: float,
                      low_weight: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rhs [K·per_matrix, n], owner [K·per_matrix])``: each matrix's Ritz right-hand sides,
    drawn from a generator seeded by ``(seed, k)``, so the set does not depend on the order of
    computation."""
    rhs, owner = [], []
    for k, A in enumerate(matrices):
        rng = np.random.default_rng([seed, k])
        values, vectors = lanczos_ritz(sp.csr_array(A), steps, rng)
        rhs.append(ritz_right_hand_sides(values, vectors, per_matrix, rng, low_fraction,
                                         low_weight).T)
        owner.append(np.full(per_matrix, k))
    return np.concatenate(rhs), np.concatenate(owner)


def _check_pairs(pairs: ResidualErrorPairs, count: int,
                 n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    residuals = np.asarray(pairs.residuals, dtype=float)
    errors = np.asarray(pairs.errors, dtype=float)
    owner = np.asarray(pairs.owner, dtype=int)
    if residuals.ndim != 2 or residuals.shape[1] != n or errors.shape != residuals.shape or \
            owner.shape != (residuals.shape[0],):
        raise ValueError(f"pairs: expected residuals and errors [N, {n}] and owner [N], got "
                         f"{residuals.shape}, {errors.shape} and {owner.shape}")
    if owner.size and (owner.min() < 0 or owner.max() >= count):
        raise ValueError(f"pairs: owner must index the {count} matrices")
    return residuals, errors, owner


def _resume(out_dir, model: nn.Module, optimizer, settings: dict) -> tuple[int, list]:
    if out_dir is None:
        raise ValueError("resume: needs out_dir, the run directory to continue")
    checkpoint = read_run(out_dir)
    saved = {"loss": "dcdm", "pairs": None, **checkpoint["settings"]}  # runs before pairs
    differences = {key: (saved.get(key), value) for key, value in settings.items()
                   if key != "epochs" and saved.get(key) != json.loads(json.dumps(value))}
    if differences:
        raise ValueError(f"resume: settings differ from the run's (saved, given): {differences}")
    model.load_state_dict(checkpoint["model_state"])
    if checkpoint["optimizer_state"] is not None:
        optimizer.load_state_dict(checkpoint["optimizer_state"])
    return int(checkpoint["epoch"]), list(checkpoint["history"])


def _progress(batches, enabled: bool, description: str):
    if not enabled:
        return batches
    from tqdm.auto import tqdm

    return tqdm(batches, desc=description, leave=False, file=sys.stderr, dynamic_ncols=True)
