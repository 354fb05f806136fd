"""Convolution and pooling layers against naive loop references (float64, small odd shapes)."""

from __future__ import annotations

import numpy as np
import pytest

from backprop_cli.nn import conv as conv_module
from backprop_cli.nn.conv import SpatialConvolution, TemporalConvolution
from backprop_cli.nn.module import ShapeError
from backprop_cli.nn.pooling import SpatialAveragePooling, SpatialMaxPooling, TemporalMaxPooling

TOL = dict(rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- naive references
def pad2d(x, ph, pw, value=0.0):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def naive_conv2d(x, w, b, stride, padding):
    """Output, and a function giving (grad_input, grad_weight, grad_bias) for a grad_output."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = pad2d(x, ph, pw)
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n, o, ho, wo))
    for s in range(n):
        for f in range(o):
            for r in range(ho):
                for q in range(wo):
                    patch = xp[s, :, r * sh:r * sh + kh, q * sw:q * sw + kw]
                    y[s, f, r, q] = np.sum(patch * w[f]) + b[f]

    def backward(gy):
        gxp, gw, gb = np.zeros_like(xp), np.zeros_like(w), np.zeros_like(b)
        for s in range(n):
            for f in range(o):
                for r in range(ho):
                    for q in range(wo):
                        window = (s, slice(None), slice(r * sh, r * sh + kh), slice(q * sw, q * sw + kw))
                        gxp[window] += w[f] * gy[s, f, r, q]
                        gw[f] += xp[window] * gy[s, f, r, q]
                        gb[f] += gy[s, f, r, q]
        return gxp[:, :, ph:ph + h, pw:pw + wd], gw, gb

    return y, backward


def naive_pool2d(x, kernel, stride, padding, mode):
    """Max (first maximum wins) or mean (padded zeros counted) of each window, and its backward."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, wd = x.shape
    xp = pad2d(x, ph, pw, -np.inf if mode == "max" else 0.0)
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n, c, ho, wo))
    for s in range(n):
        for ch in range(c):
            for r in range(ho):
                for q in range(wo):
                    window = xp[s, ch, r * sh:r * sh + kh, q * sw:q * sw + kw]
                    y[s, ch, r, q] = window.max() if mode == "max" else window.mean()

    def backward(gy):
        gxp = np.zeros_like(xp)
        for s in range(n):
            for ch in range(c):
                for r in range(ho):
                    for q in range(wo):
                        window = xp[s, ch, r * sh:r * sh + kh, q * sw:q * sw + kw]
                        target = gxp[s, ch, r * sh:r * sh + kh, q * sw:q * sw + kw]
                        if mode == "max":
                            i, j = np.unravel_index(np.argmax(window), window.shape)
                            target[i, j] += gy[s, ch, r, q]
                        else:
                            target += gy[s, ch, r, q] / window.size
        return gxp[:, :, ph:ph + h, pw:pw + wd]

    return y, backward


def run(layer, x, rng, scale=1.0):
    """Forward, then backward with a random grad_output; returns (y, gy, grad_input)."""
    y = layer.forward(x)
    gy = rng.standard_normal(y.shape)
    return y, gy, layer.backward(x, gy, scale)


# --------------------------------------------------------------------------- convolution
CONV2D_CASES = [
    # (in_c, out_c, kernel, stride, padding, input (H, W))
    (1, 2, 3, 1, 0, (5, 5)),
    (2, 3, (3, 2), (2, 1), (1, 0), (7, 6)),
    (3, 2, 2, 3, 1, (8, 7)),
    (2, 4, (1, 4), (1, 2), (0, 2), (3, 9)),
    (2, 2, 5, 1, 2, (5, 5)),
    (3, 5, 3, 2, 1, (16, 5)),     # tall enough for several row tiles
    (2, 3, (2, 5), (1, 2), (0, 2), (4, 80)),   # rows of 40 outputs: dX goes back by strided adds, not by S
]


