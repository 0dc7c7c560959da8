"""Killing a process tree: how many scans a kill takes, and a tree that forks while it is killed."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from openjd_runtime import proctree

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="scans Linux's /proc")

STOP, KILL = signal.SIGSTOP, signal.SIGKILL


@pytest.mark.parametrize(
    ("scans", "signals"),
    [
        pytest.param([set()], [], id="nothing-to-kill"),
        pytest.param([{1, 2}, {1, 2}], [(STOP, {1, 2}), (KILL, {1, 2})], id="all-stopped-at-once"),
        pytest.param(
            [{1}, {1, 5}, set()],
            [
                (STOP, {1}),
                (KILL, {1, 5}),
            ],
            id="a-late-child-is-looked-after",
        ),
        pytest.param(
            [{1}, {1, 5}, {6}, {6}],
            [(STOP, {1}), (KILL, {1, 5}), (STOP, {6}), (KILL, {6})],
            id="the-late-child-forked",
        ),
    ],
)
def test_a_kill_scans_again_only_after_finding_processes_it_had_not_stopped(
    monkeypatch: pytest.MonkeyPatch,
    scans: list[set[int]],
    signals: list[tuple[int, set[int]]],
) -> None:
    left = iter(scans)
    sent: list[tuple[int, set[int]]] = []
    monkeypatch.setattr(proctree, "find_processes", lambda marker, roots=(): set(next(left)))
    monkeypatch.setattr(proctree, "_signal", lambda pids, sig: sent.append((sig, set(pids))))

    killed = proctree.kill_processes(b"m")

    assert sent == signals
    assert next(left, None) is None, "a scan the kill should have made was not made"
    assert killed == set().union(*(pids for sig, pids in signals if sig == KILL))


def marked(token: str) -> list[psutil.Process]:
    """Live processes whose environment holds the test's token (zombies are dead already)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and proc.environ().get("TREE") == token:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture
def token() -> Iterator[str]:
    value = secrets.token_hex(8)
    yield value
    for proc in marked(value):
        proc.kill()


def test_a_tree_that_keeps_forking_and_escaping_is_killed_whole(token: str) -> None:
    marker = f"{token}-1"
    loop = 'while :; do (setsid sh -c "sleep 60; :" &); done'
    env = {**os.environ, "TREE": token, proctree.MARKER_VARIABLE: marker}
    shell = subprocess.Popen(["sh", "-c", loop], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(marked(token)) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(marked(token)) >= 20, "the tree never grew"

        killed = proctree.kill_processes(marker.encode(), [shell.pid])
        assert shell.pid in killed
        assert proctree.wait_dead(killed) == set()
        assert marked(token) == []
    finally:
        shell.kill()
        shell.wait()
