"""Printing: tables, run summaries and progress, with rich."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:  # the CLI starts fast: nothing heavy is imported before a command runs
    import pyarrow as pa

    from crmbridge.runner import Progress as RunProgress
    from crmbridge.runner import RunSummary
    from crmbridge.state import RunRecord

#: piped output (not a terminal) gets wide lines, so tables stay one record per line for grep
PIPE_WIDTH = 200
console = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
console_err = Console(
    stderr=True, highlight=False, width=None if sys.stderr.isatty() else PIPE_WIDTH
)

MAX_CELL = 60


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def rows_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> Table:
    table = Table(title=title or None, show_lines=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    return table


def arrow_table(data: pa.Table, title: str = "") -> Table:
    rows = [list(r.values()) for r in data.to_pylist()]
    return rows_table(data.column_names, rows, title)


def print_summary(summary: RunSummary) -> None:
    seconds = max(summary.seconds, 1e-9)
    rate = summary.records / seconds
    counts = ", ".join(f"{n} {c}" for n, c in summary.counts.items() if c)
    console.print(
        f"[bold]{summary.profile}[/bold]: {summary.status.value} — {counts or 'no records'} "
        f"in {summary.seconds:.1f}s ({rate:,.0f} records/s)"
        + (f" — run {summary.run_id}" if summary.run_id else "")
    )
    if summary.error:
        console_err.print(f"[red]{summary.error}[/red]", highlight=False, soft_wrap=True)
    if summary.success_file:
        console.print(f"success file: {summary.success_file}")
    if summary.error_file:
        console.print(f"error file:   {summary.error_file}")


def print_run(record: RunRecord) -> None:
    table = Table(show_header=False, title=f"run {record.id}")
    table.add_column("", style="bold")
    table.add_column("")
    items = [
        ("profile", record.profile),
        ("file", record.profile_path),
        ("source", record.source),
        ("target", f"{record.target} ({record.mode})"),
        ("status", record.status.value),
        ("started", record.started_at),
        ("ended", record.ended_at),
        ("counts", ", ".join(f"{k} {v}" for k, v in record.counts.items() if v) or "none"),
        ("error", record.error),
        ("success file", record.success_file),
        ("error file", record.error_file),
    ]
    for name, value in items:
        table.add_row(name, cell(value))
    console.print(table)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """Yields a callback for run progress: a bar with records/s, and ETA when the total is
    known. Disabled (a no-op callback) when ``enabled`` is False (not a terminal)."""
    if not enabled:
        yield None
        return
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:>10} rec/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console_err, transient=True) as bar:
        task = bar.add_task("records", total=None, rate="")

        def update(progress: RunProgress) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{progress.done / elapsed:,.0f}" if elapsed > 0 else ""
            bar.update(task, completed=progress.done, total=progress.total, rate=rate)

        yield update
