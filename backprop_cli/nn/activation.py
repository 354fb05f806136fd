"""Element-wise non-linearities and the (log-)softmax over classes.

Each backward is the chain rule with the local derivative written beside it:
``grad_input = grad_output * f'(x)``. Every shape maps to itself.
"""

from __future__ import annotations

import numpy as np

from .functional import log_softmax, sigmoid, softmax
from .module import ANY_RANK, CLASS_RANKS, Module, check_array


def _float(name: str, x: np.ndarray) -> np.ndarray:
    return check_array(name, x, ANY_RANK, "(N, ...)")


class ReLU(Module):
    """``y = max(0, x)``. Example: ``Sequential(Linear(4, 8), ReLU())``."""

    def update_output(self, input):
        return np.maximum(_float("ReLU", input), 0)

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * (x > 0)``."""
        return grad_output * (input > 0)


class LeakyReLU(Module):
    """``y = x if x > 0 else negative_slope * x``."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def update_output(self, input):
        _float("LeakyReLU", input)
        return np.where(input > 0, input, input * input.dtype.type(self.negative_slope))

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * (1 if x > 0 else negative_slope)``."""
        return np.where(input > 0, grad_output, grad_output * grad_output.dtype.type(self.negative_slope))

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
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
        return f"alpha={self.alpha}"


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


class SoftMax(Module):
    """``y_i = exp(x_i - max x) / sum_j exp(x_j - max x)`` over the class axis 1.

    Shape: ``(N, C) -> (N, C)`` (or ``(N, C, ...)``, normalised over ``C``).
    """

    def update_output(self, input):
        return softmax(check_array("SoftMax", input, CLASS_RANKS, "(N, C, ...)"))

    def update_grad_input(self, input, grad_output):
        """``grad_input = y * (grad_output - sum_j grad_output_j * y_j)``."""
        y = self.output
        return y * (grad_output - (grad_output * y).sum(axis=1, keepdims=True))


class LogSoftMax(Module):
    """``y_i = x_i - max x - log sum_j exp(x_j - max x)`` over axis 1: finite for logits of +-1000.

    Shape: ``(N, C) -> (N, C)`` (or ``(N, C, ...)``). Pair with ClassNLLCriterion.
    """

    def update_output(self, input):
        return log_softmax(check_array("LogSoftMax", input, CLASS_RANKS, "(N, C, ...)"))

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output - exp(y) * sum_j grad_output_j``."""
        return grad_output - np.exp(self.output) * grad_output.sum(axis=1, keepdims=True)
