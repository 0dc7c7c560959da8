"""`ojd run --workers N`, `--keep-going` and `--cluster`: real `ojd` runs of jobs whose actions
leave marks (timestamps, pids, session directories) in a folder the test reads afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..scheduling.kit import Marks, local_cluster
from .ojdkit import (
    RUN_TIMEOUT,
    Result,
    assert_one_error,
    ojd_process,
    process_alive,
    run_ojd,
    wait_for,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX shells and signals")

Ojd = Callable[..., Result]

MARKS = """D='{{Param.Dir}}'
mark() { echo "$2" > "$D/.$1"; mv "$D/.$1" "$D/$1"; }
"""


def bash(script: str, **extra: Any) -> dict[str, Any]:
    """An action running `script` with `$D` set to the marks folder and `mark NAME TEXT`
    writing a mark whole (readers never see it half written)."""
    return {"command": "bash", "args": ["-c", MARKS + textwrap.dedent(script)], **extra}


def marked_environment(name: str) -> dict[str, Any]:
    """onEnter and onExit each leave a mark named after the environment and their pid."""
    actions = {
        "onEnter": bash(f"mark enter-{name}-$$"),
        "onExit": bash(f"mark exit-{name}-$$"),
    }
    return {"name": name, "script": {"actions": actions}}


def task(step: str, body: str = "", *, on_term: str = "", **extra: Any) -> dict[str, Any]:
    """Marks its start and end times and its session; says hello; runs `body` in between.

    With `on_term`, SIGTERM leaves a `term-` mark and then runs `on_term`."""
    trap = f"trap 'mark term-$me; {on_term}' TERM" if on_term else ""
    script = f"""
        me={step}-{{{{Task.Param.F}}}}
        {trap}
        mark start-$me "$(date +%s.%N)"
        mark session-$me "$OPENJD_SESSION_WORKING_DIR"
        echo "hello from $me"
        {textwrap.indent(textwrap.dedent(body), " " * 8).strip()}
        mark end-$me "$(date +%s.%N)"
    """
    return bash(script, **extra)


def step(name: str, count: int, run: dict[str, Any], *after: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "parameterSpace": {
            "taskParameterDefinitions": [{"name": "F", "type": "INT", "range": f"1-{count}"}]
        },
        "script": {"actions": {"onRun": run}},
        **extra,
    }
    if after:
        body["dependencies"] = [{"dependsOn": other} for other in after]
    return body


def write_job(folder: Path, *steps: dict[str, Any]) -> Path:
    template = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Parallel",
        "parameterDefinitions": [{"name": "Dir", "type": "PATH"}],
        "jobEnvironments": [marked_environment("JobEnv")],
        "steps": list(steps),
    }
    path = folder / "job.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    return path


def barrier(prefix: str, count: int) -> str:
    """Waits (at most 20 s) until `count` tasks named `prefix*` have started."""
    return f"""
        for i in $(seq 1000); do
          [ "$(ls "$D" | grep -c '^start-{prefix}')" -ge {count} ] && break
          sleep 0.02
        done
    """


def times(marks: Marks, kind: str, step_name: str) -> list[float]:
    return [marks.number(name) for name in marks.names(f"{kind}-{step_name}-")]


def sessions(marks: Marks, step_name: str = "") -> set[str]:
    """The working directories of the sessions that ran the tasks (of one step)."""
    return {marks.value(name).strip() for name in marks.names(f"session-{step_name}")}


@pytest.fixture
def marks(tmp_path: Path) -> Iterator[Marks]:
    found = Marks(tmp_path / "marks")
    found.directory.mkdir()
    yield found
    found.kill_leftovers()


def four_steps(folder: Path) -> Path:
    """A (4 tasks, a step environment, two of them at once) -> B (3); C (3); B and C -> D (2)."""
    return write_job(
        folder,
        step("A", 4, task("A", barrier("A-", 2)), stepEnvironments=[marked_environment("StepA")]),
        step("B", 3, task("B"), "A"),
        step("C", 3, task("C")),
        step("D", 2, task("D"), "B", "C"),
    )


@pytest.fixture(scope="module")
def three_workers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Marks]:
    """One `--workers 3` run of the four-step job, shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("three_workers")
    found = Marks(folder / "marks")
    found.directory.mkdir()
    job = four_steps(folder)
    result = run_ojd("run", job, "--workers", "3", "-p", f"Dir={found.directory}", cwd=folder)
    return result, found


