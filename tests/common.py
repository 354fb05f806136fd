"""What several test files share: the repository root, a tiny iris config, the environment a real
``backprop`` process runs in (the source tree on its path, whatever is installed), the CLI runner,
and the skip of a test whose optional extra is not installed."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backprop_cli.cli.app import app

ROOT = Path(__file__).resolve().parent.parent

TINY = """\
name: tiny
seed: 0
data:
  train: iris.csv
  validation_split: 0.2
  test: iris.csv
  normalize: standardize
model:
  - Linear: 8
  - Tanh
  - Linear: 3
  - LogSoftMax
criterion: ClassNLLCriterion
optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
training: {epochs: 3, batch_size: 16}
"""

ENV = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(ROOT))

runner = CliRunner()


def invoke(*args):
    """``backprop ARGS...`` in this process (arguments may be paths)."""
    return runner.invoke(app, [str(a) for a in args])


def missing_extra(extra: str) -> str:
    """Why a test of an optional extra is skipped: ``needs the onnx extra: pip install 'backprop-cli[onnx]'``."""
    return f"needs the {extra} extra: pip install 'backprop-cli[{extra}]'"


def needs_extra(module: str, extra: str):
    """The module ``module`` of an optional extra, or a skip of the test saying which extra brings it."""
    return pytest.importorskip(module, reason=missing_extra(extra))
