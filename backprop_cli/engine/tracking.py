"""Training curves in TensorBoard: ``training.tensorboard: true`` writes each epoch's scalars under
``<run dir>/tensorboard/`` (``tensorboard --logdir runs/`` shows every run by its directory).

Each ``metrics.csv`` column is one scalar, at step = the epoch: ``train_loss`` as ``train/loss``,
``val_f1_macro`` as ``val/f1_macro``, ``lr`` as ``lr``, ``seconds`` and ``samples_per_sec`` under ``time/``;
with gradient logging on, each parameter's statistics as ``gradients/<name>/grad_norm`` and
``gradients/<name>/update_ratio``. Needs the ``tensorboard`` extra (tensorboardX).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from ..errors import install_hint
from .trainer import Callback

#: The one line shown when the extra is missing.
MISSING = f"needs tensorboardX: {install_hint('tensorboard')}"
#: Record keys that are not scalars to plot.
NOT_SCALARS = ("epoch", "best", "gradients")


def available() -> bool:
    return importlib.util.find_spec("tensorboardX") is not None


def tag(column: str) -> str:
    """The TensorBoard tag of a ``metrics.csv`` column: ``train_loss`` -> ``train/loss``."""
    for prefix in ("train_", "val_"):
        if column.startswith(prefix):
            return f"{prefix[:-1]}/{column[len(prefix):]}"
    return f"time/{column}" if column in ("seconds", "samples_per_sec") else column


def scalars(record: dict) -> list[tuple[str, float]]:
    """``(tag, value)`` for every number in an epoch's record, and its per-parameter gradient statistics."""
    out = [(tag(k), float(v)) for k, v in record.items()
           if k not in NOT_SCALARS and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    for name, stats in (record.get("gradients") or {}).items():
        out += [(f"gradients/{name}/{stat}", float(v)) for stat, v in stats.items()
                if isinstance(v, (int, float)) and math.isfinite(v)]
    return out


class TensorBoard(Callback):
    """Writes :func:`scalars` of every epoch that ends (a resumed run adds an event file beside the
    first one: TensorBoard reads them as one curve)."""

    def __init__(self, directory: str | Path) -> None:
        from tensorboardX import SummaryWriter

        self.directory = Path(directory)
        self.writer = SummaryWriter(logdir=str(self.directory))

    def on_epoch_end(self, trainer, record):
        for name, value in scalars(record):
            self.writer.add_scalar(name, value, int(record["epoch"]))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
