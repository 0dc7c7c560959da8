"""How an action's command runs: lookup on its own PATH, no shell, cwd, stdin, exit codes."""

from __future__ import annotations

import contextlib
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

from openjd_runtime import ActionState, Session, SessionState
from tests.session.sessionkit import Recorder, SessionFactory, env_with, py, run_script, state


def install_tool(directory: Path) -> None:
    directory.mkdir()
    tool = directory / "openjd-test-tool"
    tool.write_text('#!/bin/sh\necho "tool ran with $1"\n')
    tool.chmod(0o755)


def this_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


async def test_program_is_found_on_the_path_an_environment_sets(
    make_session: SessionFactory, recorder: Recorder, tmp_path: Path
) -> None:
    bindir = tmp_path / "bin"
    install_tool(bindir)
    script = run_script({"command": "openjd-test-tool", "args": ["x"]})

    without = make_session()
    missing = await without.run_task(script, {})
    assert missing.state == ActionState.FAILED
    recorder.take()

    session = make_session()
    env = env_with("Tools", variables={"PATH": f"{bindir}:{os.environ['PATH']}"})
    await session.enter_environment(env, identifier="T")
    result = await session.run_task(script, {})
    assert result.state == ActionState.SUCCESS
    assert recorder.take() == ["tool ran with x"]


async def test_program_is_found_on_a_path_exported_by_on_enter(
    session: Session, recorder: Recorder, tmp_path: Path
) -> None:
    bindir = tmp_path / "bin"
    install_tool(bindir)
    export = py("say('openjd_env: PATH=' + sys.argv[1] + ':' + os.environ['PATH'])", str(bindir))
    await session.enter_environment(env_with("Tools", export), identifier="T")
    recorder.take()

    result = await session.run_task(run_script({"command": "openjd-test-tool", "args": ["y"]}), {})
    assert result.state == ActionState.SUCCESS
    assert recorder.take() == ["tool ran with y"]


async def test_unknown_command_fails_with_a_clear_message(session: Session) -> None:
    result = await session.run_task(run_script({"command": "no-such-program-4f2a"}), {})

    assert result.state == ActionState.FAILED
    assert result.exit_code is None
    assert result.fail_message is not None
    assert "no-such-program-4f2a" in result.fail_message
    assert state(session) == SessionState.READY_ENDING


async def test_launch_failures_say_what_went_wrong(
    make_session: SessionFactory, tmp_path: Path
) -> None:
    plain = tmp_path / "not-executable"
    plain.write_text("#!/bin/sh\necho never\n")
    plain.chmod(0o644)
    cases = [
        (
            "no-such-program-4f2a",
            "Command 'no-such-program-4f2a' was not found on the action's PATH.",
        ),
        (
            "./no-such-script.sh",
            "Command './no-such-script.sh' does not exist or is not executable.",
        ),
        (str(plain), f"Command '{plain}' is not executable by user '{this_user()}'."),
    ]
    for command, message in cases:
        result = await make_session().run_task(run_script({"command": command}), {})
        assert (result.state, result.exit_code) == (ActionState.FAILED, None)
        assert result.fail_message == message


async def test_a_path_entry_that_cannot_run_the_program_is_passed_over(
    make_session: SessionFactory, recorder: Recorder, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "openjd-test-tool").write_text("#!/bin/sh\necho shadowed\n")
    (shadow / "openjd-test-tool").chmod(0o644)
    bindir = tmp_path / "bin"
    install_tool(bindir)
    session = make_session()
    env = env_with("Tools", variables={"PATH": f"{shadow}:{bindir}:{os.environ['PATH']}"})
    await session.enter_environment(env, identifier="T")
    recorder.take()

    result = await session.run_task(run_script({"command": "openjd-test-tool", "args": ["z"]}), {})
    assert result.state == ActionState.SUCCESS
    assert recorder.take() == ["tool ran with z"]


async def test_cwd_is_the_working_directory(session: Session, recorder: Recorder) -> None:
    await session.run_task(run_script(py("say(os.getcwd())")), {})
    [cwd] = recorder.take()
    assert Path(cwd).resolve() == session.working_directory.resolve()


@contextlib.contextmanager
def runtime_stdin(data: bytes) -> Iterator[None]:
    """Gives this process a stdin holding `data`, so a child that inherited it would notice."""
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    saved = os.dup(0)
    os.dup2(read_end, 0)
    os.close(read_end)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)


async def test_stdin_is_dev_null(session: Session, recorder: Recorder) -> None:
    code = "say(os.readlink('/proc/self/fd/0'))\nsay(repr(sys.stdin.read()))"
    with runtime_stdin(b"the runtime's own stdin"):
        result = await session.run_task(run_script(py(code)), {})
    assert result.state == ActionState.SUCCESS
    assert recorder.take() == ["/dev/null", "''"]


async def test_arguments_reach_the_program_without_a_shell(
    session: Session, recorder: Recorder
) -> None:
    args = ["$HOME", "*", "a b", "'quoted'", "semi;colon", "`id`", "back\\slash"]
    await session.run_task(run_script(py("say(repr(sys.argv[1:]))", *args)), {})
    assert recorder.take() == [repr(args)]


async def test_exit_codes(make_session: SessionFactory) -> None:
    failed = await make_session().run_task(run_script(py("sys.exit(7)")), {})
    assert (failed.state, failed.exit_code) == (ActionState.FAILED, 7)

    killed = await make_session().run_task(
        run_script(py("os.kill(os.getpid(), signal.SIGKILL)")), {}
    )
    assert (killed.state, killed.exit_code) == (ActionState.FAILED, None)
