"""The run's side of the workers: hands out tasks, passes lines and statuses on, stops the run.

Also the structured-concurrency helper every runner here uses (Python 3.10 has no TaskGroup).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from typing import Protocol

from .core import Idle, Scheduler, plan_steps
from .events import Dropped, Ended, Output, Progress, WorkerEvent
from .records import ActionKind, JobRunSpec, TaskRef, WorkerLine, WorkerStatus

OnLine = Callable[[WorkerLine], None]
OnStatus = Callable[[WorkerStatus], None]


async def run_all(
    coros: Iterable[Awaitable[None]], *, on_cancel: Callable[[], None] | None = None
) -> None:
    """Runs the coroutines as tasks and returns once every one has finished.

    The first error cancels the others and is raised when they have finished. When the caller
    is cancelled, `on_cancel` is called (at each cancellation) to wind the tasks down, or
    without it the tasks are cancelled; CancelledError propagates only once all have finished,
    so nothing is left running.
    """
    pending = {asyncio.ensure_future(c) for c in coros}
    error: BaseException | None = None
    canceled = False
    while pending:
        try:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            canceled = True
            if on_cancel is not None:
                on_cancel()
            else:
                for task in pending:
                    task.cancel()
            continue
        for task in done:
            if error is None and not task.cancelled() and task.exception() is not None:
                error = task.exception()
                for other in pending:
                    other.cancel()
    if error is not None:
        raise error
    if canceled:
        raise asyncio.CancelledError


class WorkerHandle(Protocol):
    def cancel(self, time_limit: timedelta | None = None) -> None: ...

    def abort(self) -> None: ...


class Coordinator:
    """Connects the workers to the scheduler; a failure that stops the run cancels them all."""

    def __init__(
        self, scheduler: Scheduler, on_line: OnLine | None, on_status: OnStatus | None
    ) -> None:
        self._scheduler = scheduler
        self._on_line = on_line
        self._on_status = on_status
        self._handles: list[WorkerHandle] = []
        self._changed = asyncio.Event()

    def attach(self, handle: WorkerHandle) -> None:
        self._handles.append(handle)

    async def next_task(self, worker: int, current_step: str | None) -> TaskRef | None:
        while True:
            found = self._scheduler.next_task(worker, current_step)
            if found is Idle.DONE:
                return None
            if isinstance(found, TaskRef):
                return found
            await self._changed.wait()

    def report(self, worker: int, event: WorkerEvent) -> None:
        if isinstance(event, Output):
            if self._on_line is not None:
                for text in event.lines:
                    self._on_line(WorkerLine(worker, event.action, text))
            return
        if isinstance(event, Progress):
            if self._on_status is not None:
                self._on_status(WorkerStatus(worker, event.action, event.status))
            return
        stops = False
        if isinstance(event, Ended):
            if self._on_status is not None:
                self._on_status(WorkerStatus(worker, event.action, event.result))
            if event.action.kind is ActionKind.RUN and event.action.task is not None:
                stops = self._scheduler.task_ended(worker, event.action.task, event.result)
            else:
                stops = self._scheduler.environment_ended(worker, event.action, event.result)
        elif isinstance(event, Dropped):
            self._scheduler.task_dropped(worker, event.task)
        self._settled(stops)

    def worker_lost(self, worker: int, message: str) -> None:
        self._settled(self._scheduler.worker_lost(worker, message))

    def cancel(self) -> None:
        """Cancel running tasks and onEnters with their declared method; onExits still run."""
        self._scheduler.cancel()
        self._settled(True)

    def abort(self) -> None:
        """Kill every running action now and skip the remaining onExits."""
        self._scheduler.cancel()
        for handle in self._handles:
            handle.abort()
        self._settled(False)

    def _settled(self, stops: bool) -> None:
        """Wakes the idle workers: the answer to their request may have changed."""
        if stops:
            for handle in self._handles:
                handle.cancel()
        self._changed.set()
        self._changed = asyncio.Event()


class JobRunBase:
    """What every way of running a job shares: the scheduler, its result, and cancelation."""

    def __init__(
        self,
        spec: JobRunSpec,
        *,
        keep_going: bool,
        on_line: OnLine | None,
        on_status: OnStatus | None,
    ) -> None:
        self._spec = spec
        self._keep_going = keep_going
        self._on_line = on_line
        self._on_status = on_status
        self._cancels = 0
        self._coordinator: Coordinator | None = None

    def cancel(self) -> None:
        """The first call cancels running tasks (their declared method) and still exits every
        environment; a later call kills what runs at once and skips the remaining onExits."""
        self._cancels += 1
        if self._coordinator is not None:
            self._escalate(self._coordinator)

    def _escalate(self, coordinator: Coordinator) -> None:
        if self._cancels == 1:
            coordinator.cancel()
        elif self._cancels > 1:
            coordinator.abort()

    def _start(self, locations: Sequence[str]) -> tuple[Scheduler, Coordinator]:
        scheduler = Scheduler(plan_steps(self._spec), locations, keep_going=self._keep_going)
        coordinator = Coordinator(scheduler, self._on_line, self._on_status)
        self._coordinator = coordinator
        return scheduler, coordinator

    async def _supervise(
        self, coordinator: Coordinator, workers: Iterable[Awaitable[None]]
    ) -> None:
        """Runs the workers; cancelling the awaiting task acts as `cancel()` does, and the
        CancelledError propagates once every worker has finished."""
        self._escalate(coordinator)
        await run_all(workers, on_cancel=self.cancel)
