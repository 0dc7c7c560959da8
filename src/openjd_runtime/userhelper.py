"""The program that runs a cross-user session's actions as the job user.

`users` starts it once per session through `sudo` and sends it its own source over its stdin, so
the job user needs no access to the installed package; it uses the standard library only, and
`proctree` for tree kills. Both pipes carry frames: a kind byte, a 4-byte length, a payload.
Requests are JSON objects holding the session token. Action output travels as raw bytes, so the
agent's output filter sees exactly the bytes the action wrote, whatever their encoding.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import json
import os
import pwd
import selectors
import signal
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from . import proctree

# Requests, agent to helper.
INIT = b"I"
RUN = b"R"
CANCEL = b"C"
CLEANUP = b"K"
# Replies, helper to agent.
HELLO = b"H"
STARTED = b"S"
OUTPUT = b"O"
EXITED = b"X"
FAILED = b"F"
CLEANED = b"D"

HEADER = struct.Struct(">cI")
MAX_FRAME = 64 << 20
READ_SIZE = 1 << 20
POLL_INTERVAL = 0.05
"""Seconds between exit checks where pidfd_open is missing."""
_PR_SET_DUMPABLE = 4


class ProtocolError(Exception):
    """The byte stream is not a sequence of frames."""


def encode_frame(kind: bytes, payload: bytes) -> bytes:
    if len(kind) != 1:
        raise ValueError(f"A frame kind is one byte, not {kind!r}.")
    return HEADER.pack(kind, len(payload)) + payload


def encode_request(kind: bytes, token: str, body: dict[str, Any]) -> bytes:
    return encode_frame(kind, json.dumps({**body, "token": token}).encode())


class FrameReader:
    """Splits a byte stream into (kind, payload) frames, whatever the read boundaries."""

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self._buffer += data
        frames: list[tuple[bytes, bytes]] = []
        start = 0
        while len(self._buffer) - start >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer, start)
            if length > self._limit:
                raise ProtocolError(f"A frame of {length} bytes exceeds the {self._limit} limit.")
            end = start + HEADER.size + length
            if end > len(self._buffer):
                break
            frames.append((kind, bytes(self._buffer[start + HEADER.size : end])))
            start = end
        del self._buffer[:start]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)


def authenticate(payload: bytes, token: str) -> dict[str, Any] | None:
    """The request's body when it carries the session token, else None."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    given = body.pop("token", None)
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
        return None
    return body


def launch_error(program: str, cwd: str, user: str, exc: Exception) -> str:
    """Say why an action's process did not start, as the job user sees it."""
    if not isinstance(exc, OSError):
        return f"Command '{program}' could not be started: {exc}"
    if exc.filename == cwd:
        return f"User '{user}' cannot enter the working directory {cwd}: {exc.strerror}."
    if exc.errno == errno.ENOENT:
        if "/" in program:
            return f"Command '{program}' does not exist or is not executable."
        return f"Command '{program}' was not found on the action's PATH."
    if exc.errno == errno.EACCES:
        return f"Command '{program}' is not executable by user '{user}'."
    return f"Command '{program}' could not be started: {exc}"


def start_action(
    argv: list[str], env: Mapping[str, str], cwd: str | os.PathLike[str], output_fd: int
) -> subprocess.Popen[bytes]:
    """An action's process, for the local launcher and this helper alike: a session of its own,
    so that its group can be signalled; no stdin; output and errors on one pipe. The child looks
    a bare program name up on the action's own PATH (`env`) as it execs, which costs less than a
    lookup beforehand."""
    return subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=output_fd,
        stderr=output_fd,
        start_new_session=True,
        close_fds=True,
    )


def remove_contents(directory: str) -> None:
    """Delete what this user can below `directory`, its own read-only directories included."""
    me = os.getuid()
    for root, dirs, _ in os.walk(directory):
        for name in dirs:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                if not os.path.islink(path) and os.lstat(path).st_uid == me:
                    os.chmod(path, 0o700)
    for root, dirs, files in os.walk(directory, topdown=False):
        for name in files:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(root, name))
        for name in dirs:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                if os.path.islink(path):
                    os.unlink(path)
                else:
                    os.rmdir(path)