@pytest.mark.parametrize("in_c, out_c, kernel, stride, padding, size", CONV2D_CASES)
def test_spatial_convolution_matches_naive_loops(in_c, out_c, kernel, stride, padding, size):
    rng = np.random.default_rng(0)
    layer = SpatialConvolution(in_c, out_c, kernel, stride, padding, rng=1, dtype=np.float64)
    x = rng.standard_normal((2, in_c, *size))
    y, gy, gx = run(layer, x, rng, scale=0.5)
    w, b = layer._params["weight"], layer._params["bias"]
    ref_y, ref_backward = naive_conv2d(x, w, b, layer.stride, layer.padding)
    ref_gx, ref_gw, ref_gb = ref_backward(gy)
    np.testing.assert_allclose(y, ref_y, **TOL)
    np.testing.assert_allclose(gx, ref_gx, **TOL)
    np.testing.assert_allclose(layer._grads["weight"], 0.5 * ref_gw, **TOL)
    np.testing.assert_allclose(layer._grads["bias"], 0.5 * ref_gb, **TOL)


@pytest.mark.parametrize("width", [6, 75])
@pytest.mark.parametrize("rows", [1, 2, 3, 5, 7])
def test_spatial_convolution_is_the_same_for_every_tile_height(rows, width, monkeypatch):
    """The banded product works on tiles of output rows (see conv.py); the last may be partial. Both
    ways of scattering the input gradient are used: by the product with S (6 columns), by adds (75)."""
    monkeypatch.setattr(conv_module, "_tile_height", lambda out_h, kernel, stride, out_channels: rows)
    rng = np.random.default_rng(8)
    layer = SpatialConvolution(2, 3, (3, 2), stride=(2, 1), padding=(2, 1), rng=5, dtype=np.float64)
    x = rng.standard_normal((2, 2, 11, width))       # 7 output rows
    y, gy, gx = run(layer, x, rng)
    ref_y, ref_backward = naive_conv2d(x, layer._params["weight"], layer._params["bias"], (2, 1), (2, 1))
    ref_gx, ref_gw, ref_gb = ref_backward(gy)
    np.testing.assert_allclose(y, ref_y, **TOL)
    np.testing.assert_allclose(gx, ref_gx, **TOL)
    np.testing.assert_allclose(layer._grads["weight"], ref_gw, **TOL)
    np.testing.assert_allclose(layer._grads["bias"], ref_gb, **TOL)


@pytest.mark.parametrize("in_c, out_c, kernel, stride, padding, length", [
    (1, 3, 5, 2, 1, 40), (2, 3, 3, 2, 1, 10), (3, 2, 1, 1, 0, 4), (2, 2, 4, 3, 2, 11), (1, 1, 3, 1, 0, 3),
    (2, 3, 5, 1, 2, 100)])
