"""Cancelation methods, time limits and timeouts, as the child process observes them."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from openjd_runtime import ActionResult, ActionState, Session, SessionState
from tests.session.sessionkit import (
    Marks,
    dead_or_dying,
    entered,
    env_with,
    escaping_tree,
    is_alive,
    notify_then_terminate,
    py,
    run_script,
    state,
    tree_pids,
    wait_dead,
)

pytestmark = pytest.mark.timeout(30)

# Writes its pid, then idles. On SIGTERM it records when, and what cancel_info.json held; then
# "exit" leaves at once, "work" spends a second on clean-up before marking `done`, and "ignore"
# carries on idling.
TRAPPER = """
import json
pid_path, term_path, behaviour, done_path, workdir = sys.argv[1:6]
def on_term(signum, frame):
    try:
        info = open(os.path.join(workdir, 'cancel_info.json')).read()
    except OSError as e:
        info = 'unreadable: ' + str(e)
    mark(term_path, json.dumps({'time': time.time(), 'info': info}))
    if behaviour == 'exit':
        os._exit(0)
    if behaviour == 'work':
        time.sleep(1.0)
        mark(done_path, 'finished')
signal.signal(signal.SIGTERM, on_term)
mark(pid_path, os.getpid())
while True:
    time.sleep(0.05)
