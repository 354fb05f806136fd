"""Pick the reader a data file needs: :func:`infer_format` from its name, :func:`load_dataset` to read it.

Checks only the choice: the file exists, the format is one of ``FORMATS`` or can be told from the
name, and IDX images come with a labels file (an NPY pair's features too, unless named by their
directory). The readers check the contents.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from .csvfile import load_csv
from .dataset import Dataset, check_task, existing_file
from .idx import load_idx
from .npy import is_npy_dir, load_npy
from .npz import load_npz

FORMATS = ("csv", "tsv", "idx", "npz", "npy")


def load_dataset(path, *, labels=None, format: str | None = None, task: str = "classification",
                 classes: Sequence[str] | None = None, dtype=np.float32, **csv) -> Dataset:
    """Load ``path`` with the reader its format needs (``format`` overrides the guess from the name);
    features (and numeric targets) are read as ``dtype``.

    ``csv`` holds :func:`~.csvfile.load_csv`'s options for a CSV or TSV file (``label_column``,
    ``header``, ``delimiter``, ``features``, ``categorical``, ``missing``, ``unknown``, ``columns``);
    other formats ignore them. ``delimiter=None`` means a tab for ``.tsv`` names (and
    ``format="tsv"``), else the delimiter the file's first lines show.
    """
    check_task(task)
    if not is_npy_dir(path):
        existing_file(path)                        # a directory only as an NPY pair
    fmt = format or infer_format(path, labels)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "npy":
        return load_npy(path, labels, task=task, classes=classes, dtype=dtype)
    if fmt in ("csv", "tsv"):
        if csv.get("delimiter") is None and (fmt == "tsv" or is_tsv(path)):
            csv["delimiter"] = "\t"
        return load_csv(path, task=task, classes=classes, dtype=dtype, **csv)
    if fmt == "npz":
        return load_npz(path, task=task, classes=classes, dtype=dtype)
    if labels is None:
        guess = Path(path).with_name(Path(path).name.replace("images-idx3", "labels-idx1"))
        hint = f" (is it {guess}?)" if guess != Path(path) and guess.exists() else ""
        raise DataError(f"IDX images need a labels file{hint}", file=str(path))
    return load_idx(path, labels, task=task, classes=classes, dtype=dtype)


def is_tsv(path) -> bool:
    """Whether the name says tab-separated: ``.tsv``, a trailing ``.gz`` ignored."""
    return Path(path).name.lower().removesuffix(".gz").endswith(".tsv")


def infer_format(path, labels=None) -> str:
    """``csv`` (``.csv``, ``.tsv``, ``.txt``), ``npz`` or ``npy`` from the extension, a trailing ``.gz``
    ignored; ``npy`` for a directory holding ``x.npy``; ``idx`` when the name contains ``idx`` or
    ``ubyte``, or a labels file is given."""
    if is_npy_dir(path):
        return "npy"
    name = Path(path).name.lower()
    base = name[:-3] if name.endswith(".gz") else name
    if base.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if base.endswith(".npz"):
        return "npz"
    if name.endswith(".npy"):
        return "npy"
    if labels is not None or "idx" in name or "ubyte" in name:
        return "idx"
    raise DataError("cannot tell the format from the name; expected .csv, .tsv, .npz, .npy (or a directory "
                    "holding x.npy and y.npy), or an IDX file (a name containing 'idx', with a labels file)",
                    file=str(path))
