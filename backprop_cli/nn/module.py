"""The contract every layer and loss follows, defined once (Torch7 ``nn.Module`` / ``nn.Criterion``).

A module maps ``input -> output``. Backpropagation through it is two separate questions:

* ``update_grad_input(input, grad_output)``: given dLoss/dOutput, return dLoss/dInput
  (Torch7 ``updateGradInput``; the result is *a derivative*, never new weights);
* ``acc_grad_parameters(input, grad_output, scale)``: *add* ``scale * dLoss/dParameter`` into the
  gradient arrays (Torch7 ``accGradParameters``); calling it twice doubles the gradients.

``backward`` is the two in sequence. ``input`` is the array last given to ``forward``, unchanged
since; weights and ``grad_output`` are read as they are at the call (a layer may keep from forward
only what depends on the input alone). New weights only come from ``update_parameters(lr)`` or an
optimizer in :mod:`backprop_cli.optim`, which reads the parallel lists given by ``parameters()``.

A layer without parameters overrides ``update_output`` and ``update_grad_input`` and nothing more;
a layer with parameters registers them with ``add_parameter`` and also overrides
``acc_grad_parameters``. That method may take a keyword ``overwrite``: with ``overwrite=True`` it
*sets* the gradients to what ``zero_grad_parameters()`` followed by an accumulating call would leave
(Linear writes its product straight into place); for a layer whose method does not take it, the
caller zeroes the gradients first (:func:`acc_grad_parameters`). The engine's step is
``model.acc_grad_parameters(x, dl_do, overwrite=True)``: containers walk their children once, and
skip dLoss/dx of the data, which nobody reads.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from copy import deepcopy
from functools import lru_cache

import numpy as np

from ..errors import ArrayError, CheckedArguments, DTypeError, ShapeError, shape_str  # noqa: F401  (re-exported for the layers)
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


def check_array(name: str, x, ndim: int | tuple[int, ...], expected: str) -> np.ndarray:
    """Check that ``x`` is a floating array of the given rank; ``expected`` reads like ``(N, 784)``."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} expected a numpy array {expected}, got {type(x).__name__}")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if x.ndim not in ranks:
        raise ShapeError(f"{name} expected input {expected}, got {shape_str(x.shape)}")
    if x.dtype.kind != "f":                 # np.issubdtype(x.dtype, np.floating), without its cost per call
        raise DTypeError(f"{name} expected a floating-point input {expected}, got dtype {x.dtype}")
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
    #: True for a layer whose ``rng`` draws noise at every forward (Dropout), not its initial weights:
    #: a config build gives it the seed's noise stream instead of the initialisation stream.
    draws_noise = False

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
        return self._backprop(input, grad_output, scale)

    def _backprop(self, input: np.ndarray, grad_output: np.ndarray, scale: float = 1.0, *,
                  grad_input: bool = True, parameters: bool = True, overwrite: bool = False) -> np.ndarray | None:
        """The one step of a backward walk through this module, kept in ``self.grad_input`` and returned:
        ``update_grad_input`` (when ``grad_input``; else None), then ``acc_grad_parameters`` (when
        ``parameters``; setting the gradients when ``overwrite``). ``backward`` is both halves.

        Containers walk their children here, once, whatever the flags; a layer may override it to
        share work between the halves, and must then give what the two give.
        """
        result = self.update_grad_input(input, grad_output) if grad_input else None
        if parameters:
            acc_grad_parameters(self, input, grad_output, scale, overwrite=overwrite)
        self.grad_input = result
        return result

    @abstractmethod
    def update_output(self, input: np.ndarray) -> np.ndarray:
        """Return the output for ``input`` (Torch7 ``updateOutput``)."""

    @abstractmethod
    def update_grad_input(self, input: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        """Return dLoss/dInput from dLoss/dOutput (Torch7 ``updateGradInput``)."""

    def acc_grad_parameters(self, input: np.ndarray, grad_output: np.ndarray, scale: float = 1.0) -> None:
        """Add ``scale * dLoss/dParameter`` into each gradient (Torch7 ``accGradParameters``).

        A layer may add a keyword ``overwrite=False`` (see the module docstring)."""

    def clear_state(self) -> Module:
        """Drop what forward and backward keep between calls (Torch7 ``clearState``): outputs,
        ``grad_input``, cached inputs and scratch arrays, in this module and every descendant.
        Parameters, their gradients and buffers stay. Returns ``self``."""
        for m in self.modules():
            m.output = m.grad_input = None
            m._clear()
        return self

    def _clear(self) -> None:
        """Hook for :meth:`clear_state`: a layer drops its own caches here."""

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
        """This module, then every descendant, depth first; a module used twice comes once."""
        return _once(self._uses(), lambda m: m)

    def _uses(self) -> Iterator[Module]:
        """Every place a module sits in the tree, depth first: a shared module once per use."""
        yield self
        for child in self.children():
            yield from child._uses()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(dotted name, parameter, gradient)`` for every parameter, e.g. ``("0.weight", W, dW)``.
        A parameter shared by several uses comes once, under the name of its first use (as in PyTorch)."""
        return _once(self._named("_params", prefix), lambda entry: entry[1])

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """``(dotted name, buffer)`` for every buffer, each once (like parameters)."""
        return ((name, b) for name, b, _ in _once(self._named("_buffers", prefix), lambda entry: entry[1]))

    def _named(self, table: str, prefix: str) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
        """Every entry of ``table`` (``_params`` with its gradient, or ``_buffers``) down the tree, repeats included."""
        grads = self._grads if table == "_params" else {}
        for name, value in getattr(self, table).items():
            yield prefix + name, value, grads.get(name)
        for i, child in enumerate(self.children()):
            yield from child._named(table, f"{prefix}{i}.")

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
        copy = deepcopy(self).clear_state().evaluate()
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
        """Convert parameters, gradients and buffers to ``dtype`` (e.g. float64 for gradcheck); what
        forward kept is dropped (:meth:`clear_state`).

        Arrays are replaced, so build optimizers after calling this.
        """
        dtype = np.dtype(dtype)
        converted: dict[int, np.ndarray] = {}             # an array shared by two modules stays shared
        for m in self.modules():
            for table in (m._params, m._grads, m._buffers):
                for name, value in table.items():
                    if id(value) not in converted:
                        converted[id(value)] = value.astype(dtype)
                    table[name] = converted[id(value)]
        return self.clear_state()

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


def _once(items, key) -> Iterator:
    """``items`` without the repeats: each whose ``key`` (an object) came before is left out."""
    seen: set[int] = set()
    for item in items:
        if id(key(item)) not in seen:
            seen.add(id(key(item)))
            yield item


def acc_grad_parameters(module: Module, input: np.ndarray, grad_output: np.ndarray, scale: float = 1.0, *,
                        overwrite: bool = False) -> None:
    """``module.acc_grad_parameters(input, grad_output, scale)``; with ``overwrite`` the gradients are
    set instead, by the module itself when its method takes ``overwrite``, else by zeroing them first."""
    if not overwrite:
        module.acc_grad_parameters(input, grad_output, scale)
    elif _takes_overwrite(type(module)):
        module.acc_grad_parameters(input, grad_output, scale, overwrite=True)
    else:
        module.zero_grad_parameters()
        module.acc_grad_parameters(input, grad_output, scale)


@lru_cache(maxsize=None)
def _takes_overwrite(cls: type) -> bool:
    return "overwrite" in inspect.signature(cls.acc_grad_parameters).parameters


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

    def mean_count(self, output: np.ndarray, target: np.ndarray) -> float:
        """What ``reduction="mean"`` divides this batch's summed loss by: the batch's weight in a mean
        over several batches, whose loss is ``sum(loss_b * count_b) / sum(count_b)``. The number of
        samples here; each subclass that divides by another count (elements, summed class weights,
        targets not ignored) returns that one, 0 when nothing counts."""
        return float(output.shape[0])

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
