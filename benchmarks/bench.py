"""Benchmarks of `ojd` against the reference `openjd` CLI (openjd-cli 0.8.0), side by side.

`make bench` runs every scenario through both, alternating A B A B after a warm-up, and writes
`benchmarks/RESULTS.md`; `make bench-smoke` runs the same code with tiny sizes and our runtime
alone, so the harness is exercised by the test suite.
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import (
    FLOOR,
    MIB,
    OURS,
    REFERENCE,
    Machine,
    Sample,
    ScenarioResult,
    Series,
    commands_list,
    format_bytes,
    format_ratio,
    format_seconds,
    import_tree,
    load_average,
    machine_info,
    median,
    profile_lines,
    results_table,
    run_measured,
    schedule,
    summarize_collapsed,
)

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
LIBRARY_BENCH = HERE / "library_bench.py"
TAIL_BYTES = 4096
SCAN_BLOCK = 1 << 22
BUDGET_MINUTES = 11.0
"""No measured run starts that would end after this; with the reference's install and the
profiles, `make bench` stays under 15 minutes."""
OVERRUN_SECONDS = 90.0
"""A run still going this long after the budget is stopped."""
RUN_TIMEOUT = 900.0
CLI_SCENARIOS = ("1", "2", "3", "4", "5", "6")


@dataclass(frozen=True)
class Sizes:
    tasks: int
    lines: int
    big_lines: int
    line_bytes: int
    variables: int
    env_tasks: int
    redaction_lines: int
    sessions: int
    session_tasks: int
    cancels: int


FULL = Sizes(500, 1_000_000, 10_000_000, 200_000_000, 200, 100, 1_000_000, 100, 20, 20)
SMOKE = Sizes(3, 100, 200, 1000, 3, 2, 300, 3, 2, 2)
WARMUP = Sizes(5, 1000, 1000, 1000, 5, 5, 1000, 2, 2, 2)
"""Small runs before the measured ones: they load the code and fill the caches of each subject."""


@dataclass(frozen=True)
class Check:
    """What the output of a successful CLI run must (not) hold."""

    tail: Sequence[str] = ()
    forbidden: Sequence[str] = ()


@dataclass(frozen=True)
class Commands:
    """The command of each subject, and its small warm-up run."""

    commands: dict[str, list[str]]
    warmups: dict[str, list[str]]
    json_report: bool = False
    """The command prints a JSON sample (library benchmarks) instead of being timed whole."""

    def with_floor(self, argv: Sequence[str]) -> Commands:
        return replace(self, commands={**self.commands, FLOOR: list(argv)})


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    parts: Commands
    runs: Mapping[str, int]
    check: Check = Check()
    other: Callable[[Series], str] | None = None
    scale: tuple[str, float] | None = None
    """(scenario, factor): a run takes about `factor` times that scenario's, before one is done."""


@dataclass(frozen=True)
class Tools:
    ours: Path
    ours_python: Path
    reference: Path | None
    reference_python: Path | None


@dataclass
class Target:
    key: str
    text: str
    measured: str
    met: bool | None
    bound: list[str] = field(default_factory=list)


class Budget:
    """Keeps the measured runs within a number of minutes (None: no limit)."""

    def __init__(self, minutes: float | None) -> None:
        self.minutes = minutes
        self._deadline = None if minutes is None else time.monotonic() + minutes * 60

    def allows(self, estimate: float) -> bool:
        return self._deadline is None or time.monotonic() + estimate <= self._deadline

    def timeout(self) -> float:
        if self._deadline is None:
            return RUN_TIMEOUT
        left = self._deadline + OVERRUN_SECONDS - time.monotonic()
        return min(max(left, 30.0), RUN_TIMEOUT)


def _output_size(series: Series) -> str:
    return f"output {format_bytes(series.extra('output'))}"


def _per_session(series: Series) -> str:
    per_session = series.extra("per_session")
    if per_session is None:
        return ""
    text = f"{format_bytes(per_session)}/session"
    restarts = series.extra("restarts")
    if restarts:
        text += f"; {restarts:.0f} tasks failed to start (ETXTBSY) and ran again"
    return text


