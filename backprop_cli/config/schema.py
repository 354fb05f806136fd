"""The config schema in one place, and ``load_config(path)``: YAML in, a validated :class:`Config` out.

Reading keeps the line of every node, so each mistake is reported where it was made::

    configs/x.yaml:14: optimizer.learnig_rate: unknown key; did you mean learning_rate?

Every mistake found in one run is raised together, as one :class:`ConfigError` listing one per line
(its ``problems`` attribute holds them one by one). Relative data paths resolve against the config
file's directory; the validated Config holds absolute paths and has every ``auto`` resolved (data
format, task, monitor, mode, cosine ``t_max``, name). ``Config.dump()`` gives the data paths as
written (``dump(relative_to=run_dir)``: relative ones rewritten from that folder), so a dump saved
with a run is rebuilt with :func:`config_from_dict` wherever the run and its data are moved together.

Every field has a ``description`` and its bounds in :func:`number` or pydantic's constraints, so that
:func:`config_schema` is a standard JSON Schema (``exclusiveMinimum``, ``enum``, ...) for editors.

Layers and the criterion are written as a name (``ReLU``) or a one-key mapping (``Linear: 128``,
``Linear: {out_features: 10, bias: false}``, ``Residual: [{Linear: 10}, ReLU]``); the sizes the
incoming shape determines may be left out. :mod:`backprop_cli.config.layers` says how they are checked.

This module is the whole config (:class:`Config`: its cross-field checks and what it resolves) and
the entry points. Its sections sit beside it, one module each: ``data``, ``optimizer`` (optimizers and
schedules) and ``training``, made of the pieces in ``fields``. The machinery too: ``source`` reads the
YAML with the line of every node; ``layers`` binds the layer list and the criterion to their
constructors; ``keys`` turns pydantic's errors into messages and applies ``--set`` overrides.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PrivateAttr, ValidationError, ValidationInfo, model_validator

from .data import CSV_ONLY, DATA_FILES, DataConfig
from .fields import JsonAlso, NonNegInt, RunDir, Section, directory_name, none_as_empty, report
from .keys import Override, apply_override, pydantic_problems
from .layers import CriterionSpec, ModelSpec, registry_of
from .optimizer import (OPTIMIZER_CONFIGS, SCHEDULE_CONFIGS, ConstantSchedule, CosineSchedule, OneCycleSchedule,
                        OptimizerConfig, PlateauSchedule, ScheduleConfig)
from .plugins import BUILTIN, Registry, load_plugins, resolve
from .source import Places, combine, read_config_file, read_yaml, show, split_dotted
from .training import MONITOR_TASKS, TrainingConfig, monitor_for
from ..errors import ConfigError

#: What other modules take from here (the sections live in ``data``, ``optimizer`` and ``training``).
__all__ = ["CSV_ONLY", "DATA_FILES", "OPTIMIZER_CONFIGS", "SCHEDULE_CONFIGS", "Config", "DataConfig", "RunDir",
           "Section", "TrainingConfig", "config_from_dict", "config_schema", "load_config", "monitor_for"]


def _plugin_entry(value: Any, info: ValidationInfo) -> str:
    """A plugin: a Python file, made absolute against the config file's directory, or a module name."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a Python file or a module name, got {show(value)}")
    return resolve(value, Path((info.context or {}).get("base_dir") or Path.cwd()))


PluginEntry = Annotated[str, BeforeValidator(_plugin_entry)]