def test_temporal_convolution_matches_naive_loops(in_c, out_c, kernel, stride, padding, length):
    rng = np.random.default_rng(1)
    layer = TemporalConvolution(in_c, out_c, kernel, stride, padding, rng=2, dtype=np.float64)
    x = rng.standard_normal((3, in_c, length))
    y, gy, gx = run(layer, x, rng)
    w, b = layer._params["weight"], layer._params["bias"]
    ref_y, ref_backward = naive_conv2d(x[:, :, None], w[:, :, None], b, (1, stride), (0, padding))
    ref_gx, ref_gw, ref_gb = ref_backward(gy[:, :, None])
    assert y.shape == (3, out_c, (length + 2 * padding - kernel) // stride + 1)
    np.testing.assert_allclose(y, ref_y[:, :, 0], **TOL)
    np.testing.assert_allclose(gx, ref_gx[:, :, 0], **TOL)
    np.testing.assert_allclose(layer._grads["weight"], ref_gw[:, :, 0], **TOL)
    np.testing.assert_allclose(layer._grads["bias"], ref_gb, **TOL)


def test_convolution_gradients_agree_with_finite_differences():
    rng = np.random.default_rng(2)
    layer = SpatialConvolution(2, 2, (2, 3), stride=(1, 2), padding=1, rng=3, dtype=np.float64)
    x = rng.standard_normal((2, 2, 4, 5))
    y, gy, gx = run(layer, x, rng)
    eps = 1e-6

    def loss():
        return float(np.sum(layer.forward(x) * gy))

    for array, grad in ((x, gx), (layer._params["weight"], layer._grads["weight"])):
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            old = array[idx]
            array[idx] = old + eps
            up = loss()
            array[idx] = old - eps
            numeric[idx] = (up - loss()) / (2 * eps)
            array[idx] = old
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_convolution_without_bias_and_known_values():
    layer = SpatialConvolution(1, 1, 3, padding=1, bias=False, dtype=np.float64)
    layer._params["weight"][...] = 0
    layer._params["weight"][0, 0, 1, 1] = 2.0          # picks the centre: y = 2x
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    np.testing.assert_allclose(layer.forward(x), 2 * x)
    gx = layer.backward(x, np.ones((1, 1, 3, 4)))
    np.testing.assert_allclose(gx, np.full((1, 1, 3, 4), 2.0))
    assert list(layer._grads) == ["weight"]
    assert layer._grads["weight"][0, 0, 1, 1] == pytest.approx(x.sum())
    assert layer._grads["weight"][0, 0, 0, 0] == pytest.approx(x[0, 0, :2, :3].sum())


def test_convolution_gradients_accumulate_and_follow_each_new_grad_output():
    rng = np.random.default_rng(3)
    layer = SpatialConvolution(2, 3, 3, padding=1, rng=4, dtype=np.float64)
    x = rng.standard_normal((2, 2, 5, 5))
    gy = rng.standard_normal((2, 3, 5, 5))
    layer.forward(x)
    layer.backward(x, gy)
    layer.backward(x, gy)
    _, ref_backward = naive_conv2d(x, layer._params["weight"], layer._params["bias"], (1, 1), (1, 1))
    np.testing.assert_allclose(layer._grads["weight"], 2 * ref_backward(gy)[1], **TOL)
    # A new batch whose grad_output reuses the same buffer: nothing stale may be reused.
    layer.zero_grad_parameters()
    x2 = rng.standard_normal(x.shape)
    layer.forward(x2)
    gy[...] = rng.standard_normal(gy.shape)
    gx = layer.backward(x2, gy)
    _, ref_backward = naive_conv2d(x2, layer._params["weight"], layer._params["bias"], (1, 1), (1, 1))
    ref_gx, ref_gw, ref_gb = ref_backward(gy)
    np.testing.assert_allclose(gx, ref_gx, **TOL)
    np.testing.assert_allclose(layer._grads["weight"], ref_gw, **TOL)
    np.testing.assert_allclose(layer._grads["bias"], ref_gb, **TOL)


def test_convolution_float32_stays_float32():
    rng = np.random.default_rng(4)
    for layer, shape in ((SpatialConvolution(1, 8, 5, padding=2), (4, 1, 12, 12)),
                         (TemporalConvolution(3, 4, 3, stride=2, padding=1), (4, 3, 19))):
        x = rng.standard_normal(shape).astype(np.float32)
        y = layer.forward(x)
        gx = layer.backward(x, np.ones_like(y), scale=0.1)
        assert y.dtype == gx.dtype == np.float32
        assert all(g.dtype == np.float32 for g in layer._grads.values())
        assert layer.to(np.float64).forward(x.astype(np.float64)).dtype == np.float64


def test_convolution_shape_errors_name_expected_and_actual_shapes():
    conv = SpatialConvolution(3, 8, 5)
    with pytest.raises(ShapeError, match=r"SpatialConvolution expected input \(N, 3, H, W\), got \(32, 28, 28\)"):
        conv.forward(np.zeros((32, 28, 28), np.float32))
    with pytest.raises(ShapeError, match=r"expected input \(N, 3, H, W\), got \(2, 1, 28, 28\)"):
        conv.forward(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ShapeError, match=r"expected input \(N, 3, H>=5, W>=5\) .*got \(2, 3, 4, 9\)"):
        conv.forward(np.zeros((2, 3, 4, 9), np.float32))
    x = np.zeros((2, 3, 9, 9), np.float32)
    conv.forward(x)
    with pytest.raises(ShapeError, match=r"expected grad_output \(2, 8, 5, 5\), got \(2, 8, 4, 4\)"):
        conv.backward(x, np.zeros((2, 8, 4, 4), np.float32))
    with pytest.raises(ShapeError, match=r"TemporalConvolution expected input \(N, 2, L>=3\) .*got \(1, 2, 2\)"):
        TemporalConvolution(2, 4, 5, padding=1).forward(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ShapeError, match=r"TemporalConvolution expected input \(N, 2, L\), got \(5, 2\)"):
        TemporalConvolution(2, 4, 3).forward(np.zeros((5, 2), np.float32))


@pytest.mark.parametrize("make", [
    lambda: SpatialConvolution(0, 8, 5), lambda: SpatialConvolution(1, 8, 0),
    lambda: SpatialConvolution(1, 8, (5, 5, 5)), lambda: SpatialConvolution(1, 8, 5, stride=(1, 0)),
    lambda: SpatialConvolution(1, 8, 5, padding=-1), lambda: TemporalConvolution(1, 2, (3, 3)),
    lambda: TemporalConvolution(1, 2.5, 3)])
def test_convolution_rejects_bad_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_convolution_repr_and_parameter_shapes():
    conv = SpatialConvolution(1, 8, 5)
    assert repr(conv) == "SpatialConvolution(1, 8, kernel_size=5)"   # defaults left out, as in a config
    assert conv._params["weight"].shape == (8, 1, 5, 5) and conv._params["bias"].shape == (8,)
    conv1d = TemporalConvolution(1, 25, 5, stride=2, padding=1, bias=False)
    assert repr(conv1d) == "TemporalConvolution(1, 25, kernel_size=5, stride=2, padding=1, bias=False)"
    assert conv1d._params["weight"].shape == (25, 1, 5) and conv1d.num_parameters() == 125


# --------------------------------------------------------------------------- pooling
POOL_CASES = [
    # (kernel, stride, padding, input (H, W))
    (2, None, 0, (6, 8)),          # the exact 2x2 tiling
    (2, None, 0, (7, 5)),          # leftover rows and columns get no gradient
    (3, 2, 1, (7, 6)),             # overlapping, padded
    ((2, 3), (1, 2), (1, 1), (5, 7)),
    (3, 1, 0, (5, 5)),             # every interior value in nine windows
    (2, 3, 0, (8, 8)),             # gaps between windows
]


@pytest.mark.parametrize("mode, cls", [("max", SpatialMaxPooling), ("mean", SpatialAveragePooling)])
@pytest.mark.parametrize("kernel, stride, padding, size", POOL_CASES)
def test_spatial_pooling_matches_naive_loops(mode, cls, kernel, stride, padding, size):
    rng = np.random.default_rng(5)
    layer = cls(kernel, stride, padding)
    x = rng.standard_normal((2, 3, *size))
    y, gy, gx = run(layer, x, rng)
    ref_y, ref_backward = naive_pool2d(x, layer.kernel_size, layer.stride, layer.padding, mode)
    np.testing.assert_allclose(y, ref_y, **TOL)
    np.testing.assert_allclose(gx, ref_backward(gy), **TOL)


@pytest.mark.parametrize("kernel, stride, padding, length",
                         [(2, None, 0, 10), (3, 2, 1, 9), (3, 1, 0, 7), (2, 3, 1, 11)])
def test_temporal_max_pooling_matches_naive_loops(kernel, stride, padding, length):
    rng = np.random.default_rng(6)
    layer = TemporalMaxPooling(kernel, stride, padding)
    x = rng.standard_normal((2, 3, length))
    y, gy, gx = run(layer, x, rng)
    ref_y, ref_backward = naive_pool2d(x[:, :, None], (1, kernel), (1, stride or kernel), (0, padding), "max")
    np.testing.assert_allclose(y, ref_y[:, :, 0], **TOL)
    np.testing.assert_allclose(gx, ref_backward(gy[:, :, None])[:, :, 0], **TOL)


def test_max_pooling_ties_go_to_the_first_and_overlaps_accumulate():
    pool = SpatialMaxPooling(2)
    x = np.ones((1, 1, 2, 4))
    pool.forward(x)
    gx = pool.backward(x, np.array([[[[3.0, 5.0]]]]))
    np.testing.assert_array_equal(gx, [[[[3, 0, 5, 0], [0, 0, 0, 0]]]])
    # maxima on the anti-diagonal: the first in row-major order wins (row 0, column 1), as in PyTorch,
    # although the column-first stage alone would prefer column 0
    x = np.array([[[[0.0, 5.0], [5.0, 0.0]]]])
    np.testing.assert_array_equal(pool.forward(x), [[[[5.0]]]])
    np.testing.assert_array_equal(pool.backward(x, np.array([[[[7.0]]]])), [[[[0, 7], [0, 0]]]])
    x = np.array([[[[1.0, 2.0, 9.0], [9.0, 0.0, 9.0], [3.0, 9.0, 4.0]]]])   # three offsets per axis
    np.testing.assert_array_equal(SpatialMaxPooling(3).backward(x, np.ones((1, 1, 1, 1))),
                                  [[[[0, 0, 1], [0, 0, 0], [0, 0, 0]]]])
    pool1d = TemporalMaxPooling(3, stride=1)
    x = np.array([[[0.0, 5.0, 1.0, 2.0]]])
    np.testing.assert_array_equal(pool1d.forward(x), [[[5.0, 5.0]]])
    np.testing.assert_array_equal(pool1d.backward(x, np.array([[[1.0, 10.0]]])), [[[0, 11, 0, 0]]])


def test_average_pooling_counts_padding_zeros():
    pool = SpatialAveragePooling(2, stride=2, padding=1)
    y = pool.forward(np.ones((1, 1, 2, 2)))
    np.testing.assert_allclose(y, np.full((1, 1, 2, 2), 0.25))
    np.testing.assert_allclose(pool.backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2))),
                               np.full((1, 1, 2, 2), 0.25))


