"""Where a sheet holds Excel error values (``#DIV/0!``, ``#N/A`` ...).

python-calamine reads an error cell as an empty cell, which would make a broken formula a
silent null. The sheet's XML says which cells are errors (``<c r="B7" t="e"><v>#DIV/0!</v>``);
this module finds them. A quick byte scan of the sheet part comes first: a sheet without any
error cell (nearly all) costs one pass of decompression and nothing else.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from xml.etree import ElementTree

from crmbridge.errors import ConfigError

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
#: in the sheet's XML where (and only where) a cell holds an error
ERROR_MARK = re.compile(re.escape(b't="e"'))
_OVERLAP = 64
_CHUNK = 1 << 20
_REFERENCE = re.compile(r"([A-Z]+)([0-9]+)")


def column_letters(index: int) -> str:
    """``A`` for 0, ``Z`` for 25, ``AA`` for 26 ..."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _column_index(letters: str) -> int:
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - ord("A") + 1
    return index - 1


def sheet_marks(path: Path, sheet: str, marks: Mapping[str, re.Pattern[bytes]]) -> set[str]:
    """The names of the ``marks`` (patterns of at most ``_OVERLAP`` bytes) the XML of
    ``sheet`` holds: one pass of decompression, no parsing."""
    with zipfile.ZipFile(path) as book, book.open(_sheet_part(book, sheet)) as stream:
        found: set[str] = set()
        tail = b""
        while len(found) < len(marks) and (chunk := stream.read(_CHUNK)):
            window = tail + chunk
            found.update(n for n, m in marks.items() if n not in found and m.search(window))
            tail = chunk[-_OVERLAP:]
        return found


def error_cells(path: Path, sheet: str, *, scanned: bool = False) -> dict[int, dict[int, str]]:
    """Sheet row number (1-based) -> {column index (0-based, A = 0): error value}.

    ``scanned``: the caller found ERROR_MARK in the sheet already (:func:`sheet_marks`)."""
    if not scanned and not sheet_marks(path, sheet, {"error": ERROR_MARK}):
        return {}
    with zipfile.ZipFile(path) as book:
        part = _sheet_part(book, sheet)
        found: dict[int, dict[int, str]] = {}
        with book.open(part) as stream:
            for _, element in ElementTree.iterparse(stream):
                if element.tag == f"{_MAIN}row":
                    element.clear()  # its cells are done: keep memory flat
                if element.tag != f"{_MAIN}c":
                    continue
                if element.get("t") == "e":
                    match = _REFERENCE.fullmatch(element.get("r") or "")
                    if match:
                        value = element.findtext(f"{_MAIN}v") or "#ERROR"
                        row, column = int(match.group(2)), _column_index(match.group(1))
                        found.setdefault(row, {})[column] = value
                element.clear()
        return found


def shared_strings_hold(path: Path, mark: re.Pattern[bytes]) -> bool:
    """Does the workbook's shared strings part (if any) hold ``mark``?"""
    with zipfile.ZipFile(path) as book:
        parts = [n for n in book.namelist() if n.lower().endswith("sharedstrings.xml")]
        return any(mark.search(book.read(part)) for part in parts)


def _sheet_part(book: zipfile.ZipFile, sheet: str) -> str:
    """The zip member holding the cells of ``sheet`` (via workbook.xml and its relations)."""
    try:
        workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
        relations = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError) as err:
        raise ConfigError(f"{book.filename!r} has no readable workbook part: {err}") from None
    targets = {
        r.get("Id"): r.get("Target") or "" for r in relations.iter(f"{_PACKAGE_REL}Relationship")
    }
    for element in workbook.iter(f"{_MAIN}sheet"):
        if element.get("name") == sheet:
            target = targets.get(element.get(f"{_REL}id"), "")
            if target.startswith("/"):
                return target.lstrip("/")
            return posixpath.normpath(posixpath.join("xl", target))
    raise ConfigError(f"sheet {sheet!r} is not listed in the workbook part of {book.filename!r}")
