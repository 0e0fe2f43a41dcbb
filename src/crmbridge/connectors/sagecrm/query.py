"""Filter pushdown: predicates of the expression language as a SOAP ``queryString`` (a SQL
Server WHERE fragment) or a REST ``where``.

What the server is asked for is a *superset* of what the predicate selects locally, and the
reader evaluates every pushed predicate again on the decoded rows. So text ``=``, ``IN`` and
``LIKE`` are pushed although SQL Server compares text case-insensitively (the server returns a
few rows too many, the re-check drops them), while text ``<>``, ``<``, ``NOT IN`` are not
(the server could leave out rows the local filter keeps). A LIKE pattern holding ``[`` (a
character class in SQL Server) is not pushed. Every literal is written by us: text quoted with
single quotes doubled (``N'...'`` in SOAP), datetimes as the database keeps them (whole seconds
in the server's time zone, bounds rounded outwards). REST has no null test and no NOT: those
parts stay local there. Booleans (check boxes) and child fields are always evaluated locally.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlglot import exp

from crmbridge.connectors.sagecrm.fields import EntityMeta
from crmbridge.core.schema import FieldType

_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}
_REST_OPS = {"=": "eq", "<>": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
DB_FORMAT = "%Y-%m-%d %H:%M:%S"
#: slack for numeric columns a server may keep as binary floating point
_SLACK = Decimal("0.000001")


@dataclass(frozen=True)
class Cond:
    """``column op values``. Ops: = <> < <= > >= in not_in between like null not_null."""

    column: str
    op: str
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Group:
    op: str  # "and" | "or"
    parts: tuple[Node, ...]


Node = Cond | Group


def conjunction(nodes: Sequence[Node]) -> Node | None:
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else Group("and", tuple(nodes))


class _Refused:
    pass


_REFUSED: Any = _Refused()


class Planner:
    """Decides what one entity can push down, for one API family."""

    def __init__(self, meta: EntityMeta, *, rest: bool) -> None:
        self.meta = meta
        self.rest = rest

    def plan(self, node: exp.Expr) -> Node | None:
        """The pushable form of ``node``, or None."""
        if isinstance(node, exp.Paren):
            return self.plan(node.this)
        if isinstance(node, exp.And | exp.Or):
            left, right = self.plan(node.left), self.plan(node.right)
            if left is None or right is None:
                return None
            return Group("and" if isinstance(node, exp.And) else "or", (left, right))
        if type(node) in _COMPARISONS:
            op = _COMPARISONS[type(node)]
            if isinstance(node.this, exp.Column):
                return self.condition(node.this.name, op, _literal(node.expression))
            if isinstance(node.expression, exp.Column):
                return self.condition(node.expression.name, _FLIP[op], _literal(node.this))
            return None
        if isinstance(node, exp.In) and isinstance(node.this, exp.Column):
            if node.args.get("query") is not None:
                return None
            return self._in(node.this.name, [_literal(v) for v in node.expressions])
        if isinstance(node, exp.Between) and isinstance(node.this, exp.Column):
            low = self.condition(node.this.name, ">=", _literal(node.args["low"]))
            high = self.condition(node.this.name, "<=", _literal(node.args["high"]))
            return Group("and", (low, high)) if low and high else None
        if isinstance(node, exp.Like) and isinstance(node.this, exp.Column):
            return self._like(node.this.name, _literal(node.expression))
        negated = isinstance(node, exp.Not)
        inner = node.this if negated else node
        inner = inner.this if isinstance(inner, exp.Paren) else inner
        is_null = isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null)
        if is_null and isinstance(inner.this, exp.Column):
            return self._null(inner.this.name, negated=negated)
        return None

    def keys(
        self, names: Sequence[str], rows: Sequence[Sequence[Any]], normalised: Sequence[str]
    ) -> Node | None:
        """A condition selecting at least the records whose ``names`` hold one of ``rows``
        (a superset: the engine compares exactly). A key the server cannot compare as the
        engine does (``normalised``: e-mail and phone rules, which normalise values) is left
        out; None when no key is left: every record is a candidate."""
        usable = [n for n in names if n not in normalised]
        if not rows or not usable:
            return None
        if len(usable) == 1:
            name = usable[0]
            position = list(names).index(name)
            return self._in(name, [_as_literal(r[position]) for r in rows])
        options: list[Node] = []
        for row in rows:
            parts = []
            for name in usable:
                part = self.condition(name, "=", _as_literal(row[list(names).index(name)]))
                if part is not None:
                    parts.append(part)
            if not parts:
                return None
            options.append(conjunction(parts))  # type: ignore[arg-type]
        return options[0] if len(options) == 1 else Group("or", tuple(options))

    # -- parts ------------------------------------------------------------------------------
    def _category(self, name: str) -> str | None:
        """text | number | real | datetime, or None when the field cannot be pushed."""
        column = self.meta.column(name)
        if column is None or not self.meta.schema.has(name):
            return None
        ftype = self.meta.schema.field(name).type
        if ftype.is_text:
            return "text"
        return {
            FieldType.INTEGER: "number",
            FieldType.DECIMAL: "real",
            FieldType.FLOAT: "real",
            FieldType.DATETIME: "datetime",
        }.get(ftype)

    def condition(self, name: str, op: str, value: Any) -> Node | None:
        category = self._category(name)
        column = self.meta.column(name)
        value = _typed(category, value)
        if category is None or column is None or value is _REFUSED or value is None:
            return None
        if category == "text":
            return Cond(column, "=", (value,)) if op == "=" else None
        if category == "real":
            if op == "=":
                return Cond(column, "between", (value - _SLACK, value + _SLACK))
            if op in ("<", "<="):
                return Cond(column, op, (value + _SLACK,))
            if op in (">", ">="):
                return Cond(column, op, (value - _SLACK,))
            return None
        if category == "datetime":
            floor = value.replace(microsecond=0)
            ceil = floor + dt.timedelta(seconds=1) if value.microsecond else floor
            if op == "=":
                return Cond(column, "between", (floor, ceil))
            if op == "<>":
                return None
            return Cond(column, op, (ceil if op in ("<", "<=") else floor,))
        return Cond(column, op, (value,))

    def _in(self, name: str, raw: list[Any]) -> Node | None:
        category = self._category(name)
        column = self.meta.column(name)
        values = [_typed(category, v) for v in raw]
        if category is None or column is None or not values:
            return None
        if any(v is _REFUSED or v is None for v in values):
            return None
        if category in ("text", "number"):
            return Cond(column, "in", tuple(dict.fromkeys(values)))
        parts = [self.condition(name, "=", v) for v in values]
        if any(p is None for p in parts):
            return None
        return Group("or", tuple(p for p in parts if p is not None))

    def _like(self, name: str, pattern: Any) -> Node | None:
        column = self.meta.column(name)
        if self._category(name) != "text" or column is None or not isinstance(pattern, str):
            return None
        if "[" in pattern:
            return None
        return Cond(column, "like", (pattern,))

    def _null(self, name: str, *, negated: bool) -> Node | None:
        column = self.meta.column(name)
        category = self._category(name)
        if self.rest or column is None or category is None:
            return None
        if negated:
            return Cond(column, "not_null")
        if category == "text":  # '' and NULL look alike to some clients: ask for both
            return Group("or", (Cond(column, "null"), Cond(column, "=", ("",))))
        return Cond(column, "null")


def _as_literal(value: Any) -> Any:
    """A key value as the planner takes literals (numbers as Decimal)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def _literal(node: exp.Expr) -> Any:
    if isinstance(node, exp.Paren):
        return _literal(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return _REFUSED
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else Decimal(node.this)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and node.this.is_number:
        return -Decimal(node.this.this)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
        target = node.to.this
        text = node.this.this
        try:
            if target in (exp.DataType.Type.DATE,):
                return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
            if target in (
                exp.DataType.Type.TIMESTAMP,
                exp.DataType.Type.TIMESTAMPTZ,
                exp.DataType.Type.TIMESTAMPNTZ,
                exp.DataType.Type.DATETIME,
            ):
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        except ValueError:
            return _REFUSED
        if target in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT):
            return text
    return _REFUSED


