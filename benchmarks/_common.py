"""Shared plumbing of the benchmark scripts: thread setup, shared problems, timing, results.

Import this module before NumPy: it pins BLAS and OpenMP to one thread (unless the caller set
``OPENBLAS_NUM_THREADS`` etc. already), which the libraries read when they load. One thread,
because the scripts time single-core kernels on a shared machine where extra threads only spin.

``PDESUITE_BENCH_RESULTS`` (a folder) redirects every result file there and turns the updates of
benchmarks/README.md off: ``benchmarks/run_all.py`` uses it so that a quick run never overwrites
the published numbers.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json
import platform
import re
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("PDESUITE_BENCH_RESULTS") or ROOT / "benchmarks" / "results")
#: True when the results go elsewhere than the published folder: the README is left alone.
SCRATCH_RUN = bool(os.environ.get("PDESUITE_BENCH_RESULTS"))
#: The file whose marked sections the scripts rewrite (:func:`update_readme_section`).
BENCHMARKS_README = ROOT / "benchmarks" / "README.md"


def load_average() -> Optional[list[float]]:
    """``os.getloadavg()`` (1, 5, 15 minutes), rounded, or None where the platform has none.

    Recorded beside timings: the machines these run on are shared.
    """
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=float) + "\n")
    return path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def update_readme_section(marker: str, text: str) -> None:
    """Replace the text between ``<!-- {marker}:start -->`` and ``<!-- {marker}:end -->`` in
    benchmarks/README.md, the file that holds every table (the top-level README quotes a few).

    Links in ``text`` are written relative to the repository root, as the scripts name their
    files (``![plot](benchmarks/results/x.png)``); they are rewritten relative to
    benchmarks/README.md (``results/x.png``). Raises RuntimeError when the markers are missing.
    Does nothing in a scratch run (``PDESUITE_BENCH_RESULTS`` set).
    """
    if SCRATCH_RUN:
        return
    content = BENCHMARKS_README.read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(content):
        raise RuntimeError(f"benchmarks/README.md has no section markers for {marker!r}")
    text = re.sub(r"(\]\()benchmarks/", r"\1", text)
    BENCHMARKS_README.write_text(pattern.sub(lambda _: f"{start}\n{text}\n{end}", content),
                                 encoding="utf-8")


def best_of(
    function: Callable[[], Any], repeats: int, *, sync: Optional[Callable[[], Any]] = None
) -> float:
    """The least wall time in seconds of ``repeats`` calls of ``function()``; ``sync()`` (a
    device synchronisation) runs before and after each call when given."""
    best = float("inf")
    for _ in range(repeats):
        if sync is not None:
            sync()
        start = time.perf_counter()
        function()
        if sync is not None:
            sync()
        best = min(best, time.perf_counter() - start)
    return best


def poisson_2d(m: int):
    """The unscaled 5-point Dirichlet Laplacian on an ``m x m`` interior grid, natural order:
    ``csr_array [m², m²]`` with 4 on the diagonal. The shared model problem of the scripts."""
    import scipy.sparse as sp

    T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(m, m))
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(T, eye) + sp.kron(eye, T))
