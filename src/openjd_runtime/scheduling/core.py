"""Which worker runs which task next, and what the run's outcome is. Pure logic, no I/O.

The shell feeds it what happened (a task ended, an environment failed, a worker was lost) and
asks it for work; it answers with a task, "wait" (a step may still become runnable) or "done".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol

from openjd.model import ParameterValue, StepDependencyGraph

from ..jobs import JobRunSpec, TaskQueue
from ..state import ActionResult, ActionState
from .records import (
    ActionKind,
    ActionRef,
    Failure,
    JobRunResult,
    RunProgress,
    StepOutcome,
    StepProgress,
    StepReport,
    TaskRef,
    WorkerReport,
    describe_failure,
)


class TaskSource(Protocol):
    """A step's tasks, drawn lazily; finished run times may reshape the chunks still to come."""

    total: int | None

    def __iter__(self) -> Iterator[dict[str, ParameterValue]]: ...

    def task_done(self, task: dict[str, ParameterValue], seconds: float) -> int | None: ...


@dataclass(frozen=True)
class PlannedStep:
    name: str
    depends_on: frozenset[str]
    source: TaskSource


def plan_steps(spec: JobRunSpec) -> list[PlannedStep]:
    """The spec's steps with their dependencies among the listed steps and their task queues."""
    graph = StepDependencyGraph(job=spec.job)
    listed = {run.step.name for run in spec.steps}
    planned = []
    for run in spec.steps:
        edges = graph.step_node(stepname=run.step.name).in_edges
        depends_on = frozenset(e.origin.step.name for e in edges) & listed
        source = TaskQueue(run.step, run.explicit_tasks, spec.maximum_tasks)
        planned.append(PlannedStep(run.step.name, depends_on, source))
    return planned


class Idle(Enum):
    WAIT = "wait"
    """Nothing to run now, but a step waiting on its dependencies may become runnable."""
    DONE = "done"


class _Phase(Enum):
    WAITING = "waiting"
    READY = "ready"
    SETTLED = "settled"


@dataclass
class _Step:
    name: str
    depends_on: frozenset[str]
    source: TaskSource
    iterator: Iterator[dict[str, ParameterValue]]
    phase: _Phase = _Phase.WAITING
    outcome: StepOutcome | None = None
    exhausted: bool = False
    """No task is left to hand out (all taken, or none will be after its environment failed)."""
    failed: bool = False
    handed_out: int = 0
    in_flight: int = 0
    dropped: int = 0
    succeeded: int = 0
    failures: int = 0
    canceled: int = 0
    seconds: float = 0.0
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass
class _Worker:
    location: str
    tasks: int = 0
    failed: int = 0
    seconds: float = 0.0
    environments_entered: int = 0
    assigned: TaskRef | None = None


def _seconds(result: ActionResult) -> float:
    if result.started_at is None or result.ended_at is None:
        return 0.0
    return max((result.ended_at - result.started_at).total_seconds(), 0.0)


