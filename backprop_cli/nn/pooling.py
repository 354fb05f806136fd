"""Pooling: the max or the mean of each window, channel by channel. No parameters.

Windows are read as strided views, one per kernel offset ``(i, j)``::

    xpad[:, :, i : i + s_h*(H_out - 1) + 1 : s_h,  j : j + s_w*(W_out - 1) + 1 : s_w]

is the ``(N, C, H_out, W_out)`` array of the value at offset ``(i, j)`` of every window. Forward
combines the kh*kw views and backward adds into them, so the Python loop runs over kernel offsets
only, never over samples or pixels; overlapping windows (stride < kernel) accumulate correctly.
Output sizes round down: ``H_out = (H + 2*padding - kh) // s_h + 1``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .module import Module, ShapeError, check_array, shape_str
from .window import show_sizes, window_sizes


class _Pooling(Module):
    """What the pooling layers share: argument checks, output sizes and the window views."""

    dims = 2
    spatial = "H, W"

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size = window_sizes(type(self).__name__, "kernel_size", kernel_size, 1, self.dims)
        name = type(self).__name__
        self.stride = self.kernel_size if stride is None else window_sizes(name, "stride", stride, 1, self.dims)
        self.padding = window_sizes(type(self).__name__, "padding", padding, 0, self.dims)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{type(self).__name__} padding must be at most half the kernel size, got "
                             f"padding={show_sizes(self.padding)} for kernel_size={show_sizes(self.kernel_size)}")
        self._input: np.ndarray | None = None

    def extra_repr(self):
        text = f"kernel_size={show_sizes(self.kernel_size)}"
        text += f", stride={show_sizes(self.stride)}" if self.stride != self.kernel_size else ""
        return text + (f", padding={show_sizes(self.padding)}" if any(self.padding) else "")

    # -------------------------------------------------------------- shapes and windows
    def _out_size(self, input: np.ndarray) -> tuple[int, ...]:
        """Check ``input`` and return the output's spatial size."""
        name = type(self).__name__
        check_array(name, input, self.dims + 2, f"(N, C, {self.spatial})")
        size, k, p = input.shape[2:], self.kernel_size, self.padding
        if any(s + 2 * pad < kk for s, kk, pad in zip(size, k, p)):
            least = ", ".join(f"{axis}>={kk - 2 * pad}" for axis, kk, pad in zip(self.spatial.split(", "), k, p))
            raise ShapeError(f"{name} expected input (N, C, {least}) for kernel_size={show_sizes(k)}"
                             f" and padding={show_sizes(p)}, got {shape_str(input.shape)}")
        return tuple((s + 2 * pad - kk) // st + 1 for s, kk, st, pad in zip(size, k, self.stride, p))

    def _check_grad_output(self, input: np.ndarray, grad_output: np.ndarray) -> None:
        expected = input.shape[:2] + self._out_size(input)
        if grad_output.shape != expected:
            raise ShapeError(f"{type(self).__name__} expected grad_output {shape_str(expected)}, "
                             f"got {shape_str(grad_output.shape)}")

    def _pad(self, x: np.ndarray, value: float) -> np.ndarray:
        if not any(self.padding):
            return x
        return np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in self.padding), constant_values=value)

    def _inner(self, padded_shape) -> tuple[slice, ...]:
        return (slice(None), slice(None)) + tuple(slice(p, n - p) for p, n in zip(self.padding, padded_shape[2:]))

    def _windows(self, array: np.ndarray, out_size: tuple[int, ...]) -> Iterator[tuple[int, np.ndarray]]:
        """``(q, view)`` for each kernel offset, ``q`` counting offsets in row-major order."""
        offsets = np.ndindex(*self.kernel_size)
        for q, offset in enumerate(offsets):
            yield q, array[(slice(None), slice(None)) + tuple(
                slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, self.stride, out_size))]

    @property
    def _overlapping(self) -> bool:
        return any(s < k for s, k in zip(self.stride, self.kernel_size))

    def _grad_buffer(self, padded_shape: tuple[int, ...], dtype) -> np.ndarray:
        """Zeros, or uninitialised when the windows tile the padded input exactly (each value is
        then written once by the backward loop)."""
        exact = self.stride == self.kernel_size and all(
            n % k == 0 for n, k in zip(padded_shape[2:], self.kernel_size))
        return np.empty(padded_shape, dtype) if exact else np.zeros(padded_shape, dtype)


