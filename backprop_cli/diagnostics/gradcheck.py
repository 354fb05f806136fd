"""Finite-difference gradient checking: the one implementation behind the tests and ``backprop gradcheck``.

For a module ``f`` at input ``x`` the checker compares two things per tensor (the input and every
parameter):

* numeric:  column ``i`` of the Jacobian, ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` (central
  differences in float64), projected on probe vectors ``g``;
* analytic: ``backward(x, g)`` (for the input) and the accumulated parameter gradient for each ``g``.

When the output has at most ``full_jacobian`` elements the probes are the unit vectors, so the whole
Jacobian is compared entry by entry; otherwise ``probes`` random directions are used (a wrong
gradient disagrees with them with probability one). An entry passes when its relative error
``|analytic - numeric| / max(1, |numeric|)`` is at most ``tol``.

Non-differentiable points (ReLU at 0, a tie in a max-pool window) are detected, not guessed: where
the two one-sided differences disagree by more than ``kink_tol`` the coordinate is skipped and counted.
Random layers are checked with their noise held fixed (``Dropout.hold_mask``). For a module with
parameters the checker also verifies that ``acc_grad_parameters`` accumulates (two backward calls
double the gradients) and honours ``scale``, that the engine's ``acc_grad_parameters(...,
overwrite=True)`` sets the same gradients, and that nothing is read stale from a cache: weights
changed after forward, and a ``grad_output`` changed in place between ``update_grad_input`` and
``acc_grad_parameters``, are read as they are at the call. Each verdict names the method it judges (:attr:`TensorCheck.method`), and
:func:`diagnosis` says in one line what a failed one means: which method of the module is wrong.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..engine.experiment import prepare
from ..nn.container import Sequential
from ..nn.module import Criterion, Module, acc_grad_parameters


#: The name of the check of a whole model, after its layers' checks.
END_TO_END = "model (end to end)"
#: The verdicts of :func:`check_caches`: the grad_input and the parameter gradients after a weight
#: change since forward, and the parameter gradients for a grad_output changed in place.
STALE_WEIGHTS_INPUT, STALE_WEIGHTS, CHANGED_GRAD_OUTPUT = "input, W changed", "params, W changed", "grad_output changed"


@dataclass
class TensorCheck:
    """The verdict on one tensor's gradient."""

    layer: str          # e.g. "2 Linear" or the criterion's name
    tensor: str         # "input", a parameter name, or "accumulate"
    checked: int        # coordinates compared
    total: int          # coordinates in the tensor
    skipped: int        # coordinates skipped at a kink
    max_abs_err: float
    max_rel_err: float
    worst: tuple        # index of the worst coordinate in the tensor
    passed: bool

    @property
    def method(self) -> str:
        """The method this verdict judges: ``update_grad_input`` for the input's gradient (a module's
        or a criterion's, also after a weight change), else ``acc_grad_parameters`` (the engine's
        ``overwrite`` pass included)."""
        return "update_grad_input" if self.tensor in ("input", STALE_WEIGHTS_INPUT) else "acc_grad_parameters"


def diagnoses(results: list[TensorCheck]) -> list[str]:
    """One line per failed check, naming the method to fix; the whole model's failures (which follow
    from its layers') share one line."""
    failed = [r for r in results if not r.passed]
    lines = [diagnosis(r) for r in failed if r.layer != END_TO_END]
    whole = [r.tensor for r in failed if r.layer == END_TO_END]
    if whole:
        lines.append(f"{END_TO_END}: wrong for {', '.join(whole)}; the layers that fail are the cause "
                     "(if none does, the container's backward is)")
    return lines


def diagnosis(check: TensorCheck) -> str:
    """One line on what a failed check of one module means, naming the method to fix."""
    where = f"{check.layer}: {check.method}"
    if check.tensor == "input":
        return (f"{where} is wrong: grad_input disagrees with the finite differences of forward "
                f"(worst at {check.worst}, relative error {check.max_rel_err:.2g})")
    if check.tensor == "accumulate":
        return (f"{where} overwrites the gradients instead of adding to them: two backward calls must "
                "double them (write grad += ..., not grad = ...)")
    if check.tensor.startswith("scale"):
        return f"{where} ignores scale: backward(input, grad_output, {check.tensor}) must add {check.tensor[6:]} x the gradient"
    if check.tensor == "overwrite":
        return f"{where}(overwrite=True) does not set the gradients that zero_grad_parameters() + backward give"
    if check.tensor in (STALE_WEIGHTS_INPUT, STALE_WEIGHTS):
        return (f"{where} uses weights kept from forward: after the weights change, backward must give "
                "what a forward with the new weights would")
    if check.tensor == CHANGED_GRAD_OUTPUT:
        return (f"{where} uses a grad_output kept from update_grad_input: a grad_output changed in place "
                "since must be read as it is now")
    return (f"{where} is wrong for {check.tensor}: grad_{check.tensor} disagrees with the finite differences "
            f"of forward (worst at {check.worst}, relative error {check.max_rel_err:.2g})")


