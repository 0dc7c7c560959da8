"""Jobs run by several workers on this host: real sessions, real processes, real files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from openjd_runtime import ActionState
from openjd_runtime.scheduling import (
    ActionKind,
    ActionStarted,
    JobRun,
    JobRunSpec,
    RunEvent,
    SessionStarted,
    StepOutcome,
    WorkerStatus,
    run_job,
)

from .kit import (
    NOTIFY,
    WAIT_FOR_CANCEL,
    Marks,
    barrier,
    chunked_step,
    counting_lines,
    environment,
    job,
    lines_of,
    py,
    spec,
    step,
    task,
    until,
)

FAIL_SECOND_WHEN_THREE_RUN = """
if f == "2":
    wait_until = time.time() + 30
    while count("start-A-") < 3 and time.time() < wait_until:
        time.sleep(0.02)
    sys.exit(1)
"""


async def test_a_step_starts_only_after_its_dependencies_finished(marks: Marks) -> None:
    spec_ = job(
        marks,
        step("A", 4, task("A", barrier("A-", 2))),
        step("B", 3, task("B"), depends_on=("A",)),
        step("C", 3, task("C")),
        step("D", 2, task("D"), depends_on=("B", "C")),
    )
    result = await run_job(spec_, workers=3)

    assert result.success, result.failures
    assert [(s.name, s.outcome, s.succeeded) for s in result.steps] == [
        ("A", StepOutcome.SUCCEEDED, 4),
        ("B", StepOutcome.SUCCEEDED, 3),
        ("C", StepOutcome.SUCCEEDED, 3),
        ("D", StepOutcome.SUCCEEDED, 2),
    ]

    def times(kind: str, name: str) -> list[float]:
        return [marks.number(n) for n in marks.names(f"{kind}-{name}-")]

    for later, earlier in [("B", "A"), ("D", "B"), ("D", "C")]:
        assert min(times("start", later)) >= max(times("end", earlier)), (later, earlier)
    assert marks.living() == []


async def test_environments_are_entered_once_per_worker_session_not_per_task(
    marks: Marks,
) -> None:
    record = task("A", 'mark("dir-" + me, os.environ["OPENJD_SESSION_WORKING_DIR"])')
    spec_ = job(
        marks,
        step("A", 12, record, stepEnvironments=[environment("StepA")]),
        step("B", 2, task("B"), depends_on=("A",)),
    )
    result = await run_job(spec_, workers=3)

    assert result.success, result.failures
    sessions = {marks.value(name) for name in marks.names("dir-")}
    busy = [w for w in result.workers if w.tasks]
    assert 1 <= len(busy) <= 3
    assert marks.count("enter-Job-") == len(sessions) == len(busy)
    assert marks.count("enter-StepA-") == len(sessions)
    assert marks.count("exit-Job-") == marks.count("enter-Job-")
    assert marks.count("exit-StepA-") == marks.count("enter-StepA-")
    assert sum(w.tasks for w in result.workers) == 14
    assert marks.living() == []


async def test_a_worker_exits_a_steps_environments_before_it_moves_to_another_step(
    marks: Marks,
) -> None:
    def logged(text: str, *args: str) -> dict[str, Any]:
        return py(f'log("{text}" + "".join(sys.argv[1:]))', *args)

    def env(name: str) -> dict[str, Any]:
        actions = {"onEnter": logged(f"enter {name}"), "onExit": logged(f"exit {name}")}
        return {"name": name, "script": {"actions": actions}}

    body = {
        "jobEnvironments": [env("Job")],
        "steps": [
            step(
                "A", 2, logged("A", "{{Task.Param.F}}"), stepEnvironments=[env("SA1"), env("SA2")]
            ),
            step("B", 1, logged("B", "{{Task.Param.F}}"), stepEnvironments=[env("SB")]),
        ],
    }
    result = await run_job(spec(body, marks.directory), workers=1)

    assert result.success, result.failures
    assert marks.log() == [
        "enter Job",
        "enter SA1",
        "enter SA2",
        "A1",
        "A2",
        "exit SA2",
        "exit SA1",
        "enter SB",
        "B1",
        "exit SB",
        "exit Job",
    ]


async def test_fail_fast_cancels_running_tasks_with_their_declared_method(marks: Marks) -> None:
    failing = task("A", FAIL_SECOND_WHEN_THREE_RUN + WAIT_FOR_CANCEL)
    spec_ = job(
        marks,
        step("A", 6, {**failing, "cancelation": NOTIFY}),
        step("B", 1, task("B"), depends_on=("A",)),
    )
    events: list[RunEvent] = []
    result = await run_job(spec_, workers=3, on_event=events.append)

    assert not result.success
    failure = result.failure
    assert failure is not None and failure.action is not None and failure.action.task is not None
    assert failure.action.task.step == "A"
    assert failure.action.task.parameters["F"].value == "2"
    assert "exit code 1" in failure.message
    assert len(result.failures) == 1
    assert marks.names("start-") == ["start-A-1", "start-A-2", "start-A-3"]
    assert marks.names("term-") == ["term-A-1", "term-A-3"]
    a, b = result.steps
    assert (a.outcome, a.failed, a.canceled, a.succeeded) == (StepOutcome.FAILED, 1, 2, 0)
    assert b.outcome is StepOutcome.NOT_STARTED
    assert marks.count("enter-Job-") == marks.count("exit-Job-") == 3
    statuses = [event for event in events if isinstance(event, WorkerStatus)]
    ended = [s for s in statuses if s.status.state is not ActionState.RUNNING]
    assert {s.status.state for s in ended if s.action.kind is ActionKind.RUN} == {
        ActionState.FAILED,
        ActionState.CANCELED,
    }
    assert marks.living() == []


async def test_keep_going_runs_every_task_that_does_not_depend_on_the_failure(
    marks: Marks,
) -> None:
    spec_ = job(
        marks,
        step("A", 4, task("A", 'if f == "2": sys.exit(1)')),
        step("B", 2, task("B"), depends_on=("A",)),
        step("C", 2, task("C")),
        step("D", 2, task("D"), depends_on=("C",)),
        step("E", 1, task("E"), depends_on=("B",)),
    )
    result = await run_job(spec_, workers=2, keep_going=True)

    assert not result.success
    assert [f.action.task.step for f in result.failures if f.action and f.action.task] == ["A"]
    outcomes = {s.name: (s.outcome, s.succeeded, s.failed) for s in result.steps}
    assert outcomes == {
        "A": (StepOutcome.FAILED, 3, 1),
        "B": (StepOutcome.NOT_STARTED, 0, 0),
        "C": (StepOutcome.SUCCEEDED, 2, 0),
        "D": (StepOutcome.SUCCEEDED, 2, 0),
        "E": (StepOutcome.NOT_STARTED, 0, 0),
    }
    assert marks.names("end-A-") == ["end-A-1", "end-A-3", "end-A-4"]
    assert marks.count("start-B-") == marks.count("start-E-") == 0
    assert marks.count("enter-Job-") == marks.count("exit-Job-")
    assert marks.living() == []


async def test_keep_going_skips_a_step_whose_environment_failed(marks: Marks) -> None:
    broken = {
        "name": "Broken",
        "script": {
            "actions": {
                "onEnter": py("sys.exit(4)"),
                "onExit": py('mark("exit-Broken-" + str(os.getpid()))'),
            }
        },
    }
    spec_ = job(
        marks,
        step("A", 3, task("A"), stepEnvironments=[broken]),
        step("B", 1, task("B"), depends_on=("A",)),
        step("C", 3, task("C")),
    )
    result = await run_job(spec_, workers=2, keep_going=True)

    outcomes = {s.name: s.outcome for s in result.steps}
    assert outcomes == {
        "A": StepOutcome.FAILED,
        "B": StepOutcome.NOT_STARTED,
        "C": StepOutcome.SUCCEEDED,
    }
    failure = result.failure
    assert failure is not None and failure.action is not None
    assert (failure.action.kind, failure.action.environment) == (ActionKind.ENTER, "Broken")
    assert marks.count("start-A-") == 0
    assert marks.count("exit-Broken-") >= 1
    assert marks.count("enter-Job-") == marks.count("exit-Job-")
    assert marks.living() == []


async def test_a_failed_job_environment_stops_the_run_even_with_keep_going(marks: Marks) -> None:
    broken = {
        "name": "Broken",
        "script": {
            "actions": {
                "onEnter": py('mark("enter-Broken-" + str(os.getpid())); sys.exit(4)'),
                "onExit": py('mark("exit-Broken-" + str(os.getpid()))'),
            }
        },
    }
    body = {"jobEnvironments": [broken], "steps": [step("A", 4, task("A"))]}
    result = await run_job(spec(body, marks.directory), workers=2, keep_going=True)

    assert not result.success
    failure = result.failure
    assert failure is not None and failure.action is not None
    assert (failure.action.kind, failure.action.step) == (ActionKind.ENTER, None)
    assert "failed with exit code 4" in failure.message
    assert marks.count("start-") == 0
    assert 1 <= marks.count("enter-Broken-") <= marks.count("exit-Broken-") == 2
    assert result.steps[0].outcome is StepOutcome.CANCELED


async def test_cancelling_a_parallel_run_cancels_tasks_and_exits_every_environment(
    marks: Marks,
) -> None:
    waiting = task("A", 'print("waiting", flush=True)' + WAIT_FOR_CANCEL)
    spec_ = job(
        marks,
        step("A", 6, {**waiting, "cancelation": NOTIFY}, stepEnvironments=[environment("StepA")]),
    )
    on_line, all_waiting = counting_lines("waiting", 3)
    running = asyncio.ensure_future(run_job(spec_, workers=3, on_event=on_line))
    await asyncio.wait_for(all_waiting.wait(), 30)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert marks.count("term-") == 3
    assert marks.count("end-") == 0
    assert marks.count("enter-Job-") == marks.count("exit-Job-") == 3
    assert marks.count("enter-StepA-") == marks.count("exit-StepA-") == 3
    assert len(marks.pids()) == 6
    assert marks.living() == []


async def test_a_second_cancel_kills_at_once_and_skips_the_exits(marks: Marks) -> None:
    stubborn = task(
        "A",
        """
