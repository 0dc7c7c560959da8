"""Sessions whose actions run as the job user: identity, isolation, variables, output, cancels.

Root is the agent here (as in CI), so what the job user must not see belongs to root.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from openjd_runtime import ActionState, Session
from openjd_runtime.users import SudoLauncher
from tests.session.sessionkit import (
    Marks,
    Recorder,
    SessionFactory,
    env_with,
    escaping_tree,
    is_alive,
    notify_then_terminate,
    py,
    revision,
    run_script,
    sh,
    tree_pids,
    wait_dead,
)

from .userkit import JOB_USER, command_lines, job_processes, job_uid, owner_uid, shared_gid

pytestmark = pytest.mark.timeout(60)

# Writes its pid, then idles. On SIGTERM it records what cancel_info.json held, then leaves
# ("exit") or carries on ("ignore").
TRAPPER = """
pid_path, term_path, behaviour, workdir = sys.argv[1:5]
def on_term(signum, frame):
    try:
        info = open(os.path.join(workdir, 'cancel_info.json')).read()
    except OSError as e:
        info = 'unreadable: ' + str(e)
    mark(term_path, info)
    if behaviour == 'exit':
        os._exit(0)
signal.signal(signal.SIGTERM, on_term)
mark(pid_path, os.getpid())
while True:
    time.sleep(0.05)
"""


def trapper(marks: Marks, behaviour: str, **action: Any) -> dict[str, Any]:
    return py(
        TRAPPER,
        marks.path("pid"),
        marks.path("term"),
        behaviour,
        "{{Session.WorkingDirectory}}",
        **action,
    )


async def run_lines(session: Session, recorder: Recorder, action: dict[str, Any]) -> list[str]:
    result = await session.run_task(run_script(action), {})
    assert result.state == ActionState.SUCCESS, (result, recorder.lines)
    return recorder.take()


async def test_actions_run_as_the_job_user_with_its_identity(
    session: Session, recorder: Recorder
) -> None:
    lines = await run_lines(session, recorder, sh('id -un; echo "home=$HOME user=$USER"'))
    home = Path(f"~{JOB_USER}").expanduser()
    assert lines == [JOB_USER, f"home={home} user={JOB_USER}"]


async def test_one_helper_serves_every_action_of_a_session(
    session: Session, recorder: Recorder
) -> None:
    first = await run_lines(session, recorder, sh("echo $PPID"))
    second = await run_lines(session, recorder, sh("echo $PPID"))
    assert first == second
    helper = int(first[0])
    assert owner_uid(helper) == job_uid()
    assert helper != os.getpid()


async def test_actions_cannot_reach_into_the_helper(session: Session, recorder: Recorder) -> None:
    """The helper shares the job user's uid, yet its pipes, memory and environment stay its own."""
    probe = """
    for target in 1 2; do
        if (echo forged > /proc/$PPID/fd/$target) 2>/dev/null; then echo "forged on $target"; fi
    done
    if (exec 3< /proc/$PPID/fd/0) 2>/dev/null; then echo "could read requests"; fi
    if (exec 3< /proc/$PPID/mem) 2>/dev/null; then echo "could read memory"; fi
    if cat /proc/$PPID/environ >/dev/null 2>&1; then echo "read environ"; fi
    echo probed
    """
    assert await run_lines(session, recorder, sh(probe)) == ["probed"]
    assert await run_lines(session, recorder, sh("id -un")) == [JOB_USER]


async def test_job_user_cannot_read_a_private_file_of_the_agent(
    session: Session, recorder: Recorder, shared_root: Path
) -> None:
    secret = shared_root / "agent-only.txt"
    secret.write_text("agent credentials")
    secret.chmod(0o600)
    assert secret.stat().st_uid == os.geteuid()

    result = await session.run_task(run_script(sh(f"cat {secret}")), {})

    assert result.state == ActionState.FAILED
    assert any("Permission denied" in line for line in recorder.lines)
    assert not any("agent credentials" in line for line in recorder.lines)


