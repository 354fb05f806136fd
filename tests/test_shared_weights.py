"""One module used twice (``lin = Linear(4, 4); Sequential(lin, ReLU(), lin)``): each use keeps its own
input for backward, both uses' gradients add into the one ``grad_weight``, ``parameters()`` and
checkpoints hold each array once; in a config, sharing is asked for by name (``Shared: enc``)."""

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from backprop_cli import nn
from backprop_cli.cli.app import app
from backprop_cli.config.schema import load_config
from backprop_cli.diagnostics.gradcheck import check_module
from backprop_cli.engine.checkpoint import load_checkpoint
from backprop_cli.engine.experiment import build
from backprop_cli.errors import ConfigError
from backprop_cli.optim import SGD
from common import ROOT


def shared_mlp():
    lin = nn.Linear(4, 4, rng=0)
    return nn.Sequential(lin, nn.Tanh(), lin, nn.Tanh(), nn.Linear(4, 2, rng=1)), lin


def test_gradients_of_both_uses_add_into_the_one_weight():
    model, lin = shared_mlp()
    model.to(np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    g = rng.standard_normal((3, 2))
    model.forward(x)
    model.zero_grad_parameters()
    model.backward(x, g)
    # by hand: h1 = tanh(x W^T + b), h2 = tanh(h1 W^T + b), out = h2 V^T + c
    W, b, V = lin.weight, lin.bias, model[4].weight
    a1 = x @ W.T + b
    h1 = np.tanh(a1)
    a2 = h1 @ W.T + b
    h2 = np.tanh(a2)
    d2 = (g @ V) * (1 - h2 ** 2)
    d1 = (d2 @ W) * (1 - h1 ** 2)
    np.testing.assert_allclose(lin.grad_weight, d2.T @ h1 + d1.T @ x, rtol=1e-12)
    np.testing.assert_allclose(lin.grad_bias, d2.sum(0) + d1.sum(0), rtol=1e-12)
    np.testing.assert_allclose(model.grad_input, d1 @ W, rtol=1e-12)


@pytest.mark.parametrize("make, shape", [
    (lambda: shared_mlp()[0], (3, 4)),
    (lambda: (lambda t: nn.Sequential(nn.Linear(3, 3, rng=0), t, nn.Linear(3, 3, rng=1), t))(nn.Tanh()), (3, 3)),
    (lambda: (lambda b: nn.Sequential(b, b))(nn.Sequential(nn.Linear(3, 3, rng=2), nn.Sigmoid())), (3, 3)),
    (lambda: (lambda b: nn.Sequential(b, nn.Residual(b)))(nn.Sequential(nn.Linear(3, 3, rng=4), nn.Tanh())), (2, 3)),
    (lambda: (lambda c: nn.Sequential(c, nn.ReLU(), c))(nn.SpatialConvolution(2, 2, 3, padding=1, rng=3)),
     (2, 2, 4, 4)),
    (lambda: (lambda m: nn.Sequential(m, nn.SpatialConvolution(1, 1, 1, rng=5), m))(nn.SpatialMaxPooling(2, stride=1)),
     (2, 1, 4, 4)),
], ids=["linear", "tanh", "block", "block-in-residual", "conv", "maxpool"])
def test_a_shared_module_passes_gradcheck(make, shape):
    model = make()
    x = np.random.default_rng(1).standard_normal(shape)
    failed = [r for r in check_module(model, x) if not r.passed]
    assert not failed, failed


def test_parameters_list_a_shared_array_once_and_the_optimizer_steps_it_once():
    model, lin = shared_mlp()
    params, grads = model.parameters()
    assert len(params) == 4 and params[0] is lin.weight and grads[0] is lin.grad_weight
    assert model.num_parameters() == 20 + 10
    assert list(model.state_dict()) == ["0.weight", "0.bias", "4.weight", "4.bias"]
    before = lin.weight.copy()
    lin.grad_weight[...] = 1.0
    SGD(*model.parameters(), lr=0.1).step()
    np.testing.assert_allclose(lin.weight, before - 0.1, rtol=1e-6)


def test_a_shared_module_s_clone_keeps_the_sharing():
    import copy
    model, _ = shared_mlp()
    twin = copy.deepcopy(model)
    assert twin[0] is twin[2] and twin[0] is not model[0]


# ----------------------------------------------------------------------------- configs
SHARED = """\
name: shared
seed: 0
data: {train: xor.csv, validation_split: 0}
model:
  - Linear: {out_features: 4}
  - Tanh
  - {Linear: {out_features: 4}, name: hidden}
  - Tanh
  - Shared: hidden
  - Tanh
  - Linear: 2
criterion: CrossEntropyLoss
optimizer: {name: sgd, lr: 0.5, momentum: 0.9}
training: {epochs: 3, batch_size: 4}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(ROOT / "data" / "xor.csv", tmp_path / "xor.csv")
    (tmp_path / "shared.yaml").write_text(SHARED)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_config_shares_a_layer_by_name(project):
    model, _ = build(load_config("shared.yaml"), (2,))
    assert model[4] is model[2] and model[0] is not model[2]
    assert len(model.parameters()[0]) == 6


def test_a_shared_layer_may_sit_inside_a_container_and_a_named_container_may_be_shared(project):
    (project / "nested.yaml").write_text(SHARED.replace("  - Shared: hidden\n",
                                                        "  - {Residual: [{Shared: hidden}, Tanh], name: block}\n"
                                                        "  - Shared: block\n"))
    model, _ = build(load_config("nested.yaml"), (2,))
    assert model[4].block[0] is model[2] and model[5] is model[4]
    failed = [r for r in check_module(model, np.random.default_rng(0).standard_normal((3, 2))) if not r.passed]
    assert not failed, failed


def test_a_yaml_anchor_gives_two_layers_not_one(project):
    (project / "anchor.yaml").write_text(SHARED.replace("  - {Linear: {out_features: 4}, name: hidden}\n",
                                                        "  - &h {Linear: {out_features: 4}}\n")
                                         .replace("  - Shared: hidden\n", "  - *h\n"))
    model, _ = build(load_config("anchor.yaml"), (2,))
    assert model[4] is not model[2] and len(model.parameters()[0]) == 8


@pytest.mark.parametrize("edit, message", [
    (("  - Shared: hidden\n", "  - Shared: hiden\n"),
     "shared.yaml:9: model.4.Shared: no layer named 'hiden' before this one; did you mean hidden?"),
    (("  - Linear: 2\n", "  - {Linear: 2, name: hidden}\n"),
     "shared.yaml:11: model.6.name: 'hidden' already names model.2"),
    (("  - Tanh\n  - Shared", "  - Shared: later\n  - Shared"),
     "shared.yaml:8: model.3.Shared: no layer named 'later' before this one"),
    (("  - Linear: 2\n", "  - {Linear: 2, name: 3}\n"),
     "shared.yaml:11: model.6.name: expected a name for the layer (letters, digits and _), got 3"),
    (("  - Shared: hidden\n", "  - {Shared: hidden, name: again}\n"),
     "shared.yaml:9: model.4.name: a Shared entry is the layer 'hidden' again and takes no name of its own"),
])
def test_a_bad_reference_is_one_line(project, edit, message):
    (project / "shared.yaml").write_text(SHARED.replace(*edit))
    with pytest.raises(ConfigError) as caught:
        load_config("shared.yaml")
    assert str(caught.value).startswith(message)


def test_a_shared_layer_trains_gradchecks_and_checkpoints_one_array(project):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "shared.yaml"])
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(project / "runs" / "shared" / "last.npz")
    names = sorted(k for k in ckpt.arrays if k.startswith("model."))
    assert names == ["model.0.bias", "model.0.weight", "model.2.bias", "model.2.weight",
                     "model.6.bias", "model.6.weight"]
    saved = (project / "runs" / "shared" / "config.yaml").read_text()
    assert "Shared: hidden" in saved and "name: hidden" in saved
    result = runner.invoke(app, ["eval", "runs/shared/last.npz", "--data", "xor.csv", "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "shared.yaml", "--resume", "runs/shared/last.npz",
                                 "--set", "training.epochs=4"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["gradcheck", "shared.yaml"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["summary", "shared.yaml"])
    assert result.exit_code == 0 and "shared with 2" in result.output, result.output


def test_explain_walks_a_shared_layer_at_each_use(project):
    from backprop_cli.diagnostics.explain import explain

    result = explain("shared.yaml", batch=4)
    assert result["gradcheck"] and all(row["passed"] for row in result["gradcheck"])
    x = np.array(result["input"]["values"], np.float32)
    y = np.array(result["target"]["values"])
    model, criterion = build(load_config("shared.yaml"), (2,))
    out = model.forward(x)
    model.zero_grad_parameters()
    model.backward(x, criterion.backward(out, y))
    [row] = [r for r in result["backward"] if r["index"] == 2]
    grad = {p["name"]: np.array(p["grad"]["values"]) for p in row["parameters"]}
    np.testing.assert_allclose(grad["2.weight"], model[2].grad_weight, rtol=1e-6, atol=1e-7)
