"""The fast paths give exactly what the plain contract gives: ``acc_grad_parameters`` of a container
(the engine's backward, without dLoss/d data, optionally setting instead of accumulating), Linear's reused weight
gradient buffer, the engine's finiteness test, and ClassNLL's unit-weight path; ``backprop time``
times the engine's own backward; and the CLI's memory policy does what it is for. No timings are
asserted here."""

import resource

import numpy as np
import pytest

from backprop_cli import nn
from backprop_cli.engine.memory import keep_freed_memory
from backprop_cli.optim import SGD
from backprop_cli.diagnostics.profile import time_layers
from backprop_cli.engine.trainer import Trainer, _all_finite
from backprop_cli.nn.init import random_streams
from backprop_cli.nn.module import acc_grad_parameters


def models():
    """``(model, input shape)`` rows: parameters first, late, nested, in a Residual, behind Dropout."""
    rng = np.random.default_rng(0)
    return [
        (nn.Sequential(nn.Linear(6, 5, rng=rng), nn.ReLU(), nn.Linear(5, 3, rng=rng), nn.LogSoftMax()), (4, 6)),
        (nn.Sequential(nn.Flatten(), nn.Dropout(0.3, rng=rng), nn.Linear(12, 4, rng=rng), nn.Tanh(),
                       nn.BatchNormalization(4), nn.Linear(4, 2, rng=rng)), (5, 3, 4)),
        (nn.Sequential(nn.SpatialConvolution(2, 3, 3, padding=1, rng=rng), nn.ReLU(), nn.SpatialMaxPooling(2),
                       nn.Flatten(), nn.Linear(12, 3, rng=rng)), (2, 2, 4, 4)),
        (nn.Sequential(nn.TemporalConvolution(1, 4, 3, stride=2, padding=1, rng=rng), nn.ReLU(), nn.Flatten(),
                       nn.Linear(16, 2, rng=rng)), (3, 1, 8)),
        (nn.Sequential(nn.Residual(nn.Sequential(nn.Linear(4, 4, rng=rng), nn.ReLU())), nn.Linear(4, 2, rng=rng)),
         (3, 4)),
        (nn.Sequential(nn.ReLU(), nn.Sequential(nn.Linear(4, 3, rng=rng), nn.Sigmoid()), nn.Linear(3, 2, rng=rng)),
         (3, 4)),
        ((lambda lin: nn.Sequential(lin, nn.Tanh(), lin, nn.Linear(4, 2, rng=rng)))(nn.Linear(4, 4, rng=rng)), (3, 4)),
    ]


def _grads(model):
    return [g.copy() for g in model.parameters()[1]]


def _set_grads(model, values):
    for g, v in zip(model.parameters()[1], values):
        g[...] = v


@pytest.mark.parametrize("model, shape", models(),
                         ids=["mlp", "dropout-batchnorm", "conv2d", "conv1d", "residual", "nested", "shared"])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_acc_grad_parameters_gives_the_gradients_backward_gives(model, shape, scale):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    model.to(np.float64)
    out = model.forward(x)
    g = rng.standard_normal(out.shape)
    before = [rng.standard_normal(p.shape) for p in model.parameters()[0]]

    _set_grads(model, before)
    model.backward(x, g, scale)
    accumulated = _grads(model)
    model.zero_grad_parameters()
    model.backward(x, g, scale)
    fresh = _grads(model)

    _set_grads(model, before)
    model.acc_grad_parameters(x, g, scale)
    for got, want in zip(_grads(model), accumulated):
        np.testing.assert_array_equal(got, want)
    _set_grads(model, before)
    acc_grad_parameters(model, x, g, scale, overwrite=True)
    for got, want in zip(_grads(model), fresh):
        np.testing.assert_array_equal(got, want)
    assert model.grad_input is None


def test_the_walk_runs_the_engine_backward_layer_by_layer_and_backprop_time_times_it():
    """The steps come last layer first and stop at the first layer with weights (nothing before it
    has work); ``time_layers`` (``backprop time``) shows the layers before it with no backward time."""
    model = nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(12, 5, rng=0), nn.Tanh(), nn.Linear(5, 3, rng=0))
    x = np.random.default_rng(2).standard_normal((4, 3, 4)).astype(np.float32)
    g = np.ones_like(model.forward(x))
    acc_grad_parameters(model, x, g, overwrite=True)
    want = _grads(model)
    _set_grads(model, [np.full(p.shape, 7.0) for p in model.parameters()[0]])
    assert list(model.backward_steps(x, g, grad_input=False, overwrite=True)) == [4, 3, 2]
    for got, expected in zip(_grads(model), want):
        np.testing.assert_array_equal(got, expected)
    rows = time_layers(model, nn.MSECriterion(), x, np.zeros((4, 3), np.float32), batches=2, batch_size=4)
    assert [r.backward_ms == 0 for r in rows[:5]] == [True, True, False, False, False]


