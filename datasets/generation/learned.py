"""A trained preconditioner as the ``M`` of a generation: ``solver={"method": "fcg",
"M": "run/pc"}``.

A string ``M`` that names no preconditioner of :mod:`pdesuite.solvers` and is a directory
holding ``checkpoint.pt`` is a run of ``train_preconditioner``. Its loader lives in
``pdesuite.operators`` (a layer above this one), so it is found through the
``pdesuite.preconditioner_sources`` entry point, never imported. A source is opened once per
block and makes the preconditioner of each sample from the sample's system and input fields
(the Darcy coefficient), see ``pdesuite.operators.preconditioning.source``.

The checkpoint's SHA-256 goes into the solver configuration: a resume after the network was
retrained in the same directory is a different run, refused as such.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pdesuite.solvers.preconditioner import NAMED_PRECONDITIONERS

ENTRY_POINT_GROUP = "pdesuite.preconditioner_sources"

#: The methods that take a nonlinear preconditioner, as a network is.
FLEXIBLE_METHODS = ("fcg", "dcdm", "fgmres")


def is_run_directory(M: Any) -> bool:
    """True when ``M`` is a string that names no preconditioner and a directory with a
    ``checkpoint.pt`` (a trained run)."""
    return (isinstance(M, str) and M.lower() not in NAMED_PRECONDITIONERS
            and (Path(M) / "checkpoint.pt").is_file())


def check_run_directory(M: str, method: str, mode: str) -> None:
    """Raise ValueError when a string ``M`` is neither a preconditioner name nor a run, or a
    run given to a method that needs a linear preconditioner."""
    if M.lower() in NAMED_PRECONDITIONERS:
        return
    if not is_run_directory(M):
        raise ValueError(f"solver: M: {M!r} is neither a preconditioner name "
                         f"({sorted(NAMED_PRECONDITIONERS)}) nor a run directory with a "
                         "checkpoint.pt")
    if mode != "independent" or method not in FLEXIBLE_METHODS:
        raise ValueError(f"solver: M: the learned preconditioner {M!r} is nonlinear; use it with "
                         f"method {' / '.join(repr(m) for m in FLEXIBLE_METHODS)}, not {method!r}")


def checkpoint_sha256(M: str) -> str:
    """SHA-256 of the run's ``checkpoint.pt``, recorded in the solver configuration."""
    digest = hashlib.sha256()
    with open(Path(M) / "checkpoint.pt", "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_source(M: str, sha256: str | None = None) -> Any:
    """The preconditioner source of the run directory ``M`` (``for_system(system, inputs)``).
    Raises RuntimeError when no installed package provides the loader, or when
    the checkpoint is no longer the one of ``sha256`` (retrained since the run was planned)."""
    if sha256 is not None and checkpoint_sha256(M) != sha256:
        raise RuntimeError(f"solver: M: the checkpoint in {M!r} changed since this run was "
                           "planned (its SHA-256 differs); start a new run (overwrite=True)")
    loaders = entry_points(group=ENTRY_POINT_GROUP)
    if not loaders:
        raise RuntimeError(f"solver: M: {M!r} is a trained run, but no package provides the "
                           f"{ENTRY_POINT_GROUP!r} entry point; install pdesuite with torch "
                           "(pip install -e '.[torch]')")
    return next(iter(loaders)).load()(M)
