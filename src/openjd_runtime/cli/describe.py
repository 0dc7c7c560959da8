"""`ojd summary` and the template part of `ojd run PATH --help`. Pure functions over the model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openjd.model import (
    JobParameterValues,
    JobTemplate,
    StepParameterSpaceIterator,
)
from openjd.model.v2023_09 import Environment, Job, Step

_CONSTRAINTS = (
    ("allowedValues", "allowed"),
    ("minValue", "min"),
    ("maxValue", "max"),
    ("minLength", "min length"),
    ("maxLength", "max length"),
)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    return str(value)


def _range_text(definition: Any) -> str | list[str]:
    if isinstance(definition.range, list):
        return [str(item) for item in definition.range]
    return str(definition.range)


def step_summary(step: Step) -> dict[str, Any]:
    """Counts come from the parameter space itself: no task is materialized."""
    data: dict[str, Any] = {
        "name": step.name,
        "dependencies": [dep.dependsOn for dep in step.dependencies or []],
        "environments": [env.name for env in step.stepEnvironments or []],
        "task_parameters": {},
        "tasks": 1,
        "chunks": None,
    }
    space = step.parameterSpace
    if space is None:
        return data
    data["task_parameters"] = {
        name: {"type": definition.type.value, "range": _range_text(definition)}
        for name, definition in space.taskParameterDefinitions.items()
    }
    if space.combination is not None:
        data["combination"] = str(space.combination)
    data["tasks"] = len(StepParameterSpaceIterator(space=space, chunks_task_count_override=1))
    chunked = StepParameterSpaceIterator(space=space)
    name = chunked.chunks_parameter_name
    chunks = None if name is None else space.taskParameterDefinitions[name].chunks
    if name is not None and chunks is not None:
        target = int(chunks.targetRuntimeSeconds or 0)
        data["chunks"] = {
            "parameter": name,
            "default_task_count": int(chunks.defaultTaskCount),
            "target_runtime_seconds": target or None,
            "count": None if chunked.chunks_adaptive else len(chunked),
        }
    return data


def job_summary(
    job: Job,
    values: JobParameterValues,
    external: Sequence[Environment],
    steps: Sequence[Step],
) -> dict[str, Any]:
    step_data = [step_summary(step) for step in steps]
    return {
        "job_name": job.name,
        "parameters": {
            name: {"type": value.type.value, "value": value.value} for name, value in values.items()
        },
        "external_environments": [env.name for env in external],
        "job_environments": [env.name for env in job.jobEnvironments or []],
        "total_steps": len(steps),
        "total_tasks": sum(step["tasks"] for step in step_data),
        "steps": step_data,
    }


def _chunk_text(chunks: dict[str, Any] | None) -> str:
    if chunks is None:
        return ""
    size = chunks["default_task_count"]
    if chunks["count"] is not None:
        return f" in {chunks['count']} chunk(s) of up to {size}"
    return f" in chunks of {size} at first, sized to take {chunks['target_runtime_seconds']} s each"


def summary_text(summary: dict[str, Any]) -> str:
    lines = [f"Job: {summary['job_name']}"]
    if summary["parameters"]:
        lines.append("Parameters:")
        lines += [
            f"  {name} ({p['type']}) = {_text(p['value'])}"
            for name, p in summary["parameters"].items()
        ]
    if summary["external_environments"]:
        lines.append(f"External environments: {', '.join(summary['external_environments'])}")
    if summary["job_environments"]:
        lines.append(f"Job environments: {', '.join(summary['job_environments'])}")
    lines.append(f"Steps: {summary['total_steps']}, tasks: {summary['total_tasks']}")
    for step in summary["steps"]:
        lines.append(f"Step '{step['name']}'")
        if step["dependencies"]:
            lines.append(f"  Depends on: {', '.join(step['dependencies'])}")
        if step["environments"]:
            lines.append(f"  Environments: {', '.join(step['environments'])}")
        if step["task_parameters"]:
            lines.append("  Task parameters:")
            lines += [
                f"    {name} ({p['type']}): {_text(p['range'])}"
                for name, p in step["task_parameters"].items()
            ]
        if "combination" in step:
            lines.append(f"  Combination: {step['combination']}")
        lines.append(f"  Tasks: {step['tasks']}{_chunk_text(step['chunks'])}")
    return "\n".join(lines) + "\n"


def _parameter_help(definition: Any, description: str | None) -> list[str]:
    head = f"  -p {definition.name}=<{definition.type.value}>"
    facts = []
    default = getattr(definition, "default", None)
    facts.append("required" if default is None else f"default: {_text(default)}")
    for attribute, label in _CONSTRAINTS:
        value = getattr(definition, attribute, None)
        if value is not None:
            facts.append(f"{label}: {_text(value)}")
    lines = [f"{head}  ({'; '.join(facts)})"]
    if description:
        lines += [f"        {line}" for line in str(description).splitlines()]
    return lines


def template_help(
    template: JobTemplate,
    path: str,
    parameter_definitions: Sequence[Any],
    descriptions: Mapping[str, str],
) -> str:
    """The part of `ojd run PATH --help` that only the template knows. `parameter_definitions`
    are merged with those of the environment templates; the descriptions are the templates'."""
    lines = ["", f"Job template '{path}': {template.name}"]
    if template.description:
        lines += [f"  {line}" for line in str(template.description).splitlines()]
    if parameter_definitions:
        lines += ["", "Job parameters:"]
        for definition in parameter_definitions:
            lines += _parameter_help(definition, descriptions.get(definition.name))
    else:
        lines += ["", "This job has no parameters."]
    lines += ["", "Steps:"]
    for step in template.steps:
        depends = [dep.dependsOn for dep in step.dependencies or []]
        after = f" (after {', '.join(depends)})" if depends else ""
        lines.append(f"  {step.name}{after}")
    return "\n".join(lines) + "\n"
