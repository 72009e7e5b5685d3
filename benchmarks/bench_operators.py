"""FNO vs LSM vs MgNO on our piecewise-constant Darcy data (issue 6).

Data. ``darcy-pwc`` (FNO's Darcy: a GRF with α = 2, τ = 3 thresholded to 12 / 3, f = 1, zero
Dirichlet, 5-point finite differences on a node grid of [0, 1]²), ``n_train + n_test`` samples
(default 1000 + 200; the split is by explicit counts: the first 1000 draws train, the last 200
test; there is no validation split, so the weights after the last epoch are the ones evaluated,
as in the papers). As the FNO papers do (solved at 421², subsampled to 85²), each file is solved
on a finer grid and subsampled: for a training resolution ``s`` the file holds the
``(2s − 1)²`` node grid, and training and test use every other node (``s²``, both ends kept).
The zero-shot evaluation runs the trained model on the same 200 test samples at the full
``(2s − 1)²`` grid, i.e. the same coefficient functions at half the grid spacing ("2×"):
32 → 63, 64 → 127, 85 → 169. Files go to ``--data-dir`` (default ``out/bench_operators/``,
git-ignored) and are reused when they exist with the same configuration.

Training. Each model is built with its defaults (``--model-arg lsm:width=32`` overrides one
setting; the JSON records every model's full config) from the same seed, and trained by
:class:`pdesuite.operators.Trainer` with one recipe for all three (``--recipe common``,
default): Adam, lr 1e-3, weight decay 1e-4, batch 20, relative L2 loss, input and output
normalisers, StepLR halving the rate every ``epochs / 5`` epochs (every 100 of the papers' 500).
``--recipe paper`` gives MgNO its own recipe instead (OneCycle to lr 1e-3 and the relative H1
loss, non-periodic). The same ``--epochs`` for every model; the papers train 500 (the default
here, meant for a GPU). CUDA is used when available, with AMP (the Trainer's default there).

Reported per model and training resolution: parameters, median seconds per training epoch
(training loop only) and samples/s, test relative L2 and H1 at ``s²``, and zero-shot relative
L2 at ``(2s − 1)²``. Our FNO pads a fixed 9 grid points, which changes the padded domain's
length on another grid; its zero-shot error is also reported with the padding scaled to the
finer grid (same weights), see :func:`fno_zero_shot_padding_scaled`.

Throughput against neuraloperator: when ``import neuralop`` works, our FNO and
``neuralop.models.FNO`` at the same size (12 modes, width 32, 4 layers, projection 128, grid
coordinates as extra input channels, padding 9 points ≈ ``9 / s`` one-sided domain padding) are
trained in the same process with the same plain loop (Adam, relative L2, batch 20; in fp32,
and on CUDA also with AMP), alternately (best of 2 each), on the training data of the first ``--resolutions``
entry, and their samples/s reported. neuraloperator is not a dependency: without
it this part is skipped and the JSON says so.

    python benchmarks/bench_operators.py [--quick] [--resolutions 32 64] [--epochs 500]
        [--models fno lsm mgno] [--n-train 1000] [--n-test 200] [--model-arg lsm:width=32]
        [--recipe common|paper] [--device auto] [--threads N] [--readme]

    # the GPU run of the issue:
    python benchmarks/bench_operators.py --resolutions 85 --epochs 500 --readme

``--threads N`` sets torch's threads and OpenBLAS/OpenMP's; without it all are 1 (the machines
these run on are shared). Writes benchmarks/results/operators.json (``operators_quick.json``
with ``--quick``) after every model, so an interrupted run keeps what it finished, and prints
a Markdown table; ``--readme`` also writes it into README.md.
"""

from __future__ import annotations

import os
import sys


def _pin_threads_from_argv() -> str:
    # OpenBLAS and OpenMP read their thread counts once, at first import: set them before that.
    threads = "1"
    if "--threads" in sys.argv[:-1]:
        threads = sys.argv[sys.argv.index("--threads") + 1]
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = threads
    return threads


_pin_threads_from_argv()

import argparse  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Optional, Sequence  # noqa: E402

from _common import ROOT, markdown_table, update_readme_section, write_results  # noqa: E402

MODEL_NAMES = ("fno", "lsm", "mgno")
DISPLAY_NAMES = {"fno": "FNO", "lsm": "LSM", "mgno": "MgNO"}
FAMILY = "darcy-pwc"
README_MARKER = "bench-operators"
PAPER_EPOCHS = 500
#: The papers' schedule halves the rate 4 times in 500 epochs; keep that shape at any budget.
SCHEDULE_DIVISIONS = 5


