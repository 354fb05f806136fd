"""The training engine: epochs of shuffled mini-batches, forward, criterion, backward, clip, step.

The engine knows nothing of terminals or files. It reports through :class:`Callback` events (the CLI
renders them with rich; a notebook can print them) and hands its complete state to whoever saves
checkpoints (``Trainer.state_dict``), so a run resumes exactly, even from the middle of an epoch.

One step, with the Torch7 names::

    output = model.forward(x)                          -- model:forward(x)
    loss   = criterion.forward(output, y)              -- criterion:forward(output, y)
    dl_do  = criterion.backward(output, y)             -- dLoss/dOutput
    model.zero_grad_parameters()                       -- model:zeroGradParameters()
    model.backward(x, dl_do)                           -- dLoss/dInput, and dLoss/dW accumulated
    optimizer.step()                                   -- W <- W - lr * (a function of dLoss/dW)

The engine runs the middle two as one call, ``model.acc_grad_parameters(x, dl_do, overwrite=True)``:
the same parameter gradients, without the one gradient nobody reads, dLoss/dx of the data (PyTorch
skips it too: inputs do not require grad), and written outright where a layer can (no zeroing pass).

The losses it reports are means over the samples seen, weighted as the criterion weighs them: with
class weights or ``ignore_index`` a batch counts by its summed weights (``Criterion.mean_count``),
so the epoch and validation losses equal the loss of the whole set at once, whatever the batch size.
Shuffling draws from its own stream of the seed (:func:`~backprop_cli.nn.init.random_streams`).

:meth:`Trainer.fit` is only that loop; what is not the loop sits beside it: :class:`Position` (an
epoch's sample order, running totals and time, saved when a run stops mid-epoch), :class:`Best` (the
best epoch by the monitored metric, and early stopping), :func:`clip_and_check` (clipping and the
finiteness test) and :func:`non_finite_error` (the guard's message, naming the first non-finite
layer). When checkpoints are written is the run directory's business (:mod:`backprop_cli.engine.run`).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..errors import TrainingError
from ..nn.container import first_non_finite
from ..nn.init import random_streams
from ..nn.module import Criterion, Module, acc_grad_parameters
from ..optim.clip import clip_grad_norm, clip_grad_value
from .metrics import Metrics, Report
from .threads import BlasThreads, check_setting


class Callback:
    """Hooks the engine calls; override the ones you need."""

    def on_train_begin(self, trainer: Trainer) -> None: ...
    def on_epoch_begin(self, trainer: Trainer, epoch: int, batches: int) -> None: ...
    def on_batch_end(self, trainer: Trainer, batch: int, loss: float, samples: int) -> None: ...
    def on_epoch_end(self, trainer: Trainer, record: dict) -> None: ...
    def on_train_end(self, trainer: Trainer, reason: str) -> None: ...


class Interrupted(Exception):
    """Training stopped between two steps at the user's request (Ctrl-C, SIGTERM); state is consistent.
    Whoever saves the state for a resume sets ``checkpoint`` to the file."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.checkpoint = None


