"""Running a session's actions as another POSIX user, through one `sudo` per session.

Starting a process through `sudo` can cost a second on hosts with heavy PAM stacks, so a session
starts one helper (`userhelper`) as the job user, once, and sends it every action over a pipe.
It is started with `sudo -n -u USER -- /bin/sh -c <pick a python> ... <python> -I -S -c <loader>`,
not with `sudo -i`: a login shell would add its own start-up cost, and whatever a profile prints
would land in the middle of the protocol. `-n` makes sudo fail at once instead of asking for a
password. The agent's environment does not reach the job: sudo gets a minimal one, and the
environment an action sees is built here from the job user's account (`job_environment`) plus
the session's variables, sent over the pipe with the request, never on a command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import pwd
import secrets
import shutil
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import proctree, userhelper
from .errors import SessionError
from .files import remove_tree, write_cancel_info
from .process import (
    DRAIN_GRACE,
    ActionHandle,
    CancelableAction,
    Cancelation,
    CancelStep,
    LaunchError,
    LaunchSpec,
    ProcessOutcome,
)

START_TIMEOUT = 60.0
"""Seconds to wait for `sudo` to start the helper."""
CLEANUP_TIMEOUT = 30.0
EXIT_TIMEOUT = 5.0
"""Seconds to wait for the helper, or an abandoned action, to finish before moving on."""
STDERR_KEPT = 8192

JOB_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""An action's PATH before the session's variables: Debian's sudo `secure_path`."""
_KEPT_VARIABLES = ("LANG", "LANGUAGE", "TZ", "TERM")
_SUDO_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
"""`sudo` runs with this environment only; LC_ALL=C keeps its messages recognizable."""

# Runs as the job user: reads the helper program (its length as 10 digits, then its text) from
# stdin and runs it. Only this short loader appears on the command line.
HELPER_BOOT = """\
import os
def read(n):
    data = b''
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            raise SystemExit(3)
        data += chunk
    return data
exec(compile(read(int(read(10))), '<openjd-userhelper>', 'exec'))
"""

# Starts the first of the given interpreters the job user can run.
_TRAMPOLINE = """\
boot=$1
shift
for python do
    if [ -x "$python" ]; then exec "$python" -I -S -c "$boot"; fi
done
echo "no Python interpreter that $(id -un) can run among: $*" >&2
exit 127
"""

# Installs the helper's modules as a package of the same name as ours, so their relative
# imports work, then serves. `MODULES` is prepended as a list of (name, source).
_LOADER = """\
import sys, types
package = types.ModuleType("openjd_runtime")
package.__path__ = []
sys.modules["openjd_runtime"] = package
for name, source in MODULES:
    module = types.ModuleType("openjd_runtime." + name)
    module.__package__ = "openjd_runtime"
    sys.modules[module.__name__] = module
    exec(compile(source, name + ".py", "exec"), module.__dict__)
module.main()
"""


class UserSetupError(SessionError):
    """The session cannot run actions as the configured user."""


@dataclass(frozen=True)
class PosixSessionUser:
    """The POSIX user a session's actions run as, through `sudo`.

    `group` is a group both the agent and `user` belong to; the session's files are shared
    through it. It defaults to the agent's primary group.
    """

    user: str
    group: str | None = None


@dataclass(frozen=True)
class JobAccount:
    user: str
    uid: int
    home: str
    shell: str
    gid: int
    """The shared group's id."""


