"""Layer 2, engine: what a run does and saves (the training loop, checkpoints, metrics, run directories).

May import the library, ``config`` and ``errors``; never ``diagnostics``, ``sweep`` or ``cli``.
"""
