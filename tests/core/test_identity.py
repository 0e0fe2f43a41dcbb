"""Record identity: one equality rule per key, composite keys without collisions."""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata

import pyarrow as pa
import pytest

from crmbridge.core.identity import (
    KeyRule,
    content_keys,
    encode,
    match_counts,
    normalize,
    occurrence,
    positions,
    waves,
)


def test_exact_compares_character_for_character() -> None:
    values = pa.array(["Ann@x.com", "ann@x.com ", None, ""])
    assert normalize(values, KeyRule.EXACT).to_pylist() == ["Ann@x.com", "ann@x.com ", None, ""]


def test_casefold_ignores_case_spaces_and_unicode_forms() -> None:
    composed = "Jos\u00e9"
    decomposed = unicodedata.normalize("NFD", composed)
    values = pa.array([" Ann@X.com ", composed, decomposed, "Straße", "STRASSE", "  "])
    got = normalize(values, KeyRule.CASEFOLD).to_pylist()
    assert got[0] == "ann@x.com"
    assert got[1] == got[2] == "josé"
    assert got[3] == got[4] == "strasse"
    assert got[5] == ""  # an empty text is a value (a code may be empty)


def test_email_and_phone_rules() -> None:
    assert normalize(pa.array([" Ann@X.COM"]), KeyRule.EMAIL).to_pylist() == ["ann@x.com"]
    phones = pa.array(["+49 (30) 123-45", "4930 12345", "n/a"])
    assert normalize(phones, KeyRule.PHONE).to_pylist() == ["493012345", "493012345", None]
    assert normalize(pa.array(["  "]), KeyRule.EMAIL).to_pylist() == [None]


def test_non_text_keys_are_compared_as_their_text() -> None:
    assert normalize(pa.array([1, 20, None]), KeyRule.EXACT).to_pylist() == ["1", "20", None]


def test_composite_keys_with_separators_in_values_do_not_collide() -> None:
    batch = pa.RecordBatch.from_pydict(
        {"a": ["a|b", "a", "a\x1fb", "a", "a\\", "a"], "b": ["c", "b|c", "c", "b\x1fc", "b", "\\b"]}
    )
    keys = encode(batch, ["a", "b"]).to_pylist()
    assert len(set(keys)) == len(keys)


def test_a_missing_part_means_no_identity() -> None:
    batch = pa.RecordBatch.from_pydict({"a": ["x", None, "y"], "b": [1, 2, None]})
    assert encode(batch, ["a", "b"]).to_pylist()[1:] == [None, None]


def test_rules_apply_per_key() -> None:
    batch = pa.RecordBatch.from_pydict({"email": ["A@X.com", "a@x.com"], "src": ["W", "w"]})
    rules = {"email": KeyRule.EMAIL}
    first, second = encode(batch, ["email", "src"], rules).to_pylist()
    assert first != second  # src compares exactly
    first, second = encode(batch, ["email"], rules).to_pylist()
    assert first == second


def test_occurrence_and_waves_keep_source_order() -> None:
    ids = pa.array(["a", "b", "a", "c", "a", "b", None, None])
    assert occurrence(ids).to_pylist() == [0, 0, 1, 0, 2, 1, 0, 0]
    assert [w.to_pylist() for w in waves(ids)] == [[0, 1, 3, 6, 7], [2, 5], [4]]
    assert [w.to_pylist() for w in waves(pa.array(["x", "y"]))] == [[0, 1]]
    # distinct identities and nulls: one wave (nulls never repeat one another)
    assert occurrence(pa.array(["x", None, "y", None])).to_pylist() == [0, 0, 0, 0]
    assert [w.to_pylist() for w in waves(pa.array([None, "x", None]))] == [[0, 1, 2]]


def test_positions_and_counts() -> None:
    wanted = pa.array(["a", "b", None, "c"])
    available = pa.array(["b", "a", "b", None])
    assert positions(wanted, available).to_pylist() == [1, 0, None, None]
    assert match_counts(wanted, available).to_pylist() == [1, 2, 0, 0]


@pytest.mark.parametrize("rule", list(KeyRule))
def test_every_rule_normalises_null_to_null(rule: KeyRule) -> None:
    assert normalize(pa.array([None], pa.string()), rule).to_pylist() == [None]


def test_content_keys_are_the_md5_of_the_position_and_values_as_text() -> None:
    """Stable across versions (the ledger keeps them between runs): texts and integers joined
    by Arrow give the same bytes as other types' DuckDB text form."""

    def md5(*parts: str) -> str:
        return hashlib.md5("\x1f".join(parts).encode()).hexdigest()

    texts = pa.record_batch(
        {
            "_row": pa.array([1, 2], pa.int64()),
            "a": pa.array(["Zoë", None]),
            "n": pa.array([None, -3], pa.int64()),
        }
    )
    assert content_keys(texts, ["a", "n"], "_row").to_pylist() == [
        md5("1", "Zoë", "\x1e"),
        md5("2", "\x1e", "-3"),
    ]
    typed = pa.record_batch(
        {"_row": pa.array([7], pa.int64()), "d": pa.array([dt.date(2024, 1, 31)]), "a": ["x"]}
    )
    assert content_keys(typed, ["d", "a"], "_row").to_pylist() == [md5("7", "2024-01-31", "x")]
