"""FNO zero-shot super-resolution on neuraloperator's own Darcy sets: ours against neuraloperator's.

Data. The Darcy sets that ship inside the neuraloperator 0.3.0 wheel (``neuralop/datasets/data/``;
later releases no longer ship them): ``darcy_train_16.pt`` (1000 samples, 16²),
``darcy_test_16.pt`` and ``darcy_test_32.pt`` (50 each). The wheel is fetched with
``pip download --no-deps`` (never installed) and the three files are kept under
``out/bench_fno_superres/data/`` (git-ignored; ``--data-dir``). They are read with
:func:`pdesuite.datasets.readers.read_neuraloperator_pt`; their grid is inferred with
:func:`~pdesuite.datasets.readers.infer_grid_convention`: ``"cell"``, points ``i / n`` (the
solutions vanish at the first row and column but not at the last).

Models, built from the same seed with the same size:

* ``ours``: :class:`pdesuite.operators.FNO` with ``grid_convention="cell"`` and its default
  padding: a tenth of the domain in whole points of the first (training) grid, 2 of 16, kept as
  the fraction 1/8 (4 points at 32²: the padded period is 1.125 domains at both);
* ``ours, node + rounded pad``: the same model with the node-grid coordinates
  ``linspace(0, 1, n)`` and, at 32², the pad that rounding a tenth of the domain gave (2 points
  at 16², 3 at 32²; the padded period 18/16 against 35/32 of the domain): what the FNO did
  before it knew the grid convention. The same weights at 32² with 4 points are reported too;
* ``neuraloperator``: ``neuralop.models.FNO`` (neuraloperator 2.0.0, ``make bench-deps``, taken
  from ``.bench-deps/``) with the same architecture and parameter count: modes mapped to its
  whole-spectrum count, one linear lift, the same projection, a 1x1 skip, no channel MLP, its
  default grid embedding (``[0, 1]``, points ``i / n``) and ``domain_padding`` 1/16 per side
  (its padding is symmetric and scales with the resolution: 1 + 1 points at 16², 2 + 2 at 32²).

Training: one plain loop for all (``--epochs`` 15 at 16², Adam lr 1e-3, weight decay 1e-4,
cosine decay to zero over the run, batch 20, relative L2 loss, raw data, the same shuffled
batches from a seeded generator). Reported: test relative L2 (mean over samples) at 16² and
zero-shot at 32², parameters, the padded grid each FFT runs on, and training seconds.

    python benchmarks/bench_fno_superres.py [--epochs 15] [--seed 0] [--modes 8] [--width 32]
        [--threads 2] [--data-dir out/bench_fno_superres/data]

Writes benchmarks/results/fno_superres.json and prints a Markdown table. CPU only.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# before NumPy loads (inside the functions): _common pins the BLAS threads
from _common import ROOT, load_average, markdown_table, write_results

# the padded grid a model's FFTs run on, measured, and the parameter count of either model
from bench_operators import _parameter_count as parameter_count
from bench_operators import _spectral_grid as fft_grid

#: The neuraloperator release whose wheel holds the data, and the one compared against.
DATA_WHEEL_VERSION = "0.3.0"
NEURALOP_VERSION = "2.0.0"
DATA_FILES = ("darcy_train_16.pt", "darcy_test_16.pt", "darcy_test_32.pt")
DEFAULT_DATA_DIR = ROOT / "out" / "bench_fno_superres" / "data"
BENCH_DEPS = ROOT / ".bench-deps"
PADDING = 0.125  # of the domain, as ours pads it here: 2 points at 16 cells, 4 at 32


# ------------------------------------------------------------------------------------ data
def fetch_data(data_dir: Path) -> dict[str, str]:
    """The three Darcy files in ``data_dir``, fetched from the 0.3.0 wheel when missing.

    Returns ``{file name: sha256}``.
    """
    missing = [name for name in DATA_FILES if not (data_dir / name).is_file()]
    if missing:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            f"neuraloperator=={DATA_WHEEL_VERSION}", "-d", scratch], check=True)
            wheel = next(Path(scratch).glob("neuraloperator-*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                for name in missing:
                    (data_dir / name).write_bytes(archive.read(f"neuralop/datasets/data/{name}"))
    return {name: hashlib.sha256((data_dir / name).read_bytes()).hexdigest() for name in DATA_FILES}


def load(data_dir: Path, name: str):
    """``(inputs, outputs, convention)``: float32 tensors ``[n, 1, s, s]`` and the inferred grid."""
    import torch

    from pdesuite.datasets.readers import infer_grid_convention, read_neuraloperator_pt

    inputs, outputs = read_neuraloperator_pt(data_dir / name)
    return torch.from_numpy(inputs), torch.from_numpy(outputs), infer_grid_convention(outputs, 2)


# ---------------------------------------------------------------------------------- models
def ours(config: dict[str, Any], **changes: Any):
    from pdesuite.operators import build_model

    return build_model("fno", in_channels=1, out_channels=1, ndim=2, **{**config, **changes})


def neuralop_fno(config: dict[str, Any]):
    """neuraloperator's FNO with the architecture of ours (see the module docstring)."""
    if BENCH_DEPS.is_dir() and str(BENCH_DEPS) not in sys.path:
        sys.path.append(str(BENCH_DEPS))  # last: it can never shadow the venv's torch
    from neuralop.models import FNO as NeuralopFNO

    m, width = config["modes"], config["width"]
    # ours keeps -m .. m-1 on the first axis and 0 .. m-1 of the real FFT on the last;
    # neuraloperator counts the whole spectrum and keeps n // 2 + 1 on the last axis
    return NeuralopFNO(n_modes=(2 * m, 2 * (m - 1)), in_channels=1, out_channels=1,
                       hidden_channels=width, n_layers=config["layers"], lifting_channel_ratio=0,
                       projection_channel_ratio=config["projection_width"] / width,
                       use_channel_mlp=False, fno_skip="linear", norm=None,
                       domain_padding=PADDING / 2, fno_block_precision="full", factorization=None)


