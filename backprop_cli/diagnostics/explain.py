"""``backprop explain``: one forward, one backward and one optimizer step on real samples of a config's
training data, every number shown computed by the library itself.

The walk is the training step, spelled out with the Torch7 contract, layer by layer::

    output_i      = layer_i.forward(input_i)                      (input_(i+1) = output_i)
    loss          = criterion.forward(output, target)
    grad_output   = criterion.backward(output, target)            dLoss/dOutput (Torch7's df_do)
    grad_input_i  = layer_i.update_grad_input(input_i, grad_output_i)         last layer first
                    layer_i.acc_grad_parameters(input_i, grad_output_i, 1)    grad_W += dLoss/dW
    optimizer.step()                                               the only place weights change

Nothing is recomputed to be shown: the gradient of the loss is the criterion's, each formula is the
first paragraph of the docstring beside the code that computes it (so :mod:`gradcheck` covers it),
the step is the real optimizer's, built from the config (with its state and learning rate when the
source is a checkpoint), after the config's gradient clipping, and the closing finite-difference
check is :func:`~backprop_cli.diagnostics.gradcheck.check_model` on this very batch.

:func:`explain` returns plain data (arrays as ``{"shape", "values", "min", "mean", "max", "norm"}``),
which ``--json`` prints as it is and the CLI renders.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config.plugins import plugin_frame
from ..config.schema import Config
from ..config.source import yaml_dump
from ..engine.checkpoint import is_checkpoint
from ..engine.experiment import check_output, make_trainer, model_inputs, prepare, read_split, restore
from ..engine.gradients import norm, update_ratio
from ..engine.trainer import Trainer, clip_and_check, non_finite_error
from ..errors import BackpropError, CheckpointError, ConfigError
from ..nn import BatchNormalization, Dropout
from ..nn.container import Sequential, forward_state, restore_forward_state
from ..nn.module import Criterion, Module
from .gradcheck import check_model, diagnoses


# ----------------------------------------------------------------------------- plain data
def tensor(a) -> dict:
    """An array as plain data: its shape, every value (nested lists) and, when not empty, its
    min, mean, max and L2 norm."""
    a = np.asarray(a)
    out: dict = {"shape": list(a.shape), "values": a.tolist()}
    if a.size:
        f = a.astype(np.float64)
        out.update(min=float(f.min()), mean=float(f.mean()), max=float(f.max()), norm=norm(f))
    return out


def docstring_formula(cls: type, method: str | None = None) -> str:
    """The first paragraph of a class's (or one of its methods') own docstring, markup removed and
    without its ``Shape:`` and ``Example:`` parts: the formula the code states beside itself. Says
    so when the code states none."""
    owner = getattr(cls, method) if method else cls
    doc = owner.__doc__
    if not doc:
        where = f"{cls.__name__}.{method}" if method else cls.__name__
        return f"({where} states no formula: add a docstring)"
    text = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()).replace("``", "")
    for part in (" Shape:", " Example:"):
        text = text.split(part)[0]
    return text


def update_rule(optimizer) -> str:
    """The update rule from the optimizer's docstring: the paragraph that starts with ``Update``
    and, when it ends in ``::``, the literal block after it."""
    paragraphs = inspect.cleandoc(type(optimizer).__doc__ or "").split("\n\n")
    for i, text in enumerate(paragraphs):
        if text.startswith("Update"):
            block = paragraphs[i + 1] if text.endswith("::") and i + 1 < len(paragraphs) else ""
            return (text.rstrip(":") + ":\n" + block if block else text).replace("``", "")
    return docstring_formula(type(optimizer))


def spelling(spec) -> str:
    """A layer as the config writes it, in YAML's flow style: ``Linear: {out_features: 128}``."""
    data = spec.dump()
    return data if isinstance(data, str) else yaml_dump(data, flow=True).strip()[1:-1]


# ----------------------------------------------------------------------------- what is explained
@dataclass
class _Setup:
    """The model, criterion and optimizer (inside a trainer) a training step would use, and the data."""

    config: Config
    trainer: Trainer
    x: np.ndarray
    y: np.ndarray
    data: str
    weights: str

    @property
    def model(self) -> Sequential:
        return self.trainer.model

    @property
    def criterion(self) -> Criterion:
        return self.trainer.criterion


