"""TensorBoard: the event file holds the values of metrics.csv (and gradient statistics when an epoch
record has them); a missing extra and a bad value are one line each."""

import csv
import struct
from pathlib import Path

import pytest

from backprop_cli.cli.app import app
from backprop_cli.engine import tracking
from common import needs_extra, runner


CONFIG = """\
name: tiny
data: {train: iris.csv, validation_split: 0.2, normalize: standardize}
model: [{Linear: 8}, Tanh, {Linear: 3}]
criterion: CrossEntropyLoss
optimizer: {name: sgd, lr: 0.1}
schedule: {name: step, step_size: 1, gamma: 0.5}
training:
  epochs: 3
  tensorboard: true
"""


@pytest.fixture
def project(iris_dir):
    (iris_dir / "tiny.yaml").write_text(CONFIG)
    return iris_dir


def read_scalars(directory: Path) -> dict[str, dict[int, float]]:
    """Every scalar in the TFRecord event files under ``directory``: ``{tag: {step: value}}``.
    A record is: length (uint64), its CRC (uint32), the Event protobuf, its CRC (uint32)."""
    from tensorboardX.proto import event_pb2

    found: dict[str, dict[int, float]] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


def test_the_event_file_holds_the_values_of_metrics_csv(project):
    needs_extra("tensorboardX", "tensorboard")
    result = runner.invoke(app, ["train", "tiny.yaml", "-q"])
    assert result.exit_code == 0, result.output
    scalars = read_scalars(project / "runs/tiny/tensorboard")
    rows = list(csv.DictReader((project / "runs/tiny/metrics.csv").open()))
    assert len(rows) == 3 and {"val_f1_macro", "val_recall_0", "lr"} <= set(rows[0])
    checked = 0
    for row in rows:
        for column, text in row.items():
            if column != "epoch" and text:
                assert scalars[tracking.tag(column)][int(row["epoch"])] == pytest.approx(float(text), rel=1e-5, abs=1e-9)
                checked += 1
    assert checked >= 3 * 15
    assert scalars["lr"] == pytest.approx({1: 0.1, 2: 0.05, 3: 0.025})
    assert "train/loss" in scalars and "val/accuracy" in scalars


def test_gradient_statistics_in_an_epoch_record_are_written(tmp_path):
    needs_extra("tensorboardX", "tensorboard")
    board = tracking.TensorBoard(tmp_path)
    record = {"epoch": 4, "train_loss": 0.5, "lr": 0.01, "best": True,
              "gradients": {"1.weight": {"grad_norm": 2.5, "update_ratio": 1e-3}, "1.bias": {"grad_norm": 0.25}}}
    board.on_epoch_end(None, record)
    board.close()
    scalars = read_scalars(tmp_path)
    assert scalars["gradients/1.weight/grad_norm"] == {4: 2.5}
    assert scalars["gradients/1.weight/update_ratio"][4] == pytest.approx(1e-3)
    assert scalars["gradients/1.bias/grad_norm"] == {4: 0.25} and scalars["train/loss"] == {4: 0.5}
    assert "best" not in scalars


def test_a_missing_tensorboard_extra_is_one_line(project, monkeypatch):
    monkeypatch.setattr(tracking, "available", lambda: False)
    result = runner.invoke(app, ["train", "tiny.yaml", "-q"])
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: tiny.yaml:9: training.tensorboard: needs tensorboardX: "
                                     "pip install 'backprop-cli[tensorboard]'")
    assert not (project / "runs").exists()


def test_a_bad_tensorboard_value_is_one_line(project):
    (project / "tiny.yaml").write_text(CONFIG.replace("tensorboard: true", "tensorboard: maybe"))
    result = runner.invoke(app, ["train", "tiny.yaml", "-q"])
    assert result.exit_code == 1
    assert result.stderr.count("error:") == 1 and "tiny.yaml:9: training.tensorboard:" in result.stderr
