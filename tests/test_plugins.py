"""Modules and criterions written by the user, loaded from a config's ``plugins:`` and only from there:
training, gradcheck naming the wrong method, checkpoints that need their plugin, and one-line errors."""

import sys
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.config.schema import load_config
from backprop_cli.engine.experiment import prepare
from backprop_cli.errors import ConfigError
from common import invoke, ROOT


CONFIG = """\
name: plug
seed: 0
plugins: [{plugin}]
data: {{train: iris.csv, test: iris.csv, validation_split: 0.2, normalize: standardize}}
model:
  - Linear: 6
  - {layer}
  - Linear: 3
  - LogSoftMax
criterion: {criterion}
optimizer: {{name: sgd, lr: 0.1, momentum: 0.9}}
training: {{epochs: 2, batch_size: 16}}
"""

LAYERS = (ROOT / "examples" / "my_layers.py").read_text()


@pytest.fixture
def project(iris_dir):
    (iris_dir / "my_layers.py").write_text(LAYERS)
    return iris_dir


def config(path: Path, plugin="my_layers.py", layer="Scale", criterion="ClassNLLCriterion", name="plug.yaml") -> Path:
    (path / name).write_text(CONFIG.format(plugin=plugin, layer=layer, criterion=criterion))
    return path / name


def one_line_error(result, *parts):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for part in parts:
        assert part in lines[0], lines[0]


def test_plugin_layers_build_train_evaluate_and_predict(project):
    cfg = load_config(config(project, layer="SoftSign"))
    assert cfg.plugins == [str(project / "my_layers.py")]              # recorded as an absolute path
    assert "Scale" in cfg.registry.modules and "Scale" not in load_config(ROOT / "configs/iris.yaml").registry.modules
    assert invoke("train", config(project), "-q").exit_code == 0
    ckpt = project / "runs" / "plug" / "best.npz"
    evaluated = invoke("eval", ckpt, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    predicted = invoke("predict", ckpt, "iris.csv")
    assert predicted.exit_code == 0 and len(predicted.stdout.splitlines()) == 151


def test_the_size_of_a_plugin_layer_is_inferred(project):
    _, data, model, _ = prepare(config(project))
    assert model.layers[1].weight.shape == (6,) and type(model.layers[1]).__name__ == "Scale"


def test_gradcheck_checks_plugin_layers(project):
    result = invoke("gradcheck", config(project))
    assert result.exit_code == 0, result.output
    assert "1 Scale" in result.output and "all" in result.output


@pytest.mark.parametrize("old, new, method", [
    ("return grad_output * self.weight", "return -grad_output * self.weight",
     "1 Scale: update_grad_input is wrong"),
    ("self.grad_weight += ", "self.grad_weight = ",
     "1 Scale: acc_grad_parameters overwrites the gradients instead of adding to them"),
    ("self.grad_bias += scale * ", "self.grad_bias += ",
     "1 Scale: acc_grad_parameters ignores scale"),
])
def test_a_broken_plugin_fails_gradcheck_naming_the_method(project, old, new, method):
    assert old in LAYERS
    (project / "broken.py").write_text(LAYERS.replace(old, new))
    result = invoke("gradcheck", config(project, plugin="broken.py"))
    assert result.exit_code == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL ")]
    assert any(method in line for line in fails), result.stdout
    assert not any("1 Scale" in line and method not in line for line in fails), fails   # only that method
    assert "gradient checks failed" in result.stderr


def test_a_checkpoint_needs_its_plugin(project):
    assert invoke("train", config(project), "-q").exit_code == 0
    (project / "my_layers.py").rename(project / "elsewhere.py")
    for verb in (("eval", "runs/plug/best.npz"), ("predict", "runs/plug/best.npz", "iris.csv")):
        one_line_error(invoke(*verb), "runs/plug/best.npz", "plugins.0", "needs the plugin it was trained with",
                       str(project / "my_layers.py"))


PROBLEMS = {
    "missing": (None, "no such plugin file: nothere.py"),
    "raises": ("import numpy as np\nx = 1 / 0\n", "raises.py raised ZeroDivisionError on import (line 2)"),
    "syntax": ("def f(:\n", "syntax.py raised SyntaxError on import (line 1)"),
    "clash": ("from backprop_cli import nn\nclass Linear(nn.Module):\n    def update_output(self, x): return x\n"
              "    def update_grad_input(self, x, g): return g\n", "defines Linear (the name of a built-in layer)"),
    "notmodule": ("class Scale:\n    pass\n", "defines no Module or Criterion subclass; Scale is not a subclass"),
}


@pytest.mark.parametrize("case", PROBLEMS)
def test_bad_plugins_are_one_line_errors_placed_at_the_entry(project, case):
    source, message = PROBLEMS[case]
    plugin = "nothere.py" if source is None else f"{case}.py"
    if source is not None:
        (project / plugin).write_text(source)
    result = invoke("summary", config(project, plugin=plugin))
    one_line_error(result, "plug.yaml:3: plugins.0: ", message)


def test_a_class_that_is_not_a_module_is_named_where_it_is_used(project):
    (project / "mixed.py").write_text(LAYERS + "\n\nclass Helper:\n    pass\n")
    one_line_error(invoke("summary", config(project, plugin="mixed.py", layer="Helper")),
                   "plug.yaml:7: model.1: Helper (defined in mixed.py) is not a Module")


def test_two_plugins_defining_the_same_name_clash(project, tmp_path):
    (project / "again.py").write_text(LAYERS)
    with pytest.raises(ConfigError, match=r"plugins.1: again.py defines Scale \(also defined in my_layers.py\)"):
        load_config(config(project, plugin="my_layers.py, again.py"))


def test_a_module_name_and_a_plugin_criterion(project, monkeypatch):
    package = project / "site" / "mylosses"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "import numpy as np\nfrom backprop_cli import nn\n\n"
        "class HalfNLL(nn.Criterion):\n"
        '    """``l_i = -x[i, t_i] / 2``."""\n'
        "    task = 'classification'\n"
        "    def update_output(self, output, target):\n"
        "        return -output[np.arange(len(target)), target].sum() / (2 * len(target))\n"
        "    def update_grad_input(self, output, target):\n"
        '        """``grad_input[i, t_i] = -1 / (2 N)``."""\n'
        "        g = np.zeros_like(output)\n"
        "        g[np.arange(len(target)), target] = -0.5 / len(target)\n"
        "        return g\n")
    monkeypatch.syspath_prepend(str(project / "site"))
    path = config(project, plugin="mylosses", layer="ReLU", criterion="HalfNLL")
    try:
        cfg = load_config(path)
        assert cfg.data.task == "classification" and cfg.plugins == ["mylosses"]
        result = invoke("gradcheck", path)
        assert result.exit_code == 0 and "HalfNLL" in result.output, result.output
    finally:
        sys.modules.pop("mylosses", None)


