"""Reading what the user gives on the command line: templates, parameter values, rules.

Parsing is done by `openjd.model`; this module only finds the text, picks the decoder and turns
every failure into a `CliError` that names the file and the problem.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import yaml  # type: ignore[import-untyped]
from openjd.expr import PathMappingRule
from openjd.model import (
    DecodeValidationError,
    DocumentType,
    EnvironmentTemplate,
    JobTemplate,
    TemplateSpecificationVersion,
    decode_environment_template,
    decode_job_template,
    document_string_to_object,
)
from openjd.model.v2023_09 import ExtensionName

from .errors import EXIT_USAGE, CliError

MAX_INPUT_BYTES = 10 * 1024 * 1024
FILE_URI = "file://"
PATH_MAPPING_VERSION = "pathmapping-1.0"


def parse_extensions(text: str | None) -> list[str]:
    """`None` means every known extension; `""` means none."""
    known = [e.value for e in ExtensionName]
    if text is None:
        return known
    names = [name.strip().upper() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CliError(
            f"Unknown extension(s) {', '.join(unknown)} in --extensions; known: {', '.join(known)}",
            EXIT_USAGE,
        )
    return names


def read_text(path: Path) -> str:
    if not path.exists():
        raise CliError(f"'{path}' does not exist.")
    if not path.is_file():
        raise CliError(f"'{path}' is not a file.")
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise CliError(f"'{path}' is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB.")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"Cannot read '{path}': {exc}") from exc


def document_type_for(path: Path) -> DocumentType:
    return DocumentType.JSON if path.suffix.lower() == ".json" else DocumentType.YAML


def _syntax_detail(exc: BaseException) -> str:
    """Where the JSON or YAML parser stopped, from the error `openjd.model` wrapped."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, json.JSONDecodeError):
        return f" ({cause.msg} at line {cause.lineno}, column {cause.colno})"
    if isinstance(cause, yaml.MarkedYAMLError) and cause.problem_mark is not None:
        mark = cause.problem_mark
        problem = cause.problem or "syntax error"
        return f" ({problem} at line {mark.line + 1}, column {mark.column + 1})"
    return ""


def parse_document(text: str, document_type: DocumentType, source: str) -> dict[str, Any]:
    try:
        return document_string_to_object(document=text, document_type=document_type)
    except DecodeValidationError as exc:
        raise CliError(f"{source}: {exc}{_syntax_detail(exc)}") from exc


def load_document(path: Path) -> dict[str, Any]:
    return parse_document(read_text(path), document_type_for(path), f"'{path}'")


def _specification_version(document: Mapping[str, Any], path: Path) -> TemplateSpecificationVersion:
    if "specificationVersion" not in document:
        raise CliError(f"'{path}' failed checks: Missing field 'specificationVersion'")
    value = document["specificationVersion"]
    try:
        return TemplateSpecificationVersion(value)
    except ValueError:
        raise CliError(
            f"'{path}' failed checks: Unknown template 'specificationVersion' ({value})."
        ) from None


def load_template(
    path: Path, extensions: Iterable[str], expect_job: bool | None = None
) -> JobTemplate | EnvironmentTemplate:
    """A job or environment template, whichever its `specificationVersion` names."""
    document = load_document(path)
    version = _specification_version(document, path)
    is_job = TemplateSpecificationVersion.is_job_template(version)
    if expect_job is not None and is_job != expect_job:
        found, wanted = ("a job", "an environment") if is_job else ("an environment", "a job")
        raise CliError(f"'{path}' is {found} template, not {wanted} template.")
    try:
        if is_job:
            return decode_job_template(template=document, supported_extensions=list(extensions))
        return decode_environment_template(template=document, supported_extensions=list(extensions))
    except (DecodeValidationError, NotImplementedError) as exc:
        raise CliError(f"'{path}' failed checks: {exc}") from exc


def load_job_template(path: Path, extensions: Iterable[str]) -> JobTemplate:
    return cast(JobTemplate, load_template(path, extensions, expect_job=True))


def load_environment_template(path: Path, extensions: Iterable[str]) -> EnvironmentTemplate:
    return cast(EnvironmentTemplate, load_template(path, extensions, expect_job=False))


def _as_text(value: Any) -> str:
    """Values from JSON/YAML documents: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _file_uri_path(text: str, cwd: Path) -> Path:
    return cwd / text[len(FILE_URI) :]


def parse_job_param(text: str, load: Callable[[Path], dict[str, Any]], cwd: Path) -> dict[str, str]:
    """One `-p` argument: `KEY=VALUE`, `file://PATH` (JSON or YAML), or an inline JSON object."""
    if text.startswith(FILE_URI):
        path = _file_uri_path(text, cwd)
        return {str(k): _as_text(v) for k, v in load(path).items()}
    if text.lstrip().startswith("{"):
        values = parse_document(text, DocumentType.JSON, "Job parameters")
        return {str(k): _as_text(v) for k, v in values.items()}
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise CliError(
            f"Job parameter '{text}' must be KEY=VALUE, file://PATH or a JSON object.", EXIT_USAGE
        )
    return {name: value}


def parse_job_params(
    items: Sequence[str], load: Callable[[Path], dict[str, Any]], cwd: Path
) -> dict[str, str]:
    """Every `-p` argument, merged in order: a later value for a name replaces an earlier one."""
    merged: dict[str, str] = {}
    for item in items:
        merged.update(parse_job_param(item, load, cwd))
    return merged


def parse_path_mapping_rules(document: Mapping[str, Any]) -> list[PathMappingRule]:
    version = document.get("version")
    if version != PATH_MAPPING_VERSION:
        raise CliError(
            f"Path mapping rules: 'version' must be '{PATH_MAPPING_VERSION}', not {version!r}."
        )
    rules = document.get("path_mapping_rules")
    if not isinstance(rules, list):
        raise CliError("Path mapping rules: 'path_mapping_rules' must be a list.")
    parsed: list[PathMappingRule] = []
    for index, rule in enumerate(rules):
        try:
            parsed.append(PathMappingRule.from_dict(rule))
        except (TypeError, ValueError) as exc:
            raise CliError(f"Path mapping rule {index}: {exc}") from exc
    return parsed


def load_path_mapping_rules(
    text: str, load: Callable[[Path], dict[str, Any]], cwd: Path
) -> list[PathMappingRule]:
    """`--path-mapping-rules`: inline JSON or `file://PATH`."""
    if text.startswith(FILE_URI):
        document = load(_file_uri_path(text, cwd))
    else:
        document = parse_document(text, DocumentType.JSON, "Path mapping rules")
    return parse_path_mapping_rules(document)


def parse_any_document(text: str, document_type: DocumentType, source: str) -> Any:
    """A JSON or YAML document whose top level may be anything (`--tasks` is a list)."""
    try:
        if document_type is DocumentType.JSON:
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{source} is not valid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CliError(f"{source} is not valid YAML: {' '.join(str(exc).split())}") from exc
