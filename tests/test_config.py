"""The config schema, its error messages (file:line: path: expected ...), overrides, and building from it."""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from backprop_cli.config.build import (build_criterion, build_model, build_optimizer, build_schedule)
from backprop_cli.config.schema import (OPTIMIZER_CONFIGS, SCHEDULE_CONFIGS, Config, config_from_dict,
                                 config_schema, load_config)
from backprop_cli.errors import ConfigError
from backprop_cli.optim import OPTIMIZERS, SCHEDULES, SGD, Adam, CosineLR, Warmup
from backprop_cli.optim.optimizers import optimizer_name
from common import needs_extra, ROOT

# Line numbers matter: the tests below name them.
BASE = """\
data:
  train: data/train.csv
model:
  - Flatten
  - Linear: 16
  - ReLU
  - Linear: 10
  - LogSoftMax
criterion: ClassNLLCriterion
optimizer:
  name: sgd
  lr: 0.1
training:
  epochs: 3
"""

FULL = """\
name: digits-mlp
seed: 7
data:
  format: auto
  train: ../data/train-images-idx3-ubyte.gz
  train_labels: ../data/train-labels-idx1-ubyte.gz
  validation: null
  validation_split: 0.2
  task: auto
  normalize: scale
  scale: 255
model:
  - Flatten
  - Linear: 32
  - ReLU
  - Dropout: {p: 0.2}
  - Linear: {out_features: 10, bias: false, init: kaiming}
  - Residual: [ {Linear: 10}, ReLU ]
  - LogSoftMax
criterion: {NLLLoss: {weights: [1, 2, 1, 1, 1, 1, 1, 1, 1, 1]}}
optimizer:
  name: adam
  learning_rate: 1e-3
  betas: [0.8, 0.99]
schedule:
  name: cosine
  warmup_epochs: 2
training:
  epochs: 4
  batch_size: 16
  dtype: float64
  early_stopping: {patience: 2}
  clip_grad_norm: 5
output: out/run1
"""


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    """A config file (and empty data files it names) under tmp_path."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for f in ("train.csv", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (data / f).touch()
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error_of(path: Path, overrides=()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return info.value


def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------- loading
def test_full_config_loads_with_everything_resolved(tmp_path):
    path = write(tmp_path, FULL, "configs/digits.yaml")
    config = load_config(path)
    assert config.name == "digits-mlp" and config.seed == 7
    assert config.data.format == "idx" and config.data.task == "classification"
    assert config.data.train == tmp_path / "data" / "train-images-idx3-ubyte.gz"
    assert config.data.scale == 255.0
    assert [spec.name for spec in config.model][-2:] == ["Residual", "LogSoftMax"]
    assert config.model[1].args == {"out_features": 32}
    assert config.criterion.args["weights"][1] == 2
    assert config.optimizer.name == "adam" and config.optimizer.betas == (0.8, 0.99)
    assert config.schedule.t_max == 2        # epochs (4) less the warm-up (2)
    assert (config.training.monitor, config.training.mode) == ("val_accuracy", "max")
    assert config.training.clip_grad_norm == 5.0
    assert config.output == config.run_dir == Path("out/run1")   # relative to the current directory
    assert config.locate("model.5.Residual.0") == (str(path), 18)


def test_defaults_name_output_and_schedule(tmp_path):
    config = load_config(write(tmp_path, BASE, "my-run.yaml"))
    assert config.name == "my-run" and config.output is None and config.run_dir == Path("runs/my-run")
    assert config.schedule.name == "constant" and config.training.batch_size == 32
    assert config.data.validation_split == 0.1 and config.data.format == "csv"


def test_float_written_as_1e_minus_3_is_a_float(tmp_path):
    config = load_config(write(tmp_path, BASE.replace("lr: 0.1", "lr: 1e-3")))
    assert config.optimizer.lr == 0.001 and isinstance(config.optimizer.lr, float)


@pytest.mark.parametrize("line, expected", [
    ("  epochs: ten", "cfg.yaml:14: training.epochs: expected an integer, got 'ten'"),
    ("  epochs: 2.5", "cfg.yaml:14: training.epochs: expected an integer, got 2.5"),
    ("  shuffle: 1", "cfg.yaml:14: training.shuffle: expected true or false, got 1"),
])
def test_no_coercion_beyond_numeric_strings_for_floats(tmp_path, line, expected):
    err = error_of(write(tmp_path, BASE.replace("  epochs: 3", line)))
    assert str(err).endswith(expected)


def test_relative_data_paths_resolve_against_the_config_file(tmp_path, monkeypatch):
    path = write(tmp_path, BASE.replace("data/train.csv", "../data/train.csv"), "configs/deep/x.yaml")
    (tmp_path / "configs" / "data").mkdir()
    (tmp_path / "configs" / "data" / "train.csv").touch()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config("../configs/deep/x.yaml")
    assert config.data.train == tmp_path / "configs" / "data" / "train.csv"
    assert path.exists() and config.locate("data.train") == ("../configs/deep/x.yaml", 2)


def test_missing_data_file_is_reported_with_where_it_was_looked_for(tmp_path):
    err = error_of(write(tmp_path, BASE.replace("data/train.csv", "data/nope.csv")))
    assert str(err) == (f"{tmp_path / 'cfg.yaml'}:2: data.train: no such file: data/nope.csv "
                        f"(looked for {tmp_path / 'data' / 'nope.csv'})")


def test_idx_data_needs_its_labels_file(tmp_path):
    text = BASE.replace("data/train.csv", "data/train-images-idx3-ubyte.gz")
    err = error_of(write(tmp_path, text))
    # a missing key is placed at its nearest written parent, here the data section
    assert str(err).endswith("cfg.yaml:1: data.train_labels: required for idx data (the labels file of data.train)")


# ----------------------------------------------------------------------------- error messages
def test_typo_names_the_line_and_suggests_the_key(tmp_path):
    path = write(tmp_path, BASE.replace("lr: 0.1", "learnig_rate: 0.1"))
    assert str(error_of(path)) == f"{path}:12: optimizer.learnig_rate: unknown key; did you mean learning_rate?"


def test_unknown_layer_suggests_the_close_name(tmp_path):
    path = write(tmp_path, BASE.replace("- ReLU", "- Relu").replace("- Flatten", "- Flaten"))
    assert str(error_of(path)).splitlines() == [
        f"{path}:4: model.0: unknown layer 'Flaten'; did you mean Flatten?",
        f"{path}:6: model.2: unknown layer 'Relu'; did you mean ReLU?",
    ]


def test_unknown_criterion_optimizer_and_schedule_names_are_suggested(tmp_path):
    text = (BASE.replace("ClassNLLCriterion", "ClassNLLCriterio").replace("name: sgd", "name: adamm")
            + "schedule: {name: cosin}\n")
    lines = str(error_of(write(tmp_path, text))).splitlines()
    assert lines[0].endswith("cfg.yaml:9: criterion: unknown criterion 'ClassNLLCriterio'; "
                             "did you mean ClassNLLCriterion?")
    assert lines[1].endswith("cfg.yaml:11: optimizer.name: unknown optimizer 'adamm'; did you mean adam?")
    assert lines[2].endswith("cfg.yaml:15: schedule.name: unknown schedule 'cosin'; did you mean cosine?")


@pytest.mark.parametrize("lines, expected", [
    ("  delimiter: ab", "data.delimiter: expected one character such as ',', ';', '|' or tab, got 'ab'"),
    ("  features: [a, b, a]", "data.features.2: lists column 'a' twice"),
    ("  label_column: y\n  features: [a, y]", "data.features.1: 'y' is the label column (data.label_column); "
                                             "a column is a label or a feature"),
    ("  features: [a]\n  categorical: [b]", "data.categorical.0: 'b' is not one of data.features"),
    ("  features: []", "data.features: expected at least 1 item(s), got a list []"),
    ("  missing: skip", "data.missing: expected one of error, drop, mean, got 'skip'"),
    ("  unknown: ignore", "data.unknown: applies to data.categorical columns, and there are none"),
    ("  format: tsv\n  delimiter: ';'", "data.delimiter: format tsv is tab-separated, got ';'; set format: csv "
                                        "for another delimiter"),
])
def test_bad_values_of_the_table_keys_are_one_line_each(tmp_path, lines, expected):
    err = error_of(write(tmp_path, BASE.replace("  train: data/train.csv", "  train: data/train.csv\n" + lines)))
    assert str(err) == f"{tmp_path / 'cfg.yaml'}:{3 + lines.count(chr(10))}: {expected}"   # the key's last line


def test_table_keys_are_only_for_csv(tmp_path):
    text = BASE.replace("data/train.csv", "data/train-images-idx3-ubyte.gz\n  train_labels: "
                        "data/train-labels-idx1-ubyte.gz\n  features: [a]\n  missing: drop")
    assert [line.split(": ", 1)[1] for line in str(error_of(write(tmp_path, text))).splitlines()] == [
        "data.features: only for csv data (format is idx)", "data.missing: only for csv data (format is idx)"]


def test_optimizer_and_schedule_names_in_any_case(tmp_path):
    config = load_config(write(tmp_path, BASE.replace("name: sgd", "name: SGD") + "schedule: Cosine\n"))
    assert config.optimizer.name == "sgd" and config.schedule.name == "cosine"
    assert load_config(write(tmp_path, BASE.replace("optimizer:\n  name: sgd\n  lr: 0.1", "optimizer: Adam"))
                       ).optimizer.name == "adam"


def test_duplicate_key_names_both_lines(tmp_path):
    path = write(tmp_path, BASE.replace("  lr: 0.1\n", "  lr: 0.1\n  lr: 0.2\n"))
    assert str(error_of(path)) == f"{path}:13: optimizer.lr: duplicate key (first given at line 12)"


def test_every_mistake_is_reported_in_one_error(tmp_path):
    text = (BASE.replace("  - Linear: 16", "  - Linear: {out_featurs: 16}")
            .replace("  lr: 0.1", "  lr: -1").replace("  epochs: 3", "  epochs: 3\n  batchsize: 8")
            .replace("data:\n", "data:\n  normalise: none\n"))
    err = error_of(write(tmp_path, text))
    lines = str(err).splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == [
        "data.normalise", "model.1.Linear.out_featurs", "model.1.Linear", "optimizer.lr", "training.batchsize"]
    assert lines[0].endswith("cfg.yaml:2: data.normalise: unknown key; did you mean normalize?")
    assert lines[1].endswith("cfg.yaml:6: model.1.Linear.out_featurs: unknown argument of Linear; "
                             "did you mean out_features?")
    assert lines[3].endswith("cfg.yaml:13: optimizer.lr: expected a value greater than 0, got -1")
    assert len(err.problems) == 5 and err.line == 2


def test_layer_arguments_are_checked_against_the_constructor(tmp_path):
    text = BASE.replace("  - Linear: 16", "  - Linear: [1, 2, true, 4]").replace(
        "  - ReLU", "  - Dropout: {p: high, rng: 3}")
    lines = str(error_of(write(tmp_path, text))).splitlines()
    assert lines[0].endswith("cfg.yaml:5: model.1.Linear: Linear takes at most 3 values "
                             "(in_features, out_features, bias), got 4")
    assert sorted(line.split("cfg.yaml:")[1] for line in lines[1:]) == [
        "6: model.2.Dropout.p: expected a number, got 'high'",
        "6: model.2.Dropout.rng: not a config key: it is drawn from the config's seed"]


def test_optimizer_keys_must_belong_to_the_chosen_optimizer(tmp_path):
    err = error_of(write(tmp_path, BASE.replace("  lr: 0.1", "  lr: 0.1\n  betas: [0.9, 0.99]")))
    assert str(err).endswith("cfg.yaml:13: optimizer.betas: optimizer sgd has no option 'betas' "
                             "(adam, adamw have it); sgd takes: lr, momentum, dampening, nesterov, "
                             "weight_decay, lr_decay, maximize")


@pytest.mark.parametrize("text, expected", [
    ("", "cfg.yaml: the config is empty; expected a mapping with data, model, criterion, optimizer"),
    ("- a\n- b\n", "cfg.yaml:1: expected a mapping of sections (data, model, criterion, ...), got a list ['a', 'b']"),
    ("data:\n  train: [a, b\nmodel: 1\n", "cfg.yaml:3: invalid YAML at column 6: expected ',' or ']', "
                                        "but got ':' (while parsing a flow sequence)"),
    ("data: x: 1\n", "cfg.yaml:1: invalid YAML at column 8: mapping values are not allowed here"),
])
def test_unreadable_files_give_one_line(tmp_path, text, expected):
    err = error_of(write(tmp_path, text))
    assert str(err).endswith(expected) and "\n" not in str(err)


@pytest.mark.parametrize("text, expected", [
    ("a: " + "[" * 70 + "]" * 70 + "\n", "cfg.yaml:1: nested more than 64 levels deep"),
    ("a: &a {<<: *a}\n", "cfg.yaml:1: a << merge names a mapping that holds it"),
    ("a:\n  b: [" + "1, " * 120_000 + "]\n", "cfg.yaml:2: the document holds more than 100,000 values (counted up "
                                              "to here); a config may hold at most that"),
    ("a: !custom {x: 1}\n", "cfg.yaml:1: invalid YAML at column 4: could not determine a constructor for the tag "
                            "'!custom'"),
    ("a:\n  - !!python/tuple [1, 2]\n", "cfg.yaml:2: invalid YAML at column 5: could not determine a constructor "
                                       "for the tag 'tag:yaml.org,2002:python/tuple'"),
    ("a: 1\nb: \x1b[31m\n", "cfg.yaml:2: invalid YAML at column 4: control character '\\x1b' (U+001B) is not allowed"),
    ("a: *nope\n", "cfg.yaml:1: invalid YAML at column 4: found undefined alias 'nope'"),   # PyYAML's words
])
def test_yaml_safe_load_would_refuse_and_the_limits(tmp_path, text, expected):
    err = error_of(write(tmp_path, text))
    assert str(err).endswith(expected) and "\n" not in str(err)


def test_a_config_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    assert str(error_of(path)).endswith("cfg.yaml:1: not UTF-8 text: byte 0xe9 at offset 9")


def test_an_alias_is_a_copy_that_set_changes_in_one_place(tmp_path):
    text = BASE.replace("  - Linear: 16\n", "  - Linear: &hidden {out_features: 16}\n  - ReLU\n  - Linear: *hidden\n")
    config = load_config(write(tmp_path, text), ["model.1.Linear.out_features=12"])
    assert [spec.args.get("out_features") for spec in config.model if spec.name == "Linear"] == [12, 16, 10]


def test_missing_config_file(tmp_path):
    assert str(error_of(tmp_path / "nope.yaml")) == f"{tmp_path / 'nope.yaml'}: no such config file"


# ----------------------------------------------------------------------------- --set overrides
def test_overrides_apply_before_validation(tmp_path):
    config = load_config(write(tmp_path, BASE), [
        "training.epochs=5", "optimizer.learning_rate=0.05", "data.normalize=standardize",
        "model.1.Linear=64", "training.early_stopping={patience: 3}", "schedule=cosine"])
    assert config.training.epochs == 5 and config.optimizer.lr == 0.05
    assert config.data.normalize == "standardize" and config.model[1].args == {"out_features": 64}
    assert config.training.early_stopping.patience == 3 and config.schedule.t_max == 5


@pytest.mark.parametrize("override, expected", [
    ("optimizer.lrr=3", "--set: optimizer.lrr=3: unknown key 'lrr' in optimizer; did you mean lr?"),
    ("trainig.epochs=3", "--set: trainig.epochs=3: unknown key 'trainig' in the config; did you mean training?"),
    ("model.9.Linear=3", "--set: model.9.Linear=3: model is a list of 5; expected an index from 0 to 4, got 9"),
    ("model.1.Lin=3", "--set: model.1.Lin=3: model.1 has no key 'Lin'; did you mean Linear?"),
    ("training.epochs", "--set: training.epochs: expected KEY=VALUE with a dotted KEY, e.g. training.epochs=3"),
    ("training.epochs=ten", "--set: training.epochs=ten: expected an integer, got 'ten'"),
])
def test_bad_overrides_are_placed_at_set(tmp_path, override, expected):
    assert str(error_of(write(tmp_path, BASE), [override])) == expected


# ----------------------------------------------------------------------------- building
def test_compact_and_full_layer_forms_build_the_same_shapes(tmp_path):
    compact = BASE.replace("  - Linear: 16", "  - Linear: [64, 16]")
    full = BASE.replace("  - Linear: 16", "  - Linear: {in_features: 64, out_features: 16, bias: true}").replace(
        "  - Linear: 10", "  - Linear: {out_features: 10}")
    shapes = []
    for i, text in enumerate((BASE, compact, full)):
        config = load_config(write(tmp_path, text, f"c{i}.yaml"))
        model = build_model(config, (1, 8, 8), rng(), np.float32)
        shapes.append([p.shape for _, p, _ in model.named_parameters()])
    assert shapes[0] == shapes[1] == shapes[2] == [(16, 64), (16,), (10, 16), (10,)]


def test_sizes_are_inferred_from_the_incoming_shape(tmp_path):
    text = BASE.replace("  - Flatten\n", "  - SpatialConvolution: [4, 3]\n  - SpatialBatchNormalization\n"
                                         "  - Flatten\n  - BatchNormalization\n")
    model = build_model(load_config(write(tmp_path, text)), (1, 8, 8), rng(), np.float32)
    assert model[1].num_features == 4 and model[3].num_features == 4 * 6 * 6
    assert model[4].in_features == 4 * 6 * 6
    assert all(m.training for m in model.modules())
    running = dict(model.named_buffers())
    np.testing.assert_array_equal(running["1.running_mean"], 0)  # the probe left the statistics alone
    np.testing.assert_array_equal(running["1.running_var"], 1)
    assert model.forward(np.zeros((5, 1, 8, 8), np.float32)).shape == (5, 10)


def test_shape_mismatch_names_the_layer_and_its_line(tmp_path):
    path = write(tmp_path, BASE.replace("  - Linear: 16", "  - Linear: [784, 16]"))
    with pytest.raises(ConfigError) as info:
        build_model(load_config(path), (1, 8, 8), rng(), np.float32)
    assert str(info.value) == f"{path}:5: model.1 (Linear): Linear expected input (N, 784), got (2, 64)"


def test_a_size_that_cannot_be_inferred_says_why(tmp_path):
    path = write(tmp_path, BASE.replace("  - Flatten\n", ""))
    with pytest.raises(ConfigError) as info:
        build_model(load_config(path), (1, 8, 8), rng(), np.float32)
    assert str(info.value) == (f"{path}:4: model.0 (Linear): Linear expected input (N, in_features) to infer "
                               "in_features, got (N, 1, 8, 8); add Flatten before it")


def test_a_model_past_the_machines_memory_is_refused_before_the_layer_is_allocated(tmp_path, monkeypatch):
    """BASE on 8x8 images, in batches of 32 (evaluated in 256s): the input and Flatten's output take
    256 x (64 + 64) values, 131,072 bytes in float32; Linear(64, 16) adds 4 x 1,040 parameter values,
    147,712 bytes in all, past the 140,000 here: refused before its weights exist."""
    from backprop_cli.config import build
    monkeypatch.setattr(build, "physical_memory", lambda: 140_000)
    path = write(tmp_path, BASE)
    with pytest.raises(ConfigError) as info:
        build_model(load_config(path), (1, 8, 8), rng(), np.float32)
    assert str(info.value) == (f"{path}:5: model.1 (Linear): training needs about 144.2 KiB in float32 (1,040 "
                               "parameters with their gradients and optimizer state, and batches of 256 samples "
                               "of 128 activations), more than this machine's 136.7 KiB of memory")


def test_same_seed_same_weights_and_the_dtype_is_passed(tmp_path):
    config = load_config(write(tmp_path, BASE))
    a, b = (build_model(config, (64,), np.random.default_rng(3), np.float64) for _ in range(2))
    for (_, pa, _), (_, pb, _) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa, pb)
        assert pa.dtype == np.float64


def test_criterion_optimizer_schedule_and_monitor(tmp_path):
    config = load_config(write(tmp_path, FULL, "configs/full.yaml"))
    model = build_model(config, (1, 28, 28), rng(), np.float64)
    criterion = build_criterion(config, np.float64)
    assert criterion.weights.dtype == np.float64 and config.data.task == "classification"
    optimizer = build_optimizer(config, *model.parameters())
    assert isinstance(optimizer, Adam) and optimizer.lr == 0.001
    schedule = build_schedule(config)
    assert isinstance(schedule, Warmup) and isinstance(schedule.inner, CosineLR) and schedule.inner.t_max == 2
    assert (config.training.monitor, config.training.mode) == ("val_accuracy", "max")
    plain = load_config(write(tmp_path, BASE))
    assert isinstance(build_optimizer(plain, *build_model(plain, (64,), rng()).parameters()), SGD)


def test_config_sections_match_the_optimizer_and_schedule_constructors():
    assert set(OPTIMIZER_CONFIGS) == set(map(optimizer_name, OPTIMIZERS)) and set(SCHEDULE_CONFIGS) == set(SCHEDULES)
    for table, classes, skip in ((OPTIMIZER_CONFIGS, OPTIMIZERS, set()),
                                 (SCHEDULE_CONFIGS, SCHEDULES, {"warmup_epochs", "warmup_start_factor"})):
        for name, section in table.items():
            accepted = set(inspect.signature(classes[name]).parameters)
            assert set(section.model_fields) - {"name"} - skip <= accepted, name


# ----------------------------------------------------------------------------- schema and round trip
def test_schema_is_a_json_schema_with_properties():
    schema = config_schema()
    assert isinstance(schema, dict) and {"data", "model", "optimizer", "training"} <= set(schema["properties"])
    assert "SpatialConvolution" in schema["properties"]["model"]["description"]
    json.dumps(schema)


@functools.lru_cache(maxsize=1)
def _validator():
    jsonschema = needs_extra("jsonschema", "test")
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _readme_config() -> dict:
    text = (ROOT / "README.md").read_text()
    return yaml.safe_load(text.split("## Config files", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0])


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")) + ["README.md"])
def test_shipped_configs_validate_against_the_emitted_json_schema(name):
    data = _readme_config() if name == "README.md" else yaml.safe_load((ROOT / "configs" / name).read_text())
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(data)]
    assert not errors, errors


@pytest.mark.parametrize("key, value", [("optimizer.lr", -1), ("optimizer.lr", "fast"), ("training.epochs", 0),
                                        ("data.normalize", "zscore"), ("data.validation_split", 1.0),
                                        ("training.bogus", 1), ("optimizer.name", "sgdd"), ("data.missing", "skip")])
def test_the_json_schema_rejects_a_wrong_value(key, value):
    data = yaml.safe_load((ROOT / "configs" / "iris.yaml").read_text())
    section, field = key.split(".")
    data.setdefault(section, {})[field] = value
    assert not _validator().is_valid(data)


def test_the_json_schema_uses_standard_keywords_and_describes_every_field():
    schema = config_schema()
    text = json.dumps(schema)
    assert '"gt"' not in text and '"ge"' not in text and '"lt"' not in text and '"le"' not in text
    assert schema["$defs"]["SGDConfig"]["properties"]["lr"]["exclusiveMinimum"] == 0
    assert schema["$defs"]["DataConfig"]["properties"]["missing"]["enum"] == ["error", "drop", "mean"]
    undescribed = [f"{where}.{name}" for where, node in [("Config", schema), *schema["$defs"].items()]
                   for name, prop in node.get("properties", {}).items() if not prop.get("description")]
    assert not undescribed, f"give each of these fields Field(description=...): {', '.join(undescribed)}"


def test_dump_then_config_from_dict_round_trips(tmp_path):
    config = load_config(write(tmp_path, FULL, "configs/full.yaml"))
    dumped = config.dump()
    assert yaml.safe_load(yaml.safe_dump(dumped)) == dumped == json.loads(json.dumps(dumped))
    assert dumped["data"]["train"] == "../data/train-images-idx3-ubyte.gz"         # as written
    rebuilt = config_from_dict(dumped, base_dir=tmp_path / "configs")
    assert isinstance(rebuilt, Config) and rebuilt.dump() == dumped
    assert rebuilt.data.train == config.data.train == tmp_path / "data" / "train-images-idx3-ubyte.gz"
    assert rebuilt.locate("model.1") == ("checkpoint", None)


def test_a_dump_for_a_run_directory_gives_paths_from_there(tmp_path):
    """A run's saved config finds the data from its own folder, wherever run and data move together."""
    config = load_config(write(tmp_path, FULL, "configs/full.yaml"))
    run = tmp_path / "runs" / "full"
    dumped = config.dump(relative_to=run)
    assert dumped["data"]["train"] == "../../data/train-images-idx3-ubyte.gz"
    moved = tmp_path / "elsewhere" / "project"
    rebuilt = config_from_dict(dumped, base_dir=moved / "runs" / "full")
    assert rebuilt.data.train == moved / "data" / "train-images-idx3-ubyte.gz"
    absolute = load_config(write(tmp_path, FULL.replace("../data/", f"{tmp_path}/data/"), "configs/abs.yaml"))
    assert absolute.dump(relative_to=run)["data"]["train"] == str(tmp_path / "data" / "train-images-idx3-ubyte.gz")