def test_steps_start_only_after_their_dependencies_finished(
    three_workers: tuple[Result, Marks],
) -> None:
    result, marks = three_workers
    assert result.returncode == 0, result.output
    for step_name, count in (("A", 4), ("B", 3), ("C", 3), ("D", 2)):
        assert marks.count(f"end-{step_name}-") == count
    for later, earlier in (("B", "A"), ("D", "B"), ("D", "C")):
        assert min(times(marks, "start", later)) >= max(times(marks, "end", earlier)), later


def test_environments_are_entered_once_per_worker_session_not_per_task(
    three_workers: tuple[Result, Marks],
) -> None:
    result, marks = three_workers
    assert result.returncode == 0, result.output
    every = sessions(marks)
    assert 2 <= len(every) <= 3, "A's barrier needs two sessions at once; there are 3 workers"
    assert marks.count("enter-JobEnv-") == marks.count("exit-JobEnv-") == len(every)
    assert marks.count("enter-StepA-") == marks.count("exit-StepA-") == len(sessions(marks, "A"))
    assert marks.count("start-") == 12


def test_parallel_lines_name_their_worker_and_task(three_workers: tuple[Result, Marks]) -> None:
    result, _ = three_workers
    texts = result.texts
    assert texts[0] == "Running job 'Parallel' with 3 local workers"
    hellos = [t for t in texts if "hello from" in t]
    assert len(hellos) == 12
    for text in hellos:
        found = re.fullmatch(r"\[w([0-2]) ([A-D]) F=(\d)\] hello from ([A-D])-(\d)", text)
        assert found is not None, text
        assert found.group(2, 3) == found.group(4, 5)
    exits = [t for t in texts if t.endswith("Process exited with code: 0")]
    assert len(exits) == 12 and all(re.match(r"\[w\d [A-D] F=\d\] ", t) for t in exits)
    banners = [t for t in texts if t.endswith("--------- Entering Environment: StepA")]
    assert banners and all(
        re.fullmatch(r"\[w\d StepA onEnter\] -+ Entering .*", t) for t in banners
    )
    assert texts[-3:] == ["", "All actions completed successfully!", "All sessions ended."]
    assert (
        "\nSteps:\n  A: SUCCEEDED, 4 of 4 tasks succeeded, 0 failed, 0 canceled, " in result.stdout
    )
    workers = re.findall(r"\n  w(\d) \(local\): (\d+) tasks, 0 failed, ", result.stdout)
    assert [w for w, _ in workers] == ["0", "1", "2"]
    assert sum(int(n) for _, n in workers) == 12


def test_one_worker_prints_what_a_single_session_prints(ojd: Ojd, marks: Marks) -> None:
    job = write_job(marks.directory.parent, step("A", 2, task("A")), step("B", 1, task("B"), "A"))
    default = ojd("run", job, "-p", f"Dir={marks.directory}")
    one = ojd("run", job, "-p", f"Dir={marks.directory}", "--workers", "1")
    assert default.returncode == one.returncode == 0, one.output
    assert one.texts == default.texts
    assert one.texts[:2] == ["Session start", "Running job 'Parallel'"]
    assert "hello from A-1" in one.texts
    assert one.stdout.split("--- Results of local session ---")[1].startswith(
        "\n\nSession ended successfully\n"
    )


FAIL_SECOND_ONCE_THREE_RUN = (
    barrier("A-", 3)
    + """
    [ {{Task.Param.F}} = 2 ] && exit 7
    sleep 60 & mark pid-child-$me $!
    wait
"""
)
NOTIFY = {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 20}


