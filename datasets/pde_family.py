"""The :class:`PDEFamily` contract, the registry of families and small shared checks.

A family is a distribution over PDE problems of one kind. It

1. draws the random parameters of one problem from a NumPy generator (:meth:`PDEFamily.sample`),
2. assembles the problem through :mod:`pdesuite.discretization` into a
   :class:`~pdesuite.discretization.LinearSystem` (:meth:`PDEFamily.assemble`) — or, for a
   time-dependent family, integrates it in time (:meth:`PDEFamily.simulate`),
3. maps parameters and solutions to float32 arrays ``[C, *spatial]`` (:meth:`PDEFamily.inputs`,
   :meth:`PDEFamily.outputs`) on fixed coordinates (:meth:`PDEFamily.coordinates`).

Dataset generation calls ``family.sample(np.random.default_rng([seed, index]))``, so sample
``index`` is the same whatever the order and the number of workers. A user adds a family by
subclassing and decorating with :func:`register_family` (see examples/custom_family.py).

Configuration: a subclass lists its options and their defaults in ``defaults``; the
constructor merges the keyword arguments into them (unknown names raise ValueError), stores the
result in ``self.options`` and calls :meth:`PDEFamily.setup`, where the subclass validates and
builds what it needs (grid, mesh, ...). ``config()`` is JSON-serialisable and rebuilds an equal
family through :func:`family_from_config`.
"""

from __future__ import annotations

import abc
import json
import numbers
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from pdesuite.discretization import LinearSystem

if TYPE_CHECKING:
    from pdesuite.datasets.mesh_io import MeshInfo

__all__ = [
    "FAMILIES",
    "PDEFamily",
    "SolveCallable",
    "batch_solves",
    "family_from_config",
    "get_family",
    "register_family",
    "solve_stats",
]

#: ``solve(A, b, x0) -> SolveResult``: the linear solver a time-dependent family calls per step.
SolveCallable = Callable[[Any, np.ndarray, "np.ndarray | None"], Any]

#: Registered families by name. Filled when :mod:`pdesuite.datasets.builtin_families` is imported
#: (``import pdesuite.datasets`` does that) and by :func:`register_family`.
FAMILIES: dict[str, type["PDEFamily"]] = {}


