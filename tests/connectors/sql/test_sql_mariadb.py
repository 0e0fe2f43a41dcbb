"""MariaDB's statements are rendered in Arrow: values must reach the server exactly."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sql_helpers import connector, create, write

from crmbridge.connectors.base import ReadRequest
from crmbridge.connectors.sql.write_mysql import literal_column
from crmbridge.core.outcomes import WriteMode

TRICKY = [
    "O'Brien",
    'say "hi"',
    "back\\slash at the end\\",
    "\\'",
    "nul\x00byte",
    "new\nline and cr\rreturn",
    "ctrl-z \x1a",
    "100% sure %s %(x)s %%",
    "emoji 😀 and ü",
    "'); DROP TABLE codes; --",
    "",
]


def codes(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "codes",
        metadata,
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("label", sa.Text),
    )


@pytest.mark.mariadb
@pytest.mark.parametrize("sql_mode", ["", "NO_BACKSLASH_ESCAPES"])
def test_tricky_strings_round_trip(mysql_url: str, sql_mode: str) -> None:
    create(mysql_url, codes)
    db = connector(mysql_url, connect_args={"init_command": f"SET SESSION sql_mode = '{sql_mode}'"})
    rows = [{"code": t, "label": t + t} for t in TRICKY] + [{"code": "none", "label": None}]
    assert write(db, "codes", rows, WriteMode.INSERT, ["code"]).counts()["created"] == len(rows)
    got = [r for b in db.read(ReadRequest("codes")) for r in b.to_pylist()]
    assert sorted(got, key=lambda r: r["code"]) == sorted(rows, key=lambda r: r["code"])
    again = write(db, "codes", rows, WriteMode.UPSERT, ["code"])
    assert again.outcome.to_pylist() == ["unchanged"] * len(rows)
    changed = [dict(r, label="x") for r in rows]
    assert write(db, "codes", changed, WriteMode.UPDATE, ["code"]).counts()["updated"] == len(rows)
    gone = write(db, "codes", rows, WriteMode.DELETE, ["code"])
    assert gone.outcome.to_pylist() == ["deleted"] * len(rows)
    db.close()


def test_literals() -> None:
    values = [
        (pa.array([1, None, -5]), ["1", "NULL", "-5"]),
        (pa.array([True, False, None]), ["1", "0", "NULL"]),
        (pa.array([1.5, float("nan"), float("inf")]), ["1.5", "'nan'", "'inf'"]),
        (pa.array([Decimal("1.20")], pa.decimal128(5, 2)), ["1.20"]),
        (pa.array(["a'b", "c\\d", None]), ["'a\\'b'", "'c\\\\d'", "NULL"]),
    ]
    for array, expected in values:
        assert literal_column(array).to_pylist() == expected
    assert literal_column(pa.array(["a'b\\"]), backslash=False).to_pylist() == ["'a''b\\'"]
