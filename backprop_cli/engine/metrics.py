"""What a model's outputs mean as predictions: class probabilities and confusion matrices."""

from __future__ import annotations

import numpy as np

from ..nn.functional import sigmoid, softmax
from ..nn.loss import ClassNLLCriterion
from ..nn.module import Criterion


def predictions(output: np.ndarray, task: str, logits: bool = False) -> np.ndarray:
    """Class indices from a classifier's output (argmax over axis 1); 0/1 for a binary output
    (threshold 0 on logits, 0.5 on probabilities)."""
    if task == "classification":
        return output.argmax(axis=1)
    if task == "binary":
        return (output > (0.0 if logits else 0.5)).astype(np.int64)
    raise ValueError(f"no class predictions for a {task} task")


def probabilities(output: np.ndarray, criterion: Criterion) -> np.ndarray:
    """Probabilities from the output a criterion was trained on:

    * ``ClassNLLCriterion`` takes log-probabilities: ``p = exp(output)``;
    * other classification criterions take scores: ``p = softmax(output)`` over axis 1;
    * ``BCEWithLogitsCriterion`` takes logits: ``p = sigmoid(output)``; ``BCECriterion`` probabilities.
    """
    if criterion.task == "binary":
        return sigmoid(output) if criterion.logits else output
    if isinstance(criterion, ClassNLLCriterion):
        return np.exp(output)
    return softmax(output)


def confusion_matrix(target: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``m[i, j]`` counts samples of true class ``i`` predicted as ``j``; ``m[i, i] / m[i].sum()`` is
    the recall of class ``i``."""
    return np.bincount(target * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def recall(matrix: np.ndarray) -> list[float | None]:
    """Per-class recall from a confusion matrix (None for a class with no samples)."""
    totals = matrix.sum(axis=1)
    return [float(matrix[i, i] / totals[i]) if totals[i] else None for i in range(len(matrix))]
