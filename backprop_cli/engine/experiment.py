"""From a validated config to data, model, trainer and checkpoints: what ``train``, ``eval``, ``predict``
and ``gradcheck`` share. No terminal output here; the CLI renders what these functions return."""

from __future__ import annotations

import csv
import hashlib
import io
import reprlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..config.build import build_criterion, build_model, build_optimizer, build_schedule
from .checkpoint import Checkpoint, atomic_write, check_weights, is_checkpoint, load_checkpoint
from .environment import environment as current_environment
from ..config.data import guess_format
from ..config.schema import DATA_FILES, Config, config_from_dict, load_config
from ..data.dataset import listing
from ..data import (Columns, Dataset, Normalizer, idx_images, is_npy_dir, load_dataset, npy_features,
                    npz_features, train_val_split)
from ..data.npy import npy_files
from ..errors import CheckpointError, ConfigError, DataError
from ..nn.container import Sequential
from ..nn.init import random_streams
from ..nn.module import Criterion
from .metrics import PER_CLASS
from .trainer import Callback, EarlyStopping, Trainer, evaluation_mode, measure


@dataclass
class Data:
    """The config's datasets, normalised with statistics fitted on the training set (and for a table,
    missing cells filled with its means when asked); ``files`` describes the files read (see
    :func:`data_files`)."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    normalizer: Normalizer
    task: str
    files: list[dict] = field(default_factory=list)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def classes(self) -> list[str] | None:
        return self.train.classes

    @property
    def columns(self) -> Columns | None:
        """The training table's columns (CSV data), fitted; None for arrays."""
        return self.train.columns


def read_split(config: Config, which: str, task: str, classes: list[str] | None,
               columns: Columns | None = None) -> Dataset | None:
    """Read ``data.<which>`` (train, validation or test) as the config describes, a table's columns as
    the training file's ``columns`` when given; None when not set."""
    d = config.data
    path = getattr(d, which)
    if path is None:
        return None
    return load_dataset(path, labels=getattr(d, f"{which}_labels"), format=d.format, task=task, classes=classes,
                        dtype=config.training.dtype, **csv_options(config), columns=columns)


def csv_options(config: Config) -> dict:
    """The config's options for reading CSV and TSV files (:func:`~backprop_cli.data.load_csv`)."""
    d = config.data
    return dict(label_column=d.label_column, header=d.header, delimiter=d.delimiter, features=d.features,
                categorical=d.categorical, missing=d.missing, unknown=d.unknown)


def load_data(config: Config, *, splits=("train", "validation", "test")) -> Data:
    """Read the datasets (in ``training.dtype``), split off validation if asked, fit the normaliser (and
    a table's imputation means) on training data only."""
    task = config.data.task
    train = read_split(config, "train", task, None)
    classes, columns = train.classes, train.columns
    val = read_split(config, "validation", task, classes, columns) if "validation" in splits else None
    if val is None and config.data.validation_split > 0 and "validation" in splits:
        try:
            train, val = train_val_split(train, config.data.validation_split, random_streams(config.seed).split)
        except ValueError as err:                 # a fraction that leaves no sample on one side
            raise config.error("data.validation_split", f"{err} (of {train.source})") from None
    test = read_split(config, "test", task, classes, columns) if "test" in splits else None
    for ds in (val, test):
        if ds is not None and ds.x.shape[1:] != train.x.shape[1:]:
            raise DataError(f"samples of shape {tuple(ds.x.shape[1:])}, but the training data's are "
                            f"{tuple(train.x.shape[1:])}", file=ds.source)
    present = [ds for ds in (train, val, test) if ds is not None]
    if columns is not None and columns.missing == "mean":
        columns.fit_means(train.x, train.source)
        for ds in present:
            ds.x = columns.impute(ds.x)
    normalizer = Normalizer(config.data.normalize, scale=config.data.scale, dtype=config.training.dtype)
    normalizer.fit(train.x)
    for ds in present:
        ds.x = normalizer.apply(ds.x)
    return Data(train, val, test, normalizer, task)


def encode(x: np.ndarray, columns: Columns | None, normalizer: Normalizer, dtype) -> np.ndarray:
    """Raw samples as the model takes them: missing values filled (tables), normalised, in ``dtype``."""
    if columns is not None:
        x = columns.impute(x)
    return normalizer.apply(x).astype(dtype, copy=False)


