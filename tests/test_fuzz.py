"""Fuzzing every reader: valid files, mutated by a seeded mutator, must load or raise the project's own
error (a :class:`~backprop_cli.errors.BackpropError` naming the file), never anything else.

Mutations are byte-level (bit flips, truncation, inserted, deleted, overwritten and repeated bytes)
plus format-aware ones: huge dimensions in an IDX header, a huge shape or a garbled ``.npy`` header
inside a zip member, an unknown zip compression method, two archive members swapped, and changed
gzip bytes. Each case is ``(reader, seed)``; a failure names both, so it replays exactly.

    BACKPROP_FUZZ_CASES=2000 python -m pytest tests/test_fuzz.py     # more cases per reader
"""

from __future__ import annotations

import io
import os
import random
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.config.schema import load_config
from backprop_cli.data import load_csv, load_idx, load_npz, read_idx, write_idx
from backprop_cli.engine.checkpoint import load_checkpoint
from backprop_cli.engine.experiment import restore
from backprop_cli.errors import BackpropError
from common import ROOT, TINY

#: Cases per reader: a few seconds in all by default.
CASES = int(os.environ.get("BACKPROP_FUZZ_CASES", "60"))

#: The tiny config with an anchor, class weights, a schedule and early stopping: more for the mutator to break.
CONFIG = TINY.replace("  - Linear: 8", "  - Linear: &width 8").replace(
    "criterion: ClassNLLCriterion", "criterion: {ClassNLLCriterion: {weights: [1, 2, 1]}}").replace(
    "training: {epochs: 3, batch_size: 16}", "schedule: {name: cosine, warmup_epochs: 1}\n"
    "training: {epochs: 2, batch_size: 16, early_stopping: {patience: 2}}").encode()


# ----------------------------------------------------------------------------- the mutator
def _flip(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _truncate(rng, data):
    return data[:rng.randrange(len(data))]


def _insert(rng, data):
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.randint(1, 16)) + data[i:]


def _delete(rng, data):
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 32):]


def _overwrite(rng, data):
    i = rng.randrange(len(data))
    chunk = rng.choice([rng.randbytes(rng.randint(1, 8)), b"\xff" * rng.randint(1, 8), b"\0" * rng.randint(1, 8)])
    return data[:i] + chunk + data[i + len(chunk):]


def _repeat(rng, data):
    i = rng.randrange(len(data))
    piece = data[i:i + rng.randint(1, 64)]
    return data[:i] + piece * rng.randint(2, 50) + data[i:]


BYTE_MUTATIONS = [_flip, _truncate, _insert, _delete, _overwrite, _repeat]


def _huge_idx_dims(rng, data):
    """An IDX header promising huge dimensions (the gzip layer, if any, is handled by the caller)."""
    ndim = data[3]
    b = bytearray(data)
    k = rng.randrange(max(ndim, 1))
    b[4 + 4 * k:8 + 4 * k] = struct.pack(">I", rng.choice([2**32 - 1, 2**31, 10**9, 0]))
    return bytes(b)


def _members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(info, z.read(info)) for info in z.infolist()]


