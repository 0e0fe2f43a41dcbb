"""The run ledger: per batch of a run, what was planned, what is confirmed, and where the run
stood, in the order that makes a crash at any instant recoverable.

For every batch a real run writes, in this order:

1. ``plan``: the intent, in one transaction: the batch's rows, the source position after it,
   and its operations (the plan, as Arrow IPC bytes) — before anything is sent;
2. (the target is written: ``Connector.apply``) then ``applied``;
3. (the success and error files get the batch's records) then ``confirm``: in one
   transaction the batch's counts, the files' sizes, the run's running totals and the keys
   the batch sent; the plan's bytes are dropped.

A batch left ``planned`` or ``applied`` by a crash is *in flight*: a resumed run carries out
its operations again, and the target confirms those already applied (``ApplyRequest.attempt``).
Everything up to the last confirmed batch is done and is in the files.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmbridge.state.tables import run_batches, runs, sent_keys


class BatchStatus(enum.StrEnum):
    PLANNED = "planned"
    APPLIED = "applied"
    CONFIRMED = "confirmed"


@dataclass(frozen=True)
class BatchRecord:
    run_id: int
    seq: int
    status: BatchStatus
    first_row: int
    last_row: int
    #: source records consumed up to and including this batch (filtered ones too)
    rows_read: int
    #: where the read stood after the batch (read order values, cursor progress)
    position: dict[str, Any] | None
    counts: dict[str, int]
    success_bytes: int | None
    error_bytes: int | None
    #: the batch's operations (Arrow IPC) while it is in flight
    plan: bytes | None


@dataclass(frozen=True)
class Sent:
    """Keys to remember under a scope (deduplicate, inserted source records)."""

    scope: str
    keys: Sequence[str]


class Ledger:
    """The batches of runs (``StateStore.ledger``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def plan(
        self,
        run_id: int,
        seq: int,
        *,
        first_row: int,
        last_row: int,
        rows_read: int,
        position: Mapping[str, Any] | None,
        plan: bytes | None,
    ) -> None:
        """Record batch ``seq``'s intent before anything of it is written."""
        with self._engine.begin() as conn:
            conn.execute(
                run_batches.insert().values(
                    run_id=run_id,
                    seq=seq,
                    status=BatchStatus.PLANNED.value,
                    first_row=first_row,
                    last_row=last_row,
                    rows_read=rows_read,
                    position=dict(position) if position is not None else None,
                    plan=plan,
                    updated_at=datetime.now(UTC),
                )
            )

    def applied(self, run_id: int, seq: int) -> None:
        self._set_status(run_id, seq, BatchStatus.APPLIED)

    def confirm(
        self,
        run_id: int,
        seq: int,
        *,
        counts: Mapping[str, int],
        run_counts: Mapping[str, int],
        success_bytes: int,
        error_bytes: int,
        sent: Sequence[Sent] = (),
    ) -> None:
        """Batch ``seq`` is done and in the files: one transaction for all of it."""
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            conn.execute(
                run_batches.update()
                .where(run_batches.c.run_id == run_id, run_batches.c.seq == seq)
                .values(
                    status=BatchStatus.CONFIRMED.value,
                    counts={k: int(v) for k, v in counts.items()},
                    success_bytes=success_bytes,
                    error_bytes=error_bytes,
                    plan=None,
                    updated_at=now,
                )
            )
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(counts={k: int(v) for k, v in run_counts.items()})
            )
            for item in sent:
                insert_sent_keys(conn, item.scope, item.keys, run_id=run_id, now=now)

    def batches(self, run_id: int) -> list[BatchRecord]:
        """Every batch of run ``run_id``, in order."""
        query = run_batches.select().where(run_batches.c.run_id == run_id)
        with self._engine.begin() as conn:
            rows = conn.execute(query.order_by(run_batches.c.seq)).all()
        return [_record(r) for r in rows]

    def _set_status(self, run_id: int, seq: int, status: BatchStatus) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                run_batches.update()
                .where(run_batches.c.run_id == run_id, run_batches.c.seq == seq)
                .values(status=status.value, updated_at=datetime.now(UTC))
            )


def insert_sent_keys(
    conn: sa.Connection,
    scope: str,
    keys: Sequence[str],
    *,
    run_id: int | None,
    now: datetime,
) -> None:
    """Remember ``keys`` under ``scope`` (keys already there keep their first run)."""
    if not keys:
        return
    rows = [
        {"scope": scope, "key": k, "run_id": run_id, "sent_at": now} for k in dict.fromkeys(keys)
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(sent_keys).on_conflict_do_nothing(
        index_elements=[sent_keys.c.scope, sent_keys.c.key]
    )
    conn.execute(insert, rows)


def _record(row: sa.Row[Any]) -> BatchRecord:
    m = row._mapping
    return BatchRecord(
        run_id=m["run_id"],
        seq=m["seq"],
        status=BatchStatus(m["status"]),
        first_row=m["first_row"],
        last_row=m["last_row"],
        rows_read=m["rows_read"],
        position=m["position"],
        counts={str(k): int(v) for k, v in (m["counts"] or {}).items()},
        success_bytes=m["success_bytes"],
        error_bytes=m["error_bytes"],
        plan=m["plan"],
    )


__all__ = ["BatchRecord", "BatchStatus", "Ledger", "Sent", "insert_sent_keys"]
