"""PNG, SVG and PDF pictures with matplotlib (the optional ``plot`` extra): learning curves and gradient
flow from a :class:`~.curves.Curves`, and a confusion matrix heatmap. Figures are made with
``matplotlib.figure.Figure``, not pyplot: no display, no global state, nothing to close.

Every curve is a ``Line2D`` whose ``gid`` is ``"name|metric"`` (its best-epoch marker ``"best|name|metric"``),
so a test reads the plotted numbers back from the figure instead of comparing pixels.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from ..engine.checkpoint import atomic_write
from ..errors import BackpropError, install_hint
from .curves import Curves, gradient_curves, learning_curves, parse_metrics

FORMATS = (".png", ".svg", ".pdf")
DPI = 100
PANEL_INCHES = (4.8, 3.6)          # width, height of one panel
STYLES = ("-", "--", ":", "-.")    # within a panel, one line style per metric


def plot_curves(paths: list[str | Path], metrics: list[str] | None = None, *, gradients: bool = False,
                out: str | Path | None = None) -> tuple[Curves, Path | None]:
    """The learning curves of the runs in ``paths`` (``metrics`` as given to ``--metric``), or the
    gradient flow of one run; with ``out``, also drawn to that picture (the path returned)."""
    if out is not None:
        require_picture(out)
    curves = gradient_curves(paths) if gradients else learning_curves(paths, parse_metrics(metrics))
    return curves, None if out is None else save(curves_figure(curves), out)


def write_confusion(result: dict, path: str | Path) -> Path:
    """The confusion matrix of an ``eval`` result (:func:`~backprop_cli.engine.experiment.score`) as a
    picture; an error for a model that is not a classifier."""
    if "confusion_matrix" not in result:
        raise BackpropError("a confusion matrix needs a classifier; this checkpoint's model is not one", where="--plot")
    accuracy = result["metrics"].get("accuracy")
    title = (f"{result['checkpoint']} (epoch {result['epoch']}): "
             + (f"accuracy {100 * accuracy:.2f}% of " if accuracy is not None else "") + f"{result['samples']} samples")
    return save(confusion_figure(result["confusion_matrix"], result["classes"], title), path)


def check_out(path: str | Path, flag: str = "--out") -> Path:
    """The picture's file name must say its format; checked before any work is done."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise BackpropError(f"expected a file name ending in {', '.join(FORMATS)}, got {str(path)!r}", where=flag)
    if path.is_dir():
        raise BackpropError(f"{path} is a directory; expected a file name", where=flag)
    return path


def require_picture(path: str | Path, flag: str = "--out") -> Path:
    """:func:`check_out`, and matplotlib importable: said before any work is done."""
    path = check_out(path, flag)
    matplotlib()
    return path


def matplotlib():
    """The matplotlib module, or one clear error naming the extra that brings it."""
    try:
        import matplotlib
    except ImportError:
        raise BackpropError(f"pictures need matplotlib, which the plot extra installs: {install_hint('plot')}") from None
    return matplotlib


def figure(width: float, height: float):
    """An empty figure of ``width`` x ``height`` inches whose layout keeps titles and legends inside."""
    matplotlib()
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout="constrained")


def save(fig, path: str | Path) -> Path:
    """Write the figure in the format of ``path``'s suffix, atomically."""
    path = check_out(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lower().lstrip("."), dpi=DPI, metadata=_metadata(path))
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path


def _metadata(path: Path) -> dict:
    """No creation date or software version in the file: the same data gives the same bytes."""
    suffix = path.suffix.lower()
    return {"Software": None} if suffix == ".png" else {"Date": None} if suffix == ".svg" else {"CreationDate": None}


def _colors(keys: list[str]) -> dict[str, str]:
    cmap = matplotlib().colormaps["tab10" if len(keys) <= 10 else "tab20"]
    return {key: cmap(i % cmap.N) for i, key in enumerate(keys)}


def curves_figure(curves: Curves):
    """One panel per :class:`~.curves.Panel` (three to a row), a legend in each, the best epochs marked."""
    n = len(curves.panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = figure(PANEL_INCHES[0] * cols, PANEL_INCHES[1] * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    from matplotlib.lines import Line2D
    colors = _colors(curves.color_keys)
    several = len(curves.names) > 1
    for ax, panel in zip(axes.flat, curves.panels):
        styles = {m: STYLES[i % len(STYLES)] for i, m in enumerate(panel.metrics)}
        for s in panel.series:
            color = colors[curves.color_key(s)]
            few = len(s.x) <= 25
            ax.plot(s.x, s.y, styles[s.metric], color=color, lw=1.6, marker="o" if few else None, ms=2.5,
                    gid=f"{s.name}|{s.metric}")
            if s.best_value is not None:
                ax.plot([s.best], [s.best_value], "*", color=color, ms=12, mec="black", mew=0.6,
                        gid=f"best|{s.name}|{s.metric}", zorder=3)
        if panel.log:
            _log_axis(ax)
        ax.set_title(panel.title + (" (log scale)" if panel.log else ""), fontsize=11)
        ax.set_xlabel("epoch")
        ax.grid(True, which="major", alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        handles = []        # the metrics' line styles (or colours, for one run), and the star
        if not several or len(panel.metrics) > 1:
            handles += [Line2D([], [], ls=styles[m], lw=1.6, color="0.35" if several else colors[m], label=m)
                        for m in panel.metrics]
        if any(s.best_value is not None for s in panel.series):
            handles.append(Line2D([], [], ls="", marker="*", ms=11, color="0.6", mec="black", mew=0.6,
                                  label=f"best epoch ({curves.best_by})"))
        if handles:
            ax.legend(handles=handles, fontsize=8, framealpha=0.8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if several:             # the runs' colours once, under the panels
        fig.legend(handles=[Line2D([], [], color=colors[name], lw=2, label=name) for name in curves.names],
                   loc="outside lower center", ncol=min(len(curves.names), 4), fontsize=8, frameon=False)
    fig.suptitle(curves.title, fontsize=12)
    return fig


def _log_axis(ax) -> None:
    """A log y axis labelled at 1, 2 and 5 times each power of ten, as plain numbers (0.05, not 5e-2)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    low, high = ax.get_ylim()
    subs = (1.0, 2.0, 5.0) if high / low < 1e3 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def confusion_figure(matrix: list[list[int]], classes: list[str], title: str):
    """Rows true classes, columns predicted; the count in every cell, the colour by row share (recall)."""
    import numpy as np

    counts = np.asarray(matrix)
    k = len(classes)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    side = min(max(3.2, 0.45 * k + 1.8), 12.0)
    fig = figure(side + 0.8, side)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=45 if max(map(len, map(str, classes))) > 3 else 0)
    ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    size = 9 if k <= 12 else 7 if k <= 25 else 5
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=size,
                    color="white" if share[i, j] > 0.5 else "black", gid=f"count|{i}|{j}")
    ax.set_title(title, fontsize=11)
    return fig
