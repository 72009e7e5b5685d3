"""The plan of a generation: the solve order, the solver chosen for it, and the files in
``<out>.parts/``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from pdesuite.datasets.generation.blocks import probe_solver
from pdesuite.datasets.sorting import timed_sort_order

#: Upper bound on the float32 trajectories of one batch of a time-dependent family.
MAX_BATCH_BYTES = 256 * 2**20


_PLAN_FILE = "plan.json"


_ORDER_FILE = "order.npy"


_LOCK_FILE = "lock"


def family_units(family: Any) -> dict[str, str]:
    units = getattr(family, "units", None)
    if callable(units):
        units = units()
    return dict(units or {})


def family_config_of(family: Any) -> dict[str, Any]:
    config = family.config()
    try:
        json.loads(json.dumps(config))
    except TypeError as error:
        raise TypeError(f"family: {type(family).__name__}.config() must be JSON-serialisable "
                        f"({error})") from error
    return config


@dataclass
class Plan:
    """Everything a worker needs; pickled to each process."""

    family: Any
    n: int
    seed: int
    solver: dict[str, Any]
    backend: str
    chunk_size: int
    order: np.ndarray
    parts: Path
    run_hash: str
    time_dependent: bool
    batch_size: int = 1

    @property
    def n_blocks(self) -> int:
        return -(-self.n // self.chunk_size)

    def block_indices(self, block: int) -> np.ndarray:
        return self.order[block * self.chunk_size:(block + 1) * self.chunk_size]

    def block_path(self, block: int) -> Path:
        return self.parts / f"block_{block:06d}.h5"


def prepare_plan(family, run_config, run_hash, parts: Path, group_size, bar, solver_config,
                  backend, time_dependent, comm, rank, size,
                  batch_size: int = 1) -> tuple[Plan, dict[str, float]]:
    """Load the plan of a partial run, or make and save a new one (rank 0).

    A new plan of a ``solver="auto"`` run times the candidates here, once, so that every
    worker and every resume solves with the same choice (saved in the plan as ``solver``).
    """
    plan_path = parts / _PLAN_FILE
    order_path = parts / _ORDER_FILE
    payload = None
    if rank == 0:
        try:
            if plan_path.exists():
                saved = json.loads(plan_path.read_text())
                if saved.get("run_hash") != run_hash:
                    changes = _differences(saved.get("config", {}), run_config)
                    raise ValueError(
                        f"{plan_path}: a partial run of another configuration is in "
                        f"{parts} ({'; '.join(changes) or 'different settings'}). Rerun with the "
                        "same arguments to resume it, or pass overwrite=True to discard it.")
                order = np.load(order_path)
                timings = saved["timings"]
                solver_config = saved.get("solver", solver_config)
            else:
                n, seed = run_config["n"], run_config["seed"]
                method = run_config["sort_method"]
                if method in ("greedy", "fft"):
                    bar.set_description_str(f"generate {family.name} (sorting)")
                    keys, key_time = _draw_keys(family, n, seed, bar)
                    order, sort_time = timed_sort_order(keys, method=method, group_size=group_size,
                                                        seed=seed)
                    del keys
                    bar.set_description_str(f"generate {family.name}")
                else:
                    order, sort_time = timed_sort_order(np.zeros((n, 1)), method=method, seed=seed)
                    key_time = 0.0
                timings = {"sort_time": sort_time, "key_time": key_time}
                if solver_config["mode"] == "auto":
                    bar.set_description_str(f"generate {family.name} (timing solvers)")
                    solver_config = probe_solver(family, solver_config, order, run_config["seed"],
                                                  run_config["chunk_size"], backend)
                    bar.set_description_str(f"generate {family.name}")
                write_atomic(order_path, lambda p: save_array(p, order))
                write_atomic(plan_path, lambda p: p.write_text(json.dumps(
                    {"run_hash": run_hash, "config": run_config, "timings": timings,
                     "solver": solver_config}, indent=1)))
            payload = (order, timings, solver_config)
        except BaseException as error:  # any error: re-raised on every rank
            payload = error
    if comm is not None and size > 1:
        payload = comm.bcast(payload, root=0)
    if isinstance(payload, BaseException):
        raise payload
    order, timings, solver_config = payload
    plan = Plan(family=family, n=run_config["n"], seed=run_config["seed"], solver=solver_config,
                 backend=backend, chunk_size=run_config["chunk_size"],
                 order=np.asarray(order, dtype=np.int64), parts=parts, run_hash=run_hash,
                 time_dependent=time_dependent, batch_size=batch_size)
    return plan, timings


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write(temporary)
    os.replace(temporary, path)


def save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as stream:
        np.save(stream, array)


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def locked(parts: Path):
    """Hold an exclusive lock on the parts folder, so that two runs cannot share it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    with open(parts / _LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            raise RuntimeError(f"{parts}: another generation is writing into this folder; wait for "
                               "it to finish (or stop it) before rerunning") from error
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in keys
        if old.get(key) != new.get(key)
    ]


