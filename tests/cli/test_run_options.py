"""`ojd run` options, each as a real run of a small job."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from openjd.model import DocumentType, document_string_to_object

from .ojdkit import Result, assert_one_error

Ojd = Callable[..., Result]
Write = Callable[[str, str], Path]

RULE = "=" * 46

TWO_STEPS = """\
specificationVersion: jobtemplate-2023-09
name: TwoSteps
description: Prepares, then renders.
parameterDefinitions:
  - name: Msg
    type: STRING
    default: hello
    description: What Prepare says.
  - name: Frames
    type: STRING
    default: "1-3"
  - name: Size
    type: INT
    minValue: 1
    maxValue: 10
    default: 2
jobEnvironments:
  - name: JobEnv
    script:
      actions:
        onEnter: {command: bash, args: ["-c", "echo job-enter; echo 'openjd_env: FOO=bar'"]}
        onExit: {command: bash, args: ["-c", "echo job-exit FOO=$FOO"]}
steps:
  - name: Render
    dependencies: [{dependsOn: Prepare}]
    stepEnvironments:
      - name: RenderEnv
        script:
          actions:
            onEnter: {command: bash, args: ["-c", "echo render-env-enter"]}
            onExit: {command: bash, args: ["-c", "echo render-env-exit"]}
    parameterSpace:
      taskParameterDefinitions:
        - {name: Frame, type: INT, range: "{{Param.Frames}}"}
    script:
      actions:
        onRun:
          command: bash
          args: ["-c", "echo render {{Task.Param.Frame}} size {{Param.Size}} FOO=$FOO"]
  - name: Prepare
    script:
      actions:
        onRun: {command: bash, args: ["-c", "echo prepare {{Param.Msg}}"]}
"""


def outputs(result: Result) -> list[str]:
    """The job's own lines (prepare/render/...), in order."""
    words = ("prepare", "render", "job-", "ext-")
    return [text for text in result.texts if text.startswith(words)]


def test_all_steps_in_dependency_order(ojd: Ojd, write: Write) -> None:
    write("job.yaml", TWO_STEPS)
    result = ojd("run", "job.yaml")
    assert result.returncode == 0, result.output
    assert outputs(result) == [
        "job-enter",
        "prepare hello",
        "render-env-enter",
        "render 1 size 2 FOO=bar",
        "render 2 size 2 FOO=bar",
        "render 3 size 2 FOO=bar",
        "render-env-exit",
        "job-exit FOO=bar",
    ]
    texts = result.texts
    assert texts[:2] == ["Session start", "Running job 'TwoSteps'"]
    assert texts[2:6] == ["", RULE, "--------- Entering Environment: JobEnv", RULE]
    assert texts.index("Running step 'Prepare'") < texts.index("Running step 'Render'")
    assert texts.count("--------- Running Task") == 4
    assert texts.count("Process exited with code: 0") == 4
    assert "Frame(INT) = 2" in texts
    assert "--------- Exiting Environment: RenderEnv" in texts
    assert texts[-3:] == ["", "All actions completed successfully!", "Local session ended."]
    assert result.stdout.endswith(
        "\n--- Results of local session ---\n\nSession ended successfully\n\nJob: TwoSteps\n"
        + re.search(r"Duration: \d+\.\d{3} seconds\n", result.stdout).group(0)  # type: ignore[union-attr]
        + "Chunks run: 4\n"
    )
    assert "Step:" not in result.stdout


@pytest.mark.parametrize(
    ("args", "expected", "step_line"),
    [
        (["--step", "Render"], ["render 1", "render 2", "render 3"], "Step: Render"),
        (["--step", "Render", "--no-run-dependencies"], ["render 1", "render 2", "render 3"], None),
        (
            ["--step", "Render", "--run-dependencies"],
            ["prepare", "render 1", "render 2", "render 3"],
            None,
        ),
        (["--step", "Prepare", "--run-dependencies"], ["prepare"], "Step: Prepare"),
    ],
)
def test_step_selection(
    ojd: Ojd, write: Write, args: list[str], expected: list[str], step_line: str | None
) -> None:
    write("job.yaml", TWO_STEPS)
    result = ojd("run", "job.yaml", *args)
    assert result.returncode == 0, result.output
    ran = [t for t in outputs(result) if t.startswith(("prepare", "render "))]
    assert [
        " ".join(text.split()[:2]) if text.startswith("render") else "prepare" for text in ran
    ] == expected
    if step_line:
        assert f"\n{step_line}\n" in result.stdout


