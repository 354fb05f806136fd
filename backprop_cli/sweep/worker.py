"""A sweep worker: a process that takes trials from the study, one at a time, and trains each as an
ordinary run in its own directory (``runs/<sweep>/trial-0007/``).

A trial: take the next trial from the study (an enqueued grid point or retry first, else the
sampler's pick), check that it fits in the budget (a worker that loses the race for the last place
gives its trial back), draw its values, validate its config, train it (resuming an interrupted
trial's ``last.npz``), reporting the metric after every epoch so the pruner can stop it, and tell
the study how it ended. ``trial.json`` in the directory says the same: running, complete, pruned
(and at which epoch) or failed (and why).

Ctrl-C or SIGTERM ends the trial after the current step: ``last.npz`` is written, the trial is marked
failed as interrupted (the next ``backprop sweep`` retries it from there) and the worker exits. A
worker dies with the process that started it (Linux's parent-death signal, and a watchdog elsewhere),
so ``kill -9`` of a sweep leaves no worker behind.
"""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import signal
import sys
import threading
import time
import traceback
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..engine.run import start_run
from ..engine.trainer import Callback, Interrupted
from ..errors import BackpropError, CheckpointError
from .spec import load_sweep
from .study import (ATTEMPT, ERROR, HEARTBEAT, HEARTBEAT_SECONDS, RETRY_OF, SURPLUS, WORKER, counts, host_id,
                    open_study, optuna_module, process_id, suggest, trial_directory, write_trial_json)


@dataclass
class WorkerArgs:
    """What a worker process needs: the sweep as the command named it, and the worker's number."""

    sweep_file: str
    trials: int | None
    storage: str | None
    study: str | None
    index: int

    def command(self) -> list[str]:
        """The worker's command line: ``python -m backprop_cli.sweep.worker ARGS-AS-JSON``."""
        return [sys.executable, "-m", __name__, json.dumps(asdict(self))]