def test_config_from_dict_errors_are_placed_at_checkpoint(tmp_path):
    dumped = load_config(write(tmp_path, BASE)).dump()
    dumped["optimizer"]["momentum"] = "lots"
    with pytest.raises(ConfigError) as info:
        config_from_dict(dumped)
    assert str(info.value) == "checkpoint: optimizer.momentum: expected a number, got 'lots'"


# ----------------------------------------------------------------------------- PyTorch's arguments from a config
TORCH_STYLE = """\
data:
  train: data/train.csv
model:
  - Conv2d: {out_channels: 8, kernel_size: 3, padding: same, groups: 1}
  - Conv2d: {out_channels: 8, kernel_size: [3, 2], dilation: [2, 1], groups: 8, padding_mode: reflect, padding: 1}
  - BatchNorm2d: {momentum: null}
  - GELU: {approximate: tanh}
  - MaxPool2d: {kernel_size: 2, ceil_mode: true}
  - AvgPool2d: {kernel_size: [2, 1], padding: [1, 0], count_include_pad: false}
  - AdaptiveAvgPool2d: {output_size: [2, null]}
  - Flatten: {start_dim: 1}
  - LayerNorm
  - Linear: 10
  - LogSoftmax: {dim: 1}
criterion: {CrossEntropyLoss: {weight: [1, 2, 1, 1, 1, 1, 1, 1, 1, 3], label_smoothing: 0.1, ignore_index: -1}}
optimizer: {name: Adam, lr: 0.01, amsgrad: true, maximize: false}
schedule: {name: onecycle, pct_start: 0.25, three_phase: true}
training:
  epochs: 4
"""


