"""Turns an action's raw output into log lines and OpenJD messages.

This is the pure core of output handling: no I/O and no asyncio. The caller feeds each block it
reads from the action and closes the filter at EOF. Work is done per block rather than per line
wherever possible, because an action may print millions of lines.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "MASK",
    "CancelMarkFailed",
    "Fail",
    "LogLevel",
    "Message",
    "OutputFilter",
    "Progress",
    "RedactedEnv",
    "Redactor",
    "SetEnv",
    "Status",
    "UnsetEnv",
]

MASK = "********"


@dataclass(frozen=True, slots=True)
class Progress:
    value: float


@dataclass(frozen=True, slots=True)
class Status:
    message: str


@dataclass(frozen=True, slots=True)
class Fail:
    message: str


@dataclass(frozen=True, slots=True)
class SetEnv:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class UnsetEnv:
    name: str


@dataclass(frozen=True, slots=True)
class RedactedEnv:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class LogLevel:
    level: int


@dataclass(frozen=True, slots=True)
class CancelMarkFailed:
    """The runtime must cancel the action and mark it FAILED."""

    message: str


Message: TypeAlias = (
    Progress | Status | Fail | SetEnv | UnsetEnv | RedactedEnv | LogLevel | CancelMarkFailed
)


class Redactor:
    """Session-wide set of secret values; shared by every action's OutputFilter of a session."""

    def __init__(self) -> None:
        self._substrings: set[str] = set()
        self._lines: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._longest = 0

    def add(self, value: str) -> None:
        """Remember a secret.

        Output is redacted line by line, so a multi-line value can only be recognised piece by
        piece: its first and last lines may be printed with other text around them, while a
        middle line is masked only where it makes up a whole output line (masking short middle
        lines everywhere would blank out unrelated output).
        """
        if "\n" not in value:
            self._add_substring(value)
            return
        pieces = [piece.removesuffix("\r") for piece in value.split("\n")]
        kept = [index for index, piece in enumerate(pieces) if piece.strip()]
        if not kept:
            return
        first, last = kept[0], kept[-1]
        self._add_substring(pieces[first])
        self._add_substring(pieces[last])
        self._lines.update(piece for piece in pieces[first + 1 : last] if piece.strip())

    def _add_substring(self, value: str) -> None:
        # Lines lose one trailing "\r", so the secret must not rely on it to match.
        value = value.removesuffix("\r")
        if not value.strip() or value in self._substrings:
            return
        self._substrings.add(value)
        self._longest = max(self._longest, len(value))
        # Longest first: at any position the search then reports the longest secret there.
        ordered = sorted(self._substrings, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def __bool__(self) -> bool:
        return bool(self._substrings or self._lines)

    @property
    def longest(self) -> int:
        """How far past a cut a secret can reach; line truncation keeps this much extra text."""
        return self._longest

    def redact(self, text: str) -> str:
        if self._lines:
            text = "\n".join(MASK if line in self._lines else line for line in text.split("\n"))
        return _apply(text, self._spans(text, len(text)), len(text))

    def redact_lines(self, lines: list[str]) -> list[str]:
        """Redact many lines with one regex pass over their joined text."""
        if self._lines:
            lines = [MASK if line in self._lines else line for line in lines]
        if self._pattern is None:
            return lines
        text = "\n".join(lines)
        spans = self._spans(text, len(text))
        if not spans:
            return lines
        return _apply(text, spans, len(text)).split("\n")

    def redact_head(self, head: str, limit: int) -> str:
        """Redact a line that is cut after `limit` characters.

        `head` holds the line's first `limit + longest` characters or more, so a secret that
        starts before the cut is found whole and masked whole; nothing from past the cut is
        kept, which means a secret that starts there cannot leak a prefix either.
        """
        if any(line.startswith(head) for line in self._lines):
            return MASK
        return _apply(head, self._spans(head, limit), limit)[:limit]

    def _spans(self, text: str, stop: int) -> list[tuple[int, int]]:
        """Merged spans of secrets that start before `stop`.

        Searching again one character after each match start finds the secrets that overlap it,
        which a plain non-overlapping scan would leave partly visible.
        """
        if self._pattern is None:
            return []
        search = self._pattern.search
        spans: list[tuple[int, int]] = []
        match = search(text)
        while match is not None and match.start() < stop:
            start, end = match.span()
            match = search(text, start + 1)
            while match is not None and match.start() <= end:
                end = max(end, match.end())
                match = search(text, match.start() + 1)
            spans.append((start, end))
        return spans


def _apply(text: str, spans: list[tuple[int, int]], stop: int) -> str:
    """`text[:stop]` with each span replaced by one MASK; a span may run past `stop`."""
    if not spans:
        return text[:stop]
    pieces: list[str] = []
    done = 0
    for start, end in spans:
        pieces += (text[done:start], MASK)
        done = end
    pieces.append(text[done:stop])
    return "".join(pieces)


_DIRECTIVE = re.compile(
    r"openjd_(progress|status|fail|env|unset_env|redacted_env|session_runtime_loglevel): (.+)",
    re.DOTALL,
)
_NEAR_MISS = re.compile(r"openjd_(?:env|redacted_env|unset_env)(?:[: ]|\Z)")
_CANDIDATE = re.compile(r"^[^\S\n]*openjd_", re.IGNORECASE | re.MULTILINE)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r'"?[A-Za-z_][A-Za-z0-9_]*=.*', re.DOTALL)
_REDACTED_PREFIX = "openjd_redacted_env: "
_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
}

