"""What a job run is made of: the steps to run, their tasks drawn lazily, and what every session
of the run needs. Pure logic, no I/O; the `ojd` command and `openjd_runtime.scheduling` share it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from openjd.expr import PathMappingRule, SerializedSymbolTable
from openjd.model import (
    IntRangeExpr,
    ParameterValue,
    RevisionExtensions,
    StepDependencyGraph,
    StepParameterSpaceIterator,
    TaskParameterSet,
)
from openjd.model.v2023_09 import Environment, Job, Step


@dataclass(frozen=True)
class StepRun:
    """A step to run, with its symbol table and, when given, the only tasks to run."""

    step: Step
    symtab: SerializedSymbolTable | None
    explicit_tasks: Sequence[TaskParameterSet] | None = None


@dataclass(frozen=True, kw_only=True)
class JobRunSpec:
    """A job and everything its sessions need; on a cluster, this is sent to every worker."""

    job: Job
    steps: Sequence[StepRun]
    """The steps to run, each listed after the steps it depends on. A dependency that is not
    listed is taken as met. Build it with `job_steps` to run the whole job."""
    job_parameter_values: Mapping[str, ParameterValue] = field(default_factory=dict)
    external_environments: Sequence[Environment] = ()
    """Entered before the job environments in every session (`ojd run --env`)."""
    maximum_tasks: int = -1
    """At most this many tasks (chunks) of each step; zero or less means all of them."""
    path_mapping_rules: Sequence[PathMappingRule] = ()
    revision_extensions: RevisionExtensions | None = None
    retain_working_dirs: bool = False
    session_root_directory: Path | None = None
    os_env_vars: Mapping[str, str | None] = field(default_factory=dict)


def job_steps(
    job: Job, step_symtabs: Mapping[str, SerializedSymbolTable] | None = None
) -> list[StepRun]:
    """Every step of the job in dependency order, with its symbol table when one is given
    (`create_job_with_symbol_tables(...).step_symbol_tables`)."""
    symtabs = step_symtabs or {}
    ordered = StepDependencyGraph(job=job).topo_sorted()
    return [StepRun(step=step, symtab=symtabs.get(step.name)) for step in ordered]


@dataclass
class AdaptiveChunkSize:
    """Grows or shrinks chunks towards `target_seconds`, from the run time of the chunks so far.

    While fewer than 10 tasks have run, growth is damped (a quarter of the way to the ideal
    size), so one fast first chunk does not make the next one huge.
    """

    target_seconds: float
    size: int
    tasks: int = 0
    seconds: float = 0.0

    def record(self, tasks: int, seconds: float) -> int | None:
        """The new chunk size when it changes, else None."""
        if tasks <= 0 or not math.isfinite(seconds) or seconds <= 0:
            return None
        self.tasks += tasks
        self.seconds += seconds
        ideal = self.target_seconds / (self.seconds / self.tasks)
        if self.tasks < 10 and ideal > self.size:
            ideal = 0.75 * self.size + 0.25 * ideal
        size = max(1, math.floor(ideal))
        if size == self.size:
            return None
        self.size = size
        return size


class TaskQueue:
    """The tasks (chunks) of one step, drawn lazily from the parameter space."""

    def __init__(
        self,
        step: Step,
        explicit: Sequence[TaskParameterSet] | None,
        maximum_tasks: int,
    ) -> None:
        self._iterator: StepParameterSpaceIterator | None = None
        self._chunker: AdaptiveChunkSize | None = None
        self._chunk_name: str | None = None
        self.total: int | None
        if explicit is not None:
            self._source: Iterator[TaskParameterSet] = iter(explicit)
            self.total = len(explicit)
            return
        iterator = StepParameterSpaceIterator(space=step.parameterSpace)
        self._iterator = iterator
        self.total = None if iterator.chunks_adaptive else len(iterator)
        self._source = iterator
        if maximum_tasks > 0:
            self._source = islice(iterator, maximum_tasks)
            if self.total is not None:
                self.total = min(self.total, maximum_tasks)
        name = iterator.chunks_parameter_name
        if iterator.chunks_adaptive and name is not None and step.parameterSpace is not None:
            chunks = step.parameterSpace.taskParameterDefinitions[name].chunks
            size = iterator.chunks_default_task_count
            if chunks is not None and size is not None:
                self._chunk_name = name
                self._chunker = AdaptiveChunkSize(
                    target_seconds=float(int(chunks.targetRuntimeSeconds or 0)), size=size
                )

    def __iter__(self) -> Iterator[TaskParameterSet]:
        return self._source

    def task_done(self, task: TaskParameterSet, seconds: float) -> int | None:
        """Feeds a finished chunk's run time to adaptive chunking; the new size if it changed."""
        if self._chunker is None or self._iterator is None or self._chunk_name is None:
            return None
        frames = len(IntRangeExpr.from_str(str(task[self._chunk_name].value)))
        size = self._chunker.record(frames, seconds)
        if size is not None:
            self._iterator.chunks_default_task_count = size
        return size
