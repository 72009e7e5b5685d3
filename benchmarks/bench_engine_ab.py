"""Time per iteration of the NumPy backend: this working tree against a git revision.

    python benchmarks/bench_engine_ab.py [--base REV] [--rounds 3] [--readme]

The revision is checked out into a temporary git worktree. Each round runs the same solves
once with the base code and once with the current code, each in a fresh process and in
alternating order, so that both sides meet the same machine load; the table reports the median
over the rounds of the CPU time per iteration, the ratio current ÷ base, and both iteration
counts. Every solve uses only
what both versions understand: ``solve(A, b, method=..., M=<name>, rtol=..., maxiter=...)``
with each method's default options, and a recycling sequence through ``RecyclingSolver``'s
``k``. A control row times SciPy's sparse product alone: it moves with the process, not with
our code, and so shows how much of a ratio the environment makes. Writes
benchmarks/results/engine_ab.json and, with ``--readme``, the README table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, load_average, markdown_table, update_readme_section, write_results

#: (label, method, preconditioner name or None, problem)
CASES = (
    ("control: A @ b, no pdesuite code", None, None, "control"),
    ("cg", "cg", None, "poisson"),
    ("cg + ic", "cg", "ic", "diffusion"),
    ("fcg", "fcg", None, "poisson"),
    ("minres", "minres", None, "poisson"),
    ("gmres(40)", "gmres", None, "advection"),
    ("gmres(40) + ilu", "gmres", "ilu", "advection"),
    ("fgmres(40)", "fgmres", None, "advection"),
    ("bicgstab", "bicgstab", None, "advection"),
    ("gcrodr(40, 20)", "gcrodr", None, "advection"),
    ("rcg sequence", "rcg", None, "sequence"),
    ("gcrodr sequence", "gcrodr", None, "sequence"),
)
RTOL = 1e-10
MAXITER = 400
SIZE = 128

# The child: put a `pdesuite` package made of ROOT's layer folders first on the path (the
# editable install of this tree would otherwise win), then time every case.
CHILD = r'''
import json, sys, tempfile, time
from pathlib import Path
root, size = sys.argv[1], int(sys.argv[2])
rtol, maxiter, cases = float(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
shim = Path(tempfile.mkdtemp()) / "pdesuite"
shim.mkdir()
for item in Path(root, "pdesuite").iterdir():
    (shim / item.name).symlink_to(item)
for layer in ("solvers", "discretization", "datasets", "operators", "dynamics"):
    if Path(root, layer).is_dir():
        (shim / layer).symlink_to(Path(root, layer))
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path.insert(0, str(shim.parent))
import numpy as np, scipy.sparse as sp
import pdesuite.solvers as solvers
assert solvers.__file__.startswith(str(shim)), solvers.__file__

def laplacian(m):
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m))
    return sp.csr_array(sp.kron(T, sp.eye(m)) + sp.kron(sp.eye(m), T))

def diffusion(m, seed):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, m)
    field = sum(rng.normal() * np.outer(np.sin((i + 1) * np.pi * x), np.sin((j + 1) * np.pi * x))
                / (1 + i + j) ** 2 for i in range(4) for j in range(4))
    a = np.exp(field).ravel()
    L = laplacian(m)
    return sp.csr_array(sp.diags(np.sqrt(a)) @ L @ sp.diags(np.sqrt(a)))

def advection(m):
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m))
    D = sp.diags([-1.0, 1.0], [-1, 0], shape=(m, m)) * (0.5 * m / 10)
    I = sp.eye(m)
    return sp.csr_array(sp.kron(T + D, I) + sp.kron(I, T + D))

problems = {"poisson": laplacian(size), "diffusion": diffusion(size, 0),
            "advection": advection(size)}
b = np.random.default_rng(1).standard_normal(size * size)
sequence = [diffusion(size // 2, seed) for seed in range(6)]
out = {}
for label, method, M, problem in cases:
    start = time.process_time()
    if problem == "control":
        iterations = 2000
        for _ in range(iterations):
            problems["poisson"] @ b
    elif problem == "sequence":
        solver = solvers.RecyclingSolver(method, k=20, rtol=1e-8, M=M)
        ones = np.ones(sequence[0].shape[0])
        iterations = sum(solver.solve(A, ones).iterations for A in sequence)
    else:
        iterations = solvers.solve(problems[problem], b, method=method, M=M, rtol=rtol,
                                   maxiter=maxiter).iterations
    out[label] = [(time.process_time() - start) / max(iterations, 1), iterations]
print(json.dumps(out))
'''


def run_child(root: Path, cases) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(SIZE), str(RTOL), str(MAXITER),
         json.dumps(cases)],
        capture_output=True, text=True, check=False, env={"OPENBLAS_NUM_THREADS": "1",
                                                            "OMP_NUM_THREADS": "1",
                                                            "PATH": "/usr/bin:/bin"})
    if completed.returncode != 0:
        raise SystemExit(f"child for {root} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="HEAD~1", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--readme", action="store_true", help="write the README table")
    args = parser.parse_args()

    base_rev = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    before = load_average()
    with tempfile.TemporaryDirectory() as scratch:
        worktree = Path(scratch) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(worktree), base_rev],
                       cwd=ROOT, check=True)
        try:
            runs = {"base": [], "current": []}
            for round_ in range(args.rounds):
                # alternate which side goes first, so that neither always meets a warm machine
                order = (("base", worktree), ("current", ROOT))
                for side, root in (order if round_ % 2 == 0 else order[::-1]):
                    runs[side].append(run_child(root, CASES))
                    print(f"round {round_ + 1}/{args.rounds} {side} done", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT,
                           check=False)

    rows, records = [], []
    for label, *_ in CASES:
        base = statistics.median(run[label][0] for run in runs["base"]) * 1e6
        current = statistics.median(run[label][0] for run in runs["current"]) * 1e6
        iterations = (runs["base"][0][label][1], runs["current"][0][label][1])
        records.append({"case": label, "base_us_per_iteration": base,
                        "current_us_per_iteration": current, "ratio": current / base,
                        "base_iterations": iterations[0], "current_iterations": iterations[1]})
        rows.append([label, iterations[0], iterations[1], f"{base:.1f}", f"{current:.1f}",
                     f"{current / base:.2f}"])
    after = load_average()
    table = markdown_table(["case", "iterations (base)", "iterations (current)",
                            "µs/it base", "µs/it current", "current ÷ base"], rows)
    caption = (
        f"NumPy backend, this tree against `{base_rev}`, {args.rounds} rounds in alternating order "
        f"in fresh processes, median CPU time per iteration; one BLAS thread; problems at {SIZE}² "
        f"(Poisson, variable diffusion, advection–diffusion; rtol {RTOL:g}, at most {MAXITER} "
        f"iterations) and a sequence of 6 diffusion systems at {SIZE // 2}² for the recycling "
        f"solvers. Load average {before} before, {after} after."
    )
    print(caption)
    print(table)
    path = write_results("engine_ab", {"base": base_rev, "rounds": args.rounds, "rtol": RTOL,
                                       "maxiter": MAXITER, "size": SIZE, "records": records,
                                       "load_average": [before, after]})
    print(f"wrote {path}")
    if args.readme:
        update_readme_section("bench-engine-ab", caption + "\n\n" + table)


if __name__ == "__main__":
    main()
