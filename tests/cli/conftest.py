"""Fixtures for the `ojd` tests: a runner in a temporary directory and a file writer."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from .ojdkit import Result, run_ojd


@pytest.fixture
def ojd(tmp_path: Path) -> Callable[..., Result]:
    """Runs `ojd ARGS...` in the test's temporary directory."""

    def call(*args: str | Path) -> Result:
        return run_ojd(*args, cwd=tmp_path)

    return call


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Writes a (dedented) file into the test's temporary directory."""

    def call(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return call
