"""Filter pushdown: predicates of the expression language as a QuickBooks query ``WHERE``.

The language has only ``=, <, >, <=, >=, IN, LIKE`` joined by ``AND``: no OR, no NOT, no
``<>``, no NULL test. The rule that keeps pushdown exact is the SugarCRM connector's: what
the server is asked for must be a *superset* of what the predicate selects locally, and the
reader checks every pushed predicate again on the decoded rows. So text ``=``, ``IN`` and
``LIKE`` are pushed although the server compares text case-insensitively (it returns a few
rows too many, the re-check drops them), while text ``<``/``>`` are refused (a
case-insensitive order could leave out rows the local filter keeps).

What is pushed (a field is pushable when the API lets a query filter on it):

* text, enum, id and reference fields: ``=``, ``IN``; ``LIKE`` on text without ``_`` (the
  server's LIKE knows only ``%``);
* amounts and dates: ``=, <, <=, >, >=, IN, BETWEEN``;
* datetimes (``MetaData_*``): ``=, <, <=, >, >=, BETWEEN``, bounds rounded outwards to whole
  seconds (the server keeps whole seconds);
* booleans: ``Active``, ``NOT Active``, ``Active = true|false``, ``<>``;
* ``a = x OR a = y`` (one field, equalities only) as ``a IN (x, y)``; any other OR is
  evaluated locally.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlglot import exp

from crmbridge.connectors.quickbooks.catalog import EntityDef, Spec
from crmbridge.core.schema import FieldType

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}
_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?")
_TIMESTAMPS = {
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.TIMESTAMPNTZ,
    exp.DataType.Type.DATETIME,
}


@dataclass(frozen=True)
class Cond:
    """``prop op values`` with ``prop`` the query's property name (``MetaData.CreateTime``)."""

    prop: str
    op: str  # = < <= > >= in like
    values: tuple[Any, ...]


class _Refused:
    pass


_REFUSED: Any = _Refused()
Constant = Callable[[exp.Expression], Any]


class Planner:
    """Decides what of a predicate one entity's queries can evaluate."""

    def __init__(self, entity: EntityDef, constant: Constant | None = None) -> None:
        self.entity = entity
        self.constant = constant

    def plan(self, node: exp.Expr) -> list[Cond] | None:
        """Conditions selecting a superset of ``node``'s records, or None (not pushable)."""
        if isinstance(node, exp.Paren):
            return self.plan(node.this)
        if node.args.get("negate"):
            return None
        if isinstance(node, exp.And):
            left, right = self.plan(node.left), self.plan(node.right)
            return None if left is None or right is None else left + right
        if isinstance(node, exp.Or):
            return self._plan_or(node)
        if isinstance(node, exp.Not):
            inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
            if isinstance(inner, exp.Column):
                return self._condition(inner.name, "=", False)
            return None
        if isinstance(node, exp.Column):
            return self._condition(node.name, "=", True)
        if type(node) in _COMPARISONS:
            op = _COMPARISONS[type(node)]
            if isinstance(node.this, exp.Column):
                return self._condition(node.this.name, op, self._value(node.expression))
            if isinstance(node.expression, exp.Column):
                return self._condition(node.expression.name, _FLIP[op], self._value(node.this))
            return None
        if isinstance(node, exp.In):
            if not isinstance(node.this, exp.Column) or node.args.get("query") is not None:
                return None
            return self._in(node.this.name, [self._value(v) for v in node.expressions])
        if isinstance(node, exp.Between) and isinstance(node.this, exp.Column):
            low = self._condition(node.this.name, ">=", self._value(node.args["low"]))
            high = self._condition(node.this.name, "<=", self._value(node.args["high"]))
            return None if low is None or high is None else low + high
        if isinstance(node, exp.Like) and isinstance(node.this, exp.Column):
            return self._like(node.this.name, self._value(node.expression))
        return None

    # -- parts ----------------------------------------------------------------------------
    def _plan_or(self, node: exp.Or) -> list[Cond] | None:
        """``a = x OR a = y OR a IN (z)`` -> ``a IN (x, y, z)``; anything else: None."""
        name: str | None = None
        values: list[Any] = []
        for part in node.flatten():
            part = part.unnest() if isinstance(part, exp.Paren) else part
            if isinstance(part, exp.EQ) and isinstance(part.this, exp.Column):
                column, found = part.this.name, [self._value(part.expression)]
            elif isinstance(part, exp.In) and isinstance(part.this, exp.Column):
                if part.args.get("query") is not None or part.args.get("negate"):
                    return None
                column, found = part.this.name, [self._value(v) for v in part.expressions]
            else:
                return None
            if name is not None and column != name:
                return None
            name = column
            values += found
        return self._in(name, values) if name is not None else None

    def _spec(self, name: str) -> Spec | None:
        spec = self.entity.spec(name)
        return spec if spec is not None and spec.query else None

    def _condition(self, name: str, op: str, raw: Any) -> list[Cond] | None:
        spec = self._spec(name)
        if spec is None or raw is _REFUSED or raw is None:
            return None
        value = _typed(spec, raw)
        if value is _REFUSED:
            return None
        prop, kind = spec.query or name, spec.type
        if kind is FieldType.BOOLEAN:
            if op not in ("=", "<>"):
                return None
            return [Cond(prop, "=", (value if op == "=" else not value,))]
        if op == "<>":
            return None
        if kind.is_text:
            return [Cond(prop, "=", (value,))] if op == "=" else None
        if kind is FieldType.DATETIME:
            return _datetime_bounds(prop, op, value)
        return [Cond(prop, op, (value,))]

    def _in(self, name: str, raws: Sequence[Any]) -> list[Cond] | None:
        spec = self._spec(name)
        if spec is None or not raws or spec.type in (FieldType.BOOLEAN, FieldType.DATETIME):
            return None
        values = [
            _typed(spec, r) if r is not None and r is not _REFUSED else _REFUSED for r in raws
        ]
        if any(v is _REFUSED for v in values):
            return None
        unique = tuple(dict.fromkeys(values))
        op = "=" if len(unique) == 1 else "in"
        return [Cond(spec.query or name, op, unique)]

    def _like(self, name: str, pattern: Any) -> list[Cond] | None:
        spec = self._spec(name)
        if spec is None or spec.type not in (FieldType.STRING, FieldType.TEXT):
            return None
        if not isinstance(pattern, str) or "_" in pattern or "\\" in pattern:
            return None
        return [Cond(spec.query or name, "like", (pattern,))]

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


