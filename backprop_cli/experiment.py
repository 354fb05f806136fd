"""From a validated config to data, model, trainer and checkpoints: what ``train``, ``eval``, ``predict``
and ``gradcheck`` share. No terminal output here; the CLI renders what these functions return."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .build import build_criterion, build_model, build_optimizer, build_schedule, criterion_task, resolve_monitor
from .checkpoint import Checkpoint, atomic_write, check_weights, load_checkpoint, save_checkpoint
from .config import Config, config_from_dict
from .data import Dataset, Normalizer, infer_format, load_dataset, read_idx, train_val_split
from .errors import CheckpointError, ConfigError, DataError
from .nn.container import Sequential
from .nn.module import Criterion
from .train import Callback, EarlyStopping, Trainer


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
    return load_dataset(path, labels=getattr(d, f"{which}_labels"), format=None if d.format == "auto" else d.format,
                        task=task, label_column=d.label_column, header=d.header, classes=classes)


def load_data(config: Config, *, splits=("train", "validation", "test")) -> Data:
    """Read the datasets, split off validation if asked, fit the normaliser on training data only."""
    task = criterion_task(config)
    train = read_split(config, "train", task, None)
    classes = train.classes
    val = read_split(config, "validation", task, classes) if "validation" in splits else None
    if val is None and config.data.validation_split > 0 and "validation" in splits:
        train, val = train_val_split(train, config.data.validation_split, np.random.default_rng(config.seed))
    test = read_split(config, "test", task, classes) if "test" in splits else None
    normalizer = Normalizer(config.data.normalize, scale=config.data.scale)
    normalizer.fit(train.x)
    dtype = np.dtype(config.training.dtype)
    for ds in (train, val, test):
        if ds is not None:
            ds.x = normalizer.apply(ds.x).astype(dtype, copy=False)
            if task != "classification":
                ds.y = ds.y.astype(dtype, copy=False)
    return Data(train, val, test, normalizer, task)


def build(config: Config, input_shape: tuple[int, ...]):
    """Model and criterion for ``config`` (weights drawn from ``config.seed``)."""
    dtype = np.dtype(config.training.dtype)
    model = build_model(config, input_shape, np.random.default_rng(config.seed), dtype)
    return model, build_criterion(config, dtype)


def make_trainer(config: Config, model: Sequential, criterion: Criterion, callbacks: list[Callback] = (),
                 *, validation: bool = True) -> Trainer:
    """A trainer for ``config``; without validation data the monitored metric is the training loss."""
    t = config.training
    monitor, mode = resolve_monitor(config) if validation else ("train_loss", "min")
    params, grads = model.parameters()
    early = EarlyStopping(t.early_stopping.patience, t.early_stopping.min_delta) if t.early_stopping else None
    return Trainer(model, criterion, build_optimizer(config, params, grads), build_schedule(config),
                   batch_size=t.batch_size, shuffle=t.shuffle, seed=config.seed, clip_norm=t.clip_grad_norm,
                   clip_value=t.clip_grad_value, monitor=monitor, mode=mode, early_stopping=early,
                   callbacks=list(callbacks))


# ---------------------------------------------------------------------------- checkpoints
def save(path: str | Path, trainer: Trainer, config: Config, data: Data) -> None:
    """Write ``trainer``'s whole state with the config, normaliser and class names (atomically)."""
    meta, arrays = trainer.state_dict()
    meta.update(config=config.dump(), classes=data.classes, task=data.task, input_shape=list(data.input_shape),
                backprop_version=__version__,
                normalizer={k: v for k, v in data.normalizer.state_dict().items() if not isinstance(v, np.ndarray)})
    arrays.update({f"norm.{k}": v for k, v in data.normalizer.state_dict().items() if isinstance(v, np.ndarray)})
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


def restore(path: str | Path, *, best: bool = False) -> Restored:
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
        raise CheckpointError(f"stored config is invalid: {err.detail}", file=ckpt.path, where="meta.config") from None
    input_shape = tuple(int(s) for s in meta["input_shape"])
    model, criterion = build(config, input_shape)
    model.load_state_dict(check_weights(ckpt, model.state_dict(), "best" if best and ckpt.group("best") else "model"))
    norm_state = dict(meta.get("normalizer") or {})
    norm_state.update(ckpt.group("norm"))
    try:
        normalizer = Normalizer.from_state(norm_state)
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"normalisation statistics unreadable: {err}", file=ckpt.path, where="norm") from None
    return Restored(ckpt, config, model, criterion, normalizer, meta.get("classes"), meta["task"], input_shape)


