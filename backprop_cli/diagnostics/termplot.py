"""Curves in the terminal with rich alone: Unicode braille gives each character cell 2 x 4 dots, so an
80-column chart is ~140 dots wide. Also the one-line sparkline ``train`` prints at its end.

A chart of a :class:`~.curves.Panel`, with ``W`` the plotting width in dots and ``H`` its height::

    column = round((x - x_min) / (x_max - x_min) * (W - 1))
    row    = round((y_max - y) / (y_max - y_min) * (H - 1))      (of log10 y on a log axis)

Consecutive points are joined by straight lines; NaN leaves a gap. The best epoch is a ``*`` over the
curve, in the curve's colour.
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text

from .curves import Curves, Panel

#: The colours of the curves, in order (rich's standard names: they read on dark and light terminals).
PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")
#: Braille dot bits, indexed [row][column] within a cell (U+2800 + the sum of the bits set).
DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
BLOCKS = "▁▂▃▄▅▆▇█"


class Canvas:
    """A grid of ``cols`` x ``rows`` cells, each 2 x 4 braille dots, with a colour per cell (the last
    curve drawn through it) and characters that may be put over the dots."""

    def __init__(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.bits = np.zeros((rows, cols), dtype=np.int32)
        self.style: list[list[str | None]] = [[None] * cols for _ in range(rows)]
        self.marks: dict[tuple[int, int], tuple[str, str]] = {}

    @property
    def width(self) -> int:
        return 2 * self.cols

    @property
    def height(self) -> int:
        return 4 * self.rows

    def dot(self, x: int, y: int, style: str) -> None:
        """Set the dot in column ``x`` (0 left), row ``y`` (0 top) of the dot grid."""
        if 0 <= x < self.width and 0 <= y < self.height:
            self.bits[y // 4, x // 2] |= DOTS[y % 4][x % 2]
            self.style[y // 4][x // 2] = style

    def line(self, x0: int, y0: int, x1: int, y1: int, style: str) -> None:
        """The dots of a straight line from (x0, y0) to (x1, y1), both ends included."""
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            self.dot(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps), style)

    def mark(self, x: int, y: int, char: str, style: str) -> None:
        """Put ``char`` over the cell holding dot (x, y)."""
        if 0 <= x < self.width and 0 <= y < self.height:
            self.marks[(y // 4, x // 2)] = (char, style)

    def row_text(self, r: int) -> Text:
        text = Text()
        for c in range(self.cols):
            if (r, c) in self.marks:
                char, style = self.marks[(r, c)]
                text.append(char, style=f"bold {style}")
            else:
                text.append(chr(0x2800 + int(self.bits[r, c])) if self.bits[r, c] else " ", style=self.style[r][c])
        return text


def nice_ticks(low: float, high: float, count: int = 4, integer: bool = False) -> list[float]:
    """Round numbers from ``low`` to ``high``, 1, 2, 2.5 or 5 times a power of ten apart (whole numbers
    only with ``integer``): the widest such step that still gives ``count - 2`` ticks (at least 2)."""
    if not high > low:
        return [low]
    power = 10 ** math.floor(math.log10((high - low) / max(count - 1, 1)))
    steps = [m * power for m in (10, 5, 2.5, 2, 1)]
    if integer:
        steps = [step for step in steps if step >= 1 and step == int(step)] or [1]
    for step in steps:
        first = math.ceil(low / step - 1e-9) * step
        ticks = [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]
        if len(ticks) >= max(2, count - 2):
            break
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten between ``low`` and ``high`` (positive), with 2 and 5 times them when the range
    holds fewer than three powers."""
    powers = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    ticks = [10.0 ** p for p in powers if low <= 10.0 ** p <= high * (1 + 1e-9)]
    if len(ticks) < 3:
        ticks = sorted(m * 10.0 ** p for p in powers for m in (1, 2, 5) if low <= m * 10.0 ** p <= high * (1 + 1e-9))
    return ticks


def _label(value: float) -> str:
    return f"{value:.3g}"


def _y_range(panel: Panel) -> tuple[float, float]:
    values = np.concatenate([s.y[np.isfinite(s.y)] for s in panel.series])
    low, high = float(values.min()), float(values.max())
    if panel.log:
        return low, high
    if high == low:
        pad = abs(low) * 0.05 or 0.5
        return low - pad, high + pad
    return low, high


