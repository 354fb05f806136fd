"""Pooling: the max or the mean of each window, channel by channel. No parameters.

Both are separable, so they are taken one spatial axis at a time, the last axis first::

    max_{i,j} xpad[s_h*r + d_h*i, s_w*x + d_w*j] = max_i ( max_j xpad[s_h*r + d_h*i, s_w*x + d_w*j] )

A stage along an axis with kernel ``k``, stride ``s`` and dilation ``d`` combines ``k`` strided views
of its input, view ``q`` being ``a[..., d*q : d*q + s*(out - 1) + 1 : s, ...]``: the value at offset
``q`` of every window along that axis. A 2-D window is thus read as ``kh + kw`` views instead of
``kh * kw``, and the Python loops run over kernel offsets only, never over samples or pixels.
Backward undoes the stages in reverse, writing (or, where windows overlap, adding) the gradient into
the same views. Output sizes are PyTorch's::

    L_out = (L + 2*padding - dilation*(kernel_size - 1) - 1) // stride + 1     (rounded up with ceil_mode,
                                                                               but no window starts past
                                                                               the left padding + L)

The adaptive average pools are linear maps per axis, ``y = A_h x A_w^T``, with ``A[i, start_i:end_i]
= 1 / (end_i - start_i)`` for PyTorch's bins ``start_i = floor(i L / out)``, ``end_i = ceil((i+1) L / out)``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .module import Module, ShapeError, check_array, pytorch_name, shape_str
from .window import show_sizes, window_sizes


def _out_length(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's ``pooling_output_shape`` for one axis (at most 0 when the window does not fit)."""
    span = d * (k - 1) + 1
    out = (size + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


class _Pooling(Module):
    """What the pooling layers share: argument checks, output sizes and the window views."""

    dims = 2
    spatial = "H, W"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = window_sizes(name, "kernel_size", kernel_size, 1, self.dims)
        self.stride = self.kernel_size if stride is None else window_sizes(name, "stride", stride, 1, self.dims)
        self.padding = window_sizes(name, "padding", padding, 0, self.dims)
        self.dilation = window_sizes(name, "dilation", dilation, 1, self.dims)
        self.ceil_mode = bool(ceil_mode)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{name} padding must be at most half the kernel size, got "
                             f"padding={show_sizes(self.padding)} for kernel_size={show_sizes(self.kernel_size)}")
        self._input: np.ndarray | None = None
        self._winners: list | None = None

    def _clear(self):
        self._input, self._winners = None, None

    def extra_repr(self):
        text = f"kernel_size={show_sizes(self.kernel_size)}"
        text += f", stride={show_sizes(self.stride)}" if self.stride != self.kernel_size else ""
        text += f", padding={show_sizes(self.padding)}" if any(self.padding) else ""
        text += f", dilation={show_sizes(self.dilation)}" if any(d != 1 for d in self.dilation) else ""
        return text + (", ceil_mode=True" if self.ceil_mode else "")

    # -------------------------------------------------------------- shapes and windows
    def _out_size(self, input: np.ndarray) -> tuple[int, ...]:
        """Check ``input`` and return the output's spatial size."""
        name = type(self).__name__
        check_array(name, input, self.dims + 2, f"(N, C, {self.spatial})")
        out = tuple(_out_length(n, k, s, p, d, self.ceil_mode) for n, k, s, p, d in
                    zip(input.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation))
        if any(o < 1 for o in out):
            least = ", ".join(f"{axis}>={d * (k - 1) + 1 - 2 * p}" for axis, k, p, d in
                              zip(self.spatial.split(", "), self.kernel_size, self.padding, self.dilation))
            raise ShapeError(f"{name} expected input (N, C, {least}) for kernel_size={show_sizes(self.kernel_size)}"
                             f" and padding={show_sizes(self.padding)}"
                             + (f" and dilation={show_sizes(self.dilation)}" if any(d > 1 for d in self.dilation)
                                else "") + f", got {shape_str(input.shape)}")
        return out

    def _check_grad_output(self, input: np.ndarray, grad_output: np.ndarray) -> None:
        expected = input.shape[:2] + self._out_size(input)
        if grad_output.shape != expected:
            raise ShapeError(f"{type(self).__name__} expected grad_output {shape_str(expected)}, "
                             f"got {shape_str(grad_output.shape)}")

    def _pads(self, input_shape, out_size) -> tuple[tuple[int, int], ...]:
        """``(left, right)`` per spatial axis: the padding, plus on the right what ceil_mode's last
        windows read past it."""
        if not self.ceil_mode:                 # floor: no window reads past the padding
            return tuple((p, p) for p in self.padding)
        pads = []
        for n, o, k, s, p, d in zip(input_shape[2:], out_size, self.kernel_size, self.stride, self.padding,
                                    self.dilation):
            needed = (o - 1) * s + d * (k - 1) + 1
            pads.append((p, max(p, needed - n - p)))
        return tuple(pads)

    def _pad(self, x: np.ndarray, pads, value: float) -> np.ndarray:
        if not any(a or b for a, b in pads):
            return x
        return np.pad(x, ((0, 0), (0, 0)) + pads, constant_values=value)

    @staticmethod
    def _inner(pads, padded_shape) -> tuple[slice, ...]:
        return (slice(None), slice(None)) + tuple(slice(a, n - b) for (a, b), n in zip(pads, padded_shape[2:]))

    def _views(self, array: np.ndarray, axis: int, out: int) -> list[np.ndarray]:
        """The ``k`` strided views of ``array`` along spatial ``axis``: view ``q`` holds, for each of
        the ``out`` windows along it, the value at the window's offset ``q``."""
        k, s, d = self.kernel_size[axis], self.stride[axis], self.dilation[axis]
        lead = (slice(None),) * (axis + 2)
        return [array[lead + (slice(d * q, d * q + s * (out - 1) + 1, s),)] for q in range(k)]

    def _route(self, grad: np.ndarray, axis: int, size: int, winner: np.ndarray | None = None) -> np.ndarray:
        """Undo one stage: an array ``size`` long along ``axis`` whose view ``q`` receives ``grad``,
        only where offset ``q`` won when ``winner`` is given (max), everywhere when not (mean).
        Overlapping windows add up; positions no window reaches get zero."""
        k, s, d = self.kernel_size[axis], self.stride[axis], self.dilation[axis]
        out = grad.shape[axis + 2]
        shape = grad.shape[:axis + 2] + (size,) + grad.shape[axis + 3:]
        disjoint = d == 1 and s >= k           # no position in two windows: views are written, not added to
        exact = disjoint and s == k and size == k * out      # every position in exactly one window: no zero fill
        routed = np.empty(shape, grad.dtype) if exact else np.zeros(shape, grad.dtype)
        for q, view in enumerate(self._views(routed, axis, out)):
            if winner is None:
                mask = None
            elif winner.dtype == np.bool_:      # two offsets: winner says "offset 1 won"
                mask = winner if q else ~winner
            else:
                mask = winner == q
            if not disjoint:
                view += grad if mask is None else grad * mask
            elif mask is None:
                view[...] = grad
            else:
                np.multiply(grad, mask, out=view)
        return routed

    def _unpool(self, input: np.ndarray, grad: np.ndarray, winners=None) -> np.ndarray:
        """Route ``grad`` back through every stage, first axis first; unpadded, contiguous."""
        pads = self._pads(input.shape, grad.shape[2:])
        for axis, (n, (a, b)) in enumerate(zip(input.shape[2:], pads)):
            grad = self._route(grad, axis, n + a + b, None if winners is None else winners[axis])
        return np.ascontiguousarray(grad[self._inner(pads, grad.shape)])


