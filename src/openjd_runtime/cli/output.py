"""The text `ojd run` prints: timestamps, banners, the result, the progress line. Pure functions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from openjd.model import ParameterValue

if TYPE_CHECKING:
    from ..scheduling import JobRunResult

RULE = "=" * 46


def format_elapsed(seconds: float, *, millis: bool = True) -> str:
    """`H:MM:SS.mmm` (or `H:MM:SS`), the reference's relative timestamp."""
    total_ms = max(0, int(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{text}.{ms:03d}" if millis else text


def format_timestamp(style: str, elapsed: float, now: datetime) -> str:
    """`relative` (since the run began), `local` or `utc` (ISO 8601 with milliseconds)."""
    if style == "relative":
        return format_elapsed(elapsed)
    now = now.astimezone(timezone.utc) if style == "utc" else now.astimezone()
    text = f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}"
    return text + "Z" if style == "utc" else text


def environment_banner(verb: str, name: str) -> list[str]:
    return ["", RULE, f"--------- {verb} Environment: {name}", RULE]


def task_banner() -> list[str]:
    return [RULE, "--------- Running Task", RULE]


def parameter_lines(task: Mapping[str, ParameterValue], order: Iterable[str]) -> list[str]:
    """`Name(TYPE) = value` for each task parameter, in declaration order."""
    if not task:
        return []
    return ["Parameter values:"] + [
        f"{name}({task[name].type.value}) = {task[name].value}" for name in order if name in task
    ]


def exit_code_line(exit_code: int | None) -> str:
    return f"Process exited with code: {-1 if exit_code is None else exit_code}"


@dataclass(frozen=True)
class RunReport:
    success: bool
    job_name: str
    step_name: str | None
    duration: float
    chunks_run: int
    preserved_at: Sequence[str] = ()
    """The working directories kept by `--preserve`."""
    details: JobRunResult | None = None
    """With several workers or a cluster: per-step and per-worker counts, and the failures."""

    @property
    def message(self) -> str:
        if self.details is None:
            text = (
                "Session ended successfully"
                if self.success
                else "Session ended with errors; see Task logs for details"
            )
        elif self.success:
            text = "Job run ended successfully"
        else:
            text = "Job run ended with errors"
            if self.details.failures:
                text += "; see the failures below"
        for directory in self.preserved_at:
            text += f"\nWorking directory preserved at: {directory}"
        return text


def closing_lines(success: bool, *, parallel: bool = False) -> list[str]:
    if parallel:
        ended = "Job run ended with errors."
        last = "All sessions ended."
    else:
        ended = "Session ended with errors."
        last = "Local session ended."
    return ["", "All actions completed successfully!" if success else ended, last]


def result_block(report: RunReport) -> str:
    title = "job run" if report.details is not None else "local session"
    lines = [
        "",
        f"--- Results of {title} ---",
        "",
        report.message,
        "",
        f"Job: {report.job_name}",
    ]
    if report.step_name is not None:
        lines.append(f"Step: {report.step_name}")
    lines += [f"Duration: {report.duration:.3f} seconds", f"Chunks run: {report.chunks_run}"]
    if report.details is not None:
        lines += _details_lines(report.details)
    return "\n".join(lines) + "\n"


def _details_lines(result: JobRunResult) -> list[str]:
    lines = ["", "Steps:"]
    for step in result.steps:
        total = "?" if step.total is None else str(step.total)
        lines.append(
            f"  {step.name}: {step.outcome.value}, {step.succeeded} of {total} tasks succeeded, "
            f"{step.failed} failed, {step.canceled} canceled, "
            f"{step.seconds:.3f} seconds of task time"
        )
    lines += ["", "Workers:"]
    for worker in result.workers:
        lines.append(
            f"  w{worker.worker} ({worker.location}): {worker.tasks} tasks, "
            f"{worker.failed} failed, {worker.seconds:.3f} seconds of task time, "
            f"{worker.environments_entered} environments entered"
        )
    if result.failures:
        lines += ["", "Failures:", *(f"  {failure.message}" for failure in result.failures)]
    return lines


def _details_data(result: JobRunResult) -> dict[str, Any]:
    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "steps": [
            {
                "name": step.name,
                "outcome": step.outcome.value,
                "total": step.total,
                "succeeded": step.succeeded,
                "failed": step.failed,
                "canceled": step.canceled,
                "not_run": step.not_run,
                "seconds": round(step.seconds, 3),
                "started_at": when(step.started_at),
                "ended_at": when(step.ended_at),
            }
            for step in result.steps
        ],
        "workers": [
            {
                "worker": worker.worker,
                "location": worker.location,
                "tasks": worker.tasks,
                "failed": worker.failed,
                "seconds": round(worker.seconds, 3),
                "environments_entered": worker.environments_entered,
            }
            for worker in result.workers
        ],
        "failures": [
            {
                "worker": failure.worker,
                "step": failure.action.step if failure.action is not None else None,
                "action": failure.action.kind.value if failure.action is not None else None,
                "exit_code": failure.result.exit_code if failure.result is not None else None,
                "message": failure.message,
            }
            for failure in result.failures
        ],
    }


def result_document(report: RunReport, style: str) -> str:
    """The result as one JSON or YAML document, keys sorted."""
    data: dict[str, Any] = {
        "chunks_run": report.chunks_run,
        "duration": round(report.duration, 3),
        "job_name": report.job_name,
        "message": report.message,
        "status": "success" if report.success else "error",
        "step_name": report.step_name,
    }
    if report.details is not None:
        data.update(_details_data(report.details))
    return dump_document(data, style)


def dump_document(data: object, style: str) -> str:
    if style == "json":
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    import yaml  # type: ignore[import-untyped]

    text: str = yaml.safe_dump(data, sort_keys=True, allow_unicode=True)
    return text


@dataclass
class Progress:
    """What the live progress line shows; updated as the run moves on."""

    phase: str = ""
    step: str | None = None
    done: int = 0
    total: int | None = None
    percent: float | None = None
    status: str | None = None
    workers: int | None = None
    """With several workers: how many, and how many of them are busy."""
    busy: int = 0


def progress_line(progress: Progress, elapsed: float, width: int) -> str:
    """One terminal line, cut to `width` so it never wraps (wrapping breaks the redraw)."""
    parts = [progress.phase]
    if progress.step is not None or progress.workers is not None:
        total = "?" if progress.total is None else str(progress.total)
        parts.append(f"tasks {progress.done}/{total}")
    if progress.workers is not None:
        parts.append(f"{progress.busy}/{progress.workers} workers busy")
    if progress.percent is not None:
        parts.append(f"{progress.percent:.0f}%")
    if progress.status:
        parts.append(" ".join(progress.status.split()))
    parts.append(format_elapsed(elapsed, millis=False))
    line = " | ".join(part for part in parts if part)
    if width > 1 and len(line) >= width:
        line = line[: width - 2] + "…"
    return line
