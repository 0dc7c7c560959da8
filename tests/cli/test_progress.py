"""The live progress line: drawn on a terminal, never when the output is piped."""

from __future__ import annotations

import errno
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .ojdkit import OJD, RUN_TIMEOUT, Result

pty = pytest.importorskip("pty", reason="pseudo-terminals need POSIX")

JOB = """\
specificationVersion: jobtemplate-2023-09
name: Progress
steps:
  - name: Crunch
    parameterSpace:
      taskParameterDefinitions:
        - {name: N, type: INT, range: "1-2"}
    script:
      actions:
        onRun:
          command: bash
          args:
            - "-c"
            - |
              echo 'openjd_progress: 40'
              echo 'openjd_status: crunching {{Task.Param.N}}'
              sleep 1
"""


def _run_on_terminal(cwd: Path, *args: str) -> tuple[int, str]:
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [*OJD, "run", "job.yaml", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
        )
    finally:
        os.close(terminal)
    chunks = []
    try:
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(controller)
    return process.wait(timeout=RUN_TIMEOUT), b"".join(chunks).decode("utf-8", "replace")


def test_progress_line_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(JOB, encoding="utf-8")
    code, output = _run_on_terminal(tmp_path)
    assert code == 0, output
    assert "\r\x1b[K" in output
    drawn = [part.split("\r\x1b[K")[0] for part in output.split("\n")]
    progress = [line for line in drawn if line.startswith("Step 'Crunch' | tasks ")]
    first = [line for line in progress if "tasks 0/2 | 40% | crunching 1 | " in line]
    assert first, output
    assert all(re.search(r" \| \d+:\d\d:\d\d$", line) for line in first)
    assert any("tasks 1/2 | 40% | crunching 2" in line for line in progress), output
    assert "Chunks run: 2" in output
    tail = output[output.rindex("Local session ended.") :]
    assert tail.count("\x1b[K") == 1, "the progress line is cleared once, before the result"


def test_progress_line_of_several_workers(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(JOB, encoding="utf-8")
    code, output = _run_on_terminal(tmp_path, "--workers", "2")
    assert code == 0, output
    drawn = [part.split("\r\x1b[K")[0] for part in output.split("\n")]
    progress = [line for line in drawn if line.startswith("Job 'Progress' | tasks ")]
    assert progress, output
    assert all(
        re.fullmatch(r".* \| tasks [0-2]/2 \| [0-2]/2 workers busy \| \d+:\d\d:\d\d", line)
        for line in progress
    ), progress
    assert any("| 2/2 workers busy |" in line for line in progress), "both tasks sleep a second"
    assert "All sessions ended." in output


def test_no_progress_line_when_piped(ojd: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(JOB, encoding="utf-8")
    result = ojd("run", "job.yaml")
    assert result.returncode == 0, result.output
    assert "\x1b" not in result.output
    assert "\r" not in result.output
    assert "openjd_status: crunching 2" in result.texts
