"""The contract every layer and loss follows, defined once (Torch7 ``nn.Module`` / ``nn.Criterion``).

A module maps ``input -> output``. Backpropagation through it is two separate questions:

* ``update_grad_input(input, grad_output)``: given dLoss/dOutput, return dLoss/dInput
  (Torch7 ``updateGradInput``; the result is *a derivative*, never new weights);
* ``acc_grad_parameters(input, grad_output, scale)``: *add* ``scale * dLoss/dParameter`` into the
  gradient arrays (Torch7 ``accGradParameters``); calling it twice doubles the gradients.

``backward`` is the two in sequence. New weights only come from ``update_parameters(lr)`` or an
optimizer in :mod:`backprop_cli.optim`, which reads the parallel lists given by ``parameters()``.

A layer without parameters overrides ``update_output`` and ``update_grad_input`` and nothing more;
a layer with parameters registers them with ``add_parameter`` and also overrides
``acc_grad_parameters``.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from copy import deepcopy

import numpy as np

from ..errors import CheckedArguments
from ..errors import shape_str  # noqa: F401  (re-exported: every layer's messages use it)
from .functional import sigmoid, softmax

DEFAULT_DTYPE = np.float32
#: What a criterion's ``reduction`` may be (PyTorch's three).
REDUCTIONS = ("mean", "sum", "none")
#: Ranks ``check_array`` accepts for "a batch of anything" ``(N, ...)`` and "a batch with classes" ``(N, C, ...)``.
ANY_RANK = tuple(range(1, 8))
CLASS_RANKS = tuple(range(2, 8))


def pytorch_name(cls: type) -> type:
    """Class decorator for a PyTorch-named thin subclass (``Conv2d`` of ``SpatialConvolution``): its
    docstring starts with the first paragraph of the class it names, the formula, so that it states
    its math as every layer does."""
    formula = inspect.cleandoc(cls.__mro__[1].__doc__).split("\n\n")[0]
    cls.__doc__ = formula + "\n\n" + inspect.cleandoc(cls.__doc__)
    return cls


class ShapeError(ValueError):
    """An array reached a module with a shape (or rank) it cannot take."""


def check_array(name: str, x, ndim: int | tuple[int, ...], expected: str) -> np.ndarray:
    """Check that ``x`` is a floating array of the given rank; ``expected`` reads like ``(N, 784)``."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} expected a numpy array {expected}, got {type(x).__name__}")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if x.ndim not in ranks:
        raise ShapeError(f"{name} expected input {expected}, got {shape_str(x.shape)}")
    if x.dtype.kind != "f":                 # np.issubdtype(x.dtype, np.floating), without its cost per call
        raise TypeError(f"{name} expected a floating-point input {expected}, got dtype {x.dtype}")
    return x


