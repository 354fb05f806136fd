"""backprop against PyTorch: every PyTorch-named class takes PyTorch's parameters in PyTorch's order
with PyTorch's defaults, and every option gives PyTorch's numbers (float64, forward and every gradient).

PyTorch is no dependency of backprop, nor of any extra: these tests run where it is installed
(``pip install torch``) and are skipped, with that reason, where it is not.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch cross-checks need torch (pip install torch); "
                                            "it is no dependency of backprop")

from backprop_cli import nn  # noqa: E402
from backprop_cli import optim  # noqa: E402
from backprop_cli.optim import schedules  # noqa: E402

torch.set_default_dtype(torch.float64)
pytestmark = [pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated:UserWarning"),
              pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step:UserWarning"),
              pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")]
TN = torch.nn
TOL = dict(rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- signatures
#: backprop's own keyword-only extras, which PyTorch does not have.
EXTRAS = {"init", "rng", "dtype", "weights", "grads", "lr_decay"}
#: PyTorch's tensor-factory arguments: backprop takes ``dtype`` by keyword (a numpy dtype) and has no device.
FACTORY = {"device", "dtype"}


def _torch_names() -> list[tuple[str, type, object]]:
    """``(name, backprop class, PyTorch class)`` for every backprop name that PyTorch has too."""
    pairs = [(name, cls, getattr(TN, name)) for name, cls in {**nn.MODULES, **nn.CRITERIONS}.items()
             if hasattr(TN, name)]
    pairs += [(name, cls, getattr(torch.optim, name)) for name, cls in optim.OPTIMIZERS.items()
              if hasattr(torch.optim, name)]
    pairs += [(name, getattr(optim, name), getattr(torch.optim.lr_scheduler, name)) for name in
              ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR",
               "ReduceLROnPlateau")]
    return pairs


def _split(sig: inspect.Signature, drop=frozenset()) -> tuple[list, dict]:
    """``([(name, default) of the positional parameters in order], {name: default of the keyword-only ones})``;
    a ``*args`` appears as ``("*", None)``."""
    positional, keyword = [], {}
    for p in sig.parameters.values():
        if p.name in drop or p.kind is p.VAR_KEYWORD:
            continue
        if p.kind is p.VAR_POSITIONAL:
            positional.append(("*", None))
        elif p.kind is p.KEYWORD_ONLY:
            keyword[p.name] = p.default
        else:
            positional.append((p.name, p.default))
    return positional, keyword


@pytest.mark.parametrize("name, ours, theirs", [pytest.param(*t, id=t[0]) for t in _torch_names()])
def test_pytorch_names_take_pytorchs_parameters_in_order_with_its_defaults(name, ours, theirs):
    their_sig = inspect.signature(theirs)
    if [p.kind for p in their_sig.parameters.values()] == [inspect.Parameter.VAR_POSITIONAL,
                                                            inspect.Parameter.VAR_KEYWORD] and name != "Identity":
        their_positional, their_keyword = [], {}         # torch.nn.Module's (*args, **kwargs): takes nothing
    else:
        their_positional, their_keyword = _split(their_sig, FACTORY)
    our_positional, our_keyword = _split(inspect.signature(ours))
    assert our_positional == their_positional
    assert {k: v for k, v in our_keyword.items() if k not in EXTRAS} == their_keyword


# --------------------------------------------------------------------------- modules
def _to_torch(a):
    return torch.tensor(np.asarray(a))


def _compare_module(ours: nn.Module, theirs, x: np.ndarray, *, training: bool = True, steps: int = 1):
    """Same weights in both, then ``steps`` forwards and one backward of a random ``grad_output``:
    the output, dLoss/dInput and every parameter gradient agree (and buffers after the forwards)."""
    ours = ours.to(np.float64).train(training)
    theirs = theirs.double().train(training)
    with torch.no_grad():
        for name, value, _ in ours.named_parameters():
            getattr(theirs, name).copy_(_to_torch(value))
    floating = x.dtype.kind == "f"
    xt = _to_torch(x).requires_grad_(floating) if floating else torch.tensor(x, dtype=torch.long)
    for _ in range(steps):                        # a clone: PyTorch's in-place layers refuse a leaf
        y, yt = ours.forward(x), theirs(xt.clone() if floating else xt)
    g = np.random.default_rng(1).standard_normal(y.shape)
    ours.zero_grad_parameters()
    gx = ours.backward(x, g)
    yt.backward(_to_torch(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    if floating:
        np.testing.assert_allclose(gx, xt.grad.numpy(), **TOL)
    for name, _, grad in ours.named_parameters():
        np.testing.assert_allclose(grad, getattr(theirs, name).grad.numpy(), **TOL, err_msg=name)
    for name, value in ours.named_buffers():
        np.testing.assert_allclose(value, getattr(theirs, name).numpy(), **TOL, err_msg=name)


def _normal(*shape):
    return np.random.default_rng(0).standard_normal(shape)


def _integers(high, *shape):
    return np.random.default_rng(0).integers(0, high, size=shape)


P = pytest.param
MODULE_CASES = [
    P(lambda: nn.Linear(4, 3, rng=0), lambda: TN.Linear(4, 3), _normal(2, 3, 4), id="Linear (N, *, in)"),
    P(lambda: nn.Linear(4, 3, False, rng=0), lambda: TN.Linear(4, 3, False), _normal(4), id="Linear 1-D no bias"),
    P(lambda: nn.Flatten(2, 3), lambda: TN.Flatten(2, 3), _normal(2, 3, 2, 2, 2), id="Flatten"),
    P(lambda: nn.ReLU(True), lambda: TN.ReLU(True), _normal(3, 4), id="ReLU inplace"),
    P(lambda: nn.LeakyReLU(0.3, True), lambda: TN.LeakyReLU(0.3, True), _normal(3, 4), id="LeakyReLU"),
    P(lambda: nn.ELU(1.5, True), lambda: TN.ELU(1.5, True), _normal(3, 4), id="ELU"),
    P(lambda: nn.Softplus(0.5, 1.0), lambda: TN.Softplus(0.5, 1.0), 3 * _normal(3, 4), id="Softplus"),
    P(nn.GELU, TN.GELU, 3 * _normal(5, 7), id="GELU"),
    P(lambda: nn.GELU("tanh"), lambda: TN.GELU("tanh"), 3 * _normal(5, 7), id="GELU tanh"),
    P(lambda: nn.SiLU(True), lambda: TN.SiLU(True), 3 * _normal(5, 7), id="SiLU"),
    P(lambda: nn.Hardtanh(-0.5, 1.5), lambda: TN.Hardtanh(-0.5, 1.5), _normal(5, 7), id="Hardtanh"),
    P(nn.Hardtanh, TN.Hardtanh, _normal(5, 7), id="Hardtanh defaults"),
    P(lambda: nn.Softmax(dim=1), lambda: TN.Softmax(dim=1), _normal(2, 3, 4, 2), id="Softmax channels"),
    P(lambda: nn.Softmax(dim=-1), lambda: TN.Softmax(dim=-1), _normal(2, 3, 4), id="Softmax last"),
    P(lambda: nn.Softmax(0), lambda: TN.Softmax(0), _normal(3, 4), id="Softmax batch axis"),
    P(lambda: nn.LogSoftmax(dim=2), lambda: TN.LogSoftmax(dim=2), _normal(2, 3, 4), id="LogSoftmax dim 2"),
    P(lambda: nn.LogSoftmax(1), lambda: TN.LogSoftmax(1), _normal(2, 3, 4, 2), id="LogSoftmax channels"),
    P(lambda: nn.BatchNorm1d(3, momentum=None), lambda: TN.BatchNorm1d(3, momentum=None), _normal(5, 3),
      id="BatchNorm1d momentum None"),
    P(lambda: nn.BatchNorm1d(3, 1e-3, None, False), lambda: TN.BatchNorm1d(3, 1e-3, None, False),
      _normal(4, 3, 2), id="BatchNorm1d cumulative no affine"),
    P(lambda: nn.BatchNorm2d(2, track_running_stats=False), lambda: TN.BatchNorm2d(2, track_running_stats=False),
      _normal(3, 2, 2, 2), id="BatchNorm2d no running stats"),
    P(lambda: nn.BatchNorm1d(3, bias=False), lambda: TN.BatchNorm1d(3, bias=False), _normal(5, 3),
      id="BatchNorm1d no bias"),
    P(lambda: nn.LayerNorm(4), lambda: TN.LayerNorm(4), _normal(3, 4), id="LayerNorm"),
    P(lambda: nn.LayerNorm([3, 2], 1e-3), lambda: TN.LayerNorm([3, 2], 1e-3), _normal(2, 5, 3, 2),
      id="LayerNorm 2-D"),
    P(lambda: nn.LayerNorm(5, elementwise_affine=False), lambda: TN.LayerNorm(5, elementwise_affine=False),
      _normal(3, 5), id="LayerNorm no affine"),
    P(lambda: nn.LayerNorm(5, bias=False), lambda: TN.LayerNorm(5, bias=False), _normal(3, 5), id="LayerNorm no bias"),
    P(lambda: nn.Embedding(7, 3, rng=0), lambda: TN.Embedding(7, 3), _integers(7, 4, 5), id="Embedding"),
    P(lambda: nn.Embedding(7, 3, padding_idx=2, scale_grad_by_freq=True, rng=0),
      lambda: TN.Embedding(7, 3, padding_idx=2, scale_grad_by_freq=True), _integers(7, 6, 5),
      id="Embedding padding_idx scale_grad_by_freq"),
    P(lambda: nn.Embedding(7, 3, -1, rng=0), lambda: TN.Embedding(7, 3, -1), _integers(7, 6, 5),
      id="Embedding padding_idx -1"),
    P(lambda: nn.MaxPool1d(3, 2, 1, 2, False, True), lambda: TN.MaxPool1d(3, 2, 1, 2, False, True),
      _normal(2, 2, 10), id="MaxPool1d dilation ceil_mode"),
    P(lambda: nn.MaxPool2d(3, 2, 1, 2), lambda: TN.MaxPool2d(3, 2, 1, 2), _normal(2, 2, 9, 8),
      id="MaxPool2d dilation"),
    P(lambda: nn.MaxPool2d(2, ceil_mode=True), lambda: TN.MaxPool2d(2, ceil_mode=True), _normal(2, 1, 5, 7),
      id="MaxPool2d ceil_mode"),
    P(lambda: nn.MaxPool2d((3, 2), (2, 1), (1, 0), (1, 2), ceil_mode=True),
      lambda: TN.MaxPool2d((3, 2), (2, 1), (1, 0), (1, 2), ceil_mode=True), _normal(1, 2, 8, 7), id="MaxPool2d pairs"),
    P(lambda: nn.AvgPool1d(3, 2, 1, True, False), lambda: TN.AvgPool1d(3, 2, 1, True, False), _normal(2, 2, 8),
      id="AvgPool1d ceil count_include_pad=False"),
    P(lambda: nn.AvgPool1d(4, 3, 2, True), lambda: TN.AvgPool1d(4, 3, 2, True), _normal(2, 2, 9),
      id="AvgPool1d ceil count_include_pad"),
    P(lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), lambda: TN.AvgPool2d(3, 2, 1, count_include_pad=False),
      _normal(1, 2, 5, 6), id="AvgPool2d count_include_pad=False"),
    P(lambda: nn.AvgPool2d(3, 2, 1, True, True), lambda: TN.AvgPool2d(3, 2, 1, True, True), _normal(1, 2, 6, 7),
      id="AvgPool2d ceil_mode"),
    P(lambda: nn.AvgPool2d(2, ceil_mode=True, divisor_override=3), lambda: TN.AvgPool2d(2, ceil_mode=True,
                                                                                        divisor_override=3),
      _normal(1, 2, 5, 5), id="AvgPool2d divisor_override"),
    P(lambda: nn.Conv2d(4, 6, 3, 1, 0, 2, rng=0), lambda: TN.Conv2d(4, 6, 3, 1, 0, 2), _normal(2, 4, 7, 8),
      id="Conv2d positional dilation"),
    P(lambda: nn.Conv2d(4, 6, 3, 2, 1, 1, 2, False, rng=0), lambda: TN.Conv2d(4, 6, 3, 2, 1, 1, 2, False),
      _normal(2, 4, 7, 8), id="Conv2d groups no bias"),
    P(lambda: nn.Conv2d(3, 6, 3, padding=2, dilation=2, groups=3, rng=0),
      lambda: TN.Conv2d(3, 6, 3, padding=2, dilation=2, groups=3), _normal(2, 3, 6, 7), id="Conv2d depthwise dilation"),
    P(lambda: nn.Conv2d(2, 3, (2, 4), padding="same", dilation=(1, 2), rng=0),
      lambda: TN.Conv2d(2, 3, (2, 4), padding="same", dilation=(1, 2)), _normal(2, 2, 5, 9), id="Conv2d same even"),
    P(lambda: nn.Conv2d(2, 3, 3, padding="same", rng=0), lambda: TN.Conv2d(2, 3, 3, padding="same"),
      _normal(2, 2, 5, 6), id="Conv2d same odd (banded)"),
    P(lambda: nn.Conv2d(2, 3, 3, padding="valid", rng=0), lambda: TN.Conv2d(2, 3, 3, padding="valid"),
      _normal(2, 2, 5, 6), id="Conv2d valid"),
    P(lambda: nn.Conv2d(2, 3, 3, 2, (1, 2), padding_mode="reflect", rng=0),
      lambda: TN.Conv2d(2, 3, 3, 2, (1, 2), padding_mode="reflect"), _normal(2, 2, 5, 6), id="Conv2d reflect"),
    P(lambda: nn.Conv2d(2, 3, 3, 1, 2, padding_mode="replicate", rng=0),
      lambda: TN.Conv2d(2, 3, 3, 1, 2, padding_mode="replicate"), _normal(2, 2, 4, 3), id="Conv2d replicate"),
    P(lambda: nn.Conv2d(2, 4, 3, 1, 1, groups=2, padding_mode="circular", rng=0),
      lambda: TN.Conv2d(2, 4, 3, 1, 1, groups=2, padding_mode="circular"), _normal(2, 2, 4, 5), id="Conv2d circular"),
    P(lambda: nn.Conv1d(4, 2, 3, 1, "same", 2, 2, padding_mode="reflect", rng=0),
      lambda: TN.Conv1d(4, 2, 3, 1, "same", 2, 2, padding_mode="reflect"), _normal(2, 4, 9), id="Conv1d all options"),
    P(lambda: nn.Conv1d(2, 3, 4, 2, 1, 3, rng=0), lambda: TN.Conv1d(2, 3, 4, 2, 1, 3), _normal(2, 2, 15),
      id="Conv1d dilation stride"),
    P(lambda: nn.AdaptiveAvgPool1d(3), lambda: TN.AdaptiveAvgPool1d(3), _normal(2, 2, 7), id="AdaptiveAvgPool1d"),
    P(lambda: nn.AdaptiveAvgPool2d(1), lambda: TN.AdaptiveAvgPool2d(1), _normal(2, 3, 4, 5), id="AdaptiveAvgPool2d 1"),
    P(lambda: nn.AdaptiveAvgPool2d((3, None)), lambda: TN.AdaptiveAvgPool2d((3, None)), _normal(2, 2, 7, 5),
      id="AdaptiveAvgPool2d (3, None)"),
    P(lambda: nn.AdaptiveAvgPool2d((4, 3)), lambda: TN.AdaptiveAvgPool2d((4, 3)), _normal(1, 2, 6, 7),
      id="AdaptiveAvgPool2d (4, 3)"),
]


@pytest.mark.parametrize("ours, theirs, x", MODULE_CASES)
def test_module_agrees_with_pytorch(ours, theirs, x):
    _compare_module(ours(), theirs(), x)


@pytest.mark.parametrize("ours, theirs, x", [
    P(lambda: nn.BatchNorm1d(3, momentum=None), lambda: TN.BatchNorm1d(3, momentum=None), _normal(5, 3), id="momentum None"),
    P(lambda: nn.BatchNorm2d(2, momentum=0.3), lambda: TN.BatchNorm2d(2, momentum=0.3), _normal(3, 2, 2, 2), id="momentum"),
])
def test_batch_norm_running_statistics_agree_with_pytorch_after_several_batches(ours, theirs, x):
    _compare_module(ours(), theirs(), x, steps=3)


def test_batch_norm_without_running_statistics_normalises_by_the_batch_in_evaluation_as_pytorch():
    _compare_module(nn.BatchNorm1d(3, track_running_stats=False), TN.BatchNorm1d(3, track_running_stats=False),
                    _normal(5, 3), training=False)


# --------------------------------------------------------------------------- criterions
def _targets(high, *shape, ignore=False):
    t = _integers(high, *shape)
    if ignore:
        t[np.random.default_rng(3).random(t.shape) < 0.3] = -100
    return t


W4 = [0.5, 1.0, 2.0, 1.5]
CRITERION_CASES = [
    P(lambda: nn.CrossEntropyLoss(), lambda: TN.CrossEntropyLoss(), _normal(8, 4), _targets(4, 8, ignore=True),
      id="CrossEntropyLoss ignores -100"),
    P(lambda: nn.CrossEntropyLoss(np.array(W4), label_smoothing=0.2),
      lambda: TN.CrossEntropyLoss(_to_torch(W4), label_smoothing=0.2), _normal(8, 4), _targets(4, 8, ignore=True),
      id="CrossEntropyLoss weight label_smoothing ignored"),
    P(lambda: nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"),
      lambda: TN.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"), _normal(6, 3), _targets(3, 6),
      id="CrossEntropyLoss smoothing sum"),
    P(lambda: nn.CrossEntropyLoss(W4[:3], reduction="none", label_smoothing=0.3),
      lambda: TN.CrossEntropyLoss(_to_torch(W4[:3]), reduction="none", label_smoothing=0.3), _normal(2, 3, 2, 2),
      _targets(3, 2, 2, 2, ignore=True), id="CrossEntropyLoss spatial none"),
    P(lambda: nn.CrossEntropyLoss(ignore_index=1), lambda: TN.CrossEntropyLoss(ignore_index=1), _normal(7, 3),
      _targets(3, 7), id="CrossEntropyLoss ignore_index 1"),
    P(lambda: nn.NLLLoss(np.array(W4)), lambda: TN.NLLLoss(_to_torch(W4)), _normal(8, 4), _targets(4, 8, ignore=True),
      id="NLLLoss weight ignored"),
    P(lambda: nn.NLLLoss(reduction="none"), lambda: TN.NLLLoss(reduction="none"), _normal(2, 3, 4),
      _targets(3, 2, 4, ignore=True), id="NLLLoss spatial none"),
    P(lambda: nn.NLLLoss(size_average=False), lambda: TN.NLLLoss(size_average=False), _normal(6, 3), _targets(3, 6),
      id="NLLLoss size_average=False"),
    P(lambda: nn.MultiMarginLoss(2, 0.5, W4[:3]), lambda: TN.MultiMarginLoss(2, 0.5, _to_torch(W4[:3])),
      _normal(6, 3), _targets(3, 6), id="MultiMarginLoss weight"),
    P(lambda: nn.MultiMarginLoss(reduction="none"), lambda: TN.MultiMarginLoss(reduction="none"), _normal(6, 3),
      _targets(3, 6), id="MultiMarginLoss none"),
    P(lambda: nn.BCEWithLogitsLoss(np.array([0.5, 1.0, 2.0]), pos_weight=np.array([3.0, 1.0, 0.5])),
      lambda: TN.BCEWithLogitsLoss(_to_torch([0.5, 1.0, 2.0]), pos_weight=_to_torch([3.0, 1.0, 0.5])),
      _normal(4, 3), _integers(2, 4, 3).astype(float), id="BCEWithLogitsLoss weight pos_weight"),
    P(lambda: nn.BCEWithLogitsLoss(reduction="none"), lambda: TN.BCEWithLogitsLoss(reduction="none"),
      _normal(4, 3), _integers(2, 4, 3).astype(float), id="BCEWithLogitsLoss none"),
    P(lambda: nn.BCELoss(np.array([1.0, 2.0, 0.5]), reduce=False), lambda: TN.BCELoss(_to_torch([1.0, 2.0, 0.5]),
                                                                                     reduce=False),
      np.random.default_rng(0).uniform(0.05, 0.95, (4, 3)), _integers(2, 4, 3).astype(float), id="BCELoss weight none"),
    P(lambda: nn.SmoothL1Loss(beta=0.5), lambda: TN.SmoothL1Loss(beta=0.5), _normal(5, 3), _normal(5, 3) * 0.3,
      id="SmoothL1Loss beta"),
    P(lambda: nn.HuberLoss(delta=0.5), lambda: TN.HuberLoss(delta=0.5), _normal(5, 3), _normal(5, 3) * 0.3,
      id="HuberLoss delta 0.5"),
    P(lambda: nn.HuberLoss("sum", 2.0), lambda: TN.HuberLoss("sum", 2.0), 3 * _normal(5, 3), _normal(5, 3),
      id="HuberLoss sum delta 2"),
    P(lambda: nn.MSELoss(reduction="none"), lambda: TN.MSELoss(reduction="none"), _normal(3, 2), _normal(2, 3).T,
      id="MSELoss none"),
    P(lambda: nn.L1Loss(None, None, "sum"), lambda: TN.L1Loss(None, None, "sum"), _normal(3, 2), _normal(2, 3).T,
      id="L1Loss sum"),
]


@pytest.mark.parametrize("ours, theirs, output, target", CRITERION_CASES)
def test_criterion_agrees_with_pytorch(ours, theirs, output, target):
    criterion, loss_fn = ours(), theirs()
    loss, grad = criterion.forward(output, target), criterion.backward(output, target)
    ot = _to_torch(output).requires_grad_(True)
    tt = torch.tensor(target) if target.dtype.kind == "f" else torch.tensor(target, dtype=torch.long)
    lt = loss_fn(ot, tt)
    lt.sum().backward()                           # reduction="none": backward is the gradient of the sum
    np.testing.assert_allclose(loss, lt.detach().numpy(), **TOL)
    np.testing.assert_allclose(grad, ot.grad.numpy(), **TOL)


def test_every_target_ignored_gives_zero_where_pytorch_gives_nan():
    output, target = _normal(3, 4), np.full(3, -100)
    assert math.isnan(float(TN.CrossEntropyLoss()(_to_torch(output), torch.tensor(target))))
    loss = nn.CrossEntropyLoss().forward(output, target)
    assert loss == 0.0 and math.copysign(1.0, loss) == 1.0            # 0.0, never -0.0
    assert math.copysign(1.0, nn.NLLLoss().forward(output, target)) == 1.0
    np.testing.assert_array_equal(nn.CrossEntropyLoss().backward(output, target), np.zeros((3, 4)))


# --------------------------------------------------------------------------- optimizers
def _run_optimizers(ours_factory, theirs_factory, steps=6):
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    params, grads = [w.copy() for w in w0], [np.zeros_like(w) for w in w0]
    tparams = [torch.tensor(w, requires_grad=True) for w in w0]
    ours, theirs = ours_factory((params, grads)), theirs_factory(tparams)
    for _ in range(steps):
        for g, t in zip(grads, tparams):
            g[...] = rng.standard_normal(g.shape)
            t.grad = torch.tensor(g.copy())
        ours.step()
        theirs.step()
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p, t.detach().numpy(), **TOL)


@pytest.mark.parametrize("ours, theirs", [
    P(lambda p: optim.SGD(p, 0.1, 0.9, 0.0, 0.01, True, maximize=True),
      lambda t: torch.optim.SGD(t, 0.1, 0.9, 0.0, 0.01, True, maximize=True), id="SGD nesterov maximize"),
    P(lambda p: optim.SGD(p, 0.1, 0.9, 0.3), lambda t: torch.optim.SGD(t, 0.1, 0.9, 0.3), id="SGD dampening"),
    P(lambda p: optim.Adam(p, 0.05, amsgrad=True, weight_decay=0.1),
      lambda t: torch.optim.Adam(t, 0.05, amsgrad=True, weight_decay=0.1), id="Adam amsgrad"),
    P(lambda p: optim.Adam(p, 0.05, (0.8, 0.9), maximize=True), lambda t: torch.optim.Adam(t, 0.05, (0.8, 0.9),
                                                                                          maximize=True),
      id="Adam maximize"),
    P(lambda p: optim.Adam(p, 0.05, weight_decay=0.2, decoupled_weight_decay=True),
      lambda t: torch.optim.Adam(t, 0.05, weight_decay=0.2, decoupled_weight_decay=True), id="Adam decoupled"),
    P(lambda p: optim.AdamW(p, 0.05, amsgrad=True, maximize=True),
      lambda t: torch.optim.AdamW(t, 0.05, amsgrad=True, maximize=True), id="AdamW amsgrad maximize"),
    P(lambda p: optim.RMSprop(p, 0.01, 0.9, 1e-6, 0.1, 0.5, True, maximize=True),
      lambda t: torch.optim.RMSprop(t, 0.01, 0.9, 1e-6, 0.1, 0.5, True, maximize=True), id="RMSprop centered momentum"),
    P(lambda p: optim.Adagrad(p, 0.1, 0.2, 0.05, 0.1, maximize=True),
      lambda t: torch.optim.Adagrad(t, 0.1, 0.2, 0.05, 0.1, maximize=True), id="Adagrad maximize"),
])
def test_optimizer_agrees_with_pytorch(ours, theirs):
    _run_optimizers(ours, theirs)


# --------------------------------------------------------------------------- schedules
def _lrs(schedule_factory, optimizer, epochs):
    """The lr (and momentum, where cycled) of ``epochs`` epochs, stepped PyTorch's way."""
    schedule, seen = schedule_factory(optimizer), []
    for _ in range(epochs):
        group = getattr(optimizer, "param_groups", [None])[0]
        if group is None:
            seen.append((optimizer.lr, getattr(optimizer, "momentum", None), getattr(optimizer, "betas", (None,))[0]))
        else:
            seen.append((group["lr"], group.get("momentum"), group.get("betas", (None,))[0]))
        schedule.step()
    return seen


