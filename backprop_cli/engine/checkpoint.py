"""Checkpoints: one pickle-free ``.npz`` file holding everything needed to evaluate or resume a run.

Layout (every entry a plain array; loading never executes code from the file)::

    format_version    int64 scalar, FORMAT_VERSION
    meta              a JSON document (UTF-8 bytes, uint8): resolved config, epoch/step, metric history,
                      RNG states, schedule state, optimizer scalars, classes, task, input shape
    model.<name>      weights and buffers by dotted name ("model.0.weight", "model.3.running_mean")
    optim.<name>      optimizer state arrays ("optim.momentum_buffer.0")
    best.<name>       the best weights so far by the monitored metric (for early stopping)
    norm.<name>       data normalisation statistics, fitted on the training set
    resume.perm       the interrupted epoch's sample order (only in a mid-epoch checkpoint)

Writes are atomic: a temporary file in the same directory, flushed and fsynced, then ``os.replace``.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the JSON ``meta`` and the named arrays."""

    path: str
    meta: dict
    arrays: dict[str, np.ndarray]

    def group(self, prefix: str) -> dict[str, np.ndarray]:
        """Arrays under ``prefix.`` with the prefix removed (``group("model")``)."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.arrays.items() if k.startswith(p)}


def save_checkpoint(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically: the previous file at ``path`` stays whole until the new one is complete."""
    path = Path(path)
    payload = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64),
               "meta": np.frombuffer(json.dumps(meta, allow_nan=True).encode(), dtype=np.uint8)}
    for name, value in arrays.items():
        if name in payload:
            raise ValueError(f"array name {name!r} is reserved")
        payload[name] = np.asarray(value)
    atomic_write(path, lambda f: np.savez(f, **payload))


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, fsync it, then ``os.replace``:
    readers see the old file or the new one, never half of one, and no temporary file is left behind."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:                        # name the file the user asked for, not the temporary
        raise OSError(err.errno, err.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())          # mkstemp's 0600 would hide the file from other users
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_checkpoint(path: str | os.PathLike) -> bool:
    """True when the file at ``path`` starts with the zip signature ``PK\\x03\\x04``, as every ``.npz``
    checkpoint does and no YAML config can: commands that take a config or a checkpoint tell them
    apart by content, not by name."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and check the container (version, meta, no pickled objects); every failure is a CheckpointError."""
    path = str(path)
    if not os.path.isfile(path):
        raise CheckpointError("file not found", file=path)
    if not zipfile.is_zipfile(path):
        raise CheckpointError("not a backprop checkpoint: not an .npz (zip) file", file=path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise CheckpointError(f"not a backprop checkpoint (.npz) or truncated: {err}", file=path) from None
    except ValueError as err:   # object arrays need pickle, which is refused
        raise CheckpointError(f"refused: {err}", file=path) from None
    if "format_version" not in arrays or "meta" not in arrays:
        raise CheckpointError("not a backprop checkpoint: no format_version/meta entries", file=path)
    version = arrays.pop("format_version")
    if version.shape != () or int(version) != FORMAT_VERSION:
        raise CheckpointError(f"format version {version} is not supported (this backprop reads {FORMAT_VERSION})",
                              file=path, where="format_version")
    try:
        raw = arrays.pop("meta")
        meta = json.loads(str(raw) if raw.dtype.kind == "U" else raw.tobytes().decode())   # text, or UTF-8 bytes
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"meta is not valid JSON: {err}", file=path, where="meta") from None
    if not isinstance(meta, dict):
        raise CheckpointError("meta must be a JSON object", file=path, where="meta")
    return Checkpoint(path, meta, arrays)


def check_weights(ckpt: Checkpoint, expected: dict[str, np.ndarray], prefix: str = "model") -> dict[str, np.ndarray]:
    """The ``prefix`` arrays of ``ckpt``, checked against the model's own (name, shape, dtype, finiteness).

    One CheckpointError lists every mismatch by name.
    """
    stored = ckpt.group(prefix)
    problems = [f"{prefix}.{n}: missing" for n in expected if n not in stored]
    problems += [f"{prefix}.{n}: not in the model" for n in stored if n not in expected]
    for name, want in expected.items():
        got = stored.get(name)
        if got is None:
            continue
        if got.shape != want.shape:
            problems.append(f"{prefix}.{name}: shape {got.shape}, the model needs {want.shape}")
        elif got.dtype != want.dtype:
            problems.append(f"{prefix}.{name}: dtype {got.dtype}, the model needs {want.dtype}")
        elif not np.all(np.isfinite(got)):
            problems.append(f"{prefix}.{name}: holds non-finite values")
    if problems:
        raise CheckpointError("; ".join(problems), file=ckpt.path)
    return stored