class Module(metaclass=CheckedArguments):
    """Base class of every layer and container.

    Shape: defined by each subclass; arrays are batch-first.
    Example::

        y = layer.forward(x)                       # output, cached in layer.output
        gx = layer.backward(x, dloss_dy)           # dLoss/dx; parameter grads accumulated
        layer.update_parameters(0.1)               # w -= 0.1 * dLoss/dw
    """

    training: bool
    output: np.ndarray | None
    grad_input: np.ndarray | None
    #: False for a module whose input has no derivative (Embedding's indices): its ``grad_input`` is zeros.
    differentiable_input = True

    def __init__(self) -> None:
        self.training = True
        self.output = None
        self.grad_input = None
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        self._buffers: dict[str, np.ndarray] = {}

    # ----------------------------------------------------------------- the contract
    def forward(self, input: np.ndarray) -> np.ndarray:
        """Compute the output (Torch7 ``forward``/``updateOutput``) and cache it in ``self.output``."""
        self.output = self.update_output(input)
        return self.output

    __call__ = forward

    def backward(self, input: np.ndarray, grad_output: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """``update_grad_input`` then ``acc_grad_parameters``; returns dLoss/dInput.

        ``input`` must be the array last given to ``forward`` (modules cache what backward needs),
        and ``grad_output`` must have the shape of the output it returned.
        """
        if self.output is not None and getattr(grad_output, "shape", None) != self.output.shape:
            raise ShapeError(f"{type(self).__name__} expected grad_output {shape_str(self.output.shape)}, "
                             f"got {shape_str(np.shape(grad_output))}")
        self.grad_input = self.update_grad_input(input, grad_output)
        self.acc_grad_parameters(input, grad_output, scale)
        return self.grad_input

    def backward_parameters(self, input: np.ndarray, grad_output: np.ndarray, scale: float = 1.0, *,
                            accumulate: bool = True) -> None:
        """``backward`` for an input that needs no gradient (the data): every parameter gradient ends
        as ``backward`` would leave it, and the work that only serves dLoss/dInput is skipped.

        ``accumulate=False`` *sets* the gradients instead, as ``zero_grad_parameters()`` followed by an
        accumulating call would (a layer may then write its gradient outright instead of zeroing it
        and adding to it). A leaf module runs ``acc_grad_parameters`` alone, which by the contract
        needs only ``input`` and ``grad_output``, and leaves ``grad_input`` None; a container runs its
        full ``backward`` unless it overrides this (Sequential and Residual do). The engine calls this.
        """
        if not accumulate:
            self.zero_grad_parameters()
        if self.children():
            self.backward(input, grad_output, scale)
            return
        self.grad_input = None
        self.acc_grad_parameters(input, grad_output, scale)

    @abstractmethod
    def update_output(self, input: np.ndarray) -> np.ndarray:
        """Return the output for ``input`` (Torch7 ``updateOutput``)."""

    @abstractmethod
    def update_grad_input(self, input: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        """Return dLoss/dInput from dLoss/dOutput (Torch7 ``updateGradInput``)."""

    def acc_grad_parameters(self, input: np.ndarray, grad_output: np.ndarray, scale: float = 1.0) -> None:
        """Add ``scale * dLoss/dParameter`` into each gradient (Torch7 ``accGradParameters``)."""

    # ----------------------------------------------------------------- parameters
    def add_parameter(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register a parameter and a zeroed gradient of the same shape and dtype."""
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)
        return value

    def add_buffer(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register state that is saved with the weights but not trained (running statistics)."""
        self._buffers[name] = value
        return value

    def __getattr__(self, name: str):
        """Parameters and buffers by name (``layer.bias``, ``bn.running_mean``), and each parameter's
        gradient as ``grad_<name>`` (``layer.grad_weight`` is Torch7's ``gradWeight``)."""
        d = self.__dict__
        for table in (d.get("_params", {}), d.get("_buffers", {})):
            if name in table:
                return table[name]
        grads = d.get("_grads", {})
        if name.startswith("grad_") and name[5:] in grads:
            return grads[name[5:]]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        """``layer.weight = w`` copies ``w`` into the parameter (same shape), so the gradient and any
        optimizer holding the array stay attached to it; ``layer.grad_weight += g`` adds into the
        gradient itself (and ``layer.grad_weight = g`` overwrites it, which breaks accumulation)."""
        d = self.__dict__
        table = d.get("_params", {}).get(name)
        if table is None:
            table = d.get("_buffers", {}).get(name)
        if table is None and name.startswith("grad_"):
            table = d.get("_grads", {}).get(name[5:])
        if table is None:
            object.__setattr__(self, name, value)
            return
        if np.shape(value) != table.shape:
            raise ShapeError(f"{type(self).__name__}.{name} has shape {shape_str(table.shape)}, "
                             f"got {shape_str(np.shape(value))}")
        np.copyto(table, value, casting="same_kind")

    def children(self) -> list[Module]:
        """Direct sub-modules; containers override this."""
        return []

    def modules(self) -> Iterator[Module]:
        """This module, then every descendant, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(dotted name, parameter, gradient)`` for every parameter, e.g. ``("0.weight", W, dW)``."""
        for name, value in self._params.items():
            yield prefix + name, value, self._grads[name]
        for i, child in enumerate(self.children()):
            yield from child.named_parameters(f"{prefix}{i}.")

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name, value in self._buffers.items():
            yield prefix + name, value
        for i, child in enumerate(self.children()):
            yield from child.named_buffers(f"{prefix}{i}.")

    def parameters(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Two parallel lists, ``(params, grads)`` (Torch7 ``parameters()``); optimizers consume them."""
        named = list(self.named_parameters())
        return [p for _, p, _ in named], [g for _, _, g in named]

    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.named_parameters())

    def zero_grad_parameters(self) -> None:
        """Set every gradient to zero (Torch7 ``zeroGradParameters``)."""
        for _, _, grad in self.named_parameters():
            grad.fill(0)

    def update_parameters(self, learning_rate: float) -> None:
        """Plain gradient descent, ``w -= lr * dLoss/dw`` (Torch7 ``updateParameters``)."""
        for _, param, grad in self.named_parameters():
            param -= learning_rate * grad

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The per-sample output shape for per-sample ``input_shape``: a zeros batch of 2 through a
        copy in evaluation mode, so nothing of this module (caches, running statistics) changes."""
        return tuple(self.probe(input_shape).output.shape[1:])

    def probe(self, input_shape: tuple[int, ...]) -> Module:
        """A copy of this module, in evaluation mode, after a forward of a zeros batch of 2 shaped
        ``(2, *input_shape)``: every layer's ``output`` tells its shape."""
        copy = deepcopy(self).evaluate()
        copy.forward(np.zeros((2, *input_shape), dtype=self.dtype or DEFAULT_DTYPE))
        return copy

    # ----------------------------------------------------------------- mode and dtype
    def train(self, mode: bool = True) -> Module:
        """Training mode: Dropout drops, BatchNorm uses batch statistics (Torch7 ``training()``)."""
        for m in self.modules():
            m.training = mode
        return self

    def evaluate(self) -> Module:
        """Evaluation mode (Torch7 ``evaluate()``)."""
        return self.train(False)

    def to(self, dtype) -> Module:
        """Convert parameters, gradients and buffers to ``dtype`` (e.g. float64 for gradcheck).

        Arrays are replaced, so build optimizers after calling this.
        """
        dtype = np.dtype(dtype)
        for m in self.modules():
            for table in (m._params, m._grads, m._buffers):
                for name, value in table.items():
                    table[name] = value.astype(dtype)
            m._convert_extra(dtype)
        return self

    def _convert_extra(self, dtype: np.dtype) -> None:
        """Hook for attributes outside the three tables that must follow ``to(dtype)``."""

    @property
    def dtype(self) -> np.dtype | None:
        for _, p, _ in self.named_parameters():
            return p.dtype
        return None

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Named copies of every parameter and buffer (``"0.weight"``, ``"2.running_mean"``)."""
        state = {name: p.copy() for name, p, _ in self.named_parameters()}
        state.update({name: b.copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Copy named arrays in place (optimizers keep their references).

        Raises ``ValueError`` listing every missing, unexpected or mis-shaped name at once.
        """
        targets = {name: p for name, p, _ in self.named_parameters()}
        targets.update(dict(self.named_buffers()))
        problems = [f"{name}: missing" for name in targets if name not in state]
        problems += [f"{name}: unexpected" for name in state if name not in targets]
        for name, target in targets.items():
            if name in state and np.shape(state[name]) != target.shape:
                problems.append(
                    f"{name}: expected shape {shape_str(target.shape)}, got {shape_str(np.shape(state[name]))}"
                )
        if problems:
            raise ValueError("state does not fit the model: " + "; ".join(problems))
        for name, target in targets.items():
            np.copyto(target, state[name], casting="same_kind")

    # ----------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def one_line(self) -> str:
        """A one-line name for messages and tables: the repr of a layer, the outline of a container
        (``Residual(Sequential(Linear, ReLU))``)."""
        if not self.children():
            return repr(self)
        inner = (c.one_line() if c.children() else type(c).__name__ for c in self.children())
        return f"{type(self).__name__}({', '.join(inner)})"


class Criterion(metaclass=CheckedArguments):
    """Base class of every loss (Torch7 ``nn.Criterion``).

    ``forward(output, target) -> float`` is the loss; ``backward(output, target) -> grad_output`` is
    dLoss/dOutput, the array handed to the model's ``backward``. ``reduction="mean"`` divides the
    summed per-element (or per-sample) loss by the count each subclass documents; ``"sum"`` does not;
    ``"none"`` (PyTorch's) makes ``forward`` return the array of per-element (or per-sample) losses,
    and ``backward`` the gradient of their sum. A loss is never ``-0.0``.
    """

    #: ``"classification"`` (targets are class indices), ``"binary"`` (0/1 targets shaped like the
    #: output) or ``"regression"``.
    task = "regression"
    #: What the model's output is to this criterion, which says how it is read as predictions:
    #: ``"values"`` (regression), ``"scores"`` (softmax over axis 1 gives class probabilities),
    #: ``"log_probabilities"`` (exp gives them), ``"logits"`` (sigmoid gives them) or ``"probabilities"``.
    outputs = "values"

    @property
    def logits(self) -> bool:
        """True when the output it takes is a raw score (a logit), not a probability."""
        return self.outputs == "logits"

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__} reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self.output: float | np.ndarray | None = None
        self.grad_input: np.ndarray | None = None

    def forward(self, output: np.ndarray, target: np.ndarray) -> float | np.ndarray:
        """The loss value (Torch7 ``forward``/``updateOutput``); the per-element losses for ``"none"``.

        ``+ 0.0`` turns a ``-0.0`` (e.g. ``-sum`` of nothing) into ``0.0``.
        """
        loss = self.update_output(output, target)
        self.output = np.asarray(loss) + 0.0 if self.reduction == "none" else float(loss) + 0.0
        return self.output

    __call__ = forward

    def backward(self, output: np.ndarray, target: np.ndarray) -> np.ndarray:
        """dLoss/dOutput (Torch7 ``backward``/``updateGradInput``)."""
        self.grad_input = self.update_grad_input(output, target)
        return self.grad_input

    @abstractmethod
    def update_output(self, output: np.ndarray, target: np.ndarray) -> float:
        """Return the loss."""

    @abstractmethod
    def update_grad_input(self, output: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Return dLoss/dOutput, shaped like ``output``."""

    def to(self, dtype) -> Criterion:
        """Convert any weight arrays (class weights) to ``dtype``; most criterions hold none."""
        return self

    # ----------------------------------------------------------------- reading the outputs
    def probabilities(self, output: np.ndarray) -> np.ndarray:
        """The probabilities ``output`` stands for, shaped like it: ``softmax(output)`` over axis 1 for
        scores, ``exp(output)`` for log-probabilities, ``sigmoid(output)`` for logits. A regression
        criterion's outputs are values and have none (ValueError)."""
        if self.outputs == "scores":
            return softmax(output)
        if self.outputs == "log_probabilities":
            return np.exp(output)
        if self.outputs == "logits":
            return sigmoid(output)
        if self.outputs == "probabilities":
            return output
        raise ValueError(f"{type(self).__name__} takes values, not probabilities")

    def predictions(self, output: np.ndarray) -> np.ndarray:
        """What ``output`` predicts: the class index (argmax over axis 1, shape ``(N, ...)``) for class
        targets; 0/1 for binary ones (``p > 0.5``, i.e. a logit ``> 0``); the values for regression."""
        if self.task == "classification":
            return output.argmax(axis=1)
        if self.task == "binary":
            return (output > 0 if self.outputs == "logits" else self.probabilities(output) > 0.5).astype(np.int64)
        return output

    def counted(self, target: np.ndarray) -> np.ndarray | None:
        """Where ``target`` counts for a metric: a boolean mask shaped like it (False at an ignored
        position), or None when every position counts."""
        return None

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