"""


def trapper(marks: Marks, behaviour: str, **action: Any) -> dict[str, Any]:
    return py(
        TRAPPER,
        marks.path("pid"),
        marks.path("term"),
        behaviour,
        marks.path("done"),
        "{{Session.WorkingDirectory}}",
        **action,
    )


def term_record(marks: Marks) -> tuple[datetime, datetime]:
    """When the child saw SIGTERM, and the NotifyEnd it read from cancel_info.json."""
    record = json.loads(marks.read("term"))
    seen = datetime.fromtimestamp(record["time"], timezone.utc)
    notify_end = datetime.fromisoformat(
        json.loads(record["info"])["NotifyEnd"].replace("Z", "+00:00")
    )
    assert notify_end.utcoffset() == timedelta(0), "NotifyEnd must be a UTC time"
    return seen, notify_end


async def start_and_cancel(
    session: Session, marks: Marks, script_action: dict[str, Any], **cancel: Any
) -> tuple[ActionResult, datetime]:
    task = asyncio.create_task(session.run_task(run_script(script_action), {}))
    await marks.pid("pid")
    canceled_at = datetime.now(timezone.utc)
    session.cancel_action(**cancel)
    return await task, canceled_at


@pytest.mark.parametrize("cancelation", [None, {"mode": "TERMINATE"}])
async def test_terminate_kills_without_notice(
    session: Session, marks: Marks, cancelation: dict[str, Any] | None
) -> None:
    action = trapper(marks, "exit", **({"cancelation": cancelation} if cancelation else {}))
    result, _ = await start_and_cancel(session, marks, action)

    assert result.state == ActionState.CANCELED
    assert result.exit_code is None
    assert not marks.exists("term")
    assert not is_alive(int(marks.read("pid")))
    assert state(session) == SessionState.READY_ENDING


async def test_notify_then_terminate_notifies_honours_the_period_then_kills(
    session: Session, marks: Marks
) -> None:
    action = trapper(marks, "work", cancelation=notify_then_terminate(2))
    task = asyncio.create_task(session.run_task(run_script(action), {}))
    pid = await marks.pid("pid")
    canceled_at = datetime.now(timezone.utc)
    session.cancel_action()
    assert state(session) == SessionState.CANCELING

    await marks.wait("term")
    assert is_alive(pid)
    result = await task

    assert result.state == ActionState.CANCELED
    assert result.exit_code is None
    assert marks.read("done") == "finished"
    assert not is_alive(pid)
    _, notify_end = term_record(marks)
    assert canceled_at - timedelta(seconds=1) <= notify_end <= canceled_at + timedelta(seconds=4)
    assert (session.working_directory / "cancel_info.json").exists()
    assert state(session) == SessionState.READY_ENDING


async def test_child_leaving_on_sigterm_ends_the_action_early(
    session: Session, marks: Marks
) -> None:
    action = trapper(marks, "exit", cancelation=notify_then_terminate(60))
    result, _ = await start_and_cancel(session, marks, action)

    assert result.state == ActionState.CANCELED
    assert marks.exists("term")


async def test_time_limit_shortens_the_notify_period(session: Session, marks: Marks) -> None:
    action = trapper(marks, "ignore", cancelation=notify_then_terminate(60))
    result, canceled_at = await start_and_cancel(
        session, marks, action, time_limit=timedelta(seconds=1)
    )

    assert result.state == ActionState.CANCELED
    assert not is_alive(int(marks.read("pid")))
    _, notify_end = term_record(marks)
    assert notify_end <= canceled_at + timedelta(seconds=3)


async def test_default_notify_period_of_a_task_is_120_seconds(
    session: Session, marks: Marks
) -> None:
    result, _ = await start_and_cancel(
        session, marks, trapper(marks, "exit", cancelation=notify_then_terminate())
    )
    assert result.state == ActionState.CANCELED
    seen, notify_end = term_record(marks)
    assert timedelta(seconds=110) <= notify_end - seen <= timedelta(seconds=122)


async def test_default_notify_period_of_an_environment_action_is_30_seconds(
    session: Session, marks: Marks
) -> None:
    env = env_with("E", trapper(marks, "exit", cancelation=notify_then_terminate()))
    task = asyncio.create_task(session.enter_environment(env, identifier="E"))
    await marks.pid("pid")
    session.cancel_action()
    result = await task

    assert result.state == ActionState.CANCELED
    seen, notify_end = term_record(marks)
    assert timedelta(seconds=20) <= notify_end - seen <= timedelta(seconds=32)


async def test_mark_action_failed(session: Session, marks: Marks) -> None:
    result, _ = await start_and_cancel(
        session, marks, trapper(marks, "ignore"), mark_action_failed=True
    )
    assert result.state == ActionState.FAILED
    assert not is_alive(int(marks.read("pid")))
    assert state(session) == SessionState.READY_ENDING


async def test_cancelling_the_awaiting_task_kills_the_tree_first(
    session: Session, marks: Marks
) -> None:
    task = asyncio.create_task(session.run_task(run_script(escaping_tree(marks, stay=True)), {}))
    pids = await tree_pids(marks)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [pid for pid in pids if not dead_or_dying(pid)] == []
    assert await wait_dead(pids) == []


async def test_timeout(session: Session, marks: Marks) -> None:
    result = await session.run_task(run_script(trapper(marks, "exit", timeout=1)), {})

    assert result.state == ActionState.TIMEOUT
    assert result.exit_code is None
    assert not marks.exists("term")
    assert not is_alive(int(marks.read("pid")))
    assert state(session) == SessionState.READY_ENDING


async def test_timeout_of_an_environment_action(session: Session, marks: Marks) -> None:
    env = env_with("E", trapper(marks, "exit", timeout=1))
    result = await session.enter_environment(env, identifier="E")
    assert result.state == ActionState.TIMEOUT
    assert entered(session) == ("E",)
    assert not is_alive(int(marks.read("pid")))


async def test_timeout_with_notify_then_terminate_sends_sigterm_first(
    session: Session, marks: Marks
) -> None:
    action = trapper(marks, "ignore", timeout=1, cancelation=notify_then_terminate(1))
    result = await session.run_task(run_script(action), {})

    assert result.state == ActionState.TIMEOUT
    assert marks.exists("term")
    seen, notify_end = term_record(marks)
    assert notify_end - seen <= timedelta(seconds=3)
    assert not is_alive(int(marks.read("pid")))
