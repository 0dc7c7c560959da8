"""Format-string symbols of actions: parameters, path mapping, Session.*, let, names, EXPR args."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openjd.expr import PathFormat

from openjd_runtime import ActionState, PathMappingRule
from tests.session.sessionkit import (
    BuiltJob,
    Recorder,
    SessionFactory,
    build_job,
    py,
    run_script,
    yaml_template,
)

# Prints `ARGS <json list of argv[1:]>`.
ARGS = "import json\nsay('ARGS', json.dumps(sys.argv[1:]))"

RULE = PathMappingRule(
    source_path_format=PathFormat.POSIX, source_path="/mnt/share", destination_path="/local/share"
)

PARAMS_JOB = """
parameterDefinitions:
- {name: Scene, type: PATH}
- {name: Label, type: STRING}
- {name: Count, type: INT}
steps:
- name: Render
  parameterSpace:
    taskParameterDefinitions:
    - {name: Frame, type: INT, range: "7"}
    - {name: Out, type: PATH, range: ["/mnt/share/out/f.exr"]}
  script:
    actions:
      onRun:
        command: $PYTHON
        args: [-c, $ARGS,
               "{{Param.Scene}}", "{{RawParam.Scene}}", "{{Param.Label}}", "{{RawParam.Count}}",
               "{{Task.Param.Frame}}", "{{Task.RawParam.Frame}}",
               "{{Task.Param.Out}}", "{{Task.RawParam.Out}}"]
"""


def printed_args(lines: list[str]) -> list[str]:
    found = [line for line in lines if line.startswith("ARGS ")]
    assert len(found) == 1, lines
    args: list[str] = json.loads(found[0][5:])
    return args


def job_with_args(body: str, params: dict[str, str] | None = None, **kw: Any) -> BuiltJob:
    """`body` runs `$PYTHON -c $ARGS ...`."""
    action = py(ARGS)
    template = yaml_template(body, PYTHON=action["command"], ARGS=action["args"][1])
    return build_job(template, params, **kw)


async def run_first_task(
    make_session: SessionFactory, recorder: Recorder, built: BuiltJob, **config: Any
) -> list[str]:
    session = make_session(job_parameter_values=built.parameter_values, **config)
    result = await session.run_task(built.script(), built.tasks()[0], step_name="Render")
    assert result.state == ActionState.SUCCESS, result
    return printed_args(recorder.take())


async def test_parameters_with_path_mapping(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    built = job_with_args(
        PARAMS_JOB, {"Scene": "/mnt/share/scene.blend", "Label": "a label", "Count": "3"}
    )
    args = await run_first_task(make_session, recorder, built, path_mapping_rules=[RULE])
    assert args == [
        "/local/share/scene.blend",
        "/mnt/share/scene.blend",
        "a label",
        "3",
        "7",
        "7",
        "/local/share/out/f.exr",
        "/mnt/share/out/f.exr",
    ]


async def test_parameters_without_path_mapping(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    built = job_with_args(
        PARAMS_JOB, {"Scene": "/mnt/share/scene.blend", "Label": "x", "Count": "3"}
    )
    args = await run_first_task(make_session, recorder, built)
    assert args[0] == "/mnt/share/scene.blend"
    assert args[6] == "/mnt/share/out/f.exr"


SESSION_JOB = """
steps:
- name: Render
  script:
    actions:
      onRun:
        command: $PYTHON
        args: [-c, $ARGS, "{{Session.WorkingDirectory}}", "{{Session.HasPathMappingRules}}",
               "{{Session.PathMappingRulesFile}}"]
