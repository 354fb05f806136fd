"""NPZ: a NumPy ``.npz`` archive holding arrays ``x`` (features) and ``y`` (targets), and optionally
``classes`` (the class names, strings).

:func:`load_npz` checks that the file is a zip archive (not a lone ``.npy`` array) with ``x`` and ``y``,
read without pickles; that ``x`` holds finite numbers shaped ``(N, features...)`` with as many samples
as ``y``; that a stored ``classes`` is strings ``(K,)``; and that ``y`` fits the task.

:func:`read_npz` is the archive reader under it, shared with checkpoints. It reads each member's
``.npy`` header itself and checks it before anything is allocated: the compression method (stored or
deflated, what numpy writes), the header's syntax and fields, a dtype without Python objects, and
that the shape times the item size is exactly the member's size (which deflate bounds by the
compressed size); so a corrupt or hostile file is one error naming the member, never a numpy
traceback or a petabyte allocation.
"""

from __future__ import annotations

import ast
import math
import os
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

from ..errors import BackpropError, DataError, shape_str
from .dataset import Dataset, check_task, existing_file, first_nonfinite, listing, targets_from_array


def load_npz(path, *, task: str | None = None, classes: Sequence[str] | None = None, dtype=np.float32) -> Dataset:
    """Read arrays ``x`` (features, ``(N, ...)``, as ``dtype``) and ``y`` (targets) from an ``.npz`` archive.

    ``task=None`` takes integer ``y`` as class indices and floating ``y`` as a regression target.
    An optional string array ``classes`` in the file names the classes (``classes=`` overrides it).
    """
    name = str(path)
    arrays = _read(path, ("x", "y"), ("classes",))
    x, y, stored = _features(arrays["x"], name, dtype), arrays["y"], arrays.get("classes")
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
    y, classes = targets_from_array(y, task, classes, file=name, array="array 'y'", item=lambda i: f"y[{i}]",
                                    dtype=dtype)
    return Dataset(x, y, classes, name)


def npz_features(path, dtype=np.float32) -> np.ndarray:
    """Only the features ``x`` of an ``.npz`` archive (``y`` may be missing), checked as :func:`load_npz`
    checks them: samples to predict on."""
    return _features(_read(path, ("x",), ())["x"], str(path), dtype)


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
    return read_npz(p, names=required + optional, required=required)


# --------------------------------------------------------------------------- the archive reader
#: The zip compression methods numpy's archives use: ``np.savez`` stores, ``np.savez_compressed`` deflates.
NPZ_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_ZIP_METHOD_NAMES = {12: "bzip2", 14: "lzma", 93: "zstandard", 98: "ppmd", 9: "deflate64"}
#: Deflate turns a byte into at most 1032 (its best case, a run of one value); a member claiming more is corrupt.
_DEFLATE_RATIO = 1032
#: numpy's own limit on an .npy header (``max_header_size``).
_MAX_NPY_HEADER = 10_000
_CHUNK = 1 << 24


