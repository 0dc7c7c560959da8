"""Session log records go to the `openjd_runtime` logger; action output does not."""

from __future__ import annotations

import logging

import pytest

from openjd_runtime import LogContent, Session
from tests.session.sessionkit import Recorder, py, run_script


async def test_session_lines_are_logged_and_output_is_not(
    session: Session, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="openjd_runtime")
    # Built at run time, so the command line that gets logged does not contain it.
    await session.run_task(run_script(py("say('out' + 'put-' + 'marker')")), {})

    assert recorder.take() == ["output-marker"]
    records = [r for r in caplog.records if r.name.startswith("openjd_runtime")]
    assert records
    assert not [r for r in records if "output-marker" in r.getMessage()]
    assert all(getattr(r, "session_id", None) == "test-session" for r in records)
    contents = [getattr(r, "openjd_log_content", None) for r in records]
    assert all(c is None or isinstance(c, LogContent) for c in contents)
    assert any(isinstance(c, LogContent) for c in contents)
    messages = "\n".join(r.getMessage() for r in records)
    assert "Running command" in messages
    assert "exited with code: 0" in messages
