"""openjd_runtime: an asyncio-native runtime for Open Job Description jobs."""

from __future__ import annotations

from openjd.expr import PathMappingRule

from .errors import SessionError
from .log import LogContent
from .session import Session, SessionConfig
from .state import ActionResult, ActionState, ActionStatus, SessionState

__version__ = "0.1.0"

__all__ = [
    "ActionResult",
    "ActionState",
    "ActionStatus",
    "LogContent",
    "PathMappingRule",
    "Session",
    "SessionConfig",
    "SessionError",
    "SessionState",
    "__version__",
]
