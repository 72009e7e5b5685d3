"""The built-in PDE families: Darcy (lognormal and piecewise constant, 2-D and 3-D), the 3-D
pressure Poisson problem around solid obstacles (DCDM), Helmholtz, FE Poisson, FE steady heat,
and the time-dependent heat, Burgers and Navier–Stokes families.

Every family is seeded only through ``sample(rng)`` and documented with its equation, options,
defaults and units. Grid families live on the unit square with ``resolution`` nodes per axis;
FE families take ``resolution`` as cells per unit length of their mesh. All quantities are
dimensionless unless a family's ``units`` says otherwise.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.sparse as sp

from pdesuite.datasets.pde_family import (
    PDEFamily,
    SolveCallable,
    check_choice,
    check_int,
    check_positive,
    check_range,
    check_real,
    register_family,
    solve_stats,
)
from pdesuite.datasets.grf import default_sigma, gaussian_random_field, grf_spectrum
from pdesuite.datasets.mesh_io import MeshInfo, coarse_resolutions
from pdesuite.discretization import (
    Dirichlet,
    Grid,
    LagrangeSpace,
    LinearSystem,
    Mesh,
    Neumann,
    as_csr32,
    assemble_system,
    fd,
    load_vector,
    stiffness_matrix,
)

__all__ = [
    "Burgers1D",
    "Darcy",
    "DarcyPiecewise",
    "HeatCN",
    "HelmholtzGRF",
    "NavierStokes2D",
    "PoissonFE",
    "PoissonObstacles3D",
    "ThermalFE",
]

Params = Mapping[str, np.ndarray]


def _check_sigma(value: Any) -> float | None:
    return None if value is None else check_positive(value, "sigma")


def _field(params: Params, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """``params[key]`` as a float array of ``shape``; ValueError naming the key otherwise."""
    if key not in params:
        raise ValueError(f"params: missing {key!r}; expected the dict that sample() returns")
    value = np.asarray(params[key], dtype=float)
    if value.shape != shape:
        raise ValueError(f"params[{key!r}]: expected shape {shape}, got {value.shape}")
    return value


# ===================================================================================== grids
class _SquareGridFamily(PDEFamily):
    """Families on the ``s x s`` node grid of the unit square, zero Dirichlet on its boundary."""

    grid_convention = "node"

    def setup(self) -> None:
        s = self.resolution
        self.grid = Grid((s, s))

    def coordinates(self) -> np.ndarray:
        """``[2, s, s]``: ``coordinates()[0]`` is x (axis 0), ``[1]`` is y; nodes ``i/(s − 1)``."""
        return self.grid.mesh()

    def outputs(self, params: Params, u_full: np.ndarray) -> np.ndarray:
        """``[1, s, s]`` float32 solution at every node (zeros on the boundary)."""
        return self.grid.to_field(np.asarray(u_full, dtype=float)).astype(np.float32)


@register_family
class Darcy(_SquareGridFamily):
    """Darcy flow ``−∇·(a ∇u) = f`` on the unit square with ``u = 0`` on the boundary (SKR).

    Discretisation: 5-point finite differences on the ``s x s`` node grid (``s = resolution``),
    harmonic means of ``a`` on the faces, boundary nodes eliminated: ``n = (s − 2)²`` unknowns,
    SPD matrix (SKR's sizes are s = 52, 82, 102, 152, 202).

    Random parameter: the permeability ``a = exp(g)`` with ``g`` a Gaussian random field of
    covariance ``σ² (−Δ + τ² I)^(−α)``, cosine (Neumann) expansion of FNO/SKR
    (:func:`~pdesuite.datasets.grf.gaussian_random_field`, ``periodic=False``), its value at
    node ``(i, j)`` taken from the expansion point ``((i + ½)/s, (j + ½)/s)``.

    Options (defaults): ``alpha`` (2.5), ``tau`` (7.0), ``sigma`` (None: ``τ^(α − 1)``),
    ``source`` f (1.0, constant).

    Arrays: ``sample`` -> ``{"coefficient": [s, s]}``; inputs ``[1, s, s]`` = a; outputs
    ``[1, s, s]`` = u; coordinates ``[2, s, s]``. Dimensionless.
    """

    name = "darcy"
    spd = True
    defaults = {"alpha": 2.5, "tau": 7.0, "sigma": None, "source": 1.0}
    input_names = ("coefficient",)
    output_names = ("u",)
    units = {"x": "1", "coefficient": "1", "source": "1", "u": "1"}

    def setup(self) -> None:
        super().setup()
        self.alpha = check_positive(self.options["alpha"], "alpha")
        self.tau = check_positive(self.options["tau"], "tau")
        self.sigma = _check_sigma(self.options["sigma"])
        self.source = check_real(self.options["source"], "source")

    def _gaussian_field(self, rng: np.random.Generator) -> np.ndarray:
        s = self.resolution
        return gaussian_random_field(
            (s, s), self.alpha, self.tau, rng, sigma=self.sigma, periodic=False
        )

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"coefficient": np.exp(self._gaussian_field(rng))}

    def assemble(self, params: Params) -> LinearSystem:
        a = _field(params, "coefficient", self.grid.shape)
        return fd.diffusion(self.grid, a, source=self.source)

    def inputs(self, params: Params) -> np.ndarray:
        return _field(params, "coefficient", self.grid.shape)[None].astype(np.float32)


@register_family
class DarcyPiecewise(Darcy):
    """Darcy flow with FNO's piecewise-constant permeability.

    Same equation, grid and arrays as :class:`Darcy`; the permeability is a Gaussian random
    field (``alpha`` 2.0, ``tau`` 3.0, cosine expansion) thresholded at zero:
    ``a = high`` (12.0) where ``g >= 0`` and ``a = low`` (3.0) where ``g < 0``. Source ``f = 1``.
    Options (defaults): ``alpha`` (2.0), ``tau`` (3.0), ``sigma`` (None), ``source`` (1.0),
    ``high`` (12.0), ``low`` (3.0).
    """

    name = "darcy-pwc"
    defaults = {"alpha": 2.0, "tau": 3.0, "sigma": None, "source": 1.0, "high": 12.0, "low": 3.0}

    def setup(self) -> None:
        super().setup()
        self.high = check_positive(self.options["high"], "high")
        self.low = check_positive(self.options["low"], "low")

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        g = self._gaussian_field(rng)
        return {"coefficient": np.where(g >= 0.0, self.high, self.low)}


@register_family
class Darcy3D(Darcy):
    """Darcy flow ``−∇·(a ∇u) = f`` in the unit cube with ``u = 0`` on the boundary.

    The 3-D counterpart of :class:`Darcy`, for the sizes where iterative solvers beat a sparse
    direct one (a 7-point stencil's Cholesky factor fills in like ``n^{4/3}``): 7-point finite
    differences on the ``s x s x s`` node grid, harmonic face means, ``n = (s − 2)³`` unknowns,
    SPD. The permeability is ``a = exp(g)`` with ``g`` the 3-D Gaussian random field of the same
    covariance ``σ² (−Δ + τ² I)^(−α)`` (cosine expansion).

    Options (defaults): ``alpha`` (2.5), ``tau`` (7.0), ``sigma`` (None: ``τ^(α − 3/2)``),
    ``source`` f (1.0, constant).

    Arrays: ``sample`` -> ``{"coefficient": [s, s, s]}``; inputs ``[1, s, s, s]`` = a; outputs
    ``[1, s, s, s]`` = u; coordinates ``[3, s, s, s]``. Dimensionless.
    """

    name = "darcy-3d"

    def setup(self) -> None:
        super().setup()
        s = self.resolution
        self.grid = Grid((s, s, s))

    def coordinates(self) -> np.ndarray:
        """``[3, s, s, s]``: x, y, z of every node, ``i / (s − 1)`` along each axis."""
        return self.grid.mesh()

    def outputs(self, params: Params, u_full: np.ndarray) -> np.ndarray:
        """``[1, s, s, s]`` float32 solution at every node (zeros on the boundary)."""
        return self.grid.to_field(np.asarray(u_full, dtype=float)).astype(np.float32)

    def _gaussian_field(self, rng: np.random.Generator) -> np.ndarray:
        s = self.resolution
        return gaussian_random_field((s, s, s), self.alpha, self.tau, rng, sigma=self.sigma,
                                     periodic=False)


@register_family
class PoissonObstacles3D(PDEFamily):
    """The pressure Poisson equation of a fluid step around solid obstacles (DCDM's systems).

    The linear systems of Kaneda et al. (ICML 2023, "A deep conjugate direction method"): the
    pressure projection of an incompressible flow on an ``s x s x s`` grid of cells
    (``s = resolution``, cell width ``h = 1/s``, cell centres ``(i + ½)/s`` in the unit cube),
    some of them solid. In the fluid cells ``−Δp = f``; a face between a fluid and a solid cell is
    a wall, ``∂p/∂n = 0``; the faces of the cube are open, ``p = 0`` one cell beyond them (the
    ghost cells of fluid codes), which makes the matrix SPD whatever the obstacles.

    Discretisation: the 7-point Laplacian restricted to the fluid cells, row ``i`` reading
    ``(Σ_j (p_i − p_j)) / h²`` over the non-solid neighbours ``j`` (fluid cells, and ghost cells
    with ``p_j = 0``); solid cells have no row and no column (``n`` = the number of fluid cells,
    at most ``s³``). Assembled by :func:`~pdesuite.discretization.fd.diffusion` with ``a = 1``
    and ``active`` = the fluid cells, on the node grid ``self.grid`` of ``s + 2`` points per
    axis whose inner points are the cell centres and whose outer layer is the Dirichlet ghost
    layer. Without obstacles the matrix is that of :class:`Darcy3D` at resolution ``s + 2`` with
    ``a = 1``, times ``(s / (s + 1))²``. The sparsity pattern changes from sample to sample (the
    obstacles move); the direct path of generation analyses each new pattern afresh.

    Random parameters:
        * the solid mask: ``obstacles`` shapes, each a box or a sphere (drawn from ``shapes``),
          centre uniform in the cube, box half-widths (one per axis) or sphere radius uniform in
          ``size_range``; a cell is solid when its centre lies in a shape. Fluid cells cut off
          from the open faces by solids (a pocket, whose pressure would be undetermined) are
          made solid. A mask whose solid fraction is outside ``fill`` is drawn again (at most
          100 times, then RuntimeError).
        * the right-hand side ``f``, zero in the solids, by ``source``:
          ``"divergence"`` (default): ``f = −∇·u*``, the divergence of a random velocity ``u*``
          (three Gaussian random fields, cosine expansion, ``alpha``, ``tau``, ``sigma``) on
          the faces of the cells, averaged from the two cell centres (the cell's own value on a
          face of the cube) and zero on every face that touches a solid (no flow through walls)
          — so that ``u* − ∇p`` is divergence free in the fluid cells
          (:meth:`divergence_source`); ``"grf"``: a Gaussian random field; ``"constant"``: 1.

    Options (defaults): ``obstacles`` (4), ``shapes`` (["box", "sphere"]), ``size_range``
    ([0.08, 0.2]), ``fill`` ([0.0, 0.5], bounds of the solid fraction), ``source``
    ("divergence", "grf" or "constant"), ``alpha`` (2.5), ``tau`` (7.0), ``sigma`` (None:
    ``τ^(α − 3/2)``).

    Arrays: ``sample`` -> ``{"solid": bool [s, s, s], "source": [s, s, s]}`` (``f``, zero in the
    solids); inputs ``[2, s, s, s]`` = (solid as 1/0, f); outputs ``[1, s, s, s]`` = p (zero in
    the solids); coordinates ``[3, s, s, s]``, the cell centres. Dimensionless (``h``, ``Δt``
    and the density folded into ``f``).
    """

    name = "poisson-obstacles-3d"
    grid_convention = "cell"  # the s³ cell centres
    spd = True
    defaults = {
        "obstacles": 4,
        "shapes": ["box", "sphere"],
        "size_range": [0.08, 0.2],
        "fill": [0.0, 0.5],
        "source": "divergence",
        "alpha": 2.5,
        "tau": 7.0,
        "sigma": None,
    }
    input_names = ("solid", "source")
    output_names = ("pressure",)
    units = {"x": "1", "solid": "1", "source": "1", "pressure": "1"}

    #: Draws of the solid mask before ``sample`` gives up on the ``fill`` bounds.
    max_attempts = 100

    def setup(self) -> None:
        self.obstacles = check_int(self.options["obstacles"], "obstacles", 0)
        shapes = self.options["shapes"]
        shapes = [shapes] if isinstance(shapes, str) else shapes
        if not isinstance(shapes, list) or not shapes:
            raise ValueError(
                "shapes: expected a non-empty list of 'box' and 'sphere', got "
                f"{self.options['shapes']!r}"
            )
        self.shapes = tuple(check_choice(shape, "shapes", ("box", "sphere")) for shape in shapes)
        self.size_range = check_range(self.options["size_range"], "size_range")
        if self.size_range[0] <= 0.0:
            raise ValueError(f"size_range: sizes must be > 0, got {self.options['size_range']!r}")
        self.fill = check_range(self.options["fill"], "fill")
        if self.fill[0] < 0.0 or self.fill[1] >= 1.0:
            raise ValueError(
                "fill: expected 0 <= lo <= hi < 1 (some fluid must remain), got "
                f"{self.options['fill']!r}"
            )
        self.source = check_choice(
            self.options["source"], "source", ("divergence", "grf", "constant")
        )
        self.alpha = check_positive(self.options["alpha"], "alpha")
        self.tau = check_positive(self.options["tau"], "tau")
        self.sigma = _check_sigma(self.options["sigma"])
        s = self.resolution
        h = 1.0 / s
        # Node grid whose inner s³ points are the cell centres and whose outer layer is the
        # Dirichlet ghost layer (zero by fd's default boundary condition).
        self.grid = Grid((s + 2,) * 3, bounds=(-0.5 * h, 1.0 + 0.5 * h))
        self.centres = (np.arange(s) + 0.5) * h

    # ------------------------------------------------------------------------------ sampling
    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        solid = self._draw_solid(rng)
        fluid = ~solid
        s = self.resolution
        if self.source == "constant":
            source = fluid.astype(float)
        elif self.source == "grf":
            field = gaussian_random_field(
                (s, s, s), self.alpha, self.tau, rng, sigma=self.sigma, periodic=False
            )
            source = np.where(fluid, field, 0.0)
        else:
            velocity = gaussian_random_field((s, s, s), self.alpha, self.tau, rng, sigma=self.sigma,
                                             periodic=False, n_samples=3)
            source = self.divergence_source(solid, velocity)
        return {"solid": solid, "source": source}

    def _draw_solid(self, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.fill
        for _ in range(self.max_attempts):
            solid = np.zeros((self.resolution,) * 3, dtype=bool)
            for _ in range(self.obstacles):
                kind = self.shapes[int(rng.integers(len(self.shapes)))]
                centre = rng.random(3)
                size = rng.uniform(*self.size_range, size=3)
                solid |= self._shape_mask(kind, centre, size)
            solid |= _enclosed_fluid(solid)
            if lo <= solid.mean() <= hi:
                return solid
        raise RuntimeError(
            f"fill: no solid mask with a solid fraction in [{lo}, {hi}] in {self.max_attempts} "
            f"draws of {self.obstacles} obstacle(s) of sizes {list(self.size_range)}; widen "
            "fill or change obstacles/size_range"
        )

    def _shape_mask(self, kind: str, centre: np.ndarray, size: np.ndarray) -> np.ndarray:
        """Cells whose centre lies in the box (half-widths ``size``) or the sphere (radius
        ``size[0]``)."""
        offsets = [self.centres - c for c in centre]
        if kind == "box":
            inside = [np.abs(d) <= w for d, w in zip(offsets, size)]
            return inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
        squared = [d * d for d in offsets]
        distance = squared[0][:, None, None] + squared[1][None, :, None] + squared[2][None, None, :]
        return distance <= size[0] ** 2

    def divergence_source(self, solid: np.ndarray, velocity: np.ndarray) -> np.ndarray:
        """``f = −∇·u*`` ``[s, s, s]`` of a cell-centred velocity ``[3, s, s, s]``, zero in solids.

        ``u*`` on a face between two cells is the mean of their values, on a face of the cube
        the value of its one cell, and zero on a face that touches a solid cell. Then, with ``p``
        the solution of this family's system, ``u* − ∇p`` (``(p_j − p_i)/h`` on the faces
        between non-solid cells, ``p = 0`` in the ghost cells) has zero divergence in every
        fluid cell.
        """
        s = self.resolution
        solid = self._mask(solid, "solid")
        velocity = np.asarray(velocity, dtype=float)
        if velocity.shape != (3, s, s, s):
            raise ValueError(f"velocity: expected shape {(3, s, s, s)}, got {velocity.shape}")
        divergence = np.zeros((s, s, s))
        for axis in range(3):
            v = velocity[axis]
            first = np.take(v, [0], axis=axis)
            last = np.take(v, [s - 1], axis=axis)
            extended = np.concatenate([first, v, last], axis=axis)
            faces = 0.5 * (
                _axis_slice(extended, axis, 0, -1) + _axis_slice(extended, axis, 1, None)
            )
            pad = [(0, 0)] * 3
            pad[axis] = (1, 1)
            walled = np.pad(solid, pad, constant_values=False)
            faces[_axis_slice(walled, axis, 0, -1) | _axis_slice(walled, axis, 1, None)] = 0.0
            divergence += np.diff(faces, axis=axis) * s
        return np.where(solid, 0.0, -divergence)

    # ------------------------------------------------------------------------------ arrays
    def _mask(self, value: Any, key: str) -> np.ndarray:
        s = self.resolution
        mask = np.asarray(value)
        if mask.shape != (s, s, s):
            raise ValueError(f"params[{key!r}]: expected shape {(s, s, s)}, got {mask.shape}")
        if mask.dtype != bool:
            if mask.dtype.kind not in "iuf" or not np.all((mask == 0) | (mask == 1)):
                raise ValueError(
                    f"params[{key!r}]: expected a bool mask (or 0/1 values), got dtype {mask.dtype}"
                )
            mask = mask != 0
        return mask

    def _solid(self, params: Params) -> np.ndarray:
        if "solid" not in params:
            raise ValueError("params: missing 'solid'; expected the dict that sample() returns")
        return self._mask(params["solid"], "solid")

    def assemble(self, params: Params) -> LinearSystem:
        solid = self._solid(params)
        s = self.resolution
        source = _field(params, "source", (s, s, s))
        if solid.all():
            raise ValueError("params['solid']: every cell is solid; there is nothing to solve")
        enclosed = _enclosed_fluid(solid)
        if enclosed.any():
            raise ValueError(
                f"params['solid']: {int(enclosed.sum())} fluid cell(s) are enclosed by solids, "
                "away "
                "from the open faces of the cube: their pressure is undetermined (a singular "
                "matrix); make them solid, as sample() does"
            )
        active = np.ones(self.grid.shape, dtype=bool)
        active[1:-1, 1:-1, 1:-1] = ~solid
        padded = np.zeros(self.grid.shape)
        padded[1:-1, 1:-1, 1:-1] = np.where(solid, 0.0, source)
        return fd.diffusion(self.grid, 1.0, source=padded, active=active)

    def inputs(self, params: Params) -> np.ndarray:
        solid = self._solid(params)
        s = self.resolution
        source = np.where(solid, 0.0, _field(params, "source", (s, s, s)))
        return np.stack([solid, source]).astype(np.float32)

    def outputs(self, params: Params, u_full: np.ndarray) -> np.ndarray:
        """``[1, s, s, s]`` float32 pressure in every cell (zero in the solids)."""
        u_full = np.asarray(u_full, dtype=float)
        if u_full.shape != (self.grid.size,):
            raise ValueError(
                f"u_full: expected shape ({self.grid.size},) (system.expand(x)), got {u_full.shape}"
            )
        return self.grid.to_field(u_full)[:, 1:-1, 1:-1, 1:-1].astype(np.float32)

    def coordinates(self) -> np.ndarray:
        """``[3, s, s, s]``: x, y, z of every cell centre, ``(i + ½)/s`` along each axis."""
        return np.stack(np.meshgrid(self.centres, self.centres, self.centres, indexing="ij"))


def _axis_slice(array: np.ndarray, axis: int, start: int | None, stop: int | None) -> np.ndarray:
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, stop)
    return array[tuple(index)]


def _enclosed_fluid(solid: np.ndarray) -> np.ndarray:
    """Fluid cells (False in ``solid``) with no face-connected path of fluid to the array's
    border."""
    labels, count = scipy.ndimage.label(~solid)  # face (6-) connectivity
    if count == 0:
        return np.zeros_like(solid)
    border = np.ones_like(solid)
    border[(slice(1, -1),) * solid.ndim] = False
    open_labels = np.unique(labels[border & ~solid])
    return (labels > 0) & ~np.isin(labels, open_labels)


@register_family
class HelmholtzGRF(_SquareGridFamily):
    """Helmholtz ``∇²u + k(x)² u = f`` on the unit square, ``u = 0`` on the boundary; indefinite.

    Assembled as ``−Δu − k²u = −f`` with 5-point finite differences on the ``s x s`` node grid
    (``n = (s − 2)²`` unknowns). The matrix is symmetric and indefinite as soon as ``k²``
    exceeds the smallest Dirichlet eigenvalue ``2π² ≈ 19.7``; a sample whose ``k`` puts an
    eigenvalue near zero is nearly singular (there is no absorbing boundary), which is what
    makes this family hard for Krylov methods. Keep ``k_max h`` below about 0.6 (ten points per
    wavelength) for an accurate solution.

    Random parameter: the wavenumber ``k = k0 (1 + δ (2 (g − min g) / (max g − min g) − 1))``
    with ``g`` a Gaussian random field (cosine expansion, ``alpha``, ``tau``): the field mapped
    affinely onto exactly ``[k0 (1 − δ), k0 (1 + δ)]``, both ends reached in every sample.

    Source: ``"gaussian"``: ``f = A exp(−|x − x_s|² / (2 w²)) / (2π w²)`` (unit mass times A);
    ``"point"``: the discrete delta ``A / h²`` at the node nearest ``x_s``.

    Options (defaults): ``k0`` (20.0), ``delta`` (0.25), ``alpha`` (2.5), ``tau`` (7.0),
    ``sigma`` (None), ``source`` ("gaussian" or "point"), ``source_position`` ([0.5, 0.5]),
    ``source_width`` w (0.05), ``source_amplitude`` A (1.0).

    Arrays: ``sample`` -> ``{"wavenumber": [s, s]}``; inputs ``[1, s, s]`` = k; outputs
    ``[1, s, s]`` = u; coordinates ``[2, s, s]``. Dimensionless (k in radians per unit length).
    """

    name = "helmholtz"
    spd = False
    defaults = {
        "k0": 20.0,
        "delta": 0.25,
        "alpha": 2.5,
        "tau": 7.0,
        "sigma": None,
        "source": "gaussian",
        "source_position": [0.5, 0.5],
        "source_width": 0.05,
        "source_amplitude": 1.0,
    }
    input_names = ("wavenumber",)
    output_names = ("u",)
    units = {"x": "1", "wavenumber": "1/length (rad)", "source": "1", "u": "1"}

    def setup(self) -> None:
        super().setup()
        self.k0 = check_positive(self.options["k0"], "k0")
        self.delta = check_positive(self.options["delta"], "delta", allow_zero=True)
        if self.delta >= 1.0:
            raise ValueError(
                f"delta: expected 0 <= delta < 1 (k must stay positive), got {self.delta}"
            )
        self.alpha = check_positive(self.options["alpha"], "alpha")
        self.tau = check_positive(self.options["tau"], "tau")
        self.sigma = _check_sigma(self.options["sigma"])
        kind = check_choice(self.options["source"], "source", ("gaussian", "point"))
        try:
            position = np.array([float(v) for v in self.options["source_position"]])
        except (TypeError, ValueError):
            position = np.full(3, np.nan)  # reported below
        if position.shape != (2,) or not np.all((position >= 0) & (position <= 1)):
            raise ValueError(
                "source_position: expected a point [x, y] in the unit square, got "
                f"{self.options['source_position']!r}"
            )
        width = check_positive(self.options["source_width"], "source_width")
        amplitude = check_real(self.options["source_amplitude"], "source_amplitude")
        if kind == "gaussian":
            r2 = ((self.grid.mesh() - position[:, None, None]) ** 2).sum(axis=0)
            self.source_field = amplitude * np.exp(-r2 / (2 * width**2)) / (2 * np.pi * width**2)
        else:
            self.source_field = np.zeros(self.grid.shape)
            nearest = tuple(int(round(p * (self.resolution - 1))) for p in position)
            self.source_field[nearest] = amplitude / self.grid.cell_volume

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        s = self.resolution
        g = gaussian_random_field(
            (s, s), self.alpha, self.tau, rng, sigma=self.sigma, periodic=False
        )
        unit = 2.0 * (g - g.min()) / (g.max() - g.min()) - 1.0
        return {"wavenumber": self.k0 * (1.0 + self.delta * unit)}

    def assemble(self, params: Params) -> LinearSystem:
        k = _field(params, "wavenumber", self.grid.shape)
        return fd.helmholtz(self.grid, k, source=-self.source_field)

    def inputs(self, params: Params) -> np.ndarray:
        return _field(params, "wavenumber", self.grid.shape)[None].astype(np.float32)


# ===================================================================================== FE
class _FEFamily(PDEFamily):
    """Families on a LagrangeSpace: arrays ``[C, ndofs]``, coordinates ``[ndofs, 2]``.

    A generated file carries the mesh (:meth:`mesh_description`, the ``mesh`` group of
    :mod:`pdesuite.datasets.mesh_io`): the space, its Dirichlet DoFs, coarse meshes of the same
    domain at ``resolution // 2`` and ``// 4`` (when at least 2) and input channel 1 as the
    boundary data, so that a model on the FE space needs nothing but the file.
    """

    grid_convention = "mesh"

    space: LagrangeSpace

    def coordinates(self) -> np.ndarray:
        """``[ndofs, 2]`` the point of each FE DoF (vertices first, then P2 edge midpoints)."""
        return np.array(self.space.dof_coordinates)

    def outputs(self, params: Params, u_full: np.ndarray) -> np.ndarray:
        """``[1, ndofs]`` float32 nodal values of the FE solution."""
        u_full = np.asarray(u_full, dtype=float)
        if u_full.shape != (self.space.ndofs,):
            raise ValueError(f"u_full: expected shape ({self.space.ndofs},), got {u_full.shape}")
        return u_full[None].astype(np.float32)

    def sort_key(self, params: Params) -> np.ndarray:
        """All input channels, concatenated (1-D): FE fields have no grid to compare on."""
        return np.asarray(self.inputs(params), dtype=np.float64).ravel()

    #: Coarse meshes written for multigrid models: at ``resolution // 2``, ``// 4``, at most this
    #: many, none coarser than ``_COARSEST``.
    _COARSE_LEVELS = 2
    _COARSEST = 2

    def build_mesh(self, resolution: int) -> Mesh:
        """The family's mesh at ``resolution`` (``self.mesh`` is the one at its own)."""
        raise NotImplementedError

    def dirichlet_dof_indices(self) -> np.ndarray:
        """Sorted DoFs whose values are Dirichlet data."""
        raise NotImplementedError

    def mesh_description(self) -> MeshInfo:
        """The mesh, degree and Dirichlet DoFs for the file's ``mesh`` group, with coarser meshes
        of the same domain (for multigrid models) and the input channel of the boundary data
        (channel 1 of both FE families)."""
        coarse = coarse_resolutions(self.resolution, self._COARSE_LEVELS, self._COARSEST)
        return MeshInfo(self.mesh, self.space.degree, self.dirichlet_dof_indices(),
                        tuple(self.build_mesh(n) for n in coarse), boundary_channel=1)


def _monomials(points: np.ndarray, degree: int) -> np.ndarray:
    """``[n, (degree+1)(degree+2)/2]``: ``x^i y^j`` for ``i + j <= degree``, in order of
    ``i + j``, then ``j``."""
    x, y = points[:, 0], points[:, 1]
    return np.stack(
        [x ** (total - j) * y**j for total in range(degree + 1) for j in range(total + 1)], axis=1
    )


@register_family
class PoissonFE(_FEFamily):
    """Poisson ``−Δu = f`` on the L-shaped domain ``[−1, 1]² \\ (0, 1]²``, ``u = g`` on its
    boundary.

    Discretisation: continuous Lagrange elements of ``degree`` (1 or 2) on the triangle mesh
    ``Mesh.l_shape(resolution)`` (``resolution`` cells per unit length, so ``2·resolution``
    across; P1 has ``3 r² + 4 r + 1`` DoFs). Boundary DoFs are eliminated; the matrix is SPD
    and the same for every sample (only the right-hand side changes).

    Random parameters:
        * source ``f(x) = Σ_m a_m exp(−|x − c_m|² / (2 w_m²))``, ``n_bumps`` Gaussians with
          centres uniform in the domain, widths uniform in ``width_range``, amplitudes uniform in
          ``amplitude_range``;
        * boundary data ``g(x, y) = Σ_{i+j<=p} b_ij x^i y^j``, a polynomial of degree
          ``boundary_degree`` p with coefficients uniform in ``[−boundary_scale, boundary_scale]``.

    Options (defaults): ``degree`` (1), ``n_bumps`` (3), ``width_range`` ([0.1, 0.3]),
    ``amplitude_range`` ([−10, 10]), ``boundary_degree`` (2), ``boundary_scale`` (1.0).

    Arrays: ``sample`` -> ``{"centers": [m, 2], "widths": [m], "amplitudes": [m],
    "boundary_coefficients": [(p+1)(p+2)/2]}``; inputs ``[2, ndofs]`` = (f at the DoFs, g at the
    boundary DoFs and 0 inside); outputs ``[1, ndofs]`` = u; coordinates ``[ndofs, 2]``.
    Dimensionless.
    """

    name = "poisson-fe"
    spd = True
    defaults = {
        "degree": 1,
        "n_bumps": 3,
        "width_range": [0.1, 0.3],
        "amplitude_range": [-10.0, 10.0],
        "boundary_degree": 2,
        "boundary_scale": 1.0,
    }
    input_names = ("source", "boundary_value")
    output_names = ("u",)
    units = {"x": "1", "source": "1", "boundary_value": "1", "u": "1"}

    def setup(self) -> None:
        degree = check_choice(self.options["degree"], "degree", (1, 2))
        self.n_bumps = check_int(self.options["n_bumps"], "n_bumps", 1)
        self.width_range = check_range(self.options["width_range"], "width_range")
        if self.width_range[0] <= 0:
            raise ValueError(
                f"width_range: widths must be > 0, got {self.options['width_range']!r}"
            )
        self.amplitude_range = check_range(self.options["amplitude_range"], "amplitude_range")
        self.boundary_degree = check_int(self.options["boundary_degree"], "boundary_degree", 0)
        self.boundary_scale = check_positive(
            self.options["boundary_scale"], "boundary_scale", allow_zero=True
        )
        self.mesh = self.build_mesh(self.resolution)
        self.space = LagrangeSpace(self.mesh, degree)
        self.stiffness = stiffness_matrix(self.space)
        self.boundary_dofs = self.space.boundary_dofs()

    def build_mesh(self, resolution: int) -> Mesh:
        return Mesh.l_shape(resolution)

    def dirichlet_dof_indices(self) -> np.ndarray:
        return self.boundary_dofs

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        m = self.n_bumps
        # The L is three unit squares: pick one, then a point inside it (no rejection loop).
        corners = np.array([[-1.0, -1.0], [0.0, -1.0], [-1.0, 0.0]])
        centers = corners[rng.integers(0, 3, size=m)] + rng.random((m, 2))
        widths = rng.uniform(*self.width_range, size=m)
        amplitudes = rng.uniform(*self.amplitude_range, size=m)
        n_coefficients = (self.boundary_degree + 1) * (self.boundary_degree + 2) // 2
        coefficients = rng.uniform(-self.boundary_scale, self.boundary_scale, size=n_coefficients)
        return {
            "centers": centers,
            "widths": widths,
            "amplitudes": amplitudes,
            "boundary_coefficients": coefficients,
        }

    def source_function(self, params: Params) -> Callable[[np.ndarray], np.ndarray]:
        """The source ``f`` of ``params`` as a callable on points ``[n, 2] -> [n]``."""
        m = self.n_bumps
        centers = _field(params, "centers", (m, 2))
        widths = _field(params, "widths", (m,))
        amplitudes = _field(params, "amplitudes", (m,))

        def source(points: np.ndarray) -> np.ndarray:
            r2 = ((points[:, None, :] - centers[None]) ** 2).sum(axis=2)
            return np.exp(-r2 / (2 * widths**2)) @ amplitudes

        return source

    def boundary_function(self, params: Params) -> Callable[[np.ndarray], np.ndarray]:
        """The Dirichlet data ``g`` of ``params`` as a callable on points ``[n, 2] -> [n]``."""
        n_coefficients = (self.boundary_degree + 1) * (self.boundary_degree + 2) // 2
        coefficients = _field(params, "boundary_coefficients", (n_coefficients,))
        return lambda points: _monomials(points, self.boundary_degree) @ coefficients

    def assemble(self, params: Params) -> LinearSystem:
        load = load_vector(self.space, self.source_function(params))
        return assemble_system(
            self.space, self.stiffness, load, Dirichlet(self.boundary_function(params))
        )

    def inputs(self, params: Params) -> np.ndarray:
        f = self.source_function(params)(self.space.dof_coordinates)
        g = np.zeros(self.space.ndofs)
        g[self.boundary_dofs] = self.boundary_function(params)(
            self.space.dof_coordinates[self.boundary_dofs]
        )
        return np.stack([f, g]).astype(np.float32)


def _cosine_series(coefficients: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``Σ c_kl φ_k(x) φ_l(y)`` at ``points`` ``[n, 2]`` in the unit square; φ the orthonormal
    Neumann cosines (1, √2 cos(πkx), ...): the KL series of the cosine GRF at arbitrary points."""
    k = np.arange(coefficients.shape[0])
    weight = np.where(k == 0, 1.0, np.sqrt(2.0))
    cos_x = weight * np.cos(np.pi * points[:, :1] * k)
    cos_y = weight * np.cos(np.pi * points[:, 1:] * k)
    return np.einsum("nk,kl,nl->n", cos_x, coefficients, cos_y)


@register_family
class ThermalFE(_FEFamily):
    """Steady heat conduction ``−∇·(κ ∇T) = q`` in a plate with a hole (SKR's thermal problem).

    Domain: the unit square (metres) with a circular hole of radius 0.25 at its centre,
    ``Mesh.rectangle_with_hole(resolution)`` (``resolution`` cells per side, a structured ring of
    triangles), Lagrange elements of ``degree``. The matrix is SPD.

    Boundary conditions, random per sample:
        * fixed temperatures (Dirichlet) on the left side ``x = 0``, the right side ``x = 1``
          and the hole, each a constant uniform in ``temperature_range``;
        * heat fluxes (Neumann) on the bottom ``y = 0`` and the top ``y = 1``, each a constant
          uniform in ``flux_range``: ``κ ∂T/∂n = g`` with ``n`` the outward normal, so ``g > 0``
          is heat entering the plate.

    Conductivity: the constant ``conductivity`` κ0, or with ``random_conductivity`` the field
    ``κ0 exp(G)``, ``G`` the cosine-expansion Gaussian field (``conductivity_alpha``,
    ``conductivity_tau``, its first ``conductivity_modes`` modes per axis) evaluated at the
    quadrature points.

    Options (defaults): ``degree`` (1), ``temperature_range`` ([0, 100] °C), ``flux_range``
    ([−100, 100] W/m²), ``conductivity`` (1.0 W/(m·K)), ``random_conductivity`` (False),
    ``conductivity_alpha`` (2.5), ``conductivity_tau`` (7.0), ``conductivity_modes`` (16),
    ``heat_source`` q (0.0 W/m³).

    Arrays: ``sample`` -> ``{"temperatures": [3] (left, right, hole), "fluxes": [2] (bottom,
    top)}`` plus ``"conductivity_coefficients": [K, K]`` when random; inputs ``[3, ndofs]`` =
    (κ at the DoFs, the fixed temperature on Dirichlet DoFs and 0 elsewhere, the flux on the
    other Neumann DoFs and 0 elsewhere); outputs ``[1, ndofs]`` = T; coordinates ``[ndofs, 2]``.
    """

    name = "thermal-fe"
    spd = True
    defaults = {"degree": 1, "temperature_range": [0.0, 100.0], "flux_range": [-100.0, 100.0],
                "conductivity": 1.0, "random_conductivity": False, "conductivity_alpha": 2.5,
                "conductivity_tau": 7.0, "conductivity_modes": 16, "heat_source": 0.0}
    input_names = ("conductivity", "boundary_temperature", "boundary_flux")
    output_names = ("temperature",)
    units = {
        "x": "m",
        "conductivity": "W/(m K)",
        "boundary_temperature": "degC",
        "boundary_flux": "W/m^2",
        "heat_source": "W/m^3",
        "temperature": "degC",
    }

    def setup(self) -> None:
        degree = check_choice(self.options["degree"], "degree", (1, 2))
        self.temperature_range = check_range(self.options["temperature_range"], "temperature_range")
        self.flux_range = check_range(self.options["flux_range"], "flux_range")
        self.conductivity = check_positive(self.options["conductivity"], "conductivity")
        self.random_conductivity = check_choice(
            self.options["random_conductivity"], "random_conductivity", (False, True)
        )
        self.conductivity_alpha = check_positive(
            self.options["conductivity_alpha"], "conductivity_alpha"
        )
        self.conductivity_tau = check_positive(self.options["conductivity_tau"], "conductivity_tau")
        self.conductivity_modes = check_int(
            self.options["conductivity_modes"], "conductivity_modes", 2
        )
        self.heat_source = check_real(self.options["heat_source"], "heat_source")
        self.mesh = self.build_mesh(self.resolution)
        self.space = LagrangeSpace(self.mesh, degree)
        tol = 0.25 / self.resolution
        self.facets = {
            "left": self.mesh.boundary_facets_where(lambda x: x[:, 0] < tol),
            "right": self.mesh.boundary_facets_where(lambda x: x[:, 0] > 1 - tol),
            "hole": self.mesh.facets("hole"),
            "bottom": self.mesh.boundary_facets_where(lambda x: x[:, 1] < tol),
            "top": self.mesh.boundary_facets_where(lambda x: x[:, 1] > 1 - tol),
        }
        dirichlet = np.unique(
            np.concatenate(
                [self.space.boundary_dofs(self.facets[k]) for k in ("left", "right", "hole")]
            )
        )
        self.dirichlet_dofs = {
            k: self.space.boundary_dofs(self.facets[k]) for k in ("left", "right", "hole")
        }
        # corner DoFs shared with a Dirichlet side are Dirichlet (normalize_fe_bcs does the same)
        self.neumann_dofs = {
            k: np.setdiff1d(self.space.boundary_dofs(self.facets[k]), dirichlet)
            for k in ("bottom", "top")
        }
        self.load = load_vector(self.space, self.heat_source)
        self._constant_stiffness = (
            None if self.random_conductivity else stiffness_matrix(self.space, self.conductivity)
        )
        if self.random_conductivity:
            modes = self.conductivity_modes
            self._mode_std = np.sqrt(
                grf_spectrum((modes, modes), self.conductivity_alpha, self.conductivity_tau)
            )

    def build_mesh(self, resolution: int) -> Mesh:
        return Mesh.rectangle_with_hole(resolution)

    def dirichlet_dof_indices(self) -> np.ndarray:
        return np.unique(np.concatenate(list(self.dirichlet_dofs.values())))

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        params = {"temperatures": rng.uniform(*self.temperature_range, size=3),
                  "fluxes": rng.uniform(*self.flux_range, size=2)}
        if self.random_conductivity:
            params["conductivity_coefficients"] = (
                rng.standard_normal(self._mode_std.shape) * self._mode_std
            )
        return params

    def conductivity_function(self, params: Params) -> float | Callable[[np.ndarray], np.ndarray]:
        """κ of ``params``: the constant κ0 or a callable on points ``[n, 2] -> [n]``."""
        if not self.random_conductivity:
            return self.conductivity
        modes = self.conductivity_modes
        coefficients = _field(params, "conductivity_coefficients", (modes, modes))
        return lambda points: self.conductivity * np.exp(_cosine_series(coefficients, points))

    def boundary_conditions(self, params: Params) -> list[tuple[np.ndarray, Dirichlet | Neumann]]:
        """``[(facets, condition), ...]`` for :func:`~pdesuite.discretization.assemble_system`."""
        temperatures = _field(params, "temperatures", (3,))
        fluxes = _field(params, "fluxes", (2,))
        return [
            (self.facets["left"], Dirichlet(temperatures[0])),
            (self.facets["right"], Dirichlet(temperatures[1])),
            (self.facets["hole"], Dirichlet(temperatures[2])),
            (self.facets["bottom"], Neumann(fluxes[0])),
            (self.facets["top"], Neumann(fluxes[1])),
        ]

    def assemble(self, params: Params) -> LinearSystem:
        if self._constant_stiffness is not None:
            stiffness = self._constant_stiffness
        else:
            stiffness = stiffness_matrix(self.space, self.conductivity_function(params))
        return assemble_system(self.space, stiffness, self.load, self.boundary_conditions(params))

    def inputs(self, params: Params) -> np.ndarray:
        kappa = self.conductivity_function(params)
        kappa_dofs = (
            kappa(self.space.dof_coordinates)
            if callable(kappa)
            else np.full(self.space.ndofs, kappa)
        )
        temperature = np.zeros(self.space.ndofs)
        flux = np.zeros(self.space.ndofs)
        temperatures = _field(params, "temperatures", (3,))
        fluxes = _field(params, "fluxes", (2,))
        for value, side in zip(temperatures, ("left", "right", "hole")):
            temperature[self.dirichlet_dofs[side]] = value
        for value, side in zip(fluxes, ("bottom", "top")):
            flux[self.neumann_dofs[side]] = value
        return np.stack([kappa_dofs, temperature, flux]).astype(np.float32)


# ======================================================================== time-dependent
class _TimeDependentFamily(PDEFamily):
    """Shared time stepping options: ``dt``, ``final_time`` and ``record_interval``."""

    time_dependent = True

    def _setup_times(self, dt: float | None) -> None:
        self.final_time = check_positive(self.options["final_time"], "final_time")
        self.record_interval = check_positive(self.options["record_interval"], "record_interval")
        records = self.final_time / self.record_interval
        if abs(records - round(records)) > 1e-9 * max(1.0, records) or round(records) < 1:
            raise ValueError(
                f"record_interval: must divide final_time={self.final_time} a whole number "
                f"of times, got {self.record_interval}"
            )
        self.n_records = int(round(records))
        if dt is not None:
            substeps = self.record_interval / dt
            if abs(substeps - round(substeps)) > 1e-9 * max(1.0, substeps) or round(substeps) < 1:
                raise ValueError(
                    f"dt: must divide record_interval={self.record_interval} a whole number of "
                    f"times, got {dt}"
                )
            self.substeps = int(round(substeps))

    @property
    def n_frames(self) -> int:
        """``T = final_time / record_interval + 1`` frames, at ``t = 0, record_interval, ...``."""
        return self.n_records + 1

    def times(self) -> np.ndarray:
        """``[T]`` the time of each frame."""
        return self.record_interval * np.arange(self.n_frames)

    def inputs(self, params: Params) -> np.ndarray:
        """``[1, *spatial]`` float32 initial condition (frame 0 of the trajectory)."""
        return _field(params, "initial_condition", self.spatial_shape)[None].astype(np.float32)


class _BatchSteppedFamily(_TimeDependentFamily):
    """A family whose ``simulate_batch`` steps all its samples at once; one sample is a batch of
    one."""

    def simulate(
        self, params: Params, solve: SolveCallable | None = None
    ) -> tuple[np.ndarray, list[dict]]:
        trajectories, stats = self.simulate_batch([params])
        return trajectories[0], stats[0]


@register_family
class HeatCN(_TimeDependentFamily):
    """Heat equation ``u_t = κ Δu + f`` on the unit square, ``u = 0`` on the boundary.

    Space: 5-point finite differences on the ``s x s`` node grid (``n = (s − 2)²`` unknowns,
    ``A = −κ Δ_h``). Time: Crank–Nicolson, ``(I + dt/2 A) u^{k+1} = (I − dt/2 A) u^k + dt f``,
    one SPD linear solve per step through ``solve(A, b, x0)`` warm-started from ``u^k``;
    default ``pdesuite.solvers.solve(..., method="cg", rtol=rtol)``. A step whose solve does not
    converge is kept (its stats say ``converged: False``) and the run goes on. Each discrete sine
    mode is multiplied per step by exactly ``(1 − dt λ/2) / (1 + dt λ/2)``, ``λ`` its eigenvalue
    of A.
    Batches (:meth:`simulate_batch`) are the default loop over samples: its cost is the linear
    solves, made by the caller's solver (in generation, a recycling solver whose state runs from
    one sample to the next), not call overhead.

    Random parameter: the initial condition, a Gaussian random field of sine (Dirichlet) modes
    (``alpha``, ``tau``, ``sigma``; zero on the boundary nodes).

    Options (defaults): ``kappa`` (0.01), ``source`` f (0.0, constant), ``dt`` (0.01),
    ``final_time`` (1.0), ``record_interval`` (0.1), ``alpha`` (2.5), ``tau`` (7.0),
    ``sigma`` (None), ``rtol`` (1e-8).

    Arrays: ``sample`` -> ``{"initial_condition": [s, s]}``; inputs ``[1, s, s]`` = u(0);
    ``simulate`` -> trajectory ``[T, 1, s, s]`` at ``t = 0, record_interval, ..., final_time``
    and one stats dict per step; coordinates ``[2, s, s]``. Dimensionless.
    """

    name = "heat"
    grid_convention = "node"
    spd = True
    defaults = {"kappa": 0.01, "source": 0.0, "dt": 0.01, "final_time": 1.0, "record_interval": 0.1,
                "alpha": 2.5, "tau": 7.0, "sigma": None, "rtol": 1e-8}
    input_names = ("u0",)
    output_names = ("u",)
    units = {"x": "1", "t": "1", "kappa": "1", "u": "1"}

    def setup(self) -> None:
        s = self.resolution
        self.grid = Grid((s, s))
        self.kappa = check_positive(self.options["kappa"], "kappa")
        self.source = check_real(self.options["source"], "source")
        self.dt = check_positive(self.options["dt"], "dt")
        self._setup_times(self.dt)
        self.alpha = check_positive(self.options["alpha"], "alpha")
        self.tau = check_positive(self.options["tau"], "tau")
        self.sigma = _check_sigma(self.options["sigma"])
        self.rtol = check_positive(self.options["rtol"], "rtol")

    def coordinates(self) -> np.ndarray:
        """``[2, s, s]`` node coordinates."""
        return self.grid.mesh()

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        s = self.resolution
        return {
            "initial_condition": gaussian_random_field(
                (s, s), self.alpha, self.tau, rng, sigma=self.sigma, zero_boundary=True
            )
        }

    def step_matrices(self) -> tuple[sp.csr_array, sp.csr_array, np.ndarray, np.ndarray]:
        """``(S, R, dt·f, free)``: CN step ``S u⁺ = R u + dt f`` on the free (interior) nodes."""
        system = fd.diffusion(self.grid, self.kappa, source=self.source)
        identity = sp.identity(system.n_free, format="csr")
        half = 0.5 * self.dt * system.A
        return as_csr32(identity + half), as_csr32(identity - half), self.dt * system.b, system.free

    def default_solve(self) -> SolveCallable:
        """``solve(A, b, x0)``: the suite's CG to ``rtol``."""
        from pdesuite.solvers import solve as suite_solve

        rtol = self.rtol
        return lambda A, b, x0: suite_solve(A, b, method="cg", x0=x0, rtol=rtol)

    def simulate(
        self, params: Params, solve: SolveCallable | None = None
    ) -> tuple[np.ndarray, list[dict]]:
        u0 = _field(params, "initial_condition", self.grid.shape)
        solve = self.default_solve() if solve is None else solve
        step_matrix, explicit, forcing, free = self.step_matrices()
        u_full = np.zeros(self.grid.size)
        u = u0.ravel()[free].copy()  # boundary values of u0 are replaced by the Dirichlet zeros
        trajectory = np.empty((self.n_frames, 1) + self.grid.shape, dtype=np.float32)
        u_full[free] = u
        trajectory[0, 0] = u_full.reshape(self.grid.shape)
        stats: list[dict] = []
        for record in range(1, self.n_frames):
            for _ in range(self.substeps):
                rhs = explicit @ u + forcing
                result = solve(step_matrix, rhs, u)
                stats.append(solve_stats(result, step_matrix, rhs))
                u = np.asarray(result.x, dtype=float)
            u_full[free] = u
            trajectory[record, 0] = u_full.reshape(self.grid.shape)
        return trajectory, stats


@register_family
class Burgers1D(_BatchSteppedFamily):
    """Viscous Burgers ``u_t + u u_x = ν u_xx`` on the periodic interval ``[0, 1)``.

    Space: Fourier pseudo-spectral on ``s`` points ``x_j = j / s``; the nonlinear term
    ``−(u²/2)_x`` is evaluated in physical space with the 2/3 rule (modes above ``s/3`` are
    cut from the state before squaring and from the product). Time: integrating-factor RK4
    (Lawson): the viscous term is integrated exactly by ``exp(−ν k² t)``, the nonlinear term by
    classical RK4. Step: ``dt`` if given, else ``cfl · h / max|u0|`` (``max|u|`` does not grow
    for Burgers), shortened so that it divides ``record_interval``. The mean of ``u`` is
    conserved exactly (the nonlinear term has no zero mode). For ``ν = 1e-3`` the shocks need a
    fine grid: use ``resolution >= 1024`` (FNO's data: 8192 points).

    :meth:`simulate_batch` steps ``B`` samples together, each with its own step (bitwise the
    arrays of one sample at a time); generation batches ``default_batch_size`` samples (about
    8k points: 32 at 256 points, 8 at 1024, 1 at 8192). Measured (ν = 0.01, adaptive step, one
    thread, load average 3.3–3.5 on 2 cores), seconds per unit of time per sample: 256 points
    0.11 alone, 0.034 in batches of 8, 0.016 of 32; 1024 points 0.56 alone, 0.22 in batches of
    8; 8192 points 13.9 alone, 16.7 in batches of 8 (all arithmetic: batching does not pay).

    Random parameter: the initial condition ``u0 ~ N(0, σ² (−Δ + τ² I)^(−α))``, periodic; the
    defaults are the FNO paper's ``N(0, 625 (−Δ + 25 I)^(−2))``.

    Options (defaults): ``nu`` (0.1), ``final_time`` (1.0), ``record_interval`` (0.1), ``dt``
    (None), ``cfl`` (0.4), ``alpha`` (2.0), ``tau`` (5.0), ``sigma`` (25.0).

    Arrays: ``sample`` -> ``{"initial_condition": [s]}``; inputs ``[1, s]``; ``simulate`` ->
    trajectory ``[T, 1, s]``, no solver stats; coordinates ``[1, s]``. Dimensionless.
    """

    name = "burgers"
    grid_convention = "cell"  # periodic, points j / s
    batch_solves = False  # pseudo-spectral, explicit: its batched stepping solves nothing
    spd = False
    defaults = {"nu": 0.1, "final_time": 1.0, "record_interval": 0.1, "dt": None, "cfl": 0.4,
                "alpha": 2.0, "tau": 5.0, "sigma": 25.0}
    input_names = ("u0",)
    output_names = ("u",)
    units = {"x": "1", "t": "1", "nu": "1", "u": "1"}

    def setup(self) -> None:
        self.nu = check_positive(self.options["nu"], "nu")
        self.dt = None if self.options["dt"] is None else check_positive(self.options["dt"], "dt")
        self.cfl = check_positive(self.options["cfl"], "cfl")
        self._setup_times(None)
        self.alpha = check_positive(self.options["alpha"], "alpha")
        self.tau = check_positive(self.options["tau"], "tau")
        self.sigma = _check_sigma(self.options["sigma"])
        s = self.resolution
        self.wavenumbers = 2 * np.pi * np.fft.rfftfreq(s, d=1.0 / s)
        self.keep = np.fft.rfftfreq(s, d=1.0 / s) <= s / 3.0
        # Complex once, as the products would cast them on every call: the same values.
        self._keep_complex = self.keep.astype(complex)
        self._derivative = -0.5j * self.wavenumbers * self.keep
        # About 8k points per batch (32 samples at 256 points, 8 at 1024, 1 at 8192): measured
        # fastest per sample; at 8192 points a step is all arithmetic and batching only hurts.
        self.default_batch_size = max(1, min(64, 8192 // s))

    def coordinates(self) -> np.ndarray:
        """``[1, s]``: the points ``j / s``."""
        return (np.arange(self.resolution) / self.resolution)[None]

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {
            "initial_condition": gaussian_random_field(
                self.resolution, self.alpha, self.tau, rng, sigma=self.sigma, periodic=True
            )
        }

    def time_step(self, u0: np.ndarray) -> tuple[float, int]:
        """``(dt, substeps)``: the step used and the steps per ``record_interval``."""
        target = self.dt
        if target is None:
            peak = float(np.max(np.abs(u0)))
            target = self.cfl / (self.resolution * peak) if peak > 0 else self.record_interval
        substeps = max(1, int(np.ceil(self.record_interval / target - 1e-9)))
        return self.record_interval / substeps, substeps

    def _nonlinear(self, u_hat: np.ndarray) -> np.ndarray:
        """Dealiased ``FFT(−(u²/2)_x)`` from ``FFT(u)`` (``[..., s // 2 + 1]``)."""
        s = self.resolution
        u = scipy.fft.irfft(u_hat * self._keep_complex, n=s, axis=-1)
        return self._derivative * scipy.fft.rfft(u * u, axis=-1)

    def simulate_batch(self, params_list: Sequence[Params],
                       solve: SolveCallable | Sequence[SolveCallable | None] | None = None,
                       ) -> tuple[np.ndarray, list[list[dict]]]:
        """All samples stepped together on ``[B, s // 2 + 1]`` spectra.

        Each sample keeps its own step (:meth:`time_step`); in a record interval, step ``j``
        advances only the samples with more than ``j`` substeps (the others are done), so no
        work is wasted. Bitwise the same trajectories as :meth:`simulate` on each sample alone
        (this method on a batch of one): every operation acts on each sample's row alone, and
        an FFT of a batch equals the FFTs of its rows bit for bit (pocketfft; the tests check
        both). ``solve`` is ignored.

        Returns:
            ``(trajectories, stats)``: float32 ``[B, T, 1, s]`` and ``B`` empty lists.

        Raises:
            FloatingPointError: a sample's solution became non-finite (its batch positions
                are named).
        """
        s = self.resolution
        batch = len(params_list)
        trajectory = np.empty((batch, self.n_frames, 1, s), dtype=np.float32)
        if batch == 0:
            return trajectory, []
        u0 = np.stack([_field(params, "initial_condition", (s,)) for params in params_list])
        steps = [self.time_step(u) for u in u0]
        substeps = np.array([count for _, count in steps])
        coefficients = self._rk4_coefficients([step for step, _ in steps])
        v = scipy.fft.rfft(u0, axis=-1)
        trajectory[:, 0, 0] = u0
        for record in range(1, self.n_frames):
            for step in range(int(substeps.max())):
                active = step < substeps
                if active.all():
                    v = self._rk4_step(v, *coefficients)
                else:
                    v[active] = self._rk4_step(v[active], *(c[active] for c in coefficients))
            u = scipy.fft.irfft(v, n=s, axis=-1)
            finite = np.isfinite(u).all(axis=-1)
            if not finite.all():
                raise FloatingPointError(
                    f"burgers: the solution of batch sample(s) {np.flatnonzero(~finite).tolist()} "
                    f"blew up before t={record * self.record_interval}; lower dt or cfl, or "
                    "raise resolution"
                )
            trajectory[:, record, 0] = u
        return trajectory, [[] for _ in range(batch)]

    def _rk4_coefficients(self, steps: Sequence[float]) -> tuple[np.ndarray, ...]:
        """Row ``i`` of each: a factor of the RK4 step of a sample with step ``steps[i]``.

        ``(E, E½, dt/2, dt E½, dt/6, 2 E½)`` with ``E = exp(−ν k² dt)``, ``E½ = exp(−ν k² dt/2)``,
        each computed as the real expression of one sample and then made complex (as a product
        with a complex array would cast it), so that every row gives that sample's bits.
        """
        linear = -self.nu * self.wavenumbers**2
        full = np.stack([np.exp(linear * dt) for dt in steps])
        half = np.stack([np.exp(linear * dt / 2) for dt in steps])
        dt = np.array(steps, dtype=float)[:, None]
        factors = (full, half, 0.5 * dt, dt * half, dt / 6.0, 2.0 * half)
        return tuple(factor.astype(complex) for factor in factors)

    def _rk4_step(self, v: np.ndarray, full: np.ndarray, half: np.ndarray, half_dt: np.ndarray,
                  dt_half: np.ndarray, sixth_dt: np.ndarray, two_half: np.ndarray) -> np.ndarray:
        """One integrating-factor RK4 step of the rows of ``v`` (factors of
        :meth:`_rk4_coefficients`)."""
        a = self._nonlinear(v)
        b = self._nonlinear(half * (v + half_dt * a))
        c = self._nonlinear(half * v + half_dt * b)
        d = self._nonlinear(full * v + dt_half * c)
        return full * v + sixth_dt * (full * a + two_half * (b + c) + d)


@register_family
class NavierStokes2D(_BatchSteppedFamily):
    """2D incompressible Navier–Stokes in vorticity form on the periodic unit torus (FNO's data).

    ``w_t + u·∇w = ν Δw + f``, ``u = (∂ψ/∂y, −∂ψ/∂x)``, ``−Δψ = w``, with FNO's forcing
    ``f = A (sin(2π(x + y)) + cos(2π(x + y)))``, ``A = forcing_amplitude`` (0.1).

    Scheme (that of the FNO paper's generator): Fourier pseudo-spectral on ``s x s`` points
    ``(i/s, j/s)``, the product ``u·∇w`` in physical space with 2/3 dealiasing; Crank–Nicolson
    for ``ν Δw`` and Heun (explicit trapezoidal predictor–corrector) for ``−u·∇w + f``, fixed
    step ``dt`` (1e-4); frames every ``record_interval`` (1.0) time units. FNO solved at 256²
    and subsampled to 64²; here the solve runs at ``resolution`` directly. Cost: ``final_time /
    dt`` steps of two evaluations of ``u·∇w`` (five FFTs of ``s x s`` each); the FFTs are about
    two thirds of a step, so batching gains less than the Python overhead alone would suggest.
    :meth:`simulate_batch` steps ``B`` samples together in preallocated buffers (bitwise the
    same arrays); generation batches ``default_batch_size`` samples (about 32k points: 8 at
    64²). Measured at 64², one thread, on 2 shared cores (load average 3.0–3.7), seconds per
    unit of simulated time per sample, ``dt = 1e-4``: 2.2–3.5 in batches of 8, 2.8–4.3 one at
    a time, 2.9–4.6 in batches of 32 (past the cache), against 3.8–5.9 for the plain
    per-sample expressions this replaced; ``dt = 1e-3``: 0.23–0.36 in batches of 8, 0.29–0.41
    one at a time. So a default sample (T = 20) takes about 45–70 s at ``dt = 1e-4``, one of
    FNO's ν = 1e-3 (T = 50) 2–3 minutes. ``dt = 1e-3`` is stable for these data at 64² and ten
    times faster; at t = 2 its frames differ from those of ``dt = 1e-4`` by 3e-8 (ν = 1e-3)
    and 6e-7 (ν = 1e-5) in relative L2.

    Random parameter: the initial vorticity, a periodic Gaussian random field with
    ``alpha`` 2.5, ``tau`` 7 and FNO's amplitude (``sigma`` None means ``√2 τ^(α − 1)``,
    matching FNO's complex-coefficient generator; see :mod:`pdesuite.datasets.grf`).

    FNO's benchmarks: ``nu`` 1e-3 (T = 50), 1e-4 (T = 30), 1e-5 (T = 20), 64².
    Options (defaults): ``nu`` (1e-3), ``final_time`` (20.0), ``record_interval`` (1.0),
    ``dt`` (1e-4), ``forcing_amplitude`` (0.1; 0 for the unforced problem), ``alpha`` (2.5),
    ``tau`` (7.0), ``sigma`` (None).

    Arrays: ``sample`` -> ``{"initial_condition": [s, s]}``; inputs ``[1, s, s]`` = w(0);
    ``simulate`` -> trajectory ``[T, 1, s, s]`` (``T = final_time / record_interval + 1``,
    frame 0 the initial vorticity), no solver stats; coordinates ``[2, s, s]``. Dimensionless.
    """

    name = "navier-stokes"
    grid_convention = "cell"  # periodic, points (i / s, j / s)
    batch_solves = False  # pseudo-spectral: its batched stepping solves nothing
    spd = False
    defaults = {
        "nu": 1e-3,
        "final_time": 20.0,
        "record_interval": 1.0,
        "dt": 1e-4,
        "forcing_amplitude": 0.1,
        "alpha": 2.5,
        "tau": 7.0,
        "sigma": None,
    }
    input_names = ("w0",)
    output_names = ("vorticity",)
    units = {"x": "1", "t": "1", "nu": "1", "vorticity": "1"}

    def setup(self) -> None:
        self.nu = check_positive(self.options["nu"], "nu")
        self.dt = check_positive(self.options["dt"], "dt")
        self._setup_times(self.dt)
        self.forcing_amplitude = check_real(self.options["forcing_amplitude"], "forcing_amplitude")
        self.alpha = check_positive(self.options["alpha"], "alpha")
        self.tau = check_positive(self.options["tau"], "tau")
        sigma = _check_sigma(self.options["sigma"])
        self.sigma = (
            np.sqrt(2.0) * default_sigma(self.alpha, self.tau, 2) if sigma is None else sigma
        )
        s = self.resolution
        kx = np.fft.fftfreq(s, d=1.0 / s)[:, None]
        ky = np.fft.rfftfreq(s, d=1.0 / s)[None, :]
        self._ikx = 2j * np.pi * kx * np.ones_like(ky)
        self._iky = 2j * np.pi * ky * np.ones_like(kx)
        self._laplacian = 4 * np.pi**2 * (kx**2 + ky**2)  # eigenvalues of −Δ
        inverse = np.zeros_like(self._laplacian)
        inverse[self._laplacian > 0] = 1.0 / self._laplacian[self._laplacian > 0]
        self._inverse_laplacian = inverse
        cutoff = (2.0 / 3.0) * (s / 2.0)
        self._dealias = (np.abs(kx) <= cutoff) & (np.abs(ky) <= cutoff)
        x = np.arange(s) / s
        phase = 2 * np.pi * (x[:, None] + x[None, :])
        self.forcing = self.forcing_amplitude * (np.sin(phase) + np.cos(phase))
        # About 32k points per batch (8 samples at 64², 2 at 128²): the step's working arrays
        # then stay in cache; larger batches were measured slower per sample.
        self.default_batch_size = max(1, min(64, _POINTS_PER_BATCH // (s * s)))

    def coordinates(self) -> np.ndarray:
        """``[2, s, s]``: the points ``(i/s, j/s)``."""
        x = np.arange(self.resolution) / self.resolution
        return np.stack(np.meshgrid(x, x, indexing="ij"))

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        s = self.resolution
        return {
            "initial_condition": gaussian_random_field(
                (s, s), self.alpha, self.tau, rng, sigma=self.sigma, periodic=True
            )
        }

    def simulate_batch(self, params_list: Sequence[Params],
                       solve: SolveCallable | Sequence[SolveCallable | None] | None = None,
                       ) -> tuple[np.ndarray, list[list[dict]]]:
        """All samples stepped together on ``[B, s, s]`` arrays (FFTs over the last two axes).

        Bitwise the same trajectories as :meth:`simulate` on each sample alone (which is this
        method on a batch of one): every operation acts on each sample's slice independently,
        and an FFT of a batch equals the FFTs of its slices bit for bit (pocketfft; the tests
        check both). So the batch size and composition never change the arrays.
        ``solve`` is ignored (no linear solves).

        Returns:
            ``(trajectories, stats)``: float32 ``[B, T, 1, s, s]`` and ``B`` empty lists.

        Raises:
            FloatingPointError: a sample's vorticity became non-finite (its batch positions
                are named).
        """
        s = self.resolution
        batch = len(params_list)
        trajectory = np.empty((batch, self.n_frames, 1, s, s), dtype=np.float32)
        if batch == 0:
            return trajectory, []
        w0 = np.stack([_field(params, "initial_condition", (s, s)) for params in params_list])
        stepper = _VorticityStepper(self, batch)
        w_hat = scipy.fft.rfft2(w0, axes=(-2, -1))
        trajectory[:, 0, 0] = w0
        for record in range(1, self.n_frames):
            for _ in range(self.substeps):
                stepper.step(w_hat)
            w = scipy.fft.irfft2(w_hat, s=(s, s), axes=(-2, -1))
            finite = np.isfinite(w).all(axis=(-2, -1))
            if not finite.all():
                raise FloatingPointError(f"navier-stokes: the vorticity of batch sample(s) "
                                         f"{np.flatnonzero(~finite).tolist()} blew up before "
                                         f"t={record * self.record_interval}; lower dt")
            trajectory[:, record, 0] = w
        return trajectory, [[] for _ in range(batch)]


#: Grid points a NavierStokes2D batch holds by default (its ``default_batch_size`` times s²).
_POINTS_PER_BATCH = 8 * 64 * 64

#: NumPy >= 2 FFTs take ``out=`` (and are pocketfft's C++ code, as SciPy's are).
_NUMPY_FFT_OUT = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


class _VorticityStepper:
    """The time step of :class:`NavierStokes2D` on ``B`` samples at once, in fixed buffers.

    It is the scheme's expression ``(E ŵ + dt (f̂ − N(ŵ))) I`` (``E = 1 − dt ν k²/2``,
    ``I = 1 / (1 + dt ν k²/2)``, ``N`` the dealiased advection, Heun's average of two) written
    as NumPy ufuncs with ``out=``, the same operations in the same order on every sample's
    slice. Why buffers: at ``B × 64²`` the temporaries of the plain expressions are large
    enough (~1 MB) that glibc's allocator hands them back to the OS and faults them in again
    on every step, which made a batch slower per sample than a loop over samples.

    The 2-D transforms are done as SciPy's ``irfft2``/``rfft2`` do them (a complex FFT over
    axis −2 and a real one over axis −1, the whole ``1/s²`` applied once at the end of the
    inverse), with NumPy's pocketfft and ``out=``: bitwise equal to SciPy's on NumPy >= 2
    (a test checks it). NumPy < 2 falls back to SciPy's functions, allocating.
    """

    def __init__(self, family: "NavierStokes2D", batch: int) -> None:
        s = family.resolution
        spectral = (batch, s, s // 2 + 1)
        self.size = s
        self.dt = family.dt
        half_viscous = 0.5 * family.dt * family.nu * family._laplacian
        # Complex copies of the real factors: a product with a float array casts it to complex
        # on every call; casting once gives the same values and skips that work.
        self.explicit = (1.0 - half_viscous).astype(complex)
        self.implicit = (1.0 / (1.0 + half_viscous)).astype(complex)
        self.inverse_laplacian = family._inverse_laplacian.astype(complex)
        self.dealias = family._dealias.astype(complex)
        self.ikx, self.iky = family._ikx, family._iky
        self.minus_ikx = -family._ikx  # negation is exact: (−ikx)·ψ̂ as the plain expression
        self.forcing_hat = scipy.fft.rfft2(family.forcing)
        self.inverse_scale = 1.0 / (s * s)
        self.spectra = np.empty((4,) + spectral, dtype=complex)
        self.spectra_work = np.empty((4,) + spectral, dtype=complex)
        self.physical = np.empty((4, batch, s, s))
        self.stream = np.empty(spectral, dtype=complex)
        self.half_spectrum = np.empty(spectral, dtype=complex)
        self.advection = np.empty(spectral, dtype=complex)
        self.corrector = np.empty(spectral, dtype=complex)
        self.predicted = np.empty(spectral, dtype=complex)
        self.forcing_term = np.empty(spectral, dtype=complex)

    def step(self, w_hat: np.ndarray) -> None:
        """Advance ``w_hat`` (``[B, s, s // 2 + 1]``, FFT of the vorticity) by ``dt`` in place."""
        advection = self._advection(w_hat, self.advection)
        self._crank_nicolson(w_hat, advection, self.predicted)
        corrector = self._advection(self.predicted, self.corrector)
        np.add(advection, corrector, out=advection)
        np.multiply(0.5, advection, out=advection)
        self._crank_nicolson(w_hat, advection, w_hat)

    def _crank_nicolson(self, w_hat: np.ndarray, advection: np.ndarray, out: np.ndarray) -> None:
        """``out = (E ŵ + dt (f̂ − advection)) I``; ``out`` may be ``w_hat``."""
        forcing_term = np.subtract(self.forcing_hat, advection, out=self.forcing_term)
        np.multiply(self.dt, forcing_term, out=forcing_term)
        np.multiply(self.explicit, w_hat, out=out)
        np.add(out, forcing_term, out=out)
        np.multiply(out, self.implicit, out=out)

    def _advection(self, w_hat: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out`` = dealiased ``FFT(u·∇w)``; ``û = i k_y ψ̂``, ``v̂ = −i k_x ψ̂``,
        ``ψ̂ = ŵ / |k|²``."""
        stream = np.multiply(w_hat, self.inverse_laplacian, out=self.stream)
        spectra = self.spectra
        np.multiply(self.iky, stream, out=spectra[0])
        np.multiply(self.minus_ikx, stream, out=spectra[1])
        np.multiply(self.ikx, w_hat, out=spectra[2])
        np.multiply(self.iky, w_hat, out=spectra[3])
        u, v, w_x, w_y = self._inverse(spectra)
        np.multiply(u, w_x, out=u)
        np.multiply(v, w_y, out=v)
        np.add(u, v, out=u)
        self._forward(u, out)
        return np.multiply(out, self.dealias, out=out)

    def _inverse(self, spectra: np.ndarray) -> np.ndarray:
        """``scipy.fft.irfft2(spectra, axes=(-2, -1))`` into ``self.physical``."""
        s = self.size
        if not _NUMPY_FFT_OUT:
            self.physical[...] = scipy.fft.irfft2(spectra, s=(s, s), axes=(-2, -1))
            return self.physical
        np.fft.ifft(spectra, axis=-2, norm="forward", out=self.spectra_work)
        np.fft.irfft(self.spectra_work, n=s, axis=-1, norm="forward", out=self.physical)
        return np.multiply(self.physical, self.inverse_scale, out=self.physical)

    def _forward(self, field: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``scipy.fft.rfft2(field, axes=(-2, -1))`` into ``out``."""
        if not _NUMPY_FFT_OUT:
            out[...] = scipy.fft.rfft2(field, axes=(-2, -1))
            return out
        np.fft.rfft(field, axis=-1, out=self.half_spectrum)
        return np.fft.fft(self.half_spectrum, axis=-2, out=out)
