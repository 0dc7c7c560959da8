"""Runtime effects of the template extensions: TASK_CHUNKING, FEATURE_BUNDLE_1, WRAP_ACTIONS."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from openjd_runtime import ActionState, Session
from openjd_runtime.errors import MultipleWrapEnvironmentsError
from tests.session.sessionkit import (
    Marks,
    Recorder,
    SessionFactory,
    build_job,
    entered,
    env_with,
    environment,
    is_alive,
    py,
    revision,
    run_script,
)

WRAP_EXTENSIONS = ("EXPR", "WRAP_ACTIONS")

# Prints what it wraps as `<tag> <json argv>`, then runs it.
WRAPPER = """
import json, subprocess
say(sys.argv[1], json.dumps(sys.argv[2:]))
sys.exit(subprocess.call(sys.argv[2:]))
"""


async def test_chunk_values_stay_range_expressions(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    step = {
        "name": "Chunked",
        "parameterSpace": {
            "taskParameterDefinitions": [
                {
                    "name": "Frames",
                    "type": "CHUNK[INT]",
                    "range": "1-10",
                    "chunks": {"defaultTaskCount": 3, "rangeConstraint": "CONTIGUOUS"},
                }
            ]
        },
        "script": {
            "actions": {
                "onRun": py(
                    "say(*sys.argv[1:])", "{{Task.Param.Frames}}", "{{Task.RawParam.Frames}}"
                )
            }
        },
    }
    built = build_job({"steps": [step]}, extensions=["TASK_CHUNKING"])
    session = make_session(revision_extensions=revision("TASK_CHUNKING"))
    for task in built.tasks()[:2]:
        result = await session.run_task(built.script(), task, step_name="Chunked")
        assert result.state == ActionState.SUCCESS, result
    assert recorder.take() == ["1-3 1-3", "4-5 4-5"]


@pytest.mark.timeout(30)
async def test_format_string_timeout_and_notify_period(
    make_session: SessionFactory, marks: Marks
) -> None:
    code = """
    import json
    def on_term(signum, frame):
        info = open(os.path.join(os.environ['OPENJD_SESSION_WORKING_DIR'], 'cancel_info.json'))
        mark(sys.argv[2], json.dumps({'time': time.time(), 'info': info.read()}))
        os._exit(0)
    signal.signal(signal.SIGTERM, on_term)
    mark(sys.argv[1], os.getpid())
    time.sleep(60)
    """
    action = py(
        code,
        marks.path("pid"),
        marks.path("term"),
        timeout="{{Param.Limit}}",
        cancelation={"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": "{{Param.Grace}}"},
    )
    built = build_job(
        {
            "parameterDefinitions": [
                {"name": "Limit", "type": "INT", "default": 1},
                {"name": "Grace", "type": "INT", "default": 7},
            ],
            "steps": [{"name": "S", "script": {"actions": {"onRun": action}}}],
        },
        extensions=["FEATURE_BUNDLE_1"],
    )
    session = make_session(
        job_parameter_values=built.parameter_values,
        revision_extensions=revision("FEATURE_BUNDLE_1"),
    )
    result = await session.run_task(built.script(), {})

    assert result.state == ActionState.TIMEOUT
    assert not is_alive(await marks.pid("pid"))
    record = json.loads(marks.read("term"))
    seen = datetime.fromtimestamp(record["time"], timezone.utc)
    end = datetime.fromisoformat(json.loads(record["info"])["NotifyEnd"].replace("Z", "+00:00"))
    assert timedelta(seconds=5) <= end - seen <= timedelta(seconds=9)


def wrapper_env(name: str = "Wrapper") -> Any:
    return environment(
        {
            "name": name,
            "script": {
                "actions": {
                    "onWrapEnvEnter": py(
                        WRAPPER,
                        "WRAP-ENTER:{{WrappedEnv.Name}}",
                        "{{WrappedAction.Command}}",
                        "{{WrappedAction.Args}}",
                    ),
                    "onWrapTaskRun": py(
                        WRAPPER,
                        "WRAP-TASK:{{WrappedStep.Name}}",
                        "{{WrappedAction.Command}}",
                        "{{WrappedAction.Args}}",
                    ),
                    "onWrapEnvExit": py(
                        WRAPPER,
                        "WRAP-EXIT:{{WrappedEnv.Name}}",
                        "{{WrappedAction.Command}}",
                        "{{WrappedAction.Args}}",
                    ),
                }
            },
        },
        extensions=WRAP_EXTENSIONS,
    )


def wrap_session(make_session: SessionFactory) -> Session:
    return make_session(revision_extensions=revision(*WRAP_EXTENSIONS))


async def test_wrap_task_run_wraps_the_task(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = wrap_session(make_session)
    assert (await session.enter_environment(wrapper_env(), identifier="W")).state == (
        ActionState.SUCCESS
    )
    task = run_script(
        {"command": "/bin/echo", "args": ["inner", "task ran"]}, extensions=WRAP_EXTENSIONS
    )
    result = await session.run_task(task, {}, step_name="Render")

    assert result.state == ActionState.SUCCESS, result
    assert recorder.take() == [
        "WRAP-TASK:Render " + json.dumps(["/bin/echo", "inner", "task ran"]),
        "inner task ran",
    ]


async def test_environments_entered_after_the_wrapper_are_wrapped(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = wrap_session(make_session)
    await session.enter_environment(wrapper_env(), identifier="W")
    inner = env_with(
        "Inner",
        {"command": "/bin/echo", "args": ["inner enter"]},
        {"command": "/bin/echo", "args": ["inner exit"]},
        extensions=WRAP_EXTENSIONS,
    )
    assert (await session.enter_environment(inner, identifier="I")).state == ActionState.SUCCESS
    assert (await session.exit_environment("I")).state == ActionState.SUCCESS

    assert recorder.take() == [
        "WRAP-ENTER:Inner " + json.dumps(["/bin/echo", "inner enter"]),
        "inner enter",
        "WRAP-EXIT:Inner " + json.dumps(["/bin/echo", "inner exit"]),
        "inner exit",
    ]


async def test_the_wrapper_itself_is_not_wrapped(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = wrap_session(make_session)
    await session.enter_environment(wrapper_env(), identifier="W")
    assert (await session.exit_environment("W")).state == ActionState.SUCCESS
    task = run_script({"command": "/bin/echo", "args": ["plain"]}, extensions=WRAP_EXTENSIONS)
    await session.run_task(task, {}, step_name="Render")
    assert recorder.take() == ["plain"]


async def test_a_second_wrapping_environment_is_refused(make_session: SessionFactory) -> None:
    session = wrap_session(make_session)
    await session.enter_environment(wrapper_env("First"), identifier="W1")

    with pytest.raises(MultipleWrapEnvironmentsError):
        await session.enter_environment(wrapper_env("Second"), identifier="W2")
    assert entered(session) == ("W1",)
