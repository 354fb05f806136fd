"""Where a batch's time goes, layer by layer (in the spirit of ``caffe time``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..engine.experiment import prepare
from ..nn.container import Sequential
from ..nn.module import Criterion


@dataclass
class LayerTime:
    name: str
    forward_ms: float       # mean over the timed batches
    backward_ms: float      # the layer's step in the engine's backward (Sequential.backward_steps)


def time_config(path, overrides=(), *, batches: int = 20):
    """:func:`time_layers` on the training data of the config at ``path``, in batches of its
    ``training.batch_size``; returns the config and the rows."""
    config, data, model, criterion = prepare(path, overrides)
    rows = time_layers(model, criterion, data.train.x, data.train.y, batches=batches,
                       batch_size=config.training.batch_size)
    return config, rows


def time_layers(model: Sequential, criterion: Criterion, x: np.ndarray, y: np.ndarray, *,
                batches: int = 20, batch_size: int = 32, warmup: int = 2) -> list[LayerTime]:
    """Mean forward and backward milliseconds per layer (and for the criterion) over ``batches``
    training steps on consecutive slices of ``(x, y)``, after ``warmup`` untimed ones. No update is
    applied, so the weights are unchanged (BatchNorm's running statistics do move). Backward is the
    engine's: no ``dLoss/dInput`` for the data, so the first layer with weights computes only their
    gradients and the layers before it take no time."""
    layers = model.layers
    fwd, bwd = np.zeros(len(layers) + 1), np.zeros(len(layers) + 1)
    model.train()
    n = len(x)
    for step in range(warmup + batches):
        start = (step * batch_size) % max(n - batch_size + 1, 1)
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        f, b = np.zeros_like(fwd), np.zeros_like(bwd)
        t0 = time.perf_counter()
        for i in model.forward_steps(xb):
            now = time.perf_counter()
            f[i], t0 = now - t0, now
        h = model._xs[-1]
        t0 = time.perf_counter()
        criterion.forward(h, yb)
        t1 = time.perf_counter()
        g = criterion.backward(h, yb)
        f[-1], b[-1] = t1 - t0, time.perf_counter() - t1
        t0 = time.perf_counter()
        for i in model.backward_steps(xb, g, grad_input=False, overwrite=True):     # the engine's step
            now = time.perf_counter()
            b[i], t0 = now - t0, now
        if step >= warmup:
            fwd += f
            bwd += b
    names = [f"{i} {layer.one_line()}" for i, layer in enumerate(layers)] + [repr(criterion)]
    model.zero_grad_parameters()
    return [LayerTime(name, 1e3 * fw / batches, 1e3 * bw / batches) for name, fw, bw in zip(names, fwd, bwd)]
