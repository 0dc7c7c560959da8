"""Jobs run on a real Dask cluster: a LocalCluster of two worker processes on the loopback."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest
from distributed import LocalCluster

from openjd_runtime.scheduling import (
    ActionKind,
    ClusterError,
    ClusterJobRun,
    RunEvent,
    StepOutcome,
    run_job_on_cluster,
)

from .kit import (
    NOTIFY,
    WAIT_FOR_CANCEL,
    Marks,
    counting_lines,
    environment,
    job,
    lines_of,
    local_cluster,
    step,
    task,
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster() as local:
        yield local


def _workers(cluster: LocalCluster) -> set[str]:
    return {worker.worker_address for worker in cluster.workers.values()}


TALK_THEN_WAIT_FOR_GO = """
print("ready " + me, flush=True)
wait_for("go-" + me, 30)
"""


async def test_a_multi_step_job_runs_on_two_cluster_workers(
    cluster: LocalCluster, marks: Marks
) -> None:
    """Each task of A waits for a file that the run's `on_event` writes when it sees the task's
    line: the run only completes if output streams back while tasks run."""
    spec_ = job(
        marks,
        step(
            "A",
            4,
            task("A", TALK_THEN_WAIT_FOR_GO),
            stepEnvironments=[environment("StepA")],
        ),
        step("B", 2, task("B", 'print("done " + me)'), depends_on=("A",)),
    )
    events: list[RunEvent] = []

    def on_event(event: RunEvent) -> None:
        events.append(event)
        for line in lines_of([event]):
            if line.text.startswith("ready "):
                (marks.directory / ("go-" + line.text.removeprefix("ready "))).touch()

    result = await run_job_on_cluster(spec_, cluster=cluster.scheduler_address, on_event=on_event)

    assert result.success, result.failures
    assert [(s.name, s.outcome, s.succeeded) for s in result.steps] == [
        ("A", StepOutcome.SUCCEEDED, 4),
        ("B", StepOutcome.SUCCEEDED, 2),
    ]
    assert {w.location for w in result.workers} == _workers(cluster)
    assert sum(w.tasks for w in result.workers) == 6
    assert all(w.tasks for w in result.workers)
    assert marks.count("enter-Job-") == marks.count("exit-Job-") == 2
    assert marks.count("enter-StepA-") == marks.count("exit-StepA-") == 2
    ends_of_a = [marks.number(name) for name in marks.names("end-A-")]
    starts_of_b = [marks.number(name) for name in marks.names("start-B-")]
    assert min(starts_of_b) >= max(ends_of_a)
    task_lines = sorted(
        (line.text, line.action.task.step, line.action.task.parameters["F"].value)
        for line in lines_of(events)
        if line.action.kind is ActionKind.RUN and line.action.task is not None
    )
    assert task_lines == [
        *((f"done B-{f}", "B", str(f)) for f in (1, 2)),
        *((f"ready A-{f}", "A", str(f)) for f in (1, 2, 3, 4)),
    ]
    assert marks.living() == []


async def test_cancelling_a_cluster_run_cancels_tasks_and_still_exits_environments(
    cluster: LocalCluster, marks: Marks
) -> None:
    waiting = task("A", 'print("waiting", flush=True)\n' + WAIT_FOR_CANCEL)
    spec_ = job(
        marks,
        step("A", 4, {**waiting, "cancelation": NOTIFY}, stepEnvironments=[environment("StepA")]),
    )
    on_line, both_waiting = counting_lines("waiting", 2)
    running = asyncio.ensure_future(
        run_job_on_cluster(spec_, cluster=cluster.scheduler_address, on_event=on_line)
    )
    await asyncio.wait_for(both_waiting.wait(), 30)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert marks.count("term-") == 2
    assert marks.count("end-") == 0
    assert marks.count("enter-Job-") == marks.count("exit-Job-") == 2
    assert marks.count("enter-StepA-") == marks.count("exit-StepA-") == 2
    assert marks.living() == []


async def test_a_failed_task_on_the_cluster_fails_the_run(
    cluster: LocalCluster, marks: Marks
) -> None:
    failing = task("A", 'if f == "3": sys.exit(5)')
    spec_ = job(marks, step("A", 3, failing), step("B", 1, task("B"), depends_on=("A",)))
    result = await ClusterJobRun(spec_, cluster=cluster.scheduler_address, workers=1).run()

    assert not result.success
    failure = result.failure
    assert failure is not None and failure.action is not None
    assert failure.action.task is not None
    assert failure.action.task.parameters["F"].value == "3"
    assert "failed with exit code 5 on worker 0" in failure.message
    assert [s.outcome for s in result.steps] == [StepOutcome.FAILED, StepOutcome.NOT_STARTED]
    assert marks.count("enter-Job-") == marks.count("exit-Job-") == 1
    assert marks.living() == []


async def test_an_unreachable_cluster_is_a_clear_error(marks: Marks) -> None:
    spec_ = job(marks, step("A", 1, task("A")))
    run = ClusterJobRun(spec_, cluster="tcp://127.0.0.1:9", connect_timeout=1)
    with pytest.raises(ClusterError, match=r"Cannot connect to the Dask scheduler at tcp://"):
        await run.run()


async def test_without_distributed_the_error_says_what_to_install(
    marks: Marks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    spec_ = job(marks, step("A", 1, task("A")))
    with pytest.raises(ClusterError, match=r"openjd-runtime\[dask\]"):
        await run_job_on_cluster(spec_, cluster="tcp://127.0.0.1:9")
