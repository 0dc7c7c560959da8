"""Builds Session inputs from template snippets and observes real child processes.

Templates go through openjd.model's real decoder and `create_job`, so tests read like templates.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from openjd.model import (
    DocumentType,
    Job,
    ParameterValue,
    RevisionExtensions,
    SpecificationRevision,
    StepParameterSpaceIterator,
    create_job_with_symbol_tables,
    decode_job_template,
    document_string_to_object,
    preprocess_job_parameters,
)
from openjd.model.v2023_09 import Environment, StepScript

from openjd_runtime import ActionState, ActionStatus, Session, SessionState

PYTHON = sys.executable
ALL_EXTENSIONS = ("TASK_CHUNKING", "REDACTED_ENV_VARS", "FEATURE_BUNDLE_1", "EXPR", "WRAP_ACTIONS")

# Every child program starts with these helpers. `mark` writes a file atomically, so a test that
# polls for it never reads a partial value; `say` prints and flushes at once.
CHILD_PRELUDE = """\
import os, signal, sys, time
def mark(path, text=''):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(str(text))
    os.rename(tmp, path)
def say(*parts):
    print(*parts, flush=True)
"""


def py(code: str, *args: str, **action: Any) -> dict[str, Any]:
    """An action running `code` with this interpreter; extra keys (timeout, ...) are copied in.

    `args` are format strings passed as `sys.argv[1:]`.
    """
    return {
        "command": PYTHON,
        "args": ["-c", CHILD_PRELUDE + textwrap.dedent(code), *args],
        **action,
    }


def sh(script: str, **action: Any) -> dict[str, Any]:
    """An action running a /bin/sh script."""
    return {"command": "/bin/sh", "args": ["-c", textwrap.dedent(script)], **action}


def notify_then_terminate(period: int | None = None) -> dict[str, Any]:
    cancelation: dict[str, Any] = {"mode": "NOTIFY_THEN_TERMINATE"}
    if period is not None:
        cancelation["notifyPeriodInSeconds"] = period
    return cancelation


def yaml_template(text: str, **scalars: Any) -> dict[str, Any]:
    """Parses YAML, replacing each scalar spelled `$NAME` by `scalars[NAME]`, so a template can
    name this interpreter or a child program without quoting it."""

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(value) for value in node]
        if isinstance(node, str) and node.startswith("$") and node[1:] in scalars:
            return scalars[node[1:]]
        return node

    return _as_obj(fill(_as_obj(text)))


def _as_obj(snippet: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(snippet, str):
        loaded = document_string_to_object(
            document=textwrap.dedent(snippet), document_type=DocumentType.YAML
        )
        assert isinstance(loaded, dict)
        return loaded
    return dict(snippet)


@dataclass
class BuiltJob:
    """A job created by openjd.model, with what a runtime needs to run it."""

    job: Job
    parameter_values: dict[str, ParameterValue]
    step_symtabs: Mapping[str, Any]

    def tasks(self, step_index: int = 0) -> list[dict[str, ParameterValue]]:
        space = self.job.steps[step_index].parameterSpace
        if space is None:
            return [{}]
        return [dict(t) for t in StepParameterSpaceIterator(space=space)]

    def script(self, step_index: int = 0) -> StepScript:
        script: StepScript = self.job.steps[step_index].script
        return script

    def environment(self, index: int = 0) -> Environment:
        assert self.job.jobEnvironments is not None
        env: Environment = self.job.jobEnvironments[index]
        return env


def build_job(
    template: str | Mapping[str, Any],
    params: Mapping[str, str] | None = None,
    *,
    extensions: Iterable[str] = (),
) -> BuiltJob:
    """Decodes a job template body (specificationVersion and name are added) and creates the job."""
    obj: dict[str, Any] = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "TestJob",
        **_as_obj(template),
    }
    exts = list(extensions)
    if exts:
        obj["extensions"] = exts
    job_template = decode_job_template(template=obj, supported_extensions=ALL_EXTENSIONS)
    values: dict[str, ParameterValue] = preprocess_job_parameters(
        job_template=job_template,
        job_parameter_values=dict(params or {}),
        job_template_dir=Path.cwd(),
        current_working_dir=Path.cwd(),
    )
    created = create_job_with_symbol_tables(job_template=job_template, job_parameter_values=values)
    return BuiltJob(
        job=created.job, parameter_values=values, step_symtabs=created.step_symbol_tables
    )


def step_script(script: str | Mapping[str, Any], *, extensions: Iterable[str] = ()) -> StepScript:
    """The `script` of a one-step job with no parameters."""
    return build_job(
        {"steps": [{"name": "Step", "script": _as_obj(script)}]}, extensions=extensions
    ).script()


def run_script(action: Mapping[str, Any], **script: Any) -> StepScript:
    """A step script whose onRun is `action`; `script` adds keys such as embeddedFiles or let."""
    extensions = script.pop("extensions", ())
    return step_script({"actions": {"onRun": dict(action)}, **script}, extensions=extensions)


def environment(env: str | Mapping[str, Any], *, extensions: Iterable[str] = ()) -> Environment:
    """One job environment of a job with no parameters."""
    body = {
        "jobEnvironments": [_as_obj(env)],
        "steps": [{"name": "Step", "script": {"actions": {"onRun": {"command": "true"}}}}],
    }
    return build_job(body, extensions=extensions).environment()


def env_with(
    name: str,
    on_enter: Mapping[str, Any] | None = None,
    on_exit: Mapping[str, Any] | None = None,
    *,
    extensions: Iterable[str] = (),
    **env: Any,
) -> Environment:
    """An environment with the given onEnter/onExit; `env` adds keys such as variables."""
    actions: dict[str, Any] = {}
    if on_enter is not None:
        actions["onEnter"] = dict(on_enter)
    if on_exit is not None:
        actions["onExit"] = dict(on_exit)
    snippet: dict[str, Any] = {"name": name, **env}
    if actions:
        snippet.setdefault("script", {})["actions"] = actions
    return environment(snippet, extensions=extensions)


def revision(*extensions: str) -> RevisionExtensions:
    return RevisionExtensions(
        spec_rev=SpecificationRevision.v2023_09, supported_extensions=list(extensions)
    )


@dataclass
class Recorder:
    """Collects everything a Session reports through its two callbacks."""

    lines: list[str] = field(default_factory=list)
    statuses: list[ActionStatus] = field(default_factory=list)
    line_hooks: list[Callable[[str], None]] = field(default_factory=list)

    def on_output(self, batch: Sequence[str]) -> None:
        for line in batch:
            self.lines.append(line)
            for hook in self.line_hooks:
                hook(line)

    def callback(self, status: ActionStatus) -> None:
        self.statuses.append(status)

    def take(self) -> list[str]:
        """The lines received since the last call."""
        out = list(self.lines)
        self.lines.clear()
        return out

    def running(self) -> list[ActionStatus]:
        return [s for s in self.statuses if s.state == ActionState.RUNNING]


SessionFactory = Callable[..., Session]


def is_alive(pid: int) -> bool:
    """A zombie counts as dead: it has been killed and only awaits its parent."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_dead(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    """Allows for signal delivery; returns the pids still alive when the wait gives up."""
    pending = list(pids)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        pending = [p for p in pending if is_alive(p)]
        if not pending or loop.time() > deadline:
            return pending
        await asyncio.sleep(0.02)


async def wait_for_file(path: Path, timeout: float = 15.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        if loop.time() > deadline:
            raise AssertionError(f"{path} was never written")
        await asyncio.sleep(0.02)
    return path.read_text()


class Marks:
    """A directory where child processes leave pid and marker files.

    Every pid read through it is SIGKILLed at teardown if still alive, so a failing test leaks
    no sleeping process into the rest of the run.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pids: list[int] = []

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def exists(self, name: str) -> bool:
        return (self.directory / name).exists()

    def read(self, name: str) -> str:
        return (self.directory / name).read_text()

    async def wait(self, name: str, timeout: float = 15.0) -> str:
        return await wait_for_file(self.directory / name, timeout)

    async def pid(self, name: str, timeout: float = 15.0) -> int:
        pid = int(await self.wait(name, timeout))
        self.pids.append(pid)
        return pid

    def kill_leftovers(self) -> None:
        for pid in self.pids:
            if is_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def dead_or_dying(pid: int) -> bool:
    """True once a process is dead or has a SIGKILL pending, which nothing can stop (Linux)."""
    if not is_alive(pid):
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    kill_bit = 1 << (signal.SIGKILL - 1)
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("SigPnd", "ShdPnd") and int(value.strip(), 16) & kill_bit:
            return True
    return False


