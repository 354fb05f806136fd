"""A training run: its directory of results, and starting one, new or resumed, without overwriting
anything that is not the run's own."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:                                 # Windows
    fcntl = None

from ..config.schema import DATA_FILES, Config, config_from_dict, load_config
from ..config.source import show, yaml_dump
from ..errors import CheckpointError, ConfigError
from .checkpoint import (BackgroundWrites, Checkpoint, atomic_write, check_weights, copy_file, load_checkpoint,
                         save_checkpoint)
from .environment import environment, resume_warning
from .experiment import (Data, build, check_criterion, check_output, checkpoint_contents, data_files, load_data,
                         make_trainer)
from . import tracking
from .gradients import CSV_COLUMNS, GradientFlow, csv_rows
from .metrics import Report
from .trainer import Callback, Interrupted, Trainer, measure


#: Keys a resumed run may change: how long it goes on, how often it saves, where it writes.
RESUMABLE_CHANGES = ("training.epochs", "training.checkpoint_every", "training.threads", "output")
#: And where its data files are: their contents are compared instead (:func:`changed_data`).
DATA_PATHS = tuple(f"data.{key}" for key in DATA_FILES)


@dataclass
class Run:
    """Everything ``train`` needs: the config, its data, the model, a trainer (positioned where a
    resumed run stopped) and the run directory that writes its files."""

    config: Config
    data: Data
    trainer: Trainer
    directory: RunDirectory
    warnings: list[str] = field(default_factory=list)   # for the user, once (a resume under another BLAS)

    @property
    def finished(self) -> str | None:
        """Why there is nothing left to train (a resumed run that is complete), or None."""
        trainer, epochs = self.trainer, self.config.training.epochs
        if trainer.stop_reason == "early stopping":
            return f"stopped early (epoch {trainer.epoch})"
        return f"trained {epochs} epochs (epoch {trainer.epoch})" if trainer.epoch >= epochs else None

    def train(self, callbacks: list[Callback] = ()) -> list[Scored]:
        """Train to the config's epochs, writing the run directory as epochs end, then score the weights
        on each split (:meth:`final_scores`).

        When the trainer is asked to stop (``trainer.stop_requested``), ``last.npz`` is written and
        :class:`Interrupted` raised with its ``checkpoint`` set to that file. The run directory's lock
        is released at the end, however training ends.
        """
        data, trainer = self.data, self.trainer
        final = _FinalWeights()
        tracker = tracking.TensorBoard(self.directory.path / "tensorboard") if self.config.training.tensorboard else None
        flow = [GradientFlow(trainer.model)] if self.config.training.log_gradients else []
        # the record gets its gradients first, so that the run directory and TensorBoard see them
        trainer.callbacks = [*flow, self.directory, final, *([tracker] if tracker else []), *callbacks]
        try:
            trainer.fit(data.train.x, data.train.y, *((data.val.x, data.val.y) if data.val else ()),
                        epochs=self.config.training.epochs)
        except Interrupted as stop:
            stop.checkpoint = self.directory.save(trainer, "last.npz")
            self.directory.commit()
            raise
        finally:
            self.directory.unlock()
            if tracker is not None:
                tracker.close()
        return self.final_scores(final.state)

    def write_finished(self) -> None:
        """Write the run directory of a run resumed with nothing left to train into another directory
        (a sweep's retry of a trial interrupted after its last epoch): ``last.npz``, the CSV files,
        ``config.yaml`` and ``run.json``, under the directory's lock."""
        directory, trainer = self.directory, self.trainer
        directory.lock()
        try:
            directory.save(trainer, "last.npz")
            directory.write_metrics(trainer.history)
            if any("gradients" in record for record in trainer.history):
                directory.write_gradients(trainer.history, trainer.model)
            directory.commit()
        finally:
            directory.unlock()

    def final_scores(self, last: dict[str, np.ndarray] | None = None) -> list[Scored]:
        """The scores on each split of the weights ``best.npz`` holds and of those ``last.npz`` holds
        (``last``, default the model's): two entries when they differ, else one. The model keeps the
        weights it had."""
        trainer = self.trainer
        kept = trainer.model.state_dict()
        last = kept if last is None else last
        best_epoch, epochs = trainer.best.epoch, trainer.epoch
        weights = [("last", epochs, last)]
        if trainer.best.state is not None and best_epoch != epochs:
            weights.insert(0, ("best", best_epoch, trainer.best.state))
        splits = [(name, ds) for name, ds in (("train", self.data.train), ("validation", self.data.val),
                                              ("test", self.data.test)) if ds is not None]
        scored = []
        try:
            for which, epoch, state in weights:
                trainer.model.load_state_dict(state)
                label = f"{'last = best' if which == 'last' and best_epoch == epochs else which}, epoch {epoch} of {epochs}"
                scored.append(Scored(which, epoch, label, {name: measure(trainer.model, trainer.criterion, ds.x, ds.y)
                                                            for name, ds in splits}))
        finally:
            trainer.model.load_state_dict(kept)
        return scored


@dataclass
class Scored:
    """One set of weights scored on each split: ``splits[name] = (loss, Report)``."""

    weights: str           # "best" or "last"
    epoch: int             # the epoch the weights are from
    label: str             # "best, epoch 14 of 20"
    splits: dict[str, tuple[float, Report]]


class _FinalWeights(Callback):
    """Keeps the weights training ended with (after early stopping ``fit`` gives the model the best)."""

    state: dict[str, np.ndarray] | None = None

    def on_train_end(self, trainer, reason):
        self.state = trainer.model.state_dict()


def open_run(config_path: str | Path, overrides=(), **kwargs) -> Run:
    """:func:`start_run` on the config at ``config_path`` with ``--set`` overrides."""
    return start_run(load_config(config_path, overrides), **kwargs)


def start_run(config: Config, *, out: str | Path | None = None, resume: str | Path | None = None,
              force: bool = False) -> Run:
    """Set up a run, new or resumed, refusing to overwrite another run's results unless ``force``.

    A resumed run must use the config it was trained with; only :data:`RESUMABLE_CHANGES` may differ
    (every other difference is listed in one error).
    """
    if config.training.tensorboard and not tracking.available():
        raise config.error("training.tensorboard", tracking.MISSING)
    ckpt = load_checkpoint(resume) if resume is not None else None
    if ckpt is not None:
        _check_same_config(config, ckpt)
    path = Path(out or (Path(resume).parent if resume is not None else config.run_dir))
    where = "--out" if out is not None else None          # name only the flag the user passed
    if path.exists() and not path.is_dir():
        raise _place(config, where, f"{path} is a file; expected a directory for the run")
    data = load_data(config)
    data.files = data_files(config, known=_listed(ckpt.meta.get("data_files")) if ckpt is not None else [])
    model, criterion = build(config, data.input_shape)
    check_output(config, model, data)
    check_criterion(config, model, criterion, data)
    trainer = make_trainer(config, model, criterion)
    if ckpt is not None:
        _resume_trainer(trainer, ckpt)
    resuming_here = ckpt is not None and path.resolve() == Path(resume).resolve().parent
    directory = RunDirectory(path, config, data, environment(config.seed), resumed_from=ckpt)
    try:
        directory.lock()              # before looking at what it holds: another run may be writing there
    except ConfigError as err:
        raise _place(config, where, err.detail) from None
    try:
        existing = [] if resuming_here else directory.existing()
        if existing and not force:
            hint = f", or --resume {path / 'last.npz'} to continue" if (path / "last.npz").exists() else ""
            raise _place(config, where, f"{path} already holds {', '.join(existing)}; pass --force to overwrite "
                         f"or --out DIR for a new run{hint}")
        directory.replacing = existing
        directory.remove_orphans()
    except BaseException:
        directory.unlock()
        raise
    warnings = [resume_warning(ckpt.meta.get("environment"), directory.environment),
                changed_data(ckpt, data.files)] if ckpt is not None else []
    run = Run(config, data, trainer, directory, [w for w in warnings if w])
    if run.finished:
        directory.unlock()
    return run


def _place(config: Config, flag: str | None, message: str) -> ConfigError:
    """An error about the run directory, placed at the flag that chose it, else at the config's output."""
    if flag is not None or config.output is None:
        return ConfigError(message, where=flag)
    return config.error("output", message)


def _listed(value) -> list[dict]:
    """The entries of a checkpoint's ``meta.data_files`` (nothing when it is not a list of them)."""
    return [f for f in value if isinstance(f, dict)] if isinstance(value, list) else []


def changed_data(ckpt: Checkpoint, files: list[dict]) -> str | None:
    """One line naming the data files whose contents differ from those the checkpoint's run read."""
    before = {f.get("key"): f for f in _listed(ckpt.meta.get("data_files"))}
    changed = [f"{now['key']} ({before[now['key']].get('size')} -> {now['size']} bytes, sha256 "
               f"{str(before[now['key']].get('sha256'))[:12]} -> {now['sha256'][:12]})"
               for now in files if now["key"] in before and before[now["key"]].get("sha256") != now["sha256"]]
    if not changed:
        return None
    return (f"the data changed since {ckpt.path} was written: {'; '.join(changed)}; the resumed run will not "
            "match one that was never interrupted")


def _resume_trainer(trainer: Trainer, ckpt: Checkpoint) -> None:
    """Put ``trainer`` where the checkpoint's run stopped, after checking every tensor it holds."""
    check_weights(ckpt, trainer.model.state_dict())
    for group in ("best", "optim"):
        _check_finite(ckpt, group)
    try:
        trainer.load_state_dict(ckpt.meta, ckpt.arrays)
    except KeyError as err:
        raise CheckpointError(f"cannot resume from it: entry {err} is missing", file=ckpt.path) from None
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"cannot resume from it: {err}", file=ckpt.path) from None