class _MaxPooling(_Pooling):
    """Max over each window; forward remembers which offset won each stage, backward routes there.

    Each stage keeps the first offset reaching its max, so a window's winner is the first of its
    maxima in row-major order (the first row holding the max, then the first column in that row),
    as in Torch7 and PyTorch. Padding (and what ceil_mode reads past it) is -inf.
    """

    def update_output(self, input):
        out_size = self._out_size(input)
        best = self._pad(input, self._pads(input.shape, out_size), -np.inf)
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
        return self._unpool(input, grad_output, self._winners)

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
    """``y[n, c, x] = max_{0 <= j < kernel_size} xpad[n, c, stride*x + dilation*j]``.

    ``stride`` defaults to ``kernel_size``; padding is with -inf. Layout ``(N, C, L)`` as in PyTorch's
    ``MaxPool1d`` (Torch7's ``TemporalMaxPooling`` takes frames first, ``(N, L, C)``).
    Shape: ``(N, C, L) -> (N, C, L_out)``, ``L_out = (L + 2*padding - dilation*(kernel_size-1) - 1) // stride + 1``.
    Example: ``TemporalMaxPooling(2)`` halves the length of ``(N, 25, 10)`` to ``(N, 25, 5)``.
    """

    dims = 1
    spatial = "L"

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, *, dilation: int = 1,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)


class SpatialMaxPooling(_MaxPooling):
    """``y[n, c, r, x] = max_{i, j} xpad[n, c, s_h*r + d_h*i, s_w*x + d_w*j]`` over each ``kh x kw`` window.

    Arguments take an int or an ``(h, w)`` pair; ``stride`` defaults to ``kernel_size``; padding is
    with -inf and at most half the kernel; ``dilation`` spaces the window's taps.
    Shape: ``(N, C, H, W) -> (N, C, H_out, W_out)``, ``H_out = (H + 2*p_h - d_h*(kh-1) - 1) // s_h + 1``.
    Example: ``SpatialMaxPooling(2)`` maps ``(N, 8, 24, 24)`` to ``(N, 8, 12, 12)``.
    """

    def __init__(self, kernel_size, stride=None, padding=0, *, dilation=1, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)


