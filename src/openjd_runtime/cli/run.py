"""`ojd run`'s loop: one Session on one event loop, environments in, tasks, environments out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from openjd.expr import SerializedSymbolTable
from openjd.model.v2023_09 import Environment

from .. import ActionResult, ActionState, ActionStatus, Session, SessionConfig, SessionState
from ..errors import SessionError
from ..log import LogContent
from .console import Console
from .errors import format_error
from .output import (
    RunReport,
    closing_lines,
    environment_banner,
    exit_code_line,
    parameter_lines,
    task_banner,
)
from .plan import RunPlan, StepRun, TaskQueue

TICK_SECONDS = 1.0


@dataclass
class _Entered:
    identifier: str
    environment: Environment
    symtab: SerializedSymbolTable | None


@dataclass
class _RunState:
    failed: bool = False
    interrupts: int = 0
    chunks_run: int = 0
    entered: list[_Entered] = field(default_factory=list)

    @property
    def stopping(self) -> bool:
        """No new environment or task starts once anything failed or the user interrupted."""
        return self.failed or self.interrupts > 0

    @property
    def aborting(self) -> bool:
        """A second interrupt: skip the remaining onExit actions too."""
        return self.interrupts > 1


class _ConsoleLogHandler(logging.Handler):
    """Shows the session's own log records among the run's lines, except what the run prints
    itself (banners and parameter values)."""

    SKIPPED = LogContent.BANNER | LogContent.PARAMETER_INFO

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        content = getattr(record, "openjd_log_content", None)
        if isinstance(content, LogContent) and content & self.SKIPPED:
            return
        try:
            self._console.lines(record.getMessage().splitlines() or [""])
        except Exception:
            self.handleError(record)


def _describe(result: ActionResult) -> str:
    if result.state is ActionState.TIMEOUT:
        text = "timed out"
    elif result.state is ActionState.CANCELED:
        text = "was canceled"
    else:
        text = "failed"
    return f"{text}: {result.fail_message}" if result.fail_message else text


class JobRunner:
    """Drives one Session through a RunPlan; every entered environment is exited, even after a
    failure or an interrupt, unless a second interrupt asks to stop at once."""

    def __init__(self, plan: RunPlan, console: Console) -> None:
        self._plan = plan
        self._console = console
        self._state = _RunState()
        self._session: Session | None = None

    async def run(self) -> RunReport:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal)
        logger = logging.getLogger("openjd_runtime")
        handler = _ConsoleLogHandler(self._console)
        saved = (logger.level, logger.propagate)
        logger.setLevel(logging.DEBUG if self._plan.verbose else logging.WARNING)
        logger.propagate = False
        logger.addHandler(handler)
        ticker = loop.create_task(self._tick()) if self._console.live else None
        preserved: Path | None = None
        try:
            preserved = await self._run_session()
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
        success = not self._state.stopping
        self._console.lines(closing_lines(success))
        return RunReport(
            success=success,
            job_name=self._plan.job.name,
            step_name=self._plan.selected_step,
            duration=time.monotonic() - started,
            chunks_run=self._state.chunks_run,
            preserved_at=preserved,
        )

    async def _run_session(self) -> Path | None:
        plan = self._plan
        config = SessionConfig(
            session_id=f"cli-{os.getpid()}",
            job_parameter_values=plan.parameter_values,
            path_mapping_rules=plan.path_mapping_rules,
            retain_working_dir=plan.preserve,
            revision_extensions=plan.extensions,
            job_name=plan.job.name,
            callback=self._on_status,
            on_output=self._console.lines,
        )
        try:
            session = Session(config)
        except SessionError as exc:
            self._error(f"Cannot start the session: {exc}")
            return None
        self._session = session
        self._console.progress.phase = f"Job '{plan.job.name}'"
        self._console.lines(["Session start", f"Running job '{plan.job.name}'"])
        async with session:
            try:
                await self._run_environments_and_steps(session)
            finally:
                await self._exit_down_to(session, 0)
            self._session = None
            return session.working_directory if plan.preserve else None

    async def _run_environments_and_steps(self, session: Session) -> None:
        plan = self._plan
        for index, env in enumerate(plan.external_environments):
            await self._enter(session, env, f"EXTERNAL - {index}", None, None)
        for index, env in enumerate(plan.job.jobEnvironments or []):
            await self._enter(session, env, f"JOB - {index}", None, None)
        for step_run in plan.steps:
            if self._state.stopping:
                return
            step = step_run.step
            self._console.line(f"Running step '{step.name}'")
            mark = len(self._state.entered)
            for index, env in enumerate(step.stepEnvironments or []):
                await self._enter(session, env, f"STEP - {index}", step.name, step_run.symtab)
            try:
                await self._run_tasks(session, step_run)
            finally:
                await self._exit_down_to(session, mark)

    async def _enter(
        self,
        session: Session,
        env: Environment,
        identifier: str,
        step_name: str | None,
        symtab: SerializedSymbolTable | None,
    ) -> None:
        if self._state.stopping:
            return
        self._console.lines(environment_banner("Entering", env.name))
        self._set_phase(f"Entering environment '{env.name}'", None)
        try:
            result = await session.enter_environment(
                env, identifier=identifier, step_name=step_name, resolved_symtab=symtab
            )
        except SessionError as exc:
            self._error(f"Environment setup failed: {exc}")
            result = None
        if identifier in session.environments_entered:
            self._state.entered.append(_Entered(identifier, env, symtab))
        if result is None:
            return
        if result.state is not ActionState.SUCCESS:
            self._state.failed = True
            self._console.lines(
                [exit_code_line(result.exit_code), f"Environment '{env.name}' {_describe(result)}"]
            )

    async def _exit_down_to(self, session: Session, mark: int) -> None:
        """Exits environments, newest first, until only `mark` of them remain entered."""
        entered = self._state.entered
        while len(entered) > mark:
            item = entered.pop()
            if self._state.aborting:
                continue
            self._console.lines(environment_banner("Exiting", item.environment.name))
            self._set_phase(f"Exiting environment '{item.environment.name}'", None)
            try:
                result = await session.exit_environment(
                    item.identifier, resolved_symtab=item.symtab
                )
            except SessionError as exc:
                self._error(f"Environment teardown failed: {exc}")
                continue
            if result.state is not ActionState.SUCCESS:
                self._state.failed = True
                self._console.line(f"Environment '{item.environment.name}' {_describe(result)}")

    async def _run_tasks(self, session: Session, step_run: StepRun) -> None:
        if self._state.stopping:
            return
        step = step_run.step
        queue = TaskQueue(step, step_run.explicit_tasks, self._plan.maximum_tasks)
        self._set_phase(f"Step '{step.name}'", step.name, queue.total)
        order = list(step.parameterSpace.taskParameterDefinitions) if step.parameterSpace else []
        for task in queue:
            if self._state.stopping:
                return
            self._console.progress.percent = None
            self._console.progress.status = None
            self._console.lines(task_banner() + parameter_lines(task, order))
            started = time.monotonic()
            try:
                result = await session.run_task(
                    step.script, task, step_name=step.name, resolved_symtab=step_run.symtab
                )
            except SessionError as exc:
                self._error(f"Step '{step.name}': {exc}")
                return
            self._state.chunks_run += 1
            self._console.line(exit_code_line(result.exit_code))
            if result.state is not ActionState.SUCCESS:
                self._state.failed = True
                self._console.line(f"Task of step '{step.name}' {_describe(result)}")
                return
            self._console.progress.done += 1
            size = queue.task_done(task, time.monotonic() - started)
            if size is not None:
                self._console.line(f"Adjusting chunk size to {size}")

    def _set_phase(self, phase: str, step: str | None, total: int | None = None) -> None:
        progress = self._console.progress
        progress.phase = phase
        progress.step = step
        progress.done = 0
        progress.total = total
        progress.percent = None
        progress.status = None
        self._console.redraw()

    def _on_status(self, status: ActionStatus) -> None:
        progress = self._console.progress
        if status.progress is not None:
            progress.percent = status.progress
        if status.status_message is not None:
            progress.status = status.status_message
        self._console.redraw()

    def _on_signal(self) -> None:
        self._state.interrupts += 1
        if self._state.interrupts == 1:
            self._console.line("Interruption signal received.")
            self._cancel(None)
        else:
            self._console.line("Second interruption: stopping everything now.")
            self._cancel(timedelta(0))

    def _cancel(self, time_limit: timedelta | None) -> None:
        session = self._session
        if session is None or session.state not in (SessionState.RUNNING, SessionState.CANCELING):
            return
        with contextlib.suppress(SessionError):
            session.cancel_action(time_limit=time_limit)

    def _error(self, message: str) -> None:
        self._state.failed = True
        self._console.error(format_error(message), sys.stderr)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self._console.redraw()


def run_plan(plan: RunPlan, console: Console) -> RunReport:
    return asyncio.run(JobRunner(plan, console).run())
