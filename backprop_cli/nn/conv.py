"""Convolutions over time (1-D) and space (2-D), batch-first and channels-first like PyTorch.

``y[n, o, r, x] = bias[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, c, s_h*r + i, s_w*x + j]``
(cross-correlation, as in Torch7 and PyTorch). The 1-D layer runs as the 2-D one with height 1.

How it is computed. Plain im2col copies every kh x kw patch into a column of its own: each input
value is copied kh*kw times, in runs of a few numbers, and in numpy those copies cost more than
the matrix product. Here each value is copied only kw times (once per kernel column ``j``), in runs
of a whole output row. For a tile of ``B`` output rows, the ``U = s_h*(B-1) + kh`` input rows under
it become one block of ``X``, and the kernel becomes a banded matrix ``T`` whose row ``(o, b)`` holds
``W[o]`` shifted down by ``s_h*b`` rows. One matrix product gives every output::

    X[(j, c, u), (n, t, x)] = xpad[n, c, s_h*B*t + u, s_w*x + j]          0 <= u < U
    T[(o, b), (j, c, u)]    = W[o, c, u - s_h*b, j]    (0 outside the band 0 <= u - s_h*b < kh)
    Y = T @ X,              Y[(o, b), (n, t, x)] = y[n, o, B*t + b, x]

A last row of ones in ``X`` and a column of biases in ``T`` add the bias in the same product.
``B = 1`` is im2col; taller tiles trade multiplications by zero (``T`` is banded) for fewer copies,
and ``_tile_height`` picks ``B``. Backward reuses both matrices. The bands of ``dT = dY @ X.T`` sum
to ``dW`` (its last column to ``dbias``). ``dX = T.T @ dY`` must be added back where ``X`` was read
from, and each entry lands on input column ``w = s_w*x + j``. That scatter along a row is a linear
map, so for narrow rows it is one more (small, batched) product with the 0/1 matrix
``S[(x, j), w] = [w == s_w*x + j]``; wide rows are added one kernel column at a time instead::

    G[(n, t), (c, u), w] = sum_{x, j} dX.T[(n, t), (x, j), (c, u)] * S[(x, j), w]

after which the rows of overlapping tiles are added up, whole rows at a time.

That path is the common case: one group, no dilation, zero padding alike on both sides. Dilation
(``xpad[n, c, s_h*r + d_h*i, s_w*x + d_w*j]``), ``groups`` (each of ``G`` groups of ``C_in/G`` input
channels feeds its own ``C_out/G`` outputs; depthwise is ``groups = C_in``), "same" padding that is
not the same on both sides, and the ``reflect``/``replicate``/``circular`` padding modes take plain
im2col per group instead (:func:`_columns`): slower, and only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .init import init_bias, init_weight, make_rng
from .module import DEFAULT_DTYPE, Module, ShapeError, check_array, pytorch_name, shape_str
from .window import show_sizes, window_sizes


@lru_cache(maxsize=256)
def _tile_height(out_h: int, kernel: int, stride: int, out_channels: int) -> int:
    """Output rows per tile ``B``, from a rough cost model measured on LeNet-sized layers.

    Per output position the three products cost ~``O * U`` multiply-adds and the copies in and
    out of ``X`` ~``2 * U / B`` elements, a copied element costing about as much as 80 multiply-adds.
    """
    def cost(rows: int) -> float:
        padded_rows = -(-out_h // rows) * rows
        span = stride * (rows - 1) + kernel
        return padded_rows * span * (out_channels + 160 / rows)

    return min(range(1, out_h + 1), key=cost)


@dataclass(frozen=True)
class _Geometry:
    """Sizes of one call: rows are ``kh, sh, ph, height``; columns are ``kw, sw, pw, width``."""

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
    tile: int       # B, output rows per tile
    tiles: int      # tiles down the output
    span: int       # U, input rows under one tile

    @classmethod
    def of(cls, size, kernel, stride, padding, out_channels) -> _Geometry:
        (height, width), (kh, kw), (sh, sw), (ph, pw) = size, kernel, stride, padding
        out_h = (height + 2 * ph - kh) // sh + 1
        out_w = (width + 2 * pw - kw) // sw + 1
        tile = _tile_height(out_h, kh, sh, out_channels)
        return cls(kh, kw, sh, sw, ph, pw, height, width, out_h, out_w, tile, -(-out_h // tile),
                   sh * (tile - 1) + kh)

    @property
    def padded_height(self) -> int:
        """Rows of the zero-padded input: both paddings, plus any the last tile reads past them."""
        return max(self.height + 2 * self.ph, self.sh * self.tile * (self.tiles - 1) + self.span)


# ----------------------------------------------------------------------------- the array steps
def _lower(x: np.ndarray, g: _Geometry, ones: bool) -> np.ndarray:
    """``X``, shaped ``(kw*C*U [+ 1], N*tiles*out_w)``; the optional last row of ones carries the bias."""
    n, c = x.shape[:2]
    bottom = g.padded_height - g.height - g.ph
    if g.ph or g.pw or bottom:
        x = np.pad(x, ((0, 0), (0, 0), (g.ph, bottom), (g.pw, g.pw)))
    s_n, s_c, s_h, s_w = x.strides
    windows = as_strided(x, (g.kw, c, g.span, n, g.tiles, g.out_w),
                         (s_w, s_c, s_h, s_n, g.sh * g.tile * s_h, g.sw * s_w), writeable=False)
    k = c * g.kw * g.span
    lowered = np.empty((k + ones, n * g.tiles * g.out_w), dtype=x.dtype)
    np.copyto(lowered[:k].reshape(windows.shape), windows)
    if ones:
        lowered[k] = 1
    return lowered


def _band_diagonals(band: np.ndarray, out_c: int, in_c: int, g: _Geometry) -> np.ndarray:
    """The view ``d[o, c, i, j, b] = band[(o, b), (j, c, i + s_h*b)]``: where ``W[o, c, i, j]`` sits."""
    row, col = band.strides
    return as_strided(band, (out_c, in_c, g.kh, g.kw, g.tile),
                      (g.tile * row, g.span * col, col, in_c * g.span * col, row + g.sh * col))


def _band(weight: np.ndarray, bias: np.ndarray | None, g: _Geometry) -> np.ndarray:
    """``T``, shaped ``(O*B, kw*C*U [+ 1])``; the optional last column holds the bias."""
    out_c, in_c = weight.shape[:2]
    k = in_c * g.kw * g.span
    band = np.zeros((out_c * g.tile, k + (bias is not None)), dtype=weight.dtype)
    _band_diagonals(band, out_c, in_c, g)[...] = weight[..., None]
    if bias is not None:
        band[:, k] = np.repeat(bias, g.tile)
    return band


def _unband(grad_band: np.ndarray, out_c: int, in_c: int, g: _Geometry):
    """``(dW, dbias)`` from ``dT``: ``dW[o, c, i, j] = sum_b dT[(o, b), (j, c, i + s_h*b)]``.

    ``dbias`` comes from the last column, and is None when ``dT`` has none. ``dT`` may be any
    strided view (a transposed product, say).
    """
    grad_weight = _band_diagonals(grad_band, out_c, in_c, g).sum(axis=-1)
    if grad_band.shape[1] == in_c * g.kw * g.span:
        return grad_weight, None
    return grad_weight, grad_band[:, -1].reshape(out_c, g.tile).sum(axis=1)


NARROW_ROWS = 24     # rows of at most this many outputs scatter dX by the product with S; wider ones by strided adds


@lru_cache(maxsize=64)
def _column_scatter(g: _Geometry, dtype: np.dtype) -> np.ndarray:
    """``S[(x, j), w] = 1 if w == s_w*x + j else 0``, shaped ``(out_w*kw, padded width)``.
    Read-only: every call with this geometry shares it."""
    scatter = np.zeros((g.out_w, g.kw, g.width + 2 * g.pw), dtype=dtype)
    x, j = np.indices((g.out_w, g.kw))
    scatter[x, j, g.sw * x + j] = 1
    scatter.flags.writeable = False
    return scatter.reshape(g.out_w * g.kw, -1)


def _unlower(grad_lowered: np.ndarray, n: int, c: int, g: _Geometry, *, transposed: bool) -> np.ndarray:
    """Add each entry of ``dX`` back where :func:`_lower` read it; returns ``dLoss/dx``, unpadded.

    Narrow rows (``out_w <= NARROW_ROWS``; ``transposed``) come as ``dX.T``, ``(N*tiles*out_w,
    kw*C*U)``: the product with ``S`` places every column at once (exact sums of the same terms in
    another order; a non-finite entry makes its whole row so). Wider rows come as ``dX``,
    ``(kw*C*U, N*tiles*out_w)``, and go in one kernel column ``j`` at a time, in runs of ``out_w``
    numbers: there the product would cost more per entry than the adds (measured crossover: 24-48
    outputs a row). Rows then go in with one strided add per block of ``s_h*B`` rows, which holds
    each tile's rows without overlap (tiles start every ``s_h*B`` rows).
    """
    width = g.width + 2 * g.pw
    if transposed:
        pieces = grad_lowered.reshape(n * g.tiles, g.out_w * g.kw, c * g.span)
        placed = np.matmul(pieces.transpose(0, 2, 1), _column_scatter(g, pieces.dtype))
        placed = placed.reshape(n, g.tiles, c, g.span, width)       # [n, t, c, u, w]: row s_h*B*t + u
        if g.tiles == 1 and g.span == g.padded_height:
            return np.ascontiguousarray(placed[:, 0, :, g.ph:g.ph + g.height, g.pw:g.pw + g.width])
        sources = [(0, 1, placed.transpose(2, 3, 0, 1, 4))]         # (first column, column step, values)
    else:
        pieces = grad_lowered.reshape(g.kw, c, g.span, n, g.tiles, g.out_w)
        sources = [(j, g.sw, pieces[j]) for j in range(g.kw)]       # [c, u, n, t, x] -> column s_w*x + j
    block = g.sh * g.tile if g.tiles > 1 else g.span
    blocks = -(-g.span // block)
    grad = np.zeros((n, c, max(g.padded_height, (blocks + g.tiles - 1) * block), width), dtype=grad_lowered.dtype)
    s_n, s_c, s_h, s_w = grad.strides
    for first, step, values in sources:
        for lo in range(0, g.span, block):
            hi = min(g.span, lo + block)
            target = as_strided(grad[:, :, lo:, first:], (c, hi - lo, n, g.tiles, values.shape[-1]),
                                (s_c, s_h, s_n, block * s_h, step * s_w))
            target += values[:, lo:hi]
    return np.ascontiguousarray(grad[:, :, g.ph:g.ph + g.height, g.pw:g.pw + g.width])


# ----------------------------------------------------------------------------- the general path
#: PyTorch's padding modes -> numpy's (``zeros`` pads with 0).
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad(x: np.ndarray, pads: tuple[tuple[int, int], ...], mode: str) -> np.ndarray:
    """``x`` padded on its spatial axes by ``pads`` (``(before, after)`` each) in PyTorch's ``mode``."""
    if not any(a or b for a, b in pads):
        return x
    return np.pad(x, ((0, 0), (0, 0)) + pads, mode=PADDING_MODES[mode])


