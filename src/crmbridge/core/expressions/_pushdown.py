"""Filters pushed down into a SQL source, as SQLAlchemy expressions with bound literals.

Only predicates the database evaluates *exactly* like DuckDB are pushed down; anything else
is refused (None) and the engine evaluates it locally. What is pushed down:

* AND, OR, NOT and parentheses, over
* ``column <op> constant`` and ``column <op> column`` (same kind) with =, <>, <, <=, >, >=,
  ``IN (constants)``, ``BETWEEN constant AND constant``, ``IS [NOT] NULL``,
  ``[NOT] LIKE constant [ESCAPE c]`` on text, a bare boolean column, constant conditions.

A *constant* is any part without columns (``current_date - INTERVAL 30 DAY``): DuckDB
computes it, coerced the way DuckDB would coerce it for the comparison, and the result is
bound as a parameter. Functions and arithmetic over columns are never pushed down.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlglot import exp

from crmbridge.core.expressions._dialects import DIALECTS, ColumnKind, Dialect, Kind, LikePattern
from crmbridge.core.expressions._evaluate import constant, freeze_clock, scratch
from crmbridge.core.expressions._syntax import columns_of, has_paths

_Op = Callable[[Any, Any], sa.ColumnElement[bool]]
_COMPARE: dict[type[exp.Expr], _Op] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
}
#: the operator that gives the same result with the operands swapped
_SWAPPED: dict[_Op, _Op] = {
    operator.eq: operator.eq,
    operator.ne: operator.ne,
    operator.gt: operator.lt,
    operator.ge: operator.le,
    operator.lt: operator.gt,
    operator.le: operator.ge,
}
_INT64 = 2**63
_EXACT_FLOAT_INT = 2**53


def to_sqlalchemy(
    predicate: exp.Expression,
    columns: Mapping[str, sa.ColumnElement[Any]],
    dialect: str,
) -> sa.ColumnElement[bool] | None:
    """``predicate`` as a SQLAlchemy condition for a ``dialect`` database ("postgresql",
    "mysql" (also MariaDB), "sqlite", "mssql"), or None when that database might not give
    exactly the answer DuckDB gives. Every literal is a bound parameter.

    ``columns`` maps the column names used in ``predicate`` to the source's columns (their
    SQLAlchemy types decide what can be pushed down).
    """
    rules = DIALECTS.get(dialect)
    if rules is None or has_paths(predicate):  # records and JSON text: evaluated locally
        return None
    with ExitStack() as stack:
        renderer = _Renderer(columns, rules, lambda: stack.enter_context(scratch()))
        try:
            return renderer.condition(freeze_clock(predicate, datetime.now(UTC)))
        except _RefusedError:
            return None


class _RefusedError(Exception):
    """This part cannot be pushed down exactly."""


@dataclass(frozen=True)
class _Column:
    expr: sa.ColumnElement[Any]
    kind: ColumnKind | None


class _Renderer:
    def __init__(
        self,
        columns: Mapping[str, sa.ColumnElement[Any]],
        rules: Dialect,
        open_duckdb: Callable[[], duckdb.DuckDBPyConnection],
    ) -> None:
        self.columns = columns
        self.rules = rules
        self._open_duckdb = open_duckdb
        self._duckdb: duckdb.DuckDBPyConnection | None = None

    # -- conditions ------------------------------------------------------------------------
    def condition(self, node: exp.Expr) -> sa.ColumnElement[bool]:
        node = node.unnest()
        if isinstance(node, exp.And):
            return sa.and_(self.condition(node.left), self.condition(node.right))
        if isinstance(node, exp.Or):
            return sa.or_(self.condition(node.left), self.condition(node.right))
        if isinstance(node, exp.Not):
            return sa.not_(self.condition(node.this))
        if not columns_of(node):
            return self._constant_condition(node)
        if isinstance(node, exp.Column):
            column = self._column(node)
            if column.kind != ColumnKind(Kind.BOOLEAN):
                raise _RefusedError
            return column.expr == sa.true()
        if type(node) in _COMPARE:
            return self._compare(_COMPARE[type(node)], node.this, node.expression)
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            return self._column(node.this).expr.is_(None)
        if isinstance(node, exp.In):
            return self._in(node)
        if isinstance(node, exp.Between):
            return self._between(node)
        if isinstance(node, (exp.Like, exp.Escape)):
            return self._like(node)
        raise _RefusedError

    def _constant_condition(self, node: exp.Expr) -> sa.ColumnElement[bool]:
        value, _ = self._evaluate(node)
        if value is True:
            return sa.true()
        if value is False:
            return sa.false()
        raise _RefusedError  # NULL: no portable way to write an unknown condition

    def _compare(self, op: _Op, left: exp.Expr, right: exp.Expr) -> sa.ColumnElement[bool]:
        if not isinstance(left.unnest(), exp.Column):
            left, right, op = right, left, _SWAPPED[op]
        column = self._column(left)
        if isinstance(right.unnest(), exp.Column):
            other = self._column(right)
            if column.kind is None or column.kind != other.kind:
                raise _RefusedError
            if column.kind.kind is Kind.TEXT:
                return op(self.rules.exact_text(column.expr), self.rules.exact_text(other.expr))
            return op(column.expr, other.expr)
        if columns_of(right):
            raise _RefusedError  # arithmetic or a function over a column
        return self._compare_constant(op, column, right)

    def _compare_constant(self, op: _Op, column: _Column, node: exp.Expr) -> sa.ColumnElement[bool]:
        if column.kind is None:
            raise _RefusedError
        kind = column.kind.kind
        value, dtype = self._evaluate(node)
        if value is None:
            raise _RefusedError  # "x = NULL" is never true; refusing is simpler than writing it
        if kind is Kind.TEXT:
            if not pa.types.is_string(dtype):
                raise _RefusedError
            bound = sa.literal(value, sa.String())
            return op(self.rules.exact_text(column.expr), self.rules.exact_text(bound))
        if kind is Kind.DATE and pa.types.is_timestamp(dtype):
            return _date_vs_instant(op, column.expr, _utc_naive(value))
        return op(column.expr, self._coerce(column.kind, node, value, dtype))

    def _coerce(
        self, kind: ColumnKind, node: exp.Expr, value: Any, dtype: pa.DataType
    ) -> sa.BindParameter[Any]:
        """``value`` as the parameter DuckDB's comparison with a ``kind`` column would use."""
        if kind.kind is Kind.INTEGER:
            return _integer_param(value, dtype, self.rules)
        if kind.kind is Kind.DECIMAL and isinstance(value, int | Decimal):
            return sa.literal(Decimal(value), sa.Numeric())
        if kind.kind is Kind.FLOAT and _is_number(dtype):
            number, _ = self._evaluate(exp.cast(node.copy(), exp.DataType.Type.DOUBLE))
            if not math.isfinite(number):
                raise _RefusedError
            return sa.literal(number, sa.Double())
        if kind.kind is Kind.BOOLEAN and pa.types.is_boolean(dtype):
            return sa.literal(value, sa.Boolean())
        if kind.kind is Kind.DATE and (pa.types.is_date(dtype) or pa.types.is_string(dtype)):
            day, _ = self._evaluate(exp.cast(node.copy(), exp.DataType.Type.DATE))
            return sa.literal(day, sa.Date())
        if kind.kind is Kind.DATETIME and not _is_number(dtype):
            instant, _ = self._evaluate(exp.cast(node.copy(), exp.DataType.Type.TIMESTAMPTZ))
            utc = instant.astimezone(UTC)
            bound = utc if kind.aware else utc.replace(tzinfo=None)
            return sa.literal(bound, sa.DateTime(timezone=kind.aware))
        raise _RefusedError

    def _in(self, node: exp.In) -> sa.ColumnElement[bool]:
        column = self._column(node.this)
        self._same_constant_types(column, node.expressions)
        return sa.or_(*(self._compare(operator.eq, node.this, e) for e in node.expressions))

    def _between(self, node: exp.Between) -> sa.ColumnElement[bool]:
        low, high = node.args["low"], node.args["high"]
        self._same_constant_types(self._column(node.this), [low, high])
        return sa.and_(
            self._compare(operator.ge, node.this, low), self._compare(operator.le, node.this, high)
        )

    def _same_constant_types(self, column: _Column, constants: list[exp.Expr]) -> None:
        """IN and BETWEEN coerce all their values to one type, which differs from comparing
        one by one when the values mix text and datetimes (dates), or doubles with exact
        numbers (``i IN (9007199254740992, 50e0)`` compares ``i`` as a double)."""
        if column.kind is None:
            return
        types = [self._evaluate(c)[1] for c in constants if not columns_of(c)]
        if column.kind.kind in (Kind.DATE, Kind.DATETIME):
            mixed = len({str(t) for t in types}) > 1
        else:
            mixed = len({pa.types.is_floating(t) for t in types if _is_number(t)}) > 1
        if mixed:
            raise _RefusedError

    def _like(self, node: exp.Expr) -> sa.ColumnElement[bool]:
        escape: str | None = None
        if isinstance(node, exp.Escape):
            escape, _ = self._evaluate(node.expression)
            node = node.this
            if not isinstance(node, exp.Like) or not isinstance(escape, str) or len(escape) > 1:
                raise _RefusedError
        assert isinstance(node, exp.Like)
        column = self._column(node.this)
        if column.kind != ColumnKind(Kind.TEXT) or columns_of(node.expression):
            raise _RefusedError
        pattern, dtype = self._evaluate(node.expression)
        if not pa.types.is_string(dtype) or pattern is None:
            raise _RefusedError
        try:
            like = self.rules.like(column.expr, LikePattern(pattern, escape or None))
        except ValueError:
            raise _RefusedError from None
        return sa.not_(like) if node.args.get("negate") else like

    # -- operands --------------------------------------------------------------------------
    def _column(self, node: exp.Expr) -> _Column:
        node = node.unnest()
        if not isinstance(node, exp.Column) or node.name not in self.columns:
            raise _RefusedError
        expr = self.columns[node.name]
        return _Column(expr, self.rules.kind_of(expr.type))

    def _evaluate(self, node: exp.Expr) -> tuple[Any, pa.DataType]:
        if self._duckdb is None:
            self._duckdb = self._open_duckdb()
        try:
            return constant(self._duckdb, node)
        except duckdb.Error:
            raise _RefusedError from None  # evaluated locally, where the error is reported


