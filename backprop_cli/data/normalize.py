"""Feature normalisation with statistics from the training set only: :class:`Normalizer`.

Reads no file; checks its arguments (a known method, a finite nonzero ``scale``), that it is fit
before it is applied, that the features it is applied to have the shape it was fit on, and that a
saved state (:meth:`Normalizer.from_state`) is complete and consistent. Mistakes raise ``ValueError``.
"""

from __future__ import annotations

import numpy as np

from ..errors import shape_str
from .ondisk import DiskFeatures, row_chunks


class Normalizer:
    """``x' = (x - shift) / divisor``, with statistics from the training set only.

    * ``none``: ``x' = x``;
    * ``standardize``: per feature, ``shift = mean``, ``divisor = std`` (population);
    * ``minmax``: per feature, ``shift = min``, ``divisor = max - min`` (into [0, 1]);
    * ``scale``: ``divisor = scale``, one constant (e.g. 255 for 8-bit pixels).

    Per feature means over axis 0, so ``(N, 1, 28, 28)`` images get ``(1, 28, 28)`` statistics.
    A constant feature gets divisor 1 (no division by zero). Statistics are computed in float64 and
    kept, like the features ``apply`` returns, in ``dtype``. Example::

        norm = Normalizer("standardize").fit(train.x)
        x = norm.apply(val.x)
    """

    METHODS = ("none", "standardize", "minmax", "scale")

    def __init__(self, method: str = "none", *, scale: float | None = None, dtype=np.float32) -> None:
        if method not in self.METHODS:
            raise ValueError(f"normalisation must be one of {', '.join(self.METHODS)}, got {method!r}")
        if method == "scale":
            if scale is None or not np.isfinite(scale) or scale == 0:
                raise ValueError(f"normalisation 'scale' needs a finite nonzero scale (e.g. 255), got {scale!r}")
        elif scale is not None:
            raise ValueError(f"scale= only applies to normalisation 'scale', not {method!r}")
        self.method, self.dtype = method, np.dtype(dtype)
        self.shift: np.ndarray | None = None
        self.divisor: np.ndarray | None = None
        if method == "none":
            self.shift, self.divisor = self.dtype.type(0), self.dtype.type(1)
        elif method == "scale":
            self.shift, self.divisor = self.dtype.type(0), self.dtype.type(scale)

    def __repr__(self) -> str:
        if self.method == "scale":
            return f"Normalizer(method='scale', scale={float(self.divisor):g})"
        fitted = "" if self.shift is None or self.method == "none" else f", features={shape_str(self.shift.shape)}"
        return f"Normalizer(method={self.method!r}{fitted})"

    def fit(self, x) -> Normalizer:
        """Compute per-feature statistics from ``x`` (the training features: an ndarray or
        :class:`~backprop_cli.data.ondisk.DiskFeatures`); returns ``self``.

        Exact and in chunks, so features on disk are never held whole: ``standardize`` makes two
        passes (the mean as a float64 sum, then the squared deviations from it), ``minmax`` one.
        """
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"Normalizer.fit expected samples (N, features...), got {shape_str(x.shape)}")
        chunks = x.raw_chunks if isinstance(x, DiskFeatures) else lambda: row_chunks(np.asarray(x))
        if self.method == "standardize":
            mean = sum(c.sum(axis=0, dtype=np.float64) for c in chunks()) / len(x)
            squares = np.zeros_like(mean)
            for chunk in chunks():
                d = chunk - mean
                squares += np.einsum("i...,i...->...", d, d)
            std = np.sqrt(squares / len(x))
            self.shift, self.divisor = mean.astype(self.dtype), np.where(std > 0, std, 1).astype(self.dtype)
        elif self.method == "minmax":
            low, high = None, None
            for chunk in chunks():
                low = chunk.min(axis=0) if low is None else np.minimum(low, chunk.min(axis=0))
                high = chunk.max(axis=0) if high is None else np.maximum(high, chunk.max(axis=0))
            span = high.astype(np.float64) - low
            self.shift, self.divisor = low.astype(self.dtype), np.where(span > 0, span, 1).astype(self.dtype)
        return self

    def apply(self, x):
        """``(x - shift) / divisor`` as ``dtype``. Features on disk come back as a view that
        normalises each batch as it is read."""
        if self.shift is None:
            raise ValueError(f"Normalizer({self.method!r}) must be fit on the training set before apply")
        if self.method != "none" and self.shift.ndim and tuple(x.shape[1:]) != self.shift.shape:
            raise ValueError(f"Normalizer was fit on features {shape_str(self.shift.shape)}, "
                             f"got input {shape_str(x.shape)}")
        if isinstance(x, DiskFeatures):
            return x.normalized(self)
        x = np.asarray(x, dtype=self.dtype)
        return x if self.method == "none" else (x - self.shift) / self.divisor

    def state_dict(self) -> dict[str, np.ndarray]:
        """``method`` (a string array), ``shift`` and ``divisor``: savable with ``np.savez``, no pickle."""
        if self.shift is None:
            raise ValueError(f"Normalizer({self.method!r}) has no state before fit")
        return {"method": np.array(self.method), "shift": np.asarray(self.shift, dtype=self.dtype),
                "divisor": np.asarray(self.divisor, dtype=self.dtype)}

    @classmethod
    def from_state(cls, state) -> Normalizer:
        """Rebuild a fitted Normalizer from :meth:`state_dict` output (or the arrays of an ``np.load``),
        in the dtype its statistics were stored in (float32 unless they are floating)."""
        missing = [k for k in ("method", "shift", "divisor") if k not in state]
        if missing:
            raise ValueError(f"Normalizer state is missing {', '.join(missing)}")
        method = str(np.asarray(state["method"]))
        if method not in cls.METHODS:
            raise ValueError(f"Normalizer state has unknown method {method!r}")
        norm = cls.__new__(cls)
        shift = np.asarray(state["shift"])
        norm.method, norm.dtype = method, shift.dtype if shift.dtype.kind == "f" else np.dtype(np.float32)
        norm.shift = shift.astype(norm.dtype, copy=False)
        norm.divisor = np.asarray(state["divisor"], dtype=norm.dtype)
        if norm.shift.shape != norm.divisor.shape:
            raise ValueError(f"Normalizer state shift {shape_str(norm.shift.shape)} and divisor "
                             f"{shape_str(norm.divisor.shape)} differ in shape")
        return norm
