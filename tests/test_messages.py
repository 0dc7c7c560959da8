"""Tests of the output filter: directives, line handling, truncation and redaction."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openjd_runtime.messages import (
    MASK,
    CancelMarkFailed,
    Fail,
    LogLevel,
    Message,
    OutputFilter,
    Progress,
    RedactedEnv,
    Redactor,
    SetEnv,
    Status,
    UnsetEnv,
)

PROGRESS_ERROR = (
    " -- ERROR: Progress must be a floating point value between 0.0 and 100.0, inclusive."
)
ASSIGNMENT_ERROR = " -- ERROR: Failed to parse environment variable assignment."
NAME_ERROR = " -- ERROR: Failed to parse environment variable name."
NEAR_MISS_ERROR = " -- ERROR: Incorrectly formatted openjd env command"


def redactor_with(*secrets: str) -> Redactor:
    redactor = Redactor()
    for secret in secrets:
        redactor.add(secret)
    return redactor


def run(
    chunks: list[bytes],
    *,
    enabled: bool = True,
    redactor: Redactor | None = None,
    limit: int = 65536,
) -> tuple[list[str], list[Message]]:
    """Feed `chunks` in order, then close; return every line and message."""
    output = OutputFilter(
        redactor if redactor is not None else Redactor(),
        redactions_enabled=enabled,
        max_line_length=limit,
    )
    lines: list[str] = []
    messages: list[Message] = []
    for chunk in chunks:
        new_lines, new_messages = output.feed(chunk)
        lines += new_lines
        messages += new_messages
    new_lines, new_messages = output.close()
    return lines + new_lines, messages + new_messages


def blocks(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def one(line: str, **options: Any) -> tuple[str, list[Message]]:
    lines, messages = run([line.encode() + b"\n"], **options)
    assert len(lines) == 1
    return lines[0], messages


def rejection(problem: str) -> list[Message]:
    text = f"Open Job Description: {problem}"
    return [Fail(text), CancelMarkFailed(text)]


# Directives


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("openjd_progress: 0", [Progress(0.0)]),
        ("openjd_progress: 100", [Progress(100.0)]),
        ("openjd_progress: 42.5", [Progress(42.5)]),
        ("openjd_progress:   7  ", [Progress(7.0)]),
        ("openjd_progress: 1e2", [Progress(100.0)]),
        ("openjd_status: Rendering frame 3  ", [Status("Rendering frame 3  ")]),
        ("openjd_status: a: b", [Status("a: b")]),
        ("openjd_status:  leading", [Status(" leading")]),
        ("openjd_fail: it broke", [Fail("it broke")]),
        ("openjd_env: FOO=bar", [SetEnv("FOO", "bar")]),
        ("openjd_env:    FOO=bar", [SetEnv("FOO", "bar")]),
        ("openjd_env: FOO=", [SetEnv("FOO", "")]),
        ("openjd_env: FOO=a=b  ", [SetEnv("FOO", "a=b  ")]),
        ("openjd_env: _x9=1", [SetEnv("_x9", "1")]),
        ('openjd_env: FOO="quoted"', [SetEnv("FOO", '"quoted"')]),
        ('openjd_env: "FOO=line1\\nline2"', [SetEnv("FOO", "line1\nline2")]),
        ('openjd_env: "FOO=say \\"hi\\""', [SetEnv("FOO", 'say "hi"')]),
        ('openjd_env: "FOO=caf\\u00e9=1"', [SetEnv("FOO", "café=1")]),
        ('openjd_env: "FOO="', [SetEnv("FOO", "")]),
        ("openjd_unset_env: FOO", [UnsetEnv("FOO")]),
        ("openjd_unset_env:   _BAR1", [UnsetEnv("_BAR1")]),
        ("openjd_session_runtime_loglevel: DEBUG", [LogLevel(logging.DEBUG)]),
        ("openjd_session_runtime_loglevel: info", [LogLevel(logging.INFO)]),
        ("openjd_session_runtime_loglevel:  Warning ", [LogLevel(logging.WARNING)]),
        ("openjd_session_runtime_loglevel: ERROR", [LogLevel(logging.ERROR)]),
    ],
)
def test_valid_directive_is_echoed_and_reported(line: str, expected: list[Message]) -> None:
    assert one(line) == (line, expected)


@pytest.mark.parametrize(
    "line",
    [
        "openjd_foo: x",
        "openjd_status:x",
        "openjd_status: ",
        "openjd_progress: ",
        "openjd_progress:50",
        " openjd_status: x",
        "OPENJD_STATUS: x",
        "openjd_environment_setup",
        "openjd_env_setup: done",
        "openjd_redacted_environment: x",
        "echo openjd_env: X=1",
        "openjd_session_runtime_loglevel: verbose",
        "plain output",
        "",
    ],
)
def test_non_directive_passes_as_text(line: str) -> None:
    assert one(line) == (line, [])


def test_payload_of_spaces_is_not_empty() -> None:
    assert one("openjd_status:   ") == ("openjd_status:   ", [Status("  ")])


@pytest.mark.parametrize("value", ["-1", "101", "100.0001", "nan", "inf", "-inf", "abc", "5%"])
def test_bad_progress_is_annotated_only(value: str) -> None:
    line = f"openjd_progress: {value}"
    assert one(line) == (line + PROGRESS_ERROR, [])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("FOO =x", "letter or underscore"),
        ("1FOO=x", "letter or underscore"),
        ("FOO-BAR=1", "letter or underscore"),
        ("=x", "letter or underscore"),
        ("FOO", "no '='"),
        ("   ", "no '='"),
        ('"FOO"', "no '='"),
        ('"FOO=unterminated', "JSON"),
        ('"FOO=a" trailing', "JSON"),
        ('"FOO=a\\u0000b"', "NUL"),
        ("FOO=a\0b", "NUL"),
        ('"FOO=\\ud800"', "surrogate"),
    ],
)
def test_malformed_env_fails_and_cancels(payload: str, reason: str) -> None:
    line = f"openjd_env: {payload}"
    echoed, messages = one(line)
    assert echoed == line + ASSIGNMENT_ERROR
    assert len(messages) == 2
    fail, cancel = messages
    assert isinstance(fail, Fail)
    assert cancel == CancelMarkFailed(fail.message)
    assert fail.message.startswith(
        "Open Job Description: Failed to parse environment variable assignment: "
    )
    assert reason in fail.message
    assert fail.message.endswith(f" ({line})")


@pytest.mark.parametrize("payload", ["FOO ", "1FOO", "FOO=1", "FOO BAR", "-", "   "])
def test_malformed_unset_env_fails_and_cancels(payload: str) -> None:
    line = f"openjd_unset_env: {payload}"
    echoed, messages = one(line)
    assert echoed == line + NAME_ERROR
    problem = (
        "Failed to parse environment variable name: a name must start with a letter or "
        f"underscore and hold only letters, digits and underscores ({line})"
    )
    assert messages == rejection(problem)


@pytest.mark.parametrize(
    "line",
    [
        "openjd_env:X=1",
        "OPENJD_ENV: X=1",
        " openjd_env: X=1",
        "\topenjd_redacted_env: X=1",
        "openjd_env X=1",
        "openjd_env: ",
        "openjd_env",
        "openjd_unset_env",
        "openjd_redacted_env",
        "Openjd_Unset_Env: X",
        "openjd_unset_env:X",
        "openjd_redacted_env:",
        "  OpenJD_Redacted_Env  X=1",
    ],
)
def test_near_miss_env_command_fails_and_cancels(line: str) -> None:
    echoed, messages = one(line)
    assert echoed == line + NEAR_MISS_ERROR
    assert messages == rejection(f"Incorrectly formatted openjd env command ({line})")


def test_messages_come_in_line_order() -> None:
    data = b"openjd_status: a\nopenjd_progress: 10\nx\nopenjd_fail: b\nopenjd_progress: 20"
    assert run([data])[1] == [Status("a"), Progress(10.0), Fail("b"), Progress(20.0)]


def test_directive_split_across_feeds() -> None:
    assert run([b"openjd_sta", b"tus: hi\nopenjd_prog", b"ress: 5"]) == (
        ["openjd_status: hi", "openjd_progress: 5"],
        [Status("hi"), Progress(5.0)],
    )


# Redacted environment variables


@pytest.mark.parametrize(
    ("line", "echo", "variable", "secret"),
    [
        (
            "openjd_redacted_env: KEY=hunter2",
            "openjd_redacted_env: KEY=********",
            RedactedEnv("KEY", "hunter2"),
            "hunter2",
        ),
        (
            "openjd_redacted_env:   KEY=a=hunter2 ",
            "openjd_redacted_env:   KEY=********",
            RedactedEnv("KEY", "a=hunter2 "),
            "a=hunter2 ",
        ),
        (
            'openjd_redacted_env: "KEY=hunter2\\nline two"',
            'openjd_redacted_env: "KEY=********',
            RedactedEnv("KEY", "hunter2\nline two"),
            "hunter2",
        ),
        (
            "openjd_redacted_env: KEY=",
            "openjd_redacted_env: KEY=********",
            RedactedEnv("KEY", ""),
            None,
        ),
    ],
)
@pytest.mark.parametrize("enabled", [True, False])
def test_redacted_env(
    line: str, echo: str, variable: RedactedEnv, secret: str | None, enabled: bool
) -> None:
    redactor = Redactor()
    data = f"{line}\nsee {secret}!\n".encode()
    lines, messages = run([data], enabled=enabled, redactor=redactor)
    assert lines[0] == echo
    assert messages == ([variable] if enabled else [])
    if secret is None:
        assert not redactor
    else:
        assert lines[1] == "see ********!"


@pytest.mark.parametrize(
    ("payload", "echo", "secret"),
    [
        ("hunter2", "openjd_redacted_env: ********", "hunter2"),
        ("KEY =hunter2", "openjd_redacted_env: KEY =********", "hunter2"),
        ("1KEY=hunter2", "openjd_redacted_env: 1KEY=********", "hunter2"),
        ('"KEY=hunter2', 'openjd_redacted_env: "KEY=********', "hunter2"),
        ('"KEY=hunter2" x', 'openjd_redacted_env: "KEY=********', 'hunter2" x'),
    ],
)
@pytest.mark.parametrize("enabled", [True, False])
def test_malformed_redacted_env_still_masks(
    payload: str, echo: str, secret: str, enabled: bool
) -> None:
    line = f"openjd_redacted_env: {payload}"
    lines, messages = run([f"{line}\n{secret}\n".encode()], enabled=enabled)
    assert lines == [echo + ASSIGNMENT_ERROR, MASK]
    if enabled:
        assert messages == []
    else:
        assert len(messages) == 2
        fail = messages[0]
        assert isinstance(fail, Fail)
        assert messages[1] == CancelMarkFailed(fail.message)
        assert secret not in fail.message


def test_redacted_json_value_is_masked_in_raw_and_decoded_forms() -> None:
    data = (
        b'openjd_redacted_env: "KEY=first\\u00e9\\nmiddle\\nlast"\n'
        b"first\xc3\xa9 seen\nmiddle\nnot middle\nlast\n"
        b'echo "KEY=first\\u00e9\\nmiddle\\nlast"\n'
    )
    lines, _ = run([data])
    assert lines == [
        'openjd_redacted_env: "KEY=********',
        "******** seen",
        MASK,
        "not middle",
        MASK,
        'echo "KEY=********"',
    ]


def test_secret_masks_from_its_directive_on() -> None:
    data = b"hunter2 before\nopenjd_redacted_env: K=hunter2\nhunter2 after\n"
    assert run([data])[0] == ["hunter2 before", "openjd_redacted_env: K=********", "******** after"]


def test_secret_is_shared_by_every_filter_of_the_redactor() -> None:
    redactor = Redactor()
    run([b"openjd_redacted_env: K=hunter2\n"], redactor=redactor)
    assert run([b"again hunter2\n"], redactor=redactor)[0] == ["again ********"]


@pytest.mark.parametrize(
    ("line", "expected_lines", "expected_messages"),
    [
        (
            "OPENJD_ENV: X=hunter2",
            ["OPENJD_ENV: X=********" + NEAR_MISS_ERROR],
            rejection("Incorrectly formatted openjd env command (OPENJD_ENV: X=********)"),
        ),
        (
            "openjd_status: using hunter2",
            ["openjd_status: using ********"],
            [Status("using ********")],
        ),
        (
            "openjd_fail: hunter2 refused",
            ["openjd_fail: ******** refused"],
            [Fail("******** refused")],
        ),
    ],
)
def test_message_texts_are_redacted(
    line: str, expected_lines: list[str], expected_messages: list[Message]
) -> None:
    lines, messages = run([line.encode() + b"\n"], redactor=redactor_with("hunter2"))
    assert (lines, messages) == (expected_lines, expected_messages)


def test_env_values_stay_unredacted() -> None:
    lines, messages = run([b"openjd_env: A=hunter2\n"], redactor=redactor_with("hunter2"))
    assert lines == ["openjd_env: A=********"]
    assert messages == [SetEnv("A", "hunter2")]


def test_malformed_env_message_is_redacted() -> None:
    _, messages = run([b"openjd_env: A =hunter2\n"], redactor=redactor_with("hunter2"))
    assert messages and "hunter2" not in repr(messages)


# Redactor


@pytest.mark.parametrize(
    ("secrets", "text", "expected"),
    [
        (["abc", "def"], "xabcdefx", "x********x"),
        (["abc", "bcd"], "zabcdz", "z********z"),
        (["bcd", "abc"], "abcd", MASK),
        (["pass", "password"], "my password is pass", "my ******** is ********"),
        (["password", "pass"], "passpassword", MASK),
        (["word", "password"], "password", MASK),
        (["ab"], "ababab", MASK),
        (["aa"], "aaa", MASK),
        (["a"], "banana", "b********n********n********"),
        (["s3cr3t"], "no secret here", "no secret here"),
        (["x" * 20], "x" * 20 + "y", "********y"),
        (["k"], "k", MASK),
        (["é€"], "café€!", "caf********!"),
        (["abc"], "abc\nxabc\nab c", "********\nx********\nab c"),
        (["s3cr3t\r"], "s3cr3t", MASK),
    ],
)
def test_redact(secrets: list[str], text: str, expected: str) -> None:
    assert redactor_with(*secrets).redact(text) == expected


@pytest.mark.parametrize(
    ("secret", "text", "expected"),
    [
        (
            "first\nmid one\n\nmid two\nlast",
            "the first\nmid one\nmid one!\n\nmid two\nlast word",
            "the ********\n********\nmid one!\n\n********\n******** word",
        ),
        (
            "\n\n first\nmid\n \nlast \n\n",
            " first\nmid\n \nlast \nlast",
            "********\n********\n \n********\nlast",
        ),
        ("one\r\ntwo\r\nthree", "one\ntwo\nthree", "********\n********\n********"),
    ],
)
def test_redact_multi_line_secret(secret: str, text: str, expected: str) -> None:
    assert redactor_with(secret).redact(text) == expected


@pytest.mark.parametrize(
    ("secrets", "truthy", "longest"),
    [
        ([], False, 0),
        ([""], False, 0),
        (["   "], False, 0),
        ([" \n\t\n "], False, 0),
        (["abc", "abcdef", "x"], True, 6),
        (["a\nmiddle line that is long\nb"], True, 1),
    ],
)
def test_redactor_state(secrets: list[str], truthy: bool, longest: int) -> None:
    redactor = redactor_with(*secrets)
    assert bool(redactor) is truthy
    assert redactor.longest == longest


def test_redact_lines_matches_redact() -> None:
    redactor = redactor_with("ab", "bc", "x\nwhole\ny")
    lines = ["abc", "whole", "a whole", "", "xbcd", "zz"]
    assert redactor.redact_lines(lines) == redactor.redact("\n".join(lines)).split("\n")
    assert redactor.redact_lines(lines) == [MASK, MASK, "a whole", "", MASK + "d", "zz"]


# Line handling


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"a\r\nb\r\n"], ["a", "b"]),
        ([b"a\r\r\n"], ["a\r"]),
        ([b"a\rb\n"], ["a\rb"]),
        ([b"a\r", b"\nb"], ["a", "b"]),
        ([b"\n\nx\n\n"], ["", "", "x", ""]),
        ([b"ok \xff\xfe end\n"], ["ok \\xff\\xfe end"]),
        ([b"\xe2\x82", b"\xac\n"], ["€"]),
        ([b"tail \xe2\x82"], ["tail \\xe2\\x82"]),
        ([b"a\nb"], ["a", "b"]),
        ([b"a\n"], ["a"]),
        ([b""], []),
        ([], []),
        ([b"x\r"], ["x"]),
        ([b"\r"], []),
        ([b"a", b"b", b"", b"c\n"], ["abc"]),
    ],
)
def test_line_splitting(chunks: list[bytes], expected: list[str]) -> None:
    assert run(chunks) == (expected, [])


def test_feed_returns_complete_lines_and_close_the_rest() -> None:
    output = OutputFilter(Redactor(), redactions_enabled=True)
    assert output.feed(b"one\ntw") == (["one"], [])
    assert output.feed(b"o") == ([], [])
    assert output.close() == (["two"], [])


def test_line_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_line_length"):
        OutputFilter(Redactor(), redactions_enabled=True, max_line_length=0)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"0123456789", "0123456789"),
        (b"0123456789A", "0123456789"),
        (b"0123456789" * 30, "0123456789"),
        ("é".encode() * 11, "é" * 10),
        (b"\xff" * 3, "\\xff\\xff\\x"),
        (b"0123456789\r", "0123456789"),
    ],
)
@pytest.mark.parametrize("size", [1, 3, 1000])
@pytest.mark.parametrize("terminated", [True, False])
def test_truncation(data: bytes, expected: str, size: int, terminated: bool) -> None:
    data += b"\nafter\n" if terminated else b""
    lines, _ = run(blocks(data, size), limit=10)
    assert lines == ([expected, "after"] if terminated else [expected])


def test_truncated_directive_keeps_its_visible_part() -> None:
    line = "openjd_status: " + "x" * 100
    assert run([line.encode()], limit=20) == ([line[:20]], [Status("xxxxx")])


def test_error_note_survives_truncation() -> None:
    line = "openjd_progress: " + "9" * 300
    (echoed,), _ = run([line.encode()], limit=200)
    assert len(echoed) == 200
    assert echoed == line[: 200 - len(PROGRESS_ERROR)] + PROGRESS_ERROR


@pytest.mark.parametrize("secrets", [(), ("hunter2",)])
def test_very_long_line_keeps_bounded_buffer(secrets: tuple[str, ...]) -> None:
    redactor = redactor_with(*secrets)
    output = OutputFilter(redactor, redactions_enabled=True)
    bound = 65536 + redactor.longest + 1
    line = b"abcdefgh" * (5 * 1024 * 1024 // 8) + b"hunter2"
    lines: list[str] = []
    for chunk in blocks(line + b"\nnext\n", 64 * 1024):
        lines += output.feed(chunk)[0]
        assert output.pending <= bound
    assert lines == ["abcdefgh" * 8192, "next"]
    assert output.pending == 0


@pytest.mark.parametrize("limit", [10, 1000, 65536])
def test_long_line_among_short_ones_in_one_block(limit: int) -> None:
    data = b"short\n" * 3000 + b"y" * (limit + 1) + b"\n" + b"short\n" * 3000
    assert run([data], limit=limit)[0] == ["short"] * 3000 + ["y" * limit] + ["short"] * 3000


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_secret_straddling_the_cut_is_masked(size: int) -> None:
    data = b"xxxxxxSECRETVALUEyyy\n"
    lines, _ = run(blocks(data, size), redactor=redactor_with("SECRETVALUE"), limit=10)
    assert lines == ["xxxxxx****"]


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_secret_beyond_the_cut_leaks_no_prefix(size: int) -> None:
    # The first secret shrinks to a mask, which would pull the second one's prefix before the
    # cut if the cut were made after redaction.
    redactor = redactor_with("A" * 30, "B" * 30)
    data = b"A" * 30 + b"x" * 5 + b"B" * 30 + b"\n"
    assert run(blocks(data, size), redactor=redactor, limit=32)[0] == ["********xx"]


def test_whole_line_secret_longer_than_the_limit_is_masked() -> None:
    redactor = redactor_with("a\n" + "m" * 50 + "\nb")
    assert run([b"m" * 50 + b"\n"], redactor=redactor, limit=20)[0] == [MASK]


@pytest.mark.parametrize("split", range(len("pre é s€cr€t post\r\n".encode()) + 1))
def test_secret_split_anywhere_is_masked(split: int) -> None:
    data = "pre é s€cr€t post\r\n".encode()
    lines, _ = run([data[:split], data[split:]], redactor=redactor_with("s€cr€t"))
    assert lines == ["pre é ******** post"]


# Properties

FRAGMENTS = [
    b"a",
    b"xyz ",
    b"\n",
    b"\r",
    b"\r\n",
    "é€😀".encode(),
    b"\xff",
    b"\xe2\x82",
    b"\x00",
    b"openjd_status: s\n",
    b"openjd_progress: 50\n",
    b"openjd_env: A=1\n",
    b"openjd_unset_env: A \n",
    b"OPENJD_ENV: A=1\n",
    b"openjd_redacted_env: K=topsecret\n",
    b"topsecret",
    b"m" * 40,
]


@st.composite
def split_data(draw: st.DrawFn, data: st.SearchStrategy[bytes]) -> list[bytes]:
    whole = draw(data)
    cuts = sorted(draw(st.sets(st.integers(0, len(whole)), max_size=8)))
    edges = [0, *cuts, len(whole)]
    return [whole[start:end] for start, end in itertools.pairwise(edges)]


@given(
    split_data(st.lists(st.sampled_from(FRAGMENTS)).map(b"".join)),
    st.sampled_from([12, 33, 65536]),
    st.booleans(),
)
def test_output_does_not_depend_on_block_boundaries(
    chunks: list[bytes], limit: int, enabled: bool
) -> None:
    whole = run([b"".join(chunks)], limit=limit, enabled=enabled)
    assert run(chunks, limit=limit, enabled=enabled) == whole


@given(split_data(st.lists(st.sampled_from(FRAGMENTS[:9])).map(b"".join) | st.binary()))
def test_nothing_is_lost_without_secrets_or_directives(chunks: list[bytes]) -> None:
    pieces = b"".join(chunks).split(b"\n")
    last = pieces.pop()
    expected = [piece.decode("utf-8", "backslashreplace").removesuffix("\r") for piece in pieces]
    if last.removesuffix(b"\r"):
        expected.append(last.decode("utf-8", "backslashreplace").removesuffix("\r"))
    assert run(chunks) == (expected, [])


# Letters that none of the fixed texts (directive, notes, messages) hold.
SECRET_TEXT = st.text(alphabet="qzé€😀 \r", min_size=1, max_size=6)


@st.composite
def secret_output(draw: st.DrawFn) -> tuple[list[str], list[bytes]]:
    secrets = draw(st.lists(SECRET_TEXT.filter(str.strip), min_size=1, max_size=4))
    declared = "".join(f"openjd_redacted_env: K{index}={s}\n" for index, s in enumerate(secrets))
    filler = st.text(alphabet="qzé€😀 \r\n", max_size=8)
    body = "".join(draw(filler) + draw(st.sampled_from(secrets)) for _ in secrets * 3)
    whole = (declared + body + draw(filler)).encode()
    cuts = sorted(draw(st.sets(st.integers(0, len(whole)), max_size=8)))
    edges = [0, *cuts, len(whole)]
    return secrets, [whole[start:end] for start, end in itertools.pairwise(edges)]


@given(secret_output(), st.sampled_from([30, 45, 65536]), st.booleans())
def test_secrets_never_appear_in_output(
    case: tuple[list[str], list[bytes]], limit: int, enabled: bool
) -> None:
    secrets, chunks = case
    lines, messages = run(chunks, limit=limit, enabled=enabled)
    shown = "\n".join(lines) + repr([m for m in messages if not isinstance(m, RedactedEnv)])
    for secret in secrets:
        assert secret not in shown
