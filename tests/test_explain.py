"""``backprop explain``: what it prints is what the library computes, on the shipped data and on small
models covering every layer type and every criterion."""

import io
import json
import shutil

import numpy as np
import pytest
from rich.console import Console

from backprop_cli.cli.app import app
from backprop_cli.cli.render_explain import explanation
from backprop_cli.diagnostics.explain import explain
from backprop_cli.engine.experiment import make_trainer, prepare
from common import ROOT, runner

DIGITS = ROOT / "configs" / "digits_mlp.yaml"


def invoke(*args):
    return runner.invoke(app, ["explain", *map(str, args)])


def as_json(*args) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def f32(values) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def rendered(result: dict, width: int = 100) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, soft_wrap=True, color_system=None)
    for renderable in explanation(result):
        console.print(renderable)
    return buffer.getvalue()


@pytest.mark.parametrize("batch", [1, 4])
def test_classnll_grad_output_is_minus_one_over_n_at_the_target_and_zero_elsewhere(batch):
    r = as_json(DIGITS, "--sample", 5, "--batch", batch)
    targets = r["target"]["values"]
    expected = np.zeros((batch, 10), dtype=np.float32)
    expected[np.arange(batch), targets] = -1 / batch
    assert np.array_equal(f32(r["criterion"]["grad_output"]["values"]), expected)
    text = invoke(DIGITS, "--sample", 5, "--batch", batch).stdout
    rows = [", ".join("-1" if batch == 1 and v else f"{v:.4g}" if v else "0" for v in row) for row in expected]
    if batch == 1:
        assert f"grad_output = dLoss/dOutput (1, 10): {rows[0]}" in text
    else:
        assert all(f"{i}: {row}" in text for i, row in enumerate(rows))
    assert f"= -1/N (N = {batch}, the batch)" in text


def test_printed_grad_input_is_what_update_grad_input_returns():
    r = as_json(DIGITS, "--sample", 3, "--batch", 2)
    _, data, model, _ = prepare(DIGITS)                  # the same fresh weights (the config's seed)
    x = data.train.x[3:5]
    assert np.array_equal(f32(r["input"]["values"]), x)
    inputs = []
    for layer in model.train().layers:
        inputs.append(x)
        x = layer.forward(x)
    assert [b["index"] for b in r["backward"]] == [4, 3, 2, 1, 0]
    for b, below in zip(r["backward"], r["backward"][1:] + [None]):
        layer = model.layers[b["index"]]
        grad_input = layer.update_grad_input(inputs[b["index"]], f32(b["grad_output"]["values"]))
        assert np.array_equal(f32(b["grad_input"]["values"]), grad_input)
        if below is not None:                         # the grad_input handed to the layer below
            assert b["grad_input"]["values"] == below["grad_output"]["values"]
    assert r["weights_unchanged_by_backward"] is True


def test_printed_step_is_the_change_training_makes():
    r = as_json(DIGITS, "--sample", 0)
    config, data, model, criterion = prepare(DIGITS)
    trainer = make_trainer(config, model, criterion)
    trainer.batch_size, trainer.shuffle = 1, False
    before = model.state_dict()
    trainer.fit(data.train.x[:1], data.train.y[:1], epochs=1)     # one real training step on sample 0
    after = model.state_dict()
    text = invoke(DIGITS, "--sample", 0).stdout
    for p in r["step"]["parameters"]:
        change = after[p["name"]] - before[p["name"]]
        np.testing.assert_allclose(f32(p["step"]["values"]), change, rtol=1e-6, atol=1e-9)
        assert f"{np.linalg.norm(change.astype(np.float64)):.4g}" in text
    assert r["step"]["equals_minus_lr_grad"] is True and r["step"]["steps_before"] == 0
    assert "weights after backward: unchanged" in text


def test_explain_is_plain_and_fits_100_columns_when_piped():
    result = invoke(DIGITS, "--sample", 0)
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output
    for title in ("1. forward", "2. loss", "3. backward", "4. step", "5. finite differences"):
        assert title in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    assert result.stdout.count("pass ") == 7 and "FAIL" not in result.stdout


