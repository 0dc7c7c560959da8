"""`ojd run`'s shell: runs the plan's job with the scheduling library (one local session, several,
or on a Dask cluster), prints what happens, and turns Ctrl-C and SIGTERM into cancelation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time

from ..log import LogContent
from ..scheduling import ClusterError, ClusterJobRun, JobRun, RunEvent, SessionStarted
from .console import Console
from .errors import CliError, format_error
from .output import RunReport
from .plan import RunPlan
from .transcript import Transcript

TICK_SECONDS = 1.0


class _ConsoleLogHandler(logging.Handler):
    """Shows the sessions' own log records among the run's lines, except what the run prints
    itself (banners and parameter values)."""

    SKIPPED = LogContent.BANNER | LogContent.PARAMETER_INFO

    def __init__(self, console: Console, transcript: Transcript) -> None:
        super().__init__()
        self._console = console
        self._transcript = transcript

    def emit(self, record: logging.LogRecord) -> None:
        content = getattr(record, "openjd_log_content", None)
        if isinstance(content, LogContent) and content & self.SKIPPED:
            return
        try:
            texts = record.getMessage().splitlines() or [""]
            self._console.lines(self._transcript.log(getattr(record, "session_id", None), texts))
        except Exception:
            self.handleError(record)


class JobRunner:
    """Runs a RunPlan and reports it. Every entered environment is exited, even after a failure
    or an interrupt, unless a second interrupt asks to stop at once."""

    def __init__(self, plan: RunPlan, console: Console) -> None:
        self._plan = plan
        self._console = console
        spec = plan.spec
        order = {
            run.step.name: list(run.step.parameterSpace.taskParameterDefinitions)
            if run.step.parameterSpace is not None
            else []
            for run in spec.steps
        }
        self._transcript = Transcript(
            spec.job.name, order, console.progress, parallel=plan.parallel
        )
        self._run: JobRun | ClusterJobRun
        if plan.cluster is not None:
            self._run = ClusterJobRun(
                spec,
                cluster=plan.cluster,
                workers=plan.workers,
                keep_going=plan.keep_going,
                on_event=self._on_event,
            )
        else:
            self._run = JobRun(
                spec,
                workers=plan.workers or 1,
                keep_going=plan.keep_going,
                on_event=self._on_event,
            )
        self._interrupts = 0
        self._preserved: list[str] = []

    async def run(self) -> RunReport:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal)
        logger = logging.getLogger("openjd_runtime")
        handler = _ConsoleLogHandler(self._console, self._transcript)
        saved = (logger.level, logger.propagate)
        logger.setLevel(logging.DEBUG if self._plan.verbose else logging.WARNING)
        logger.propagate = False
        logger.addHandler(handler)
        ticker = loop.create_task(self._tick()) if self._console.live else None
        try:
            result = await self._run.run()
        except ClusterError as exc:
            raise CliError(str(exc)) from exc
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            logger.removeHandler(handler)
            logger.setLevel(saved[0])
            logger.propagate = saved[1]
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        for failure in result.failures:
            if failure.action is None:
                self._console.error(format_error(failure.message), sys.stderr)
        self._console.lines(self._transcript.finish(result.success))
        return RunReport(
            success=result.success,
            job_name=self._plan.spec.job.name,
            step_name=self._plan.selected_step,
            duration=time.monotonic() - started,
            chunks_run=sum(s.succeeded + s.failed + s.canceled for s in result.steps),
            preserved_at=tuple(self._preserved),
            details=result if self._plan.parallel else None,
        )

    def _on_event(self, event: RunEvent) -> None:
        if isinstance(event, SessionStarted) and self._plan.spec.retain_working_dirs:
            self._preserved.append(event.working_directory)
        lines = self._transcript.event(event)
        if self._console.live:
            self._transcript.refresh(self._run.progress())
        if lines:
            self._console.lines(lines)
        else:
            self._console.redraw()

    def _on_signal(self) -> None:
        self._interrupts += 1
        if self._interrupts == 1:
            self._console.line("Interruption signal received.")
        else:
            self._console.line("Second interruption: stopping everything now.")
        self._run.cancel()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self._transcript.refresh(self._run.progress())
            self._console.redraw()


def run_plan(plan: RunPlan, console: Console) -> RunReport:
    return asyncio.run(JobRunner(plan, console).run())
