"""User code that a config names: ``plugins: [my_layers.py, mypackage.layers]``.

This is the one place where backprop runs code the user wrote, and only code a config names under
``plugins:``: never anything found in data files or checkpoints (a checkpoint records the plugins of
its config as paths and names; eval and predict import them from there, and say so when one is gone).

An entry is a Python file (a name ending in ``.py`` or holding a ``/``), relative to the config's
directory, or the dotted name of an importable module. Every public class *defined* in it (not
imported into it) that subclasses :class:`~backprop_cli.nn.Module` becomes a layer usable in
``model:`` by its class name, and every :class:`~backprop_cli.nn.Criterion` subclass a loss usable
in ``criterion:``. What the user got wrong is reported once per plugin, placed at its entry
(``configs/x.yaml:3: plugins.0: ...``): a missing file, an exception raised on import (with the
plugin's line), a class named like a built-in layer or loss, or a plugin with nothing backprop can use.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .source import PathKey
from ..nn import CRITERIONS, MODULES, Criterion, Module


@dataclass(frozen=True)
class Registry:
    """The names a config may use: the built-in layers and losses and those its plugins define.

    ``origin`` maps each plugin class name to the plugin that defined it; ``not_modules`` the classes a
    plugin defined that are neither a Module nor a Criterion (so that using one says why it cannot be).
    """

    modules: Mapping[str, type] = field(default_factory=lambda: MODULES)
    criterions: Mapping[str, type] = field(default_factory=lambda: CRITERIONS)
    origin: Mapping[str, str] = field(default_factory=dict)
    not_modules: Mapping[str, str] = field(default_factory=dict)
    #: A plugin failed to load: an unknown name is then most likely its, and not reported twice.
    incomplete: bool = False

    def why_not(self, name: Any, kind: str) -> str | None:
        """For a name the registry lacks: why a plugin's class of that name cannot be a ``kind``."""
        if not isinstance(name, str):
            return None
        base = "Module" if kind == "layer" else "Criterion"
        if name in self.not_modules:
            return (f"{name} (defined in {self.not_modules[name]}) is not a {base}: "
                    f"write class {name}(nn.{base}), with nn from backprop_cli")
        other = self.criterions if kind == "layer" else self.modules
        if name in self.origin and name in other:
            return f"{name} (defined in {self.origin[name]}) is a {'Criterion' if kind == 'layer' else 'Module'}, not a {base}"
        return None


BUILTIN = Registry()

#: The file of every plugin imported in this process -> how to name it in a message (the entry as
#: written for a file, the module's path for a module name); :func:`plugin_frame` reads it.
_LOADED: dict[str, str] = {}


class PluginError(Exception):
    """One entry of ``plugins:`` that cannot be used; the message says why, naming the plugin."""


def is_file_entry(entry: str) -> bool:
    """A file path (``my_layers.py``, ``lib/layers.py``) rather than a module name (``mypkg.layers``)."""
    return entry.endswith(".py") or "/" in entry or "\\" in entry


