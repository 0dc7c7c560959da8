"""Worker events survive the trip through a Dask queue: msgpack data, lists turned to tuples."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from openjd.model import ParameterValue, ParameterValueType

from openjd_runtime import ActionResult, ActionState, ActionStatus
from openjd_runtime.scheduling import records
from openjd_runtime.scheduling.events import SessionFailed, TaskDropped, WorkerEvent
from openjd_runtime.scheduling.wire import decode_event, decode_task, encode_event, encode_task

STARTED = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
TASK = records.TaskRef(
    "Render",
    7,
    {
        "Frame": ParameterValue(type=ParameterValueType.INT, value="12"),
        "Chunk": ParameterValue(type=ParameterValueType.CHUNK_INT, value="1-3,5"),
        "Scene": ParameterValue(type=ParameterValueType.PATH, value="/mnt/a b.ma"),
    },
)
RUN = records.ActionRef(records.ActionKind.RUN, "Render", task=TASK)
ENTER = records.ActionRef(records.ActionKind.ENTER, None, environment="Licenses")
EXIT = records.ActionRef(records.ActionKind.EXIT, "Render", environment="Scene cache")
FAILED = ActionResult(
    state=ActionState.FAILED,
    exit_code=3,
    fail_message="no license",
    started_at=STARTED,
    ended_at=STARTED,
)

EVENTS: list[WorkerEvent] = [
    records.SessionStarted(2, "ojd-1-worker2-1", "/tmp/OpenJD/ojd-1-worker2-1abc"),
    SessionFailed(0, "Worker 0 cannot start a session: no space left"),
    records.ActionStarted(1, RUN),
    records.ActionStarted(1, EXIT),
    records.WorkerOutput(3, RUN, ("first line", "", "  ünïcode\ttabs  ")),
    records.WorkerOutput(3, ENTER, ()),
    records.WorkerStatus(
        1, RUN, ActionStatus(ActionState.RUNNING, progress=42.5, status_message="half")
    ),
    records.WorkerStatus(0, ENTER, ActionStatus(ActionState.RUNNING, started_at=STARTED)),
    records.WorkerStatus(4, RUN, FAILED),
    records.WorkerStatus(4, EXIT, ActionResult(state=ActionState.TIMEOUT)),
    TaskDropped(5, TASK),
]


def as_msgpack_returns(data: Any) -> Any:
    """What a Dask queue hands back: every list becomes a tuple."""
    if isinstance(data, (list, tuple)):
        return tuple(as_msgpack_returns(item) for item in data)
    if isinstance(data, dict):
        return {key: as_msgpack_returns(value) for key, value in data.items()}
    return data


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_an_event_round_trips(event: WorkerEvent) -> None:
    decoded = decode_event(as_msgpack_returns(encode_event(event)))
    assert decoded == event
    assert type(decoded) is type(event)
    if isinstance(event, records.WorkerStatus) and isinstance(decoded, records.WorkerStatus):
        assert type(decoded.status) is type(event.status), "an end stays an end"


def test_a_task_round_trips() -> None:
    assert decode_task(as_msgpack_returns(encode_task(TASK))) == TASK


def test_an_unknown_event_is_an_error() -> None:
    with pytest.raises(ValueError, match="Unknown worker event"):
        decode_event(["gossip", 0])
