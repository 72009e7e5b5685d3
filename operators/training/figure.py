"""``predictions.png``: input, truth, prediction and error for the first samples of a dataset."""

from __future__ import annotations

from pathlib import Path

__all__ = ["PREDICTIONS_PNG", "plot_predictions"]

PREDICTIONS_PNG = "predictions.png"


def plot_predictions(trained, dataset, path: Path, samples: int = 3) -> Path:
    """PNG of input (channel 0), truth, prediction and |error| for the first ``samples``.

    ``trained`` has ``predict`` (a Trainer or TrainedModel); ``dataset`` yields ``(x, y)``
    pairs ``[C, *spatial]``. 1D samples are line plots; 3D ones show the middle slice of the
    last axis. Uses matplotlib's Agg canvas directly, leaving the global backend alone.
    Returns ``path``.
    """
    import numpy as np
    import torch
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pdesuite.operators.training.data import split_pair

    count = min(samples, len(dataset))
    pairs = [split_pair(dataset[i], "data") for i in range(count)]
    x = torch.stack([torch.as_tensor(p[0]) for p in pairs])
    y = torch.stack([torch.as_tensor(p[1]) for p in pairs])
    prediction = trained.predict(x)
    columns = ("input", "truth", "prediction", "|error|")
    figure = Figure(figsize=(3.2 * len(columns), 2.8 * count), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(count, len(columns), squeeze=False)

    def field(t: torch.Tensor) -> np.ndarray:
        a = np.atleast_1d(t[0].detach().cpu().numpy())  # channel 0
        while a.ndim > 2:
            a = a[..., a.shape[-1] // 2]
        return a

    for row in range(count):
        panels = (field(x[row]), field(y[row]), field(prediction[row]),
                  np.abs(field(prediction[row]) - field(y[row])))
        for column, (title, values) in enumerate(zip(columns, panels)):
            ax = axes[row, column]
            if values.ndim == 1:
                ax.plot(values)
            else:
                image = ax.imshow(
                    values, origin="lower", cmap="magma" if column == 3 else "viridis"
                )
                figure.colorbar(image, ax=ax, shrink=0.8)
                ax.set_xticks([])
                ax.set_yticks([])
            ax.set_title(f"sample {row}: {title}", fontsize=9)
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path
