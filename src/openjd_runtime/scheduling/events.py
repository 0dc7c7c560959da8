"""What a worker tells its coordinator, in process or across a cluster: the run's public events
(`records.RunEvent`) about its sessions and actions, and two that only the coordinator needs."""

from __future__ import annotations

from dataclasses import dataclass

from .records import (
    ActionStarted,
    FromWorker,
    SessionStarted,
    TaskRef,
    WorkerOutput,
    WorkerStatus,
)


@dataclass(frozen=True)
class TaskDropped(FromWorker):
    task: TaskRef
    """Given to the worker, which did not run it."""


@dataclass(frozen=True)
class SessionFailed(FromWorker):
    message: str
    """Why the worker could not start a session; it runs nothing more."""


WorkerEvent = (
    SessionStarted | ActionStarted | WorkerOutput | WorkerStatus | TaskDropped | SessionFailed
)
