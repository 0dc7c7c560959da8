"""Running one action's process on the event loop: spawn, stream output, cancel, time out.

This layer only moves bytes and signals. What the bytes mean is decided by `messages`; what an
outcome means for the session is decided by `session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import pwd
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

from . import proctree
from .files import remove_tree, write_cancel_info
from .userhelper import launch_error, start_action

READ_SIZE = 1 << 18
DRAIN_GRACE = 1.0
"""Seconds to keep reading after the process exits, while a descendant still holds the output."""

_F_SETPIPE_SZ = 1031


class LaunchError(Exception):
    """The process could not be started."""


@dataclass(frozen=True)
class CancelMethod:
    """TERMINATE when `notify_period` is None, else NOTIFY_THEN_TERMINATE with that period (s)."""

    notify_period: float | None = None


@dataclass(frozen=True)
class LaunchSpec:
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    timeout: float | None
    cancel: CancelMethod


@dataclass(frozen=True)
class ProcessOutcome:
    exit_code: int | None
    """None when the process died by a signal."""
    canceled: bool
    timed_out: bool
    mark_failed: bool


@dataclass(frozen=True)
class CancelStep:
    """What a cancel request asks of the process: kill now (period 0), or notify and kill later."""

    period: float
    deadline: float
    first: bool
    """True for the first cancel of the action: the one that sends SIGTERM."""


class Cancelation:
    """An action's cancel and timeout bookkeeping, shared by every kind of action process.

    A repeated cancel can only bring the kill closer; `time_limit` shortens the declared period.
    """

    def __init__(self, method: CancelMethod) -> None:
        self._method = method
        self._deadline: float | None = None
        self.canceled = False
        self.timed_out = False
        self.mark_failed = False

    def request(
        self, time_limit: timedelta | None, *, mark_failed: bool, now: float
    ) -> CancelStep | None:
        """The step to take now, or None when the request changes nothing."""
        self.mark_failed = self.mark_failed or mark_failed
        period = self._method.notify_period
        if time_limit is not None:
            limit = max(time_limit.total_seconds(), 0.0)
            period = limit if period is None else min(period, limit)
        first = not self.canceled
        self.canceled = True
        if not period:
            self._deadline = now
            return CancelStep(0.0, now, first)
        deadline = now + period
        if self._deadline is not None and deadline >= self._deadline:
            return None
        self._deadline = deadline
        return CancelStep(period, deadline, first)

    def time_out(self) -> str:
        """Record the timeout; the line to log before canceling."""
        self.timed_out = True
        return (
            "TIMEOUT - Runtime limit reached at "
            f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}. Canceling action."
        )

    def outcome(self, returncode: int | None) -> ProcessOutcome:
        return ProcessOutcome(
            exit_code=returncode if returncode is not None and returncode >= 0 else None,
            canceled=self.canceled,
            timed_out=self.timed_out,
            mark_failed=self.mark_failed,
        )


def notify_end(period: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=period)


class CancelableAction(ABC):
    """The cancel and timeout flow of every kind of action process; each kind says how it is
    killed at once and how it is notified."""

    _cancelation: Cancelation
    _loop: asyncio.AbstractEventLoop
    _on_event: Callable[[str], None]

    @abstractmethod
    def _finished(self) -> bool:
        """The process has ended: a cancel can only still mark the action failed."""

    @abstractmethod
    def _kill_now(self) -> None: ...

    @abstractmethod
    def _notify(self, step: CancelStep, end: datetime) -> None:
        """Start or shorten a notify period that ends at `step.deadline` (`end` in UTC)."""

    def cancel(self, time_limit: timedelta | None, *, mark_failed: bool = False) -> None:
        if self._finished():
            self._cancelation.mark_failed = self._cancelation.mark_failed or mark_failed
            return
        step = self._cancelation.request(time_limit, mark_failed=mark_failed, now=self._loop.time())
        if step is None:
            return
        if not step.period:
            self._on_event("Canceling: killing the process tree.")
            self._kill_now()
            return
        self._notify(step, notify_end(step.period))

    def _time_out(self) -> None:
        self._on_event(self._cancelation.time_out())
        self.cancel(None)


class ActionHandle(Protocol):
    """A started or startable action process, whoever it runs as."""

    async def run(self) -> ProcessOutcome: ...

    def cancel(self, time_limit: timedelta | None, *, mark_failed: bool = False) -> None: ...


class Launcher(Protocol):
    """Runs a session's action processes, as this user or as another one (see `users`)."""

    def environment(self) -> dict[str, str]:
        """The environment an action starts from, before the session's variables apply."""
        ...

    def create(
        self,
        spec: LaunchSpec,
        *,
        marker: str,
        on_output: Callable[[bytes], None],
        on_event: Callable[[str], None],
    ) -> ActionHandle: ...

    async def cleanup(self, session_marker: str, working_directory: Path | None) -> None:
        """Kill every process of the session and remove its working directory (None: keep it)."""