def _check_same_config(config: Config, ckpt: Checkpoint) -> None:
    """The config must be the run's own: every difference but :data:`RESUMABLE_CHANGES` (and the values
    derived from them, like a cosine ``t_max`` from ``training.epochs``) is listed, one per line."""
    stored = ckpt.meta.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError("it holds no config to resume", file=ckpt.path, where="meta.config")
    differences = config_differences(resumed_config(stored, config), config.dump())
    differences = [(key, *values) for key, *values in differences
                   if not key.startswith(RESUMABLE_CHANGES) and key not in DATA_PATHS]
    if not differences:
        return
    lines = [str(config.error(key, f"{theirs} in the checkpoint, {mine} here")) for key, theirs, mine in
             differences[:MAX_LISTED]]
    if len(differences) > MAX_LISTED:
        lines.append(f"... and {len(differences) - MAX_LISTED} more")
    allowed = ", ".join(RESUMABLE_CHANGES[:-1]) + f" and {RESUMABLE_CHANGES[-1]}"
    head = ConfigError(f"the config differs from the run being resumed in {len(differences)} "
                       f"place{'s' if len(differences) > 1 else ''} (only {allowed} may change, and where "
                       "the data files are):",
                       file=ckpt.path, where="--resume")
    raise ConfigError("\n".join([str(head), *lines]))


