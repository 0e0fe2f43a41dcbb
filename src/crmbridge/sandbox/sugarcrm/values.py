"""Value conversions: how Sugar cleans what it stores and encodes what it answers.

* On write, HTML entities are decoded and unknown tags are stripped, known ones kept
  (``AT&amp;T`` -> ``AT&T``, ``<Test>x`` -> ``x``, ``<b>x</b>`` kept); over-long text is truncated
  to the field length, as MySQL does outside strict mode: ``varchar(n)`` to n characters,
  ``TEXT`` (``text`` fields, ``multienum`` values) to 65,535 bytes.
* E-mail addresses are validated as SuiteCRM 7.14 does (:func:`valid_email`): one it refuses
  (any non-ASCII character, surrounding spaces) is left out while the record is saved, and the
  save reports success. ``email_address_caps`` is the address upper-cased by PHP 8's
  ``strtoupper``: ASCII letters only.
* ``multienum`` values are stored as ``^a^,^b^``.
* On a v4_1 read, ``< > " '`` come back as entities while ``&`` stays raw.
* ``set_entry`` echoes the values it was sent through PHP's ``htmlentities`` (``&amp;amp;``).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from html.entities import codepoint2name
from typing import Any
from zoneinfo import ZoneInfo

from crmbridge.sandbox.sugarcrm.vardefs import TEXT_TYPES, FieldDef

DB_DATETIME = "%Y-%m-%d %H:%M:%S"

#: Tags the cleaner keeps (a small HTMLPurifier-like allow list); everything else is stripped.
_KEPT_TAGS = frozenset(
    (
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "div",
        "em",
        "font",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    )
)
_TAG = re.compile(r"</?\s*([A-Za-z][A-Za-z0-9]*)\b[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
#: what MySQL's TEXT column holds, in bytes
TEXT_BYTES = 65_535
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_READ_ENTITIES = {"<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#039;"}
_READ_TABLE = str.maketrans(_READ_ENTITIES)


def valid_email(address: str) -> bool:
    """Whether SuiteCRM 7.14 stores this address (PHP's ``FILTER_VALIDATE_EMAIL`` without
    Unicode): ASCII only, no surrounding spaces, ``local@domain.tld``, at most 254 characters
    with a local part of at most 64. ``o'brien@example.com`` and ``a+b@example.co.uk`` pass."""
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        return False
    return len(address.split("@", 1)[0]) <= 64


def email_caps(address: str) -> str:
    """``email_address_caps``: PHP 8 ``strtoupper``, which upper-cases ASCII letters only."""
    return address.translate(_ASCII_UPPER)


def encode_multienum(value: Any) -> str:
    """A multienum value as Sugar stores it: ``["a", "b"]`` (or ``"^a^,^b^"``) -> ``^a^,^b^``."""
    if isinstance(value, list):
        items = [str(v) for v in value if v not in (None, "")]
        return ",".join(f"^{v}^" for v in items)
    return str(value)


def decode_multienum(stored: str | None) -> list[str]:
    """``^a^,^b^`` -> ``["a", "b"]`` (empty or NULL: ``[]``)."""
    text = (stored or "").strip()
    if not text or text == "^^":
        return []
    return [item.strip("^") for item in text.split("^,^")]


def cut_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (at a character boundary), as MySQL
    stores an over-long value in a TEXT column outside strict mode."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def utc_now() -> str:
    """The current UTC time as Sugar stores it (``YYYY-MM-DD HH:MM:SS``)."""
    return datetime.now(UTC).strftime(DB_DATETIME)


def clean_text(value: str) -> str:
    """What Sugar stores for a text value sent by a client."""
    value = _SCRIPT.sub("", value)
    value = _TAG.sub(lambda m: m.group(0) if m.group(1).lower() in _KEPT_TAGS else "", value)
    return html.unescape(value)


def read_encode(value: str) -> str:
    """A stored text value as a v4_1 read returns it: ``< > " '`` encoded, ``&`` raw."""
    return value.translate(_READ_TABLE)


def htmlentities(value: str) -> str:
    """PHP ``htmlentities($value, ENT_QUOTES)``: what ``set_entry`` echoes back."""
    out: list[str] = []
    for ch in value:
        if ch == "'":
            out.append("&#039;")
        elif ord(ch) in codepoint2name:
            out.append(f"&{codepoint2name[ord(ch)]};")
        else:
            out.append(ch)
    return "".join(out)


def truthy(value: Any) -> bool:
    """PHP-ish truthiness of a request value (``"0"``, ``""``, ``"false"`` and 0 are false)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "off", "no")
    return bool(value)


def php_truthy(value: Any) -> bool:
    """PHP's ``if ($value)``: only ``""``, ``"0"``, 0, empty arrays, false and null are false."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def format_number(value: float | int) -> str:
    """A number as PHP prints a float (``75000``, ``1234.5``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def to_storage(fdef: FieldDef, value: Any) -> Any:
    """A client value converted to what the column stores (cleaned, typed, truncated).

    Values that cannot be converted are stored as given for text, or NULL for numbers, as
    MySQL outside strict mode would store a zero or NULL rather than refuse.
    """
    if value is None:
        return None
    if fdef.type == "bool":
        return 1 if truthy(value) else 0
    if fdef.type in ("int", "currency"):
        text = str(value).strip()
        if text == "":
            return None
        try:
            number = float(text)
        except ValueError:
            return 0
        return int(number) if fdef.type == "int" else number
    if isinstance(value, bool):
        value = "1" if value else "0"
    if fdef.type == "multienum":
        value = encode_multienum(value)
    text = clean_text(str(value))
    if fdef.type in ("date", "datetime") and text == "":
        return None
    if fdef.len and (fdef.type in TEXT_TYPES or fdef.type in ("user_name", "fullname")):
        text = text[: fdef.len]
    if fdef.type in ("text", "multienum"):
        text = cut_bytes(text, TEXT_BYTES)
    return text


def v4_value(fdef: FieldDef, value: Any) -> str:
    """A stored value as v4_1 returns it: always a string, nulls as ``""``."""
    if value is None:
        return ""
    if fdef.type == "bool":
        return "1" if value else "0"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return format_number(value)
    return read_encode(str(value))


def iso_in_zone(db_value: str, zone: ZoneInfo) -> str:
    """A stored UTC datetime as v10 returns it: ISO 8601 with the user's offset."""
    moment = datetime.strptime(db_value, DB_DATETIME).replace(tzinfo=UTC)
    return moment.astimezone(zone).isoformat(timespec="seconds")


def parse_client_datetime(value: str, zone: ZoneInfo) -> str:
    """An ISO 8601 datetime from a v10 client as a stored UTC string (naive means the user's zone).

    Raises ValueError when the text is not a datetime.
    """
    text = value.strip().replace("Z", "+00:00").replace(" ", "T", 1)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC).strftime(DB_DATETIME)


def parse_date(value: str) -> str:
    """A ``YYYY-MM-DD`` date (ValueError otherwise)."""
    return date.fromisoformat(value.strip()[:10]).isoformat()


def print_r(value: Any, indent: int = 0) -> str:
    """PHP ``print_r`` of a decoded JSON value: what rest.php prints without ``response_type``."""
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        pad = " " * indent
        lines = [f"Array\n{pad}(\n"]
        for key, item in items:
            lines.append(f"{pad}    [{key}] => {print_r(item, indent + 8)}\n")
        lines.append(f"{pad})\n")
        return "".join(lines)
    if value is True:
        return "1"
    if value is None or value is False:
        return ""
    if isinstance(value, float):
        return format_number(value)
    return str(value)
