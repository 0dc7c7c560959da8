"""The run's side of the workers: hands out tasks, passes lines and statuses on, stops the run.

Also the structured-concurrency helper every runner here uses (Python 3.10 has no TaskGroup).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from ..jobs import JobRunSpec
from ..state import ActionResult
from .core import Idle, Scheduler, plan_steps
from .events import SessionFailed, TaskDropped, WorkerEvent
from .records import (
    ActionKind,
    ActionRef,
    ChunkSizeChanged,
    OnEvent,
    RunEvent,
    RunProgress,
    RunStarted,
    TaskRef,
    WorkerStatus,
)


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
    def stop(self) -> None:
        """Start nothing new; cancel a running task or onEnter (a failure stops the run)."""

    def cancel(self) -> None:
        """Start nothing new; cancel the running action, whatever it is (the run was canceled)."""

    def abort(self) -> None:
        """Kill the running action now and skip the remaining onExits."""


class Coordinator:
    """Connects the workers to the scheduler; a failure that stops the run stops them all."""

    def __init__(self, scheduler: Scheduler, emit: Callable[[RunEvent], None]) -> None:
        self._scheduler = scheduler
        self._emit = emit
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

    def report(self, event: WorkerEvent) -> None:
        if isinstance(event, TaskDropped):
            self._scheduler.task_dropped(event.worker, event.task)
            self._settled(False)
            return
        if isinstance(event, SessionFailed):
            self._settled(self._scheduler.session_failed(event.worker, event.message))
            return
        self._emit(event)
        if isinstance(event, WorkerStatus) and isinstance(event.status, ActionResult):
            self._settled(self._ended(event.worker, event.action, event.status))

    def _ended(self, worker: int, action: ActionRef, result: ActionResult) -> bool:
        """Tells the scheduler that an action ended; True when this stops the run."""
        if action.kind is ActionKind.RUN and action.task is not None:
            return self._scheduler.task_ended(worker, action.task, result)
        return self._scheduler.environment_ended(worker, action, result)

    def worker_lost(self, worker: int, message: str) -> None:
        self._settled(self._scheduler.worker_lost(worker, message))

    def cancel(self) -> None:
        """Cancel every running action with its declared method; the onExits still run."""
        self._scheduler.cancel()
        for handle in self._handles:
            handle.cancel()
        self._settled(False)

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
                handle.stop()
        self._changed.set()
        self._changed = asyncio.Event()


class JobRunBase:
    """What every way of running a job shares: the scheduler, its result, and cancelation."""

    def __init__(self, spec: JobRunSpec, *, keep_going: bool, on_event: OnEvent | None) -> None:
        self._spec = spec
        self._keep_going = keep_going
        self._on_event = on_event
        self._cancels = 0
        self._scheduler: Scheduler | None = None
        self._coordinator: Coordinator | None = None

    def cancel(self) -> None:
        """The first call cancels the running actions (with their declared method) and still
        exits every environment; a later call kills what runs at once and skips the remaining
        onExits."""
        self._cancels += 1
        if self._coordinator is not None:
            self._escalate(self._coordinator)

    def progress(self) -> RunProgress | None:
        """Tasks succeeded and to run, and busy workers; None until the run has its workers."""
        return self._scheduler.progress() if self._scheduler is not None else None

    def _escalate(self, coordinator: Coordinator) -> None:
        if self._cancels == 1:
            coordinator.cancel()
        elif self._cancels > 1:
            coordinator.abort()

    def _start(self, locations: Sequence[str]) -> tuple[Scheduler, Coordinator]:
        scheduler = Scheduler(
            plan_steps(self._spec),
            locations,
            keep_going=self._keep_going,
            on_chunk_size=lambda step, size: self._emit(ChunkSizeChanged(step, size)),
        )
        coordinator = Coordinator(scheduler, self._emit)
        self._scheduler = scheduler
        self._coordinator = coordinator
        self._emit(RunStarted(tuple(locations)))
        return scheduler, coordinator

    def _emit(self, event: RunEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    async def _supervise(
        self, coordinator: Coordinator, workers: Iterable[Awaitable[None]]
    ) -> None:
        """Runs the workers; cancelling the awaiting task acts as `cancel()` does, and the
        CancelledError propagates once every worker has finished."""
        self._escalate(coordinator)
        await run_all(workers, on_cancel=self.cancel)
