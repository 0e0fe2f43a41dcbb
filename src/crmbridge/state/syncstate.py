"""What a two-way sync keeps between runs: its links and its conflict log.

* **links** (``sync_links``): one row per pair of records, a's id and b's id, each unique
  within the sync (a record is linked to at most one record of the other side), with the
  synced fields' values after the last sync (``base``: JSON text, an object keyed by a's
  field names, kept as the sync wrote it) and each side's version then;
* **conflicts** (``sync_conflicts``): a field both sides changed to different values (or a
  record changed on one side and deleted on the other): the values, the policy and its
  decision; a conflict held for a person (policy ``manual``) stays ``open`` until resolved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmbridge.errors import ConfigError
from crmbridge.state.tables import sync_conflicts, sync_links

#: ids per IN (...) query
_CHUNK = 500


@dataclass(frozen=True)
class Link:
    a_id: str
    b_id: str
    #: JSON text: a's field -> [a's value, b's value] after the last sync (canonical texts)
    base: str
    a_version: str | None = None
    b_version: str | None = None


@dataclass(frozen=True)
class Conflict:
    id: int
    sync_key: str
    run_id: int | None
    a_id: str | None
    b_id: str | None
    field: str
    base: Any
    a_value: Any
    b_value: Any
    policy: str
    decision: str
    status: str
    resolution: Any
    created_at: datetime
    resolved_at: datetime | None


class SyncState:
    """Links and conflicts of the syncs in one state store (``StateStore.sync``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    # -- links ----------------------------------------------------------------------------
    def links(
        self, sync_key: str, *, a_ids: Sequence[str] = (), b_ids: Sequence[str] = ()
    ) -> list[Link]:
        """The links of the given records of a (and of b)."""
        found: dict[str, Link] = {}
        with self._engine.begin() as conn:
            for column, ids in ((sync_links.c.a_id, a_ids), (sync_links.c.b_id, b_ids)):
                unique = list(dict.fromkeys(ids))
                for start in range(0, len(unique), _CHUNK):
                    query = sync_links.select().where(
                        sync_links.c.sync_key == sync_key,
                        column.in_(unique[start : start + _CHUNK]),
                    )
                    for row in conn.execute(query):
                        found[row.a_id] = _link(row)
        return list(found.values())

    def all_links(self, sync_key: str, batch: int = 10_000) -> Iterator[list[Link]]:
        """Every link of the sync, in batches (ordered by a's id)."""
        last = ""
        while True:
            query = (
                sync_links.select()
                .where(sync_links.c.sync_key == sync_key, sync_links.c.a_id > last)
                .order_by(sync_links.c.a_id)
                .limit(batch)
            )
            with self._engine.begin() as conn:
                rows = [_link(r) for r in conn.execute(query)]
            if not rows:
                return
            yield rows
            last = rows[-1].a_id

    def count_links(self, sync_key: str) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(sync_links)
            .where(sync_links.c.sync_key == sync_key)
        )
        with self._engine.begin() as conn:
            return int(conn.execute(query).scalar_one())

    def save_links(self, sync_key: str, links: Sequence[Link], *, run_id: int | None) -> None:
        """Create or replace these links (by a's id); a b id linked to another a record is a
        ConfigError (links are one to one)."""
        if not links:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "sync_key": sync_key,
                "a_id": link.a_id,
                "b_id": link.b_id,
                "base": link.base,
                "a_version": link.a_version,
                "b_version": link.b_version,
                "run_id": run_id,
                "synced_at": now,
            }
            for link in links
        ]
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(sync_links)
        upsert = insert.on_conflict_do_update(
            index_elements=[sync_links.c.sync_key, sync_links.c.a_id],
            set_={
                "b_id": insert.excluded.b_id,
                "base": insert.excluded.base,
                "a_version": insert.excluded.a_version,
                "b_version": insert.excluded.b_version,
                "run_id": insert.excluded.run_id,
                "synced_at": insert.excluded.synced_at,
            },
        )
        try:
            with self._engine.begin() as conn:
                conn.execute(upsert, rows)
        except sa.exc.IntegrityError as err:
            raise ConfigError(
                f"a record of b would be linked to two records of a ({str(err.orig)[:200]})"
            ) from None

    def remove_links(self, sync_key: str, a_ids: Sequence[str]) -> None:
        with self._engine.begin() as conn:
            unique = list(dict.fromkeys(a_ids))
            for start in range(0, len(unique), _CHUNK):
                conn.execute(
                    sync_links.delete().where(
                        sync_links.c.sync_key == sync_key,
                        sync_links.c.a_id.in_(unique[start : start + _CHUNK]),
                    )
                )

    # -- conflicts ------------------------------------------------------------------------
    def log_conflicts(
        self, sync_key: str, rows: Sequence[Mapping[str, Any]], *, run_id: int | None
    ) -> None:
        """Add conflicts; an open one identical to one logged already is not logged twice, and
        replaces (closes) an open one of the same field with other values."""
        if not rows:
            return
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            for row in rows:
                values = {
                    "base": _dump(row.get("base")),
                    "a_value": _dump(row.get("a_value")),
                    "b_value": _dump(row.get("b_value")),
                }
                if row["status"] == "open":
                    same = conn.execute(
                        sa.select(sync_conflicts.c.id).where(
                            sync_conflicts.c.sync_key == sync_key,
                            sync_conflicts.c.status == "open",
                            sync_conflicts.c.a_id == row.get("a_id"),
                            sync_conflicts.c.field == row["field"],
                            sync_conflicts.c.a_value == values["a_value"],
                            sync_conflicts.c.b_value == values["b_value"],
                        )
                    ).first()
                    if same is not None:
                        continue
                    # an open one of the field with other values is out of date: replaced
                    conn.execute(
                        sync_conflicts.update()
                        .where(
                            sync_conflicts.c.sync_key == sync_key,
                            sync_conflicts.c.status == "open",
                            sync_conflicts.c.a_id == row.get("a_id"),
                            sync_conflicts.c.field == row["field"],
                        )
                        .values(status="closed")
                    )
                conn.execute(
                    sync_conflicts.insert().values(
                        sync_key=sync_key,
                        run_id=run_id,
                        a_id=row.get("a_id"),
                        b_id=row.get("b_id"),
                        field=row["field"],
                        policy=row["policy"],
                        decision=row["decision"],
                        status=row["status"],
                        created_at=now,
                        **values,
                    )
                )

    def conflicts(
        self, sync_key: str | None = None, *, status: str | None = None, limit: int = 1000
    ) -> list[Conflict]:
        query = sync_conflicts.select().order_by(sync_conflicts.c.id).limit(limit)
        if sync_key is not None:
            query = query.where(sync_conflicts.c.sync_key == sync_key)
        if status is not None:
            query = query.where(sync_conflicts.c.status == status)
        with self._engine.begin() as conn:
            return [_conflict(r) for r in conn.execute(query)]

    def conflict(self, conflict_id: int) -> Conflict:
        with self._engine.begin() as conn:
            row = conn.execute(
                sync_conflicts.select().where(sync_conflicts.c.id == conflict_id)
            ).one_or_none()
        if row is None:
            raise ConfigError(f"no conflict with id {conflict_id}")
        return _conflict(row)

    def resolve(self, conflict_id: int, value: Any) -> None:
        """Decide an open conflict: the value both sides get at the next sync."""
        with self._engine.begin() as conn:
            result = conn.execute(
                sync_conflicts.update()
                .where(sync_conflicts.c.id == conflict_id, sync_conflicts.c.status == "open")
                .values(status="resolved", resolution=_dump(value), resolved_at=datetime.now(UTC))
            )
        if not result.rowcount:
            raise ConfigError(f"conflict {conflict_id} is not open")

    def resolved(self, sync_key: str) -> list[Conflict]:
        """Conflicts resolved by a person, not yet carried out by a sync."""
        return self.conflicts(sync_key, status="resolved")

    def close(self, conflict_ids: Sequence[int]) -> None:
        with self._engine.begin() as conn:
            for start in range(0, len(conflict_ids), _CHUNK):
                conn.execute(
                    sync_conflicts.update()
                    .where(sync_conflicts.c.id.in_(list(conflict_ids[start : start + _CHUNK])))
                    .values(status="closed")
                )


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _link(row: Any) -> Link:
    return Link(row.a_id, row.b_id, row.base, row.a_version, row.b_version)


def _conflict(row: Any) -> Conflict:
    return Conflict(
        id=row.id,
        sync_key=row.sync_key,
        run_id=row.run_id,
        a_id=row.a_id,
        b_id=row.b_id,
        field=row.field,
        base=_load(row.base),
        a_value=_load(row.a_value),
        b_value=_load(row.b_value),
        policy=row.policy,
        decision=row.decision,
        status=row.status,
        resolution=_load(row.resolution),
        created_at=row.created_at,
        resolved_at=row.resolved_at,
    )


__all__ = ["Conflict", "Link", "SyncState"]
