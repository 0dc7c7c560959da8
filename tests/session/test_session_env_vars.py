"""Environment variables of actions: layering, onEnter changes, and their revert on exit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openjd_runtime import ActionState, Session
from tests.session.sessionkit import Recorder, SessionFactory, env_with, py, run_script

HOST_VAR = "OPENJD_TEST_HOST_VAR"


def probe(*names: str) -> dict[str, Any]:
    """An action that prints `ENV <json>` with the values (or null) of the named variables."""
    return py(
        "import json\nsay('ENV', json.dumps({n: os.environ.get(n) for n in sys.argv[1:]}))",
        *names,
    )


def probed(lines: list[str]) -> dict[str, str | None]:
    found = [line for line in lines if line.startswith("ENV ")]
    assert len(found) == 1, lines
    values: dict[str, str | None] = json.loads(found[0][4:])
    return values


async def probe_task(session: Session, recorder: Recorder, *names: str) -> dict[str, str | None]:
    recorder.take()
    result = await session.run_task(run_script(probe(*names)), {})
    assert result.state == ActionState.SUCCESS, result
    return probed(recorder.take())


async def test_declared_variables_apply_until_exit_and_reach_own_actions(
    session: Session, recorder: Recorder
) -> None:
    env = env_with("Vars", probe("FOO"), probe("FOO"), variables={"FOO": "declared"})

    await session.enter_environment(env, identifier="V")
    assert probed(recorder.take()) == {"FOO": "declared"}
    assert await probe_task(session, recorder, "FOO") == {"FOO": "declared"}

    await session.exit_environment("V")
    assert probed(recorder.take()) == {"FOO": "declared"}
    assert await probe_task(session, recorder, "FOO") == {"FOO": None}


async def test_variables_are_format_strings(
    make_session: SessionFactory, recorder: Recorder
) -> None:
    session = make_session()
    env = env_with("Vars", variables={"WD": "{{Session.WorkingDirectory}}/x"})
    await session.enter_environment(env, identifier="V")
    assert await probe_task(session, recorder, "WD") == {"WD": f"{session.working_directory}/x"}


async def test_openjd_env_from_on_enter_applies_until_exit(
    session: Session, recorder: Recorder
) -> None:
    env = env_with("Exports", py("say('openjd_env: FOO=exported')"), probe("FOO"))

    assert (await session.enter_environment(env, identifier="X")).state == ActionState.SUCCESS
    assert "openjd_env: FOO=exported" in recorder.take()
    assert await probe_task(session, recorder, "FOO") == {"FOO": "exported"}

    await session.exit_environment("X")
    assert probed(recorder.take()) == {"FOO": "exported"}
    assert await probe_task(session, recorder, "FOO") == {"FOO": None}


async def test_openjd_env_values(session: Session, recorder: Recorder) -> None:
    code = r"""
    import json
    say('openjd_env: ' + json.dumps('MULTI=line one\nline "two"'))
    say('openjd_env: EQUALS=a=b=c')
    say('openjd_env: EMPTY=')
    say('openjd_env: SPACED=with inner spaces')
    say('openjd_env: "QUOTED=json\\tvalue"')
    """
    await session.enter_environment(env_with("Values", py(code)), identifier="V")
    assert await probe_task(session, recorder, "MULTI", "EQUALS", "EMPTY", "SPACED", "QUOTED") == {
        "MULTI": 'line one\nline "two"',
        "EQUALS": "a=b=c",
        "EMPTY": "",
        "SPACED": "with inner spaces",
        "QUOTED": "json\tvalue",
    }


async def test_openjd_unset_env_deletes_an_inherited_host_variable(
    session: Session, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOST_VAR, "from host")
    assert await probe_task(session, recorder, HOST_VAR) == {HOST_VAR: "from host"}

    env = env_with("Unsets", py(f"say('openjd_unset_env: {HOST_VAR}')"), probe(HOST_VAR))
    assert (await session.enter_environment(env, identifier="U")).state == ActionState.SUCCESS
    recorder.take()
    assert await probe_task(session, recorder, HOST_VAR) == {HOST_VAR: None}

    await session.exit_environment("U")
    assert probed(recorder.take()) == {HOST_VAR: None}
    assert await probe_task(session, recorder, HOST_VAR) == {HOST_VAR: "from host"}


async def test_openjd_unset_env_removes_a_variable_set_by_an_older_environment(
    session: Session, recorder: Recorder
) -> None:
    await session.enter_environment(env_with("Outer", variables={"FOO": "outer"}), identifier="O")
    await session.enter_environment(
        env_with("Inner", py("say('openjd_unset_env: FOO')")), identifier="I"
    )
    assert await probe_task(session, recorder, "FOO") == {"FOO": None}
    await session.exit_environment("I")
    assert await probe_task(session, recorder, "FOO") == {"FOO": "outer"}


async def test_session_os_env_vars_set_and_unset(
    make_session: SessionFactory, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOST_VAR, "from host")
    session = make_session(os_env_vars={"CONFIGURED": "yes", HOST_VAR: None})
    assert await probe_task(session, recorder, "CONFIGURED", HOST_VAR) == {
        "CONFIGURED": "yes",
        HOST_VAR: None,
    }


async def test_per_call_os_env_vars_apply_to_that_call_only(
    session: Session, recorder: Recorder
) -> None:
    result = await session.run_task(
        run_script(probe("PER_CALL")), {}, os_env_vars={"PER_CALL": "1"}
    )
    assert result.state == ActionState.SUCCESS
    assert probed(recorder.take()) == {"PER_CALL": "1"}
    assert await probe_task(session, recorder, "PER_CALL") == {"PER_CALL": None}

    env = env_with("E", probe("PER_CALL"), probe("PER_CALL"))
    await session.enter_environment(env, identifier="E", os_env_vars={"PER_CALL": "enter"})
    assert probed(recorder.take()) == {"PER_CALL": "enter"}
    await session.exit_environment("E", os_env_vars={"PER_CALL": "exit"})
    assert probed(recorder.take()) == {"PER_CALL": "exit"}


async def test_layering_oldest_first_and_revert(
    make_session: SessionFactory, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAYER", "host")
    session = make_session(os_env_vars={"LAYER": "config"})
    assert await probe_task(session, recorder, "LAYER") == {"LAYER": "config"}

    outer = env_with("Outer", variables={"LAYER": "outer"})
    await session.enter_environment(outer, identifier="O")
    assert await probe_task(session, recorder, "LAYER") == {"LAYER": "outer"}

    result = await session.run_task(run_script(probe("LAYER")), {}, os_env_vars={"LAYER": "call"})
    assert result.state == ActionState.SUCCESS
    assert probed(recorder.take()) == {"LAYER": "outer"}

    inner = env_with(
        "Inner", py("say('openjd_env: LAYER=inner-export')"), variables={"LAYER": "inner-vars"}
    )
    await session.enter_environment(inner, identifier="I")
    assert await probe_task(session, recorder, "LAYER") == {"LAYER": "inner-export"}

    await session.exit_environment("I")
    assert await probe_task(session, recorder, "LAYER") == {"LAYER": "outer"}
    await session.exit_environment("O")
    assert await probe_task(session, recorder, "LAYER") == {"LAYER": "config"}


async def test_export_from_a_task_does_not_reach_later_actions(
    session: Session, recorder: Recorder
) -> None:
    result = await session.run_task(run_script(py("say('openjd_env: FROM_TASK=1')")), {})
    assert result.state == ActionState.SUCCESS
    assert await probe_task(session, recorder, "FROM_TASK") == {"FROM_TASK": None}


async def test_session_working_dir_variable_is_always_set(
    session: Session, recorder: Recorder
) -> None:
    env = env_with("E", probe("OPENJD_SESSION_WORKING_DIR"), probe("OPENJD_SESSION_WORKING_DIR"))
    expected = {"OPENJD_SESSION_WORKING_DIR": str(session.working_directory)}
    await session.enter_environment(env, identifier="E")
    assert probed(recorder.take()) == expected
    assert await probe_task(session, recorder, "OPENJD_SESSION_WORKING_DIR") == expected
    await session.exit_environment("E")
    assert probed(recorder.take()) == expected
