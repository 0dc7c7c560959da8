"""Measuring runs of a command and turning them into the results table.

The arithmetic and the text are pure functions over `Sample`s so they can be tested without
running anything; `run_measured` and `machine_info` are the only parts that touch the system.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

OURS = "ours"
REFERENCE = "reference"
FLOOR = "floor"
SUBJECT_ORDER = (OURS, REFERENCE, FLOOR)

MIB = 1 << 20


@dataclass(frozen=True)
class Sample:
    """One measured run. CPU and RSS are None where the run cannot report them."""

    wall: float
    cpu: float | None = None
    peak_rss: int | None = None
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Series:
    """Every run of one subject (ours, the reference or the floor) in one scenario."""

    subject: str
    command: str
    samples: list[Sample] = field(default_factory=list)
    warmup: list[Sample] = field(default_factory=list)
    error: str | None = None
    """Why the runs stopped: a failure, or the time budget."""

    def wall(self) -> float | None:
        return median(s.wall for s in self.samples)

    def cpu(self) -> float | None:
        return median(s.cpu for s in self.samples if s.cpu is not None)

    def peak_rss(self) -> float | None:
        return median(s.peak_rss for s in self.samples if s.peak_rss is not None)

    def extra(self, key: str) -> float | None:
        return median(s.extra[key] for s in self.samples if key in s.extra)


@dataclass
class ScenarioResult:
    key: str
    title: str
    series: dict[str, Series] = field(default_factory=dict)
    other: Callable[[Series], str] | None = None
    """Text for the table's last column (output size, memory per session, ...)."""

    def value(self, subject: str, metric: str) -> float | None:
        series = self.series.get(subject)
        if series is None or not series.samples:
            return None
        if metric == "wall":
            return series.wall()
        if metric == "cpu":
            return series.cpu()
        if metric == "peak_rss":
            return series.peak_rss()
        return series.extra(metric)

    def ratio(self, metric: str) -> float | None:
        return ratio(self.value(OURS, metric), self.value(REFERENCE, metric))


def median(values: Iterable[float]) -> float | None:
    items = list(values)
    return statistics.median(items) if items else None


def ratio(ours: float | None, reference: float | None) -> float | None:
    if ours is None or reference is None or reference == 0:
        return None
    return ours / reference


def schedule(counts: Mapping[str, int]) -> list[str]:
    """Runs interleaved A B A B (in SUBJECT_ORDER), so a drift in load hits every subject alike."""
    left = dict(counts)
    order: list[str] = []
    while any(n > 0 for n in left.values()):
        for subject in SUBJECT_ORDER:
            if left.get(subject, 0) > 0:
                order.append(subject)
                left[subject] -= 1
    return order


def format_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def format_bytes(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1 << 30:
        return f"{value / (1 << 30):.2f} GiB"
    if value >= MIB:
        return f"{value / MIB:.1f} MiB"
    if value >= 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value:.0f} B"


