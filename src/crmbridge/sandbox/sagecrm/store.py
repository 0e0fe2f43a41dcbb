"""SQLite storage laid out like Sage CRM's SQL Server tables, and the writes both APIs share.

One connection guarded by a re-entrant lock serves every thread. Text columns use ``NOCASE``
collation, as SQL Server's default collation compares case-insensitively. The server sets the
system columns itself (created / updated by and date, ``xxx_timestamp``), whatever a client
sends; soft delete sets ``xxx_deleted = 1`` and moves the updated date.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

from crmbridge.sandbox.sagecrm.entities import (
    ADDRESS,
    ADDRESS_LINK,
    DATETIME,
    EMAIL,
    EMAIL_LINK,
    ENTITIES,
    INT,
    NUMERIC,
    PHONE,
    PHONE_LINK,
    TERRITORIES,
    USERS,
    WORLDWIDE,
    Entity,
)
from crmbridge.sandbox.sagecrm.problems import ApiError
from crmbridge.sandbox.sagecrm.values import now_db, to_db

#: children of a company or person: kind -> (child entity, the link's type column)
CHILD_KINDS = {"address": "adli_type", "phone": "plink_type", "email": "elink_type"}


def _column_sql(entity: Entity, name: str, ctype: str) -> str:
    if name == entity.id_column:
        return f"{name} INTEGER PRIMARY KEY AUTOINCREMENT"
    if ctype == INT:
        return f"{name} INTEGER"
    if ctype == NUMERIC:
        return f"{name} REAL"
    if ctype == DATETIME:
        return f"{name} TEXT"
    return f"{name} TEXT COLLATE NOCASE"


def _schema_sql() -> list[str]:
    statements = []
    for entity in ENTITIES.values():
        cols = [_column_sql(entity, c.name, c.type) for c in entity.columns]
        if entity is USERS:
            cols.append("user_password TEXT")
        statements.append(f"CREATE TABLE IF NOT EXISTS {entity.table} ({', '.join(cols)})")
        statements.append(
            f"CREATE INDEX IF NOT EXISTS ix_{entity.prefix}_upd ON {entity.table} "
            f"({entity.prefix}_updateddate, {entity.id_column})"
        )
    statements += [
        "CREATE INDEX IF NOT EXISTS ix_adli ON Address_Link (adli_companyid, adli_personid)",
        "CREATE INDEX IF NOT EXISTS ix_plink ON PhoneLink (plink_entityid, plink_recordid)",
        "CREATE INDEX IF NOT EXISTS ix_elink ON EmailLink (elink_entityid, elink_recordid)",
        "CREATE TABLE IF NOT EXISTS Territories (terr_territoryid INTEGER PRIMARY KEY, "
        "terr_caption TEXT)",
        "CREATE TABLE IF NOT EXISTS sandbox_meta (key TEXT PRIMARY KEY, value TEXT)",
    ]
    return statements


class Store:
    """The sandbox database. Every method takes the lock; ``transaction()`` groups writes."""

    def __init__(self, path: str, server_zone: ZoneInfo) -> None:
        self.lock = threading.RLock()
        self.zone = server_zone
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.create_function("getdate", 0, lambda: now_db(self.zone))
        self._db.create_function("len", 1, lambda s: None if s is None else len(str(s)))
        with self.lock:
            for statement in _schema_sql():
                self._db.execute(statement)
            self._db.executemany(
                "INSERT OR IGNORE INTO Territories VALUES (?, ?)", list(TERRITORIES.items())
            )

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
        """Run one statement; rows as dicts (empty for statements without a result)."""
        with self.lock:
            cursor = self._db.execute(sql, tuple(params))
            rows = [dict(row) for row in cursor.fetchall()] if cursor.description else []
            cursor.close()
            return rows

    def insert_row(self, table: str, values: Mapping[str, Any]) -> int:
        """Insert one row as given (no checks); its new id."""
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.lock:
            cursor = self._db.execute(
                f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values())
            )
            return int(cursor.lastrowid or 0)

    def meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM sandbox_meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.query("INSERT OR REPLACE INTO sandbox_meta (key, value) VALUES (?, ?)", (key, value))

    # -- reads -------------------------------------------------------------------------------
    def select_ids(
        self,
        entity: Entity,
        where: str | None = None,
        params: Sequence[Any] = (),
        *,
        include_deleted: bool = False,
        order: str | None = None,
    ) -> list[int]:
        """Ids of the matching records, in ``order`` (default: by id, the primary key).
        Raises sqlite3.Error on SQL the database refuses."""
        parts = [] if include_deleted else [f"{entity.prefix}_deleted IS NULL"]
        if where and where.strip():
            parts.append(f"({where})")
        sql = f"SELECT {entity.id_column} AS id FROM {entity.table}"
        if parts:
            sql += " WHERE " + " AND ".join(parts)
        sql += f" ORDER BY {order or entity.id_column}"
        return [int(row["id"]) for row in self.query(sql, params)]

    def fetch(self, entity: Entity, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The rows with these ids, in the order of ``ids`` (missing ones skipped)."""
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            for row in self.query(
                f"SELECT * FROM {entity.table} WHERE {entity.id_column} IN ({marks})", chunk
            ):
                found[int(row[entity.id_column])] = row
        return [found[i] for i in ids if i in found]

    def get(self, entity: Entity, record_id: int, *, deleted: bool = False) -> Any:
        """One row, or None when it does not exist (or is deleted, unless ``deleted``)."""
        rows = self.fetch(entity, [record_id])
        if not rows or (rows[0][f"{entity.prefix}_deleted"] and not deleted):
            return None
        return rows[0]

    def children(self, entity: Entity, record_id: int) -> dict[str, list[dict[str, Any]]]:
        """The live addresses, phones and e-mails of a company or person, with their link
        type under ``type``; a company's people under ``person``."""
        out: dict[str, list[dict[str, Any]]] = {}
        if "address" in entity.children:
            owner = "adli_companyid" if entity.name == "company" else "adli_personid"
            other = "adli_personid" if entity.name == "company" else "adli_companyid"
            out["address"] = self.query(
                "SELECT a.*, l.adli_type AS type FROM Address_Link l JOIN Address a "
                "ON a.addr_addressid = l.adli_addressid AND a.addr_deleted IS NULL "
                f"WHERE l.{owner} = ? AND l.{other} IS NULL AND l.adli_deleted IS NULL "
                "ORDER BY l.adli_addresslinkid",
                (record_id,),
            )
        if "phone" in entity.children:
            out["phone"] = self.query(
                "SELECT p.*, l.plink_type AS type FROM PhoneLink l JOIN Phone p "
                "ON p.phon_phoneid = l.plink_phoneid AND p.phon_deleted IS NULL "
                "WHERE l.plink_entityid = ? AND l.plink_recordid = ? AND l.plink_deleted IS NULL "
                "ORDER BY l.plink_linkid",
                (entity.number, record_id),
            )
        if "email" in entity.children:
            out["email"] = self.query(
                "SELECT e.*, l.elink_type AS type FROM EmailLink l JOIN Email e "
                "ON e.emai_emailid = l.elink_emailid AND e.emai_deleted IS NULL "
                "WHERE l.elink_entityid = ? AND l.elink_recordid = ? AND l.elink_deleted IS NULL "
                "ORDER BY l.elink_linkid",
                (entity.number, record_id),
            )
        if "person" in entity.children:
            out["person"] = self.query(
                "SELECT * FROM Person WHERE pers_companyid = ? AND pers_deleted IS NULL "
                "ORDER BY pers_personid",
                (record_id,),
            )
        return out

    def user(self, user_id: int) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM Users WHERE user_userid = ?", (user_id,))
        return rows[0] if rows else None

    # -- writes ------------------------------------------------------------------------------
    def _system(self, entity: Entity, user_id: int, *, created: bool) -> dict[str, Any]:
        now = now_db(self.zone)
        p = entity.prefix
        values: dict[str, Any] = {
            f"{p}_updatedby": user_id,
            f"{p}_updateddate": now,
            f"{p}_timestamp": now,
        }
        if created:
            values.update({f"{p}_createdby": user_id, f"{p}_createddate": now})
        return values

    def clean(
        self, entity: Entity, values: Mapping[str, Any], wire: ZoneInfo, *, creating: bool
    ) -> dict[str, Any]:
        """Client values by column name, checked and converted; system columns dropped.
        Raises ApiError for an unknown column or a value the column refuses."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            column = entity.column(name)
            if column is None:
                raise ApiError(f"Field '{name}' does not exist on entity '{entity.name}'")
            if column.system:
                continue
            out[column.name] = to_db(column, value, server=self.zone, wire=wire)
        secterr = f"{entity.prefix}_secterr"
        if out.get(secterr) is not None and out[secterr] not in TERRITORIES:
            raise ApiError(f"Invalid territory {out[secterr]} for field {secterr}")
        if creating:
            missing = [
                c.name
                for c in entity.columns
                if c.required and not c.system and out.get(c.name) in (None, "")
            ]
            if missing:
                raise ApiError(f"Required field {missing[0]} has no value")
        else:
            empty = [
                c.name for c in entity.columns if c.required and c.name in out and not out[c.name]
            ]
            if empty:
                raise ApiError(f"Required field {empty[0]} has no value")
        return out

    def create(self, entity: Entity, values: Mapping[str, Any], user_id: int) -> int:
        """Insert a record from cleaned values; the territory defaults to the user's."""
        row = dict(values)
        if (
            entity.column(f"{entity.prefix}_secterr")
            and row.get(f"{entity.prefix}_secterr") is None
        ):
            user = self.user(user_id) or {}
            row[f"{entity.prefix}_secterr"] = user.get("user_primaryterritory") or WORLDWIDE
        row.update(self._system(entity, user_id, created=True))
        return self.insert_row(entity.table, row)

    def update(
        self, entity: Entity, record_id: int, values: Mapping[str, Any], user_id: int
    ) -> None:
        """Change a live record (cleaned values). Raises ApiError when there is none."""
        if self.get(entity, record_id) is None:
            raise ApiError(f"Record {record_id} of entity '{entity.name}' does not exist", 404)
        row = {**values, **self._system(entity, user_id, created=False)}
        sets = ", ".join(f"{c} = ?" for c in row)
        self.query(
            f"UPDATE {entity.table} SET {sets} WHERE {entity.id_column} = ?",
            [*row.values(), record_id],
        )

    def soft_delete(self, entity: Entity, record_id: int, user_id: int) -> None:
        """``xxx_deleted = 1`` on a live record. Raises ApiError when there is none."""
        if self.get(entity, record_id) is None:
            raise ApiError(f"Record {record_id} of entity '{entity.name}' does not exist", 404)
        row = {f"{entity.prefix}_deleted": 1, **self._system(entity, user_id, created=False)}
        sets = ", ".join(f"{c} = ?" for c in row)
        self.query(
            f"UPDATE {entity.table} SET {sets} WHERE {entity.id_column} = ?",
            [*row.values(), record_id],
        )

    def set_child(
        self,
        owner: Entity,
        record_id: int,
        kind: str,
        values: Mapping[str, Any],
        wire: ZoneInfo,
        user_id: int,
    ) -> None:
        """Create or change the ``kind`` child (address, phone, email) of a company or person
        with ``values[type]`` (Business when not given): the child of that type is updated in
        place, or created and linked. The owner's updated date moves too."""
        child = {"address": ADDRESS, "phone": PHONE, "email": EMAIL}[kind]
        link = {"address": ADDRESS_LINK, "phone": PHONE_LINK, "email": EMAIL_LINK}[kind]
        kind_type = str(values.get("type") or "Business")
        link_values = self.clean(link, {CHILD_KINDS[kind]: kind_type}, wire, creating=False)
        kind_type = link_values[CHILD_KINDS[kind]]
        fields = {
            (k if k.startswith(child.prefix + "_") else f"{child.prefix}_{k}"): v
            for k, v in values.items()
            if k != "type"
        }
        current = [
            c
            for c in self.children(owner, record_id).get(kind, [])
            if str(c["type"]).lower() == kind_type.lower()
        ]
        if current:
            child_id = int(current[0][child.id_column])
            self.update(child, child_id, self.clean(child, fields, wire, creating=False), user_id)
        else:
            child_id = self.create(child, self.clean(child, fields, wire, creating=True), user_id)
            if kind == "address":
                own = "adli_companyid" if owner.name == "company" else "adli_personid"
                row = {"adli_addressid": child_id, own: record_id}
            else:
                row = {
                    f"{link.prefix}_entityid": owner.number,
                    f"{link.prefix}_recordid": record_id,
                    f"{link.prefix}_{kind}id": child_id,
                }
            self.create(link, {**row, CHILD_KINDS[kind]: kind_type}, user_id)
            primary = f"{owner.prefix}_primaryaddressid"
            if kind == "address" and owner.column(primary):
                stored = self.get(owner, record_id) or {}
                if stored.get(primary) is None:
                    self.query(
                        f"UPDATE {owner.table} SET {primary} = ? WHERE {owner.id_column} = ?",
                        (child_id, record_id),
                    )
        self.query(
            f"UPDATE {owner.table} SET {owner.prefix}_updateddate = ?, "
            f"{owner.prefix}_timestamp = ? WHERE {owner.id_column} = ?",
            (now_db(self.zone), now_db(self.zone), record_id),
        )
