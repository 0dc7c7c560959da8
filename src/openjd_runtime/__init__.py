"""openjd_runtime: an asyncio-native runtime for Open Job Description jobs."""

from __future__ import annotations

__version__ = "0.1.0"