def test_fail_fast_cancels_running_tasks_and_names_the_failed_one(ojd: Ojd, marks: Marks) -> None:
    job = write_job(
        marks.directory.parent,
        step("A", 5, task("A", FAIL_SECOND_ONCE_THREE_RUN, on_term="exit 0", cancelation=NOTIFY)),
        step("B", 1, task("B"), "A"),
    )
    result = ojd("run", job, "--workers", "3", "-p", f"Dir={marks.directory}")

    assert result.returncode == 1, result.output
    assert "[w" in result.stdout and "A F=2] Task of step 'A' failed" in result.stdout
    assert re.search(r"\[w\d A F=2\] Process exited with code: 7\n", result.stdout)
    assert marks.names("start-") == ["start-A-1", "start-A-2", "start-A-3"]
    assert marks.names("term-") == ["term-A-1", "term-A-3"]
    assert marks.count("end-") == 0
    assert marks.count("enter-JobEnv-") == marks.count("exit-JobEnv-") == 3
    assert "\nFailures:\n  task 1 of step 'A' (F=2) failed with exit code 7 on worker " in (
        result.stdout
    )
    assert "  A: FAILED, 0 of 5 tasks succeeded, 1 failed, 2 canceled, " in result.stdout
    assert "  B: NOT_STARTED, 0 of 1 tasks succeeded, " in result.stdout
    assert "Job run ended with errors." in result.texts
    assert not [pid for pid in marks.pids() if process_alive(pid)]


def test_keep_going_runs_what_does_not_depend_on_the_failure(ojd: Ojd, marks: Marks) -> None:
    job = write_job(
        marks.directory.parent,
        step("A", 4, task("A", "[ {{Task.Param.F}} = 2 ] && exit 3")),
        step("B", 2, task("B"), "A"),
        step("C", 2, task("C")),
        step("D", 1, task("D"), "C"),
    )
    result = ojd(
        "run",
        job,
        "--workers",
        "2",
        "--keep-going",
        "--output",
        "json",
        "-p",
        f"Dir={marks.directory}",
    )

    assert result.returncode == 1, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "error"
    assert data["chunks_run"] == 7
    steps = {s["name"]: s for s in data["steps"]}
    assert {name: (s["outcome"], s["succeeded"], s["failed"]) for name, s in steps.items()} == {
        "A": ("FAILED", 3, 1),
        "B": ("NOT_STARTED", 0, 0),
        "C": ("SUCCEEDED", 2, 0),
        "D": ("SUCCEEDED", 1, 0),
    }
    assert (steps["A"]["total"], steps["A"]["not_run"], steps["B"]["not_run"]) == (4, 0, 2)
    assert steps["A"]["seconds"] > 0 and steps["A"]["started_at"] <= steps["A"]["ended_at"]
    workers = data["workers"]
    assert [w["worker"] for w in workers] == [0, 1]
    assert {w["location"] for w in workers} == {"local"}
    assert sum(w["tasks"] for w in workers) == 7 and sum(w["failed"] for w in workers) == 1
    assert all(w["environments_entered"] >= 1 for w in workers if w["tasks"])
    (failure,) = data["failures"]
    assert (failure["step"], failure["action"], failure["exit_code"]) == ("A", "onRun", 3)
    assert failure["message"].startswith("task 1 of step 'A' (F=2) failed with exit code 3")
    assert marks.count("start-B-") == 0
    assert marks.count("end-D-") == 1
    assert marks.count("enter-JobEnv-") == marks.count("exit-JobEnv-")
    assert "[w" in result.stderr, "the lines go to stderr when the result is a document"


WAIT_TO_BE_CANCELED = """
    sleep 300 & mark pid-child-$me $!
    mark pid-task-$me $$
    wait
"""
STUBBORN = """
    (trap '' TERM; exec sleep 300) & mark pid-child-$me $!
    mark pid-task-$me $$
    while true; do wait; done
"""
"""Ignores SIGTERM (after marking it), and so does its child."""


