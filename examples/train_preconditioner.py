"""Train a learned preconditioner on a dataset the suite generated.

1. ``generate`` writes 64 Darcy problems at 32² (−∇·(a∇u) = 1, a = exp(GRF), u = 0 on the
   boundary) into out/darcy32.h5, with the direct solver.
2. ``train_preconditioner_on_file`` re-assembles their matrices from the stored parameters and
   trains the DCDM network, conditioned on log a, on DCDM's unsupervised loss (Ritz right-hand
   sides of each matrix) for at most TRAIN_SECONDS; ``--supervised`` trains on residual → error
   pairs from the stored solutions instead. The run goes to out/pc_darcy32/.

Next: examples/swap_preconditioner.py (solves with it) and
examples/generate_with_preconditioner.py (a dataset generated with it).

Run: ``python examples/train_preconditioner.py [--supervised]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pdesuite.datasets import generate
from pdesuite.operators import train_preconditioner_on_file

OUT = Path("out")
RUN = OUT / "pc_darcy32"
TRAIN_SECONDS = 60.0


def main(supervised: bool = False) -> Path:
    data = generate("darcy", 64, out=OUT / "darcy32.h5", resolution=32, seed=0,
                    solver="direct", progress=False)
    print(f"data: {data} (64 Darcy problems at 32²)")
    started = time.perf_counter()
    run = train_preconditioner_on_file(data, supervised=supervised, out_dir=RUN, epochs=1000,
                                       max_seconds=TRAIN_SECONDS, rhs_per_matrix=50,
                                       ritz_steps=200, progress=False)
    kind = "supervised (residual -> error)" if supervised else "DCDM's unsupervised loss"
    print(f"trained on {kind}: loss {run.history[0]['loss']:.3g} -> "
          f"{run.history[-1]['loss']:.3g} in {len(run.history)} epochs, "
          f"{time.perf_counter() - started:.0f} s; wrote {RUN}/")
    return RUN


if __name__ == "__main__":
    main(supervised="--supervised" in sys.argv[1:])
