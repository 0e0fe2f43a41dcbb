import re
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
  lead_source: ${source_value}
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


# -- parameters in expressions are values, never SQL code ------------------------------------
INJECTIONS = [
    "x' OR '1'='1",
    "x' --",
    "x'; DROP TABLE leads; --",
    "a\\' OR 1=1 --",
    "/* */ ' OR TRUE OR '",
    "${module}",
    "it's",
]

EXPRESSIONS = """\
params:
  source: {type: string, default: Web}
source:
  connection: crm
  object: leads
  filter: lead_source = ${source}
target:
  connection: crm
  object: x
mapping:
  note: "'from ' || ${source}"
"""


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_parameter_in_an_expression_is_a_literal_whatever_it_holds(
    tmp_path: Path, value: str
) -> None:
    from sqlglot import exp

    from crmbridge.core import expressions

    profile = load_profile(_write(tmp_path, EXPRESSIONS), {"source": value}).profile
    assert profile.source.filter is not None
    tree = expressions.parse(profile.source.filter, what="filter")
    assert isinstance(tree, exp.EQ)
    assert tree.this.name == "lead_source"
    assert isinstance(tree.expression, exp.Literal)
    assert tree.expression.is_string
    assert tree.expression.this == value
    mapped = expressions.parse(profile.mapping["note"], what="mapping")
    assert [lit.this for lit in mapped.find_all(exp.Literal)] == ["from ", value]


def test_a_placeholder_inside_quotes_in_an_expression_is_an_error(tmp_path: Path) -> None:
    text = EXPRESSIONS.replace("lead_source = ${source}", "lead_source = '${source}'")
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, text))
    assert ":6: source.filter: ${source} is inside quotes" in str(info.value)
    assert "'%' || ${source} || '%'" in str(info.value)


TYPED = """\
params:
  since: {type: date}
  limit: {type: integer, default: 10}
  ratio: {type: float, default: 0.5}
  active: {type: boolean, default: true}
  at: {type: datetime, default: "2024-03-01 10:00:00"}
  amount: {type: decimal, default: "12.50"}
source:
  connection: crm
  object: leads
  filter: >-
    created >= ${since} AND score < ${limit} AND share > ${ratio} AND is_active = ${active}
    AND modified < ${at} AND total = ${amount}
target:
  connection: crm
  object: leads_${since}
batch_size: ${limit}
"""


def test_declared_types_give_typed_literals(tmp_path: Path) -> None:
    loaded = load_profile(_write(tmp_path, TYPED), {"since": "2024-02-29"})
    assert loaded.profile.source.filter == (
        "created >= DATE '2024-02-29' AND score < 10 AND share > CAST(0.5 AS DOUBLE) "
        "AND is_active = TRUE AND modified < TIMESTAMP '2024-03-01 10:00:00' AND total = 12.50"
    )
    assert loaded.profile.target.object == "leads_2024-02-29"  # text outside expressions
    assert loaded.profile.batch_size == 10


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "parameter 'since' has no default: give it with --param since=VALUE"),
        ({"since": "2024-02-30"}, "--param since='2024-02-30': not a date (YYYY-MM-DD)"),
        ({"since": "2024-01-01", "limit": "ten"}, "--param limit='ten': not an integer"),
        ({"since": "2024-01-01", "limit": "1_0"}, "--param limit='1_0': not an integer"),
        ({"since": "2024-01-01", "active": "maybe"}, "not a boolean (true or false)"),
        ({"since": "2024-01-01", "ratio": "nan"}, "--param ratio='nan': not a number"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(
    tmp_path: Path, given: dict[str, str], message: str
) -> None:
    with pytest.raises(ProfileError, match=re.escape(message)):
        load_profile(_write(tmp_path, TYPED), given)


def test_a_parameter_type_that_does_not_exist_is_named(tmp_path: Path) -> None:
    text = "params:\n  n: {type: number}\n" + PROFILE.split("\n", 1)[1]
    with pytest.raises(ProfileError, match=r"params.n.type: 'number' is not a type \(string, "):
        load_profile(_write(tmp_path, text))