def _setup(source: str | Path, overrides) -> _Setup:
    """A config: its model with fresh weights, the optimizer at the first epoch's learning rate. A
    checkpoint: its weights, optimizer state and last learning rate, on its config's training data."""
    if not is_checkpoint(source):
        config, data, model, criterion = prepare(source, overrides)
        check_output(config, model, data)
        trainer = make_trainer(config, model, criterion)
        if trainer.schedule is not None:
            trainer.optimizer.lr = trainer.schedule.lr_at(0)
        return _Setup(config, trainer, data.train.x, data.train.y, _short(data.train.source),
                      f"fresh, drawn from the config's seed {config.seed}")
    if overrides:
        raise ConfigError("--set changes a config; a checkpoint's config is the one it was trained with",
                          where="--set")
    restored = restore(source)
    train = read_split(restored.config, "train", restored.task, restored.classes, restored.columns)
    x = model_inputs(restored, train.x, train.source)
    y = train.y if restored.task == "classification" else train.y.astype(x.dtype)
    trainer = make_trainer(restored.config, restored.model, restored.criterion)
    try:
        trainer.load_state_dict(restored.checkpoint.meta, restored.checkpoint.arrays)   # optimizer state, lr
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"cannot restore its training state: {err}", file=str(source)) from None
    return _Setup(restored.config, trainer, x, y, _short(train.source),
                  f"those of {source} (after epoch {trainer.epoch}), with its optimizer state")


def _short(source: str) -> str:
    """Data paths relative to the current directory when they are below it (``a + b`` for IDX pairs)."""
    def one(path: str) -> str:
        try:
            return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return path
    return " + ".join(one(p) for p in source.split(" + "))


def explain(source: str | Path, overrides=(), *, sample: int = 0, batch: int = 1, layer: int | None = None,
            check: bool = True) -> dict:
    """One training step on samples ``sample .. sample + batch - 1`` of the training data (in file
    order) of a config or a checkpoint, as plain data: ``forward``, ``criterion``, ``backward`` (last
    layer first; only layer ``layer`` when given), ``step`` and, with ``check``, ``gradcheck``."""
    s = _setup(source, overrides)
    x, y = _samples(s, sample, batch)
    model, criterion = s.model, s.criterion
    model.train()                                         # as the training step: Dropout drops, BatchNorm uses the batch
    reference = copy.deepcopy(model)                      # for the finite-difference check, before anything ran
    initial = {name: p.copy() for name, p, _ in model.named_parameters()}
    forward, inputs, states = _forward(s, x, batch)
    loss, grad_output = _criterion(s, model.output, y)
    backward = _backward(s, inputs, states, grad_output["array"])
    if layer is not None:
        if not 0 <= layer < len(model.layers):
            raise ConfigError(f"the model has layers 0 to {len(model.layers) - 1}, got {layer}", where="--layer")
        backward = [b for b in backward if b["index"] == layer]
    unchanged = all(np.array_equal(p, initial[name]) for name, p, _ in model.named_parameters())
    step = _step(s, initial)
    return {
        "source": str(source), "name": s.config.name, "weights": s.weights, "data": s.data,
        "samples": [sample, sample + len(x)], "of": len(s.x), "task": s.config.data.task,
        "input": tensor(x), "target": tensor(y),
        "forward": forward,
        "criterion": {**loss, "grad_output": grad_output["data"]},
        "backward": backward,
        "weights_unchanged_by_backward": unchanged,
        "step": step,
        "gradcheck": _finite_differences(reference, criterion, x, y) if check else None,
    }


