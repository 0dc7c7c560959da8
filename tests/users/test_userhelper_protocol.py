"""The helper's pure parts (framing, tokens, messages) and the helper itself over real pipes."""

from __future__ import annotations

import errno
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openjd_runtime import userhelper
from openjd_runtime.userhelper import (
    FrameReader,
    ProtocolError,
    authenticate,
    encode_frame,
    encode_request,
    launch_error,
    remove_contents,
)
from openjd_runtime.users import (
    HELPER_BOOT,
    JOB_PATH,
    JobAccount,
    describe_start_failure,
    helper_program,
    job_environment,
)

FRAMES = [(b"O", b"abc\n"), (b"X", b""), (b"O", bytes(range(256)) * 3), (b"H", b"{}")]
STREAM = b"".join(encode_frame(kind, payload) for kind, payload in FRAMES)


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_frames_survive_any_read_boundaries(cuts: list[int]) -> None:
    reader = FrameReader()
    frames = []
    edges = [0, *sorted(cuts), len(STREAM)]
    for start, end in itertools.pairwise(edges):
        frames += reader.feed(STREAM[start:end])
    assert frames == FRAMES
    assert reader.pending == 0


@pytest.mark.parametrize(
    ("data", "frames", "pending"),
    [
        (b"", [], 0),
        (b"O\x00\x00", [], 3),
        (b"O\x00\x00\x00\x02a", [], 6),
        (b"O\x00\x00\x00\x02ab", [(b"O", b"ab")], 0),
        (b"O\x00\x00\x00\x00X\x00", [(b"O", b"")], 2),
    ],
)
def test_frame_reader_holds_back_incomplete_frames(
    data: bytes, frames: list[tuple[bytes, bytes]], pending: int
) -> None:
    reader = FrameReader()
    assert reader.feed(data) == frames
    assert reader.pending == pending


def test_a_frame_above_the_limit_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        FrameReader(limit=10).feed(encode_frame(b"O", b"x" * 11))


def test_a_frame_kind_is_one_byte() -> None:
    with pytest.raises(ValueError, match="one byte"):
        encode_frame(b"OK", b"")


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        (json.dumps({"token": "right", "a": 1}).encode(), {"a": 1}),
        (json.dumps({"token": "wrong", "a": 1}).encode(), None),
        (json.dumps({"token": "righ", "a": 1}).encode(), None),
        (json.dumps({"a": 1}).encode(), None),
        (json.dumps({"token": 5}).encode(), None),
        (json.dumps(["token", "right"]).encode(), None),
        (b"not json", None),
        (b"", None),
    ],
)
def test_only_requests_with_the_token_are_accepted(payload: bytes, body: object) -> None:
    assert authenticate(payload, "right") == body


def test_a_request_carries_the_token_in_its_body() -> None:
    kind, payload = FrameReader().feed(encode_request(b"R", "tok", {"argv": ["a"]}))[0]
    assert kind == b"R"
    assert authenticate(payload, "tok") == {"argv": ["a"]}


@pytest.mark.parametrize(
    ("program", "error", "message"),
    [
        (
            "ls",
            FileNotFoundError(errno.ENOENT, "No such file or directory", "/w"),
            "User 'job' cannot enter the working directory /w: No such file or directory.",
        ),
        (
            "nosuch",
            FileNotFoundError(errno.ENOENT, "No such file or directory", "nosuch"),
            "Command 'nosuch' was not found on the action's PATH.",
        ),
        (
            "./run.sh",
            FileNotFoundError(errno.ENOENT, "No such file or directory", "./run.sh"),
            "Command './run.sh' does not exist or is not executable.",
        ),
        (
            "/opt/tool",
            PermissionError(errno.EACCES, "Permission denied", "/opt/tool"),
            "Command '/opt/tool' is not executable by user 'job'.",
        ),
        (
            "/opt/tool",
            OSError(errno.ENOEXEC, "Exec format error", "/opt/tool"),
            "Command '/opt/tool' could not be started: [Errno 8] Exec format error: '/opt/tool'",
        ),
        (
            "a",
            ValueError("embedded null byte"),
            "Command 'a' could not be started: embedded null byte",
        ),
    ],
)
def test_launch_errors_say_what_the_job_user_hit(
    program: str, error: Exception, message: str
) -> None:
    assert launch_error(program, "/w", "job", error) == message


@pytest.mark.parametrize(
    ("code", "stderr", "expected"),
    [
        (1, "sudo: a password is required\n", "sudo would ask for a password"),
        (1, "sudo: unknown user bob\n", "sudo does not know user 'bob'"),
        (1, "Sorry, user al is not allowed to execute '/bin/sh' as bob", "sudoers does not allow"),
        (1, "al is not in the sudoers file.", "sudoers does not allow"),
        (1, "sudo: sorry, you must have a tty to run sudo", "requiretty"),
        (127, "no Python interpreter that bob can run among: /x", "no Python interpreter"),
        (3, "", "stopped (exit code 3): no error output"),
        (None, "Traceback: boom", "stopped (exit code None): Traceback: boom"),
    ],
)
def test_start_failures_become_advice(code: int | None, stderr: str, expected: str) -> None:
    assert expected in describe_start_failure("bob", code, stderr)


