"""Reading a YAML config with the place of every node, and the messages placed there.

:func:`read_config_file` reads at most :data:`MAX_CONFIG_BYTES` of UTF-8 (the size is checked before
anything is read). :func:`read_yaml` parses one document with PyYAML's safe loader (libyaml's C parser
when present, PyYAML's own words for its syntax errors) and records the line of every key and value,
so that a mistake is reported where it was made (``configs/x.yaml:14: optimizer.lr: ...``). It refuses
what ``safe_load`` refuses, on mappings and sequences too (a tag like ``!!python/object/new:...``, a
control character), and what a config never needs: a document that expands past
:data:`MAX_CONFIG_NODES` values with its aliases (a "billion laughs" is measured on its few nodes,
before anything is built; a long document's parser events are counted first, so one past the cap
costs only the cap's worth of parsing) or nests deeper than :data:`MAX_CONFIG_DEPTH`. It checks what YAML itself
lets through: duplicate keys (the later value is kept), keys that are not plain values, and aliases
that refer to themselves. An aliased node is built once and copied for each further use.
:class:`Places` maps a path in the tree (``("model", 3, "Linear")``) to its file and line, or to the
``--set`` override that wrote it; :func:`combine` joins every problem into one ConfigError.

:func:`yaml_dump` writes YAML the one way backprop writes it. The helpers every config message uses sit
here too: :func:`show` (a value as YAML writes it),
:func:`suggest` (``did you mean ...?``), dotted paths, and :func:`number_from_string` (YAML 1.1
reads ``1e-3`` as a string).
"""

from __future__ import annotations

import copy
import difflib
import os
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


#: A numeric-looking string (``1e-3``), as a JSON Schema ``pattern``.
NUMBER_PATTERN = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
_NUMBER = re.compile(NUMBER_PATTERN)


def number_from_string(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string: take a numeric-looking string as the number meant."""
    if isinstance(value, str) and _NUMBER.match(value):
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
#: A config file may hold at most this many bytes (checked before it is read).
MAX_CONFIG_BYTES = 1024**2
#: ... and expand to at most this many values (keys, items, scalars), every alias counted where it is used.
MAX_CONFIG_NODES = 100_000
#: ... nested at most this deep.
MAX_CONFIG_DEPTH = 64

_SAFE_BASE = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader     # libyaml's C parser when present


class LineLoader(_SAFE_BASE):
    """PyYAML's safe loader (libyaml's C parser when present); :func:`read_yaml` composes with it and
    constructs the tree itself."""


class _PyLineLoader(yaml.SafeLoader):
    """The pure-Python safe loader: its syntax messages name more (``found undefined alias 'x'``), so
    a document the C parser refuses is parsed again with it for the message."""


#: A document the C parser refuses is parsed again in Python for the message when it is this short.
_REPARSE_CHARS = 64 * 1024
#: A document longer than this may hold more nodes than the cap: its events are counted first.
_COUNT_FIRST_CHARS = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = {yaml.SequenceNode: "tag:yaml.org,2002:seq", yaml.MappingNode: "tag:yaml.org,2002:map"}
#: PyYAML's NON_PRINTABLE: what YAML does not allow in a document (safe_load refuses it too).
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


def yaml_dump(data: Any, *, flow: bool = False) -> str:
    """Plain data as YAML, keys in their order: blocks with short lists inline (a saved config.yaml,
    ``--print-config``), or with ``flow`` all on one line (``{Linear: {out_features: 128}}``)."""
    if flow:
        return yaml.safe_dump(data, default_flow_style=True, width=10_000, sort_keys=False)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def read_config_file(path) -> str:
    """The text of a config file: at most :data:`MAX_CONFIG_BYTES`, UTF-8 (checked before YAML sees it)."""
    file = str(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_CONFIG_BYTES:
                raise ConfigError(f"the file has {size:,} bytes; a config may have at most {MAX_CONFIG_BYTES:,}",
                                  file=file)
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("no such config file", file=file) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a YAML config file", file=file) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}", file=file) from None
    if len(data) > MAX_CONFIG_BYTES:                  # a file that grew, or a device
        raise ConfigError(f"more than {MAX_CONFIG_BYTES:,} bytes; a config may have at most that", file=file)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start}",
                          file=file, line=line) from None


def _yaml_error(err: yaml.YAMLError, file: str) -> ConfigError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    text = problem + (f" ({context})" if context and context != problem else "")
    if mark is None:
        return ConfigError(f"invalid YAML: {text}", file=file)
    return ConfigError(f"invalid YAML at column {mark.column + 1}: {text}", file=file, line=mark.line + 1)


def _check_printable(text: str, file: str) -> None:
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise ConfigError(f"invalid YAML at column {column}: control character {bad.group()!r} "
                          f"(U+{ord(bad.group()):04X}) is not allowed", file=file, line=line)


def _count_nodes(text: str, file: str) -> None:
    """A long document is first counted event by event, stopping at :data:`MAX_CONFIG_NODES`: one
    with more nodes than that, before any alias is expanded, is refused at the cost of parsing the
    limit's worth (building its node graph would cost more, per node, than the limit allows)."""
    loader = LineLoader(text)
    nodes = 0
    try:
        for event in iter(loader.get_event, None):
            if isinstance(event, yaml.NodeEvent):         # a scalar, an alias, a list or mapping starts
                nodes += 1
                if nodes > MAX_CONFIG_NODES:
                    raise ConfigError(f"the document holds more than {MAX_CONFIG_NODES:,} values (counted up to "
                                      f"here); a config may hold at most that", file=file,
                                      line=event.start_mark.line + 1)
    except yaml.YAMLError:                            # reported, with PyYAML's words, when composed
        pass
    finally:
        loader.dispose()


