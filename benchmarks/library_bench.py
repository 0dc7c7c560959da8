"""Library benchmarks (scenarios 7 and 8), run by the interpreter of the runtime being measured.

`ours` drives `openjd_runtime` on one asyncio event loop; `reference` drives `openjd.sessions`
with one thread per session, the model its documentation gives (a callback per action status,
the caller waiting for the terminal one). Prints one JSON object: `wall` (s) and `cpu` (s) of
the measured phase only, `peak_rss` (bytes) of the process, and scenario-specific `extra` values.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

OURS = "ours"
REFERENCE = "reference"
STUBBORN = ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"]
"""A task that ignores SIGTERM and says when it is running."""
WAIT_SECONDS = 60.0


def step_script(command: list[str]) -> Any:
    """A StepScript built through the public model API of either openjd-model release."""
    from openjd.model import create_job, decode_job_template

    action: dict[str, Any] = {"command": command[0]}
    if command[1:]:
        action["args"] = command[1:]
    template = decode_job_template(
        template={
            "specificationVersion": "jobtemplate-2023-09",
            "name": "Bench",
            "steps": [
                {
                    "name": "Step",
                    "script": {"actions": {"onRun": action}},
                }
            ],
        }
    )
    return create_job(job_template=template, job_parameter_values={}).steps[0].script


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds() -> float:
    """This process's CPU time plus that of the task processes it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def ours_sessions(sessions: int, tasks: int, script: Any) -> None:
    from openjd_runtime import ActionState, Session, SessionConfig

    async def one(index: int) -> None:
        async with Session(SessionConfig(session_id=f"bench-{index}")) as session:
            for _ in range(tasks):
                result = await session.run_task(script, {})
                if result.state is not ActionState.SUCCESS:
                    raise RuntimeError(f"session {index}: task ended {result}")

    await asyncio.gather(*(one(i) for i in range(sessions)))


