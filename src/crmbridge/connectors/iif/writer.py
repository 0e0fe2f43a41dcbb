"""Writing an IIF file: the customer list, or documents with their split lines.

A document is written once its last line has arrived (the next record has another
``DOCNUM``, or the file is completed). Its ``TRNS`` amount is the sum of its lines and each
``SPL`` carries the negated line amount (and quantity), so the transaction balances as
QuickBooks requires. A record that cannot be written is rejected with the reason; the rest
of its document is still written, and balances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from crmbridge.connectors.common.files import AtomicFile, Sink
from crmbridge.connectors.iif.iif_format import IifValueError, cell, row
from crmbridge.connectors.iif.kinds import (
    HEADER_FIELDS,
    SPL_COLUMNS,
    TRNS_COLUMNS,
    Kind,
)

_CUSTOMER_HEADER = "!CUST"
_CENT = Decimal("0.01")


@dataclass
class _Document:
    header: dict[str, Any]
    lines: list[dict[str, Any]] = field(default_factory=list)


class IifSink(Sink):
    """One IIF file being written during a run."""

    def __init__(self, path: Path, kind: Kind, encoding: str) -> None:
        self.kind = kind
        self.encoding = encoding
        self.file = AtomicFile(path)
        self.fields = kind.schema.field_names
        self._open: _Document | None = None
        self._written: set[str] = set()
        self._names: set[str] = set()
        if kind.trnstype is None:
            self._emit(row(_CUSTOMER_HEADER, self.fields))
        else:
            self._emit(row("!TRNS", list(TRNS_COLUMNS)))
            self._emit(row("!SPL", list(SPL_COLUMNS)))
            self._emit("!ENDTRNS\r\n")

    def _emit(self, text: str) -> None:
        self.file.stream.write(text.encode(self.encoding))

    def write(self, batch: pa.RecordBatch) -> list[str | None]:
        reasons: list[str | None] = []
        for record in batch.to_pylist():
            try:
                if self.kind.trnstype is None:
                    self._customer(record)
                else:
                    self._line(record)
                reasons.append(None)
            except IifValueError as err:
                reasons.append(str(err))
        return reasons

    def _check_text(self, record: dict[str, Any]) -> None:
        for name, value in record.items():
            try:
                text = cell(value)
                text.encode(self.encoding)
            except IifValueError as err:
                raise IifValueError(f"{name} {err}") from None
            except UnicodeEncodeError:
                raise IifValueError(
                    f"{name} holds characters that {self.encoding} cannot write"
                ) from None

    def _customer(self, record: dict[str, Any]) -> None:
        self._check_text(record)
        if not record.get("NAME"):
            raise IifValueError("NAME is required")
        key = str(record["NAME"]).casefold()
        if key in self._names:
            raise IifValueError(f"a customer named {record['NAME']!r} is in this file already")
        self._names.add(key)
        scales = {"LIMIT": 2}
        self._emit(row("CUST", [cell(record.get(n), scale=scales.get(n)) for n in self.fields]))

    def _line(self, record: dict[str, Any]) -> None:
        self._check_text(record)
        number = record.get("DOCNUM")
        if not number or record.get("DATE") is None or not record.get("NAME"):
            raise IifValueError("DOCNUM, DATE and NAME are required")
        if not record.get("LINE_ACCNT"):
            raise IifValueError("LINE_ACCNT (the income account of the line) is required")
        amount = record.get("AMOUNT")
        if amount is None:
            if record.get("QNTY") is None or record.get("PRICE") is None:
                raise IifValueError("AMOUNT, or QNTY and PRICE, are required")
            amount = (Decimal(record["QNTY"]) * Decimal(record["PRICE"])).quantize(_CENT)
        if self._open is not None and self._open.header["DOCNUM"] != number:
            self._flush()
        if self._open is None:
            if number in self._written:
                raise IifValueError(
                    f"document {number} was written already: the lines of one document must "
                    "come one after the other (sort by DOCNUM)"
                )
            header = {n: record.get(n) for n in HEADER_FIELDS}
            self._open = _Document(header)
        else:
            first = self._open.header
            for name in ("DATE", "NAME"):
                if record.get(name) != first.get(name):
                    raise IifValueError(f"{name} differs from the first line of document {number}")
        self._open.lines.append({**record, "AMOUNT": Decimal(amount)})

    def _flush(self) -> None:
        document, self._open = self._open, None
        if document is None:
            return
        head = document.header
        kind = self.kind
        assert kind.trnstype is not None
        total = sum((line["AMOUNT"] for line in document.lines), Decimal(0))
        trns = {
            "TRNSID": None,
            "TRNSTYPE": kind.trnstype,
            "DATE": head["DATE"],
            "ACCNT": head.get("ACCNT") or kind.default_account,
            "NAME": head["NAME"],
            "AMOUNT": total,
            "DOCNUM": head["DOCNUM"],
            "MEMO": head.get("MEMO"),
            "DUEDATE": head.get("DUEDATE"),
            "TERMS": head.get("TERMS"),
            "PAYMETH": head.get("PAYMETH"),
        }
        self._emit(
            row("TRNS", [cell(trns[c], scale=2 if c == "AMOUNT" else None) for c in TRNS_COLUMNS])
        )
        for line in document.lines:
            qty = line.get("QNTY")
            spl = {
                "SPLID": None,
                "TRNSTYPE": kind.trnstype,
                "DATE": head["DATE"],
                "ACCNT": line["LINE_ACCNT"],
                "NAME": head["NAME"],
                "AMOUNT": -line["AMOUNT"],
                "DOCNUM": head["DOCNUM"],
                "MEMO": line.get("LINE_MEMO"),
                "QNTY": -qty if qty is not None else None,
                "PRICE": line.get("PRICE"),
                "INVITEM": line.get("ITEM"),
                "TAXABLE": line.get("TAXABLE"),
            }
            scales = {"AMOUNT": 2, "QNTY": 5, "PRICE": 5}
            self._emit(row("SPL", [cell(spl[c], scale=scales.get(c)) for c in SPL_COLUMNS]))
        self._emit("ENDTRNS\r\n")
        self._written.add(str(head["DOCNUM"]))

    def commit(self) -> None:
        self._flush()
        self.file.commit()

    def discard(self) -> None:
        self.file.discard()
