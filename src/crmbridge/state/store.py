"""Run history and small key/value state, in SQLite (default) or PostgreSQL.

    with StateStore() as store:                      # $CRMBRIDGE_HOME/state.sqlite
        run_id = store.start_run(profile="leads", profile_path="leads.yaml", source="csv",
                                 target="crm", mode="upsert", dry_run=False)
        ...
        store.finish_run(run_id, status=RunStatus.SUCCEEDED, counts={"created": 10},
                         error=None, success_file=None, error_file=None)

Opening a store migrates its schema forward (see :mod:`crmbridge.state.migrations`). Every
method is one short transaction, so several processes can share a store.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmbridge.errors import ConfigError, ConnectionFailedError
from crmbridge.state.engine import create_state_engine, display_url, parse_url
from crmbridge.state.ledger import Ledger, insert_sent_keys
from crmbridge.state.locks import Locks, process_alive, this_host
from crmbridge.state.migrations import migrate
from crmbridge.state.paths import home_dir
from crmbridge.state.schedules import Schedules
from crmbridge.state.syncstate import SyncState
from crmbridge.state.tables import run_batches, runs, sent_keys, state_values

#: keys per IN (...) query
_IN_CHUNK = 500

#: environment variable holding the state store URL (overrides the SQLite file in the home)
STATE_URL_ENV = "CRMBRIDGE_STATE_URL"


class RunStatus(enum.StrEnum):
    """How a run ended (``running`` until it does)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FINISHED_WITH_REJECTS = "finished_with_rejects"
    FAILED = "failed"
    #: the process ended without finishing the run (killed, power lost); a later run of the
    #: profile found it and resumed where it stood
    INTERRUPTED = "interrupted"
    DRY_RUN = "dry_run"


@dataclass(frozen=True)
class RunRecord:
    """One run as stored. Datetimes are aware, in UTC."""

    id: int
    profile: str
    profile_path: str | None
    source: str
    target: str
    mode: str
    started_at: datetime
    ended_at: datetime | None
    status: RunStatus
    #: outcome name -> count: created, updated, unchanged, deleted, rejected, filtered
    counts: dict[str, int]
    #: summary of the error when the run failed
    error: str | None
    success_file: str | None
    error_file: str | None
    dry_run: bool
    #: the profile's stable identity (see docs/state.md); None for runs of old versions
    profile_key: str | None = None
    pid: int | None = None
    host: str | None = None
    #: the interrupted run this one resumed
    resumed_from: int | None = None
    #: how the run read its source (an incremental read's starting point), for resuming
    read_state: dict[str, Any] | None = None


@dataclass(frozen=True)
class SentKey:
    key: str
    run_id: int | None


