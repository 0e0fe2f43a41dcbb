"""SQLite storage laid out like Sugar's MySQL tables, with the queries both APIs share.

One connection guarded by a re-entrant lock serves every thread. Text columns use ``NOCASE``
collation so ``=`` and ``ORDER BY`` compare case-insensitively, as MySQL's default collation
does. A few MySQL functions (``NOW``, ``CONCAT``, ``LCASE`` ...) are registered so ``query``
fragments written for MySQL run.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from crmbridge.sandbox.sugarcrm.values import email_caps, to_storage, utc_now, valid_email
from crmbridge.sandbox.sugarcrm.vardefs import MODULES, FieldDef, LinkDef, ModuleDef


def _column_type(fdef: FieldDef) -> str:
    if fdef.type in ("bool", "int"):
        return "INTEGER"
    if fdef.type == "currency":
        return "REAL"
    return "TEXT COLLATE NOCASE"


def _schema_sql(modules: Mapping[str, ModuleDef]) -> list[str]:
    statements: list[str] = []
    for mdef in modules.values():
        cols = [
            f"{f.name} {_column_type(f)}" + (" PRIMARY KEY" if f.name == "id" else "")
            for f in mdef.columns
        ]
        if mdef.name == "Users":
            cols += ["user_hash TEXT", "time_zone TEXT"]
        statements.append(f"CREATE TABLE IF NOT EXISTS {mdef.table} ({', '.join(cols)})")
        statements.append(
            f"CREATE INDEX IF NOT EXISTS idx_{mdef.table}_mod "
            f"ON {mdef.table} (deleted, date_modified, id)"
        )
        if mdef.custom_table:
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {mdef.custom_table} "
                "(id_c TEXT PRIMARY KEY COLLATE NOCASE)"
            )
    relationship_tables = {
        link.table: (link.left, link.right)
        for mdef in modules.values()
        for link in mdef.links
        if link.kind == "table"
    }
    for table, (left, right) in relationship_tables.items():
        extra = ", contact_role TEXT" if table == "opportunities_contacts" else ""
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, {left} TEXT COLLATE "
            f"NOCASE, {right} TEXT COLLATE NOCASE, date_modified TEXT, deleted INTEGER "
            f"DEFAULT 0{extra})"
        )
        statements.append(f"CREATE INDEX IF NOT EXISTS idx_{table}_l ON {table} ({left})")
        statements.append(f"CREATE INDEX IF NOT EXISTS idx_{table}_r ON {table} ({right})")
    statements += [
        "CREATE TABLE IF NOT EXISTS email_addresses (id TEXT PRIMARY KEY, email_address TEXT "
        "COLLATE NOCASE, email_address_caps TEXT, invalid_email INTEGER DEFAULT 0, opt_out "
        "INTEGER DEFAULT 0, date_created TEXT, date_modified TEXT, deleted INTEGER DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS idx_ea_caps ON email_addresses (email_address_caps)",
        "CREATE TABLE IF NOT EXISTS email_addr_bean_rel (id TEXT PRIMARY KEY, email_address_id "
        "TEXT, bean_id TEXT COLLATE NOCASE, bean_module TEXT, primary_address INTEGER DEFAULT "
        "0, reply_to_address INTEGER DEFAULT 0, date_created TEXT, date_modified TEXT, deleted "
        "INTEGER DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS idx_eabr_bean ON email_addr_bean_rel (bean_id, bean_module)",
        "CREATE INDEX IF NOT EXISTS idx_eabr_ea ON email_addr_bean_rel (email_address_id)",
        "CREATE TABLE IF NOT EXISTS sandbox_meta (key TEXT PRIMARY KEY, value TEXT)",
    ]
    return statements


def _email_expr(mdef: ModuleDef) -> str:
    return (
        "(SELECT ea.email_address FROM email_addr_bean_rel r JOIN email_addresses ea "
        "ON ea.id = r.email_address_id AND ea.deleted = 0 "
        f"WHERE r.bean_id = {mdef.table}.id AND r.bean_module = '{mdef.name}' AND r.deleted = 0 "
        "ORDER BY r.primary_address DESC, r.date_created, r.id LIMIT 1)"
    )


def _account_expr(rel: str, own: str, table: str, column: str) -> str:
    return (
        f"(SELECT a.{column} FROM {rel} x JOIN accounts a ON a.id = x.account_id "
        f"AND a.deleted = 0 WHERE x.{own} = {table}.id AND x.deleted = 0 "
        "ORDER BY x.date_modified DESC, x.id LIMIT 1)"
    )


def _full_name(table: str) -> str:
    return f"TRIM(COALESCE({table}.first_name, '') || ' ' || COALESCE({table}.last_name, ''))"


def field_expr(mdef: ModuleDef, fdef: FieldDef) -> str:
    """The SQL expression of a field over :func:`from_clause`."""
    t = mdef.table
    if fdef.source == "custom":
        return f"{mdef.custom_table}.{fdef.name}"
    if fdef.stored:
        return f"{t}.{fdef.name}"
    if fdef.source == "email":
        return _email_expr(mdef)
    if fdef.name == "full_name":
        return _full_name(t)
    if fdef.name == "assigned_user_name":
        return "jt0.user_name"
    if fdef.name == "contact_name":
        return f"(SELECT {_full_name('c')} FROM contacts c WHERE c.id = {t}.contact_id)"
    rel, own = {
        "Contacts": ("accounts_contacts", "contact_id"),
        "Opportunities": ("accounts_opportunities", "opportunity_id"),
    }[mdef.name]
    return _account_expr(rel, own, t, "id" if fdef.name == "account_id" else "name")


def from_clause(mdef: ModuleDef) -> str:
    """FROM of a list query: the table, its custom table and the assigned user as ``jt0``.

    Like Sugar's list query, the join makes bare common names (``id``, ``deleted``) ambiguous.
    """
    t = mdef.table
    sql = f"FROM {t}"
    if mdef.custom_table:
        sql += f" LEFT JOIN {mdef.custom_table} ON {t}.id = {mdef.custom_table}.id_c"
    if mdef.field("assigned_user_id"):
        sql += f" LEFT JOIN users jt0 ON jt0.id = {t}.assigned_user_id AND jt0.deleted = 0"
    return sql


def link_condition(link: LinkDef, owner: ModuleDef, related: ModuleDef) -> str:
    """A WHERE condition over ``related``'s list query selecting records linked to ``?``."""
    r = related.table
    if link.kind == "table":
        return (
            f"{r}.id IN (SELECT {link.right} FROM {link.table} "
            f"WHERE {link.left} = ? AND deleted = 0)"
        )
    if link.kind == "column":
        return f"{r}.{link.column} = ?"
    return f"{r}.id = (SELECT {link.column} FROM {owner.table} WHERE id = ?)"


