"""The numerically stable building blocks several layers, losses and metrics share."""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` from ``exp(-|x|)``, which is in (0, 1] and never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """``exp(x_i - max x) / sum_j exp(x_j - max x)`` along ``axis``."""
    z = x - x.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def log_softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """``x_i - max x - log sum_j exp(x_j - max x)`` along ``axis``: finite for logits of +-1000."""
    z = x - x.max(axis=axis, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return z
