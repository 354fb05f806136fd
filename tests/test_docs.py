"""docs/writing-a-module.md runs: its files are the shipped ones, its Python blocks execute and print
what the page shows, and its shell blocks exit as the page says with the output it quotes.

Conventions of the page, read here: a block after ``<!-- file: PATH -->`` is the content of PATH; a
``text`` block right after a ``python`` block is that block's exact output; a ``text`` block right
after a ``sh`` block holds lines its commands print (each must appear); ``# exits N`` ends a command
that must exit with N (0 otherwise).
"""

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backprop_cli.cli.app import app
from common import ROOT

TUTORIAL = ROOT / "docs" / "writing-a-module.md"
BLOCK = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)


def blocks(path: Path) -> list[dict]:
    return [m.groupdict() for m in BLOCK.finditer(path.read_text())]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A copy of examples/ and the digits, as the current directory; examples/ importable."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "data" / "digits", tmp_path / "data" / "digits")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "examples"))
    yield tmp_path
    sys.modules.pop("my_layers", None)


def squeeze(text: str) -> str:
    return " ".join(text.split())


def run_shell(block: str) -> list[tuple[str, int, str]]:
    """Each command of a ``sh`` block: ``backprop`` through typer's runner, anything else by bash."""
    ran = []
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command, _, comment = line.partition("    # ")
        expected = int(re.search(r"exits (\d+)", comment).group(1)) if "exits" in comment else 0
        if command.startswith("backprop "):
            result = CliRunner().invoke(app, shlex.split(command)[1:])
            code, output = result.exit_code, result.output
        else:
            done = subprocess.run(command, shell=True, capture_output=True, text=True, executable="/bin/bash")
            code, output = done.returncode, done.stdout + done.stderr
        assert code == expected, f"{command!r} exited {code}, expected {expected}:\n{output}"
        ran.append((command, code, output))
    return ran


def test_the_tutorial_files_are_the_shipped_ones():
    files = [b for b in blocks(TUTORIAL) if b["file"]]
    assert {b["file"] for b in files} == {"examples/my_layers.py", "examples/my_layers.yaml"}
    for b in files:
        assert b["body"] == (ROOT / b["file"]).read_text(), f"{b['file']} differs from the tutorial's copy"


def test_the_tutorial_runs_and_prints_what_it_shows(sandbox):
    namespace: dict = {}
    found = blocks(TUTORIAL)
    ran = {"python": 0, "sh": 0}
    for i, b in enumerate(found):
        after = found[i + 1] if i + 1 < len(found) and found[i + 1]["lang"] == "text" else None
        if b["file"] or b["lang"] not in ran:
            continue
        ran[b["lang"]] += 1
        if b["lang"] == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(b["body"], f"{TUTORIAL.name} block {i}", "exec"), namespace)
            if after is not None:
                assert out.getvalue() == after["body"], f"block {i} printed:\n{out.getvalue()}"
        else:
            output = "\n".join(text for _, _, text in run_shell(b["body"]))
            for line in (after["body"].splitlines() if after else []):
                assert squeeze(line) in squeeze(output), f"block {i} did not print {line!r}:\n{output}"
    assert ran == {"python": 2, "sh": 2}
    assert (sandbox / "runs" / "my_layers" / "gradients.csv").exists()
