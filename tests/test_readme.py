"""The README's Python blocks run as written, and benchmarks/README.md has every table marker.

Each ```python block of README.md runs in a fresh namespace, in its own temporary working
directory (a block writes its files there), with NumPy's, Python's and torch's global seeds
set. Bash blocks are not run. A block that needs torch or petsc4py is skipped where that package
is missing.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BENCHMARKS_README = ROOT / "benchmarks" / "README.md"

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number of the opening fence, code)`` of every ```python block of ``text``."""
    return [(text.count("\n", 0, match.start()) + 1, match.group(1))
            for match in _FENCE.finditer(text)]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4, "README.md: expected its user stories as ```python blocks"


def _needs(code: str) -> list[str]:
    needs = []
    if re.search(r"\btorch\b|PDEDataset|pdesuite\.operators", code):
        needs.append("torch")
    if re.search(r"petsc", code):
        needs.append("petsc4py")
    return needs


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_block_runs(line, code, tmp_path, monkeypatch):
    for module in _needs(code):
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.manual_seed(0)
    namespace = {"__name__": "__readme__"}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)  # exec: the point of the test


def _benchmark_markers() -> set[str]:
    """The section markers the benchmark scripts write through ``update_readme_section``."""
    markers = set()
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        text = script.read_text(encoding="utf-8")
        markers.update(re.findall(r'update_readme_section\(\s*"([\w-]+)"', text))
        if re.search(r"update_readme_section\(\s*README_MARKER\b", text):
            markers.update(re.findall(r'^README_MARKER\s*=\s*"([\w-]+)"', text, re.MULTILINE))
    return markers


def test_benchmark_markers_live_in_benchmarks_readme():
    markers = _benchmark_markers()
    assert len(markers) >= 10, markers
    bench = BENCHMARKS_README.read_text(encoding="utf-8")
    guide = README.read_text(encoding="utf-8")
    for marker in sorted(markers):
        for edge in ("start", "end"):
            tag = f"<!-- {marker}:{edge} -->"
            assert bench.count(tag) == 1, f"benchmarks/README.md: expected one {tag}"
            assert tag not in guide, f"README.md: {tag} belongs in benchmarks/README.md"
