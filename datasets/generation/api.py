"""generate(): the orchestrator of a generation run (see the package docstring)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np

from pdesuite.datasets.generation.blocks import check_learned_preconditioner, check_solver
from pdesuite.datasets.generation.output import existing_output, warn_failed_solves, write_dataset
from pdesuite.datasets.generation.plan import (
    batch_size_may_change_arrays,
    check_count,
    config_hash,
    discard_unstarted_parts,
    effective_batch_size,
    family_config_of,
    locked,
    prepare_plan,
    remove_stale_temporaries,
)
from pdesuite.datasets.generation.shards import shard_is_done
from pdesuite.datasets.generation.solver_config import solver_request
from pdesuite.datasets.generation.workers import run_share
from pdesuite.datasets.storage import SCHEMA_VERSION

ORDERS = ("sorted", "given", "random")


GENERATION_SORT_METHODS = ("greedy", "fft", "none")


DEFAULT_CHUNK_SIZE = 256


def generate(family: Any, n: int, out: Union[str, os.PathLike] = "dataset.h5", *,
             order: str = "sorted", sort_method: str = "greedy", group_size: int = 2000,
             solver: Union[str, Mapping[str, Any]] = "auto", backend: str = "numpy",
             workers: int = 1, seed: int = 0, chunk_size: int = DEFAULT_CHUNK_SIZE,
             batch_size: Optional[int] = None, progress: bool = True,
             compression: Optional[str] = "gzip", overwrite: bool = False,
             keep_parts: bool = False, mp_context: str = "spawn", comm: Any = None,
             **family_config: Any) -> Path:
    """Generate ``n`` samples of a PDE family into one HDF5 file (schema: :mod:`.storage`).

    Args:
        family: a :class:`~pdesuite.datasets.pde_family.PDEFamily` instance, or a registered name
            (``"darcy"``, ...) built with ``**family_config``.
        n: number of samples, >= 1.
        out: the HDF5 file to write. Work in progress lives in ``<out>.parts/``.
        order: ``"sorted"`` (default; by ``sort_method``), ``"given"`` (index order) or
            ``"random"`` (a permutation seeded by ``seed``).
        sort_method: ``"greedy"`` (default), ``"fft"`` or ``"none"``; see :mod:`.sorting`.
        group_size: greedy sorting group size (default 2000).
        solver: ``"auto"`` (default: the fastest of the direct path, preconditioned Krylov and
            recycling, timed on the first samples once per run and recorded in the file's
            ``solver_config`` with ``chosen_by``, the estimates and the probe's time; see
            :mod:`.solver_choice`; ``{"method": "auto", "rtol": ...}`` sets ``rtol``,
            ``atol`` and ``maxiter`` of every candidate), ``"recycle"``, ``"independent"``,
            ``"direct"`` (a sparse direct solve per sample, the symbolic analysis of the shared
            sparsity pattern reused within a block) or a dict; see :func:`resolve_solver_config`.
            Its ``tune`` entry has a tuner choose ω or k per solve, e.g.
            ``{"method": "rcg", "M": "ssor", "tune": "omega"}`` (Tsallis-INF over 20 values of
            ω in [1, 1.95]); see :func:`resolve_tune_config`.
        backend: solver backend, ``"numpy"`` (default; required for recycling and
            ``"direct"``), ``"petsc"`` or ``"torch"``.
        workers: processes on this machine (default 1: in this process).
        seed: the dataset seed; sample ``i`` is drawn from ``default_rng([seed, i])``.
        chunk_size: samples per block (default 256): each block starts with a fresh recycle
            space, is one atomic shard and the unit of resumption. It is part of the
            configuration: the arrays depend on it in their last bits, not on ``workers``.
        batch_size: time-dependent families only: samples simulated at once through
            ``family.simulate_batch`` (consecutive samples of a block). None (default) takes
            ``family.default_batch_size`` (8 for ``navier-stokes`` at 64², 32 for
            ``burgers`` at 256 points, 1 for families that simulate one sample at a time). Cut
            so that one batch's trajectories take at most :data:`MAX_BATCH_BYTES` (256 MiB) of
            float32. It changes the speed and the
            memory, not the arrays, unless the family sets ``batch_invariant = False``, or
            overrides ``simulate_batch`` with one that uses its ``solve`` argument while the
            solver keeps state (recycling or tuning); then it is part of the configuration.
            The progress bar advances per batch.
        progress: show a tqdm progress bar (rate and ETA) on stderr.
        compression: of the final file: ``"gzip"`` (default), ``"lzf"`` or None.
        overwrite: replace an existing ``out`` or partial run of another configuration.
        keep_parts: keep ``<out>.parts/`` (the shards) after the merge.
        mp_context: multiprocessing start method of the workers (``"spawn"`` default, or
            ``"forkserver"``).
        comm: an mpi4py communicator, for ``mpiexec -n N`` runs: rank 0 plans and merges, and
            every rank solves a contiguous share of the blocks (``out`` must be on a file
            system all ranks see). ``workers`` then applies per rank.

    Every argument is checked before anything is written: the solver configuration is
    resolved and its block solver built and run once on a small test system, so that a bad
    option (``rtol=-1``, an unknown method, preconditioner or option) fails at once. A run that
    fails or is interrupted before its first block is finished removes the ``<out>.parts/`` it
    created (it holds only the plan then), so that the corrected call starts afresh; finished
    blocks, and a parts folder from an earlier run, are always kept.

    Returns:
        The path of the finished file.

    Warns:
        FailedSolvesWarning: (a ``UserWarning``) when samples of the file did not converge
            (``solver/converged`` False), with their count, reasons and what to change. They
            are stored and flagged, not dropped. Also when ``out`` was already complete.

    Raises:
        ValueError: bad arguments, the solver's included (the message starts with
            ``"solver: "`` and the option: ``"solver: rtol: ..."``); ``out`` holds another
            dataset; a partial run in ``<out>.parts/`` was made with another configuration (the
            message names its plan file and the differences).
        RuntimeError: a worker failed (finished blocks are kept; rerun to resume).
        OSError: a shard or file cannot be read; a corrupt chunk is named with its file and
            sample.
        KeyboardInterrupt: passed on after the workers are stopped and the lock released;
            finished blocks are kept, and the same call resumes.
    """
    if isinstance(family, str):
        from pdesuite.datasets.pde_family import get_family

        family = get_family(family, **family_config)
    elif family_config:
        raise TypeError(
            f"family_config {sorted(family_config)}: only allowed when family is a name"
        )
    for name in ("sample", "sort_key", "config", "coordinates"):
        if not callable(getattr(family, name, None)):
            raise TypeError(
                f"family: expected a PDEFamily, got {type(family).__name__} without {name}()"
            )
    n = check_count("n", n, 1)
    seed = check_count("seed", seed, 0)
    workers = check_count("workers", workers, 1)
    chunk_size = check_count("chunk_size", chunk_size, 1)
    group_size = check_count("group_size", group_size, 1)
    if batch_size is not None:
        batch_size = check_count("batch_size", batch_size, 1)
    if order not in ORDERS:
        raise ValueError(f"order: must be one of {ORDERS}, got {order!r}")
    if sort_method not in GENERATION_SORT_METHODS:
        raise ValueError(
            f"sort_method: must be one of {GENERATION_SORT_METHODS}, got {sort_method!r}"
        )
    if mp_context not in ("spawn", "forkserver"):
        raise ValueError(f"mp_context: must be 'spawn' or 'forkserver', got {mp_context!r}")
    if compression not in ("gzip", "lzf", None):
        raise ValueError(f"compression: must be 'gzip', 'lzf' or None, got {compression!r}")
    if not isinstance(backend, str) or backend not in ("numpy", "petsc", "torch"):
        raise ValueError(f"backend: must be 'numpy', 'petsc' or 'torch', got {backend!r}")
    time_dependent = bool(getattr(family, "time_dependent", False))
    batch_size = effective_batch_size(family, batch_size) if time_dependent else 1
    solver_config = solver_request(family, solver, backend, n, time_dependent)
    if solver_config["mode"] in ("recycle", "direct") and backend != "numpy":
        what = "recycling" if solver_config["mode"] == "recycle" else "solver 'direct'"
        raise ValueError(f"backend: {what} runs on the 'numpy' backend, got {backend!r}; use "
                         "solver='independent' for another backend")
    check_solver(solver_config, backend)
    check_learned_preconditioner(family, solver_config, seed, backend)
    effective_sort = (
        sort_method if order == "sorted" else ("random" if order == "random" else "none")
    )
    run_config = {
        "schema_version": SCHEMA_VERSION,
        "family": str(family.name),
        "family_config": family_config_of(family),
        "n": n, "seed": seed, "order": order, "sort_method": effective_sort,
        "group_size": int(group_size) if effective_sort == "greedy" else None,
        "solver": solver_config, "backend": backend, "chunk_size": chunk_size,
        "kind": "time-dependent" if time_dependent else "steady",
    }
    if time_dependent and batch_size_may_change_arrays(family, solver_config):
        # Its arrays may depend on which samples share a batch: a resume must batch alike.
        run_config["batch_size"] = batch_size
    run_hash = config_hash(run_config)
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"out: {out} is a directory; give the path of the HDF5 file to write")
    parts = out.with_name(out.name + ".parts")

    rank = comm.Get_rank() if comm is not None else 0
    size = comm.Get_size() if comm is not None else 1

    def root_prepare():
        out.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            if out.exists():
                out.unlink()
            if parts.exists():
                shutil.rmtree(parts)
        if out.exists() and existing_output(out, run_hash):
            if parts.exists() and not keep_parts:
                shutil.rmtree(parts)
            return None
        created = not parts.exists()
        parts.mkdir(exist_ok=True)
        return created

    if rank == 0:
        try:
            status: Any = root_prepare()
        except BaseException as error:  # any error: re-raised on every rank
            status = error
    else:
        status = None
    if comm is not None and size > 1:
        status = comm.bcast(status, root=0)
    if isinstance(status, BaseException):
        raise status
    if status is None:
        if rank == 0:
            warn_failed_solves(out)
        return out
    created_parts = bool(status)

    bar = progress_bar(n, f"generate {family.name}", progress and rank == 0)
    lock = locked(parts) if rank == 0 else contextlib.nullcontext()
    try:
        with lock:
            plan, timings = prepare_plan(family, run_config, run_hash, parts, group_size, bar,
                                          solver_config, backend, time_dependent, comm, rank, size,
                                          batch_size)
            remove_stale_temporaries(parts, rank)
            pending = (
                [
                    block
                    for block in range(plan.n_blocks)
                    if not shard_is_done(
                        plan.block_path(block), plan.run_hash, plan.block_indices(block)
                    )
                ]
                if rank == 0
                else None
            )
            if comm is not None and size > 1:
                pending = comm.bcast(pending, root=0)
            pending_set = set(pending)
            done = sum(
                len(plan.block_indices(b)) for b in range(plan.n_blocks) if b not in pending_set
            )
            bar.n = done
            bar.refresh()
            mine = (
                [list(map(int, share)) for share in np.array_split(pending, size)][rank]
                if pending
                else []
            )
            error = None
            try:
                run_share(plan, mine, workers, bar, mp_context)
            except BaseException as exc:  # any error: gathered below under MPI
                if comm is None or size == 1:
                    raise
                error = exc
            if comm is not None and size > 1:
                failures = [e for e in comm.allgather(repr(error) if error else None) if e]
                if error is not None:
                    raise error
                if failures:
                    raise RuntimeError(f"generation failed on another rank: {failures[0]}")
            bar.close()
            merge_error = None
            if rank == 0:
                try:
                    write_dataset(plan, out, run_config, timings, family, compression)
                except BaseException as exc:  # any error: shared with the other ranks
                    merge_error = exc
            if comm is not None and size > 1:
                remote = comm.bcast(repr(merge_error) if merge_error else None, root=0)
                if remote and rank != 0:
                    raise RuntimeError(f"the merge on rank 0 failed: {remote}")
            if merge_error is not None:
                raise merge_error
        if rank == 0 and not keep_parts:
            shutil.rmtree(parts, ignore_errors=True)
    except BaseException:
        # A run that fails (or is interrupted) before its first block is finished leaves no
        # <out>.parts/ it created: it holds only the derived plan, which would otherwise make
        # a corrected command look like a partial run of another configuration.
        if rank == 0 and created_parts:
            discard_unstarted_parts(parts)
        raise
    finally:
        bar.close()
    if rank == 0:
        warn_failed_solves(out)
    return out


class _NoBar:
    n = 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def refresh(self) -> None:
        pass

    def set_description_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, description: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="sample", dynamic_ncols=True, smoothing=0.05,
                file=sys.stderr)
