"""Run every benchmark script in its quick mode, as a check that each still runs.

    python benchmarks/run_all.py [--only NAME ...] [--timeout 600]

Each ``bench_*.py`` that has a ``--quick`` mode runs in its own process with
``PDESUITE_BENCH_RESULTS=benchmarks/results/quick`` (git-ignored), so its numbers go there and
the published results and benchmarks/README.md stay as they are. Scripts without a quick mode
are listed with the reason. Ends with a table of the outcomes and exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRATCH = HERE / "results" / "quick"
#: Scripts run by hand only, and why.
BY_HAND = {
    "bench_engine_ab": "compares the engine against another git revision (--base REV)",
}


def has_quick_mode(script: Path) -> bool:
    return '"--quick"' in script.read_text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help="run only these scripts (e.g. bench_solvers)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per script")
    args = parser.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "PDESUITE_BENCH_RESULTS": str(SCRATCH)}
    outcomes = []
    for script in sorted(HERE.glob("bench_*.py")):
        name = script.stem
        if args.only and name not in args.only:
            continue
        if name in BY_HAND or not has_quick_mode(script):
            outcomes.append((name, "skipped", BY_HAND.get(name, "no --quick mode")))
            continue
        print(f"{name} --quick", flush=True)
        start = time.perf_counter()
        try:
            run = subprocess.run([sys.executable, str(script), "--quick"], cwd=HERE,
                                 env=environment, capture_output=True, text=True,
                                 timeout=args.timeout)
            status = "ok" if run.returncode == 0 else f"failed ({run.returncode})"
            detail = "" if run.returncode == 0 else (run.stderr.strip().splitlines() or [""])[-1]
        except subprocess.TimeoutExpired:
            status, detail = "timed out", f"after {args.timeout:.0f} s"
        outcomes.append((name, status, detail or f"{time.perf_counter() - start:.0f} s"))
    print("\n| script | outcome | detail |\n|---|---|---|")
    for name, status, detail in outcomes:
        print(f"| {name} | {status} | {detail} |")
    print(f"\nresults of this run: {SCRATCH}")
    return int(any(status not in ("ok", "skipped") for _, status, _ in outcomes))


if __name__ == "__main__":
    sys.exit(main())
