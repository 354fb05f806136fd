"""Tabular data as people have it, end to end through ``backprop``: columns by name, TSV and other
delimiters, missing cells, categorical columns, and the mistakes each new key can hold."""

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backprop_cli.engine.checkpoint import load_checkpoint
from common import invoke, ROOT


CONFIG = """\
name: t
seed: 0
data:
  train: {train}
  validation_split: 0.2
  normalize: standardize
{extra}model: [{{Linear: 8}}, Tanh, {{Linear: 3}}, LogSoftMax]
criterion: ClassNLLCriterion
optimizer: {{name: SGD, lr: 0.1, momentum: 0.9}}
training: {{epochs: 3, batch_size: 16}}
"""


def iris_rows() -> list[list[str]]:
    return list(csv.reader((ROOT / "data" / "iris.csv").open()))


def write_table(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue())
    return path


def train(tmp_path, train_file: str, extra: str = "", *more) -> CliRunner:
    (tmp_path / "t.yaml").write_text(CONFIG.format(train=train_file, extra=extra))
    return invoke("train", tmp_path / "t.yaml", "-q", "--out", tmp_path / "run", *more)


def predictions(*args) -> list[list[str]]:
    result = invoke("predict", *args)
    assert result.exit_code == 0, result.output
    return list(csv.reader(io.StringIO(result.stdout)))


