"""Running a sweep on this machine: :func:`run_sweep` starts the workers and follows the study until
they are done; :func:`sweep_status` reads a sweep's table without running anything.

``run_sweep`` checks the sweep file and the space against the base config, opens (or creates) the
study, recovers what an earlier, killed sweep left running (:func:`~.study.recover`), and starts
``--workers`` processes (default: the cores this process may use over the BLAS threads each worker
gets, ``OPENBLAS_NUM_THREADS`` and the like, else 1). Each worker runs with that many BLAS threads. While
they run, the study is read every ``POLL_SECONDS``: ``sweep.csv`` is rewritten whenever a trial
changes state and ``on_update`` sees every read. A worker that dies (killed, out of memory) is
replaced while the budget is not spent, and every ``RECOVER_SECONDS`` the trials of workers gone
elsewhere are recovered. Ctrl-C or SIGTERM is passed to the workers, which end their
trials after the current step; the sweep then returns with ``interrupted`` set, and the same command
continues it.

The same command on several machines against one ``--storage`` shares one study: each machine runs
its own workers, and the trials of all of them appear in every machine's table.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.environment import THREAD_VARIABLES, threads_from_environment
from ..errors import ConfigError
from .spec import Sweep, load_sweep
from .study import (JOURNAL, TrialRow, best_row, counts, open_study, recover, rows, storage_text, write_csv)
from .worker import WorkerArgs, set_parent_death_signal

POLL_SECONDS = 0.5
#: How often a running sweep looks for trials whose worker (on any machine) is gone.
RECOVER_SECONDS = 30.0


@dataclass
class SweepResult:
    """A sweep's trials and what became of the run: the best row, ``sweep.csv``, the workers started,
    the trials enqueued again after an interruption, and the signal that stopped it (if one did)."""

    sweep: Sweep
    rows: list[TrialRow]
    csv: Path | None = None
    workers: int = 0
    retried: list[int] = field(default_factory=list)
    interrupted: str | None = None
    worker_errors: list[str] = field(default_factory=list)

    @property
    def best(self) -> TrialRow | None:
        return best_row(self.sweep, self.rows)

    @property
    def storage(self) -> str:
        return storage_text(self.sweep)


def blas_threads() -> int:
    """The BLAS threads a worker gets: what ``OPENBLAS_NUM_THREADS`` (or MKL's, or ``OMP_NUM_THREADS``)
    asks for, else 1."""
    return threads_from_environment() or 1


def default_workers() -> int:
    """The cores this process may use over the BLAS threads each worker gets."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // blas_threads())


def sweep_status(path, *, storage: str | None = None, study: str | None = None) -> SweepResult:
    """The table of a sweep in progress or finished, read from its study; nothing is started or changed."""
    sweep = load_sweep(path, storage=storage, study=study)
    found = open_study(sweep, create=False)
    return SweepResult(sweep, rows(sweep, found.get_trials(deepcopy=False)))


def run_sweep(path, *, workers: int | None = None, trials: int | None = None, storage: str | None = None,
              study: str | None = None, on_update=None) -> SweepResult:
    """Run the sweep in ``path`` with ``workers`` processes until its budget is spent (see the module
    docstring); ``on_update(sweep, rows)`` is called with each read of the study."""
    sweep = load_sweep(path, trials=trials, storage=storage, study=study)
    if workers is not None and workers < 1:
        raise ConfigError(f"expected at least 1 worker, got {workers}", where="--workers")
    _refuse_foreign_trials(sweep)
    found = open_study(sweep, create=True)
    result = SweepResult(sweep, [], retried=recover(sweep, found))
    wanted = workers or default_workers()
    pool = _Pool(sweep, trials, storage, study)
    with _forward_signals(pool) as stop:
        for _ in range(min(wanted, _left(sweep, found))):
            pool.start()
        written, recovered = None, time.monotonic()
        while True:
            result.rows = rows(sweep, found.get_trials(deepcopy=False))
            states = [(r.number, r.state, r.value) for r in result.rows]
            if states != written:
                result.csv, written = write_csv(sweep, result.rows), states
            if on_update is not None:
                on_update(sweep, result.rows)
            if pool.reap() and not stop and _left(sweep, found) > 0 and pool.restarts < wanted:
                recover(sweep, found)                        # a worker died: its trial is retried
                pool.start(restart=True)
            elif time.monotonic() - recovered > RECOVER_SECONDS:
                recover(sweep, found)                        # another machine's worker may have died
                recovered = time.monotonic()
            if not pool.alive():
                break
            time.sleep(POLL_SECONDS)
        result.interrupted = stop[0] if stop else None
    recover(sweep, found)                                  # what a dead worker left running shows as failed
    result.rows = rows(sweep, found.get_trials(deepcopy=False))
    result.csv = write_csv(sweep, result.rows)
    result.workers, result.worker_errors = pool.started, pool.errors()
    return result


def _left(sweep: Sweep, study) -> int:
    return sweep.trials - sum(counts(t) for t in study.get_trials(deepcopy=False))


def _refuse_foreign_trials(sweep: Sweep) -> None:
    """Trial directories without the study they belong to would be overwritten by a new study's trials."""
    directory = sweep.directory
    if sweep.storage is None and not (directory / JOURNAL).exists() and any(directory.glob("trial-*")):
        raise ConfigError(f"{directory} holds trial directories but no {JOURNAL}: they belong to an earlier "
                          "sweep; move them away, or set output: in the sweep file for a new directory",
                          file=str(sweep.file))


class _Pool:
    """The worker processes (``python -m backprop_cli.sweep.worker``, with ``blas_threads()`` BLAS
    threads each, killed by the kernel if this process dies); each one's stderr goes to a file."""

    def __init__(self, sweep: Sweep, trials, storage, study) -> None:
        self.args = (str(sweep.file), trials, storage, study)
        self.processes: list[tuple[subprocess.Popen, object]] = []
        self.finished: list[tuple[subprocess.Popen, object]] = []
        self.started = self.restarts = 0

    def start(self, restart: bool = False) -> None:
        threads = str(blas_threads())
        env = dict(os.environ, **{name: threads for name in THREAD_VARIABLES})
        err = tempfile.TemporaryFile()
        command = WorkerArgs(*self.args, index=self.started).command()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=err, env=env,
                                   preexec_fn=set_parent_death_signal if os.name == "posix" else None)
        self.processes.append((process, err))
        self.started += 1
        self.restarts += restart

    def alive(self) -> bool:
        return any(p.poll() is None for p, _ in self.processes)

    def reap(self) -> bool:
        """Whether a worker has died since the last look (killed, or failed outside a trial)."""
        dead = [(p, e) for p, e in self.processes if p.poll() not in (0, None)]
        self.processes = [pe for pe in self.processes if pe not in dead]
        self.finished += dead
        return bool(dead)

    def signal(self, signum: int) -> None:
        for p, _ in self.processes:
            if p.poll() is None:
                try:
                    p.send_signal(signum)
                except ProcessLookupError:
                    pass

    def errors(self) -> list[str]:
        """What the workers that failed said (their last line), or how they died."""
        found = []
        for p, err in self.processes + self.finished:
            code = p.wait()
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            if code < 0:
                found.append(f"a worker was killed ({signal.Signals(-code).name})")
            elif code:
                found.append(lines[0] if lines else f"a worker exited with status {code}")
            err.close()
        return found


@contextmanager
def _forward_signals(pool: _Pool):
    """SIGINT and SIGTERM go on to the workers (which finish their step and save); the list it yields
    holds the signal's name once one came."""
    stop: list[str] = []

    def handler(signum, frame):
        if not stop:
            stop.append(signal.Signals(signum).name)
        pool.signal(signum)
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