def test_pooling_float32_stays_float32_and_has_no_parameters():
    x = np.random.default_rng(7).standard_normal((2, 3, 6, 6)).astype(np.float32)
    for layer, inp in ((SpatialMaxPooling(2), x), (SpatialAveragePooling(3, 1, 1), x),
                       (TemporalMaxPooling(2), x[:, :, 0])):
        y = layer.forward(inp)
        assert y.dtype == layer.backward(inp, np.ones_like(y)).dtype == np.float32
        assert layer.num_parameters() == 0


def test_pooling_shape_errors_and_bad_arguments():
    with pytest.raises(ShapeError, match=r"SpatialMaxPooling expected input \(N, C, H, W\), got \(32, 28, 28\)"):
        SpatialMaxPooling(2).forward(np.zeros((32, 28, 28), np.float32))
    with pytest.raises(ShapeError, match=r"expected input \(N, C, H>=3, W>=3\) .*got \(1, 2, 2, 5\)"):
        SpatialAveragePooling(3).forward(np.zeros((1, 2, 2, 5), np.float32))
    with pytest.raises(ShapeError, match=r"TemporalMaxPooling expected input \(N, C, L\), got \(4, 10\)"):
        TemporalMaxPooling(2).forward(np.zeros((4, 10), np.float32))
    x = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(ShapeError, match=r"expected grad_output \(1, 2, 2, 2\), got \(1, 2, 4, 4\)"):
        SpatialMaxPooling(2).backward(x, x)
    for make in (lambda: SpatialMaxPooling(0), lambda: SpatialMaxPooling(2, padding=2),
                 lambda: SpatialAveragePooling((2, 2, 2)), lambda: TemporalMaxPooling(2, stride=0)):
        with pytest.raises(ValueError):
            make()


