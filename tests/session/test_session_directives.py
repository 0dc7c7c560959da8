"""The `openjd_*` stdout directives, their malformed forms and near misses."""

from __future__ import annotations

import pytest

from openjd_runtime import ActionState, Session, SessionState
from tests.session.sessionkit import Marks, Recorder, env_with, is_alive, py, run_script, state

# Prints the line under test (given as a Python literal, since template args cannot hold control
# characters), then idles: only a cancel by the runtime ends it within the test's timeout.
PRINT_THEN_IDLE = """
import ast
mark(sys.argv[2], os.getpid())
print(ast.literal_eval(sys.argv[1]), flush=True)
time.sleep(60)
mark(sys.argv[3], 'not canceled')
"""


async def test_progress_and_status_reach_result_and_callback(
    session: Session, recorder: Recorder
) -> None:
    code = """
    say('openjd_progress: 25')
    say('openjd_status: a quarter done')
    say('openjd_progress: 75.5')
    say('done')
    """
    result = await session.run_task(run_script(py(code)), {})

    assert result.state == ActionState.SUCCESS
    assert result.progress == 75.5
    assert result.status_message == "a quarter done"
    running = recorder.running()
    assert any(s.progress == 25.0 for s in running)
    assert any(s.progress == 75.5 for s in running)
    assert any(s.status_message == "a quarter done" for s in running)
    assert recorder.take() == [
        "openjd_progress: 25",
        "openjd_status: a quarter done",
        "openjd_progress: 75.5",
        "done",
    ]


@pytest.mark.parametrize("value", ["150", "-1", "abc", "nan", "inf"])
async def test_bad_progress_is_annotated_and_the_action_goes_on(
    session: Session, recorder: Recorder, value: str
) -> None:
    result = await session.run_task(
        run_script(py("say('openjd_progress: ' + sys.argv[1])\nsay('still running')", value)), {}
    )

    assert result.state == ActionState.SUCCESS
    assert result.progress is None
    lines = recorder.take()
    assert lines[0].startswith(f"openjd_progress: {value}")
    assert "-- ERROR" in lines[0]
    assert lines[1] == "still running"


async def test_progress_bounds_are_inclusive(session: Session) -> None:
    result = await session.run_task(
        run_script(py("say('openjd_progress: 100')\nsay('openjd_progress: 0.0')")), {}
    )
    assert result.progress == 0.0
    assert result.state == ActionState.SUCCESS


async def test_fail_directive_fails_an_action_that_exits_zero(
    session: Session, recorder: Recorder
) -> None:
    code = "say('openjd_fail: the render broke')\nsay('after the fail line')\nsys.exit(0)"
    result = await session.run_task(run_script(py(code)), {})

    assert result.state == ActionState.FAILED
    assert result.exit_code == 0
    assert result.fail_message == "the render broke"
    assert recorder.take() == ["openjd_fail: the render broke", "after the fail line"]
    assert any(s.fail_message == "the render broke" for s in recorder.running())
    assert state(session) == SessionState.READY_ENDING


@pytest.mark.parametrize(
    "line",
    [
        "openjd_progress:50",
        "openjd_status:no space",
        "openjd_foo: unknown directive",
        "openjd_environment: ready",
        "openjd_env_setup: done",
        "prefix openjd_env: X=1",
    ],
)
async def test_lines_that_are_not_directives_are_plain_text(
    session: Session, recorder: Recorder, line: str
) -> None:
    result = await session.run_task(run_script(py("say(sys.argv[1])", line)), {})

    assert result.state == ActionState.SUCCESS
    assert result.progress is None
    assert result.status_message is None
    assert recorder.take() == [line]


MALFORMED = [
    "openjd_env:X=1",
    "OPENJD_ENV: X=1",
    "Openjd_Env: X=1",
    " openjd_env: X=1",
    "\topenjd_env: X=1",
    "openjd_env X=1",
    "openjd_env: 1X=2",
    "openjd_env: NO_EQUALS",
    "openjd_env: X =1",
    'openjd_env: "X=unterminated',
    "openjd_unset_env: TWO WORDS",
    "openjd_unset_env:X",
    "OPENJD_UNSET_ENV: X",
    " openjd_unset_env: X",
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("line", MALFORMED)
async def test_malformed_env_line_cancels_on_enter_and_fails_it(
    session: Session, recorder: Recorder, marks: Marks, line: str
) -> None:
    env = env_with("E", py(PRINT_THEN_IDLE, repr(line), marks.path("pid"), marks.path("end")))
    result = await session.enter_environment(env, identifier="E")

    assert result.state == ActionState.FAILED
    assert result.fail_message
    pid = await marks.pid("pid")
    assert not is_alive(pid)
    assert not marks.exists("end")
    assert any(line in out for out in recorder.take())
    assert state(session) == SessionState.READY_ENDING


@pytest.mark.timeout(30)
async def test_malformed_env_line_fails_a_task_too(session: Session, marks: Marks) -> None:
    script = run_script(
        py(PRINT_THEN_IDLE, repr("openjd_env:X=1"), marks.path("pid"), marks.path("end"))
    )
    result = await session.run_task(script, {})

    assert result.state == ActionState.FAILED
    assert not is_alive(await marks.pid("pid"))
    assert not marks.exists("end")