def resolve(entry: str, base_dir: Path) -> str:
    """A file entry as an absolute path (relative ones against ``base_dir``); a module name as is."""
    if not is_file_entry(entry):
        return entry
    path = Path(entry).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def load_plugins(entries: Any, base_dir: Path) -> tuple[Registry, list[tuple[PathKey, str]]]:
    """Import every plugin in ``entries`` (the raw ``plugins:`` value) and build the registry.

    Returns the registry and the problems found, as ``(path, message)`` pairs placed at the entry
    (``("plugins", 0)``). Entries that are not strings are left to the schema to report.
    """
    if not isinstance(entries, list) or not entries:
        return BUILTIN, []
    modules, criterions = dict(MODULES), dict(CRITERIONS)
    origin: dict[str, str] = {}
    not_modules: dict[str, str] = {}
    problems: list[tuple[PathKey, str]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry.strip():
            continue
        try:
            module = _import(entry, base_dir)
            found = _classes(module, entry)
            _register(found, entry, modules, criterions, origin)
        except PluginError as err:
            problems.append((("plugins", i), str(err)))
            continue
        not_modules.update({name: entry for name in found.others})
    return Registry(modules, criterions, origin, not_modules, bool(problems)), problems


# ----------------------------------------------------------------------------- importing
def _import(entry: str, base_dir: Path) -> ModuleType:
    if is_file_entry(entry):
        module = _import_file(entry, Path(resolve(entry, base_dir)))
        _LOADED[str(Path(module.__file__))] = entry
        return module
    try:
        module = importlib.import_module(entry)
        if getattr(module, "__file__", None):
            _LOADED[str(Path(module.__file__))] = module.__file__
        return module
    except ModuleNotFoundError as err:
        if err.name is not None and (entry == err.name or entry.startswith(err.name + ".")):
            raise PluginError(f"no module named {entry!r} (a plugin is a .py file, relative to the config, "
                              "or the name of an importable module)") from None
        raise PluginError(_raised(entry, err, None)) from None
    except Exception as err:       # anything the user's code raises is theirs to fix
        raise PluginError(_raised(entry, err, None)) from None


def _import_file(entry: str, path: Path) -> ModuleType:
    """Execute the file as a fresh module named after its path (so two files called ``layers.py``
    stay apart); the module is registered in ``sys.modules`` while it runs, as ``import`` would."""
    if path.is_dir():
        raise PluginError(f"{entry} is a directory, expected a Python file")
    if not path.is_file():
        shown = entry if entry == str(path) else f"{entry} (looked for {path})"
        raise PluginError(f"no such plugin file: {shown}")
    stem = re.sub(r"\W", "_", path.stem)
    name = f"backprop_plugins.{stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:
        del sys.modules[name]
        raise PluginError(_raised(entry, err, path)) from None
    return module


def _raised(entry: str, err: BaseException, path: Path | None) -> str:
    """``my_layers.py raised NameError on import (line 7): name 'np' is not defined``."""
    line = None
    if isinstance(err, SyntaxError):
        line, text = err.lineno, err.msg
    else:
        frames = traceback.extract_tb(err.__traceback__)
        mine = [f for f in frames if (Path(f.filename) == path if path is not None
                                      else not f.filename.startswith("<"))]
        line = mine[-1].lineno if mine else None
        text = str(err)
        if path is None and mine:
            entry = f"{entry} ({mine[-1].filename})"
    where = f" (line {line})" if line is not None else ""
    return f"{entry} raised {type(err).__name__} on import{where}: {text}".rstrip(": ")


def plugin_frame(err: BaseException) -> str | None:
    """Where in a plugin an exception was raised (``my_layers.py:31 in update_grad_input``): the
    deepest frame of its traceback, or of its causes', in a plugin file; None when no plugin is in it.
    A plugin's exception is its author's mistake, and the CLI reports it as one line saying where."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename in _LOADED]
        if frames:
            return f"{_LOADED[frames[-1].filename]}:{frames[-1].lineno} in {frames[-1].name}"
        err = err.__cause__ or err.__context__
    return None


# ----------------------------------------------------------------------------- what a plugin defines
@dataclass
class _Found:
    modules: dict[str, type]
    criterions: dict[str, type]
    others: list[str]


def _classes(module: ModuleType, entry: str) -> _Found:
    """The public classes defined in ``module`` itself, sorted into Modules, Criterions and others."""
    found = _Found({}, {}, [])
    for name, obj in vars(module).items():
        if not inspect.isclass(obj) or obj.__module__ != module.__name__ or name.startswith("_"):
            continue
        if issubclass(obj, Module):
            found.modules[name] = obj
        elif issubclass(obj, Criterion):
            found.criterions[name] = obj
        else:
            found.others.append(name)
    if not found.modules and not found.criterions:
        hint = (f"; {', '.join(found.others)} {'is' if len(found.others) == 1 else 'are'} not a subclass of "
                "backprop_cli.nn.Module or Criterion" if found.others else "")
        raise PluginError(f"{entry} defines no Module or Criterion subclass{hint}")
    return found


def _register(found: _Found, entry: str, modules: dict, criterions: dict, origin: dict) -> None:
    """Add the plugin's classes to the registries, refusing a name already taken."""
    clashes = []
    for name in [*found.modules, *found.criterions]:
        if name in MODULES or name in CRITERIONS:
            kind = "layer" if name in MODULES else "loss"
            clashes.append(f"{name} (the name of a built-in {kind})")
        elif name in origin:
            clashes.append(f"{name} (also defined in {origin[name]})")
    if clashes:
        raise PluginError(f"{entry} defines {', '.join(clashes)}; rename the class")
    modules.update(found.modules)
    criterions.update(found.criterions)
    origin.update({name: entry for name in [*found.modules, *found.criterions]})