def test_pooling_reprs():
    assert repr(SpatialMaxPooling(2)) == "SpatialMaxPooling(kernel_size=2)"
    assert repr(SpatialAveragePooling(3, 2, 1)) == \
        "SpatialAveragePooling(kernel_size=3, stride=2, padding=1)"
    assert repr(TemporalMaxPooling(2)) == "TemporalMaxPooling(kernel_size=2)"
    assert repr(SpatialConvolution(2, 3, (3, 2), stride=2)) == "SpatialConvolution(2, 3, kernel_size=(3, 2), stride=2)"


# --------------------------------------------------------------------------- PyTorch's options, naively
def naive_grouped_conv2d(x, w, b, stride, pads, dilation, groups, mode="constant"):
    """``y[n, o, r, q] = b[o] + sum over o's group of w * x`` at dilated taps, by loops."""
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0)) + pads, mode=mode)
    n, c = x.shape[:2]
    o, cg, kh, kw = w.shape
    og = o // groups
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, o, ho, wo))
    for f in range(o):
        g = f // og
        for r in range(ho):
            for q in range(wo):
                taps = xp[:, g * cg:(g + 1) * cg, r * sh:r * sh + dh * (kh - 1) + 1:dh, q * sw:q * sw + dw * (kw - 1) + 1:dw]
                y[:, f, r, q] = np.sum(taps * w[f], axis=(1, 2, 3)) + b[f]
    return y


