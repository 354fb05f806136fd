"""A sweep's Optuna study: its storage, sampler and pruner, its trials as rows, the budget, recovery.

The study lives in a storage that any number of ``backprop sweep`` processes share: by default an
Optuna journal file in the sweep directory (``runs/<sweep>/study.journal``); with ``--storage``,
any Optuna RDB URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``), a ``redis://`` journal,
or the path of a journal file.

Bookkeeping uses the trials' user attributes (``backprop:*``): which worker runs a trial (host and
process) and when it was last seen (``heartbeat``); the error of a trial that failed on its own;
``retry_of`` and ``attempt`` for a retry of an interrupted trial; ``surplus`` for a trial created
by a worker that lost the race for the last place in the budget (never run; hidden from the rows).

* **Budget**: ``trials`` results count: complete, pruned, running, and failed with an error (a
  diverged loss, a bad combination of values). An interrupted trial does not count: it is retried.
* **Recovery** (:func:`recover`): a running trial whose worker is gone (this machine: its process is
  dead; another machine: no heartbeat for ``STALE_SECONDS``) is marked failed, and every interrupted
  trial is enqueued again with the same values, up to ``MAX_ATTEMPTS`` times; the retry resumes from
  the interrupted trial's ``last.npz`` when it is on this machine.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:                                      # Windows
    fcntl = None

from ..engine.checkpoint import atomic_write
from ..errors import BackpropError, ConfigError, install_hint
from .spec import Distribution, Sweep

#: The default storage: an Optuna journal file in the sweep directory.
JOURNAL = "study.journal"
#: A worker records a heartbeat on its trial this often (seconds) ...
HEARTBEAT_SECONDS = 20.0
#: ... and another machine's running trial without one for this long is taken as interrupted.
STALE_SECONDS = 180.0
#: An interrupted trial is tried again until it has been tried this many times.
MAX_ATTEMPTS = 3

WORKER, HEARTBEAT, ERROR, RETRY_OF, ATTEMPT, SURPLUS = (
    "backprop:worker", "backprop:heartbeat", "backprop:error", "backprop:retry_of", "backprop:attempt",
    "backprop:surplus")


def optuna_module():
    """Optuna, or one clear line naming the extra that brings it."""
    try:
        import optuna
    except ImportError:
        raise BackpropError(f"backprop sweep needs Optuna, which is not installed: {install_hint('sweep')}") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


# =========================================================================== storage and study
def storage_text(sweep: Sweep) -> str:
    """The storage as the user names it: ``--storage``, else the sweep directory's journal file."""
    return sweep.storage or str(sweep.directory / JOURNAL)


def open_storage(sweep: Sweep, *, create: bool):
    """The study's storage; one ConfigError (``--storage: cannot open ...``) when it cannot be opened."""
    optuna = optuna_module()
    url = storage_text(sweep)
    where = "--storage" if sweep.storage else None
    try:
        if "://" not in url:
            path = Path(url)
            if not create and not path.exists():
                raise ConfigError(f"no sweep has run here yet: {path} does not exist (start it with "
                                  f"backprop sweep {sweep.file})", where=where)
            if not path.parent.is_dir():
                if sweep.storage:
                    raise ConfigError(f"cannot open {url}: no such directory {path.parent}", where=where)
                path.parent.mkdir(parents=True, exist_ok=True)
            from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
            lock = FileLock(str(path)) if fcntl is not None else JournalFileOpenLock(str(path))
            return optuna.storages.journal.JournalStorage(JournalFileBackend(str(path), lock))
        if url.startswith(("redis://", "rediss://", "unix://")):
            from optuna.storages.journal import JournalRedisBackend
            return optuna.storages.journal.JournalStorage(JournalRedisBackend(url))
        return optuna.storages.RDBStorage(url)
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - SQLAlchemy, a driver, redis, the filesystem: all say why
        reason = " ".join(str(err).split())
        raise ConfigError(f"cannot open {url}: {type(err).__name__}: {reason[:300]}", where="--storage") from None


class FileLock:
    """The lock of a journal file, held with ``flock``: the kernel drops it when its holder dies, so a
    worker killed while appending leaves nothing behind (Optuna's lock files are then waited out for
    30 seconds). Used where ``fcntl`` exists; elsewhere Optuna's own lock file."""

    def __init__(self, journal: str) -> None:
        self.path = journal + ".lock"
        self._threads = threading.Lock()             # a worker's heartbeat thread writes too
        self._fd: int | None = None

    def acquire(self) -> bool:
        self._threads.acquire()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            self._threads.release()
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        self._threads.release()


