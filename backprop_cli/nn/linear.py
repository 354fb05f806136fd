"""Affine and shape-only layers: Linear, Identity, Reshape/View, Flatten."""

from __future__ import annotations

import math

import numpy as np

from .init import init_bias, init_weight, make_rng
from .module import ANY_RANK, DEFAULT_DTYPE, Module, ShapeError, check_array, shape_str


class Linear(Module):
    """``y = x @ W.T + b``, with ``W`` shaped ``(out_features, in_features)``, over the last axis.

    Shape: ``(N, in_features) -> (N, out_features)``; ``(N, *, in_features) -> (N, *, out_features)``
    as in PyTorch (every leading axis is a batch axis).
    Example: ``Linear(784, 256)`` maps a batch of flattened 28x28 images to 256 features.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 init: str = "default", rng=None, dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear sizes must be positive, got ({in_features}, {out_features})")
        rng = make_rng(rng)
        self.in_features, self.out_features, self.init = in_features, out_features, init
        self.add_parameter(
            "weight", init_weight(init, (out_features, in_features), in_features, out_features, rng, dtype))
        self.has_bias = bias
        if bias:
            self.add_parameter("bias", init_bias(init, out_features, in_features, rng, dtype))
        self._gw: tuple | None = None               # scratch for one batch's (weight, bias) gradients

    def update_output(self, input):
        check_array("Linear", input, ANY_RANK, f"(N, {self.in_features})")
        if input.shape[-1] != self.in_features:
            raise ShapeError(f"Linear expected input (N, {self.in_features}), got {shape_str(input.shape)}")
        out = _rows(input) @ self._params["weight"].T
        if self.has_bias:
            out += self._params["bias"]
        return out.reshape(input.shape[:-1] + (self.out_features,))

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output @ W``."""
        self._check_grad_output(input, grad_output)
        return (_rows(grad_output) @ self._params["weight"]).reshape(input.shape)

    def acc_grad_parameters(self, input, grad_output, scale=1.0, *, overwrite=False):
        """``grad_weight += scale * grad_output.T @ input``; ``grad_bias += scale * grad_output.sum(0)``.

        ``overwrite=True``: ``=`` instead of ``+=``, the product written straight into place (no zeroing
        pass, no temporary) when the dtypes agree.
        """
        self._check_grad_output(input, grad_output)
        weight, bias = self._grads["weight"], self._grads.get("bias")
        if overwrite and input.dtype == grad_output.dtype == weight.dtype:
            self._write_grads(_rows(input), _rows(grad_output), scale, weight, bias)
            return
        if overwrite:
            self.zero_grad_parameters()
        scratch_weight, scratch_bias = self._scratch(np.result_type(grad_output, input))
        self._write_grads(_rows(input), _rows(grad_output), scale, scratch_weight, scratch_bias)
        weight += scratch_weight
        if bias is not None:
            bias += scratch_bias

    @staticmethod
    def _write_grads(input, grad_output, scale, weight_out, bias_out) -> None:
        """``weight_out = scale * grad_output.T @ input``; ``bias_out = scale * grad_output.sum(0)``."""
        np.matmul(grad_output.T, input, out=weight_out)
        if scale != 1.0:
            weight_out *= scale
        if bias_out is not None:
            np.add.reduce(grad_output, axis=0, out=bias_out)        # np.sum, without its wrapper
            if scale != 1.0:
                bias_out *= scale

    def _scratch(self, dtype) -> tuple[np.ndarray, np.ndarray | None]:
        """Arrays for one batch's weight and bias gradients, kept from call to call: fresh ones would
        cost an allocation (and, this large, page faults) every step."""
        if self._gw is None or self._gw[0].dtype != dtype:
            self._gw = (np.empty((self.out_features, self.in_features), dtype),
                        np.empty(self.out_features, dtype) if self.has_bias else None)
        return self._gw

    def _clear(self):
        self._gw = None

    def _check_grad_output(self, input, grad_output):
        expected = input.shape[:-1] + (self.out_features,)
        if grad_output.shape != expected:
            raise ShapeError(f"Linear expected grad_output {shape_str(expected)}, "
                             f"got {shape_str(grad_output.shape)}")

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}"
                + ("" if self.has_bias else ", bias=False"))


def _rows(x: np.ndarray) -> np.ndarray:
    """``(N, *, F) -> (N*..., F)``: a 2-D array as is, else every leading axis folded into the rows."""
    return x if x.ndim == 2 else x.reshape(-1, x.shape[-1])


class Identity(Module):
    """``y = x``. Shape: any -> the same.

    Takes and ignores any arguments, as PyTorch's ``Identity`` does (so it can stand in for a layer).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def update_output(self, input):
        return input

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output``."""
        return grad_output


class Reshape(Module):
    """Reshape each sample, keeping the batch axis: ``(N, *in) -> (N, *shape)``.

    One entry of ``shape`` may be -1 (inferred). Torch7 ``nn.Reshape`` / ``nn.View``.
    Example: ``Reshape(1, 28, 28)`` turns ``(N, 784)`` into images for a convolution.
    """

    def __init__(self, *shape: int) -> None:
        super().__init__()
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if not shape or sum(1 for s in shape if s == -1) > 1 or any(s == 0 or s < -1 for s in shape):
            raise ValueError(f"{type(self).__name__} needs positive sizes and at most one -1, got {shape}")
        self.shape = tuple(int(s) for s in shape)

    def update_output(self, input):
        check_array(type(self).__name__, input, ANY_RANK, "(N, ...)")
        per_sample = math.prod(input.shape[1:])
        known = math.prod(s for s in self.shape if s != -1)
        if (-1 in self.shape and per_sample % known) or (-1 not in self.shape and known != per_sample):
            raise ShapeError(f"{type(self).__name__}{shape_str(self.shape)} cannot hold samples of "
                             f"{shape_str(input.shape[1:])} ({per_sample} values), got {shape_str(input.shape)}")
        return input.reshape((input.shape[0],) + self.shape)

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output`` reshaped back to the input's shape."""
        return grad_output.reshape(input.shape)

    def extra_repr(self):
        return ", ".join(str(s) for s in self.shape)


class View(Reshape):
    """Same as :class:`Reshape` (Torch7 distinguishes copy from view; numpy reshapes view when it can)."""


class Flatten(Module):
    """Axes ``start_dim`` to ``end_dim`` (inclusive; negative count from the end) folded into one.

    Shape: ``(N, d1, d2, ...) -> (N, d1*d2*...)`` with the defaults ``start_dim=1, end_dim=-1``
    (PyTorch's; the batch axis is kept).
    Example: ``Flatten()`` maps ``(N, 8, 4, 4)`` to ``(N, 128)``; ``Flatten(2)`` maps it to ``(N, 8, 16)``.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        for what, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Flatten {what} must be an int, got {value!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def update_output(self, input):
        check_array("Flatten", input, ANY_RANK, "(N, ...)")
        n = input.ndim
        if not (-n <= self.start_dim < n and -n <= self.end_dim < n) or self.start_dim % n > self.end_dim % n:
            raise ShapeError(f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) does not fit input "
                             f"{shape_str(input.shape)}")
        start, end = self.start_dim % n, self.end_dim % n + 1
        return input.reshape(input.shape[:start] + (math.prod(input.shape[start:end]),) + input.shape[end:])

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output`` reshaped back to the input's shape."""
        return grad_output.reshape(input.shape)

    def extra_repr(self):
        return "" if (self.start_dim, self.end_dim) == (1, -1) else f"start_dim={self.start_dim}, end_dim={self.end_dim}"
