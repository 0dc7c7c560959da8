"""Fixtures for the cross-user tests: sessions whose actions run as the host's job user.

The template builders and process observers come from the Session tests' `sessionkit`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from openjd_runtime import PosixSessionUser, Session, SessionConfig
from tests.session import sessionkit
from tests.session.sessionkit import Marks, Recorder, SessionFactory

from .userkit import JOB_PYTHON, JOB_USER, SHARED_GROUP, require_user, shared_gid


@pytest.fixture(autouse=True)
def job_user(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test here needs the job user; the actions' interpreter must be one it can run."""
    if not sys.platform.startswith("linux"):
        pytest.skip("cross-user tests need Linux")
    require_user(JOB_USER)
    if not os.access(JOB_PYTHON, os.X_OK):
        pytest.fail(f"{JOB_PYTHON} is missing: run `sudo bash scripts/setup-host.sh` first.")
    monkeypatch.setattr(sessionkit, "PYTHON", JOB_PYTHON)
    yield JOB_USER


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A session root the job user can pass through (pytest's own temporary tree is private)."""
    root = Path(tempfile.mkdtemp(prefix="openjd-users-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def make_session(shared_root: Path, recorder: Recorder) -> AsyncIterator[SessionFactory]:
    """Creates cross-user Sessions wired to `recorder`; cleans them all up afterwards."""
    created: list[Session] = []

    def make(**overrides: Any) -> Session:
        config: dict[str, Any] = {
            "session_id": "users-test",
            "session_root_directory": shared_root,
            "callback": recorder.callback,
            "on_output": recorder.on_output,
            "user": PosixSessionUser(JOB_USER, SHARED_GROUP),
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
def marks(shared_root: Path) -> Iterator[Marks]:
    """Marker files the job user writes and the test reads, in a directory of the shared group."""
    directory = shared_root / "marks"
    directory.mkdir()
    os.chown(directory, -1, shared_gid())
    directory.chmod(0o770)
    found = Marks(directory)
    yield found
    found.kill_leftovers()
