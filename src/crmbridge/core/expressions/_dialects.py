"""What each SQL database evaluates exactly like DuckDB, and how to write it there.

A column's *kind* says how DuckDB compares its values; a database gets a comparison only
when it compares that kind the same way:

=========== ========== ============ ============= ==========================================
kind        PostgreSQL MySQL/MariaDB SQLite       how
=========== ========== ============ ============= ==========================================
text        yes        yes           yes          by code point, case- and space-exact
integer     yes        yes           yes
decimal     yes        yes           no (REAL)
float       yes        yes           yes          double precision columns only
boolean     yes        no            no           MySQL/SQLite store 0/1 integers
date        yes        yes           no (text)
datetime    yes        yes           no (text)
=========== ========== ============ ============= ==========================================

SQL Server (mssql) gets numbers only: its string comparisons ignore trailing spaces whatever
the collation, and nothing else has been checked against a live server.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class Kind(enum.Enum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"


@dataclass(frozen=True)
class ColumnKind:
    kind: Kind
    aware: bool = False  #: DATETIME: the database stores the offset (timestamptz)


class LikePattern:
    """A LIKE pattern split into literal characters and the wildcards ``%`` and ``_``."""

    def __init__(self, pattern: str, escape: str | None) -> None:
        self.tokens: list[str] = []  # "%", "_", or "\\" + one literal character
        chars = iter(pattern)
        for char in chars:
            if escape and char == escape:
                literal = next(chars, None)
                if literal is None:
                    raise ValueError("pattern ends with the escape character")
                self.tokens.append("\\" + literal)
            elif char in "%_":
                self.tokens.append(char)
            else:
                self.tokens.append("\\" + char)

    def with_backslash_escape(self) -> str:
        """The pattern for ``LIKE ... ESCAPE '\\'``."""
        return "".join(
            t if t in ("%", "_") else ("\\" + t[1] if t[1] in "%_\\" else t[1]) for t in self.tokens
        )

    def as_glob(self) -> str:
        """The same pattern for SQLite's GLOB (case-sensitive, unlike its LIKE)."""
        wild = {"%": "*", "_": "?"}
        return "".join(wild.get(t) or (f"[{t[1]}]" if t[1] in "*?[" else t[1]) for t in self.tokens)


class Dialect:
    """Base: what every database does the same; subclasses say what else is exact there."""

    name = "generic"
    text = False
    decimals = True
    booleans = False
    temporal = False
    #: datetime columns may store an offset (PostgreSQL's timestamptz); elsewhere they are
    #: naive and hold UTC
    offsets = False
    #: CHAR (blank-padded) and ENUM columns compare like other text
    padded_text_ok = False

    def kind_of(self, type_: sa.types.TypeEngine[Any]) -> ColumnKind | None:
        """How values of a column of this SQLAlchemy type compare; None: not like DuckDB."""
        if isinstance(type_, sa.Boolean):
            return ColumnKind(Kind.BOOLEAN) if self.booleans else None
        if isinstance(type_, sa.String):
            plain = not isinstance(type_, (sa.Enum, sa.CHAR, sa.NCHAR)) and type(
                type_
            ).__name__ not in ("CITEXT", "SET")
            return ColumnKind(Kind.TEXT) if self.text and (plain or self.padded_text_ok) else None
        if isinstance(type_, sa.Integer):
            return ColumnKind(Kind.INTEGER)
        if isinstance(type_, sa.Float):
            return ColumnKind(Kind.FLOAT) if self.is_double(type_) else None
        if isinstance(type_, sa.Numeric):
            return ColumnKind(Kind.DECIMAL) if self.decimals else None
        if isinstance(type_, sa.DateTime) and self.temporal:
            return ColumnKind(Kind.DATETIME, aware=self.offsets and bool(type_.timezone))
        if isinstance(type_, sa.Date) and self.temporal:
            return ColumnKind(Kind.DATE)
        return None

    def is_double(self, type_: sa.Float[Any]) -> bool:
        """Single precision columns compare differently from the doubles read from them."""
        if isinstance(type_, sa.Double):
            return True
        return not isinstance(type_, sa.REAL) and (type_.precision or 53) > 24

    def exact_text(self, expr: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """``expr`` made to compare by code point, case- and trailing-space-sensitive."""
        raise NotImplementedError  # only called when self.text

    def like(self, expr: sa.ColumnElement[Any], pattern: LikePattern) -> sa.ColumnElement[bool]:
        """Case-sensitive LIKE, ``%`` and ``_`` matching characters (not bytes)."""
        return self.exact_text(expr).like(
            sa.literal(pattern.with_backslash_escape(), sa.String()), escape="\\"
        )


class Postgres(Dialect):
    name = "postgresql"
    text = booleans = temporal = offsets = True

    def exact_text(self, expr: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        # The "C" collation compares bytes of UTF-8, which is code point order.
        return expr.collate("C")


class MySQL(Dialect):
    name = "mysql"
    text = temporal = True

    def is_double(self, type_: sa.Float[Any]) -> bool:
        return isinstance(type_, sa.Double)  # FLOAT and REAL may be single precision

    def exact_text(self, expr: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        # Default collations ignore case and trailing spaces; the bytes of UTF-8 do not.
        return _Utf8mb4Bytes(expr)

    def like(self, expr: sa.ColumnElement[Any], pattern: LikePattern) -> sa.ColumnElement[bool]:
        # LIKE over bytes would let "_" match one byte; a binary collation keeps characters.
        return (
            _Utf8mb4(expr)
            .collate("utf8mb4_bin")
            .like(sa.literal(pattern.with_backslash_escape(), sa.String()), escape="\\")
        )


class SQLite(Dialect):
    name = "sqlite"
    text = padded_text_ok = True
    decimals = False  # NUMERIC columns hold floats

    def is_double(self, type_: sa.Float[Any]) -> bool:
        return True  # REAL is 8 bytes

    def exact_text(self, expr: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return expr.collate("BINARY")

    def like(self, expr: sa.ColumnElement[Any], pattern: LikePattern) -> sa.ColumnElement[bool]:
        # SQLite's LIKE ignores ASCII case; GLOB does not.
        glob = sa.literal(pattern.as_glob(), sa.String())
        return expr.op("GLOB", is_comparison=True)(glob)


class MSSQL(Dialect):
    name = "mssql"


DIALECTS: dict[str, Dialect] = {
    "postgresql": Postgres(),
    "mysql": MySQL(),
    "mariadb": MySQL(),
    "sqlite": SQLite(),
    "mssql": MSSQL(),
}


class _Utf8mb4(FunctionElement[str]):
    """``CONVERT(x USING utf8mb4)`` (MySQL): the column's text whatever its character set."""

    name = "convert_utf8mb4"
    type = sa.String()
    inherit_cache = True


class _Utf8mb4Bytes(FunctionElement[bytes]):
    """``CAST(CONVERT(x USING utf8mb4) AS BINARY)`` (MySQL): the UTF-8 bytes of the text."""

    name = "utf8mb4_bytes"
    type = sa.LargeBinary()
    inherit_cache = True


@compiles(_Utf8mb4)
def _compile_utf8mb4(element: _Utf8mb4, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CONVERT({compiler.process(element.clauses, **kw)} USING utf8mb4)"


@compiles(_Utf8mb4Bytes)
def _compile_utf8mb4_bytes(element: _Utf8mb4Bytes, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(CONVERT({compiler.process(element.clauses, **kw)} USING utf8mb4) AS BINARY)"