# ------------------------------------------------------------------------------------ data
def fine_resolution(resolution: int) -> int:
    """Grid of the generated file for training resolution ``s``: ``2s − 1`` (half the spacing)."""
    return 2 * resolution - 1


def prepare_dataset(resolution: int, n_train: int, n_test: int, seed: int, data_dir: Path,
                    workers: int, progress: bool) -> dict[str, Any]:
    """Generate (or reuse) the Darcy-pwc file for training resolution ``resolution``.

    Returns ``{"path", "fine_resolution", "n", "seed", "generate_seconds", "reused"}``; the file
    holds ``n_train + n_test`` samples on the ``(2s − 1)²`` node grid.
    """
    from pdesuite.datasets import generate

    fine = fine_resolution(resolution)
    n = n_train + n_test
    path = data_dir / f"{FAMILY}_r{fine}_n{n}_seed{seed}.h5"
    existed = path.exists()
    start = time.perf_counter()
    generate(FAMILY, n, out=path, resolution=fine, seed=seed, workers=workers, progress=progress)
    return {"path": str(path), "fine_resolution": fine, "n": n, "seed": seed,
            "generate_seconds": time.perf_counter() - start, "reused": existed}


def load_split(path: str, split: str, n_train: int, n_test: int):
    """``(inputs, outputs)`` float32 tensors ``[n, 1, N, N]`` of one split, unnormalised.

    The split is by counts ``(n_train, 0, n_test)``: draws ``0 .. n_train − 1`` train, the
    next ``n_test`` test. Read once into memory, so that epoch times measure the model and not
    HDF5 reads.
    """
    import torch

    from pdesuite.datasets import PDEDataset

    dataset = PDEDataset(path, split=split, split_fractions=(n_train, 0, n_test), normalize=False)
    pairs = [dataset[i] for i in range(len(dataset))]
    inputs = torch.stack([torch.as_tensor(x) for x, _ in pairs]).float()
    outputs = torch.stack([torch.as_tensor(y) for _, y in pairs]).float()
    return inputs, outputs


def subsample(tensor, resolution: int):
    """``[n, C, N, N]`` strided to ``[n, C, resolution, resolution]``, both grid ends kept."""
    from pdesuite.operators.train_cli import subsample_stride

    strides = [subsample_stride(n, resolution) for n in tensor.shape[2:]]
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)
    return tensor[index].contiguous()