def test_no_plugin_code_runs_without_the_key(project):
    (project / "my_layers.py").write_text("raise SystemExit('imported')\n")
    _, data, model, _ = prepare(config(project, plugin="", layer="ReLU"))
    assert [type(layer).__name__ for layer in model.layers] == ["Linear", "ReLU", "Linear", "LogSoftMax"]


def test_plugin_entries_of_the_wrong_type(project):
    (project / "bad.yaml").write_text(CONFIG.format(plugin="3", layer="ReLU", criterion="ClassNLLCriterion")
                                      .replace("plugins: [3]", "plugins: [3, '']"))
    with pytest.raises(ConfigError) as err:
        load_config(project / "bad.yaml")
    assert "bad.yaml:3: plugins.0: expected a Python file or a module name, got 3" in str(err.value)
    assert "plugins.1: expected a Python file or a module name, got ''" in str(err.value)


def test_grad_attribute_assignment_writes_into_the_gradient():
    from backprop_cli import nn
    layer = nn.Linear(2, 2, rng=0)
    layer.grad_weight += np.ones((2, 2))
    assert "grad_weight" not in vars(layer)       # no attribute shadowing the gradient
    layer.to(np.float64)
    layer.grad_weight += np.ones((2, 2))          # into the gradient that to() made, not a stale copy
    assert layer.parameters()[1][0].sum() == 8 and layer.parameters()[1][0].dtype == np.float64


def test_an_exception_in_plugin_code_is_one_line_saying_where(project):
    (project / "boom.py").write_text(
        "from backprop_cli import nn\n\n"
        "class Boom(nn.Module):\n"
        "    def update_output(self, x):\n"
        "        return x\n"
        "    def update_grad_input(self, x, g):\n"
        "        raise KeyError('oops')\n")
    path = config(project, plugin="boom.py", layer="Boom")
    one_line_error(invoke("train", path, "-q"), "boom.py:7 in update_grad_input: KeyError: 'oops'")
    one_line_error(invoke("explain", path), "plug.yaml:7: model.1 (Boom): boom.py:7 in update_grad_input: KeyError")
    assert not (project / "runs" / "plug" / "last.npz").exists()
