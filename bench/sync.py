"""Two-way sync at scale: how the second sync compares with the first.

    python bench/sync.py [--links 1000000] [--changed 0.01] [--sugar-accounts 20000]
                         [--cases pg,sugarcrm] [--pg-url postgresql://postgres@127.0.0.1:5432/crmbridge_bench]
                         [--out bench/out/sync]

Case ``pg``: two PostgreSQL tables (schemas ``sync_a`` and ``sync_b``) holding the same
``--links`` records, each with a modified column a trigger moves on every update; a sync
profile pairs them by a code (``link.a: [code]``) and keeps five fields in step. Case
``sugarcrm``: a PostgreSQL table and the Accounts of a SugarCRM sandbox (its own process, on
a real port) with ``--sugar-accounts`` records, paired by name.

Each case runs ``crmbridge sync`` as its own process, timed with its peak RSS from
``/usr/bin/time``, in this order: **first** (``--accept-links``: links every record, writes
nothing else), **changed** (after ``--changed`` of the records were changed on each side,
other fields on each side), **echo** (right after: the records the changed sync wrote are
read back, and must compare unchanged), **quiet** (nothing changed: a sync reads again the
changes of the minute before the newest one it saw, ``overlap_seconds``), **quiet, no
overlap** (the same with ``overlap_seconds: 0`` on both sides). It prints a Markdown table:
seconds, share of the first sync, peak RSS, records read and fetched per side, writes per
side, and the targets (changed <= 5% of first, quiet <= 2%).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIME_SAYS = ("BENCH-RSS ", "Command exited with non-zero status", "Command terminated by")
FIELDS = ("name", "phone", "city", "amount", "notes")
STEPS = ("first", "changed", "echo", "quiet", "quiet, no overlap")
#: the benchmark's own crmbridge homes keep the saved connection's secret under this
PASSPHRASE = "bench"
TARGETS = {"changed": 0.05, "quiet": 0.02, "quiet, no overlap": 0.02}

PG_PROFILE = """\
name: bench-sync
a:
  connection: {{type: sql, url: "{url}", schema: sync_a}}
  object: items
  modified: updated_at
b:
  connection: {{type: sql, url: "{url}", schema: sync_b}}
  object: items
  modified: modified_at
link: {{a: [code], b: [code]}}
fields:
  - {{a: name, b: name}}
  - {{a: phone, b: phone}}
  - {{a: city, b: city}}
  - {{a: amount, b: amount}}
  - {{a: notes, b: notes}}
conflicts: {{policy: newest}}
"""

SUGAR_PROFILE = """\
name: bench-sync-sugar
a:
  connection: {{type: sql, url: "{url}", schema: sync_a}}
  object: items
  modified: updated_at
b:
  connection: crm
  object: Accounts
  modified: date_modified
link: {{a: [name], b: [name]}}
fields:
  - {{a: name, b: name}}
  - {{a: phone, b: phone_office}}
  - {{a: city, b: billing_address_city}}
  - {{a: notes, b: description}}
conflicts: {{policy: newest}}
"""

TOUCH = """
CREATE FUNCTION {schema}.touch() RETURNS trigger AS $$
BEGIN NEW.{column} := clock_timestamp(); RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER touch BEFORE UPDATE ON {schema}.items
    FOR EACH ROW EXECUTE FUNCTION {schema}.touch();
"""


@dataclass
class Step:
    name: str
    seconds: float
    rss_mb: float
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, *names: str) -> int:
        return sum(self.counts.get(n, 0) for n in names)


# -- PostgreSQL ----------------------------------------------------------------------------
def pg_tables(url: str, rows: int, *, b_side: bool) -> None:
    """``sync_a.items`` (and ``sync_b.items``) with ``rows`` equal records, modified times
    spread over the 30 days before an hour ago."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for schema, id_type, column in (
            ("sync_a", "bigint", "updated_at"),
            ("sync_b", "text", "modified_at"),
        ):
            if schema == "sync_b" and not b_side:
                conn.execute("DROP SCHEMA IF EXISTS sync_b CASCADE")
                continue
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(
                f"CREATE TABLE {schema}.items (id {id_type} PRIMARY KEY, code text NOT NULL, "
                "name varchar(150), phone varchar(40), city varchar(100), "
                f"amount numeric(12, 2), notes text, {column} timestamptz NOT NULL)"
            )
            ident = "g" if id_type == "bigint" else "'B' || g"
            conn.execute(
                f"INSERT INTO {schema}.items SELECT {ident}, 'C' || lpad(g::text, 8, '0'), "
                "'Company ' || g, '+1 555 ' || lpad((g % 10000)::text, 4, '0'), "
                "(ARRAY['Berlin', 'London', 'Paris', 'Zürich', 'Tokyo'])[1 + g % 5], "
                "round((g % 100000) / 7.0, 2), CASE WHEN g % 3 = 0 THEN 'note ' || g END, "
                f"now() - interval '1 hour' - (g % 2592000) * interval '1 second' "
                f"FROM generate_series(1, {rows}) g"
            )
            conn.execute(f"CREATE INDEX ON {schema}.items ({column})")  # as a real table has
            conn.execute(TOUCH.format(schema=schema, column=column))
            conn.execute(f"ANALYZE {schema}.items")


