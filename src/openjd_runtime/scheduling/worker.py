"""One worker: a Session at a time, its environments entered once, then task after task.

The worker asks its coordinator for work and reports what happens; it does not know whether the
coordinator is in the same process or across a cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from openjd.expr import SerializedSymbolTable
from openjd.model.v2023_09 import Environment

from ..cli.plan import StepRun
from ..errors import SessionError
from ..session import Session, SessionConfig
from ..state import ActionResult, ActionState, ActionStatus, SessionState
from .events import Dropped, Ended, Output, Progress, WorkerEvent
from .records import ActionKind, ActionRef, JobRunSpec, TaskRef


class Link(Protocol):
    """The worker's way to its coordinator."""

    async def next_task(self, worker: int, current_step: str | None) -> TaskRef | None:
        """The next task to run, or None when this worker is done."""

    def report(self, worker: int, event: WorkerEvent) -> None: ...


@dataclass
class _Entered:
    identifier: str
    environment: Environment
    step: str | None
    symtab: SerializedSymbolTable | None


class Worker:
    """Runs the tasks its link hands it, switching step environments only when the step changes."""

    def __init__(self, index: int, spec: JobRunSpec, link: Link, *, session_prefix: str) -> None:
        self.index = index
        self._spec = spec
        self._link = link
        self._steps: dict[str, StepRun] = {run.step.name: run for run in spec.steps}
        self._prefix = session_prefix
        self._sessions = 0
        self._session: Session | None = None
        self._entered: list[_Entered] = []
        self._job_depth = 0
        self._step: str | None = None
        """The step whose environments are entered (or, having none, whose tasks ran last)."""
        self._running: ActionRef | None = None
        self._stopping = False
        self._aborting = False

    async def run(self) -> None:
        try:
            while not self._stopping:
                task = await self._link.next_task(self.index, self._step)
                if task is None:
                    break
                if await self._set_up_for(task.step):
                    await self._run_task(task)
                else:
                    self._link.report(self.index, Dropped(task))
        except BaseException:
            self._aborting = True
            raise
        finally:
            await self._end_session()

    def cancel(self, time_limit: timedelta | None = None) -> None:
        """Start no new action; cancel a running task or onEnter with its declared method."""
        self._stopping = True
        if self._running is not None and self._running.kind is not ActionKind.EXIT:
            self._cancel_action(time_limit)

    def abort(self) -> None:
        """Kill the running action now, whatever it is, and skip the remaining onExits."""
        self._stopping = self._aborting = True
        if self._running is not None:
            self._cancel_action(timedelta(0))

    def _cancel_action(self, time_limit: timedelta | None) -> None:
        if self._session is not None:
            with contextlib.suppress(SessionError):
                self._session.cancel_action(time_limit=time_limit)

    async def _set_up_for(self, step_name: str) -> bool:
        """Make the session ready for a task of `step_name`; False if it cannot be."""
        if self._session is not None and self._step != step_name:
            await self._exit_down_to(self._job_depth)
        if self._session is not None and self._session.state is not SessionState.READY:
            await self._end_session()
        if self._session is None and not await self._start_session():
            await self._end_session()
            return False
        if self._step == step_name:
            return True
        self._step = step_name
        run = self._steps[step_name]
        for index, env in enumerate(run.step.stepEnvironments or []):
            if not await self._enter(env, f"STEP - {index}", step_name, run.symtab):
                await self._end_session()
                return False
        return True

    async def _start_session(self) -> bool:
        self._sessions += 1
        spec = self._spec
        self._session = Session(
            SessionConfig(
                session_id=f"{self._prefix}-worker{self.index}-{self._sessions}",
                job_parameter_values=spec.job_parameter_values,
                path_mapping_rules=spec.path_mapping_rules,
                retain_working_dir=spec.retain_working_dirs,
                session_root_directory=spec.session_root_directory,
                os_env_vars=spec.os_env_vars,
                revision_extensions=spec.revision_extensions,
                job_name=spec.job.name,
                callback=self._on_status,
                on_output=self._on_output,
            )
        )
        layers: list[tuple[str, Sequence[Environment]]] = [
            ("EXTERNAL", spec.external_environments),
            ("JOB", spec.job.jobEnvironments or []),
        ]
        for label, environments in layers:
            for index, env in enumerate(environments):
                if not await self._enter(env, f"{label} - {index}", None, None):
                    return False
        self._job_depth = len(self._entered)
        return True

    async def _enter(
        self,
        env: Environment,
        identifier: str,
        step: str | None,
        symtab: SerializedSymbolTable | None,
    ) -> bool:
        session = self._session
        if self._stopping or session is None:
            return False
        action = ActionRef(ActionKind.ENTER, step, environment=env.name)
        try:
            call = session.enter_environment(
                env, identifier=identifier, step_name=step, resolved_symtab=symtab
            )
            result = await self._act(action, call)
        except SessionError as exc:
            result = ActionResult(state=ActionState.FAILED, fail_message=str(exc))
            self._link.report(self.index, Ended(action, result))
        if identifier in session.environments_entered:
            self._entered.append(_Entered(identifier, env, step, symtab))
        return result.state is ActionState.SUCCESS

    async def _run_task(self, task: TaskRef) -> None:
        session = self._session
        if self._stopping or session is None:
            self._link.report(self.index, Dropped(task))
            return
        run = self._steps[task.step]
        call = session.run_task(
            run.step.script,
            dict(task.parameters),
            step_name=task.step,
            resolved_symtab=run.symtab,
        )
        result = await self._act(ActionRef(ActionKind.RUN, task.step, task=task), call)
        if result.state is not ActionState.SUCCESS:
            await self._end_session()

    async def _act(self, action: ActionRef, call: Awaitable[ActionResult]) -> ActionResult:
        self._running = action
        try:
            result = await call
        finally:
            self._running = None
        self._link.report(self.index, Ended(action, result))
        return result

    async def _exit_down_to(self, depth: int) -> None:
        """Exit environments, newest first, until `depth` of them remain; at job depth, the
        worker is no longer set up for any step."""
        session = self._session
        while session is not None and len(self._entered) > depth:
            entry = self._entered.pop()
            if self._aborting:
                continue
            action = ActionRef(ActionKind.EXIT, entry.step, environment=entry.environment.name)
            call = session.exit_environment(entry.identifier, resolved_symtab=entry.symtab)
            await self._act(action, call)
        if len(self._entered) <= self._job_depth:
            self._step = None

    async def _end_session(self) -> None:
        session = self._session
        if session is None:
            return
        try:
            await self._exit_down_to(0)
        finally:
            self._session = None
            self._entered.clear()
            self._job_depth = 0
            self._step = None
            await session.cleanup()

    def _on_output(self, lines: Sequence[str]) -> None:
        if self._running is not None:
            self._link.report(self.index, Output(self._running, tuple(lines)))

    def _on_status(self, status: ActionStatus) -> None:
        if self._running is not None and status.state is ActionState.RUNNING:
            self._link.report(self.index, Progress(self._running, status))
