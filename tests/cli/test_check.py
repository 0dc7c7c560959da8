"""`ojd check`: job and environment templates, YAML and JSON, and every way a file can be bad."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from .ojdkit import Result, assert_one_error

JOB = """\
specificationVersion: jobtemplate-2023-09
name: Job
steps:
  - name: S
    script:
      actions:
        onRun: {command: echo, args: ["hi"]}
"""

ENV = """\
specificationVersion: environment-2023-09
environment:
  name: Env
  variables: {A: "1"}
"""

CHUNKED = """\
specificationVersion: jobtemplate-2023-09
extensions: [TASK_CHUNKING]
name: Job
steps:
  - name: S
    parameterSpace:
      taskParameterDefinitions:
        - name: F
          type: CHUNK[INT]
          range: "1-10"
          chunks: {defaultTaskCount: 2, rangeConstraint: CONTIGUOUS}
    script:
      actions:
        onRun: {command: echo, args: ["{{Task.Param.F}}"]}
"""

Ojd = Callable[..., Result]
Write = Callable[[str, str], Path]


@pytest.mark.parametrize(("name", "text"), [("job.yaml", JOB), ("env.yml", ENV)])
def test_valid_templates(ojd: Ojd, write: Write, name: str, text: str) -> None:
    write(name, text)
    result = ojd("check", name)
    assert result.returncode == 0, result.output
    assert result.stdout == f"Template at '{name}' passes validation checks.\n"
    assert result.stderr == ""


def test_json_template_is_read_as_json(ojd: Ojd, write: Write) -> None:
    from openjd.model import DocumentType, document_string_to_object

    document = document_string_to_object(document=JOB, document_type=DocumentType.YAML)
    write("job.json", json.dumps(document))
    assert ojd("check", "job.json").returncode == 0
    write("yaml.json", JOB)
    assert_one_error(ojd("check", "yaml.json"), 1, "not a valid JSON document")


def test_extensions_limit_what_validates(ojd: Ojd, write: Write) -> None:
    write("chunked.yaml", CHUNKED)
    assert ojd("check", "chunked.yaml").returncode == 0
    assert ojd("check", "chunked.yaml", "--extensions", "task_chunking,EXPR").returncode == 0
    assert_one_error(ojd("check", "chunked.yaml", "--extensions", "EXPR"), 1, "failed checks")
    assert_one_error(ojd("check", "chunked.yaml", "--extensions", ""), 1, "TASK_CHUNKING")
    assert_one_error(ojd("check", "chunked.yaml", "--extensions", "NOPE"), 2, "NOPE")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (JOB.replace("name: Job\n", ""), "name"),
        (JOB.replace("hi", "{{Param.Missing}}"), "Param.Missing"),
        (JOB + "extra: 1\n", "extra"),
        (JOB.replace("jobtemplate-2023-09", "jobtemplate-1999-01"), "jobtemplate-1999-01"),
        (JOB.replace("specificationVersion: jobtemplate-2023-09\n", ""), "specificationVersion"),
        ("steps: [\n", "line 2, column 1"),
        ("- just\n- a list\n", "key-value pairs"),
        ("", "key-value pairs"),
    ],
)
def test_invalid_templates(ojd: Ojd, write: Write, text: str, fragment: str) -> None:
    write("bad.yaml", text)
    assert_one_error(ojd("check", "bad.yaml"), 1, fragment)


def test_missing_file_and_directory(ojd: Ojd, tmp_path: Path) -> None:
    assert_one_error(ojd("check", "nope.yaml"), 1, "'nope.yaml' does not exist.")
    (tmp_path / "dir.yaml").mkdir()
    assert_one_error(ojd("check", "dir.yaml"), 1, "'dir.yaml' is not a file.")


def test_usage_errors_exit_2(ojd: Ojd) -> None:
    assert_one_error(ojd("check"), 2, "PATH")
    assert_one_error(ojd("nope"), 2, "invalid choice")
    assert_one_error(ojd(), 2, "COMMAND")