def _draw_keys(family: Any, n: int, seed: int, bar) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    first = np.asarray(family.sort_key(family.sample(np.random.default_rng([seed, 0]))))
    if first.ndim not in (1, 2, 3):
        raise ValueError(
            f"family.sort_key: must return a 1-D to 3-D array, got shape {first.shape}"
        )
    keys = np.empty((n, *first.shape), dtype=np.float64)
    keys[0] = first
    for index in range(1, n):
        key = np.asarray(family.sort_key(family.sample(np.random.default_rng([seed, index]))))
        if key.shape != first.shape:
            raise ValueError(f"family.sort_key: sample {index} has key shape {key.shape}, sample 0 "
                             f"{first.shape}")
        keys[index] = key
    return keys, time.perf_counter() - start


def discard_unstarted_parts(parts: Path) -> bool:
    """Remove ``parts`` if no block of it is finished; True if it was removed.

    Before its first shard is complete, a parts folder holds only what the run derived from
    its arguments (the plan, the solve order, the lock, temporary files), all of which a rerun
    makes again. Called only for a folder the failing run itself created; a folder with a
    finished shard is kept, so that a rerun resumes from it.
    """
    if not parts.is_dir() or any(parts.glob("block_*.h5")):
        return False
    shutil.rmtree(parts, ignore_errors=True)
    return not parts.exists()


def finished_blocks(parts: Path) -> int:
    """The number of finished shards (``block_XXXXXX.h5``) in ``parts`` (0 if it is gone)."""
    return len(list(parts.glob("block_*.h5"))) if parts.is_dir() else 0


def remove_stale_temporaries(parts: Path, rank: int) -> None:
    if rank != 0:
        return
    for temporary in parts.glob("*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def batch_size_may_change_arrays(family: Any, solver_config: Mapping[str, Any]) -> bool:
    """Whether a time-dependent run's arrays may depend on its batch size (it then joins the hash).

    True when the family says so (``batch_invariant = False``), and also when its own
    ``simulate_batch`` makes linear solves (``batch_solves``, default True) while the run's
    solver keeps state from one solve to the next (``mode == "recycle"`` or a tuner): every
    sample of a batch shares that solver, so solves interleaved across the samples of a batch
    would see a recycle space or tuner history that depends on the batch, whatever
    ``batch_invariant`` says. Generation cannot watch the order of the solves before it runs
    them, so it assumes the worst. Not for the default
    :meth:`~pdesuite.datasets.pde_family.PDEFamily.simulate_batch` (sample by sample, in order), a
    stateless solver (``"independent"`` without a tuner), or a family that declares
    ``batch_solves = False`` (``navier-stokes``, ``burgers``), whose hashes stay what they were.
    """
    if not bool(getattr(family, "batch_invariant", True)):
        return True
    stateful = solver_config["mode"] == "recycle" or "tune" in solver_config
    if not stateful:
        return False
    from pdesuite.datasets.pde_family import PDEFamily

    simulate_batch = getattr(type(family), "simulate_batch", None)
    if simulate_batch is None or simulate_batch is PDEFamily.simulate_batch:
        return False  # generation loops over simulate(), or the default loop: in order
    return bool(getattr(family, "batch_solves", True))


def effective_batch_size(family: Any, batch_size: Optional[int]) -> int:
    """``batch_size`` (or the family's ``default_batch_size``), cut to :data:`MAX_BATCH_BYTES`."""
    if batch_size is None:
        batch_size = check_count(
            "family.default_batch_size", getattr(family, "default_batch_size", 1), 1
        )
    output_shape = getattr(family, "output_shape", None)
    if isinstance(output_shape, tuple) and output_shape:
        trajectory_bytes = 4 * int(np.prod(output_shape))
        batch_size = min(batch_size, max(1, MAX_BATCH_BYTES // max(trajectory_bytes, 1)))
    return batch_size


def check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)