_PROGRESS_ERROR = "Progress must be a floating point value between 0.0 and 100.0, inclusive."
_ASSIGNMENT_ERROR = "Failed to parse environment variable assignment."
_NAME_ERROR = "Failed to parse environment variable name."
_NEAR_MISS_ERROR = "Incorrectly formatted openjd env command"
_NAME_RULE = (
    "a name must start with a letter or underscore and hold only letters, digits and underscores"
)


def _parse_assignment(payload: str) -> tuple[str, str] | str:
    """Split `NAME=value` (plain or JSON-quoted); return the problem as a sentence if malformed."""
    body = payload.lstrip()
    problem = "Failed to parse environment variable assignment"
    if "=" not in body:
        return f"{problem}: expected NAME=VALUE but there is no '='"
    if _ASSIGNMENT.fullmatch(body) is None:
        return f"{problem}: {_NAME_RULE}, followed directly by '='"
    if body.startswith('"'):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as error:
            return f"{problem}: the quoted form is not a valid JSON string: {error}"
    name, _, value = body.partition("=")
    if "\0" in value:
        return f"{problem}: the value holds a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{problem}: the value holds an unpaired surrogate escape"
    return name, value


def _annotate(line: str, note: str, limit: int) -> str:
    """Append an error note, shortening the line so that the note survives the length limit."""
    suffix = f" -- ERROR: {note}"
    if len(line) + len(suffix) <= limit:
        return line + suffix
    return (line[: max(limit - len(suffix), 0)] + suffix)[:limit]


def _may_hold_long_line(text: str, limit: int) -> bool:
    """Cheap test that rules out lines longer than `limit` without measuring every line.

    Such a line covers a whole aligned window of (limit + 1) // 2 characters, so a window
    without a newline is necessary for one to exist.
    """
    step = (limit + 1) // 2
    return any(text.find("\n", start, start + step) < 0 for start in range(0, len(text), step))


