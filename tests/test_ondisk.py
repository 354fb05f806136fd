"""Data larger than memory: NPY pairs and raw IDX images read from disk batch by batch, statistics in
chunks, the same training as from memory, bounded resident memory, and the errors of the NPY reader."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import backprop_cli.data.ondisk as ondisk
from backprop_cli.cli.app import app
from backprop_cli.config.schema import load_config
from backprop_cli.data import (DiskFeatures, Normalizer, idx_images, load_dataset, load_npy, read_idx,
                               train_val_split, write_idx)
from backprop_cli.data import idx as idx_module
from backprop_cli.engine.run import start_run
from backprop_cli.errors import ConfigError, DataError

DIGITS = Path(__file__).resolve().parent.parent / "data" / "digits"


def npy_pair(folder: Path, x: np.ndarray, y: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    return folder


def small(tmp_path, n=40):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 1, 4, 3), dtype=np.uint8)
    return npy_pair(tmp_path / "pair", x, np.arange(n) % 3), x


# --------------------------------------------------------------------------- the array interface
def test_an_npy_directory_reads_its_rows_from_disk_as_float32_batches(tmp_path):
    folder, x = small(tmp_path)
    ds = load_dataset(folder)
    assert isinstance(ds.x, DiskFeatures) and ds.x.shape == (40, 1, 4, 3) and len(ds.x) == 40 and ds.x.ndim == 4
    assert ds.y.tolist() == (np.arange(40) % 3).tolist() and ds.classes == ["0", "1", "2"]
    want = x.astype(np.float32)
    assert ds.x[:].dtype == np.float32 and np.array_equal(ds.x[:], want)
    assert np.array_equal(ds.x[np.array([7, 0, 39, 7])], want[[7, 0, 39, 7]])
    assert np.array_equal(ds.x[5], want[5]) and np.array_equal(ds.x[-1], want[-1])
    assert np.array_equal(ds.x[3:30:4], want[3:30:4]) and np.array_equal(ds.x[:, 0, 1], want[:, 0, 1])
    assert np.array_equal(ds.x[np.arange(40) % 2 == 0], want[::2])
    with pytest.raises(IndexError, match="out of range for 40 samples"):
        ds.x[np.array([3, 40])]


def test_a_split_and_a_normalizer_make_views_that_read_only_their_batches(tmp_path):
    folder, x = small(tmp_path)
    train, val = train_val_split(load_dataset(folder), 0.25, np.random.default_rng(1))
    mem_train, mem_val = train_val_split(load_dataset(tmp_path / "pair" / "x.npy", labels=folder / "y.npy"),
                                         0.25, np.random.default_rng(1))
    assert isinstance(train.x, DiskFeatures) and len(train.x) + len(val.x) == 40
    norm = Normalizer("standardize").fit(train.x)
    view = norm.apply(val.x).astype(np.float64)
    assert isinstance(view, DiskFeatures) and view[:].dtype == np.float64
    assert np.array_equal(view[:], norm.apply(np.asarray(mem_val.x)).astype(np.float64))
    assert np.array_equal(train.y, mem_train.y)


def test_statistics_in_chunks_are_those_of_the_whole_array(tmp_path, monkeypatch):
    monkeypatch.setattr(ondisk, "CHUNK_BYTES", 24 * 8 * 7)           # 7 samples a chunk: 6 chunks
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((40, 2, 12)) * 30 + 1000).astype(np.float32)
    folder = npy_pair(tmp_path / "f", x, np.zeros(40, dtype=np.int64))
    on_disk = load_dataset(folder).x
    x64 = x.astype(np.float64)
    std = Normalizer("standardize").fit(on_disk)
    np.testing.assert_allclose(std.shift, x64.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(std.divisor, x64.std(axis=0), rtol=1e-6)
    minmax = Normalizer("minmax").fit(on_disk)
    assert np.array_equal(minmax.shift, x.min(axis=0))
    assert np.array_equal(minmax.divisor, (x64.max(axis=0) - x64.min(axis=0)).astype(np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_from_an_npy_pair_equals_training_from_memory(tmp_path, dtype):
    digits = load_dataset(DIGITS / "train-images-idx3-ubyte.gz", labels=DIGITS / "train-labels-idx1-ubyte.gz")
    npy_pair(tmp_path / "digits", digits.x.astype(np.uint8), digits.y)
    np.savez(tmp_path / "digits.npz", x=digits.x, y=digits.y)
    runs = []
    for name, train in (("disk", "digits"), ("memory", "digits.npz")):
        (tmp_path / f"{name}.yaml").write_text(f"""\
