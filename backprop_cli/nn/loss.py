"""Losses (Torch7 criterions): regression, class-index classification and binary targets.

Each class states its per-element (or per-sample) loss ``l_i``; ``reduction="sum"`` returns
``sum_i l_i`` and ``reduction="mean"`` divides that sum by the count the class names (the number of
elements, the number of samples, or the summed class weights). Gradients are ``dLoss/dOutput``,
shaped like the output and in its dtype (float32 in, float32 out); loss values are summed in float64.

Class targets are integer arrays of 0-based indices; binary and regression targets are shaped like
the output. An array that does not fit raises :class:`~backprop_cli.errors.ShapeError`,
``DTypeError`` or ``ArrayError`` (each a ``ValueError``) naming what was expected and what came.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .functional import log_softmax, sigmoid, softmax
from .module import (ANY_RANK, CLASS_RANKS, DEFAULT_DTYPE, ArrayError, Criterion, DTypeError, ShapeError, check_array,
                     pytorch_name, shape_str)


#: PyTorch's floor for ``log`` in BCELoss, so a probability of exactly 0 or 1 gives a finite loss.
LOG_FLOOR = -100.0
#: PyTorch's floor for ``y * (1 - y)`` in the BCELoss gradient.
BCE_GRAD_EPS = 1e-12


# --------------------------------------------------------------------------- checks
def _numeric(name: str, what: str, x) -> np.ndarray:
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DTypeError(f"{name} expected a numeric {what}, got dtype {x.dtype}")
    return x


def _like_output(name: str, output, target) -> np.ndarray:
    """A target shaped like the output, converted to the output's dtype."""
    check_array(name, output, ANY_RANK, "(N, ...)")
    target = _numeric(name, "target", target)
    if target.shape != output.shape:
        raise ShapeError(f"{name} expected target {shape_str(output.shape)} shaped like the output, "
                         f"got {shape_str(target.shape)}")
    return target.astype(output.dtype, copy=False)


def _class_indices(name: str, output, target, ranks=CLASS_RANKS, expected="(N, C)",
                   ignore_index: int | None = None) -> np.ndarray:
    """Check ``target`` holds an integer in ``[0, C)`` per sample (per position for ``(N, C, d1, ...)``)."""
    check_array(name, output, ranks, expected)
    if not isinstance(target, np.ndarray):
        target = np.asarray(target)
    want = (output.shape[0],) + output.shape[2:]
    if target.shape != want:
        raise ShapeError(f"{name} expected target {shape_str(want)} of class indices, "
                         f"got {shape_str(target.shape)}")
    if target.dtype.kind not in "iu":                     # np.issubdtype(..., np.integer), cheaper
        raise DTypeError(f"{name} expected integer class indices, got dtype {target.dtype}")
    classes = output.shape[1]
    bad = (target < 0) | (target >= classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bad.any():
        first = np.unravel_index(int(np.flatnonzero(bad)[0]), target.shape)
        where = first[0] if len(first) == 1 else tuple(int(i) for i in first)
        raise ArrayError(f"{name} got class index {int(target[first])} at position {where}, "
                         f"outside [0, {classes}) for {classes} classes")
    return target


def _weights_array(name: str, what: str, weights) -> np.ndarray | None:
    if weights is None:
        return None
    w = _numeric(name, what, weights)
    return np.array(w, dtype=w.dtype if np.issubdtype(w.dtype, np.floating) else DEFAULT_DTYPE)


def _broadcast_to(name: str, what: str, w: np.ndarray | None, output: np.ndarray) -> np.ndarray | None:
    """``w`` in the output's dtype, checked to broadcast against the output without growing it."""
    if w is None:
        return None
    try:
        fits = np.broadcast_shapes(w.shape, output.shape) == output.shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"{name} {what} {shape_str(w.shape)} does not broadcast to the output "
                         f"{shape_str(output.shape)}")
    return w.astype(output.dtype, copy=False)


