"""Pooling: the max or the mean of each window, channel by channel. No parameters.

Both are separable, so they are taken one spatial axis at a time, the last axis first::

    max_{i,j} xpad[s_h*r + i, s_w*x + j] = max_i ( max_j xpad[s_h*r + i, s_w*x + j] )

A stage along an axis with kernel ``k`` and stride ``s`` combines ``k`` strided views of its input,
view ``q`` being ``a[..., q : q + s*(out - 1) + 1 : s, ...]``: the value at offset ``q`` of every
window along that axis. A 2-D window is thus read as ``kh + kw`` views instead of ``kh * kw``, and
the Python loops run over kernel offsets only, never over samples or pixels. Backward undoes the
stages in reverse, writing (or, where windows overlap, adding) the gradient into the same views.
Output sizes round down: ``H_out = (H + 2*padding - kh) // s_h + 1``.
"""

from __future__ import annotations

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

    def _views(self, array: np.ndarray, axis: int, out: int) -> list[np.ndarray]:
        """The ``k`` strided views of ``array`` along spatial ``axis``: view ``q`` holds, for each of
        the ``out`` windows along it, the value at the window's offset ``q``."""
        k, s = self.kernel_size[axis], self.stride[axis]
        lead = (slice(None),) * (axis + 2)
        return [array[lead + (slice(q, q + s * (out - 1) + 1, s),)] for q in range(k)]

    def _route(self, grad: np.ndarray, axis: int, size: int, winner: np.ndarray | None = None) -> np.ndarray:
        """Undo one stage: an array ``size`` long along ``axis`` whose view ``q`` receives ``grad``,
        only where offset ``q`` won when ``winner`` is given (max), everywhere when not (mean).
        Overlapping windows add up; positions no window reaches get zero."""
        k, s = self.kernel_size[axis], self.stride[axis]
        out = grad.shape[axis + 2]
        shape = grad.shape[:axis + 2] + (size,) + grad.shape[axis + 3:]
        exact = s == k and size == k * out      # every position in exactly one window: no zero fill
        routed = np.empty(shape, grad.dtype) if exact else np.zeros(shape, grad.dtype)
        for q, view in enumerate(self._views(routed, axis, out)):
            if winner is None:
                mask = None
            elif winner.dtype == np.bool_:      # two offsets: winner says "offset 1 won"
                mask = winner if q else ~winner
            else:
                mask = winner == q
            if s < k:
                view += grad if mask is None else grad * mask
            elif mask is None:
                view[...] = grad
            else:
                np.multiply(grad, mask, out=view)
        return routed

    def _padded_size(self, input: np.ndarray) -> tuple[int, ...]:
        return tuple(n + 2 * p for n, p in zip(input.shape[2:], self.padding))


class _MaxPooling(_Pooling):
    """Max over each window; forward remembers which offset won each stage, backward routes there.

    Each stage keeps the first offset reaching its max, so a window's winner is the first of its
    maxima in row-major order (the first row holding the max, then the first column in that row),
    as in Torch7 and PyTorch.
    """

    def update_output(self, input):
        out_size = self._out_size(input)
        best = self._pad(input, -np.inf)
        self._winners = []
        for axis in reversed(range(self.dims)):
            best, winner = self._stage_max(best, axis, out_size[axis])
            self._winners.insert(0, winner)
        self._input = input
        return best if best.base is None else best.copy()     # never a view of the input

    def update_grad_input(self, input, grad_output):
        """``grad_input[window's argmax] += grad_output`` (one winner per window, ties to the first)."""
        self._check_grad_output(input, grad_output)
        if self._input is not input:
            self.update_output(input)
        grad = grad_output
        for axis, size in enumerate(self._padded_size(input)):
            grad = self._route(grad, axis, size, self._winners[axis])
        return np.ascontiguousarray(grad[self._inner(grad.shape)])

    def _stage_max(self, x: np.ndarray, axis: int, out: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(best, winner)``: the max over the window along ``axis`` and the first offset reaching it
        (a bool "offset 1 won" for two offsets, an offset index for more, None for one)."""
        views = self._views(x, axis, out)
        if len(views) == 1:
            return views[0], None
        winner = np.greater(views[1], views[0])      # strict: on ties the earlier offset keeps it
        best = np.maximum(views[0], views[1])
        if len(views) > 2:
            winner = winner.astype(np.uint8 if len(views) <= 256 else np.int32)
            for q, view in enumerate(views[2:], start=2):
                better = np.greater(view, best)
                np.maximum(best, view, out=best)
                np.maximum(winner, better * winner.dtype.type(q), out=winner)   # q grows: the last better wins
        return best, winner


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
        total = self._pad(input, 0)
        for axis in reversed(range(self.dims)):
            views = self._views(total, axis, out_size[axis])
            total = views[0].copy()
            for view in views[1:]:
                total += view
        total *= total.dtype.type(1 / np.prod(self.kernel_size))
        return total

    def update_grad_input(self, input, grad_output):
        """``grad_input[each window] += grad_output / (kh*kw)``."""
        self._check_grad_output(input, grad_output)
        grad = grad_output * grad_output.dtype.type(1 / np.prod(self.kernel_size))
        for axis, size in enumerate(self._padded_size(input)):
            grad = self._route(grad, axis, size)
        return np.ascontiguousarray(grad[self._inner(grad.shape)])
