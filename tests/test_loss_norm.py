"""Known values for the losses, BatchNormalization and Dropout (gradients are checked by the gradcheck table)."""

import numpy as np
import pytest

from backprop_cli.nn.activation import LogSoftMax
from backprop_cli.nn.loss import (AbsCriterion, BCECriterion, BCEWithLogitsCriterion, ClassNLLCriterion,
                                  CrossEntropyCriterion, MSECriterion, MultiMarginCriterion, SmoothL1Criterion)
from backprop_cli.nn.module import ShapeError
from backprop_cli.nn.normalization import BatchNormalization, Dropout, SpatialBatchNormalization


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def log_softmax(x):
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# --------------------------------------------------------------------------- regression losses
def test_mse_value_and_gradient_is_2_diff_over_n(rng):
    y, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    crit = MSECriterion()
    assert crit.forward(y, t) == pytest.approx(np.mean((y - t) ** 2), rel=1e-12)
    np.testing.assert_allclose(crit.backward(y, t), 2 * (y - t) / 12, rtol=1e-12)


def test_abs_and_smooth_l1_known_values():
    y, t = np.array([[0.5, -3.0, 2.0]]), np.zeros((1, 3))
    assert AbsCriterion().forward(y, t) == pytest.approx((0.5 + 3 + 2) / 3, rel=1e-12)
    np.testing.assert_allclose(AbsCriterion().backward(y, t), [[1 / 3, -1 / 3, 1 / 3]], rtol=1e-12)
    # |d| < beta: 0.5 d^2 / beta; else |d| - 0.5 beta
    assert SmoothL1Criterion(beta=1.0).forward(y, t) == pytest.approx((0.125 + 2.5 + 1.5) / 3, rel=1e-12)
    np.testing.assert_allclose(SmoothL1Criterion(beta=1.0).backward(y, t), [[0.5 / 3, -1 / 3, 1 / 3]], rtol=1e-12)
    assert SmoothL1Criterion(beta=0.0).forward(y, t) == pytest.approx(AbsCriterion().forward(y, t), rel=1e-12)


def test_regression_target_must_match_output_shape(rng):
    with pytest.raises(ShapeError, match=r"expected target \(4, 3\) shaped like the output, got \(4, 1\)"):
        MSECriterion().forward(rng.normal(size=(4, 3)), rng.normal(size=(4, 1)))
    with pytest.raises(TypeError, match="numeric target"):
        MSECriterion().forward(rng.normal(size=(1, 2)), np.array([["a", "b"]]))


# --------------------------------------------------------------------------- class-index losses
def test_class_nll_gradient_is_minus_one_over_n_at_target(rng):
    logp = log_softmax(rng.normal(size=(5, 4)))
    target = np.array([0, 3, 1, 1, 2])
    crit = ClassNLLCriterion()
    assert crit.forward(logp, target) == pytest.approx(-logp[np.arange(5), target].mean(), rel=1e-12)
    expected = np.zeros((5, 4))
    expected[np.arange(5), target] = -1 / 5
    np.testing.assert_array_equal(crit.backward(logp, target), expected)


def test_class_nll_weights_divide_by_summed_target_weights(rng):
    logp = log_softmax(rng.normal(size=(4, 3)))
    target, w = np.array([2, 0, 2, 1]), np.array([0.5, 1.0, 3.0])
    wt = w[target]
    crit = ClassNLLCriterion(weights=w)
    expected = -(wt * logp[np.arange(4), target]).sum() / wt.sum()
    assert crit.forward(logp, target) == pytest.approx(expected, rel=1e-12)
    grad = crit.backward(logp, target)
    np.testing.assert_allclose(grad[np.arange(4), target], -wt / wt.sum(), rtol=1e-12)
    assert np.count_nonzero(grad) == 4


def test_class_nll_ignore_index_drops_those_samples(rng):
    logp = log_softmax(rng.normal(size=(4, 3)))
    target = np.array([2, -100, 1, -100])
    crit = ClassNLLCriterion(ignore_index=-100)
    assert crit.forward(logp, target) == pytest.approx(-(logp[0, 2] + logp[2, 1]) / 2, rel=1e-12)
    assert not crit.backward(logp, target)[[1, 3]].any()


