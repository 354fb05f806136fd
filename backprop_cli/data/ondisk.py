"""Features that stay on disk: :class:`DiskFeatures`, samples in a file, read batch by batch.

Raw IDX images and ``.npy`` features are never read whole, so a file larger than memory trains.
``x[rows]`` reads the rows from the file (:meth:`DiskFeatures.gather`, the one place that reads
samples), converts them to the reader's dtype (the training dtype) as a reader would, and normalises
them with the training statistics once a :class:`~backprop_cli.data.normalize.Normalizer` has been
applied. The engine, ``evaluate``, gradcheck and explain see an array: ``len``, ``shape``,
``dtype``, slices and integer-array indexing that return ndarray batches.

Rows are read with positional reads (``preadv``, one system call a row) straight into the batch, not
through a memory map, so resident memory holds the batch and nothing of the file; the kernel's page
cache keeps what it can. A map keeps every page it touched resident until released, and a fault maps
a run of neighbouring pages (Linux's fault-around), so a shuffled epoch over a mapped file grows to
the file's size, or, releasing the pages as it goes (``madvise(MADV_DONTNEED)``), pays a fault and a
share of a release per sample: slower than the read, measured side by side in benchmarks/README.md
("Data larger than memory").
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..errors import DataError, shape_str

#: Bytes of float64 per chunk when statistics or finiteness are computed over all the samples.
CHUNK_BYTES = 8 * 2**20


class FileArray:
    """An array ``(N, ...)`` of ``dtype`` stored in C order in the file ``path`` from byte ``offset``,
    read by rows."""

    def __init__(self, path, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.path, self.offset, self.dtype, self.shape = str(path), int(offset), np.dtype(dtype), tuple(shape)
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        self._file = open(path, "rb", buffering=0)     # noqa: SIM115 - held for the array's lifetime

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()

    def read(self, rows) -> np.ndarray:
        """The rows at ``rows`` (a slice, or an integer array of valid indices) as a new array."""
        if isinstance(rows, slice):
            start, stop, step = rows.indices(len(self))
            if step != 1:
                return self.read(np.arange(start, stop, step))
            out = np.empty((max(stop - start, 0),) + self.shape[1:], self.dtype)
            self._read_into(_bytes(out), self.offset + start * self.row_bytes)
            return out
        out = np.empty((len(rows),) + self.shape[1:], self.dtype)
        buffer, size = _bytes(out), self.row_bytes
        positions = (np.asarray(rows, dtype=np.int64) * size + self.offset).tolist()
        if not _PREADV:
            for i, position in enumerate(positions):
                self._read_into(buffer[i * size:(i + 1) * size], position)
            return out
        fd = self._file.fileno()
        for i, position in enumerate(positions):       # one system call a row: this loop is the cost
            if os.preadv(fd, [buffer[i * size:(i + 1) * size]], position) != size:
                self._read_into(buffer[i * size:(i + 1) * size], position)     # says what went wrong
        return out

    def _read_into(self, view: memoryview, position: int) -> None:
        if _PREADV:
            got = os.preadv(self._file.fileno(), [view], position)
        else:                                          # no positional reads (Windows): seek, then read
            self._file.seek(position)
            got = self._file.readinto(view)
        if got != len(view):
            raise DataError(f"the file ends at byte {position + got:,}, before the {self.shape[0]:,} samples "
                            "its header promises (was it changed while being read?)", file=self.path)


_PREADV = hasattr(os, "preadv")


def _bytes(array: np.ndarray) -> memoryview:
    """A C-contiguous array's memory as a flat byte view (slicing it is cheap)."""
    return memoryview(array.reshape(-1).view(np.uint8))


