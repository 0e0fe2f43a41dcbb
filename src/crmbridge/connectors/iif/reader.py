"""Reading an IIF file back into the records of its kind (what :mod:`.writer` wrote, or an
export of QuickBooks Desktop with the same columns).

Header rows (``!CUST``, ``!TRNS``, ``!SPL``) name the columns of the rows that follow. A
transaction becomes one record per ``SPL`` line (amounts and quantities turned positive
again); a transaction whose lines do not balance its ``TRNS`` amount, or a row that does not
parse, is reported as a bad record.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from crmbridge.connectors.base import BadRecord
from crmbridge.connectors.iif.iif_format import parse_bool, parse_date, parse_decimal
from crmbridge.connectors.iif.kinds import Kind
from crmbridge.core.schema import FieldType, ObjectSchema


def _typed(schema: ObjectSchema, values: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in schema.fields:
        text = values.get(field.name, "")
        if field.type is FieldType.DATE:
            out[field.name] = parse_date(text)
        elif field.type is FieldType.DECIMAL:
            out[field.name] = parse_decimal(text)
        elif field.type is FieldType.BOOLEAN:
            out[field.name] = parse_bool(text)
        else:
            out[field.name] = text or None
    return out


def read_records(path: Path, kind: Kind, encoding: str) -> Iterator[dict[str, Any] | BadRecord]:
    """The records of ``kind`` in the file, in file order, and the rows that do not parse."""
    headers: dict[str, list[str]] = {}
    trns: tuple[int, dict[str, str], str] | None = None
    lines: list[dict[str, str]] = []
    with open(path, encoding=encoding, newline="") as stream:
        for number, raw in enumerate(stream, start=1):
            text = raw.rstrip("\r\n")
            if not text.strip():
                continue
            cells = text.split("\t")
            tag = cells[0]
            if tag.startswith("!"):
                headers[tag[1:]] = cells[1:]
                continue
            names = headers.get(tag)
            values = dict(zip(names, cells[1:], strict=False)) if names else {}
            try:
                if tag == "CUST" and kind.trnstype is None:
                    yield _typed(kind.schema, values)
                elif tag == "TRNS" and kind.trnstype is not None:
                    trns, lines = (number, values, text), []
                elif tag == "SPL" and trns is not None:
                    lines.append(values)
                elif tag == "ENDTRNS" and trns is not None:
                    yield from _transaction(kind, trns, lines)
                    trns = None
            except (ValueError, InvalidOperation) as err:
                yield BadRecord(number, text, f"cannot read the {tag} row: {err}")


def _transaction(
    kind: Kind, trns: tuple[int, dict[str, str], str], lines: list[dict[str, str]]
) -> Iterator[dict[str, Any] | BadRecord]:
    number, head, text = trns
    if head.get("TRNSTYPE") != kind.trnstype:
        return
    total = Decimal(head.get("AMOUNT") or "0")
    split = sum((Decimal(s.get("AMOUNT") or "0") for s in lines), Decimal(0))
    if total + split != 0:
        yield BadRecord(number, text, f"the lines add up to {-split}, the document to {total}")
        return
    for spl in lines:
        qty = parse_decimal(spl.get("QNTY", ""))
        values = {
            **{k: head.get(k, "") for k in ("DOCNUM", "DATE", "NAME", "ACCNT", "MEMO",
                                             "DUEDATE", "TERMS", "PAYMETH")},
            "ITEM": spl.get("INVITEM", ""),
            "LINE_ACCNT": spl.get("ACCNT", ""),
            "LINE_MEMO": spl.get("MEMO", ""),
            "PRICE": spl.get("PRICE", ""),
            "TAXABLE": spl.get("TAXABLE", ""),
        }  # fmt: skip
        record = _typed(kind.schema, values)
        record["QNTY"] = -qty if qty is not None else None
        record["AMOUNT"] = -Decimal(spl.get("AMOUNT") or "0")
        yield record
