"""Gradient clipping, applied in place between ``backward`` and ``optimizer.step()``.

Both functions return the size of the gradients *before* clipping, for logging and for spotting a
non-finite gradient (``math.isfinite(norm)``). ``clip_grad_norm`` leaves non-finite gradients as
they are; ``clip_grad_value`` clamps an inf to the bound (NaN stays), so check what it returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .optimizers import check_range

# A float32 sum of squares below this may have lost terms to underflow (|g| < ~1e-19 squares to 0).
_UNDERFLOW_RISK = 1e-30


def _sum_of_squares(g: np.ndarray) -> float:
    """``sum(g**2)`` as a Python float, without float32 overflow or underflow."""
    flat = g.ravel()
    total = float(np.vdot(flat, flat))
    if g.dtype.itemsize < 8 and not (_UNDERFLOW_RISK < total < math.inf) and flat.size:
        wide = flat.astype(np.float64)  # rare: huge, tiny, all-zero or non-finite gradients
        total = float(np.vdot(wide, wide))
    return total


def clip_grad_norm(grads: Sequence[np.ndarray], max_norm: float) -> float:
    """Rescale all gradients together so that their global L2 norm is at most ``max_norm``.

    ``norm = sqrt(sum over every array of sum(g**2))``; if ``norm > max_norm``, every ``g`` is
    multiplied in place by ``max_norm / (norm + 1e-6)``. Returns the pre-clip ``norm``; when it is
    not finite (inf or NaN gradients) nothing is scaled. ``max_norm > 0``.
    """
    max_norm = check_range("clip_grad_norm", "max_norm", max_norm, 0, low_open=True)
    norm = math.sqrt(sum(_sum_of_squares(g) for g in grads))
    if max_norm < norm < math.inf:
        scale = max_norm / (norm + 1e-6)
        for g in grads:
            g *= scale
    return norm


def clip_grad_value(grads: Sequence[np.ndarray], clip_value: float) -> float:
    """Clamp every gradient element in place to ``[-clip_value, clip_value]``.

    Returns the pre-clip ``max |g|`` over all arrays (NaN if any element is NaN; NaNs stay NaN).
    ``clip_value > 0``.
    """
    clip_value = check_range("clip_grad_value", "clip_value", clip_value, 0, low_open=True)
    peaks = []
    for g in grads:
        if g.size:
            peaks += [float(np.max(g)), -float(np.min(g))]  # np.max/np.min propagate NaN
            np.clip(g, -clip_value, clip_value, out=g)
    return float(np.max(peaks)) if peaks else 0.0
