"""What the benchmark scripts share: interleaved timing (median of repeats), machine facts, the table.

Every ratio a script reports is measured side by side in one process: each repeat runs every
contender once, in turn, so slow drift on a shared machine hits all of them alike, and the figure
is the median over the repeats. Nothing here (nor anywhere under ``benchmarks/``) is imported by
the package or its tests; PyTorch is optional and only ever a contender.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import glob
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # run from a clean clone without installing the package
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


# --------------------------------------------------------------------------- command line
def parser(description: str, repeats: int = 5) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="A reduced size, as a smoke test (figures mean little).")
    p.add_argument("--repeats", type=int, default=repeats, help=f"Timed repeats per contender (default {repeats}).")
    p.add_argument("--no-torch", action="store_true", help="Skip the PyTorch rows even if torch imports.")
    return p


# --------------------------------------------------------------------------- threads and torch
def blas_threads() -> int:
    """How many threads numpy's BLAS uses (OpenBLAS asked directly; else the usual variables; else cores)."""
    libdir = Path(np.__file__).parent.parent / "numpy.libs"
    for lib in glob.glob(str(libdir / "*openblas*")):
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                     "openblas_get_num_threads"):
            if hasattr(handle, name):
                return int(getattr(handle, name)())
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def import_torch(threads: int, skip: bool = False):
    """``(torch, None)`` with ``threads`` intra-op threads, or ``(None, why)`` when it is unavailable."""
    if skip:
        return None, "skipped (--no-torch)"
    try:
        import torch
    except ImportError as err:
        return None, f"torch not importable ({err})"
    torch.set_num_threads(threads)
    return torch, None


# --------------------------------------------------------------------------- timing
def interleaved(contenders: dict[str, Callable[[], Callable[[], object]]], repeats: int,
                warmup: int = 1, pause: float = 0.2) -> dict[str, list[float]]:
    """Seconds per run of each contender, ``repeats`` times, taking turns within every repeat.

    A contender is a *preparer*: called untimed, it builds fresh state (model, optimizer) and
    returns the callable that is timed. ``warmup`` untimed rounds come first. A ``pause`` before
    each run lets the previous contender's worker threads (OpenMP, OpenBLAS) stop spinning.
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(warmup + repeats):
        for name, prepare in contenders.items():
            run = prepare()
            gc.collect()
            time.sleep(pause)
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            if round_ >= warmup:
                times[name].append(elapsed)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """``median (min-max)`` in seconds, for the notes under a table."""
    return f"{median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


# --------------------------------------------------------------------------- the table
@dataclass
class Row:
    figure: str
    measured: str
    target: str = ""
    passed: bool | None = None      # None: informational, no target

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "MISS")


def print_table(title: str, rows: list[Row], notes: list[str] = ()) -> None:
    """A Markdown table (it pastes into benchmarks/README.md as it is), then the notes."""
    head = ("Figure", "Measured", "Target", "")
    cells = [head] + [(r.figure, r.measured, r.target, r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    line = lambda c: "| " + " | ".join(s.ljust(w) for s, w in zip(c, widths)) + " |"  # noqa: E731
    print(f"\n### {title}\n")
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells[1:]:
        print(line(c))
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print()


def ratio_row(figure: str, ours: list[float], theirs: list[float], limit: float) -> Row:
    """``median(ours / theirs)`` over paired repeats, against an upper ``limit``."""
    r = median([a / b for a, b in zip(ours, theirs)])
    return Row(figure, f"{r:.2f}x", f"<= {limit:.2f}x", r <= limit)


# --------------------------------------------------------------------------- the machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_summary() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older numpy: no dict mode
        return "unknown"


def machine_header(threads: int, torch=None) -> str:
    torch_text = f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "torch: not used"
    return (f"{datetime.date.today().isoformat()}; {os.cpu_count()} cores, {cpu_model()}; "
            f"python {platform.python_version()}, numpy {np.__version__} with {blas_summary()} "
            f"({threads} BLAS threads); {torch_text}")


# --------------------------------------------------------------------------- data
def synthetic_classes(n: int, shape: tuple[int, ...], classes: int = 10, seed: int = 0):
    """Float32 inputs ``(n, *shape)`` in [0, 1) and int64 labels: learnable, so losses stay finite."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    y = rng.integers(0, classes, n)
    return x, y