def test_pytorchs_arguments_work_from_a_config(tmp_path):
    config = load_config(write(tmp_path, TORCH_STYLE))
    model = build_model(config, (1, 8, 8), rng(), np.float32)
    conv, depthwise, bn, _, pool, avg, adaptive, _, norm, _, log_softmax = model.layers
    assert type(conv).__name__ == "Conv2d" and conv.pads == ((1, 1), (1, 1)) and conv.banded
    assert (depthwise.groups, depthwise.dilation, depthwise.padding_mode, depthwise.weight.shape) == (
        8, (2, 1), "reflect", (8, 1, 3, 2))
    assert bn.momentum is None and pool.ceil_mode and not avg.count_include_pad and adaptive.output_size == (2, None)
    assert norm.normalized_shape == (8 * 2 * 5,) and log_softmax.dim == 1
    assert model.forward(np.zeros((3, 1, 8, 8), np.float32)).shape == (3, 10)
    criterion = build_criterion(config)
    assert criterion.label_smoothing == 0.1 and criterion.ignore_index == -1 and criterion.weight[9] == 3
    optimizer = build_optimizer(config, *model.parameters())
    assert isinstance(optimizer, Adam) and optimizer.amsgrad and config.optimizer.name == "adam"
    schedule = build_schedule(config)
    assert (type(schedule).__name__, schedule.max_lr, schedule.total_steps, schedule.three_phase) == (
        "OneCycleLR", 0.01, 4, True)


