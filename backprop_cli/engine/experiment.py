"""From a validated config to data, model, trainer and checkpoints: what ``train``, ``eval``, ``predict``
and ``gradcheck`` share. No terminal output here; the CLI renders what these functions return."""

from __future__ import annotations

import csv
import gzip
import reprlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..config.build import build_criterion, build_model, build_optimizer, build_schedule
from .checkpoint import Checkpoint, check_weights, load_checkpoint, save_checkpoint
from .environment import environment as current_environment
from ..config.schema import Config, config_from_dict, load_config
from ..data.dataset import listing
from ..data import Dataset, Normalizer, idx_images, infer_format, load_dataset, npz_features, train_val_split
from ..errors import CheckpointError, ConfigError, DataError
from ..nn.container import Sequential
from ..nn.init import random_streams
from ..nn.module import Criterion
from .metrics import PER_CLASS
from .trainer import Callback, EarlyStopping, Trainer, evaluation_mode, measure


@dataclass
class Data:
    """The config's datasets, normalised with statistics fitted on the training set."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    normalizer: Normalizer
    task: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def classes(self) -> list[str] | None:
        return self.train.classes


def read_split(config: Config, which: str, task: str, classes: list[str] | None) -> Dataset | None:
    """Read ``data.<which>`` (train, validation or test) as the config describes; None when not set."""
    d = config.data
    path = getattr(d, which)
    if path is None:
        return None
    return load_dataset(path, labels=getattr(d, f"{which}_labels"), format=d.format, task=task,
                        label_column=d.label_column, header=d.header, classes=classes,
                        dtype=config.training.dtype)


def load_data(config: Config, *, splits=("train", "validation", "test")) -> Data:
    """Read the datasets (in ``training.dtype``), split off validation if asked, fit the normaliser on
    training data only."""
    task = config.data.task
    train = read_split(config, "train", task, None)
    classes = train.classes
    val = read_split(config, "validation", task, classes) if "validation" in splits else None
    if val is None and config.data.validation_split > 0 and "validation" in splits:
        try:
            train, val = train_val_split(train, config.data.validation_split, random_streams(config.seed).split)
        except ValueError as err:                 # a fraction that leaves no sample on one side
            raise config.error("data.validation_split", f"{err} (of {train.source})") from None
    test = read_split(config, "test", task, classes) if "test" in splits else None
    normalizer = Normalizer(config.data.normalize, scale=config.data.scale, dtype=config.training.dtype)
    normalizer.fit(train.x)
    for ds in (val, test):
        if ds is not None and ds.x.shape[1:] != train.x.shape[1:]:
            raise DataError(f"samples of shape {tuple(ds.x.shape[1:])}, but the training data's are "
                            f"{tuple(train.x.shape[1:])}", file=ds.source)
    for ds in (train, val, test):
        if ds is not None:
            ds.x = normalizer.apply(ds.x)
    return Data(train, val, test, normalizer, task)


def build(config: Config, input_shape: tuple[int, ...]):
    """Model and criterion for ``config`` (weights and Dropout noise from their streams of ``config.seed``)."""
    dtype = np.dtype(config.training.dtype)
    streams = random_streams(config.seed)
    model = build_model(config, input_shape, streams.init, dtype, noise=streams.noise)
    return model, build_criterion(config, dtype)


def prepare(path: str | Path, overrides=()) -> tuple[Config, Data, Sequential, Criterion]:
    """The config at ``path``, its training data, and its model and criterion (for gradcheck,
    summary and time, which need no validation or test data)."""
    config = load_config(path, overrides)
    data = load_data(config, splits=("train",))
    return (config, data, *build(config, data.input_shape))


def summarize(path: str | Path, overrides=()) -> tuple[list[tuple[str, str, tuple[int, ...], int]], int]:
    """The config's model as rows ``(index, layer, per-sample output shape, parameters)``, the input
    first, and the total parameter count. A layer used again reads ``... (shared with 2)``, with no
    parameters of its own."""
    _, data, model, _ = prepare(path, overrides)
    rows, first = [("", "input", data.input_shape, 0)], {}
    for i, (layer, shape) in enumerate(zip(model.layers, model.layer_shapes(data.input_shape))):
        j = first.setdefault(id(layer), i)
        rows.append((str(i), layer.one_line() + (f" (shared with {j})" if j != i else ""), shape,
                     layer.num_parameters() if j == i else 0))
    return rows, model.num_parameters()


def check_output(config: Config, model: Sequential, data: Data) -> None:
    """The model must give one score per class (classification) or the target's width (otherwise)."""
    out = model.output_shape(data.input_shape)
    if data.task == "classification":
        want, what = (len(data.classes),), f"{len(data.classes)} classes"
    else:
        want, what = tuple(data.train.y.shape[1:]), f"targets of shape {tuple(data.train.y.shape[1:])}"
    if out != want:            # name the last layer with weights: that is where the width is set
        sized = [i for i, layer in enumerate(model.layers) if layer.num_parameters()] or [len(model.layers) - 1]
        i = sized[-1]
        raise config.error(f"model.{i}", f"the model gives outputs of shape {out} per sample, but the data "
                           f"has {what}", label=f"model.{i} ({config.model[i].name})")


