"""Shared fixtures."""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def iris_dir(tmp_path, monkeypatch):
    """A temp directory holding a copy of data/iris.csv, made the current directory for the test."""
    shutil.copy(ROOT / "data" / "iris.csv", tmp_path / "iris.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path
