"""The error the commands raise for bad input, so `main` reports it without a traceback."""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """Bad input from the user: reported as one `ERROR:` message on stderr."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def format_error(message: str) -> str:
    """`ERROR: <first line>`, with any further lines indented under it."""
    first, *rest = message.strip().splitlines() or [""]
    more = (f"    {line.rstrip().expandtabs(4)}" for line in rest if line.strip())
    return "\n".join([f"ERROR: {first}", *more])
