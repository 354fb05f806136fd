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
from pydantic.json_schema import JsonSchemaValue

from .keys import Override, apply_override, pydantic_problems
from .layers import CriterionSpec, ModelSpec, registry_of
from .plugins import BUILTIN, Registry, load_plugins, resolve
from .source import (NUMBER_PATTERN, PathKey, Places, combine, dotted, number_from_string, read_config_file,
                     read_yaml, show, split_dotted)
from ..data.load import infer_format
from ..data.npy import is_npy_dir
from ..errors import ConfigError, DataError
from ..optim.optimizers import optimizer_name

#: What other modules take from here.
__all__ = ["OPTIMIZER_CONFIGS", "SCHEDULE_CONFIGS", "Config", "config_from_dict", "config_schema", "load_config",
           "monitor_for"]


# =========================================================================== value types
_JSON_BOUNDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def number(**bounds: float) -> Any:
    """A finite float within ``bounds`` (pydantic's ``gt``, ``ge``, ``lt``, ``le``); ints and numeric-looking
    strings (``"1e-3"``, which YAML 1.1 reads as a string) are accepted, bools are not. Its JSON schema
    gives the bounds as ``exclusiveMinimum``, ``minimum``, ... (they constrain numbers, not strings)."""
    json = {"type": ["number", "string"], "pattern": NUMBER_PATTERN,
            **{_JSON_BOUNDS[k]: v for k, v in bounds.items()}}
    return Annotated[float, BeforeValidator(number_from_string), Field(allow_inf_nan=False, **bounds),
                     WithJsonSchema(json)]


Flt = number()
PosFloat = number(gt=0)
NonNegFloat = number(ge=0)
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Fraction = number(gt=0, lt=1)


class JsonAlso:
    """In the JSON schema, also accept the shorthands a BeforeValidator expands (``optimizer: adam``,
    ``early_stopping: true``): ``{"anyOf": [*shorthands, the full form]}``."""

    def __init__(self, *shorthands: dict) -> None:
        self.shorthands = shorthands

    def __get_pydantic_json_schema__(self, core_schema, handler) -> JsonSchemaValue:
        return {"anyOf": [*self.shorthands, handler(core_schema)]}


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
        if path.is_dir() and not is_npy_dir(path):
            raise ValueError(f"{value} is a directory, expected a file (or a directory holding x.npy and y.npy)")
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


def _delimiter(value: Any) -> Any:
    """One character (``tab`` is a tab), not a quote, a line break, a digit or a letter."""
    value = "\t" if value == "tab" else value
    if not isinstance(value, str) or len(value) != 1 or value in '"\r\n.-+' or value.isalnum():
        raise ValueError(f"expected one character such as ',', ';', '|' or tab, got {show(value)}")
    return value


DataPath = Annotated[Path, BeforeValidator(_file_path), WithJsonSchema({"type": "string"})]
RunDir = Annotated[Path, BeforeValidator(_run_dir), WithJsonSchema({"type": "string"})]
LabelColumn = Annotated[Union[int, str], PlainValidator(_label_column),
                        WithJsonSchema({"type": ["integer", "string"]})]
Delimiter = Annotated[str, PlainValidator(_delimiter),
                      WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 3})]


def _report(info: ValidationInfo, path: PathKey, message: str) -> None:
    """Record a problem found by a cross-field check; without a context to collect into, raise."""
    problems = (info.context or {}).get("problems")
    if problems is None:
        raise ValueError(f"{dotted(path)}: {message}")
    problems.append((path, message))



