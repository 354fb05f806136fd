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


def one_hot_scores(picked, classes):
    scores = np.zeros((len(picked), classes), np.float32)
    scores[np.arange(len(picked)), picked] = 1.0
    return scores


IDENTITY = nn.Sequential(nn.Identity())
TRUTH = np.array([0, 0, 1, 1, 2, 2, 2, 0])
PICKED = np.array([0, 1, 1, 1, 2, 0, 2, 0])       # confusion rows (true): [2 1 0], [0 2 0], [1 0 2]


def test_classification_metrics_of_a_hand_computed_case():
    m = evaluate(IDENTITY, nn.CrossEntropyCriterion(), one_hot_scores(PICKED, 3), TRUTH)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert [m["precision_0"], m["precision_1"], m["precision_2"]] == pytest.approx([2 / 3, 2 / 3, 1])
    assert [m["recall_0"], m["recall_1"], m["recall_2"]] == pytest.approx([2 / 3, 1, 2 / 3])
    assert [m["f1_0"], m["f1_1"], m["f1_2"]] == pytest.approx([2 / 3, 0.8, 0.8])
    assert m["precision_macro"] == pytest.approx(7 / 9) and m["recall_macro"] == pytest.approx(7 / 9)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 1.6) / 3)
    assert m["f1_weighted"] == pytest.approx((3 * 2 / 3 + 2 * 0.8 + 3 * 0.8) / 8)
    assert m["recall_weighted"] == pytest.approx(m["accuracy"])       # support-weighted recall is accuracy
    assert "top5_accuracy" not in m and "roc_auc" not in m             # 3 classes: neither applies


def test_a_class_never_predicted_has_no_precision_and_counts_zero_in_the_macro_average():
    m = evaluate(IDENTITY, nn.CrossEntropyCriterion(), one_hot_scores([0, 0, 1, 0], 4), np.array([0, 2, 1, 0]))
    assert m["precision_2"] is None and m["recall_2"] == 0 and m["f1_2"] == 0
    assert m["precision_3"] is None and m["recall_3"] is None       # class 3 occurs nowhere: out of the average
    assert m["precision_macro"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_top5_accuracy_ranks_the_target_among_the_scores():
    scores = np.tile(np.arange(7, dtype=np.float32), (3, 1))        # class 6 scores highest, class 0 lowest
    m = evaluate(IDENTITY, nn.CrossEntropyCriterion(), scores, np.array([2, 1, 6]))   # ranks 5, 6, 1
    assert m["top5_accuracy"] == pytest.approx(2 / 3) and m["accuracy"] == pytest.approx(1 / 3)


def test_roc_auc_of_a_hand_computed_case_with_ties_counting_half():
    probs = np.array([[0.1], [0.4], [0.35], [0.8]], np.float32)
    m = evaluate(IDENTITY, nn.BCECriterion(), probs, np.array([[0.0], [0.0], [1.0], [1.0]], np.float32))
    assert m["roc_auc"] == pytest.approx(0.75)                      # 3 of the 4 (pos, neg) pairs ordered
    tied = evaluate(IDENTITY, nn.BCEWithLogitsCriterion(), np.zeros((2, 1), np.float32),
                    np.array([[0.0], [1.0]], np.float32))
    assert tied["roc_auc"] == pytest.approx(0.5)
    one_class = evaluate(IDENTITY, nn.BCECriterion(), probs, np.ones((4, 1), np.float32))
    assert one_class["roc_auc"] is None


def test_regression_metrics_of_a_hand_computed_case():
    m = evaluate(IDENTITY, nn.MSECriterion(), np.array([[1.0], [3.0], [5.0]], np.float32),
                 np.array([[1.0], [2.0], [3.0]], np.float32))                # errors 0, 1, 2
    assert m["mse"] == pytest.approx(5 / 3) and m["mae"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(np.sqrt(5 / 3)) and m["r2"] == pytest.approx(1 - 5 / 2)


def test_metrics_do_not_depend_on_the_batch_size():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((50, 7)).astype(np.float32)
    target = rng.integers(0, 7, 50)
    whole = evaluate(IDENTITY, nn.CrossEntropyCriterion(), scores, target, batch_size=256)
    batched = evaluate(IDENTITY, nn.CrossEntropyCriterion(), scores, target, batch_size=3)
    assert batched.keys() == whole.keys()
    assert all(batched[k] == pytest.approx(whole[k], rel=1e-6) for k in whole if whole[k] is not None)
    y = rng.standard_normal((50, 2)).astype(np.float32) + 100             # a large mean: no cancellation
    t = y + rng.standard_normal((50, 2)).astype(np.float32)
    a, b = (evaluate(IDENTITY, nn.MSECriterion(), y, t, batch_size=bs) for bs in (256, 7))
    assert all(a[k] == pytest.approx(b[k], rel=1e-9) for k in a if k != "loss")


# ---------------------------------------------------------------------------- against scikit-learn
def sklearn_metrics():
    return pytest.importorskip("sklearn.metrics", reason="scikit-learn is not installed (not a dependency): "
                               "the hand-computed cases above still run")


def test_classification_metrics_match_scikit_learn():
    skm = sklearn_metrics()
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((300, 8)).astype(np.float32)
    scores[:, 7] -= 10                                     # class 7 is never predicted
    target = rng.integers(0, 7, 300)                      # ... and never a target
    m = evaluate(IDENTITY, nn.CrossEntropyCriterion(), scores, target, batch_size=64)
    picked = scores.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(target, picked))
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(target, picked, average=average, zero_division=0)
        assert [m[f"precision_{average}"], m[f"recall_{average}"], m[f"f1_{average}"]] == pytest.approx([p, r, f])
    p, r, f, _ = skm.precision_recall_fscore_support(target, picked, labels=range(7), average=None)
    assert [m[f"f1_{i}"] for i in range(7)] == pytest.approx(f)
    assert [m[f"precision_{i}"] for i in range(7)] == pytest.approx(p)
    assert m["top5_accuracy"] == pytest.approx(skm.top_k_accuracy_score(target, scores, k=5, labels=range(8)))


def test_per_pixel_metrics_match_scikit_learn_on_the_counted_positions():
    skm = sklearn_metrics()
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((4, 3, 5, 6)).astype(np.float32)
    target = rng.integers(0, 3, (4, 5, 6))
    m = evaluate(IDENTITY, nn.CrossEntropyCriterion(ignore_index=1), scores, target, batch_size=3)
    keep = target != 1
    truth, picked = target[keep], scores.argmax(axis=1)[keep]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(truth, picked))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(truth, picked, average="macro", zero_division=0))


