"""Running a whole job with several sessions at once, on this host or on a Dask cluster.

Each worker owns one Session at a time. It enters the job's environments once, then runs task
after task from a shared queue, entering a step's environments when it starts working on that
step and exiting them (newest first) before it moves to another step or finishes. A step's
tasks become runnable once every step it depends on has succeeded.

    spec = JobRunSpec(job=job, steps=job_steps(job, step_symtabs), job_parameter_values=values)
    run = JobRun(spec, workers=8, on_line=print_line, on_status=show_status)
    result = await run.run()      # run.cancel() from a signal handler: once to stop, twice to kill

`ClusterJobRun` (in `cluster`) does the same on the workers of a Dask cluster.
"""

from __future__ import annotations

from ..cli.plan import StepRun
from .cluster import ClusterError, ClusterJobRun, run_job_on_cluster
from .local import JobRun, run_job
from .records import (
    ActionKind,
    ActionRef,
    Failure,
    JobRunResult,
    JobRunSpec,
    StepOutcome,
    StepReport,
    TaskRef,
    WorkerLine,
    WorkerReport,
    WorkerStatus,
    job_steps,
)

__all__ = [
    "ActionKind",
    "ActionRef",
    "ClusterError",
    "ClusterJobRun",
    "Failure",
    "JobRun",
    "JobRunResult",
    "JobRunSpec",
    "StepOutcome",
    "StepReport",
    "StepRun",
    "TaskRef",
    "WorkerLine",
    "WorkerReport",
    "WorkerStatus",
    "job_steps",
    "run_job",
    "run_job_on_cluster",
]
