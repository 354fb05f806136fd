"""NPY pairs: features and targets as two NumPy ``.npy`` files, for data larger than memory.

Named as a directory holding ``x.npy`` and ``y.npy``, or as the two files (``x`` and its ``labels``).
The features stay on disk (:class:`DiskFeatures`: read batch by batch, never whole); the targets are
read into memory. Unlike an ``.npz`` archive, whose members are read whole, an ``.npy`` file's rows
can be read where they lie.

:func:`load_npy` checks each file's header (as an NPZ member's: syntax, fields, no Python objects;
then a numeric dtype), that the file holds exactly the bytes its header promises, that ``x`` is shaped ``(N, features...)``
in C order with finite values (one pass over the file, in chunks), and that ``y`` has one target per
sample and fits the task.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError, shape_str
from .dataset import Dataset, check_task, existing_file, first_nonfinite, targets_from_array
from .npz import npy_header
from .ondisk import DiskFeatures, FileArray

FEATURES, TARGETS = "x.npy", "y.npy"


def is_npy_dir(path) -> bool:
    """Whether ``path`` is a directory holding ``x.npy`` (an NPY pair's features)."""
    return Path(path).is_dir() and (Path(path) / FEATURES).is_file()


def npy_files(path, labels=None) -> tuple[Path, Path | None]:
    """The features and targets files: ``path/x.npy`` and ``path/y.npy`` for a directory, else
    ``path`` and ``labels``."""
    p = Path(path)
    if p.is_dir():
        if not is_npy_dir(p):
            raise DataError(f"the directory holds no {FEATURES}; expected {FEATURES} and {TARGETS}", file=str(path))
        if labels is not None:
            raise DataError(f"a directory holds its own {TARGETS}; give no labels file", file=str(labels))
        return p / FEATURES, (p / TARGETS if (p / TARGETS).exists() else None)
    return existing_file(p), None if labels is None else existing_file(labels)


def load_npy(path, labels=None, *, task: str | None = None, classes: Sequence[str] | None = None,
             dtype=np.float32) -> Dataset:
    """Features from ``x.npy`` (left on disk, read as ``dtype``) and targets from ``y.npy`` (see
    :func:`npy_files`).

    ``task=None`` takes integer ``y`` as class indices and floating ``y`` as a regression target.
    """
    x_path, y_path = npy_files(path, labels)
    if y_path is None:
        beside = x_path.with_name(TARGETS)
        hint = f" (is it {beside}?)" if beside.exists() and beside != x_path else ""
        where = f"the directory has no {TARGETS}" if Path(path).is_dir() else "needs a labels file with its targets"
        raise DataError(where + hint, file=str(path))
    x = npy_features(x_path, dtype)
    _check_header(y_path, features=False)
    y = np.load(y_path, allow_pickle=False)                   # its header and size are checked: no surprise
    if len(x) != len(y):
        raise DataError(f"{x_path} has {len(x)} samples but {y_path} has {len(y)} targets", file=str(y_path),
                        where="shape")
    if task is None:
        task = "classification" if y.dtype.kind in "biu" else "regression"
    check_task(task)
    y, classes = targets_from_array(y, task, classes, file=str(y_path), array="y", item=lambda i: f"y[{i}]",
                                    dtype=dtype)
    return Dataset(x, y, classes, f"{x_path} + {y_path}")


def npy_features(path, dtype=np.float32) -> DiskFeatures:
    """The features of ``x.npy`` (or of a directory holding it), left on disk, checked as
    :func:`load_npy` checks them: samples to train on or to predict on."""
    x_path = npy_files(path)[0]
    stored, shape, offset = _check_header(x_path, features=True)
    x = DiskFeatures(FileArray(x_path, offset, stored, shape), shape[1:], dtype=dtype)
    i = first_nonfinite(x) if stored.kind == "f" else None
    if i is not None:
        raise DataError("holds a NaN or infinite value", file=str(x_path), where=f"x[{i}]")
    return x


def _check_header(path: Path, *, features: bool) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, shape, data offset)`` from the header (read and checked as an NPZ member's is, before
    anything is allocated), checked further: numbers, shaped ``(N, features...)`` in C order for
    features, and exactly the bytes the header promises."""
    name = str(path)
    with open(path, "rb") as f:
        dtype, shape, fortran, offset = npy_header(f, name, "header", DataError)
    if dtype.kind not in "biuf":
        raise DataError(f"dtype {dtype}, expected numbers", file=name, where="header")
    if features and (len(shape) < 2 or shape[0] == 0):
        raise DataError(f"shape {shape_str(shape)}, expected samples (N, features...) with N > 0", file=name,
                        where="header")
    if features and fortran:
        raise DataError("stored in Fortran order, so a sample's values are not together in the file; save "
                        "it in C order: np.save(path, np.ascontiguousarray(x))", file=name, where="header")
    payload = math.prod(shape) * dtype.itemsize
    size = path.stat().st_size
    if size != offset + payload:
        raise DataError(f"the file has {size:,} bytes, but its header promises {shape_str(shape)} {dtype}: "
                        f"{offset:,} + {payload:,} = {offset + payload:,} bytes"
                        f"{' (truncated?)' if size < offset + payload else ''}", file=name, where="header")
    return dtype, tuple(shape), offset
