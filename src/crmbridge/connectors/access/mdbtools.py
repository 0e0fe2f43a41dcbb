"""Calls to Debian's mdbtools command-line programs, and what their output means.

* ``mdb-ver``, ``mdb-tables -1``, ``mdb-count``: version, table names, row count;
* ``mdb-schema -T <table>``: column names and Access types (parsed by :func:`parse_schema`),
  and with the ``postgres`` backend and ``--indexes``, the primary key;
* ``mdb-export``: the rows as CSV with a header, streamed from the process's output.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from crmbridge.core.schema import Field, FieldType
from crmbridge.errors import ConfigError, RemoteError

#: strftime format mdb-export writes dates in
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
#: what mdbtools 1.0 writes for a date it cannot convert (before 1899-12-30, after ~4637)
UNDECODABLE_DATE = "1900-01-00"

_COLUMN = re.compile(r"^\s*\[(?P<name>.+?)\]\s+(?P<type>[^\[]+?)(?P<notnull>\s+NOT NULL)?,?\s*$")
_SIZE = re.compile(r"\((\d+)(?:,\s*(\d+))?\)")
_PRIMARY_KEY = re.compile(r"PRIMARY KEY \((?P<columns>[^)]*)\)")
_TYPES = {
    "Boolean": FieldType.BOOLEAN,
    "Byte": FieldType.INTEGER,
    "Integer": FieldType.INTEGER,
    "Long Integer": FieldType.INTEGER,
    "Currency": FieldType.DECIMAL,
    "Single": FieldType.FLOAT,
    "Double": FieldType.FLOAT,
    "DateTime": FieldType.DATETIME,
    "Numeric": FieldType.DECIMAL,
    "Text": FieldType.STRING,
    "Memo/Hyperlink": FieldType.TEXT,
    "OLE": FieldType.TEXT,  # hexadecimal text of the bytes
    "Binary": FieldType.TEXT,  # idem
}


class Mdb:
    """One Access file, read through mdbtools."""

    def __init__(self, path: Path, *, jet3_charset: str) -> None:
        self.path = path
        self.env = {**os.environ, "MDB_JET3_CHARSET": jet3_charset}

    def run(self, *args: str) -> str:
        """Output of an mdbtools program whose output is small; RemoteError when it fails."""
        try:
            done = subprocess.run(
                list(args),
                capture_output=True,
                env=self.env,
                check=False,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except FileNotFoundError as err:
            raise _missing_tools(err) from err
        if done.returncode:
            raise RemoteError(f"{args[0]} failed on {self.path.name!r}: {_last_line(done.stderr)}")
        return done.stdout

    def version(self) -> str:
        return self.run("mdb-ver", str(self.path)).strip()

    def tables(self) -> list[str]:
        return [t for t in self.run("mdb-tables", "-1", str(self.path)).splitlines() if t]

    def count(self, table: str) -> int:
        return int(self.run("mdb-count", str(self.path), table).strip())

    def fields(self, table: str) -> tuple[Field, ...]:
        access = self.run("mdb-schema", "-T", table, str(self.path))
        postgres = self.run("mdb-schema", "--indexes", "-T", table, str(self.path), "postgres")
        return parse_schema(access, primary_key(postgres))

    @contextmanager
    def export(self, table: str) -> Iterator[IO[bytes]]:
        """The table as CSV (header, dates as DATE_FORMAT, binary as hex, TRUE/FALSE),
        streamed; RemoteError when mdb-export fails."""
        args = ["mdb-export", "-D", DATE_FORMAT, "-T", DATE_FORMAT, "-b", "hex", "-B"]
        with tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(
                    [*args, str(self.path), table],
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    env=self.env,
                )
            except FileNotFoundError as err:
                raise _missing_tools(err) from err
            assert process.stdout is not None
            try:
                yield process.stdout
            except BaseException:
                process.kill()  # the reader stopped early or failed: mdb-export's exit is moot
                raise
            finally:
                process.stdout.close()
                code = process.wait()
            if code:
                errors.seek(0)
                message = _last_line(errors.read().decode("utf-8", "replace"))
                raise RemoteError(f"mdb-export failed on table {table!r}: {message}")


def parse_schema(text: str, key: Sequence[str] = ()) -> tuple[Field, ...]:
    """Fields from ``mdb-schema`` output (access backend); ``key`` names the primary key
    columns (compared without case)."""
    keys = {k.lower() for k in key}
    fields: list[Field] = []
    for line in text.splitlines():
        match = _COLUMN.match(line)
        if not match:
            continue
        spec = match["type"].strip()
        base = _SIZE.sub("", spec).strip()
        size = _SIZE.search(spec)
        ftype = _TYPES.get(base, FieldType.STRING)
        length = int(size[1]) if size and ftype is FieldType.STRING else None
        precision, scale = (19, 4) if base == "Currency" else (None, None)
        if base == "Numeric" and size:
            precision, scale = int(size[1]), int(size[2] or 0)
        fields.append(
            Field(
                match["name"],
                ftype,
                length=length,
                precision=precision,
                scale=scale,
                required=bool(match["notnull"]),
                key=match["name"].lower() in keys,
                label=None,
            )
        )
    return tuple(fields)


def primary_key(postgres_schema: str) -> list[str]:
    """The primary key columns in ``mdb-schema --indexes ... postgres`` output (lower case)."""
    match = _PRIMARY_KEY.search(postgres_schema)
    if not match:
        return []
    return [c.strip().strip('"') for c in match["columns"].split(",")]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _missing_tools(err: FileNotFoundError) -> ConfigError:
    return ConfigError(
        f"the access connector needs mdbtools ({err.filename} not found); "
        "install it with: apt-get install mdbtools"
    )
