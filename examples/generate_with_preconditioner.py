"""Generate a dataset with a trained preconditioner: the loop from data back into the solver.

The network that examples/train_preconditioner.py trained on 32² data (out/pc_darcy32/)
preconditions the flexible CG of every sample of a new Darcy set at 64², built per sample from
its coefficient: ``generate(..., solver={"method": "fcg", "M": "out/pc_darcy32"})``, the same
as ``pdesuite generate darcy --resolution 64 --method fcg --pc out/pc_darcy32``. The file records
the run directory and its checkpoint's SHA-256. Compared with IC(0)-PCG on the same samples.
"""

from __future__ import annotations

import time
from pathlib import Path

from pdesuite.datasets import generate, open_dataset

RUN = Path("out/pc_darcy32")


def main() -> None:
    if not (RUN / "checkpoint.pt").is_file():
        raise SystemExit(f"{RUN}: no trained run; run examples/train_preconditioner.py first")
    for name, solver in (("FCG + network", {"method": "fcg", "M": str(RUN)}),
                         ("IC(0)-PCG", {"method": "cg", "M": "ic"})):
        out = Path("out") / f"darcy64_{solver['method']}.h5"
        started = time.perf_counter()
        generate("darcy", 16, out=out, resolution=64, seed=1, solver=solver, overwrite=True,
                 progress=False)
        seconds = time.perf_counter() - started
        with open_dataset(out) as f:
            iterations = f["solver/iterations"][:]
            converged = bool(f["solver/converged"][:].all())
        print(f"{name:>14}: 16 samples at 64² in {seconds:.1f} s, mean iterations "
              f"{iterations.mean():.1f}, all converged: {converged} -> {out}")


if __name__ == "__main__":
    main()
