"""Layers that behave differently in training and evaluation: Dropout and batch normalisation."""

from __future__ import annotations

import numpy as np

from .init import make_rng
from .module import ANY_RANK, DEFAULT_DTYPE, Module, ShapeError, check_array, shape_str



class Dropout(Module):
    """Inverted dropout: ``y = x * mask / (1 - p)``, ``mask ~ Bernoulli(1 - p)`` per element, in training.

    In evaluation mode (and when ``p == 0``) ``y = x``; the ``1 / (1 - p)`` keeps the expected output
    equal to ``x``, so nothing changes at evaluation. The mask is drawn from ``self.rng`` (a numpy
    Generator; save its ``bit_generator.state`` to resume exactly). With ``hold_mask = True`` the last
    mask is reused while the input shape stays the same, making the layer a fixed function for
    finite-difference checks.
    Shape: any -> the same.
    Example: ``Sequential(Linear(784, 256), ReLU(), Dropout(0.5, rng=0), Linear(256, 10))``.
    """

    def __init__(self, p: float = 0.5, *, rng=None) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = make_rng(rng)
        self.hold_mask = False
        self.mask: np.ndarray | None = None

    def _active(self) -> bool:
        return self.training and self.p > 0

    def _apply(self, x: np.ndarray) -> np.ndarray:
        """``x * mask / (1 - p)`` (zeros when ``p == 1``)."""
        y = x * self.mask
        y *= x.dtype.type(0.0 if self.p == 1 else 1.0 / (1.0 - self.p))
        return y

    def update_output(self, input):
        check_array("Dropout", input, ANY_RANK, "(N, ...)")
        if not self._active():
            return input
        if not (self.hold_mask and self.mask is not None and self.mask.shape == input.shape):
            self.mask = self.rng.random(input.shape, dtype=np.float32) >= self.p
        return self._apply(input)

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * mask / (1 - p)`` in training, ``grad_output`` in evaluation."""
        if not self._active():
            return grad_output
        if self.mask is None or self.mask.shape != grad_output.shape:
            raise ShapeError(f"Dropout expected grad_output shaped like its last mask "
                             f"{shape_str(() if self.mask is None else self.mask.shape)}, "
                             f"got {shape_str(grad_output.shape)}")
        return self._apply(grad_output)

    def extra_repr(self):
        return f"p={self.p}"


class BatchNormalization(Module):
    """``y = gamma * (x - mean) / sqrt(var + eps) + beta``, statistics per feature (axis 1).

    Training mode normalises with the batch's mean and biased variance, and updates
    ``running = (1 - momentum) * running + momentum * batch`` (unbiased variance, PyTorch semantics);
    evaluation mode normalises with the running statistics. ``affine=False`` drops gamma and beta.
    Shape: ``(N, C) -> (N, C)`` or ``(N, C, L) -> (N, C, L)`` (BatchNorm1d).
    Example: ``Sequential(Linear(784, 256), BatchNormalization(256), ReLU())``.
    """

    ranks: tuple[int, ...] = (2, 3)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 *, dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        name = type(self).__name__
        if num_features < 1:
            raise ValueError(f"{name} num_features must be positive, got {num_features}")
        if eps <= 0:
            raise ValueError(f"{name} eps must be positive, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"{name} momentum must be in [0, 1], got {momentum}")
        self.num_features, self.affine = int(num_features), bool(affine)
        self.eps, self.momentum = float(eps), float(momentum)
        if affine:
            self.add_parameter("weight", np.ones(num_features, dtype=dtype))
            self.add_parameter("bias", np.zeros(num_features, dtype=dtype))
        self.add_buffer("running_mean", np.zeros(num_features, dtype=dtype))
        self.add_buffer("running_var", np.ones(num_features, dtype=dtype))
        self._xhat: np.ndarray | None = None
        self._invstd: np.ndarray | None = None
        self._batch_stats = False

    def _expected(self, ndim: int) -> str:
        """``(N, C)`` or ``(N, C, L)``, the one matching the input's rank when it has either."""
        c = self.num_features
        return {2: f"(N, {c})", 3: f"(N, {c}, L)"}.get(ndim, f"(N, {c}) or (N, {c}, L)")

    def _check(self, input) -> None:
        name = type(self).__name__
        expected = self._expected(getattr(input, "ndim", 0))
        check_array(name, input, self.ranks, expected)
        if input.shape[1] != self.num_features:
            raise ShapeError(f"{name} expected input {expected}, got {shape_str(input.shape)}")

    @staticmethod
    def _axes(x: np.ndarray) -> tuple[int, ...]:
        """Every axis but the feature axis 1."""
        return (0,) + tuple(range(2, x.ndim))

    @staticmethod
    def _per_feature(v: np.ndarray, ndim: int) -> np.ndarray:
        """A ``(C,)`` vector shaped ``(1, C, 1, ...)`` to broadcast against the input."""
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def update_output(self, input):
        self._check(input)
        axes = self._axes(input)
        if self.training:
            count = input.size // input.shape[1]
            if count < 2:
                raise ValueError(f"{type(self).__name__} needs more than 1 value per feature in training, "
                                 f"got input {shape_str(input.shape)}")
            mean = input.mean(axis=axes)
            centred = input - self._per_feature(mean, input.ndim)
            var = np.mean(centred * centred, axis=axes)
            m = self.momentum
            for name, stat in (("running_mean", mean), ("running_var", var * (count / (count - 1)))):
                buf = self._buffers[name]
                buf *= 1 - m
                buf += m * stat
        else:
            var = self._buffers["running_var"].astype(input.dtype, copy=False)
            centred = input - self._per_feature(self._buffers["running_mean"].astype(input.dtype, copy=False),
                                                input.ndim)
        self._batch_stats = self.training
        self._invstd = 1 / np.sqrt(var + input.dtype.type(self.eps))
        self._xhat = centred
        self._xhat *= self._per_feature(self._invstd, input.ndim)
        if not self.affine:
            return self._xhat.copy()
        return (self._xhat * self._per_feature(self._params["weight"], input.ndim)
                + self._per_feature(self._params["bias"], input.ndim))

    def update_grad_input(self, input, grad_output):
        """``grad_input = gamma / (n sigma) * (n g - sum g - xhat sum(g xhat))``; eval: ``g gamma / sigma``."""
        self._check_grad_output(input, grad_output)
        scale = self._invstd if not self.affine else self._invstd * self._params["weight"]
        scale = self._per_feature(scale, input.ndim)
        if not self._batch_stats:
            return grad_output * scale
        axes, xhat = self._axes(input), self._xhat
        count = input.size // input.shape[1]
        mean_g = self._per_feature(grad_output.sum(axis=axes) / count, input.ndim)
        mean_gx = self._per_feature((grad_output * xhat).sum(axis=axes) / count, input.ndim)
        g = grad_output - mean_g
        g -= xhat * mean_gx
        g *= scale
        return g

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        """``grad_weight += scale * sum(g * xhat)``; ``grad_bias += scale * sum(g)`` (sums over all axes but 1)."""
        if not self.affine:
            return
        self._check_grad_output(input, grad_output)
        axes = self._axes(input)
        self._grads["weight"] += scale * (grad_output * self._xhat).sum(axis=axes)
        self._grads["bias"] += scale * grad_output.sum(axis=axes)

    def _check_grad_output(self, input, grad_output):
        if self._xhat is None or grad_output.shape != input.shape or self._xhat.shape != input.shape:
            raise ShapeError(f"{type(self).__name__} expected grad_output {shape_str(input.shape)} after a "
                             f"forward of that input, got {shape_str(grad_output.shape)}")

    def extra_repr(self):
        args = [str(self.num_features)]
        args += [] if self.eps == 1e-5 else [f"eps={self.eps}"]
        args += [] if self.momentum == 0.1 else [f"momentum={self.momentum}"]
        args += [] if self.affine else ["affine=False"]
        return ", ".join(args)


class SpatialBatchNormalization(BatchNormalization):
    """BatchNormalization per channel of images: statistics over N, H and W (BatchNorm2d).

    Shape: ``(N, C, H, W) -> (N, C, H, W)``.
    Example: ``Sequential(SpatialConvolution(1, 16, 3), SpatialBatchNormalization(16), ReLU())``.
    """

    ranks = (4,)

    def _expected(self, ndim: int) -> str:
        return f"(N, {self.num_features}, H, W)"