def _samples(s: _Setup, sample: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(s.x)
    if not 0 <= sample < n:
        raise ConfigError(f"the training data has samples 0 to {n - 1}, got {sample}", file=s.data, where="--sample")
    if batch < 1:
        raise ConfigError(f"expected at least 1 sample, got {batch}", where="--batch")
    return s.x[sample:sample + batch], s.y[sample:sample + batch]


def _user_errors(config: Config) -> tuple[type[BaseException], ...]:
    """What a layer or loss may raise that is the user's to fix: an array it cannot take (a
    ``BackpropError``: their data), or anything from their plugin's code. Anything else is a bug."""
    return (Exception,) if config.registry.origin else (BackpropError,)


def _layer_error(s: _Setup, i: int, err: BaseException, batch: int) -> ConfigError:
    """The layer's error placed at its line in the config; a plugin's exception says where it was raised."""
    where = plugin_frame(err)
    if where is not None:
        text = f"{where}: {type(err).__name__}: {err}"
    else:
        hint = "; a batch may be needed: try --batch 8" if batch == 1 and isinstance(err, ValueError) else ""
        text = f"{err} (in training mode, on {batch} sample{'s' * (batch > 1)}{hint})"
    return s.config.error(f"model.{i}", text, label=f"model.{i} ({s.config.model[i].name})")


# ----------------------------------------------------------------------------- the walk
def _forward(s: _Setup, x: np.ndarray, batch: int) -> tuple[list[dict], list[np.ndarray], list[dict]]:
    """The rows, each layer's input, and each layer's state after its forward (a layer used twice
    gets it back before that use's backward)."""
    rows, inputs, states = [], [], []
    for i, layer in enumerate(s.model.layers):
        inputs.append(x)
        try:
            out = layer.forward(x)
        except _user_errors(s.config) as err:
            raise _layer_error(s, i, err, batch) from None
        states.append(forward_state(layer))
        rows.append({"index": i, "layer": spelling(s.config.model[i]), "module": layer.one_line(),
                     "formula": docstring_formula(type(layer)), "input_shape": list(x.shape),
                     "output": tensor(out), "notes": _notes(layer, x)})
        x = out
    s.model.output = x
    return rows, inputs, states


def _notes(layer: Module, input: np.ndarray) -> list[dict]:
    """What a layer with hidden state did in this forward: Dropout's mask, BatchNorm's batch statistics."""
    if isinstance(layer, Dropout) and layer.training and layer.p > 0:
        kept = int(layer.mask.sum())
        scale = 0.0 if layer.p == 1 else 1 / (1 - layer.p)
        return [{"text": f"mask: kept {kept} of {layer.mask.size} values (p = {layer.p:g}), each times "
                         f"1/(1 - p) = {scale:.4g}; backward routes the gradient through the same mask",
                 "mask": tensor(layer.mask.astype(np.int8))}]
    if isinstance(layer, BatchNormalization) and layer.training:
        axes = (0,) + tuple(range(2, input.ndim))
        count = input.size // input.shape[1]
        return [{"text": f"training mode: normalised with this batch's mean and variance per feature "
                         f"({count} values each); the forward also moved running_mean/running_var, "
                         "which evaluation uses instead",
                 "batch_mean": tensor(input.mean(axis=axes)), "batch_var": tensor(input.var(axis=axes))}]
    return []


def _criterion(s: _Setup, output: np.ndarray, y: np.ndarray) -> tuple[dict, dict]:
    c = s.criterion
    try:
        loss = c.forward(output, y)
        grad = c.backward(output, y)
    except _user_errors(s.config) as err:
        raise s.config.error("criterion", str(err), label=f"criterion ({s.config.criterion.name})") from None
    info = {"name": s.config.criterion.name, "module": repr(c), "reduction": c.reduction,
            "formula": docstring_formula(type(c)), "loss": float(loss),
            "gradient_formula": docstring_formula(type(c), "update_grad_input"),
            "reading": _reading(grad, y, s.config.data.task)}
    return info, {"array": grad, "data": tensor(grad)}


def _fraction(value: float) -> str | None:
    """``-1/32`` for -0.03125: a value that is plus or minus one over a whole number."""
    if value == 0:
        return None
    inverse = 1 / abs(value)
    whole = round(inverse)
    if whole >= 1 and abs(inverse - whole) <= 1e-4 * whole:
        return f"{'-' if value < 0 else ''}1/{whole}"
    return None


def _reading(grad: np.ndarray, y: np.ndarray, task: str) -> str:
    """What the criterion's gradient holds, read off its values: where it is not zero (grouped by
    value, with the fractions they are: ClassNLL's ``-1/N`` at each target), or how its rows sum."""
    nonzero = [tuple(int(i) for i in index) for index in np.argwhere(grad != 0)]
    total, n = grad.size, grad.shape[0]
    if not nonzero:
        return f"all {total} entries are 0: these samples give no gradient"
    if len(nonzero) > 8:
        rows = grad.reshape(n, -1).sum(axis=1, dtype=np.float64)
        sums = "; each sample's row sums to 0" if np.all(np.abs(rows) <= 1e-6 * max(1.0, float(np.abs(grad).max()))) else ""
        return f"{len(nonzero)} of {total} entries are not 0{sums}"
    groups: dict[float, list[tuple[int, ...]]] = {}
    for index in nonzero:
        groups.setdefault(float(grad[index]), []).append(index)
    parts = []
    for value, places in groups.items():
        text = f"{value:.6g}"
        frac = _fraction(value)
        if frac and frac not in ("-1/1", "1/1"):
            text += f" = {frac}"
        if frac == f"-1/{n}":
            text += f" = -1/N (N = {n}, the batch)"
        text += " at " + ", ".join(str(list(p)) for p in places)
        if task == "classification" and grad.ndim == 2 and all(int(y[i]) == j for i, j in places):
            text += " (the target)" if len(places) == 1 else " (each sample's target)"
        parts.append(text)
    zeros = total - len(nonzero)
    return "; ".join(parts) + (f"; 0 at the other {zeros} entries" if zeros else "")


def _owners(module: Module) -> list[tuple[np.ndarray, Module]]:
    """``(gradient, the module that owns it)`` for every parameter under ``module``, in order."""
    if not module.children():
        return [(module._grads[name], module) for name in module._params]
    return [pair for child in module.children() for pair in _owners(child)]


def _backward(s: _Setup, inputs: list[np.ndarray], states: list[dict], grad_output: np.ndarray) -> list[dict]:
    """Last layer first: each layer's update_grad_input, then its acc_grad_parameters with scale 1."""
    model = s.model
    model.zero_grad_parameters()
    names = {id(grad): name for name, _, grad in model.named_parameters()}    # a shared weight: its first name
    rows, g = [], grad_output
    for i in range(len(model.layers) - 1, -1, -1):
        layer, x = model.layers[i], inputs[i]
        restore_forward_state(layer, states[i])
        try:
            grad_input = layer.update_grad_input(x, g)
            layer.acc_grad_parameters(x, g, 1.0)
        except _user_errors(s.config) as err:
            raise _layer_error(s, i, err, len(x)) from None
        layer.grad_input = grad_input
        parameters = [{"name": names[id(grad)], "grad": tensor(grad),
                       "formula": docstring_formula(type(owner), "acc_grad_parameters")}
                      for grad, owner in _owners(layer)]
        rows.append({"index": i, "layer": spelling(s.config.model[i]), "grad_output": tensor(g),
                     "grad_input": tensor(grad_input), "formula": docstring_formula(type(layer), "update_grad_input"),
                     "parameters": parameters})
        g = grad_input
    return rows


# ----------------------------------------------------------------------------- the step
def _step(s: _Setup, before: dict[str, np.ndarray]) -> dict:
    """``optimizer.step()`` after the config's clipping; each parameter's change beside ``-lr * grad``."""
    trainer, model = s.trainer, s.model
    optimizer, lr, steps_before = trainer.optimizer, float(trainer.optimizer.lr), int(trainer.optimizer.t)
    named = list(model.named_parameters())
    grads = [g for _, _, g in named]
    raw = [g.copy() for g in grads]
    finite, pre_clip = clip_and_check(grads, [g.reshape(-1) for g in grads], trainer.clip_norm, trainer.clip_value)
    if not finite:
        raise non_finite_error(model, "gradient", trainer.epoch, 0)
    clipped = _clipping(trainer, raw, grads, pre_clip)
    optimizer.step()
    rows, same = [], True
    for name, p, g in named:
        change, minus_lr_grad = p - before[name], -lr * g
        tolerance = 4 * np.finfo(p.dtype).eps * max(float(np.abs(before[name]).max(initial=0.0)), 1e-30)
        difference = float(np.abs(change - minus_lr_grad).max(initial=0.0))
        same = same and bool(difference <= tolerance)
        rows.append({"name": name, "step": tensor(change), "minus_lr_grad": tensor(minus_lr_grad),
                     "max_difference": difference, "grad_norm": norm(g),
                     "update_ratio": update_ratio(norm(change), norm(before[name]))})
    section = s.config.optimizer
    hyper = {k: getattr(section, k) for k in type(section).model_fields if k not in ("name", "lr")}
    return {"optimizer": section.name, "module": repr(optimizer), "lr": lr, "steps_before": steps_before,
            "hyper": {k: list(v) if isinstance(v, tuple) else v for k, v in hyper.items()},
            "rule": update_rule(optimizer), "clipping": clipped, "parameters": rows,
            "equals_minus_lr_grad": same, "why": _why(section.name, hyper, steps_before, same)}


def _clipping(trainer: Trainer, raw: list[np.ndarray], grads: list[np.ndarray], pre_clip: float | None) -> str | None:
    """What the config's gradient clipping did to this step's gradients (None without clipping)."""
    notes = []
    if trainer.clip_value is not None:
        changed = sum(int(np.sum(r != g)) for r, g in zip(raw, grads)) if trainer.clip_norm is None else None
        notes.append(f"clip_grad_value {trainer.clip_value:g}: entries clamped to +-{trainer.clip_value:g}"
                     + (f" ({changed} changed)" if changed is not None else ""))
    if trainer.clip_norm is not None:
        action = (f"above it, so every gradient was scaled by {trainer.clip_norm / pre_clip:.4g}"
                  if pre_clip > trainer.clip_norm else "within it: nothing scaled")
        notes.append(f"clip_grad_norm {trainer.clip_norm:g}: the gradients' global norm {pre_clip:.4g} is {action}")
    return "; ".join(notes) or None


def _why(name: str, hyper: dict, steps_before: int, same: bool) -> str:
    """Why the optimizer's step is, or is not, ``-lr * grad``."""
    if name == "sgd":
        reasons = []
        if hyper.get("weight_decay"):
            reasons.append(f"weight_decay {hyper['weight_decay']:g} adds {hyper['weight_decay']:g} * w to each gradient")
        if hyper.get("lr_decay") and steps_before:
            reasons.append(f"lr_decay divides lr by 1 + {steps_before} * {hyper['lr_decay']:g}")
        if hyper.get("momentum") and steps_before:
            reasons.append(f"momentum {hyper['momentum']:g}: the step follows the velocity buf, which carries "
                           f"the {steps_before} earlier steps' gradients")
        elif hyper.get("momentum"):
            reasons.append(f"momentum {hyper['momentum']:g}: at the first step the velocity buf is the gradient "
                           "itself, so this step is -lr * grad; later steps add momentum * buf")
        if hyper.get("nesterov") and steps_before:
            reasons.append("nesterov adds momentum * buf once more (a look-ahead)")
        if not reasons:
            return "plain SGD: w -= lr * grad, the textbook step"
        return "; ".join(reasons)
    if name in ("adam", "adamw"):
        text = ("Adam divides the running mean of the gradients (m) by the root of the running mean of their "
                "squares (v): at the first step that is about lr * sign(grad) for every weight, whatever the "
                "gradient's size")
        return text + ("; AdamW also shrinks w by lr * weight_decay * w" if name == "adamw" else "")
    if name == "rmsprop":
        return "RMSprop divides each gradient by the root of a running mean of its squares"
    if name == "adagrad":
        return "Adagrad divides each gradient by the root of the sum of all its squares so far"
    return "see the update rule" if not same else "the step is -lr * grad"


# ----------------------------------------------------------------------------- finite differences
def _finite_differences(model: Module, criterion: Criterion, x: np.ndarray, y: np.ndarray) -> list[dict]:
    """:func:`check_model` on this very batch (no jitter), one row per layer: passed, coordinates
    compared and skipped at kinks, the worst relative error, and what a failure means."""
    groups: dict[str, list] = {}
    for r in check_model(model, criterion, x, y, jitter=0.0):
        groups.setdefault(r.layer, []).append(r)
    return [{"layer": layer, "passed": all(r.passed for r in checks), "checked": sum(r.checked for r in checks),
             "skipped": sum(r.skipped for r in checks), "max_rel_err": max(r.max_rel_err for r in checks),
             "failures": diagnoses(checks)} for layer, checks in groups.items()]
