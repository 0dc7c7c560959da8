"""Session states, transitions and the errors raised for misuse."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from openjd_runtime import (
    ActionResult,
    ActionState,
    ActionStatus,
    Session,
    SessionError,
    SessionState,
)
from openjd_runtime.errors import (
    DuplicateEnvironmentError,
    InvalidStateError,
    LifoViolationError,
    UnknownEnvironmentError,
)
from tests.session.sessionkit import (
    Marks,
    Recorder,
    SessionFactory,
    entered,
    env_with,
    py,
    run_script,
    sh,
    state,
)


def sleeper(marks: Marks) -> dict[str, object]:
    return py("mark(sys.argv[1], os.getpid())\ntime.sleep(60)", marks.path("pid"))


async def test_new_session_is_ready_with_nothing_entered(session: Session) -> None:
    assert state(session) == SessionState.READY
    assert entered(session) == ()


async def test_task_goes_running_then_back_to_ready(session: Session, recorder: Recorder) -> None:
    seen_while_printing: list[SessionState] = []
    recorder.line_hooks.append(lambda _line: seen_while_printing.append(state(session)))

    result = await session.run_task(run_script(py("say('hello')")), {})

    assert isinstance(result, ActionResult)
    assert result.state == ActionState.SUCCESS
    assert result.exit_code == 0
    assert result.fail_message is None
    assert result.started_at is not None and result.ended_at is not None
    assert result.started_at <= result.ended_at
    assert seen_while_printing == [SessionState.RUNNING]
    assert state(session) == SessionState.READY
    assert session.action_status is not None
    assert session.action_status.state == ActionState.SUCCESS
    assert recorder.statuses[0].state == ActionState.RUNNING
    assert recorder.statuses[-1].state == ActionState.SUCCESS
    assert recorder.take() == ["hello"]


async def test_callbacks_run_on_the_event_loop_thread(make_session: SessionFactory) -> None:
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    states: list[ActionState] = []

    def on_status(status: ActionStatus) -> None:
        threads.add(threading.get_ident())
        states.append(status.state)

    def on_output(_lines: Sequence[str]) -> None:
        threads.add(threading.get_ident())

    session = make_session(callback=on_status, on_output=on_output)
    result = await session.run_task(run_script(py("say('openjd_progress: 50')\nsay('x')")), {})

    assert result.state == ActionState.SUCCESS
    assert threads == {loop_thread}
    assert states[0] == ActionState.RUNNING
    assert states[-1] == ActionState.SUCCESS


async def test_full_lifecycle_ends_after_cleanup(session: Session, marks: Marks) -> None:
    env = env_with(
        "Env",
        py("mark(sys.argv[1], 'entered')", marks.path("enter")),
        py("mark(sys.argv[1], 'exited')", marks.path("exit")),
    )
    enter_result = await session.enter_environment(env, identifier="JOB - 0")
    assert enter_result.state == ActionState.SUCCESS
    assert entered(session) == ("JOB - 0",)
    assert state(session) == SessionState.READY

    ran = await session.run_task(run_script(py("say('task')")), {})
    assert ran.state == ActionState.SUCCESS
    assert state(session) == SessionState.READY

    exited = await session.exit_environment("JOB - 0")
    assert exited.state == ActionState.SUCCESS
    assert entered(session) == ()
    assert state(session) == SessionState.READY
    assert marks.read("enter") == "entered"
    assert marks.read("exit") == "exited"

    await session.cleanup()
    assert state(session) == SessionState.ENDED
    await session.cleanup()
    assert state(session) == SessionState.ENDED
    with pytest.raises(InvalidStateError):
        await session.run_task(run_script(py("pass")), {})
    with pytest.raises(InvalidStateError):
        await session.enter_environment(env, identifier="again")


async def test_context_manager_cleans_up(make_session: SessionFactory) -> None:
    async with make_session() as session:
        workdir = session.working_directory
        assert state(session) == SessionState.READY
        await session.run_task(run_script(py("pass")), {})
    assert state(session) == SessionState.ENDED
    assert not workdir.exists()


async def test_failed_task_leaves_only_exit_and_cleanup(session: Session, marks: Marks) -> None:
    env = env_with("Env", on_exit=py("mark(sys.argv[1], 'exited')", marks.path("exit")))
    await session.enter_environment(env, identifier="E")

    result = await session.run_task(run_script(py("sys.exit(3)")), {})

    assert result.state == ActionState.FAILED
    assert result.exit_code == 3
    assert state(session) == SessionState.READY_ENDING
    with pytest.raises(InvalidStateError):
        await session.run_task(run_script(py("pass")), {})
    with pytest.raises(InvalidStateError):
        await session.enter_environment(env_with("Other", py("pass")), identifier="O")
    with pytest.raises(InvalidStateError):
        session.cancel_action()

    exited = await session.exit_environment("E")
    assert exited.state == ActionState.SUCCESS
    assert marks.read("exit") == "exited"
    assert state(session) == SessionState.READY_ENDING
    with pytest.raises(InvalidStateError):
        await session.run_task(run_script(py("pass")), {})
    await session.cleanup()
    assert state(session) == SessionState.ENDED


async def test_failed_on_enter_stays_entered_and_its_on_exit_runs(
    session: Session, marks: Marks
) -> None:
    env = env_with(
        "Broken",
        py("sys.exit(1)"),
        py("mark(sys.argv[1], 'cleaned up')", marks.path("exit")),
    )
    result = await session.enter_environment(env, identifier="B")

    assert result.state == ActionState.FAILED
    assert result.exit_code == 1
    assert entered(session) == ("B",)
    assert state(session) == SessionState.READY_ENDING

    exited = await session.exit_environment("B")
    assert exited.state == ActionState.SUCCESS
    assert marks.read("exit") == "cleaned up"
    assert entered(session) == ()


async def test_environments_exit_in_lifo_order(session: Session, marks: Marks) -> None:
    order = marks.path("order")
    for name in ("A", "B"):
        env = env_with(
            name,
            on_exit=py("open(sys.argv[1], 'a').write(sys.argv[2])", order, name),
        )
        assert (await session.enter_environment(env, identifier=name)).state == (
            ActionState.SUCCESS
        )
    assert entered(session) == ("A", "B")

    with pytest.raises(LifoViolationError) as err:
        await session.exit_environment("A")
    assert isinstance(err.value, SessionError)
    assert entered(session) == ("A", "B")
    assert state(session) == SessionState.READY

    assert (await session.exit_environment("B")).state == ActionState.SUCCESS
    assert (await session.exit_environment("A")).state == ActionState.SUCCESS
    assert marks.read("order") == "BA"


async def test_duplicate_and_unknown_identifiers(session: Session) -> None:
    env = env_with("A", py("pass"))
    await session.enter_environment(env, identifier="same")

    with pytest.raises(DuplicateEnvironmentError) as dup:
        await session.enter_environment(env, identifier="same")
    assert isinstance(dup.value, SessionError)
    assert entered(session) == ("same",)

    with pytest.raises(UnknownEnvironmentError) as unknown:
        await session.exit_environment("never-entered")
    assert isinstance(unknown.value, SessionError)
    assert state(session) == SessionState.READY


async def test_environment_without_on_enter_or_on_exit_succeeds_at_once(
    session: Session, recorder: Recorder
) -> None:
    only_exit = env_with("OnlyExit", on_exit=py("say('exit ran')"))
    only_enter = env_with("OnlyEnter", py("say('enter ran')"))
    only_vars = env_with("OnlyVars", variables={"X": "1"})

    for ident, env in (("1", only_exit), ("2", only_enter), ("3", only_vars)):
        result = await session.enter_environment(env, identifier=ident)
        assert result.state == ActionState.SUCCESS
    assert recorder.take() == ["enter ran"]

    no_process = await session.exit_environment("3")
    assert no_process.state == ActionState.SUCCESS
    assert no_process.exit_code is None
    no_process = await session.exit_environment("2")
    assert no_process.state == ActionState.SUCCESS
    assert no_process.exit_code is None
    ran = await session.exit_environment("1")
    assert ran.exit_code == 0
    assert recorder.take() == ["exit ran"]


async def test_enter_without_on_enter_reports_no_exit_code(session: Session) -> None:
    result = await session.enter_environment(env_with("E", on_exit=sh("true")), identifier="E")
    assert result.state == ActionState.SUCCESS
    assert result.exit_code is None
    assert state(session) == SessionState.READY


@pytest.mark.timeout(30)
async def test_calls_while_running_are_refused(session: Session, marks: Marks) -> None:
    await session.enter_environment(env_with("E", py("pass")), identifier="E")
    task = asyncio.create_task(session.run_task(run_script(sleeper(marks)), {}))
    await marks.pid("pid")
    assert state(session) == SessionState.RUNNING
    assert session.action_status is not None
    assert session.action_status.state == ActionState.RUNNING

    with pytest.raises(InvalidStateError):
        await session.run_task(run_script(py("pass")), {})
    with pytest.raises(InvalidStateError):
        await session.enter_environment(env_with("F", py("pass")), identifier="F")
    with pytest.raises(InvalidStateError):
        await session.exit_environment("E")

    session.cancel_action()
    result = await task
    assert result.state == ActionState.CANCELED
    assert state(session) == SessionState.READY_ENDING


async def test_cancel_when_nothing_runs_is_refused(session: Session) -> None:
    with pytest.raises(InvalidStateError):
        session.cancel_action()
    await session.run_task(run_script(py("pass")), {})
    with pytest.raises(InvalidStateError):
        session.cancel_action()
