"""The ``model`` layer list and the ``criterion``: parsed into :class:`LayerSpec` and bound to constructors.

A layer is a name (``ReLU``) or a one-key mapping: ``Linear: 128`` (positional values), ``Linear: [784,
128]``, ``Linear: {out_features: 10, bias: false}`` (keywords); containers take a list of layers
(``Residual: [{Linear: 10}, ReLU]``). A layer may be named, ``{Linear: 64, name: enc}``, and used again
further on with ``Shared: enc``: the same module, its weights shared (a YAML anchor and alias, by
contrast, repeat the text and build two layers). Each is checked against its class's constructor: a known name,
known arguments, none missing but the size ``INFERRED`` from the incoming shape (left to
:func:`backprop_cli.config.build.build_model`), values of the annotated types (``int``, ``float``,
``tuple[int, int]``, ...) and an ``init`` scheme that exists. The criterion is also built once, so
that e.g. ``reduction: avg`` fails at load time.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple, TypeVar

from pydantic import PlainSerializer, PlainValidator, ValidationInfo, WithJsonSchema

from .plugins import BUILTIN, Registry
from .source import PathKey, dotted, number_from_string, show, suggest
from ..nn import CRITERIONS, MODULES
from ..nn import (BatchNormalization, LayerNorm, Linear, Residual, Sequential, SpatialBatchNormalization,
                 SpatialConvolution, TemporalConvolution)
from ..nn.init import SCHEMES as INIT_SCHEMES

T = TypeVar("T")


class Inferred(NamedTuple):
    """A constructor argument that may be left out: read from axis 0 of each incoming sample."""

    param: str
    ranks: tuple[int, ...]      # the per-sample ranks it can be read from
    expected: str               # the input the layer takes, for messages


#: The constructor argument each layer may leave out, inferred from the incoming shape (a subclass,
#: such as PyTorch's ``Conv2d`` of ``SpatialConvolution``, infers what its base does: see :func:`inferred_for`).
INFERRED: dict[type, Inferred] = {
    Linear: Inferred("in_features", (1,), "(N, in_features)"),
    TemporalConvolution: Inferred("in_channels", (2,), "(N, in_channels, L)"),
    SpatialConvolution: Inferred("in_channels", (3,), "(N, in_channels, H, W)"),
    BatchNormalization: Inferred("num_features", (1, 2), "(N, num_features) or (N, num_features, L)"),
    SpatialBatchNormalization: Inferred("num_features", (3,), "(N, num_features, H, W)"),
    LayerNorm: Inferred("normalized_shape", (1,), "(N, normalized_shape)"),
}
#: The constructor arguments a user's layer (a plugin's) may leave out, as the built-in layers do.
INFERRED_NAMES = ("in_features", "in_channels", "num_features")


def inferred_for(cls: type) -> Inferred | None:
    """What ``cls`` reads from the incoming shape: the table's entry for a built-in layer; for
    another class, a required constructor argument named like one in :data:`INFERRED_NAMES`, read
    from axis 0 of each sample (``Scale(num_features)`` after ``Linear: 128`` gets 128)."""
    for base in getattr(cls, "__mro__", ()):        # PyTorch's Conv2d infers what SpatialConvolution does
        if base in INFERRED:
            return INFERRED[base]
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None
    for name in INFERRED_NAMES:
        if name in params and params[name].default is inspect.Parameter.empty:
            return Inferred(name, tuple(range(1, 7)), f"(N, {name}, ...)")
    return None


#: Layers whose value is a list of layers.
CONTAINERS: tuple[type, ...] = (Sequential, Residual)
#: The entry that uses a named layer again, ``Shared: enc``, and the key that names one.
SHARED, NAME = "Shared", "name"
#: Constructor arguments that backprop passes itself; never config keys.
NOT_CONFIG_KEYS = {"rng": "it is drawn from the config's seed",
                   "dtype": "set training.dtype instead"}


@dataclass(frozen=True)
class LayerSpec:
    """One layer (or the criterion) as validated: its name, keyword arguments and, for containers, children.

    ``args`` holds every value given, bound to the constructor's parameter names (positional values
    included); an inferred size is simply absent. ``path`` is where it was written (``model.4.Residual.0``).
    ``label`` is the layer's ``name:``, if any; a ``Shared: enc`` entry has name ``Shared`` and
    ``shares="enc"``.
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    children: tuple[LayerSpec, ...] | None = None
    path: str = ""
    label: str | None = None
    shares: str | None = None

    def dump(self) -> Any:
        """Plain data in the full form: ``ReLU``, ``{Linear: {out_features: 10}}``, ``{Residual: [...]}``,
        ``{Linear: ..., name: enc}``, ``{Shared: enc}``."""
        if self.shares is not None:
            return {SHARED: self.shares}
        if self.children is not None:
            data = {self.name: [child.dump() for child in self.children]}
        else:
            data = {self.name: copy.deepcopy(self.args)} if self.args else self.name
        if self.label is None:
            return data
        return {**(data if isinstance(data, dict) else {data: None}), NAME: self.label}

    @property
    def title(self) -> str:
        """How messages name it: ``Linear``, ``Shared: enc``."""
        return self.name if self.shares is None else f"{SHARED}: {self.shares}"


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
    return [a.strip().replace("typing.", "") for a in re.split(r"\|(?![^\[]*\])", text)]   # "|" outside brackets


