"""IDX, the MNIST format: a header (two zero bytes, a type code, the number of dimensions, then each
dimension as a big-endian uint32) followed by the values, big-endian; raw or gzip-compressed.

:func:`read_idx` checks the header before anything large is allocated: the two zero bytes, a known
type code, 1 to 8 dimensions, no more than ``MAX_IDX_BYTES`` for data read into memory, and that the
file holds exactly the bytes the header promises. :func:`idx_images` leaves a raw file's images on
disk (:class:`DiskFeatures`, read batch by batch, whatever the size); a gzip file must be decompressed,
so it is read into memory. :func:`load_idx` pairs an images file with a labels file and checks that
there is one label ``(N,)`` per image and that the labels fit the task.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence

import numpy as np

from ..errors import DataError, shape_str
from .dataset import GZIP_MAGIC, Dataset, check_task, existing_file, first_nonfinite, targets_from_array
from .ondisk import DiskFeatures, FileArray

#: An IDX file read into memory (gzip, or labels) may not promise more bytes than this (checked before
#: anything is allocated); as float32, 1 GiB of uint8 pixels already takes 4 GiB. Raw images are read
#: from disk batch by batch, whatever their size.
MAX_IDX_BYTES = 1024**3

_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32",
                   0x0E: "float64"}
_IDX_MAX_DIMS = 8


def load_idx(images_path, labels_path, *, task: str = "classification",
             classes: Sequence[str] | None = None, dtype=np.float32) -> Dataset:
    """Images as :func:`idx_images` reads them; labels ``(N,)`` are class indices (int64) for
    classification, ``dtype`` numbers otherwise."""
    check_task(task)
    images, labels = idx_images(images_path, dtype), read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(f"labels have shape {shape_str(labels.shape)}, expected (N,)",
                        file=str(labels_path), where="header byte 3 (number of dimensions)")
    if len(images) != len(labels):
        raise DataError(f"{len(labels)} labels, but {images_path} has {len(images)} images",
                        file=str(labels_path), where="header bytes 4-7 (number of items)")
    y, classes = targets_from_array(labels, task, classes, file=str(labels_path), array="labels",
                                     item=lambda i: f"label {i} (byte {8 + i * labels.itemsize})", dtype=dtype)
    return Dataset(images, y, classes, f"{images_path} + {labels_path}")


def idx_images(path, dtype=np.float32) -> np.ndarray | DiskFeatures:
    """Samples from an IDX file as ``dtype``: images ``(N, H, W)`` become ``(N, 1, H, W)`` (values kept
    as stored, e.g. 0..255); ``(N, F)`` and ``(N, C, H, W)`` are kept as they are. A file of floats
    must hold no NaN or infinity.

    A raw (uncompressed) file stays on disk: :class:`DiskFeatures`, read batch by batch, whatever its
    size. A gzip file is decompressed into memory (up to ``MAX_IDX_BYTES``)."""
    stored = _read(path, on_disk=True)
    if len(stored.shape) not in (2, 3, 4):
        raise DataError(f"images have shape {shape_str(stored.shape)}, expected (N, H, W), (N, C, H, W) "
                        "or (N, features)", file=str(path), where="header byte 3 (number of dimensions)")
    sample = (1,) + stored.shape[1:] if len(stored.shape) == 3 else stored.shape[1:]
    if isinstance(stored, FileArray):
        images = DiskFeatures(stored, sample, dtype=dtype)
    else:
        images = stored.reshape((len(stored),) + sample).astype(dtype)
    i = first_nonfinite(images) if stored.dtype.kind == "f" else None   # bytes and integers are always finite
    if i is not None:
        raise DataError("holds a NaN or infinite value", file=str(path), where=f"image {i}")
    return images


def read_idx(path) -> np.ndarray:
    """Read one IDX file (raw, or gzip: detected from its first bytes) into a native-endian array.

    The header is checked before anything large is allocated: two zero bytes, a type code, the
    number of dimensions, the dimensions, and that the file holds exactly the bytes they promise.
    """
    return _read(path, on_disk=False)


def _read(path, *, on_disk: bool) -> np.ndarray | FileArray:
    """The values of one IDX file after its header is checked: in memory, or (``on_disk`` and a raw
    file) as a :class:`FileArray` that reads them from the file when asked."""
    name = str(path)
    p = existing_file(path)
    with open(p, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        size = os.fstat(raw.fileno()).st_size
        isize = None
        if compressed and size >= 18:             # gzip's trailer states the uncompressed size (mod 2**32),
            raw.seek(-4, os.SEEK_END)             # but a truncated file ends in whatever bytes were cut:
            isize = int.from_bytes(raw.read(4), "little")              # a hint, not the size
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        size = None if compressed else size
        try:
            dtype, dims, header_size = _read_header(stream, name, size, in_memory=compressed or not on_disk)
            if on_disk and not compressed:
                return FileArray(p, header_size, dtype, dims)
            return _read_values(stream, name, dtype, dims, header_size, size, isize)
        except EOFError:
            raise DataError("the gzip data ends before its end-of-stream marker (truncated?)", file=name) from None
        except (OSError, zlib.error) as err:
            raise DataError(f"cannot read{' gzip data' if compressed else ''}: {err}", file=name) from None


def _read_header(f, name: str, size: int | None, *, in_memory: bool) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, dimensions, header bytes)`` from a stream, checked: ``size`` is the raw file's size
    (None for gzip); values read ``in_memory`` may not exceed ``MAX_IDX_BYTES``."""
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
    promised = _promised(dtype, dims)
    if in_memory and header_size + payload > MAX_IDX_BYTES:
        hint = ("; decompress it (gunzip -k) and use the raw file, which is read from disk batch by batch"
                if size is None else "")
        raise DataError(f"the header promises {promised} ({header_size + payload:,} bytes), more than the "
                        f"{MAX_IDX_BYTES:,}-byte limit for data read into memory{hint}", file=name,
                        where=f"header bytes 4-{header_size - 1}")
    if size is not None and size != header_size + payload:
        raise DataError(f"the file has {size:,} bytes, but its header promises {promised}: "
                        f"{header_size:,} + {payload:,} = {header_size + payload:,} bytes"
                        f"{' (truncated?)' if size < header_size + payload else ''}",
                        file=name, where=f"header bytes 4-{header_size - 1}")
    return dtype, dims, header_size


