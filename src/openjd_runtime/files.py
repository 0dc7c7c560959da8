"""The session's files: working directory, embedded files, path-mapping and cancel-info files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import WorkingDirectoryError

PATH_MAPPING_FILE = "path_mapping_rules.json"
CANCEL_INFO_FILE = "cancel_info.json"
EMBEDDED_FILES_DIR = "embedded_files"


class EmbeddedFileError(ValueError):
    """An embedded file cannot be written; the action fails before it starts."""


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / "OpenJD"


def check_ancestors(path: Path) -> None:
    """Refuse a root below a world-writable directory without the sticky bit.

    Anyone could rename or replace the root there and read or plant a job's files.
    """
    for ancestor in path.parents:
        try:
            mode = ancestor.stat().st_mode
        except OSError:
            continue
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            raise WorkingDirectoryError(
                f"Refusing session root {path}: its ancestor {ancestor} is world-writable "
                "without the sticky bit."
            )


def create_working_directory(
    session_id: str, root: Path | None, group: int | None = None
) -> tuple[Path, Path]:
    """Create `<root>/<session id>-<random>` (0700) and its embedded files directory.

    With `group`, both are shared with that group (0770), for a job user in it.
    """
    root = (root or default_root()).absolute()
    check_ancestors(root)
    try:
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        if root.is_symlink() or not root.is_dir():
            raise WorkingDirectoryError(f"Session root {root} is not a directory.")
        prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", session_id)[:64] + "-"
        working = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        files = working / EMBEDDED_FILES_DIR
        files.mkdir(mode=0o700)
        if group is not None:
            share_directory(working, group)
            share_directory(files, group)
    except OSError as exc:
        raise WorkingDirectoryError(f"Cannot create the session working directory: {exc}") from exc
    return working, files


def remove_tree(path: Path) -> None:
    """Remove a directory tree, including read-only directories a job left behind."""

    def on_error(_func: Any, failed: str, _exc: Any) -> None:
        parent = os.path.dirname(failed)
        try:
            os.chmod(parent, 0o700)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)
        except OSError:
            pass

    if path.exists():
        shutil.rmtree(path, onerror=on_error)


def validate_filename(filename: str) -> None:
    if not filename or filename in (".", "..") or any(c in filename for c in "/\\\0"):
        raise EmbeddedFileError(
            f"Embedded file name {filename!r} must be a plain file name "
            "(no path separators, not '.' or '..')."
        )


def allocate_file_paths(files: Iterable[Any], directory: Path) -> dict[str, Path]:
    """Choose each embedded file's path before any data is resolved, since data may name others."""
    paths: dict[str, Path] = {}
    for file in files:
        if file.filename is not None:
            validate_filename(file.filename)
            paths[file.name] = directory / file.filename
        else:
            paths[file.name] = directory / secrets.token_hex(8)
    return paths


def convert_line_endings(data: str, end_of_line: str | None) -> str:
    """Apply `endOfLine`; an absent value writes the data as resolved."""
    if end_of_line is None:
        return data
    lf = data.replace("\r\n", "\n")
    if end_of_line == "CRLF" or (end_of_line == "AUTO" and os.name == "nt"):
        return lf.replace("\n", "\r\n")
    return lf


def share_directory(path: Path, group: int) -> None:
    """Let the members of `group`, a cross-user session's job user among them, use `path`."""
    os.chown(path, -1, group)
    os.chmod(path, 0o770)


def write_private_file(
    path: Path, data: bytes, mode: int = 0o600, group: int | None = None
) -> None:
    """Write through a fresh temporary file and rename it into place.

    The rename replaces whatever sits at `path`, a planted symlink included, without following it.
    With `group`, the file belongs to that group before it appears at `path`.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if group is not None:
                os.fchown(out.fileno(), -1, group)
            os.fchmod(out.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_embedded_file(
    path: Path, data: str, *, runnable: bool, end_of_line: str | None, group: int | None = None
) -> None:
    """Private to the owner, or shared with `group` (read and write, and run if runnable)."""
    mode = 0o700 if runnable else 0o600
    if group is not None:
        mode |= mode >> 3
    try:
        write_private_file(
            path, convert_line_endings(data, end_of_line).encode("utf-8"), mode, group
        )
    except OSError as exc:
        raise EmbeddedFileError(f"Cannot write embedded file {path}: {exc}") from exc


class PathMappingFile:
    """The rules in the `pathmapping-1.0` document form that actions read.

    Every action must find the file as written, but the rules do not change within a session,
    so it is written again only when an earlier action changed or removed it.
    """

    def __init__(self, working_directory: Path, rules: Sequence[Any], group: int | None) -> None:
        document: Mapping[str, Any] = (
            {"version": "pathmapping-1.0", "path_mapping_rules": [r.to_dict() for r in rules]}
            if rules
            else {}
        )
        self.path = working_directory / PATH_MAPPING_FILE
        self._data = json.dumps(document, sort_keys=True).encode()
        self._group = group
        self._written: tuple[int, int, int] | None = None

    @staticmethod
    def _identity(path: Path) -> tuple[int, int, int] | None:
        try:
            st = path.lstat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def ensure(self) -> Path:
        if self._written is None or self._identity(self.path) != self._written:
            mode = 0o600 if self._group is None else 0o640
            write_private_file(self.path, self._data, mode, self._group)
            self._written = self._identity(self.path)
        return self.path


def write_cancel_info(
    working_directory: Path, notify_end: datetime, group: int | None = None
) -> None:
    """Tell a NOTIFY_THEN_TERMINATE action when it will be killed; `group` may read it."""
    end = notify_end.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with contextlib.suppress(OSError):
        write_private_file(
            working_directory / CANCEL_INFO_FILE,
            json.dumps({"NotifyEnd": end}).encode(),
            0o600 if group is None else 0o640,
            group,
        )
