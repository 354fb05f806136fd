"""Kernel sizes, strides and paddings of convolutions and pooling: read once, shown briefly."""

from __future__ import annotations

import numpy as np


def window_sizes(owner: str, what: str, value, low: int, dims: int) -> tuple[int, ...]:
    """``value`` (an int, or one per spatial axis) as a ``dims``-tuple of ints ``>= low``."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
    if len(values) != dims or any(not isinstance(v, (int, np.integer)) or v < low for v in values):
        bound = "positive" if low else "non-negative"
        pair = " or a pair of them" if dims == 2 else ""
        raise ValueError(f"{owner} {what} must be a {bound} integer{pair}, got {value!r}")
    return tuple(int(v) for v in values)


def show_sizes(sizes: tuple[int, ...]) -> str:
    """``3`` when every axis has the same size (as users write it), else ``(3, 2)``."""
    return str(sizes[0]) if len(set(sizes)) == 1 else "(" + ", ".join(map(str, sizes)) + ")"