def test_the_engine_step_keeps_the_inner_grad_inputs_and_drops_the_data_gradient():
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=0))
    x = np.ones((2, 4), np.float32)
    g = np.ones_like(model.forward(x))
    model.backward(x, g)
    want = model[2].grad_input.copy()
    model.acc_grad_parameters(x, g, overwrite=True)
    np.testing.assert_array_equal(model[2].grad_input, want)
    assert model[0].grad_input is None and model.grad_input is None


def test_linear_reuses_its_buffer_without_aliasing_the_gradient():
    layer = nn.Linear(3, 2, rng=0)
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((4, 3), dtype=np.float32), rng.standard_normal((5, 3), dtype=np.float32)
    g1, g2 = rng.standard_normal((4, 2), dtype=np.float32), rng.standard_normal((5, 2), dtype=np.float32)
    layer.backward(x1, g1)
    layer.backward(x2, g2)
    np.testing.assert_allclose(layer.grad_weight, g1.T @ x1 + g2.T @ x2, rtol=1e-5)
    layer.to(np.float64)                                   # a new dtype: a new buffer
    layer.zero_grad_parameters()
    layer.backward(x1.astype(np.float64), g1.astype(np.float64), scale=2.0)
    assert layer.grad_weight.dtype == np.float64
    np.testing.assert_allclose(layer.grad_weight, 2 * (g1.T @ x1), rtol=1e-6)


def test_the_engine_step_equals_zero_grad_backward_step():
    def make():
        rng = np.random.default_rng(3)
        model = nn.Sequential(nn.Linear(5, 8, rng=rng), nn.ReLU(), nn.Linear(8, 3, rng=rng), nn.LogSoftMax())
        return model, SGD(*model.parameters(), lr=0.1, momentum=0.9)

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 5)).astype(np.float32), rng.integers(0, 3, 40)
    model, opt = make()
    Trainer(model, nn.ClassNLLCriterion(), opt, batch_size=16, seed=7).fit(x, y, epochs=2)

    ref, ref_opt = make()
    crit, order = nn.ClassNLLCriterion(), random_streams(7).shuffle
    for _ in range(2):
        perm = order.permutation(len(x))
        for start in range(0, len(x), 16):
            idx = perm[start:start + 16]
            out = ref.forward(x[idx])
            grad = crit.backward(out, y[idx])
            ref.zero_grad_parameters()
            ref.backward(x[idx], grad)
            ref_opt.step()
    for got, want in zip(model.parameters()[0], ref.parameters()[0]):
        np.testing.assert_array_equal(got, want)


def test_all_finite_finds_inf_and_nan_and_accepts_huge_finite_values():
    ok = [np.ones(5, np.float32), np.zeros(3, np.float32)]
    assert _all_finite(ok)
    with np.errstate(over="ignore"):                                 # the engine runs under errstate too
        assert _all_finite([np.full(4, 3e30, np.float32)])          # the dot overflows; the values do not
    for bad in (np.inf, -np.inf, np.nan):
        arr = np.ones(6, np.float32)
        arr[2] = bad
        assert not _all_finite(ok + [arr])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape, target_shape", [((6, 4), (6,)), ((3, 4, 5), (3, 5)), ((0, 4), (0,))])
def test_classnll_without_weights_equals_unit_weights(reduction, shape, target_shape):
    rng = np.random.default_rng(0)
    logp = rng.standard_normal(shape).astype(np.float32)
    target = rng.integers(0, shape[1], target_shape)
    plain = nn.ClassNLLCriterion(reduction=reduction)
    ones = nn.ClassNLLCriterion(weights=np.ones(shape[1], np.float32), reduction=reduction)
    assert plain.forward(logp, target) == ones.forward(logp, target)
    np.testing.assert_array_equal(plain.backward(logp, target), ones.backward(logp, target))


def test_the_cli_memory_policy_reuses_freed_blocks_instead_of_faulting_them_back():
    """A training step frees large temporaries that the next step allocates again; under glibc's
    defaults that costs thousands of page faults a step (this pattern: ~2300), under the policy none."""
    if not keep_freed_memory():
        pytest.skip("not glibc: the policy does not apply")

    def step():
        arrays = [np.ones(600_000, np.float32) for _ in range(4)]    # 2.4 MB each, alive at once
        return sum(float(a[0]) for a in arrays)

    for _ in range(3):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10 < 50
