"""The PostgreSQL cases of `compare.py`: what each tool runs, the reset before it, the check after.

Every tool loads the same file into the same table (`generate.table_ddl`: 13 typed columns,
primary key, one index), created by the benchmark before each measurement. After each
measurement the table must hold the expected number of rows with the floor's checksum
(an md5 over every column of every row, as PostgreSQL prints them), and still have exactly
its columns, types, primary key and index. A tool that fails this check fails the case.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generate import COLUMNS, HEADER, KEY, table_ddl

HERE = Path(__file__).resolve().parent
SCHEMA = "bench"
TABLE = f"{SCHEMA}.contacts"
TOOLS: tuple[str, ...] = ("floor", "crmbridge", "dlt", "sling")

CHECKSUM = (
    f"SELECT count(*), md5(string_agg(md5(ROW({', '.join(HEADER)})::text), '' "
    f"ORDER BY {KEY})) FROM {TABLE}"
)
STRUCTURE = f"""
SELECT 'column ' || attname || ' ' || format_type(atttypid, atttypmod)
FROM pg_attribute WHERE attrelid = '{TABLE}'::regclass AND attnum > 0 AND NOT attisdropped
UNION ALL SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid = '{TABLE}'::regclass ORDER BY 1
"""


@dataclass
class Step:
    """One timed process."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Check:
    ok: bool
    #: what the tool left behind (row count and checksum), compared with the floor's
    digest: str = ""
    note: str = ""


@dataclass
class Setup:
    """Where things are, shared by the cases of one benchmark."""

    out: Path
    url: str  # postgresql://user@host:port/db
    sling: str | None  # the sling binary
    rows: int
    xlsx_rows: int

    @property
    def state(self) -> Path:
        return self.out / "state"

    def home(self, tool: str) -> Path:
        return self.state / tool


def sling_binary() -> str | None:
    """The binary the `sling-linux-amd64` package ships (no download at run time)."""
    try:
        import sling_linux_amd64  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return shutil.which("sling")
    path: str = sling_linux_amd64.SLING_BIN
    return path


def tool_available(tool: str, setup: Setup) -> bool:
    if tool == "dlt":
        import importlib.util

        return importlib.util.find_spec("dlt") is not None
    if tool == "sling":
        return setup.sling is not None
    return True