def test_cross_entropy_equals_log_softmax_then_class_nll(rng):
    x, target = rng.normal(size=(6, 5)), rng.integers(0, 5, size=6)
    w = rng.uniform(0.5, 2.0, size=5)
    ce, nll, lsm = CrossEntropyCriterion(weights=w), ClassNLLCriterion(weights=w), LogSoftMax()
    logp = lsm.forward(x)
    assert ce.forward(x, target) == pytest.approx(nll.forward(logp, target), rel=1e-12)
    by_hand = lsm.backward(x, nll.backward(logp, target))
    np.testing.assert_allclose(ce.backward(x, target), by_hand, rtol=1e-10, atol=1e-15)


def test_cross_entropy_is_finite_at_logits_of_1000():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    target = np.array([0, 2])
    crit = CrossEntropyCriterion()
    loss, grad = crit.forward(x, target), crit.backward(x, target)
    # sample 0 is certain and right (loss 0); sample 1 puts e/(1+e) on the wrong class: loss log(1 + e)
    assert loss == pytest.approx(np.log1p(np.e) / 2, rel=1e-12)
    p = np.exp(1.0) / (1 + np.exp(1.0))
    np.testing.assert_allclose(grad, [[0, 0, 0], [0, p / 2, -p / 2]], atol=1e-12)


def test_cross_entropy_recomputes_softmax_for_other_logits(rng):
    x, target = rng.normal(size=(3, 4)), np.array([0, 1, 2])
    crit = CrossEntropyCriterion()
    crit.forward(x, target)
    x += rng.normal(size=(3, 4))                      # changed in place: the cached softmax is stale
    expected = np.exp(log_softmax(x))
    expected[np.arange(3), target] -= 1
    np.testing.assert_allclose(crit.backward(x, target), expected / 3, rtol=1e-10)


def test_cross_entropy_over_positions_matches_flattened(rng):
    x, target = rng.normal(size=(2, 3, 4)), rng.integers(0, 3, size=(2, 4))
    flat_x, flat_t = np.moveaxis(x, 1, -1).reshape(-1, 3), target.reshape(-1)
    crit = CrossEntropyCriterion()
    assert crit.forward(x, target) == pytest.approx(crit.forward(flat_x, flat_t), rel=1e-12)
    flat_g = crit.backward(flat_x, flat_t)
    np.testing.assert_allclose(np.moveaxis(crit.backward(x, target), 1, -1).reshape(-1, 3), flat_g, rtol=1e-12)


def test_multi_margin_known_value():
    x, target = np.array([[2.0, 0.5, 1.5], [0.0, 1.0, 0.2]]), np.array([0, 1])
    # sample 0: max(0, 1-2+0.5) + max(0, 1-2+1.5) = 0.5; sample 1: max(0, 1-1+0) + max(0, 1-1+0.2) = 0.2
    assert MultiMarginCriterion().forward(x, target) == pytest.approx((0.5 + 0.2) / 3 / 2, rel=1e-12)
    assert MultiMarginCriterion(p=2).forward(x, target) == pytest.approx((0.25 + 0.04) / 3 / 2, rel=1e-12)
    np.testing.assert_allclose(MultiMarginCriterion().backward(x, target),
                               [[-1, 0, 1], [0, -1, 1]] / np.array(6.0), rtol=1e-12)


@pytest.mark.parametrize("crit", [ClassNLLCriterion(), CrossEntropyCriterion(), MultiMarginCriterion()])
def test_out_of_range_class_index_names_the_value(crit, rng):
    x = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match=r"class index 7 at position 2, outside \[0, 3\)"):
        crit.forward(x, np.array([0, 1, 7, 2]))
    with pytest.raises(ValueError, match="class index -1 at position 0"):
        crit.forward(x, np.array([-1, 1, 0, 2]))


def test_class_targets_must_be_integer_indices_of_shape_n(rng):
    x = rng.normal(size=(32, 10))
    with pytest.raises(ShapeError, match=r"ClassNLLCriterion expected target \(32,?\) of class indices, "
                                         r"got \(32, 10\)"):
        ClassNLLCriterion().forward(x, x)
    with pytest.raises(TypeError, match="integer class indices, got dtype float64"):
        ClassNLLCriterion().forward(x, np.zeros(32))
    with pytest.raises(ShapeError, match="weights for 3 classes"):
        CrossEntropyCriterion(weights=np.ones(3)).forward(x, np.zeros(32, dtype=int))


