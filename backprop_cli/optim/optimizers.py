"""Optimizers: new weights from the gradients, written in place into the model's own arrays.

An optimizer is built on the two parallel lists a model's ``parameters()`` returns and keeps
references to them (not copies), so ``step()`` changes the model. All its state (step count,
moment estimates) lives here; layers never own an optimizer::

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)      # or SGD(model, ...), SGD(params, grads, ...)
    for x, y in batches:
        model.zero_grad_parameters()
        model.backward(x, criterion.backward(model.forward(x), y))
        opt.step()

``lr`` is a plain attribute read at every ``step()``: the training engine sets it once an epoch from
a schedule (:mod:`backprop_cli.optim.schedules`). ``t`` counts the steps taken so far.

Each class takes PyTorch's arguments in PyTorch's order with PyTorch's defaults (``SGD(params, lr,
momentum, dampening, weight_decay, nesterov, *, maximize, ...)``), ``params`` being what a model
gives: ``model.parameters()`` (the ``(params, grads)`` pair), the model itself, or its
``named_parameters()``. Torch7's form, the two lists ``SGD(params, grads, lr=0.1)``, works too (the
hyper-parameters after them keep PyTorch's order). ``maximize=True`` steps up the gradient.
``foreach``, ``fused`` and ``capturable`` choose PyTorch kernels and change nothing here.

Updates run in the hot loop, so every one is written with in-place ufuncs (``out=``) into buffers
allocated once; a float32 model keeps float32 state and float32 arithmetic. Temporaries go into
views of one scratch buffer as large as the largest parameter (reused for every parameter, so it
stays in cache). ``weight_decay`` is an L2 term added to the gradient, ``g + weight_decay * w``, in
a second scratch buffer: ``step()`` never modifies the gradients it reads.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import numpy as np

from ..errors import CheckedArguments, shape_str

StateDict = dict[str, "np.ndarray | int | float"]


# --------------------------------------------------------------------------- argument checks
def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {low}"
    if low is None:
        return f"{'<' if high_open else '<='} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def check_range(owner: str, name: str, value, low=None, high=None, *,
                low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number in range, else raise naming ``name``.

    ``check_range("Adam", "betas[0]", 1.0, 0, 1, high_open=True)`` raises
    ``ValueError: Adam: betas[0] must be in [0, 1), got 1.0``.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    ok = math.isfinite(value)
    if low is not None:
        ok = ok and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{owner}: {name} must be {_range_text(low, high, low_open, high_open)}, "
                         f"got {value!r}")
    return value


def check_int(owner: str, name: str, value, low: int) -> int:
    """Return ``value`` as an int if it is an integer ``>= low``, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_parameters(owner: str, params, grads) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The parallel ``(params, grads)`` lists as lists, or a ValueError naming every mismatch."""
    params, grads = _parameter_lists(owner, params, grads)
    if len(params) != len(grads):
        raise ValueError(f"{owner}: params and grads must be parallel lists, got {len(params)} "
                         f"parameter arrays and {len(grads)} gradient arrays")
    if not params:
        raise ValueError(f"{owner}: got an empty parameter list (the model has nothing to train)")
    problems = []
    for i, (p, g) in enumerate(zip(params, grads)):
        if not isinstance(p, np.ndarray) or not isinstance(g, np.ndarray):
            problems.append(f"params[{i}] and grads[{i}] must be numpy arrays, "
                            f"got {type(p).__name__} and {type(g).__name__}")
        elif not np.issubdtype(p.dtype, np.floating):
            problems.append(f"params[{i}] must be a floating-point array, got dtype {p.dtype}")
        elif p.shape != g.shape:
            problems.append(f"params[{i}] has shape {shape_str(p.shape)} but grads[{i}] has {shape_str(g.shape)}")
        elif p.dtype != g.dtype:
            problems.append(f"params[{i}] is {p.dtype} but grads[{i}] is {g.dtype}")
        elif not p.flags.writeable:
            problems.append(f"params[{i}] is read-only; an optimizer updates parameters in place")
    if problems:
        raise ValueError(f"{owner}: " + "; ".join(problems))
    return params, grads


def _parameter_lists(owner: str, params, grads) -> tuple[list, list]:
    """``(params, grads)`` from any form a model gives them in: the two lists, the pair
    ``model.parameters()`` returns, the model (anything with ``parameters()``), or the
    ``(name, param, grad)`` triples of ``named_parameters()``."""
    if grads is not None:
        return list(params), list(grads)
    if callable(getattr(params, "parameters", None)):                     # a module
        return _parameter_lists(owner, params.parameters(), None)
    if isinstance(params, Mapping) or (isinstance(params, (list, tuple)) and params and isinstance(params[0], Mapping)):
        raise ValueError(f"{owner}: parameter groups (dicts of options per group) are not supported; "
                         "build one optimizer per group")
    items = list(params)
    if items and all(isinstance(x, tuple) and len(x) == 3 and isinstance(x[0], str) for x in items):
        return [p for _, p, _ in items], [g for _, _, g in items]              # model.named_parameters()
    if len(items) == 2 and all(isinstance(x, (list, tuple)) for x in items):   # model.parameters()
        return list(items[0]), list(items[1])
    raise ValueError(f"{owner}: expected model.parameters() (the pair of parameter and gradient lists), "
                     f"the model, or params and grads as two lists; got {type(params).__name__} "
                     f"of {len(items)} items and no grads")


def _is_array_list(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, np.ndarray) for v in value)


class _OptimizerCall(CheckedArguments):
    """Torch7's ``SGD(params, grads, ...)``: a list of arrays where PyTorch's signature has ``lr`` is
    the gradients, passed on as ``grads=``; the hyper-parameters after it keep PyTorch's order."""

    def __call__(cls, *args, **kwargs):
        if len(args) >= 2 and _is_array_list(args[1]) and "grads" not in kwargs:
            args, kwargs = (args[0], *args[2:]), {**kwargs, "grads": args[1]}
        return super().__call__(*args, **kwargs)