#: The SHA-256 of every data file hashed in this process, by its stamp (resolved path, size in bytes,
#: modification time in ns): a sweep worker reads its data for a digest once, not once a trial.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def data_files(config: Config, known: list[dict] = ()) -> list[dict]:
    """Each data file of ``config``: ``{"key": "data.train", "path": as written, "resolved": absolute,
    "size": bytes, "mtime_ns": modified, "sha256": hex}``, for a run's metadata (and the check that
    resumed data is the same). An NPY pair named by its directory counts as its files, x.npy then y.npy
    (their sizes summed, the later modification time).

    A file is read for its digest only when no file with its stamp (resolved path, size, modification
    time) was hashed before: in this process, or in ``known`` (the ``data_files`` of the checkpoint a
    run resumes), as ``make`` and ``rsync`` judge a file unchanged. A 1 GB file costs about 0.6 s to hash.
    """
    stamped = {(f.get("resolved"), f.get("size"), f.get("mtime_ns")): f["sha256"] for f in known
               if isinstance(f.get("sha256"), str)}
    files = []
    for key in DATA_FILES:
        path = getattr(config.data, key)
        if path is None:
            continue
        parts = [p for p in npy_files(path) if p is not None] if path.is_dir() else [path]
        stats = [part.stat() for part in parts]
        stamp = (str(path), sum(st.st_size for st in stats), max(st.st_mtime_ns for st in stats))
        digest = _DIGESTS.get(stamp) or stamped.get(stamp) or _sha256(parts)
        _DIGESTS[stamp] = digest
        files.append({"key": f"data.{key}", "path": config.data.as_written(key), "resolved": stamp[0],
                      "size": stamp[1], "mtime_ns": stamp[2], "sha256": digest})
    return files


def _sha256(parts: list[Path]) -> str:
    """The SHA-256 of the files' bytes, one after the other, read in blocks of 1 MiB."""
    digest = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def build(config: Config, input_shape: tuple[int, ...]):
    """Model and criterion for ``config`` (weights and Dropout noise from their streams of ``config.seed``)."""
    dtype = np.dtype(config.training.dtype)
    streams = random_streams(config.seed)
    model = build_model(config, input_shape, streams.init, dtype, noise=streams.noise)
    return model, build_criterion(config, dtype)


def prepare(path: str | Path, overrides=()) -> tuple[Config, Data, Sequential, Criterion]:
    """A config (or a checkpoint: its config and trained weights; detected by content), its training
    data and its model and criterion (for gradcheck and time, which need no validation or test data).
    A checkpoint's data is read and normalised as in its training run."""
    if not is_checkpoint(path):
        config = load_config(path, overrides)
        data = load_data(config, splits=("train",))
        return (config, data, *build(config, data.input_shape))
    restored = restore(path, overrides)
    train = read_split(restored.config, "train", restored.task, restored.classes, restored.columns)
    train.x = model_inputs(restored, train.x, train.source)
    data = Data(train, None, None, restored.normalizer, restored.task)
    return restored.config, data, restored.model, restored.criterion


def summarize(path: str | Path, overrides=()) -> tuple[list[tuple[str, str, tuple[int, ...], int]], int, dict | None]:
    """The model of a config or a checkpoint (detected by content) as rows ``(index, layer, per-sample
    output shape, parameters)``, the input first, the total parameter count, and for a checkpoint what
    it records of its run (``environment``, ``data_files``; None for a config)."""
    if is_checkpoint(path):
        restored = restore(path, overrides)
        meta = restored.checkpoint.meta
        recorded = {key: meta.get(key) for key in ("environment", "data_files")}
        return (*model_rows(restored.model, restored.input_shape), recorded)
    _, data, model, _ = prepare(path, overrides)
    return (*model_rows(model, data.input_shape), None)


def model_rows(model: Sequential, input_shape: tuple[int, ...]) -> tuple[list[tuple[str, str, tuple[int, ...], int]], int]:
    """:func:`summarize`'s rows and total for ``model`` on samples shaped ``input_shape``. A layer used
    again reads ``... (shared with 2)``, with no parameters of its own."""
    rows, first = [("", "input", input_shape, 0)], {}
    for i, (layer, shape) in enumerate(zip(model.layers, model.layer_shapes(input_shape))):
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
                   callbacks=list(callbacks), threads=t.threads)


