"""Job runs at scale: one job's tasks spread over N worker sessions by `ojd run --workers N`.

Run by hand: `.venv/bin/python benchmarks/workers.py [--tasks 64] [--workers 8] [--sleep 0.5]`.
Prints, for `--tasks` tasks of `sleep --sleep`, each run a real `ojd run` on this host:

- the wall time with `--workers 1` and with `--workers N`, and their ratio (target <= 0.2);
- with a job environment whose onEnter sleeps 1 second, how many times that onEnter ran
  (target: once per worker, not once per task) and the wall time.

Nothing is asserted; the numbers are for people.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OJD = [sys.executable, "-m", "openjd_runtime"]


def sleep_job(tasks: int, seconds: float, enter_log: Path | None) -> dict[str, Any]:
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
    return template


def timed(template: dict[str, Any], workers: int, scratch: Path) -> tuple[float, dict[str, Any]]:
    """Wall time of `ojd run --workers N --output json`, and its result document."""
    path = scratch / "job.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    command = [*OJD, "run", str(path), "--workers", str(workers), "--output", "json"]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=scratch)
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"`ojd run --workers {workers}` failed:\n{done.stderr[-4000:]}")
    return wall, json.loads(done.stdout)


def per_worker(result: dict[str, Any]) -> str:
    workers = result.get("workers")
    return " ".join(str(w["tasks"]) for w in workers) if workers else "all"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=0.5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        plain = sleep_job(args.tasks, args.sleep, None)
        one, _ = timed(plain, 1, scratch)
        many, result = timed(plain, args.workers, scratch)
        log = scratch / "entered"
        log.touch()
        wall, slow = timed(sleep_job(args.tasks, args.sleep, log), args.workers, scratch)
        entered = len(log.read_text().splitlines())
    print(f"{args.tasks} tasks of sleep {args.sleep}, `ojd run --workers N`")
    print(f"  1 worker:   {one:7.2f} s")
    print(f"  {args.workers} workers: {many:7.2f} s  (tasks per worker: {per_worker(result)})")
    print(f"  ratio:      {many / one:7.3f}  (target <= 0.2)")
    print(f"{args.tasks} tasks of sleep {args.sleep}, job environment with a 1 s onEnter")
    print(f"  {args.workers} workers: {wall:7.2f} s  (tasks per worker: {per_worker(slow)})")
    print(f"  onEnter ran {entered} times (target: {args.workers}, not {args.tasks})")


if __name__ == "__main__":
    main()