def pg_change(url: str, rows: int, share: float, *, b_side: bool) -> None:
    """Change ``share`` of the records on each side: phones on a, cities on b (other
    records on each side, so nothing conflicts)."""
    import psycopg

    step = max(1, round(1 / share))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"UPDATE sync_a.items SET phone = phone || '0' WHERE id % {step} = 0 AND id <= {rows}"
        )
        if b_side:
            conn.execute(
                f"UPDATE sync_b.items SET city = city || ' Mitte' "
                f"WHERE substr(id, 2)::bigint % {step} = {step // 2}"
            )


# -- SugarCRM ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(data: Path, accounts: int) -> tuple[subprocess.Popen[bytes], str]:
    """A sandbox in its own process, seeded with ``accounts`` Accounts (kept in ``data``)."""
    if not data.exists():
        from crmbridge.sandbox.sugarcrm import SugarSandbox

        SugarSandbox(data, accounts=accounts).close()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmbridge",
            "sandbox",
            "sugarcrm",
            "--port",
            str(port),
            "--data",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the sandbox did not start")


def past(data: Path) -> None:
    """The seed's modified times run on into the years ahead with many Accounts: put them in
    the hours before now, as a real CRM's are (a change made now must be newer)."""
    import sqlite3

    db = sqlite3.connect(data)
    db.execute(
        "UPDATE accounts SET date_modified = "
        "datetime('now', '-1 hours', '-' || (rowid % 86400) || ' seconds')"
    )
    db.commit()
    db.close()


def sugar_table(url: str, data: Path) -> None:
    """``sync_a.items`` holding the sandbox's Accounts (same names, phones, cities)."""
    import sqlite3

    import psycopg

    db = sqlite3.connect(data)
    rows = db.execute(
        "SELECT name, phone_office, billing_address_city, description FROM accounts "
        "WHERE deleted = 0 ORDER BY id"
    ).fetchall()
    db.close()
    pg_tables(url, 0, b_side=False)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    copy_sql = "COPY sync_a.items (id, code, name, phone, city, notes, updated_at) FROM STDIN"
    with (
        psycopg.connect(url, autocommit=True) as conn,
        conn.cursor() as cur,
        cur.copy(copy_sql) as copy,
    ):
        for i, (name, phone, city, notes) in enumerate(rows, 1):
            # modified times spread over the hours before now, as a real table's
            when = start - dt.timedelta(seconds=i)
            copy.write_row((i, f"C{i}", name, phone, city, notes or None, when))


def sugar_change(url: str, data: Path, share: float) -> None:
    import sqlite3

    import psycopg

    step = max(1, round(1 / share))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"UPDATE sync_a.items SET phone = phone || '0' WHERE id % {step} = 0")
    db = sqlite3.connect(data)
    db.execute(
        "UPDATE accounts SET billing_address_city = billing_address_city || ' Mitte', "
        f"date_modified = datetime('now') WHERE deleted = 0 AND rowid % {step} = {step // 2}"
    )
    db.commit()
    db.close()


# -- running a sync ------------------------------------------------------------------------
def sync(profile: Path, home: Path, name: str, *extra: str) -> Step:
    cmd = ["/usr/bin/time", "-f", "BENCH-RSS %M", sys.executable, "-m", "crmbridge", "sync"]
    cmd += [str(profile), "--json", *extra]
    env = {**os.environ, "CRMBRIDGE_HOME": str(home), "CRMBRIDGE_PASSPHRASE": PASSPHRASE}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    rss = [ln for ln in proc.stderr.splitlines() if ln.startswith("BENCH-RSS ")]
    peak = int(rss[-1].split()[1]) / 1024 if rss else 0.0
    if proc.returncode != 0:
        said = [ln for ln in proc.stderr.splitlines() if not ln.startswith(TIME_SAYS)]
        raise SystemExit(f"{name}: exit {proc.returncode}: {proc.stdout[-500:]} {said[-5:]}")
    answer: dict[str, Any] = json.loads(proc.stdout)
    return Step(name, seconds, peak, answer["counts"])


