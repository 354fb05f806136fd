"""What the benchmark scripts share: interleaved timing (median of repeats), machine facts, the table.

Every ratio a script reports is measured side by side in one process: each repeat runs every
contender once, in turn, so slow drift on a shared machine hits all of them alike, and the figure
is the median over the repeats. Nothing here (nor anywhere under ``benchmarks/``) is imported by
the package or its tests; PyTorch is optional and only ever a contender.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # run from a clean clone without installing the package
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


# --------------------------------------------------------------------------- command line
_process: dict[str, bool] = {}
def parser(description: str, repeats: int = 5) -> argparse.ArgumentParser:
    """The scripts' common options. Every script starts here, so this also sets the process up as the
    ``backprop`` command sets its own (its malloc policy, ``backprop_cli.engine.memory``): whatever runs in the
    process, PyTorch and the bare numpy loop included, runs under the same policy."""
    from backprop_cli.engine.memory import keep_freed_memory

    _process["keeps freed memory"] = keep_freed_memory()
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="A reduced size, as a smoke test (figures mean little).")
    p.add_argument("--repeats", type=int, default=repeats, help=f"Timed repeats per contender (default {repeats}).")
    p.add_argument("--no-torch", action="store_true", help="Skip the PyTorch rows even if torch imports.")
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="Run N busy processes beside every contender while it is timed (a shared machine).")
    return p


@contextmanager
def busy_processes(n: int):
    """``n`` processes that keep one core busy each (a Python loop), for as long as the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5 if n else 0)               # let them start spinning
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


#: Every model's epoch under ``--load`` against PyTorch's under the same load.
LOADED_TARGET = 1.2


def load_header(n: int) -> str:
    return f"{n} busy process{'es' if n != 1 else ''} beside every contender (--load {n})" if n else "quiet (--load 0)"


# --------------------------------------------------------------------------- threads and torch
def blas_threads() -> int:
    """How many threads numpy's BLAS uses (as the library reports it, ``engine.threads``; else the cores)."""
    from backprop_cli.engine.threads import blas_thread_count, usable_cpus

    return blas_thread_count() or len(usable_cpus())


def import_torch(threads: int, skip: bool = False):
    """``(torch, None)`` with ``threads`` intra-op threads, or ``(None, why)`` when it is unavailable.

    PyTorch's OpenMP threads busy-wait between parallel regions by default; on a small shared VM
    that spinning starves everything else in the process (numpy's BLAS threads included) and makes
    PyTorch itself several times slower, so they are told to sleep (``OMP_WAIT_POLICY=PASSIVE``,
    read when OpenMP starts) unless the variable is already set.
    """
    if skip:
        return None, "skipped (--no-torch)"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
    if any(r.passed is False for r in rows):
        notes = [*notes, "a target is missed: what limits it, measured, is in benchmarks/README.md "
                         "(\"Targets at the limit, and what limits them\")"]
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print()


def ratio_row(figure: str, ours: list[float], theirs: list[float], limit: float) -> Row:
    """``median(ours / theirs)`` over paired repeats, against an upper ``limit``."""
    r = median([a / b for a, b in zip(ours, theirs)])
    return Row(figure, f"{r:.3f}x", f"<= {limit:.2f}x", r <= limit)


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
    torch_text = (f"torch {torch.__version__} ({torch.get_num_threads()} threads, "
                  f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})" if torch else "torch: not used")
    malloc = "keeps freed memory, as backprop's CLI" if _process.get("keeps freed memory") else "default"
    return (f"{datetime.date.today().isoformat()}; {os.cpu_count()} cores, {cpu_model()}; "
            f"python {platform.python_version()}, numpy {np.__version__} with {blas_summary()} "
            f"({threads} BLAS threads); {torch_text}; malloc: {malloc}")


# --------------------------------------------------------------------------- the contenders
def backprop_trainer(config: dict, input_shape: tuple[int, ...]):
    """A fresh model, criterion, optimizer and trainer for ``config``, exactly as ``backprop train``
    makes them (``experiment.build`` and ``make_trainer``; no validation split)."""
    from backprop_cli.config.schema import config_from_dict
    from backprop_cli.engine.experiment import build, make_trainer

    cfg = config_from_dict(config)
    model, criterion = build(cfg, input_shape)
    return make_trainer(cfg, model, criterion)


def backprop_contender(config: dict, x, y):
    """One epoch of ``Trainer.fit`` on ``(x, y)``, a fresh trainer each time."""
    def prepare():
        trainer = backprop_trainer(config, x.shape[1:])
        return lambda: trainer.fit(x, y, epochs=1)
    return prepare


def with_threads(config: dict, threads) -> dict:
    return {**config, "training": {**config["training"], "threads": threads}}


