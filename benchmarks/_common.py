"""Shared plumbing of the benchmark scripts: machine description, JSON results, README tables."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
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
    """
    content = BENCHMARKS_README.read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(content):
        raise RuntimeError(f"benchmarks/README.md has no section markers for {marker!r}")
    text = re.sub(r"(\]\()benchmarks/", r"\1", text)
    BENCHMARKS_README.write_text(pattern.sub(lambda _: f"{start}\n{text}\n{end}", content),
                                 encoding="utf-8")