def _flat_classes(x: np.ndarray) -> np.ndarray:
    """``(N, C, d1, ...) -> (N*d1*..., C)``; a 2-D array is returned as is."""
    return x if x.ndim == 2 else np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _unflat_classes(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`_flat_classes`."""
    if len(shape) == 2:
        return g
    return np.ascontiguousarray(np.moveaxis(g.reshape((shape[0],) + shape[2:] + (shape[1],)), -1, 1))


def _array_repr(w: np.ndarray) -> str:
    return np.array2string(w, separator=", ", threshold=8, precision=4)


def _join(*args: str) -> str:
    """``extra_repr`` from the non-empty parts."""
    return ", ".join(a for a in args if a)


def _one_of(owner: str, weight, weights):
    """``weight=`` (PyTorch's spelling) or ``weights=`` (backprop's), not both."""
    if weight is not None and weights is not None:
        raise ValueError(f"{owner} takes weight= or weights= (the same thing), not both")
    return weights if weight is None else weight


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's deprecated ``size_average``/``reduce`` flags read as PyTorch reads them: when either is
    given it decides (``reduce=False`` -> ``"none"``, else ``size_average=False`` -> ``"sum"``, else
    ``"mean"``; an unset flag counts as True); when neither is, ``reduction`` does."""
    if size_average is None and reduce is None:
        return reduction
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


# --------------------------------------------------------------------------- shared bases
class _ElementwiseCriterion(Criterion):
    """A loss with one term per output element; ``mean`` divides by the number of elements."""

    def _reduce(self, loss: np.ndarray) -> float | np.ndarray:
        if self.reduction == "none":
            return loss
        total = float(np.sum(loss, dtype=np.float64))
        return total / loss.size if self.reduction == "mean" and loss.size else total

    def _scale(self, output: np.ndarray) -> float:
        """The factor every per-element gradient is multiplied by (``1/n`` for mean)."""
        return 1.0 / output.size if self.reduction == "mean" and output.size else 1.0

    def mean_count(self, output, target) -> float:
        """The number of elements."""
        return float(np.size(output))


class _Weighted:
    """Per-element ``weights`` (``weight=`` too) that broadcast to the output (the binary losses)."""

    _weight_key = "weights"

    def _set_weights(self, weight, weights) -> None:
        name = type(self).__name__
        self.weights = _weights_array(name, "weights", _one_of(name, weight, weights))

    @property
    def weight(self) -> np.ndarray | None:
        """The weights, by PyTorch's name."""
        return self.weights

    def _weights_repr(self) -> str:
        return "" if self.weights is None else f"{self._weight_key}={_array_repr(self.weights)}"

    def to(self, dtype) -> Criterion:
        for name in ("weights", "pos_weight"):
            if getattr(self, name, None) is not None:
                setattr(self, name, getattr(self, name).astype(dtype))
        return self


class _Targets(NamedTuple):
    """Class targets flattened for gathering: ``t`` (ignored ones set to 0), each sample's weight ``w``
    (``w[t_i]``, 0 where ignored; None when every one is 1) and ``keep`` (None when none is ignored)."""

    t: np.ndarray
    w: np.ndarray | None
    keep: np.ndarray | None


class _ClassCriterion(_Weighted, Criterion):
    """Shared by the criterions whose targets are class indices, optionally weighted per class."""

    task = "classification"
    outputs = "scores"

    def __init__(self, weights=None, reduction: str = "mean", ignore_index: int | None = None, *,
                 weight=None) -> None:
        super().__init__(reduction)
        name = type(self).__name__
        self._set_weights(weight, weights)
        if self.weights is not None and self.weights.ndim != 1:
            raise ShapeError(f"{name} expected class weights (C,), got {shape_str(self.weights.shape)}")
        if ignore_index is not None and (isinstance(ignore_index, bool)
                                         or not isinstance(ignore_index, (int, np.integer))):
            raise TypeError(f"{name} ignore_index must be an int, got {type(ignore_index).__name__}")
        self.ignore_index = None if ignore_index is None else int(ignore_index)

    def _target(self, output, target, ranks=CLASS_RANKS, expected="(N, C)") -> np.ndarray:
        target = _class_indices(type(self).__name__, output, target, ranks, expected, self.ignore_index)
        if self.weights is not None and self.weights.shape[0] != output.shape[1]:
            raise ShapeError(f"{type(self).__name__} has weights for {self.weights.shape[0]} classes, "
                             f"got output {shape_str(output.shape)} with {output.shape[1]} classes")
        return target

    def counted(self, target):
        """False where the target is ``ignore_index``."""
        return None if self.ignore_index is None else np.asarray(target) != self.ignore_index

    def _targets(self, target: np.ndarray, dtype) -> _Targets:
        t = target.reshape(-1)
        keep = None
        if self.ignore_index is not None:
            keep = t != self.ignore_index
            if keep.all():
                keep = None
            else:
                t = np.where(keep, t, 0)
        if self.weights is None and keep is None:
            return _Targets(t, None, None)
        w = self.weights.astype(dtype, copy=False)[t] if self.weights is not None else np.ones(t.shape, dtype)
        return _Targets(t, w if keep is None else w * keep, keep)

    def _denominator(self, targets: _Targets) -> float:
        """``sum_i w[t_i]`` for mean (``N`` without weights), 1 for sum and none; 1 when every target is
        ignored (the loss is then 0, where PyTorch gives nan)."""
        if self.reduction != "mean":
            return 1.0
        total = len(targets.t) if targets.w is None else float(np.sum(targets.w, dtype=np.float64))
        return float(total) or 1.0

    def _reduce(self, losses: np.ndarray, targets: _Targets, shape) -> float | np.ndarray:
        """Per-sample ``losses`` (flat) summed and divided by the denominator; shaped like the target
        for ``"none"``."""
        if self.reduction == "none":
            return losses.reshape(shape)
        return float(np.add.reduce(losses, dtype=np.float64)) / self._denominator(targets)

    def mean_count(self, output, target) -> float:
        """``sum_i w[t_i]``: the summed weights of the targets not ignored (their number without weights)."""
        targets = self._targets(np.asarray(target), output.dtype)
        return float(len(targets.t)) if targets.w is None else float(np.sum(targets.w, dtype=np.float64))

    def extra_repr(self) -> str:
        return _join(self._weights_repr(), super().extra_repr(),
                     "" if self.ignore_index is None else f"ignore_index={self.ignore_index}")


class _HuberFamily(_ElementwiseCriterion):
    """``l_i = (0.5 d^2 if |d| < c else c (|d| - 0.5 c)) / divisor``, ``d = y_i - t_i``: Huber's loss with
    threshold ``c``; SmoothL1 divides it by ``c``. ``c = 0`` is the L1 loss."""

    _threshold = 1.0
    _divisor = 1.0

    def update_output(self, output, target):
        d = np.abs(output - _like_output(type(self).__name__, output, target))
        c = self._threshold
        if c == 0:
            return self._reduce(d)
        loss = np.where(d < c, 0.5 * d * d, c * (d - 0.5 * c))
        return self._reduce(loss / self._divisor if self._divisor != 1.0 else loss)

    def update_grad_input(self, output, target):
        """``grad_input = clip(d, -c, c) / divisor / n`` (``sign(d) / n`` for ``c = 0``)."""
        d = output - _like_output(type(self).__name__, output, target)
        c = self._threshold
        g = np.sign(d) if c == 0 else np.clip(d, -c, c)
        g *= self._scale(output) / (self._divisor if c else 1.0)
        return g


# --------------------------------------------------------------------------- regression
class MSECriterion(_ElementwiseCriterion):
    """``l_i = (y_i - t_i)^2`` per element; mean divides by the number of elements.

    Shape: output ``(N, ...)``, target the same shape.
    Example: ``MSECriterion()(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])) == 2.5``.
    """

    def update_output(self, output, target):
        d = output - _like_output(type(self).__name__, output, target)
        return self._reduce(d * d)

    def update_grad_input(self, output, target):
        """``grad_input = 2 * (y - t) / n`` (``n`` = number of elements for mean, 1 for sum)."""
        d = output - _like_output(type(self).__name__, output, target)
        d *= 2.0 * self._scale(output)
        return d


class AbsCriterion(_ElementwiseCriterion):
    """``l_i = |y_i - t_i|`` per element (L1Loss); mean divides by the number of elements.

    Shape: output ``(N, ...)``, target the same shape.
    Example: ``AbsCriterion()(np.array([[1.0, -3.0]]), np.zeros((1, 2))) == 2.0``.
    """

    def update_output(self, output, target):
        return self._reduce(np.abs(output - _like_output(type(self).__name__, output, target)))

    def update_grad_input(self, output, target):
        """``grad_input = sign(y - t) / n`` (0 where ``y == t``)."""
        g = np.sign(output - _like_output(type(self).__name__, output, target))
        g *= self._scale(output)
        return g


class SmoothL1Criterion(_HuberFamily):
    """``l_i = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta``, ``d = y_i - t_i`` (Huber / beta).

    ``beta=0`` is the plain L1 loss. Mean divides by the number of elements.
    Shape: output ``(N, ...)``, target the same shape.
    Example: ``SmoothL1Criterion(beta=1.0)`` on ``d = [0.5, 3.0]`` gives ``(0.125 + 2.5) / 2``.
    """

    def __init__(self, beta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if not beta >= 0:
            raise ValueError(f"{type(self).__name__} beta must be >= 0, got {beta}")
        self.beta = self._threshold = float(beta)
        self._divisor = self.beta or 1.0

    def update_grad_input(self, output, target):
        """``grad_input = (d / beta if |d| < beta else sign(d)) / n``."""
        return super().update_grad_input(output, target)

    def extra_repr(self):
        return _join("" if self.beta == 1.0 else f"beta={self.beta}", super().extra_repr())


class HuberLoss(_HuberFamily):
    """``l_i = 0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta)``, ``d = y_i - t_i`` (PyTorch's HuberLoss).

    ``delta * SmoothL1(beta=delta)``: the same for ``delta = 1``, steeper tails for larger deltas.
    ``delta > 0``. Mean divides by the number of elements.
    Shape: output ``(N, ...)``, target the same shape.
    Example: ``HuberLoss(delta=2.0)`` on ``d = [1.0, 3.0]`` gives ``(0.5 + 4.0) / 2``.
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"HuberLoss delta must be > 0, got {delta}")
        self.delta = self._threshold = float(delta)

    def update_grad_input(self, output, target):
        """``grad_input = clip(d, -delta, delta) / n``."""
        return super().update_grad_input(output, target)

    def extra_repr(self):
        return _join(super().extra_repr(), "" if self.delta == 1.0 else f"delta={self.delta}")


# --------------------------------------------------------------------------- class indices
class ClassNLLCriterion(_ClassCriterion):
    """``l_i = -w[t_i] * x[i, t_i]`` on log-probabilities ``x`` (NLLLoss); pair with LogSoftMax.

    Mean divides by ``sum_i w[t_i]`` (``N`` without weights, PyTorch semantics); sum does not.
    Targets equal to ``ignore_index`` add nothing to the loss or the denominator (if every target is
    ignored the loss is 0, where PyTorch gives nan).
    Shape: output ``(N, C)`` with target ``(N,)``, or ``(N, C, d1, ...)`` with target ``(N, d1, ...)``.
    Example: ``ClassNLLCriterion()(LogSoftMax()(logits), labels)`` with integer ``labels`` in ``[0, C)``.
    """

    outputs = "log_probabilities"

    def update_output(self, output, target):
        target = self._target(output, target)
        targets = self._targets(target, output.dtype)
        picked = _flat_classes(output)[np.arange(len(targets.t)), targets.t]
        return self._reduce(-picked if targets.w is None else -(targets.w * picked), targets, target.shape)

    def update_grad_input(self, output, target):
        """``grad_input[i, t_i] = -w[t_i] / denominator``, 0 elsewhere."""
        target = self._target(output, target)
        targets = self._targets(target, output.dtype)
        value = -1.0 / self._denominator(targets)
        n = len(targets.t)
        g = np.zeros((n, output.shape[1]), dtype=output.dtype)
        g[np.arange(n), targets.t] = value if targets.w is None else targets.w * value
        return _unflat_classes(g, output.shape)


class CrossEntropyCriterion(_ClassCriterion):
    """``l_i = (1 - e) w[t_i] (lse_i - x[i, t_i]) + (e / C) sum_c w_c (lse_i - x[i, c])``, ``lse_i = log sum_j exp(x_ij)``.

    On logits: LogSoftMax + ClassNLL fused, with PyTorch's ``label_smoothing`` ``e`` in ``[0, 1]``
    (``e = 0``: ``l_i = w[t_i] (lse_i - x[i, t_i])``). Computed from ``x - max x``, so logits of +-1000
    give a finite loss and gradient. Mean divides by ``sum_i w[t_i]`` (``N`` without weights);
    ``ignore_index`` works as in ClassNLLCriterion (both terms are 0 for an ignored target).
    Shape: output ``(N, C)`` with target ``(N,)``, or ``(N, C, d1, ...)`` with target ``(N, d1, ...)``.
    Example: ``Sequential(Linear(784, 10))`` trained with ``CrossEntropyCriterion()`` on raw scores.
    """

    def __init__(self, weights=None, reduction: str = "mean", ignore_index: int | None = None, *,
                 weight=None, label_smoothing: float = 0.0) -> None:
        super().__init__(weights, reduction, ignore_index, weight=weight)
        if isinstance(label_smoothing, bool) or not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"{type(self).__name__} label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def update_output(self, output, target):
        target = self._target(output, target)
        logp = log_softmax(_flat_classes(output))
        targets = self._targets(target, output.dtype)
        losses = -logp[np.arange(len(targets.t)), targets.t]
        if targets.w is not None:
            losses *= targets.w
        e = self.label_smoothing
        if e:
            smooth = -(logp.sum(axis=1) if self.weights is None else logp @ self.weights.astype(logp.dtype))
            if targets.keep is not None:
                smooth *= targets.keep
            losses = (1 - e) * losses + (e / output.shape[1]) * smooth
        return self._reduce(losses, targets, target.shape)

    def update_grad_input(self, output, target):
        """``grad_input = ((1 - e) w[t_i] (p - onehot(t)) + (e / C) (p sum_c w_c - w)) / denominator``, ``p = softmax(x)``."""
        target = self._target(output, target)
        p = softmax(_flat_classes(output))
        targets = self._targets(target, output.dtype)
        n, classes = p.shape
        scale = (1.0 - self.label_smoothing) / self._denominator(targets)
        coef = scale if targets.w is None else targets.w * scale              # (1 - e) w[t_i] / denominator
        if self.label_smoothing:
            cw = np.ones(classes, p.dtype) if self.weights is None else self.weights.astype(p.dtype)
            k = self.label_smoothing / classes / self._denominator(targets)   # e / C / denominator
            k = np.full(n, k, p.dtype) if targets.keep is None else targets.keep * p.dtype.type(k)
            g = p * (coef + k * cw.sum())[:, None]
            g -= k[:, None] * cw
        elif targets.w is None:
            g = p
            g *= coef
        else:
            g = p * coef[:, None]
        g[np.arange(n), targets.t] -= coef
        return _unflat_classes(g, output.shape)

    def extra_repr(self):
        return _join(super().extra_repr(),
                     f"label_smoothing={self.label_smoothing}" if self.label_smoothing else "")


class MultiMarginCriterion(_ClassCriterion):
    """``l_i = w[t_i] * sum_{j != t_i} max(0, margin - x[i, t_i] + x[i, j])^p / C`` (Torch7's hinge).

    ``p`` is 1 or 2; mean divides by the number of samples ``N`` (also with weights, as in Torch).
    Shape: output ``(N, C)`` of scores, target ``(N,)`` of class indices.
    Example: ``MultiMarginCriterion()`` on scores ``[[2.0, 0.5]]`` with target ``[0]`` gives
    ``max(0, 1 - 2 + 0.5) / 2 = 0``.
    """

    def __init__(self, p: int = 1, margin: float = 1.0, weights=None, reduction: str = "mean", *,
                 weight=None) -> None:
        super().__init__(weights, reduction, weight=weight)
        if p not in (1, 2) or isinstance(p, bool):
            raise ValueError(f"{type(self).__name__} p must be 1 or 2, got {p}")
        self.p, self.margin = int(p), float(margin)

    def _hinge(self, output, target):
        """``max(0, margin - x_t + x_j)`` with 0 in the target column, and ``w[t_i] / C`` per sample."""
        target = self._target(output, target, ranks=2)
        rows = np.arange(output.shape[0])
        z = output - output[rows, target][:, None]
        z += self.margin
        z[rows, target] = 0
        np.maximum(z, 0, out=z)
        w = self._targets(target, output.dtype).w
        per_sample = 1.0 / output.shape[1]
        return z, per_sample if w is None else w * per_sample, rows, target

    def _count(self, output) -> float:
        return float(output.shape[0]) if self.reduction == "mean" and output.shape[0] else 1.0

    def mean_count(self, output, target) -> float:
        """The number of samples, also with weights (as in Torch)."""
        return float(output.shape[0])

    def update_output(self, output, target):
        z, w, _, _ = self._hinge(output, target)
        losses = (z if self.p == 1 else z * z).sum(axis=1) * w
        if self.reduction == "none":
            return losses
        return float(np.sum(losses, dtype=np.float64)) / self._count(output)

    def update_grad_input(self, output, target):
        """``grad_input[i, j] = w[t_i] h'(z_ij) / (C n)``, j != t_i, h' = 1 or 2z if z > 0; at t_i: -sum_j."""
        z, w, rows, target = self._hinge(output, target)
        g = (z > 0).astype(output.dtype) if self.p == 1 else 2 * z
        g *= np.reshape(w * (1.0 / self._count(output)), (-1, 1))
        g[rows, target] = -g.sum(axis=1)
        return g

    def extra_repr(self):
        return _join("" if self.p == 1 else f"p={self.p}",
                     "" if self.margin == 1.0 else f"margin={self.margin}", super().extra_repr())


# --------------------------------------------------------------------------- binary targets
class BCECriterion(_Weighted, _ElementwiseCriterion):
    """``l_i = -w_i * (t_i log y_i + (1 - t_i) log(1 - y_i))`` on probabilities ``y`` in [0, 1].

    Each log is clamped at -100 as in PyTorch, so ``y = 0`` or ``1`` gives a finite loss; the gradient
    divides by ``max(y (1 - y), 1e-12)`` for the same reason. ``weights`` (optional; ``weight=`` too)
    broadcasts to the output. Mean divides by the number of elements. Prefer BCEWithLogitsCriterion
    on raw scores.
    Shape: output ``(N, ...)`` of probabilities, target the same shape with values in [0, 1].
    Example: ``Sequential(Linear(8, 1), Sigmoid())`` trained with ``BCECriterion()`` on 0/1 labels.
    """

    task = "binary"
    outputs = "probabilities"

    def __init__(self, weights=None, reduction: str = "mean", *, weight=None) -> None:
        super().__init__(reduction)
        self._set_weights(weight, weights)

    def _checked(self, output, target):
        name = type(self).__name__
        target = _like_output(name, output, target)
        for what, a in (("output", output), ("target", target)):
            if a.size and (a.min() < 0 or a.max() > 1):
                raise ArrayError(f"{name} expected {what} probabilities in [0, 1], got values in "
                                 f"[{float(a.min()):g}, {float(a.max()):g}]"
                                 + ("; use BCEWithLogitsCriterion on raw scores" if what == "output" else ""))
        return target, _broadcast_to(name, "weights", self.weights, output)

    def update_output(self, output, target):
        target, w = self._checked(output, target)
        with np.errstate(divide="ignore"):
            log_y = np.maximum(np.log(output), LOG_FLOOR)
            log_1my = np.maximum(np.log1p(-output), LOG_FLOOR)
        loss = -(target * log_y + (1 - target) * log_1my)
        return self._reduce(loss if w is None else loss * w)

    def update_grad_input(self, output, target):
        """``grad_input = w * (y - t) / max(y (1 - y), 1e-12) / n``."""
        target, w = self._checked(output, target)
        g = (output - target) / np.maximum(output * (1 - output), BCE_GRAD_EPS)
        g *= self._scale(output)
        return g if w is None else g * w

    def extra_repr(self):
        return _join(self._weights_repr(), super().extra_repr())


class BCEWithLogitsCriterion(_Weighted, _ElementwiseCriterion):
    """``l_i = w_i * ((1 - t_i) x_i + (1 + (pw - 1) t_i) * log(1 + exp(-x_i)))``: Sigmoid + BCE fused.

    Without ``pos_weight`` this is ``max(x, 0) - x t + log(1 + exp(-|x|))``, finite for any ``x``.
    ``pos_weight`` (per class, broadcast along the last axis) scales the positive term; ``weights``
    (optional; ``weight=`` too) broadcasts to the output. Mean divides by the number of elements.
    Shape: output ``(N, ...)`` of raw scores, target the same shape with values in [0, 1].
    Example: ``BCEWithLogitsCriterion(pos_weight=np.array([3.0]))`` for 1 positive in 4.
    """

    task = "binary"
    outputs = "logits"     # the model's output is a score: class 1 where it is > 0 (not > 0.5)

    def __init__(self, pos_weight=None, reduction: str = "mean", *, weights=None, weight=None) -> None:
        super().__init__(reduction)
        self.pos_weight = _weights_array(type(self).__name__, "pos_weight", pos_weight)
        self._set_weights(weight, weights)

    def _checked(self, output, target):
        name = type(self).__name__
        target = _like_output(name, output, target)
        pw = _broadcast_to(name, "pos_weight", self.pos_weight, output)
        return target, pw, _broadcast_to(name, "weights", self.weights, output)

    def update_output(self, output, target):
        target, pw, w = self._checked(output, target)
        softplus_neg = np.log1p(np.exp(-np.abs(output))) + np.maximum(-output, 0)   # log(1 + exp(-x))
        if pw is None:
            loss = (1 - target) * output + softplus_neg
        else:
            loss = (1 - target) * output + (1 + (pw - 1) * target) * softplus_neg
        return self._reduce(loss if w is None else loss * w)

    def update_grad_input(self, output, target):
        """``grad_input = w * ((1 + (pw - 1) t) * sigmoid(x) - pw * t) / n`` (``sigmoid(x) - t`` without pw)."""
        target, pw, w = self._checked(output, target)
        sig = sigmoid(output)
        g = sig - target if pw is None else (1 + (pw - 1) * target) * sig - pw * target
        g *= self._scale(output)
        return g if w is None else g * w

    def extra_repr(self):
        return _join("" if self.pos_weight is None else f"pos_weight={_array_repr(self.pos_weight)}",
                     super().extra_repr(), self._weights_repr())


# --------------------------------------------------------------------------- PyTorch's names
# PyTorch's classes take their own arguments in their own order, with their defaults: ``weight`` first
# where there is one, ``ignore_index=-100``, and the deprecated ``size_average``/``reduce`` flags
# (read by :func:`legacy_reduction`). Each is the criterion above it names, with that signature;
# ``weights=`` is still taken by keyword. Their formulas and gradients are their base classes'.
@pytorch_name
class MSELoss(MSECriterion):
    """PyTorch's ``nn.MSELoss``: :class:`MSECriterion` with PyTorch's arguments.

    Shape: output ``(N, ...)``, target the same shape.
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(legacy_reduction(size_average, reduce, reduction))


@pytorch_name
class L1Loss(AbsCriterion):
    """PyTorch's ``nn.L1Loss``: :class:`AbsCriterion` with PyTorch's arguments.

    Shape: output ``(N, ...)``, target the same shape.
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(legacy_reduction(size_average, reduce, reduction))


@pytorch_name
class SmoothL1Loss(SmoothL1Criterion):
    """PyTorch's ``nn.SmoothL1Loss``: :class:`SmoothL1Criterion` with PyTorch's arguments.

    Shape: output ``(N, ...)``, target the same shape.
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(beta, legacy_reduction(size_average, reduce, reduction))


@pytorch_name
class NLLLoss(ClassNLLCriterion):
    """PyTorch's ``nn.NLLLoss``: :class:`ClassNLLCriterion` with PyTorch's arguments; targets -100 are ignored.

    Shape: output ``(N, C)`` with target ``(N,)``, or ``(N, C, d1, ...)`` with target ``(N, d1, ...)``.
    """

    _weight_key = "weight"

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", *, weights=None) -> None:
        super().__init__(weights, legacy_reduction(size_average, reduce, reduction), ignore_index, weight=weight)


@pytorch_name
class CrossEntropyLoss(CrossEntropyCriterion):
    """PyTorch's ``nn.CrossEntropyLoss``: :class:`CrossEntropyCriterion` with PyTorch's arguments; targets
    -100 are ignored.

    Shape: output ``(N, C)`` with target ``(N,)``, or ``(N, C, d1, ...)`` with target ``(N, d1, ...)``.
    """

    _weight_key = "weight"

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0, *, weights=None) -> None:
        super().__init__(weights, legacy_reduction(size_average, reduce, reduction), ignore_index,
                         weight=weight, label_smoothing=label_smoothing)


@pytorch_name
class MultiMarginLoss(MultiMarginCriterion):
    """PyTorch's ``nn.MultiMarginLoss``: :class:`MultiMarginCriterion` with PyTorch's arguments.

    Shape: output ``(N, C)`` of scores, target ``(N,)`` of class indices.
    """

    _weight_key = "weight"

    def __init__(self, p: int = 1, margin: float = 1.0, weight=None, size_average=None, reduce=None,
                 reduction: str = "mean", *, weights=None) -> None:
        super().__init__(p, margin, weights, legacy_reduction(size_average, reduce, reduction), weight=weight)


@pytorch_name
class BCELoss(BCECriterion):
    """PyTorch's ``nn.BCELoss``: :class:`BCECriterion` with PyTorch's arguments.

    Shape: output ``(N, ...)`` of probabilities, target the same shape with values in [0, 1].
    """

    _weight_key = "weight"

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", *,
                 weights=None) -> None:
        super().__init__(weights, legacy_reduction(size_average, reduce, reduction), weight=weight)


@pytorch_name
class BCEWithLogitsLoss(BCEWithLogitsCriterion):
    """PyTorch's ``nn.BCEWithLogitsLoss``: :class:`BCEWithLogitsCriterion` with PyTorch's arguments
    (``weight`` first, ``pos_weight`` last).

    Shape: output ``(N, ...)`` of raw scores, target the same shape with values in [0, 1].
    """

    _weight_key = "weight"

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None,
                 *, weights=None) -> None:
        super().__init__(pos_weight, legacy_reduction(size_average, reduce, reduction), weights=weights,
                         weight=weight)
