"""The config schema in one place, and ``load_config(path)``: YAML in, a validated :class:`Config` out.

Reading keeps the line of every node, so each mistake is reported where it was made::

    configs/x.yaml:14: optimizer.learnig_rate: unknown key; did you mean learning_rate?

Every mistake found in one run is raised together, as one :class:`ConfigError` listing one per line
(its ``problems`` attribute holds them one by one). Relative data paths resolve against the config
file's directory; the validated Config holds absolute paths and has every ``auto`` resolved (data
format, task, monitor, mode, cosine ``t_max``, name), so ``Config.dump()`` can be saved with
a run and rebuilt anywhere with :func:`config_from_dict`.

Layers and the criterion are written as a name (``ReLU``) or a one-key mapping (``Linear: 128``,
``Linear: {out_features: 10, bias: false}``, ``Residual: [{Linear: 10}, ReLU]``); the sizes the
incoming shape determines may be left out. :mod:`backprop_cli.config.layers` says how they are checked.

This module is the schema: the sections, their value types and cross-field checks, and the entry
points. The machinery lives beside it: ``source`` reads the YAML with the line of every node;
``layers`` binds the layer list and the criterion to their constructors; ``keys`` turns
pydantic's errors into messages and applies ``--set`` overrides.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, PrivateAttr,
                      ValidationError, ValidationInfo, WithJsonSchema, field_validator, model_validator)

from .keys import apply_override, pydantic_problems
from .layers import CriterionSpec, ModelSpec, registry_of
from .plugins import BUILTIN, Registry, load_plugins, resolve
from .source import (PathKey, Places, combine, dotted, number_from_string, read_config_file, read_yaml, show,
                     split_dotted)
from ..data.load import infer_format
from ..errors import ConfigError, DataError
from ..optim.optimizers import optimizer_name

#: What other modules take from here.
__all__ = ["OPTIMIZER_CONFIGS", "SCHEDULE_CONFIGS", "Config", "config_from_dict", "config_schema", "load_config",
           "monitor_for"]


# =========================================================================== value types
#: A finite float; ints and numeric-looking strings (``"1e-3"``) are accepted, bools are not.
Flt = Annotated[float, BeforeValidator(number_from_string), Field(allow_inf_nan=False)]
PosFloat = Annotated[Flt, Field(gt=0)]
NonNegFloat = Annotated[Flt, Field(ge=0)]
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Fraction = Annotated[Flt, Field(gt=0, lt=1)]


def _none_as_empty(value: Any) -> Any:
    """``training:`` with nothing under it means all defaults."""
    return {} if value is None else value


def _file_path(value: Any, info: ValidationInfo) -> Path:
    """A data path, made absolute against the config file's directory (and checked to exist)."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a file path, got {show(value)}")
    ctx = info.context or {}
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = Path(ctx.get("base_dir") or Path.cwd()) / path
    path = Path(os.path.normpath(path))
    if ctx.get("check_files"):
        if path.is_dir():
            raise ValueError(f"{value} is a directory, expected a file")
        if not path.exists():
            shown = value if value == str(path) else f"{value} (looked for {path})"
            raise ValueError(f"no such file: {shown}")
    return path


def _run_dir(value: Any) -> Path:
    """The run directory as written; a relative one is taken from the current directory when used."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a directory path, got {show(value)}")
    return Path(os.path.expanduser(value))


def _run_name(value: Any) -> Any:
    if isinstance(value, str) and (not value.strip() or "/" in value or "\\" in value):
        raise ValueError(f"expected a name for the run directory (no slashes), got {show(value)}")
    return value


def _label_column(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise ValueError(f"expected a column index or a column name, got {show(value)}")
    return value


def _plugin_entry(value: Any, info: ValidationInfo) -> str:
    """A plugin: a Python file, made absolute against the config file's directory, or a module name."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a Python file or a module name, got {show(value)}")
    return resolve(value, Path((info.context or {}).get("base_dir") or Path.cwd()))


PluginEntry = Annotated[str, BeforeValidator(_plugin_entry)]
DataPath = Annotated[Path, BeforeValidator(_file_path), WithJsonSchema({"type": "string"})]
RunDir = Annotated[Path, BeforeValidator(_run_dir), WithJsonSchema({"type": "string"})]
LabelColumn = Annotated[Union[int, str], PlainValidator(_label_column),
                        WithJsonSchema({"type": ["integer", "string"]})]


