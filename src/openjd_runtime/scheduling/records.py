"""A job run's events as its observer sees them, its progress, and its result."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from openjd.model import ParameterValue

from ..state import ActionResult, ActionState, ActionStatus


@dataclass(frozen=True)
class TaskRef:
    """One task (or chunk) as handed to a worker: the n-th one taken from its step."""

    step: str
    index: int
    parameters: Mapping[str, ParameterValue]

    def describe(self) -> str:
        values = ", ".join(f"{name}={value.value}" for name, value in self.parameters.items())
        return f"task {self.index} of step '{self.step}'" + (f" ({values})" if values else "")


class ActionKind(str, Enum):
    ENTER = "onEnter"
    RUN = "onRun"
    EXIT = "onExit"


@dataclass(frozen=True)
class ActionRef:
    """Which action a line or status belongs to."""

    kind: ActionKind
    step: str | None
    """The task's step, or the step of a step environment; None for job and external ones."""
    environment: str | None = None
    task: TaskRef | None = None

    def describe(self) -> str:
        if self.task is not None:
            return self.task.describe()
        return f"{self.kind.value} of environment '{self.environment}'"


@dataclass(frozen=True)
class RunStarted:
    """The run has its workers; `locations[i]` is where worker i runs."""

    locations: tuple[str, ...]


@dataclass(frozen=True)
class FromWorker:
    worker: int
    """The worker's index: 0 up to the number of workers, less one."""


@dataclass(frozen=True)
class SessionStarted(FromWorker):
    """A worker started a session (its first, or a new one after a failure ended the last)."""

    session_id: str
    working_directory: str


@dataclass(frozen=True)
class ActionEvent(FromWorker):
    """Something about one of a worker's actions."""

    action: ActionRef


@dataclass(frozen=True)
class ActionStarted(ActionEvent):
    """The action is about to start; its output, statuses and end follow."""


@dataclass(frozen=True)
class WorkerOutput(ActionEvent):
    lines: tuple[str, ...]
    """Whole lines, as the action printed them."""


@dataclass(frozen=True)
class WorkerStatus(ActionEvent):
    status: ActionStatus
    """The action's new status; an `ActionResult` once the action has ended."""


@dataclass(frozen=True)
class ChunkSizeChanged:
    """Adaptive chunking resized the chunks still to come of a step."""

    step: str
    size: int


RunEvent = (
    RunStarted | SessionStarted | ActionStarted | WorkerOutput | WorkerStatus | ChunkSizeChanged
)
OnEvent = Callable[[RunEvent], None]


@dataclass(frozen=True)
class StepProgress:
    succeeded: int
    total: int | None
    """None while adaptive chunking decides it."""


@dataclass(frozen=True)
class RunProgress:
    """Where a run is now, for a progress display."""

    steps: Mapping[str, StepProgress]
    busy: int
    """Workers holding a task: setting up for it or running it."""
    workers: int

    @property
    def succeeded(self) -> int:
        return sum(step.succeeded for step in self.steps.values())

    @property
    def total(self) -> int | None:
        totals = [step.total for step in self.steps.values()]
        return None if None in totals else sum(t for t in totals if t is not None)


@dataclass(frozen=True)
class Failure:
    """Why the run did not succeed: a failed, timed out or unexpectedly canceled action, or a
    worker that was lost."""

    worker: int
    action: ActionRef | None
    result: ActionResult | None
    message: str


def describe_failure(worker: int, action: ActionRef, result: ActionResult) -> str:
    if result.state is ActionState.TIMEOUT:
        what = "timed out"
    elif result.state is ActionState.CANCELED:
        what = "was canceled"
    elif result.exit_code is not None:
        what = f"failed with exit code {result.exit_code}"
    else:
        what = "failed"
    text = f"{action.describe()} {what} on worker {worker}"
    return f"{text}: {result.fail_message}" if result.fail_message else text


class StepOutcome(str, Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    """Some of its tasks ran, but the run stopped before the rest did."""
    NOT_STARTED = "NOT_STARTED"
    """None of its tasks ran: a dependency did not succeed, or the run stopped first."""


@dataclass(frozen=True)
class StepReport:
    name: str
    outcome: StepOutcome
    total: int | None
    """Tasks (chunks) the step has; None when adaptive chunking decides it as it goes."""
    succeeded: int
    failed: int
    canceled: int
    seconds: float
    """Run time of its tasks added up, across workers."""
    started_at: datetime | None
    ended_at: datetime | None

    @property
    def not_run(self) -> int | None:
        if self.total is None:
            return None
        return self.total - self.succeeded - self.failed - self.canceled


@dataclass(frozen=True)
class WorkerReport:
    worker: int
    location: str
    """`local`, or the address of the cluster worker it ran on."""
    tasks: int
    failed: int
    seconds: float
    """Run time of its tasks added up."""
    environments_entered: int


@dataclass(frozen=True)
class JobRunResult:
    success: bool
    canceled: bool
    failures: tuple[Failure, ...]
    """In the order they happened; the first one is what stopped a fail-fast run."""
    steps: tuple[StepReport, ...]
    workers: tuple[WorkerReport, ...]
    duration: float

    @property
    def failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    @property
    def tasks_succeeded(self) -> int:
        return sum(step.succeeded for step in self.steps)
