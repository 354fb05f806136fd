"""Dotted keys matched against the schema: pydantic's errors as messages, and ``--set KEY=VALUE``.

:class:`_Schema` walks the pydantic models from the root (``Config``) along a path such as
``optimizer.learning_rate``, through discriminated unions (``optimizer: {name: adam}``) and aliases
(``learning_rate`` is ``lr``). :func:`pydantic_problems` turns each of pydantic's errors into ``what
was expected, got what`` at the path the user wrote, with a suggestion for a misspelt key or name.
:func:`apply_override` applies one ``--set`` (or a sweep's :class:`Override`) to the data before
validation, checking each key on the way down. The root is passed in, so this module does not import
the schema it walks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple, get_args

from pydantic import AliasChoices, BaseModel, ValidationError

from .source import PathKey, Place, Places, dotted, read_yaml, show, split_dotted, suggest
from ..errors import ConfigError


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


def _schema_at(root: type[BaseModel], loc: Sequence[Any]) -> _Schema:
    schema = _Schema(root)
    for key in loc:
        schema = schema.child(key)
    return schema


# =========================================================================== pydantic errors
def pydantic_problems(err: ValidationError, data: Any, root: type[BaseModel]) -> list[tuple[PathKey, str]]:
    """Each of pydantic's errors as ``(path in the user's data, message)``; ``root`` is the validated model."""
    found = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        path = _data_path(loc, data)
        if e["type"] == "union_tag_invalid":
            path += ("name",)
        found.append((path, _message(e, loc, data, root)))
    return found


def _data_path(loc: tuple, data: Any) -> PathKey:
    """A pydantic location as a path in the user's data: discriminator tags are dropped."""
    path: list = []
    node = data
    for i, key in enumerate(loc):
        child = _item(node, key)
        if child is _MISSING and i < len(loc) - 1:
            continue                                   # a union tag (or a wrapper) pydantic added
        node = None if child is _MISSING else child
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


def _message(err: dict, loc: tuple, data: Any, root: type[BaseModel]) -> str:
    """One pydantic error as ``what was expected, got what``."""
    kind, value = err["type"], err.get("input")
    got = f", got {show(value)}"
    if kind == "missing":
        return _PLAIN_MESSAGES[kind]
    if kind == "extra_forbidden":
        return _unknown_key(loc, data, root)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        what = loc[-1] if loc else "value"
        tags = list(_schema_at(root, loc).variants or {})
        name = value.get("name") if isinstance(value, dict) else None
        if kind == "union_tag_not_found":
            return f"missing name: one of {', '.join(tags)}"
        return f"unknown {what} {show(name)}" + suggest(name, tags, also=f"; expected one of {', '.join(tags)}")
    if kind == "literal_error":
        choices = _expected_choices(err)
        return f"expected one of {', '.join(choices)}{got}" + suggest(value, choices)
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


def _unknown_key(loc: tuple, data: Any, root: type[BaseModel]) -> str:
    key, schema = loc[-1], _schema_at(root, loc[:-1])
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
        siblings = _schema_at(root, (section,)).variants or {}
        others = [t for t, m in siblings.items() if t != tag and key in _keys(m)]
        if others:
            return (f"{section} {tag} has no option {key!r} ({', '.join(others)} "
                    f"{'has' if len(others) == 1 else 'have'} it); {tag} takes: "
                    f"{', '.join(k for k in model.model_fields if k != 'name')}")
    return "unknown key" + suggest(key, keys, also=f"; expected one of {', '.join(keys)}")


def _data_at(data: Any, path: PathKey) -> Any:
    """The value at ``path`` in the user's data, or None where there is none."""
    for key in path:
        data = _item(data, key)
        if data is _MISSING:
            return None
    return data


_MISSING = object()


def _item(node: Any, key: Any) -> Any:
    """``node[key]`` for a key of a mapping or an index into a list, else ``_MISSING``."""
    if isinstance(node, dict) and key in node:
        return node[key]
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return _MISSING


# =========================================================================== --set overrides
class Override(NamedTuple):
    """A value set at a dotted key by something other than the config file, with the place that set it
    (a sweep file's line), so that a mistake in it is reported there: ``sweep.yaml:9: optimizer.lr: ...``."""

    key: str
    value: Any
    place: Place


def apply_override(data: dict, places: Places, override: str | Override, root: type[BaseModel]) -> ConfigError | None:
    """Apply one override to ``data`` in place, checking each key against the schema on the way down:
    ``KEY=VALUE`` text (dotted KEY, YAML VALUE; from ``--set``) or an :class:`Override`. A problem is
    returned, placed at the override."""
    if isinstance(override, Override):
        label, place = override.key, override.place
    else:
        label, place = override, Place("--set", None, override)
    try:
        path, value = ((split_dotted(override.key), override.value) if isinstance(override, Override)
                       else _parse_override(override))
        parent, done = _descend(data, places, path, place, root)
    except ValueError as err:
        return ConfigError(str(err), file=place.file, line=place.line, where=label)
    parent[done[-1]] = value
    for known in [p for p in places.table if p[:len(done)] == done]:
        del places.table[known]
    places.table[done] = place
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
    return split_dotted(key), value


def _descend(data: dict, places: Places, path: PathKey, place: Place,
             root: type[BaseModel]) -> tuple[Any, PathKey]:
    """Walk to the container that holds ``path``'s last key, checking each key against the schema.

    Missing sections are created (``training.epochs=3`` without a training section); returns the
    container and the path as it is spelled in the data (``learning_rate`` when the file wrote that).
    """
    node, schema, done = data, _Schema(root), ()
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
                raise ValueError(f"{dotted(done)} is not in the config; set it whole ({dotted(done)}=...)")
            node[part] = {}
            places.table[done] = place
        node, schema = node[part], child
    raise ValueError("empty KEY")


def _override_key(node: Any, schema: _Schema, part: Any, done: PathKey, last: bool) -> Any:
    """``part`` checked as a key (or index) of ``node``; ValueError with a suggestion if it is none."""
    here = dotted(done) or "the config"
    if isinstance(node, list):
        if not isinstance(part, int) or not -len(node) <= part < len(node):
            raise ValueError(f"{here} is a list of {len(node)}; expected an index from 0 to {len(node) - 1}, "
                             f"got {part}")
        return part % len(node)
    if not isinstance(node, dict):
        raise ValueError(f"{here} is {show(node)}, not a mapping or a list; cannot set a key inside it")
    keys = schema.keys()
    if keys is not None:
        if part not in keys:
            raise ValueError(f"unknown key {part!r} in {here}"
                             + suggest(part, keys, also=f"; expected one of {', '.join(map(str, keys))}"))
        name = schema.field_name(part)                       # lr and learning_rate are one key
        return next((k for k in node if schema.field_name(k) == name), part)
    if part not in node and (not last or _is_layer_entry(done)):
        raise ValueError(f"{here} has no key {part!r}" + suggest(part, [str(k) for k in node]))
    return part


def _is_layer_entry(path: Sequence[Any]) -> bool:
    """Whether ``path`` is one layer's ``{Name: value}`` mapping (``model.3``, ``model.4.Residual.0``)."""
    in_model = len(path) >= 2 and path[0] == "model" and len(path) % 2 == 0 and isinstance(path[-1], int)
    return in_model or list(path) == ["criterion"]