#: A resume-config mismatch lists at most this many differences, then how many more there are.
MAX_LISTED = 10


def resumed_config(stored: dict, config: Config) -> dict:
    """The checkpoint's config as this run would resolve it: the allowed changes taken from ``config``,
    and every value the stored run derived itself (``schedule.t_max`` from ``training.epochs``) derived
    again, when ``config`` derives it too. Plain data, as :meth:`Config.dump` gives it."""
    flat = _flatten(stored)
    given = {k: v for k, v in config.derived.items() if k in flat}
    try:
        rederived = _flatten(config_from_dict(_assign(stored, given)).dump())
    except ConfigError:                              # an invalid stored config: compare it as it is
        return stored
    derived = {k: v for k, v in given.items() if rederived.get(k) == flat[k]}
    mine = _flatten(config.dump())
    allowed = {k: mine[k] for k in mine if k.startswith(RESUMABLE_CHANGES) or k in DATA_PATHS}
    try:
        return config_from_dict(_assign(stored, {**derived, **allowed})).dump()
    except ConfigError:
        return stored


def config_differences(theirs, mine, path: str = "") -> list[tuple[str, str, str]]:
    """``(dotted key, their value, my value)`` for every place two dumped configs differ, each value as
    YAML shows it. A section whose ``name`` differs (``optimizer: sgd`` against ``adam``) is one
    difference, not one per option that only one of them has."""
    if isinstance(theirs, dict) and isinstance(mine, dict):
        if "name" in theirs and "name" in mine and theirs["name"] != mine["name"] and path:
            return [(f"{path}.name", show(theirs["name"]), show(mine["name"]))]
        if set(theirs) != set(mine) and len(theirs) == len(mine) == 1:     # another layer: {Linear: ..}
            return [(path, show(theirs), show(mine))]
        found = []
        for key in list(theirs) + [k for k in mine if k not in theirs]:
            here = f"{path}.{key}" if path else str(key)
            if key not in mine or key not in theirs:
                found.append((here, show(theirs[key]) if key in theirs else "not set",
                              show(mine[key]) if key in mine else "not set"))
            else:
                found += config_differences(theirs[key], mine[key], here)
        return found
    if isinstance(theirs, list) and isinstance(mine, list):
        found = [] if len(theirs) == len(mine) else [(path, f"{len(theirs)} items", f"{len(mine)} items")]
        for i, (a, b) in enumerate(zip(theirs, mine)):
            found += config_differences(a, b, f"{path}.{i}")
        return found
    return [] if theirs == mine else [(path, show(theirs), show(mine))]


