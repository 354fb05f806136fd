"""backprop export: ONNX models that onnx.checker accepts and onnxruntime runs to backprop's own
predict outputs (1e-5) on raw inputs; a layer without an ONNX equivalent is one line naming it."""

import re
from pathlib import Path

import numpy as np
import pytest

from backprop_cli import nn
from backprop_cli.cli.app import app
from backprop_cli.engine.experiment import forward_all, model_inputs, read_eval_data, restore
from common import ROOT, TINY, needs_extra, runner

CONV1D = """\
name: conv1d
data: {train: signals.npz, test: signals.npz, validation_split: 0.25, normalize: standardize}
model:
  - Conv1d: {out_channels: 6, kernel_size: 5, stride: 2, padding: 2}
  - BatchNorm1d
  - ReLU
  - Residual: [{Conv1d: {out_channels: 6, kernel_size: 3, padding: 1}}, ELU]
  - MaxPool1d: {kernel_size: 3, stride: 2, padding: 1}
  - Flatten
  - Dropout: 0.3
  - Linear: 3
criterion: CrossEntropyLoss
optimizer: {name: adam, lr: 0.01}
training: {epochs: 2, batch_size: 16}
"""

# every other layer with an ONNX equivalent, on 2-D inputs
EVERY_LAYER = """\
name: every_layer
data: {train: images.npz, test: images.npz, validation_split: 0.25, normalize: minmax}
model:
  - Conv2d: {out_channels: 4, kernel_size: [3, 2], stride: [2, 1], padding: [1, 0]}
  - SpatialBatchNormalization
  - LeakyReLU: 0.2
  - AvgPool2d: {kernel_size: 2, stride: 1, padding: 1}
  - MaxPool2d: {kernel_size: 2, padding: 1}
  - View: [-1]
  - Linear: 12
  - BatchNorm1d: {affine: false}
  - SoftPlus: {beta: 2}
  - Reshape: [3, 4]
  - Flatten
  - Residual: [{Linear: 12}, Tanh, Identity]
  - Sigmoid
  - Linear: 4
  - LogSoftMax
criterion: ClassNLLCriterion
optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
training: {epochs: 2, batch_size: 16}
"""


# PyTorch's names and options that ONNX has too
OPTIONS = """\
name: options
data: {train: images.npz, test: images.npz, validation_split: 0.25, normalize: minmax}
model:
  - Conv2d: {out_channels: 4, kernel_size: [2, 3], padding: same, dilation: [1, 2]}
  - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1, groups: 2, bias: false}
  - BatchNorm2d: {momentum: null}
  - MaxPool2d: {kernel_size: 2, dilation: 1, ceil_mode: true}
  - AvgPool2d: {kernel_size: 2, stride: 1, padding: 1, count_include_pad: false}
  - LogSoftmax: {dim: 1}
  - Flatten
  - Linear: 4
  - Softmax: {dim: 1}
criterion: {NLLLoss: {weight: [1, 1, 2, 1]}}
optimizer: {name: SGD, lr: 0.1, momentum: 0.9}
training: {epochs: 2, batch_size: 16}
"""


def needs_onnx(runtime: bool = True):
    """``(onnx, onnxruntime)`` (onnxruntime None unless ``runtime``), or a skip naming the onnx extra."""
    return needs_extra("onnx", "onnx"), needs_extra("onnxruntime", "onnx") if runtime else None


def train(config: Path, out: Path, *sets: str) -> Path:
    result = runner.invoke(app, ["train", str(config), "-q", "--out", str(out), "--set", "training.epochs=1", *sets])
    assert result.exit_code == 0, result.output
    return out / "last.npz"


def export_and_compare(checkpoint: Path, tmp_path: Path) -> None:
    """Export via the CLI, check the model, run it on the raw test set, compare with predict's pipeline."""
    onnx, ort = needs_onnx()
    target = tmp_path / f"{checkpoint.parent.name}.onnx"
    result = runner.invoke(app, ["export", str(checkpoint), str(target)])
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in result.stdout
    onnx.checker.check_model(onnx.load(str(target)), full_check=True)
    restored = restore(checkpoint)
    raw = read_eval_data(restored).x
    want = forward_all(restored.model, model_inputs(restored, raw, "test"))
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    output, probabilities = session.run(["output", "probabilities"], {"input": raw.astype(np.float32)})
    np.testing.assert_allclose(output, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probabilities, restored.criterion.probabilities(want), rtol=1e-5, atol=1e-5)
    assert np.array_equal(probabilities.argmax(axis=1), restored.criterion.predictions(want))


@pytest.mark.parametrize("config", ["digits_mlp.yaml", "digits_cnn.yaml"])
def test_the_shipped_digits_models_export_and_run_in_onnxruntime(config, tmp_path):
    needs_onnx()
    export_and_compare(train(ROOT / "configs" / config, tmp_path / config.removesuffix(".yaml")), tmp_path)


def test_quiet_export_prints_only_the_file_written(iris_dir):
    needs_onnx(runtime=False)
    (iris_dir / "tiny.yaml").write_text(TINY)
    checkpoint = train(iris_dir / "tiny.yaml", iris_dir / "runs/tiny")
    loud = runner.invoke(app, ["export", str(checkpoint), "m.onnx"])
    quiet = runner.invoke(app, ["export", str(checkpoint), "q.onnx", "-q"])
    assert loud.exit_code == quiet.exit_code == 0, quiet.output
    assert len(loud.stdout.splitlines()) == 4 and "  nodes " in loud.stdout
    [line] = quiet.stdout.splitlines()
    assert line.startswith("wrote q.onnx: ONNX opset") and (iris_dir / "q.onnx").is_file()


