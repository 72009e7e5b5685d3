"""The layer rules of DESIGN.md, checked on the imports of every module (top level and lazy).

Arrows point at what a layer may import:

    datasets  -> discretization, solvers
    operators -> discretization, solvers, datasets (the loaders only)
    dynamics  -> operators, datasets (the loaders only), solvers, discretization
    solvers, discretization -> nothing of ours

torch is imported only by operators, dynamics, the solvers' torch backend, the loaders and the
reader of torch files, so that the classical side never pays for importing torch.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("discretization", "solvers", "datasets", "operators", "dynamics")
#: layer -> the layers it may import (``pdesuite/``, the CLI and conveniences, may import all).
ALLOWED = {
    "discretization": set(),
    "solvers": set(),
    "datasets": {"discretization", "solvers"},
    "operators": {"discretization", "solvers", "datasets"},
    "dynamics": {"operators", "datasets", "solvers", "discretization"},
}
#: Where a layer may enter ``datasets``: the loaders only.
DATASETS_ENTRY = {"operators": ("pdesuite.datasets.loaders",),
                  "dynamics": ("pdesuite.datasets.loaders",)}
#: The files and folders (relative to the root) that may import torch.
TORCH_ALLOWED = ("operators/", "dynamics/", "solvers/torch_backend/", "datasets/loaders.py",
                 "datasets/readers.py")


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path``, nested ones included; relative imports
    resolved against the file's package (``solvers/recycling/x.py`` is in
    ``pdesuite.solvers.recycling``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    folders = list(path.relative_to(root).parts[:-1])
    package = ["pdesuite", *(folders[1:] if folders[0] == "pdesuite" else folders)]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from pdesuite import datasets` names a layer through the alias.
            if module == "pdesuite":
                found += [(node.lineno, f"pdesuite.{alias.name}") for alias in node.names]
    return found


def layer_violations(root: Path) -> list[str]:
    """Every import under ``root`` that breaks a layer rule or the torch rule, as
    ``"path:line: message"``."""
    problems = []
    for layer in (*LAYERS, "pdesuite"):
        folder = root / layer
        for path in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
            relative = path.relative_to(root).as_posix()
            for line, module in _imports(path, root):
                where = f"{relative}:{line}"
                if module.split(".")[0] == "torch" and not relative.startswith(TORCH_ALLOWED):
                    problems.append(f"{where}: imports torch, allowed only in {TORCH_ALLOWED}")
                parts = module.split(".")
                if layer == "pdesuite" or parts[0] != "pdesuite" or len(parts) < 2:
                    continue
                target = parts[1]
                if target not in LAYERS or target == layer:
                    continue
                if target not in ALLOWED[layer]:
                    problems.append(f"{where}: the {layer} layer imports {module}")
                elif target == "datasets" and layer in DATASETS_ENTRY and \
                        not module.startswith(DATASETS_ENTRY[layer]):
                    problems.append(
                        f"{where}: {layer} may use datasets' loaders only, imports {module}"
                    )
    return problems


def test_every_module_keeps_the_layer_and_torch_rules():
    assert layer_violations(ROOT) == []


@pytest.mark.parametrize(
    "layer, source, expected",
    [
        (
            "solvers",
            "from pdesuite.datasets import generate\n",
            "the solvers layer imports pdesuite.datasets",
        ),
        ("discretization", "def f():\n    import torch\n", "imports torch"),
        (
            "datasets",
            "from pdesuite.operators import FNO\n",
            "the datasets layer imports pdesuite.operators",
        ),
        ("operators", "from pdesuite.datasets.generation import generate\n", "loaders only"),
        (
            "solvers",
            "from ..datasets import family\n",
            "the solvers layer imports pdesuite.datasets",
        ),
    ],
)
def test_a_deliberate_violation_is_reported(tmp_path, layer, source, expected):
    (tmp_path / layer).mkdir()
    (tmp_path / layer / "bad.py").write_text(source)
    problems = layer_violations(tmp_path)
    assert (
        len(problems) == 1
        and expected in problems[0]
        and problems[0].startswith(f"{layer}/bad.py:")
    )