def _assign(data: dict, values: dict) -> dict:
    """A deep copy of ``data`` with each ``dotted.key`` of ``values`` set (where its section exists)."""
    data = copy.deepcopy(data)
    for key, value in values.items():
        *sections, name = key.split(".")
        node = data
        for section in sections:
            node = node.get(section) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[name] = value
    return data


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def _check_finite(ckpt: Checkpoint, group: str) -> None:
    bad = [name for name, a in ckpt.group(group).items() if a.dtype.kind == "f" and not np.all(np.isfinite(a))]
    if bad:
        raise CheckpointError("; ".join(f"{group}.{name}: holds non-finite values" for name in bad), file=ckpt.path)


# ---------------------------------------------------------------------------- the run directory
#: What a run writes: its results, then the records of how they were made (a lone config.yaml is no result).
RESULTS = ("last.npz", "best.npz", "metrics.csv", "gradients.csv")
RUN_FILES = RESULTS + ("config.yaml", "run.json", "tensorboard")
#: The lock file a training run holds in its directory while it may write there.
LOCK_FILE = ".backprop.lock"


class RunDirectory(Callback):
    """Writes a run's files as epochs end: ``best.npz`` (when the monitored metric improves),
    ``last.npz`` (every ``checkpoint_every`` epochs and at the end), then ``metrics.csv`` and
    ``gradients.csv`` (every epoch; the latter with ``training.log_gradients``), so the metrics never
    run ahead of the checkpoint. Every write is atomic.

    Nothing is written before training has started cleanly: ``config.yaml`` and ``run.json`` (the
    environment, see :mod:`~backprop_cli.engine.environment`) follow the first epoch's results, and
    only then are an earlier run's results that this one replaces (``--force``) removed. While a run
    may write, it holds :class:`RunLock` on the directory.
    """

    def __init__(self, path: Path, config: Config, data: Data, environment: dict, *,
                 resumed_from: Checkpoint | None = None) -> None:
        self.path, self.config, self.data, self.environment = Path(path), config, data, environment
        self.resumed_from = resumed_from
        self.every = config.training.checkpoint_every
        self.written: set[str] = set()
        self.replacing: list[str] = []           # an earlier run's results, replaced when this one starts
        self._lock = RunLock(self.path)
        self._saved_at: tuple[int, int] | None = None
        self._writes = BackgroundWrites()          # every file is written beside training, in order
        self._last_state: tuple[tuple[int, int], Path] | None = None   # (epoch, step) of the last save, its file

    def existing(self) -> list[str]:
        """The results already in the directory (:data:`RESULTS`)."""
        return [name for name in RESULTS if (self.path / name).exists()]

    def files(self) -> list[Path]:
        """The run's files that exist, in :data:`RUN_FILES` order."""
        return [self.path / name for name in RUN_FILES if (self.path / name).exists()]

    def lock(self) -> None:
        self._lock.acquire()

    def unlock(self) -> None:
        """Wait for the writes under way (raising the first that failed), then release the lock."""
        try:
            self._writes.flush()
        finally:
            self._lock.release()

    def remove_orphans(self) -> None:
        """Remove the temporary files of an atomic write that a killed run left (``.last.npz.x1y2.tmp``);
        only called while holding the lock, so no live run is writing them."""
        for name in RUN_FILES:
            for tmp in self.path.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)

    def run_record(self) -> dict:
        """``run.json``: the run's name, its environment and the data files (as the checkpoints'
        meta records them), and for a resumed run the checkpoint it resumed and that one's environment."""
        record = {"name": self.config.name, "environment": self.environment, "data_files": self.data.files}
        if self.resumed_from is not None:
            record["resumed_from"] = {"checkpoint": str(self.resumed_from.path), "epoch": self.resumed_from.meta.get("epoch"),
                                      "environment": self.resumed_from.meta.get("environment")}
        return record

    def on_epoch_end(self, trainer, record):
        final = trainer.stop_reason is not None or trainer.epoch >= self.config.training.epochs
        if record.get("best"):
            self.save(trainer, "best.npz")
        if final or trainer.epoch % self.every == 0:
            self.save(trainer, "last.npz")
        self.write_metrics(trainer.history)
        if "gradients" in record:
            self.write_gradients(trainer.history, trainer.model)
        self.commit()

    def on_train_end(self, trainer, reason):
        if self._saved_at != (trainer.epoch, trainer.step):
            self.save(trainer, "last.npz")

    def save(self, trainer: Trainer, name: str) -> Path:
        """Write ``name`` (in the background); the same state saved under another name just before
        (``best.npz``, then ``last.npz`` at an epoch that is both) is the same bytes: copied, not rebuilt."""
        path, state = self.path / name, (trainer.epoch, trainer.step)
        if self._last_state is not None and self._last_state[0] == state:
            self._writes.submit(copy_file, self._last_state[1], path)
        else:
            self._writes.submit(save_checkpoint, path, *checkpoint_contents(path, trainer, self.config, self.data,
                                                                             self.environment))
        self._last_state = (state, path)
        self.written.add(name)
        if name == "last.npz":
            self._saved_at = (trainer.epoch, trainer.step)
        return self.path / name

    def write_metrics(self, history: list[dict]) -> None:
        columns = ["epoch", "train_loss"]
        for record in history:
            columns += [k for k in record if k.startswith("val_") and k not in columns]
        columns += ["lr", "seconds", "samples_per_sec"]
        self._write_csv("metrics.csv", columns, [[r.get(c) for c in columns] for r in history])

    def write_gradients(self, history: list[dict], model) -> None:
        """``gradients.csv``: one row per epoch and parameter (see :mod:`backprop_cli.engine.gradients`)."""
        self._write_csv("gradients.csv", CSV_COLUMNS, csv_rows(history, model))

    def _write_csv(self, name: str, columns, rows) -> None:
        cell = lambda v: "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)
        lines = [",".join(columns)] + [",".join(cell(v) for v in row) for row in rows]
        self._write_text(name, "\n".join(lines) + "\n")

    def _write_text(self, name: str, text: str) -> None:
        self._writes.submit(atomic_write, self.path / name, lambda f: f.write(text.encode()))

    def commit(self) -> None:
        """After this run's first results are written: its resolved config.yaml and run.json, and the
        results of the run it replaces (``--force``) that it has not rewritten are removed. Later calls
        do nothing."""
        if "config.yaml" in self.written:
            return
        self._write_text("config.yaml", yaml_dump(self.config.dump(relative_to=self.path)))
        self._write_text("run.json", json.dumps(self.run_record(), indent=2) + "\n")
        self.written.update(("config.yaml", "run.json"))
        replaced = [self.path / name for name in self.replacing if name not in self.written]
        self._writes.submit(lambda: [path.unlink(missing_ok=True) for path in replaced])


