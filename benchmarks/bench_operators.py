"""FNO vs LSM vs MgNO on our piecewise-constant Darcy data.

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
L2 at ``(2s − 1)²``. Our FNO pads a fraction of the domain (0.1), so the padded period keeps
its length on another grid; its zero-shot error is also reported with the padding frozen at
the training grid's point count (same weights), see :func:`fno_zero_shot_fixed_points`.

Throughput against neuraloperator: when ``import neuralop`` works (neuraloperator is not a
dependency: ``make bench-deps`` installs it, without torch, into ``.bench-deps/``, which only
this script puts on ``sys.path``), our FNO (``--model-arg fno:...`` applies) and
``neuralop.models.FNO`` built to the same architecture and parameter count (modes, width,
layers, one linear lift, projection width, grid coordinates, 1x1 skip, no channel MLP; see
:func:`_neuralop_fno`) are trained in the same process with the same plain loop (Adam,
relative L2, batch 20; fp32, and on CUDA also AMP), alternately, on the training data of the
first ``--resolutions`` entry; samples/s = batch / median step time. Padding cannot always match
(neuraloperator pads both ends equally): see :func:`fno_throughput`. Without neuraloperator this
part is skipped and the JSON says so. ``--throughput-only`` runs just this, at every
``--resolutions`` entry, into ``benchmarks/results/fno_throughput.json``.

    python benchmarks/bench_operators.py [--quick] [--resolutions 32 64] [--epochs 500]
        [--models fno lsm mgno] [--n-train 1000] [--n-test 200] [--model-arg lsm:width=32]
        [--recipe common|paper] [--device auto] [--threads N] [--readme]
        [--throughput-only] [--throughput-steps 20] [--throughput-repeats 3] [--no-throughput]

    # the GPU run of the issue:
    python benchmarks/bench_operators.py --resolutions 85 --epochs 500 --readme

``--threads N`` sets torch's threads and OpenBLAS/OpenMP's; without it all are 1 (the machines
these run on are shared). Writes benchmarks/results/operators.json (``operators_quick.json``
with ``--quick``) after every model, so an interrupted run keeps what it finished, and prints
a Markdown table; ``--readme`` also writes it into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence


def _pin_threads_from_argv() -> str:
    # OpenBLAS and OpenMP read their thread counts once, at first import: set them before that.
    threads = "1"
    if "--threads" in sys.argv[:-1]:
        threads = sys.argv[sys.argv.index("--threads") + 1]
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = threads
    return threads


_pin_threads_from_argv()

# After the pin, like every import that may load NumPy or torch.
from _common import (  # noqa: E402
    ROOT,
    load_average,
    markdown_table,
    update_readme_section,
    write_results,
)

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
            raise ValueError(
                f"--model-arg: expected MODEL:KEY=VALUE with MODEL in {MODEL_NAMES}, got {item!r}"
            )
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


def train_and_evaluate(
    model_name: str,
    overrides: dict[str, Any],
    settings: dict[str, Any],
    train,
    test,
    test_fine,
    device: str,
    seed: int,
    progress: bool,
) -> dict[str, Any]:
    """Train one model and evaluate it on the test split at ``s²`` and zero-shot at
    ``(2s − 1)²``."""
    import torch

    from pdesuite.operators import Trainer, build_model

    torch.manual_seed(seed)
    model = build_model(model_name, in_channels=1, out_channels=1, ndim=2, **overrides)
    trainer = Trainer(model, train, None, device=device, seed=seed, progress=progress,
                      periodic=False, domain=(1.0, 1.0), out_dir=None, **settings)
    start = time.perf_counter()
    history = trainer.fit().history
    wall = time.perf_counter() - start
    test_metrics = trainer.evaluate(test)
    zero_shot = trainer.evaluate(test_fine)
    extra: dict[str, Any] = {}
    if model_name == "fno":
        extra["zero_shot_fixed_points"] = fno_zero_shot_fixed_points(trainer, test, test_fine)
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


def fno_zero_shot_fixed_points(trainer, test, test_fine) -> dict[str, Any]:
    """Zero-shot error of the trained FNO had its padding been a fixed number of grid points.

    Our FNO pads a fraction of the domain, so on the finer grid it pads twice the points and the
    padded period keeps its physical length. The same weights with the padding frozen at the
    points used on the training grid (what a fixed-point padding does) show what that buys.
    """
    from pdesuite.operators import build_model

    model = trainer.model
    coarse, fine = test[0].shape[2:], test_fine[0].shape[2:]
    points = list(model.padding_points(coarse))
    fixed = build_model(model.to_config(), padding=points).to(trainer.device)
    fixed.load_state_dict(model.state_dict())
    trainer.model = fixed  # evaluate() reads trainer.model; put the trained one back after
    try:
        metrics = trainer.evaluate(test_fine)
    finally:
        trainer.model = model
    return {"resolution": list(fine), "padding_points": points, **metrics}


# ----------------------------------------------------------------------- neuraloperator FNO
#: The neuraloperator release the comparison was written against (``make bench-deps`` installs it).
NEURALOP_VERSION = "2.0.0"
#: Where ``make bench-deps`` puts neuraloperator and what it imports; never a package dependency.
BENCH_DEPS = ROOT / ".bench-deps"


def _import_neuralop():
    """``neuralop``, from the environment or else from ``.bench-deps/`` (``make bench-deps``).

    ``.bench-deps`` goes at the end of ``sys.path``, so that it can never shadow a package of
    the venv (torch above all): it only adds what the venv lacks.
    """
    if BENCH_DEPS.is_dir() and str(BENCH_DEPS) not in sys.path:
        sys.path.append(str(BENCH_DEPS))
    import neuralop

    return neuralop


def _spectral_grid(model, sample) -> list[int]:
    """Spatial shape that the first spectral convolution of ``model`` sees for input ``sample``.

    That is the padded grid every FFT of the model runs on, measured instead of derived from
    a padding setting, so that it holds whatever form (points, fraction, one- or two-sided) a
    model's padding takes. Both our FNO and neuraloperator's name the layer ``SpectralConv``.
    """
    import torch

    layer = next((m for m in model.modules() if type(m).__name__ == "SpectralConv"), None)
    if layer is None:
        raise ValueError(f"model: {type(model).__name__} has no SpectralConv layer")
    seen: list[list[int]] = []
    handle = layer.register_forward_pre_hook(
        lambda _layer, args: seen.append(list(args[0].shape[2:]))
    )
    try:
        with torch.no_grad():
            model(sample)
    finally:
        handle.remove()
    return seen[0]


def _parameter_count(model) -> int:
    """Trainable real scalars, a complex weight counted twice (as our ``parameter_count``)."""
    return sum(
        p.numel() * (2 if p.is_complex() else 1) for p in model.parameters() if p.requires_grad
    )


def _neuralop_fno(ours_config: dict[str, Any], resolution: Sequence[int],
                  padding_per_side: Sequence[int]):
    """neuraloperator's FNO with the architecture of our FNO ``ours_config``; ``(model, kwargs)``.

    The mapping (neuraloperator 2.0.0's ``FNO`` arguments):

    * ``n_modes``: neuraloperator counts modes over the whole (shifted) spectrum of an axis, and
      on the last, real-FFT axis keeps ``n // 2 + 1``. Our ``m`` modes per axis keep the
      frequencies ``-m .. m - 1`` on the other axes and ``0 .. m - 1`` on the last, which is
      ``2m`` there and ``2(m - 1)`` on the last axis: 12 -> ``(24, 22)``, weights
      ``[32, 32, 24, 12]``.
    * one linear lift (``lifting_channel_ratio=0``), projection ``width -> projection_width ->
      out`` with GELU, no channel MLP in the blocks, a linear (1x1) skip: ``GELU(K v + W v)``.
    * grid coordinates as extra input channels, on our node grid ``k / (n - 1)`` (neuraloperator's
      default grid leaves out the end point).
    * ``domain_padding``: neuraloperator pads both ends of every axis by ``round(f n)`` points;
      ``padding_per_side`` is that number per axis.

    The caller checks that the parameter counts agree.
    """
    from neuralop.layers.embeddings import GridEmbeddingND
    from neuralop.models import FNO as NeuralopFNO

    ndim = int(ours_config["ndim"])
    modes = ours_config["modes"]
    modes = [int(modes)] * ndim if isinstance(modes, int) else [int(m) for m in modes]
    width = int(ours_config["width"])
    n_modes = tuple([2 * m for m in modes[:-1]] + [2 * (modes[-1] - 1)])
    if ours_config.get("grid", True):
        embedding = GridEmbeddingND(in_channels=int(ours_config["in_channels"]), dim=ndim,
                                    grid_boundaries=[[0.0, n / (n - 1)] for n in resolution])
    else:
        embedding = None
    kwargs: dict[str, Any] = {
        "n_modes": n_modes, "in_channels": int(ours_config["in_channels"]),
        "out_channels": int(ours_config["out_channels"]), "hidden_channels": width,
        "n_layers": int(ours_config["layers"]),
        "lifting_channel_ratio": 0,
        "projection_channel_ratio": int(ours_config["projection_width"]) / width,
        "use_channel_mlp": False, "fno_skip": "linear", "norm": None,
        "domain_padding": [p / n for p, n in zip(padding_per_side, resolution)],
        "fno_block_precision": "full", "factorization": None,
    }
    model = NeuralopFNO(positional_embedding=embedding, **kwargs)
    recorded = {
        key: (list(value) if isinstance(value, tuple) else value) for key, value in kwargs.items()
    }
    recorded["positional_embedding"] = (
        "GridEmbeddingND, boundaries [0, n/(n-1)] (node grid k/(n-1))"
        if embedding is not None
        else None
    )
    return model, recorded


def _time_training_steps(model, inputs, outputs, batch_size: int, steps: int, warmup: int,
                         device, amp: bool) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each of ``steps`` plain training steps (after ``warmup``).

    A step is forward, relative L2 loss, backward and an Adam update (lr 1e-3, weight decay
    1e-4), on consecutive batches of ``inputs``/``outputs`` ``[n, C, *S]``; the same batches in
    the same order for every model, data on device. CPU seconds are this process's
    (``time.process_time``): on a shared CPU they leave out the time other processes had the
    core, which wall time does not.
    """
    import torch

    from pdesuite.operators.losses import LpLoss

    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    loss_fn = LpLoss(2, relative=True)
    x_all, y_all = inputs.to(device), outputs.to(device)
    batches = max(1, x_all.shape[0] // batch_size)
    seconds: list[float] = []
    cpu_seconds: list[float] = []
    for step in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
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
        if step >= warmup:
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
    return seconds, cpu_seconds



def fno_throughput(
    inputs,
    outputs,
    device,
    batch_size: int,
    steps: int,
    warmup: int,
    repeats: int,
    seed: int,
    fno_overrides: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Training samples/s of our FNO and neuraloperator's at the same size, in this process.

    Our FNO is built by ``build_model("fno", **fno_overrides)`` (its defaults otherwise) and
    neuraloperator's to match it (:func:`_neuralop_fno`); their parameter counts must agree.
    Padding: ours is measured as the padded grid its FFTs run on; neuraloperator pads both ends
    by the same number of points, so an odd total cannot be matched and neuraloperator is then
    timed twice, with the next larger and the next smaller total (e.g. ours 32 + 3 = 35 against
    32 + 2·2 = 36 and 32 + 2·1 = 34). FFT time depends strongly on the size's prime factors
    (one 73² FFT costs about 3.7 times a 72² one here), so the padded grids are reported with
    the rates.

    The models are timed alternately, ``repeats`` times each, ``steps`` steps after ``warmup``
    (so that drift on a shared machine hits all); samples/s = ``batch_size / median step``
    over all timed steps; on CPU also per CPU second of this process (``batch_size / median
    CPU time of a step``), which a shared machine disturbs far less than wall time; and
    ``batch_size / fastest step``. On CUDA this runs in fp32 and with AMP, on CPU in fp32 only.
    ``inputs``/``outputs``: ``[n, C, *S]`` float32 training data. Returns a JSON-able dict
    (``"skipped"`` when neuraloperator cannot be imported, ``"neuralop_error"`` when its model
    cannot be built to match).
    """
    import torch

    try:
        neuralop = _import_neuralop()
    except Exception as error:  # any import failure means: skip
        return {
            "skipped": f"neuraloperator is not importable here ({type(error).__name__}: {error}); "
            "it is not a dependency of pdesuite: `make bench-deps` installs it into "
            ".bench-deps/ for this benchmark"
        }
    from pdesuite.operators import build_model

    resolution = [int(n) for n in inputs.shape[2:]]
    sample = inputs[:1]
    torch.manual_seed(seed)
    ours_model = build_model(
        "fno",
        in_channels=int(inputs.shape[1]),
        out_channels=int(outputs.shape[1]),
        ndim=len(resolution),
        **(fno_overrides or {}),
    )
    ours_config = ours_model.to_config()
    ours_grid = _spectral_grid(ours_model, sample)
    amp_modes = [False, True] if device.type == "cuda" else [False]
    result: dict[str, Any] = {
        "neuralop_version": getattr(neuralop, "__version__", "unknown"),
        "neuralop_path": str(Path(neuralop.__file__).parent),
        "resolution": resolution, "batch_size": batch_size, "steps": steps, "warmup": warmup,
        "repeats": repeats, "device": str(device), "torch_threads": torch.get_num_threads(),
        "optimizer": "Adam, lr 1e-3, weight decay 1e-4", "loss": "relative L2",
        "ours_config": ours_config, "ours_parameters": ours_model.parameter_count(),
        "ours_padded_grid": ours_grid, "models": [], "runs": [],
    }
    totals = [padded - n for padded, n in zip(ours_grid, resolution)]
    per_side_options = [[(t + 1) // 2 for t in totals]]
    if any(t % 2 for t in totals):
        per_side_options.append([t // 2 for t in totals])
    models: list[tuple[str, Any]] = [("ours", ours_model)]
    result["models"].append(
        {"label": "ours", "parameters": result["ours_parameters"], "padded_grid": ours_grid}
    )
    try:
        for per_side in per_side_options:
            torch.manual_seed(seed)
            theirs, kwargs = _neuralop_fno(ours_config, resolution, per_side)
            grid = _spectral_grid(theirs, sample)
            label = "neuralop" if len(models) == 1 else "neuralop_pad_down"
            parameters = _parameter_count(theirs)
            if parameters != result["ours_parameters"]:
                raise ValueError(f"parameter counts differ: ours {result['ours_parameters']:,}, "
                                 f"neuraloperator {parameters:,} (kwargs {kwargs})")
            models.append((label, theirs))
            result["models"].append({"label": label, "parameters": parameters, "padded_grid": grid,
                                     "padding_per_side": per_side, "kwargs": kwargs})
    except Exception as error:  # record, do not fail the whole benchmark
        result["neuralop_error"] = f"building neuralop FNO failed: {type(error).__name__}: {error}"
        return result
    result["neuralop_parameters"] = result["models"][1]["parameters"]
    if result["neuralop_version"] != NEURALOP_VERSION:
        result["neuralop_version_note"] = (
            f"the mapping was written against neuraloperator {NEURALOP_VERSION} "
            "(make bench-deps); parameter counts were checked, defaults may differ"
        )
    result["load_average_before"] = load_average()
    for amp in amp_modes:
        seconds: dict[str, list[float]] = {label: [] for label, _ in models}
        cpu_seconds: dict[str, list[float]] = {label: [] for label, _ in models}
        per_repeat: dict[str, list[float]] = {label: [] for label, _ in models}
        errors: dict[str, str] = {}
        for _ in range(repeats):
            for label, model in models:
                if label in errors:
                    continue
                try:
                    step_seconds, step_cpu_seconds = _time_training_steps(
                        model, inputs, outputs, batch_size, steps, warmup, device, amp
                    )
                except Exception as error:  # record, do not fail the whole benchmark
                    errors[label] = f"{type(error).__name__}: {error}"
                    continue
                seconds[label] += step_seconds
                cpu_seconds[label] += step_cpu_seconds
                per_repeat[label].append(len(step_seconds) * batch_size / sum(step_seconds))
        run: dict[str, Any] = {"amp": amp, "errors": errors, "models": {}}
        for label, _ in models:
            if seconds[label]:
                median = statistics.median(seconds[label])
                run["models"][label] = {
                    "median_step_seconds": median,
                    "samples_per_second": batch_size / median,
                    "fastest_step_samples_per_second": batch_size / min(seconds[label]),
                    "per_repeat_samples_per_second": per_repeat[label],
                    "step_seconds": seconds[label],
                }
                if device.type == "cpu":
                    median_cpu = statistics.median(cpu_seconds[label])
                    run["models"][label].update(median_step_cpu_seconds=median_cpu,
                                                samples_per_cpu_second=batch_size / median_cpu,
                                                step_cpu_seconds=cpu_seconds[label])
        ours_rate = run["models"].get("ours", {}).get("samples_per_second")
        ours = run["models"].get("ours", {})
        for label in run["models"]:
            if label != "ours" and ours_rate:
                theirs = run["models"][label]
                run[f"ours_over_{label}"] = ours_rate / theirs["samples_per_second"]
                run[f"ours_over_{label}_fastest_step"] = (
                    ours["fastest_step_samples_per_second"]
                    / theirs["fastest_step_samples_per_second"]
                )
                if "samples_per_cpu_second" in theirs:
                    run[f"ours_over_{label}_cpu_time"] = (ours["samples_per_cpu_second"]
                                                          / theirs["samples_per_cpu_second"])
        # the old keys, kept for readers of earlier results
        run["ours_samples_per_second"] = ours_rate
        run["neuralop_samples_per_second"] = (
            run["models"].get("neuralop", {}).get("samples_per_second")
        )
        result["runs"].append(run)
    result["load_average_after"] = load_average()
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
        if "zero_shot_fixed_points" in run:
            fixed = run["zero_shot_fixed_points"]
            zero_shot += (
                f"; with {fixed['padding_points'][0]} fixed pad points: {fixed['rel_l2']:.4f}"
            )
        rows.append(
            [
                s,
                DISPLAY_NAMES[run["model"]],
                size,
                f"{run['parameters']:,}",
                run["epochs_run"],
                round(run["median_epoch_seconds"], 2),
                round(run["train_samples_per_second"], 1),
                f"{run['test']['rel_l2']:.4f}",
                f"{run['test']['h1']:.4f}",
                zero_shot,
            ]
        )
    return markdown_table(
        [
            "train grid", "model", "size", "parameters", "epochs", "s/epoch", "samples/s",
            "test rel. L2", "test rel. H1", "zero-shot rel. L2 (grid)",
        ],
        rows,
    )


def _throughput_text(throughput: Optional[dict[str, Any]]) -> str:
    if throughput is None:
        return "FNO throughput against neuraloperator: not run (--no-throughput)."
    if "skipped" in throughput:
        return f"FNO throughput against neuraloperator: skipped ({throughput['skipped']})."
    if "neuralop_error" in throughput:
        return f"FNO throughput against neuraloperator: {throughput['neuralop_error']}."
    grids = {m["label"]: "x".join(str(n) for n in m["padded_grid"]) for m in throughput["models"]}
    names = {
        "ours": "ours",
        "neuralop": "neuraloperator",
        "neuralop_pad_down": "neuraloperator, less padding",
    }
    rows = []
    for run in throughput["runs"]:
        for model in throughput["models"]:
            label = model["label"]
            measured = run["models"].get(label)
            rate = (
                f"{measured['samples_per_second']:.2f}"
                if measured
                else run["errors"].get(label, "-")
            )
            per_cpu = (f"{measured['samples_per_cpu_second']:.2f}"
                       if measured and "samples_per_cpu_second" in measured else "-")
            ratio = run.get(f"ours_over_{label}")
            ratio_cpu = run.get(f"ours_over_{label}_cpu_time")
            rows.append(
                [
                    "AMP" if run["amp"] else "fp32",
                    names.get(label, label),
                    grids[label],
                    rate,
                    per_cpu,
                    f"{ratio:.2f}" if ratio else "-",
                    f"{ratio_cpu:.2f}" if ratio_cpu else "-",
                ]
            )
    side = "x".join(str(n) for n in throughput["resolution"])
    load = throughput.get("load_average_before") or [None]
    load_after = throughput.get("load_average_after") or [None]
    return (
        f"FNO training throughput at {side}, batch {throughput['batch_size']}, "
        f"{throughput['repeats']}×{throughput['steps']} timed steps each, alternating "
        "(samples/s = batch / median step wall time; per CPU s: / median CPU time of this "
        "process; Adam, relative L2; neuraloperator "
        f"{throughput['neuralop_version']}; {throughput.get('torch_threads', '?')} thread(s)"
        + (
            f"; 1-min load average {load[0]:.2f} before, {load_after[0]:.2f} after"
            if load[0] is not None and load_after[0] is not None
            else ""
        )
        + f"). Parameters: ours {throughput['ours_parameters']:,}, neuraloperator "
        f'{throughput["neuralop_parameters"]:,}. "FFT grid": the padded grid the FFTs run on '
        "(ours pads one end, neuraloperator both ends by the same amount):\n\n"
        + markdown_table(
            [
                "precision", "model", "FFT grid", "samples/s", "samples per CPU s",
                "ours / this (wall)", "ours / this (CPU)",
            ],
            rows,
        )
    )


def run_throughput_only(
    args: argparse.Namespace,
    resolutions: Sequence[int],
    n_train: int,
    n_test: int,
    steps: int,
    device,
    fno_overrides: dict[str, Any],
) -> None:
    """``--throughput-only``: :func:`fno_throughput` at every training grid, nothing else.

    Uses (and generates when missing) the same data files as the full benchmark, training
    split only. Writes ``benchmarks/results/fno_throughput.json`` (``fno_throughput_quick.json``
    with ``--quick``) and prints the Markdown text; the README is left alone.
    """
    import torch

    name = "fno_throughput" + ("_quick" if args.quick else "")
    payload: dict[str, Any] = {
        "benchmark": "FNO training throughput, ours against neuraloperator",
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "settings": {
            "quick": args.quick,
            "resolutions": list(resolutions),
            "n_train": n_train,
            "batch_size": args.batch_size,
            "steps": steps,
            "repeats": args.throughput_repeats,
            "seed": args.seed,
            "fno_overrides": fno_overrides,
        },
        "throughput": [],
    }
    print(
        f"device {device} ({payload['device_name']}), torch {torch.__version__}, "
        f"{payload['torch_threads']} thread(s); throughput only, resolutions {list(resolutions)}",
        flush=True,
    )
    started = time.perf_counter()
    texts = []
    for resolution in resolutions:
        data = prepare_dataset(resolution, n_train, n_test, args.seed, args.data_dir,
                               args.gen_workers, args.progress)
        train = tuple(
            subsample(t, resolution) for t in load_split(data["path"], "train", n_train, n_test)
        )
        result = fno_throughput(train[0], train[1], device, args.batch_size, steps,
                                warmup=2 if args.quick else 5, repeats=args.throughput_repeats,
                                seed=args.seed, fno_overrides=fno_overrides)
        result["data"] = data["path"]
        payload["throughput"].append(result)
        payload["elapsed_seconds"] = time.perf_counter() - started
        path = write_results(name, payload)
        texts.append(_throughput_text(result))
        print(f"\n{texts[-1]}\n", flush=True)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="16² training grid, 40 train / 20 test samples, 2 epochs: checks the script runs",
    )
    parser.add_argument("--resolutions", type=int, nargs="+", default=None,
                        help="training grids s (default 32 64); data solved at 2s-1")
    parser.add_argument(
        "--epochs", type=int, default=None, help=f"epochs for every model (default {PAPER_EPOCHS})"
    )
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    parser.add_argument("--model-arg", action="append", default=[], metavar="MODEL:KEY=VALUE",
                        help="override a model default, e.g. lsm:width=32 (repeatable)")
    parser.add_argument("--n-train", type=int, default=None, help="training samples (default 1000)")
    parser.add_argument("--n-test", type=int, default=None, help="test samples (default 200)")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--step-size",
        type=int,
        default=None,
        help=f"StepLR period (default epochs/{SCHEDULE_DIVISIONS}: 100 at 500 epochs)",
    )
    parser.add_argument(
        "--recipe",
        choices=("common", "paper"),
        default="common",
        help="common: one recipe for all (default); paper: MgNO with OneCycle and H1 loss",
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset and model seed (default 0)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "out" / "bench_operators")
    parser.add_argument("--gen-workers", type=int, default=1, help="processes for data generation")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch/BLAS threads (default 1)")
    parser.add_argument(
        "--no-throughput", action="store_true", help="skip the neuraloperator comparison"
    )
    parser.add_argument("--throughput-steps", type=int, default=None,
                        help="timed training steps per throughput measurement (default 20)")
    parser.add_argument("--throughput-repeats", type=int, default=3,
                        help="alternating throughput measurements per model (default 3)")
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="only the FNO throughput against neuraloperator, at every --resolutions "
        "entry; writes benchmarks/results/fno_throughput.json",
    )
    parser.add_argument("--progress", action="store_true", help="progress bars and per-epoch lines")
    parser.add_argument("--readme", action="store_true",
                        help="write the table into benchmarks/README.md")
    args = parser.parse_args()
    if args.quick and args.readme:
        parser.error(
            "--readme: a --quick run is a smoke test; its numbers do not go into the README"
        )
    if args.throughput_only and (args.readme or args.no_throughput):
        parser.error(
            "--throughput-only: cannot be combined with --readme (the README section holds "
            "the whole benchmark; the run prints the throughput text) or --no-throughput"
        )

    resolutions = args.resolutions or ([16] if args.quick else [32, 64])
    epochs = args.epochs or (2 if args.quick else PAPER_EPOCHS)
    n_train = args.n_train or (40 if args.quick else 1000)
    n_test = args.n_test or (20 if args.quick else 200)
    steps = args.throughput_steps or (3 if args.quick else 20)
    for name, value in (("epochs", epochs), ("n-train", n_train), ("n-test", n_test),
                        ("batch-size", args.batch_size), ("throughput-steps", steps),
                        ("throughput-repeats", args.throughput_repeats)):
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
    if args.throughput_only:
        run_throughput_only(args, resolutions, n_train, n_test, steps, device, overrides["fno"])
        return
    name = "operators" + ("_quick" if args.quick else "")
    payload: dict[str, Any] = {
        "benchmark": "FNO vs LSM vs MgNO on darcy-pwc",
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
            print(
                f"{resolution}² {model_name}: {run['parameters']:,} parameters, "
                f"{run['median_epoch_seconds']:.2f} s/epoch, test rel L2 "
                f"{run['test']['rel_l2']:.4f}, "
                f"zero-shot {run['zero_shot']['rel_l2']:.4f} at {run['zero_shot']['resolution']}",
                flush=True,
            )
        if not args.no_throughput and payload["throughput"] is None:
            payload["throughput"] = fno_throughput(
                train[0],
                train[1],
                device,
                args.batch_size,
                steps,
                warmup=2 if args.quick else 5,
                repeats=args.throughput_repeats,
                seed=args.seed,
                fno_overrides=overrides["fno"],
            )

    payload["elapsed_seconds"] = time.perf_counter() - started
    path = write_results(name, payload)
    table = _table(payload["runs"])
    recipe = (
        "Adam, lr {lr:g}, weight decay 1e-4, StepLR ×0.5 every {step} epochs, relative L2 loss, "
        "batch {batch}"
    ).format(
        lr=args.lr,
        step=args.step_size or max(1, epochs // SCHEDULE_DIVISIONS),
        batch=args.batch_size,
    )
    if args.recipe == "paper":
        recipe += "; MgNO: OneCycle and relative H1 loss"
    changed = {m: o for m, o in overrides.items() if o and m in args.models}
    text = (
        f"Darcy piecewise-constant (`darcy-pwc`), {n_train} train / {n_test} test, solved on the "
        f"(2s−1)² grid and subsampled to s²; {epochs} epochs for every model (the papers: "
        f"{PAPER_EPOCHS}); {recipe}. Device: {payload['device_name']} ({device}"
        f"{', AMP' if device.type == 'cuda' else ''}), torch {torch.__version__}, "
        f"{payload['torch_threads']} thread(s)."
        + (f" Model settings changed from the defaults: {json.dumps(changed)}." if changed else "")
        + " s/epoch: median training-loop time; zero-shot: the same test samples on the (2s−1)² "
          "grid"
        " (FNO pads 0.1 of the domain, so twice the points there; also shown: the same weights"
        " with the padding frozen at the training grid's point count)."
        f"\n\n{table}\n\n{_throughput_text(payload['throughput'])}"
    )
    print()
    print(text)
    print(f"\nwrote {path}")
    if args.readme:
        update_readme_section(README_MARKER, text)


if __name__ == "__main__":
    main()