def _report(info: ValidationInfo, path: PathKey, message: str) -> None:
    """Record a problem found by a cross-field check; without a context to collect into, raise."""
    problems = (info.context or {}).get("problems")
    if problems is None:
        raise ValueError(f"{dotted(path)}: {message}")
    problems.append((path, message))



# =========================================================================== sections
class Section(BaseModel):
    """Strict: unknown keys are errors, and no value is coerced (``epochs: 2.5`` is an error)."""

    model_config = ConfigDict(strict=True, extra="forbid")


def guess_format(path: Path) -> str | None:
    """``csv``, ``npz`` or ``idx`` from a file name, as the data readers tell it; None if it says nothing."""
    try:
        return infer_format(path)
    except DataError:
        return None


class DataConfig(Section):
    """Where the examples are and how to read them."""

    format: Literal["auto", "csv", "idx", "npz"] = "auto"
    train: DataPath
    train_labels: DataPath | None = None
    validation: DataPath | None = None
    validation_labels: DataPath | None = None
    validation_split: Annotated[Flt, Field(ge=0, lt=1)] = 0.1
    test: DataPath | None = None
    test_labels: DataPath | None = None
    label_column: LabelColumn = -1
    header: bool | None = None
    task: Literal["auto", "classification", "regression", "binary"] = "auto"
    normalize: Literal["none", "standardize", "minmax", "scale"] = "none"
    scale: PosFloat | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> DataConfig:
        if self.format == "auto":
            self.format = guess_format(self.train) or "auto"
            if self.format == "auto":
                _report(info, ("data", "train"), f"cannot tell the format from the name {self.train.name!r}; "
                        "set data.format to csv, idx or npz")
        self._check_labels(info)
        if self.validation is not None:
            if "validation_split" in self.model_fields_set and self.validation_split > 0:
                _report(info, ("data", "validation_split"),
                        "applies only when there is no validation file; remove one of the two")
            self.validation_split = 0.0
        if (self.normalize == "scale") != (self.scale is not None):
            _report(info, ("data", "scale"), "required for normalize: scale (e.g. 255)" if self.scale is None
                    else f"only for normalize: scale (normalize is {self.normalize})")
        if self.format in ("idx", "npz"):
            for key, default in (("header", None), ("label_column", -1)):
                if getattr(self, key) != default:
                    _report(info, ("data", key), f"only for csv data (format is {self.format})")
        return self

    def _check_labels(self, info: ValidationInfo) -> None:
        """IDX keeps labels in a second file; CSV and NPZ files hold their own."""
        for part in ("train", "validation", "test"):
            given, labels, where = getattr(self, part), getattr(self, f"{part}_labels"), ("data", f"{part}_labels")
            if labels is not None and given is None:
                _report(info, where, f"given without data.{part}")
            elif self.format == "idx" and given is not None and labels is None:
                _report(info, where, f"required for idx data (the labels file of data.{part})")
            elif self.format in ("csv", "npz") and labels is not None:
                _report(info, where, f"only for idx data ({self.format} files hold their labels)")


# ---------------------------------------------------------------- optimizers
_LR = AliasChoices("lr", "learning_rate")


_MAXIMIZE = "Step up the gradient instead of down (PyTorch's maximize)."


class SGDConfig(Section):
    """Stochastic gradient descent with optional (Nesterov) momentum: ``backprop_cli.optim.SGD``."""

    name: Literal["sgd"]
    lr: PosFloat = Field(1e-3, validation_alias=_LR)
    momentum: NonNegFloat = 0.0
    dampening: Annotated[Flt, Field(ge=0, le=1)] = 0.0
    nesterov: bool = False
    weight_decay: NonNegFloat = 0.0
    lr_decay: NonNegFloat = 0.0
    maximize: bool = Field(False, description=_MAXIMIZE)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> SGDConfig:
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            _report(info, ("optimizer", "nesterov"), "needs momentum > 0 and dampening 0")
        return self


class _AdamFamily(Section):
    """What Adam and AdamW take; ``betas`` are the decay rates of the two moment estimates."""

    lr: PosFloat = Field(1e-3, validation_alias=_LR)
    betas: Annotated[tuple[Annotated[Flt, Field(ge=0, lt=1)], Annotated[Flt, Field(ge=0, lt=1)]],
                     BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)] = (0.9, 0.999)
    eps: PosFloat = 1e-8
    weight_decay: NonNegFloat = 0.0
    amsgrad: bool = Field(False, description="Divide by the largest second-moment estimate so far (AMSGrad).")
    maximize: bool = Field(False, description=_MAXIMIZE)


