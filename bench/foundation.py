"""Foundation benchmarks: crmbridge profiles against the plain-library floor, in one run.

    python bench/foundation.py [--rows 1000000] [--large 5000000] [--pg-url URL]

Cases (each in its own process under /usr/bin/time, which gives elapsed time and peak RSS):
  a) CSV -> PostgreSQL insert into an empty table, through a profile with a filter and a
     4-field mapping; floor: psycopg COPY of the same file.
  b) the same upsert where 10% of the records changed; floor: COPY into a staging table, then
     one INSERT ... ON CONFLICT DO UPDATE.
  c) CSV -> SQLite insert through a profile; floor: pyarrow.csv read + sqlite3 executemany.
  d) XLSX (100k rows) read through the xlsx connector; floor: python-calamine reading every row.
  e) with --large N: case a) with N rows, to show peak RSS stays flat.
Prints a Markdown table (rows/s, peak RSS, share of the floor) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "crmbridge_bench"

COLUMNS = (
    "contact_id text primary key, first_name text, last_name text, email text, company text, "
    "title text, phone text, mobile text, street text, city text, postal_code text, "
    "country text, lead_score integer, created_at timestamp"
)
MAPPED = "contact_id text primary key, email text, full_name text, company text, title text"


@dataclass
class Result:
    case: str
    rows: int
    seconds: float
    peak_mb: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def timed(case: str, rows: int, argv: list[str]) -> Result:
    """Run ``argv`` under /usr/bin/time; its elapsed seconds and peak RSS."""
    cmd = ["/usr/bin/time", "-f", "BENCH %e %M", *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        sys.exit(f"{case} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("BENCH ")][-1]
    _, elapsed, peak_kb = line.split()
    return Result(case, rows, float(elapsed), int(peak_kb) / 1024)


def psql(sql: str, url: str = PG_URL) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def ensure_data(rows: int) -> tuple[Path, Path]:
    OUT.mkdir(exist_ok=True)
    csv_path = OUT / f"contacts_{rows}.csv"
    changed = OUT / f"contacts_{rows}_changed.csv"
    gen = [sys.executable, str(HERE / "generate.py")]
    if not csv_path.exists():
        subprocess.run([*gen, "contacts", "--rows", str(rows), "--out", str(csv_path)], check=True)
    if not changed.exists():
        subprocess.run(
            [*gen, "changed", "--percent", "10", "--src", str(csv_path), "--out", str(changed)],
            check=True,
        )
    return csv_path, changed


def profile(path: Path, csv_path: Path, url: str, table: str, mode: str) -> Path:
    path.write_text(
        textwrap.dedent(f"""\
        name: bench-{mode}
        source:
          connection: {{type: csv, path: "{csv_path.parent}"}}
          object: {csv_path.name}
          types: {{lead_score: integer}}
          filter: lead_score >= 20
        target:
          connection: {{type: sql, url: "{url}"}}
          object: {table}
          mode: {mode}
          match_keys: [contact_id]
        mapping:
          contact_id: contact_id
          email: lower(email)
          full_name: first_name || ' ' || last_name
          company: company
          title: title
        batch_size: 50000
        """),
        encoding="utf-8",
    )
    return path


def crmbridge(profile_path: Path) -> list[str]:
    out = OUT / "runs" / profile_path.stem
    return [
        sys.executable,
        "-m",
        "crmbridge.cli",
        "run",
        str(profile_path),
        "--no-progress",
        "-o",
        str(out),
    ]


# -- floors (run as subprocesses of this script) ----------------------------------------------
def floor_copy(csv_path: str, url: str, table: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with (
            cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            open(csv_path, "rb") as f,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        conn.commit()


def floor_upsert(csv_path: str, url: str, table: str) -> None:
    import psycopg

    cols = [c.split()[0] for c in COLUMNS.split(", ")]
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
    distinct = (
        f"({', '.join(f'{table}.{c}' for c in cols[1:])}) IS DISTINCT FROM "
        f"({', '.join(f'excluded.{c}' for c in cols[1:])})"
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE staging (LIKE {table})")
        with (
            cur.copy("COPY staging FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            open(csv_path, "rb") as f,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        cur.execute(
            f"INSERT INTO {table} SELECT * FROM staging ON CONFLICT (contact_id) "
            f"DO UPDATE SET {sets} WHERE {distinct}"
        )
        conn.commit()


def floor_sqlite(csv_path: str, db: str) -> None:
    import sqlite3

    import pyarrow.csv as pacsv

    con = sqlite3.connect(db)
    con.execute(f"CREATE TABLE contacts ({COLUMNS})")
    reader = pacsv.open_csv(
        csv_path, convert_options=pacsv.ConvertOptions(column_types={"postal_code": "string"})
    )
    for batch in reader:
        rows = zip(*(c.to_pylist() for c in batch.columns), strict=True)
        con.executemany(f"INSERT INTO contacts VALUES ({', '.join('?' * 14)})", rows)
    con.commit()
    con.close()


def floor_calamine(xlsx: str) -> None:
    from python_calamine import CalamineWorkbook

    sheet = CalamineWorkbook.from_path(xlsx).get_sheet_by_index(0)
    count = sum(1 for _ in sheet.iter_rows())
    print(count)


def crmbridge_xlsx_read(xlsx: str) -> None:
    from crmbridge.connections import inline_connection
    from crmbridge.connectors.base import ReadRequest

    path = Path(xlsx)
    conn = inline_connection("bench", "xlsx", {"path": str(path.parent)})
    with conn.connector() as connector:
        count = sum(b.num_rows for b in connector.read(ReadRequest(path.name, batch_size=50_000)))
    print(count)


FLOORS = {
    "floor-copy": floor_copy,
    "floor-upsert": floor_upsert,
    "floor-sqlite": floor_sqlite,
    "floor-calamine": floor_calamine,
    "crmbridge-xlsx": crmbridge_xlsx_read,
}


def me(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in FLOORS:
        FLOORS[sys.argv[1]](*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=0, help="also run case a) with N rows")
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    url = args.pg_url
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    sa_url += ("&" if "?" in sa_url else "?") + f"options=-csearch_path%3D{SCHEMA}"
    schema_url = url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{SCHEMA}"
    csv_path, changed = ensure_data(args.rows)
    n = args.rows
    results: list[tuple[Result, Result | None]] = []

    psql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}", url)
    psql(f"CREATE TABLE {SCHEMA}.floor ({COLUMNS}); CREATE TABLE {SCHEMA}.target ({MAPPED})", url)
    floor_a = timed("a) floor: COPY", n, me("floor-copy", str(csv_path), schema_url, "floor"))
    ours_a = timed(
        "a) CSV→PostgreSQL insert",
        n,
        crmbridge(profile(OUT / "insert.yaml", csv_path, sa_url, "target", "insert")),
    )
    results.append((ours_a, floor_a))

    floor_b = timed(
        "b) floor: staging upsert", n, me("floor-upsert", str(changed), schema_url, "floor")
    )
    ours_b = timed(
        "b) CSV→PostgreSQL upsert, 10% changed",
        n,
        crmbridge(profile(OUT / "upsert.yaml", changed, sa_url, "target", "upsert")),
    )
    results.append((ours_b, floor_b))

    db = OUT / "floor.sqlite"
    db.unlink(missing_ok=True)
    floor_c = timed("c) floor: pyarrow + sqlite3", n, me("floor-sqlite", str(csv_path), str(db)))
    ours_db = OUT / "ours.sqlite"
    ours_db.unlink(missing_ok=True)
    import sqlite3

    con = sqlite3.connect(ours_db)
    con.execute(f"CREATE TABLE target ({MAPPED})")
    con.close()
    ours_c = timed(
        "c) CSV→SQLite insert",
        n,
        crmbridge(
            profile(OUT / "sqlite.yaml", csv_path, f"sqlite:///{ours_db}", "target", "insert")
        ),
    )
    results.append((ours_c, floor_c))

    xlsx = OUT / f"contacts_{args.xlsx_rows}.xlsx"
    if not xlsx.exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate.py"),
                "xlsx",
                "--rows",
                str(args.xlsx_rows),
                "--out",
                str(xlsx),
            ],
            check=True,
        )
    floor_d = timed("d) floor: calamine rows", args.xlsx_rows, me("floor-calamine", str(xlsx)))
    ours_d = timed("d) XLSX read (connector)", args.xlsx_rows, me("crmbridge-xlsx", str(xlsx)))
    results.append((ours_d, floor_d))

    if args.large:
        big, _ = ensure_data(args.large)
        psql(f"TRUNCATE {SCHEMA}.target", url)
        ours_e = timed(
            f"e) CSV→PostgreSQL insert, {args.large:,} rows",
            args.large,
            crmbridge(profile(OUT / "insert_large.yaml", big, sa_url, "target", "insert")),
        )
        results.append((ours_e, None))

    print(
        f"\nmachine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}\n"
    )
    print("| case | rows | seconds | rows/s | peak RSS | floor rows/s | floor peak RSS | share |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for ours, floor in results:
        share = f"{ours.rate / floor.rate:.0%}" if floor else ""
        f_rate = f"{floor.rate:,.0f}" if floor else ""
        f_rss = f"{floor.peak_mb:.0f} MB" if floor else ""
        print(
            f"| {ours.case} | {ours.rows:,} | {ours.seconds:.1f} | {ours.rate:,.0f} | "
            f"{ours.peak_mb:.0f} MB | {f_rate} | {f_rss} | {share} |"
        )
    psql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE", url)


if __name__ == "__main__":
    main()
