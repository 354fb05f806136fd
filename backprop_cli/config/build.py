"""Turn a validated :class:`~backprop_cli.config.schema.Config` into the objects training uses.

``build_model`` builds the layers in order, tracking the per-sample shape by running a zeros batch
of 2 through each new layer (in evaluation mode, so BatchNorm's running statistics stay untouched).
That shape fills the sizes a config may leave out (``Linear.in_features``, convolution
``in_channels``, batch-norm ``num_features``), and a layer that cannot take it becomes a ConfigError
at that layer's line::

    configs/x.yaml:12: model.3 (Linear): Linear expected input (N, 784), got (2, 1, 8, 8)
"""

from __future__ import annotations

import inspect

import numpy as np

from .schema import Config
from .layers import LayerSpec, inferred_for
from ..errors import ConfigError, shape_str
from ..nn import Criterion, Module, Sequential
from ..optim import OPTIMIZERS, SCHEDULES, Optimizer, Schedule, Warmup

PROBE_BATCH = 2


def build_model(config: Config, input_shape: tuple[int, ...], rng: np.random.Generator,
                dtype=np.float32) -> Sequential:
    """The model of ``config.model`` for samples shaped ``input_shape`` (no batch axis), e.g. ``(1, 8, 8)``.

    Every constructor that takes ``rng`` gets this one Generator, in layer order, so the same seed
    gives the same weights; ``dtype`` goes to every constructor that takes it.
    """
    layers, _ = _build_layers(config, config.model, tuple(int(s) for s in input_shape), rng, np.dtype(dtype))
    return Sequential(*layers)


def _build_layers(config, specs, shape, rng, dtype) -> tuple[list[Module], tuple[int, ...]]:
    layers = []
    for spec in specs:
        layer = _build_layer(config, spec, shape, rng, dtype)
        shape = _probe(config, spec, layer, shape, dtype)
        layers.append(layer)
    return layers, shape


def _build_layer(config: Config, spec: LayerSpec, shape, rng, dtype) -> Module:
    cls = config.registry.modules[spec.name]
    if spec.children is not None:                       # Sequential or Residual around a chain
        block = Sequential(*_build_layers(config, spec.children, shape, rng, dtype)[0])
        return block if issubclass(cls, Sequential) else cls(block)
    kwargs = dict(spec.args)
    inferred = inferred_for(cls)
    if inferred is not None and inferred.param not in kwargs:
        if len(shape) not in inferred.ranks:
            hint = "; add Flatten before it" if inferred.param == "in_features" and len(shape) > 1 else ""
            raise _layer_error(config, spec, f"{spec.name} expected input {inferred.expected} to infer "
                               f"{inferred.param}, got {shape_str(('N',) + shape)}{hint}")
        kwargs[inferred.param] = shape[0]
    return _construct(config, spec, cls, kwargs, rng, dtype)


def _construct(config: Config, spec: LayerSpec, cls: type, kwargs: dict, rng, dtype) -> Module:
    params = inspect.signature(cls).parameters
    if "rng" in params:
        kwargs["rng"] = rng
    if "dtype" in params:
        kwargs["dtype"] = dtype
    varpos = next((n for n, p in params.items() if p.kind is p.VAR_POSITIONAL), None)
    args = tuple(kwargs.pop(varpos, ())) if varpos else ()
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        return cls(*args, **kwargs)
    except _errors_of(config, spec.name) as err:
        raise _layer_error(config, spec, _message(err)) from None


def _probe(config: Config, spec: LayerSpec, layer: Module, shape, dtype) -> tuple[int, ...]:
    """The per-sample output shape, from a zeros batch run in evaluation mode (caches cleared after)."""
    layer.evaluate()
    try:
        out = layer.forward(np.zeros((PROBE_BATCH,) + shape, dtype=dtype))
    except _errors_of(config, spec.name) as err:
        raise _layer_error(config, spec, _message(err)) from None
    finally:
        layer.train()
        for m in layer.modules():
            m.output = None
    return tuple(out.shape[1:])


def _errors_of(config: Config, name: str) -> tuple[type[BaseException], ...]:
    """What building a layer may raise that is the user's to fix: ValueError and TypeError from the
    library's classes (anything else is a bug), any exception from a plugin's (the user's own code)."""
    return (Exception,) if name in config.registry.origin else (ValueError, TypeError)


def _message(err: BaseException) -> str:
    return str(err) if isinstance(err, (ValueError, TypeError)) else f"{type(err).__name__}: {err}"


def _layer_error(config: Config, spec: LayerSpec, message: str) -> ConfigError:
    return config.error(spec.path, message, label=f"{spec.path} ({spec.name})")


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
