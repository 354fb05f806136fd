"""``backprop plot`` and ``eval --plot``: the curves drawn (in a PNG, an SVG and the terminal) are the
numbers in ``metrics.csv`` and ``gradients.csv``, read back from the matplotlib figure's lines."""

import csv
import json
import math
import re
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from backprop_cli.cli.render import metric_sparkline
from backprop_cli.diagnostics import termplot
from backprop_cli.diagnostics.curves import gradient_curves, learning_curves
from backprop_cli.engine.history import load_history
from common import invoke, needs_extra, ROOT


TINY = """\
name: tiny
seed: 1
data: {train: iris.csv, validation_split: 0.2, test: iris.csv, normalize: standardize}
model: [{Linear: 8}, Tanh, {Linear: 3}, LogSoftMax]
criterion: ClassNLLCriterion
optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
training: {epochs: 4, batch_size: 16}
"""


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def columns(path: Path) -> dict[str, list[float]]:
    """metrics.csv read independently of the code under test (empty cell: NaN)."""
    rows = list(csv.DictReader(path.open()))
    return {name: [float(r[name]) if r[name] != "" else math.nan for r in rows] for name in rows[0]}


def write_run(path: Path, header: str, rows: list[str], monitor: str | None = "val_loss", mode: str = "min") -> Path:
    path.mkdir(parents=True)
    (path / "metrics.csv").write_text("\n".join([header, *rows]) + "\n")
    if monitor:
        (path / "config.yaml").write_text(f"name: {path.name}\ntraining: {{monitor: {monitor}, mode: {mode}}}\n")
    return path


