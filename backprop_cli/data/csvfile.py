"""CSV and TSV: delimited text, one sample a row, feature columns and one or more label columns.

:func:`load_csv` validates, naming the file, line and column of the first problem: the file exists
and is UTF-8 text (gzip data is decompressed), it has rows, every row has as many columns as the
first, the label and feature columns exist (by index, or by name in a header row; see
:mod:`.columns` for how a later file is matched to the training file), every numeric feature cell is
a finite number or, as ``missing`` allows, a missing one, every categorical cell a known category,
and the labels fit the task: numbers for regression, 0/1 or two classes for binary, names or whole
numbers for classification (one of the training classes, when those are given).
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from .columns import Columns, check_policies, is_missing_number, is_number
from .dataset import GZIP_MAGIC, Dataset, check_task, existing_file, first_nonfinite, listing


def load_csv(path, *, label_column: int | str | Sequence[int | str] | None = -1, header: bool | None = None,
             task: str = "classification", classes: Sequence[str] | None = None, delimiter: str | None = None,
             features: Sequence[int | str] | None = None, categorical: Sequence[int | str] = (),
             missing: str = "error", unknown: str = "error", columns: Columns | None = None,
             dtype=np.float32) -> Dataset:
    """Read a delimited text file of feature columns and one label column (or several, for
    multi-output regression or multi-label binary targets). ``label_column=None`` reads samples
    without labels (for predictions) and ``y`` is ``None``.

    The columns (see :mod:`.columns`): ``features`` names the feature columns in model-input order
    (default: every column but the labels), ``categorical`` those among them to one-hot encode;
    ``missing`` and ``unknown`` say what a missing cell and an unseen category do. The returned
    Dataset's ``columns`` holds that choice, fitted; pass it as ``columns`` to read a later file the
    same way (features by name, or by position without a header; ``label_column=None`` skips the
    labels), and the other column arguments are then ignored.

    ``delimiter=None`` takes the one of ``, ; tab |`` that splits the first lines alike (the header
    above all). ``header=None`` detects a header: the first row has a cell that is neither a number
    nor missing in a numeric column (a column given by name implies one; a later file has one when
    it shares a name with the training file's). Classification labels: names map to indices in
    sorted order; whole numbers starting at 0 are used as indices; other whole numbers map through
    their sorted unique values. Pass the training set's ``classes`` to reuse its mapping. Blank
    lines are skipped; a file starting with the gzip magic bytes is decompressed. Numbers are read as
    ``dtype`` (features, and the targets of regression and binary tasks).
    """
    check_task(task)
    check_policies(missing, unknown)
    name = str(path)
    rows, line_no = _text_rows(path, name)
    delimiter = delimiter or sniff_delimiter(rows)
    first = _split(rows[0], delimiter)
    ncols, first_line = len(first), line_no[0]
    fitting = columns is None
    if fitting:
        columns, header = _choose(first, rows[0], header, label_column, features, categorical, missing, unknown,
                                  delimiter, {"file": name, "line": first_line})
        feature_idx, label_idx = columns.features, columns.labels
    else:
        header = _later_header(first, columns) if header is None else header
        feature_idx, label_idx = columns.find(first, header, labels=label_column is not None, file=name,
                                              line=first_line)
    names = [c.strip() for c in first] if header else None
    if header:
        if len(rows) == 1:
            raise DataError("the file has a header but no data rows", file=name, line=first_line)
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

    in_file = dict(zip(columns.features, feature_idx))          # training position -> this file's column
    numeric_idx = [in_file[j] for j in columns.features if j not in columns.categories]
    numeric = _parse_features(rows, numeric_idx, delimiter, quoted, locate, columns.missing != "error",
                              dtype)
    bad = ~np.isfinite(numeric) if columns.missing == "error" else np.isinf(numeric)   # NaN: a missing cell
    if bad.any():
        i, k = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(f"{_split(rows[i], delimiter)[numeric_idx[k]].strip()!r} is not a finite number",
                        **locate(i, numeric_idx[k]))
    text = {j: _column_cells(rows, cells, in_file[j], ncols, delimiter) for j in columns.categories}
    labels = [_column_cells(rows, cells, j, ncols, delimiter) for j in label_idx]
    keep = _missing_cells(numeric, [(c, in_file[j], "category") for j, c in text.items()]
                          + [(c, j, "label") for c, j in zip(labels, label_idx)], columns.missing, locate)
    if keep is not None:
        numeric, line_no = numeric[keep], [line_no[i] for i in keep]
        text = {j: [column[i] for i in keep] for j, column in text.items()}
        labels = [[column[i] for i in keep] for column in labels]
    place = lambda i, j: locate(i, in_file[j])
    if fitting:
        columns.fit_categories(text, place)
    x = columns.encode(numeric, text, place)
    if not label_idx:
        return Dataset(x, None, list(classes) if classes is not None else None, name, columns, keep)
    y, classes = _csv_targets(labels, label_idx, task, classes, locate, dtype)
    return Dataset(x, y, classes, name, columns, keep)


def _choose(first: list[str], row: str, header: bool | None, label_column, features, categorical, missing: str,
            unknown: str, delimiter: str, where: dict) -> tuple[Columns, bool]:
    """The training file's :class:`Columns` (categories not yet fitted) and whether it has a header."""
    specs = [] if label_column is None else list(label_column) if isinstance(label_column, (list, tuple)) \
        else [label_column]
    if label_column is not None and not specs:
        raise ValueError("label_column must name at least one column")
    if features is None and len(first) <= len(specs):
        hint = next((f"; is the delimiter {d!r}?" for d in DELIMITERS if d != delimiter and d in row), "")
        raise DataError(f"found {len(first)} column(s) with delimiter {delimiter!r}, and no feature columns "
                        f"besides the label{hint}", **where)
    header = _training_header(first, header, specs, features, categorical)
    columns = Columns.choose([c.strip() for c in first] if header else None, len(first), labels=specs,
                             features=features, categorical=categorical, missing=missing, unknown=unknown, **where)
    return columns, header


DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(rows: list[str], lines: int = 20) -> str:
    """The one of :data:`DELIMITERS` that splits the first ``lines`` rows into the same number of cells,
    the most cells winning; when none splits them alike, the one that splits the first row most."""
    sample = rows[:lines]
    splits = lambda d, row: len(_split(row, d)) - 1
    alike = [d for d in DELIMITERS if splits(d, sample[0]) > 0 and len({splits(d, r) for r in sample}) == 1]
    return max(alike or DELIMITERS, key=lambda d: splits(d, sample[0]))


def _training_header(first: list[str], header: bool | None, labels: list, features, categorical) -> bool:
    """``header`` when given; else whether a column is named, or the first row has a cell that is
    neither a number nor missing in a column that should hold numbers."""
    if header is not None:
        return header
    specs = [*labels, *(features or ()), *categorical]
    if any(isinstance(s, str) for s in specs):
        return True
    ncols = len(first)
    text = {s % ncols for s in [*labels, *categorical] if isinstance(s, int) and -ncols <= s < ncols}
    wanted = range(ncols) if features is None else [s % ncols for s in features if -ncols <= s < ncols]
    return any(not is_number(first[j].strip()) and not is_missing_number(first[j].strip())
               for j in wanted if j not in text)


def _later_header(first: list[str], columns: Columns) -> bool:
    """Whether a file read with a training file's ``columns`` starts with a header: it shares a column
    name with the training file, or a cell that should be a number is not one."""
    cells = [c.strip() for c in first]
    if columns.header is not None and set(cells) & set(columns.header):
        return True
    if len(cells) == columns.width:
        numeric = [j for j in columns.features if j not in columns.categories]
    elif len(cells) == len(columns.features):
        numeric = [k for k, j in enumerate(columns.features) if j not in columns.categories]
    else:
        return columns.header is not None and not any(is_number(c) for c in cells)
    return any(not is_number(cells[j]) and not is_missing_number(cells[j]) for j in numeric)


def _missing_cells(numeric: np.ndarray, text: list[tuple[list[str], int, str]], missing: str,
                   locate: Callable[..., dict]) -> np.ndarray | None:
    """Apply the ``missing`` policy to the rows' missing cells: NaN in ``numeric``, empty strings in
    ``text`` (``(cells, column, "category" | "label")``). Raises for the first one (``error``; a label
    unless ``drop``), or gives the indices of the rows to keep (``drop``); None when every row stays."""
    gaps = np.isnan(numeric).any(axis=1)
    for column, j, kind in text:
        empty = np.array([c == "" for c in column], dtype=bool)
        if empty.any() and (missing == "error" or (kind == "label" and missing != "drop")):
            hint = "missing cells need missing: drop or mean" if kind != "label" else \
                "missing: drop leaves out the rows without one"
            raise DataError(f"empty cell, expected a {kind}; {hint}", **locate(int(np.argmax(empty)), j))
        gaps |= empty
    if missing != "drop" or not gaps.any():
        return None
    if gaps.all():
        raise DataError("every row has a missing cell; nothing is left with missing: drop", **locate(0) | {"line": None})
    return np.flatnonzero(~gaps)


def _text_rows(path, name: str) -> tuple[list[str], list[int]]:
    """The file's non-blank lines and their 1-based line numbers."""
    text = _decode(_read_maybe_gzip(existing_file(path), name), name)
    lines = text.splitlines()
    kept = [i for i, line in enumerate(lines) if line and not line.isspace()]
    if not kept:
        raise DataError("the file is empty, expected a header or rows of values separated by commas", file=name)
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


def _parse_features(rows: list[str], cols: list[int], delimiter: str, quoted: bool,
                    locate: Callable[..., dict], allow_missing: bool = False, dtype=np.float32) -> np.ndarray:
    """The numeric feature columns ``cols`` as ``dtype`` ``(N, F)``, in one ``np.loadtxt`` pass (C speed).
    With ``allow_missing`` a missing cell (:func:`~.columns.is_missing_number`) is NaN; the chunks of
    rows that hold one are read in Python."""
    def read(chunk):
        return np.loadtxt(chunk, delimiter=delimiter, dtype=dtype, comments=None, ndmin=2,
                          usecols=cols, quotechar='"' if quoted else None).reshape(len(chunk), len(cols))

    def check(i: int) -> None:
        cells = _split(rows[i], delimiter)
        for j in cols:
            cell = cells[j].strip()
            if not is_number(cell) and not (allow_missing and is_missing_number(cell)):
                what = "empty cell, expected a number; missing cells need missing: drop or mean" if not cell \
                    else f"cannot read {cell!r} as a number" + _number_hint(cell)
                raise DataError(what, **locate(i, j))

    def with_gaps(i: int) -> list[float]:
        check(i)
        cells = _split(rows[i], delimiter)
        return [np.nan if is_missing_number(cells[j].strip()) else float(cells[j]) for j in cols]

    if not cols:
        return np.zeros((len(rows), 0), dtype=dtype)
    try:
        return read(rows)
    except ValueError as err:
        reason = err
    # Error path, or missing cells. numpy's message names the row ("... at row 12, column 3."); trust
    # but verify, else read chunk by chunk with loadtxt and scan the chunks it refuses in Python.
    hint = re.search(r"at row (\d+)", str(reason))
    if hint and int(hint.group(1)) < len(rows) and not allow_missing:
        check(int(hint.group(1)))
    step, parts = 1024, []
    for start in range(0, len(rows), step):
        try:
            parts.append(read(rows[start:start + step]))
        except ValueError:
            rest = range(start, min(start + step, len(rows)))
            parts.append(np.array([with_gaps(i) for i in rest], dtype=dtype).reshape(len(rest), len(cols)))
    if allow_missing:
        return np.concatenate(parts)
    raise DataError(f"cannot read the features: {reason}", **locate(0) | {"line": None})


def _number_hint(cell: str) -> str:
    """`` (write 1.5: a decimal point)`` for a cell written with a decimal comma, else nothing."""
    return f" (write {cell.replace(',', '.')}: a decimal point)" if re.fullmatch(r"[-+]?\d+,\d+", cell) else ""


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
                i = next(i for i, cell in enumerate(column) if not is_number(cell))
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
    if not all(is_number(c) for c in cells):
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
