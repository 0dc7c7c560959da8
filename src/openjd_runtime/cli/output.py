"""The text `ojd run` prints: timestamps, banners, the result, the progress line. Pure functions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from openjd.model import ParameterValue

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
    preserved_at: Path | None = None

    @property
    def message(self) -> str:
        text = (
            "Session ended successfully"
            if self.success
            else "Session ended with errors; see Task logs for details"
        )
        if self.preserved_at is not None:
            text += f"\nWorking directory preserved at: {self.preserved_at}"
        return text


def closing_lines(success: bool) -> list[str]:
    return [
        "",
        "All actions completed successfully!" if success else "Session ended with errors.",
        "Local session ended.",
    ]


def result_block(report: RunReport) -> str:
    lines = [
        "",
        "--- Results of local session ---",
        "",
        report.message,
        "",
        f"Job: {report.job_name}",
    ]
    if report.step_name is not None:
        lines.append(f"Step: {report.step_name}")
    lines += [f"Duration: {report.duration:.3f} seconds", f"Chunks run: {report.chunks_run}"]
    return "\n".join(lines) + "\n"


def result_document(report: RunReport, style: str) -> str:
    """The result as one JSON or YAML document, keys sorted."""
    data = {
        "chunks_run": report.chunks_run,
        "duration": round(report.duration, 3),
        "job_name": report.job_name,
        "message": report.message,
        "status": "success" if report.success else "error",
        "step_name": report.step_name,
    }
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


def progress_line(progress: Progress, elapsed: float, width: int) -> str:
    """One terminal line, cut to `width` so it never wraps (wrapping breaks the redraw)."""
    parts = [progress.phase]
    if progress.step is not None:
        total = "?" if progress.total is None else str(progress.total)
        parts.append(f"tasks {progress.done}/{total}")
    if progress.percent is not None:
        parts.append(f"{progress.percent:.0f}%")
    if progress.status:
        parts.append(" ".join(progress.status.split()))
    parts.append(format_elapsed(elapsed, millis=False))
    line = " | ".join(part for part in parts if part)
    if width > 1 and len(line) >= width:
        line = line[: width - 2] + "…"
    return line