def check_criterion(config: Config, model: Sequential, criterion: Criterion, data: Data) -> None:
    """What training would find at its first step, found before it: class weights must be one per
    class, and the criterion must take two of the model's outputs with the first two training targets
    (its weights broadcast, its targets fit)."""
    spec, label = config.criterion, f"criterion ({config.criterion.name})"
    weights = spec.args.get("weights")
    if data.task == "classification" and isinstance(weights, list) and len(weights) != len(data.classes):
        raise config.error(f"criterion.{spec.name}.weights", f"{len(weights)} class weights, but the data has "
                           f"{len(data.classes)} classes ({listing(data.classes)})")
    out, y = model.output_shape(data.input_shape), data.train.y[:2]
    try:
        with np.errstate(all="ignore"):           # 0.5: a probability, a log-probability, a score alike
            criterion.forward(np.full((len(y),) + out, 0.5, dtype=config.training.dtype), y)
    except (ValueError, TypeError) as err:
        raise config.error("criterion", str(err), label=label) from None


def make_trainer(config: Config, model: Sequential, criterion: Criterion, callbacks: list[Callback] = ()) -> Trainer:
    """A trainer for ``config`` (without validation data the monitored metric is the training loss)."""
    t = config.training
    monitor, mode = t.monitor, t.mode
    params, grads = model.parameters()
    early = EarlyStopping(t.early_stopping.patience, t.early_stopping.min_delta) if t.early_stopping else None
    return Trainer(model, criterion, build_optimizer(config, params, grads), build_schedule(config),
                   batch_size=t.batch_size, shuffle=t.shuffle, seed=config.seed, clip_norm=t.clip_grad_norm,
                   clip_value=t.clip_grad_value, monitor=monitor, mode=mode, early_stopping=early,
                   callbacks=list(callbacks))


# ---------------------------------------------------------------------------- checkpoints
def run_meta(config: Config, data: Data, environment: dict | None = None) -> dict:
    """What every checkpoint of a run records beside the trainer's state: the resolved config, the
    classes, task and input shape, and the :func:`~backprop_cli.engine.environment.environment`."""
    return {"config": config.dump(), "classes": data.classes, "task": data.task, "input_shape": list(data.input_shape),
            "backprop_version": __version__, "environment": environment or current_environment(config.seed)}


def save(path: str | Path, trainer: Trainer, config: Config, data: Data, environment: dict | None = None) -> None:
    """Write ``trainer``'s whole state with :func:`run_meta` and the normaliser (atomically). The
    model's caches (``clear_state``) go first: nothing of the last batch is kept past a checkpoint."""
    trainer.model.clear_state()
    meta, arrays = trainer.state_dict()
    meta.update(run_meta(config, data, environment))
    arrays.update({f"norm.{k}": v for k, v in data.normalizer.state_dict().items()})
    save_checkpoint(path, meta, arrays)


