"""The logs of a run: ``metrics.csv``, ``metrics.json`` and the one-line epoch summary."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from pdesuite.operators.training.checkpoint import atomic_write_bytes, json_default

__all__ = ["METRICS_CSV", "METRICS_JSON", "METRIC_COLUMNS", "epoch_summary", "write_metrics"]

METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
#: Columns of metrics.csv, in order (and the keys of each entry of ``Trainer.history``).
#: Validation columns are empty on epochs without evaluation; times are in seconds.
METRIC_COLUMNS = ("epoch", "train_loss", "val_rel_l2", "val_h1", "lr", "skipped_batches",
                  "samples", "epoch_time_s")


def write_metrics(
    out_dir: Path, history: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]
) -> None:
    """Write ``metrics.csv`` (one row per epoch of ``history``) and ``metrics.json``
    (``columns``, ``epochs`` = ``history``, then ``summary``'s keys), both atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow(
            {key: "" if record.get(key) is None else record[key] for key in METRIC_COLUMNS}
        )
    atomic_write_bytes(out_dir / METRICS_CSV, text.getvalue().encode())
    payload = {"columns": list(METRIC_COLUMNS), "epochs": list(history), **summary}
    atomic_write_bytes(out_dir / METRICS_JSON,
                       json.dumps(payload, indent=2, default=json_default, allow_nan=True).encode())


def epoch_summary(record: Mapping[str, Any], epochs: int) -> str:
    """``epoch 3/10  train_loss 0.123  val_rel_l2 0.1  lr 0.001  1.20 s`` for one history entry."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"train_loss {record['train_loss']:.4g}"]
    if record["val_rel_l2"] is not None:
        parts.append(f"val_rel_l2 {record['val_rel_l2']:.4g}")
    parts += [f"lr {record['lr']:.3g}", f"{record['epoch_time_s']:.2f} s"]
    if record["skipped_batches"]:
        parts.append(f"{record['skipped_batches']} batches skipped")
    return "  ".join(parts)
