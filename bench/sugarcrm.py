"""SugarCRM benchmarks: crmbridge profiles against a raw HTTP loop on the same sandbox, same run.

    python bench/sugarcrm.py [--accounts 10000] [--contacts 2000] [--latency 0.05] [--repeat 3]

Cases (each client in its own process under /usr/bin/time: elapsed time, CPU time, peak RSS):
  a) extraction of every Account (12 fields) through a profile (`crmbridge run`, sugarcrm v4_1
     -> JSON Lines file), with the connector's default concurrency 4 and with concurrency 1;
     floor: a minimal sequential loop of v4_1 get_entry_list calls with httpx (same page size,
     fields and order), decoding the JSON only. The sandbox serves a pre-seeded SQLite file
     (bench/out/sugar_<accounts>.sqlite, seeded once) from its own process:
     `python -m crmbridge.sandbox.sugarcrm --port 0 --data FILE`.
  b) the same against the same file served with `faults.latency` seconds added to every call
     (as a remote server would), to show what concurrent page fetching buys.
  c) upsert of --contacts Contacts by e-mail (half of them exist, with another title; half are
     new) from a CSV file through a profile; the sandbox runs inside this process so that
     `faults.call_counts()` tells the lookup (get_entry_list) and write (set_entries) calls.
Each extraction case runs --repeat times, interleaved; the fastest run is reported. Prints
Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crmbridge.sandbox.sugarcrm import SugarSandbox

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
HOME = OUT / "sugar_home"  # CRMBRIDGE_HOME of the runs: saved connections, run history
PAGE_SIZE = 200  # the connector's default page_size
FIELDS = [
    "id", "name", "date_modified", "account_type", "industry", "billing_address_street",
    "billing_address_city", "billing_address_postalcode", "billing_address_country",
    "phone_office", "website", "email1",
]  # fmt: skip
TITLE = "Bench Buyer"  # the title every upserted contact gets
LATENCY_SANDBOX = """\
import sys, threading
from crmbridge.sandbox.sugarcrm import SugarSandbox
sandbox = SugarSandbox(sys.argv[1])
sandbox.faults.latency = float(sys.argv[2])
server = sandbox.serve(port=0)
print(f"SugarCRM sandbox at {server.url}", flush=True)
threading.Event().wait()
"""


@dataclass
class Result:
    case: str
    rows: int
    seconds: float
    peak_mb: float
    #: user + system CPU seconds of the client process
    cpu: float = 0.0
    output: str = ""
    #: seconds the client process needs to start (imports), see :func:`startups`
    startup: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def net_rate(self) -> float:
        """Records per second once the process has started."""
        return self.rows / max(0.01, self.seconds - self.startup)


def timed(case: str, rows: int, argv: list[str]) -> Result:
    """Run ``argv`` under /usr/bin/time; its elapsed seconds, peak RSS, CPU time and stdout."""
    cmd = ["/usr/bin/time", "-f", "BENCH %e %M %U %S", *argv]
    env = {k: v for k, v in os.environ.items() if k != "CRMBRIDGE_PASSPHRASE"}
    env["CRMBRIDGE_HOME"] = str(HOME)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        sys.exit(f"{case} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("BENCH ")][-1]
    _, elapsed, peak_kb, user, system = line.split()
    cpu = float(user) + float(system)
    return Result(case, rows, float(elapsed), int(peak_kb) / 1024, cpu, proc.stdout)


def me(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def crmbridge(*args: str) -> list[str]:
    return [sys.executable, "-m", "crmbridge.cli", *args]


# -- the sandbox ----------------------------------------------------------------------------
def ensure_data(accounts: int) -> Path:
    """The seeded sandbox file (seeded once; a few seconds for 10,000 accounts)."""
    from crmbridge.sandbox.sugarcrm import SugarSandbox

    OUT.mkdir(exist_ok=True)
    path = OUT / f"sugar_{accounts}.sqlite"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        SugarSandbox(partial, accounts=accounts).close()
        partial.rename(path)
    return path


@contextmanager
def sandbox_process(data: Path, latency: float) -> Iterator[str]:
    """A sandbox serving ``data`` from its own process; yields its URL."""
    if latency:  # the CLI has no latency option: set the knob from a tiny script
        argv = [sys.executable, "-c", LATENCY_SANDBOX, str(data), str(latency)]
    else:
        argv = [sys.executable, "-m", "crmbridge.sandbox.sugarcrm", "--port", "0"]
        argv += ["--data", str(data)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if not first.startswith("SugarCRM sandbox at "):
            sys.exit(f"the sandbox did not start: {first!r}")
        yield first.split(" at ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def save_connection(name: str, url: str, **settings: object) -> None:
    """Save a v4_1 sugarcrm connection in HOME (the password is stored encrypted)."""
    from crmbridge.connections import ConnectionStore, KeyFileKeySource

    values = {"url": url, "username": "admin", "password": "admin", "api": "v4_1", **settings}
    store = ConnectionStore(HOME, key_source=KeyFileKeySource(HOME / "secret.key"))
    store.add(name, "sugarcrm", values, replace=True)


def fresh_home() -> None:
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    HOME.chmod(stat.S_IRWXU)


# -- a) and b): extraction ------------------------------------------------------------------
def extract_profile(connection: str) -> Path:
    path = OUT / f"sugar_extract_{connection}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: bench-extract-{connection}
        source:
          connection: {connection}
          object: Accounts
          fields: [{", ".join(FIELDS)}]
        target:
          connection: {{type: jsonl, path: "{OUT / "sugar_extract"}"}}
          object: {connection}.jsonl
          mode: insert
        """),
        encoding="utf-8",
    )
    return path