# ---------------------------------------------------------------------------- checkpoints
def run_meta(config: Config, data: Data, environment: dict | None = None, folder: str | Path | None = None) -> dict:
    """What every checkpoint of a run records beside the trainer's state: the resolved config (data
    paths from ``folder``, the checkpoint's), the classes, task and input shape, the data files read,
    and the :func:`~backprop_cli.engine.environment.environment`."""
    return {"config": config.dump(relative_to=folder), "classes": data.classes, "task": data.task,
            "input_shape": list(data.input_shape), "backprop_version": __version__, "data_files": data.files,
            "environment": environment or current_environment(config.seed)}


def checkpoint_contents(path: str | Path, trainer: Trainer, config: Config, data: Data,
                        environment: dict | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of the checkpoint at ``path``: ``trainer``'s whole state (copies) with
    :func:`run_meta`, the normaliser and a table's columns. The model's caches (``clear_state``) go
    first: nothing of the last batch is kept past a checkpoint."""
    trainer.model.clear_state()
    meta, arrays = trainer.state_dict()
    meta.update(run_meta(config, data, environment, Path(path).parent))
    arrays.update({f"norm.{k}": v for k, v in data.normalizer.state_dict().items()})
    if data.columns is not None:
        meta["columns"], means = data.columns.state_dict()
        arrays.update({f"columns.{k}": v for k, v in means.items()})
    return meta, arrays


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
    columns: Columns | None = None


def restore(path: str | Path, overrides=()) -> Restored:
    """Load a checkpoint and rebuild its model from the stored config (``--set`` overrides applied;
    data paths from the checkpoint's folder); every stored tensor is checked against the model (names,
    shapes, dtypes, finite values) and all mismatches reported at once."""
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    missing = [k for k in ("config", "input_shape", "task", "epoch", "history") if k not in meta]
    if missing:
        raise CheckpointError(f"meta lacks {', '.join(missing)}", file=ckpt.path, where="meta")
    try:
        config = config_from_dict(meta["config"], base_dir=Path(ckpt.path).absolute().parent, overrides=overrides)
    except ConfigError as err:
        if err.file == "--set":
            raise
        raise _stored_config_error(err, ckpt.path) from None
    _find_data(config, ckpt)
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
    return Restored(ckpt, config, model, criterion, normalizer, meta.get("classes"), meta["task"], input_shape,
                    _columns(ckpt, config))


def _find_data(config: Config, ckpt: Checkpoint) -> None:
    """A checkpoint's data files are found from its folder (where run and data moved together), or
    else where its run read them (``meta["data_files"]``), when they are still there."""
    for entry in ckpt.meta.get("data_files", []):
        key = str(entry.get("key", "")).removeprefix("data.") if isinstance(entry, dict) else ""
        if key in DATA_FILES and getattr(config.data, key) is not None and not getattr(config.data, key).exists():
            recorded = Path(str(entry.get("resolved")))
            if recorded.is_absolute() and (recorded.is_file() or is_npy_dir(recorded)):
                setattr(config.data, key, recorded)


def _columns(ckpt: Checkpoint, config: Config) -> Columns | None:
    """The stored column layout of a model trained on a table (None for array data)."""
    if "columns" not in ckpt.meta:
        if config.data.format in ("csv", "tsv"):
            raise CheckpointError("no column layout for its CSV data (meta.columns): written by an older "
                                  "backprop; train it again", file=ckpt.path, where="meta")
        return None
    try:
        return Columns.from_state(ckpt.meta["columns"], ckpt.group("columns"))
    except ValueError as err:
        raise CheckpointError(str(err), file=ckpt.path, where="meta.columns") from None


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


def predict_checkpoint(path: str | Path, data: str | Path, out: str | Path | None = None) -> tuple[str, int]:
    """:func:`prediction_rows` of the checkpoint at ``path`` for the samples in ``data``, as CSV text
    (a class named ``a, b`` quoted), and how many rows it has; written to ``out`` (atomically) when given."""
    restored = restore(path)
    header, rows = prediction_rows(restored, read_features(restored, data))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    text = buffer.getvalue()
    if out is not None:
        atomic_write(out, lambda f: f.write(text.encode()))
    return text, len(rows)


def read_eval_data(restored: Restored, path: str | Path | None = None, labels: str | Path | None = None) -> Dataset:
    """Labelled data to score: ``path`` read the way the training data was (a table's columns by name
    or position), else the config's test set."""
    cfg = restored.config
    if path is None:
        dataset = read_split(cfg, "test", restored.task, restored.classes, restored.columns)
        if dataset is None:
            raise DataError("the checkpoint's config has no data.test; pass --data FILE", file=restored.checkpoint.path)
        return dataset
    return load_dataset(path, labels=labels, format=_format_of(path, cfg), task=restored.task,
                        classes=restored.classes, dtype=cfg.training.dtype, **_later_file(restored))


def _later_file(restored: Restored, *, labels: bool = True) -> dict:
    """The CSV options for a file read with the training file's columns (labels skipped unless ``labels``)."""
    d = restored.config.data
    return dict(columns=restored.columns, header=d.header, delimiter=d.delimiter,
                **({} if labels else {"label_column": None}))


def _format_of(path: str | Path, config: Config) -> str:
    """The format the file's name says, else the training data's."""
    return guess_format(path) or config.data.format


def read_features(restored: Restored, path: str | Path) -> Dataset:
    """Samples to predict on, labels not needed: a CSV or TSV (its features found by name when it has
    a header, extra columns ignored; by position without one), IDX images, an ``.npz`` with ``x``, or an
    ``x.npy`` (or a directory holding it; left on disk, as raw IDX images are)."""
    fmt = _format_of(path, restored.config)
    dtype = restored.config.training.dtype
    if fmt == "idx":
        return Dataset(idx_images(path, dtype), None, restored.classes, str(path))
    if fmt == "npz":
        return Dataset(npz_features(path, dtype), None, restored.classes, str(path))
    if fmt == "npy":
        return Dataset(npy_features(path, dtype), None, restored.classes, str(path))
    return load_dataset(path, format=fmt, task=restored.task, classes=restored.classes, dtype=dtype,
                        **_later_file(restored, labels=False))


def model_inputs(restored: Restored, x: np.ndarray, source: str) -> np.ndarray:
    """Fill, normalise and cast raw samples as in training, after checking they fit the model."""
    if tuple(x.shape[1:]) != restored.input_shape:
        raise DataError(f"samples of shape {tuple(x.shape[1:])}, but the model takes {restored.input_shape}",
                        file=source)
    return encode(x, restored.columns, restored.normalizer, restored.config.training.dtype)


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
              "environment": meta.get("environment"), "data_files": meta.get("data_files"),
              "metrics": {"loss": loss, **report.metrics}}
    if report.per_class is not None:
        names = restored.classes if restored.task == "classification" else ["0", "1"]
        result.update(classes=names, confusion_matrix=report.confusion.tolist(),
                      per_class={name: {key: report.per_class[key][i] for key in (*PER_CLASS, "support")}
                                 for i, name in enumerate(names)})
    return result


