"""`pdesuite train spon|spon-mg` and `pdesuite evaluate` on files of the FE family poisson-fe:
the model is built on the file's mesh, evaluated on a refined mesh, and a file without a mesh or
with another cell type is a one-line error. Tiny models, a few epochs, on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pdesuite.datasets import generate  # noqa: E402
from pdesuite.datasets.loaders import PDEDataset  # noqa: E402
from pdesuite.datasets.mesh_io import MeshInfo  # noqa: E402
from pdesuite.datasets.storage import create_dataset_file, schema_attrs  # noqa: E402
from pdesuite.discretization import Mesh, mass_matrix  # noqa: E402
from pdesuite.operators import train_cli  # noqa: E402
from pdesuite.operators.models import build_fe_model  # noqa: E402
from pdesuite.operators.training import BEST_NAME, load_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--model-arg", "width=8", "--epochs", "2", "--batch-size", "4", "--split-fractions",
        "8", "2", "2", "--no-progress", "--seed", "3"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """poisson-fe at resolution 4 (12 samples, 65 DoFs) and 8 (3 samples, 225 DoFs), a darcy
    grid file and a file on a quadrilateral mesh."""
    root = tmp_path_factory.mktemp("spon_cli")
    paths = {"coarse": root / "poisson-fe.h5", "refined": root / "poisson-fe-refined.h5",
             "grid": root / "darcy.h5", "quad": root / "quad.h5"}
    generate("poisson-fe", 12, out=paths["coarse"], resolution=4, progress=False, seed=1)
    generate("poisson-fe", 3, out=paths["refined"], resolution=8, progress=False, seed=2)
    generate("darcy", 3, out=paths["grid"], resolution=5, progress=False)
    _quad_file(paths["quad"])
    return paths


def _quad_file(path: Path, n: int = 3) -> None:
    mesh = Mesh.rectangle(3, 3, cell_type="quadrilateral")
    info = MeshInfo(mesh, 1, LagrangeSpaceDofs(mesh), boundary_channel=1)
    inputs = np.zeros((n, 2, info.ndofs), dtype=np.float32)
    outputs = np.ones((n, 1, info.ndofs), dtype=np.float32)
    inputs[:, 1, info.dirichlet_dofs] = 1.0
    attrs = schema_attrs(family="external", config={}, seed=0, n=n, kind="steady",
                         grid_convention="mesh")
    with create_dataset_file(path, n=n, fields={"inputs": (inputs.shape[1:], np.float32),
                                                "outputs": (outputs.shape[1:], np.float32)},
                             attrs=attrs, coordinates=info.dof_coordinates, mesh=info) as handle:
        handle["inputs"][...] = inputs
        handle["outputs"][...] = outputs
        handle.attrs["complete"] = True


def LagrangeSpaceDofs(mesh: Mesh) -> np.ndarray:
    """The P1 DoFs of the whole boundary (the vertices on it)."""
    return np.unique(mesh.edges[mesh.boundary_facets])


def _cli(*argv: str) -> int:
    return train_cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def spon_run(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert _cli("train", "spon", "--data", files["coarse"], "--out", out, *TINY,
                "--model-arg", "layers=1") == 0
    return out


def _relative_l2(model, path: Path) -> tuple[float, float]:
    """Mean relative L2 error in the FE norm (SciPy's mass matrix) and the largest Dirichlet
    error, of ``model`` on every sample of ``path``: a reference independent of the CLI."""
    dataset = PDEDataset(path, split="all", normalize=False)
    mesh = dataset.mesh_info
    x = torch.stack([dataset[i][0] for i in range(len(dataset))])
    y = torch.stack([dataset[i][1] for i in range(len(dataset))]).double().numpy()[:, 0]
    with torch.no_grad():
        prediction = model(x).double().numpy()[:, 0]
    mass = mass_matrix(mesh.space)
    errors = [np.sqrt(e @ mass @ e) / np.sqrt(u @ mass @ u) for e, u in zip(prediction - y, y)]
    dofs = mesh.dirichlet_dofs
    return float(np.mean(errors)), float(np.abs(prediction[:, dofs] - y[:, dofs]).max())


def test_train_writes_a_run_with_exact_boundary_values(spon_run):
    metrics = json.loads((spon_run / "test_metrics.json").read_text())
    assert metrics["model"] == "spon" and metrics["n"] == 2
    assert metrics["boundary_error"] <= 1e-12
    assert 0 < metrics["rel_l2"] < 10
    checkpoint = load_checkpoint(spon_run / BEST_NAME)  # torch.load(weights_only=True)
    config = json.loads(checkpoint["model_config"])
    assert (config["name"], config["boundary_channel"], config["cell_type"]) == (
        "spon", 1, "triangle")
    assert checkpoint["normalizers"] == {"inputs": None, "outputs": None}
    assert len(config["input_scale"]) == 2 and config["output_scale"][0] > 0


def test_evaluate_on_the_refined_mesh_matches_a_fresh_model(spon_run, files, capsys):
    report = spon_run / "eval.json"
    assert _cli("evaluate", spon_run, "--data", files["coarse"], "--data", files["refined"],
                "--json", report) == 0
    printed = capsys.readouterr().out
    assert "zero-shot" in printed and "boundary" in printed
    rows = json.loads(report.read_text())["results"]
    assert [(r["split"], r["resolution"], r["zero_shot"], r["n"]) for r in rows] == [
        ("test", [65], False, 2), ("all", [225], True, 3)]
    # the same weights on a model built afresh on the refined space give the same errors
    checkpoint = load_checkpoint(spon_run / BEST_NAME)
    refined = PDEDataset(files["refined"], split="all", normalize=False).mesh_info
    model = build_fe_model(json.loads(checkpoint["model_config"]), refined)
    model.load_state_dict(checkpoint["model_state"])
    model.eval()
    rel_l2, boundary = _relative_l2(model, files["refined"])
    assert rows[1]["rel_l2"] == pytest.approx(rel_l2, rel=1e-5)
    assert rows[1]["boundary_error"] <= 1e-12 and boundary <= 1e-12


def test_multigrid_trains_and_transfers(files, tmp_path, capsys):
    out = tmp_path / "mg"
    assert _cli("train", "spon-mg", "--data", files["coarse"], "--out", out, *TINY,
                "--model-arg", "levels=2") == 0
    config = json.loads(load_checkpoint(out / BEST_NAME)["model_config"])
    assert (config["name"], config["levels"]) == ("spon-mg", 2)
    report = tmp_path / "mg.json"
    assert _cli("evaluate", out, "--data", files["refined"], "--json", report) == 0
    (row,) = json.loads(report.read_text())["results"]
    assert row["resolution"] == [225] and row["boundary_error"] <= 1e-12
    # a level more than the file's coarse meshes (resolution 4 has one, at resolution 2)
    assert _cli("train", "spon-mg", "--data", files["coarse"], "--out", tmp_path / "mg3",
                *TINY, "--model-arg", "levels=3") == 1
    assert "levels: 3 levels need 2 coarse meshes" in capsys.readouterr().err


def test_a_file_without_a_mesh_is_a_one_line_error(spon_run, files, tmp_path, capsys):
    assert _cli("train", "spon", "--data", files["grid"], "--out", tmp_path / "r", *TINY,
                "--split-fractions", "1", "1", "1") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("pdesuite train: ") and "has no 'mesh' group" in err
    assert len(err.splitlines()) == 1
    assert _cli("evaluate", spon_run, "--data", files["grid"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("pdesuite evaluate: ") and "has no 'mesh' group" in err
    assert len(err.splitlines()) == 1


def test_a_mesh_of_another_cell_type_is_a_one_line_error(spon_run, files, capsys):
    assert _cli("evaluate", spon_run, "--data", files["quad"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert ("the model was trained on triangle cells of degree 1, the data's mesh has "
            "quadrilateral cells of degree 1") in err