STUBBORN = True
print("waiting", flush=True)
time.sleep(60)
""",
    )
    long_notice = {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 60}
    spec_ = job(marks, step("A", 4, {**stubborn, "cancelation": long_notice}))
    on_line, all_waiting = counting_lines("waiting", 2)
    run = JobRun(spec_, workers=2, on_event=on_line)
    running = asyncio.ensure_future(run.run())
    await asyncio.wait_for(all_waiting.wait(), 30)
    run.cancel()
    await asyncio.wait_for(until(lambda: marks.count("term-") == 2), 30)
    run.cancel()
    result = await asyncio.wait_for(running, 30)

    assert result.canceled and not result.success
    assert result.failures == ()
    assert result.steps[0].canceled == 2
    assert marks.count("enter-Job-") == 2
    assert marks.count("exit-Job-") == 0
    assert marks.living() == []


async def test_cancel_returns_a_result_once_environments_are_exited(marks: Marks) -> None:
    waiting = task("A", 'print("waiting", flush=True)' + WAIT_FOR_CANCEL)
    spec_ = job(marks, step("A", 4, {**waiting, "cancelation": NOTIFY}))
    on_line, all_waiting = counting_lines("waiting", 2)
    run = JobRun(spec_, workers=2, on_event=on_line)
    running = asyncio.ensure_future(run.run())
    await asyncio.wait_for(all_waiting.wait(), 30)
    run.cancel()
    result = await asyncio.wait_for(running, 30)

    assert result.canceled and not result.success and result.failures == ()
    assert result.steps[0].outcome is StepOutcome.CANCELED
    assert (result.steps[0].canceled, result.steps[0].not_run) == (2, 2)
    assert marks.count("exit-Job-") == 2
    assert marks.living() == []


async def test_output_lines_stay_whole_and_name_their_worker_and_task(marks: Marks) -> None:
    chatty = py(
        """
        f = sys.argv[1]
        for n in range(3):
            sys.stdout.write(f"frame {f} line {n} ")
            sys.stdout.flush()
            time.sleep(0.01)
            sys.stdout.write("end\\n")
            sys.stdout.flush()
        """,
        "{{Task.Param.F}}",
    )
    events: list[RunEvent] = []
    result = await run_job(
        job(marks, step("A", 6, chatty), env=False), workers=3, on_event=events.append
    )

    assert result.success, result.failures
    ran_on = {
        event.action.task.parameters["F"].value: event.worker
        for event in events
        if isinstance(event, WorkerStatus)
        and event.action.task is not None
        and event.status.state is ActionState.SUCCESS
    }
    lines = lines_of(events)
    assert len(lines) == 18
    for line in lines:
        assert line.action.kind is ActionKind.RUN and line.action.task is not None
        frame = line.action.task.parameters["F"].value
        assert line.text.startswith(f"frame {frame} line ") and line.text.endswith(" end")
        assert line.worker == ran_on[frame]
    by_frame = sorted(
        (line.action.task.parameters["F"].value, line.text) for line in lines if line.action.task
    )
    assert [text for _, text in by_frame[:3]] == [f"frame 1 line {n} end" for n in range(3)]


async def test_chunks_are_handed_out_once_each(marks: Marks) -> None:
    chunks = {"defaultTaskCount": 3, "rangeConstraint": "CONTIGUOUS"}
    chunked = chunked_step(
        "A", "1-10", chunks, py('mark("chunk-" + sys.argv[1])', "{{Task.Param.F}}")
    )
    body = {"extensions": ["TASK_CHUNKING"], "steps": [chunked]}
    result = await run_job(spec(body, marks.directory), workers=2)

    assert result.success, result.failures
    assert result.steps[0].total == result.steps[0].succeeded == 4
    covered: list[int] = []
    for name in marks.names("chunk-"):
        first, _, last = name.removeprefix("chunk-").partition("-")
        covered.extend(range(int(first), int(last or first) + 1))
    assert sorted(covered) == list(range(1, 11))


async def test_a_run_needs_a_worker(marks: Marks) -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        JobRun(job(marks, step("A", 1, task("A"))), workers=0)


async def test_a_worker_that_cannot_start_a_session_fails_the_run_cleanly(
    marks: Marks, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    spec_ = job(marks, step("A", 2, task("A")), session_root_directory=not_a_directory)
    events: list[RunEvent] = []
    result = await run_job(spec_, workers=2, on_event=events.append)

    assert not result.success
    assert [f.action for f in result.failures] == [None]
    failure = result.failure
    assert failure is not None
    assert failure.message.startswith(f"Worker {failure.worker} cannot start a session: ")
    assert "is not a directory" in failure.message or "File exists" in failure.message
    assert result.steps[0].outcome is StepOutcome.CANCELED
    assert marks.count("start-") == marks.count("enter-") == 0
    assert not [e for e in events if isinstance(e, (ActionStarted, SessionStarted))]


SLOW_EXIT = """
mark("exiting-" + str(os.getpid()))
signal.signal(signal.SIGTERM, lambda *_: (mark("term-exit-" + str(os.getpid())), sys.exit(0)))
wait_for("go", 30)
"""


def slow_exit_job(marks: Marks, *steps: dict[str, Any]) -> JobRunSpec:
    slow = {
        "name": "Slow",
        "script": {
            "actions": {
                "onExit": {**py(SLOW_EXIT), "cancelation": NOTIFY},
            }
        },
    }
    return spec({"jobEnvironments": [slow], "steps": list(steps)}, marks.directory)


async def test_cancelling_the_run_also_cancels_a_running_on_exit(marks: Marks) -> None:
    run = JobRun(slow_exit_job(marks, step("A", 1, task("A"))), workers=1)
    running = asyncio.ensure_future(run.run())
    await asyncio.wait_for(until(lambda: marks.count("exiting-") == 1), 30)
    run.cancel()
    result = await asyncio.wait_for(running, 30)

    assert result.canceled and not result.success and result.failures == ()
    assert marks.count("term-exit-") == 1
    assert result.steps[0].succeeded == 1


FAILS_ONCE_AN_EXIT_RUNS = """
if sys.argv[1] == "2":
    end = time.time() + 30
    while count("exiting-") < 1 and time.time() < end:
        time.sleep(0.02)
    sys.exit(1)
"""


async def test_a_failure_elsewhere_lets_a_running_on_exit_finish(marks: Marks) -> None:
    """A-1 ends at once, so its worker runs out of work and exits; A-2 fails once that onExit
    has started, and the test lets the onExit finish only after it has seen the failure."""
    fails_during_exit = py(FAILS_ONCE_AN_EXIT_RUNS, "{{Task.Param.F}}")
    spec_ = slow_exit_job(marks, step("A", 2, fails_during_exit))

    def on_event(event: RunEvent) -> None:
        if isinstance(event, WorkerStatus) and event.status.state is ActionState.FAILED:
            (marks.directory / "go").touch()

    result = await asyncio.wait_for(run_job(spec_, workers=2, on_event=on_event), 60)

    assert not result.success and len(result.failures) == 1
    assert marks.count("exiting-") == 2
    assert marks.count("term-exit-") == 0
    assert marks.living() == []
