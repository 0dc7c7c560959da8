"""Worker events and coordinator replies as plain lists, dicts and strings.

Dask queues carry msgpack data only, and hand lists back as tuples; the decoders take either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from openjd.model import ParameterValue, ParameterValueType

from ..state import ActionResult, ActionState, ActionStatus
from .events import Dropped, Ended, Output, Progress, WorkerEvent
from .records import ActionKind, ActionRef, TaskRef

OUTPUT = "output"
PROGRESS = "progress"
ENDED = "ended"
DROPPED = "dropped"
NEXT = "next"
"""Worker to coordinator: the worker is idle and asks for a task, naming its current step."""
FINISHED = "finished"
"""Worker to coordinator: the worker has exited its environments and ended; its last message."""
TASK = "task"
"""Coordinator to worker: the reply to NEXT, a task or None."""
CANCEL = "cancel"
ABORT = "abort"
PING = "ping"
"""Coordinator to worker: the coordinator is still there."""

Message = list[Any]


def encode_task(task: TaskRef) -> Message:
    values = {name: [value.type.value, value.value] for name, value in task.parameters.items()}
    return [task.step, task.index, values]


def decode_task(data: Sequence[Any]) -> TaskRef:
    step, index, values = data
    parameters = {
        name: ParameterValue(type=ParameterValueType(kind), value=value)
        for name, (kind, value) in values.items()
    }
    return TaskRef(step, index, parameters)


def encode_action(action: ActionRef) -> Message:
    task = encode_task(action.task) if action.task is not None else None
    return [action.kind.value, action.step, action.environment, task]


def decode_action(data: Sequence[Any]) -> ActionRef:
    kind, step, environment, task = data
    return ActionRef(
        ActionKind(kind), step, environment, decode_task(task) if task is not None else None
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
    if isinstance(event, Output):
        return [OUTPUT, encode_action(event.action), list(event.lines)]
    if isinstance(event, Progress):
        return [PROGRESS, encode_action(event.action), encode_status(event.status)]
    if isinstance(event, Ended):
        return [ENDED, encode_action(event.action), encode_status(event.result)]
    return [DROPPED, encode_task(event.task)]


def decode_event(data: Sequence[Any]) -> WorkerEvent:
    kind = data[0]
    if kind == OUTPUT:
        return Output(decode_action(data[1]), tuple(data[2]))
    if kind == PROGRESS:
        return Progress(decode_action(data[1]), ActionStatus(**_status_fields(data[2])))
    if kind == ENDED:
        return Ended(decode_action(data[1]), ActionResult(**_status_fields(data[2])))
    if kind == DROPPED:
        return Dropped(decode_task(data[1]))
    raise ValueError(f"Unknown worker event {kind!r}.")
