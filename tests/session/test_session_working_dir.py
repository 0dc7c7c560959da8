"""The session working directory: where, with which mode, when it goes away, which roots fail."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest

from openjd_runtime import ActionState, SessionState
from openjd_runtime.errors import WorkingDirectoryError
from tests.session.sessionkit import SessionFactory, py, run_script, state


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_created_at_once_under_the_root_with_mode_0700(
    make_session: SessionFactory, session_root: Path
) -> None:
    session = make_session()
    workdir = session.working_directory

    assert workdir.is_dir()
    assert workdir.parent == session_root
    assert mode(workdir) == 0o700
    assert session.files_directory.is_dir()
    assert session.files_directory.parent == workdir
    assert state(session) == SessionState.READY


async def test_default_root_is_openjd_under_the_temp_dir(make_session: SessionFactory) -> None:
    session = make_session(session_root_directory=None)
    workdir = session.working_directory
    try:
        assert workdir.parent == Path(tempfile.gettempdir()) / "OpenJD"
        assert mode(workdir) == 0o700
    finally:
        await session.cleanup()
    assert not workdir.exists()


async def test_each_session_gets_its_own_directory(make_session: SessionFactory) -> None:
    first = make_session(session_id="same-id")
    second = make_session(session_id="same-id")
    assert first.working_directory != second.working_directory


async def test_cleanup_removes_everything_actions_left(make_session: SessionFactory) -> None:
    session = make_session()
    code = """
    os.makedirs('deep/er', exist_ok=True)
    open('deep/er/file.txt', 'w').write('x')
    """
    result = await session.run_task(run_script(py(code)), {})
    assert result.state == ActionState.SUCCESS
    workdir = session.working_directory
    assert (workdir / "deep" / "er" / "file.txt").exists()

    await session.cleanup()
    assert not workdir.exists()
    assert state(session) == SessionState.ENDED


async def test_retained_directory_survives_cleanup(make_session: SessionFactory) -> None:
    session = make_session(retain_working_dir=True)
    await session.run_task(run_script(py("open('kept.txt', 'w').write('kept')")), {})
    await session.cleanup()
    assert (session.working_directory / "kept.txt").read_text() == "kept"
    assert state(session) == SessionState.ENDED


async def test_root_under_world_writable_dir_without_sticky_bit_is_refused(
    make_session: SessionFactory, tmp_path: Path
) -> None:
    unsafe = tmp_path / "world-writable"
    unsafe.mkdir()
    unsafe.chmod(0o777)
    root = unsafe / "root"
    root.mkdir()

    with pytest.raises(WorkingDirectoryError):
        make_session(session_root_directory=root)
    assert list(root.iterdir()) == []


async def test_root_under_sticky_world_writable_dir_is_accepted(
    make_session: SessionFactory, tmp_path: Path
) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    root = sticky / "root"
    root.mkdir()

    session = make_session(session_root_directory=root)
    assert session.working_directory.parent == root
