"""Optimizers, schedules and clipping against hand-written references and hand-computed values."""

from __future__ import annotations

import math
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.optim import (OPTIMIZERS, SCHEDULES, SGD, Adagrad, Adam, AdamW, Constant, CosineLR,
                                ExponentialLR, LinearLR, MultiStepLR, OneCycleLR, ReduceLROnPlateau, RMSprop,
                                StepLR, Warmup,
                                clip_grad_norm, clip_grad_value)
from backprop_cli.optim.optimizers import optimizer_name

SHAPES = [(4, 3), (3,)]


# --------------------------------------------------------------------------- references
# Each takes one parameter array and the gradients it receives at successive steps, and returns the
# parameter after those steps: the textbook rule in plain float64 numpy, allocating freely.
def ref_sgd(w, grads, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, lr_decay=0.0,
            maximize=False):
    buf = None
    for t, grad in enumerate(grads):
        clr = lr / (1 + t * lr_decay)
        g = (-grad if maximize else grad) + weight_decay * w
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        w = w - clr * g
    return w


def ref_adam(w, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False, amsgrad=False,
             maximize=False, decoupled_weight_decay=False):
    b1, b2 = betas
    m, v, v_max = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, grad in enumerate(grads, start=1):
        grad = -grad if maximize else grad
        if decoupled or decoupled_weight_decay:
            w, g = w - lr * weight_decay * w, grad
        else:
            g = grad + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        v_max = np.maximum(v_max, v)
        m_hat, v_hat = m / (1 - b1**t), (v_max if amsgrad else v) / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


def ref_adamw(w, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
    return ref_adam(w, grads, lr, betas, eps, weight_decay, decoupled=True, amsgrad=amsgrad, maximize=maximize)


def ref_rmsprop(w, grads, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0, centered=False,
                maximize=False):
    sq, ga, buf = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for grad in grads:
        g = (-grad if maximize else grad) + weight_decay * w
        sq = alpha * sq + (1 - alpha) * g**2
        if centered:
            ga = alpha * ga + (1 - alpha) * g
            avg = np.sqrt(sq - ga**2) + eps
        else:
            avg = np.sqrt(sq) + eps
        if momentum:
            buf = momentum * buf + g / avg
            w = w - lr * buf
        else:
            w = w - lr * g / avg
    return w


def ref_adagrad(w, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10, initial_accumulator_value=0.0,
                maximize=False):
    acc = np.full_like(w, initial_accumulator_value)
    for t, grad in enumerate(grads):
        g = (-grad if maximize else grad) + weight_decay * w
        acc = acc + g**2
        w = w - lr / (1 + t * lr_decay) * g / (np.sqrt(acc) + eps)
    return w


P = pytest.param
UPDATE_CASES = [
    P(SGD, dict(lr=0.1), ref_sgd, id="sgd"),
    P(SGD, dict(lr=0.1, momentum=0.9), ref_sgd, id="sgd-momentum"),
    P(SGD, dict(lr=0.1, momentum=0.9, dampening=0.3), ref_sgd, id="sgd-dampening"),
    P(SGD, dict(lr=0.1, momentum=0.9, nesterov=True), ref_sgd, id="sgd-nesterov"),
    P(SGD, dict(lr=0.1, weight_decay=0.05), ref_sgd, id="sgd-weight-decay"),
    P(SGD, dict(lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.05), ref_sgd, id="sgd-nesterov-wd"),
    P(SGD, dict(lr=0.1, lr_decay=0.5), ref_sgd, id="sgd-lr-decay"),
    P(Adam, dict(lr=0.1), ref_adam, id="adam"),
    P(Adam, dict(lr=0.1, betas=(0.8, 0.95), eps=1e-3), ref_adam, id="adam-betas-eps"),
    P(Adam, dict(lr=0.1, weight_decay=0.1), ref_adam, id="adam-l2"),
    P(AdamW, dict(lr=0.1), ref_adamw, id="adamw-default-decay"),
    P(AdamW, dict(lr=0.1, weight_decay=0.3), ref_adamw, id="adamw"),
    P(RMSprop, dict(lr=0.1), ref_rmsprop, id="rmsprop"),
    P(RMSprop, dict(lr=0.1, momentum=0.9), ref_rmsprop, id="rmsprop-momentum"),
    P(RMSprop, dict(lr=0.1, alpha=0.9, centered=True), ref_rmsprop, id="rmsprop-centered"),
    P(RMSprop, dict(lr=0.1, momentum=0.5, centered=True, weight_decay=0.1), ref_rmsprop, id="rmsprop-all"),
    P(Adagrad, dict(lr=0.1), ref_adagrad, id="adagrad"),
    P(Adagrad, dict(lr=0.1, lr_decay=0.2, weight_decay=0.05, initial_accumulator_value=0.1), ref_adagrad,
      id="adagrad-lr-decay"),
    P(SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.05, maximize=True), ref_sgd, id="sgd-maximize"),
    P(SGD, dict(lr=0.1, maximize=True), ref_sgd, id="sgd-maximize-plain"),
    P(Adam, dict(lr=0.1, amsgrad=True), ref_adam, id="adam-amsgrad"),
    P(Adam, dict(lr=0.1, weight_decay=0.1, maximize=True), ref_adam, id="adam-maximize"),
    P(Adam, dict(lr=0.1, weight_decay=0.3, decoupled_weight_decay=True), ref_adam, id="adam-decoupled"),
    P(AdamW, dict(lr=0.1, amsgrad=True, maximize=True), ref_adamw, id="adamw-amsgrad-maximize"),
    P(RMSprop, dict(lr=0.1, momentum=0.5, centered=True, maximize=True), ref_rmsprop, id="rmsprop-maximize"),
    P(Adagrad, dict(lr=0.1, weight_decay=0.05, maximize=True), ref_adagrad, id="adagrad-maximize"),
]


