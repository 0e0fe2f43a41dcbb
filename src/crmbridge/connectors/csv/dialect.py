"""CSV connection settings and the dialect both the reader and the writer follow."""

from __future__ import annotations

import codecs
import csv
from typing import Any

from pydantic import Field, field_validator

from crmbridge.connectors.common.files import FileSettings


class CsvSettings(FileSettings):
    """Settings of a ``csv`` connection (see docs/connectors/csv.md)."""

    delimiter: str = ","
    quote_char: str = '"'
    #: None: a quote inside a quoted value is doubled ("")
    escape_char: str | None = None
    #: utf-8 (with or without BOM), or any Python codec name such as cp1252 or latin-1
    encoding: str = "utf-8"
    #: false: the first line is data and the columns are named col_1 ... col_n
    header: bool = True
    #: unquoted cell values read as null
    null_values: tuple[str, ...] = ("",)
    #: lines to skip before the header (a title, a report date ...)
    skip_rows: int = Field(default=0, ge=0)
    #: true: add to an existing file instead of replacing it
    append: bool = False

    @field_validator("delimiter", "quote_char", "escape_char")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"must be one character, not {value!r}")
        if value in ("\n", "\r"):
            raise ValueError("cannot be a line break")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (try utf-8, cp1252 or latin-1)") from None
        return value

    @property
    def is_utf8(self) -> bool:
        return codecs.lookup(self.encoding).name in ("utf-8", "utf-8-sig")

    @property
    def python_encoding(self) -> str:
        """The codec for Python's open(): a UTF-8 byte order mark is skipped when present."""
        return "utf-8-sig" if self.is_utf8 else self.encoding

    @property
    def arrow_encoding(self) -> str:
        """The encoding for pyarrow ("utf8" is native and skips a byte order mark)."""
        return "utf8" if self.is_utf8 else self.encoding

    def stdlib_format(self) -> dict[str, Any]:
        """Keyword arguments for :func:`csv.reader` with this dialect."""
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quote_char,
            "escapechar": self.escape_char,
            "doublequote": self.escape_char is None,
            "quoting": csv.QUOTE_MINIMAL,
        }
