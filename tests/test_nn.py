"""The module contract and the textbook values (gradients themselves: test_gradients.py)."""

import numpy as np
import pytest

from backprop_cli import nn


def test_linear_weight_gradient_is_outer_product_and_bias_gradient_is_grad_output():
    layer = nn.Linear(3, 2, rng=0)
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    g = np.array([[0.5, -1.0]], dtype=np.float32)
    layer.forward(x)
    grad_input = layer.backward(x, g)
    params, grads = layer.parameters()
    np.testing.assert_allclose(grads[0], np.outer(g[0], x[0]), rtol=1e-6)
    np.testing.assert_allclose(grads[1], g[0], rtol=1e-6)
    np.testing.assert_allclose(grad_input, g @ params[0], rtol=1e-6)


def test_backward_accumulates_and_zero_grad_clears():
    layer = nn.Linear(4, 3, rng=0)
    x, g = np.ones((2, 4), np.float32), np.ones((2, 3), np.float32)
    layer.forward(x)
    layer.backward(x, g)
    once = [d.copy() for d in layer.parameters()[1]]
    layer.backward(x, g)
    for d, d1 in zip(layer.parameters()[1], once):
        np.testing.assert_allclose(d, 2 * d1, rtol=1e-6)
    layer.backward(x, g, scale=0.5)
    for d, d1 in zip(layer.parameters()[1], once):
        np.testing.assert_allclose(d, 2.5 * d1, rtol=1e-6)
    layer.zero_grad_parameters()
    assert all(not d.any() for d in layer.parameters()[1])


def test_update_parameters_is_plain_gradient_descent():
    layer = nn.Linear(2, 2, rng=0)
    before = layer.weight.copy()
    x = np.array([[1.0, -1.0]], np.float32)
    layer.forward(x)
    layer.backward(x, np.array([[1.0, 2.0]], np.float32))
    layer.update_parameters(0.1)
    np.testing.assert_allclose(layer.weight, before - 0.1 * np.outer([1.0, 2.0], [1.0, -1.0]), rtol=1e-6)


def test_one_neuron_chain_rule():
    """L = (a(w x) - t)^2 gives dL/dw = 2 (y - t) a'(w x) x (here a = tanh, a' = 1 - tanh^2)."""
    w, x, t = 0.7, 1.5, 0.2
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.Tanh()).to(np.float64)
    model.parameters()[0][0][...] = w
    inp = np.array([[x]])
    y = model.forward(inp)
    crit = nn.MSECriterion()
    crit.forward(y, np.array([[t]]))
    model.zero_grad_parameters()
    model.backward(inp, crit.backward(y, np.array([[t]])))
    expected = 2 * (np.tanh(w * x) - t) * (1 - np.tanh(w * x) ** 2) * x
    assert model.parameters()[1][0][0, 0] == pytest.approx(expected, rel=1e-12)


def test_classnll_gradient_is_minus_one_over_n_at_target():
    logp = np.log(np.full((4, 10), 0.1))
    target = np.array([9, 0, 3, 9])
    grad = nn.ClassNLLCriterion().backward(logp, target)
    expected = np.zeros((4, 10))
    expected[np.arange(4), target] = -1 / 4
    np.testing.assert_array_equal(grad, expected)


def test_mse_gradient_is_two_times_difference_over_n():
    y, t = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[0.0, 2.0], [1.0, 1.0]])
    np.testing.assert_allclose(nn.MSECriterion().backward(y, t), 2 * (y - t) / 4)
    assert nn.MSECriterion().forward(y, t) == pytest.approx((1 + 0 + 4 + 16) / 4)


def test_logsoftmax_is_finite_for_huge_logits():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]], dtype=np.float32)
    layer = nn.LogSoftMax()
    y = layer.forward(x)
    g = layer.backward(x, np.ones_like(x))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(y[0], [0.0, -2000.0, -1000.0])
    np.testing.assert_allclose(np.exp(y[1]), [1 / 3] * 3, rtol=1e-6)


@pytest.mark.parametrize("factory", [
    lambda: nn.Linear(784, 10), lambda: nn.SpatialConvolution(1, 4, 3), lambda: nn.TemporalConvolution(1, 4, 3),
    lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), nn.ReLU, lambda: nn.SpatialMaxPooling(2),
    lambda: nn.BatchNormalization(8), lambda: nn.Dropout(0.5),
])
def test_float32_stays_float32(factory):
    layer = factory()
    shape = {nn.Linear: (4, 784), nn.SpatialConvolution: (2, 1, 6, 6), nn.TemporalConvolution: (2, 1, 9),
             nn.Sequential: (2, 1, 8, 8), nn.SpatialMaxPooling: (2, 1, 4, 4), nn.BatchNormalization: (4, 8)}
    x = np.random.default_rng(0).standard_normal(shape.get(type(layer), (3, 5))).astype(np.float32)
    y = layer.forward(x)
    gx = layer.backward(x, np.ones_like(y))
    assert y.dtype == np.float32 and gx.dtype == np.float32
    assert all(d.dtype == np.float32 for d in layer.parameters()[1])


def test_linear_rejects_wrong_shape_with_expected_and_actual():
    with pytest.raises(ValueError, match=r"Linear expected input \(N, 784\), got \(32, 28, 28\)"):
        nn.Linear(784, 256).forward(np.zeros((32, 28, 28), np.float32))


