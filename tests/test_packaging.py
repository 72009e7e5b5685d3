"""What is tested here is what gets installed: every layer folder is a package of the wheel."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYER_FOLDERS = ("pdesuite", "discretization", "solvers", "datasets", "operators", "dynamics")


def _package_folders() -> dict[str, Path]:
    """Installed package name -> source folder, for every folder with an ``__init__.py``."""
    found = {}
    for layer in LAYER_FOLDERS:
        for init in (ROOT / layer).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / layer)
            base = "pdesuite" if layer == "pdesuite" else f"pdesuite.{layer}"
            name = ".".join([base, *rel.parts]) if rel.parts else base
            found[name] = init.parent
    return found


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_and_mapped():
    setuptools_cfg = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools_cfg["packages"])
    mapping = setuptools_cfg["package-dir"]
    folders = _package_folders()
    missing = sorted(set(folders) - listed)
    assert not missing, (
        f"package folders missing from pyproject [tool.setuptools] packages: {missing}"
    )
    for layer in LAYER_FOLDERS:
        name = "pdesuite" if layer == "pdesuite" else f"pdesuite.{layer}"
        assert mapping.get(name) == layer, f"package-dir must map {name!r} to folder {layer!r}"


def test_no_generic_top_level_names_installed():
    # The layers install under pdesuite.*: a top-level `datasets` would clash with Hugging Face.
    assert all(
        p == "pdesuite" or p.startswith("pdesuite.")
        for p in _pyproject()["tool"]["setuptools"]["packages"]
    )


@pytest.mark.slow
def test_built_wheel_contains_every_module(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next(tmp_path.glob("pdesuite-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for package, folder in _package_folders().items():
        for module in folder.glob("*.py"):
            arcname = "/".join(package.split(".")) + "/" + module.name
            assert arcname in names, f"{arcname} is missing from the wheel"
