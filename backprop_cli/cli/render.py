"""Everything the CLI shows, drawn with rich: a live epoch table with a progress bar, result tables,
and plain lines when the output is not a terminal (or with ``--quiet`` / ``NO_COLOR``). What
``explain`` and ``sweep`` show is in :mod:`.render_explain` and :mod:`.render_sweep`, with the
helpers here."""

from __future__ import annotations

import os
import time

from rich.console import Console, Group
from rich.markup import escape
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..engine.metrics import PER_CLASS_COLUMNS
from ..engine.trainer import Callback

METRIC_LABELS = {"accuracy": "acc", "mse": "MSE", "mae": "MAE"}


def make_console(stderr: bool = False) -> Console:
    """A console that never breaks a message across lines (an error stays one line, whatever the width)."""
    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120                  # piped output: rich would assume 80 columns
    return console


def plain_output(console: Console, quiet: bool = False) -> bool:
    """True when the output should be plain lines: not a terminal, ``--quiet``, or ``NO_COLOR`` set."""
    return quiet or not console.is_terminal or "NO_COLOR" in os.environ


def val_metric(record: dict) -> str | None:
    """The validation metric shown beside the loss: accuracy for classifiers, MAE for regression."""
    for name in ("val_accuracy", "val_mae"):
        if name in record:
            return name
    return None


def fmt(value, name: str = "") -> str:
    """A metric (or ``lr``, ``seconds``) as the tables show it: ``97.93%``, ``0.0812``, ``23.4ms``."""
    if value is None:
        return "-"
    if name.endswith("accuracy") or name.startswith(("precision", "recall", "f1")):
        return percent(value)
    if name == "lr":
        return f"{value:.3g}"
    if name == "seconds":                 # a fast epoch in milliseconds, 3 digits: 23.4ms, not 0.02s
        return f"{1000 * value:.3g}ms" if value < 0.1 else f"{value:.2f}s"
    return f"{value:.4f}"


def percent(value, digits: int = 2) -> str:
    """``97.93%`` for 0.9793 (``-`` for None)."""
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def short_number(v) -> str:
    """A value with 4 significant digits (a negative zero as 0); anything else as ``str``."""
    return ("0" if v == 0 else f"{v:.4g}") if isinstance(v, float) else str(v)


class TrainingReport(Callback):
    """Renders the engine's events: a live table (epoch, losses, metric, lr, time) and a progress bar
    per epoch (batches, running loss, samples/s, ETA); or one plain line per epoch."""

    def __init__(self, console: Console, total_epochs: int, plain: bool) -> None:
        self.console, self.total_epochs, self.plain = console, total_epochs, plain
        self.table: Table | None = None
        self.live: Live | None = None
        self.progress: Progress | None = None

    def on_train_begin(self, trainer):
        if self.plain:
            return
        self.table = Table(title=None, show_edge=False, header_style="bold")
        self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} samples/s"),
                                 TimeRemainingColumn(), console=self.console)
        self.live = Live(Group(self.table, self.progress), console=self.console, refresh_per_second=8)
        self.live.start()
        for record in trainer.history:           # a resumed run shows its earlier epochs
            self._row(record)

    def on_epoch_begin(self, trainer, epoch, batches):
        self._seen, self._started = 0, time.perf_counter()
        if self.progress is not None:
            self._task = self.progress.add_task("", total=batches, epoch=f"{epoch + 1}/{self.total_epochs}",
                                                loss="-", rate="-")

    def on_batch_end(self, trainer, batch, loss, samples):
        self._seen += samples
        if self.progress is not None:
            elapsed = max(time.perf_counter() - self._started, 1e-9)
            self.progress.update(self._task, completed=batch + 1, loss=f"{trainer.running_loss:.4f}",
                                 rate=f"{self._seen / elapsed:,.0f}")

    def on_epoch_end(self, trainer, record):
        if self.progress is not None:
            self.progress.remove_task(self._task)
            self._row(record)
            return
        line = "  ".join(f"{name} {value}" for name, value in self._cells(record) if value != "-")
        self.console.print(line + ("  *best" if record.get("best") else ""))

    def _cells(self, record) -> list[tuple[str, str]]:
        """``(name, text)`` of one epoch, for a plain line or a table row alike."""
        metric = val_metric(record)
        cells = [("epoch", f"{record['epoch']}/{self.total_epochs}"), ("train_loss", fmt(record["train_loss"])),
                 ("val_loss", fmt(record.get("val_loss")))]
        if metric:
            cells.append((metric, fmt(record[metric], metric)))
        return cells + [("lr", fmt(record["lr"], "lr")), ("time", fmt(record["seconds"], "seconds"))]

    def _row(self, record):
        cells = self._cells(record)
        if not self.table.columns:
            for name, _ in cells:
                label = name.replace("_", " ")
                for long, short in METRIC_LABELS.items():
                    label = label.replace(long, short)
                self.table.add_column(label, justify="right")
            self.table.add_column("")
        self.table.add_row(*(text for _, text in cells), "*" if record.get("best") else "")

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def on_train_end(self, trainer, reason):
        self.close()