@pytest.mark.parametrize("old, new, expected", [
    ("criterion: ClassNLLCriterion", "criterion: {NLLLoss: {reduction: none}}",
     "9: criterion: reduction none gives one loss per sample; training needs one number: use mean or sum"),
    ("criterion: ClassNLLCriterion", "criterion: {CrossEntropyLoss: {label_smoothing: 2}}",
     "9: criterion: CrossEntropyLoss label_smoothing must be in [0, 1], got 2"),
    ("criterion: ClassNLLCriterion", "criterion: {NLLLoss: {ignore_index: 0.5}}",
     "9: criterion.NLLLoss.ignore_index: expected an integer, got 0.5"),
    ("  lr: 0.1", "  lr: 0.1\n  maximize: maybe", "13: optimizer.maximize: expected true or false, got 'maybe'"),
    ("training:", "schedule: {name: onecycle}\ntraining:",
     "13: schedule.cycle_momentum: needs momentum to cycle: optimizer sgd has momentum 0; set optimizer.momentum "
     "or cycle_momentum: false"),
    ("training:", "schedule: {name: onecycle, total_steps: 2, cycle_momentum: false}\ntraining:",
     "13: schedule.total_steps: must cover the 3 epochs trained after warm-up, got 2"),
    ("training:", "schedule: {name: linear, start_factor: 0}\ntraining:",
     "13: schedule.start_factor: expected a value greater than 0, got 0"),
    ("training:", "schedule: {name: cosine, cycle: sometimes}\ntraining:",
     "13: schedule.cycle: expected true or false, got 'sometimes'"),
    ("training:", "schedule: {name: plateau, threshold_mode: relative}\ntraining:",
     "13: schedule.threshold_mode: expected one of rel, abs, got 'relative'"),
])
def test_bad_pytorch_arguments_are_one_line_each(tmp_path, old, new, expected):
    err = error_of(write(tmp_path, BASE.replace(old, new)))
    assert str(err).endswith("cfg.yaml:" + expected), str(err)


