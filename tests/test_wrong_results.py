"""Regression tests for the wrong results found by review (issue 21), each written to fail on the code
it was found in: the reported loss with class weights or ignore_index, convolution caches, the
configured dtype, modes and monitors, and library bugs shown as user errors."""

import copy
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from backprop_cli import nn
from backprop_cli.cli.app import app
from backprop_cli.config.schema import load_config
from backprop_cli.engine.experiment import load_data
from backprop_cli.engine.trainer import Trainer, evaluate
from backprop_cli.errors import BackpropError
from common import ROOT


# ----------------------------------------------------------------------------- 1. the reported loss
class Frozen:
    """An optimizer that never changes the weights, so every batch size sees the same model."""

    lr = 0.0

    def step(self):
        pass


@pytest.mark.parametrize("criterion", [
    nn.CrossEntropyCriterion(weights=np.array([1.0, 5.0, 0.2])),
    nn.CrossEntropyCriterion(ignore_index=0),
    nn.ClassNLLCriterion(weights=np.array([0.5, 2.0, 1.0]), ignore_index=2),
], ids=["weights", "ignore_index", "both"])
def test_the_epoch_and_validation_loss_do_not_depend_on_the_batch_size(criterion):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    layers = [nn.Linear(4, 3, rng=1)] + ([nn.LogSoftMax()] if isinstance(criterion, nn.ClassNLLCriterion) else [])
    model = nn.Sequential(*layers).to(np.float64)
    whole = criterion.forward(model.forward(x), y)
    for batch_size in (1, 8, 64):
        assert evaluate(model, criterion, x, y, batch_size=batch_size)["loss"] == pytest.approx(whole, abs=1e-6)
        trainer = Trainer(model, criterion, Frozen(), batch_size=batch_size, seed=0)
        [record] = trainer.fit(x, y, x, y, epochs=1)
        assert record["train_loss"] == pytest.approx(whole, abs=1e-6)
        assert record["val_loss"] == pytest.approx(whole, abs=1e-6)


def test_a_batch_whose_targets_are_all_ignored_adds_nothing_to_the_loss():
    criterion = nn.CrossEntropyCriterion(ignore_index=0)
    x = np.random.default_rng(1).standard_normal((6, 3))
    y = np.array([0, 0, 1, 2, 0, 1])
    model = nn.Sequential(nn.Linear(3, 3, rng=0)).to(np.float64)
    whole = criterion.forward(model.forward(x), y)
    assert evaluate(model, criterion, x, y, batch_size=2)["loss"] == pytest.approx(whole, abs=1e-12)


# ----------------------------------------------------------------------------- 3. convolution caches
CONVOLUTIONS = [(lambda: nn.SpatialConvolution(2, 3, 3, padding=1, rng=0), (2, 2, 5, 5)),
                (lambda: nn.TemporalConvolution(2, 3, 3, stride=2, rng=0), (2, 2, 9))]