def run_profile(case: str, rows: int, profile: Path) -> Result:
    out = OUT / "runs" / profile.stem
    return timed(case, rows, crmbridge("run", str(profile), "--no-progress", "-o", str(out)))


def raw_loop(url: str, page_size: str) -> None:
    """The floor: log in, then get_entry_list page after page, decoding the JSON only."""
    import hashlib
    import json

    import httpx

    endpoint = f"{url}/service/v4_1/rest.php"

    def call(client: httpx.Client, method: str, args: list[object]) -> dict[str, object]:
        form = {"method": method, "input_type": "JSON", "response_type": "JSON"}
        response = client.post(endpoint, data={**form, "rest_data": json.dumps(args)})
        response.raise_for_status()
        answer: dict[str, object] = response.json()
        return answer

    with httpx.Client(timeout=120) as client:
        auth = {"user_name": "admin", "password": hashlib.md5(b"admin").hexdigest()}
        session = call(client, "login", [auth, "bench", []])["id"]
        offset, count = 0, 0
        order = "date_modified ASC, id ASC"  # the connector's order
        while True:
            args = [session, "Accounts", "", order, offset, FIELDS, [], int(page_size), 0, False]
            answer = call(client, "get_entry_list", args)
            entries = answer["entry_list"]
            assert isinstance(entries, list)
            count += len(entries)
            offset += len(entries)
            if not entries or offset >= int(str(answer["total_count"])):
                break
    print(count)


RAW = "raw loop (httpx, sequential)"
C4 = "profile, concurrency 4"
C1 = "profile, concurrency 1"


def startups(repeat: int) -> dict[str, float]:
    """Start-up seconds of each kind of client: the CLI's imports, and python with httpx."""
    cli = min(timed("start-up", 1, crmbridge("--version")).seconds for _ in range(repeat))
    bare = [sys.executable, "-c", "import hashlib, json, httpx"]
    raw = min(timed("start-up", 1, bare).seconds for _ in range(repeat))
    return {RAW: raw, C4: cli, C1: cli}


def extraction(
    data: Path, rows: int, latency: float, repeat: int, startup: dict[str, float]
) -> dict[str, Result]:
    """The fastest run of each client against one sandbox process."""
    tag = "lat" if latency else "local"
    # case -> the connection of a profile run, None for the raw loop
    clients = {RAW: None, C4: f"sugar_{tag}_c4", C1: f"sugar_{tag}_c1"}
    best: dict[str, Result] = {}
    with sandbox_process(data, latency) as url:
        for target in filter(None, clients.values()):
            save_connection(target, url, concurrency=int(target[-1]))
        for _ in range(repeat):
            for case, connection in clients.items():
                if connection is None:
                    result = timed(case, rows, me("raw-loop", url, str(PAGE_SIZE)))
                    got = int(result.output.split()[-1])
                else:
                    result = run_profile(case, rows, extract_profile(connection))
                    got = _lines(OUT / "sugar_extract" / f"{connection}.jsonl")
                if got != rows:
                    sys.exit(f"{case}: {got} records instead of {rows}")
                result.startup = startup[case]
                if case not in best or result.seconds < best[case].seconds:
                    best[case] = result
    return best


def _lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


# -- c): upsert -----------------------------------------------------------------------------
def upsert_source(path: Path, emails: list[tuple[str, str, str]], count: int) -> None:
    """``count`` contacts: the first half those of ``emails``, the rest new."""
    existing = emails[: count // 2]
    new = [(f"Bench{n}", f"Person{n}", f"bench.person{n}@example.org") for n in range(count)]
    rows = [*existing, *new[: count - len(existing)]]
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["first_name", "last_name", "email", "title"])
        writer.writerows([*row, TITLE] for row in rows)


