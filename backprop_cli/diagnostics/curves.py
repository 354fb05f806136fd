"""What ``backprop plot`` draws, independent of how it is drawn: panels of curves over epochs.

:func:`learning_curves` turns the ``metrics.csv`` of one or more runs (a sweep counts as its trials)
into panels: every ``*loss`` metric in one panel (train and validation loss side by side), every other
metric in its own. :func:`gradient_curves` does the same for a run's ``gradients.csv``: the gradient
norm and the update ratio of each parameter. The matplotlib figure (:mod:`.figures`) and the terminal
chart (:mod:`.termplot`) both draw a :class:`Curves`, so the two show the same data.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.history import RunHistory, higher_is_better, load_histories, read_gradients, run_directories
from ..errors import BackpropError, DataError

#: Plotted when no ``--metric`` is given, those that the runs have.
DEFAULT_METRICS = ("train_loss", "val_loss", "val_accuracy", "val_mae")
#: Columns of ``metrics.csv`` that are bookkeeping, not curves worth a default panel.
NOT_METRICS = ("epoch",)


@dataclass
class Series:
    """One curve: ``metric`` of ``name`` (a run, or a parameter) at epochs ``x``; ``best`` is the epoch
    marked as the best (where ``best.npz`` comes from), or None."""

    name: str
    metric: str
    x: np.ndarray
    y: np.ndarray
    best: int | None = None

    @property
    def best_value(self) -> float | None:
        if self.best is None:
            return None
        hit = np.flatnonzero(self.x == self.best)
        return float(self.y[hit[0]]) if hit.size and math.isfinite(self.y[hit[0]]) else None


@dataclass
class Panel:
    """Curves that share a y axis; ``log`` when they are minimised and positive and span a decade or more."""

    title: str
    series: list[Series]
    log: bool = False

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(s.metric for s in self.series))


@dataclass
class Curves:
    """Panels to draw, the figure's title, and one line per thing worth saying about the data (a run
    without a column, NaN epochs), which the CLI prints."""

    title: str
    panels: list[Panel]
    notes: list[str] = field(default_factory=list)
    best_by: str | None = None          # the monitored metric(s) the best epochs were chosen by

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(s.name for p in self.panels for s in p.series))

    def color_key(self, series: Series) -> str:
        """Colours tell runs (or parameters) apart; with a single one they tell the metrics apart."""
        return series.name if len(self.names) > 1 else series.metric

    @property
    def color_keys(self) -> list[str]:
        return list(dict.fromkeys(self.color_key(s) for p in self.panels for s in p.series))


def spans_decades(metric: str, values: np.ndarray) -> bool:
    """Whether a log axis reads better: a minimised metric, all positive, max/min of at least 10."""
    finite = values[np.isfinite(values)]
    return (not higher_is_better(metric) and finite.size > 1 and bool(np.all(finite > 0))
            and finite.max() >= 10 * finite.min())


def parse_metrics(items: list[str] | None) -> list[str] | None:
    """``["train_loss,val_loss", "lr"]`` -> ``["train_loss", "val_loss", "lr"]``; None for the default."""
    if not items:
        return None
    names = [name.strip() for item in items for name in item.split(",") if name.strip()]
    return list(dict.fromkeys(names)) or None


def _names(names, limit: int = 8) -> str:
    """``a, b, c`` for a few names; the first ``limit`` and how many more for a long list."""
    names = list(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _series(run: RunHistory, metric: str, notes: list[str]) -> Series | None:
    """The run's curve of ``metric``, or None (with a note saying why) when it has none to draw."""
    if metric not in run.columns:
        notes.append(f"{run.name}: no {metric} column (it has {_names(c for c in run.columns if c != 'epoch')})")
        return None
    values = run.columns[metric]
    missing = ~np.isfinite(values)
    if missing.all():
        notes.append(f"{run.name}: {metric} is empty or not finite in every epoch; nothing to draw")
        return None
    if missing.any():
        notes.append(f"{run.name}: {metric} is empty or not finite at epoch {_names((str(int(e)) for e in run.epochs[missing]), 5)}; "
                     "the curve has gaps there")
    return Series(run.name, metric, run.epochs, values, run.best_epoch)


