"""Bad input to `ojd run`: one clear `ERROR:` message, exit 1 or 2, and nothing runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from .ojdkit import Result, assert_one_error

Ojd = Callable[..., Result]
Write = Callable[[str, str], Path]

# Every action leaves a marker in the test's directory, so "nothing ran" can be checked.
JOB = """\
specificationVersion: jobtemplate-2023-09
name: Guarded
parameterDefinitions:
  - {name: Count, type: INT, minValue: 1, maxValue: 5}
  - {name: Mode, type: STRING, allowedValues: [fast, slow], default: fast}
  - {name: Marker, type: PATH, default: ran.txt}
jobEnvironments:
  - name: Env
    script:
      actions:
        onEnter: {command: bash, args: ["-c", "echo enter >> {{Param.Marker}}"]}
steps:
  - name: First
    parameterSpace:
      taskParameterDefinitions:
        - {name: Frame, type: INT, range: "1-{{Param.Count}}"}
    script:
      actions:
        onRun: {command: bash, args: ["-c", "echo task >> {{Param.Marker}}"]}
  - name: Second
    script:
      actions:
        onRun: {command: bash, args: ["-c", "echo task >> {{Param.Marker}}"]}
"""


@pytest.fixture
def job(write: Write) -> Path:
    return write("job.yaml", JOB)


CASES = [
    # (extra files, arguments, exit code, fragment of the message)
    ({}, ["missing.yaml", "-p", "Count=1"], 1, "'missing.yaml' does not exist."),
    ({"syntax.yaml": "name: [unclosed\n"}, ["syntax.yaml"], 1, "not a valid YAML document"),
    (
        {"invalid.yaml": JOB.replace("name: Guarded\n", "")},
        ["invalid.yaml", "-p", "Count=1"],
        1,
        "failed checks",
    ),
    (
        {
            "env.yaml": "specificationVersion: environment-2023-09\nenvironment: {name: E, "
            "variables: {A: '1'}}\n"
        },
        ["env.yaml"],
        1,
        "is an environment template, not a job template",
    ),
    ({}, ["job.yaml"], 1, "Values missing for required job parameters: Count"),
    ({}, ["job.yaml", "-p", "Count=1", "-p", "Nope=3"], 1, "not defined in the template: Nope"),
    ({}, ["job.yaml", "-p", "Count=9"], 1, "Count"),
    ({}, ["job.yaml", "-p", "Count=x"], 1, "Count"),
    ({}, ["job.yaml", "-p", "Count=1", "-p", "Mode=medium"], 1, "Mode"),
    ({}, ["job.yaml", "-p", "Count"], 2, "KEY=VALUE"),
    ({}, ["job.yaml", "-p", "{bad json"], 1, "not a valid JSON document"),
    ({}, ["job.yaml", "-p", "file://params.yaml"], 1, "does not exist"),
    ({"p.yaml": "- a list\n"}, ["job.yaml", "-p", "file://p.yaml"], 1, "key-value pairs"),
    ({}, ["job.yaml", "-p", "Count=1", "--step", "Third"], 1, "No Step with name 'Third'"),
    (
        {},
        ["job.yaml", "-p", "Count=1", "-tp", "Frame=1"],
        2,
        "need --step NAME when the job has more than one step",
    ),
    ({}, ["job.yaml", "-p", "Count=1", "--step", "First", "-tp", "Frame=7"], 1, "Task 0:"),
    ({}, ["job.yaml", "-p", "Count=1", "--step", "First", "-tp", "Other=1"], 1, "unknown"),
    ({}, ["job.yaml", "-p", "Count=1", "--step", "First", "-tp", "Frame"], 2, "NAME=VALUE"),
    (
        {},
        ["job.yaml", "-p", "Count=1", "--step", "Second", "-tp", "Frame=1"],
        1,
        "has no task parameters",
    ),
    ({}, ["job.yaml", "-p", "Count=1", "--step", "First", "--tasks", "[1,"], 1, "not valid JSON"),
    ({}, ["job.yaml", "-p", "Count=1", "--step", "First", "--tasks", '{"Frame": 1}'], 1, "list"),
    (
        {},
        ["job.yaml", "-p", "Count=2", "--step", "First", "--tasks", '[{"Frame": 1}, {"Frame": 3}]'],
        1,
        "Task 1:",
    ),
    (
        {"tasks.yaml": "- Frame: [1]\n"},
        ["job.yaml", "-p", "Count=1", "--step", "First", "--tasks", "file://tasks.yaml"],
        1,
        "string or a number",
    ),
    (
        {},
        ["job.yaml", "-p", "Count=1", "--step", "First", "--tasks", "[]", "--maximum-tasks", "2"],
        2,
        "not allowed with argument",
    ),
    ({}, ["job.yaml", "-p", "Count=1", "--maximum-tasks", "many"], 2, "invalid int value"),
    ({}, ["job.yaml", "-p", "Count=1", "--timestamp-format", "iso"], 2, "invalid choice"),
    ({}, ["job.yaml", "-p", "Count=1", "--path-mapping-rules", "{}"], 1, "'version'"),
    (
        {"rules.json": json.dumps({"version": "pathmapping-1.0", "path_mapping_rules": [{}]})},
        ["job.yaml", "-p", "Count=1", "--path-mapping-rules", "file://rules.json"],
        1,
        "Path mapping rule 0",
    ),
    ({}, ["job.yaml", "-p", "Count=1", "--env", "none.yaml"], 1, "'none.yaml' does not exist."),
    ({}, ["job.yaml", "-p", "Count=1", "--env", "job.yaml"], 1, "not an environment template"),
    ({}, ["job.yaml", "--bogus"], 2, "unrecognized arguments"),
]


@pytest.mark.parametrize(
    ("files", "args", "code", "fragment"),
    CASES,
    ids=[f"{i:02d}-{case[3][:30]}" for i, case in enumerate(CASES)],
)
def test_bad_input_runs_nothing(
    ojd: Ojd,
    write: Write,
    job: Path,
    files: dict[str, str],
    args: list[str],
    code: int,
    fragment: str,
) -> None:
    for name, text in files.items():
        write(name, text)
    result = ojd("run", *args)
    assert_one_error(result, code, fragment)
    assert result.stdout == ""
    assert not (job.parent / "ran.txt").exists()


def test_the_guarded_job_does_run(ojd: Ojd, job: Path) -> None:
    """The bad-input cases above are only meaningful if the same job runs when the input is
    good: the marker file then holds one line per action."""
    result = ojd("run", job, "-p", "Count=2")
    assert result.returncode == 0, result.output
    assert (job.parent / "ran.txt").read_text().split() == ["enter", "task", "task", "task"]


def test_two_wrapping_environment_templates_are_rejected_before_anything_runs(
    ojd: Ojd, write: Write, job: Path
) -> None:
    wrap = """\
    specificationVersion: environment-2023-09
    extensions: [WRAP_ACTIONS, EXPR]
    environment:
      name: Wrap#
      script:
        actions:
          onWrapEnvEnter: {command: bash, args: ["-c", "echo wrap >> ran.txt"]}
          onWrapTaskRun: {command: bash, args: ["-c", "echo wrap >> ran.txt"]}
          onWrapEnvExit: {command: bash, args: ["-c", "echo wrap >> ran.txt"]}
    """
    write("w1.yaml", wrap.replace("#", "1"))
    write("w2.yaml", wrap.replace("#", "2"))
    result = ojd("run", job, "-p", "Count=1", "--env", "w1.yaml", "--env", "w2.yaml")
    assert_one_error(result, 1, "RFC 0008")
    assert "Found 2: Wrap1, Wrap2." in result.stderr
    assert not (job.parent / "ran.txt").exists()
