"""Containers: Sequential (a chain) and Residual (``y = x + f(x)``).

Backward through a container is one walk, :meth:`Sequential.backward_steps`, whatever is asked of
it: ``backward`` (dLoss/dInput and the parameter gradients), ``update_grad_input`` (dLoss/dInput
alone), ``acc_grad_parameters`` (the parameter gradients alone, optionally set instead of added:
the engine's step). Each child takes the walk's one step, ``Module._backprop``; a layer keeps only
the Torch7 contract.

A module may sit at several places (``lin = Linear(4, 4); Sequential(lin, ReLU(), lin)``): the
weights are shared, as in PyTorch. A container keeps each child's state as its forward left it (its
input, output and caches) and gives it back before that use's backward, so each use is
differentiated at its own input, and both uses' gradients add into the one ``grad_weight``.
``parameters()`` lists a shared array once, so an optimizer steps it once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .module import Module, ShapeError, shape_str


def _in_layer(index: int, module: Module, err: Exception) -> Exception:
    """The same kind of error, prefixed with the layer that raised it (the original is its ``__cause__``)."""
    try:
        return type(err)(f"layer {index} ({module.one_line()}): {err}")
    except Exception:           # an exception type that takes other arguments: pass it on as it is
        return err


def _may_have_parameters(module: Module) -> bool:
    """A cheap test, run every step: False only for a module that has no parameters and no children."""
    return bool(module._params) or bool(module.children())


def forward_state(module: Module) -> dict:
    """What a module's forward left in it (output, caches), to give back before that use's backward
    (:func:`restore_forward_state`): what lets one module sit at several places."""
    return dict(module.__dict__)


def restore_forward_state(module: Module, snapshot: dict) -> None:
    """Give ``module`` the state of ``snapshot`` if a later forward (a second use) has replaced it."""
    if module.__dict__.get("output") is not snapshot.get("output"):
        module.__dict__.update(snapshot)


def _overwrite(container: Module, overwrite: bool) -> bool:
    """Whether the walk may set gradients: not when a gradient array sits twice in the tree (a shared
    module); those are zeroed here instead, and the walk accumulates."""
    if not overwrite:
        return False
    seen, stack = set(), [container]
    while stack:                                   # every use of every module, every step: kept lean
        module = stack.pop()
        for grad in module._grads.values():
            if id(grad) in seen:
                container.zero_grad_parameters()
                return False
            seen.add(id(grad))
        stack.extend(module.children())
    return True


class _Container(Module):
    """What Sequential and Residual share: the Torch7 methods, each one call of the container's walk."""

    def update_grad_input(self, input, grad_output):
        return self._backprop(input, grad_output, parameters=False)

    def acc_grad_parameters(self, input, grad_output, scale=1.0, *, overwrite=False):
        """Every child's ``acc_grad_parameters`` with the grad_output its successor passes back, from
        one walk that computes those and skips dLoss/dInput of the container's own input. Torch7
        reuses the ``grad_input`` that ``update_grad_input`` left in each child; the walk computes
        them again, so a ``grad_output`` or a weight changed in between is read as it is now."""
        self._backprop(input, grad_output, scale, grad_input=False, overwrite=overwrite)


