"""The :class:`Dataset` every reader returns, the train/validation split, and the checks the readers share.

``TASKS`` names the target forms (listed in :mod:`backprop_cli.data`); :func:`targets_from_array`
validates targets stored as numbers (IDX labels, NPZ ``y``) against them: numeric dtype, shape, whole
non-negative class indices within the training classes, finite values, 0/1 for binary. The CSV
reader, whose labels are text, maps them itself (:mod:`.csvfile`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError, shape_str
from .ondisk import DiskFeatures, row_chunks

if TYPE_CHECKING:
    from .columns import Columns

TASKS = ("classification", "regression", "binary")

#: The first two bytes of a gzip stream; CSV and IDX files that start with them are decompressed.
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Dataset:
    """Features ``x`` (float32 or the dtype asked of the reader, ``(N, ...)``: an ndarray, or
    :class:`DiskFeatures` read from disk batch by batch), targets ``y`` (see :mod:`backprop_cli.data`; ``None`` for
    unlabelled samples read for predictions), and where they came from.

    ``classes[i]`` names class index ``i`` (classification, and binary with named labels); ``None``
    for numeric targets. Pass ``classes`` from the training set when loading eval or predict data,
    so the same name gets the same index.

    A table (CSV) also gives its ``columns`` (:class:`~.columns.Columns`: which columns the features
    are and how they were encoded), and ``rows``, each sample's 0-based data row in the file, when
    rows with missing cells were left out.
    """

    x: np.ndarray | DiskFeatures
    y: np.ndarray | None
    classes: list[str] | None
    source: str
    columns: Columns | None = None
    rows: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.y is not None and len(self.x) != len(self.y):
            raise ValueError(f"Dataset x has {len(self.x)} samples but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> Dataset:
        """The samples at ``index`` (an integer array), in that order."""
        x = self.x.subset(index) if isinstance(self.x, DiskFeatures) else self.x[index]
        return Dataset(x, None if self.y is None else self.y[index], self.classes, self.source,
                       self.columns, None if self.rows is None else self.rows[index])


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


# --------------------------------------------------------------------------- shared by the readers
def check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")


def existing_file(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError("file not found", file=str(path))
    if p.is_dir():
        raise DataError("is a directory, expected a data file", file=str(path))
    return p


def listing(items: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def first_nonfinite(values) -> int | None:
    """Row index of the first NaN/inf (any column), or ``None`` when all are finite; features on
    disk are checked in chunks."""
    start = 0
    for chunk in values.raw_chunks() if isinstance(values, DiskFeatures) else row_chunks(values):
        bad = ~np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1)
        if bad.any():
            return start + int(np.argmax(bad))
        start += len(chunk)
    return None


def targets_from_array(y: np.ndarray, task: str, classes: Sequence[str] | None, *, file: str, array: str,
                        item: Callable[[int], str], dtype=np.float32) -> tuple[np.ndarray, list[str] | None]:
    """Targets stored as numbers (IDX labels, NPZ ``y``); class indices are taken as they are, other
    targets become ``dtype``.

    Errors name ``file`` and ``array`` (the whole array) or ``item(i)`` (the place of sample ``i``).
    """
    def fail(message: str, i: int | None = None) -> DataError:
        return DataError(message, file=file, where=array if i is None else item(i))

    if y.dtype.kind not in "biuf":
        raise fail(f"dtype {y.dtype}, expected numbers")
    if task == "classification":
        if y.ndim != 1:
            raise fail(f"shape {shape_str(y.shape)}, expected class indices (N,)")
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
        raise fail(f"shape {shape_str(y.shape)}, expected (N,) or (N, k)")
    y = y.astype(dtype).reshape(len(y), -1)
    i = first_nonfinite(y)
    if i is not None:
        raise fail(f"target {y[i].tolist()} is not a finite number", i)
    if task == "binary" and not np.isin(y, (0.0, 1.0)).all():
        i = int(np.argmax(~np.isin(y, (0.0, 1.0)).all(axis=1)))
        raise fail(f"binary target {y[i].tolist()} must be 0 or 1", i)
    return y, None