def read_npz(path, *, names: Sequence[str] | None = None, required: Sequence[str] = (),
             error: type[BackpropError] = DataError) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive by name (all of them, or those of ``names`` it holds), read
    without pickles and checked as the module docstring says. Every problem raises ``error`` (DataError,
    or CheckpointError for checkpoints) naming the file and the member; a missing ``required`` array too."""
    file = str(path)
    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive:
            members = _members(archive, file, error)
            missing = [k for k in required if k not in members]
            if missing:
                raise error(f"missing array{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(repr(k) for k in missing)}; the file has "
                            f"{listing(list(members)) or 'no arrays'}", file=file)
            wanted = members if names is None else [k for k in names if k in members]
            return {k: _read_member(archive, members[k], size, file, error) for k in wanted}
    except BackpropError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
            RuntimeError) as err:                 # RuntimeError: an encrypted member
        raise error(f"cannot read as .npz: {err}", file=file) from None


def _members(archive: zipfile.ZipFile, file: str, error) -> dict[str, zipfile.ZipInfo]:
    """Array name (``x`` for ``x.npy``) -> its member; anything but uniquely named .npy members is refused."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise error(f"member {info.filename!r} is not an .npy array", file=file)
        key = info.filename[:-4]
        if key in members:
            raise error(f"member {info.filename!r} appears twice", file=file)
        members[key] = info
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int, file: str, error) -> np.ndarray:
    where = f"member {info.filename!r}"
    method = info.compress_type
    if method not in NPZ_METHODS:
        name = _ZIP_METHOD_NAMES.get(method, "unknown")
        raise error(f"compression method {method} ({name}); numpy archives are stored or deflated",
                    file=file, where=where)
    bound = info.compress_size if method == zipfile.ZIP_STORED else info.compress_size * _DEFLATE_RATIO
    if info.compress_size > size or info.file_size > bound:
        raise error(f"the zip directory claims {info.file_size:,} bytes from {info.compress_size:,} "
                    f"{NPZ_METHODS[method]} in a {size:,}-byte file: corrupt", file=file, where=where)
    with archive.open(info) as f:
        dtype, shape, fortran, header = npy_header(f, file, where, error)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if header + nbytes != info.file_size:
            raise error(f"its header describes {shape_str(shape)} {dtype} ({nbytes:,} bytes), but the member "
                        f"holds {info.file_size - header:,} bytes after the header", file=file, where=where)
        buf, got = np.empty(nbytes, dtype=np.uint8), 0
        while got < nbytes:                       # in chunks: ZipExtFile.readinto would copy the whole
            chunk = f.read(min(nbytes - got, _CHUNK))
            if not chunk:
                raise error(f"the data ends after {got:,} of {nbytes:,} bytes (truncated)", file=file, where=where)
            buf[got:got + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            got += len(chunk)
        f.read(1)                                 # at the end: the zip's CRC-32 is checked here
    return buf.view(dtype).reshape(shape, order="F" if fortran else "C")


def npy_header(f, file: str, where: str, error) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """``(dtype, shape, fortran_order, header bytes)`` from an .npy header, parsed as a Python literal
    (never evaluated) and checked field by field."""
    def bad(message: str) -> BackpropError:
        return error(f"bad .npy header: {message}", file=file, where=where)

    start = f.read(8)
    if len(start) < 8 or start[:6] != b"\x93NUMPY":
        raise bad("it does not start with the .npy magic \\x93NUMPY")
    major = start[6]
    if major not in (1, 2, 3):
        raise bad(f"format version {major}.{start[7]}, expected 1.0, 2.0 or 3.0")
    width = 2 if major == 1 else 4
    raw_len = f.read(width)
    if len(raw_len) < width:
        raise bad("it ends inside its length field")
    length = int.from_bytes(raw_len, "little")
    if length > _MAX_NPY_HEADER:
        raise bad(f"{length:,} bytes long; numpy reads at most {_MAX_NPY_HEADER:,}")
    raw = f.read(length)
    if len(raw) < length:
        raise bad(f"it ends after {len(raw)} of its {length} bytes")
    try:
        header = ast.literal_eval(raw.decode("utf-8" if major == 3 else "latin1"))
    except Exception:                             # SyntaxError, ValueError, MemoryError, RecursionError, ...
        raise bad("not a Python literal") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise bad("expected a dict with keys 'descr', 'fortran_order' and 'shape'")
    shape, fortran = header["shape"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise bad(f"shape {shape!r} is not a tuple of non-negative integers")
    if not isinstance(fortran, bool):
        raise bad(f"fortran_order {fortran!r} is not true or false")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except Exception:
        raise bad(f"descr {header['descr']!r} is not a dtype") from None
    if dtype.hasobject:
        raise bad(f"dtype {dtype} holds Python objects, which would need pickle; refused")
    return dtype, shape, fortran, 8 + width + length


def _features(x: np.ndarray, name: str, dtype=np.float32) -> np.ndarray:
    """``x`` as ``dtype``, after checking it holds finite numbers shaped ``(N, features...)``."""
    if x.dtype.kind not in "biuf" or x.ndim < 2:
        raise DataError(f"x has dtype {x.dtype} and shape {shape_str(x.shape)}, expected numbers "
                        "shaped (N, features...)", file=name, where="array 'x'")
    x = x.astype(dtype, copy=False)
    i = first_nonfinite(x)
    if i is not None:
        raise DataError("holds a NaN or infinite value", file=name, where=f"x[{i}]")
    return x