def reference_sessions(sessions: int, tasks: int, script: Any) -> int:
    """Returns how many tasks failed to start and were run again in a new session.

    Under many threads the reference can fail to start a task (its wrapper script is still open
    for writing in a child forked by another thread: ETXTBSY). The session is then only good for
    ending, so the thread starts a new one and goes on, and the total work stays the same.
    """
    from openjd.sessions import ActionState, Session

    errors: list[str] = []
    restarts: list[int] = []

    def one(index: int) -> None:
        done = threading.Event()
        final: list[Any] = []

        def callback(session_id: str, status: Any) -> None:
            if status.state != ActionState.RUNNING:
                final.append(status)
                done.set()

        left = tasks
        try:
            while left > 0:
                with Session(
                    session_id=f"bench-{index}", job_parameter_values={}, callback=callback
                ) as session:
                    while left > 0:
                        done.clear()
                        session.run_task(step_script=script, task_parameter_values={})
                        if not done.wait(WAIT_SECONDS):
                            raise RuntimeError("a task did not end")
                        if final[-1].state == ActionState.SUCCESS:
                            left -= 1
                        elif final[-1].exit_code is None and len(restarts) < sessions * tasks:
                            restarts.append(index)
                            break
                        else:
                            raise RuntimeError(f"task ended {final[-1]}")
        except Exception as exc:
            errors.append(f"session {index}: {exc}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return len(restarts)


def measure_sessions(runtime: str, sessions: int, tasks: int) -> dict[str, Any]:
    """Scenario 7. One small warm-up first, so the memory baseline holds every import and cache."""
    script = step_script(["true"])
    run: Callable[[int, int], int]
    if runtime == OURS:

        def run(n: int, t: int) -> int:
            asyncio.run(ours_sessions(n, t, script))
            return 0

    else:

        def run(n: int, t: int) -> int:
            return reference_sessions(n, t, script)

    run(1, 2)
    base = rss_now()
    cpu = cpu_seconds()
    start = time.perf_counter()
    restarts = run(sessions, tasks)
    wall = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    peak = peak_rss()
    return {
        "wall": wall,
        "cpu": cpu,
        "peak_rss": peak,
        "extra": {"per_session": max(peak - base, 0) / sessions, "restarts": restarts},
    }


def measure_spawns(sessions: int, tasks: int) -> dict[str, Any]:
    """Scenario 7's floor: the same `true` processes, started by a plain loop on as many threads
    as our runtime starts processes on. No runtime does less for them."""
    from openjd_runtime.process import SPAWN_THREADS

    def spawn(count: int) -> None:
        for _ in range(count):
            subprocess.run(["true"], stdin=subprocess.DEVNULL, check=True)

    total = sessions * tasks
    shares = [total // SPAWN_THREADS + (i < total % SPAWN_THREADS) for i in range(SPAWN_THREADS)]
    spawn(2)
    cpu = cpu_seconds()
    start = time.perf_counter()
    with ThreadPoolExecutor(SPAWN_THREADS) as pool:
        list(pool.map(spawn, shares))
    wall = time.perf_counter() - start
    return {"wall": wall, "cpu": cpu_seconds() - cpu, "peak_rss": peak_rss()}


async def ours_cancel_once(index: int, script: Any) -> float:
    from openjd_runtime import ActionState, Session, SessionConfig

    ready = asyncio.Event()

    def on_output(lines: Any) -> None:
        if "ready" in lines:
            ready.set()

    config = SessionConfig(session_id=f"cancel-{index}", on_output=on_output)
    async with Session(config) as session:
        task = asyncio.create_task(session.run_task(script, {}))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, timeout=WAIT_SECONDS, return_when="FIRST_COMPLETED")
        if not ready.is_set():
            waiter.cancel()
            raise RuntimeError(f"the task did not start: {await task}")
        start = time.perf_counter()
        session.cancel_action()
        result = await task
        latency = time.perf_counter() - start
        if result.state is not ActionState.CANCELED:
            raise RuntimeError(f"cancel ended {result}")
    return latency


def ours_cancel(samples: int, script: Any) -> list[float]:
    async def all_samples() -> list[float]:
        return [await ours_cancel_once(i, script) for i in range(samples)]

    return asyncio.run(all_samples())


def reference_cancel(samples: int, script: Any) -> list[float]:
    from openjd.sessions import LOG, ActionState, Session

    ready = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "ready":
                ready.set()

    LOG.addHandler(Watch())
    latencies: list[float] = []
    for index in range(samples):
        done = threading.Event()
        final: list[Any] = []

        def callback(
            session_id: str,
            status: Any,
            final: list[Any] = final,
            done: threading.Event = done,
        ) -> None:
            if status.state != ActionState.RUNNING:
                final.append(status.state)
                done.set()

        ready.clear()
        with Session(
            session_id=f"cancel-{index}", job_parameter_values={}, callback=callback
        ) as session:
            session.run_task(step_script=script, task_parameter_values={})
            if not ready.wait(WAIT_SECONDS):
                raise RuntimeError("the task did not start")
            start = time.perf_counter()
            session.cancel_action()
            if not done.wait(WAIT_SECONDS):
                raise RuntimeError("the cancel did not end the task")
            latencies.append(time.perf_counter() - start)
            if final[-1] != ActionState.CANCELED:
                raise RuntimeError(f"cancel ended {final[-1]}")
    return latencies


def measure_cancel(runtime: str, samples: int) -> dict[str, Any]:
    """Scenario 8: `cancel_action()` (TERMINATE) to the action's result, the child ignoring TERM."""
    script = step_script(STUBBORN)
    latencies = (ours_cancel if runtime == OURS else reference_cancel)(samples, script)
    return {
        "wall": statistics.median(latencies),
        "extra": {"max": max(latencies), "samples": len(latencies)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("sessions", "cancel", "spawns"))
    parser.add_argument("--runtime", choices=(OURS, REFERENCE), default=OURS)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    if args.mode == "sessions":
        report = measure_sessions(args.runtime, args.sessions, args.tasks)
    elif args.mode == "spawns":
        report = measure_spawns(args.sessions, args.tasks)
    else:
        report = measure_cancel(args.runtime, args.samples)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