def _in_background(
    job: Path, marks: Marks
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    args = ("run", job, "--workers", "3", "-p", f"Dir={marks.directory}")
    return ojd_process(*args, cwd=marks.directory.parent, output=marks.directory.parent / "out")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_cancels_every_task_and_exits_every_environment(
    marks: Marks, signum: int
) -> None:
    job = write_job(
        marks.directory.parent,
        step(
            "A",
            6,
            task("A", WAIT_TO_BE_CANCELED, on_term="exit 0", cancelation=NOTIFY),
            stepEnvironments=[marked_environment("StepA")],
        ),
    )
    with _in_background(job, marks) as process:
        wait_for(lambda: marks.count("pid-") == 6)
        pids = marks.pids()
        process.send_signal(signum)
        assert process.wait(timeout=RUN_TIMEOUT) == 1
    output = (marks.directory.parent / "out").read_text()
    assert "Interruption signal received." in output
    assert "Traceback" not in output
    assert marks.count("term-") == 3 and marks.count("end-") == 0
    assert marks.count("enter-JobEnv-") == marks.count("exit-JobEnv-") == 3
    assert marks.count("enter-StepA-") == marks.count("exit-StepA-") == 3
    assert len(re.findall(r"\] Task of step 'A' was canceled\n", output)) == 3
    assert not [pid for pid in pids if process_alive(pid)]


def test_a_second_interrupt_kills_at_once_and_skips_the_exits(marks: Marks) -> None:
    stubborn = task("A", STUBBORN, on_term=":", cancelation=NOTIFY)
    job = write_job(marks.directory.parent, step("A", 6, stubborn))
    with _in_background(job, marks) as process:
        wait_for(lambda: marks.count("pid-") == 6)
        pids = marks.pids()
        process.send_signal(signal.SIGINT)
        wait_for(lambda: marks.count("term-") == 3)
        assert all(process_alive(pid) for pid in pids), "the tasks ignore SIGTERM"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=RUN_TIMEOUT) == 1
    output = (marks.directory.parent / "out").read_text()
    assert "Second interruption: stopping everything now." in output
    assert marks.count("enter-JobEnv-") == 3
    assert marks.count("exit-JobEnv-") == 0
    assert not [pid for pid in pids if process_alive(pid)]


@pytest.mark.parametrize("count", ["0", "-2", "many"])
def test_a_bad_worker_count_is_a_usage_error(ojd: Ojd, marks: Marks, count: str) -> None:
    job = write_job(marks.directory.parent, step("A", 1, task("A")))
    result = ojd("run", job, "-p", f"Dir={marks.directory}", "--workers", count)
    assert_one_error(result, 2, "argument --workers: must be a whole number of at least 1")
    assert marks.count("") == 0


def _on_a_cluster(marks: Marks, **env: str) -> Result:
    """Runs a one-task job with `--cluster tcp://127.0.0.1:9` (nobody listens there)."""
    job = write_job(marks.directory.parent, step("A", 1, task("A")))
    args = ("run", job, "-p", f"Dir={marks.directory}", "--cluster", "tcp://127.0.0.1:9")
    return run_ojd(*args, cwd=marks.directory.parent, env=dict(os.environ, **env))


def test_an_unreachable_cluster_is_one_error_line(marks: Marks) -> None:
    result = _on_a_cluster(marks, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")
    assert_one_error(result, 1, "Cannot connect to the Dask scheduler at tcp://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""
    assert marks.count("") == 0


def test_without_distributed_the_error_says_what_to_install(marks: Marks, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "distributed.py").write_text("raise ImportError('not installed')\n")
    result = _on_a_cluster(marks, PYTHONPATH=os.pathsep.join([str(shadow), *sys.path]))
    assert_one_error(result, 1, "pip install 'openjd-runtime[dask]'")
    assert marks.count("") == 0


def test_a_job_runs_on_a_dask_cluster(ojd: Ojd, marks: Marks) -> None:
    job = write_job(
        marks.directory.parent,
        step("A", 4, task("A", barrier("A-", 2)), stepEnvironments=[marked_environment("StepA")]),
        step("B", 2, task("B"), "A"),
    )
    with local_cluster() as cluster:
        result = ojd(
            "run", job, "-p", f"Dir={marks.directory}", "--cluster", cluster.scheduler_address
        )
        hosts = sorted(w.worker_address for w in cluster.workers.values())

    assert result.returncode == 0, result.output
    assert result.texts[0] == (
        f"Running job 'Parallel' with 2 workers on the Dask workers {', '.join(hosts)}"
    )
    hellos = [t for t in result.texts if "hello from" in t]
    assert sorted(re.sub(r"^\[w\d ", "[w ", t) for t in hellos) == [
        *(f"[w {s} F={f}] hello from {s}-{f}" for s, f in ("A1", "A2", "A3", "A4", "B1", "B2")),
    ]
    assert {t[:3] for t in hellos} == {"[w0", "[w1"}
    assert min(times(marks, "start", "B")) >= max(times(marks, "end", "A"))
    assert marks.count("enter-JobEnv-") == marks.count("exit-JobEnv-") == 2
    assert marks.count("enter-StepA-") == marks.count("exit-StepA-") == 2
    for host in hosts:
        assert f"({host}): " in result.stdout