def open_study(sweep: Sweep, *, create: bool = True, worker: int = 0):
    """The sweep's study (created on first use: then a grid's points are enqueued, shuffled by the
    seed), with the sampler and pruner of the sweep file; ``worker`` picks the sampler's stream.

    A study started from a different sweep (another space, metric, direction, sampler or base config)
    is refused, naming what differs.
    """
    optuna = optuna_module()
    storage = open_storage(sweep, create=create)
    kwargs = dict(study_name=sweep.study, storage=storage, pruner=_pruner(sweep))
    signature = sweep.signature()
    study = None
    if create:
        try:
            study = optuna.create_study(direction=sweep.direction, **kwargs)
        except optuna.exceptions.DuplicatedStudyError:
            pass
        else:
            _start(sweep, study, signature)
    if study is None:
        try:
            study = optuna.load_study(**kwargs)
        except KeyError:
            raise ConfigError(f"no study {sweep.study!r} in {storage_text(sweep)}; start it with "
                              f"backprop sweep {sweep.file}", where="--study" if sweep.storage else None) from None
    _check_signature(sweep, study.user_attrs.get("backprop:signature"), signature)
    study.sampler = _sampler(sweep, worker, len(study.get_trials(deepcopy=False)))
    return study


def _start(sweep: Sweep, study, signature: dict) -> None:
    """A new study records what it was started from; a grid's points go in its queue, shuffled by the seed."""
    study.set_user_attr("backprop:signature", signature)
    if sweep.spec.sampler.name == "grid":
        points = sweep.grid
        random.Random(sweep.spec.sampler.seed).shuffle(points)
        for params in points:
            study.enqueue_trial({k: encode(v) for k, v in params.items()})


def _check_signature(sweep: Sweep, stored: Any, mine: dict) -> None:
    if stored is None or stored == mine:
        return
    changed = [key for key in mine if stored.get(key) != mine[key]] if isinstance(stored, dict) else ["everything"]
    what = ", ".join("the base config" if k == "base" else k for k in changed)
    raise ConfigError(f"the study {sweep.study!r} in {storage_text(sweep)} was started from a different sweep "
                      f"({what} differ{'s' if len(changed) == 1 else ''}); give --study NAME for a new study, or "
                      f"use the sweep file it was started with", file=str(sweep.file))


def _sampler(sweep: Sweep, worker: int, trials: int):
    """TPE, random, or (for a grid, whose points are enqueued) random for anything not enqueued.

    Each worker draws its own stream of the file's seed, which also depends on the trials the study
    held when the worker started (a sweep continued later does not repeat its first draws), so a
    one-worker sweep is reproducible. On a shared storage the host and process are mixed in too, so
    that machines started alike do not draw alike."""
    optuna = optuna_module()
    spec = sweep.spec.sampler
    seed = spec.seed
    if seed is not None:
        import numpy as np
        mix = [seed, worker, trials] + ([abs(hash(host_id())) % 2**32, os.getpid()] if sweep.storage else [])
        seed = int(np.random.SeedSequence(mix).generate_state(1)[0])
    if spec.name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    return optuna.samplers.RandomSampler(seed=seed)


def _pruner(sweep: Sweep):
    optuna = optuna_module()
    spec = sweep.spec.pruner
    if spec.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_epochs)
    return optuna.pruners.NopPruner()