@pytest.mark.parametrize("layer, expected", [
    ("Conv2d: {out_channels: 4, kernel_size: 3, padding: middle}",
     "Conv2d padding must be 'same', 'valid', a non-negative integer or a pair of them, got 'middle'"),
    ("Conv2d: {out_channels: 4, kernel_size: 3, stride: 2, padding: same}",
     "Conv2d padding='same' needs stride 1 (as in PyTorch), got stride=2"),
    ("Conv2d: {out_channels: 3, kernel_size: 3, groups: 2}",
     "Conv2d in_channels (1) and out_channels (3) must both be divisible by groups (2)"),
    ("MaxPool2d: {kernel_size: 2, return_indices: true}", "MaxPool2d return_indices=True is not supported"),
])
def test_a_layer_argument_its_class_refuses_is_one_line_at_the_layer(tmp_path, layer, expected):
    path = write(tmp_path, BASE.replace("  - Flatten\n", f"  - {layer}\n  - Flatten\n"))
    with pytest.raises(ConfigError) as info:
        build_model(load_config(path), (1, 8, 8), rng(), np.float32)
    assert str(info.value).startswith(f"{path}:4: model.0 ({layer.split(':')[0]}): {expected}")


def test_optimizer_names_in_pytorchs_spelling_are_the_same_optimizers(tmp_path):
    for name, cls in (("SGD", SGD), ("Adam", Adam), ("sgd", SGD)):
        config = load_config(write(tmp_path, BASE.replace("  name: sgd", f"  name: {name}")))
        assert config.optimizer.name == cls.__name__.lower() and config.dump()["optimizer"]["name"] == config.optimizer.name


def test_the_new_config_fields_are_described_in_the_schema():
    defs = config_schema()["$defs"]
    for section, fields in (("AdamConfig", ["amsgrad", "maximize", "decoupled_weight_decay"]),
                            ("SGDConfig", ["maximize"]), ("CosineSchedule", ["cycle"]),
                            ("PlateauSchedule", ["threshold_mode"]),
                            ("LinearSchedule", ["start_factor", "end_factor", "total_iters"]),
                            ("OneCycleSchedule", ["max_lr", "total_steps", "pct_start", "anneal_strategy",
                                                  "cycle_momentum", "three_phase"])):
        for field in fields:
            assert defs[section]["properties"][field].get("description"), (section, field)


def test_an_embedding_table_too_large_is_refused_before_it_is_allocated(tmp_path):
    path = write(tmp_path, BASE.replace("  - Flatten\n", "  - Embedding: [100000000, 64]\n  - Flatten\n"))
    with pytest.raises(ConfigError) as info:
        build_model(load_config(path), (1, 8, 8), rng(), np.float32)
    assert str(info.value) == (f"{path}:4: model.0 (Embedding): the model has 6,400,000,000 parameters, more than "
                               "the limit of 1,000,000,000")
