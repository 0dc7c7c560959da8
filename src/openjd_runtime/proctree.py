"""Finding and killing every process an action started, including ones that escaped its group.

Each action's processes carry a marker variable in their environment. A process that calls
`setsid()` or double-forks leaves the process group and its parent, but keeps its environment,
so a scan of `/proc` finds it. Processes are stopped before they are killed, so that a process
cannot fork a child between the scan and the kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable

MARKER_VARIABLE = "OPENJD_RUNTIME_MARKER"
_PROC = "/proc"
_READ_SIZE = 1 << 17
DEATH_WAIT = 1.0
"""Seconds to wait for killed processes to die; one in uninterruptible sleep may take longer."""
DEATH_POLL = 0.002


def marker_value(session_token: str, action_seq: int) -> str:
    return f"{session_token}-{action_seq}"


def _read(path: str) -> bytes:
    """The whole file, or b"" if it cannot be read. Raw `os` calls: a scan reads hundreds."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        chunks = []
        while chunk := os.read(fd, _READ_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _stat_fields(pid: str) -> tuple[int, int] | None:
    """(ppid, pgrp) of a process, from /proc/PID/stat."""
    data = _read(f"{_PROC}/{pid}/stat")
    if not data:
        return None
    fields = data.rpartition(b")")[2].split()
    try:
        return int(fields[1]), int(fields[2])
    except (IndexError, ValueError):
        return None


def find_processes(marker: bytes, roots: Iterable[int] = ()) -> set[int]:
    """Processes whose environment holds `marker`, or that descend from a root or share its group.

    `marker` is matched as a prefix of the marker variable's value, so a session-wide marker finds
    the processes of all of its actions.
    """
    needle = MARKER_VARIABLE.encode() + b"=" + marker
    roots = set(roots)
    me = os.getpid()
    found: set[int] = set()
    parents: dict[int, int] = {}
    try:
        pids = [p for p in os.listdir(_PROC) if p.isdigit()]
    except OSError:
        return found
    for name in pids:
        pid = int(name)
        if pid == me:
            continue
        if roots:
            fields = _stat_fields(name)
            if fields is None:
                continue
            ppid, pgrp = fields
            parents[pid] = ppid
            if pid in roots or pgrp in roots:
                found.add(pid)
                continue
        environ = _read(f"{_PROC}/{name}/environ")
        index = environ.find(needle)
        if index != -1 and (index == 0 or environ[index - 1] == 0):
            found.add(pid)
    if roots:
        for pid in parents:
            seen: set[int] = set()
            cursor = pid
            while cursor in parents and cursor not in seen:
                seen.add(cursor)
                cursor = parents[cursor]
                if cursor in roots or cursor in found:
                    found.add(pid)
                    break
    return found


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_processes(marker: bytes, roots: Iterable[int] = (), rounds: int = 5) -> set[int]:
    """Stop, then kill, every matching process.

    A second scan after the stop finds what was forked before it. When it finds nothing new,
    every match was stopped before that scan and none can have forked since, so the kill is the
    last step; otherwise the unstopped late ones may have forked, and the next round looks again.
    """
    roots = set(roots)
    killed: set[int] = set()
    for _ in range(rounds):
        found = find_processes(marker, roots) - killed
        if not found:
            break
        _signal(found, signal.SIGSTOP)
        late = find_processes(marker, roots | found) - killed - found
        _signal(found | late, signal.SIGKILL)
        killed |= found | late
        if not late:
            break
    return killed


def kill_action(marker: str, roots: Iterable[int] = ()) -> set[int]:
    """Kill one action's processes: those whose marker is exactly `marker`, not merely begins
    with it, and those of `roots`."""
    return kill_processes(marker.encode() + b"\0", roots)


def living(pids: Iterable[int]) -> set[int]:
    """The processes among `pids` that have not died yet; a zombie has."""
    left: set[int] = set()
    for pid in pids:
        state = _read(f"{_PROC}/{pid}/stat").rpartition(b")")[2][1:2]
        if state and state not in b"ZX":
            left.add(pid)
    return left


def wait_dead(pids: Iterable[int], timeout: float = DEATH_WAIT) -> set[int]:
    """A SIGKILLed process is gone only once it has run its exit: wait (a little) for that, so
    that whoever asked for the kill sees nothing left. Returns the ones still alive."""
    deadline = time.monotonic() + timeout
    left = living(pids)
    while left and time.monotonic() < deadline:
        time.sleep(DEATH_POLL)
        left = living(left)
    return left


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
