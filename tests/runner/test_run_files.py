"""Whole runs between real files: outcomes, output files, run history, error policies."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tests.runner.conftest import write_csv, write_profile

from crmbridge.connections import ConnectionStore
from crmbridge.errors import ProfileError
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import preview_profile, run_profile
from crmbridge.state import RunStatus, StateStore

PEOPLE = '''
id,first,last,email,score,joined
1,Ann,Lee, ANN@X.COM ,55,2024-01-02
2,Bob,Ng,bob@x.com,10,2024-02-03
3,Cy,Oz,cy@x.com,abc,2024-03-04
4,Di,Po,,70,2024-13-01
5,"Eve ""E""",Qu,eve@x.com,90,2024-05-06
6,Fay,Ro,fay@x.com,80
'''

PROFILE = """
source:
  connection: {type: csv, path: .}
  object: people.csv
  types: {score: integer, joined: date}
  filter: score >= 50
target:
  connection: {type: jsonl, path: out}
  object: people.jsonl
mapping:
  email: lower(trim(email))
  name: first || ' ' || last
  band: tier(last)
  joined: joined
value_maps:
  tier: {Lee: VIP, "*": normal}
"""


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def people(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    return write_csv(tmp_path / "people.csv", PEOPLE)


def test_a_run_writes_good_records_and_explains_every_rejection(
    tmp_path: Path, people: Path, store: ConnectionStore, state: StateStore
) -> None:
    loaded = write_profile(tmp_path, PROFILE)
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "run")

    assert summary.status is RunStatus.FINISHED_WITH_REJECTS
    assert summary.exit_code == 1
    assert summary.counts == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "rejected": 3,
        "skipped": 0,
        "filtered": 1,
    }
    written = [
        json.loads(line) for line in (tmp_path / "out/people.jsonl").read_text().splitlines()
    ]
    assert written == [
        {"email": "ann@x.com", "name": "Ann Lee", "band": "VIP", "joined": "2024-01-02"},
        {"email": "eve@x.com", "name": 'Eve "E" Qu', "band": "normal", "joined": "2024-05-06"},
    ]
    success = _rows(tmp_path / "run/success.csv")
    assert [(r["crmbridge_row"], r["email"], r["crmbridge_outcome"]) for r in success] == [
        ("1", " ANN@X.COM ", "created"),  # the source record as read
        ("5", "eve@x.com", "created"),
    ]
    errors = {r["crmbridge_reason"]: r for r in _rows(tmp_path / "run/error.csv")}
    assert set(errors) == {
        "line 7: expected 6 fields, found 5",
        "field 'score': 'abc' is not a whole number",
        "field 'joined': '2024-13-01' is not a date (YYYY-MM-DD)",
    }
    assert errors["line 7: expected 6 fields, found 5"]["crmbridge_raw"] == "6,Fay,Ro,fay@x.com,80"
    assert errors["field 'score': 'abc' is not a whole number"]["first"] == "Cy"

    record = state.get_run(summary.run_id or 0)
    assert record.status is RunStatus.FINISHED_WITH_REJECTS
    assert record.counts["rejected"] == 3
    assert record.error_file == str(tmp_path / "run/error.csv")


def test_a_dry_run_decides_every_outcome_and_writes_nothing(
    tmp_path: Path, people: Path, store: ConnectionStore, state: StateStore
) -> None:
    loaded = write_profile(tmp_path, PROFILE)
    summary = run_profile(
        loaded, connections=store, state=state, dry_run=True, output_dir=tmp_path / "run"
    )
    assert summary.status is RunStatus.DRY_RUN
    assert summary.counts["created"] == 2
    assert summary.counts["rejected"] == 3
    assert not (tmp_path / "out/people.jsonl").exists()
    assert len(_rows(tmp_path / "run/success.csv")) == 2


def test_preview_shows_mapped_records_and_their_actions(
    tmp_path: Path, people: Path, store: ConnectionStore
) -> None:
    loaded = write_profile(tmp_path, PROFILE)
    preview = preview_profile(loaded, connections=store, limit=3)
    rows = preview.records.to_pylist()
    assert [(r["record"], r["email"], r["action"]) for r in rows] == [
        (1, "ann@x.com", "create"),
        (3, None, "reject"),
        (4, None, "reject"),
    ]
    assert preview.local_filter == "score >= 50"


def test_stop_policy_writes_only_what_precedes_the_first_rejection(
    tmp_path: Path, people: Path, store: ConnectionStore, state: StateStore
) -> None:
    loaded = write_profile(tmp_path, PROFILE + "errors: {on_reject: stop}\n")
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "run")
    assert summary.status is RunStatus.FAILED
    assert summary.exit_code == 3
    assert summary.error
    assert "stopped at the first rejected record" in summary.error
    written = (tmp_path / "out/people.jsonl").read_text().splitlines()
    assert [json.loads(line)["email"] for line in written] == ["ann@x.com"]


def test_max_rejects_fails_the_run_once_exceeded(
    tmp_path: Path, people: Path, store: ConnectionStore, state: StateStore
) -> None:
    loaded = write_profile(tmp_path, PROFILE + "errors: {max_rejects: 2}\n")
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "run")
    assert summary.status is RunStatus.FAILED
    assert summary.error == "stopped: more than 2 records were rejected"


def test_every_profile_problem_is_reported_before_anything_is_written(
    tmp_path: Path, people: Path, store: ConnectionStore, state: StateStore
) -> None:
    loaded = write_profile(
        tmp_path,
        """
        source:
          connection: {type: csv, path: .}
          object: people.csv
          filter: scor >= 50
        target:
          connection: {type: jsonl, path: out}
          object: people.jsonl
          mode: upsert
          match_keys: [email]
        mapping:
          email: lower(emial)
          name: frist || last
        """,
    )
    with pytest.raises(ProfileError) as info:
        run_profile(loaded, connections=store, state=state)
    text = str(info.value)
    assert ":5: source.filter: unknown column 'scor'" in text
    assert "did you mean 'score'?" in text
    assert ":12: mapping.email: unknown column 'emial'" in text
    assert ":13: mapping.name: unknown column 'frist'" in text
    assert ":9: target.mode: jsonl targets cannot upsert (they can: insert)" in text
    assert not (tmp_path / "out/people.jsonl").exists()
    assert state.list_runs() == []


def test_unknown_connection_and_object_suggest_close_names(
    tmp_path: Path, people: Path, store: ConnectionStore
) -> None:
    store.add("warehouse", "jsonl", {"path": str(tmp_path / "out")})
    text = """
        source:
          connection: {type: csv, path: .}
          object: %s
        target:
          connection: %s
          object: x.jsonl
        """
    with pytest.raises(ProfileError) as info:
        preview_profile(
            write_profile(tmp_path, text % ("people.csv", "warehose")), connections=store
        )
    assert str(info.value).endswith(
        ":6: target.connection: unknown connection 'warehose'; did you mean 'warehouse'?"
    )
    with pytest.raises(ProfileError) as info:
        preview_profile(
            write_profile(tmp_path, text % ("peple.csv", "warehouse")), connections=store
        )
    assert ":4: source.object: " in str(info.value)
    assert "did you mean 'people.csv'?" in str(info.value)


def test_misspelt_settings_and_unknown_fields_are_reported_together(
    tmp_path: Path, people: Path, store: ConnectionStore, state: StateStore
) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(
        """\
source:
  connection: {type: csv, path: .}
  object: people.csv
  filtr: score >= 50
  fields: [email, scroe]
target:
  connection: {type: jsonl, path: out}
  object: people.jsonl
  craete: true
mapping:
  email: lower(emial)
batch_sise: 10
""",
        encoding="utf-8",
    )
    with pytest.raises(ProfileError) as strict:
        load_profile(path)  # the library's default: stop at the format's problems
    assert len(strict.value.problems) == 3
    loaded = load_profile(path, defer_unknown_settings=True)
    with pytest.raises(ProfileError) as info:
        run_profile(loaded, connections=store, state=state)
    at = f"{path}:"
    assert sorted(str(info.value).splitlines()) == sorted(
        [
            f"{at}4: source.filtr: unknown setting; did you mean 'filter'?",
            f"{at}9: target.craete: unknown setting; did you mean 'create'?",
            f"{at}12: batch_sise: unknown setting; did you mean 'batch_size'?",
            f"{at}5: source.fields[1]: unknown field 'scroe'; did you mean 'score'?",
            f"{at}11: mapping.email: unknown column 'emial' in mapping for 'email' "
            "\"lower(emial)\"; did you mean 'email'?",
        ]
    )
    assert state.list_runs() == []
