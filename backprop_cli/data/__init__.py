"""Datasets from files: CSV, IDX (the MNIST format, raw or gzip), NPZ and NPY pairs; normalisation; splits.

Layer 0, the library (with ``nn`` and ``optim``): imports numpy and ``errors`` only, never a config,
the engine or the CLI.

Every reader returns a :class:`Dataset` with features of its ``dtype`` argument (float32 by default;
a float64 run reads float64, so ``0.1`` stays ``0.1``): an ndarray in memory, or, for raw IDX images
and ``.npy`` features, a :class:`DiskFeatures` that reads each batch from the file (data larger than
memory). Targets depend on the task:

* ``classification``: ``y`` int64 class indices ``(N,)``; ``classes`` names them;
* ``regression``: ``y`` of ``dtype``, ``(N, k)``, two-dimensional so it matches a ``Linear(..., k)`` output;
* ``binary``: ``y`` of ``dtype``, ``(N, k)`` of 0/1.

Every problem with a file's contents raises :class:`~backprop_cli.errors.DataError` naming the file,
the line (text files) or the header field / byte offset (binary files), the column, and what was
expected. Programming mistakes (a bad argument) raise ``ValueError``.

One module a format, each saying what it checks: ``csvfile`` (CSV, TSV), ``idx``, ``npz``, ``npy``;
``columns`` the :class:`Columns` of a table (features by name, categories, missing cells);
``load`` picks the reader from a file's name; ``dataset`` holds :class:`Dataset`, the split and the
checks the readers share; ``ondisk`` the features left on disk; ``normalize`` the :class:`Normalizer`.
"""

from .columns import MAX_CATEGORIES, Columns
from .csvfile import load_csv
from .dataset import TASKS, Dataset, train_val_split
from .idx import MAX_IDX_BYTES, idx_images, load_idx, read_idx, write_idx
from .load import FORMATS, infer_format, load_dataset
from .ondisk import DiskFeatures
from .normalize import Normalizer
from .npy import is_npy_dir, load_npy, npy_features
from .npz import load_npz, npz_features

__all__ = ["Columns", "FORMATS", "MAX_CATEGORIES", "MAX_IDX_BYTES", "TASKS", "Dataset", "DiskFeatures", "Normalizer",
           "idx_images", "infer_format", "is_npy_dir", "load_csv", "load_dataset", "load_idx", "load_npy", "load_npz",
           "npy_features", "npz_features", "read_idx", "train_val_split", "write_idx"]
