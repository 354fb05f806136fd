"""Containers: Sequential (a chain) and Residual (``y = x + f(x)``)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .module import Module, ShapeError, shape_str


def _in_layer(index: int, module: Module, err: Exception) -> Exception:
    """The same kind of error, prefixed with the layer that raised it."""
    new = type(err)(f"layer {index} ({module.one_line()}): {err}")
    new.__cause__ = err
    return new


def _may_have_parameters(module: Module) -> bool:
    """A cheap test, run every step: False only for a module that has no parameters and no children."""
    return bool(module._params) or bool(module.children())


def _backward_overwriting(layer: Module, input, grad_output, scale) -> np.ndarray:
    """``layer.zero_grad_parameters()`` then ``layer.backward(...)``; a leaf does it as
    ``update_grad_input`` and an overwriting ``backward_parameters``, which may skip the zeroing."""
    if layer.children():
        layer.zero_grad_parameters()
        return layer.backward(input, grad_output, scale)
    grad_input = layer.update_grad_input(input, grad_output)
    layer.backward_parameters(input, grad_output, scale, accumulate=False)
    layer.grad_input = grad_input
    return grad_input


class Sequential(Module):
    """``y = f_n(... f_2(f_1(x)))``; backward walks the chain in reverse.

    Example: ``Sequential(Linear(784, 256), ReLU(), Linear(256, 10), LogSoftMax())``.
    Errors name the layer: ``layer 2 (Linear(in_features=256, ...)): Linear expected ...``.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
            modules = tuple(modules[0])
        for m in modules:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes modules, got {type(m).__name__}")
        self.layers: list[Module] = list(modules)

    def layer_shapes(self, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The per-sample output shape after each layer (``backprop summary`` prints them)."""
        return [tuple(layer.output.shape[1:]) for layer in self.probe(input_shape).layers]

    def add(self, module: Module) -> Sequential:
        """Append a module (Torch7 ``add``); returns self so calls chain."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential takes modules, got {type(module).__name__}")
        self.layers.append(module)
        return self

    def children(self):
        return self.layers

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def update_output(self, input):
        x = input
        for i, layer in enumerate(self.layers):
            try:
                x = layer.forward(x)
            except (ValueError, TypeError) as err:
                raise _in_layer(i, layer, err) from None
        return x

    def backward(self, input, grad_output, scale=1.0):
        """Each layer's ``backward`` from the last to the first, its input being its predecessor's output."""
        g = grad_output
        for i in range(len(self.layers) - 1, -1, -1):
            layer_input = self.layers[i - 1].output if i > 0 else input
            try:
                g = self.layers[i].backward(layer_input, g, scale)
            except (ValueError, TypeError) as err:
                raise _in_layer(i, self.layers[i], err) from None
        self.grad_input = g
        return g

    def backward_parameters(self, input, grad_output, scale=1.0, *, accumulate=True):
        """``backward`` without dLoss/dInput: from the last layer down to the first one with parameters,
        which only computes its parameter gradients; the layers before it have nothing to do."""
        for _ in self.parameter_steps(input, grad_output, scale, accumulate=accumulate):
            pass

    def parameter_steps(self, input, grad_output, scale=1.0, *, accumulate=True) -> Iterator[int]:
        """:meth:`backward_parameters` one layer at a time: yields each layer's index once its step is
        done, last layer first (``backprop time`` times the steps so). The layers before the first one
        with parameters have no step."""
        layers = self.layers
        first = next((i for i, layer in enumerate(layers) if _may_have_parameters(layer)), len(layers))
        g = grad_output
        for i in range(len(layers) - 1, first - 1, -1):
            layer, layer_input = layers[i], layers[i - 1].output if i > 0 else input
            try:
                if i == first:
                    layer.backward_parameters(layer_input, g, scale, accumulate=accumulate)
                elif accumulate or not _may_have_parameters(layer):
                    g = layer.backward(layer_input, g, scale)
                else:
                    g = _backward_overwriting(layer, layer_input, g, scale)
            except (ValueError, TypeError) as err:
                raise _in_layer(i, layer, err) from None
            yield i
        for layer in layers[:first]:
            layer.grad_input = None
        self.grad_input = None

    def update_grad_input(self, input, grad_output):
        """``grad_input = J_1^T (J_2^T (... J_n^T grad_output))``."""
        g = grad_output
        for i in range(len(self.layers) - 1, -1, -1):
            layer_input = self.layers[i - 1].output if i > 0 else input
            g = self.layers[i].grad_input = self.layers[i].update_grad_input(layer_input, g)
        return g

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        """Each layer accumulates with the grad_output its successor passed back (from update_grad_input)."""
        for i, layer in enumerate(self.layers):
            layer_input = self.layers[i - 1].output if i > 0 else input
            layer_grad = self.layers[i + 1].grad_input if i + 1 < len(self.layers) else grad_output
            layer.acc_grad_parameters(layer_input, layer_grad, scale)

    def __repr__(self):
        if not self.layers:
            return "Sequential()"
        lines = [f"  ({i}): " + repr(m).replace("\n", "\n  ") for i, m in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"


class Residual(Module):
    """``y = x + f(x)`` (Torch7 builds it as ConcatTable(f, Identity) followed by CAddTable).

    Shape: ``f`` must map its input to the same shape. Example: ``Residual(Sequential(Linear(8, 8), ReLU()))``.
    """

    def __init__(self, block: Module) -> None:
        super().__init__()
        if not isinstance(block, Module):
            raise TypeError(f"Residual takes a module, got {type(block).__name__}")
        self.block = block

    def children(self):
        return [self.block]

    def update_output(self, input):
        try:
            fx = self.block.forward(input)
        except (ValueError, TypeError) as err:
            raise _in_layer(0, self.block, err) from None
        if fx.shape != input.shape:
            raise ShapeError(f"Residual block must keep the shape: input {shape_str(input.shape)}, "
                             f"block output {shape_str(fx.shape)}")
        return input + fx

    def backward(self, input, grad_output, scale=1.0):
        self.grad_input = grad_output + self.block.backward(input, grad_output, scale)
        return self.grad_input

    def backward_parameters(self, input, grad_output, scale=1.0, *, accumulate=True):
        self.grad_input = None
        self.block.backward_parameters(input, grad_output, scale, accumulate=accumulate)

    def update_grad_input(self, input, grad_output):
        """``grad_input = grad_output + J_f^T grad_output``."""
        return grad_output + self.block.update_grad_input(input, grad_output)

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        self.block.acc_grad_parameters(input, grad_output, scale)

    def __repr__(self):
        return "Residual(\n  " + repr(self.block).replace("\n", "\n  ") + "\n)"


def first_non_finite(model: Module) -> str | None:
    """Name the first layer (in forward order) whose cached output, or gradient, is not finite."""
    layers = model.layers if isinstance(model, Sequential) else [model]
    for i, layer in enumerate(layers):
        if layer.output is not None and not np.all(np.isfinite(layer.output)):
            return f"layer {i} ({type(layer).__name__}) output"
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if layer.grad_input is not None and not np.all(np.isfinite(layer.grad_input)):
            return f"layer {i} ({type(layer).__name__}) gradient"
        for name, _, grad in layer.named_parameters():
            if not np.all(np.isfinite(grad)):
                return f"layer {i} ({type(layer).__name__}) {name} gradient"
    return None
