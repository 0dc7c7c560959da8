"""What `ojd run` prints for each event of a job run, and what its progress line shows. Pure.

With one worker the lines are those of a single local session, as the reference CLI prints
them. With several workers (or a cluster) every line that belongs to a worker starts with
`[wN]`, and with the action when it has one: `[w3 Render F=12]`, `[w0 Licenses onEnter]`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..scheduling import records
from ..scheduling.local import LOCAL
from ..state import ActionResult, ActionState
from .output import (
    Progress,
    closing_lines,
    environment_banner,
    exit_code_line,
    parameter_lines,
    task_banner,
)


def _describe(result: ActionResult) -> str:
    if result.state is ActionState.TIMEOUT:
        text = "timed out"
    elif result.state is ActionState.CANCELED:
        text = "was canceled"
    else:
        text = "failed"
    return f"{text}: {result.fail_message}" if result.fail_message else text


def _with(prefix: str | None, texts: Sequence[str]) -> list[str]:
    if prefix is None:
        return list(texts)
    return [f"{prefix} {text}" if text else prefix for text in texts]


@dataclass
class Transcript:
    """Turns run events into lines, and keeps the progress line's fields up to date."""

    job_name: str
    parameter_order: Mapping[str, Sequence[str]]
    """Each step's task parameter names, in declaration order."""
    progress: Progress
    parallel: bool
    _steps: dict[int, str | None] = field(default_factory=dict, init=False)
    """The step each worker last announced."""
    _running: dict[int, records.ActionRef] = field(default_factory=dict, init=False)
    _sessions: dict[str, int] = field(default_factory=dict, init=False)
    _announced: bool = field(default=False, init=False)

    def event(self, event: records.RunEvent) -> list[str]:
        if isinstance(event, records.WorkerOutput):
            return _with(self._action_prefix(event.worker, event.action), event.lines)
        if isinstance(event, records.WorkerStatus):
            if isinstance(event.status, ActionResult):
                return self._ended(event.worker, event.action, event.status)
            if not self.parallel:
                if event.status.progress is not None:
                    self.progress.percent = event.status.progress
                if event.status.status_message is not None:
                    self.progress.status = event.status.status_message
            return []
        if isinstance(event, records.ActionStarted):
            return self._started(event.worker, event.action)
        if isinstance(event, records.SessionStarted):
            self._sessions[event.session_id] = event.worker
            self._steps[event.worker] = None
            if self.parallel:
                return _with(self._worker_prefix(event.worker), ["Session start"])
            return self._announce()
        if isinstance(event, records.RunStarted):
            self.progress.phase = f"Job '{self.job_name}'"
            return self._run_started(event.locations) if self.parallel else []
        return self._chunk_size(event)

    def finish(self, success: bool) -> list[str]:
        """The closing lines (after the opening ones, if no session ever started)."""
        opening = [] if self.parallel else self._announce()
        return opening + closing_lines(success, parallel=self.parallel)

    def log(self, session_id: str | None, texts: Sequence[str]) -> list[str]:
        """A session's own log lines, with the prefix of what its worker is doing."""
        worker = self._sessions.get(session_id or "")
        if worker is None:
            return list(texts)
        running = self._running.get(worker)
        if running is None:
            return _with(self._worker_prefix(worker), texts)
        return _with(self._action_prefix(worker, running), texts)

    def refresh(self, snapshot: records.RunProgress | None) -> None:
        """Task counts (and busy workers) from the run's own accounts."""
        if snapshot is None:
            return
        progress = self.progress
        if self.parallel:
            progress.done, progress.total = snapshot.succeeded, snapshot.total
            progress.busy, progress.workers = snapshot.busy, snapshot.workers
        elif progress.step is not None and progress.step in snapshot.steps:
            step = snapshot.steps[progress.step]
            progress.done, progress.total = step.succeeded, step.total

    def _announce(self) -> list[str]:
        """A single session's opening lines, once, as soon as the session exists."""
        if self._announced:
            return []
        self._announced = True
        return ["Session start", f"Running job '{self.job_name}'"]

    def _run_started(self, locations: Sequence[str]) -> list[str]:
        count = len(locations)
        if all(location == LOCAL for location in locations):
            where = f"{count} local workers"
        else:
            hosts = sorted(set(locations))
            where = f"{count} workers on the Dask workers {', '.join(hosts)}"
        return [f"Running job '{self.job_name}' with {where}"]

    def _started(self, worker: int, action: records.ActionRef) -> list[str]:
        self._running[worker] = action
        lines: list[str] = []
        if action.step is not None and action.step != self._steps.get(worker):
            self._steps[worker] = action.step
            lines += _with(self._worker_prefix(worker), [f"Running step '{action.step}'"])
        prefix = self._action_prefix(worker, action)
        progress = self.progress
        progress.percent = progress.status = None
        if action.task is not None:
            order = self.parameter_order.get(action.task.step, ())
            lines += _with(prefix, task_banner() + parameter_lines(action.task.parameters, order))
            if not self.parallel and progress.step != action.task.step:
                progress.phase = f"Step '{action.task.step}'"
                progress.step = action.task.step
                progress.done, progress.total = 0, None
            return lines
        verb = "Entering" if action.kind is records.ActionKind.ENTER else "Exiting"
        name = action.environment or ""
        lines += _with(prefix, environment_banner(verb, name))
        if not self.parallel:
            progress.phase = f"{verb} environment '{name}'"
            progress.step = None
        return lines

    def _ended(self, worker: int, action: records.ActionRef, result: ActionResult) -> list[str]:
        self._running.pop(worker, None)
        prefix = self._action_prefix(worker, action)
        failed = result.state is not ActionState.SUCCESS
        if action.task is not None:
            lines = [exit_code_line(result.exit_code)]
            if failed:
                lines.append(f"Task of step '{action.task.step}' {_describe(result)}")
            return _with(prefix, lines)
        if not failed:
            return []
        lines = (
            [exit_code_line(result.exit_code)] if action.kind is records.ActionKind.ENTER else []
        )
        lines.append(f"Environment '{action.environment}' {_describe(result)}")
        return _with(prefix, lines)

    def _chunk_size(self, event: records.ChunkSizeChanged) -> list[str]:
        prefix = f"[{event.step}]" if self.parallel else None
        return _with(prefix, [f"Adjusting chunk size to {event.size}"])

    def _worker_prefix(self, worker: int) -> str | None:
        return f"[w{worker}]" if self.parallel else None

    def _action_prefix(self, worker: int, action: records.ActionRef) -> str | None:
        if not self.parallel:
            return None
        if action.task is not None:
            order = self.parameter_order.get(action.task.step, ())
            parameters = action.task.parameters
            values = [f"{name}={parameters[name].value}" for name in order if name in parameters]
            return f"[w{worker} {' '.join([action.task.step, *values])}]"
        return f"[w{worker} {action.environment} {action.kind.value}]"