class _AveragePooling(_Pooling):
    """The mean over each window; padding adds zeros. The divisor, per window, is PyTorch's: the
    window's size within the padded input with ``count_include_pad`` (the whole kernel unless
    ceil_mode's last window reaches past the padding), else the number of input values it covers;
    ``divisor_override`` replaces it outright. It is separable: a product of one count per axis."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        if divisor_override is not None and (isinstance(divisor_override, bool)
                                             or not isinstance(divisor_override, (int, np.integer))
                                             or divisor_override < 1):
            raise ValueError(f"{type(self).__name__} divisor_override must be a positive integer or None, "
                             f"got {divisor_override!r}")
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def _inverse_divisor(self, input_shape, out_size, dtype) -> np.ndarray | float:
        """``1 / divisor``: a number when every window has the same divisor, else one per output position."""
        if self.divisor_override is not None:
            return 1.0 / self.divisor_override
        if not self.ceil_mode and (self.count_include_pad or not any(self.padding)):
            return 1.0 / math.prod(self.kernel_size)         # every window whole: the kernel's size
        counts = []
        for n, o, k, s, p in zip(input_shape[2:], out_size, self.kernel_size, self.stride, self.padding):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, n + p)
            counts.append(end - start if self.count_include_pad else np.minimum(end, n) - np.maximum(start, 0))
        if all((c == c[0]).all() for c in counts):
            return 1.0 / math.prod(int(c[0]) for c in counts)
        grid = counts[0] if self.dims == 1 else np.multiply.outer(counts[0], counts[1])
        return (1.0 / grid).astype(dtype)

    def update_output(self, input):
        out_size = self._out_size(input)
        total = self._pad(input, self._pads(input.shape, out_size), 0)
        for axis in reversed(range(self.dims)):
            views = self._views(total, axis, out_size[axis])
            total = views[0].copy()
            for view in views[1:]:
                total += view
        inverse = self._inverse_divisor(input.shape, out_size, total.dtype)
        total *= total.dtype.type(inverse) if isinstance(inverse, float) else inverse
        return total

    def update_grad_input(self, input, grad_output):
        """``grad_input[each window] += grad_output / divisor``."""
        self._check_grad_output(input, grad_output)
        inverse = self._inverse_divisor(input.shape, grad_output.shape[2:], grad_output.dtype)
        grad = grad_output * (grad_output.dtype.type(inverse) if isinstance(inverse, float) else inverse)
        return self._unpool(input, grad)

    def extra_repr(self):
        text = super().extra_repr()
        text += "" if self.count_include_pad else ", count_include_pad=False"
        return text + ("" if self.divisor_override is None else f", divisor_override={self.divisor_override}")


class SpatialAveragePooling(_AveragePooling):
    """``y[n, c, r, x] = sum_{i, j} xpad[n, c, s_h*r + i, s_w*x + j] / divisor``, padding with zeros.

    The divisor is ``kh*kw``, padded zeros included (PyTorch's default ``count_include_pad=True``,
    and Torch7's); ``count_include_pad=False`` counts only the input values a window covers.
    Arguments take an int or an ``(h, w)`` pair.
    Shape: ``(N, C, H, W) -> (N, C, H_out, W_out)``, ``H_out = (H + 2*p_h - kh) // s_h + 1``.
    Example: ``SpatialAveragePooling(2)`` maps ``(N, 16, 8, 8)`` to ``(N, 16, 4, 4)``.
    """

    def __init__(self, kernel_size, stride=None, padding=0, *, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


class AvgPool1d(_AveragePooling):
    """``y[n, c, x] = sum_j xpad[n, c, stride*x + j] / divisor``, padding with zeros (PyTorch's ``AvgPool1d``).

    The divisor is ``kernel_size`` (``count_include_pad=False``: the input values the window covers).
    Shape: ``(N, C, L) -> (N, C, L_out)``, ``L_out = (L + 2*padding - kernel_size) // stride + 1``.
    Example: ``AvgPool1d(3, stride=2)`` maps ``(N, 4, 9)`` to ``(N, 4, 4)``.
    """

    dims = 1
    spatial = "L"

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


# --------------------------------------------------------------------------- adaptive pooling
@lru_cache(maxsize=64)
def _bins(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """``A``, ``(out, size)``: row ``i`` averages PyTorch's bin ``[floor(i size / out), ceil((i+1) size / out))``.
    Read-only: every call with these sizes shares it."""
    a = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        a[i, start:end] = 1.0 / (end - start)
    a.flags.writeable = False
    return a


class _AdaptiveAvgPooling(Module):
    """The mean over ``output_size`` bins per spatial axis, whatever the input size: ``y = A_h x A_w^T``."""

    dims = 2
    spatial = "H, W"

    def __init__(self, output_size) -> None:
        super().__init__()
        sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * self.dims
        if len(sizes) != self.dims or any(s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer))
                                                               or s < 1) for s in sizes):
            pair = " (or None to keep an axis), or a pair of them" if self.dims == 2 else ""
            raise ValueError(f"{type(self).__name__} output_size must be a positive integer{pair}, "
                             f"got {output_size!r}")
        self.output_size = tuple(None if s is None else int(s) for s in sizes)

    def _matrices(self, input) -> list[np.ndarray]:
        check_array(type(self).__name__, input, self.dims + 2, f"(N, C, {self.spatial})")
        return [_bins(n, n if o is None else o, input.dtype) for n, o in zip(input.shape[2:], self.output_size)]

    def update_output(self, input):
        mats = self._matrices(input)
        out = np.matmul(input, mats[-1].T)                   # last axis: (..., W) @ (W, W_out)
        if self.dims == 2:
            out = np.matmul(mats[0], out)                    # (H_out, H) @ (..., H, W_out)
        return out

    def update_grad_input(self, input, grad_output):
        """``grad_input = A_h^T grad_output A_w`` (each output's gradient spread evenly over its bin)."""
        mats = self._matrices(input)
        expected = input.shape[:2] + tuple(m.shape[0] for m in mats)
        if grad_output.shape != expected:
            raise ShapeError(f"{type(self).__name__} expected grad_output {shape_str(expected)}, "
                             f"got {shape_str(grad_output.shape)}")
        grad = np.matmul(grad_output, mats[-1])
        if self.dims == 2:
            grad = np.matmul(mats[0].T, grad)
        return np.ascontiguousarray(grad)

    def extra_repr(self):
        sizes = self.output_size
        return f"output_size={sizes[0] if len(set(sizes)) == 1 else sizes}"


class AdaptiveAvgPool2d(_AdaptiveAvgPooling):
    """``y[n, c, i, j] = mean of x[n, c]`` over bin ``i`` of the rows and bin ``j`` of the columns.

    ``output_size`` is an int or an ``(h, w)`` pair (None keeps that axis). ``AdaptiveAvgPool2d(1)`` is
    global average pooling.
    Shape: ``(N, C, H, W) -> (N, C, *output_size)``.
    Example: ``Sequential(Conv2d(3, 16, 3), ReLU(), AdaptiveAvgPool2d(1), Flatten(), Linear(16, 10))``.
    """

    def __init__(self, output_size: int | tuple[int | None, int | None] | None) -> None:
        super().__init__(output_size)


class AdaptiveAvgPool1d(_AdaptiveAvgPooling):
    """``y[n, c, i] = mean of x[n, c]`` over bin ``i`` of the length.

    Shape: ``(N, C, L) -> (N, C, output_size)``.
    Example: ``AdaptiveAvgPool1d(1)`` averages ``(N, 8, L)`` over time to ``(N, 8, 1)`` for any ``L``.
    """

    dims = 1
    spatial = "L"

    def __init__(self, output_size: int) -> None:
        super().__init__(output_size)


# --------------------------------------------------------------------------- PyTorch's names
# PyTorch's pooling classes take their arguments in PyTorch's order (``dilation`` and ``ceil_mode``
# positional); formulas and gradients are those of the classes they name.
def _no_indices(owner: str, return_indices: bool) -> None:
    if return_indices:
        raise ValueError(f"{owner} return_indices=True is not supported: a layer returns one array "
                         "(backward routes the gradient to each window's max itself)")


@pytorch_name
class MaxPool1d(TemporalMaxPooling):
    """PyTorch's ``nn.MaxPool1d``: :class:`TemporalMaxPooling` with PyTorch's arguments.

    Shape: ``(N, C, L) -> (N, C, L_out)``.
    """

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, dilation: int = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        _no_indices("MaxPool1d", return_indices)
        super().__init__(kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode)


@pytorch_name
class MaxPool2d(SpatialMaxPooling):
    """PyTorch's ``nn.MaxPool2d``: :class:`SpatialMaxPooling` with PyTorch's arguments.

    Shape: ``(N, C, H, W) -> (N, C, H_out, W_out)``.
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        _no_indices("MaxPool2d", return_indices)
        super().__init__(kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode)


@pytorch_name
class AvgPool2d(SpatialAveragePooling):
    """PyTorch's ``nn.AvgPool2d``: :class:`SpatialAveragePooling` with PyTorch's arguments.

    Shape: ``(N, C, H, W) -> (N, C, H_out, W_out)``.
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                         divisor_override=divisor_override)
