"""The package layout keeps its layers: every import in ``backprop_cli`` goes down (or stays in its own
package), never up, so the folders cannot rot into a heap again."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "backprop_cli"

#: Each top-level part of the package and its layer; a part may import parts of a lower layer and
#: itself. The library packages are independent of each other, so they sit apart at layer 0.
LAYERS = {
    "errors": -1,
    "nn": 0, "optim": 0, "data": 0,
    "config": 1,
    "engine": 2,
    "diagnostics": 3, "sweep": 3,
    "cli": 4,
    "__main__": 5,
}
TOP_LEVEL_FILES = {"__init__.py", "__main__.py", "errors.py"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` for every import of a ``backprop_cli`` module in ``path``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module:
                found.append((node.lineno, target))
            else:       # ``from .. import nn`` imports a subpackage; ``from .. import __version__`` the root
                found += [(node.lineno, f"{target}.{a.name}" if _exists(f"{target}.{a.name}") else target)
                          for a in node.names]
    return [(line, name) for line, name in found if name == "backprop_cli" or name.startswith("backprop_cli.")]


def _part(module: str) -> str | None:
    """The top-level part of ``backprop_cli`` a module belongs to (``engine`` for backprop_cli.engine.run);
    the package root, which holds only ``__version__``, counts as ``errors``' layer."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "errors"


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_only_the_entry_points_and_errors_sit_at_the_top():
    assert {p.name for p in PACKAGE.glob("*.py")} == TOP_LEVEL_FILES


def test_every_part_has_a_layer():
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    parts |= {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert parts <= set(LAYERS), parts - set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_imports_go_down(path):
    own = _part(_module_name(path)) if path.parent != PACKAGE else path.stem
    if own in (None, "__init__"):
        return                                     # the package docstring imports nothing
    wrong = []
    for line, name in _imports(path):
        other = _part(name)
        if other != own and LAYERS[other] >= LAYERS[own]:
            wrong.append(f"line {line}: {own} (layer {LAYERS[own]}) imports {name} (layer {LAYERS[other]})")
    assert not wrong, wrong


def test_the_checker_sees_an_upward_import(tmp_path):
    """The test above must be able to fail: a planted upward import is found."""
    fake = PACKAGE / "nn" / "_planted_for_test.py"
    fake.write_text("from ..engine.trainer import Trainer\n")
    try:
        assert _imports(fake) == [(1, "backprop_cli.engine.trainer")]
        with pytest.raises(AssertionError, match="nn .layer 0. imports backprop_cli.engine.trainer"):
            test_imports_go_down(fake)
    finally:
        fake.unlink()


def _readme_layout() -> dict[str, str]:
    """The README's Development listing: each part of the package (``nn``, ``errors.py``) -> its text."""
    readme = (PACKAGE.parent / "README.md").read_text()
    listing = readme[readme.index("```\nbackprop_cli/\n"):]
    listing = listing[:listing.index("\n```")]
    parts, current = {}, None
    for line in listing.splitlines()[1:]:
        if line.startswith("  ") and not line.startswith("   "):     # "  nn/   the library ..."
            current, _, text = line.strip().partition(" ")
            parts[current.rstrip("/")] = text
        elif line.startswith(" ") and current is not None:
            parts[current.rstrip("/")] += " " + line.strip()
        else:
            current = None                                           # tests/, examples/: not the package
    return parts


def test_the_readme_layout_names_every_module():
    """A module added to the package is named in the README's Development listing, under its folder."""
    parts = _readme_layout()
    missing = []
    for path in MODULES:
        if path.name in ("__init__.py", "__main__.py"):
            continue
        if path.parent == PACKAGE:
            named = path.name in parts
        else:
            named = path.name in parts.get(path.relative_to(PACKAGE).parts[0], "")
        if not named:
            missing.append(str(path.relative_to(PACKAGE)))
    assert not missing, f"not in the README's Development listing: {missing}"
