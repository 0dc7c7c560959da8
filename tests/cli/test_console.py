"""The console: timestamped batches, the redrawn progress line, and a reader that goes away."""

from __future__ import annotations

import io
import os
import re

from openjd_runtime.cli.console import CLEAR_LINE, Console

STAMP = r"\d+:\d\d:\d\d\.\d{3}"


def test_plain_stream_gets_timestamped_lines_only() -> None:
    stream = io.StringIO()
    console = Console(stream, "relative", live=False)
    console.lines(["a", "b"])
    console.lines([])
    console.redraw()
    console.plain("result\n")
    console.finish()
    text = stream.getvalue()
    first, second, last = text.splitlines()
    assert re.fullmatch(f"{STAMP}\ta", first)
    assert second == first[:-1] + "b", "a batch shares one timestamp"
    assert last == "result"
    assert CLEAR_LINE not in text


def test_live_stream_redraws_the_progress_line_below_the_output() -> None:
    stream = io.StringIO()
    console = Console(stream, "relative", live=True)
    console.progress.phase = "Step 'S'"
    console.progress.step = "S"
    console.progress.total = 3
    console.line("one")
    console.progress.done = 1
    console.redraw()
    errors = io.StringIO()
    console.error("ERROR: bad", errors)
    console.line("two")
    console.finish()
    console.plain("result\n")
    text = stream.getvalue()
    assert errors.getvalue() == "ERROR: bad\n"
    status = "Step 'S' \\| tasks {}/3 \\| \\d+:\\d\\d:\\d\\d"
    expected = [
        f"{STAMP}\tone\n" + status.format(0),
        status.format(1),  # redraw
        status.format(1),  # cleared for the error on the other stream, then drawn again
        f"{STAMP}\ttwo\n" + status.format(1),
        "result\n",  # finish cleared the line for good
    ]
    parts = text.split(CLEAR_LINE)
    assert len(parts) == len(expected), parts
    for part, pattern in zip(parts, expected, strict=True):
        assert re.fullmatch(pattern, part), (part, pattern)


def test_a_closed_pipe_drops_output_instead_of_failing() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = open(write_end, "w", encoding="utf-8")  # noqa: SIM115
    try:
        console = Console(stream, "utc", live=False)
        console.line("nobody reads this")
        console.lines(["nor this"])
        console.plain("nor the result\n")
        stream.write("written after the reader left\n")
        stream.flush()
    finally:
        stream.close()
