"""Training, evaluation, checkpoints and exact resume for grid operators on ``[B, C, *spatial]``.

One job per module:

- :mod:`.config`: ``TrainConfig``, every setting of a run, validated.
- :mod:`.data`: accepted data forms, ``(input, target)`` pairs, resumable batching.
- :mod:`.optim`: the loss, optimiser and schedule of a config.
- :mod:`.distributed`: the device, the DDP process group and collectives, Ctrl-C deferral.
- :mod:`.checkpoint`: checkpoint files, model matching, RNG capture and restore.
- :mod:`.inference`: ``predict``/``evaluate`` in data units; ``TrainedModel``, ``load_trained``.
- :mod:`.logs`: ``metrics.csv``, ``metrics.json`` and the epoch summary line.
- :mod:`.figure`: ``predictions.png``.
- :mod:`.datafiles`: splits of a dataset file, subsampled; domain lengths from its grid.
- :mod:`.trainer`: ``Trainer``, which drives the others.
"""

from pdesuite.operators.training.checkpoint import BEST_NAME, CHECKPOINT_NAME, load_checkpoint
from pdesuite.operators.training.config import RESUME_OVERRIDES, TrainConfig
from pdesuite.operators.training.data import NonFiniteBatchWarning
from pdesuite.operators.training.distributed import select_device
from pdesuite.operators.training.figure import PREDICTIONS_PNG, plot_predictions
from pdesuite.operators.training.inference import TrainedModel, load_trained
from pdesuite.operators.training.logs import METRIC_COLUMNS, METRICS_CSV, METRICS_JSON
from pdesuite.operators.training.trainer import Trainer

__all__ = [
    "BEST_NAME",
    "CHECKPOINT_NAME",
    "METRICS_CSV",
    "METRICS_JSON",
    "METRIC_COLUMNS",
    "PREDICTIONS_PNG",
    "RESUME_OVERRIDES",
    "NonFiniteBatchWarning",
    "TrainConfig",
    "TrainedModel",
    "Trainer",
    "load_checkpoint",
    "load_trained",
    "plot_predictions",
    "select_device",
]
