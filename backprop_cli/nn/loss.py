"""Losses (Torch7 criterions): regression, class-index classification and binary targets.

Each class states its per-element (or per-sample) loss ``l_i``; ``reduction="sum"`` returns
``sum_i l_i`` and ``reduction="mean"`` divides that sum by the count the class names (the number of
elements, the number of samples, or the summed class weights). Gradients are ``dLoss/dOutput``,
shaped like the output and in its dtype (float32 in, float32 out); loss values are summed in float64.

Class targets are integer arrays of 0-based indices; binary and regression targets are shaped like
the output. Every check raises ``ValueError``/``TypeError`` naming the expected and the actual shape.
"""

from __future__ import annotations

import numpy as np

from .functional import log_softmax, sigmoid, softmax
from .module import ANY_RANK, CLASS_RANKS, DEFAULT_DTYPE, Criterion, ShapeError, check_array, shape_str


#: PyTorch's floor for ``log`` in BCELoss, so a probability of exactly 0 or 1 gives a finite loss.
LOG_FLOOR = -100.0
#: PyTorch's floor for ``y * (1 - y)`` in the BCELoss gradient.
BCE_GRAD_EPS = 1e-12


# --------------------------------------------------------------------------- checks
def _numeric(name: str, what: str, x) -> np.ndarray:
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise TypeError(f"{name} expected a numeric {what}, got dtype {x.dtype}")
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
        raise TypeError(f"{name} expected integer class indices, got dtype {target.dtype}")
    classes = output.shape[1]
    bad = (target < 0) | (target >= classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bad.any():
        first = np.unravel_index(int(np.flatnonzero(bad)[0]), target.shape)
        where = first[0] if len(first) == 1 else tuple(int(i) for i in first)
        raise ValueError(f"{name} got class index {int(target[first])} at position {where}, "
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


# --------------------------------------------------------------------------- shared bases
class _ElementwiseCriterion(Criterion):
    """A loss with one term per output element; ``mean`` divides by the number of elements."""

    def _reduce(self, loss: np.ndarray) -> float:
        total = float(np.sum(loss, dtype=np.float64))
        return total / loss.size if self.reduction == "mean" and loss.size else total

    def _scale(self, output: np.ndarray) -> float:
        """The factor every per-element gradient is multiplied by (``1/n`` for mean)."""
        return 1.0 / output.size if self.reduction == "mean" and output.size else 1.0


class _ClassCriterion(Criterion):
    """Shared by the criterions whose targets are class indices, optionally weighted per class."""

    task = "classification"
    outputs = "scores"

    def __init__(self, weights=None, reduction: str = "mean", ignore_index: int | None = None) -> None:
        super().__init__(reduction)
        name = type(self).__name__
        self.weights = _weights_array(name, "class weights", weights)
        if self.weights is not None and self.weights.ndim != 1:
            raise ShapeError(f"{name} expected class weights (C,), got {shape_str(self.weights.shape)}")
        if ignore_index is not None and not isinstance(ignore_index, (int, np.integer)):
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

    def _target_weights(self, target: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices safe to gather with, and each sample's weight ``w[t_i]`` (0 where ignored)."""
        t = target.reshape(-1)
        keep = None
        if self.ignore_index is not None:
            keep = t != self.ignore_index
            t = np.where(keep, t, 0)
        w = self.weights.astype(dtype, copy=False)[t] if self.weights is not None else np.ones(t.shape, dtype)
        if keep is not None:
            w = w * keep
        return t, w

    def _unit_weights(self) -> bool:
        """Every ``w[t_i]`` is 1 (no class weights, no ignore_index): losses may skip the weight array."""
        return self.weights is None and self.ignore_index is None

    def _denominator(self, w: np.ndarray | int) -> float:
        """``sum_i w[t_i]`` for mean (``N`` without weights; an int ``w`` is that count), 1 for sum;
        1 when every target is ignored."""
        if self.reduction != "mean":
            return 1.0
        return (float(w) if isinstance(w, int) else float(np.sum(w, dtype=np.float64))) or 1.0

    def to(self, dtype) -> Criterion:
        if self.weights is not None:
            self.weights = self.weights.astype(dtype)
        return self

    def extra_repr(self) -> str:
        return _join("" if self.weights is None else f"weights={_array_repr(self.weights)}",
                     super().extra_repr(),
                     "" if self.ignore_index is None else f"ignore_index={self.ignore_index}")


# --------------------------------------------------------------------------- regression
class MSECriterion(_ElementwiseCriterion):
    """``l_i = (y_i - t_i)^2`` per element; mean divides by the number of elements.

    Shape: output ``(N, ...)``, target the same shape.
    Example: ``MSECriterion()(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])) == 2.5``.
    """

    def update_output(self, output, target):
        d = output - _like_output("MSECriterion", output, target)
        return self._reduce(d * d)

    def update_grad_input(self, output, target):
        """``grad_input = 2 * (y - t) / n`` (``n`` = number of elements for mean, 1 for sum)."""
        d = output - _like_output("MSECriterion", output, target)
        d *= 2.0 * self._scale(output)
        return d


class AbsCriterion(_ElementwiseCriterion):
    """``l_i = |y_i - t_i|`` per element (L1Loss); mean divides by the number of elements.

    Shape: output ``(N, ...)``, target the same shape.
    Example: ``AbsCriterion()(np.array([[1.0, -3.0]]), np.zeros((1, 2))) == 2.0``.
    """

    def update_output(self, output, target):
        return self._reduce(np.abs(output - _like_output("AbsCriterion", output, target)))

    def update_grad_input(self, output, target):
        """``grad_input = sign(y - t) / n`` (0 where ``y == t``)."""
        g = np.sign(output - _like_output("AbsCriterion", output, target))
        g *= self._scale(output)
        return g


class SmoothL1Criterion(_ElementwiseCriterion):
    """``l_i = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta``, ``d = y_i - t_i`` (Huber / beta).

    ``beta=0`` is the plain L1 loss. Mean divides by the number of elements.
    Shape: output ``(N, ...)``, target the same shape.
    Example: ``SmoothL1Criterion(beta=1.0)`` on ``d = [0.5, 3.0]`` gives ``(0.125 + 2.5) / 2``.
    """

    def __init__(self, beta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Criterion beta must be >= 0, got {beta}")
        self.beta = float(beta)

    def update_output(self, output, target):
        d = np.abs(output - _like_output("SmoothL1Criterion", output, target))
        if self.beta == 0:
            return self._reduce(d)
        return self._reduce(np.where(d < self.beta, (0.5 / self.beta) * d * d, d - 0.5 * self.beta))

    def update_grad_input(self, output, target):
        """``grad_input = (d / beta if |d| < beta else sign(d)) / n``."""
        d = output - _like_output("SmoothL1Criterion", output, target)
        g = np.sign(d) if self.beta == 0 else np.where(np.abs(d) < self.beta, d * (1.0 / self.beta), np.sign(d))
        g *= self._scale(output)
        return g

    def extra_repr(self):
        return _join("" if self.beta == 1.0 else f"beta={self.beta}", super().extra_repr())


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
        x = _flat_classes(output)
        if self._unit_weights():
            picked = x[np.arange(x.shape[0]), target.reshape(-1)]
            return -float(np.add.reduce(picked, dtype=np.float64)) / self._denominator(len(picked))
        t, w = self._target_weights(target, output.dtype)
        picked = x[np.arange(x.shape[0]), t]
        return -float(np.sum(w * picked, dtype=np.float64)) / self._denominator(w)

    def update_grad_input(self, output, target):
        """``grad_input[i, t_i] = -w[t_i] / denominator``, 0 elsewhere."""
        target = self._target(output, target)
        if self._unit_weights():
            t = target.reshape(-1)
            value = -1.0 / self._denominator(len(t))
        else:
            t, w = self._target_weights(target, output.dtype)
            value = w * (-1.0 / self._denominator(w))
        g = np.zeros((t.shape[0], output.shape[1]), dtype=output.dtype)
        g[np.arange(t.shape[0]), t] = value
        return _unflat_classes(g, output.shape)


class CrossEntropyCriterion(_ClassCriterion):
    """``l_i = w[t_i] * (log sum_j exp(x_ij) - x[i, t_i])`` on logits: LogSoftMax + ClassNLL fused.

    Computed from ``x - max x``, so logits of +-1000 give a finite loss and gradient. Mean divides by
    ``sum_i w[t_i]`` (``N`` without weights); ``ignore_index`` works as in ClassNLLCriterion.
    Shape: output ``(N, C)`` with target ``(N,)``, or ``(N, C, d1, ...)`` with target ``(N, d1, ...)``.
    Example: ``Sequential(Linear(784, 10))`` trained with ``CrossEntropyCriterion()`` on raw scores.
    """

    def update_output(self, output, target):
        target = self._target(output, target)
        logp = log_softmax(_flat_classes(output))
        t, w = self._target_weights(target, output.dtype)
        return -float(np.sum(w * logp[np.arange(len(t)), t], dtype=np.float64)) / self._denominator(w)

    def update_grad_input(self, output, target):
        """``grad_input = (softmax(x) - onehot(t)) * w[t_i] / denominator``."""
        target = self._target(output, target)
        p = softmax(_flat_classes(output))
        t, w = self._target_weights(target, output.dtype)
        coef = w * (1.0 / self._denominator(w))
        g = p * coef[:, None]
        g[np.arange(t.shape[0]), t] -= coef
        return _unflat_classes(g, output.shape)


class MultiMarginCriterion(_ClassCriterion):
    """``l_i = w[t_i] * sum_{j != t_i} max(0, margin - x[i, t_i] + x[i, j])^p / C`` (Torch7's hinge).

    ``p`` is 1 or 2; mean divides by the number of samples ``N`` (also with weights, as in Torch).
    Shape: output ``(N, C)`` of scores, target ``(N,)`` of class indices.
    Example: ``MultiMarginCriterion()`` on scores ``[[2.0, 0.5]]`` with target ``[0]`` gives
    ``max(0, 1 - 2 + 0.5) / 2 = 0``.
    """

    def __init__(self, p: int = 1, margin: float = 1.0, weights=None, reduction: str = "mean") -> None:
        super().__init__(weights, reduction)
        if p not in (1, 2):
            raise ValueError(f"MultiMarginCriterion p must be 1 or 2, got {p}")
        self.p, self.margin = int(p), float(margin)

    def _hinge(self, output, target):
        """``max(0, margin - x_t + x_j)`` with 0 in the target column, and ``w[t_i] / C`` per sample."""
        target = self._target(output, target, ranks=2)
        rows = np.arange(output.shape[0])
        z = output - output[rows, target][:, None]
        z += self.margin
        z[rows, target] = 0
        np.maximum(z, 0, out=z)
        _, w = self._target_weights(target, output.dtype)
        return z, w * (1.0 / output.shape[1]), rows, target

    def _count(self, output) -> float:
        return float(output.shape[0]) if self.reduction == "mean" and output.shape[0] else 1.0

    def update_output(self, output, target):
        z, w, _, _ = self._hinge(output, target)
        h = z if self.p == 1 else z * z
        return float(np.sum(h.sum(axis=1) * w, dtype=np.float64)) / self._count(output)

    def update_grad_input(self, output, target):
        """``grad_input[i, j] = w[t_i] h'(z_ij) / (C n)``, j != t_i, h' = 1 or 2z if z > 0; at t_i: -sum_j."""
        z, w, rows, target = self._hinge(output, target)
        g = (z > 0).astype(output.dtype) if self.p == 1 else 2 * z
        g *= (w * (1.0 / self._count(output)))[:, None]
        g[rows, target] = -g.sum(axis=1)
        return g

    def extra_repr(self):
        return _join("" if self.p == 1 else f"p={self.p}",
                     "" if self.margin == 1.0 else f"margin={self.margin}", super().extra_repr())


# --------------------------------------------------------------------------- binary targets
class BCECriterion(_ElementwiseCriterion):
    """``l_i = -w_i * (t_i log y_i + (1 - t_i) log(1 - y_i))`` on probabilities ``y`` in [0, 1].

    Each log is clamped at -100 as in PyTorch, so ``y = 0`` or ``1`` gives a finite loss; the gradient
    divides by ``max(y (1 - y), 1e-12)`` for the same reason. ``weights`` (optional) broadcasts to the
    output. Mean divides by the number of elements. Prefer BCEWithLogitsCriterion on raw scores.
    Shape: output ``(N, ...)`` of probabilities, target the same shape with values in [0, 1].
    Example: ``Sequential(Linear(8, 1), Sigmoid())`` trained with ``BCECriterion()`` on 0/1 labels.
    """

    task = "binary"
    outputs = "probabilities"

    def __init__(self, weights=None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weights = _weights_array("BCECriterion", "weights", weights)

    def _checked(self, output, target):
        target = _like_output("BCECriterion", output, target)
        for what, a in (("output", output), ("target", target)):
            if a.size and (a.min() < 0 or a.max() > 1):
                raise ValueError(f"BCECriterion expected {what} probabilities in [0, 1], got values in "
                                 f"[{float(a.min()):g}, {float(a.max()):g}]"
                                 + ("; use BCEWithLogitsCriterion on raw scores" if what == "output" else ""))
        return target, _broadcast_to("BCECriterion", "weights", self.weights, output)

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

    def to(self, dtype) -> Criterion:
        if self.weights is not None:
            self.weights = self.weights.astype(dtype)
        return self

    def extra_repr(self):
        return _join("" if self.weights is None else f"weights={_array_repr(self.weights)}", super().extra_repr())


class BCEWithLogitsCriterion(_ElementwiseCriterion):
    """``l_i = w_i * ((1 - t_i) x_i + (1 + (pw - 1) t_i) * log(1 + exp(-x_i)))``: Sigmoid + BCE fused.

    Without ``pos_weight`` this is ``max(x, 0) - x t + log(1 + exp(-|x|))``, finite for any ``x``.
    ``pos_weight`` (per class, broadcast along the last axis) scales the positive term; ``weights``
    (optional) broadcasts to the output. Mean divides by the number of elements.
    Shape: output ``(N, ...)`` of raw scores, target the same shape with values in [0, 1].
    Example: ``BCEWithLogitsCriterion(pos_weight=np.array([3.0]))`` for 1 positive in 4.
    """

    task = "binary"
    outputs = "logits"     # the model's output is a score: class 1 where it is > 0 (not > 0.5)

    def __init__(self, pos_weight=None, reduction: str = "mean", *, weights=None) -> None:
        super().__init__(reduction)
        self.pos_weight = _weights_array("BCEWithLogitsCriterion", "pos_weight", pos_weight)
        self.weights = _weights_array("BCEWithLogitsCriterion", "weights", weights)

    def _checked(self, output, target):
        target = _like_output("BCEWithLogitsCriterion", output, target)
        pw = _broadcast_to("BCEWithLogitsCriterion", "pos_weight", self.pos_weight, output)
        return target, pw, _broadcast_to("BCEWithLogitsCriterion", "weights", self.weights, output)

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

    def to(self, dtype) -> Criterion:
        if self.pos_weight is not None:
            self.pos_weight = self.pos_weight.astype(dtype)
        if self.weights is not None:
            self.weights = self.weights.astype(dtype)
        return self

    def extra_repr(self):
        return _join("" if self.pos_weight is None else f"pos_weight={_array_repr(self.pos_weight)}",
                     super().extra_repr(),
                     "" if self.weights is None else f"weights={_array_repr(self.weights)}")