class LocalLauncher:
    """Runs actions as the user running the session."""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def create(
        self,
        spec: LaunchSpec,
        *,
        marker: str,
        on_output: Callable[[bytes], None],
        on_event: Callable[[str], None],
    ) -> ActionHandle:
        return ActionProcess(spec, marker=marker, on_output=on_output, on_event=on_event)

    async def cleanup(self, session_marker: str, working_directory: Path | None) -> None:
        await wait_dead(proctree.kill_processes(session_marker.encode()))
        if working_directory is not None:
            remove_tree(working_directory)


async def wait_dead(pids: set[int], timeout: float = proctree.DEATH_WAIT) -> None:
    """`proctree.wait_dead` for the event loop: the loop goes on while killed processes die."""
    deadline = time.monotonic() + timeout
    while (pids := proctree.living(pids)) and time.monotonic() < deadline:
        await asyncio.sleep(proctree.DEATH_POLL)


def _enlarge_pipe(fd: int) -> None:
    """A larger pipe means fewer wake-ups for a chatty process (Linux only)."""
    if sys.platform == "linux":
        import fcntl

        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, READ_SIZE)


SPAWN_THREADS = 2
_SPAWN_RETRIES = (0.001, 0.004, 0.016, 0.064)
"""Pauses before trying again when the program is busy being written (ETXTBSY): a file written
by the session can, for an instant, be held open by a child another thread is spawning."""
_spawn_pool: tuple[int, ThreadPoolExecutor] | None = None


def _spawner() -> ThreadPoolExecutor:
    """The threads that start action processes, shared by every session in the process.

    `Popen` blocks its caller until the child has exec'd; it releases the GIL meanwhile, so a
    few threads start processes while the event loop serves the running ones. A forked child
    of this process has none of its parent's threads, so it makes a pool of its own.
    """
    global _spawn_pool
    if _spawn_pool is None or _spawn_pool[0] != os.getpid():
        pool = ThreadPoolExecutor(SPAWN_THREADS, thread_name_prefix="openjd-spawn")
        _spawn_pool = (os.getpid(), pool)
    return _spawn_pool[1]


@dataclass(frozen=True)
class _Started:
    proc: subprocess.Popen[bytes]
    read_fd: int
    """The non-blocking read end of the pipe that carries the process's output."""
    pidfd: int | None
    """Readable once the process has exited; None where the system has no pidfd."""

    def close(self) -> None:
        os.close(self.read_fd)
        if self.pidfd is not None:
            os.close(self.pidfd)


