from pathlib import Path

import pytest

from crmbridge.errors import ProfileError
from crmbridge.profiles.loader import load_profile
from crmbridge.profiles.model import TruncationAction, json_schema

GOOD = """\
source:
  connection: crm
  object: Leads
  filter: lead_score >= 50
target:
  connection: {type: csv, path: out}
  object: leads.csv
mapping:
  email: lower(email)
truncation: truncate
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leads.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_profile_loads_with_defaults(tmp_path: Path) -> None:
    loaded = load_profile(_write(tmp_path, GOOD))
    assert loaded.name == "leads"
    assert loaded.base_dir == tmp_path
    profile = loaded.profile
    assert profile.target.mode.value == "insert"
    assert profile.batch_size == 10_000
    assert profile.truncation.action("email") is TruncationAction.TRUNCATE
    assert profile.target.connection.type == "csv"  # type: ignore[union-attr]
    assert loaded.line_of(("mapping", "email")) == 9


def test_every_problem_is_reported_at_once_with_line_and_field(tmp_path: Path) -> None:
    text = """\
source:
  connection: crm
  object: Leads
  filtr: x
target:
  connection: db
  object: leads
  mode: upsert
batch_size: 0
mapping:
  Email: 3
"""
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, text))
    lines = str(info.value).splitlines()
    path = str(tmp_path / "leads.yaml")
    assert f"{path}:4: source.filtr: unknown setting; did you mean 'filter'?" in lines
    assert f"{path}:5: target: mode upsert needs match_keys" in lines
    assert f"{path}:9: batch_size: Input should be greater than or equal to 1" in lines
    assert f"{path}:11: mapping.Email: Input should be a valid string" in lines
    assert len(info.value.problems) == 4


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, "source:\n  object: [unclosed\ntarget: x\n"))
    assert info.value.problems[0].line is not None
    assert "not valid YAML" in str(info.value)


def test_a_missing_file_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "nope.yaml")


def test_a_field_set_by_mapping_and_constant_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="fields set both by mapping and constants: email"):
        load_profile(_write(tmp_path, GOOD + "constants:\n  email: x\n"))


def test_json_schema_describes_the_profile() -> None:
    schema = json_schema()
    assert schema["title"] == "crmbridge profile"
    assert {"source", "target"} <= set(schema["required"])
    assert "mapping" in schema["properties"]
