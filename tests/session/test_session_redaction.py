"""Masking of `openjd_redacted_env` values in every later line of output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openjd_runtime import ActionState, Session, SessionConfig
from tests.session.sessionkit import Recorder, SessionFactory, env_with, py, revision, run_script

MASK = "********"
SECRET = "Zq7-hunter2-Xv9"

# Prints the sha256 of a variable, so a test can check its value without printing it.
DIGEST = py(
    "import hashlib\n"
    "v = os.environ.get(sys.argv[1])\n"
    "say('DIGEST', None if v is None else hashlib.sha256(v.encode()).hexdigest())",
    "TOKEN",
)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def leaks(lines: list[str], secret: str = SECRET) -> list[str]:
    return [line for line in lines if secret in line]


async def test_secret_masked_in_echo_same_action_and_later_actions(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = make_session(revision_extensions=revision("REDACTED_ENV_VARS"))
    env = env_with(
        "Secrets",
        py(f"say('openjd_redacted_env: TOKEN={SECRET}')\nsay('same action: {SECRET}!')"),
        py(f"say('on exit: {SECRET}')"),
    )
    entered = await session.enter_environment(env, identifier="S")
    assert entered.state == ActionState.SUCCESS

    task = await session.run_task(
        run_script(py(f"say('task: {SECRET} and {SECRET}')\nsay('env: ' + os.environ['TOKEN'])")),
        {},
    )
    assert task.state == ActionState.SUCCESS
    await session.exit_environment("S")

    lines = recorder.take()
    assert lines == [
        f"openjd_redacted_env: TOKEN={MASK}",
        f"same action: {MASK}!",
        f"task: {MASK} and {MASK}",
        f"env: {MASK}",
        f"on exit: {MASK}",
    ]


async def test_variable_is_set_with_the_extension(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = make_session(revision_extensions=revision("REDACTED_ENV_VARS"))
    env = env_with("Secrets", py(f"say('openjd_redacted_env: TOKEN={SECRET}')"))
    await session.enter_environment(env, identifier="S")
    await session.run_task(run_script(DIGEST), {})
    assert f"DIGEST {digest(SECRET)}" in recorder.take()


async def test_masking_without_the_extension_but_no_variable(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = make_session(revision_extensions=revision())
    env = env_with(
        "Secrets", py(f"say('openjd_redacted_env: TOKEN={SECRET}')\nsay('echo {SECRET}')")
    )
    await session.enter_environment(env, identifier="S")
    result = await session.run_task(run_script(DIGEST), {})

    assert result.state == ActionState.SUCCESS
    lines = recorder.take()
    assert lines == [f"openjd_redacted_env: TOKEN={MASK}", f"echo {MASK}", "DIGEST None"]


async def test_secret_from_a_task_is_masked_in_later_tasks(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = make_session(revision_extensions=revision("REDACTED_ENV_VARS"))
    await session.run_task(run_script(py(f"say('openjd_redacted_env: OTHER={SECRET}')")), {})
    await session.run_task(run_script(py(f"say('later {SECRET}')")), {})
    assert recorder.take() == [f"openjd_redacted_env: OTHER={MASK}", f"later {MASK}"]


async def test_each_line_of_a_multi_line_secret_is_masked(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = make_session(revision_extensions=revision("REDACTED_ENV_VARS"))
    code = r"""
    import json
    say('openjd_redacted_env: ' + json.dumps('CERT=first-Secret-Line\nsecond-Secret-Line'))
    say('a first-Secret-Line b')
    say('second-Secret-Line')
    """
    await session.enter_environment(env_with("Cert", py(code)), identifier="C")
    lines = recorder.take()
    assert not leaks(lines, "first-Secret-Line")
    assert not leaks(lines, "second-Secret-Line")
    assert lines[1:] == [f"a {MASK} b", MASK]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    secret=st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=4, max_size=24),
    prefix=st.text("abcxyz .:-", max_size=12),
    suffix=st.text("abcxyz .:-", max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=5),
)
async def test_secret_split_across_reads_is_masked(
    session_root: Path, secret: str, prefix: str, suffix: str, cuts: list[int]
) -> None:
    """The child writes the line in pieces with flushes and pauses, so the runtime reads the
    secret in several blocks."""
    line = f"{prefix}{secret}{suffix}\n"
    points = sorted({c for c in cuts if 0 < c < len(line)})
    pieces = [line[a:b] for a, b in zip([0, *points], [*points, len(line)], strict=True)]
    code = """
    import json
    say('openjd_redacted_env: S=' + sys.argv[1])
    for piece in json.loads(sys.argv[2]):
        sys.stdout.write(piece)
        sys.stdout.flush()
        time.sleep(0.02)
    """
    lines: list[str] = []
    session = Session(
        SessionConfig(
            session_id="split",
            session_root_directory=session_root,
            on_output=lines.extend,
        )
    )
    async with session:
        result = await session.run_task(run_script(py(code, secret, json.dumps(pieces))), {})
    assert result.state == ActionState.SUCCESS
    assert lines == [f"openjd_redacted_env: S={MASK}", f"{prefix}{MASK}{suffix}"]


async def test_secret_in_many_lines_spanning_many_blocks(
    session: Session, recorder: Recorder
) -> None:
    code = f"""
    say('openjd_redacted_env: BULK={SECRET}')
    sys.stdout.write(''.join(f'line {{i}} {SECRET} end\\n' for i in range(20000)))
    """
    result = await session.run_task(run_script(py(code)), {})
    assert result.state == ActionState.SUCCESS
    lines = recorder.take()
    assert not leaks(lines)
    assert lines[1:] == [f"line {i} {MASK} end" for i in range(20000)]


async def test_secret_across_the_line_length_cut_leaks_no_part(
    session: Session, recorder: Recorder
) -> None:
    code = f"""
    say('openjd_redacted_env: CUT={SECRET}')
    say('x' * (64 * 1024 - 5) + '{SECRET}' + ' tail')
    """
    await session.run_task(run_script(py(code)), {})
    [_, line] = recorder.take()
    assert len(line) <= 64 * 1024
    assert line.startswith("x" * (64 * 1024 - 5))
    rest = line[64 * 1024 - 5 :]
    assert rest == MASK[: len(rest)]
