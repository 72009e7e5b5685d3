"""SPON and SPON-multigrid against FNO and MgNO on the FE families (L-shape, plate with a hole).

Data. ``poisson-fe`` (−Δu = f on the L-shape, u = g on its boundary) and ``thermal-fe``
(−∇·(κ∇T) = 0 in the plate with a hole, fixed temperatures left, right and on the hole, fluxes
top and bottom), P1, at ``--resolution`` r (default 8: 225 and 160 DoFs), ``n_train + n_test``
samples split by counts, and a test file at 2r (the next refinement of the family: 833 and 576
DoFs) of ``n_test`` other samples. Files go to ``out/bench_spon/``.

Models, trained on the same samples with the same epochs, batch 10, Adam (lr 3e-3, weight decay
1e-4), StepLR halving every ``epochs / 3`` epochs, seed 0:

* SPON (width 32, 4 message-passing layers) and SPON-multigrid (width 32, 2 levels: the file's
  coarse mesh at r/2, one smoothing layer each way, 2 on the coarse level: the same 4 layers and
  the same parameter count) on the FE coefficients, built from the file's mesh, the boundary data
  from input channel 1, loss the relative L2 error in the FE norm (mass matrix), no normalisers;
* FNO (modes 8, width 32) and MgNO (defaults) on a (2r+1)² node grid over the domain's bounding
  box (spacing h on the L-shape, whose P1 vertices are grid nodes, h/2 on the plate): each
  input FE function interpolated to the grid (0 outside the domain), plus the domain as a mask
  channel; the target u likewise; the Trainer's recipe (relative L2 loss, per-channel
  normalisers).

Reported on the test samples: the relative L2 error in the FE norm ``‖e‖_M / ‖u‖_M`` (a grid
model's prediction is brought back to the DoFs by bilinear interpolation of its grid), the
largest error at the Dirichlet DoFs, parameters, median seconds per training epoch; and mesh
transfer: the same weights on the refined file, zero-shot (SPON rebinds to the refined space, the
multigrid variant to the refined hierarchy; the grid models run on the (4r+1)² grid).

    python benchmarks/bench_spon.py [--quick] [--epochs 40] [--resolution 8] [--n-train 160]
        [--n-test 40] [--families poisson-fe thermal-fe] [--readme]

Writes benchmarks/results/spon.json (``spon_quick.json`` with ``--quick``) and prints a Markdown
table; ``--readme`` writes it between the ``bench-spon`` markers of benchmarks/README.md.
"""

from __future__ import annotations

import _common  # noqa: F401  (pins BLAS threads before NumPy loads)

import argparse
import json
import statistics
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from _common import ROOT, load_average, markdown_table, update_readme_section, write_results
from scipy.interpolate import RegularGridInterpolator

from pdesuite.datasets import generate
from pdesuite.datasets.loaders import PDEDataset
from pdesuite.discretization import mass_matrix
from pdesuite.discretization.fe_evaluation import evaluation_matrix
from pdesuite.operators import build_model
from pdesuite.operators.models import build_fe_model, fe_data_arguments, rebind_fe_model
from pdesuite.operators.spon import FEL2Loss
from pdesuite.operators.training import TrainConfig, Trainer

FAMILIES = ("poisson-fe", "thermal-fe")
MODELS = ("spon", "spon-mg", "fno", "mgno")
LABELS = {"spon": "SPON", "spon-mg": "SPON-multigrid", "fno": "FNO", "mgno": "MgNO"}
SETTINGS = {"spon": {"width": 32, "layers": 4},
            "spon-mg": {"width": 32, "levels": 2, "smoothing_layers": 1, "coarse_layers": 2},
            "fno": {"modes": 8, "width": 32}, "mgno": {}}