# -------------------------------------------------------------------------------- training
def train(model, inputs, outputs, epochs: int, batch_size: int, seed: int) -> float:
    """The plain loop of the module docstring; returns the training seconds."""
    import torch

    from pdesuite.operators.losses import LpLoss

    relative_l2 = LpLoss(2, relative=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    steps = epochs * (inputs.shape[0] // batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    order = torch.Generator().manual_seed(seed)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        permutation = torch.randperm(inputs.shape[0], generator=order)
        for first in range(0, inputs.shape[0] - batch_size + 1, batch_size):
            batch = permutation[first:first + batch_size]
            loss = relative_l2(model(inputs[batch]), outputs[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return time.perf_counter() - start


def evaluate(model, inputs, outputs) -> float:
    """Relative L2 error, the mean over the samples."""
    import torch

    from pdesuite.operators.losses import LpLoss

    model.eval()
    with torch.no_grad():
        return float(LpLoss(2, relative=True)(model(inputs), outputs))


def run_model(label: str, build: Callable[[], Any], data: dict[str, Any],
              args) -> tuple[dict[str, Any], Any]:
    """Build (seeded), train at 16² and evaluate at 16² and 32²: ``(row, model)``."""
    import torch

    torch.manual_seed(args.seed)
    model = build()
    x16, y16 = data["train"]
    seconds = train(model, x16, y16, args.epochs, args.batch_size, args.seed)
    row = {"label": label, "parameters": parameter_count(model), "train_seconds": seconds}
    for key in ("test_16", "test_32"):
        x, y = data[key]
        row[key] = {"rel_l2": evaluate(model, x, y), "fft_grid": fft_grid(model, x[:1])}
    return row, model


def report(row: dict[str, Any]) -> None:
    coarse, fine = row["test_16"]["rel_l2"], row["test_32"]["rel_l2"]
    print(f"  {row['label']}: 16² {coarse:.4f}, 32² {fine:.4f} ({row['train_seconds']:.0f} s)",
          flush=True)


def results_table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table of the rows that :func:`run_model` returns."""
    return markdown_table(
        ["model", "parameters", "FFT grid 16² / 32²", "rel. L2 at 16²", "zero-shot rel. L2 at 32²",
         "train s"],
        [[r["label"], f"{r['parameters']:,}",
          f"{r['test_16']['fft_grid'][0]} / {r['test_32']['fft_grid'][0]}",
          f"{r['test_16']['rel_l2']:.4f}", f"{r['test_32']['rel_l2']:.4f}",
          round(r["train_seconds"])]
         for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", type=int, default=8)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    hashes = fetch_data(args.data_dir)
    data, conventions = {}, {}
    for key, name in zip(("train", "test_16", "test_32"), DATA_FILES):
        x, y, conventions[key] = load(args.data_dir, name)
        data[key] = (x, y)
    if set(conventions.values()) != {"cell"}:
        raise RuntimeError(f"expected the cell convention for neuraloperator's Darcy data, got "
                           f"{conventions}")
    config = {"modes": args.modes, "width": args.width, "layers": 4, "projection_width": 128}
    print(f"FNO on neuraloperator's Darcy 16² (train {data['train'][0].shape[0]}, "
          f"{args.epochs} epochs), "
          f"zero-shot at 32²", flush=True)
    load_before = load_average()

    rows = []
    row, model = run_model("ours", lambda: ours({**config, "grid_convention": "cell"}), data, args)
    row["padding_reference"] = model.padding_reference.tolist()  # the fraction fixed at 16²
    if row["padding_reference"] != [[1, 8], [1, 8]]:
        raise RuntimeError(f"ours fixed the padding {row['padding_reference']}, not 1/8 (PADDING)")
    report(row)
    rows.append(row)
    # before the grid convention: node coordinates, and a tenth of the domain rounded per grid
    row, before = run_model("ours, node + rounded pad", lambda: ours({**config, "padding": 2}),
                            data, args)
    rounded = ours({**config, "padding": 3})
    rounded.load_state_dict(before.state_dict())
    row["test_32"] = {"rel_l2": evaluate(rounded, *data["test_32"]),
                      "fft_grid": fft_grid(rounded, data["test_32"][0][:1])}
    exact = ours({**config, "padding": 4})
    exact.load_state_dict(before.state_dict())
    row["test_32_pad_4"] = {"rel_l2": evaluate(exact, *data["test_32"]),
                            "fft_grid": fft_grid(exact, data["test_32"][0][:1])}
    report(row)
    rows.append(row)
    try:
        import_error = None
        row, _ = run_model("neuraloperator", lambda: neuralop_fno(config), data, args)
        report(row)
        rows.append(row)
    except ImportError as error:
        import_error = (f"neuraloperator is not importable ({error}); `make bench-deps` installs "
                        f"it into .bench-deps/")
        print(f"  skipped neuraloperator: {import_error}")
    if len({r["parameters"] for r in rows}) != 1:
        counts = [(r["label"], r["parameters"]) for r in rows]
        raise RuntimeError(f"parameter counts differ: {counts}")

    table = results_table(rows)
    print("\n" + table)
    if "test_32_pad_4" in rows[1]:
        print(f"\n(the node + rounded pad weights at 32² with 4 points of padding: "
              f"{rows[1]['test_32_pad_4']['rel_l2']:.3g})")
    neuralop = {"version": NEURALOP_VERSION, "path": str(BENCH_DEPS)}
    if import_error:
        neuralop["skipped"] = import_error
    else:
        import neuralop as neuralop_module

        neuralop["version"] = getattr(neuralop_module, "__version__", "unknown")
    path = write_results("fno_superres", {
        "data": {"source": f"neuraloperator {DATA_WHEEL_VERSION} wheel, neuralop/datasets/data/",
                 "sha256": hashes, "grid_convention": conventions,
                 "sizes": {key: list(value[0].shape) for key, value in data.items()}},
        "model_config": config, "padding_fraction": PADDING, "neuraloperator": neuralop,
        "training": {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
                     "optimizer": "Adam, lr 1e-3, weight decay 1e-4, cosine decay to 0",
                     "loss": "relative L2", "torch_threads": torch.get_num_threads()},
        "load_average_before": load_before, "load_average_after": load_average(),
        "rows": rows, "table": table,
    })
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