@pytest.mark.parametrize("args, kwargs, shape, pads, mode", [
    ((4, 6, 3, 1, 2), dict(dilation=2, groups=2), (2, 4, 7, 6), ((2, 2), (2, 2)), "constant"),
    ((3, 6, (3, 2), 2, 1), dict(dilation=(1, 2), groups=3), (2, 3, 7, 8), ((1, 1), (1, 1)), "constant"),
    ((2, 3, (2, 4)), dict(padding="same", dilation=(1, 2)), (1, 2, 5, 9), ((0, 1), (3, 3)), "constant"),
    ((2, 2, 3, 1, (1, 2)), dict(padding_mode="reflect"), (2, 2, 4, 5), ((1, 1), (2, 2)), "reflect"),
    ((2, 2, 3, 1, 2), dict(padding_mode="replicate"), (1, 2, 3, 4), ((2, 2), (2, 2)), "edge"),
    ((2, 2, 3, 1, 1), dict(padding_mode="circular", groups=2), (1, 2, 4, 3), ((1, 1), (1, 1)), "wrap"),
])
def test_dilated_grouped_and_padded_convolutions_match_the_loops(args, kwargs, shape, pads, mode):
    layer = conv_module.Conv2d(*args, **kwargs, rng=0, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal(shape)
    want = naive_grouped_conv2d(x, layer.weight, layer.bias, layer.stride, pads, layer.dilation, layer.groups, mode)
    np.testing.assert_allclose(layer.forward(x), want, **TOL)


def test_conv_positional_orders_are_each_names_own():
    pytorch = conv_module.Conv2d(4, 6, 3, 1, 0, 2)                  # dilation 2, as in PyTorch
    torch7 = conv_module.SpatialConvolution(4, 6, 3, 1, 0, False)    # bias False, as before
    assert pytorch.dilation == (2, 2) and pytorch.has_bias and torch7.dilation == (1, 1) and not torch7.has_bias
    assert conv_module.Conv1d(2, 4, 3, 1, 0, 1, 2, False).groups == 2
    assert repr(conv_module.Conv2d(4, 4, 3, padding="same", groups=4, padding_mode="reflect")) == (
        "Conv2d(4, 4, kernel_size=3, padding='same', groups=4, padding_mode='reflect')")


def naive_max_pool(x, k, s, p, d, ceil_mode):
    """Max over dilated windows of the -inf padded input, with PyTorch's output size rule, by loops."""
    n = x.shape[-1]
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    xp = np.pad(x, ((0, 0), (0, 0), (p, p + d * k + s)), constant_values=-np.inf)
    return np.stack([xp[..., i * s:i * s + d * (k - 1) + 1:d].max(axis=-1) for i in range(out)], axis=-1)


@pytest.mark.parametrize("k, s, p, d, ceil_mode, length", [
    (3, 2, 1, 2, True, 10), (2, 2, 0, 1, True, 7), (3, 1, 1, 3, False, 9), (2, 3, 1, 1, True, 8)])
def test_max_pooling_with_dilation_and_ceil_mode_matches_the_loops(k, s, p, d, ceil_mode, length):
    from backprop_cli.nn.pooling import MaxPool1d
    x = np.random.default_rng(2).standard_normal((2, 3, length))
    np.testing.assert_allclose(MaxPool1d(k, s, p, d, False, ceil_mode).forward(x),
                               naive_max_pool(x, k, s, p, d, ceil_mode), **TOL)


def test_average_pooling_divisors_follow_pytorch():
    from backprop_cli.nn.pooling import AdaptiveAvgPool2d, AvgPool1d, AvgPool2d
    x = np.arange(5.0).reshape(1, 1, 5)
    # windows [pad, 0, 1], [1, 2, 3], [3, 4, pad]: counting the padding, or not; ceil_mode adds [4 + past]
    np.testing.assert_allclose(AvgPool1d(3, 2, 1).forward(x), [[[1 / 3, 2, 7 / 3]]])
    np.testing.assert_allclose(AvgPool1d(3, 2, 1, count_include_pad=False).forward(x), [[[0.5, 2, 3.5]]])
    np.testing.assert_allclose(AvgPool1d(2, 2, 0, ceil_mode=True).forward(x), [[[0.5, 2.5, 4]]])
    assert AvgPool2d(2, divisor_override=1).forward(np.ones((1, 1, 2, 2))).item() == 4.0
    images = np.random.default_rng(3).standard_normal((2, 3, 5, 7))
    np.testing.assert_allclose(AdaptiveAvgPool2d(1).forward(images)[..., 0, 0], images.mean(axis=(2, 3)), **TOL)
    np.testing.assert_allclose(AdaptiveAvgPool2d((5, 7)).forward(images), images, **TOL)
