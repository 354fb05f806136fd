"""``backprop sweep``: the sweep file's checks, grid / random / TPE sweeps with worker processes, pruning,
trial run directories, continuing after ``kill -9``, and two sweeps sharing one storage."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from backprop_cli.sweep.spec import load_sweep, set_flag
from common import invoke, missing_extra, ROOT

needs_optuna = pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason=missing_extra("sweep") + " (Optuna)")

BASE = """\
seed: 0
data:
  train: digits/train-images-idx3-ubyte.gz
  train_labels: digits/train-labels-idx1-ubyte.gz
  validation_split: 0.2
  normalize: scale
  scale: 16
model: [Flatten, {Linear: 16}, ReLU, {Linear: 10}, LogSoftMax]
criterion: ClassNLLCriterion
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
schedule: {name: cosine}
training: {epochs: 2, batch_size: 64}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A temp directory with the shipped digits and a tiny base config; the current directory."""
    shutil.copytree(ROOT / "data" / "digits", tmp_path / "digits")
    (tmp_path / "base.yaml").write_text(BASE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sweep_file(project: Path, text: str, name: str = "sw.yaml") -> Path:
    (project / name).write_text(text)
    return project / name


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- the sweep file
def test_mistakes_in_a_sweep_file_are_one_line_each_before_anything_runs(project):
    path = sweep_file(project, """\
config: base.yaml
sampler: random
space:
  optimizer.lrr: {log_uniform: [1.0e-3, 1.0e-1]}
  model.1.Linear: {choice: []}
  training.batch_size: {log_uniform: [0, 64]}
  training.epochs: {loguniform: [1, 2]}
""")
    result = invoke("sweep", path, "--quiet")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: {path}:5: space.model.1.Linear: choice: expected a non-empty list of values, got a list []",
        f"error: {path}:6: space.training.batch_size: log_uniform: a log scale needs low > 0, got a list [0, 64]",
        f"error: {path}:7: space.training.epochs: unknown distribution 'loguniform'; did you mean log_uniform?",
    ]
    assert not (project / "runs").exists()
    path.write_text("config: base.yaml\nspace:\n  optimizer.lrr: {log_uniform: [1.0e-3, 1.0e-1]}\n"
                    "  model.1.Linear: {choice: [8, x]}\n  model.2.ReLU: {choice: [1]}\n")
    result = invoke("sweep", path)
    assert result.exit_code == 1 and result.output.splitlines() == [
        f"error: {path}:3: optimizer.lrr: unknown key 'lrr' in optimizer; did you mean lr?",
        f"error: {path}:4: model.1.Linear.out_features: expected an integer, got 'x'",
        f"error: {path}:5: model.2.ReLU: model.2 is 'ReLU', not a mapping or a list; cannot set a key inside it",
    ]


def test_a_missing_base_config_a_bad_grid_and_a_bad_storage_are_one_line_each(project):
    missing = sweep_file(project, "config: nope.yaml\nspace:\n  seed: {choice: [1]}\n")
    result = invoke("sweep", missing)
    assert result.exit_code == 1
    assert result.output.strip() == (f"error: {missing}:1: config: no such config file: nope.yaml "
                                     f"(looked for {project / 'nope.yaml'})")
    grid = sweep_file(project, "config: base.yaml\nsampler: grid\ntrials: 5\nspace:\n  seed: {choice: [1, 2]}\n"
                               "  optimizer.lr: {uniform: [0.01, 0.1]}\n")
    result = invoke("sweep", grid)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {grid}:6: space.optimizer.lr: sampler grid takes choice lists, not uniform"


@needs_optuna
def test_a_storage_that_cannot_be_opened_is_one_line(project):
    path = sweep_file(project, "config: base.yaml\nspace:\n  seed: {choice: [1]}\n")
    for url, why in (("sqlite:////nonexistent/dir/x.db", "unable to open database file"),
                     ("nosuchdb://host/db", "Can't load plugin: sqlalchemy.dialects:nosuchdb"),
                     ("/nonexistent/dir/study.journal", "no such directory /nonexistent/dir")):
        result = invoke("sweep", path, "--storage", url)
        assert result.exit_code == 1, result.output
        lines = result.output.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: --storage: cannot open {url}: ") and why in lines[0]


def test_without_optuna_the_sweep_says_which_extra_to_install(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)                 # import optuna now raises ImportError
    path = sweep_file(project, "config: base.yaml\nspace:\n  seed: {choice: [1]}\n")
    result = invoke("sweep", path)
    assert result.exit_code == 1
    assert result.output.strip() == ("error: backprop sweep needs Optuna, which is not installed: "
                                     "pip install 'backprop-cli[sweep]'")


@pytest.mark.parametrize("value", [1e-05, 0.1, 3.0, 2.5e+20, 12, True, "adam", "1e-3", {"name": "step", "step_size": 2},
                                   [64, 32], None])
def test_best_values_as_set_flags_read_back_exactly(value):
    key, _, text = set_flag("k", value).partition("=")
    back = yaml.safe_load(text)
    assert key == "k" and (back == value or float(back) == value) and type(back) in (type(value), str)
    if isinstance(value, float):
        assert isinstance(back, float)


# --------------------------------------------------------------------------- sweeps
@needs_optuna
def test_a_grid_with_two_workers_trains_every_point_as_a_run_directory(project):
    path = sweep_file(project, """\