def _implementation_flags(owner: str, differentiable: bool) -> None:
    """PyTorch's kernel choices (``foreach``, ``fused``, ``capturable``) change nothing here;
    ``differentiable=True`` (autograd through the step) cannot be honoured."""
    if differentiable:
        raise ValueError(f"{owner}: differentiable=True is not supported (there is no autograd to "
                         "record the step in)")


def _scratch_views(params: list[np.ndarray]) -> list[np.ndarray]:
    """One view per parameter, of its shape, into a single buffer per dtype sized for the largest."""
    sizes: dict[np.dtype, int] = {}
    for p in params:
        sizes[p.dtype] = max(sizes.get(p.dtype, 0), p.size)
    flat = {dtype: np.empty(size, dtype) for dtype, size in sizes.items()}
    return [flat[p.dtype][:p.size].reshape(p.shape) for p in params]


def _with_l2(p: np.ndarray, g: np.ndarray, weight_decay: float, out: np.ndarray, maximize: bool = False) -> np.ndarray:
    """``g + weight_decay * p`` (``-g + weight_decay * p`` to maximize), written into ``out``."""
    np.multiply(p, weight_decay, out=out)
    if maximize:
        out -= g
    else:
        out += g
    return out


def _adaptive_step(p: np.ndarray, numerator: np.ndarray, second_moment: np.ndarray, eps: float,
                   step_size: float, tmp: np.ndarray) -> None:
    """``p -= step_size * numerator / (sqrt(second_moment) + eps)``, through the scratch ``tmp``."""
    np.sqrt(second_moment, out=tmp)
    tmp += eps
    np.divide(numerator, tmp, out=tmp)
    tmp *= step_size
    p -= tmp


def read_number(state: Mapping, key: str, problems: list[str], *, integer: bool,
                low: float | None = None, finite: bool = True) -> int | float | None:
    """``state[key]`` as a Python int or float, else None with the problem appended to ``problems``.

    Accepts Python numbers and the 0-d arrays ``np.load`` gives back; NaN is never accepted.
    """
    if key not in state:
        problems.append(f"{key}: missing")
        return None
    value = np.asarray(state[key])
    kinds = (np.integer,) if integer else (np.integer, np.floating)
    if value.shape != () or not any(np.issubdtype(value.dtype, kind) for kind in kinds):
        problems.append(f"{key}: expected {'an integer' if integer else 'a number'}, got {state[key]!r}")
        return None
    number = int(value) if integer else float(value)
    if math.isnan(number) or (finite and math.isinf(number)) or (low is not None and number < low):
        limits = ("a finite number" if finite else "a number") + (f" >= {low}" if low is not None else "")
        problems.append(f"{key}: expected {limits}, got {number!r}")
        return None
    return number