def _cancel_max(series: Series) -> str:
    return f"slowest of a run: {format_seconds(series.extra('max'))}"


def _cli(tool: Path, template: str, params: Mapping[str, int]) -> list[str]:
    argv = [str(tool), "run", str(SCENARIOS / template)]
    for name, value in params.items():
        argv += ["-p", f"{name}={value}"]
    return argv


def scenarios(tools: Tools, sizes: Sizes, *, smoke: bool) -> list[Scenario]:
    """The issue's scenarios. Run counts keep the full `make bench` under 15 minutes on 2 cores."""
    subjects: dict[str, Path] = {OURS: tools.ours}
    pythons: dict[str, Path] = {OURS: tools.ours_python}
    if tools.reference is not None and tools.reference_python is not None:
        subjects[REFERENCE] = tools.reference
        pythons[REFERENCE] = tools.reference_python

    def runs(ours: int, reference: int, floor: int = 0) -> dict[str, int]:
        if smoke:
            return {OURS: 1, FLOOR: min(floor, 1)}
        counts = {OURS: ours, FLOOR: floor}
        if REFERENCE in subjects:
            counts[REFERENCE] = reference
        return counts

    def cli(template: str, full: Mapping[str, int], warm: Mapping[str, int]) -> Commands:
        return Commands(
            {s: _cli(tool, template, full) for s, tool in subjects.items()},
            {s: _cli(tool, template, warm) for s, tool in subjects.items()},
        )

    def library(mode: str, args: Sequence[str], warm: Sequence[str]) -> Commands:
        def argv(subject: str, extra: Sequence[str]) -> list[str]:
            base = [str(pythons[subject]), str(LIBRARY_BENCH), mode]
            return [*base, "--runtime", subject, *extra]

        return Commands(
            {s: argv(s, args) for s in pythons},
            {s: argv(s, warm) for s in pythons},
            json_report=True,
        )

    def startup(argv_tail: Sequence[str]) -> Commands:
        commands = {s: [str(tool), *argv_tail] for s, tool in subjects.items()}
        return Commands(commands, commands)

    def seq_floor(lines: int) -> list[str]:
        return ["sh", "-c", 'seq "$1" | cat', "sh", str(lines)]

    spawn_loop = (
        'import subprocess, sys; [subprocess.run(["true"]) for _ in range(int(sys.argv[1]))]'
    )
    env_loop = [
        str(tools.ours_python),
        "-c",
        ENV_TASKS_LOOP,
        str(sizes.variables),
        str(sizes.env_tasks),
        env_task_program(),
    ]
    long_line = ["sh", "-c", "head -c \"$1\" /dev/zero | tr '\\000' x", "sh", str(sizes.line_bytes)]
    w = WARMUP
    one_chunk = "Chunks run: 1"
    return [
        Scenario(
            "1",
            f"{sizes.tasks} tasks of `true`",
            cli("tasks.yaml", {"Tasks": sizes.tasks}, {"Tasks": w.tasks}).with_floor(
                [str(tools.ours_python), "-c", spawn_loop, str(sizes.tasks)]
            ),
            runs(5, 5, 5),
            Check(tail=[f"Chunks run: {sizes.tasks}"]),
            _output_size,
        ),
        Scenario(
            "2",
            f"`seq {sizes.lines}` to a file",
            cli("lines.yaml", {"Lines": sizes.lines}, {"Lines": w.lines}).with_floor(
                seq_floor(sizes.lines)
            ),
            runs(3, 3, 3),
            Check(tail=[f"\t{sizes.lines}\n", one_chunk]),
            _output_size,
        ),
        Scenario(
            "3",
            f"`seq {sizes.big_lines}` to a file",
            cli("lines.yaml", {"Lines": sizes.big_lines}, {"Lines": w.big_lines}).with_floor(
                seq_floor(sizes.big_lines)
            ),
            runs(3, 1, 1),
            Check(tail=[f"\t{sizes.big_lines}\n", one_chunk]),
            _output_size,
            scale=("2", sizes.big_lines / sizes.lines),
        ),
        Scenario(
            "4",
            f"one {format_bytes(sizes.line_bytes)} line, no newline",
            cli("long_line.yaml", {"Bytes": sizes.line_bytes}, {"Bytes": w.line_bytes}).with_floor(
                long_line
            ),
            runs(3, 3, 1),
            Check(tail=[one_chunk]),
            _output_size,
        ),
        Scenario(
            "5",
            f"{sizes.variables} variables by `openjd_env`, {sizes.env_tasks} tasks",
            cli(
                "env_vars.yaml",
                {"Variables": sizes.variables, "Tasks": sizes.env_tasks},
                {"Variables": w.variables, "Tasks": w.env_tasks},
            ).with_floor(env_loop),
            runs(5, 5, 5),
            Check(tail=[f"variables seen: {sizes.variables}"]),
            _output_size,
        ),
        Scenario(
            "6",
            f"redaction: 10 secrets, {sizes.redaction_lines} lines, 1% with one",
            cli("redaction.yaml", {"Lines": sizes.redaction_lines}, {"Lines": w.redaction_lines}),
            runs(3, 3),
            Check(tail=[one_chunk], forbidden=["sekrit-"]),
            _output_size,
        ),
        Scenario(
            "7",
            f"library: {sizes.sessions} sessions at once x {sizes.session_tasks} tasks",
            library(
                "sessions",
                ["--sessions", str(sizes.sessions), "--tasks", str(sizes.session_tasks)],
                ["--sessions", str(w.sessions), "--tasks", str(w.session_tasks)],
            ).with_floor(
                [
                    str(tools.ours_python),
                    str(LIBRARY_BENCH),
                    "spawns",
                    "--sessions",
                    str(sizes.sessions),
                    "--tasks",
                    str(sizes.session_tasks),
                ]
            ),
            runs(3, 3, 3),
            other=_per_session,
        ),
        Scenario(
            "8a",
            "library: cancel (TERMINATE) to result, child ignores SIGTERM",
            library("cancel", ["--samples", str(sizes.cancels)], ["--samples", str(w.cancels)]),
            runs(3, 3),
            other=_cancel_max,
        ),
        Scenario("8b", "start-up: `--version`", startup(["--version"]), runs(7, 7)),
        Scenario(
            "8c",
            "start-up: `check` of a template",
            startup(["check", str(SCENARIOS / "tasks.yaml")]).with_floor(
                [str(tools.ours_python), "-c", MODEL_IMPORT]
            ),
            runs(5, 5, 5),
        ),
    ]