def _compose(text: str, file: str):
    """The document's node graph (an alias is the very node it names), or a ConfigError at the line."""
    if len(text) > _COUNT_FIRST_CHARS:
        _count_nodes(text, file)
    loader = LineLoader(text)
    try:
        return loader, loader.get_single_node()
    except yaml.YAMLError as err:
        loader.dispose()
        if _SAFE_BASE is yaml.SafeLoader or len(text) > _REPARSE_CHARS or "nesting depth" in str(err):
            raise _yaml_error(err, file) from None
        try:                                          # the same error, in PyYAML's words
            _PyLineLoader(text).get_single_node()
        except yaml.YAMLError as py_err:
            err = py_err
        except RecursionError:
            pass
        raise _yaml_error(err, file) from None
    except RecursionError:
        loader.dispose()
        raise ConfigError(f"nested too deeply; a config may nest at most {MAX_CONFIG_DEPTH} levels",
                          file=file) from None


def read_yaml(text: str, file: str) -> tuple[Any, dict[PathKey, Place], list[ConfigError]]:
    """Parse one YAML document with the safe loader, recording each node's line.

    Returns ``(data, places, problems)``; duplicate keys are problems (the later value is kept).
    A syntax error, a control character, a tag ``safe_load`` refuses, or a document past the limits
    (:data:`MAX_CONFIG_BYTES`, :data:`MAX_CONFIG_NODES` with aliases expanded, :data:`MAX_CONFIG_DEPTH`)
    raises ConfigError at once, with its line. An empty document is ``None``.
    """
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{len(text):,} characters; a config may have at most {MAX_CONFIG_BYTES:,}", file=file)
    _check_printable(text, file)
    loader, node = _compose(text, file)
    places: dict[PathKey, Place] = {}
    problems: list[ConfigError] = []
    try:
        if node is None:
            return None, places, problems
        _Size(file).check(node)
        builder = _Builder(loader, file, places, problems)
        return builder.value(node, ()), places, problems
    except yaml.YAMLError as err:
        raise _yaml_error(err, file) from None
    finally:
        loader.dispose()


def _line(node) -> int:
    return node.start_mark.line + 1


def _merged(node) -> list:
    """The mapping nodes a ``<<`` merge key in ``node`` names (before PyYAML flattens them in)."""
    found = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            found += value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
    return [n for n in found if isinstance(n, yaml.MappingNode)]


