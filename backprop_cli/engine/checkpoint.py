"""Checkpoints: one pickle-free ``.npz`` file holding everything needed to evaluate or resume a run.

Layout (every entry a plain array; loading never executes code from the file)::

    format_version    int64 scalar, FORMAT_VERSION
    meta              a JSON document (UTF-8 bytes, uint8): resolved config, epoch/step, metric history,
                      RNG states, schedule state, optimizer scalars, classes, task, input shape, and
                      ``digests``: a BLAKE2b of every array below, checked on load
    model.<name>      weights and buffers by dotted name ("model.0.weight", "model.3.running_mean")
    optim.<name>      optimizer state arrays ("optim.momentum_buffer.0")
    best.<name>       the best weights so far by the monitored metric (for early stopping)
    norm.<name>       data normalisation statistics, fitted on the training set
    resume.perm       the interrupted epoch's sample order (only in a mid-epoch checkpoint)

Writes are atomic: a temporary file in the same directory, flushed and fsynced, then ``os.replace``.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.npz import read_npz
from ..errors import CheckpointError, shape_str

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
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    reserved = [name for name in arrays if name in ("format_version", "meta")]
    if reserved:
        raise ValueError(f"array name {reserved[0]!r} is reserved")
    meta = {**meta, "digests": {name: digest(value) for name, value in arrays.items()}}
    payload = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64),
               "meta": np.frombuffer(json.dumps(meta, allow_nan=True).encode(), dtype=np.uint8), **arrays}
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
    except OSError as err:                        # a full disk: name the file being written
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None or err.filename == tmp:
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class BackgroundWrites:
    """File writes done in order on one thread beside training, so an epoch does not wait for a
    checkpoint's zip, digests and fsync (measured by ``benchmarks/checkpoints.py``).

    :meth:`submit` queues ``write(*args)`` (each a complete, atomic write); at most ``depth`` wait, so a
    slow disk holds training back rather than filling memory. The first write that fails stops the
    rest and its exception is raised in the caller's thread, by the next :meth:`submit` or by
    :meth:`flush`, which waits until every queued write is done; later writes are dropped (the run
    stops on the error). Callers hand over arrays they no longer change (copies: ``state_dict``
    makes them).
    """

    def __init__(self, depth: int = 8) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None       # the failure, until it is handed over
        self._failed = False                            # once a write failed, no later one is done
        self._thread: threading.Thread | None = None

    def submit(self, write, *args) -> None:
        self._raise()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="backprop-writes", daemon=True)
            self._thread.start()
        self._queue.put((write, args))

    def flush(self) -> None:
        """Wait for every queued write; raise the first failure."""
        if self._thread is not None:
            self._queue.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self) -> None:
        while True:
            write, args = self._queue.get()
            try:
                if not self._failed:               # after a failure the rest are dropped, not half-done
                    write(*args)
            except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                self._error, self._failed = err, True
            finally:
                self._queue.task_done()


def copy_file(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """``path`` becomes a copy of ``source``, atomically (:func:`atomic_write`)."""
    data = Path(source).read_bytes()
    atomic_write(path, lambda f: f.write(data))


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
    """Read and check the container (version, meta, digests, no pickled objects); every failure is a
    CheckpointError naming the file and the entry."""
    path = str(path)
    if not os.path.isfile(path):
        raise CheckpointError("file not found", file=path)
    if not zipfile.is_zipfile(path):
        raise CheckpointError("not a backprop checkpoint: not an .npz (zip) file", file=path)
    arrays = read_npz(path, error=CheckpointError)
    if "format_version" not in arrays or "meta" not in arrays:
        raise CheckpointError("not a backprop checkpoint: no format_version/meta entries", file=path)
    version = arrays.pop("format_version")
    if version.shape != () or version.dtype.kind not in "iu":
        raise CheckpointError(f"expected an integer, got {version.dtype} of shape {shape_str(version.shape)}",
                              file=path, where="format_version")
    if int(version) != FORMAT_VERSION:
        raise CheckpointError(f"format version {int(version)} is not supported (this backprop reads {FORMAT_VERSION})",
                              file=path, where="format_version")
    meta = _meta(arrays.pop("meta"), path)
    _check_digests(meta.pop("digests", None), arrays, path)
    return Checkpoint(path, meta, arrays)


def _meta(raw: np.ndarray, path: str) -> dict:
    """The JSON object stored as UTF-8 bytes (uint8, 1-D), or as a text scalar."""
    if raw.dtype == np.uint8 and raw.ndim == 1:
        text = raw.tobytes()
    elif raw.dtype.kind == "U" and raw.ndim == 0:
        text = str(raw)
    else:
        raise CheckpointError(f"expected UTF-8 bytes (uint8), got {raw.dtype} of shape {shape_str(raw.shape)}",
                              file=path, where="meta")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as err:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"not valid JSON: {err}", file=path, where="meta") from None
    if not isinstance(meta, dict):
        raise CheckpointError("must be a JSON object", file=path, where="meta")
    return meta


def digest(array: np.ndarray) -> str:
    """A 128-bit BLAKE2b of an array's dtype, shape and bytes: what ``meta.digests`` holds per array."""
    array = np.ascontiguousarray(array)
    h = hashlib.blake2b(f"{array.dtype.str}{array.shape}".encode(), digest_size=16)
    h.update(memoryview(array.reshape(-1).view(np.uint8)) if array.size else b"")
    return h.hexdigest()


def _check_digests(digests, arrays: dict[str, np.ndarray], path: str) -> None:
    """Each array must match the digest saved with it: a member swapped for another of the same shape,
    or changed and its zip checksum mended, is refused. Checkpoints without digests (older ones) pass."""
    if digests is None:
        return
    if not isinstance(digests, dict):
        raise CheckpointError("expected a JSON object of array digests", file=path, where="meta.digests")
    problems = [f"{name}: not in the file" for name in digests if name not in arrays]
    problems += [f"{name}: has no digest" for name in arrays if name not in digests]
    problems += [f"{name}: its contents do not match its digest (corrupt, or swapped with another member)"
                 for name, array in arrays.items() if name in digests and digests[name] != digest(array)]
    if problems:
        raise CheckpointError("; ".join(problems), file=path, where="meta.digests")


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
