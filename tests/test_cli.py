"""The ``backprop`` command end to end with typer's CliRunner (and a subprocess where a real process,
a signal or a fresh interpreter is the point)."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from backprop_cli.engine.checkpoint import load_checkpoint, save_checkpoint
from backprop_cli.cli.app import app, main
from backprop_cli.cli.render import fmt
from backprop_cli.data import write_idx
from common import ENV, invoke, ROOT, TINY


@pytest.fixture
def project(iris_dir):
    """A temp directory holding the iris data and a tiny config; the current directory for the test."""
    (iris_dir / "tiny.yaml").write_text(TINY)
    return iris_dir


def test_train_writes_the_run_directory(project):
    result = invoke("train", "tiny.yaml")                  # not a terminal: one plain line per epoch
    assert result.exit_code == 0, result.output
    run = project / "runs" / "tiny"
    assert sorted(p.name for p in run.iterdir()) == ["best.npz", "config.yaml", "last.npz", "metrics.csv", "run.json"]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) >= {"train_loss", "val_loss", "val_accuracy", "lr", "seconds"}
    assert "epoch 3/3" in result.stdout and "wrote runs/tiny/last.npz" in result.stdout
    assert "time 0.00s" not in result.stdout


@pytest.mark.parametrize("seconds, shown", [(0.0234, "23.4ms"), (0.00042, "0.42ms"), (0.0999, "99.9ms"),
                                            (0.1, "0.10s"), (12.345, "12.35s")])
def test_an_epoch_s_time_keeps_its_digits(seconds, shown):
    """A fast epoch (under 0.1 s) is shown in milliseconds, three significant digits, never as 0.00s."""
    assert fmt(seconds, "seconds") == shown


def test_set_overrides_and_refusing_to_overwrite(project):
    assert invoke("train", "tiny.yaml", "-q", "--set", "training.epochs=1", "optimizer.lr=0.05").exit_code == 0
    assert len((project / "runs/tiny/metrics.csv").read_text().splitlines()) == 2
    again = invoke("train", "tiny.yaml", "-q")
    assert again.exit_code == 1
    assert again.stderr.startswith("error: runs/tiny already holds") and "--force" in again.stderr   # no --out: given
    assert invoke("train", "tiny.yaml", "-q", "--force").exit_code == 0
    assert invoke("train", "tiny.yaml", "-q", "--out", "runs/tiny").stderr.startswith("error: --out: runs/tiny already")


def test_eval_predict_gradcheck_summary(project):
    assert invoke("train", "tiny.yaml", "-q").exit_code == 0
    ckpt = project / "runs/tiny/best.npz"

    result = invoke("eval", ckpt, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["samples"] == 150 and 0.8 <= report["metrics"]["accuracy"] <= 1
    assert np.array(report["confusion_matrix"]).sum() == 150 and set(report["per_class"]) == {"setosa", "versicolor", "virginica"}
    table = invoke("eval", ckpt)
    assert table.exit_code == 0 and "recall" in table.stdout and "confusion matrix" in table.stdout

    pred = invoke("predict", ckpt, "iris.csv", "--out", "pred.csv")
    assert pred.exit_code == 0, pred.output
    rows = list(csv.reader((project / "pred.csv").open()))
    assert rows[0] == ["index", "predicted", "p_setosa", "p_versicolor", "p_virginica"] and len(rows) == 151
    assert abs(sum(float(p) for p in rows[1][2:]) - 1) < 1e-4

    check = invoke("gradcheck", "tiny.yaml")
    assert check.exit_code == 0, check.output
    assert "FAIL" not in check.stdout and "passed" in check.stdout

    summary = invoke("summary", "tiny.yaml")
    assert summary.exit_code == 0 and "Linear" in summary.stdout and "67 parameters" in summary.stdout
    assert "(N, 8)" in summary.stdout

    timing = invoke("time", "tiny.yaml", "--batches", "3")
    assert timing.exit_code == 0, timing.output
    assert "forward ms" in timing.stdout and "ClassNLLCriterion" in timing.stdout and "total per batch" in timing.stdout


def test_gradcheck_of_the_whole_library_passes():
    result = invoke("gradcheck")
    assert result.exit_code == 0, result.output
    assert "SpatialConvolution" in result.stdout and "MultiMarginCriterion" in result.stdout


def test_a_typo_in_the_config_is_one_line_with_file_line_and_suggestion(project):
    (project / "bad.yaml").write_text(TINY.replace("optimizer: {name: sgd, lr: 0.1, momentum: 0.9}",
                                                  "optimizer:\n  name: sgd\n  learnig_rate: 0.1"))
    result = invoke("train", "bad.yaml")
    assert result.exit_code == 1
    assert "bad.yaml:16" in result.stderr and "learnig_rate" in result.stderr and "learning_rate" in result.stderr
    assert "Traceback" not in result.output


def test_a_bad_data_cell_names_line_and_column(project):
    lines = (project / "iris.csv").read_text().splitlines()
    lines[7] = "5.0,abc,1.5,0.2,setosa"
    (project / "iris.csv").write_text("\n".join(lines) + "\n")
    result = invoke("train", "tiny.yaml")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "iris.csv:8" in line and "sepal_width" in line and "abc" in line


def test_a_missing_checkpoint_and_a_corrupt_one(project):
    result = invoke("eval", "nope.npz")
    assert result.exit_code == 1 and "nope.npz: file not found" in result.stderr
    (project / "junk.npz").write_bytes(b"junk")
    result = invoke("eval", "junk.npz")
    assert result.exit_code == 1 and "not a backprop checkpoint" in result.stderr


def test_usage_errors_exit_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CONFIG" in err[0]


def test_every_command_has_help_with_an_example_and_takes_verbose_and_quiet():
    import typer.main
    command = typer.main.get_command(app)
    assert set(command.commands) >= {"train", "eval", "gradcheck", "predict", "summary", "schema"}
    for name in command.commands:
        result = invoke(name, "--help")
        assert result.exit_code == 0 and "Example" in result.stdout, name
        assert "-v, --verbose" in result.stdout and "-q, --quiet" in result.stdout, name
    from backprop_cli import __version__
    assert invoke("--version").stdout == f"backprop {__version__}\n"
    both = invoke("schema", "-v", "-q")
    assert both.exit_code == 2 and "not both" in both.stderr


def test_quiet_and_verbose(project):
    quiet = invoke("train", "tiny.yaml", "-q")
    assert quiet.exit_code == 0 and "epoch 1/3" not in quiet.stdout and "after epoch 3" in quiet.stdout
    loud = invoke("train", "tiny.yaml", "-v", "--force")
    assert loud.exit_code == 0 and "data: 120 training, 30 validation, 150 test samples" in loud.stdout
    assert "67 parameters" in loud.stdout and "epoch 1/3" in loud.stdout
    assert invoke("summary", "tiny.yaml", "-q").stdout == "67 parameters (0.00 MiB as float32)\n"
    gradcheck = invoke("gradcheck", "tiny.yaml", "-q")
    assert gradcheck.exit_code == 0 and gradcheck.stdout.startswith("all ") and "Linear" not in gradcheck.stdout
    assert invoke("time", "tiny.yaml", "-q", "-n", "2").stdout.endswith(" ms per batch\n")
    assert "confusion" not in invoke("eval", "runs/tiny/best.npz", "-q").stdout
    assert invoke("predict", "runs/tiny/best.npz", "iris.csv", "-o", "p.csv", "-q").stderr == ""


def test_print_config_is_the_resolved_config_and_loads_again(project):
    import yaml
    from backprop_cli.config.schema import load_config
    result = invoke("train", "tiny.yaml", "--print-config", "--set", "training.epochs=7", "optimizer.name=SGD")
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["training"]["epochs"] == 7 and printed["training"]["monitor"] == "val_accuracy"
    assert {k: printed["optimizer"][k] for k in ("name", "lr", "momentum", "dampening", "nesterov")} == {
        "name": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": False}       # defaults filled in
    assert printed["data"]["train"] == "iris.csv" and not (project / "runs").exists()
    (project / "printed.yaml").write_text(result.stdout)
    assert load_config(project / "printed.yaml").dump() == load_config(project / "tiny.yaml", ["training.epochs=7"]).dump()


def test_dry_run_checks_everything_and_writes_nothing(project):
    result = invoke("train", "tiny.yaml", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "data: 120 training, 30 validation, 150 test samples of shape (N, 4)" in result.stdout
    assert "Linear(in_features=4, out_features=8)" in result.stdout and "dry run: nothing trained" in result.stdout
    assert not (project / "runs").exists()
    bad = invoke("train", "tiny.yaml", "--dry-run", "--set", "model.2.Linear=4")
    assert bad.exit_code == 1 and "the model gives outputs of shape (4,) per sample" in bad.stderr


def test_summary_time_and_gradcheck_take_a_checkpoint_told_by_its_content(project):
    assert invoke("train", "tiny.yaml", "-q").exit_code == 0
    shutil.copy(project / "runs/tiny/best.npz", project / "weights.yaml")       # the name says nothing
    shutil.copy(project / "tiny.yaml", project / "config.npz")
    for target in ("runs/tiny/best.npz", "weights.yaml", "config.npz"):
        summary = invoke("summary", target)
        assert summary.exit_code == 0 and "67 parameters" in summary.stdout, (target, summary.output)
    timing = invoke("time", "weights.yaml", "-n", "2")
    assert timing.exit_code == 0 and "total per batch" in timing.stdout, timing.output
    check = invoke("gradcheck", "runs/tiny/best.npz")
    assert check.exit_code == 0 and "passed" in check.stdout, check.output
    other = invoke("summary", "runs/tiny/best.npz", "--set", "model.0.Linear=9")
    assert other.exit_code == 1 and "model.0.weight: shape (8, 4), the model needs (9, 4)" in other.stderr


def test_resuming_with_changed_data_warns_in_one_line(project):
    assert invoke("train", "tiny.yaml", "-q", "--set", "training.epochs=1").exit_code == 0
    with open(project / "iris.csv", "a") as f:
        f.write("5.0,3.0,1.5,0.2,setosa\n")
    result = invoke("train", "tiny.yaml", "-q", "--set", "training.epochs=2", "--resume", "runs/tiny/last.npz")
    assert result.exit_code == 0, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("warning: the data changed since runs/tiny/last.npz was written: data.train (")
    files = load_checkpoint(project / "runs/tiny/last.npz").meta["data_files"]
    assert [f["key"] for f in files] == ["data.train", "data.test"] and files[0]["path"] == "iris.csv"
    assert files[0]["resolved"] == str(project / "iris.csv") and files[0]["size"] == (project / "iris.csv").stat().st_size


def test_shell_completion_is_on():
    env = dict(ENV, _BACKPROP_COMPLETE="complete_bash", COMP_WORDS="backprop tr", COMP_CWORD="1")
    done = subprocess.run([sys.executable, "-m", "backprop_cli"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["train"], done
    assert "--install-completion" in invoke("--help").stdout


def test_schema_is_json_schema():
    schema = json.loads(invoke("schema").stdout)
    assert {"data", "model", "optimizer", "training"} <= set(schema["properties"])


def test_resume_refuses_a_different_config_and_another_runs_directory(project):
    assert invoke("train", "tiny.yaml", "-q", "--set", "training.epochs=1", "--out", "a").exit_code == 0
    assert invoke("train", "tiny.yaml", "-q", "--set", "training.epochs=1", "--out", "b").exit_code == 0
    changed = invoke("train", "tiny.yaml", "--set", "training.batch_size=64", "--resume", "a/last.npz")
    assert changed.exit_code == 1
    assert "--set: training.batch_size=64: 16 in the checkpoint, 64 here" in changed.stderr
    onto_b = invoke("train", "tiny.yaml", "--resume", "a/last.npz", "--out", "b")
    assert onto_b.exit_code == 1 and "b already holds" in onto_b.stderr
    assert len((project / "b/metrics.csv").read_text().splitlines()) == 2         # b is untouched
    more = invoke("train", "tiny.yaml", "-q", "--set", "training.epochs=2", "--resume", "a/last.npz")
    assert more.exit_code == 0 and len((project / "a/metrics.csv").read_text().splitlines()) == 3


def test_resume_refuses_non_finite_optimizer_state(project):
    assert invoke("train", "tiny.yaml", "-q", "--set", "training.epochs=1").exit_code == 0
    ckpt = load_checkpoint(project / "runs/tiny/last.npz")
    ckpt.arrays["optim.momentum_buffer.0"][0, 0] = np.inf
    save_checkpoint(project / "runs/tiny/bad.npz", ckpt.meta, ckpt.arrays)
    result = invoke("train", "tiny.yaml", "--resume", "runs/tiny/bad.npz")
    assert result.exit_code == 1 and "optim.momentum_buffer.0: holds non-finite values" in result.stderr


def test_the_model_must_fit_the_number_of_classes(project):
    (project / "two.yaml").write_text(TINY.replace("Linear: 3", "Linear: 2"))
    result = invoke("train", "two.yaml")
    assert result.exit_code == 1
    assert "two.yaml:11: model.2 (Linear): the model gives outputs of shape (2,) per sample, but the data has 3 classes" in result.stderr


def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    readme = (ROOT / "README.md").read_text()
    blocks = readme.split("```python\n")[1:]
    assert len(blocks) == 3
    for block in blocks:
        exec(compile(block.split("```")[0], "README.md", "exec"), {})


# ----------------------------------------------------------------------------- real processes


def backprop(*args, cwd, **kw):
    env = ENV
    return subprocess.run([sys.executable, "-m", "backprop_cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, **kw)


def test_a_run_directory_copied_elsewhere_resumes_in_a_new_process_bit_identically(project, tmp_path_factory):
    """The project (config, data, the run) copied to another folder resumes from the run's own config.yaml."""
    (project / "tiny.yaml").write_text(TINY.replace("Tanh", "ReLU\n  - Dropout: 0.2"))
    assert backprop("train", "tiny.yaml", "--set", "training.epochs=4", "--out", "straight", cwd=project).returncode == 0
    assert backprop("train", "tiny.yaml", "--set", "training.epochs=2", "--out", "runs/split", cwd=project).returncode == 0
    moved = tmp_path_factory.mktemp("elsewhere") / "copy"
    shutil.copytree(project, moved)
    shutil.rmtree(project / "runs")
    assert "train: ../../iris.csv" in (moved / "runs/split/config.yaml").read_text()
    resumed = backprop("train", "runs/split/config.yaml", "--set", "training.epochs=4", "--resume", "runs/split/last.npz",
                       cwd=moved)
    assert resumed.returncode == 0 and resumed.stderr == "", resumed.stderr
    assert_same_run(project / "straight/last.npz", moved / "runs/split/last.npz", epochs=4)


