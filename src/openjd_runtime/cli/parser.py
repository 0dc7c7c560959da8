"""The `ojd` argument parser. It imports nothing heavy, so `ojd --version` starts fast."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from .. import __version__
from .errors import EXIT_USAGE, format_error

TIMESTAMP_FORMATS = ("relative", "local", "utc")
OUTPUT_FORMATS = ("human-readable", "json", "yaml")


class Parser(argparse.ArgumentParser):
    """Reports usage errors as one `ERROR:` line (exit 2) instead of argparse's usage dump."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(format_error(f"{message} (see '{self.prog} --help')") + "\n")
        sys.exit(EXIT_USAGE)


def _worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return count


def _add_extensions(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--extensions",
        metavar="A,B",
        help="comma-separated extensions to accept when validating; '' accepts none "
        "(default: every extension this runtime supports)",
    )


def _add_job_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p",
        "--job-param",
        "--parameter",
        dest="job_params",
        action="append",
        default=[],
        metavar="KEY=VALUE|file://PATH|JSON",
        help="a job parameter value, a JSON/YAML file of them, or an inline JSON object; "
        "repeatable, later values win",
    )


def _add_environments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        "--environment",
        dest="environments",
        action="append",
        default=[],
        metavar="FILE",
        help="an environment template to enter before the job's own environments; repeatable",
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        choices=OUTPUT_FORMATS,
        default="human-readable",
        help="how to print the result (default: human-readable)",
    )


def build_parser() -> tuple[Parser, Parser]:
    """The top-level parser and the `run` parser (whose help can be extended by a template)."""
    parser = Parser(
        prog="ojd",
        description="Check, summarize and run Open Job Description templates.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"ojd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check",
        help="validate a job or environment template",
        description="Validate a job or environment template, chosen by its specificationVersion.",
        allow_abbrev=False,
    )
    check.add_argument("path", metavar="PATH", help="the template (.json is JSON, else YAML)")
    _add_extensions(check)

    summary = commands.add_parser(
        "summary",
        help="describe a job without running it",
        description="Print a job's parameters, steps, dependencies, environments and task counts.",
        allow_abbrev=False,
    )
    summary.add_argument("path", metavar="PATH", help="the job template")
    _add_job_params(summary)
    summary.add_argument("--step", metavar="NAME", help="describe only this step")
    _add_environments(summary)
    _add_extensions(summary)
    _add_output(summary)

    run = commands.add_parser(
        "run",
        help="run a job (or some of its steps and tasks) on this host",
        description="Run a job's steps and tasks in one local session, in several at once "
        "(--workers), or on a Dask cluster (--cluster). With PATH, --help also lists the "
        "template's parameters.",
        add_help=False,
        allow_abbrev=False,
    )
    run.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    run.add_argument("path", metavar="PATH", nargs="?", help="the job template")
    _add_job_params(run)
    run.add_argument("--step", metavar="NAME", help="run only this step")
    run.add_argument(
        "--run-dependencies",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="with --step, first run the steps it depends on (default: off)",
    )
    tasks = run.add_mutually_exclusive_group()
    tasks.add_argument(
        "-tp",
        "-t",
        "--task-param",
        dest="task_params",
        action="append",
        metavar="NAME=VALUE",
        help="run one task with these task parameter values; repeatable",
    )
    tasks.add_argument(
        "--tasks",
        metavar="JSON|file://PATH",
        help="run these tasks: a list of {name: value} objects, inline or in a JSON/YAML file",
    )
    tasks.add_argument(
        "--maximum-tasks",
        type=int,
        default=-1,
        metavar="N",
        help="run at most N tasks (chunks) of each step; 0 or less means all (default: -1)",
    )
    _add_environments(run)
    run.add_argument(
        "--workers",
        type=_worker_count,
        metavar="N",
        help="run N sessions at once, each entering the environments once and then taking "
        "task after task; lines then say which worker and task they belong to (default: 1, "
        "or one per worker thread of the --cluster)",
    )
    run.add_argument(
        "--cluster",
        metavar="tcp://HOST:PORT",
        help="run the sessions on the workers of the Dask cluster whose scheduler is at this "
        "address (needs openjd-runtime[dask])",
    )
    run.add_argument(
        "--keep-going",
        action="store_true",
        help="after a failure, still run every task that does not depend on it "
        "(default: stop at the first failure)",
    )
    run.add_argument(
        "--path-mapping-rules",
        metavar="JSON|file://PATH",
        help='path mapping rules: {"version": "pathmapping-1.0", "path_mapping_rules": [...]}',
    )
    run.add_argument(
        "--preserve",
        action="store_true",
        help="keep the session's working directory after the run",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="also print the session's own log (commands, files, exit codes)",
    )
    run.add_argument(
        "--timestamp-format",
        choices=TIMESTAMP_FORMATS,
        default="relative",
        help="how each line's timestamp is shown (default: relative)",
    )
    _add_output(run)
    _add_extensions(run)
    return parser, run