class AdamConfig(_AdamFamily):
    """Adam: ``backprop_cli.optim.Adam``."""

    name: Literal["adam"]
    decoupled_weight_decay: bool = Field(False, description="Decay the weights directly, as AdamW does, "
                                                            "instead of adding weight_decay * w to the gradient.")


class AdamWConfig(_AdamFamily):
    """Adam with decoupled weight decay: ``backprop_cli.optim.AdamW``."""

    name: Literal["adamw"]
    weight_decay: NonNegFloat = 1e-2


class RMSpropConfig(Section):
    """RMSprop: ``backprop_cli.optim.RMSprop``."""

    name: Literal["rmsprop"]
    lr: PosFloat = Field(1e-2, validation_alias=_LR)
    alpha: Annotated[Flt, Field(ge=0, lt=1)] = 0.99
    eps: PosFloat = 1e-8
    momentum: NonNegFloat = 0.0
    weight_decay: NonNegFloat = 0.0
    centered: bool = False
    maximize: bool = Field(False, description=_MAXIMIZE)


class AdagradConfig(Section):
    """Adagrad: ``backprop_cli.optim.Adagrad``."""

    name: Literal["adagrad"]
    lr: PosFloat = Field(1e-2, validation_alias=_LR)
    lr_decay: NonNegFloat = 0.0
    weight_decay: NonNegFloat = 0.0
    eps: PosFloat = 1e-10
    initial_accumulator_value: NonNegFloat = 0.0
    maximize: bool = Field(False, description=_MAXIMIZE)


#: Optimizer name -> its config section; the names are those of ``backprop_cli.optim.OPTIMIZERS``.
OPTIMIZER_CONFIGS = {"sgd": SGDConfig, "adam": AdamConfig, "adamw": AdamWConfig,
                     "rmsprop": RMSpropConfig, "adagrad": AdagradConfig}


def _named(value: Any) -> Any:
    """``optimizer: adam`` is short for ``optimizer: {name: adam}``."""
    return {"name": value} if isinstance(value, str) else value


def _optimizer_named(value: Any) -> Any:
    """:func:`_named`, with a PyTorch spelling (``SGD``, ``Adam``) read as the config name it stands for
    in ``backprop_cli.optim.OPTIMIZERS``."""
    value = _named(value)
    if isinstance(value, dict) and isinstance(value.get("name"), str) and optimizer_name(value["name"]):
        value = {**value, "name": optimizer_name(value["name"])}
    return value


OptimizerConfig = Annotated[Union[SGDConfig, AdamConfig, AdamWConfig, RMSpropConfig, AdagradConfig],
                            Field(discriminator="name"), BeforeValidator(_optimizer_named)]


# ---------------------------------------------------------------- schedules
class _ScheduleBase(Section):
    """What every schedule takes: an optional linear warm-up over the first epochs."""

    warmup_epochs: NonNegInt = 0
    warmup_start_factor: Annotated[Flt, Field(gt=0, le=1)] = 0.1


class ConstantSchedule(_ScheduleBase):
    """The optimizer's lr throughout."""

    name: Literal["constant"] = "constant"


class StepSchedule(_ScheduleBase):
    """lr times gamma every ``step_size`` epochs."""

    name: Literal["step"]
    step_size: PosInt
    gamma: PosFloat = 0.1


class MultiStepSchedule(_ScheduleBase):
    """lr times gamma at each epoch in ``milestones``."""

    name: Literal["multistep"]
    milestones: Annotated[list[PosInt], Field(min_length=1)]
    gamma: PosFloat = 0.1

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:])):
            raise ValueError(f"expected increasing epochs, got {value}")
        return value


class ExponentialSchedule(_ScheduleBase):
    """lr times gamma every epoch."""

    name: Literal["exponential"]
    gamma: PosFloat


class CosineSchedule(_ScheduleBase):
    """Cosine from lr down to ``min_lr`` over ``t_max`` epochs (default: training.epochs)."""

    name: Literal["cosine"]
    t_max: PosInt | None = None
    min_lr: NonNegFloat = 0.0
    cycle: bool = Field(False, description="Past t_max, follow the cosine back up (PyTorch's CosineAnnealingLR) "
                                           "instead of staying at min_lr.")


class LinearSchedule(_ScheduleBase):
    """lr times a factor going linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` epochs."""

    name: Literal["linear"]
    start_factor: Annotated[Flt, Field(gt=0, le=1)] = Field(1 / 3, description="The lr factor at epoch 0.")
    end_factor: Annotated[Flt, Field(ge=0, le=1)] = Field(1.0, description="The lr factor from total_iters on.")
    total_iters: PosInt = Field(5, description="Epochs the factor takes to go from start_factor to end_factor.")