class PDEFamily(abc.ABC):
    """A seeded distribution over PDE problems, with the way from parameters to arrays.

    Class attributes a subclass sets:
        name: registry name, e.g. ``"darcy"``.
        spd: True when every assembled matrix is symmetric positive definite (recycling CG and
            PCG apply); for a time-dependent family, the matrices of its implicit steps.
        time_dependent: True for families that implement :meth:`simulate` instead of
            :meth:`assemble` / :meth:`outputs`.
        defaults: option name -> default value (JSON-serialisable).
        input_names, output_names: channel names of :meth:`inputs` and :meth:`outputs`.
        units: quantity name -> unit string (stored with the data).
        min_resolution: the smallest accepted ``resolution`` (default 3).
        default_batch_size: samples that dataset generation passes to :meth:`simulate_batch`
            at once when its ``batch_size`` is not given (default 1: the default
            :meth:`simulate_batch` only loops over :meth:`simulate`, so batching gains nothing).
            :meth:`setup` may set it per instance, e.g. from the resolution.
        batch_invariant: True (default) when :meth:`simulate_batch` returns, bit for bit, the
            trajectory :meth:`simulate` returns for each sample alone, whatever the other
            samples of the batch. The solver it is given may keep state from one solve to the
            next (in generation, a recycle space and a tuner shared by the whole batch), so a
            batch-invariant family must issue its linear solves sample by sample, in order:
            all of sample 0's, then all of sample 1's, ... (as the default
            :meth:`simulate_batch` does); solves interleaved across samples make the arrays
            depend on the batch. A subclass whose batched arrays depend on the batch's
            composition sets it False; generation then makes ``batch_size`` part of the run
            configuration, so that a resumed run cannot mix blocks of different batch sizes.
            Generation does so too, whatever this flag says, for an overriding
            :meth:`simulate_batch` of a family with ``batch_solves = True`` while the solver
            keeps state, since it cannot check the order of the solves.
        batch_solves: True (default) when :meth:`simulate_batch` makes linear solves through
            its ``solve`` argument; a family whose batched stepping makes none (a spectral or
            explicit scheme) sets it False.
        grid_convention: where the points of :meth:`coordinates` lie, written to the dataset
            file's ``grid_convention`` attribute (see
            :data:`pdesuite.datasets.storage.GRID_CONVENTIONS`): ``"node"`` (``i / (n - 1)``),
            ``"cell"`` (spacing ``1 / n``: periodic or cell-centred) or ``"mesh"`` (FE DoFs).
            Default None: undeclared, the attribute is left out and readers take ``"node"``.

    Args:
        resolution: points per axis of a grid family, or cells per unit length of an FE family
            (the subclass docstring says which). Default 64.
        **config: options listed in ``defaults``.
    """

    name: ClassVar[str]
    spd: ClassVar[bool]
    time_dependent: ClassVar[bool] = False
    defaults: ClassVar[Mapping[str, Any]] = {}
    input_names: ClassVar[tuple[str, ...]] = ()
    output_names: ClassVar[tuple[str, ...]] = ()
    units: ClassVar[Mapping[str, str]] = {}
    min_resolution: ClassVar[int] = 3
    default_batch_size: int = 1  # a class default; setup() may set it per instance
    batch_invariant: ClassVar[bool] = True
    batch_solves: ClassVar[bool] = True
    grid_convention: ClassVar[str | None] = None

    def __init__(self, resolution: int = 64, **config: Any) -> None:
        if isinstance(resolution, bool) or not isinstance(resolution, numbers.Integral):
            raise TypeError(f"resolution: expected an int, got {type(resolution).__name__}")
        if resolution < self.min_resolution:
            raise ValueError(
                f"resolution: family {self.name!r} needs resolution >= {self.min_resolution}, "
                f"got {resolution}"
            )
        unknown = sorted(set(config) - set(self.defaults))
        if unknown:
            raise ValueError(f"config: unknown option(s) {unknown} for family {self.name!r}; "
                             f"its options are {sorted(self.defaults)}")
        self.resolution = int(resolution)
        options = {**self.defaults, **config}
        for key, value in options.items():
            options[key] = _jsonable(value, key)
        self.options: dict[str, Any] = options
        self.setup()

    # ----------------------------------------------------------------------------- subclass hooks
    def setup(self) -> None:
        """Validate ``self.options`` and build grids or meshes; called once by ``__init__``."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The random parameters of one problem, drawn only from ``rng``.

        Returns a dict name -> array whose shapes are the same for every sample of this family
        (0-d arrays for scalars), so that they stack into per-sample datasets.
        """

    @abc.abstractmethod
    def coordinates(self) -> np.ndarray:
        """``[ndim, *spatial]`` grid coordinates, or ``[n_points, 2]`` FE DoF coordinates."""

    @abc.abstractmethod
    def inputs(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """float32 ``[C_in, *spatial]``: the fields a model takes (for time-dependent families,
        the initial state)."""

    def assemble(self, params: Mapping[str, np.ndarray]) -> LinearSystem:
        """The linear system of the problem with parameters ``params`` (steady families)."""
        raise NotImplementedError(
            f"family {self.name!r} is time-dependent: use simulate(params, solve)"
            if self.time_dependent
            else f"family {self.name!r} does not implement assemble"
        )

    def outputs(self, params: Mapping[str, np.ndarray], u_full: np.ndarray) -> np.ndarray:
        """float32 ``[C_out, *spatial]`` from the full DoF vector ``system.expand(x)``."""
        raise NotImplementedError(
            f"family {self.name!r} is time-dependent: use simulate(params, solve)"
            if self.time_dependent
            else f"family {self.name!r} does not implement outputs"
        )

    def simulate(self, params: Mapping[str, np.ndarray],
                 solve: SolveCallable | None = None) -> tuple[np.ndarray, list[dict]]:
        """Integrate a time-dependent problem.

        Args:
            params: from :meth:`sample`.
            solve: ``solve(A, b, x0) -> SolveResult`` for the implicit steps; None uses the
                family's default (see the subclass). Explicit and spectral schemes ignore it.

        Returns:
            ``(trajectory, stats)``: float32 ``[T, C, *spatial]`` with frame 0 the initial state,
            and one :func:`solve_stats` dict per linear solve (empty without linear solves).
        """
        raise NotImplementedError(
            f"family {self.name!r} is not time-dependent: use assemble(params)"
        )

    def simulate_batch(self, params_list: Sequence[Mapping[str, np.ndarray]],
                       solve: SolveCallable | Sequence[SolveCallable | None] | None = None,
                       ) -> tuple[np.ndarray, list[list[dict]]]:
        """Integrate ``B = len(params_list)`` time-dependent problems.

        The default calls :meth:`simulate` on each sample in turn (so the linear solves run in
        the order sample 0, then sample 1, ...); a family whose time step costs mostly Python
        and NumPy call overhead overrides it to step all samples together on arrays with a
        leading batch axis (see ``NavierStokes2D``), and then sets ``default_batch_size`` and,
        if its arrays depend on the batch, ``batch_invariant = False``.

        Linear solves: ``solve`` may keep state between calls (a recycle space, a tuner), so
        for a batch-invariant family (``batch_invariant = True``) the solves must be issued
        sample by sample, in order (every solve of sample 0, then of sample 1, ...), never
        interleaved across the samples, e.g. one implicit step of every sample, then the next
        step. An override that steps the samples together with solves interleaves them: it
        must set ``batch_invariant = False``. (Dataset generation puts ``batch_size`` into
        the run configuration for any override that reads ``solve`` when its solver keeps
        state; an override that never reads ``solve`` stays batch-size free.)

        Args:
            params_list: ``B`` dicts from :meth:`sample`.
            solve: None (the family's default solver), one ``solve(A, b, x0)`` for every
                sample, or a sequence of ``B`` of them, entry ``i`` used for the solves of
                sample ``i`` only (so that the caller can attribute statistics per sample).

        Returns:
            ``(trajectories, stats)``: float32 ``[B, T, C, *spatial]`` and a list of ``B``
            lists of :func:`solve_stats` dicts, as :meth:`simulate` returns them per sample.

        Raises:
            ValueError: ``solve`` is a sequence whose length is not ``B``.
        """
        solves = batch_solves(solve, len(params_list))
        trajectories: list[np.ndarray] = []
        stats: list[list[dict]] = []
        for params, sample_solve in zip(params_list, solves):
            trajectory, sample_stats = self.simulate(params, sample_solve)
            trajectories.append(np.asarray(trajectory, dtype=np.float32))
            stats.append(list(sample_stats))
        if not trajectories:
            return np.empty((0,) + self.output_shape, dtype=np.float32), []
        return np.stack(trajectories), stats

    def mesh_description(self) -> "MeshInfo | None":
        """The finite-element mesh that a dataset file of this family stores in its ``mesh``
        group (:class:`~pdesuite.datasets.mesh_io.MeshInfo`), or None (default: grid families
        write no mesh)."""
        return None

    def sort_key(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """The parameter field that sorting compares (1-D or 2-D); default: input channel 0."""
        return np.asarray(self.inputs(params)[0], dtype=np.float64)

    # ----------------------------------------------------------------------------- shared API
    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """``*spatial`` of inputs and outputs: the grid shape, or ``(n_points,)`` for FE families.

        Read off :meth:`coordinates`: grid coordinates ``[ndim, *spatial]`` have
        ``ndim == coords.ndim - 1``; anything else is a point list ``[n_points, dim]``.
        """
        coords = self.coordinates()
        if coords.shape[0] == coords.ndim - 1:
            return tuple(int(n) for n in coords.shape[1:])
        return (int(coords.shape[0]),)

    @property
    def n_frames(self) -> int:
        """Frames ``T`` of a trajectory (time-dependent families); 1 for steady ones."""
        return 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(C_in, *spatial)`` of :meth:`inputs`."""
        return (len(self.input_names),) + self.spatial_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(C_out, *spatial)`` of :meth:`outputs`, or ``(T, C, *spatial)`` of a trajectory."""
        shape = (len(self.output_names),) + self.spatial_shape
        return ((self.n_frames,) + shape) if self.time_dependent else shape

    def config(self) -> dict[str, Any]:
        """JSON-serialisable configuration: ``{"family": name, "resolution": ..., **options}``."""
        return {"family": self.name, "resolution": self.resolution, **self.options}

    def direct_solve(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """Outputs ``[C_out, *spatial]`` of a steady problem solved with SciPy's sparse LU.

        A reference path for tests, examples and small data; generation uses iterative solvers.
        """
        import scipy.sparse.linalg as spla

        system = self.assemble(params)
        x = spla.spsolve(system.A.tocsc(), system.b)
        return self.outputs(params, system.expand(x))

    def __reduce__(self):
        # Rebuild from the configuration: grids, meshes and basix elements need not pickle.
        return (_rebuild, (type(self), self.resolution, dict(self.options)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PDEFamily):
            return NotImplemented
        return type(self) is type(other) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash((type(self), json.dumps(self.config(), sort_keys=True)))

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return (
            f"{type(self).__name__}(resolution={self.resolution}{', ' if options else ''}{options})"
        )


def _rebuild(cls: type[PDEFamily], resolution: int, options: dict) -> PDEFamily:
    return cls(resolution, **options)


def _jsonable(value: Any, name: str) -> Any:
    """``value`` with tuples/NumPy scalars turned into JSON types; TypeError naming ``name``
    otherwise."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, (tuple, list, np.ndarray)):
        return [
            _jsonable(v, name) for v in (value.tolist() if isinstance(value, np.ndarray) else value)
        ]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"{name}: option values must be numbers, strings, bools, None or lists of them, "
        f"got {type(value).__name__}"
    )


# --------------------------------------------------------------------------------- registry
def register_family(cls: type[PDEFamily]) -> type[PDEFamily]:
    """Class decorator: add ``cls`` to :data:`FAMILIES` under ``cls.name``.

    Raises ValueError when another class already holds the name (re-registering a class of the
    same module and qualified name, as on a module reload, replaces it).
    """
    if not (isinstance(cls, type) and issubclass(cls, PDEFamily)):
        raise TypeError(f"cls: expected a PDEFamily subclass, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"cls: {cls.__name__} needs a non-empty string class attribute 'name'")
    if not isinstance(getattr(cls, "spd", None), bool):
        raise ValueError(f"cls: {cls.__name__} needs a bool class attribute 'spd'")
    existing = FAMILIES.get(name)
    if (
        existing is not None
        and existing is not cls
        and (existing.__module__, existing.__qualname__) != (cls.__module__, cls.__qualname__)
    ):
        raise ValueError(
            f"cls: the family name {name!r} is already taken by "
            f"{existing.__module__}.{existing.__qualname__}"
        )
    FAMILIES[name] = cls
    return cls


def _load_builtin_families() -> None:
    from pdesuite.datasets import builtin_families  # noqa: F401  (importing registers them)


def get_family(name: str, **config: Any) -> PDEFamily:
    """A family by registry name, e.g. ``get_family("darcy", resolution=64)``.

    Raises ValueError naming ``name`` when no family is registered under it.
    """
    _load_builtin_families()
    if not isinstance(name, str) or name not in FAMILIES:
        raise ValueError(f"name: unknown family {name!r}; the families are {sorted(FAMILIES)}")
    return FAMILIES[name](**config)


def family_from_config(config: Mapping[str, Any]) -> PDEFamily:
    """Rebuild a family from :meth:`PDEFamily.config` (e.g. read back from an HDF5 file)."""
    if not isinstance(config, Mapping) or "family" not in config:
        raise ValueError(
            "config: expected a mapping with a 'family' entry, as PDEFamily.config() returns"
        )
    rest = dict(config)
    return get_family(rest.pop("family"), **rest)


def batch_solves(solve: SolveCallable | Sequence[SolveCallable | None] | None,
                 batch: int) -> list[SolveCallable | None]:
    """The ``solve`` argument of :meth:`PDEFamily.simulate_batch` as one entry per sample.

    None or a single callable is repeated ``batch`` times; a sequence must have ``batch``
    entries (ValueError naming ``solve`` otherwise), each None or callable (TypeError).
    """
    if solve is None or callable(solve):
        return [solve] * batch
    if isinstance(solve, (str, bytes)) or not isinstance(solve, Sequence):
        raise TypeError(
            f"solve: expected None, a callable or a sequence of them, got {type(solve).__name__}"
        )
    if len(solve) != batch:
        raise ValueError(f"solve: expected one entry per sample ({batch}), got {len(solve)}")
    for entry in solve:
        if entry is not None and not callable(entry):
            raise TypeError(f"solve: entries must be None or callables, got {type(entry).__name__}")
    return list(solve)


def solve_stats(result: Any, A: Any = None, b: np.ndarray | None = None) -> dict[str, Any]:
    """Per-solve statistics as stored with the data, from a :class:`~pdesuite.solvers.SolveResult`.

    Keys: ``iterations``, ``matvecs`` (ints), ``residual`` (the relative true residual
    ``‖b − A x‖ / ‖b‖`` when ``A`` and ``b`` are given, else the solver's last monitored
    residual norm), ``time`` (s), ``reason`` (the reason's name), ``converged`` (bool).
    """
    if A is not None and b is not None:
        b_norm = float(np.linalg.norm(b))
        r_norm = float(np.linalg.norm(b - A @ result.x))
        residual = r_norm / b_norm if b_norm > 0 else r_norm
    else:
        residual = float(result.residual_norm)
    return {
        "iterations": int(result.iterations),
        "matvecs": int(result.matvecs),
        "residual": residual,
        "time": float(result.time),
        "reason": result.reason.name,
        "converged": bool(result.converged),
    }


# ----------------------------------------------------------------------------- option checks
def check_positive(value: Any, name: str, allow_zero: bool = False) -> float:
    """``value`` as a finite float ``> 0`` (``>= 0`` with ``allow_zero``); ValueError naming
    ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    ok = np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ValueError(
            f"{name}: expected a finite number {'>= 0' if allow_zero else '> 0'}, got {value}"
        )
    return value


def check_real(value: Any, name: str) -> float:
    """``value`` as a finite float; ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def check_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int ``>= minimum``; ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    """``value`` if it is one of ``choices``; ValueError naming ``name`` otherwise."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def check_range(value: Any, name: str) -> tuple[float, float]:
    """A pair ``[lo, hi]`` of finite floats with ``lo <= hi``; ValueError naming ``name``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a pair [lo, hi], got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name}: expected finite lo <= hi, got {value!r}")
    return lo, hi
