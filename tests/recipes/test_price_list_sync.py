"""The price-list recipe end to end, exactly as docs/recipes/price-list-sync.md shows it: its
command lines run in order (``crmbridge`` in this process, ``sqlite3`` on the recipe's
SQLite file), the workbook edited as a person does in Excel, and the table checked."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from tests.recipes.docscript import ROOT, Line, crmbridge, script

from crmbridge.state import StateStore

PAGE = "docs/recipes/price-list-sync.md"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBRIDGE_PASSPHRASE", "recipe passphrase")
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "price-list-sync"


def run(
    line: Line, folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    """Carry out one line of the page; what it printed."""
    if line.args[0] == "cp":
        assert line.args[1:] == [
            "-r",
            "examples/price-list-sync",
            "~/price-list-sync",
            "&&",
            "cd",
            "~/price-list-sync",
        ]
        shutil.copytree(ROOT / "examples" / "price-list-sync", folder)
        monkeypatch.chdir(folder)
        return ""
    if line.args[0] == "sqlite3":
        with sqlite3.connect(folder / line.args[1]) as db:
            if line.args[2:4] == ["<", "products.sql"]:
                db.executescript((folder / "products.sql").read_text(encoding="utf-8"))
            else:
                db.execute(line.args[2])
        db.close()
        return ""
    code = crmbridge(line, monkeypatch, {})
    out = capsys.readouterr()
    assert code == line.exit_code, (line, out.out, out.err)
    return out.out + out.err


def products(folder: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(folder / "shop.sqlite") as db:
        db.row_factory = sqlite3.Row
        rows = {r["sku"]: dict(r) for r in db.execute("SELECT * FROM products")}
    db.close()
    return rows


def last_counts(folder: Path) -> dict[str, int]:
    with StateStore(f"sqlite:///{folder.parent}/home/state.sqlite") as state:
        (last,) = state.list_runs(limit=1)
    return {k: v for k, v in last.counts.items() if v and k.startswith(("a_to_b", "b_to_a"))}


def edit_in_excel(folder: Path) -> None:
    """A-200 costs 0.09 now, and the row of C-020 is deleted."""
    book = openpyxl.load_workbook(folder / "prices.xlsx")
    sheet = book["Prices"]
    for row in sheet.iter_rows(min_row=2):
        if row[0].value == "A-200":
            row[2].value = 0.09
    (c020,) = [r[0].row for r in sheet.iter_rows(min_row=2) if r[0].value == "C-020"]
    sheet.delete_rows(c020)
    book.save(folder / "prices.xlsx")


def test_the_price_list_recipe_runs_as_the_page_shows(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = script(PAGE)
    commands = ["cp", "sqlite3", "crmbridge", "crmbridge", "crmbridge", "sqlite3"]
    assert [line.args[0] for line in lines] == [*commands, "crmbridge", "crmbridge"]
    for line in lines[:2]:
        run(line, folder, monkeypatch, capsys)
    before = products(folder)

    plan = run(lines[2], folder, monkeypatch, capsys)  # --dry-run
    assert "A-100" in plan
    assert "C-020" in plan
    assert products(folder) == before, "a dry run writes nothing"

    run(lines[3], folder, monkeypatch, capsys)  # --accept-links
    assert last_counts(folder) == {"a_to_b.updated": 1, "a_to_b.created": 2}
    rows = products(folder)
    assert Decimal(str(rows["A-100"]["list_price"])) == Decimal("0.35")
    assert rows["A-100"]["price_changed"].startswith("2026-03-02 08:30:00"), "Berlin 09:30"
    assert rows["B-310"]["name"] == "Washer 8.4 mm, stainless steel A2, DIN 1"
    assert rows["C-020"]["price_changed"].startswith("2026-03-09 07:15:00")
    assert rows["A-200"] == before["A-200"]
    assert rows["Z-999"] == before["Z-999"]
    assert rows["A-100"]["stock"] == 5200, "the table's own field is left alone"

    run(lines[4], folder, monkeypatch, capsys)  # nothing changed
    assert last_counts(folder) == {}

    edit_in_excel(folder)
    run(lines[5], folder, monkeypatch, capsys)  # the shop shortens A-100's name
    run(lines[6], folder, monkeypatch, capsys)
    assert last_counts(folder) == {"a_to_b.updated": 2}
    rows = products(folder)
    assert Decimal(str(rows["A-200"]["list_price"])) == Decimal("0.09")
    assert rows["C-020"]["discontinued"] == 1
    assert rows["A-100"]["name"] == "Hex bolt M8x40", "owned by the sheet, but it did not change"

    run(lines[7], folder, monkeypatch, capsys)
    assert last_counts(folder) == {}


def test_a_profile_that_would_write_to_the_workbook_is_refused_as_the_page_shows(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = script(PAGE)
    for line in lines[:2]:
        run(line, folder, monkeypatch, capsys)
    profile = folder / "price-list-sync.yaml"
    text = profile.read_text(encoding="utf-8")
    profile.write_text(
        text.replace("{a: currency, b: currency, direction: a_to_b}", "{a: currency, b: currency}")
    )
    workbook = (folder / "prices.xlsx").read_bytes()
    refused = Line({}, [*lines[3].args], "(exit 2)")
    said = run(refused, folder, monkeypatch, capsys)
    page = (ROOT / PAGE).read_text(encoding="utf-8")
    shown = page.split("```text\n", 1)[1].split("```", 1)[0].strip()
    assert " ".join(said.split()) == " ".join(shown.split())
    assert (folder / "prices.xlsx").read_bytes() == workbook
    with StateStore(f"sqlite:///{folder.parent}/home/state.sqlite") as state:
        assert state.list_runs() == [], "refused before the run began"


def test_the_example_profile_is_the_one_the_page_shows() -> None:
    page = (ROOT / PAGE).read_text(encoding="utf-8")
    shown = page.split("## The profile", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    profile = (ROOT / "examples" / "price-list-sync" / "price-list-sync.yaml").read_text()
    assert shown.strip() in profile


def test_the_workbook_holds_what_the_page_says() -> None:
    sheet = openpyxl.load_workbook(ROOT / "examples" / "price-list-sync" / "prices.xlsx")["Prices"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("sku", "description", "unit_price", "currency", "changed")
    assert [r[0] for r in rows[1:]] == ["A-100", "A-200", "B-310", "C-020"]
    assert rows[1][4] == dt.datetime(2026, 3, 2, 9, 30)
