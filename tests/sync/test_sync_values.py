"""Values across two systems: lengths, time zones, numbers, on real PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tests.sync.conftest import B_MODIFIED, SyncPair, counts

LONG = "+49 30 1234567 ext. 89 (ask for the purchasing office)"  # 55 characters


@pytest.mark.parametrize("policy", ["reject", "truncate", "hold"])
def test_a_value_too_long_for_the_other_side_follows_too_long(pair: SyncPair, policy: str) -> None:
    pair.write_profile(f"conflicts: {{too_long: {policy}}}\n")
    pair.add_a(name="Acme", phone="111", vat="DE1")
    pair.add_b("x1", name="Acme", phone_office="111", sic_code="DE1")
    pair.sync()
    pair.edit_a(1, phone=LONG, notes="hello")
    done = pair.sync()
    b = pair.b_row("x1")
    if policy == "reject":
        counts(done, a_to_b__rejected=1)
        assert b["phone_office"] == "111"
        assert "limit is 40" in (done.report.lines[0].reason or "")
        assert pair.sync().counts.get("a_to_b.rejected") == 1  # tried again, not forgotten
    elif policy == "truncate":
        assert b["phone_office"] == LONG[:40]
        assert b["description"] == "hello"
    else:
        assert b["phone_office"] == "111"
        assert b["description"] == "hello"  # the rest of the record syncs
        (conflict,) = pair.state.sync.conflicts(pair.key, status="open")
        assert (conflict.field, conflict.policy) == ("phone", "too_long")


def test_date_times_are_compared_and_written_as_instants(pair: SyncPair) -> None:
    pair.write_profile(
        replace={
            "  modified: updated_at\n": "  modified: updated_at\n  timezone: Europe/Berlin\n",
            "  - {a: notes, b: description}\n": "  - {a: notes, b: description}\n"
            "  - {a: next_call, b: call_at}\n",
        }
    )
    pair.add_a(name="Acme", vat="DE1", next_call=dt.datetime(2026, 1, 5, 10, 0))  # Berlin
    pair.add_b(
        "x1", name="Acme", sic_code="DE1", call_at=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    )
    first = pair.sync()
    assert first.report.conflicts == []  # the same instant
    pair.edit_b("x1", call_at=dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC))
    pair.sync()
    assert pair.a_row(1)["next_call"] == dt.datetime(2026, 7, 1, 14, 0)  # summer: UTC+2
    assert pair.sync().report.lines == []


@pytest.mark.parametrize("servers", ["postgresql-mariadb"])
def test_a_sync_between_postgresql_and_mariadb(
    tmp_path: Path, pg_url: str, mysql_url: str, servers: str
) -> None:
    pair = SyncPair(tmp_path, pg_url, mysql_url)
    try:
        pair.add_a(name="Acme", phone="111", vat="DE1")
        pair.add_a(name="Globex", phone="222", vat="DE2")
        pair.add_b("x1", name="ACME", phone_office="111", sic_code="de1")
        pair.add_b("x9", name="Umbrella", phone_office="999", sic_code="DE9")
        pair.write_profile(
            "conflicts: {policy: b}\n",
            replace={"b: [sic_code]": "b: [sic_code], rules: {vat: casefold}"},
        )
        pair.sync()
        pair.assert_in_step()
        assert pair.a_row(1)["name"] == "ACME"  # first link, values differ: b wins
        pair.edit_a(2, phone="2222")
        pair.edit_b("x9", name="Umbrella Corp")
        done = pair.sync()
        counts(done, a_to_b__updated=1, b_to_a__updated=1)
        pair.assert_in_step()
        assert pair.sync().report.lines == []
    finally:
        pair.close()


def test_a_refused_write_is_tried_again_after_both_reads_moved_past_it(pair: SyncPair) -> None:
    pair.write_profile(replace=B_MODIFIED)  # both sides read by changes
    pair.add_a(name="Acme", phone="111", vat="DE1")
    pair.add_b("x1", name="Acme", phone_office="111", sic_code="DE1")
    pair.sync()
    pair.edit_a(1, phone=LONG)  # refused by b (too long)
    pair.add_a(name="Globex", phone=LONG, vat="DE2")  # its create refused too
    counts(pair.sync(), a_to_b__rejected=2)
    pair.add_a(name="Initech", phone="3", vat="DE3")  # both cursors move past them
    pair.add_b("x4", name="Hooli", phone_office="4", sic_code="DE4")
    counts(pair.sync(), a_to_b__rejected=2)
    counts(pair.sync(), a_to_b__rejected=2)  # still tried: not forgotten
    pair.edit_a(1, phone="+49 111")
    pair.edit_a(2, phone="+49 222")
    counts(pair.sync(), a_to_b__updated=1, a_to_b__created=1)
    counts(pair.sync(), a_to_b__rejected=0)
    pair.assert_in_step()
