from pathlib import Path

import pytest

from crmbridge.errors import ProfileError
from crmbridge.profiles.loader import load_profile

PROFILE = """\
params:
  threshold: 50
  module: Leads
  source_value: Web Site
  size: 500
source:
  connection: crm
  object: leads
  filter: lead_score >= ${threshold} AND note <> '$${literal}'
target:
  connection: crm
  object: ${module}
mapping:
  lead_source: "'${source_value}'"
batch_size: ${size}
"""


def _write(tmp_path: Path, text: str = PROFILE) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_placeholders_take_the_defaults(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path)).profile
    assert profile.source.filter == "lead_score >= 50 AND note <> '${literal}'"
    assert profile.target.object == "Leads"
    assert profile.mapping["lead_source"] == "'Web Site'"
    assert profile.batch_size == 500  # a whole setting keeps the value's type


def test_command_line_values_override_the_defaults_with_their_type(tmp_path: Path) -> None:
    given = {"module": "Contacts", "threshold": "70", "size": "20"}
    profile = load_profile(_write(tmp_path), given).profile
    assert profile.target.object == "Contacts"
    assert profile.source.filter is not None
    assert profile.source.filter.startswith("lead_score >= 70 ")
    assert profile.batch_size == 20


def test_unknown_parameters_are_errors_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="unknown parameter 'modul'; did you mean 'module'"):
        load_profile(_write(tmp_path), {"modul": "Contacts"})
    text = PROFILE.replace("object: ${module}", "object: ${modle}")
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, text))
    assert ":12: target.object: unknown parameter 'modle'; did you mean 'module'?" in str(
        info.value
    )
