"""Filter pushdown: predicates of the expression language as a SOQL ``WHERE``, with every
literal formatted here (strings quoted and escaped, dates and datetimes unquoted).

The rule that keeps pushdown exact: what Salesforce is asked for must be a *superset* of what
the predicate selects locally, and the reader re-checks every pushed predicate on the decoded
rows. SOQL compares text case-insensitively, and ``!=`` / ``NOT IN`` keep records whose field
is null, so text ``=`` / ``IN`` / ``LIKE`` and number ``<>`` may be pushed (a few rows too
many come back and the re-check drops them), while text ``<>``, ``NOT IN``, ``<`` ... are
refused (Salesforce would leave out rows the local filter keeps). Datetime bounds are rounded
outwards to whole seconds. Fields ``describe`` marks as not filterable (long text areas) are
never pushed, nor are id values that are not ids (Salesforce refuses the whole query for those).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlglot import exp

from crmbridge.connectors.salesforce.discovery import ObjectMeta
from crmbridge.core.schema import FieldType

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}
_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=", exp.NEQ: "<>", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">=",
}  # fmt: skip
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_TEXT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
)
_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\b": "\\b", "\f": "\\f"}  # fmt: skip


@dataclass(frozen=True)
class Cond:
    """``field op values``. Ops: = != < <= > >= in not_in null not_null like."""

    field: str
    op: str
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Group:
    op: str  # "and" | "or"
    parts: tuple[Node, ...]


Node = Cond | Group
Constant = Callable[[exp.Expression], Any]


class _Refused:
    def __repr__(self) -> str:
        return "<refused>"


_REFUSED: Any = _Refused()


def is_id(text: str) -> bool:
    """Whether ``text`` is a 15-character id, or an 18-character one whose case-safe suffix
    matches (each suffix character encodes which of five characters are upper case)."""
    if not _ID.fullmatch(text):
        return False
    if len(text) == 15:
        return True
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(text[start : start + 5]) if ch.isupper())
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return text[15:].upper() == suffix


def conjunction(nodes: Sequence[Node]) -> Node | None:
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else Group("and", tuple(nodes))


class Pushdown:
    """Decides what can be pushed down for one sObject. ``constant`` evaluates expressions
    without columns (``current_date - INTERVAL 7 DAY``)."""

    def __init__(self, meta: ObjectMeta, constant: Constant | None = None) -> None:
        self.meta = meta
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
            return self.condition(node.name, "=", True)
        if type(node) in _COMPARISONS:
            op = _COMPARISONS[type(node)]
            if isinstance(node.this, exp.Column):
                return self._compare(node.this.name, op, node.expression)
            if isinstance(node.expression, exp.Column):
                return self._compare(node.expression.name, _FLIP[op], node.this)
            return None
        if isinstance(node, exp.In):
            return self._plan_in(node, negated=False)
        if isinstance(node, exp.Is):
            return self._plan_is(node, negated=False)
        if isinstance(node, exp.Between) and isinstance(node.this, exp.Column):
            low = self._compare(node.this.name, ">=", node.args["low"])
            high = self._compare(node.this.name, "<=", node.args["high"])
            return Group("and", (low, high)) if low and high else None
        if isinstance(node, exp.Like) and isinstance(node.this, exp.Column):
            return self._plan_like(node.this.name, self._value(node.expression))
        return None

    def since(self, field: str, value: Any) -> Node | None:
        """``field >= value`` for an incremental read."""
        return self.condition(field, ">=", value)

    # -- parts --------------------------------------------------------------------------
    def _plan_not(self, inner: exp.Expr) -> Node | None:
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if isinstance(inner, exp.Is):
            return self._plan_is(inner, negated=True)
        if isinstance(inner, exp.In):
            return self._plan_in(inner, negated=True)
        if isinstance(inner, exp.Column):
            return self.condition(inner.name, "=", False)
        if isinstance(inner, exp.EQ) and isinstance(inner.this, exp.Column):
            return self._compare(inner.this.name, "<>", inner.expression)
        return None

    def _plan_is(self, node: exp.Is, *, negated: bool) -> Node | None:
        if not isinstance(node.this, exp.Column) or not isinstance(node.expression, exp.Null):
            return None
        name = node.this.name
        if not self._usable(name) or self._category(name) == "bool":
            return None
        return Cond(name, "not_null" if negated else "null")

    def _plan_in(self, node: exp.In, *, negated: bool) -> Node | None:
        if not isinstance(node.this, exp.Column) or node.args.get("query") is not None:
            return None
        name = node.this.name
        values = [self._value(v) for v in node.expressions]
        if not values or any(v is _REFUSED or v is None for v in values):
            return None
        if not self._usable(name):
            return None
        typed = [self._typed(name, v) for v in values]
        if any(v is _REFUSED for v in typed):
            return None
        category = self._category(name)
        if category in ("bool",):
            return None
        if negated:
            return Cond(name, "not_in", tuple(typed)) if category in ("number", "date") else None
        if category == "datetime":
            parts = [self.condition(name, "=", v) for v in typed]
            if any(p is None for p in parts):
                return None
            return Group("or", tuple(p for p in parts if p is not None))
        return Cond(name, "in", tuple(dict.fromkeys(typed)))

    def _plan_like(self, name: str, pattern: Any) -> Node | None:
        if not isinstance(pattern, str) or "\\" in pattern or not self._usable(name):
            return None
        if self._category(name) != "text" or self.meta.schema.field(name).type is FieldType.ID:
            return None
        return Cond(name, "like", (pattern,))

    def _compare(self, name: str, op: str, other: exp.Expr) -> Node | None:
        value = self._value(other)
        if value is _REFUSED or value is None:
            return None
        return self.condition(name, op, value)

    def condition(self, name: str, op: str, raw: Any) -> Node | None:
        """``name op raw`` when it can be pushed (None otherwise)."""
        if not self._usable(name):
            return None
        value = self._typed(name, raw)
        if value is _REFUSED:
            return None
        category = self._category(name)
        if category == "text":
            return Cond(name, "=", (value,)) if op == "=" else None
        if category == "bool":
            if op not in ("=", "<>"):
                return None
            return Cond(name, "=", (value if op == "=" else not value,))
        if category == "datetime":
            return datetime_condition(name, op, value)
        return Cond(name, "!=" if op == "<>" else op, (value,))

    # -- values -------------------------------------------------------------------------
    def _usable(self, name: str) -> bool:
        return self.meta.schema.has(name) and self.meta.filterable(name)

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
        if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
            return _cast_literal(node)
        if (
            self.constant is not None
            and isinstance(node, exp.Expression)
            and not list(node.find_all(exp.Column))
        ):
            try:
                return self.constant(node)
            except Exception:  # a constant we cannot evaluate is simply not pushed
                return _REFUSED
        return _REFUSED

    def _typed(self, name: str, value: Any) -> Any:
        """``value`` converted the way DuckDB compares it with the field, or _REFUSED."""
        field = self.meta.schema.field(name)
        category = _CATEGORIES[field.type]
        if category == "text":
            if not isinstance(value, str):
                return _REFUSED
            if field.type is FieldType.ID and not is_id(value):
                return _REFUSED  # Salesforce refuses the query for a value that is no id
            return value
        if category == "bool":
            return value if isinstance(value, bool) else _REFUSED
        if category == "number":
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
            return _utc(value)
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return _REFUSED


_CATEGORIES = {
    FieldType.STRING: "text", FieldType.TEXT: "text", FieldType.ENUM: "text",
    FieldType.ID: "text", FieldType.INTEGER: "number", FieldType.DECIMAL: "number",
    FieldType.FLOAT: "number", FieldType.BOOLEAN: "bool", FieldType.DATE: "date",
    FieldType.DATETIME: "datetime",
}  # fmt: skip
_TIMESTAMP_TYPES = frozenset(
    {
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPNTZ,
        exp.DataType.Type.TIMESTAMPTZ,
        exp.DataType.Type.DATETIME,
    }
)


def _utc(moment: dt.datetime) -> dt.datetime:
    """Naive datetimes are UTC (as the expression language's DuckDB session is)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _parse(parser: Callable[[str], Any], text: str) -> Any:
    try:
        return parser(text)
    except ValueError:
        return _REFUSED


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


def datetime_condition(name: str, op: str, moment: dt.datetime) -> Node | None:
    """Round the bound outwards to whole seconds (SOQL literals have no fractions)."""
    floor = moment.replace(microsecond=0)
    ceil = floor + dt.timedelta(seconds=1) if moment.microsecond else floor
    if op == "=":
        return Group("and", (Cond(name, ">=", (floor,)), Cond(name, "<=", (ceil,))))
    if op in ("<", "<="):
        return Cond(name, op if ceil == floor else "<=", (ceil,))
    if op in (">", ">="):
        return Cond(name, op if ceil == floor else ">=", (floor,))
    return None


# -- rendering ----------------------------------------------------------------------------
def quote(text: str) -> str:
    """A SOQL string literal: single-quoted, with backslash escapes."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in text) + "'"


def literal(value: Any) -> str:
    """A Python value as a SOQL literal (dates and datetimes unquoted, in UTC)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return format(Decimal(value), "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, dt.datetime):
        return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return quote(str(value))


def where(node: Node) -> str:
    """``node`` as a SOQL condition (every group in parentheses: SOQL refuses AND and OR
    mixed without them)."""
    if isinstance(node, Group):
        glue = " AND " if node.op == "and" else " OR "
        return "(" + glue.join(where(p) for p in node.parts) + ")"
    name, op, values = node.field, node.op, node.values
    if op == "null":
        return f"{name} = null"
    if op == "not_null":
        return f"{name} != null"
    if op == "in":
        return f"{name} IN ({', '.join(literal(v) for v in values)})"
    if op == "not_in":
        return f"{name} NOT IN ({', '.join(literal(v) for v in values)})"
    if op == "like":
        return f"{name} LIKE {quote(values[0])}"
    return f"{name} {op} {literal(values[0])}"


def select(
    object: str,
    fields: Sequence[str],
    condition: str | None = None,
    order: Sequence[str] = (),
) -> str:
    text = f"SELECT {', '.join(fields)} FROM {object}"
    if condition:
        text += f" WHERE {condition}"
    if order:
        text += " ORDER BY " + ", ".join(f"{f} ASC" for f in order)
    return text
