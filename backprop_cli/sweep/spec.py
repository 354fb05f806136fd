"""The sweep file: a base config and a search space over its dotted keys, all checked before any trial.

::

    config: digits_mlp.yaml        # the base config, relative to this file
    metric: val_accuracy           # default: the config's training.monitor
    direction: auto                # auto: maximize accuracy, minimize the rest
    sampler: tpe                   # tpe | random | grid, or {name: tpe, seed: 0}
    trials: 24                     # default: every point of a grid, else 20
    pruner: median                 # none | median, or {name: median, startup_trials: 5, warmup_epochs: 0}
    space:
      optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}
      model.1.Linear: {choice: [64, 128, 256]}
      seed: {int: [0, 2]}

:func:`load_sweep` reads the file with the line of every key (``config.source``) and validates it with
the messages configs get (``config.keys``). Then the space is checked against the base config: each
key is applied to it the way ``--set`` applies one (an unknown key gets the same did-you-mean line),
and each choice, and each bound of a range, is validated as ``train`` validates a config, the
mistake placed at the space entry's line. :meth:`Sweep.trial_config` gives one trial's config,
validated the same way. Nothing here imports Optuna.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args

import yaml
from pydantic import BeforeValidator, Field, PlainValidator, ValidationError, ValidationInfo, WithJsonSchema

from ..config.keys import Override, pydantic_problems
from ..config.fields import RunDir, Section, directory_name
from ..config.schema import Config, TrainingConfig, load_config
from ..config.source import (Place, Places, combine, number_from_string, read_config_file, read_yaml, show,
                             suggest)
from ..errors import ConfigError

#: The metrics a sweep can optimise: those ``training.monitor`` takes.
METRICS = tuple(m for m in get_args(TrainingConfig.model_fields["monitor"].annotation) if m != "auto")
#: Trials of a random or TPE sweep when the file and ``--trials`` say nothing.
DEFAULT_TRIALS = 20


# =========================================================================== the space
class Distribution(NamedTuple):
    """One space entry: ``choice`` (its values), or ``uniform``, ``log_uniform``, ``int``, ``log_int``
    (the low and high bounds, both included)."""

    kind: str
    values: tuple

    @property
    def probes(self) -> tuple:
        """The values checked against the config before the sweep starts: every choice, or both bounds."""
        return self.values


KINDS = ("choice", "uniform", "log_uniform", "int", "log_int")


def _distribution(value: Any) -> Distribution:
    """``{choice: [a, b]}``, ``{uniform: [low, high]}``, ``{log_uniform: [low, high]}``, ``{int: [low, high]}``
    or ``{log_int: [low, high]}``."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"expected one of {', '.join(KINDS)} as a one-key mapping, e.g. {{choice: [32, 64]}} or "
                         f"{{log_uniform: [1.0e-4, 0.1]}}, got {show(value)}")
    (kind, args), = value.items()
    if kind not in KINDS:
        expected = f"; expected one of {', '.join(KINDS)}"
        raise ValueError(f"unknown distribution {show(kind)}" + suggest(kind, KINDS, also=expected))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ValueError(f"choice: expected a non-empty list of values, got {show(args)}")
        return Distribution(kind, tuple(args))
    integer = kind in ("int", "log_int")
    bounds = [number_from_string(b) for b in args] if isinstance(args, list) else args
    def number(b) -> bool:
        if isinstance(b, bool):
            return False
        return isinstance(b, int) if integer else isinstance(b, (int, float)) and math.isfinite(b)
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(number(b) for b in bounds):
        what = "integers" if integer else "finite numbers"
        raise ValueError(f"{kind}: expected [low, high], two {what}, got {show(args)}")
    low, high = bounds
    if not low < high:
        raise ValueError(f"{kind}: expected low < high, got {show(args)}")
    if kind.startswith("log") and low <= 0:
        raise ValueError(f"{kind}: a log scale needs low > 0, got {show(args)}")
    return Distribution(kind, (int(low), int(high)) if integer else (float(low), float(high)))


SpaceEntry = Annotated[Distribution, PlainValidator(_distribution),
                       WithJsonSchema({"type": "object", "description": "{choice: [...]}, {uniform: [low, high]}, "
                                       "{log_uniform: [low, high]}, {int: [low, high]} or {log_int: [low, high]}"})]


# =========================================================================== the file
def _named(value: Any) -> Any:
    """``sampler: tpe`` is short for ``sampler: {name: tpe}``."""
    return {"name": value} if isinstance(value, str) else value


