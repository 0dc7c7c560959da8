"""A marks directory for each test; processes a failed test left behind are killed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .kit import Marks


@pytest.fixture
def marks(tmp_path: Path) -> Iterator[Marks]:
    directory = tmp_path / "marks"
    directory.mkdir()
    found = Marks(directory)
    yield found
    found.kill_leftovers()


@pytest.fixture
def session_root(tmp_path: Path) -> Path:
    root = tmp_path / "sessions"
    root.mkdir()
    return root
