"""Datasets from files: CSV, IDX (the MNIST format, raw or gzip) and NPZ; normalisation; splits.

Every reader returns a :class:`Dataset` with float32 features. Targets depend on the task:

* ``classification``: ``y`` int64 class indices ``(N,)``; ``classes`` names them;
* ``regression``: ``y`` float32 ``(N, k)``, two-dimensional so it matches a ``Linear(..., k)`` output;
* ``binary``: ``y`` float32 ``(N, k)`` of 0/1.

Every problem with a file's contents raises :class:`~backprop_cli.errors.DataError` naming the file,
the line (text files) or the header field / byte offset (binary files), the column, and what was
expected. Programming mistakes (a bad argument) raise ``ValueError``.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

TASKS = ("classification", "regression", "binary")
FORMATS = ("csv", "tsv", "idx", "npz")

#: An IDX header may not promise more bytes than this (checked before anything is allocated); as
#: float32, 1 GiB of uint8 pixels already takes 4 GiB.
MAX_IDX_BYTES = 1024**3

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32",
                   0x0E: "float64"}
_IDX_MAX_DIMS = 8


@dataclass
class Dataset:
    """Features ``x`` (float32, ``(N, ...)``), targets ``y`` (see the module docstring; ``None`` for
    unlabelled samples read for predictions), and where they came from.

    ``classes[i]`` names class index ``i`` (classification, and binary with named labels); ``None``
    for numeric targets. Pass ``classes`` from the training set when loading eval or predict data,
    so the same name gets the same index.
    """

    x: np.ndarray
    y: np.ndarray | None
    classes: list[str] | None
    source: str

    def __post_init__(self) -> None:
        if self.y is not None and len(self.x) != len(self.y):
            raise ValueError(f"Dataset x has {len(self.x)} samples but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> Dataset:
        """The samples at ``index`` (an integer array), in that order."""
        return Dataset(self.x[index], None if self.y is None else self.y[index], self.classes, self.source)


# --------------------------------------------------------------------------- shared helpers
def _shape_str(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def _listing(items: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")


def _existing_file(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError("file not found", file=str(path))
    if p.is_dir():
        raise DataError("is a directory, expected a data file", file=str(path))
    return p


def _is_number(text: str) -> bool:
    """Whether ``np.loadtxt`` reads ``text`` as a number (Python's ``float`` also takes ``1_0``, ``١``)."""
    try:
        float(text)
    except ValueError:
        return False
    return text.isascii() and "_" not in text


def _first_nonfinite(values: np.ndarray) -> int | None:
    """Row index of the first NaN/inf (any column), or ``None`` when all are finite."""
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def _index_labels(values: np.ndarray, classes: Sequence[str] | None,
                  locate: Callable[[int], dict], raw: Callable[[int], str]) -> tuple[np.ndarray, list[str]]:
    """Map label ``values`` to class indices: sorted unique values, or the given ``classes`` order.

    ``locate(i)`` gives the ``DataError`` place of sample ``i``; ``raw(i)`` its label as written.
    """
    uniq, inverse = np.unique(values, return_inverse=True)
    names = [str(u) for u in uniq]
    if classes is None:
        return inverse.astype(np.int64).reshape(-1), names
    lookup = {name: i for i, name in enumerate(classes)}
    for k, name in enumerate(names):
        if name not in lookup:
            i = int(np.argmax(inverse.reshape(-1) == k))
            raise DataError(f"label {raw(i)!r} is not one of the training classes "
                            f"({_listing(list(classes))})", **locate(i))
    table = np.array([lookup[name] for name in names], dtype=np.int64)
    return table[inverse.reshape(-1)], list(classes)


def _targets_from_array(y: np.ndarray, task: str, classes: Sequence[str] | None, *, file: str, array: str,
                        item: Callable[[int], str]) -> tuple[np.ndarray, list[str] | None]:
    """Targets stored as numbers (IDX labels, NPZ ``y``); class indices are taken as they are.

    Errors name ``file`` and ``array`` (the whole array) or ``item(i)`` (the place of sample ``i``).
    """
    def fail(message: str, i: int | None = None) -> DataError:
        return DataError(message, file=file, where=array if i is None else item(i))

    if y.dtype.kind not in "biuf":
        raise fail(f"dtype {y.dtype}, expected numbers")
    if task == "classification":
        if y.ndim != 1:
            raise fail(f"shape {_shape_str(y.shape)}, expected class indices (N,)")
        if y.dtype.kind == "f":
            bad = ~np.isfinite(y) | (y != np.round(y))
            if bad.any():
                i = int(np.argmax(bad))
                raise fail(f"class index {y[i].item()} is not a whole number "
                           "(for a numeric target use task: regression)", i)
        y = y.astype(np.int64)
        if len(y) and y.min() < 0:
            i = int(np.argmax(y < 0))
            raise fail(f"class index {y[i]} is negative, expected 0 or more", i)
        if classes is None:
            classes = [str(c) for c in range(int(y.max()) + 1 if len(y) else 0)]
        elif len(y) and y.max() >= len(classes):
            i = int(np.argmax(y >= len(classes)))
            raise fail(f"class index {y[i]} is out of range for the {len(classes)} training classes "
                       f"(0..{len(classes) - 1})", i)
        return y, list(classes)
    if y.ndim not in (1, 2):
        raise fail(f"shape {_shape_str(y.shape)}, expected (N,) or (N, k)")
    y = y.astype(np.float32).reshape(len(y), -1)
    i = _first_nonfinite(y)
    if i is not None:
        raise fail(f"target {y[i].tolist()} is not a finite number", i)
    if task == "binary" and not np.isin(y, (0.0, 1.0)).all():
        i = int(np.argmax(~np.isin(y, (0.0, 1.0)).all(axis=1)))
        raise fail(f"binary target {y[i].tolist()} must be 0 or 1", i)
    return y, None


# --------------------------------------------------------------------------- CSV
def load_csv(path, *, label_column: int | str | Sequence[int | str] | None = -1, header: bool | None = None,
             task: str = "classification", classes: Sequence[str] | None = None,
             delimiter: str = ",") -> Dataset:
    """Read a delimited text file of numeric features and one label column (or several, for
    multi-output regression or multi-label binary targets). ``label_column=None`` reads samples
    without labels (for predictions): every column is a feature and ``y`` is ``None``.

    ``header=None`` detects a header: the first row has a non-numeric cell in a feature column (a
    label column given by name implies one). Classification labels: names map to indices in sorted
    order; whole numbers starting at 0 are used as indices; other whole numbers map through their
    sorted unique values. Pass the training set's ``classes`` to reuse its mapping. Blank lines are
    skipped; a file starting with the gzip magic bytes is decompressed.
    """
    _check_task(task)
    name = str(path)
    rows, line_no = _text_rows(path, name, delimiter)
    first = _split(rows[0], delimiter)
    ncols = len(first)
    specs = list(label_column) if isinstance(label_column, (list, tuple)) else [label_column]
    if label_column is None:
        specs = []
    elif not specs:
        raise ValueError("label_column must name at least one column")
    if header is None:
        if any(isinstance(s, str) for s in specs):
            header = True
        else:
            labels_at = {_column_index(s, ncols, None, name, line_no[0]) for s in specs}
            header = any(not _is_number(first[j].strip()) for j in range(ncols) if j not in labels_at)
    names = [c.strip() for c in first] if header else None
    label_idx = [_column_index(s, ncols, names, name, line_no[0]) for s in specs]
    if len(set(label_idx)) != len(label_idx):
        raise ValueError(f"label_column lists a column twice: {label_column!r}")
    feature_idx = [j for j in range(ncols) if j not in label_idx]
    if not feature_idx:
        hint = next((f"; is the delimiter {d!r}?" for d in (",", ";", "\t", " ")
                     if d != delimiter and d in rows[0]), "")
        raise DataError(f"found {ncols} column(s) with delimiter {delimiter!r}, and no feature columns "
                        f"besides the label{hint}", file=name, line=line_no[0])
    first_line = line_no[0]
    if header:
        if len(rows) == 1:
            raise DataError("the file has a header but no data rows", file=name, line=line_no[0])
        rows, line_no = rows[1:], line_no[1:]

    def locate(i: int, j: int | None = None) -> dict:
        where = None if j is None else f'column "{names[j]}"' if names else f"column {j + 1}"
        return {"file": name, "line": line_no[i], "where": where}

    quoted = any('"' in r for r in rows)
    cells = list(csv.reader(rows, delimiter=delimiter)) if quoted else None
    counts = np.fromiter((len(c) for c in cells) if quoted else (r.count(delimiter) + 1 for r in rows),
                         dtype=np.int64, count=len(rows))
    if (counts != ncols).any():
        i = int(np.argmax(counts != ncols))
        like = f"the header (line {first_line})" if header else f"line {first_line}"
        raise DataError(f"found {counts[i]} columns, expected {ncols} like {like}", **locate(i))

    x = _parse_features(rows, feature_idx, delimiter, quoted, locate)
    i = _first_nonfinite(x)
    if i is not None:
        j = feature_idx[int(np.argmax(~np.isfinite(x[i])))]
        raise DataError(f"{_split(rows[i], delimiter)[j].strip()!r} is not a finite number", **locate(i, j))
    if not label_idx:
        return Dataset(x, None, list(classes) if classes is not None else None, name)
    labels = [_column_cells(rows, cells, j, ncols, delimiter) for j in label_idx]
    y, classes = _csv_targets(labels, label_idx, task, classes, locate)
    return Dataset(x, y, classes, name)


def _text_rows(path, name: str, delimiter: str) -> tuple[list[str], list[int]]:
    """The file's non-blank lines and their 1-based line numbers."""
    text = _decode(_read_maybe_gzip(_existing_file(path), name), name)
    lines = text.splitlines()
    kept = [i for i, line in enumerate(lines) if line and not line.isspace()]
    if not kept:
        raise DataError(f"the file is empty, expected rows of numbers separated by {delimiter!r}", file=name)
    rows = lines if len(kept) == len(lines) else [lines[i] for i in kept]
    return rows, [i + 1 for i in kept]


def _split(row: str, delimiter: str) -> list[str]:
    """One row's cells; the csv module only where a quote could hide a delimiter."""
    return next(csv.reader([row], delimiter=delimiter)) if '"' in row else row.split(delimiter)


def _column_cells(rows: list[str], cells: list[list[str]] | None, j: int, ncols: int,
                  delimiter: str) -> list[str]:
    """Column ``j`` of every row, stripped: from the parsed ``cells`` when quoted, else by fast splits."""
    if cells is not None:
        return [c[j].strip() for c in cells]
    if j == ncols - 1:
        return [r.rpartition(delimiter)[2].strip() for r in rows]
    return [r.split(delimiter, j + 1)[j].strip() for r in rows]


def _read_maybe_gzip(p: Path, name: str) -> bytes:
    data = p.read_bytes()
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot decompress gzip data: {err}", file=name) from None


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(f"byte {err.start} is not UTF-8 text; is this a binary file?",
                        file=name, line=line) from None


def _column_index(spec, ncols: int, names: list[str] | None, name: str, header_line: int) -> int:
    """Resolve a label column given by (possibly negative) index or by header name."""
    if isinstance(spec, bool) or not isinstance(spec, (int, np.integer, str)):
        raise ValueError(f"label_column must be an int or a column name, got {spec!r}")
    if isinstance(spec, str):
        if names is None:
            raise DataError(f"label column {spec!r} is given by name, but the file has no header row",
                            file=name, line=header_line)
        if spec in names:
            return names.index(spec)
        close = difflib.get_close_matches(spec, names, n=1, cutoff=0.5)
        close = close or [n for n in names if n.lower() == spec.lower()]
        hint = f'; did you mean "{close[0]}"?' if close else ""
        raise DataError(f'no column named "{spec}"; the header has {_listing(names, 20)}{hint}',
                        file=name, line=header_line)
    if not -ncols <= spec < ncols:
        raise DataError(f"label column {spec} is out of range: the file has {ncols} columns "
                        f"(0..{ncols - 1}, or -1 for the last)", file=name, line=header_line)
    return int(spec) % ncols


def _parse_features(rows: list[str], cols: list[int], delimiter: str, quoted: bool,
                    locate: Callable[..., dict]) -> np.ndarray:
    """The feature columns as float32 ``(N, F)``, in one ``np.loadtxt`` pass (C speed)."""
    def read(chunk):
        return np.loadtxt(chunk, delimiter=delimiter, dtype=np.float32, comments=None, ndmin=2,
                          usecols=cols, quotechar='"' if quoted else None)

    def check(i: int) -> None:
        cells = _split(rows[i], delimiter)
        for j in cols:
            cell = cells[j].strip()
            if not _is_number(cell):
                what = "empty cell, expected a number" if not cell else f"cannot read {cell!r} as a number"
                raise DataError(what, **locate(i, j))

    try:
        return read(rows)
    except ValueError as err:
        reason = err
    # Error path only. numpy's message names the row ("... at row 12, column 3."); trust but verify,
    # else find the first bad chunk with loadtxt and scan it in Python.
    hint = re.search(r"at row (\d+)", str(reason))
    if hint and int(hint.group(1)) < len(rows):
        check(int(hint.group(1)))
    step = 1024
    for start in range(0, len(rows), step):
        try:
            read(rows[start:start + step])
        except ValueError:
            for i in range(start, min(start + step, len(rows))):
                check(i)
    raise DataError(f"cannot read the features: {reason}", **locate(0) | {"line": None})


def _csv_targets(labels: list[list[str]], label_idx: list[int], task: str, classes: Sequence[str] | None,
                 locate: Callable[..., dict]) -> tuple[np.ndarray, list[str] | None]:
    """Turn the label columns' cells into targets for ``task`` (see :func:`load_csv`)."""
    numbers = [_numbers_or_none(column) for column in labels]
    if task == "regression" or (task == "binary" and (len(labels) > 1 or numbers[0] is not None)):
        for column, values, j in zip(labels, numbers, label_idx):
            if values is None:
                i = next(i for i, cell in enumerate(column) if not _is_number(cell))
                raise DataError(f"cannot read {column[i]!r} as a number ({task} needs numeric targets)",
                                **locate(i, j))
            i = _first_nonfinite(values)
            if i is not None:
                raise DataError(f"target {column[i]!r} is not a finite number", **locate(i, j))
            if task == "binary" and not np.isin(values, (0.0, 1.0)).all():
                i = int(np.argmax(~np.isin(values, (0.0, 1.0))))
                raise DataError(f"binary label {column[i]!r} must be 0 or 1", **locate(i, j))
        return np.stack(numbers, axis=1).astype(np.float32), None

    if len(labels) > 1:
        raise ValueError(f"{task} takes one label column, got {len(labels)}")
    column, values, j = labels[0], numbers[0], label_idx[0]
    def where(i: int) -> dict:
        return locate(i, j)

    if values is None:  # names
        y, classes = _index_labels(np.asarray(column), classes, where, column.__getitem__)
    else:
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            i = int(np.argmax(~whole))
            raise DataError(f"label {column[i]!r} is not a whole number, expected a class "
                            "(for a numeric target use task: regression)", **where(i))
        ints = values.astype(np.int64)
        if classes is None and ints.min() == 0:
            return ints, [str(c) for c in range(int(ints.max()) + 1)]
        y, classes = _index_labels(ints, classes, where, column.__getitem__)
    if task == "binary":
        if len(classes) != 2:
            raise DataError(f"binary labels need exactly 2 classes, found {len(classes)}: "
                            f"{_listing(classes)}", **where(0) | {"line": None})
        return y.astype(np.float32).reshape(-1, 1), classes
    return y, classes


def _numbers_or_none(cells: list[str]) -> np.ndarray | None:
    """The cells as float64 numbers, or ``None`` when any cell is not a number."""
    if not all(_is_number(c) for c in cells):
        return None
    return np.asarray(cells).astype(np.float64)


# --------------------------------------------------------------------------- IDX
def read_idx(path) -> np.ndarray:
    """Read one IDX file (raw, or gzip: detected from its first bytes) into a native-endian array.

    The header is checked before anything large is allocated: two zero bytes, a type code, the
    number of dimensions, the dimensions, and that the file holds exactly the bytes they promise.
    """
    name = str(path)
    p = _existing_file(path)
    with open(p, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        size = None if compressed else os.fstat(raw.fileno()).st_size
        try:
            return _read_idx_stream(stream, name, size)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"cannot read{' gzip data' if compressed else ''}: {err}", file=name) from None


def _read_idx_stream(f, name: str, size: int | None) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4:
        raise DataError(f"the file has {len(magic)} bytes, too few for the 4-byte IDX magic number",
                        file=name, where="header")
    if magic[:2] != b"\0\0":
        raise DataError(f"magic number starts with bytes {magic[:2].hex(' ')}, expected 00 00: "
                        "not an IDX file", file=name, where="header bytes 0-1")
    code, ndim = magic[2], magic[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X} ({n})" for c, n in _IDX_TYPE_NAMES.items())
        raise DataError(f"type code 0x{code:02X} is not an IDX type; expected one of {known}",
                        file=name, where="header byte 2 (type code)")
    if not 1 <= ndim <= _IDX_MAX_DIMS:
        raise DataError(f"{ndim} dimensions, expected 1 to {_IDX_MAX_DIMS}",
                        file=name, where="header byte 3 (number of dimensions)")
    header_size = 4 + 4 * ndim
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"the header ends after {4 + len(raw_dims)} bytes, expected {header_size} "
                        f"for {ndim} dimensions", file=name, where=f"header bytes 4-{header_size - 1}")
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    dtype = _IDX_TYPES[code]
    payload = int(np.prod(dims, dtype=object)) * dtype.itemsize
    promised = f"{'x'.join(map(str, dims))} {_IDX_TYPE_NAMES[code]}"
    if header_size + payload > MAX_IDX_BYTES:
        raise DataError(f"the header promises {promised} ({header_size + payload:,} bytes), more than the "
                        f"{MAX_IDX_BYTES:,}-byte limit", file=name, where=f"header bytes 4-{header_size - 1}")
    if size is not None and size != header_size + payload:
        raise DataError(f"the file has {size:,} bytes, but its header promises {promised}: "
                        f"{header_size:,} + {payload:,} = {header_size + payload:,} bytes"
                        f"{' (truncated?)' if size < header_size + payload else ''}",
                        file=name, where=f"header bytes 4-{header_size - 1}")
    buf = bytearray(payload)
    view, got = memoryview(buf), 0
    while got < payload:
        n = f.readinto(view[got:])
        if not n:
            raise DataError(f"the data ends after {header_size + got:,} bytes (decompressed), but the "
                            f"header promises {promised}: {header_size + payload:,} bytes (truncated?)",
                            file=name, where=f"byte {header_size + got}")
        got += n
    if f.read(1):
        raise DataError(f"the data goes on past the {header_size + payload:,} bytes the header promises "
                        f"({promised})", file=name, where=f"byte {header_size + payload}")
    array = np.frombuffer(buf, dtype=dtype).reshape(dims)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends with ``.gz``, reproducibly)."""
    array = np.asarray(array)
    codes = {np.dtype(t).newbyteorder("="): c for c, t in _IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"write_idx cannot store dtype {array.dtype}; use one of "
                         f"{', '.join(_IDX_TYPE_NAMES.values())}")
    if not 1 <= array.ndim <= _IDX_MAX_DIMS:
        raise ValueError(f"write_idx takes 1 to {_IDX_MAX_DIMS} dimensions, got {_shape_str(array.shape)}")
    head = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).tobytes()
    with open(path, "wb") as out:
        if str(path).endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
                gz.write(head)
                gz.write(body)
        else:
            out.write(head)
            out.write(body)


def load_idx(images_path, labels_path, *, task: str = "classification",
             classes: Sequence[str] | None = None) -> Dataset:
    """Images ``(N, H, W)`` become ``x`` float32 ``(N, 1, H, W)`` (values kept as stored, e.g.
    0..255); ``(N, F)`` and ``(N, C, H, W)`` are kept as they are. Labels ``(N,)`` are class
    indices (int64) for classification."""
    _check_task(task)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(f"labels have shape {_shape_str(labels.shape)}, expected (N,)",
                        file=str(labels_path), where="header byte 3 (number of dimensions)")
    if len(images) != len(labels):
        raise DataError(f"{len(labels)} labels, but {images_path} has {len(images)} images",
                        file=str(labels_path), where="header bytes 4-7 (number of items)")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim not in (2, 4):
        raise DataError(f"images have shape {_shape_str(images.shape)}, expected (N, H, W), (N, C, H, W) "
                        "or (N, features)", file=str(images_path), where="header byte 3 (number of dimensions)")
    y, classes = _targets_from_array(labels, task, classes, file=str(labels_path), array="labels",
                                     item=lambda i: f"label {i} (byte {8 + i * labels.itemsize})")
    return Dataset(images.astype(np.float32), y, classes, f"{images_path} + {labels_path}")


# --------------------------------------------------------------------------- NPZ
def load_npz(path, *, task: str | None = None, classes: Sequence[str] | None = None) -> Dataset:
    """Read arrays ``x`` (features, ``(N, ...)``) and ``y`` (targets) from an ``.npz`` archive.

    ``task=None`` takes integer ``y`` as class indices and floating ``y`` as a regression target.
    An optional string array ``classes`` in the file names the classes (``classes=`` overrides it).
    """
    name = str(path)
    p = _existing_file(path)
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
                                f"{_listing(archive.files) or 'no arrays'}", file=name)
            x, y = archive["x"], archive["y"]
            stored = archive["classes"] if "classes" in archive.files else None
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"cannot read as .npz: {err}", file=name) from None

    if x.dtype.kind not in "biuf" or x.ndim < 2:
        raise DataError(f"x has dtype {x.dtype} and shape {_shape_str(x.shape)}, expected numbers "
                        "shaped (N, features...)", file=name, where="array 'x'")
    if len(x) != len(y):
        raise DataError(f"x has {len(x)} samples but y has {len(y)}", file=name, where="arrays 'x' and 'y'")
    x = x.astype(np.float32, copy=False)
    i = _first_nonfinite(x)
    if i is not None:
        raise DataError("holds a NaN or infinite value", file=name, where=f"x[{i}]")
    if task is None:
        task = "classification" if y.dtype.kind in "biu" else "regression"
    _check_task(task)
    if classes is None and stored is not None and task != "regression":
        if stored.dtype.kind not in "US" or stored.ndim != 1:
            raise DataError(f"classes has dtype {stored.dtype} and shape {_shape_str(stored.shape)}, "
                            "expected strings (K,)", file=name, where="array 'classes'")
        classes = [str(c) for c in stored]
    y, classes = _targets_from_array(y, task, classes, file=name, array="array 'y'", item=lambda i: f"y[{i}]")
    return Dataset(x, y, classes, name)


# --------------------------------------------------------------------------- dispatch
def infer_format(path, labels=None) -> str:
    """``csv`` (``.csv``, ``.tsv``, ``.txt``) or ``npz`` from the extension, a trailing ``.gz`` ignored;
    ``idx`` when the name contains ``idx`` or ``ubyte``, or a labels file is given."""
    name = Path(path).name.lower()
    base = name[:-3] if name.endswith(".gz") else name
    if base.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if base.endswith(".npz"):
        return "npz"
    if labels is not None or "idx" in name or "ubyte" in name:
        return "idx"
    raise DataError("cannot tell the format from the name; expected .csv, .tsv, .npz, or an IDX file "
                    "(a name containing 'idx', with a labels file)", file=str(path))


def load_dataset(path, *, labels=None, format: str | None = None, task: str = "classification",
                 label_column: int | str | Sequence[int | str] | None = -1, header: bool | None = None,
                 classes: Sequence[str] | None = None, delimiter: str | None = None) -> Dataset:
    """Load ``path`` with the reader its format needs (``format`` overrides the guess from the name).

    CSV ``delimiter=None`` means a tab for ``.tsv`` names (and ``format="tsv"``), else a comma.
    """
    _check_task(task)
    _existing_file(path)
    fmt = format or infer_format(path, labels)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt in ("csv", "tsv"):
        if delimiter is None:
            tsv = fmt == "tsv" or Path(path).name.lower().removesuffix(".gz").endswith(".tsv")
            delimiter = "\t" if tsv else ","
        return load_csv(path, label_column=label_column, header=header, task=task, classes=classes,
                        delimiter=delimiter)
    if fmt == "npz":
        return load_npz(path, task=task, classes=classes)
    if labels is None:
        guess = Path(path).with_name(Path(path).name.replace("images-idx3", "labels-idx1"))
        hint = f" (is it {guess}?)" if guess != Path(path) and guess.exists() else ""
        raise DataError(f"IDX images need a labels file{hint}", file=str(path))
    return load_idx(path, labels, task=task, classes=classes)


# --------------------------------------------------------------------------- normalisation
class Normalizer:
    """``x' = (x - shift) / divisor``, with statistics from the training set only.

    * ``none``: ``x' = x``;
    * ``standardize``: per feature, ``shift = mean``, ``divisor = std`` (population);
    * ``minmax``: per feature, ``shift = min``, ``divisor = max - min`` (into [0, 1]);
    * ``scale``: ``divisor = scale``, one constant (e.g. 255 for 8-bit pixels).

    Per feature means over axis 0, so ``(N, 1, 28, 28)`` images get ``(1, 28, 28)`` statistics.
    A constant feature gets divisor 1 (no division by zero). Example::

        norm = Normalizer("standardize").fit(train.x)
        x = norm.apply(val.x)
    """

    METHODS = ("none", "standardize", "minmax", "scale")

    def __init__(self, method: str = "none", *, scale: float | None = None) -> None:
        if method not in self.METHODS:
            raise ValueError(f"normalisation must be one of {', '.join(self.METHODS)}, got {method!r}")
        if method == "scale":
            if scale is None or not np.isfinite(scale) or scale == 0:
                raise ValueError(f"normalisation 'scale' needs a finite nonzero scale (e.g. 255), got {scale!r}")
        elif scale is not None:
            raise ValueError(f"scale= only applies to normalisation 'scale', not {method!r}")
        self.method = method
        self.shift: np.ndarray | None = None
        self.divisor: np.ndarray | None = None
        if method == "none":
            self.shift, self.divisor = np.float32(0), np.float32(1)
        elif method == "scale":
            self.shift, self.divisor = np.float32(0), np.float32(scale)

    def __repr__(self) -> str:
        if self.method == "scale":
            return f"Normalizer(method='scale', scale={float(self.divisor):g})"
        fitted = "" if self.shift is None or self.method == "none" else f", features={_shape_str(self.shift.shape)}"
        return f"Normalizer(method={self.method!r}{fitted})"

    def fit(self, x: np.ndarray) -> Normalizer:
        """Compute per-feature statistics from ``x`` (the training features); returns ``self``."""
        x = np.asarray(x)
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"Normalizer.fit expected samples (N, features...), got {_shape_str(x.shape)}")
        if self.method == "standardize":
            mean = x.mean(axis=0, dtype=np.float64)
            squares = np.zeros_like(mean)
            for start in range(0, len(x), 4096):  # float64 in chunks: no full-size float64 copy
                d = x[start:start + 4096] - mean
                squares += np.einsum("i...,i...->...", d, d)
            std = np.sqrt(squares / len(x))
            self.shift, self.divisor = mean.astype(np.float32), np.where(std > 0, std, 1).astype(np.float32)
        elif self.method == "minmax":
            low, high = x.min(axis=0), x.max(axis=0)
            span = high.astype(np.float64) - low
            self.shift, self.divisor = low.astype(np.float32), np.where(span > 0, span, 1).astype(np.float32)
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``(x - shift) / divisor`` as float32."""
        x = np.asarray(x, dtype=np.float32)
        if self.shift is None:
            raise ValueError(f"Normalizer({self.method!r}) must be fit on the training set before apply")
        if self.method == "none":
            return x
        if self.shift.ndim and x.shape[1:] != self.shift.shape:
            raise ValueError(f"Normalizer was fit on features {_shape_str(self.shift.shape)}, "
                             f"got input {_shape_str(x.shape)}")
        return (x - self.shift) / self.divisor

    def state_dict(self) -> dict[str, np.ndarray]:
        """``method`` (a string array), ``shift`` and ``divisor``: savable with ``np.savez``, no pickle."""
        if self.shift is None:
            raise ValueError(f"Normalizer({self.method!r}) has no state before fit")
        return {"method": np.array(self.method), "shift": np.asarray(self.shift, dtype=np.float32),
                "divisor": np.asarray(self.divisor, dtype=np.float32)}

    @classmethod
    def from_state(cls, state) -> Normalizer:
        """Rebuild a fitted Normalizer from :meth:`state_dict` output (or the arrays of an ``np.load``)."""
        missing = [k for k in ("method", "shift", "divisor") if k not in state]
        if missing:
            raise ValueError(f"Normalizer state is missing {', '.join(missing)}")
        method = str(np.asarray(state["method"]))
        if method not in cls.METHODS:
            raise ValueError(f"Normalizer state has unknown method {method!r}")
        norm = cls.__new__(cls)
        norm.method = method
        norm.shift = np.asarray(state["shift"], dtype=np.float32)
        norm.divisor = np.asarray(state["divisor"], dtype=np.float32)
        if norm.shift.shape != norm.divisor.shape:
            raise ValueError(f"Normalizer state shift {_shape_str(norm.shift.shape)} and divisor "
                             f"{_shape_str(norm.divisor.shape)} differ in shape")
        return norm