data: {{train: {train}, validation_split: 0.2, normalize: standardize}}
model: [Flatten, {{Linear: 16}}, ReLU, {{Linear: 10}}, LogSoftMax]
criterion: ClassNLLCriterion
optimizer: {{name: sgd, lr: 0.05, momentum: 0.9}}
training: {{epochs: 2, batch_size: 32, dtype: {dtype}}}
output: {tmp_path / name}
""")
        run = start_run(load_config(tmp_path / f"{name}.yaml"))
        runs.append((run, run.train()))
    (disk, disk_rows), (memory, memory_rows) = runs
    assert isinstance(disk.data.train.x, DiskFeatures) and isinstance(memory.data.train.x, np.ndarray)
    assert disk.data.train.x[:3].dtype == memory.data.train.x.dtype == np.dtype(dtype)
    a, b = disk.trainer.model.state_dict(), memory.trainer.model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    scores = [[(s.weights, name, loss, report.flat()) for name, (loss, report) in s.splits.items()]
              for s in (disk_rows + memory_rows)]
    assert scores[:len(disk_rows)] == scores[len(disk_rows):]
    assert [r["val_loss"] for r in disk.trainer.history] == [r["val_loss"] for r in memory.trainer.history]


def _resident_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return sum(int(re.search(rf"{k}:\s+(\d+)", status).group(1)) for k in ("RssAnon", "RssFile"))


LINUX_RSS = Path("/proc/self/status").exists() and "RssFile" in Path("/proc/self/status").read_text()


@pytest.mark.skipif(not LINUX_RSS, reason="resident memory is read from Linux's /proc/self/status")
def test_reading_a_file_and_a_shuffled_epoch_over_it_keep_none_of_it_resident(tmp_path, monkeypatch):
    monkeypatch.setattr(ondisk, "CHUNK_BYTES", 2**20)                # whole-file passes in 1 MiB chunks
    n, features = 6000, 1024                                         # 24.6 MB of float32
    rng = np.random.default_rng(0)
    x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(n, features))
    x[:] = rng.standard_normal((n, features), dtype=np.float32)
    x.flush()
    del x
    np.save(tmp_path / "y.npy", np.zeros(n, dtype=np.int64))
    before = _resident_kib()
    on_disk = load_dataset(tmp_path).x                               # checks every value is finite
    peak = _resident_kib()
    on_disk = Normalizer("standardize").fit(on_disk).apply(on_disk)  # two passes over the file
    peak = max(peak, _resident_kib())
    for batch in np.array_split(rng.permutation(n), n // 64):
        on_disk[batch]
        peak = max(peak, _resident_kib())
    assert peak - before < 8 * 1024, f"resident memory grew by {(peak - before) / 1024:.1f} MiB"


# --------------------------------------------------------------------------- raw and gzip IDX
def test_raw_idx_images_stay_on_disk_and_read_as_the_gzip_copy(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, (30, 5, 4), dtype=np.uint8)
    write_idx(tmp_path / "a-idx3-ubyte", images)
    write_idx(tmp_path / "a-idx3-ubyte.gz", images)
    raw, gz = idx_images(tmp_path / "a-idx3-ubyte"), idx_images(tmp_path / "a-idx3-ubyte.gz")
    assert isinstance(raw, DiskFeatures) and isinstance(gz, np.ndarray)
    assert raw.shape == gz.shape == (30, 1, 5, 4) and np.array_equal(raw[:], gz)


def test_float_idx_on_disk_is_checked_for_non_finite_values(tmp_path, monkeypatch):
    monkeypatch.setattr(ondisk, "CHUNK_BYTES", 8 * 6 * 4)           # 4 images a chunk
    values = np.ones((10, 2, 3), dtype=np.float32)
    values[9, 1, 2] = np.nan
    write_idx(tmp_path / "f-idx3-ubyte", values)
    with pytest.raises(DataError, match=r"f-idx3-ubyte: image 9: holds a NaN or infinite value"):
        idx_images(tmp_path / "f-idx3-ubyte")


def test_gzip_idx_too_large_for_memory_is_refused_with_the_way_out(tmp_path, monkeypatch):
    write_idx(tmp_path / "b-idx3-ubyte.gz", np.zeros((20, 8, 8), dtype=np.uint8))
    write_idx(tmp_path / "b-idx3-ubyte", np.zeros((20, 8, 8), dtype=np.uint8))
    monkeypatch.setattr(idx_module, "MAX_IDX_BYTES", 1000)
    with pytest.raises(DataError) as err:
        idx_images(tmp_path / "b-idx3-ubyte.gz")
    assert str(err.value) == (f"{tmp_path / 'b-idx3-ubyte.gz'}: header bytes 4-15: the header promises 20x8x8 "
                              "uint8 (1,296 bytes), more than the 1,000-byte limit for data read into memory; "
                              "decompress it (gunzip -k) and use the raw file, which is read from disk batch by batch")
    assert len(idx_images(tmp_path / "b-idx3-ubyte")) == 20         # the raw file has no limit
    with pytest.raises(DataError, match="limit for data read into memory$"):
        read_idx(tmp_path / "b-idx3-ubyte")                          # ... unless read whole


# --------------------------------------------------------------------------- NPY errors
def test_npy_errors_name_the_file_and_what_was_expected(tmp_path, monkeypatch):
    folder, x = small(tmp_path)
    xs = folder / "x.npy"
    np.save(folder / "y.npy", np.arange(39))
    with pytest.raises(DataError, match=rf"y\.npy: shape: {re.escape(str(xs))} has 40 samples but .* has 39 targets"):
        load_dataset(folder)
    np.save(xs, np.zeros(40))
    with pytest.raises(DataError, match=r"x\.npy: header: shape \(40,\), expected samples \(N, features\.\.\.\)"):
        load_dataset(folder)
    np.save(xs, np.asfortranarray(np.zeros((40, 3))))
    with pytest.raises(DataError, match=r"x\.npy: header: stored in Fortran order"):
        load_dataset(folder)
    np.save(xs, np.array([[{}]] * 40, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"x\.npy: header: bad \.npy header: dtype object holds Python objects"):
        load_dataset(folder)
    np.save(xs, np.zeros((40, 3), dtype=np.float32))
    xs.write_bytes(xs.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"x\.npy: header: the file has 603 bytes, but its header promises "
                                        r"\(40, 3\) float32: 128 \+ 480 = 608 bytes \(truncated\?\)"):
        load_dataset(folder)
    xs.write_text("1,2,3\n")
    with pytest.raises(DataError, match=r"x\.npy: header: bad \.npy header: it does not start with the \.npy magic"):
        load_dataset(folder)
    monkeypatch.setattr(ondisk, "CHUNK_BYTES", 8 * 3 * 7)
    bad = np.ones((40, 3), dtype=np.float32)
    bad[33, 1] = np.inf
    np.save(xs, bad)
    with pytest.raises(DataError, match=r"x\.npy: x\[33\]: holds a NaN or infinite value"):
        load_dataset(folder)


def test_npy_file_needs_its_labels_and_a_directory_its_files(tmp_path):
    folder, _ = small(tmp_path)
    with pytest.raises(DataError, match=rf"x\.npy: needs a labels file with its targets \(is it {re.escape(str(folder))}"):
        load_dataset(folder / "x.npy")
    assert len(load_dataset(folder / "x.npy", labels=folder / "y.npy")) == 40
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: is a directory, expected a data file"):
        load_dataset(tmp_path / "empty", format="npy")
    with pytest.raises(DataError, match="a directory holds its own y.npy; give no labels file"):
        load_npy(folder, folder / "y.npy")


# --------------------------------------------------------------------------- configs and the CLI
CONFIG = """\
data:
  train: {train}
{labels}  validation_split: 0.25
  normalize: standardize