@dataclass
class Restored:
    """What a checkpoint rebuilds: the resolved config, a model holding the stored weights, and the rest."""

    checkpoint: Checkpoint
    config: Config
    model: Sequential
    criterion: Criterion
    normalizer: Normalizer
    classes: list[str] | None
    task: str
    input_shape: tuple[int, ...]


def restore(path: str | Path) -> Restored:
    """Load a checkpoint and rebuild its model from the stored config; every stored tensor is checked
    against the model (names, shapes, dtypes, finite values) and all mismatches reported at once."""
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    missing = [k for k in ("config", "input_shape", "task", "epoch", "history") if k not in meta]
    if missing:
        raise CheckpointError(f"meta lacks {', '.join(missing)}", file=ckpt.path, where="meta")
    try:
        config = config_from_dict(meta["config"])
    except ConfigError as err:
        raise _stored_config_error(err, ckpt.path) from None
    input_shape = _input_shape(meta["input_shape"], ckpt.path)
    try:
        model, criterion = build(config, input_shape)
    except ConfigError as err:                    # e.g. an input_shape too large for the stored layers
        raise CheckpointError(f"the stored model cannot be built for samples shaped {input_shape}: {err}",
                              file=ckpt.path, where="meta.input_shape") from None
    model.load_state_dict(check_weights(ckpt, model.state_dict()))
    try:
        normalizer = Normalizer.from_state(ckpt.group("norm"))
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"normalisation statistics unreadable: {err}", file=ckpt.path, where="norm") from None
    return Restored(ckpt, config, model, criterion, normalizer, meta.get("classes"), meta["task"], input_shape)


def _stored_config_error(err: ConfigError, path: str) -> CheckpointError:
    """A checkpoint's config that does not load: most often a plugin the model was trained with
    that is no longer where it was (the checkpoint names it; the code is never in the file)."""
    for problem in getattr(err, "problems", [err]):
        if (problem.where or "").startswith("plugins"):
            return CheckpointError(f"the model needs the plugin it was trained with: {problem.detail}",
                                   file=path, where=problem.where)
    return CheckpointError(f"stored config is invalid: {err}", file=path, where="meta.config")


def _input_shape(value, path: str) -> tuple[int, ...]:
    """``meta.input_shape``: a list of positive integers, a sample's shape without the batch axis."""
    if (not isinstance(value, list) or not 1 <= len(value) <= 8
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in value)):
        raise CheckpointError(f"expected a list of 1 to 8 positive integers (a sample's shape), got "
                              f"{reprlib.repr(value)}", file=path, where="meta.input_shape")
    return tuple(value)


def evaluate_checkpoint(path: str | Path, data: str | Path | None = None,
                        labels: str | Path | None = None) -> dict:
    """:func:`score` of the checkpoint at ``path`` on ``data`` (default: its config's test set)."""
    restored = restore(path)
    return {"checkpoint": str(path), **score(restored, read_eval_data(restored, data, labels))}


def predict_checkpoint(path: str | Path, data: str | Path) -> tuple[list[str], list[list[str]]]:
    """:func:`prediction_rows` of the checkpoint at ``path`` for the samples in ``data``."""
    restored = restore(path)
    return prediction_rows(restored, read_features(restored, data), str(data))


def read_eval_data(restored: Restored, path: str | Path | None = None, labels: str | Path | None = None) -> Dataset:
    """Labelled data to score: ``path`` read the way the training data was, else the config's test set."""
    cfg = restored.config
    if path is None:
        dataset = read_split(cfg, "test", restored.task, restored.classes)
        if dataset is None:
            raise DataError("the checkpoint's config has no data.test; pass --data FILE", file=restored.checkpoint.path)
        return dataset
    return load_dataset(path, labels=labels, format=_format_of(path, cfg), task=restored.task,
                        label_column=cfg.data.label_column, header=cfg.data.header, classes=restored.classes,
                        dtype=cfg.training.dtype)


def _format_of(path: str | Path, config: Config) -> str:
    """The format the file's name says, else the training data's."""
    try:
        return infer_format(path)
    except DataError:
        return config.data.format


