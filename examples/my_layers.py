"""Two layers written outside backprop, loaded by a config's ``plugins: [my_layers.py]``.

The tutorial docs/writing-a-module.md builds them step by step; the test suite runs it.
"""

import numpy as np

from backprop_cli import nn


class Scale(nn.Module):
    """``y = a * x + b``: a learned scale ``a`` and shift ``b`` per feature (Torch7: CMul, then Add).

    Shape: ``(N, num_features) -> (N, num_features)``.
    Example: ``Scale(128)`` after ``Linear(64, 128)``; in a config just ``Scale`` (the size is inferred).
    """

    def __init__(self, num_features: int, *, dtype=np.float32):
        super().__init__()
        self.add_parameter("weight", np.ones(num_features, dtype=dtype))     # a, gradient in grad_weight
        self.add_parameter("bias", np.zeros(num_features, dtype=dtype))      # b, gradient in grad_bias

    def update_output(self, input):
        return input * self.weight + self.bias

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output * a``."""
        return grad_output * self.weight

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        """``grad_weight += scale * sum_n grad_output * x``; ``grad_bias += scale * sum_n grad_output``."""
        self.grad_weight += scale * (grad_output * input).sum(axis=0)
        self.grad_bias += scale * grad_output.sum(axis=0)


class SoftSign(nn.Module):
    """``y = x / (1 + |x|)``: squashes like Tanh, with gentler tails (Torch7 ``nn.SoftSign``).

    Shape: any -> the same.
    """

    def update_output(self, input):
        return input / (1 + np.abs(input))

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output / (1 + |x|)**2``."""
        return grad_output / (1 + np.abs(input)) ** 2