def chart(panel: Panel, colors: dict, key, width: int = 80, height: int = 10) -> list[Text]:
    """The panel drawn in ``width`` columns: a title, ``height`` rows of curves with y ticks on the left,
    the epoch axis with its ticks. ``colors[key(series)]`` is each curve's colour."""
    low, high = _y_range(panel)
    forward = np.log10 if panel.log else (lambda v: v)
    y_lo, y_hi = float(forward(low)), float(forward(high))
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    yticks = log_ticks(low, high) if panel.log else nice_ticks(low, high)
    margin = max(len(_label(t)) for t in yticks) + 1
    canvas = Canvas(max(width - margin - 1, 10), height)
    xs = np.concatenate([s.x for s in panel.series])
    x_lo, x_hi = float(xs.min()), float(xs.max())
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    col = lambda x: round((x - x_lo) / (x_hi - x_lo) * (canvas.width - 1))
    row = lambda y: round((y_hi - float(forward(y))) / (y_hi - y_lo) * (canvas.height - 1))
    for s in panel.series:
        points = [(col(x), row(y)) if math.isfinite(y) and (y > 0 or not panel.log) else None for x, y in zip(s.x, s.y)]
        _draw(canvas, points, colors[key(s)])
        if s.best_value is not None:
            canvas.mark(col(s.best), row(s.best_value), "*", colors[key(s)])
    ticks_at = {min(canvas.rows - 1, row(t) // 4): _label(t) for t in yticks}
    lines = [Text(panel.title + (" (log scale)" if panel.log else ""), style="bold")]
    for r in range(canvas.rows):
        label = ticks_at.get(r, "")
        line = Text()
        line.append(label.rjust(margin - 1) + (" ┤" if label else " │"), style="dim")
        line.append_text(canvas.row_text(r))
        lines.append(line)
    return lines + _x_axis(nice_ticks(x_lo, x_hi, 6 if width >= 60 else 4, integer=True), col, margin, canvas.cols)


def _draw(canvas: Canvas, points: list[tuple[int, int] | None], style: str) -> None:
    """Join consecutive points (None: a gap); a point alone, with gaps either side, is a ``•``."""
    for i, p in enumerate(points):
        if p is None:
            continue
        after = points[i + 1] if i + 1 < len(points) else None
        if after:
            canvas.line(*p, *after, style)
        elif not (i and points[i - 1]):
            canvas.mark(*p, "•", style)
        canvas.dot(*p, style)


def _put(chars: list[str], start: int, text: str) -> bool:
    """Write ``text`` into ``chars`` at ``start`` if that span and a space either side are free."""
    if start < 0 or start + len(text) > len(chars):
        return False
    if any(ch != " " for ch in chars[max(0, start - 1):start + len(text) + 1]):
        return False
    chars[start:start + len(text)] = text
    return True


def _x_axis(ticks: list[float], col, margin: int, cols: int) -> list[Text]:
    """The axis line with a ``┬`` at each integer epoch tick, the tick labels under it, and the word
    ``epoch`` where it fits (left, else right)."""
    axis = ["─"] * cols
    labels = [" "] * (margin + 1 + cols)
    for t in ticks:
        c = col(t) // 2
        if t == int(t) and t >= 1 and 0 <= c < cols:       # epochs count from 1
            axis[c] = "┬"
            text = str(int(t))
            _put(labels, margin + 1 + c - len(text) // 2, text)
    _put(labels, 0, "epoch") or _put(labels, len(labels) - 5, "epoch")
    return [Text(" " * margin + "└" + "".join(axis), style="dim"), Text("".join(labels).rstrip(), style="dim")]


def series_key(curves: Curves, panel: Panel, series) -> str:
    """What a curve's terminal colour tells apart: as in the figure, except that a panel comparing
    several metrics of several runs has no line styles here, so each of its curves gets a colour."""
    several_metrics = len(panel.metrics) > 1 and len(curves.names) > 1
    return f"{series.name} {series.metric}" if several_metrics else curves.color_key(series)


def _legend(curves: Curves, panel: Panel, colors: dict, width: int) -> list[Text]:
    """``━━ name`` in each curve's colour, and the best-epoch star, in lines of at most ``width``."""
    entries = [(label if len(curves.names) > 1 else s.metric, colors[label])
               for s in panel.series for label in [series_key(curves, panel, s)]]
    if any(s.best_value is not None for s in panel.series):
        entries.append((f"best epoch ({curves.best_by})", None))
    lines = [Text(" ")]
    for label, color in entries:
        entry = Text("  ")
        entry.append("━━ " if color else "* ", style=color or "bold")
        entry.append(label)
        if len(lines[-1]) + len(entry) > width and len(lines[-1]) > 1:
            lines.append(Text(" "))
        lines[-1].append_text(entry)
    return lines


def render(curves: Curves, width: int = 80, height: int = 10) -> list[Text]:
    """Every panel of ``curves``, one under the other, each with its legend; the title first."""
    keys = [series_key(curves, p, s) for p in curves.panels for s in p.series]
    colors = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(dict.fromkeys(keys))}
    out = [Text(curves.title, style="bold")]
    for panel in curves.panels:
        key = lambda s, panel=panel: series_key(curves, panel, s)
        out += [Text(""), *chart(panel, colors, key, width, height), *_legend(curves, panel, colors, width)]
    return out


def sparkline(values, width: int = 40) -> str:
    """``▁▃▅▇█``: one block per value (means of equal spans when there are more than ``width``), the
    lowest value ``▁`` and the highest ``█``; a space where a value is NaN."""
    y = np.asarray(values, dtype=np.float64)
    if y.size > width:
        y = np.array([np.nanmean(part) if np.isfinite(part).any() else np.nan
                      for part in np.array_split(y, width)])
    finite = y[np.isfinite(y)]
    if finite.size == 0:
        return " " * y.size
    low, span = finite.min(), finite.max() - finite.min()
    return "".join(" " if not math.isfinite(v) else BLOCKS[3 if span == 0 else round((v - low) / span * 7)]
                   for v in y)