def _zip(members: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info, payload in members:
            z.writestr(info, payload)
    return out.getvalue()


def _npy_header_mutation(rng, payload: bytes) -> bytes:
    """A member's .npy header with a huge or garbled shape, a strange dtype, or broken syntax."""
    length = int.from_bytes(payload[8:10], "little")
    header, rest = payload[10:10 + length].decode("latin1"), payload[10 + length:]
    shape_at = header.index("'shape': (")
    end = header.index(")", shape_at)
    choice = rng.randrange(5)
    if choice == 0:
        header = header[:shape_at] + "'shape': (4294967296, 4294967296" + header[end:]
    elif choice == 1:
        header = header[:shape_at] + "'shape': (-1, 3" + header[end:]
    elif choice == 2:
        header = header.replace("'descr': '", "'descr': '|O", 1) if "'descr': '" in header else header + "("
    elif choice == 3:
        header = header[:rng.randrange(len(header))] + "{(((" + "[" * 200
    else:
        header = header.replace("False", "'no'").replace("True", "1")
    raw = header.encode("latin1")
    return payload[:8] + len(raw).to_bytes(2, "little") + raw + rest


def _zip_mutation(rng, data: bytes) -> bytes:
    """Swap two members, garble one member's .npy header, or name an unknown compression method."""
    members = _members(data)
    choice = rng.randrange(3)
    if choice == 0 and len(members) > 1:
        i, j = rng.sample(range(len(members)), 2)
        (a, pa), (b, pb) = members[i], members[j]
        members[i], members[j] = (a, pb), (b, pa)
        return _zip(members)
    if choice == 1:
        k = rng.randrange(len(members))
        info, payload = members[k]
        members[k] = (info, _npy_header_mutation(rng, payload))
        return _zip(members)
    b = bytearray(data)                           # the method field of local and central headers
    method = rng.choice([1, 6, 9, 12, 14, 93, 99, 0xFFFF])
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = b.find(sig)
        while start != -1:
            b[start + offset:start + offset + 2] = struct.pack("<H", method)
            start = b.find(sig, start + 4)
    return bytes(b)


def mutate(rng: random.Random, data: bytes, kind: str) -> bytes:
    """One mutation of a valid ``kind`` file (yaml, csv, idx, idx.gz, npz)."""
    if kind == "idx" and rng.random() < 0.3:
        return _huge_idx_dims(rng, data)
    if kind == "idx.gz" and rng.random() < 0.5:
        import gzip
        inner = gzip.decompress(data)
        inner = _huge_idx_dims(rng, inner) if rng.random() < 0.5 else rng.choice(BYTE_MUTATIONS)(rng, inner)
        return gzip.compress(inner, mtime=0)
    if kind == "npz" and rng.random() < 0.5:
        return _zip_mutation(rng, data)
    return rng.choice(BYTE_MUTATIONS)(rng, data)


# ----------------------------------------------------------------------------- the valid files
@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    """One valid file of each kind, and the folder they sit in (with iris.csv for the config)."""
    folder = tmp_path_factory.mktemp("originals")
    shutil.copy(ROOT / "data/iris.csv", folder / "iris.csv")
    (folder / "config.yaml").write_bytes(CONFIG)
    lines = (ROOT / "data/iris.csv").read_text().splitlines()
    (folder / "small.csv").write_text("\n".join(lines[:1] + lines[1::10]) + "\n")
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (12, 4, 4), dtype=np.uint8), rng.integers(0, 3, 12).astype(np.uint8)
    for suffix in ("", ".gz"):
        write_idx(folder / f"images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"labels-idx1-ubyte{suffix}", labels)
    np.savez(folder / "data.npz", x=rng.standard_normal((10, 3)).astype(np.float32), y=np.arange(10) % 2,
             classes=np.array(["no", "yes"]))
    np.savez_compressed(folder / "compressed.npz", x=np.zeros((50, 4)), y=np.zeros(50))
    from typer.testing import CliRunner
    from backprop_cli.cli.app import app
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(app, ["train", "config.yaml", "-q", "--out", "run"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return {"folder": folder, "yaml": folder / "config.yaml", "csv": folder / "small.csv",
            "idx": folder / "images-idx3-ubyte", "idx.gz": folder / "images-idx3-ubyte.gz",
            "labels": folder / "labels-idx1-ubyte", "npz": folder / "data.npz",
            "npz.deflated": folder / "compressed.npz", "checkpoint": folder / "run" / "best.npz"}


def _read_config(path, originals):
    load_config(path)


def _read_csv(path, originals):
    load_csv(path, label_column=-1)


def _read_idx_images(path, originals):
    load_idx(path, originals["labels"])


def _read_idx_labels(path, originals):
    read_idx(path)


def _read_npz(path, originals):
    load_npz(path)


def _read_checkpoint(path, originals):
    load_checkpoint(path)
    restore(path)


READERS = {  # name: (original, mutation kind, reader)
    "yaml": ("yaml", "yaml", _read_config),
    "csv": ("csv", "csv", _read_csv),
    "idx": ("idx", "idx", _read_idx_images),
    "idx.gz": ("idx.gz", "idx.gz", _read_idx_images),
    "idx-labels": ("labels", "idx", _read_idx_labels),
    "npz": ("npz", "npz", _read_npz),
    "npz-deflated": ("npz.deflated", "npz", _read_npz),
    "checkpoint": ("checkpoint", "npz", _read_checkpoint),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_a_mutated_file_loads_or_is_the_projects_error(reader, originals, tmp_path):
    original, kind, read = READERS[reader]
    data = originals[original].read_bytes()
    read(originals[original], originals)          # the original itself loads
    suffix = originals[original].name
    errors = 0
    for seed in range(CASES):
        rng = random.Random(f"{reader}:{seed}")
        path = tmp_path / f"{seed}-{suffix}"
        if reader == "yaml":                      # beside iris.csv, which the config names
            path = originals["folder"] / f"fuzz-{seed}.yaml"
        path.write_bytes(mutate(rng, data, kind))
        try:
            read(path, originals)
        except BackpropError as err:
            errors += 1
            assert str(err).startswith(str(path)), (reader, seed, str(err))
        except Exception as err:                  # anything else is a bug: replay with (reader, seed)
            pytest.fail(f"{reader} seed {seed}: {type(err).__name__}: {err}")
        finally:
            if reader == "yaml":
                path.unlink()
    assert errors > CASES // 4                    # the mutations do reach the checks
