"""The HDF5 schema of a pdesuite dataset: writing, validating and opening.

One file holds one dataset; sample ``i`` is stored at index ``i`` whatever order it was solved
in. Modelled on The Well and PDEBench: arrays ``[n, C, *spatial]``, one chunk per sample.

=============================  ==========================  ========================================
Path                           Type, shape                 Meaning
=============================  ==========================  ========================================
``inputs``                     float32 ``[n, C_in, *sp]``  the input fields (e.g. the coefficient);
                                                           optional for time-dependent families
``outputs``                    float32 ``[n, C_out, *sp]`` the solution fields (steady families)
``trajectories``               float32 ``[n, T, C, *sp]``  time-dependent families, instead of
                                                           ``outputs``
``coordinates``                float64 ``[ndim, *sp]``     grid coordinates of every point, or
                                                           ``[n_points, ndim]`` for FE DoFs
``parameters/<name>``          ``[n, ...]``                each random parameter of a sample, as
                                                           ``family.sample`` drew it
``solver/iterations``          int64 ``[n]``               iterations (summed over the time steps
                                                           of a trajectory)
``solver/matvecs``             int64 ``[n]``               products with A
``solver/residual``            float64 ``[n]``             true relative residual ``‖b−Ax‖/‖b‖``
                                                           (largest over time steps)
``solver/time``                float64 ``[n]``             seconds spent in the solver
``solver/reason``              int16 ``[n]``               ``ConvergedReason`` value (PETSc's
                                                           numbering; > 0 converged, 0 no solve,
                                                           worst over time steps)
``solver/converged``           bool ``[n]``                the solve (all steps) converged; a
                                                           failed sample is kept and flagged
``solver/steps``               int64 ``[n]``               linear solves per sample (1 if steady)
``solver/block``               int64 ``[n]``               generation block that solved it
``solver/position``            int64 ``[n]``               position in the solve order
``solve_order``                int64 ``[n]``               sample solved at each position
``stats/<split>/...``          float64 ``[C]``             per-channel mean/std of a training
                                                           split, cached by ``PDEDataset``
``mesh/...``                   group                       FE files: mesh, degree, Dirichlet DoFs,
                                                           DoF coordinates (layout:
                                                           :mod:`pdesuite.datasets.mesh_io`)
=============================  ==========================  ========================================

Root attributes: ``schema_version`` (int), ``family`` (name), ``config`` (JSON of the family's
full configuration), ``seed``, ``pdesuite_version``, ``units`` (JSON: field name -> unit),
``order`` (``"sorted"``, ``"given"`` or ``"random"``), ``sort_method``, ``sort_time`` (s, the
sorting alone), ``created`` (ISO 8601, UTC), ``n``, ``kind`` (``"steady"`` or
``"time-dependent"``) and ``complete`` (True once every sample is written). Optional:
``grid_convention``, where the points of a grid lie (:data:`GRID_CONVENTIONS`; read it with
:func:`grid_convention`: a grid file without it is node-centred, as every one was before the
attribute existed). Generated files add ``solver_config`` (JSON), ``run_hash``, ``chunk_size``,
``key_time`` and ``solve_time`` (s); converted files add ``source`` and ``source_format``.
``solver/``, ``parameters/``, ``solve_order``, ``stats/`` and ``mesh/`` are optional (a
converted file has no solver statistics; a grid family's file has no mesh).

Arrays are chunked one sample per chunk and compressed (gzip level 4 with shuffle by default;
``"lzf"`` or ``None`` on request). Every per-sample dataset (the arrays, ``parameters/``,
``solver/``, ``solve_order``) carries HDF5's Fletcher-32 checksum on each chunk, so that a
damaged chunk is an error when it is read, never silently different data, compressed or not.
:func:`read_rows` and :func:`read_sample` turn that error into an ``OSError`` naming the file,
the dataset and the sample; ``open_dataset(path, check_data="all")`` verifies every chunk.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np

__all__ = [
    "DATA_KEYS",
    "GRID_CONVENTIONS",
    "REQUIRED_ATTRS",
    "SCHEMA_VERSION",
    "SOLVER_STATS",
    "create_dataset_file",
    "create_sample_dataset",
    "describe",
    "grid_convention",
    "open_dataset",
    "read_rows",
    "read_sample",
    "schema_attrs",
    "validate_file",
]

SCHEMA_VERSION = 1
#: Datasets that hold the samples' fields, and their rank counted without the spatial axes.
DATA_KEYS = {"inputs": 2, "outputs": 2, "trajectories": 3}
#: Per-sample solver statistics and their dtypes.
SOLVER_STATS: dict[str, np.dtype] = {
    "iterations": np.dtype(np.int64),
    "matvecs": np.dtype(np.int64),
    "residual": np.dtype(np.float64),
    "time": np.dtype(np.float64),
    "reason": np.dtype(np.int16),
    "converged": np.dtype(np.bool_),
    "steps": np.dtype(np.int64),
    "block": np.dtype(np.int64),
    "position": np.dtype(np.int64),
}
REQUIRED_ATTRS = ("schema_version", "family", "config", "seed", "pdesuite_version", "units",
                  "order", "sort_method", "sort_time", "created", "n", "kind", "complete")
COMPRESSIONS = ("gzip", "lzf", None)
#: Values of the ``grid_convention`` root attribute: where the ``n`` points of an axis of the
#: domain ``[0, 1]`` lie. ``"node"``: at ``i / (n - 1)``, both ends included (the Dirichlet
#: finite-difference families). ``"cell"``: spaced ``1 / n``, the domain ``n`` spacings long
#: (periodic grids at ``i / n``, cell centres at ``(i + 1/2) / n``; neuraloperator's, FNO's
#: periodic and PDEBench's data). ``"mesh"``: FE DoFs, no grid. A model that appends
#: coordinates or pads a fraction of the domain needs it to treat every resolution alike.
GRID_CONVENTIONS = ("node", "cell", "mesh")

PathLike = Union[str, os.PathLike]


def _h5py():
    import h5py

    return h5py


def schema_attrs(*, family: str, config: Mapping[str, Any], seed: int, n: int, kind: str,
                 units: Optional[Mapping[str, str]] = None, order: str = "given",
                 sort_method: str = "none", sort_time: float = 0.0,
                 grid_convention: str | None = None) -> dict[str, Any]:
    """The required root attributes, ``complete`` set to False (the writer sets it last).

    ``grid_convention`` (one of :data:`GRID_CONVENTIONS`) is added when given, or else when
    ``family`` names a registered family that declares one (``PDEFamily.grid_convention``);
    otherwise it is left out, and readers take the grid as node-centred.
    """
    from pdesuite import __version__

    if kind not in ("steady", "time-dependent"):
        raise ValueError(f"kind: must be 'steady' or 'time-dependent', got {kind!r}")
    if grid_convention is None:
        grid_convention = _family_grid_convention(str(family))
    elif grid_convention not in GRID_CONVENTIONS:
        raise ValueError(f"grid_convention: must be one of {list(GRID_CONVENTIONS)}, got "
                         f"{grid_convention!r}")
    convention = {} if grid_convention is None else {"grid_convention": grid_convention}
    return {
        "schema_version": SCHEMA_VERSION,
        "family": str(family),
        "config": json.dumps(dict(config), sort_keys=True),
        "seed": int(seed),
        "pdesuite_version": __version__,
        "units": json.dumps(dict(units or {}), sort_keys=True),
        "order": str(order),
        "sort_method": str(sort_method),
        "sort_time": float(sort_time),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "n": int(n),
        "kind": kind,
        **convention,
        "complete": False,
    }


def _family_grid_convention(name: str) -> str | None:
    """The ``grid_convention`` that the registered family ``name`` declares, or None."""
    from pdesuite.datasets.pde_family import FAMILIES

    convention = getattr(FAMILIES.get(name), "grid_convention", None)
    return convention if convention in GRID_CONVENTIONS else None


def grid_convention(handle) -> str:
    """The ``grid_convention`` of an open file: its attribute, else inferred as files had it.

    A file written before the attribute existed is ``"mesh"`` when its coordinates are a point
    list ``[n_points, ndim]`` (FE DoFs) and ``"node"`` otherwise, the convention every grid
    file had then. Returns one of :data:`GRID_CONVENTIONS`.
    """
    if "grid_convention" in handle.attrs:
        return str(handle.attrs["grid_convention"])
    coordinates = handle.get("coordinates")
    if coordinates is not None and coordinates.ndim == 2 and coordinates.shape[0] != 1:
        return "mesh"  # [n_points, ndim] FE DoFs (a 1-D grid's coordinates are [1, n])
    return "node"


def _compression_options(compression: Optional[str]) -> dict[str, Any]:
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression: must be one of {COMPRESSIONS}, got {compression!r}")
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    return {}


def create_dataset_file(path: PathLike, *, n: int,
                        fields: Mapping[str, tuple[tuple[int, ...], Any]],
                        attrs: Mapping[str, Any], coordinates: Optional[np.ndarray] = None,
                        parameters: Optional[Mapping[str, tuple[tuple[int, ...], Any]]] = None,
                        solver_stats: bool = True, compression: Optional[str] = "gzip",
                        mesh: Any = None):
    """Create a file with empty datasets of the schema and return it open for writing.

    Args:
        path: file to create (truncated if it exists).
        n: number of samples.
        fields: ``name -> (per-sample shape, dtype)`` for ``inputs``, ``outputs`` and/or
            ``trajectories``; each becomes ``[n, *shape]``, one chunk per sample.
        attrs: root attributes (see :func:`schema_attrs`).
        coordinates: ``[ndim, *spatial]`` or ``[n_points, ndim]`` array, stored as float64.
        parameters: ``name -> (per-sample shape, dtype)`` of the ``parameters/`` group.
        solver_stats: create the ``solver/`` group of :data:`SOLVER_STATS`.
        compression: ``"gzip"`` (default), ``"lzf"`` or None.
        mesh: a :class:`~pdesuite.datasets.mesh_io.MeshInfo` written as the ``mesh`` group (FE
            data), or None (default).

    Returns:
        The open ``h5py.File``; the caller closes it.
    """
    h5py = _h5py()
    _compression_options(compression)
    n = int(n)
    if n < 0:
        raise ValueError(f"n: must be >= 0, got {n}")
    unknown = set(fields) - set(DATA_KEYS)
    if unknown:
        raise ValueError(f"fields: unknown dataset(s) {sorted(unknown)}; expected "
                         f"{sorted(DATA_KEYS)}")
    handle = h5py.File(path, "w")
    try:
        for name, (shape, dtype) in fields.items():
            create_sample_dataset(handle, name, n, tuple(shape), dtype, compression)
        if coordinates is not None:
            handle.create_dataset("coordinates", data=np.asarray(coordinates, dtype=np.float64))
        group = handle.create_group("parameters")
        for name, (shape, dtype) in (parameters or {}).items():
            create_sample_dataset(group, name, n, tuple(shape), dtype, compression)
        if solver_stats:
            solver = handle.create_group("solver")
            for name, dtype in SOLVER_STATS.items():
                create_sample_dataset(solver, name, n, (), dtype)
        if mesh is not None:
            from pdesuite.datasets.mesh_io import write_mesh

            write_mesh(handle, mesh)
        for key, value in attrs.items():
            handle.attrs[key] = value
    except BaseException:
        handle.close()
        raise
    return handle


def create_sample_dataset(group, name: str, n: int, shape: tuple[int, ...] = (),
                          dtype: Any = np.float64, compression: str | None = None,
                          data: np.ndarray | None = None):
    """Create the per-sample dataset ``name`` ``[n, *shape]`` in ``group``, with checksums.

    A sample of shape ``()`` (a scalar) shares a chunk of up to 65,536 samples, uncompressed (a
    chunk per scalar would be absurdly small); a larger sample is one chunk, compressed by
    ``compression`` (see :func:`create_dataset_file`). Every chunk carries a Fletcher-32
    checksum, verified by HDF5 on each read. An empty dataset (``n = 0``) cannot be chunked
    and has none. ``data`` (``[n, *shape]``), when given, is written at once. Returns the
    dataset.
    """
    shape = tuple(shape)
    if n == 0:
        return group.create_dataset(name, shape=(0, *shape), dtype=dtype, data=data)
    if len(shape) == 0:
        options: dict[str, Any] = {"chunks": (min(n, 65536),)}
    else:
        options = {"chunks": (1, *shape), **_compression_options(compression)}
    return group.create_dataset(name, shape=(n, *shape), dtype=dtype, data=data, fletcher32=True,
                                **options)


@contextlib.contextmanager
def _named_read_errors(path: PathLike, dataset, sample: int | None, hint: str = ""):
    """Re-raise an ``OSError`` of a read inside the block as one naming the file and sample."""
    try:
        yield
    except OSError as error:
        name = str(dataset.name).lstrip("/")
        where = f"sample {sample} of '{name}'" if sample is not None else f"'{name}'"
        raise OSError(f"{path}: {where} cannot be read: the file is corrupt or truncated (a chunk "
                      f"that fails its checksum or does not decompress: {error})"
                      f"{'; ' + hint if hint else ''}") from error


def read_sample(dataset, index: int, path: PathLike, sample: int | None = None,
                hint: str = "") -> np.ndarray:
    """``dataset[index]``, where a corrupt chunk raises ``OSError`` naming ``path`` and the sample.

    ``sample`` is the sample's name in the message (default ``index``); ``hint`` is appended
    (what to do about it). A loader reads its samples through this so that a damaged file is
    an error that says which file and sample, not HDF5's bare "filter returned failure".
    """
    with _named_read_errors(path, dataset, index if sample is None else sample, hint):
        return dataset[index]


def read_rows(dataset, start: int, stop: int, path: PathLike,
              samples: np.ndarray | None = None, hint: str = "") -> np.ndarray:
    """``dataset[start:stop]`` in one read; on a corrupt chunk, ``OSError`` naming the sample.

    After a failed read the rows are read one by one to find the first bad one, named as
    ``samples[row - start]`` when given (e.g. a shard's draw indices), else as ``row``.
    """
    try:
        return dataset[start:stop]
    except OSError:
        for row in range(start, stop):
            sample = int(samples[row - start]) if samples is not None else row
            read_sample(dataset, row, path, sample=sample, hint=hint)
        with _named_read_errors(path, dataset, None, hint):
            return dataset[start:stop]


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def open_dataset(path: PathLike, mode: str = "r", check_data: bool | str = True):
    """Open a pdesuite HDF5 dataset and check it against the schema.

    Args:
        path: the file.
        mode: ``"r"`` (default) or ``"r+"`` (the loaders cache statistics).
        check_data: ``True`` (default): also read the first and last sample of every array,
            which catches a file whose data were cut off while its header survived; ``"all"``:
            read every chunk of every per-sample dataset, verifying each checksum (the whole
            file is read); ``False``: the header only.

    Returns:
        The open ``h5py.File`` (the caller closes it).

    Raises:
        FileNotFoundError: no such file.
        OSError: not an HDF5 file, or truncated or corrupt; the message names the file (and
            the sample whose chunk is corrupt).
        ValueError: the file is HDF5 but breaks the schema (a missing dataset or attribute, a
            wrong rank, lengths that disagree, an incomplete generation); the message names the
            file and what is wrong.
    """
    h5py = _h5py()
    path = Path(path)
    if mode not in ("r", "r+"):
        raise ValueError(f"mode: must be 'r' or 'r+', got {mode!r}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dataset file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an HDF5 dataset file")
    try:
        handle = h5py.File(path, mode)
    except OSError as error:
        raise OSError(f"{path}: cannot be opened as HDF5; the file is truncated, corrupt or not "
                      f"HDF5 ({error})") from error
    try:
        validate_file(handle, path, check_data=check_data)
    except BaseException:
        handle.close()
        raise
    return handle


def validate_file(handle, path: PathLike, check_data: bool | str = True) -> dict[str, Any]:
    """Check an open file against the schema; return :func:`describe`'s summary.

    ``check_data`` as in :func:`open_dataset`. Raises ValueError (schema) or OSError
    (unreadable data: the message names ``path``, the dataset and the sample).
    """
    h5py = _h5py()
    if check_data not in (True, False, "all"):
        raise ValueError(f"check_data: must be True, False or 'all', got {check_data!r}")
    problems: list[str] = []
    missing_attrs = [name for name in REQUIRED_ATTRS if name not in handle.attrs]
    if missing_attrs:
        problems.append(f"missing root attribute(s) {missing_attrs}")
    if "inputs" not in handle and "outputs" not in handle and "trajectories" not in handle:
        raise ValueError(f"{path}: not a pdesuite dataset: missing dataset 'inputs' and 'outputs' "
                         f"(or 'trajectories'); found {sorted(handle.keys())}")
    kind = str(handle.attrs.get("kind", "steady"))
    target = "trajectories" if kind == "time-dependent" else "outputs"
    if target not in handle:
        problems.append(f"missing dataset '{target}' (kind={kind!r})")
    if kind == "steady" and "inputs" not in handle:
        problems.append("missing dataset 'inputs'")
    if "coordinates" not in handle:
        problems.append("missing dataset 'coordinates'")

    first = next(name for name in DATA_KEYS if name in handle)
    if "n" in handle.attrs:
        n = int(handle.attrs["n"])
    else:
        n = int(getattr(handle[first], "shape", (0,))[0])
    spatial: Optional[tuple[int, ...]] = None
    for name, base_rank in DATA_KEYS.items():
        if name not in handle:
            continue
        item = handle[name]
        if not isinstance(item, h5py.Dataset):
            problems.append(f"'{name}' is a group, expected a dataset")
            continue
        if item.ndim < base_rank + 1:
            problems.append(f"dataset '{name}' has rank {item.ndim} (shape {item.shape}); expected "
                            f"[n, {'T, ' if name == 'trajectories' else ''}C, *spatial] with at "
                            f"least one spatial axis")
            continue
        if item.shape[0] != n:
            problems.append(f"dataset '{name}' has {item.shape[0]} samples but attribute n={n}")
        if item.dtype != np.float32:
            problems.append(f"dataset '{name}' has dtype {item.dtype}, expected float32")
        this_spatial = item.shape[base_rank:]
        if spatial is None:
            spatial = this_spatial
        elif this_spatial != spatial:
            problems.append(f"dataset '{name}' has spatial shape {this_spatial}, others {spatial}")
    if "solver" in handle:
        for stat in SOLVER_STATS:
            if stat not in handle["solver"]:
                problems.append(f"missing dataset 'solver/{stat}'")
            elif handle["solver"][stat].shape != (n,):
                shape = handle["solver"][stat].shape
                problems.append(f"dataset 'solver/{stat}' has shape {shape}, "
                                f"expected ({n},)")
    if "parameters" in handle:
        for name, item in handle["parameters"].items():
            if isinstance(item, h5py.Dataset) and (item.ndim == 0 or item.shape[0] != n):
                problems.append(f"dataset 'parameters/{name}' has shape {item.shape}; expected "
                                f"[n={n}, ...]")
    convention = str(handle.attrs.get("grid_convention", "node"))
    if convention not in GRID_CONVENTIONS:
        problems.append(f"root attribute 'grid_convention' is {convention!r}, expected one of "
                        f"{list(GRID_CONVENTIONS)}")
    for attr in ("config", "units"):
        if attr in handle.attrs:
            try:
                json.loads(str(handle.attrs[attr]))
            except json.JSONDecodeError:
                problems.append(f"root attribute '{attr}' is not valid JSON")
    if "schema_version" in handle.attrs and int(handle.attrs["schema_version"]) > SCHEMA_VERSION:
        problems.append(f"schema_version {int(handle.attrs['schema_version'])} is newer than this "
                        f"pdesuite reads ({SCHEMA_VERSION}); upgrade pdesuite")
    if problems:
        raise ValueError(f"{path}: does not follow the pdesuite schema: " + "; ".join(problems))
    if not bool(handle.attrs["complete"]):
        raise ValueError(f"{path}: incomplete dataset (attribute complete=False): its writing was "
                         f"interrupted; rerun the same generate command to finish it")
    if check_data and n > 0:
        for name in [*DATA_KEYS, "coordinates"]:
            if name not in handle:
                continue
            try:
                item = handle[name]
                if name == "coordinates":
                    item[()]
                elif check_data != "all":
                    read_sample(item, 0, path)
                    read_sample(item, n - 1, path)
            except (RuntimeError, ValueError) as error:
                raise OSError(f"{path}: dataset '{name}' cannot be read; the file is truncated or "
                              f"corrupt ({error})") from error
        if check_data == "all":
            _read_every_chunk(handle, path, n)
    return describe(handle)


def _read_every_chunk(handle, path: PathLike, n: int) -> None:
    """Read every per-sample dataset of ``handle`` whole, a slab at a time (checksums verified)."""
    h5py = _h5py()
    items = [handle[name] for name in (*DATA_KEYS, "solve_order") if name in handle]
    for group in ("parameters", "solver"):
        if group in handle:
            items += [item for item in handle[group].values() if isinstance(item, h5py.Dataset)]
    for item in items:
        if item.ndim == 0 or item.shape[0] != n:
            continue
        row_bytes = max(1, int(np.prod(item.shape[1:], dtype=np.int64)) * item.dtype.itemsize)
        rows = max(1, (64 * 2**20) // row_bytes)
        for start in range(0, n, rows):
            read_rows(item, start, min(n, start + rows), path)


def describe(handle) -> dict[str, Any]:
    """A summary of an open dataset file: n, kind, shapes and the decoded root attributes."""
    summary: dict[str, Any] = {"n": int(handle.attrs.get("n", 0)),
                               "kind": str(handle.attrs.get("kind", "steady"))}
    for name in [*DATA_KEYS, "coordinates"]:
        if name in handle:
            summary[f"{name}_shape"] = tuple(handle[name].shape)
    attrs = {}
    for key, value in handle.attrs.items():
        if key in ("config", "units", "solver_config"):
            try:
                value = json.loads(str(value))
            except json.JSONDecodeError:
                pass
        elif isinstance(value, np.generic):
            value = value.item()
        attrs[key] = value
    summary["attrs"] = attrs
    if "parameters" in handle:
        summary["parameters"] = sorted(handle["parameters"].keys())
    return summary