_SETSID_GRANDCHILD = (
    "import os, sys, time\n"
    "os.setsid()\n"
    "open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()))\n"
    "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "time.sleep(120)\n"
)

_TREE = """
import subprocess
setsid_path, daemon_path, ready_path, mode = sys.argv[1:5]
quiet = subprocess.DEVNULL
subprocess.Popen([sys.executable, '-c', sys.argv[5], setsid_path],
                 stdin=quiet, stdout=quiet, stderr=quiet)
first = os.fork()
if first == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        mark(daemon_path, os.getpid())
        time.sleep(120)
    os._exit(0)
os.waitpid(first, 0)
while not (os.path.exists(setsid_path) and os.path.exists(daemon_path)):
    time.sleep(0.01)
mark(ready_path, os.getpid())
if mode == 'stay':
    time.sleep(120)
"""


def escaping_tree(marks: Marks, *, stay: bool, **action: Any) -> dict[str, Any]:
    """A child that starts a grandchild calling setsid() and a double-forked daemon, writes the
    pid files `setsid`, `daemon` and (its own) `ready`, then idles if `stay`, else exits 0."""
    return py(
        _TREE,
        marks.path("setsid"),
        marks.path("daemon"),
        marks.path("ready"),
        "stay" if stay else "leave",
        _SETSID_GRANDCHILD,
        **action,
    )


async def tree_pids(marks: Marks) -> list[int]:
    """The pids of an `escaping_tree`: the child, the setsid grandchild and the daemon."""
    return [await marks.pid(name) for name in ("ready", "setsid", "daemon")]


def state(session: Session) -> SessionState:
    """The session's state, read afresh: mypy keeps a plain attribute narrowed by earlier asserts,
    although each awaited action changes it."""
    return session.state


def entered(session: Session) -> tuple[str, ...]:
    """The identifiers entered, oldest first, read afresh (see `state`)."""
    return tuple(session.environments_entered)