def _errors(analytic: np.ndarray, numeric: np.ndarray, tol: float):
    """Per-entry absolute error ``|a - n|``, relative error ``|a - n| / max(1, |n|)`` (absolute for
    small gradients, so an exact zero does not read as 100% wrong), and the pass test ``rel <= tol``."""
    abs_err = np.abs(analytic - numeric)
    rel_err = abs_err / np.maximum(1.0, np.abs(numeric))
    return abs_err, rel_err, rel_err <= tol


def _verdict(layer, tensor, shape, coords, analytic, numeric, skipped, tol) -> TensorCheck:
    """``analytic``/``numeric``: (probes, len(coords)) arrays for the coordinates not skipped."""
    total = int(np.prod(shape))
    if analytic.size == 0:
        return TensorCheck(layer, tensor, 0, total, skipped, 0.0, 0.0, (), skipped == 0 or total == 0)
    abs_err, rel_err, ok = _errors(analytic, numeric, tol)
    _, col = np.unravel_index(int(np.argmax(rel_err)), rel_err.shape)
    worst = tuple(int(i) for i in np.unravel_index(coords[col], shape))
    return TensorCheck(layer, tensor, len(coords), total, skipped, float(abs_err.max()),
                       float(rel_err.max()), worst, bool(ok.all()))