def _existing_file(value: Any, info: ValidationInfo) -> Path:
    """The base config's path, absolute against the sweep file's directory, checked to be a file."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected the path of a config file, got {show(value)}")
    path = Path(os.path.normpath(Path(info.context["base_dir"]) / os.path.expanduser(value)))
    if not path.is_file():
        shown = value if value == str(path) else f"{value} (looked for {path})"
        raise ValueError(f"no such config file: {shown}")
    return path


class SamplerSpec(Section):
    """How trials pick their values."""

    name: Literal["tpe", "random", "grid"] = Field("tpe", description="tpe (Optuna's Tree-structured Parzen "
                                                   "Estimator), random, or grid (every combination of the choices)")
    seed: Annotated[int, Field(ge=0)] | None = Field(0, description="Seeds the sampler (each worker gets its own "
                                                     "stream of it); null for a random seed")


class PrunerSpec(Section):
    """When to stop a trial early, from the metric after each epoch."""

    name: Literal["none", "median"] = Field("none", description="none, or median: stop a trial whose metric is "
                                            "worse than the median of earlier trials at the same epoch")
    startup_trials: Annotated[int, Field(ge=0)] = Field(5, description="Trials that finish before any is pruned")
    warmup_epochs: Annotated[int, Field(ge=0)] = Field(0, description="Epochs of a trial before it may be pruned")


class SweepFile(Section):
    """A sweep file, validated; see the module docstring."""

    config: Annotated[Path, BeforeValidator(_existing_file), WithJsonSchema({"type": "string"})] = Field(
        description="The base config (a path relative to the sweep file) that every trial changes")
    name: Annotated[str, BeforeValidator(directory_name("sweep"))] | None = Field(
        None, description="The sweep's name: its directory is runs/<name> (default: the sweep file's name "
                          "without .yaml)")
    metric: Literal[("auto",) + METRICS] = Field("auto", description="What the sweep optimises, one of "
                                                 "training.monitor's metrics (default: the base config's monitor)")
    direction: Literal["auto", "maximize", "minimize"] = Field("auto", description="auto: maximize accuracy, "
                                                               "minimize losses and errors")
    sampler: Annotated[SamplerSpec, BeforeValidator(_named)] = Field(
        default_factory=SamplerSpec, description="tpe | random | grid, or {name, seed}")
    trials: Annotated[int, Field(ge=1)] | None = Field(None, description="Trials to finish (complete, pruned or "
                                                       f"failed); default: a grid's size, else {DEFAULT_TRIALS}")
    pruner: Annotated[PrunerSpec, BeforeValidator(_named)] = Field(
        default_factory=PrunerSpec, description="none | median, or {name, ...}")
    space: Annotated[dict[str, SpaceEntry], Field(min_length=1)] = Field(
        description="Dotted config keys (as --set takes them) and the values to try")
    output: RunDir | None = Field(None, description="The sweep directory (default: runs/<name>)")


def sweep_schema() -> dict[str, Any]:
    """The JSON Schema of a sweep file."""
    return SweepFile.model_json_schema()


# =========================================================================== the sweep
@dataclass
class Sweep:
    """A validated sweep: the file, its base config (validated with the sweep's metric and direction),
    and where it runs (``directory``, ``storage``: None for the default journal file in it, ``study``)."""

    file: Path
    spec: SweepFile
    base: Config
    trials: int
    storage: str | None
    study: str
    _places: Places = field(repr=False, default=None)

    @property
    def name(self) -> str:
        return self.spec.name or self.file.stem

    @property
    def directory(self) -> Path:
        return self.spec.output if self.spec.output is not None else Path("runs") / self.name

    @property
    def metric(self) -> str:
        return self.base.training.monitor

    @property
    def direction(self) -> str:
        return "maximize" if self.base.training.mode == "max" else "minimize"

    @property
    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the choices (for the grid sampler), in the order of the file."""
        keys = list(self.spec.space)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.spec.space[k].values for k in keys))]

    def _place(self, *path) -> Place:
        return self._places.find(path)

    def fixed(self) -> list[Override]:
        """What the sweep sets in every trial: its metric and direction, where the file gives them."""
        fixed = []
        if self.spec.metric != "auto":
            fixed.append(Override("training.monitor", self.spec.metric, self._place("metric")))
        if self.spec.direction != "auto":
            mode = "max" if self.spec.direction == "maximize" else "min"
            fixed.append(Override("training.mode", mode, self._place("direction")))
        return fixed

    def overrides(self, params: dict[str, Any]) -> list[Override]:
        return [Override(key, value, self._place("space", key)) for key, value in params.items()]

    def trial_config(self, params: dict[str, Any], directory: Path) -> Config:
        """The base config with ``params`` (dotted key -> value) set and ``output`` at ``directory``,
        validated as ``train`` validates a config; a ConfigError names the sweep file's line."""
        output = Override("output", str(directory), Place(str(self.file), None))
        return load_config(self.spec.config, self.fixed() + self.overrides(params) + [output])

    def signature(self) -> dict[str, Any]:
        """What must not change while a study goes on: the space, metric, direction and sampler, and the
        base config (its data paths and output aside, which may differ from machine to machine)."""
        base = self.base.dump()
        base.pop("output", None)
        base["data"] = {k: v for k, v in base["data"].items() if not isinstance(getattr(self.base.data, k), Path)}
        space = {k: [d.kind, list(d.values)] for k, d in self.spec.space.items()}
        return json.loads(json.dumps({"space": space, "metric": self.metric, "direction": self.direction,
                                      "sampler": self.spec.sampler.name, "base": base}))