class StateStore:
    """Run history and key/value state of crmbridge, in one SQL database.

    ``url`` is a SQLAlchemy URL (``sqlite:///path`` or ``postgresql://user@host/db``); when
    None, :meth:`default_url` is used. Opening migrates the schema forward; a store written by
    a newer crmbridge is a ConfigError.
    """

    def __init__(self, url: str | None = None) -> None:
        parsed = parse_url(url if url is not None else self.default_url())
        self.url = display_url(parsed)
        self._engine = create_state_engine(parsed)
        try:
            migrate(self._engine)
        except sa.exc.DBAPIError as err:
            self._engine.dispose()
            raise ConnectionFailedError(
                f"cannot open the state store {self.url}: {_reason(err, parsed)}"
            ) from None
        except BaseException:
            self._engine.dispose()
            raise
        self.ledger = Ledger(self._engine)
        self.locks = Locks(self._engine)
        self.sync = SyncState(self._engine)
        self.schedules = Schedules(self._engine)

    @classmethod
    def default_url(cls) -> str:
        """``$CRMBRIDGE_STATE_URL`` if set, else SQLite at ``<crmbridge home>/state.sqlite``."""
        configured = os.environ.get(STATE_URL_ENV, "").strip()
        if configured:
            return configured
        return f"sqlite:///{home_dir() / 'state.sqlite'}"

    # -- runs ----------------------------------------------------------------------------
    def start_run(
        self,
        *,
        profile: str,
        profile_path: str | None,
        source: str,
        target: str,
        mode: str,
        dry_run: bool,
        profile_key: str | None = None,
        resumed_from: int | None = None,
        read_state: Mapping[str, Any] | None = None,
    ) -> int:
        """Record a run that starts now (status ``running``) in this process; return its id."""
        with self._engine.begin() as conn:
            result = conn.execute(
                runs.insert().values(
                    profile=profile,
                    profile_path=profile_path,
                    source=source,
                    target=target,
                    mode=mode,
                    started_at=_now(),
                    status=RunStatus.RUNNING.value,
                    counts={},
                    dry_run=dry_run,
                    profile_key=profile_key,
                    pid=os.getpid(),
                    host=this_host(),
                    resumed_from=resumed_from,
                    read_state=dict(read_state) if read_state is not None else None,
                )
            )
            key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        counts: Mapping[str, int],
        error: str | None,
        success_file: str | None,
        error_file: str | None,
    ) -> None:
        """Record how run ``run_id`` ended, now. An unknown id is a ConfigError."""
        with self._engine.begin() as conn:
            result = conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(
                    ended_at=_now(),
                    status=RunStatus(status).value,
                    counts={name: int(n) for name, n in counts.items()},
                    error=error,
                    success_file=success_file,
                    error_file=error_file,
                )
            )
            if result.rowcount == 0:
                raise self._unknown_run(run_id)

    def get_run(self, run_id: int) -> RunRecord:
        """The run with id ``run_id``; an unknown id is a ConfigError."""
        with self._engine.begin() as conn:
            row = conn.execute(runs.select().where(runs.c.id == run_id)).one_or_none()
        if row is None:
            raise self._unknown_run(run_id)
        return _record(row)

    def list_runs(self, *, profile: str | None = None, limit: int = 20) -> list[RunRecord]:
        """The ``limit`` most recent runs (of ``profile`` when given), newest first."""
        if limit < 1:
            raise ConfigError(f"the number of runs to list must be at least 1, not {limit}")
        query = runs.select().order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
        if profile is not None:
            query = query.where(runs.c.profile == profile)
        with self._engine.begin() as conn:
            return [_record(row) for row in conn.execute(query)]

    def discard_run(self, run_id: int) -> None:
        """Forget run ``run_id`` (one that never started: its profile was invalid)."""
        with self._engine.begin() as conn:
            conn.execute(run_batches.delete().where(run_batches.c.run_id == run_id))
            conn.execute(runs.delete().where(runs.c.id == run_id))

    def unfinished_runs(self, profile_key: str) -> list[RunRecord]:
        """Runs of the profile still marked ``running`` (newest first), excluding dry runs."""
        query = (
            runs.select()
            .where(
                runs.c.profile_key == profile_key,
                runs.c.status == RunStatus.RUNNING.value,
                runs.c.dry_run.is_(False),
            )
            .order_by(runs.c.id.desc())
        )
        with self._engine.begin() as conn:
            return [_record(row) for row in conn.execute(query)]

    def mark_interrupted(
        self,
        run_id: int,
        *,
        counts: Mapping[str, int],
        error: str,
        resumed_by: int | None = None,
    ) -> None:
        """Run ``run_id`` ended without finishing: record it with the counts it confirmed.
        ``resumed_by``: the run that continues it, linked in the same transaction."""
        with self._engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value)
                .values(
                    ended_at=_now(),
                    status=RunStatus.INTERRUPTED.value,
                    counts={name: int(n) for name, n in counts.items()},
                    error=error,
                )
            )
            if resumed_by is not None:
                conn.execute(
                    runs.update().where(runs.c.id == resumed_by).values(resumed_from=run_id)
                )

    def runs_before(self, profile_key: str, before: int, limit: int = 50) -> list[RunRecord]:
        """The profile's real runs (no dry runs, no applies) before run ``before``, newest
        first."""
        query = (
            runs.select()
            .where(
                runs.c.profile_key == profile_key,
                runs.c.id < before,
                runs.c.dry_run.is_(False),
                runs.c.mode != "apply",
            )
            .order_by(runs.c.id.desc())
            .limit(limit)
        )
        with self._engine.begin() as conn:
            return [_record(row) for row in conn.execute(query)]

    def set_resumed_from(self, run_id: int, interrupted: int) -> None:
        """Run ``run_id`` continues the interrupted run ``interrupted``."""
        with self._engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(resumed_from=interrupted))

    def set_files(self, run_id: int, *, success_file: str, error_file: str) -> None:
        """Where run ``run_id`` writes its success and error files (known while it runs)."""
        with self._engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(success_file=success_file, error_file=error_file)
            )

    def lock_holder_alive(self, run: RunRecord) -> bool:
        """Is the process of ``running`` run ``run`` still there (it holds its profile's lock,
        with a fresh heartbeat)?"""
        if run.profile_key is None:
            return run.host == this_host() and run.pid is not None and process_alive(run.pid)
        holder = self.locks.holder(lock_name(run.profile_key))
        if holder is None or not holder.alive(_now()):
            return False
        # a lock not yet assigned belongs to a run that is starting: maybe this one
        return holder.run_id in (None, run.id)

    def _unknown_run(self, run_id: int) -> ConfigError:
        return ConfigError(f"no run with id {run_id} in the state store {self.url}")

    # -- key/value state -----------------------------------------------------------------
    def get_value(self, scope: str, key: str) -> Any | None:
        """The value stored under ``(scope, key)``, or None when there is none."""
        query = sa.select(state_values.c.value_json).where(
            state_values.c.scope == scope, state_values.c.key == key
        )
        with self._engine.begin() as conn:
            text = conn.execute(query).scalar_one_or_none()
        return None if text is None else json.loads(text)

    def set_value(self, scope: str, key: str, value: Any) -> None:
        """Store ``value`` (anything ``json.dumps`` takes) under ``(scope, key)``, replacing it."""
        row = {"scope": scope, "key": key, "value_json": json.dumps(value), "updated_at": _now()}
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(state_values).values(**row)
        upsert = insert.on_conflict_do_update(
            index_elements=[state_values.c.scope, state_values.c.key],
            set_={
                "value_json": insert.excluded.value_json,
                "updated_at": insert.excluded.updated_at,
            },
        )
        with self._engine.begin() as conn:
            conn.execute(upsert)

    # -- keys already sent -----------------------------------------------------------------
    def sent(self, scope: str, keys: Sequence[str]) -> dict[str, int | None]:
        """Those of ``keys`` recorded under ``scope``, with the run that recorded each."""
        found: dict[str, int | None] = {}
        unique = list(dict.fromkeys(keys))
        with self._engine.begin() as conn:
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                query = sa.select(sent_keys.c.key, sent_keys.c.run_id).where(
                    sent_keys.c.scope == scope, sent_keys.c.key.in_(chunk)
                )
                found.update({row.key: row.run_id for row in conn.execute(query)})
        return found

    def mark_sent(self, scope: str, keys: Sequence[str], *, run_id: int | None = None) -> None:
        """Remember ``keys`` under ``scope`` (keys already there are kept as they are)."""
        with self._engine.begin() as conn:
            insert_sent_keys(conn, scope, keys, run_id=run_id, now=_now())

    def adopt_scope(self, old: str, new: str) -> None:
        """Move the keys kept under ``old`` to ``new`` when ``new`` has none yet (state kept
        by an older crmbridge under another name)."""
        with self._engine.begin() as conn:
            has_new = conn.execute(
                sa.select(sent_keys.c.key).where(sent_keys.c.scope == new).limit(1)
            ).first()
            if has_new is None:
                conn.execute(sent_keys.update().where(sent_keys.c.scope == old).values(scope=new))

    def forget_sent(self, scope: str) -> int:
        """Forget every key under ``scope``; how many there were."""
        with self._engine.begin() as conn:
            result = conn.execute(sent_keys.delete().where(sent_keys.c.scope == scope))
        return int(result.rowcount or 0)

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self.url!r})"


def _now() -> datetime:
    return datetime.now(UTC)


def lock_name(profile_key: str) -> str:
    """The name of the lock a run of the profile holds."""
    return f"profile:{profile_key}"


def _record(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(
        id=row.id,
        profile=row.profile,
        profile_path=row.profile_path,
        source=row.source,
        target=row.target,
        mode=row.mode,
        started_at=row.started_at,
        ended_at=row.ended_at,
        status=RunStatus(row.status),
        counts={str(k): int(v) for k, v in (row.counts or {}).items()},
        error=row.error,
        success_file=row.success_file,
        error_file=row.error_file,
        dry_run=bool(row.dry_run),
        profile_key=row.profile_key,
        pid=row.pid,
        host=row.host,
        resumed_from=row.resumed_from,
        read_state=row.read_state,
    )


def _reason(err: sa.exc.DBAPIError, url: sa.URL) -> str:
    """The driver's first line of ``err``, without the URL's password."""
    text = str(err.orig).strip().splitlines()[0] if str(err.orig).strip() else "unknown error"
    return text.replace(url.password, "***") if url.password else text
