"""The QuickBooks query language, parsed and run as SQL over the stored JSON documents.

    SELECT * | COUNT(*) | Prop, ... FROM Entity
      [WHERE cond AND cond ...] [ORDERBY Prop [ASC|DESC], ...]
      [STARTPOSITION n] [MAXRESULTS m]
    cond := Prop (= | < | > | <= | >=) value | Prop IN (value, ...) | Prop LIKE 'text'

Keywords are case-insensitive; there is no OR, NOT, <> or parentheses around conditions (a
query using them is error 4000, "Encountered ..."). Strings are single-quoted with ``\\'``
for a quote. Only queryable properties may be filtered or sorted on (else 4001). Text
compares case-insensitively; ``LIKE`` knows only the ``%`` wildcard (``_`` is an
underscore). A list entity (Customer, Item, Account) without a condition on ``Active``
returns active objects only. STARTPOSITION is 1-based (default 1); MAXRESULTS defaults to
100 and is silently capped at 1000.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from crmbridge.sandbox.quickbooks.clock import utc_text
from crmbridge.sandbox.quickbooks.entities import Entity, Prop, entity_named
from crmbridge.sandbox.quickbooks.faults_api import ApiFault, invalid_query, parse_error

DEFAULT_MAX_RESULTS = 100
MAX_RESULTS_CAP = 1000
_KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "in", "like", "orderby", "asc", "desc",
    "startposition", "maxresults", "count",
}  # fmt: skip
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:\\.|[^'\\])*')|(?P<number>-?\d+(?:\.\d+)?)|"
    r"(?P<op><=|>=|!=|<>|[=<>(),*])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*)|(?P<bad>\S))"
)


@dataclass(frozen=True)
class Token:
    kind: str  # string number op word keyword end
    text: str
    column: int

    @property
    def value(self) -> str:
        return self.text.lower() if self.kind == "keyword" else self.text


@dataclass
class Condition:
    prop: Prop
    op: str  # = < > <= >= in like
    values: list[Any]


@dataclass
class Query:
    entity: str
    count: bool = False
    #: top-level properties selected; None: all
    select: list[str] | None = None
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[Prop, bool]] = field(default_factory=list)  # (prop, descending)
    start: int = 1
    max_results: int = DEFAULT_MAX_RESULTS


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            break
        position = match.end()
        kind = match.lastgroup or "bad"
        raw = match.group(kind)
        column = match.start(kind) + 1
        if kind == "bad":
            raise parse_error(f'Lexical error at line 1, column {column}. Encountered: "{raw}"')
        if kind == "word" and raw.lower() in _KEYWORDS:
            kind = "keyword"
        tokens.append(Token(kind, raw, column))
    tokens.append(Token("end", "<EOF>", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.at = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at = min(self.at + 1, len(self.tokens) - 1)
        return token

    def fail(self, expected: list[str]) -> ApiFault:
        token = self.token
        shown = token.text.upper() if token.kind == "keyword" else token.text
        kind = f"<{shown}>" if token.kind == "keyword" else f'"{shown}"'
        wanted = ", ".join(expected)
        return parse_error(
            f'Encountered " {kind} "{shown} "" at line 1, column {token.column}. '
            f"Was expecting one of: {wanted}"
        )

    def keyword(self, word: str) -> bool:
        if self.token.kind == "keyword" and self.token.value == word:
            self.take()
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise self.fail([f'"{word}"'])

    def expect_op(self, op: str) -> None:
        if self.token.kind != "op" or self.token.text != op:
            raise self.fail([f'"{op}"'])
        self.take()

    def name(self) -> Token:
        if self.token.kind != "word":
            raise self.fail(["<IDENTIFIER>"])
        return self.take()

    def integer(self) -> int:
        token = self.token
        if token.kind != "number" or not token.text.isdigit():
            raise self.fail(["<INTEGER>"])
        self.take()
        return int(token.text)

    def literal(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "number":
            return Decimal(token.text)
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        self.at -= 1
        raise self.fail(["<STRING>", "<NUMBER>", '"true"', '"false"'])


def parse(text: str) -> tuple[Query, Entity | None]:
    """The parsed query and its entity (None for CompanyInfo); raises ApiFault 4000/4001."""
    p = _Parser(text)
    p.expect_keyword("select")
    count, select = False, None
    if p.token.kind == "op" and p.token.text == "*":
        p.take()
    elif p.keyword("count"):
        p.expect_op("(")
        p.expect_op("*")
        p.expect_op(")")
        count = True
    else:
        select = [p.name().text]
        while p.token.kind == "op" and p.token.text == ",":
            p.take()
            select.append(p.name().text)
    p.expect_keyword("from")
    entity_token = p.name()
    entity = entity_named(entity_token.text)
    company = entity_token.text.lower() == "companyinfo"
    if entity is None and not company:
        raise invalid_query(f"unsupported entity '{entity_token.text}'")
    query = Query(entity.name if entity else "CompanyInfo", count=count, select=select)
    if p.keyword("where"):
        query.where.append(_condition(p, entity))
        while p.keyword("and"):
            query.where.append(_condition(p, entity))
    if p.keyword("orderby"):
        query.order.append(_order(p, entity))
        while p.token.kind == "op" and p.token.text == ",":
            p.take()
            query.order.append(_order(p, entity))
    if p.keyword("startposition"):
        query.start = p.integer()
        if query.start < 1:
            raise invalid_query("STARTPOSITION must be 1 or more")
    if p.keyword("maxresults"):
        query.max_results = min(p.integer(), MAX_RESULTS_CAP)
    if p.token.kind != "end":
        raise p.fail(['"and"', '"orderby"', '"startposition"', '"maxresults"', "<EOF>"])
    return query, entity


def _prop(entity: Entity | None, name: str) -> Prop:
    found = entity.queryable(name) if entity is not None else None
    if found is None:
        raise invalid_query(f"property '{name}' is not queryable")
    return found


def _condition(p: _Parser, entity: Entity | None) -> Condition:
    prop = _prop(entity, p.name().text)
    if p.keyword("in"):
        p.expect_op("(")
        values = [p.literal()]
        while p.token.kind == "op" and p.token.text == ",":
            p.take()
            values.append(p.literal())
        p.expect_op(")")
        return Condition(prop, "in", [_typed(prop, v) for v in values])
    if p.keyword("like"):
        value = p.literal()
        if not isinstance(value, str):
            raise invalid_query(f"LIKE on '{prop.name}' needs a string")
        return Condition(prop, "like", [value])
    token = p.token
    if token.kind != "op" or token.text not in ("=", "<", ">", "<=", ">="):
        raise p.fail(['"="', '"<"', '">"', '"<="', '">="', '"in"', '"like"'])
    p.take()
    return Condition(prop, token.text, [_typed(prop, p.literal())])


def _order(p: _Parser, entity: Entity | None) -> tuple[Prop, bool]:
    prop = _prop(entity, p.name().text)
    if p.keyword("desc"):
        return prop, True
    p.keyword("asc")
    return prop, False


def _typed(prop: Prop, value: Any) -> Any:
    """``value`` as the SQL parameter compared with ``prop``; 4001 when it does not fit."""
    wrong = invalid_query(f"invalid value {value!r} for property '{prop.name}'")
    if prop.kind == "id":
        text = str(value)
        return int(text) if text.isdigit() else -1
    if prop.kind == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if isinstance(value, bool):
            return value
        raise wrong
    if prop.kind == "decimal":
        try:
            return float(Decimal(str(value)))
        except InvalidOperation:
            raise wrong from None
    if prop.kind == "date":
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise wrong from None
    if prop.kind == "datetime":
        moment = utc_text(str(value))
        if moment is None:
            raise wrong
        return moment
    if not isinstance(value, str):
        return str(value)
    return value


def column(prop: Prop) -> str:
    """The SQL expression of a queryable property over ``objects``."""
    if prop.kind == "id":
        return "id"
    extract = f"json_extract(doc, '{prop.query}')"
    if prop.kind == "decimal":
        return f"CAST({extract} AS REAL)"
    if prop.kind == "datetime":
        return f"qb_instant({extract})"
    return extract


def _text(prop: Prop) -> bool:
    return prop.kind in ("str", "enum", "ref")


def where_sql(query: Query, entity: Entity) -> tuple[str, list[Any]]:
    """The WHERE clause of ``query`` (live objects only) and its parameters."""
    parts = ["entity = ?", "deleted = 0"]
    params: list[Any] = [entity.name]
    if entity.is_list and not any(c.prop.name == "Active" for c in query.where):
        parts.append("active = 1")
    for cond in query.where:
        expr = column(cond.prop)
        collate = " COLLATE NOCASE" if _text(cond.prop) else ""
        if cond.op == "in":
            marks = ", ".join("?" for _ in cond.values)
            parts.append(f"{expr}{collate} IN ({marks})")
            params += [_bool(v) for v in cond.values]
        elif cond.op == "like":
            pattern = cond.values[0].replace("\\", "\\\\").replace("_", "\\_")
            parts.append(f"{expr} LIKE ? ESCAPE '\\'")
            params.append(pattern)
        else:
            parts.append(f"{expr}{collate} {cond.op} ?")
            params.append(_bool(cond.values[0]))
    return " AND ".join(parts), params


def order_sql(query: Query) -> str:
    keys = [
        f"{column(prop)}{' COLLATE NOCASE' if _text(prop) else ''}{' DESC' if desc else ''}"
        for prop, desc in query.order
    ]
    return ", ".join([*keys, "id"])


def _bool(value: Any) -> Any:
    return (1 if value else 0) if isinstance(value, bool) else value
