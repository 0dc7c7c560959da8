"""Errors raised for misuse of a Session. Failed actions are results, not errors."""

from __future__ import annotations


class SessionError(Exception):
    """Base class of every error the Session raises."""


class InvalidStateError(SessionError):
    """The call is not allowed in the session's current state."""


class DuplicateEnvironmentError(SessionError):
    """An environment with this identifier has already been entered."""


class UnknownEnvironmentError(SessionError):
    """No entered environment has this identifier."""


class LifoViolationError(SessionError):
    """Environments must be exited in the reverse order of entry."""


class MultipleWrapEnvironmentsError(SessionError):
    """At most one entered environment may define wrap hooks."""


class WorkingDirectoryError(SessionError):
    """The session's working directory cannot be created safely."""


class UnsupportedPlatformError(SessionError):
    """This platform is not supported yet."""
