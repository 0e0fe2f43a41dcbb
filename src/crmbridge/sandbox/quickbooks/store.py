"""SQLite storage: one row per object with its JSON document, plus tokens and request ids.

``objects`` holds every object of every entity (``doc`` is the JSON the API answers);
deleted transactions stay as tombstones (``deleted = 1``) so change data capture can report
them. ``requests`` keeps the answer given to each ``requestid``, ``tokens`` the OAuth tokens.
One connection guarded by a re-entrant lock serves every thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from crmbridge.sandbox.quickbooks.clock import utc_text

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS objects (entity TEXT NOT NULL, id INTEGER NOT NULL, "
    "sync_token INTEGER NOT NULL DEFAULT 0, active INTEGER NOT NULL DEFAULT 1, "
    "deleted INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL, doc TEXT NOT NULL, "
    "PRIMARY KEY (entity, id))",
    "CREATE INDEX IF NOT EXISTS idx_objects_updated ON objects (entity, updated, id)",
    "CREATE TABLE IF NOT EXISTS requests (request_id TEXT PRIMARY KEY, status INTEGER, "
    "body TEXT, created TEXT)",
    "CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, kind TEXT NOT NULL, "
    "expires TEXT NOT NULL, epoch INTEGER NOT NULL DEFAULT 0, used INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
)


def _instant(value: Any) -> str | None:
    return utc_text(value) if isinstance(value, str) else None


class Store:
    """The sandbox database. ``transaction()`` groups writes."""

    def __init__(self, path: str) -> None:
        self.lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.create_function("qb_instant", 1, _instant, deterministic=True)
        with self.lock:
            for statement in _SCHEMA:
                self._db.execute(statement)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.lock:
            cursor = self._db.execute(sql, tuple(params))
            rows = [dict(row) for row in cursor.fetchall()] if cursor.description else []
            cursor.close()
            return rows

    def meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- objects ------------------------------------------------------------------------
    def get(self, entity: str, record_id: int) -> dict[str, Any] | None:
        """The stored row (with ``doc`` decoded), tombstones included; None when unknown."""
        rows = self.query("SELECT * FROM objects WHERE entity = ? AND id = ?", (entity, record_id))
        if not rows:
            return None
        row = rows[0]
        row["doc"] = json.loads(row["doc"])
        return row

    def next_id(self, entity: str) -> int:
        rows = self.query("SELECT MAX(id) AS top FROM objects WHERE entity = ?", (entity,))
        top = rows[0]["top"]
        return int(top) + 1 if top is not None else 1

    def put(self, entity: str, doc: dict[str, Any], *, deleted: bool = False) -> None:
        """Insert or replace the object ``doc`` (its ``Id``, ``SyncToken`` and ``MetaData``)."""
        updated = utc_text(doc["MetaData"]["LastUpdatedTime"]) if "MetaData" in doc else None
        self.query(
            "INSERT OR REPLACE INTO objects (entity, id, sync_token, active, deleted, updated, "
            "doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entity,
                int(doc["Id"]),
                int(doc.get("SyncToken") or 0),
                0 if doc.get("Active") is False else 1,
                1 if deleted else 0,
                updated,
                json.dumps(doc, ensure_ascii=False),
            ),
        )

    def tombstone(self, entity: str, record_id: int, updated: str, doc: dict[str, Any]) -> None:
        self.query(
            "UPDATE objects SET deleted = 1, updated = ?, doc = ? WHERE entity = ? AND id = ?",
            (updated, json.dumps(doc), entity, record_id),
        )

    def docs(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The decoded ``doc`` of each row a ``SELECT doc ...`` statement returns."""
        return [json.loads(row["doc"]) for row in self.query(sql, params)]

    # -- request ids --------------------------------------------------------------------
    def answered(self, request_id: str) -> tuple[int, str] | None:
        rows = self.query("SELECT status, body FROM requests WHERE request_id = ?", (request_id,))
        return (int(rows[0]["status"]), str(rows[0]["body"])) if rows else None

    def remember(self, request_id: str, status: int, body: str, created: str) -> None:
        self.query(
            "INSERT OR IGNORE INTO requests (request_id, status, body, created) "
            "VALUES (?, ?, ?, ?)",
            (request_id, status, body, created),
        )
