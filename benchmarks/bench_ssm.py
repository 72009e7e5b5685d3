"""State-space models: adding and copying at L = 1,000, PDE forecasts, recurrent inference cost.

Three parts, each in its own section of the JSON:

1. **Synthetic tasks** for each layer (S4D, DSS, S5, STU), a
   :class:`~pdesuite.dynamics.ssm.SequenceModel` (2 blocks, LayerNorm) trained with Adam on fresh
   random batches, then scored on 512 held-out sequences:

   - *adding* (L = 1,000): inputs ``(value ~ U(0, 1), marker)``, two markers, one in each half;
     the target is the sum of the two marked values, read at the last step; MSE against the
     naive predictor's 1/6 ≈ 0.167 (always answer 1);
   - *copying* (L = T + 20 = 1,000): 10 symbols of 8, T − 1 blanks, a delimiter, 10 blanks; the
     output repeats the blanks and then the 10 symbols; cross-entropy per position against the
     memoryless predictor's ``10 log 8 / (T + 20)`` (blanks, then uniform guesses), and the
     accuracy on the 10 recalled symbols (chance 1/8).

2. **Forecasts** of the suite's trajectories, 10 frames in and the rest out, split by
   trajectory (a quarter held out, seeded): Burgers 1D (``nu`` 0.02, 64 points, 41 frames 0.05
   apart) and Navier–Stokes on the 64² torus (``nu`` 1e-3, 21 frames 1.0 apart), the files of
   ``bench_koopman.py`` (reused from ``out/bench_koopman/`` when there, else generated).
   :class:`~pdesuite.dynamics.ssm.SSMForecaster` (an FNO trunk per frame, the SSM over time;
   on Navier–Stokes also without a trunk) against persistence, DMD and Hankel DMD
   (:mod:`pdesuite.dynamics.koopman`) and an autoregressive FNO
   (:class:`pdesuite.dynamics.autoregressive.AutoregressiveOperator`), all from frame 9 of each
   test trajectory: relative L2 per step (mean over the test trajectories), parameters, fit
   time and time per epoch.

3. **Recurrent inference**: the wall time of one ``step`` of each layer (d_model 32, batch 1)
   after sequences of length L = 256, 1,024, 4,096 (STU: its window ``seq_len`` = L, up to
   2,048, its filters being O(L³) to build), against the time per token of the convolution
   mode over the whole sequence.

    python benchmarks/bench_ssm.py [--quick] [--readme] [--threads 1]

``--quick`` shrinks every part (a check that the script runs, about a minute); results go to
``benchmarks/results/ssm.json`` (``ssm_quick.json``); ``--readme`` writes the tables into
benchmarks/README.md. One thread for torch and the BLAS unless ``--threads``.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

# before NumPy loads (inside the functions): _common pins the BLAS threads
from _common import (
    ROOT,
    load_average,
    markdown_table,
    update_readme_section,
    write_results,
)

KOOPMAN_DATA = ROOT / "out" / "bench_koopman"
DATA_DIR = ROOT / "out" / "bench_ssm"
LAYERS = ("s4d", "dss", "s5", "stu")
FRAMES_IN = 10

FULL = {
    "synthetic": {"length": 1000, "steps": 250, "batch": 16, "d_model": 32, "stu_d_model": 16,
                  "lr": 3e-3, "eval": 512},
    "burgers": {"n": 64, "resolution": 64, "final_time": 2.0, "record_interval": 0.05,
                "nu": 0.02},
    "navier_stokes": {"n": 24, "resolution": 64, "final_time": 20.0, "record_interval": 1.0,
                      "nu": 1e-3, "dt": 1e-3},
    "ssm_burgers": {"epochs": 30, "window_stride": 4, "batch_size": 8,
                    "trunk_options": {"modes": 16, "width": 16, "layers": 2, "padding": 0,
                                      "projection_width": 32}},
    "ssm_ns": {"epochs": 12, "window_stride": 3, "batch_size": 6,
               "trunk_options": {"modes": 8, "width": 12, "layers": 2, "padding": 0,
                                 "projection_width": 24}},
    "fno_burgers": {"epochs": 30, "model_config": {"modes": 16, "width": 16, "layers": 2,
                                                   "padding": 0, "projection_width": 32}},
    "fno_ns": {"epochs": 15, "model_config": {"modes": 8, "width": 12, "layers": 2,
                                              "padding": 0, "projection_width": 24}},
    "inference_lengths": (256, 1024, 4096),
    "stu_max_length": 2048,
}
QUICK = {
    "synthetic": {"length": 100, "steps": 5, "batch": 8, "d_model": 8, "stu_d_model": 8,
                  "lr": 3e-3, "eval": 32},
    "burgers": {"n": 12, "resolution": 32, "final_time": 0.75, "record_interval": 0.05,
                "nu": 0.05},
    "navier_stokes": {"n": 6, "resolution": 16, "final_time": 14.0, "record_interval": 1.0,
                      "nu": 1e-3, "dt": 1e-3},
    "ssm_burgers": {"epochs": 1, "window_stride": 4, "batch_size": 8,
                    "trunk_options": {"modes": 4, "width": 8, "layers": 1, "padding": 0,
                                      "projection_width": 8}},
    "ssm_ns": {"epochs": 1, "window_stride": 3, "batch_size": 6,
               "trunk_options": {"modes": 4, "width": 8, "layers": 1, "padding": 0,
                                 "projection_width": 8}},
    "fno_burgers": {"epochs": 1, "model_config": {"modes": 4, "width": 8, "layers": 1,
                                                  "padding": 0, "projection_width": 8}},
    "fno_ns": {"epochs": 1, "model_config": {"modes": 4, "width": 8, "layers": 1,
                                             "padding": 0, "projection_width": 8}},
    "inference_lengths": (64, 256),
    "stu_max_length": 256,
}


def say(message: str) -> None:
    print(message, flush=True)


def layer_options(layer: str, length: int, d_state: int = 32) -> dict[str, Any]:
    if layer == "stu":
        return {"seq_len": length, "num_filters": 8}
    options: dict[str, Any] = {"d_state": d_state}
    if layer == "dss":
        options["seq_len"] = length
    return options


# -------------------------------------------------------------------- part 1: synthetic
def adding_batch(batch: int, length: int, generator):
    """``(u [B, L, 2], target [B])``: one marker in each half of the sequence."""
    import torch

    values = torch.rand(batch, length, generator=generator)
    first = torch.randint(0, length // 2, (batch,), generator=generator)
    second = torch.randint(length // 2, length, (batch,), generator=generator)
    markers = torch.zeros(batch, length)
    rows = torch.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    return torch.stack([values, markers], dim=-1), values[rows, first] + values[rows, second]


def copying_batch(batch: int, length: int, generator):
    """``(u [B, L, 10] one-hot, labels [B, L])`` with ``L = T + 20``: symbols 1..8, blank 0,
    delimiter 9; the labels are blanks except the last 10, the symbols."""
    import torch

    symbols = torch.randint(1, 9, (batch, 10), generator=generator)
    tokens = torch.zeros(batch, length, dtype=torch.long)
    tokens[:, :10] = symbols
    tokens[:, length - 11] = 9
    labels = torch.zeros(batch, length, dtype=torch.long)
    labels[:, -10:] = symbols
    return torch.nn.functional.one_hot(tokens, 10).float(), labels


def synthetic_task(task: str, layer: str, sizes: dict[str, Any]) -> dict[str, Any]:
    import torch

    from pdesuite.dynamics.ssm import SequenceModel

    length = sizes["length"]
    d_model = sizes["stu_d_model"] if layer == "stu" else sizes["d_model"]
    d_in, d_out = (2, 1) if task == "adding" else (10, 9)
    torch.manual_seed(0)
    model = SequenceModel(d_in, d_out, d_model=d_model, n_layers=2, layer=layer,
                          layer_options=layer_options(layer, length))
    optimizer = torch.optim.AdamW(model.parameters(), lr=sizes["lr"], weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, sizes["steps"])
    make = adding_batch if task == "adding" else copying_batch
    generator = torch.Generator().manual_seed(1)

    def loss_of(u, target):
        y = model(u)
        if task == "adding":
            return torch.nn.functional.mse_loss(y[:, -1, 0], target)
        return torch.nn.functional.cross_entropy(y.reshape(-1, 9), target.reshape(-1))

    started = time.perf_counter()
    for _ in range(sizes["steps"]):
        u, target = make(sizes["batch"], length, generator)
        optimizer.zero_grad()
        loss_of(u, target).backward()
        optimizer.step()
        schedule.step()
    train_s = time.perf_counter() - started
    model.eval()
    u, target = make(sizes["eval"], length, torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model(u)
        loss = float(loss_of(u, target))
    result = {"layer": layer, "task": task, "length": length, "d_model": d_model,
              "steps": sizes["steps"], "batch": sizes["batch"], "train_seconds": train_s,
              "parameters": sum(p.numel() for p in model.parameters()), "loss": loss}
    if task == "adding":
        result["naive"] = 1.0 / 6.0
    else:
        result["naive"] = 10 * math.log(8) / length
        result["recall_accuracy"] = float((y[:, -10:].argmax(-1) == target[:, -10:]).float()
                                          .mean())
    say(f"  {task} / {layer}: {loss:.4g} (naive {result['naive']:.4g}), {train_s:.0f} s")
    return result


# --------------------------------------------------------------------- part 2: forecasts
def trajectories_of(family: str, settings: dict[str, Any], tag: str):
    """Trajectories of bench_koopman's file for these settings, or of a new one here."""
    from pdesuite.datasets import generate
    from pdesuite.dynamics.koopman import read_trajectories

    options = {key: value for key, value in settings.items() if key != "n"}
    name = "_".join(f"{key}{value}" for key, value in sorted(options.items()))
    filename = f"{family}_{tag}_{settings['n']}_{name}.h5"
    for folder in (KOOPMAN_DATA, DATA_DIR):
        if (folder / filename).is_file():
            return read_trajectories(folder / filename).trajectories
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generate(family, settings["n"], DATA_DIR / filename, progress=False, seed=0, **options)
    say(f"  generated {filename} in {time.perf_counter() - started:.0f} s")
    return read_trajectories(DATA_DIR / filename).trajectories