class Sequential(_Container):
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
        self._clear()

    def _clear(self):
        self._xs: list[np.ndarray] | None = None         # the input, then each layer's output
        self._states: list[dict] | None = None          # each layer's state after its forward

    def layer_shapes(self, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The per-sample output shape after each layer (``backprop summary`` prints them)."""
        return [tuple(x.shape[1:]) for x in self.probe(input_shape)._xs[1:]]

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
        for _ in self.forward_steps(input):
            pass
        return self._xs[-1]

    def forward_steps(self, input: np.ndarray) -> Iterator[int]:
        """``update_output`` one layer at a time: yields each layer's index once its forward is done
        (``backprop time`` times the steps so)."""
        xs, states = [input], []
        self._xs, self._states = xs, states
        for i, layer in enumerate(self.layers):
            try:
                xs.append(layer.forward(xs[i]))
            except (ValueError, TypeError) as err:
                raise _in_layer(i, layer, err) from err
            states.append(forward_state(layer))
            yield i

    def _backprop(self, input, grad_output, scale=1.0, *, grad_input=True, parameters=True, overwrite=False):
        for _ in self.backward_steps(input, grad_output, scale, grad_input=grad_input, parameters=parameters,
                                     overwrite=overwrite):
            pass
        return self.grad_input

    def backward_steps(self, input, grad_output, scale=1.0, *, grad_input=True, parameters=True,
                       overwrite=False) -> Iterator[int]:
        """The one backward walk, last layer first, each layer at the input its forward had; yields
        each layer's index once its step is done (``backprop time`` times the steps so).

        ``grad_input=J_1^T (J_2^T (... J_n^T grad_output))`` when ``grad_input``; when not, the walk
        stops at the first layer with parameters, which computes only their gradients (the layers
        before it have no step). ``parameters``: accumulate (``overwrite``: set) every parameter
        gradient, each layer with the grad_output its successor passed back.
        """
        layers, xs, states = self.layers, self._xs, self._states
        if states is None or len(states) != len(layers):
            raise RuntimeError("Sequential.backward needs a forward first (and none since clear_state)")
        overwrite = parameters and _overwrite(self, overwrite)
        first = 0 if grad_input else next((i for i, m in enumerate(layers) if _may_have_parameters(m)), len(layers))
        g = grad_output
        for i in range(len(layers) - 1, first - 1, -1):
            layer = layers[i]
            restore_forward_state(layer, states[i])
            try:
                g = layer._backprop(xs[i] if i else input, g, scale, grad_input=grad_input or i > first,
                                    parameters=parameters and _may_have_parameters(layer), overwrite=overwrite)
            except (ValueError, TypeError) as err:
                raise _in_layer(i, layer, err) from err
            yield i
        for layer in layers[:first]:
            layer.grad_input = None
        self.grad_input = g if grad_input else None

    def __repr__(self):
        if not self.layers:
            return "Sequential()"
        lines = [f"  ({i}): " + repr(m).replace("\n", "\n  ") for i, m in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"


class Residual(_Container):
    """``y = x + f(x)`` (Torch7 builds it as ConcatTable(f, Identity) followed by CAddTable).

    Shape: ``f`` must map its input to the same shape. Example: ``Residual(Sequential(Linear(8, 8), ReLU()))``.
    Backward: ``grad_input = grad_output + J_f^T grad_output``.
    """

    def __init__(self, block: Module) -> None:
        super().__init__()
        if not isinstance(block, Module):
            raise TypeError(f"Residual takes a module, got {type(block).__name__}")
        self.block = block
        self._clear()

    def _clear(self):
        self._state: dict | None = None                 # the block's state after its forward

    def children(self):
        return [self.block]

    def update_output(self, input):
        try:
            fx = self.block.forward(input)
        except (ValueError, TypeError) as err:
            raise _in_layer(0, self.block, err) from err
        self._state = forward_state(self.block)
        if fx.shape != input.shape:
            raise ShapeError(f"Residual block must keep the shape: input {shape_str(input.shape)}, "
                             f"block output {shape_str(fx.shape)}")
        return input + fx

    def _backprop(self, input, grad_output, scale=1.0, *, grad_input=True, parameters=True, overwrite=False):
        if self._state is None:
            raise RuntimeError("Residual.backward needs a forward first (and none since clear_state)")
        overwrite = parameters and _overwrite(self, overwrite)
        restore_forward_state(self.block, self._state)
        g = self.block._backprop(input, grad_output, scale, grad_input=grad_input, parameters=parameters,
                                 overwrite=overwrite)
        self.grad_input = grad_output + g if grad_input else None
        return self.grad_input

    def __repr__(self):
        return "Residual(\n  " + repr(self.block).replace("\n", "\n  ") + "\n)"


def first_non_finite(model: Module) -> str | None:
    """Name the first layer (in forward order) whose output, or gradient, is not finite."""
    layers = model.layers if isinstance(model, Sequential) else [model]
    outputs = model._xs[1:] if isinstance(model, Sequential) and model._xs else [m.output for m in layers]
    for i, (layer, output) in enumerate(zip(layers, outputs)):
        if output is not None and not np.all(np.isfinite(output)):
            return f"layer {i} ({type(layer).__name__}) output"
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if layer.grad_input is not None and not np.all(np.isfinite(layer.grad_input)):
            return f"layer {i} ({type(layer).__name__}) gradient"
        for name, _, grad in layer.named_parameters():
            if not np.all(np.isfinite(grad)):
                return f"layer {i} ({type(layer).__name__}) {name} gradient"
    return None
