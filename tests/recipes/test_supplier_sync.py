"""The supplier-sync recipe end to end, exactly as docs/recipes/supplier-sync.md shows it: its
command lines run in order (``crmbridge`` in this process, ``psql`` against a real
PostgreSQL, ``sqlite3`` on the SugarCRM sandbox served on a real port), and what each sync
did checked against what the page says."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.recipes.docscript import ROOT, Line, crmbridge, script

from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import StateStore

PAGE = "docs/recipes/supplier-sync.md"
DOC_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/suppliers"
DOC_CRM_URL = "http://127.0.0.1:8080"


class Recipe:
    """The page's lines carried out: the sandbox, the copied folder, the database."""

    def __init__(self, tmp: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.pg_url = pg_url
        self.monkeypatch = monkeypatch
        self.sandbox: SugarSandbox | None = None
        self.data = ""
        self.server: Any = None
        self.replace = {DOC_PG_URL: pg_url}
        self.outputs: list[tuple[Line, str]] = []

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.sandbox is not None:
            self.sandbox.close()

    def run(self, line: Line, capsys: pytest.CaptureFixture[str]) -> None:
        command = line.args[0]
        if line.args[:3] == ["crmbridge", "sandbox", "sugarcrm"]:
            fields = [line.args[i + 1] for i, a in enumerate(line.args) if a == "--studio-field"]
            self.data = line.args[line.args.index("--data") + 1]
            self.sandbox = SugarSandbox(studio_fields=fields)
            self.server = self.sandbox.serve()
            self.replace[DOC_CRM_URL] = self.server.url
        elif command == "crmbridge":
            code = crmbridge(line, self.monkeypatch, self.replace)
            out = capsys.readouterr()
            self.outputs.append((line, out.out + out.err))
            assert code == line.exit_code, (line, out.out, out.err)
        elif command == "cp":
            assert line.args[1:4] == ["-r", "examples/supplier-sync", "~/supplier-sync"]
            folder = self.tmp / "supplier-sync"
            shutil.copytree(ROOT / "examples" / "supplier-sync", folder)
            assert line.args[4:] == ["&&", "cd", "~/supplier-sync"]
            self.monkeypatch.chdir(folder)
        elif command == "createdb":
            pass  # the test's own database (a schema of it)
        elif command == "psql":
            options = dict(zip(line.args[1::2], line.args[2::2], strict=False))
            sql = Path(options["-f"]).read_text() if "-f" in options else options["-c"]
            self.pg(sql)
        elif command == "sqlite3":
            assert line.args[1] == self.data  # the sandbox's own file, from any folder
            assert self.sandbox is not None
            self.sandbox.execute(line.args[2])
        else:
            raise AssertionError(f"the test cannot run {line}")

    # -- what the systems hold ------------------------------------------------------------
    def pg(self, sql: str) -> list[dict[str, Any]]:
        with psycopg.connect(self.pg_url.replace("+psycopg", ""), autocommit=True) as conn:
            cursor = conn.execute(sql)
            if cursor.description is None:
                return []
            names = [d.name for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def suppliers(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in self.pg("SELECT * FROM suppliers")}

    def accounts(self, *, deleted: bool = False) -> dict[str, dict[str, Any]]:
        assert self.sandbox is not None
        rows = self.sandbox.execute(
            "SELECT a.*, c.supplier_id_c FROM accounts a LEFT JOIN accounts_cstm c "
            f"ON c.id_c = a.id WHERE a.account_type = 'Partner' AND a.deleted = {int(deleted)}"
        )
        return {r["name"]: r for r in rows}

    def last_counts(self) -> dict[str, int]:
        with StateStore(f"sqlite:///{self.tmp}/home/state.sqlite") as state:
            (run,) = state.list_runs(limit=1)
            return {
                k: v
                for k, v in run.counts.items()
                if v and k.startswith(("a_to_b", "b_to_a", "links."))
            }


@pytest.fixture
def recipe(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recipe]:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBRIDGE_PASSPHRASE", "recipe passphrase")
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    made = Recipe(tmp_path, pg_url, monkeypatch)
    yield made
    made.close()


def test_the_supplier_recipe_runs_as_the_page_shows(
    recipe: Recipe, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = script(PAGE)
    said = [line.comment for line in lines]
    steps = iter(lines)

    def upto(comment: str) -> None:
        """Run the page's lines up to and including the one with this comment."""
        assert comment in said, comment
        for line in steps:
            recipe.run(line, capsys)
            if line.comment == comment:
                return

    upto("")  # the sandbox
    upto("")  # cp
    for _ in range(4):  # createdb, psql -f, the two connections
        upto("")
    upto("")  # the dry run
    plan = recipe.outputs[-1][1]
    assert "linked by" in plan
    assert (len(recipe.accounts()), len(recipe.suppliers())) == (5, 4), "a dry run writes nothing"

    upto("refused, nothing written (exit 2)")
    assert "--accept-links" in recipe.outputs[-1][1]
    assert (len(recipe.accounts()), len(recipe.suppliers())) == (5, 4)

    upto("created 2 + 3, updated 5 + 1, 1 conflict held")
    assert recipe.last_counts() == {
        "a_to_b.created": 2,
        "b_to_a.created": 3,
        "a_to_b.updated": 5,
        "b_to_a.updated": 1,
        "links.saved": 7,
    }
    suppliers, accounts = recipe.suppliers(), recipe.accounts()
    assert sorted(suppliers) == sorted(accounts)  # 7 companies on both sides
    assert len(suppliers) == 7
    for name, supplier in suppliers.items():
        assert accounts[name]["supplier_id_c"] == str(supplier["supplier_id"]), name
    assert "Oceanic Industries Ltd" in suppliers, "the CRM's spelling won"
    assert suppliers["Oceanic Industries Ltd"]["phone"] == "+44 20 7946 0012", "held"
    assert accounts["Oceanic Industries Ltd"]["phone_office"] == "+1 555 2012", "held"
    assert accounts["Acme Widgets AG"]["assigned_user_id"] == "1"
    assert accounts["Tyrell Industries Holdings"]["description"] == "Frame contract 2024-17"

    upto("nothing changed: nothing written")
    assert recipe.last_counts() == {}

    upto("")  # conflicts list
    listed = recipe.outputs[-1][1]
    for part in ("phone", "+1 555 2012", "open"):
        assert part in listed
    upto("")  # conflicts show 2
    assert "manual" in recipe.outputs[-1][1]
    upto("")  # conflicts resolve 2 --take b
    upto("b → a: updated 1 (the phone)")
    assert recipe.last_counts() == {"b_to_a.updated": 1, "links.saved": 1}
    assert recipe.suppliers()["Oceanic Industries Ltd"]["phone"] == "+1 555 2012"
    upto("no open conflicts")
    assert "no open conflicts" in recipe.outputs[-1][1]

    upto("")  # psql: Acme's phone
    upto("")  # sqlite3: Acme's city
    upto("a → b: the phone; b → a: the city")
    assert recipe.last_counts() == {"a_to_b.updated": 1, "b_to_a.updated": 1, "links.saved": 1}
    assert recipe.accounts()["Acme Widgets AG"]["phone_office"] == "+41 44 668 1899"
    assert recipe.suppliers()["Acme Widgets AG"]["city"] == "Zug"

    upto("")  # psql: delete Nakatomi
    upto("a → b: deleted 1")
    assert recipe.last_counts() == {"a_to_b.deleted": 1, "links.removed": 1}
    assert "Nakatomi Trading" not in recipe.accounts()
    assert "Nakatomi Trading" in recipe.accounts(deleted=True), "Sugar's soft delete"
    assert list(steps) == [], "every line of the page ran"


def test_the_example_profile_is_the_one_the_page_shows() -> None:
    page = (ROOT / PAGE).read_text(encoding="utf-8")
    shown = page.split("## The profile", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    profile = (ROOT / "examples" / "supplier-sync" / "supplier-sync.yaml").read_text()
    assert shown.strip() in profile
