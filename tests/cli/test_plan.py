"""Step selection, explicit tasks and the wrap preflight (pure logic)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from openjd.model import (
    DocumentType,
    ParameterValue,
    create_job,
    decode_job_template,
    document_string_to_object,
    parse_model,
    preprocess_job_parameters,
)
from openjd.model.v2023_09 import Environment, Job, StepParameterSpace

from openjd_runtime.cli.errors import CliError
from openjd_runtime.cli.plan import (
    check_wrap_stack,
    coerce_task,
    explicit_tasks,
    parse_task_param_args,
    select_steps,
    tasks_from_document,
)

EXTENSIONS = ["TASK_CHUNKING", "EXPR", "WRAP_ACTIONS"]


def make_job(text: str) -> Job:
    template = decode_job_template(
        template=document_string_to_object(
            document=textwrap.dedent(text), document_type=DocumentType.YAML
        ),
        supported_extensions=EXTENSIONS,
    )
    values = preprocess_job_parameters(
        job_template=template,
        job_parameter_values={},
        job_template_dir=Path("/"),
        current_working_dir=Path("/"),
    )
    return create_job(job_template=template, job_parameter_values=values)


def _step(name: str, *deps: str) -> str:
    lines = [f"  - name: {name}"]
    if deps:
        lines.append("    dependencies: [" + ", ".join(f"{{dependsOn: {d}}}" for d in deps) + "]")
    lines.append("    script: {actions: {onRun: {command: 'true'}}}")
    return "\n".join(lines)


# D depends on B and C; B on A; E is independent; declared out of order on purpose.
GRAPH = make_job(
    "specificationVersion: jobtemplate-2023-09\nname: G\nsteps:\n"
    + "\n".join([_step("D", "B", "C"), _step("B", "A"), _step("A"), _step("E"), _step("C")])
)


def _names(steps: Any) -> list[str]:
    return [step.name for step in steps]


def test_all_steps_run_after_their_dependencies() -> None:
    order = _names(select_steps(GRAPH, None, False))
    assert sorted(order) == ["A", "B", "C", "D", "E"]
    for step, deps in {"D": ["B", "C"], "B": ["A"]}.items():
        for dep in deps:
            assert order.index(dep) < order.index(step)


@pytest.mark.parametrize(
    ("step", "run_dependencies", "expected"),
    [
        ("D", False, {"D"}),
        ("D", True, {"A", "B", "C", "D"}),
        ("B", True, {"A", "B"}),
        ("E", True, {"E"}),
    ],
)
def test_select_one_step(step: str, run_dependencies: bool, expected: set[str]) -> None:
    order = _names(select_steps(GRAPH, step, run_dependencies))
    assert set(order) == expected
    assert order[-1] == step
    if "A" in order:
        assert order.index("A") < order.index("B")


def test_unknown_step() -> None:
    with pytest.raises(CliError, match="No Step with name 'Z'"):
        select_steps(GRAPH, "Z", False)


SPACE_JOB = make_job(
    """
    specificationVersion: jobtemplate-2023-09
    extensions: [TASK_CHUNKING]
    name: S
    steps:
      - name: Tasks
        parameterSpace:
          taskParameterDefinitions:
            - {name: I, type: INT, range: "1-5"}
            - {name: F, type: FLOAT, range: ["1.5", "2.25"]}
            - {name: S, type: STRING, range: ["a", "b c"]}
            - {name: C, type: "CHUNK[INT]", range: "1-10",
               chunks: {defaultTaskCount: 3, rangeConstraint: NONCONTIGUOUS}}
        script: {actions: {onRun: {command: "true"}}}
      - name: Plain
        script: {actions: {onRun: {command: "true"}}}
    """
)
_SPACE = SPACE_JOB.steps[0].parameterSpace
assert _SPACE is not None
SPACE: StepParameterSpace = _SPACE


def _values(task: dict[str, ParameterValue]) -> dict[str, Any]:
    return {name: (value.type.value, value.value) for name, value in task.items()}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"I": "3", "F": "1.5", "S": "a", "C": "2-4"},
            {
                "I": ("INT", "3"),
                "F": ("FLOAT", "1.5"),
                "S": ("STRING", "a"),
                "C": ("CHUNK[INT]", "2-4"),
            },
        ),
        (
            {"I": 3, "F": 2.25, "S": "b c", "C": 7},
            {
                "I": ("INT", "3"),
                "F": ("FLOAT", "2.25"),
                "S": ("STRING", "b c"),
                "C": ("CHUNK[INT]", "7"),
            },
        ),
        (
            {"I": "03", "F": "1.50", "S": "a", "C": "1,2,3,9"},
            {
                "I": ("INT", "3"),
                "F": ("FLOAT", "1.5"),
                "S": ("STRING", "a"),
                "C": ("CHUNK[INT]", "1,2,3,9"),
            },
        ),
        (
            {"I": 4.0, "F": "2.250", "S": "a", "C": "5-6"},
            {
                "I": ("INT", "4"),
                "F": ("FLOAT", "2.25"),
                "S": ("STRING", "a"),
                "C": ("CHUNK[INT]", "5-6"),
            },
        ),
    ],
)
def test_coerce_task(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    assert _values(coerce_task(SPACE, raw)) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"I": "3", "F": "1.5", "S": "a"}, "missing"),
        ({"I": "3", "F": "1.5", "S": "a", "C": "1", "X": "1"}, "unknown"),
        ({"I": "9", "F": "1.5", "S": "a", "C": "1"}, "not in the parameter space"),
        ({"I": "x", "F": "1.5", "S": "a", "C": "1"}, "not an integer"),
        ({"I": 2.5, "F": "1.5", "S": "a", "C": "1"}, "not an integer"),
        ({"I": "1", "F": "nan", "S": "a", "C": "1"}, "finite"),
        ({"I": "1", "F": "one", "S": "a", "C": "1"}, "not a number"),
        ({"I": "1", "F": "3.5", "S": "a", "C": "1"}, "not in the parameter space"),
        ({"I": "1", "F": "1.5", "S": "z", "C": "1"}, "not in the parameter space"),
        ({"I": "1", "F": "1.5", "S": "a", "C": "8-12"}, "not a subset"),
        ({"I": "1", "F": "1.5", "S": "a", "C": "1-"}, "not a range"),
        ({"I": True, "F": "1.5", "S": "a", "C": "1"}, "string or a number"),
    ],
)
def test_coerce_task_rejects(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        coerce_task(SPACE, raw)


def test_explicit_tasks_number_the_bad_task() -> None:
    good = {"I": "1", "F": "1.5", "S": "a", "C": "1"}
    with pytest.raises(CliError, match=r"^Task 1: "):
        explicit_tasks(SPACE_JOB.steps[0], [good, {**good, "I": "6"}])


def test_explicit_tasks_need_a_parameter_space() -> None:
    with pytest.raises(CliError, match="no task parameters"):
        explicit_tasks(SPACE_JOB.steps[1], [{}])


@pytest.mark.parametrize(
    ("items", "expected"),
    [(["A=1"], {"A": "1"}), (["A=1", "B=x=y", "A=2"], {"A": "2", "B": "x=y"}), ([], {})],
)
def test_parse_task_param_args(items: list[str], expected: dict[str, str]) -> None:
    assert parse_task_param_args(items) == expected


@pytest.mark.parametrize("item", ["A", "=1"])
def test_parse_task_param_args_rejects(item: str) -> None:
    with pytest.raises(CliError) as caught:
        parse_task_param_args([item])
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "document",
    [{"A": 1}, [1], [{"A": None}], [{"A": True}], [{"A": [1]}], "A=1"],
)
def test_tasks_document_rejects(document: Any) -> None:
    with pytest.raises(CliError):
        tasks_from_document(document)


def test_tasks_document_accepts_strings_and_numbers() -> None:
    tasks = [{"A": "x", "B": 1, "C": 2.5}, {}]
    assert tasks_from_document(tasks) == tasks


def _environment(name: str, wraps: bool) -> Environment:
    actions: dict[str, Any] = {"onEnter": {"command": "true"}}
    if wraps:
        for hook in ("onWrapEnvEnter", "onWrapTaskRun", "onWrapEnvExit"):
            actions[hook] = {"command": "true"}
    return parse_model(
        model=Environment,
        obj={"name": name, "script": {"actions": actions}},
        supported_extensions=EXTENSIONS,
    )


@pytest.mark.parametrize(
    ("wrapping", "plain", "ok"),
    [(0, 2, True), (1, 2, True), (2, 0, False), (3, 1, False)],
)
def test_wrap_stack(wrapping: int, plain: int, ok: bool) -> None:
    envs = [_environment(f"P{i}", False) for i in range(plain)]
    envs += [_environment(f"W{i}", True) for i in range(wrapping)]
    if ok:
        check_wrap_stack(envs)
    else:
        with pytest.raises(CliError, match=f"Found {wrapping}: W0, W1"):
            check_wrap_stack(envs)
