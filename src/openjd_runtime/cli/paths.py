"""PATH and LIST[PATH] job parameter inputs, made absolute before the model checks them.

`openjd.model.preprocess_job_parameters` joins a relative PATH value with the working directory
but leaves `..` in it, and does not join LIST[PATH] elements at all. The specification (2.2,
2.12) wants every relative element joined (values with the working directory, defaults with the
template's directory) and lexically normalized, and defaults kept inside the template's
directory. Doing that here, on the input strings, leaves every other check to the model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(value: str) -> bool:
    """`scheme://...` (RFC 3986 scheme), which EXPR templates may use as a PATH value."""
    return _URI.match(value) is not None


def join_value(base: str, value: str, allow_uris: bool) -> str:
    """A submitted path: relative ones are joined with `base` and normalized."""
    if value == "" or (allow_uris and is_uri(value)) or os.path.isabs(value):
        return value
    return os.path.normpath(os.path.join(base, value))


def join_default(name: str, base: str, value: str, allow_uris: bool) -> str:
    """A template's default path: relative, and it must stay inside the template's directory."""
    if value == "" or (allow_uris and is_uri(value)):
        return value
    if os.path.isabs(value):
        raise ValueError(
            f"The default value of parameter {name} holds an absolute path ({value}). Default "
            "paths must be relative; they are joined to the job template's directory."
        )
    joined = os.path.normpath(os.path.join(base, value))
    if joined != base and not joined.startswith(base.rstrip(os.sep) + os.sep):
        raise ValueError(
            f"The default value of parameter {name} ({value}) is outside of the job template's "
            "directory. Walking up from the template directory is not permitted."
        )
    return joined


def _json_list(text: str) -> list[Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def resolve_path_inputs(
    definitions: Sequence[Any],
    values: Mapping[str, str],
    *,
    template_dir: str,
    cwd: str,
    allow_uris: bool,
) -> dict[str, str]:
    """`values` with PATH and LIST[PATH] inputs resolved; anything malformed is left as it is,
    for the model to report. Raises ValueError for a default that escapes the template dir."""
    resolved = dict(values)
    errors: list[str] = []
    for definition in definitions:
        name = definition.name
        kind = definition.type.value
        if kind == "PATH" and name in values:
            resolved[name] = join_value(cwd, values[name], allow_uris)
        elif kind == "LIST[PATH]" and name in values:
            items = _json_list(values[name])
            if items is not None:
                resolved[name] = json.dumps(
                    [join_value(cwd, i, allow_uris) if isinstance(i, str) else i for i in items]
                )
        elif kind == "LIST[PATH]" and isinstance(definition.default, list):
            try:
                resolved[name] = json.dumps(
                    [
                        join_default(name, template_dir, i, allow_uris) if isinstance(i, str) else i
                        for i in definition.default
                    ]
                )
            except ValueError as exc:
                errors.append(str(exc))
    if errors:
        raise ValueError("\n".join(errors))
    return resolved