def _read_values(f, name: str, dtype: np.dtype, dims: tuple[int, ...], header_size: int, size: int | None,
                 isize: int | None) -> np.ndarray:
    """The values after the header, read into memory: ``size`` is the raw file's size (None for gzip),
    ``isize`` the size a gzip trailer states (mod 2**32), trusted only to decide whether to allocate
    up front."""
    payload = int(np.prod(dims, dtype=object)) * dtype.itemsize
    promised = _promised(dtype, dims)
    known = size is not None or isize == (header_size + payload) % 2**32
    buf = _read_payload(f, payload, preallocate=known)
    if len(buf) < payload:
        raise DataError(f"the data ends after {header_size + len(buf):,} bytes (decompressed), but the "
                        f"header promises {promised}: {header_size + payload:,} bytes (truncated?)",
                        file=name, where=f"byte {header_size + len(buf)}")
    if f.read(1):
        raise DataError(f"the data goes on past the {header_size + payload:,} bytes the header promises "
                        f"({promised})", file=name, where=f"byte {header_size + payload}")
    array = np.frombuffer(buf, dtype=dtype).reshape(dims)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def _promised(dtype: np.dtype, dims: tuple[int, ...]) -> str:
    """``10x28x28 uint8``: what a header promises, as the messages say it."""
    names = {t: _IDX_TYPE_NAMES[c] for c, t in _IDX_TYPES.items()}
    return f"{'x'.join(map(str, dims))} {names[dtype]}"


def _read_payload(f, payload: int, *, preallocate: bool) -> bytearray:
    """Up to ``payload`` bytes; allocated at once when the file's size vouches for them, else grown as
    the data really arrives (a gzip file whose trailer disagrees may be truncated or lying)."""
    if not preallocate:
        buf = bytearray()
        while len(buf) < payload:
            chunk = f.read(min(payload - len(buf), 1 << 24))
            if not chunk:
                break
            buf += chunk
        return buf
    buf = bytearray(payload)
    view, got = memoryview(buf), 0
    while got < payload:
        n = f.readinto(view[got:])
        if not n:
            view.release()
            return buf[:got]
        got += n
    return buf


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends with ``.gz``, reproducibly)."""
    array = np.asarray(array)
    codes = {np.dtype(t).newbyteorder("="): c for c, t in _IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"write_idx cannot store dtype {array.dtype}; use one of "
                         f"{', '.join(_IDX_TYPE_NAMES.values())}")
    if not 1 <= array.ndim <= _IDX_MAX_DIMS:
        raise ValueError(f"write_idx takes 1 to {_IDX_MAX_DIMS} dimensions, got {shape_str(array.shape)}")
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
