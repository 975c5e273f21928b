"""A training's history: one row per epoch, as the trainer reports it, history.json stores it and the charts draw it.

The row's keys are the contract between the trainer (core.training.EpochProgress.to_dict), the job queue's progress,
the registry and every reader (charts, notes, the command line), so they are typed here, in a module light enough for
the registry and the pages to import without TensorFlow; `history_from_json` checks a stored one.
"""

from typing import TypedDict


class _EveryEpoch(TypedDict):
    """The keys every row has."""

    epoch: int
    epochs: int  # the epochs asked for (early stopping can end sooner)
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    eta_seconds: float  # the time left, estimated after this epoch


class EpochRow(_EveryEpoch, total=False):
    """One epoch: its number (from 1), the training and validation loss and accuracy after it, and its time."""

    phase: int  # two-phase fine-tuning only: 1 trains the head alone, 2 the head and the base's top layers


History = list[EpochRow]

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def history_from_json(data) -> History:
    """The rows of a stored history (history.json, an export's note) that hold every metric as a number (NaN too: a
    training that diverged), in order; others are left out, so a damaged file draws fewer points, never a crash."""
    if not isinstance(data, list):
        return []
    return [row for row in data if isinstance(row, dict) and isinstance(row.get("epoch"), int)
            and all(isinstance(row.get(name), (int, float)) for name in METRICS)]