# =========================================================================== sections
def _alias_properties(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A field's other names (``learning_rate`` for ``lr``) as properties of their own in the JSON schema."""
    for name, info in model.model_fields.items():
        if isinstance(info.validation_alias, AliasChoices) and name in schema.get("properties", {}):
            for alias in info.validation_alias.choices:
                if isinstance(alias, str) and alias != name:
                    schema["properties"][alias] = {**schema["properties"][name], "description": f"Same as {name}."}


class Section(BaseModel):
    """Strict: unknown keys are errors, and no value is coerced (``epochs: 2.5`` is an error)."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra=_alias_properties)


def guess_format(path: Path) -> str | None:
    """``csv``, ``npz`` or ``idx`` from a file name, as the data readers tell it; None if it says nothing."""
    try:
        return infer_format(path)
    except DataError:
        return None


class DataConfig(Section):
    """Where the examples are and how to read them."""

    format: Literal["auto", "csv", "tsv", "idx", "npz", "npy"] = Field(
        "auto", description="How the data files are read; auto: from the training file's name "
        "(.csv/.tsv/.txt, .npz, .npy or a directory holding x.npy, a name with idx or ubyte).")
    train: DataPath = Field(description="The training data file (or a directory holding x.npy and y.npy), "
                            "relative to this config's folder or absolute.")
    train_labels: DataPath | None = Field(None, description="The labels file of data.train (IDX data, and "
                                          "npy data named by its x.npy).")
    validation: DataPath | None = Field(None, description="A validation data file (instead of validation_split).")
    validation_labels: DataPath | None = Field(None, description="The labels file of data.validation (IDX "
                                               "or an x.npy only).")
    validation_split: number(ge=0, lt=1) = Field(
        0.1, description="The fraction of the training data held out for validation (stratified for classes) "
        "when there is no data.validation file; 0: none, and best.npz follows the training loss.")
    test: DataPath | None = Field(None, description="A test data file, scored after training and by eval.")
    test_labels: DataPath | None = Field(None, description="The labels file of data.test (IDX or an x.npy "
                                         "only).")
    label_column: LabelColumn = Field(-1, description="The label column of a CSV: a header name or an index "
                                      "(negative from the end; default: the last).")
    header: bool | None = Field(None, description="Whether a CSV's first row names its columns; null: detected.")
    delimiter: Delimiter | None = Field(None, description="The CSV cell separator, e.g. ',' ';' '|' or tab; "
                                        "null: a tab for .tsv files, else the one the header line shows.")
    features: Annotated[list[LabelColumn], Field(min_length=1)] | None = Field(
        None, description="The CSV feature columns in model-input order, by name (or index); "
        "null: every column but the label. Other files are matched by these names.")
    categorical: list[LabelColumn] = Field(
        default_factory=list, description="Feature columns of names to one-hot encode (categories learned "
        "from the training file, at most 1,000 per column).")
    missing: Literal["error", "drop", "mean"] = Field(
        "error", description="A missing CSV cell: error (name its line and column), drop (leave out its row), "
        "mean (fill with the training mean, stored with the checkpoint).")
    unknown: Literal["error", "ignore"] = Field(
        "error", description="A category not seen in training: error, or ignore (all-zero one-hot inputs).")
    task: Literal["auto", "classification", "regression", "binary"] = Field(
        "auto", description="What the labels are; auto: what the criterion needs.")
    normalize: Literal["none", "standardize", "minmax", "scale"] = Field(
        "none", description="Feature normalisation, fitted on the training data only.")
    scale: PosFloat | None = Field(None, description="The divisor for normalize: scale (e.g. 255 for bytes).")

    _written: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_as_written(cls, data: Any, handler) -> DataConfig:
        """Remember each data path as written (``../data/x.csv``), for :meth:`Config.dump`."""
        config = handler(data)
        if isinstance(data, dict):
            config._written = {key: data[key] for key in DATA_FILES if isinstance(data.get(key), str)}
        return config

    def as_written(self, key: str) -> str:
        """The path of ``data.<key>`` as the config wrote it (the absolute path when it was given as one)."""
        return self._written.get(key, str(getattr(self, key)))

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> DataConfig:
        if self.format == "auto":
            self.format = guess_format(self.train) or "auto"
            if self.format == "auto":
                _report(info, ("data", "train"), f"cannot tell the format from the name {self.train.name!r}; "
                        "set data.format to csv, tsv, idx, npz or npy")
        self._check_labels(info)
        self._check_columns(info)
        if self.validation is not None:
            if "validation_split" in self.model_fields_set and self.validation_split > 0:
                _report(info, ("data", "validation_split"),
                        "applies only when there is no validation file; remove one of the two")
            self.validation_split = 0.0
        if (self.normalize == "scale") != (self.scale is not None):
            _report(info, ("data", "scale"), "required for normalize: scale (e.g. 255)" if self.scale is None
                    else f"only for normalize: scale (normalize is {self.normalize})")
        if self.format in ("idx", "npz", "npy"):
            for key, default in CSV_ONLY.items():
                if getattr(self, key) != default:
                    _report(info, ("data", key), f"only for csv data (format is {self.format})")
        return self

    def _check_columns(self, info: ValidationInfo) -> None:
        """What can be told without the file: repeats, the label among the features, categorical
        columns that are not features; the file itself is checked when it is read."""
        if self.format == "tsv" and self.delimiter not in (None, "\t"):
            _report(info, ("data", "delimiter"), f"format tsv is tab-separated, got {show(self.delimiter)}; "
                    "set format: csv for another delimiter")
        for key in ("features", "categorical"):
            values = getattr(self, key) or []
            for i, value in enumerate(values):
                if value in values[:i]:
                    _report(info, ("data", key, i), f"lists column {show(value)} twice")
                elif value == self.label_column:
                    _report(info, ("data", key, i), f"{show(value)} is the label column (data.label_column); "
                            "a column is a label or a feature")
                elif key == "categorical" and self.features is not None and value not in self.features:
                    _report(info, ("data", key, i), f"{show(value)} is not one of data.features")
        if self.unknown != "error" and not self.categorical:
            _report(info, ("data", "unknown"), "applies to data.categorical columns, and there are none")

    def _check_labels(self, info: ValidationInfo) -> None:
        """IDX keeps labels in a second file, and so does an NPY pair named by its x.npy (its directory
        holds y.npy); CSV and NPZ files hold their own."""
        for part in ("train", "validation", "test"):
            given, labels, where = getattr(self, part), getattr(self, f"{part}_labels"), ("data", f"{part}_labels")
            in_dir = self.format == "npy" and given is not None and is_npy_dir(given)
            if labels is not None and given is None:
                _report(info, where, f"given without data.{part}")
            elif self.format in ("idx", "npy") and not in_dir and given is not None and labels is None:
                _report(info, where, f"required for {self.format} data (the labels file of data.{part})")
            elif labels is not None and (self.format in ("csv", "npz") or in_dir):
                held = f"data.{part} is a directory holding y.npy" if in_dir else f"{self.format} files hold their labels"
                _report(info, where, f"only for idx and npy files ({held})")


#: The data file keys (their paths are kept as written, for :meth:`Config.dump`).
DATA_FILES = ("train", "train_labels", "validation", "validation_labels", "test", "test_labels")
#: The CSV keys and their defaults: other formats must leave them so.
CSV_ONLY = {"header": None, "label_column": -1, "delimiter": None, "features": None, "categorical": [],
            "missing": "error", "unknown": "error"}


# ---------------------------------------------------------------- optimizers
_LR = AliasChoices("lr", "learning_rate")
_LR_TEXT = "The learning rate (learning_rate: is the same key)."
_WEIGHT_DECAY = "L2 penalty: weight_decay * w is added to each gradient."


#: Each optimizer and schedule tag with the spellings the JSON schema lists (any case is accepted).
SPELLINGS: dict[str, list[str]] = {}


def tag(name: str, *spellings: str) -> Any:
    """The ``name`` of an optimizer or schedule section: its tag, written in any case (``SGD``, ``Adam``)."""
    SPELLINGS[name] = list(dict.fromkeys((name, name.capitalize(), *spellings)))
    return Annotated[Literal[name], WithJsonSchema({"type": "string", "enum": SPELLINGS[name]}),
                     Field(description=f"Selects this section; any case ({', '.join(SPELLINGS[name])}).")]


_MAXIMIZE = "Step up the gradient instead of down (PyTorch's maximize)."


class SGDConfig(Section):
    """Stochastic gradient descent with optional (Nesterov) momentum: ``backprop_cli.optim.SGD``."""

    name: tag("sgd", "SGD")
    lr: PosFloat = Field(1e-3, validation_alias=_LR, description=_LR_TEXT)
    momentum: NonNegFloat = Field(0.0, description="Momentum factor: v = momentum * v + (1 - dampening) * g.")
    dampening: number(ge=0, le=1) = Field(0.0, description="Dampening of the momentum's gradient term.")
    nesterov: bool = Field(False, description="Nesterov momentum (needs momentum > 0 and dampening 0).")
    weight_decay: NonNegFloat = Field(0.0, description=_WEIGHT_DECAY)
    lr_decay: NonNegFloat = Field(0.0, description="Torch's learning-rate decay: lr / (1 + step * lr_decay).")
    maximize: bool = Field(False, description=_MAXIMIZE)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> SGDConfig:
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            _report(info, ("optimizer", "nesterov"), "needs momentum > 0 and dampening 0")
        return self


class _AdamFamily(Section):
    """What Adam and AdamW take; ``betas`` are the decay rates of the two moment estimates."""

    lr: PosFloat = Field(1e-3, validation_alias=_LR, description=_LR_TEXT)
    betas: Annotated[tuple[number(ge=0, lt=1), number(ge=0, lt=1)],
                     BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)] = Field(
        (0.9, 0.999), description="Decay rates of the running means of the gradient and of its square.")
    eps: PosFloat = Field(1e-8, description="Added to the denominator for numerical stability.")
    weight_decay: NonNegFloat = Field(0.0, description=_WEIGHT_DECAY)
    amsgrad: bool = Field(False, description="Divide by the largest second-moment estimate so far (AMSGrad).")
    maximize: bool = Field(False, description=_MAXIMIZE)


class AdamConfig(_AdamFamily):
    """Adam: ``backprop_cli.optim.Adam``."""

    name: tag("adam")
    decoupled_weight_decay: bool = Field(False, description="Decay the weights directly, as AdamW does, "
                                                            "instead of adding weight_decay * w to the gradient.")


class AdamWConfig(_AdamFamily):
    """Adam with decoupled weight decay: ``backprop_cli.optim.AdamW``."""

    name: tag("adamw", "AdamW")
    weight_decay: NonNegFloat = Field(1e-2, description="Decoupled weight decay: w -= lr * weight_decay * w.")


class RMSpropConfig(Section):
    """RMSprop: ``backprop_cli.optim.RMSprop``."""

    name: tag("rmsprop", "RMSprop")
    lr: PosFloat = Field(1e-2, validation_alias=_LR, description=_LR_TEXT)
    alpha: number(ge=0, lt=1) = Field(0.99, description="Decay rate of the running mean of the squared gradient.")
    eps: PosFloat = Field(1e-8, description="Added to the denominator for numerical stability.")
    momentum: NonNegFloat = Field(0.0, description="Momentum factor.")
    weight_decay: NonNegFloat = Field(0.0, description=_WEIGHT_DECAY)
    centered: bool = Field(False, description="Divide by the variance estimate instead of the mean square.")
    maximize: bool = Field(False, description=_MAXIMIZE)


class AdagradConfig(Section):
    """Adagrad: ``backprop_cli.optim.Adagrad``."""

    name: tag("adagrad")
    lr: PosFloat = Field(1e-2, validation_alias=_LR, description=_LR_TEXT)
    lr_decay: NonNegFloat = Field(0.0, description="Learning-rate decay: lr / (1 + step * lr_decay).")
    weight_decay: NonNegFloat = Field(0.0, description=_WEIGHT_DECAY)
    eps: PosFloat = Field(1e-10, description="Added to the denominator for numerical stability.")
    initial_accumulator_value: NonNegFloat = Field(0.0, description="Starting value of the sum of squares.")
    maximize: bool = Field(False, description=_MAXIMIZE)


#: Optimizer name -> its config section; the names are those of ``backprop_cli.optim.OPTIMIZERS``.
OPTIMIZER_CONFIGS = {"sgd": SGDConfig, "adam": AdamConfig, "adamw": AdamWConfig,
                     "rmsprop": RMSpropConfig, "adagrad": AdagradConfig}


def _named(value: Any, names=OPTIMIZER_CONFIGS) -> Any:
    """``optimizer: adam`` is short for ``optimizer: {name: adam}``; a name in any case is its tag (``SGD``)."""
    value = {"name": value} if isinstance(value, str) else value
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"].lower() in names:
        value = {**value, "name": value["name"].lower()}
    return value


def _names_schema(sections: dict[str, type[BaseModel]]) -> dict:
    """The JSON schema of a section given by its name alone, in each spelling its tag allows."""
    return {"type": "string", "enum": [spelling for name in sections for spelling in SPELLINGS[name]]}


def _optimizer_named(value: Any) -> Any:
    """:func:`_named`, with a PyTorch spelling (``SGD``, ``Adam``) read as the config name it stands for
    in ``backprop_cli.optim.OPTIMIZERS``."""
    value = _named(value)
    if isinstance(value, dict) and isinstance(value.get("name"), str) and optimizer_name(value["name"]):
        value = {**value, "name": optimizer_name(value["name"])}
    return value


OptimizerConfig = Annotated[Union[SGDConfig, AdamConfig, AdamWConfig, RMSpropConfig, AdagradConfig],
                            Field(discriminator="name"), BeforeValidator(_optimizer_named),
                            JsonAlso(_names_schema(OPTIMIZER_CONFIGS))]


# ---------------------------------------------------------------- schedules
class _ScheduleBase(Section):
    """What every schedule takes: an optional linear warm-up over the first epochs."""

    warmup_epochs: NonNegInt = Field(0, description="Epochs of linear warm-up before the schedule starts.")
    warmup_start_factor: number(gt=0, le=1) = Field(0.1, description="The warm-up's first lr, as a fraction of lr.")


class ConstantSchedule(_ScheduleBase):
    """The optimizer's lr throughout."""

    name: tag("constant") = "constant"


class StepSchedule(_ScheduleBase):
    """lr times gamma every ``step_size`` epochs."""

    name: tag("step")
    step_size: PosInt = Field(description="Epochs between two reductions.")
    gamma: PosFloat = Field(0.1, description="The factor applied to lr at each step.")


class MultiStepSchedule(_ScheduleBase):
    """lr times gamma at each epoch in ``milestones``."""

    name: tag("multistep", "MultiStep")
    milestones: Annotated[list[PosInt], Field(min_length=1)] = Field(
        description="The epochs (increasing) at which lr is multiplied by gamma.")
    gamma: PosFloat = Field(0.1, description="The factor applied to lr at each milestone.")

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:])):
            raise ValueError(f"expected increasing epochs, got {value}")
        return value


