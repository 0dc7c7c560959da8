"""Processes that escape their group (setsid, double fork) never outlive the session."""

from __future__ import annotations

import asyncio

import pytest

from openjd_runtime import ActionState, Session
from tests.session.sessionkit import (
    Marks,
    env_with,
    escaping_tree,
    is_alive,
    py,
    run_script,
    tree_pids,
    wait_dead,
)

pytestmark = pytest.mark.timeout(30)


async def test_escaped_processes_are_killed_on_cancel(session: Session, marks: Marks) -> None:
    task = asyncio.create_task(session.run_task(run_script(escaping_tree(marks, stay=True)), {}))
    pids = await tree_pids(marks)
    session.cancel_action()
    result = await task

    assert result.state == ActionState.CANCELED
    assert await wait_dead(pids) == []


async def test_escaped_processes_are_killed_on_timeout(session: Session, marks: Marks) -> None:
    result = await session.run_task(run_script(escaping_tree(marks, stay=True, timeout=3)), {})

    assert result.state == ActionState.TIMEOUT
    assert marks.exists("ready"), "the tree was not complete before the timeout"
    assert await wait_dead(await tree_pids(marks)) == []


async def test_escaped_processes_are_killed_on_cleanup(session: Session, marks: Marks) -> None:
    result = await session.run_task(run_script(escaping_tree(marks, stay=False)), {})
    assert result.state == ActionState.SUCCESS
    _, setsid_pid, daemon_pid = await tree_pids(marks)

    await session.cleanup()
    assert await wait_dead([setsid_pid, daemon_pid]) == []


async def test_escaped_processes_of_an_environment_are_killed_on_cancel(
    session: Session, marks: Marks
) -> None:
    env = env_with("E", escaping_tree(marks, stay=True))
    task = asyncio.create_task(session.enter_environment(env, identifier="E"))
    pids = await tree_pids(marks)
    session.cancel_action()
    assert (await task).state == ActionState.CANCELED
    assert await wait_dead(pids) == []


SERVICE = """
import subprocess
quiet = subprocess.DEVNULL
service = subprocess.Popen(
    [sys.executable, '-c', 'import time; time.sleep(120)'],
    stdin=quiet, stdout=quiet, stderr=quiet, start_new_session=True,
)
mark(sys.argv[1], service.pid)
say('service started')
"""


async def test_service_started_by_on_enter_outlives_the_action_not_the_session(
    session: Session, marks: Marks
) -> None:
    env = env_with("Service", py(SERVICE, marks.path("service")))
    entered = await session.enter_environment(env, identifier="S")
    assert entered.state == ActionState.SUCCESS
    service = await marks.pid("service")
    assert is_alive(service)

    ran = await session.run_task(run_script(py("say('task')")), {})
    assert ran.state == ActionState.SUCCESS
    assert is_alive(service)

    await session.exit_environment("S")
    await session.cleanup()
    assert await wait_dead([service]) == []
