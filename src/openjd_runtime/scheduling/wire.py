"""Worker events and coordinator replies as plain lists, dicts and strings.

Dask queues carry msgpack data only, and hand lists back as tuples; the decoders take either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from openjd.model import ParameterValue, ParameterValueType

from ..state import ActionResult, ActionState, ActionStatus
from . import records
from .events import SessionFailed, TaskDropped, WorkerEvent

OPENED = "opened"
BROKEN = "broken"
STARTED = "started"
OUTPUT = "output"
PROGRESS = "progress"
ENDED = "ended"
DROPPED = "dropped"
NEXT = "next"
"""Worker to coordinator: the worker is idle and asks for a task, naming its current step."""
FINISHED = "finished"
"""Worker to coordinator: the worker has exited its environments and ended; its last message.
The coordinator answers with it too, its own last message: goodbye."""
TASK = "task"
"""Coordinator to worker: the reply to NEXT, a task or None."""
STOP = "stop"
CANCEL = "cancel"
ABORT = "abort"
PING = "ping"
"""Either way, after a quiet while: the sender is still there."""

Message = list[Any]


def encode_task(task: records.TaskRef) -> Message:
    values = {name: [value.type.value, value.value] for name, value in task.parameters.items()}
    return [task.step, task.index, values]


def decode_task(data: Sequence[Any]) -> records.TaskRef:
    step, index, values = data
    parameters = {
        name: ParameterValue(type=ParameterValueType(kind), value=value)
        for name, (kind, value) in values.items()
    }
    return records.TaskRef(step, index, parameters)


def encode_action(action: records.ActionRef) -> Message:
    task = encode_task(action.task) if action.task is not None else None
    return [action.kind.value, action.step, action.environment, task]


def decode_action(data: Sequence[Any]) -> records.ActionRef:
    kind, step, environment, task = data
    return records.ActionRef(
        records.ActionKind(kind), step, environment, decode_task(task) if task is not None else None
    )


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def encode_status(status: ActionStatus) -> dict[str, Any]:
    return {
        "state": status.state.value,
        "exit_code": status.exit_code,
        "fail_message": status.fail_message,
        "status_message": status.status_message,
        "progress": status.progress,
        "started_at": _time(status.started_at),
        "ended_at": _time(status.ended_at),
    }


def _status_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "state": ActionState(data["state"]),
        "exit_code": data["exit_code"],
        "fail_message": data["fail_message"],
        "status_message": data["status_message"],
        "progress": data["progress"],
        "started_at": _parse_time(data["started_at"]),
        "ended_at": _parse_time(data["ended_at"]),
    }


def encode_event(event: WorkerEvent) -> Message:
    if isinstance(event, records.SessionStarted):
        return [OPENED, event.worker, event.session_id, event.working_directory]
    if isinstance(event, SessionFailed):
        return [BROKEN, event.worker, event.message]
    if isinstance(event, TaskDropped):
        return [DROPPED, event.worker, encode_task(event.task)]
    if isinstance(event, records.ActionStarted):
        return [STARTED, event.worker, encode_action(event.action)]
    if isinstance(event, records.WorkerOutput):
        return [OUTPUT, event.worker, encode_action(event.action), list(event.lines)]
    kind = ENDED if isinstance(event.status, ActionResult) else PROGRESS
    return [kind, event.worker, encode_action(event.action), encode_status(event.status)]


def decode_event(data: Sequence[Any]) -> WorkerEvent:
    kind, worker, *rest = data
    if kind == OPENED:
        return records.SessionStarted(worker, rest[0], rest[1])
    if kind == BROKEN:
        return SessionFailed(worker, rest[0])
    if kind == DROPPED:
        return TaskDropped(worker, decode_task(rest[0]))
    if kind == STARTED:
        return records.ActionStarted(worker, decode_action(rest[0]))
    if kind == OUTPUT:
        return records.WorkerOutput(worker, decode_action(rest[0]), tuple(rest[1]))
    if kind == PROGRESS:
        return records.WorkerStatus(
            worker, decode_action(rest[0]), ActionStatus(**_status_fields(rest[1]))
        )
    if kind == ENDED:
        return records.WorkerStatus(
            worker, decode_action(rest[0]), ActionResult(**_status_fields(rest[1]))
        )
    raise ValueError(f"Unknown worker event {kind!r}.")
