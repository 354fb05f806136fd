"""backprop: Torch7-style neural networks in numpy, trained from a YAML config.

The library lives in :mod:`backprop_cli.nn` (modules and criterions), :mod:`backprop_cli.optim`
(optimizers and schedules), :mod:`backprop_cli.gradcheck`, :mod:`backprop_cli.train` (the engine)
and :mod:`backprop_cli.checkpoint`; :mod:`backprop_cli.cli` is the ``backprop`` command.
Nothing is imported here, so ``backprop --help`` starts fast.
"""

__version__ = "0.1.0"
