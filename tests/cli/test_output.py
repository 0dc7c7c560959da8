"""The text `ojd run` prints: timestamps, banners, the result and the progress line."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from openjd.model import DocumentType, ParameterValue, ParameterValueType, document_string_to_object

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


def test_result_block_success_with_step_and_preserved_dir() -> None:
    report = RunReport(
        success=True,
        job_name="J",
        step_name="S",
        duration=1.23456,
        chunks_run=4,
        preserved_at=Path("/tmp/OpenJD/x"),
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
    ],
)
def test_progress_line(progress: Progress, elapsed: float, expected: str) -> None:
    assert progress_line(progress, elapsed, 200) == expected


def test_progress_line_never_wraps() -> None:
    line = progress_line(Progress(phase="x" * 100), 0, 40)
    assert len(line) < 40
    assert line.endswith("…")
