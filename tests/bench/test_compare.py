"""bench/compare.py keeps working: a tiny run of every case, and checks that catch wrong loads.

Only the floor and crmbridge run here (dlt and sling are the `bench` extra's and slow to start);
the full benchmark is run by hand, see bench/README.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

from cases import TABLE, PgCase, Setup, psql  # noqa: E402
from compare import timed  # noqa: E402
from report import BEGIN, END, targets, write_docs  # noqa: E402

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not Path("/usr/bin/time").exists(), reason="needs /usr/bin/time"),
]


@pytest.fixture
def bench_db(pg_url: str) -> Iterator[str]:
    """A database of its own (the benchmark drops and creates its schema)."""
    server = pg_url.split("?")[0].replace("postgresql+psycopg://", "postgresql://")
    server = server.rsplit("/", 1)[0]
    name = f"crmb_bench_{uuid.uuid4().hex[:10]}"
    yield f"{server}/{name}"
    psql(f"{server}/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_every_case_runs_and_checks_out(bench_db: str, tmp_path: Path) -> None:
    argv = [sys.executable, str(BENCH / "compare.py"), "--rows", "300", "--xlsx-rows", "40"]
    argv += ["--accounts", "40", "--rounds", "1", "--tools", "floor,crmbridge"]
    argv += ["--cases", "insert,upsert,xlsx,rerun,sugarcrm"]  # sugarcrm-latency: below
    argv += ["--pg-url", bench_db, "--out", str(tmp_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"))
    cases = {case["case"]: case["tools"] for case in report["summary"]}
    assert set(cases) == {"insert", "upsert", "xlsx", "rerun", "sugarcrm"}
    for name, tools in cases.items():
        assert set(tools) == {"floor", "crmbridge"}, name
        for tool, entry in tools.items():
            assert entry["ok"], (name, tool, entry["notes"])
            assert entry["seconds"]["median"] > 0
            assert entry["peak_mb"] > 10  # /usr/bin/time's figure, not a default
    assert cases["insert"]["crmbridge"]["ratio"]["median"] > 0
    assert cases["rerun"]["crmbridge"]["share_of_first_run"] > 0
    assert "| insert 300 rows (CSV → PostgreSQL) | psycopg COPY" in proc.stdout
    assert (tmp_path / "compare.md").read_text(encoding="utf-8") in proc.stdout


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_the_raw_loop_writes_every_account_once(tmp_path: Path, concurrency: str) -> None:
    from sugar_cases import FIELDS
    from tools import sugar_raw

    from crmbridge.sandbox.sugarcrm import SugarSandbox

    out = tmp_path / "accounts.jsonl"
    sandbox = SugarSandbox(accounts=23)
    try:
        ids = {r["id"] for r in sandbox.execute("SELECT id FROM accounts WHERE deleted = 0")}
        with sandbox.serve() as server:
            sugar_raw(server.url, "5", concurrency, str(out))
    finally:
        sandbox.close()
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(ids) == 23
    assert sorted(r["id"] for r in records) == sorted(ids)
    assert all(sorted(r) == sorted(FIELDS) for r in records)


@pytest.fixture
def loaded(bench_db: str, tmp_path: Path) -> Iterator[PgCase]:
    """The insert case after the floor's load, and the floor's check."""
    import generate

    csv = tmp_path / "contacts.csv"
    generate.write_contacts(50, csv)
    setup = Setup(tmp_path, bench_db, None, rows=50, xlsx_rows=0)
    case = PgCase("insert", setup, {"csv": csv, "changed": csv, "xlsx": csv})
    case.open()
    (step,) = case.prepare("floor")
    assert timed(step)[2] == 0
    yield case
    case.close()


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("UPDATE {t} SET revenue = revenue + 0.01 WHERE contact_id = 7", "differ from the floor"),
        ("UPDATE {t} SET notes = '' WHERE notes IS NULL AND contact_id < 5", "differ"),
        ("DELETE FROM {t} WHERE contact_id = 50", "49 rows instead of 50"),
        ("ALTER TABLE {t} ADD COLUMN _loaded_at integer", "table changed: column _loaded_at"),
        ("ALTER TABLE {t} ALTER COLUMN lead_score TYPE text", "column lead_score text"),
        ("DROP INDEX bench.contacts_email", "table changed: index CREATE INDEX contacts_email"),
    ],
)
def test_a_load_that_differs_from_the_floor_fails(loaded: PgCase, damage: str, says: str) -> None:
    floor = loaded.check("floor", None)
    assert floor.ok, floor.note
    assert loaded.check("crmbridge", floor).ok  # the same rows: fine
    psql(loaded.setup.url, damage.format(t=TABLE))
    check = loaded.check("crmbridge", floor)
    assert not check.ok
    assert says in check.note


def test_write_docs_replaces_only_the_generated_part(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Benchmarks\nintro\n{BEGIN}\nold table\n{END}\nnotes\n", encoding="utf-8")
    write_docs(page, "new table\n")
    assert page.read_text(encoding="utf-8") == (
        f"# Benchmarks\nintro\n{BEGIN}\nnew table\n{END}\nnotes\n"
    )
    page.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="markers"):
        write_docs(page, "x")


def test_targets_say_met_or_missed() -> None:
    def entry(seconds: float, ratio: float, peak: float = 250.0) -> dict[str, object]:
        return {"ok": True, "seconds": {"median": seconds}, "ratio": {"median": ratio},
                "peak_mb": peak}  # fmt: skip

    summary = [
        {
            "case": "insert",
            "tools": {
                "crmbridge": entry(3.0, 1.2, peak=310.0),
                "dlt": entry(15.0, 6.0),
                "sling": entry(5.0, 2.0),
            },
        },
        {"case": "upsert", "tools": {"crmbridge": {"ok": False, "notes": ["exit 3"]}}},
    ]
    assert targets(summary) == [
        "| insert | crmbridge ≤ 1.4× the floor | 1.20× | met |",
        "| insert | crmbridge ≥ 4× faster than dlt | dlt ÷ crmbridge: 5.00 | met |",
        "| insert | crmbridge ≥ 2× faster than sling | sling ÷ crmbridge: 1.67 | **missed** |",
        "| insert | crmbridge peak RSS < 300 MB | 310 MB | **missed** |",
    ]
