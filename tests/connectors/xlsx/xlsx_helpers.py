"""Workbooks for the xlsx tests, made with openpyxl (not with the connector under test)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook

PEOPLE = [
    {
        "id": 1,
        "name": "Ann",
        "born": dt.date(1990, 5, 17),
        "seen": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "score": 1.5,
        "active": True,
    },
    {
        "id": 2,
        "name": "Bob",
        "born": None,
        "seen": dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        "score": None,
        "active": False,
    },
    {
        "id": 3,
        "name": None,
        "born": dt.date(2000, 2, 29),
        "seen": None,
        "score": -2.25,
        "active": None,
    },
    {
        "id": 4,
        "name": "Zoë",
        "born": dt.date(1970, 1, 1),
        "seen": dt.datetime(2024, 6, 1, 12, 0, 30, tzinfo=dt.UTC),
        "score": 10.125,
        "active": True,
    },
]


def _cell(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


def make_workbook(path: Path, sheets: dict[str, Sequence[Sequence[object]]]) -> None:
    """A workbook with the given sheets (rows of cell values, the first row a header)."""
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append([_cell(v) for v in row])
    book.save(path)


def people_rows(rows: Sequence[dict[str, object]] = PEOPLE) -> list[list[object]]:
    names = list(rows[0])
    return [names] + [[r[n] for n in names] for r in rows]
