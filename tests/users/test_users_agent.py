"""Clear errors before any action runs, and what only a non-root agent can show.

Root reads and deletes anything, so the tests of file sharing and clean-up act as a non-root
agent (`run_as_agent`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openjd_runtime import PathMappingRule, PosixSessionUser, Session, SessionConfig
from openjd_runtime.users import UserSetupError
from tests.session.sessionkit import (
    Marks,
    Recorder,
    escaping_tree,
    notify_then_terminate,
    py,
    run_script,
    sh,
    tree_pids,
    wait_dead,
)

from .userkit import (
    JOB_USER,
    SHARED_GROUP,
    TEST_AGENT,
    agent_name,
    job_processes,
    job_uid,
    owner_uid,
    require_user,
    run_as_agent,
)

pytestmark = pytest.mark.timeout(60)


def agent_root_for(agent: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix="openjd-users-agent-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(root, require_user(agent).pw_uid, -1)
    return root


@pytest.fixture
def agent_root() -> Iterator[Path]:
    """A session root the non-root agent may write to."""
    root = agent_root_for(agent_name())
    yield root
    shutil.rmtree(root, ignore_errors=True)


def refused(shared_root: Path, user: PosixSessionUser) -> str:
    with pytest.raises(UserSetupError) as caught:
        Session(SessionConfig(session_id="s", session_root_directory=shared_root, user=user))
    assert list(shared_root.iterdir()) == [], "nothing is created for a refused session"
    return str(caught.value)


def test_an_unknown_user_is_refused_before_any_action(shared_root: Path) -> None:
    message = refused(shared_root, PosixSessionUser("openjd-no-such-user", SHARED_GROUP))
    assert "User 'openjd-no-such-user' does not exist" in message


def test_an_unknown_group_is_refused(shared_root: Path) -> None:
    message = refused(shared_root, PosixSessionUser(JOB_USER, "openjd-no-such-group"))
    assert "Group 'openjd-no-such-group' does not exist" in message


def test_a_group_the_job_user_is_not_in_is_refused(shared_root: Path) -> None:
    message = refused(shared_root, PosixSessionUser(JOB_USER, "root"))
    assert f"User '{JOB_USER}' is not a member of group 'root'" in message


def test_missing_sudo_is_refused(
    shared_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    message = refused(shared_root, PosixSessionUser(JOB_USER, SHARED_GROUP))
    assert "needs sudo, which is not on this PATH" in message


def test_sudo_asking_for_a_password_fails_the_first_action_without_running_it() -> None:
    """An agent with no sudoers rule for the target user: `sudo -n` refuses at once."""
    agent = JOB_USER
    root = agent_root_for(agent_name(agent))

    async def scenario() -> dict[str, Any]:
        recorder = Recorder()
        config = SessionConfig(
            session_id="no-rule",
            session_root_directory=root,
            user=PosixSessionUser(TEST_AGENT, SHARED_GROUP),
            on_output=recorder.on_output,
        )
        async with Session(config) as session:
            result = await session.run_task(run_script(sh("touch ran")), {})
            ran = (session.working_directory / "ran").exists()
        return {
            "state": result.state.value,
            "exit_code": result.exit_code,
            "message": result.fail_message,
            "lines": recorder.lines,
            "ran": ran,
        }

    try:
        outcome = run_as_agent(scenario, agent)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    assert outcome["state"] == "FAILED"
    assert outcome["exit_code"] is None
    assert not outcome["ran"]
    assert outcome["lines"] == []
    if os.geteuid() == 0:
        assert (
            "sudo would ask for a password to run commands as 'openjd-agent'"
            in (outcome["message"])
        )
    else:
        assert "sudo" in outcome["message"]


def test_a_non_root_agent_cleans_up_files_the_job_user_kept_private(agent_root: Path) -> None:
    """The agent cannot even list what the job user made private; the helper deletes it."""
    private = """
    umask 077
    mkdir -p private/deeper
    echo secret > private/deeper/file
    chmod 500 private/deeper private
    id -un
    """

    async def scenario() -> dict[str, Any]:
        recorder = Recorder()
        config = SessionConfig(
            session_id="private",
            session_root_directory=agent_root,
            user=PosixSessionUser(JOB_USER),
            on_output=recorder.on_output,
        )
        session = Session(config)
        result = await session.run_task(run_script(sh(private)), {})
        workdir = session.working_directory
        try:
            os.listdir(workdir / "private")
            listable = True
        except PermissionError:
            listable = False
        await session.cleanup()
        return {
            "state": result.state.value,
            "lines": recorder.lines,
            "listable": listable,
            "left": workdir.exists(),
        }

    before = job_processes()
    outcome = run_as_agent(scenario)

    assert outcome["state"] == "SUCCESS"
    assert outcome["lines"] == [JOB_USER]
    assert not outcome["listable"], "the test must show a file only the helper could delete"
    assert not outcome["left"]
    assert job_processes() - before == set()


def test_job_user_reads_the_files_a_non_root_agent_shares(agent_root: Path, marks: Marks) -> None:
    """Embedded files, the path-mapping file and cancel_info.json, through the default group."""
    trapper = """
    def on_term(signum, frame):
        with open(os.path.join(sys.argv[2], 'cancel_info.json')) as f:
            mark(sys.argv[3], f.read())
        os._exit(0)
    signal.signal(signal.SIGTERM, on_term)
    mark(sys.argv[1], os.getpid())
    while True:
        time.sleep(0.05)
    """
    embedded = [
        {
            "name": "Run",
            "type": "TEXT",
            "runnable": True,
            "data": "#!/bin/sh\ncat {{Task.File.Data}} {{Session.PathMappingRulesFile}}\n",
        },
        {"name": "Data", "type": "TEXT", "data": "embedded data\n"},
    ]
    cancel_action = py(
        trapper,
        marks.path("pid"),
        "{{Session.WorkingDirectory}}",
        marks.path("term"),
        cancelation=notify_then_terminate(60),
    )
    rule = PathMappingRule.from_dict(
        {"source_path_format": "POSIX", "source_path": "/mnt/a", "destination_path": "/mnt/b"}
    )

    async def scenario() -> dict[str, Any]:
        recorder = Recorder()
        config = SessionConfig(
            session_id="shared",
            session_root_directory=agent_root,
            user=PosixSessionUser(JOB_USER),
            on_output=recorder.on_output,
            path_mapping_rules=[rule],
        )
        async with Session(config) as session:
            files = await session.run_task(
                run_script({"command": "{{Task.File.Run}}"}, embeddedFiles=embedded), {}
            )
            task = asyncio.create_task(session.run_task(run_script(cancel_action), {}))
            await marks.pid("pid")
            session.cancel_action()
            canceled = await task
        return {
            "files": files.state.value,
            "lines": recorder.lines,
            "canceled": canceled.state.value,
            "term": marks.read("term"),
        }

    outcome = run_as_agent(scenario)

    assert outcome["files"] == "SUCCESS"
    assert outcome["lines"][0] == "embedded data"
    assert "/mnt/b" in outcome["lines"][1]
    assert outcome["canceled"] == "CANCELED"
    assert json.loads(outcome["term"])["NotifyEnd"].endswith("Z")


def test_the_helper_kills_what_the_session_started_when_the_agent_dies(
    shared_root: Path, marks: Marks
) -> None:
    """No cleanup() at all: the helper sees its requests pipe close and kills the tree."""
    action = escaping_tree(marks, stay=True)
    before = job_processes()
    pid = os.fork()
    if pid == 0:

        async def run_forever() -> None:
            config = SessionConfig(
                session_id="orphaned",
                session_root_directory=shared_root,
                user=PosixSessionUser(JOB_USER, SHARED_GROUP),
            )
            await Session(config).run_task(run_script(action), {})

        try:
            asyncio.run(run_forever())
        finally:
            os._exit(1)
    try:
        pids = asyncio.run(tree_pids(marks))
        assert {owner_uid(p) for p in pids} == {job_uid()}
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    assert asyncio.run(wait_dead(pids)) == []
    assert asyncio.run(wait_until(lambda: not job_processes() - before)), job_processes() - before


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
