"""Turn a validated :class:`~backprop_cli.config.schema.Config` into the objects training uses.

``build_model`` builds the layers in order, tracking the per-sample shape by running a zeros batch
of 2 through each new layer (in evaluation mode, so BatchNorm's running statistics stay untouched).
That shape fills the sizes a config may leave out (``Linear.in_features``, convolution
``in_channels``, batch-norm ``num_features``), and a layer that cannot take it becomes a ConfigError
at that layer's line::

    configs/x.yaml:12: model.3 (Linear): Linear expected input (N, 784), got (2, 1, 8, 8)

Sizes are checked before anything is allocated (:class:`SizeCheck`): a model may have at most
:data:`MAX_PARAMETERS` parameters, and what training it takes (weights, gradients and optimizer state,
and a batch's activations) must fit in the machine's memory. A ``MemoryError`` while a layer is built
or probed is reported at that layer too.

A ``Shared: enc`` entry is the module built for the layer named ``enc``, placed again (its weights
shared); it is probed like any layer, at the shape that reaches it, and its parameters count once.
"""

from __future__ import annotations

import inspect
import math
import os

import numpy as np

from .schema import Config
from .layers import LayerSpec, inferred_for
from ..errors import BackpropError, ConfigError, shape_str
from ..nn import Criterion, Module, Sequential
from ..optim import OPTIMIZERS, SCHEDULES, Optimizer, Schedule, Warmup

PROBE_BATCH = 2


#: A model may have at most this many parameters (its ``num_parameters()``: weights and biases, all layers).
MAX_PARAMETERS = 1_000_000_000
#: What training keeps per parameter, counted in values: the weight, its gradient, and up to two
#: optimizer state arrays (Adam's moments).
_COPIES_PER_PARAMETER = 4
#: ... and per activation value of a training batch: the output, and the gradient flowing back through it.
_COPIES_PER_ACTIVATION = 2
#: The engine evaluates in batches of at least this many samples (``engine.trainer.evaluate``).
_EVAL_BATCH = 256


def build_model(config: Config, input_shape: tuple[int, ...], rng: np.random.Generator,
                dtype=np.float32, *, noise: np.random.Generator | None = None) -> Sequential:
    """The model of ``config.model`` for samples shaped ``input_shape`` (no batch axis), e.g. ``(1, 8, 8)``.

    Every constructor that takes ``rng`` gets this one Generator, in layer order, so the same seed
    gives the same weights; a layer that ``draws_noise`` (Dropout) gets ``noise`` instead, when
    given. ``dtype`` goes to every constructor that takes it. A model too large to train here is a
    ConfigError at the layer that makes it so, before that layer is allocated.
    """
    shape, dtype = tuple(int(s) for s in input_shape), np.dtype(dtype)
    sizes = SizeCheck(config, dtype)
    sizes.add_activations(None, shape)
    rngs = (rng, rng if noise is None else noise)
    layers, _ = _build_layers(config, config.model, shape, rngs, dtype, sizes, {})
    return Sequential(*layers)


class SizeCheck:
    """What the model built so far needs, checked as each layer is added: at most :data:`MAX_PARAMETERS`
    parameters, and 4 values per parameter (weight, gradient, optimizer state) plus each layer's
    activations for a batch (twice for a training batch: output and gradient; once for an evaluation
    batch of 256) within the machine's physical memory. An estimate from below: scratch buffers
    (a convolution's im2col) come on top."""

    def __init__(self, config: Config, dtype: np.dtype) -> None:
        self.config, self.itemsize, self.dtype_name = config, dtype.itemsize, dtype.name
        batch = config.training.batch_size
        self.batch, self.per_activation = (batch, _COPIES_PER_ACTIVATION * batch) \
            if _COPIES_PER_ACTIVATION * batch >= _EVAL_BATCH else (_EVAL_BATCH, _EVAL_BATCH)
        self.parameters = self.activations = 0
        self.memory = physical_memory()

    def add_parameters(self, spec: LayerSpec | None, count: int) -> None:
        self.parameters += count
        if self.parameters > MAX_PARAMETERS:
            where = "the model" if self.parameters == count else "the model so far"
            raise self._error(spec, f"{where} has {self.parameters:,} parameters, more than the limit of "
                                    f"{MAX_PARAMETERS:,}")
        self._check_memory(spec)

    def add_activations(self, spec: LayerSpec | None, shape: tuple[int, ...]) -> None:
        """A layer's output (per sample) is part of the model's activations from now on."""
        self.activations += math.prod(shape)
        self._check_memory(spec)

    def check_output(self, spec: LayerSpec, shape: tuple[int, ...]) -> None:
        """Whether an output of about ``shape`` per sample would still fit (before the probe allocates it)."""
        self._check_memory(spec, math.prod(shape))

    def _check_memory(self, spec: LayerSpec | None, more: int = 0) -> None:
        activations = self.activations + more
        need = (_COPIES_PER_PARAMETER * self.parameters + self.per_activation * activations) * self.itemsize
        if self.memory is None or need <= self.memory:
            return
        what = f"batches of {self.batch} samples of {activations:,} activations"
        if self.parameters:
            what = f"{self.parameters:,} parameters with their gradients and optimizer state, and {what}"
        raise self._error(spec, f"training needs about {_bytes(need)} in {self.dtype_name} ({what}), more than "
                                f"this machine's {_bytes(self.memory)} of memory")

    def _error(self, spec: LayerSpec | None, message: str) -> ConfigError:
        if spec is None:                              # the input itself
            return self.config.error("model", f"the input: {message}")
        return _layer_error(self.config, spec, message)


