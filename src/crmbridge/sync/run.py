"""A sync run, from the lock to the run history.

    lock ─▶ carry out an interrupted run's batch in flight ─▶ read a and b (changes since
    the last sync, or everything) ─▶ links of the records read ─▶ pair new records ─▶ fetch
    partners ─▶ merge (SQL) ─▶ plan, batch by batch ─▶ dry run: show it │ real run: ledger
    intent, execute, links, ledger confirm ─▶ cursors ─▶ run history

Exclusive (the sync's lock, as a transfer's), resumable (every batch's plan is in the ledger
before anything of it is written; a run that finds an interrupted one carries its batch in
flight out again, with ``attempt = 2``), and repeatable: what a run wrote compares equal to
the base on the next pass, so a sync with nothing changed writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from crmbridge.connections import ConnectionStore
from crmbridge.errors import ConfigError, CrmBridgeError
from crmbridge.profiles.loader import LoadedSync
from crmbridge.runner.ledger import RunLock
from crmbridge.runner.run import side_text
from crmbridge.state import BatchStatus, RunStatus, StateStore
from crmbridge.sync.cursors import (
    encode_value,
    highest,
    save_cursors,
    save_retry,
    saved_cursor,
    saved_retry,
    since,
)
from crmbridge.sync.execute import Executor
from crmbridge.sync.linking import LinkFinder, load_links
from crmbridge.sync.merge import (
    RECORD_FIELD,
    RESOLUTIONS_DDL,
    create_base_sql,
    merge_sql,
    rules_of,
)
from crmbridge.sync.plan import SyncBatch, SyncPlanner
from crmbridge.sync.planfile import SyncPlanHeader, SyncPlanWriter, now_text
from crmbridge.sync.report import RunReport
from crmbridge.sync.sides import SideSetup, open_sides
from crmbridge.sync.workspace import LINKS_SCHEMA, Workspace

#: pairs per planned batch (one ledger entry, one transaction of links)
PAIRS_PER_BATCH = 2_000
#: links merged per query: a query's answer is held whole, so the memory of a sync stays flat
MERGE_PAGE = 50_000


class NeedsAcceptanceError(ConfigError):
    """The first sync of a profile waits for its link plan to be accepted (exit code 2)."""


@dataclass
class SyncOptions:
    dry_run: bool = False
    #: make the links the first sync found, and fuzzy proposals
    accept_links: bool = False
    #: read both sides whole (finds deletes on sides that report none)
    full: bool = False
    wait: bool = False
    output_dir: Path | None = None
    #: a dry run: write its plan to this file (``crmbridge apply`` carries it out)
    plan_out: Path | None = None
    on_batch: Callable[[SyncBatch], None] | None = None


@dataclass
class SyncSummary:
    run_id: int | None
    name: str
    status: RunStatus
    counts: dict[str, int]
    report: RunReport
    started_at: dt.datetime
    ended_at: dt.datetime
    error: str | None = None
    first: bool = False
    resumed_from: int | None = None
    #: how each side was read: "full" or "changes since <value>"
    reads: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.status is RunStatus.FAILED:
            return 3
        if self.status is RunStatus.FINISHED_WITH_REJECTS:
            return 1
        return 0


def sync_key(loaded: LoadedSync) -> str:
    return f"sync:{loaded.key}"


def run_sync(
    loaded: LoadedSync,
    *,
    connections: ConnectionStore | None,
    state: StateStore | None,
    options: SyncOptions | None = None,
) -> SyncSummary:
    """Run (or dry-run) the sync ``loaded`` and record the run. Problems with the profile or
    its connections raise ConfigError; failures during the run are in the summary."""
    options = options or SyncOptions()
    if options.plan_out is not None and (not options.dry_run or state is None):
        raise ConfigError("--plan-out writes the plan of a dry run: add --dry-run")
    key = sync_key(loaded)
    dry = options.dry_run
    lock = RunLock.take(state, key, loaded.name, wait=options.wait) if state and not dry else None
    try:
        return _Run(loaded, connections, state, options, key, lock).go()
    finally:
        if lock is not None:
            lock.release()


class _Run:
    def __init__(
        self,
        loaded: LoadedSync,
        connections: ConnectionStore | None,
        state: StateStore | None,
        options: SyncOptions,
        key: str,
        lock: RunLock | None,
    ) -> None:
        self.loaded = loaded
        self.profile = loaded.profile
        self.connections = connections
        self.state = state
        self.options = options
        self.key = key
        self.lock = lock
        self.rules = rules_of(self.profile)
        self.report = RunReport()
        self.counts: Counter[str] = Counter()
        self.seq = 0
        self.run_id: int | None = None
        self.reads: dict[str, str] = {}
        #: side -> ids of records whose writes failed or that were held in this run: the
        #: next run looks at them again
        self.retry: dict[str, set[str]] = {"a": set(), "b": set()}
        self.plan_writer: SyncPlanWriter | None = None

    # -- the run --------------------------------------------------------------------------
    def go(self) -> SyncSummary:
        started = dt.datetime.now(dt.UTC)
        profile, state = self.profile, self.state
        a, b = open_sides(self.loaded, self.connections)
        sides = {"a": a, "b": b}
        resumed: int | None = None
        try:
            if state is not None:
                self.run_id = state.start_run(
                    profile=self.loaded.name,
                    profile_path=str(self.loaded.path),
                    source=side_text(profile.a.connection, profile.a.object),
                    target=side_text(profile.b.connection, profile.b.object),
                    mode="sync",
                    dry_run=self.options.dry_run,
                    profile_key=self.key,
                )
                if self.lock is not None:
                    self.lock.assign(self.run_id)
            executor = Executor(
                sides, sync_key=self.key, state=state.sync if state else None, run_id=self.run_id
            )
            if state is not None and not self.options.dry_run:
                resumed = self._resume(executor)
            first = state is None or state.sync.count_links(self.key) == 0
            self._plan_file(first)
            with Workspace() as ws:
                cursors = self._read(ws, a, b, first)
                finder = LinkFinder(
                    ws,
                    a,
                    b,
                    state.sync if state else None,
                    self.key,
                    fuzzy=profile.link.fuzzy,
                    accept_above=profile.link.accept_above,
                    accept_links=self.options.accept_links,
                    whole=frozenset(self.full_sides),
                )
                self._resolutions(ws, finder)
                finder.run()
                self._partners(ws, finder, a, b)
                self.report.holds_from(ws)
                if first and not self.options.dry_run and not self.options.accept_links:
                    raise NeedsAcceptanceError(self._acceptance_message(ws))
                for batch in self._batches(ws, a, b):
                    self._step(batch, executor)
                # held records are looked at again next time (what held them may go away
                # without them changing)
                for side, record in ws.con.execute("SELECT side, id FROM holds").fetchall():
                    self.retry[side].add(record)
            if self.plan_writer is not None:
                self.plan_writer.close(
                    cursors={n: encode_value(v) for n, v in cursors.items()},
                    counts=dict(self.counts),
                )
                self.plan_writer = None
            if state is not None and not self.options.dry_run:
                save_cursors(state, self.key, cursors)
                save_retry(state, self.key, self.retry)
        except NeedsAcceptanceError:
            if state is not None and self.run_id is not None:
                state.discard_run(self.run_id)
            raise
        except CrmBridgeError as err:
            return self._finish(
                started,
                RunStatus.FAILED,
                str(err.with_context(profile=self.loaded.name)),
                first=False,
                resumed=resumed,
            )
        except duckdb.Error as err:  # the scratch database (out of memory, out of disk)
            why = f"profile {self.loaded.name!r}: the sync's scratch database failed: {err}"
            return self._finish(started, RunStatus.FAILED, why, first=False, resumed=resumed)
        finally:
            if self.plan_writer is not None:
                self.plan_writer.abandon()
            a.close()
            b.close()
        status = RunStatus.DRY_RUN if self.options.dry_run else RunStatus.SUCCEEDED
        if not self.options.dry_run and any(
            n for k, n in self.counts.items() if k.endswith(".rejected")
        ):
            status = RunStatus.FINISHED_WITH_REJECTS
        return self._finish(started, status, None, first=first, resumed=resumed)

    def _finish(
        self,
        started: dt.datetime,
        status: RunStatus,
        error: str | None,
        *,
        first: bool,
        resumed: int | None,
    ) -> SyncSummary:
        counts = dict(self.counts)
        if self.state is not None and self.run_id is not None:
            files = self.report.write(self._folder()) if not self.options.dry_run else None
            self.state.finish_run(
                self.run_id,
                status=status,
                counts=counts,
                error=error,
                success_file=str(files[0]) if files else None,
                error_file=str(files[1]) if files else None,
            )
        return SyncSummary(
            self.run_id,
            self.loaded.name,
            status,
            counts,
            self.report,
            started,
            dt.datetime.now(dt.UTC),
            error,
            first,
            resumed,
            dict(self.reads),
        )

    def _folder(self) -> Path:
        from crmbridge.state import home_dir

        if self.options.output_dir is not None:
            return self.options.output_dir
        return home_dir() / "runs" / f"{self.run_id}-{_slug(self.loaded.name)}"

    def _plan_file(self, first: bool) -> None:
        """Start the plan file of a dry run with ``plan_out``."""
        path = self.options.plan_out
        if path is None:
            return
        assert self.run_id is not None
        header = SyncPlanHeader(
            profile_path=str(self.loaded.path),
            profile_key=self.key,
            name=self.loaded.name,
            params=dict(self.loaded.params),
            created_at=now_text(),
            first=first,
            accept_links=self.options.accept_links,
            made_by_run=self.run_id,
        )
        self.plan_writer = SyncPlanWriter(path, header)

    # -- resuming -------------------------------------------------------------------------
    def _resume(self, executor: Executor) -> int | None:
        """Carry out the batch in flight of an interrupted run of this sync (its process is
        gone: this run holds the lock) and close that run, linked to this one when it wrote
        anything."""
        assert self.state is not None
        assert self.run_id is not None
        resumed = None
        for run in self.state.unfinished_runs(self.key):
            if run.id == self.run_id:
                continue
            batches = self.state.ledger.batches(run.id)
            counts: Counter[str] = Counter()
            for record in batches:
                if record.status is BatchStatus.CONFIRMED:
                    counts.update(record.counts)
                elif record.plan:
                    batch = SyncBatch.loads(record.plan)
                    done = executor.run(batch, attempt=2)
                    self._failed(done)
                    self.report.add(batch, done)
                    # counted once, in the interrupted run whose batch it is, by the same
                    # transaction that confirms it: this run may be killed too before it
                    # records anything of its own
                    counts.update(done.counts)
                    self.state.ledger.confirm(
                        run.id,
                        record.seq,
                        counts=dict(done.counts),
                        run_counts=dict(counts),
                        success_bytes=0,
                        error_bytes=0,
                    )
            # a run that wrote anything is continued by this one (which reads again what it
            # did not get to), with its batch in flight or without
            if batches:
                resumed = run.id
            self.state.mark_interrupted(
                run.id,
                counts=dict(counts),
                error=f"interrupted; continued by run {self.run_id}",
                resumed_by=self.run_id if resumed == run.id else None,
            )
        return resumed

    # -- reading --------------------------------------------------------------------------
    def _read(self, ws: Workspace, a: SideSetup, b: SideSetup, first: bool) -> dict[str, Any]:
        """Read both sides into the workspace; the highest modified value each read saw."""
        reached: dict[str, Any] = {}
        full_sides = []
        for side in (a, b):
            ws.prepare_side(side.name, side.rows(_empty(side), src="read")[0])
            start = None
            saved = saved_cursor(self.state, self.key, side.name)
            if side.incremental and not first and not self.options.full and saved is not None:
                start = since(saved, side.spec.overlap_seconds)
            self.reads[side.name] = "full" if start is None else f"changes since {start}"
            if start is None:
                full_sides.append(side.name)
            top = None
            for raw in side.read(
                since=start,
                include_deleted=start is not None and side.tombstones,
                batch_size=self.profile.batch_size,
            ):
                if raw.num_rows == 0:
                    continue
                self.counts[f"{side.name}.read"] += raw.num_rows
                rows, problems = side.rows(raw, src="read")
                ws.add_rows(side.name, rows, latest=True)
                self.report.problems(side.name, problems)
                self.counts[f"{side.name}.unreadable"] += len(problems)
                if side.modified:
                    top = highest(top, raw.column(side.modified))
            reached[side.name] = top if top is not None else saved
        self._again(ws, a, b, full_sides)
        self._load_links(ws, full_sides)
        self.full_sides = full_sides
        return reached

    def _again(self, ws: Workspace, a: SideSetup, b: SideSetup, full_sides: list[str]) -> None:
        """The records whose writes failed or that were held in the last run, fetched when a
        read of changes did not return them: they are tried again (their links come with
        them)."""
        saved = saved_retry(self.state, self.key)
        for side in (a, b):
            ids = saved[side.name]
            if side.name in full_sides or not ids:
                continue
            fetched = side.fetch(ids)
            if fetched is not None and fetched.num_rows:
                rows, problems = side.rows(fetched, src="fetched", whole_condition=True)
                ws.add_rows(side.name, rows)
                self.report.problems(side.name, problems)

    def _load_links(self, ws: Workspace, full_sides: list[str]) -> None:
        if self.state is None:
            return
        if full_sides:
            for links in self.state.sync.all_links(self.key, batch=50_000):
                ws.add_links(
                    pa.Table.from_pylist(
                        [
                            {
                                "a_id": k.a_id,
                                "b_id": k.b_id,
                                "base": k.base,
                                "kind": "old",
                                "score": None,
                            }
                            for k in links
                        ],
                        schema=LINKS_SCHEMA,
                    )
                )
            return
        for name in ("a", "b"):
            ids = ws.column(f"SELECT id FROM {name}_rows")
            for start in range(0, len(ids), 10_000):
                load_links(ws, self.state.sync, self.key, name, ids[start : start + 10_000])

    def _resolutions(self, ws: Workspace, finder: LinkFinder) -> None:
        ws.con.execute(RESOLUTIONS_DDL)
        if self.state is None:
            return
        resolved = self.state.sync.resolved(self.key)
        rows = []
        for conflict in resolved:
            if conflict.a_id is None:
                continue
            choice = conflict.resolution if isinstance(conflict.resolution, dict) else {}
            take = choice.get("take", "value")
            rows.append((conflict.a_id, conflict.field, take, choice.get("value"), conflict.id))
        if rows:
            finder.load_links("a", sorted({r[0] for r in rows}))
        # open conflicts of fields (take "open"): closed when their field is no longer in
        # conflict (made equal by hand, changed back), so a stale one is never resolved later
        decided = {(r[0], r[1]) for r in rows}
        for conflict in self.state.sync.conflicts(self.key, status="open", limit=100_000):
            if conflict.a_id is None or conflict.field == RECORD_FIELD:
                continue
            where = (conflict.a_id, conflict.field)
            if where not in decided:
                rows.append((conflict.a_id, conflict.field, "open", None, conflict.id))
                decided.add(where)
        if rows:
            ws.con.executemany("INSERT INTO resolutions VALUES (?, ?, ?, ?, ?)", rows)

    def _partners(self, ws: Workspace, finder: LinkFinder, a: SideSetup, b: SideSetup) -> None:
        """Every linked record of the workspace's links, fetched when the read did not
        return it; those that are gone marked deleted."""
        for side in (a, b):
            n = side.name
            missing = ws.column(
                f"SELECT l.{n}_id FROM links l WHERE NOT EXISTS "
                f"(SELECT 1 FROM {n}_rows r WHERE r.id = l.{n}_id)"
            )
            if not missing:
                continue
            fetched = side.fetch(missing) if side.caps.match else None
            if fetched is not None and fetched.num_rows:
                self.counts[f"{n}.fetched"] += fetched.num_rows
                rows, problems = side.rows(fetched, src="fetched", whole_condition=True)
                ws.add_rows(n, rows)
                self.report.problems(n, problems)
            # what could not be found: deleted, when the side can tell (it looks records up,
            # or it was read whole and unfiltered); else outside its subset
            knows = side.caps.match or (n in self.full_sides and side.pushed is None)
            ws.con.execute(
                f"INSERT OR IGNORE INTO {n}_rows (id, st, src) "
                f"SELECT l.{n}_id, '{'del' if knows else 'out'}', 'fetched' FROM links l "
                f"WHERE NOT EXISTS (SELECT 1 FROM {n}_rows r WHERE r.id = l.{n}_id)"
            )

    # -- planning -------------------------------------------------------------------------
    def _batches(self, ws: Workspace, a: SideSetup, b: SideSetup) -> Iterator[SyncBatch]:
        planner = SyncPlanner(self.profile, self.rules, a, b, namespace=self.key)
        for where in _link_pages(ws, MERGE_PAGE):
            sql = merge_sql(self.rules, len(a.link_fields), where)
            for chunk in ws.batches(sql, PAIRS_PER_BATCH):
                batch = SyncBatch()
                planner.pairs(chunk.to_pylist(), batch)
                if not batch.empty:
                    yield batch
                else:
                    self.counts["pairs.unchanged"] += batch.unchanged
        for side in (a, b):
            n = side.name
            free = (
                f"SELECT r.*, {create_base_sql(self.rules, n)} AS new_base FROM {n}_rows r "
                f"WHERE r.st = 'in' "
                f"AND NOT EXISTS (SELECT 1 FROM links l WHERE l.{n}_id = r.id) "
                f"AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.side = '{n}' AND h.id = r.id) "
                f"ORDER BY r.id"
            )
            for chunk in ws.batches(free, PAIRS_PER_BATCH):
                batch = SyncBatch()
                planner.creates(chunk.to_pylist(), n, batch)
                if not batch.empty:
                    yield batch

    def _step(self, batch: SyncBatch, executor: Executor) -> None:
        self.counts["pairs.unchanged"] += batch.unchanged
        if self.options.on_batch is not None:
            self.options.on_batch(batch)
        if self.options.dry_run:
            if self.plan_writer is not None:
                self.plan_writer.add(batch)
            self.report.add(batch, None)
            self.counts.update(self.report.planned_counts(batch))
            return
        self.seq += 1
        if self.state is not None and self.run_id is not None:
            self.state.ledger.plan(
                self.run_id,
                self.seq,
                first_row=0,
                last_row=0,
                rows_read=0,
                position=None,
                plan=batch.dumps(),
            )
        done = executor.run(batch)
        self._failed(done)
        self.counts.update(done.counts)
        self.counts["links.saved"] += done.links_saved
        self.counts["links.removed"] += done.links_removed
        self.counts["conflicts"] += done.conflicts
        self.report.add(batch, done)
        if self.state is not None and self.run_id is not None:
            self.state.ledger.confirm(
                self.run_id,
                self.seq,
                counts=dict(done.counts),
                run_counts=dict(self.counts),
                success_bytes=0,
                error_bytes=0,
            )

    def _failed(self, done: Any) -> None:
        for name, ids in done.retry.items():
            self.retry[name] |= ids

    def _acceptance_message(self, ws: Workspace) -> str:
        made = ws.scalar("SELECT count(*) FROM links WHERE kind <> 'old'") or 0
        held = ws.scalar("SELECT count(*) FROM holds") or 0
        name = self.loaded.name
        return (
            f"first sync of {name!r}: {made} pairs of records would be linked and {held} "
            f"records held for review; nothing was written. Look at the plan with "
            f"`crmbridge sync {self.loaded.path} --dry-run`, then run "
            f"`crmbridge sync {self.loaded.path} --accept-links`"
        )


def _link_pages(ws: Workspace, size: int) -> Iterator[str]:
    """Conditions on ``l.a_id`` that cut the workspace's links into pages of ``size``, in
    a's id order."""
    bounds = ws.column(
        f"SELECT a_id FROM (SELECT a_id, row_number() OVER (ORDER BY a_id) AS n FROM links) "
        f"WHERE n % {size} = 0 ORDER BY a_id"
    )
    low = None
    for high in [*bounds, None]:
        parts = []
        if low is not None:
            parts.append(f"l.a_id > {_quoted(low)}")
        if high is not None:
            parts.append(f"l.a_id <= {_quoted(high)}")
        yield " AND ".join(parts) or "TRUE"
        low = high


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:60]


def _empty(side: SideSetup) -> pa.RecordBatch:
    schema = side.schema.select(side.read_fields).arrow_schema()
    return pa.RecordBatch.from_pylist([], schema=schema)


__all__ = ["NeedsAcceptanceError", "SyncOptions", "SyncSummary", "run_sync", "sync_key"]
