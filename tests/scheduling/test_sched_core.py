"""The scheduler's decisions, step by step, without running anything.

Each case is a script of events and what the scheduler must answer. Task labels are the step
name and the task's index in that step: `A0` is the first task handed out from step A.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from openjd_runtime import ActionResult, ActionState
from openjd_runtime.scheduling import ActionKind, ActionRef, StepOutcome, TaskRef
from openjd_runtime.scheduling.core import Idle, Scheduler, plan_steps

from .kit import chunked_step, spec

NOON = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)


def result(state: ActionState, seconds: float = 1.0) -> ActionResult:
    return ActionResult(state=state, started_at=NOON, ended_at=NOON + timedelta(seconds=seconds))


@dataclass
class Case:
    name: str
    steps: list[tuple[str, int, tuple[str, ...]]]
    """(name, number of tasks, names of the steps it depends on)"""
    script: list[tuple[Any, ...]]
    outcomes: dict[str, StepOutcome]
    failures: int = 0
    keep_going: bool = False
    workers: int = 2
    canceled: bool = False
    listed: list[str] | None = None
    """Run only these steps (default: all)."""


def scheduler_for(case: Case) -> Scheduler:
    steps = []
    for name, count, depends_on in case.steps:
        body: dict[str, Any] = {
            "name": name,
            "parameterSpace": {
                "taskParameterDefinitions": [{"name": "F", "type": "INT", "range": f"1-{count}"}]
            },
            "script": {"actions": {"onRun": {"command": "true"}}},
        }
        if depends_on:
            body["dependencies"] = [{"dependsOn": other} for other in depends_on]
        steps.append(body)
    spec_ = spec({"steps": steps}, Path("."))
    if case.listed is not None:
        wanted = case.listed
        spec_ = replace(spec_, steps=[run for run in spec_.steps if run.step.name in wanted])
    return Scheduler(plan_steps(spec_), ["local"] * case.workers, keep_going=case.keep_going)


STATES = {
    "ok": ActionState.SUCCESS,
    "fail": ActionState.FAILED,
    "timeout": ActionState.TIMEOUT,
    "canceled": ActionState.CANCELED,
}

CASES = [
    Case(
        "a dependent step waits until every task of its dependency succeeded",
        [("A", 2, ()), ("B", 1, ("A",))],
        [
            ("next", 0, None, "A0"),
            ("next", 1, None, "A1"),
            ("next", 0, "A", "wait"),
            ("ok", 0, "A0"),
            ("next", 0, "A", "wait"),
            ("ok", 1, "A1", False),
            ("next", 1, "A", "B0"),
            ("next", 0, "A", "done"),
            ("ok", 1, "B0"),
            ("next", 1, "B", "done"),
        ],
        {"A": StepOutcome.SUCCEEDED, "B": StepOutcome.SUCCEEDED},
    ),
    Case(
        "an idle worker keeps to its current step while it has tasks",
        [("A", 3, ()), ("B", 3, ())],
        [
            ("next", 0, None, "A0"),
            ("next", 1, "B", "B0"),
            ("ok", 1, "B0"),
            ("next", 1, "B", "B1"),
            ("ok", 0, "A0"),
            ("next", 0, "A", "A1"),
            ("ok", 0, "A1"),
            ("next", 0, "A", "A2"),
            ("ok", 0, "A2"),
            ("next", 0, "A", "B2"),
            ("ok", 0, "B2"),
            ("ok", 1, "B1"),
            ("next", 0, "B", "done"),
        ],
        {"A": StepOutcome.SUCCEEDED, "B": StepOutcome.SUCCEEDED},
    ),
    Case(
        "fail-fast: a failed task stops the run; nothing new starts",
        [("A", 3, ()), ("B", 1, ("A",)), ("C", 2, ())],
        [
            ("next", 0, None, "A0"),
            ("next", 1, None, "A1"),
            ("fail", 0, "A0", True),
            ("next", 0, "A", "done"),
            ("canceled", 1, "A1", False),
            ("next", 1, "A", "done"),
        ],
        {"A": StepOutcome.FAILED, "B": StepOutcome.NOT_STARTED, "C": StepOutcome.NOT_STARTED},
        failures=1,
    ),
    Case(
        "a canceled task that nobody canceled is a failure",
        [("A", 2, ())],
        [("next", 0, None, "A0"), ("canceled", 0, "A0", True)],
        {"A": StepOutcome.FAILED},
        failures=1,
    ),
    Case(
        "keep-going: the failed step finishes its other tasks; its dependents never start",
        [("A", 3, ()), ("B", 1, ("A",)), ("C", 1, ("B",)), ("D", 1, ())],
        [
            ("next", 0, None, "A0"),
            ("timeout", 0, "A0", False),
            ("next", 0, "A", "A1"),
            ("ok", 0, "A1"),
            ("next", 0, "A", "A2"),
            ("ok", 0, "A2"),
            ("next", 0, "A", "D0"),
            ("ok", 0, "D0"),
            ("next", 0, "D", "done"),
        ],
        {
            "A": StepOutcome.FAILED,
            "B": StepOutcome.NOT_STARTED,
            "C": StepOutcome.NOT_STARTED,
            "D": StepOutcome.SUCCEEDED,
        },
        failures=1,
        keep_going=True,
    ),
    Case(
        "keep-going: a step environment that fails ends its step; its task is dropped",
        [("A", 3, ()), ("B", 1, ("A",)), ("C", 1, ())],
        [
            ("next", 0, None, "A0"),
            ("next", 1, None, "A1"),
            ("enter", 0, "A", "fail", False),
            ("drop", 0, "A0"),
            ("next", 0, None, "C0"),
            ("ok", 1, "A1"),
            ("next", 1, "A", "done"),
            ("ok", 0, "C0"),
        ],
        {"A": StepOutcome.FAILED, "B": StepOutcome.NOT_STARTED, "C": StepOutcome.SUCCEEDED},
        failures=1,
        keep_going=True,
    ),
    Case(
        "keep-going: a job environment that fails still stops the run",
        [("A", 3, ())],
        [
            ("next", 0, None, "A0"),
            ("next", 1, None, "A1"),
            ("enter", 0, None, "fail", True),
            ("drop", 0, "A0"),
            ("enter", 1, None, "canceled", False),
            ("drop", 1, "A1"),
            ("next", 1, None, "done"),
        ],
        {"A": StepOutcome.CANCELED},
        failures=1,
        keep_going=True,
    ),
    Case(
        "keep-going: a failed onExit is a failure but stops nothing",
        [("A", 2, ())],
        [
            ("next", 0, None, "A0"),
            ("ok", 0, "A0"),
            ("exit", 0, None, "fail", False),
            ("next", 0, None, "A1"),
            ("ok", 0, "A1"),
            ("next", 0, "A", "done"),
        ],
        {"A": StepOutcome.SUCCEEDED},
        failures=1,
        keep_going=True,
    ),
    Case(
        "fail-fast: a failed onExit stops the run",
        [("A", 2, ())],
        [
            ("next", 0, None, "A0"),
            ("ok", 0, "A0"),
            ("exit", 0, "A", "timeout", True),
            ("next", 0, None, "done"),
        ],
        {"A": StepOutcome.CANCELED},
        failures=1,
    ),
    Case(
        "a lost worker's task counts as failed",
        [("A", 2, ()), ("B", 1, ("A",))],
        [
            ("next", 0, None, "A0"),
            ("next", 1, None, "A1"),
            ("lost", 1, True),
            ("canceled", 0, "A0", False),
        ],
        {"A": StepOutcome.FAILED, "B": StepOutcome.NOT_STARTED},
        failures=1,
    ),
    Case(
        "canceling the run: running tasks end canceled, nothing else starts",
        [("A", 3, ()), ("B", 1, ("A",))],
        [
            ("next", 0, None, "A0"),
            ("ok", 0, "A0"),
            ("next", 0, "A", "A1"),
            ("cancel", True),
            ("next", 1, None, "done"),
            ("canceled", 0, "A1", False),
            ("exit", 0, None, "canceled", False),
        ],
        {"A": StepOutcome.CANCELED, "B": StepOutcome.NOT_STARTED},
        canceled=True,
    ),
    Case(
        "fail-fast: a worker that cannot start a session stops the run",
        [("A", 3, ())],
        [
            ("next", 0, None, "A0"),
            ("next", 1, None, "A1"),
            ("broken", 0, True),
            ("drop", 0, "A0"),
            ("canceled", 1, "A1", False),
            ("next", 1, "A", "done"),
        ],
        {"A": StepOutcome.CANCELED},
        failures=1,
    ),
    Case(
        "keep-going: the others take the tasks of a worker that cannot start a session",
        [("A", 3, ())],
        [
            ("next", 0, None, "A0"),
            ("broken", 0, False),
            ("drop", 0, "A0"),
            ("next", 1, None, "A1"),
            ("ok", 1, "A1"),
            ("next", 1, "A", "A2"),
            ("ok", 1, "A2"),
            ("next", 1, "A", "done"),
        ],
        {"A": StepOutcome.CANCELED},
        failures=1,
        keep_going=True,
    ),
    Case(
        "a dependency outside the listed steps counts as met",
        [("A", 1, ()), ("B", 1, ("A",))],
        [("next", 0, None, "B0"), ("ok", 0, "B0"), ("next", 0, "B", "done")],
        {"B": StepOutcome.SUCCEEDED},
        listed=["B"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_scheduler(case: Case) -> None:
    scheduler = scheduler_for(case)
    handed: dict[str, TaskRef] = {}
    for number, (op, *args) in enumerate(case.script):
        where = f"step {number} of the script: {(op, *args)}"
        answer: Any = None
        if op == "next":
            worker, current, expected = args
            got = scheduler.next_task(worker, current)
            if isinstance(got, Idle):
                assert got.value == expected, where
            else:
                label = f"{got.step}{got.index}"
                assert label == expected, where
                handed[label] = got
            continue
        if op in STATES:
            worker, label, *expect = args
            answer = scheduler.task_ended(worker, handed[label], result(STATES[op]))
        elif op == "drop":
            worker, label, *expect = args
            scheduler.task_dropped(worker, handed[label])
        elif op in ("enter", "exit"):
            worker, step, state, *expect = args
            kind = ActionKind.ENTER if op == "enter" else ActionKind.EXIT
            action = ActionRef(kind, step, environment="Env")
            answer = scheduler.environment_ended(worker, action, result(STATES[state]))
        elif op == "lost":
            worker, *expect = args
            answer = scheduler.worker_lost(worker, "gone")
        elif op == "broken":
            worker, *expect = args
            answer = scheduler.session_failed(worker, "no session")
        elif op == "cancel":
            expect = list(args)
            answer = scheduler.cancel()
        else:
            raise AssertionError(f"unknown op {op}")
        if expect:
            assert answer is expect[0], where

    final = scheduler.result(duration=1.0)
    assert {step.name: step.outcome for step in final.steps} == case.outcomes
    assert len(final.failures) == case.failures
    assert final.canceled is case.canceled
    assert final.success is (
        not case.failures
        and not case.canceled
        and all(o is StepOutcome.SUCCEEDED for o in case.outcomes.values())
    )


def test_the_result_adds_up_tasks_and_times_per_step_and_worker() -> None:
    case = Case("", [("A", 3, ())], [], {})
    scheduler = scheduler_for(case)
    first = scheduler.next_task(0, None)
    second = scheduler.next_task(1, None)
    third = scheduler.next_task(1, None)
    assert isinstance(first, TaskRef) and isinstance(second, TaskRef)
    assert isinstance(third, TaskRef)
    scheduler.task_ended(0, first, result(ActionState.SUCCESS, 2.0))
    scheduler.task_ended(1, second, result(ActionState.SUCCESS, 3.0))
    scheduler.task_ended(1, third, result(ActionState.SUCCESS, 0.5))
    scheduler.environment_ended(
        1, ActionRef(ActionKind.ENTER, None, "Env"), result(ActionState.SUCCESS)
    )

    final = scheduler.result(duration=4.0)
    (step,) = final.steps
    assert (step.total, step.succeeded, step.failed, step.canceled, step.not_run) == (3, 3, 0, 0, 0)
    assert step.seconds == 5.5
    assert (step.started_at, step.ended_at) == (NOON, NOON + timedelta(seconds=3))
    assert [(w.tasks, w.seconds, w.environments_entered) for w in final.workers] == [
        (1, 2.0, 0),
        (2, 3.5, 1),
    ]
    assert final.tasks_succeeded == 3 and final.duration == 4.0


def test_progress_counts_succeeded_tasks_and_busy_workers() -> None:
    scheduler = scheduler_for(Case("", [("A", 2, ()), ("B", 3, ("A",))], [], {}, workers=3))
    first = scheduler.next_task(0, None)
    second = scheduler.next_task(1, None)
    assert isinstance(first, TaskRef) and isinstance(second, TaskRef)
    scheduler.task_ended(0, first, result(ActionState.SUCCESS))

    progress = scheduler.progress()
    assert {name: (s.succeeded, s.total) for name, s in progress.steps.items()} == {
        "A": (1, 2),
        "B": (0, 3),
    }
    assert (progress.succeeded, progress.total, progress.busy, progress.workers) == (1, 5, 1, 3)


def test_adaptive_chunking_tells_when_it_resizes_the_chunks() -> None:
    chunks = {"defaultTaskCount": 2, "targetRuntimeSeconds": 10, "rangeConstraint": "CONTIGUOUS"}
    chunked = chunked_step("A", "1-100", chunks, {"command": "true"})
    spec_ = spec({"extensions": ["TASK_CHUNKING"], "steps": [chunked]}, Path("."))
    sizes: list[tuple[str, int]] = []
    scheduler = Scheduler(
        plan_steps(spec_), ["local"], on_chunk_size=lambda step, size: sizes.append((step, size))
    )
    task = scheduler.next_task(0, None)
    assert isinstance(task, TaskRef) and task.parameters["F"].value == "1-2"
    scheduler.task_ended(0, task, result(ActionState.SUCCESS, 1.0))
    assert sizes == [("A", 6)]
    following = scheduler.next_task(0, "A")
    assert isinstance(following, TaskRef) and following.parameters["F"].value == "3-8"
    assert scheduler.progress().steps["A"].total is None


def test_a_failure_names_the_task_and_why() -> None:
    scheduler = scheduler_for(Case("", [("Render", 2, ())], [], {}))
    task = scheduler.next_task(0, None)
    assert isinstance(task, TaskRef)
    failed = ActionResult(
        state=ActionState.FAILED, exit_code=3, fail_message="no license", started_at=NOON
    )
    scheduler.task_ended(0, task, failed)

    failure = scheduler.result(1.0).failure
    assert failure is not None
    assert failure.message == (
        "task 0 of step 'Render' (F=1) failed with exit code 3 on worker 0: no license"
    )
    assert failure.result is failed
