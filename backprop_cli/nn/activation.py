"""Element-wise non-linearities and the (log-)softmax over classes.

Each backward is the chain rule with the local derivative written beside it:
``grad_input = grad_output * f'(x)``. Every shape maps to itself.

``inplace=True`` (PyTorch's argument) is accepted and changes nothing: the output is always a new
array, because backward reads the input (or the output) that PyTorch's in-place version overwrites.
"""

from __future__ import annotations

import numpy as np

from .functional import log_softmax, normal_cdf, sigmoid, softmax
from .module import ANY_RANK, CLASS_RANKS, Module, ShapeError, check_array, shape_str


def _float(name: str, x: np.ndarray) -> np.ndarray:
    return check_array(name, x, ANY_RANK, "(N, ...)")


class _Elementwise(Module):
    """What the element-wise layers share: PyTorch's ``inplace`` flag, accepted as a no-op."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = bool(inplace)

    def _inplace_repr(self) -> str:
        return "inplace=True" if self.inplace else ""

    def extra_repr(self):
        return self._inplace_repr()


def _join(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


class ReLU(_Elementwise):
    """``y = max(0, x)``. Example: ``Sequential(Linear(4, 8), ReLU())``."""

    def update_output(self, input):
        return np.maximum(_float("ReLU", input), 0)

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * (x > 0)``."""
        return grad_output * (input > 0)


class LeakyReLU(_Elementwise):
    """``y = x if x > 0 else negative_slope * x``."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__(inplace)
        self.negative_slope = float(negative_slope)

    def update_output(self, input):
        _float("LeakyReLU", input)
        return np.where(input > 0, input, input * input.dtype.type(self.negative_slope))

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * (1 if x > 0 else negative_slope)``."""
        return np.where(input > 0, grad_output, grad_output * grad_output.dtype.type(self.negative_slope))

    def extra_repr(self):
        return _join(f"negative_slope={self.negative_slope}", self._inplace_repr())


class ELU(_Elementwise):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__(inplace)
        self.alpha = float(alpha)

    def update_output(self, input):
        _float("ELU", input)
        a = input.dtype.type(self.alpha)
        return np.where(input > 0, input, a * np.expm1(np.minimum(input, 0)))

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * (1 if x > 0 else y + alpha)``."""
        a = input.dtype.type(self.alpha)
        return np.where(input > 0, grad_output, grad_output * (self.output + a))

    def extra_repr(self):
        return _join(f"alpha={self.alpha}", self._inplace_repr())


class Tanh(Module):
    """``y = tanh(x)``."""

    def update_output(self, input):
        return np.tanh(_float("Tanh", input))

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * (1 - y**2)``."""
        y = self.output
        return grad_output * (1 - y * y)


class Sigmoid(Module):
    """``y = 1 / (1 + exp(-x))``, computed without overflow for large ``|x|``."""

    def update_output(self, input):
        return sigmoid(_float("Sigmoid", input))

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * y * (1 - y)``."""
        y = self.output
        return grad_output * y * (1 - y)


class SoftPlus(Module):
    """``y = log(1 + exp(beta * x)) / beta``; linear (``y = x``) where ``beta * x > threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = float(beta), float(threshold)

    def update_output(self, input):
        _float("SoftPlus", input)
        bx = input * input.dtype.type(self.beta)
        return np.where(bx > self.threshold, input, np.logaddexp(0, bx) / input.dtype.type(self.beta))

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * sigmoid(beta * x)`` (1 past the threshold)."""
        bx = input * input.dtype.type(self.beta)
        return np.where(bx > self.threshold, grad_output, grad_output * sigmoid(bx))

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class SiLU(_Elementwise):
    """``y = x * sigmoid(x)`` (the swish). Example: ``Sequential(Linear(4, 8), SiLU())``."""

    def update_output(self, input):
        return _float("SiLU", input) * sigmoid(input)

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * s * (1 + x * (1 - s))``, ``s = sigmoid(x)``."""
        s = sigmoid(input)
        return grad_output * s * (1 + input * (1 - s))


#: ``sqrt(2 / pi)`` and the cubic coefficient of GELU's tanh approximation.
_GELU_K, _GELU_C = np.sqrt(2.0 / np.pi), 0.044715