def thread_contenders(config: dict, x, y) -> dict:
    """backprop's epoch on ``(x, y)`` with ``training.threads`` auto, 1 and every core: does ``auto``
    choose as well as the better fixed setting, quiet and under load?"""
    from backprop_cli.engine.threads import usable_cpus

    cores = len(usable_cpus())
    settings = {"threads auto": "auto", "threads 1": 1, **({f"threads {cores}": cores} if cores > 1 else {})}
    return {name: backprop_contender(with_threads(config, value), x, y) for name, value in settings.items()}


def thread_row(times: dict[str, list[float]], limit: float = 1.10) -> Row:
    """``auto``'s time over the better of the fixed settings, per repeat (median)."""
    fixed = [v for k, v in times.items() if k.startswith("threads ") and k != "threads auto"]
    r = median([a / min(f) for a, *f in zip(times["threads auto"], *fixed)])
    return Row("threads auto vs the better of " + " and ".join(k.split()[1] for k in times if k.startswith("threads ")
                                                                 and k != "threads auto"),
               f"{r:.3f}x", f"<= {limit:.2f}x", r <= limit)


def initial_weights(config: dict, input_shape) -> list[np.ndarray]:
    """The parameters backprop draws for ``config``, in ``parameters()`` order: every contender starts here."""
    params, _ = backprop_trainer(config, input_shape).model.parameters()
    return [p.copy() for p in params]


def torch_contender(torch, make_model, weights, x, y, *, batch: int, lr: float, momentum: float, seed: int,
                    loss: str):
    """One epoch of idiomatic PyTorch (``zero_grad``, ``backward``, ``step``, ``loss.item()``) on the
    same data in the same order, from the same weights; ``loss`` names a ``torch.nn.functional`` loss."""
    loss_fn = getattr(torch.nn.functional, loss)

    def prepare():
        model = make_model()
        with torch.no_grad():
            for p, w in zip(model.parameters(), weights, strict=True):
                p.copy_(torch.from_numpy(w))
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        X, Y = torch.from_numpy(x), torch.from_numpy(y)

        def run():
            perm = torch.from_numpy(shuffle_order(seed, len(x)))
            total = 0.0
            for start in range(0, len(x), batch):
                idx = perm[start:start + batch]
                opt.zero_grad(set_to_none=True)
                value = loss_fn(model(X[idx]), Y[idx])
                value.backward()
                opt.step()
                total += value.item() * len(idx)
            return model
        return run
    return prepare


def weight_drift(config: dict, torch_prepare, x, y) -> float:
    """Largest difference in any weight after one epoch on ``(x, y)``: backprop vs PyTorch."""
    trainer = backprop_trainer(config, x.shape[1:])
    trainer.fit(x, y, epochs=1)
    model = torch_prepare()()
    theirs = [p.detach().numpy() for p in model.parameters()]
    return max(float(np.max(np.abs(a - b))) for a, b in zip(trainer.model.parameters()[0], theirs))


# --------------------------------------------------------------------------- where the time goes
def layer_profile(config: dict, x, y, batches: int = 40, top: int = 12) -> list[str]:
    """Notes saying where backprop's time goes: per layer (``backprop_cli.diagnostics.profile.time_layers``, what
    ``backprop time`` shows: the engine's forward and backward), then the functions with the most time
    of their own (cProfile) over ``batches`` training steps."""
    import cProfile
    import pstats

    from backprop_cli.diagnostics.profile import time_layers

    trainer = backprop_trainer(config, x.shape[1:])
    batch = trainer.batch_size
    lines = ["per layer, ms per batch of %d (forward / backward):" % batch]
    for lt in time_layers(trainer.model, trainer.criterion, x, y, batches=batches, batch_size=batch):
        lines.append(f"  {lt.name}: {lt.forward_ms:.2f} / {lt.backward_ms:.2f}")
    sub = slice(0, batches * batch)
    trainer.fit(x[sub], y[sub], epochs=1)                       # warm
    trainer = backprop_trainer(config, x.shape[1:])
    prof = cProfile.Profile()
    prof.enable()
    trainer.fit(x[sub], y[sub], epochs=1)
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())
    lines.append(f"own time over {batches} training steps (cProfile, {total:.2f} s in all), top {top}:")
    for (file, line, func), (_, calls, own, _, _) in sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]:
        where = func if file == "~" else f"{Path(file).name}:{line} {func}"
        lines.append(f"  {where}: {1e3 * own / batches:.2f} ms per step ({100 * own / total:.0f}%), "
                     f"{calls // batches} calls")
    return lines


