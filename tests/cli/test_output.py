"""The text `ojd run` prints: timestamps, banners, the result and the progress line."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from openjd.model import DocumentType, ParameterValue, ParameterValueType, document_string_to_object

from openjd_runtime import ActionResult, ActionState
from openjd_runtime.cli.output import (
    Progress,
    RunReport,
    closing_lines,
    environment_banner,
    exit_code_line,
    format_elapsed,
    format_timestamp,
    parameter_lines,
    progress_line,
    result_block,
    result_document,
    task_banner,
)
from openjd_runtime.scheduling import (
    ActionKind,
    ActionRef,
    Failure,
    JobRunResult,
    StepOutcome,
    StepReport,
    TaskRef,
    WorkerReport,
)

MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("seconds", "millis", "expected"),
    [
        (0.0, True, "0:00:00.000"),
        (1.0075, True, "0:00:01.007"),
        (3723.5, True, "1:02:03.500"),
        (36000.0, False, "10:00:00"),
        (-1.0, True, "0:00:00.000"),
    ],
)
def test_format_elapsed(seconds: float, millis: bool, expected: str) -> None:
    assert format_elapsed(seconds, millis=millis) == expected


def test_format_timestamp_styles() -> None:
    assert format_timestamp("relative", 61.25, MOMENT) == "0:01:01.250"
    assert format_timestamp("utc", 0, MOMENT) == "2024-05-06T07:08:09.123Z"
    local = MOMENT.astimezone()
    assert format_timestamp("local", 0, MOMENT) == local.strftime("%Y-%m-%dT%H:%M:%S") + ".123"
    plus_two = MOMENT.astimezone(timezone(timedelta(hours=2)))
    assert format_timestamp("utc", 0, plus_two) == "2024-05-06T07:08:09.123Z"


def test_banners() -> None:
    assert environment_banner("Entering", "Env") == [
        "",
        "=" * 46,
        "--------- Entering Environment: Env",
        "=" * 46,
    ]
    assert task_banner() == ["=" * 46, "--------- Running Task", "=" * 46]


def test_parameter_lines_follow_declaration_order() -> None:
    task = {
        "B": ParameterValue(type=ParameterValueType.STRING, value="x y"),
        "A": ParameterValue(type=ParameterValueType.INT, value="3"),
        "C": ParameterValue(type=ParameterValueType.CHUNK_INT, value="1-5"),
    }
    assert parameter_lines(task, ["A", "B", "C"]) == [
        "Parameter values:",
        "A(INT) = 3",
        "B(STRING) = x y",
        "C(CHUNK[INT]) = 1-5",
    ]
    assert parameter_lines({}, []) == []


@pytest.mark.parametrize(("code", "text"), [(0, "0"), (3, "3"), (None, "-1"), (-9, "-9")])
def test_exit_code_line(code: int | None, text: str) -> None:
    assert exit_code_line(code) == f"Process exited with code: {text}"


def test_closing_lines() -> None:
    assert closing_lines(True)[1] == "All actions completed successfully!"
    assert closing_lines(False)[1:] == ["Session ended with errors.", "Local session ended."]
    assert closing_lines(False, parallel=True)[1:] == [
        "Job run ended with errors.",
        "All sessions ended.",
    ]


def test_result_block_success_with_step_and_preserved_dir() -> None:
    report = RunReport(
        success=True,
        job_name="J",
        step_name="S",
        duration=1.23456,
        chunks_run=4,
        preserved_at=("/tmp/OpenJD/x",),
    )
    assert result_block(report) == (
        "\n--- Results of local session ---\n\nSession ended successfully\n"
        "Working directory preserved at: /tmp/OpenJD/x\n\nJob: J\nStep: S\n"
        "Duration: 1.235 seconds\nChunks run: 4\n"
    )


def test_result_block_failure_without_step() -> None:
    report = RunReport(success=False, job_name="J", step_name=None, duration=0, chunks_run=0)
    block = result_block(report)
    assert "Session ended with errors; see Task logs for details\n" in block
    assert "Step:" not in block
    assert block.endswith("Chunks run: 0\n")


TASK = TaskRef("B", 1, {"F": ParameterValue(type=ParameterValueType.INT, value="2")})
PARALLEL = JobRunResult(
    success=False,
    canceled=False,
    failures=(
        Failure(
            1,
            ActionRef(ActionKind.RUN, "B", task=TASK),
            ActionResult(state=ActionState.FAILED, exit_code=3),
            "task 1 of step 'B' (F=2) failed with exit code 3 on worker 1",
        ),
        Failure(0, None, None, "Worker 0 cannot start a session: no space"),
    ),
    steps=(
        StepReport("A", StepOutcome.SUCCEEDED, 2, 2, 0, 0, 1.5, MOMENT, MOMENT),
        StepReport("B", StepOutcome.FAILED, None, 1, 1, 1, 0.25, MOMENT, None),
    ),
    workers=(
        WorkerReport(0, "local", 3, 0, 1.625, 2),
        WorkerReport(1, "tcp://h:1", 2, 1, 0.125, 1),
    ),
    duration=2.0,
)


def test_result_block_of_a_parallel_run() -> None:
    report = RunReport(
        success=False, job_name="J", step_name=None, duration=2, chunks_run=5, details=PARALLEL
    )
    assert result_block(report) == (
        "\n--- Results of job run ---\n\n"
        "Job run ended with errors; see the failures below\n\n"
        "Job: J\nDuration: 2.000 seconds\nChunks run: 5\n"
        "\nSteps:\n"
        "  A: SUCCEEDED, 2 of 2 tasks succeeded, 0 failed, 0 canceled, "
        "1.500 seconds of task time\n"
        "  B: FAILED, 1 of ? tasks succeeded, 1 failed, 1 canceled, 0.250 seconds of task time\n"
        "\nWorkers:\n"
        "  w0 (local): 3 tasks, 0 failed, 1.625 seconds of task time, 2 environments entered\n"
        "  w1 (tcp://h:1): 2 tasks, 1 failed, 0.125 seconds of task time, "
        "1 environments entered\n"
        "\nFailures:\n"
        "  task 1 of step 'B' (F=2) failed with exit code 3 on worker 1\n"
        "  Worker 0 cannot start a session: no space\n"
    )
    canceled = RunReport(
        success=False,
        job_name="J",
        step_name=None,
        duration=2,
        chunks_run=5,
        details=JobRunResult(False, True, (), PARALLEL.steps, PARALLEL.workers, 2.0),
    )
    assert canceled.message == "Job run ended with errors"
    assert "Failures:" not in result_block(canceled)


@pytest.mark.parametrize("style", ["json", "yaml"])
def test_result_document_of_a_parallel_run(style: str) -> None:
    report = RunReport(
        success=False, job_name="J", step_name="B", duration=2, chunks_run=5, details=PARALLEL
    )
    kind = DocumentType.JSON if style == "json" else DocumentType.YAML
    data = document_string_to_object(document=result_document(report, style), document_type=kind)
    assert (data["status"], data["chunks_run"], data["step_name"]) == ("error", 5, "B")
    assert data["steps"] == [
        {
            "name": "A",
            "outcome": "SUCCEEDED",
            "total": 2,
            "succeeded": 2,
            "failed": 0,
            "canceled": 0,
            "not_run": 0,
            "seconds": 1.5,
            "started_at": MOMENT.isoformat(),
            "ended_at": MOMENT.isoformat(),
        },
        {
            "name": "B",
            "outcome": "FAILED",
            "total": None,
            "succeeded": 1,
            "failed": 1,
            "canceled": 1,
            "not_run": None,
            "seconds": 0.25,
            "started_at": MOMENT.isoformat(),
            "ended_at": None,
        },
    ]
    assert data["workers"][1] == {
        "worker": 1,
        "location": "tcp://h:1",
        "tasks": 2,
        "failed": 1,
        "seconds": 0.125,
        "environments_entered": 1,
    }
    assert data["failures"] == [
        {
            "worker": 1,
            "step": "B",
            "action": "onRun",
            "exit_code": 3,
            "message": "task 1 of step 'B' (F=2) failed with exit code 3 on worker 1",
        },
        {
            "worker": 0,
            "step": None,
            "action": None,
            "exit_code": None,
            "message": "Worker 0 cannot start a session: no space",
        },
    ]


@pytest.mark.parametrize("style", ["json", "yaml"])
def test_result_document(style: str) -> None:
    report = RunReport(success=False, job_name="J", step_name=None, duration=2.5, chunks_run=0)
    text = result_document(report, style)
    kind = DocumentType.JSON if style == "json" else DocumentType.YAML
    data = document_string_to_object(document=text, document_type=kind)
    assert data == {
        "chunks_run": 0,
        "duration": 2.5,
        "job_name": "J",
        "message": "Session ended with errors; see Task logs for details",
        "status": "error",
        "step_name": None,
    }
    keys = [line.split(":")[0].strip(' "') for line in text.splitlines() if ":" in line]
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    ("progress", "elapsed", "expected"),
    [
        (Progress(phase="Job 'J'"), 5, "Job 'J' | 0:00:05"),
        (
            Progress(phase="Step 'R'", step="R", done=2, total=10, percent=45.4, status="frame 3"),
            65,
            "Step 'R' | tasks 2/10 | 45% | frame 3 | 0:01:05",
        ),
        (Progress(phase="Step 'R'", step="R", done=1), 0, "Step 'R' | tasks 1/? | 0:00:00"),
        (Progress(phase="P", status="a\n b\tc"), 0, "P | a b c | 0:00:00"),
        (
            Progress(phase="Job 'J'", done=3, total=7, workers=4, busy=2),
            5,
            "Job 'J' | tasks 3/7 | 2/4 workers busy | 0:00:05",
        ),
    ],
)
def test_progress_line(progress: Progress, elapsed: float, expected: str) -> None:
    assert progress_line(progress, elapsed, 200) == expected


def test_progress_line_never_wraps() -> None:
    line = progress_line(Progress(phase="x" * 100), 0, 40)
    assert len(line) < 40
    assert line.endswith("…")
