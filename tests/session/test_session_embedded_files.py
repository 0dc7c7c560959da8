"""Embedded files: symbols, names, modes, line endings, refused names and planted symlinks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openjd_runtime import ActionState, Session
from tests.session.sessionkit import Marks, Recorder, entered, env_with, environment, py, run_script

# Prints one `FILE <json>` line for each file named in argv, describing it as the child sees it.
INSPECT = """
import json, stat
for p in sys.argv[1:]:
    say('FILE', json.dumps({
        'path': p,
        'data': open(p, 'rb').read().decode('latin-1'),
        'mode': stat.S_IMODE(os.stat(p).st_mode),
    }))
"""


def inspected(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in lines if line.startswith("FILE ")]


def text_file(name: str, data: str, **keys: Any) -> dict[str, Any]:
    return {"name": name, "type": "TEXT", "data": data, **keys}


async def test_task_file_with_given_filename(session: Session, recorder: Recorder) -> None:
    script = run_script(
        py(INSPECT, "{{Task.File.Config}}"),
        embeddedFiles=[text_file("Config", "hello from a file\n", filename="given.txt")],
    )
    result = await session.run_task(script, {})

    assert result.state == ActionState.SUCCESS
    [found] = inspected(recorder.take())
    assert Path(found["path"]) == session.files_directory / "given.txt"
    assert found["data"] == "hello from a file\n"
    assert found["mode"] == 0o600


async def test_task_file_with_random_name(session: Session, recorder: Recorder) -> None:
    files = [text_file("A", "a"), text_file("B", "b")]
    script = run_script(py(INSPECT, "{{Task.File.A}}", "{{Task.File.B}}"), embeddedFiles=files)
    assert (await session.run_task(script, {})).state == ActionState.SUCCESS

    first, second = inspected(recorder.take())
    assert Path(first["path"]).parent == session.files_directory
    assert Path(second["path"]).parent == session.files_directory
    assert first["path"] != second["path"]
    assert (first["data"], second["data"]) == ("a", "b")
    assert first["mode"] == 0o600


async def test_runnable_file_has_mode_0700_and_runs(session: Session, recorder: Recorder) -> None:
    run = text_file(
        "Run", '#!/bin/sh\necho "ran with $1, mode $(stat -c %a "$0")"\n', runnable=True
    )
    script = run_script({"command": "{{Task.File.Run}}", "args": ["arg"]}, embeddedFiles=[run])
    result = await session.run_task(script, {})

    assert result.state == ActionState.SUCCESS
    assert recorder.take() == ["ran with arg, mode 700"]


async def test_file_data_is_a_format_string(session: Session, recorder: Recorder) -> None:
    script = run_script(
        py(INSPECT, "{{Task.File.F}}"),
        embeddedFiles=[text_file("F", "wd={{Session.WorkingDirectory}}")],
    )
    await session.run_task(script, {})
    [found] = inspected(recorder.take())
    assert found["data"] == f"wd={session.working_directory}"


async def test_environment_files_in_on_enter_and_on_exit(
    session: Session, recorder: Recorder
) -> None:
    env = environment(
        {
            "name": "WithFile",
            "script": {
                "actions": {
                    "onEnter": py(INSPECT, "{{Env.File.Setup}}"),
                    "onExit": py(INSPECT, "{{Env.File.Setup}}"),
                },
                "embeddedFiles": [text_file("Setup", "env data", filename="setup.txt")],
            },
        }
    )
    assert (await session.enter_environment(env, identifier="W")).state == ActionState.SUCCESS
    assert (await session.exit_environment("W")).state == ActionState.SUCCESS

    entered, exited = inspected(recorder.take())
    for found in (entered, exited):
        assert Path(found["path"]) == session.files_directory / "setup.txt"
        assert found["data"] == "env data"
        assert found["mode"] == 0o600


@pytest.mark.parametrize(
    ("end_of_line", "expected"),
    [
        ("LF", "one\ntwo\nthree\n"),
        ("CRLF", "one\r\ntwo\r\nthree\r\n"),
        (None, "one\r\ntwo\nthree\n"),
    ],
)
async def test_end_of_line(
    session: Session, recorder: Recorder, end_of_line: str | None, expected: str
) -> None:
    keys = {"endOfLine": end_of_line} if end_of_line else {}
    script = run_script(
        py(INSPECT, "{{Task.File.F}}"),
        embeddedFiles=[text_file("F", "one\r\ntwo\nthree\n", **keys)],
        extensions=["FEATURE_BUNDLE_1"],
    )
    await session.run_task(script, {})
    [found] = inspected(recorder.take())
    assert found["data"] == expected


def with_filename(filename: str, marks: Marks) -> Any:
    """A script whose file is named `filename`; names with a separator are refused by the
    decoder, so they are set on the decoded model as a hand-built model could."""
    script = run_script(
        py("mark(sys.argv[1], 'ran')", marks.path("ran")),
        embeddedFiles=[text_file("F", "data", filename="placeholder")],
    )
    assert script.embeddedFiles is not None
    bad_file = script.embeddedFiles[0].model_copy(update={"filename": filename})
    return script.model_copy(update={"embeddedFiles": [bad_file]})


@pytest.mark.parametrize("filename", ["../x", "a/b", "..", ".", "ABSOLUTE"])
async def test_invalid_filename_fails_the_action(
    session: Session, marks: Marks, tmp_path: Path, filename: str
) -> None:
    absolute = tmp_path / "absolute.txt"
    if filename == "ABSOLUTE":
        filename = str(absolute)
    result = await session.run_task(with_filename(filename, marks), {})

    assert result.state == ActionState.FAILED
    assert result.exit_code is None
    assert result.fail_message
    assert not marks.exists("ran")
    assert not (session.working_directory / "x").exists()
    assert not absolute.exists()


async def test_planted_symlink_is_not_followed(
    session: Session, recorder: Recorder, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    (session.files_directory / "planted.txt").symlink_to(victim)

    script = run_script(
        py(INSPECT, "{{Task.File.F}}"),
        embeddedFiles=[text_file("F", "overwritten", filename="planted.txt")],
    )
    result = await session.run_task(script, {})

    assert victim.read_text() == "original"
    if result.state == ActionState.SUCCESS:
        [found] = inspected(recorder.take())
        assert found["data"] == "overwritten"
    else:
        assert result.state == ActionState.FAILED
        assert result.fail_message


async def test_bad_environment_file_fails_on_enter(session: Session, marks: Marks) -> None:
    env = env_with("E", py("mark(sys.argv[1], 'ran')", marks.path("ran")))
    assert env.script is not None
    bad = env.script.model_copy(
        update={"embeddedFiles": [with_filename("a/b", marks).embeddedFiles[0]]}
    )
    result = await session.enter_environment(env.model_copy(update={"script": bad}), identifier="E")

    assert result.state == ActionState.FAILED
    assert result.exit_code is None
    assert not marks.exists("ran")
    assert entered(session) == ("E",)