def _choose_metrics(runs: list[RunHistory], wanted: list[str] | None) -> list[str]:
    available = list(dict.fromkeys(c for run in runs for c in run.columns if c not in NOT_METRICS))
    if wanted is None:
        return [m for m in DEFAULT_METRICS if m in available] or available[:1]
    unknown = [m for m in wanted if m not in available]
    if unknown:
        hints = [f"did you mean {close[0]}?" for m in unknown for close in [difflib.get_close_matches(m, available, 1)]
                 if close]
        raise BackpropError(f"no run has {', '.join(unknown)}; the columns are {', '.join(available)}"
                            + (f"; {' '.join(hints)}" if hints else ""), where="--metric")
    return wanted


def _panels(series: list[Series]) -> list[Panel]:
    """Every ``*loss`` curve in one panel, every other metric in its own, in the order first seen."""
    groups: dict[str, list[Series]] = {}
    for s in series:
        groups.setdefault("loss" if s.metric.endswith("loss") else s.metric, []).append(s)
    return [Panel(title, members, log=spans_decades(members[0].metric, np.concatenate([s.y for s in members])))
            for title, members in groups.items()]


def learning_curves(paths: list[str | Path], metrics: list[str] | None = None) -> Curves:
    """The chosen metrics (default: :data:`DEFAULT_METRICS` that exist) of every run in ``paths``."""
    runs = load_histories(paths)
    notes: list[str] = []
    chosen = _choose_metrics(runs, metrics)          # a default metric is drawn only for the runs that have it
    pairs = [(run, m) for m in chosen for run in runs if metrics is not None or m in run.columns]
    series = [s for run, m in pairs for s in [_series(run, m, notes)] if s is not None]
    if not series:
        raise DataError("nothing to plot: " + "; ".join(notes), file=str(paths[0]))
    monitors = list(dict.fromkeys(run.monitor for run in runs if run.best_epoch is not None))
    unmarked = [run.name for run in runs if run.best_epoch is None]
    if unmarked:
        notes.append(f"{', '.join(unmarked)}: no best epoch marked (no training.monitor in config.yaml, "
                     "or its column is empty)")
    if len(runs) == 1:
        run, best = runs[0], runs[0].best_epoch
        value = run.columns[run.monitor][run.epochs == best][0] if best is not None else None
        title = run.name + (f": best {run.monitor} {value:.4g} at epoch {best}" if best is not None else "")
    else:
        title = f"{len(runs)} runs" + (f" of {Path(paths[0]).name}" if len(paths) == 1 else "")
    return Curves(title, _panels(series), notes, ", ".join(monitors) or None)


def gradient_curves(paths: list[str | Path]) -> Curves:
    """Each parameter's gradient norm and update ratio over epochs, from one run's ``gradients.csv``."""
    dirs = [d for p in paths for d in run_directories(p)]
    if len(dirs) != 1:
        raise BackpropError(f"plots the gradients of one run; got {len(dirs)} runs: pass one, e.g. {dirs[0]}",
                            where="--gradients")
    grads = read_gradients(dirs[0])
    notes: list[str] = []
    panels = []
    for metric, title, values in (("grad_norm", "gradient norm", grads.grad_norm),
                                  ("update_ratio", "update ratio |step| / |weight|", grads.update_ratio)):
        series = []
        for name, layer in grads.layers.items():
            label = f"{layer} {name.rsplit('.', 1)[-1]}"
            y = np.array(values[name], dtype=np.float64)
            if np.isfinite(y).any():
                series.append(Series(label, metric, np.array(grads.epochs[name]), y))
            else:
                notes.append(f"{label}: {metric} is empty in every epoch; nothing to draw")
        if series:
            panels.append(Panel(title, series, log=spans_decades(metric, np.concatenate([s.y for s in series]))))
    if not panels:
        raise DataError("nothing to plot: " + "; ".join(notes), file=str(grads.path))
    return Curves(f"{dirs[0].name}: gradient flow ({len(grads.layers)} parameters)", panels, notes)