class RunLock:
    """An exclusive lock on a run directory, so two ``train`` runs never write into one.

    ``acquire`` creates the directory if needed and takes ``flock`` on :data:`LOCK_FILE` in it, writing
    its pid there; a second run is refused with one line naming that pid. The operating system drops
    the lock when the process ends, however it ends (``kill -9`` included), so a crashed run leaves
    no stale lock; ``release`` removes the file (and the folders the run created, when it left them
    empty). Without ``fcntl`` (Windows) the file is created exclusively, and one left by a crash
    must be removed by hand (the message says so).
    """

    def __init__(self, directory: Path) -> None:
        self.directory, self.path = Path(directory), Path(directory) / LOCK_FILE
        self._fd: int | None = None
        self._created: list[Path] = []           # the folders acquire made, deepest first

    def acquire(self) -> None:
        if self._fd is not None:
            return
        missing = [d for d in (self.directory, *self.directory.parents) if not d.exists()]
        self.directory.mkdir(parents=True, exist_ok=True)
        self._created = missing
        while self._fd is None:
            self._fd = self._take()

    def _take(self) -> int | None:
        """The locked file's descriptor; None when the file was replaced meanwhile (try again)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | (0 if fcntl else os.O_EXCL), 0o666)
        except FileExistsError:                   # no fcntl: the file is the lock
            raise self._busy(stale_hint=True) from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            mine, now = os.fstat(fd), os.stat(self.path)
        except BlockingIOError:
            os.close(fd)
            raise self._busy() from None
        except FileNotFoundError:                 # released and removed between open and flock
            os.close(fd)
            return None
        if (mine.st_dev, mine.st_ino) != (now.st_dev, now.st_ino):
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def _busy(self, stale_hint: bool = False) -> ConfigError:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        who = f"another backprop train (pid {pid})" if pid.isdigit() else "another backprop train"
        hint = "; if no run is left, remove it" if stale_hint else ""
        return ConfigError(f"{self.directory} is in use by {who}; wait for it to finish or pass --out DIR "
                           f"(lock file {self.path}{hint})", where="--out")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)     # while still holding it: a waiting run retries
        finally:
            os.close(self._fd)
            self._fd = None
        for folder in self._created:              # only those the run left empty
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []

    def __del__(self) -> None:                    # a Run dropped without training (an error in between)
        try:
            self.release()
        except Exception:                         # at interpreter shutdown
            pass


def config_text(config_path: str | Path, overrides=()) -> str:
    """``train --print-config``: the config as a run would read it (every default filled in, the
    overrides applied, ``auto`` resolved), as YAML that is itself a config."""
    return yaml_dump(load_config(config_path, overrides).dump())