# --------------------------------------------------------------------------------- devices
def device_name(device) -> str:
    """Human-readable name of a torch device (GPU model, or the CPU model from /proc/cpuinfo)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


# -------------------------------------------------------------------------------- training
def parse_model_args(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["lsm:width=32", ...]`` -> ``{"lsm": {"width": 32}}`` (values parsed as JSON)."""
    overrides: dict[str, dict[str, Any]] = {name: {} for name in MODEL_NAMES}
    for item in items:
        model, sep, setting = item.partition(":")
        key, sep2, value = setting.partition("=")
        if not sep or not sep2 or model not in MODEL_NAMES or not key:
            raise ValueError(f"--model-arg: expected MODEL:KEY=VALUE with MODEL in {MODEL_NAMES}, got {item!r}")
        try:
            overrides[model][key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[model][key] = value
    return overrides


def recipe_for(model_name: str, recipe: str, epochs: int, step_size: Optional[int],
               batch_size: int, lr: float) -> dict[str, Any]:
    """Trainer settings of one model: the common recipe, or MgNO's own with ``paper``."""
    settings: dict[str, Any] = {
        "optimizer": "adam", "lr": lr, "weight_decay": 1e-4, "scheduler": "step",
        "step_size": step_size or max(1, epochs // SCHEDULE_DIVISIONS), "gamma": 0.5,
        "loss": "l2", "batch_size": batch_size, "epochs": epochs,
    }
    if recipe == "paper" and model_name == "mgno":
        settings.update(scheduler="onecycle", max_lr=lr, loss="h1")
    return settings


def train_and_evaluate(model_name: str, overrides: dict[str, Any], settings: dict[str, Any],
                       train, test, test_fine, device: str, seed: int, progress: bool) -> dict[str, Any]:
    """Train one model and evaluate it on the test split at ``s²`` and zero-shot at ``(2s − 1)²``."""
    import torch

    from pdesuite.operators import Trainer, build_model

    torch.manual_seed(seed)
    model = build_model(model_name, in_channels=1, out_channels=1, ndim=2, **overrides)
    trainer = Trainer(model, train, None, device=device, seed=seed, progress=progress,
                      periodic=False, domain=(1.0, 1.0), out_dir=None, **settings)
    start = time.perf_counter()
    history = trainer.fit()
    wall = time.perf_counter() - start
    test_metrics = trainer.evaluate(test)
    zero_shot = trainer.evaluate(test_fine)
    extra: dict[str, Any] = {}
    if model_name == "fno":
        extra["zero_shot_padding_scaled"] = fno_zero_shot_padding_scaled(trainer, test, test_fine)
    epoch_times = [float(record["epoch_time_s"]) for record in history]
    median_epoch = statistics.median(epoch_times)
    n_train = int(train[0].shape[0])
    return {
        "model": model_name,
        "config": model.to_config(),
        "parameters": model.parameter_count(),
        "trainer": {key: value for key, value in settings.items()},
        "device": str(trainer.device),
        "amp": bool(trainer.amp),
        "epochs_run": len(history),
        "epoch_seconds": epoch_times,
        "median_epoch_seconds": median_epoch,
        "train_samples_per_second": n_train / median_epoch,
        "fit_wall_seconds": wall,
        "train_loss": [float(record["train_loss"]) for record in history],
        "test": {"resolution": list(test[0].shape[2:]), **test_metrics},
        "zero_shot": {"resolution": list(test_fine[0].shape[2:]), **zero_shot},
        **extra,
    }


def fno_zero_shot_padding_scaled(trainer, test, test_fine) -> dict[str, Any]:
    """Zero-shot error of a trained FNO with its padding scaled to the finer grid.

    Our FNO pads a fixed number of grid points (9), so on a finer grid the padded domain is
    physically shorter and every learned Fourier weight acts on another frequency. The same
    weights in an FNO whose padding is scaled by ``(N − 1)/(s − 1)`` (9 -> 18 for 32 -> 63) keep
    the padded domain's length; this is what the architecture can do zero-shot, measured beside
    the as-built number.
    """
    from pdesuite.operators import build_model

    model = trainer.model
    coarse, fine = test[0].shape[2:], test_fine[0].shape[2:]
    padding = [round(p * (n - 1) / (c - 1)) for p, c, n in zip(model.padding, coarse, fine)]
    scaled = build_model(model.to_config(), padding=padding).to(trainer.device)
    scaled.load_state_dict(model.state_dict())
    trainer.model = scaled  # evaluate() reads trainer.model; put the trained one back after
    try:
        metrics = trainer.evaluate(test_fine)
    finally:
        trainer.model = model
    return {"resolution": list(fine), "padding": padding, **metrics}


# ----------------------------------------------------------------------- neuraloperator FNO
def _neuralop_fno(resolution: int, padding_points: int, modes: int, width: int, layers: int,
                  projection_width: int):
    """neuraloperator's FNO at our FNO's size, and the keyword arguments it was built with.

    The keywords that neuraloperator versions differ in are passed only when its constructor
    takes them. Without a ``positional_embedding`` option (older versions) the grid
    coordinates are concatenated here, as our FNO does.
    """
    import torch
    from neuralop.models import FNO as NeuralopFNO
    from torch import nn

    from pdesuite.operators.models import grid_coordinates

    accepted = set(inspect.signature(NeuralopFNO.__init__).parameters)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD
                    for p in inspect.signature(NeuralopFNO.__init__).parameters.values())
    embeds_grid = "positional_embedding" in accepted
    kwargs: dict[str, Any] = {"n_modes": (modes, modes), "hidden_channels": width,
                              "in_channels": 1 if embeds_grid else 3, "out_channels": 1,
                              "n_layers": layers}
    optional = {
        "positional_embedding": "grid",
        "domain_padding": padding_points / resolution,
        "domain_padding_mode": "one-sided",
        "projection_channel_ratio": projection_width / width,
        "projection_channels": projection_width,
        "lifting_channel_ratio": 0,  # 0: a single linear lift, as ours
        "lifting_channels": 0,
        "use_channel_mlp": False,  # the original FNO block: K v + W v only
        "use_mlp": False,
    }
    kwargs.update({key: value for key, value in optional.items() if key in accepted or
                   (takes_any and key in ("positional_embedding", "domain_padding"))})
    try:
        model = NeuralopFNO(**kwargs)
    except (TypeError, ValueError):
        for key in ("lifting_channel_ratio", "lifting_channels"):
            kwargs.pop(key, None)  # some versions need a lifting MLP
        model = NeuralopFNO(**kwargs)

    if embeds_grid:
        return model, kwargs

    class WithGrid(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(torch.cat([x, grid_coordinates(x, 2)], dim=1))

    return WithGrid(model), {**kwargs, "grid_concatenated_by_benchmark": True}


def _time_training_steps(model, inputs, outputs, batch_size: int, steps: int, warmup: int,
                         device, amp: bool) -> float:
    """Samples per second of ``steps`` plain training steps (after ``warmup``), data on device."""
    import torch

    from pdesuite.operators.losses import LpLoss

    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    loss_fn = LpLoss(2, relative=True)
    x_all, y_all = inputs.to(device), outputs.to(device)
    batches = max(1, x_all.shape[0] // batch_size)
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        first = (step % batches) * batch_size
        x, y = x_all[first:first + batch_size], y_all[first:first + batch_size]
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            prediction = model(x)
        loss = loss_fn(prediction.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch_size / (time.perf_counter() - start)


def fno_throughput(inputs, outputs, device, batch_size: int, steps: int, warmup: int,
                   repeats: int, seed: int) -> dict[str, Any]:
    """Training samples/s of our FNO and neuraloperator's at the same size, in this process."""
    import torch

    try:
        import neuralop
    except Exception as error:  # noqa: BLE001 - any import failure means: skip
        return {"skipped": f"neuraloperator is not importable here ({type(error).__name__}: {error}); "
                           "it is not a dependency of pdesuite, so this comparison was not run"}
    from pdesuite.operators import build_model

    resolution = int(inputs.shape[-1])
    ours_model = build_model("fno", in_channels=1, out_channels=1, ndim=2)
    ours_config = ours_model.to_config()
    amp_modes = [False, True] if device.type == "cuda" else [False]
    result: dict[str, Any] = {
        "neuralop_version": getattr(neuralop, "__version__", "unknown"),
        "resolution": resolution, "batch_size": batch_size, "steps": steps, "warmup": warmup,
        "repeats": repeats, "ours_config": ours_config,
        "ours_parameters": ours_model.parameter_count(), "runs": [],
    }
    try:
        torch.manual_seed(seed)
        theirs_model, kwargs = _neuralop_fno(resolution, ours_config["padding"], ours_config["modes"],
                                             ours_config["width"], ours_config["layers"],
                                             ours_config["projection_width"])
    except Exception as error:  # noqa: BLE001 - record, do not fail the whole benchmark
        result["neuralop_error"] = f"building neuralop FNO failed: {type(error).__name__}: {error}"
        return result
    result["neuralop_kwargs"] = {key: (list(v) if isinstance(v, tuple) else v) for key, v in kwargs.items()}
    result["neuralop_parameters"] = sum(p.numel() * (2 if p.is_complex() else 1)
                                        for p in theirs_model.parameters() if p.requires_grad)
    for amp in amp_modes:
        best: dict[str, Optional[float]] = {"ours": None, "neuralop": None}
        errors: dict[str, str] = {}
        for _ in range(repeats):  # alternate, so that drift on a shared machine hits both
            for label, model in (("ours", ours_model), ("neuralop", theirs_model)):
                if label in errors:
                    continue
                try:
                    rate = _time_training_steps(model, inputs, outputs, batch_size, steps, warmup,
                                                device, amp)
                    best[label] = rate if best[label] is None else max(best[label], rate)
                except Exception as error:  # noqa: BLE001
                    errors[label] = f"{type(error).__name__}: {error}"
        run = {"amp": amp, "ours_samples_per_second": best["ours"],
               "neuralop_samples_per_second": best["neuralop"], "errors": errors}
        if best["ours"] and best["neuralop"]:
            run["ours_over_neuralop"] = best["ours"] / best["neuralop"]
        result["runs"].append(run)
    return result


# ------------------------------------------------------------------------------------ main
def _table(runs: Sequence[dict[str, Any]]) -> str:
    rows = []
    for run in runs:
        config = run["config"]
        size = {"fno": f"modes {config.get('modes')}, width {config.get('width')}",
                "lsm": f"width {config.get('width')}",
                "mgno": f"width {config.get('width')}, {config.get('layers')} layers"}[run["model"]]
        s = "x".join(str(n) for n in run["test"]["resolution"])
        fine = "x".join(str(n) for n in run["zero_shot"]["resolution"])
        zero_shot = f"{run['zero_shot']['rel_l2']:.4f} ({fine})"
        if "zero_shot_padding_scaled" in run:
            scaled = run["zero_shot_padding_scaled"]
            zero_shot += f"; padding {scaled['padding'][0]}: {scaled['rel_l2']:.4f}"
        rows.append([s, DISPLAY_NAMES[run["model"]], size, f"{run['parameters']:,}", run["epochs_run"],
                     round(run["median_epoch_seconds"], 2), round(run["train_samples_per_second"], 1),
                     f"{run['test']['rel_l2']:.4f}", f"{run['test']['h1']:.4f}", zero_shot])
    return markdown_table(["train grid", "model", "size", "parameters", "epochs", "s/epoch",
                           "samples/s", "test rel. L2", "test rel. H1", "zero-shot rel. L2 (grid)"], rows)


def _throughput_text(throughput: Optional[dict[str, Any]]) -> str:
    if throughput is None:
        return "FNO throughput against neuraloperator: not run (--no-throughput)."
    if "skipped" in throughput:
        return f"FNO throughput against neuraloperator: skipped ({throughput['skipped']})."
    if "neuralop_error" in throughput:
        return f"FNO throughput against neuraloperator: {throughput['neuralop_error']}."
    rows = []
    for run in throughput["runs"]:
        ours, theirs = run["ours_samples_per_second"], run["neuralop_samples_per_second"]
        rows.append(["AMP" if run["amp"] else "fp32",
                     f"{ours:.1f}" if ours else run["errors"].get("ours", "-"),
                     f"{theirs:.1f}" if theirs else run["errors"].get("neuralop", "-"),
                     f"{run['ours_over_neuralop']:.2f}" if "ours_over_neuralop" in run else "-"])
    return (f"FNO training throughput at {throughput['resolution']}², batch "
            f"{throughput['batch_size']} (neuraloperator {throughput['neuralop_version']}; parameters: "
            f"ours {throughput['ours_parameters']:,}, neuraloperator {throughput['neuralop_parameters']:,}):\n\n"
            + markdown_table(["precision", "ours samples/s", "neuraloperator samples/s", "ours / theirs"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="16² training grid, 40 train / 20 test samples, 2 epochs: checks the script runs")
    parser.add_argument("--resolutions", type=int, nargs="+", default=None,
                        help="training grids s (default 32 64); data solved at 2s-1")
    parser.add_argument("--epochs", type=int, default=None, help=f"epochs for every model (default {PAPER_EPOCHS})")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    parser.add_argument("--model-arg", action="append", default=[], metavar="MODEL:KEY=VALUE",
                        help="override a model default, e.g. lsm:width=32 (repeatable)")
    parser.add_argument("--n-train", type=int, default=None, help="training samples (default 1000)")
    parser.add_argument("--n-test", type=int, default=None, help="test samples (default 200)")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--step-size", type=int, default=None,
                        help=f"StepLR period (default epochs/{SCHEDULE_DIVISIONS}: 100 at 500 epochs)")
    parser.add_argument("--recipe", choices=("common", "paper"), default="common",
                        help="common: one recipe for all (default); paper: MgNO with OneCycle and H1 loss")
    parser.add_argument("--seed", type=int, default=0, help="dataset and model seed (default 0)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "out" / "bench_operators")
    parser.add_argument("--gen-workers", type=int, default=1, help="processes for data generation")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch/BLAS threads (default 1)")
    parser.add_argument("--no-throughput", action="store_true", help="skip the neuraloperator comparison")
    parser.add_argument("--throughput-steps", type=int, default=None,
                        help="timed training steps per throughput measurement (default 20)")
    parser.add_argument("--progress", action="store_true", help="progress bars and per-epoch lines")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    if args.quick and args.readme:
        parser.error("--readme: a --quick run is a smoke test; its numbers do not go into the README")

    resolutions = args.resolutions or ([16] if args.quick else [32, 64])
    epochs = args.epochs or (2 if args.quick else PAPER_EPOCHS)
    n_train = args.n_train or (40 if args.quick else 1000)
    n_test = args.n_test or (20 if args.quick else 200)
    steps = args.throughput_steps or (3 if args.quick else 20)
    for name, value in (("epochs", epochs), ("n-train", n_train), ("n-test", n_test),
                        ("batch-size", args.batch_size)):
        if value < 1:
            parser.error(f"--{name}: must be >= 1, got {value}")
    if any(s < 4 for s in resolutions):
        parser.error(f"--resolutions: every grid must be >= 4 points, got {resolutions}")
    try:
        overrides = parse_model_args(args.model_arg)
    except ValueError as error:
        parser.error(str(error))

    import torch

    from pdesuite.operators import select_device

    threads = args.threads or 1
    torch.set_num_threads(threads)
    device = select_device(args.device)
    name = "operators" + ("_quick" if args.quick else "")
    payload: dict[str, Any] = {
        "benchmark": "FNO vs LSM vs MgNO on darcy-pwc (issue 6)",
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "settings": {
            "quick": args.quick, "resolutions": resolutions, "epochs": epochs,
            "paper_epochs": PAPER_EPOCHS, "models": args.models, "model_overrides": overrides,
            "n_train": n_train, "n_test": n_test, "split": [n_train, 0, n_test],
            "recipe": args.recipe, "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr,
            "zero_shot": "the same test samples on the (2s-1)^2 grid they were solved on; "
                         "training and test at s^2 take every other node",
        },
        "datasets": [],
        "runs": [],
        "throughput": None,
    }
    print(f"device {device} ({payload['device_name']}), torch {torch.__version__}, "
          f"{threads} thread(s); {epochs} epochs; resolutions {resolutions}", flush=True)

    started = time.perf_counter()
    for resolution in resolutions:
        data = prepare_dataset(resolution, n_train, n_test, args.seed, args.data_dir,
                               args.gen_workers, args.progress)
        payload["datasets"].append({"train_resolution": resolution, **data})
        print(f"data {data['path']} ({'reused' if data['reused'] else 'generated'}, "
              f"{data['generate_seconds']:.1f} s)", flush=True)
        train_fine = load_split(data["path"], "train", n_train, n_test)
        test_fine = load_split(data["path"], "test", n_train, n_test)
        train = tuple(subsample(t, resolution) for t in train_fine)
        test = tuple(subsample(t, resolution) for t in test_fine)
        del train_fine
        for model_name in args.models:
            settings = recipe_for(model_name, args.recipe, epochs, args.step_size,
                                  args.batch_size, args.lr)
            run = train_and_evaluate(model_name, overrides[model_name], settings, train, test,
                                     test_fine, args.device, args.seed, args.progress)
            run["train_resolution"] = resolution
            payload["runs"].append(run)
            payload["elapsed_seconds"] = time.perf_counter() - started
            write_results(name, payload)  # after every model: an interrupted run keeps its results
            print(f"{resolution}² {model_name}: {run['parameters']:,} parameters, "
                  f"{run['median_epoch_seconds']:.2f} s/epoch, test rel L2 {run['test']['rel_l2']:.4f}, "
                  f"zero-shot {run['zero_shot']['rel_l2']:.4f} at {run['zero_shot']['resolution']}",
                  flush=True)
        if not args.no_throughput and payload["throughput"] is None:
            payload["throughput"] = fno_throughput(train[0], train[1], device, args.batch_size, steps,
                                                   warmup=2 if args.quick else 5, repeats=2,
                                                   seed=args.seed)

    payload["elapsed_seconds"] = time.perf_counter() - started
    path = write_results(name, payload)
    table = _table(payload["runs"])
    recipe = ("Adam, lr {lr:g}, weight decay 1e-4, StepLR ×0.5 every {step} epochs, relative L2 loss, "
              "batch {batch}").format(lr=args.lr, step=args.step_size or max(1, epochs // SCHEDULE_DIVISIONS),
                                       batch=args.batch_size)
    if args.recipe == "paper":
        recipe += "; MgNO: OneCycle and relative H1 loss"
    changed = {m: o for m, o in overrides.items() if o and m in args.models}
    text = (f"Darcy piecewise-constant (`darcy-pwc`), {n_train} train / {n_test} test, solved on the "
            f"(2s−1)² grid and subsampled to s²; {epochs} epochs for every model (the papers: "
            f"{PAPER_EPOCHS}); {recipe}. Device: {payload['device_name']} ({device}"
            f"{', AMP' if device.type == 'cuda' else ''}), torch {torch.__version__}, "
            f"{payload['torch_threads']} thread(s)."
            + (f" Model settings changed from the defaults: {json.dumps(changed)}." if changed else "")
            + " s/epoch: median training-loop time; zero-shot: the same test samples on the (2s−1)² grid"
            " (FNO also with its padding, 9 grid points as built, scaled to the finer grid)."
            f"\n\n{table}\n\n{_throughput_text(payload['throughput'])}")
    print()
    print(text)
    print(f"\nwrote {path}")
    if args.readme:
        update_readme_section(README_MARKER, text)


if __name__ == "__main__":
    main()