def _problem(dtype=np.float64, steps=5, seed=0):
    """Initial parameters and the gradients each step feeds in, for the two SHAPES."""
    rng = np.random.default_rng(seed)
    w0 = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    step_grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return w0, step_grads


def _run(opt, grads, step_grads):
    for values in step_grads:
        for g, value in zip(grads, values):
            g[...] = value
        opt.step()


@pytest.mark.parametrize("cls, kwargs, reference", UPDATE_CASES)
def test_update_matches_reference(cls, kwargs, reference):
    w0, step_grads = _problem()
    params, grads = [w.copy() for w in w0], [np.zeros_like(w) for w in w0]
    opt = cls(params, grads, **kwargs)
    _run(opt, grads, step_grads)
    assert opt.t == len(step_grads)
    for i, w in enumerate(w0):
        expected = reference(w, [values[i] for values in step_grads], **kwargs)
        np.testing.assert_allclose(params[i], expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(grads[i], step_grads[-1][i])  # step() leaves the gradients alone


# One configuration per optimizer with every state buffer in use.
FULL_CASES = [
    P(SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, lr_decay=0.1), id="sgd-nesterov"),
    P(SGD, dict(lr=0.1, momentum=0.9, dampening=0.5), id="sgd-dampening"),
    P(Adam, dict(lr=0.01, weight_decay=0.01), id="adam"),
    P(AdamW, dict(lr=0.01, weight_decay=0.1), id="adamw"),
    P(RMSprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01), id="rmsprop"),
    P(Adagrad, dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.1), id="adagrad"),
]


@pytest.mark.parametrize("name", sorted(set(map(optimizer_name, OPTIMIZERS))))
def test_lr_is_read_at_every_step(name):
    w0, step_grads = _problem()
    params, grads = [w.copy() for w in w0], [np.zeros_like(w) for w in w0]
    opt = OPTIMIZERS[name](params, grads, lr=0.1)
    _run(opt, grads, step_grads[:2])
    before = [p.copy() for p in params]
    opt.lr = 0.0
    _run(opt, grads, step_grads[2:4])
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)
    assert opt.t == 4


