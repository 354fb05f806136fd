"""Learning-rate schedules, stepped once per epoch by the training engine.

A schedule is a function of the 0-based epoch plus explicit state; the engine drives it as::

    for epoch in range(start_epoch, epochs):
        optimizer.lr = schedule.lr_at(epoch)
        ...train one epoch, evaluate...
        schedule.observe(epoch, metric)       # the monitored metric; only ReduceLROnPlateau uses it

Every schedule except ReduceLROnPlateau is a pure function of the epoch (its ``state_dict`` is
empty); the plateau schedule's state is a few numbers. ``state_dict()`` is a flat dict of numbers,
so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np

from .optimizers import check_int, check_range, read_number


class Schedule(ABC):
    """Base class: ``lr_at(epoch)`` for the 0-based epoch, ``observe(epoch, metric)`` after it.

    Subclasses implement ``_lr_at(epoch)``; a stateful one lists its state attributes in ``_state``
    (name -> is an integer) and ``state_dict``/``load_state_dict`` need nothing more. ``repr``
    lists the attributes named in ``_hyper``.
    """

    _hyper: tuple[str, ...] = ("base_lr",)
    _state: dict[str, bool] = {}

    def __init__(self, base_lr: float) -> None:
        self.base_lr = check_range(type(self).__name__, "base_lr", base_lr, 0)

    def lr_at(self, epoch: int) -> float:
        """The learning rate to train epoch ``epoch`` (0-based) with."""
        return self._lr_at(check_int(type(self).__name__, "epoch", epoch, 0))

    @abstractmethod
    def _lr_at(self, epoch: int) -> float:
        """The learning rate at a validated epoch."""

    def observe(self, epoch: int, metric: float | None) -> None:
        """Called at the end of each epoch with the monitored metric (``val_loss``, ``val_accuracy``,
        or ``train_loss`` without validation data). Only :class:`ReduceLROnPlateau` uses it."""

    def state_dict(self) -> dict[str, int | float]:
        """A flat dict of numbers; empty for the schedules that are pure functions of the epoch."""
        return {name: getattr(self, name) for name in self._state}

    def load_state_dict(self, state: Mapping[str, int | float]) -> None:
        """Restore ``state_dict()`` output; ``ValueError`` lists every missing or unexpected entry."""
        problems: list[str] = []
        values = {name: read_number(state, name, problems, integer=integer, finite=False)
                  for name, integer in self._state.items()}
        problems += [f"{key}: unexpected" for key in state if key not in self._state]
        if problems:
            raise ValueError(f"{type(self).__name__} state does not fit: " + "; ".join(problems))
        for name, value in values.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._hyper)
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """``lr = base_lr`` at every epoch."""

    def _lr_at(self, epoch: int) -> float:
        return self.base_lr


class StepLR(Schedule):
    """``lr = base_lr * gamma ** (epoch // step_size)``; ``step_size >= 1``, ``gamma > 0``.

    Example: ``StepLR(0.1, step_size=30)`` trains epochs 0-29 at 0.1, 30-59 at 0.01, ...
    """

    _hyper = ("base_lr", "step_size", "gamma")

    def __init__(self, base_lr: float, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(base_lr)
        self.step_size = check_int("StepLR", "step_size", step_size, 1)
        self.gamma = check_range("StepLR", "gamma", gamma, 0, low_open=True)

    def _lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(Schedule):
    """``lr = base_lr * gamma ** (number of milestones <= epoch)``; ``gamma > 0``.

    ``milestones`` are strictly increasing epochs ``>= 1``. Example: ``MultiStepLR(0.1, [30, 80])``
    trains epochs 0-29 at 0.1, 30-79 at 0.01, then 0.001.
    """

    _hyper = ("base_lr", "milestones", "gamma")

    def __init__(self, base_lr: float, milestones: Sequence[int], gamma: float = 0.1) -> None:
        super().__init__(base_lr)
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, (Sequence, np.ndarray)):
            raise ValueError(f"MultiStepLR: milestones must be a list of epochs, got {milestones!r}")
        self.milestones = [check_int("MultiStepLR", f"milestones[{i}]", m, 1) for i, m in enumerate(milestones)]
        if any(a >= b for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"MultiStepLR: milestones must be strictly increasing, got {self.milestones}")
        self.gamma = check_range("MultiStepLR", "gamma", gamma, 0, low_open=True)

    def _lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** bisect_right(self.milestones, epoch)


class ExponentialLR(Schedule):
    """``lr = base_lr * gamma ** epoch``; ``gamma > 0``."""

    _hyper = ("base_lr", "gamma")

    def __init__(self, base_lr: float, gamma: float) -> None:
        super().__init__(base_lr)
        self.gamma = check_range("ExponentialLR", "gamma", gamma, 0, low_open=True)

    def _lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** epoch


class CosineLR(Schedule):
    """Cosine annealing from ``base_lr`` down to ``min_lr`` over ``t_max`` epochs, then ``min_lr``.

    ``lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * epoch / t_max)) / 2`` for ``epoch < t_max``;
    ``t_max >= 1``, ``0 <= min_lr <= base_lr``. (PyTorch's ``CosineAnnealingLR`` without restarts.)
    """

    _hyper = ("base_lr", "t_max", "min_lr")

    def __init__(self, base_lr: float, t_max: int, min_lr: float = 0.0) -> None:
        super().__init__(base_lr)
        self.t_max = check_int("CosineLR", "t_max", t_max, 1)
        self.min_lr = check_range("CosineLR", "min_lr", min_lr, 0, self.base_lr)

    def _lr_at(self, epoch: int) -> float:
        if epoch >= self.t_max:
            return self.min_lr
        return self.min_lr + (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * epoch / self.t_max)) / 2.0


class ReduceLROnPlateau(Schedule):
    """Multiply the lr by ``factor`` when the metric has not improved for more than ``patience`` epochs.

    PyTorch's ``ReduceLROnPlateau`` with ``threshold_mode="rel"``. At the end of each epoch,
    ``observe(epoch, metric)``::

        better = metric < best - |best| * threshold      (mode "min"; "max": metric > best + |best| * threshold)
        if better: best = metric; num_bad_epochs = 0  else: num_bad_epochs += 1
        if cooldown_counter > 0: cooldown_counter -= 1; num_bad_epochs = 0
        if num_bad_epochs > patience:
            lr = max(lr * factor, min_lr)   (kept only if it drops by more than 1e-8)
            cooldown_counter = cooldown; num_bad_epochs = 0

    The new lr applies from the next epoch. ``best`` starts at +inf ("min") or -inf ("max"); a NaN
    metric is never better. PyTorch writes the threshold as ``best * (1 - threshold)``, which for a
    negative ``best`` accepts a slightly *worse* metric; ``|best|`` makes it mean "improves by a
    relative ``threshold``" for either sign (identical for ``best >= 0``).

    Hyper-parameters: ``mode`` ``"min" | "max"``; ``factor`` in ``[0, 1)``; integers ``patience >= 0``,
    ``cooldown >= 0``; ``threshold >= 0``; ``0 <= min_lr <= base_lr``.
    State: ``lr``, ``best``, ``num_bad_epochs``, ``cooldown_counter``, ``last_epoch``.
    """

    _hyper = ("base_lr", "mode", "factor", "patience", "threshold", "cooldown", "min_lr")
    _state = {"lr": False, "best": False, "num_bad_epochs": True, "cooldown_counter": True, "last_epoch": True}
    _MIN_DECREASE = 1e-8  # PyTorch's eps: smaller reductions are ignored

    def __init__(self, base_lr: float, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0) -> None:
        super().__init__(base_lr)
        owner = "ReduceLROnPlateau"
        if mode not in ("min", "max"):
            raise ValueError(f"{owner}: mode must be 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.factor = check_range(owner, "factor", factor, 0, 1, high_open=True)
        self.patience = check_int(owner, "patience", patience, 0)
        self.threshold = check_range(owner, "threshold", threshold, 0)
        self.cooldown = check_int(owner, "cooldown", cooldown, 0)
        self.min_lr = check_range(owner, "min_lr", min_lr, 0, self.base_lr)
        self.lr = self.base_lr
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = -1

    def _lr_at(self, epoch: int) -> float:
        return self.lr

    def _is_better(self, metric: float) -> bool:
        margin = abs(self.best) * self.threshold if math.isfinite(self.best) else 0.0
        if self.mode == "min":
            return metric < self.best - margin
        return metric > self.best + margin

    def observe(self, epoch: int, metric: float | None) -> None:
        epoch = check_int("ReduceLROnPlateau", "epoch", epoch, 0)
        if metric is None:
            raise ValueError(f"ReduceLROnPlateau needs the monitored metric at the end of every epoch; "
                             f"epoch {epoch} had none")
        if isinstance(metric, bool) or not isinstance(metric, Real):
            raise TypeError(f"ReduceLROnPlateau: metric must be a number, got {type(metric).__name__}")
        metric = float(metric)
        self.last_epoch = epoch
        if self._is_better(metric):
            self.best, self.num_bad_epochs = metric, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self._MIN_DECREASE:
                self.lr = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0


class Warmup(Schedule):
    """A linear ramp over the first ``warmup_epochs`` epochs, then the ``inner`` schedule, shifted.

    ``lr = inner.lr_at(0) * (start_factor + (1 - start_factor) * epoch / warmup_epochs)`` for
    ``epoch < warmup_epochs``, then ``lr = inner.lr_at(epoch - warmup_epochs)``: the inner schedule
    starts its own epoch 0 when the warmup ends, as with PyTorch's ``SequentialLR(LinearLR, inner)``,
    so ``Warmup(CosineLR(0.1, t_max=90), 10)`` anneals over epochs 10-99. Metrics observed during the
    warmup are not passed on (a plateau schedule starts counting after it); later ones reach
    ``inner.observe(epoch - warmup_epochs, metric)``.

    Hyper-parameters: integer ``warmup_epochs >= 0`` (0: no warmup); ``start_factor`` in ``(0, 1]``.
    State: the inner schedule's, under ``"inner.<name>"``.
    """

    _hyper = ("inner", "warmup_epochs", "start_factor")

    def __init__(self, inner: Schedule, warmup_epochs: int, start_factor: float = 0.1) -> None:
        if not isinstance(inner, Schedule):
            raise TypeError(f"Warmup: inner must be a Schedule, got {type(inner).__name__}")
        super().__init__(inner.base_lr)
        self.inner = inner
        self.warmup_epochs = check_int("Warmup", "warmup_epochs", warmup_epochs, 0)
        self.start_factor = check_range("Warmup", "start_factor", start_factor, 0, 1, low_open=True)

    def _lr_at(self, epoch: int) -> float:
        if epoch >= self.warmup_epochs:
            return self.inner.lr_at(epoch - self.warmup_epochs)
        ramp = self.start_factor + (1.0 - self.start_factor) * epoch / self.warmup_epochs
        return self.inner.lr_at(0) * ramp

    def observe(self, epoch: int, metric: float | None) -> None:
        epoch = check_int("Warmup", "epoch", epoch, 0)
        if epoch >= self.warmup_epochs:
            self.inner.observe(epoch - self.warmup_epochs, metric)

    def state_dict(self) -> dict[str, int | float]:
        return {f"inner.{key}": value for key, value in self.inner.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, int | float]) -> None:
        unexpected = [f"{key}: unexpected" for key in state if not key.startswith("inner.")]
        if unexpected:
            raise ValueError("Warmup state does not fit: " + "; ".join(unexpected))
        self.inner.load_state_dict({key[len("inner."):]: value for key, value in state.items()})


#: Config name -> schedule class (``Warmup`` wraps any of them).
SCHEDULES: dict[str, type[Schedule]] = {
    "constant": Constant, "step": StepLR, "multistep": MultiStepLR, "exponential": ExponentialLR,
    "cosine": CosineLR, "plateau": ReduceLROnPlateau,
}