class DiskFeatures:
    """Samples ``(N, *sample_shape)`` of a :class:`FileArray`, behaving as a read-only float array.

    ``rows`` selects and orders the samples of the file this view shows (a split's part). A batch is
    read as ``read_as`` (the reader's dtype), normalised by ``normalizer`` (anything with
    ``apply(batch)``) once one is applied, and comes out as ``dtype``. Views share the file. Example::

        x = DiskFeatures(FileArray("x.npy", 128, np.dtype("<f4"), (100000, 784)), (784,))
        batch = x[np.array([5, 17, 3])]          # (3, 784) float32 ndarray
    """

    def __init__(self, file: FileArray, sample_shape: tuple[int, ...], *, rows: np.ndarray | None = None,
                 normalizer=None, dtype=np.float32, read_as=None) -> None:
        self.file, self.sample_shape = file, tuple(sample_shape)
        self.rows, self.normalizer, self.dtype = rows, normalizer, np.dtype(dtype)
        self.read_as = self.dtype if read_as is None else np.dtype(read_as)

    def _view(self, **changes) -> DiskFeatures:
        state = dict(rows=self.rows, normalizer=self.normalizer, dtype=self.dtype, read_as=self.read_as) | changes
        return DiskFeatures(self.file, self.sample_shape, **state)

    def __repr__(self) -> str:
        return f"DiskFeatures({self.file.path!r}, shape={shape_str(self.shape)}, dtype={self.dtype})"

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.file)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self),) + self.sample_shape

    @property
    def ndim(self) -> int:
        return 1 + len(self.sample_shape)

    def __getitem__(self, key):
        """``x[i]`` one sample; ``x[a:b]``, ``x[index_array]`` a batch; ``x[rows, ...]`` indexes the batch further."""
        if isinstance(key, tuple):
            head = self[key[0]]
            return head[key[1:]] if isinstance(key[0], (int, np.integer)) else head[(slice(None),) + key[1:]]
        if isinstance(key, slice):
            return self.gather(key)
        index = np.asarray(key)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        if index.ndim > 1 or index.dtype.kind not in "iu":
            raise IndexError(f"expected an integer, a slice or a 1-D integer array of sample indices, got {key!r}")
        n = len(self)
        if index.size and (index.min() < -n or index.max() >= n):
            raise IndexError(f"sample index out of range for {n} samples")
        batch = self.gather(np.where(index < 0, index + n, index).reshape(-1))
        return batch[0] if index.ndim == 0 else batch

    def gather(self, rows) -> np.ndarray:
        """The samples at ``rows`` (a slice, or valid indices of this view) as a batch: read from the
        file, reshaped, read as ``read_as``, normalised, and cast to ``dtype``."""
        if self.rows is not None:
            rows = self.rows[rows]
        raw = self.file.read(rows)
        x = raw.reshape((len(raw),) + self.sample_shape)
        x = x.astype(self.read_as, copy=False)
        if self.normalizer is not None:
            x = self.normalizer.apply(x)
        return x.astype(self.dtype, copy=False)

    def subset(self, index: np.ndarray) -> DiskFeatures:
        """The samples at ``index`` (an integer array), in that order: a view, nothing is read."""
        index = np.asarray(index, dtype=np.int64)
        return self._view(rows=index if self.rows is None else self.rows[index])

    def normalized(self, normalizer) -> DiskFeatures:
        """This view with batches normalised by ``normalizer.apply`` (the samples as read go in; they
        come out in the normalizer's ``dtype``)."""
        return self._view(normalizer=normalizer, dtype=normalizer.dtype)

    def astype(self, dtype, copy: bool = True) -> DiskFeatures:
        """This view with batches cast to ``dtype`` (nothing is read; ``copy`` is accepted for ndarray's sake)."""
        return self._view(dtype=dtype)

    def raw_chunks(self) -> Iterator[np.ndarray]:
        """Every sample in order, as read (before normalisation), in chunks of about ``CHUNK_BYTES``
        (as float64): for statistics and checks over the whole data without holding it."""
        yield from row_chunks(self._view(normalizer=None, dtype=self.read_as))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """Every sample at once (reads the whole file into memory: only for data that fits)."""
        return self[:] if dtype is None else self[:].astype(dtype)


def row_chunks(x) -> Iterator[np.ndarray]:
    """``x`` (an ndarray or :class:`DiskFeatures`) in consecutive chunks of rows, about ``CHUNK_BYTES``
    each as float64: a whole-data pass that never holds more than one chunk."""
    per_row = max(1, int(np.prod(x.shape[1:])) * 8)
    step = max(1, CHUNK_BYTES // per_row)
    for start in range(0, len(x), step):
        yield x[start:start + step]