def test_quiet_explain_is_the_loss_the_step_and_the_check():
    loud, quiet = invoke(DIGITS, "--sample", 0), invoke(DIGITS, "--sample", 0, "-q")
    assert quiet.exit_code == 0, quiet.output
    assert len(quiet.stdout.splitlines()) < len(loud.stdout.splitlines()) / 3
    assert "1. forward" not in quiet.stdout and "3. backward" not in quiet.stdout
    loss = next(line for line in loud.stdout.splitlines() if line.strip().startswith("loss = "))
    assert loss in quiet.stdout and "4. step" in quiet.stdout and "1.weight" in quiet.stdout
    assert "the step is -lr * grad" in quiet.stdout and quiet.stdout.count("pass ") == 7


def test_layer_limits_the_backward_part():
    r = as_json(DIGITS, "--layer", 3, "--no-check")
    assert [b["index"] for b in r["backward"]] == [3] and r["gradcheck"] is None
    assert [p["name"] for p in r["backward"][0]["parameters"]] == ["3.weight", "3.bias"]
    assert r["backward"][0]["formula"] == "grad_input = grad_output @ W."


@pytest.mark.parametrize("args, message", [
    (("--layer", 9), "--layer: the model has layers 0 to 4, got 9"),
    (("--sample", 99999), "--sample: the training data has samples 0 to 1436, got 99999"),
    (("--set", "training.epochz=1"), "unknown key"),
])
def test_bad_flags_are_one_line_errors(args, message):
    result = invoke(DIGITS, *args)
    assert result.exit_code == 1 and message in result.stderr and len(result.stderr.splitlines()) == 1, result.output


# ----------------------------------------------------------------------------- every layer and criterion
HEAD = {"iris": "{train: iris.csv, validation_split: 0, normalize: standardize}",
        "diabetes": "{train: diabetes.csv, validation_split: 0, normalize: standardize}",
        "xor": "{train: xor.csv, validation_split: 0, task: binary}",
        "digits": "{train: digits/train-images-idx3-ubyte.gz, train_labels: digits/train-labels-idx1-ubyte.gz, "
                  "validation_split: 0, normalize: scale, scale: 16}"}