def load_note() -> str:
    """The load averages when the timings ended: other work on a shared machine shows up here."""
    one, five, _ = os.getloadavg()
    return f"load average at the end: {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


# --------------------------------------------------------------------------- processes
def peak_rss(cmd: list[str], **kw) -> int:
    """Peak resident set of the process ``cmd`` (bytes), from ``wait4``: that child alone."""
    with tempfile.TemporaryFile() as err:          # a file, not a pipe: the child never blocks on it
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, **kw)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
    return usage.ru_maxrss * 1024                 # kilobytes on Linux


# --------------------------------------------------------------------------- data
def shuffle_order(seed: int, n: int) -> np.ndarray:
    """The first epoch's sample order of backprop's trainer for ``seed`` (its shuffling stream)."""
    from backprop_cli.nn.init import random_streams
    return random_streams(seed).shuffle.permutation(n)


def synthetic_classes(n: int, shape: tuple[int, ...], classes: int = 10, seed: int = 0):
    """Float32 inputs ``(n, *shape)`` in [0, 1) and random int64 labels in ``[0, classes)``."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    y = rng.integers(0, classes, n)
    return x, y


def cnn_vs_torch(*, title: str, label: str, unit: str, config: dict, shape: tuple[int, ...], torch_model,
                 sizes: tuple[int, int], batch: int, target: float, repeats: int, quick_repeats: int,
                 profile_whole_epoch: bool = False, thread_share: int = 10) -> None:
    """The CNN benchmarks' one body: an epoch of ``config`` through backprop's engine against
    ``torch_model(torch)`` from the same weights in the same order, and :func:`thread_contenders` on
    1/``thread_share`` of the data, all under ``--load``; then the table. ``sizes`` is (samples, samples with
    --quick); ``target`` is the ratio to PyTorch when quiet (under load: :data:`LOADED_TARGET`)."""
    p = parser(title, repeats=repeats)
    p.add_argument("--profile", action="store_true", help="Also time each backprop layer (forward, backward).")
    args = p.parse_args()
    n = sizes[1] if args.quick else sizes[0]
    repeats = quick_repeats if args.quick else args.repeats
    threads = blas_threads()
    torch, why_not = import_torch(threads, args.no_torch)
    x, y = synthetic_classes(n, shape)
    part = n // thread_share
    contenders = {"backprop": backprop_contender(config, x, y), **thread_contenders(config, x[:part], y[:part])}
    notes = [machine_header(threads, torch), load_header(args.load),
             f"{n:,} {unit}, batch {batch}, median of {repeats} interleaved repeats; the threads rows on "
             f"{part:,} {unit}"]
    target = LOADED_TARGET if args.load else target
    optim = config["optimizer"]
    if torch is not None:
        def make(config_, x_, y_):
            double = config_["training"]["dtype"] == "float64"
            return torch_contender(torch, lambda: torch_model(torch).to(torch.float64 if double else torch.float32),
                                   initial_weights(config_, shape), x_, y_, batch=batch, lr=optim["lr"],
                                   momentum=optim["momentum"], seed=config["seed"], loss="cross_entropy")

        contenders["PyTorch"] = make(config, x, y)
        k = min(1024, n)
        config64 = {**config, "training": {**config["training"], "dtype": "float64"}}
        x64 = x[:k].astype(np.float64)
        drift32 = weight_drift(config, make(config, x[:k], y[:k]), x[:k], y[:k])
        drift64 = weight_drift(config64, make(config64, x64, y[:k]), x64, y[:k])
        notes.append(f"same math: after one epoch on {k:,} {unit}, backprop's weights differ from PyTorch's by at "
                     f"most {drift32:.1e} in float32 and {drift64:.1e} in float64 (float32 sums run in another "
                     f"order; behind max pooling, a near-tie can then send a gradient another way)")
    with busy_processes(args.load):
        t = interleaved(contenders, repeats)
    ours = t["backprop"]
    if torch is not None:
        rows = [ratio_row(f"{label} epoch vs PyTorch CPU", ours, t["PyTorch"], target)]
    else:
        rows = [Row(f"{label} epoch vs PyTorch CPU", "skipped", f"<= {target:.2f}x", None)]
        notes.append(f"PyTorch row: {why_not}")
    rows.append(thread_row(t))
    rows.append(Row(f"{label} epoch, backprop", f"{median(ours):.3f} s ({n / median(ours):,.0f} {unit}/s)"))
    notes.insert(3, "seconds per epoch, median (min-max): " + "; ".join(f"{k} {spread(v)}" for k, v in t.items()))
    notes.append(load_note())
    if args.profile:
        notes += layer_profile(config, x, y, **({"batches": len(x) // batch} if profile_whole_epoch else {}))
    print_table(title, rows, notes)