class _Size:
    """How many values a node graph expands to, each aliased node measured once: a "billion laughs"
    document is refused from its few hundred nodes, before anything is built."""

    def __init__(self, file: str) -> None:
        self.file, self.memo, self.active = file, {}, set()
        self.first_past: int | None = None            # the line of the first node found past the limit

    def check(self, node) -> None:
        if self.size(node, 0) > MAX_CONFIG_NODES:
            raise ConfigError(f"the document expands to more than {MAX_CONFIG_NODES:,} values with its "
                              f"aliases (this node already does); a config may hold at most that",
                              file=self.file, line=self.first_past)

    def size(self, node, depth: int) -> int:
        key = id(node)
        if key in self.memo:
            return self.memo[key]
        if key in self.active or not isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            return 1                                  # a scalar; a self-reference is reported when built
        if depth >= MAX_CONFIG_DEPTH:
            raise ConfigError(f"nested more than {MAX_CONFIG_DEPTH} levels deep", file=self.file, line=_line(node))
        self.active.add(key)
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            merged = _merged(node)
            if any(id(m) in self.active for m in merged):
                raise ConfigError("a << merge names a mapping that holds it", file=self.file, line=_line(node))
            children = [n for k, v in node.value if k.tag != _MERGE_TAG for n in (k, v)] + merged
        total = 1
        for child in children:
            total += self.size(child, depth + 1)
            if total > MAX_CONFIG_NODES:              # stop counting: no huge integers, no long walks
                total = MAX_CONFIG_NODES + 1
                break
        if total > MAX_CONFIG_NODES and self.first_past is None:
            self.first_past = _line(node)
        self.active.discard(key)
        self.memo[key] = total
        return total


class _Builder:
    """Builds the Python value of a node graph, recording the line of every key and value, and the
    duplicate keys and self-references as problems. An aliased node is built once and copied for each
    further use, so no two places of the tree share one mutable object (``--set`` edits one place)."""

    def __init__(self, loader, file: str, places: dict, problems: list) -> None:
        self.loader, self.file, self.places, self.problems = loader, file, places, problems
        self.built: dict[int, Any] = {}
        self.active: set[int] = set()

    def value(self, node, path: PathKey) -> Any:
        self.places.setdefault(path, Place(self.file, _line(node)))
        key = id(node)
        if key in self.active:
            self.problems.append(ConfigError("an alias refers to itself", file=self.file, line=_line(node),
                                             where=dotted(path) or None))
            return None
        if key in self.built:
            return copy.deepcopy(self.built[key])
        if not isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            result = self.loader.construct_object(node, deep=True)
        elif node.tag != _PLAIN_TAGS[type(node)]:
            result = self._tagged(node)
        else:
            self.active.add(key)
            result = self._sequence(node, path) if isinstance(node, yaml.SequenceNode) else self._mapping(node, path)
            self.active.discard(key)
        self.built[key] = result
        return result

    def _tagged(self, node) -> Any:
        """A tagged sequence or mapping: ``!!set``, ``!!omap``, ``!!pairs`` as safe_load builds them;
        any other tag (``!!python/object/new:...``) refused, as safe_load refuses it."""
        if node.tag not in self.loader.yaml_constructors:
            raise yaml.constructor.ConstructorError(
                None, None, f"could not determine a constructor for the tag {node.tag!r}", node.start_mark)
        return self.loader.construct_object(node, deep=True)

    def _sequence(self, node, path: PathKey) -> list:
        return [self.value(item, path + (i,)) for i, item in enumerate(node.value)]

    def _mapping(self, node, path: PathKey) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key, line = self.loader.construct_object(key_node, deep=True), _line(key_node)
            if not isinstance(key, Hashable):
                self.problems.append(ConfigError(f"a key must be a plain value, got {show(key)}", file=self.file,
                                                 line=line, where=dotted(path) or None))
            elif key in first_line:
                self.problems.append(ConfigError(f"duplicate key (first given at line {first_line[key]})",
                                                 file=self.file, line=line, where=dotted(path + (key,))))
            else:
                first_line[key] = line
        self.loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue
            result[key] = self.value(value_node, path + (key,))
            self.places[path + (key,)] = Place(self.file, _line(key_node))
        return result
