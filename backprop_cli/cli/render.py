"""Everything the CLI shows, drawn with rich: a live epoch table with a progress bar, result tables,
and plain lines when the output is not a terminal (or with ``--quiet`` / ``NO_COLOR``)."""

from __future__ import annotations

import os
import time

from rich.console import Console, Group
from rich.markup import escape
from rich.live import Live
from rich.padding import Padding
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
    if value is None:
        return "-"
    if name.endswith("accuracy") or name.startswith(("precision", "recall", "f1")):
        return f"{100 * value:.2f}%"
    if name == "lr":
        return f"{value:.3g}"
    if name == "seconds":                 # a fast epoch in milliseconds, 3 digits: 23.4ms, not 0.02s
        return f"{1000 * value:.3g}ms" if value < 0.1 else f"{value:.2f}s"
    return f"{value:.4f}"


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
        out.append(environment_table(result["environment"]))
    return out


def environment_table(env: dict) -> Table:
    """The versions, BLAS, platform, command line and seed a checkpoint was written with."""
    from ..engine.environment import describe_blas

    table = Table(title="environment of the run that wrote it", show_edge=False, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    rows = [("backprop", env.get("backprop")), ("python", env.get("python")), ("numpy", env.get("numpy")),
            ("BLAS", describe_blas(env.get("blas"))), ("platform", env.get("platform")),
            ("command", env.get("command")), ("seed", env.get("seed"))]
    for name, value in rows:
        table.add_row(name, escape("-" if value is None else str(value)))
    return table


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def per_class_table(report, classes: list[str], title: str) -> Table:
    """Precision, recall, F1 and support of each class."""
    table = Table(title=title, show_edge=False, header_style="bold")
    for name in ("class", "precision", "recall", "F1", "support"):
        table.add_column(name, justify="left" if name == "class" else "right")
    p = report.per_class
    for i, name in enumerate(classes):
        table.add_row(str(name), _percent(p["precision"][i]), _percent(p["recall"][i]), _percent(p["f1"][i]),
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
                      _percent(c["precision"]), _percent(c["recall"]), _percent(c["f1"]), str(c["support"]))
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


# ---------------------------------------------------------------------------- explain
#: Arrays with at most this many values are shown in full; larger ones by their statistics.
SHOWN_IN_FULL = 16
#: Lines of ``explain`` are kept this short (a 100-column terminal).
EXPLAIN_WIDTH = 98


def _flat(values) -> list:
    if isinstance(values, list):
        return [v for item in values for v in _flat(item)]
    return [values]


def _num(v) -> str:
    """A value with 4 significant digits; a negative zero as 0."""
    return ("0" if v == 0 else f"{v:.4g}") if isinstance(v, float) else str(v)


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def array_lines(label: str, t: dict, indent: int) -> list[str]:
    """An array from ``explain``: every value when it has few (a small batch of rows row by row),
    else its statistics and first values; on one line when that fits, else on the lines below."""
    flat, shape = _flat(t["values"]), t["shape"]
    head = f"{label} {_shape(shape)}"
    if len(flat) > SHOWN_IN_FULL and len(shape) == 2 and shape[0] <= 8 and shape[1] <= SHOWN_IN_FULL:
        return [" " * indent + head] + [line for i, row in enumerate(t["values"])
                                        for line in _wrapped([_num(v) for v in row], "", indent + 2, f"{i}: ")]
    if len(flat) > SHOWN_IN_FULL:
        head += f"  min {_num(t['min'])}  mean {_num(t['mean'])}  max {_num(t['max'])}  |.| {_num(t['norm'])}"
        body, more = [_num(v) for v in flat[:8]], ", ..."
    else:
        body, more = [_num(v) for v in flat], ""
    one = f"{head}: {', '.join(body)}{more}"
    if indent + len(one) <= EXPLAIN_WIDTH:
        return [" " * indent + one]
    return [" " * indent + head] + _wrapped(body, more, indent + 2)


def _wrapped(values: list[str], more: str, indent: int, prefix: str = "") -> list[str]:
    """``values`` joined by commas on lines of at most :data:`EXPLAIN_WIDTH` columns."""
    lines, line = [], " " * indent + prefix
    for i, text in enumerate(values):
        piece = text + (", " if i + 1 < len(values) else more)
        if len(line) + len(piece) > EXPLAIN_WIDTH and line.strip():
            lines.append(line.rstrip())
            line = " " * (indent + len(prefix))
        line += piece
    return lines + [line.rstrip()]


def explanation(r: dict):
    """What ``explain`` prints: the training step in five numbered parts, as plain lines of text (no
    markup is read from the values), at most :data:`EXPLAIN_WIDTH` columns wide (prose is wrapped)."""
    import textwrap

    from rich.text import Text

    out: list = []

    def say(text: str, style: str = "", indent: int = 0, wrap: bool = True) -> None:
        lines = (textwrap.wrap(text, EXPLAIN_WIDTH, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2),
                               break_on_hyphens=False) if wrap else [" " * indent + text]) or [""]
        out.extend(Text(line, style=style) for line in lines)

    def array(label: str, t: dict, indent: int) -> None:
        out.extend(Text(line) for line in array_lines(label, t, indent))

    def part(title: str) -> None:
        out.extend([Text(""), Text(title, style="bold")])

    first, stop = r["samples"]
    which = f"sample {first}" if stop - first == 1 else f"samples {first} to {stop - 1}"
    say(f"explain {r['name']}: training {which} of {r['of']} in {r['data']}", "bold")
    say(f"weights: {r['weights']}", indent=2)
    array("target", r["target"], 2)

    part("1. forward: output = layer.forward(input), first layer first (training mode)")
    array("input", r["input"], 2)
    for f in r["forward"]:
        say(f"{f['index']} {f['layer']}   {_shape(f['input_shape'])} -> {_shape(f['output']['shape'])}", "bold cyan", 2)
        say(f["formula"], "dim", 4)
        array("output", f["output"], 4)
        for note in f["notes"]:
            say(note["text"], "yellow", 4)

    c = r["criterion"]
    part("2. loss = criterion.forward(output, target); grad_output = criterion.backward(output, target)")
    say(f"{c['name']}: {c['formula']}", "dim", 2)
    say(f"loss = {c['loss']:.6g} (reduction: {c['reduction']})", "bold", 2)
    array("grad_output = dLoss/dOutput", c["grad_output"], 2)
    say(f"the criterion's formula: {c['gradient_formula']}", "dim", 4)
    say(f"its values: {c['reading']}", "", 4)
    say("This is what Torch7 calls df_do: the derivative of this loss with respect to the output "
        "(not target - output).", "", 2)

    part("3. backward, last layer first: grad_input = layer.update_grad_input(input, grad_output)")
    say("grad_input is dLoss/dInput, the next grad_output down: a derivative, not new weights. Then "
        "layer.acc_grad_parameters(input, grad_output, scale=1) adds dLoss/dW into grad_weight, grad_bias.",
        "", 2)
    for b in r["backward"]:
        say(f"{b['index']} {b['layer']}", "bold cyan", 2)
        say(b["formula"], "dim", 4)
        array("grad_output", b["grad_output"], 4)
        array("grad_input ", b["grad_input"], 4)
        shown = set()
        for p in b["parameters"]:
            if p["formula"] not in shown:
                shown.add(p["formula"])
                say(p["formula"], "dim", 4)
            array(f"{p['name']} gradient", p["grad"], 4)
    unchanged = r["weights_unchanged_by_backward"]
    say("weights after backward: " + ("unchanged: backward computes derivatives, it never changes a weight"
                                      if unchanged else "CHANGED: a layer's backward wrote to its weights"),
        "green" if unchanged else "bold red", 2)

    s = r["step"]
    part("4. step: optimizer.step(), the only place weights change")
    say(s["module"], "", 2)
    for text in s["rule"].splitlines():
        say(text, "dim", 2, wrap=False)
    if s["clipping"]:
        say(s["clipping"], "yellow", 2)
    table = Table(show_edge=False, header_style="bold", box=None, padding=(0, 1))
    for name in ("parameter", "|W_new - W_old|", f"|lr * grad|, lr {s['lr']:.3g}", "max |step + lr*grad|", "|dW|/|W|"):
        table.add_column(name, justify="left" if name == "parameter" else "right")
    for p in s["parameters"]:
        table.add_row(p["name"], _num(p["step"]["norm"]), _num(p["minus_lr_grad"]["norm"]),
                      f"{p['max_difference']:.2g}", f"{p['update_ratio']:.3g}")
    out.append(Padding(table, (0, 0, 0, 1), expand=False))
    verdict = ("the step is -lr * grad for every weight (to rounding)" if s["equals_minus_lr_grad"]
               else "the step is not -lr * grad")
    say(f"{verdict}: {s['why']}", "bold", 2)
    say("|grad| and |dW|/|W| are what training.log_gradients: true averages over each epoch's steps into "
        "gradients.csv (see the README, Gradient flow)", "", 2)

    if r["gradcheck"] is not None:
        part("5. finite differences: gradcheck of this batch's gradients (float64, central differences)")
        for g in r["gradcheck"]:
            skipped = f", {g['skipped']} at kinks" if g["skipped"] else ""
            status = "pass" if g["passed"] else "FAIL"
            say(f"{status:4}  {g['layer']:<24} {g['checked']:>6} compared{skipped}, max rel err "
                f"{g['max_rel_err']:.1e}", "green" if g["passed"] else "bold red", 2)
            for failure in g["failures"]:
                say(failure, "red", 8)
    return out