def _pick(size: int, max_checks: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_checks is None or size <= max_checks:
        return np.arange(size)
    return np.sort(rng.choice(size, max_checks, replace=False))


def _numeric_columns(f, array: np.ndarray, coords, eps: float, kink_tol: float):
    """Central-difference Jacobian columns ``d f / d array[c]`` (flattened), and a kink mask per coordinate."""
    flat = array.reshape(-1)
    f0 = f().reshape(-1).copy()
    cols, kinks = [], []
    for c in coords:
        original = flat[c]
        flat[c] = original + eps
        f_plus = f().reshape(-1).copy()
        flat[c] = original - eps
        f_minus = f().reshape(-1).copy()
        flat[c] = original
        right, left = (f_plus - f0) / eps, (f0 - f_minus) / eps
        cols.append((f_plus - f_minus) / (2 * eps))
        kinks.append(np.max(np.abs(right - left), initial=0.0) > kink_tol * max(1.0, np.max(np.abs(cols[-1]), initial=0.0)))
    return np.array(cols).reshape(len(coords), -1), np.array(kinks, dtype=bool)


def _probes(n_out: int, full_jacobian: int, probes: int, rng) -> np.ndarray:
    """Rows are the directions ``g`` given to backward: unit vectors for small outputs, else random."""
    if n_out <= full_jacobian:
        return np.eye(n_out)
    return rng.standard_normal((probes, n_out))


def _hold_noise(module: Module) -> None:
    for m in module.modules():
        if hasattr(m, "hold_mask"):
            m.hold_mask = True


def check_module(module: Module, input: np.ndarray, *, name: str | None = None, eps: float = 1e-6,
                 tol: float = 1e-6, kink_tol: float = 1e-3, max_checks: int | None = None,
                 full_jacobian: int = 256, probes: int = 3, rng=None) -> list[TensorCheck]:
    """Check the input gradient, every parameter gradient, and accumulation of ``module`` at ``input``.

    The module is copied and converted to float64; the caller's module is left untouched.
    ``max_checks`` caps the coordinates compared per tensor (chosen at random; ``None`` = all).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    name = name or type(module).__name__
    m = copy.deepcopy(module).to(np.float64)
    x = np.array(input, dtype=np.float64)
    out = m.forward(x)
    _hold_noise(m)
    g_rows = _probes(out.size, full_jacobian, probes, rng)

    # Analytic: one backward per probe direction, parameter gradients from a zeroed start.
    named = list(m.named_parameters())
    grad_in, grad_params = [], {n: [] for n, _, _ in named}
    for g in g_rows:
        m.forward(x)
        m.zero_grad_parameters()
        grad_in.append(m.backward(x, g.reshape(out.shape)).reshape(-1).copy())
        for n, _, grad in named:
            grad_params[n].append(grad.reshape(-1).copy())

    results = []
    tensors = [(n, p, np.array(grad_params[n])) for n, p, _ in named]
    if m.differentiable_input:                          # not for index inputs (Embedding): no derivative there
        tensors.insert(0, ("input", x, np.array(grad_in)))
    for tensor, array, analytic in tensors:
        coords = _pick(array.size, max_checks, rng)
        cols, kinks = _numeric_columns(lambda: m.forward(x), array, coords, eps, kink_tol)
        keep = ~kinks
        numeric = g_rows @ cols[keep].T                       # (probes, kept coords)
        results.append(_verdict(name, tensor, array.shape, coords[keep], analytic[:, coords[keep]],
                                numeric, int(kinks.sum()), tol))
    if named:
        results += check_accumulation(m, x, name=name, rng=rng, tol=tol)
        results.append(check_parameter_pass(m, x, name=name, rng=rng, tol=tol))
        results += check_caches(m, x, name=name, tol=tol)        # its own draws: the others' stay as they were
    return results


def _agreement(name: str, tensor: str, actual: list[np.ndarray], expected: list[np.ndarray], tol: float) -> TensorCheck:
    """A verdict comparing arrays entry by entry (no finite differences: a property of the contract)."""
    a = np.concatenate([v.ravel() for v in actual])
    e = np.concatenate([v.ravel() for v in expected])
    abs_err, rel_err, ok = _errors(a, e, tol)
    return TensorCheck(name, tensor, e.size, e.size, 0, float(abs_err.max(initial=0.0)),
                       float(rel_err.max(initial=0.0)), (), bool(ok.all()))


def check_accumulation(module: Module, input: np.ndarray, *, name: str | None = None, scale: float = 0.5,
                       tol: float = 1e-6, rng=None) -> list[TensorCheck]:
    """Two verdicts on ``acc_grad_parameters``: ``accumulate``, two ``backward`` calls leave twice the
    gradients of one (and the same ``grad_input`` twice); ``scale=...``, one call with ``scale`` from
    zero leaves ``scale`` times the gradients of one with 1 (and ``grad_input`` does not change)."""
    rng = np.random.default_rng(0) if rng is None else rng
    name = name or type(module).__name__
    out = module.forward(input)
    g = rng.standard_normal(out.shape)
    grads = module.parameters()[1]
    module.zero_grad_parameters()
    gi_1 = module.backward(input, g).copy()
    once = [grad.copy() for grad in grads]
    gi_2 = module.backward(input, g).copy()
    accumulate = _agreement(name, "accumulate", grads + [gi_2], [2 * o for o in once] + [gi_1], tol)
    module.zero_grad_parameters()
    gi_s = module.backward(input, g, scale=scale)
    scaled = _agreement(name, f"scale={scale}", grads + [gi_s], [scale * o for o in once] + [gi_1], tol)
    return [accumulate, scaled]


def check_parameter_pass(module: Module, input: np.ndarray, *, name: str | None = None, scale: float = 0.5,
                         tol: float = 1e-6, rng=None) -> TensorCheck:
    """The engine's step, ``acc_grad_parameters(..., overwrite=True)`` over stale gradients, must set
    exactly the gradients ``zero_grad_parameters()`` + ``backward`` give."""
    rng = np.random.default_rng(0) if rng is None else rng
    out = module.forward(input)
    g = rng.standard_normal(out.shape)
    grads = module.parameters()[1]
    module.zero_grad_parameters()
    module.backward(input, g, scale)
    expected = [grad.copy() for grad in grads]
    for grad in grads:
        grad.fill(7.0)                                   # stale values that must be overwritten
    module.forward(input)
    acc_grad_parameters(module, input, g, scale, overwrite=True)
    return _agreement(name or type(module).__name__, "overwrite", grads, expected, tol)


def check_caches(module: Module, input: np.ndarray, *, name: str | None = None, tol: float = 1e-6,
                 rng=None) -> list[TensorCheck]:
    """What a module keeps between calls must not go stale (checked on copies; ``module`` is left as is):

    * weights changed between forward and backward (an optimizer step, a user's edit) are the ones
      backward uses: it gives what a forward with them would (for a layer; a container's inner
      outputs do depend on the weights of its forward);
    * a ``grad_output`` changed in place between ``update_grad_input`` and ``acc_grad_parameters`` is
      read as it is then: the gradients are ``backward``'s for the changed array.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    name = name or type(module).__name__
    results = []
    m = copy.deepcopy(module)
    g = rng.standard_normal(m.forward(input).shape)
    if not m.children():
        for p in m.parameters()[0]:
            p += 0.5 * rng.standard_normal(p.shape)
        fresh = copy.deepcopy(m)
        fresh.forward(input)
        want_input, got_input = _backward_from_zero(fresh, input, g), _backward_from_zero(m, input, g)
        results += [_agreement(name, STALE_WEIGHTS_INPUT, [got_input], [want_input], tol),
                    _agreement(name, STALE_WEIGHTS, m.parameters()[1], fresh.parameters()[1], tol)]
    m.forward(input)
    changed = g.copy()
    m.zero_grad_parameters()
    m.update_grad_input(input, changed)
    changed *= 3.0
    m.acc_grad_parameters(input, changed)
    got = [grad.copy() for grad in m.parameters()[1]]
    m.forward(input)
    _backward_from_zero(m, input, 3.0 * g)
    return results + [_agreement(name, CHANGED_GRAD_OUTPUT, got, m.parameters()[1], tol)]


def _backward_from_zero(module: Module, input: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``backward`` from zeroed gradients; returns a copy of its grad_input."""
    module.zero_grad_parameters()
    return module.backward(input, g).copy()


def check_criterion(criterion: Criterion, output: np.ndarray, target: np.ndarray, *, name: str | None = None,
                    eps: float = 1e-6, tol: float = 1e-6, kink_tol: float = 1e-3,
                    max_checks: int | None = None, rng=None) -> list[TensorCheck]:
    """Check ``criterion.backward(output, target)`` against the derivative of ``criterion.forward``."""
    rng = np.random.default_rng(0) if rng is None else rng
    name = name or type(criterion).__name__
    c = copy.deepcopy(criterion).to(np.float64)
    o = np.array(output, dtype=np.float64)
    t = np.array(target, dtype=np.float64) if np.issubdtype(np.asarray(target).dtype, np.floating) else target
    c.forward(o, t)
    analytic = c.backward(o, t).reshape(1, -1)
    coords = _pick(o.size, max_checks, rng)
    # reduction="none": forward gives one loss per element, backward the gradient of their sum
    cols, kinks = _numeric_columns(lambda: np.array([np.sum(c.forward(o, t))]), o, coords, eps, kink_tol)
    keep = ~kinks
    return [_verdict(name, "input", o.shape, coords[keep], analytic[:, coords[keep]], cols[keep].T,
                     int(kinks.sum()), tol)]


def check_model(model: Module, criterion: Criterion, x: np.ndarray, y: np.ndarray, *, eps: float = 1e-6,
                tol: float = 1e-6, max_checks: int | None = 64, jitter: float = 1e-2,
                rng=None) -> list[TensorCheck]:
    """Check every layer of ``model`` at the input it really receives on ``x``, the whole model end to
    end, and the criterion at the model's output (all in float64).

    Real data repeats values (blank pixels are all 0), which puts max-pooling windows exactly on ties,
    where the gradient is not defined. ``x`` is therefore moved off them by Gaussian noise of
    ``jitter`` times its standard deviation before checking.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    kw = dict(eps=eps, tol=tol, max_checks=max_checks, rng=rng)
    m = copy.deepcopy(model).to(np.float64)
    x = np.asarray(x, dtype=np.float64)
    layers = m.layers if isinstance(m, Sequential) else [m]
    if layers and layers[0].differentiable_input:       # indices (Embedding) stay whole numbers
        x = x + jitter * (x.std() or 1.0) * rng.standard_normal(x.shape)
    m.forward(x)
    _hold_noise(m)
    results = []
    inputs = m._xs if isinstance(m, Sequential) else [x]          # each use's own input
    for i, (layer, layer_input) in enumerate(zip(layers, inputs)):
        results += check_module(layer, layer_input, name=f"{i} {type(layer).__name__}", **kw)
    results += check_module(m, x, name=END_TO_END, **kw)
    results += check_criterion(criterion, m.forward(x), y, name=type(criterion).__name__, **kw)
    return results


def check_config(path, overrides=(), *, batch: int = 4, **kw) -> tuple[str, int, list[TensorCheck]]:
    """:func:`check_model` on the first ``batch`` training samples of the config at ``path``;
    returns the config's name, the number of samples checked and the results."""
    config, data, model, criterion = prepare(path, overrides)
    x, y = data.train.x[:batch], data.train.y[:batch]
    return config.name, len(x), check_model(model, criterion, x, y, **kw)


# ----------------------------------------------------------------------------- the library's own cases
# One row per case: (name, factory, input shapes[, input maker]) for modules (inputs away from zero
# unless a maker is given), (name, factory, output shape, target kind) for criterions. ``backprop gradcheck`` without a config runs them all; so does the test suite.
# Adding a module = adding a row here.

def indices(n: int, skip: int | None = None, unique: bool = False):
    """An input maker for ``MODULE_CASES``: whole-number indices in ``[0, n)`` (Embedding's input).

    Two Embedding options define a gradient that is not forward's derivative, so the finite
    differences are taken where the two agree: none of the indices is ``skip`` (the padding_idx,
    whose row gets no gradient), and with ``unique`` none repeats (scale_grad_by_freq divides by 1).
    """
    def make(rng, shape):
        pool = np.array([i for i in range(n) if i != skip])
        return rng.permutation(pool)[:int(np.prod(shape))].reshape(shape) if unique else rng.choice(pool, size=shape)
    return make


MODULE_CASES = [
    ("Linear", lambda: nn.Linear(4, 3, rng=0), [(5, 4), (1, 4)]),
    ("Linear no bias", lambda: nn.Linear(7, 2, bias=False, rng=1), [(3, 7)]),
    ("Linear xavier", lambda: nn.Linear(3, 5, init="xavier", rng=2), [(2, 3)]),
    ("Linear (N, *, in)", lambda: nn.Linear(4, 3, rng=15), [(2, 3, 4), (4,)]),
    ("Embedding", lambda: nn.Embedding(7, 3, rng=16), [(4, 5)], indices(7)),
    ("Embedding padding_idx scale_grad_by_freq",
     lambda: nn.Embedding(15, 2, padding_idx=1, scale_grad_by_freq=True, rng=17), [(3, 4)],
     indices(15, skip=1, unique=True)),
    ("Embedding _weight", lambda: nn.Embedding(3, 2, _weight=np.arange(6.0).reshape(3, 2)), [(2, 4)], indices(3)),
    ("Identity", nn.Identity, [(3, 4), (2, 3, 5)]),
    ("Reshape", lambda: nn.Reshape(2, 6), [(3, 12), (2, 3, 4)]),
    ("View", lambda: nn.View(-1), [(2, 3, 2)]),
    ("Flatten", nn.Flatten, [(2, 3, 2, 2)]),
    ("Flatten start_dim end_dim", lambda: nn.Flatten(2, 3), [(2, 3, 2, 2, 2)]),
    ("ReLU", nn.ReLU, [(4, 5), (2, 3, 3)]),
    ("ReLU inplace", lambda: nn.ReLU(inplace=True), [(3, 4)]),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.2), [(4, 5)]),
    ("LeakyReLU negative_slope inplace", lambda: nn.LeakyReLU(negative_slope=0.3, inplace=True), [(4, 5)]),
    ("ELU", lambda: nn.ELU(0.7), [(4, 5), (3, 1)]),
    ("ELU alpha inplace", lambda: nn.ELU(alpha=1.5, inplace=True), [(4, 5)]),
    ("GELU", nn.GELU, [(4, 5)]),
    ("GELU tanh", lambda: nn.GELU(approximate="tanh"), [(4, 5)]),
    ("SiLU", nn.SiLU, [(4, 5)]),
    ("Hardtanh", lambda: nn.Hardtanh(-0.5, 1.5), [(4, 5)]),
    ("Tanh", nn.Tanh, [(3, 4)]),
    ("Sigmoid", nn.Sigmoid, [(3, 4)]),
    ("SoftPlus", lambda: nn.SoftPlus(beta=2.0), [(3, 4)]),
    ("Softplus beta threshold", lambda: nn.Softplus(beta=0.5, threshold=1.0), [(3, 4)]),
    ("SoftMax", nn.SoftMax, [(3, 5), (1, 2)]),
    ("Softmax dim", lambda: nn.Softmax(dim=0), [(3, 5), (2, 3, 4)]),
    ("LogSoftMax", nn.LogSoftMax, [(3, 5), (2, 3, 2)]),
    ("LogSoftmax dim", lambda: nn.LogSoftmax(dim=-1), [(2, 3, 4), (2, 3, 2, 2)]),
    ("Dropout", lambda: nn.Dropout(0.4, rng=3), [(4, 6)]),
    ("Dropout inplace", lambda: nn.Dropout(0.3, inplace=True, rng=3), [(4, 6)]),
    ("BatchNormalization", lambda: nn.BatchNormalization(3), [(5, 3), (4, 3, 2)]),
    ("BatchNormalization eval", lambda: nn.BatchNormalization(3).evaluate(), [(5, 3)]),
    ("BatchNormalization no affine", lambda: nn.BatchNormalization(4, affine=False), [(3, 4)]),
    ("BatchNormalization momentum None", lambda: nn.BatchNormalization(3, momentum=None), [(5, 3)]),
    ("BatchNormalization no running stats", lambda: nn.BatchNormalization(3, track_running_stats=False), [(5, 3)]),
    ("BatchNormalization no running stats eval",
     lambda: nn.BatchNormalization(3, track_running_stats=False).evaluate(), [(5, 3)]),
    ("BatchNormalization no bias", lambda: nn.BatchNormalization(3, bias=False), [(4, 3, 2)]),
    ("SpatialBatchNormalization", lambda: nn.SpatialBatchNormalization(2), [(3, 2, 3, 3)]),
    ("BatchNorm2d momentum None no affine",
     lambda: nn.BatchNorm2d(2, 1e-3, None, False), [(3, 2, 2, 2)]),
    ("LayerNorm", lambda: nn.LayerNorm(4), [(3, 4), (2, 3, 4)]),
    ("LayerNorm 2-D shape", lambda: nn.LayerNorm([3, 2]), [(2, 2, 3, 2)]),
    ("LayerNorm no affine", lambda: nn.LayerNorm(5, eps=1e-3, elementwise_affine=False), [(3, 5)]),
    ("LayerNorm no bias", lambda: nn.LayerNorm(5, bias=False), [(3, 5)]),
    ("TemporalConvolution", lambda: nn.TemporalConvolution(2, 3, 3, rng=4), [(2, 2, 7), (1, 2, 3)]),
    ("TemporalConvolution s2 p1", lambda: nn.TemporalConvolution(1, 2, 5, stride=2, padding=1, rng=5),
     [(3, 1, 10)]),
    ("SpatialConvolution", lambda: nn.SpatialConvolution(2, 3, 3, rng=6), [(2, 2, 5, 4), (1, 2, 3, 3)]),
    ("SpatialConvolution no bias", lambda: nn.SpatialConvolution(3, 2, 2, bias=False, rng=14), [(1, 3, 4, 5)]),
    ("SpatialConvolution s2 p1", lambda: nn.SpatialConvolution(1, 2, (3, 2), stride=2, padding=1, rng=7),
     [(2, 1, 5, 6)]),
    ("SpatialConvolution dilation groups", lambda: nn.SpatialConvolution(4, 6, 3, 1, 2, dilation=2, groups=2, rng=18),
     [(2, 4, 6, 5)]),
    ("Conv2d", lambda: nn.Conv2d(2, 3, 3, 2, 1, rng=19), [(2, 2, 5, 5)]),
    ("Conv2d padding same even kernel", lambda: nn.Conv2d(2, 3, (2, 4), padding="same", rng=20), [(1, 2, 4, 5)]),
    ("Conv2d depthwise dilation stride", lambda: nn.Conv2d(3, 6, 3, 2, 2, (2, 1), groups=3, rng=21),
     [(2, 3, 7, 6)]),
    ("Conv2d padding valid no bias", lambda: nn.Conv2d(2, 2, 2, padding="valid", bias=False, rng=22), [(1, 2, 3, 4)]),
    ("Conv2d reflect", lambda: nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect", rng=23), [(2, 2, 4, 5)]),
    ("Conv2d replicate", lambda: nn.Conv2d(1, 2, 3, padding=2, padding_mode="replicate", rng=24), [(1, 1, 3, 4)]),
    ("Conv2d circular", lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular", groups=2, rng=25),
     [(1, 2, 4, 3)]),
    ("Conv1d", lambda: nn.Conv1d(2, 4, 3, 1, 1, rng=26), [(2, 2, 6)]),
    ("Conv1d dilation groups same reflect",
     lambda: nn.Conv1d(4, 2, 3, padding="same", dilation=2, groups=2, padding_mode="reflect", rng=27), [(2, 4, 7)]),
    ("TemporalConvolution dilation", lambda: nn.TemporalConvolution(2, 3, 3, 2, 1, dilation=3, rng=28), [(2, 2, 11)]),
    ("TemporalMaxPooling", lambda: nn.TemporalMaxPooling(2), [(2, 3, 8), (1, 2, 7)]),
    ("TemporalMaxPooling overlap", lambda: nn.TemporalMaxPooling(3, stride=2), [(2, 2, 9)]),
    ("SpatialMaxPooling", lambda: nn.SpatialMaxPooling(2), [(2, 2, 4, 4), (1, 1, 5, 5)]),
    ("SpatialMaxPooling overlap pad", lambda: nn.SpatialMaxPooling(3, stride=2, padding=1), [(2, 2, 5, 5)]),
    ("SpatialAveragePooling", lambda: nn.SpatialAveragePooling(2), [(2, 2, 4, 4)]),
    ("SpatialAveragePooling s1 p1", lambda: nn.SpatialAveragePooling(3, stride=1, padding=1), [(1, 2, 4, 3)]),
    ("MaxPool1d", lambda: nn.MaxPool1d(3, 2, 1), [(2, 2, 8)]),
    ("MaxPool1d dilation ceil_mode", lambda: nn.MaxPool1d(3, 2, 1, 2, False, True), [(2, 2, 10)]),
    ("MaxPool2d", lambda: nn.MaxPool2d(2), [(2, 2, 4, 4)]),
    ("MaxPool2d dilation", lambda: nn.MaxPool2d(2, stride=1, dilation=2), [(1, 2, 5, 6)]),
    ("MaxPool2d ceil_mode", lambda: nn.MaxPool2d(2, ceil_mode=True), [(2, 1, 5, 5)]),
    ("SpatialMaxPooling dilation ceil_mode",
     lambda: nn.SpatialMaxPooling((3, 2), (2, 1), 1, dilation=(1, 2), ceil_mode=True), [(1, 2, 6, 6)]),
    ("AvgPool1d", lambda: nn.AvgPool1d(3, 2), [(2, 2, 9)]),
    ("AvgPool1d count_include_pad=False ceil_mode",
     lambda: nn.AvgPool1d(3, 2, 1, True, False), [(2, 2, 8)]),
    ("AvgPool2d", lambda: nn.AvgPool2d(2), [(2, 2, 4, 4)]),
    ("AvgPool2d count_include_pad=False", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), [(1, 2, 5, 6)]),
    ("AvgPool2d ceil_mode divisor_override", lambda: nn.AvgPool2d(2, ceil_mode=True, divisor_override=3),
     [(1, 2, 5, 5)]),
    ("SpatialAveragePooling ceil_mode", lambda: nn.SpatialAveragePooling(3, 2, 1, ceil_mode=True), [(1, 1, 6, 6)]),
    ("AdaptiveAvgPool1d", lambda: nn.AdaptiveAvgPool1d(3), [(2, 2, 7), (1, 2, 2)]),
    ("AdaptiveAvgPool2d global", lambda: nn.AdaptiveAvgPool2d(1), [(2, 3, 4, 5)]),
    ("AdaptiveAvgPool2d (2, None)", lambda: nn.AdaptiveAvgPool2d((2, None)), [(2, 2, 5, 3)]),
    ("AdaptiveAvgPool2d (3, 2)", lambda: nn.AdaptiveAvgPool2d((3, 2)), [(1, 2, 7, 5)]),
    ("Sequential", lambda: nn.Sequential(nn.Linear(4, 5, rng=8), nn.Tanh(), nn.Linear(5, 3, rng=9),
                                         nn.LogSoftMax()), [(3, 4)]),
    ("Sequential CNN", lambda: nn.Sequential(nn.SpatialConvolution(1, 2, 3, rng=10), nn.ReLU(),
                                             nn.SpatialMaxPooling(2), nn.Flatten(), nn.Linear(8, 2, rng=11)),
     [(2, 1, 6, 6)]),
    ("Residual", lambda: nn.Residual(nn.Sequential(nn.Linear(4, 4, rng=12), nn.Tanh())), [(3, 4)]),
    ("Sequential shared Linear and Tanh", lambda: _twice(nn.Linear(4, 4, rng=15), nn.Tanh()), [(3, 4)]),
]


def _twice(*modules: Module) -> Sequential:
    """The same modules used twice in a row: ``Sequential(a, b, a, b)`` (shared weights)."""
    return Sequential(*modules, *modules)


CRITERION_CASES = [
    # (name, factory, output shape, target kind); kinds: see criterion_inputs
    ("MSECriterion", nn.MSECriterion, (4, 3), "regression"),
    ("MSECriterion sum", lambda: nn.MSECriterion(reduction="sum"), (2, 5), "regression"),
    ("ClassNLLCriterion", nn.ClassNLLCriterion, (5, 4), "class"),
    ("ClassNLLCriterion weights", lambda: nn.ClassNLLCriterion(weights=np.array([1.0, 2.0, 0.5, 3.0])),
     (6, 4), "class"),
    ("ClassNLLCriterion sum", lambda: nn.ClassNLLCriterion(reduction="sum"), (3, 4), "class"),
    ("ClassNLLCriterion ignore_index", lambda: nn.ClassNLLCriterion(ignore_index=1), (8, 3), "class"),
    ("CrossEntropyCriterion", nn.CrossEntropyCriterion, (5, 4), "class"),
    ("CrossEntropyCriterion sum", lambda: nn.CrossEntropyCriterion(reduction="sum"), (1, 3), "class"),
    ("CrossEntropyCriterion spatial", nn.CrossEntropyCriterion, (2, 3, 2, 2), "class"),
    ("CrossEntropyCriterion weights",
     lambda: nn.CrossEntropyCriterion(weights=np.array([0.5, 1.0, 2.0, 1.5])), (4, 4), "class"),
    ("NLLLoss", nn.NLLLoss, (5, 4), "class-ignore"),
    ("NLLLoss weight none", lambda: nn.NLLLoss(np.array([1.0, 2.0, 0.5]), reduction="none"), (6, 3), "class-ignore"),
    ("CrossEntropyLoss", nn.CrossEntropyLoss, (6, 4), "class-ignore"),
    ("CrossEntropyLoss label_smoothing", lambda: nn.CrossEntropyLoss(label_smoothing=0.2), (5, 4), "class"),
    ("CrossEntropyLoss weight label_smoothing ignored",
     lambda: nn.CrossEntropyLoss([0.5, 1.0, 2.0, 1.5], label_smoothing=0.1), (6, 4), "class-ignore"),
    ("CrossEntropyLoss spatial label_smoothing none",
     lambda: nn.CrossEntropyLoss(reduction="none", label_smoothing=0.3), (2, 3, 2, 2), "class-ignore"),
    ("CrossEntropyLoss sum label_smoothing", lambda: nn.CrossEntropyLoss(reduction="sum", label_smoothing=1.0),
     (3, 3), "class"),
    ("MultiMarginLoss weight", lambda: nn.MultiMarginLoss(2, 0.5, [1.0, 0.5, 2.0]), (5, 3), "class"),
    ("BCECriterion", nn.BCECriterion, (4, 3), "probability"),
    ("BCECriterion sum", lambda: nn.BCECriterion(reduction="sum"), (1, 5), "probability"),
    ("BCELoss weight none", lambda: nn.BCELoss(np.array([1.0, 2.0, 0.5]), reduction="none"), (4, 3), "probability"),
    ("BCEWithLogitsCriterion", nn.BCEWithLogitsCriterion, (4, 3), "binary"),
    ("BCEWithLogitsCriterion pos_weight",
     lambda: nn.BCEWithLogitsCriterion(pos_weight=np.array([1.0, 2.0, 3.0])), (4, 3), "binary"),
    ("BCEWithLogitsLoss weight pos_weight",
     lambda: nn.BCEWithLogitsLoss(np.array([0.5, 1.0, 2.0]), pos_weight=np.array([3.0, 1.0, 0.5])), (4, 3), "binary"),
    ("AbsCriterion", nn.AbsCriterion, (4, 3), "regression"),
    ("AbsCriterion sum", lambda: nn.AbsCriterion(reduction="sum"), (1, 3), "regression"),
    ("SmoothL1Criterion", nn.SmoothL1Criterion, (5, 3), "regression"),
    ("SmoothL1Criterion beta 0.5 sum", lambda: nn.SmoothL1Criterion(beta=0.5, reduction="sum"), (3, 3), "regression"),
    ("SmoothL1Loss beta 2 none", lambda: nn.SmoothL1Loss(reduction="none", beta=2.0), (3, 3), "regression"),
    ("HuberLoss", nn.HuberLoss, (4, 3), "regression"),
    ("HuberLoss delta 0.5 sum", lambda: nn.HuberLoss("sum", delta=0.5), (4, 3), "regression"),
    ("MSELoss none", lambda: nn.MSELoss(reduction="none"), (3, 2), "regression"),
    ("L1Loss size_average=False", lambda: nn.L1Loss(size_average=False), (3, 2), "regression"),
    ("MultiMarginCriterion", nn.MultiMarginCriterion, (5, 4), "class"),
    ("MultiMarginCriterion p2", lambda: nn.MultiMarginCriterion(p=2, margin=0.5), (5, 4), "class"),
    ("MultiMarginCriterion sum weights",
     lambda: nn.MultiMarginCriterion(weights=np.array([1.0, 0.5, 2.0]), reduction="sum"), (1, 3), "class"),
]


def away_from_zero(rng: np.random.Generator, shape) -> np.ndarray:
    """Standard normal values pushed out of (-0.1, 0.1), away from the kinks of ReLU-like layers."""
    x = rng.standard_normal(shape)
    return np.sign(x) * (0.1 + np.abs(x))


def criterion_inputs(rng: np.random.Generator, shape, kind: str):
    """An output and a target in the criterion's domain: ``class`` indices (``class-ignore``: a third of
    them -100, PyTorch's ignored target), ``probability`` outputs with 0/1 targets, ``binary`` 0/1
    targets, or ``regression`` values."""
    output = rng.uniform(0.05, 0.95, size=shape) if kind == "probability" else rng.standard_normal(shape)
    if kind.startswith("class"):                      # (N,) indices, or (N, d1, ...) for (N, C, d1, ...)
        target = rng.integers(0, shape[1], size=(shape[0], *shape[2:]))
        if kind == "class-ignore":
            target[rng.random(target.shape) < 1 / 3] = -100
    elif kind == "regression":
        target = rng.standard_normal(shape)
    else:
        target = (rng.random(shape) > 0.5).astype(np.float64)
    return output, target


def check_library(eps: float = 1e-6, tol: float = 1e-6) -> list[TensorCheck]:
    """Every case of the library's table, checked."""
    return [result for _, run in library_cases() for result in run(eps=eps, tol=tol)]


def library_cases():
    """Every case as ``(label, run)``; ``run(eps, tol)`` returns the case's TensorChecks."""
    cases = []
    for name, factory, shapes, *maker in MODULE_CASES:
        inputs = maker[0] if maker else away_from_zero
        for shape in shapes:
            def run(eps=1e-6, tol=1e-6, factory=factory, shape=shape, inputs=inputs):
                rng = np.random.default_rng(42)
                return check_module(factory(), inputs(rng, shape), eps=eps, tol=tol, rng=rng)
            cases.append((f"{name} {'x'.join(map(str, shape))}", run))
    for name, factory, shape, kind in CRITERION_CASES:
        def run(eps=1e-6, tol=1e-6, factory=factory, shape=shape, kind=kind):
            rng = np.random.default_rng(7)
            return check_criterion(factory(), *criterion_inputs(rng, shape, kind), eps=eps, tol=tol)
        cases.append((name, run))
    return cases
