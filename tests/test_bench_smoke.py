"""The benchmark harness still runs: the smoke benchmark end to end, and its pure parts.

No benchmark figure is asserted anywhere here; only that every scenario ran and was reported.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCENARIO_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8a", "8b", "8c")


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load("harness")


@pytest.mark.timeout(300)
def test_smoke_benchmark_runs_every_scenario_and_writes_its_table(tmp_path):
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench.py"), "--smoke", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = results.read_text()
    assert "## Machine" in text
    assert "| # | Scenario | Subject | Runs | Wall | CPU | Peak RSS |" in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ")]
    ours = {cells[0].lstrip("| "): cells for cells in rows if len(cells) > 4 and cells[2] == "ours"}
    assert set(ours) == set(SCENARIO_KEYS)
    assert all(cells[3] == "1" for cells in ours.values()), ours
    assert "failed:" not in text


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"ours": 2, "reference": 2}, ["ours", "reference", "ours", "reference"]),
        ({"reference": 1, "ours": 3}, ["ours", "reference", "ours", "ours"]),
        (
            {"ours": 2, "reference": 1, "floor": 2},
            ["ours", "reference", "floor", "ours", "floor"],
        ),
        ({"ours": 1, "floor": 0}, ["ours"]),
        ({}, []),
    ],
)
def test_runs_alternate_between_subjects(counts, expected):
    assert harness.schedule(counts) == expected


def _result(ours: list[float], reference: list[float] | None) -> Any:
    result = harness.ScenarioResult("1", "t")
    for subject, walls in (("ours", ours), ("reference", reference)):
        if walls is not None:
            samples = [harness.Sample(w, cpu=w / 2, peak_rss=1 << 20) for w in walls]
            result.series[subject] = harness.Series(subject, "cmd", samples)
    return result


@pytest.mark.parametrize(
    ("ours", "reference", "wall_ratio"),
    [
        ([1.0, 3.0, 2.0], [4.0, 4.0, 40.0], 0.5),
        ([1.0, 2.0], [3.0, 5.0], 1.5 / 4.0),
        ([1.0], None, None),
        ([1.0], [0.0], None),
        ([], [1.0], None),
    ],
)
def test_ratio_is_of_the_medians(ours, reference, wall_ratio):
    result = _result(ours, reference)
    assert result.ratio("wall") == wall_ratio
    if wall_ratio is not None:
        assert result.ratio("cpu") == wall_ratio
        assert result.ratio("peak_rss") == 1.0


def test_series_without_samples_shows_why_and_no_ratio():
    result = _result([1.0], [])
    result.series["reference"].error = "failed: exit code 1: boom"
    table = harness.results_table([result])
    assert any("| reference | 0 | failed: exit code 1: boom |" in line for line in table)
    ours_row = next(line for line in table if "| ours |" in line)
    assert ours_row.endswith("| - | - | - |")


def test_series_stopped_after_some_runs_keeps_its_figures():
    result = _result([1.0], [2.0, 4.0])
    result.series["reference"].error = "not run: budget"
    result.other = lambda series: "other"
    table = harness.results_table([result])
    assert any("| 3.00 s |" in line and "other; then not run: budget" in line for line in table)
    assert result.ratio("wall") == 1.0 / 3.0


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (0.0123, "12.3 ms"), (0.9999, "999.9 ms"), (2.5, "2.50 s")],
)
def test_format_seconds(value, text):
    assert harness.format_seconds(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (12, "12 B"),
        (2048, "2.0 KiB"),
        (3 * 1024 * 1024, "3.0 MiB"),
        (5 * (1 << 30), "5.00 GiB"),
    ],
)
def test_format_bytes(value, text):
    assert harness.format_bytes(value) == text


RAW_PROFILE = "\n".join(
    [
        "<module> (ojd:8);main (/x/site-packages/openjd_runtime/cli/__init__.py:30);"
        "feed (/x/site-packages/openjd_runtime/messages.py:12) 6",
        "<module> (ojd:8);main (/x/site-packages/openjd_runtime/cli/__init__.py:31);"
        "feed (/x/site-packages/openjd_runtime/messages.py:40) 2",
        "<module> (ojd:8);write (/usr/lib/python3.11/io.py:5) 2",
        "not a stack line",
    ]
)


def test_collapsed_stacks_are_summed_per_function():
    summary = harness.summarize_collapsed(RAW_PROFILE, top=3)
    assert summary.samples == 10
    assert summary.self_share == [
        ("feed (openjd_runtime/messages.py)", 0.8),
        ("write (io.py)", 0.2),
    ]
    assert dict(summary.total_share) == {
        "<module> (ojd)": 1.0,
        "main (openjd_runtime/cli/__init__.py)": 0.8,
        "feed (openjd_runtime/messages.py)": 0.8,
    }


def test_total_share_can_focus_on_one_package():
    summary = harness.summarize_collapsed(RAW_PROFILE, focus="openjd_runtime")
    assert dict(summary.total_share) == {
        "main (openjd_runtime/cli/__init__.py)": 0.8,
        "feed (openjd_runtime/messages.py)": 0.8,
    }
    assert len(summary.self_share) == 2


def test_empty_profile_has_no_shares():
    summary = harness.summarize_collapsed("")
    assert (summary.samples, summary.self_share) == (0, [])
    assert harness.profile_lines(summary) == ["(no samples)"]


def test_import_tree_lists_slow_imports_parents_first():
    text = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       500 |        500 |     fast",
            "import time:     90000 |      90000 |     openjd.model",
            "import time:      2000 |     120000 |   openjd_runtime",
            "import time:       100 |     121000 | openjd_runtime.cli",
        ]
    )
    assert harness.import_tree(text, min_seconds=0.01) == [
        (0, "openjd_runtime.cli", 0.121),
        (1, "openjd_runtime", 0.12),
        (2, "openjd.model", 0.09),
    ]
