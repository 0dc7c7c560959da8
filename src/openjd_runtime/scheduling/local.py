"""Running a job with N workers on this host, all on the running event loop."""

from __future__ import annotations

import secrets
import time

from ..jobs import JobRunSpec
from .coordinator import JobRunBase
from .records import JobRunResult, OnEvent
from .worker import Worker

LOCAL = "local"


class JobRun(JobRunBase):
    """A job run by `workers` concurrent sessions on this host.

    Call `cancel()` (e.g. from a signal handler) to stop it and still get its result; cancelling
    the task that awaits `run()` stops it the same way and then raises CancelledError.
    """

    def __init__(
        self,
        spec: JobRunSpec,
        *,
        workers: int = 1,
        keep_going: bool = False,
        on_event: OnEvent | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"A job needs at least one worker; got {workers}.")
        super().__init__(spec, keep_going=keep_going, on_event=on_event)
        self._workers = workers

    async def run(self) -> JobRunResult:
        started = time.monotonic()
        scheduler, coordinator = self._start([LOCAL] * self._workers)
        prefix = f"run-{secrets.token_hex(4)}"
        workers = [
            Worker(index, self._spec, coordinator, session_prefix=prefix)
            for index in range(self._workers)
        ]
        for worker in workers:
            coordinator.attach(worker)
        await self._supervise(coordinator, [worker.run() for worker in workers])
        return scheduler.result(time.monotonic() - started)


async def run_job(
    spec: JobRunSpec,
    *,
    workers: int = 1,
    keep_going: bool = False,
    on_event: OnEvent | None = None,
) -> JobRunResult:
    """Runs the job with `workers` sessions on this host; see `JobRun`."""
    run = JobRun(spec, workers=workers, keep_going=keep_going, on_event=on_event)
    return await run.run()
