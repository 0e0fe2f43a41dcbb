"""Values between Sugar's wire formats and crmbridge's typed Arrow columns.

Reading is columnar: a page's values of one field become one Arrow array, converted with
pyarrow compute. What the two APIs send:

* v4_1: every value is a string; ``""`` is null; booleans ``"0"``/``"1"``; datetimes
  ``YYYY-MM-DD HH:MM:SS`` in UTC; text comes HTML-encoded for ``< > " '`` only (``&`` stays raw,
  so ``&amp;`` in a value is the user's own text and is left alone).
* v10: JSON values; datetimes ISO 8601 with the user's offset (converted to UTC here).

On both, a boolean Sugar stores as NULL (a checkbox never set) reads as false: v10 answers
false for it and v4_1 ``""``, and Sugar shows it unchecked. A ``multienum`` is a list of option
keys: v4_1 sends ``^a^,^b^``, v10 a JSON list; empty is null.

Writing goes the other way, value by value (a write batch is at most a hundred records and
becomes JSON anyway): :func:`encode` makes the wire value, :func:`stored_form` says what Sugar
will keep of a batch (so a value it rewrites on save compares equal afterwards), and
:func:`refusals` which records it would refuse to store as they are (e-mail addresses it
drops).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import re
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.sugarcrm.discovery import EMAIL_FIELDS
from crmbridge.core.schema import Field, FieldType, ObjectSchema

log = logging.getLogger("crmbridge.connectors.sugarcrm")

DB_DATETIME = "%Y-%m-%d %H:%M:%S"
#: the entities a v4_1 read produces, and what they stand for
HTML_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#039;", "'"))
_TRUE_TEXTS = pa.array(["1", "true", "on", "yes", "y", "t"])
#: what SuiteCRM 7.14 accepts as an e-mail address (PHP's FILTER_VALIDATE_EMAIL, no Unicode)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")


# -- reading ------------------------------------------------------------------------------
def decode_records(
    records: Sequence[dict[str, Any]], fields: Sequence[Field], *, html: bool
) -> pa.RecordBatch:
    """A typed batch of ``records`` (dicts of wire values; missing keys are null).

    ``html``: decode the entities of a v4_1 read.
    """
    arrays = [decode_column([r.get(f.name) for r in records], f, html=html) for f in fields]
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in fields])
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def decode_column(raw: list[Any], field: Field, *, html: bool) -> pa.Array:
    """One field's wire values as an Arrow array of ``field.arrow_type``."""
    ftype = field.type
    if ftype is FieldType.LIST:
        return pa.array([decode_list(v) for v in raw], field.arrow_type)
    given = _texts(raw)
    text = pc.if_else(pc.equal(given, ""), pa.scalar(None, pa.string()), given)
    if ftype.is_text:
        return _unescape(text) if html else text
    if ftype is FieldType.BOOLEAN:  # a value that is there but empty (NULL) is false
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(given))
        truth = pc.is_in(lowered, value_set=_TRUE_TEXTS)
        return pc.if_else(pc.is_null(given), pa.scalar(None, pa.bool_()), truth)
    if ftype is FieldType.DATE:
        day = pc.strptime(
            pc.utf8_slice_codeunits(text, 0, 10), format="%Y-%m-%d", unit="s", error_is_null=True
        )
        return _checked(text, day.cast(pa.date32()), field, _parse_date)
    if ftype is FieldType.DATETIME:
        return _decode_datetimes(text, field)
    return _decode_number(text, field)


def decode_list(value: Any) -> list[str] | None:
    """A multienum value (``^a^,^b^`` text or a JSON list) as a list of keys; empty: None."""
    if value is None:
        return None
    if isinstance(value, list):
        items = [str(v) for v in value if v not in (None, "")]
    else:
        text = str(value).strip()
        if text in ("", "^^"):
            return None
        items = [item.strip("^") for item in text.split("^,^")]
    return items or None


