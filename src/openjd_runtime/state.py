"""Session and action states, and the records that report them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class SessionState(str, Enum):
    READY = "READY"
    RUNNING = "RUNNING"
    CANCELING = "CANCELING"
    READY_ENDING = "READY_ENDING"
    ENDED = "ENDED"


class ActionState(str, Enum):
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TIMEOUT = "TIMEOUT"


@dataclass(frozen=True)
class ActionStatus:
    """A snapshot of the running (or last) action, as given to the status callback."""

    state: ActionState
    exit_code: int | None = None
    fail_message: str | None = None
    status_message: str | None = None
    progress: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class ActionResult(ActionStatus):
    """The final status of an action; `state` is never RUNNING."""
