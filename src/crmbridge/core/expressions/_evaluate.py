"""DuckDB, the local engine: UTC connections, and expressions rendered as DuckDB SQL.

Batches are registered under internal column names (``__crmb0``, ``__crmb1``, ...) because
DuckDB matches identifiers case-insensitively, even quoted ones: a source with both ``Name``
and ``name`` must still mean two columns.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from crmbridge.core.duck import connect
from crmbridge.core.expressions._casts import FAILURE_MARK, convert_sql
from crmbridge.core.expressions._errors import expression_error
from crmbridge.core.expressions._syntax import column_path, columns_of

#: the name a batch is registered under
INPUT = "_input"

_ERROR_PREFIX = re.compile(r"^[A-Za-z ]*Error: ")
_INTERNAL_NAME = re.compile(r"__crmb\d+\b")
_FAILURE = re.compile(FAILURE_MARK + r"(__crmb\d+)?")


@contextlib.contextmanager
def scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection for checks and constants."""
    con = connect()
    try:
        yield con
    finally:
        con.close()


def internal_names(names: Sequence[str]) -> dict[str, str]:
    """User column name -> the name it is registered under."""
    return {name: f"__crmb{i}" for i, name in enumerate(names)}


def freeze_clock(tree: exp.Expr, now: datetime) -> exp.Expr:
    """A copy of ``tree`` where current_date / current_timestamp / now() are the values at
    ``now`` (an aware datetime), so every batch of a run sees the same clock."""
    today = exp.cast(exp.Literal.string(now.date().isoformat()), exp.DataType.Type.DATE)
    instant = exp.cast(exp.Literal.string(now.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMPTZ)

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.CurrentDate):
            return today.copy()
        if isinstance(node, exp.CurrentTimestamp) or (
            isinstance(node, exp.Anonymous) and node.name.lower() == "now"
        ):
            return instant.copy()
        return node

    return tree.transform(swap)


def render(tree: exp.Expr, names: Mapping[str, str]) -> str:
    """DuckDB SQL for ``tree`` with each column renamed per ``names`` (all must be there), and
    every ``cast`` / ``try_cast`` following crmbridge's conversion rules (see ``_casts``)."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            root, *path = column_path(node)
            value: exp.Expr = exp.column(names[root], quoted=True)
            for key in path:  # a record's field: customer.name
                value = exp.func("struct_extract", value, exp.Literal.string(key))
            return value
        return node

    swapped = tree.transform(swap)
    for node in reversed(list(swapped.walk())):  # inner casts before the casts around them
        if isinstance(node, exp.Cast):
            sql = _cast_sql(node)
            if node is swapped:
                return f"({sql})"
            node.replace(exp.Var(this=sql))
    return f"({swapped.sql(dialect='duckdb')})"


def _cast_sql(node: exp.Cast) -> str:
    operand = node.this.unnest()
    label = operand.name if isinstance(operand, exp.Column) else ""  # its internal name
    return convert_sql(
        f"({operand.sql(dialect='duckdb')})",
        node.to.sql(dialect="duckdb"),
        try_=isinstance(node, exp.TryCast),
        label=label,
    )


def clean_message(err: Exception, names: Mapping[str, str]) -> str:
    """DuckDB's error message, first line only, without its prefix, with user column names."""
    text = str(err).split("\n", 1)[0].strip()
    text = _ERROR_PREFIX.sub("", text, count=1).rstrip(".")
    marked = _FAILURE.search(text)
    if marked:  # a value our conversion rules refused (see _casts.convert_sql)
        text = text.replace(marked.group(0), "")
        if marked.group(1):
            text += f" when casting from source column {marked.group(1)}"
    users = {internal: user for user, internal in names.items()}
    return _INTERNAL_NAME.sub(lambda m: repr(users.get(m.group(0), m.group(0))), text)


def constant(con: duckdb.DuckDBPyConnection, tree: exp.Expr) -> tuple[Any, pa.DataType]:
    """Value and Arrow type of a column-free expression, computed by DuckDB."""
    column = con.sql(f"SELECT {render(tree, {})} AS v").to_arrow_table().column(0)
    return column[0].as_py(), column.type


def evaluate_constant(tree: exp.Expression) -> Any:
    """The value of an expression without columns, e.g. ``current_date - INTERVAL 30 DAY``
    (a datetime; the clock is UTC)."""
    if columns_of(tree):
        raise expression_error("a constant cannot read columns", tree, "constant")
    with scratch() as con:
        try:
            value, _ = constant(con, freeze_clock(tree, datetime.now(UTC)))
        except duckdb.Error as err:
            raise expression_error(clean_message(err, {}), tree, "constant") from None
    return value


def is_text(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_string(dtype) or pa.types.is_large_string(dtype))
