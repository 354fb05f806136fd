"""``training.log_gradients``: per-epoch gradient norms and update ratios in the epoch record and in
gradients.csv, measured right, kept across a resume, flagged when they vanish or explode, absent when off."""

import csv
from pathlib import Path

import numpy as np
import pytest

from backprop_cli import nn
from backprop_cli.cli.app import app
from backprop_cli.cli.render import gradient_flow
from backprop_cli.config.schema import load_config
from backprop_cli.engine.checkpoint import load_checkpoint
from backprop_cli.engine.experiment import prepare
from backprop_cli.engine.gradients import CSV_COLUMNS, GradientFlow, flag, flow_summary
from backprop_cli.engine.run import open_run
from backprop_cli.engine.trainer import Trainer
from backprop_cli.errors import ConfigError
from backprop_cli.optim import SGD
from common import needs_extra, ROOT, runner


CONFIG = """\
name: flow
seed: 0
data: {{train: iris.csv, validation_split: 0, normalize: standardize}}
model: [Linear: 5, Tanh, Linear: 3, LogSoftMax]
criterion: ClassNLLCriterion
optimizer: {{name: sgd, lr: 0.1}}
training:
  epochs: {epochs}
  batch_size: 150                # the whole set: one step per epoch
  log_gradients: {log}
"""


@pytest.fixture
def project(iris_dir):
    return iris_dir


def write(project, epochs=1, log="true") -> Path:
    (project / "flow.yaml").write_text(CONFIG.format(epochs=epochs, log=log))
    return project / "flow.yaml"


def test_one_step_epoch_records_the_gradient_norm_and_the_update_ratio(project):
    path = write(project, epochs=1)
    _, data, model, criterion = prepare(path)            # the weights training starts from (same seed)
    before = model.state_dict()
    model.forward(data.train.x)
    model.zero_grad_parameters()
    model.backward(data.train.x, criterion.backward(model.output, data.train.y))
    grads = {name: g.copy() for name, _, g in model.named_parameters()}
    result = runner.invoke(app, ["train", str(path), "-q"])
    assert result.exit_code == 0, result.output
    after = load_checkpoint("runs/flow/last.npz")
    [record] = after.meta["history"]
    assert list(record["gradients"]) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name, stats in record["gradients"].items():
        step = after.group("model")[name] - before[name]
        assert stats["grad_norm"] == pytest.approx(np.linalg.norm(grads[name]), rel=1e-5)
        ratio = np.linalg.norm(step) / np.linalg.norm(before[name]) if np.any(before[name]) else None
        if ratio is None:                           # a zero-initialised bias: no ratio at its first step
            assert np.isnan(stats["update_ratio"])
        else:
            assert stats["update_ratio"] == pytest.approx(ratio, rel=1e-4)
    rows = list(csv.reader(open("runs/flow/gradients.csv")))
    assert tuple(rows[0]) == CSV_COLUMNS == ("epoch", "layer", "parameter", "grad_norm", "update_ratio")
    assert [r[:3] for r in rows[1:]] == [["1", "0 Linear", "0.weight"], ["1", "0 Linear", "0.bias"],
                                         ["1", "2 Linear", "2.weight"], ["1", "2 Linear", "2.bias"]]
    assert float(rows[1][3]) == pytest.approx(record["gradients"]["0.weight"]["grad_norm"], rel=1e-5)
    metrics = open("runs/flow/metrics.csv").read()
    assert "gradients" not in metrics and "{" not in metrics
    assert "gradient flow" in result.stdout and "no gradient flagged" in result.stdout
    assert "wrote runs/flow/gradients.csv" in result.stdout


def test_a_resumed_run_keeps_every_epoch_in_gradients_csv(project):
    path = write(project, epochs=2)
    assert runner.invoke(app, ["train", str(path), "-q"]).exit_code == 0
    resumed = runner.invoke(app, ["train", str(path), "-q", "--set", "training.epochs=4",
                                  "--resume", "runs/flow/last.npz"])
    assert resumed.exit_code == 0, resumed.output
    rows = list(csv.DictReader(open("runs/flow/gradients.csv")))
    assert [r["epoch"] for r in rows] == [e for e in "1234" for _ in range(4)]
    straight = project / "straight"
    assert runner.invoke(app, ["train", str(path), "-q", "--set", "training.epochs=4", "--out", str(straight)]).exit_code == 0
    assert rows == list(csv.DictReader(open(straight / "gradients.csv")))


def test_off_by_default_and_then_nothing_is_measured(project):
    path = write(project, log="false")
    run = open_run(path)
    run.train()
    assert not any(isinstance(cb, GradientFlow) for cb in run.trainer.callbacks)
    assert "gradients" not in run.trainer.history[0]
    assert not (project / "runs" / "flow" / "gradients.csv").exists()
    assert load_config(ROOT / "configs" / "digits_mlp.yaml").training.log_gradients is False


def test_a_dead_layer_is_flagged_as_vanishing_by_name():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1), nn.LogSoftMax())
    model.layers[0].bias = np.full(8, -100.0)              # every ReLU input negative: nothing flows back
    trainer = Trainer(model, nn.ClassNLLCriterion(), SGD(*model.parameters(), lr=0.1), batch_size=10,
                      callbacks=[GradientFlow(model)])
    trainer.fit(x, y, epochs=2)
    rows = {r["parameter"]: r for r in flow_summary(trainer.history, model)}
    assert rows["0.weight"]["flag"] == rows["0.bias"]["flag"] == "vanishing" and rows["0.weight"]["grad_norm"] == 0
    assert rows["2.weight"]["flag"] == "vanishing"          # its input, the dead ReLU's output, is all 0
    assert rows["2.bias"]["flag"] == "" and rows["2.bias"]["layer"] == "2 Linear"
    verdict = str(gradient_flow(trainer)[-1])
    assert verdict.startswith("[bold red]check 0 Linear, 2 Linear[/bold red]")


@pytest.mark.parametrize("first, last, ratio, expected", [
    (1.0, 5e-8, 1e-3, "vanishing"),
    (1.0, 100.0, 1e-3, "exploding"),        # grew 100x since the first epoch
    (1.0, 2.0, 1.5, "exploding"),           # a step larger than the weights
    (300.0, 700.0, 1e-3, ""),               # large, but not growing: an MSE on raw targets
    (1.0, 1e-6, float("nan"), ""),
])
def test_flags(first, last, ratio, expected):
    assert flag(first, last, ratio) == expected


def test_log_gradients_must_be_a_boolean(project):
    path = write(project, log="maybe")
    with pytest.raises(ConfigError, match=r"flow.yaml:10: training.log_gradients: expected true or false, got 'maybe'"):
        load_config(path)


def test_tensorboard_gets_the_logged_gradients(project):
    needs_extra("tensorboardX", "tensorboard")
    from test_tracking import read_scalars
    path = write(project, epochs=2)
    path.write_text(path.read_text() + "  tensorboard: true\n")
    assert runner.invoke(app, ["train", str(path), "-q"]).exit_code == 0
    scalars = read_scalars(project / "runs" / "flow" / "tensorboard")
    for row in csv.DictReader(open("runs/flow/gradients.csv")):
        tag = f"gradients/{row['parameter']}/grad_norm"
        assert scalars[tag][int(row["epoch"])] == pytest.approx(float(row["grad_norm"]), rel=1e-5)
