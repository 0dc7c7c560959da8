"""PATH and LIST[PATH] job parameter inputs: joined, normalized and kept inside the template dir."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest

from openjd_runtime.cli.paths import is_uri, join_default, join_value, resolve_path_inputs


class Kind(Enum):
    PATH = "PATH"
    LIST_PATH = "LIST[PATH]"
    STRING = "STRING"


@dataclass
class Definition:
    name: str
    type: Kind
    default: Any = None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://bucket/key", True),
        ("file:///x", True),
        ("a+b.c-d://x", True),
        ("/abs", False),
        ("rel/x", False),
        ("1s3://x", False),
        ("s3:/x", False),
        ("", False),
    ],
)
def test_is_uri(value: str, expected: bool) -> None:
    assert is_uri(value) is expected


@pytest.mark.parametrize(
    ("value", "uris", "expected"),
    [
        ("rel/a.exr", False, "/cwd/rel/a.exr"),
        ("./b.exr", False, "/cwd/b.exr"),
        (".", False, "/cwd"),
        ("sub/../other", False, "/cwd/other"),
        ("../up", False, "/up"),
        ("/abs/../kept", False, "/abs/../kept"),
        ("", False, ""),
        ("s3://b/k", True, "s3://b/k"),
        ("s3://b/k", False, "/cwd/s3:/b/k"),
    ],
)
def test_join_value(value: str, uris: bool, expected: str) -> None:
    assert join_value("/cwd", value, uris) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("out", "/t/out"),
        ("./a/./../b/.", "/t/b"),
        ("a/..", "/t"),
        ("..name/name../...", "/t/..name/name../..."),
        ("", ""),
    ],
)
def test_join_default(value: str, expected: str) -> None:
    assert join_default("P", "/t", value, False) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("/abs", "absolute"),
        ("..", "outside"),
        ("a/../../b", "outside"),
        ("../t2", "outside"),
    ],
)
def test_join_default_rejects(value: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        join_default("P", "/t", value, False)


def test_resolve_path_inputs() -> None:
    definitions = [
        Definition("One", Kind.PATH),
        Definition("Many", Kind.LIST_PATH),
        Definition("Defaults", Kind.LIST_PATH, ["a", "./b/../c"]),
        Definition("Given", Kind.LIST_PATH, ["ignored"]),
        Definition("Text", Kind.STRING),
        Definition("Bad", Kind.LIST_PATH),
    ]
    values = {
        "One": "x/../y",
        "Many": json.dumps(["m", "/abs"]),
        "Given": json.dumps(["g"]),
        "Text": "a/../b",
        "Bad": "not json",
    }
    resolved = resolve_path_inputs(
        definitions, values, template_dir="/t", cwd="/cwd", allow_uris=False
    )
    assert resolved == {
        "One": "/cwd/y",
        "Many": json.dumps(["/cwd/m", "/abs"]),
        "Defaults": json.dumps(["/t/a", "/t/c"]),
        "Given": json.dumps(["/cwd/g"]),
        "Text": "a/../b",
        "Bad": "not json",
    }


def test_resolve_path_inputs_reports_every_bad_default() -> None:
    definitions = [
        Definition("A", Kind.LIST_PATH, ["ok", "/abs"]),
        Definition("B", Kind.LIST_PATH, ["../out"]),
    ]
    with pytest.raises(ValueError) as caught:
        resolve_path_inputs(definitions, {}, template_dir="/t", cwd="/c", allow_uris=True)
    assert "parameter A" in str(caught.value)
    assert "parameter B" in str(caught.value)