def assert_same_run(path_a, path_b, epochs):
    """Bit-identical weights, optimizer state and RNG, and the same history (bar timings)."""
    a, b = load_checkpoint(path_a), load_checkpoint(path_b)
    assert set(a.arrays) == set(b.arrays)
    for name in a.arrays:
        assert np.array_equal(a.arrays[name], b.arrays[name]), name
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_sec")} for r in h]
    assert strip(a.meta["history"]) == strip(b.meta["history"]) and len(a.meta["history"]) == epochs
    assert a.meta["rng"] == b.meta["rng"] and a.meta["step"] == b.meta["step"]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_writes_a_checkpoint_and_says_how_to_resume(project, signum, code):
    (project / "tiny.yaml").write_text(TINY.replace("epochs: 3, batch_size: 16", "epochs: 100000, batch_size: 1"))
    proc = subprocess.Popen([sys.executable, "-m", "backprop_cli", "train", "tiny.yaml"], cwd=project,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 60
    while not (project / "runs/tiny/metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    time.sleep(0.05)
    proc.send_signal(signum)                 # a second Ctrl-C changes nothing
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "resume with: backprop train tiny.yaml --resume runs/tiny/last.npz" in err
    assert f"stopped: {signal.Signals(signum).name} in epoch " in err and "error" not in err
    assert "Traceback" not in err
    assert not [p for p in os.listdir(project / "runs/tiny") if p.endswith(".tmp")]
    stopped = load_checkpoint(project / "runs/tiny/last.npz")
    epochs = stopped.meta["epoch"] + 1          # finish the interrupted epoch (or one more)
    resumed = backprop("train", "tiny.yaml", "--set", f"training.epochs={epochs}",
                       "--resume", "runs/tiny/last.npz", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    straight = backprop("train", "tiny.yaml", "--set", f"training.epochs={epochs}", "--out", "straight", cwd=project)
    assert straight.returncode == 0, straight.stderr
    assert_same_run(project / "runs/tiny/last.npz", project / "straight/last.npz", epochs=epochs)


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_every_shipped_config_trains_one_epoch(config, tmp_path):
    result = invoke("train", ROOT / "configs" / config, "-q", "--set", "training.epochs=1", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "last.npz").exists()


def test_an_early_stopped_run_has_nothing_left_to_resume(project):
    (project / "tiny.yaml").write_text(TINY.replace("epochs: 3, batch_size: 16",
                                                    "epochs: 30, batch_size: 16, early_stopping: {patience: 1, min_delta: 10}"))
    stopped = invoke("train", "tiny.yaml", "-q")
    assert stopped.exit_code == 0 and stopped.stderr == "" and "final scores (early stopping after epoch 2)" in stopped.stdout
    last = load_checkpoint(project / "runs/tiny/last.npz")
    assert last.meta["stop_reason"] == "early stopping" and last.meta["epoch"] == 2
    again = invoke("train", "tiny.yaml", "--resume", "runs/tiny/last.npz")
    assert again.exit_code == 0 and "stopped early" in again.stdout and "nothing to do" in again.stdout


def test_predict_names_a_csv_of_the_wrong_width(project):
    assert invoke("train", "tiny.yaml", "-q").exit_code == 0
    (project / "wide.csv").write_text("1,2,3,4,5,6\n")
    result = invoke("predict", "runs/tiny/last.npz", "wide.csv")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: wide.csv:1: found 6 columns and no header; expected 5 like the "
                                     "training data, or its 4 feature columns alone (in order)")
    (project / "unlabelled.csv").write_text("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    rows = invoke("predict", "runs/tiny/last.npz", "unlabelled.csv").stdout.splitlines()
    assert rows[0].startswith("index,predicted,p_setosa") and len(rows) == 3


def test_predict_checks_npz_and_idx_samples_as_training_data_is_checked(project):
    """Samples to predict on get the readers' checks: a NaN is named, not turned into NaN predictions."""
    assert invoke("train", "tiny.yaml", "-q").exit_code == 0
    x = np.ones((3, 4), np.float32)
    x[2, 1] = np.nan
    np.savez(project / "nan.npz", x=x)                          # no y: prediction data needs none
    result = invoke("predict", "runs/tiny/last.npz", "nan.npz")
    assert result.exit_code == 1 and "nan.npz: x[2]: holds a NaN or infinite value" in result.stderr
    with open(project / "lone.npz", "wb") as f:                 # a .npy in disguise
        np.save(f, x)
    result = invoke("predict", "runs/tiny/last.npz", "lone.npz")
    assert result.exit_code == 1 and "a single .npy array" in result.stderr
    write_idx(project / "samples.idx", x.astype(np.float64))    # IDX may store doubles, NaN included
    result = invoke("predict", "runs/tiny/last.npz", "samples.idx")
    assert result.exit_code == 1 and "samples.idx: image 2: holds a NaN or infinite value" in result.stderr
    np.savez(project / "fine.npz", x=np.ones((2, 4)))
    rows = invoke("predict", "runs/tiny/last.npz", "fine.npz").stdout.splitlines()
    assert rows[0].startswith("index,predicted") and len(rows) == 3