MODEL_IMPORT = "import gc; gc.disable(); import os, openjd.model; os._exit(0)"
"""Scenario 8c's floor: a process that imports openjd-model and ends, the least any runtime
built on it pays before its first task (no cycle collection, no interpreter teardown)."""
ENV_TASKS_LOOP = """\
import os, subprocess, sys
variables, tasks, program = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
env = {**os.environ, **{f"BENCH_VAR_{i}": f"value-{i}" for i in range(variables)}}
for _ in range(tasks):
    subprocess.run(["awk", program], env=env, stdout=subprocess.DEVNULL, check=True)
"""
"""Scenario 5's floor: its tasks' own command, with the variables the environment exports."""


def env_task_program() -> str:
    """The awk program each task of scenario 5 runs, as its template gives it."""
    from openjd.model import DocumentType, document_string_to_object

    text = (SCENARIOS / "env_vars.yaml").read_text()
    template = document_string_to_object(document=text, document_type=DocumentType.YAML)
    return str(template["steps"][0]["script"]["actions"]["onRun"]["args"][0])


def execution_order(selected: Sequence[Scenario]) -> list[Scenario]:
    """Scaled scenarios (the 10-million-line one) last: if the budget runs short, they give way."""
    return sorted(selected, key=lambda s: s.scale is not None)


