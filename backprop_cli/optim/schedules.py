"""Learning-rate schedules, stepped once per epoch by the training engine.

A schedule is a function of the 0-based epoch plus explicit state; the engine drives it as::

    for epoch in range(start_epoch, epochs):
        optimizer.lr = schedule.lr_at(epoch)
        ...train one epoch, evaluate...
        schedule.observe(epoch, metric)       # the monitored metric; only ReduceLROnPlateau uses it

Every schedule except ReduceLROnPlateau is a pure function of the epoch (its ``state_dict`` is
empty); the plateau schedule's state is a few numbers. ``state_dict()`` is a flat dict of numbers,
so a resumed run continues exactly where it stopped. ``apply(optimizer, epoch)`` sets the lr (and,
for OneCycleLR, the momentum) in the optimizer; the engine calls it at the start of every epoch.

PyTorch's form works too: a schedule built on an optimizer, ``StepLR(opt, step_size=30)``, takes its
base lr from ``opt.lr``, sets ``opt.lr`` for epoch 0 at once and for the next epoch at every
``step()`` (``step(metric)`` for ReduceLROnPlateau), as PyTorch's schedulers do. The classes with
PyTorch's names (``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``CosineAnnealingLR``, ``LinearLR``,
``OneCycleLR``, ``ReduceLROnPlateau``) take PyTorch's arguments in PyTorch's order; ``last_epoch``
resumes the ``step()`` count.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np

from ..errors import CheckedArguments
from .optimizers import Optimizer, check_int, check_range, read_number


class _ScheduleCall(CheckedArguments):
    """Once a schedule built on an optimizer is constructed, its first ``step`` sets the optimizer's lr
    (PyTorch's schedulers do the same in their constructors)."""

    def __call__(cls, *args, **kwargs):
        schedule = super().__call__(*args, **kwargs)
        if schedule.optimizer is not None:
            schedule.step()
        return schedule


class Schedule(metaclass=_ScheduleCall):
    """Base class: ``lr_at(epoch)`` for the 0-based epoch, ``observe(epoch, metric)`` after it.

    The first argument is the base learning rate, or an optimizer (whose ``lr`` it is: PyTorch's
    form, with ``step()``). Subclasses implement ``_lr_at(epoch)``; a stateful one lists its state
    attributes in ``_state`` (name -> is an integer) and ``state_dict``/``load_state_dict`` need
    nothing more. ``repr`` lists the attributes named in ``_hyper``.
    """

    _hyper: tuple[str, ...] = ("base_lr",)
    _state: dict[str, bool] = {}

    def __init__(self, base_lr: float | Optimizer, last_epoch: int = -1) -> None:
        owner = type(self).__name__
        self.optimizer = base_lr if isinstance(base_lr, Optimizer) else None
        self.base_lr = check_range(owner, "base_lr", base_lr.lr if self.optimizer else base_lr, 0)
        self.last_epoch = check_int(owner, "last_epoch", last_epoch, -1)

    def lr_at(self, epoch: int) -> float:
        """The learning rate to train epoch ``epoch`` (0-based) with."""
        return self._lr_at(check_int(type(self).__name__, "epoch", epoch, 0))

    def apply(self, optimizer, epoch: int) -> float:
        """Set ``optimizer.lr`` to the lr of ``epoch`` (subclasses may set more); returns the lr."""
        optimizer.lr = lr = self.lr_at(epoch)
        return lr

    def step(self) -> None:
        """PyTorch's ``scheduler.step()``: the next epoch's lr into the optimizer this was built on."""
        if self.optimizer is None:
            raise TypeError(f"{type(self).__name__}.step() needs the schedule built on an optimizer, as in "
                            f"{type(self).__name__}(optimizer, ...); with a base lr, use lr_at(epoch)")
        self.last_epoch += 1
        self.apply(self.optimizer, self.last_epoch)

    def get_last_lr(self) -> list[float]:
        """PyTorch's ``get_last_lr()``: the lr the last ``step()`` set."""
        if self.optimizer is None:
            raise TypeError(f"{type(self).__name__}.get_last_lr() needs the schedule built on an optimizer")
        return [self.optimizer.lr]

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

    def __init__(self, optimizer: float | Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        super().__init__(optimizer, last_epoch)
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

    def __init__(self, optimizer: float | Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        super().__init__(optimizer, last_epoch)
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

    def __init__(self, optimizer: float | Optimizer, gamma: float, last_epoch: int = -1) -> None:
        super().__init__(optimizer, last_epoch)
        self.gamma = check_range("ExponentialLR", "gamma", gamma, 0, low_open=True)

    def _lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** epoch


class CosineLR(Schedule):
    """Cosine annealing from ``base_lr`` down to ``min_lr`` over ``t_max`` epochs, then ``min_lr``.

    ``lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * epoch / t_max)) / 2`` for ``epoch < t_max``;
    ``t_max >= 1``, ``0 <= min_lr <= base_lr``. Past ``t_max`` the lr stays at ``min_lr`` (the
    default), or with ``cycle=True`` the same formula goes on, back up to ``base_lr`` at ``2 t_max``
    and so on: PyTorch's ``CosineAnnealingLR`` (without restarts) exactly.
    """

    _hyper = ("base_lr", "t_max", "min_lr", "cycle")

    def __init__(self, base_lr: float | Optimizer, t_max: int, min_lr: float = 0.0, *, cycle: bool = False,
                 last_epoch: int = -1) -> None:
        super().__init__(base_lr, last_epoch)
        owner = type(self).__name__
        self.t_max = check_int(owner, "t_max", t_max, 1)
        self.min_lr = check_range(owner, "min_lr", min_lr, 0, None if cycle else self.base_lr)
        self.cycle = bool(cycle)

    def _lr_at(self, epoch: int) -> float:
        if epoch >= self.t_max and not self.cycle:
            return self.min_lr
        return self.min_lr + (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * epoch / self.t_max)) / 2.0


class CosineAnnealingLR(CosineLR):
    """PyTorch's ``CosineAnnealingLR``: :class:`CosineLR` with ``cycle=True`` and PyTorch's arguments
    (``T_max``, ``eta_min``, which may exceed the base lr as in PyTorch).

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` at every epoch.
    """

    def __init__(self, optimizer: float | Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        super().__init__(optimizer, T_max, eta_min, cycle=True, last_epoch=last_epoch)


class LinearLR(Schedule):
    """``lr = base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters)``.

    PyTorch's ``LinearLR``: a ramp over the first ``total_iters`` epochs, then ``end_factor * base_lr``.
    ``start_factor`` in ``(0, 1]``, ``end_factor`` in ``[0, 1]``, ``total_iters >= 1``.
    Example: ``LinearLR(0.1, start_factor=0.1, total_iters=4)`` trains at 0.01, 0.0325, 0.055, 0.0775, 0.1, ...
    """

    _hyper = ("base_lr", "start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer: float | Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        super().__init__(optimizer, last_epoch)
        self.start_factor = check_range("LinearLR", "start_factor", start_factor, 0, 1, low_open=True)
        self.end_factor = check_range("LinearLR", "end_factor", end_factor, 0, 1)
        self.total_iters = check_int("LinearLR", "total_iters", total_iters, 1)

    def _lr_at(self, epoch: int) -> float:
        ramp = (self.end_factor - self.start_factor) * min(epoch, self.total_iters) / self.total_iters
        return self.base_lr * (self.start_factor + ramp)


class OneCycleLR(Schedule):
    """Smith's one-cycle policy, PyTorch's ``OneCycleLR``: up from ``max_lr / div_factor`` to ``max_lr``
    over the first ``pct_start`` of ``total_steps``, then down to ``max_lr / div_factor / final_div_factor``.

    Each phase runs from its start to its end value, as ``end + (start - end) (1 + cos(pi f)) / 2``
    (``anneal_strategy="cos"``) or ``start + (end - start) f`` (``"linear"``), ``f`` the fraction of
    the phase done; phases end at steps ``pct_start * total_steps - 1`` and ``total_steps - 1``.
    ``three_phase=True`` comes back down to the start value by ``2 pct_start total_steps - 2`` first.
    With ``cycle_momentum`` the momentum (SGD's and RMSprop's ``momentum``, Adam's ``betas[0]``) runs
    the other way, ``max_momentum`` to ``base_momentum`` and back. ``total_steps`` is
    ``epochs * steps_per_epoch`` when not given. The engine steps it once an epoch (a config's
    ``total_steps`` defaults to its epochs); ``step()`` steps it wherever it is called (PyTorch steps
    it every batch). The first argument's lr is not used: ``max_lr`` sets every value.
    Example: ``OneCycleLR(opt, max_lr=0.1, total_steps=100)``.
    """

    _hyper = ("max_lr", "total_steps", "pct_start", "anneal_strategy", "cycle_momentum", "div_factor",
              "final_div_factor", "three_phase")

    def __init__(self, optimizer: float | Optimizer, max_lr: float, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1) -> None:
        owner = "OneCycleLR"
        super().__init__(optimizer, last_epoch)
        self.max_lr = check_range(owner, "max_lr", max_lr, 0, low_open=True)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError(f"{owner}: give total_steps, or epochs and steps_per_epoch")
            total_steps = check_int(owner, "epochs", epochs, 1) * check_int(owner, "steps_per_epoch",
                                                                           steps_per_epoch, 1)
        self.total_steps = check_int(owner, "total_steps", total_steps, 1)
        self.pct_start = check_range(owner, "pct_start", pct_start, 0, 1)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{owner}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy, self.cycle_momentum, self.three_phase = anneal_strategy, bool(cycle_momentum), bool(three_phase)
        self.base_momentum = check_range(owner, "base_momentum", base_momentum, 0, 1)
        self.max_momentum = check_range(owner, "max_momentum", max_momentum, 0, 1)
        self.div_factor = check_range(owner, "div_factor", div_factor, 0, low_open=True)
        self.final_div_factor = check_range(owner, "final_div_factor", final_div_factor, 0, low_open=True)
        if self.optimizer is not None and self.cycle_momentum:
            momentum_of(self.optimizer)

    def _phases(self) -> list[tuple[float, float, float, float, float]]:
        """``(end step, start lr, end lr, start momentum, end momentum)`` per phase."""
        initial = self.max_lr / self.div_factor
        low = initial / self.final_div_factor
        up, top = float(self.pct_start * self.total_steps) - 1, self.max_momentum
        last = self.total_steps - 1
        if self.three_phase:
            return [(up, initial, self.max_lr, top, self.base_momentum),
                    (float(2 * self.pct_start * self.total_steps) - 2, self.max_lr, initial, self.base_momentum, top),
                    (last, initial, low, top, top)]
        return [(up, initial, self.max_lr, top, self.base_momentum), (last, self.max_lr, low, self.base_momentum, top)]

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def _at(self, epoch: int) -> tuple[float, float]:
        """``(lr, momentum)`` at step ``epoch``, as PyTorch computes them."""
        if epoch > self.total_steps:
            raise ValueError(f"OneCycleLR: step {epoch} is past total_steps={self.total_steps}")
        phases, start = self._phases(), 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
            if epoch <= end or i == len(phases) - 1:
                fraction = (epoch - start) / (end - start)
                return self._anneal(lr0, lr1, fraction), self._anneal(m0, m1, fraction)
            start = end
        raise AssertionError("unreachable: the last phase always matches")

    def _lr_at(self, epoch: int) -> float:
        return self._at(epoch)[0]

    def apply(self, optimizer, epoch: int) -> float:
        """The lr, and with ``cycle_momentum`` the momentum (or ``betas[0]``), of step ``epoch``."""
        lr, momentum = self._at(check_int("OneCycleLR", "epoch", epoch, 0))
        optimizer.lr = lr
        if self.cycle_momentum:
            if momentum_of(optimizer) == "betas":
                optimizer.betas = (momentum, optimizer.betas[1])
            else:
                optimizer.momentum = momentum
        return lr


def momentum_of(optimizer) -> str:
    """``"betas"`` or ``"momentum"``: what OneCycleLR's ``cycle_momentum`` cycles in ``optimizer``, which
    must have momentum to cycle (SGD and RMSprop built with ``momentum > 0``; Adam, AdamW)."""
    if isinstance(getattr(optimizer, "betas", None), tuple):
        return "betas"
    if getattr(optimizer, "momentum", 0) > 0:
        return "momentum"
    raise ValueError(f"OneCycleLR: cycle_momentum needs an optimizer with momentum to cycle (SGD or RMSprop "
                     f"built with momentum > 0, Adam, AdamW), got {type(optimizer).__name__}"
                     f"{' with momentum=0' if hasattr(optimizer, 'momentum') else ''}; "
                     f"pass cycle_momentum=False")


class ReduceLROnPlateau(Schedule):
    """Multiply the lr by ``factor`` when the metric has not improved for more than ``patience`` epochs.

    PyTorch's ``ReduceLROnPlateau`` with ``threshold_mode="rel"``. At the end of each epoch,
    ``observe(epoch, metric)``::

        better = metric < best - |best| * threshold      (mode "min"; "max": metric > best + |best| * threshold)
        if better: best = metric; num_bad_epochs = 0  else: num_bad_epochs += 1
        if cooldown_counter > 0: cooldown_counter -= 1; num_bad_epochs = 0
        if num_bad_epochs > patience:
            lr = max(lr * factor, min_lr)   (kept only if it drops by more than eps)
            cooldown_counter = cooldown; num_bad_epochs = 0

    The new lr applies from the next epoch. ``best`` starts at +inf ("min") or -inf ("max"); a NaN
    metric is never better. PyTorch writes the threshold as ``best * (1 - threshold)``, which for a
    negative ``best`` accepts a slightly *worse* metric; ``|best|`` makes it mean "improves by a
    relative ``threshold``" for either sign (identical for ``best >= 0``).

    ``threshold_mode="abs"`` compares with ``best -+ threshold`` instead.

    Hyper-parameters: ``mode`` ``"min" | "max"``; ``factor`` in ``[0, 1)``; integers ``patience >= 0``,
    ``cooldown >= 0``; ``threshold >= 0``; ``threshold_mode`` ``"rel" | "abs"``;
    ``0 <= min_lr <= base_lr``; ``eps >= 0``.
    State: ``lr``, ``best``, ``num_bad_epochs``, ``cooldown_counter``, ``last_epoch``.
    """

    _hyper = ("base_lr", "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr")
    _state = {"lr": False, "best": False, "num_bad_epochs": True, "cooldown_counter": True, "last_epoch": True}

    def __init__(self, optimizer: float | Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0,
                 eps: float = 1e-8) -> None:
        super().__init__(optimizer)
        owner = "ReduceLROnPlateau"
        if mode not in ("min", "max"):
            raise ValueError(f"{owner}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{owner}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = check_range(owner, "factor", factor, 0, 1, high_open=True)
        self.patience = check_int(owner, "patience", patience, 0)
        self.threshold = check_range(owner, "threshold", threshold, 0)
        self.cooldown = check_int(owner, "cooldown", cooldown, 0)
        self.min_lr = check_range(owner, "min_lr", min_lr, 0, self.base_lr)
        self.eps = check_range(owner, "eps", eps, 0)
        self.lr = self.base_lr
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _lr_at(self, epoch: int) -> float:
        return self.lr

    def _is_better(self, metric: float) -> bool:
        if self.threshold_mode == "abs":
            margin = self.threshold
        else:
            margin = abs(self.best) * self.threshold if math.isfinite(self.best) else 0.0
        if self.mode == "min":
            return metric < self.best - margin
        return metric > self.best + margin

    def step(self, metrics: float | None = None) -> None:
        """PyTorch's ``scheduler.step(metric)``: observe the epoch's metric, then set the optimizer's lr."""
        if self.optimizer is None:
            super().step()                                 # raises: no optimizer to set
        if self.last_epoch >= 0 or metrics is not None:    # construction's first step observes nothing
            self.observe(self.last_epoch + 1, metrics)
        else:
            self.last_epoch = 0
        self.optimizer.lr = self.lr

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
            if self.lr - new_lr > self.eps:
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
        self.optimizer = inner.optimizer
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
    "cosine": CosineLR, "plateau": ReduceLROnPlateau, "linear": LinearLR, "onecycle": OneCycleLR,
}