# ---------------------------------------------------------------------------- sweeps
STATE_STYLES = {"complete": "green", "pruned": "yellow", "failed": "red", "running": "cyan"}


def param_text(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def sweep_table(sweep, rows, *, title: str | None = None, last: int | None = None) -> Table:
    """The trials of a sweep: number, state, each parameter, the metric, seconds; the best in bold.
    ``last`` keeps only the latest rows (the best one stays)."""
    from ..sweep.study import best_row

    best = best_row(sweep, rows)
    shown = rows if last is None or len(rows) <= last else [r for r in rows[:-last] if r is best] + rows[-last:]
    table = Table(title=title, show_edge=False, header_style="bold")
    table.add_column("trial", justify="right")
    table.add_column("state")
    for key in sweep.spec.space:
        table.add_column(key, justify="right")
    table.add_column(sweep.metric, justify="right")
    table.add_column("seconds", justify="right")
    for r in shown:
        state = f"[{STATE_STYLES.get(r.state, 'white')}]{r.state}[/]"
        if r.state == "pruned" and r.epochs is not None:
            state += f" [dim](epoch {r.epochs})[/dim]"
        table.add_row(str(r.number), state, *(param_text(r.params[k]) if k in r.params else "" for k in sweep.spec.space),
                      fmt(r.value, sweep.metric), "-" if r.seconds is None else f"{r.seconds:.1f}",
                      style="bold" if r is best else None)
    return table


def _tally(sweep, rows) -> str:
    """``name: 5/8 trials done (4 complete, 1 pruned, 1 running, 2 interrupted and retried)``."""
    counts: dict[str, int] = {}
    for r in rows:
        state = "interrupted and retried" if r.interrupted else r.state
        counts[state] = counts.get(state, 0) + 1
    done = sum(counts.get(s, 0) for s in ("complete", "pruned", "failed"))
    order = ("complete", "pruned", "failed", "running", "interrupted and retried")
    parts = ", ".join(f"{counts[state]} {state}" for state in order if state in counts)
    return f"{sweep.name}: {done}/{sweep.trials} trials done ({parts or 'none yet'})"


class SweepReport:
    """Renders a running sweep: a live table of its trials, or one plain line per trial as it ends."""

    def __init__(self, console: Console, plain: bool, quiet: bool = False) -> None:
        self.console, self.plain, self.quiet = console, plain, quiet
        self.live: Live | None = None
        self.printed: set[int] = set()

    def update(self, sweep, rows) -> None:
        if self.quiet:
            return
        if self.plain:
            for r in rows:
                if r.state not in ("running", "waiting") and r.number not in self.printed:
                    self.printed.add(r.number)
                    self.console.print(_trial_line(sweep, r))
            return
        table = sweep_table(sweep, rows, title=_tally(sweep, rows), last=20)
        if self.live is None:
            self.live = Live(table, console=self.console, refresh_per_second=4, transient=True)
            self.live.start()
        else:
            self.live.update(table)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _trial_line(sweep, r) -> str:
    values = " ".join(f"{k}={param_text(v)}" for k, v in r.params.items())
    why = f" ({r.error})" if r.error else f" (epoch {r.epochs})" if r.state == "pruned" else ""
    return (f"trial {r.number} {r.state}{why}  {values}  {sweep.metric} {fmt(r.value, sweep.metric)}"
            f"  {'-' if r.seconds is None else f'{r.seconds:.1f}s'}")


def sweep_results(result, *, ran: bool = True, verbosity: int = 0) -> list:
    """What ``sweep`` prints at the end (and ``sweep --status``): every trial (not at ``verbosity``
    -1), the best one with its values as ``--set`` flags, failed trials' errors (the first three; all
    at ``verbosity`` 1), and the files."""
    import os
    import shlex

    from ..sweep.spec import set_flag
    from ..sweep.study import trial_directory

    sweep, rows = result.sweep, result.rows
    out: list = [sweep_table(sweep, rows, title=_tally(sweep, rows))] if verbosity >= 0 else []
    best = result.best
    if best is not None:
        config = os.path.relpath(sweep.spec.config)
        flags = [part for k, v in best.params.items() for part in ("--set", set_flag(k, v))]
        out += [f"best trial {best.number}: {sweep.metric} {fmt(best.value, sweep.metric)} "
                f"({trial_directory(sweep, best.number) / 'best.npz'})",
                "train it alone: " + shlex.join(["backprop", "train", str(config), *flags])]
    failed = [r for r in rows if r.state == "failed" and r.error]
    shown = failed if verbosity > 0 else failed[:3]
    for r in shown:
        out.append(f"[red]trial {r.number} failed:[/red] {escape(r.error)}")
    if len(failed) > len(shown):
        out.append(f"[red]... and {len(failed) - len(shown)} more failed trials (-v lists them; each "
                   "trial.json says why)[/red]")
    if result.csv is not None and ran:
        out.append(f"wrote {result.csv}")
    out.append(f"study {sweep.study!r} in {result.storage}")
    return out