def check_output(path: Path, check: Check) -> str | None:
    """Why the output of a run is wrong, or None. The tail holds the last line and the summary."""
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(size - TAIL_BYTES, 0))
        tail = f.read()
        for wanted in check.tail:
            if wanted.encode() not in tail:
                return f"output does not end with {wanted!r}"
        if check.forbidden:
            f.seek(0)
            keep = max(len(w) for w in check.forbidden)
            previous = b""
            while block := f.read(SCAN_BLOCK):
                window = previous + block
                for unwanted in check.forbidden:
                    if unwanted.encode() in window:
                        return f"output holds {unwanted!r}"
                previous = window[-keep:]
    return None


def run_once(
    scenario: Scenario, argv: Sequence[str], work: Path, timeout: float, *, check: bool
) -> Sample:
    out, err = work / "stdout", work / "stderr"
    try:
        outcome = run_measured(argv, stdout=out, stderr=err, timeout=timeout)
        if outcome.killed:
            raise RuntimeError(
                f"stopped at the time budget after {format_seconds(outcome.sample.wall)} "
                f"(peak RSS by then {format_bytes(outcome.sample.peak_rss)})"
            )
        if outcome.exit_code != 0:
            tail = err.read_bytes()[-400:].decode(errors="replace").strip()
            raise RuntimeError(f"failed: exit code {outcome.exit_code}: {tail}")
        if scenario.parts.json_report:
            report = json.loads(out.read_text())
            return Sample(
                wall=report["wall"],
                cpu=report.get("cpu"),
                peak_rss=report.get("peak_rss"),
                extra=report.get("extra", {}),
            )
        if check:
            problem = check_output(out, scenario.check)
            if problem is not None:
                raise RuntimeError(f"failed: {problem}")
        return replace(outcome.sample, extra={"output": float(out.stat().st_size)})
    finally:
        out.unlink(missing_ok=True)
        err.unlink(missing_ok=True)


def estimate(
    scenario: Scenario, series: Series, results: Mapping[str, ScenarioResult]
) -> float | None:
    """How long the next run of `series` should take: its earlier runs, or a related scenario."""
    done = series.wall()
    if done is not None:
        return done
    if scenario.scale is None:
        return None
    key, factor = scenario.scale
    related = results.get(key)
    base = related.value(series.subject, "wall") if related else None
    return None if base is None else base * factor


def run_scenario(
    scenario: Scenario,
    work: Path,
    budget: Budget,
    results: Mapping[str, ScenarioResult],
    log: Callable[[str], None],
) -> ScenarioResult:
    result = ScenarioResult(scenario.key, scenario.title, other=scenario.other)
    for subject, argv in scenario.parts.commands.items():
        result.series[subject] = Series(subject, shlex.join(argv))
    for subject, argv in scenario.parts.warmups.items():
        series = result.series[subject]
        try:
            series.warmup.append(run_once(scenario, argv, work, RUN_TIMEOUT, check=False))
        except (RuntimeError, OSError, ValueError) as exc:
            series.error = f"warm-up {exc}"
    counts = {s: n for s, n in scenario.runs.items() if s in scenario.parts.commands}
    for subject in schedule(counts):
        series = result.series[subject]
        if series.error is not None:
            continue
        expected = estimate(scenario, series, results)
        if expected is not None and not budget.allows(expected):
            series.error = (
                f"not run: one run (about {format_seconds(expected)}) would end past the "
                f"{budget.minutes:g}-minute budget"
            )
            log(f"  {scenario.key} {subject}: {series.error}")
            continue
        argv = scenario.parts.commands[subject]
        try:
            sample = run_once(scenario, argv, work, budget.timeout(), check=subject != FLOOR)
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            series.error = str(exc)
            log(f"  {scenario.key} {subject}: {exc}")
            continue
        series.samples.append(sample)
        log(
            f"  {scenario.key} {subject}: wall {format_seconds(sample.wall)}, "
            f"cpu {format_seconds(sample.cpu)}, rss {format_bytes(sample.peak_rss)}"
        )
    return result


