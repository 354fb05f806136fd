"""The config schema in one place, and ``load_config(path)``: YAML in, a validated :class:`Config` out.

Reading keeps the line of every node, so each mistake is reported where it was made::

    configs/x.yaml:14: optimizer.learnig_rate: unknown key; did you mean learning_rate?

Every mistake found in one run is raised together, as one :class:`ConfigError` listing one per line
(its ``problems`` attribute holds them one by one). Relative data paths resolve against the config
file's directory; the validated Config holds absolute paths and has every ``auto`` resolved (data
format, task, monitor, mode, cosine ``t_max``, name), so ``Config.dump()`` can be saved with
a run and rebuilt anywhere with :func:`config_from_dict`.

Layers and the criterion are written as a name (``ReLU``) or a one-key mapping: ``Linear: 128``
(positional values), ``Linear: [784, 128]``, ``Linear: {out_features: 10, bias: false}`` (keywords);
containers take a list of layers (``Residual: [{Linear: 10}, ReLU]``). The arguments are bound to the
class's constructor at load time; the sizes that the incoming shape determines (``Linear.in_features``,
convolution ``in_channels``, batch-norm ``num_features``) may be left out and are inferred by
:func:`backprop_cli.build.build_model`.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import os
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args

import yaml
from pydantic import (AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer,
                      PlainValidator, PrivateAttr, ValidationError, ValidationInfo, WithJsonSchema,
                      field_validator, model_validator)

from .errors import ConfigError
from .nn import CRITERIONS, MODULES
from .nn import (BatchNormalization, Linear, Residual, Sequential, SpatialBatchNormalization,
                 SpatialConvolution, TemporalConvolution)
from .nn.init import SCHEMES as INIT_SCHEMES

PathKey = tuple[Union[str, int], ...]


class Inferred(NamedTuple):
    """A constructor argument that may be left out: read from axis 0 of each incoming sample."""

    param: str
    ranks: tuple[int, ...]      # the per-sample ranks it can be read from
    expected: str               # the input the layer takes, for messages


#: The constructor argument each layer may leave out, inferred from the incoming shape.
INFERRED: dict[type, Inferred] = {
    Linear: Inferred("in_features", (1,), "(N, in_features)"),
    TemporalConvolution: Inferred("in_channels", (2,), "(N, in_channels, L)"),
    SpatialConvolution: Inferred("in_channels", (3,), "(N, in_channels, H, W)"),
    BatchNormalization: Inferred("num_features", (1, 2), "(N, num_features) or (N, num_features, L)"),
    SpatialBatchNormalization: Inferred("num_features", (3,), "(N, num_features, H, W)"),
}
#: Layers whose value is a list of layers.
CONTAINERS: tuple[type, ...] = (Sequential, Residual)
#: Constructor arguments that backprop passes itself; never config keys.
NOT_CONFIG_KEYS = {"rng": "it is drawn from the config's seed",
                   "dtype": "set training.dtype instead"}


# =========================================================================== messages
def _show(value: Any) -> str:
    """A value as the user wrote it in YAML: ``true``, ``null``, ``'ten'``, ``2.5``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        kind = "a mapping" if isinstance(value, dict) else "a list"
        text = repr(value if not isinstance(value, tuple) else list(value))
        return f"{kind} {text}" if len(text) <= 40 else kind
    return repr(value)


def _suggest(word: Any, choices, *, also: str = "") -> str:
    """``"; did you mean learning_rate?"`` when a choice is close, else ``also`` (may be empty)."""
    if isinstance(word, str):
        by_lower = {str(c).lower(): str(c) for c in choices}
        close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
        if close:
            return f"; did you mean {by_lower[close[0]]}?"
    return also


def _dotted(path: PathKey) -> str:
    return ".".join(str(p) for p in path)


def _split_dotted(dotted: str) -> PathKey:
    return tuple(int(p) if re.fullmatch(r"-?\d+", p) else p for p in dotted.split("."))


# =========================================================================== where things are
class Place(NamedTuple):
    """Where a config node came from: a file and line, or a ``--set KEY=VALUE`` override."""

    file: str
    line: int | None
    override: str | None = None


class Places:
    """The place of every node of the config tree, keyed by its path (``("model", 3, "Linear")``)."""

    def __init__(self, source: str, table: dict[PathKey, Place] | None = None) -> None:
        self.source = source
        self.table: dict[PathKey, Place] = table if table is not None else {}

    def find(self, path: PathKey) -> Place:
        """The place of ``path``, or of its nearest ancestor that has one (a missing key's parent)."""
        for n in range(len(path), -1, -1):
            place = self.table.get(tuple(path[:n]))
            if place is not None:
                return place
        return Place(self.source, None)

    def error(self, path: PathKey, message: str, *, label: str | None = None) -> ConfigError:
        """A ConfigError at ``path``; ``label`` replaces the dotted path in the message (``model.3 (Linear)``)."""
        place, where = self.find(path), label or _dotted(path) or None
        if place.override is not None:
            key = place.override.partition("=")[0]
            where = place.override if where in (None, key) else f"{place.override}: {where}"
        return ConfigError(message, file=place.file, line=place.line, where=where)


