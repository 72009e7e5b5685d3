"""A user-defined PDE family: subclass PDEFamily, list its options in `defaults`, register it,
and it works wherever a built-in family does. Run: python examples/custom_family.py
"""

import numpy as np

from pdesuite.datasets import PDEFamily, gaussian_random_field, get_family, register_family
from pdesuite.discretization import Grid, fd
from pdesuite.solvers import solve


@register_family
class ReactionDiffusion(PDEFamily):
    """−Δu + c u = f, c = c0 exp(GRF) > 0 (lognormal reaction rate), f = 1; s x s FD nodes."""

    name = "reaction-diffusion"
    spd = True
    defaults = {"c0": 10.0, "alpha": 2.5, "tau": 7.0}
    input_names, output_names = ("reaction",), ("u",)

    def setup(self):
        self.grid = Grid((self.resolution, self.resolution))

    def sample(self, rng):
        g = gaussian_random_field(self.grid.shape, self.options["alpha"], self.options["tau"], rng)
        return {"reaction": self.options["c0"] * np.exp(g)}

    def coordinates(self):
        return self.grid.mesh()

    def assemble(self, params):
        return fd.diffusion(self.grid, 1.0, source=1.0, reaction=params["reaction"])

    def inputs(self, params):
        return params["reaction"][None].astype(np.float32)

    def outputs(self, params, u_full):
        return self.grid.to_field(u_full).astype(np.float32)


family = get_family("reaction-diffusion", resolution=64, c0=20.0)
params = family.sample(np.random.default_rng([0, 0]))  # seed 0, sample 0
system = family.assemble(params)
result = solve(system.A, system.b, method="cg", M="ic", rtol=1e-8)
u = family.outputs(params, system.expand(result.x))
residual = np.linalg.norm(system.b - system.A @ result.x) / np.linalg.norm(system.b)
print(
    f"{family.name}: n={system.n_free}, {result.reason.name} after {result.iterations} iterations, "
    f"relative residual {residual:.2e}, max u = {u.max():.4f}"
)