class ExponentialSchedule(_ScheduleBase):
    """lr times gamma every epoch."""

    name: tag("exponential")
    gamma: PosFloat = Field(description="The factor applied to lr every epoch.")


class CosineSchedule(_ScheduleBase):
    """Cosine from lr down to ``min_lr`` over ``t_max`` epochs (default: training.epochs)."""

    name: tag("cosine")
    t_max: PosInt | None = Field(None, description="Epochs of the cosine; null: training.epochs less the warm-up.")
    min_lr: NonNegFloat = Field(0.0, description="The lr at the end of the cosine.")
    cycle: bool = Field(False, description="Past t_max, follow the cosine back up (PyTorch's CosineAnnealingLR) "
                                           "instead of staying at min_lr.")


class LinearSchedule(_ScheduleBase):
    """lr times a factor going linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` epochs."""

    name: tag("linear")
    start_factor: number(gt=0, le=1) = Field(1 / 3, description="The lr factor at epoch 0.")
    end_factor: number(ge=0, le=1) = Field(1.0, description="The lr factor from total_iters on.")
    total_iters: PosInt = Field(5, description="Epochs the factor takes to go from start_factor to end_factor.")


class OneCycleSchedule(_ScheduleBase):
    """The one-cycle policy (PyTorch's OneCycleLR), stepped once an epoch: up to ``max_lr``, then far down."""

    name: tag("onecycle", "OneCycle")
    max_lr: PosFloat | None = Field(None, description="The peak lr (default: optimizer.lr).")
    total_steps: PosInt | None = Field(None, description="Epochs in the cycle (default: training.epochs "
                                                          "after any warm-up).")
    pct_start: number(ge=0, le=1) = Field(0.3, description="The fraction of the cycle spent going up.")
    anneal_strategy: Literal["cos", "linear"] = Field("cos", description="How each phase goes from its start "
                                                                           "to its end value.")
    cycle_momentum: bool = Field(True, description="Cycle the momentum (SGD, RMSprop: momentum > 0; "
                                                   "Adam: betas[0]) opposite to the lr.")
    base_momentum: number(ge=0, le=1) = Field(0.85, description="The momentum at the lr's peak.")
    max_momentum: number(ge=0, le=1) = Field(0.95, description="The momentum at the ends.")
    div_factor: PosFloat = Field(25.0, description="The lr starts at max_lr / div_factor.")
    final_div_factor: PosFloat = Field(1e4, description="The lr ends at max_lr / div_factor / final_div_factor.")
    three_phase: bool = Field(False, description="Come back down to the start lr before the final descent.")