def upsert_profile(source: Path) -> Path:
    path = OUT / "sugar_upsert.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: bench-upsert
        source:
          connection: {{type: csv, path: "{source.parent}"}}
          object: {source.name}
        target:
          connection: sugar_upsert
          object: Contacts
          mode: upsert
          match_keys: [email1]
        mapping:
          first_name: first_name
          last_name: last_name
          email1: email
          title: title
        """),
        encoding="utf-8",
    )
    return path


@dataclass
class Upsert:
    result: Result
    created: int
    updated: int
    lookups: int
    writes: int
    other: int


def upsert(count: int, startup: float) -> Upsert:
    """Upsert ``count`` Contacts through a profile against an in-process sandbox."""
    from crmbridge.sandbox.sugarcrm import SugarSandbox

    sandbox = SugarSandbox(accounts=max(1, count // 4))  # 2 contacts per account
    try:
        emails = sandbox.execute(
            "SELECT c.first_name, c.last_name, e.email_address FROM contacts c "
            "JOIN email_addr_bean_rel r ON r.bean_id = c.id AND r.bean_module = 'Contacts' "
            "AND r.primary_address = 1 AND r.deleted = 0 "
            "JOIN email_addresses e ON e.id = r.email_address_id "
            "WHERE c.deleted = 0 ORDER BY c.id"
        )
        source = OUT / "sugar_upsert_contacts.csv"
        known = [(r["first_name"], r["last_name"], r["email_address"]) for r in emails]
        upsert_source(source, known, count)
        before = _live_contacts(sandbox)
        with sandbox.serve() as server:
            save_connection("sugar_upsert", server.url)
            sandbox.faults.reset()
            result = run_profile("upsert", count, upsert_profile(source))
            result.startup = startup
            calls = sandbox.faults.call_counts()
        created = _live_contacts(sandbox) - before
        titled = sandbox.execute("SELECT COUNT(*) AS n FROM contacts WHERE title = ?", (TITLE,))
        lookups = calls.pop("v4_1:get_entry_list", 0)
        writes = calls.pop("v4_1:set_entries", 0)
        updated = int(titled[0]["n"]) - created
        if created + updated != count:
            sys.exit(f"upsert: {created} created + {updated} updated is not {count}")
        return Upsert(result, created, updated, lookups, writes, sum(calls.values()))
    finally:
        sandbox.close()


def _live_contacts(sandbox: SugarSandbox) -> int:
    rows = sandbox.execute("SELECT COUNT(*) AS n FROM contacts WHERE deleted = 0")
    return int(rows[0]["n"])


# -- report ---------------------------------------------------------------------------------
def print_extraction(servers: dict[str, dict[str, Result]]) -> None:
    print(
        "| server | client | records | seconds | records/s | peak RSS | client CPU "
        "| share of the raw loop | start-up excluded: records/s, share |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for server, results in servers.items():
        raw = results[RAW]
        for case, r in results.items():
            share = "" if case == RAW else f"{r.rate / raw.rate:.0%}"
            net = "" if case == RAW else f", {r.net_rate / raw.net_rate:.0%}"
            print(
                f"| {server} | {case} | {r.rows:,} | {r.seconds:.1f} | {r.rate:,.0f} | "
                f"{r.peak_mb:.0f} MB | {r.cpu:.1f} s | {share} | {r.net_rate:,.0f}{net} |"
            )
    print()
    for server, results in servers.items():
        speedup = results[C1].seconds / results[C4].seconds
        net_speedup = results[C4].net_rate / results[C1].net_rate
        print(
            f"- concurrency 4 vs 1, {server}: x{speedup:.2f} "
            f"(start-up excluded: x{net_speedup:.2f})"
        )


def print_upsert(u: Upsert) -> None:
    r = u.result
    print(
        "| records | created | updated | lookup calls | write calls | other calls "
        "| calls per record | seconds | records/s | start-up excluded | peak RSS |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_record = (u.lookups + u.writes + u.other) / r.rows
    print(
        f"| {r.rows:,} | {u.created:,} | {u.updated:,} | {u.lookups} | {u.writes} | {u.other} "
        f"| {per_record:.3f} | {r.seconds:.1f} | {r.rate:,.0f} | {r.net_rate:,.0f} "
        f"| {r.peak_mb:.0f} MB |"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "raw-loop":
        raw_loop(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=10_000, help="records to extract")
    parser.add_argument("--contacts", type=int, default=2_000, help="records to upsert")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per call")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each extraction case")
    args = parser.parse_args()
    data = ensure_data(args.accounts)
    fresh_home()
    shutil.rmtree(OUT / "sugar_extract", ignore_errors=True)
    (OUT / "sugar_extract").mkdir()
    startup = startups(args.repeat)
    ms = f"{args.latency * 1000:.0f} ms latency"
    servers = {
        "local": extraction(data, args.accounts, 0.0, args.repeat, startup),
        ms: extraction(data, args.accounts, args.latency, args.repeat, startup),
    }
    upserted = upsert(args.contacts, startup[C4])

    print(
        f"\nmachine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; sandbox and client share the machine\n"
    )
    print_extraction(servers)
    print(
        f"- start-up (imports) alone: crmbridge {startup[C4]:.1f} s, "
        f"python + httpx {startup[RAW]:.1f} s\n"
    )
    print_upsert(upserted)


if __name__ == "__main__":
    main()
