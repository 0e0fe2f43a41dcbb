"""Checking an expression against the columns it reads: names, then types (DuckDB binds it).

Two rules are ours, not DuckDB's. Text is compared only with text: ``lead_score >= 50`` on a
text column is an error that says to cast, rather than a comparison whose meaning depends on
the engine (DuckDB compares ``'12' = 12`` as text but refuses ``'12' >= 12``). And a string
*literal* takes the type of the other side (``closed_on >= '2024-01-01'`` is fine) only when it
is written in that type's format and converts to it unchanged: DuckDB would make ``'0x0C'`` the
integer 12 and round ``'12.4'`` to 12, so ``score = '12.4'`` would be true for 12.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
from sqlglot import exp

from crmbridge.core.duck import duckdb_type
from crmbridge.core.expressions._casts import KIND_WORDS, convert_sql, kind_of
from crmbridge.core.expressions._errors import expression_error
from crmbridge.core.expressions._evaluate import (
    INPUT,
    clean_message,
    freeze_clock,
    internal_names,
    is_text,
    render,
    scratch,
)
from crmbridge.core.expressions._syntax import column_path, columns_of
from crmbridge.core.schema import FieldType, arrow_type, suggest

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between)


def check_columns(
    tree: exp.Expression, columns: Mapping[str, FieldType | pa.DataType], *, what: str
) -> None:
    """Check that ``tree`` reads only ``columns`` and that its types fit together.

    An unknown column is an ExpressionError suggesting close names; so is a type error such
    as ``upper(amount)`` on a number or text compared with a number, and a field of a record
    (``customer.name``) that its declared type does not have.
    """
    check_names(tree, columns, what=what)
    used = sorted(columns_of(tree))
    types = {name: arrow_type(t) if isinstance(t, FieldType) else t for name, t in columns.items()}
    check_paths(tree, types, what=what)
    schema = pa.schema([pa.field(name, types[name]) for name in used])
    result_type(tree, schema, what=what)


def check_names(tree: exp.Expression, known: Collection[str], *, what: str) -> None:
    for name in sorted(columns_of(tree)):
        if name not in known:
            dotted = [c for c in tree.find_all(exp.Column) if column_path(c)[0] == name]
            whole = ".".join(column_path(dotted[0])) if dotted else name
            if whole in known:
                hint = f'; a field named {whole!r} is written with quotes: "{whole}"'
                raise expression_error(f"unknown column {name!r}", tree, what, hint)
            close = suggest(name, known)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise expression_error(f"unknown column {name!r}", tree, what, hint)


def check_paths(tree: exp.Expression, types: Mapping[str, pa.DataType], *, what: str) -> None:
    """Every ``a.b.c`` names fields its record type has (see core/nested.py)."""
    for column in tree.find_all(exp.Column):
        root, *path = column_path(column)
        dtype = types[root]
        walked = root
        for key in path:
            if pa.types.is_list(dtype):
                raise expression_error(
                    f"{walked!r} is a list, not a record",
                    tree,
                    what,
                    "; count its items with length(), or write them as child records "
                    "(children: in the profile)",
                )
            if not pa.types.is_struct(dtype):
                hint = (
                    f"; declare its fields in source.types, e.g. {walked}: {{{key}: string}}"
                    if walked == root
                    else ""
                )
                raise expression_error(f"{walked!r} is not a record", tree, what, hint)
            names = [f.name for f in dtype]
            if key not in names:
                close = suggest(key, names)
                hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                raise expression_error(f"{walked!r} has no field {key!r}", tree, what, hint)
            dtype = dtype.field(key).type
            walked = f"{walked}.{key}"


def result_type(tree: exp.Expression, schema: pa.Schema, *, what: str) -> pa.DataType:
    """The Arrow type of ``tree`` over columns typed per ``schema``.

    DuckDB evaluates the expression over one row of NULLs, so its type errors and errors in
    constants (``'abc'::INTEGER``) surface here, before any record is read.
    """
    names = internal_names(schema.names)
    columns = {internal: pa.nulls(1, schema.field(name).type) for name, internal in names.items()}
    nulls = pa.table({**columns, "_": pa.nulls(1)})  # DuckDB cannot register zero columns
    now = datetime.now(UTC)
    with scratch() as con:
        con.register(INPUT, nulls)
        for node in tree.find_all(*_COMPARISONS):
            operands = _operands(node)
            types = _types(con, operands, names, now, tree, what)
            _check_comparison(operands, types, tree, what)
            _check_literals(con, operands, types, tree, what)
        return _types(con, [tree], names, now, tree, what)[0]


def _types(
    con: duckdb.DuckDBPyConnection,
    parts: list[exp.Expr],
    names: dict[str, str],
    now: datetime,
    tree: exp.Expression,
    what: str,
) -> list[pa.DataType]:
    select = ", ".join(
        f"{render(freeze_clock(part, now), names)} AS v{i}" for i, part in enumerate(parts)
    )
    try:
        return list(con.sql(f"SELECT {select} FROM {INPUT}").to_arrow_table().schema.types)
    except duckdb.Error as err:
        raise expression_error(clean_message(err, names), tree, what) from None


def _operands(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.In):
        return [node.this, *node.expressions]
    if isinstance(node, exp.Between):
        return [node.this, node.args["low"], node.args["high"]]
    return [node.this, node.expression]


def _check_comparison(
    operands: list[exp.Expr], types: list[pa.DataType], tree: exp.Expression, what: str
) -> None:
    texts = [
        op
        for op, dtype in zip(operands, types, strict=True)
        if is_text(dtype) and not _is_string_literal(op)
    ]
    others = [
        (op, dtype)
        for op, dtype in zip(operands, types, strict=True)
        if not is_text(dtype) and not pa.types.is_null(dtype)
    ]
    if texts and others:
        text = texts[0].sql(dialect="duckdb")
        other, dtype = others[0]
        raise expression_error(
            f"cannot compare text {text} with {other.sql(dialect='duckdb')} ({_kind(dtype)})",
            tree,
            what,
            f"; convert the text first, e.g. cast({text} AS {_cast_hint(dtype)})",
        )


def _check_literals(
    con: duckdb.DuckDBPyConnection,
    operands: list[exp.Expr],
    types: list[pa.DataType],
    tree: exp.Expression,
    what: str,
) -> None:
    """A text literal compared with a value of another type must be that type's text and
    convert to it exactly (see the module docstring)."""
    typed = [t for t in types if not is_text(t) and not pa.types.is_null(t)]
    target = duckdb_type(typed[0]) if typed else None
    if target is None:
        return
    kind = kind_of(target)
    for operand in operands:
        if not _is_string_literal(operand):
            continue
        text = operand.unnest().name
        literal = exp.Literal.string(text).sql(dialect="duckdb")
        sql = convert_sql(literal, target, try_=True)
        value = con.sql(f"SELECT {sql} AS v").to_arrow_table().column(0)[0].as_py()
        if value is None:
            raise expression_error(f"{literal} is not a {KIND_WORDS[kind]}", tree, what)
        if kind in ("integer", "decimal") and Decimal(value) != Decimal(text.strip()):
            raise expression_error(
                f"{literal} is not exactly a {target.lower()} (it would be {value})",
                tree,
                what,
                f"; to compare numbers, write {text.strip()} without quotes",
            )


def _is_string_literal(node: exp.Expr) -> bool:
    node = node.unnest()
    return isinstance(node, exp.Literal) and node.is_string


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype) or pa.types.is_decimal(dtype) or pa.types.is_floating(dtype):
        return "a number"
    if pa.types.is_date(dtype):
        return "a date"
    if pa.types.is_timestamp(dtype):
        return "a datetime"
    return f"a {str(dtype).lower()}"


def _cast_hint(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype):
        return "BIGINT"
    if pa.types.is_decimal(dtype):
        return f"DECIMAL(18, {dtype.scale})"
    if pa.types.is_floating(dtype):
        return "DOUBLE"
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    if pa.types.is_date(dtype):
        return "DATE"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
    return str(dtype).upper()