class GridData(torch.utils.data.Dataset):
    """FE samples interpolated to a ``points × points`` node grid of the mesh's bounding box:
    ``x`` = the input channels and the domain mask ``[C_in + 1, n, n]``, ``y`` = u ``[1, n, n]``
    (0 outside the domain)."""

    def __init__(self, dataset, points: int) -> None:
        mesh = dataset.mesh_info
        low, high = mesh.mesh.points.min(axis=0), mesh.mesh.points.max(axis=0)
        self.axes = [np.linspace(low[k], high[k], points) for k in range(2)]
        grid = np.stack(np.meshgrid(*self.axes, indexing="ij"), axis=-1).reshape(-1, 2)
        matrix, inside = evaluation_matrix(mesh.space, grid)
        mask = inside.reshape(points, points).astype(np.float32)
        pairs = [dataset[i] for i in range(len(dataset))]
        x = np.stack([p[0].numpy() for p in pairs]).astype(np.float64)  # [n, C, ndofs]
        y = np.stack([p[1].numpy() for p in pairs]).astype(np.float64)
        def on_grid(values: np.ndarray) -> np.ndarray:  # [n, C, ndofs] -> [n, C, p, p]
            flat = values.reshape(-1, values.shape[-1])
            return np.asarray(matrix @ flat.T).T.reshape(*values.shape[:2], points, points)

        self.x = torch.as_tensor(np.concatenate(
            [on_grid(x), np.broadcast_to(mask, (len(pairs), 1, points, points))], axis=1),
            dtype=torch.float32)
        self.y = torch.as_tensor(on_grid(y), dtype=torch.float32)

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, item):
        return self.x[item], self.y[item]

    def to_dofs(self, values: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Grid values ``[B, n, n]`` bilinearly interpolated at ``points`` ``[m, 2]``."""
        return np.stack([RegularGridInterpolator(self.axes, v)(points) for v in values])


def fe_errors(prediction: np.ndarray, truth: np.ndarray, mesh) -> tuple[float, float]:
    """Mean relative L2 error in the FE norm over the samples ``[B, ndofs]``, and the largest
    error at the Dirichlet DoFs."""
    mass = mass_matrix(mesh.space)
    error = prediction - truth
    relative = [np.sqrt(e @ mass @ e) / np.sqrt(u @ mass @ u) for e, u in zip(error, truth)]
    return float(np.mean(relative)), float(np.abs(error[:, mesh.dirichlet_dofs]).max())


def files(family: str, resolution: int, n_train: int, n_test: int, folder: Path):
    path = generate(family, n_train + n_test, out=folder / f"{family}_{resolution}.h5",
                    resolution=resolution, seed=0, progress=False)
    refined = generate(family, n_test, out=folder / f"{family}_{2 * resolution}.h5",
                       resolution=2 * resolution, seed=1, progress=False)
    split = (n_train, 0, n_test)
    return (PDEDataset(path, split="train", split_fractions=split, normalize=False),
            PDEDataset(path, split="test", split_fractions=split, normalize=False),
            PDEDataset(refined, split="all", normalize=False))


def recipe(epochs: int, **changes) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=10, lr=3e-3, weight_decay=1e-4,
                       step_size=max(1, epochs // 3), gamma=0.5, seed=0, device="cpu",
                       progress=False, verbose=False, **changes)


def run_model(name: str, train, test, refined, epochs: int, resolution: int) -> dict:
    torch.manual_seed(0)
    mesh = train.mesh_info
    if name.startswith("spon"):
        model = build_fe_model(name, mesh, in_channels=train[0][0].shape[0],
                               **fe_data_arguments(train), **SETTINGS[name])
        config = recipe(epochs, loss=FEL2Loss(mesh.space), normalize_inputs=False,
                        normalize_outputs=False)
        trainer = Trainer(model, train, None, config).fit()

        def predict(dataset):
            rebind_fe_model(model, dataset.mesh_info)
            x = torch.stack([dataset[i][0] for i in range(len(dataset))])
            return trainer.predict(x)[:, 0].double().numpy()
    else:
        grid_train = GridData(train, 2 * resolution + 1)
        model = build_model(name, in_channels=grid_train.x.shape[1], out_channels=1, ndim=2,
                            **SETTINGS[name])
        trainer = Trainer(model, grid_train, None, recipe(epochs)).fit()

        def predict(dataset):
            grid = GridData(dataset, 2 * dataset_resolution(dataset) + 1)
            values = trainer.predict(grid.x)[:, 0].double().numpy()
            return grid.to_dofs(values, dataset.mesh_info.dof_coordinates)

    result = {"model": LABELS[name], "settings": SETTINGS[name],
              "parameters": sum(p.numel() for p in model.parameters()),
              "epochs": epochs,
              "s_per_epoch": statistics.median(h["epoch_time_s"] for h in trainer.history)}
    for key, dataset in (("test", test), ("refined", refined)):
        truth = np.stack([dataset[i][1].numpy()[0] for i in range(len(dataset))]).astype(float)
        rel, boundary = fe_errors(predict(dataset), truth, dataset.mesh_info)
        result[key] = {"rel_l2_fe": rel, "boundary_error": boundary,
                       "ndofs": dataset.mesh_info.ndofs}
    result["transfer_ratio"] = result["refined"]["rel_l2_fe"] / result["test"]["rel_l2_fe"]
    return result


def dataset_resolution(dataset) -> int:
    """The family's ``resolution`` that the dataset file was generated at."""
    with h5py.File(dataset.path, "r") as handle:
        return int(json.loads(handle.attrs["config"])["resolution"])


def table(results: list[dict]) -> str:
    rows = []
    for r in results:
        rows.append([r["family"], r["model"], f"{r['parameters']:,}", r["epochs"],
                     f"{r['s_per_epoch']:.2f}", f"{r['test']['rel_l2_fe']:.4f}",
                     f"{r['test']['boundary_error']:.1e}",
                     f"{r['refined']['rel_l2_fe']:.4f} ({r['refined']['ndofs']} DoFs)",
                     f"{r['transfer_ratio']:.2f}", f"{r['refined']['boundary_error']:.1e}"])
    return markdown_table(["family", "model", "parameters", "epochs", "s/epoch",
                           "test rel. L2 (FE)", "boundary error", "zero-shot rel. L2 (FE), 2r",
                           "zero-shot / test", "zero-shot boundary error"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="resolution 4, 20 train / 10 test samples, 2 epochs: checks it runs")
    parser.add_argument("--epochs", type=int, default=None, help="epochs for every model (40)")
    parser.add_argument("--resolution", type=int, default=None, help="training mesh r (8)")
    parser.add_argument("--n-train", type=int, default=None, help="training samples (160)")
    parser.add_argument("--n-test", type=int, default=None, help="test samples (40)")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--data-dir", type=Path, default=ROOT / "out" / "bench_spon")
    parser.add_argument("--readme", action="store_true",
                        help="write the table into benchmarks/README.md")
    args = parser.parse_args()
    if args.quick and args.readme:
        parser.error("--readme: a --quick run is a smoke test; its numbers do not go into the "
                     "README")
    epochs = args.epochs or (2 if args.quick else 40)
    resolution = args.resolution or (4 if args.quick else 8)
    n_train = args.n_train or (20 if args.quick else 160)
    n_test = args.n_test or (10 if args.quick else 40)
    torch.set_num_threads(1)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    load_before = load_average()
    results = []
    for family in args.families:
        train, test, refined = files(family, resolution, n_train, n_test, args.data_dir)
        for name in args.models:
            started = time.perf_counter()
            result = {"family": family,
                      **run_model(name, train, test, refined, epochs, resolution)}
            results.append(result)
            print(f"{family} {result['model']}: test {result['test']['rel_l2_fe']:.4f}, "
                  f"zero-shot {result['refined']['rel_l2_fe']:.4f}, boundary "
                  f"{result['test']['boundary_error']:.1e} ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    setup = {"resolution": resolution, "n_train": n_train, "n_test": n_test, "epochs": epochs,
             "recipe": "Adam lr 3e-3, weight decay 1e-4, batch 10, StepLR x0.5 every epochs/3",
             "torch": torch.__version__, "threads": 1, "load_average": [load_before,
                                                                         load_average()]}
    path = write_results("spon_quick" if args.quick else "spon",
                         {"setup": setup, "results": results})
    text = (f"P1, training mesh at resolution {resolution}, zero-shot at {2 * resolution}; "
            f"{n_train} train / {n_test} test samples; {epochs} epochs for every model; "
            f"{setup['recipe']}; CPU, 1 thread, load average {load_before} before. Errors on "
            "the DoFs in the FE norm (grid models: bilinear interpolation of their grid back "
            "to the DoFs); boundary error: largest |prediction - data| at the Dirichlet DoFs.\n\n"
            + table(results))
    print("\n" + text)
    print(f"wrote {path}")
    if args.readme:
        update_readme_section("bench-spon", text)


if __name__ == "__main__":
    main()
