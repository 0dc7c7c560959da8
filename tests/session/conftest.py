"""Fixtures for the Session tests: a recorder of callbacks, a session factory, marker files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from openjd_runtime import Session, SessionConfig
from tests.session.sessionkit import Marks, Recorder, SessionFactory


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def session_root(tmp_path: Path) -> Path:
    root = tmp_path / "sessions"
    root.mkdir()
    return root


@pytest.fixture
async def make_session(session_root: Path, recorder: Recorder) -> AsyncIterator[SessionFactory]:
    """Creates Sessions wired to `recorder` under `session_root`; cleans them all up afterwards."""
    created: list[Session] = []

    def make(**overrides: Any) -> Session:
        config: dict[str, Any] = {
            "session_id": "test-session",
            "session_root_directory": session_root,
            "callback": recorder.callback,
            "on_output": recorder.on_output,
        }
        config.update(overrides)
        new = Session(SessionConfig(**config))
        created.append(new)
        return new

    yield make
    for each in created:
        await each.cleanup()


@pytest.fixture
async def session(make_session: SessionFactory) -> Session:
    return make_session()


@pytest.fixture
def marks(tmp_path: Path) -> Iterator[Marks]:
    directory = tmp_path / "marks"
    directory.mkdir()
    found = Marks(directory)
    yield found
    found.kill_leftovers()