def _unpad(grad: np.ndarray, pads: tuple[tuple[int, int], ...], mode: str, size: tuple[int, ...]) -> np.ndarray:
    """The gradient of :func:`_pad`: each padded position's gradient added to the input position it
    copies (dropped for zeros). ``np.pad`` of the indices ``0..n-1`` says which one that is."""
    for axis, ((before, after), n) in enumerate(zip(pads, size), start=2):
        if not before and not after:
            continue
        if mode == "zeros":
            grad = grad[(slice(None),) * axis + (slice(before, before + n),)]
            continue
        source = np.pad(np.arange(n), (before, after), mode=PADDING_MODES[mode])
        folded = np.zeros(grad.shape[:axis] + (n,) + grad.shape[axis + 1:], dtype=grad.dtype)
        np.add.at(folded, (slice(None),) * axis + (source,), grad)
        grad = folded
    return np.ascontiguousarray(grad)


def _window_view(xpad: np.ndarray, kernel, stride, dilation, out) -> np.ndarray:
    """``v[n, c, i, j, r, x] = xpad[n, c, s_h*r + d_h*i, s_w*x + d_w*j]``, a strided view."""
    s_n, s_c, s_h, s_w = xpad.strides
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out
    return as_strided(xpad, xpad.shape[:2] + (kh, kw, oh, ow),
                      (s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w), writeable=False)