def forbid_inspection() -> None:
    """Keep the job's processes, which share this user, out of the helper's memory.

    A non-dumpable process's /proc entries belong to root, so a job can neither read the session
    token from the helper's memory nor look at its environment or open files. (The pipes are the
    agent's, so a job cannot open them through /proc either.) Children get the flag reset when
    they exec.
    """
    if sys.platform != "linux":
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


class _Action:
    """The action being run: its process, output pipe and cancelation."""

    def __init__(self, marker: str, proc: subprocess.Popen[bytes], read_fd: int) -> None:
        self.marker = marker
        self.proc = proc
        self.read_fd = read_fd
        self.pidfd = -1
        self.canceled = False
        self.notified = False
        self.kill_at: float | None = None
        self.exited = False
        self.drain_until: float | None = None

    def kill_tree(self) -> None:
        roots = [] if self.exited else [self.proc.pid]
        proctree.kill_action(self.marker, roots)


class Helper:
    """Serves requests from `requests_fd` until the agent closes it, one action at a time."""

    def __init__(self, requests_fd: int, replies_fd: int) -> None:
        self._in = requests_fd
        self._out = replies_fd
        self._reader = FrameReader()
        self._selector = selectors.DefaultSelector()
        self._token: str | None = None
        self._drain_grace = 1.0
        self._user = pwd.getpwuid(os.getuid()).pw_name
        self._queue: deque[dict[str, Any]] = deque()
        self._action: _Action | None = None
        self._markers: list[str] = []
        """Markers of the actions started since the last clean-up."""
        self._serving = True

    def serve(self) -> None:
        os.set_blocking(self._in, False)
        self._selector.register(self._in, selectors.EVENT_READ, self._on_requests)
        try:
            while self._serving:
                for key, _ in self._selector.select(self._wait_time()):
                    callback: Callable[[], None] = key.data
                    callback()
                self._on_tick()
        except (BrokenPipeError, ProtocolError) as exc:
            print(f"openjd-userhelper: stopping: {exc}", file=sys.stderr)
        finally:
            self._stop_everything()

    def _send(self, kind: bytes, payload: bytes) -> None:
        view = memoryview(encode_frame(kind, payload))
        while view:
            view = view[os.write(self._out, view) :]

    def _reply(self, kind: bytes, body: dict[str, Any]) -> None:
        self._send(kind, json.dumps(body).encode())

    def _wait_time(self) -> float | None:
        action = self._action
        if action is None:
            return None
        now = time.monotonic()
        times = [t - now for t in (action.kill_at, action.drain_until) if t is not None]
        if action.pidfd < 0 and not action.exited:
            times.append(POLL_INTERVAL)
        return max(min(times), 0.0) if times else None

    def _on_requests(self) -> None:
        try:
            data = os.read(self._in, READ_SIZE)
        except BlockingIOError:
            return
        if not data:
            self._serving = False
            return
        for kind, payload in self._reader.feed(data):
            self._handle(kind, payload)

    def _handle(self, kind: bytes, payload: bytes) -> None:
        if self._token is None:
            if kind != INIT:
                raise ProtocolError("The first request must be INIT.")
            init = json.loads(payload)
            self._token = str(init["token"])
            self._drain_grace = float(init["drain_grace"])
            self._reply(HELLO, {"pid": os.getpid(), "uid": os.getuid()})
            return
        body = authenticate(payload, self._token)
        if body is None:
            print("openjd-userhelper: ignored a request without the session token", file=sys.stderr)
        elif kind == RUN:
            self._queue.append(body)
            self._start_next()
        elif kind == CANCEL:
            action = self._action
            if action is not None and action.marker == body["marker"] and not action.exited:
                self._cancel(action, body["period"])
        elif kind == CLEANUP:
            self._clean_up(body["marker"], body["directory"])

    def _start_next(self) -> None:
        while self._action is None and self._queue:
            self._start(self._queue.popleft())

    def _start(self, request: dict[str, Any]) -> None:
        argv: list[str] = request["argv"]
        cwd: str = request["cwd"]
        read_fd, write_fd = os.pipe()
        try:
            proc = start_action(argv, request["env"], cwd, write_fd)
        except (OSError, ValueError) as exc:
            os.close(read_fd)
            self._reply(FAILED, {"message": launch_error(argv[0], cwd, self._user, exc)})
            return
        finally:
            os.close(write_fd)
        action = _Action(request["marker"], proc, read_fd)
        self._action = action
        self._markers.append(action.marker)
        os.set_blocking(read_fd, False)
        self._selector.register(read_fd, selectors.EVENT_READ, self._on_output)
        with contextlib.suppress(AttributeError, OSError):
            action.pidfd = os.pidfd_open(proc.pid)
            self._selector.register(action.pidfd, selectors.EVENT_READ, self._on_exit)
        self._reply(STARTED, {"pid": proc.pid})

    def _on_output(self) -> None:
        action = self._action
        assert action is not None
        try:
            data = os.read(action.read_fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._send(OUTPUT, data)
        else:
            self._close_output(action)

    def _close_output(self, action: _Action) -> None:
        if action.read_fd >= 0:
            self._selector.unregister(action.read_fd)
            os.close(action.read_fd)
            action.read_fd = -1

    def _on_exit(self) -> None:
        action = self._action
        assert action is not None
        self._selector.unregister(action.pidfd)
        os.close(action.pidfd)
        action.pidfd = -1
        self._exited(action)

    def _exited(self, action: _Action) -> None:
        action.proc.wait()
        action.exited = True
        action.kill_at = None
        if action.canceled:
            action.kill_tree()
        action.drain_until = time.monotonic() + self._drain_grace

    def _on_tick(self) -> None:
        action = self._action
        if action is None:
            return
        now = time.monotonic()
        if action.kill_at is not None and now >= action.kill_at:
            action.kill_at = None
            action.kill_tree()
        if not action.exited and action.pidfd < 0 and action.proc.poll() is not None:
            self._exited(action)
        if action.exited and (action.read_fd < 0 or now >= (action.drain_until or now)):
            self._finish(action)

    def _finish(self, action: _Action) -> None:
        """Send what is buffered without waiting longer, then the exit code."""
        while action.read_fd >= 0:
            try:
                data = os.read(action.read_fd, READ_SIZE)
            except OSError:
                data = b""
            if not data:
                self._close_output(action)
                break
            self._send(OUTPUT, data)
        self._action = None
        self._reply(EXITED, {"code": action.proc.returncode})
        self._start_next()

    def _cancel(self, action: _Action, period: float | None) -> None:
        action.canceled = True
        if not period:
            action.kill_tree()
            return
        if not action.notified:
            action.notified = True
            proctree.signal_group(action.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + period
        if action.kill_at is None or deadline < action.kill_at:
            action.kill_at = deadline

    def _clean_up(self, marker: str, directory: str | None) -> None:
        """Kill the session's processes and delete the job user's files; queued runs fail."""
        while self._queue:
            self._queue.popleft()
            self._reply(FAILED, {"message": "The session ended before the action started."})
        if self._action is not None and not self._action.exited:
            self._action.canceled = True
            self._action.kill_tree()
        proctree.wait_dead(proctree.kill_processes(marker.encode()))
        self._markers.clear()
        if directory is not None:
            remove_contents(directory)
        self._reply(CLEANED, {})

    def _stop_everything(self) -> None:
        """The agent is gone: leave no process of the session behind."""
        if self._action is not None and not self._action.exited:
            self._action.kill_tree()
        for marker in self._markers:
            proctree.kill_action(marker)


def _leave(signum: int, _frame: object) -> None:
    """Unwind through `Helper.serve`, which kills what the session started on its way out."""
    raise SystemExit(128 + signum)


def main() -> None:
    forbid_inspection()
    signal.signal(signal.SIGTERM, _leave)
    Helper(sys.stdin.fileno(), sys.stdout.fileno()).serve()
