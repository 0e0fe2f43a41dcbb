"""Deterministic sample data for the benchmarks: a contacts CSV (14 columns) and an XLSX.

python bench/generate.py contacts --rows 1000000 --out bench/out/contacts_1m.csv
python bench/generate.py changed --percent 10 --src bench/out/contacts_1m.csv --out ...
python bench/generate.py xlsx --rows 100000 --out bench/out/contacts_100k.xlsx
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

HEADER = [
    "contact_id",
    "first_name",
    "last_name",
    "email",
    "company",
    "title",
    "phone",
    "mobile",
    "street",
    "city",
    "postal_code",
    "country",
    "lead_score",
    "created_at",
]
FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Paul",
    "Rosa",
    "Sami",
    "Tara",
    "Zoë",
]
LAST = [
    "Schmidt",
    "O'Brien",
    "Müller",
    "Nguyen",
    "Rossi",
    "García",
    "Kowalski",
    "Dubois",
    "Smith",
    "Jensen",
    "Ivanova",
    "Costa",
    "Lee",
    "Novak",
    "Fischer",
    "Svensson",
]
COMPANIES = [
    "Acme & Sons",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark Industries",
    "Hooli",
    "Vandelay Imports",
    "Wayne Enterprises",
    "Soylent",
    "Tyrell",
]
TITLES = ["CEO", "CTO", "Head of Sales", "Buyer", "Engineer", "Office Manager", ""]
CITIES = [("Berlin", "DE"), ("Hamburg", "DE"), ("Wien", "AT"), ("Zürich", "CH"), ("Lyon", "FR")]


def contact(i: int, rnd: random.Random) -> list[str]:
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    city, country = rnd.choice(CITIES)
    return [
        f"C{i:08d}",
        first,
        last,
        f"{first.lower()}.{i}@example.com",
        rnd.choice(COMPANIES),
        rnd.choice(TITLES),
        "" if i % 7 == 0 else f"+49 30 {rnd.randrange(10**6, 10**7)}",
        f"+49 170 {rnd.randrange(10**6, 10**7)}",
        f"{rnd.randrange(1, 200)} Hauptstraße",
        city,
        f"{rnd.randrange(10000, 99999)}",
        country,
        str(rnd.randrange(0, 101)),
        f"2026-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d} "
        f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}",
    ]


def write_contacts(rows: int, out: Path) -> None:
    rnd = random.Random(42)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(1, rows + 1):
            w.writerow(contact(i, rnd))


def write_changed(src: Path, out: Path, percent: int) -> None:
    """A copy of ``src`` in which every (100/percent)-th record has a new company and title."""
    step = max(1, round(100 / percent))
    with (
        src.open(newline="", encoding="utf-8") as f_in,
        out.open("w", newline="", encoding="utf-8") as f_out,
    ):
        reader, writer = csv.reader(f_in), csv.writer(f_out)
        writer.writerow(next(reader))
        company, title = HEADER.index("company"), HEADER.index("title")
        for n, row in enumerate(reader):
            if n % step == 0:
                row[company] = row[company] + " (new)"
                row[title] = "Changed"
            writer.writerow(row)


def write_xlsx(rows: int, out: Path) -> None:
    import datetime as dt

    from openpyxl import Workbook

    rnd = random.Random(42)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("contacts")
    ws.append(HEADER)
    for i in range(1, rows + 1):
        row: list[object] = contact(i, rnd)
        row[12] = int(str(row[12]))
        row[13] = dt.datetime.fromisoformat(str(row[13]))
        ws.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["contacts", "changed", "xlsx"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--percent", type=int, default=10)
    parser.add_argument("--src", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.kind == "contacts":
        write_contacts(args.rows, args.out)
    elif args.kind == "changed":
        write_changed(args.src, args.out, args.percent)
    else:
        write_xlsx(args.rows, args.out)


if __name__ == "__main__":
    main()
