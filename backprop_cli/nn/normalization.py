"""Normalisation and Dropout: batch normalisation (which behaves differently in training and
evaluation), layer normalisation, and Dropout."""

from __future__ import annotations

import numpy as np

from .init import make_rng
from .module import ANY_RANK, DEFAULT_DTYPE, Module, ShapeError, check_array, shape_str


def _whitened_grad(grad: np.ndarray, xhat: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``g - mean(g) - xhat * mean(g * xhat)``, the means over ``axes``: the gradient through
    ``xhat = (x - mean x) / sqrt(var x + eps)`` times ``sqrt(var x + eps)`` (batch and layer norm)."""
    out = grad - grad.mean(axis=axes, keepdims=True)
    out -= xhat * (grad * xhat).mean(axis=axes, keepdims=True)
    return out


def _check_after_forward(module: Module, input: np.ndarray, grad_output: np.ndarray) -> None:
    """``grad_output`` must be shaped like ``input``, the array the last forward normalised."""
    xhat = module._xhat
    if xhat is None or grad_output.shape != input.shape or xhat.shape != input.shape:
        raise ShapeError(f"{type(module).__name__} expected grad_output {shape_str(input.shape)} after a "
                         f"forward of that input, got {shape_str(grad_output.shape)}")


class Dropout(Module):
    """Inverted dropout: ``y = x * mask / (1 - p)``, ``mask ~ Bernoulli(1 - p)`` per element, in training.

    In evaluation mode (and when ``p == 0``) ``y = x``; the ``1 / (1 - p)`` keeps the expected output
    equal to ``x``, so nothing changes at evaluation. The mask is drawn from ``self.rng`` (a numpy
    Generator; save its ``bit_generator.state`` to resume exactly). With ``hold_mask = True`` the last
    mask is reused while the input shape stays the same, making the layer a fixed function for
    finite-difference checks.
    Shape: any -> the same.
    ``inplace`` (PyTorch's) is accepted and changes nothing: the output is a new array.
    Example: ``Sequential(Linear(784, 256), ReLU(), Dropout(0.5, rng=0), Linear(256, 10))``.
    """

    draws_noise = True

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng=None) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout p must be in [0, 1], got {p}")
        self.p, self.inplace = float(p), bool(inplace)
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

    def _clear(self):
        self.mask = None

    def extra_repr(self):
        return f"p={self.p}"


class BatchNormalization(Module):
    """``y = gamma * (x - mean) / sqrt(var + eps) + beta``, statistics per feature (axis 1).

    Training mode normalises with the batch's mean and biased variance, and updates
    ``running = (1 - momentum) * running + momentum * batch`` (unbiased variance, PyTorch semantics;
    ``momentum=None`` is the cumulative average, ``momentum = 1 / batches seen``); evaluation mode
    normalises with the running statistics. ``affine=False`` drops gamma and beta (``bias=False``
    beta alone); ``track_running_stats=False`` keeps no running statistics and normalises with the
    batch's in evaluation too.
    Shape: ``(N, C) -> (N, C)`` or ``(N, C, L) -> (N, C, L)`` (BatchNorm1d).
    Example: ``Sequential(Linear(784, 256), BatchNormalization(256), ReLU())``.
    """

    ranks: tuple[int, ...] = (2, 3)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True, dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        name = type(self).__name__
        if num_features < 1:
            raise ValueError(f"{name} num_features must be positive, got {num_features}")
        if eps <= 0:
            raise ValueError(f"{name} eps must be positive, got {eps}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"{name} momentum must be in [0, 1] or None (a cumulative average), got {momentum}")
        self.num_features, self.affine = int(num_features), bool(affine)
        self.eps, self.momentum = float(eps), None if momentum is None else float(momentum)
        self.track_running_stats, self.has_bias = bool(track_running_stats), bool(bias)
        if affine:
            self.add_parameter("weight", np.ones(num_features, dtype=dtype))
            if bias:
                self.add_parameter("bias", np.zeros(num_features, dtype=dtype))
        if track_running_stats:
            self.add_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.add_buffer("running_var", np.ones(num_features, dtype=dtype))
            if momentum is None:
                self.add_buffer("num_batches_tracked", np.zeros((), dtype=dtype))
        self._xhat: np.ndarray | None = None
        self._invstd: np.ndarray | None = None
        self._batch_stats = False

    def _clear(self):
        self._xhat = self._invstd = None

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
        self._batch_stats = self.training or not self.track_running_stats
        if self._batch_stats:
            count = input.size // input.shape[1]
            if count < 2 and self.training:
                raise ShapeError(f"{type(self).__name__} needs more than 1 value per feature in training, "
                                 f"got input {shape_str(input.shape)}")
            mean = input.mean(axis=axes)
            centred = input - self._per_feature(mean, input.ndim)
            var = np.mean(centred * centred, axis=axes)
            if self.training and self.track_running_stats:
                self._track(mean, var * (count / max(count - 1, 1)))
        else:
            var = self._buffers["running_var"].astype(input.dtype, copy=False)
            centred = input - self._per_feature(self._buffers["running_mean"].astype(input.dtype, copy=False),
                                                input.ndim)
        self._invstd = 1 / np.sqrt(var + input.dtype.type(self.eps))
        self._xhat = centred
        self._xhat *= self._per_feature(self._invstd, input.ndim)
        if not self.affine:
            return self._xhat.copy()
        out = self._xhat * self._per_feature(self._params["weight"], input.ndim)
        if self.has_bias:
            out += self._per_feature(self._params["bias"], input.ndim)
        return out

    def _track(self, mean: np.ndarray, var: np.ndarray) -> None:
        """``running = (1 - m) running + m batch``; ``m = momentum``, or ``1 / batches`` when it is None."""
        if self.momentum is None:
            seen = self._buffers["num_batches_tracked"]
            seen += 1
            m = 1.0 / float(seen)
        else:
            m = self.momentum
        for name, stat in (("running_mean", mean), ("running_var", var)):
            buf = self._buffers[name]
            buf *= 1 - m
            buf += m * stat

    def update_grad_input(self, input, grad_output):
        """``grad_input = gamma / (n sigma) * (n g - sum g - xhat sum(g xhat))``; eval: ``g gamma / sigma``."""
        _check_after_forward(self, input, grad_output)
        scale = self._invstd if not self.affine else self._invstd * self._params["weight"]
        scale = self._per_feature(scale, input.ndim)
        if not self._batch_stats:
            return grad_output * scale
        g = _whitened_grad(grad_output, self._xhat, self._axes(input))
        g *= scale
        return g

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        """``grad_weight += scale * sum(g * xhat)``; ``grad_bias += scale * sum(g)`` (sums over all axes but 1)."""
        if not self.affine:
            return
        _check_after_forward(self, input, grad_output)
        axes = self._axes(input)
        self._grads["weight"] += scale * (grad_output * self._xhat).sum(axis=axes)
        if self.has_bias:
            self._grads["bias"] += scale * grad_output.sum(axis=axes)


    def extra_repr(self):
        args = [str(self.num_features)]
        args += [] if self.eps == 1e-5 else [f"eps={self.eps}"]
        args += [] if self.momentum == 0.1 else [f"momentum={self.momentum}"]
        args += [] if self.affine else ["affine=False"]
        args += [] if self.track_running_stats else ["track_running_stats=False"]
        args += [] if self.has_bias or not self.affine else ["bias=False"]
        return ", ".join(args)


class SpatialBatchNormalization(BatchNormalization):
    """BatchNormalization per channel of images: statistics over N, H and W (BatchNorm2d).

    Shape: ``(N, C, H, W) -> (N, C, H, W)``.
    Example: ``Sequential(SpatialConvolution(1, 16, 3), SpatialBatchNormalization(16), ReLU())``.
    """

    ranks = (4,)

    def _expected(self, ndim: int) -> str:
        return f"(N, {self.num_features}, H, W)"


class LayerNorm(Module):
    """``y = gamma * (x - mean) / sqrt(var + eps) + beta``, statistics per sample over the last axes.

    The mean and (biased) variance are taken over the trailing ``normalized_shape`` axes of each
    sample, in training and evaluation alike; ``gamma`` and ``beta`` are shaped ``normalized_shape``
    (``elementwise_affine=False`` drops both, ``bias=False`` beta alone).
    Shape: ``(N, *, *normalized_shape) -> the same``.
    Example: ``LayerNorm(64)`` over ``(N, 64)`` features; ``LayerNorm([8, 8])`` over 8x8 maps.
    """

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, *, dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        shape = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
        if not shape or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in shape):
            raise ValueError(f"LayerNorm normalized_shape must be a positive integer or a list of them, "
                             f"got {normalized_shape!r}")
        if eps <= 0:
            raise ValueError(f"LayerNorm eps must be positive, got {eps}")
        self.normalized_shape, self.eps = tuple(int(d) for d in shape), float(eps)
        self.elementwise_affine, self.has_bias = bool(elementwise_affine), bool(bias)
        if elementwise_affine:
            self.add_parameter("weight", np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.add_parameter("bias", np.zeros(self.normalized_shape, dtype=dtype))
        self._xhat: np.ndarray | None = None
        self._invstd: np.ndarray | None = None

    def _clear(self):
        self._xhat = self._invstd = None

    def _axes(self, input) -> tuple[int, ...]:
        check_array("LayerNorm", input, ANY_RANK, f"(N, *, {', '.join(map(str, self.normalized_shape))})")
        k = len(self.normalized_shape)
        if input.ndim < k + 1 or input.shape[-k:] != self.normalized_shape:
            raise ShapeError(f"LayerNorm expected input (N, *, {', '.join(map(str, self.normalized_shape))}), "
                             f"got {shape_str(input.shape)}")
        return tuple(range(input.ndim - k, input.ndim))

    def update_output(self, input):
        axes = self._axes(input)
        centred = input - input.mean(axis=axes, keepdims=True)
        var = np.mean(centred * centred, axis=axes, keepdims=True)
        self._invstd = 1 / np.sqrt(var + input.dtype.type(self.eps))
        self._xhat = centred
        self._xhat *= self._invstd
        if not self.elementwise_affine:
            return self._xhat.copy()
        out = self._xhat * self._params["weight"]
        if self.has_bias:
            out += self._params["bias"]
        return out

    def update_grad_input(self, input, grad_output):
        """``grad_input = (gh - mean(gh) - xhat mean(gh xhat)) / sigma``, ``gh = g * gamma``, means over the normalised axes."""
        _check_after_forward(self, input, grad_output)
        gh = grad_output * self._params["weight"] if self.elementwise_affine else grad_output
        g = _whitened_grad(gh, self._xhat, self._axes(input))
        g *= self._invstd
        return g

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        """``grad_weight += scale * sum(g * xhat)``; ``grad_bias += scale * sum(g)`` (sums over the leading axes)."""
        if not self.elementwise_affine:
            return
        _check_after_forward(self, input, grad_output)
        lead = tuple(range(input.ndim - len(self.normalized_shape)))
        self._grads["weight"] += scale * (grad_output * self._xhat).sum(axis=lead)
        if self.has_bias:
            self._grads["bias"] += scale * grad_output.sum(axis=lead)


    def extra_repr(self):
        shape = self.normalized_shape
        args = [str(shape[0]) if len(shape) == 1 else str(list(shape))]
        args += [] if self.eps == 1e-5 else [f"eps={self.eps}"]
        args += [] if self.elementwise_affine else ["elementwise_affine=False"]
        args += [] if self.has_bias or not self.elementwise_affine else ["bias=False"]
        return ", ".join(args)