def combine(problems: list[ConfigError]) -> ConfigError:
    """One ConfigError listing every problem one per line, ordered by file line; ``.problems`` keeps them."""
    def order(err: ConfigError):
        return (err.file != "--set", err.line if err.line is not None else 0)

    problems = sorted(problems, key=order)
    if len(problems) == 1:
        err = problems[0]
    else:
        err = ConfigError("\n".join(str(p) for p in problems))
        err.file, err.line = problems[0].file, problems[0].line
    err.problems = problems
    return err


# =========================================================================== reading YAML
class LineLoader(yaml.SafeLoader):
    """PyYAML's safe loader; :func:`read_yaml` composes with it and constructs the tree itself."""


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _yaml_error(err: yaml.YAMLError, file: str) -> ConfigError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    text = problem + (f" ({context})" if context and context != problem else "")
    if mark is None:
        return ConfigError(f"invalid YAML: {text}", file=file)
    return ConfigError(f"invalid YAML at column {mark.column + 1}: {text}", file=file, line=mark.line + 1)


def read_yaml(text: str, file: str) -> tuple[Any, dict[PathKey, Place], list[ConfigError]]:
    """Parse one YAML document with the safe loader, recording each node's line.

    Returns ``(data, places, problems)``; duplicate keys are problems (the later value is kept).
    A syntax error raises ConfigError at once, with its line and column. An empty document is ``None``.
    """
    loader = LineLoader(text)
    places: dict[PathKey, Place] = {}
    problems: list[ConfigError] = []
    try:
        node = loader.get_single_node()
        data = None if node is None else _construct(loader, node, (), file, places, problems, set())
    except yaml.YAMLError as err:
        raise _yaml_error(err, file) from None
    finally:
        loader.dispose()
    return data, places, problems


def _construct(loader, node, path, file, places, problems, active) -> Any:
    """Build the Python value of ``node``, recording places and duplicate keys along the way."""
    places.setdefault(path, Place(file, node.start_mark.line + 1))
    if id(node) in active:
        problems.append(ConfigError("an alias refers to itself", file=file,
                                    line=node.start_mark.line + 1, where=_dotted(path) or None))
        return None
    if isinstance(node, yaml.SequenceNode):
        active.add(id(node))
        items = [_construct(loader, item, path + (i,), file, places, problems, active)
                 for i, item in enumerate(node.value)]
        active.discard(id(node))
        return items
    if not isinstance(node, yaml.MappingNode):
        return loader.construct_object(node, deep=True)
    active.add(id(node))
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, Hashable):
            problems.append(ConfigError(f"a key must be a plain value, got {_show(key)}", file=file,
                                        line=line, where=_dotted(path) or None))
        elif key in first_line:
            problems.append(ConfigError(f"duplicate key (first given at line {first_line[key]})",
                                        file=file, line=line, where=_dotted(path + (key,))))
        else:
            first_line[key] = line
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            continue
        result[key] = _construct(loader, value_node, path + (key,), file, places, problems, active)
        places[path + (key,)] = Place(file, key_node.start_mark.line + 1)
    active.discard(id(node))
    return result


