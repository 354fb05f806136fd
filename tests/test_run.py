"""A run and its directory: resuming with more epochs (values derived from the allowed changes),
the resume-config mismatch message, one run per directory, and the order the files are written in."""

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backprop_cli.engine.checkpoint import load_checkpoint
from common import ENV, invoke, TINY

COSINE = TINY.replace("name: tiny", "name: cos").replace("  test: iris.csv\n", "").replace(
    "training:", "schedule: {name: cosine, warmup_epochs: 1}\ntraining:")


@pytest.fixture
def project(iris_dir):
    (iris_dir / "cos.yaml").write_text(COSINE)
    return iris_dir


def lrs(path: Path) -> list[float]:
    return [float(row["lr"]) for row in csv.DictReader(path.open())]


def test_a_cosine_run_resumes_with_more_epochs_and_anneals_over_them(project):
    """t_max was filled in from training.epochs (3 - 1 warm-up epoch = 2); resumed to 6 epochs it is
    derived again (5), not a difference from the checkpoint."""
    assert invoke("train", "cos.yaml", "-q").exit_code == 0
    more = invoke("train", "cos.yaml", "-q", "--set", "training.epochs=6", "--resume", "runs/cos/last.npz")
    assert more.exit_code == 0, more.output
    got = lrs(project / "runs/cos/metrics.csv")
    cosine = lambda e, t_max: 0.05 * (1 + math.cos(math.pi * e / t_max))       # base lr 0.1, min_lr 0
    want = [0.01] + [cosine(e, 2) for e in range(2)] + [cosine(e, 5) for e in range(2, 5)]
    assert got == pytest.approx(want, rel=1e-5, abs=1e-12)


def test_an_explicit_t_max_is_kept_and_a_changed_one_refused(project):
    (project / "fixed.yaml").write_text(COSINE.replace("warmup_epochs: 1", "t_max: 3"))
    assert invoke("train", "fixed.yaml", "-q").exit_code == 0
    assert invoke("train", "fixed.yaml", "-q", "--set", "training.epochs=5",
                  "--resume", "runs/cos/last.npz").exit_code == 0
    changed = invoke("train", "fixed.yaml", "-q", "--set", "training.epochs=6", "schedule.t_max=4",
                     "--resume", "runs/cos/last.npz")
    assert changed.exit_code == 1
    assert "--set: schedule.t_max=4: 3 in the checkpoint, 4 here" in changed.stderr


def test_a_resume_mismatch_lists_real_differences_one_per_line(project):
    assert invoke("train", "cos.yaml", "-q", "--set", "training.epochs=1").exit_code == 0
    (project / "adam.yaml").write_text(COSINE.replace("{name: sgd, lr: 0.1, momentum: 0.9}", "{name: adam, lr: 0.1}")
                                       .replace("Linear: 8", "Linear: 6"))
    other = invoke("train", "adam.yaml", "-q", "--resume", "runs/cos/last.npz")
    assert other.exit_code == 1
    lines = other.stderr.splitlines()
    assert lines[0] == ("error: runs/cos/last.npz: --resume: the config differs from the run being resumed in 2 "
                        "places (only training.epochs, training.checkpoint_every, training.threads and output may "
                        "change, and where the data files are):")
    assert lines[1:] == ["error: adam.yaml:8: model.0.Linear.out_features: 8 in the checkpoint, 6 here",
                         "error: adam.yaml:13: optimizer.name: 'sgd' in the checkpoint, 'adam' here"]
    many = ["seed=1", "training.batch_size=8", "training.shuffle=false", "training.dtype=float64",
            "training.clip_grad_norm=1", "training.clip_grad_value=1", "data.validation_split=0.3",
            "data.normalize=minmax", "optimizer.lr=0.2", "optimizer.momentum=0.5", "optimizer.weight_decay=0.01",
            "optimizer.lr_decay=0.1"]
    result = invoke("train", "cos.yaml", "-q", "--resume", "runs/cos/last.npz", *[f"--set={m}" for m in many])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert "in 12 places" in lines[0] and len(lines) == 12 and lines[-1] == "error: ... and 2 more"
    assert "error: --set: seed=1: 0 in the checkpoint, 1 here" in lines


# ----------------------------------------------------------------------------- the run directory
def test_files_are_written_checkpoint_first_and_config_yaml_after_the_first_epoch(project, monkeypatch):
    from backprop_cli.engine import checkpoint, run
    order = []
    real = checkpoint.atomic_write

    def spy(path, write):
        order.append(Path(path).name)
        real(path, write)

    def copy_spy(source, path):               # last.npz of an epoch that is also the best: best.npz's bytes
        order.append(Path(path).name)
        checkpoint.copy_file(source, path)

    monkeypatch.setattr(checkpoint, "atomic_write", spy)
    monkeypatch.setattr(run, "atomic_write", spy)
    monkeypatch.setattr(run, "copy_file", copy_spy)
    (project / "every2.yaml").write_text(COSINE.replace("epochs: 3", "epochs: 3, checkpoint_every: 2"))
    assert invoke("train", "every2.yaml", "-q").exit_code == 0
    epoch1, rest = order[:3], order[3:]
    assert epoch1 == ["best.npz", "metrics.csv", "config.yaml"]      # no last.npz due: checkpoint_every 2
    assert "last.npz" in rest and rest.index("last.npz") < rest.index("metrics.csv")
    assert order[-2:] == ["last.npz", "metrics.csv"] and order.count("config.yaml") == 1