def load_sweep(path: str | os.PathLike, *, trials: int | None = None, storage: str | None = None,
               study: str | None = None) -> Sweep:
    """Read and validate a sweep file and check its space against its base config (see the module
    docstring); ``trials``, ``storage`` and ``study`` come from the command line. Every mistake found
    is raised together in one ConfigError, one line each."""
    file = str(path)
    if trials is not None and trials < 1:
        raise ConfigError(f"expected at least 1 trial, got {trials}", where="--trials")
    text = read_config_file(path)
    data, table, problems = read_yaml(text, file)
    places = Places(file, table)
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping with config, space and the sweep's settings, got {show(data)}",
                          file=file, line=table.get((), Place(file, None)).line)
    spec = None
    try:
        spec = SweepFile.model_validate(data, context={"base_dir": Path(path).resolve().parent})
    except ValidationError as err:
        problems += [places.error(p, message) for p, message in pydantic_problems(err, data, SweepFile)]
    if problems:
        raise combine(problems)
    if spec.sampler.name == "grid":
        problems += [places.error(("space", key), f"sampler grid takes choice lists, not {d.kind}")
                     for key, d in spec.space.items() if d.kind != "choice"]
    if problems:
        raise combine(problems)
    sweep = Sweep(Path(path), spec, None, 0, storage, study or spec.name or Path(path).stem, places)
    sweep.base = load_config(spec.config, sweep.fixed())
    sweep.trials = _budget(sweep, trials)
    _check_space(sweep)
    return sweep


def _budget(sweep: Sweep, trials: int | None) -> int:
    spec = sweep.spec
    wanted = trials if trials is not None else spec.trials
    if spec.sampler.name != "grid":
        return wanted or DEFAULT_TRIALS
    size = math.prod(len(d.values) for d in spec.space.values())
    if wanted is not None and wanted > size:
        where = Place("--trials", None) if trials is not None else sweep._place("trials")
        raise ConfigError(f"{wanted} trials, but the grid has {size} points", file=where.file, line=where.line,
                          where=None if trials is not None else "trials")
    return wanted or size


def _check_space(sweep: Sweep) -> None:
    """Every space key set in the base config with each of its probe values, validated: all the
    problems at once, each at its space entry's line."""
    found: dict[str, ConfigError] = {}
    for key, dist in sweep.spec.space.items():
        for value in dist.probes:
            try:
                load_config(sweep.spec.config, sweep.fixed() + sweep.overrides({key: value}))
            except ConfigError as err:
                for problem in getattr(err, "problems", [err]):
                    found.setdefault(str(problem), problem)
    if found:
        raise combine(list(found.values()))


# =========================================================================== values as --set flags
def set_flag(key: str, value: Any) -> str:
    """``key=value`` with the value written so that ``--set`` reads it back exactly (YAML 1.1 takes
    ``1e-05`` for a string, so floats keep a decimal point: ``1.0e-05``)."""
    return f"{key}={yaml_text(value)}"


def yaml_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return show(value)
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, str):
        try:
            plain = value.strip() == value != "" and yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain = False
        return value if plain else json.dumps(value)
    return str(value)