def test_sgd_update_uses_new_lr():
    w, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    opt = SGD([w], [g], lr=0.1)
    opt.lr = 0.5
    opt.step()
    np.testing.assert_allclose(w, [0.75, -2.125], rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- state
@pytest.mark.parametrize("cls, kwargs", FULL_CASES)
def test_state_dict_continues_bit_identically(cls, kwargs, tmp_path):
    w0, step_grads = _problem(np.float32, steps=6)
    straight, straight_grads = [w.copy() for w in w0], [np.zeros_like(w) for w in w0]
    _run(cls(straight, straight_grads, **kwargs), straight_grads, step_grads)

    first, first_grads = [w.copy() for w in w0], [np.zeros_like(w) for w in w0]
    opt = cls(first, first_grads, **kwargs)
    _run(opt, first_grads, step_grads[:3])
    state = opt.state_dict()
    assert state["t"] == 3
    assert all(isinstance(v, (np.ndarray, int, float)) for v in state.values())
    np.savez(tmp_path / "optim.npz", **state)  # a checkpoint holds it as plain arrays

    resumed, resumed_grads = [p.copy() for p in first], [np.zeros_like(w) for w in w0]
    opt2 = cls(resumed, resumed_grads, **kwargs)
    with np.load(tmp_path / "optim.npz") as saved:
        opt2.load_state_dict(dict(saved))
    _run(opt2, resumed_grads, step_grads[3:])
    assert opt2.t == 6
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_lists_every_problem_and_changes_nothing():
    params = [np.zeros((2, 3)), np.zeros(3)]
    opt = SGD(params, [np.zeros_like(p) for p in params], lr=0.1, momentum=0.9)
    state = opt.state_dict()
    del state["momentum_buffer.0"]
    state["momentum_buffer.1"] = np.zeros(4)
    state["exp_avg.0"] = np.zeros((2, 3))
    state["t"] = -1
    with pytest.raises(ValueError) as err:
        opt.load_state_dict(state)
    for name in ("momentum_buffer.0", "momentum_buffer.1", "exp_avg.0", "t"):
        assert name in str(err.value)
    assert opt.t == 0


def test_state_dict_is_a_copy():
    w, g = np.ones(3), np.ones(3)
    opt = Adam([w], [g], lr=0.1)
    opt.step()
    state = opt.state_dict()
    saved = state["exp_avg.0"].copy()
    opt.step()
    np.testing.assert_array_equal(state["exp_avg.0"], saved)


@pytest.mark.parametrize("cls, kwargs", FULL_CASES)
def test_float32_stays_float32(cls, kwargs):
    w0, step_grads = _problem(np.float32, steps=3)
    params, grads = [w.copy() for w in w0], [np.zeros_like(w) for w in w0]
    ids = [id(p) for p in params]
    opt = cls(params, grads, **kwargs)
    opt.lr = np.float64(0.01)  # as an engine might set it
    _run(opt, grads, step_grads)
    assert [id(p) for p in opt.params] == ids
    assert all(p.dtype == np.float32 for p in params)
    buffers = [v for v in opt.state_dict().values() if isinstance(v, np.ndarray)]
    assert buffers and all(b.dtype == np.float32 for b in buffers)


@pytest.mark.parametrize("cls, kwargs", [P(SGD, dict(lr=0.1), id="sgd-plain"), *FULL_CASES])
def test_step_allocates_no_full_size_temporaries(cls, kwargs):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(100_000)]
    grads = [rng.standard_normal(100_000)]
    opt = cls(params, grads, **kwargs)
    opt.step()  # the first step may allocate lazily
    tracemalloc.start()
    opt.step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < params[0].nbytes // 10