def _cast_literal(node: exp.Cast) -> Any:
    text = str(node.this.this)
    target = node.to.this
    try:
        if target == exp.DataType.Type.DATE and _DATE.fullmatch(text):
            return dt.date.fromisoformat(text)
        if target in _TIMESTAMPS and _DATETIME.fullmatch(text):
            return _aware(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return _REFUSED
    if target in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT):
        return text
    return _REFUSED


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _typed(spec: Spec, value: Any) -> Any:
    """``value`` as the local engine compares it with the field, or _REFUSED."""
    kind = spec.type
    if kind.is_text:
        return value if isinstance(value, str) else _REFUSED
    if kind is FieldType.BOOLEAN:
        return value if isinstance(value, bool) else _REFUSED
    if kind is FieldType.DECIMAL:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            return _REFUSED
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        return number if number.is_finite() else _REFUSED
    if kind is FieldType.DATE:
        if isinstance(value, str) and _DATE.fullmatch(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                return _REFUSED
        ok = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
        return value if ok else _REFUSED
    if kind is FieldType.DATETIME:
        if isinstance(value, str) and _DATETIME.fullmatch(value):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return _REFUSED
        if isinstance(value, dt.datetime):
            return _aware(value).astimezone(dt.UTC)
        return _REFUSED
    return _REFUSED


def _datetime_bounds(prop: str, op: str, moment: dt.datetime) -> list[Cond]:
    """The server keeps whole seconds: bounds rounded outwards keep every local match."""
    floor = moment.replace(microsecond=0)
    ceil = floor + dt.timedelta(seconds=1) if moment.microsecond else floor
    if op == "=":
        return [Cond(prop, ">=", (floor,)), Cond(prop, "<=", (ceil,))]
    if op in ("<", "<="):
        return [Cond(prop, "<=" if moment.microsecond else op, (ceil,))]
    return [Cond(prop, ">=" if moment.microsecond else op, (floor,))]


# -- rendering ----------------------------------------------------------------------------
def literal(value: Any) -> str:
    """A value as a query literal: strings quoted with ``\\'``, booleans bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | float):
        return format(Decimal(str(value)), "f")
    if isinstance(value, dt.datetime):
        return "'" + value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00") + "'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def render(conds: Sequence[Cond]) -> str:
    """The conditions as the text after ``WHERE`` (empty when there are none)."""
    parts = []
    for cond in conds:
        if cond.op == "in":
            parts.append(f"{cond.prop} IN ({', '.join(literal(v) for v in cond.values)})")
        elif cond.op == "like":
            parts.append(f"{cond.prop} LIKE {literal(cond.values[0])}")
        else:
            parts.append(f"{cond.prop} {cond.op} {literal(cond.values[0])}")
    return " AND ".join(parts)


def select(
    entity: str,
    conds: Sequence[Cond],
    *,
    start: int | None = None,
    max_results: int | None = None,
    count: bool = False,
) -> str:
    """A whole query: ``SELECT * FROM Customer WHERE ... ORDERBY Id STARTPOSITION ...``."""
    where = render(conds)
    text = f"SELECT {'COUNT(*)' if count else '*'} FROM {entity}"
    if where:
        text += f" WHERE {where}"
    if not count:
        text += " ORDERBY Id"
    if start is not None:
        text += f" STARTPOSITION {start}"
    if max_results is not None:
        text += f" MAXRESULTS {max_results}"
    return text
