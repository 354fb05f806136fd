"""The ``training:`` section (epochs, batches, precision, the monitored metric, early stopping,
checkpoints, clipping, logging) and :func:`monitor_for`, which resolves ``monitor: auto``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainValidator, WithJsonSchema

from .fields import JsonAlso, NonNegFloat, PosFloat, PosInt, Section
from .source import show


class EarlyStopping(Section):
    """Stop when training.monitor has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: PosInt = Field(5, description="Epochs without improvement before training stops.")
    min_delta: NonNegFloat = Field(0.0, description="The least change of the metric that counts as an improvement.")


def _switch(value: Any) -> Any:
    """``early_stopping: true`` means the defaults, ``false`` means none."""
    return {} if value is True else None if value is False else value


def _threads(value: Any) -> int | str:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"expected auto or a positive number of threads, got {show(value)}")


Threads = Annotated[int | str, PlainValidator(_threads),
                    WithJsonSchema({"anyOf": [{"const": "auto"}, {"type": "integer", "minimum": 1}]})]


class TrainingConfig(Section):
    """The loop: epochs, batches, precision, what to monitor, checkpoints and gradient clipping."""

    epochs: PosInt = Field(10, description="Passes over the training data (a resumed run goes on up to this).")
    batch_size: PosInt = Field(32, description="Samples per step (the last batch of an epoch may be smaller).")
    shuffle: bool = Field(True, description="Shuffle the training samples every epoch (from the seed).")
    dtype: Literal["float32", "float64"] = Field("float32", description="The precision of weights and data.")
    monitor: Literal["auto", "val_loss", "val_accuracy", "val_top5_accuracy", "val_f1_macro", "val_f1_weighted",
                     "val_roc_auc", "val_mae", "val_mse", "val_rmse", "val_r2", "train_loss"] = Field(
        "auto", description="The metric that picks best.npz (and drives early stopping and plateau); "
        "auto: val_accuracy for classification, else val_loss, train_loss without validation data.")
    mode: Literal["auto", "min", "max"] = Field("auto", description="Whether the monitored metric should fall "
                                                "(min) or rise (max); auto: max for accuracy, F1, ROC-AUC and R2.")
    early_stopping: Annotated[EarlyStopping | None, BeforeValidator(_switch), JsonAlso({"type": "boolean"})] = Field(
        None, description="Stop when the monitored metric stops improving; true: the defaults.")
    threads: Threads = Field("auto", description=(
        "BLAS threads while training: a number, or auto: the cores other processes leave free, "
        "followed as the load changes (at most the BLAS's own count; see backprop_cli.engine.threads)."))
    checkpoint_every: PosInt = Field(1, description="Write last.npz every this many epochs (and at the end).")
    clip_grad_norm: PosFloat | None = Field(None, description="Rescale the gradients when their global L2 norm "
                                            "exceeds this.")
    clip_grad_value: PosFloat | None = Field(None, description="Clip each gradient element to [-value, value].")
    tensorboard: bool = Field(False, description="Write each epoch's losses, metrics and learning rate (and "
                              "gradient statistics when they are logged) as TensorBoard scalars under "
                              "<run dir>/tensorboard/; needs the tensorboard extra (tensorboardX).")
    log_gradients: bool = Field(False, description=(
        "Record each parameter's gradient norm and update-to-weight ratio, averaged over each epoch's "
        "steps, in gradients.csv of the run directory, and flag vanishing or exploding gradients at the "
        "end. Off by default: when off, training does no extra work."))


#: The tasks whose metrics a monitor reads (those not listed: any task), and the monitors where higher is better.
MONITOR_TASKS = {"val_accuracy": ("classification",), "val_top5_accuracy": ("classification",),
                 "val_f1_macro": ("classification", "binary"), "val_f1_weighted": ("classification", "binary"),
                 "val_roc_auc": ("classification", "binary"), "val_rmse": ("regression",), "val_r2": ("regression",)}
MAXIMISED = ("val_accuracy", "val_top5_accuracy", "val_f1_macro", "val_f1_weighted", "val_roc_auc", "val_r2")


def monitor_for(task: str, monitor: str = "auto", mode: str = "auto", validation: bool = True) -> tuple[str, str]:
    """Resolve ``auto``: val_accuracy for classification, val_loss otherwise, train_loss without
    validation data; max for accuracy, F1, ROC-AUC and R2, else min."""
    if monitor == "auto":
        monitor = "train_loss" if not validation else "val_accuracy" if task == "classification" else "val_loss"
    if mode == "auto":
        mode = "max" if monitor in MAXIMISED else "min"
    return monitor, mode