# --------------------------------------------------------------------------- the base class
class Optimizer(metaclass=_OptimizerCall):
    """Base class: holds ``params``/``grads`` (the model's arrays), ``lr``, the step count ``t``
    and named per-parameter state buffers.

    Subclasses implement ``_update(lr)``, one update of every parameter in place, and register each
    state buffer with ``_new_state(name)``; ``state_dict`` and ``load_state_dict`` then need nothing
    more. ``repr`` lists the attributes named in ``_hyper``.
    """

    _hyper: tuple[str, ...] = ("lr",)

    def __init__(self, params, lr: float, grads: Sequence[np.ndarray] | None = None, *,
                 maximize: bool = False) -> None:
        owner = type(self).__name__
        self.params, self.grads = _check_parameters(owner, params, grads)
        self.lr = check_range(owner, "lr", lr, 0)
        self.maximize = bool(maximize)
        self.t = 0
        #: state name -> one buffer per parameter, same shape and dtype (saved by ``state_dict``).
        self.state: dict[str, list[np.ndarray]] = {}
        self._tmp = _scratch_views(self.params)            # for temporaries, overwritten for each parameter
        self._l2_views: list[np.ndarray] | None = None      # for g + weight_decay * w, made when first needed

    def _new_state(self, name: str, fill: float = 0.0) -> list[np.ndarray]:
        buffers = [np.full_like(p, fill) for p in self.params]
        self.state[name] = buffers
        return buffers

    def step(self) -> None:
        """Apply one update from the current gradients, with the current ``self.lr``."""
        self._update(float(self.lr))
        self.t += 1

    @abstractmethod
    def _update(self, lr: float) -> None:
        """Update every parameter in place; ``self.t`` is the number of steps already taken."""

    def _l2_scratch(self, weight_decay: float) -> list[np.ndarray | None]:
        """Scratch views for ``_with_l2``, or Nones when there is no weight decay and no maximize."""
        if not weight_decay and not self.maximize:
            return [None] * len(self.params)
        if self._l2_views is None:
            self._l2_views = _scratch_views(self.params)
        return self._l2_views

    # ----------------------------------------------------------------- state
    def state_dict(self) -> StateDict:
        """A flat dict: ``"t"``, ``"lr"`` and a copy of every buffer as ``"<name>.<i>"``.

        E.g. ``{"t": 3, "lr": 0.1, "momentum_buffer.0": array, "momentum_buffer.1": array}``.
        Hyper-parameters are not included: they come from the constructor (the config).
        """
        state: StateDict = {"t": int(self.t), "lr": float(self.lr)}
        for name, buffers in self.state.items():
            for i, buf in enumerate(buffers):
                state[f"{name}.{i}"] = buf.copy()
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray | int | float]) -> None:
        """Restore ``t``, ``lr`` and every buffer from ``state_dict()`` output (or its ``np.load``).

        Buffers are copied into the existing arrays. Raises ``ValueError`` listing every missing,
        unexpected or mis-shaped entry at once, and then changes nothing.
        """
        problems: list[str] = []
        t = read_number(state, "t", problems, integer=True, low=0)
        lr = read_number(state, "lr", problems, integer=False, low=0)
        targets = {f"{name}.{i}": buf for name, buffers in self.state.items()
                   for i, buf in enumerate(buffers)}
        for key, target in targets.items():
            if key not in state:
                problems.append(f"{key}: missing")
                continue
            value = np.asarray(state[key])
            if value.shape != target.shape:
                problems.append(f"{key}: expected shape {shape_str(target.shape)}, got {shape_str(value.shape)}")
            elif not np.issubdtype(value.dtype, np.floating):
                problems.append(f"{key}: expected a floating-point array, got dtype {value.dtype}")
        problems += [f"{key}: unexpected" for key in state if key not in targets and key not in ("t", "lr")]
        if problems:
            raise ValueError(f"{type(self).__name__} state does not fit: " + "; ".join(problems))
        for key, target in targets.items():
            np.copyto(target, state[key], casting="same_kind")
        self.t, self.lr = t, lr

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._hyper)
        return f"{type(self).__name__}({args}{', maximize=True' if self.maximize else ''})"