class GELU(Module):
    """``y = x * Phi(x)``, ``Phi`` the standard normal CDF; ``approximate="tanh"``:
    ``y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    Example: ``Sequential(Linear(16, 64), GELU(), Linear(64, 16))``.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def _tanh_inner(self, x):
        return np.tanh(x.dtype.type(_GELU_K) * (x + x.dtype.type(_GELU_C) * x * x * x))

    def update_output(self, input):
        _float("GELU", input)
        if self.approximate == "tanh":
            return 0.5 * input * (1 + self._tanh_inner(input))
        return input * normal_cdf(input)

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * (Phi(x) + x phi(x))`` (tanh: ``0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3c x^2)``)."""
        x = input
        if self.approximate == "tanh":
            t = self._tanh_inner(x)
            k, c = x.dtype.type(_GELU_K), x.dtype.type(3 * _GELU_C)
            return grad_output * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + c * x * x))
        pdf = np.exp(-0.5 * x * x) * x.dtype.type(1 / np.sqrt(2 * np.pi))
        return grad_output * (normal_cdf(x) + x * pdf)

    def extra_repr(self):
        return "" if self.approximate == "none" else f"approximate={self.approximate!r}"


class Hardtanh(_Elementwise):
    """``y = min(max(x, min_val), max_val)``.

    ``min_value``/``max_value`` are PyTorch's deprecated spellings of ``min_val``/``max_val``.
    Example: ``Hardtanh(-2.0, 2.0)``.
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None) -> None:
        super().__init__(inplace)
        self.min_val = float(min_val if min_value is None else min_value)
        self.max_val = float(max_val if max_value is None else max_value)
        if not self.max_val > self.min_val:
            raise ValueError(f"Hardtanh max_val must be greater than min_val, got min_val={self.min_val}, "
                             f"max_val={self.max_val}")

    def update_output(self, input):
        return np.clip(_float("Hardtanh", input), self.min_val, self.max_val)

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * (min_val < x < max_val)``."""
        return grad_output * ((input > self.min_val) & (input < self.max_val))

    def extra_repr(self):
        return _join(f"min_val={self.min_val}, max_val={self.max_val}", self._inplace_repr())


class _SoftmaxBase(Module):
    """The softmax family: over ``dim`` (PyTorch's argument; any axis, negative counts from the end),
    or over the class axis 1 when ``dim`` is None (Torch7's choice, and PyTorch's for 2-D and 4-D
    inputs; PyTorch's legacy rule takes axis 0 for 3-D inputs)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer))):
            raise TypeError(f"{type(self).__name__} dim must be an int or None, got {dim!r}")
        self.dim = None if dim is None else int(dim)

    def _axis(self, input) -> int:
        """The axis normalised over, checked against the input's rank."""
        name = type(self).__name__
        if self.dim is None:
            check_array(name, input, CLASS_RANKS, "(N, C, ...)")
            return 1
        check_array(name, input, ANY_RANK, "(N, ...)")
        if not -input.ndim <= self.dim < input.ndim:
            raise ShapeError(f"{name} dim={self.dim} is out of range for input {shape_str(input.shape)}")
        return self.dim % input.ndim

    def extra_repr(self):
        return "" if self.dim is None else f"dim={self.dim}"


class SoftMax(_SoftmaxBase):
    """``y_i = exp(x_i - max x) / sum_j exp(x_j - max x)`` over the class axis 1 (or ``dim``).

    Shape: ``(N, C) -> (N, C)`` (or ``(N, C, ...)``, normalised over ``C``).
    """

    def update_output(self, input):
        return softmax(input, self._axis(input))

    def update_grad_input(self, input, grad_output):
        """``grad_input = y * (grad_output - sum_j grad_output_j * y_j)``."""
        y = self.output
        return y * (grad_output - (grad_output * y).sum(axis=self._axis(input), keepdims=True))


class LogSoftMax(_SoftmaxBase):
    """``y_i = x_i - max x - log sum_j exp(x_j - max x)`` over axis 1 (or ``dim``): finite for logits of +-1000.

    Shape: ``(N, C) -> (N, C)`` (or ``(N, C, ...)``). Pair with ClassNLLCriterion.
    """

    def update_output(self, input):
        return log_softmax(input, self._axis(input))

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output - exp(y) * sum_j grad_output_j``."""
        return grad_output - np.exp(self.output) * grad_output.sum(axis=self._axis(input), keepdims=True)
