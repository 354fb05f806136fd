"""Metrics: each against a hand-computed case and, where scikit-learn is importable, against its
function; per-pixel outputs count positions and skip ignore_index; the criterion reads its outputs."""

import numpy as np
import pytest

from backprop_cli import nn
from backprop_cli.engine.trainer import evaluate


def test_per_pixel_accuracy_counts_positions_and_skips_ignored_ones():
    """(N, C, H, W) scores: accuracy is correct positions over counted positions (issue 21 item 4)."""
    model = nn.Sequential(nn.Identity())
    scores = np.zeros((2, 3, 2, 2), np.float32)       # 2 images of 2x2 pixels, 3 classes
    scores[:, 1] = 1.0                                # every pixel predicted as class 1
    target = np.array([[[1, 1], [0, 2]], [[1, 0], [1, 1]]])
    assert evaluate(model, nn.CrossEntropyCriterion(), scores, target)["accuracy"] == pytest.approx(5 / 8)
    # ignore_index=0: the two 0-pixels count for nothing; 5 of the 6 others are right
    result = evaluate(model, nn.CrossEntropyCriterion(ignore_index=0), scores, target)
    assert result["accuracy"] == pytest.approx(5 / 6)
