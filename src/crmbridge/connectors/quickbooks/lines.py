"""The ``Line`` items of a sales document (Invoice, SalesReceipt, Estimate) or a payment.

A profile maps ``Line`` from a list of structs (a nested source field) or from JSON text, in
QuickBooks's own shape::

    [{"Amount": 100.0, "Description": "Consulting",
      "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 2, "UnitPrice": 50}}]

A line with a ``SalesItemLineDetail`` needs no ``DetailType`` (it is added); null members
(a struct's missing fields) are left out. Reading gives the lines back as JSON text.

To compare a document's lines with the lines a profile proposes, both are brought to one
canonical form (:func:`canonical`): without what QuickBooks adds on its own (the line
``Id`` and ``LineNum``, the names of references, the subtotal line), members sorted,
numbers written alike. So a document whose lines hold what the profile maps is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

#: what QuickBooks adds to each line by itself
_ADDED = frozenset({"Id", "LineNum"})
_SUBTOTAL = "SubTotalLineDetail"


class LineError(ValueError):
    """The value given for ``Line`` is no list of line objects."""


def to_lines(value: Any) -> list[dict[str, Any]]:
    """The lines to send for ``value`` (JSON text or a list of mappings)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as err:
            raise LineError(f"Line is not valid JSON ({err})") from None
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        raise LineError(f"Line must be a list of line objects, not {type(value).__name__}")
    out = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, Mapping):
            raise LineError(f"Line item {n} is not an object")
        line = _without_nulls(item)
        if "DetailType" not in line:
            details = [k for k in line if k.endswith("LineDetail")]
            if len(details) == 1:
                line["DetailType"] = details[0]
        out.append(line)
    return out


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def canonical(value: Any) -> str | None:
    """``value``'s lines in the canonical form of the module docstring (None stays None; a
    value that is no list of lines is returned as it is)."""
    if value is None:
        return None
    try:
        lines = to_lines(value)
    except LineError:
        return value if isinstance(value, str) else json.dumps(value, default=str)
    kept = [_strip(line) for line in lines if line.get("DetailType") != _SUBTOTAL]
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _strip(value: Any, *, top: bool = True) -> Any:
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if top and key in _ADDED:
                continue
            if key.endswith("Ref") and isinstance(item, Mapping):
                item = {k: v for k, v in item.items() if k != "name"}
            out[key] = _strip(item, top=False)
        return out
    if isinstance(value, list):
        return [_strip(v, top=False) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        number = Decimal(str(value)).normalize()
        return int(number) if number == number.to_integral_value() else float(number)
    return value
