"""A job run's inputs, the lines and statuses it streams, and its result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path

from openjd.expr import PathMappingRule, SerializedSymbolTable
from openjd.model import ParameterValue, RevisionExtensions, StepDependencyGraph
from openjd.model.v2023_09 import Environment, Job

from ..cli.plan import StepRun
from ..state import ActionResult, ActionState, ActionStatus


@dataclass(frozen=True, kw_only=True)
class JobRunSpec:
    """A job and everything its sessions need; on a cluster, this is sent to every worker."""

    job: Job
    steps: Sequence[StepRun]
    """The steps to run, each listed after the steps it depends on. A dependency that is not
    listed is taken as met. Build it with `job_steps` to run the whole job."""
    job_parameter_values: Mapping[str, ParameterValue] = field(default_factory=dict)
    external_environments: Sequence[Environment] = ()
    """Entered before the job environments in every session (`ojd run --env`)."""
    maximum_tasks: int = -1
    """At most this many tasks (chunks) of each step; zero or less means all of them."""
    path_mapping_rules: Sequence[PathMappingRule] = ()
    revision_extensions: RevisionExtensions | None = None
    retain_working_dirs: bool = False
    session_root_directory: Path | None = None
    os_env_vars: Mapping[str, str | None] = field(default_factory=dict)


def job_steps(
    job: Job, step_symtabs: Mapping[str, SerializedSymbolTable] | None = None
) -> list[StepRun]:
    """Every step of the job in dependency order, with its symbol table when one is given
    (`create_job_with_symbol_tables(...).step_symbol_tables`)."""
    symtabs = step_symtabs or {}
    ordered = StepDependencyGraph(job=job).topo_sorted()
    return [StepRun(step=step, symtab=symtabs.get(step.name)) for step in ordered]


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
class WorkerLine:
    """One whole line of action output, with the worker and action that printed it."""

    worker: int
    action: ActionRef
    text: str


@dataclass(frozen=True)
class WorkerStatus:
    """A status change of a worker's action; an `ActionResult` when the action has ended."""

    worker: int
    action: ActionRef
    status: ActionStatus


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
