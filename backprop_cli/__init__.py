"""backprop: Torch7-style neural networks in numpy, trained from a YAML config.

Packages, from the bottom layer up (a layer imports only the layers below it):

* the library: :mod:`backprop_cli.nn` (modules and criterions), :mod:`backprop_cli.optim`
  (optimizers, schedules, clipping), :mod:`backprop_cli.data` (CSV, IDX, NPZ readers, normalisation);
* :mod:`backprop_cli.config`: a YAML config to validated objects, and the builder;
* :mod:`backprop_cli.engine`: the training loop, checkpoints, metrics, run directories;
* :mod:`backprop_cli.diagnostics`: gradcheck and per-layer timing;
* :mod:`backprop_cli.cli`: the ``backprop`` command.

:mod:`backprop_cli.errors` holds the error types every layer raises. Nothing is imported here, so
``backprop --help`` starts fast.
"""

__version__ = "0.1.0"
