"""Jobs for the scheduling tests, built by openjd.model from YAML, and what their processes left.

Every action is a small Python program that records what it did as files in a marks directory
(named by the MARKS variable), so tests check real processes rather than the runtime's word.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from openjd.model import (
    DocumentType,
    create_job_with_symbol_tables,
    decode_job_template,
    document_string_to_object,
    preprocess_job_parameters,
)

from openjd_runtime.scheduling import (
    ActionRef,
    JobRunSpec,
    OnEvent,
    RunEvent,
    WorkerOutput,
    job_steps,
)

PRELUDE = """\
import os, signal, subprocess, sys, time
MARKS = os.environ["MARKS"]
def path(name):
    return os.path.join(MARKS, name)
def mark(name, text=""):
    with open(path(name) + ".tmp", "w") as f:
        f.write(str(text))
    os.rename(path(name) + ".tmp", path(name))
def wait_for(name, seconds=30):
    end = time.time() + seconds
    while not os.path.exists(path(name)):
        if time.time() > end:
            sys.exit(3)
        time.sleep(0.02)
def log(text):
    with open(path("log"), "a") as f:
        f.write(text + "\\n")
def count(prefix):
    return len([n for n in os.listdir(MARKS) if n.startswith(prefix) and not n.endswith(".tmp")])
def keep_child(name):
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    mark(name, child.pid)
"""


def py(code: str, *args: str, **extra: Any) -> dict[str, Any]:
    """An action running `code` (after PRELUDE) with this interpreter; `args` are format strings."""
    return {
        "command": sys.executable,
        "args": ["-c", PRELUDE + textwrap.dedent(code), *args],
        **extra,
    }


def spec(
    template: str | Mapping[str, Any],
    marks: Path,
    actions: Mapping[str, Any] | None = None,
    **options: Any,
) -> JobRunSpec:
    """A run spec of the job template body, YAML or already decoded (version and name are added);
    a scalar `$NAME` in it becomes `actions[NAME]`."""
    table = dict(actions or {})

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(value) for value in node]
        if isinstance(node, str) and node.startswith("$") and node[1:] in table:
            return table[node[1:]]
        return node

    body = (
        document_string_to_object(
            document=textwrap.dedent(template), document_type=DocumentType.YAML
        )
        if isinstance(template, str)
        else dict(template)
    )
    document = {"specificationVersion": "jobtemplate-2023-09", "name": "Job", **fill(body)}
    job_template = decode_job_template(template=document, supported_extensions=["TASK_CHUNKING"])
    values = preprocess_job_parameters(
        job_template=job_template,
        job_parameter_values={},
        job_template_dir=Path.cwd(),
        current_working_dir=Path.cwd(),
    )
    created = create_job_with_symbol_tables(job_template=job_template, job_parameter_values=values)
    return JobRunSpec(
        job=created.job,
        steps=job_steps(created.job, created.step_symbol_tables),
        job_parameter_values=values,
        os_env_vars={"MARKS": str(marks)},
        **options,
    )


TASK_START = """
step, f = sys.argv[1], sys.argv[2]
me = step + "-" + f
STUBBORN = False
def on_term(*_):
    mark("term-" + me)
    if not STUBBORN:
        sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
