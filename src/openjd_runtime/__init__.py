"""openjd_runtime: an asyncio-native runtime for Open Job Description jobs.

Names are imported on first use, so that `ojd --version` does not pay for loading the
template model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openjd.expr import PathMappingRule

    from .errors import SessionError
    from .log import LogContent
    from .session import Session, SessionConfig
    from .state import ActionResult, ActionState, ActionStatus, SessionState
    from .users import PosixSessionUser

__version__ = "0.1.0"

_EXPORTS = {
    "ActionResult": ".state",
    "ActionState": ".state",
    "ActionStatus": ".state",
    "LogContent": ".log",
    "PathMappingRule": "openjd.expr",
    "PosixSessionUser": ".users",
    "Session": ".session",
    "SessionConfig": ".session",
    "SessionError": ".errors",
    "SessionState": ".state",
}

__all__ = [
    "ActionResult",
    "ActionState",
    "ActionStatus",
    "LogContent",
    "PathMappingRule",
    "PosixSessionUser",
    "Session",
    "SessionConfig",
    "SessionError",
    "SessionState",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
