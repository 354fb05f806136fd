"""Gradient flow during training (``training.log_gradients: true``): per epoch and per parameter, how
large the gradients are and how far the optimizer moves the weights.

For a parameter ``W`` (named as in ``model.state_dict()``: ``1.weight``) over the ``S`` steps of an epoch:

* ``grad_norm    = mean_s ||g_s||_2``, ``g_s`` the gradient the optimizer was given at step ``s``
  (after clipping, when ``training.clip_grad_norm`` or ``clip_grad_value`` is set);
* ``update_ratio = mean_s ||W_s - W_(s-1)||_2 / ||W_(s-1)||_2``: one step's change of the weights
  relative to their size. Steps from all-zero weights (a bias initialised to zero, at the very first
  step) have no ratio and are left out of the mean (``nan`` if every step is).

How to read them: a ``grad_norm`` below :data:`VANISHING` means the layer has stopped receiving a
signal (vanishing gradients: the layers after it saturate, or its ReLUs are dead). Gradients are
exploding when the last epoch's ``grad_norm`` is :data:`EXPLODING` times the first epoch's or more,
or a step moves the weights by more than their own norm (``update_ratio > 1``): lower the learning
rate, normalise the data or clip. The size of a gradient alone says little (it scales with the loss:
an MSE on raw targets in the hundreds has norms in the hundreds), its growth does. An
``update_ratio`` near 1e-3 is the usual sign of a sound learning rate; 1e-1 or more rewrites the
weights every step; below 1e-6 they hardly move.

:class:`GradientFlow` is a :class:`~backprop_cli.engine.trainer.Callback`: the training loop is not
touched, and when logging is off the callback is not there, so training does no extra work.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn.module import Module
from .trainer import Callback

#: A gradient norm below this is flagged as vanishing.
VANISHING = 1e-7
#: A gradient norm that grew by this factor since the first epoch is flagged as exploding.
EXPLODING = 100.0
#: The columns of ``gradients.csv``, one row per epoch and parameter.
CSV_COLUMNS = ("epoch", "layer", "parameter", "grad_norm", "update_ratio")


def norm(a: np.ndarray) -> float:
    """``||a||_2`` over every entry."""
    flat = a.reshape(-1)
    return math.sqrt(float(np.dot(flat, flat)))


def update_ratio(step_norm: float, weight_norm: float) -> float:
    """``||W_new - W_old|| / ||W_old||``; nan for all-zero weights, which have no ratio."""
    return step_norm / weight_norm if weight_norm > 0 else math.nan


class GradientFlow(Callback):
    """Measures every step's gradient norm and update ratio, and puts each epoch's means into the
    epoch record as ``record["gradients"] = {"1.weight": {"grad_norm": ..., "update_ratio": ...}}``.

    Put it before the callbacks that save the record (the run directory), so they see it.
    """

    def __init__(self, model: Module) -> None:
        self.named = [(name, p, g) for name, p, g in model.named_parameters()]

    def on_epoch_begin(self, trainer, epoch: int, batches: int) -> None:
        self.previous = [p.copy() for _, p, _ in self.named]        # the weights before the next step
        self.grad_sums = [0.0] * len(self.named)
        self.ratio_sums = [0.0] * len(self.named)
        self.ratio_steps = [0] * len(self.named)
        self.steps = 0

    def on_batch_end(self, trainer, batch: int, loss: float, samples: int) -> None:
        self.steps += 1
        for k, (_, p, g) in enumerate(self.named):
            self.grad_sums[k] += norm(g)
            before = self.previous[k]
            old = norm(before)
            np.subtract(p, before, out=before)                       # the step, in place of the old weights
            if old > 0:
                self.ratio_sums[k] += update_ratio(norm(before), old)
                self.ratio_steps[k] += 1
            np.copyto(before, p)

    def on_epoch_end(self, trainer, record: dict) -> None:
        steps = max(self.steps, 1)
        record["gradients"] = {
            name: {"grad_norm": self.grad_sums[k] / steps,
                   "update_ratio": self.ratio_sums[k] / self.ratio_steps[k] if self.ratio_steps[k] else math.nan}
            for k, (name, _, _) in enumerate(self.named)}


def layer_label(model: Module, parameter: str) -> str:
    """The layer a parameter belongs to, as ``backprop summary`` numbers it: ``"1 Linear"`` for ``1.weight``."""
    head = parameter.split(".")[0]
    layers = getattr(model, "layers", None)
    if layers is not None and head.isdigit() and int(head) < len(layers):
        return f"{head} {type(layers[int(head)]).__name__}"
    return type(model).__name__


def flag(first_grad_norm: float, grad_norm: float, update_ratio: float) -> str:
    """``"vanishing"``, ``"exploding"`` or ``""`` for an epoch's means, given the first epoch's norm."""
    if grad_norm < VANISHING:
        return "vanishing"
    if grad_norm >= EXPLODING * first_grad_norm or update_ratio > 1:
        return "exploding"
    return ""


def csv_rows(history: list[dict], model: Module) -> list[list]:
    """The rows of ``gradients.csv`` (:data:`CSV_COLUMNS`) for every epoch that recorded gradients."""
    return [[record["epoch"], layer_label(model, name), name, stats["grad_norm"], stats["update_ratio"]]
            for record in history for name, stats in record.get("gradients", {}).items()]


def flow_summary(history: list[dict], model: Module) -> list[dict]:
    """Per parameter: its layer, the first and the last epoch's ``grad_norm``, the last ``update_ratio``
    and the flag of the last epoch (what ``train`` prints at the end); empty without gradient logging."""
    logged = [r for r in history if "gradients" in r]
    if not logged:
        return []
    first, last = logged[0]["gradients"], logged[-1]["gradients"]
    rows = []
    for name, stats in last.items():
        start = first.get(name, stats)["grad_norm"]
        rows.append({"layer": layer_label(model, name), "parameter": name, "first_grad_norm": start,
                     "grad_norm": stats["grad_norm"], "update_ratio": stats["update_ratio"],
                     "flag": flag(start, stats["grad_norm"], stats["update_ratio"]),
                     "epochs": (logged[0]["epoch"], logged[-1]["epoch"])})
    return rows
