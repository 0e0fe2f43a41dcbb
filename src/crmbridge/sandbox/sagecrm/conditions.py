"""The two filter languages the server accepts, parsed and turned into SQLite.

* SOAP ``queryString``: a SQL Server ``WHERE`` fragment over the entity's prefixed columns:
  ``= <> != < <= > >=``, ``[NOT] LIKE``, ``[NOT] IN (...)``, ``IS [NOT] NULL``,
  ``[NOT] BETWEEN .. AND ..``, ``AND OR NOT``, parentheses, ``'text'`` (quote doubled) or
  ``N'text'``, numbers and ``getdate()``. Anything else (another column, ``;``, comments,
  sub-queries, unknown functions), and a text that does not convert to the column's type (a
  date, a number), fails the whole call with "Query failed to run successfully".
* REST ``where``: ``column op value`` with ``eq ne gt ge lt le like``, ``in (v, ...)``,
  ``between v and v``, joined by ``and`` / ``or`` with parentheses; values are ``'text'``
  (quote doubled) or numbers. Broken syntax is HTTP 400, an unknown column or an operator it
  does not know is HTTP 422.

Text compares case-insensitively (the tables' collation); a date literal is normalised to the
database's format before it is compared.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crmbridge.sandbox.sagecrm.entities import DATETIME, INT, NUMERIC, Column, Entity
from crmbridge.sandbox.sagecrm.problems import QUERY_FAILED, ApiError
from crmbridge.sandbox.sagecrm.values import DB_FORMAT

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>N?'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><>|!=|<=|>=|=|<|>)
    | (?P<punct>[(),])
    | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_REST_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "name" else ""


class _FailureError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def tokens(text: str) -> list[Token]:
    found = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # pragma: no cover - the pattern matches any non-space
            break
        kind = match.lastgroup or "other"
        found.append(Token(kind, match.group(kind)))
        position = match.end()
    return found


class _Parser:
    """Recursive descent over the tokens of one condition; collects SQL and parameters."""

    def __init__(self, entity: Entity, text: str, *, rest: bool) -> None:
        self.entity = entity
        self.rest = rest
        self.items = tokens(text)
        self.at = 0
        self.params: list[Any] = []

    def peek(self, ahead: int = 0) -> Token | None:
        n = self.at + ahead
        return self.items[n] if n < len(self.items) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _FailureError("the condition ends too early")
        self.at += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text.lower() != text:
            raise _FailureError(f"expected '{text}', found '{token.text}'")

    def accept(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.word == word:
            self.at += 1
            return True
        return False

    def parse(self) -> str:
        sql = self.disjunction()
        if self.peek() is not None:
            raise _FailureError(f"unexpected '{self.peek().text}'")  # type: ignore[union-attr]
        return sql

    def disjunction(self) -> str:
        parts = [self.conjunction()]
        while self.accept("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def conjunction(self) -> str:
        parts = [self.negation()]
        while self.accept("and"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def negation(self) -> str:
        if not self.rest and self.accept("not"):
            return f"NOT ({self.negation()})"
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.disjunction()
            self.expect(")")
            return f"({inner})"
        return self.comparison()

    def column(self) -> Column:
        token = self.take()
        if token.kind != "name":
            raise _FailureError(f"expected a field name, found '{token.text}'")
        found = self.entity.column(token.text)
        if found is None:
            raise _FailureError(
                f"'{token.text}' is not a field of entity '{self.entity.name}'", status=422
            )
        return found

    def comparison(self) -> str:
        column = self.column()
        name = column.name
        negated = not self.rest and self.accept("not")
        token = self.take()
        word = token.word
        if self.rest:
            if word in _REST_OPS:
                return f"{name} {_REST_OPS[word]} {self.value(column)}"
        elif token.kind == "op" and not negated:
            op = "<>" if token.text == "!=" else token.text
            return f"{name} {op} {self.value(column)}"
        elif word == "is" and not negated:
            is_not = self.accept("not")
            self.expect("null")
            return f"{name} IS {'NOT ' if is_not else ''}NULL"
        prefix = "NOT " if negated else ""
        if word == "like":
            return f"{name} {prefix}LIKE {self.value(column, like=True)}"
        if word == "in":
            self.expect("(")
            values = [self.value(column)]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                values.append(self.value(column))
            self.expect(")")
            return f"{name} {prefix}IN ({', '.join(values)})"
        if word == "between":
            low = self.value(column)
            self.expect("and")
            high = self.value(column)
            return f"{name} {prefix}BETWEEN {low} AND {high}"
        if self.rest and token.kind == "name":
            raise _FailureError(f"unknown operator '{token.text}'", status=422)
        raise _FailureError(f"unexpected '{token.text}' after {name}")

    def value(self, column: Column, *, like: bool = False) -> str:
        token = self.take()
        if token.kind == "string":
            text = token.text[2:-1] if token.text[:1] in "Nn" else token.text[1:-1]
            text = text.replace("''", "'")
            if not like:
                self.params.append(_convert(column, text))
            else:
                self.params.append(text)
            return "?"
        if token.kind == "number":
            self.params.append(float(token.text) if "." in token.text else int(token.text))
            return "?"
        if not self.rest and token.word == "getdate" and self._call():
            return "getdate()"
        raise _FailureError(f"expected a value, found '{token.text}'")

    def _call(self) -> bool:
        self.expect("(")
        self.expect(")")
        return True


def _convert(column: Column, text: str) -> Any:
    """A text literal as SQL Server converts it for a comparison with ``column``."""
    if column.type == DATETIME:
        cleaned = text.strip()
        if re.fullmatch(r"\d{8}", cleaned):
            cleaned = f"{cleaned[:4]}-{cleaned[4:6]}-{cleaned[6:]}"
        try:
            moment = dt.datetime.fromisoformat(cleaned)
        except ValueError:
            raise _FailureError(f"'{text}' is not a date", status=422) from None
        return moment.replace(tzinfo=None).strftime(DB_FORMAT)
    if column.type in (INT, NUMERIC):
        try:
            return float(text) if column.type == NUMERIC else int(text)
        except ValueError:
            raise _FailureError(f"'{text}' is not a number", status=422) from None
    return text


def soap_condition(entity: Entity, text: str) -> tuple[str, list[Any]]:
    """A queryString as SQLite SQL and its parameters (empty text: every record)."""
    if not text.strip():
        return "", []
    parser = _Parser(entity, text, rest=False)
    try:
        return parser.parse(), parser.params
    except _FailureError as failure:
        raise ApiError(QUERY_FAILED) from failure


def rest_condition(entity: Entity, text: str) -> tuple[str, list[Any]]:
    """A REST ``where`` as SQLite SQL and its parameters."""
    if not text.strip():
        return "", []
    parser = _Parser(entity, text, rest=True)
    try:
        return parser.parse(), parser.params
    except _FailureError as failure:
        raise ApiError(f"Invalid where clause: {failure.message}", failure.status) from failure


def order_clause(entity: Entity, text: str, *, rest: bool) -> str:
    """``comp_name desc, comp_companyid`` checked against the columns; the id breaks ties."""
    parts: list[str] = []
    for item in [p.strip() for p in text.split(",") if p.strip()]:
        bits = item.split()
        column = entity.column(bits[0])
        direction = bits[1].upper() if len(bits) > 1 else "ASC"
        if column is None or len(bits) > 2 or direction not in ("ASC", "DESC"):
            if rest:
                raise ApiError(f"Invalid orderBy: {item}", 400)
            raise ApiError(QUERY_FAILED)
        parts.append(f"{column.name} {direction}")
    if not any(p.startswith(entity.id_column + " ") for p in parts):
        parts.append(entity.id_column)
    return ", ".join(parts)


def columns_of(entity: Entity, names: Sequence[str]) -> list[Column]:
    """The columns named in a ``fieldlist`` (prefixed names; unknown ones: a failed query)."""
    found = []
    for name in names:
        column = entity.column(name.strip())
        if column is None:
            raise ApiError(QUERY_FAILED)
        found.append(column)
    return found