def save_crm(home: Path, url: str) -> None:
    """The saved connection ``crm`` to the sandbox (user admin)."""
    cmd = [sys.executable, "-m", "crmbridge", "connection", "add", "crm", "--type", "sugarcrm"]
    cmd += ["--set", f"url={url}", "--set", "username=admin"]
    env = {**os.environ, "CRMBRIDGE_HOME": str(home), "CRMBRIDGE_PASSPHRASE": PASSPHRASE}
    env["CRMBRIDGE_SECRET_PASSWORD"] = "admin"
    subprocess.run(cmd, env=env, check=True, capture_output=True)


def run_case(profile: Path, home: Path, change: Any, setup: Any = None) -> list[Step]:
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    if setup is not None:
        setup(home)
    steps = [sync(profile, home, "first", "--accept-links")]
    print(f"  first: {steps[0].seconds:.1f} s", file=sys.stderr)
    change()
    for name in STEPS[1:]:
        if name == "quiet, no overlap":
            # the changes of the last minute before the newest one seen are read again by
            # every sync (overlap_seconds, 60 by default): without the overlap, they are not
            text = profile.read_text(encoding="utf-8")
            for side in ("a", "b"):
                text = text.replace(f"\n{side}:\n", f"\n{side}:\n  overlap_seconds: 0\n", 1)
            profile.write_text(text, encoding="utf-8")
        steps.append(sync(profile, home, name))
        print(f"  {name}: {steps[-1].seconds:.1f} s", file=sys.stderr)
    return steps


def table(title: str, records: int, steps: list[Step]) -> str:
    first = steps[0].seconds
    lines = [
        f"**{title}**, {records:,} linked records",
        "",
        "| sync | seconds | share of first | target | peak RSS | read a / b | fetched a / b "
        "| written to a | written to b | links saved |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for step in steps:
        share = step.seconds / first
        target = TARGETS.get(step.name)
        verdict = ""
        if target is not None:
            verdict = f"≤ {target:.0%}: " + ("met" if share <= target else "**missed**")
        writes = {
            side: step.count(*(f"{d}.{o}" for o in ("created", "updated", "deleted")))
            for side, d in (("a", "b_to_a"), ("b", "a_to_b"))
        }
        lines.append(
            f"| {step.name} | {step.seconds:.1f} | {share:.1%} | {verdict} | "
            f"{step.rss_mb:.0f} MB | {step.count('a.read'):,} / {step.count('b.read'):,} | "
            f"{step.count('a.fetched'):,} / {step.count('b.fetched'):,} | {writes['a']:,} | "
            f"{writes['b']:,} | {step.count('links.saved'):,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--sugar-accounts", type=int, default=20_000)
    parser.add_argument("--cases", default="pg,sugarcrm")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/crmbridge_bench")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "sync")
    args = parser.parse_args()
    import psycopg

    base, _, database = args.pg_url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
    url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
    args.out.mkdir(parents=True, exist_ok=True)
    cases = args.cases.split(",")
    reports = []
    if "pg" in cases:
        print(f"pg: {args.links:,} records on each side", file=sys.stderr)
        pg_tables(args.pg_url, args.links, b_side=True)
        profile = args.out / "pg.sync.yaml"
        profile.write_text(PG_PROFILE.format(url=url), encoding="utf-8")
        steps = run_case(
            profile,
            args.out / "home-pg",
            lambda: pg_change(args.pg_url, args.links, args.changed, b_side=True),
        )
        reports.append(table("PostgreSQL ↔ PostgreSQL", args.links, steps))
    if "sugarcrm" in cases:
        data = args.out / f"sandbox-{args.sugar_accounts}.sqlite"
        print(f"sugarcrm: {args.sugar_accounts:,} Accounts", file=sys.stderr)
        fresh = args.out / "sandbox-run.sqlite"
        proc = None
        try:
            if not data.exists():
                from crmbridge.sandbox.sugarcrm import SugarSandbox

                SugarSandbox(data, accounts=args.sugar_accounts).close()
            shutil.copyfile(data, fresh)
            past(fresh)
            sugar_table(args.pg_url, fresh)
            proc, sugar_url = start_sandbox(fresh, args.sugar_accounts)
            profile = args.out / "sugarcrm.sync.yaml"
            profile.write_text(SUGAR_PROFILE.format(url=url), "utf-8")
            steps = run_case(
                profile,
                args.out / "home-sugar",
                lambda: sugar_change(args.pg_url, fresh, args.changed),
                lambda home: save_crm(home, sugar_url),
            )
            reports.append(table("PostgreSQL ↔ SugarCRM sandbox", args.sugar_accounts, steps))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait()
    text = "\n\n".join(reports)
    (args.out / "sync.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
