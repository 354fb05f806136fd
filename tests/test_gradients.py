"""Every module and criterion against finite differences, from the one table in
``backprop_cli.diagnostics.gradcheck`` (MODULE_CASES, CRITERION_CASES); adding a module there adds it here."""

import numpy as np
import pytest

from backprop_cli import nn
from backprop_cli.diagnostics.gradcheck import (CRITERION_CASES, MODULE_CASES, away_from_zero, check_model,
                                                check_module, diagnoses, library_cases)

CASES = library_cases()


@pytest.mark.parametrize("run", [pytest.param(run, id=label) for label, run in CASES])
def test_gradient(run):
    results = run(eps=1e-6, tol=1e-6)
    failures = [r for r in results if not r.passed]
    assert not failures, failures
    assert results[0].checked > 0
    assert results[0].tensor == "input" or results[0].tensor == "weight" and "Embedding" in results[0].layer
    # The inputs are drawn away from kinks, so (almost) nothing is skipped.
    assert all(r.skipped <= max(1, r.total // 10) for r in results), results


def test_table_covers_every_class():
    covered = {type(row[1]()).__name__ for row in MODULE_CASES} | {type(f()).__name__ for _, f, _, _ in CRITERION_CASES}
    every = {cls.__name__ for cls in set(nn.MODULES.values()) | set(nn.CRITERIONS.values())}
    assert every - covered == set()


# ----------------------------------------------------------------------------- the checker can fail
class TransposedLinear(nn.Linear):
    """A deliberately wrong backward: the weight gradient transposed (input.T @ grad_output)."""

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        self._grads["weight"] += scale * (input.T @ grad_output)
        self._grads["bias"] += scale * grad_output.sum(axis=0)


class OverwritingLinear(nn.Linear):
    """The right gradient, assigned instead of accumulated: breaks the Torch contract."""

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        self._grads["weight"][...] = scale * (grad_output.T @ input)
        self._grads["bias"][...] = scale * grad_output.sum(axis=0)


class UnscaledLinear(nn.Linear):
    """Accumulates, but ignores scale."""

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        super().acc_grad_parameters(input, grad_output, 1.0)


class LeakyGradReLU(nn.ReLU):
    """A wrong grad_input: lets 10% of the gradient through negative inputs."""

    def update_grad_input(self, input, grad_output):
        return grad_output * np.where(input > 0, 1.0, 0.1)


class StaleLinear(nn.Linear):
    """A wrong fast path: the engine's overwriting pass adds to stale gradients instead."""

    def acc_grad_parameters(self, input, grad_output, scale=1.0, *, overwrite=False):
        super().acc_grad_parameters(input, grad_output, scale)


class CachedWeightLinear(nn.Linear):
    """A wrong cache: grad_input from the weights of the last forward."""

    def update_output(self, input):
        self._seen = self.weight.copy()
        return super().update_output(input)

    def update_grad_input(self, input, grad_output):
        return grad_output @ self._seen


class CachedGradLinear(nn.Linear):
    """A wrong cache: acc_grad_parameters reuses the grad_output update_grad_input saw, by identity."""

    def update_grad_input(self, input, grad_output):
        self._kept = (grad_output, grad_output.copy())
        return super().update_grad_input(input, grad_output)

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        kept = getattr(self, "_kept", None)
        super().acc_grad_parameters(input, kept[1] if kept and kept[0] is grad_output else grad_output, scale)


@pytest.mark.parametrize("module, width, failing_tensor", [
    (StaleLinear(3, 2, rng=0), 3, "overwrite"),
    (CachedWeightLinear(3, 2, rng=0), 3, "input, W changed"),
    (CachedGradLinear(3, 2, rng=0), 3, "grad_output changed"),
    (TransposedLinear(4, 4, rng=0), 4, "weight"),
    (OverwritingLinear(3, 2, rng=0), 3, "accumulate"),
    (UnscaledLinear(3, 2, rng=0), 3, "scale=0.5"),
    (LeakyGradReLU(), 4, "input"),
])
def test_gradcheck_catches_wrong_backward(module, width, failing_tensor):
    x = away_from_zero(np.random.default_rng(0), (5, width))
    results = {r.tensor: r for r in check_module(module, x)}
    assert not results[failing_tensor].passed
    assert results[failing_tensor].max_abs_err > 1e-3


def test_gradcheck_reports_the_worst_coordinate():
    class OneWrongBias(nn.Linear):
        def acc_grad_parameters(self, input, grad_output, scale=1.0):
            super().acc_grad_parameters(input, grad_output, scale)
            self._grads["bias"][2] += scale

    results = {r.tensor: r for r in check_module(OneWrongBias(3, 4, rng=0), np.ones((2, 3)))}
    assert not results["bias"].passed and results["bias"].worst == (2,)
    assert results["weight"].passed and results["input"].passed


def test_kinks_are_skipped_not_failed():
    x = np.array([[0.0, 1.0, -1.0, 0.0]])  # two coordinates exactly at ReLU's kink
    [result] = check_module(nn.ReLU(), x)
    assert result.passed and result.skipped == 2 and result.checked == 2


def test_random_probes_for_large_outputs_still_catch_errors():
    x = away_from_zero(np.random.default_rng(1), (40, 10))    # 40x10 outputs > full_jacobian=256
    good = check_module(nn.Linear(10, 10, rng=0), x, max_checks=20)
    bad = check_module(TransposedLinear(10, 10, rng=0), x, max_checks=20)
    assert all(r.passed for r in good) and good[0].checked == 20
    assert not {r.tensor: r for r in bad}["weight"].passed


@pytest.mark.parametrize("module, width, failing, says", [
    (LeakyGradReLU(), 4, {"input"}, "LeakyGradReLU: update_grad_input is wrong"),
    (TransposedLinear(4, 4, rng=0), 4, {"weight"},
     "TransposedLinear: acc_grad_parameters is wrong for weight: grad_weight disagrees"),
    (OverwritingLinear(3, 2, rng=0), 3, {"accumulate"},
     "OverwritingLinear: acc_grad_parameters overwrites the gradients instead of adding to them"),
    (UnscaledLinear(3, 2, rng=0), 3, {"scale=0.5"},
     "UnscaledLinear: acc_grad_parameters ignores scale"),
    (StaleLinear(3, 2, rng=0), 3, {"overwrite"},
     "StaleLinear: acc_grad_parameters(overwrite=True) does not set the gradients"),
    (CachedWeightLinear(3, 2, rng=0), 3, {"input, W changed"},
     "CachedWeightLinear: update_grad_input uses weights kept from forward"),
    (CachedGradLinear(3, 2, rng=0), 3, {"grad_output changed"},
     "CachedGradLinear: acc_grad_parameters uses a grad_output kept from update_grad_input"),
])
def test_gradcheck_names_the_method_to_fix(module, width, failing, says):
    results = check_module(module, away_from_zero(np.random.default_rng(0), (5, width)))
    assert {r.tensor for r in results if not r.passed} == failing
    assert says in diagnoses(results)[0]


def test_the_whole_models_failures_share_one_line():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), LeakyGradReLU(), nn.Linear(4, 2, rng=1))
    x = away_from_zero(np.random.default_rng(0), (5, 3))
    lines = diagnoses(check_model(model, nn.MSECriterion(), x, np.zeros((5, 2))))
    assert lines[0].startswith("1 LeakyGradReLU: update_grad_input is wrong")
    assert len(lines) == 2 and lines[1].startswith("model (end to end): wrong for input, 0.weight, 0.bias")