def resolve_account(user: PosixSessionUser) -> JobAccount:
    """Check that the user and the group exist and that the user is in the group."""
    try:
        entry = pwd.getpwnam(user.user)
    except KeyError:
        raise UserSetupError(f"User '{user.user}' does not exist on this host.") from None
    if user.group is None:
        gid = os.getegid()
        group_name = _group_name(gid)
    else:
        try:
            gid = grp.getgrnam(user.group).gr_gid
        except KeyError:
            raise UserSetupError(f"Group '{user.group}' does not exist on this host.") from None
        group_name = user.group
    if os.geteuid() != 0 and gid != os.getegid() and gid not in os.getgroups():
        raise UserSetupError(
            f"This process is not in group '{group_name}', so it cannot share the session's "
            "files through it (a user added to a group must log in again to get it)."
        )
    if gid not in os.getgrouplist(entry.pw_name, entry.pw_gid):
        raise UserSetupError(
            f"User '{user.user}' is not a member of group '{group_name}', through which the "
            "session shares its files with the user; add the user to the group or pick "
            "another group."
        )
    return JobAccount(entry.pw_name, entry.pw_uid, entry.pw_dir, entry.pw_shell, gid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def job_environment(account: JobAccount, agent_env: Mapping[str, str]) -> dict[str, str]:
    """What an action starts from: the job user's identity, a standard PATH, the agent's locale.

    Nothing else of the agent's environment is passed on, since it may hold the agent's secrets.
    """
    env = {
        "HOME": account.home,
        "USER": account.user,
        "LOGNAME": account.user,
        "SHELL": account.shell or "/bin/sh",
        "PATH": JOB_PATH,
    }
    for name, value in agent_env.items():
        if name in _KEPT_VARIABLES or name.startswith("LC_"):
            env[name] = value
    return env


def describe_start_failure(user: str, returncode: int | None, stderr: str) -> str:
    """Turn what `sudo` or the helper said on its way out into advice."""
    said = stderr.strip()
    if "password is required" in said:
        return (
            f"sudo would ask for a password to run commands as '{user}'. Add a sudoers rule "
            f"such as 'AGENT ALL=({user}) NOPASSWD: ALL' for the user running the session."
        )
    if "unknown user" in said:
        return f"sudo does not know user '{user}': {said}"
    if "not allowed to" in said or "not in the sudoers file" in said:
        return f"sudoers does not allow running commands as '{user}': {said}"
    if "must have a tty" in said:
        return f"sudoers requires a terminal ('requiretty'); disable it for this agent: {said}"
    if returncode == 127 and "no Python interpreter" in said:
        return f"Cannot run actions as '{user}': {said}"
    shown = said or "no error output"
    return f"The helper running actions as '{user}' stopped (exit code {returncode}): {shown}"


def interpreter_candidates() -> list[str]:
    """Interpreters for the helper, best first; the job user may not reach the agent's own."""
    candidates = [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"]
    return list(dict.fromkeys(c for c in candidates if c))


@lru_cache(maxsize=1)
def helper_program() -> bytes:
    """The helper's text, prefixed with its length, as `HELPER_BOOT` reads it."""
    modules = [
        (name, Path(module.__file__ or "").read_text(encoding="utf-8"))
        for name, module in (("proctree", proctree), ("userhelper", userhelper))
    ]
    text = (f"MODULES = {modules!r}\n" + _LOADER).encode("utf-8")
    return b"%010d" % len(text) + text


class _Helper(asyncio.SubprocessProtocol):
    """The agent's end of the helper's pipes: frames in, requests out."""

    def __init__(self, user: str, token: str) -> None:
        self._user = user
        self._token = token
        self._reader = userhelper.FrameReader()
        self._stderr = bytearray()
        self._transport: asyncio.SubprocessTransport | None = None
        loop = asyncio.get_running_loop()
        self.hello: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.gone: asyncio.Future[None] = loop.create_future()
        self.cleaned: asyncio.Future[None] | None = None
        self.actions: deque[_RemoteAction] = deque()
        """Actions sent to the helper and not finished, oldest first; replies go to the first."""
        self.failure: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self._transport = transport

    def send(self, kind: bytes, body: dict[str, Any]) -> None:
        self.write(userhelper.encode_request(kind, self._token, body))

    def write(self, data: bytes) -> None:
        stdin = self._transport.get_pipe_transport(0) if self._transport else None
        if stdin is not None and not stdin.is_closing() and self.failure is None:
            assert isinstance(stdin, asyncio.WriteTransport)
            stdin.write(data)

    def close_requests(self) -> None:
        stdin = self._transport.get_pipe_transport(0) if self._transport else None
        if stdin is not None:
            stdin.close()

    def stop(self) -> None:
        """Ask sudo to stop the helper; sudo passes SIGTERM on."""
        if self._transport is not None and self._transport.get_returncode() is None:
            with contextlib.suppress(ProcessLookupError):
                self._transport.terminate()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 2:
            self._stderr += data
            del self._stderr[:-STDERR_KEPT]
            return
        try:
            frames = self._reader.feed(data)
            for kind, payload in frames:
                self._dispatch(kind, payload)
        except (userhelper.ProtocolError, ValueError, KeyError, IndexError) as exc:
            self._lose(f"The helper running actions as '{self._user}' broke its protocol: {exc}")
            self.stop()

    def _dispatch(self, kind: bytes, payload: bytes) -> None:
        if kind == userhelper.OUTPUT:
            self.actions[0].output(payload)
            return
        body = json.loads(payload)
        if kind == userhelper.HELLO:
            if not self.hello.done():
                self.hello.set_result(body)
        elif kind == userhelper.STARTED:
            self.actions[0].started(int(body["pid"]))
        elif kind == userhelper.EXITED:
            self.actions.popleft().finished(int(body["code"]), None)
        elif kind == userhelper.FAILED:
            self.actions.popleft().finished(None, str(body["message"]))
        elif kind == userhelper.CLEANED:
            if self.cleaned is not None and not self.cleaned.done():
                self.cleaned.set_result(None)
        else:
            raise userhelper.ProtocolError(f"unknown reply kind {kind!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        """The helper has exited and its pipes are closed, so all it said has been read."""
        self._lose(None)

    def _lose(self, reason: str | None) -> None:
        """The helper is gone or unusable: everything waiting on it fails with the reason."""
        if self.failure is None:
            code = self._transport.get_returncode() if self._transport else None
            said = self._stderr.decode("utf-8", "replace")
            self.failure = reason or describe_start_failure(self._user, code, said)
        if not self.hello.done():
            self.hello.set_exception(LaunchError(self.failure))
        while self.actions:
            self.actions.popleft().finished(None, self.failure)
        if self.cleaned is not None and not self.cleaned.done():
            self.cleaned.set_result(None)
        if not self.gone.done():
            self.gone.set_result(None)


class SudoLauncher:
    """Runs a session's actions as `user` through one helper process started with `sudo`."""

    def __init__(self, user: PosixSessionUser) -> None:
        sudo = shutil.which("sudo")
        if sudo is None:
            raise UserSetupError(
                f"Running actions as '{user.user}' needs sudo, which is not on this PATH."
            )
        self._sudo = sudo
        self.account = resolve_account(user)
        self._token = secrets.token_urlsafe(32)
        self._starting: asyncio.Task[_Helper] | None = None
        self._ended = False

    @property
    def group_id(self) -> int:
        return self.account.gid

    def environment(self) -> dict[str, str]:
        return job_environment(self.account, os.environ)

    def command(self) -> list[str]:
        """The helper's command line: nothing secret, nothing from the session."""
        return [
            self._sudo,
            "-n",
            "-u",
            self.account.user,
            "--",
            "/bin/sh",
            "-c",
            _TRAMPOLINE,
            "openjd-userhelper",
            HELPER_BOOT,
            *interpreter_candidates(),
        ]

    async def connect(self) -> _Helper:
        """The running helper; the first call starts it. Raises LaunchError if it cannot run."""
        if self._ended:
            raise LaunchError("The session has ended.")
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        helper = await asyncio.shield(self._starting)
        if helper.failure is not None:
            raise LaunchError(helper.failure)
        return helper

    async def _start(self) -> _Helper:
        loop = asyncio.get_running_loop()
        user = self.account.user
        try:
            transport, helper = await loop.subprocess_exec(
                lambda: _Helper(user, self._token),
                *self.command(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_SUDO_ENV,
                cwd="/",
                start_new_session=True,
            )
        except OSError as exc:
            raise LaunchError(f"Cannot start sudo to run actions as '{user}': {exc}") from exc
        init = json.dumps({"token": self._token, "drain_grace": DRAIN_GRACE}).encode()
        helper.write(helper_program() + userhelper.encode_frame(userhelper.INIT, init))
        try:
            hello = await asyncio.wait_for(asyncio.shield(helper.hello), START_TIMEOUT)
            if hello.get("uid") != self.account.uid:
                raise LaunchError(
                    f"The helper runs as uid {hello.get('uid')}, not as '{user}' "
                    f"(uid {self.account.uid})."
                )
        except BaseException as exc:
            helper.stop()
            transport.close()
            if isinstance(exc, asyncio.TimeoutError):
                raise LaunchError(
                    f"sudo did not start the helper for '{user}' within {START_TIMEOUT:.0f} s."
                ) from None
            raise
        return helper

    def create(
        self,
        spec: LaunchSpec,
        *,
        marker: str,
        on_output: Callable[[bytes], None],
        on_event: Callable[[str], None],
    ) -> ActionHandle:
        return _RemoteAction(self, spec, marker=marker, on_output=on_output, on_event=on_event)

    async def cleanup(self, session_marker: str, working_directory: Path | None) -> None:
        """Kill the session's processes and delete the job user's files, then stop the helper."""
        self._ended = True
        starting = self._starting
        if starting is not None:
            with contextlib.suppress(LaunchError):
                helper = await asyncio.shield(starting)
                if helper.failure is not None:
                    # It died during the session, maybe before it could kill what it started.
                    helper = await self._start()
                await self._stop(helper, session_marker, working_directory)
        if working_directory is not None:
            remove_tree(working_directory)

    async def _stop(
        self, helper: _Helper, session_marker: str, working_directory: Path | None
    ) -> None:
        loop = asyncio.get_running_loop()
        if helper.failure is None:
            helper.cleaned = loop.create_future()
            directory = str(working_directory) if working_directory is not None else None
            helper.send(userhelper.CLEANUP, {"marker": session_marker, "directory": directory})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(helper.cleaned), CLEANUP_TIMEOUT)
        helper.close_requests()
        try:
            await asyncio.wait_for(asyncio.shield(helper.gone), EXIT_TIMEOUT)
        except asyncio.TimeoutError:
            helper.stop()
        helper.close()


_NOT_CANCELED = -1.0


class _RemoteAction(CancelableAction):
    """One action run by the helper. Mirrors `process.ActionProcess` as seen by the session."""

    def __init__(
        self,
        launcher: SudoLauncher,
        spec: LaunchSpec,
        *,
        marker: str,
        on_output: Callable[[bytes], None],
        on_event: Callable[[str], None],
    ) -> None:
        self._launcher = launcher
        self._spec = spec
        self._marker = marker
        self._on_output = on_output
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._helper: _Helper | None = None
        self._pid: int | None = None
        self._exit_code: int | None = None
        self._error: str | None = None
        self._held_cancel = _NOT_CANCELED
        """A cancel period (0 to kill) asked for before the process started."""
        self._listening = True
        """False once `run()` has returned: later output of an abandoned action is dropped."""
        self._cancelation = Cancelation(spec.cancel)

    async def run(self) -> ProcessOutcome:
        helper = await self._launcher.connect()
        self._helper = helper
        env = dict(self._spec.env)
        env[proctree.MARKER_VARIABLE] = self._marker
        helper.actions.append(self)
        helper.send(
            userhelper.RUN,
            {
                "marker": self._marker,
                "argv": list(self._spec.argv),
                "env": env,
                "cwd": str(self._spec.cwd),
            },
        )
        timeout = self._spec.timeout
        timeout_handle = self._loop.call_later(timeout, self._time_out) if timeout else None
        try:
            await asyncio.shield(self._done)
        except BaseException:
            self._request_cancel(0.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._done), EXIT_TIMEOUT)
            raise
        finally:
            self._listening = False
            if timeout_handle:
                timeout_handle.cancel()
        if self._error is not None:
            raise LaunchError(self._error)
        return self._cancelation.outcome(self._exit_code)

    def started(self, pid: int) -> None:
        self._pid = pid
        if self._held_cancel != _NOT_CANCELED:
            self._request_cancel(self._held_cancel)

    def output(self, data: bytes) -> None:
        if self._listening:
            self._on_output(data)

    def finished(self, code: int | None, error: str | None) -> None:
        if not self._done.done():
            self._exit_code = code
            self._error = error
            self._done.set_result(None)

    def _finished(self) -> bool:
        return self._done.done()

    def _kill_now(self) -> None:
        self._request_cancel(0.0)

    def _notify(self, step: CancelStep, end: datetime) -> None:
        write_cancel_info(self._spec.cwd, end, group=self._launcher.group_id)
        if step.first:
            group = f"process group {self._pid}" if self._pid else "the action's process group"
            self._on_event(
                f"Canceling: sending SIGTERM to {group} as user '{self._launcher.account.user}'; "
                f"the process tree is killed at {end:%Y-%m-%dT%H:%M:%SZ}."
            )
        self._request_cancel(step.period)

    def _request_cancel(self, period: float) -> None:
        """Ask the helper to notify (period > 0) or kill (0), once the process has started."""
        if self._done.done():
            return
        if self._pid is None or self._helper is None:
            held = self._held_cancel
            self._held_cancel = period if held == _NOT_CANCELED else min(held, period)
            return
        self._helper.send(userhelper.CANCEL, {"marker": self._marker, "period": period or None})
