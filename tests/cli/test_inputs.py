"""Parsing of command-line inputs: extensions, `-p` values, path mapping rules, error text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openjd.model import DocumentType

from openjd_runtime.cli.errors import CliError, format_error
from openjd_runtime.cli.inputs import (
    load_path_mapping_rules,
    parse_any_document,
    parse_extensions,
    parse_job_param,
    parse_job_params,
    parse_path_mapping_rules,
)

ALL = ["TASK_CHUNKING", "REDACTED_ENV_VARS", "FEATURE_BUNDLE_1", "EXPR", "WRAP_ACTIONS"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ALL),
        ("", []),
        ("expr", ["EXPR"]),
        (" task_chunking , EXPR ", ["TASK_CHUNKING", "EXPR"]),
        ("EXPR,,", ["EXPR"]),
    ],
)
def test_parse_extensions(text: str | None, expected: list[str]) -> None:
    assert parse_extensions(text) == expected


def test_unknown_extension_is_a_usage_error() -> None:
    with pytest.raises(CliError) as caught:
        parse_extensions("EXPR,NOPE")
    assert caught.value.exit_code == 2
    assert "NOPE" in caught.value.message


def _no_files(path: Path) -> dict[str, Any]:
    raise AssertionError(f"unexpected read of {path}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1", {"A": "1"}),
        ("A=x=y", {"A": "x=y"}),
        ("A=", {"A": ""}),
        ('{"A": "s", "B": 2, "C": 1.5, "D": true, "E": [1, "x"]}', None),
        (' {"A": "1"}', {"A": "1"}),
    ],
)
def test_parse_job_param_forms(text: str, expected: dict[str, str] | None) -> None:
    parsed = parse_job_param(text, _no_files, Path("/cwd"))
    if expected is None:
        expected = {"A": "s", "B": "2", "C": "1.5", "D": "true", "E": '[1, "x"]'}
    assert parsed == expected


def test_parse_job_param_file_uri_is_relative_to_cwd() -> None:
    seen: list[Path] = []

    def load(path: Path) -> dict[str, Any]:
        seen.append(path)
        return {"A": 3, "B": "b"}

    assert parse_job_param("file://params.yaml", load, Path("/work")) == {"A": "3", "B": "b"}
    assert parse_job_param("file:///abs/p.json", load, Path("/work")) == {"A": "3", "B": "b"}
    assert seen == [Path("/work/params.yaml"), Path("/abs/p.json")]


@pytest.mark.parametrize("text", ["A", "=1", "", "{not json"])
def test_parse_job_param_rejects(text: str) -> None:
    with pytest.raises(CliError):
        parse_job_param(text, _no_files, Path("/cwd"))


def test_job_params_merge_in_order() -> None:
    merged = parse_job_params(
        ["A=1", '{"A": "2", "B": "x"}', "B=y", "C=z"], _no_files, Path("/cwd")
    )
    assert merged == {"A": "2", "B": "y", "C": "z"}


RULE = {"source_path_format": "POSIX", "source_path": "/mnt", "destination_path": "/local"}


def test_path_mapping_rules_parse() -> None:
    rules = parse_path_mapping_rules({"version": "pathmapping-1.0", "path_mapping_rules": [RULE]})
    assert [r.to_dict() for r in rules] == [RULE]


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"path_mapping_rules": []}, "'version'"),
        ({"version": "pathmapping-2.0", "path_mapping_rules": []}, "'version'"),
        ({"version": "pathmapping-1.0"}, "must be a list"),
        ({"version": "pathmapping-1.0", "path_mapping_rules": {}}, "must be a list"),
        ({"version": "pathmapping-1.0", "path_mapping_rules": [5]}, "rule 0"),
        (
            {"version": "pathmapping-1.0", "path_mapping_rules": [RULE, {**RULE, "x": 1}]},
            "rule 1",
        ),
        (
            {
                "version": "pathmapping-1.0",
                "path_mapping_rules": [{**RULE, "source_path_format": "MAC"}],
            },
            "rule 0",
        ),
    ],
)
def test_path_mapping_rules_reject(document: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CliError) as caught:
        parse_path_mapping_rules(document)
    assert fragment in caught.value.message


def test_path_mapping_rules_inline_or_file() -> None:
    doc = {"version": "pathmapping-1.0", "path_mapping_rules": [RULE]}
    inline = load_path_mapping_rules(
        '{"version": "pathmapping-1.0", "path_mapping_rules": ['
        + str(RULE).replace("'", '"')
        + "]}",
        _no_files,
        Path("/cwd"),
    )
    from_file = load_path_mapping_rules("file://rules.json", lambda path: doc, Path("/cwd"))
    assert [r.to_dict() for r in inline] == [r.to_dict() for r in from_file] == [RULE]


@pytest.mark.parametrize(
    ("text", "document_type", "expected"),
    [
        ('[{"A": 1}]', DocumentType.JSON, [{"A": 1}]),
        ("- A: 1\n- A: x\n", DocumentType.YAML, [{"A": 1}, {"A": "x"}]),
    ],
)
def test_parse_any_document(text: str, document_type: DocumentType, expected: Any) -> None:
    assert parse_any_document(text, document_type, "--tasks") == expected


@pytest.mark.parametrize(
    ("text", "document_type"), [("[1,", DocumentType.JSON), ("- [a\n", DocumentType.YAML)]
)
def test_parse_any_document_rejects(text: str, document_type: DocumentType) -> None:
    with pytest.raises(CliError):
        parse_any_document(text, document_type, "--tasks")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("bad", "ERROR: bad"),
        ("two\nlines", "ERROR: two\n    lines"),
        ("a\n\tb\n\n", "ERROR: a\n        b"),
    ],
)
def test_format_error(message: str, expected: str) -> None:
    assert format_error(message) == expected
