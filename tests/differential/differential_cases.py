"""A seeded generator of tricky tables and filters for the differential test.

Tables have a column of every kind crmbridge pushes down, filled with values where databases
and DuckDB tend to differ: float neighbours (``0.1 + 0.2``, ``1e-300``, ``2**53 + 1``),
decimals one cent apart, the ends of the integer range, text differing only in case, trailing
spaces, accents (composed and not), LIKE wildcards and escapes, dates at month and century
ends, date-times a microsecond apart. Filters combine comparisons, IN, BETWEEN, LIKE,
IS [NOT] NULL and bare booleans with AND / OR / NOT, against constants taken from the table
(and their neighbours) written in every literal form (integers, decimals, doubles, text,
``DATE``, ``TIMESTAMP`` with an offset, ``current_date - INTERVAL ...``), and against other
columns of the same kind.

Everything comes from one ``random.Random(seed)``, so a failure is reproduced by its seed.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlglot import exp

UTC = dt.UTC

#: (column, SQLAlchemy type) of every generated table, besides the primary key ``id``
COLUMNS: list[tuple[str, Any]] = [
    ("i", sa.BigInteger()),
    ("j", sa.Integer()),
    ("n", sa.Numeric(14, 2)),
    ("f", sa.Double()),
    ("t", sa.String(40)),
    ("u", sa.String(40)),
    ("b", sa.Boolean()),
    ("d", sa.Date()),
    ("ts", sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")),
]
KINDS = {
    "i": "int",
    "j": "int",
    "n": "decimal",
    "f": "float",
    "t": "text",
    "u": "text",
    "b": "bool",
    "d": "date",
    "ts": "datetime",
}

INTEGERS = [0, 1, -1, 2, 7, 10, 49, 50, 51, 100, -100, 2**31 - 1, -(2**31), 2**53 + 1, 2**62]
INTEGERS_32 = [0, 1, -1, 2, 7, 10, 49, 50, 51, 100, -100, 2**31 - 1, -(2**31)]
DECIMALS = [
    "0",
    "0.01",
    "-0.01",
    "12.34",
    "12.35",
    "12.30",
    "999999999999.99",
    "-999999999999.99",
    "1",
    "2.5",
    "-2.5",
    "100",
]
FLOATS = [
    0.0,
    0.1,
    0.2,
    0.3,
    0.1 + 0.2,
    1e-300,
    -1e-300,
    5e-324,
    1e300,
    -1e300,
    2.5,
    -2.5,
    1 / 3,
    float(2**53),
    float(2**53 + 2),
    49.99,
    50.0,
    1e-9,
]
TEXTS = [
    "",
    " ",
    "a",
    "A",
    "a ",
    " a",
    "ab",
    "aB",
    "Ab",
    "b",
    "B",
    "z",
    "Z",
    "ä",
    "Ä",
    "é",
    "e\u0301",  # the same letter, decomposed
    "ß",
    "SS",
    "İ",
    "ı",
    "Ω",
    "😀",
    "x😀y",
    "%",
    "_",
    "a%b",
    "a_b",
    "a\\b",
    "\\",
    "O'Brien",
    'say "hi"',
    "tab\t",
    "0",
    "10",
    "9",
    "NULL",
    "Bob",
    "bob",
    "Bob ",
    "[a]*?",
]
DATES = [
    dt.date(2024, 2, 29),
    dt.date(2024, 3, 1),
    dt.date(2024, 2, 28),
    dt.date(2023, 12, 31),
    dt.date(2024, 1, 1),
    dt.date(1970, 1, 1),
    dt.date(2000, 2, 29),
    dt.date(1999, 12, 31),
    dt.date(1000, 1, 1),
    dt.date(9999, 12, 31),
]
INSTANTS = [
    dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    dt.datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=UTC),
    dt.datetime(2024, 5, 1, 11, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2024, 5, 1, 0, 0, tzinfo=UTC),
    dt.datetime(2024, 4, 30, 23, 0, tzinfo=UTC),
    dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
    dt.datetime(2024, 3, 1, 0, 0, tzinfo=UTC),
    dt.datetime(1970, 1, 1, 0, 0, tzinfo=UTC),
    dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
]


@dataclass
class Table:
    """One generated table: its rows (column -> Python value) in id order."""

    name: str
    rows: list[dict[str, Any]]

    def metadata(self) -> tuple[sa.MetaData, sa.Table]:
        metadata = sa.MetaData()
        table = sa.Table(
            self.name,
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            *(sa.Column(name, type_) for name, type_ in COLUMNS),
        )
        return metadata, table

    def values(self, column: str) -> list[Any]:
        return [r[column] for r in self.rows if r[column] is not None]


def make_table(rng: random.Random, name: str, size: int) -> Table:
    """``size`` rows of tricky values; about one value in seven is NULL."""
    pools: dict[str, Callable[[], Any]] = {
        "i": lambda: rng.choice(INTEGERS),
        "j": lambda: rng.choice(INTEGERS_32),
        "n": lambda: Decimal(rng.choice(DECIMALS)),
        "f": lambda: rng.choice(FLOATS),
        "t": lambda: rng.choice(TEXTS),
        "u": lambda: rng.choice(TEXTS),
        "b": lambda: rng.choice([True, False]),
        "d": lambda: rng.choice(DATES),
        "ts": lambda: rng.choice(INSTANTS),
    }
    rows = []
    for i in range(1, size + 1):
        row: dict[str, Any] = {"id": i}
        for column, _ in COLUMNS:
            row[column] = None if rng.random() < 0.14 else pools[column]()
        rows.append(row)
    return Table(name, rows)


# -- literals --------------------------------------------------------------------------------
def _text(value: str) -> str:
    return str(exp.Literal.string(value).sql(dialect="duckdb"))


def _number(rng: random.Random, value: int | float | Decimal, kind: str) -> str:
    """A numeric literal for ``value`` in one of the forms a user might write."""
    if isinstance(value, float):
        forms = [repr(value), f"{value!r}::DOUBLE"]
        if value.is_integer() and abs(value) < 1e15:
            forms.append(str(int(value)))
        return rng.choice(forms)
    if isinstance(value, Decimal):
        forms = [str(value), f"{value}0", f"{float(value)!r}"]
        if value == value.to_integral():
            forms.append(str(int(value)))
        return rng.choice(forms)
    forms = [str(value), f"{value}.0", f"{value}.5", f"{value}e0", f"'{value}'"]
    forms += [f"cast({value}.5e0 AS BIGINT)", f"cast({value}.5 AS INTEGER)"]
    return rng.choice(forms) if abs(value) < 2**31 else str(value)


def _nearby(rng: random.Random, value: Any, kind: str) -> Any:
    """``value`` or a neighbour of it that databases might not tell apart."""
    if rng.random() < 0.5:
        return value
    if kind == "int":
        return value + rng.choice([-1, 1])
    if kind == "decimal":
        return value + rng.choice([Decimal("-0.01"), Decimal("0.01"), Decimal("0.005")])
    if kind == "float":
        return rng.choice([value * (1 + 1e-15), value + 1e-300, -value, value / 3])
    if kind == "text":
        return rng.choice([value.upper(), value.lower(), value + " ", " " + value, value[:-1]])
    if kind == "date":
        return value + dt.timedelta(days=rng.choice([-1, 1])) if value.year < 9999 else value
    if kind == "datetime":
        delta = dt.timedelta(microseconds=rng.choice([-1, 1, 3600 * 10**6]))
        return value + delta if value.year < 9999 else value
    return value


def literal(rng: random.Random, table: Table, column: str) -> str:
    """A constant to compare ``column`` with: a value of the table, or a neighbour, or any
    value of the kind, written in one of its literal forms."""
    kind = KINDS[column]
    present = table.values(column)
    value = rng.choice(present) if present and rng.random() < 0.7 else None
    if kind in ("int", "decimal", "float"):
        pool = {"int": INTEGERS, "decimal": [Decimal(d) for d in DECIMALS], "float": FLOATS}
        value = _nearby(rng, value if value is not None else rng.choice(pool[kind]), kind)
        return _number(rng, value, kind)
    if kind == "text":
        return _text(_nearby(rng, value if value is not None else rng.choice(TEXTS), kind))
    if kind == "bool":
        return rng.choice(["TRUE", "FALSE", "'true'", "'f'"])
    if kind == "date":
        day = _nearby(rng, value or rng.choice(DATES), kind)
        return rng.choice(
            [
                f"DATE '{day.isoformat()}'",
                _text(day.isoformat()),
                _text(f"{day.year}-{day.month}-{day.day}"),
                f"cast('{day.year}-{day.month}-{day.day}' AS DATE)",
                f"TIMESTAMP '{day.isoformat()} 12:00:00'",
                "current_date - INTERVAL 30 DAY",
            ]
        )
    instant = _nearby(rng, value or rng.choice(INSTANTS), kind)
    offset = dt.timezone(dt.timedelta(hours=rng.choice([-5, 0, 2, 14])))
    local = instant.astimezone(offset) if instant.year < 9999 else instant
    return rng.choice(
        [
            _text(instant.isoformat(sep=" ")),
            f"TIMESTAMP '{local.isoformat(sep=' ')}'",
            f"TIMESTAMPTZ '{local.isoformat(sep=' ')}'",
            f"DATE '{instant.date().isoformat()}'",
            "current_timestamp",
        ]
    )


def _like_pattern(rng: random.Random, table: Table, column: str) -> str:
    base = rng.choice(table.values(column) or TEXTS)
    chars = list(base)
    for _ in range(rng.randint(0, 2)):
        position = rng.randint(0, len(chars))
        chars.insert(position, rng.choice(["%", "_"]))
    pattern = "".join(chars)
    if rng.random() < 0.2:
        escaped = pattern.replace("!", "!!").replace("%", "!%", 1)
        return f"{_text(escaped)} ESCAPE '!'"
    return _text(pattern)


# -- predicates ------------------------------------------------------------------------------
_OPERATORS = ["=", "<>", "<", "<=", ">", ">=", "!="]


def atom(rng: random.Random, table: Table) -> str:
    """One comparison, test or pattern."""
    column = rng.choice([c for c, _ in COLUMNS])
    kind = KINDS[column]
    choice = rng.random()
    if kind == "bool" and choice < 0.3:
        return rng.choice(["b", "NOT b", "b IS TRUE", "b = FALSE"])
    if choice < 0.1:
        return f"{column} IS {rng.choice(['', 'NOT '])}NULL"
    if choice < 0.2:
        same = [c for c, _ in COLUMNS if KINDS[c] == kind]
        return f"{column} {rng.choice(_OPERATORS)} {rng.choice(same)}"
    if choice < 0.35:
        items = [literal(rng, table, column) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.1:
            items.append("NULL")
        return f"{column} {rng.choice(['IN', 'NOT IN'])} ({', '.join(items)})"
    if choice < 0.45:
        low, high = literal(rng, table, column), literal(rng, table, column)
        return f"{column} {rng.choice(['BETWEEN', 'NOT BETWEEN'])} {low} AND {high}"
    if kind == "text" and choice < 0.65:
        return f"{column} {rng.choice(['LIKE', 'NOT LIKE'])} {_like_pattern(rng, table, column)}"
    constant = literal(rng, table, column)
    if rng.random() < 0.2:
        return f"{constant} {rng.choice(_OPERATORS)} {column}"
    return f"{column} {rng.choice(_OPERATORS)} {constant}"


def predicate(rng: random.Random, table: Table, depth: int = 0) -> str:
    """A filter of up to three levels of AND / OR / NOT over atoms."""
    choice = rng.random()
    if depth >= 3 or choice < 0.45:
        return atom(rng, table)
    if choice < 0.55:
        return f"NOT ({predicate(rng, table, depth + 1)})"
    joiner = "AND" if choice < 0.8 else "OR"
    left, right = predicate(rng, table, depth + 1), predicate(rng, table, depth + 1)
    return f"({left}) {joiner} ({right})"
