"""Learned preconditioners (DCDM) against the classical anchors, and the loop back into generate.

1. Training: ``generate`` writes a Darcy set at 64² (``--train-samples``, direct solves), and
   :func:`pdesuite.operators.train_preconditioner_on_file` trains the DCDM network on it
   (DCDM's unsupervised loss on Ritz right-hand sides, conditioned on log a) for at most
   ``--train-seconds``.
2. Darcy at 64², 128² and 256² (new samples, not in the training set), and out of
   distribution: the same draws with 10× the contrast max(a)/min(a) (``a → exp(s·log a)``).
   Iterations to rtol 1e-8 and wall time per solve of CG, IC(0)-PCG, PETSc GAMG-CG, and FCG and
   DCDM with the network trained at 64²; the network's set-up (its per-system trial forward) is
   counted apart.
3. DCDM's own setting: the pressure Poisson systems around solid obstacles in 3-D
   (``poisson-obstacles-3d``), the network trained on the obstacle-free box at 16³ (as the
   paper trains on one matrix) and tested on obstacle systems at 16³ and 32³.
4. The loop: a Darcy set at 256² generated with ``solver={"method": "fcg", "M": run}`` against
   ``generate``'s default on the same samples, the training time amortised over the set.

    python benchmarks/bench_dcdm.py [--quick] [--train-seconds 240] [--samples 4]

Writes benchmarks/results/dcdm.json and the table between the ``bench-dcdm`` markers of
benchmarks/README.md. CPU, one thread (torch and BLAS).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import load_average, markdown_table, update_readme_section, write_results

RTOL = 1e-8
MAXITER = 5000
#: The network's methods stop earlier: an iteration costs a forward pass, and a network that
#: has not converged by then is counted as failed all the same.
NET_MAXITER = 1000


def _solvers(A, b, M) -> dict[str, Any]:
    """Iterations (None when not converged) and seconds of each method on one system."""
    from pdesuite.solvers import solve

    runs = {
        "CG": dict(method="cg"),
        "IC(0)-PCG": dict(method="cg", M="ic"),
        "GAMG-CG (PETSc)": dict(method="cg", M="gamg", backend="petsc"),
        "FCG + net": dict(method="fcg", M=M, maxiter=NET_MAXITER),
        "DCDM + net": dict(method="dcdm", M=M, maxiter=NET_MAXITER),
    }
    out = {}
    for name, options in runs.items():
        start = time.perf_counter()
        result = solve(A, b, rtol=RTOL, **{"maxiter": MAXITER, **options})
        seconds = time.perf_counter() - start
        out[name] = {"iterations": int(result.iterations) if result.converged else None,
                     "seconds": seconds, "reason": result.reason.name}
    return out


def _more_contrast(a, factor: float = 10.0):
    """``exp(s log a)`` with ``s`` such that max/min grows by ``factor``."""
    import numpy as np

    log_a = np.log(a)
    spread = float(log_a.max() - log_a.min())
    return np.exp(log_a * (1.0 + np.log(factor) / spread))


def darcy_rows(run_dir: Path, resolutions, samples: int) -> list[dict[str, Any]]:
    import numpy as np

    from pdesuite.datasets.pde_family import get_family
    from pdesuite.operators import load_preconditioner

    rows = []
    for resolution in resolutions:
        family = get_family("darcy", resolution=resolution)
        for ood in (False, True):
            per_method: dict[str, list] = {}
            setup = []
            for i in range(samples):
                params = family.sample(np.random.default_rng([2024, resolution, i]))
                a = _more_contrast(params["coefficient"]) if ood else params["coefficient"]
                system = family.assemble({"coefficient": a})
                start = time.perf_counter()
                M = load_preconditioner(run_dir, coefficient=a)
                setup.append(time.perf_counter() - start)
                for name, value in _solvers(system.A, system.b, M).items():
                    per_method.setdefault(name, []).append(value)
            rows.append({"case": f"darcy {resolution}²" + (", 10× contrast" if ood else ""),
                         "resolution": resolution, "ood": ood,
                         "setup_seconds": float(np.mean(setup)), "methods": per_method})
            print(_summary(rows[-1]), flush=True)
    return rows


def obstacle_rows(train_seconds: float, resolutions, samples: int,
                  workdir: Path) -> list[dict[str, Any]]:
    import numpy as np

    from pdesuite.datasets.pde_family import get_family
    from pdesuite.operators import train_preconditioner
    from pdesuite.operators.preconditioning import LearnedPreconditioner

    box = get_family("poisson-obstacles-3d", resolution=16, obstacles=0)
    system = box.assemble(box.sample(np.random.default_rng(0)))
    start = time.perf_counter()
    run = train_preconditioner(system.A, box.grid.shape, system.free, rhs_per_matrix=400,
                               ritz_steps=400, epochs=1000, max_seconds=train_seconds,
                               out_dir=workdir / "pc3d", progress=False, device="cpu")
    trained = time.perf_counter() - start
    rows = []
    for resolution in resolutions:
        family = get_family("poisson-obstacles-3d", resolution=resolution)
        per_method: dict[str, list] = {}
        for i in range(samples):
            obstacle_system = family.assemble(family.sample(np.random.default_rng([7, i])))
            M = LearnedPreconditioner(run.model, family.grid.shape, obstacle_system.free)
            for name, value in _solvers(obstacle_system.A, obstacle_system.b, M).items():
                per_method.setdefault(name, []).append(value)
        rows.append({"case": f"obstacles {resolution}³ (net: box 16³)", "resolution": resolution,
                     "ood": False, "setup_seconds": 0.0, "methods": per_method,
                     "train_seconds": trained})
        print(_summary(rows[-1]), flush=True)
    return rows


def loop_row(run_dir: Path, train_seconds: float, resolution: int, samples: int,
             workdir: Path) -> dict[str, Any]:
    from pdesuite.datasets import generate

    timings = {}
    for name, solver in (("generate default", "auto"),
                         ("generate, FCG + net", {"method": "fcg", "M": str(run_dir)})):
        start = time.perf_counter()
        generate("darcy", samples, out=workdir / f"loop_{len(timings)}.h5", resolution=resolution,
                 seed=11, solver=solver, progress=False)
        timings[name] = time.perf_counter() - start
    per_sample = {name: seconds / samples for name, seconds in timings.items()}
    amortised = per_sample["generate, FCG + net"] + train_seconds / samples
    row = {"resolution": resolution, "samples": samples, "ms_per_sample": per_sample,
           "learned_with_training_ms": amortised, "train_seconds": train_seconds}
    print(row, flush=True)
    return row


def _mean_iterations(values) -> str:
    its = [v["iterations"] for v in values]
    failed = sum(i is None for i in its)
    done = [i for i in its if i is not None]
    text = f"{sum(done) / len(done):.1f}" if done else "–"
    return text + (f" ({failed} failed)" if failed else "")


def _mean_ms(values) -> str:
    return f"{1000 * sum(v['seconds'] for v in values) / len(values):.0f}"


def _summary(row) -> str:
    return row["case"] + ": " + ", ".join(f"{name} {_mean_iterations(v)} its / {_mean_ms(v)} ms"
                                          for name, v in row["methods"].items())


def table(rows, loop, args, train_seconds) -> str:
    methods = list(rows[0]["methods"])
    iterations = markdown_table(["case"] + methods,
                                [[r["case"]] + [_mean_iterations(r["methods"][m]) for m in methods]
                                 for r in rows])
    wall = markdown_table(["case"] + methods + ["net set-up per system (ms)"],
                          [[r["case"]] + [_mean_ms(r["methods"][m]) for m in methods]
                           + [f"{1000 * r['setup_seconds']:.0f}"] for r in rows])
    ms = loop["ms_per_sample"]
    loop_table = markdown_table(
        ["Darcy 256², same samples", "ms per sample"],
        [["generate default (its own choice)", f"{1000 * ms['generate default']:.0f}"],
         ["generate, FCG + net trained at 64²", f"{1000 * ms['generate, FCG + net']:.0f}"],
         ["… plus the training time over the set",
          f"{1000 * loop['learned_with_training_ms']:.0f}"]])
    return "\n\n".join([
        f"Network trained {train_seconds:.0f} s on {args.train_samples} generated Darcy systems "
        f"at 64² (CPU, one thread); {args.samples} test systems per row, rtol {RTOL:g}. Mean "
        "iterations (a failure is counted apart):",
        iterations, "Mean wall time per solve in ms (the network's per-system set-up apart):",
        wall, f"The loop ({loop['samples']} samples):", loop_table,
        f"Load average during the run: {load_average()}."])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a short training")
    parser.add_argument("--train-seconds", type=float, default=240.0)
    parser.add_argument("--train-samples", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--loop-samples", type=int, default=8)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.quick:
        args.train_seconds, args.train_samples, args.samples, args.loop_samples = 10.0, 4, 1, 2
    resolutions = (64,) if args.quick else (64, 128, 256)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        from pdesuite.datasets import generate
        from pdesuite.operators import train_preconditioner_on_file

        data = generate("darcy", args.train_samples, out=workdir / "darcy64.h5", resolution=64,
                        seed=0, solver="direct", progress=False)
        start = time.perf_counter()
        train_preconditioner_on_file(data, out_dir=workdir / "pc", epochs=1000,
                                     max_seconds=args.train_seconds, rhs_per_matrix=50,
                                     ritz_steps=200, progress=False, device="cpu")
        train_seconds = time.perf_counter() - start
        rows = darcy_rows(workdir / "pc", resolutions, args.samples)
        rows += obstacle_rows(args.train_seconds / 2, (16,) if args.quick else (16, 32),
                              args.samples, workdir)
        loop = loop_row(workdir / "pc", train_seconds, 64 if args.quick else 256,
                        args.loop_samples, workdir)
    text = table(rows, loop, args, train_seconds)
    print(text)
    write_results("dcdm" + ("_quick" if args.quick else ""),
                  {"rows": rows, "loop": loop, "train_seconds": train_seconds,
                   "arguments": vars(args)})
    if not args.quick:
        update_readme_section("bench-dcdm", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
