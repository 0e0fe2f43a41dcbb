"""CSV connection settings and the dialect both the reader and the writer follow.

When a connection sets no ``delimiter``, each file's is detected from its first lines
(:func:`resolve_dialect`); a new file gets a tab when it ends with ``.tsv``, else a comma.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from crmbridge.connectors.common.files import FileSettings


class CsvSettings(FileSettings):
    """Settings of a ``csv`` connection (see docs/connectors/csv.md)."""

    #: None: detected per file from its first lines (see :func:`resolve_dialect`)
    delimiter: str | None = None
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
    #: true: text starting with = + - @ (or a tab or carriage return) is written with a
    #: leading ' so that a spreadsheet opening the file shows it instead of running a formula
    escape_formulas: bool = False

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

    @property
    def separator(self) -> str:
        """The delimiter of a dialect resolved for one file (:func:`resolve_dialect`)."""
        assert self.delimiter is not None, "resolve_dialect() decides the delimiter first"
        return self.delimiter

    def stdlib_format(self) -> dict[str, Any]:
        """Keyword arguments for :func:`csv.reader` with this dialect."""
        return {
            "delimiter": self.separator,
            "quotechar": self.quote_char,
            "escapechar": self.escape_char,
            "doublequote": self.escape_char is None,
            "quoting": csv.QUOTE_MINIMAL,
        }


#: the delimiters looked for when a connection sets none, the most common first
CANDIDATES = (",", ";", "\t", "|")
#: how much of a file the detection reads, and how many of its records it compares
SNIFF_BYTES = 64 * 1024
SNIFF_RECORDS = 50


def resolve_dialect(path: Path, settings: CsvSettings, *, look: bool = True) -> CsvSettings:
    """``settings`` with the delimiter of the file at ``path`` decided (``look`` False: a file
    about to be replaced, whose current lines do not count).

    Without a ``delimiter`` setting, the candidate that splits the header and the records
    after it into the same number (at least 2) of fields wins; a file with one column, an
    empty file and a file not written yet get a tab for ``.tsv``, else a comma. With a
    setting that leaves the header one column wide while another candidate splits every line
    the same way, the file is refused with that hint: a ``;`` file read with ``,`` would
    otherwise be one column holding whole lines.
    """
    from crmbridge.errors import ConfigError

    sample = _sample(path, settings) if look else ""
    found = _detect(sample, settings) if sample else None
    if settings.delimiter is None:
        default = "\t" if path.suffix.lower() == ".tsv" else ","
        return settings.model_copy(update={"delimiter": found or default})
    if found and found != settings.delimiter and _width(sample, settings, settings.delimiter) == 1:
        raise ConfigError(
            f"{path.name!r} reads as one column with the delimiter {settings.delimiter!r}, "
            f"but its lines split evenly at {found!r}: set the connection's delimiter to "
            f"{found!r}, or leave it unset to detect it"
        )
    return settings


def _sample(path: Path, settings: CsvSettings) -> str:
    """The file's first lines (after ``skip_rows``), cut at the last line break read."""
    if not path.is_file():
        return ""
    with open(path, encoding=settings.python_encoding, errors="replace", newline="") as stream:
        text = stream.read(SNIFF_BYTES)
        complete = len(text) < SNIFF_BYTES
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    for _ in range(settings.skip_rows):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text


def _records(sample: str, settings: CsvSettings, delimiter: str) -> list[list[str]]:
    dialect = settings.model_copy(update={"delimiter": delimiter})
    reader = csv.reader(io.StringIO(sample, newline=""), **dialect.stdlib_format())
    records: list[list[str]] = []
    try:
        for record in reader:
            if any(value != "" for value in record):
                records.append(record)
            if len(records) == SNIFF_RECORDS:
                break
    except csv.Error:
        pass  # a broken record: judge by the ones before it
    return records


def _width(sample: str, settings: CsvSettings, delimiter: str) -> int:
    records = _records(sample, settings, delimiter)
    return len(records[0]) if records else 0


def _detect(sample: str, settings: CsvSettings) -> str | None:
    """The candidate giving most records the header's width (2 or more), or None."""
    best: tuple[int, int, int] | None = None
    chosen = None
    for rank, delimiter in enumerate(CANDIDATES):
        records = _records(sample, settings, delimiter)
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        score = (sum(len(r) == width for r in records), width, -rank)
        if best is None or score > best:
            best, chosen = score, delimiter
    return chosen
