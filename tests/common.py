"""What several test files share: the repository root, a tiny iris config, and the environment a real
``backprop`` process runs in (the source tree on its path, whatever is installed)."""

import os
from pathlib import Path

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