def signals(path: Path, shape, seed=0) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3 if len(shape) == 2 else 4, 96)
    x = rng.standard_normal((96, *shape)).astype(np.float32) * 3 + 5 + y.reshape(-1, *[1] * len(shape))
    np.savez(path, x=x, y=y)


def test_a_1d_cnn_with_batchnorm_residual_and_padding_exports(tmp_path):
    needs_onnx()
    signals(tmp_path / "signals.npz", (2, 24))
    (tmp_path / "conv1d.yaml").write_text(CONV1D)
    export_and_compare(train(tmp_path / "conv1d.yaml", tmp_path / "conv1d"), tmp_path)


def test_every_other_exportable_layer_exports(tmp_path):
    needs_onnx()
    signals(tmp_path / "images.npz", (2, 7, 6), seed=1)
    (tmp_path / "every.yaml").write_text(EVERY_LAYER)
    export_and_compare(train(tmp_path / "every.yaml", tmp_path / "every"), tmp_path)


def test_pytorch_names_and_options_export(tmp_path):
    needs_onnx()
    signals(tmp_path / "images.npz", (2, 7, 6), seed=2)
    (tmp_path / "options.yaml").write_text(OPTIONS)
    export_and_compare(train(tmp_path / "options.yaml", tmp_path / "options"), tmp_path)


@pytest.mark.parametrize("layer, what", [
    (lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), "padding_mode='reflect'"),
    (lambda: nn.AvgPool2d(2, ceil_mode=True), "ceil_mode"),
    (lambda: nn.BatchNorm1d(3, track_running_stats=False), "track_running_stats=False (batch statistics in evaluation)"),
    (lambda: nn.Flatten(2), "start_dim=2, end_dim=-1"),
])
def test_an_option_without_an_onnx_equivalent_is_one_line_naming_it(layer, what):
    needs_onnx(runtime=False)
    from backprop_cli.engine.export import Graph, convert_layer
    from backprop_cli.errors import ExportError

    with pytest.raises(ExportError, match=rf"^layer 0 \(.*\): {re.escape(what)} has no ONNX equivalent here$"):
        convert_layer(Graph(np.float32), nn.Sequential(layer()), "input", "")


def test_a_float64_model_exports_in_float64(tmp_path):
    """(onnxruntime's CPU provider has float64 Gemm, but no float64 Conv or pooling.)"""
    needs_onnx()
    signals(tmp_path / "signals.npz", (2, 24))
    mlp = CONV1D.replace(CONV1D[CONV1D.index("  - Conv1d"):CONV1D.index("  - Flatten")], "")
    (tmp_path / "mlp.yaml").write_text(mlp.replace("batch_size: 16", "batch_size: 16, dtype: float64"))
    export_and_compare(train(tmp_path / "mlp.yaml", tmp_path / "mlp64"), tmp_path)


def test_a_layer_without_an_onnx_equivalent_is_one_line_naming_it(tmp_path):
    needs_onnx(runtime=False)
    from backprop_cli.engine.export import Graph, convert_layer
    from backprop_cli.errors import ExportError

    class Swish(nn.Module):
        def update_output(self, input):
            return input / (1 + np.exp(-input))

        def update_grad_input(self, input, grad_output):
            return grad_output

    model = nn.Sequential(nn.Linear(2, 3), nn.Residual(nn.Sequential(nn.Linear(3, 3), Swish())))
    with pytest.raises(ExportError, match=r"^layer 1\.0\.1 \(Swish\(\)\) has no ONNX equivalent; backprop exports .*Linear"):
        convert_layer(Graph(np.float32), model, "input", "")


def test_without_the_onnx_extra_export_is_one_line(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    checkpoint = train(ROOT / "configs" / "iris.yaml", tmp_path / "iris")
    monkeypatch.setattr(builtins, "__import__", no_onnx)
    result = runner.invoke(app, ["export", str(checkpoint), str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: backprop export needs onnx: pip install 'backprop-cli[onnx]'"
    assert not (tmp_path / "m.onnx").exists()


def test_a_table_model_exports_its_mean_filling_and_names_its_inputs(tmp_path):
    """A CSV's missing cells (NaN inputs) are filled in the graph as predict fills them; the one-hot
    inputs are named in the metadata, in order."""
    import json
    onnx, _ = needs_onnx()
    lines = (ROOT / "data" / "iris.csv").read_text().splitlines()
    lines[0] += ",garden"
    lines[1:] = [f"{row},{'nse'[i % 3]}" for i, row in enumerate(lines[1:])]
    lines[3] = lines[3].replace("3.2,", ",", 1)                   # a missing sepal_width
    (tmp_path / "iris.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "t.yaml").write_text("data: {train: iris.csv, test: iris.csv, label_column: species, missing: mean,"
                                     " categorical: [garden], normalize: standardize}\n"
                                     "model: [{Linear: 8}, Tanh, {Linear: 3}]\ncriterion: CrossEntropyLoss\n"
                                     "optimizer: adam\n")
    checkpoint = train(tmp_path / "t.yaml", tmp_path / "table")
    assert np.isnan(read_eval_data(restore(checkpoint)).x).sum() == 1
    export_and_compare(checkpoint, tmp_path)
    names = json.loads({p.key: p.value for p in onnx.load(str(tmp_path / "table.onnx")).metadata_props}["inputs"])
    assert names == ["sepal_length", "sepal_width", "petal_length", "petal_width", "garden=e", "garden=n", "garden=s"]