class PlateauSchedule(_ScheduleBase):
    """lr times ``factor`` when the monitored metric stops improving (mode auto: training.mode)."""

    name: tag("plateau")
    mode: Literal["auto", "min", "max"] = Field("auto", description="Whether the metric should fall or rise; "
                                                "auto: training.mode.")
    factor: Fraction = Field(0.1, description="The factor applied to lr on a plateau.")
    patience: NonNegInt = Field(10, description="Epochs without improvement before lr is reduced.")
    threshold: NonNegFloat = Field(1e-4, description="The change that counts as an improvement (see threshold_mode).")
    cooldown: NonNegInt = Field(0, description="Epochs to wait after a reduction before watching again.")
    min_lr: NonNegFloat = Field(0.0, description="The lowest lr.")
    threshold_mode: Literal["rel", "abs"] = Field("rel", description="Improve by a fraction of the best "
                                                                      "(rel) or by threshold itself (abs).")


#: Schedule name -> its config section; the names are those of ``backprop_cli.optim.SCHEDULES``.
SCHEDULE_CONFIGS = {"constant": ConstantSchedule, "step": StepSchedule, "multistep": MultiStepSchedule,
                    "exponential": ExponentialSchedule, "cosine": CosineSchedule, "plateau": PlateauSchedule,
                    "linear": LinearSchedule, "onecycle": OneCycleSchedule}


