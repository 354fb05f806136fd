"""The pieces every config section is made of: :class:`Section` (strict, unknown keys refused), the
number types with their JSON Schema bounds (:func:`number`), shorthands the JSON schema also accepts
(:class:`JsonAlso`), the run directory's path and name, and :func:`report` for cross-field checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue

from .source import NUMBER_PATTERN, PathKey, dotted, number_from_string, show

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


def none_as_empty(value: Any) -> Any:
    """``training:`` with nothing under it means all defaults."""
    return {} if value is None else value


def run_dir(value: Any) -> Path:
    """The run directory as written; a relative one is taken from the current directory when used."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a directory path, got {show(value)}")
    return Path(os.path.expanduser(value))


def directory_name(what: str):
    """A validator of the name a ``what`` directory takes (``runs/<name>``): not blank, no slashes."""
    def check(value: Any) -> Any:
        if isinstance(value, str) and (not value.strip() or "/" in value or "\\" in value):
            raise ValueError(f"expected a name for the {what} directory (no slashes), got {show(value)}")
        return value
    return check


RunDir = Annotated[Path, BeforeValidator(run_dir), WithJsonSchema({"type": "string"})]


def report(info: ValidationInfo, path: PathKey, message: str) -> None:
    """Record a problem found by a cross-field check; without a context to collect into, raise."""
    problems = (info.context or {}).get("problems")
    if problems is None:
        raise ValueError(f"{dotted(path)}: {message}")
    problems.append((path, message))



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
