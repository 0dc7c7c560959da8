"""Ctrl-C and SIGTERM sent to a real `ojd run`, during onEnter, a task and onExit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .ojdkit import RUN_TIMEOUT, ojd_process, process_alive, wait_for

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

# Each action appends its name to `log`; the one chosen by `Where` also records its pids (the
# shell and a background sleep), says it started, and then waits on the sleep.
JOB = """\
specificationVersion: jobtemplate-2023-09
name: Interruptible
parameterDefinitions:
  - {name: Where, type: STRING, allowedValues: [enter, task, exit]}
  - {name: Dir, type: PATH, default: .}
jobEnvironments:
  - name: Outer
    script:
      actions:
        onEnter: {command: bash, args: ["-c", "echo outer-enter >> '{{Param.Dir}}/log'"]}
        onExit: {command: bash, args: ["-c", "echo outer-exit >> '{{Param.Dir}}/log'"]}
  - name: Inner
    script:
      actions:
        onEnter:
          command: bash
          args: ["-c", "echo inner-enter >> '{{Param.Dir}}/log'; SLEEP"]
          cancelation: {mode: NOTIFY_THEN_TERMINATE, notifyPeriodInSeconds: 600}
        onExit:
          command: bash
          args: ["-c", "echo inner-exit >> '{{Param.Dir}}/log'; SLEEP"]
          cancelation: {mode: NOTIFY_THEN_TERMINATE, notifyPeriodInSeconds: 600}
steps:
  - name: Work
    script:
      actions:
        onRun:
          command: bash
          args: ["-c", "echo task >> '{{Param.Dir}}/log'; SLEEP"]
          cancelation: {mode: NOTIFY_THEN_TERMINATE, notifyPeriodInSeconds: 600}
"""

SLEEP = (
    "if [ {{Param.Where}} = WHERE ]; then TRAP "
    "echo $$ >> '{{Param.Dir}}/pids'; sleep 300 & echo $! >> '{{Param.Dir}}/pids'; "
    "echo $OPENJD_SESSION_WORKING_DIR > '{{Param.Dir}}/started'; wait; fi"
)


def _job(trap: str) -> str:
    text = JOB
    for action, where in (("inner-enter", "enter"), ("task", "task"), ("inner-exit", "exit")):
        marker = f"echo {action} >> '{{{{Param.Dir}}}}/log'; SLEEP"
        sleep = SLEEP.replace("WHERE", where).replace("TRAP", trap)
        text = text.replace(marker, marker.replace("SLEEP", sleep))
    return text


@contextlib.contextmanager
def _started(tmp_path: Path, where: str, trap: str = "") -> Iterator[subprocess.Popen[bytes]]:
    (tmp_path / "job.yaml").write_text(_job(trap), encoding="utf-8")
    args = ("run", "job.yaml", "-p", f"Where={where}")
    with ojd_process(*args, cwd=tmp_path, output=tmp_path / "out") as process:
        yield process


def _pids(tmp_path: Path) -> list[int]:
    return [int(p) for p in (tmp_path / "pids").read_text().split()]


def _log(tmp_path: Path) -> list[str]:
    return (tmp_path / "log").read_text().split()


EXPECTED_LOG = {
    "enter": ["outer-enter", "inner-enter", "inner-exit", "outer-exit"],
    "task": ["outer-enter", "inner-enter", "task", "inner-exit", "outer-exit"],
    "exit": ["outer-enter", "inner-enter", "task", "inner-exit", "outer-exit"],
}


@pytest.mark.parametrize(
    ("where", "signum"),
    [
        ("enter", signal.SIGINT),
        ("task", signal.SIGINT),
        ("exit", signal.SIGINT),
        ("task", signal.SIGTERM),
    ],
)
def test_first_signal_cancels_the_action_and_still_exits(
    tmp_path: Path, where: str, signum: int
) -> None:
    with _started(tmp_path, where) as process:
        wait_for(lambda: (tmp_path / "started").exists() and len(_pids(tmp_path)) == 2)
        pids = _pids(tmp_path)
        assert all(process_alive(pid) for pid in pids)
        process.send_signal(signum)
        assert process.wait(timeout=RUN_TIMEOUT) == 1
    output = (tmp_path / "out").read_text()
    assert "Interruption signal received." in output
    assert "Session ended with errors." in output
    assert "Traceback" not in output
    assert _log(tmp_path) == EXPECTED_LOG[where]
    if where != "exit":
        assert "Process exited with code: -1" in output
    assert not [pid for pid in pids if process_alive(pid)]


def test_second_signal_kills_everything_at_once(tmp_path: Path) -> None:
    # The task ignores SIGTERM, so the first Ctrl-C alone would wait out the 600 s notify period.
    with _started(tmp_path, "task", trap="trap '' TERM;") as process:
        wait_for(lambda: (tmp_path / "started").exists() and len(_pids(tmp_path)) == 2)
        pids = _pids(tmp_path)
        working_dir = Path((tmp_path / "started").read_text().strip())
        process.send_signal(signal.SIGINT)
        wait_for(lambda: (working_dir / "cancel_info.json").exists())
        assert all(process_alive(pid) for pid in pids), "SIGTERM should have been ignored"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=RUN_TIMEOUT) == 1
    output = (tmp_path / "out").read_text()
    assert "Second interruption" in output
    assert _log(tmp_path) == ["outer-enter", "inner-enter", "task"], "onExit must be skipped"
    assert not [pid for pid in pids if process_alive(pid)]
