"""The Session: where the tasks of one job run on one host.

It enters environments in order, runs tasks, and exits the environments in reverse order. Each
action is prepared (symbols, files, command), run as a process tree, and reported as one
`ActionResult`. Output handling lives in `messages`, process handling in `process`.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shlex
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from openjd.model import ParameterValue, RevisionExtensions, SymbolTable

from . import proctree
from .actions import (
    ENV_NOTIFY_PERIOD,
    ON_EXIT_TIMEOUT,
    TASK_NOTIFY_PERIOD,
    ActionSetupError,
    ResolvedAction,
    apply_let,
    resolve_action,
)
from .errors import (
    DuplicateEnvironmentError,
    LifoViolationError,
    MultipleWrapEnvironmentsError,
    UnknownEnvironmentError,
    UnsupportedPlatformError,
)
from .files import (
    EmbeddedFileError,
    PathMappingFile,
    allocate_file_paths,
    create_working_directory,
    write_embedded_file,
)
from .log import LogContent, SessionLogger
from .messages import (
    CancelMarkFailed,
    Fail,
    LogLevel,
    Message,
    OutputFilter,
    Progress,
    RedactedEnv,
    Redactor,
    SetEnv,
    Status,
    UnsetEnv,
)
from .process import (
    ActionHandle,
    Launcher,
    LaunchError,
    LaunchSpec,
    LocalLauncher,
    ProcessOutcome,
)
from .state import ActionResult, ActionState, ActionStatus, Lifecycle, SessionState
from .symbols import (
    add_file_symbols,
    add_path_mapping_symbols,
    deserialize_base,
    session_symbols,
)
from .users import PosixSessionUser, SudoLauncher

EnvChanges = dict[str, str | None]
"""Variable changes of one environment; None unsets the variable."""

_WRAP_HOOKS = ("onWrapEnvEnter", "onWrapTaskRun", "onWrapEnvExit")


@dataclass(kw_only=True)
class SessionConfig:
    session_id: str
    job_parameter_values: Mapping[str, ParameterValue] = field(default_factory=dict)
    path_mapping_rules: Sequence[Any] = ()
    retain_working_dir: bool = False
    session_root_directory: Path | None = None
    os_env_vars: Mapping[str, str | None] = field(default_factory=dict)
    revision_extensions: RevisionExtensions | None = None
    job_name: str | None = None
    callback: Callable[[ActionStatus], None] | None = None
    on_output: Callable[[Sequence[str]], None] | None = None
    user: PosixSessionUser | None = None
    """Run every action as this user, through `sudo`; None runs them as the session's user."""


@dataclass
class _Environment:
    """An entered environment: what it declared, and what its onEnter exported."""

    identifier: str
    model: Any
    step_name: str | None
    base: dict[str, Any] | None
    changes: EnvChanges = field(default_factory=dict)
    file_paths: dict[str, Path] | None = None
    """A wrapping environment's file paths, chosen once and reused by every hook run."""


@dataclass
class _Plan:
    """One action to run, with what it needs besides itself: its scope, files and lets."""

    action: Any
    symtab: SymbolTable
    script: Any
    file_prefix: str
    default_timeout: int | None
    default_period: int
    hook: str
    """The wrap hook that runs instead of this action when a wrapping environment is entered."""
    wrapped_name: tuple[str, str]
    """The `WrappedEnv.Name` or `WrappedStep.Name` symbol given to that hook."""


def _rule_depth(rule: Any) -> int:
    return len([p for p in re.split(r"[\\/]+", str(rule.source_path)) if p])


def _extensions(revision: RevisionExtensions | None) -> set[str]:
    if revision is None:
        return set()
    return {str(getattr(e, "value", e)) for e in revision.extensions}


