"""Running the real `ojd` command line as a subprocess, and looking at what it left behind."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

OJD = [sys.executable, "-m", "openjd_runtime"]
RUN_TIMEOUT = 60.0


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def texts(self) -> list[str]:
        """stdout's timestamped lines without their timestamps."""
        return [line.split("\t", 1)[1] for line in self.stdout.splitlines() if "\t" in line]


def run_ojd(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> Result:
    done = subprocess.run(
        [*OJD, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@contextlib.contextmanager
def ojd_process(*args: str | Path, cwd: Path, output: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`ojd ARGS...` in the background, its stdout and stderr going to `output`; killed on the
    way out if it still runs."""
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [*OJD, *map(str, args)],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def assert_one_error(result: Result, code: int, fragment: str) -> None:
    """Bad input: one `ERROR:` message on stderr, no traceback, the given exit code."""
    assert result.returncode == code, result.output
    assert result.stderr.count("ERROR:") == 1, result.stderr
    assert result.stderr.startswith("ERROR: "), result.stderr
    assert "Traceback" not in result.output
    assert fragment in result.stderr, result.stderr


def process_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie waiting for a reaper counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return sys.platform != "linux"
    return state != "Z"


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