def _columns(xpad: np.ndarray, groups: int, kernel, stride, dilation, out) -> np.ndarray:
    """im2col per group: ``cols[n, g, (c, i, j), (r, x)] = xpad[n, g*C/G + c, s_h*r + d_h*i, s_w*x + d_w*j]``."""
    n, c = xpad.shape[:2]
    windows = _window_view(xpad, kernel, stride, dilation, out)
    return windows.reshape(n, groups, (c // groups) * kernel[0] * kernel[1], out[0] * out[1])


def _uncolumns(grad_cols: np.ndarray, padded_shape, kernel, stride, dilation, out) -> np.ndarray:
    """The gradient of :func:`_columns`: every entry added back where it was read (one strided add
    per kernel offset)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out
    grad = np.zeros(padded_shape, dtype=grad_cols.dtype)
    pieces = grad_cols.reshape(padded_shape[:2] + (kh, kw, oh, ow))
    for i in range(kh):
        for j in range(kw):
            grad[:, :, dh * i:dh * i + sh * (oh - 1) + 1:sh, dw * j:dw * j + sw * (ow - 1) + 1:sw] += pieces[:, :, i, j]
    return grad


# ----------------------------------------------------------------------------- the layers
class _Convolution(Module):
    """What the 1-D and 2-D convolutions share; the 1-D layer runs as the 2-D one with height 1.

    Between calls it keeps ``X`` from forward for ``acc_grad_parameters`` (the same input comes
    back, by the contract) and ``T`` for ``update_grad_input`` (only while the weights are unchanged).
    ``grad_output`` is read at each call; ``backward`` rearranges it once for both halves.
    """

    dims = 2
    spatial = "H, W"

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                 init, rng, dtype):
        super().__init__()
        name = type(self).__name__
        for what, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} {what} must be a positive integer, got {value!r}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{name} in_channels ({self.in_channels}) and out_channels ({self.out_channels}) "
                             f"must both be divisible by groups ({self.groups})")
        self.kernel_size = window_sizes(name, "kernel_size", kernel_size, 1, self.dims)
        self.stride = window_sizes(name, "stride", stride, 1, self.dims)
        self.dilation = window_sizes(name, "dilation", dilation, 1, self.dims)
        self.padding, self.pads = self._paddings(padding)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name} padding_mode must be one of {', '.join(map(repr, PADDING_MODES))}, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        #: The banded product (module docstring) computes this layer; else im2col per group.
        self.banded = (self.groups == 1 and set(self.dilation) == {1} and padding_mode == "zeros"
                       and all(a == b for a, b in self.pads))
        self.init, self.has_bias = init, bool(bias)
        taps = int(np.prod(self.kernel_size))
        fan_in, fan_out = self.in_channels // self.groups * taps, self.out_channels * taps
        rng = make_rng(rng)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.add_parameter("weight", init_weight(init, shape, fan_in, fan_out, rng, dtype))
        if self.has_bias:
            self.add_parameter("bias", init_bias(init, self.out_channels, fan_in, rng, dtype))
        self._cache: dict[str, object] = {}

    def _paddings(self, padding) -> tuple[tuple[int, ...] | str, tuple[tuple[int, int], ...]]:
        """``(padding as given, (before, after) per spatial axis)``; ``"same"`` pads ``d*(k-1)`` in all,
        the odd one after, as PyTorch does (stride 1 only); ``"valid"`` pads nothing."""
        name = type(self).__name__
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name} padding must be 'same', 'valid', a non-negative integer"
                                 f"{' or a pair of them' if self.dims == 2 else ''}, got {padding!r}")
            if padding == "valid":
                return padding, ((0, 0),) * self.dims
            if any(s != 1 for s in self.stride):
                raise ValueError(f"{name} padding='same' needs stride 1 (as in PyTorch), got "
                                 f"stride={show_sizes(self.stride)}")
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            return padding, tuple((t // 2, t - t // 2) for t in totals)
        sizes = window_sizes(name, "padding", padding, 0, self.dims)
        return sizes, tuple((p, p) for p in sizes)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={show_sizes(self.kernel_size)}"
        text += f", stride={show_sizes(self.stride)}" if any(s != 1 for s in self.stride) else ""
        if isinstance(self.padding, str):
            text += f", padding={self.padding!r}"
        elif any(self.padding):
            text += f", padding={show_sizes(self.padding)}"
        text += f", dilation={show_sizes(self.dilation)}" if any(d != 1 for d in self.dilation) else ""
        text += f", groups={self.groups}" if self.groups != 1 else ""
        text += f", padding_mode={self.padding_mode!r}" if self.padding_mode != "zeros" else ""
        return text + ("" if self.has_bias else ", bias=False")

    # -------------------------------------------------------------- shapes
    def _check_input(self, input: np.ndarray) -> tuple[int, ...]:
        """Check ``input``; returns the output's spatial size."""
        name, c = type(self).__name__, self.in_channels
        check_array(name, input, self.dims + 2, f"(N, {c}, {self.spatial})")
        if input.shape[1] != c:
            raise ShapeError(f"{name} expected input (N, {c}, {self.spatial}), got {shape_str(input.shape)}")
        spans = [d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size)]
        size = input.shape[2:]
        if any(n + a + b < span for n, (a, b), span in zip(size, self.pads, spans)):
            least = ", ".join(f"{axis}>={span - a - b}" for axis, (a, b), span in
                              zip(self.spatial.split(", "), self.pads, spans))
            padding = self.padding if isinstance(self.padding, str) else show_sizes(self.padding)
            raise ShapeError(f"{name} expected input (N, {c}, {least}) for kernel_size={show_sizes(self.kernel_size)} "
                             f"and padding={padding}"
                             + (f" and dilation={show_sizes(self.dilation)}" if max(self.dilation) > 1 else "")
                             + f", got {shape_str(input.shape)}")
        if self.padding_mode == "reflect" and any(max(a, b) >= n for n, (a, b) in zip(size, self.pads)):
            raise ShapeError(f"{name} padding_mode='reflect' needs padding smaller than the input, got "
                             f"{shape_str(input.shape)}")
        if self.padding_mode == "circular" and any(max(a, b) > n for n, (a, b) in zip(size, self.pads)):
            raise ShapeError(f"{name} padding_mode='circular' needs padding at most the input size, got "
                             f"{shape_str(input.shape)}")
        return tuple((n + a + b - span) // s + 1 for n, (a, b), span, s in zip(size, self.pads, spans, self.stride))

    def _geometry(self, input: np.ndarray) -> _Geometry:
        """Check ``input`` and size the call (the banded path)."""
        self._check_input(input)
        size, k, p = input.shape[2:], self.kernel_size, tuple(a for a, _ in self.pads)
        if self.dims == 1:
            return _Geometry.of((1, size[0]), (1, k[0]), (1, self.stride[0]), (0, p[0]), self.out_channels)
        return _Geometry.of(size, k, self.stride, p, self.out_channels)

    def _as_2d(self, x: np.ndarray) -> np.ndarray:
        return x[:, :, None, :] if self.dims == 1 else x

    def _out_shape(self, input: np.ndarray, g: _Geometry) -> tuple[int, ...]:
        spatial = (g.out_w,) if self.dims == 1 else (g.out_h, g.out_w)
        return (input.shape[0], self.out_channels, *spatial)

    def _band(self, g: _Geometry) -> np.ndarray:
        weight = self._params["weight"]
        weight = weight[:, :, None, :] if self.dims == 1 else weight
        return _band(weight, self._params["bias"] if self.has_bias else None, g)

    def _grad_rows(self, input: np.ndarray, grad_output: np.ndarray, g: _Geometry) -> np.ndarray:
        """``dY``, laid out like ``Y``: ``(O*B, N*tiles*out_w)``, with zero rows past ``out_h``."""
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
        if not self.banded:
            return self._grouped_output(input)
        g = self._geometry(input)
        band = self._band(g)
        lowered = _lower(self._as_2d(input), g, ones=self.has_bias)
        self._cache = {"input": input, "lowered": lowered, "band": band, "weights": self._weights_now()}
        rows = band @ lowered
        n, o = input.shape[0], self.out_channels
        out = np.empty((n, o, g.tiles, g.tile, g.out_w), dtype=rows.dtype)
        np.copyto(out, rows.reshape(o, g.tile, n, g.tiles, g.out_w).transpose(2, 0, 3, 1, 4))
        out = out.reshape(n, o, g.tiles * g.tile, g.out_w)
        if g.tiles * g.tile != g.out_h:
            out = np.ascontiguousarray(out[:, :, :g.out_h])
        return out.reshape(self._out_shape(input, g))

    def update_grad_input(self, input, grad_output):
        """``grad_input[n, c, s_h*r + d_h*i, s_w*x + d_w*j] += sum_o W[o, c, i, j] * grad_output[n, o, r, x]`` (o in c's group)."""
        if not self.banded:
            return self._grouped_grad_input(input, grad_output)
        g = self._geometry(input)
        return self._grad_input(input, self._grad_rows(input, grad_output, g), g)

    def acc_grad_parameters(self, input, grad_output, scale=1.0, *, overwrite=False):
        """``grad_weight[o, c, i, j] += scale * sum_{n,r,x} grad_output[n, o, r, x] * xpad[n, c, s_h*r+i, s_w*x+j]``.

        And ``grad_bias[o] += scale * sum_{n,r,x} grad_output[n, o, r, x]`` (``=`` with ``overwrite``).
        """
        if not self.banded:
            if overwrite:
                self.zero_grad_parameters()
            return self._grouped_grad_parameters(input, grad_output, scale)
        g = self._geometry(input)
        self._acc_grads(input, self._grad_rows(input, grad_output, g), g, scale, overwrite)

    def _backprop(self, input, grad_output, scale=1.0, *, grad_input=True, parameters=True, overwrite=False):
        """Both halves from one rearranged copy ``dY`` of ``grad_output`` (on the banded path)."""
        if not self.banded:
            return super()._backprop(input, grad_output, scale, grad_input=grad_input, parameters=parameters,
                                     overwrite=overwrite)
        g = self._geometry(input)
        rows = self._grad_rows(input, grad_output, g)
        result = self._grad_input(input, rows, g) if grad_input else None
        if parameters:
            self._acc_grads(input, rows, g, scale, overwrite)
        self.grad_input = result
        return result

    def _weights_now(self) -> tuple[np.ndarray, ...]:
        """Copies of the weight and bias the band was built from."""
        return tuple(p.copy() for p in self._params.values())

    def _grad_input(self, input, rows, g: _Geometry) -> np.ndarray:
        """``dX = T.T @ dY`` added back where ``X`` was read from. ``T`` from forward is reused only
        while the weights are the ones it was built from (an optimizer may have stepped since)."""
        cache = self._cache
        fresh = cache.get("input") is input and all(
            np.array_equal(p, q) for p, q in zip(self._params.values(), cache["weights"]))
        band = cache["band"] if fresh else self._band(g)
        k = self.in_channels * g.kw * g.span
        narrow = g.out_w <= NARROW_ROWS
        grad_lowered = rows.T @ band[:, :k] if narrow else band[:, :k].T @ rows     # dX.T or dX
        grad = _unlower(grad_lowered, input.shape[0], self.in_channels, g, transposed=narrow)
        return grad.reshape(input.shape)

    def _acc_grads(self, input, rows, g: _Geometry, scale, overwrite) -> None:
        """``dT = dY @ X.T``, whose bands sum to ``dW`` (and last column to ``dbias``); ``X`` from
        forward is reused for the same input."""
        if self._cache.get("input") is input:
            lowered = self._cache["lowered"]
        else:
            lowered = _lower(self._as_2d(input), g, ones=self.has_bias)
        # dT = dY @ X.T, computed as (X @ dY.T).T: the same products, laid out so BLAS runs them 10-20% faster
        grad_weight, grad_bias = _unband((lowered @ rows.T).T, self.out_channels, self.in_channels, g)
        for name, value in (("weight", grad_weight), ("bias", grad_bias)):
            if value is None:
                continue
            value = value.reshape(self._grads[name].shape)        # fresh arrays: scaled in place
            if scale != 1.0:
                value *= scale
            if overwrite:
                np.copyto(self._grads[name], value, casting="same_kind")
            else:
                self._grads[name] += value

    def _clear(self):
        self._cache = {}

    # -------------------------------------------------------------- the general path: im2col per group
    def _grouped_geometry(self, input):
        """``(pads, kernel, stride, dilation, output size)``, 2-D (the 1-D layer with height 1)."""
        out = self._check_input(input)
        one = (1,) * (2 - self.dims)
        return ((0, 0),) * (2 - self.dims) + self.pads, one + self.kernel_size, one + self.stride, \
            one + self.dilation, one + out

    def _grouped_weight(self) -> np.ndarray:
        """``W`` as ``(G, C_out/G, C_in/G * kh * kw)``."""
        return self._params["weight"].reshape(self.groups, self.out_channels // self.groups, -1)

    def _grouped_columns(self, input, *, fresh: bool):
        """The columns of ``input`` and the output's 2-D size. Forward makes them ``fresh`` and keeps
        them for the backward that follows, which takes them when it gets the same input."""
        pads, kernel, stride, dilation, out = self._grouped_geometry(input)
        cached = self._cache.get("columns")
        if not fresh and self._cache.get("input") is input and cached is not None:
            return cached, out
        xpad = _pad(self._as_2d(input), pads, self.padding_mode)
        cols = _columns(xpad, self.groups, kernel, stride, dilation, out)
        self._cache = {"input": input, "columns": cols}
        return cols, out

    def _grouped_output(self, input):
        cols, out = self._grouped_columns(input, fresh=True)
        y = np.matmul(self._grouped_weight(), cols)                     # (N, G, C_out/G, r*x)
        y = y.reshape(input.shape[0], self.out_channels, *out[2 - self.dims:])
        if self.has_bias:
            y += self._params["bias"].reshape((1, -1) + (1,) * self.dims)
        return y

    def _grouped_grad(self, input, grad_output) -> np.ndarray:
        """``dY`` as ``(N, G, C_out/G, r*x)``, checked."""
        out = self._check_input(input)
        expected = (input.shape[0], self.out_channels, *out)
        if grad_output.shape != expected:
            raise ShapeError(f"{type(self).__name__} expected grad_output {shape_str(expected)}, "
                             f"got {shape_str(grad_output.shape)}")
        return grad_output.reshape(input.shape[0], self.groups, self.out_channels // self.groups, -1)

    def _grouped_grad_input(self, input, grad_output):
        pads, kernel, stride, dilation, out = self._grouped_geometry(input)
        grad_cols = np.matmul(self._grouped_weight().transpose(0, 2, 1), self._grouped_grad(input, grad_output))
        size = self._as_2d(input).shape
        padded = size[:2] + tuple(n + a + b for n, (a, b) in zip(size[2:], pads))
        grad = _uncolumns(grad_cols, padded, kernel, stride, dilation, out)
        return _unpad(grad, pads, self.padding_mode, size[2:]).reshape(input.shape)

    def _grouped_grad_parameters(self, input, grad_output, scale):
        cols, _ = self._grouped_columns(input, fresh=False)
        dy = self._grouped_grad(input, grad_output)
        n, groups = dy.shape[:2]
        # dW[g] = sum_n dY[n, g] @ cols[n, g].T, as one product per group over (n, r*x)
        rows = dy.transpose(1, 2, 0, 3).reshape(groups, dy.shape[2], -1)
        grad_weight = np.matmul(rows, cols.transpose(1, 0, 3, 2).reshape(groups, -1, cols.shape[2]))
        if scale != 1.0:
            grad_weight *= scale
        self._grads["weight"] += grad_weight.reshape(self._grads["weight"].shape)
        if self.has_bias:
            self._grads["bias"] += scale * grad_output.sum(axis=(0,) + tuple(range(2, grad_output.ndim)))


class TemporalConvolution(_Convolution):
    """1-D convolution, ``y[n, o, x] = bias[o] + sum_{c, j} W[o, c, j] * xpad[n, c, stride*x + dilation*j]``.

    ``W`` is ``(out_channels, in_channels / groups, kernel_size)``, PyTorch's ``Conv1d`` layout
    (Torch7's ``TemporalConvolution`` takes frames first, ``(N, L, C)``; here channels come first).
    ``padding`` is a size or ``"same"``/``"valid"``; ``padding_mode`` ``"zeros"``, ``"reflect"``,
    ``"replicate"`` or ``"circular"``; ``groups`` splits the channels (the sum runs over ``c`` in
    ``o``'s group).
    Shape: ``(N, C_in, L) -> (N, C_out, L_out)``, ``L_out = (L + 2*padding - dilation*(kernel_size-1) - 1) // stride + 1``.
    Example: ``TemporalConvolution(1, 25, 5, stride=2, padding=1)`` maps ``(N, 1, 40)`` to ``(N, 25, 19)``.
    """

    dims = 1
    spatial = "L"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | str = 0, bias: bool = True, *, dilation: int = 1, groups: int = 1,
                 padding_mode: str = "zeros", init: str = "default", rng=None, dtype=DEFAULT_DTYPE) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, init, rng, dtype)


class SpatialConvolution(_Convolution):
    """2-D convolution, ``y[n, o, r, x] = bias[o] + sum_{c,i,j} W[o, c, i, j] * xpad[n, c, s_h*r+d_h*i, s_w*x+d_w*j]``.

    ``W`` is ``(out_channels, in_channels / groups, kh, kw)``; ``kernel_size``, ``stride``,
    ``padding`` and ``dilation`` take an int or an ``(h, w)`` pair (``padding`` also ``"same"`` or
    ``"valid"``); ``padding_mode`` is ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``;
    ``groups`` splits the channels (the sum runs over ``c`` in ``o``'s group; ``groups=in_channels``
    is depthwise).
    Shape: ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``, ``H_out = (H + 2*p_h - d_h*(kh-1) - 1) // s_h + 1``.
    Example: ``SpatialConvolution(1, 8, 5)`` maps MNIST's ``(N, 1, 28, 28)`` to ``(N, 8, 24, 24)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0, bias: bool = True, *,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, padding_mode: str = "zeros",
                 init: str = "default", rng=None, dtype=DEFAULT_DTYPE) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, init, rng, dtype)


# --------------------------------------------------------------------------- PyTorch's names
# Conv1d and Conv2d take PyTorch's order: ``dilation`` and ``groups`` before ``bias``, then
# ``padding_mode``. Formulas and gradients are those of the classes they name.
@pytorch_name
class Conv1d(TemporalConvolution):
    """PyTorch's ``nn.Conv1d``: :class:`TemporalConvolution` with PyTorch's arguments.

    Shape: ``(N, C_in, L) -> (N, C_out, L_out)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | str = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, init: str = "default", rng=None, dtype=DEFAULT_DTYPE) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, dilation=dilation,
                         groups=groups, padding_mode=padding_mode, init=init, rng=rng, dtype=dtype)


@pytorch_name
class Conv2d(SpatialConvolution):
    """PyTorch's ``nn.Conv2d``: :class:`SpatialConvolution` with PyTorch's arguments.

    Shape: ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, init: str = "default", rng=None, dtype=DEFAULT_DTYPE) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, dilation=dilation,
                         groups=groups, padding_mode=padding_mode, init=init, rng=rng, dtype=dtype)
