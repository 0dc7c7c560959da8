"""How `ojd run` reacts to failing actions, and how it sizes adaptive chunks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .ojdkit import OJD, Result

Ojd = Callable[..., Result]
Write = Callable[[str, str], Path]

FAILING = """\
specificationVersion: jobtemplate-2023-09
name: Failing
parameterDefinitions:
  - {name: Bad, type: INT, default: 2}
  - {name: EnterCode, type: INT, default: 0}
jobEnvironments:
  - name: Outer
    script:
      actions:
        onEnter: {command: bash, args: ["-c", "echo out-enter"]}
        onExit: {command: bash, args: ["-c", "echo out-exit"]}
  - name: Inner
    script:
      actions:
        onEnter: {command: bash, args: ["-c", "echo in-enter; exit {{Param.EnterCode}}"]}
        onExit: {command: bash, args: ["-c", "echo in-exit"]}
steps:
  - name: Work
    parameterSpace:
      taskParameterDefinitions:
        - {name: N, type: INT, range: "1-3"}
    script:
      actions:
        onRun:
          command: bash
          args:
            - "-c"
            - "echo task-{{Task.Param.N}}; test {{Task.Param.N}} != {{Param.Bad}} || exit 7"
  - name: After
    dependencies: [{dependsOn: Work}]
    script:
      actions:
        onRun: {command: bash, args: ["-c", "echo task-after"]}
"""


def job_lines(result: Result) -> list[str]:
    return [t for t in result.texts if re.fullmatch(r"(out|in)-(enter|exit)|task-\w+", t)]


def test_a_failed_task_stops_the_run_but_every_environment_exits(ojd: Ojd, write: Write) -> None:
    write("job.yaml", FAILING)
    result = ojd("run", "job.yaml")
    assert result.returncode == 1
    assert job_lines(result) == [
        "out-enter",
        "in-enter",
        "task-1",
        "task-2",
        "in-exit",
        "out-exit",
    ]
    codes = [t for t in result.texts if t.startswith("Process exited with code:")]
    assert codes == ["Process exited with code: 0", "Process exited with code: 7"]
    assert "Session ended with errors." in result.texts
    assert "Session ended with errors; see Task logs for details\n" in result.stdout
    assert "Chunks run: 2\n" in result.stdout


def test_a_failed_on_enter_runs_no_task_and_still_exits(ojd: Ojd, write: Write) -> None:
    write("job.yaml", FAILING)
    result = ojd("run", "job.yaml", "-p", "EnterCode=4")
    assert result.returncode == 1
    assert job_lines(result) == ["out-enter", "in-enter", "in-exit", "out-exit"]
    assert "Process exited with code: 4" in result.texts
    assert "Chunks run: 0\n" in result.stdout


def test_success_when_nothing_fails(ojd: Ojd, write: Write) -> None:
    write("job.yaml", FAILING)
    result = ojd("run", "job.yaml", "-p", "Bad=0")
    assert result.returncode == 0, result.output
    assert job_lines(result)[-4:] == ["task-3", "task-after", "in-exit", "out-exit"]


@pytest.mark.parametrize(
    ("action", "state"),
    [
        ('{command: bash, args: ["-c", "kill -9 $$"]}', "failed"),
        ("{command: no-such-command-anywhere}", "failed"),
        ('{command: bash, args: ["-c", "sleep 30"], timeout: 1}', "timed out"),
    ],
)
def test_tasks_without_an_exit_code_report_minus_one(
    ojd: Ojd, write: Write, action: str, state: str
) -> None:
    write(
        "job.yaml",
        f"""\
        specificationVersion: jobtemplate-2023-09
        name: NoCode
        steps:
          - name: S
            script:
              actions:
                onRun: {action}
        """,
    )
    result = ojd("run", "job.yaml")
    assert result.returncode == 1
    assert "Process exited with code: -1" in result.texts
    assert any(t.startswith(f"Task of step 'S' {state}") for t in result.texts), result.stdout


def test_openjd_fail_fails_the_task(ojd: Ojd, write: Write) -> None:
    write(
        "job.yaml",
        """\
        specificationVersion: jobtemplate-2023-09
        name: Fail
        steps:
          - name: S
            script:
              actions:
                onRun: {command: bash, args: ["-c", "echo 'openjd_fail: broken input'"]}
        """,
    )
    result = ojd("run", "job.yaml")
    assert result.returncode == 1
    assert "Process exited with code: 0" in result.texts
    assert any("broken input" in t and t.startswith("Task of step") for t in result.texts)


ADAPTIVE = """\
specificationVersion: jobtemplate-2023-09
extensions: [TASK_CHUNKING]
name: Adaptive
steps:
  - name: S
    parameterSpace:
      taskParameterDefinitions:
        - name: F
          type: CHUNK[INT]
          range: "1-30"
          chunks: {defaultTaskCount: 1, targetRuntimeSeconds: 60, rangeConstraint: CONTIGUOUS}
    script:
      actions:
        onRun: {command: bash, args: ["-c", "echo chunk {{Task.Param.F}}"]}
"""


def test_adaptive_chunks_grow_towards_the_target(ojd: Ojd, write: Write) -> None:
    write("job.yaml", ADAPTIVE)
    result = ojd("run", "job.yaml")
    assert result.returncode == 0, result.output
    sizes = [int(t.rsplit(" ", 1)[1]) for t in result.texts if t.startswith("Adjusting chunk size")]
    assert sizes, result.stdout
    assert sizes == sorted(sizes)
    chunks = [t.split()[1] for t in result.texts if t.startswith("chunk ")]
    frames: list[int] = []
    for chunk in chunks:
        first, _, last = chunk.partition("-")
        frames += range(int(first), int(last or first) + 1)
    assert frames == list(range(1, 31))
    assert len(chunks) < 30
    assert f"Chunks run: {len(chunks)}\n" in result.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_memory_stays_flat_however_much_a_task_prints(tmp_path: Path) -> None:
    """Two million lines pass through; keeping them would take hundreds of MB."""
    (tmp_path / "job.yaml").write_text(
        "specificationVersion: jobtemplate-2023-09\nname: Lines\nsteps:\n"
        "  - name: S\n    script: {actions: {onRun: {command: seq, args: ['2000000']}}}\n",
        encoding="utf-8",
    )
    with open(tmp_path / "out", "wb") as out:
        process = subprocess.Popen(
            [*OJD, "run", "job.yaml"], cwd=tmp_path, stdout=out, stdin=subprocess.DEVNULL
        )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0
    with open(tmp_path / "out", "rb") as out:
        numbers = [line for line in out if line.endswith(b"\t2000000\n")]
    assert len(numbers) == 1
    max_rss_mb = usage.ru_maxrss / 1024
    assert max_rss_mb < 150, f"ojd used {max_rss_mb:.0f} MB"