class OneCycleSchedule(_ScheduleBase):
    """The one-cycle policy (PyTorch's OneCycleLR), stepped once an epoch: up to ``max_lr``, then far down."""

    name: Literal["onecycle"]
    max_lr: PosFloat | None = Field(None, description="The peak lr (default: optimizer.lr).")
    total_steps: PosInt | None = Field(None, description="Epochs in the cycle (default: training.epochs "
                                                          "after any warm-up).")
    pct_start: Annotated[Flt, Field(ge=0, le=1)] = Field(0.3, description="The fraction of the cycle spent "
                                                                            "going up.")
    anneal_strategy: Literal["cos", "linear"] = Field("cos", description="How each phase goes from its start "
                                                                           "to its end value.")
    cycle_momentum: bool = Field(True, description="Cycle the momentum (SGD, RMSprop: momentum > 0; "
                                                   "Adam: betas[0]) opposite to the lr.")
    base_momentum: Annotated[Flt, Field(ge=0, le=1)] = Field(0.85, description="The momentum at the lr's peak.")
    max_momentum: Annotated[Flt, Field(ge=0, le=1)] = Field(0.95, description="The momentum at the ends.")
    div_factor: PosFloat = Field(25.0, description="The lr starts at max_lr / div_factor.")
    final_div_factor: PosFloat = Field(1e4, description="The lr ends at max_lr / div_factor / final_div_factor.")
    three_phase: bool = Field(False, description="Come back down to the start lr before the final descent.")


class PlateauSchedule(_ScheduleBase):
    """lr times ``factor`` when the monitored metric stops improving (mode auto: training.mode)."""

    name: Literal["plateau"]
    mode: Literal["auto", "min", "max"] = "auto"
    factor: Fraction = 0.1
    patience: NonNegInt = 10
    threshold: NonNegFloat = 1e-4
    cooldown: NonNegInt = 0
    min_lr: NonNegFloat = 0.0
    threshold_mode: Literal["rel", "abs"] = Field("rel", description="Improve by a fraction of the best "
                                                                      "(rel) or by threshold itself (abs).")


#: Schedule name -> its config section; the names are those of ``backprop_cli.optim.SCHEDULES``.
SCHEDULE_CONFIGS = {"constant": ConstantSchedule, "step": StepSchedule, "multistep": MultiStepSchedule,
                    "exponential": ExponentialSchedule, "cosine": CosineSchedule, "plateau": PlateauSchedule,
                    "linear": LinearSchedule, "onecycle": OneCycleSchedule}


def _schedule_named(value: Any) -> Any:
    """``schedule: cosine`` is ``{name: cosine}``; no name (or nothing) means ``constant``."""
    value = _named(_none_as_empty(value))
    return {"name": "constant", **value} if isinstance(value, dict) and "name" not in value else value


ScheduleConfig = Annotated[Union[ConstantSchedule, StepSchedule, MultiStepSchedule, ExponentialSchedule,
                                 CosineSchedule, PlateauSchedule, LinearSchedule, OneCycleSchedule],
                           Field(discriminator="name"), BeforeValidator(_schedule_named)]


