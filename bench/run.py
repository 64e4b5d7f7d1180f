"""Runs every bench/bench_*.py in its own process, streams its output and rewrites docs/benchmarks.md."""

from __future__ import annotations

import argparse
import ast
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import REPO

BENCH_DIR = REPO / "bench"
DOC = REPO / "docs" / "benchmarks.md"
TIMEOUT_S = 240  # the hard stop; the load test (60 s ours + 20 s chalice local + two stacks) is the longest
LINE = re.compile(r"^BENCH (\S+) ours=(\S+) floor=(\S+) ratio=(\S+)(?: # (.*))?$")


@dataclass
class Figure:
    name: str
    ours: str
    floor: str
    ratio: str
    note: str
    target: str = ""
    why_behind: str = ""

    def verdict(self) -> str:
        """ "met" / "behind" for targets of the forms `>= 0.5x`, `<= 1.5x`, `<= 250 ms` (or as the note
        says); "" otherwise."""
        match = re.fullmatch(r"(>=|<=) ([0-9.]+) ?(x|ms)", self.target.strip())
        if not match:  # a target the benchmark judges itself says so in its note ("...: NOT met")
            said = re.search(r": (NOT met|met)\b", self.note)
            return ("behind" if said.group(1) == "NOT met" else "met") if said and self.target else ""
        op, bound, unit = match.group(1), float(match.group(2)), match.group(3)
        value = _number(self.ratio) if unit == "x" else _number(self.ours, "ms")
        if value is None:
            return ""
        return "met" if (value >= bound if op == ">=" else value <= bound) else "behind"


def _number(text: str, unit: str = "") -> float | None:
    match = re.fullmatch(r"([0-9.]+)" + re.escape(unit), text)
    return float(match.group(1)) if match else None


@dataclass
class Outcome:
    module: str
    seconds: float
    figures: list[Figure] = field(default_factory=list)
    failure: str = ""


def discover(only: str | None) -> list[str]:
    names = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    return [n for n in names if not only or only in n]


def targets_of(module: str, name: str = "TARGETS") -> dict[str, str]:
    """A module-level dict (TARGETS, WHY_BEHIND), read without importing the module (it may import
    heavy things)."""
    tree = ast.parse((BENCH_DIR / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id == name and node.value is not None:
                value = ast.literal_eval(node.value)
                return {str(k): str(v) for k, v in value.items()}
    return {}


def run_one(module: str) -> Outcome:
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", f"bench.{module}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    outcome = Outcome(module, 0.0)
    targets, reasons = targets_of(module), targets_of(module, "WHY_BEHIND")
    tail: list[str] = []
    assert child.stdout is not None
    try:
        deadline = started + TIMEOUT_S
        for raw in child.stdout:
            line = raw.rstrip("\n")
            print(f"[{module}] {line}", flush=True)
            tail = ([*tail, line])[-5:]
            match = LINE.match(line)
            if match:
                name, ours, floor, ratio, note = match.groups()
                outcome.figures.append(
                    Figure(name, ours, floor, ratio, note or "", targets.get(name, ""), reasons.get(name, ""))
                )
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(module, TIMEOUT_S)
        code = child.wait(timeout=max(1.0, deadline - time.monotonic()))
        if code != 0:
            last = next((t for t in reversed(tail) if t.strip()), "")
            outcome.failure = f"exit {code}: {last[:200]}"
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, 9)  # the benchmark's own process group (start_new_session above)
        child.wait()
        outcome.failure = f"timed out after {TIMEOUT_S} s"
    outcome.seconds = time.monotonic() - started
    if not outcome.failure and not outcome.figures:
        outcome.failure = "printed no BENCH line"
    return outcome


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def previous_rows(ran: set[str]) -> tuple[list[str], list[str], list[str]]:
    """Table rows, run lines and behind-target lines of the current doc for benchmarks not run now
    (kept by `--only` runs)."""
    if not DOC.exists():
        return [], [], []
    rows, runs, behind = [], [], []
    for line in DOC.read_text().splitlines():
        row = re.match(r"^\| `(bench_[a-z0-9_]+)` \|", line)
        run = re.match(r"^- `(bench_[a-z0-9_]+)`:", line)
        late = re.match(r"^- `(bench_[a-z0-9_]+)` \S+: ratio", line)
        if row and row.group(1) not in ran:
            rows.append(line)
        if late and late.group(1) not in ran:
            behind.append(line)
        elif run and run.group(1) not in ran:
            runs.append(line)
    return rows, runs, behind


def render(outcomes: list[Outcome], partial: bool) -> str:
    kept_rows, kept_runs, kept_behind = previous_rows({o.module for o in outcomes}) if partial else ([], [], [])
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench.run`); do not edit by hand. Each figure is measured",
        "against a floor measured in the same run on the same machine: `ratio = ours / floor`",
        "(for rates, higher is better; for times and sizes, lower is better). See bench/README.md.",
        "",
        f"- Date: {now}" + (" (partial run: `--only`; other rows kept from earlier runs)" if partial else ""),
        f"- Machine: {os.cpu_count()} cores, {cpu_model()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.system()}",
        "",
        "| Benchmark | Figure | Ours | Floor | Ratio | Target | Met | Note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    table: list[str] = list(kept_rows)
    runs: list[str] = list(kept_runs)
    behind: list[str] = list(kept_behind)
    for outcome in outcomes:
        for f in outcome.figures:
            verdict = f.verdict()
            table.append(
                f"| `{outcome.module}` | {_cell(f.name)} | {f.ours} | {f.floor} | {f.ratio} | {_cell(f.target)} "
                f"| {verdict} | {_cell(f.note)} |"
            )
            if verdict == "behind":
                behind.append(
                    f"- `{outcome.module}` {f.name}: ratio {f.ratio} (ours {f.ours}) against "
                    f"{f.target}. {f.why_behind or 'No explanation recorded yet.'}"
                )
        status = f"FAILED ({outcome.failure})" if outcome.failure else "ok"
        runs.append(f"- `{outcome.module}`: {status}, {outcome.seconds:.0f} s ({now})")
    lines += sorted(table, key=lambda row: row.split("|")[1])  # by benchmark, figures in emitted order
    lines += ["", "## Behind target", ""]
    lines += sorted(behind) if behind else ["Every figure with a numeric target meets it in this run."]
    lines += ["", "## Runs", ""]
    lines += sorted(runs, key=lambda run: run.split(":")[0])
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="run only benchmarks whose module name contains this")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    modules = discover(args.only)
    if not modules:
        print(f"no benchmark matches {args.only!r}", file=sys.stderr)
        return 2
    outcomes = [run_one(m) for m in modules]
    print()
    for outcome in outcomes:
        for f in outcome.figures:
            print(
                f"BENCH {f.name} ours={f.ours} floor={f.floor} ratio={f.ratio}"
                + (f" target={f.target}" if f.target else "")
            )
        if outcome.failure:
            print(f"FAILED {outcome.module}: {outcome.failure}")
    if not args.no_doc:
        DOC.write_text(render(outcomes, partial=bool(args.only)))
        print(f"wrote {DOC.relative_to(REPO)}")
    return 1 if any(o.failure for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