def lines_by_gid(fig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {line.get_gid(): (np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
            for ax in fig.axes for line in ax.get_lines() if line.get_gid()}


@pytest.fixture
def trained(iris_dir):
    """A real 4-epoch run of the tiny iris classifier in runs/tiny."""
    (iris_dir / "tiny.yaml").write_text(TINY)
    result = invoke("train", "tiny.yaml", "-q")
    assert result.exit_code == 0, result.output
    return iris_dir / "runs" / "tiny"


@pytest.fixture
def mpl():
    return needs_extra("matplotlib", "plot")


# ---------------------------------------------------------------------------- reading runs
def test_best_epoch_is_chosen_as_the_trainer_chooses_it(tmp_path):
    run = write_run(tmp_path / "a", "epoch,train_loss,val_loss,val_accuracy",
                    ["1,1.0,0.9,0.5", "2,0.8,,0.7", "3,0.6,0.5,0.7", "4,0.5,0.55,0.6"], monitor="val_accuracy",
                    mode="max")
    history = load_history(run)
    assert history.best_epoch == 2                       # the first of the tied maxima
    history.monitor, history.mode = "val_loss", "min"
    assert history.best_epoch == 3                       # NaN (the empty cell of epoch 2) is never best
    history.min_delta = 0.45
    assert history.best_epoch == 1                       # 0.5 does not beat 0.9 by more than 0.45


def test_a_run_s_config_yaml_is_read_as_configs_are(tmp_path):
    """With the config reader's limits: a config.yaml past 1 MiB (or an alias bomb) is not read, and
    the best epoch is then not marked, as for a config.yaml that is missing."""
    run = write_run(tmp_path / "a", "epoch,train_loss,val_loss", ["1,1.0,0.9", "2,0.8,0.7"])
    assert load_history(run).best_epoch == 2
    with open(run / "config.yaml", "a") as f:
        f.write("# " + "x" * 2**20 + "\n")
    history = load_history(run)
    assert history.monitor is None and history.best_epoch is None


def test_a_bad_cell_is_reported_with_its_line_and_column(tmp_path):
    run = write_run(tmp_path / "a", "epoch,train_loss", ["1,0.5", "2,oops"])
    result = invoke("plot", run)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {run / 'metrics.csv'}:3: train_loss: expected a number, got 'oops'"


def test_not_a_run_directory(tmp_path):
    result = invoke("plot", tmp_path)
    assert result.exit_code == 1
    assert "holds no metrics.csv" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- PNG and SVG
def test_png_of_a_real_run_holds_the_metrics_csv_numbers(trained, mpl, tmp_path):
    from backprop_cli.diagnostics.figures import curves_figure, save

    want = columns(trained / "metrics.csv")
    fig = curves_figure(learning_curves([trained]))
    lines = lines_by_gid(fig)
    for metric in ("train_loss", "val_loss", "val_accuracy"):
        x, y = lines[f"tiny|{metric}"]
        np.testing.assert_array_equal(x, want["epoch"])
        np.testing.assert_allclose(y, want[metric], rtol=0, atol=0)
    best = load_history(trained).best_epoch                # the run's monitor: val_accuracy, mode max
    assert best == int(want["epoch"][int(np.argmax(want["val_accuracy"]))])
    bx, by = lines["best|tiny|val_accuracy"]
    assert bx.tolist() == [best] and by.tolist() == [max(want["val_accuracy"])]
    assert png_size(save(fig, tmp_path / "curves.png")) == (960, 360)     # two panels of 4.8 x 3.6 in at 100 dpi


def test_plot_command_writes_png_and_svg(trained, mpl, tmp_path):
    result = invoke("plot", trained, "--out", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""                              # --out alone draws nothing in the terminal
    assert f"wrote {tmp_path / 'c.png'}" in result.stderr
    assert png_size(tmp_path / "c.png") == (960, 360)
    result = invoke("plot", trained, "--metric", "train_loss", "-m", "val_loss,lr", "--out", tmp_path / "c.svg")
    assert result.exit_code == 0, result.output
    svg = (tmp_path / "c.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert 'width="691.2pt" height="259.2pt"' in svg        # two panels (loss, lr) of 4.8 x 3.6 in at 72 pt/in


def test_one_epoch_nan_and_different_metrics(tmp_path, mpl):
    from backprop_cli.diagnostics.figures import curves_figure, save

    one = write_run(tmp_path / "one", "epoch,train_loss,val_loss,val_accuracy", ["1,0.7,0.6,0.8"])
    nan = write_run(tmp_path / "nan", "epoch,train_loss,val_loss,val_accuracy",
                    ["1,0.9,0.8,0.5", "2,0.7,nan,0.6", "3,0.5,,0.7", "4,0.4,0.3,0.8"])
    reg = write_run(tmp_path / "reg", "epoch,train_loss,val_loss,val_mae", ["1,4.0,3.0,1.5", "2,2.0,1.0,0.9"])
    curves = learning_curves([one, nan, reg], ["val_loss", "val_accuracy", "val_mae"])
    lines = lines_by_gid(curves_figure(curves))
    assert lines["one|val_loss"][1].tolist() == [0.6]
    x, y = lines["nan|val_loss"]
    assert x.tolist() == [1, 2, 3, 4] and y[0] == 0.8 and y[3] == 0.3 and np.isnan(y[1:3]).all()
    assert lines["reg|val_mae"][1].tolist() == [1.5, 0.9]
    assert "reg|val_accuracy" not in lines and "one|val_mae" not in lines
    assert "nan: val_loss is empty or not finite at epoch 2, 3; the curve has gaps there" in curves.notes
    assert any(n.startswith("reg: no val_accuracy column") for n in curves.notes)
    assert png_size(save(curves_figure(curves), tmp_path / "p.png")) == (1440, 360)


def test_a_column_without_numbers_says_so_and_the_rest_is_drawn(tmp_path):
    run = write_run(tmp_path / "r", "epoch,train_loss,val_loss", ["1,0.9,", "2,0.7,"], monitor="train_loss")
    result = invoke("plot", run)
    assert result.exit_code == 0, result.output
    assert "note: r: val_loss is empty or not finite in every epoch; nothing to draw" in result.stderr
    assert "train_loss" in result.stdout


def test_quiet_plot_draws_the_chart_without_notes_and_writes_a_picture_silently(tmp_path, mpl):
    run = write_run(tmp_path / "r", "epoch,train_loss,val_loss", ["1,0.9,", "2,0.7,"], monitor="train_loss")
    loud, quiet = invoke("plot", run), invoke("plot", run, "-q")
    assert quiet.exit_code == 0 and "note:" in loud.stderr and quiet.stderr == ""
    assert quiet.stdout == loud.stdout and "train_loss" in quiet.stdout
    written = invoke("plot", run, "--out", tmp_path / "c.png", "-q")
    assert written.exit_code == 0 and written.output == "" and png_size(tmp_path / "c.png")[0] > 0


def test_sweep_directory_plots_every_trial(tmp_path, mpl):
    from backprop_cli.diagnostics.figures import curves_figure

    sweep = tmp_path / "lr_sweep"
    for i, losses in enumerate((["1,0.9,0.6", "2,0.5,0.8"], ["1,0.8,0.9", "2,0.4,0.7"], ["1,1.2,1.1", "2,1.0,1.0"])):
        write_run(sweep / f"trial-{i:04d}", "epoch,train_loss,val_loss", losses)
    (sweep / "sweep.csv").write_text("trial,optimizer.lr\n0,0.1\n1,0.05\n2,0.01\n")
    curves = learning_curves([sweep])
    assert curves.names == ["lr_sweep/trial-0000", "lr_sweep/trial-0001", "lr_sweep/trial-0002"]
    lines = lines_by_gid(curves_figure(curves))
    assert lines["lr_sweep/trial-0001|val_loss"][1].tolist() == [0.9, 0.7]
    assert lines["best|lr_sweep/trial-0001|val_loss"][0].tolist() == [2]
    assert lines["best|lr_sweep/trial-0000|val_loss"][0].tolist() == [1]
    result = invoke("plot", sweep)                                # in the terminal: six curves, one colour each
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "━━ lr_sweep/trial-0002 val_loss" in result.stdout


def test_losses_spanning_decades_get_a_log_axis(tmp_path, mpl):
    from backprop_cli.diagnostics.figures import curves_figure

    run = write_run(tmp_path / "r", "epoch,train_loss,val_loss,val_accuracy",
                    ["1,2.0,1.5,0.05", "2,0.2,0.3,0.5", "3,0.05,0.1,0.9"])
    curves = learning_curves([run])
    assert [(p.title, p.log) for p in curves.panels] == [("loss", True), ("val_accuracy", False)]
    assert [ax.get_yscale() for ax in curves_figure(curves).axes] == ["log", "linear"]


def test_missing_extra_is_one_line_naming_it(trained, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib now raises ImportError
    result = invoke("plot", trained, "--out", tmp_path / "c.png")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: pictures need matplotlib, which the plot extra installs: "
                                     "pip install 'backprop-cli[plot]'")
    assert not (tmp_path / "c.png").exists()
    assert invoke("plot", trained).exit_code == 0           # the terminal needs no extra
    result = invoke("eval", trained / "best.npz", "--plot", tmp_path / "c.png")
    assert result.exit_code == 1 and result.stdout == ""    # said before the evaluation
    assert result.stderr.strip().endswith("pip install 'backprop-cli[plot]'")


def test_bad_flags(trained, tmp_path):
    result = invoke("plot", trained, "--out", tmp_path / "c.jpg")
    assert result.exit_code == 1 and "--out: expected a file name ending in .png, .svg, .pdf" in result.stderr
    result = invoke("plot", trained, "--metric", "val_acc")
    assert result.exit_code == 1
    assert "--metric: no run has val_acc" in result.stderr and "did you mean val_accuracy?" in result.stderr
    assert invoke("plot", trained, "--gradients", "--metric", "lr").exit_code == 2


# ---------------------------------------------------------------------------- gradients
GRADIENTS = ["epoch,layer,parameter,grad_norm,update_ratio",
             "1,0 Linear,0.weight,0.5,0.01", "1,0 Linear,0.bias,0.05,0.02", "1,2 Linear,2.weight,1.5,0.005",
             "2,0 Linear,0.weight,0.25,0.008", "2,0 Linear,0.bias,0.02,", "2,2 Linear,2.weight,0.9,0.004"]


def test_gradient_flow_from_gradients_csv(trained, mpl, tmp_path):
    from backprop_cli.diagnostics.figures import curves_figure, save

    (trained / "gradients.csv").write_text("\n".join(GRADIENTS) + "\n")
    curves = gradient_curves([trained])
    fig = curves_figure(curves)
    lines = lines_by_gid(fig)
    assert lines["0 Linear weight|grad_norm"][1].tolist() == [0.5, 0.25]
    assert lines["2 Linear weight|grad_norm"][0].tolist() == [1, 2]
    ratio = lines["0 Linear bias|update_ratio"][1]
    assert ratio[0] == 0.02 and np.isnan(ratio[1])
    assert [ax.get_yscale() for ax in fig.axes if ax.get_visible()] == ["log", "linear"]
    assert png_size(save(fig, tmp_path / "g.png")) == (960, 360)
    result = invoke("plot", trained, "--gradients")
    assert result.exit_code == 0, result.output
    assert "gradient norm (log scale)" in result.stdout and "2 Linear weight" in result.stdout


def test_gradients_missing_says_how_to_record_them(trained):
    result = invoke("plot", trained, "--gradients")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: {trained}: no gradients.csv: gradient norms are recorded when the run "
                                     "is trained with training.log_gradients: true (or --set "
                                     "training.log_gradients=true)")


def test_gradients_with_a_wrong_header(trained):
    (trained / "gradients.csv").write_text("epoch,layer,norm\n1,0 Linear,0.5\n")
    result = invoke("plot", trained, "--gradients")
    assert result.exit_code == 1
    assert "gradients.csv:1: the header lacks parameter, grad_norm, update_ratio" in result.stderr


# ---------------------------------------------------------------------------- the terminal
def test_terminal_chart_fits_80_columns_with_legend_and_best_epoch(trained):
    result = invoke("plot", trained)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].startswith("tiny: best val_accuracy")
    assert "loss" in lines and "val_accuracy" in lines           # the panel titles
    assert any("━━ train_loss" in line and "━━ val_loss" in line and "* best epoch (val_accuracy)" in line
               for line in lines)
    assert sum(line.count("*") for line in lines) >= 3 + 2        # a star on each of 3 curves, 2 in legends


def test_canvas_draws_where_the_formula_says():
    canvas = termplot.Canvas(3, 2)                                 # 6 x 8 dots
    canvas.line(0, 0, 5, 7, "red")
    assert canvas.bits[0, 0] & termplot.DOTS[0][0] and canvas.bits[1, 2] & termplot.DOTS[3][1]
    assert canvas.row_text(0).plain[0] == chr(0x2800 + int(canvas.bits[0, 0]))
    canvas.mark(5, 7, "*", "red")
    assert canvas.row_text(1).plain[2] == "*"


def test_ticks_and_sparkline():
    assert termplot.nice_ticks(0.85, 0.98) == [0.85, 0.9, 0.95]
    assert termplot.nice_ticks(1, 20, 6) == [5, 10, 15, 20]
    assert termplot.nice_ticks(1, 12, 6, integer=True) == [2, 4, 6, 8, 10, 12]
    assert termplot.nice_ticks(0.5, 1.5, 6, integer=True) == [1]
    assert termplot.log_ticks(0.0487, 1.64) == [0.05, 0.1, 0.2, 0.5, 1.0]
    assert termplot.log_ticks(1e-4, 2.0) == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert termplot.sparkline(range(8)) == "▁▂▃▄▅▆▇█"
    assert termplot.sparkline([1.0, math.nan, 3.0]) == "▁ █"
    assert termplot.sparkline(list(range(100)), width=10) == "▁▂▃▃▄▅▆▆▇█"


def test_train_prints_a_sparkline_only_on_a_terminal(trained, monkeypatch):
    result = invoke("train", "tiny.yaml", "-q", "--force")
    assert result.exit_code == 0 and not any(b in result.stdout for b in termplot.BLOCKS)
    monkeypatch.setenv("FORCE_COLOR", "1")                        # rich takes the output for a terminal
    monkeypatch.delenv("NO_COLOR", raising=False)
    result = invoke("train", "tiny.yaml", "--force")
    assert result.exit_code == 0, result.output
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stdout)
    accuracy = columns(trained / "metrics.csv")["val_accuracy"]
    best = [line for line in text.splitlines() if line.startswith("best.npz holds epoch")]
    assert len(best) == 1
    spark = re.search(r"val_accuracy ([▁▂▃▄▅▆▇█]+) ", best[0]).group(1)      # one block per epoch
    assert len(spark) == len(accuracy) == 4
    assert spark[int(np.argmax(accuracy))] == "█" and spark[int(np.argmin(accuracy))] == "▁"
    history = [{"val_accuracy": v} for v in (0.5, 0.75, 1.0)]
    console = Console(width=80, record=True, file=open("/dev/null", "w"))
    console.print(metric_sparkline(history, "val_accuracy"))
    assert console.export_text().rstrip() == "   val_accuracy ▁▅█ 50.00% → 100.00%"


# ---------------------------------------------------------------------------- eval --plot
def test_eval_draws_the_confusion_matrix(trained, mpl, tmp_path, monkeypatch):
    from backprop_cli.diagnostics import figures

    drawn = []
    original = figures.confusion_figure
    monkeypatch.setattr(figures, "confusion_figure", lambda *a: drawn.append(original(*a)) or drawn[-1])
    result = invoke("eval", trained / "best.npz", "--json", "--plot", tmp_path / "confusion.png")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    fig = drawn[0]
    ax = fig.axes[0]
    counts = {t.get_gid(): int(t.get_text()) for t in ax.texts}
    k = len(scored["classes"])
    assert counts == {f"count|{i}|{j}": scored["confusion_matrix"][i][j] for i in range(k) for j in range(k)}
    assert [t.get_text() for t in ax.get_xticklabels()] == scored["classes"] == ["setosa", "versicolor", "virginica"]
    assert [t.get_text() for t in ax.get_yticklabels()] == scored["classes"]
    width, height = png_size(tmp_path / "confusion.png")
    assert (width, height) == (round(100 * fig.get_figwidth()), round(100 * fig.get_figheight()))


def test_eval_plot_needs_a_classifier(tmp_path, mpl, monkeypatch):
    shutil.copy(ROOT / "data" / "diabetes.csv", tmp_path / "diabetes.csv")
    (tmp_path / "reg.yaml").write_text("name: reg\ndata: {train: diabetes.csv, task: regression, test: diabetes.csv, "
                                       "normalize: standardize}\nmodel: [{Linear: 1}]\ncriterion: MSECriterion\n"
                                       "optimizer: {name: sgd, lr: 0.01}\ntraining: {epochs: 1}\n")
    monkeypatch.chdir(tmp_path)
    assert invoke("train", "reg.yaml", "-q").exit_code == 0
    result = invoke("eval", "runs/reg/best.npz", "--plot", "c.png")
    assert result.exit_code == 1
    assert "--plot: a confusion matrix needs a classifier" in result.stderr and not Path("c.png").exists()