def resume(trainer: Trainer, path: str | Path) -> None:
    """Put ``trainer`` exactly where the checkpoint's run stopped (weights checked against its model)."""
    ckpt = load_checkpoint(path)
    check_weights(ckpt, trainer.model.state_dict())
    try:
        trainer.load_state_dict(ckpt.meta, ckpt.arrays)
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"cannot resume from it: {err}", file=ckpt.path) from None


def read_eval_data(restored: Restored, path: str | Path | None = None, labels: str | Path | None = None) -> Dataset:
    """Labelled data to score: ``path`` read the way the training data was, else the config's test set."""
    cfg = restored.config
    if path is None:
        dataset = read_split(cfg, "test", restored.task, restored.classes)
        if dataset is None:
            raise DataError("the checkpoint's config has no data.test; pass --data FILE", file=restored.checkpoint.path)
        return dataset
    return load_dataset(path, labels=labels, format=None if cfg.data.format == "auto" else cfg.data.format,
                        task=restored.task, label_column=cfg.data.label_column, header=cfg.data.header,
                        classes=restored.classes)


def read_features(restored: Restored, path: str | Path) -> np.ndarray:
    """Samples to predict on, labels optional: a CSV with or without its label column, IDX images,
    or an ``.npz`` with ``x``."""
    cfg = restored.config
    fmt = cfg.data.format if cfg.data.format != "auto" else infer_format(path)
    if fmt == "idx":
        x = read_idx(path)
        return (x[:, None] if x.ndim == 3 else x).astype(np.float32)
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive.files:
                raise DataError("no array 'x' in the archive", file=str(path))
            return archive["x"].astype(np.float32)
    try:
        unlabelled = load_dataset(path, format=fmt, task=restored.task, label_column=None, header=cfg.data.header)
        if unlabelled.x.shape[1:] == restored.input_shape:
            return unlabelled.x
    except DataError:
        pass
    return read_eval_data(restored, path).x


def model_inputs(restored: Restored, x: np.ndarray, source: str) -> np.ndarray:
    """Normalise raw samples with the training statistics, after checking they fit the model."""
    if tuple(x.shape[1:]) != restored.input_shape:
        raise DataError(f"samples of shape {tuple(x.shape[1:])}, but the model takes {restored.input_shape}",
                        file=source)
    return restored.normalizer.apply(x).astype(restored.config.training.dtype, copy=False)


def forward_all(model: Sequential, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for every sample, in evaluation mode, batch by batch."""
    model.evaluate()
    return np.concatenate([model.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


# ---------------------------------------------------------------------------- the run directory
RUN_FILES = ("last.npz", "best.npz", "metrics.csv", "config.yaml")


class RunDirectory(Callback):
    """Writes a run's files as epochs end: ``metrics.csv`` (every epoch), ``last.npz`` (every
    ``checkpoint_every`` epochs and at the end), ``best.npz`` (when the monitored metric improves).
    Every write is atomic."""

    def __init__(self, path: Path, config: Config, data: Data) -> None:
        self.path, self.config, self.data = Path(path), config, data
        self.every = config.training.checkpoint_every
        self.written: set[str] = set()

    def existing(self) -> list[str]:
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def start(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        text = yaml_dump(self.config.dump())
        atomic_write(self.path / "config.yaml", lambda f: f.write(text.encode()))

    def on_epoch_end(self, trainer, record):
        self.write_metrics(trainer.history)
        if record.get("best"):
            self.save(trainer, "best.npz")
        if trainer.epoch % self.every == 0:
            self.save(trainer, "last.npz")

    def on_train_end(self, trainer, reason):
        self.save(trainer, "last.npz")

    def save(self, trainer: Trainer, name: str) -> Path:
        save(self.path / name, trainer, self.config, self.data)
        self.written.add(name)
        return self.path / name

    def write_metrics(self, history: list[dict]) -> None:
        columns = ["epoch", "train_loss"]
        for record in history:
            columns += [k for k in record if k.startswith("val_") and k not in columns]
        columns += ["lr", "seconds", "samples_per_sec"]
        lines = [",".join(columns)]
        lines += [",".join("" if r.get(c) is None else f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c])
                           for c in columns) for r in history]
        atomic_write(self.path / "metrics.csv", lambda f: f.write(("\n".join(lines) + "\n").encode()))


def yaml_dump(data: dict) -> str:
    import yaml
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
