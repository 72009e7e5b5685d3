"""What a GCRO-DR(40, 20) iteration costs against a GMRES(40) iteration, and where it goes.

On the SKR benchmark's Darcy systems (family ``darcy`` at resolution 102, n = 10⁴ unknowns, no
preconditioner, rtol 1e-8, at most 10⁴ iterations), drawn as ``bench_skr.py`` draws them and
taken in the greedy sorted order of the whole pool, as ``generate`` solves them:

1. Cost per iteration: the first ``--n`` systems of that order solved by GMRES(40) from a zero
   guess and by one ``RecyclingSolver("gcrodr", restart=40, k=20)`` (library defaults
   otherwise), interleaved system by system, CPU time of every solve call. Per iteration =
   CPU seconds ÷ iterations over the pass (GCRO-DR's per-system set-up included). The same
   with the PETSc backend: PETSc's own (compiled) GMRES(40) against the suite's GCRO-DR as a
   python KSP (``PetscSolver("gcrodr")``, the same NumPy code on the Vecs' arrays).
2. Where GCRO-DR's time goes: one more GCRO-DR pass with its main functions timed (CPU time
   at every call and return, :class:`PartTimes`), split into disjoint parts (the Arnoldi
   orthogonalisation, the products with A in the cycles, the harmonic Ritz refresh, the rest
   of the cycles, the per-system set-up, and the api around the method), and GMRES's pass
   split alike.
3. SKR against GMRES(40) over the whole pool (``--skr-n``, default N = 200), through
   ``bench_skr.run_family`` (the methods interleaved, sort time added to SKR).

One BLAS thread; CPU time (``time.process_time``), both methods in one process, so that the
ratios hold on a shared machine.

    python benchmarks/bench_gcrodr_iteration.py                     # N = 200 (about 1.5 minutes)
    python benchmarks/bench_gcrodr_iteration.py --n 10 --skr-n 50   # quicker

Writes benchmarks/results/gcrodr_iteration.json and prints markdown tables.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import importlib
import time
from typing import Any, Callable, Optional

import numpy as np

from _common import load_average, markdown_table, write_results
from bench_skr import MAXITER, RECYCLE_K, RESTART, run_family
from pdesuite.datasets import get_family, sort_order
from pdesuite.solvers import RecyclingSolver, solve
from pdesuite.solvers.arnoldi import ArnoldiCycle

FAMILY, RESOLUTION, RTOL = "darcy", 102, 1e-8


def sorted_systems(pool: int, count: int, seed: int) -> list:
    """The first ``count`` systems of the greedy order of ``pool`` Darcy samples."""
    family = get_family(FAMILY, resolution=RESOLUTION)
    params = [family.sample(np.random.default_rng([seed, i])) for i in range(pool)]
    order = sort_order(np.stack([family.sort_key(p) for p in params]), method="greedy")
    return [family.assemble(params[i]) for i in order[:count]]


# ----------------------------------------------------------------------------- cost per iteration
def _pass(solvers: dict[str, Callable[[Any, np.ndarray], Any]], systems: list) -> dict[str, dict]:
    """Solve every system with every solver, interleaved; CPU time and counts per solver."""
    totals = {name: {"cpu": 0.0, "iterations": 0, "not_converged": 0, "cycles": 0,
                     "reorthogonalizations": 0, "recycle_updates": 0} for name in solvers}
    for position, system in enumerate(systems):
        names = list(solvers)
        shift = position % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.process_time()
            result = solvers[name](system.A, system.b)
            record = totals[name]
            record["cpu"] += time.process_time() - start
            record["iterations"] += int(result.iterations)
            record["not_converged"] += int(not result.converged)
            for key in ("cycles", "reorthogonalizations", "recycle_updates"):
                record[key] += int(result.info.get(key, 0) or 0)
    for record in totals.values():
        record["us_per_iteration"] = 1e6 * record["cpu"] / max(record["iterations"], 1)
    return totals


def numpy_pass(systems: list) -> dict[str, dict]:
    recycling = RecyclingSolver("gcrodr", restart=RESTART, k=RECYCLE_K, rtol=RTOL, maxiter=MAXITER)
    return _pass(
        {
            "gmres": lambda A, b: solve(
                A, b, method="gmres", restart=RESTART, rtol=RTOL, maxiter=MAXITER
            ),
            "gcrodr": recycling.solve,
        },
        systems,
    )


def petsc_pass(systems: list) -> Optional[dict[str, dict]]:
    """The same with the PETSc backend, or None without petsc4py."""
    try:
        from pdesuite.solvers import petsc_backend as pb
    except ImportError:
        return None
    gmres = pb.PetscSolver("gmres", restart=RESTART, rtol=RTOL, maxiter=MAXITER)
    gcrodr = pb.PetscSolver("gcrodr", restart=RESTART, k=RECYCLE_K, rtol=RTOL, maxiter=MAXITER)
    try:
        return _pass({"gmres": gmres.solve, "gcrodr": gcrodr.solve}, systems)
    finally:
        gmres.close()
        gcrodr.close()


# ----------------------------------------------------------------------------- where the time goes
class PartTimes:
    """CPU seconds inside chosen functions, by wrapping them for the duration of a ``with``.

    ``parts`` maps a name to ``(owner, attribute)``; a function found by name at call time
    (a module global, a method) sees the wrapper. A part named in ``inside`` counts only the
    calls made while the function of that other part runs, and the rest under
    ``"<name> elsewhere"``. A function the code does not have counts zero (older versions).
    Far lighter than a profiler: one clock read per call and return.
    """

    def __init__(self, parts: dict[str, tuple[Any, str]], inside: Optional[dict[str, str]] = None):
        self.parts, self.inside = parts, inside or {}
        self.seconds: dict[str, float] = {}
        self._active: dict[str, int] = {}
        self._saved: list[tuple[Any, str, Any]] = []

    def _wrap(self, name: str, function: Callable) -> Callable:
        outer = self.inside.get(name)

        def timed(*args, **kwargs):
            label = name if outer is None or self._active.get(outer) else f"{name} elsewhere"
            self._active[name] = self._active.get(name, 0) + 1
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.process_time() - start
                self._active[name] -= 1
        return timed

    def __enter__(self) -> "PartTimes":
        for name, (owner, attribute) in self.parts.items():
            self.seconds.setdefault(name, 0.0)
            function = getattr(owner, attribute, None)
            if function is not None:
                self._saved.append((owner, attribute, function))
                setattr(owner, attribute, self._wrap(name, function))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, attribute, function in reversed(self._saved):
            setattr(owner, attribute, function)
        self._saved.clear()


def gcrodr_breakdown(systems: list) -> dict[str, Any]:
    """Disjoint parts of a GCRO-DR pass (CPU seconds, and µs per iteration)."""
    method = importlib.import_module("pdesuite.solvers.recycling.gcrodr")
    solver = RecyclingSolver("gcrodr", restart=RESTART, k=RECYCLE_K, rtol=RTOL, maxiter=MAXITER)
    timer = PartTimes(
        {
            "method": (method, "_gcrodr"),
            "cycles": (method, "_gcrodr_cycles"),
            "extend": (ArnoldiCycle, "extend"),
            "products": (method._Run, "apply_operator"),
            "refresh": (method, "_gcrodr_harmonic_update"),
            "establish": (method, "_establish_gcrodr"),
            "projection": (method, "_initial_projection"),
        },
        inside={"products": "cycles"},
    )
    total, iterations = _timed_pass(timer, lambda: [solver.solve(s.A, s.b) for s in systems])
    t = timer.seconds
    parts = {
        "Arnoldi orthogonalisation (ArnoldiCycle.extend)": t["extend"],
        "products A v in the cycles": t["products"],
        "harmonic Ritz refresh": t["refresh"],
        "rest of the cycles (least squares, x update, residual, loop)":
            t["cycles"] - t["extend"] - t["products"] - t["refresh"],
        "re-establishing C = A U (k products, QR, slowness)": t["establish"],
        "initial projection (U and the stored solutions)": t["projection"],
        "rest of the method (first residual, storing the space)":
            t["method"] - t["cycles"] - t["establish"] - t["projection"],
        "api around the method (checks, true residual)": total - t["method"],
    }
    return _parts(parts, total, iterations)


def gmres_breakdown(systems: list) -> dict[str, Any]:
    krylov = importlib.import_module("pdesuite.solvers.krylov")
    timer = PartTimes({"cycles": (krylov, "_gmres_cycles"), "extend": (ArnoldiCycle, "extend"),
                       "products": (krylov, "_matvec")}, inside={"products": "cycles"})
    total, iterations = _timed_pass(
        timer,
        lambda: [
            solve(s.A, s.b, method="gmres", restart=RESTART, rtol=RTOL, maxiter=MAXITER)
            for s in systems
        ],
    )
    t = timer.seconds
    parts = {
        "Arnoldi orthogonalisation (ArnoldiCycle.extend)": t["extend"],
        "products A v in the cycles": t["products"],
        "rest of the cycles (least squares, x update, true residual, loop)":
            t["cycles"] - t["extend"] - t["products"],
        "api around the method (checks, true residual)": total - t["cycles"],
    }
    return _parts(parts, total, iterations)


def _timed_pass(timer: PartTimes, run: Callable[[], list]) -> tuple[float, int]:
    """``run()`` with ``timer`` on: its CPU seconds and iterations."""
    with timer:
        start = time.process_time()
        results = run()
        seconds = time.process_time() - start
    return seconds, int(sum(r.iterations for r in results))


def _parts(parts: dict[str, float], total: float, iterations: int) -> dict[str, Any]:
    return {"seconds": total, "iterations": iterations,
            "parts": {name: {"seconds": seconds, "share": seconds / total,
                             "us_per_iteration": 1e6 * seconds / max(iterations, 1)}
                      for name, seconds in parts.items()}}


# ----------------------------------------------------------------------------- report
def report(payload: dict[str, Any]) -> str:
    header = (
        f"Darcy at {RESOLUTION}² (n = 10⁴), no preconditioner, rtol {RTOL:g}, one BLAS thread, "
        f"CPU time; load average {payload['load_average_start']} at the start, "
        f"{payload['load_average_end']} at the end."
    )
    lines = [header, ""]
    rows = []
    for backend, runs in payload["per_iteration"].items():
        if runs is None:
            continue
        gmres, gcrodr = runs["gmres"], runs["gcrodr"]
        for name, run in (("GMRES(40)", gmres), ("GCRO-DR(40, 20)", gcrodr)):
            rows.append([backend, name, payload["n"], run["iterations"], f"{run['cpu']:.2f}",
                         f"{run['us_per_iteration']:.0f}", run["reorthogonalizations"],
                         run["recycle_updates"], run["not_converged"]])
        rows.append([backend, "ratio GCRO-DR / GMRES", "", "", "",
                     f"{gcrodr['us_per_iteration'] / gmres['us_per_iteration']:.2f}×", "", "", ""])
    lines.append(
        markdown_table(
            [
                "backend", "method", "systems", "iterations", "CPU s", "µs / iteration",
                "second GS passes", "refreshes", "not conv.",
            ],
            rows,
        )
    )
    lines.append("")
    for label, key in (("GCRO-DR(40, 20)", "gcrodr_parts"), ("GMRES(40)", "gmres_parts")):
        part_rows = [[name, f"{part['share'] * 100:.1f}%", f"{part['us_per_iteration']:.0f}"]
                     for name, part in payload[key]["parts"].items()]
        lines.append(
            f"Where {label}'s time goes (one more pass, the parts timed by wrappers: "
            f"{payload[key]['iterations']} iterations, {payload[key]['seconds']:.2f} CPU s):"
        )
        lines.append("")
        lines.append(markdown_table(["part", "share", "µs / iteration"], part_rows))
        lines.append("")
    skr = payload.get("skr")
    if skr is not None:
        methods = skr["methods"]
        lines.append(
            f"SKR over N = {skr['N']} (sorted, GCRO-DR(40, 20) recycling) against GMRES(40) from a "
            f"zero guess: CPU {methods['gmres']['total_cpu']:.1f} s / "
            f"{methods['skr']['total_cpu']:.1f} s "
            f"= **{skr['speedups']['skr_vs_gmres']['cpu']:.2f}×** (iterations "
            f"{skr['speedups']['skr_vs_gmres']['iterations']:.2f}×; per iteration "
            f"{skr['per_iteration_ratio']:.2f}×)."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=20, help="systems of the per-iteration passes (default 20)"
    )
    parser.add_argument("--skr-n", type=int, default=200,
                        help="pool of samples, sorted; N of the SKR measurement (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-petsc", action="store_true", help="skip the PETSc backend")
    parser.add_argument("--no-skr", action="store_true", help="skip the N-system SKR measurement")
    args = parser.parse_args()
    if not 2 <= args.n <= args.skr_n:
        parser.error("--n: need 2 <= n <= skr-n")
    payload: dict[str, Any] = {
        "n": args.n,
        "pool": args.skr_n,
        "seed": args.seed,
        "rtol": RTOL,
        "family": FAMILY,
        "resolution": RESOLUTION,
        "restart": RESTART,
        "k": RECYCLE_K,
        "load_average_start": load_average(),
    }
    systems = sorted_systems(args.skr_n, args.n, args.seed)
    payload["per_iteration"] = {"numpy": numpy_pass(systems),
                                "petsc": None if args.no_petsc else petsc_pass(systems)}
    payload["gcrodr_parts"] = gcrodr_breakdown(systems)
    payload["gmres_parts"] = gmres_breakdown(systems)
    if not args.no_skr:
        cell = run_family(
            FAMILY,
            RESOLUTION,
            args.skr_n,
            ["none"],
            [RTOL],
            "greedy",
            ("gmres", "skr"),
            solutions=4,
            seed=args.seed,
            log=lambda message: print(message, flush=True),
        )[0]
        methods = cell["methods"]
        per_iteration = {
            name: methods[name]["total_cpu"] / (methods[name]["mean_iterations"] * args.skr_n)
            for name in ("gmres", "skr")
        }
        payload["skr"] = {
            "N": args.skr_n,
            "speedups": cell["speedups"],
            "per_iteration_ratio": per_iteration["skr"] / per_iteration["gmres"],
            "methods": {
                name: {key: value for key, value in run.items() if key != "per_solve"}
                for name, run in methods.items()
            },
        }
    payload["load_average_end"] = load_average()
    path = write_results("gcrodr_iteration", payload)
    print(report(payload))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
