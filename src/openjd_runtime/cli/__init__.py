"""The `ojd` command line: `check`, `summary` and `run` for Open Job Description templates.

Only the argument parser is imported up front; each command imports the model (and the run
loop) when it runs, so `ojd --version` and usage errors stay fast.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from .errors import EXIT_FAILURE, CliError, format_error
from .parser import build_parser


def _tolerate_unencodable_output() -> None:
    """A job's output may hold text the terminal's encoding cannot show; never crash on it."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one `ojd` command and returns its exit code."""
    parser, run_parser = build_parser()
    args = parser.parse_args(argv)
    _tolerate_unencodable_output()
    try:
        with _loading_model():
            from . import commands

        if args.command == "check":
            return commands.check(args)
        if args.command == "summary":
            return commands.summary(args)
        if args.help:
            return commands.run_help(args, run_parser)
        if args.path is None:
            run_parser.error("the following arguments are required: PATH")
        return commands.run(args)
    except CliError as exc:
        sys.stderr.write(format_error(exc.message) + "\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(format_error("Interrupted.") + "\n")
        return EXIT_FAILURE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILURE


def entry_point() -> NoReturn:
    """The `ojd` program. Once its output is flushed it ends at once: tearing down the template
    model's objects one by one would add a tenth to a short command's run."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or EXIT_FAILURE
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(code)


@contextlib.contextmanager
def _loading_model() -> Iterator[None]:
    """The commands import the template model: objects that live until the process ends, so the
    cycle collector stays off while they are made and leaves them alone after."""
    first = f"{__name__}.commands" not in sys.modules and gc.isenabled()
    if first:
        gc.disable()
    try:
        yield
    finally:
        if first:
            gc.freeze()
            gc.enable()


def _silence_stdout() -> None:
    """The reader of stdout went away; keep the interpreter's final flush from failing too."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