def relative_l2(forecast, truth):
    """Mean over trajectories of ``‖f_t − x_t‖ / ‖x_t‖``, ``[steps + 1]``."""
    import numpy as np

    shape = (truth.shape[0], truth.shape[1], -1)
    return np.mean(np.linalg.norm((forecast - truth).reshape(shape), axis=2)
                   / np.linalg.norm(truth.reshape(shape), axis=2), axis=0)


def forecast_part(name: str, trajectories, ssm_models: dict[str, dict[str, Any]],
                  fno: dict[str, Any], rank: int) -> dict[str, Any]:
    import numpy as np

    from pdesuite.dynamics.autoregressive import AutoregressiveOperator
    from pdesuite.dynamics.koopman import EDMD, HankelDMD, train_test_split
    from pdesuite.dynamics.ssm import SSMForecaster

    train, test = train_test_split(trajectories, test_fraction=0.25, seed=0)
    start = FRAMES_IN - 1
    truth = test[:, start:]
    steps = truth.shape[1] - 1
    say(f"  {name}: {len(train)} train / {len(test)} test trajectories, state "
        f"{list(trajectories.shape[2:])}, {FRAMES_IN} frames in, {steps} out")
    rows: dict[str, dict[str, Any]] = {
        "persistence": {"curve": relative_l2(np.repeat(truth[:, :1], steps + 1, axis=1), truth)}}

    def record(label, forecast, fit_s, parameters=None, epoch_s=None, epochs=None):
        rows[label] = {"curve": relative_l2(forecast, truth), "fit_seconds": fit_s,
                       "parameters": parameters, "epoch_seconds": epoch_s, "epochs": epochs}
        say(f"    {label}: final step {rows[label]['curve'][-1]:.3g}, mean "
            f"{rows[label]['curve'][1:].mean():.3g} ({fit_s:.0f} s)")

    for label, build in (
            (f"DMD (rank {rank})", lambda: EDMD(rank=rank)),
            (f"Hankel DMD (d 4, rank {2 * rank})", lambda: HankelDMD(delays=4, rank=2 * rank))):
        started = time.perf_counter()
        model = build().fit(train)
        x0 = test[:, start - 3:start + 1] if model.delays > 1 else test[:, start]
        record(label, model.predict(x0, steps), time.perf_counter() - started)
    started = time.perf_counter()
    operator = AutoregressiveOperator("fno", model_config=fno["model_config"],
                                      epochs=fno["epochs"], batch_size=20, lr=1e-3,
                                      step_size=max(1, fno["epochs"] // 3), seed=0).fit(train)
    times = [entry["epoch_time_s"] for entry in operator.trainer_.history]
    record("autoregressive FNO", operator.predict(test[:, start], steps),
           time.perf_counter() - started, operator.model_.parameter_count(),
           float(np.mean(times)), fno["epochs"])
    for label, settings in ssm_models.items():
        started = time.perf_counter()
        forecaster = SSMForecaster(frames_in=FRAMES_IN, rollout_steps=5, seed=0, device="cpu",
                                   **settings).fit(train)
        record(label, forecaster.predict(test[:, :FRAMES_IN], steps),
               time.perf_counter() - started, forecaster.parameter_count,
               forecaster.epoch_seconds, settings["epochs"])
    return {"train": int(len(train)), "test": int(len(test)), "steps": steps,
            "start_frame": start,
            "rows": {label: {**row, "curve": row["curve"].tolist()} for label, row in rows.items()}}


def ssm_settings(layer: str, sizes: dict[str, Any], trunk: bool) -> dict[str, Any]:
    settings = {"layer": layer, "d_model": 16, "n_layers": 2, "d_state": 16,
                "epochs": sizes["epochs"], "window_stride": sizes["window_stride"],
                "batch_size": sizes["batch_size"], "lr": 3e-3}
    if trunk:
        settings.update(trunk="fno", trunk_channels=16, trunk_options=sizes["trunk_options"])
    return settings


# -------------------------------------------------------------------- part 3: inference
def inference_part(lengths, stu_max: int) -> list[dict[str, Any]]:
    import torch

    from pdesuite.dynamics.ssm import make_layer

    rows = []
    for layer in LAYERS:
        for length in lengths:
            if layer == "stu" and length > stu_max:
                continue
            torch.manual_seed(0)
            module = make_layer(layer, 32, **layer_options(layer, length)).eval()
            u = torch.randn(1, length, 32)
            with torch.no_grad():
                started = time.perf_counter()
                _, states = module(u, return_states=True)
                forward_s = time.perf_counter() - started
                state = (states[:, -1] if layer != "stu"
                         else u[:, -length:])  # the state after the sequence
                tokens = torch.randn(200, 1, 32)
                started = time.perf_counter()
                for token in tokens:
                    _, state = module.step(token, state)
                step_s = (time.perf_counter() - started) / len(tokens)
            rows.append({"layer": layer, "length": length, "step_us": step_s * 1e6,
                         "conv_per_token_us": forward_s / length * 1e6})
            say(f"  {layer} L={length}: step {step_s * 1e6:.0f} µs, convolution "
                f"{forward_s / length * 1e6:.1f} µs per token")
    return rows


# ------------------------------------------------------------------------------- report
def readme_text(results: dict[str, Any]) -> str:
    synthetic = results["synthetic"]
    first = synthetic[0]
    lines = [f"Synthetic tasks at L = {first['length']}: a 2-block SequenceModel per layer "
             f"(d_model {first['d_model']}, STU {results['sizes']['synthetic']['stu_d_model']}"
             f" with 8 filters; d_state 32), {first['steps']} AdamW steps of "
             f"{first['batch']} fresh sequences (lr {results['sizes']['synthetic']['lr']}, "
             "cosine), scored on 512 held-out sequences; one CPU thread:\n"]
    rows = []
    for layer in LAYERS:
        adding = next(r for r in synthetic if r["layer"] == layer and r["task"] == "adding")
        copying = next(r for r in synthetic if r["layer"] == layer and r["task"] == "copying")
        rows.append([layer, adding["parameters"], f"{adding['loss']:.4f}",
                     f"{adding['naive']:.3f}", f"{copying['loss']:.4f}",
                     f"{copying['naive']:.4f}", f"{copying['recall_accuracy']:.3f}",
                     f"{adding['train_seconds']:.0f} / {copying['train_seconds']:.0f}"])
    lines.append(markdown_table(
        ["layer", "parameters (adding)", "adding MSE", "naive", "copying CE", "memoryless",
         "recall accuracy (chance 0.125)", "train s (adding / copying)"], rows))
    for name, part in results["forecasts"].items():
        steps = part["steps"]
        horizons = sorted({1, max(1, steps // 2), steps})
        lines.append(f"\n{name}: {part['train']} train / {part['test']} test trajectories, "
                     f"{FRAMES_IN} frames in, {steps} out (from frame {part['start_frame']}); "
                     "relative L2, mean over the test trajectories:\n")
        table = []
        for label, row in part["rows"].items():
            curve = row["curve"]
            parameters = f"{row['parameters']:,}" if row.get("parameters") else "-"
            epoch = (f"{row['epoch_seconds']:.2f} × {row['epochs']}"
                     if row.get("epoch_seconds") else "-")
            fit = f"{row['fit_seconds']:.1f}" if "fit_seconds" in row else "-"
            table.append([label, *[f"{curve[h]:.3g}" for h in horizons],
                          f"{sum(curve[1:]) / steps:.3g}", parameters, epoch, fit])
        lines.append(markdown_table(
            ["model", *[f"step {h}" for h in horizons], "mean over steps", "parameters",
             "s per epoch × epochs", "fit s"], table))
    lines.append("\nRecurrent inference, one `step` (d_model 32, batch 1) after a sequence of "
                 "length L, against the convolution mode's time per token over the sequence "
                 "(µs):\n")
    lengths = sorted({r["length"] for r in results["inference"]})
    table = []
    for layer in LAYERS:
        cells = []
        for length in lengths:
            row = next((r for r in results["inference"]
                        if r["layer"] == layer and r["length"] == length), None)
            cells.append("-" if row is None else
                         f"{row['step_us']:.0f} ({row['conv_per_token_us']:.1f})")
        table.append([layer, *cells])
    lines.append(markdown_table(["layer", *[f"L = {n}: step (conv/token)" for n in lengths]],
                                table))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    parser.add_argument("--readme", action="store_true",
                        help="write the tables into benchmarks/README.md")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--parts", nargs="*", default=["synthetic", "forecasts", "inference"],
                        choices=["synthetic", "forecasts", "inference"],
                        help="parts to run (default all)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    suffix = "_quick" if args.quick else ""
    tag = "quick" if args.quick else "full"
    started = time.perf_counter()
    results: dict[str, Any] = {"quick": args.quick, "load_average_before": load_average(),
                               "torch_threads": torch.get_num_threads(), "sizes": sizes,
                               "synthetic": [], "forecasts": {}, "inference": []}
    if "synthetic" in args.parts:
        say("synthetic tasks")
        results["synthetic"] = [synthetic_task(task, layer, sizes["synthetic"])
                                for task in ("adding", "copying") for layer in LAYERS]
    if "forecasts" in args.parts:
        say("forecasts")
        burgers = trajectories_of("burgers", sizes["burgers"], tag)
        navier_stokes = trajectories_of("navier-stokes", sizes["navier_stokes"], tag)
        burgers_name = f"Burgers 1D ({sizes['burgers']['resolution']} points)"
        ns_name = f"Navier–Stokes {sizes['navier_stokes']['resolution']}²"
        burgers_models = {f"SSM {layer} (FNO trunk)": ssm_settings(layer, sizes["ssm_burgers"],
                                                                   trunk=True)
                          for layer in LAYERS}
        ns_models = {"SSM s4d (pointwise)": ssm_settings("s4d", sizes["ssm_ns"], trunk=False),
                     "SSM s4d (FNO trunk)": ssm_settings("s4d", sizes["ssm_ns"], trunk=True)}
        results["forecasts"] = {
            burgers_name: forecast_part(burgers_name, burgers, burgers_models,
                                        sizes["fno_burgers"], rank=4 if args.quick else 20),
            ns_name: forecast_part(ns_name, navier_stokes, ns_models, sizes["fno_ns"],
                                   rank=4 if args.quick else 40),
        }
    if "inference" in args.parts:
        say("recurrent inference")
        results["inference"] = inference_part(sizes["inference_lengths"],
                                              sizes["stu_max_length"])
    results["seconds"] = time.perf_counter() - started
    results["load_average_after"] = load_average()
    complete = all(results[part] for part in ("synthetic", "forecasts", "inference"))
    text = readme_text(results) if complete else ""
    results["table"] = text
    path = write_results(f"ssm{suffix}", results)
    print("\n" + text)
    print(f"\nwrote {path} in {results['seconds']:.0f} s")
    if args.readme and not args.quick and complete:
        update_readme_section("bench-ssm", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
