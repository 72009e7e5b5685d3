"""Forecast viscous Burgers trajectories with a state-space time-stepper (S4D over time).

Generates a small Burgers set (48 trajectories, 64 points, ν = 0.02, 41 frames 0.05 apart),
holds out a quarter of the trajectories, and trains an :class:`SSMForecaster`: an FNO encodes
each frame (mixing space), S4D carries every point's features through time, and the increment
of the field is decoded; teacher forcing plus a 5-step rollout loss. Every held-out trajectory
is then forecast from its first 10 frames by stepping the recurrence, 30 steps on. Prints the
relative L2 error at a few horizons next to persistence (the last given frame held) and plots
one rollout against the truth. About a minute on one CPU core.
Run: python examples/forecast_burgers_ssm.py  (writes out/forecast_burgers_ssm/)
"""

from pathlib import Path

import numpy as np
import torch

from pdesuite.datasets import generate
from pdesuite.dynamics.koopman import read_trajectories, train_test_split
from pdesuite.dynamics.ssm import SSMForecaster

OUT = Path("out/forecast_burgers_ssm")
FRAMES_IN = 10
HORIZONS = (1, 5, 10, 20, 30)


def relative_l2(forecast: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean over trajectories of ``‖f_t − x_t‖ / ‖x_t‖`` per step: ``[n, T, ...] -> [T]``."""
    axes = tuple(range(2, truth.ndim))
    return np.mean(np.linalg.norm(forecast - truth, axis=axes)
                   / np.linalg.norm(truth, axis=axes), axis=0)


def main() -> None:
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    path = generate("burgers", 48, OUT / "burgers.h5", resolution=64, nu=0.02, final_time=2.0,
                    record_interval=0.05, seed=0, overwrite=True, progress=False)
    trajectories = read_trajectories(path).trajectories  # [48, 41, 1, 64]
    train, test = train_test_split(trajectories, test_fraction=0.25, seed=0)

    forecaster = SSMForecaster(
        "s4d", d_model=16, n_layers=2, d_state=16, frames_in=FRAMES_IN, rollout_steps=5,
        trunk="fno", trunk_channels=16,
        trunk_options={"modes": 16, "width": 16, "layers": 2, "padding": 0,
                       "projection_width": 32},
        epochs=25, window_stride=4, batch_size=8, lr=3e-3, seed=0, device="cpu",
        progress=True).fit(train)
    steps = test.shape[1] - FRAMES_IN
    forecast = forecaster.predict(test[:, :FRAMES_IN], steps)  # [12, 32, 1, 64]
    truth = test[:, FRAMES_IN - 1:]
    errors = {"SSM (S4D, FNO trunk)": relative_l2(forecast, truth),
              "persistence": relative_l2(np.repeat(truth[:, :1], steps + 1, axis=1), truth)}

    print(f"Burgers, {len(train)} train / {len(test)} test trajectories; {FRAMES_IN} frames in; "
          f"{forecaster.parameter_count:,} parameters, {forecaster.epoch_seconds:.2f} s per "
          f"epoch; relative L2 at step:")
    print(f"{'':24s}" + "".join(f"{h:>9d}" for h in HORIZONS))
    for name, values in errors.items():
        print(f"{name:24s}" + "".join(f"{values[h]:9.4f}" for h in HORIZONS))

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    true_axes, forecast_axes, curve_axes = figure.subplots(1, 3)
    extent = (0.0, 1.0, 0.05 * (FRAMES_IN - 1), 0.05 * (FRAMES_IN - 1 + steps))
    limits = {"vmin": truth[0].min(), "vmax": truth[0].max(), "cmap": "RdBu_r",
              "aspect": "auto", "origin": "lower", "extent": extent}
    true_axes.imshow(truth[0, :, 0], **limits)
    true_axes.set_title("truth (test trajectory 0)")
    image = forecast_axes.imshow(forecast[0, :, 0], **limits)
    forecast_axes.set_title("SSM rollout")
    figure.colorbar(image, ax=forecast_axes, label="u")
    for axes in (true_axes, forecast_axes):
        axes.set_xlabel("x")
        axes.set_ylabel("t")
    for name, values in errors.items():
        curve_axes.semilogy(np.arange(1, steps + 1), values[1:], label=name)
    curve_axes.set_xlabel("step (0.05 time units)")
    curve_axes.set_ylabel("relative L2 error")
    curve_axes.legend()
    figure.savefig(OUT / "rollout.png", dpi=110)
    print(f"plot: {OUT / 'rollout.png'}")


if __name__ == "__main__":
    main()