def test_one_run_per_directory_and_no_stale_lock_after_kill_9(project):
    (project / "long.yaml").write_text(COSINE.replace("epochs: 3, batch_size: 16", "epochs: 100000, batch_size: 1"))
    first = subprocess.Popen([sys.executable, "-m", "backprop_cli", "train", "long.yaml", "-q"], cwd=project, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (project / "runs/cos/metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "backprop_cli", "train", "long.yaml", "-q", "--force"],
                            cwd=project, env=ENV, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert second.stderr.splitlines() == [f"error: runs/cos is in use by another backprop train (pid "   # no --out given
                                          f"{first.pid}); wait for it to finish or pass --out DIR (lock file "
                                          f"runs/cos/.backprop.lock)"]
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    orphan = project / "runs/cos/.last.npz.x1y2z3.tmp"           # what a kill in the middle of a write leaves
    orphan.write_bytes(b"half a checkpoint")
    epochs = load_checkpoint(project / "runs/cos/last.npz").meta["epoch"] + 1
    resumed = subprocess.run([sys.executable, "-m", "backprop_cli", "train", "long.yaml", "-q", "--set",
                              f"training.epochs={epochs}", "--resume", "runs/cos/last.npz"],
                             cwd=project, env=ENV, capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(os.listdir(project / "runs/cos")) == ["best.npz", "config.yaml", "last.npz", "metrics.csv", "run.json"]


def test_a_refused_run_leaves_no_directory_behind(project):
    result = invoke("train", "cos.yaml", "-q", "--out", "new/deeper", "--set", "training.epochs=1",
                    "--set", "optimizer.lr=1e300")
    assert result.exit_code == 1 and "non-finite loss" in result.stderr
    assert not (project / "new").exists()


def test_a_data_file_is_hashed_once_unless_it_changed(project, monkeypatch):
    """data_files reads a file for its SHA-256 once per stamp (path, size, modification time): again
    in this process (a sweep's next trial), or when resuming a checkpoint that recorded it, only if
    the file changed."""
    from backprop_cli.engine import experiment
    from backprop_cli.engine.run import open_run

    monkeypatch.setattr(experiment, "_DIGESTS", {})
    hashed = []
    real = experiment._sha256
    monkeypatch.setattr(experiment, "_sha256", lambda parts: hashed.append(parts) or real(parts))
    assert invoke("train", "cos.yaml", "-q").exit_code == 0
    assert hashed == [[project / "iris.csv"]]                       # train and validation_split: one file
    [entry] = load_checkpoint(project / "runs/cos/last.npz").meta["data_files"]
    assert entry["sha256"] == real([project / "iris.csv"])
    assert entry["mtime_ns"] == (project / "iris.csv").stat().st_mtime_ns

    monkeypatch.setattr(experiment, "_DIGESTS", {})                 # a new process: the checkpoint's stamp
    open_run("cos.yaml", ["training.epochs=4"], resume="runs/cos/last.npz").directory.unlock()
    assert len(hashed) == 1
    stat = (project / "iris.csv").stat()
    os.utime(project / "iris.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))   # touched
    run = open_run("cos.yaml", ["training.epochs=4"], resume="runs/cos/last.npz")
    run.directory.unlock()
    assert len(hashed) == 2 and run.warnings == []                 # read again, and the same bytes


def test_a_finished_run_resumed_into_another_directory_writes_it(project):
    """What a sweep's retry of a trial interrupted after its last epoch does: nothing to train, the
    new directory written whole, its lock released."""
    from backprop_cli.config.schema import load_config
    from backprop_cli.engine.run import start_run

    assert invoke("train", "cos.yaml", "-q").exit_code == 0
    run = start_run(load_config("cos.yaml"), out="again", resume="runs/cos/last.npz")
    assert run.finished == "trained 3 epochs (epoch 3)"
    run.write_finished()
    assert sorted(p.name for p in (project / "again").iterdir()) == ["config.yaml", "last.npz", "metrics.csv",
                                                                     "run.json"]
    assert (project / "again/metrics.csv").read_text() == (project / "runs/cos/metrics.csv").read_text()


def test_background_writes_keep_their_order_and_hand_back_the_first_failure():
    import time

    from backprop_cli.engine.checkpoint import BackgroundWrites

    done, writes = [], BackgroundWrites(depth=1)
    writes.submit(lambda: (time.sleep(0.05), done.append("last.npz")))
    writes.submit(done.append, "metrics.csv")
    writes.flush()
    assert done == ["last.npz", "metrics.csv"]          # the metrics never run ahead of the checkpoint

    def full_disk():
        raise OSError(28, "No space left on device", "runs/x/last.npz")
    writes.submit(full_disk)
    writes.submit(done.append, "after the failure")     # may be queued before the failure is seen
    with pytest.raises(OSError, match="No space left"):
        writes.flush()
    writes.submit(done.append, "after it was handed over")
    writes.flush()                                       # the failure is handed over once
    assert done == ["last.npz", "metrics.csv"]           # and nothing is written after it
