"""Which columns of a table are the model's features and how each becomes numbers: :class:`Columns`.

Chosen on the training file (the label and feature columns, by name or index) and fitted there (the
categories of each categorical column; the training means, for ``missing="mean"``), a Columns is
stored with a checkpoint, so that every later file is read the way the training file was: **by name**
when it has a header (any order, extra columns ignored, a missing one named), **by position** when it
has none (the training file's layout, or the feature columns alone, in order).

* ``missing``: what a missing cell does. ``error`` (the default) names its line and column; ``drop``
  leaves out the rows that have one; ``mean`` fills it with the training-set mean of its feature (of
  each one-hot column, for a categorical feature: the categories' frequencies). A missing cell is an
  empty one; in a numeric column also one of :data:`MISSING_MARKERS`.
* ``categorical``: feature columns of strings, one-hot encoded in sorted order of the categories seen
  in training (at most :data:`MAX_CATEGORIES` each). An unseen category is an error, or an all-zero
  row with ``unknown="ignore"``.

Mistakes in the column choice, and cells that do not fit, raise
:class:`~backprop_cli.errors.DataError` naming the file, the line and the column.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from .dataset import listing

MISSING_POLICIES = ("error", "drop", "mean")
UNKNOWN_POLICIES = ("error", "ignore")
#: The most distinct values a categorical column may have: each becomes one input of the model.
MAX_CATEGORIES = 1000
#: Cells of a numeric column read as missing, besides an empty one (compared in lower case).
MISSING_MARKERS = frozenset({"na", "n/a", "nan", "null", "none", "?"})


def is_number(text: str) -> bool:
    """Whether ``np.loadtxt`` reads ``text`` as a number (Python's ``float`` also takes ``1_0``, ``١``)."""
    try:
        float(text)
    except ValueError:
        return False
    return text.isascii() and "_" not in text


def is_missing_number(text: str) -> bool:
    """An empty cell, or one of :data:`MISSING_MARKERS`: a missing value in a numeric column."""
    return not text or text.lower() in MISSING_MARKERS


def check_policies(missing: str, unknown: str) -> None:
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, got {unknown!r}")


@dataclass
class Columns:
    """A table's layout as the training file had it: its header (None without one), its width, the
    positions of the feature columns in model-input order and of the label columns, the categories of
    each categorical feature (by position), the two policies, and the imputation means once fitted."""

    header: list[str] | None
    width: int
    features: list[int]
    labels: list[int]
    categories: dict[int, list[str]] = field(default_factory=dict)
    missing: str = "error"
    unknown: str = "error"
    means: np.ndarray | None = None

    # ------------------------------------------------------------------ choosing, on the training file
    @classmethod
    def choose(cls, header: list[str] | None, width: int, *, labels: Sequence, features: Sequence | None,
               categorical: Sequence = (), missing: str = "error", unknown: str = "error",
               file: str, line: int) -> Columns:
        """Resolve the label, feature and categorical columns (names, or indices; negative from the
        end) against the training file's ``header`` (its names) or ``width``; ``line`` is the header's."""
        check_policies(missing, unknown)
        where = {"file": file, "line": line}
        find = lambda spec, role: _position(spec, width, header, role, where)
        label_pos = _distinct([find(s, "label column") for s in labels], header, "the label columns", where)
        if features is None:
            feature_pos = [j for j in range(width) if j not in label_pos]
        else:
            feature_pos = _distinct([find(s, "feature") for s in features], header, "features", where)
        cat_pos = _distinct([find(s, "categorical column") for s in categorical], header, "categorical", where)
        name = lambda j: f'"{header[j]}"' if header else str(j)
        for j in feature_pos + cat_pos:
            if j in label_pos:
                raise DataError(f"column {name(j)} is the label column; it cannot also be a feature", **where)
        for j in cat_pos:
            if j not in feature_pos:
                raise DataError(f"categorical column {name(j)} is not one of the features", **where)
        if not feature_pos:
            raise DataError(f"no feature columns besides the label among the {width} column(s)", **where)
        if header is not None:
            _check_unique(header, feature_pos + label_pos, where)
        return cls(header, width, feature_pos, label_pos, {j: [] for j in cat_pos}, missing, unknown)

    def name(self, j: int) -> str:
        """Column ``j`` of the training file as messages name it."""
        return f'"{self.header[j]}"' if self.header is not None else f"column {j + 1}"

    @property
    def feature_names(self) -> list[str]:
        """The model's inputs in order: a column's name (or ``column 3``), ``name=category`` one-hot."""
        names = []
        for j in self.features:
            base = self.header[j] if self.header is not None else f"column {j + 1}"
            names += [f"{base}={c}" for c in self.categories[j]] if j in self.categories else [base]
        return names

    # ------------------------------------------------------------------ finding them in another file
    def find(self, first: list[str], header: bool, *, labels: bool, file: str,
             line: int) -> tuple[list[int], list[int]]:
        """Positions of the features (and of the labels, if ``labels``) in a file whose first row is
        ``first``: by name when both files have a header, else by position."""
        where = {"file": file, "line": line}
        if header and self.header is not None:
            names = [c.strip() for c in first]
            wanted = self.features + (self.labels if labels else [])
            gone = [self.header[j] for j in wanted if self.header[j] not in names]
            if len(gone) > 1:
                raise DataError(f"no columns named {listing([f'{g!r}' for g in gone])} (the model needs them); "
                                f"the header has {listing(names, 20)}", **where)
            if gone:
                role = "a feature of the model" if gone[0] in [self.header[j] for j in self.features] else "the label"
                raise DataError(f'no column named "{gone[0]}" ({role}); the header has {listing(names, 20)}'
                                + _close(gone[0], names), **where)
            _check_unique(names, [names.index(self.header[j]) for j in wanted], where)
            position = lambda j: names.index(self.header[j])
            return [position(j) for j in self.features], [position(j) for j in self.labels] if labels else []
        width = len(first)
        if width == self.width:
            return list(self.features), list(self.labels) if labels else []
        if width == len(self.features) and not labels:
            return list(range(width)), []
        alone = "" if labels else f", or its {len(self.features)} feature columns alone (in order)"
        raise DataError(f"found {width} columns and no header; expected {self.width} like the training data{alone}",
                        **where)

    # ------------------------------------------------------------------ encoding
    def fit_categories(self, cells: dict[int, list[str]], locate: Callable[[int, int], dict]) -> None:
        """Learn each categorical column's categories (sorted) from its training cells (``""``: missing)."""
        for j, column in cells.items():
            found = sorted(set(column) - {""})
            if len(found) > MAX_CATEGORIES:
                raise DataError(f"{len(found):,} distinct values in categorical column {self.name(j)}, more than "
                                f"the {MAX_CATEGORIES:,} allowed (each becomes one input); is it an identifier?",
                                **locate(0, j) | {"line": None})
            self.categories[j] = found

    def encode(self, numeric: np.ndarray, cells: dict[int, list[str]],
               locate: Callable[[int, int], dict]) -> np.ndarray:
        """The model's inputs ``(N, len(feature_names))``: the ``numeric`` feature columns as parsed (in
        feature order, NaN where missing) and each categorical column's ``cells`` one-hot (NaN rows
        where missing; zeros or an error for an unseen category). ``locate(i, j)`` places row ``i``."""
        if not self.categories:
            return numeric
        blocks, k = [], 0
        for j in self.features:
            if j not in self.categories:
                blocks.append(numeric[:, k:k + 1])
                k += 1
                continue
            categories = self.categories[j]
            lookup = {c: i for i, c in enumerate(categories)}
            column = cells[j]
            index = np.fromiter((lookup.get(c, -1) for c in column), dtype=np.int64, count=len(column))
            block = np.zeros((len(column), len(categories)), dtype=numeric.dtype)
            known = index >= 0
            block[np.flatnonzero(known), index[known]] = 1
            missing = np.array([c == "" for c in column], dtype=bool)
            block[missing] = np.nan
            unseen = ~known & ~missing
            if unseen.any() and self.unknown == "error":
                i = int(np.argmax(unseen))
                raise DataError(f"category {column[i]!r} was not in the training data ({listing(categories)}); "
                                "unknown: ignore would encode it as all zeros", **locate(i, j))
            blocks.append(block)
        return np.concatenate(blocks, axis=1)

    def fit_means(self, x: np.ndarray, source: str) -> None:
        """The training means of the inputs, ignoring missing (NaN) values: for ``missing="mean"``."""
        present = ~np.isnan(x)
        counts = present.sum(axis=0)
        if (counts == 0).any():
            k = int(np.argmax(counts == 0))
            raise DataError(f"input {self.feature_names[k]!r} has no values in the training rows; "
                            "its mean cannot fill the missing ones", file=source)
        self.means = (np.where(present, x, 0).sum(axis=0, dtype=np.float64) / counts).astype(x.dtype)

    def impute(self, x: np.ndarray) -> np.ndarray:
        """``x`` with every NaN replaced by its input's training mean (``x`` itself when none is missing)."""
        if self.means is None or not np.isnan(x).any():
            return x
        return np.where(np.isnan(x), self.means.astype(x.dtype, copy=False), x)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON for a checkpoint's meta (feature names included, for people) and the means as arrays."""
        meta = {"header": self.header, "width": self.width, "features": self.features, "labels": self.labels,
                "feature_names": self.feature_names, "categories": [[j, c] for j, c in self.categories.items()],
                "missing": self.missing, "unknown": self.unknown}
        return meta, ({} if self.means is None else {"mean": self.means})

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> Columns:
        """Rebuild from :meth:`state_dict` output; ValueError when it does not hold together."""
        try:
            header = None if meta["header"] is None else [str(h) for h in meta["header"]]
            width = int(meta["width"])
            columns = cls(header, width, [int(j) for j in meta["features"]], [int(j) for j in meta["labels"]],
                          {int(j): [str(c) for c in cats] for j, cats in meta["categories"]},
                          str(meta["missing"]), str(meta["unknown"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"column layout unreadable: {err!r}") from None
        check_policies(columns.missing, columns.unknown)
        used = columns.features + columns.labels
        if any(not 0 <= j < width for j in used) or (header is not None and len(header) != width):
            raise ValueError(f"column layout names columns outside its width {width}")
        if "mean" in arrays:
            columns.means = np.asarray(arrays["mean"], dtype=np.float64 if arrays["mean"].dtype == np.float64
                                       else np.float32)
            if columns.means.shape != (len(columns.feature_names),):
                raise ValueError(f"means of shape {columns.means.shape} for {len(columns.feature_names)} inputs")
        return columns


def _position(spec, width: int, header: list[str] | None, role: str, where: dict) -> int:
    """The column a spec names: a header name, or an index (negative from the end)."""
    if isinstance(spec, bool) or not isinstance(spec, (int, np.integer, str)):
        raise DataError(f"{role} {spec!r}: expected a column index or a column name", **where)
    if isinstance(spec, str):
        if header is None:
            raise DataError(f"{role} {spec!r} is given by name, but the file has no header row", **where)
        if spec in header:
            return header.index(spec)
        of = "" if role == "label column" else f" ({role})"
        raise DataError(f'no column named "{spec}"{of}; the header has {listing(header, 20)}' + _close(spec, header),
                        **where)
    if not -width <= spec < width:
        raise DataError(f"{role} {spec} is out of range: the file has {width} columns "
                        f"(0..{width - 1}, or -1 for the last)", **where)
    return int(spec) % width


def _close(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5) or [n for n in names if n.lower() == name.lower()]
    return f'; did you mean "{close[0]}"?' if close else ""


def _distinct(positions: list[int], header: list[str] | None, what: str, where: dict) -> list[int]:
    twice = next((j for k, j in enumerate(positions) if j in positions[:k]), None)
    if twice is not None:
        shown = f'"{header[twice]}"' if header else str(twice)
        raise DataError(f"{what} lists column {shown} twice", **where)
    return positions


def _check_unique(names: list[str], used: list[int], where: dict) -> None:
    """A column read by name must be the only one with that name."""
    for j in used:
        same = [k for k, n in enumerate(names) if n == names[j]]
        if len(same) > 1:
            raise DataError(f'column name "{names[j]}" appears {len(same)} times in the header (columns '
                            f"{', '.join(str(k + 1) for k in same)}); rename the others", **where)