# --------------------------------------------------------------------------- binary losses
def test_bce_known_values_and_log_clamp():
    y, t = np.array([[0.5, 0.9]]), np.array([[1.0, 0.0]])
    assert BCECriterion().forward(y, t) == pytest.approx((np.log(2) - np.log(0.1)) / 2, rel=1e-12)
    np.testing.assert_allclose(BCECriterion().backward(y, t), [[-2 / 2, 10 / 2]], rtol=1e-10)
    # log(0) is clamped at -100, as in PyTorch
    assert BCECriterion().forward(np.array([[0.0]]), np.array([[1.0]])) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="BCEWithLogitsCriterion"):
        BCECriterion().forward(np.array([[1.5]]), np.array([[1.0]]))


def test_bce_with_logits_matches_bce_of_sigmoid_and_is_stable(rng):
    x, t = rng.normal(size=(5, 2)) * 3, (rng.random((5, 2)) > 0.5).astype(float)
    crit = BCEWithLogitsCriterion()
    assert crit.forward(x, t) == pytest.approx(BCECriterion().forward(sigmoid(x), t), rel=1e-10)
    np.testing.assert_allclose(crit.backward(x, t), (sigmoid(x) - t) / 10, rtol=1e-10)
    big, bt = np.array([[1000.0, -1000.0]]), np.array([[0.0, 1.0]])
    assert crit.forward(big, bt) == pytest.approx(1000.0, rel=1e-12)
    np.testing.assert_allclose(crit.backward(big, bt), [[0.5, -0.5]], atol=1e-12)


def test_bce_with_logits_pos_weight_scales_the_positive_term(rng):
    x, t = rng.normal(size=(4, 2)), np.array([[1.0, 0.0]] * 4)
    pw = np.array([3.0, 5.0])
    expected = -(pw * t * np.log(sigmoid(x)) + (1 - t) * np.log(1 - sigmoid(x))).mean()
    crit = BCEWithLogitsCriterion(pos_weight=pw)
    assert crit.forward(x, t) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(crit.backward(x, t), ((1 + (pw - 1) * t) * sigmoid(x) - pw * t) / 8, rtol=1e-10)


# --------------------------------------------------------------------------- every criterion
def _cases(rng):
    x, k, prob = rng.normal(size=(6, 4)), rng.integers(0, 4, size=6), rng.uniform(0.05, 0.95, size=(6, 4))
    binary = (rng.random((6, 4)) > 0.5).astype(float)
    return [(MSECriterion, x, rng.normal(size=(6, 4)), 24), (AbsCriterion, x, rng.normal(size=(6, 4)), 24),
            (SmoothL1Criterion, x, rng.normal(size=(6, 4)), 24), (ClassNLLCriterion, log_softmax(x), k, 6),
            (CrossEntropyCriterion, x, k, 6), (MultiMarginCriterion, x, k, 6), (BCECriterion, prob, binary, 24),
            (BCEWithLogitsCriterion, x, binary, 24)]


def test_sum_is_mean_times_count(rng):
    for cls, output, target, count in _cases(rng):
        mean, total = cls(reduction="mean"), cls(reduction="sum")
        assert total.forward(output, target) == pytest.approx(count * mean.forward(output, target), rel=1e-12), cls
        np.testing.assert_allclose(total.backward(output, target), count * mean.backward(output, target),
                                   rtol=1e-12, err_msg=cls.__name__)


def test_float32_stays_float32(rng):
    for cls, output, target, _ in _cases(rng):
        crit = cls()
        assert isinstance(crit.forward(output.astype(np.float32), target), float)
        assert crit.backward(output.astype(np.float32), target).dtype == np.float32, cls


