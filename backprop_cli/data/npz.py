"""NPZ: a NumPy ``.npz`` archive holding arrays ``x`` (features) and ``y`` (targets), and optionally
``classes`` (the class names, strings).

:func:`load_npz` checks that the file is a zip archive (not a lone ``.npy`` array) with ``x`` and ``y``,
read without pickles; that ``x`` holds finite numbers shaped ``(N, features...)`` with as many samples
as ``y``; that a stored ``classes`` is strings ``(K,)``; and that ``y`` fits the task.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

from ..errors import DataError, shape_str
from .dataset import Dataset, check_task, existing_file, first_nonfinite, listing, targets_from_array


def load_npz(path, *, task: str | None = None, classes: Sequence[str] | None = None) -> Dataset:
    """Read arrays ``x`` (features, ``(N, ...)``) and ``y`` (targets) from an ``.npz`` archive.

    ``task=None`` takes integer ``y`` as class indices and floating ``y`` as a regression target.
    An optional string array ``classes`` in the file names the classes (``classes=`` overrides it).
    """
    name = str(path)
    arrays = _read(path, ("x", "y"), ("classes",))
    x, y, stored = _features(arrays["x"], name), arrays["y"], arrays.get("classes")
    if len(x) != len(y):
        raise DataError(f"x has {len(x)} samples but y has {len(y)}", file=name, where="arrays 'x' and 'y'")
    if task is None:
        task = "classification" if y.dtype.kind in "biu" else "regression"
    check_task(task)
    if classes is None and stored is not None and task != "regression":
        if stored.dtype.kind not in "US" or stored.ndim != 1:
            raise DataError(f"classes has dtype {stored.dtype} and shape {shape_str(stored.shape)}, "
                            "expected strings (K,)", file=name, where="array 'classes'")
        classes = [str(c) for c in stored]
    y, classes = targets_from_array(y, task, classes, file=name, array="array 'y'", item=lambda i: f"y[{i}]")
    return Dataset(x, y, classes, name)


def npz_features(path) -> np.ndarray:
    """Only the features ``x`` of an ``.npz`` archive (``y`` may be missing), checked as :func:`load_npz`
    checks them: samples to predict on."""
    return _features(_read(path, ("x",), ())["x"], str(path))


def _read(path, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named arrays of the archive, read without pickles; a missing required one is an error."""
    name = str(path)
    p = existing_file(path)
    with open(p, "rb") as f:
        magic = f.read(6)
    if magic[:4] != b"PK\x03\x04":
        what = "a single .npy array" if magic == b"\x93NUMPY" else "not a zip archive"
        raise DataError(f"{what}, expected an .npz archive with arrays x and y (np.savez(path, x=..., y=...))",
                        file=name, where="bytes 0-3")
    try:
        with np.load(p, allow_pickle=False) as archive:
            missing = [k for k in required if k not in archive.files]
            if missing:
                raise DataError(f"missing array{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(repr(k) for k in missing)}; the file has "
                                f"{listing(archive.files) or 'no arrays'}", file=name)
            return {k: archive[k] for k in required + optional if k in archive.files}
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"cannot read as .npz: {err}", file=name) from None


def _features(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as float32, after checking it holds finite numbers shaped ``(N, features...)``."""
    if x.dtype.kind not in "biuf" or x.ndim < 2:
        raise DataError(f"x has dtype {x.dtype} and shape {shape_str(x.shape)}, expected numbers "
                        "shaped (N, features...)", file=name, where="array 'x'")
    x = x.astype(np.float32, copy=False)
    i = first_nonfinite(x)
    if i is not None:
        raise DataError("holds a NaN or infinite value", file=name, where=f"x[{i}]")
    return x
