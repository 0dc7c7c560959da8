"""What a run will do: which steps, which tasks, in what order. Pure logic, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openjd.model import (
    IntRangeExpr,
    ParameterValue,
    ParameterValueType,
    StepDependencyGraph,
    StepParameterSpaceIterator,
    TaskParameterSet,
)
from openjd.model.v2023_09 import Environment, Job, Step, StepParameterSpace, TaskParameterType

from ..jobs import JobRunSpec
from .errors import EXIT_USAGE, CliError

WRAP_HOOKS = ("onWrapEnvEnter", "onWrapTaskRun", "onWrapEnvExit")


def select_steps(job: Job, step_name: str | None, run_dependencies: bool) -> list[Step]:
    """The steps to run, each after the steps it depends on (template order otherwise)."""
    graph = StepDependencyGraph(job=job)
    ordered: list[Step] = graph.topo_sorted()
    if step_name is None:
        return ordered
    if all(step.name != step_name for step in job.steps):
        raise CliError(f"No Step with name '{step_name}' is defined in the given Job Template.")
    wanted = {step_name}
    if run_dependencies:
        pending = [step_name]
        while pending:
            for edge in graph.step_node(stepname=pending.pop()).in_edges:
                name = edge.origin.step.name
                if name not in wanted:
                    wanted.add(name)
                    pending.append(name)
    return [step for step in ordered if step.name in wanted]


def check_wrap_stack(environments: Sequence[Environment]) -> None:
    """RFC 0008: a session stack holding two wrapping environments is rejected before any runs."""
    wrapping = [
        env.name
        for env in environments
        if env.script is not None
        and any(getattr(env.script.actions, hook, None) is not None for hook in WRAP_HOOKS)
    ]
    if len(wrapping) > 1:
        raise CliError(
            "RFC 0008: at most one environment in a session may define wrap hooks "
            f"({', '.join(WRAP_HOOKS)}). Found {len(wrapping)}: {', '.join(wrapping)}."
        )


def parse_task_param_args(items: Sequence[str]) -> dict[str, str]:
    """`-tp NAME=VALUE` arguments as one task."""
    task: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"Task parameter '{item}' must be NAME=VALUE.", EXIT_USAGE)
        task[name] = value
    return task


def tasks_from_document(document: Any) -> list[dict[str, Any]]:
    """`--tasks`: a list of objects mapping task parameter names to strings or numbers."""
    if not isinstance(document, list):
        raise CliError("--tasks must be a list of {name: value} objects.")
    for index, task in enumerate(document):
        if not isinstance(task, dict):
            raise CliError(f"--tasks item {index} must be an object of task parameter values.")
        for name, value in task.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise CliError(
                    f"--tasks item {index}: the value of '{name}' must be a string or a number."
                )
    return document


def _coerce_value(name: str, definition: Any, value: Any) -> str:
    """A user-given value in the text form the parameter space uses for that type."""
    kind = definition.type
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"the value of '{name}' must be a string or a number")
    if kind is TaskParameterType.INT:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"'{name}' is INT; {value!r} is not an integer")
        try:
            return str(int(value))
        except ValueError:
            raise ValueError(f"'{name}' is INT; {value!r} is not an integer") from None
    if kind is TaskParameterType.FLOAT:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"'{name}' is FLOAT; {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"'{name}' is FLOAT; {value!r} is not a finite number")
        if isinstance(definition.range, list):
            for item in definition.range:
                if float(item) == number:
                    return str(item)
        return value if isinstance(value, str) else repr(value)
    if kind is TaskParameterType.CHUNK_INT:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"'{name}' is CHUNK[INT]; {value!r} is not an integer")
        text = value.strip() if isinstance(value, str) else str(int(value))
        try:
            IntRangeExpr.from_str(text)
            return text
        except ValueError as exc:
            raise ValueError(f"'{name}' is CHUNK[INT]; {value!r} is not a range: {exc}") from None
    return str(value)


def coerce_task(space: StepParameterSpace, raw: Mapping[str, Any]) -> TaskParameterSet:
    """Explicit task values checked against the step's parameter space, before anything runs."""
    definitions = space.taskParameterDefinitions
    unknown = sorted(set(raw) - set(definitions))
    if unknown:
        raise ValueError(f"unknown task parameter(s): {', '.join(unknown)}")
    missing = [name for name in definitions if name not in raw]
    if missing:
        raise ValueError(f"missing value(s) for task parameter(s): {', '.join(missing)}")
    task: TaskParameterSet = {
        name: ParameterValue(
            type=ParameterValueType(definition.type.value),
            value=_coerce_value(name, definition, raw[name]),
        )
        for name, definition in definitions.items()
    }
    StepParameterSpaceIterator(space=space).validate_containment(task)
    return task


def explicit_tasks(step: Step, raw_tasks: Sequence[Mapping[str, Any]]) -> list[TaskParameterSet]:
    if step.parameterSpace is None:
        raise CliError(
            f"Step '{step.name}' has no task parameters, so --task-param and --tasks do not apply."
        )
    tasks: list[TaskParameterSet] = []
    for index, raw in enumerate(raw_tasks):
        try:
            tasks.append(coerce_task(step.parameterSpace, raw))
        except ValueError as exc:
            raise CliError(f"Task {index}: {exc}") from exc
    return tasks


@dataclass(frozen=True)
class RunPlan:
    """Everything decided before the first process starts."""

    spec: JobRunSpec
    selected_step: str | None = None
    verbose: bool = False
    workers: int | None = 1
    """Sessions at once; None on a cluster means one per worker thread of the cluster."""
    cluster: str | None = None
    """The Dask scheduler's address, or None to run on this host."""
    keep_going: bool = False

    @property
    def parallel(self) -> bool:
        """Whether lines must say which worker and task they belong to."""
        return self.cluster is not None or self.workers != 1
