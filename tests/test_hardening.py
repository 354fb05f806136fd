"""Hostile and broken inputs through the real command (a subprocess each): one error line naming the
file and the place, exit 1, no traceback, and the existing run directory byte for byte as it was.

The cases run in parallel, each in its own copy of a small project that holds a finished run in
``runs/tiny``; most of them aim at that directory (``--out runs/tiny --force``, ``--resume``), so
"nothing lost" is tested where it matters.
"""

from __future__ import annotations

import hashlib
import io
import os
import resource
import shutil
import struct
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from backprop_cli.data import write_idx
from backprop_cli.engine.checkpoint import load_checkpoint, save_checkpoint
from common import ENV, ROOT, TINY

FORCE = ["--out", "runs/tiny", "--force", "-q"]


@dataclass
class Case:
    """``setup(project)`` writes what the case needs and returns the command's arguments."""

    name: str
    setup: Callable[[Path], list[str]]
    expected: str
    limit_file_bytes: int | None = None


def config(project: Path, name: str, text: str) -> str:
    (project / name).write_text(text)
    return name


def edited_checkpoint(project: Path, edit) -> str:
    """A copy of the run's last.npz with ``edit(meta, arrays)`` applied (saved the proper way)."""
    ckpt = load_checkpoint(project / "runs/tiny/last.npz")
    edit(ckpt.meta, ckpt.arrays)
    save_checkpoint(project / "edited.npz", ckpt.meta, ckpt.arrays)
    return "edited.npz"


def rewritten_members(src: Path, dst: Path, change) -> None:
    """``dst``: the zip ``src`` with every member's bytes passed through ``change(name, data)``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, change(info.filename, zin.read(info)))


def npy_header(data: bytes, header: str) -> bytes:
    """An .npy member's bytes with its header replaced (padded as numpy pads it)."""
    length = int.from_bytes(data[8:10], "little")
    raw = header.encode("latin1")
    raw += b" " * (-(10 + len(raw) + 1) % 64) + b"\n"
    return data[:8] + len(raw).to_bytes(2, "little") + raw + data[10 + length:]


def data_npz(project: Path, change=None) -> str:
    rng = np.random.default_rng(0)
    np.savez(project / "plain.npz", x=rng.standard_normal((40, 4)).astype(np.float32), y=np.arange(40) % 3)
    if change is None:
        return "plain.npz"
    rewritten_members(project / "plain.npz", project / "bad.npz", change)
    return "bad.npz"


def npz_config(project: Path, data: str) -> str:
    return config(project, "npz.yaml", TINY.replace("iris.csv", data))


# ----------------------------------------------------------------------------- the cases
def huge_linear(p):
    return ["train", "tiny.yaml", "--set", "model.0.Linear=1000000000000", *FORCE]


def huge_conv(p):
    text = TINY.replace("  - Linear: 8\n", "  - Reshape: [1, 2, 2]\n  - SpatialConvolution: {out_channels: "
                        "1000000000, kernel_size: 1}\n  - Flatten\n  - Linear: 8\n")
    return ["train", config(p, "conv.yaml", text), *FORCE]


def huge_input_shape(p):
    return ["eval", edited_checkpoint(p, lambda m, a: m.update(input_shape=[10**9, 10**6])), "--data", "iris.csv"]


def input_shape_text(p):
    return ["eval", edited_checkpoint(p, lambda m, a: m.update(input_shape="a")), "--data", "iris.csv"]


def input_shape_int(p):
    return ["predict", edited_checkpoint(p, lambda m, a: m.update(input_shape=4)), "iris.csv"]


def alias_bomb(p):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return ["train", config(p, "bomb.yaml", TINY + "\n".join(lines) + "\n"), *FORCE]


def merge_bomb(p):
    lines = ["m0: &m0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}" for i in range(1, 12)]
    return ["train", config(p, "merge.yaml", TINY + "\n".join(lines) + "\n"), *FORCE]


def fifty_megabytes(p):
    with open(p / "big.yaml", "w") as f:
        f.write(TINY)
        f.write(("# " + "x" * 1022 + "\n") * (50 * 1024))
    return ["train", "big.yaml", *FORCE]


def python_tag(p):
    return ["train", config(p, "tag.yaml", TINY + "evil: !!python/object/new:os.system {args: [echo]}\n"), *FORCE]


def nul_byte(p):
    return ["train", config(p, "nul.yaml", TINY.replace("seed: 0", "seed: 0\x00")), *FORCE]


def class_weights(p):
    return ["train", config(p, "w.yaml", TINY.replace("criterion: ClassNLLCriterion",
                                                      "criterion: {ClassNLLCriterion: {weights: [1, 2]}}")), *FORCE]


def empty_validation(p):
    return ["train", "tiny.yaml", "--set", "data.validation_split=0.001", *FORCE]