config: base.yaml
metric: val_accuracy
sampler: {name: grid, seed: 3}
space:
  optimizer.lr: {choice: [0.05, 0.001]}
  schedule.min_lr: {choice: [0.0, 0.01]}
""")
    result = invoke("sweep", path, "--workers", "2", "--quiet")
    assert result.exit_code == 0, result.output
    directory = project / "runs" / "sw"
    table = read_csv(directory / "sweep.csv")
    assert [r["number"] for r in table] == ["0", "1", "2", "3"]
    assert list(table[0]) == ["number", "state", "optimizer.lr", "schedule.min_lr", "val_accuracy", "seconds"]
    points = {(r["optimizer.lr"], r["schedule.min_lr"]): r for r in table}
    assert set(points) == {("0.05", "0.0"), ("0.05", "0.01"), ("0.001", "0.0"), ("0.001", "0.01")}
    bad = points[("0.001", "0.01")]                      # min_lr above lr: the trial's config is refused
    assert bad["state"] == "failed" and bad["val_accuracy"] == ""
    assert all(r["state"] == "complete" and 0 < float(r["val_accuracy"]) <= 1 for r in table if r is not bad)
    trial = directory / f"trial-{int(bad['number']):04d}"
    assert "schedule.min_lr: must not exceed optimizer.lr (0.001), got 0.01" in json.loads(
        (trial / "trial.json").read_text())["error"]
    assert f"trial {bad['number']} failed: {path}:6: schedule.min_lr: must not exceed" in result.output
    good = directory / f"trial-{int(points[('0.05', '0.0')]['number']):04d}"
    assert {p.name for p in good.iterdir()} >= {"config.yaml", "metrics.csv", "last.npz", "best.npz", "trial.json"}
    assert json.loads((good / "trial.json").read_text())["state"] == "complete"
    assert yaml.safe_load((good / "config.yaml").read_text())["optimizer"]["lr"] == 0.05
    scored = invoke("eval", good / "best.npz", "--data", "digits/t10k-images-idx3-ubyte.gz",
                    "--labels", "digits/t10k-labels-idx1-ubyte.gz", "--json")
    assert scored.exit_code == 0 and json.loads(scored.output)["samples"] == 360
    best = max((r for r in table if r["state"] == "complete"), key=lambda r: float(r["val_accuracy"]))
    assert f"best trial {best['number']}: val_accuracy" in result.output
    assert (f"backprop train base.yaml --set optimizer.lr={best['optimizer.lr']} "
            f"--set schedule.min_lr={best['schedule.min_lr']}") in result.output
    status = invoke("sweep", path, "--status")
    assert status.exit_code == 0 and "sw: 4/4 trials done (3 complete, 1 failed)" in status.output
    again = invoke("sweep", path, "--quiet")                 # done already: the same command adds nothing
    assert again.exit_code == 0 and len(read_csv(directory / "sweep.csv")) == 4
    path.write_text(path.read_text().replace("0.001]", "0.002]"))
    changed = invoke("sweep", path)
    assert changed.exit_code == 1 and changed.output.strip() == (
        f"error: {path}: the study 'sw' in runs/sw/study.journal was started from a different sweep (space "
        "differs); give --study NAME for a new study, or use the sweep file it was started with")


@needs_optuna
@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_random_and_tpe_sweeps_with_the_median_pruner(project, sampler):
    path = sweep_file(project, f"""\
config: base.yaml
sampler: {{name: {sampler}, seed: 1}}
trials: 5
pruner: {{name: median, startup_trials: 1}}
space:
  optimizer.lr: {{choice: [0.05, 1.0e-7]}}
  optimizer.momentum: {{uniform: [0.5, 0.9]}}