"""


async def test_session_symbols_with_rules(make_session: SessionFactory, recorder: Recorder) -> None:
    built = job_with_args(SESSION_JOB)
    session = make_session(path_mapping_rules=[RULE])
    await session.run_task(built.script(), {})
    workdir, has_rules, rules_file = printed_args(recorder.take())

    assert workdir == str(session.working_directory)
    assert has_rules == "true"
    rules = json.loads(Path(rules_file).read_text())
    assert rules["version"] == "pathmapping-1.0"
    assert rules["path_mapping_rules"] == [RULE.to_dict()]


async def test_session_symbols_without_rules(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    built = job_with_args(SESSION_JOB)
    session = make_session()
    await session.run_task(built.script(), {})
    _, has_rules, rules_file = printed_args(recorder.take())

    assert has_rules == "false"
    assert json.loads(Path(rules_file).read_text()).get("path_mapping_rules", []) == []


EXPR_JOB = """
parameterDefinitions:
- {name: N, type: INT, default: 4}
steps:
- name: Render
  let: ["tripled = Param.N * 3"]
  parameterSpace:
    taskParameterDefinitions:
    - {name: Frame, type: INT, range: "5"}
  script:
    let: ["doubled = Task.Param.Frame * 2", "label = 'frame-' + string(doubled)"]
    actions:
      onRun:
        command: $PYTHON
        args: [-c, $ARGS, "{{doubled}}", "{{label}}", "{{tripled}}", "{{Job.Name}}",
               "{{Step.Name}}", "a", "{{ null }}", "{{ [1, 2, 3] }}", "{{ ['x y', 'z'] }}", "b"]
"""


async def test_expr_lets_names_null_and_list_args(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    built = job_with_args(EXPR_JOB, extensions=["EXPR"])
    session = make_session(job_parameter_values=built.parameter_values, job_name="TestJob")
    result = await session.run_task(
        built.script(),
        built.tasks()[0],
        step_name="Render",
        resolved_symtab=built.step_symtabs["Render"],
    )
    assert result.state == ActionState.SUCCESS, result
    assert printed_args(recorder.take()) == [
        "10",
        "frame-10",
        "12",
        "TestJob",
        "Render",
        "a",
        "1",
        "2",
        "3",
        "x y",
        "z",
        "b",
    ]


async def test_job_and_step_names_come_from_the_config_and_the_call(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    built = build_job(
        {
            "steps": [
                {
                    "name": "Render",
                    "script": {"actions": {"onRun": py(ARGS, "{{Job.Name}}", "{{Step.Name}}")}},
                }
            ]
        },
        extensions=["EXPR"],
    )
    session = make_session(job_name="Configured Job")
    result = await session.run_task(built.script(), {}, step_name="Called Step")
    assert result.state == ActionState.SUCCESS, result
    assert printed_args(recorder.take()) == ["Configured Job", "Called Step"]


def failing_job(arg: str, let: list[str] | None = None) -> BuiltJob:
    """A job whose task fails only when run: `Param.Zero` is 0."""
    script: dict[str, Any] = {"actions": {"onRun": py(ARGS, arg)}}
    if let:
        script["let"] = let
    return build_job(
        {
            "parameterDefinitions": [{"name": "Zero", "type": "INT", "default": 0}],
            "steps": [{"name": "Render", "script": script}],
        },
        extensions=["EXPR"],
    )


async def test_bad_let_fails_the_action(make_session: SessionFactory) -> None:
    built = failing_job("{{bad}}", let=["bad = 10 / Param.Zero"])
    session = make_session(job_parameter_values=built.parameter_values)
    result = await session.run_task(built.script(), {}, step_name="Render")

    assert result.state == ActionState.FAILED
    assert result.exit_code is None
    assert result.fail_message


async def test_bad_format_string_fails_the_action(make_session: SessionFactory) -> None:
    built = failing_job("{{ 10 / Param.Zero }}")
    session = make_session(job_parameter_values=built.parameter_values)
    result = await session.run_task(built.script(), {}, step_name="Render")

    assert result.state == ActionState.FAILED
    assert result.exit_code is None
    assert result.fail_message


# Prints the rules file's text, then spoils it the way a careless job might.
TAMPER = (
    "import os\n"
    "say('RULES', open(sys.argv[1]).read())\n"
    "if sys.argv[2] == 'edit':\n"
    "    open(sys.argv[1], 'w').write('{}')\n"
    "else:\n"
    "    os.remove(sys.argv[1])\n"
)


async def test_every_action_finds_the_rules_file_as_written(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = make_session(path_mapping_rules=[RULE])
    for how in ("edit", "remove", "edit"):
        script = run_script(py(TAMPER, "{{Session.PathMappingRulesFile}}", how))
        result = await session.run_task(script, {})
        assert result.state == ActionState.SUCCESS
        printed = [line for line in recorder.take() if line.startswith("RULES ")]
        assert len(printed) == 1
        rules = json.loads(printed[0].removeprefix("RULES "))
        assert rules["path_mapping_rules"] == [RULE.to_dict()]