def forwarded(make, shape):
    """A float64 convolution after a forward of random ``x``; ``(conv, x, a random grad_output)``."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    conv = make().to(np.float64)
    return conv, x, rng.standard_normal(conv.forward(x).shape)


@pytest.mark.parametrize("make, shape", CONVOLUTIONS, ids=["2d", "1d"])
def test_a_convolution_backward_reads_the_weights_it_has_now(make, shape):
    conv, x, g = forwarded(make, shape)
    conv.weight += np.random.default_rng(1).standard_normal(conv.weight.shape)   # e.g. an optimizer step
    fresh = copy.deepcopy(conv)
    fresh.forward(x)
    np.testing.assert_allclose(conv.update_grad_input(x, g), fresh.update_grad_input(x, g), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, shape", CONVOLUTIONS, ids=["2d", "1d"])
def test_a_convolution_reads_grad_output_as_it_is_when_accumulating(make, shape):
    conv, x, g = forwarded(make, shape)
    conv.update_grad_input(x, g)
    g *= 10                                                         # changed in place between the two calls
    conv.acc_grad_parameters(x, g)
    fresh, _, _ = forwarded(make, shape)
    fresh.acc_grad_parameters(x, g.copy())
    np.testing.assert_allclose(conv.grad_weight, fresh.grad_weight, rtol=1e-12)
    np.testing.assert_allclose(conv.grad_bias, fresh.grad_bias, rtol=1e-12)


# ----------------------------------------------------------------------------- 5. training.dtype
@pytest.mark.parametrize("fmt", ["csv", "npz"])
def test_float64_training_reads_and_normalises_in_float64(tmp_path, fmt):
    x = np.array([[0.1, 1.0], [0.7, 2.0], [0.3, 4.0], [0.9, 8.0]])
    if fmt == "csv":
        rows = "\n".join(f"{a},{b},{k}" for (a, b), k in zip(x, "abab"))
        (tmp_path / "train.csv").write_text("f1,f2,label\n" + rows + "\n")
        train = "train.csv"
    else:
        np.savez(tmp_path / "train.npz", x=x, y=np.array([0, 1, 0, 1]))
        train = "train.npz"
    for normalize in ("none", "standardize"):
        (tmp_path / "c.yaml").write_text(
            f"data: {{train: {train}, validation_split: 0, normalize: {normalize}}}\n"
            "model: [{Linear: 2}]\ncriterion: CrossEntropyLoss\noptimizer: {name: sgd, lr: 0.1}\n"
            "training: {epochs: 1, dtype: float64}\n")
        data = load_data(load_config(tmp_path / "c.yaml"))
        assert data.train.x.dtype == np.float64
        if normalize == "none":
            assert data.train.x[0, 0] == 0.1                          # not 0.10000000149011612
        else:
            assert data.normalizer.shift.dtype == np.float64
            np.testing.assert_array_equal(data.normalizer.shift, x.mean(axis=0))
            np.testing.assert_allclose(data.train.x, (x - x.mean(axis=0)) / x.std(axis=0), rtol=1e-15)


# ----------------------------------------------------------------------------- 6. modes and monitors
def test_evaluate_gives_every_module_back_its_own_mode():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNormalization(4), nn.Dropout(0.5, rng=0),
                          nn.Linear(4, 2, rng=0))
    model.train()
    model[1].evaluate()                                              # a BatchNorm the user froze
    x, y = np.ones((5, 3), np.float32), np.zeros(5, np.int64)
    evaluate(model, nn.CrossEntropyCriterion(), x, y)
    assert [m.training for m in model.modules()] == [True, True, False, True, True]


def test_fit_without_validation_data_does_not_change_what_a_later_fit_monitors():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 2)).astype(np.float32), rng.integers(0, 2, 40)
    model = nn.Sequential(nn.Linear(2, 2, rng=0))
    trainer = Trainer(model, nn.CrossEntropyCriterion(), Frozen(), batch_size=8, monitor="val_accuracy",
                      mode="max")
    trainer.fit(x, y, epochs=1)
    assert (trainer.monitor, trainer.mode) == ("val_accuracy", "max")
    history = trainer.fit(x, y, x[:20], y[:20], epochs=3)
    assert trainer.best_metric == max(r["val_accuracy"] for r in history[1:])


# ----------------------------------------------------------------------------- 7. bugs are not user errors
def test_a_shape_mistake_is_a_backprop_error_and_keeps_its_cause():
    model = nn.Sequential(nn.ReLU(), nn.Linear(3, 2, rng=0))
    with pytest.raises(nn.ShapeError) as caught:
        model.forward(np.ones((2, 4), np.float32))
    err = caught.value
    assert isinstance(err, BackpropError) and isinstance(err, ValueError)
    assert str(err).startswith("layer 1 (Linear(in_features=3, out_features=2)): Linear expected input (N, 3)")
    assert isinstance(err.__cause__, nn.ShapeError) and err.__cause__.__traceback__ is not None


@pytest.fixture
def xor(tmp_path, monkeypatch):
    shutil.copy(ROOT / "data" / "xor.csv", tmp_path / "xor.csv")
    (tmp_path / "xor.yaml").write_text(
        "data: {train: xor.csv, validation_split: 0}\nmodel: [{Linear: 4}, Tanh, {Linear: 2}]\n"
        "criterion: CrossEntropyLoss\noptimizer: {name: sgd, lr: 0.5}\ntraining: {epochs: 2, batch_size: 4}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _planted(self, input, grad_output):
    return grad_output @ self.weight.T                               # the bug: W.T instead of W


def test_a_bug_in_the_library_is_an_internal_error_with_its_traceback_in_a_file(xor, monkeypatch):
    monkeypatch.setattr(nn.Linear, "update_grad_input", _planted)
    monkeypatch.setattr(tempfile, "tempdir", str(xor))
    result = CliRunner().invoke(app, ["train", "xor.yaml"])
    assert result.exit_code == 2, result.output
    [line] = [l for l in result.output.splitlines() if l.strip()]
    assert "internal error" in line and "a bug in backprop, not in your input" in line
    path = Path(line.rsplit("traceback in ", 1)[1].strip())
    assert path.parent == xor
    text = path.read_text()
    assert "Traceback (most recent call last)" in text and "_planted" in text and "matmul" in text


def test_verbose_shows_an_internal_error_s_traceback_on_the_terminal_and_still_in_its_file(xor, monkeypatch):
    monkeypatch.setattr(nn.Linear, "update_grad_input", _planted)
    monkeypatch.setattr(tempfile, "tempdir", str(xor))
    result = CliRunner().invoke(app, ["train", "xor.yaml", "-v"])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr and "_planted" in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: internal error") and Path(line.rsplit("traceback in ", 1)[1]).parent == xor
    mistake = CliRunner().invoke(app, ["train", "nope.yaml", "-v"])          # a user's mistake: no traceback
    assert mistake.exit_code == 1 and "Traceback" not in mistake.output and mistake.stderr.count("\n") == 1


def test_debug_shows_an_internal_error_s_traceback_on_the_terminal(xor, monkeypatch):
    monkeypatch.setattr(nn.Linear, "update_grad_input", _planted)
    result = CliRunner().invoke(app, ["--debug", "train", "xor.yaml"])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.output and "_planted" in result.output
    assert "internal error" in result.output and "traceback in" not in result.output


@pytest.mark.parametrize("edit, message", [
    ({"model": "[{Linear: 4}, BatchNorm1d, Tanh, {Linear: 2}]", "training": "{epochs: 1, batch_size: 3}"},
     "BatchNormalization needs more than 1 value per feature in training, got input (1, 4)"),
    ({"model": "[{Linear: 1}]", "criterion": "BCELoss"},
     "BCELoss expected output probabilities in [0, 1]"),
    ({"data": "{train: xor.csv, validation_split: 0.1}"},
     "xor.yaml:1: data.validation_split: a validation fraction of 0.1 of 4 samples leaves 4 for training and 0"),
    ({"data": "{train: xor.csv, validation: wide.csv}"},
     "wide.csv:1: no columns named 'x1', 'x2' (the model needs them); the header has a, b, c, label"),
], ids=["batchnorm-batch-of-1", "bce-without-sigmoid", "validation-split-too-small", "validation-too-wide"])
def test_user_mistakes_found_while_running_stay_one_line_user_errors(xor, edit, message):
    sections = {"data": "{train: xor.csv, validation_split: 0}", "model": "[{Linear: 4}, Tanh, {Linear: 2}]",
                "criterion": "CrossEntropyLoss", "optimizer": "{name: sgd, lr: 0.5}",
                "training": "{epochs: 1, batch_size: 4}"} | edit
    (xor / "xor.yaml").write_text("".join(f"{k}: {v}\n" for k, v in sections.items()))
    (xor / "wide.csv").write_text("a,b,c,label\n0,0,1,0\n1,0,1,1\n")
    result = CliRunner().invoke(app, ["train", "xor.yaml"])
    lines = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert message in lines[0] and "internal error" not in lines[0]
