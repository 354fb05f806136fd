"""What a run was computed with, so that "it trained differently on my laptop" can be answered.

Every checkpoint's meta and every run directory's ``run.json`` record :func:`environment`::

    {"backprop": "0.1.0", "python": "3.11.7 (CPython)", "numpy": "2.4.6",
     "blas": {"name": "openblas", "version": "0.3.31", "threads": 2, "source": "threadpoolctl"},
     "platform": "Linux-6.1.0-x86_64-with-glibc2.36", "command": "backprop train configs/x.yaml", "seed": 0}

The BLAS comes from ``threadpoolctl`` when it is importable (the library numpy loaded, with its
thread count), else from numpy's build configuration (no thread count unless ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS`` or ``OMP_NUM_THREADS`` sets it). Sums run in another order with another numpy or
thread count, so a resumed run may then differ in the last bits: :func:`resume_warning` says so.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np

from .. import __version__

#: The variables that set a BLAS's thread count, in the order OpenBLAS reads them.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def threads_from_environment() -> int | None:
    """The BLAS thread count the environment asks for (the first of :data:`THREAD_VARIABLES` set to a
    positive number), or None."""
    return next((int(os.environ[v]) for v in THREAD_VARIABLES if os.environ.get(v, "").isdigit()
                 and int(os.environ[v]) > 0), None)


def environment(seed: int | None = None, argv: list[str] | None = None) -> dict:
    """Versions, BLAS, platform, the command line and ``seed``: plain JSON data."""
    argv = sys.argv if argv is None else argv
    command = shlex.join([Path(argv[0]).name, *argv[1:]]) if argv else ""
    return {"backprop": __version__, "python": f"{platform.python_version()} ({platform.python_implementation()})",
            "numpy": np.__version__, "blas": blas_info(), "platform": platform.platform(), "command": command,
            "seed": seed}


def blas_info() -> dict:
    """``{"name", "version", "threads", "source"}`` of the BLAS numpy uses (None where unknown)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return _blas_from_numpy()
    libraries = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    numpy_dir = str(Path(np.__file__).parent)
    mine = [lib for lib in libraries if str(lib.get("filepath", "")).startswith(numpy_dir)] or libraries
    if not mine:
        return _blas_from_numpy()
    lib = mine[0]
    return {"name": lib.get("internal_api"), "version": lib.get("version"), "threads": lib.get("num_threads"),
            "source": "threadpoolctl"}


def _blas_from_numpy() -> dict:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):           # numpy < 1.25 has no mode="dicts"
        blas = {}
    return {"name": blas.get("name"), "version": blas.get("version"), "threads": threads_from_environment(),
            "source": "numpy build configuration"}


def describe_blas(blas: dict | None) -> str:
    """``openblas 0.3.31, 2 threads``."""
    if not blas:
        return "unknown"
    threads = blas.get("threads")
    return f"{blas.get('name') or 'unknown'} {blas.get('version') or ''}".strip() + \
        (f", {threads} thread{'s' if threads != 1 else ''}" if threads is not None else "")


def resume_warning(stored: dict | None, current: dict) -> str | None:
    """One line when a run resumes under another numpy or BLAS (library, version or thread count)
    than the checkpoint was written with; None when they agree (or the checkpoint does not say)."""
    if not isinstance(stored, dict):
        return None
    old_blas, new_blas = stored.get("blas") or {}, current.get("blas") or {}
    same_blas = all(old_blas.get(k) == new_blas.get(k) for k in ("name", "version", "threads")
                    if old_blas.get(k) is not None and new_blas.get(k) is not None)
    if stored.get("numpy") == current.get("numpy") and same_blas:
        return None
    return (f"the checkpoint was written with numpy {stored.get('numpy')} and BLAS {describe_blas(old_blas)}; "
            f"this is numpy {current.get('numpy')} with BLAS {describe_blas(new_blas)}: sums run in another "
            "order, so results may differ in the last bits from an uninterrupted run")