def npz_bad_header(p):
    garble = lambda name, data: npy_header(data, "{'descr': '<f4', 'fortran_order': False, 'shape': (40, 4),,}")
    return ["train", npz_config(p, data_npz(p, lambda n, d: garble(n, d) if n == "x.npy" else d)), *FORCE]


def npz_huge_shape(p):
    huge = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000), }"
    return ["train", npz_config(p, data_npz(p, lambda n, d: npy_header(d, huge) if n == "x.npy" else d)), *FORCE]


def npz_compression_method(p):
    data_npz(p)
    raw = bytearray((p / "plain.npz").read_bytes())
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = raw.find(sig)
        while at != -1:
            raw[at + offset:at + offset + 2] = struct.pack("<H", 99)
            at = raw.find(sig, at + 4)
    (p / "method.npz").write_bytes(bytes(raw))
    return ["train", npz_config(p, "method.npz"), *FORCE]


def checkpoint_bad_header(p):
    garble = lambda name, data: npy_header(data, "{'descr': '<f4', 'fortran_order': False, 'shape': (8, 4") \
        if name == "model.0.weight.npy" else data
    rewritten_members(p / "runs/tiny/last.npz", p / "garbled.npz", garble)
    return ["train", "tiny.yaml", "--resume", "garbled.npz", "--out", "runs/tiny", "-q"]


def checkpoint_format_version(p):
    def other_array(name, data):
        if name != "format_version.npy":
            return data
        out = io.BytesIO()
        np.save(out, np.array(["one", "two"]))
        return out.getvalue()
    rewritten_members(p / "runs/tiny/last.npz", p / "version.npz", other_array)
    return ["eval", "version.npz", "--data", "iris.csv"]


def checkpoint_swapped(p):
    """model.0.bias swapped with another member of its shape and different contents."""
    with zipfile.ZipFile(p / "runs/tiny/last.npz") as zin:
        members = {info.filename: zin.read(info) for info in zin.infolist()}
    arrays = {name: np.load(io.BytesIO(data)) for name, data in members.items()}
    bias = arrays["model.0.bias.npy"]
    other = next(n for n, a in arrays.items() if a.shape == bias.shape and not np.array_equal(a, bias))
    names = {"model.0.bias.npy": other, other: "model.0.bias.npy"}
    with zipfile.ZipFile(p / "swapped.npz", "w") as zout:
        for name in members:
            zout.writestr(name, members[names.get(name, name)])
    return ["train", "tiny.yaml", "--set", "training.epochs=4", "--resume", "swapped.npz", "--out", "runs/tiny", "-q"]


def csv_lone_quote(p):
    lines = (p / "iris.csv").read_text().splitlines()
    lines[5] = lines[5].replace(",", ',"', 1)
    (p / "quote.csv").write_text("\n".join(lines) + "\n")
    return ["train", config(p, "quote.yaml", TINY.replace("iris.csv", "quote.csv")), *FORCE]