#: The summary metrics a results table shows, in this order, with their column labels.
TABLE_METRICS = {"loss": "loss", "accuracy": "acc", "top5_accuracy": "top-5", "precision_macro": "P macro",
                 "recall_macro": "R macro", "f1_macro": "F1 macro", "f1_weighted": "F1 wtd", "roc_auc": "AUC",
                 "mse": "MSE", "mae": "MAE", "rmse": "RMSE", "r2": "R2"}


def results_table(rows: list[tuple[list[str], dict]], heads: list[str], title: str | None = None) -> Table:
    """One row per ``(leading cells, metrics)``: the ``heads`` columns, then the metrics of
    :data:`TABLE_METRICS` that any row has."""
    names = [n for n in TABLE_METRICS if any(n in metrics for _, metrics in rows)]
    table = Table(title=title, show_edge=False, header_style="bold")
    for head in heads:
        table.add_column(head)
    for name in names:
        table.add_column(TABLE_METRICS[name], justify="right")
    for cells, metrics in rows:
        table.add_row(*cells, *(fmt(metrics.get(n), n) for n in names))
    return table


def training_results(trainer, scored, files, classes: list[str] | None = None, sparkline: bool = False) -> list:
    """What ``train`` prints at the end: the scores of the weights in ``best.npz`` and in ``last.npz``
    per split (one row each when they are the same weights), what chose the best epoch (with a
    sparkline of the validation metric over the epochs, on a terminal), the per-class scores of the
    first weights on the last split, and the files written."""
    reason = trainer.stop_reason or "completed"
    rows = [([s.label, split], {"loss": loss, **report.metrics})
            for s in scored for split, (loss, report) in s.splits.items()]
    out: list = [results_table(rows, ["weights", "split"], title=f"final scores ({reason} after epoch {trainer.epoch})")]
    if trainer.best_epoch is not None:
        best = Text(best_line(trainer.monitor, trainer.mode, trainer.best_metric, trainer.best_epoch, trainer.epoch))
        if sparkline and trainer.history:
            best.append_text(metric_sparkline(trainer.history, val_metric(trainer.history[-1]) or trainer.monitor))
        out.append(best)
    split, (_, report) = list(scored[0].splits.items())[-1]
    if report.per_class is not None and len(report.confusion) <= PER_CLASS_COLUMNS:
        out.append(per_class_table(report, classes or ["0", "1"],
                                   title=f"per class: {scored[0].label}, {split} split"))
    out += gradient_flow(trainer)
    return out + [f"wrote {path}" for path in files]


def best_line(monitor: str, mode: str, value: float, epoch: int, epochs: int) -> str:
    """``best.npz holds epoch 14 of 20: the lowest val_loss (0.0812)``."""
    why = " (no validation data)" if monitor == "train_loss" else ""
    return (f"best.npz holds epoch {epoch} of {epochs}: the {'lowest' if mode == 'min' else 'highest'} "
            f"{monitor}{why}, {fmt(value, monitor)}")


def weights_line(meta: dict) -> str:
    """Where a checkpoint's weights stand in its run: ``epoch 5, the best by the highest val_accuracy
    (95.86%)``, or ``epoch 6; the best so far: epoch 5 by ...``."""
    how = (f"the {'lowest' if meta['mode'] == 'min' else 'highest'} {meta['monitor']} "
           f"({fmt(meta['best_metric'], meta['monitor'])})")
    if meta["best_epoch"] == meta["epoch"]:
        return f"weights of epoch {meta['epoch']}, the best so far by {how}"
    return f"weights of epoch {meta['epoch']}; the best so far was epoch {meta['best_epoch']}, by {how}"


def metric_sparkline(history: list[dict], metric: str) -> Text:
    """``   val_accuracy ▁▅▇▆██▆█▇▇██ 84.83% → 97.93%``: the metric over the epochs, first and last value."""
    from ..diagnostics.termplot import sparkline

    values = [record.get(metric) for record in history]
    values = [float("nan") if v is None else v for v in values]
    text = Text(f"   {metric} ")
    text.append(sparkline(values), style="cyan")
    return text.append(f" {fmt(values[0], metric)} → {fmt(values[-1], metric)}", style="dim")