def evaluate(results: Mapping[str, ScenarioResult]) -> list[Target]:
    """The issue's targets, each with its measured value and, when missed, what bounds it."""
    targets: list[Target] = []

    def wall_ratio(key: str, limit: float) -> None:
        result = results.get(key)
        value = result.ratio("wall") if result else None
        met = None if value is None else value <= limit
        target = Target(key, f"wall ours/reference <= {limit}", format_ratio(value), met)
        if met is False and result is not None:
            target.bound = ratio_bounds(result, results.get("8c"))
        targets.append(target)

    def ours_at_most(key: str, metric: str, limit: float, text: str) -> Target:
        result = results.get(key)
        value = result.value(OURS, metric) if result else None
        shown = format_bytes(value) if "RSS" in text or "memory" in text else format_seconds(value)
        target = Target(key, text, shown, None if value is None else value <= limit)
        targets.append(target)
        return target

    wall_ratio("1", 0.35)
    wall_ratio("2", 0.07)
    rss = ours_at_most("2", "peak_rss", 64 * MIB, "peak RSS <= 64 MiB")
    if rss.met is False:
        rss.bound = rss_bounds(results["2"], results.get("3"))
    two, three = results.get("2"), results.get("3")
    growth = None
    if two and three:
        small, big = two.value(OURS, "peak_rss"), three.value(OURS, "peak_rss")
        growth = big / small if big is not None and small else None
    targets.append(
        Target(
            "3",
            "peak RSS within 10% of scenario 2's",
            "-" if growth is None else f"{growth - 1:+.1%}",
            None if growth is None else growth <= 1.10,
        )
    )
    four = results.get("4")
    completed = None if four is None else four.value(OURS, "wall") is not None
    targets.append(
        Target("4", "completes", {None: "-", True: "yes", False: "no"}[completed], completed)
    )
    rss = ours_at_most("4", "peak_rss", 64 * MIB, "peak RSS <= 64 MiB")
    if rss.met is False:
        rss.bound = rss_bounds(results["4"], None)
    wall_ratio("5", 0.25)
    wall_ratio("6", 0.25)
    wall_ratio("7", 0.25)
    ours_at_most("7", "per_session", MIB, "memory per session <= 1 MiB")
    ours_at_most("8a", "wall", 0.050, "cancel to result <= 50 ms")
    ours_at_most("8b", "wall", 0.150, "`ojd --version` <= 0.15 s")
    return targets


def ratio_bounds(result: ScenarioResult, startup: ScenarioResult | None) -> list[str]:
    """What the floor, our start-up and our CPU use say about a missed wall ratio."""
    ours = result.value(OURS, "wall")
    reference = result.value(REFERENCE, "wall")
    if ours is None or reference is None:
        return []
    notes: list[str] = []
    floor = result.value(FLOOR, "wall")
    if floor is not None:
        notes.append(
            f"- Floor {format_seconds(floor)} = {floor / reference:.3f} of the reference's wall: "
            f"no runtime gets below that ratio here. Above the floor, ours spends "
            f"{format_seconds(ours - floor)} and the reference {format_seconds(reference - floor)}."
        )
    cli_startup = startup if result.key in CLI_SCENARIOS else None
    model = cli_startup.value(FLOOR, "wall") if cli_startup is not None else None
    if model is not None:
        least = (model + (floor or 0.0)) / reference
        notes.append(
            f"- Any runtime built on openjd-model imports it first: a process that only "
            f"does that (scenario 8c's floor) takes {format_seconds(model)} = "
            f"{model / reference:.3f} of the reference's wall"
            f"{'; with the floor above, ' + format_ratio(least) if floor else ''}."
        )
    start = cli_startup.value(OURS, "wall") if cli_startup is not None else None
    if start is not None:
        notes.append(
            f"- Our start-up alone (`ojd check`, scenario 8c: interpreter, imports, template "
            f"parsing) takes {format_seconds(start)} = {start / reference:.3f} of the "
            "reference's wall."
        )
    cpu = result.value(OURS, "cpu")
    if cpu is not None and cpu < 0.7 * ours:
        notes.append(
            f"- Ours used {format_seconds(cpu)} of CPU in {format_seconds(ours)}: "
            f"{cpu / ours:.0%}. The rest is waiting, on task processes or on calls that block "
            "the event loop (see the profile)."
        )
    return notes