def read_features(restored: Restored, path: str | Path) -> np.ndarray:
    """Samples to predict on, labels optional: a CSV with or without its label column, IDX images,
    or an ``.npz`` with ``x``."""
    cfg = restored.config
    fmt = _format_of(path, cfg)
    dtype = cfg.training.dtype
    if fmt == "idx":
        return idx_images(path, dtype)
    if fmt == "npz":
        return npz_features(path, dtype)
    features, width = int(np.prod(restored.input_shape)), _csv_width(path)
    if width == features:
        return load_dataset(path, format=fmt, task=restored.task, label_column=None, header=cfg.data.header,
                            dtype=dtype).x
    if width == features + 1:
        return read_eval_data(restored, path).x
    raise DataError(f"{width} columns, but the model takes {features} features (and optionally the label column)",
                    file=str(path), line=1)


def _csv_width(path: str | Path) -> int:
    """The number of cells in the first row of a CSV (or TSV) file, gzipped or not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    delimiter = "\t" if str(path).removesuffix(".gz").endswith(".tsv") else ","
    with opener(path, "rt", newline="") as f:
        return len(next(csv.reader(f, delimiter=delimiter), []))


def model_inputs(restored: Restored, x: np.ndarray, source: str) -> np.ndarray:
    """Normalise raw samples with the training statistics, after checking they fit the model."""
    if tuple(x.shape[1:]) != restored.input_shape:
        raise DataError(f"samples of shape {tuple(x.shape[1:])}, but the model takes {restored.input_shape}",
                        file=source)
    return restored.normalizer.apply(x).astype(restored.config.training.dtype, copy=False)


def forward_all(model: Sequential, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for every sample, in evaluation mode (its modes restored), batch by batch."""
    with evaluation_mode(model):
        return np.concatenate([model.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def score(restored: Restored, dataset: Dataset) -> dict:
    """Loss and metrics of the restored model on ``dataset`` in one pass; for class targets also the
    confusion matrix and each class's precision, recall, F1 and support. Plain data, ready for ``--json``."""
    x = model_inputs(restored, dataset.x, dataset.source)
    loss, report = measure(restored.model, restored.criterion, x, dataset.y)
    meta = restored.checkpoint.meta
    result = {"data": dataset.source, "samples": len(x), "epoch": meta["epoch"],
              "weights": {key: meta.get(key) for key in ("epoch", "best_epoch", "best_metric", "monitor", "mode")},
              "environment": meta.get("environment"),
              "metrics": {"loss": loss, **report.metrics}}
    if report.per_class is not None:
        names = restored.classes if restored.task == "classification" else ["0", "1"]
        result.update(classes=names, confusion_matrix=report.confusion.tolist(),
                      per_class={name: {key: report.per_class[key][i] for key in (*PER_CLASS, "support")}
                                 for i, name in enumerate(names)})
    return result


def prediction_rows(restored: Restored, x: np.ndarray, source: str) -> tuple[list[str], list[list[str]]]:
    """A CSV table of predictions: the class and each class's probability for classifiers, the
    predicted 0/1 and its probability per output for binary models, the values for regression."""
    output = forward_all(restored.model, model_inputs(restored, x, source))
    flat = output.reshape(len(output), -1)
    criterion = restored.criterion
    numbers = lambda row: [f"{v:.6g}" for v in row]
    if restored.task == "classification":
        header = ["index", "predicted"] + [f"p_{c}" for c in restored.classes]
        rows = [[str(i), restored.classes[k]] + numbers(p)
                for i, (k, p) in enumerate(zip(criterion.predictions(output), criterion.probabilities(output)))]
    elif restored.task == "binary":
        suffix = [""] if flat.shape[1] == 1 else [f"_{j}" for j in range(flat.shape[1])]
        header = ["index"] + [f"predicted{s}" for s in suffix] + [f"p{s}" for s in suffix]
        rows = [[str(i)] + [str(c) for c in picked] + numbers(p) for i, (picked, p)
                in enumerate(zip(criterion.predictions(flat), criterion.probabilities(flat)))]
    else:
        header = ["index"] + (["prediction"] if flat.shape[1] == 1 else [f"prediction_{j}" for j in range(flat.shape[1])])
        rows = [[str(i)] + numbers(row) for i, row in enumerate(flat)]
    return header, rows