# =========================================================================== values
def encode(value: Any) -> Any:
    """A value as Optuna stores it: choices that are lists or mappings become their JSON text."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def decode(dist: Distribution, stored: Any) -> Any:
    if dist.kind == "choice":
        for value in dist.values:
            if encode(value) == stored:
                return value
    return stored


def suggest(trial, key: str, dist: Distribution) -> Any:
    """Ask the trial for a value of ``key`` from ``dist`` (a grid point or a retry gives its own)."""
    if dist.kind == "choice":
        return decode(dist, trial.suggest_categorical(key, [encode(v) for v in dist.values]))
    low, high = dist.values
    if dist.kind in ("uniform", "log_uniform"):
        return trial.suggest_float(key, low, high, log=dist.kind == "log_uniform")
    return trial.suggest_int(key, low, high, log=dist.kind == "log_int")


# =========================================================================== trials
@dataclass
class TrialRow:
    """One trial as the table and ``sweep.csv`` show it."""

    number: int
    state: str                      # complete | pruned | failed | running | waiting
    params: dict[str, Any]
    value: float | None
    seconds: float | None
    epochs: int | None = None       # epochs reported so far
    error: str | None = None
    retry_of: int | None = None
    interrupted: bool = False       # failed because its worker stopped: retried, not counted


def kind(trial) -> str:
    """What a trial is to the sweep: complete, pruned, running, waiting, failed (on its own: counted),
    interrupted (to be retried, unless it has been tried ``MAX_ATTEMPTS`` times: then failed), or surplus."""
    state = trial.state.name.lower()
    attrs = trial.user_attrs
    if attrs.get(SURPLUS):
        return "surplus"
    if state == "fail" and ERROR not in attrs:
        return "interrupted" if attrs.get(ATTEMPT, 1) < MAX_ATTEMPTS else "failed"
    return {"fail": "failed"}.get(state, state)


def counts(trial) -> bool:
    """Whether the trial takes a place in the budget."""
    return kind(trial) in ("complete", "pruned", "running", "failed")


def rows(sweep: Sweep, trials) -> list[TrialRow]:
    """Every trial that started (not the surplus ones, nor those still waiting in the queue), in number
    order; an interrupted trial shows as failed, naming its retry."""
    out, now = [], time.time()
    retries = {t.user_attrs[RETRY_OF]: t.number for t in trials if RETRY_OF in t.user_attrs}
    for t in sorted(trials, key=lambda t: t.number):
        k = kind(t)
        if k in ("surplus", "waiting"):
            continue
        params = {key: decode(d, t.params[key]) for key, d in sweep.spec.space.items() if key in t.params}
        start, end = t.datetime_start, t.datetime_complete
        seconds = (end - start).total_seconds() if start and end else now - start.timestamp() if start else None
        steps = t.intermediate_values
        value = t.value if k == "complete" else steps[max(steps)] if steps else None
        error = t.user_attrs.get(ERROR)
        if k == "interrupted":
            error = "interrupted" + (f"; retried as trial {retries[t.number]}" if t.number in retries else "")
        out.append(TrialRow(t.number, "failed" if k == "interrupted" else k, params, value, seconds,
                            max(steps) if steps else None, error, t.user_attrs.get(RETRY_OF), k == "interrupted"))
    return out


def best_row(sweep: Sweep, table: list[TrialRow]) -> TrialRow | None:
    done = [r for r in table if r.state == "complete" and r.value is not None]
    if not done:
        return None
    pick = max if sweep.direction == "maximize" else min
    return pick(done, key=lambda r: r.value)


def write_csv(sweep: Sweep, table: list[TrialRow]) -> Path:
    """``sweep.csv``: number, state, the parameters (dotted keys), the metric, seconds; written atomically."""
    keys = list(sweep.spec.space)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["number", "state", *keys, sweep.metric, "seconds"])
    for r in table:
        cells = [json.dumps(r.params[k]) if isinstance(r.params.get(k), (dict, list)) else r.params.get(k, "")
                 for k in keys]
        writer.writerow([r.number, r.state, *cells, "" if r.value is None else f"{r.value:.6g}",
                         "" if r.seconds is None else f"{r.seconds:.2f}"])
    path = sweep.directory / "sweep.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = buffer.getvalue().encode()
    atomic_write(path, lambda f: f.write(text))
    return path


# =========================================================================== workers and recovery
def host_id() -> str:
    """This machine: its name and, where Linux says, its boot (two containers may share a name)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}" if boot else socket.gethostname()


def process_id(pid: int | None = None) -> str:
    """``pid:start`` (the start time from /proc, where there is one): a pid reused later differs."""
    pid = os.getpid() if pid is None else pid
    try:
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        start = ""
    return f"{pid}:{start}"


def alive(process: str) -> bool:
    pid = int(process.split(":", 1)[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return process_id(pid) == process or not process.split(":", 1)[1]


def stale(trial, here: str, now: float) -> bool:
    """A running trial whose worker is gone: on this machine its process is dead; elsewhere it has sent
    no heartbeat for ``STALE_SECONDS``."""
    worker = trial.user_attrs.get(WORKER)
    if trial.state.name != "RUNNING" or not isinstance(worker, dict):
        return False
    if worker.get("host") == here:
        return not alive(worker.get("process", "0:"))
    return now - float(trial.user_attrs.get(HEARTBEAT, trial.datetime_start.timestamp())) > STALE_SECONDS


def recover(sweep: Sweep, study) -> list[int]:
    """Mark the running trials whose worker is gone as failed, and enqueue each interrupted trial again
    (once); returns the numbers of the trials enqueued for a retry."""
    optuna = optuna_module()
    here, now = host_id(), time.time()
    for t in study.get_trials(deepcopy=False):
        if stale(t, here, now):
            try:
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            except (RuntimeError, ValueError):      # it finished meanwhile
                pass
            _mark_trial_dir(sweep, t.number, "failed", "interrupted")
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RETRY_OF) for t in trials}
    again = []
    for t in trials:
        if kind(t) == "interrupted" and t.number not in retried:
            study.enqueue_trial(t.params, user_attrs={RETRY_OF: t.number, ATTEMPT: t.user_attrs.get(ATTEMPT, 1) + 1})
            again.append(t.number)
    return again


def trial_directory(sweep: Sweep, number: int) -> Path:
    return sweep.directory / f"trial-{number:04d}"


def write_trial_json(directory: Path, **fields) -> None:
    """``trial.json`` in a trial's directory: its number, state (``running``, ``complete``, ``pruned``,
    ``failed``), values, metric and whatever else is known; updated as the trial goes on."""
    path = directory / "trial.json"
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        known = {}
    text = json.dumps({**known, **fields}, indent=2, default=str) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(text.encode()))


def _mark_trial_dir(sweep: Sweep, number: int, state: str, error: str) -> None:
    directory = trial_directory(sweep, number)
    if directory.is_dir():
        write_trial_json(directory, state=state, error=error)