def test_predict_selects_columns_by_name_in_any_order_with_extra_columns(tmp_path):
    rows = iris_rows()
    write_table(tmp_path / "iris.csv", rows)
    assert train(tmp_path, "iris.csv").exit_code == 0
    order = [3, 4, 0, 2, 1]                                # petal_width, species, sepal_length, ...
    shuffled = [[r[j] for j in order] + [f"note {i}"] for i, r in enumerate(rows)]
    shuffled[0][-1] = "comment"
    write_table(tmp_path / "shuffled.csv", shuffled)
    original = predictions(tmp_path / "run/best.npz", tmp_path / "iris.csv")
    assert predictions(tmp_path / "run/best.npz", tmp_path / "shuffled.csv") == original
    assert len(original) == 151 and original[0][:2] == ["index", "predicted"]
    meta = load_checkpoint(tmp_path / "run/best.npz").meta["columns"]
    assert meta["feature_names"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    scored = invoke("eval", tmp_path / "run/best.npz", "--data", tmp_path / "shuffled.csv", "--json")
    assert scored.exit_code == 0 and '"samples": 150' in scored.stdout
    write_table(tmp_path / "short.csv", [r[:3] for r in rows])
    result = invoke("predict", tmp_path / "run/best.npz", tmp_path / "short.csv")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert 'short.csv:1: no column named "petal_width" (a feature of the model)' in result.stderr


@pytest.mark.parametrize("name, delimiter, extra", [("iris.tsv", "\t", ""), ("iris.txt", "\t", "  format: tsv\n"),
                                                    ("iris.csv", ";", ""), ("iris.csv", "|", "  delimiter: '|'\n")])
def test_tsv_and_other_delimiters_train_and_predict(tmp_path, name, delimiter, extra):
    write_table(tmp_path / name, iris_rows(), delimiter)
    result = train(tmp_path, name, extra)
    assert result.exit_code == 0, result.output
    rows = predictions(tmp_path / "run/best.npz", tmp_path / name)
    assert len(rows) == 151 and rows[1][1] in ("setosa", "versicolor", "virginica")


def with_gaps() -> list[list[str]]:
    rows = iris_rows()
    rows[5][1], rows[60][3], rows[100][0] = "", "NA", "?"
    return rows


def test_missing_cells_are_named_by_default(tmp_path):
    write_table(tmp_path / "gaps.csv", with_gaps())
    result = train(tmp_path, "gaps.csv")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert 'gaps.csv:6: column "sepal_width": empty cell, expected a number; missing cells need missing: drop or ' \
           "mean" in result.stderr


@pytest.mark.parametrize("policy, samples", [("drop", 147), ("mean", 150)])
def test_missing_cells_dropped_or_filled_train_and_predict(tmp_path, policy, samples):
    write_table(tmp_path / "gaps.csv", with_gaps())
    result = train(tmp_path, "gaps.csv", f"  missing: {policy}\n")
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(tmp_path / "run/best.npz")
    assert ("columns.mean" in ckpt.arrays) == (policy == "mean")
    rows = predictions(tmp_path / "run/best.npz", tmp_path / "gaps.csv")
    assert len(rows) - 1 == samples
    if policy == "drop":                       # the index is the row in the file: the gaps' rows are absent
        assert [r[0] for r in rows[1:]][3:5] == ["3", "5"]     # data row 4 (line 6) had a gap


def test_a_categorical_column_trains_and_predicts_and_an_unseen_category_is_one_line(tmp_path):
    rows = iris_rows()
    rows[0].insert(2, "garden")
    for i, r in enumerate(rows[1:]):
        r.insert(2, ["north", "south", "east"][i % 3])
    write_table(tmp_path / "iris.csv", rows)
    assert train(tmp_path, "iris.csv", "  categorical: [garden]\n").exit_code == 0
    meta = load_checkpoint(tmp_path / "run/best.npz").meta["columns"]
    assert meta["feature_names"][2:5] == ["garden=east", "garden=north", "garden=south"]
    assert len(predictions(tmp_path / "run/best.npz", tmp_path / "iris.csv")) == 151
    rows[7][2] = "west"
    write_table(tmp_path / "new.csv", rows)
    result = invoke("predict", tmp_path / "run/best.npz", tmp_path / "new.csv")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "new.csv:8: column \"garden\": category 'west' was not in the training data" in result.stderr
    assert train(tmp_path, "iris.csv", "  categorical: [garden]\n  unknown: ignore\n", "--force").exit_code == 0
    assert len(predictions(tmp_path / "run/best.npz", tmp_path / "new.csv")) == 151


@pytest.mark.parametrize("extra, message", [
    ("  features: [sepal_length, petal_widht]\n",
     'no column named "petal_widht" (feature); the header has sepal_length, sepal_width, petal_length, '
     'petal_width, species; did you mean "petal_width"?'),
    ("  features: [sepal_length, species]\n", 'column "species" is the label column; it cannot also be a feature'),
    ("  features: [0, 0]\n", None),
    ("  categorical: [species]\n", None),
])
def test_bad_column_keys_are_one_line_and_exit_1(tmp_path, extra, message):
    write_table(tmp_path / "iris.csv", iris_rows())
    result = train(tmp_path, "iris.csv", extra)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert message is None or f"iris.csv:1: {message}" in result.stderr


def test_a_categorical_column_with_ten_thousand_values_is_one_line(tmp_path):
    lines = ["id,x,label"] + [f"u{i},{i % 7},{i % 3}" for i in range(10_000)]
    (tmp_path / "ids.csv").write_text("\n".join(lines) + "\n")
    result = train(tmp_path, "ids.csv", "  categorical: [id]\n")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert 'ids.csv: column "id": 10,000 distinct values in categorical column "id", more than the 1,000' \
           in result.stderr


def test_a_cnn_trains_from_a_csv_of_pixels(tmp_path):
    """The README's recipe: a CSV of 64 pixel columns and a label, reshaped to (1, 8, 8) for convolutions."""
    from backprop_cli.data import load_dataset
    digits = load_dataset(ROOT / "data/digits/t10k-images-idx3-ubyte.gz",
                          labels=ROOT / "data/digits/t10k-labels-idx1-ubyte.gz")
    header = [f"p{i}" for i in range(64)] + ["digit"]
    rows = [[f"{v:g}" for v in x.ravel()] + [str(y)] for x, y in zip(digits.x[:200], digits.y[:200])]
    write_table(tmp_path / "pixels.csv", [header, *rows])
    config = (ROOT / "README.md").read_text().split("<!-- cnn-from-csv -->")[1].split("```yaml\n")[1].split("```")[0]
    (tmp_path / "cnn.yaml").write_text(config)
    result = invoke("train", tmp_path / "cnn.yaml", "-q", "--set", "training.epochs=1", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert len(predictions(tmp_path / "run/best.npz", tmp_path / "pixels.csv")) == 201