def _typed(category: str | None, value: Any) -> Any:
    """``value`` as DuckDB compares it with a field of ``category``; _REFUSED otherwise."""
    if value is None or value is _REFUSED:
        return value
    if category == "text":
        return value if isinstance(value, str) else _REFUSED
    if category in ("number", "real"):
        if not isinstance(value, Decimal) or not value.is_finite():
            return _REFUSED
        if category == "number" and value != value.to_integral_value():
            return _REFUSED
        return int(value) if category == "number" else value
    if category == "datetime":
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC)
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        if isinstance(value, str):
            try:
                moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return _REFUSED
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return _REFUSED


# -- rendering ----------------------------------------------------------------------------
def quote(text: str, *, unicode: bool) -> str:
    """A SQL string literal: single quotes doubled (``N'...'`` for SQL Server's Unicode)."""
    return ("N" if unicode else "") + "'" + text.replace("'", "''") + "'"


def _value(value: Any, zone: ZoneInfo, *, soap: bool) -> str:
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return format(Decimal(value), "f")
    if isinstance(value, dt.datetime):
        return quote(value.astimezone(zone).strftime(DB_FORMAT), unicode=False)
    return quote(str(value), unicode=soap)


def where_literal(value: Any, zone: ZoneInfo) -> str:
    """A Python value as a REST where literal (datetimes in ``zone``)."""
    return _value(value, zone, soap=False)


def to_query_string(node: Node, zone: ZoneInfo) -> str:
    """``node`` as a SOAP queryString; datetimes in ``zone`` (the database's)."""
    if isinstance(node, Group):
        glue = " AND " if node.op == "and" else " OR "
        return "(" + glue.join(to_query_string(p, zone) for p in node.parts) + ")"
    column, op, values = node.column, node.op, node.values
    if op == "null":
        return f"{column} IS NULL"
    if op == "not_null":
        return f"{column} IS NOT NULL"
    rendered = [_value(v, zone, soap=True) for v in values]
    if op == "in":
        return f"{column} IN ({', '.join(rendered)})"
    if op == "between":
        return f"{column} BETWEEN {rendered[0]} AND {rendered[1]}"
    if op == "like":
        return f"{column} LIKE {rendered[0]}"
    return f"{column} {op} {rendered[0]}"


def to_where(node: Node, zone: ZoneInfo) -> str:
    """``node`` as a REST ``where``; datetimes in ``zone``."""
    if isinstance(node, Group):
        glue = " and " if node.op == "and" else " or "
        return "(" + glue.join(to_where(p, zone) for p in node.parts) + ")"
    column, op, values = node.column, node.op, node.values
    rendered = [_value(v, zone, soap=False) for v in values]
    if op == "in":
        return f"{column} in ({', '.join(rendered)})"
    if op == "between":
        return f"{column} between {rendered[0]} and {rendered[1]}"
    if op == "like":
        return f"{column} like {rendered[0]}"
    if op in _REST_OPS:
        return f"{column} {_REST_OPS[op]} {rendered[0]}"
    raise ValueError(f"{op} has no REST form")  # pragma: no cover - the planner refuses it
