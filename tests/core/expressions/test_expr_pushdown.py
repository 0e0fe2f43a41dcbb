"""Pushdown: a filter rendered for SQLite, PostgreSQL, MariaDB selects exactly the rows that
local evaluation (DuckDB) selects, on one table of tricky data; what cannot be made exact is
refused, and the list of refusals is pinned here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite
from sqlglot import exp

from crmbridge.core.expressions import BatchTransform, parse, to_sqlalchemy
from crmbridge.core.expressions._dialects import LikePattern
from crmbridge.core.schema import ROW_COLUMN

TODAY = datetime.now(UTC).date()

METADATA = sa.MetaData()
PEOPLE = sa.Table(
    "people",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(60)),
    sa.Column("city", sa.String(60)),
    sa.Column("score", sa.Integer),
    sa.Column("amount", sa.Numeric(12, 2)),
    sa.Column("ratio", sa.Double),
    sa.Column("active", sa.Boolean),
    sa.Column("closed_on", sa.Date),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")
    ),
)
LOCAL_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("city", pa.string()),
        ("score", pa.int64()),
        ("amount", pa.decimal128(12, 2)),
        ("ratio", pa.float64()),
        ("active", pa.bool_()),
        ("closed_on", pa.date32()),
        ("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


_ROWS: list[tuple[Any, ...]] = [
    # name, city, score, amount, ratio, active, closed_on, updated_at
    ("Alice", "Paris", 70, "1000.00", 0.1, True, -10, _at(2024, 5, 1, 12)),
    ("alice", "paris", 50, "1000.01", 0.1 + 0.2, False, -30, _at(2024, 5, 1, 12, 0, 0, 1)),
    ("ALICE ", "Paris ", 10, "999.99", 0.3, None, -31, _at(2024, 5, 1, 11, 59, 59, 999999)),
    ("Zoë", "Zürich", None, None, None, True, 0, _at(2024, 4, 30, 23)),
    ("Émile", "Évian", 100, "-5.50", 1e-9, False, date(2024, 2, 29), _at(2024, 5, 1)),
    ("O'Brien", "Dublin", 55, "0", -0.5, True, date(2024, 3, 1), None),
    ("100%", "100%", 60, "12.34", 2.5, None, None, _at(2024, 1, 1)),
    ("a_b", "a_b", 61, "12.35", 2.5, True, date(2023, 12, 31), _at(2023, 12, 31, 23, 59)),
    ("ab", "AB", 3, "1", 1.0, False, date(2024, 2, 28), _at(2024, 5, 2)),
    ("", "", 0, "0.01", 0.0, True, date(2024, 3, 2), _at(2024, 4, 1)),
    (None, None, None, None, None, None, None, None),
    (" lead", "lead", 49, "49.99", 49.99, True, 1, _at(2030, 1, 1)),
    ("Bob", "bob", 51, "51", 51.0, False, -29, _at(2024, 5, 1, 12)),
    ("Bob ", "Bob", 52, "52", 52.0, True, -1, _at(2024, 5, 1, 12)),
    ("Ä", "a", 1, "1.5", 1.5, False, date(2024, 1, 1), _at(2024, 1, 1)),
    ("z", "Z", 2, "2.5", 2.5, True, date(2024, 1, 2), _at(2024, 1, 2)),
    ("Ω", "ω", 2, "2.5", 2.5, True, date(2024, 1, 2), _at(2024, 1, 2)),
    ("emoji 😀", "x", 9, "9", 9.0, None, date(2024, 1, 9), _at(2024, 1, 9)),
    ("back\\slash", "x", 9, "9", 9.0, None, date(2024, 1, 9), _at(2024, 1, 9)),
    ("a%b", "a%b", 9, "9", 9.0, None, date(2024, 1, 9), _at(2024, 1, 9)),
    ("star*", "[a]x", 9, "9", 9.0, None, date(2024, 1, 9), _at(2024, 1, 9)),
    ("[a]x", "star*", 9, "9", 9.0, None, date(2024, 1, 9), _at(2024, 1, 9)),
    ("tab\t", "tab", 9, "9", 9.0, None, date(2024, 1, 9), _at(2024, 1, 9)),
]


def _closed_on(value: Any) -> date | None:
    return TODAY + timedelta(days=value) if isinstance(value, int) else value


ROWS = [
    {
        "id": i,
        "name": name,
        "city": city,
        "score": score,
        "amount": Decimal(amount) if amount is not None else None,
        "ratio": ratio,
        "active": active,
        "closed_on": _closed_on(closed),
        "updated_at": updated,
    }
    for i, (name, city, score, amount, ratio, active, closed, updated) in enumerate(_ROWS, 1)
]

PREDICATES = [
    "score >= 50",
    "score = 50",
    "score <> 50",
    "50 < score",
    "score IS NULL",
    "score IS NOT NULL",
    "NOT (score > 10)",
    "score IN (10, 50, 70)",
    "score NOT IN (10, 50)",
    "score IN (10, NULL)",
    "score NOT IN (10, NULL)",
    "score BETWEEN 10 AND 60",
    "score NOT BETWEEN 10 AND 60",
    "score > 2.5",
    "score = 50.0",
    "score + 1 > 50",
    "coalesce(score, 0) > 10",
    "name = 'alice'",
    "name = 'ALICE'",
    "name = 'Bob'",
    "name < 'a'",
    "name >= 'Z'",
    "name > 'z'",
    "name IN ('Bob', 'Zoë', 'O''Brien')",
    "name = city",
    "name <> city",
    "name LIKE 'A%'",
    "name LIKE '%e'",
    "name LIKE '_b'",
    "name LIKE 'emoji _'",
    "name LIKE '100!%' ESCAPE '!'",
    "name LIKE 'a!_b' ESCAPE '!'",
    "name LIKE 'a%b'",
    "name LIKE 'back\\%'",
    "name LIKE '%*'",
    "name LIKE '[a]%'",
    "name LIKE 'tab_'",
    "name NOT LIKE '%o%'",
    "name ILIKE 'alice%'",
    "lower(name) = 'alice'",
    "name = ''",
    "name IS NULL",
    "name = 'x'' OR 1=1 --'",
    "amount > 1000",
    "amount = 999.99",
    "amount <= 0",
    "ratio > 0.2",
    "ratio = 0.1",
    "ratio = 0.30000000000000004",
    "ratio < 1e-3",
    "active",
    "NOT active",
    "active = FALSE",
    "closed_on >= current_date - INTERVAL 30 DAY",
    "closed_on < '2024-03-01'",
    "closed_on > TIMESTAMP '2024-02-29 12:00:00'",
    "closed_on <= TIMESTAMP '2024-02-29 12:00:00'",
    "closed_on BETWEEN '2024-01-01' AND current_date",
    "updated_at >= '2024-05-01 12:00:00'",
    "updated_at > '2024-05-01 12:00:00'",
    "updated_at = '2024-05-01 01:00:00+02'",
    "updated_at = TIMESTAMP '2024-05-01 14:00:00+02'",
    "updated_at < TIMESTAMPTZ '2024-05-01 13:00:00+01'",
    "closed_on > TIMESTAMP '2024-02-29 23:00:00-02'",
    "closed_on >= '2024-3-1'",
    "updated_at < current_timestamp",
    "updated_at > DATE '2024-05-01'",
    "updated_at >= DATE '2024-05-01'",
    "1 = 1",
    "1 = 0 OR score = 50",
    "score >= 50 AND name LIKE 'A%' OR amount IS NULL",
    "NOT (name = 'Bob' AND score > 10)",
]

#: refused everywhere: functions and arithmetic over columns, NULL in IN lists, ILIKE
#: (Unicode case folding differs), IN/BETWEEN mixing text and dates
EVERYWHERE = {
    "score IN (10, NULL)",
    "score NOT IN (10, NULL)",
    "score + 1 > 50",
    "coalesce(score, 0) > 10",
    "name ILIKE 'alice%'",
    "lower(name) = 'alice'",
    "closed_on BETWEEN '2024-01-01' AND current_date",
}
BOOLEANS = {"active", "NOT active", "active = FALSE"}
DATES = {p for p in PREDICATES if p.startswith(("closed_on", "updated_at"))}
DECIMALS = {"amount > 1000", "amount = 999.99", "amount <= 0", "score > 2.5"}
TEXT = {p for p in PREDICATES if "name" in p} - {"name IS NULL"}

REFUSED = {
    "postgresql": EVERYWHERE,
    "mysql": EVERYWHERE | BOOLEANS,
    "sqlite": EVERYWHERE | BOOLEANS | DATES | DECIMALS,
    "mssql": EVERYWHERE | BOOLEANS | DATES | TEXT,
}


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    engine = sa.create_engine(request.getfixturevalue(request.param))
    naive = engine.dialect.name != "postgresql"
    if not naive:  # nothing may depend on the session's time zone

        @sa.event.listens_for(engine, "connect")
        def far_east(dbapi_connection: Any, record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET TIME ZONE 'Pacific/Kiritimati'")  # UTC+14

    rows = [
        {**row, "updated_at": row["updated_at"].replace(tzinfo=None)}
        if naive and row["updated_at"]
        else row
        for row in ROWS
    ]
    with engine.begin() as conn:
        METADATA.create_all(conn)
        conn.execute(PEOPLE.insert(), rows)
    yield engine
    engine.dispose()


def _local_rows(engine: sa.Engine) -> pa.RecordBatch:
    """The table as the engine would see it: read back, typed per LOCAL_SCHEMA."""
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(PEOPLE).order_by(PEOPLE.c.id))]
    batch = pa.RecordBatch.from_pylist(rows, schema=LOCAL_SCHEMA)
    return batch.append_column(ROW_COLUMN, batch.column("id"))


def _locally_selected(rows: pa.RecordBatch, predicate: exp.Expression) -> set[int]:
    ids = {"id": exp.column("id")}
    with BatchTransform(rows.schema, ids, predicate) as transform:
        result = transform.apply(rows)
    assert result.errors == []
    return set(result.batch.column("id").to_pylist())


@pytest.mark.filterwarnings("ignore:Dialect sqlite\\+pysqlite does \\*not\\* support Decimal")
@pytest.mark.parametrize(
    "engine",
    [
        "sqlite_url",
        pytest.param("pg_url", marks=pytest.mark.postgres),
        pytest.param("mysql_url", marks=pytest.mark.mariadb),
    ],
    indirect=True,
)
def test_pushed_down_filters_select_what_local_evaluation_selects(engine: sa.Engine) -> None:
    rows = _local_rows(engine)
    assert rows.num_rows == len(ROWS)
    dialect = engine.dialect.name
    refused = set()
    with engine.connect() as conn:
        for text in PREDICATES:
            predicate = parse(text, what="filter")
            where = to_sqlalchemy(predicate, PEOPLE.c, dialect)
            if where is None:
                refused.add(text)
                continue
            remote = set(conn.scalars(sa.select(PEOPLE.c.id).where(where)))
            assert remote == _locally_selected(rows, predicate), text
    assert refused == REFUSED[dialect]


def test_sql_server_gets_numbers_only() -> None:
    refused = {
        p for p in PREDICATES if to_sqlalchemy(parse(p, what="f"), PEOPLE.c, "mssql") is None
    }
    assert refused == REFUSED["mssql"]
    where = to_sqlalchemy(parse("score BETWEEN 1 AND 2.5", what="f"), PEOPLE.c, "mssql")
    assert where is not None
    compiled = where.compile(dialect=mssql.dialect())
    assert str(compiled) == "people.score >= :param_1 AND people.score <= :param_2"
    assert compiled.params == {"param_1": 1, "param_2": Decimal("2.5")}


@pytest.mark.parametrize("dialect", [postgresql.dialect(), mysql.dialect(), sqlite.dialect()])
def test_literals_are_bound_never_pasted_into_the_sql(dialect: sa.Dialect) -> None:
    predicate = parse("name = 'x'' OR 1=1 --' OR name LIKE '%'' --'", what="filter")
    where = to_sqlalchemy(predicate, PEOPLE.c, dialect.name)
    assert where is not None
    compiled = sa.select(PEOPLE.c.id).where(where).compile(dialect=dialect)
    assert "1=1" not in str(compiled)
    assert "--" not in str(compiled)
    assert "x' OR 1=1 --" in compiled.params.values()


def test_unknown_dialects_and_columns_are_not_pushed_down() -> None:
    predicate = parse("score = 1", what="filter")
    assert to_sqlalchemy(predicate, PEOPLE.c, "oracle") is None
    assert to_sqlalchemy(predicate, {"name": PEOPLE.c.name}, "postgresql") is None


@pytest.mark.parametrize(
    ("pattern", "escape", "backslash", "glob"),
    [
        ("A%", None, "A%", "A*"),
        ("_b", None, "_b", "?b"),
        ("100!%", "!", "100\\%", "100%"),
        ("a!_b!!", "!", "a\\_b!", "a_b!"),
        ("back\\%", None, "back\\\\%", "back\\*"),
        ("*?[x]", None, "*?[x]", "[*][?][[]x]"),
        ("!a", "!", "a", "a"),
    ],
)
def test_like_patterns_are_translated_exactly(
    pattern: str, escape: str | None, backslash: str, glob: str
) -> None:
    like = LikePattern(pattern, escape)
    assert like.with_backslash_escape() == backslash
    assert like.as_glob() == glob


def test_a_pattern_ending_in_its_escape_is_refused() -> None:
    with pytest.raises(ValueError, match="escape"):
        LikePattern("abc!", "!")
    predicate = parse("name LIKE 'abc!' ESCAPE '!'", what="filter")
    assert to_sqlalchemy(predicate, PEOPLE.c, "postgresql") is None


@pytest.mark.parametrize(
    "text",
    [
        "score = NULL",
        "NULL = 1 OR score = 1",
        "score = ratio",
        "updated_at > closed_on",
        "score = 99999999999999999999",
        "ratio = 'nan'::DOUBLE",
        "score > 1e300",
        "score IN (9007199254740992, 50e0)",
        "score BETWEEN 1 AND 2.5e0",
        "'abc' LIKE name",
        "name LIKE city",
        "name LIKE 'a' ESCAPE 'xy'",
        "active IS TRUE",
        "score",
    ],
)
def test_what_cannot_be_exact_is_refused(text: str) -> None:
    assert to_sqlalchemy(parse(text, what="filter"), PEOPLE.c, "postgresql") is None


def test_datetime_parameters_follow_the_column() -> None:
    naive = sa.Column("naive", sa.DateTime())
    columns = {"aware": PEOPLE.c.updated_at, "naive": naive}
    where = to_sqlalchemy(
        parse("aware >= '2024-05-01 14:00:00+02' AND naive >= DATE '2024-05-01'", what="f"),
        columns,
        "postgresql",
    )
    assert where is not None
    assert list(where.compile(dialect=postgresql.dialect()).params.values()) == [
        datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 0, 0),
    ]
