"""Where each side's change capture stands between syncs, and the records to look at again:
the one place a sync (and ``apply`` of a sync plan) loads and stores them.

Per side, the cursor is the highest modified value a read saw; the next sync reads from it
minus the side's ``overlap_seconds`` (keyset order by the connector), so a record committed
late within the window is read again, and what it wrote compares equal to the base.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.state import StateStore
from crmbridge.sync.plan import SIDES, decode, encode

CURSOR_KEY = "cursor"
#: state value: side -> ids of records whose writes were refused or that were held
RETRY_KEY = "retry"


def saved_cursor(state: StateStore | None, key: str, side: str) -> Any:
    """The cursor the last sync of ``key`` kept for ``side`` (None: none)."""
    saved = state.get_value(key, f"{CURSOR_KEY}:{side}") if state is not None else None
    return decode_value(saved) if saved is not None else None


def since(cursor: Any, overlap_seconds: float) -> Any:
    """Where the next read starts: the cursor less the overlap."""
    if isinstance(cursor, dt.datetime):
        return cursor - dt.timedelta(seconds=overlap_seconds)
    return cursor


def highest(top: Any, column: pa.Array | pa.ChunkedArray) -> Any:
    """``top`` moved up to the highest value of ``column``."""
    value = pc.max(column).as_py()
    if value is None:
        return top
    return value if top is None or value > top else top


def save_cursors(state: StateStore, key: str, cursors: Mapping[str, Any]) -> None:
    for name, value in cursors.items():
        if value is not None:
            state.set_value(key, f"{CURSOR_KEY}:{name}", encode_value(value))


def saved_retry(state: StateStore | None, key: str) -> dict[str, list[str]]:
    saved = state.get_value(key, RETRY_KEY) if state is not None else None
    return {side: list((saved or {}).get(side) or []) for side in SIDES}


def save_retry(state: StateStore, key: str, ids: Mapping[str, Iterable[str]]) -> None:
    state.set_value(key, RETRY_KEY, {side: sorted(set(ids.get(side, ()))) for side in SIDES})


def encode_value(value: Any) -> Any:
    try:
        return encode(value)
    except TypeError:
        return value


def decode_value(value: Any) -> Any:
    return decode(value) if isinstance(value, dict) else value


__all__ = [
    "CURSOR_KEY",
    "RETRY_KEY",
    "decode_value",
    "encode_value",
    "highest",
    "save_cursors",
    "save_retry",
    "saved_cursor",
    "saved_retry",
    "since",
]