async def test_agent_environment_is_not_inherited(
    make_session: SessionFactory, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENJD_TEST_AGENT_SECRET", "agent-secret-value")
    session = make_session()
    lines = await run_lines(session, recorder, sh("env"))
    assert not any("agent-secret-value" in line for line in lines)
    assert "OPENJD_TEST_AGENT_SECRET" not in "\n".join(lines)
    assert f"USER={JOB_USER}" in lines


async def test_no_token_or_variable_value_appears_on_a_command_line(
    make_session: SessionFactory, marks: Marks
) -> None:
    session = make_session(os_env_vars={"SESSION_VALUE": "value-on-no-command-line"})
    task = asyncio.create_task(session.run_task(run_script(trapper(marks, "exit")), {}))
    await marks.pid("pid")
    launcher = session._launcher
    assert isinstance(launcher, SudoLauncher)
    token = launcher._token.encode()
    try:
        seen = command_lines()
    finally:
        session.cancel_action()
        await task
    assert not any(token in line for line in seen)
    assert not any(b"value-on-no-command-line" in line for line in seen)
    assert any(b"sudo" in line and JOB_USER.encode() in line for line in seen)


async def test_environment_variables_propagate_as_for_the_same_user(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = make_session(os_env_vars={"HOME": None, "EXTRA": "from-config"})
    env = env_with(
        "E",
        sh("echo 'openjd_env: FOO=from-enter'; echo 'openjd_unset_env: LOGNAME'"),
        variables={"DECLARED": "declared"},
    )
    entered = await session.enter_environment(env, identifier="E")
    assert entered.state == ActionState.SUCCESS
    recorder.take()

    lines = await run_lines(
        session,
        recorder,
        sh(
            'echo "FOO=$FOO DECLARED=$DECLARED EXTRA=$EXTRA '
            'HOME=${HOME-unset} LOGNAME=${LOGNAME-unset} USER=$USER"'
        ),
    )
    assert lines == [
        f"FOO=from-enter DECLARED=declared EXTRA=from-config HOME=unset LOGNAME=unset "
        f"USER={JOB_USER}"
    ]


async def test_redacted_values_are_masked(make_session: SessionFactory, recorder: Recorder) -> None:
    session = make_session(revision_extensions=revision("REDACTED_ENV_VARS"))
    env = env_with(
        "E",
        sh("echo 'openjd_redacted_env: TOKEN=hunter2-secret'"),
        extensions=["REDACTED_ENV_VARS"],
    )
    assert (await session.enter_environment(env, identifier="E")).state == ActionState.SUCCESS

    lines = await run_lines(session, recorder, sh('echo "value is $TOKEN"'))

    assert "value is ********" in lines
    assert not any("hunter2-secret" in line for line in recorder.lines + lines)


MIXED_OUTPUT = """
out = sys.stdout.buffer
out.write(b'plain\\n')
out.write(b'latin-1 \\xe9t\\xe9 and a lone \\xff\\n')
out.write(b'crlf line\\r\\n')
out.write(b'openjd_progress: 50\\n')
out.write(b'x' * 200000 + b'\\n')
out.write(('\\u00e9\\u4e2d' * 3).encode() + b'\\n')
out.write(b'no newline at the end')
"""


async def test_output_reaches_the_filter_exactly_as_for_the_same_user(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    same_user = make_session(user=None)
    cross_user = make_session()

    expected = await run_lines(same_user, recorder, py(MIXED_OUTPUT))
    got = await run_lines(cross_user, recorder, py(MIXED_OUTPUT))

    assert got == expected
    assert len(got) == 7
    assert recorder.statuses[-1].progress == 50


async def test_timeout_kills_the_job_user_process(session: Session, marks: Marks) -> None:
    result = await session.run_task(run_script(trapper(marks, "ignore", timeout=1)), {})

    assert result.state == ActionState.TIMEOUT
    pid = int(marks.read("pid"))
    assert await wait_dead([pid]) == []


async def test_terminate_kills_the_whole_tree_including_escaped_processes(
    session: Session, marks: Marks
) -> None:
    task = asyncio.create_task(session.run_task(run_script(escaping_tree(marks, stay=True)), {}))
    pids = await tree_pids(marks)
    assert {owner_uid(pid) for pid in pids} == {job_uid()}

    session.cancel_action()
    result = await task

    assert result.state == ActionState.CANCELED
    assert result.exit_code is None
    assert await wait_dead(pids) == []


async def test_notify_then_terminate_signals_the_job_user_process(
    session: Session, marks: Marks
) -> None:
    action = trapper(marks, "exit", cancelation=notify_then_terminate(60))
    task = asyncio.create_task(session.run_task(run_script(action), {}))
    pid = await marks.pid("pid")
    assert owner_uid(pid) == job_uid()

    session.cancel_action()
    result = await task

    assert result.state == ActionState.CANCELED
    info = json.loads(await marks.wait("term"))
    assert info["NotifyEnd"].endswith("Z")
    cancel_info = session.working_directory / "cancel_info.json"
    assert mode_and_group(cancel_info) == (0o640, shared_gid())
    assert await wait_dead([pid]) == []


async def test_the_tree_is_killed_when_the_notify_period_ends(
    session: Session, marks: Marks
) -> None:
    action = trapper(marks, "ignore", cancelation=notify_then_terminate(60))
    task = asyncio.create_task(session.run_task(run_script(action), {}))
    pid = await marks.pid("pid")

    session.cancel_action(time_limit=timedelta(seconds=1))
    result = await task

    assert result.state == ActionState.CANCELED
    assert marks.exists("term"), "SIGTERM came before the kill"
    assert not is_alive(pid)


async def test_cancelling_the_awaiting_task_kills_the_tree(session: Session, marks: Marks) -> None:
    task = asyncio.create_task(session.run_task(run_script(escaping_tree(marks, stay=True)), {}))
    pids = await tree_pids(marks)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_dead(pids) == []


async def test_files_are_shared_through_the_group(session: Session, recorder: Recorder) -> None:
    script = run_script(
        {"command": "{{Task.File.Run}}"},
        embeddedFiles=[
            {
                "name": "Run",
                "type": "TEXT",
                "runnable": True,
                "data": "#!/bin/sh\ncat {{Task.File.Data}}\n",
            },
            {"name": "Data", "type": "TEXT", "data": "shared data"},
        ],
    )
    result = await session.run_task(script, {})
    assert result.state == ActionState.SUCCESS, recorder.lines
    assert recorder.lines == ["shared data"]

    gid = shared_gid()
    embedded = sorted(mode_and_group(path) for path in session.files_directory.iterdir())
    assert embedded == [(0o660, gid), (0o770, gid)]
    assert mode_and_group(session.working_directory) == (0o770, gid)
    assert mode_and_group(session.files_directory) == (0o770, gid)
    assert mode_and_group(session.working_directory / "path_mapping_rules.json") == (0o640, gid)


def mode_and_group(path: Path) -> tuple[int, int]:
    info = path.stat()
    return stat.S_IMODE(info.st_mode), info.st_gid


async def test_cleanup_leaves_no_file_and_no_process_of_the_session(
    session: Session, marks: Marks
) -> None:
    before = job_processes()
    private = """
    umask 077
    mkdir -p private/deeper
    echo secret > private/deeper/file
    chmod 500 private/deeper private
    """
    assert (await session.run_task(run_script(sh(private)), {})).state == ActionState.SUCCESS
    result = await session.run_task(run_script(escaping_tree(marks, stay=False)), {})
    assert result.state == ActionState.SUCCESS
    _, setsid_pid, daemon_pid = await tree_pids(marks)
    workdir = session.working_directory
    assert (workdir / "private").stat().st_uid == job_uid()
    assert job_processes() - before, "the helper and the escaped processes are running"

    await session.cleanup()

    assert not workdir.exists()
    assert await wait_dead([setsid_pid, daemon_pid]) == []
    assert job_processes() - before == set()


LOTS_OF_OUTPUT = """
out = sys.stdout.buffer
line = b'%07d a line long enough to make fifty megabytes of output in all......\\n'
for i in range(int(sys.argv[1])):
    out.write(line % i)
"""


async def test_large_output_streams_in_flat_memory(make_session: SessionFactory) -> None:
    """50 MB pass through the helper; the agent must not hold them."""
    count = 0

    def on_output(batch: Sequence[str]) -> None:
        nonlocal count
        count += len(batch)

    session = make_session(on_output=on_output)
    me = psutil.Process()
    baseline = peak = me.memory_info().rss

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, me.memory_info().rss)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        result = await session.run_task(run_script(py(LOTS_OF_OUTPUT, "625000")), {})
    finally:
        sampler.cancel()

    assert result.state == ActionState.SUCCESS
    assert count == 625_000
    assert peak - baseline < 25 << 20


async def test_a_helper_that_died_fails_later_actions_and_is_replaced_for_cleanup(
    session: Session, recorder: Recorder, marks: Marks
) -> None:
    private = "umask 077; mkdir private; echo $PPID"
    helper = int((await run_lines(session, recorder, sh(private)))[0])
    result = await session.run_task(run_script(escaping_tree(marks, stay=False)), {})
    assert result.state == ActionState.SUCCESS
    _, setsid_pid, daemon_pid = await tree_pids(marks)

    os.kill(helper, signal.SIGKILL)
    assert await wait_dead([helper]) == []
    failed = await session.run_task(run_script(sh("echo never")), {})
    assert failed.state == ActionState.FAILED
    assert failed.fail_message is not None and JOB_USER in failed.fail_message
    assert is_alive(daemon_pid), "the daemon outlived the helper"

    workdir = session.working_directory
    await session.cleanup()
    assert await wait_dead([setsid_pid, daemon_pid]) == []
    assert not workdir.exists()
