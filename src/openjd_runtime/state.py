"""Session and action states, and the records that report them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from .errors import InvalidStateError


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


class Lifecycle:
    """The session's state machine: which calls each state allows, and where actions lead.

    After an action that did not succeed the session only ends: its environments may still be
    exited, but no new environment or task may start.
    """

    _ALLOWED = {
        "enter_environment": (SessionState.READY,),
        "run_task": (SessionState.READY,),
        "exit_environment": (SessionState.READY, SessionState.READY_ENDING),
        "cancel_action": (SessionState.RUNNING, SessionState.CANCELING),
    }

    def __init__(self) -> None:
        self.state = SessionState.READY
        self.ending = False

    def check(self, call: str) -> None:
        allowed = self._ALLOWED[call]
        if self.state not in allowed:
            names = " or ".join(s.value for s in allowed)
            raise InvalidStateError(
                f"{call} needs the session to be {names}; it is {self.state.value}."
            )

    def start_action(self) -> None:
        self.state = SessionState.RUNNING

    def cancel(self) -> None:
        self.state = SessionState.CANCELING

    def finish_action(self, result: ActionState) -> None:
        if self.state == SessionState.ENDED:
            return
        self.ending = self.ending or result != ActionState.SUCCESS
        self.state = SessionState.READY_ENDING if self.ending else SessionState.READY

    def end(self) -> None:
        self.state = SessionState.ENDED