def test_task_repr_and_to():
    assert ClassNLLCriterion.task == CrossEntropyCriterion.task == MultiMarginCriterion.task == "classification"
    assert BCECriterion.task == BCEWithLogitsCriterion.task == "binary"
    assert MSECriterion.task == "regression"
    assert repr(CrossEntropyCriterion(reduction="sum")) == "CrossEntropyCriterion(reduction='sum')"
    assert repr(MultiMarginCriterion(p=2)) == "MultiMarginCriterion(p=2)"
    crit = ClassNLLCriterion(weights=np.ones(3, dtype=np.float32)).to(np.float64)
    assert crit.weights.dtype == np.float64
    with pytest.raises(ValueError, match="reduction"):
        MSECriterion(reduction="avg")


# --------------------------------------------------------------------------- BatchNormalization
def test_batchnorm_train_normalises_each_feature_and_updates_running_stats(rng):
    x = rng.normal(loc=[1.0, -2.0, 5.0], scale=[0.5, 2.0, 3.0], size=(64, 3))
    bn = BatchNormalization(3, momentum=0.1, dtype=np.float64)
    y = bn.forward(x)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-4)        # eps = 1e-5 shrinks it slightly
    np.testing.assert_allclose(bn._buffers["running_mean"], 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn._buffers["running_var"], 0.9 + 0.1 * x.var(axis=0, ddof=1), rtol=1e-12)


def test_batchnorm_eval_uses_running_stats(rng):
    bn = BatchNormalization(2, dtype=np.float64)
    bn._buffers["running_mean"][:] = [1.0, -1.0]
    bn._buffers["running_var"][:] = [4.0, 0.25]
    bn._params["weight"][:] = [2.0, 3.0]
    bn._params["bias"][:] = [0.5, 0.0]
    x = rng.normal(size=(5, 2))
    bn.evaluate()
    sigma = np.sqrt(np.array([4.0, 0.25]) + 1e-5)
    np.testing.assert_allclose(bn.forward(x), (x - [1.0, -1.0]) / sigma * [2.0, 3.0] + [0.5, 0.0], rtol=1e-12)
    np.testing.assert_array_equal(bn._buffers["running_mean"], [1.0, -1.0])
    g = rng.normal(size=(5, 2))
    np.testing.assert_allclose(bn.backward(x, g), g * [2.0, 3.0] / sigma, rtol=1e-12)


def test_batchnorm_train_gradient_removes_mean_and_scale_directions(rng):
    # With batch statistics y does not change when x shifts or scales per feature, so a grad_output of
    # ones (shift) or of xhat (scale) gives zero grad_input; the parameter gradients are sum(g xhat), sum(g).
    x = rng.normal(size=(16, 3)) * 2 + 1
    bn = BatchNormalization(3, eps=1e-12, dtype=np.float64)
    y = bn.forward(x)
    np.testing.assert_allclose(bn.backward(x, np.ones_like(y)), 0, atol=1e-10)
    np.testing.assert_allclose(bn._grads["bias"], 16, rtol=1e-12)
    bn.zero_grad_parameters()
    np.testing.assert_allclose(bn.backward(x, y.copy()), 0, atol=1e-10)     # y == xhat with gamma 1, beta 0
    np.testing.assert_allclose(bn._grads["weight"], 16, rtol=1e-8)
    bn.backward(x, y.copy(), scale=0.5)
    np.testing.assert_allclose(bn._grads["weight"], 24, rtol=1e-8)          # accumulates