# --------------------------------------------------------------------------- splitting
def train_val_split(dataset: Dataset, fraction: float, rng: np.random.Generator, *,
                    stratify: bool = True) -> tuple[Dataset, Dataset]:
    """Shuffle and hold out ``fraction`` of the samples for validation.

    With ``stratify`` (classification targets only) each class gives ``round(fraction * count)``
    samples, so both parts keep the class proportions. Both parts come back in shuffled order.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be between 0 and 1, got {fraction}")
    n = len(dataset)
    order = rng.permutation(n)
    if stratify and dataset.y is not None and dataset.y.ndim == 1:
        grouped = order[np.argsort(dataset.y[order], kind="stable")]
        _, starts, counts = np.unique(dataset.y[grouped], return_index=True, return_counts=True)
        take = np.floor(counts * fraction + 0.5).astype(np.int64)
        rank = np.arange(n) - np.repeat(starts, counts)
        is_val = rank < np.repeat(take, counts)
        val, train = rng.permutation(grouped[is_val]), rng.permutation(grouped[~is_val])
    else:
        k = int(np.floor(n * fraction + 0.5))
        val, train = order[:k], order[k:]
    if len(val) == 0 or len(train) == 0:
        raise ValueError(f"a validation fraction of {fraction} of {n} samples leaves {len(train)} for "
                         f"training and {len(val)} for validation")
    return dataset.subset(train), dataset.subset(val)