class Config(Section):
    """A validated config; every ``auto`` resolved and every path absolute. See the module docstring."""

    name: Annotated[str, BeforeValidator(directory_name("run"))] | None = Field(
        None, description="The run's name: its directory is runs/<name> (default: the config file's name).")
    seed: NonNegInt = Field(0, description="Seeds the weights, the validation split, shuffling and dropout.")
    plugins: list[PluginEntry] = Field(default_factory=list, description=(
        "Your own layers and losses: Python files (relative to this config) or importable module names. "
        "Every Module and Criterion subclass defined there can be named in model: and criterion:. "
        "The only way backprop runs code of yours; a checkpoint records these, and eval/predict need them."))
    data: DataConfig = Field(description="The data files and how to read them.")
    model: ModelSpec                    # described with the layer list, in layers.py
    criterion: CriterionSpec
    optimizer: OptimizerConfig = Field(description="The optimizer: a name, or {name: ..., its options}.")
    schedule: ScheduleConfig = Field(default_factory=ConstantSchedule, description=(
        "The learning-rate schedule per epoch: a name, or {name: ..., its options}; default constant."))
    training: Annotated[TrainingConfig, BeforeValidator(none_as_empty), JsonAlso({"type": "null"})] = Field(
        default_factory=TrainingConfig, description="The training loop.")
    output: RunDir | None = Field(None, description="The run directory (default: runs/<name>), relative to "
                                  "the current directory.")

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
            report(info, ("data", "task"), f"{self.data.task} does not fit {self.criterion.name} "
                    f"(a {task} criterion); set task: {task} or auto")

    def _resolve_training(self, info: ValidationInfo) -> None:
        training = self.training
        tasks = MONITOR_TASKS.get(training.monitor)
        if tasks and self.data.task not in tasks:
            report(info, ("training", "monitor"), f"{training.monitor} needs a {' or '.join(tasks)} task, "
                    f"this one is {self.data.task}")
        validation = self.data.validation is not None or self.data.validation_split > 0
        if not validation and training.monitor.startswith("val_"):
            report(info, ("training", "monitor"), f"{training.monitor} needs validation data "
                    "(data.validation or data.validation_split > 0); monitor train_loss or auto")
        monitor, mode = monitor_for(self.data.task, training.monitor, training.mode, validation)
        for key, value in (("monitor", monitor), ("mode", mode)):
            if getattr(training, key) == "auto":
                self._derive(f"training.{key}", "auto", value)
        if training.early_stopping is not None and not validation:
            report(info, ("training", "early_stopping"), "needs validation data (data.validation or "
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
            report(info, ("schedule", "min_lr"), f"must not exceed optimizer.lr ({self.optimizer.lr}), "
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
            report(info, ("schedule", "total_steps"), f"must cover the {epochs} epochs trained after warm-up, "
                    f"got {schedule.total_steps}")
        optimizer = self.optimizer
        if schedule.cycle_momentum and not (hasattr(optimizer, "betas") or getattr(optimizer, "momentum", 0) > 0):
            report(info, ("schedule", "cycle_momentum"), f"needs momentum to cycle: optimizer {optimizer.name} "
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

    def dump(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """Plain data (JSON and YAML serialisable) that :func:`config_from_dict` rebuilds. Data paths are
        as written; with ``relative_to`` (a folder), a relative one is rewritten from that folder, so
        that the dump saved there finds the same files."""
        data = self.model_dump(mode="json")
        data["schedule"] = {"name": data["schedule"].pop("name"), **data["schedule"]}
        for key, written in self.data._written.items():
            if relative_to is not None and not os.path.isabs(os.path.expanduser(written)):
                written = os.path.relpath(getattr(self.data, key), os.path.abspath(relative_to))
            data["data"][key] = written
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


def load_config(path: str | os.PathLike, overrides: Sequence[str | Override] = ()) -> Config:
    """Read, override (``--set KEY=VALUE`` text, or a sweep's :class:`Override`; applied before
    validation) and validate a YAML config.

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
    for override in overrides:
        problem = apply_override(data, places, override, Config)
        if problem is not None:
            problems.append(problem)
    base = Path(path).resolve().parent
    context = {"base_dir": base, "check_files": True, "default_name": Path(path).stem}
    return _validate(data, places, context, problems)


def config_from_dict(data: Any, *, source: str = "checkpoint", base_dir: str | os.PathLike | None = None,
                     overrides: Sequence[str] = ()) -> Config:
    """Rebuild a Config from :meth:`Config.dump` output (e.g. a checkpoint's stored config), with
    ``--set`` ``overrides``; relative data paths resolve against ``base_dir`` (default: the current
    directory).

    Errors are ConfigErrors placed at ``source`` (``checkpoint: optimizer.lr: ...``). Data files are not
    required to exist, so a checkpoint opens on a machine without its training data.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of config sections, got {show(data)}", file=source)
    data, places = copy.deepcopy(data), Places(source)
    problems = [p for p in (apply_override(data, places, text, Config) for text in overrides) if p is not None]
    if problems:
        raise combine(problems)
    context = {"base_dir": Path(base_dir) if base_dir is not None else Path.cwd(), "check_files": False,
               "default_name": None}
    return _validate(data, places, context, [])


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config file: every field described, bounds and choices in
    standard keywords, the layer list described loosely."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **Config.model_json_schema()}