def rss_bounds(result: ScenarioResult, bigger: ScenarioResult | None) -> list[str]:
    """How much of a missed peak RSS the runtime has before any output, and how much comes after."""
    ours = result.series.get(OURS)
    peak = result.value(OURS, "peak_rss")
    base = median(s.peak_rss for s in ours.warmup if s.peak_rss) if ours else None
    if peak is None or base is None:
        return []
    notes = [
        f"- The same command at the warm-up size peaks at {format_bytes(base)}: the interpreter, "
        f"the imports and the job. The other {format_bytes(peak - base)} comes with the output."
    ]
    big = bigger.value(OURS, "peak_rss") if bigger else None
    if big is not None:
        notes.append(
            f"- With ten times the output (scenario 3) the peak is {format_bytes(big)}: the extra "
            "memory is buffering, bounded by the read size, not by the output's size."
        )
    return notes


def profile(scenario: Scenario, py_spy: Path, work: Path) -> list[str]:
    """A py-spy sample of one run of our command (the Python process itself, not its tasks)."""
    raw = work / "profile.txt"
    out = work / "profile-stdout"
    record = [str(py_spy), "record", "--format", "raw", "--rate", "250", "-o", str(raw)]
    try:
        with out.open("wb") as sink:
            subprocess.run(
                [*record, "--", *scenario.parts.commands[OURS]],
                stdout=sink,
                stderr=subprocess.DEVNULL,
                check=True,
                timeout=RUN_TIMEOUT,
            )
        if scenario.parts.json_report:
            problem = None if out.read_text().strip() else "no report"
        else:
            problem = check_output(out, scenario.check)
        if problem is not None:
            return [f"(the profiled run failed: {problem})"]
        summary = summarize_collapsed(raw.read_text(), focus="openjd_runtime")
    except (OSError, subprocess.SubprocessError) as exc:
        return [f"(py-spy failed: {exc})"]
    finally:
        raw.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    return [
        "py-spy, 250 samples/s, one run of ours, idle waits left out. Self: the function "
        "running; total: anywhere on the stack (the runtime's own functions only).",
        "",
        *profile_lines(summary),
    ]


