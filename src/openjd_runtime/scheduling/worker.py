"""One worker: a Session at a time, its environments entered once, then task after task.

The worker asks its coordinator for work and reports what happens; it does not know whether the
coordinator is in the same process or across a cluster. `ojd run` with one worker is this loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from openjd.expr import SerializedSymbolTable
from openjd.model.v2023_09 import Environment

from ..errors import SessionError
from ..jobs import JobRunSpec, StepRun
from ..session import Session, SessionConfig
from ..state import ActionResult, ActionState, ActionStatus, SessionState
from .events import SessionFailed, TaskDropped, WorkerEvent
from .records import (
    ActionKind,
    ActionRef,
    ActionStarted,
    SessionStarted,
    TaskRef,
    WorkerOutput,
    WorkerStatus,
)


class Link(Protocol):
    """The worker's way to its coordinator."""

    async def next_task(self, worker: int, current_step: str | None) -> TaskRef | None:
        """The next task to run, or None when this worker is done."""

    def report(self, event: WorkerEvent) -> None: ...


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
                    self._link.report(TaskDropped(self.index, task))
        except BaseException:
            self._aborting = True
            raise
        finally:
            await self._end_session()

    def stop(self) -> None:
        """Start no new action; cancel a running task or onEnter with its declared method. The
        run stops for a failure elsewhere, so a running onExit finishes its cleanup."""
        self._stopping = True
        if self._running is not None and self._running.kind is not ActionKind.EXIT:
            self._cancel_action(None)

    def cancel(self) -> None:
        """Start no new action; cancel the running one, whatever it is, with its declared method.
        The run was canceled from outside; the remaining onExits still run."""
        self._stopping = True
        if self._running is not None:
            self._cancel_action(None)

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
        if self._stopping:
            return False
        try:
            session = self._open_session()
        except SessionError as exc:
            self._stopping = True
            message = f"Worker {self.index} cannot start a session: {exc}"
            self._link.report(SessionFailed(self.index, message))
            return False
        directory = str(session.working_directory)
        self._link.report(SessionStarted(self.index, session.session_id, directory))
        spec = self._spec
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

    def _open_session(self) -> Session:
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
        return self._session

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
        call = session.enter_environment(
            env, identifier=identifier, step_name=step, resolved_symtab=symtab
        )
        result = await self._act(action, call)
        if identifier in session.environments_entered:
            self._entered.append(_Entered(identifier, env, step, symtab))
        return result.state is ActionState.SUCCESS

    async def _run_task(self, task: TaskRef) -> None:
        session = self._session
        if self._stopping or session is None:
            self._link.report(TaskDropped(self.index, task))
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

    async def _act(
        self, action: ActionRef, call: Coroutine[Any, Any, ActionResult]
    ) -> ActionResult:
        """Runs one action; misuse of the session counts as the action failing."""
        self._link.report(ActionStarted(self.index, action))
        self._running = action
        try:
            result = await call
        except SessionError as exc:
            result = ActionResult(state=ActionState.FAILED, fail_message=str(exc))
        finally:
            self._running = None
        self._link.report(WorkerStatus(self.index, action, result))
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
            self._link.report(WorkerOutput(self.index, self._running, tuple(lines)))

    def _on_status(self, status: ActionStatus) -> None:
        if self._running is not None and status.state is ActionState.RUNNING:
            self._link.report(WorkerStatus(self.index, self._running, status))