def _integer_param(value: Any, dtype: pa.DataType, rules: Dialect) -> sa.BindParameter[Any]:
    """An integer column compared with a number: DuckDB compares exactly (as decimals)."""
    if isinstance(value, float):
        if not (value.is_integer() and abs(value) < _EXACT_FLOAT_INT):
            raise _RefusedError  # DuckDB would compare as doubles
        value = int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < _INT64:
        return sa.literal(value, sa.BigInteger())
    if isinstance(value, Decimal) and rules.decimals:
        return sa.literal(value, sa.Numeric())
    raise _RefusedError


def _is_number(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(dtype) or pa.types.is_decimal(dtype) or pa.types.is_floating(dtype)
    )


def _utc_naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _date_vs_instant(
    op: _Op, column: sa.ColumnElement[Any], instant: datetime
) -> sa.ColumnElement[bool]:
    """DuckDB compares a date with a datetime as midnight UTC of that date: the same as
    comparing the date with the instant's day, rounded the right way."""
    day = instant.date()
    midnight = instant.time() == time(0)
    try:
        next_day = day if midnight else day + timedelta(days=1)
    except OverflowError:
        raise _RefusedError from None
    if op in (operator.eq, operator.ne):
        if not midnight:
            raise _RefusedError  # never equal: possible to write, not worth it
        return op(column, sa.literal(day, sa.Date()))
    bound: date = next_day if op in (operator.ge, operator.lt) else day
    return op(column, sa.literal(bound, sa.Date()))
