"""The v4_1 ``query`` and ``order_by`` parameters: validated like SugarSQLValidate, run on SQLite.

``query`` is a MySQL ``WHERE`` fragment. It is rejected (error 40, :class:`QueryRejectedError`)
when it holds ``;``, a comment, ``UNION``, a clause keyword (``GROUP BY``, ``LIMIT`` ...), a
subquery on tables other than the e-mail ones, a prohibited function (``sleep``,
``benchmark`` ...) or the ``user_hash`` column. Otherwise it is translated token by token to
SQLite (MySQL string escapes, ``"strings"``, backticks, ``&&``/``||``, ``LIKE`` escapes) and
run; SQLite then reports unknown or ambiguous columns, which the API answers as a database failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crmbridge.sandbox.sugarcrm.store import field_expr
from crmbridge.sandbox.sugarcrm.vardefs import ModuleDef


class QueryRejectedError(Exception):
    """The fragment is refused before it reaches the database (v4_1 error 40)."""


class MalformedQueryError(Exception):
    """The fragment cannot even be tokenized (the database would fail on it)."""


BAD_FUNCTIONS = frozenset(
    (
        "benchmark",
        "encode",
        "sleep",
        "generate_series",
        "load_file",
        "sys_eval",
        "user_name",
        "xp_cmdshell",
        "sys_exec",
        "sp_replwritetovarbin",
    )
)
SUBQUERY_TABLES = frozenset(
    (
        "email_addr_bean_rel",
        "email_addresses",
        "emails",
        "emails_beans",
        "emails_text",
        "teams",
        "team_sets_teams",
    )
)
_CLAUSE_WORDS = frozenset(
    (
        "from",
        "group",
        "having",
        "order",
        "limit",
        "into",
        "procedure",
        "select",
    )
)
_KEYWORDS = frozenset(
    (
        "and",
        "or",
        "not",
        "in",
        "is",
        "null",
        "like",
        "between",
        "exists",
        "true",
        "false",
        "case",
        "when",
        "then",
        "else",
        "end",
        "escape",
        "asc",
        "desc",
        "as",
        "distinct",
        "on",
        "join",
        "left",
        "right",
        "inner",
        "outer",
        "where",
        "xor",
        "div",
        "mod",
        "regexp",
        "rlike",
        "interval",
        "binary",
    )
)
_IDENT_PART = r"(?:[A-Za-z_#][\w#$]*|`[^`]*`)"
_TOKEN = re.compile(
    rf"""
    (?P<ws>\s+)
    |(?P<comment>--|\#|/\*)
    |(?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
    |(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    |(?P<ident>{_IDENT_PART}(?:\.{_IDENT_PART})*)
    |(?P<op><=>|<=|>=|<>|!=|&&|\|\||[=<>(),+\-*/%!;.~^&|])
    """,
    re.VERBOSE | re.DOTALL,
)
_OPERATOR_MAP = {"&&": "AND", "||": "OR", "<=>": "IS", "!": "NOT"}
_MYSQL_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


@dataclass(frozen=True)
class Token:
    kind: str  # str | num | ident | op
    text: str

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "ident" else ""


def tokenize(sql: str) -> list[Token]:
    """Tokens of a MySQL fragment (MalformedQueryError on an unterminated string)."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        if match is None:
            raise MalformedQueryError(f"cannot parse near {sql[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        if kind == "comment":
            raise QueryRejectedError("comments are not allowed")
        if kind != "ws":
            tokens.append(Token(kind, match.group(0)))
        pos = match.end()
    return tokens


def _unquote(literal: str) -> str:
    """The value of a MySQL string literal (backslash escapes; ``\\%`` and ``\\_`` kept)."""
    quote, body = literal[0], literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(f"\\{nxt}" if nxt in "%_" else _MYSQL_ESCAPES.get(nxt, nxt))
            i += 2
        elif ch == quote and i + 1 < len(body) and body[i + 1] == quote:
            out.append(quote)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _check_column(token: Token) -> None:
    parts = [p.strip("`").lower() for p in re.findall(_IDENT_PART, token.text)]
    if len(parts) > 2 or "user_hash" in parts:
        raise QueryRejectedError(f"column {token.text!r} is not allowed")
    if any(re.search(r"[^a-z0-9._#]", p) for p in parts):
        raise QueryRejectedError(f"column {token.text!r} is not allowed")


def _closing(tokens: list[Token], open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(tokens)):
        if tokens[i].text == "(":
            depth += 1
        elif tokens[i].text == ")":
            depth -= 1
            if depth == 0:
                return i
    raise MalformedQueryError("unbalanced parentheses")


def _check_subquery(tokens: list[Token]) -> None:
    """``tokens`` run from SELECT to the end of a parenthesised subquery."""
    words = [t.word for t in tokens]
    if "from" not in words or "where" not in words:
        raise QueryRejectedError("a subquery needs SELECT ... FROM ... WHERE")
    start_from, start_where = words.index("from"), words.index("where")
    for token in tokens[1:start_from]:
        if token.kind != "ident" and token.text not in (",", "*"):
            raise QueryRejectedError("a subquery may only select columns")
    expect_table = True
    for token in tokens[start_from + 1 : start_where]:
        if expect_table and token.kind == "ident" and token.word not in _KEYWORDS:
            if token.text.strip("`").lower() not in SUBQUERY_TABLES:
                raise QueryRejectedError(f"subqueries on {token.text!r} are not allowed")
            expect_table = False
        elif token.word == "join" or token.text == ",":
            expect_table = True
    _check_expression(tokens[start_from + 1 :], allow_subqueries=False)


def _check_expression(tokens: list[Token], *, allow_subqueries: bool) -> None:
    for i, token in enumerate(tokens):
        if token.text == ";":
            raise QueryRejectedError("';' is not allowed")
        if token.word == "union":
            raise QueryRejectedError("UNION is not allowed")
        if token.kind != "ident" or token.word in _KEYWORDS:
            continue
        if i + 1 < len(tokens) and tokens[i + 1].text == "(":
            if token.word in BAD_FUNCTIONS:
                raise QueryRejectedError(f"function {token.text!r} is not allowed")
            continue
        if token.word == "select":
            if not allow_subqueries or i == 0 or tokens[i - 1].text != "(":
                raise QueryRejectedError("subqueries are not allowed here")
            _check_subquery(tokens[i : _closing(tokens, i - 1)])
            continue
        _check_column(token)


def _check_top_level(tokens: list[Token]) -> None:
    depth = 0
    for token in tokens:
        depth += {"(": 1, ")": -1}.get(token.text, 0)
        if depth < 0:
            raise QueryRejectedError("unbalanced parentheses")
        if depth == 0 and token.word in _CLAUSE_WORDS:
            raise QueryRejectedError(f"{token.text.upper()} is not allowed in a query")
    if depth:
        raise MalformedQueryError("unbalanced parentheses")


def _to_sqlite(tokens: list[Token]) -> str:
    out: list[str] = []
    for i, token in enumerate(tokens):
        if token.kind == "str":
            value = _unquote(token.text).replace("'", "''")
            out.append(f"'{value}'")
            after = tokens[i + 1].word if i + 1 < len(tokens) else ""
            if i and tokens[i - 1].word == "like" and after != "escape":
                out.append("ESCAPE '\\'")
        elif token.kind == "ident":
            parts = re.findall(_IDENT_PART, token.text)
            out.append(".".join(f'"{p[1:-1]}"' if p.startswith("`") else p for p in parts))
        else:
            out.append(_OPERATOR_MAP.get(token.text, token.text))
    return " ".join(out)


def translate_where(fragment: str) -> str:
    """A validated v4_1 ``query`` as an SQLite condition ('' for an empty one)."""
    tokens = tokenize(fragment)
    if not tokens:
        return ""
    _check_top_level(tokens)
    _check_expression(tokens, allow_subqueries=True)
    return _to_sqlite(tokens)


def translate_order_by(order_by: str, mdef: ModuleDef) -> str:
    """A v4_1 ``order_by`` as SQLite ORDER BY terms.

    It is validated like ``query`` (QueryRejectedError on ``;`` and the like); then only terms
    made of a bare field name of the module and an optional ASC/DESC survive. Table-qualified and
    unknown names are dropped silently, as Sugar does.
    """
    tokens = tokenize(order_by)
    if not tokens:
        return ""
    _check_top_level(tokens)
    _check_expression(tokens, allow_subqueries=False)
    terms: list[str] = []
    current: list[Token] = []
    for token in [*tokens, Token("op", ",")]:
        if token.text != ",":
            current.append(token)
            continue
        if current and current[0].kind == "ident" and "." not in current[0].text:
            fdef = mdef.field(current[0].text.strip("`"))
            direction = current[1].word.upper() if len(current) == 2 else "ASC"
            if fdef and len(current) <= 2 and direction in ("ASC", "DESC"):
                terms.append(f"{field_expr(mdef, fdef)} {direction}")
        current = []
    return ", ".join(terms)
