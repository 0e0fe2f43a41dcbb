"""Filter pushdown: predicates of the expression language as v4_1 ``query`` SQL or v10 filters.

The rule that keeps pushdown exact: what the server is asked for must be a *superset* of what
the predicate selects locally, and the reader re-checks every pushed predicate on the decoded
rows (:mod:`crmbridge.connectors.sugarcrm.reader`). That is why text ``=``/``IN``/``LIKE`` may be
pushed although MySQL compares text case-insensitively and pads trailing spaces (the server
returns a few rows too many, the re-check drops them), while text ``<>``, ``NOT IN``, ``<``
and ``ILIKE`` are refused (the server could leave out rows the local filter keeps).

:func:`plan` turns a sqlglot predicate into a small tree of :class:`Cond` / :class:`Group`
nodes (or None: not pushable); :func:`to_sql` and :func:`to_filter` render a tree for each API.
Literals in SQL are quoted here: single quotes doubled, and a value holding a backslash (whose
meaning depends on the server's SQL mode) is matched with ``LIKE`` where each backslash is the
one-character wildcard ``_`` - never pasted into the SQL.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlglot import exp

from crmbridge.connectors.sugarcrm.discovery import ModuleMeta
from crmbridge.connectors.sugarcrm.values import DB_DATETIME, as_utc, email_variants
from crmbridge.core.schema import FieldType

#: the field matched through Sugar's e-mail tables (its primary address)
EMAIL_FIELD = "email1"
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}
_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_TEXT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
)
#: relative tolerance for numbers a server may keep as binary floating point
_REAL_TOLERANCE = Decimal("1e-9")


@dataclass(frozen=True)
class Cond:
    """``field op values``. Ops: = <> < <= > >= in not_in null not_null like."""

    field: str
    op: str
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Group:
    op: str  # "and" | "or"
    parts: tuple[Node, ...]


Node = Cond | Group
Constant = Callable[[exp.Expression], Any]


def conjunction(nodes: Sequence[Node]) -> Node | None:
    """The AND of ``nodes`` (None when there are none)."""
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else Group("and", tuple(nodes))


def keyset(order: Sequence[str], values: Sequence[Any], op: str = ">") -> Node:
    """The records after ``values`` in ``order`` (ascending): ``(a, b) > (x, y)`` written as
    ``a > x OR (a = x AND b > y)``, the form both APIs accept; ``op`` ``>=``, ``<``, ``<=``
    compare the same way. ``values`` are those of a record read (typed, as decoded), so they
    hold only what the server stored."""
    strict = op[0]  # ">" or "<"
    options: list[Node] = []
    for n, name in enumerate(order):
        same = [Cond(order[m], "=", (values[m],)) for m in range(n)]
        last = Cond(name, op if n == len(order) - 1 else strict, (values[n],))
        options.append(Group("and", (*same, last)) if same else last)
    return options[0] if len(options) == 1 else Group("or", tuple(options))


# -- planning -----------------------------------------------------------------------------
class FilterBuilder:
    """Decides what can be pushed down for one module.

    ``filterable(name)`` says whether the server accepts a filter on a stored field (it may
    ask the server); ``constant`` evaluates an expression without columns (``current_date - ...``),
    or is None when that is not available.
    """

    def __init__(
        self,
        meta: ModuleMeta,
        filterable: Callable[[str], bool],
        constant: Constant | None = None,
    ) -> None:
        self.meta = meta
        self.filterable = filterable
        self.constant = constant

    def plan(self, node: exp.Expr) -> Node | None:
        """The pushable form of ``node``, or None when it cannot be pushed exactly."""
        if isinstance(node, exp.Paren):
            return self.plan(node.this)
        if node.args.get("negate"):
            return None
        if isinstance(node, exp.And | exp.Or):
            left, right = self.plan(node.left), self.plan(node.right)
            if left is None or right is None:
                return None
            return Group("and" if isinstance(node, exp.And) else "or", (left, right))
        if isinstance(node, exp.Not):
            return self._plan_not(node.this)
        if isinstance(node, exp.Column):
            return self._compare(node, "=", exp.Boolean(this=True))
        if type(node) in _COMPARISONS:
            op = _COMPARISONS[type(node)]
            if isinstance(node.this, exp.Column):
                return self._compare(node.this, op, node.expression)
            if isinstance(node.expression, exp.Column):
                return self._compare(node.expression, _FLIP[op], node.this)
            return None
        if isinstance(node, exp.In):
            return self._plan_in(node, negated=False)
        if isinstance(node, exp.Is):
            return self._plan_is(node, negated=False)
        if isinstance(node, exp.Between):
            low = self._compare(node.this, ">=", node.args["low"])
            high = self._compare(node.this, "<=", node.args["high"])
            return Group("and", (low, high)) if low and high else None
        if isinstance(node, exp.Like):
            return self._plan_like(node)
        return None

    def since(self, field: str, value: Any) -> Node | None:
        """``field >= value`` for an incremental read."""
        return self._condition(field, ">=", value)

    def keys(self, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> Node | None:
        """Records whose ``names`` equal one of ``rows`` (a superset: matches are re-checked)."""
        if len(names) == 1:
            values = tuple(dict.fromkeys(r[0] for r in rows))
            return self._in(names[0], values, negated=False)
        options: list[Node] = []
        for row in rows:
            parts = [self._condition(n, "=", v) for n, v in zip(names, row, strict=True)]
            if any(p is None for p in parts):
                return None
            options.append(Group("and", tuple(p for p in parts if p is not None)))
        return Group("or", tuple(options)) if len(options) > 1 else options[0]

    # -- parts --------------------------------------------------------------------------
    def _plan_not(self, inner: exp.Expr) -> Node | None:
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if isinstance(inner, exp.Is):
            return self._plan_is(inner, negated=True)
        if isinstance(inner, exp.In):
            return self._plan_in(inner, negated=True)
        if isinstance(inner, exp.Column):
            return self._compare(inner, "=", exp.Boolean(this=False))
        if isinstance(inner, exp.EQ) and isinstance(inner.this, exp.Column):
            return self._compare(inner.this, "<>", inner.expression)
        return None

    def _plan_is(self, node: exp.Is, *, negated: bool) -> Node | None:
        if not isinstance(node.this, exp.Column) or not isinstance(node.expression, exp.Null):
            return None
        name = node.this.name
        if name == EMAIL_FIELD or not self._usable(name) or self._category(name) == "bool":
            return None  # a NULL boolean reads as false: never NULL, evaluated here
        return Cond(name, "not_null" if negated else "null")

    def _plan_in(self, node: exp.In, *, negated: bool) -> Node | None:
        if not isinstance(node.this, exp.Column) or node.args.get("query") is not None:
            return None
        values = [self._value(v) for v in node.expressions]
        if not values or any(v is _REFUSED or v is None for v in values):
            return None
        return self._in(node.this.name, tuple(values), negated=negated)

    def _plan_like(self, node: exp.Like) -> Node | None:
        column, pattern = node.this, self._value(node.expression)
        if not isinstance(column, exp.Column) or not isinstance(pattern, str):
            return None
        name = column.name
        if not self._usable(name) or self._category(name) != "text":
            return None
        return Cond(name, "like", (pattern,))

    def _compare(self, column: exp.Expr, op: str, other: exp.Expr) -> Node | None:
        if not isinstance(column, exp.Column):
            return None
        value = self._value(other)
        if value is _REFUSED or value is None:
            return None
        return self._condition(column.name, op, value)

    def _in(self, name: str, values: tuple[Any, ...], *, negated: bool) -> Node | None:
        if not self._usable(name):
            return None
        typed = [self._typed(name, v) for v in values]
        if any(v is _REFUSED for v in typed):
            return None
        category = self._category(name)
        if negated:
            if category not in ("number", "date"):
                return None
            return Cond(name, "not_in", tuple(typed))
        if category in ("real", "datetime"):
            parts = [self._condition(name, "=", v) for v in typed]
            if any(p is None for p in parts):
                return None
            return Group("or", tuple(p for p in parts if p is not None))
        if category == "bool":
            return None
        if name == EMAIL_FIELD and not all(isinstance(v, str) for v in typed):
            return None
        return Cond(name, "in", tuple(typed))

    def _condition(self, name: str, op: str, raw: Any) -> Node | None:
        if not self._usable(name):
            return None
        value = self._typed(name, raw)
        if value is _REFUSED:
            return None
        category = self._category(name)
        if category == "text":
            return Cond(name, "=", (value,)) if op == "=" else None
        if name == EMAIL_FIELD:
            return None
        if category == "bool":
            if op not in ("=", "<>"):
                return None
            return Cond(name, "=", (value if op == "=" else not value,))
        if category == "real":
            return self._real(name, op, value)
        if category == "datetime":
            return _datetime_condition(name, op, value)
        return Cond(name, op, (value,))

    def _real(self, name: str, op: str, value: Decimal) -> Node | None:
        field = self.meta.schema.field(name)
        scale = field.scale if field.type is FieldType.DECIMAL and field.scale else 6
        slack = max(Decimal(1).scaleb(-scale), abs(value) * _REAL_TOLERANCE)
        if op == "=":
            return Group(
                "and", (Cond(name, ">=", (value - slack,)), Cond(name, "<=", (value + slack,)))
            )
        if op in ("<", "<="):
            return Cond(name, op, (value + slack,))
        if op in (">", ">="):
            return Cond(name, op, (value - slack,))
        return None

    # -- values -------------------------------------------------------------------------
    def _usable(self, name: str) -> bool:
        if not self.meta.schema.has(name) or self._category(name) == "list":
            return False  # a multienum's ^a^,^b^ text is no list the server compares
        if name != EMAIL_FIELD and self.meta.column(name) is None:
            return False  # computed, not stored: the server cannot filter on it
        return self.filterable(name)

    def _category(self, name: str) -> str:
        return _CATEGORIES[self.meta.schema.field(name).type]

    def _value(self, node: exp.Expr) -> Any:
        """The Python value of a literal expression; _REFUSED when it is not one."""
        if isinstance(node, exp.Paren):
            return self._value(node.this)
        if isinstance(node, exp.Null):
            return None
        if isinstance(node, exp.Boolean):
            return bool(node.this)
        if isinstance(node, exp.Literal):
            return node.this if node.is_string else Decimal(node.this)
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            inner = self._value(node.this)
            return -inner if isinstance(inner, Decimal) else _REFUSED
        if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and not self.constant:
            return _cast_literal(node)
        # everything else, casts of literals too, as the local engine computes it
        # (``TIMESTAMP '... +02'`` drops the offset, ``cast(1e3 AS VARCHAR)`` is '1000.0')
        if self.constant is not None and isinstance(node, exp.Expression) and not _columns(node):
            try:
                return self.constant(node)
            except Exception:  # a constant we cannot evaluate is simply not pushed
                return _REFUSED
        return _REFUSED

    def _typed(self, name: str, value: Any) -> Any:
        """``value`` converted the way DuckDB compares it with the field, or _REFUSED."""
        category = self._category(name)
        if category == "text":
            return value if isinstance(value, str) else _REFUSED
        if category == "bool":
            return value if isinstance(value, bool) else _REFUSED
        if category in ("number", "real"):
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                return _REFUSED
            number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
            return number if number.is_finite() else _REFUSED
        if category == "date":
            if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
                return _parse(dt.date.fromisoformat, value)
            ok = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
            return value if ok else _REFUSED
        if isinstance(value, str) and _DATETIME_TEXT.fullmatch(value):
            value = _parse(dt.datetime.fromisoformat, value.replace("Z", "+00:00"))
        if isinstance(value, dt.datetime):
            return as_utc(value)
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return _REFUSED


def _columns(node: exp.Expression) -> list[exp.Column]:
    return list(node.find_all(exp.Column))


class _Refused:
    def __repr__(self) -> str:
        return "<refused>"


_REFUSED: Any = _Refused()
_CATEGORIES = {
    FieldType.STRING: "text",
    FieldType.TEXT: "text",
    FieldType.ENUM: "text",
    FieldType.ID: "text",
    FieldType.INTEGER: "number",
    FieldType.DECIMAL: "real",
    FieldType.FLOAT: "real",
    FieldType.BOOLEAN: "bool",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime",
    FieldType.LIST: "list",
}


def _parse(parser: Callable[[str], Any], text: str) -> Any:
    try:
        return parser(text)
    except ValueError:
        return _REFUSED


_TIMESTAMP_TYPES = frozenset(
    {
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPNTZ,
        exp.DataType.Type.TIMESTAMPTZ,
        exp.DataType.Type.DATETIME,
    }
)


def _cast_literal(node: exp.Cast) -> Any:
    text = node.this.this
    target = node.to.this
    if target == exp.DataType.Type.DATE and _DATE_TEXT.fullmatch(text):
        return _parse(dt.date.fromisoformat, text)
    if target in _TIMESTAMP_TYPES and _DATETIME_TEXT.fullmatch(text):
        return _parse(dt.datetime.fromisoformat, text.replace("Z", "+00:00"))
    if target in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT):
        return text
    return _REFUSED


def _datetime_condition(name: str, op: str, moment: dt.datetime) -> Node | None:
    """Sugar keeps whole seconds: round the bound outwards so nothing is left out."""
    floor = moment.replace(microsecond=0)
    ceil = floor + dt.timedelta(seconds=1) if moment.microsecond else floor
    if op == "=":
        return Group("and", (Cond(name, ">=", (floor,)), Cond(name, "<=", (ceil,))))
    if op == "<>":
        return Group("or", (Cond(name, "<", (ceil,)), Cond(name, ">", (floor,))))
    if op in ("<", "<="):
        return Cond(name, op, (ceil,))
    return Cond(name, op, (floor,))


# -- v4_1 SQL -----------------------------------------------------------------------------
def to_sql(node: Node, meta: ModuleMeta) -> str:
    """``node`` as a v4_1 ``query`` fragment (table-qualified columns, quoted literals)."""
    if isinstance(node, Group):
        glue = " AND " if node.op == "and" else " OR "
        return "(" + glue.join(to_sql(p, meta) for p in node.parts) + ")"
    if node.field == EMAIL_FIELD:
        return _email_sql(node, meta)
    column = meta.column(node.field)
    if column is None:  # pragma: no cover - the builder only passes filterable fields
        raise ValueError(f"{node.field!r} is not a column")
    return _column_sql(column, node, text=_is_text(meta, node.field))


def _is_text(meta: ModuleMeta, name: str) -> bool:
    return _CATEGORIES[meta.schema.field(name).type] == "text"


def _column_sql(column: str, node: Cond, *, text: bool) -> str:
    op, values = node.op, node.values
    if op == "null":  # Sugar reads an empty text as null, so '' counts as null too
        if text:
            return f"({column} IS NULL OR {column} = '')"
        return f"{column} IS NULL"
    if op == "not_null":
        return f"{column} IS NOT NULL"
    if op == "like":
        return f"{column} LIKE {quote(values[0].replace(chr(92), '_'))}"
    if op == "=" and values[0] is False:  # a NULL boolean reads as false
        return f"({column} = 0 OR {column} IS NULL)"
    if op in ("=", "in"):
        return _text_match(column, values)
    if op == "not_in":
        return f"{column} NOT IN ({', '.join(sql_literal(v) for v in values)})"
    return f"{column} {op} {sql_literal(values[0])}"


def _text_match(column: str, values: Sequence[Any]) -> str:
    """``column = v`` / ``IN (...)``; values with a backslash go through LIKE (see module doc)."""
    plain = [v for v in values if not (isinstance(v, str) and "\\" in v)]
    tricky = [v for v in values if isinstance(v, str) and "\\" in v]
    parts: list[str] = []
    if len(plain) == 1:
        parts.append(f"{column} = {sql_literal(plain[0])}")
    elif plain:
        parts.append(f"{column} IN ({', '.join(sql_literal(v) for v in plain)})")
    parts += [f"{column} LIKE {quote(v.replace(chr(92), '_'))}" for v in tricky]
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _email_sql(node: Cond, meta: ModuleMeta) -> str:
    """A subquery on the e-mail tables. ``email_address_caps`` is upper-cased by the server,
    ASCII letters only (PHP 8) or every letter (older setups): both forms are asked for, so the
    answer is a superset either way (the reader re-checks)."""
    caps = "ea.email_address_caps"
    if node.op == "like":
        patterns = email_variants(node.values[0].replace(chr(92), "_"))
        condition = " OR ".join(f"{caps} LIKE {quote(p)}" for p in patterns)
        condition = f"({condition})" if len(patterns) > 1 else condition
    else:
        wanted = [w for v in node.values for w in email_variants(str(v).strip())]
        condition = _text_match(caps, list(dict.fromkeys(wanted)))
    return (
        f"{meta.table}.id IN (SELECT eabr.bean_id FROM email_addr_bean_rel eabr "
        "JOIN email_addresses ea ON ea.id = eabr.email_address_id "
        f"WHERE eabr.bean_module = {quote(meta.name)} AND eabr.deleted = 0 AND {condition})"
    )


def quote(text: str) -> str:
    """A SQL string literal: single quotes doubled. Text with a backslash is never quoted
    (its meaning depends on the server's SQL mode); callers turn it into a LIKE pattern."""
    if "\\" in text:
        raise ValueError("backslashes are not quoted")
    return "'" + text.replace("'", "''") + "'"


def sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal | int):
        return format(Decimal(value), "f")
    if isinstance(value, dt.datetime):
        return quote(as_utc(value).strftime(DB_DATETIME))
    if isinstance(value, dt.date):
        return quote(value.isoformat())
    return quote(str(value))


