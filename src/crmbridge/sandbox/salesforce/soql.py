"""A SOQL subset, parsed strictly and run as SQLite SQL.

Supported::

    SELECT field, Relationship.field, ... | COUNT()
    FROM object
    [WHERE condition]          -- = != <> < <= > >= LIKE IN NOT IN, AND / OR / NOT, ( )
    [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...]
    [LIMIT n] [OFFSET n]

Literals: 'strings' with backslash escapes, numbers, true / false / null, date
``2024-05-01`` and datetime ``2024-05-01T00:00:00Z`` / ``...+02:00`` literals (unquoted).
As in SOQL: names are case-insensitive, text compares case-insensitively, ``!=`` and
``NOT IN`` keep records whose field is null, AND and OR may not be mixed without
parentheses, long text areas cannot be filtered or sorted, and a value must have the type of
its field (a quoted datetime is refused). Errors are :class:`ApiError` s with Salesforce's codes
(``MALFORMED_QUERY``, ``INVALID_FIELD``, ``INVALID_TYPE``, ``INVALID_QUERY_FILTER_OPERATOR``).
Not supported (answered ``MALFORMED_QUERY``): GROUP BY, aggregates other than ``COUNT()``,
sub-queries, date constants (``TODAY``, ``LAST_N_DAYS:n``), ``FIELDS()``, ``TYPEOF``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from crmbridge.sandbox.salesforce import ids
from crmbridge.sandbox.salesforce.errors import ApiError
from crmbridge.sandbox.salesforce.objects import (
    NUMBER_TYPES,
    TEXT_TYPES,
    FieldDef,
    ObjectDef,
    find_object,
)
from crmbridge.sandbox.salesforce.values import parse_date, parse_datetime

MAX_OFFSET = 2000
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {"select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc", "desc"}
    | {"nulls", "first", "last", "limit", "offset", "true", "false", "null", "count"}
    | {"group", "having"}
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'"}
_UNSUPPORTED = frozenset({"group", "having", "typeof", "with", "for", "fields", "using"})


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "name" else ""


@dataclass(frozen=True)
class Column:
    """One selected field: its path as answered, the object holding it, and the field."""

    path: str
    relationship: FieldDef | None  # the reference field of a parent relationship
    odef: ObjectDef
    fdef: FieldDef

    @property
    def sql(self) -> str:
        alias = f"r_{self.relationship.name}" if self.relationship else "t"
        return f'{alias}."{self.fdef.name}"'


@dataclass
class Compiled:
    """A checked query: what it selects and the SQLite statement that answers it."""

    odef: ObjectDef
    count_only: bool
    columns: list[Column]
    sql: str
    params: list[Any] = field(default_factory=list)
    count_sql: str = ""


def malformed(soql: str, pos: int, reason: str) -> ApiError:
    row = soql.count("\n", 0, pos) + 1
    line_start = soql.rfind("\n", 0, pos) + 1
    col = pos - line_start + 1
    line = soql[line_start:].split("\n", 1)[0]
    text = f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{reason}"
    return ApiError(400, "MALFORMED_QUERY", text)


def _tokens(soql: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(soql):
        match = _TOKEN.match(soql, pos)
        if not match:
            raise malformed(soql, pos, f"line 1:{pos} no viable alternative at character "
                                       f"'{soql[pos]}'")  # fmt: skip
        kind = match.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, match.group(), pos))
        pos = match.end()
    out.append(Token("end", "", len(soql)))
    return out


def _unquote(text: str, *, like: bool) -> str:
    """The value of a string literal; for LIKE, a SQLite pattern with ``\\`` as escape."""
    out: list[str] = []
    i, body = 0, text[1:-1]
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        i += 2
        if nxt in "%_":
            out.append("\\" + nxt if like else nxt)
        elif nxt == "\\":
            out.append("\\\\" if like else "\\")
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i : i + 4]):
            out.append(chr(int(body[i : i + 4], 16)))
            i += 4
        else:
            raise ValueError(nxt)
    return "".join(out)


class _Parser:
    def __init__(self, soql: str, *, include_deleted: bool) -> None:
        self.soql = soql
        self.tokens = _tokens(soql)
        self.i = 0
        self.include_deleted = include_deleted
        self.params: list[Any] = []
        self.joins: dict[str, FieldDef] = {}
        self.odef: ObjectDef | None = None

    # -- token helpers --------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, reason: str | None = None, token: Token | None = None) -> ApiError:
        token = token or self.tok
        shown = token.text or "<EOF>"
        return malformed(self.soql, token.pos, reason or f"unexpected token: {shown}")

    def take(self) -> Token:
        token = self.tok
        self.i += 1
        return token

    def accept(self, *words: str) -> bool:
        if self.tok.word in words:
            self.i += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            raise self.error()

    def punct(self, text: str) -> bool:
        if self.tok.kind == "punct" and self.tok.text == text:
            self.i += 1
            return True
        return False

    # -- grammar --------------------------------------------------------------------------
    def parse(self) -> Compiled:
        self.expect("select")
        count_only = False
        paths: list[Token] = []
        if self.tok.word == "count" and self.tokens[self.i + 1].text == "(":
            self.i += 2
            if not self.punct(")"):
                raise self.error("only COUNT() is supported in this sandbox")
            count_only = True
        else:
            while True:
                token = self.take()
                if token.kind != "name" or token.word in _KEYWORDS - {"count"}:
                    raise self.error(token=token)
                if self.tok.text == "(" or token.word in _UNSUPPORTED:
                    raise self.error(f"{token.text}() is not supported in this sandbox", token)
                paths.append(token)
                if not self.punct(","):
                    break
        self.expect("from")
        name = self.take()
        if name.kind != "name" or name.word in _KEYWORDS:
            raise self.error(token=name)
        odef = find_object(name.text)
        if odef is None:
            raise ApiError(
                400,
                "INVALID_TYPE",
                f"\n{self.soql}\nsObject type '{name.text}' is not supported. If you are "
                "attempting to use a custom object, be sure to append the '__c' after the "
                "entity name. Please reference your WSDL or the describe call for the "
                "appropriate names.",
            )
        self.odef = odef
        columns: list[Column] = []
        for token in paths:
            column = self.column(token)
            if any(c.path == column.path for c in columns):
                raise self.error(f"duplicate field selected: {column.path}", token)
            columns.append(column)
        where = ""
        if self.accept("where"):
            where = self.condition()
        order = ""
        if self.accept("order"):
            self.expect("by")
            order = " ORDER BY " + self.order_list()
        limit = offset = None
        if self.accept("limit"):
            limit = self.integer()
        if self.accept("offset"):
            offset = self.integer()
            if offset > MAX_OFFSET:
                raise ApiError(
                    400,
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                )
        if self.tok.kind != "end":
            word = self.tok.word
            if word in _UNSUPPORTED:
                raise self.error(f"{self.tok.text.upper()} is not supported in this sandbox")
            raise self.error()
        return self._compile(odef, count_only, columns, where, order, limit, offset)

    def _compile(
        self,
        odef: ObjectDef,
        count_only: bool,
        columns: list[Column],
        where: str,
        order: str,
        limit: int | None,
        offset: int | None,
    ) -> Compiled:
        joins = "".join(
            f' LEFT JOIN {_target(ref).table} r_{ref.name} ON r_{ref.name}."Id" = t."{ref.name}"'
            for ref in self.joins.values()
        )
        conditions = [] if self.include_deleted else ['t."IsDeleted" = 0']
        if where:
            conditions.append(where)
        where_sql = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        tail = order or " ORDER BY t.rowid"
        if limit is not None or offset is not None:
            tail += f" LIMIT {-1 if limit is None else limit} OFFSET {offset or 0}"
        extra = ['t."Id" AS "__id"'] + [
            f'r_{ref.name}."Id" AS "__{ref.relationship}"' for ref in self.joins.values()
        ]
        select = ", ".join([*(f'{c.sql} AS "{c.path}"' for c in columns), *extra])
        base = f"FROM {odef.table} t{joins}{where_sql}"
        sql = f"SELECT {select} {base}{tail}"
        count_sql = f"SELECT COUNT(*) AS n FROM (SELECT 1 {base}{tail})"
        return Compiled(odef, count_only, columns, sql, self.params, count_sql)

    def integer(self) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            raise self.error(token=token)
        return int(token.text)

    def column(self, token: Token) -> Column:
        assert self.odef is not None
        parts = token.text.split(".")
        own_name = len(parts) > 1 and parts[0].lower() == self.odef.name.lower()
        if own_name and self.odef.relationship(parts[0]) is None:
            parts = parts[1:]
        if len(parts) == 1:
            fdef = self.odef.field(parts[0])
            if fdef is None:
                raise self._no_column(parts[0], self.odef)
            return Column(fdef.name, None, self.odef, fdef)
        if len(parts) > 2:
            raise self.error("only one level of parent relationships is supported", token)
        ref = self.odef.relationship(parts[0])
        if ref is None:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"\n{self.soql}\nDidn't understand relationship '{parts[0]}' in field path. If "
                "you are attempting to use a custom relationship, be sure to append the '__r' "
                "after the custom relationship name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
            )
        target = _target(ref)
        fdef = target.field(parts[1])
        if fdef is None:
            raise self._no_column(parts[1], target)
        self.joins[ref.name] = ref
        return Column(f"{ref.relationship}.{fdef.name}", ref, target, fdef)

    def _no_column(self, name: str, odef: ObjectDef) -> ApiError:
        return ApiError(
            400,
            "INVALID_FIELD",
            f"\n{self.soql}\nNo such column '{name}' on entity '{odef.name}'. If you are "
            "attempting to use a custom field, be sure to append the '__c' after the custom "
            "field name. Please reference your WSDL or the describe call for the appropriate "
            "names.",
        )

    def condition(self) -> str:
        parts = [self.term()]
        glue: str | None = None
        while self.tok.word in ("and", "or"):
            word = self.take().word
            if glue is not None and word != glue:
                raise self.error(token=self.tokens[self.i - 1])
            glue = word
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        return "(" + f" {(glue or 'and').upper()} ".join(parts) + ")"

    def term(self) -> str:
        if self.accept("not"):
            return f"(NOT {self.term()})"
        if self.punct("("):
            inner = self.condition()
            if not self.punct(")"):
                raise self.error()
            return inner
        return self.comparison()

    def comparison(self) -> str:
        token = self.take()
        if token.kind != "name" or token.word in _KEYWORDS:
            raise self.error(token=token)
        column = self.column(token)
        if not column.fdef.filterable:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"\n{self.soql}\nfield '{column.fdef.name}' can not be filtered in a query call",
            )
        col = column.sql
        if self.tok.kind == "op":
            op = self.take().text
            value = self.value(column, like=False)
            return _compare(col, op, value, self.params)
        negated = self.accept("not")
        if self.accept("in"):
            if not self.punct("("):
                raise self.error()
            values = [self.value(column, like=False)]
            while self.punct(","):
                values.append(self.value(column, like=False))
            if not self.punct(")"):
                raise self.error()
            return _in(col, values, negated, self.params)
        if not negated and self.accept("like"):
            if column.fdef.type not in TEXT_TYPES or column.fdef.type in ("id", "reference"):
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"\n{self.soql}\ninvalid operator on field '{column.fdef.name}' of type "
                    f"{column.fdef.type}",
                )
            pattern = self.value(column, like=True)
            if pattern is None:
                return "0"
            self.params.append(pattern)
            return f"{col} LIKE ? ESCAPE '\\'"
        raise self.error()

    def value(self, column: Column, *, like: bool) -> Any:
        token = self.take()
        fdef = column.fdef
        kind = token.kind
        if token.word == "null":
            return None
        if kind == "name" and token.word in ("true", "false"):
            if fdef.type != "boolean":
                raise self._wrong_type(fdef, quoted=False)
            return int(token.word == "true")
        if kind == "string":
            try:
                text = _unquote(token.text, like=like)
            except ValueError as bad:
                raise self.error(
                    f"Invalid string literal '{token.text}'. Illegal character sequence "
                    f"'\\{bad}' in string literal.",
                    token,
                ) from None
            if fdef.type not in TEXT_TYPES:
                raise self._wrong_type(fdef, quoted=True)
            if fdef.type in ("id", "reference") and not like:
                full = ids.normalize(text)
                if full is None:
                    raise ApiError(
                        400,
                        "INVALID_QUERY_FILTER_OPERATOR",
                        f"\n{self.soql}\ninvalid ID field: {text}",
                    )
                return full
            return text
        if kind == "number":
            if fdef.type not in NUMBER_TYPES:
                raise self._wrong_type(fdef, quoted=False)
            return float(token.text)
        if kind == "date":
            if fdef.type != "date":
                raise self._wrong_type(fdef, quoted=False)
            parsed = parse_date(token.text)
            if parsed is None:
                raise self.error(token=token)
            return parsed
        if kind == "datetime":
            if fdef.type != "datetime":
                raise self._wrong_type(fdef, quoted=False)
            return parse_datetime(token.text)
        if kind == "name":
            raise self.error(f"unexpected token: {token.text} (date constants are not "
                             "supported in this sandbox)", token)  # fmt: skip
        raise self.error(token=token)

    def _wrong_type(self, fdef: FieldDef, *, quoted: bool) -> ApiError:
        kind = {"datetime": "dateTime", "int": "int", "boolean": "boolean", "date": "date"}.get(
            fdef.type, "double" if fdef.type in NUMBER_TYPES else "string"
        )
        hint = (
            "should be enclosed in quotes"
            if kind == "string"
            else "should not be enclosed in quotes"
        )
        del quoted
        return ApiError(
            400,
            "INVALID_FIELD",
            f"\n{self.soql}\nvalue of filter criterion for field '{fdef.name}' must be of type "
            f"{kind} and {hint}",
        )

    def order_list(self) -> str:
        items: list[str] = []
        while True:
            token = self.take()
            if token.kind != "name" or token.word in _KEYWORDS:
                raise self.error(token=token)
            column = self.column(token)
            if not column.fdef.sortable:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"\n{self.soql}\nfield '{column.fdef.name}' can not be sorted in a query call",
                )
            direction = "DESC" if self.accept("desc") else "ASC"
            if direction == "ASC":
                self.accept("asc")
            nulls = "FIRST"
            if self.accept("nulls"):
                if self.accept("last"):
                    nulls = "LAST"
                else:
                    self.expect("first")
            items.append(f"{column.sql} {direction} NULLS {nulls}")
            if not self.punct(","):
                return ", ".join(items)


def _target(ref: FieldDef) -> ObjectDef:
    odef = find_object(ref.reference_to[0])
    assert odef is not None
    return odef


def _compare(col: str, op: str, value: Any, params: list[Any]) -> str:
    if value is None:
        if op == "=":
            return f"{col} IS NULL"
        if op in ("!=", "<>"):
            return f"{col} IS NOT NULL"
        return "0"
    params.append(value)
    if op in ("!=", "<>"):
        return f"({col} IS NULL OR {col} <> ?)"
    return f"{col} {op} ?"


def _in(col: str, values: list[Any], negated: bool, params: list[Any]) -> str:
    plain = [v for v in values if v is not None]
    has_null = len(plain) < len(values)
    params.extend(plain)
    marks = ", ".join("?" for _ in plain)
    if negated:
        test = f"{col} NOT IN ({marks})" if plain else "1"
        return f"({col} IS NOT NULL AND {test})" if has_null else f"({col} IS NULL OR {test})"
    test = f"{col} IN ({marks})" if plain else "0"
    return f"({test} OR {col} IS NULL)" if has_null else test


def compile_query(soql: str, *, include_deleted: bool = False) -> Compiled:
    """Parse and check ``soql``; the statement that answers it (ApiError when refused)."""
    return _Parser(soql, include_deleted=include_deleted).parse()


def run(store: Any, compiled: Compiled) -> list[dict[str, Any]]:
    """The rows of a compiled query: selected paths -> stored values, plus ``__id`` and
    ``__<Relationship>`` (the parent's id, None when there is none)."""
    return list(store.query(compiled.sql, compiled.params))


def count(store: Any, compiled: Compiled) -> int:
    return int(store.query(compiled.count_sql, compiled.params)[0]["n"])