mark("start-" + me, repr(time.time()))
mark("pid-task-" + me, os.getpid())
keep_child("pid-child-" + me)
"""


def task(step: str, body: str = "") -> dict[str, Any]:
    """A task that marks its start (with its pid and a child's pid), runs `body`, marks its end.

    In `body`, `f` holds the task's frame and `me` its `STEP-F` name. SIGTERM leaves a `term-`
    mark and ends the task, unless `body` sets STUBBORN."""
    code = TASK_START + textwrap.dedent(body) + '\nmark("end-" + me, repr(time.time()))\n'
    return py(code, step, "{{Task.Param.F}}")


WAIT_FOR_CANCEL = """
time.sleep(60)
"""

NOTIFY = {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 20}


def environment(name: str) -> dict[str, Any]:
    """An environment whose onEnter and onExit each leave a mark named after it and its pid."""
    return {
        "name": name,
        "script": {
            "actions": {
                "onEnter": py(f'mark("enter-{name}-" + str(os.getpid()))'),
                "onExit": py(f'mark("exit-{name}-" + str(os.getpid()))'),
            }
        },
    }


def chunked_step(name: str, frames: str, chunks: Mapping[str, Any], run: Any) -> dict[str, Any]:
    """A step of one CHUNK[INT] parameter F over `frames`, chunked as `chunks` says."""
    definition = {"name": "F", "type": "CHUNK[INT]", "range": frames, "chunks": dict(chunks)}
    return {
        "name": name,
        "parameterSpace": {"taskParameterDefinitions": [definition]},
        "script": {"actions": {"onRun": run}},
    }


@contextlib.contextmanager
def local_cluster() -> Iterator[Any]:
    """A Dask LocalCluster of two one-thread worker processes, on the loopback only."""
    from distributed import LocalCluster

    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster


def frames(count: int) -> dict[str, Any]:
    return {"taskParameterDefinitions": [{"name": "F", "type": "INT", "range": f"1-{count}"}]}


def step(
    name: str,
    count: int,
    run: dict[str, Any],
    *,
    depends_on: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "parameterSpace": frames(count),
        "script": {"actions": {"onRun": run}},
        **extra,
    }
    if depends_on:
        body["dependencies"] = [{"dependsOn": other} for other in depends_on]
    return body


def job(marks: Marks, *steps: dict[str, Any], env: bool = True, **options: Any) -> JobRunSpec:
    body: dict[str, Any] = {"steps": list(steps)}
    if env:
        body["jobEnvironments"] = [environment("Job")]
    return spec(body, marks.directory, **options)


def barrier(prefix: str, count: int) -> str:
    """Task code that waits until `count` tasks named `prefix...` have started."""
    return f"""
wait_until = time.time() + 30
while count("start-{prefix}") < {count} and time.time() < wait_until:
    time.sleep(0.02)
"""


class Marks:
    """The files the actions wrote."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def names(self, prefix: str) -> list[str]:
        return sorted(
            p.name
            for p in self.directory.iterdir()
            if p.name.startswith(prefix) and not p.name.endswith(".tmp")
        )

    def count(self, prefix: str) -> int:
        return len(self.names(prefix))

    def value(self, name: str) -> str:
        return (self.directory / name).read_text()

    def number(self, name: str) -> float:
        return float(self.value(name))

    def log(self) -> list[str]:
        return (self.directory / "log").read_text().splitlines()

    def pids(self) -> list[int]:
        return [int(self.value(name)) for name in self.names("pid-")]

    def living(self) -> list[int]:
        """Recorded processes still running; a zombie waiting for its reaper counts as gone."""
        return [pid for pid in self.pids() if _alive(pid)]

    def kill_leftovers(self) -> None:
        for pid in self.living():
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.02)


@dataclass(frozen=True)
class Line:
    worker: int
    action: ActionRef
    text: str


def lines_of(events: Iterable[RunEvent]) -> list[Line]:
    """Every output line of the events, with the worker and action that printed it."""
    return [
        Line(event.worker, event.action, text)
        for event in events
        if isinstance(event, WorkerOutput)
        for text in event.lines
    ]


def counting_lines(prefix: str, wanted: int) -> tuple[OnEvent, asyncio.Event]:
    """An `on_event` callback, and an event set once `wanted` lines starting with `prefix` came."""
    seen = asyncio.Event()
    count = 0

    def on_event(event: RunEvent) -> None:
        nonlocal count
        count += sum(1 for line in lines_of([event]) if line.text.startswith(prefix))
        if count >= wanted:
            seen.set()

    return on_event, seen