def encode_list(items: Sequence[str]) -> str:
    """Keys as Sugar stores a multienum: ``["a", "b"]`` -> ``^a^,^b^``."""
    return ",".join(f"^{item}^" for item in items)


def _texts(raw: list[Any]) -> pa.Array:
    try:
        return pa.array(raw, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else _to_text(v) for v in raw], pa.string())


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _unescape(text: pa.Array) -> pa.Array:
    if not pc.any(pc.match_substring(text, "&")).as_py():
        return text
    for entity, char in HTML_ENTITIES:
        text = pc.replace_substring(text, entity, char)
    return text


def _decode_number(text: pa.Array, field: Field) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(text)
    try:
        return trimmed.cast(field.arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = [_parse_number(v, field) for v in trimmed.to_pylist()]
        return pa.array(values, field.arrow_type)


def _parse_number(value: str | None, field: Field) -> Any:
    if value is None:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        log.warning("field %r: %r is not a number; read as null", field.name, value)
        return None
    if field.type is FieldType.INTEGER:
        return int(number) if number == number.to_integral_value() else None
    if field.type is FieldType.FLOAT:
        return float(number)
    scale = field.arrow_type.scale
    return number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)


def _decode_datetimes(text: pa.Array, field: Field) -> pa.Array:
    naive = pc.strptime(text, format=DB_DATETIME, unit="us", error_is_null=True)
    if pc.sum(pc.is_valid(naive)).as_py() == pc.sum(pc.is_valid(text)).as_py():
        return naive.cast(pa.timestamp("us", tz="UTC"))
    try:  # ISO 8601 with offsets (v10)
        return text.cast(pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        return _checked(text, pa.nulls(len(text), field.arrow_type), field, parse_datetime)


def _checked(text: pa.Array, parsed: pa.Array, field: Field, parse: Any) -> pa.Array:
    """``parsed``, re-parsed value by value in Python where the vectorized parse failed."""
    if pc.sum(pc.is_valid(parsed)).as_py() == pc.sum(pc.is_valid(text)).as_py():
        return parsed
    values = []
    for value in text.to_pylist():
        try:
            values.append(None if value is None else parse(value))
        except ValueError:
            log.warning(
                "field %r: cannot read %r as a %s; read as null",
                field.name,
                value,
                field.type.value,
            )
            values.append(None)
    return pa.array(values, field.arrow_type)


def _parse_date(value: str) -> dt.date:
    return dt.date.fromisoformat(value.strip()[:10])


def parse_datetime(value: str) -> dt.datetime:
    """An aware UTC datetime from Sugar text (naive text is UTC). ValueError if it is none."""
    moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


# -- writing ------------------------------------------------------------------------------
def encode(value: Any, field: Field, *, api: str) -> Any:
    """``value`` (a Python value of ``field``'s type) as the API expects it on write.

    v4_1 takes strings (null clears a field: ``""``); v10 takes JSON values. E-mail addresses
    are sent trimmed, lists (multienum) as ``^a^,^b^`` (v4_1) or a JSON list (v10).
    """
    if field.name in EMAIL_FIELDS and isinstance(value, str):
        value = value.strip()
    if isinstance(value, list | tuple):
        items = [str(v) for v in value if v is not None]
        return encode_list(items) if api == "v4_1" else items
    if api == "v4_1":
        return _encode_v4_1(value)
    return _encode_v10(value)


def _encode_v4_1(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        return as_utc(value).strftime(DB_DATETIME)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _encode_v10(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return as_utc(value).replace(microsecond=0).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def as_utc(moment: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


# -- the stored form ------------------------------------------------------------------------
#: tags Sugar's cleaner keeps on save; every other tag is removed (``<script>`` with its text)
KEPT_TAGS = frozenset(
    (
        *("a", "abbr", "b", "blockquote", "br", "code", "div", "em", "font", "hr", "i", "img"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "li", "ol", "p", "pre", "s", "small", "span"),
        *("strike", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "u"),
        "ul",
    )
)
_TAG = re.compile(r"</?\s*([A-Za-z][A-Za-z0-9]*)\b[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def stored_text(value: str) -> str:
    """What Sugar keeps of a text value it is sent: HTML entities decoded (``AT&amp;T`` is
    stored as ``AT&T``), tags it does not allow removed, allowed ones (``<b>``) kept."""
    if "<" not in value and "&" not in value:
        return value
    value = _SCRIPT.sub("", value)
    value = _TAG.sub(lambda m: m.group(0) if m.group(1).lower() in KEPT_TAGS else "", value)
    return html.unescape(value)


def stored_form(batch: pa.RecordBatch, schema: ObjectSchema) -> pa.RecordBatch:
    """``batch`` as Sugar stores it: text cleaned (:func:`stored_text`), empty text null,
    e-mail addresses trimmed (as :func:`encode` sends them), empty lists null, date-times to
    the second."""
    columns = []
    for name in batch.schema.names:
        column = batch.column(name)
        field = schema.field(name) if schema.has(name) else None
        if field is not None and field.type.is_text and pa.types.is_string(column.type):
            if name in EMAIL_FIELDS:
                column = pc.utf8_trim_whitespace(column)
            needs = pc.any(pc.match_substring_regex(column, "[<&]")).as_py()
            if needs:
                column = pa.array(
                    [None if v is None else stored_text(v) for v in column.to_pylist()],
                    pa.string(),
                )
            column = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
        elif pa.types.is_list(column.type):
            empty = pc.fill_null(pc.equal(pc.list_value_length(column), 0), False)
            column = pc.if_else(empty, pa.scalar(None, column.type), column)
        elif pa.types.is_timestamp(column.type):
            column = pc.floor_temporal(column, unit="second")
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def email_variants(text: str) -> list[str]:
    """The forms an address may have in ``email_address_caps``, so that a look-up finds it
    whichever way the server upper-cased it and however the key was written (key rules fold
    case with Unicode rules): PHP 8 upper-cases ASCII letters only, older setups every letter.
    """
    forms = (text, text.lower(), text.casefold())
    return list(dict.fromkeys(f(form) for form in forms for f in (ascii_upper, str.upper)))


# -- checking -----------------------------------------------------------------------------
def refusals(batch: pa.RecordBatch) -> pa.Array | None:
    """Per record, why SuiteCRM would not store it as it is (None when nothing is wrong with
    any): an e-mail address it refuses (:func:`email_problem`), which it would leave out while
    saving the record and reporting success."""
    names = [n for n in batch.schema.names if n in EMAIL_FIELDS]
    if not names:
        return None
    reasons: list[str | None] = [None] * batch.num_rows
    for name in names:
        column = batch.column(name)
        if not pa.types.is_string(column.type):
            continue
        for i, value in enumerate(column.to_pylist()):
            if value is not None and reasons[i] is None:
                reasons[i] = email_problem(name, value)
    return pa.array(reasons, pa.string())


def email_problem(name: str, value: str) -> str | None:
    """Why SuiteCRM would refuse the address ``value`` (trimmed first, as it is sent): it
    accepts ASCII addresses ``local@domain.tld`` only (PHP's ``FILTER_VALIDATE_EMAIL``), and
    saves the record without an address it refuses."""
    address = value.strip()
    if not address:
        return None
    if not address.isascii():
        return (
            f"{name} {address!r} has characters outside ASCII: the CRM does not store such an "
            "address (it would save the record without it)"
        )
    local = address.split("@", 1)[0]
    if len(address) > 254 or len(local) > 64 or not _EMAIL.fullmatch(address):
        return (
            f"{name} {address!r} is not an e-mail address the CRM accepts (it would save the "
            "record without it)"
        )
    return None


def ascii_upper(text: str) -> str:
    """Upper case for ASCII letters only, like PHP's ``strtoupper`` that fills
    ``email_address_caps`` (other characters are kept as they are)."""
    return text.translate(_ASCII_UPPER)


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
