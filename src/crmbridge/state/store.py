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
from crmbridge.state.migrations import migrate
from crmbridge.state.paths import home_dir
from crmbridge.state.tables import runs, sent_keys, state_values

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
    ) -> int:
        """Record a run that starts now (status ``running``); return its id."""
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
    def sent(self, scope: str, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` recorded under ``scope`` by :meth:`mark_sent`."""
        found: set[str] = set()
        unique = list(dict.fromkeys(keys))
        with self._engine.begin() as conn:
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                query = sa.select(sent_keys.c.key).where(
                    sent_keys.c.scope == scope, sent_keys.c.key.in_(chunk)
                )
                found.update(conn.execute(query).scalars())
        return found

    def mark_sent(self, scope: str, keys: Sequence[str], *, run_id: int | None = None) -> None:
        """Remember ``keys`` under ``scope`` (keys already there are kept as they are)."""
        if not keys:
            return
        now = _now()
        rows = [
            {"scope": scope, "key": k, "run_id": run_id, "sent_at": now}
            for k in dict.fromkeys(keys)
        ]
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(sent_keys).on_conflict_do_nothing(
            index_elements=[sent_keys.c.scope, sent_keys.c.key]
        )
        with self._engine.begin() as conn:
            conn.execute(insert, rows)

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
    )


def _reason(err: sa.exc.DBAPIError, url: sa.URL) -> str:
    """The driver's first line of ``err``, without the URL's password."""
    text = str(err.orig).strip().splitlines()[0] if str(err.orig).strip() else "unknown error"
    return text.replace(url.password, "***") if url.password else text