# --------------------------------------------------------------------------- the optimizers
class SGD(Optimizer):
    """Stochastic gradient descent with PyTorch's arguments and Torch7 ``optim.sgd``'s options.

    Hyper-parameters: ``lr >= 0``; ``momentum >= 0``; ``0 <= dampening <= 1``; ``weight_decay >= 0``
    (L2); ``nesterov`` (needs ``momentum > 0`` and ``dampening == 0``); ``maximize``; ``lr_decay >= 0``
    (Torch7's, keyword only). State: ``momentum_buffer`` (only when ``momentum > 0``). Defaults are
    PyTorch's (``lr=1e-3``, ``dampening=0``; Torch7 defaulted dampening to ``momentum``: pass it to
    get that).

    Update, with ``t`` the steps already taken::

        clr = lr / (1 + t * lr_decay)
        g   = grad + weight_decay * w                    (-grad + ... with maximize)
        buf = g                                          (first step)
        buf = momentum * buf + (1 - dampening) * g       (later steps)
        g   = g + momentum * buf  if nesterov  else  buf (only when momentum > 0)
        w  -= clr * g

    Example: ``SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)``.
    """

    _hyper = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "lr_decay")

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None,
                 grads=None, lr_decay: float = 0.0) -> None:
        super().__init__(params, lr, grads, maximize=maximize)
        _implementation_flags("SGD", differentiable)
        self.momentum = check_range("SGD", "momentum", momentum, 0)
        self.dampening = check_range("SGD", "dampening", dampening, 0, 1)
        self.weight_decay = check_range("SGD", "weight_decay", weight_decay, 0)
        self.lr_decay = check_range("SGD", "lr_decay", lr_decay, 0)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"SGD: nesterov requires momentum > 0 and dampening == 0, "
                             f"got momentum={self.momentum!r}, dampening={self.dampening!r}")
        self._buf = self._new_state("momentum_buffer") if self.momentum else None

    def _update(self, lr: float) -> None:
        clr = lr / (1.0 + self.t * self.lr_decay)
        wd = self.weight_decay
        l2 = self._l2_scratch(wd)
        if self._buf is None:
            for p, g, tmp, d in zip(self.params, self.grads, self._tmp, l2):
                if d is not None:
                    g = _with_l2(p, g, wd, d, self.maximize)   # g = grad + weight_decay * w
                np.multiply(g, clr, out=tmp)                   # w -= clr * g
                p -= tmp
            return
        momentum, keep = self.momentum, 1.0 - self.dampening
        first = self.t == 0
        for p, g, buf, tmp, d in zip(self.params, self.grads, self._buf, self._tmp, l2):
            if d is not None:
                g = _with_l2(p, g, wd, d, self.maximize)       # g = grad + weight_decay * w
            if first:
                np.copyto(buf, g)                              # buf = g
            else:
                buf *= momentum                                # buf = momentum * buf + (1 - dampening) * g
                if keep != 1.0:
                    np.multiply(g, keep, out=tmp)
                    buf += tmp
                else:
                    buf += g
            if self.nesterov:
                np.multiply(buf, momentum, out=tmp)            # w -= clr * (g + momentum * buf)
                tmp += g
                tmp *= clr
            else:
                np.multiply(buf, clr, out=tmp)                 # w -= clr * buf
            p -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's update rule with bias correction; L2 ``weight_decay``.

    Hyper-parameters: ``lr >= 0``; ``betas = (beta1, beta2)``, each in ``[0, 1)``; ``eps > 0``;
    ``weight_decay >= 0``; ``amsgrad`` (Reddi et al.: divide by the largest ``v`` so far);
    ``maximize``; ``decoupled_weight_decay`` (AdamW's decay). State: ``exp_avg`` (m),
    ``exp_avg_sq`` (v), and ``max_exp_avg_sq`` with amsgrad.

    Update, with ``s = t + 1`` the number of this step::

        g  = grad + weight_decay * w                     (-grad + ... with maximize)
        m  = beta1 * m + (1 - beta1) * g
        v  = beta2 * v + (1 - beta2) * g**2
        vm = max(vm, v)                                  (amsgrad; then vm replaces v below)
        w -= lr / (1 - beta1**s) * m / (sqrt(v) / sqrt(1 - beta2**s) + eps)

    The last line is computed as ``w -= (lr * c2 / c1) * m / (sqrt(v) + eps * c2)`` with
    ``c1 = 1 - beta1**s``, ``c2 = sqrt(1 - beta2**s)``: the same value, one pass fewer.
    Example: ``Adam(model.parameters(), lr=1e-3, amsgrad=True)``.
    """

    _hyper = ("lr", "betas", "eps", "weight_decay", "amsgrad")

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False, grads=None) -> None:
        super().__init__(params, lr, grads, maximize=maximize)
        owner = type(self).__name__
        _implementation_flags(owner, differentiable)
        if isinstance(betas, (str, bytes)) or not isinstance(betas, (Sequence, np.ndarray)) or len(betas) != 2:
            raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (check_range(owner, "betas[0]", betas[0], 0, 1, high_open=True),
                      check_range(owner, "betas[1]", betas[1], 0, 1, high_open=True))
        self.eps = check_range(owner, "eps", eps, 0, low_open=True)
        self.weight_decay = check_range(owner, "weight_decay", weight_decay, 0)
        self.amsgrad, self.decoupled = bool(amsgrad), bool(decoupled_weight_decay)
        self._m = self._new_state("exp_avg")
        self._v = self._new_state("exp_avg_sq")
        self._vmax = self._new_state("max_exp_avg_sq") if self.amsgrad else [None] * len(self.params)

    def _update(self, lr: float) -> None:
        beta1, beta2 = self.betas
        s = self.t + 1
        c1 = 1.0 - beta1 ** s
        c2 = math.sqrt(1.0 - beta2 ** s)
        step_size, eps_hat = lr * c2 / c1, self.eps * c2
        wd = 0.0 if self.decoupled else self.weight_decay
        shrink = 1.0 - lr * self.weight_decay if self.decoupled else 1.0
        for p, g, m, v, vmax, tmp, d in zip(self.params, self.grads, self._m, self._v, self._vmax, self._tmp,
                                            self._l2_scratch(wd)):
            if shrink != 1.0:
                p *= shrink                                    # AdamW: w -= lr * weight_decay * w
            if d is not None:
                g = _with_l2(p, g, wd, d, self.maximize)       # Adam: g = grad + weight_decay * w
            m *= beta1                                         # m = beta1 * m + (1 - beta1) * g
            np.multiply(g, 1.0 - beta1, out=tmp)
            m += tmp
            v *= beta2                                         # v = beta2 * v + (1 - beta2) * g**2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - beta2
            v += tmp
            if vmax is not None:
                np.maximum(vmax, v, out=vmax)                  # vm = max(vm, v)
                v = vmax
            _adaptive_step(p, m, v, eps_hat, step_size, tmp)   # w -= step_size * m / (sqrt(v) + eps_hat)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's ``AdamW``.

    Hyper-parameters as :class:`Adam`, with ``weight_decay >= 0`` defaulting to ``1e-2``.
    Update: ``w -= lr * weight_decay * w``, then the Adam step with ``g = grad`` (no L2 term).
    Example: ``AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)``.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, grads=None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         differentiable=differentiable, decoupled_weight_decay=True, grads=grads)


class RMSprop(Optimizer):
    """RMSprop (Hinton), PyTorch's update rule.

    Hyper-parameters: ``lr >= 0``; ``alpha`` in ``[0, 1)``; ``eps > 0``; ``momentum >= 0``;
    ``weight_decay >= 0`` (L2); ``centered``; ``maximize``. State: ``square_avg``, plus ``momentum_buffer``
    when ``momentum > 0`` and ``grad_avg`` when centered; all start at zero.

    Update::

        g   = grad + weight_decay * w                     (-grad + ... with maximize)
        sq  = alpha * sq + (1 - alpha) * g**2
        avg = sqrt(sq) + eps                              (plain)
        ga  = alpha * ga + (1 - alpha) * g                (centered)
        avg = sqrt(max(sq - ga**2, 0)) + eps              (centered)
        buf = momentum * buf + g / avg;  w -= lr * buf    (momentum > 0)
        w  -= lr * g / avg                                (momentum == 0)

    The ``max(., 0)`` guards against rounding making the variance estimate negative (PyTorch
    takes the square root unguarded and would produce NaN there).
    Example: ``RMSprop(model.parameters(), lr=1e-3, centered=True)``.
    """

    _hyper = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False, *,
                 grads=None) -> None:
        super().__init__(params, lr, grads, maximize=maximize)
        _implementation_flags("RMSprop", differentiable)
        self.alpha = check_range("RMSprop", "alpha", alpha, 0, 1, high_open=True)
        self.eps = check_range("RMSprop", "eps", eps, 0, low_open=True)
        self.momentum = check_range("RMSprop", "momentum", momentum, 0)
        self.weight_decay = check_range("RMSprop", "weight_decay", weight_decay, 0)
        self.centered = bool(centered)
        self._sq = self._new_state("square_avg")
        self._buf = self._new_state("momentum_buffer") if self.momentum else [None] * len(self.params)
        self._ga = self._new_state("grad_avg") if self.centered else [None] * len(self.params)

    def _update(self, lr: float) -> None:
        alpha, eps, momentum = self.alpha, self.eps, self.momentum
        wd = self.weight_decay
        for p, g, sq, ga, buf, tmp, d in zip(self.params, self.grads, self._sq, self._ga, self._buf, self._tmp,
                                             self._l2_scratch(wd)):
            if d is not None:
                g = _with_l2(p, g, wd, d, self.maximize)       # g = grad + weight_decay * w
            sq *= alpha                                        # sq = alpha * sq + (1 - alpha) * g**2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - alpha
            sq += tmp
            if ga is not None:
                ga *= alpha                                    # ga = alpha * ga + (1 - alpha) * g
                np.multiply(g, 1.0 - alpha, out=tmp)
                ga += tmp
                np.multiply(ga, ga, out=tmp)                   # avg = sqrt(max(sq - ga**2, 0)) + eps
                np.subtract(sq, tmp, out=tmp)
                np.maximum(tmp, 0.0, out=tmp)
                np.sqrt(tmp, out=tmp)
            else:
                np.sqrt(sq, out=tmp)                           # avg = sqrt(sq) + eps
            tmp += eps
            np.divide(g, tmp, out=tmp)                         # g / avg
            if buf is not None:
                buf *= momentum                                # buf = momentum * buf + g / avg
                buf += tmp
                np.multiply(buf, lr, out=tmp)
            else:
                tmp *= lr
            p -= tmp


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), PyTorch's update rule.

    Hyper-parameters: ``lr >= 0``; ``lr_decay >= 0``; ``weight_decay >= 0`` (L2);
    ``initial_accumulator_value >= 0``; ``eps > 0``; ``maximize``. State: ``sum``, starting at
    ``initial_accumulator_value``.

    Update, with ``t`` the steps already taken::

        g   = grad + weight_decay * w                     (-grad + ... with maximize)
        clr = lr / (1 + t * lr_decay)
        sum = sum + g**2
        w  -= clr * g / (sqrt(sum) + eps)

    Example: ``Adagrad(model.parameters(), lr=0.05)``.
    """

    _hyper = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None,
                 grads=None) -> None:
        super().__init__(params, lr, grads, maximize=maximize)
        _implementation_flags("Adagrad", differentiable)
        self.lr_decay = check_range("Adagrad", "lr_decay", lr_decay, 0)
        self.weight_decay = check_range("Adagrad", "weight_decay", weight_decay, 0)
        self.eps = check_range("Adagrad", "eps", eps, 0, low_open=True)
        self.initial_accumulator_value = check_range(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value, 0)
        self._sum = self._new_state("sum", self.initial_accumulator_value)

    def _update(self, lr: float) -> None:
        clr = lr / (1.0 + self.t * self.lr_decay)
        eps = self.eps
        wd = self.weight_decay
        for p, g, acc, tmp, d in zip(self.params, self.grads, self._sum, self._tmp, self._l2_scratch(wd)):
            if d is not None:
                g = _with_l2(p, g, wd, d, self.maximize)       # g = grad + weight_decay * w
            np.multiply(g, g, out=tmp)                         # sum = sum + g**2
            acc += tmp
            _adaptive_step(p, g, acc, eps, clr, tmp)           # w -= clr * g / (sqrt(sum) + eps)


#: Config name -> optimizer class: backprop's lower-case names first (the canonical ones), then PyTorch's.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
    "SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop, "Adagrad": Adagrad,
}


def optimizer_name(name: str) -> str | None:
    """The canonical (first) config name of the optimizer called ``name``; None for an unknown name."""
    cls = OPTIMIZERS.get(name)
    return None if cls is None else next(key for key, value in OPTIMIZERS.items() if value is cls)
