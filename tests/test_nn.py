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


# ----------------------------------------------------------------------------- PyTorch's arguments
def test_an_argument_a_class_does_not_take_names_the_class_called_and_what_it_takes():
    from backprop_cli import optim
    with pytest.raises(TypeError, match=r"^Tanh got an unexpected keyword argument 'inplace'; Tanh takes no arguments$"):
        nn.Tanh(inplace=True)
    with pytest.raises(TypeError, match=r"^Linear got an unexpected keyword argument 'device'; Linear takes "
                                        r"\(in_features, out_features, bias=True, \*, init='default', rng=None, "
                                        r"dtype=float32\)$"):
        nn.Linear(3, 2, device="cpu")
    with pytest.raises(TypeError, match=r"^NLLLoss too many positional arguments"):
        nn.NLLLoss(None, None, -100, None, "mean", 0.1)
    with pytest.raises(TypeError, match=r"^SGD got an unexpected keyword argument 'betas'"):
        optim.SGD(nn.Linear(2, 2), betas=(0.9, 0.99))
    with pytest.raises(TypeError, match=r"^StepLR missing a required argument: 'step_size'"):
        optim.StepLR(0.1)


def test_linear_takes_any_leading_axes_as_pytorch_does():
    layer = nn.Linear(4, 3, rng=0).to(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    g = np.random.default_rng(1).standard_normal((2, 5, 3))
    y = layer.forward(x)
    gx = layer.backward(x, g)
    flat = nn.Linear(4, 3, rng=0).to(np.float64)
    np.testing.assert_allclose(y, flat.forward(x.reshape(10, 4)).reshape(2, 5, 3), rtol=1e-12)
    np.testing.assert_allclose(gx, flat.backward(x.reshape(10, 4), g.reshape(10, 3)).reshape(x.shape), rtol=1e-12)
    np.testing.assert_allclose(layer.grad_weight, flat.grad_weight, rtol=1e-12)
    assert layer.forward(x[0, 0]).shape == (3,)


def test_embedding_looks_up_rows_and_its_padding_row_learns_nothing():
    emb = nn.Embedding(5, 2, padding_idx=1, rng=0)
    np.testing.assert_array_equal(emb.weight[1], [0.0, 0.0])
    x = np.array([[1, 3], [3, 0]])
    y = emb.forward(x)
    np.testing.assert_array_equal(y, emb.weight[x])
    emb.backward(x, np.ones((2, 2, 2), np.float32))
    np.testing.assert_array_equal(emb.grad_weight, [[1, 1], [0, 0], [0, 0], [2, 2], [0, 0]])
    np.testing.assert_array_equal(emb.forward(x.astype(np.float32)), y)            # whole-number floats
    frozen = nn.Embedding(3, 2, _weight=np.eye(3, 2), _freeze=True)
    assert frozen.num_parameters() == 0 and "weight" in dict(frozen.named_buffers())
    with pytest.raises(ValueError, match="fractional"):
        emb.forward(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match=r"index 5, outside \[0, 5\)"):
        emb.forward(np.array([[5]]))
    with pytest.raises(ValueError, match="max_norm is not supported"):
        nn.Embedding(5, 2, max_norm=1.0)


def test_gelu_silu_and_hardtanh_known_values():
    x = np.array([[-1.0, 0.0, 1.0, 3.0]])
    phi = np.array([0.15865525393145707, 0.5, 0.8413447460685429, 0.9986501019683699])    # the normal CDF
    np.testing.assert_allclose(nn.GELU().forward(x), x * phi, rtol=1e-14)
    np.testing.assert_allclose(nn.SiLU().forward(x), x / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_array_equal(nn.Hardtanh(-0.5, 2.0).forward(x), [[-0.5, 0.0, 1.0, 2.0]])
    assert nn.Hardtanh(min_value=-2.0).min_val == -2.0        # PyTorch's deprecated spelling


def test_erfc_matches_the_standard_library_to_the_last_digits():
    import math
    from backprop_cli.nn.functional import erfc
    x = np.concatenate([np.linspace(-6, 27, 3301), [0.0, 1e-300, -1e-300, np.inf, -np.inf]])
    want = np.array([math.erfc(v) for v in x])
    np.testing.assert_allclose(erfc(x), want, rtol=1e-13, atol=1e-310)


def test_softmax_over_any_axis_and_a_dim_outside_the_input_is_one_error():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    np.testing.assert_allclose(nn.Softmax(dim=-1).forward(x).sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(nn.LogSoftmax(0).forward(x), x - np.log(np.exp(x).sum(axis=0)), rtol=1e-12)
    with pytest.raises(nn.ShapeError, match=r"SoftMax dim=3 is out of range for input \(2, 3, 4\)"):
        nn.Softmax(dim=3).forward(x)


def test_flatten_folds_the_axes_pytorch_folds():
    x = np.zeros((2, 3, 4, 5))
    assert nn.Flatten().forward(x).shape == (2, 60) and nn.Flatten(2).forward(x).shape == (2, 3, 20)
    assert nn.Flatten(1, 2).forward(x).shape == (2, 12, 5) and nn.Flatten(0, -1).forward(x).shape == (120,)
    with pytest.raises(nn.ShapeError, match="does not fit"):
        nn.Flatten(3, 1).forward(x)


def test_clear_state_drops_every_cache_and_keeps_the_weights():
    model = nn.Sequential(nn.SpatialConvolution(1, 2, 3, rng=0), nn.SpatialBatchNormalization(2), nn.ReLU(),
                          nn.SpatialMaxPooling(2), nn.Flatten(), nn.Dropout(0.5, rng=0), nn.Linear(8, 3, rng=0))
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    model.backward(x, np.ones_like(model.forward(x)))
    model[6].acc_grad_parameters(model._xs[6], np.ones((2, 3), np.float32))     # fills Linear's scratch
    weights, grads = [p.copy() for p in model.parameters()[0]], [g.copy() for g in model.parameters()[1]]
    assert model.clear_state() is model
    conv, bn, _, pool, _, drop, lin = model.layers
    assert conv._cache == {} and bn._xhat is None and pool._input is None and pool._winners is None
    assert drop.mask is None and lin._gw is None and model._xs is None
    assert all(m.output is None and m.grad_input is None for m in model.modules())
    for a, b in zip(weights + grads, model.parameters()[0] + model.parameters()[1]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="needs a forward first"):
        model.backward(x, np.ones((2, 3), np.float32))


def test_a_model_built_from_a_config_holds_nothing_of_the_shape_probe(tmp_path):
    from backprop_cli.config.schema import load_config
    from backprop_cli.engine.experiment import build

    np.savez(tmp_path / "d.npz", x=np.zeros((4, 1, 6, 6)), y=np.arange(4) % 2)
    (tmp_path / "c.yaml").write_text(
        "data: {train: d.npz, validation_split: 0}\n"
        "model: [{Conv2d: {out_channels: 2, kernel_size: 3}}, {MaxPool2d: 2}, Flatten, {Linear: 2}]\n"
        "criterion: CrossEntropyLoss\noptimizer: {name: sgd, lr: 0.1}\n")
    model, _ = build(load_config(tmp_path / "c.yaml"), (1, 6, 6))
    assert model[0]._cache == {} and model[1]._input is None
    assert all(m.output is None for m in model.modules())
