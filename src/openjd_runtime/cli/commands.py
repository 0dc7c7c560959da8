"""The `check`, `summary` and `run` commands: read the inputs, build the job, hand it on."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openjd.expr import SerializedSymbolTable
from openjd.model import (
    CompatibilityError,
    DecodeValidationError,
    DocumentType,
    EnvironmentTemplate,
    JobParameterValues,
    JobTemplate,
    RevisionExtensions,
    create_job_with_symbol_tables,
    merge_job_parameter_definitions,
    preprocess_job_parameters,
)
from openjd.model.v2023_09 import Job

from ..jobs import JobRunSpec, StepRun
from .console import Console
from .describe import job_summary, summary_text, template_help
from .errors import EXIT_USAGE, CliError
from .inputs import (
    FILE_URI,
    document_type_for,
    load_document,
    load_environment_template,
    load_job_template,
    load_path_mapping_rules,
    load_template,
    parse_any_document,
    parse_extensions,
    parse_job_params,
    read_text,
)
from .output import dump_document, result_block, result_document
from .paths import resolve_path_inputs
from .plan import (
    RunPlan,
    check_wrap_stack,
    explicit_tasks,
    parse_task_param_args,
    select_steps,
    tasks_from_document,
)


@dataclass(frozen=True)
class JobInputs:
    path: Path
    template: JobTemplate
    environment_templates: list[EnvironmentTemplate]
    parameter_values: JobParameterValues
    job: Job
    step_symbols: dict[str, SerializedSymbolTable]


def check(args: argparse.Namespace) -> int:
    path = Path(args.path)
    load_template(path, parse_extensions(args.extensions))
    print(f"Template at '{path}' passes validation checks.")
    return 0


def load_job(
    path_text: str,
    job_params: Sequence[str],
    environment_paths: Sequence[str],
    extensions_text: str | None,
) -> JobInputs:
    """Template, environment templates and parameter values, made into a job by the model."""
    extensions = parse_extensions(extensions_text)
    path = Path(path_text)
    template = load_job_template(path, extensions)
    environments = [load_environment_template(Path(p), extensions) for p in environment_paths]
    cwd = Path.cwd()
    template_dir = Path(os.path.abspath(path)).parent
    raw_values = parse_job_params(job_params, load_document, cwd)
    try:
        with contextlib.suppress(CompatibilityError):
            raw_values = resolve_path_inputs(
                merge_job_parameter_definitions(
                    job_template=template, environment_templates=environments or None
                ),
                raw_values,
                template_dir=str(template_dir),
                cwd=str(cwd),
                allow_uris="EXPR" in (template.extensions or []),
            )
        values = preprocess_job_parameters(
            job_template=template,
            job_parameter_values=raw_values,
            job_template_dir=template_dir,
            current_working_dir=cwd,
            environment_templates=environments or None,
        )
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise CliError(
            f"Invalid job parameters for '{path}':\n{exc}\n"
            f"(see 'ojd run {path} --help' for the job's parameters)"
        ) from exc
    try:
        created = create_job_with_symbol_tables(
            job_template=template,
            job_parameter_values=values,
            environment_templates=environments or None,
        )
    except (DecodeValidationError, ValueError, TypeError) as exc:
        raise CliError(f"Cannot create a job from '{path}': {exc}") from exc
    return JobInputs(
        path=path,
        template=template,
        environment_templates=environments,
        parameter_values=values,
        job=created.job,
        step_symbols=dict(created.step_symbol_tables),
    )


def summary(args: argparse.Namespace) -> int:
    inputs = load_job(args.path, args.job_params, args.environments, args.extensions)
    steps = select_steps(inputs.job, args.step, run_dependencies=False)
    data = job_summary(
        inputs.job,
        inputs.parameter_values,
        [t.environment for t in inputs.environment_templates],
        steps,
    )
    if args.output == "human-readable":
        sys.stdout.write(summary_text(data))
    else:
        sys.stdout.write(dump_document(data, args.output))
    return 0


def run_help(args: argparse.Namespace, run_parser: argparse.ArgumentParser) -> int:
    """`ojd run [PATH] --help`: the options, then what the template at PATH takes."""
    text = run_parser.format_help()
    if args.path is not None:
        extensions = parse_extensions(args.extensions)
        template = load_job_template(Path(args.path), extensions)
        environments = [load_environment_template(Path(p), extensions) for p in args.environments]
        try:
            definitions = merge_job_parameter_definitions(
                job_template=template, environment_templates=environments or None
            )
        except CompatibilityError as exc:
            raise CliError(f"Incompatible parameter definitions: {exc}") from exc
        owners: list[JobTemplate | EnvironmentTemplate] = [*environments, template]
        descriptions = {
            str(p.name): str(p.description)
            for owner in owners
            for p in owner.parameterDefinitions or []
            if p.description
        }
        text += template_help(template, args.path, definitions, descriptions)
    sys.stdout.write(text)
    return 0


def _raw_tasks(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    if args.task_params:
        return [parse_task_param_args(args.task_params)]
    if args.tasks is None:
        return None
    text: str = args.tasks
    if text.startswith(FILE_URI):
        path = Path.cwd() / text[len(FILE_URI) :]
        document = parse_any_document(read_text(path), document_type_for(path), f"'{path}'")
    else:
        document = parse_any_document(text, DocumentType.JSON, "--tasks")
    return tasks_from_document(document)


def _plan(args: argparse.Namespace) -> RunPlan:
    inputs = load_job(args.path, args.job_params, args.environments, args.extensions)
    job = inputs.job
    single = job.steps[0].name if len(job.steps) == 1 else None
    selected = args.step or single
    steps = select_steps(job, args.step, args.run_dependencies)
    raw_tasks = _raw_tasks(args)
    if raw_tasks is not None and selected is None:
        raise CliError(
            "--task-param and --tasks need --step NAME when the job has more than one step.",
            EXIT_USAGE,
        )
    external = [t.environment for t in inputs.environment_templates]
    for step in steps:
        check_wrap_stack([*external, *(job.jobEnvironments or []), *(step.stepEnvironments or [])])
    step_runs = [
        StepRun(
            step=step,
            symtab=inputs.step_symbols.get(step.name),
            explicit_tasks=(
                explicit_tasks(step, raw_tasks)
                if raw_tasks is not None and step.name == selected
                else None
            ),
        )
        for step in steps
    ]
    rules = (
        load_path_mapping_rules(args.path_mapping_rules, load_document, Path.cwd())
        if args.path_mapping_rules is not None
        else []
    )
    declared = set(inputs.template.extensions or [])
    for environment_template in inputs.environment_templates:
        declared.update(environment_template.extensions or [])
    spec = JobRunSpec(
        job=job,
        steps=step_runs,
        job_parameter_values=inputs.parameter_values,
        external_environments=external,
        maximum_tasks=args.maximum_tasks,
        path_mapping_rules=rules,
        revision_extensions=RevisionExtensions(
            spec_rev=inputs.template.revision, supported_extensions=sorted(declared)
        ),
        retain_working_dirs=args.preserve,
    )
    return RunPlan(
        spec=spec,
        selected_step=args.step,
        verbose=args.verbose,
        workers=args.workers if args.cluster is not None else args.workers or 1,
        cluster=args.cluster,
        keep_going=args.keep_going,
    )


def run(args: argparse.Namespace) -> int:
    from .run import run_plan

    plan = _plan(args)
    document = args.output != "human-readable"
    stream = sys.stderr if document else sys.stdout
    console = Console(stream, args.timestamp_format, live=stream.isatty())
    try:
        report = run_plan(plan, console)
    finally:
        console.finish()
    if document:
        sys.stdout.write(result_document(report, args.output))
    else:
        console.plain(result_block(report))
    sys.stdout.flush()
    return 0 if report.success else 1