def prediction_rows(restored: Restored, samples: Dataset) -> tuple[list[str], list[list[str]]]:
    """A CSV table of predictions: the class and each class's probability for classifiers, the
    predicted 0/1 and its probability per output for binary models, the values for regression. The
    index is the sample's 0-based data row in its file (rows left out for a missing cell are absent)."""
    output = forward_all(restored.model, model_inputs(restored, samples.x, samples.source))
    flat = output.reshape(len(output), -1)
    index = [str(i) for i in (range(len(output)) if samples.rows is None else samples.rows)]
    criterion = restored.criterion
    numbers = lambda row: [f"{v:.6g}" for v in row]
    if restored.task == "classification":
        header = ["index", "predicted"] + [f"p_{c}" for c in restored.classes]
        rows = [[i, restored.classes[k]] + numbers(p)
                for i, k, p in zip(index, criterion.predictions(output), criterion.probabilities(output))]
    elif restored.task == "binary":
        suffix = [""] if flat.shape[1] == 1 else [f"_{j}" for j in range(flat.shape[1])]
        header = ["index"] + [f"predicted{s}" for s in suffix] + [f"p{s}" for s in suffix]
        rows = [[i] + [str(c) for c in picked] + numbers(p) for i, picked, p
                in zip(index, criterion.predictions(flat), criterion.probabilities(flat))]
    else:
        header = ["index"] + (["prediction"] if flat.shape[1] == 1 else [f"prediction_{j}" for j in range(flat.shape[1])])
        rows = [[i] + numbers(row) for i, row in zip(index, flat)]
    return header, rows
