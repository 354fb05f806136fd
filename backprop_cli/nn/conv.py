"""Convolutions over time (1-D) and space (2-D), batch-first and channels-first like PyTorch.

``y[n, o, r, x] = b[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, c, s_h*r + i, s_w*x + j]``
(cross-correlation, as in Torch7 and PyTorch; the 1-D layer is the 2-D one with height 1).

How it is computed. Plain im2col copies every kh x kw patch into its own column, so each input
value is copied kh*kw times in runs of a few numbers; in numpy those copies, not the matrix
product, cost the most. Here the input is copied only kh times: for a tile of ``B`` neighbouring
outputs in a row, the ``kh`` input rows under the tile (``U = s_w*(B-1) + kw`` values each) become
one row of ``X``, and the kernel is laid out as a banded matrix ``T`` that holds, for each output
``b`` of the tile, the kernel row shifted by ``s_w*b``. One product then gives every output::

    X[(n, r, t), (c, i, u)] = xpad[n, c, s_h*r + i, s_w*B*t + u]            0 <= u < U
    T[(c, i, u), (o, b)]    = W[o, c, i, u - s_w*b]    (0 outside the band 0 <= u - s_w*b < kw)
    Y = X @ T,              Y[(n, r, t), (o, b)] = y[n, o, r, B*t + b] - b[o]

``B = 1`` is im2col; a wider tile trades some multiplications by zero for far fewer copies
(``_tile_width`` picks it). Backward uses the same two matrices: ``dX = dY @ T.T`` is added back
into the input one kernel row at a time, and ``dT = X.T @ dY``, whose bands summed give ``dW``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .init import init_bias, init_weight, make_rng
from .module import DEFAULT_DTYPE, Module, ShapeError, check_array, shape_str


def _tile_height(out_h: int, kernel: int, stride: int) -> int:
    """Output rows per tile: as many as possible while a band ``U`` stays within ~4 kernels.

    Beyond that the extra multiplications by zero cost more than the copies they save. Prefer a
    height that divides ``out_h`` so that no padding rows are computed.
    """
    tallest = max(1, min(out_h, (4 * kernel - kernel) // stride + 1))
    for rows in range(tallest, (tallest + 1) // 2 - 1, -1):
        if out_h % rows == 0:
            return rows
    return tallest


@dataclass(frozen=True)
class _Geometry:
    """Sizes of one convolution call; rows are ``kh, sh, ph, H``, columns ``kw, sw, pw, W``."""

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    height: int
    width: int
    out_h: int
    out_w: int
    tile: int      # B, output rows per tile
    tiles: int     # tiles per output column
    span: int      # U, input rows under one tile

    @classmethod
    def of(cls, height, width, kernel, stride, padding) -> _Geometry:
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        out_h = (height + 2 * ph - kh) // sh + 1
        out_w = (width + 2 * pw - kw) // sw + 1
        tile = _TILE(out_h, kh, sh)
        return cls(kh, kw, sh, sw, ph, pw, height, width, out_h, out_w, tile, -(-out_h // tile),
                   sh * (tile - 1) + kh)

    @property
    def padded_height(self) -> int:
        """Height of the zero-padded input: both paddings, plus what the last tile reads past it."""
        return max(self.height + 2 * self.ph, self.sh * self.tile * (self.tiles - 1) + self.span)


_TILE = _tile_height


# ----------------------------------------------------------------------------- the four array steps
def _lower(x: np.ndarray, g: _Geometry, ones: bool) -> np.ndarray:
    """``X``, shaped ``(C*kw*U [+1], N*tiles*out_w)``; the optional last row of ones carries the bias."""
    n, c = x.shape[:2]
    bottom = g.padded_height - g.height - g.ph
    if g.ph or g.pw or bottom:
        x = np.pad(x, ((0, 0), (0, 0), (g.ph, bottom), (g.pw, g.pw)))
    s_n, s_c, s_h, s_w = x.strides
    windows = as_strided(x, (c, g.kw, g.span, n, g.tiles, g.out_w),
                         (s_c, s_w, s_h, s_n, g.sh * g.tile * s_h, g.sw * s_w), writeable=False)
    k = c * g.kw * g.span
    lowered = np.empty((k + ones, n * g.tiles * g.out_w), dtype=x.dtype)
    np.copyto(lowered[:k].reshape(windows.shape), windows)
    if ones:
        lowered[k] = 1
    return lowered


def _band(weight: np.ndarray, bias: np.ndarray | None, g: _Geometry) -> np.ndarray:
    """``T``, shaped ``(O*B, C*kw*U [+1])``: ``T[(o, b), (c, j, i + s_h*b)] = W[o, c, i, j]``, else 0."""
    out_c, in_c = weight.shape[:2]
    k = in_c * g.kw * g.span
    band = np.zeros((out_c * g.tile, k + (bias is not None)), dtype=weight.dtype)
    row, col = band.strides
    diagonal = as_strided(band, (out_c, in_c, g.kh, g.kw, g.tile),
                          (g.tile * row, g.kw * g.span * col, col, g.span * col, row + g.sh * col))
    diagonal[...] = weight[..., None]
    if bias is not None:
        band[:, k] = np.repeat(bias, g.tile)
    return band


def _unband(grad_band: np.ndarray, weight_shape, g: _Geometry) -> tuple[np.ndarray, np.ndarray]:
    """``(dW, db)`` from ``dT``: ``dW[o, c, i, j] = sum_b dT[(o, b), (c, j, i + s_h*b)]`` (adjoint of _band)."""
    out_c, in_c = weight_shape[:2]
    k = in_c * g.kw * g.span
    grad_band = np.ascontiguousarray(grad_band)
    row, col = grad_band.strides
    diagonal = as_strided(grad_band, (out_c, in_c, g.kh, g.kw, g.tile),
                          (g.tile * row, g.kw * g.span * col, col, g.span * col, row + g.sh * col),
                          writeable=False)
    grad_bias = grad_band[:, k].reshape(out_c, g.tile).sum(axis=1) if grad_band.shape[1] > k else None
    return diagonal.sum(axis=-1), grad_bias


def _unlower(grad_lowered: np.ndarray, n: int, c: int, g: _Geometry) -> np.ndarray:
    """Add each entry of ``dX`` back where :func:`_lower` read it; returns ``dLoss/dx`` (unpadded).

    One strided add per kernel column ``j`` (two when neighbouring tiles overlap), over the whole batch.
    """
    rows = grad_lowered.reshape(c, g.kw, g.span, n, g.tiles, g.out_w)
    # Tiles start every s_h*B rows; a block that tall holds each tile's rows without overlap.
    block = g.sh * g.tile if g.tiles > 1 else g.span
    blocks = -(-g.span // block)
    height = max(g.padded_height, (blocks + g.tiles - 1) * block)
    grad = np.zeros((n, c, height, g.width + 2 * g.pw), dtype=grad_lowered.dtype)
    s_n, s_c, s_h, s_w = grad.strides
    for j in range(g.kw):
        for q in range(blocks):
            lo, hi = q * block, min(g.span, (q + 1) * block)
            target = as_strided(grad[:, :, lo:, j:], (c, hi - lo, n, g.tiles, g.out_w),
                                (s_c, s_h, s_n, block * s_h, g.sw * s_w))
            target += rows[:, j, lo:hi]
    return np.ascontiguousarray(grad[:, :, g.ph:g.ph + g.height, g.pw:g.pw + g.width])


# ----------------------------------------------------------------------------- the layers
class _Convolution(Module):
    """What the 1-D and 2-D convolutions share; the 1-D layer runs as the 2-D one with height 1."""

    dims = 2
    spatial = "H, W"

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, bias, init, rng, dtype):
        super().__init__()
        name = type(self).__name__
        for what, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} {what} must be a positive integer, got {value!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = self._sizes("kernel_size", kernel_size, low=1)
        self.stride = self._sizes("stride", stride, low=1)
        self.padding = self._sizes("padding", padding, low=0)
        self.init, self.has_bias = init, bool(bias)
        kernel = int(np.prod(self.kernel_size))
        fan_in, fan_out = self.in_channels * kernel, self.out_channels * kernel
        rng = make_rng(rng)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = self.add_parameter("weight", init_weight(init, shape, fan_in, fan_out, rng, dtype))
        if self.has_bias:
            self.add_parameter("bias", init_bias(init, self.out_channels, fan_in, rng, dtype))
        self._cache: dict[str, object] = {}

    def _sizes(self, what: str, value, low: int) -> tuple[int, ...]:
        values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * self.dims
        if len(values) != self.dims or any(not isinstance(v, (int, np.integer)) or v < low for v in values):
            bound = "positive" if low else "non-negative"
            raise ValueError(f"{type(self).__name__} {what} must be a {bound} integer"
                             f"{' or a pair of them' if self.dims == 2 else ''}, got {value!r}")
        return tuple(int(v) for v in values)

    # -------------------------------------------------------------- shape handling
    def _as_2d(self, x: np.ndarray) -> np.ndarray:
        return x[:, :, None, :] if self.dims == 1 else x

    def _geometry(self, input: np.ndarray) -> _Geometry:
        name, c = type(self).__name__, self.in_channels
        check_array(name, input, self.dims + 2, f"(N, {c}, {self.spatial})")
        if input.shape[1] != c:
            raise ShapeError(f"{name} expected input (N, {c}, {self.spatial}), got {shape_str(input.shape)}")
        size, k, p = input.shape[2:], self.kernel_size, self.padding
        if any(s + 2 * pad < kk for s, kk, pad in zip(size, k, p)):
            least = ", ".join(f"{axis}>={kk - 2 * pad}" for axis, kk, pad in zip(self.spatial.split(", "), k, p))
            raise ShapeError(f"{name} expected input (N, {c}, {least}) for kernel_size={shape_str(k)}"
                             f" and padding={shape_str(p)}, got {shape_str(input.shape)}")
        if self.dims == 1:
            return _Geometry.of(1, size[0], (1, k[0]), (1, self.stride[0]), (0, p[0]))
        return _Geometry.of(size[0], size[1], k, self.stride, p)

    def _out_shape(self, input: np.ndarray, g: _Geometry) -> tuple[int, ...]:
        spatial = (g.out_w,) if self.dims == 1 else (g.out_h, g.out_w)
        return (input.shape[0], self.out_channels, *spatial)

    def _weight_2d(self) -> np.ndarray:
        w = self._params["weight"]
        return w[:, :, None, :] if self.dims == 1 else w

    # -------------------------------------------------------------- intermediates kept between calls
    # forward keeps X for acc_grad_parameters (same input, by contract); update_grad_input hands dY
    # to the acc_grad_parameters call that follows it in backward. Neither is reused any longer.
    def _grad_rows(self, input: np.ndarray, grad_output: np.ndarray, g: _Geometry) -> np.ndarray:
        """``dY``, the gradient laid out like ``Y``: ``(O*B, N*tiles*out_w)``, zeros past ``out_h``."""
        expected = self._out_shape(input, g)
        if grad_output.shape != expected:
            raise ShapeError(f"{type(self).__name__} expected grad_output {shape_str(expected)}, "
                             f"got {shape_str(grad_output.shape)}")
        n, o, full = input.shape[0], self.out_channels, g.tiles * g.tile
        gy = self._as_2d(grad_output)
        if full != g.out_h:
            gy = np.pad(gy, ((0, 0), (0, 0), (0, full - g.out_h), (0, 0)))
        rows = np.empty((o, g.tile, n, g.tiles, g.out_w), dtype=grad_output.dtype)
        np.copyto(rows, gy.reshape(n, o, g.tiles, g.tile, g.out_w).transpose(1, 3, 0, 2, 4))
        return rows.reshape(o * g.tile, -1)

    # -------------------------------------------------------------- the contract
    def update_output(self, input):
        g = self._geometry(input)
        bias = self._params["bias"] if self.has_bias else None
        band = _band(self._weight_2d(), bias, g)
        lowered = _lower(self._as_2d(input), g, ones=self.has_bias)
        self._cache = {"input": input, "lowered": lowered, "band": band}
        n, o = input.shape[0], self.out_channels
        out = np.empty((n, o, g.tiles, g.tile, g.out_w), dtype=np.result_type(lowered, band))
        rows = band @ lowered
        np.copyto(out, rows.reshape(o, g.tile, n, g.tiles, g.out_w).transpose(2, 0, 3, 1, 4))
        out = out.reshape(n, o, g.tiles * g.tile, g.out_w)
        if g.tiles * g.tile != g.out_h:
            out = np.ascontiguousarray(out[:, :, :g.out_h])
        return out.reshape(self._out_shape(input, g))

    def update_grad_input(self, input, grad_output):
        """``grad_input[n, c, s_h*r + i, s_w*x + j] += sum_o W[o, c, i, j] * grad_output[n, o, r, x]``."""
        g = self._geometry(input)
        rows = self._grad_rows(input, grad_output, g)
        same = self._cache.get("input") is input
        band = self._cache["band"] if same else _band(self._weight_2d(), None, g)
        self._cache.update(grad_output=grad_output, grad_rows=rows)
        k = self.in_channels * g.kw * g.span
        grad = _unlower(band[:, :k].T @ rows, input.shape[0], self.in_channels, g)
        return grad.reshape(input.shape)

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        """``grad_weight[o, c, i, j] += scale * sum_{n,r,x} grad_output[n, o, r, x] * xpad[n, c, s_h*r + i, s_w*x + j]``;
        ``grad_bias[o] += scale * sum_{n,r,x} grad_output[n, o, r, x]``."""
        g = self._geometry(input)
        if self._cache.get("grad_output") is grad_output:
            rows = self._cache.pop("grad_rows")
            del self._cache["grad_output"]
        else:
            rows = self._grad_rows(input, grad_output, g)
        same = self._cache.get("input") is input
        lowered = self._cache["lowered"] if same else _lower(self._as_2d(input), g, ones=self.has_bias)
        grad_weight, grad_bias = _unband(rows @ lowered.T, self._weight_2d().shape, g)
        if scale != 1.0:
            grad_weight *= scale
        self._grads["weight"] += grad_weight.reshape(self._grads["weight"].shape)
        if self.has_bias:
            self._grads["bias"] += scale * grad_bias

    def _convert_extra(self, dtype):
        self._cache.clear()

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self._show(self.kernel_size)}"
        text += f", stride={self._show(self.stride)}, padding={self._show(self.padding)}"
        return text + ("" if self.has_bias else ", bias=False")

    def _show(self, sizes: tuple[int, ...]) -> str:
        return str(sizes[0]) if self.dims == 1 else shape_str(sizes)


class TemporalConvolution(_Convolution):
    """1-D convolution, ``y[n, o, x] = b[o] + sum_{c, j} W[o, c, j] * xpad[n, c, stride*x + j]``.

    ``W`` is ``(out_channels, in_channels, kernel_size)``, PyTorch's ``Conv1d`` layout (Torch7's
    ``TemporalConvolution`` takes frames first, ``(N, L, C)``; here channels come first).
    Shape: ``(N, C_in, L) -> (N, C_out, L_out)``, ``L_out = (L + 2*padding - kernel_size) // stride + 1``.
    Example: ``TemporalConvolution(1, 25, 5, stride=2, padding=1)`` maps ``(N, 1, 40)`` to ``(N, 25, 19)``.
    """

    dims = 1
    spatial = "L"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, *, init: str = "default", rng=None,
                 dtype=DEFAULT_DTYPE) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, init, rng, dtype)


class SpatialConvolution(_Convolution):
    """2-D convolution, ``y[n, o, r, x] = b[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, c, s_h*r + i, s_w*x + j]``.

    ``W`` is ``(out_channels, in_channels, kh, kw)``; ``kernel_size``, ``stride`` and ``padding`` take
    an int or an ``(h, w)`` pair; padding is with zeros.
    Shape: ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``, ``H_out = (H + 2*p_h - kh) // s_h + 1``.
    Example: ``SpatialConvolution(1, 8, 5)`` maps MNIST's ``(N, 1, 28, 28)`` to ``(N, 8, 24, 24)``.
    """

    dims = 2
    spatial = "H, W"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, *, init: str = "default", rng=None, dtype=DEFAULT_DTYPE) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, init, rng, dtype)