def test_sequential_names_the_failing_layer():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(7, 2))
    with pytest.raises(ValueError, match=r"layer 2 \(Linear\(in_features=7, out_features=2\)\): "
                                         r"Linear expected input \(N, 7\), got \(3, 8\)"):
        model.forward(np.zeros((3, 4), np.float32))


def test_non_array_input_is_a_type_error():
    with pytest.raises(TypeError, match="Linear expected a numpy array"):
        nn.Linear(2, 2).forward([[1.0, 2.0]])


def test_same_seed_same_weights_and_schemes_differ():
    for scheme in ("default", "xavier", "kaiming", "xavier_normal", "kaiming_normal"):
        a, b = nn.Linear(20, 10, init=scheme, rng=5), nn.Linear(20, 10, init=scheme, rng=5)
        np.testing.assert_array_equal(a.weight, b.weight)
    bound = 1 / np.sqrt(20)
    assert np.abs(nn.Linear(20, 10, rng=1).weight).max() <= bound
    kaiming = nn.Linear(1000, 100, init="kaiming", rng=1).weight
    assert kaiming.std() == pytest.approx(np.sqrt(2 / 1000), rel=0.05)
    with pytest.raises(ValueError, match="init must be one of"):
        nn.Linear(2, 2, init="glorot")


def test_parameters_state_dict_and_repr():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNormalization(4), nn.ReLU(), nn.Linear(4, 2, rng=1))
    params, grads = model.parameters()
    assert [p.shape for p in params] == [(4, 3), (4,), (4,), (4,), (2, 4), (2,)]
    assert [g.shape for g in grads] == [p.shape for p in params]
    state = model.state_dict()
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                          "3.weight", "3.bias"}
    other = nn.Sequential(nn.Linear(3, 4, rng=9), nn.BatchNormalization(4), nn.ReLU(), nn.Linear(4, 2, rng=9))
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.layers[0].weight, model.layers[0].weight)
    assert "(0): Linear(in_features=3, out_features=4)" in repr(model)
    bad = dict(state, **{"3.weight": np.zeros((3, 3))})
    del bad["0.bias"]
    with pytest.raises(ValueError, match=r"0\.bias: missing.*3\.weight: expected shape \(2, 4\), got \(3, 3\)"):
        other.load_state_dict(bad)


def test_train_and_evaluate_switch_every_module():
    model = nn.Sequential(nn.Dropout(0.5), nn.Residual(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))))
    model.evaluate()
    assert not any(m.training for m in model.modules())
    x = np.ones((4, 2), np.float32)
    np.testing.assert_array_equal(model.forward(x), model.forward(x))
    model.train()
    assert all(m.training for m in model.modules())


def test_pytorch_names_are_the_torch7_classes_or_thin_subclasses_of_them():
    assert nn.MODULES["LogSoftmax"] is nn.LogSoftMax and nn.MODULES["BatchNorm1d"] is nn.BatchNormalization
    assert nn.Softmax is nn.SoftMax and nn.MaxPool2d is nn.MODULES["MaxPool2d"]
    for torch7, pytorch in [("SpatialMaxPooling", "MaxPool2d"), ("TemporalMaxPooling", "MaxPool1d"),
                            ("SpatialAveragePooling", "AvgPool2d")]:
        assert issubclass(nn.MODULES[pytorch], nn.MODULES[torch7]) and nn.MODULES[pytorch] is not nn.MODULES[torch7]
    for torch7, pytorch in [("ClassNLLCriterion", "NLLLoss"), ("MSECriterion", "MSELoss"),
                            ("CrossEntropyCriterion", "CrossEntropyLoss"), ("BCEWithLogitsCriterion", "BCEWithLogitsLoss")]:
        assert issubclass(nn.CRITERIONS[pytorch], nn.CRITERIONS[torch7])


def test_parameters_and_gradients_by_torch_names():
    layer = nn.Linear(3, 2, rng=0)
    x = np.ones((4, 3), np.float32)
    layer.forward(x)
    layer.backward(x, np.ones((4, 2), np.float32))
    assert layer.grad_weight is layer.parameters()[1][0] and layer.grad_bias is layer.parameters()[1][1]
    np.testing.assert_array_equal(layer.grad_bias, [4.0, 4.0])
    layer.to(np.float64)
    assert layer.weight.dtype == np.float64 and layer.weight is layer.parameters()[0][0]
    assert nn.BatchNormalization(3).running_var.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(AttributeError, match="Linear has no attribute 'grad_nothing'"):
        layer.grad_nothing


def test_assigning_a_parameter_copies_into_it():
    layer = nn.Linear(2, 2, rng=0)
    weight = layer.parameters()[0][0]
    layer.weight = np.eye(2)
    assert layer.weight is weight and np.array_equal(weight, np.eye(2))
    np.testing.assert_allclose(layer.forward(np.array([[1.0, 2.0]], np.float32)), [[1.0, 2.0] + layer.bias], rtol=1e-6)
    with pytest.raises(ValueError, match=r"Linear.weight has shape \(2, 2\), got \(3,\)"):
        layer.weight = np.zeros(3)


def test_activations_reject_a_grad_output_of_another_shape():
    relu = nn.ReLU()
    x = np.ones((5, 4), np.float32)
    relu.forward(x)
    with pytest.raises(ValueError, match=r"ReLU expected grad_output \(5, 4\), got \(1, 4\)"):
        relu.backward(x, np.ones((1, 4), np.float32))
