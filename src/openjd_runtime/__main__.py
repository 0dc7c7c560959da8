"""`python -m openjd_runtime` runs the `ojd` command line."""

from __future__ import annotations

from openjd_runtime.cli import entry_point

entry_point()