CASES = {
    "batchnorm dropout residual": ("iris", "[Linear: 8, BatchNormalization, Tanh, Dropout: 0.5, "
                                   "{Residual: [Linear: 8, ELU]}, LeakyReLU, Linear: 3, LogSoftMax]", "ClassNLLCriterion", "sgd"),
    "activations": ("iris", "[Linear: 6, Sigmoid, Linear: 6, SoftPlus, Linear: 3]", "CrossEntropyCriterion", "adam"),
    "softmax hinge": ("iris", "[Linear: 5, ReLU, Linear: 3, SoftMax]", "MultiMarginCriterion", "rmsprop"),
    "conv1d": ("iris", "[Reshape: [1, 4], TemporalConvolution: {out_channels: 2, kernel_size: 2}, "
                       "TemporalMaxPooling: 2, Flatten, Linear: 3]", "CrossEntropyLoss", "adagrad"),
    "conv2d": ("digits", "[Conv2d: {out_channels: 3, kernel_size: 3, padding: 1}, SpatialBatchNormalization, ReLU, "
                         "MaxPool2d: 2, AvgPool2d: 2, Flatten, Linear: 10, LogSoftmax]", "NLLLoss", "adamw"),
    "mse": ("diabetes", "[Linear: 4, Tanh, Linear: 1]", "MSECriterion", "sgd"),
    "l1": ("diabetes", "[Linear: 1]", "AbsCriterion", "sgd"),
    "smooth l1": ("diabetes", "[Linear: 3, ReLU, Linear: 1]", "SmoothL1Criterion", "sgd"),
    "bce": ("xor", "[Linear: 3, Tanh, Linear: 1, Sigmoid]", "BCECriterion", "sgd"),
    "bce logits": ("xor", "[Linear: 3, Tanh, Linear: 1]", "BCEWithLogitsCriterion", "sgd"),
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    for name in ("iris.csv", "diabetes.csv", "xor.csv"):
        shutil.copy(ROOT / "data" / name, path / name)
    shutil.copytree(ROOT / "data" / "digits", path / "digits")
    return path


@pytest.mark.parametrize("case", CASES)
def test_explain_covers_every_layer_type_and_criterion(data_dir, case):
    data, model, criterion, optimizer = CASES[case]
    extra = ", momentum: 0.9, weight_decay: 0.001" if optimizer == "sgd" else ""
    path = data_dir / f"{case.replace(' ', '_')}.yaml"
    path.write_text(f"data: {HEAD[data]}\nmodel: {model}\ncriterion: {criterion}\n"
                    f"optimizer: {{name: {optimizer}, lr: 0.01{extra}}}\ntraining: {{clip_grad_norm: 1.0}}\n")
    r = explain(path, batch=4)
    json.dumps(r)
    assert all(row["passed"] for row in r["gradcheck"]), r["gradcheck"]
    assert r["step"]["clipping"].startswith("clip_grad_norm 1:")
    assert r["step"]["equals_minus_lr_grad"] is (optimizer == "sgd" and not extra)
    assert max(len(line) for line in rendered(r).splitlines()) <= 100
    for f in r["forward"]:
        for note in f["notes"]:
            if "mask" in note:                          # Dropout: the mask it used, and the count it states
                assert f"kept {int(np.sum(note['mask']['values']))} of 32" in note["text"]
            else:                                       # BatchNorm: the statistics of its own input
                layer_input = np.array(r["forward"][f["index"] - 1]["output"]["values"])
                axes = (0,) + tuple(range(2, layer_input.ndim))
                np.testing.assert_allclose(note["batch_mean"]["values"], layer_input.mean(axis=axes), atol=1e-6)


def test_explain_a_checkpoint_uses_its_weights_and_optimizer_state(data_dir, monkeypatch):
    monkeypatch.chdir(data_dir)
    (data_dir / "ck.yaml").write_text(f"name: ck\ndata: {HEAD['iris']}\nmodel: [Linear: 4, Tanh, Linear: 3, LogSoftMax]\n"
                                      "criterion: ClassNLLCriterion\noptimizer: {name: sgd, lr: 0.1, momentum: 0.9}\n"
                                      "training: {epochs: 2, batch_size: 50}\n")
    assert runner.invoke(app, ["train", "ck.yaml", "-q"]).exit_code == 0
    r = as_json("runs/ck/last.npz", "--sample", 7)
    assert r["weights"].startswith("those of runs/ck/last.npz (after epoch 2)")
    assert r["step"]["steps_before"] == 6 and r["step"]["equals_minus_lr_grad"] is False
    assert "6 earlier steps" in r["step"]["why"]
    from backprop_cli.engine.checkpoint import is_checkpoint, load_checkpoint
    assert is_checkpoint("runs/ck/last.npz") and not is_checkpoint("ck.yaml") and not is_checkpoint("nothere")
    stored = load_checkpoint("runs/ck/last.npz").group("model")
    first = r["backward"][-1]
    assert first["index"] == 0
    # the forward ran on the stored weights: its first output is x @ W.T + b with them
    x = f32(r["input"]["values"])
    np.testing.assert_allclose(r["forward"][0]["output"]["values"], x @ stored["0.weight"].T + stored["0.bias"],
                               rtol=1e-6)
    one_line = runner.invoke(app, ["explain", "runs/ck/last.npz", "--set", "seed=1"])
    assert one_line.exit_code == 1 and "--set" in one_line.stderr


def test_batchnorm_on_one_sample_says_to_take_a_batch(data_dir):
    path = data_dir / "bn1.yaml"
    path.write_text(f"data: {HEAD['iris']}\nmodel: [Linear: 4, BatchNormalization, Linear: 3]\n"
                    "criterion: CrossEntropyCriterion\noptimizer: sgd\n")
    result = invoke(path)
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1, result.output
    assert "bn1.yaml:2: model.1 (BatchNormalization)" in result.stderr and "try --batch 8" in result.stderr
