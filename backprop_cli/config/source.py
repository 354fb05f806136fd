"""Reading a YAML config with the place of every node, and the messages placed there.

:func:`read_yaml` parses one document with PyYAML's safe loader and records the line of every key and
value, so that a mistake is reported where it was made (``configs/x.yaml:14: optimizer.lr: ...``). It
checks what YAML itself lets through: duplicate keys (the later value is kept), keys that are not
plain values, and aliases that refer to themselves; a syntax error is reported with its line and
column. :class:`Places` maps a path in the tree (``("model", 3, "Linear")``) to its file and line, or
to the ``--set`` override that wrote it; :func:`combine` joins every problem into one ConfigError.

The helpers every config message uses sit here too: :func:`show` (a value as YAML writes it),
:func:`suggest` (``did you mean ...?``), dotted paths, and :func:`number_from_string` (YAML 1.1
reads ``1e-3`` as a string).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable
from typing import Any, NamedTuple, Union

import yaml

from ..errors import ConfigError

PathKey = tuple[Union[str, int], ...]


# =========================================================================== messages
def show(value: Any) -> str:
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


def suggest(word: Any, choices, *, also: str = "") -> str:
    """``"; did you mean learning_rate?"`` when a choice is close, else ``also`` (may be empty)."""
    if isinstance(word, str):
        by_lower = {str(c).lower(): str(c) for c in choices}
        close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
        if close:
            return f"; did you mean {by_lower[close[0]]}?"
    return also


def dotted(path: PathKey) -> str:
    return ".".join(str(p) for p in path)


def split_dotted(text: str) -> PathKey:
    return tuple(int(p) if re.fullmatch(r"-?\d+", p) else p for p in text.split("."))


_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def number_from_string(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string: take a numeric-looking string as the number meant."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


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
        place, where = self.find(path), label or dotted(path) or None
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
                                    line=node.start_mark.line + 1, where=dotted(path) or None))
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
            problems.append(ConfigError(f"a key must be a plain value, got {show(key)}", file=file,
                                        line=line, where=dotted(path) or None))
        elif key in first_line:
            problems.append(ConfigError(f"duplicate key (first given at line {first_line[key]})",
                                        file=file, line=line, where=dotted(path + (key,))))
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
