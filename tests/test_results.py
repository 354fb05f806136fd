"""Results a user can trust: the final table names the weights it scores (and matches eval of
best.npz and last.npz), best.npz says what chose it, and scoring is one pass that leaves the model as it was."""

import json

import numpy as np
import pytest

from backprop_cli.engine.checkpoint import load_checkpoint
from backprop_cli.engine.experiment import evaluate_checkpoint, restore, read_eval_data, score
from backprop_cli.engine.run import open_run
from common import TINY as CLI_TINY, invoke


TINY = CLI_TINY.replace("epochs: 3, batch_size: 16",
                        "epochs: 30, batch_size: 16, early_stopping: {patience: 1, min_delta: 10}")


@pytest.fixture
def project(iris_dir):
    (iris_dir / "tiny.yaml").write_text(TINY)
    return iris_dir


def test_an_early_stopped_run_s_final_table_scores_best_and_last_as_eval_does(project):
    result = invoke("train", "tiny.yaml", "-q")          # min_delta 10: epoch 2 is no better, patience 1 stops
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "final scores (early stopping after epoch 2)" in out
    assert "best.npz holds epoch 1 of 2: the highest val_accuracy" in out
    for name, label in (("best.npz", "best, epoch 1 of 2"), ("last.npz", "last, epoch 2 of 2")):
        report = json.loads(invoke("eval", f"runs/tiny/{name}", "--json").stdout)
        row = next(line for line in out.splitlines() if line.strip().startswith(label) and "test" in line)
        m = report["metrics"]
        assert f"{m['loss']:.4f}" in row and f"{100 * m['accuracy']:.2f}%" in row and f"{100 * m['f1_macro']:.2f}%" in row


def test_the_final_scores_are_eval_s_numbers_exactly(project):
    run = open_run("tiny.yaml")
    scored = run.train()
    assert [(s.weights, s.epoch) for s in scored] == [("best", 1), ("last", 2)]
    assert list(scored[0].splits) == ["train", "validation", "test"]
    for s, name in zip(scored, ("best.npz", "last.npz")):
        loss, report = s.splits["test"]
        evaluated = evaluate_checkpoint(f"runs/tiny/{name}")
        assert evaluated["metrics"] == {"loss": loss, **report.metrics}
        assert evaluated["confusion_matrix"] == report.confusion.tolist()
    best = load_checkpoint("runs/tiny/best.npz").meta
    assert (best["epoch"], best["best_epoch"], best["monitor"], best["mode"]) == (1, 1, "val_accuracy", "max")
    # the model is left as fit left it: the best weights, after early stopping
    assert all(np.array_equal(v, run.trainer.best.state[k]) for k, v in run.trainer.model.state_dict().items())


def test_one_row_when_the_last_weights_are_the_best(project):
    (project / "tiny.yaml").write_text(TINY.replace("epochs: 30", "epochs: 1"))
    result = invoke("train", "tiny.yaml", "-q")
    assert result.exit_code == 0, result.output
    rows = [line.strip() for line in result.stdout.splitlines() if "epoch 1 of 1" in line and "│" in line]
    assert len(rows) == 3 and all(row.startswith("last = best, epoch 1 of 1") for row in rows)


def test_without_validation_data_best_npz_says_it_was_chosen_by_the_training_loss(project):
    config = TINY.replace("validation_split: 0.2", "validation_split: 0").replace(
        ", early_stopping: {patience: 1, min_delta: 10}", "").replace("epochs: 30", "epochs: 2")
    (project / "tiny.yaml").write_text(config)
    result = invoke("train", "tiny.yaml", "-q")
    assert result.exit_code == 0, result.output
    assert "the lowest train_loss (no validation data)" in result.stdout
    meta = load_checkpoint("runs/tiny/best.npz").meta
    assert (meta["monitor"], meta["mode"]) == ("train_loss", "min")
    shown = invoke("eval", "runs/tiny/best.npz")
    assert f"weights of epoch {meta['epoch']}, the best so far by the lowest train_loss" in shown.stdout


def test_scoring_is_one_pass_that_restores_the_model_s_modes(project, monkeypatch):
    (project / "tiny.yaml").write_text(TINY.replace("epochs: 30", "epochs: 1"))
    assert invoke("train", "tiny.yaml", "-q").exit_code == 0
    restored = restore("runs/tiny/last.npz")
    dataset = read_eval_data(restored)
    calls = []
    forward = type(restored.model).forward
    monkeypatch.setattr(type(restored.model), "forward", lambda self, x: calls.append(len(x)) or forward(self, x))
    restored.model.train()
    result = score(restored, dataset)
    assert sum(calls) == 150 and result["samples"] == 150          # each sample through the model once
    assert all(m.training for m in restored.model.modules())
    assert set(result["per_class"]["setosa"]) == {"precision", "recall", "f1", "support"}