def test_job_parameters_merge_in_order(ojd: Ojd, write: Write) -> None:
    write("job.yaml", TWO_STEPS)
    write("a.json", json.dumps({"Msg": "from-json", "Size": 5}))
    write("b.yaml", "Msg: from-yaml\nFrames: '7'\n")
    result = ojd(
        "run",
        "job.yaml",
        "-p",
        "file://a.json",
        "--job-param",
        "file://b.yaml",
        "--parameter",
        '{"Size": 9}',
        "-p",
        "Frames=8-9",
    )
    assert result.returncode == 0, result.output
    assert "prepare from-yaml" in outputs(result)
    assert [t for t in outputs(result) if t.startswith("render ")] == [
        "render 8 size 9 FOO=bar",
        "render 9 size 9 FOO=bar",
    ]


@pytest.mark.parametrize(
    ("args", "frames"),
    [
        (["-tp", "Frame=2"], ["2"]),
        (["--task-param", "Frame=3"], ["3"]),
        (["--tasks", '[{"Frame": 3}, {"Frame": "1"}]'], ["3", "1"]),
        (["--tasks", "file://tasks.yaml"], ["2", "2"]),
        (["--maximum-tasks", "2"], ["1", "2"]),
        (["--maximum-tasks", "0"], ["1", "2", "3"]),
    ],
)
def test_task_selection(ojd: Ojd, write: Write, args: list[str], frames: list[str]) -> None:
    write("job.yaml", TWO_STEPS)
    write("tasks.yaml", "- Frame: 2\n- {Frame: '2'}\n")
    result = ojd("run", "job.yaml", "--step", "Render", *args)
    assert result.returncode == 0, result.output
    rendered = [t.split()[1] for t in outputs(result) if t.startswith("render ")]
    assert rendered == frames
    assert f"Chunks run: {len(frames)}\n" in result.stdout


def test_single_step_job_takes_task_params_without_step(ojd: Ojd, write: Write) -> None:
    write(
        "one.yaml",
        """\
        specificationVersion: jobtemplate-2023-09
        name: One
        steps:
          - name: Only
            parameterSpace:
              taskParameterDefinitions:
                - {name: X, type: STRING, range: [a, b]}
            script:
              actions:
                onRun: {command: bash, args: ["-c", "echo render {{Task.Param.X}}"]}
        """,
    )
    result = ojd("run", "one.yaml", "-tp", "X=b")
    assert result.returncode == 0, result.output
    assert outputs(result) == ["render b"]
    assert "Step:" not in result.stdout, "the result names a step only when --step gives one"


EXTERNAL = """\
specificationVersion: environment-2023-09
parameterDefinitions:
  - {name: Tag, type: STRING, default: dflt}
environment:
  name: External#
  script:
    actions:
      onEnter: {command: bash, args: ["-c", "echo ext-enter-# {{Param.Tag}} FOO=$FOO"]}
      onExit: {command: bash, args: ["-c", "echo ext-exit-#"]}
"""


def test_environment_templates_wrap_the_job(ojd: Ojd, write: Write) -> None:
    write("job.yaml", TWO_STEPS)
    write("e1.yaml", EXTERNAL.replace("#", "1"))
    write("e2.yaml", EXTERNAL.replace("#", "2"))
    result = ojd("run", "job.yaml", "--env", "e1.yaml", "--environment", "e2.yaml", "-p", "Tag=t")
    assert result.returncode == 0, result.output
    lines = outputs(result)
    assert lines[:3] == ["ext-enter-1 t FOO=", "ext-enter-2 t FOO=", "job-enter"]
    assert lines[-3:] == ["job-exit FOO=bar", "ext-exit-2", "ext-exit-1"]


PATH_JOB = """\
specificationVersion: jobtemplate-2023-09
name: Paths
parameterDefinitions:
  - {name: In, type: PATH}
steps:
  - name: S
    script:
      actions:
        onRun: {command: bash, args: ["-c", "echo render [{{Param.In}}] [{{RawParam.In}}]"]}
"""

RULES = {
    "version": "pathmapping-1.0",
    "path_mapping_rules": [
        {"source_path_format": "POSIX", "source_path": "/mnt/src", "destination_path": "/dst"}
    ],
}


@pytest.mark.parametrize("form", ["inline", "file"])
def test_path_mapping_rules(ojd: Ojd, write: Write, form: str) -> None:
    write("job.yaml", PATH_JOB)
    write("rules.json", json.dumps(RULES))
    rules = json.dumps(RULES) if form == "inline" else "file://rules.json"
    result = ojd("run", "job.yaml", "-p", "In=/mnt/src/a.exr", "--path-mapping-rules", rules)
    assert result.returncode == 0, result.output
    assert outputs(result) == ["render [/dst/a.exr] [/mnt/src/a.exr]"]


def test_relative_path_values_are_joined_with_cwd(ojd: Ojd, write: Write, tmp_path: Path) -> None:
    write("job.yaml", PATH_JOB)
    result = ojd("run", "job.yaml", "-p", "In=sub/../a.exr")
    assert result.returncode == 0, result.output
    assert outputs(result) == [f"render [{tmp_path}/a.exr] [{tmp_path}/a.exr]"]


