"""What `ojd run` prints for each run event, with one worker and with several (pure logic)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from openjd.model import ParameterValue, ParameterValueType

from openjd_runtime import ActionResult, ActionState, ActionStatus
from openjd_runtime.cli.output import Progress
from openjd_runtime.cli.transcript import Transcript
from openjd_runtime.scheduling import (
    ActionKind,
    ActionRef,
    ActionStarted,
    ChunkSizeChanged,
    RunEvent,
    RunProgress,
    RunStarted,
    SessionStarted,
    StepProgress,
    TaskRef,
    WorkerOutput,
    WorkerStatus,
)

RULE = "=" * 46
ORDER = {"Render": ["F", "Layer"]}
TASK = TaskRef(
    "Render",
    4,
    {
        "Layer": ParameterValue(type=ParameterValueType.STRING, value="bg"),
        "F": ParameterValue(type=ParameterValueType.INT, value="12"),
    },
)
RUN = ActionRef(ActionKind.RUN, "Render", task=TASK)
ENTER_JOB = ActionRef(ActionKind.ENTER, None, environment="Licenses")
ENTER_STEP = ActionRef(ActionKind.ENTER, "Render", environment="Cache")
EXIT_STEP = ActionRef(ActionKind.EXIT, "Render", environment="Cache")
EXIT_JOB = ActionRef(ActionKind.EXIT, None, environment="Licenses")
OK = ActionResult(state=ActionState.SUCCESS, exit_code=0)


def transcript(parallel: bool) -> Transcript:
    return Transcript("J", ORDER, Progress(), parallel=parallel)


def feed(target: Transcript, events: Sequence[RunEvent]) -> list[str]:
    return [line for event in events for line in target.event(event)]


def a_session(worker: int) -> list[RunEvent]:
    """A session that enters two environments, runs one task, and exits both."""
    return [
        SessionStarted(worker, f"s{worker}", f"/wd/{worker}"),
        ActionStarted(worker, ENTER_JOB),
        WorkerOutput(worker, ENTER_JOB, ("license ok",)),
        WorkerStatus(worker, ENTER_JOB, OK),
        ActionStarted(worker, ENTER_STEP),
        WorkerStatus(worker, ENTER_STEP, OK),
        ActionStarted(worker, RUN),
        WorkerOutput(worker, RUN, ("rendering", "")),
        WorkerStatus(worker, RUN, ActionStatus(ActionState.RUNNING, progress=50.0)),
        WorkerStatus(worker, RUN, OK),
        ChunkSizeChanged("Render", 4),
        ActionStarted(worker, EXIT_STEP),
        WorkerStatus(worker, EXIT_STEP, OK),
        ActionStarted(worker, EXIT_JOB),
        WorkerStatus(worker, EXIT_JOB, OK),
    ]


def test_one_worker_prints_a_single_sessions_lines() -> None:
    lines = feed(transcript(False), [RunStarted(("local",)), *a_session(0)])
    assert lines == [
        "Session start",
        "Running job 'J'",
        "",
        RULE,
        "--------- Entering Environment: Licenses",
        RULE,
        "license ok",
        "Running step 'Render'",
        "",
        RULE,
        "--------- Entering Environment: Cache",
        RULE,
        RULE,
        "--------- Running Task",
        RULE,
        "Parameter values:",
        "F(INT) = 12",
        "Layer(STRING) = bg",
        "rendering",
        "",
        "Process exited with code: 0",
        "Adjusting chunk size to 4",
        "",
        RULE,
        "--------- Exiting Environment: Cache",
        RULE,
        "",
        RULE,
        "--------- Exiting Environment: Licenses",
        RULE,
    ]


def test_several_workers_prefix_every_line_with_its_worker_and_action() -> None:
    lines = feed(transcript(True), [RunStarted(("local",) * 4), *a_session(3)])
    assert lines == [
        "Running job 'J' with 4 local workers",
        "[w3] Session start",
        "[w3 Licenses onEnter]",
        f"[w3 Licenses onEnter] {RULE}",
        "[w3 Licenses onEnter] --------- Entering Environment: Licenses",
        f"[w3 Licenses onEnter] {RULE}",
        "[w3 Licenses onEnter] license ok",
        "[w3] Running step 'Render'",
        "[w3 Cache onEnter]",
        f"[w3 Cache onEnter] {RULE}",
        "[w3 Cache onEnter] --------- Entering Environment: Cache",
        f"[w3 Cache onEnter] {RULE}",
        f"[w3 Render F=12 Layer=bg] {RULE}",
        "[w3 Render F=12 Layer=bg] --------- Running Task",
        f"[w3 Render F=12 Layer=bg] {RULE}",
        "[w3 Render F=12 Layer=bg] Parameter values:",
        "[w3 Render F=12 Layer=bg] F(INT) = 12",
        "[w3 Render F=12 Layer=bg] Layer(STRING) = bg",
        "[w3 Render F=12 Layer=bg] rendering",
        "[w3 Render F=12 Layer=bg]",
        "[w3 Render F=12 Layer=bg] Process exited with code: 0",
        "[Render] Adjusting chunk size to 4",
        "[w3 Cache onExit]",
        f"[w3 Cache onExit] {RULE}",
        "[w3 Cache onExit] --------- Exiting Environment: Cache",
        f"[w3 Cache onExit] {RULE}",
        "[w3 Licenses onExit]",
        f"[w3 Licenses onExit] {RULE}",
        "[w3 Licenses onExit] --------- Exiting Environment: Licenses",
        f"[w3 Licenses onExit] {RULE}",
    ]


def test_a_cluster_run_names_the_dask_workers() -> None:
    started = RunStarted(("tcp://b:1", "tcp://a:1", "tcp://b:1"))
    assert transcript(True).event(started) == [
        "Running job 'J' with 3 workers on the Dask workers tcp://a:1, tcp://b:1"
    ]


TASK_PREFIX = "[w1 Render F=12 Layer=bg]"


@pytest.mark.parametrize(
    ("action", "prefix", "result", "expected"),
    [
        (
            RUN,
            TASK_PREFIX,
            ActionResult(state=ActionState.FAILED, exit_code=7),
            ["Process exited with code: 7", "Task of step 'Render' failed"],
        ),
        (
            RUN,
            TASK_PREFIX,
            ActionResult(state=ActionState.TIMEOUT),
            ["Process exited with code: -1", "Task of step 'Render' timed out"],
        ),
        (
            RUN,
            TASK_PREFIX,
            ActionResult(state=ActionState.CANCELED, fail_message="stop"),
            ["Process exited with code: -1", "Task of step 'Render' was canceled: stop"],
        ),
        (
            ENTER_JOB,
            "[w1 Licenses onEnter]",
            ActionResult(state=ActionState.FAILED, exit_code=4, fail_message="no license"),
            ["Process exited with code: 4", "Environment 'Licenses' failed: no license"],
        ),
        (
            EXIT_STEP,
            "[w1 Cache onExit]",
            ActionResult(state=ActionState.FAILED, exit_code=1),
            ["Environment 'Cache' failed"],
        ),
        (EXIT_STEP, "[w1 Cache onExit]", OK, []),
    ],
)
def test_how_an_action_ended(
    action: ActionRef, prefix: str, result: ActionResult, expected: list[str]
) -> None:
    assert transcript(False).event(WorkerStatus(1, action, result)) == expected
    prefixed = [f"{prefix} {text}" for text in expected]
    assert transcript(True).event(WorkerStatus(1, action, result)) == prefixed


def test_a_new_session_announces_its_step_again() -> None:
    target = transcript(True)
    first = feed(target, [SessionStarted(0, "s1", "/a"), ActionStarted(0, RUN)])
    again = feed(target, [WorkerStatus(0, RUN, OK), ActionStarted(0, RUN)])
    restarted = feed(target, [SessionStarted(0, "s2", "/b"), ActionStarted(0, RUN)])
    assert "[w0] Running step 'Render'" in first
    assert "[w0] Running step 'Render'" not in again
    assert "[w0] Running step 'Render'" in restarted


def test_one_workers_progress_follows_its_phase_and_step() -> None:
    target = transcript(False)
    progress = target.progress
    target.event(RunStarted(("local",)))
    assert progress.phase == "Job 'J'"
    target.event(ActionStarted(0, ENTER_JOB))
    assert (progress.phase, progress.step) == ("Entering environment 'Licenses'", None)
    target.event(ActionStarted(0, RUN))
    target.event(WorkerStatus(0, RUN, ActionStatus(ActionState.RUNNING, progress=40.0)))
    target.event(WorkerStatus(0, RUN, ActionStatus(ActionState.RUNNING, status_message="half")))
    target.refresh(RunProgress(steps={"Render": StepProgress(3, 10)}, busy=1, workers=1))
    assert (progress.phase, progress.step, progress.done, progress.total) == (
        "Step 'Render'",
        "Render",
        3,
        10,
    )
    assert (progress.percent, progress.status, progress.workers) == (40.0, "half", None)
    target.event(ActionStarted(0, RUN))
    assert (progress.percent, progress.status) == (None, None), "a new task starts afresh"


def test_several_workers_progress_counts_all_tasks_and_busy_workers() -> None:
    target = transcript(True)
    target.event(ActionStarted(0, RUN))
    target.event(WorkerStatus(0, RUN, ActionStatus(ActionState.RUNNING, progress=40.0)))
    steps = {"A": StepProgress(2, 4), "B": StepProgress(1, 3)}
    target.refresh(RunProgress(steps=steps, busy=2, workers=3))
    progress = target.progress
    assert (progress.done, progress.total, progress.busy, progress.workers) == (3, 7, 2, 3)
    assert progress.percent is None, "one task's percentage says nothing about the run"
    target.refresh(RunProgress(steps={**steps, "C": StepProgress(0, None)}, busy=0, workers=3))
    assert (progress.done, progress.total) == (3, None)


def test_session_log_lines_carry_the_prefix_of_what_their_worker_does() -> None:
    target = transcript(True)
    target.event(SessionStarted(2, "s2", "/wd"))
    assert target.log("s2", ["Deleting x"]) == ["[w2] Deleting x"]
    target.event(ActionStarted(2, RUN))
    assert target.log("s2", ["Running command y"]) == [
        "[w2 Render F=12 Layer=bg] Running command y"
    ]
    assert target.log("other", ["z"]) == ["z"]
    assert target.log(None, ["z"]) == ["z"]
    single = transcript(False)
    single.event(SessionStarted(0, "s0", "/wd"))
    assert single.log("s0", ["Running command y"]) == ["Running command y"]


def test_the_closing_lines() -> None:
    unstarted = transcript(False)
    assert unstarted.finish(True) == [
        "Session start",
        "Running job 'J'",
        "",
        "All actions completed successfully!",
        "Local session ended.",
    ]
    started = transcript(False)
    started.event(SessionStarted(0, "s0", "/wd"))
    assert started.finish(False) == ["", "Session ended with errors.", "Local session ended."]
    assert transcript(True).finish(False) == [
        "",
        "Job run ended with errors.",
        "All sessions ended.",
    ]
