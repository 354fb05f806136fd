"""Readers (CSV, IDX, NPZ), their error messages, normalisation, splitting, and the shipped datasets."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.data import (Dataset, Normalizer, load_csv, load_dataset, load_idx, load_npz, read_idx,
                               train_val_split, write_idx)
from backprop_cli.errors import DataError

DATA = Path(__file__).resolve().parent.parent / "data"
IRIS_HEAD = "sepal_length,sepal_width,petal_length,petal_width,species\n"


def write(tmp_path, text: str, name: str = "d.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- CSV
def test_csv_with_header_and_string_labels(tmp_path):
    path = write(tmp_path, IRIS_HEAD + "5.1,3.5,1.4,0.2,setosa\n6.3,3.3,6.0,2.5,virginica\n"
                                      "7.0,3.2,4.7,1.4,versicolor\n")
    ds = load_csv(path)
    assert ds.x.dtype == np.float32 and ds.x.shape == (3, 4)
    assert ds.x[1].tolist() == pytest.approx([6.3, 3.3, 6.0, 2.5])
    assert ds.classes == ["setosa", "versicolor", "virginica"]
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 2, 1]
    assert ds.source == str(path)


def test_csv_without_header_label_by_index(tmp_path):
    path = write(tmp_path, "1,0.5,2.0\n0,1.5,3.0\n2,2.5,4.0\n")
    ds = load_csv(path, label_column=0)
    assert ds.x.tolist() == [[0.5, 2.0], [1.5, 3.0], [2.5, 4.0]]
    assert ds.y.tolist() == [1, 0, 2] and ds.classes == ["0", "1", "2"]


def test_csv_label_by_name_in_the_middle(tmp_path):
    path = write(tmp_path, "a,target,b\n1,yes,2\n3,no,4\n")
    ds = load_csv(path, label_column="target")
    assert ds.x.tolist() == [[1, 2], [3, 4]] and ds.y.tolist() == [1, 0] and ds.classes == ["no", "yes"]


def test_csv_header_auto_detect_and_override(tmp_path):
    path = write(tmp_path, "1,2,0\n3,4,1\n")
    assert len(load_csv(path)) == 2
    assert len(load_csv(path, header=True)) == 1


def test_csv_without_labels_for_predictions(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n3,4\n")
    ds = load_csv(path, label_column=None, classes=["no", "yes"])
    assert ds.x.tolist() == [[1, 2], [3, 4]] and ds.y is None and ds.classes == ["no", "yes"]


def test_csv_numeric_labels_not_starting_at_zero_map_through_sorted_values(tmp_path):
    path = write(tmp_path, "x,label\n0.1,10\n0.2,-1\n0.3,3\n0.4,10.0\n")
    ds = load_csv(path)
    assert ds.classes == ["-1", "3", "10"] and ds.y.tolist() == [2, 0, 1, 2]


def test_csv_classes_from_training_are_reused(tmp_path):
    path = write(tmp_path, IRIS_HEAD + "6.3,3.3,6.0,2.5,virginica\n")
    ds = load_csv(path, classes=["setosa", "versicolor", "virginica"])
    assert ds.y.tolist() == [2] and ds.classes == ["setosa", "versicolor", "virginica"]
    digits = write(tmp_path, "x,label\n0.5,3\n", "digits.csv")
    assert load_csv(digits, classes=[str(i) for i in range(10)]).y.tolist() == [3]


def test_csv_unknown_label_names_line_and_value(tmp_path):
    path = write(tmp_path, IRIS_HEAD + "5.1,3.5,1.4,0.2,setosa\n6.3,3.3,6.0,2.5,virginca\n")
    with pytest.raises(DataError) as err:
        load_csv(path, classes=["setosa", "versicolor", "virginica"])
    assert str(err.value) == (f"{path}:3: column \"species\": label 'virginca' is not one of the training "
                              "classes (setosa, versicolor, virginica)")


def test_csv_regression_and_binary_targets_are_2d_float(tmp_path):
    path = write(tmp_path, "a,b,t\n1,2,0.5\n3,4,1.5\n")
    reg = load_csv(path, task="regression")
    assert reg.y.dtype == np.float32 and reg.y.tolist() == [[0.5], [1.5]] and reg.classes is None
    two = load_csv(path, task="regression", label_column=["b", "t"])
    assert two.x.tolist() == [[1], [3]] and two.y.tolist() == [[2, 0.5], [4, 1.5]]
    binary = load_csv(write(tmp_path, "a,t\n1,0\n2,1\n", "b.csv"), task="binary")
    assert binary.y.dtype == np.float32 and binary.y.tolist() == [[0], [1]]


def test_csv_binary_rejects_other_values(tmp_path):
    path = write(tmp_path, "a,t\n1,0\n2,2\n")
    with pytest.raises(DataError, match=r"d\.csv:3: column \"t\": binary label '2' must be 0 or 1"):
        load_csv(path, task="binary")


def test_csv_ragged_row_names_line(tmp_path):
    path = write(tmp_path, IRIS_HEAD + "5.1,3.5,1.4,0.2,setosa\n\n4.9,3.0,setosa\n")
    with pytest.raises(DataError) as err:
        load_csv(path)
    assert str(err.value) == f"{path}:4: found 3 columns, expected 5 like the header (line 1)"
    assert err.value.line == 4


def test_csv_bad_cell_names_line_and_column(tmp_path):
    path = write(tmp_path, IRIS_HEAD + "5.1,3.5,1.4,0.2,setosa\nabc,3.0,1.4,0.2,setosa\n")
    with pytest.raises(DataError) as err:
        load_csv(path)
    assert str(err.value) == f"{path}:3: column \"sepal_length\": cannot read 'abc' as a number"
    no_header = write(tmp_path, "1,2,0\n3,,1\n", "n.csv")
    with pytest.raises(DataError, match=r"n\.csv:2: column 2: empty cell, expected a number"):
        load_csv(no_header)


def test_csv_non_finite_feature_is_an_error(tmp_path):
    path = write(tmp_path, "a,b,y\n1,nan,0\n")
    with pytest.raises(DataError, match=r"d\.csv:2: column \"b\": 'nan' is not a finite number"):
        load_csv(path)


def test_csv_empty_file(tmp_path):
    path = write(tmp_path, "\n  \n")
    with pytest.raises(DataError, match=r"d\.csv: the file is empty"):
        load_csv(path)
    with pytest.raises(DataError, match=r"h\.csv:1: the file has a header but no data rows"):
        load_csv(write(tmp_path, IRIS_HEAD, "h.csv"))


def test_csv_missing_label_column_suggests_the_close_name(tmp_path):
    path = write(tmp_path, IRIS_HEAD + "5.1,3.5,1.4,0.2,setosa\n")
    with pytest.raises(DataError) as err:
        load_csv(path, label_column="specis")
    assert str(err.value) == (f'{path}:1: no column named "specis"; the header has sepal_length, '
                              'sepal_width, petal_length, petal_width, species; did you mean "species"?')


def test_csv_quoted_cells_and_tsv(tmp_path):
    path = write(tmp_path, '"a","b","name"\n1,2,"x, y"\n3,4,z\n')
    ds = load_csv(path)
    assert ds.x.tolist() == [[1, 2], [3, 4]] and ds.classes == ["x, y", "z"]
    tsv = write(tmp_path, "a\tb\tlabel\n1\t2\t1\n3\t4\t0\n", "d.tsv")
    assert load_dataset(tsv).x.tolist() == [[1, 2], [3, 4]]
    assert load_dataset(tsv, format="csv").x.tolist() == [[1, 2], [3, 4]]  # the name still says tab


# --------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_idx_round_trip(tmp_path, suffix, dtype):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4) if dtype != np.uint8 \
        else np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative and np.array_equal(back, array)


def test_idx_header_is_big_endian(tmp_path):
    path = tmp_path / "a.idx"
    write_idx(path, np.array([1, 258], dtype=np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, 1, 2])


def idx_pair(tmp_path, n_images=5, n_labels=5, gz=False):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    images, labels = tmp_path / f"images-idx3-ubyte{suffix}", tmp_path / f"labels-idx1-ubyte{suffix}"
    write_idx(images, rng.integers(0, 256, (n_images, 4, 3), dtype=np.uint8))
    write_idx(labels, np.arange(n_labels, dtype=np.uint8) % 3)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_adds_a_channel_axis(tmp_path, gz):
    images, labels = idx_pair(tmp_path, gz=gz)
    ds = load_dataset(images, labels=labels)
    assert ds.x.shape == (5, 1, 4, 3) and ds.x.dtype == np.float32
    assert np.array_equal(ds.x[:, 0], read_idx(images))  # raw values, no scaling
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1, 2, 0, 1] and ds.classes == ["0", "1", "2"]


def test_idx_bad_magic(tmp_path):
    path = tmp_path / "x-idx3"
    path.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x07")
    with pytest.raises(DataError, match=r"x-idx3: header bytes 0-1: magic number starts with bytes 01 02, "
                                        r"expected 00 00: not an IDX file"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x07")
    with pytest.raises(DataError, match=r"header byte 2 \(type code\): type code 0x07 is not an IDX type"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_file_is_caught_by_the_size_check(tmp_path, gz):
    data = bytes([0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(100)
    path = tmp_path / ("t-idx3.gz" if gz else "t-idx3")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert "10x28x28 uint8" in str(err.value) and "7,856 bytes (truncated?)" in str(err.value)
    assert str(err.value).startswith(f"{path}: ")


def test_idx_refuses_a_huge_claimed_size_before_allocating(tmp_path):
    path = tmp_path / "huge-idx3.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 0x0E, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0])))
    with pytest.raises(DataError, match="more than the .*-byte limit"):
        read_idx(path)


def test_idx_images_labels_count_mismatch_names_both_files(tmp_path):
    images, labels = idx_pair(tmp_path, n_images=5, n_labels=4)
    with pytest.raises(DataError) as err:
        load_idx(images, labels)
    assert str(err.value) == (f"{labels}: header bytes 4-7 (number of items): 4 labels, but {images} "
                              "has 5 images")


def test_idx_label_out_of_training_range(tmp_path):
    images, labels = idx_pair(tmp_path)
    with pytest.raises(DataError, match=r"label 2 \(byte 10\): class index 2 is out of range for the 2"):
        load_idx(images, labels, classes=["a", "b"])


# --------------------------------------------------------------------------- NPZ and dispatch
def test_npz_round_trip(tmp_path):
    path = tmp_path / "d.npz"
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    np.savez(path, x=x, y=np.array([1, 0, 1]), classes=np.array(["cat", "dog"]))
    ds = load_dataset(path)
    assert ds.x.dtype == np.float32 and np.array_equal(ds.x, x)
    assert ds.y.tolist() == [1, 0, 1] and ds.classes == ["cat", "dog"]
    np.savez(path, x=x, y=np.array([0.5, 1.0, 2.0]))
    reg = load_npz(path)
    assert reg.y.shape == (3, 1) and reg.y.dtype == np.float32 and reg.classes is None


def test_npz_missing_key_and_length_mismatch(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((3, 2)), labels=np.zeros(3))
    with pytest.raises(DataError, match=r"d\.npz: missing array 'y'; the file has x, labels"):
        load_npz(path)
    np.savez(path, x=np.zeros((3, 2)), y=np.zeros(2, dtype=np.int64))
    with pytest.raises(DataError, match=r"d\.npz: arrays 'x' and 'y': x has 3 samples but y has 2"):
        load_npz(path)


def test_npz_that_is_not_an_archive(tmp_path):
    path = write(tmp_path, "1,2,3\n", "d.npz")
    with pytest.raises(DataError, match=r"not a zip archive, expected an .npz archive"):
        load_npz(path)


def test_load_dataset_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="cannot tell the format from the name"):
        load_dataset(write(tmp_path, "1,2\n", "d.dat"))
    assert len(load_dataset(write(tmp_path, "1,2\n", "d.dat"), format="csv")) == 1


# --------------------------------------------------------------------------- normalisation and splits
def test_normalizer_is_fit_on_train_only():
    train = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]], dtype=np.float32)
    test = np.array([[6.0, 7.0]], dtype=np.float32)
    std = Normalizer("standardize").fit(train)
    out = std.apply(train)
    assert out.dtype == np.float32
    assert out[:, 0].mean() == pytest.approx(0, abs=1e-6) and out[:, 0].std() == pytest.approx(1, rel=1e-6)
    assert out[:, 1].tolist() == [0, 0, 0]  # a constant feature: no division by zero
    assert std.apply(test)[0].tolist() == pytest.approx([4 / np.sqrt(8 / 3), 2.0], rel=1e-6)  # train mean, std
    assert Normalizer("minmax").fit(train).apply(test).tolist() == [[1.5, 2.0]]
    assert Normalizer("scale", scale=2).apply(test).tolist() == [[3.0, 3.5]]


def test_normalizer_per_pixel_state_round_trip(tmp_path):
    x = np.random.default_rng(1).normal(3, 2, (50, 1, 4, 4)).astype(np.float32)
    norm = Normalizer("standardize").fit(x)
    assert norm.shift.shape == (1, 4, 4)
    np.savez(tmp_path / "n.npz", **norm.state_dict())
    with np.load(tmp_path / "n.npz", allow_pickle=False) as state:
        back = Normalizer.from_state(state)
    assert back.method == "standardize" and np.array_equal(back.apply(x), norm.apply(x))
    with pytest.raises(ValueError, match=r"fit on features \(1, 4, 4\), got input \(2, 16\)"):
        back.apply(np.zeros((2, 16)))


def test_train_val_split_is_a_stratified_shuffle():
    ds = Dataset(np.arange(100, dtype=np.float32)[:, None], np.repeat([0, 1], [80, 20]), ["a", "b"], "m")
    train, val = train_val_split(ds, 0.25, np.random.default_rng(0))
    assert (len(train), len(val)) == (75, 25) and np.bincount(val.y).tolist() == [20, 5]
    assert sorted(np.concatenate([train.x, val.x]).ravel().tolist()) == list(range(100))
    again, _ = train_val_split(ds, 0.25, np.random.default_rng(0))
    assert np.array_equal(again.x, train.x)
    with pytest.raises(ValueError, match="leaves 4 for training and 0 for validation"):
        train_val_split(Dataset(np.zeros((4, 2)), np.arange(4), None, "m"), 0.1, np.random.default_rng(0))


# --------------------------------------------------------------------------- shipped datasets
def test_shipped_iris():
    ds = load_dataset(DATA / "iris.csv")
    assert ds.x.shape == (150, 4) and ds.classes == ["setosa", "versicolor", "virginica"]
    assert np.bincount(ds.y).tolist() == [50, 50, 50]


def test_shipped_diabetes():
    ds = load_dataset(DATA / "diabetes.csv", task="regression")
    assert ds.x.shape == (442, 10) and ds.y.shape == (442, 1) and ds.y.dtype == np.float32


def test_shipped_digits():
    parts = [load_dataset(DATA / "digits" / f"{p}-images-idx3-ubyte.gz",
                          labels=DATA / "digits" / f"{p}-labels-idx1-ubyte.gz") for p in ("train", "t10k")]
    assert [len(p) for p in parts] == [1437, 360]
    assert all(p.x.shape[1:] == (1, 8, 8) and p.x.max() == 16 for p in parts)
    assert np.bincount(np.concatenate([p.y for p in parts])).sum() == 1797
    assert parts[0].classes == [str(d) for d in range(10)]


def test_shipped_xor():
    ds = load_dataset(DATA / "xor.csv")
    assert ds.x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and ds.y.tolist() == [0, 1, 1, 0]


def test_a_tiny_gzip_claiming_a_huge_payload_is_refused_before_allocating(tmp_path):
    import resource
    path = tmp_path / "evil-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + np.array([60000, 100, 100], ">u4").tobytes() + b"x" * 10)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="header promises 60000x100x100 uint8"):
        read_idx(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000   # KiB: far below 600 MB


# --------------------------------------------------------------------------- CSV columns: by name, missing, categories
def test_features_by_name_in_their_order_and_a_later_file_matched_by_name(tmp_path):
    train = load_csv(write(tmp_path, "id,b,a,y\n1,2,3,0\n2,4,5,1\n"), features=["a", "b"], label_column="y")
    assert train.x.tolist() == [[3, 2], [5, 4]] and train.columns.feature_names == ["a", "b"]
    later = write(tmp_path, "note,a,y,extra,b\nx,30,1,z,20\n", "later.csv")     # shuffled, extra columns
    ds = load_csv(later, columns=train.columns, classes=train.classes)
    assert ds.x.tolist() == [[30, 20]] and ds.y.tolist() == [1]
    assert load_csv(later, columns=train.columns, label_column=None).y is None
    with pytest.raises(DataError) as err:
        load_csv(write(tmp_path, "a,y\n1,0\n", "short.csv"), columns=train.columns)
    assert str(err.value) == (f'{tmp_path / "short.csv"}:1: no column named "b" (a feature of the model); '
                              "the header has a, y")


def test_a_headerless_later_file_goes_by_position_and_its_width_is_checked(tmp_path):
    train = load_csv(write(tmp_path, "a,b,c,y\n1,2,3,0\n4,5,6,1\n"), features=["c", "a"])
    assert load_csv(write(tmp_path, "7,8,9,1\n", "full.csv"), columns=train.columns).x.tolist() == [[9, 7]]
    alone = write(tmp_path, "9,7\n", "alone.csv")                     # the features alone, in model order
    assert load_csv(alone, columns=train.columns, label_column=None).x.tolist() == [[9, 7]]
    with pytest.raises(DataError) as err:
        load_csv(write(tmp_path, "1,2,3\n", "three.csv"), columns=train.columns, label_column=None)
    assert str(err.value) == (f"{tmp_path / 'three.csv'}:1: found 3 columns and no header; expected 4 like the "
                              "training data, or its 2 feature columns alone (in order)")


@pytest.mark.parametrize("text", ["a;b;y\n1;2;0\n3;4;1\n", "a\tb\ty\n1\t2\t0\n3\t4\t1\n", "a|b|y\n1|2|0\n3|4|1\n",
                                  "a,b,y\n1,2,0\n3,4,1\n"])
def test_the_delimiter_is_sniffed_from_the_header_line(tmp_path, text):
    ds = load_csv(write(tmp_path, text, "d.txt"))
    assert ds.x.tolist() == [[1, 2], [3, 4]] and ds.y.tolist() == [0, 1]


def test_the_header_line_decides_the_delimiter_when_data_rows_disagree(tmp_path):
    path = write(tmp_path, "a;b;y\n1,5;2;0\n")                     # ';' cells, ',' decimal separators
    with pytest.raises(DataError) as err:
        load_csv(path)
    assert str(err.value) == f"{path}:2: column \"a\": cannot read '1,5' as a number (write 1.5: a decimal point)"


def test_missing_cells_error_drop_and_mean(tmp_path):
    path = write(tmp_path, "a,b,y\n1,2,0\n3,,1\n5,NA,0\n,8,1\n")
    with pytest.raises(DataError) as err:
        load_csv(path)
    assert str(err.value) == (f'{path}:3: column "b": empty cell, expected a number; missing cells need '
                              "missing: drop or mean")
    dropped = load_csv(path, missing="drop")
    assert dropped.x.tolist() == [[1, 2]] and dropped.y.tolist() == [0] and dropped.rows.tolist() == [0]
    kept = load_csv(path, missing="mean")
    assert np.isnan(kept.x).sum() == 3 and kept.y.tolist() == [0, 1, 0, 1]
    kept.columns.fit_means(kept.x, str(path))
    assert kept.columns.means.tolist() == [3.0, 5.0]                 # (1 + 3 + 5) / 3, (2 + 8) / 2
    assert kept.columns.impute(kept.x).tolist() == [[1, 2], [3, 5], [5, 5], [3, 8]]


def test_a_missing_label_is_dropped_or_named(tmp_path):
    path = write(tmp_path, "a,y\n1,yes\n2,\n3,no\n")
    assert load_csv(path, missing="drop").y.tolist() == [1, 0]
    with pytest.raises(DataError, match=r'd\.csv:3: column "y": empty cell, expected a label; missing: drop'):
        load_csv(path, missing="mean")


def test_categorical_columns_are_one_hot_with_training_categories(tmp_path):
    train = load_csv(write(tmp_path, "size,color,y\n1,red,0\n2,blue,1\n3,red,1\n"), categorical=["color"])
    assert train.columns.feature_names == ["size", "color=blue", "color=red"]
    assert train.x.tolist() == [[1, 0, 1], [2, 1, 0], [3, 0, 1]]
    later = write(tmp_path, "color,size\nblue,4\ngreen,5\n", "later.csv")
    with pytest.raises(DataError) as err:
        load_csv(later, columns=train.columns, label_column=None)
    assert str(err.value) == (f"{later}:3: column \"color\": category 'green' was not in the training data "
                              "(blue, red); unknown: ignore would encode it as all zeros")
    ignoring = load_csv(write(tmp_path, "size,color,y\n1,red,0\n2,blue,1\n", "i.csv"), categorical=["color"],
                        unknown="ignore")
    assert load_csv(later, columns=ignoring.columns, label_column=None).x.tolist() == [[4, 1, 0], [5, 0, 0]]


def test_a_missing_category_is_filled_with_the_category_frequencies(tmp_path):
    ds = load_csv(write(tmp_path, "color,y\nred,0\nblue,1\nred,1\n,0\n"), categorical=["color"], missing="mean")
    ds.columns.fit_means(ds.x, "d.csv")
    assert ds.columns.impute(ds.x)[3].tolist() == pytest.approx([1 / 3, 2 / 3])


def test_a_categorical_column_past_the_limit_is_one_line(tmp_path):
    from backprop_cli.data import MAX_CATEGORIES
    rows = "".join(f"{i},user{i},{i % 2}\n" for i in range(10_000))
    with pytest.raises(DataError) as err:
        load_csv(write(tmp_path, "n,user,y\n" + rows), categorical=["user"])
    assert str(err.value) == (f'{tmp_path / "d.csv"}: column "user": 10,000 distinct values in categorical column '
                              f'"user", more than the {MAX_CATEGORIES:,} allowed (each becomes one input); '
                              "is it an identifier?")


@pytest.mark.parametrize("kwargs, message", [
    ({"features": ["a", "zz"]}, 'no column named "zz" (feature); the header has a, b, y'),
    ({"features": ["a", "a"]}, 'features lists column "a" twice'),
    ({"features": ["a", "y"]}, 'column "y" is the label column; it cannot also be a feature'),
    ({"features": ["a"], "categorical": ["b"]}, 'categorical column "b" is not one of the features'),
    ({"categorical": ["y"]}, 'column "y" is the label column; it cannot also be a feature'),
    ({"features": [7]}, "feature 7 is out of range: the file has 3 columns (0..2, or -1 for the last)"),
])
def test_bad_column_choices_are_one_line_at_the_header(tmp_path, kwargs, message):
    path = write(tmp_path, "a,b,y\n1,2,0\n")
    with pytest.raises(DataError) as err:
        load_csv(path, **kwargs)
    assert str(err.value) == f"{path}:1: {message}"


def test_a_duplicated_header_name_of_a_used_column_is_refused(tmp_path):
    path = write(tmp_path, "a,b,a,y\n1,2,3,0\n")
    with pytest.raises(DataError, match=r'column name "a" appears 2 times in the header \(columns 1, 3\); rename'):
        load_csv(path)


def test_columns_state_round_trips(tmp_path):
    from backprop_cli.data import Columns
    ds = load_csv(write(tmp_path, "size,color,y\n1,red,0\n,blue,1\n"), categorical=["color"], missing="mean")
    ds.columns.fit_means(ds.x, "d.csv")
    meta, arrays = ds.columns.state_dict()
    assert meta["feature_names"] == ["size", "color=blue", "color=red"]
    back = Columns.from_state(meta, arrays)
    fields = ("header", "width", "features", "labels", "categories", "missing", "unknown")
    assert [getattr(back, f) for f in fields] == [getattr(ds.columns, f) for f in fields]
    assert back.means.tolist() == ds.columns.means.tolist() == [1.0, 0.5, 0.5]
    with pytest.raises(ValueError, match="outside its width"):
        Columns.from_state({**meta, "features": [9]}, arrays)
