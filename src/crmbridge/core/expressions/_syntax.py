"""Parsing an expression once, and the allow-list of what it may contain.

Everything not listed here is refused when a profile loads: statements, subqueries,
parameters, aggregate and window functions, and any function not in :data:`FUNCTIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from crmbridge.core.expressions._errors import TEXT_KEY, expression_error
from crmbridge.core.schema import suggest


@dataclass(frozen=True)
class Function:
    """One supported function, as documented in docs/expressions.md."""

    name: str
    usage: str
    description: str


#: The supported functions; the docs table lists exactly these (a test checks it).
FUNCTIONS: tuple[Function, ...] = (
    Function("lower", "lower(s)", "lower case (Unicode)"),
    Function("upper", "upper(s)", "upper case (Unicode)"),
    Function("trim", "trim(s)", "remove leading and trailing spaces"),
    Function("ltrim", "ltrim(s)", "remove leading spaces"),
    Function("rtrim", "rtrim(s)", "remove trailing spaces"),
    Function("length", "length(s)", "number of characters (alias char_length)"),
    Function("substr", "substr(s, start[, count])", "part of s; start counts from 1"),
    Function("replace", "replace(s, from, to)", "replace every occurrence of from"),
    Function("concat", "concat(a, b, ...)", "join as text; NULL arguments are skipped"),
    Function("coalesce", "coalesce(a, b, ...)", "first argument that is not NULL"),
    Function("nullif", "nullif(a, b)", "NULL when a = b, else a"),
    Function("abs", "abs(x)", "absolute value"),
    Function("round", "round(x[, digits])", "round half away from zero"),
    Function("year", "year(d)", "year of a date or datetime (UTC)"),
    Function("month", "month(d)", "month 1-12 of a date or datetime (UTC)"),
    Function("day", "day(d)", "day of the month of a date or datetime (UTC)"),
    Function("current_date", "current_date", "today in UTC, fixed for the whole run"),
    Function("current_timestamp", "current_timestamp", "now in UTC, fixed for the whole run"),
    Function("now", "now()", "same as current_timestamp"),
    Function(
        "json_extract_string",
        "json_extract_string(j, '$.path')",
        "the text at a path of JSON text (also j ->> 'key'); NULL where there is none",
    ),
    Function("cast", "cast(x AS type)", "convert; a value that does not convert is an error"),
    Function("try_cast", "try_cast(x AS type)", "convert; NULL when the value does not convert"),
)

_FUNCTION_NODES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Lower,
        exp.Upper,
        exp.Trim,
        exp.Length,
        exp.Substring,
        exp.Replace,
        exp.Concat,
        exp.Coalesce,
        exp.Nullif,
        exp.Abs,
        exp.Round,
        exp.Year,
        exp.Month,
        exp.Day,
        exp.CurrentDate,
        exp.CurrentTimestamp,
        exp.Cast,
        exp.TryCast,
        exp.JSONExtractScalar,
        exp.JSONExtract,
    }
)
#: functions sqlglot does not know by name
_ANONYMOUS_FUNCTIONS = frozenset({"now"})

_OPERATOR_NODES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Column,
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.Paren,
        exp.And,
        exp.Or,
        exp.Not,
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.Is,
        exp.In,
        exp.Between,
        exp.Like,
        exp.ILike,
        exp.Escape,
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.IntDiv,
        exp.Mod,
        exp.Neg,
        exp.DPipe,
        exp.Case,
        exp.Interval,
    }
)

#: nodes allowed only as a part of another node
_PART_NODES: dict[type[exp.Expr], tuple[type[exp.Expr], ...]] = {
    exp.Identifier: (exp.Column,),
    exp.If: (exp.Case,),
    exp.Var: (exp.Interval,),
    exp.DataType: (exp.Cast, exp.TryCast),
    exp.DataTypeParam: (exp.DataType,),
    exp.JSONPath: (exp.JSONExtractScalar, exp.JSONExtract),
    exp.JSONPathRoot: (exp.JSONPath,),
    exp.JSONPathKey: (exp.JSONPath,),
    exp.JSONPathSubscript: (exp.JSONPath,),
}

_T = exp.DType
#: types ``cast`` accepts, with the name the docs use
CAST_TYPES: dict[exp.DType, str] = {
    _T.VARCHAR: "VARCHAR",
    _T.TEXT: "VARCHAR",
    _T.SMALLINT: "SMALLINT",
    _T.INT: "INTEGER",
    _T.BIGINT: "BIGINT",
    _T.DECIMAL: "DECIMAL(p, s)",
    _T.DOUBLE: "DOUBLE",
    _T.FLOAT: "REAL",
    _T.BOOLEAN: "BOOLEAN",
    _T.DATE: "DATE",
    _T.TIMESTAMP: "TIMESTAMP",
    _T.TIMESTAMPNTZ: "TIMESTAMP",
    _T.TIMESTAMPTZ: "TIMESTAMPTZ",
}


def parse(text: str, *, what: str) -> exp.Expression:
    """Parse one expression (DuckDB syntax) and check it uses only what is allowed.

    ``what`` names the expression in messages, e.g. ``"filter"`` or ``"mapping for 'name'"``.
    Column names are not checked here (see :func:`check_columns`).
    """
    if not text.strip():
        raise expression_error("empty expression", text, what)
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except TokenError:
        raise expression_error("syntax error (a quote is not closed?)", text, what) from None
    except ParseError as err:
        detail = err.errors[0] if err.errors else {}
        near = detail.get("highlight") or "end"
        raise expression_error(
            f"syntax error near {near!r} (column {detail.get('col', '?')})", text, what
        ) from None
    if len(statements) != 1:
        raise expression_error(
            "only one expression is allowed, not several statements separated by ';'", text, what
        )
    tree = cast(exp.Expression, statements[0])  # every concrete sqlglot node is one
    for node in tree.walk():
        _check_node(node, text, what)
    tree.meta[TEXT_KEY] = text
    return tree


def _check_node(node: exp.Expr, text: str, what: str) -> None:
    kind = type(node)
    if kind in _OPERATOR_NODES or kind in _FUNCTION_NODES:
        _check_details(node, text, what)
    elif kind is exp.Anonymous and node.name.lower() in _ANONYMOUS_FUNCTIONS:
        pass
    elif not isinstance(node.parent, _PART_NODES.get(kind, ())):
        raise _disallowed(node, text, what)


def _check_details(node: exp.Expr, text: str, what: str) -> None:
    if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")):
        raise expression_error("subqueries and SELECT are not allowed", text, what)
    if isinstance(node, exp.In) and not node.expressions:
        raise expression_error("IN needs a list of values", text, what)
    if isinstance(node, exp.Is) and not isinstance(node.expression, (exp.Null, exp.Boolean)):
        raise expression_error("IS must be followed by NULL, TRUE or FALSE", text, what)
    if isinstance(node, (exp.Cast, exp.TryCast)) and node.to.this not in CAST_TYPES:
        allowed = ", ".join(sorted(set(CAST_TYPES.values())))
        raise expression_error(
            f"cast to {node.to.sql(dialect='duckdb')} is not supported",
            text,
            what,
            f"; use one of {allowed}",
        )


def _disallowed(node: exp.Expr, text: str, what: str) -> Exception:
    if isinstance(node, exp.Dot):
        return expression_error(
            f"{node.sql(dialect='duckdb')!r} goes deeper than a field of a field of a field",
            text,
            what,
            '; quote a name that contains a dot, e.g. "a.b"',
        )
    if isinstance(node, (exp.Subquery, exp.Query, exp.Exists)):
        return expression_error("subqueries and SELECT are not allowed", text, what)
    if isinstance(node, exp.Func):
        name = function_name(node)
        close = suggest(name, [f.name for f in FUNCTIONS])
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return expression_error(f"unsupported function {name!r}", text, what, hint)
    if isinstance(node, exp.Placeholder):
        return expression_error("parameters (?, $1) are not allowed", text, what)
    if isinstance(node, exp.Alias):
        return expression_error(f"syntax error near {node.alias!r}", text, what)
    if node.parent is None and type(node).__module__.rsplit(".", 1)[-1] in ("ddl", "dml"):
        return expression_error("statements are not allowed, only one expression", text, what)
    snippet = node.sql(dialect="duckdb")
    return expression_error(f"unsupported syntax {snippet[:60]!r}", text, what)


def function_name(node: exp.Expr) -> str:
    """The name a function call is written with, e.g. 'strftime'."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    name = node.sql(dialect="duckdb").split("(", 1)[0].strip().lower()
    return name if name.isidentifier() else node.key


def column_path(column: exp.Column) -> tuple[str, ...]:
    """The column a name reads, then the record fields within it: ``customer.address.city``
    is ``('customer', 'address', 'city')``; ``"a.b"`` (quoted) is the column ``a.b``."""
    return tuple(part.name for part in column.parts)


def columns_of(tree: exp.Expr) -> set[str]:
    """Names of the columns ``tree`` reads (for ``customer.name``: ``customer``)."""
    return {column_path(column)[0] for column in tree.find_all(exp.Column)}


def has_paths(tree: exp.Expr) -> bool:
    """Does ``tree`` read a record's field (``customer.name``) or JSON text (``->>``)?
    Such parts are evaluated locally, never pushed down to a source."""
    if any(len(column.parts) > 1 for column in tree.find_all(exp.Column)):
        return True
    return tree.find(exp.JSONExtractScalar, exp.JSONExtract) is not None


def conjuncts(tree: exp.Expression) -> list[exp.Expression]:
    """The top-level AND-ed parts of ``tree`` (copies), e.g. ``a AND (b AND c)`` -> a, b, c."""
    return [cast(exp.Expression, part) for part in _conjuncts(tree)]


def _conjuncts(tree: exp.Expr) -> list[exp.Expr]:
    node = tree.unnest()
    if isinstance(node, exp.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node.copy()]


def conjoin(parts: Sequence[exp.Expression]) -> exp.Expression | None:
    """The AND of ``parts``; None for no parts."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0].copy()
    return cast(exp.Expression, exp.and_(*parts, copy=True))
