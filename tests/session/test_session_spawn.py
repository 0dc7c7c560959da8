"""Starting action processes on spawner threads: cancels mid-start, busy programs, forks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from openjd_runtime import ActionState, Session, SessionConfig
from openjd_runtime import process as process_module
from tests.session.sessionkit import Marks, run_script, sh

pytestmark = pytest.mark.timeout(30)


def processes_with(token: str) -> list[int]:
    """Live processes whose command line holds `token` (zombies are dead already)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(token in a for a in cmdline):
            found.append(proc.pid)
    return found


@pytest.fixture
def busy_spawners() -> Iterator[threading.Event]:
    """Every spawner thread held by a job that waits for the event, so new spawns queue."""
    release = threading.Event()
    started = [threading.Event() for _ in range(process_module.SPAWN_THREADS)]

    def hold(ready: threading.Event) -> None:
        ready.set()
        release.wait(20)

    holds = [process_module._spawner().submit(hold, ready) for ready in started]
    for ready in started:
        assert ready.wait(5), "a spawner thread never took its job"
    yield release
    release.set()
    for each in holds:
        each.result(5)


async def test_a_cancel_while_the_spawn_waits_starts_nothing(
    session: Session, marks: Marks, busy_spawners: threading.Event
) -> None:
    action = sh(f"echo started > {marks.path('started')}")
    task = asyncio.create_task(session.run_task(run_script(action), {}))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    busy_spawners.set()
    await asyncio.sleep(0.5)
    assert not marks.exists("started")


async def test_a_cancel_while_the_spawn_is_under_way_kills_what_it_started(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    seconds = f"600.{secrets.randbelow(10**8):08d}"
    entered = threading.Event()
    real_popen = process_module._popen

    def slow_popen(*args: Any) -> Any:
        entered.set()
        time.sleep(0.3)
        return real_popen(*args)

    monkeypatch.setattr(process_module, "_popen", slow_popen)
    action = {"command": "sleep", "args": [seconds]}
    task = asyncio.create_task(session.run_task(run_script(action), {}))
    while not entered.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert processes_with(seconds) == []
    await asyncio.sleep(0.6)
    assert processes_with(seconds) == [], "the process started after the cancel and lives on"


@pytest.fixture
def busy_script(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """An executable script still open for writing, as a file being written elsewhere is."""
    script = tmp_path / "busy.sh"
    script.write_text("#!/bin/sh\necho ran busy\n")
    script.chmod(0o755)
    fd = os.open(script, os.O_WRONLY | os.O_APPEND)
    yield script, fd
    with contextlib.suppress(OSError):
        os.close(fd)


async def test_a_program_busy_for_an_instant_is_started_once_it_is_free(
    session: Session, busy_script: tuple[Path, int]
) -> None:
    script, fd = busy_script
    asyncio.get_running_loop().call_later(0.01, os.close, fd)
    result = await session.run_task(run_script({"command": str(script)}), {})
    assert result.state == ActionState.SUCCESS, result


async def test_a_program_that_stays_busy_fails_the_action_with_the_reason(
    session: Session, busy_script: tuple[Path, int]
) -> None:
    script, _ = busy_script
    result = await session.run_task(run_script({"command": str(script)}), {})
    assert result.state == ActionState.FAILED
    assert result.exit_code is None
    assert result.fail_message is not None
    assert "Text file busy" in result.fail_message
    assert str(script) in result.fail_message


def test_a_forked_child_runs_actions_on_spawners_of_its_own(tmp_path: Path) -> None:
    """A child forked after the parent's spawners started has none of their threads."""

    async def one_task(name: str) -> ActionState:
        config = SessionConfig(session_id=name, session_root_directory=tmp_path)
        async with Session(config) as session:
            out = tmp_path / f"{name}.out"
            result = await session.run_task(run_script(sh(f"echo {name} > {out}")), {})
            return result.state if out.read_text() == f"{name}\n" else ActionState.FAILED

    assert asyncio.run(one_task("parent")) == ActionState.SUCCESS
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if asyncio.run(one_task("child")) == ActionState.SUCCESS else 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung starting its action")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(waited[1]) == 0