def curves_chart(curves, console: Console) -> list:
    """``backprop plot`` in the terminal: each panel as a braille chart, as wide as the terminal (at most
    120 columns); 80 when the output is piped, unless ``COLUMNS`` says otherwise."""
    from ..diagnostics.termplot import render
    width = console.width if console.is_terminal or "COLUMNS" in os.environ else 80
    return render(curves, width=min(width, 120))


def gradient_flow(trainer) -> list:
    """With ``training.log_gradients``: each parameter's mean gradient norm in the first and the last
    epoch, its last update ratio, and a flag for vanishing or exploding gradients."""
    from ..engine.gradients import EXPLODING, VANISHING, flow_summary

    rows = flow_summary(trainer.history, trainer.model)
    if not rows:
        return []
    first, last = rows[0]["epochs"]
    table = Table(title="gradient flow (means over each epoch's steps; all epochs in gradients.csv)",
                  show_edge=False, header_style="bold")
    for name in ("layer", "parameter", f"|grad| epoch {first}", f"|grad| epoch {last}", "|dW|/|W|", ""):
        table.add_column(name, justify="left" if name in ("layer", "parameter", "") else "right")
    for r in rows:
        mark = f"[bold red]{r['flag']}[/bold red]" if r["flag"] else ""
        table.add_row(r["layer"], r["parameter"], f"{r['first_grad_norm']:.3g}", f"{r['grad_norm']:.3g}",
                      f"{r['update_ratio']:.3g}", mark)
    flagged = list(dict.fromkeys(r["layer"] for r in rows if r["flag"]))
    rule = (f"vanishing: |grad| < {VANISHING:g}; exploding: |grad| grew {EXPLODING:g}x since epoch {first} "
            "or |dW|/|W| > 1")
    verdict = f"[bold red]check {', '.join(flagged)}[/bold red] ({rule})" if flagged else f"no gradient flagged ({rule})"
    return [table, verdict]


def evaluation(result: dict, split: str) -> list:
    """What ``eval`` prints: the metrics, what chose the weights, and for class targets the confusion
    matrix beside each class's precision, recall, F1 and support."""
    meta = result.get("weights") or {}
    title = f"{result['checkpoint']} (epoch {result['epoch']}, {result['samples']} samples)"
    out: list = [results_table([([split], result["metrics"])], ["split"], title=title)]
    if meta.get("best_epoch") is not None and meta.get("monitor"):
        out.append(weights_line(meta))
    if "confusion_matrix" in result:
        out.append(confusion_table(result["confusion_matrix"], result["classes"], result["per_class"]))
    if result.get("environment"):
        out.append(environment_table(result["environment"], result.get("data_files")))
    return out


def environment_table(env: dict, data_files: list[dict] | None = None) -> Table:
    """The versions, BLAS, platform, command line and seed a checkpoint was written with, and the
    data files its run read (path, size, SHA-256)."""
    from ..engine.environment import describe_blas

    table = Table(title="environment of the run that wrote it", show_edge=False, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    rows = [("backprop", env.get("backprop")), ("python", env.get("python")), ("numpy", env.get("numpy")),
            ("BLAS", describe_blas(env.get("blas"))), ("platform", env.get("platform")),
            ("command", env.get("command")), ("seed", env.get("seed"))]
    rows += [(f.get("key"), f"{f.get('path')} ({f.get('size')} bytes) sha256 {f.get('sha256')}")
             for f in data_files or [] if isinstance(f, dict)]
    for name, value in rows:
        table.add_row(name, escape("-" if value is None else str(value)))
    return table


def per_class_table(report, classes: list[str], title: str) -> Table:
    """Precision, recall, F1 and support of each class."""
    table = Table(title=title, show_edge=False, header_style="bold")
    for name in ("class", "precision", "recall", "F1", "support"):
        table.add_column(name, justify="left" if name == "class" else "right")
    p = report.per_class
    for i, name in enumerate(classes):
        table.add_row(str(name), percent(p["precision"][i], 1), percent(p["recall"][i], 1), percent(p["f1"][i], 1),
                      str(p["support"][i]))
    return table


def confusion_table(matrix: list[list[int]], classes: list[str], per_class: dict[str, dict]) -> Table:
    """Rows are true classes, columns predicted; then each class's precision, recall, F1 and support."""
    table = Table(title="confusion matrix (rows: true, columns: predicted)", show_edge=False, header_style="bold")
    table.add_column("true \\ pred")
    for name in classes:
        table.add_column(str(name), justify="right")
    for name in ("precision", "recall", "F1", "support"):
        table.add_column(name, justify="right")
    for name, row in zip(classes, matrix):
        c = per_class[name]
        table.add_row(str(name), *(str(v) if v else "[dim]0[/dim]" for v in row),
                      percent(c["precision"], 1), percent(c["recall"], 1), percent(c["f1"], 1), str(c["support"]))
    return table


def export_lines(exported) -> list[str]:
    """What ``export`` prints: the file, its input and outputs, and its operators."""
    name, shape = exported.input
    norm = "" if exported.normalization == "none" else f", normalised inside ({exported.normalization})"
    outputs = ", ".join(f"{n} {shape_text(s)}" for n, s in exported.outputs)
    counts: dict[str, int] = {}
    for op in exported.ops:
        counts[op] = counts.get(op, 0) + 1
    ops = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in counts.items())
    return [f"wrote {exported.path}: ONNX opset {exported.opset}, {len(exported.ops)} nodes",
            f"  input  {name} {shape_text(shape)} float32, raw as predict reads it{norm}",
            f"  output {outputs}", f"  nodes  {ops}"]


