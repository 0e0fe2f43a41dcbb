"""REST v10 filter JSON compiled to a parameterised SQLite condition.

A filter is a list of clauses (joined with AND); a clause maps field names (or ``$and`` /
``$or``) to a value (meaning ``$equals``) or to ``{operator: value}``. Datetime values are
ISO 8601 (naive means the user's time zone) and compare against the stored UTC text.
An unknown operator or field raises :class:`FilterError` (HTTP 422 ``invalid_parameter``).
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from crmbridge.sandbox.sugarcrm.store import field_expr
from crmbridge.sandbox.sugarcrm.values import (
    DB_DATETIME,
    parse_client_datetime,
    parse_date,
    truthy,
)
from crmbridge.sandbox.sugarcrm.vardefs import FieldDef, ModuleDef


class FilterError(Exception):
    """The filter is invalid (HTTP 422 ``invalid_parameter``)."""


OPERATORS = frozenset(
    (
        "$equals",
        "$not_equals",
        "$starts",
        "$ends",
        "$contains",
        "$not_contains",
        "$lt",
        "$lte",
        "$gt",
        "$gte",
        "$in",
        "$not_in",
        "$between",
        "$dateBetween",
        "$dateRange",
        "$is_null",
        "$not_null",
        "$empty",
        "$not_empty",
    )
)
_COMPARE = {"$equals": "=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_LIKE = {"$starts": "{}%", "$ends": "%{}", "$contains": "%{}%"}


class _Compiler:
    def __init__(self, mdef: ModuleDef, zone: ZoneInfo) -> None:
        self.mdef = mdef
        self.zone = zone
        self.params: list[Any] = []

    def clauses(self, clauses: Any, joiner: str = "AND") -> str:
        if isinstance(clauses, dict):
            clauses = [clauses]
        if not isinstance(clauses, list):
            raise FilterError("filter must be a list of clauses")
        parts = [self.clause(c) for c in clauses]
        parts = [p for p in parts if p]
        return f"({f' {joiner} '.join(parts)})" if parts else ""

    def clause(self, clause: Any) -> str:
        if not isinstance(clause, dict):
            raise FilterError("each filter clause must be an object")
        parts = []
        for name, spec in clause.items():
            if name in ("$and", "$or"):
                parts.append(self.clauses(spec, name[1:].upper()))
            elif name.startswith("$"):
                raise FilterError(f"Did not recognize the operator: {name}")
            else:
                parts.append(self.field(name, spec))
        parts = [p for p in parts if p]
        return f"({' AND '.join(parts)})" if parts else ""

    def field(self, name: str, spec: Any) -> str:
        if name == "email":
            return self.email(spec)
        fdef = self.mdef.field(name)
        if fdef is None:
            raise FilterError(f"Unknown field: {name} in module: {self.mdef.name}")
        ops = spec if isinstance(spec, dict) else {"$equals": spec}
        parts = [self.operator(fdef, field_expr(self.mdef, fdef), op, v) for op, v in ops.items()]
        return " AND ".join(parts)

    def email(self, spec: Any) -> str:
        ops = spec if isinstance(spec, dict) else {"$equals": spec}
        fdef = FieldDef("email_address", "varchar", 255)
        cond = " AND ".join(self.operator(fdef, "ea.email_address", op, v) for op, v in ops.items())
        return (
            f"{self.mdef.table}.id IN (SELECT r.bean_id FROM email_addr_bean_rel r JOIN "
            "email_addresses ea ON ea.id = r.email_address_id AND ea.deleted = 0 WHERE "
            f"r.bean_module = '{self.mdef.name}' AND r.deleted = 0 AND {cond})"
        )

    def value(self, fdef: FieldDef, raw: Any, *, end_of_day: bool = False) -> Any:
        """A filter value as the column stores it."""
        try:
            if fdef.type == "datetime":
                text = str(raw)
                if len(text.strip()) == 10:  # a bare date: the whole day in the user's zone
                    day = date.fromisoformat(text.strip())
                    return self.day_bound(day, end=end_of_day)
                return parse_client_datetime(text, self.zone)
            if fdef.type == "date":
                return parse_date(str(raw))
        except ValueError:
            raise FilterError(f"Invalid value {raw!r} for field {fdef.name}") from None
        if fdef.type == "bool":
            return 1 if truthy(raw) else 0
        if isinstance(raw, dict | list):
            raise FilterError(f"Invalid value for field {fdef.name}")
        return raw

    def day_bound(self, day: date, *, end: bool) -> str:
        moment = datetime.combine(day, time(23, 59, 59) if end else time(0, 0, 0), self.zone)
        return moment.astimezone(ZoneInfo("UTC")).strftime(DB_DATETIME)

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def operator(self, fdef: FieldDef, col: str, op: str, raw: Any) -> str:
        handler = _HANDLERS.get(op)
        if handler is None:
            raise FilterError(f"Did not recognize the operator: {op}")
        return handler(self, fdef, col, raw)


def _compare(op: str) -> Callable[[_Compiler, FieldDef, str, Any], str]:
    def build(c: _Compiler, fdef: FieldDef, col: str, raw: Any) -> str:
        value = c.value(fdef, raw, end_of_day=op in ("$lte", "$gt"))
        if op == "$equals" and fdef.type == "datetime" and len(str(raw).strip()) == 10:
            end = c.value(fdef, raw, end_of_day=True)
            return f"{col} BETWEEN {c.bind(value)} AND {c.bind(end)}"
        return f"{col} {_COMPARE[op]} {c.bind(value)}"

    return build


def _like(op: str, negate: bool = False) -> Callable[[_Compiler, FieldDef, str, Any], str]:
    def build(c: _Compiler, fdef: FieldDef, col: str, raw: Any) -> str:
        escaped = str(raw).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        mark = c.bind(_LIKE[op].format(escaped))
        if negate:
            return f"({col} NOT LIKE {mark} ESCAPE '\\' OR {col} IS NULL)"
        return f"{col} LIKE {mark} ESCAPE '\\'"

    return build


def _not_equals(c: _Compiler, fdef: FieldDef, col: str, raw: Any) -> str:
    return f"({col} != {c.bind(c.value(fdef, raw))} OR {col} IS NULL)"


def _in(negate: bool) -> Callable[[_Compiler, FieldDef, str, Any], str]:
    def build(c: _Compiler, fdef: FieldDef, col: str, raw: Any) -> str:
        if not isinstance(raw, list):
            raise FilterError(f"$in / $not_in on {fdef.name} needs a list")
        if not raw:
            return "1 = 1" if negate else "1 = 0"
        marks = ", ".join(c.bind(c.value(fdef, v)) for v in raw)
        return f"({col} NOT IN ({marks}) OR {col} IS NULL)" if negate else f"{col} IN ({marks})"

    return build


def _between(c: _Compiler, fdef: FieldDef, col: str, raw: Any) -> str:
    if not isinstance(raw, list) or len(raw) != 2:
        raise FilterError(f"$between on {fdef.name} needs two values")
    low = c.value(fdef, raw[0])
    high = c.value(fdef, raw[1], end_of_day=True)
    return f"{col} BETWEEN {c.bind(low)} AND {c.bind(high)}"


def _date_between(c: _Compiler, fdef: FieldDef, col: str, raw: Any) -> str:
    if not isinstance(raw, list) or len(raw) != 2:
        raise FilterError(f"$dateBetween on {fdef.name} needs two dates")
    try:
        first, last = (date.fromisoformat(str(v).strip()[:10]) for v in raw)
    except ValueError:
        raise FilterError(f"Invalid dates {raw!r} for field {fdef.name}") from None
    return _day_range(c, fdef, col, first, last)


def _day_range(c: _Compiler, fdef: FieldDef, col: str, first: date, last: date) -> str:
    if fdef.type == "datetime":
        low, high = c.day_bound(first, end=False), c.day_bound(last, end=True)
    else:
        low, high = first.isoformat(), last.isoformat()
    return f"{col} BETWEEN {c.bind(low)} AND {c.bind(high)}"


def _date_range(c: _Compiler, fdef: FieldDef, col: str, raw: Any) -> str:
    today = datetime.now(c.zone).date()
    month_start = today.replace(day=1)

    def month(offset: int) -> tuple[date, date]:
        year, month_no = divmod(month_start.month - 1 + offset, 12)
        first = date(month_start.year + year, month_no + 1, 1)
        return first, first.replace(day=monthrange(first.year, first.month)[1])

    ranges = {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1),) * 2,
        "tomorrow": (today + timedelta(days=1),) * 2,
        "last_7_days": (today - timedelta(days=6), today),
        "next_7_days": (today, today + timedelta(days=6)),
        "last_30_days": (today - timedelta(days=29), today),
        "next_30_days": (today, today + timedelta(days=29)),
        "this_month": month(0),
        "last_month": month(-1),
        "next_month": month(1),
        "this_year": (date(today.year, 1, 1), date(today.year, 12, 31)),
        "last_year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
        "next_year": (date(today.year + 1, 1, 1), date(today.year + 1, 12, 31)),
    }
    if raw not in ranges:
        raise FilterError(f"Unknown $dateRange {raw!r} for field {fdef.name}")
    first, last = ranges[raw]
    return _day_range(c, fdef, col, first, last)


_HANDLERS: dict[str, Callable[[_Compiler, FieldDef, str, Any], str]] = {
    **{op: _compare(op) for op in _COMPARE},
    **{op: _like(op) for op in _LIKE},
    "$not_equals": _not_equals,
    "$not_contains": _like("$contains", negate=True),
    "$in": _in(False),
    "$not_in": _in(True),
    "$between": _between,
    "$dateBetween": _date_between,
    "$dateRange": _date_range,
    "$is_null": lambda c, f, col, raw: f"{col} IS NULL",
    "$not_null": lambda c, f, col, raw: f"{col} IS NOT NULL",
    "$empty": lambda c, f, col, raw: f"({col} IS NULL OR {col} = '')",
    "$not_empty": lambda c, f, col, raw: f"({col} IS NOT NULL AND {col} != '')",
}
assert set(_HANDLERS) == OPERATORS


def compile_filter(filter_: Any, mdef: ModuleDef, zone: ZoneInfo) -> tuple[str, list[Any]]:
    """The SQL condition (``""`` for none) and its parameters."""
    if filter_ in (None, "", []):
        return "", []
    compiler = _Compiler(mdef, zone)
    return compiler.clauses(filter_), compiler.params
