"""Conversions: one set of rules for ``cast``, ``try_cast``, ``source.types`` and the
conversion to a target's types, wherever crmbridge evaluates them (docs/expressions.md,
"Conversions").

DuckDB's own casts accept more than a user would expect of text: ``'0x1A'`` is the integer 26,
``'1_000'`` is 1000, ``'1e3'`` and ``'12.5'`` are integers, ``'2024/03/01'`` and
``'24-03-01'`` are dates (the second one in year 24), ``'epoch'`` is a date-time, and a
``TIMESTAMP`` ignores the offset written in its text. And it rounds a double half to even when
converting it to an integer, but a decimal half away from zero. Here each conversion of text
first checks the text against the one format documented for the type, and a number becomes an
integer rounded half away from zero, whatever its type:

=========== =================================================================================
type        text accepted (spaces around it are ignored)
=========== =================================================================================
integer     digits with an optional sign: ``12``, ``-7``, ``+5``
decimal     a decimal number, optionally with an exponent: ``12.50``, ``-.5``, ``1e3``
float       as decimal, or ``inf``, ``-infinity``, ``nan`` (any case)
boolean     ``true``/``false``, ``t``/``f``, ``yes``/``no``, ``y``/``n``, ``1``/``0`` (any case)
date        ``YYYY-MM-DD`` (month and day may have one digit), years 0001 to 9999
datetime    a date, then optionally ``T`` or a space and ``HH:MM[:SS[.fraction]]``, then
            optionally ``Z`` or an offset ``+HH``, ``+HH:MM``, ``+HHMM``; without an offset
            the time is UTC. ``TIMESTAMP`` (without time zone) is the UTC time of that instant.
=========== =================================================================================

Text that does not follow the format does not convert: ``cast`` fails (the record is
rejected, with DuckDB's message naming the value), ``try_cast`` gives NULL.
"""

from __future__ import annotations

import re

_SPACE = "[[:space:]]*"
_YEAR = "(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_DATE = f"{_YEAR}-[0-9]{{1,2}}-[0-9]{{1,2}}"
_NUMBER = "[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"

#: the format of text each kind of type accepts (RE2 syntax, matched against the whole text)
TEXT_FORMATS: dict[str, str] = {
    "integer": f"{_SPACE}[+-]?[0-9]+{_SPACE}",
    "decimal": f"{_SPACE}{_NUMBER}{_SPACE}",
    "float": f"{_SPACE}({_NUMBER}|(?i:[+-]?(inf|infinity|nan))){_SPACE}",
    "date": f"{_SPACE}{_DATE}{_SPACE}",
    "datetime": (
        f"{_SPACE}{_DATE}([T ][0-9]{{1,2}}:[0-9]{{2}}(:[0-9]{{2}}([.][0-9]+)?)?)?"
        f"(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)?{_SPACE}"
    ),
}
_TRUE = f"{_SPACE}(?i:true|t|yes|y|1){_SPACE}"
_FALSE = f"{_SPACE}(?i:false|f|no|n|0){_SPACE}"

#: what a value of each kind is, for messages ("'0x1A' is not a whole number")
KIND_WORDS: dict[str, str] = {
    "integer": "whole number",
    "decimal": "number",
    "float": "number",
    "boolean": "boolean (true/false)",
    "date": "date (YYYY-MM-DD)",
    "datetime": "date-time (YYYY-MM-DD HH:MM:SS, UTC unless an offset is given)",
    "text": "text",
}

#: appended to text that does not follow its format, so that DuckDB's cast fails on it (and
#: TRY() sees a conversion error), followed by the label given to :func:`convert_sql`; both
#: are taken out of DuckDB's message again
FAILURE_MARK = "\x01"

_INTEGERS = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT"}
    | {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)
_FLOATS = frozenset({"DOUBLE", "REAL", "FLOAT"})


def kind_of(duckdb_type: str) -> str:
    """The kind of a DuckDB type name: integer, decimal, float, boolean, date, datetime, text
    (everything else, e.g. VARCHAR)."""
    name = duckdb_type.strip().upper()
    base = re.split(r"[ (]", name, maxsplit=1)[0]
    if base in _INTEGERS:
        return "integer"
    if base in ("DECIMAL", "NUMERIC"):
        return "decimal"
    if base in _FLOATS:
        return "float"
    if base in ("BOOLEAN", "BOOL"):
        return "boolean"
    if base == "DATE":
        return "date"
    if base in ("TIMESTAMP", "TIMESTAMPTZ", "DATETIME"):
        return "datetime"
    return "text"


def convert_sql(operand: str, target: str, *, try_: bool, label: str = "") -> str:
    """DuckDB SQL converting the SQL expression ``operand`` (of any type) to the DuckDB type
    ``target`` by the rules above. ``try_``: NULL when the value does not convert, else an
    error (a cast) whose message has ``label`` (plain characters) after FAILURE_MARK.

    The operand's type is dispatched on with ``typeof``, which DuckDB folds when it plans the
    query, so only the branch for the operand's actual type is executed.
    """
    kind = kind_of(target)
    cast = "TRY_CAST" if try_ else "CAST"
    if kind == "text":
        return f"{cast}({operand} AS {target})"
    text = f"CAST({operand} AS VARCHAR)"
    failed = f"{text} || chr(1) || '{label}'"
    from_text = _from_text(text, failed, kind, target, try_)
    branches = [f"WHEN typeof({operand}) = 'VARCHAR' THEN {from_text}"]
    if kind == "integer":  # half away from zero, as for decimals (DuckDB: doubles half to even)
        rounded = f"round(TRY_CAST({operand} AS DOUBLE))"
        branches.append(
            f"WHEN typeof({operand}) IN ('DOUBLE', 'FLOAT') THEN {cast}({rounded} AS {target})"
        )
    return f"(CASE {' '.join(branches)} ELSE {cast}({operand} AS {target}) END)"


def _from_text(text: str, failed: str, kind: str, target: str, try_: bool) -> str:
    if kind == "boolean":
        otherwise = "NULL" if try_ else f"CAST({failed} AS BOOLEAN)"
        return (
            f"(CASE WHEN regexp_full_match({text}, '{_TRUE}') THEN TRUE "
            f"WHEN regexp_full_match({text}, '{_FALSE}') THEN FALSE ELSE {otherwise} END)"
        )
    matches = f"regexp_full_match({text}, '{TEXT_FORMATS[kind]}')"
    naive = kind == "datetime" and "TZ" not in target.upper() and "ZONE" not in target.upper()
    via = "TIMESTAMPTZ" if naive else target  # the offset in the text counts
    if try_:
        value = f"(CASE WHEN {matches} THEN TRY_CAST({text} AS {via}) END)"
    else:
        value = f"CAST((CASE WHEN {matches} THEN {text} ELSE {failed} END) AS {via})"
    return f"CAST({value} AS {target})" if naive else value