# =========================================================================== value types
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def number_from_string(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string: take a numeric-looking string as the number meant."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


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
        raise ValueError(f"expected a file path, got {_show(value)}")
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
        raise ValueError(f"expected a directory path, got {_show(value)}")
    return Path(os.path.expanduser(value))


def _run_name(value: Any) -> Any:
    if isinstance(value, str) and (not value.strip() or "/" in value or "\\" in value):
        raise ValueError(f"expected a name for the run directory (no slashes), got {_show(value)}")
    return value


def _label_column(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise ValueError(f"expected a column index or a column name, got {_show(value)}")
    return value


DataPath = Annotated[Path, BeforeValidator(_file_path), WithJsonSchema({"type": "string"})]
RunDir = Annotated[Path, BeforeValidator(_run_dir), WithJsonSchema({"type": "string"})]
LabelColumn = Annotated[Union[int, str], PlainValidator(_label_column),
                        WithJsonSchema({"type": ["integer", "string"]})]


def _report(info: ValidationInfo, path: PathKey, message: str) -> None:
    """Record a problem found by a cross-field check; without a context to collect into, raise."""
    problems = (info.context or {}).get("problems")
    if problems is None:
        raise ValueError(f"{_dotted(path)}: {message}")
    problems.append((path, message))


# =========================================================================== layers
@dataclass(frozen=True)
class LayerSpec:
    """One layer (or the criterion) as validated: its name, keyword arguments and, for containers, children.

    ``args`` holds every value given, bound to the constructor's parameter names (positional values
    included); an inferred size is simply absent. ``path`` is where it was written (``model.4.Residual.0``).
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    children: tuple[LayerSpec, ...] | None = None
    path: str = ""

    def dump(self) -> Any:
        """Plain data in the full form: ``ReLU``, ``{Linear: {out_features: 10}}``, ``{Residual: [...]}``."""
        if self.children is not None:
            return {self.name: [child.dump() for child in self.children]}
        return {self.name: copy.deepcopy(self.args)} if self.args else self.name


def _annotation_atoms(param: inspect.Parameter) -> list[str] | None:
    """``"int | None"`` -> ``["int", "None"]``; from the default's type when unannotated; None if unknown."""
    ann = param.annotation
    if ann is inspect.Parameter.empty:
        default = param.default
        for kind in (bool, float, str):
            if type(default) is kind:
                return [kind.__name__]
        return None
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    return [a.strip().replace("typing.", "") for a in text.split("|")]


_INT_LIST = re.compile(r"(tuple|list|Sequence)\[int(, int)?(, \.\.\.)?\]")
_ATOM_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
               "None": "null"}


def _check_value(atoms: list[str], value: Any) -> tuple[bool, Any]:
    """``(ok, value)`` for a value against annotation atoms; floats accept numeric strings."""
    known = True
    for atom in atoms:
        if atom == "None" and value is None:
            return True, value
        if atom == "bool" and isinstance(value, bool):
            return True, value
        if atom == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True, value
        if atom == "float":
            number = number_from_string(value)
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                return True, number
        if atom == "str" and isinstance(value, str):
            return True, value
        match = _INT_LIST.fullmatch(atom)
        if match:
            pair = match.group(2) is not None and match.group(3) is None
            if (isinstance(value, list) and value and (len(value) == 2 or not pair)
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
                return True, value
        elif atom not in _ATOM_WORDS:
            known = False
    return (not known), value


def _expected_words(atoms: list[str]) -> str:
    words = []
    for atom in atoms:
        match = _INT_LIST.fullmatch(atom)
        if match:
            words.append("a list of 2 integers" if match.group(2) and not match.group(3) else "a list of integers")
        else:
            words.append(_ATOM_WORDS.get(atom, atom))
    return " or ".join(dict.fromkeys(words))


class _LayerParser:
    """Turns the raw ``model`` list (or ``criterion``) into LayerSpecs, collecting problems by path."""

    def __init__(self, registry: dict[str, type], kind: str, problems: list) -> None:
        self.registry, self.kind, self.problems = registry, kind, problems

    def problem(self, path: PathKey, message: str) -> None:
        self.problems.append((path, message))

    def parse_list(self, raw: Any, path: PathKey) -> tuple[LayerSpec, ...]:
        if not isinstance(raw, list) or not raw:
            self.problem(path, f"expected a non-empty list of {self.kind}s, got {_show(raw)}")
            return ()
        specs = [self.parse(item, path + (i,)) for i, item in enumerate(raw)]
        return tuple(s for s in specs if s is not None)

    def parse(self, raw: Any, path: PathKey) -> LayerSpec | None:
        if isinstance(raw, str):
            name, value = raw, None
        elif isinstance(raw, dict) and len(raw) == 1:
            (name, value), = raw.items()
        else:
            got = f"a mapping with {len(raw)} keys" if isinstance(raw, dict) else _show(raw)
            example = "Linear: 128" if self.kind == "layer" else "CrossEntropyLoss: {weights: [1, 2]}"
            self.problem(path, f"expected a {self.kind} name or a one-key mapping like `{example}`, got {got}")
            return None
        cls = self.registry.get(name) if isinstance(name, str) else None
        if cls is None:
            shown = repr(name) if isinstance(name, str) else _show(name)
            self.problem(path, f"unknown {self.kind} {shown}"
                         + _suggest(name, self.registry, also=f" (known: {', '.join(self.registry)})"))
            return None
        here = path + (name,)
        if isinstance(cls, type) and issubclass(cls, CONTAINERS):
            children = self.parse_list(value, here)
            return LayerSpec(name, {}, children, _dotted(path))
        args = self.bind(cls, name, value, here)
        return None if args is None else LayerSpec(name, args, None, _dotted(path))

    def bind(self, cls: type, name: str, value: Any, path: PathKey) -> dict[str, Any] | None:
        """Bind positional (a scalar or list) or keyword (a mapping) values to ``cls``'s constructor."""
        params = {n: p for n, p in inspect.signature(cls).parameters.items() if n not in NOT_CONFIG_KEYS}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        ok = True
        if value is None:
            args: dict[str, Any] = {}
        elif isinstance(value, dict):
            args = {}
            for key, v in value.items():
                if key in NOT_CONFIG_KEYS and key in inspect.signature(cls).parameters:
                    self.problem(path + (key,), f"not a config key: {NOT_CONFIG_KEYS[key]}")
                    ok = False
                elif key in params and params[key].kind is not inspect.Parameter.VAR_KEYWORD:
                    args[key] = v
                elif takes_any and isinstance(key, str):
                    args[key] = v
                else:
                    names = [n for n, p in params.items() if p.kind is not p.VAR_KEYWORD]
                    self.problem(path + (key,), f"unknown argument of {name}" + _suggest(
                        key, names, also=f"; {name} takes: {', '.join(names)}" if names else f"; {name} takes none"))
                    ok = False
        else:
            values = value if isinstance(value, list) else [value]
            args = self.bind_positional(cls, name, params, values, path)
            if args is None:
                return None
        required = [n for n, p in params.items()
                    if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        inferred = INFERRED[cls].param if cls in INFERRED else None
        missing = [n for n in required if n not in args and n != inferred]
        if missing:
            self.problem(path, f"missing {', '.join(missing)}")
            ok = False
        ok = self.check_types(params, args, path) and ok
        return args if ok else None

    def check_types(self, params: dict[str, inspect.Parameter], args: dict[str, Any], path: PathKey) -> bool:
        """Check each value against its parameter's annotation (numeric strings become floats)."""
        ok = True
        for key in list(args):
            param = params.get(key)
            if param is None or param.kind is param.VAR_POSITIONAL:
                continue
            atoms = _annotation_atoms(param)
            if atoms is not None:
                good, args[key] = _check_value(atoms, args[key])
                if not good:
                    self.problem(path + (key,), f"expected {_expected_words(atoms)}, got {_show(args[key])}")
                    ok = False
            if key == "init" and args[key] not in INIT_SCHEMES:
                self.problem(path + (key,), f"expected one of {', '.join(INIT_SCHEMES)}, got {_show(args[key])}"
                             + _suggest(args[key], INIT_SCHEMES))
                ok = False
        return ok

    def bind_positional(self, cls, name, params, values, path) -> dict[str, Any] | None:
        """Values fill the required arguments in order (skipping the inferred one when fewer are given)."""
        positional = [n for n, p in params.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        varpos = next((n for n, p in params.items() if p.kind is p.VAR_POSITIONAL), None)
        required = [n for n in positional if params[n].default is inspect.Parameter.empty]
        inferred = INFERRED[cls].param if cls in INFERRED else None
        if inferred in required and len(values) < len(required):
            positional = [n for n in positional if n != inferred]
        if len(values) > len(positional) and varpos is None:
            takes = (f"at most {len(positional)} value{'s' if len(positional) != 1 else ''} "
                     f"({', '.join(positional)})" if positional else "no arguments")
            self.problem(path, f"{name} takes {takes}, got {len(values)}")
            return None
        args = dict(zip(positional, values))
        if varpos is not None and len(values) > len(positional):
            args[varpos] = list(values[len(positional):])
        return args


def _parse_model(value: Any, info: ValidationInfo) -> tuple[LayerSpec, ...]:
    problems = (info.context or {}).get("problems")
    found: list = [] if problems is None else problems
    specs = _LayerParser(MODULES, "layer", found).parse_list(value, ("model",))
    if problems is None and found:
        raise ValueError("; ".join(f"{_dotted(p)}: {m}" for p, m in found))
    return specs


def _parse_criterion(value: Any, info: ValidationInfo) -> LayerSpec | None:
    problems = (info.context or {}).get("problems")
    found: list = [] if problems is None else problems
    before = len(found)
    spec = _LayerParser(CRITERIONS, "criterion", found).parse(value, ("criterion",))
    if spec is not None and len(found) == before:
        try:
            CRITERIONS[spec.name](**spec.args)          # cheap: catches e.g. reduction: avg at load time
        except (ValueError, TypeError) as err:
            found.append((("criterion",), str(err)))
    if problems is None and found:
        raise ValueError("; ".join(f"{_dotted(p)}: {m}" for p, m in found))
    return spec


_LAYER_FORM = {"anyOf": [{"type": "string"},
                         {"type": "object", "minProperties": 1, "maxProperties": 1}]}
ModelSpec = Annotated[
    tuple[LayerSpec, ...], PlainValidator(_parse_model),
    PlainSerializer(lambda specs: [s.dump() for s in specs]),
    WithJsonSchema({"type": "array", "minItems": 1, "items": _LAYER_FORM, "description": (
        "Layers in order: a name (`ReLU`) or a one-key mapping `Name: value`, the value being positional "
        "arguments (`Linear: 128`, `Linear: [784, 128]`), keyword arguments (`Linear: {out_features: 10}`), "
        "or for containers a list of layers. Layer names: " + ", ".join(MODULES))})]
CriterionSpec = Annotated[
    LayerSpec, PlainValidator(_parse_criterion), PlainSerializer(lambda spec: spec.dump()),
    WithJsonSchema({**_LAYER_FORM, "description": (
        "The loss, as a name or `Name: {keyword: value}`. Criterion names: " + ", ".join(CRITERIONS))})]


# =========================================================================== sections
class Section(BaseModel):
    """Strict: unknown keys are errors, and no value is coerced (``epochs: 2.5`` is an error)."""

    model_config = ConfigDict(strict=True, extra="forbid")


def guess_format(path: Path) -> str | None:
    """``csv``, ``npz`` or ``idx`` from a file name (``train-images-idx3-ubyte.gz`` is idx), else None."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(("ubyte", ".idx")) or re.search(r"idx\d", name):
        return "idx"
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


class SGDConfig(Section):
    """Stochastic gradient descent with optional (Nesterov) momentum: ``backprop_cli.optim.SGD``."""

    name: Literal["sgd"]
    lr: PosFloat = Field(0.01, validation_alias=_LR)
    momentum: NonNegFloat = 0.0
    dampening: Annotated[Flt, Field(ge=0, le=1)] = 0.0
    nesterov: bool = False
    weight_decay: NonNegFloat = 0.0
    lr_decay: NonNegFloat = 0.0

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> SGDConfig:
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            _report(info, ("optimizer", "nesterov"), "needs momentum > 0 and dampening 0")
        return self


class AdamConfig(Section):
    """Adam: ``backprop_cli.optim.Adam``; ``betas`` are the decay rates of the two moment estimates."""

    name: Literal["adam"]
    lr: PosFloat = Field(1e-3, validation_alias=_LR)
    betas: Annotated[tuple[Annotated[Flt, Field(ge=0, lt=1)], Annotated[Flt, Field(ge=0, lt=1)]],
                     BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)] = (0.9, 0.999)
    eps: PosFloat = 1e-8
    weight_decay: NonNegFloat = 0.0


class AdamWConfig(AdamConfig):
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


class AdagradConfig(Section):
    """Adagrad: ``backprop_cli.optim.Adagrad``."""

    name: Literal["adagrad"]
    lr: PosFloat = Field(1e-2, validation_alias=_LR)
    lr_decay: NonNegFloat = 0.0
    weight_decay: NonNegFloat = 0.0
    eps: PosFloat = 1e-10
    initial_accumulator_value: NonNegFloat = 0.0


#: Optimizer name -> its config section; the names are those of ``backprop_cli.optim.OPTIMIZERS``.
OPTIMIZER_CONFIGS = {"sgd": SGDConfig, "adam": AdamConfig, "adamw": AdamWConfig,
                     "rmsprop": RMSpropConfig, "adagrad": AdagradConfig}


def _named(value: Any) -> Any:
    """``optimizer: adam`` is short for ``optimizer: {name: adam}``."""
    return {"name": value} if isinstance(value, str) else value


OptimizerConfig = Annotated[Union[SGDConfig, AdamConfig, AdamWConfig, RMSpropConfig, AdagradConfig],
                            Field(discriminator="name"), BeforeValidator(_named)]


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


class PlateauSchedule(_ScheduleBase):
    """lr times ``factor`` when the monitored metric stops improving (mode auto: training.mode)."""

    name: Literal["plateau"]
    mode: Literal["auto", "min", "max"] = "auto"
    factor: Fraction = 0.1
    patience: NonNegInt = 10
    threshold: NonNegFloat = 1e-4
    cooldown: NonNegInt = 0
    min_lr: NonNegFloat = 0.0


#: Schedule name -> its config section; the names are those of ``backprop_cli.optim.SCHEDULES``.
SCHEDULE_CONFIGS = {"constant": ConstantSchedule, "step": StepSchedule, "multistep": MultiStepSchedule,
                    "exponential": ExponentialSchedule, "cosine": CosineSchedule, "plateau": PlateauSchedule}


def _schedule_named(value: Any) -> Any:
    """``schedule: cosine`` is ``{name: cosine}``; no name (or nothing) means ``constant``."""
    value = _named(_none_as_empty(value))
    return {"name": "constant", **value} if isinstance(value, dict) and "name" not in value else value


ScheduleConfig = Annotated[Union[ConstantSchedule, StepSchedule, MultiStepSchedule, ExponentialSchedule,
                                 CosineSchedule, PlateauSchedule],
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
    monitor: Literal["auto", "val_loss", "val_accuracy", "val_mae", "val_mse"] = "auto"
    mode: Literal["auto", "min", "max"] = "auto"
    early_stopping: Annotated[EarlyStopping | None, BeforeValidator(_switch)] = None
    checkpoint_every: PosInt = 1
    clip_grad_norm: PosFloat | None = None
    clip_grad_value: PosFloat | None = None


def monitor_for(task: str, monitor: str = "auto", mode: str = "auto") -> tuple[str, str]:
    """Resolve ``auto``: val_accuracy for classification, val_loss otherwise; max for accuracy, else min."""
    if monitor == "auto":
        monitor = "val_accuracy" if task == "classification" else "val_loss"
    if mode == "auto":
        mode = "max" if monitor == "val_accuracy" else "min"
    return monitor, mode


# ---------------------------------------------------------------- the whole config
class Config(Section):
    """A validated config; every ``auto`` resolved and every path absolute. See the module docstring."""

    name: Annotated[str, BeforeValidator(_run_name)] | None = None
    seed: NonNegInt = 0
    data: DataConfig
    model: ModelSpec
    criterion: CriterionSpec
    optimizer: OptimizerConfig
    schedule: ScheduleConfig = Field(default_factory=ConstantSchedule)
    training: Annotated[TrainingConfig, BeforeValidator(_none_as_empty)] = Field(default_factory=TrainingConfig)
    output: RunDir | None = None

    _places: Places = PrivateAttr(default_factory=lambda: Places("config"))

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Config:
        ctx = info.context or {}
        if self.name is None:
            self.name = ctx.get("default_name") or "run"
        if self.criterion is not None:                       # else already reported
            self._resolve_task(info)
            self._resolve_training(info)
            self._resolve_schedule(info)
        return self

    def _resolve_task(self, info: ValidationInfo) -> None:
        task = getattr(CRITERIONS[self.criterion.name], "task", "regression")
        if self.data.task == "auto":
            self.data.task = task
        elif self.data.task != task:
            _report(info, ("data", "task"), f"{self.data.task} does not fit {self.criterion.name} "
                    f"(a {task} criterion); set task: {task} or auto")

    def _resolve_training(self, info: ValidationInfo) -> None:
        training = self.training
        if training.monitor == "val_accuracy" and self.data.task != "classification":
            _report(info, ("training", "monitor"), f"val_accuracy needs a classification task, "
                    f"this one is {self.data.task}")
        training.monitor, training.mode = monitor_for(self.data.task, training.monitor, training.mode)
        no_validation = self.data.validation is None and self.data.validation_split == 0
        if training.early_stopping is not None and no_validation:
            _report(info, ("training", "early_stopping"), "needs validation data (data.validation or "
                    "data.validation_split > 0)")

    def _resolve_schedule(self, info: ValidationInfo) -> None:
        schedule = self.schedule
        if isinstance(schedule, CosineSchedule) and schedule.t_max is None:
            schedule.t_max = self.training.epochs
        if isinstance(schedule, PlateauSchedule) and schedule.mode == "auto":
            schedule.mode = self.training.mode
        if getattr(schedule, "min_lr", 0.0) > self.optimizer.lr:
            _report(info, ("schedule", "min_lr"), f"must not exceed optimizer.lr ({self.optimizer.lr}), "
                    f"got {schedule.min_lr}")

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
        place = self._places.find(_split_dotted(dotted_path) if dotted_path else ())
        return place.file, place.line

    def error(self, dotted_path: str, message: str, *, label: str | None = None) -> ConfigError:
        """A ConfigError placed at ``dotted_path``: ``file:line: label: message`` (label defaults to the path)."""
        return self._places.error(_split_dotted(dotted_path) if dotted_path else (), message, label=label)


# =========================================================================== schema walking
def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found += _models_in(arg)
    return found


def _keys(model: type[BaseModel]) -> list[str]:
    """Every accepted key of a section, aliases included (``lr`` and ``learning_rate``)."""
    keys = []
    for name, info in model.model_fields.items():
        keys.append(name)
        if isinstance(info.validation_alias, AliasChoices):
            keys += [c for c in info.validation_alias.choices if isinstance(c, str) and c != name]
    return keys


def _field_name(model: type[BaseModel], key: Any) -> str | None:
    for name, info in model.model_fields.items():
        if key == name or (isinstance(info.validation_alias, AliasChoices) and key in info.validation_alias.choices):
            return name
    return None


def _tag(model: type[BaseModel]) -> str:
    return get_args(model.model_fields["name"].annotation)[0]


class _Schema(NamedTuple):
    """A point in the schema: one section, a discriminated union of sections, or free-form data."""

    model: type[BaseModel] | None = None
    variants: dict[str, type[BaseModel]] | None = None

    def keys(self) -> list[str] | None:
        if self.model is not None:
            return _keys(self.model)
        if self.variants is not None:
            return list(dict.fromkeys(k for m in self.variants.values() for k in _keys(m)))
        return None

    def field_name(self, key: Any) -> str | None:
        """The field ``key`` names (``lr`` for ``learning_rate``), in this section or any variant."""
        models = [self.model] if self.model is not None else list((self.variants or {}).values())
        return next((n for n in (_field_name(m, key) for m in models) if n is not None), None)

    def child(self, key: Any) -> _Schema:
        model = self.model
        if self.variants is not None:
            if key in self.variants:                      # a discriminator tag in a pydantic location
                return _Schema(self.variants[key])
            model = next((m for m in self.variants.values() if _field_name(m, key)), None)
        name = _field_name(model, key) if model is not None else None
        if name is None:
            return _Schema()
        models = _models_in(model.model_fields[name].annotation)
        if len(models) == 1:
            return _Schema(models[0])
        if len(models) > 1:
            return _Schema(variants={_tag(m): m for m in models})
        return _Schema()


def _is_layer_entry(path: Sequence[Any]) -> bool:
    """Whether ``path`` is one layer's ``{Name: value}`` mapping (``model.3``, ``model.4.Residual.0``)."""
    in_model = len(path) >= 2 and path[0] == "model" and len(path) % 2 == 0 and isinstance(path[-1], int)
    return in_model or list(path) == ["criterion"]


def _schema_at(loc: Sequence[Any]) -> _Schema:
    schema = _Schema(Config)
    for key in loc:
        schema = schema.child(key)
    return schema


# =========================================================================== pydantic errors
def _data_path(loc: tuple, data: Any) -> PathKey:
    """A pydantic location as a path in the user's data: discriminator tags are dropped."""
    path: list = []
    node = data
    for i, key in enumerate(loc):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        elif i < len(loc) - 1:
            continue                                   # a union tag (or a wrapper) pydantic added
        else:
            node = None
        path.append(key)
    return tuple(path)


def _expected_choices(err: dict) -> list[str]:
    return re.findall(r"'([^']*)'", (err.get("ctx") or {}).get("expected", ""))


_PLAIN_MESSAGES = {
    "missing": "missing; this key is required",
    "int_type": "expected an integer", "int_from_float": "expected an integer",
    "float_type": "expected a number", "bool_type": "expected true or false",
    "string_type": "expected a string", "list_type": "expected a list", "tuple_type": "expected a list",
    "model_type": "expected a mapping", "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping", "finite_number": "expected a finite number",
}


def _message(err: dict, loc: tuple, data: Any) -> str:
    """One pydantic error as ``what was expected, got what``."""
    kind, value = err["type"], err.get("input")
    got = f", got {_show(value)}"
    if kind == "missing":
        return _PLAIN_MESSAGES[kind]
    if kind == "extra_forbidden":
        return _unknown_key(loc, data)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        what = loc[-1] if loc else "value"
        tags = list(_schema_at(loc).variants or {})
        name = value.get("name") if isinstance(value, dict) else None
        if kind == "union_tag_not_found":
            return f"missing name: one of {', '.join(tags)}"
        return f"unknown {what} {_show(name)}" + _suggest(name, tags, also=f"; expected one of {', '.join(tags)}")
    if kind == "literal_error":
        choices = _expected_choices(err)
        return f"expected one of {', '.join(choices)}{got}" + _suggest(value, choices)
    if kind in ("value_error", "assertion_error"):
        return err["msg"].split(", ", 1)[1] if err["msg"].startswith(("Value error, ", "Assertion failed, ")) \
            else err["msg"]
    if kind == "too_short":
        return f"expected at least {(err.get('ctx') or {}).get('min_length', 1)} item(s){got}"
    if kind in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[kind] + got
    text = err["msg"]
    if text.startswith("Input should be "):
        rest = text[len("Input should be "):]
        text = ("expected a value " if rest.startswith(("greater", "less")) else "expected ") + rest
    return text + (got if "got" not in text and not isinstance(value, (dict, list)) else "")


def _unknown_key(loc: tuple, data: Any) -> str:
    key, schema = loc[-1], _schema_at(loc[:-1])
    model = schema.model
    if model is None:
        return "unknown key"
    fieldname = _field_name(model, key)
    parent = _data_at(data, _data_path(loc, data)[:-1])
    if fieldname is not None and isinstance(parent, dict):
        twin = [k for k in parent if k != key and _field_name(model, k) == fieldname]
        if twin:
            return f"{key} and {twin[0]} are the same key; give one"
    keys = _keys(model)
    section = loc[0] if loc else None
    if section in ("optimizer", "schedule") and "name" in model.model_fields:
        tag = _tag(model)
        siblings = OPTIMIZER_CONFIGS if section == "optimizer" else SCHEDULE_CONFIGS
        others = [t for t, m in siblings.items() if t != tag and key in _keys(m)]
        if others:
            return (f"{section} {tag} has no option {key!r} ({', '.join(others)} "
                    f"{'has' if len(others) == 1 else 'have'} it); {tag} takes: "
                    f"{', '.join(k for k in model.model_fields if k != 'name')}")
    return "unknown key" + _suggest(key, keys, also=f"; expected one of {', '.join(keys)}")


def _data_at(data: Any, path: PathKey) -> Any:
    for key in path:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return None
    return data


# =========================================================================== --set overrides
def apply_override(data: dict, places: Places, text: str) -> ConfigError | None:
    """Apply one ``KEY=VALUE`` (dotted KEY, YAML VALUE) to ``data`` in place; a problem is returned."""
    try:
        path, value = _parse_override(text)
        parent, done = _descend(data, places, path, text)
    except ValueError as err:
        return ConfigError(str(err), file="--set", where=text)
    parent[done[-1]] = value
    for known in [p for p in places.table if p[:len(done)] == done]:
        del places.table[known]
    places.table[done] = Place("--set", None, text)
    return None


def _parse_override(text: str) -> tuple[PathKey, Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise ValueError("expected KEY=VALUE with a dotted KEY, e.g. training.epochs=3")
    try:
        value, _, problems = read_yaml(raw, "--set")
    except ConfigError as err:
        raise ValueError(f"VALUE is not valid YAML: {err.detail}") from None
    if problems:
        raise ValueError(f"VALUE: {problems[0].detail}")
    return _split_dotted(key), value


def _descend(data: dict, places: Places, path: PathKey, text: str) -> tuple[Any, PathKey]:
    """Walk to the container that holds ``path``'s last key, checking each key against the schema.

    Missing sections are created (``training.epochs=3`` without a training section); returns the
    container and the path as it is spelled in the data (``learning_rate`` when the file wrote that).
    """
    node, schema, done = data, _Schema(Config), ()
    for i, part in enumerate(path):
        last = i == len(path) - 1
        done += (_override_key(node, schema, part, done, last),)
        if last:
            return node, done
        part, child = done[-1], schema.child(done[-1])
        current = node[part] if isinstance(node, list) or part in node else None
        if child.variants is not None and isinstance(current, str):
            node[part] = {"name": current}                   # `schedule: cosine` is {name: cosine}
        elif current is None:
            if child.keys() is None:
                raise ValueError(f"{_dotted(done)} is not in the config; set it whole ({_dotted(done)}=...)")
            node[part] = {}
            places.table[done] = Place("--set", None, text)
        node, schema = node[part], child
    raise ValueError("empty KEY")


def _override_key(node: Any, schema: _Schema, part: Any, done: PathKey, last: bool) -> Any:
    """``part`` checked as a key (or index) of ``node``; ValueError with a suggestion if it is none."""
    here = _dotted(done) or "the config"
    if isinstance(node, list):
        if not isinstance(part, int) or not -len(node) <= part < len(node):
            raise ValueError(f"{here} is a list of {len(node)}; expected an index from 0 to {len(node) - 1}, "
                             f"got {part}")
        return part % len(node)
    if not isinstance(node, dict):
        raise ValueError(f"{here} is {_show(node)}, not a mapping or a list; cannot set a key inside it")
    keys = schema.keys()
    if keys is not None:
        if part not in keys:
            raise ValueError(f"unknown key {part!r} in {here}"
                             + _suggest(part, keys, also=f"; expected one of {', '.join(map(str, keys))}"))
        name = schema.field_name(part)                       # lr and learning_rate are one key
        return next((k for k in node if schema.field_name(k) == name), part)
    if part not in node and (not last or _is_layer_entry(done)):
        raise ValueError(f"{here} has no key {part!r}" + _suggest(part, [str(k) for k in node]))
    return part


# =========================================================================== entry points
def _validate(data: Any, places: Places, context: dict, problems: list[ConfigError]) -> Config:
    """Validate plain data, collecting pydantic's errors and the cross-field ones into one ConfigError."""
    found: list[tuple[PathKey, str]] = []
    config = None
    try:
        config = Config.model_validate(data, context={**context, "problems": found})
    except ValidationError as err:
        for e in err.errors(include_url=False):
            loc = tuple(e["loc"])
            path = _data_path(loc, data)
            if e["type"] == "union_tag_invalid":
                path += ("name",)
            found.append((path, _message(e, loc, data)))
    problems = problems + [places.error(path, message) for path, message in found]
    if problems:
        raise combine(problems)
    config._places = places
    return config


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Config:
    """Read, override (``--set KEY=VALUE``, applied before validation) and validate a YAML config.

    Raises one ConfigError listing every mistake found, each as ``file:line: dotted.path: expected ...``.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such config file", file=file) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a YAML config file", file=file) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read: {err}", file=file) from None
    data, table, problems = read_yaml(text, file)
    if data is None:
        raise ConfigError("the config is empty; expected a mapping with data, model, criterion, optimizer",
                          file=file)
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of sections (data, model, criterion, ...), got {_show(data)}",
                          file=file, line=table[()].line)
    places = Places(file, table)
    for text in overrides:
        problem = apply_override(data, places, text)
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
        raise ConfigError(f"expected a mapping of config sections, got {_show(data)}", file=source)
    context = {"base_dir": Path.cwd(), "check_files": False, "default_name": None}
    return _validate(copy.deepcopy(data), Places(source), context, [])


def config_schema() -> dict[str, Any]:
    """The JSON Schema of a config file (pydantic's, with the layer list described loosely)."""
    return Config.model_json_schema()
