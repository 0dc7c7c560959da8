"""How action output reaches `on_output`: framing, decoding, truncation, memory, ordering."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import psutil
import pytest

from openjd_runtime import ActionState, Session
from tests.session.sessionkit import Marks, Recorder, SessionFactory, env_with, py, run_script, sh

LINE_LIMIT = 64 * 1024

WRITE_BYTES = (
    "import ast\nsys.stdout.buffer.write(ast.literal_eval(sys.argv[1]))\nsys.stdout.flush()"
)


async def run_bytes(session: Session, recorder: Recorder, data: bytes) -> list[str]:
    """Runs a child that writes exactly `data` to stdout; returns the lines received."""
    recorder.take()
    result = await session.run_task(run_script(py(WRITE_BYTES, repr(data))), {})
    assert result.state == ActionState.SUCCESS, result
    return recorder.take()


async def test_every_line_arrives_in_order(session: Session, recorder: Recorder) -> None:
    code = "sys.stdout.write(''.join(f'line {i}\\n' for i in range(100000)))"
    result = await session.run_task(run_script(py(code)), {})
    assert result.state == ActionState.SUCCESS
    assert recorder.take() == [f"line {i}" for i in range(100000)]


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"first\nsecond", ["first", "second"]),
        (b"only", ["only"]),
        (b"a\n\nb\n", ["a", "", "b"]),
        (b"one\r\ntwo\r\n", ["one", "two"]),
        (b"x\r\r\n", ["x\r"]),
        (b"a\rb\n", ["a\rb"]),
        (b"tail\r\n\r\n", ["tail", ""]),
        (b"bad \xff\xfe end\n", ["bad \\xff\\xfe end"]),
        ("h\u00e9llo \u2713\n".encode(), ["h\u00e9llo \u2713"]),
        (b"cut \xe2\x9c", ["cut \\xe2\\x9c"]),
        (b"\x00nul\n", ["\x00nul"]),
    ],
)
async def test_line_framing_and_decoding(
    session: Session, recorder: Recorder, data: bytes, lines: list[str]
) -> None:
    assert await run_bytes(session, recorder, data) == lines


async def test_no_output_gives_no_lines(session: Session, recorder: Recorder) -> None:
    assert await run_bytes(session, recorder, b"") == []


async def test_stderr_is_merged_in_order(session: Session, recorder: Recorder) -> None:
    code = """
    say('out 1')
    print('err 1', file=sys.stderr, flush=True)
    say('out 2')
    print('err 2', file=sys.stderr, flush=True)
    """
    await session.run_task(run_script(py(code)), {})
    assert recorder.take() == ["out 1", "err 1", "out 2", "err 2"]


async def test_long_line_is_truncated_and_framing_resumes(
    session: Session, recorder: Recorder
) -> None:
    code = "sys.stdout.write('x' * 200000 + '\\nafter\\n')"
    result = await session.run_task(run_script(py(code)), {})
    assert result.state == ActionState.SUCCESS
    assert recorder.take() == ["x" * LINE_LIMIT, "after"]


async def test_lines_of_all_actions_arrive_in_order(session: Session, recorder: Recorder) -> None:
    env = env_with("E", py("say('enter')"), py("say('exit')"))
    await session.enter_environment(env, identifier="E")
    await session.run_task(run_script(py("say('task 1')")), {})
    await session.run_task(run_script(py("say('task 2')")), {})
    await session.exit_environment("E")
    assert recorder.take() == ["enter", "task 1", "task 2", "exit"]


@pytest.mark.timeout(30)
async def test_output_printed_before_a_cancel_is_not_lost(
    session: Session, recorder: Recorder, marks: Marks
) -> None:
    code = """
    sys.stdout.write(''.join(f'before cancel {i}\\n' for i in range(5000)))
    sys.stdout.flush()
    mark(sys.argv[1], os.getpid())
    time.sleep(60)
    """
    task = asyncio.create_task(session.run_task(run_script(py(code, marks.path("pid"))), {}))
    await marks.pid("pid")
    session.cancel_action()
    result = await task
    assert result.state == ActionState.CANCELED
    assert recorder.take() == [f"before cancel {i}" for i in range(5000)]


class PeakRss:
    """Samples this process's RSS from a thread, so a blocked event loop cannot hide a peak."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.timeout(120)
async def test_gigabyte_without_newline_keeps_memory_flat(make_session: SessionFactory) -> None:
    received: list[str] = []

    def keep(lines: Sequence[str]) -> None:
        received.extend(lines)

    session = make_session(on_output=keep)
    script = run_script(sh("head -c 1000000000 /dev/zero | tr '\\0' a"))
    with PeakRss() as rss:
        result = await session.run_task(script, {})
    growth = rss.peak - rss.baseline

    assert result.state == ActionState.SUCCESS
    assert received == ["a" * LINE_LIMIT]
    assert growth < 100 * 1024 * 1024, f"RSS grew by {growth / 2**20:.0f} MiB"