# --------------------------------------------------------------------------- argument checks
BAD_OPTIMIZER_ARGS = [
    (SGD, dict(lr=-0.1), "lr"),
    (SGD, dict(lr=float("nan")), "lr"),
    (SGD, dict(momentum=-0.5), "momentum"),
    (SGD, dict(dampening=1.5), "dampening"),
    (SGD, dict(weight_decay=-1.0), "weight_decay"),
    (SGD, dict(lr_decay=-1.0), "lr_decay"),
    (SGD, dict(nesterov=True), "nesterov"),
    (SGD, dict(momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (Adam, dict(betas=(1.0, 0.999)), "betas[0]"),
    (Adam, dict(betas=(0.9, -0.1)), "betas[1]"),
    (Adam, dict(betas=(0.9,)), "betas"),
    (Adam, dict(eps=0.0), "eps"),
    (Adam, dict(weight_decay=-0.1), "weight_decay"),
    (AdamW, dict(weight_decay=-0.01), "weight_decay"),
    (RMSprop, dict(alpha=1.0), "alpha"),
    (RMSprop, dict(momentum=-1.0), "momentum"),
    (RMSprop, dict(eps=-1e-8), "eps"),
    (Adagrad, dict(lr_decay=-0.1), "lr_decay"),
    (Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
]


@pytest.mark.parametrize("cls, kwargs, name", BAD_OPTIMIZER_ARGS)
def test_bad_hyper_parameter_is_named(cls, kwargs, name):
    with pytest.raises(ValueError) as err:
        cls([np.zeros(2)], [np.zeros(2)], **kwargs)
    assert name in str(err.value)


@pytest.mark.parametrize("params, grads, expected", [
    ([np.zeros(2), np.zeros(3)], [np.zeros(2)], "parallel"),
    ([np.zeros(2), np.zeros(3)], [np.zeros(2), np.zeros(4)], "params[1]"),
    ([np.zeros(2, np.float32)], [np.zeros(2)], "float64"),
    ([], [], "empty"),
])
def test_params_and_grads_must_be_parallel(params, grads, expected):
    with pytest.raises(ValueError) as err:
        SGD(params, grads)
    assert expected in str(err.value)


BAD_SCHEDULE_ARGS = [
    (lambda: Constant(-0.1), "base_lr"),
    (lambda: StepLR(0.1, step_size=0), "step_size"),
    (lambda: StepLR(0.1, step_size=2.5), "step_size"),
    (lambda: StepLR(0.1, step_size=2, gamma=0.0), "gamma"),
    (lambda: MultiStepLR(0.1, [5, 3]), "milestones"),
    (lambda: MultiStepLR(0.1, [0, 3]), "milestones[0]"),
    (lambda: ExponentialLR(0.1, gamma=-0.5), "gamma"),
    (lambda: CosineLR(0.1, t_max=0), "t_max"),
    (lambda: CosineLR(0.1, t_max=10, min_lr=0.2), "min_lr"),
    (lambda: ReduceLROnPlateau(0.1, mode="avg"), "mode"),
    (lambda: ReduceLROnPlateau(0.1, factor=1.0), "factor"),
    (lambda: ReduceLROnPlateau(0.1, patience=-1), "patience"),
    (lambda: ReduceLROnPlateau(0.1, threshold=-1e-4), "threshold"),
    (lambda: ReduceLROnPlateau(0.1, cooldown=-1), "cooldown"),
    (lambda: Warmup(Constant(0.1), warmup_epochs=-1), "warmup_epochs"),
    (lambda: Warmup(Constant(0.1), warmup_epochs=2, start_factor=0.0), "start_factor"),
    (lambda: Constant(0.1).lr_at(-1), "epoch"),
]


@pytest.mark.parametrize("make, name", BAD_SCHEDULE_ARGS)
def test_bad_schedule_argument_is_named(make, name):
    with pytest.raises(ValueError) as err:
        make()
    assert name in str(err.value)


# --------------------------------------------------------------------------- schedules
COS_1 = (1 + 0.5**0.5) / 2  # (1 + cos(pi/4)) / 2
COS_3 = (1 - 0.5**0.5) / 2  # (1 + cos(3pi/4)) / 2
SCHEDULE_CASES = [
    (Constant(0.1), 0, 0.1),
    (Constant(0.1), 50, 0.1),
    (StepLR(1.0, step_size=3, gamma=0.5), 2, 1.0),
    (StepLR(1.0, step_size=3, gamma=0.5), 3, 0.5),
    (StepLR(1.0, step_size=3, gamma=0.5), 7, 0.25),
    (MultiStepLR(1.0, [2, 5], gamma=0.1), 1, 1.0),
    (MultiStepLR(1.0, [2, 5], gamma=0.1), 2, 0.1),
    (MultiStepLR(1.0, [2, 5], gamma=0.1), 4, 0.1),
    (MultiStepLR(1.0, [2, 5], gamma=0.1), 5, 0.01),
    (MultiStepLR(1.0, [2, 5], gamma=0.1), 100, 0.01),
    (ExponentialLR(2.0, gamma=0.5), 0, 2.0),
    (ExponentialLR(2.0, gamma=0.5), 3, 0.25),
    (CosineLR(1.0, t_max=4), 0, 1.0),
    (CosineLR(1.0, t_max=4), 1, COS_1),
    (CosineLR(1.0, t_max=4), 2, 0.5),
    (CosineLR(1.0, t_max=4), 3, COS_3),
    (CosineLR(1.0, t_max=4), 4, 0.0),
    (CosineLR(1.0, t_max=4), 9, 0.0),
    (CosineLR(1.0, t_max=4, min_lr=0.2), 2, 0.6),
    (CosineLR(1.0, t_max=4, min_lr=0.2), 3, 0.2 + 0.8 * COS_3),
    (CosineLR(1.0, t_max=4, min_lr=0.2), 7, 0.2),
    (Warmup(StepLR(1.0, step_size=2, gamma=0.5), warmup_epochs=2, start_factor=0.1), 0, 0.1),
    (Warmup(StepLR(1.0, step_size=2, gamma=0.5), warmup_epochs=2, start_factor=0.1), 1, 0.55),
    (Warmup(StepLR(1.0, step_size=2, gamma=0.5), warmup_epochs=2, start_factor=0.1), 2, 1.0),
    (Warmup(StepLR(1.0, step_size=2, gamma=0.5), warmup_epochs=2, start_factor=0.1), 3, 1.0),
    (Warmup(StepLR(1.0, step_size=2, gamma=0.5), warmup_epochs=2, start_factor=0.1), 4, 0.5),
    (Warmup(StepLR(1.0, step_size=2, gamma=0.5), warmup_epochs=2, start_factor=0.1), 6, 0.25),
    (Warmup(CosineLR(1.0, t_max=4), warmup_epochs=4, start_factor=0.2), 0, 0.2),
    (Warmup(CosineLR(1.0, t_max=4), warmup_epochs=4, start_factor=0.2), 1, 0.4),
    (Warmup(CosineLR(1.0, t_max=4), warmup_epochs=4, start_factor=0.2), 3, 0.8),
    (Warmup(CosineLR(1.0, t_max=4), warmup_epochs=4, start_factor=0.2), 4, 1.0),
    (Warmup(CosineLR(1.0, t_max=4), warmup_epochs=4, start_factor=0.2), 5, COS_1),
    (Warmup(CosineLR(1.0, t_max=4), warmup_epochs=4, start_factor=0.2), 6, 0.5),
    (Warmup(CosineLR(1.0, t_max=4), warmup_epochs=4, start_factor=0.2), 8, 0.0),
    (Warmup(ExponentialLR(1.0, gamma=0.5), warmup_epochs=0), 2, 0.25),
]


@pytest.mark.parametrize("schedule, epoch, expected", SCHEDULE_CASES, ids=repr)
def test_schedule_lr(schedule, epoch, expected):
    assert schedule.lr_at(epoch) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def _plateau_lrs(schedule, metrics, start=0):
    """The lr each epoch trains with, observing ``metrics`` after each, from epoch ``start``."""
    lrs = []
    for epoch, metric in enumerate(metrics, start=start):
        lrs.append(schedule.lr_at(epoch))
        schedule.observe(epoch, metric)
    return lrs


@pytest.mark.parametrize("schedule, metrics, expected", [
    # threshold 0.1: 9.5 and 9.2 do not beat 10 * 0.9; patience 1 -> reduce after the 2nd bad epoch,
    # cooldown 1 -> the next bad epoch is not counted; min_lr 0.2 stops the last halving at 0.2.
    (ReduceLROnPlateau(1.0, factor=0.5, patience=1, threshold=0.1, cooldown=1, min_lr=0.2),
     [10, 9.5, 9.2, 9.1, 9.1, 9.1, 5, 5, 5, 5, 5],
     [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2]),
    (ReduceLROnPlateau(1.0, mode="max", factor=0.1, patience=0, threshold=0.0),
     [0.5, 0.6, 0.6, 0.7, 0.65],
     [1.0, 1.0, 1.0, 0.1, 0.1]),
    # the warmup epochs' (bad) metrics are not counted; the plateau starts at epoch 2
    (Warmup(ReduceLROnPlateau(1.0, factor=0.5, patience=0), warmup_epochs=2, start_factor=0.5),
     [5, 6, 4, 4.5, 4.5],
     [0.5, 0.75, 1.0, 1.0, 0.5]),
])
def test_plateau_sequence(schedule, metrics, expected):
    assert _plateau_lrs(schedule, metrics) == pytest.approx(expected, rel=1e-12)


def test_plateau_needs_a_metric():
    with pytest.raises(ValueError, match="metric"):
        ReduceLROnPlateau(0.1).observe(0, None)


@pytest.mark.parametrize("make", [
    lambda: ReduceLROnPlateau(1.0, factor=0.5, patience=1, cooldown=1),
    lambda: Warmup(ReduceLROnPlateau(1.0, factor=0.5, patience=0), warmup_epochs=2),
], ids=["plateau", "warmup-plateau"])
def test_schedule_state_dict_continues_exactly(make, tmp_path):
    metrics = [5.0, 4.0, 4.5, 4.2, 4.1, 3.0, 3.5, 3.5, 3.5, 3.5]
    straight = _plateau_lrs(make(), metrics)
    first = make()
    lrs = _plateau_lrs(first, metrics[:5])
    np.savez(tmp_path / "schedule.npz", **first.state_dict())
    resumed = make()
    with np.load(tmp_path / "schedule.npz") as saved:
        resumed.load_state_dict(dict(saved))
    assert resumed.state_dict() == first.state_dict()
    lrs += _plateau_lrs(resumed, metrics[5:], start=5)
    assert lrs == straight
    assert len(set(straight)) > 1


def test_schedule_load_state_dict_lists_every_problem():
    schedule = ReduceLROnPlateau(0.1)
    state = schedule.state_dict()
    del state["best"]
    state["surprise"] = 1.0
    with pytest.raises(ValueError) as err:
        schedule.load_state_dict(state)
    assert "best" in str(err.value) and "surprise" in str(err.value)
    with pytest.raises(ValueError, match="unexpected"):
        StepLR(0.1, 2).load_state_dict({"lr": 0.1})


def test_registries_name_every_class():
    assert OPTIMIZERS == {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
                          "SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop, "Adagrad": Adagrad}
    assert optimizer_name("RMSprop") == "rmsprop" and optimizer_name("sgd") == "sgd" and optimizer_name("Sgd") is None
    assert SCHEDULES == {"constant": Constant, "step": StepLR, "multistep": MultiStepLR,
                         "exponential": ExponentialLR, "cosine": CosineLR, "plateau": ReduceLROnPlateau,
                         "linear": LinearLR, "onecycle": OneCycleLR}


# --------------------------------------------------------------------------- clipping
def test_clip_grad_norm_scales_to_max_norm():
    grads = [np.array([3.0, 0.0], np.float32), np.array([[4.0]], np.float32)]
    assert clip_grad_norm(grads, max_norm=1.0) == pytest.approx(5.0, rel=1e-7)
    assert math.hypot(*grads[0], *grads[1].ravel()) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(grads[0], [0.6, 0.0], rtol=1e-5)
    assert grads[0].dtype == np.float32


def test_clip_grad_norm_leaves_small_gradients_alone():
    grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    assert clip_grad_norm(grads, max_norm=10.0) == pytest.approx(5.0, rel=1e-12)
    np.testing.assert_array_equal(grads[0], [3.0, 0.0])
    np.testing.assert_array_equal(grads[1], [[4.0]])


def test_clip_grad_norm_does_not_overflow_float32():
    grads = [np.full(4, 1e30, np.float32)]  # each square overflows float32
    assert clip_grad_norm(grads, max_norm=1.0) == pytest.approx(2e30, rel=1e-6)
    assert float(np.linalg.norm(grads[0].astype(np.float64))) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_leaves_non_finite_gradients_for_the_caller():
    grads = [np.array([np.inf, 1.0])]
    assert clip_grad_norm(grads, max_norm=1.0) == math.inf
    np.testing.assert_array_equal(grads[0], [np.inf, 1.0])


def test_clip_grad_value_clamps_in_place():
    grads = [np.array([-3.0, 0.5]), np.array([[2.0]])]
    assert clip_grad_value(grads, clip_value=1.0) == 3.0
    np.testing.assert_array_equal(grads[0], [-1.0, 0.5])
    np.testing.assert_array_equal(grads[1], [[1.0]])
    assert clip_grad_value(grads, clip_value=5.0) == 1.0
    np.testing.assert_array_equal(grads[0], [-1.0, 0.5])


@pytest.mark.parametrize("clip, name", [(clip_grad_norm, "max_norm"), (clip_grad_value, "clip_value")])
def test_clip_threshold_must_be_positive(clip, name):
    with pytest.raises(ValueError, match=name):
        clip([np.ones(2)], 0.0)


def test_optim_imports_without_nn():
    code = "import sys, backprop_cli.optim; sys.exit('backprop_cli.nn' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


# --------------------------------------------------------------------------- PyTorch's forms
def test_optimizers_take_a_model_its_parameters_the_pair_or_the_two_lists():
    from backprop_cli import nn
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU(), nn.Linear(2, 1, rng=1))
    params, grads = model.parameters()
    for opt in (SGD(model), SGD(model.parameters()), SGD(params, grads), SGD(*model.parameters(), 0.1),
                SGD(model.named_parameters()), Adam(model, 0.1), RMSprop(params, grads, lr=0.1)):
        assert all(p is q for p, q in zip(opt.params, params)) and all(g is h for g, h in zip(opt.grads, grads))
    assert SGD(params, grads, 0.1, 0.9).momentum == 0.9             # after the two lists: PyTorch's order
    single = nn.Linear(2, 2, rng=0)                                   # two parameters: two named triples
    assert SGD(single.named_parameters()).params[1] is single.bias
    assert SGD(model).lr == 1e-3                                     # PyTorch's default
    with pytest.raises(ValueError, match="parameter groups .* are not supported"):
        SGD([{"params": params}], lr=0.1)
    with pytest.raises(ValueError, match="expected model.parameters"):
        SGD(params)
    with pytest.raises(ValueError, match="differentiable=True is not supported"):
        Adam(model, differentiable=True)


def test_amsgrad_state_is_saved_and_restored():
    w0, step_grads = _problem()
    params, grads = [w.copy() for w in w0], [np.zeros_like(w) for w in w0]
    opt = Adam(params, grads, lr=0.1, amsgrad=True)
    _run(opt, grads, step_grads[:3])
    state = opt.state_dict()
    assert "max_exp_avg_sq.0" in state and "max_exp_avg_sq.0" not in Adam(params, grads).state_dict()
    other = Adam([p.copy() for p in params], [np.zeros_like(g) for g in grads], lr=0.1, amsgrad=True)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.state["max_exp_avg_sq"][1], opt.state["max_exp_avg_sq"][1])


def _sgd(lr=1.0, **kw):
    return SGD([np.zeros(2)], [np.zeros(2)], lr=lr, **kw)


def test_a_schedule_built_on_an_optimizer_steps_it_as_pytorchs_do():
    opt = _sgd(0.8)
    schedule = StepLR(opt, 2, gamma=0.5)
    seen = []
    for _ in range(5):
        seen.append(opt.lr)
        schedule.step()
    assert seen == [0.8, 0.8, 0.4, 0.4, 0.2] and schedule.get_last_lr() == [0.2]       # epoch 5 after 5 steps
    assert StepLR(_sgd(0.8), 2, 0.5, last_epoch=3).optimizer.lr == 0.2      # resumed at epoch 4
    with pytest.raises(TypeError, match=r"StepLR.step\(\) needs the schedule built on an optimizer"):
        StepLR(0.1, 2).step()


COS = [0.5 + 0.5 * math.cos(math.pi * e / 4) for e in range(13)]


@pytest.mark.parametrize("schedule, epoch, expected", [
    (CosineLR(1.0, t_max=4, cycle=True), 4, 0.0),
    (CosineLR(1.0, t_max=4, cycle=True), 6, COS[6]),
    (CosineLR(1.0, t_max=4, cycle=True), 8, 1.0),
    (CosineLR(1.0, t_max=4), 6, 0.0),                                 # the default stays at min_lr
    (LinearLR(0.1, start_factor=0.1, total_iters=4), 0, 0.01),
    (LinearLR(0.1, start_factor=0.1, total_iters=4), 1, 0.0325),
    (LinearLR(0.1, start_factor=0.1, total_iters=4), 9, 0.1),
    (LinearLR(1.0, 1.0, 0.5, 2), 1, 0.75),
    # max_lr 1, 10 steps: up over steps 0..2 (0.3 * 10 - 1) from 1/25, down to 1/25/1e4 at step 9
    (OneCycleLR(1.0, 1.0, 10), 0, 0.04),
    (OneCycleLR(1.0, 1.0, 10), 2, 1.0),
    (OneCycleLR(1.0, 1.0, 10), 9, 4e-6),
    (OneCycleLR(1.0, 1.0, 10, anneal_strategy="linear"), 1, 0.52),
])
def test_new_schedule_values(schedule, epoch, expected):
    assert schedule.lr_at(epoch) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_one_cycle_cycles_the_momentum_and_refuses_an_optimizer_without_any():
    opt = _sgd(0.1, momentum=0.9)
    schedule = OneCycleLR(opt, max_lr=1.0, total_steps=10)
    assert opt.momentum == 0.95 and opt.lr == pytest.approx(0.04)
    schedule.step()
    schedule.step()
    assert opt.momentum == pytest.approx(0.85) and opt.lr == pytest.approx(1.0)
    adam = Adam([np.zeros(2)], [np.zeros(2)], lr=0.1)
    OneCycleLR(adam, 1.0, 10)
    assert adam.betas == (0.95, 0.999)
    with pytest.raises(ValueError, match="cycle_momentum needs an optimizer with momentum"):
        OneCycleLR(_sgd(), 1.0, 10)
    OneCycleLR(_sgd(), 1.0, 10, cycle_momentum=False)
    with pytest.raises(ValueError, match="past total_steps=10"):
        OneCycleLR(0.1, 1.0, 10).lr_at(11)