def format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def results_table(results: Sequence[ScenarioResult], masked_rss: float = 0) -> list[str]:
    """One row per subject of each scenario; the ratios sit on our row.

    A peak RSS up to `masked_rss` may be the spawning process's rather than the command's.
    """
    lines = [
        "| # | Scenario | Subject | Runs | Wall | CPU | Peak RSS | Other "
        "| Ours/ref wall | Ours/ref CPU | Ours/ref RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for subject in SUBJECT_ORDER:
            series = result.series.get(subject)
            if series is None:
                continue
            cells = [result.key, result.title, subject]
            if not series.samples:
                cells += ["0", series.error or "not run", "", "", ""]
            else:
                cells += [
                    str(len(series.samples)),
                    format_seconds(series.wall()),
                    format_seconds(series.cpu()),
                    _format_rss(series.peak_rss(), masked_rss),
                    result.other(series) if result.other is not None else "",
                ]
                if series.error is not None:
                    cells[-1] = f"{cells[-1]}; then {series.error}".lstrip("; ")
            if subject == OURS:
                cells += [format_ratio(result.ratio(m)) for m in ("wall", "cpu", "peak_rss")]
            else:
                cells += ["", "", ""]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _format_rss(value: float | None, masked: float) -> str:
    text = format_bytes(value)
    return f"<= {text}" if value is not None and value <= masked else text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def commands_list(results: Sequence[ScenarioResult]) -> list[str]:
    lines: list[str] = []
    for result in results:
        for subject in SUBJECT_ORDER:
            series = result.series.get(subject)
            if series is not None:
                lines.append(f"- {result.key} {subject}: `{series.command}`")
    return lines


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_PATH_ROOT = re.compile(r"site-packages/|/src/|/lib/python\d+\.\d+/")


def _short_frame(frame: str) -> str:
    """`func (…/site-packages/pkg/mod.py:12)` -> `func (pkg/mod.py)`: lines merged per function."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = _PATH_ROOT.split(match["file"])[-1]
    return f"{match['func']} ({path})"


@dataclass(frozen=True)
class ProfileSummary:
    samples: int
    self_share: list[tuple[str, float]]
    """Functions by the share of samples in which they were the running frame."""
    total_share: list[tuple[str, float]]
    """Functions by the share of samples in which they were anywhere on the stack."""


def summarize_collapsed(text: str, top: int = 12, focus: str = "") -> ProfileSummary:
    """Reads py-spy's raw (collapsed stack) output: `frame;frame;frame COUNT` per line.

    The total list keeps only frames naming `focus` (say, the runtime's package), so it shows
    where the runtime's own time goes rather than the frames every sample shares.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short_frame(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            if focus in name:
                inclusive[name] += count
    if total == 0:
        return ProfileSummary(0, [], [])
    return ProfileSummary(
        total,
        [(name, n / total) for name, n in own.most_common(top)],
        [(name, n / total) for name, n in inclusive.most_common(top)],
    )


def profile_lines(summary: ProfileSummary) -> list[str]:
    if summary.samples == 0:
        return ["(no samples)"]
    lines = [f"{summary.samples} samples.", "", "| Self | Function | | Total | Function |"]
    lines.append("|---|---|---|---|---|")
    for index in range(max(len(summary.self_share), len(summary.total_share))):
        left = summary.self_share[index] if index < len(summary.self_share) else None
        right = summary.total_share[index] if index < len(summary.total_share) else None
        cells = [
            f"{left[1]:.1%}" if left else "",
            f"`{left[0]}`" if left else "",
            "",
            f"{right[1]:.1%}" if right else "",
            f"`{right[0]}`" if right else "",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)")


def import_tree(text: str, min_seconds: float = 0.01) -> list[tuple[int, str, float]]:
    """(depth, module, cumulative seconds) of the imports slower than `min_seconds`.

    `python -X importtime` prints a module after the modules it imports; reversed, each module
    comes before what it imported, which reads as a tree.
    """
    rows: list[tuple[int, str, float]] = []
    for line in text.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            seconds = int(match[1]) / 1e6
            if seconds >= min_seconds:
                rows.append((len(match[2]) // 2, match[3], seconds))
    rows.reverse()
    return rows


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    sample: Sample
    killed: bool
    """The run outlived its timeout and was killed."""


def run_measured(
    argv: Sequence[str],
    *,
    stdout: Path,
    stderr: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> RunOutcome:
    """Runs a command to completion; CPU (user+sys) and peak RSS come from `wait4`.

    Both include the command's own children once they have been waited for, so a runtime is
    charged for the processes it starts as well.
    """
    with stdout.open("wb") as out, stderr.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env
        )
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            proc.kill()

        watchdog = threading.Timer(timeout, kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return RunOutcome(
        proc.returncode,
        Sample(wall, cpu=usage.ru_utime + usage.ru_stime, peak_rss=usage.ru_maxrss * 1024),
        killed=fired.is_set(),
    )


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    cores: int
    memory: int
    system: str
    python: str


def machine_info() -> Machine:
    model = platform.processor() or "unknown"
    memory = 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return Machine(
        cpu_model=model,
        cores=os.cpu_count() or 1,
        memory=memory,
        system=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
    )


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"