def test_spatial_batchnorm_normalises_per_channel_over_n_h_w(rng):
    x = rng.normal(size=(4, 3, 5, 6)) * np.array([1.0, 3.0, 0.2])[:, None, None] + 7
    bn = SpatialBatchNormalization(3, dtype=np.float64)
    y = bn.forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    np.testing.assert_allclose(bn._buffers["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)


def test_batchnorm_shape_errors(rng):
    with pytest.raises(ShapeError, match=r"BatchNormalization expected input \(N, 64\), got \(32, 10\)"):
        BatchNormalization(64).forward(rng.normal(size=(32, 10)).astype(np.float32))
    with pytest.raises(ShapeError, match=r"SpatialBatchNormalization expected input \(N, 3, H, W\), got \(8, 3\)"):
        SpatialBatchNormalization(3).forward(rng.normal(size=(8, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="more than 1 value per feature"):
        BatchNormalization(3).forward(np.ones((1, 3), dtype=np.float32))


def test_batchnorm_state_and_repr():
    bn = BatchNormalization(4, momentum=0.01, affine=False)
    assert repr(bn) == "BatchNormalization(4, momentum=0.01, affine=False)"
    assert bn.num_parameters() == 0
    assert sorted(bn.state_dict()) == ["running_mean", "running_var"]
    assert sorted(SpatialBatchNormalization(2).state_dict()) == ["bias", "running_mean", "running_var", "weight"]


# --------------------------------------------------------------------------- Dropout
def test_dropout_is_identity_in_evaluation_and_at_p0(rng):
    x = rng.normal(size=(8, 5))
    d = Dropout(0.5, rng=0).evaluate()
    np.testing.assert_array_equal(d.forward(x), x)
    np.testing.assert_array_equal(d.backward(x, x), x)
    np.testing.assert_array_equal(Dropout(0.0, rng=0).forward(x), x)


def test_dropout_train_keeps_expected_scale():
    x = np.ones((1000, 1000))
    y = Dropout(0.3, rng=0).forward(x)
    # each element is 0 or 1/0.7; the mean's standard error is sqrt(0.3/0.7)/1000 ~ 7e-4
    assert abs(y.mean() - 1.0) < 5e-3
    assert abs((y == 0).mean() - 0.3) < 5e-3
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-12)


def test_dropout_backward_uses_the_forward_mask(rng):
    x, g = rng.normal(size=(6, 7)), rng.normal(size=(6, 7))
    d = Dropout(0.5, rng=3)
    d.forward(x)
    np.testing.assert_allclose(d.backward(x, g), g * d.mask / 0.5, rtol=1e-12)


def test_dropout_hold_mask_and_seeds(rng):
    x = rng.normal(size=(10, 10))
    d = Dropout(0.5, rng=7)
    first = d.forward(x)
    assert not np.array_equal(d.forward(x), first)                  # a fresh mask each call
    d.hold_mask = True
    held = d.forward(x)
    np.testing.assert_array_equal(d.forward(x), held)
    np.testing.assert_array_equal(Dropout(0.5, rng=7).forward(x), first)   # same seed, same mask
    state = d.rng.bit_generator.state
    d.hold_mask = False
    again = d.forward(x)
    d.rng.bit_generator.state = state
    np.testing.assert_array_equal(d.forward(x), again)               # restoring the generator resumes exactly


# --------------------------------------------------------------------------- PyTorch's arguments
def test_reduction_none_gives_each_loss_and_backward_the_gradient_of_their_sum(rng):
    from backprop_cli.nn.loss import CrossEntropyLoss, MSELoss
    out, y = rng.normal(size=(4, 3)), rng.integers(0, 3, 4)
    each = CrossEntropyLoss(reduction="none").forward(out, y)
    np.testing.assert_allclose(each, -log_softmax(out)[np.arange(4), y], rtol=1e-12)
    np.testing.assert_allclose(CrossEntropyLoss(reduction="none").backward(out, y),
                               CrossEntropyLoss(reduction="sum").backward(out, y), rtol=1e-12)
    assert MSELoss(reduction="none").forward(np.ones((2, 2)), np.zeros((2, 2))).shape == (2, 2)


def test_pytorchs_deprecated_size_average_and_reduce_mean_what_they_mean_there():
    from backprop_cli.nn.loss import MSELoss, legacy_reduction
    assert [legacy_reduction(s, r, "mean") for s, r in [(None, None), (False, None), (None, False), (True, True),
                                                         (False, True)]] == ["mean", "sum", "none", "mean", "sum"]
    assert legacy_reduction(None, None, "sum") == "sum" and MSELoss(size_average=False).reduction == "sum"


def test_pytorch_names_ignore_target_minus_100_and_torch7_names_refuse_it():
    from backprop_cli.nn.loss import CrossEntropyLoss, NLLLoss
    out, y = np.log(np.full((3, 2), 0.5)), np.array([0, -100, 1])
    assert NLLLoss().forward(out, y) == pytest.approx(np.log(2), rel=1e-12)     # mean over the 2 counted
    np.testing.assert_array_equal(CrossEntropyLoss().backward(out, y)[1], [0.0, 0.0])
    with pytest.raises(ValueError, match="class index -100"):
        ClassNLLCriterion().forward(out, y)


def test_a_loss_is_never_minus_zero():
    from backprop_cli.nn.loss import NLLLoss
    out = np.zeros((2, 3))
    for loss in (NLLLoss().forward(out, np.array([-100, -100])), ClassNLLCriterion().forward(out, np.array([0, 1])),
                 MSECriterion().forward(np.zeros((0, 2)), np.zeros((0, 2)))):
        assert loss == 0.0 and np.copysign(1.0, loss) == 1.0
    assert np.all(np.copysign(1.0, NLLLoss(reduction="none").forward(out, np.array([0, 2]))) == 1.0)


def test_label_smoothing_known_values():
    from backprop_cli.nn.loss import CrossEntropyLoss
    uniform = np.zeros((2, 4))
    assert CrossEntropyLoss(label_smoothing=0.3).forward(uniform, np.array([0, 3])) == pytest.approx(np.log(4))
    out, y, e = np.array([[2.0, 0.0, -1.0]]), np.array([0]), 0.2
    logp = log_softmax(out)[0]
    want = (1 - e) * -logp[0] + e / 3 * -logp.sum()
    assert CrossEntropyLoss(label_smoothing=e).forward(out, y) == pytest.approx(want, rel=1e-12)
    p = np.exp(logp)
    np.testing.assert_allclose(CrossEntropyLoss(label_smoothing=e).backward(out, y)[0],
                               p - (1 - e) * np.eye(3)[0] - e / 3, rtol=1e-12)


def test_huber_is_delta_times_smooth_l1_and_weight_is_weights():
    from backprop_cli.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss
    out, t = np.array([[1.0, 3.0]]), np.zeros((1, 2))
    assert HuberLoss(delta=2.0).forward(out, t) == pytest.approx((0.5 + 4.0) / 2)
    assert HuberLoss(delta=2.0).forward(out, t) == pytest.approx(2.0 * SmoothL1Criterion(beta=2.0).forward(out, t))
    w = np.array([1.0, 2.0])
    loss = CrossEntropyLoss(w)
    assert loss.weight is loss.weights and loss.weights[1] == 2.0 and repr(loss) == "CrossEntropyLoss(weight=[1., 2.], ignore_index=-100)"
    np.testing.assert_array_equal(CrossEntropyCriterion(weight=w).weights, CrossEntropyLoss(weights=w).weight)
    assert BCEWithLogitsLoss(np.array([2.0])).weights[0] == 2.0 and BCEWithLogitsLoss(np.array([2.0])).pos_weight is None
    with pytest.raises(ValueError, match="weight= or weights="):
        CrossEntropyLoss(w, weights=w)


def test_batch_norm_momentum_none_is_the_cumulative_average(rng):
    bn = BatchNormalization(2, momentum=None, dtype=np.float64)
    batches = [rng.normal(size=(4, 2)) + k for k in range(3)]
    for b in batches:
        bn.forward(b)
    np.testing.assert_allclose(bn.running_mean, np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0), rtol=1e-12)
    assert bn.num_batches_tracked == 3


def test_batch_norm_without_running_statistics_normalises_by_the_batch_in_evaluation(rng):
    bn = BatchNormalization(3, track_running_stats=False, dtype=np.float64).evaluate()
    x = rng.normal(size=(6, 3)) * 4 + 2
    y = bn.forward(x)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    assert dict(bn.named_buffers()) == {} and sorted(bn.state_dict()) == ["bias", "weight"]
    assert "bias" not in BatchNormalization(3, bias=False).state_dict()


def test_layer_norm_normalises_each_sample_over_its_last_axes(rng):
    from backprop_cli.nn.normalization import LayerNorm
    x = rng.normal(size=(2, 3, 4, 5)) * 3 + 1
    y = LayerNorm([4, 5], eps=1e-12, dtype=np.float64).forward(x)
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1, rtol=1e-9)
    with pytest.raises(ShapeError, match=r"LayerNorm expected input \(N, \*, 4, 5\), got \(2, 3, 5, 4\)"):
        LayerNorm([4, 5]).forward(np.zeros((2, 3, 5, 4)))
