"""The `openjd_runtime` logger and the content flags carried by its records."""

from __future__ import annotations

import logging
from enum import Flag, auto
from typing import Any

LOG = logging.getLogger("openjd_runtime")


class LogContent(Flag):
    """What a session log record holds, so that handlers can filter (e.g. hide file contents)."""

    BANNER = auto()
    FILE_PATH = auto()
    FILE_CONTENTS = auto()
    COMMAND_OUTPUT = auto()
    EXCEPTION_INFO = auto()
    PROCESS_CONTROL = auto()
    PARAMETER_INFO = auto()
    HOST_INFO = auto()


class SessionLogger:
    """Logs on behalf of one session, attaching the `session_id` and `openjd_log_content` extras."""

    __slots__ = ("level", "session_id")

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.level = logging.DEBUG
        """Raised by `openjd_session_runtime_loglevel` to quiet this session's records."""

    def _extra(self, content: LogContent | None) -> dict[str, Any]:
        return {"session_id": self.session_id, "openjd_log_content": content}

    def info(self, msg: str, content: LogContent | None = None) -> None:
        if self.level <= logging.INFO and LOG.isEnabledFor(logging.INFO):
            LOG.info(msg, extra=self._extra(content))

    def debug(self, msg: str, content: LogContent | None = None) -> None:
        if self.level <= logging.DEBUG and LOG.isEnabledFor(logging.DEBUG):
            LOG.debug(msg, extra=self._extra(content))

    def warning(self, msg: str, content: LogContent | None = None) -> None:
        LOG.warning(msg, extra=self._extra(content))

    def error(self, msg: str, content: LogContent | None = None) -> None:
        LOG.error(msg, extra=self._extra(content))

    def banner(self, title: str) -> None:
        """A section banner, as the reference runtimes print it."""
        for line in ("", "=" * 46, f"--------- {title}", "=" * 46):
            self.info(line, LogContent.BANNER)
