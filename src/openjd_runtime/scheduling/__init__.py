"""Running a whole job with several sessions at once, on this host or on a Dask cluster.

Each worker owns one Session at a time. It enters the job's environments once, then runs task
after task from a shared queue, entering a step's environments when it starts working on that
step and exiting them (newest first) before it moves to another step or finishes. A step's
tasks become runnable once every step it depends on has succeeded.

    spec = JobRunSpec(job=job, steps=job_steps(job, step_symtabs), job_parameter_values=values)
    run = JobRun(spec, workers=8, on_event=show)   # RunEvent: lines, statuses, starts, ...
    result = await run.run()      # run.cancel() from a signal handler: once to stop, twice to kill

`ClusterJobRun` (in `cluster`) does the same on the workers of a Dask cluster.
"""

from __future__ import annotations

from ..jobs import JobRunSpec, StepRun, job_steps
from .cluster import ClusterError, ClusterJobRun, run_job_on_cluster
from .local import JobRun, run_job
from .records import (
    ActionEvent,
    ActionKind,
    ActionRef,
    ActionStarted,
    ChunkSizeChanged,
    Failure,
    FromWorker,
    JobRunResult,
    OnEvent,
    RunEvent,
    RunProgress,
    RunStarted,
    SessionStarted,
    StepOutcome,
    StepProgress,
    StepReport,
    TaskRef,
    WorkerOutput,
    WorkerReport,
    WorkerStatus,
)

__all__ = [
    "ActionEvent",
    "ActionKind",
    "ActionRef",
    "ActionStarted",
    "ChunkSizeChanged",
    "ClusterError",
    "ClusterJobRun",
    "Failure",
    "FromWorker",
    "JobRun",
    "JobRunResult",
    "JobRunSpec",
    "OnEvent",
    "RunEvent",
    "RunProgress",
    "RunStarted",
    "SessionStarted",
    "StepOutcome",
    "StepProgress",
    "StepReport",
    "StepRun",
    "TaskRef",
    "WorkerOutput",
    "WorkerReport",
    "WorkerStatus",
    "job_steps",
    "run_job",
    "run_job_on_cluster",
]