def _our_sgd(**kw):
    return optim.SGD(nn.Linear(2, 1, rng=0), **kw)


def _their_sgd(**kw):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], **kw)


@pytest.mark.parametrize("ours, theirs, epochs, make", [
    P(lambda o: schedules.CosineAnnealingLR(o, 4, 0.01), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 4, 0.01),
      19, "sgd", id="CosineAnnealingLR past T_max"),
    P(lambda o: schedules.StepLR(o, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5), 10, "sgd",
      id="StepLR"),
    P(lambda o: schedules.MultiStepLR(o, [2, 5], 0.3), lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.3),
      8, "sgd", id="MultiStepLR"),
    P(lambda o: schedules.ExponentialLR(o, 0.7), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.7), 6, "sgd",
      id="ExponentialLR"),
    P(lambda o: schedules.LinearLR(o, 0.1, 0.8, 4), lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, 0.8, 4), 8,
      "sgd", id="LinearLR"),
    P(lambda o: schedules.LinearLR(o), lambda o: torch.optim.lr_scheduler.LinearLR(o), 8, "sgd", id="LinearLR defaults"),
    P(lambda o: schedules.OneCycleLR(o, 0.5, 20), lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.5, 20), 20,
      "sgd", id="OneCycleLR cos momentum"),
    P(lambda o: schedules.OneCycleLR(o, 0.5, epochs=3, steps_per_epoch=5, anneal_strategy="linear", three_phase=True,
                                     pct_start=0.4),
      lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.5, epochs=3, steps_per_epoch=5, anneal_strategy="linear",
                                                    three_phase=True, pct_start=0.4), 15, "sgd",
      id="OneCycleLR linear three_phase"),
    P(lambda o: schedules.OneCycleLR(o, 0.02, 10, div_factor=10.0, final_div_factor=100.0),
      lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.02, 10, div_factor=10.0, final_div_factor=100.0), 10,
      "adam", id="OneCycleLR adam betas"),
])
def test_schedule_agrees_with_pytorch(ours, theirs, epochs, make):
    if make == "sgd":
        mine, their = _our_sgd(lr=0.1, momentum=0.9), _their_sgd(lr=0.1, momentum=0.9)
    else:
        mine = optim.Adam(nn.Linear(2, 1, rng=0), lr=0.01)
        their = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.01)
    got, want = _lrs(ours, mine, epochs), _lrs(theirs, their, epochs)
    np.testing.assert_allclose(np.array(got, dtype=float), np.array(want, dtype=float), rtol=1e-12, atol=1e-15)


def test_plateau_schedule_on_an_optimizer_steps_as_pytorchs():
    mine, their = _our_sgd(lr=1.0), _their_sgd(lr=1.0)
    ours = schedules.ReduceLROnPlateau(mine, factor=0.5, patience=1, threshold=0.1, threshold_mode="abs")
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(their, factor=0.5, patience=1, threshold=0.1,
                                                        threshold_mode="abs")
    for metric in [5.0, 4.0, 3.95, 3.93, 3.92, 2.0, 1.99, 1.98, 1.97]:
        ours.step(metric)
        theirs.step(metric)
        assert mine.lr == pytest.approx(their.param_groups[0]["lr"], rel=1e-12)