def _schedule_named(value: Any) -> Any:
    """``schedule: cosine`` is ``{name: cosine}``; no name (or nothing) means ``constant``."""
    value = _named(_none_as_empty(value), SCHEDULE_CONFIGS)
    return {"name": "constant", **value} if isinstance(value, dict) and "name" not in value else value


ScheduleConfig = Annotated[Union[ConstantSchedule, StepSchedule, MultiStepSchedule, ExponentialSchedule,
                                 CosineSchedule, PlateauSchedule, LinearSchedule, OneCycleSchedule],
                           Field(discriminator="name"), BeforeValidator(_schedule_named),
                           JsonAlso(_names_schema(SCHEDULE_CONFIGS), {"type": "null"})]


# ---------------------------------------------------------------- training
class EarlyStopping(Section):
    """Stop when training.monitor has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: PosInt = Field(5, description="Epochs without improvement before training stops.")
    min_delta: NonNegFloat = Field(0.0, description="The least change of the metric that counts as an improvement.")


def _switch(value: Any) -> Any:
    """``early_stopping: true`` means the defaults, ``false`` means none."""
    return {} if value is True else None if value is False else value


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


# ---------------------------------------------------------------- the whole config
class Config(Section):
    """A validated config; every ``auto`` resolved and every path absolute. See the module docstring."""

    name: Annotated[str, BeforeValidator(_run_name)] | None = Field(
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
    training: Annotated[TrainingConfig, BeforeValidator(_none_as_empty), JsonAlso({"type": "null"})] = Field(
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