def psql(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def ensure_database(url: str) -> None:
    base, _, name = url.rpartition("/")
    rows = psql(f"{base}/postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    if not rows:
        psql(f"{base}/postgres", f'CREATE DATABASE "{name}"')


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _tools_py(*args: str) -> list[str]:
    return _python(str(HERE / "tools.py"), *args)


class PgCase:
    """One CSV or XLSX → PostgreSQL case: ``kind`` is insert, upsert, rerun or xlsx."""

    def __init__(self, kind: str, setup: Setup, data: dict[str, Path]) -> None:
        self.kind = kind
        self.setup = setup
        self.data = data
        self.rows = setup.xlsx_rows if kind == "xlsx" else setup.rows
        self.tools: tuple[str, ...] = TOOLS
        #: the source file the case loads
        self.source = {
            "insert": data["csv"],
            "upsert": data["changed"],
            "rerun": data["csv"],
            "xlsx": data["xlsx"],
        }[kind]
        self.mode = "upsert" if kind in ("upsert", "rerun") else "insert"
        self.structure: list[tuple[Any, ...]] = []

    @property
    def title(self) -> str:
        return {
            "insert": f"insert {self.rows:,} rows (CSV → PostgreSQL)",
            "upsert": f"upsert {self.rows:,} rows, 10% changed (CSV → PostgreSQL)",
            "rerun": f"re-run, CSV source of {self.rows:,} rows, nothing changed",
            "xlsx": f"XLSX read of {self.rows:,} rows (→ PostgreSQL)",
        }[self.kind]

    @property
    def floor(self) -> str:
        return {
            "insert": "psycopg COPY",
            "upsert": "staged COPY + ON CONFLICT … IS DISTINCT FROM",
            "rerun": "hash the file, stop when unchanged",
            "xlsx": "fastexcel → Arrow → COPY",
        }[self.kind]

    def open(self) -> None:
        ensure_database(self.setup.url)
        self._reset_table()
        self.structure = psql(self.setup.url, STRUCTURE)

    def close(self) -> None:
        psql(self.setup.url, f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")

    # -- before each measurement ---------------------------------------------------------
    def _reset_table(self) -> None:
        url = self.setup.url
        psql(url, f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
        psql(url, table_ddl(TABLE))
        if self.kind == "upsert":  # the table holds the original file
            import psycopg
            from tools import copy_file

            with psycopg.connect(url) as conn, conn.cursor() as cur:
                copy_file(cur, TABLE, str(self.data["csv"]))
            psql(url, f"VACUUM (FREEZE, ANALYZE) {TABLE}")
        psql(url, "CHECKPOINT")

    def prepare(self, tool: str) -> list[Step]:
        """Reset the table and the tool's own state; the steps to time (a re-run: two)."""
        self._reset_table()
        home = self.setup.home(tool)
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        step = getattr(self, f"_{tool}")(home)
        return [step, step] if self.kind == "rerun" else [step]

    def _floor(self, home: Path) -> Step:
        url, src = self.setup.url, str(self.source)
        program = {"insert": "floor-insert", "upsert": "floor-upsert", "xlsx": "floor-xlsx"}
        if self.kind == "rerun":
            return Step(_tools_py("floor-rerun", src, url, TABLE, str(home / "hash")))
        return Step(_tools_py(program[self.kind], src, url, TABLE))

    def _crmbridge(self, home: Path) -> Step:
        profile = home / f"{self.kind}.yaml"
        profile.write_text(self.profile(), encoding="utf-8")
        argv = ["-m", "crmbridge", "run", str(profile), "--no-progress", "-o", str(home / "run")]
        return Step(_python(*argv), {"CRMBRIDGE_HOME": str(home)})

    def profile(self) -> str:
        """The crmbridge profile of the case: the defaults, with the columns' types."""
        sa_url = self.setup.url.replace("postgresql://", "postgresql+psycopg://", 1)
        sa_url += f"?options=-csearch_path%3D{SCHEMA}"
        kind = "xlsx" if self.kind == "xlsx" else "csv"
        types = {name: t for name, _, t in COLUMNS if t} if kind == "csv" else {}
        keys = f"\n  match_keys: [{KEY}]" if self.mode == "upsert" else ""
        return (
            textwrap.dedent(f"""\
            name: bench-{self.kind}
            source:
              connection: {{type: {kind}, path: "{self.source.parent}"}}
              object: {self.source.name}
              types: {{{", ".join(f"{k}: {v}" for k, v in types.items())}}}
            target:
              connection: {{type: sql, url: "{sa_url}"}}
              object: contacts
              mode: {self.mode}""")
            + keys
            + "\n"
        )

    def _dlt(self, home: Path) -> Step:
        mode = "merge" if self.mode == "upsert" else "append"
        env = {"RUNTIME__DLTHUB_TELEMETRY": "false"}
        return Step(_tools_py("dlt", str(self.source), self.setup.url, TABLE, mode, str(home)), env)

    def _sling(self, home: Path) -> Step:
        assert self.setup.sling is not None
        argv = [self.setup.sling, "run", "--src-stream", f"file://{self.source}"]
        argv += ["--src-options", "{empty_as_null: true}"]  # the file's nulls are empty fields
        argv += ["--tgt-conn", "BENCH_PG", "--tgt-object", TABLE]
        if self.mode == "upsert":  # a primary key and no update key: upsert every record
            argv += ["--mode", "incremental", "--primary-key", KEY]
        else:  # keeps the table as it is (full-refresh would create its own)
            argv += ["--mode", "truncate"]
        env = {
            "BENCH_PG": self.setup.url + "?sslmode=disable",
            "SLING_HOME_DIR": str(home),
            "SLING_DISABLE_TELEMETRY": "true",
            "SLING_LOADED_AT_COLUMN": "false",  # no column of its own in the table
        }
        return Step(argv, env)

    # -- after each measurement ----------------------------------------------------------
    def check(self, tool: str, floor: Check | None) -> Check:
        count, checksum = psql(self.setup.url, CHECKSUM)[0]
        digest = f"{count} rows, md5 {checksum}"
        structure = psql(self.setup.url, STRUCTURE)
        if structure != self.structure:
            changed = sorted(set(structure) ^ set(self.structure))
            return Check(False, digest, "table changed: " + "; ".join(r[0] for r in changed))
        if count != self.rows:
            return Check(False, digest, f"{count:,} rows instead of {self.rows:,}")
        if floor is not None and floor.ok and digest != floor.digest:
            return Check(False, digest, "the rows differ from the floor's (checksum)")
        return Check(True, digest)
