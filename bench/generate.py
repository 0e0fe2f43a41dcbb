"""Deterministic benchmark data: a 13-column contacts CSV, a copy with 10% changed, an XLSX.

    python bench/generate.py contacts --rows 1000000 --out bench/out/contacts_1000000.csv
    python bench/generate.py changed --src bench/out/contacts_1000000.csv --out ...
    python bench/generate.py xlsx --rows 100000 --out bench/out/contacts_100000.xlsx

The columns hold whole numbers, text (with quotes, commas and non-ASCII letters), decimals,
dates, timestamps, booleans and nulls (an empty CSV field, an empty XLSX cell). The same seed
gives the same file on every machine; `TABLE` is the PostgreSQL table every tool loads.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path

#: (column, PostgreSQL type, crmbridge `source.types` type or None for text)
COLUMNS: list[tuple[str, str, str | None]] = [
    ("contact_id", "integer", "integer"),
    ("first_name", "text", None),
    ("last_name", "text", None),
    ("email", "text", None),
    ("company", "text", None),
    ("city", "text", None),
    ("country", "text", None),
    ("lead_score", "integer", "integer"),
    ("revenue", "numeric(12,2)", "decimal"),
    ("birth_date", "date", "date"),
    ("created_at", "timestamp", "datetime"),
    ("is_customer", "boolean", "boolean"),
    ("notes", "text", None),
]
HEADER = [name for name, _, _ in COLUMNS]
KEY = "contact_id"
#: the indexes besides the primary key, the same for every tool
INDEXES = {"contacts_email": "email"}
#: every (100 / CHANGED_PERCENT)-th record of the changed file differs in these columns
CHANGED_PERCENT = 10
#: bump when the generated content changes, so that cached files are made again
VERSION = 2

FIRST = "Anna Ben Chloé David Emma Farid Greta Hugo Ines Jonas Kira Liam Maya Noah Olga Paul"
LAST = "Schmidt O'Brien Müller Nguyen Rossi García Kowalski Dubois Smith Jensen Ivanova Costa"
COMPANIES = [
    "Acme & Sons",
    "Globex",
    "Initech",
    'Umbrella "Europe"',
    "Stark Industries",
    "Soylent, Inc.",
    "Vandelay Imports",
    "Wayne Enterprises",
]
CITIES = [("Berlin", "DE"), ("Hamburg", "DE"), ("Wien", "AT"), ("Zürich", "CH"), ("Lyon", "FR")]
NOTE = 'Met at "Expo 2026", follow up'


def table_ddl(table: str) -> str:
    """CREATE TABLE and CREATE INDEX statements of the benchmark table ``table``."""
    cols = ", ".join(f"{name} {pg}" for name, pg, _ in COLUMNS)
    index = "".join(f"; CREATE INDEX {n} ON {table} ({c})" for n, c in INDEXES.items())
    return f"CREATE TABLE {table} ({cols}, PRIMARY KEY ({KEY})){index}"


def contacts(rows: int) -> Iterator[list[object]]:
    """``rows`` typed records (None is null), the same ones on every call."""
    rnd = random.Random(42)
    first, last = FIRST.split(), LAST.split()
    base = dt.datetime(2026, 1, 1)
    for i in range(1, rows + 1):
        name = rnd.choice(first)
        city, country = rnd.choice(CITIES)
        cents = rnd.randrange(0, 10**8)
        born = dt.date(1950, 1, 1) + dt.timedelta(days=rnd.randrange(20_000))
        created = base + dt.timedelta(seconds=rnd.randrange(365 * 86_400))
        yield [
            i,
            name,
            rnd.choice(last),
            f"{name.lower()}.{i}@example.com",
            rnd.choice(COMPANIES),
            city,
            None if i % 13 == 0 else country,
            None if i % 11 == 0 else rnd.randrange(0, 101),
            f"{cents // 100}.{cents % 100:02d}",
            None if i % 9 == 0 else born,
            created,
            rnd.random() < 0.3,
            NOTE if i % 5 == 0 else None,
        ]


def csv_text(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value  # dates and datetimes print as ISO 8601 (with a space before the time)


def write_contacts(rows: int, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for record in contacts(rows):
            w.writerow([csv_text(v) for v in record])


def write_changed(src: Path, out: Path) -> None:
    """A copy of ``src`` in which every tenth record has another company and revenue."""
    step = round(100 / CHANGED_PERCENT)
    company, revenue = HEADER.index("company"), HEADER.index("revenue")
    with (
        src.open(newline="", encoding="utf-8") as f_in,
        out.open("w", newline="", encoding="utf-8") as f_out,
    ):
        reader, writer = csv.reader(f_in), csv.writer(f_out)
        writer.writerow(next(reader))
        for n, row in enumerate(reader):
            if n % step == 0:
                row[company] += " (new)"
                units, cents = row[revenue].split(".")
                row[revenue] = f"{int(units) + 1}.{cents}"
            writer.writerow(row)


def write_xlsx(rows: int, out: Path) -> None:
    """The first ``rows`` records as typed cells: numbers, dates, date-times, booleans."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("contacts")
    ws.append(HEADER)
    revenue = HEADER.index("revenue")
    for record in contacts(rows):
        record[revenue] = float(str(record[revenue]))
        ws.append(record)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["contacts", "changed", "xlsx"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--src", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.kind == "contacts":
        write_contacts(args.rows, args.out)
    elif args.kind == "changed":
        write_changed(args.src, args.out)
    else:
        write_xlsx(args.rows, args.out)


if __name__ == "__main__":
    main()