ACCOUNT = JobAccount(user="job", uid=1500, home="/home/job", shell="/bin/bash", gid=1600)
IDENTITY = {
    "HOME": "/home/job",
    "USER": "job",
    "LOGNAME": "job",
    "SHELL": "/bin/bash",
    "PATH": JOB_PATH,
}


@pytest.mark.parametrize(
    ("agent_env", "expected"),
    [
        ({}, IDENTITY),
        (
            {"AWS_SECRET_ACCESS_KEY": "x", "HOME": "/root", "PATH": "/root/bin", "USER": "root"},
            IDENTITY,
        ),
        (
            {"LANG": "C.UTF-8", "LC_ALL": "C", "TZ": "UTC", "TERM": "xterm", "LD_PRELOAD": "x"},
            {**IDENTITY, "LANG": "C.UTF-8", "LC_ALL": "C", "TZ": "UTC", "TERM": "xterm"},
        ),
    ],
)
def test_job_environment_keeps_only_identity_and_locale(
    agent_env: dict[str, str], expected: dict[str, str]
) -> None:
    assert job_environment(ACCOUNT, agent_env) == expected


def test_remove_contents_deletes_read_only_trees_but_not_link_targets(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    work = tmp_path / "work"
    locked = work / "a" / "locked"
    locked.mkdir(parents=True)
    (locked / "f").write_text("x")
    (work / "a" / "g").write_text("y")
    (work / "link").symlink_to(outside)
    locked.chmod(0o500)
    (work / "a").chmod(0o000)

    remove_contents(str(work))

    assert list(work.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "keep"


def read_frames(
    proc: subprocess.Popen[bytes], reader: FrameReader, until: bytes
) -> list[tuple[bytes, bytes]]:
    assert proc.stdout is not None
    frames: list[tuple[bytes, bytes]] = []
    while not frames or frames[-1][0] != until:
        data = os.read(proc.stdout.fileno(), 1 << 16)
        assert data, f"the helper closed its output before a {until!r} frame: {frames}"
        frames += reader.feed(data)
    return frames


def test_helper_over_pipes_runs_only_authenticated_requests_and_passes_bytes_through(
    tmp_path: Path,
) -> None:
    """The helper as the current user: no sudo, but the same program, loader and pipes."""
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", HELPER_BOOT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    reader = FrameReader()
    init = json.dumps({"token": "tok", "drain_grace": 1.0}).encode()
    proc.stdin.write(helper_program() + encode_frame(userhelper.INIT, init))
    proc.stdin.flush()
    try:
        (hello,) = read_frames(proc, reader, userhelper.HELLO)
        assert json.loads(hello[1])["uid"] == os.getuid()

        planted = tmp_path / "planted"
        payload = b"\xff\xfe not utf-8\r\nno newline at the end"
        request = {
            "marker": "m-1",
            "cwd": str(tmp_path),
            "env": {"PATH": os.defpath},
        }
        proc.stdin.write(
            encode_request(userhelper.RUN, "wrong", {**request, "argv": ["touch", str(planted)]})
        )
        code = f"import sys; sys.stdout.buffer.write({payload!r}); sys.exit(3)"
        proc.stdin.write(
            encode_request(userhelper.RUN, "tok", {**request, "argv": [sys.executable, "-c", code]})
        )
        proc.stdin.flush()
        frames = read_frames(proc, reader, userhelper.EXITED)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert proc.stderr is not None
    assert b"without the session token" in proc.stderr.read()

    kinds = [kind for kind, _ in frames]
    assert kinds[0] == userhelper.STARTED
    assert b"".join(p for k, p in frames if k == userhelper.OUTPUT) == payload
    assert json.loads(frames[-1][1]) == {"code": 3}
    assert not planted.exists()
    assert proc.returncode == 0


def test_helper_reports_a_command_it_cannot_start(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", HELPER_BOOT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None
    reader = FrameReader()
    init = json.dumps({"token": "t", "drain_grace": 1.0}).encode()
    run = {"marker": "m", "cwd": str(tmp_path), "env": {"PATH": str(tmp_path)}, "argv": ["no"]}
    proc.stdin.write(
        helper_program()
        + encode_frame(userhelper.INIT, init)
        + encode_request(userhelper.RUN, "t", run)
    )
    proc.stdin.flush()
    try:
        frames = read_frames(proc, reader, userhelper.FAILED)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert [k for k, _ in frames] == [userhelper.HELLO, userhelper.FAILED]
    assert json.loads(frames[-1][1]) == {
        "message": "Command 'no' was not found on the action's PATH."
    }
