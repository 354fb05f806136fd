"""CSV and TSV: delimited text, one sample a row, numeric feature columns and one or more label columns.

:func:`load_csv` validates, naming the file, line and column of the first problem: the file exists
and is UTF-8 text (gzip data is decompressed), it has rows, every row has as many columns as the
first, the label columns exist (by index, or by name in a header row), every feature cell is a
finite number, and the labels fit the task: numbers for regression, 0/1 or two classes for binary,
names or whole numbers for classification (one of the training classes, when those are given).
"""

from __future__ import annotations

import csv
import difflib
import gzip
import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import GZIP_MAGIC, Dataset, check_task, existing_file, first_nonfinite, listing


def load_csv(path, *, label_column: int | str | Sequence[int | str] | None = -1, header: bool | None = None,
             task: str = "classification", classes: Sequence[str] | None = None,
             delimiter: str = ",", dtype=np.float32) -> Dataset:
    """Read a delimited text file of numeric features and one label column (or several, for
    multi-output regression or multi-label binary targets). ``label_column=None`` reads samples
    without labels (for predictions): every column is a feature and ``y`` is ``None``.

    ``header=None`` detects a header: the first row has a non-numeric cell in a feature column (a
    label column given by name implies one). Classification labels: names map to indices in sorted
    order; whole numbers starting at 0 are used as indices; other whole numbers map through their
    sorted unique values. Pass the training set's ``classes`` to reuse its mapping. Blank lines are
    skipped; a file starting with the gzip magic bytes is decompressed. Numbers are read as ``dtype``
    (features, and the targets of regression and binary tasks).
    """
    check_task(task)
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
    cells = _quoted_cells(rows, delimiter, locate) if quoted else None
    counts = np.fromiter((len(c) for c in cells) if quoted else (r.count(delimiter) + 1 for r in rows),
                         dtype=np.int64, count=len(rows))
    if (counts != ncols).any():
        i = int(np.argmax(counts != ncols))
        like = f"the header (line {first_line})" if header else f"line {first_line}"
        raise DataError(f"found {counts[i]} columns, expected {ncols} like {like}", **locate(i))

    x = _parse_features(rows, feature_idx, delimiter, quoted, locate, dtype)
    i = first_nonfinite(x)
    if i is not None:
        j = feature_idx[int(np.argmax(~np.isfinite(x[i])))]
        raise DataError(f"{_split(rows[i], delimiter)[j].strip()!r} is not a finite number", **locate(i, j))
    if not label_idx:
        return Dataset(x, None, list(classes) if classes is not None else None, name)
    labels = [_column_cells(rows, cells, j, ncols, delimiter) for j in label_idx]
    y, classes = _csv_targets(labels, label_idx, task, classes, locate, dtype)
    return Dataset(x, y, classes, name)


def _text_rows(path, name: str, delimiter: str) -> tuple[list[str], list[int]]:
    """The file's non-blank lines and their 1-based line numbers."""
    text = _decode(_read_maybe_gzip(existing_file(path), name), name)
    lines = text.splitlines()
    kept = [i for i, line in enumerate(lines) if line and not line.isspace()]
    if not kept:
        raise DataError(f"the file is empty, expected rows of numbers separated by {delimiter!r}", file=name)
    rows = lines if len(kept) == len(lines) else [lines[i] for i in kept]
    return rows, [i + 1 for i in kept]


def _read_maybe_gzip(p: Path, name: str) -> bytes:
    data = p.read_bytes()
    if data[:2] != GZIP_MAGIC:
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


def _split(row: str, delimiter: str) -> list[str]:
    """One row's cells; the csv module only where a quote could hide a delimiter."""
    return next(csv.reader([row], delimiter=delimiter)) if '"' in row else row.split(delimiter)


def _quoted_cells(rows: list[str], delimiter: str, locate: Callable[..., dict]) -> list[list[str]]:
    """Every row's cells by the csv module, strictly and one row each: a quote left open on its line (a
    lone ``"``, which would swallow the rows after it) or a misplaced one is an error at that line."""
    reader, cells = csv.reader(rows, delimiter=delimiter, strict=True), []
    try:
        for row in reader:
            cells.append(row)
    except csv.Error as err:
        raise DataError(f'cannot split into cells (a lone " or a misplaced quote?): {err}',
                        **locate(len(cells))) from None
    return cells


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
        raise DataError(f'no column named "{spec}"; the header has {listing(names, 20)}{hint}',
                        file=name, line=header_line)
    if not -ncols <= spec < ncols:
        raise DataError(f"label column {spec} is out of range: the file has {ncols} columns "
                        f"(0..{ncols - 1}, or -1 for the last)", file=name, line=header_line)
    return int(spec) % ncols


def _parse_features(rows: list[str], cols: list[int], delimiter: str, quoted: bool,
                    locate: Callable[..., dict], dtype=np.float32) -> np.ndarray:
    """The feature columns as ``dtype`` ``(N, F)``, in one ``np.loadtxt`` pass (C speed)."""
    def read(chunk):
        return np.loadtxt(chunk, delimiter=delimiter, dtype=dtype, comments=None, ndmin=2,
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


def _is_number(text: str) -> bool:
    """Whether ``np.loadtxt`` reads ``text`` as a number (Python's ``float`` also takes ``1_0``, ``١``)."""
    try:
        float(text)
    except ValueError:
        return False
    return text.isascii() and "_" not in text


def _column_cells(rows: list[str], cells: list[list[str]] | None, j: int, ncols: int,
                  delimiter: str) -> list[str]:
    """Column ``j`` of every row, stripped: from the parsed ``cells`` when quoted, else by fast splits."""
    if cells is not None:
        return [c[j].strip() for c in cells]
    if j == ncols - 1:
        return [r.rpartition(delimiter)[2].strip() for r in rows]
    return [r.split(delimiter, j + 1)[j].strip() for r in rows]


def _csv_targets(labels: list[list[str]], label_idx: list[int], task: str, classes: Sequence[str] | None,
                 locate: Callable[..., dict], dtype=np.float32) -> tuple[np.ndarray, list[str] | None]:
    """Turn the label columns' cells into targets for ``task`` (see :func:`load_csv`)."""
    numbers = [_numbers_or_none(column) for column in labels]
    if task == "regression" or (task == "binary" and (len(labels) > 1 or numbers[0] is not None)):
        for column, values, j in zip(labels, numbers, label_idx):
            if values is None:
                i = next(i for i, cell in enumerate(column) if not _is_number(cell))
                raise DataError(f"cannot read {column[i]!r} as a number ({task} needs numeric targets)",
                                **locate(i, j))
            i = first_nonfinite(values)
            if i is not None:
                raise DataError(f"target {column[i]!r} is not a finite number", **locate(i, j))
            if task == "binary" and not np.isin(values, (0.0, 1.0)).all():
                i = int(np.argmax(~np.isin(values, (0.0, 1.0))))
                raise DataError(f"binary label {column[i]!r} must be 0 or 1", **locate(i, j))
        return np.stack(numbers, axis=1).astype(dtype), None

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
                            f"{listing(classes)}", **where(0) | {"line": None})
        return y.astype(dtype).reshape(-1, 1), classes
    return y, classes


def _numbers_or_none(cells: list[str]) -> np.ndarray | None:
    """The cells as float64 numbers, or ``None`` when any cell is not a number."""
    if not all(_is_number(c) for c in cells):
        return None
    return np.asarray(cells).astype(np.float64)


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
                            f"({listing(list(classes))})", **locate(i))
    table = np.array([lookup[name] for name in names], dtype=np.int64)
    return table[inverse.reshape(-1)], list(classes)
