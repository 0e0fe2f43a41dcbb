"""crmbridge side by side with the floor, dlt and sling: the same work, interleaved rounds.

    python bench/compare.py [--rows 1000000] [--xlsx-rows 100000] [--accounts 10000]
                            [--rounds 3] [--cases insert,upsert,...] [--tools floor,crmbridge,...]
                            [--pg-url URL] [--write-docs]

Cases (see bench/README.md): insert, upsert, xlsx, rerun (PostgreSQL, `cases.py`), sugarcrm
and sugarcrm-latency (the SugarCRM sandbox, `sugar_cases.py`). Tools: the floor (the best plain
implementation, `tools.py`), crmbridge (`python -m crmbridge run PROFILE --no-progress`), dlt
and sling (the `bench` extra; skipped when not installed). Each round runs every case with
every tool in that order, each tool in its own process after the same reset, timed as a whole
(wall clock) with its peak RSS from `/usr/bin/time`, then checked: a tool that loaded other
rows than the floor fails the case. Prints a Markdown report and writes it with the raw
measurements to bench/out/compare.{md,json}; `--write-docs` puts it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from cases import HERE, TOOLS, Check, PgCase, Setup, Step, sling_binary, tool_available
from report import machine, markdown, summarize, write_docs
from sugar_cases import SugarCase

OUT = HERE / "out"
PG_URL = "postgresql://postgres@127.0.0.1:5432/crmbridge_bench"
#: lines of /usr/bin/time itself
TIME_SAYS = ("BENCH-RSS ", "Command exited with non-zero status", "Command terminated by")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CASES = ("insert", "upsert", "xlsx", "rerun", "sugarcrm", "sugarcrm-latency")


class Case(Protocol):
    kind: str
    rows: int
    tools: tuple[str, ...]

    @property
    def title(self) -> str: ...
    @property
    def floor(self) -> str: ...
    def open(self) -> None: ...
    def close(self) -> None: ...
    def prepare(self, tool: str) -> list[Step]: ...
    def check(self, tool: str, floor: Check | None) -> Check: ...


@dataclass
class Measurement:
    round: int
    case: str
    tool: str
    #: wall-clock seconds of the measured process (for a re-run: the second run)
    seconds: float
    #: the largest peak RSS of the measured processes, MB
    peak_mb: float
    ok: bool
    note: str = ""
    #: a re-run: seconds of the first run
    first_seconds: float | None = None


def environment(step: Step) -> dict[str, str]:
    """This process's environment with the step's on top; no crmbridge passphrase."""
    env = {k: v for k, v in os.environ.items() if k != "CRMBRIDGE_PASSPHRASE"}
    return {**env, **step.env}


def timed(step: Step) -> tuple[float, float, int, str]:
    """Seconds, peak RSS (MB), exit code and the last line of output of one process."""
    cmd = ["/usr/bin/time", "-f", "BENCH-RSS %M", *step.argv]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=environment(step), check=False)
    seconds = time.perf_counter() - start
    lines = (proc.stdout + "\n" + proc.stderr).splitlines()
    rss = [ln for ln in lines if ln.startswith("BENCH-RSS ")]
    peak = int(rss[-1].split()[1]) / 1024 if rss else 0.0
    said = [ANSI.sub("", ln).strip() for ln in lines if not ln.startswith(TIME_SAYS)]
    said = [ln for ln in said if ln]
    return seconds, peak, proc.returncode, said[-1][:300] if said else ""


def measure(case: Case, tool: str, round_: int, floor: Check | None) -> tuple[Measurement, Check]:
    steps = case.prepare(tool)
    times: list[float] = []
    peak = 0.0
    for step in steps:
        seconds, mb, code, tail = timed(step)
        times.append(seconds)
        peak = max(peak, mb)
        if code != 0:
            failed = Measurement(
                round_, case.kind, tool, seconds, peak, False, f"exit {code}: {tail}"
            )
            return failed, Check(False)
    check = case.check(tool, floor)
    first = times[0] if len(times) > 1 else None
    m = Measurement(round_, case.kind, tool, times[-1], peak, check.ok, check.note, first)
    return m, check


def run(cases: list[Case], tools: list[str], rounds: int) -> list[Measurement]:
    results: list[Measurement] = []
    with ExitStack() as stack:
        for case in cases:
            case.open()
            stack.callback(case.close)
        for round_ in range(1, rounds + 1):
            for case in cases:
                floor: Check | None = None
                for tool in (t for t in tools if t in case.tools):
                    m, check = measure(case, tool, round_, floor)
                    if tool == "floor":
                        floor = check
                    results.append(m)
                    status = "ok" if m.ok else f"FAILS: {m.note}"
                    print(
                        f"round {round_} {case.kind:<16} {tool:<9} {m.seconds:7.2f} s "
                        f"{m.peak_mb:6.0f} MB  {status}",
                        file=sys.stderr,
                        flush=True,
                    )
    return results


def ensure_data(out: Path, rows: int, xlsx_rows: int, kinds: list[str]) -> dict[str, Path]:
    """The generated files (made once, kept in ``out``)."""
    from generate import VERSION

    gen = [sys.executable, str(HERE / "generate.py")]
    files = {
        "csv": out / f"contacts_v{VERSION}_{rows}.csv",
        "changed": out / f"contacts_v{VERSION}_{rows}_changed.csv",
        "xlsx": out / f"contacts_v{VERSION}_{xlsx_rows}.xlsx",
    }
    wanted = {"csv"} if {"insert", "upsert", "rerun"} & set(kinds) else set()
    wanted |= {"changed"} if "upsert" in kinds else set()
    wanted |= {"xlsx"} if "xlsx" in kinds else set()
    commands = {
        "csv": ["contacts", "--rows", str(rows)],
        "changed": ["changed", "--src", str(files["csv"])],
        "xlsx": ["xlsx", "--rows", str(xlsx_rows)],
    }
    for name in ("csv", "changed", "xlsx"):
        path = files[name]
        if name in wanted and not path.exists():
            partial = path.with_name("partial-" + path.name)
            subprocess.run([*gen, *commands[name], "--out", str(partial)], check=True)
            partial.rename(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the CSV file")
    parser.add_argument("--xlsx-rows", type=int, default=100_000, help="rows of the XLSX file")
    parser.add_argument("--accounts", type=int, default=10_000, help="SugarCRM Accounts")
    parser.add_argument("--latency", type=float, default=0.05, help="sugarcrm-latency: s/call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--pg-url", default=PG_URL, help="database (created when missing)")
    parser.add_argument("--out", type=Path, default=OUT, help="results and work files")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    kinds = [k for k in args.cases.split(",") if k]
    wanted = [t for t in args.tools.split(",") if t]
    unknown = sorted(set(kinds) - set(CASES)) + sorted(set(wanted) - set(TOOLS))
    if unknown:
        parser.error(f"unknown case or tool: {', '.join(unknown)}")
    if "floor" not in wanted:
        parser.error("--tools must include floor: every figure is measured against it")

    setup = Setup(args.out, args.pg_url, sling_binary(), args.rows, args.xlsx_rows)
    tools = [t for t in TOOLS if t in wanted and tool_available(t, setup)]
    missing = [t for t in wanted if t not in tools]
    if missing:
        print(f"not installed, left out: {', '.join(missing)} (pip install -e '.[bench]')")
    args.out.mkdir(parents=True, exist_ok=True)
    data = ensure_data(args.out, args.rows, args.xlsx_rows, kinds)
    cases: list[Case] = []
    for kind in kinds:
        if kind.startswith("sugarcrm"):
            latency = args.latency if kind == "sugarcrm-latency" else 0.0
            cases.append(SugarCase(setup, args.accounts, latency))
        else:
            cases.append(PgCase(kind, setup, data))

    info = machine(args.pg_url, setup.sling)
    results = run(cases, tools, args.rounds)
    command = "python bench/compare.py " + shlex.join(sys.argv[1:])
    summary = summarize(cases, tools, results)
    report = markdown(summary, info, command.strip(), args.rounds, missing)
    print(report)
    (args.out / "compare.md").write_text(report, encoding="utf-8")
    document = {
        "command": command.strip(),
        "machine": info,
        "rounds": args.rounds,
        "measurements": [asdict(m) for m in results],
        "summary": summary,
    }
    (args.out / "compare.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    if args.write_docs:
        write_docs(HERE.parent / "docs" / "benchmarks.md", report)


if __name__ == "__main__":
    main()