class OutputFilter:
    """One per action."""

    def __init__(
        self, redactor: Redactor, *, redactions_enabled: bool, max_line_length: int = 65536
    ) -> None:
        if max_line_length < 1:
            raise ValueError("max_line_length must be at least 1")
        self._redactor = redactor
        self._redactions_enabled = redactions_enabled
        self._limit = max_line_length
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
        self._pending = ""
        self._head: str | None = None
        """Start of an over-long unfinished line; the rest of that line is being dropped."""

    @property
    def pending(self) -> int:
        """Characters held for the unfinished line.

        Between calls this never exceeds `max_line_length + redactor.longest + 1`, however long
        the line is.
        """
        return len(self._pending) + len(self._head or "")

    def feed(self, data: bytes) -> tuple[list[str], list[Message]]:
        lines: list[str] = []
        messages: list[Message] = []
        if self._head is not None:
            end = data.find(b"\n")
            if end < 0:
                return lines, messages
            lines.append(self._line(self._head, messages))
            self._head = None
            self._decoder.reset()
            data = data[end + 1 :]
        text = self._pending + self._decoder.decode(data)
        end = text.rfind("\n")
        if end < 0:
            self._pending = text
        else:
            self._pending = text[end + 1 :]
            self._lines(text[: end + 1], lines, messages)
        # After the complete lines: one of them may have added a longer secret.
        keep = self._limit + self._redactor.longest + 1
        if len(self._pending) > keep:
            self._head = self._pending[:keep]
            self._pending = ""
        return lines, messages

    def close(self) -> tuple[list[str], list[Message]]:
        lines: list[str] = []
        messages: list[Message] = []
        if self._head is not None:
            last = self._head
        else:
            last = (self._pending + self._decoder.decode(b"", final=True)).removesuffix("\r")
        if last:
            lines.append(self._line(last, messages))
        self._head = None
        self._pending = ""
        self._decoder.reset()
        return lines, messages

    def _lines(self, chunk: str, lines: list[str], messages: list[Message]) -> None:
        """Handle `chunk`, complete lines each ending in a newline."""
        if "\r" in chunk:
            chunk = chunk.replace("\r\n", "\n")
        raw = chunk.split("\n")
        raw.pop()
        redact = self._redactor.redact_lines
        done = 0
        for index in self._special(chunk, raw):
            lines += redact(raw[done:index])
            lines.append(self._line(raw[index], messages))
            done = index + 1
        lines += redact(raw[done:])

    def _special(self, chunk: str, raw: list[str]) -> list[int]:
        """Indices of the lines that need the per-line path: directive candidates, long lines."""
        found: set[int] = set()
        if "openjd_" in chunk.lower():
            index = 0
            position = 0
            for match in _CANDIDATE.finditer(chunk):
                index += chunk.count("\n", position, match.start())
                position = match.start()
                found.add(index)
        limit = self._limit
        if len(chunk) > limit and _may_hold_long_line(chunk, limit):
            found.update(index for index, line in enumerate(raw) if len(line) > limit)
        return sorted(found)

    def _line(self, raw: str, messages: list[Message]) -> str:
        """Handle one line that may be a directive or longer than the limit."""
        limit = self._limit
        if len(raw) > limit:
            raw = raw[: limit + self._redactor.longest + 1]
        visible = raw[:limit]
        match = _DIRECTIVE.fullmatch(visible)
        if match is None:
            shown = self._show(raw)
            if _NEAR_MISS.match(visible.lstrip().lower()) is None:
                return shown
            self._reject(messages, f"{_NEAR_MISS_ERROR} ({shown})")
            return _annotate(shown, _NEAR_MISS_ERROR, limit)
        kind, payload = match.groups()
        if kind == "redacted_env":
            return self._redacted_env(visible, payload, messages)
        shown = self._show(raw)
        note = self._directive(kind, payload, shown, messages)
        return shown if note is None else _annotate(shown, note, limit)

    def _directive(
        self, kind: str, payload: str, shown: str, messages: list[Message]
    ) -> str | None:
        """Turn a directive into messages; return the note to add to its line, if any."""
        if kind == "progress":
            try:
                value = float(payload)
            except ValueError:
                return _PROGRESS_ERROR
            if not 0.0 <= value <= 100.0:
                return _PROGRESS_ERROR
            messages.append(Progress(value))
        elif kind == "status":
            messages.append(Status(self._redactor.redact(payload)))
        elif kind == "fail":
            messages.append(Fail(self._redactor.redact(payload)))
        elif kind == "env":
            parsed = _parse_assignment(payload)
            if isinstance(parsed, str):
                self._reject(messages, f"{parsed} ({shown})")
                return _ASSIGNMENT_ERROR
            messages.append(SetEnv(*parsed))
        elif kind == "unset_env":
            name = payload.lstrip()
            if _NAME.fullmatch(name) is None:
                problem = f"Failed to parse environment variable name: {_NAME_RULE}"
                self._reject(messages, f"{problem} ({shown})")
                return _NAME_ERROR
            messages.append(UnsetEnv(name))
        else:
            level = _LEVELS.get(payload.strip().upper())
            if level is not None:
                messages.append(LogLevel(level))
        return None

    def _redacted_env(self, visible: str, payload: str, messages: list[Message]) -> str:
        """Learn the secret before echoing anything, so that no form of this line shows it."""
        parsed = _parse_assignment(payload)
        body = payload.lstrip()
        _, equals, after = body.partition("=")
        if isinstance(parsed, str):
            self._redactor.add(after if equals else body)
        else:
            self._redactor.add(parsed[1])
            if body.startswith('"'):
                self._redactor.add(after.rstrip().removesuffix('"'))
        cut = visible.find("=", len(_REDACTED_PREFIX))
        kept = visible[: cut + 1] if cut >= 0 else _REDACTED_PREFIX
        shown = (self._redactor.redact(kept) + MASK)[: self._limit]
        if not isinstance(parsed, str):
            if self._redactions_enabled:
                messages.append(RedactedEnv(*parsed))
            return shown
        if not self._redactions_enabled:
            self._reject(messages, f"{parsed} ({shown})")
        return _annotate(shown, _ASSIGNMENT_ERROR, self._limit)

    def _show(self, raw: str) -> str:
        if len(raw) > self._limit:
            return self._redactor.redact_head(raw, self._limit)
        return self._redactor.redact(raw)

    @staticmethod
    def _reject(messages: list[Message], problem: str) -> None:
        """Fail the action and have it canceled; `problem` must already be redacted."""
        text = f"Open Job Description: {problem}"
        messages += (Fail(text), CancelMarkFailed(text))