def main(argv: list[str]) -> int:
    """A worker process: run trials until the budget is spent or a signal stops it. A failure outside
    a trial is one line on stderr and exit status 1."""
    args = WorkerArgs(**json.loads(argv[0]))
    _die_with_parent(os.getppid())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)                                # the sweep's terminal belongs to its table
    try:
        sweep = load_sweep(args.sweep_file, trials=args.trials, storage=args.storage, study=args.study)
        Worker(sweep, args.index).run()
    except BackpropError as err:
        print(f"worker {args.index}: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - reported, with its trace, by the process that started it
        print(f"worker {args.index}: internal error: {type(err).__name__}: {err}\n{traceback.format_exc()}",
              file=sys.stderr)
        return 1
    return 0


def set_parent_death_signal() -> None:
    """Linux: this process gets SIGKILL when its parent dies (kept across ``exec``); elsewhere nothing."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _die_with_parent(parent: int) -> None:
    """End this process when the sweep that started it ends, even by ``kill -9``: the parent-death
    signal where there is one, and a watchdog on the parent's process id everywhere."""
    set_parent_death_signal()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


class Worker:
    """Takes trials from the sweep's study and trains them; see the module docstring."""

    def __init__(self, sweep, index: int) -> None:
        self.sweep, self.index = sweep, index
        self.optuna = optuna_module()
        self.study = open_study(sweep, create=False, worker=index)
        self.stop: str | None = None
        self.trainer = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.stop = signal.Signals(signum).name
        if self.trainer is not None:
            self.trainer.stop_requested = self.stop

    def run(self) -> None:
        while self.stop is None and self._room():
            trial = self.study.ask()
            trial.set_user_attr(WORKER, {"host": host_id(), "process": process_id(), "worker": self.index})
            trial.set_user_attr(HEARTBEAT, time.time())
            if self._surplus(trial):
                self._give_back(trial)
                return
            self._run(trial)

    # ------------------------------------------------------------------ the budget
    def _room(self) -> bool:
        """Whether the budget has a place left (and, for a grid, a point left to try)."""
        trials = self.study.get_trials(deepcopy=False)
        if sum(counts(t) for t in trials) >= self.sweep.trials:
            return False
        return self.sweep.spec.sampler.name != "grid" or any(t.state.name == "WAITING" for t in trials)

    def _surplus(self, trial) -> bool:
        """Whether places in the budget went to trials numbered before this one (a race between workers)."""
        before = [t for t in self.study.get_trials(deepcopy=False) if t.number < trial.number]
        return sum(counts(t) for t in before) >= self.sweep.trials

    def _give_back(self, trial) -> None:
        """Leave a trial that did not fit: an enqueued one (a grid point, a retry) goes back in the queue."""
        frozen = self._frozen(trial.number)
        fixed = frozen.system_attrs.get("fixed_params")
        if fixed:
            kept = {k: frozen.user_attrs[k] for k in (RETRY_OF, ATTEMPT) if k in frozen.user_attrs}
            self.study.enqueue_trial(fixed, user_attrs=kept)
        trial.set_user_attr(SURPLUS, True)
        self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)

    def _frozen(self, number: int):
        return next(t for t in self.study.get_trials(deepcopy=False) if t.number == number)

    # ------------------------------------------------------------------ one trial
    def _run(self, trial) -> None:
        optuna, sweep = self.optuna, self.sweep
        fail = optuna.trial.TrialState.FAIL
        directory = trial_directory(sweep, trial.number)
        retry_of = self._frozen(trial.number).user_attrs.get(RETRY_OF)
        params = {key: suggest(trial, key, dist) for key, dist in sweep.spec.space.items()}
        write_trial_json(directory, number=trial.number, state="running", params=params, metric=sweep.metric,
                         retry_of=retry_of, worker=f"{host_id()} {process_id()}")
        beat = _Heartbeat(trial)
        try:
            value, pruned_at = self._train(trial, params, directory, retry_of)
        except Interrupted:
            write_trial_json(directory, state="failed", error=f"interrupted ({self.stop}); the sweep retries it")
            self.study.tell(trial, state=fail)
            return
        except BackpropError as err:
            self._failed(trial, directory, str(err))
            return
        except Exception as err:  # noqa: BLE001 - a bug must not end the sweep; its trace is kept
            trace = directory / "error.txt"
            trace.write_text(traceback.format_exc())
            self._failed(trial, directory, f"internal error: {type(err).__name__}: {err} (see {trace})")
            return
        finally:
            beat.stop()
            self.trainer = None
        if pruned_at is not None:
            write_trial_json(directory, state="pruned", pruned_at_epoch=pruned_at, value=value)
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            write_trial_json(directory, state="complete", value=value)
            self.study.tell(trial, value)

    def _failed(self, trial, directory: Path, message: str) -> None:
        trial.set_user_attr(ERROR, message)
        write_trial_json(directory, state="failed", error=message)
        self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)

    def _train(self, trial, params: dict, directory: Path, retry_of: int | None) -> tuple[float, int | None]:
        """Train the trial's config; ``(metric, epoch it was pruned at or None)``. A retry resumes the
        interrupted trial's last checkpoint when it is here and readable, and starts from its best.npz."""
        config = self.sweep.trial_config(params, directory)
        earlier = trial_directory(self.sweep, retry_of) if retry_of is not None else None
        run = None
        if earlier is not None and (earlier / "last.npz").exists():
            try:
                run = start_run(config, out=directory, resume=earlier / "last.npz")
            except CheckpointError:
                pass
            else:
                if (earlier / "best.npz").exists():
                    shutil.copy2(earlier / "best.npz", directory / "best.npz")
        run = run or start_run(config, out=directory)
        self.trainer = run.trainer
        report = _Report(trial, self.sweep.metric)
        if run.finished:                        # it was interrupted after its last epoch: write the directory
            report.on_train_begin(run.trainer)
            run.write_finished()
        elif self.stop:
            run.directory.unlock()
            raise Interrupted(self.stop)
        else:
            run.train([report])
        if run.trainer.best_metric is None:
            raise BackpropError(f"no {self.sweep.metric} was measured", where=f"trial {trial.number}")
        return run.trainer.best_metric, report.pruned_at


class _Report(Callback):
    """Reports the metric to the study after each epoch (and the epochs a resumed run already has), and
    ends training after an epoch the pruner condemns."""

    def __init__(self, trial, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.pruned_at: int | None = None

    def on_train_begin(self, trainer) -> None:
        for record in trainer.history:
            self._report(record)

    def on_epoch_end(self, trainer, record) -> None:
        self._report(record)
        if self.trial.should_prune():
            self.pruned_at = record["epoch"]
            trainer.stop_reason = "pruned"

    def _report(self, record: dict) -> None:
        value = record.get(self.metric)
        if value is not None and math.isfinite(value):
            self.trial.report(value, record["epoch"])


class _Heartbeat:
    """Records ``time.time()`` on the trial every ``HEARTBEAT_SECONDS`` until stopped."""

    def __init__(self, trial) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(trial,), daemon=True)
        self._thread.start()

    def _beat(self, trial) -> None:
        while not self._done.wait(HEARTBEAT_SECONDS):
            try:
                trial.set_user_attr(HEARTBEAT, time.time())
            except Exception:  # noqa: BLE001 - the storage may be briefly unreachable; the next beat retries
                pass

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