#: ``tuple[int, int]``, ``tuple[int, ...]``, ``list[int]``; ``tuple[int | None, int | None]`` lets an entry be null.
_INT_LIST = re.compile(r"(tuple|list|Sequence)\[int( \| None)?(, int(?: \| None)?)?(, \.\.\.)?\]")
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
            pair = match.group(3) is not None and match.group(4) is None
            nullable = match.group(2) is not None
            if (isinstance(value, list) and value and (len(value) == 2 or not pair)
                    and all((isinstance(v, int) and not isinstance(v, bool)) or (nullable and v is None) for v in value)):
                return True, value
        elif atom not in _ATOM_WORDS:
            known = False
    return (not known), value


def _expected_words(atoms: list[str]) -> str:
    words = []
    for atom in atoms:
        match = _INT_LIST.fullmatch(atom)
        if match:
            entries = "integers or nulls" if match.group(2) else "integers"
            words.append(f"a list of 2 {entries}" if match.group(3) and not match.group(4) else f"a list of {entries}")
        else:
            words.append(_ATOM_WORDS.get(atom, atom))
    return " or ".join(dict.fromkeys(words))


class _LayerParser:
    """Turns the raw ``model`` list (or ``criterion``) into LayerSpecs, collecting problems by path."""

    def __init__(self, registry: Registry, kind: str, problems: list) -> None:
        self.names = registry.modules if kind == "layer" else registry.criterions
        self.registry, self.kind, self.problems = registry, kind, problems
        self.named: dict[str, str] = {}          # layer name -> where it was defined, in forward order

    def problem(self, path: PathKey, message: str) -> None:
        self.problems.append((path, message))

    def parse_list(self, raw: Any, path: PathKey) -> tuple[LayerSpec, ...]:
        if not isinstance(raw, list) or not raw:
            self.problem(path, f"expected a non-empty list of {self.kind}s, got {show(raw)}")
            return ()
        specs = [self.parse(item, path + (i,)) for i, item in enumerate(raw)]
        return tuple(s for s in specs if s is not None)

    def parse(self, raw: Any, path: PathKey) -> LayerSpec | None:
        label = None
        if self.kind == "layer" and isinstance(raw, dict) and NAME in raw and len(raw) == 2:
            raw = dict(raw)
            label = self.label(raw.pop(NAME), path)
        if isinstance(raw, str):
            name, value = raw, None
        elif isinstance(raw, dict) and len(raw) == 1:
            (name, value), = raw.items()
        else:
            got = f"a mapping with {len(raw)} keys" if isinstance(raw, dict) else show(raw)
            example = "Linear: 128" if self.kind == "layer" else "CrossEntropyLoss: {weights: [1, 2]}"
            self.problem(path, f"expected a {self.kind} name or a one-key mapping like `{example}`, got {got}")
            return None
        if self.kind == "layer" and name == SHARED:
            return self.shared(value, label, path)
        spec = self.layer(name, value, path)
        if label is None:
            return spec
        self.named[label] = dotted(path)
        return None if spec is None else LayerSpec(spec.name, spec.args, spec.children, spec.path, label=label)

    def layer(self, name: Any, value: Any, path: PathKey) -> LayerSpec | None:
        cls = self.names.get(name) if isinstance(name, str) else None
        if cls is None and self.registry.incomplete:
            return None                    # a plugin that failed to load is reported instead
        if cls is None:
            shown = repr(name) if isinstance(name, str) else show(name)
            self.problem(path, self.registry.why_not(name, self.kind) or f"unknown {self.kind} {shown}"
                         + suggest(name, self.names, also=f" (known: {', '.join(self.names)})"))
            return None
        here = path + (name,)
        if isinstance(cls, type) and issubclass(cls, CONTAINERS):
            children = self.parse_list(value, here)
            return LayerSpec(name, {}, children, dotted(path))
        args = self.bind(cls, name, value, here)
        return None if args is None else LayerSpec(name, args, None, dotted(path))

    def label(self, value: Any, path: PathKey) -> str | None:
        """A layer's ``name:``: a new identifier (the check that it is new waits for the layer to parse)."""
        where = path + (NAME,)
        if not (isinstance(value, str) and value.isidentifier()):
            self.problem(where, f"expected a name for the layer (letters, digits and _), got {show(value)}")
            return None
        if value in self.named:
            self.problem(where, f"{value!r} already names {self.named[value]}; to use that layer again "
                                f"write `{SHARED}: {value}`")
            return None
        return value

    def shared(self, value: Any, label: str | None, path: PathKey) -> LayerSpec | None:
        """``Shared: enc``: the layer named ``enc``, defined before this place, used again."""
        where = path + (SHARED,)
        if label is not None:
            self.problem(path + (NAME,), f"a {SHARED} entry is the layer {value!r} again and takes no name of its own")
            return None
        if not isinstance(value, str) or value not in self.named:
            hint = suggest(value, self.named, also=f" (named layers: {', '.join(self.named)})" if self.named
                           else "; name one first, e.g. `{Linear: 64, name: enc}`")
            self.problem(where, f"no layer named {show(value) if not isinstance(value, str) else repr(value)} "
                                f"before this one{hint}")
            return None
        return LayerSpec(SHARED, {}, None, dotted(path), shares=value)

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
                    self.problem(path + (key,), f"unknown argument of {name}" + suggest(
                        key, names, also=f"; {name} takes: {', '.join(names)}" if names else f"; {name} takes none"))
                    ok = False
        else:
            values = value if isinstance(value, list) else [value]
            args = self.bind_positional(cls, name, params, values, path)
            if args is None:
                return None
        required = [n for n, p in params.items()
                    if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        inferred = getattr(inferred_for(cls), "param", None)
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
                    self.problem(path + (key,), f"expected {_expected_words(atoms)}, got {show(args[key])}")
                    ok = False
            if key == "init" and args[key] not in INIT_SCHEMES:
                self.problem(path + (key,), f"expected one of {', '.join(INIT_SCHEMES)}, got {show(args[key])}"
                             + suggest(args[key], INIT_SCHEMES))
                ok = False
        return ok

    def bind_positional(self, cls, name, params, values, path) -> dict[str, Any] | None:
        """Values fill the required arguments in order (skipping the inferred one when fewer are given)."""
        positional = [n for n, p in params.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        varpos = next((n for n, p in params.items() if p.kind is p.VAR_POSITIONAL), None)
        required = [n for n in positional if params[n].default is inspect.Parameter.empty]
        inferred = getattr(inferred_for(cls), "param", None)
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


def _collecting(info: ValidationInfo, parse: Callable[[list], T]) -> T:
    """``parse(found)`` with the list that validation collects ``(path, message)`` problems into; when
    validated without one (no context), the problems are raised together as pydantic's ValueError."""
    problems = (info.context or {}).get("problems")
    found: list = [] if problems is None else problems
    result = parse(found)
    if problems is None and found:
        raise ValueError("; ".join(f"{dotted(p)}: {m}" for p, m in found))
    return result


def registry_of(info: ValidationInfo) -> Registry:
    """The layers and losses this config may name: the built-in ones and its plugins'."""
    return (info.context or {}).get("registry") or BUILTIN


def _parse_model(value: Any, info: ValidationInfo) -> tuple[LayerSpec, ...]:
    parser = lambda found: _LayerParser(registry_of(info), "layer", found).parse_list(value, ("model",))
    return _collecting(info, parser)


def _parse_criterion(value: Any, info: ValidationInfo) -> LayerSpec | None:
    def parse(found: list) -> LayerSpec | None:
        before = len(found)
        criterions = registry_of(info).criterions
        spec = _LayerParser(registry_of(info), "criterion", found).parse(value, ("criterion",))
        if spec is not None and len(found) == before:
            try:
                built = criterions[spec.name](**spec.args)  # cheap: catches e.g. reduction: avg at load time
            except (ValueError, TypeError) as err:
                found.append((("criterion",), str(err)))
            else:
                if getattr(built, "reduction", "mean") == "none":
                    found.append((("criterion",), "reduction none gives one loss per sample; training needs one "
                                                  "number: use mean or sum"))
        return spec

    return _collecting(info, parse)


_LAYER_FORM = {"anyOf": [{"type": "string"},
                         {"type": "object", "minProperties": 1, "maxProperties": 2}]}     # the layer, and a name
_CRITERION_FORM = {"anyOf": [{"type": "string"}, {"type": "object", "minProperties": 1, "maxProperties": 1}]}
ModelSpec = Annotated[
    tuple[LayerSpec, ...], PlainValidator(_parse_model),
    PlainSerializer(lambda specs: [s.dump() for s in specs]),
    WithJsonSchema({"type": "array", "minItems": 1, "items": _LAYER_FORM, "description": (
        "Layers in order: a name (`ReLU`) or a one-key mapping `Name: value`, the value being positional "
        "arguments (`Linear: 128`, `Linear: [784, 128]`), keyword arguments (`Linear: {out_features: 10}`), "
        "or for containers a list of layers. A second key `name: enc` names a layer; a later entry "
        "`Shared: enc` uses that same layer again (shared weights). Layer names: " + ", ".join(MODULES))})]
CriterionSpec = Annotated[
    LayerSpec, PlainValidator(_parse_criterion), PlainSerializer(lambda spec: spec.dump()),
    WithJsonSchema({**_CRITERION_FORM, "description": (
        "The loss, as a name or `Name: {keyword: value}`. Criterion names: " + ", ".join(CRITERIONS))})]
