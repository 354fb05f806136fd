"""The training engine and checkpoints: learning, determinism, early stopping, non-finite values,
exact resume (also from mid-epoch), atomic writes and strict loading."""

import json
import os
import zipfile

import numpy as np
import pytest

from backprop_cli import nn
from backprop_cli.engine.checkpoint import FORMAT_VERSION, check_weights, load_checkpoint, save_checkpoint
from backprop_cli.errors import CheckpointError, TrainingError
from backprop_cli.optim import SGD, Adam
from backprop_cli.engine.trainer import Callback, EarlyStopping, Interrupted, Trainer, evaluate


def blobs(n=120, seed=0):
    """Three Gaussian blobs in 2-D: a classifier reaches ~100% on them."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[0, 3], [3, -2], [-3, -2]], dtype=np.float32)
    return (centers[y] + rng.standard_normal((n, 2)).astype(np.float32) * 0.5), y


def make(seed=0, dropout=0.0, optimizer="sgd"):
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(2, 16, rng=rng), nn.ReLU(), nn.Dropout(dropout, rng=rng),
                          nn.Linear(16, 3, rng=rng), nn.LogSoftMax())
    params, grads = model.parameters()
    opt = SGD(params, grads, lr=0.1, momentum=0.9) if optimizer == "sgd" else Adam(params, grads, lr=0.01)
    return Trainer(model, nn.ClassNLLCriterion(), opt, batch_size=16, seed=seed)


def test_trainer_learns_and_reports_metrics():
    x, y = blobs()
    trainer = make()
    history = trainer.fit(x[:90], y[:90], x[90:], y[90:], epochs=15)
    assert len(history) == 15 and history[-1]["epoch"] == 15
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 3
    assert history[-1]["val_accuracy"] >= 0.95
    assert set(history[0]) >= {"train_loss", "val_loss", "val_accuracy", "lr", "seconds", "samples_per_sec"}
    assert evaluate(trainer.model, trainer.criterion, x[90:], y[90:])["accuracy"] == history[-1]["val_accuracy"]


def test_regression_metrics_are_mse_and_mae():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32))
    model = nn.Sequential(nn.Linear(3, 1, rng=0))
    metrics = evaluate(model, nn.MSECriterion(), x, y)
    out = model.forward(x)
    assert metrics["mse"] == pytest.approx(float(np.mean((out - y) ** 2)), rel=1e-5)
    assert metrics["mae"] == pytest.approx(float(np.mean(np.abs(out - y))), rel=1e-5)
    assert metrics["loss"] == pytest.approx(metrics["mse"], rel=1e-5)


def test_same_seed_gives_bit_identical_weights():
    x, y = blobs()
    a, b = make(seed=3, dropout=0.2), make(seed=3, dropout=0.2)
    a.fit(x, y, epochs=3)
    b.fit(x, y, epochs=3)
    for (name, pa, _), (_, pb, _) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert np.array_equal(pa, pb), name


def test_early_stopping_restores_the_best_weights():
    x, y = blobs()
    trainer = make()
    # Monitoring the validation loss in "max" mode: it falls every epoch, so nothing after epoch 1 improves.
    trainer.monitor, trainer.mode, trainer.early_stopping = "val_loss", "max", EarlyStopping(patience=2)
    seen = []

    class Snap(Callback):
        def on_epoch_end(self, t, record):
            seen.append(t.model.state_dict())

    trainer.callbacks.append(Snap())
    history = trainer.fit(x[:90], y[:90], x[90:], y[90:], epochs=20)
    assert len(history) == 3 and trainer.stop_reason == "early stopping" and trainer.best_epoch == 1
    for name, value in trainer.model.state_dict().items():
        assert np.array_equal(value, seen[0][name]), name


def test_non_finite_loss_names_epoch_batch_and_layer():
    x, y = blobs(32)
    x[20, 0] = np.nan                    # sample 20 lands in the second batch (no shuffle)
    trainer = make()
    trainer.shuffle = False
    with pytest.raises(TrainingError, match=r"non-finite loss at epoch 1, batch 2 .*layer 0 \(Linear\) output"):
        trainer.fit(x, y, epochs=1)


def test_exploding_gradients_stop_training():
    x, y = blobs(64)
    trainer = make()
    trainer.optimizer.lr = 1e30
    with pytest.raises(TrainingError, match="non-finite (loss|gradient) at epoch"):
        trainer.fit(x * 1e20, y, epochs=3)


def _state(trainer):
    meta, arrays = trainer.state_dict()
    return meta, arrays


def _without_timing(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_sec")} for r in history]


def test_resume_from_an_epoch_boundary_is_bit_identical(tmp_path):
    x, y = blobs()
    straight = make(dropout=0.3)
    straight.fit(x[:90], y[:90], x[90:], y[90:], epochs=4)

    first = make(dropout=0.3)
    first.fit(x[:90], y[:90], x[90:], y[90:], epochs=2)
    meta, arrays = first.state_dict()
    save_checkpoint(tmp_path / "last.npz", meta, arrays)

    ckpt = load_checkpoint(tmp_path / "last.npz")
    resumed = make(seed=99, dropout=0.3)  # different init and RNG: everything must come from the file
    resumed.load_state_dict(ckpt.meta, ckpt.arrays)
    resumed.fit(x[:90], y[:90], x[90:], y[90:], epochs=4)
    _assert_same(straight, resumed)


def test_resume_from_the_middle_of_an_epoch_is_bit_identical(tmp_path):
    x, y = blobs()
    straight = make(optimizer="adam", dropout=0.2)
    straight.fit(x, y, epochs=3)

    class StopAt(Callback):
        def on_batch_end(self, t, batch, loss, samples):
            if t.epoch == 1 and batch == 3:
                t.stop_requested = "SIGINT"

    interrupted = make(optimizer="adam", dropout=0.2)
    interrupted.callbacks.append(StopAt())
    with pytest.raises(Interrupted):
        interrupted.fit(x, y, epochs=3)
    assert interrupted.mid_epoch
    save_checkpoint(tmp_path / "last.npz", *interrupted.state_dict())

    ckpt = load_checkpoint(tmp_path / "last.npz")
    resumed = make(seed=5, optimizer="adam", dropout=0.2)
    resumed.load_state_dict(ckpt.meta, ckpt.arrays)
    resumed.fit(x, y, epochs=3)
    _assert_same(straight, resumed)


def _assert_same(a, b):
    meta_a, arrays_a = a.state_dict()
    meta_b, arrays_b = b.state_dict()
    assert set(arrays_a) == set(arrays_b)
    for name in arrays_a:
        assert np.array_equal(arrays_a[name], arrays_b[name]), name
    assert _without_timing(meta_a["history"]) == _without_timing(meta_b["history"])
    assert meta_a["step"] == meta_b["step"] and meta_a["rng"] == meta_b["rng"]


# ----------------------------------------------------------------------------- checkpoint files
def test_checkpoint_round_trip_and_no_pickle(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"epoch": 3, "history": [{"a": 1.5}]}, {"model.w": np.arange(6.0).reshape(2, 3)})
    ckpt = load_checkpoint(path)
    assert ckpt.meta == {"epoch": 3, "history": [{"a": 1.5}]}
    assert np.array_equal(ckpt.group("model")["w"], np.arange(6.0).reshape(2, 3))
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["format_version.npy", "meta.npy", "model.w.npy"]


def test_a_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.npz"
    save_checkpoint(path, {"epoch": 1}, {"model.w": np.ones(3)})
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"epoch": 2}, {"model.w": np.zeros(3)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.npz"]


@pytest.mark.parametrize("content, message", [
    (b"not a zip file", "not a backprop checkpoint"),
    (None, "format version 99 is not supported"),
])
def test_bad_checkpoint_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if content is None:
        np.savez(path, format_version=np.array(99), meta=np.frombuffer(b"{}", np.uint8))
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, format_version=np.array(FORMAT_VERSION), meta=np.frombuffer(b"{}", np.uint8),
             payload=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)


def test_weights_are_checked_by_name_shape_dtype_and_finiteness(tmp_path):
    expected = {"0.weight": np.zeros((4, 3), np.float32), "0.bias": np.zeros(4, np.float32),
                "2.weight": np.zeros((2, 4), np.float32)}
    stored = {"model.0.weight": np.zeros((3, 4), np.float32), "model.0.bias": np.full(4, np.inf, np.float32),
              "model.9.weight": np.zeros(1, np.float32)}
    save_checkpoint(tmp_path / "c.npz", {}, stored)
    with pytest.raises(CheckpointError) as info:
        check_weights(load_checkpoint(tmp_path / "c.npz"), expected)
    message = str(info.value)
    for part in ("model.2.weight: missing", "model.9.weight: not in the model",
                 "model.0.weight: shape (3, 4), the model needs (4, 3)", "model.0.bias: holds non-finite values"):
        assert part in message


def test_meta_is_json_with_exact_rng_state(tmp_path):
    trainer = make()
    x, y = blobs(32)
    trainer.fit(x, y, epochs=1)
    save_checkpoint(tmp_path / "c.npz", *trainer.state_dict())
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        meta = json.loads(f["meta"].tobytes().decode())
    state = trainer.rng.bit_generator.state["state"]["state"]
    assert int(meta["rng"]["state"]["state"]) == state


def test_binary_accuracy_thresholds_logits_at_zero():
    model = nn.Sequential(nn.Identity())
    logits = np.array([[0.3], [0.4], [-0.2], [2.0]], np.float32)
    targets = np.array([[1.0], [1.0], [0.0], [1.0]], np.float32)
    assert evaluate(model, nn.BCEWithLogitsCriterion(), logits, targets)["accuracy"] == 1.0
    probabilities = np.array([[0.7], [0.4], [0.2], [0.9]], np.float32)
    assert evaluate(model, nn.BCECriterion(), probabilities, targets)["accuracy"] == 0.75


def test_checkpoint_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "c.npz", {}, {})
    finally:
        os.umask(old)
    assert (tmp_path / "c.npz").stat().st_mode & 0o777 == 0o644


def test_an_infinite_gradient_is_caught_even_when_clipping_by_value():
    class InfiniteGradient(nn.MSECriterion):
        def update_grad_input(self, output, target):
            return np.full_like(output, np.inf)

    model = nn.Sequential(nn.Linear(2, 1, rng=0))
    trainer = Trainer(model, InfiniteGradient(), SGD(*model.parameters(), lr=0.1), clip_value=5.0)
    x = np.ones((8, 2), np.float32)
    with pytest.raises(TrainingError, match="non-finite gradient at epoch 1, batch 1"):
        trainer.fit(x, np.zeros((8, 1), np.float32), epochs=1)


def test_without_validation_data_the_training_loss_is_monitored():
    x, y = blobs()
    trainer = make()
    trainer.early_stopping = EarlyStopping(patience=100)
    history = trainer.fit(x, y, epochs=3)
    assert trainer.monitored == ("train_loss", "min") and trainer.monitor == "val_loss"
    assert trainer.best_metric == min(r["train_loss"] for r in history)


def test_output_shape_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.BatchNormalization(3), nn.ReLU())
    x = np.ones((5, 2), np.float32)
    model.forward(x)
    assert model.output_shape((2,)) == (3,) and model.layer_shapes((2,)) == [(3,), (3,), (3,)]
    assert model.training and model.output.shape == (5, 3)
    model.backward(x, np.ones((5, 3), np.float32))          # the caches still belong to x


def test_a_criterion_without_reduction_cannot_train():
    model = nn.Sequential(nn.Linear(2, 2, rng=0))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss\(reduction='none'\) gives one loss per sample"):
        Trainer(model, nn.CrossEntropyLoss(reduction="none"), SGD(model, lr=0.1))


def test_one_seed_gives_independent_streams_for_split_init_shuffle_and_dropout(tmp_path):
    """Drawing more initial weights (a wider layer) changes neither the Dropout masks nor the
    validation split nor the sample order; and no two streams give the same numbers."""
    from backprop_cli.config.schema import load_config
    from backprop_cli.engine.experiment import build, load_data, make_trainer
    from backprop_cli.nn.init import random_streams

    firsts = [g.integers(0, 2**32, 4).tolist() for g in random_streams(5)]
    assert len({tuple(f) for f in firsts}) == 4
    x, y = blobs(60)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    seen = []
    for width in (4, 40):
        (tmp_path / "c.yaml").write_text(
            f"seed: 5\ndata: {{train: d.npz, validation_split: 0.2}}\n"
            f"model: [{{Linear: {width}}}, Tanh, {{Dropout: 0.5}}, {{Linear: 3}}]\n"
            "criterion: CrossEntropyLoss\noptimizer: {name: sgd, lr: 0.1}\n")
        config = load_config(tmp_path / "c.yaml")
        data = load_data(config)
        model, criterion = build(config, data.input_shape)
        mask = model[2].rng.random(8).tolist()
        order = make_trainer(config, model, criterion).rng.permutation(10).tolist()
        seen.append((data.val.x.tolist(), mask, order))
    assert seen[0] == seen[1]