# ---------------------------------------------------------------- training
class EarlyStopping(Section):
    """Stop when training.monitor has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: PosInt = 5
    min_delta: NonNegFloat = 0.0


def _switch(value: Any) -> Any:
    """``early_stopping: true`` means the defaults, ``false`` means none."""
    return {} if value is True else None if value is False else value


class TrainingConfig(Section):
    """The loop: epochs, batches, precision, what to monitor, checkpoints and gradient clipping."""

    epochs: PosInt = 10
    batch_size: PosInt = 32
    shuffle: bool = True
    dtype: Literal["float32", "float64"] = "float32"
    monitor: Literal["auto", "val_loss", "val_accuracy", "val_top5_accuracy", "val_f1_macro", "val_f1_weighted",
                     "val_roc_auc", "val_mae", "val_mse", "val_rmse", "val_r2", "train_loss"] = "auto"
    mode: Literal["auto", "min", "max"] = "auto"
    early_stopping: Annotated[EarlyStopping | None, BeforeValidator(_switch)] = None
    checkpoint_every: PosInt = 1
    clip_grad_norm: PosFloat | None = None
    clip_grad_value: PosFloat | None = None
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


# ---------------------------------------------------------------- the whole config
class Config(Section):
    """A validated config; every ``auto`` resolved and every path absolute. See the module docstring."""

    name: Annotated[str, BeforeValidator(_run_name)] | None = None
    seed: NonNegInt = 0
    plugins: list[PluginEntry] = Field(default_factory=list, description=(
        "Your own layers and losses: Python files (relative to this config) or importable module names. "
        "Every Module and Criterion subclass defined there can be named in model: and criterion:. "
        "The only way backprop runs code of yours; a checkpoint records these, and eval/predict need them."))
    data: DataConfig
    model: ModelSpec
    criterion: CriterionSpec
    optimizer: OptimizerConfig
    schedule: ScheduleConfig = Field(default_factory=ConstantSchedule)
    training: Annotated[TrainingConfig, BeforeValidator(_none_as_empty)] = Field(default_factory=TrainingConfig)
    output: RunDir | None = None

    _places: Places = PrivateAttr(default_factory=lambda: Places("config"))
    _registry: Registry = PrivateAttr(default_factory=lambda: BUILTIN)
    #: The values this config filled in itself: dotted key -> the value as given (``None``, ``"auto"``).
    _derived: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Config:
        ctx = info.context or {}
        if self.name is None:
            self._derive("name", None, ctx.get("default_name") or "run")
        if self.criterion is not None:                       # else already reported
            self._resolve_task(info)
            self._resolve_training(info)
            self._resolve_schedule(info)
        return self

    def _resolve_task(self, info: ValidationInfo) -> None:
        task = getattr(registry_of(info).criterions[self.criterion.name], "task", "regression")
        if self.data.task == "auto":
            self._derive("data.task", "auto", task)
        elif self.data.task != task:
            _report(info, ("data", "task"), f"{self.data.task} does not fit {self.criterion.name} "
                    f"(a {task} criterion); set task: {task} or auto")

    def _resolve_training(self, info: ValidationInfo) -> None:
        training = self.training
        tasks = MONITOR_TASKS.get(training.monitor)
        if tasks and self.data.task not in tasks:
            _report(info, ("training", "monitor"), f"{training.monitor} needs a {' or '.join(tasks)} task, "
                    f"this one is {self.data.task}")
        validation = self.data.validation is not None or self.data.validation_split > 0
        if not validation and training.monitor.startswith("val_"):
            _report(info, ("training", "monitor"), f"{training.monitor} needs validation data "
                    "(data.validation or data.validation_split > 0); monitor train_loss or auto")
        monitor, mode = monitor_for(self.data.task, training.monitor, training.mode, validation)
        for key, value in (("monitor", monitor), ("mode", mode)):
            if getattr(training, key) == "auto":
                self._derive(f"training.{key}", "auto", value)
        if training.early_stopping is not None and not validation:
            _report(info, ("training", "early_stopping"), "needs validation data (data.validation or "
                    "data.validation_split > 0)")

    def _resolve_schedule(self, info: ValidationInfo) -> None:
        schedule = self.schedule
        if isinstance(schedule, CosineSchedule) and schedule.t_max is None:   # anneal over what follows warm-up
            self._derive("schedule.t_max", None, max(1, self.training.epochs - schedule.warmup_epochs))
        if isinstance(schedule, PlateauSchedule) and schedule.mode == "auto":
            self._derive("schedule.mode", "auto", self.training.mode)
        if isinstance(schedule, OneCycleSchedule):
            self._resolve_one_cycle(info, schedule)
        if getattr(schedule, "min_lr", 0.0) > self.optimizer.lr:
            _report(info, ("schedule", "min_lr"), f"must not exceed optimizer.lr ({self.optimizer.lr}), "
                    f"got {schedule.min_lr}")

    def _derive(self, key: str, given: Any, value: Any) -> None:
        """Fill in ``key`` (dotted) from the rest of the config, remembering it was ``given`` so."""
        section, _, name = key.rpartition(".")
        setattr(getattr(self, section) if section else self, name, value)
        self._derived[key] = given

    @property
    def derived(self) -> dict[str, Any]:
        """The values filled in from the rest of the config (``schedule.t_max`` from ``training.epochs``,
        ``training.monitor`` from the task, ...): dotted key -> the value as given (``None``, ``"auto"``).
        :meth:`dump` holds what they resolved to; a run resumed with more epochs derives them again."""
        return dict(self._derived)

    def _resolve_one_cycle(self, info: ValidationInfo, schedule: OneCycleSchedule) -> None:
        """``max_lr`` and ``total_steps`` from the optimizer and the epochs; momentum to cycle."""
        epochs = max(1, self.training.epochs - schedule.warmup_epochs)
        if schedule.max_lr is None:
            self._derive("schedule.max_lr", None, self.optimizer.lr)
        if schedule.total_steps is None:
            self._derive("schedule.total_steps", None, epochs)
        elif schedule.total_steps < epochs:
            _report(info, ("schedule", "total_steps"), f"must cover the {epochs} epochs trained after warm-up, "
                    f"got {schedule.total_steps}")
        optimizer = self.optimizer
        if schedule.cycle_momentum and not (hasattr(optimizer, "betas") or getattr(optimizer, "momentum", 0) > 0):
            _report(info, ("schedule", "cycle_momentum"), f"needs momentum to cycle: optimizer {optimizer.name} "
                    f"{'has momentum 0' if hasattr(optimizer, 'momentum') else 'has none'}; set optimizer.momentum "
                    "or cycle_momentum: false")

    @property
    def registry(self) -> Registry:
        """The layer and criterion classes this config may name (the library's and its plugins')."""
        return self._registry

    @property
    def run_dir(self) -> Path:
        """Where the run is written: ``output``, or ``runs/<name>``; relative to the current directory."""
        return self.output if self.output is not None else Path("runs") / self.name

    def dump(self) -> dict[str, Any]:
        """Plain data (JSON and YAML serialisable, absolute paths) that :func:`config_from_dict` rebuilds."""
        data = self.model_dump(mode="json")
        data["schedule"] = {"name": data["schedule"].pop("name"), **data["schedule"]}
        return data

    def locate(self, dotted_path: str) -> tuple[str, int | None]:
        """``(file, line)`` where ``dotted_path`` (or its nearest written parent) was given; line None if unknown."""
        place = self._places.find(split_dotted(dotted_path) if dotted_path else ())
        return place.file, place.line

    def error(self, dotted_path: str, message: str, *, label: str | None = None) -> ConfigError:
        """A ConfigError placed at ``dotted_path``: ``file:line: label: message`` (label defaults to the path)."""
        return self._places.error(split_dotted(dotted_path) if dotted_path else (), message, label=label)


# =========================================================================== entry points
def _validate(data: Any, places: Places, context: dict, problems: list[ConfigError]) -> Config:
    """Validate plain data, collecting pydantic's errors and the cross-field ones into one ConfigError.
    The plugins are imported first: they define names the model and the criterion may use."""
    plugins = data.get("plugins") if isinstance(data, dict) else None
    registry, found = load_plugins(plugins, Path(context.get("base_dir") or Path.cwd()))
    config = None
    try:
        config = Config.model_validate(data, context={**context, "problems": found, "registry": registry})
    except ValidationError as err:
        found += pydantic_problems(err, data, Config)
    problems = problems + [places.error(path, message) for path, message in found]
    if problems:
        raise combine(problems)
    config._places, config._registry = places, registry
    return config


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Config:
    """Read, override (``--set KEY=VALUE``, applied before validation) and validate a YAML config.

    Raises one ConfigError listing every mistake found, each as ``file:line: dotted.path: expected ...``.
    """
    file = str(path)
    data, table, problems = read_yaml(read_config_file(path), file)
    if data is None:
        raise ConfigError("the config is empty; expected a mapping with data, model, criterion, optimizer",
                          file=file)
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of sections (data, model, criterion, ...), got {show(data)}",
                          file=file, line=table[()].line)
    places = Places(file, table)
    for text in overrides:
        problem = apply_override(data, places, text, Config)
        if problem is not None:
            problems.append(problem)
    base = Path(path).resolve().parent
    context = {"base_dir": base, "check_files": True, "default_name": Path(path).stem}
    return _validate(data, places, context, problems)


def config_from_dict(data: Any, *, source: str = "checkpoint") -> Config:
    """Rebuild a Config from :meth:`Config.dump` output (e.g. a checkpoint's stored config).

    Errors are ConfigErrors placed at ``source`` (``checkpoint: optimizer.lr: ...``). Data files are not
    required to exist, so a checkpoint opens on a machine without its training data.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of config sections, got {show(data)}", file=source)
    context = {"base_dir": Path.cwd(), "check_files": False, "default_name": None}
    return _validate(copy.deepcopy(data), Places(source), context, [])


def config_schema() -> dict[str, Any]:
    """The JSON Schema of a config file (pydantic's, with the layer list described loosely)."""
    return Config.model_json_schema()