@dataclass
class Scheduler:
    """The state of one job run: steps, their tasks, the workers' shares, and failures."""

    steps: Sequence[PlannedStep]
    locations: Sequence[str]
    """Where each worker runs; its length is the number of workers."""
    keep_going: bool = False
    on_chunk_size: Callable[[str, int], None] | None = None
    """Told when adaptive chunking resizes a step's chunks still to come."""
    _steps: dict[str, _Step] = field(init=False)
    _workers: list[_Worker] = field(init=False)
    _failures: list[Failure] = field(init=False, default_factory=list)
    stopping: bool = field(init=False, default=False)
    canceled: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._steps = {
            s.name: _Step(s.name, s.depends_on, s.source, iter(s.source)) for s in self.steps
        }
        self._workers = [_Worker(location) for location in self.locations]
        for step in self._steps.values():
            if not step.depends_on:
                step.phase = _Phase.READY

    def next_task(self, worker: int, current_step: str | None) -> TaskRef | Idle:
        """A task for an idle worker, from the step it is already set up for when it can."""
        while not self.stopping:
            for step in self._candidates(current_step):
                task = self._draw(step)
                if task is not None:
                    self._workers[worker].assigned = task
                    return task
            if not any(s.phase is _Phase.READY and not s.exhausted for s in self._steps.values()):
                break
        if self.stopping:
            return Idle.DONE
        waiting = any(s.phase is _Phase.WAITING for s in self._steps.values())
        return Idle.WAIT if waiting else Idle.DONE

    def _candidates(self, current_step: str | None) -> list[_Step]:
        ready = [s for s in self._steps.values() if s.phase is _Phase.READY and not s.exhausted]
        ready.sort(key=lambda s: s.name != current_step)
        return ready

    def _draw(self, step: _Step) -> TaskRef | None:
        try:
            parameters = next(step.iterator)
        except StopIteration:
            step.exhausted = True
            self._settle(step)
            return None
        task = TaskRef(step.name, step.handed_out, parameters)
        step.handed_out += 1
        step.in_flight += 1
        return task

    def task_ended(self, worker: int, task: TaskRef, result: ActionResult) -> bool:
        """Accounts for a task that ran; True when this makes the run stop."""
        step = self._steps[task.step]
        state = self._workers[worker]
        state.assigned = None
        step.in_flight -= 1
        seconds = _seconds(result)
        step.seconds += seconds
        state.seconds += seconds
        state.tasks += 1
        if result.started_at is not None and (
            step.started_at is None or result.started_at < step.started_at
        ):
            step.started_at = result.started_at
        if result.ended_at is not None and (
            step.ended_at is None or result.ended_at > step.ended_at
        ):
            step.ended_at = result.ended_at
        stops = False
        if result.state is ActionState.SUCCESS:
            step.succeeded += 1
            size = step.source.task_done(dict(task.parameters), seconds)
            if size is not None and self.on_chunk_size is not None:
                self.on_chunk_size(step.name, size)
        elif result.state is ActionState.CANCELED and self.stopping:
            step.canceled += 1
        else:
            step.failures += 1
            state.failed += 1
            action = ActionRef(ActionKind.RUN, task.step, task=task)
            failure = Failure(worker, action, result, describe_failure(worker, action, result))
            stops = self._fail(failure, step)
        self._settle(step)
        return stops

    def task_dropped(self, worker: int, task: TaskRef) -> None:
        """A task handed out that will not run: its worker could not set up, or the run stops."""
        step = self._steps[task.step]
        self._workers[worker].assigned = None
        step.in_flight -= 1
        step.dropped += 1
        self._settle(step)

    def environment_ended(self, worker: int, action: ActionRef, result: ActionResult) -> bool:
        """Accounts for an environment's onEnter or onExit; True when this makes the run stop."""
        if action.kind is ActionKind.ENTER:
            self._workers[worker].environments_entered += 1
        if result.state is ActionState.SUCCESS or (
            result.state is ActionState.CANCELED and self.stopping
        ):
            return False
        failure = Failure(worker, action, result, describe_failure(worker, action, result))
        if action.kind is ActionKind.EXIT:
            return self._fail(failure, None, stops_all=False)
        if action.step is None:
            return self._fail(failure, None, stops_all=True)
        step = self._steps[action.step]
        step.exhausted = True
        stops = self._fail(failure, step)
        self._settle(step)
        return stops

    def worker_lost(self, worker: int, message: str) -> bool:
        """A worker that ended without saying so; its task, if any, counts as failed."""
        state = self._workers[worker]
        task, state.assigned = state.assigned, None
        if task is None:
            return self._fail(Failure(worker, None, None, message), None, stops_all=False)
        step = self._steps[task.step]
        step.in_flight -= 1
        step.failures += 1
        state.failed += 1
        action = ActionRef(ActionKind.RUN, task.step, task=task)
        stops = self._fail(Failure(worker, action, None, message), step)
        self._settle(step)
        return stops

    def session_failed(self, worker: int, message: str) -> bool:
        """A worker could not start a session and runs nothing more; True when the run stops."""
        return self._fail(Failure(worker, None, None, message), None)

    def cancel(self) -> bool:
        """The run was canceled from outside; True when it was not already stopping."""
        self.canceled = True
        return self._stop()

    def _stop(self) -> bool:
        started = not self.stopping
        self.stopping = True
        return started

    def _fail(self, failure: Failure, step: _Step | None, *, stops_all: bool = False) -> bool:
        self._failures.append(failure)
        if step is not None:
            step.failed = True
            self._skip_dependents_of(step.name)
        if stops_all or not self.keep_going:
            return self._stop()
        return False

    def _settle(self, step: _Step) -> None:
        if step.phase is not _Phase.READY or not step.exhausted or step.in_flight:
            return
        step.phase = _Phase.SETTLED
        if step.failed:
            step.outcome = StepOutcome.FAILED
        elif step.dropped or step.canceled:
            step.outcome = StepOutcome.CANCELED
        else:
            step.outcome = StepOutcome.SUCCEEDED
        if step.outcome is not StepOutcome.SUCCEEDED:
            self._skip_dependents_of(step.name)
            return
        for other in self._steps.values():
            if other.phase is _Phase.WAITING and all(
                self._steps[name].outcome is StepOutcome.SUCCEEDED for name in other.depends_on
            ):
                other.phase = _Phase.READY

    def _skip_dependents_of(self, name: str) -> None:
        for other in self._dependents(name):
            if other.phase is _Phase.WAITING:
                other.phase = _Phase.SETTLED
                other.outcome = StepOutcome.NOT_STARTED

    def _dependents(self, name: str) -> Iterable[_Step]:
        found: dict[str, _Step] = {}
        pending = [name]
        while pending:
            current = pending.pop()
            for other in self._steps.values():
                if current in other.depends_on and other.name not in found:
                    found[other.name] = other
                    pending.append(other.name)
        return found.values()

    def progress(self) -> RunProgress:
        steps = {
            name: StepProgress(step.succeeded, step.source.total)
            for name, step in self._steps.items()
        }
        busy = sum(1 for worker in self._workers if worker.assigned is not None)
        return RunProgress(steps=steps, busy=busy, workers=len(self._workers))

    def result(self, duration: float) -> JobRunResult:
        steps = tuple(self._report(step) for step in self._steps.values())
        workers = tuple(
            WorkerReport(
                worker=index,
                location=w.location,
                tasks=w.tasks,
                failed=w.failed,
                seconds=w.seconds,
                environments_entered=w.environments_entered,
            )
            for index, w in enumerate(self._workers)
        )
        success = (
            not self._failures
            and not self.canceled
            and all(s.outcome is StepOutcome.SUCCEEDED for s in steps)
        )
        return JobRunResult(
            success=success,
            canceled=self.canceled,
            failures=tuple(self._failures),
            steps=steps,
            workers=workers,
            duration=duration,
        )

    @staticmethod
    def _report(step: _Step) -> StepReport:
        outcome = step.outcome
        if outcome is None:
            if step.failed:
                outcome = StepOutcome.FAILED
            elif step.handed_out:
                outcome = StepOutcome.CANCELED
            else:
                outcome = StepOutcome.NOT_STARTED
        return StepReport(
            name=step.name,
            outcome=outcome,
            total=step.source.total,
            succeeded=step.succeeded,
            failed=step.failures,
            canceled=step.canceled,
            seconds=step.seconds,
            started_at=step.started_at,
            ended_at=step.ended_at,
        )