def gradcheck_table(results, title: str) -> Table:
    table = Table(title=title, show_edge=False, header_style="bold")
    table.add_column("layer", no_wrap=True, min_width=min(36, max((len(r.layer) for r in results), default=5)))
    for name in ("tensor", "checked", "max abs err", "max rel err", "worst at", "result"):
        table.add_column(name, justify="left" if name in ("tensor", "worst at") else "right")
    for r in results:
        checked = f"{r.checked}/{r.total}" + (f" ({r.skipped} at kinks)" if r.skipped else "")
        table.add_row(r.layer, r.tensor, checked, f"{r.max_abs_err:.2e}", f"{r.max_rel_err:.2e}",
                      str(r.worst) if r.worst else "", "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]")
    return table


def gradcheck_failures(results) -> list:
    """A line per failed check, naming the method of the module that is wrong."""
    from rich.text import Text

    from ..diagnostics.gradcheck import diagnoses
    return [Text.assemble(("FAIL ", "bold red"), line) for line in diagnoses(results)]


def shape_text(per_sample: tuple[int, ...]) -> str:
    """``(N, 1, 8, 8)``: a per-sample shape with its batch axis."""
    return "(" + ", ".join(map(str, ("N", *per_sample))) + ")"


def summary_table(rows, total_params: int) -> Table:
    """Layers with their per-sample output shapes and parameter counts; the totals in the caption."""
    table = Table(show_edge=False, header_style="bold",
                  caption=f"{total_params:,} parameters ({4 * total_params / 2**20:.2f} MiB as float32)")
    for name in ("#", "layer", "output shape", "parameters"):
        table.add_column(name, justify="right" if name in ("#", "parameters") else "left")
    for index, layer, shape, count in rows:
        table.add_row(index, layer, shape_text(shape), f"{count:,}" if count else "")
    return table


def run_summary(run) -> list:
    """What ``train --dry-run`` (and ``train -v``, before training) shows: the data and the model."""
    from ..engine.experiment import model_rows

    data = run.data
    sizes = [f"{len(ds):,} {name}" for name, ds in (("training", data.train), ("validation", data.val),
                                                     ("test", data.test)) if ds is not None]
    line = f"data: {', '.join(sizes)} samples of shape {shape_text(data.input_shape)}"
    if data.columns is not None:
        names = data.columns.feature_names
        line += f"; inputs: {', '.join(names[:12])}" + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return [line, summary_table(*model_rows(run.trainer.model, data.input_shape))]


def timing_total(rows) -> str:
    """``time -q``: ``1.234 ms per batch``, forward and backward of every layer."""
    return f"{sum(r.forward_ms + r.backward_ms for r in rows):.3f} ms per batch"


def timing_table(rows, title: str) -> Table:
    """Per-layer forward/backward milliseconds, their share of the total, and the total per batch."""
    total = sum(r.forward_ms + r.backward_ms for r in rows) or 1.0
    table = Table(title=title, show_edge=False, header_style="bold", show_footer=True)
    table.add_column("layer", footer="total per batch")
    table.add_column("forward ms", justify="right", footer=f"{sum(r.forward_ms for r in rows):.3f}")
    table.add_column("backward ms", justify="right", footer=f"{sum(r.backward_ms for r in rows):.3f}")
    table.add_column("share", justify="right", footer=f"{total:.3f} ms")
    for r in rows:
        table.add_row(r.name, f"{r.forward_ms:.3f}", f"{r.backward_ms:.3f}",
                      f"{100 * (r.forward_ms + r.backward_ms) / total:.1f}%")
    return table
