"""SugarCRM upsert: how many API calls a profile makes per record, against the sandbox.

    python bench/sugarcrm.py [--contacts 2000]

Upserts --contacts Contacts by e-mail (half of them exist, with another title; half are new)
from a CSV file through a profile (`crmbridge run`, in its own process under /usr/bin/time).
The sandbox runs inside this process, so that `faults.call_counts()` tells the lookup
(get_entry_list) and write (set_entries) calls. Prints a Markdown table for
docs/benchmarks.md. The extraction benchmark, side by side with a raw HTTP loop, is a case of
`bench/compare.py`.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crmbridge.sandbox.sugarcrm import SugarSandbox

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
HOME = OUT / "sugar_home"  # CRMBRIDGE_HOME of the runs: saved connections, run history
TITLE = "Bench Buyer"  # the title every upserted contact gets


@dataclass
class Result:
    case: str
    rows: int
    seconds: float
    peak_mb: float
    #: user + system CPU seconds of the client process
    cpu: float = 0.0
    output: str = ""
    #: seconds the client process needs to start (`crmbridge --version`)
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


def crmbridge(*args: str) -> list[str]:
    return [sys.executable, "-m", "crmbridge.cli", *args]


# -- the sandbox ---------------------------------------------------------------------------
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


def run_profile(case: str, rows: int, profile: Path) -> Result:
    out = OUT / "runs" / profile.stem
    return timed(case, rows, crmbridge("run", str(profile), "--no-progress", "-o", str(out)))


# -- upsert -----------------------------------------------------------------------------
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=2_000, help="records to upsert")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    fresh_home()
    startup = min(timed("start-up", 1, crmbridge("--version")).seconds for _ in range(3))
    upserted = upsert(args.contacts, startup)
    print(
        f"\nmachine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; sandbox and client share the machine\n"
    )
    print_upsert(upserted)


if __name__ == "__main__":
    main()
