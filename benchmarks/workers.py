"""Job runs at scale: one job's tasks spread over N worker sessions on this host (issue 6).

Run by hand: `.venv/bin/python benchmarks/workers.py [--tasks 64] [--workers 8] [--sleep 0.5]`.
Prints, for `--tasks` tasks of `sleep --sleep`:

- the wall time with 1 worker and with `--workers` workers, and their ratio (target <= 0.2);
- with a job environment whose onEnter sleeps 1 second, how many times that onEnter ran
  (target: once per worker, not once per task) and the wall time.

Nothing is asserted; the numbers are for people.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openjd.model import create_job_with_symbol_tables, decode_job_template

from openjd_runtime.scheduling import JobRunResult, JobRunSpec, job_steps, run_job


def sleep_job(tasks: int, seconds: float, enter_log: Path | None) -> JobRunSpec:
    """`tasks` tasks of `sleep seconds`; with `enter_log`, a job environment whose onEnter
    appends a line to it and sleeps one second."""
    template: dict[str, Any] = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "SleepJob",
        "steps": [
            {
                "name": "Sleep",
                "parameterSpace": {
                    "taskParameterDefinitions": [
                        {"name": "Task", "type": "INT", "range": f"1-{tasks}"}
                    ]
                },
                "script": {"actions": {"onRun": {"command": "sleep", "args": [str(seconds)]}}},
            }
        ],
    }
    if enter_log is not None:
        enter = {"command": "sh", "args": ["-c", f"echo entered >> '{enter_log}'; sleep 1"]}
        template["jobEnvironments"] = [
            {"name": "SlowSetup", "script": {"actions": {"onEnter": enter}}}
        ]
    created = create_job_with_symbol_tables(
        job_template=decode_job_template(template=template), job_parameter_values={}
    )
    return JobRunSpec(job=created.job, steps=job_steps(created.job, created.step_symbol_tables))


async def timed(spec: JobRunSpec, workers: int) -> tuple[float, JobRunResult]:
    started = time.monotonic()
    result = await run_job(spec, workers=workers)
    wall = time.monotonic() - started
    if not result.success:
        sys.exit(f"The run with {workers} worker(s) failed: {result.failures}")
    return wall, result


def per_worker(result: JobRunResult) -> str:
    return " ".join(str(w.tasks) for w in result.workers)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=0.5)
    args = parser.parse_args()

    plain = sleep_job(args.tasks, args.sleep, None)
    one, _ = await timed(plain, 1)
    many, result = await timed(plain, args.workers)
    print(f"{args.tasks} tasks of sleep {args.sleep}")
    print(f"  1 worker:   {one:7.2f} s")
    print(f"  {args.workers} workers: {many:7.2f} s  (tasks per worker: {per_worker(result)})")
    print(f"  ratio:      {many / one:7.3f}  (target <= 0.2)")

    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "entered"
        log.touch()
        wall, result = await timed(sleep_job(args.tasks, args.sleep, log), args.workers)
        entered = len(log.read_text().splitlines())
    print(f"{args.tasks} tasks of sleep {args.sleep}, job environment with a 1 s onEnter")
    print(f"  {args.workers} workers: {wall:7.2f} s  (tasks per worker: {per_worker(result)})")
    print(f"  onEnter ran {entered} times (target: {args.workers}, not {args.tasks})")


if __name__ == "__main__":
    asyncio.run(main())