@dataclass
class Position:
    """An epoch under way: its sample order, the next batch, and its running totals (the loss summed
    as :func:`loss_sum_and_weight` gives it and the weight it is a mean over, samples seen, seconds).
    A checkpoint written mid-epoch stores it, so the epoch resumes."""

    perm: np.ndarray
    batch: int
    loss_sum: float = 0.0
    seen: int = 0
    seconds: float = 0.0
    weight: float | None = None          # None in checkpoints from before it was kept: then ``seen``

    def __post_init__(self) -> None:
        if self.weight is None:
            self.weight = float(self.seen)

    def add(self, loss_sum: float, weight: float, samples: int) -> None:
        self.loss_sum += loss_sum
        self.weight += weight
        self.seen += samples
        self.batch += 1

    @property
    def running_loss(self) -> float:
        return self.loss_sum / self.weight if self.weight else 0.0


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without an improvement of at least ``min_delta`` in the monitor."""

    patience: int = 5
    min_delta: float = 0.0


@contextmanager
def evaluation_mode(model: Module):
    """Evaluation mode inside the block; afterwards every module has the mode it had (a BatchNorm
    the user froze in a training model stays frozen)."""
    modes = [(m, m.training) for m in model.modules()]
    model.evaluate()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def measure(model: Module, criterion: Criterion, x: np.ndarray, y: np.ndarray, *,
            batch_size: int = 256) -> tuple[float, Report]:
    """One pass of ``model`` over ``(x, y)`` in evaluation mode: the loss (the criterion's on all of
    ``(x, y)`` at once, whatever ``batch_size``) and the :class:`~backprop_cli.engine.metrics.Report`
    of every metric. The model's modes are restored."""
    n, loss_sum, weight, metrics = len(x), 0.0, 0.0, Metrics(criterion)
    with evaluation_mode(model):
        for start in range(0, n, batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            out = model.forward(xb)
            total, count = loss_sum_and_weight(criterion, criterion.forward(out, yb), out, yb)
            loss_sum, weight = loss_sum + total, weight + count
            metrics.add(out, yb)
    return loss_sum / weight if weight else 0.0, metrics.report()


def evaluate(model: Module, criterion: Criterion, x: np.ndarray, y: np.ndarray, *,
             batch_size: int = 256) -> dict[str, float | None]:
    """The loss and every metric of ``model`` on ``(x, y)`` (:mod:`~backprop_cli.engine.metrics`),
    flat: ``{"loss", "accuracy", "f1_macro", ..., "recall_0", ...}`` or ``{"loss", "mse", "mae", "rmse", "r2"}``."""
    loss, report = measure(model, criterion, x, y, batch_size=batch_size)
    return {"loss": loss, **report.flat()}


def _all_finite(flat_arrays: list[np.ndarray]) -> bool:
    """No inf or NaN in any of the 1-D arrays. The sum of their dot products with themselves is the
    fast test (inf and NaN propagate, and BLAS reads faster than ``sum``); only when it overflows on
    large finite values is every element checked."""
    total = 0.0
    for f in flat_arrays:
        total += float(np.dot(f, f))
    return math.isfinite(total) or all(bool(np.isfinite(f).all()) for f in flat_arrays)


def loss_sum_and_weight(criterion: Criterion, loss: float, output: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """A batch's ``loss`` as ``(summed loss, weight)``; over several batches ``sum / weight`` is the
    loss of all of them at once. For ``mean`` the weight is what the criterion divided by (the summed
    class weights, the targets not ignored, the elements); a ``sum`` loss is reported per sample."""
    if criterion.reduction == "mean":
        count = criterion.mean_count(output, target)
        return loss * count, count
    return loss, float(len(output))


@dataclass
class Best:
    """The best epoch so far by the monitored metric, its weights, and the epochs since (early stopping)."""

    metric: float | None = None
    epoch: int | None = None
    state: dict[str, np.ndarray] | None = None
    bad_epochs: int = 0

    def update(self, value: float, epoch: int, model: Module, mode: str,
               early_stopping: EarlyStopping | None) -> tuple[bool, bool]:
        """Record the epoch's ``value``; returns ``(better, stop)``: whether it is the new best by
        ``mode`` (its weights are then kept), and whether early stopping's patience has run out."""
        delta = early_stopping.min_delta if early_stopping else 0.0
        better = (self.metric is None or
                  (value < self.metric - delta if mode == "min" else value > self.metric + delta))
        if better:
            self.metric, self.epoch, self.bad_epochs = value, epoch, 0
            self.state = model.state_dict()
        else:
            self.bad_epochs += 1
        return better, bool(early_stopping and self.bad_epochs >= early_stopping.patience)


def clip_and_check(grads: list[np.ndarray], flat_grads: list[np.ndarray], clip_norm: float | None,
                   clip_value: float | None) -> tuple[bool, float | None]:
    """Between backward and the step: clip the gradients (by value, then by norm) and tell whether they
    are finite; returns ``(finite, the norm before clipping or None)``. Clipping by value would turn
    an inf into ``+-clip_value``, so it looks first."""
    finite, norm = True, None
    if clip_value is not None:
        finite = math.isfinite(clip_grad_value(grads, clip_value))
    if clip_norm is not None:
        norm = clip_grad_norm(grads, clip_norm)
        finite = finite and math.isfinite(norm)
    elif finite:
        finite = _all_finite(flat_grads)
    return finite, norm


def non_finite_error(model: Module, what: str, epoch: int, batch: int) -> TrainingError:
    """The error for a non-finite loss or gradient, naming the first layer whose output or gradient
    went non-finite."""
    where = first_non_finite(model) or ("the criterion" if what == "loss" else "a parameter gradient")
    return TrainingError(f"non-finite {what} at epoch {epoch + 1}, batch {batch + 1} "
                         f"(first non-finite: {where}); lower the learning rate or clip gradients",
                         where="training")


@dataclass
class Trainer:
    """Fit ``model`` with ``criterion`` and ``optimizer`` (and an optional ``schedule``) on arrays.

    Example::

        trainer = Trainer(model, CrossEntropyCriterion(), SGD(*model.parameters(), lr=0.1), seed=0)
        history = trainer.fit(x_train, y_train, x_val, y_val, epochs=10)
    """

    model: Module
    criterion: Criterion
    optimizer: object
    schedule: object | None = None
    batch_size: int = 32
    shuffle: bool = True
    seed: int = 0
    clip_norm: float | None = None
    clip_value: float | None = None
    monitor: str = "val_loss"
    mode: str = "min"
    early_stopping: EarlyStopping | None = None
    callbacks: list[Callback] = field(default_factory=list)
    threads: int | str | None = None     # BLAS threads while fitting: N, "auto" (engine.threads), None: as they are

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        check_setting(self.threads)
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")
        if getattr(self.criterion, "reduction", "mean") == "none":
            raise ValueError(f"{type(self.criterion).__name__}(reduction='none') gives one loss per sample; "
                             "training needs one number: use 'mean' or 'sum'")
        self.rng = random_streams(self.seed).shuffle
        self.epoch = 0                   # epochs completed
        self.step = 0                    # optimizer steps taken
        self.history: list[dict] = []
        self.best = Best()
        self.stop_reason: str | None = None
        self.stop_requested: str | None = None     # set (e.g. by a signal handler) to stop after this step
        self.last_grad_norm: float | None = None
        self.running_loss: float | None = None     # the epoch's loss per sample so far
        self._resume: Position | None = None      # where an interrupted epoch goes on
        self._watching: tuple[str, str] | None = None   # (metric, mode) this fit monitors
        self._blas = BlasThreads(None)             # the BLAS threads of the fit under way

    @property
    def best_epoch(self) -> int | None:
        return self.best.epoch

    @property
    def best_metric(self) -> float | None:
        return self.best.metric

    @property
    def monitored(self) -> tuple[str, str] | None:
        """``(metric, mode)`` the last ``fit`` monitored: ``monitor`` and ``mode``, or ``("train_loss",
        "min")`` when it had no validation data for a ``val_*`` monitor; None before any fit."""
        return self._watching

    @property
    def mid_epoch(self) -> bool:
        """True when the trainer was stopped (or restored) in the middle of an epoch."""
        return self._resume is not None

    def _emit(self, event: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self, *args)

    # ------------------------------------------------------------------ fitting
    def fit(self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, *, epochs: int) -> list[dict]:
        """Train until ``epochs`` epochs are complete (counting those already done) or early stopping.

        Without validation data a ``val_*`` monitor falls back to ``train_loss`` (mode min) for this
        call (``self.monitor`` stays; a later call with validation data monitors it). When early
        stopping ends the run, the model is given the best weights (after ``on_train_end``, which sees
        the final state); the optimizer keeps its last state.

        Raises :class:`Interrupted` when ``stop_requested`` is set, after a complete step, and
        :class:`~backprop_cli.errors.TrainingError` on a non-finite loss or gradient.
        """
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if len(x) == 0:
            raise ValueError("no training samples")
        validate = x_val is not None and len(x_val) > 0
        watch = ("train_loss", "min") if not validate and self.monitor.startswith("val_") else (self.monitor, self.mode)
        if self._watching not in (None, watch):       # another metric than the last fit's: another best
            self.best = Best()
        self._watching = watch
        self.stop_reason = None
        self._emit("on_train_begin")
        with BlasThreads(self.threads) as self._blas:      # the caller's BLAS threads come back after
            while self.epoch < epochs and self.stop_reason is None:
                if self.stop_requested:
                    raise Interrupted(self.stop_requested)
                with np.errstate(all="ignore"):   # non-finite values are detected and reported in the step
                    record = self._run_epoch(x, y)
                    if validate:
                        val = evaluate(self.model, self.criterion, x_val, y_val,
                                       batch_size=max(self.batch_size, 256))
                        record.update({f"val_{k}": v for k, v in val.items()})
                self.epoch += 1
                self.history.append(record)
                self._after_epoch(record)
                self._emit("on_epoch_end", record)
        self._emit("on_train_end", self.stop_reason or "completed")   # sees the final state
        if self.stop_reason == "early stopping" and self.best.state is not None:
            self.model.load_state_dict(self.best.state)
        return self.history

    def _run_epoch(self, x: np.ndarray, y: np.ndarray) -> dict:
        """One pass over the data in shuffled mini-batches (or the rest of an interrupted one)."""
        n, bs = len(x), self.batch_size
        batches = math.ceil(n / bs)
        pos = self._resume or Position(self.rng.permutation(n) if self.shuffle else np.arange(n), batch=0)
        self._resume = None
        if len(pos.perm) != n or not 0 <= pos.batch < batches:
            raise TrainingError(f"the interrupted epoch was over {len(pos.perm)} samples (next batch {pos.batch}), "
                                f"but the data has {n} samples in {batches} batches", where="resume")
        lr = self.schedule.apply(self.optimizer, self.epoch) if self.schedule is not None else self.optimizer.lr
        self._emit("on_epoch_begin", self.epoch, batches)
        self.model.train()
        grads = self.model.parameters()[1]          # the same arrays all epoch: listed once, not per step
        flat_grads = [g.reshape(-1) for g in grads]
        started, before = time.perf_counter(), pos.seconds
        while pos.batch < batches:
            b, idx = pos.batch, pos.perm[pos.batch * bs:(pos.batch + 1) * bs]
            yb = y[idx]
            loss, output = self._train_step(x[idx], yb, b, grads, flat_grads)
            pos.add(*loss_sum_and_weight(self.criterion, loss, output, yb), len(idx))
            self.running_loss = pos.running_loss
            self._emit("on_batch_end", b, loss, len(idx))
            self._blas.tick()
            if self.stop_requested and pos.batch < batches:
                pos.seconds = before + time.perf_counter() - started
                self._resume = pos
                raise Interrupted(self.stop_requested)
        seconds = before + time.perf_counter() - started
        return {"epoch": self.epoch + 1, "train_loss": pos.running_loss, "lr": lr, "seconds": seconds,
                "samples_per_sec": pos.seen / seconds if seconds > 0 else float("inf")}

    def _train_step(self, xb: np.ndarray, yb: np.ndarray, batch: int, grads: list[np.ndarray],
                    flat_grads: list[np.ndarray]) -> tuple[float, np.ndarray]:
        """forward, criterion, backward, clip, step; returns the batch's loss and the model's output."""
        output = self.model.forward(xb)
        loss = self.criterion.forward(output, yb)
        if not math.isfinite(loss):
            raise non_finite_error(self.model, "loss", self.epoch, batch)
        grad_output = self.criterion.backward(output, yb)
        acc_grad_parameters(self.model, xb, grad_output, overwrite=True)   # zero_grad_parameters + backward
        finite, self.last_grad_norm = clip_and_check(grads, flat_grads, self.clip_norm, self.clip_value)
        if not finite:
            raise non_finite_error(self.model, "gradient", self.epoch, batch)
        self.optimizer.step()
        self.step += 1
        return loss, output

    def _after_epoch(self, record: dict) -> None:
        """The schedule and the best-epoch record see the monitored metric; early stopping may end the run."""
        monitor, mode = self._watching
        value = record.get(monitor)
        if value is None:
            return
        if self.schedule is not None:
            self.schedule.observe(self.epoch - 1, value)
        record["best"], stop = self.best.update(value, self.epoch, self.model, mode, self.early_stopping)
        if stop:
            self.stop_reason = "early stopping"

    # ------------------------------------------------------------------ state, for checkpoints
    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(meta, arrays)``: JSON-able numbers and lists, and named arrays, enough to resume exactly."""
        meta = {
            "epoch": self.epoch, "step": self.step, "history": list(self.history), "stop_reason": self.stop_reason,
            "best_metric": self.best.metric, "best_epoch": self.best.epoch, "bad_epochs": self.best.bad_epochs,
            **dict(zip(("monitor", "mode"), self._watching or (self.monitor, self.mode))),   # what chose the best epoch (and best.npz)
            "rng": _rng_state(self.rng),
            "module_rngs": [_rng_state(m.rng) for m in self.model.modules() if hasattr(m, "rng")],
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
        }
        arrays = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        opt_state = self.optimizer.state_dict()
        meta["optimizer_scalars"] = {k: v for k, v in opt_state.items() if not isinstance(v, np.ndarray)}
        arrays.update({f"optim.{k}": v for k, v in opt_state.items() if isinstance(v, np.ndarray)})
        if self.best.state is not None:
            arrays.update({f"best.{k}": v for k, v in self.best.state.items()})
        if self._resume is not None:
            p = self._resume
            arrays["resume.perm"] = p.perm
            meta["resume"] = {"batch": p.batch, "loss_sum": p.loss_sum, "seen": p.seen, "seconds": p.seconds,
                              "weight": p.weight}
        return meta, arrays

    def load_state_dict(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` gave (the model must already hold the same architecture)."""
        self.model.load_state_dict(_strip(arrays, "model."))
        opt = dict(meta.get("optimizer_scalars", {}))
        opt.update(_strip(arrays, "optim."))
        self.optimizer.load_state_dict(opt)
        if self.schedule is not None and meta.get("schedule") is not None:
            self.schedule.load_state_dict(meta["schedule"])
        self.epoch, self.step, self.history = meta["epoch"], meta["step"], list(meta["history"])
        self.stop_reason = meta.get("stop_reason")
        self.best.metric, self.best.epoch, self.best.bad_epochs = meta["best_metric"], meta["best_epoch"], meta["bad_epochs"]
        self.rng.bit_generator.state = _rng_from(meta["rng"])
        for m, state in zip([m for m in self.model.modules() if hasattr(m, "rng")], meta["module_rngs"]):
            m.rng.bit_generator.state = _rng_from(state)
        self.best.state = _strip(arrays, "best.") or None
        if meta.get("resume"):
            self._resume = Position(arrays["resume.perm"], **meta["resume"])


def _strip(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def _rng_state(rng: np.random.Generator) -> dict:
    """A bit generator's state with its 128-bit integers as strings (JSON keeps them exactly)."""
    return _map_ints(rng.bit_generator.state, str)


def _rng_from(state: dict) -> dict:
    return _map_ints(state, int)


def _map_ints(d, conv):
    if isinstance(d, dict):
        return {k: (d[k] if k == "bit_generator" else _map_ints(d[k], conv)) for k in d}
    return conv(d) if isinstance(d, (int, str)) else d