def _concat(*args: Any) -> str | None:
    return None if any(a is None for a in args) else "".join(str(a) for a in args)


class Store:
    """The sandbox database. Every method takes the lock; ``transaction()`` groups writes.

    ``modules`` are the server's modules (default: a stock server's); columns they have and an
    existing database lacks (Studio fields, fields of a newer sandbox) are added to it.
    """

    def __init__(self, path: str, modules: Mapping[str, ModuleDef] = MODULES) -> None:
        self.modules = dict(modules)
        self.lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        for name, n, fn in (
            ("now", 0, utc_now),
            ("utc_timestamp", 0, utc_now),
            ("curdate", 0, lambda: utc_now()[:10]),
            ("concat", -1, _concat),
            ("lcase", 1, lambda s: None if s is None else str(s).lower()),
            ("ucase", 1, lambda s: None if s is None else str(s).upper()),
        ):
            self._db.create_function(name, n, fn, deterministic=name not in ("now", "curdate"))
        with self.lock:
            for statement in _schema_sql(self.modules):
                self._db.execute(statement)
            for mdef in self.modules.values():  # a database from an older sandbox
                self._add_columns(mdef.table, mdef.columns)
                if mdef.custom_table:
                    self._add_columns(mdef.custom_table, mdef.custom_columns)

    def _add_columns(self, table: str, fields: Sequence[FieldDef]) -> None:
        present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
        for fdef in fields:
            if fdef.name not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {fdef.name} {_column_type(fdef)}")

    def columns_of(self, table: str) -> set[str]:
        """The column names of a table."""
        with self.lock:
            return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

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

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.lock:
            self._db.executemany(sql, rows)

    def meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM sandbox_meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.query("INSERT OR REPLACE INTO sandbox_meta (key, value) VALUES (?, ?)", (key, value))

    # -- reads -------------------------------------------------------------------------------

    def _where(self, mdef: ModuleDef, where: str | None, include_deleted: bool) -> str:
        parts = [] if include_deleted else [f"{mdef.table}.deleted = 0"]
        if where and where.strip():
            parts.append(f"({where})")
        return f" WHERE {' AND '.join(parts)}" if parts else ""

    def select_ids(
        self,
        mdef: ModuleDef,
        where: str | None = None,
        params: Sequence[Any] = (),
        *,
        order: str = "",
        include_deleted: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[str]:
        """Ids of the matching records in list order (raises sqlite3.Error on bad SQL).

        Without ``order`` rows come by id, as MySQL returns them from the primary key: an
        order that has nothing to do with dates.
        """
        order_sql = order or f"{mdef.table}.id"
        sql = (
            f"SELECT {mdef.table}.id AS _sandbox_id {from_clause(mdef)}"
            f"{self._where(mdef, where, include_deleted)} ORDER BY {order_sql}"
            f" LIMIT {-1 if limit is None else int(limit)} OFFSET {max(0, int(offset))}"
        )
        return [row["_sandbox_id"] for row in self.query(sql, params)]

    def count(
        self,
        mdef: ModuleDef,
        where: str | None = None,
        params: Sequence[Any] = (),
        *,
        include_deleted: bool = False,
    ) -> int:
        sql = f"SELECT COUNT(*) AS n {from_clause(mdef)}{self._where(mdef, where, include_deleted)}"
        return int(self.query(sql, params)[0]["n"])

    def fetch(self, mdef: ModuleDef, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Every field of the records with these ids, in the order of ``ids`` (missing skipped)."""
        if not ids:
            return []
        exprs = ", ".join(f'{field_expr(mdef, f)} AS "{f.name}"' for f in mdef.fields)
        marks = ", ".join("?" for _ in ids)
        rows = self.query(
            f"SELECT {exprs} {from_clause(mdef)} WHERE {mdef.table}.id IN ({marks})", ids
        )
        by_id = {str(row["id"]).lower(): row for row in rows}
        return [by_id[i.lower()] for i in ids if i.lower() in by_id]

    def get(self, mdef: ModuleDef, record_id: str, *, include_deleted: bool = False) -> Any:
        """One record as a dict, or None when it does not exist (or is deleted)."""
        rows = self.fetch(mdef, [record_id])
        if not rows or (rows[0]["deleted"] and not include_deleted):
            return None
        return rows[0]

    def emails(self, mdef: ModuleDef, record_id: str) -> list[dict[str, Any]]:
        """The record's e-mail addresses, primary first."""
        return self.query(
            "SELECT ea.id, ea.email_address, ea.email_address_caps, ea.invalid_email, "
            "ea.opt_out, r.primary_address, r.reply_to_address FROM email_addr_bean_rel r "
            "JOIN email_addresses ea ON ea.id = r.email_address_id AND ea.deleted = 0 "
            "WHERE r.bean_id = ? AND r.bean_module = ? AND r.deleted = 0 "
            "ORDER BY r.primary_address DESC, r.date_created, r.id",
            (record_id, mdef.name),
        )

    # -- writes ------------------------------------------------------------------------------

    def save(
        self,
        mdef: ModuleDef,
        values: Mapping[str, Any],
        *,
        user_id: str,
        record_id: str | None = None,
        emails: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Create (``record_id`` None or not existing) or update a record; returns its id.

        ``values`` are client values by field name: unknown and read-only fields are ignored,
        text is cleaned and truncated. ``emails`` replaces the whole address list.
        """
        columns: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for name, value in values.items():
            fdef = mdef.field(name)
            if fdef is None or fdef.read_only or name == "id":
                continue
            if fdef.source in ("db", "v10"):
                columns[name] = to_storage(fdef, value)
            elif fdef.source == "custom":
                custom[name] = to_storage(fdef, value)
        now = utc_now()
        with self.transaction():
            exists = record_id is not None and bool(
                self.query(f"SELECT 1 FROM {mdef.table} WHERE id = ?", (record_id,))
            )
            columns["date_modified"] = now
            if mdef.field("modified_user_id"):
                columns["modified_user_id"] = user_id
            if exists:
                assert record_id is not None
                sets = ", ".join(f"{c} = ?" for c in columns)
                self.query(
                    f"UPDATE {mdef.table} SET {sets} WHERE id = ?", [*columns.values(), record_id]
                )
            else:
                record_id = record_id or str(uuid.uuid4())
                for fdef in mdef.columns:  # checkboxes default to unchecked
                    if fdef.type == "bool":
                        columns.setdefault(fdef.name, 0)
                columns.update(id=record_id, date_entered=now)
                if mdef.field("created_by"):
                    columns["created_by"] = user_id
                if mdef.field("assigned_user_id") and not columns.get("assigned_user_id"):
                    columns["assigned_user_id"] = user_id
                self._insert(mdef.table, columns)
            if custom and mdef.custom_table:
                self._upsert_custom(mdef, record_id, custom)
            if "email1" in values and mdef.field("email1"):
                self.set_primary_email(mdef, record_id, str(values["email1"] or ""))
            if emails is not None:
                self.replace_emails(mdef, record_id, emails)
            self._save_relates(mdef, record_id, values, user_id)
        return record_id

    def _insert(self, table: str, columns: Mapping[str, Any]) -> None:
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        self.query(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(columns.values()))

    def _upsert_custom(self, mdef: ModuleDef, record_id: str, custom: Mapping[str, Any]) -> None:
        names = ", ".join(custom)
        marks = ", ".join("?" for _ in custom)
        sets = ", ".join(f"{c} = excluded.{c}" for c in custom)
        self.query(
            f"INSERT INTO {mdef.custom_table} (id_c, {names}) VALUES (?, {marks}) "
            f"ON CONFLICT(id_c) DO UPDATE SET {sets}",
            [record_id, *custom.values()],
        )

    def _save_relates(
        self, mdef: ModuleDef, record_id: str, values: Mapping[str, Any], user_id: str
    ) -> None:
        """``account_id`` / ``account_name`` on Contacts and Opportunities link an Account.

        An ``account_name`` that matches no live Account creates one, as Sugar's save does.
        """
        if mdef.name not in ("Contacts", "Opportunities"):
            return
        link = mdef.link("accounts")
        assert link is not None
        account_id = str(values.get("account_id") or "")
        name = str(values.get("account_name") or "").strip()
        if not account_id and name:
            accounts = self.modules["Accounts"]
            found = self.query(
                "SELECT id FROM accounts WHERE name = ? AND deleted = 0 ORDER BY rowid LIMIT 1",
                (to_storage(accounts.fields[1], name),),
            )
            if found:
                account_id = found[0]["id"]
            else:
                account_id = self.save(accounts, {"name": name}, user_id=user_id)
        if account_id:
            current = self.related_ids(mdef, record_id, link)
            if current != [account_id]:
                for other in current:
                    self.remove_link(mdef, record_id, link, other)
                self.add_link(mdef, record_id, link, account_id)

    def set_primary_email(self, mdef: ModuleDef, record_id: str, address: str) -> None:
        """Make ``address`` the record's primary e-mail (empty removes the primary one).

        An address SuiteCRM refuses (:func:`valid_email`) is left out silently, as the real
        server does: the record keeps the addresses it had."""
        if address and not valid_email(address):
            return
        current = self.emails(mdef, record_id)
        others = [
            dict(e, primary_address=0)
            for e in current
            if not e["primary_address"] and e["email_address"].upper() != address.upper()
        ]
        if address:
            old = next((e for e in current if e["email_address"].upper() == address.upper()), {})
            others.insert(0, dict(old, email_address=address, primary_address=1))
        self.replace_emails(mdef, record_id, others)

    def replace_emails(
        self, mdef: ModuleDef, record_id: str, emails: Sequence[Mapping[str, Any]]
    ) -> None:
        """The record's addresses become exactly ``emails`` (dicts with ``email_address``)."""
        now = utc_now()
        self.query(
            "UPDATE email_addr_bean_rel SET deleted = 1, date_modified = ? "
            "WHERE bean_id = ? AND bean_module = ? AND deleted = 0",
            (now, record_id, mdef.name),
        )
        emails = [e for e in emails if valid_email(str(e.get("email_address") or ""))]
        has_primary = any(e.get("primary_address") for e in emails)
        for n, email in enumerate(emails):
            address = str(email.get("email_address"))
            address_id = self._email_address_id(address, email, now)
            primary = bool(email.get("primary_address")) or (not has_primary and n == 0)
            self._insert(
                "email_addr_bean_rel",
                {
                    "id": str(uuid.uuid4()),
                    "email_address_id": address_id,
                    "bean_id": record_id,
                    "bean_module": mdef.name,
                    "primary_address": int(primary),
                    "reply_to_address": int(bool(email.get("reply_to_address"))),
                    "date_created": now,
                    "date_modified": now,
                    "deleted": 0,
                },
            )

    def _email_address_id(self, address: str, email: Mapping[str, Any], now: str) -> str:
        found = self.query(
            "SELECT id FROM email_addresses WHERE email_address_caps = ? AND deleted = 0",
            (email_caps(address),),
        )
        flags = {k: int(bool(email[k])) for k in ("opt_out", "invalid_email") if k in email}
        if found:
            address_id: str = found[0]["id"]
            if flags:
                sets = ", ".join(f"{k} = ?" for k in flags)
                self.query(
                    f"UPDATE email_addresses SET {sets}, date_modified = ? WHERE id = ?",
                    [*flags.values(), now, address_id],
                )
            return address_id
        address_id = str(uuid.uuid4())
        self._insert(
            "email_addresses",
            {
                "id": address_id,
                "email_address": address,
                "email_address_caps": email_caps(address),
                "invalid_email": flags.get("invalid_email", 0),
                "opt_out": flags.get("opt_out", 0),
                "date_created": now,
                "date_modified": now,
                "deleted": 0,
            },
        )
        return address_id

    # -- links -------------------------------------------------------------------------------

    def related_ids(self, mdef: ModuleDef, record_id: str, link: LinkDef) -> list[str]:
        """Ids of the live records linked to ``record_id`` through ``link``."""
        related = self.modules[link.module]
        where = link_condition(link, mdef, related)
        return self.select_ids(related, where, [record_id])

    def add_link(self, mdef: ModuleDef, record_id: str, link: LinkDef, related_id: str) -> None:
        """Link two records. Neither record's ``date_modified`` changes."""
        with self.transaction():
            if link.kind == "table":
                exists = self.query(
                    f"SELECT 1 FROM {link.table} WHERE {link.left} = ? AND {link.right} = ? "
                    "AND deleted = 0",
                    (record_id, related_id),
                )
                if not exists:
                    self._insert(
                        str(link.table),
                        {
                            "id": str(uuid.uuid4()),
                            str(link.left): record_id,
                            str(link.right): related_id,
                            "date_modified": utc_now(),
                            "deleted": 0,
                        },
                    )
            elif link.kind == "column":
                table = self.modules[link.module].table
                self.query(
                    f"UPDATE {table} SET {link.column} = ? WHERE id = ?", (record_id, related_id)
                )
            elif link.kind == "own_column":
                self.query(
                    f"UPDATE {mdef.table} SET {link.column} = ? WHERE id = ?",
                    (related_id, record_id),
                )

    def remove_link(self, mdef: ModuleDef, record_id: str, link: LinkDef, related_id: str) -> None:
        """Unlink two records (relationship rows are soft-deleted)."""
        if link.kind == "table":
            self.query(
                f"UPDATE {link.table} SET deleted = 1, date_modified = ? "
                f"WHERE {link.left} = ? AND {link.right} = ? AND deleted = 0",
                (utc_now(), record_id, related_id),
            )
        elif link.kind == "column":
            table = self.modules[link.module].table
            self.query(
                f"UPDATE {table} SET {link.column} = NULL WHERE id = ? AND {link.column} = ?",
                (related_id, record_id),
            )
        elif link.kind == "own_column":
            self.query(
                f"UPDATE {mdef.table} SET {link.column} = NULL WHERE id = ? AND {link.column} = ?",
                (record_id, related_id),
            )
