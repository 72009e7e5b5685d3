"""The final dataset file: the shards merged at the samples' draw indices, and the check of an
existing one."""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from pdesuite.datasets.generation.blocks import h5py_module, tuned_stat
from pdesuite.datasets.generation.plan import Plan, family_units
from pdesuite.datasets.generation.shards import merge_shards, shard_layout
from pdesuite.datasets.storage import create_dataset_file, create_sample_dataset, schema_attrs


def write_dataset(
    plan: Plan,
    out: Path,
    run_config: Mapping[str, Any],
    timings: Mapping[str, float],
    family: Any,
    compression: Optional[str],
) -> None:
    fields, parameters = shard_layout(plan.block_path(0))
    attrs = schema_attrs(family=family.name, config=run_config["family_config"], seed=plan.seed,
                         n=plan.n, kind="time-dependent" if plan.time_dependent else "steady",
                         units=family_units(family), order=run_config["order"],
                         sort_method=run_config["sort_method"], sort_time=timings["sort_time"])
    attrs.update(
        {
            "solver_config": json.dumps(plan.solver, sort_keys=True),
            "run_hash": plan.run_hash,
            "chunk_size": plan.chunk_size,
            "key_time": timings["key_time"],
            "backend": plan.backend,
        }
    )
    temporary = out.with_name(out.name + ".tmp")
    tuned = tuned_stat(plan)
    with create_dataset_file(temporary, n=plan.n, fields=fields, attrs=attrs,
                             coordinates=family.coordinates(), parameters=parameters,
                             solver_stats=True, compression=compression,
                             mesh=_mesh_description(family)) as handle:
        if tuned is not None:
            create_sample_dataset(handle["solver"], tuned, plan.n, (), np.float64)
        create_sample_dataset(handle, "solve_order", plan.n, (), np.int64,
                              data=plan.order.astype(np.int64))
        shards = [plan.block_path(block) for block in range(plan.n_blocks)]
        handle.attrs["solve_time"] = merge_shards(handle, shards, plan.chunk_size, tuned)
        handle.attrs["complete"] = True
    os.replace(temporary, out)


def _mesh_description(family: Any):
    """The family's FE mesh for the file's ``mesh`` group, or None (grid families; a family
    object that does not derive from ``PDEFamily`` may lack the method)."""
    describe = getattr(family, "mesh_description", None)
    return describe() if callable(describe) else None


def existing_output(out: Path, run_hash: str) -> bool:
    """True if ``out`` is a complete file of this very run; raise if it is another dataset."""
    h5py = h5py_module()
    try:
        with h5py.File(out, "r") as handle:
            same = str(handle.attrs.get("run_hash", "")) == run_hash and bool(
                handle.attrs.get("complete", False)
            )
    except OSError as error:
        raise ValueError(
            f"out: {out} exists but is not a readable HDF5 file ({error}); remove it or "
            "pass overwrite=True"
        ) from error
    if not same:
        raise ValueError(f"out: {out} exists and holds another dataset (a different configuration "
                         "or an incomplete file); choose another path or pass overwrite=True")
    return True


class FailedSolvesWarning(UserWarning):
    """A generated dataset holds samples whose solve did not converge (``solver/converged``)."""


def failure_summary(out: Path, flags: bool = False) -> str | None:
    """One line on the samples of ``out`` whose solve failed, or None if every solve converged.

    The line names the file, the count, the reasons (``ConvergedReason`` names, most common
    first) and what to try, in the words of ``generate()`` or, with ``flags``, of the command
    line. Failed samples are kept in the file and flagged, never dropped, so that a dataset
    says what its solver did; a loader should refuse or skip them.
    """
    from pdesuite.solvers import ConvergedReason

    h5py = h5py_module()
    with h5py.File(out, "r") as handle:
        if "solver" not in handle or "converged" not in handle["solver"]:
            return None
        converged = np.asarray(handle["solver"]["converged"][()], dtype=bool)
        failed = int((~converged).sum())
        if failed == 0:
            return None
        reasons = Counter(int(r) for r in handle["solver"]["reason"][()][~converged])
    names = []
    for value, count in reasons.most_common():
        try:
            name = ConvergedReason(value).name
        except ValueError:
            name = f"reason {value}"
        names.append(f"{count} {name}")
    hint = ("--solver direct or a --pc, a larger --maxiter or a looser --rtol, with --overwrite"
            if flags else "solver='direct' or a preconditioner M, a larger maxiter or a looser "
            "rtol, with overwrite=True")
    return (f"{out}: {failed} of {len(converged)} samples did not converge (solver/converged is "
            f"False; {', '.join(names)}); they are stored and flagged, and training on them "
            f"learns from unconverged solutions. Generate again with a solver that converges on "
            f"this family: {hint}")


def warn_failed_solves(out: Path) -> str | None:
    """Warn (:class:`FailedSolvesWarning`, :func:`failure_summary`) if ``out`` has failed solves."""
    summary = failure_summary(out)
    if summary is not None:
        warnings.warn(summary, FailedSolvesWarning, stacklevel=3)
    return summary