WORKDIR_JOB = """\
specificationVersion: jobtemplate-2023-09
name: Workdir
steps:
  - name: S
    script:
      actions:
        onRun:
          command: bash
          args: ["-c", "echo render $OPENJD_SESSION_WORKING_DIR; touch kept.txt"]
"""


@pytest.mark.parametrize("preserve", [True, False])
def test_preserve(ojd: Ojd, write: Write, preserve: bool) -> None:
    write("job.yaml", WORKDIR_JOB)
    result = ojd("run", "job.yaml", *(["--preserve"] if preserve else []))
    assert result.returncode == 0, result.output
    workdir = Path(outputs(result)[0].split(" ", 1)[1])
    assert (workdir / "kept.txt").exists() is preserve
    message = f"Working directory preserved at: {workdir}"
    assert (message in result.stdout) is preserve


def test_verbose_shows_the_session_log(ojd: Ojd, write: Write) -> None:
    write("job.yaml", WORKDIR_JOB)
    quiet = ojd("run", "job.yaml")
    verbose = ojd("run", "job.yaml", "--verbose")
    assert verbose.returncode == quiet.returncode == 0
    assert not any(t.startswith("Running command") for t in quiet.texts)
    assert any(t.startswith("Running command bash -c") for t in verbose.texts)
    assert verbose.texts.count("--------- Running Task") == 1


@pytest.mark.parametrize(
    ("style", "pattern"),
    [
        ("relative", r"\d+:\d\d:\d\d\.\d{3}"),
        ("local", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}"),
        ("utc", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"),
    ],
)
def test_timestamp_format(ojd: Ojd, write: Write, style: str, pattern: str) -> None:
    write("job.yaml", WORKDIR_JOB)
    args = [] if style == "relative" else ["--timestamp-format", style]
    result = ojd("run", "job.yaml", *args)
    assert result.returncode == 0, result.output
    stamped = [line for line in result.stdout.splitlines() if "\t" in line]
    assert len(stamped) > 10
    for line in stamped:
        assert re.fullmatch(pattern, line.split("\t", 1)[0]), line


@pytest.mark.parametrize("style", ["json", "yaml"])
def test_output_document(ojd: Ojd, write: Write, style: str) -> None:
    write("job.yaml", TWO_STEPS)
    result = ojd("run", "job.yaml", "--step", "Prepare", "--output", style)
    assert result.returncode == 0, result.output
    kind = DocumentType.JSON if style == "json" else DocumentType.YAML
    data = document_string_to_object(document=result.stdout, document_type=kind)
    assert data["status"] == "success"
    assert data["job_name"] == "TwoSteps"
    assert data["step_name"] == "Prepare"
    assert data["chunks_run"] == 1
    assert data["message"] == "Session ended successfully"
    assert "prepare hello" in result.stderr


def test_extensions_apply_to_run(ojd: Ojd, write: Write) -> None:
    write(
        "chunked.yaml",
        """\
        specificationVersion: jobtemplate-2023-09
        extensions: [TASK_CHUNKING]
        name: Chunked
        steps:
          - name: S
            parameterSpace:
              taskParameterDefinitions:
                - name: F
                  type: CHUNK[INT]
                  range: "1-5"
                  chunks: {defaultTaskCount: 2, rangeConstraint: CONTIGUOUS}
            script:
              actions:
                onRun: {command: bash, args: ["-c", "echo render {{Task.Param.F}}"]}
        """,
    )
    result = ojd("run", "chunked.yaml")
    assert result.returncode == 0, result.output
    assert outputs(result) == ["render 1-2", "render 3-4", "render 5-5"]
    assert "F(CHUNK[INT]) = 3-4" in result.texts
    assert "Chunks run: 3\n" in result.stdout
    assert_one_error(ojd("run", "chunked.yaml", "--extensions", "EXPR"), 1, "failed checks")


def test_help_from_the_template(ojd: Ojd, write: Write) -> None:
    write("job.yaml", TWO_STEPS)
    result = ojd("run", "job.yaml", "--help")
    assert result.returncode == 0, result.output
    text = result.stdout
    assert "--maximum-tasks" in text
    assert "Job template 'job.yaml': TwoSteps" in text
    assert "Prepares, then renders." in text
    assert "-p Msg=<STRING>  (default: hello)" in text
    assert "What Prepare says." in text
    assert "-p Size=<INT>  (default: 2; min: 1; max: 10)" in text
    assert "Render (after Prepare)" in text
    generic = ojd("run", "--help")
    assert generic.returncode == 0
    assert "--maximum-tasks" in generic.stdout
    assert "Job template" not in generic.stdout


def test_version_does_not_load_the_model(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "openjd_runtime", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0
    assert re.fullmatch(r"ojd \d+\.\d+\.\d+\S*\n", done.stdout)
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "openjd_runtime.cli" in imported
    assert not {"openjd.model", "asyncio", "openjd.expr"} & imported
