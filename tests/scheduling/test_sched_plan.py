"""The job-planning pieces the CLI and the runner share: step order, task queues, adaptive
chunk sizes (pure logic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openjd.model import ParameterValue, ParameterValueType

from openjd_runtime.jobs import AdaptiveChunkSize, TaskQueue, job_steps

from .kit import spec


def make_job(body: dict[str, Any]) -> Any:
    return spec(body, Path(".")).job


def _step(name: str, *depends_on: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "script": {"actions": {"onRun": {"command": "true"}}}}
    if depends_on:
        body["dependencies"] = [{"dependsOn": other} for other in depends_on]
    return {**body, **extra}


SPACE_JOB = make_job(
    {
        "extensions": ["TASK_CHUNKING"],
        "steps": [
            _step(
                "Tasks",
                parameterSpace={
                    "taskParameterDefinitions": [
                        {"name": "I", "type": "INT", "range": "1-5"},
                        {"name": "F", "type": "FLOAT", "range": ["1.5", "2.25"]},
                        {"name": "S", "type": "STRING", "range": ["a", "b c"]},
                        {
                            "name": "C",
                            "type": "CHUNK[INT]",
                            "range": "1-10",
                            "chunks": {"defaultTaskCount": 3, "rangeConstraint": "NONCONTIGUOUS"},
                        },
                    ]
                },
            ),
            _step("Plain"),
        ],
    }
)

ADAPTIVE_JOB = make_job(
    {
        "extensions": ["TASK_CHUNKING"],
        "steps": [
            _step(
                "Chunks",
                parameterSpace={
                    "taskParameterDefinitions": [
                        {
                            "name": "F",
                            "type": "CHUNK[INT]",
                            "range": "1-40",
                            "chunks": {
                                "defaultTaskCount": 2,
                                "targetRuntimeSeconds": 10,
                                "rangeConstraint": "CONTIGUOUS",
                            },
                        }
                    ]
                },
            )
        ],
    }
)


def test_job_steps_are_in_dependency_order_with_their_symbol_tables() -> None:
    job = make_job({"steps": [_step("C", "B"), _step("B", "A"), _step("A"), _step("D")]})
    symtab: Any = {"marker": 1}
    runs = job_steps(job, {"B": symtab})
    names = [run.step.name for run in runs]
    assert sorted(names) == ["A", "B", "C", "D"]
    assert names.index("A") < names.index("B") < names.index("C")
    assert [run.symtab for run in runs if run.step.name == "B"] == [symtab]
    assert all(run.symtab is None for run in runs if run.step.name != "B")
    assert all(run.explicit_tasks is None for run in runs)


@pytest.mark.parametrize(
    ("target", "size", "runs", "expected"),
    [
        # one fast chunk of 2 in 1 s with a 10 s target: ideal 20, damped to 0.75*2 + 0.25*20
        (10, 2, [(2, 1.0)], [6]),
        # already at ten tasks: no damping
        (10, 10, [(10, 1.0)], [100]),
        # slower than the target shrinks at once, undamped
        (10, 4, [(4, 20.0)], [2]),
        # the same size is not reported again; bad times are ignored
        (10, 5, [(5, 10.0), (5, 0.0), (5, float("inf"))], [None, None, None]),
        # never below one
        (1, 3, [(3, 300.0)], [1]),
        # averages over every chunk so far
        (10, 2, [(2, 1.0), (6, 3.0)], [6, 9]),
    ],
)
def test_adaptive_chunk_size(
    target: float, size: int, runs: list[tuple[int, float]], expected: list[int | None]
) -> None:
    chunker = AdaptiveChunkSize(target_seconds=target, size=size)
    assert [chunker.record(tasks, seconds) for tasks, seconds in runs] == expected


def _expand(chunk: str) -> list[int]:
    start, _, end = chunk.partition("-")
    return list(range(int(start), int(end or start) + 1))


def test_task_queue_adapts_chunks() -> None:
    queue = TaskQueue(ADAPTIVE_JOB.steps[0], None, -1)
    assert queue.total is None
    seen = []
    for task in queue:
        seen.append(task["F"].value)
        queue.task_done(task, 1.0)
    assert seen[:2] == ["1-2", "3-8"]
    frames = [n for chunk in seen for n in _expand(chunk)]
    assert frames == list(range(1, 41))


@pytest.mark.parametrize(("maximum", "expected"), [(-1, 80), (0, 80), (3, 3), (100, 80)])
def test_task_queue_maximum(maximum: int, expected: int) -> None:
    queue = TaskQueue(SPACE_JOB.steps[0], None, maximum)
    assert queue.total == expected
    assert len(list(queue)) == expected


def test_task_queue_explicit_and_no_space() -> None:
    task = {"I": ParameterValue(type=ParameterValueType.INT, value="1")}
    queue = TaskQueue(SPACE_JOB.steps[0], [task, task], -1)
    assert queue.total == 2
    assert list(queue) == [task, task]
    plain = TaskQueue(SPACE_JOB.steps[1], None, 5)
    assert plain.total == 1
    assert list(plain) == [{}]
    assert plain.task_done({}, 1.0) is None