def test_binary_metrics_match_scikit_learn():
    skm = sklearn_metrics()
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((120, 3)).astype(np.float32) * 3       # 3 labels per sample
    target = (rng.random((120, 3)) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    m = evaluate(IDENTITY, nn.BCEWithLogitsCriterion(), logits, target, batch_size=50)
    truth, picked = target.ravel(), (logits > 0).ravel()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(truth, picked))
    assert m["f1_1"] == pytest.approx(skm.f1_score(truth, picked))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, logits.ravel()))
    two_class = np.stack([np.zeros(120, np.float32), logits[:, 0]], axis=1)  # a 2-class classifier: AUC too
    m2 = evaluate(IDENTITY, nn.CrossEntropyCriterion(), two_class, target[:, 0].astype(np.int64))
    assert m2["roc_auc"] == pytest.approx(skm.roc_auc_score(target[:, 0], logits[:, 0]))


def test_regression_metrics_match_scikit_learn():
    skm = sklearn_metrics()
    rng = np.random.default_rng(4)
    target = rng.standard_normal((80, 3)).astype(np.float32) * [1, 10, 0.1] + [0, 50, -3]
    output = (target + rng.standard_normal((80, 3)) * 0.5).astype(np.float32)
    m = evaluate(IDENTITY, nn.MSECriterion(), output, target, batch_size=16)
    assert m["mse"] == pytest.approx(skm.mean_squared_error(target, output), rel=1e-6)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(target, output), rel=1e-6)
    assert m["r2"] == pytest.approx(skm.r2_score(target, output), rel=1e-6)
    single = evaluate(IDENTITY, nn.MSECriterion(), output[:, :1], target[:, :1])
    assert single["rmse"] == pytest.approx(skm.root_mean_squared_error(target[:, 0], output[:, 0]), rel=1e-6)


# ---------------------------------------------------------------------------- how outputs are read
@pytest.mark.parametrize("criterion, output, probabilities, predictions", [
    (nn.CrossEntropyCriterion(), [[0.0, np.log(3.0)]], [[0.25, 0.75]], [1]),
    (nn.ClassNLLCriterion(), [[np.log(0.6), np.log(0.4)]], [[0.6, 0.4]], [0]),
    (nn.BCEWithLogitsCriterion(), [[0.0], [1e-9], [-2.0]], [[0.5], [0.5], [1 / (1 + np.exp(2))]], [[0], [1], [0]]),
    (nn.BCECriterion(), [[0.5], [0.7]], [[0.5], [0.7]], [[0], [1]]),
])
def test_the_criterion_reads_its_outputs(criterion, output, probabilities, predictions):
    output = np.array(output, np.float64)
    assert criterion.probabilities(output) == pytest.approx(np.array(probabilities))
    assert np.array_equal(criterion.predictions(output), np.array(predictions))


def test_a_regression_criterion_predicts_values_and_has_no_probabilities():
    y = np.array([[1.5, -2.0]])
    assert nn.MSECriterion().predictions(y) is y
    with pytest.raises(ValueError, match="values, not probabilities"):
        nn.MSECriterion().probabilities(y)


def test_evaluate_restores_every_module_s_mode():
    """A BatchNorm frozen in evaluation mode inside a training model stays frozen (issue 21 item 6)."""
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.BatchNormalization(3), nn.Dropout(0.5, rng=0))
    model.layers[1].evaluate()
    evaluate(model, nn.MSECriterion(), np.ones((4, 2), np.float32), np.zeros((4, 3), np.float32))
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_per_class_columns_stop_at_many_classes():
    from backprop_cli.engine.metrics import PER_CLASS_COLUMNS

    classes = PER_CLASS_COLUMNS + 1
    m = evaluate(IDENTITY, nn.CrossEntropyCriterion(), one_hot_scores(np.arange(classes), classes), np.arange(classes))
    assert m["f1_macro"] == 1.0 and not any(k.startswith(("precision_", "recall_", "f1_")) and k[-1].isdigit() for k in m)
