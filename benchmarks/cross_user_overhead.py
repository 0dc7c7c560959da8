"""Per-action overhead of a cross-user session against a same-user one, and large output.

Run by hand, as an agent allowed to run commands as the job user without a password (see
`scripts/setup-host.sh`):

    .venv/bin/python benchmarks/cross_user_overhead.py [--user openjd-job] [--group openjd-shared]

It runs one warm-up action and then `--tasks` trivial tasks (`/bin/true`) in each kind of
session, and reports the per-action wall time after the first; the goal is a cross-user median
within 10 ms of the same-user one. Then it streams `--lines` lines through each kind of session
and reports the time taken and how far the agent's resident memory rose above where it started.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from library_bench import step_script
from openjd_runtime import ActionState, PosixSessionUser, Session, SessionConfig

GOAL_MS = 10.0
LINE_PRINTER = "/usr/bin/python3"
"""An interpreter the job user can run, for the output test."""


@dataclass
class Timings:
    first: float
    rest: list[float]

    def median_ms(self) -> float:
        return statistics.median(self.rest) * 1000

    def mean_ms(self) -> float:
        return statistics.fmean(self.rest) * 1000

    def p95_ms(self) -> float:
        return sorted(self.rest)[int(len(self.rest) * 0.95) - 1] * 1000


async def time_tasks(config: SessionConfig, tasks: int) -> Timings:
    script = step_script(["/bin/true"])
    durations: list[float] = []
    async with Session(config) as session:
        for _ in range(tasks + 1):
            start = time.perf_counter()
            result = await session.run_task(script, {})
            durations.append(time.perf_counter() - start)
            if result.state != ActionState.SUCCESS:
                raise SystemExit(f"A task failed: {result}")
    return Timings(durations[0], durations[1:])


async def stream_lines(config: SessionConfig, lines: int) -> tuple[float, float, int]:
    """(seconds, MiB the agent's RSS rose, lines received)."""
    code = (
        "import sys\n"
        "out = sys.stdout.buffer\n"
        f"for i in range({lines}):\n"
        "    out.write(b'line %d of a long enough output line for the benchmark\\n' % i)\n"
    )
    script = step_script([LINE_PRINTER, "-c", code])
    received = 0

    def count(batch: Sequence[str]) -> None:
        nonlocal received
        received += len(batch)

    config.on_output = count
    me = psutil.Process()
    baseline = me.memory_info().rss
    peak = baseline

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, me.memory_info().rss)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    start = time.perf_counter()
    async with Session(config) as session:
        result = await session.run_task(script, {})
    elapsed = time.perf_counter() - start
    sampler.cancel()
    if result.state != ActionState.SUCCESS:
        raise SystemExit(f"The output task failed: {result}")
    return elapsed, (peak - baseline) / (1 << 20), received


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--user", default="openjd-job")
    parser.add_argument("--group", default="openjd-shared")
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--lines", type=int, default=1_000_000)
    options = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="openjd-bench-"))
    root.chmod(0o755)
    user = PosixSessionUser(options.user, options.group)
    try:
        same = await time_tasks(
            SessionConfig(session_id="same", session_root_directory=root), options.tasks
        )
        cross = await time_tasks(
            SessionConfig(session_id="cross", session_root_directory=root, user=user),
            options.tasks,
        )
        print(f"{options.tasks} trivial tasks after a first one, per action (ms):")
        print(f"{'':12}{'first':>10}{'median':>10}{'mean':>10}{'p95':>10}")
        for name, t in (("same user", same), ("cross user", cross)):
            print(
                f"{name:12}{t.first * 1000:10.2f}{t.median_ms():10.2f}"
                f"{t.mean_ms():10.2f}{t.p95_ms():10.2f}"
            )
        overhead = cross.median_ms() - same.median_ms()
        verdict = "within" if overhead <= GOAL_MS else "NOT within"
        print(f"cross-user overhead (median): {overhead:+.2f} ms, {verdict} {GOAL_MS:.0f} ms")
        print(f"cross-user overhead (mean):   {cross.mean_ms() - same.mean_ms():+.2f} ms")

        print(f"\n{options.lines} lines of output:")
        for name, config in (
            ("same user", SessionConfig(session_id="out", session_root_directory=root)),
            (
                "cross user",
                SessionConfig(session_id="out", session_root_directory=root, user=user),
            ),
        ):
            seconds, rise, received = await stream_lines(config, options.lines)
            print(
                f"{name:12}{seconds:8.2f} s  {received / seconds:12,.0f} lines/s  "
                f"agent RSS rise {rise:6.1f} MiB  ({received} lines)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
