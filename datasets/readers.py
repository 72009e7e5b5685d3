"""Readers for the dataset formats of other projects, and conversion into the pdesuite schema.

Each reader returns ``(inputs, outputs)`` as float32 NumPy arrays ``[n, C, *spatial]``:

- :func:`read_neuraloperator_pt`: neuraloperator's ``torch.save`` dicts with tensors ``"x"``
  and ``"y"``, ``[n, *spatial]`` (no channel axis) or ``[n, C, *spatial]``.
- :func:`read_pdebench_hdf5`: PDEBench HDF5 files. Three layouts:

  * 2D Darcy flow: ``"nu"`` ``[n, s, s]`` (the coefficient) and ``"tensor"``
    ``[n, 1, s, s]`` (the solution; its axis 1 is a time axis of length one);
  * one ``"tensor"`` ``[n, T, *spatial]`` (1D advection, Burgers, ...): a trajectory per sample;
  * per-sample groups (``"0000"``, ``"0001"``, ...) each with ``"data"`` ``[T, *spatial, C]``
    (diffusion-reaction, shallow water, ...).

  For the trajectory layouts ``inputs`` is the first frame and ``outputs`` the last;
  :func:`read_pdebench_trajectories` returns all frames ``[n, T, C, *spatial]``.
- :func:`read_fno_mat`: the ``.mat`` files of the FNO papers through ``scipy.io.loadmat``
  (``"coeff"`` and ``"sol"`` ``[n, s, s]`` for Darcy; other keys by argument). MATLAB v7.3
  files, which are HDF5, are read with h5py, their axes reversed back to MATLAB's order. An
  output with one more axis than the input (FNO's Navier–Stokes ``u`` ``[n, s, s, T]``) has its
  last axis taken as channels (``[n, T, s, s]``).

:func:`convert` writes any of them as a pdesuite file (``family="converted-<format>"``,
``seed=-1``, no ``solver/`` group; time-dependent PDEBench layouts become ``trajectories``),
with its ``grid_convention`` attribute: given, or inferred (:func:`infer_grid_convention`).
These projects store their grids as ``n`` points spaced ``1 / n`` (``"cell"``: periodic data,
cell centres, and neuraloperator's Darcy sets, which leave out the far boundary), except a
Dirichlet solution stored with both boundaries, zero on both ends of every axis (``"node"``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from pdesuite.datasets.storage import GRID_CONVENTIONS, create_dataset_file, schema_attrs

__all__ = [
    "FORMATS",
    "convert",
    "infer_grid_convention",
    "read_fno_mat",
    "read_neuraloperator_pt",
    "read_pdebench_hdf5",
    "read_pdebench_trajectories",
]

FORMATS = ("neuraloperator", "pdebench", "fno")
PathLike = Union[str, os.PathLike]


def _existing(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return path


def _with_channels(array: np.ndarray, spatial_dims: Optional[int], name: str,
                   path: Path) -> np.ndarray:
    """``[n, C, *spatial]`` from ``[n, *spatial]`` or ``[n, C, *spatial]``.

    Without ``spatial_dims``: rank 2 or 3 has no channel axis (1D or 2D data), rank 4 or 5 has
    one (2D or 3D data).
    """
    array = np.asarray(array, dtype=np.float32)
    if spatial_dims is None:
        if array.ndim in (2, 3):
            return array[:, None]
        if array.ndim in (4, 5):
            return array
        raise ValueError(f"{path}: {name!r} has shape {array.shape}; expected [n, *spatial] or "
                         "[n, C, *spatial] with 1 to 3 spatial axes (pass spatial_dims)")
    extra = array.ndim - 1 - int(spatial_dims)
    if extra == 0:
        return array[:, None]
    if extra == 1:
        return array
    raise ValueError(f"{path}: {name!r} has shape {array.shape}, which does not fit "
                     f"spatial_dims={spatial_dims}")


def _check_pair(inputs: np.ndarray, outputs: np.ndarray,
                path: Path) -> tuple[np.ndarray, np.ndarray]:
    if inputs.shape[0] != outputs.shape[0]:
        raise ValueError(f"{path}: {inputs.shape[0]} inputs but {outputs.shape[0]} outputs")
    if inputs.shape[2:] != outputs.shape[2:]:
        raise ValueError(f"{path}: inputs have spatial shape {inputs.shape[2:]}, outputs "
                         f"{outputs.shape[2:]}")
    return inputs, outputs


def read_neuraloperator_pt(path: PathLike, spatial_dims: Optional[int] = None,
                           input_key: str = "x",
                           output_key: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Read a neuraloperator ``.pt`` dict (``{"x": tensor, "y": tensor}``).

    Args:
        path: the file (loaded on the CPU with ``weights_only=True``: tensors only).
        spatial_dims: spatial axes of the data; default inferred (see the module docstring).
        input_key, output_key: dict keys (default ``"x"``, ``"y"``).

    Returns:
        ``(inputs, outputs)`` float32 ``[n, C, *spatial]``.
    """
    import torch

    path = _existing(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a bad file
        raise OSError(f"{path}: cannot be read as a torch .pt file ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict with {input_key!r} and {output_key!r}, got "
                         f"{type(data).__name__}")
    missing = [key for key in (input_key, output_key) if key not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; found {sorted(map(str, data))}")
    arrays = []
    for key in (input_key, output_key):
        value = data[key]
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        arrays.append(_with_channels(value, spatial_dims, key, path))
    return _check_pair(arrays[0], arrays[1], path)


def _open_h5(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise OSError(f"{path}: cannot be opened as HDF5; truncated, corrupt or not HDF5 "
                      f"({error})") from error


def _sample_groups(handle) -> list[str]:
    """The per-sample groups (each with a ``"data"`` dataset) of a PDEBench file, sorted."""
    return sorted(key for key in handle.keys()
                  if hasattr(handle[key], "keys") and "data" in handle[key])


def _pdebench_layout(handle) -> str:
    if "nu" in handle and "tensor" in handle:
        return "darcy"
    if "tensor" in handle:
        return "tensor"
    if _sample_groups(handle):
        return "groups"
    return "unknown"


def read_pdebench_trajectories(path: PathLike) -> np.ndarray:
    """All frames of a time-dependent PDEBench file, float32 ``[n, T, C, *spatial]``.

    Layouts ``"tensor"`` ``[n, T, *spatial]`` (C = 1) and per-sample groups with ``"data"``
    ``[T, *spatial, C]``.
    """
    path = _existing(path)
    with _open_h5(path) as handle:
        layout = _pdebench_layout(handle)
        if layout == "tensor":
            tensor = np.asarray(handle["tensor"][()], dtype=np.float32)
            if tensor.ndim < 3:
                raise ValueError(f"{path}: 'tensor' has shape {tensor.shape}; expected "
                                 "[n, T, *spatial]")
            return tensor[:, :, None]
        if layout == "groups":
            names = _sample_groups(handle)
            frames = []
            for name in names:
                data = np.asarray(handle[name]["data"][()], dtype=np.float32)
                if data.ndim < 3:
                    raise ValueError(f"{path}: '{name}/data' has shape {data.shape}; expected "
                                     "[T, *spatial, C]")
                frames.append(np.moveaxis(data, -1, 1))
            if any(f.shape != frames[0].shape for f in frames):
                raise ValueError(f"{path}: the 'data' arrays of the sample groups differ in shape")
            return np.stack(frames)
        raise ValueError(f"{path}: not a time-dependent PDEBench layout ({layout}); found keys "
                         f"{sorted(handle.keys())}")


def read_pdebench_hdf5(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a PDEBench HDF5 file as ``(inputs, outputs)`` float32 ``[n, C, *spatial]``.

    Darcy (``"nu"``, ``"tensor"``): inputs ``nu[:, None]``, outputs ``tensor`` (axis 1 as the
    channel). Trajectory layouts: the first and the last frame. ValueError naming the file and
    the keys it has for any other layout.
    """
    path = _existing(path)
    with _open_h5(path) as handle:
        layout = _pdebench_layout(handle)
        if layout == "darcy":
            nu = np.asarray(handle["nu"][()], dtype=np.float32)
            tensor = np.asarray(handle["tensor"][()], dtype=np.float32)
            if tensor.ndim != nu.ndim + 1:
                raise ValueError(f"{path}: 'nu' {nu.shape} and 'tensor' {tensor.shape}; expected "
                                 "[n, *spatial] and [n, 1, *spatial]")
            return _check_pair(nu[:, None], tensor, path)
        if layout == "unknown":
            raise ValueError(f"{path}: not a known PDEBench layout (expected 'nu' and 'tensor', "
                             f"'tensor', or groups with 'data'); found keys "
                             f"{sorted(handle.keys())}")
    trajectories = read_pdebench_trajectories(path)
    return trajectories[:, 0], trajectories[:, -1]


def _loadmat_arrays(path: Path, keys: tuple[str, str]) -> list[np.ndarray]:
    import scipy.io

    try:
        data = scipy.io.loadmat(path, variable_names=list(keys))
    except NotImplementedError:
        # MATLAB v7.3 is HDF5, stored column-major: reverse the axes back.
        with _open_h5(path) as handle:
            missing = [key for key in keys if key not in handle]
            if missing:
                raise ValueError(f"{path}: missing variable(s) {missing}; found "
                                 f"{sorted(handle.keys())}") from None
            return [np.asarray(handle[key][()]).transpose() for key in keys]
    except (ValueError, OSError) as error:
        raise OSError(f"{path}: cannot be read as a MATLAB .mat file ({error})") from error
    missing = [key for key in keys if key not in data]
    if missing:
        raise ValueError(f"{path}: missing variable(s) {missing}; found "
                         f"{sorted(k for k in data if not k.startswith('__'))}")
    return [np.asarray(data[key]) for key in keys]


def read_fno_mat(path: PathLike, input_key: str = "coeff",
                 output_key: str = "sol") -> tuple[np.ndarray, np.ndarray]:
    """Read an FNO ``.mat`` file as ``(inputs, outputs)`` float32 ``[n, C, *spatial]``.

    Args:
        path: the ``.mat`` file (v5 through scipy.io, v7.3 through h5py).
        input_key, output_key: variable names (default ``"coeff"``, ``"sol"``; FNO's Burgers
            and Navier–Stokes files use ``"a"``, ``"u"``).

    Returns:
        ``[n, 1, *spatial]`` from ``[n, *spatial]``; an output ``[n, *spatial, T]`` becomes
        ``[n, T, *spatial]``.
    """
    path = _existing(path)
    raw_in, raw_out = _loadmat_arrays(path, (input_key, output_key))
    inputs = np.asarray(raw_in, dtype=np.float32)
    outputs = np.asarray(raw_out, dtype=np.float32)
    if inputs.ndim < 2:
        raise ValueError(f"{path}: {input_key!r} has shape {inputs.shape}; expected [n, *spatial]")
    inputs = inputs[:, None]
    if outputs.ndim == inputs.ndim:
        outputs = np.moveaxis(outputs, -1, 1)
    elif outputs.ndim == inputs.ndim - 1:
        outputs = outputs[:, None]
    else:
        raise ValueError(f"{path}: {output_key!r} has shape {outputs.shape}, which does not fit "
                         f"{input_key!r} {raw_in.shape}")
    return _check_pair(inputs, outputs, path)


def _detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        return "neuraloperator"
    if suffix == ".mat":
        return "fno"
    if suffix in (".h5", ".hdf5", ".hdf"):
        return "pdebench"
    raise ValueError(f"format: cannot tell the format of {path} from its suffix; pass one of "
                     f"{FORMATS}")


def infer_grid_convention(fields: np.ndarray, spatial_dims: int) -> str:
    """``"node"`` or ``"cell"`` for the grid of ``fields`` ``[..., *spatial]`` (the solutions).

    ``"node"`` when every field vanishes (at most ``1e-6`` times its largest magnitude) on the
    first and the last layer of every spatial axis: a Dirichlet solution stored with both
    boundaries, which only a node grid ``i / (n - 1)`` has. ``"cell"`` otherwise: a grid of
    spacing ``1 / n`` holds at most one end of an axis (periodic ``i / n``, cell centres).
    """
    fields = np.asarray(fields)
    scale = float(np.abs(fields).max()) if fields.size else 0.0
    if scale == 0.0 or not np.isfinite(scale):
        return "cell"
    for axis in range(fields.ndim - spatial_dims, fields.ndim):
        for end in (0, -1):
            if float(np.abs(np.take(fields, end, axis=axis)).max()) > 1e-6 * scale:
                return "cell"
    return "node"


def _unit_grid(spatial: tuple[int, ...], convention: str) -> np.ndarray:
    """``[ndim, *spatial]`` coordinates of the unit cube: ``i / (n - 1)`` (node) or ``i / n``."""
    axes = [np.linspace(0.0, 1.0, size) if convention == "node" else np.arange(size) / size
            for size in spatial]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def _pdebench_coordinates(path: Path, spatial: tuple[int, ...]) -> Optional[np.ndarray]:
    names = ("x-coordinate", "y-coordinate", "z-coordinate")[:len(spatial)]
    with _open_h5(path) as handle:
        if not all(name in handle for name in names):
            return None
        axes = [np.asarray(handle[name][()], dtype=np.float64).ravel() for name in names]
    if tuple(len(a) for a in axes) != spatial:
        return None
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def convert(path: PathLike, out_h5: PathLike, format: Optional[str] = None, overwrite: bool = False,
            compression: Optional[str] = "gzip", grid_convention: str | None = None,
            **reader_options: Any) -> Path:
    """Convert another project's dataset file into a pdesuite HDF5 file.

    Args:
        path: the source file.
        out_h5: the pdesuite file to write.
        format: ``"neuraloperator"``, ``"pdebench"`` or ``"fno"``; default from the suffix
            (``.pt``/``.pth``, ``.h5``/``.hdf5``, ``.mat``).
        overwrite: replace an existing ``out_h5`` (default: FileExistsError).
        compression: ``"gzip"`` (default), ``"lzf"`` or None.
        grid_convention: ``"node"`` or ``"cell"``, written as the file's ``grid_convention``
            attribute (see :data:`~pdesuite.datasets.storage.GRID_CONVENTIONS`). Default None:
            ``"cell"`` for PDEBench (finite volumes, cell centres); for the other formats
            :func:`infer_grid_convention` of the outputs.
        **reader_options: passed to the reader (``spatial_dims``, ``input_key``, ...).

    Returns:
        The path of the written file. Coordinates are PDEBench's where present, otherwise the
        points of the convention in ``[0, 1]`` per axis (``i / (n - 1)`` or ``i / n``).
    """
    path = _existing(path)
    out_h5 = Path(out_h5)
    fmt = format or _detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"format: must be one of {FORMATS}, got {fmt!r}")
    if grid_convention is not None and grid_convention not in GRID_CONVENTIONS[:2]:
        raise ValueError(f"grid_convention: must be 'node', 'cell' or None (inferred), got "
                         f"{grid_convention!r}")
    if out_h5.exists() and not overwrite:
        raise FileExistsError(f"out_h5: {out_h5} exists; pass overwrite=True to replace it")
    if out_h5.resolve() == path.resolve():
        raise ValueError("out_h5: must differ from the source file")

    trajectories = None
    if fmt == "neuraloperator":
        inputs, outputs = read_neuraloperator_pt(path, **reader_options)
    elif fmt == "fno":
        inputs, outputs = read_fno_mat(path, **reader_options)
    else:
        with _open_h5(path) as handle:
            layout = _pdebench_layout(handle)
        if layout in ("tensor", "groups"):
            trajectories = read_pdebench_trajectories(path)
            inputs, outputs = trajectories[:, 0], None
        else:
            inputs, outputs = read_pdebench_hdf5(path)
    spatial = tuple(inputs.shape[2:])
    if grid_convention is None:
        solutions = trajectories if trajectories is not None else outputs
        grid_convention = ("cell" if fmt == "pdebench"
                           else infer_grid_convention(solutions, len(spatial)))
    coordinates = _pdebench_coordinates(path, spatial) if fmt == "pdebench" else None
    if coordinates is None:
        coordinates = _unit_grid(spatial, grid_convention)
    n = inputs.shape[0]
    config = {"source": path.name, "format": fmt, **reader_options}
    attrs = schema_attrs(family=f"converted-{fmt}", config=config, seed=-1, n=n,
                         kind="time-dependent" if trajectories is not None else "steady",
                         grid_convention=grid_convention)
    attrs.update({"source": str(path), "source_format": fmt})
    fields = {"inputs": (inputs.shape[1:], np.float32)}
    if trajectories is not None:
        fields["trajectories"] = (trajectories.shape[1:], np.float32)
    else:
        fields["outputs"] = (outputs.shape[1:], np.float32)
    temporary = out_h5.with_name(out_h5.name + ".tmp")
    with create_dataset_file(temporary, n=n, fields=fields, attrs=attrs, coordinates=coordinates,
                             solver_stats=False, compression=compression) as handle:
        handle["inputs"][...] = inputs
        if trajectories is not None:
            handle["trajectories"][...] = trajectories
        else:
            handle["outputs"][...] = outputs
        handle.attrs["complete"] = True
    os.replace(temporary, out_h5)
    return out_h5
