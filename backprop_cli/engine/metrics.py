"""The metrics people report, accumulated batch by batch from a model's outputs and the targets.

How an output is read (class, probability, value) is the criterion's business
(:meth:`~backprop_cli.nn.module.Criterion.predictions`, ``probabilities``, ``counted``); this module
only counts. Every metric counts *positions*: a sample for ``(N, C)`` outputs, a pixel for ``(N, C, H, W)``
ones (per-pixel classification), an element for binary and regression outputs; positions the
criterion ignores (``ignore_index``) count for nothing.

* classification and binary, from the confusion matrix ``m[i, j]`` (true ``i``, predicted ``j``):
  ``accuracy = trace(m) / m.sum()``; per class ``precision_i = m[i, i] / m[:, i].sum()``,
  ``recall_i = m[i, i] / m[i].sum()``, ``f1_i = 2 m[i, i] / (m[:, i].sum() + m[i].sum())``;
  ``*_macro`` is their plain mean over the classes that occur in the targets or the predictions (an
  undefined precision or recall counts 0: scikit-learn's default), ``*_weighted`` their mean weighted
  by each class's support ``m[i].sum()``. Binary outputs are the two classes 0 and 1, every element
  one decision (targets above 0.5 are 1).
* ``top5_accuracy`` (more than 5 classes): the share of positions whose target is among the 5
  highest scores.
* ``roc_auc`` (binary outputs, and 2-class classifiers): the probability that a random positive
  scores above a random negative, ties counting half (the Mann-Whitney U statistic over
  ``n_pos * n_neg``); None when only one class occurs.
* regression: ``mse = mean((y - t)^2)``, ``mae = mean(|y - t|)``, ``rmse = sqrt(mse)`` over every
  element; ``r2 = 1 - SS_res / SS_tot`` per output column (each sample's flattened values), averaged
  over the columns; a constant column gives 1 if predicted exactly, else 0 (scikit-learn's choice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.module import Criterion

#: ``top5_accuracy`` is reported when there are more classes than this.
TOP_K = 5
#: The metrics measured per class; their averages are ``<name>_macro`` and ``<name>_weighted``.
PER_CLASS = ("precision", "recall", "f1")
#: Up to this many classes, the flat metrics (an epoch's record, ``metrics.csv``) carry each class's
#: values too; beyond it only the averages (``eval`` still reports every class).
PER_CLASS_COLUMNS = 50


@dataclass
class Report:
    """What :class:`Metrics` measured: the summary ``metrics`` (floats, None where undefined) and, for
    class targets, the confusion matrix and ``per_class`` lists (precision, recall, f1, support)
    indexed by class."""

    metrics: dict[str, float | None]
    confusion: np.ndarray | None = None
    per_class: dict[str, list] | None = None

    def flat(self) -> dict[str, float | None]:
        """One flat dict: the summary, then ``precision_0``, ``recall_0``, ``f1_0``, ... by class
        index (the columns of ``metrics.csv``; up to :data:`PER_CLASS_COLUMNS` classes)."""
        flat = dict(self.metrics)
        classes = len(self.confusion) if self.per_class else 0
        for i in range(classes if classes <= PER_CLASS_COLUMNS else 0):
            flat.update({f"{name}_{i}": self.per_class[name][i] for name in PER_CLASS})
        return flat


class Metrics:
    """Running totals for one pass over a dataset; :meth:`add` each batch, then :meth:`report`.

    Example::

        metrics = Metrics(criterion)
        for xb, yb in batches:
            metrics.add(model.forward(xb), yb)
        metrics.report().metrics["f1_macro"]
    """

    def __init__(self, criterion: Criterion) -> None:
        self.criterion = criterion
        self.task = criterion.task
        self.confusion: np.ndarray | None = None
        self.top_hits = 0
        self.auc_parts: list[tuple[np.ndarray, np.ndarray]] = []        # (score, is positive) per batch
        self.n = 0
        self.sq_err = self.abs_err = self.shift = self.t_sum = self.t_sq = None

    def add(self, output: np.ndarray, target: np.ndarray) -> None:
        """Count one batch: the model's ``output`` and the criterion's ``target``."""
        if self.task == "regression":
            self._add_values(output, target)
        elif self.task == "binary":
            truth = (np.asarray(target) > 0.5).reshape(-1).astype(np.int64)
            self._count(truth, self.criterion.predictions(output).reshape(-1), 2)
            self.auc_parts.append((self._probabilities(output).reshape(-1), truth == 1))
        else:
            self._add_classes(output, np.asarray(target))

    def _probabilities(self, output: np.ndarray) -> np.ndarray:
        """In float64, so that large scores do not all round to a probability of exactly 1."""
        return self.criterion.probabilities(output.astype(np.float64))

    def _add_classes(self, output: np.ndarray, target: np.ndarray) -> None:
        classes = output.shape[1]
        keep = self.criterion.counted(target)
        picked = self.criterion.predictions(output)
        truth, picked = (target, picked) if keep is None else (target[keep], picked[keep])
        self._count(truth.reshape(-1).astype(np.int64), picked.reshape(-1).astype(np.int64), classes)
        if classes > TOP_K or classes == 2:
            scores = np.moveaxis(output, 1, -1)                  # (N, ..., C): one row per position
            scores = (scores if keep is None else scores[keep]).reshape(-1, classes)
            truth = truth.reshape(-1)
        if classes > TOP_K:                                      # the target's rank: the classes scoring above it
            above = (scores > scores[np.arange(len(truth)), truth][:, None]).sum(axis=1)
            self.top_hits += int(np.sum(above < TOP_K))
        if classes == 2:
            self.auc_parts.append((self._probabilities(scores)[:, 1], truth == 1))

    def _count(self, truth: np.ndarray, picked: np.ndarray, classes: int) -> None:
        counts = np.bincount(truth * classes + picked, minlength=classes * classes).reshape(classes, classes)
        self.confusion = counts if self.confusion is None else self.confusion + counts

    def _add_values(self, output: np.ndarray, target: np.ndarray) -> None:
        y = output.reshape(len(output), -1).astype(np.float64)
        t = np.asarray(target).reshape(len(output), -1).astype(np.float64)
        if self.shift is None:                                   # sums of t - shift: no cancellation in SS_tot
            self.shift = t.mean(axis=0) if len(t) else np.zeros(t.shape[1])
            self.sq_err, self.abs_err, self.t_sum, self.t_sq = (np.zeros(t.shape[1]) for _ in range(4))
        d = y - t
        self.sq_err += np.einsum("ij,ij->j", d, d)
        self.abs_err += np.abs(d).sum(axis=0)
        c = t - self.shift
        self.t_sum += c.sum(axis=0)
        self.t_sq += np.einsum("ij,ij->j", c, c)
        self.n += len(t)

    # ------------------------------------------------------------------ results
    def report(self) -> Report:
        if self.task == "regression":
            return Report(self._regression())
        if self.confusion is None:
            return Report({"accuracy": None})
        metrics, per_class = classification_metrics(self.confusion)
        classes = len(self.confusion)
        if self.task == "classification" and classes > TOP_K:
            total = int(self.confusion.sum())
            metrics[f"top{TOP_K}_accuracy"] = self.top_hits / total if total else None
        if self.auc_parts:
            metrics["roc_auc"] = roc_auc(np.concatenate([s for s, _ in self.auc_parts]),
                                         np.concatenate([p for _, p in self.auc_parts]))
        return Report(metrics, self.confusion, per_class)

    def _regression(self) -> dict[str, float | None]:
        if not self.n:
            return {"mse": None, "mae": None, "rmse": None, "r2": None}
        elements = self.n * len(self.sq_err)
        mse = float(self.sq_err.sum()) / elements
        ss_tot = self.t_sq - self.t_sum ** 2 / self.n
        exact = self.sq_err == 0
        r2 = np.where(ss_tot > 0, 1 - self.sq_err / np.where(ss_tot > 0, ss_tot, 1), np.where(exact, 1.0, 0.0))
        return {"mse": mse, "mae": float(self.abs_err.sum()) / elements, "rmse": float(np.sqrt(mse)),
                "r2": float(r2.mean())}


def classification_metrics(confusion: np.ndarray) -> tuple[dict[str, float | None], dict[str, list]]:
    """Accuracy and the macro and weighted averages of precision, recall and F1, and the per-class
    lists (None where a class's value is undefined), from a confusion matrix (see the module docstring)."""
    m = np.asarray(confusion, dtype=np.int64)
    tp, support, predicted = np.diag(m), m.sum(axis=1), m.sum(axis=0)
    total = int(m.sum())
    per_class = {
        "precision": _ratio(tp, predicted), "recall": _ratio(tp, support),
        "f1": _ratio(2 * tp, predicted + support), "support": [int(s) for s in support],
    }
    metrics: dict[str, float | None] = {"accuracy": float(tp.sum()) / total if total else None}
    occurring = (support + predicted) > 0
    for name in PER_CLASS:
        values = np.array([0.0 if v is None else v for v in per_class[name]])
        metrics[f"{name}_macro"] = float(values[occurring].mean()) if occurring.any() else None
        metrics[f"{name}_weighted"] = float(values @ support) / total if total else None
    return metrics, per_class


def _ratio(num: np.ndarray, den: np.ndarray) -> list[float | None]:
    return [float(a) / float(b) if b else None for a, b in zip(num, den)]


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve: ``(R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with ``R_pos`` the
    sum of the positives' ranks among all scores (tied scores share their mean rank). None when the
    positives or the negatives are missing."""
    n_pos = int(np.sum(positive))
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return None
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(score)]
    mean_rank = (starts + ends + 1) / 2.0                          # 1-based ranks starts+1 .. ends
    ranks = np.empty(len(score))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
