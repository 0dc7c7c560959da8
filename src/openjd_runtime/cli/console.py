"""Writing `ojd run` lines as they happen, with a live progress line on a terminal."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from .output import Progress, format_timestamp, progress_line

CLEAR_LINE = "\r\x1b[K"


class Console:
    """Timestamped lines on one stream; nothing is kept once written, so memory stays flat."""

    def __init__(self, stream: TextIO, timestamp_format: str, live: bool) -> None:
        self._stream = stream
        self._format = timestamp_format
        self._started = time.monotonic()
        self.live = live
        self.progress = Progress()
        self._progress_shown = False
        self._closed = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def lines(self, texts: Sequence[str]) -> None:
        """One timestamp for the batch: lines that arrive together share it."""
        if not texts:
            return
        stamp = format_timestamp(self._format, self.elapsed, datetime.now())
        body = "".join(f"{stamp}\t{text}\n" for text in texts)
        self._write(body)

    def line(self, text: str) -> None:
        self.lines((text,))

    def plain(self, text: str) -> None:
        """Text without timestamps (the result block)."""
        self._write(text)

    def error(self, text: str, stream: TextIO) -> None:
        """A message for another stream (stderr), without tearing the progress line."""
        if self.live and self._progress_shown:
            self._write_raw(CLEAR_LINE)
            self._progress_shown = False
        stream.write(text + "\n")
        stream.flush()
        self.redraw()

    def redraw(self) -> None:
        if self.live:
            self._write("")

    def finish(self) -> None:
        """Removes the progress line for good."""
        if self.live and self._progress_shown:
            self._write_raw(CLEAR_LINE)
        self.live = False
        self._progress_shown = False

    def _write(self, body: str) -> None:
        if self.live:
            width = _terminal_width(self._stream)
            status = progress_line(self.progress, self.elapsed, width)
            prefix = CLEAR_LINE if self._progress_shown else ""
            body = prefix + body + status
            self._progress_shown = True
        self._write_raw(body)

    def _write_raw(self, body: str) -> None:
        if self._closed:
            return
        try:
            self._stream.write(body)
            self._stream.flush()
        except BrokenPipeError:
            self._close_broken_pipe()

    def _close_broken_pipe(self) -> None:
        """The reader went away (`ojd run ... | head`): the run goes on, its output is dropped."""
        self._closed = True
        self.live = False
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)


def _terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 80