def physical_memory() -> int | None:
    """The machine's physical memory in bytes, where the OS says (Linux, macOS); else None."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


def _estimated_parameters(kwargs: dict, shape: tuple[int, ...]) -> int:
    """The weights a layer will allocate, from its arguments (before it does): in x out x kernel for
    Linear and convolutions, by their PyTorch argument names (a single kernel size spans every spatial
    axis of ``shape``; ``groups`` divide the inputs); the table of an Embedding; 2 per feature for
    batch norm; else 0."""
    def whole(v) -> int | None:
        if isinstance(v, (list, tuple)):
            parts = [whole(p) for p in v]
            return None if None in parts else math.prod(parts)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None

    ins = whole(kwargs.get("in_features", kwargs.get("in_channels")))
    outs = whole(kwargs.get("out_features", kwargs.get("out_channels")))
    if ins and outs:
        kernel = kwargs.get("kernel_size", 1)
        kernel = whole(kernel) if isinstance(kernel, (list, tuple)) else (whole(kernel) or 1) ** max(len(shape) - 1, 1)
        return ins // (whole(kwargs.get("groups", 1)) or 1) * outs * (kernel or 1) + outs
    table = whole([kwargs.get("num_embeddings"), kwargs.get("embedding_dim")])
    if table:
        return table
    features = whole(kwargs.get("num_features"))
    return 2 * features if features else 0


def _build_layers(config, specs, shape, rngs, dtype, sizes: SizeCheck,
                  named: dict[str, Module]) -> tuple[list[Module], tuple[int, ...]]:
    """The layers of ``specs`` and the shape after them; ``named`` collects the named ones, in order."""
    layers = []
    for spec in specs:
        layer = (named[spec.shares] if spec.shares is not None
                 else _build_layer(config, spec, shape, rngs, dtype, sizes, named))
        shape = _probe(config, spec, layer, shape, dtype, sizes)
        if spec.label is not None:
            named[spec.label] = layer
        layers.append(layer)
    return layers, shape


def _build_layer(config: Config, spec: LayerSpec, shape, rngs, dtype, sizes: SizeCheck, named) -> Module:
    cls = config.registry.modules[spec.name]
    if spec.children is not None:                       # Sequential or Residual around a chain
        block = Sequential(*_build_layers(config, spec.children, shape, rngs, dtype, sizes, named)[0])
        return block if issubclass(cls, Sequential) else cls(block)
    kwargs = dict(spec.args)
    inferred = inferred_for(cls)
    if inferred is not None and inferred.param not in kwargs:
        if len(shape) not in inferred.ranks:
            hint = "; add Flatten before it" if inferred.param == "in_features" and len(shape) > 1 else ""
            raise _layer_error(config, spec, f"{spec.name} expected input {inferred.expected} to infer "
                               f"{inferred.param}, got {shape_str(('N',) + shape)}{hint}")
        kwargs[inferred.param] = shape[0]
    estimate = _estimated_parameters(kwargs, shape)
    sizes.add_parameters(spec, estimate)               # refused here, before the weights are allocated
    layer = _construct(config, spec, cls, kwargs, rngs, dtype)
    sizes.add_parameters(spec, layer.num_parameters() - estimate)
    return layer


def _construct(config: Config, spec: LayerSpec, cls: type, kwargs: dict, rngs, dtype) -> Module:
    params = inspect.signature(cls).parameters
    if "rng" in params:
        kwargs["rng"] = rngs[1] if getattr(cls, "draws_noise", False) else rngs[0]
    if "dtype" in params:
        kwargs["dtype"] = dtype
    varpos = next((n for n, p in params.items() if p.kind is p.VAR_POSITIONAL), None)
    args = tuple(kwargs.pop(varpos, ())) if varpos else ()
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        return cls(*args, **kwargs)
    except MemoryError as err:
        raise _layer_error(config, spec, f"out of memory allocating its weights: {err}") from None
    except _errors_of(config, spec.name) as err:
        raise _layer_error(config, spec, _message(err)) from None


def _probe(config: Config, spec: LayerSpec, layer: Module, shape, dtype, sizes: SizeCheck) -> tuple[int, ...]:
    """The per-sample output shape, from a zeros batch run in evaluation mode (``clear_state`` after)."""
    if spec.children is None:                          # a chain's layers were probed one by one
        outs = getattr(layer, "out_features", None) or getattr(layer, "out_channels", None)
        sizes.check_output(spec, (outs,) + shape[1:] if isinstance(outs, int) and shape else shape)
    layer.evaluate()
    try:
        out = layer.forward(np.zeros((PROBE_BATCH,) + shape, dtype=dtype))
    except MemoryError as err:
        raise _layer_error(config, spec, f"out of memory computing its output: {err}") from None
    except _errors_of(config, type(layer).__name__, library=(BackpropError,)) as err:
        raise _layer_error(config, spec, _message(err)) from None
    finally:
        layer.train().clear_state()
    if spec.children is None:
        sizes.add_activations(spec, tuple(out.shape[1:]))
    return tuple(out.shape[1:])


def _errors_of(config: Config, name: str, library=(ValueError, TypeError)) -> tuple[type[BaseException], ...]:
    """What building a layer may raise that is the user's to fix: from the library's classes
    ``library`` (a constructor's ValueError and TypeError: its arguments; a forward's BackpropError:
    the shape; anything else is a bug), from a plugin's any exception (the user's own code)."""
    return (Exception,) if name in config.registry.origin else library


def _message(err: BaseException) -> str:
    return str(err) if isinstance(err, (ValueError, TypeError)) else f"{type(err).__name__}: {err}"


def _layer_error(config: Config, spec: LayerSpec, message: str) -> ConfigError:
    return config.error(spec.path, message, label=f"{spec.path} ({spec.title})")


def build_criterion(config: Config, dtype=np.float32) -> Criterion:
    """The loss of ``config.criterion``, its class weights (if any) in ``dtype``."""
    spec = config.criterion
    try:
        return config.registry.criterions[spec.name](**spec.args).to(dtype)
    except _errors_of(config, spec.name) as err:
        raise config.error("criterion", _message(err), label=f"criterion ({spec.name})") from None


def build_optimizer(config: Config, params, grads) -> Optimizer:
    """The optimizer of ``config.optimizer`` over the parallel lists from ``model.parameters()``."""
    section = config.optimizer
    kwargs = {name: getattr(section, name) for name in type(section).model_fields if name != "name"}
    try:
        return OPTIMIZERS[section.name](params, grads, **kwargs)
    except (ValueError, TypeError) as err:
        raise config.error("optimizer", str(err)) from None


def build_schedule(config: Config) -> Schedule:
    """The learning-rate schedule from ``optimizer.lr``, inside a Warmup when ``warmup_epochs > 0``."""
    section = config.schedule
    skip = ("name", "warmup_epochs", "warmup_start_factor")
    kwargs = {name: getattr(section, name) for name in type(section).model_fields if name not in skip}
    try:
        schedule = SCHEDULES[section.name](config.optimizer.lr, **kwargs)
        if section.warmup_epochs > 0:
            schedule = Warmup(schedule, section.warmup_epochs, start_factor=section.warmup_start_factor)
    except (ValueError, TypeError) as err:
        raise config.error("schedule", str(err)) from None
    return schedule