""")
    result = invoke("sweep", path, "--workers", "1")             # not a terminal: a line per finished trial
    assert result.exit_code == 0, result.output
    table = read_csv(project / "runs" / "sw" / "sweep.csv")
    assert len(table) == 5 and all(0.5 <= float(r["optimizer.momentum"]) <= 0.9 for r in table)
    pruned = [r for r in table if r["state"] == "pruned"]
    assert pruned and all(r["optimizer.lr"] == "1e-07" for r in pruned)          # hopeless: stopped early
    assert all(r["state"] == "complete" for r in table if r not in pruned)
    for r in pruned:
        trial = project / "runs" / "sw" / f"trial-{int(r['number']):04d}"
        said = json.loads((trial / "trial.json").read_text())
        assert said["state"] == "pruned" and said["pruned_at_epoch"] == 1
        assert len(read_csv(trial / "metrics.csv")) == 1 and (trial / "last.npz").exists()
    assert f"trial {pruned[0]['number']} pruned (epoch 1)" in result.output


@needs_optuna
def test_two_sweep_processes_on_one_storage_share_the_trials(project):
    (project / "base.yaml").write_text(BASE.replace("epochs: 2", "epochs: 10"))   # long enough to overlap
    path = sweep_file(project, "config: ../base.yaml\nsampler: {name: tpe, seed: 0}\ntrials: 4\n"
                               "space:\n  optimizer.lr: {log_uniform: [0.01, 0.1]}\n")
    machines = [project / "a", project / "b"]
    for m in machines:
        m.mkdir()
        shutil.copy(path, m / "sw.yaml")
    storage = project / "shared.journal"
    procs = [subprocess.Popen([sys.executable, "-m", "backprop_cli", "sweep", "sw.yaml", "-w", "1", "-q",
                               "--storage", str(storage)], cwd=m, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for m in machines]
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    for m in machines:                                  # each machine's table shows every trial
        assert [r["number"] for r in read_csv(m / "runs" / "sw" / "sweep.csv")] == ["0", "1", "2", "3"]
    shown = [t for t in _trials(storage) if not t.user_attrs.get("backprop:surplus")]
    assert [(t.number, t.state.name) for t in shown] == [(i, "COMPLETE") for i in range(4)]
    mine = [{int(p.name[6:]) for p in (m / "runs" / "sw").glob("trial-*")} for m in machines]
    assert not mine[0] & mine[1] and mine[0] | mine[1] == set(range(4))      # each trial ran once, somewhere


def _trials(storage: Path):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name="sw", storage=JournalStorage(JournalFileBackend(str(storage)))).trials


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@needs_optuna
def test_kill_9_then_the_same_command_continues_the_sweep(project):
    (project / "base.yaml").write_text(BASE.replace("epochs: 2", "epochs: 20"))
    sweep_file(project, "config: base.yaml\nsampler: {name: random, seed: 0}\ntrials: 3\n"
                               "space:\n  optimizer.lr: {log_uniform: [0.01, 0.1]}\n")
    journal = project / "runs" / "sw" / "study.journal"
    command = [sys.executable, "-m", "backprop_cli", "sweep", "sw.yaml", "-w", "2", "-q"]
    sweep = subprocess.Popen(command, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, trials = time.monotonic() + 60, []
    while time.monotonic() < deadline:                    # until a trial is done and another is under way
        trials = _trials(journal) if journal.exists() else []
        if (any(t.state.name == "COMPLETE" for t in trials)
                and any(t.state.name == "RUNNING" and t.intermediate_values for t in trials)):
            break
        time.sleep(0.05)
    sweep.kill()                                          # kill -9
    sweep.wait()
    after = _trials(journal)
    killed = {t.number for t in after if t.state.name == "RUNNING"}
    assert killed, "no trial was under way when the sweep was killed"
    workers = {int(t.user_attrs["backprop:worker"]["process"].split(":")[0]) for t in after
               if "backprop:worker" in t.user_attrs}
    for _ in range(100):                                  # the workers die with it
        if not any(_pid_alive(pid) for pid in workers):
            break
        time.sleep(0.05)
    assert not any(_pid_alive(pid) for pid in workers)
    had_values = {t.number for t in after if t.number in killed and t.params}

    again = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    table = {int(r["number"]): r for r in read_csv(project / "runs" / "sw" / "sweep.csv")}
    done = [n for n, r in table.items() if r["state"] == "complete"]
    assert len(done) == 3 and len(table) == 3 + len(killed), (table, again.stdout)
    assert all(table[n]["state"] == "failed" for n in killed)
    retries = {json.loads((project / "runs" / "sw" / f"trial-{n:04d}" / "trial.json").read_text())["retry_of"]: n
               for n in done}
    assert set(retries) - {None} == killed
    for old, new in ((o, n) for o, n in retries.items() if o in had_values):   # retried with its values
        assert table[old]["optimizer.lr"] == table[new]["optimizer.lr"]
        before = project / "runs" / "sw" / f"trial-{old:04d}" / "metrics.csv"
        done_before = read_csv(before) if before.exists() else []
        resumed = read_csv(project / "runs" / "sw" / f"trial-{new:04d}" / "metrics.csv")
        assert [int(r["epoch"]) for r in resumed] == list(range(1, 21))
        assert resumed[:len(done_before)] == done_before                 # resumed where it stopped: nothing lost


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_file_is_valid(path):
    sweep = load_sweep(path)
    assert sweep.trials >= 1 and sweep.spec.space
