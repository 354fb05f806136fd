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
    p = existing_file(path)
    with open(p, "rb") as f:
        magic = f.read(6)
    if magic[:4] != b"PK\x03\x04":
        what = "a single .npy array" if magic == b"\x93NUMPY" else "not a zip archive"
        raise DataError(f"{what}, expected an .npz archive with arrays x and y (np.savez(path, x=..., y=...))",
                        file=name, where="bytes 0-3")
    try:
        with np.load(p, allow_pickle=False) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                raise DataError(f"missing array{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(repr(k) for k in missing)}; the file has "
                                f"{listing(archive.files) or 'no arrays'}", file=name)
            x, y = archive["x"], archive["y"]
            stored = archive["classes"] if "classes" in archive.files else None
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"cannot read as .npz: {err}", file=name) from None

    if x.dtype.kind not in "biuf" or x.ndim < 2:
        raise DataError(f"x has dtype {x.dtype} and shape {shape_str(x.shape)}, expected numbers "
                        "shaped (N, features...)", file=name, where="array 'x'")
    if len(x) != len(y):
        raise DataError(f"x has {len(x)} samples but y has {len(y)}", file=name, where="arrays 'x' and 'y'")
    x = x.astype(np.float32, copy=False)
    i = first_nonfinite(x)
    if i is not None:
        raise DataError("holds a NaN or infinite value", file=name, where=f"x[{i}]")
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
