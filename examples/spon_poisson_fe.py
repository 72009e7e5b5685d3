"""Train SPON on a generated poisson-fe set, and plot its prediction and error on the mesh.

1. Generates 200 problems −Δu = f on the L-shaped domain, u = g on its boundary (P1 elements,
   resolution 8: 225 DoFs) into out/poisson-fe.h5. The file carries its mesh.
2. Builds SPON on the file's finite-element space (``PDEDataset.mesh_info``): message passing on
   the DoF graph, the boundary DoFs taken from the data (input channel 1) exactly. Trains it
   with the Trainer on the relative L2 error in the FE norm (mass matrix), the normalisers off
   (they would move the exact boundary values; the model scales itself by constants of the
   training split), for EPOCHS epochs, under a minute on the CPU.
3. Prints the test split's relative L2 error in the FE norm and the largest error at the
   Dirichlet DoFs (zero: they are the data), and the same on a refined mesh (resolution 16,
   833 DoFs) the model never saw.
4. Draws truth, prediction and error of two test samples on the mesh (``tripcolor``) into
   out/spon_poisson_fe.png.

Run: ``python examples/spon_poisson_fe.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pdesuite.datasets import generate
from pdesuite.datasets.loaders import PDEDataset
from pdesuite.operators.models import build_fe_model, fe_data_arguments, rebind_fe_model
from pdesuite.operators.spon import FEL2Loss
from pdesuite.operators.training import TrainConfig, Trainer

OUT = Path("out")
EPOCHS = 40
RESOLUTION = 8


def fe_errors(trainer: Trainer, dataset) -> tuple[float, float]:
    """Mean relative L2 error in the FE norm, and the largest error at the Dirichlet DoFs."""
    mesh = dataset.mesh_info
    x = torch.stack([dataset[i][0] for i in range(len(dataset))])
    y = torch.stack([dataset[i][1] for i in range(len(dataset))])
    prediction = trainer.predict(x)
    relative = FEL2Loss(mesh.space, reduction="none")(prediction.double(), y.double())
    dofs = torch.as_tensor(np.array(mesh.dirichlet_dofs))
    boundary = (prediction - y)[..., dofs].abs().max()
    return float(relative.mean()), float(boundary)


def plot(trainer: Trainer, dataset, path: Path, samples: int = 2) -> Path:
    """Truth, prediction and |error| of the first ``samples`` on the mesh (``tripcolor``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mesh = dataset.mesh_info.mesh
    x = torch.stack([dataset[i][0] for i in range(samples)])
    truth = torch.stack([dataset[i][1] for i in range(samples)])[:, 0].numpy()
    prediction = trainer.predict(x)[:, 0].numpy()
    figure = Figure(figsize=(11, 3.4 * samples), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(samples, 3, squeeze=False)
    x_points, y_points = mesh.points[:, 0], mesh.points[:, 1]
    for row in range(samples):
        low, high = truth[row].min(), truth[row].max()
        panels = (("truth u", truth[row], "viridis", (low, high)),
                  ("SPON", prediction[row], "viridis", (low, high)),
                  ("|error|", np.abs(prediction[row] - truth[row]), "magma", (None, None)))
        for column, (title, values, cmap, (vmin, vmax)) in enumerate(panels):
            ax = axes[row, column]
            # P1 DoFs are the vertices: the values colour the triangles by linear interpolation
            image = ax.tripcolor(x_points, y_points, mesh.cells, values, shading="gouraud",
                                 cmap=cmap, vmin=vmin, vmax=vmax)
            ax.triplot(x_points, y_points, mesh.cells, color="white", linewidth=0.2, alpha=0.4)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"test sample {row}: {title}", fontsize=9)
            figure.colorbar(image, ax=ax, shrink=0.8)
    figure.savefig(path, dpi=110)
    return path


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    OUT.mkdir(exist_ok=True)
    path = generate("poisson-fe", 200, out=OUT / "poisson-fe.h5", resolution=RESOLUTION, seed=0,
                    progress=False)
    refined_path = generate("poisson-fe", 20, out=OUT / "poisson-fe-refined.h5",
                            resolution=2 * RESOLUTION, seed=1, progress=False)
    train, val, test = (PDEDataset(path, split=split, normalize=False)
                        for split in ("train", "val", "test"))
    mesh = train.mesh_info
    print(f"{path}: {len(train)} train / {len(val)} val / {len(test)} test samples on {mesh}")

    model = build_fe_model("spon", mesh, in_channels=2, out_channels=1, width=32, layers=6,
                           **fe_data_arguments(train))
    config = TrainConfig(loss=FEL2Loss(mesh.space), epochs=EPOCHS, batch_size=10, lr=3e-3,
                         step_size=EPOCHS // 3, gamma=0.5, normalize_inputs=False,
                         normalize_outputs=False, progress=False, device="cpu")
    trainer = Trainer(model, train, val, config).fit()
    print(f"SPON: {model.parameter_count():,} parameters, {EPOCHS} epochs")

    relative, boundary = fe_errors(trainer, test)
    print(f"test: relative L2 (FE norm) {relative:.4f}, largest boundary error {boundary:.1e}")
    refined = PDEDataset(refined_path, split="all", normalize=False)
    rebind_fe_model(model, refined.mesh_info)  # same weights, the refined mesh's space
    relative, boundary = fe_errors(trainer, refined)
    print(f"refined mesh ({refined.mesh_info.ndofs} DoFs, zero-shot): relative L2 (FE norm) "
          f"{relative:.4f}, largest boundary error {boundary:.1e}")
    rebind_fe_model(model, mesh)
    print(f"wrote {plot(trainer, test, OUT / 'spon_poisson_fe.png')}")


if __name__ == "__main__":
    main()
