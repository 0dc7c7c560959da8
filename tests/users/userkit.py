"""What the cross-user tests share: the host's job user, places it can reach, an agent to act as.

`scripts/setup-host.sh` creates the users and the sudoers rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import pwd
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import psutil
import pytest

JOB_USER = "openjd-job"
SHARED_GROUP = "openjd-shared"
TEST_AGENT = "openjd-agent"
"""A non-root agent, for the tests that root would pass whatever the code did."""
JOB_PYTHON = "/usr/bin/python3"
"""The agent's interpreter may sit where the job user cannot reach (a venv under /root)."""
SETUP_HINT = "run `sudo bash scripts/setup-host.sh` first"


def require_user(name: str) -> pwd.struct_passwd:
    """The host user the tests need; its absence fails the test, it never skips it."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pytest.fail(f"User {name!r} does not exist on this host: {SETUP_HINT}.")


def shared_gid() -> int:
    try:
        return grp.getgrnam(SHARED_GROUP).gr_gid
    except KeyError:
        pytest.fail(f"Group {SHARED_GROUP!r} does not exist on this host: {SETUP_HINT}.")


def job_uid() -> int:
    return require_user(JOB_USER).pw_uid


def job_processes() -> set[int]:
    """Live processes of the job user."""
    uid = job_uid()
    found: set[int] = set()
    for proc in psutil.process_iter(["uids", "status"]):
        info = proc.info
        if info["uids"] and info["uids"].real == uid and info["status"] != psutil.STATUS_ZOMBIE:
            found.add(proc.pid)
    return found


def owner_uid(pid: int) -> int:
    return psutil.Process(pid).uids().real


def command_lines() -> list[bytes]:
    """Every process's command line, as anyone running `ps` would see it."""
    lines = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                lines.append(Path(f"/proc/{entry}/cmdline").read_bytes())
    return lines


def agent_name(agent: str = TEST_AGENT) -> str:
    """Who `run_as_agent` acts as: `agent` when run by root, else the current user."""
    return agent if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def run_as_agent(scenario: Callable[[], Coroutine[Any, Any, Any]], agent: str = TEST_AGENT) -> Any:
    """Run `scenario` in a process of a non-root agent and return its JSON-able result.

    As root, a forked child takes on `agent`'s identity; otherwise the current user already is a
    non-root agent.
    """
    if os.geteuid() != 0:
        return asyncio.run(scenario())
    account = require_user(agent)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            os.initgroups(account.pw_name, account.pw_gid)
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            os.chdir("/")
            report: dict[str, Any] = {"result": asyncio.run(scenario())}
        except BaseException:
            report = {"error": traceback.format_exc()}
        data = json.dumps(report).encode()
        while data:
            data = data[os.write(write_fd, data) :]
        os._exit(0)
    os.close(write_fd)
    chunks = []
    with os.fdopen(read_fd, "rb") as reader:
        chunks.append(reader.read())
    os.waitpid(pid, 0)
    report = json.loads(b"".join(chunks) or b'{"error": "the agent process said nothing"}')
    if "error" in report:
        pytest.fail(f"As {agent}: {report['error']}")
    return report["result"]