def _spawn(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> _Started:
    """Start one action process (spawner thread): every system call of a start is made here."""
    read_fd, write_fd = os.pipe()
    try:
        _enlarge_pipe(read_fd)
        os.set_blocking(read_fd, False)
        proc = _popen(list(argv), env, cwd, write_fd)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    try:
        pidfd: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    return _Started(proc, read_fd, pidfd)


def _popen(
    argv: list[str], env: Mapping[str, str], cwd: Path, output_fd: int
) -> subprocess.Popen[bytes]:
    pauses = iter(_SPAWN_RETRIES)
    while True:
        try:
            return start_action(argv, env, cwd, output_fd)
        except (OSError, ValueError) as exc:
            busy = isinstance(exc, OSError) and exc.errno == errno.ETXTBSY
            pause = next(pauses, None) if busy else None
            if pause is None:
                message = launch_error(argv[0], str(cwd), pwd.getpwuid(os.getuid()).pw_name, exc)
                raise LaunchError(message) from exc
            time.sleep(pause)


def _kill_spawned(marker: str, spawn: Future[_Started]) -> None:
    """Kill what a spawn under way started, its starter having been cancelled. It waits for the
    spawn, which ends once the child has exec'd, so that nothing outlives the cancellation."""
    if spawn.exception() is not None:
        return
    started = spawn.result()
    started.close()
    proctree.kill_action(marker, [started.proc.pid])
    with contextlib.suppress(subprocess.TimeoutExpired):
        started.proc.wait(timeout=1)


class ActionProcess(CancelableAction):
    """One run of one action. `run()` returns when the process has exited and its output is read.

    Cancelling the task that awaits `run()` kills the whole process tree before the
    cancellation propagates.
    """

    def __init__(
        self,
        spec: LaunchSpec,
        *,
        marker: str,
        on_output: Callable[[bytes], None],
        on_event: Callable[[str], None],
    ) -> None:
        self._spec = spec
        self._marker = marker
        self._on_output = on_output
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._proc: subprocess.Popen[bytes] | None = None
        self._read_fd = -1
        self._eof: asyncio.Future[None] = self._loop.create_future()
        self._exited: asyncio.Future[None] = self._loop.create_future()
        self._kill_handle: asyncio.TimerHandle | None = None
        self._cancelation = Cancelation(spec.cancel)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def _start(self) -> None:
        """Spawn on a spawner thread, so that the event loop serves other actions meanwhile."""
        env = dict(self._spec.env)
        env[proctree.MARKER_VARIABLE] = self._marker
        spawn = _spawner().submit(_spawn, self._spec.argv, env, self._spec.cwd)
        try:
            started = await asyncio.wrap_future(spawn)
        except BaseException:
            if not spawn.cancel():
                _kill_spawned(self._marker, spawn)
            raise
        self._proc = proc = started.proc
        self._read_fd = started.read_fd
        self._loop.add_reader(started.read_fd, self._read)
        pidfd = started.pidfd
        if pidfd is None:
            waiter = self._loop.run_in_executor(None, proc.wait)
            waiter.add_done_callback(lambda _: self._set(self._exited))
            return

        def exited() -> None:
            self._loop.remove_reader(pidfd)
            os.close(pidfd)
            proc.wait()
            self._set(self._exited)

        self._loop.add_reader(pidfd, exited)

    @staticmethod
    def _set(future: asyncio.Future[None]) -> None:
        if not future.done():
            future.set_result(None)

    def _read(self) -> None:
        try:
            data = os.read(self._read_fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._on_output(data)
        else:
            self._close_output()

    def _close_output(self) -> None:
        if self._read_fd >= 0:
            self._loop.remove_reader(self._read_fd)
            os.close(self._read_fd)
            self._read_fd = -1
        self._set(self._eof)

    async def run(self) -> ProcessOutcome:
        """Start the process (raising LaunchError if it cannot) and wait for it to finish."""
        await self._start()
        timeout_handle = (
            self._loop.call_later(self._spec.timeout, self._time_out)
            if self._spec.timeout is not None
            else None
        )
        try:
            await asyncio.shield(self._exited)
            if timeout_handle:
                timeout_handle.cancel()
            if self._cancelation.canceled:
                self.kill_tree()
            if not self._eof.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._eof), DRAIN_GRACE)
        except BaseException:
            self.kill_tree()
            if self._proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=1)
            raise
        finally:
            if timeout_handle:
                timeout_handle.cancel()
            if self._kill_handle:
                self._kill_handle.cancel()
            self._drain_now()
        assert self._proc is not None
        return self._cancelation.outcome(self._proc.returncode)

    def _drain_now(self) -> None:
        """Read what is buffered without waiting, then stop reading."""
        while self._read_fd >= 0:
            try:
                data = os.read(self._read_fd, READ_SIZE)
            except OSError:
                data = b""
            if not data:
                self._close_output()
                break
            self._on_output(data)

    def _finished(self) -> bool:
        return self._exited.done()

    def _kill_now(self) -> None:
        self.kill_tree()

    def _notify(self, step: CancelStep, end: datetime) -> None:
        if self._kill_handle:
            self._kill_handle.cancel()
        self._kill_handle = self._loop.call_at(step.deadline, self._notify_period_ended)
        write_cancel_info(self._spec.cwd, end)
        if step.first and self._proc is not None:
            self._on_event(
                f"Canceling: sending SIGTERM to process group {self._proc.pid}; "
                f"the process tree is killed at {end:%Y-%m-%dT%H:%M:%SZ}."
            )
            proctree.signal_group(self._proc.pid, signal.SIGTERM)

    def _notify_period_ended(self) -> None:
        self._on_event("Notify period ended: killing the process tree.")
        self.kill_tree()

    def kill_tree(self) -> None:
        running = self._proc is not None and not self._exited.done()
        roots = [self._proc.pid] if running and self._proc is not None else []
        proctree.kill_action(self._marker, roots)
