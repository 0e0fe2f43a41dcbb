"""Unit checks of the value conversions and the v4_1 query translation."""

from __future__ import annotations

import pytest

from crmbridge.sandbox.sugarcrm.sqlfragment import (
    MalformedQueryError,
    QueryRejectedError,
    translate_order_by,
    translate_where,
)
from crmbridge.sandbox.sugarcrm.values import clean_text, htmlentities, print_r, read_encode
from crmbridge.sandbox.sugarcrm.vardefs import MODULES, STUDIO_FIELDS, build_modules


def test_print_r_matches_php() -> None:
    assert print_r({"a": 1, "b": {"c": True, "d": None}, "e": []}) == (
        "Array\n(\n    [a] => 1\n    [b] => Array\n        (\n            [c] => 1\n"
        "            [d] => \n        )\n\n    [e] => Array\n        (\n        )\n\n)\n"
    )
    assert print_r(None) == ""


def test_clean_and_encode() -> None:
    assert clean_text("AT&amp;T <Test>x</Test> <b>y</b><script>bad()</script>") == (
        "AT&T x <b>y</b>"
    )
    assert read_encode('Acme & Sons "Q" <i> \'') == "Acme & Sons &quot;Q&quot; &lt;i&gt; &#039;"
    assert htmlentities("AT&amp;T Zürich 'q'") == "AT&amp;amp;T Z&uuml;rich &#039;q&#039;"


@pytest.mark.parametrize(
    ("fragment", "sqlite"),
    [
        ("accounts.name = 'O''Brien'", "accounts.name = 'O''Brien'"),
        ("accounts.name = 'O\\'Brien'", "accounts.name = 'O''Brien'"),
        ('accounts.name = "x"', "accounts.name = 'x'"),
        ("`accounts`.`name` LIKE 'a\\_b%'", "\"accounts\".\"name\" LIKE 'a\\_b%' ESCAPE '\\'"),
        ("a.x = 1 && a.y = 2 || a.z != 3", "a.x = 1 AND a.y = 2 OR a.z != 3"),
        ("", ""),
    ],
)
def test_translate_where(fragment: str, sqlite: str) -> None:
    assert translate_where(fragment) == sqlite


def test_translate_where_errors() -> None:
    with pytest.raises(QueryRejectedError):
        translate_where("a.b = 1;")
    with pytest.raises(MalformedQueryError):
        translate_where("a.b = 'unterminated")
    with pytest.raises(MalformedQueryError):
        translate_where("(a.b = 1")


def test_translate_order_by_keeps_bare_known_fields_only() -> None:
    accounts = MODULES["Accounts"]
    assert translate_order_by("name DESC, accounts.id, nosuch, date_modified", accounts) == (
        "accounts.name DESC, accounts.date_modified ASC"
    )
    leads = build_modules(STUDIO_FIELDS)["Leads"]
    assert translate_order_by("external_id_c", leads) == "leads_cstm.external_id_c ASC"
