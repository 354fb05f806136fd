"""Reading back what runs wrote: ``metrics.csv`` by column name, ``gradients.csv``, the monitored metric
from ``config.yaml``, and the run directories of a sweep (``trial-*/``). What ``backprop plot`` draws.

Columns are read by name, never by position, so files with more or fewer columns (a run without
validation, a newer version's extra metrics) read the same way; an empty cell is NaN.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config.source import read_config_file, read_yaml
from ..errors import ConfigError, DataError

METRICS_CSV = "metrics.csv"
GRADIENTS_CSV = "gradients.csv"
GRADIENT_COLUMNS = ("epoch", "layer", "parameter", "grad_norm", "update_ratio")

#: Substrings of metric names for which higher is better; every other metric (losses, errors) is minimised.
HIGHER_IS_BETTER = ("accuracy", "f1", "r2", "precision", "recall", "auc")


def higher_is_better(metric: str) -> bool:
    return any(word in metric for word in HIGHER_IS_BETTER)


@dataclass
class RunHistory:
    """One run's ``metrics.csv``: ``columns[name]`` holds a float per epoch (NaN where empty), and the
    metric its best epoch was chosen by (``training.monitor`` and ``mode`` of its ``config.yaml``)."""

    name: str
    path: Path
    columns: dict[str, np.ndarray]
    monitor: str | None = None
    mode: str = "min"
    min_delta: float = 0.0

    @property
    def epochs(self) -> np.ndarray:
        return self.columns["epoch"]

    @property
    def best_epoch(self) -> int | None:
        """The epoch ``best.npz`` was taken from, chosen as the trainer chooses it: the first epoch whose
        monitored value beats the best so far by more than ``min_delta`` (NaN never does)."""
        values = self.columns.get(self.monitor) if self.monitor else None
        if values is None:
            return None
        best, epoch = None, None
        for e, v in zip(self.epochs, values):
            if math.isnan(v):
                continue
            if best is None or (v < best - self.min_delta if self.mode == "min" else v > best + self.min_delta):
                best, epoch = v, int(e)
        return epoch


@dataclass
class GradientHistory:
    """One run's ``gradients.csv``: per parameter (its dotted ``state_dict`` name), the layer it belongs
    to and its gradient norm and update ratio (``|step| / |weight|``) per epoch."""

    path: Path
    layers: dict[str, str] = field(default_factory=dict)
    epochs: dict[str, list[float]] = field(default_factory=dict)
    grad_norm: dict[str, list[float]] = field(default_factory=dict)
    update_ratio: dict[str, list[float]] = field(default_factory=dict)


def _number(text: str, file: Path, line: int, column: str) -> float:
    if text.strip() == "":
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise DataError(f"expected a number, got {text!r}", file=str(file), line=line, where=column) from None


def _rows(path: Path, required: tuple[str, ...]):
    """``(line, row dict)`` of a CSV file with a header holding at least ``required``."""
    if not path.is_file():
        raise DataError("no such file", file=str(path))
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        try:
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError(f"the header lacks {', '.join(missing)} (it has: {', '.join(header) or 'nothing'})",
                                file=str(path), line=1)
            for row in reader:
                yield reader.line_num, row
        except (UnicodeDecodeError, csv.Error) as err:
            raise DataError(f"not a CSV text file ({err})", file=str(path), line=reader.line_num or 1) from None


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """Every column of a ``metrics.csv`` as floats by name (``epoch`` is required)."""
    path = Path(path)
    columns: dict[str, list[float]] = {}
    for line, row in _rows(path, ("epoch",)):
        for name, text in row.items():
            if name is None:
                raise DataError("more cells than the header has columns", file=str(path), line=line)
            columns.setdefault(name, []).append(_number(text or "", path, line, name))
    if not columns:
        raise DataError("no epochs recorded yet", file=str(path), line=2)
    if any(math.isnan(e) for e in columns["epoch"]):
        raise DataError("an epoch number is missing", file=str(path), where="epoch")
    return {name: np.array(values, dtype=np.float64) for name, values in columns.items()}


def _monitor(run_dir: Path) -> tuple[str | None, str, float]:
    """``(training.monitor, training.mode, early_stopping.min_delta)`` from the run's ``config.yaml``,
    read as configs are (:func:`~backprop_cli.config.source.read_config_file`: its size and node limits);
    ``(None, "min", 0)`` when it is missing or unreadable (the best epoch is then not marked)."""
    path = run_dir / "config.yaml"
    try:
        data = read_yaml(read_config_file(path), str(path))[0] if path.is_file() else None
    except ConfigError:
        return None, "min", 0.0
    training = data.get("training") if isinstance(data, dict) else None
    if not isinstance(training, dict):
        return None, "min", 0.0
    monitor, mode = training.get("monitor"), training.get("mode")
    if not isinstance(monitor, str) or monitor == "auto":
        return None, "min", 0.0
    if mode not in ("min", "max"):
        mode = "max" if higher_is_better(monitor) else "min"
    stopping = training.get("early_stopping") or {}
    delta = stopping.get("min_delta", 0.0) if isinstance(stopping, dict) else 0.0
    return monitor, mode, float(delta) if isinstance(delta, (int, float)) else 0.0


def load_history(run_dir: str | Path, name: str | None = None) -> RunHistory:
    """The ``metrics.csv`` and monitored metric of the run in ``run_dir``."""
    run_dir = Path(run_dir)
    monitor, mode, delta = _monitor(run_dir)
    return RunHistory(name or run_dir.name, run_dir, read_metrics(run_dir / METRICS_CSV), monitor, mode, delta)


def run_directories(path: str | Path) -> list[Path]:
    """The runs in ``path``: itself when it holds ``metrics.csv``; every ``trial-*/`` holding one when
    it is a sweep directory (``sweep.csv`` beside ``trial-0000/``, ``trial-0001/``, ...)."""
    path = Path(path)
    if (path / METRICS_CSV).is_file():
        return [path]
    trials = sorted(p.parent for p in path.glob(f"trial-*/{METRICS_CSV}"))
    if trials:
        return trials
    if not path.is_dir():
        raise DataError("no such run directory", file=str(path))
    raise DataError(f"not a run directory: it holds no {METRICS_CSV} (nor trial-*/{METRICS_CSV}, as a sweep "
                    "does); pass the directory backprop train wrote, e.g. runs/<name>", file=str(path))


def load_histories(paths) -> list[RunHistory]:
    """The runs of every path (sweeps expanded into their trials), named so that each name is unique:
    the directory's name, or ``sweep/trial-0003`` for a trial, or more of the path where names clash."""
    dirs = [d for p in paths for d in run_directories(p)]
    names = [d.name if not d.name.startswith("trial-") else f"{d.parent.name}/{d.name}" for d in dirs]
    for i, d in enumerate(dirs):
        if names.count(names[i]) > 1:
            names[i] = str(d)
    return [load_history(d, n) for d, n in zip(dirs, names)]


def read_gradients(run_dir: str | Path) -> GradientHistory:
    """The run's ``gradients.csv`` (columns ``epoch,layer,parameter,grad_norm,update_ratio``)."""
    path = Path(run_dir) / GRADIENTS_CSV
    if not path.is_file():
        raise DataError(f"no {GRADIENTS_CSV}: gradient norms are recorded when the run is trained with "
                        "training.log_gradients: true (or --set training.log_gradients=true)", file=str(run_dir))
    grads = GradientHistory(path)
    for line, row in _rows(path, GRADIENT_COLUMNS):
        name = row["parameter"]
        grads.layers.setdefault(name, row["layer"])
        for column, store in (("epoch", grads.epochs), ("grad_norm", grads.grad_norm),
                              ("update_ratio", grads.update_ratio)):
            store.setdefault(name, []).append(_number(row[column] or "", path, line, column))
    if not grads.layers:
        raise DataError("no gradients recorded yet", file=str(path), line=2)
    return grads
