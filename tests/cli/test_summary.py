"""`ojd summary`: what a job would run, without running it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .ojdkit import Result, assert_one_error

Ojd = Callable[..., Result]
Write = Callable[[str, str], Path]

JOB = """\
specificationVersion: jobtemplate-2023-09
extensions: [TASK_CHUNKING]
name: Summary
parameterDefinitions:
  - {name: Frames, type: STRING, default: "1-4"}
  - {name: Out, type: PATH, default: out}
jobEnvironments:
  - name: Tools
    variables: {TOOLS: "1"}
steps:
  - name: Prepare
    script:
      actions:
        onRun: {command: "touch", args: ["{{Param.Out}}"]}
  - name: Render
    dependencies: [{dependsOn: Prepare}]
    stepEnvironments:
      - name: Licence
        variables: {LIC: "1"}
    parameterSpace:
      taskParameterDefinitions:
        - {name: Frame, type: INT, range: "{{Param.Frames}}"}
        - {name: Layer, type: STRING, range: [fg, bg]}
    script:
      actions:
        onRun: {command: "touch", args: ["{{Task.Param.Frame}}"]}
  - name: Encode
    dependencies: [{dependsOn: Render}]
    parameterSpace:
      taskParameterDefinitions:
        - name: Chunk
          type: CHUNK[INT]
          range: "{{Param.Frames}}"
          chunks: {defaultTaskCount: 3, rangeConstraint: CONTIGUOUS}
    script:
      actions:
        onRun: {command: "touch", args: ["{{Task.Param.Chunk}}"]}
"""


def test_summary_text(ojd: Ojd, write: Write, tmp_path: Path) -> None:
    write("job.yaml", JOB)
    result = ojd("summary", "job.yaml", "-p", "Frames=1-10")
    assert result.returncode == 0, result.output
    text = result.stdout
    assert "Job: Summary\n" in text
    assert "  Frames (STRING) = 1-10\n" in text
    assert f"  Out (PATH) = {tmp_path / 'out'}\n" in text
    assert "Job environments: Tools\n" in text
    assert "Steps: 3, tasks: 31\n" in text
    render = text[text.index("Step 'Render'") : text.index("Step 'Encode'")]
    assert "Depends on: Prepare" in render
    assert "Environments: Licence" in render
    assert "Frame (INT): 1-10" in render
    assert "Layer (STRING): fg, bg" in render
    assert "Tasks: 20\n" in render
    assert "Tasks: 10 in 4 chunk(s) of up to 3\n" in text
    assert list(tmp_path.iterdir()) == [tmp_path / "job.yaml"], "summary must run nothing"


def test_summary_json_of_one_step(ojd: Ojd, write: Write) -> None:
    write("job.yaml", JOB)
    result = ojd("summary", "job.yaml", "--step", "Encode", "--output", "json")
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout)
    assert [step["name"] for step in data["steps"]] == ["Encode"]
    assert data["total_tasks"] == 4
    assert data["steps"][0]["chunks"] == {
        "parameter": "Chunk",
        "default_task_count": 3,
        "target_runtime_seconds": None,
        "count": 2,
    }


def test_summary_yaml(ojd: Ojd, write: Write) -> None:
    write("job.yaml", JOB)
    result = ojd("summary", "job.yaml", "--output", "yaml")
    assert result.returncode == 0, result.output
    assert "job_name: Summary\n" in result.stdout
    assert "total_tasks: 13\n" in result.stdout


def test_summary_bad_input(ojd: Ojd, write: Write) -> None:
    write("job.yaml", JOB)
    assert_one_error(ojd("summary", "job.yaml", "-p", "Nope=1"), 1, "Nope")
    assert_one_error(ojd("summary", "job.yaml", "--step", "Nope"), 1, "No Step with name")
    assert_one_error(ojd("summary", "missing.yaml"), 1, "does not exist")