def import_profile(python: Path) -> list[str]:
    """Where `ojd`'s start-up goes: the slow imports of the command line module."""
    proc = subprocess.run(
        [str(python), "-X", "importtime", "-m", "openjd_runtime", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    rows = import_tree(proc.stderr, min_seconds=0.005)
    if not rows:
        return ["No import over 5 ms: start-up is the interpreter itself."]
    lines = ["Imports over 5 ms (cumulative), `python -X importtime -m openjd_runtime --version`:"]
    lines += ["", "```"]
    lines += [f"{'  ' * depth}{name}  {seconds * 1000:.1f} ms" for depth, name, seconds in rows]
    lines.append("```")
    return lines


def revision() -> str:
    """The commit measured, and whether the runtime's sources differ from it."""

    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(HERE), *args], capture_output=True, text=True, check=False
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown commit"
    dirty = git("status", "--porcelain", "--", str(HERE.parent / "src"))
    return f"commit {commit}" + (" with uncommitted changes in src/" if dirty else "")


def versions(python: Path, packages: Sequence[str]) -> str:
    code = (
        "import importlib.metadata as m, platform, sys\n"
        "names = sys.argv[1:]\n"
        "print(platform.python_version(), *[n + ' ' + m.version(n) for n in names], sep=', ')"
    )
    proc = subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or f"unknown ({proc.stderr.strip()[-200:]})"


METHOD = [
    "- Each scenario runs each subject once at a small size (warm-up: imports, page cache), "
    "then the measured runs alternate ours, reference, floor, ours, reference, floor, ...",
    "- Figures are medians over the runs. Wall is the time from spawn to exit of the command; "
    "CPU is user+sys of the command and of every process it started and waited for, and peak "
    "RSS the largest resident set among them, both from `wait4`.",
    "- CLI scenarios (1-6) write the command's standard output to a file; each run's output is "
    "checked (last line, summary, no secret) before it counts. Other = output size.",
    "- Library scenarios (7, 8a) time only the measured phase inside the process: wall, CPU of "
    "the process and its tasks, the process's peak RSS. Memory per session = (peak RSS - RSS "
    "after a one-session warm-up) / sessions. Ours runs every session on one asyncio event loop; "
    "the reference runs one thread per session, waiting on its callback.",
    "- Floors: 1: a Python loop of `subprocess.run(['true'])`; 2 and 3: `seq N | cat` to the "
    "file; 4: the task's own `head | tr` to the file; 5: a Python loop running the tasks' own "
    "`awk` with the exported variables; 7: the same `true` processes started by a plain loop on "
    "two threads, as many as our spawner threads; 8c: a Python process that imports openjd.model "
    "and ends (collector off, no teardown), which any runtime built on openjd-model pays before "
    "its first task.",
    "- 8a does not do the same work on both sides: the reference sends SIGKILL to the action's "
    "process group, so a process that left the group outlives the cancel; ours stops and kills "
    "every process of the action, found by scanning /proc (its group, its descendants, and "
    "whatever carries its marker variable), stops them, scans once more for what they forked "
    "meanwhile, and kills; it scans again only when that second scan found processes it had not "
    "stopped. Those scans grow with the number of processes on the host; the target (<= 50 ms) is "
    "absolute.",
    "- Both runtimes run from compiled bytecode: pip compiled the reference's when it installed "
    "it, and `make bench` compiles ours (installed editable) first, so that neither pays for "
    "compiling its sources on every start.",
    "- On Linux a child's `ru_maxrss` starts at the RSS of the process that spawned it, so a "
    "peak RSS no larger than the harness's own is shown as `<= N`: the real one is smaller.",
    f"- Measured runs that would end past a {BUDGET_MINUTES:g}-minute budget are not started "
    "(the 10-million-line scenario runs last), so `make bench` stays under 15 minutes.",
    "- The machine may be shared: see the load average. Ratios come from runs interleaved in "
    "time, so a change of load hits both runtimes alike; absolute times move with the load.",
]


def render(
    *,
    machine: Machine,
    tools: Tools,
    smoke: bool,
    results: Sequence[ScenarioResult],
    targets: Sequence[Target],
    profiles: Mapping[str, list[str]],
    harness_rss: int,
    started: datetime.datetime,
    elapsed: float,
    loads: tuple[str, str],
) -> str:
    results = sorted(results, key=lambda r: (len(r.key), r.key))
    lines = ["# Benchmark results", ""]
    if smoke:
        lines += [
            "Smoke run (`make bench-smoke`): tiny sizes, our runtime only. The figures mean "
            "nothing; the run only shows that every scenario still works.",
            "",
        ]
    ours = versions(tools.ours_python, ["openjd-runtime", "openjd-model"])
    lines += [
        f"Written by `{'make bench-smoke' if smoke else 'make bench'}` "
        f"(`benchmarks/bench.py`) on {started:%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} min.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine.cpu_model}, {machine.cores} cores; memory {format_bytes(machine.memory)}",
        f"- System: {machine.system}",
        f"- Ours: `ojd` with Python {ours}; {revision()}",
    ]
    if tools.reference_python is not None:
        packages = ["openjd-cli", "openjd-sessions", "openjd-model"]
        lines.append(
            f"- Reference: `openjd` with Python {versions(tools.reference_python, packages)}"
        )
    lines += [
        f"- Load average (1, 5, 15 min) at the start: {loads[0]}; at the end: {loads[1]}",
        "",
        "## Method",
        "",
        *METHOD,
        "",
        "## Results",
        "",
        *results_table(results, harness_rss),
        "",
    ]
    shown: set[str] = set()
    if targets:
        lines += [
            "## Targets (issue 5)",
            "",
            "| # | Target | Measured | Met |",
            "|---|---|---|---|",
        ]
        for t in targets:
            met = "-" if t.met is None else ("yes" if t.met else "**no**")
            lines.append(f"| {t.key} | {t.text} | {t.measured} | {met} |")
        lines.append("")
        missed = [t for t in targets if t.met is False]
        if missed:
            lines += ["## What bounds the missed targets", ""]
        for t in missed:
            lines += [f"### Scenario {t.key}: {t.text} (measured {t.measured})", ""]
            if t.bound:
                lines += [*t.bound, ""]
            if t.key in profiles and t.key not in shown:
                lines += [*profiles[t.key], ""]
                shown.add(t.key)
    rest = {k: v for k, v in profiles.items() if k not in shown}
    if rest:
        lines += ["## Profiles of ours", ""]
        for key, body in rest.items():
            lines += [f"### Scenario {key}", "", *body, ""]
    lines += ["## Commands", "", *commands_list(results), ""]
    return "\n".join(lines)


def find_tools(args: argparse.Namespace) -> Tools:
    ours_python = Path(sys.executable)
    ours = Path(args.ojd) if args.ojd else ours_python.with_name("ojd")
    reference = reference_python = None
    if args.reference:
        venv = Path(args.reference).absolute()
        reference, reference_python = venv / "bin" / "openjd", venv / "bin" / "python"
    return Tools(ours.absolute(), ours_python, reference, reference_python)


def profile_scenarios(
    selected: Sequence[Scenario],
    keys: set[str],
    tools: Tools,
    work: Path,
    log: Callable[[str], None],
) -> dict[str, list[str]]:
    py_spy = tools.reference_python.with_name("py-spy") if tools.reference_python else None
    profiles: dict[str, list[str]] = {}
    for scenario in selected:
        if scenario.key not in keys:
            continue
        if scenario.key == "8b":
            profiles[scenario.key] = import_profile(tools.ours_python)
        elif py_spy is not None and py_spy.exists():
            log(f"profiling scenario {scenario.key}")
            profiles[scenario.key] = profile(scenario, py_spy, work)
    return profiles


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, our runtime only")
    parser.add_argument("--reference", metavar="VENV", help="virtualenv holding openjd-cli 0.8.0")
    parser.add_argument("--ojd", metavar="PATH", help="our `ojd` (default: beside this python)")
    parser.add_argument("--results", metavar="FILE", help="where to write the report")
    parser.add_argument("--only", metavar="KEYS", help="comma-separated scenario keys")
    parser.add_argument(
        "--budget",
        type=float,
        metavar="MINUTES",
        help=f"start no measured run that would end later (default {BUDGET_MINUTES:g}; "
        "none with --smoke)",
    )
    parser.add_argument(
        "--profile",
        choices=("missed", "all", "none"),
        default="missed",
        help="profile ours with py-spy (from the reference venv) where a target is missed",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.reference = None
    tools = find_tools(args)
    for tool in (tools.ours, tools.reference):
        if tool is not None and not tool.exists():
            parser.error(f"{tool} does not exist")
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    loads_start = load_average()
    budget = Budget(args.budget if args.budget or args.smoke else BUDGET_MINUTES)
    selected = scenarios(tools, SMOKE if args.smoke else FULL, smoke=args.smoke)
    if args.only:
        keys = set(args.only.split(","))
        selected = [s for s in selected if s.key in keys]

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    results: dict[str, ScenarioResult] = {}
    with tempfile.TemporaryDirectory(prefix="ojd-bench-") as tmp:
        work = Path(tmp)
        for scenario in execution_order(selected):
            log(f"scenario {scenario.key}: {scenario.title}")
            results[scenario.key] = run_scenario(scenario, work, budget, results, log)
        targets = [] if args.smoke else evaluate(results)
        wanted = {t.key for t in targets if t.met is False}
        if args.profile == "all":
            wanted = set(results)
        elif args.profile == "none":
            wanted = set()
        profiles = profile_scenarios(selected, wanted, tools, work, log)
    text = render(
        machine=machine_info(),
        tools=tools,
        smoke=args.smoke,
        results=list(results.values()),
        targets=targets,
        profiles=profiles,
        harness_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        started=started,
        elapsed=time.monotonic() - clock,
        loads=(loads_start, load_average()),
    )
    if args.results:
        Path(args.results).write_text(text)
    print(text)
    broken = [r.key for r in results.values() if OURS in r.series and not r.series[OURS].samples]
    if broken:
        log(f"ours did not complete scenarios: {', '.join(broken)}")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