model: [Flatten, {{Linear: 3}}, LogSoftMax]
criterion: ClassNLLCriterion
optimizer: {{name: sgd, lr: 0.1}}
training: {{epochs: 2, batch_size: 8}}
"""


def config(tmp_path, train, labels=None) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(train=train, labels=f"  train_labels: {labels}\n" if labels else ""))
    return path


def test_configs_name_an_npy_pair_by_its_directory_or_its_two_files(tmp_path):
    small(tmp_path)
    assert load_config(config(tmp_path, "pair")).data.format == "npy"
    assert load_config(config(tmp_path, "pair/x.npy", "pair/y.npy")).data.format == "npy"
    errors = {
        ("pair/x.npy", None): "c.yaml:1: data.train_labels: required for npy data (the labels file of data.train)",
        ("pair", "pair/y.npy"): "c.yaml:3: data.train_labels: only for idx and npy files (data.train is a "
                                "directory holding y.npy)",
        (".", None): "c.yaml:2: data.train: . is a directory, expected a file (or a directory holding x.npy "
                     "and y.npy)",
    }
    for (train, labels), message in errors.items():
        with pytest.raises(ConfigError) as err:
            load_config(config(tmp_path, train, labels))
        assert str(err.value).endswith(message)


def test_train_eval_and_predict_on_npy_data(tmp_path, monkeypatch):
    folder, x = small(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(config(tmp_path, "pair")), "--quiet", "--out", "run"])
    assert result.exit_code == 0, result.output
    scored = runner.invoke(app, ["eval", "run/best.npz", "--data", "pair", "--json"])
    assert scored.exit_code == 0, scored.output
    assert '"samples": 40' in scored.output
    predicted = runner.invoke(app, ["predict", "run/best.npz", "pair/x.npy"])
    assert predicted.exit_code == 0, predicted.output
    lines = predicted.output.splitlines()
    assert lines[0] == "index,predicted,p_0,p_1,p_2" and len(lines) == 41
