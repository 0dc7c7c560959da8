"""What a worker tells its coordinator, in process or across a cluster."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..state import ActionResult, ActionStatus
from .records import ActionRef, TaskRef


@dataclass(frozen=True)
class Output:
    action: ActionRef
    lines: Sequence[str]


@dataclass(frozen=True)
class Progress:
    """A running action's status changed (progress, status message, fail message)."""

    action: ActionRef
    status: ActionStatus


@dataclass(frozen=True)
class Ended:
    action: ActionRef
    result: ActionResult


@dataclass(frozen=True)
class Dropped:
    """A task the worker was given but did not run."""

    task: TaskRef


WorkerEvent = Output | Progress | Ended | Dropped
