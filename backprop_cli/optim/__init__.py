"""Optimizers, learning-rate schedules and gradient clipping; numpy only.

Layer 0, the library (with ``nn`` and ``data``): imports numpy and ``errors`` only, never a config,
the engine or the CLI.

``OPTIMIZERS`` and ``SCHEDULES`` map the names a config uses (``"sgd"``, ``"cosine"``) to classes.
Optimizers update the model's arrays in place and hold all their own state; schedules set
``optimizer.lr`` once an epoch; clipping acts on the gradients between backward and ``step()``.
"""

from .clip import clip_grad_norm, clip_grad_value
from .optimizers import OPTIMIZERS, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .schedules import (SCHEDULES, Constant, CosineAnnealingLR, CosineLR, ExponentialLR, LinearLR, MultiStepLR,
                        OneCycleLR, ReduceLROnPlateau, Schedule, StepLR, Warmup)

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "OPTIMIZERS",
    "Schedule", "Constant", "StepLR", "MultiStepLR", "ExponentialLR", "CosineLR", "CosineAnnealingLR",
    "LinearLR", "OneCycleLR", "ReduceLROnPlateau", "Warmup", "SCHEDULES",
    "clip_grad_norm", "clip_grad_value",
]