def truncated_gzip_idx(p):
    rng = np.random.default_rng(0)
    write_idx(p / "images-idx3-ubyte.gz", rng.integers(0, 256, (60, 8, 8), dtype=np.uint8))
    write_idx(p / "labels-idx1-ubyte.gz", rng.integers(0, 3, 60).astype(np.uint8))
    data = (p / "images-idx3-ubyte.gz").read_bytes()
    (p / "images-idx3-ubyte.gz").write_bytes(data[:len(data) * 2 // 3])
    text = TINY.replace("  train: iris.csv\n", "  train: images-idx3-ubyte.gz\n  train_labels: labels-idx1-ubyte.gz\n")
    text = text.replace("  test: iris.csv\n", "")
    return ["train", config(p, "idx.yaml", text.replace("normalize: standardize", "normalize: none")
                            .replace("  - Linear: 8\n", "  - Flatten\n  - Linear: 8\n")), *FORCE]


def diverging(p):
    return ["train", "tiny.yaml", "--set", "optimizer.lr=1e300", *FORCE]


def disk_full(p):
    return ["train", "tiny.yaml", *FORCE]


CASES = [
    Case("huge Linear", huge_linear, "tiny.yaml:9: model.0 (Linear): the model has 5,000,000,000,000 parameters, "
         "more than the limit of 1,000,000,000"),
    Case("huge conv channels", huge_conv, "conv.yaml:10: model.1 (SpatialConvolution): the model has "
         "2,000,000,000 parameters, more than the limit"),
    Case("huge input_shape in a checkpoint", huge_input_shape, "edited.npz: meta.input_shape: the stored model "
         "cannot be built for samples shaped (1000000000, 1000000)"),
    Case("input_shape 'a'", input_shape_text, "edited.npz: meta.input_shape: expected a list of 1 to 8 positive "
         "integers (a sample's shape), got 'a'"),
    Case("input_shape 4", input_shape_int, "edited.npz: meta.input_shape: expected a list of 1 to 8 positive "
         "integers (a sample's shape), got 4"),
    Case("alias bomb", alias_bomb, "bomb.yaml:21: the document expands to more than 100,000 values"),
    Case("merge-key bomb", merge_bomb, "merge.yaml:20: the document expands to more than 100,000 values"),
    Case("50 MB config", fifty_megabytes, "big.yaml: the file has 52,480,282 bytes; a config may have at most "
         "1,048,576"),
    Case("python tag on a mapping", python_tag, "tag.yaml:16: invalid YAML at column 7: could not determine a "
         "constructor for the tag 'tag:yaml.org,2002:python/object/new:os.system'"),
    Case("NUL in a config", nul_byte, "nul.yaml:2: invalid YAML at column 8: control character '\\x00' (U+0000) "
         "is not allowed"),
    Case("class weights of the wrong length", class_weights, "w.yaml:13: criterion.ClassNLLCriterion.weights: "
         "2 class weights, but the data has 3 classes (setosa, versicolor, virginica)"),
    Case("validation split of 0 samples", empty_validation, "--set: data.validation_split=0.001: a validation "
         "fraction of 0.001 of 150 samples leaves 150 for training and 0 for validation"),
    Case("npz: corrupt .npy header", npz_bad_header, "bad.npz: member 'x.npy': bad .npy header: not a Python literal"),
    Case("npz: huge shape", npz_huge_shape, "bad.npz: member 'x.npy': its header describes (1000000000000, 1000000) "
         "float32 (4,000,000,000,000,000,000 bytes), but the member holds 640 bytes after the header"),
    Case("npz: unknown compression", npz_compression_method, "method.npz: member 'x.npy': compression method 99 "
         "(unknown); numpy archives are stored or deflated"),
    Case("checkpoint: corrupt .npy header", checkpoint_bad_header, "garbled.npz: member 'model.0.weight.npy': bad "
         ".npy header: not a Python literal"),
    Case("checkpoint: format_version of strings", checkpoint_format_version, "version.npz: format_version: "
         "expected an integer, got <U3 of shape (2,)"),
    Case("checkpoint: swapped members", checkpoint_swapped, "swapped.npz: meta.digests: model.0.bias: its contents "
         "do not match its digest (corrupt, or swapped with another member)"),
    Case("csv: a lone quote", csv_lone_quote, 'quote.csv:6: cannot split into cells (a lone " or a misplaced '
         'quote?): unexpected end of data'),
    Case("truncated .gz IDX", truncated_gzip_idx, "images-idx3-ubyte.gz: the gzip data ends before its "
         "end-of-stream marker (truncated?)"),
    Case("--force, then a failure in the first epoch", diverging, "non-finite loss at epoch 1, batch 2"),
    Case("disk full", disk_full, "runs/tiny/best.npz: File too large", limit_file_bytes=4096),
]


# ----------------------------------------------------------------------------- running them
def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_case(case: Case, base: Path, root: Path) -> dict:
    project = root / case.name.replace(" ", "_").replace("'", "").replace(":", "").replace(".", "")
    shutil.copytree(base, project)
    args = case.setup(project)
    before = tree_digest(project / "runs/tiny")

    def limit():                                  # a full disk, as far as this process can tell
        resource.setrlimit(resource.RLIMIT_FSIZE, (case.limit_file_bytes, case.limit_file_bytes))

    proc = subprocess.run([sys.executable, "-m", "backprop_cli", *args], cwd=project, env=ENV, capture_output=True,
                          text=True, timeout=120, preexec_fn=limit if case.limit_file_bytes else None)
    return {"proc": proc, "before": before, "after": tree_digest(project / "runs/tiny"),
            "left": sorted(os.listdir(project / "runs/tiny"))}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp("base")
    shutil.copy(ROOT / "data/iris.csv", base / "iris.csv")
    (base / "tiny.yaml").write_text(TINY)
    trained = subprocess.run([sys.executable, "-m", "backprop_cli", "train", "tiny.yaml", "-q"], cwd=base, env=ENV,
                             capture_output=True, text=True, timeout=120)
    assert trained.returncode == 0, trained.stderr
    root = tmp_path_factory.mktemp("cases")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {case.name: pool.submit(run_case, case, base, root) for case in CASES}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_one_line_exit_1_no_traceback_nothing_lost(case, results):
    result = results[case.name]
    proc = result["proc"]
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert case.expected in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert result["after"] == result["before"]                # byte for byte
    assert result["left"] == ["best.npz", "config.yaml", "last.npz", "metrics.csv", "run.json"]   # no lock, no .tmp