class Session:
    """Runs the actions of one job on this host, one at a time."""

    def __init__(self, config: SessionConfig) -> None:
        if os.name == "nt":
            raise UnsupportedPlatformError("Sessions are not supported on Windows yet.")
        self._config = config
        self._log = SessionLogger(config.session_id)
        self._rules = sorted(config.path_mapping_rules, key=_rule_depth, reverse=True)
        self._redactor = Redactor()
        self._redactions_enabled = "REDACTED_ENV_VARS" in _extensions(config.revision_extensions)
        self._token = secrets.token_hex(8)
        self._action_seq = 0
        self._entered: list[_Environment] = []
        self._session_variables: dict[str, str] = {}
        """Every variable declared or exported so far; wrap hooks see it."""
        self._process: ActionHandle | None = None
        self._status: ActionStatus | None = None
        self._last_base: tuple[Any, dict[str, Any]] | None = None
        self._launcher: Launcher = LocalLauncher()
        self._group: int | None = None
        """The group sharing the session's files with a job user."""
        if config.user is not None:
            launcher = SudoLauncher(config.user)
            self._launcher, self._group = launcher, launcher.group_id
        self._working_directory, self._files_directory = create_working_directory(
            config.session_id, config.session_root_directory, self._group
        )
        self._rules_file = PathMappingFile(self._working_directory, self._rules, self._group)
        self._lifecycle = Lifecycle()
        self._log.info(
            f"Session Working Directory: {self._working_directory}", LogContent.FILE_PATH
        )

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.cleanup()

    @property
    def session_id(self) -> str:
        return self._config.session_id

    @property
    def state(self) -> SessionState:
        return self._lifecycle.state

    @property
    def action_status(self) -> ActionStatus | None:
        return self._status

    @property
    def working_directory(self) -> Path:
        return self._working_directory

    @property
    def files_directory(self) -> Path:
        return self._files_directory

    @property
    def environments_entered(self) -> tuple[str, ...]:
        return tuple(e.identifier for e in self._entered)

    async def enter_environment(
        self,
        environment: Any,
        *,
        identifier: str | None = None,
        step_name: str | None = None,
        resolved_symtab: Any = None,
        os_env_vars: Mapping[str, str | None] | None = None,
    ) -> ActionResult:
        """Enter an environment and run its onEnter. A failed onEnter leaves it entered."""
        self._lifecycle.check("enter_environment")
        identifier = identifier or f"{self.session_id}:{uuid.uuid4().hex}"
        if identifier in self.environments_entered:
            raise DuplicateEnvironmentError(
                f"Environment {identifier!r} has already been entered in this session."
            )
        if _wrap_hooks(environment) and self._wrap_environment() is not None:
            raise MultipleWrapEnvironmentsError(
                "A session may have at most one entered environment defining wrap hooks "
                f"(onWrapEnvEnter, onWrapTaskRun, onWrapEnvExit); {environment.name!r} is a second."
            )
        base = self._base(resolved_symtab)
        entry = _Environment(identifier, environment, step_name, base)
        self._entered.append(entry)
        self._log.banner(f"Entering Environment: {environment.name}")
        symtab = self._symbols(entry.base, step_name=step_name)
        try:
            for name, value in (environment.variables or {}).items():
                resolved = value.resolve(symtab=symtab)
                entry.changes[name] = self._session_variables[name] = resolved
                self._log.info(f"Setting: {name}={self._redactor.redact(resolved)}")
        except ValueError as exc:
            return self._fail_before_start(f"Environment variable could not be resolved: {exc}")
        script = environment.script
        action = script.actions.onEnter if script is not None else None
        if action is None:
            return self._instant_success()
        plan = _Plan(
            action,
            symtab,
            script,
            "Env.File",
            default_timeout=None,
            default_period=ENV_NOTIFY_PERIOD,
            hook="onWrapEnvEnter",
            wrapped_name=("WrappedEnv.Name", environment.name),
        )
        return await self._run_action(
            plan, self._env_vars(os_env_vars), self._wrapper(entry), exports_to=entry
        )

    async def exit_environment(
        self,
        identifier: str,
        *,
        resolved_symtab: Any = None,
        os_env_vars: Mapping[str, str | None] | None = None,
    ) -> ActionResult:
        """Exit the most recently entered environment and run its onExit."""
        self._lifecycle.check("exit_environment")
        if identifier not in self.environments_entered:
            raise UnknownEnvironmentError(f"Environment {identifier!r} has not been entered.")
        entry = self._entered[-1]
        if entry.identifier != identifier:
            raise LifoViolationError(
                "Environments must be exited in reverse order of entry: expected "
                f"{entry.identifier!r}, got {identifier!r}."
            )
        base = self._base(resolved_symtab) if resolved_symtab is not None else entry.base
        symtab = self._symbols(base, step_name=entry.step_name)
        env_vars = self._env_vars(os_env_vars)
        wrapper = self._wrapper(entry)
        self._entered.pop()
        self._log.banner(f"Exiting Environment: {entry.model.name}")
        script = entry.model.script
        action = script.actions.onExit if script is not None else None
        if action is None:
            return self._instant_success()
        plan = _Plan(
            action,
            symtab,
            script,
            "Env.File",
            default_timeout=ON_EXIT_TIMEOUT,
            default_period=ENV_NOTIFY_PERIOD,
            hook="onWrapEnvExit",
            wrapped_name=("WrappedEnv.Name", entry.model.name),
        )
        return await self._run_action(plan, env_vars, wrapper)

    async def run_task(
        self,
        step_script: Any,
        task_parameter_values: Mapping[str, ParameterValue] | None = None,
        *,
        step_name: str | None = None,
        resolved_symtab: Any = None,
        os_env_vars: Mapping[str, str | None] | None = None,
    ) -> ActionResult:
        """Run one task of a step."""
        self._lifecycle.check("run_task")
        self._log.banner("Running Task")
        if task_parameter_values:
            self._log.info("Parameter values:", LogContent.PARAMETER_INFO)
            for name, value in task_parameter_values.items():
                self._log.info(
                    f"{name}({value.type.value}) = {value.value}", LogContent.PARAMETER_INFO
                )
        base = self._base(resolved_symtab)
        symtab = self._symbols(base, task_parameter_values, step_name=step_name)
        plan = _Plan(
            step_script.actions.onRun,
            symtab,
            step_script,
            "Task.File",
            default_timeout=None,
            default_period=TASK_NOTIFY_PERIOD,
            hook="onWrapTaskRun",
            wrapped_name=("WrappedStep.Name", step_name or ""),
        )
        return await self._run_action(plan, self._env_vars(os_env_vars), self._wrapper(None))

    def cancel_action(
        self, time_limit: timedelta | None = None, mark_action_failed: bool = False
    ) -> None:
        """Cancel the running action with its declared method; `time_limit` can only shorten it."""
        self._lifecycle.check("cancel_action")
        self._lifecycle.cancel()
        if self._process is not None:
            self._process.cancel(time_limit, mark_failed=mark_action_failed)

    async def cleanup(self) -> None:
        """End the session: kill every process it started and remove its files unless retained."""
        if self.state == SessionState.ENDED and self._process is None:
            return
        if self._process is not None:
            self._process.cancel(timedelta(0))
        self._lifecycle.end()
        retain = self._config.retain_working_dir
        if not retain:
            self._log.info(
                f"Deleting working directory: {self._working_directory}", LogContent.FILE_PATH
            )
        await self._launcher.cleanup(f"{self._token}-", None if retain else self._working_directory)

    def _wrap_environment(self) -> _Environment | None:
        return next((e for e in self._entered if _wrap_hooks(e.model)), None)

    def _wrapper(self, entry: _Environment | None) -> _Environment | None:
        """The environment whose hooks wrap this action; never an environment's own actions."""
        wrapper = self._wrap_environment()
        return wrapper if wrapper is not entry else None

    def _symbols(
        self,
        base: Mapping[str, Any] | None,
        task_parameters: Mapping[str, ParameterValue] | None = None,
        *,
        step_name: str | None,
    ) -> SymbolTable:
        return session_symbols(
            working_directory=self._working_directory,
            job_parameters=self._config.job_parameter_values,
            rules=self._rules,
            host_rules=list(self._rules),
            job_name=self._config.job_name,
            base=base,
            task_parameters=task_parameters,
            step_name=step_name,
        )

    def _base(self, resolved_symtab: Any) -> dict[str, Any] | None:
        """The flattened `resolved_symtab`; the last one is kept, as a step's tasks share theirs."""
        if resolved_symtab is None:
            return None
        if self._last_base is None or self._last_base[0] is not resolved_symtab:
            self._last_base = (resolved_symtab, deserialize_base(resolved_symtab))
        return self._last_base[1]

    def _env_vars(self, per_call: Mapping[str, str | None] | None) -> dict[str, str]:
        """The launcher's base (the host's, or the job user's), then the session's variables,
        then each entered environment's, oldest first."""
        env = self._launcher.environment()
        layers: list[Mapping[str, str | None]] = [
            self._config.os_env_vars,
            {"OPENJD_SESSION_WORKING_DIR": str(self._working_directory)},
            per_call or {},
            *(e.changes for e in self._entered),
        ]
        for layer in layers:
            for name, value in layer.items():
                if value is None:
                    env.pop(name, None)
                else:
                    env[name] = value
        return env

    def _begin(self) -> None:
        self._lifecycle.start_action()
        self._status = ActionStatus(ActionState.RUNNING, started_at=datetime.now(timezone.utc))
        self._notify()

    def _notify(self) -> None:
        if self._config.callback is not None and self._status is not None:
            self._config.callback(self._status)

    def _finish(self, state: ActionState, exit_code: int | None = None) -> ActionResult:
        assert self._status is not None
        status = self._status
        result = ActionResult(
            state=state,
            exit_code=exit_code,
            fail_message=status.fail_message,
            status_message=status.status_message,
            progress=status.progress,
            started_at=status.started_at,
            ended_at=datetime.now(timezone.utc),
        )
        self._status = result
        self._process = None
        self._lifecycle.finish_action(state)
        self._notify()
        return result

    def _instant_success(self) -> ActionResult:
        self._begin()
        return self._finish(ActionState.SUCCESS)

    def _fail_before_start(self, message: str) -> ActionResult:
        self._log.error(message, LogContent.EXCEPTION_INFO)
        if self._status is None or self._status.state != ActionState.RUNNING:
            self._begin()
        assert self._status is not None
        self._status = replace(self._status, fail_message=message)
        return self._finish(ActionState.FAILED)

    def _write_files(
        self, script: Any, prefix: str, symtab: SymbolTable, paths: dict[str, Path] | None = None
    ) -> dict[str, Path]:
        """Allocate the script's file paths, evaluate its lets, then write the files' data.

        Paths come first because the data and the lets may name any of the files.
        """
        files = script.embeddedFiles or ()
        if paths is None:
            paths = allocate_file_paths(files, self._files_directory)
        add_file_symbols(symtab, prefix, paths)
        apply_let(symtab, script.let)
        for file in files:
            data = file.data.resolve(symtab=symtab)
            eol = file.endOfLine.value if file.endOfLine is not None else None
            write_embedded_file(
                paths[file.name],
                data,
                runnable=bool(file.runnable),
                end_of_line=eol,
                group=self._group,
            )
            self._log.info(f"Wrote: {file.name} -> {paths[file.name]}", LogContent.FILE_PATH)
        return paths

    def _prepare(self, plan: _Plan, wrapper: _Environment | None) -> ResolvedAction:
        """Write the action's files and resolve its command, or its wrapper's hook around it."""
        try:
            rules_file = self._rules_file.ensure()
            add_path_mapping_symbols(plan.symtab, bool(self._rules), rules_file)
            self._write_files(plan.script, plan.file_prefix, plan.symtab)
            resolved = resolve_action(plan.action, plan.symtab, default_period=plan.default_period)
            if wrapper is None:
                return resolved.with_default_timeout(plan.default_timeout)
            hook_symtab = self._symbols(wrapper.base, step_name=wrapper.step_name)
            add_path_mapping_symbols(hook_symtab, bool(self._rules), rules_file)
            hook_symtab["WrappedAction.Command"] = resolved.argv[0]
            hook_symtab["WrappedAction.Args"] = resolved.argv[1:]
            hook_symtab["WrappedAction.Environment"] = [
                f"{k}={v}" for k, v in self._session_variables.items()
            ]
            hook_symtab["WrappedAction.Timeout"] = resolved.timeout
            hook_symtab["WrappedAction.Cancelation.Mode"] = resolved.cancel_mode
            hook_symtab["WrappedAction.Cancelation.NotifyPeriodInSeconds"] = resolved.notify_period
            hook_symtab[plan.wrapped_name[0]] = plan.wrapped_name[1]
            wrapper.file_paths = self._write_files(
                wrapper.model.script, "Env.File", hook_symtab, wrapper.file_paths
            )
            hook = resolve_action(
                getattr(wrapper.model.script.actions, plan.hook),
                hook_symtab,
                default_period=TASK_NOTIFY_PERIOD
                if plan.hook == "onWrapTaskRun"
                else ENV_NOTIFY_PERIOD,
            )
            return hook.with_default_timeout(plan.default_timeout)
        except (EmbeddedFileError, ValueError, OSError) as exc:
            raise ActionSetupError(str(exc)) from exc

    async def _run_action(
        self,
        plan: _Plan,
        env_vars: dict[str, str],
        wrapper: _Environment | None,
        *,
        exports_to: _Environment | None = None,
    ) -> ActionResult:
        self._begin()
        try:
            resolved = self._prepare(plan, wrapper)
        except ActionSetupError as exc:
            return self._fail_before_start(str(exc))
        self._log.info(
            f"Running command {self._redact_command(shlex.join(resolved.argv))}",
            LogContent.PROCESS_CONTROL,
        )
        spec = LaunchSpec(
            argv=resolved.argv,
            env=env_vars,
            cwd=self._working_directory,
            timeout=resolved.timeout,
            cancel=resolved.cancel_method,
        )
        output = OutputFilter(self._redactor, redactions_enabled=self._redactions_enabled)
        self._action_seq += 1
        process = self._launcher.create(
            spec,
            marker=proctree.marker_value(self._token, self._action_seq),
            on_output=lambda data: self._handle_output(*output.feed(data), exports_to),
            on_event=lambda text: self._log.info(text, LogContent.PROCESS_CONTROL),
        )
        self._process = process
        try:
            outcome = await process.run()
        except LaunchError as exc:
            self._process = None
            return self._fail_before_start(str(exc))
        except asyncio.CancelledError:
            self._finish(ActionState.CANCELED)
            raise
        finally:
            self._handle_output(*output.close(), exports_to)
        return self._conclude(outcome)

    def _conclude(self, outcome: ProcessOutcome) -> ActionResult:
        assert self._status is not None
        code = outcome.exit_code
        shown = code if code is not None else -1
        self._log.info(f"Process exited with code: {shown}", LogContent.PROCESS_CONTROL)
        if outcome.timed_out:
            state = ActionState.TIMEOUT
        elif outcome.canceled:
            state = ActionState.FAILED if outcome.mark_failed else ActionState.CANCELED
        elif self._saw_fail or code != 0:
            state = ActionState.FAILED
        else:
            state = ActionState.SUCCESS
        return self._finish(state, code)

    @property
    def _saw_fail(self) -> bool:
        return self._status is not None and self._status.fail_message is not None

    def _handle_output(
        self, lines: list[str], messages: list[Message], exports_to: _Environment | None
    ) -> None:
        if lines and self._config.on_output is not None:
            self._config.on_output(lines)
        for message in messages:
            self._apply(message, exports_to)

    def _apply(self, message: Message, exports_to: _Environment | None) -> None:
        assert self._status is not None
        if isinstance(message, Progress):
            self._status = replace(self._status, progress=message.value)
        elif isinstance(message, Status):
            self._status = replace(self._status, status_message=message.message)
        elif isinstance(message, Fail):
            self._status = replace(self._status, fail_message=message.message)
        elif isinstance(message, CancelMarkFailed):
            self._status = replace(self._status, fail_message=message.message)
            if self._process is not None:
                self._process.cancel(None, mark_failed=True)
            return
        elif isinstance(message, (SetEnv, RedactedEnv)):
            self._session_variables[message.name] = message.value
            if exports_to is not None:
                exports_to.changes[message.name] = message.value
            return
        elif isinstance(message, UnsetEnv):
            if exports_to is not None:
                exports_to.changes[message.name] = None
            return
        elif isinstance(message, LogLevel):
            self._log.level = message.level
            return
        self._notify()

    def _redact_command(self, text: str) -> str:
        head, marker, _ = text.partition("openjd_redacted_env:")
        return self._redactor.redact(head + marker + (" ********" if marker else ""))


def _wrap_hooks(environment: Any) -> bool:
    script = getattr(environment, "script", None)
    actions = getattr(script, "actions", None)
    return any(getattr(actions, hook, None) is not None for hook in _WRAP_HOOKS)
