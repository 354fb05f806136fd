"""Weight initialisation, drawn from a ``numpy.random.Generator`` so the same seed gives the same weights.

===========  =====================================  ==========================================
scheme       weight ~                               bias
===========  =====================================  ==========================================
``default``  U(-1/sqrt(fan_in), +1/sqrt(fan_in))    same as the weight (Torch7 ``reset()``)
``xavier``   U(-a, a), a = sqrt(6 / (fan_in+fan_out))  zeros (Glorot & Bengio, 2010)
``kaiming``  U(-a, a), a = sqrt(6 / fan_in)          zeros (He et al., 2015; ReLU gain sqrt(2))
===========  =====================================  ==========================================

``xavier_normal`` and ``kaiming_normal`` draw N(0, std) with std = sqrt(2/(fan_in+fan_out)) and
sqrt(2/fan_in). For a convolution, fan_in = in_channels * kernel elements and fan_out =
out_channels * kernel elements.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

SCHEMES = ("default", "xavier", "xavier_normal", "kaiming", "kaiming_normal")


def make_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator (used as is), an int seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


class RandomStreams(NamedTuple):
    """Independent generators from one seed, one per use, so that drawing more of one (a larger
    validation set, another layer) changes none of the others."""

    split: np.random.Generator       # the validation split
    init: np.random.Generator        # initial weights, layer by layer
    shuffle: np.random.Generator     # the order of the training samples, epoch by epoch
    noise: np.random.Generator       # layer noise (Dropout masks)


def random_streams(seed: int | None) -> RandomStreams:
    """The streams of ``seed``: ``np.random.SeedSequence(seed).spawn(4)``, in the order of the fields
    (a new stream goes last, so the existing ones keep their numbers)."""
    return RandomStreams(*(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)))


def init_weight(scheme: str, shape: tuple[int, ...], fan_in: int, fan_out: int, rng, dtype) -> np.ndarray:
    """A weight array of ``shape`` drawn by ``scheme`` (see the module docstring)."""
    rng = make_rng(rng)
    if scheme == "default":
        bound = 1.0 / math.sqrt(fan_in)
    elif scheme == "xavier":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
    elif scheme == "kaiming":
        bound = math.sqrt(6.0 / fan_in)
    elif scheme == "xavier_normal":
        return (rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)
    elif scheme == "kaiming_normal":
        return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)
    else:
        raise ValueError(f"init must be one of {', '.join(SCHEMES)}; got {scheme!r}")
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def init_bias(scheme: str, size: int, fan_in: int, rng, dtype) -> np.ndarray:
    """Torch's uniform bias for ``default``; zeros for the Xavier and Kaiming schemes."""
    if scheme == "default":
        bound = 1.0 / math.sqrt(fan_in)
        return make_rng(rng).uniform(-bound, bound, size=size).astype(dtype)
    return np.zeros(size, dtype=dtype)
