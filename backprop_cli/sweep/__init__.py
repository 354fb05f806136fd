"""Layer 3, sweep: hyperparameter sweeps on Optuna, across processes and machines.

``spec`` reads and checks a sweep file (a base config and a search space over its dotted keys);
``study`` holds the Optuna side (storage, sampler, pruner, the trials as rows, budget and recovery);
``worker`` is the process that trains trials, each an ordinary run directory; ``runner`` starts the
workers on this machine and follows the study. Optuna is the optional extra ``sweep``, imported only
when a sweep runs. May import the library, ``config``, ``engine`` and ``errors``; never ``cli``.
"""