# -- v10 filter ---------------------------------------------------------------------------
def to_filter(node: Node, meta: ModuleMeta) -> dict[str, Any] | None:
    """``node`` as one v10 filter clause (None when a LIKE pattern has no v10 form)."""
    if isinstance(node, Group):
        parts = [to_filter(p, meta) for p in node.parts]
        if any(p is None for p in parts):
            return None
        return {"$and" if node.op == "and" else "$or": parts}
    name = "email" if node.field == EMAIL_FIELD else node.field
    values = [json_value(v) for v in node.values]
    if meta.schema.field(node.field).type is FieldType.BOOLEAN:
        return _bool_filter(name, node)
    if node.op == "null":
        if _is_text(meta, node.field):
            return {"$or": [{name: {"$is_null": ""}}, {name: {"$equals": ""}}]}
        return {name: {"$is_null": ""}}
    if node.op == "not_null":
        return {name: {"$not_null": ""}}
    if node.op == "like":
        return _like_filter(name, node.values[0])
    if node.field == EMAIL_FIELD:  # Sugar matches addresses trimmed; most servers ignore case
        values = list(dict.fromkeys(f(str(v).strip()) for v in values for f in (str, str.lower)))
        return {name: {"$in": values}}
    if node.op == "=" and isinstance(node.values[0], dt.datetime):
        # a keyset's "same second": never $equals, a whole day on Sugar for a value without time
        return {"$and": [{name: {"$gte": values[0]}}, {name: {"$lte": values[0]}}]}
    if node.op == "in":
        return {name: {"$in": values}}
    if node.op == "not_in":
        return {name: {"$not_in": values}}
    return {name: {_V10_OPS[node.op]: values[0]}}


_V10_OPS = {"=": "$equals", "<>": "$not_equals", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def _bool_filter(name: str, node: Cond) -> dict[str, Any]:
    """A NULL boolean reads as false, so false must match NULL too."""
    if node.op == "=" and node.values[0] is False:
        return {"$or": [{name: {"$equals": False}}, {name: {"$is_null": ""}}]}
    return {name: {"$equals": node.values[0]}}


def _like_filter(name: str, pattern: str) -> dict[str, Any]:
    """A LIKE pattern as $equals / $starts / $contains on its longest fixed part (a superset;
    the reader re-checks the pattern)."""
    runs = re.split(r"[%_]", pattern)
    if len(runs) == 1:
        return {name: {"$equals": pattern}}
    if runs[0]:
        return {name: {"$starts": runs[0]}}
    longest = max(runs, key=len)
    if not longest:
        return {name: {"$not_null": ""}}
    if pattern.endswith(longest) and len([r for r in runs if r]) == 1:
        return {name: {"$ends": longest}}
    return {name: {"$contains": longest}}


def json_value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return as_utc(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):  # pragma: no cover
        raise ValueError(value)
    return value