# ---------------------------------------------------------------------------- reproducibility metadata
def test_checkpoints_and_run_json_record_the_environment(project):
    (project / "tiny.yaml").write_text(TINY.replace("epochs: 30", "epochs: 1"))
    assert invoke("train", "tiny.yaml", "-q", "--seed", "7").exit_code == 0
    env = load_checkpoint("runs/tiny/last.npz").meta["environment"]
    assert env["numpy"] == np.__version__ and env["seed"] == 7 and env["backprop"] == "0.1.0"
    assert set(env["blas"]) == {"name", "version", "threads", "source"} and env["blas"]["name"]
    assert env["python"].split()[0] == ".".join(map(str, __import__("sys").version_info[:3]))
    assert env["platform"] and isinstance(env["command"], str)
    record = json.loads((project / "runs/tiny/run.json").read_text())
    assert record["name"] == "tiny" and record["environment"] == env
    shown = invoke("eval", "runs/tiny/last.npz")
    assert "environment of the run that wrote it" in shown.stdout and np.__version__ in shown.stdout


def test_summary_of_a_checkpoint_shows_its_environment_and_data_files_as_eval_does(project):
    (project / "tiny.yaml").write_text(TINY.replace("epochs: 30", "epochs: 1"))
    assert invoke("train", "tiny.yaml", "-q", "--seed", "7").exit_code == 0
    digest = load_checkpoint("runs/tiny/last.npz").meta["data_files"][0]["sha256"]
    for verb in ("summary", "eval"):
        shown = invoke(verb, "runs/tiny/last.npz")
        assert shown.exit_code == 0, shown.output
        assert "environment of the run that wrote it" in shown.stdout and np.__version__ in shown.stdout
        assert "data.train" in shown.stdout and digest in shown.stdout, verb
    assert invoke("summary", "runs/tiny/last.npz", "-q").stdout == "67 parameters (0.00 MiB as float32)\n"
    assert "environment" not in invoke("summary", "tiny.yaml").stdout


def test_without_threadpoolctl_the_blas_comes_from_numpy_s_build_configuration(monkeypatch):
    import builtins

    from backprop_cli.engine.environment import blas_info
    real_import = builtins.__import__

    def no_threadpoolctl(name, *args, **kwargs):
        if name == "threadpoolctl":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_threadpoolctl)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    info = blas_info()
    assert info["source"] == "numpy build configuration" and info["threads"] == 3 and info["name"]


def test_resuming_under_another_numpy_or_blas_thread_count_says_so_once(project):
    from backprop_cli.engine.checkpoint import save_checkpoint

    (project / "tiny.yaml").write_text(TINY.replace(", early_stopping: {patience: 1, min_delta: 10}", "")
                                       .replace("epochs: 30", "epochs: 1"))
    assert invoke("train", "tiny.yaml", "-q").exit_code == 0
    same = invoke("train", "tiny.yaml", "-q", "--set", "training.epochs=2", "--resume", "runs/tiny/last.npz")
    assert same.exit_code == 0 and "warning" not in same.stderr
    ckpt = load_checkpoint("runs/tiny/last.npz")
    ckpt.meta["environment"]["blas"]["threads"] = 64
    ckpt.meta["environment"]["numpy"] = "1.26.0"
    save_checkpoint("runs/tiny/last.npz", ckpt.meta, ckpt.arrays)
    other = invoke("train", "tiny.yaml", "-q", "--set", "training.epochs=3", "--resume", "runs/tiny/last.npz")
    assert other.exit_code == 0, other.output
    assert other.stderr.count("warning:") == 1
    assert "written with numpy 1.26.0" in other.stderr and "64 threads" in other.stderr
    assert "may differ in the last bits" in other.stderr
    record = json.loads((project / "runs/tiny/run.json").read_text())
    assert record["resumed_from"]["environment"]["numpy"] == "1.26.0" and record["resumed_from"]["epoch"] == 2


def test_the_reported_metrics_can_be_monitored(project):
    from backprop_cli.config.schema import load_config
    from backprop_cli.errors import ConfigError

    config = load_config("tiny.yaml", ["training.monitor=val_f1_macro"])
    assert (config.training.monitor, config.training.mode) == ("val_f1_macro", "max")
    run = open_run("tiny.yaml", ["training.monitor=val_f1_macro"])
    run.train()
    assert load_checkpoint("runs/tiny/best.npz").meta["monitor"] == "val_f1_macro"
    with pytest.raises(ConfigError, match=r"training.monitor=val_r2: val_r2 needs a regression task, this one is classification"):
        load_config("tiny.yaml", ["training.monitor=val_r2"])