class _MaxPooling(_Pooling):
    """Max over each window; forward remembers which offset won, backward sends the gradient there."""

    def update_output(self, input):
        out_size = self._out_size(input)
        padded = self._pad(input, -np.inf)
        count = int(np.prod(self.kernel_size))
        best = index = None
        for q, view in self._windows(padded, out_size):
            if q == 0:
                best = view.copy()
                index = np.zeros(best.shape, dtype=np.uint8 if count <= 256 else np.int32)
                continue
            better = view > best     # strict: on ties the first offset keeps the gradient
            np.maximum(best, view, out=best)
            index += better * (q - index)    # index = q where better; masked writes are ~10x slower
        self._input, self._argmax = input, index
        return best

    def update_grad_input(self, input, grad_output):
        """``grad_input[window's argmax] += grad_output`` (one winner per window, ties to the first)."""
        self._check_grad_output(input, grad_output)
        if self._input is not input:
            self.update_output(input)
        out_size = grad_output.shape[2:]
        padded_shape = input.shape[:2] + tuple(s + 2 * p for s, p in zip(input.shape[2:], self.padding))
        grad = self._grad_buffer(padded_shape, grad_output.dtype)
        for q, view in self._windows(grad, out_size):
            routed = grad_output * (self._argmax == q)
            if self._overlapping:
                view += routed
            else:
                view[...] = routed
        return np.ascontiguousarray(grad[self._inner(padded_shape)])


class TemporalMaxPooling(_MaxPooling):
    """``y[n, c, x] = max_{0 <= j < kernel_size} xpad[n, c, stride*x + j]``.

    ``stride`` defaults to ``kernel_size``; padding is with -inf. Layout ``(N, C, L)`` as in PyTorch's
    ``MaxPool1d`` (Torch7's ``TemporalMaxPooling`` takes frames first, ``(N, L, C)``).
    Shape: ``(N, C, L) -> (N, C, L_out)``, ``L_out = (L + 2*padding - kernel_size) // stride + 1``.
    Example: ``TemporalMaxPooling(2)`` halves the length of ``(N, 25, 10)`` to ``(N, 25, 5)``.
    """

    dims = 1
    spatial = "L"

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0) -> None:
        super().__init__(kernel_size, stride, padding)


class SpatialMaxPooling(_MaxPooling):
    """``y[n, c, r, x] = max_{i, j} xpad[n, c, s_h*r + i, s_w*x + j]`` over each ``kh x kw`` window.

    Arguments take an int or an ``(h, w)`` pair; ``stride`` defaults to ``kernel_size``; padding is
    with -inf and at most half the kernel.
    Shape: ``(N, C, H, W) -> (N, C, H_out, W_out)``, ``H_out = (H + 2*p_h - kh) // s_h + 1``.
    Example: ``SpatialMaxPooling(2)`` maps ``(N, 8, 24, 24)`` to ``(N, 8, 12, 12)``.
    """

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__(kernel_size, stride, padding)


class SpatialAveragePooling(_Pooling):
    """``y[n, c, r, x] = sum_{i, j} xpad[n, c, s_h*r + i, s_w*x + j] / (kh*kw)``, padding with zeros.

    The divisor is always ``kh*kw``, padded zeros included (PyTorch's default
    ``count_include_pad=True``, and Torch7's). Arguments take an int or an ``(h, w)`` pair.
    Shape: ``(N, C, H, W) -> (N, C, H_out, W_out)``, ``H_out = (H + 2*p_h - kh) // s_h + 1``.
    Example: ``SpatialAveragePooling(2)`` maps ``(N, 16, 8, 8)`` to ``(N, 16, 4, 4)``.
    """

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__(kernel_size, stride, padding)

    def update_output(self, input):
        out_size = self._out_size(input)
        padded = self._pad(input, 0)
        total = None
        for q, view in self._windows(padded, out_size):
            if q == 0:
                total = view.copy()
            else:
                total += view
        total *= total.dtype.type(1 / np.prod(self.kernel_size))
        return total

    def update_grad_input(self, input, grad_output):
        """``grad_input[each window] += grad_output / (kh*kw)``."""
        self._check_grad_output(input, grad_output)
        share = grad_output * grad_output.dtype.type(1 / np.prod(self.kernel_size))
        padded_shape = input.shape[:2] + tuple(s + 2 * p for s, p in zip(input.shape[2:], self.padding))
        grad = self._grad_buffer(padded_shape, grad_output.dtype)
        for _, view in self._windows(grad, share.shape[2:]):
            if self._overlapping:
                view += share
            else:
                view[...] = share
        return np.ascontiguousarray(grad[self._inner(padded_shape)])
